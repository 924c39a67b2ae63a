// SPDX-License-Identifier: MIT
/* bio_sets, bio allocation, pages, iterators and references (core/bio.h). */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/kmem.h"
#include "core/page.h"
#include "helpers.h"
#include "suites.h"

/* A caller's per-I/O state with the bio at its end. */
struct my_io {
	uint64_t magic;
	unsigned int id;
	char tag[20];
	struct bio bio;
};

#define MY_MAGIC	0x6d795f696f5f3432ull

static const unsigned int nr_vecs_list[] = { 0, 1, 4, 5, 16, 64, 256 };

static struct pgalloc_stats stats(struct pgalloc *pa)
{
	struct pgalloc_stats st;

	pgalloc_get_stats(pa, &st);
	return st;
}

static bool in_allocator(struct pgalloc *pa, void *p)
{
	return pgalloc_arena_of(pa, p) >= 0 && ((uintptr_t)p & (PAGE_SIZE - 1)) == 0;
}

START_TEST(test_bioset_front_pad)
{
	const unsigned int pad = BIO_FRONT_PAD(struct my_io, bio);
	struct bio *bios[4];
	struct bio_set bs;

	ck_assert_int_eq(bioset_init(&bs, 4, pad, 0, NULL), 0);
	ck_assert_uint_eq(bs.front_pad, pad);
	for (unsigned int i = 0; i < 4; i++) {
		struct my_io *io;

		bios[i] = bio_alloc_bioset(i & 1 ? BLK_GFP_WAIT : BLK_GFP_NOWAIT, 1, &bs);
		ck_assert_ptr_nonnull(bios[i]);
		ck_assert_ptr_eq(bios[i]->bi_pool, &bs);
		io = bio_pad_obj(bios[i], struct my_io, bio);
		ck_assert_ptr_eq(&io->bio, bios[i]);
		/* The pad is the caller's: write all of it. */
		memset(io, 0x5c, pad);
		io->magic = MY_MAGIC;
		io->id = i;
		snprintf(io->tag, sizeof(io->tag), "io-%u", i);
		/* Writing the pad does not touch the bio. */
		ck_assert_ptr_eq(bios[i]->bi_pool, &bs);
		ck_assert_uint_ge(bios[i]->bi_max_vecs, 1);
		ck_assert_uint_eq(bios[i]->bi_vcnt, 0);
		ck_assert_int_eq(atomic_load(&bios[i]->__bi_cnt), 1);
	}
	for (unsigned int i = 0; i < 4; i++) {
		struct my_io *io = bio_pad_obj(bios[i], struct my_io, bio);
		char want[20];

		/* Distinct per bio, and intact after the others were written. */
		for (unsigned int j = 0; j < i; j++)
			ck_assert_ptr_ne(bio_pad_obj(bios[j], struct my_io, bio), io);
		snprintf(want, sizeof(want), "io-%u", i);
		ck_assert_uint_eq(io->magic, MY_MAGIC);
		ck_assert_uint_eq(io->id, i);
		ck_assert_str_eq(io->tag, want);
		/* The bio is usable: a segment goes in and is read back. */
		ck_assert_uint_eq(bio_add_page(bios[i], io->tag, 8, 0), 8);
		ck_assert_ptr_eq(bios[i]->bi_io_vec[0].bv_page, io->tag);
	}
	for (unsigned int i = 0; i < 4; i++)
		bio_put(bios[i]);
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 4);
	bioset_exit(&bs);

	/* A pad that would misalign the bio is refused. */
	ck_assert_int_eq(bioset_init(&bs, 1, 3, 0, NULL), -EINVAL);
	ck_assert_int_eq(bioset_init(&bs, 1, 12, 0, NULL), -EINVAL);
	/* No pad at all is fine. */
	ck_assert_int_eq(bioset_init(&bs, 1, 0, BIOSET_NEED_BVECS, NULL), 0);
	bios[0] = bio_alloc_bioset(BLK_GFP_WAIT, 1, &bs);
	ck_assert_ptr_nonnull(bios[0]);
	bio_put(bios[0]);
	bioset_exit(&bs);
}
END_TEST

/* Two front ends' states, of different sizes, in one bio_set's pad. */
struct small_io {
	uint64_t magic;
	struct bio bio;
};

struct large_io {
	char state[400];
	struct bio bio;
};

/*
 * A bio_set sized for the larger of two front ends' structs: the smaller
 * one's state must still be found by container_of(), not by subtracting
 * the bio_set's front_pad (what NBD once did, correct only while its
 * struct was the larger).
 */
START_TEST(test_bioset_shared_front_pad)
{
	unsigned int small = BIO_FRONT_PAD(struct small_io, bio);
	unsigned int large = BIO_FRONT_PAD(struct large_io, bio);
	struct bio *a, *b;
	struct small_io *s;
	struct large_io *l;
	struct bio_set bs;

	ck_assert_uint_lt(small, large);
	ck_assert_int_eq(bioset_init(&bs, 2, large, 0, NULL), 0);
	a = bio_alloc_bioset(BLK_GFP_WAIT, 1, &bs);
	b = bio_alloc_bioset(BLK_GFP_WAIT, 1, &bs);
	s = bio_pad_obj(a, struct small_io, bio);
	l = bio_pad_obj(b, struct large_io, bio);
	ck_assert_ptr_eq(&s->bio, a);
	ck_assert_ptr_eq(&l->bio, b);
	/* The old arithmetic lands elsewhere for the smaller struct. */
	ck_assert_ptr_ne((char *)a - bs.front_pad, (char *)s);
	/* Both lie inside their bio's pad: writing them touches no bio. */
	ck_assert((char *)s >= (char *)a - bs.front_pad);
	ck_assert_ptr_eq((char *)l, (char *)b - bs.front_pad);
	s->magic = MY_MAGIC;
	memset(l->state, 0xa5, sizeof(l->state));
	ck_assert_ptr_eq(a->bi_pool, &bs);
	ck_assert_ptr_eq(b->bi_pool, &bs);
	ck_assert_int_eq(atomic_load(&a->__bi_cnt), 1);
	ck_assert_int_eq(atomic_load(&b->__bi_cnt), 1);
	ck_assert_uint_eq(bio_pad_obj(a, struct small_io, bio)->magic, MY_MAGIC);
	bio_put(a);
	bio_put(b);
	bioset_exit(&bs);
}
END_TEST

