/* SPDX-License-Identifier: MIT */
/*
 * The split-and-chain loop every front end uses to turn one request into
 * bios; see blk_lib.h.
 */
#include <config.h>

#include <errno.h>

#include "core/blk_lib.h"
#include "core/page.h"

void bio_chain_and_submit(struct bio *parent, struct bio *child)
{
	bio_chain(child, parent);
	submit_bio(child);
}

struct bio *blk_alloc_data_bio(struct bio_set *bs, struct blk_queue *q,
			       blk_opf_t opf, uint64_t off, uint32_t size)
{
	struct bio *bio;

	bio = bio_alloc_bioset(BLK_GFP_NOWAIT, DIV_ROUND_UP(size, PAGE_SIZE), bs);
	if (!bio)
		return NULL;
	if (bio_prep_pages(bio, size) || bio_alloc_pages(bio, BLK_GFP_NOWAIT)) {
		bio_put(bio);
		return NULL;
	}
	bio->bi_opf = opf;
	bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
	bio->bi_queue = q;
	return bio;
}

int blk_alloc_data_bios(struct bio_set *bs, struct blk_queue *q, blk_opf_t opf,
			uint64_t off, uint64_t len, struct bio **bios,
			unsigned int max)
{
	unsigned int n = 0, i;

	if (DIV_ROUND_UP(len, BIO_DATA_MAX_BYTES) > max)
		return -E2BIG;
	while (len) {
		uint32_t size = len > BIO_DATA_MAX_BYTES ? BIO_DATA_MAX_BYTES : (uint32_t)len;
		struct bio *bio = blk_alloc_data_bio(bs, q, opf, off, size);

		if (!bio) {
			for (i = 0; i < n; i++)
				bio_put(bios[i]);
			return -ENOMEM;
		}
		bios[n++] = bio;
		off += size;
		len -= size;
	}
	return (int)n;
}

int blk_submit_nodata(struct bio *parent, struct bio_set *bs,
		      struct blk_queue *q, blk_opf_t opf, uint64_t off,
		      uint64_t len)
{
	if ((opf & REQ_OP_MASK) == REQ_OP_FLUSH)
		off = len = 0;
	do {
		uint32_t n = len > BIO_NODATA_MAX_BYTES ? BIO_NODATA_MAX_BYTES : (uint32_t)len;
		struct bio *bio = bio_alloc_bioset(BLK_GFP_NOWAIT, 0, bs);

		/* The bio_set's reserve makes this rare. */
		if (!bio)
			return -ENOMEM;
		bio->bi_opf = opf;
		bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
		bio->bi_iter.bi_size = n;
		bio->bi_queue = q;
		bio_chain_and_submit(parent, bio);
		off += n;
		len -= n;
	} while (len);
	return 0;
}
