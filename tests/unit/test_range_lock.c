// SPDX-License-Identifier: MIT
/*
 * core/range_lock: who waits for whom, in arrival order; grant callbacks
 * and sleepers; and, under threads, that no two conflicting holders ever
 * overlap in time.
 */
#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "core/range_lock.h"
#include "helpers.h"
#include "suites.h"

/* An entry whose grant callback counts its calls. */
struct entry {
	struct range_lock rl;
	atomic_int grants;
	sem_t *sem;			/* posted by the callback, if set */
};

static void entry_granted(struct range_lock *rl)
{
	struct entry *e = container_of(rl, struct entry, rl);

	atomic_fetch_add(&e->grants, 1);
	if (e->sem)
		sem_post(e->sem);
}

static bool try_entry(struct range_lock_tree *t, struct entry *e,
		      uint64_t start, uint64_t end, bool exclusive)
{
	atomic_init(&e->grants, 0);
	e->sem = NULL;
	return range_lock_try(t, &e->rl, start, end, exclusive, entry_granted);
}

struct span {
	uint64_t start, end;
	bool exclusive;
};

/* List @n entries that must all be granted at once; no callback may run. */
static void expect_no_waits(const struct span *sp, unsigned int n)
{
	struct range_lock_tree t;
	struct entry e[8];
	int grants = 0;

	ck_assert_uint_le(n, 8);
	range_lock_tree_init(&t);
	for (unsigned int i = 0; i < n; i++)
		ck_assert_msg(try_entry(&t, &e[i], sp[i].start, sp[i].end,
					sp[i].exclusive), "entry %u waits", i);
	/* Release out of order: the middle one first. */
	range_unlock(&t, &e[n / 2].rl);
	for (unsigned int i = 0; i < n; i++)
		if (i != n / 2)
			range_unlock(&t, &e[i].rl);
	for (unsigned int i = 0; i < n; i++)
		grants += atomic_load(&e[i].grants);
	ck_assert_int_eq(grants, 0);
	ck_assert_ptr_null(t.head);
	range_lock_tree_destroy(&t);
}

START_TEST(test_shared_never_wait)
{
	static const struct span sp[] = {
		{ 0, 100, false }, { 50, 150, false }, { 0, 150, false },
	};

	expect_no_waits(sp, ARRAY_SIZE(sp));
}
END_TEST

START_TEST(test_exclusive_waits_for_either)
{
	struct range_lock_tree t;
	struct entry s, x, y;

	range_lock_tree_init(&t);
	ck_assert(try_entry(&t, &s, 0, 100, false));
	ck_assert(!try_entry(&t, &x, 99, 200, true));	/* behind a shared one */
	ck_assert(!try_entry(&t, &y, 150, 160, true));	/* behind an exclusive one */
	range_unlock(&t, &s.rl);
	ck_assert_int_eq(atomic_load(&x.grants), 1);
	ck_assert(x.rl.granted);
	ck_assert_int_eq(atomic_load(&y.grants), 0);
	range_unlock(&t, &x.rl);
	ck_assert_int_eq(atomic_load(&y.grants), 1);
	range_unlock(&t, &y.rl);
	range_lock_tree_destroy(&t);
}
END_TEST

START_TEST(test_shared_waits_for_exclusive)
{
	static const uint64_t at[2][2] = { { 0, 4097 }, { 8191, 9000 } };
	struct range_lock_tree t;
	struct entry x, s[2];

	range_lock_tree_init(&t);
	ck_assert(try_entry(&t, &x, 4096, 8192, true));
	for (unsigned int i = 0; i < 2; i++)
		ck_assert(!try_entry(&t, &s[i], at[i][0], at[i][1], false));
	range_unlock(&t, &x.rl);
	/* Both go at once: shared entries never wait for each other. */
	for (unsigned int i = 0; i < 2; i++)
		ck_assert_int_eq(atomic_load(&s[i].grants), 1);
	for (unsigned int i = 0; i < 2; i++)
		range_unlock(&t, &s[i].rl);
	range_lock_tree_destroy(&t);
}
END_TEST

START_TEST(test_disjoint_never_wait)
{
	static const struct span sp[] = {
		{ 0, 4096, true }, { 4096, 8192, true },	/* adjacent */
		{ 8192, 9000, false }, { 100000, 100001, true },
	};

	expect_no_waits(sp, ARRAY_SIZE(sp));
}
END_TEST