static void check_max_vecs(struct bio_set *bs, const char *what)
{
	static char buf[BIO_MAX_VECS * 8];

	for (size_t i = 0; i < ARRAY_SIZE(nr_vecs_list); i++) {
		unsigned int nr = nr_vecs_list[i];
		struct bio *bio = bio_alloc_bioset(BLK_GFP_WAIT, nr, bs);

		ck_assert_msg(bio != NULL, "%s: nr_vecs %u: NULL", what, nr);
		ck_assert_msg(bio->bi_max_vecs >= nr, "%s: nr_vecs %u: bi_max_vecs %u",
			      what, nr, bio->bi_max_vecs);
		ck_assert_uint_le(bio->bi_max_vecs, BIO_MAX_VECS);
		ck_assert_ptr_eq(bio->bi_pool, bs);
		ck_assert_uint_eq(bio->bi_vcnt, 0);
		ck_assert_uint_eq(bio->bi_iter.bi_size, 0);
		ck_assert_uint_eq(bio->bi_iter.bi_idx, 0);
		ck_assert_uint_eq(bio->bi_iter.bi_bvec_done, 0);
		ck_assert_int_eq(bio->bi_status, 0);
		ck_assert_ptr_null(bio->bi_next);
		ck_assert_ptr_null(bio->bi_end_io);
		ck_assert_int_eq(atomic_load(&bio->__bi_cnt), 1);
		/* All nr_vecs bvecs really fit. */
		for (unsigned int v = 0; v < nr; v++)
			ck_assert_uint_eq(bio_add_page(bio, buf + v * 8, 8, 0), 8);
		for (unsigned int v = 0; v < nr; v++) {
			ck_assert_ptr_eq(bio->bi_io_vec[v].bv_page, buf + v * 8);
			ck_assert_uint_eq(bio->bi_io_vec[v].bv_len, 8);
		}
		ck_assert_uint_eq(bio->bi_vcnt, nr);
		ck_assert_uint_eq(bio->bi_iter.bi_size, nr * 8);
		bio_put(bio);
	}
}

START_TEST(test_bio_max_vecs)
{
	struct bio_set bs, plain;

	ck_assert_int_eq(bioset_init(&bs, 2, 0, BIOSET_NEED_BVECS, NULL), 0);
	ck_assert_int_eq(bioset_init(&plain, 2, 16, 0, NULL), 0);
	check_max_vecs(&bs, "bioset");
	check_max_vecs(&plain, "bioset without bvec reserve");
	check_max_vecs(NULL, "kmalloc");
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 2);
	ck_assert_int_eq(mempool_reserve_count(&bs.bvec_pool), 2);
	bioset_exit(&plain);
	bioset_exit(&bs);
}
END_TEST

START_TEST(test_bio_too_many_vecs)
{
	struct bio_set bs;

	ck_assert_int_eq(bioset_init(&bs, 2, 0, BIOSET_NEED_BVECS, NULL), 0);
	ck_assert_ptr_null(bio_alloc_bioset(BLK_GFP_WAIT, BIO_MAX_VECS + 1, &bs));
	ck_assert_ptr_null(bio_alloc_bioset(BLK_GFP_NOWAIT, BIO_MAX_VECS + 1, &bs));
	ck_assert_ptr_null(bio_alloc_bioset(BLK_GFP_WAIT, 100000, &bs));
	ck_assert_ptr_null(bio_alloc_bioset(BLK_GFP_WAIT, BIO_MAX_VECS + 1, NULL));
	ck_assert_ptr_null(bio_kmalloc(BLK_GFP_NOWAIT, UINT_MAX));
	/* Nothing was taken from the reserves. */
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 2);
	ck_assert_int_eq(mempool_reserve_count(&bs.bvec_pool), 2);
	bioset_exit(&bs);
}
END_TEST

START_TEST(test_bio_add_page_until_full)
{
	static char buf[64 * 1024];
	struct bio_set bs;
	struct bio *bios[2];

	ck_assert_int_eq(bioset_init(&bs, 1, 0, BIOSET_NEED_BVECS, NULL), 0);
	bios[0] = bio_kmalloc(BLK_GFP_WAIT, 5);
	bios[1] = bio_alloc_bioset(BLK_GFP_WAIT, 5, &bs);
	for (int b = 0; b < 2; b++) {
		struct bio *bio = bios[b];
		unsigned int n = 0;

		ck_assert_ptr_nonnull(bio);
		/* Zero-length segments are refused. */
		ck_assert_uint_eq(bio_add_page(bio, buf, 0, 0), 0);
		/* Odd lengths and offsets, any address. */
		while (bio_add_page(bio, buf, 100 + n, 7 * n) == 100 + n) {
			ck_assert_uint_eq(bio->bi_vcnt, n + 1);
			n++;
			ck_assert_uint_le(n, BIO_MAX_VECS);
		}
		ck_assert_uint_eq(n, bio->bi_max_vecs);
		ck_assert_uint_ge(n, 5);
		ck_assert_uint_eq(bio->bi_vcnt, n);
		ck_assert_uint_eq(bio->bi_iter.bi_size, 100 * n + n * (n - 1) / 2);
		for (unsigned int i = 0; i < n; i++) {
			ck_assert_uint_eq(bio->bi_io_vec[i].bv_len, 100 + i);
			ck_assert_uint_eq(bio->bi_io_vec[i].bv_offset, 7 * i);
		}
		/* Full: still 0, nothing changes. */
		ck_assert_uint_eq(bio_add_page(bio, buf, 1, 0), 0);
		ck_assert_uint_eq(bio->bi_vcnt, n);
		ck_assert_uint_eq(bio->bi_iter.bi_size, 100 * n + n * (n - 1) / 2);
		bio_put(bio);
	}

	/* bi_size would overflow: refused, not truncated. */
	bios[0] = bio_kmalloc(BLK_GFP_WAIT, 3);
	ck_assert_ptr_nonnull(bios[0]);
	ck_assert_uint_eq(bio_add_page(bios[0], buf, 100, 0), 100);
	ck_assert_uint_eq(bio_add_page(bios[0], buf, UINT_MAX - 99, 0), 0);
	ck_assert_uint_eq(bios[0]->bi_iter.bi_size, 100);
	ck_assert_uint_eq(bios[0]->bi_vcnt, 1);
	ck_assert_uint_eq(bio_add_page(bios[0], buf, UINT_MAX - 100, 0), UINT_MAX - 100);
	ck_assert_uint_eq(bios[0]->bi_iter.bi_size, UINT_MAX);
	/* A clone shares a table it does not own: no adding. */
	bios[1] = bio_alloc_clone(bios[0], BLK_GFP_WAIT, &bs);
	ck_assert_ptr_nonnull(bios[1]);
	ck_assert_uint_eq(bio_add_page(bios[1], buf, 1, 0), 0);
	bio_put(bios[1]);
	bio_put(bios[0]);
	bioset_exit(&bs);
}
END_TEST

