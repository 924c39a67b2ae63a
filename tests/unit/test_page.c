// SPDX-License-Identifier: MIT
/* The page allocator (core/page.h). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/kmem.h"
#include "core/page.h"
#include "helpers.h"
#include "suites.h"

#define KiB	1024ul

static struct pgalloc_stats stats(struct pgalloc *pa)
{
	struct pgalloc_stats st;

	memset(&st, 0xff, sizeof(st));
	pgalloc_get_stats(pa, &st);
	return st;
}

/* Every page freed and the counters balanced. */
static void assert_idle(struct pgalloc *pa)
{
	struct pgalloc_stats st = stats(pa);

	ck_assert_uint_eq(st.free_pages, st.total_pages);
	ck_assert_uint_eq(st.allocs, st.frees);
}

static bool page_in_arena(struct pgalloc *pa, void *p)
{
	int idx = pgalloc_arena_of(pa, p);
	void *base;
	size_t len;

	if (idx < 0 || (unsigned int)idx >= pgalloc_nr_arenas(pa))
		return false;
	pgalloc_arena(pa, (unsigned int)idx, &base, &len);
	return (char *)p >= (char *)base && (char *)p < (char *)base + len &&
	       ((uintptr_t)p & (PAGE_SIZE - 1)) == 0;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

START_TEST(test_page_create_stats)
{
	struct pgalloc *pa = pgalloc_create(64 * KiB, 0, 0);
	struct pgalloc_stats st;
	void *base;
	size_t len;

	ck_assert_ptr_nonnull(pa);
	st = stats(pa);
	ck_assert_uint_eq(st.total_pages, 16);
	ck_assert_uint_eq(st.free_pages, 16);
	ck_assert_uint_eq(st.nr_arenas, 1);
	ck_assert_uint_eq(pgalloc_nr_arenas(pa), 1);
	ck_assert_uint_eq(st.allocs, 0);
	ck_assert_uint_eq(st.frees, 0);
	ck_assert_uint_eq(st.failures, 0);
	ck_assert_uint_eq(st.waits, 0);
	pgalloc_arena(pa, 0, &base, &len);
	ck_assert_uint_eq(len, 64 * KiB);
	ck_assert_uint_eq((uintptr_t)base & (PAGE_SIZE - 1), 0);
	pgalloc_destroy(pa);

	/* The budget is rounded up to whole pages. */
	pa = pgalloc_create(5000, 0, 0);
	ck_assert_ptr_nonnull(pa);
	ck_assert_uint_eq(stats(pa).total_pages, 2);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_counters)
{
	struct pgalloc *pa = pgalloc_create(64 * KiB, 0, 0);
	struct pgalloc_stats st;
	void *p, *run, *bulk[3];

	ck_assert_ptr_nonnull(pa);
	p = page_alloc(pa, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(page_alloc_contig(pa, 4, BLK_GFP_NOWAIT, &run), 0);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 3, bulk), 3);
	st = stats(pa);
	ck_assert_uint_eq(st.allocs, 8);
	ck_assert_uint_eq(st.free_pages, 8);
	ck_assert_uint_eq(st.frees, 0);
	ck_assert_uint_eq(st.failures, 0);

	/* A failed call counts once, whatever its size. */
	ck_assert_int_eq(page_alloc_contig(pa, 9, BLK_GFP_NOWAIT, &run) , -ENOMEM);
	st = stats(pa);
	ck_assert_uint_eq(st.failures, 1);
	ck_assert_uint_eq(st.allocs, 8);
	ck_assert_uint_eq(st.free_pages, 8);

	page_free(pa, p);
	page_free_contig(pa, run, 4);
	page_free_bulk(pa, 3, bulk);
	st = stats(pa);
	ck_assert_uint_eq(st.frees, 8);
	ck_assert_uint_eq(st.free_pages, 16);
	ck_assert_uint_eq(st.waits, 0);
	/* page_free(NULL) is harmless. */
	page_free(pa, NULL);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_aligned_in_arenas)
{
	/* 64 KiB budget in 16 KiB arenas: 4 arenas of 4 pages. */
	struct pgalloc *pa = pgalloc_create(64 * KiB, 16 * KiB, 0);
	unsigned int per_arena[4] = { 0 };
	void *pages[16], *base[4];
	size_t len[4], sum = 0;
	int dummy;

	ck_assert_ptr_nonnull(pa);
	ck_assert_uint_eq(pgalloc_nr_arenas(pa), 4);
	ck_assert_uint_eq(stats(pa).nr_arenas, 4);
	for (unsigned int i = 0; i < 4; i++) {
		pgalloc_arena(pa, i, &base[i], &len[i]);
		ck_assert_uint_eq(len[i], 16 * KiB);
		ck_assert_uint_eq((uintptr_t)base[i] & (PAGE_SIZE - 1), 0);
		ck_assert_int_eq(pgalloc_arena_of(pa, base[i]), (int)i);
		ck_assert_int_eq(pgalloc_arena_of(pa, (char *)base[i] + len[i] - 1), (int)i);
		/* One past the end is not this arena's (it may be another's). */
		ck_assert_int_ne(pgalloc_arena_of(pa, (char *)base[i] + len[i]), (int)i);
		sum += len[i];
		for (unsigned int j = 0; j < i; j++)
			ck_assert((char *)base[i] >= (char *)base[j] + len[j] ||
				  (char *)base[j] >= (char *)base[i] + len[i]);
	}
	ck_assert_uint_eq(sum, 64 * KiB);
	ck_assert_int_eq(pgalloc_arena_of(pa, &dummy), -1);
	ck_assert_int_eq(pgalloc_arena_of(pa, NULL), -1);

	for (int i = 0; i < 16; i++) {
		pages[i] = page_alloc(pa, BLK_GFP_NOWAIT);
		ck_assert_ptr_nonnull(pages[i]);
		ck_assert_msg(page_in_arena(pa, pages[i]), "page %d at %p", i, pages[i]);
		per_arena[pgalloc_arena_of(pa, pages[i])]++;
		memset(pages[i], i, PAGE_SIZE);
	}
	/* Distinct pages: no page handed out twice. */
	qsort(pages, 16, sizeof(pages[0]), cmp_ptr);
	for (int i = 1; i < 16; i++)
		ck_assert_ptr_ne(pages[i], pages[i - 1]);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(per_arena[i], 4);
	ck_assert_ptr_null(page_alloc(pa, BLK_GFP_NOWAIT));
	for (int i = 0; i < 16; i++)
		page_free(pa, pages[i]);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_uneven_arenas)
{
	/* 40 KiB in arenas of at most 16 KiB: 16 + 16 + 8. */
	struct pgalloc *pa = pgalloc_create(40 * KiB, 16 * KiB, 0);
	size_t sum = 0, max = 0, len;
	void *base, *run[3];

	ck_assert_ptr_nonnull(pa);
	ck_assert_uint_eq(pgalloc_nr_arenas(pa), 3);
	ck_assert_uint_eq(stats(pa).total_pages, 10);
	for (unsigned int i = 0; i < 3; i++) {
		pgalloc_arena(pa, i, &base, &len);
		ck_assert_uint_le(len, 16 * KiB);
		ck_assert_uint_eq(len % PAGE_SIZE, 0);
		sum += len;
		max = len > max ? len : max;
	}
	ck_assert_uint_eq(sum, 40 * KiB);
	ck_assert_uint_eq(max, 16 * KiB);

	/* A run never spans two arenas: at most 4 pages. */
	ck_assert_int_eq(page_alloc_contig(pa, 5, BLK_GFP_NOWAIT, &run[0]), -EINVAL);
	ck_assert_int_eq(page_alloc_contig(pa, 5, BLK_GFP_WAIT, &run[0]), -EINVAL);
	ck_assert_int_eq(page_alloc_contig(pa, 4, BLK_GFP_NOWAIT, &run[0]), 0);
	ck_assert_int_eq(page_alloc_contig(pa, 4, BLK_GFP_NOWAIT, &run[1]), 0);
	ck_assert_int_eq(page_alloc_contig(pa, 2, BLK_GFP_NOWAIT, &run[2]), 0);
	for (int i = 0; i < 3; i++) {
		unsigned int n = i < 2 ? 4 : 2;
		int idx = pgalloc_arena_of(pa, run[i]);

		ck_assert(page_in_arena(pa, run[i]));
		ck_assert_int_eq(pgalloc_arena_of(pa, (char *)run[i] + (n - 1) * PAGE_SIZE), idx);
	}
	ck_assert_uint_eq(stats(pa).free_pages, 0);
	page_free_contig(pa, run[0], 4);
	page_free_contig(pa, run[1], 4);
	page_free_contig(pa, run[2], 2);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_contig_einval)
{
	struct pgalloc *pa = pgalloc_create(64 * KiB, 32 * KiB, 0);
	void *addr = (void *)0x1;
	struct pgalloc_stats st;

	ck_assert_ptr_nonnull(pa);
	ck_assert_int_eq(page_alloc_contig(pa, 0, BLK_GFP_NOWAIT, &addr), -EINVAL);
	ck_assert_int_eq(page_alloc_contig(pa, 0, BLK_GFP_WAIT, &addr), -EINVAL);
	/* 16 pages fit the budget but not one 8-page arena: could never succeed. */
	ck_assert_int_eq(page_alloc_contig(pa, 9, BLK_GFP_NOWAIT, &addr), -EINVAL);
	ck_assert_int_eq(page_alloc_contig(pa, 16, BLK_GFP_WAIT, &addr), -EINVAL);
	ck_assert_int_eq(page_alloc_contig(pa, 1u << 30, BLK_GFP_WAIT, &addr), -EINVAL);
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, 16);
	ck_assert_uint_eq(st.allocs, 0);
	ck_assert_int_eq(page_alloc_contig(pa, 8, BLK_GFP_NOWAIT, &addr), 0);
	ck_assert(page_in_arena(pa, addr));
	page_free_contig(pa, addr, 8);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_contig_all_or_nothing)
{
	struct pgalloc *pa = pgalloc_create(64 * KiB, 0, 0);
	void *a, *b, *c = (void *)0x1;
	struct pgalloc_stats st;

	ck_assert_ptr_nonnull(pa);
	ck_assert_int_eq(page_alloc_contig(pa, 10, BLK_GFP_NOWAIT, &a), 0);
	ck_assert(page_in_arena(pa, a));
	memset(a, 0x11, 10 * PAGE_SIZE);

	/* 6 free, 8 asked: nothing taken. */
	ck_assert_int_eq(page_alloc_contig(pa, 8, BLK_GFP_NOWAIT, &c), -ENOMEM);
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, 6);
	ck_assert_uint_eq(st.allocs, 10);
	ck_assert_uint_eq(st.failures, 1);

	ck_assert_int_eq(page_alloc_contig(pa, 6, BLK_GFP_NOWAIT, &b), 0);
	ck_assert(page_in_arena(pa, b));
	ck_assert_int_eq(pgalloc_arena_of(pa, (char *)b + 5 * PAGE_SIZE),
			 pgalloc_arena_of(pa, b));
	/* The runs do not overlap. */
	ck_assert((char *)b >= (char *)a + 10 * PAGE_SIZE ||
		  (char *)a >= (char *)b + 6 * PAGE_SIZE);
	memset(b, 0x22, 6 * PAGE_SIZE);
	for (size_t i = 0; i < 10 * PAGE_SIZE; i++)
		if (((unsigned char *)a)[i] != 0x11)
			ck_abort_msg("run a overwritten at %zu", i);
	ck_assert_uint_eq(stats(pa).free_pages, 0);
	ck_assert_int_eq(page_alloc_contig(pa, 1, BLK_GFP_NOWAIT, &c), -ENOMEM);
	page_free_contig(pa, a, 10);
	page_free_contig(pa, b, 6);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

