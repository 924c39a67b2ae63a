/* SPDX-License-Identifier: MIT */
/*
 * core/ioloop: the per-thread event loop, in both its io_uring and its
 * epoll mode: posted work from other threads, readiness, I/O completions
 * through the ring, fixed files and buffers, and timeouts.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ioloop.h"
#include "core/page.h"
#include "helpers.h"
#include "suites.h"

/*
 * _i: 0 = io_uring (when the kernel allows), 1 = epoll, 2 = io_uring that
 * spins before it sleeps (ioloop_set_poll): every event must still arrive,
 * and timeouts still hold.
 */
static struct ioloop *make_loop(int mode, struct pgalloc *pa)
{
	struct ioloop *loop = ioloop_create(64, mode == 1 ? IOLOOP_NO_URING : 0, pa);

	ck_assert_ptr_nonnull(loop);
	if (mode == 1)
		ck_assert(!ioloop_has_uring(loop));
	if (mode == 2)
		ioloop_set_poll(loop, 200);
	return loop;
}

struct counted_work {
	struct ioloop_work w;
	atomic_int *counter;
	int seq;
	int *order;
	int *pos;
	pthread_t *ran_on;
};

static void count_fn(struct ioloop_work *w)
{
	struct counted_work *cw = container_of(w, struct counted_work, w);

	if (cw->order)
		cw->order[(*cw->pos)++] = cw->seq;
	if (cw->ran_on)
		*cw->ran_on = pthread_self();
	atomic_fetch_add(cw->counter, 1);
}

START_TEST(test_ioloop_post_order)
{
	struct ioloop *loop = make_loop(_i, NULL);
	struct counted_work cw[10];
	atomic_int n = 0;
	int order[10], pos = 0;

	for (int i = 0; i < 10; i++) {
		cw[i] = (struct counted_work){ .w.fn = count_fn, .counter = &n,
					       .seq = i, .order = order, .pos = &pos };
		ioloop_post(loop, &cw[i].w);
	}
	while (atomic_load(&n) < 10)
		ck_assert_int_ge(ioloop_run_once(loop, 1000), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(order[i], i);	/* FIFO */
	ioloop_destroy(loop);
}
END_TEST

struct poster {
	struct ioloop *loop;
	struct counted_work *cw;
	int n;
};

static void *post_thread(void *arg)
{
	struct poster *p = arg;

	for (int i = 0; i < p->n; i++) {
		ioloop_post(p->loop, &p->cw[i].w);
		if (i % 64 == 0)
			usleep(50);
	}
	return NULL;
}

/* Work posted from 4 threads wakes a sleeping loop and runs on the loop's thread. */
START_TEST(test_ioloop_post_threads)
{
	enum { THREADS = 4, PER = 2000 };
	struct ioloop *loop = make_loop(_i, NULL);
	static struct counted_work cw[THREADS][PER];
	pthread_t t[THREADS], ran_on = 0, self = pthread_self();
	struct poster p[THREADS];
	atomic_int n = 0;
	uint64_t deadline = now_ns() + 10ull * 1000000000ull;

	for (int i = 0; i < THREADS; i++) {
		for (int j = 0; j < PER; j++)
			cw[i][j] = (struct counted_work){ .w.fn = count_fn, .counter = &n,
							  .ran_on = &ran_on };
		p[i] = (struct poster){ loop, cw[i], PER };
		pthread_create(&t[i], NULL, post_thread, &p[i]);
	}
	while (atomic_load(&n) < THREADS * PER && now_ns() < deadline)
		ck_assert_int_ge(ioloop_run_once(loop, -1 /* must be woken */), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&n), THREADS * PER);
	ck_assert(pthread_equal(ran_on, self));
	ioloop_destroy(loop);
}
END_TEST

struct poll_op {
	struct ioloop_op op;
	int calls;
	int events;
};

static void poll_cb(struct ioloop_op *op, int res, unsigned int flags)
{
	struct poll_op *p = container_of(op, struct poll_op, op);

	(void)flags;
	p->calls++;
	p->events = res;
}

