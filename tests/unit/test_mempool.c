// SPDX-License-Identifier: MIT
/* mempool (core/mempool.h). */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/kmem.h"
#include "core/mempool.h"
#include "helpers.h"
#include "suites.h"

/* An underlying allocator the test controls and counts. */
struct talloc {
	atomic_int allocs;		/* successful */
	atomic_int frees;
	atomic_int attempts;
	atomic_int wait_attempts;	/* attempts that were allowed to sleep */
	atomic_bool fail;
	atomic_int fail_after;		/* fail once this many succeeded; -1: never */
};

static void talloc_init(struct talloc *t)
{
	memset(t, 0, sizeof(*t));
	atomic_store(&t->fail_after, -1);
}

static void *talloc_alloc(blk_gfp_t gfp, void *data)
{
	struct talloc *t = data;
	int limit = atomic_load(&t->fail_after);
	int *p;

	atomic_fetch_add(&t->attempts, 1);
	if (gfp & BLK_GFP_WAIT)
		atomic_fetch_add(&t->wait_attempts, 1);
	if (atomic_load(&t->fail) || (limit >= 0 && atomic_load(&t->allocs) >= limit))
		return NULL;
	p = malloc(sizeof(int));
	if (!p)
		return NULL;
	*p = atomic_fetch_add(&t->allocs, 1);
	return p;
}

static void talloc_free(void *element, void *data)
{
	struct talloc *t = data;

	atomic_fetch_add(&t->frees, 1);
	free(element);
}

START_TEST(test_mempool_init_fills_reserve)
{
	struct talloc t;
	mempool_t pool;

	talloc_init(&t);
	ck_assert_int_eq(mempool_init(&pool, 4, talloc_alloc, talloc_free, &t), 0);
	ck_assert_int_eq(mempool_reserve_count(&pool), 4);
	ck_assert_int_eq(pool.min_nr, 4);
	ck_assert_int_eq(atomic_load(&t.allocs), 4);
	ck_assert_int_eq(atomic_load(&t.frees), 0);
	mempool_exit(&pool);
	/* exit gives the reserve back. */
	ck_assert_int_eq(atomic_load(&t.frees), 4);
}
END_TEST

START_TEST(test_mempool_init_fails_cleanly)
{
	struct talloc t;
	mempool_t pool;

	for (int k = 0; k < 4; k++) {
		talloc_init(&t);
		atomic_store(&t.fail_after, k);
		ck_assert_int_eq(mempool_init(&pool, 4, talloc_alloc, talloc_free, &t),
				 -ENOMEM);
		/* Nothing left allocated: the k elements it got are freed. */
		ck_assert_int_eq(atomic_load(&t.allocs), k);
		ck_assert_int_eq(atomic_load(&t.frees), k);
	}
	/* The reserve array itself comes from kmalloc. */
	talloc_init(&t);
	fault_fail_always(&fail_kmalloc);
	ck_assert_int_eq(mempool_init(&pool, 4, talloc_alloc, talloc_free, &t), -ENOMEM);
	ck_assert_int_eq(atomic_load(&t.allocs) - atomic_load(&t.frees), 0);
	ck_assert_ptr_null(mempool_create(4, talloc_alloc, talloc_free, &t));
	ck_assert_int_eq(atomic_load(&t.allocs) - atomic_load(&t.frees), 0);
	fault_reset(&fail_kmalloc);
}
END_TEST

START_TEST(test_mempool_prefers_allocator)
{
	struct talloc t;
	mempool_t pool;
	void *e[8];

	talloc_init(&t);
	ck_assert_int_eq(mempool_init(&pool, 2, talloc_alloc, talloc_free, &t), 0);
	atomic_store(&t.wait_attempts, 0);
	for (int i = 0; i < 8; i++) {
		e[i] = mempool_alloc(&pool, BLK_GFP_WAIT);
		ck_assert_ptr_nonnull(e[i]);
	}
	/* The reserve is untouched while the allocator succeeds... */
	ck_assert_int_eq(mempool_reserve_count(&pool), 2);
	ck_assert_uint_eq(atomic_load(&pool.reserve_allocs), 0);
	ck_assert_int_eq(atomic_load(&t.allocs), 10);
	/* ...and the first attempt never sleeps, even for a WAIT caller. */
	ck_assert_int_eq(atomic_load(&t.wait_attempts), 0);
	for (int i = 0; i < 8; i++)
		mempool_free(e[i], &pool);
	/* The reserve was full: all go back to the allocator. */
	ck_assert_int_eq(atomic_load(&t.frees), 8);
	ck_assert_int_eq(mempool_reserve_count(&pool), 2);
	mempool_free(NULL, &pool);
	mempool_exit(&pool);
	ck_assert_int_eq(atomic_load(&t.frees), 10);
}
END_TEST

