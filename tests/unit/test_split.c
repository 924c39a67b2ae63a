// SPDX-License-Identifier: MIT
/* bio_split(), bio_alloc_clone(), bio_chain() and completion (core/bio.h). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/page.h"
#include "helpers.h"
#include "suites.h"

#define NPAGES	8

/* A WRITE bio over NPAGES page-sized buffers filled with a known pattern. */
struct parent {
	unsigned char mem[NPAGES][PAGE_SIZE];
	struct bio *bio;
	struct bio_done done;
	atomic_int order;
};

static struct parent *parent_new(sector_t sector)
{
	struct parent *p = calloc(1, sizeof(*p));

	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < NPAGES; i++)
		for (int j = 0; j < (int)PAGE_SIZE; j++)
			p->mem[i][j] = (unsigned char)(i * 31 + j * 7);
	p->bio = bio_kmalloc(BLK_GFP_WAIT, NPAGES);
	ck_assert_ptr_nonnull(p->bio);
	p->bio->bi_opf = REQ_OP_WRITE | REQ_FUA;
	p->bio->bi_iter.bi_sector = sector;
	for (int i = 0; i < NPAGES; i++)
		ck_assert_uint_eq(bio_add_page(p->bio, p->mem[i], PAGE_SIZE, 0), PAGE_SIZE);
	atomic_init(&p->order, 0);
	bio_done_init(&p->done, &p->order);
	p->bio->bi_end_io = done_end_io;
	p->bio->bi_private = &p->done;
	return p;
}

static void parent_free(struct parent *p)
{
	bio_put(p->bio);
	free(p);
}

/* The bytes @bio covers, flattened. */
static size_t flat(const struct bio *bio, unsigned char *out)
{
	return iter_to_flat(bio->bi_io_vec, bio->bi_iter, out);
}

START_TEST(test_split_basic)
{
	static unsigned char whole[NPAGES * PAGE_SIZE], a[NPAGES * PAGE_SIZE],
		b[NPAGES * PAGE_SIZE];
	struct parent *p = parent_new(1000);
	struct blk_queue *fake_q = (struct blk_queue *)0x1000;
	struct bio *split;

	p->bio->bi_queue = fake_q;
	ck_assert_uint_eq(flat(p->bio, whole), NPAGES * PAGE_SIZE);
	/* 10 sectors: ends inside the second page. */
	split = bio_split(p->bio, 10, BLK_GFP_WAIT, NULL);
	ck_assert(!IS_ERR_OR_NULL(split));
	ck_assert_uint_eq(split->bi_iter.bi_sector, 1000);
	ck_assert_uint_eq(split->bi_iter.bi_size, 10 * SECTOR_SIZE);
	ck_assert_uint_eq(bio_sectors(split), 10);
	ck_assert_ptr_eq(split->bi_io_vec, p->bio->bi_io_vec);
	ck_assert_uint_eq(split->bi_opf, REQ_OP_WRITE | REQ_FUA);
	ck_assert_ptr_eq(split->bi_queue, fake_q);
	ck_assert_ptr_null(split->bi_pool);
	/* The original now starts where the split ends. */
	ck_assert_uint_eq(p->bio->bi_iter.bi_sector, 1010);
	ck_assert_uint_eq(p->bio->bi_iter.bi_size, NPAGES * PAGE_SIZE - 10 * SECTOR_SIZE);
	ck_assert_uint_eq(p->bio->bi_iter.bi_idx, 1);
	ck_assert_uint_eq(p->bio->bi_iter.bi_bvec_done, 10 * SECTOR_SIZE - PAGE_SIZE);
	ck_assert_uint_eq(p->bio->bi_vcnt, NPAGES);
	/* Together they cover exactly the old data. */
	ck_assert_uint_eq(flat(split, a), 10 * SECTOR_SIZE);
	ck_assert_uint_eq(flat(p->bio, b), NPAGES * PAGE_SIZE - 10 * SECTOR_SIZE);
	ck_assert_mem_eq(a, whole, 10 * SECTOR_SIZE);
	ck_assert_mem_eq(b, whole + 10 * SECTOR_SIZE, NPAGES * PAGE_SIZE - 10 * SECTOR_SIZE);
	bio_put(split);

	/* Split again, the last sector but one. */
	split = bio_split(p->bio, bio_sectors(p->bio) - 1, BLK_GFP_NOWAIT, NULL);
	ck_assert(!IS_ERR_OR_NULL(split));
	ck_assert_uint_eq(bio_sectors(p->bio), 1);
	ck_assert_uint_eq(bio_end_sector(split), p->bio->bi_iter.bi_sector);
	ck_assert_uint_eq(bio_end_sector(p->bio), 1000 + NPAGES * PAGE_SIZE / SECTOR_SIZE);
	bio_put(split);
	p->bio->bi_queue = NULL;
	parent_free(p);
}
END_TEST

