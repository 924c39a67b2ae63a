/* SPDX-License-Identifier: MIT */
/*
 * The per-thread event loop, on io_uring or, where that is unavailable,
 * on epoll.  Work posted from other threads sits on a lock-free stack and
 * an eventfd wakes the loop when the stack goes from empty to non-empty.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "ioloop.h"
#include "page.h"

#define MAX_FIXED_FILES	64
#define MAX_BATCH	64
/*
 * SQEs prepared while a batch of completions runs go to the kernel once
 * this many are ready, not only after the whole batch: completions come
 * in bursts of up to the queue depth, and a disk left idle until the last
 * callback of a burst had run did measurably fewer small O_DIRECT reads
 * at a deep queue than fio, which submits each I/O at once.  A few per
 * io_uring_enter still amortise the syscall.
 */
#define SUBMIT_BATCH	4
/*
 * The spin is for loops that see one event at a time (a QD1 client): the
 * average events per wait cycle, in eighths, above which it is skipped.
 */
#define POLL_BATCH_MAX	(2 * 8 + 4)
/* A spinning loop sleeps once in this many cycles to see what a sleep gathers. */
#define POLL_PROBE_EVERY	256

struct ioloop {
	bool uring;
	int uring_error;
	struct io_uring ring;
	int epfd;

	int wake_fd;
	uint64_t wake_buf;
	struct ioloop_op wake_op;
	_Atomic(struct ioloop_work *) posted;
	/* Posters between publishing work and writing wake_fd; destroy waits for 0. */
	atomic_int posters;

	int files[MAX_FIXED_FILES];
	bool files_ok;

	unsigned int nr_bufs;
	struct iovec *bufs;

	/* Adaptive polling before a blocking wait (IOLOOP_POLL). */
	uint64_t poll_max_ns;
	uint64_t poll_ns;
	unsigned int cycle_events;	/* run since the loop last found nothing */
	unsigned int batch_avg;		/* events per cycle, moving average, x8 */
	unsigned int nr_cycles;
	bool cycle_slept;		/* the cycle began with a sleep, not a spin */
};

static __thread struct ioloop *current_loop;

struct ioloop *ioloop_current(void)
{
	return current_loop;
}

void ioloop_set_current(struct ioloop *loop)
{
	current_loop = loop;
}

bool ioloop_has_uring(const struct ioloop *loop)
{
	return loop->uring;
}

int ioloop_uring_error(const struct ioloop *loop)
{
	return loop->uring_error;
}

struct io_uring *ioloop_ring(struct ioloop *loop)
{
	return loop->uring ? &loop->ring : NULL;
}

static void arm_wake(struct ioloop *loop)
{
	struct io_uring_sqe *sqe = ioloop_get_sqe(loop, &loop->wake_op);

	io_uring_prep_read(sqe, loop->wake_fd, &loop->wake_buf,
			   sizeof(loop->wake_buf), 0);
}

/* Run posted work in the order it was posted. */
static int run_posted(struct ioloop *loop)
{
	struct ioloop_work *w, *rev = NULL, *next;
	int n = 0;

	if (!atomic_load_explicit(&loop->posted, memory_order_relaxed))
		return 0;
	w = atomic_exchange(&loop->posted, NULL);
	for (; w; w = next) {
		next = w->next;
		w->next = rev;
		rev = w;
	}
	for (w = rev; w; w = next, n++) {
		next = w->next;
		w->fn(w);
	}
	return n;
}

static void wake_cb(struct ioloop_op *op, int res, unsigned int flags)
{
	struct ioloop *loop = container_of(op, struct ioloop, wake_op);

	(void)res;
	(void)flags;
	if (loop->uring)
		arm_wake(loop);
	else
		(void)!read(loop->wake_fd, &loop->wake_buf, sizeof(loop->wake_buf));
}

bool ioloop_uring_disabled(void)
{
	const char *e = getenv("BLOCKD_NO_IO_URING");

	return e && *e && strcmp(e, "0");
}