START_TEST(test_mempool_reserve_fallback_kmalloc)
{
	mempool_t pool;
	void *e[3];

	ck_assert_int_eq(mempool_init_kmalloc_pool(&pool, 3, 128), 0);
	ck_assert_int_eq(mempool_reserve_count(&pool), 3);
	fault_fail_always(&fail_kmalloc);
	for (int i = 0; i < 3; i++) {
		e[i] = mempool_alloc(&pool, BLK_GFP_NOWAIT);
		ck_assert_ptr_nonnull(e[i]);
		memset(e[i], i, 128);
		ck_assert_int_eq(mempool_reserve_count(&pool), 2 - i);
	}
	ck_assert_uint_eq(atomic_load(&pool.reserve_allocs), 3);
	/* Empty reserve and a failing allocator: NOWAIT gives NULL. */
	ck_assert_ptr_null(mempool_alloc(&pool, BLK_GFP_NOWAIT));
	ck_assert_ptr_null(mempool_alloc(&pool, BLK_GFP_NOWAIT | BLK_GFP_ZERO));
	ck_assert_int_eq(mempool_reserve_count(&pool), 0);
	for (int i = 0; i < 3; i++)
		mempool_free(e[i], &pool);
	ck_assert_int_eq(mempool_reserve_count(&pool), 3);
	fault_reset(&fail_kmalloc);
	mempool_exit(&pool);
}
END_TEST

