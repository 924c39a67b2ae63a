// SPDX-License-Identifier: MIT
/*
 * daemon/fuse_pages.c: a read-modify-write's copy of its payload and of
 * its edge blocks' bytes into the pages it writes, and a READ reply's
 * iovecs, on page bios whose pages lie anywhere in memory, checked against
 * a flat-buffer model.  Blocks of 512 bytes to 64 KiB: those over 4 KiB
 * span pages, and a write's blocks may span two page bios.  The seed is
 * fixed so a failure reproduces.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/page.h"
#include "daemon/fuse_pages.h"
#include "daemon_suites.h"
#include "helpers.h"

#define RMW_SEED	0xf05eb10cull
#define RMW_ROUNDS	400
/* Page bios per write, as the front end splits them. */
#define MAX_BIOS	3

/* Page bios over @size bytes, in pages of their own, not adjacent. */
struct pages {
	unsigned int nr;
	struct bio *bio[MAX_BIOS];
};

/* A page bio of @size bytes (a multiple of 4 KiB unless it is the last). */
static struct bio *page_bio(uint32_t size)
{
	struct bio *b = bio_kmalloc(BLK_GFP_WAIT, DIV_ROUND_UP(size, PAGE_SIZE));

	ck_assert_ptr_nonnull(b);
	while (size) {
		uint32_t n = size < PAGE_SIZE ? size : PAGE_SIZE;
		/* Two pages each, one used: no two are neighbours in memory. */
		char *p = aligned_alloc(PAGE_SIZE, 2 * PAGE_SIZE);

		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(bio_add_page(b, p, n, 0), n);
		size -= n;
	}
	return b;
}

/* @total bytes in bios of at most @per bytes each, filled from @model. */
static void pages_make(struct pages *pg, const unsigned char *model,
		       uint32_t total, uint32_t per)
{
	uint32_t done = 0;

	pg->nr = 0;
	while (done < total) {
		uint32_t n = total - done < per ? total - done : per;
		struct bio *b = page_bio(n);

		ck_assert_uint_lt(pg->nr, MAX_BIOS);
		ck_assert_uint_eq(bio_copy_from_buf(b, model + done, n), n);
		pg->bio[pg->nr++] = b;
		done += n;
	}
}

static void bio_free_test(struct bio *b)
{
	unsigned int k;

	for (k = 0; k < b->bi_vcnt; k++)
		free(b->bi_io_vec[k].bv_page);
	bio_put(b);
}

static void pages_free(struct pages *pg)
{
	unsigned int i;

	for (i = 0; i < pg->nr; i++)
		bio_free_test(pg->bio[i]);
}

/* The bytes of @pg, flat. */
static void pages_read(const struct pages *pg, unsigned char *out)
{
	unsigned int i;

	for (i = 0; i < pg->nr; i++)
		out += bio_copy_to_buf(pg->bio[i], out, pg->bio[i]->bi_iter.bi_size);
}

/* One write of [@pay_start, @pay_end) into @total bytes of @block-sized blocks. */
struct rmw_case {
	uint32_t block, total, pay_start, pay_end, per;
};

/*
 * What the front end does, against the model: the payload copied in, the
 * edge blocks read from "disk" and merged; the result must be the disk's
 * blocks with the payload in place.
 */
static void check_rmw(struct rng *r, const struct rmw_case *c, int round)
{
	uint32_t len = c->pay_end - c->pay_start, tail_off = c->total - c->block;
	unsigned char *disk = malloc(c->total), *want = malloc(c->total);
	unsigned char *got = malloc(c->total), *pay = malloc(len);
	bool head = c->pay_start % c->block, tail = c->pay_end % c->block;
	struct bio *src, *hb = NULL, *tb = NULL;
	struct pages dst;

	rng_fill(r, disk, c->total);
	rng_fill(r, pay, len);
	memcpy(want, disk, c->total);
	memcpy(want + c->pay_start, pay, len);
	/* The write's pages start as garbage: every byte must be put there. */
	memset(got, 0xa5, c->total);
	pages_make(&dst, got, c->total, c->per);

	src = page_bio(len);
	bio_copy_from_buf(src, pay, len);
	fuse_rmw_copy_in(dst.bio, dst.nr, c->pay_start, src, 0, len);
	if (head) {
		hb = page_bio(c->block);
		bio_copy_from_buf(hb, disk, c->block);
	}
	if (tail && head && c->total == c->block) {
		tb = hb;
	} else if (tail) {
		tb = page_bio(c->block);
		bio_copy_from_buf(tb, disk + tail_off, c->block);
	}
	fuse_rmw_merge_edges(dst.bio, dst.nr, hb, tb, c->pay_start, c->pay_end,
			     c->total, c->block);
	pages_read(&dst, got);
	ck_assert_msg(!memcmp(got, want, c->total),
		      "round %d: block %u total %u payload [%u, %u) differs",
		      round, c->block, c->total, c->pay_start, c->pay_end);

	if (tb && tb != hb)
		bio_free_test(tb);
	if (hb)
		bio_free_test(hb);
	bio_free_test(src);
	pages_free(&dst);
	free(disk);
	free(want);
	free(got);
	free(pay);
}

