/* SPDX-License-Identifier: MIT */
/*
 * The NBD worker threads.  Each iteration runs the loop's callbacks (socket
 * readiness, disk completions, new connections), then services every
 * connection they touched: replies completed in that batch go out in one
 * send, stalled readers retry, finished connections are freed.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/nbd_worker.h"

/* Loop depth: polls and disk I/O of every connection share it. */
#define WORKER_QUEUE_DEPTH	512
/*
 * Stopping: for this long new commands are answered ESHUTDOWN, so clients
 * learn why their I/O fails rather than just losing the connection...
 */
#define WORKER_REFUSE_SECS	2
/* ... and then in-flight requests get this long to finish. */
#define WORKER_STOP_GRACE	5

struct new_conn {
	struct ioloop_work work;
	struct nbd_worker *w;
	int fd;
	char peer[64];
};

void nbd_worker_mark(struct nbd_worker *w, struct nbd_conn *c)
{
	if (c->on_dirty)
		return;
	c->on_dirty = true;
	c->dirty_next = w->dirty;
	w->dirty = c;
}

void nbd_worker_link(struct nbd_worker *w, struct nbd_conn *c)
{
	c->prev = NULL;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	atomic_fetch_add(&w->nr_conns, 1);
	atomic_fetch_add(&w->nr_opened, 1);
}

void nbd_worker_unlink(struct nbd_worker *w, struct nbd_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub(&w->nr_conns, 1);
	atomic_fetch_add(&w->nr_closed, 1);
}

static void new_conn_fn(struct ioloop_work *work)
{
	struct new_conn *nc = container_of(work, struct new_conn, work);
	struct nbd_worker *w = nc->w;

	if (w->stopping)
		close(nc->fd);
	else
		nbd_conn_start(w, w->srv, nc->fd, nc->peer);
	free(nc);
}

static void stop_fn(struct ioloop_work *work)
{
	struct nbd_worker *w = container_of(work, struct nbd_worker, stop_work);
	struct nbd_conn *c, *next;

	w->stopping = true;
	w->refuse_deadline = time(NULL) + WORKER_REFUSE_SECS;
	w->stop_deadline = w->refuse_deadline + WORKER_STOP_GRACE;
	for (c = w->conns; c; c = next) {
		next = c->next;
		nbd_conn_refuse(c);
	}
}

/* Drain the to-do list; servicing may add to it again, so loop. */
static void service_dirty(struct nbd_worker *w)
{
	while (w->dirty) {
		struct nbd_conn *c = w->dirty;

		w->dirty = c->dirty_next;
		c->on_dirty = false;
		nbd_conn_service(c);
	}
}

/*
 * Connections that stalled for pages retry after every iteration that may
 * have freed some; the one that stalled first goes first, so a flood on
 * one connection cannot keep another waiting for ever.
 */
static void retry_stalled(struct nbd_worker *w)
{
	struct nbd_conn *c, *next, *last = NULL;

	if (!w->nr_stalled)
		return;
	for (c = w->conns; c; c = c->next)
		last = c;
	/* New connections are linked at the head: the oldest is last. */
	for (c = last; c; c = next) {
		next = c->prev;
		if (c->input_pause == NBD_INPUT_STALLED)
			nbd_conn_resume(c);
	}
}

static void check_timeouts(struct nbd_worker *w)
{
	time_t now = time(NULL);
	struct nbd_conn *c, *next;

	for (c = w->conns; c; c = next) {
		next = c->next;
		if (!nbd_conn_negotiated(c) && now >= c->hs.deadline)
			nbd_conn_kill(c, "handshake timed out");
		else if (w->stopping && now >= w->stop_deadline)
			nbd_conn_kill(c, "stopping");
		else if (w->stopping && now >= w->refuse_deadline &&
			 c->state != NBD_CONN_CLOSING)
			nbd_conn_shutdown(c);
	}
}