static int setup_uring(struct ioloop *loop, unsigned int depth)
{
	struct io_uring_params p;
	int ret;

	memset(&p, 0, sizeof(p));
	/* Completions run when we ask for them, not by interrupting us. */
	p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = depth * 4;
	ret = io_uring_queue_init_params(depth, &loop->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(depth, &loop->ring, &p);
	}
	return ret;
}

static void register_buffers(struct ioloop *loop, struct pgalloc *pa)
{
	unsigned int i, n = pgalloc_nr_arenas(pa);

	loop->bufs = calloc(n, sizeof(*loop->bufs));
	if (!loop->bufs)
		return;
	for (i = 0; i < n; i++)
		pgalloc_arena(pa, i, &loop->bufs[i].iov_base, &loop->bufs[i].iov_len);
	/* Best effort: RLIMIT_MEMLOCK may forbid it, and plain I/O still works. */
	if (io_uring_register_buffers(&loop->ring, loop->bufs, n)) {
		free(loop->bufs);
		loop->bufs = NULL;
		return;
	}
	loop->nr_bufs = n;
}

struct ioloop *ioloop_create(unsigned int queue_depth, unsigned int flags,
			     struct pgalloc *pa)
{
	struct ioloop *loop = calloc(1, sizeof(*loop));
	int ret, i;

	if (!loop)
		return NULL;
	loop->epfd = -1;
	loop->wake_op.cb = wake_cb;
	for (i = 0; i < MAX_FIXED_FILES; i++)
		loop->files[i] = -1;
	if (!queue_depth)
		queue_depth = 128;

	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wake_fd < 0)
		goto fail;

	if ((flags & IOLOOP_NO_URING) || ioloop_uring_disabled()) {
		loop->uring_error = -1;
	} else {
		ret = setup_uring(loop, queue_depth);
		if (!ret)
			loop->uring = true;
		else
			loop->uring_error = -ret;
	}

	if (loop->uring) {
		loop->files_ok = !io_uring_register_files_sparse(&loop->ring,
								 MAX_FIXED_FILES);
		if (pa)
			register_buffers(loop, pa);
		arm_wake(loop);
		return loop;
	}

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		goto fail;
	{
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.ptr = &loop->wake_op };

		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev))
			goto fail;
	}
	return loop;

fail:
	ret = errno;
	ioloop_destroy(loop);
	errno = ret;
	return NULL;
}

void ioloop_set_poll(struct ioloop *loop, unsigned int max_us)
{
	loop->poll_max_ns = loop->uring ? (uint64_t)max_us * 1000 : 0;
	loop->poll_ns = 0;
}

void ioloop_destroy(struct ioloop *loop)
{
	if (!loop)
		return;
	/*
	 * A poster may have published work we already ran and still be about
	 * to write wake_fd: let it finish before the fd goes away.
	 */
	while (atomic_load_explicit(&loop->posters, memory_order_acquire))
		sched_yield();
	if (loop->uring)
		io_uring_queue_exit(&loop->ring);
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	if (current_loop == loop)
		current_loop = NULL;
	free(loop->bufs);
	free(loop);
}

struct io_uring_sqe *ioloop_get_sqe(struct ioloop *loop, struct ioloop_op *op)
{
	struct io_uring_sqe *sqe;