static void fragmentation(size_t budget, size_t arena)
{
	struct pgalloc *pa = pgalloc_create(budget, arena, 0);
	unsigned int n = (unsigned int)(budget / PAGE_SIZE);
	void **pages = calloc(n, sizeof(void *)), *run;

	ck_assert_ptr_nonnull(pa);
	ck_assert_ptr_nonnull(pages);
	for (unsigned int i = 0; i < n; i++) {
		pages[i] = page_alloc(pa, BLK_GFP_NOWAIT);
		ck_assert_ptr_nonnull(pages[i]);
	}
	/* Free every other page by address: no two free pages are adjacent. */
	qsort(pages, n, sizeof(void *), cmp_ptr);
	for (unsigned int i = 0; i < n; i += 2)
		page_free(pa, pages[i]);
	ck_assert_uint_eq(stats(pa).free_pages, n / 2);
	ck_assert_int_eq(page_alloc_contig(pa, 2, BLK_GFP_NOWAIT, &run), -ENOMEM);
	ck_assert_uint_eq(stats(pa).free_pages, n / 2);
	/* Single pages are still there. */
	ck_assert_int_eq(page_alloc_contig(pa, 1, BLK_GFP_NOWAIT, &run), 0);
	page_free_contig(pa, run, 1);

	for (unsigned int i = 1; i < n; i += 2)
		page_free(pa, pages[i]);
	ck_assert_int_eq(page_alloc_contig(pa, 2, BLK_GFP_NOWAIT, &run), 0);
	ck_assert(page_in_arena(pa, run));
	page_free_contig(pa, run, 2);
	/* Fully coalesced again: a whole arena in one run. */
	ck_assert_int_eq(page_alloc_contig(pa, (unsigned int)(arena / PAGE_SIZE),
					   BLK_GFP_NOWAIT, &run), 0);
	page_free_contig(pa, run, (unsigned int)(arena / PAGE_SIZE));
	assert_idle(pa);
	free(pages);
	pgalloc_destroy(pa);
}