START_TEST(test_split_einval)
{
	struct parent *p = parent_new(0);
	struct bvec_iter saved = p->bio->bi_iter;
	unsigned int sectors = bio_sectors(p->bio);
	struct bio *r;

	r = bio_split(p->bio, 0, BLK_GFP_WAIT, NULL);
	ck_assert(IS_ERR(r));
	ck_assert_int_eq(PTR_ERR(r), -EINVAL);
	r = bio_split(p->bio, sectors, BLK_GFP_WAIT, NULL);
	ck_assert(IS_ERR(r));
	ck_assert_int_eq(PTR_ERR(r), -EINVAL);
	r = bio_split(p->bio, sectors + 1, BLK_GFP_WAIT, NULL);
	ck_assert(IS_ERR(r));
	ck_assert_int_eq(PTR_ERR(r), -EINVAL);
	ck_assert_mem_eq(&saved, &p->bio->bi_iter, sizeof(saved));
	/* Splitting an empty bio can never work. */
	p->bio->bi_iter.bi_size = 0;
	r = bio_split(p->bio, 1, BLK_GFP_WAIT, NULL);
	ck_assert_int_eq(PTR_ERR(r), -EINVAL);
	p->bio->bi_iter = saved;
	parent_free(p);
}
END_TEST

START_TEST(test_split_enomem)
{
	struct parent *p = parent_new(0);
	struct bvec_iter saved = p->bio->bi_iter;
	struct bio_set bs;
	struct bio *held, *r;

	ck_assert_int_eq(bioset_init(&bs, 1, 0, 0, NULL), 0);
	fault_fail_always(&fail_kmalloc);
	held = bio_alloc_bioset(BLK_GFP_NOWAIT, 0, &bs);
	ck_assert_ptr_nonnull(held);
	/* Empty pool, NOWAIT. */
	r = bio_split(p->bio, 8, BLK_GFP_NOWAIT, &bs);
	ck_assert(IS_ERR(r));
	ck_assert_int_eq(PTR_ERR(r), -ENOMEM);
	/* kmalloc'ed split: no reserve at all, even with WAIT. */
	r = bio_split(p->bio, 8, BLK_GFP_WAIT, NULL);
	ck_assert(IS_ERR(r));
	ck_assert_int_eq(PTR_ERR(r), -ENOMEM);
	/* A failed split leaves the bio as it was. */
	ck_assert_mem_eq(&saved, &p->bio->bi_iter, sizeof(saved));

	/* Once the reserve has an element, the split comes from it. */
	bio_put(held);
	r = bio_split(p->bio, 8, BLK_GFP_NOWAIT, &bs);
	ck_assert(!IS_ERR_OR_NULL(r));
	ck_assert_ptr_eq(r->bi_pool, &bs);
	ck_assert_ptr_eq(r->bi_io_vec, p->bio->bi_io_vec);
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 0);
	bio_put(r);
	fault_reset(&fail_kmalloc);
	bioset_exit(&bs);
	parent_free(p);
}
END_TEST

