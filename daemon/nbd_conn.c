/* SPDX-License-Identifier: MIT */
/*
 * An NBD connection's I/O side: non-blocking reads into a receive buffer
 * that is parsed in batches, replies gathered into one send, both through
 * the connection's transport (nbd_transport.h), and the connection's life
 * from accept to close (enum nbd_conn_state).  Readiness comes from
 * ioloop_poll() on the transport's fds, so this works on io_uring and on
 * epoll alike.
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
#include "daemon/nbd_worker.h"

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
	nbd_worker_mark(c->w, c);
}

void nbd_conn_set_input(struct nbd_conn *c, enum nbd_input_pause pause)
{
	if (c->input_pause == NBD_INPUT_STALLED)
		c->w->nr_stalled--;
	if (pause == NBD_INPUT_STALLED)
		c->w->nr_stalled++;
	c->input_pause = pause;
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
	if (c->in_armed || c->state == NBD_CONN_DEAD)
		return;
	if (ioloop_poll(c->w->loop, c->tp.fd, POLLIN | POLLRDHUP, &c->in_op)) {
		nbd_conn_kill(c, "cannot poll the socket");
		return;
	}
	c->in_armed = true;
}

static void arm_out(struct nbd_conn *c)
{
	if (c->out_armed || c->state == NBD_CONN_DEAD)
		return;
	if (ioloop_poll(c->w->loop, c->tp.wfd, POLLOUT, &c->out_op)) {
		nbd_conn_kill(c, "cannot poll the socket");
		return;
	}
	c->out_armed = true;
}

void nbd_conn_start(struct nbd_worker *w, const struct nbd_server *srv, int fd,
		    const char *peer)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));

	if (!c)
		goto fail;
	c->rbuf = malloc(NBD_RBUF_SIZE);
	c->src = bio_kmalloc(BLK_GFP_WAIT, 1);
	if (!c->rbuf || !c->src || nbd_transport_socket_init(&c->tp, fd)) {
		if (c->src)
			bio_put(c->src);
		free(c->rbuf);
		free(c);
		goto fail;
	}
	c->w = w;
	c->srv = srv;
	c->id = next_conn_id();
	c->in_op.cb = in_cb;
	c->out_op.cb = out_cb;
	c->state = NBD_CONN_HANDSHAKE;
	c->hs.step = NBD_HS_FLAGS;
	c->hs.deadline = time(NULL) + srv->handshake_timeout;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	nbd_worker_link(w, c);
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
	struct nbd_outbuf *o = &c->hs_out;

	if (o->len + len > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		uint8_t *n;

		while (cap < o->len + len)
			cap *= 2;
		n = realloc(o->data, cap);
		if (!n)
			return -ENOMEM;
		o->data = n;
		o->cap = (uint32_t)cap;
	}
	memcpy(o->data + o->len, data, len);
	o->len += (uint32_t)len;
	return 0;
}

void nbd_conn_queue_reply(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	cmd->next = NULL;
	if (c->reply_tail)
		c->reply_tail->next = cmd;
	else
		c->reply_head = cmd;
	c->reply_tail = cmd;
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

	if (!iov_add(b, &cmd->reply.hdr, cmd->reply.hdr_len))
		return false;
	for (i = 0; i < cmd->nr_data; i++) {
		struct bvec_iter iter;
		struct bio_vec bv;

		bio_for_each_segment(bv, cmd->data[i], iter) {
			if (!iov_add(b, bvec_virt(&bv), bv.bv_len))
				return false;
		}
	}
	if (cmd->desc_len && !iov_add(b, cmd->desc, cmd->desc_len))
		return false;
	return true;
}

/* Forget @n bytes that went out. */
static void consume_sent(struct nbd_conn *c, size_t n)
{
	struct nbd_outbuf *o = &c->hs_out;
	size_t k = o->len - o->sent < n ? o->len - o->sent : n;

	o->sent += (uint32_t)k;
	n -= k;
	if (o->sent == o->len)
		o->sent = o->len = 0;
	while (n && c->reply_head) {
		struct nbd_cmd *cmd = c->reply_head;
		uint64_t left = cmd->reply.len - c->reply_sent;

		if (n < left) {
			c->reply_sent += n;
			return;
		}
		n -= (size_t)left;
		c->reply_sent = 0;
		c->reply_head = cmd->next;
		if (!c->reply_head)
			c->reply_tail = NULL;
		nbd_cmd_free(cmd);
	}
}