START_TEST(test_page_fragmentation)
{
	fragmentation(128 * KiB, 128 * KiB);
	/* Several arenas, and bitmaps longer than a word. */
	fragmentation(2048 * KiB, 512 * KiB);
	/* Large enough for per-thread page caches. */
	fragmentation(4096 * KiB, 1024 * KiB);
}
END_TEST

START_TEST(test_page_budget_exhaustion)
{
	struct pgalloc *pa = pgalloc_create(64 * KiB, 32 * KiB, 0);
	void *pages[16], *extra[4], *run;
	struct pgalloc_stats st;

	ck_assert_ptr_nonnull(pa);
	for (int i = 0; i < 16; i++) {
		pages[i] = page_alloc(pa, BLK_GFP_NOWAIT);
		ck_assert_ptr_nonnull(pages[i]);
	}
	ck_assert_ptr_null(page_alloc(pa, BLK_GFP_NOWAIT));
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 4, extra), 0);
	ck_assert_int_eq(page_alloc_contig(pa, 1, BLK_GFP_NOWAIT, &run), -ENOMEM);
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, 0);
	ck_assert_uint_eq(st.failures, 3);
	ck_assert_uint_eq(st.allocs, 16);

	/* Giving one back makes exactly one available again. */
	page_free(pa, pages[5]);
	pages[5] = page_alloc(pa, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(pages[5]);
	ck_assert(page_in_arena(pa, pages[5]));
	ck_assert_ptr_null(page_alloc(pa, BLK_GFP_NOWAIT));

	page_free_bulk(pa, 16, pages);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 16, pages), 16);
	page_free_bulk(pa, 16, pages);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_zero)
{
	/* One page of budget: the ZERO allocation must reuse the dirty page. */
	struct pgalloc *pa = pgalloc_create(PAGE_SIZE, 0, 0);
	unsigned char *p, *q;
	void *run, *bulk[4];

	ck_assert_ptr_nonnull(pa);
	p = page_alloc(pa, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(p);
	memset(p, 0xa5, PAGE_SIZE);
	page_free(pa, p);
	q = page_alloc(pa, BLK_GFP_NOWAIT | BLK_GFP_ZERO);
	ck_assert_ptr_eq(q, p);
	for (size_t i = 0; i < PAGE_SIZE; i++)
		if (q[i])
			ck_abort_msg("byte %zu not zeroed", i);
	page_free(pa, q);
	pgalloc_destroy(pa);

	/* Runs and bulk too. */
	pa = pgalloc_create(4 * PAGE_SIZE, 0, 0);
	ck_assert_ptr_nonnull(pa);
	ck_assert_int_eq(page_alloc_contig(pa, 4, BLK_GFP_NOWAIT, &run), 0);
	memset(run, 0x5a, 4 * PAGE_SIZE);
	page_free_contig(pa, run, 4);
	ck_assert_int_eq(page_alloc_contig(pa, 4, BLK_GFP_WAIT | BLK_GFP_ZERO, &run), 0);
	for (size_t i = 0; i < 4 * PAGE_SIZE; i++)
		if (((unsigned char *)run)[i])
			ck_abort_msg("run byte %zu not zeroed", i);
	memset(run, 0x5a, 4 * PAGE_SIZE);
	page_free_contig(pa, run, 4);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT | BLK_GFP_ZERO, 4, bulk), 4);
	for (int j = 0; j < 4; j++)
		for (size_t i = 0; i < PAGE_SIZE; i++)
			if (((unsigned char *)bulk[j])[i])
				ck_abort_msg("bulk page %d byte %zu not zeroed", j, i);
	page_free_bulk(pa, 4, bulk);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_bulk)
{
	struct pgalloc *pa = pgalloc_create(64 * KiB, 16 * KiB, 0);
	void *a[10], *b[10], *all[20];
	unsigned int n;

	ck_assert_ptr_nonnull(pa);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 10, a), 10);
	/* NOWAIT stores what it can. */
	n = page_alloc_bulk(pa, BLK_GFP_NOWAIT, 10, b);
	ck_assert_uint_eq(n, 6);
	ck_assert_uint_eq(stats(pa).free_pages, 0);
	memcpy(all, a, sizeof(a));
	memcpy(all + 10, b, 6 * sizeof(void *));
	qsort(all, 16, sizeof(void *), cmp_ptr);
	for (int i = 0; i < 16; i++) {
		ck_assert(page_in_arena(pa, all[i]));
		if (i)
			ck_assert_ptr_ne(all[i], all[i - 1]);
	}
	page_free_bulk(pa, 6, b);
	page_free_bulk(pa, 10, a);
	page_free_bulk(pa, 0, a);
	assert_idle(pa);

	/* WAIT with more than the budget cannot sleep forever: it returns what it got. */
	n = page_alloc_bulk(pa, BLK_GFP_WAIT, 20, all);
	ck_assert_uint_le(n, 16);
	for (unsigned int i = 0; i < n; i++)
		ck_assert(page_in_arena(pa, all[i]));
	page_free_bulk(pa, n, all);
	/* Zero pages asked, zero given. */
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_WAIT, 0, all), 0);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_reuse_lowest)
{
	/* One arena, large enough that a moving hint would wander. */
	struct pgalloc *pa = pgalloc_create(16 * 1024 * KiB, 0, 0);
	static void *set[2][256];
	char *base;
	size_t len;

	ck_assert_ptr_nonnull(pa);
	pgalloc_arena(pa, 0, (void **)&base, &len);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 256, set[0]), 256);
	/*
	 * Two 1 MiB sets in flight, freed and taken again in turn, as FUSE
	 * landing pages are: they must keep to the lowest 512 pages, which
	 * stay in the CPU caches, not walk through the whole budget.
	 */
	for (int round = 0; round < 200; round++) {
		int k = (round + 1) % 2;

		ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 256, set[k]), 256);
		for (int i = 0; i < 256; i++)
			ck_assert((char *)set[k][i] < base + 512 * PAGE_SIZE);
		page_free_bulk(pa, 256, set[!k]);
	}
	page_free_bulk(pa, 256, set[200 % 2]);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_fault_injection)
{
	struct pgalloc *pa = pgalloc_create(64 * KiB, 0, 0);
	void *pages[8], *run;
	unsigned int n;

	ck_assert_ptr_nonnull(pa);
	/* Counted per page: the 3rd page of a bulk call fails, 2 are stored. */
	fault_fail_nth(&fail_page_alloc, 3);
	n = page_alloc_bulk(pa, BLK_GFP_NOWAIT, 8, pages);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(stats(pa).allocs, 2);
	page_free_bulk(pa, n, pages);
	/* Later calls succeed again. */
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 8, pages), 8);
	page_free_bulk(pa, 8, pages);

	/* An injected failure does not sleep even with WAIT. */
	fault_fail_nth(&fail_page_alloc, 5);
	n = page_alloc_bulk(pa, BLK_GFP_WAIT, 8, pages);
	ck_assert_uint_eq(n, 4);
	page_free_bulk(pa, n, pages);

	fault_fail_always(&fail_page_alloc);
	ck_assert_ptr_null(page_alloc(pa, BLK_GFP_WAIT));
	ck_assert_int_eq(page_alloc_contig(pa, 2, BLK_GFP_WAIT, &run), -ENOMEM);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_WAIT, 8, pages), 0);
	ck_assert_uint_eq(stats(pa).free_pages, 16);
	fault_reset(&fail_page_alloc);
	run = page_alloc(pa, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(run);
	page_free(pa, run);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

struct waiter {
	struct pgalloc *pa;
	unsigned int nr;	/* 0: page_alloc; else contig or bulk of nr */
	bool bulk;
	void *got[32];
	int ret;
	atomic_bool done;
};

static void *waiter_fn(void *arg)
{
	struct waiter *w = arg;

	if (!w->nr) {
		w->got[0] = page_alloc(w->pa, BLK_GFP_WAIT);
		w->ret = w->got[0] ? 0 : -ENOMEM;
	} else if (w->bulk) {
		w->ret = (int)page_alloc_bulk(w->pa, BLK_GFP_WAIT, w->nr, w->got);
	} else {
		w->ret = page_alloc_contig(w->pa, w->nr, BLK_GFP_WAIT, &w->got[0]);
	}
	atomic_store(&w->done, true);
	return NULL;
}

static void start_waiter(pthread_t *t, struct waiter *w)
{
	atomic_init(&w->done, false);
	w->ret = -1;
	ck_assert_int_eq(pthread_create(t, NULL, waiter_fn, w), 0);
	/* It must go to sleep (counted in waits) and stay asleep. */
	ck_assert_msg(wait_until(stats(w->pa).waits >= 1, 5000),
		      "the allocation never slept");
	sleep_ms(20);
	ck_assert_msg(!atomic_load(&w->done), "WAIT allocation returned without memory");
}

START_TEST(test_page_wait_single)
{
	struct pgalloc *pa = pgalloc_create(4 * PAGE_SIZE, 0, 0);
	struct waiter w = { .pa = pa };
	double t0 = now_sec();
	void *pages[4];
	pthread_t t;

	ck_assert_ptr_nonnull(pa);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 4, pages), 4);
	start_waiter(&t, &w);
	page_free(pa, pages[2]);
	ck_assert_wait(atomic_load(&w.done), 5000);
	pthread_join(t, NULL);
	ck_assert_int_eq(w.ret, 0);
	/* The only free page is the one just given back. */
	ck_assert_ptr_eq(w.got[0], pages[2]);
	ck_assert_uint_ge(stats(pa).waits, 1);
	pages[2] = w.got[0];
	page_free_bulk(pa, 4, pages);
	assert_idle(pa);
	ck_assert(now_sec() - t0 < 5.0);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_wait_contig)
{
	struct pgalloc *pa = pgalloc_create(8 * PAGE_SIZE, 0, 0);
	struct waiter w = { .pa = pa, .nr = 2 };
	void *pages[8];
	pthread_t t;

	ck_assert_ptr_nonnull(pa);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 8, pages), 8);
	qsort(pages, 8, sizeof(void *), cmp_ptr);
	/* Fragment: 4 free pages, no two adjacent. */
	for (int i = 0; i < 8; i += 2)
		page_free(pa, pages[i]);
	start_waiter(&t, &w);
	/* Pages 2 and 3 are adjacent once 3 is free: the run appears. */
	page_free(pa, pages[3]);
	ck_assert_wait(atomic_load(&w.done), 5000);
	pthread_join(t, NULL);
	ck_assert_int_eq(w.ret, 0);
	ck_assert(page_in_arena(pa, w.got[0]));
	ck_assert(w.got[0] == pages[2] || w.got[0] == pages[3]);
	page_free_contig(pa, w.got[0], 2);
	page_free(pa, pages[1]);
	page_free(pa, pages[5]);
	page_free(pa, pages[7]);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_wait_bulk_all_or_nothing)
{
	struct pgalloc *pa = pgalloc_create(8 * PAGE_SIZE, 0, 0);
	struct waiter w = { .pa = pa, .nr = 4, .bulk = true };
	void *pages[8];
	pthread_t t;

	ck_assert_ptr_nonnull(pa);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, 8, pages), 8);
	page_free_bulk(pa, 2, pages);
	start_waiter(&t, &w);
	/* Sleeping, it holds nothing: the two free pages are still free. */
	ck_assert_uint_eq(stats(pa).free_pages, 2);
	page_free(pa, pages[2]);
	sleep_ms(20);
	ck_assert(!atomic_load(&w.done));
	page_free(pa, pages[3]);
	ck_assert_wait(atomic_load(&w.done), 5000);
	pthread_join(t, NULL);
	ck_assert_int_eq(w.ret, 4);
	ck_assert_uint_eq(stats(pa).free_pages, 0);
	page_free_bulk(pa, 4, w.got);
	page_free_bulk(pa, 4, pages + 4);
	assert_idle(pa);
	pgalloc_destroy(pa);
}
END_TEST

