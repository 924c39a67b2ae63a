/* SPDX-License-Identifier: MIT */
/*
 * Byte arithmetic over the FUSE data path's page bios; see fuse_pages.h.
 * Pure: no libfuse, no export, so tests/unit/test_fuse_rmw.c links it.
 */
#include <config.h>

#include "daemon/fuse_pages.h"

struct bvec_iter fuse_bio_whole_iter(const struct bio *b)
{
	struct bvec_iter it = { 0 };
	unsigned int k;

	for (k = 0; k < b->bi_vcnt; k++)
		it.bi_size += b->bi_io_vec[k].bv_len;
	return it;
}

/* Append [@p, @p + @len) to @iov[0..@n), merged with its last if adjacent. */
static int iov_add(struct iovec *iov, int n, char *p, uint32_t len)
{
	if (n && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
		iov[n - 1].iov_len += len;
		return n;
	}
	iov[n] = (struct iovec){ p, len };
	return n + 1;
}

int fuse_read_iov(struct bio *const *bios, unsigned int nr, uint32_t skip,
		  uint32_t len, struct iovec *iov)
{
	unsigned int i;
	int n = 0;

	for (i = 0; i < nr && len; i++) {
		struct bvec_iter it;
		struct bio_vec bv;

		for_each_bvec_iter(bv, bios[i]->bi_io_vec, it,
				   fuse_bio_whole_iter(bios[i])) {
			uint32_t take = bv.bv_len;

			if (skip >= take) {
				skip -= take;
				continue;
			}
			take -= skip;
			if (take > len)
				take = len;
			n = iov_add(iov, n, (char *)bvec_virt(&bv) + skip, take);
			skip = 0;
			len -= take;
			if (!len)
				break;
		}
	}
	return n;
}

void fuse_rmw_copy_in(struct bio *const *dst, unsigned int nr_dst, uint32_t at,
		      struct bio *src, uint32_t from, uint32_t n)
{
	struct bvec_iter src_iter = fuse_bio_whole_iter(src);
	unsigned int i;

	bvec_iter_advance(src->bi_io_vec, &src_iter, from);
	if (src_iter.bi_size > n)
		src_iter.bi_size = n;
	for (i = 0; i < nr_dst && src_iter.bi_size; i++) {
		struct bvec_iter dst_iter = fuse_bio_whole_iter(dst[i]);

		if (at >= dst_iter.bi_size) {
			at -= dst_iter.bi_size;
			continue;
		}
		bvec_iter_advance(dst[i]->bi_io_vec, &dst_iter, at);
		at = 0;
		bio_copy_data_iter(dst[i], &dst_iter, src, &src_iter);
	}
}

void fuse_rmw_merge_edges(struct bio *const *dst, unsigned int nr_dst,
			  struct bio *head, struct bio *tail,
			  uint32_t pay_start, uint32_t pay_end, uint32_t total,
			  uint32_t block)
{
	/* The last block starts here, in the write and in @tail alike. */
	uint32_t tail_block = total - block;

	if (head)
		fuse_rmw_copy_in(dst, nr_dst, 0, head, 0, pay_start);
	if (tail)
		fuse_rmw_copy_in(dst, nr_dst, pay_end, tail, pay_end - tail_block,
				 total - pay_end);
}