/* A shared entry listed after a waiting exclusive one waits behind it. */
START_TEST(test_arrival_order)
{
	struct range_lock_tree t;
	struct entry s1, x, s2, far;

	range_lock_tree_init(&t);
	ck_assert(try_entry(&t, &s1, 0, 100, false));
	ck_assert(!try_entry(&t, &x, 0, 100, true));
	ck_assert(!try_entry(&t, &s2, 10, 20, false));	/* s1 alone would let it */
	ck_assert(try_entry(&t, &far, 500, 600, false));
	range_unlock(&t, &s1.rl);
	ck_assert_int_eq(atomic_load(&x.grants), 1);
	ck_assert_int_eq(atomic_load(&s2.grants), 0);
	range_unlock(&t, &x.rl);
	ck_assert_int_eq(atomic_load(&s2.grants), 1);
	range_unlock(&t, &s2.rl);
	range_unlock(&t, &far.rl);
	range_lock_tree_destroy(&t);
}
END_TEST

/* A callback runs once, and with the tree's mutex dropped. */
struct relock {
	struct range_lock rl;
	struct range_lock_tree *t;
	struct range_lock inner;
	atomic_int grants;
	bool inner_granted;
};

static void relock_granted(struct range_lock *rl)
{
	struct relock *r = container_of(rl, struct relock, rl);

	atomic_fetch_add(&r->grants, 1);
	/* Would deadlock if range_unlock() still held the mutex. */
	r->inner_granted = range_lock_try(r->t, &r->inner, 1000, 2000, true,
					  relock_granted);
}

START_TEST(test_grant_once_unlocked)
{
	struct range_lock_tree t;
	struct entry x, other;
	struct relock r = { .t = &t };

	range_lock_tree_init(&t);
	atomic_init(&r.grants, 0);
	ck_assert(try_entry(&t, &x, 0, 100, true));
	ck_assert(!range_lock_try(&t, &r.rl, 50, 60, false, relock_granted));
	range_unlock(&t, &x.rl);
	ck_assert_int_eq(atomic_load(&r.grants), 1);
	ck_assert(r.inner_granted);
	/* Later releases grant nothing already granted. */
	ck_assert(try_entry(&t, &other, 0, 10, true));
	range_unlock(&t, &other.rl);
	range_unlock(&t, &r.inner);
	range_unlock(&t, &r.rl);
	ck_assert_int_eq(atomic_load(&r.grants), 1);
	ck_assert_int_eq(atomic_load(&x.grants), 0);
	range_lock_tree_destroy(&t);
}
END_TEST

struct sleeper {
	struct range_lock_tree *t;
	struct range_lock rl;
	uint64_t start, end;
	bool exclusive;
	atomic_bool holding;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;

	range_lock_wait(s->t, &s->rl, s->start, s->end, s->exclusive);
	atomic_store(&s->holding, true);
	return NULL;
}

START_TEST(test_wait_threads)
{
	struct range_lock_tree t;
	struct sleeper s[3] = {
		{ .t = &t, .start = 0, .end = 10, .exclusive = false },
		{ .t = &t, .start = 5, .end = 9, .exclusive = true },
		{ .t = &t, .start = 8, .end = 9, .exclusive = false },
	};
	pthread_t th[3];
	struct entry x;

	range_lock_tree_init(&t);
	ck_assert(try_entry(&t, &x, 0, 100, true));
	ck_assert_int_eq(pthread_create(&th[0], NULL, sleeper_main, &s[0]), 0);
	ck_assert_wait(t.nr_sleepers == 1, 5000);
	ck_assert_int_eq(pthread_create(&th[1], NULL, sleeper_main, &s[1]), 0);
	ck_assert_wait(t.nr_sleepers == 2, 5000);
	ck_assert_int_eq(pthread_create(&th[2], NULL, sleeper_main, &s[2]), 0);
	ck_assert_wait(t.nr_sleepers == 3, 5000);
	sleep_ms(20);
	ck_assert(!atomic_load(&s[0].holding));

	/* The shared sleeper goes; the exclusive one waits for it. */
	range_unlock(&t, &x.rl);
	pthread_join(th[0], NULL);
	ck_assert(atomic_load(&s[0].holding));
	sleep_ms(20);
	ck_assert(!atomic_load(&s[1].holding));
	ck_assert(!atomic_load(&s[2].holding));
	range_unlock(&t, &s[0].rl);
	pthread_join(th[1], NULL);
	range_unlock(&t, &s[1].rl);
	pthread_join(th[2], NULL);
	range_unlock(&t, &s[2].rl);
	ck_assert_ptr_null(t.head);
	range_lock_tree_destroy(&t);
}
END_TEST