#define CONC_THREADS	4
#define CONC_MAX_HOLD	240
#define CONC_BULK	16

struct conc_arg {
	struct pgalloc *pa;
	unsigned int id;
	unsigned int hold;		/* pages held at most */
	unsigned long pages_got;	/* pages this thread was given */
	unsigned long bad;		/* pages found not as left */
};

struct held {
	void *addr;
	unsigned int nr;
	bool contig;		/* from page_alloc_contig(): free it as a run */
	unsigned char tag;
};

static void conc_free(struct pgalloc *pa, const struct held *h)
{
	if (h->contig)
		page_free_contig(pa, h->addr, h->nr);
	else
		page_free(pa, h->addr);
}

static void conc_fill(struct held *h)
{
	memset(h->addr, h->tag, (size_t)h->nr * PAGE_SIZE);
}

static bool conc_check(const struct held *h)
{
	const unsigned char *p = h->addr;

	for (size_t i = 0; i < (size_t)h->nr * PAGE_SIZE; i += 512)
		if (p[i] != h->tag)
			return false;
	return true;
}

/* One conc_fn() thread's holdings. */
struct conc_state {
	struct conc_arg *a;
	struct held *held;
	unsigned int nheld, npages;
	struct rng r;
};

/* Take @h (allocated, page-aligned, filled with its tag) into the holdings. */
static void conc_keep(struct conc_state *st, struct held *h)
{
	st->a->pages_got += h->nr;
	if ((uintptr_t)h->addr & (PAGE_SIZE - 1))
		st->a->bad++;
	conc_fill(h);
	st->held[st->nheld++] = *h;
	st->npages += h->nr;
}