START_TEST(test_bio_prep_pages)
{
	struct bio *bio = bio_kmalloc(BLK_GFP_WAIT, 3);
	char buf[8];
	unsigned int max;

	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(bio_prep_pages(bio, 10000), 0);
	ck_assert_uint_eq(bio->bi_vcnt, 3);
	ck_assert_uint_eq(bio->bi_iter.bi_size, 10000);
	ck_assert_uint_eq(bio->bi_io_vec[0].bv_len, PAGE_SIZE);
	ck_assert_uint_eq(bio->bi_io_vec[1].bv_len, PAGE_SIZE);
	ck_assert_uint_eq(bio->bi_io_vec[2].bv_len, 10000 - 2 * PAGE_SIZE);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_null(bio->bi_io_vec[i].bv_page);
		ck_assert_uint_eq(bio->bi_io_vec[i].bv_offset, 0);
	}
	/* Not empty any more. */
	ck_assert_int_eq(bio_prep_pages(bio, 4096), -EINVAL);
	bio_put(bio);

	bio = bio_kmalloc(BLK_GFP_WAIT, 2);
	ck_assert_ptr_nonnull(bio);
	max = bio->bi_max_vecs;
	/* One byte more than the table holds. */
	ck_assert_int_eq(bio_prep_pages(bio, max * PAGE_SIZE + 1), -EINVAL);
	ck_assert_uint_eq(bio->bi_vcnt, 0);
	ck_assert_uint_eq(bio->bi_iter.bi_size, 0);
	ck_assert_int_eq(bio_prep_pages(bio, max * PAGE_SIZE), 0);
	ck_assert_uint_eq(bio->bi_vcnt, max);
	ck_assert_uint_eq(bio->bi_io_vec[max - 1].bv_len, PAGE_SIZE);
	bio_put(bio);

	/* A bio with a segment added is not empty either. */
	bio = bio_kmalloc(BLK_GFP_WAIT, 4);
	ck_assert_ptr_nonnull(bio);
	ck_assert_uint_eq(bio_add_page(bio, buf, 8, 0), 8);
	ck_assert_int_eq(bio_prep_pages(bio, 4096), -EINVAL);
	ck_assert_uint_eq(bio->bi_vcnt, 1);
	ck_assert_ptr_eq(bio->bi_io_vec[0].bv_page, buf);
	bio_put(bio);
}
END_TEST

START_TEST(test_bio_alloc_pages)
{
	struct pgalloc *pa = pgalloc_create(64 * 1024, 0, 0);
	struct pgalloc_stats st;
	struct bio_set bs, none;
	struct bio *bio;
	void *one;

	ck_assert_ptr_nonnull(pa);
	ck_assert_int_eq(bioset_init(&bs, 2, 0, BIOSET_NEED_BVECS, pa), 0);

	bio = bio_alloc_bioset(BLK_GFP_WAIT, 16, &bs);
	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(bio_prep_pages(bio, 16 * PAGE_SIZE - 512), 0);
	ck_assert_int_eq(bio_alloc_pages(bio, BLK_GFP_NOWAIT), 0);
	ck_assert(bio_flagged(bio, BIO_PAGES_OWNED));
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, 0);
	ck_assert_uint_eq(st.allocs, 16);
	for (unsigned int i = 0; i < 16; i++) {
		void *p = bio->bi_io_vec[i].bv_page;

		ck_assert_msg(in_allocator(pa, p), "bvec %u: %p", i, p);
		for (unsigned int j = 0; j < i; j++)
			ck_assert_ptr_ne(bio->bi_io_vec[j].bv_page, p);
		memset(p, (int)i, bio->bi_io_vec[i].bv_len);
	}
	/* Layout unchanged. */
	ck_assert_uint_eq(bio->bi_iter.bi_size, 16 * PAGE_SIZE - 512);
	ck_assert_uint_eq(bio->bi_io_vec[15].bv_len, PAGE_SIZE - 512);

	bio_free_pages(bio);
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, 16);
	ck_assert_uint_eq(st.frees, 16);

	/* Again, and this time bio_put() frees them. */
	ck_assert_int_eq(bio_alloc_pages(bio, BLK_GFP_WAIT), 0);
	ck_assert_uint_eq(stats(pa).free_pages, 0);
	bio_put(bio);
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, 16);
	ck_assert_uint_eq(st.allocs, st.frees);

	/* More than is free, NOWAIT: -ENOMEM and nothing kept. */
	bio = bio_alloc_bioset(BLK_GFP_WAIT, 16, &bs);
	ck_assert_ptr_nonnull(bio);
	one = page_alloc(pa, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(one);
	ck_assert_int_eq(bio_prep_pages(bio, 16 * PAGE_SIZE), 0);
	ck_assert_int_eq(bio_alloc_pages(bio, BLK_GFP_NOWAIT), -ENOMEM);
	ck_assert(!bio_flagged(bio, BIO_PAGES_OWNED));
	ck_assert_uint_eq(stats(pa).free_pages, 15);
	for (unsigned int i = 0; i < 16; i++)
		ck_assert_ptr_null(bio->bi_io_vec[i].bv_page);
	bio_put(bio);
	ck_assert_uint_eq(stats(pa).free_pages, 15);

	/* No allocator named: a kmalloc'ed bio, or a set without one. */
	bio = bio_kmalloc(BLK_GFP_WAIT, 1);
	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(bio_prep_pages(bio, PAGE_SIZE), 0);
	ck_assert_int_eq(bio_alloc_pages(bio, BLK_GFP_WAIT), -ENOMEM);
	bio_put(bio);
	ck_assert_int_eq(bioset_init(&none, 1, 0, 0, NULL), 0);
	bio = bio_alloc_bioset(BLK_GFP_WAIT, 1, &none);
	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(bio_prep_pages(bio, PAGE_SIZE), 0);
	ck_assert_int_eq(bio_alloc_pages(bio, BLK_GFP_WAIT), -ENOMEM);
	bio_put(bio);
	bioset_exit(&none);
	ck_assert_uint_eq(stats(pa).free_pages, 15);

	bioset_exit(&bs);
	page_free(pa, one);
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, 16);
	ck_assert_uint_eq(st.allocs, st.frees);
	pgalloc_destroy(pa);
}
END_TEST

