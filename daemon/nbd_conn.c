/* SPDX-License-Identifier: MIT */
/*
 * An NBD connection's socket side: non-blocking reads into a receive
 * buffer that is parsed in batches, replies gathered into one sendmsg, and
 * the connection's life from accept to close.  Readiness comes from
 * ioloop_poll(), so this works on io_uring and on epoll alike.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/request.h"
#include "daemon/log.h"
#include "daemon/nbd-protocol.h"
#include "daemon/nbd_conn.h"
#include "daemon/worker.h"

/* iovecs per sendmsg: replies to a batch of reads go out in one call. */
#define SEND_IOVS	256
/* Receive rounds per wake-up, so one busy client cannot hog its worker. */
#define RECV_ROUNDS	8

static unsigned int next_conn_id(void)
{
	static atomic_uint ids;

	return atomic_fetch_add(&ids, 1) + 1;
}

void nbd_conn_mark(struct nbd_conn *c)
{
	worker_mark(c->w, c);
}

static void in_cb(struct ioloop_op *op, int res, unsigned int flags)
{
	struct nbd_conn *c = container_of(op, struct nbd_conn, in_op);

	(void)res;
	(void)flags;
	c->in_armed = false;
	nbd_conn_mark(c);
}

static void out_cb(struct ioloop_op *op, int res, unsigned int flags)
{
	struct nbd_conn *c = container_of(op, struct nbd_conn, out_op);

	(void)res;
	(void)flags;
	c->out_armed = false;
	nbd_conn_mark(c);
}

static void arm_in(struct nbd_conn *c)
{
	if (c->in_armed || c->dead)
		return;
	if (ioloop_poll(c->w->loop, c->fd, POLLIN | POLLRDHUP, &c->in_op)) {
		nbd_conn_kill(c, "cannot poll the socket");
		return;
	}
	c->in_armed = true;
}

static void arm_out(struct nbd_conn *c)
{
	if (c->out_armed || c->dead)
		return;
	if (ioloop_poll(c->w->loop, c->wfd, POLLOUT, &c->out_op)) {
		nbd_conn_kill(c, "cannot poll the socket");
		return;
	}
	c->out_armed = true;
}

void nbd_conn_start(struct worker *w, const struct nbd_server *srv, int fd,
		    const char *peer)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		goto fail;
	c->fd = fd;
	c->wfd = -1;
	c->rbuf = malloc(NBD_RBUF_SIZE);
	c->src = bio_kmalloc(BLK_GFP_WAIT, 1);
	c->wfd = dup(fd);
	if (!c->rbuf || !c->src || c->wfd < 0) {
		if (c->src)
			bio_put(c->src);
		if (c->wfd >= 0)
			close(c->wfd);
		free(c->rbuf);
		free(c);
		goto fail;
	}
	c->w = w;
	c->srv = srv;
	c->id = next_conn_id();
	c->in_op.cb = in_cb;
	c->out_op.cb = out_cb;
	c->state = NBD_HS_FLAGS;
	c->hs_deadline = time(NULL) + srv->handshake_timeout;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	worker_link(w, c);
	w->nr_handshaking++;
	log_debug("connection %u from %s (worker %u)", c->id, c->peer, w->idx);
	nbd_handshake_greet(c);
	nbd_conn_mark(c);
	return;
fail:
	log_err("out of memory for a connection from %s", peer);
	close(fd);
}

/* Append handshake bytes to the output buffer. */
int nbd_conn_out(struct nbd_conn *c, const void *data, size_t len)
{
	if (c->olen + len > c->ocap) {
		size_t cap = c->ocap ? c->ocap : 1024;
		uint8_t *n;

		while (cap < c->olen + len)
			cap *= 2;
		n = realloc(c->obuf, cap);
		if (!n)
			return -ENOMEM;
		c->obuf = n;
		c->ocap = (uint32_t)cap;
	}
	memcpy(c->obuf + c->olen, data, len);
	c->olen += (uint32_t)len;
	return 0;
}

void nbd_conn_queue_reply(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	cmd->next = NULL;
	if (c->sq_tail)
		c->sq_tail->next = cmd;
	else
		c->sq_head = cmd;
	c->sq_tail = cmd;
	nbd_conn_mark(c);
}

struct iov_builder {
	struct iovec iov[SEND_IOVS];
	unsigned int n;
	uint64_t skip;			/* bytes already sent */
	size_t total;
};

