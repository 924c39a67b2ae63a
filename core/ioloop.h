/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_IOLOOP_H
#define BLOCKD_CORE_IOLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * ioloop: one event loop per worker thread.  A thread owns its loop, and
 * everything the loop starts completes on that thread: socket readiness,
 * disk I/O issued by a backend, and work posted from other threads.  A
 * request never hops between threads on its way, because on small machines
 * a wake-up costs more than a 4 KiB read from the page cache.
 *
 * A loop runs on io_uring when the kernel allows it.  Where io_uring cannot
 * be set up (EPERM or ENOSYS, e.g. a seccomp profile, or BLOCKD_NO_IO_URING
 * set in the environment) it runs on epoll instead: readiness and posted
 * work still work, and backends that need io_uring fall back to threads.
 */

struct io_uring;
struct io_uring_sqe;
struct pgalloc;

struct ioloop;
struct ioloop_op;

/*
 * Completion of something the loop started: @res is the CQE's result (or
 * the ready poll events), @flags the CQE's flags.  Runs on the loop thread.
 */
typedef void (ioloop_cb_t)(struct ioloop_op *op, int res, unsigned int flags);

/* Embed in the caller's struct; its address is the SQE's user_data. */
struct ioloop_op {
	ioloop_cb_t *cb;
};

/* Work handed to a loop from any thread; fn runs on the loop thread. */
struct ioloop_work {
	struct ioloop_work *next;
	void (*fn)(struct ioloop_work *w);
};

/* ioloop_create() flags */
#define IOLOOP_NO_URING	0x1u	/* use epoll even if io_uring works */

/**
 * ioloop_create - a loop for the calling thread to run
 * @queue_depth: SQ entries
 * @flags: IOLOOP_NO_URING, or 0
 * @pa: when given, its arenas are registered as fixed buffers (best
 *      effort; see ioloop_fixed_buffer())
 *
 * Return: the loop, or NULL with errno set.
 */
struct ioloop *ioloop_create(unsigned int queue_depth, unsigned int flags,
			     struct pgalloc *pa);

/**
 * ioloop_set_poll - let the loop spin before it sleeps
 * @loop: the loop
 * @max_us: the longest spin in microseconds; 0 turns it off (the default)
 *
 * Adaptively: the spin grows while events come soon after it would have
 * slept and drops to nothing while they do not (0 turns it off, the
 * default).  It is skipped while the loop's wait cycles carry more than
 * about two events each, where one sleep serves a batch.  For loops that
 * serve clients at low queue depth, where a sleep and wake-up cost more
 * than the wait.  io_uring loops only.
 */
void ioloop_set_poll(struct ioloop *loop, unsigned int max_us);

/**
 * ioloop_destroy - free a loop
 * @loop: the loop, with nothing in flight
 */
void ioloop_destroy(struct ioloop *loop);

/**
 * ioloop_uring_disabled - whether BLOCKD_NO_IO_URING turns io_uring off
 *
 * The one place the variable is read: loops and the backends that would
 * use io_uring of their own both ask here.
 */
bool ioloop_uring_disabled(void);

/**
 * ioloop_has_uring - whether @loop runs on io_uring (false: epoll)
 * @loop: the loop
 */
bool ioloop_has_uring(const struct ioloop *loop);

/**
 * ioloop_uring_error - why io_uring is not used, for the log line that says so
 * @loop: the loop
 *
 * Return: 0 when it is, else a positive errno (EPERM, ENOSYS...), or -1
 * when disabled on purpose (IOLOOP_NO_URING or BLOCKD_NO_IO_URING).
 */
int ioloop_uring_error(const struct ioloop *loop);

/**
 * ioloop_ring - the ring, for a backend that preps its own SQEs
 * @loop: the loop
 *
 * Return: the ring, or NULL in epoll mode.
 */
struct io_uring *ioloop_ring(struct ioloop *loop);

/**
 * ioloop_get_sqe - a free SQE whose completion goes to @op
 * @loop: the loop
 * @op: the completion's owner, its address the SQE's user_data
 *
 * When the SQ is full, queued entries are submitted first, so this never
 * fails.  io_uring loops only (a bug on an epoll loop).
 *
 * Return: the SQE.
 */