static void *worker_main(void *arg)
{
	struct nbd_worker *w = arg;

	ioloop_set_current(w->loop);
	while (!w->stopping || w->conns) {
		int timeout = -1;

		if (w->nr_stalled)
			timeout = 1;
		else if (w->nr_handshaking || w->stopping)
			timeout = 1000;
		ioloop_run_once(w->loop, timeout);
		service_dirty(w);
		retry_stalled(w);
		service_dirty(w);
		if (w->nr_handshaking || w->stopping)
			check_timeouts(w);
		service_dirty(w);
	}
	ioloop_set_current(NULL);
	return NULL;
}

int nbd_workers_start(struct nbd_worker **out, unsigned int n,
		      const struct nbd_server *srv, struct pgalloc *pa)
{
	struct nbd_worker *ws = calloc(n, sizeof(*ws));
	unsigned int i;
	int ret = 0;

	if (!ws)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct nbd_worker *w = &ws[i];

		w->idx = i;
		w->srv = srv;
		w->stop_work.fn = stop_fn;
		w->loop = ioloop_create(WORKER_QUEUE_DEPTH, 0, pa);
		if (!w->loop) {
			ret = -errno;
			break;
		}
		ioloop_set_poll(w->loop, srv->poll_us);
		if (i == 0 && !ioloop_has_uring(w->loop)) {
			int why = ioloop_uring_error(w->loop);

			log_notice("workers run on epoll: io_uring %s",
				   why > 0 ? strerror(why) : "disabled by BLOCKD_NO_IO_URING");
		}
		ret = -pthread_create(&w->thread, NULL, worker_main, w);
		if (ret) {
			ioloop_destroy(w->loop);
			w->loop = NULL;
			break;
		}
		w->started = true;
	}
	if (ret) {
		nbd_workers_stop(ws, n);
		return ret;
	}
	*out = ws;
	return 0;
}

void nbd_workers_add_conn(struct nbd_worker *ws, unsigned int n, int fd,
			  const char *peer)
{
	static unsigned int next;
	struct new_conn *nc = calloc(1, sizeof(*nc));
	struct nbd_worker *w;
	unsigned int i, best;

	if (!nc) {
		close(fd);
		return;
	}
	/* Round robin, but skip to the least loaded when the turn is busy. */
	best = next++ % n;
	for (i = 0; i < n; i++) {
		if (atomic_load(&ws[i].nr_conns) < atomic_load(&ws[best].nr_conns))
			best = i;
	}
	w = &ws[best];
	nc->w = w;
	nc->fd = fd;
	snprintf(nc->peer, sizeof(nc->peer), "%s", peer);
	nc->work.fn = new_conn_fn;
	ioloop_post(w->loop, &nc->work);
}

void nbd_workers_stop(struct nbd_worker *ws, unsigned int n)
{
	unsigned int i;

	if (!ws)
		return;
	for (i = 0; i < n; i++) {
		if (ws[i].started)
			ioloop_post(ws[i].loop, &ws[i].stop_work);
	}
	for (i = 0; i < n; i++) {
		if (ws[i].started)
			pthread_join(ws[i].thread, NULL);
		ioloop_destroy(ws[i].loop);
	}
	free(ws);
}

void nbd_workers_log_summary(const struct nbd_worker *ws, unsigned int n,
			     struct nbd_workers_summary *s, time_t now,
			     unsigned int interval)
{
	unsigned long long opened = 0, closed = 0;
	unsigned int i, open = 0;

	if (!ws || now - s->last < (time_t)interval)
		return;
	for (i = 0; i < n; i++) {
		opened += atomic_load(&ws[i].nr_opened);
		closed += atomic_load(&ws[i].nr_closed);
		open += atomic_load(&ws[i].nr_conns);
	}
	if (opened == s->opened && closed == s->closed)
		return;
	log_info("connections: %llu opened, %llu closed, %u open now (since last summary)",
		 opened - s->opened, closed - s->closed, open);
	s->opened = opened;
	s->closed = closed;
	s->last = now;
}