START_TEST(test_ioloop_poll_oneshot)
{
	struct ioloop *loop = make_loop(_i, NULL);
	struct poll_op p = { .op.cb = poll_cb };
	int fds[2];
	char c = 'x';

	ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	ck_assert_int_eq(ioloop_poll(loop, fds[0], POLLIN, &p.op), 0);
	ck_assert_int_eq(ioloop_run_once(loop, 50), 0);	/* nothing ready: times out */
	ck_assert_int_eq(p.calls, 0);
	ck_assert_int_eq(write(fds[1], &c, 1), 1);
	while (!p.calls)
		ck_assert_int_ge(ioloop_run_once(loop, 1000), 0);
	ck_assert(p.events & POLLIN);

	/* One-shot: still readable, but not armed again, so no second call. */
	ioloop_run_once(loop, 50);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_int_eq(ioloop_poll(loop, fds[0], POLLIN, &p.op), 0);
	while (p.calls < 2)
		ck_assert_int_ge(ioloop_run_once(loop, 1000), 0);
	close(fds[0]);
	close(fds[1]);
	ioloop_destroy(loop);
}
END_TEST

/*
 * A poll that would wait forever is cancelled: on io_uring both the poll
 * and the cancel complete, the poll with -ECANCELED; a second cancel finds
 * nothing.  On epoll there is nothing to cancel and nothing completes.
 */
START_TEST(test_ioloop_cancel_poll)
{
	struct ioloop *loop = make_loop(_i, NULL);
	struct poll_op p = { .op.cb = poll_cb }, c = { .op.cb = poll_cb };
	int fds[2], ret;

	ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	ck_assert_int_eq(ioloop_poll(loop, fds[0], POLLIN, &p.op), 0);
	ck_assert_int_eq(ioloop_run_once(loop, 0), 0);	/* the poll is armed */
	ret = ioloop_cancel(loop, &p.op, &c.op);
	if (!ioloop_has_uring(loop)) {
		ck_assert_int_eq(ret, -EOPNOTSUPP);
		ck_assert_int_eq(ioloop_run_once(loop, 50), 0);
		ck_assert_int_eq(p.calls + c.calls, 0);
		goto out;
	}
	ck_assert_int_eq(ret, 0);
	while (!p.calls || !c.calls)
		ck_assert_int_ge(ioloop_run_once(loop, 1000), 0);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_int_eq(p.events, -ECANCELED);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.events, 0);

	/* Nothing left to cancel: only the cancel completes, with -ENOENT. */
	ck_assert_int_eq(ioloop_cancel(loop, &p.op, &c.op), 0);
	while (c.calls < 2)
		ck_assert_int_ge(ioloop_run_once(loop, 1000), 0);
	ck_assert_int_eq(c.events, -ENOENT);
	ck_assert_int_eq(ioloop_run_once(loop, 50), 0);
	ck_assert_int_eq(p.calls, 1);
out:
	close(fds[0]);
	close(fds[1]);
	ioloop_destroy(loop);
}
END_TEST

START_TEST(test_ioloop_timeout)
{
	struct ioloop *loop = make_loop(_i, NULL);
	uint64_t t0 = now_ns();

	ck_assert_int_eq(ioloop_run_once(loop, 100), 0);
	ck_assert_uint_ge(now_ns() - t0, 80ull * 1000000);
	ck_assert_uint_lt(now_ns() - t0, 2000ull * 1000000);
	t0 = now_ns();
	ck_assert_int_eq(ioloop_run_once(loop, 0), 0);
	ck_assert_uint_lt(now_ns() - t0, 50ull * 1000000);
	ioloop_destroy(loop);
}
END_TEST

START_TEST(test_ioloop_current)
{
	struct ioloop *loop = make_loop(0, NULL);

	ck_assert_ptr_null(ioloop_current());
	ioloop_set_current(loop);
	ck_assert_ptr_eq(ioloop_current(), loop);
	ioloop_destroy(loop);
	ck_assert_ptr_null(ioloop_current());
}
END_TEST