static bool output_pending(const struct nbd_conn *c)
{
	return c->hs_out.len > c->hs_out.sent || c->reply_head;
}

/* Gather the handshake bytes and the queued replies not yet sent. */
static void gather_output(struct nbd_conn *c, struct iov_builder *b)
{
	struct nbd_cmd *cmd;

	b->n = 0;
	b->total = 0;
	b->skip = 0;
	if (c->hs_out.len > c->hs_out.sent)
		iov_add(b, c->hs_out.data + c->hs_out.sent,
			c->hs_out.len - c->hs_out.sent);
	b->skip = c->reply_sent;
	for (cmd = c->reply_head; cmd; cmd = cmd->next) {
		if (!iov_add_cmd(b, cmd))
			break;
	}
}

/* Send what is queued until done or the transport is full. */
static void flush_output(struct nbd_conn *c)
{
	while (c->state != NBD_CONN_DEAD && output_pending(c)) {
		struct iov_builder b;
		ssize_t n;

		gather_output(c, &b);
		n = nbd_transport_sendv(&c->tp, b.iov, (int)b.n);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN) {
			arm_out(c);
			return;
		}
		if (n < 0) {
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
	struct blk_plug plug;
	int ret;

	for (;;) {
		switch (c->state) {
		case NBD_CONN_TRANSMISSION:
		case NBD_CONN_REFUSING:
			/* Contiguous bios of one batch merge into one request. */
			blk_start_plug(&plug);
			ret = nbd_cmd_process(c);
			blk_finish_plug(&plug);
			return ret;
		case NBD_CONN_HANDSHAKE:
			ret = nbd_handshake_step(c);
			if (c->state == NBD_CONN_DEAD)
				return -EAGAIN;
			if (ret <= 0)
				return ret;
			break;
		case NBD_CONN_CLOSING:
		case NBD_CONN_DEAD:
			return -EAGAIN;
		}
	}
}

static bool input_open(const struct nbd_conn *c)
{
	return c->state != NBD_CONN_CLOSING && c->state != NBD_CONN_DEAD;
}

/* Receive more: into the pending WRITE's pages, or the buffer. */
static ssize_t receive(struct nbd_conn *c, size_t *want)
{
	ssize_t n;

	if (c->wcmd && c->wbio && c->rpos == c->rlen) {
		*want = 1;	/* always worth a second look */
		return nbd_cmd_recv_payload(c);
	}
	*want = NBD_RBUF_SIZE - c->rlen;
	n = nbd_transport_recv(&c->tp, c->rbuf + c->rlen, *want);
	if (n > 0)
		c->rlen += (uint32_t)n;
	return n;
}

/* parse_input(), killing @c on a protocol error; false: stop reading. */
static bool parse_or_kill(struct nbd_conn *c)
{
	int ret = parse_input(c);

	if (ret == -EAGAIN)
		return false;	/* paused or closing: resumed later */
	if (ret < 0) {
		nbd_conn_kill(c, "protocol error");
		return false;
	}
	return true;
}

/*
 * Parse what is buffered, read more, repeat: until the socket is empty,
 * memory runs out, or this connection has had its share of the wake-up.
 */
static void process_input(struct nbd_conn *c)
{
	int round;

	for (round = 0;; round++) {
		size_t want;
		ssize_t n;

		if (!input_open(c) || !parse_or_kill(c) || !input_open(c))
			return;
		if (round == RECV_ROUNDS)
			break;
		compact_rbuf(c);
		n = receive(c, &want);
		if (n == 0) {
			if (!c->why)
				c->why = "client closed";
			nbd_conn_shutdown(c);
			return;
		}
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			nbd_conn_kill(c, "receive failed");
			return;
		}
		/*
		 * A short read emptied the socket: parse it, then let the poll
		 * say when there is more rather than pay for a read that
		 * would only say EAGAIN.
		 */
		if ((size_t)n < want) {
			if (!parse_or_kill(c))
				return;
			break;
		}
	}
	if (input_open(c))
		arm_in(c);
}