/* Pages the caller got from the allocator become the bio's, freed with it. */
START_TEST(test_bio_adopt_pages)
{
	struct pgalloc *pa = pgalloc_create(64 * 1024, 0, 0);
	struct bio_set bs;
	struct bio *bio;
	void *pages[16];

	ck_assert_ptr_nonnull(pa);
	ck_assert_int_eq(bioset_init(&bs, 2, 0, BIOSET_NEED_BVECS, pa), 0);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 16, pages), 16);

	bio = bio_alloc_bioset(BLK_GFP_WAIT, 16, &bs);
	ck_assert_ptr_nonnull(bio);
	/* Page count and size disagree, or nothing at all: nothing taken. */
	ck_assert_int_eq(bio_adopt_pages(bio, pages, 16, 15 * PAGE_SIZE), -EINVAL);
	ck_assert_int_eq(bio_adopt_pages(bio, pages, 0, 0), -EINVAL);
	ck_assert_uint_eq(bio->bi_vcnt, 0);
	ck_assert(!bio_flagged(bio, BIO_PAGES_OWNED));

	ck_assert_int_eq(bio_adopt_pages(bio, pages, 16, 16 * PAGE_SIZE - 512), 0);
	ck_assert(bio_flagged(bio, BIO_PAGES_OWNED));
	ck_assert_uint_eq(bio->bi_vcnt, 16);
	ck_assert_uint_eq(bio->bi_iter.bi_size, 16 * PAGE_SIZE - 512);
	ck_assert_uint_eq(bio->bi_io_vec[15].bv_len, PAGE_SIZE - 512);
	for (unsigned int i = 0; i < 16; i++) {
		ck_assert_ptr_eq(bio->bi_io_vec[i].bv_page, pages[i]);
		ck_assert_uint_eq(bio->bi_io_vec[i].bv_offset, 0);
	}
	/* A bio that owns pages takes no more. */
	ck_assert_int_eq(bio_adopt_pages(bio, pages, 1, PAGE_SIZE), -EINVAL);
	ck_assert_uint_eq(stats(pa).free_pages, 0);

	bio_put(bio);
	ck_assert_uint_eq(stats(pa).free_pages, 16);
	ck_assert_uint_eq(stats(pa).allocs, stats(pa).frees);
	bioset_exit(&bs);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_bio_alloc_pages_fail_at_k)
{
	struct pgalloc *pa = pgalloc_create(64 * 1024, 0, 0);
	struct pgalloc_stats before, after;
	struct bio_set bs;

	ck_assert_ptr_nonnull(pa);
	ck_assert_int_eq(bioset_init(&bs, 2, 0, BIOSET_NEED_BVECS, pa), 0);
	for (unsigned int k = 0; k < 16; k++) {
		struct bio *bio = bio_alloc_bioset(BLK_GFP_WAIT, 16, &bs);
		blk_gfp_t gfp = k & 1 ? BLK_GFP_WAIT : BLK_GFP_NOWAIT;

		ck_assert_ptr_nonnull(bio);
		ck_assert_int_eq(bio_prep_pages(bio, 16 * PAGE_SIZE), 0);
		before = stats(pa);
		fault_fail_nth(&fail_page_alloc, k + 1);
		ck_assert_msg(bio_alloc_pages(bio, gfp) == -ENOMEM,
			      "k=%u: failure at page k+1 not reported", k);
		fault_reset(&fail_page_alloc);
		after = stats(pa);
		ck_assert_msg(after.free_pages == before.free_pages,
			      "k=%u: free_pages %zu, was %zu", k, after.free_pages,
			      before.free_pages);
		ck_assert_msg(after.allocs - before.allocs == after.frees - before.frees,
			      "k=%u: allocs +%llu, frees +%llu", k,
			      (unsigned long long)(after.allocs - before.allocs),
			      (unsigned long long)(after.frees - before.frees));
		ck_assert_msg(after.allocs - before.allocs == k,
			      "k=%u: took %llu pages before failing", k,
			      (unsigned long long)(after.allocs - before.allocs));
		for (unsigned int i = 0; i < 16; i++)
			ck_assert_msg(bio->bi_io_vec[i].bv_page == NULL,
				      "k=%u: bvec %u not back to NULL", k, i);
		ck_assert(!bio_flagged(bio, BIO_PAGES_OWNED));
		ck_assert_uint_eq(bio->bi_vcnt, 16);

		/* Without the fault the same bio gets its pages. */
		ck_assert_int_eq(bio_alloc_pages(bio, gfp), 0);
		ck_assert_uint_eq(stats(pa).free_pages, 0);
		bio_put(bio);
		ck_assert_uint_eq(stats(pa).free_pages, 16);
	}
	after = stats(pa);
	ck_assert_uint_eq(after.allocs, after.frees);
	bioset_exit(&bs);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_bio_advance)
{
	static char buf[3][PAGE_SIZE];
	struct bio *bio = bio_kmalloc(BLK_GFP_WAIT, 3);
	struct bio *nd;

	ck_assert_ptr_nonnull(bio);
	bio->bi_opf = REQ_OP_WRITE;
	bio->bi_iter.bi_sector = 100;
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(bio_add_page(bio, buf[i], PAGE_SIZE, 0), PAGE_SIZE);

	bio_advance(bio, 0);
	ck_assert_uint_eq(bio->bi_iter.bi_sector, 100);
	ck_assert_uint_eq(bio->bi_iter.bi_size, 3 * PAGE_SIZE);

	bio_advance(bio, 1024);
	ck_assert_uint_eq(bio->bi_iter.bi_sector, 102);
	ck_assert_uint_eq(bio->bi_iter.bi_size, 3 * PAGE_SIZE - 1024);
	ck_assert_uint_eq(bio->bi_iter.bi_idx, 0);
	ck_assert_uint_eq(bio->bi_iter.bi_bvec_done, 1024);
	ck_assert_uint_eq(bio_sectors(bio), 22);
	ck_assert_uint_eq(bio_end_sector(bio), 124);

	bio_advance(bio, PAGE_SIZE);
	ck_assert_uint_eq(bio->bi_iter.bi_sector, 110);
	ck_assert_uint_eq(bio->bi_iter.bi_idx, 1);
	ck_assert_uint_eq(bio->bi_iter.bi_bvec_done, 1024);

	/* To the end of a bvec exactly: the next one starts. */
	bio_advance(bio, PAGE_SIZE - 1024);
	ck_assert_uint_eq(bio->bi_iter.bi_idx, 2);
	ck_assert_uint_eq(bio->bi_iter.bi_bvec_done, 0);
	ck_assert_uint_eq(bio->bi_iter.bi_sector, 116);

	bio_advance(bio, PAGE_SIZE);
	ck_assert_uint_eq(bio->bi_iter.bi_size, 0);
	ck_assert_uint_eq(bio->bi_iter.bi_sector, 124);
	/* The table itself never changes. */
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_eq(bio->bi_io_vec[i].bv_page, buf[i]);
		ck_assert_uint_eq(bio->bi_io_vec[i].bv_len, PAGE_SIZE);
		ck_assert_uint_eq(bio->bi_io_vec[i].bv_offset, 0);
	}
	bio_put(bio);

	/* A data-less op (discard): only the size and sector move. */
	nd = bio_kmalloc(BLK_GFP_WAIT, 0);
	ck_assert_ptr_nonnull(nd);
	nd->bi_opf = REQ_OP_DISCARD;
	nd->bi_iter.bi_sector = 8;
	nd->bi_iter.bi_size = 1 << 20;
	bio_advance(nd, 4096);
	ck_assert_uint_eq(nd->bi_iter.bi_sector, 16);
	ck_assert_uint_eq(nd->bi_iter.bi_size, (1 << 20) - 4096);
	bio_put(nd);
}
END_TEST

