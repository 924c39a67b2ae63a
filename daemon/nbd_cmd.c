/* SPDX-License-Identifier: MIT */
/*
 * NBD transmission: requests parsed from the receive buffer become bios
 * from the export's bio_set, chained to one data-less parent bio per
 * command whose completion builds the reply.  READ and WRITE payloads live
 * in page bios of at most one full bvec table (1 MiB); a WRITE's payload is
 * copied into them with bio_copy_data from a bio that describes the
 * receive buffer, or received straight into them when the buffer is empty.
 *
 * Memory is never waited for: when the bio_set or the page budget says
 * no, the connection stops reading (the request stays in the buffer) and
 * the worker retries it later.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/blk_lib.h"
#include "core/page.h"
#include "core/request.h"
#include "daemon/log.h"
#include "daemon/nbd-protocol.h"
#include "daemon/nbd_conn.h"
#include "daemon/nbd_reply.h"
#include "daemon/nbd_worker.h"

/* Commands a connection may have live (in flight or being answered). */
#define MAX_CMDS	256
/* Extents one BLOCK_STATUS reply may carry. */
#define MAX_EXTENTS	256
/* A WRITE longer than this cannot be skipped sensibly: hang up. */
#define MAX_SKIP_PAYLOAD	(2ull * NBD_MAX_PAYLOAD)

#define KNOWN_FLAGS	(NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | \
			 NBD_CMD_FLAG_REQ_ONE | NBD_CMD_FLAG_FAST_ZERO)

/* Per-connection share of the page budget. */
static uint64_t conn_cap(const struct nbd_conn *c)
{
	uint64_t cap = c->srv->budget / 4;

	return cap > c->ex->max_block ? cap : c->ex->max_block;
}

void nbd_cmd_free(struct nbd_cmd *cmd)
{
	struct nbd_conn *c = cmd->conn;
	unsigned int i;

	for (i = 0; i < cmd->nr_data; i++)
		bio_put(cmd->data[i]);
	free(cmd->ext_req);
	free(cmd->desc);
	c->nr_cmds--;
	c->held_bytes -= cmd->charge;
	bio_put(&cmd->bio);
	/* Pages came back: whoever waits for them may go on. */
	if (c->input_pause == NBD_INPUT_THROTTLED && c->nr_cmds < MAX_CMDS / 2 &&
	    c->held_bytes <= conn_cap(c) / 2) {
		nbd_conn_set_input(c, NBD_INPUT_READING);
		/* A dead connection is being freed, not resumed. */
		if (c->state != NBD_CONN_DEAD)
			nbd_conn_mark(c);
	}
}

/* The reply's header; an error reply carries no payload. */
static void build_reply(struct nbd_cmd *cmd)
{
	unsigned int i;
	uint32_t payload;

	if (cmd->error) {
		for (i = 0; i < cmd->nr_data; i++)
			bio_put(cmd->data[i]);
		cmd->nr_data = 0;
		cmd->desc_len = 0;
	}
	payload = cmd->type == NBD_CMD_READ ? cmd->length : cmd->desc_len;
	nbd_reply_build(&cmd->reply, cmd->conn->structured, cmd->type, cmd->cookie,
			cmd->offset, cmd->error, payload);
}

/* The parent bio ended: every bio of the command has. */
static void cmd_endio(struct bio *bio)
{
	struct nbd_cmd *cmd = bio_pad_obj(bio, struct nbd_cmd, bio);
	struct nbd_conn *c = cmd->conn;

	c->nr_active--;
	if (!cmd->error && bio->bi_status)
		cmd->error = nbd_errno(bio->bi_status);
	stats_end(&c->ex->stats, stats_op_of_nbd(cmd->type), cmd->length,
		  cmd->error != 0, cmd->t_start);
	if (c->state == NBD_CONN_DEAD) {
		nbd_cmd_free(cmd);
		nbd_conn_mark(c);
		return;
	}
	build_reply(cmd);
	nbd_conn_queue_reply(c, cmd);
}

static int stall(struct nbd_conn *c)
{
	nbd_conn_set_input(c, NBD_INPUT_STALLED);
	return -EAGAIN;
}

/* The command's own reference on its parent: drop it, ending it if the children have. */
static void cmd_start_done(struct nbd_cmd *cmd)
{
	bio_endio(&cmd->bio);
}

static void cmd_fail(struct nbd_cmd *cmd, uint32_t error)
{
	cmd->error = error;
	cmd_start_done(cmd);
}