void nbd_conn_resume(struct nbd_conn *c)
{
	if (c->input_pause != NBD_INPUT_STALLED)
		return;
	nbd_conn_set_input(c, NBD_INPUT_READING);
	if (!c->in_armed)
		process_input(c);
	nbd_conn_mark(c);
}

static void log_close(const struct nbd_conn *c)
{
	log_debug("connection %u from %s%s%s%s closed: %s, %llu requests",
		  c->id, c->peer, c->ex ? " (export '" : "", c->ex ? c->ex->name : "",
		  c->ex ? "')" : "", c->why ? c->why : "done",
		  (unsigned long long)c->nr_requests);
}

static void destroy(struct nbd_conn *c)
{
	struct nbd_worker *w = c->w;

	while (c->reply_head) {
		struct nbd_cmd *cmd = c->reply_head;

		c->reply_head = cmd->next;
		nbd_cmd_free(cmd);
	}
	if (!nbd_conn_negotiated(c))
		w->nr_handshaking--;
	nbd_conn_set_input(c, NBD_INPUT_READING);
	nbd_worker_unlink(w, c);
	log_close(c);
	if (c->ex) {
		atomic_fetch_sub(&c->ex->stats.connections, 1);
		export_put(c->ex);
	}
	ioloop_forget_file(w->loop, c->tp.fd);
	nbd_transport_close(&c->tp);
	bio_put(c->src);
	free(c->meta_export);
	free(c->tls_identity);
	free(c->hs_out.data);
	free(c->rbuf);
	free(c);
}

/* Everything asked was answered and sent. */
static bool quiescent(const struct nbd_conn *c)
{
	return !c->nr_active && !c->wcmd && !c->skip.cmd && !output_pending(c);
}

void nbd_conn_service(struct nbd_conn *c)
{
	if (c->state != NBD_CONN_DEAD) {
		flush_output(c);
		/* Input resumes when the poll fires, or once below the cap. */
		if (!c->in_armed && c->input_pause == NBD_INPUT_READING &&
		    input_open(c))
			process_input(c);
		flush_output(c);
	}
	if (c->state == NBD_CONN_CLOSING && quiescent(c)) {
		/* Everything answered: the orderly end. */
		c->state = NBD_CONN_DEAD;
		nbd_transport_shutdown(&c->tp, SHUT_RDWR);
	}
	/* Still queued for another pass: free it on that one. */
	if (c->state == NBD_CONN_DEAD && !c->nr_active && !c->in_armed &&
	    !c->out_armed && !c->on_dirty)
		destroy(c);
}

void nbd_conn_refuse(struct nbd_conn *c)
{
	if (c->state != NBD_CONN_TRANSMISSION) {
		nbd_conn_shutdown(c);
		return;
	}
	c->state = NBD_CONN_REFUSING;
	nbd_conn_mark(c);
}

void nbd_conn_shutdown(struct nbd_conn *c)
{
	if (c->state == NBD_CONN_DEAD)
		return;
	if (!nbd_conn_negotiated(c)) {
		nbd_conn_kill(c, c->why ? c->why : "stopping");
		return;
	}
	if (!c->why)
		c->why = "stopping";
	c->state = NBD_CONN_CLOSING;
	nbd_cmd_abort_write(c);
	/* Wake a pending input poll so nothing waits on it. */
	nbd_transport_shutdown(&c->tp, SHUT_RD);
	nbd_conn_mark(c);
}

void nbd_conn_kill(struct nbd_conn *c, const char *why)
{
	if (c->state == NBD_CONN_DEAD)
		return;
	c->state = NBD_CONN_DEAD;
	if (!c->why)
		c->why = why;
	nbd_cmd_abort_write(c);
	/* Completes any armed poll, so the connection can be freed. */
	nbd_transport_shutdown(&c->tp, SHUT_RDWR);
	nbd_conn_mark(c);
}