/* Drop a random holding, checked; for @op 0 with single pages, a batch. */
static void conc_release(struct conc_state *st, unsigned int op)
{
	unsigned int k = rng_range(&st->r, 0, st->nheld - 1);
	void *batch[CONC_BULK];
	unsigned int nb = 0;
	struct held h = st->held[k];

	st->held[k] = st->held[--st->nheld];
	if (!conc_check(&h))
		st->a->bad++;
	st->npages -= h.nr;
	if (h.contig || op != 0) {
		conc_free(st->a->pa, &h);
		return;
	}
	batch[nb++] = h.addr;
	while (nb < CONC_BULK && st->nheld && !st->held[st->nheld - 1].contig) {
		h = st->held[--st->nheld];
		if (!conc_check(&h))
			st->a->bad++;
		st->npages--;
		batch[nb++] = h.addr;
	}
	page_free_bulk(st->a->pa, nb, batch);
}

/* page_alloc_bulk(), WAIT for odd @op: within the budget, all of it. */
static void conc_alloc_bulk(struct conc_state *st, unsigned int op,
			    unsigned char tag)
{
	void *p[CONC_BULK];
	unsigned int want = rng_range(&st->r, 1, CONC_BULK), got;

	if (st->npages + want > st->a->hold || st->nheld + want > CONC_MAX_HOLD)
		return;
	got = page_alloc_bulk(st->a->pa, (op & 1) ? BLK_GFP_WAIT : BLK_GFP_NOWAIT,
			      want, p);
	if ((op & 1) && got != want)
		st->a->bad++;
	for (unsigned int i = 0; i < got; i++) {
		struct held hb = { .addr = p[i], .nr = 1, .tag = tag };

		conc_keep(st, &hb);
	}
}

