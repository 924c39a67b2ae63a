// SPDX-License-Identifier: MIT
/*
 * bio_copy_data() and bio_copy_data_iter() on random bvec layouts, checked
 * against a flat-buffer model.  The seed is fixed so a failure reproduces;
 * every message names the seed and the iteration.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/page.h"
#include "helpers.h"
#include "suites.h"

#define COPY_SEED	0xb10c0c0ffeeull
#define COPY_PAIRS	1500
#define MAX_SEGS	12

/* A bio over its own backing memory, with random segments. */
struct layout {
	unsigned char *mem;
	size_t mem_len;
	struct bio *bio;
};

static unsigned int seg_len(struct rng *r)
{
	switch (rng_range(r, 0, 4)) {
	case 0:
		return rng_range(r, 1, 16);
	case 1:
		return rng_range(r, 1, 700);
	case 2:
		return PAGE_SIZE;
	case 3:
		return SECTOR_SIZE * rng_range(r, 1, 16);
	default:
		return rng_range(r, 1, 9000);
	}
}

static void layout_make(struct layout *l, struct rng *r)
{
	unsigned int nseg = rng_range(r, 0, 7) ? rng_range(r, 1, MAX_SEGS) : 0;
	unsigned int pos[MAX_SEGS], len[MAX_SEGS];
	size_t end = rng_range(r, 0, 5000);

	for (unsigned int i = 0; i < nseg; i++) {
		/* Often back to back (contiguous in memory), else a gap. */
		end += rng_range(r, 0, 2) ? 0 : rng_range(r, 1, 300);
		pos[i] = (unsigned int)end;
		len[i] = seg_len(r);
		end += len[i];
	}
	l->mem_len = end + rng_range(r, 1, 100);
	l->mem = malloc(l->mem_len);
	ck_assert_ptr_nonnull(l->mem);
	rng_fill(r, l->mem, l->mem_len);
	l->bio = bio_kmalloc(BLK_GFP_WAIT, nseg);
	ck_assert_ptr_nonnull(l->bio);
	l->bio->bi_opf = REQ_OP_WRITE;
	l->bio->bi_iter.bi_sector = rng_range(r, 0, 1u << 20);
	for (unsigned int i = 0; i < nseg; i++) {
		unsigned char *page;
		unsigned int off;

		/* Three ways to say the same address. */
		switch (rng_range(r, 0, 2)) {
		case 0:		/* "page" plus in-page offset */
			off = pos[i] % PAGE_SIZE;
			page = l->mem + pos[i] - off;
			break;
		case 1:		/* the address itself */
			off = 0;
			page = l->mem + pos[i];
			break;
		default:	/* the base plus a large offset */
			off = pos[i];
			page = l->mem;
			break;
		}
		ck_assert_uint_eq(bio_add_page(l->bio, page, len[i], off), len[i]);
	}
	/* Start part way in, and sometimes stop short (as a split does). */
	if (l->bio->bi_iter.bi_size && rng_range(r, 0, 1))
		bvec_iter_advance(l->bio->bi_io_vec, &l->bio->bi_iter,
				  rng_range(r, 0, l->bio->bi_iter.bi_size));
	if (l->bio->bi_iter.bi_size && !rng_range(r, 0, 3))
		l->bio->bi_iter.bi_size = rng_range(r, 0, l->bio->bi_iter.bi_size);
}

static void layout_free(struct layout *l)
{
	bio_put(l->bio);
	free(l->mem);
}

/* Model: write the first @n bytes of @data into @dst's stream, in @img. */
static void model_write(const struct layout *dst, struct bvec_iter iter,
			unsigned char *img, const unsigned char *data, size_t n)
{
	struct bvec_iter it;
	struct bio_vec bv;
	size_t done = 0;

	for_each_bvec_iter(bv, dst->bio->bi_io_vec, it, iter) {
		size_t k = bv.bv_len < n - done ? bv.bv_len : n - done;

		if (!k)
			break;
		memcpy(img + ((unsigned char *)bvec_virt(&bv) - dst->mem), data + done, k);
		done += k;
	}
}

/* Whether two iterators on one table stand at the same place. */
static bool iter_same_place(const struct bio_vec *table, struct bvec_iter a,
			    struct bvec_iter b)
{
	struct bio_vec x, y;

	if (a.bi_size != b.bi_size)
		return false;
	if (!a.bi_size)
		return true;
	x = bvec_iter_bvec(table, a);
	y = bvec_iter_bvec(table, b);
	return bvec_virt(&x) == bvec_virt(&y) && x.bv_len == y.bv_len;
}

/* One random pair: both layouts, their memory before, and the model after. */
struct pair {
	struct layout src, dst;
	struct bvec_iter src_iter0, dst_iter0;
	unsigned char *src_img;		/* src's memory, which must not change */
	unsigned char *dst_img;		/* dst's memory as the copy must leave it */
	size_t n;			/* bytes to copy */
	uint64_t seed;
	int it;
};