START_TEST(test_split_clone)
{
	struct parent *p = parent_new(64);
	struct bio_set bs;
	struct bio *c;

	ck_assert_int_eq(bioset_init(&bs, 2, 0, 0, NULL), 0);
	bio_advance(p->bio, 3 * SECTOR_SIZE);
	p->bio->bi_queue = (struct blk_queue *)0x2000;
	c = bio_alloc_clone(p->bio, BLK_GFP_WAIT, &bs);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_eq(c->bi_io_vec, p->bio->bi_io_vec);
	ck_assert_mem_eq(&c->bi_iter, &p->bio->bi_iter, sizeof(c->bi_iter));
	ck_assert_uint_eq(c->bi_opf, p->bio->bi_opf);
	ck_assert_ptr_eq(c->bi_queue, p->bio->bi_queue);
	ck_assert_ptr_eq(c->bi_pool, &bs);
	ck_assert(bio_flagged(c, BIO_CLONED));
	ck_assert_ptr_null(c->bi_end_io);
	ck_assert_int_eq(atomic_load(&c->__bi_cnt), 1);
	/* The clone's iterator is its own. */
	bio_advance(c, PAGE_SIZE);
	ck_assert_uint_eq(p->bio->bi_iter.bi_sector, 67);
	ck_assert_uint_eq(c->bi_iter.bi_sector, 75);
	/* Putting the clone leaves the table alone (ASan would see a bad free). */
	bio_put(c);
	ck_assert_ptr_eq(p->bio->bi_io_vec[0].bv_page, p->mem[0]);
	/* A clone of a bvec-pool bio, put before its source. */
	{
		struct bio_set big;
		struct bio *src, *cl;

		ck_assert_int_eq(bioset_init(&big, 1, 0, BIOSET_NEED_BVECS, NULL), 0);
		src = bio_alloc_bioset(BLK_GFP_WAIT, 100, &big);
		ck_assert_ptr_nonnull(src);
		for (int i = 0; i < 100; i++)
			ck_assert_uint_eq(bio_add_page(src, p->mem[i % NPAGES], 512, 0), 512);
		cl = bio_alloc_clone(src, BLK_GFP_WAIT, &bs);
		ck_assert_ptr_nonnull(cl);
		ck_assert_ptr_eq(cl->bi_io_vec, src->bi_io_vec);
		bio_put(cl);
		ck_assert_ptr_eq(src->bi_io_vec[99].bv_page, p->mem[99 % NPAGES]);
		bio_put(src);
		bioset_exit(&big);
	}
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 2);
	p->bio->bi_queue = NULL;
	bioset_exit(&bs);
	parent_free(p);
}
END_TEST

/* Split @p into @n children of equal size (the last takes the rest) chained to it. */
static void split_chain(struct parent *p, struct bio **child, int n,
			struct bio_set *bs)
{
	unsigned int each = bio_sectors(p->bio) / (unsigned int)n;

	for (int i = 0; i < n - 1; i++) {
		child[i] = bio_split(p->bio, each, BLK_GFP_WAIT, bs);
		ck_assert(!IS_ERR_OR_NULL(child[i]));
		bio_chain(child[i], p->bio);
		ck_assert_ptr_eq(child[i]->bi_private, p->bio);
	}
	/* The last child: a clone of what is left. */
	child[n - 1] = bio_alloc_clone(p->bio, BLK_GFP_WAIT, bs);
	ck_assert_ptr_nonnull(child[n - 1]);
	bio_chain(child[n - 1], p->bio);
}

START_TEST(test_chain_parent_last)
{
	struct parent *p = parent_new(0);
	struct bio *child[4];
	struct bio_set bs;

	ck_assert_int_eq(bioset_init(&bs, 4, 0, 0, NULL), 0);
	fault_fail_always(&fail_kmalloc);	/* children from the reserve only */
	split_chain(p, child, 4, &bs);
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 0);
	/* Children end in any order; the parent waits for all and for itself. */
	bio_endio(child[2]);
	bio_endio(child[0]);
	bio_endio(child[3]);
	bio_endio(child[1]);
	ck_assert_int_eq(done_calls(&p->done), 0);
	/* Each child was put on completion. */
	ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), 4);
	bio_endio(p->bio);
	ck_assert_int_eq(done_calls(&p->done), 1);
	ck_assert_int_eq(done_status(&p->done), 0);
	fault_reset(&fail_kmalloc);
	bioset_exit(&bs);
	parent_free(p);
}
END_TEST