/* BLOCK_STATUS: the backend answered. */
static void extents_done(struct backend_extents_req *req)
{
	struct nbd_cmd *cmd = req->private;
	unsigned int n;

	if (req->status || !req->nr) {
		cmd_fail(cmd, req->status ? nbd_errno(req->status) : NBD_EIO);
		return;
	}
	cmd->desc = malloc(sizeof(*cmd->desc) * (size_t)req->nr);
	if (!cmd->desc) {
		cmd_fail(cmd, NBD_ENOMEM);
		return;
	}
	n = nbd_extents_encode(req->ext, req->nr, cmd->offset, cmd->length, cmd->desc);
	if (!n) {
		cmd_fail(cmd, NBD_EIO);
		return;
	}
	cmd->desc_len = (uint32_t)(sizeof(*cmd->desc) * n);
	cmd_start_done(cmd);
}

static void do_block_status(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	unsigned int max = cmd->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : MAX_EXTENTS;
	struct backend_extents_req *req;

	req = calloc(1, sizeof(*req) + max * sizeof(struct backend_extent));
	if (!req) {
		cmd_fail(cmd, NBD_ENOMEM);
		return;
	}
	req->offset = cmd->offset;
	req->length = cmd->length;
	req->ext = (struct backend_extent *)(req + 1);
	req->max = max;
	req->done = extents_done;
	req->private = cmd;
	cmd->ext_req = req;
	backend_extents(c->ex->be, req);
}

/* TRIM, WRITE_ZEROES, FLUSH: bios without data, split where needed. */
static void do_nodata(struct nbd_conn *c, struct nbd_cmd *cmd, blk_opf_t opf)
{
	/* The reserve makes a failure rare; the part already sent stands. */
	if (blk_submit_nodata(&cmd->bio, &c->ex->bs, &c->ex->be->queue, opf,
			      cmd->offset, cmd->length))
		cmd->error = NBD_ENOMEM;
	cmd_start_done(cmd);
}

/* Allocate every page bio of a READ, or none (-ENOMEM), and submit them. */
static int do_read(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	int i, n;

	n = blk_alloc_data_bios(&c->ex->bs, &c->ex->be->queue, REQ_OP_READ,
				cmd->offset, cmd->length, cmd->data, NBD_MAX_DATA_BIOS);
	if (n < 0)
		return n;
	cmd->nr_data = (unsigned int)n;
	for (i = 0; i < n; i++) {
		/* The reply still needs the pages once the bio has ended. */
		bio_get(cmd->data[i]);
		bio_chain_and_submit(&cmd->bio, cmd->data[i]);
	}
	cmd_start_done(cmd);
	return 0;
}

/* Record why a request is refused; the NBD error it gets. */
static uint32_t refuse(const char **why, const char *reason, uint32_t error)
{
	*why = reason;
	return error;
}

static bool cmd_writes(const struct nbd_cmd *cmd)
{
	return cmd->type == NBD_CMD_WRITE || cmd->type == NBD_CMD_TRIM ||
	       cmd->type == NBD_CMD_WRITE_ZEROES;
}

/* What any command is refused for: the daemon's state, flags, read-only. */
static uint32_t check_common(const struct nbd_conn *c, const struct nbd_cmd *cmd,
			     const char **why)
{
	/*
	 * The daemon is stopping: the protocol's way to say so.  A FLUSH
	 * still runs, so a client can make what it wrote durable.
	 */
	if (c->state == NBD_CONN_REFUSING && cmd->type != NBD_CMD_FLUSH)
		return refuse(why, "the server is stopping", NBD_ESHUTDOWN);
	if (cmd->flags & ~KNOWN_FLAGS)
		return refuse(why, "unknown flags", NBD_EINVAL);
	if ((cmd->flags & (NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO)) &&
	    cmd->type != NBD_CMD_WRITE_ZEROES)
		return refuse(why, "NO_HOLE or FAST_ZERO flag on a command other than "
			      "WRITE_ZEROES", NBD_EINVAL);
	if (cmd_writes(cmd) && c->ex->be->readonly)
		return refuse(why, "the export is read-only", NBD_EPERM);
	return 0;
}

