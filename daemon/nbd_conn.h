/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_NBD_CONN_H
#define BLOCKD_DAEMON_NBD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/bio.h"
#include "core/ioloop.h"
#include "daemon/export.h"
#include "daemon/registry.h"

/*
 * One NBD client connection.  It belongs to one worker and is touched only
 * on that worker's loop thread: its socket, its commands and their bios.
 */

struct worker;

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
#define NBD_BIO_BYTES		(BIO_MAX_VECS * 4096u)
#define NBD_MAX_DATA_BIOS	(NBD_MAX_PAYLOAD / NBD_BIO_BYTES)
/* Receive buffer: requests and small payloads land here in batches. */
#define NBD_RBUF_SIZE		(256u << 10)

enum nbd_conn_state {
	NBD_HS_FLAGS,		/* waiting for the client's flags */
	NBD_HS_OPTS,		/* option haggling */
	NBD_TRANSMISSION,
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
	struct backend_extents_req *ext;	/* BLOCK_STATUS */
	uint8_t *extra;			/* reply payload after the header */
	uint32_t extra_len;
	uint32_t hdr_len;
	uint8_t hdr[32];		/* reply header */
	uint64_t reply_len;		/* header + data + extra */
	uint64_t t_start;		/* stats_now() when it arrived */
	struct bio bio;			/* the parent; last, see BIO_FRONT_PAD() */
};

struct nbd_conn {
	struct worker *w;
	const struct nbd_server *srv;
	struct nbd_conn *prev, *next;	/* the worker's connections */
	struct nbd_conn *dirty_next;	/* the worker's to-do list */
	bool on_dirty;
	unsigned int id;
	int fd;
	int wfd;			/* dup of fd: its own poll registration */
	char peer[64];
	enum nbd_conn_state state;
	time_t hs_deadline;

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
	uint32_t wskip;			/* payload bytes to discard */
	struct nbd_cmd *skip_cmd;	/* the refused WRITE they belong to */

	/* Output: handshake bytes, then replies in completion order. */
	uint8_t *obuf;
	uint32_t olen, osent, ocap;
	struct nbd_cmd *sq_head, *sq_tail;
	uint64_t sq_off;		/* bytes of sq_head already sent */

	/* Negotiated. */
	struct export *ex;
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
	bool stalled;			/* waiting for memory */
	bool throttled;			/* at its share of commands */
	bool refusing;			/* stopping: new commands get ESHUTDOWN */
	bool closing;			/* no more input: EOF, DISC or shutdown */
	bool dead;			/* drop everything and close */
	const char *why;		/* for the disconnect log line */
};

/* The front pad NBD needs in an export's bio_set. */
#define NBD_CMD_PAD	BIO_FRONT_PAD(struct nbd_cmd, bio)

/* Take over accepted socket @fd on the calling worker. */
void nbd_conn_start(struct worker *w, const struct nbd_server *srv, int fd,
		    const char *peer);

/* Worker hooks: after each loop iteration, for a connection on the to-do list. */
void nbd_conn_service(struct nbd_conn *c);
/* Retry a connection that stalled for memory. */
void nbd_conn_resume(struct nbd_conn *c);
/* Stop taking requests; close once in-flight ones are answered. */
void nbd_conn_shutdown(struct nbd_conn *c);
/* Close now: bad input, timeouts, forced stop. */
void nbd_conn_kill(struct nbd_conn *c, const char *why);

/* Internal: between nbd_conn.c, nbd_handshake.c and nbd_cmd.c. */
void nbd_conn_mark(struct nbd_conn *c);
int nbd_conn_out(struct nbd_conn *c, const void *data, size_t len);
void nbd_conn_queue_reply(struct nbd_conn *c, struct nbd_cmd *cmd);
/* Handshake: consume what rbuf holds. >0 progress, 0 need more, <0 kill. */
int nbd_handshake_step(struct nbd_conn *c);
void nbd_handshake_greet(struct nbd_conn *c);
/*
 * Transmission: parse and start commands from rbuf.  Returns 0 when
 * it needs more input, -EAGAIN when stalled or throttled, <0 to kill.
 */
int nbd_cmd_process(struct nbd_conn *c);
/* Direct receive into the pending WRITE's pages; see nbd_cmd.c. */
int nbd_cmd_recv_payload(struct nbd_conn *c);
void nbd_cmd_abort_write(struct nbd_conn *c);
void nbd_cmd_free(struct nbd_cmd *cmd);

#endif