START_TEST(test_mempool_reserve_lifo)
{
	struct talloc t;
	mempool_t pool;
	void *a, *b, *c;

	talloc_init(&t);
	ck_assert_int_eq(mempool_init(&pool, 3, talloc_alloc, talloc_free, &t), 0);
	atomic_store(&t.fail, true);
	a = mempool_alloc(&pool, BLK_GFP_NOWAIT);
	b = mempool_alloc(&pool, BLK_GFP_NOWAIT);
	c = mempool_alloc(&pool, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(a, b);
	ck_assert_ptr_ne(b, c);
	ck_assert_ptr_ne(a, c);
	ck_assert_int_eq(mempool_reserve_count(&pool), 0);

	/* Free A then B: a stack hands back B, then A. */
	mempool_free(a, &pool);
	mempool_free(b, &pool);
	ck_assert_ptr_eq(mempool_alloc(&pool, BLK_GFP_NOWAIT), b);
	ck_assert_ptr_eq(mempool_alloc(&pool, BLK_GFP_NOWAIT), a);
	/* And the other way round. */
	mempool_free(b, &pool);
	mempool_free(c, &pool);
	mempool_free(a, &pool);
	ck_assert_ptr_eq(mempool_alloc(&pool, BLK_GFP_WAIT), a);
	ck_assert_ptr_eq(mempool_alloc(&pool, BLK_GFP_WAIT), c);
	ck_assert_ptr_eq(mempool_alloc(&pool, BLK_GFP_WAIT), b);
	mempool_free(a, &pool);
	mempool_free(b, &pool);
	mempool_free(c, &pool);
	ck_assert_int_eq(atomic_load(&t.frees), 0);
	mempool_exit(&pool);
	ck_assert_int_eq(atomic_load(&t.frees), 3);
}
END_TEST

START_TEST(test_mempool_free_refills_first)
{
	struct talloc t;
	mempool_t pool;
	void *a, *b, *c;

	talloc_init(&t);
	ck_assert_int_eq(mempool_init(&pool, 2, talloc_alloc, talloc_free, &t), 0);
	atomic_store(&t.fail, true);
	a = mempool_alloc(&pool, BLK_GFP_NOWAIT);
	b = mempool_alloc(&pool, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(mempool_reserve_count(&pool), 0);
	atomic_store(&t.fail, false);
	c = mempool_alloc(&pool, BLK_GFP_NOWAIT);	/* from the allocator */
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(mempool_reserve_count(&pool), 0);

	/* Whatever element is freed first refills the reserve. */
	mempool_free(c, &pool);
	ck_assert_int_eq(mempool_reserve_count(&pool), 1);
	ck_assert_int_eq(atomic_load(&t.frees), 0);
	mempool_free(a, &pool);
	ck_assert_int_eq(mempool_reserve_count(&pool), 2);
	ck_assert_int_eq(atomic_load(&t.frees), 0);
	/* Only a full reserve lets an element go back to the allocator. */
	mempool_free(b, &pool);
	ck_assert_int_eq(mempool_reserve_count(&pool), 2);
	ck_assert_int_eq(atomic_load(&t.frees), 1);
	mempool_exit(&pool);
	ck_assert_int_eq(atomic_load(&t.frees), atomic_load(&t.allocs));
}
END_TEST

struct one_waiter {
	mempool_t *pool;
	void *got;
	atomic_bool done;
};

static void *one_waiter_fn(void *arg)
{
	struct one_waiter *w = arg;

	w->got = mempool_alloc(w->pool, BLK_GFP_WAIT);
	atomic_store(&w->done, true);
	return NULL;
}

START_TEST(test_mempool_wait_woken_by_free)
{
	struct one_waiter w;
	struct talloc t;
	mempool_t pool;
	pthread_t th;
	void *held;
	double t0;

	talloc_init(&t);
	ck_assert_int_eq(mempool_init(&pool, 1, talloc_alloc, talloc_free, &t), 0);
	atomic_store(&t.fail, true);
	held = mempool_alloc(&pool, BLK_GFP_WAIT);
	ck_assert_ptr_nonnull(held);

	w.pool = &pool;
	w.got = NULL;
	atomic_init(&w.done, false);
	ck_assert_int_eq(pthread_create(&th, NULL, one_waiter_fn, &w), 0);
	ck_assert_msg(wait_until(atomic_load(&pool.waits) >= 1, 5000),
		      "WAIT allocation on an empty pool did not sleep");
	sleep_ms(20);
	ck_assert(!atomic_load(&w.done));
	/* Sleeping callers also retried the allocator with WAIT at least once. */
	ck_assert_int_ge(atomic_load(&t.wait_attempts), 1);

	t0 = now_sec();
	mempool_free(held, &pool);
	ck_assert_wait(atomic_load(&w.done), 5000);
	pthread_join(th, NULL);
	/* Promptly (a generous bound: loaded CI machines are slow). */
	ck_assert_msg(now_sec() - t0 < 2.0, "woken after %.3f s", now_sec() - t0);
	ck_assert_ptr_eq(w.got, held);
	mempool_free(w.got, &pool);
	mempool_exit(&pool);
	ck_assert_int_eq(atomic_load(&t.frees), 1);
}
END_TEST

#define BLK_THREADS	8
#define BLK_CYCLES	200

struct blocker {
	mempool_t *pool;
	atomic_int *held;
	atomic_int *max_held;
	atomic_int *nulls;
	unsigned int id;
};

static void *blocker_fn(void *arg)
{
	struct blocker *b = arg;

	for (int i = 0; i < BLK_CYCLES; i++) {
		void *e = mempool_alloc(b->pool, BLK_GFP_WAIT);
		int now;

		if (!e) {
			atomic_fetch_add(b->nulls, 1);
			continue;
		}
		now = atomic_fetch_add(b->held, 1) + 1;
		for (int m = atomic_load(b->max_held); now > m;)
			if (atomic_compare_exchange_weak(b->max_held, &m, now))
				break;
		*(unsigned int *)e = b->id;
		if (i % 4 == 0)
			usleep(10);
		else
			sched_yield();
		if (*(unsigned int *)e != b->id)
			atomic_fetch_add(b->nulls, 1000);	/* shared element */
		atomic_fetch_sub(b->held, 1);
		mempool_free(e, b->pool);
	}
	return NULL;
}

START_TEST(test_mempool_blocking_8_threads)
{
	atomic_int held = 0, max_held = 0, nulls = 0;
	struct blocker b[BLK_THREADS];
	pthread_t th[BLK_THREADS];
	struct talloc t;
	mempool_t pool;
	double t0, elapsed;

	talloc_init(&t);
	ck_assert_int_eq(mempool_init(&pool, 1, talloc_alloc, talloc_free, &t), 0);
	atomic_store(&t.fail, true);	/* only the reserve of 1 exists */
	t0 = now_sec();
	for (unsigned int i = 0; i < BLK_THREADS; i++) {
		b[i] = (struct blocker){ &pool, &held, &max_held, &nulls, i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, blocker_fn, &b[i]), 0);
	}
	for (int i = 0; i < BLK_THREADS; i++)
		pthread_join(th[i], NULL);
	elapsed = now_sec() - t0;

	ck_assert_int_eq(atomic_load(&nulls), 0);
	ck_assert_int_eq(atomic_load(&max_held), 1);
	ck_assert_int_eq(atomic_load(&held), 0);
	ck_assert_uint_eq(atomic_load(&pool.reserve_allocs), BLK_THREADS * BLK_CYCLES);
	ck_assert_uint_gt(atomic_load(&pool.waits), 0);
	ck_assert_msg(elapsed < 10.0, "%d cycles took %.2f s", BLK_THREADS * BLK_CYCLES,
		      elapsed);
	ck_assert_int_eq(mempool_reserve_count(&pool), 1);
	mempool_exit(&pool);
	ck_assert_int_eq(atomic_load(&t.frees), 1);
	ck_assert_int_eq(atomic_load(&t.allocs), 1);
}
END_TEST

START_TEST(test_mempool_resize)
{
	struct talloc t;
	mempool_t pool;
	void *e[6];

	talloc_init(&t);
	ck_assert_int_eq(mempool_init(&pool, 2, talloc_alloc, talloc_free, &t), 0);
	/* Up: the reserve is filled to the new size. */
	ck_assert_int_eq(mempool_resize(&pool, 6), 0);
	ck_assert_int_eq(mempool_reserve_count(&pool), 6);
	ck_assert_int_eq(pool.min_nr, 6);
	ck_assert_int_eq(atomic_load(&t.allocs), 6);
	/* All 6 are really usable as reserve. */
	atomic_store(&t.fail, true);
	for (int i = 0; i < 6; i++) {
		e[i] = mempool_alloc(&pool, BLK_GFP_NOWAIT);
		ck_assert_ptr_nonnull(e[i]);
	}
	ck_assert_ptr_null(mempool_alloc(&pool, BLK_GFP_NOWAIT));
	for (int i = 0; i < 6; i++)
		mempool_free(e[i], &pool);
	ck_assert_int_eq(mempool_reserve_count(&pool), 6);

	/* Down: the surplus goes back to the allocator. */
	ck_assert_int_eq(mempool_resize(&pool, 1), 0);
	ck_assert_int_eq(mempool_reserve_count(&pool), 1);
	ck_assert_int_eq(pool.min_nr, 1);
	ck_assert_int_eq(atomic_load(&t.frees), 5);
	e[0] = mempool_alloc(&pool, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(e[0]);
	ck_assert_ptr_null(mempool_alloc(&pool, BLK_GFP_NOWAIT));
	mempool_free(e[0], &pool);

	/* Up while the allocator fails: -ENOMEM. */
	ck_assert_int_eq(mempool_resize(&pool, 4), -ENOMEM);
	ck_assert_int_ge(mempool_reserve_count(&pool), 1);
	atomic_store(&t.fail, false);
	mempool_exit(&pool);
	ck_assert_int_eq(atomic_load(&t.frees), atomic_load(&t.allocs));
}
END_TEST

START_TEST(test_mempool_create_destroy_kmalloc)
{
	mempool_t *pool = mempool_create(2, mempool_kmalloc, mempool_kfree,
					 (void *)(size_t)4096);
	void *a, *b, *c;

	ck_assert_ptr_nonnull(pool);
	ck_assert_int_eq(mempool_reserve_count(pool), 2);
	a = mempool_alloc(pool, BLK_GFP_WAIT);
	ck_assert_ptr_nonnull(a);
	memset(a, 0xee, 4096);
	fault_fail_always(&fail_kmalloc);
	b = mempool_alloc(pool, BLK_GFP_WAIT);
	c = mempool_alloc(pool, BLK_GFP_WAIT);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	memset(b, 0xee, 4096);
	memset(c, 0xee, 4096);
	ck_assert_ptr_null(mempool_alloc(pool, BLK_GFP_NOWAIT));
	fault_reset(&fail_kmalloc);
	mempool_free(a, pool);
	mempool_free(b, pool);
	mempool_free(c, pool);
	ck_assert_int_eq(mempool_reserve_count(pool), 2);
	mempool_destroy(pool);
	mempool_destroy(NULL);
}
END_TEST

Suite *mempool_suite(void)
{
	Suite *s = suite_create("mempool");
	TCase *tc = tcase_create("mempool");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_mempool_init_fills_reserve);
	tcase_add_test(tc, test_mempool_init_fails_cleanly);
	tcase_add_test(tc, test_mempool_prefers_allocator);
	tcase_add_test(tc, test_mempool_reserve_fallback_kmalloc);
	tcase_add_test(tc, test_mempool_reserve_lifo);
	tcase_add_test(tc, test_mempool_free_refills_first);
	tcase_add_test(tc, test_mempool_wait_woken_by_free);
	tcase_add_test(tc, test_mempool_blocking_8_threads);
	tcase_add_test(tc, test_mempool_resize);
	tcase_add_test(tc, test_mempool_create_destroy_kmalloc);
	suite_add_tcase(s, tc);
	return s;
}