/* One page (@op < 6, WAIT when odd) or a contig run of 1 to 4. */
static void conc_alloc(struct conc_state *st, unsigned int op, unsigned char tag)
{
	struct held h = { .tag = tag };

	if (op < 6) {
		if (st->npages >= st->a->hold)
			return;
		h.addr = page_alloc(st->a->pa, (op & 1) ? BLK_GFP_WAIT : BLK_GFP_NOWAIT);
		h.nr = 1;
	} else {
		h.nr = rng_range(&st->r, 1, 4);
		h.contig = true;
		if (st->npages + h.nr > st->a->hold ||
		    page_alloc_contig(st->a->pa, h.nr, BLK_GFP_NOWAIT, &h.addr))
			h.addr = NULL;
	}
	if (h.addr)
		conc_keep(st, &h);
	else if (op < 6 && (op & 1))
		st->a->bad++;	/* WAIT returned NULL */
}

/*
 * Random single, bulk and contig allocations and frees.  Each thread holds
 * at most a->hold pages, and CONC_THREADS * hold + CONC_BULK <= budget, so
 * a WAIT allocation can always be served once the others' caches are
 * drained: it must never sleep for ever.
 */
static void *conc_fn(void *arg)
{
	struct conc_state st = { .a = arg };
	struct conc_arg *a = st.a;

	st.held = calloc(CONC_MAX_HOLD, sizeof(*st.held));
	if (!st.held) {
		a->bad++;
		return NULL;
	}
	rng_seed(&st.r, 1000 + a->id);
	for (int it = 0; it < 4000; it++) {
		unsigned int op = rng_range(&st.r, 0, 9);
		unsigned char tag = (unsigned char)(a->id * 64 + it % 61 + 1);

		if (st.nheld && (op < 4 || st.nheld == a->hold))
			conc_release(&st, op);
		else if (op < 8)
			conc_alloc(&st, op, tag);
		else
			conc_alloc_bulk(&st, op, tag);
	}
	while (st.nheld) {
		struct held h = st.held[--st.nheld];

		if (!conc_check(&h))
			a->bad++;
		conc_free(a->pa, &h);
	}
	free(st.held);
	return NULL;
}