/* Add [p, p + len) unless already sent; false when the table is full. */
static bool iov_add(struct iov_builder *b, const void *p, size_t len)
{
	if (b->skip >= len) {
		b->skip -= len;
		return true;
	}
	p = (const char *)p + b->skip;
	len -= b->skip;
	b->skip = 0;
	if (b->n && (char *)b->iov[b->n - 1].iov_base + b->iov[b->n - 1].iov_len == p) {
		b->iov[b->n - 1].iov_len += len;
	} else {
		if (b->n == SEND_IOVS)
			return false;
		b->iov[b->n].iov_base = (void *)p;
		b->iov[b->n].iov_len = len;
		b->n++;
	}
	b->total += len;
	return true;
}

static bool iov_add_cmd(struct iov_builder *b, struct nbd_cmd *cmd)
{
	unsigned int i;

	if (!iov_add(b, cmd->hdr, cmd->hdr_len))
		return false;
	for (i = 0; i < cmd->nr_data; i++) {
		struct bvec_iter iter;
		struct bio_vec bv;

		bio_for_each_segment(bv, cmd->data[i], iter) {
			if (!iov_add(b, bvec_virt(&bv), bv.bv_len))
				return false;
		}
	}
	if (cmd->extra_len && !iov_add(b, cmd->extra, cmd->extra_len))
		return false;
	return true;
}

/* Forget @n bytes that went out. */
static void consume_sent(struct nbd_conn *c, size_t n)
{
	size_t k = c->olen - c->osent < n ? c->olen - c->osent : n;

	c->osent += (uint32_t)k;
	n -= k;
	if (c->osent == c->olen)
		c->osent = c->olen = 0;
	while (n && c->sq_head) {
		struct nbd_cmd *cmd = c->sq_head;
		uint64_t left = cmd->reply_len - c->sq_off;

		if (n < left) {
			c->sq_off += n;
			return;
		}
		n -= (size_t)left;
		c->sq_off = 0;
		c->sq_head = cmd->next;
		if (!c->sq_head)
			c->sq_tail = NULL;
		nbd_cmd_free(cmd);
	}
}

/* Send what is queued until done or the socket is full. */
static void flush_output(struct nbd_conn *c)
{
	while (!c->dead && (c->olen > c->osent || c->sq_head)) {
		struct iov_builder b;
		struct msghdr msg;
		struct nbd_cmd *cmd;
		ssize_t n;

		b.n = 0;
		b.total = 0;
		b.skip = 0;
		if (c->olen > c->osent)
			iov_add(&b, c->obuf + c->osent, c->olen - c->osent);
		b.skip = c->sq_off;
		for (cmd = c->sq_head; cmd; cmd = cmd->next) {
			if (!iov_add_cmd(&b, cmd))
				break;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = b.iov;
		msg.msg_iovlen = b.n;
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				arm_out(c);
				return;
			}
			nbd_conn_kill(c, "send failed");
			return;
		}
		consume_sent(c, (size_t)n);
		if ((size_t)n < b.total) {
			arm_out(c);
			return;
		}
	}
}

static void compact_rbuf(struct nbd_conn *c)
{
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
		return;
	}
	/* Keep room for a whole header or option behind what is left. */
	if (c->rpos && NBD_RBUF_SIZE - c->rlen < 64 * 1024 + 64) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
}

/* Parse what is buffered.  0: wants input; -EAGAIN: must wait; <0: kill. */
static int parse_input(struct nbd_conn *c)
{
	int ret;

	for (;;) {
		if (c->state == NBD_TRANSMISSION) {
			struct blk_plug plug;

			/* Contiguous bios of one batch merge into one request. */
			blk_start_plug(&plug);
			ret = nbd_cmd_process(c);
			blk_finish_plug(&plug);
			return ret;
		}
		ret = nbd_handshake_step(c);
		if (c->dead)
			return -EAGAIN;
		if (ret < 0)
			return ret;
		if (!ret)
			return 0;
		if (c->closing)
			return -EAGAIN;
	}
}

/*
 * Parse what is buffered, read more, repeat: until the socket is empty,
 * memory runs out, or this connection has had its share of the wake-up.
 */