struct io_uring_sqe *ioloop_get_sqe(struct ioloop *loop, struct ioloop_op *op);

/**
 * ioloop_submit - submit queued SQEs now (ioloop_run_once() also does)
 * @loop: the loop
 *
 * Return: SQEs submitted (0 on an epoll loop), or -errno.
 */
int ioloop_submit(struct ioloop *loop);

/**
 * ioloop_fixed_file - @fd's index in the loop's fixed-file table
 * @loop: the loop
 * @fd: the descriptor, registered on first use
 *
 * Return: the index, or -1 if the table is full or unsupported.
 */
int ioloop_fixed_file(struct ioloop *loop, int fd);

/**
 * ioloop_forget_file - remove @fd from the fixed-file table, before close()
 * @loop: the loop
 * @fd: the descriptor
 */
void ioloop_forget_file(struct ioloop *loop, int fd);

/**
 * ioloop_fixed_buffer - the fixed-buffer index covering [@addr, @addr + @len)
 * @loop: the loop
 * @addr: start of the range
 * @len: its length
 *
 * Return: the index, or -1 when the range is not inside one registered
 * arena.
 */
int ioloop_fixed_buffer(struct ioloop *loop, const void *addr, size_t len);

/**
 * ioloop_poll - call @op->cb once when @fd is ready for @events
 * @loop: the loop
 * @fd: the descriptor
 * @events: POLLIN, POLLOUT...
 * @op: its callback gets the ready events as res
 *
 * One-shot: arm again to wait again.
 *
 * Return: 0 or -errno.
 */
int ioloop_poll(struct ioloop *loop, int fd, uint32_t events,
		struct ioloop_op *op);

/**
 * ioloop_cancel - cancel an operation @loop started, such as a poll
 * @loop: the loop @target was started on
 * @target: the op whose completion is still owed (its SQE's user_data)
 * @done: completion of the cancel itself
 *
 * On io_uring an asynchronous cancel is queued: @target then completes
 * with -ECANCELED if it had not completed yet, and @done->cb runs with 0,
 * -ENOENT (@target had already completed, or its completion is on the
 * way) or -EALREADY (it is being cancelled and will complete soon).  Both
 * run on the loop thread, in either order; wait for both before freeing
 * either op or destroying the loop.
 *
 * On epoll nothing is in flight in the kernel: a one-shot ioloop_poll() is
 * a registration in the loop's epoll set that goes with the loop (or with
 * its descriptor).  Nothing is queued and @done never runs; @target's
 * callback still runs if its descriptor becomes ready while the loop runs.
 *
 * Return: 0 when @done will run, -EOPNOTSUPP on an epoll loop.
 */
int ioloop_cancel(struct ioloop *loop, struct ioloop_op *target,
		  struct ioloop_op *done);

/**
 * ioloop_post - queue @w to run on @loop's thread, waking it
 * @loop: the loop
 * @w: the work; @w->fn runs on the loop thread
 *
 * Safe from any thread, including the loop's own.  The loop must outlive
 * every poster: destroy a loop only after the backends and threads that
 * post to it are gone.
 */
void ioloop_post(struct ioloop *loop, struct ioloop_work *w);

/**
 * ioloop_run_once - one turn of the loop
 * @loop: the loop
 * @timeout_ms: how long to wait (-1: until something happens, 0: not at all)
 *
 * Submit what is queued, wait, and run every completion and posted work
 * item.
 *
 * Return: the number of callbacks run, or -errno.
 */
int ioloop_run_once(struct ioloop *loop, int timeout_ms);

/**
 * ioloop_run_until - run @loop until *@done is true
 * @loop: the loop
 * @done: set by a callback
 */
void ioloop_run_until(struct ioloop *loop, const volatile bool *done);

/**
 * ioloop_current - the loop the calling thread runs, or NULL
 *
 * Backends submit to it and complete on it.
 */
struct ioloop *ioloop_current(void);

/**
 * ioloop_set_current - say which loop the calling thread runs
 * @loop: the loop, or NULL when the thread stops running one
 */
void ioloop_set_current(struct ioloop *loop);

#endif