START_TEST(test_chain_parent_first)
{
	struct parent *p = parent_new(0);
	struct bio *child[3];

	split_chain(p, child, 3, NULL);
	bio_endio(p->bio);
	ck_assert_int_eq(done_calls(&p->done), 0);
	bio_endio(child[1]);
	ck_assert_int_eq(done_calls(&p->done), 0);
	bio_endio(child[0]);
	ck_assert_int_eq(done_calls(&p->done), 0);
	/* The last child's completion ends the parent, once. */
	bio_endio(child[2]);
	ck_assert_int_eq(done_calls(&p->done), 1);
	ck_assert_int_eq(done_status(&p->done), 0);
	parent_free(p);
}
END_TEST

START_TEST(test_chain_first_error_wins)
{
	struct parent *p = parent_new(0);
	struct bio *child[4];

	split_chain(p, child, 4, NULL);
	bio_endio(child[0]);
	bio_endio_status(child[1], -EIO);
	ck_assert_int_eq(p->bio->bi_status, -EIO);
	bio_endio_status(child[2], -ENOSPC);
	bio_endio(child[3]);
	bio_endio(p->bio);
	ck_assert_int_eq(done_calls(&p->done), 1);
	ck_assert_int_eq(done_status(&p->done), -EIO);
	parent_free(p);

	/* A success after an error does not clear it. */
	p = parent_new(0);
	split_chain(p, child, 2, NULL);
	bio_endio_status(child[1], -ENOSPC);
	bio_endio_status(child[0], 0);
	bio_endio_status(p->bio, 0);
	ck_assert_int_eq(done_calls(&p->done), 1);
	ck_assert_int_eq(done_status(&p->done), -ENOSPC);
	parent_free(p);
}
END_TEST

START_TEST(test_chain_nested)
{
	/* grandchild -> child -> parent: errors and completion travel up. */
	struct parent *p = parent_new(0);
	struct bio *child, *grand;

	child = bio_split(p->bio, 16, BLK_GFP_WAIT, NULL);
	ck_assert(!IS_ERR_OR_NULL(child));
	bio_chain(child, p->bio);
	grand = bio_split(child, 8, BLK_GFP_WAIT, NULL);
	ck_assert(!IS_ERR_OR_NULL(grand));
	bio_chain(grand, child);
	bio_endio(p->bio);
	bio_endio(child);
	ck_assert_int_eq(done_calls(&p->done), 0);
	bio_endio_status(grand, -EIO);
	ck_assert_int_eq(done_calls(&p->done), 1);
	ck_assert_int_eq(done_status(&p->done), -EIO);
	parent_free(p);
}
END_TEST

START_TEST(test_chain_long)
{
	/* A 4096-link chain ends without recursing once per link. */
	struct parent *p = parent_new(0);
	struct bio *cur = p->bio;

	for (int i = 0; i < 4096; i++) {
		struct bio *c = bio_alloc_clone(cur, BLK_GFP_WAIT, NULL);

		ck_assert_ptr_nonnull(c);
		bio_chain(c, cur);
		bio_endio(cur);
		cur = c;
	}
	ck_assert_int_eq(done_calls(&p->done), 0);
	bio_endio(cur);
	ck_assert_int_eq(done_calls(&p->done), 1);
	parent_free(p);
}
END_TEST

START_TEST(test_inc_remaining)
{
	struct parent *p = parent_new(0);

	bio_inc_remaining(p->bio);
	bio_inc_remaining(p->bio);
	bio_endio(p->bio);
	bio_endio(p->bio);
	ck_assert_int_eq(done_calls(&p->done), 0);
	bio_endio_status(p->bio, -EAGAIN);
	ck_assert_int_eq(done_calls(&p->done), 1);
	ck_assert_int_eq(done_status(&p->done), -EAGAIN);
	/* Back to a plain bio: one more end calls bi_end_io once more. */
	bio_endio(p->bio);
	ck_assert_int_eq(done_calls(&p->done), 2);
	parent_free(p);
}
END_TEST

#define MT_CHILDREN	64
#define MT_THREADS	4
#define MT_ROUNDS	100

struct mt_round {
	struct bio *child[MT_CHILDREN];
	struct bio *parent;
	atomic_int ended;	/* children whose bio_endio() has started */
	atomic_int seen_at_end;	/* value of ended when the parent's end_io ran */
	atomic_int calls;
	pthread_barrier_t *barrier;
};

