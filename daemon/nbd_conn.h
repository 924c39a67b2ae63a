/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_NBD_CONN_H
#define BLOCKD_DAEMON_NBD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/bio.h"
#include "core/blk_lib.h"
#include "core/ioloop.h"
#include "daemon/export.h"
#include "daemon/nbd_reply.h"
#include "daemon/nbd_transport.h"
#include "daemon/registry.h"

/*
 * One NBD client connection.  It belongs to one worker and is touched only
 * on that worker's loop thread: its transport, its commands and their bios.
 */

struct nbd_worker;

/* What every connection shares: the exports and the limits. */
struct nbd_server {
	struct registry *reg;
	unsigned int handshake_timeout;	/* seconds */
	unsigned int poll_us;		/* workers' spin before sleeping */
	uint64_t budget;		/* the page budget, bytes */
};

/* Largest READ or WRITE payload; also the most one command may hold. */
#define NBD_MAX_PAYLOAD		(32u << 20)
/* Page bios per command: payloads are split at one full bvec table. */
#define NBD_MAX_DATA_BIOS	(NBD_MAX_PAYLOAD / BIO_DATA_MAX_BYTES)
/* Receive buffer: requests and small payloads land here in batches. */
#define NBD_RBUF_SIZE		(256u << 10)

/* A connection's life, from accept to close: one value, one owner. */
enum nbd_conn_state {
	NBD_CONN_HANDSHAKE,	/* greeted; options until an export is picked */
	NBD_CONN_TRANSMISSION,	/* serving commands */
	NBD_CONN_REFUSING,	/* stopping: new commands get ESHUTDOWN */
	NBD_CONN_CLOSING,	/* no more input: close once all is answered */
	NBD_CONN_DEAD,		/* drop everything and close */
};

/* Why a live connection reads no input for now, if it does not. */
enum nbd_input_pause {
	NBD_INPUT_READING,	/* not paused */
	NBD_INPUT_STALLED,	/* out of memory: the worker retries it */
	NBD_INPUT_THROTTLED,	/* at its share: resumed as commands end */
};

/* The handshake's own state; nbd_handshake.c's. */
struct nbd_handshake {
	enum {
		NBD_HS_FLAGS,		/* waiting for the client's flags */
		NBD_HS_OPTS,		/* option haggling */
	} step;
	uint32_t opt_skip;		/* bytes of a too-long option to discard */
	time_t deadline;		/* killed if not in transmission by then */
};

/*
 * One command, from its request to its reply; it lives in the front pad
 * of a data-less "parent" bio that every page bio of the command is
 * chained to, so the command completes when its last bio does.
 */
struct nbd_cmd {
	struct nbd_conn *conn;
	struct nbd_cmd *next;		/* reply queue */
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
	uint16_t type;
	uint16_t flags;
	uint32_t error;			/* NBD error for the reply */
	uint32_t charge;		/* bytes counted against the connection */
	unsigned int nr_data;		/* READ: page bios kept for the reply */
	struct bio *data[NBD_MAX_DATA_BIOS];
	struct backend_extents_req *ext_req;	/* BLOCK_STATUS query */
	struct nbd_block_descriptor *desc;	/* BLOCK_STATUS reply payload */
	uint32_t desc_len;		/* bytes of @desc */
	struct nbd_reply reply;		/* header and length, once ended */
	uint64_t t_start;		/* stats_now() when it arrived */
	struct bio bio;			/* the parent; last, see BIO_FRONT_PAD() */
};

/* A refused WRITE whose payload is still arriving, to be discarded. */
struct nbd_write_skip {
	struct nbd_cmd *cmd;		/* answered once the payload is gone */
	uint32_t left;			/* payload bytes still to discard */
};

/* Handshake replies waiting for the transport. */
struct nbd_outbuf {
	uint8_t *data;
	uint32_t len, sent, cap;
};

struct nbd_conn {
	struct nbd_worker *w;
	const struct nbd_server *srv;
	struct nbd_conn *prev, *next;	/* the worker's connections */
	struct nbd_conn *dirty_next;	/* the worker's to-do list */
	bool on_dirty;
	unsigned int id;
	char peer[64];
	struct nbd_transport tp;
	char *tls_identity;		/* TLS peer: cert DN or PSK user; or NULL */
	enum nbd_conn_state state;
	enum nbd_input_pause input_pause;
	struct nbd_handshake hs;

	struct ioloop_op in_op, out_op;
	bool in_armed, out_armed;

	/* Input: [rpos, rlen) of rbuf is received and not yet parsed. */
	uint8_t *rbuf;
	uint32_t rpos, rlen;
	struct bio *src;		/* describes rbuf bytes for bio_copy_data */

	/* A WRITE whose payload is still arriving. */
	struct nbd_cmd *wcmd;
	struct bio *wbio;		/* page bio being filled */
	struct bvec_iter wfill;		/* where its next byte goes */
	uint64_t wnext;			/* device offset of the next bio */
	uint32_t wleft;			/* payload bytes not yet received */
	struct nbd_write_skip skip;

	/* Output: handshake bytes, then replies in completion order. */
	struct nbd_outbuf hs_out;
	struct nbd_cmd *reply_head, *reply_tail;
	uint64_t reply_sent;		/* bytes of reply_head already sent */

	/* Negotiated. */
	struct export *ex;		/* set on entering transmission */
	bool no_zeroes;
	bool structured;
	bool meta_alloc;		/* base:allocation selected */
	char *meta_export;		/* ... for this export name */
	uint16_t tflags;