START_TEST(test_bio_get_put)
{
	struct bio_done done;
	struct bio_set bs;
	struct bio *bio;

	ck_assert_int_eq(bioset_init(&bs, 1, 0, 0, NULL), 0);
	fault_fail_always(&fail_kmalloc);	/* the reserve is all there is */
	bio = bio_alloc_bioset(BLK_GFP_NOWAIT, 1, &bs);
	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 0);
	ck_assert_ptr_null(bio_alloc_bioset(BLK_GFP_NOWAIT, 1, &bs));
	bio_done_init(&done, NULL);
	bio->bi_end_io = done_end_io;
	bio->bi_private = &done;

	ck_assert_int_eq(atomic_load(&bio->__bi_cnt), 1);
	bio_get(bio);
	bio_get(bio);
	ck_assert_int_eq(atomic_load(&bio->__bi_cnt), 3);
	bio_put(bio);
	bio_put(bio);
	/* Still referenced: not freed. */
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 0);
	ck_assert_int_eq(atomic_load(&bio->__bi_cnt), 1);
	bio_put(bio);
	/* The last put freed it back into the reserve, without ending it. */
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 1);
	ck_assert_int_eq(done_calls(&done), 0);

	/* And it can be allocated again. */
	bio = bio_alloc_bioset(BLK_GFP_NOWAIT, 1, &bs);
	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(atomic_load(&bio->__bi_cnt), 1);
	bio_put(bio);
	fault_reset(&fail_kmalloc);
	bioset_exit(&bs);
}
END_TEST

START_TEST(test_bio_reset)
{
	static char buf[2][512];
	struct bio_done done;
	struct bio_set bs;
	struct bio *bio, *other;
	struct bio_vec *table;
	unsigned short max;

	ck_assert_int_eq(bioset_init(&bs, 2, 0, BIOSET_NEED_BVECS, NULL), 0);
	for (unsigned int nr = 2; nr <= 32; nr += 30) {
		bio = bio_alloc_bioset(BLK_GFP_WAIT, nr, &bs);
		other = bio_kmalloc(BLK_GFP_WAIT, 0);
		ck_assert_ptr_nonnull(bio);
		ck_assert_ptr_nonnull(other);
		table = bio->bi_io_vec;
		max = bio->bi_max_vecs;
		bio_done_init(&done, NULL);
		bio->bi_opf = REQ_OP_READ | REQ_SYNC;
		bio->bi_iter.bi_sector = 77;
		ck_assert_uint_eq(bio_add_page(bio, buf[0], 512, 0), 512);
		ck_assert_uint_eq(bio_add_page(bio, buf[1], 512, 0), 512);
		bio_advance(bio, 512);
		bio->bi_status = -EIO;
		bio->bi_end_io = done_end_io;
		bio->bi_private = &done;
		bio->bi_next = other;
		bio_inc_remaining(bio);
		bio_get(bio);

		bio_reset(bio, REQ_OP_WRITE | REQ_FUA);
		ck_assert_uint_eq(bio->bi_opf, REQ_OP_WRITE | REQ_FUA);
		ck_assert_uint_eq(bio->bi_iter.bi_sector, 0);
		ck_assert_uint_eq(bio->bi_iter.bi_size, 0);
		ck_assert_uint_eq(bio->bi_iter.bi_idx, 0);
		ck_assert_uint_eq(bio->bi_iter.bi_bvec_done, 0);
		ck_assert_uint_eq(bio->bi_vcnt, 0);
		ck_assert_int_eq(bio->bi_status, 0);
		ck_assert_ptr_null(bio->bi_next);
		ck_assert_ptr_null(bio->bi_end_io);
		ck_assert_ptr_null(bio->bi_private);
		ck_assert(!bio_flagged(bio, BIO_CHAIN));
		ck_assert_int_eq(atomic_load(&bio->__bi_remaining), 1);
		/* Kept: the table, its size, the pool and the references. */
		ck_assert_ptr_eq(bio->bi_io_vec, table);
		ck_assert_uint_eq(bio->bi_max_vecs, max);
		ck_assert_ptr_eq(bio->bi_pool, &bs);
		ck_assert_int_eq(atomic_load(&bio->__bi_cnt), 2);

		/* Empty again: it can be filled and ended like a new one. */
		ck_assert_uint_eq(bio_add_page(bio, buf[1], 512, 0), 512);
		ck_assert_ptr_eq(bio->bi_io_vec[0].bv_page, buf[1]);
		bio->bi_end_io = done_end_io;
		bio->bi_private = &done;
		bio_endio(bio);
		ck_assert_int_eq(done_calls(&done), 1);
		ck_assert_int_eq(done_status(&done), 0);
		bio_put(bio);
		bio_put(bio);
		bio_put(other);
	}
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 2);
	bioset_exit(&bs);
}
END_TEST