/* The cases that matter, by hand: head, tail, both in one block, both apart. */
START_TEST(test_rmw_edges)
{
	static const struct rmw_case cases[] = {
		{ 4096, 4096, 100, 4096, 1u << 20 },		/* head only */
		{ 4096, 4096, 0, 100, 1u << 20 },		/* tail only */
		{ 4096, 4096, 100, 200, 1u << 20 },		/* one block, both */
		{ 512, 1024, 1, 1023, 1u << 20 },		/* two sectors */
		{ 16384, 16384, 5000, 9000, 1u << 20 },		/* one block over pages */
		{ 16384, 49152, 5000, 40000, 1u << 20 },	/* three, edges span pages */
		{ 65536, 196608, 7000, 140000, 65536 },		/* a bio per block */
		{ 16384, 49152, 4096, 45056, 20480 },		/* page-aligned, bios mid-block */
	};
	struct rng r;
	unsigned int i;

	rng_seed(&r, RMW_SEED);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_rmw(&r, &cases[i], (int)i);
}
END_TEST

/* Random block sizes, offsets and lengths, as FUSE sends them. */
START_TEST(test_rmw_random)
{
	struct rng r;
	int round;

	rng_seed(&r, RMW_SEED + 1);
	for (round = 0; round < RMW_ROUNDS; round++) {
		struct rmw_case c;
		uint32_t off, len;

		c.block = 512u << rng_range(&r, 0, 7);
		off = rng_range(&r, 0, 4 * c.block);
		len = rng_range(&r, 1, 3 * c.block + 5000);
		c.pay_start = off % c.block;
		c.pay_end = c.pay_start + len;
		c.total = DIV_ROUND_UP(c.pay_end, c.block) * c.block;
		if (c.pay_start % c.block == 0 && c.pay_end % c.block == 0)
			c.pay_end--;	/* whole blocks are no RMW */
		/* Page bios of at most BIO_MAX_VECS pages, or smaller to cross them. */
		c.per = rng_range(&r, 0, 1) ? 1u << 20 : PAGE_SIZE * rng_range(&r, 1, 8);
		if (DIV_ROUND_UP(c.total, c.per) > MAX_BIOS)
			c.per = DIV_ROUND_UP(DIV_ROUND_UP(c.total, MAX_BIOS), PAGE_SIZE) * PAGE_SIZE;
		check_rmw(&r, &c, round);
	}
}
END_TEST

/* A READ reply: the asked bytes, in order; adjacent pages as one iovec. */
START_TEST(test_read_iov)
{
	struct iovec iov[MAX_BIOS * BIO_MAX_VECS];
	unsigned char *model = malloc(40000), *got = malloc(40000);
	struct bio *one;
	struct pages pg;
	struct rng r;
	size_t pos;
	int n, k;

	rng_seed(&r, RMW_SEED + 2);
	rng_fill(&r, model, 40000);
	pages_make(&pg, model, 40000, 16384);
	n = fuse_read_iov(pg.bio, pg.nr, 5000, 30000, iov);
	for (k = 0, pos = 0; k < n; k++) {
		memcpy(got + pos, iov[k].iov_base, iov[k].iov_len);
		pos += iov[k].iov_len;
	}
	ck_assert_uint_eq(pos, 30000);
	ck_assert(!memcmp(got, model + 5000, 30000));
	/* Pages apart in memory: one iovec per page touched. */
	ck_assert_int_eq(n, 8);
	pages_free(&pg);

	/* One segment over contiguous memory: one iovec. */
	one = bio_kmalloc(BLK_GFP_WAIT, 1);
	bio_add_page(one, model, 40000, 0);
	n = fuse_read_iov(&one, 1, 7, 100, iov);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_eq(iov[0].iov_base, model + 7);
	ck_assert_uint_eq(iov[0].iov_len, 100);
	bio_put(one);
	free(model);
	free(got);
}
END_TEST

Suite *fuse_rmw_suite(void)
{
	Suite *s = suite_create("fuse_rmw");
	TCase *tc = tcase_create("fuse_rmw");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_rmw_edges);
	tcase_add_test(tc, test_rmw_random);
	tcase_add_test(tc, test_read_iov);
	suite_add_tcase(s, tc);
	return s;
}