static void pair_make(struct pair *p, struct rng *r)
{
	unsigned char *stream;

	layout_make(&p->src, r);
	layout_make(&p->dst, r);
	p->src_iter0 = p->src.bio->bi_iter;
	p->dst_iter0 = p->dst.bio->bi_iter;
	p->n = min_t(size_t, p->src_iter0.bi_size, p->dst_iter0.bi_size);
	p->src_img = malloc(p->src.mem_len);
	p->dst_img = malloc(p->dst.mem_len);
	stream = malloc(p->src_iter0.bi_size + 1);
	ck_assert_ptr_nonnull(p->src_img);
	ck_assert_ptr_nonnull(p->dst_img);
	ck_assert_ptr_nonnull(stream);
	memcpy(p->src_img, p->src.mem, p->src.mem_len);
	memcpy(p->dst_img, p->dst.mem, p->dst.mem_len);
	ck_assert_uint_eq(iter_to_flat(p->src.bio->bi_io_vec, p->src_iter0, stream),
			  p->src_iter0.bi_size);
	model_write(&p->dst, p->dst_iter0, p->dst_img, stream, p->n);
	free(stream);
}

static void pair_free(struct pair *p)
{
	free(p->src_img);
	free(p->dst_img);
	layout_free(&p->src);
	layout_free(&p->dst);
}

/* Chunked: several calls, each with a dst window of random size. */
static void pair_copy_chunked(struct pair *p, struct rng *r,
			      struct bvec_iter *si, struct bvec_iter *di)
{
	while (si->bi_size && di->bi_size) {
		struct bvec_iter win = *di;
		unsigned int before;

		win.bi_size = rng_range(r, 1, di->bi_size);
		before = win.bi_size;
		bio_copy_data_iter(p->dst.bio, &win, p->src.bio, si);
		ck_assert_msg(win.bi_size == 0 || si->bi_size == 0,
			      "seed %#llx pair %d: stopped early",
			      (unsigned long long)p->seed, p->it);
		bvec_iter_advance(p->dst.bio->bi_io_vec, di, before - win.bi_size);
	}
}

/* Both iterators moved past exactly the copied bytes. */
static void pair_check_iters(struct pair *p, struct bvec_iter si,
			     struct bvec_iter di)
{
	struct bvec_iter se = p->src_iter0, de = p->dst_iter0;

	bvec_iter_advance(p->src.bio->bi_io_vec, &se, (unsigned int)p->n);
	bvec_iter_advance(p->dst.bio->bi_io_vec, &de, (unsigned int)p->n);
	ck_assert_msg(iter_same_place(p->src.bio->bi_io_vec, si, se),
		      "seed %#llx pair %d: src iterator at %u left, want %u",
		      (unsigned long long)p->seed, p->it, si.bi_size, se.bi_size);
	ck_assert_msg(iter_same_place(p->dst.bio->bi_io_vec, di, de),
		      "seed %#llx pair %d: dst iterator at %u left, want %u",
		      (unsigned long long)p->seed, p->it, di.bi_size, de.bi_size);
}

/* dst as the model says, src untouched, and neither bio's bi_iter moved. */
static void pair_check(struct pair *p, int mode)
{
	ck_assert_msg(memcmp(p->dst.mem, p->dst_img, p->dst.mem_len) == 0,
		      "seed %#llx pair %d (mode %d): dst differs from the model "
		      "(src %u bytes, dst %u bytes, %zu to copy)",
		      (unsigned long long)p->seed, p->it, mode, p->src_iter0.bi_size,
		      p->dst_iter0.bi_size, p->n);
	ck_assert_msg(memcmp(p->src.mem, p->src_img, p->src.mem_len) == 0,
		      "seed %#llx pair %d: src modified",
		      (unsigned long long)p->seed, p->it);
	ck_assert_msg(memcmp(&p->src.bio->bi_iter, &p->src_iter0, sizeof(p->src_iter0)) == 0 &&
		      memcmp(&p->dst.bio->bi_iter, &p->dst_iter0, sizeof(p->dst_iter0)) == 0,
		      "seed %#llx pair %d: a bio's bi_iter changed",
		      (unsigned long long)p->seed, p->it);
}

/* The shared body of the random tests: @mode 0 whole, 1 _iter, 2 chunked. */
static void random_pairs(int mode, int pairs, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	for (int it = 0; it < pairs; it++) {
		struct pair p = { .seed = seed, .it = it };
		struct bvec_iter si, di;

		pair_make(&p, &r);
		si = p.src_iter0;
		di = p.dst_iter0;
		if (mode == 0)
			bio_copy_data(p.dst.bio, p.src.bio);
		else if (mode == 1)
			bio_copy_data_iter(p.dst.bio, &di, p.src.bio, &si);
		else
			pair_copy_chunked(&p, &r, &si, &di);
		pair_check(&p, mode);
		if (mode >= 1)
			pair_check_iters(&p, si, di);
		pair_free(&p);
	}
}