/* Regression: bio_reset() used to forget (leak) the pages the bio owned. */
START_TEST(test_bio_reset_frees_pages)
{
	struct pgalloc *pa = pgalloc_create(64 * 1024, 0, 0);
	struct bio_set bs;
	struct bio *bio;

	ck_assert_ptr_nonnull(pa);
	ck_assert_int_eq(bioset_init(&bs, 2, 0, BIOSET_NEED_BVECS, pa), 0);
	bio = bio_alloc_bioset(BLK_GFP_WAIT, 16, &bs);
	ck_assert_int_eq(bio_prep_pages(bio, 16 * PAGE_SIZE), 0);
	ck_assert_int_eq(bio_alloc_pages(bio, BLK_GFP_NOWAIT), 0);
	ck_assert_uint_eq(stats(pa).free_pages, 0);

	/* Owning pages already: a second fill would lose the first. */
	ck_assert_int_eq(bio_alloc_pages(bio, BLK_GFP_NOWAIT), -EINVAL);
	ck_assert_uint_eq(stats(pa).free_pages, 0);

	bio_reset(bio, REQ_OP_READ);
	ck_assert_uint_eq(stats(pa).free_pages, 16);
	ck_assert(!bio_flagged(bio, BIO_PAGES_OWNED));
	bio_put(bio);
	ck_assert_uint_eq(stats(pa).free_pages, 16);
	ck_assert_uint_eq(stats(pa).allocs, stats(pa).frees);
	bioset_exit(&bs);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_zero_fill_bio)
{
	static unsigned char a[2000], b[4000], c[1000];
	struct bvec_iter saved;
	struct bio *bio = bio_kmalloc(BLK_GFP_WAIT, 3);

	ck_assert_ptr_nonnull(bio);
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	memset(c, 0xcc, sizeof(c));
	bio->bi_opf = REQ_OP_READ;
	/* [a+100, +1000) [b+1, +3000) [c+500, +500) */
	ck_assert_uint_eq(bio_add_page(bio, a, 1000, 100), 1000);
	ck_assert_uint_eq(bio_add_page(bio, b, 3000, 1), 3000);
	ck_assert_uint_eq(bio_add_page(bio, c, 500, 500), 500);
	bio_advance(bio, 1500);		/* into b, 500 bytes in */
	saved = bio->bi_iter;
	zero_fill_bio(bio);
	ck_assert_mem_eq(&saved, &bio->bi_iter, sizeof(saved));
	for (size_t i = 0; i < sizeof(a); i++)
		ck_assert_msg(a[i] == 0xaa, "a[%zu] touched (before the iterator)", i);
	for (size_t i = 0; i < sizeof(b); i++) {
		bool zero = i >= 501 && i < 3001;

		ck_assert_msg(b[i] == (zero ? 0 : 0xbb), "b[%zu] = %#x", i, b[i]);
	}
	for (size_t i = 0; i < sizeof(c); i++) {
		bool zero = i >= 500;

		ck_assert_msg(c[i] == (zero ? 0 : 0xcc), "c[%zu] = %#x", i, c[i]);
	}
	bio_put(bio);
}
END_TEST

START_TEST(test_bio_copy_buf)
{
	static unsigned char mem[3][3000], src[8000], dst[8000];
	const unsigned int lens[3] = { 1000, 2500, 1700 };
	const unsigned int total = 1000 + 2500 + 1700;
	struct bio *bio = bio_kmalloc(BLK_GFP_WAIT, 3);
	struct bvec_iter saved;
	struct rng r;
	size_t n;

	ck_assert_ptr_nonnull(bio);
	rng_seed(&r, 99);
	rng_fill(&r, src, sizeof(src));
	memset(mem, 0x77, sizeof(mem));
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(bio_add_page(bio, mem[i], lens[i], 13 * i + 3),
				  lens[i]);
	saved = bio->bi_iter;

	/* Into the bio: exactly min(len, size) bytes, in layout order. */
	n = bio_copy_from_buf(bio, src, sizeof(src));
	ck_assert_uint_eq(n, total);
	ck_assert_mem_eq(&saved, &bio->bi_iter, sizeof(saved));
	ck_assert_mem_eq(mem[0] + 3, src, 1000);
	ck_assert_mem_eq(mem[1] + 16, src + 1000, 2500);
	ck_assert_mem_eq(mem[2] + 29, src + 3500, 1700);
	ck_assert_uint_eq(mem[0][2], 0x77);
	ck_assert_uint_eq(mem[0][1003], 0x77);
	ck_assert_uint_eq(mem[1][15], 0x77);
	ck_assert_uint_eq(mem[1][2516], 0x77);
	ck_assert_uint_eq(mem[2][1729], 0x77);

	/* Out of it. */
	memset(dst, 0, sizeof(dst));
	n = bio_copy_to_buf(bio, dst, sizeof(dst));
	ck_assert_uint_eq(n, total);
	ck_assert_mem_eq(dst, src, total);
	ck_assert_uint_eq(dst[total], 0);
	ck_assert_mem_eq(&saved, &bio->bi_iter, sizeof(saved));

	/* Shorter buffers: only len bytes, ending inside a segment. */
	memset(dst, 0, sizeof(dst));
	n = bio_copy_to_buf(bio, dst, 1234);
	ck_assert_uint_eq(n, 1234);
	ck_assert_mem_eq(dst, src, 1234);
	ck_assert_uint_eq(dst[1234], 0);
	n = bio_copy_from_buf(bio, src + 4000, 1001);
	ck_assert_uint_eq(n, 1001);
	ck_assert_mem_eq(mem[0] + 3, src + 4000, 1000);
	ck_assert_uint_eq(mem[1][16], src[5000]);
	ck_assert_uint_eq(mem[1][17], src[1001]);
	ck_assert_uint_eq(bio_copy_to_buf(bio, dst, 0), 0);

	/* From the iterator, not the start of the table. */
	bio_advance(bio, 2000);
	memset(dst, 0, sizeof(dst));
	n = bio_copy_to_buf(bio, dst, sizeof(dst));
	ck_assert_uint_eq(n, total - 2000);
	ck_assert_mem_eq(dst, mem[1] + 16 + 1000, 1500);
	ck_assert_mem_eq(dst + 1500, mem[2] + 29, 1700);
	bio_put(bio);
}
END_TEST

