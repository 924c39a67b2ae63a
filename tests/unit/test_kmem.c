// SPDX-License-Identifier: MIT
/* kmalloc family and fault injection (core/kmem.h, core/fault.h). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/kmem.h"
#include "helpers.h"
#include "suites.h"

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		if (c[i])
			return false;
	return true;
}

START_TEST(test_kmalloc_basic)
{
	unsigned char *p = kmalloc(100, BLK_GFP_NOWAIT);
	unsigned char *q = kmalloc(4096, BLK_GFP_WAIT);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_ne(p, q);
	memset(p, 0xa5, 100);
	memset(q, 0x5a, 4096);
	ck_assert_uint_eq(p[99], 0xa5);
	kfree(p);
	kfree(q);
	/* Freeing NULL is a no-op. */
	kfree(NULL);
}
END_TEST

START_TEST(test_kzalloc_zeroes)
{
	/* Dirty memory first, so a reused chunk would show through. */
	for (int round = 0; round < 8; round++) {
		size_t size = 64u << round;
		unsigned char *d = kmalloc(size, BLK_GFP_WAIT);
		unsigned char *z, *g;

		ck_assert_ptr_nonnull(d);
		memset(d, 0xff, size);
		kfree(d);
		z = kzalloc(size, BLK_GFP_WAIT);
		ck_assert_ptr_nonnull(z);
		ck_assert_msg(all_zero(z, size), "kzalloc(%zu) not zeroed", size);
		memset(z, 0xff, size);
		kfree(z);
		g = kmalloc(size, BLK_GFP_WAIT | BLK_GFP_ZERO);
		ck_assert_ptr_nonnull(g);
		ck_assert_msg(all_zero(g, size), "kmalloc(ZERO, %zu) not zeroed", size);
		kfree(g);
	}
}
END_TEST

START_TEST(test_kcalloc)
{
	uint32_t *a = kcalloc(1000, sizeof(uint32_t), BLK_GFP_WAIT);

	ck_assert_ptr_nonnull(a);
	ck_assert(all_zero(a, 1000 * sizeof(uint32_t)));
	a[999] = 7;
	kfree(a);

	/* n * size overflows size_t: NULL, no allocation attempt succeeds. */
	ck_assert_ptr_null(kcalloc(SIZE_MAX / 2 + 1, 2, BLK_GFP_WAIT));
	ck_assert_ptr_null(kcalloc(SIZE_MAX, SIZE_MAX, BLK_GFP_WAIT));
	ck_assert_ptr_null(kcalloc(2, SIZE_MAX / 2 + 1, BLK_GFP_NOWAIT));
	ck_assert_ptr_null(kcalloc((SIZE_MAX >> 16) + 2, 1u << 16, BLK_GFP_WAIT));
}
END_TEST

START_TEST(test_fault_nth)
{
	void *p[10];

	for (long nth = 1; nth <= 5; nth++) {
		fault_fail_nth(&fail_kmalloc, nth);
		for (int i = 0; i < 10; i++) {
			p[i] = kmalloc(32, BLK_GFP_WAIT);
			if (i + 1 == nth)
				ck_assert_msg(p[i] == NULL,
					      "nth=%ld: call %d should fail", nth, i + 1);
			else
				ck_assert_msg(p[i] != NULL,
					      "nth=%ld: call %d should succeed", nth, i + 1);
		}
		ck_assert_int_eq(atomic_load(&fail_kmalloc.failures), 1);
		ck_assert_int_ge(atomic_load(&fail_kmalloc.calls), nth);
		for (int i = 0; i < 10; i++)
			kfree(p[i]);
	}
	/* The whole family is covered. */
	fault_fail_nth(&fail_kmalloc, 1);
	ck_assert_ptr_null(kzalloc(8, BLK_GFP_WAIT));
	fault_fail_nth(&fail_kmalloc, 1);
	ck_assert_ptr_null(kcalloc(2, 8, BLK_GFP_WAIT));
	fault_fail_nth(&fail_kmalloc, 2);
	p[0] = kzalloc(8, BLK_GFP_WAIT);
	ck_assert_ptr_nonnull(p[0]);
	ck_assert_ptr_null(kcalloc(2, 8, BLK_GFP_WAIT));
	kfree(p[0]);
	fault_reset(&fail_kmalloc);
}
END_TEST