	/* Accounting and flow control. */
	unsigned int nr_cmds;		/* allocated, including queued replies */
	unsigned int nr_active;		/* submitted, not yet ended */
	uint64_t held_bytes;		/* payload bytes of live commands */
	uint64_t nr_requests;
	const char *why;		/* for the disconnect log line */
};

/* The front pad NBD needs in an export's bio_set. */
#define NBD_CMD_PAD	BIO_FRONT_PAD(struct nbd_cmd, bio)

/**
 * nbd_conn_start - take over an accepted socket on the calling worker
 * @w: the worker whose loop thread calls this
 * @srv: exports and limits
 * @fd: the connected, non-blocking socket; closed on failure
 * @peer: the client's address, for logs
 *
 * Sends the greeting and starts the handshake timer.
 */
void nbd_conn_start(struct nbd_worker *w, const struct nbd_server *srv, int fd,
		    const char *peer);

/**
 * nbd_conn_service - do what a connection on the worker's to-do list needs
 * @c: the connection
 *
 * Sends what is queued, reads and parses input unless it is paused, and
 * frees the connection once it is dead and nothing refers to it.
 */
void nbd_conn_service(struct nbd_conn *c);

/**
 * nbd_conn_resume - retry a connection that stalled for memory
 * @c: the connection; nothing happens unless it is NBD_INPUT_STALLED
 */
void nbd_conn_resume(struct nbd_conn *c);

/**
 * nbd_conn_refuse - the daemon is stopping: answer new commands ESHUTDOWN
 * @c: the connection; one not in transmission is shut down instead
 */
void nbd_conn_refuse(struct nbd_conn *c);

/**
 * nbd_conn_shutdown - stop taking requests; close once all are answered
 * @c: the connection; one still in the handshake is killed
 */
void nbd_conn_shutdown(struct nbd_conn *c);

/**
 * nbd_conn_kill - close now: bad input, timeouts, forced stop
 * @c: the connection
 * @why: for the close log line, unless a reason was recorded before
 */
void nbd_conn_kill(struct nbd_conn *c, const char *why);

/**
 * nbd_conn_negotiated - whether @c has left the handshake for an export
 * @c: the connection
 *
 * Return: true once an export was picked, whatever the state since.
 */
static inline bool nbd_conn_negotiated(const struct nbd_conn *c)
{
	return c->ex != NULL;
}

/**
 * nbd_conn_transmitting - whether @c parses commands from its input
 * @c: the connection
 *
 * Return: true in NBD_CONN_TRANSMISSION and NBD_CONN_REFUSING.
 */
static inline bool nbd_conn_transmitting(const struct nbd_conn *c)
{
	return c->state == NBD_CONN_TRANSMISSION || c->state == NBD_CONN_REFUSING;
}

/*
 * Internal: between nbd_conn.c, nbd_handshake.c and nbd_cmd.c, all on the
 * connection's worker thread.
 */

/**
 * nbd_conn_mark - queue @c on its worker's to-do list
 * @c: the connection; serviced after the loop's current callbacks
 */
void nbd_conn_mark(struct nbd_conn *c);

/**
 * nbd_conn_set_input - pause or resume a connection's input
 * @c: the connection
 * @pause: why it is paused now, or NBD_INPUT_READING
 *
 * Keeps the worker's count of stalled connections, which it retries.
 */
void nbd_conn_set_input(struct nbd_conn *c, enum nbd_input_pause pause);

/**
 * nbd_conn_out - append handshake bytes to the output
 * @c: the connection
 * @data: the bytes
 * @len: how many
 *
 * Return: 0, or -ENOMEM.
 */
int nbd_conn_out(struct nbd_conn *c, const void *data, size_t len);

/**
 * nbd_conn_queue_reply - queue a finished command's reply
 * @c: the connection
 * @cmd: the command, its reply built; freed once the reply is sent
 */
void nbd_conn_queue_reply(struct nbd_conn *c, struct nbd_cmd *cmd);

/**
 * nbd_handshake_greet - queue the server's greeting
 * @c: a new connection; killed when out of memory
 */
void nbd_handshake_greet(struct nbd_conn *c);

/**
 * nbd_handshake_step - consume one handshake message from the input
 * @c: a connection in NBD_CONN_HANDSHAKE
 *
 * Return: >0 progress, 0 when more input is needed, <0 to kill @c (with
 * the reason in @c->why).
 */
int nbd_handshake_step(struct nbd_conn *c);

/**
 * nbd_cmd_process - parse and start commands from the input
 * @c: a connection in transmission
 *
 * Return: 0 when it needs more input, -EAGAIN when input is paused or
 * closing, <0 to kill @c (with the reason in @c->why).
 */
int nbd_cmd_process(struct nbd_conn *c);

/**
 * nbd_cmd_recv_payload - receive straight into the pending WRITE's pages
 * @c: a connection with a WRITE whose page bio is allocated and whose
 *	receive buffer is empty
 *
 * Bytes beyond the bio land in the receive buffer.
 *
 * Return: as nbd_transport_recvv().
 */
ssize_t nbd_cmd_recv_payload(struct nbd_conn *c);

/**
 * nbd_cmd_abort_write - end the WRITEs whose payload will not come
 * @c: the connection, closing
 *
 * A WRITE being received ends with NBD_EIO; a refused WRITE whose payload
 * was being skipped gets its error reply.
 */
void nbd_cmd_abort_write(struct nbd_conn *c);

/**
 * nbd_cmd_free - free a command
 * @cmd: a command whose reply went out, or that never started
 *
 * Returns its pages to the budget and lets a throttled connection read
 * again once it is below half its share.
 */
void nbd_cmd_free(struct nbd_cmd *cmd);

#endif