/* The environment switch the fallback tests rely on. */
START_TEST(test_ioloop_env_disables_uring)
{
	struct ioloop *loop;

	setenv("BLOCKD_NO_IO_URING", "1", 1);
	loop = ioloop_create(8, 0, NULL);
	ck_assert_ptr_nonnull(loop);
	ck_assert(!ioloop_has_uring(loop));
	ck_assert_int_eq(ioloop_uring_error(loop), -1);
	ck_assert_ptr_null(ioloop_ring(loop));
	ioloop_destroy(loop);
	unsetenv("BLOCKD_NO_IO_URING");
}
END_TEST

struct rw_op {
	struct ioloop_op op;
	int res;
	bool done;
};

static void rw_cb(struct ioloop_op *op, int res, unsigned int flags)
{
	struct rw_op *r = container_of(op, struct rw_op, op);

	(void)flags;
	r->res = res;
	r->done = true;
}

/* A read through the ring, with a fixed file and a fixed buffer from the page arenas. */
START_TEST(test_ioloop_uring_fixed_read)
{
	struct pgalloc *pa = pgalloc_create(1 << 20, 0, 0);
	struct ioloop *loop = ioloop_create(64, 0, pa);
	struct rw_op r = { .op.cb = rw_cb };
	char path[] = "/tmp/ioloop-test.XXXXXX", data[4096];
	struct io_uring_sqe *sqe;
	int fd, idx, buf;
	void *page;

	ck_assert_ptr_nonnull(loop);
	if (!ioloop_has_uring(loop)) {
		ioloop_destroy(loop);
		pgalloc_destroy(pa);
		return;		/* nothing to test without io_uring */
	}
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	memset(data, 0x7e, sizeof(data));
	ck_assert_int_eq(pwrite(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));

	idx = ioloop_fixed_file(loop, fd);
	ck_assert_int_ge(idx, 0);
	ck_assert_int_eq(ioloop_fixed_file(loop, fd), idx);	/* registered once */
	page = page_alloc(pa, BLK_GFP_ZERO);
	buf = ioloop_fixed_buffer(loop, page, PAGE_SIZE);
	ck_assert_int_ge(buf, 0);
	ck_assert_int_eq(ioloop_fixed_buffer(loop, data, sizeof(data)), -1);

	sqe = ioloop_get_sqe(loop, &r.op);
	io_uring_prep_read_fixed(sqe, idx, page, PAGE_SIZE, 0, buf);
	sqe->flags |= IOSQE_FIXED_FILE;
	while (!r.done)
		ck_assert_int_ge(ioloop_run_once(loop, 1000), 0);
	ck_assert_int_eq(r.res, PAGE_SIZE);
	ck_assert_int_eq(memcmp(page, data, PAGE_SIZE), 0);

	ioloop_forget_file(loop, fd);
	close(fd);
	page_free(pa, page);
	ioloop_destroy(loop);
	pgalloc_destroy(pa);
}
END_TEST

Suite *ioloop_suite(void)
{
	Suite *s = suite_create("ioloop");
	TCase *tc = tcase_create("ioloop");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_loop_test(tc, test_ioloop_post_order, 0, 3);
	tcase_add_loop_test(tc, test_ioloop_post_threads, 0, 3);
	tcase_add_loop_test(tc, test_ioloop_poll_oneshot, 0, 3);
	tcase_add_loop_test(tc, test_ioloop_cancel_poll, 0, 3);
	tcase_add_loop_test(tc, test_ioloop_timeout, 0, 3);
	tcase_add_test(tc, test_ioloop_current);
	tcase_add_test(tc, test_ioloop_env_disables_uring);
	tcase_add_test(tc, test_ioloop_uring_fixed_read);
	suite_add_tcase(s, tc);
	return s;
}