static void process_input(struct nbd_conn *c)
{
	int round, ret;

	for (round = 0;; round++) {
		size_t want;
		ssize_t n;

		if (c->dead || c->closing)
			return;
		ret = parse_input(c);
		if (ret == -EAGAIN)
			return;		/* stalled or throttled: resumed later */
		if (ret < 0) {
			nbd_conn_kill(c, "protocol error");
			return;
		}
		if (c->dead || c->closing)
			return;
		if (round == RECV_ROUNDS)
			break;
		compact_rbuf(c);
		if (c->wcmd && c->wbio && c->rpos == c->rlen) {
			want = 1;	/* always worth a second look */
			n = nbd_cmd_recv_payload(c);
		} else {
			want = NBD_RBUF_SIZE - c->rlen;
			n = recv(c->fd, c->rbuf + c->rlen, want, MSG_DONTWAIT);
			if (n > 0)
				c->rlen += (uint32_t)n;
		}
		if (n == 0) {
			if (!c->why)
				c->why = "client closed";
			nbd_conn_shutdown(c);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			nbd_conn_kill(c, "receive failed");
			return;
		}
		/*
		 * A short read emptied the socket: parse it, then let the poll
		 * say when there is more rather than pay for a read that
		 * would only say EAGAIN.
		 */
		if ((size_t)n < want) {
			ret = parse_input(c);
			if (ret == -EAGAIN)
				return;
			if (ret < 0) {
				nbd_conn_kill(c, "protocol error");
				return;
			}
			break;
		}
	}
	if (!c->dead && !c->closing)
		arm_in(c);
}

void nbd_conn_resume(struct nbd_conn *c)
{
	if (!c->stalled)
		return;
	c->stalled = false;
	c->w->nr_stalled--;
	if (!c->in_armed)
		process_input(c);
	nbd_conn_mark(c);
}

static void destroy(struct nbd_conn *c)
{
	struct worker *w = c->w;

	while (c->sq_head) {
		struct nbd_cmd *cmd = c->sq_head;

		c->sq_head = cmd->next;
		nbd_cmd_free(cmd);
	}
	if (c->state != NBD_TRANSMISSION)
		w->nr_handshaking--;
	if (c->stalled)
		w->nr_stalled--;
	worker_unlink(w, c);
	log_info("connection %u from %s%s%s%s closed: %s, %llu requests",
		 c->id, c->peer, c->ex ? " (export '" : "", c->ex ? c->ex->name : "",
		 c->ex ? "')" : "", c->why ? c->why : "done",
		 (unsigned long long)c->nr_requests);
	if (c->ex) {
		atomic_fetch_sub(&c->ex->stats.connections, 1);
		export_put(c->ex);
	}
	ioloop_forget_file(w->loop, c->fd);
	close(c->wfd);
	close(c->fd);
	bio_put(c->src);
	free(c->meta_export);
	free(c->obuf);
	free(c->rbuf);
	free(c);
}

void nbd_conn_service(struct nbd_conn *c)
{
	if (!c->dead) {
		flush_output(c);
		/* Input resumes when the poll fires, or once below the cap. */
		if (!c->in_armed && !c->stalled && !c->throttled &&
		    !c->closing && !c->dead)
			process_input(c);
		flush_output(c);
	}
	if (c->closing && !c->dead && !c->nr_active && !c->wcmd && !c->skip_cmd &&
	    !c->sq_head && c->olen == c->osent) {
		/* Everything answered: the orderly end. */
		c->dead = true;
		shutdown(c->fd, SHUT_RDWR);
	}
	/* Still queued for another pass: free it on that one. */
	if (c->dead && !c->nr_active && !c->in_armed && !c->out_armed &&
	    !c->on_dirty)
		destroy(c);
}

void nbd_conn_shutdown(struct nbd_conn *c)
{
	if (c->state != NBD_TRANSMISSION) {
		nbd_conn_kill(c, c->why ? c->why : "stopping");
		return;
	}
	if (!c->why)
		c->why = "stopping";
	c->closing = true;
	nbd_cmd_abort_write(c);
	/* Wake a pending input poll so nothing waits on it. */
	shutdown(c->fd, SHUT_RD);
	nbd_conn_mark(c);
}

void nbd_conn_kill(struct nbd_conn *c, const char *why)
{
	if (c->dead)
		return;
	c->dead = true;
	if (!c->why)
		c->why = why;
	nbd_cmd_abort_write(c);
	/* Completes any armed poll, so the connection can be freed. */
	shutdown(c->fd, SHUT_RDWR);
	nbd_conn_mark(c);
}