/* The length each command allows; *@byte_granular: needs no alignment. */
static uint32_t check_length(const struct export *ex, const struct nbd_cmd *cmd,
			     bool *byte_granular, const char **why)
{
	switch (cmd->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
		if (!cmd->length)
			return refuse(why, "zero length", NBD_EINVAL);
		if (cmd->length <= ex->max_block)
			return 0;
		if (cmd->type == NBD_CMD_READ && (cmd->flags & NBD_CMD_FLAG_DF))
			return refuse(why, "longer than the maximum block size, "
				      "and DF forbids splitting", NBD_EOVERFLOW);
		return refuse(why, "longer than the maximum block size", NBD_EINVAL);
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		return cmd->length ? 0 : refuse(why, "zero length", NBD_EINVAL);
	case NBD_CMD_CACHE:
	case NBD_CMD_BLOCK_STATUS:
		*byte_granular = true;
		return cmd->length ? 0 : refuse(why, "zero length", NBD_EINVAL);
	default:
		return refuse(why, "unknown command", NBD_EINVAL);
	}
}

/* What the backend must be able to do for this command. */
static uint32_t check_caps(const struct nbd_conn *c, const struct nbd_cmd *cmd,
			   const char **why)
{
	unsigned int caps = c->ex->be->caps;

	if (cmd->type == NBD_CMD_WRITE_ZEROES) {
		if (!(caps & BACKEND_CAP_WRITE_ZEROES))
			return refuse(why, "the backend cannot write zeroes", NBD_ENOTSUP);
		if ((cmd->flags & NBD_CMD_FLAG_FAST_ZERO) && !(caps & BACKEND_CAP_FAST_ZERO))
			return refuse(why, "the backend cannot zero fast", NBD_ENOTSUP);
	}
	if (cmd->type == NBD_CMD_BLOCK_STATUS && (!c->structured || !c->meta_alloc))
		return refuse(why, "base:allocation was not negotiated", NBD_EINVAL);
	return 0;
}

/*
 * Check a request against the export, as nbdkit's validate_request():
 * 0, or the NBD error with its reason in *@why for the log.
 */
static uint32_t validate(const struct nbd_conn *c, const struct nbd_cmd *cmd,
			 const char **why)
{
	const struct export *ex = c->ex;
	uint64_t size = ex->be->size;
	bool byte_granular = false;
	uint32_t err;

	err = check_common(c, cmd, why);
	if (err || cmd->type == NBD_CMD_FLUSH)
		return err;
	err = check_length(ex, cmd, &byte_granular, why);
	if (err)
		return err;
	if (cmd->offset > size || cmd->length > size - cmd->offset)
		return refuse(why, "beyond the end of the export",
			      cmd_writes(cmd) ? NBD_ENOSPC : NBD_EINVAL);
	if (!byte_granular && ((cmd->offset | cmd->length) & (ex->min_block - 1)))
		return refuse(why, "not aligned to the minimum block size", NBD_EINVAL);
	return check_caps(c, cmd, why);
}

static void start_write(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	c->wcmd = cmd;
	c->wbio = NULL;
	c->wnext = cmd->offset;
	c->wleft = cmd->length;
}

static void submit_write_bio(struct nbd_conn *c)
{
	struct bio *bio = c->wbio;

	c->wbio = NULL;
	c->wnext += bio->bi_iter.bi_size;
	bio_chain_and_submit(&c->wcmd->bio, bio);
}

/* The next page bio of the pending WRITE; false when memory is short. */
static bool alloc_write_bio(struct nbd_conn *c)
{
	uint32_t size = c->wleft > BIO_DATA_MAX_BYTES ? BIO_DATA_MAX_BYTES : c->wleft;
	blk_opf_t opf = REQ_OP_WRITE;

	if (c->wcmd->flags & NBD_CMD_FLAG_FUA)
		opf |= REQ_FUA;
	c->wbio = blk_alloc_data_bio(&c->ex->bs, &c->ex->be->queue, opf, c->wnext, size);
	if (!c->wbio)
		return false;
	c->wfill = c->wbio->bi_iter;
	return true;
}