/*
 * Threads take random ranges of a small space, some sleeping in
 * range_lock_wait(), some through range_lock_try() and a callback; while
 * holding one they mark its units, and any unit marked by a conflicting
 * holder fails the test.
 */
#define CONC_UNITS	64
#define CONC_THREADS	6
#define CONC_ROUNDS	3000

struct conc {
	struct range_lock_tree t;
	pthread_mutex_t lock;		/* the marks */
	int shared[CONC_UNITS];
	int exclusive[CONC_UNITS];
	atomic_int conflicts;
	atomic_ulong waited;
};

struct conc_thread {
	struct conc *c;
	unsigned int id;
};

static void conc_mark(struct conc *c, uint64_t s, uint64_t e, bool excl, int d)
{
	pthread_mutex_lock(&c->lock);
	for (uint64_t u = s; u < e; u++) {
		if (d > 0 && (c->exclusive[u] || (excl && c->shared[u])))
			atomic_fetch_add(&c->conflicts, 1);
		if (excl)
			c->exclusive[u] += d;
		else
			c->shared[u] += d;
	}
	pthread_mutex_unlock(&c->lock);
}

static void conc_take(struct conc *c, struct entry *e, sem_t *sem, bool sleep,
		      uint64_t s, uint64_t end, bool excl)
{
	if (sleep) {
		range_lock_wait(&c->t, &e->rl, s, end, excl);
		return;
	}
	atomic_init(&e->grants, 0);
	e->sem = sem;
	if (range_lock_try(&c->t, &e->rl, s, end, excl, entry_granted))
		return;
	atomic_fetch_add(&c->waited, 1);
	sem_wait(sem);
	ck_assert_int_eq(atomic_load(&e->grants), 1);
}

static void *conc_main(void *arg)
{
	struct conc_thread *ct = arg;
	struct conc *c = ct->c;
	struct entry e;
	struct rng r;
	sem_t sem;

	sem_init(&sem, 0, 0);
	rng_seed(&r, 0x7a11 + ct->id);
	for (unsigned int i = 0; i < CONC_ROUNDS; i++) {
		uint64_t s = rng_range(&r, 0, CONC_UNITS - 1);
		uint64_t end = rng_range(&r, s + 1, min_t(uint64_t, s + 8, CONC_UNITS));
		bool excl = rng_chance(&r, 30);

		conc_take(c, &e, &sem, ct->id & 1, s, end, excl);
		conc_mark(c, s, end, excl, 1);
		if (rng_chance(&r, 10))
			usleep(10);
		conc_mark(c, s, end, excl, -1);
		range_unlock(&c->t, &e.rl);
	}
	sem_destroy(&sem);
	return NULL;
}

START_TEST(test_concurrent_random)
{
	static struct conc c;
	struct conc_thread ct[CONC_THREADS];
	pthread_t th[CONC_THREADS];

	range_lock_tree_init(&c.t);
	pthread_mutex_init(&c.lock, NULL);
	for (unsigned int i = 0; i < CONC_THREADS; i++) {
		ct[i] = (struct conc_thread){ .c = &c, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, conc_main, &ct[i]), 0);
	}
	for (unsigned int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&c.conflicts), 0);
	ck_assert_ptr_null(c.t.head);
	ck_assert_uint_eq(c.t.nr_exclusive, 0);
	ck_assert_uint_eq(c.t.nr_waiting, 0);
	pthread_mutex_destroy(&c.lock);
	range_lock_tree_destroy(&c.t);
}
END_TEST

Suite *range_lock_suite(void)
{
	Suite *s = suite_create("range_lock");
	TCase *tc = tcase_create("range_lock");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_shared_never_wait);
	tcase_add_test(tc, test_exclusive_waits_for_either);
	tcase_add_test(tc, test_shared_waits_for_exclusive);
	tcase_add_test(tc, test_disjoint_never_wait);
	tcase_add_test(tc, test_arrival_order);
	tcase_add_test(tc, test_grant_once_unlocked);
	tcase_add_test(tc, test_wait_threads);
	tcase_add_test(tc, test_concurrent_random);
	suite_add_tcase(s, tc);
	return s;
}