	BUG_ON(!loop->uring);
	sqe = io_uring_get_sqe(&loop->ring);
	while (unlikely(!sqe)) {
		io_uring_submit(&loop->ring);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

int ioloop_submit(struct ioloop *loop)
{
	return loop->uring ? io_uring_submit(&loop->ring) : 0;
}

int ioloop_fixed_file(struct ioloop *loop, int fd)
{
	int i, slot = -1;

	if (!loop->uring || !loop->files_ok)
		return -1;
	for (i = 0; i < MAX_FIXED_FILES; i++) {
		if (loop->files[i] == fd)
			return i;
		if (loop->files[i] < 0 && slot < 0)
			slot = i;
	}
	if (slot < 0 ||
	    io_uring_register_files_update(&loop->ring, (unsigned int)slot, &fd, 1) != 1)
		return -1;
	loop->files[slot] = fd;
	return slot;
}

void ioloop_forget_file(struct ioloop *loop, int fd)
{
	int i, none = -1;

	if (!loop->uring)
		return;
	for (i = 0; i < MAX_FIXED_FILES; i++) {
		if (loop->files[i] == fd) {
			io_uring_register_files_update(&loop->ring, (unsigned int)i,
						       &none, 1);
			loop->files[i] = -1;
		}
	}
}

int ioloop_fixed_buffer(struct ioloop *loop, const void *addr, size_t len)
{
	const char *p = addr;
	unsigned int i;

	for (i = 0; i < loop->nr_bufs; i++) {
		const char *base = loop->bufs[i].iov_base;

		if (p >= base && p + len <= base + loop->bufs[i].iov_len)
			return (int)i;
	}
	return -1;
}

int ioloop_poll(struct ioloop *loop, int fd, uint32_t events,
		struct ioloop_op *op)
{
	struct epoll_event ev;

	if (loop->uring) {
		io_uring_prep_poll_add(ioloop_get_sqe(loop, op), fd, events);
		return 0;
	}
	ev.events = events | EPOLLONESHOT;
	ev.data.ptr = op;
	if (!epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev))
		return 0;
	if (errno == ENOENT && !epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev))
		return 0;
	return -errno;
}

int ioloop_cancel(struct ioloop *loop, struct ioloop_op *target,
		  struct ioloop_op *done)
{
	if (!loop->uring)
		return -EOPNOTSUPP;
	io_uring_prep_cancel64(ioloop_get_sqe(loop, done),
			       (__u64)(uintptr_t)target, 0);
	return 0;
}

