/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_WORKER_H
#define BLOCKD_DAEMON_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/ioloop.h"
#include "daemon/nbd_conn.h"

/*
 * Worker threads: each runs one ioloop and owns the connections handed to
 * it, their socket I/O and the disk I/O their requests start, so a request
 * is served start to finish on one thread.
 */
struct worker {
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
	unsigned int nr_stalled;
	unsigned int nr_handshaking;
	atomic_uint nr_conns;
	struct ioloop_work stop_work;
};

/*
 * Start @n workers whose loops register @pa's arenas.  0, or -errno with
 * the workers started so far stopped again.
 */
int workers_start(struct worker **out, unsigned int n,
		  const struct nbd_server *srv, struct pgalloc *pa);

/* Hand accepted socket @fd to the next worker, round robin. */
void workers_add_conn(struct worker *ws, unsigned int n, int fd,
		      const char *peer);

/* Finish in-flight requests, close every connection, join and free. */
void workers_stop(struct worker *ws, unsigned int n);

/* For nbd_conn.c: queue @c to be serviced after the current callbacks. */
void worker_mark(struct worker *w, struct nbd_conn *c);
void worker_link(struct worker *w, struct nbd_conn *c);
void worker_unlink(struct worker *w, struct nbd_conn *c);

#endif