START_TEST(test_copy_data_random)
{
	random_pairs(0, COPY_PAIRS, COPY_SEED);
}
END_TEST

START_TEST(test_copy_data_iter_random)
{
	random_pairs(1, 500, COPY_SEED + 1);
}
END_TEST

START_TEST(test_copy_data_iter_chunked)
{
	random_pairs(2, 500, COPY_SEED + 2);
}
END_TEST

START_TEST(test_copy_data_edges)
{
	static unsigned char a[1000], b[1000];
	struct bio *empty = bio_kmalloc(BLK_GFP_WAIT, 0);
	struct bio *x = bio_kmalloc(BLK_GFP_WAIT, 1);
	struct bio *y = bio_kmalloc(BLK_GFP_WAIT, 2);
	struct bvec_iter si, di;

	ck_assert_ptr_nonnull(empty);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	ck_assert_uint_eq(bio_add_page(x, a, 1000, 0), 1000);
	ck_assert_uint_eq(bio_add_page(y, b, 500, 500), 500);
	ck_assert_uint_eq(bio_add_page(y, b, 500, 0), 500);

	/* Nothing to copy either way. */
	bio_copy_data(x, empty);
	bio_copy_data(empty, x);
	for (int i = 0; i < 1000; i++)
		ck_assert(a[i] == 1);
	si = empty->bi_iter;
	di = x->bi_iter;
	bio_copy_data_iter(x, &di, empty, &si);
	ck_assert_uint_eq(di.bi_size, 1000);
	ck_assert_uint_eq(si.bi_size, 0);

	/* Equal sizes, segments swapped in y: a[0..500) -> b[500..), a[500..) -> b[0..). */
	for (int i = 0; i < 1000; i++)
		a[i] = (unsigned char)i;
	bio_copy_data(y, x);
	for (int i = 0; i < 500; i++) {
		ck_assert_uint_eq(b[500 + i], (unsigned char)i);
		ck_assert_uint_eq(b[i], (unsigned char)(500 + i));
	}
	/* And back, into a copy of x's layout. */
	memset(a, 0, sizeof(a));
	si = y->bi_iter;
	di = x->bi_iter;
	bio_copy_data_iter(x, &di, y, &si);
	ck_assert_uint_eq(si.bi_size, 0);
	ck_assert_uint_eq(di.bi_size, 0);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(a[i], (unsigned char)i);
	bio_put(empty);
	bio_put(x);
	bio_put(y);
}
END_TEST

START_TEST(test_copy_data_pages)
{
	/* Page-backed bios, as the daemon uses them: 13 pages into 13 pages. */
	struct pgalloc *pa = pgalloc_create(32 * PAGE_SIZE, 0, 0);
	const unsigned int size = 13 * PAGE_SIZE - 1536;
	unsigned char *in = malloc(size), *out = malloc(size);
	struct bio_set bs;
	struct bio *s, *d;
	struct rng r;

	ck_assert_ptr_nonnull(pa);
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(bioset_init(&bs, 2, 0, 0, pa), 0);
	rng_seed(&r, COPY_SEED);
	rng_fill(&r, in, size);
	s = bio_alloc_bioset(BLK_GFP_WAIT, 13, &bs);
	d = bio_alloc_bioset(BLK_GFP_WAIT, 13, &bs);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(bio_prep_pages(s, size), 0);
	ck_assert_int_eq(bio_prep_pages(d, size), 0);
	ck_assert_int_eq(bio_alloc_pages(s, BLK_GFP_WAIT), 0);
	ck_assert_int_eq(bio_alloc_pages(d, BLK_GFP_WAIT), 0);
	ck_assert_uint_eq(bio_copy_from_buf(s, in, size), size);
	bio_copy_data(d, s);
	ck_assert_uint_eq(bio_copy_to_buf(d, out, size), size);
	ck_assert_mem_eq(in, out, size);
	bio_put(s);
	bio_put(d);
	free(in);
	free(out);
	bioset_exit(&bs);
	pgalloc_destroy(pa);
}
END_TEST

Suite *copy_suite(void)
{
	Suite *s = suite_create("copy");
	TCase *tc = tcase_create("copy");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_copy_data_random);
	tcase_add_test(tc, test_copy_data_iter_random);
	tcase_add_test(tc, test_copy_data_iter_chunked);
	tcase_add_test(tc, test_copy_data_edges);
	tcase_add_test(tc, test_copy_data_pages);
	suite_add_tcase(s, tc);
	return s;
}