struct mt_arg {
	struct mt_round *round;
	int id;
};

static void mt_parent_end_io(struct bio *bio)
{
	struct mt_round *r = bio->bi_private;

	atomic_store(&r->seen_at_end, atomic_load(&r->ended));
	atomic_fetch_add(&r->calls, 1);
}

static void *mt_fn(void *arg)
{
	struct mt_arg *a = arg;
	struct mt_round *r = a->round;

	pthread_barrier_wait(r->barrier);
	for (int i = a->id; i < MT_CHILDREN; i += MT_THREADS) {
		atomic_fetch_add(&r->ended, 1);
		bio_endio_status(r->child[i], i == 37 ? -EIO : 0);
	}
	/* Thread 0 also ends the parent itself, mid-way through the others. */
	if (a->id == 0)
		bio_endio(r->parent);
	return NULL;
}

START_TEST(test_chain_threads)
{
	static unsigned char mem[MT_CHILDREN * SECTOR_SIZE];
	pthread_barrier_t barrier;
	struct bio_set bs;

	ck_assert_int_eq(bioset_init(&bs, MT_CHILDREN, 0, 0, NULL), 0);
	ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, MT_THREADS), 0);
	for (int round = 0; round < MT_ROUNDS; round++) {
		struct mt_round r = { .barrier = &barrier };
		struct mt_arg args[MT_THREADS];
		pthread_t t[MT_THREADS];

		r.parent = bio_kmalloc(BLK_GFP_WAIT, 1);
		ck_assert_ptr_nonnull(r.parent);
		r.parent->bi_opf = REQ_OP_READ;
		ck_assert_uint_eq(bio_add_page(r.parent, mem, sizeof(mem), 0), sizeof(mem));
		r.parent->bi_end_io = mt_parent_end_io;
		r.parent->bi_private = &r;
		for (int i = 0; i < MT_CHILDREN - 1; i++) {
			r.child[i] = bio_split(r.parent, 1, BLK_GFP_WAIT, &bs);
			ck_assert(!IS_ERR_OR_NULL(r.child[i]));
			bio_chain(r.child[i], r.parent);
		}
		r.child[MT_CHILDREN - 1] = bio_alloc_clone(r.parent, BLK_GFP_WAIT, &bs);
		ck_assert_ptr_nonnull(r.child[MT_CHILDREN - 1]);
		bio_chain(r.child[MT_CHILDREN - 1], r.parent);

		for (int i = 0; i < MT_THREADS; i++) {
			args[i] = (struct mt_arg){ &r, i };
			ck_assert_int_eq(pthread_create(&t[i], NULL, mt_fn, &args[i]), 0);
		}
		for (int i = 0; i < MT_THREADS; i++)
			pthread_join(t[i], NULL);
		ck_assert_msg(atomic_load(&r.calls) == 1, "round %d: parent ended %d times",
			      round, atomic_load(&r.calls));
		ck_assert_msg(atomic_load(&r.seen_at_end) == MT_CHILDREN,
			      "round %d: parent ended after only %d children", round,
			      atomic_load(&r.seen_at_end));
		ck_assert_int_eq(r.parent->bi_status, -EIO);
		ck_assert_int_eq(mempool_reserve_count(&bs.bio_pool), MT_CHILDREN);
		bio_put(r.parent);
	}
	pthread_barrier_destroy(&barrier);
	bioset_exit(&bs);
}
END_TEST

Suite *split_suite(void)
{
	Suite *s = suite_create("split");
	TCase *tc = tcase_create("split");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_split_basic);
	tcase_add_test(tc, test_split_einval);
	tcase_add_test(tc, test_split_enomem);
	tcase_add_test(tc, test_split_clone);
	tcase_add_test(tc, test_chain_parent_last);
	tcase_add_test(tc, test_chain_parent_first);
	tcase_add_test(tc, test_chain_first_error_wins);
	tcase_add_test(tc, test_chain_nested);
	tcase_add_test(tc, test_chain_long);
	tcase_add_test(tc, test_inc_remaining);
	tcase_add_test(tc, test_chain_threads);
	suite_add_tcase(s, tc);
	return s;
}