START_TEST(test_fault_nth_page_alloc_attr_independent)
{
	/* The two attributes are separate: failing one does not fail the other. */
	void *p;

	fault_fail_always(&fail_page_alloc);
	p = kmalloc(16, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(p);
	kfree(p);
	ck_assert_int_eq(atomic_load(&fail_kmalloc.calls), 0);
	ck_assert(should_fail(&fail_page_alloc));
	fault_reset(&fail_page_alloc);
	ck_assert(!should_fail(&fail_page_alloc));
}
END_TEST

#define PROB_CALLS	20000

START_TEST(test_fault_probability)
{
	static bool seq_a[PROB_CALLS], seq_b[PROB_CALLS], seq_c[PROB_CALLS];
	const unsigned int ppm = 250000, seed = 12345;
	long fails = 0;
	int diff = 0;

	fault_fail_probability(&fail_kmalloc, ppm, seed);
	for (int i = 0; i < PROB_CALLS; i++) {
		seq_a[i] = should_fail(&fail_kmalloc);
		fails += seq_a[i];
	}
	ck_assert_int_eq(atomic_load(&fail_kmalloc.calls), PROB_CALLS);
	ck_assert_int_eq(atomic_load(&fail_kmalloc.failures), fails);
	/* 25% of 20000 = 5000; sd ~61, so +-600 is ~10 sd. */
	ck_assert_msg(fails > 4400 && fails < 5600,
		      "%ld failures of %d at 25%%", fails, PROB_CALLS);

	/* Same seed, same sequence: through kmalloc this time. */
	fault_fail_probability(&fail_kmalloc, ppm, seed);
	ck_assert_int_eq(atomic_load(&fail_kmalloc.calls), 0);
	for (int i = 0; i < PROB_CALLS; i++) {
		void *p = kmalloc(8, BLK_GFP_NOWAIT);

		seq_b[i] = p == NULL;
		kfree(p);
	}
	ck_assert_msg(memcmp(seq_a, seq_b, sizeof(seq_a)) == 0,
		      "same seed gave a different failure sequence");

	/* Another seed, another sequence. */
	fault_fail_probability(&fail_kmalloc, ppm, seed + 1);
	for (int i = 0; i < PROB_CALLS; i++) {
		seq_c[i] = should_fail(&fail_kmalloc);
		diff += seq_c[i] != seq_a[i];
	}
	ck_assert_msg(diff > 100, "seeds %u and %u agree on all but %d calls",
		      seed, seed + 1, diff);

	/* 1% rate. */
	fault_fail_probability(&fail_kmalloc, 10000, 7);
	fails = 0;
	for (int i = 0; i < PROB_CALLS; i++)
		fails += should_fail(&fail_kmalloc);
	ck_assert_msg(fails > 100 && fails < 300, "%ld failures at 1%%", fails);

	/* 0 ppm never fails. */
	fault_fail_probability(&fail_kmalloc, 0, 7);
	for (int i = 0; i < 1000; i++)
		ck_assert(!should_fail(&fail_kmalloc));
	fault_reset(&fail_kmalloc);
}
END_TEST

START_TEST(test_fault_always_and_reset)
{
	void *p;

	fault_fail_always(&fail_kmalloc);
	for (int i = 0; i < 100; i++) {
		ck_assert_ptr_null(kmalloc(8, BLK_GFP_WAIT));
		ck_assert_ptr_null(kzalloc(8, BLK_GFP_WAIT | BLK_GFP_ZERO));
	}
	ck_assert_int_eq(atomic_load(&fail_kmalloc.failures), 200);
	ck_assert_int_eq(atomic_load(&fail_kmalloc.calls), 200);

	fault_reset(&fail_kmalloc);
	ck_assert(!atomic_load(&fail_kmalloc.enabled));
	ck_assert_int_eq(atomic_load(&fail_kmalloc.calls), 0);
	ck_assert_int_eq(atomic_load(&fail_kmalloc.failures), 0);
	ck_assert_int_eq(atomic_load(&fail_kmalloc.nth), 0);
	ck_assert_uint_eq(atomic_load(&fail_kmalloc.probability), 0);
	for (int i = 0; i < 100; i++) {
		p = kmalloc(8, BLK_GFP_NOWAIT);
		ck_assert_ptr_nonnull(p);
		kfree(p);
	}
	/* Disabled: calls are not even counted. */
	ck_assert_int_eq(atomic_load(&fail_kmalloc.calls), 0);

	/* reset also cancels a pending nth. */
	fault_fail_nth(&fail_kmalloc, 3);
	fault_reset(&fail_kmalloc);
	for (int i = 0; i < 5; i++) {
		p = kmalloc(8, BLK_GFP_NOWAIT);
		ck_assert_ptr_nonnull(p);
		kfree(p);
	}
}
END_TEST

struct nth_race {
	atomic_int failed;
	int per_thread;
};

static void *nth_race_fn(void *arg)
{
	struct nth_race *r = arg;

	for (int i = 0; i < r->per_thread; i++)
		if (should_fail(&fail_kmalloc))
			atomic_fetch_add(&r->failed, 1);
	return NULL;
}

START_TEST(test_fault_nth_threads)
{
	/* Exactly one of many concurrent calls hits the nth. */
	struct nth_race r = { .per_thread = 5000 };
	pthread_t t[4];

	atomic_init(&r.failed, 0);
	fault_fail_nth(&fail_kmalloc, 7777);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, nth_race_fn, &r), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&r.failed), 1);
	ck_assert_int_eq(atomic_load(&fail_kmalloc.failures), 1);
	ck_assert_int_eq(atomic_load(&fail_kmalloc.calls), 20000);
}
END_TEST

Suite *kmem_suite(void)
{
	Suite *s = suite_create("kmem");
	TCase *tc = tcase_create("kmem");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_kmalloc_basic);
	tcase_add_test(tc, test_kzalloc_zeroes);
	tcase_add_test(tc, test_kcalloc);
	tcase_add_test(tc, test_fault_nth);
	tcase_add_test(tc, test_fault_nth_page_alloc_attr_independent);
	tcase_add_test(tc, test_fault_probability);
	tcase_add_test(tc, test_fault_always_and_reset);
	tcase_add_test(tc, test_fault_nth_threads);
	suite_add_tcase(s, tc);
	return s;
}