void ioloop_post(struct ioloop *loop, struct ioloop_work *w)
{
	struct ioloop_work *old;
	uint64_t one = 1;

	/* Counted before the work is visible, so the loop cannot be gone yet. */
	atomic_fetch_add_explicit(&loop->posters, 1, memory_order_relaxed);
	old = atomic_load(&loop->posted);
	do {
		w->next = old;
	} while (!atomic_compare_exchange_weak(&loop->posted, &old, w));
	/* Only the first post after a drain needs to wake the loop. */
	if (!old)
		(void)!write(loop->wake_fd, &one, sizeof(one));
	atomic_fetch_sub_explicit(&loop->posters, 1, memory_order_release);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Spin for up to poll_ns before sleeping, as QEMU's AioContext does
 * (poll-max-ns): when the next event is a few microseconds away -- the
 * client's next request at QD1 -- catching it awake saves the sleep, the
 * wake-up and, on a VM whose idle vCPUs halt at once, a halt exit.
 * Returns true when there is something to reap.
 */
static bool poll_for_events(struct ioloop *loop, uint64_t start)
{
	io_uring_submit(&loop->ring);
	do {
		/* Runs the task work that turns ready polls into CQEs. */
		io_uring_get_events(&loop->ring);
		if (io_uring_cq_ready(&loop->ring) ||
		    atomic_load_explicit(&loop->posted, memory_order_relaxed))
			return true;
		/*
		 * Never spin in the way of a thread that wants this CPU --
		 * often the very client we wait for: a spin that held the
		 * CPU to the end of its time slice stalled 1 MiB reads for
		 * milliseconds.
		 */
		sched_yield();
	} while (now_ns() - start < loop->poll_ns);
	return false;
}

/*
 * A cycle ends when the loop finds nothing to do.  When cycles carry
 * batches -- a deep queue, large transfers -- one sleep is paid for many
 * events, while a spin would fill every gap between batches with CPU
 * time: then the loop sleeps at once.  Only cycles that began with a
 * sleep count: a spin catches each event alone, so a deep queue served
 * by a spinning loop looks like a QD1 client.  So a spinning loop sleeps
 * now and then to see the batch a sleep would gather.
 */
static bool poll_worth_it(struct ioloop *loop)
{
	if (loop->cycle_slept)
		loop->batch_avg = (loop->batch_avg * 3 + loop->cycle_events * 8) / 4;
	loop->cycle_events = 0;
	if (loop->batch_avg > POLL_BATCH_MAX)
		return false;
	return ++loop->nr_cycles % POLL_PROBE_EVERY != 0;
}

/*
 * Grow the spin while waits are short, drop it when they are long, so an
 * idle loop sleeps at once and burns nothing.
 */
static void poll_adapt(struct ioloop *loop, uint64_t waited_ns)
{
	if (waited_ns > loop->poll_max_ns)
		loop->poll_ns = 0;
	else if (waited_ns > loop->poll_ns)
		loop->poll_ns = loop->poll_ns ?
			min_t(uint64_t, loop->poll_ns * 2, loop->poll_max_ns) :
			min_t(uint64_t, 4000, loop->poll_max_ns);
}

static int run_uring(struct ioloop *loop, int timeout_ms)
{
	struct io_uring_cqe *cqes[MAX_BATCH];
	struct {
		struct ioloop_op *op;
		int res;
		unsigned int flags;
	} done[MAX_BATCH];
	unsigned int i, n;
	int ret, total = 0;
	uint64_t start = 0;

	if (timeout_ms && loop->poll_max_ns) {
		/* What completes inline on submission is no reason to wait. */
		io_uring_submit(&loop->ring);
		if (io_uring_cq_ready(&loop->ring)) {
			timeout_ms = 0;
		} else if (poll_worth_it(loop)) {
			start = now_ns();
			if (loop->poll_ns && poll_for_events(loop, start)) {
				timeout_ms = 0;
				start = 0;	/* caught awake: keep the spin as it is */
			}
			loop->cycle_slept = timeout_ms != 0;
		} else {
			loop->cycle_slept = true;
		}
	}
	if (timeout_ms < 0) {
		ret = io_uring_submit_and_wait(&loop->ring, 1);
	} else if (timeout_ms == 0) {
		ret = io_uring_submit(&loop->ring);
	} else {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (timeout_ms % 1000) * 1000000ll,
		};
		struct io_uring_cqe *cqe;

		ret = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &ts, NULL);
	}
	if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EAGAIN &&
	    ret != -EBUSY)
		return ret;
	if (start)
		poll_adapt(loop, now_ns() - start);

	/* Copy out a batch before running callbacks, which may queue more I/O. */
	while ((n = io_uring_peek_batch_cqe(&loop->ring, cqes, MAX_BATCH))) {
		for (i = 0; i < n; i++) {
			done[i].op = io_uring_cqe_get_data(cqes[i]);
			done[i].res = cqes[i]->res;
			done[i].flags = cqes[i]->flags;
		}
		io_uring_cq_advance(&loop->ring, n);
		for (i = 0; i < n; i++) {
			if (done[i].op) {
				done[i].op->cb(done[i].op, done[i].res, done[i].flags);
				if (done[i].op != &loop->wake_op)
					total++;
				loop->cycle_events++;
			}
			if (io_uring_sq_ready(&loop->ring) >= SUBMIT_BATCH)
				io_uring_submit(&loop->ring);
		}
		if (n < MAX_BATCH)
			break;
	}
	return total;
}

static int run_epoll(struct ioloop *loop, int timeout_ms)
{
	struct epoll_event evs[MAX_BATCH];
	int n, i, total = 0;

	n = epoll_wait(loop->epfd, evs, MAX_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++) {
		struct ioloop_op *op = evs[i].data.ptr;

		op->cb(op, (int)evs[i].events, 0);
		if (op != &loop->wake_op)
			total++;
	}
	return total;
}

int ioloop_run_once(struct ioloop *loop, int timeout_ms)
{
	int n, p;

	/* Work already posted must not wait for a wake-up that has happened. */
	if (atomic_load_explicit(&loop->posted, memory_order_relaxed))
		timeout_ms = 0;
	n = loop->uring ? run_uring(loop, timeout_ms) : run_epoll(loop, timeout_ms);
	if (n < 0)
		return n;
	p = run_posted(loop);
	loop->cycle_events += (unsigned int)p;
	return n + p;
}

void ioloop_run_until(struct ioloop *loop, const volatile bool *done)
{
	while (!*done)
		ioloop_run_once(loop, -1);
}