struct bs_waiter {
	struct bio_set *bs;
	unsigned int nr_vecs;
	struct bio *got;
	atomic_bool done;
};

static void *bs_waiter_fn(void *arg)
{
	struct bs_waiter *w = arg;

	w->got = bio_alloc_bioset(BLK_GFP_WAIT, w->nr_vecs, w->bs);
	atomic_store(&w->done, true);
	return NULL;
}

static void wait_alloc_from_reserve(unsigned int nr_vecs)
{
	struct bs_waiter w = { .nr_vecs = nr_vecs };
	struct bio *held[2];
	struct bio_set bs;
	pthread_t t;

	ck_assert_int_eq(bioset_init(&bs, 2, 0, BIOSET_NEED_BVECS, NULL), 0);
	fault_fail_always(&fail_kmalloc);
	for (int i = 0; i < 2; i++) {
		held[i] = bio_alloc_bioset(BLK_GFP_WAIT, nr_vecs, &bs);
		ck_assert_ptr_nonnull(held[i]);
		ck_assert_uint_ge(held[i]->bi_max_vecs, nr_vecs);
	}
	ck_assert_ptr_null(bio_alloc_bioset(BLK_GFP_NOWAIT, nr_vecs, &bs));

	/* A third WAIT allocation sleeps until another thread puts one. */
	w.bs = &bs;
	atomic_init(&w.done, false);
	ck_assert_int_eq(pthread_create(&t, NULL, bs_waiter_fn, &w), 0);
	ck_assert_msg(wait_until(atomic_load(&bs.bio_pool.waits) +
				 atomic_load(&bs.bvec_pool.waits) >= 1, 5000),
		      "nr_vecs %u: the allocation never slept", nr_vecs);
	sleep_ms(10);
	ck_assert(!atomic_load(&w.done));
	bio_put(held[1]);
	ck_assert_wait(atomic_load(&w.done), 5000);
	pthread_join(t, NULL);
	ck_assert_ptr_nonnull(w.got);
	ck_assert_ptr_eq(w.got, held[1]);
	ck_assert_uint_ge(w.got->bi_max_vecs, nr_vecs);
	ck_assert_ptr_eq(w.got->bi_pool, &bs);
	bio_put(w.got);
	bio_put(held[0]);
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 2);
	ck_assert_int_eq(mempool_reserve_count(&bs.bvec_pool), 2);
	fault_reset(&fail_kmalloc);
	bioset_exit(&bs);
}

START_TEST(test_bio_wait_alloc_from_reserve)
{
	wait_alloc_from_reserve(1);
}
END_TEST

START_TEST(test_bio_wait_alloc_from_reserve_bvecs)
{
	/* Table from the bvec reserve too. */
	wait_alloc_from_reserve(64);
}
END_TEST

START_TEST(test_bio_kmalloc_failing)
{
	struct bio_set bs;
	struct bio *bio;

	ck_assert_int_eq(bioset_init(&bs, 1, 0, 0, NULL), 0);
	fault_fail_always(&fail_kmalloc);
	/* kmalloc'ed bios have no reserve: NULL even with WAIT. */
	ck_assert_ptr_null(bio_kmalloc(BLK_GFP_WAIT, 1));
	ck_assert_ptr_null(bio_kmalloc(BLK_GFP_NOWAIT, 0));
	ck_assert_ptr_null(bio_alloc_clone(&(struct bio){ 0 }, BLK_GFP_WAIT, NULL));
	/*
	 * Without BIOSET_NEED_BVECS a large table has no reserve; whatever
	 * happens, the bio reserve is not lost.
	 */
	bio = bio_alloc_bioset(BLK_GFP_NOWAIT, 16, &bs);
	if (bio) {
		ck_assert_uint_ge(bio->bi_max_vecs, 16);
		bio_put(bio);
	}
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 1);
	/* Inline vecs need nothing else. */
	bio = bio_alloc_bioset(BLK_GFP_WAIT, BIO_INLINE_VECS, &bs);
	ck_assert_ptr_nonnull(bio);
	ck_assert_uint_ge(bio->bi_max_vecs, BIO_INLINE_VECS);
	bio_put(bio);
	fault_reset(&fail_kmalloc);
	bioset_exit(&bs);
}
END_TEST

START_TEST(test_bioset_init_failure)
{
	struct bio_set bs;
	int ret;
	long k;

	/* Fail each kmalloc bioset_init makes in turn; none may leak (ASan). */
	for (k = 1; k < 64; k++) {
		fault_fail_nth(&fail_kmalloc, k);
		ret = bioset_init(&bs, 3, 64, BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER, NULL);
		fault_reset(&fail_kmalloc);
		if (!ret)
			break;
		ck_assert_int_eq(ret, -ENOMEM);
	}
	ck_assert_int_gt(k, 1);
	ck_assert_int_lt(k, 64);
	ck_assert(bs.rescue_running);
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 3);
	ck_assert_int_eq(mempool_reserve_count(&bs.bvec_pool), 3);
	bioset_exit(&bs);

	fault_fail_always(&fail_kmalloc);
	ck_assert_int_eq(bioset_init(&bs, 1, 0, 0, NULL), -ENOMEM);
	fault_reset(&fail_kmalloc);
}
END_TEST

START_TEST(test_bioset_rescuer_lifecycle)
{
	for (int i = 0; i < 20; i++) {
		struct bio_set bs;
		struct bio *bio;

		ck_assert_int_eq(bioset_init(&bs, 2, 8, BIOSET_NEED_RESCUER, NULL), 0);
		ck_assert(bs.rescue_running);
		ck_assert_uint_eq(atomic_load(&bs.rescued), 0);
		bio = bio_alloc_bioset(BLK_GFP_WAIT, 2, &bs);
		ck_assert_ptr_nonnull(bio);
		bio_put(bio);
		bioset_exit(&bs);
	}
}
END_TEST