/* Move the WRITE's payload from rbuf into its page bios. 1 done, 0 more, -EAGAIN. */
static int fill_write(struct nbd_conn *c)
{
	struct nbd_cmd *cmd = c->wcmd;

	while (c->wleft) {
		struct bvec_iter src_iter;
		uint32_t n;

		if (!c->wbio && !alloc_write_bio(c))
			return stall(c);
		n = c->rlen - c->rpos;
		if (!n)
			return 0;
		if (n > c->wfill.bi_size)
			n = c->wfill.bi_size;
		/* The source bio describes the bytes in the receive buffer. */
		c->src->bi_vcnt = 0;
		memset(&c->src->bi_iter, 0, sizeof(c->src->bi_iter));
		bio_add_page(c->src, c->rbuf + c->rpos, n, 0);
		src_iter = c->src->bi_iter;
		bio_copy_data_iter(c->wbio, &c->wfill, c->src, &src_iter);
		c->rpos += n;
		c->wleft -= n;
		if (!c->wfill.bi_size)
			submit_write_bio(c);
	}
	c->wcmd = NULL;
	cmd_start_done(cmd);
	return 1;
}

ssize_t nbd_cmd_recv_payload(struct nbd_conn *c)
{
	struct iovec iov[BIO_MAX_VECS + 1];
	struct bvec_iter iter;
	struct bio_vec bv;
	unsigned int n = 0;
	ssize_t r;
	uint32_t k;

	/* The rest of this bio, then the buffer for whatever follows. */
	for_each_bvec_iter(bv, c->wbio->bi_io_vec, iter, c->wfill) {
		iov[n].iov_base = bvec_virt(&bv);
		iov[n].iov_len = bv.bv_len;
		n++;
	}
	iov[n].iov_base = c->rbuf + c->rlen;
	iov[n].iov_len = NBD_RBUF_SIZE - c->rlen;
	n++;
	r = nbd_transport_recvv(&c->tp, iov, (int)n);
	if (r <= 0)
		return r;
	k = (size_t)r < c->wfill.bi_size ? (uint32_t)r : c->wfill.bi_size;
	bvec_iter_advance(c->wbio->bi_io_vec, &c->wfill, k);
	c->wleft -= k;
	c->rlen += (uint32_t)(r - k);
	if (!c->wfill.bi_size)
		submit_write_bio(c);
	return r;
}

/* The refused WRITE's payload is gone: answer it. */
static void skip_done(struct nbd_conn *c)
{
	struct nbd_cmd *cmd = c->skip.cmd;

	c->skip.cmd = NULL;
	c->skip.left = 0;
	cmd_start_done(cmd);
}

void nbd_cmd_abort_write(struct nbd_conn *c)
{
	struct nbd_cmd *cmd = c->wcmd;

	if (c->skip.cmd)
		skip_done(c);
	if (!cmd)
		return;
	if (c->wbio)
		bio_put(c->wbio);
	c->wbio = NULL;
	c->wcmd = NULL;
	c->wleft = 0;
	cmd->error = NBD_EIO;
	cmd_start_done(cmd);
}

/* A command in the front pad of a new parent bio; NULL when memory is short. */
static struct nbd_cmd *cmd_alloc(struct nbd_conn *c, const struct nbd_request *req)
{
	struct nbd_cmd *cmd;
	struct bio *bio;

	bio = bio_alloc_bioset(BLK_GFP_NOWAIT, 0, &c->ex->bs);
	if (!bio)
		return NULL;
	cmd = bio_pad_obj(bio, struct nbd_cmd, bio);
	memset(cmd, 0, offsetof(struct nbd_cmd, bio));
	cmd->conn = c;
	cmd->cookie = be64toh(req->cookie);
	cmd->offset = be64toh(req->offset);
	cmd->length = be32toh(req->count);
	cmd->type = be16toh(req->type);
	cmd->flags = be16toh(req->flags);
	bio->bi_end_io = cmd_endio;
	c->nr_cmds++;
	c->nr_active++;
	if (cmd->type == NBD_CMD_READ || cmd->type == NBD_CMD_WRITE) {
		cmd->charge = cmd->length;
		c->held_bytes += cmd->length;
	}
	return cmd;
}

/* Answer a refused request with @err; a WRITE's payload is skipped first. */
static void refuse_cmd(struct nbd_conn *c, struct nbd_cmd *cmd, uint32_t err,
		       const char *why)
{
	const char *name = nbd_cmd_name(cmd->type);
	char unknown[32];

	if (!name) {
		snprintf(unknown, sizeof(unknown), "command type %u", cmd->type);
		name = unknown;
	}
	log_debug("connection %u from %s: %s of %u bytes at %llu refused: %s",
		  c->id, c->peer, name, cmd->length, (unsigned long long)cmd->offset, why);
	/*
	 * A refused WRITE's payload still follows: skip it, and answer only
	 * after it, as clients expect no reply to a request they are still
	 * sending.
	 */
	if (cmd->type == NBD_CMD_WRITE && cmd->length) {
		cmd->error = err;
		c->skip.cmd = cmd;
		c->skip.left = cmd->length;
		return;
	}
	cmd_fail(cmd, err);
}

