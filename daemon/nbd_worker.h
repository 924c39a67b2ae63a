/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_NBD_WORKER_H
#define BLOCKD_DAEMON_NBD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/ioloop.h"
#include "daemon/nbd_conn.h"

/*
 * The NBD worker threads: each runs one ioloop and owns the connections
 * handed to it, their socket I/O and the disk I/O their requests start,
 * so a request is served start to finish on one thread.
 */
struct nbd_worker {
	unsigned int idx;
	pthread_t thread;
	struct ioloop *loop;
	const struct nbd_server *srv;
	bool started;
	bool stopping;
	time_t refuse_deadline;		/* stopping: close connections then */
	time_t stop_deadline;		/* ... and kill what is left then */
	struct nbd_conn *conns;		/* every connection */
	struct nbd_conn *dirty;		/* to service after this iteration */
	unsigned int nr_stalled;	/* connections NBD_INPUT_STALLED */
	unsigned int nr_handshaking;	/* connections not yet negotiated */
	atomic_uint nr_conns;		/* open now; read by the main thread */
	atomic_ullong nr_opened;	/* ever, for the log summary */
	atomic_ullong nr_closed;
	struct ioloop_work stop_work;
};

/* What the last connection summary said; the caller's, zeroed at first. */
struct nbd_workers_summary {
	time_t last;			/* when it was logged */
	unsigned long long opened, closed;
};

/**
 * nbd_workers_start - start the worker threads
 * @out: the array of @n workers, on success
 * @n: how many
 * @srv: exports and limits, shared by every connection
 * @pa: the page allocator whose arenas the loops register
 *
 * Return: 0, or -errno with the workers started so far stopped again.
 */
int nbd_workers_start(struct nbd_worker **out, unsigned int n,
		      const struct nbd_server *srv, struct pgalloc *pa);

/**
 * nbd_workers_add_conn - hand an accepted socket to a worker
 * @ws: the workers
 * @n: how many
 * @fd: the accepted, non-blocking socket; the worker owns it from now on
 * @peer: the client's address, for logs
 *
 * Round robin, skipping to the least loaded worker when its turn is busy.
 */
void nbd_workers_add_conn(struct nbd_worker *ws, unsigned int n, int fd,
			  const char *peer);

/**
 * nbd_workers_stop - drain, join and free the workers
 * @ws: the workers, or NULL
 * @n: how many
 *
 * New commands are refused for a while, then connections are shut down
 * once their requests are answered, and killed after a grace period.
 */
void nbd_workers_stop(struct nbd_worker *ws, unsigned int n);

/**
 * nbd_workers_log_summary - the periodic info line on connections
 * @ws: the workers, or NULL
 * @n: how many
 * @s: what the previous summary said
 * @now: the time
 * @interval: seconds between summaries
 *
 * Each connection's open and close are debug lines; an operator gets this
 * instead: "connections: N opened, M closed, K open now", counted since
 * the previous summary, at most once per @interval and only when a
 * connection opened or closed.  Called from the main thread.
 */
void nbd_workers_log_summary(const struct nbd_worker *ws, unsigned int n,
			     struct nbd_workers_summary *s, time_t now,
			     unsigned int interval);

/**
 * nbd_worker_mark - queue @c to be serviced after the current callbacks
 * @w: @c's worker
 * @c: the connection; queued once however often it is marked
 */
void nbd_worker_mark(struct nbd_worker *w, struct nbd_conn *c);

/**
 * nbd_worker_link - add a new connection to @w's list
 * @w: the worker
 * @c: the connection
 */
void nbd_worker_link(struct nbd_worker *w, struct nbd_conn *c);

/**
 * nbd_worker_unlink - remove a closing connection from @w's list
 * @w: the worker
 * @c: the connection
 */
void nbd_worker_unlink(struct nbd_worker *w, struct nbd_conn *c);

#endif