/* _i = 0: 64 pages, no thread caches; _i = 1: 4 MiB, with them. */
START_TEST(test_page_concurrent)
{
	size_t budget = _i ? 4096 * KiB : 256 * KiB;
	unsigned int hold = _i ? CONC_MAX_HOLD : 8;
	struct pgalloc *pa = pgalloc_create(budget, budget / 2, 0);
	struct conc_arg args[CONC_THREADS];
	pthread_t t[CONC_THREADS];
	unsigned long total = 0;
	struct pgalloc_stats st;

	ck_assert_ptr_nonnull(pa);
	ck_assert_uint_le(CONC_THREADS * hold + CONC_BULK, budget / PAGE_SIZE);
	for (unsigned int i = 0; i < CONC_THREADS; i++) {
		args[i] = (struct conc_arg){ .pa = pa, .id = i, .hold = hold };
		ck_assert_int_eq(pthread_create(&t[i], NULL, conc_fn, &args[i]), 0);
	}
	for (unsigned int i = 0; i < CONC_THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(args[i].bad == 0,
			      "thread %u: %lu bad pages or failed WAIT allocations",
			      i, args[i].bad);
		total += args[i].pages_got;
	}
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, st.total_pages);
	ck_assert_uint_eq(st.allocs, total);
	ck_assert_uint_eq(st.frees, total);
	ck_assert_uint_gt(total, 1000);
	/* Everything is back: the whole of each arena is one free run. */
	for (unsigned int i = 0; i < 2; i++) {
		void *run;

		ck_assert_int_eq(page_alloc_contig(pa, (unsigned int)(budget / 2 / PAGE_SIZE),
						   BLK_GFP_NOWAIT, &run), 0);
		memset(run, 0, budget / 2);
		page_free_contig(pa, run, (unsigned int)(budget / 2 / PAGE_SIZE));
	}
	pgalloc_destroy(pa);
}
END_TEST

/*
 * Per-thread page caches (budgets of 4 MiB and more may have them): pages
 * a live thread freed into its cache still serve everyone else.
 */
#define PCP_BUDGET	(4096 * KiB)
#define PCP_PAGES	(PCP_BUDGET / PAGE_SIZE)

struct parker {
	struct pgalloc *pa;
	void **pages;		/* pages to free, or NULL: allocate nr first */
	unsigned int nr;
	atomic_int state;	/* 1: freed, 2: may exit */
};

static void *parker_fn(void *arg)
{
	struct parker *k = arg;
	void *own[64];

	if (!k->pages) {
		for (unsigned int i = 0; i < k->nr; i++)
			own[i] = page_alloc(k->pa, BLK_GFP_NOWAIT);
		for (unsigned int i = 0; i < k->nr; i++)
			page_free(k->pa, own[i]);
	} else {
		for (unsigned int i = 0; i < k->nr; i++)
			page_free(k->pa, k->pages[i]);
	}
	atomic_store(&k->state, 1);
	/* Stay alive (keeping any cache) until told. */
	wait_until(atomic_load(&k->state) == 2, 15000);
	return NULL;
}

static void parker_start(pthread_t *t, struct parker *k)
{
	atomic_init(&k->state, 0);
	ck_assert_int_eq(pthread_create(t, NULL, parker_fn, k), 0);
}

static void parker_stop(pthread_t t, struct parker *k)
{
	atomic_store(&k->state, 2);
	pthread_join(t, NULL);
}

START_TEST(test_page_cached_pages_serve_nowait)
{
	struct pgalloc *pa = pgalloc_create(PCP_BUDGET, 0, 0);
	struct parker k = { .pa = pa, .nr = 48 };
	void **pages = calloc(PCP_PAGES, sizeof(void *)), *run;
	struct pgalloc_stats st;
	pthread_t t;

	ck_assert_ptr_nonnull(pa);
	ck_assert_ptr_nonnull(pages);
	parker_start(&t, &k);
	ck_assert_wait(atomic_load(&k.state) == 1, 5000);
	/* Cached pages count as free. */
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, PCP_PAGES);
	ck_assert_uint_eq(st.allocs, 48);
	ck_assert_uint_eq(st.frees, 48);

	/* Every page of the budget, one at a time, NOWAIT. */
	for (unsigned int i = 0; i < PCP_PAGES; i++) {
		pages[i] = page_alloc(pa, BLK_GFP_NOWAIT);
		ck_assert_msg(pages[i] != NULL, "page %u of %lu failed", i, PCP_PAGES);
	}
	ck_assert_ptr_null(page_alloc(pa, BLK_GFP_NOWAIT));
	ck_assert_uint_eq(stats(pa).free_pages, 0);
	qsort(pages, PCP_PAGES, sizeof(void *), cmp_ptr);
	for (unsigned int i = 1; i < PCP_PAGES; i++)
		ck_assert_ptr_ne(pages[i], pages[i - 1]);

	/* Freed in small batches (cached here), then the whole arena as one run. */
	for (unsigned int i = 0; i < PCP_PAGES; i += 8)
		page_free_bulk(pa, 8, pages + i);
	ck_assert_uint_eq(stats(pa).free_pages, PCP_PAGES);
	ck_assert_int_eq(page_alloc_contig(pa, PCP_PAGES, BLK_GFP_NOWAIT, &run), 0);
	page_free_contig(pa, run, PCP_PAGES);
	/* And all of it in one bulk call. */
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, PCP_PAGES, pages), PCP_PAGES);
	page_free_bulk(pa, PCP_PAGES, pages);

	parker_stop(t, &k);
	st = stats(pa);
	ck_assert_uint_eq(st.free_pages, PCP_PAGES);
	ck_assert_uint_eq(st.allocs, st.frees);
	free(pages);
	pgalloc_destroy(pa);
}
END_TEST