START_TEST(test_bio_inline_helpers)
{
	static char buf[3][100];
	struct bio *b[3], *bio;
	struct bio_list l1, l2;
	struct bvec_iter it;
	struct bio_vec bv;

	for (int i = 0; i < 3; i++) {
		b[i] = bio_kmalloc(BLK_GFP_WAIT, 3);
		ck_assert_ptr_nonnull(b[i]);
	}
	bio_list_init(&l1);
	bio_list_init(&l2);
	ck_assert(bio_list_empty(&l1));
	ck_assert_ptr_null(bio_list_pop(&l1));
	bio_list_add(&l1, b[0]);
	bio_list_add(&l2, b[1]);
	bio_list_add(&l2, b[2]);
	bio_list_merge(&l1, &l2);
	ck_assert_uint_eq(bio_list_size(&l1), 3);
	for (int i = 0; i < 3; i++) {
		bio = bio_list_pop(&l1);
		ck_assert_ptr_eq(bio, b[i]);
		ck_assert_ptr_null(bio->bi_next);
	}
	ck_assert(bio_list_empty(&l1));
	ck_assert_ptr_null(l1.tail);

	bio = b[0];
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(bio_add_page(bio, buf[i], 100, 0), 100);
	it = bio->bi_iter;
	ck_assert(bvec_iter_advance(bio->bi_io_vec, &it, 150));
	bv = bvec_iter_bvec(bio->bi_io_vec, it);
	ck_assert_ptr_eq(bvec_virt(&bv), buf[1] + 50);
	ck_assert_uint_eq(bv.bv_len, 50);
	/* Clipped to bi_size. */
	it.bi_size = 20;
	bv = bvec_iter_bvec(bio->bi_io_vec, it);
	ck_assert_uint_eq(bv.bv_len, 20);
	it = bio->bi_iter;
	ck_assert(!bvec_iter_advance(bio->bi_io_vec, &it, 301));
	ck_assert_uint_eq(it.bi_size, 0);
	/* Within one segment, and to its very end. */
	it = bio->bi_iter;
	bvec_iter_advance_single(bio->bi_io_vec, &it, 60);
	ck_assert_uint_eq(it.bi_idx, 0);
	ck_assert_uint_eq(it.bi_bvec_done, 60);
	bvec_iter_advance_single(bio->bi_io_vec, &it, 40);
	ck_assert_uint_eq(it.bi_idx, 1);
	ck_assert_uint_eq(it.bi_bvec_done, 0);
	ck_assert_uint_eq(it.bi_size, 200);

	/* Ops, flags and gfp. */
	bio->bi_opf = REQ_OP_WRITE_ZEROES | REQ_NOUNMAP | REQ_SYNC;
	ck_assert_int_eq(bio_op(bio), REQ_OP_WRITE_ZEROES);
	ck_assert(op_is_write(REQ_OP_WRITE) && op_is_write(REQ_OP_DISCARD) &&
		  op_is_write(REQ_OP_WRITE_ZEROES));
	ck_assert(!op_is_write(REQ_OP_READ) && !op_is_write(REQ_OP_FLUSH));
	ck_assert(op_has_data(REQ_OP_READ) && op_has_data(REQ_OP_WRITE));
	ck_assert(!op_has_data(REQ_OP_DISCARD) && !op_has_data(REQ_OP_FLUSH) &&
		  !op_has_data(REQ_OP_WRITE_ZEROES));
	ck_assert(!bio_flagged(bio, BIO_CHAIN));
	bio_set_flag(bio, BIO_CHAIN);
	bio_set_flag(bio, BIO_CLONED);
	ck_assert(bio_flagged(bio, BIO_CHAIN) && bio_flagged(bio, BIO_CLONED));
	bio_clear_flag(bio, BIO_CHAIN);
	ck_assert(!bio_flagged(bio, BIO_CHAIN) && bio_flagged(bio, BIO_CLONED));
	bio_clear_flag(bio, BIO_CLONED);
	ck_assert(gfpflags_allow_blocking(BLK_GFP_WAIT | BLK_GFP_ZERO));
	ck_assert(!gfpflags_allow_blocking(BLK_GFP_NOWAIT | BLK_GFP_ZERO));
	ck_assert(IS_ERR(ERR_PTR(-ENOMEM)) && PTR_ERR(ERR_PTR(-EINVAL)) == -EINVAL);
	ck_assert(!IS_ERR(bio) && IS_ERR_OR_NULL(NULL));
	for (int i = 0; i < 3; i++)
		bio_put(b[i]);
}
END_TEST

Suite *bio_suite(void)
{
	Suite *s = suite_create("bio");
	TCase *tc = tcase_create("bio");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_bioset_front_pad);
	tcase_add_test(tc, test_bioset_shared_front_pad);
	tcase_add_test(tc, test_bio_max_vecs);
	tcase_add_test(tc, test_bio_too_many_vecs);
	tcase_add_test(tc, test_bio_add_page_until_full);
	tcase_add_test(tc, test_bio_prep_pages);
	tcase_add_test(tc, test_bio_alloc_pages);
	tcase_add_test(tc, test_bio_alloc_pages_fail_at_k);
	tcase_add_test(tc, test_bio_adopt_pages);
	tcase_add_test(tc, test_bio_advance);
	tcase_add_test(tc, test_bio_get_put);
	tcase_add_test(tc, test_bio_reset);
	tcase_add_test(tc, test_bio_reset_frees_pages);
	tcase_add_test(tc, test_zero_fill_bio);
	tcase_add_test(tc, test_bio_copy_buf);
	tcase_add_test(tc, test_bio_wait_alloc_from_reserve);
	tcase_add_test(tc, test_bio_wait_alloc_from_reserve_bvecs);
	tcase_add_test(tc, test_bio_kmalloc_failing);
	tcase_add_test(tc, test_bioset_init_failure);
	tcase_add_test(tc, test_bioset_rescuer_lifecycle);
	tcase_add_test(tc, test_bio_inline_helpers);
	suite_add_tcase(s, tc);
	return s;
}