/* Start a validated command; a READ has been started already. */
static void dispatch(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	uint16_t flags = cmd->flags;

	switch (cmd->type) {
	case NBD_CMD_READ:
		break;
	case NBD_CMD_WRITE:
		start_write(c, cmd);
		break;
	case NBD_CMD_FLUSH:
		do_nodata(c, cmd, REQ_OP_FLUSH);
		break;
	case NBD_CMD_TRIM:
		/* Trim is advisory: without the capability it does nothing. */
		if (!(c->ex->be->caps & BACKEND_CAP_TRIM)) {
			cmd_start_done(cmd);
			break;
		}
		do_nodata(c, cmd, REQ_OP_DISCARD |
			  (flags & NBD_CMD_FLAG_FUA ? REQ_FUA : 0));
		break;
	case NBD_CMD_WRITE_ZEROES:
		do_nodata(c, cmd, REQ_OP_WRITE_ZEROES |
			  (flags & NBD_CMD_FLAG_FUA ? REQ_FUA : 0) |
			  (flags & NBD_CMD_FLAG_NO_HOLE ? REQ_NOUNMAP : 0));
		break;
	case NBD_CMD_CACHE:
		cmd_start_done(cmd);
		break;
	case NBD_CMD_BLOCK_STATUS:
		do_block_status(c, cmd);
		break;
	}
}

/* Start one parsed request. 0, -EAGAIN (not consumed), or <0 to hang up. */
static int start_cmd(struct nbd_conn *c, const struct nbd_request *req)
{
	uint16_t type = be16toh(req->type);
	const char *why = NULL;
	struct nbd_cmd *cmd;
	uint32_t err;

	if (type == NBD_CMD_DISC) {
		c->rpos += sizeof(*req);
		c->why = "client disconnected";
		c->state = NBD_CONN_CLOSING;
		return -EAGAIN;
	}
	if (type == NBD_CMD_WRITE && be32toh(req->count) > MAX_SKIP_PAYLOAD) {
		c->why = "impossible write length";
		return -EPROTO;
	}
	cmd = cmd_alloc(c, req);
	if (!cmd)
		return stall(c);
	err = validate(c, cmd, &why);
	if (!err && type == NBD_CMD_READ && do_read(c, cmd)) {
		/* Not consumed: the same request is tried again later. */
		c->nr_active--;
		nbd_cmd_free(cmd);
		return stall(c);
	}
	c->rpos += sizeof(*req);
	c->nr_requests++;
	cmd->t_start = stats_now();
	stats_start(&c->ex->stats);
	if (err)
		refuse_cmd(c, cmd, err, why);
	else
		dispatch(c, cmd);
	return 0;
}

/* Discard what has arrived of a refused WRITE's payload. 1 done, 0 more. */
static int skip_payload(struct nbd_conn *c)
{
	uint32_t n = c->rlen - c->rpos;

	if (n > c->skip.left)
		n = c->skip.left;
	c->rpos += n;
	c->skip.left -= n;
	if (c->skip.left)
		return 0;
	skip_done(c);
	return 1;
}

int nbd_cmd_process(struct nbd_conn *c)
{
	const struct nbd_request *req;
	int ret;

	for (;;) {
		if (c->wcmd || c->skip.cmd) {
			ret = c->wcmd ? fill_write(c) : skip_payload(c);
			if (ret <= 0)
				return ret;
			continue;
		}
		if (!nbd_conn_transmitting(c))
			return -EAGAIN;
		if (c->rlen - c->rpos < sizeof(*req))
			return 0;
		if (c->nr_cmds && (c->nr_cmds >= MAX_CMDS ||
				   c->held_bytes >= conn_cap(c))) {
			nbd_conn_set_input(c, NBD_INPUT_THROTTLED);
			return -EAGAIN;
		}
		req = (const struct nbd_request *)(c->rbuf + c->rpos);
		if (be32toh(req->magic) != NBD_REQUEST_MAGIC) {
			c->why = "bad request magic";
			return -EPROTO;
		}
		ret = start_cmd(c, req);
		if (ret)
			return ret;
	}
}