/* _i = 0: the pages are cached before the waiter sleeps; 1: after. */
START_TEST(test_page_cached_pages_wake_waiter)
{
	struct pgalloc *pa = pgalloc_create(PCP_BUDGET, 0, 0);
	void **pages = calloc(PCP_PAGES, sizeof(void *));
	struct parker k = { .pa = pa, .nr = 24 };
	struct waiter w = { .pa = pa, .nr = 24, .bulk = true };
	pthread_t tk, tw;

	ck_assert_ptr_nonnull(pa);
	ck_assert_ptr_nonnull(pages);
	ck_assert_uint_eq(page_alloc_bulk(pa, BLK_GFP_NOWAIT, PCP_PAGES, pages), PCP_PAGES);
	/* The parker frees (into its cache) the last 24 pages, and stays alive. */
	k.pages = pages + PCP_PAGES - 24;
	if (_i == 0) {
		parker_start(&tk, &k);
		ck_assert_wait(atomic_load(&k.state) == 1, 5000);
		atomic_init(&w.done, false);
		ck_assert_int_eq(pthread_create(&tw, NULL, waiter_fn, &w), 0);
	} else {
		start_waiter(&tw, &w);
		parker_start(&tk, &k);
	}
	ck_assert_msg(wait_until(atomic_load(&w.done), 5000),
		      "a WAIT allocation slept while a live thread's cache held the pages");
	pthread_join(tw, NULL);
	ck_assert_int_eq(w.ret, 24);
	page_free_bulk(pa, 24, w.got);
	parker_stop(tk, &k);
	page_free_bulk(pa, PCP_PAGES - 24, pages);
	assert_idle(pa);
	free(pages);
	pgalloc_destroy(pa);
}
END_TEST

/* Regression: page_alloc_contig() counted one injected failure per call. */
START_TEST(test_page_contig_fault_per_page)
{
	struct pgalloc *pa = pgalloc_create(64 * 1024, 0, 0);
	void *p;

	ck_assert_ptr_nonnull(pa);
	fault_fail_nth(&fail_page_alloc, 3);
	ck_assert_int_eq(page_alloc_contig(pa, 4, BLK_GFP_NOWAIT, &p), -ENOMEM);
	fault_reset(&fail_page_alloc);
	ck_assert_uint_eq(stats(pa).free_pages, 16);

	fault_fail_nth(&fail_page_alloc, 5);
	ck_assert_int_eq(page_alloc_contig(pa, 4, BLK_GFP_NOWAIT, &p), 0);
	fault_reset(&fail_page_alloc);
	page_free_contig(pa, p, 4);
	ck_assert_uint_eq(stats(pa).free_pages, 16);
	pgalloc_destroy(pa);
}
END_TEST

/*
 * Regression: a thread's first page allocation from a cached allocator
 * made its cache with kmalloc, using up an injected kmalloc failure.
 */
START_TEST(test_page_cache_no_kmalloc)
{
	struct pgalloc *pa = pgalloc_create(8u << 20, 0, 0);
	void *page, *p;

	ck_assert_ptr_nonnull(pa);
	fault_fail_nth(&fail_kmalloc, 1);
	page = page_alloc(pa, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(page);
	p = kmalloc(64, BLK_GFP_WAIT);
	ck_assert_ptr_null(p);			/* the injected failure is still ours */
	fault_reset(&fail_kmalloc);
	page_free(pa, page);
	pgalloc_destroy(pa);
}
END_TEST

START_TEST(test_page_mlock)
{
	struct pgalloc *b = pgalloc_create(64 * KiB, 0, PGALLOC_MLOCK);
	void *p;

	ck_assert_ptr_nonnull(b);
	/* The mlock'ed allocator works the same (locked or not, per rlimit). */
	p = page_alloc(b, BLK_GFP_NOWAIT);
	ck_assert_ptr_nonnull(p);
	memset(p, 1, PAGE_SIZE);
	page_free(b, p);
	pgalloc_destroy(b);
}
END_TEST

Suite *page_suite(void)
{
	Suite *s = suite_create("page");
	TCase *tc = tcase_create("page");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_page_create_stats);
	tcase_add_test(tc, test_page_counters);
	tcase_add_test(tc, test_page_aligned_in_arenas);
	tcase_add_test(tc, test_page_uneven_arenas);
	tcase_add_test(tc, test_page_contig_einval);
	tcase_add_test(tc, test_page_contig_all_or_nothing);
	tcase_add_test(tc, test_page_fragmentation);
	tcase_add_test(tc, test_page_budget_exhaustion);
	tcase_add_test(tc, test_page_zero);
	tcase_add_test(tc, test_page_bulk);
	tcase_add_test(tc, test_page_reuse_lowest);
	tcase_add_test(tc, test_page_fault_injection);
	tcase_add_test(tc, test_page_wait_single);
	tcase_add_test(tc, test_page_wait_contig);
	tcase_add_test(tc, test_page_wait_bulk_all_or_nothing);
	tcase_add_loop_test(tc, test_page_concurrent, 0, 2);
	tcase_add_test(tc, test_page_cached_pages_serve_nowait);
	tcase_add_loop_test(tc, test_page_cached_pages_wake_waiter, 0, 2);
	tcase_add_test(tc, test_page_contig_fault_per_page);
	tcase_add_test(tc, test_page_cache_no_kmalloc);
	tcase_add_test(tc, test_page_mlock);
	suite_add_tcase(s, tc);
	return s;
}
