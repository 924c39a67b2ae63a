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

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/page.h"
#include "core/request.h"
#include "daemon/nbd-protocol.h"
#include "daemon/nbd_conn.h"
#include "daemon/worker.h"

/* Commands a connection may have live (in flight or being answered). */
#define MAX_CMDS	256
/* Data-less requests (trim, zero) are split at this size. */
#define NODATA_BIO_BYTES	(256u << 20)
/* Extents one BLOCK_STATUS reply may carry. */
#define MAX_EXTENTS	256
/* A WRITE longer than this cannot be skipped sensibly: hang up. */
#define MAX_SKIP_PAYLOAD	(2ull * NBD_MAX_PAYLOAD)

#define KNOWN_FLAGS	(NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | \
			 NBD_CMD_FLAG_REQ_ONE | NBD_CMD_FLAG_FAST_ZERO)

static uint32_t nbd_errno(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EINVAL:
		return NBD_EINVAL;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case EOPNOTSUPP:
		return NBD_ENOTSUP;
	case ENOMEM:
		return NBD_ENOMEM;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

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
	free(cmd->ext);
	free(cmd->extra);
	c->nr_cmds--;
	c->held_bytes -= cmd->charge;
	bio_put(&cmd->bio);
	/* Pages came back: whoever waits for them may go on. */
	if (c->throttled && c->nr_cmds < MAX_CMDS / 2 &&
	    c->held_bytes <= conn_cap(c) / 2) {
		c->throttled = false;
		/* A dead connection is being freed, not resumed. */
		if (!c->dead)
			nbd_conn_mark(c);
	}
}

static void build_reply(struct nbd_cmd *cmd)
{
	struct nbd_conn *c = cmd->conn;
	bool chunk = c->structured &&
		     (cmd->type == NBD_CMD_READ || cmd->type == NBD_CMD_BLOCK_STATUS);
	uint8_t *p = cmd->hdr;
	unsigned int i;

	if (cmd->error) {
		for (i = 0; i < cmd->nr_data; i++)
			bio_put(cmd->data[i]);
		cmd->nr_data = 0;
		cmd->extra_len = 0;
	}
	if (!chunk) {
		p = nbd_put32(p, NBD_SIMPLE_REPLY_MAGIC);
		p = nbd_put32(p, cmd->error);
		nbd_put64(p, cmd->cookie);
		cmd->hdr_len = NBD_SIMPLE_REPLY_LEN;
		cmd->reply_len = cmd->hdr_len;
		if (cmd->type == NBD_CMD_READ && !cmd->error)
			cmd->reply_len += cmd->length;
		return;
	}
	p = nbd_put32(p, NBD_STRUCTURED_REPLY_MAGIC);
	p = nbd_put16(p, NBD_REPLY_FLAG_DONE);
	if (cmd->error) {
		p = nbd_put16(p, NBD_REPLY_TYPE_ERROR);
		p = nbd_put64(p, cmd->cookie);
		p = nbd_put32(p, 6);
		p = nbd_put32(p, cmd->error);
		nbd_put16(p, 0);
		cmd->hdr_len = NBD_CHUNK_HDR_LEN + 6;
		cmd->reply_len = cmd->hdr_len;
	} else if (cmd->type == NBD_CMD_READ) {
		p = nbd_put16(p, NBD_REPLY_TYPE_OFFSET_DATA);
		p = nbd_put64(p, cmd->cookie);
		p = nbd_put32(p, 8 + cmd->length);
		nbd_put64(p, cmd->offset);
		cmd->hdr_len = NBD_CHUNK_HDR_LEN + 8;
		cmd->reply_len = cmd->hdr_len + cmd->length;
	} else {
		p = nbd_put16(p, NBD_REPLY_TYPE_BLOCK_STATUS);
		p = nbd_put64(p, cmd->cookie);
		nbd_put32(p, cmd->extra_len);
		cmd->hdr_len = NBD_CHUNK_HDR_LEN;
		cmd->reply_len = cmd->hdr_len + cmd->extra_len;
	}
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
	if (c->dead) {
		nbd_cmd_free(cmd);
		nbd_conn_mark(c);
		return;
	}
	build_reply(cmd);
	nbd_conn_queue_reply(c, cmd);
}

static int stall(struct nbd_conn *c)
{
	if (!c->stalled) {
		c->stalled = true;
		c->w->nr_stalled++;
	}
	return -EAGAIN;
}

static struct bio *alloc_nodata_bio(struct nbd_conn *c, blk_opf_t opf,
				    uint64_t off, uint32_t size)
{
	struct bio *bio = bio_alloc_bioset(BLK_GFP_NOWAIT, 0, &c->ex->bs);

	if (!bio)
		return NULL;
	bio->bi_opf = opf;
	bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
	bio->bi_iter.bi_size = size;
	bio->bi_queue = &c->ex->be->queue;
	return bio;
}

static void submit_child(struct nbd_cmd *cmd, struct bio *bio)
{
	bio_chain(bio, &cmd->bio);
	submit_bio(bio);
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
	uint64_t end = cmd->offset + cmd->length;
	uint32_t n = 0, last_flags = 0;
	uint8_t *p;
	unsigned int i;

	if (req->status || !req->nr) {
		cmd_fail(cmd, req->status ? nbd_errno(req->status) : NBD_EIO);
		return;
	}
	cmd->extra = malloc(4 + 8 * (size_t)req->nr);
	if (!cmd->extra) {
		cmd_fail(cmd, NBD_ENOMEM);
		return;
	}
	p = nbd_put32(cmd->extra, NBD_META_ID_BASE_ALLOCATION);
	for (i = 0; i < req->nr; i++) {
		const struct backend_extent *e = &req->ext[i];
		uint64_t s = e->offset < cmd->offset ? cmd->offset : e->offset;
		uint64_t t = e->offset + e->length > end ? end : e->offset + e->length;
		uint32_t f = 0;

		if (t <= s)
			continue;
		if (e->flags & BACKEND_EXTENT_HOLE)
			f |= NBD_STATE_HOLE;
		if (e->flags & BACKEND_EXTENT_ZERO)
			f |= NBD_STATE_ZERO;
		/* Neighbours with the same state are one extent to the client. */
		if (n && f == last_flags) {
			uint8_t *prev = p - 8;

			nbd_put32(prev, nbd_get32(prev) + (uint32_t)(t - s));
			continue;
		}
		p = nbd_put32(p, (uint32_t)(t - s));
		p = nbd_put32(p, f);
		last_flags = f;
		n++;
	}
	if (!n) {
		cmd_fail(cmd, NBD_EIO);
		return;
	}
	cmd->extra_len = 4 + 8 * n;
	cmd_start_done(cmd);
}

static void do_block_status(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	unsigned int max = cmd->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : MAX_EXTENTS;
	struct backend_extents_req *req;

	if (!c->structured || !c->meta_alloc) {
		cmd_fail(cmd, NBD_EINVAL);
		return;
	}
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
	cmd->ext = req;
	backend_extents(c->ex->be, req);
}

/* TRIM, WRITE_ZEROES, FLUSH: bios without data, split where needed. */
static void do_nodata(struct nbd_conn *c, struct nbd_cmd *cmd, blk_opf_t opf)
{
	uint64_t off = cmd->offset, left = cmd->length;

	if ((opf & REQ_OP_MASK) == REQ_OP_FLUSH)
		off = left = 0;
	do {
		uint32_t n = left > NODATA_BIO_BYTES ? NODATA_BIO_BYTES : (uint32_t)left;
		struct bio *bio = alloc_nodata_bio(c, opf, off, n);

		/* The reserve makes this rare; the part already sent stands. */
		if (!bio) {
			cmd->error = NBD_ENOMEM;
			break;
		}
		submit_child(cmd, bio);
		off += n;
		left -= n;
	} while (left);
	cmd_start_done(cmd);
}

/* Allocate every page bio of a READ, or none. */
static int do_read(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	uint64_t off = cmd->offset;
	uint32_t left = cmd->length;
	unsigned int i, n = 0;

	while (left) {
		uint32_t size = left > NBD_BIO_BYTES ? NBD_BIO_BYTES : left;
		struct bio *bio = export_alloc_data_bio(c->ex, REQ_OP_READ, off, size);

		if (!bio) {
			for (i = 0; i < n; i++)
				bio_put(cmd->data[i]);
			return -ENOMEM;
		}
		cmd->data[n++] = bio;
		off += size;
		left -= size;
	}
	cmd->nr_data = n;
	for (i = 0; i < n; i++) {
		/* The reply still needs the pages once the bio has ended. */
		bio_get(cmd->data[i]);
		submit_child(cmd, cmd->data[i]);
	}
	cmd_start_done(cmd);
	return 0;
}

/* Check a request against the export; an NBD error, or 0. */
static uint32_t validate(struct nbd_conn *c, struct nbd_cmd *cmd)
{
	const struct export *ex = c->ex;
	uint64_t size = ex->be->size;
	bool write = cmd->type == NBD_CMD_WRITE || cmd->type == NBD_CMD_TRIM ||
		     cmd->type == NBD_CMD_WRITE_ZEROES;
	bool aligned = !((cmd->offset | cmd->length) & (ex->min_block - 1));

	/*
	 * The daemon is stopping: the protocol's way to say so.  A FLUSH
	 * still runs, so a client can make what it wrote durable.
	 */
	if (c->refusing && cmd->type != NBD_CMD_FLUSH)
		return NBD_ESHUTDOWN;
	if (cmd->flags & ~KNOWN_FLAGS)
		return NBD_EINVAL;
	if ((cmd->flags & (NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO)) &&
	    cmd->type != NBD_CMD_WRITE_ZEROES)
		return NBD_EINVAL;
	if (write && ex->be->readonly)
		return NBD_EPERM;
	switch (cmd->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
		if (!cmd->length)
			return NBD_EINVAL;
		if (cmd->length > ex->max_block)
			return cmd->type == NBD_CMD_READ && (cmd->flags & NBD_CMD_FLAG_DF) ?
			       NBD_EOVERFLOW : NBD_EINVAL;
		break;
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		if (!cmd->length)
			return NBD_EINVAL;
		break;
	case NBD_CMD_CACHE:
	case NBD_CMD_BLOCK_STATUS:
		if (!cmd->length)
			return NBD_EINVAL;
		/* Byte granular: no alignment needed. */
		aligned = true;
		break;
	case NBD_CMD_FLUSH:
		return 0;
	default:
		return NBD_EINVAL;
	}
	if (cmd->offset > size || cmd->length > size - cmd->offset)
		return write ? NBD_ENOSPC : NBD_EINVAL;
	if (!aligned)
		return NBD_EINVAL;
	if (cmd->type == NBD_CMD_WRITE_ZEROES) {
		if (!(ex->be->caps & BACKEND_CAP_WRITE_ZEROES))
			return NBD_ENOTSUP;
		if ((cmd->flags & NBD_CMD_FLAG_FAST_ZERO) &&
		    !(ex->be->caps & BACKEND_CAP_FAST_ZERO))
			return NBD_ENOTSUP;
	}
	return 0;
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
	submit_child(c->wcmd, bio);
}

/* Move the WRITE's payload from rbuf into its page bios. 1 done, 0 more, -EAGAIN. */
static int fill_write(struct nbd_conn *c)
{
	struct nbd_cmd *cmd = c->wcmd;

	while (c->wleft) {
		struct bvec_iter src_iter;
		uint32_t n;

		if (!c->wbio) {
			uint32_t size = c->wleft > NBD_BIO_BYTES ? NBD_BIO_BYTES : c->wleft;
			blk_opf_t opf = REQ_OP_WRITE;

			if (cmd->flags & NBD_CMD_FLAG_FUA)
				opf |= REQ_FUA;
			c->wbio = export_alloc_data_bio(c->ex, opf, c->wnext, size);
			if (!c->wbio)
				return stall(c);
			c->wfill = c->wbio->bi_iter;
		}
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

int nbd_cmd_recv_payload(struct nbd_conn *c)
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
	r = readv(c->fd, iov, (int)n);
	if (r <= 0)
		return (int)r;
	k = (size_t)r < c->wfill.bi_size ? (uint32_t)r : c->wfill.bi_size;
	bvec_iter_advance(c->wbio->bi_io_vec, &c->wfill, k);
	c->wleft -= k;
	c->rlen += (uint32_t)(r - k);
	if (!c->wfill.bi_size)
		submit_write_bio(c);
	return (int)r;
}

void nbd_cmd_abort_write(struct nbd_conn *c)
{
	struct nbd_cmd *cmd = c->wcmd;

	if (c->skip_cmd) {
		cmd = c->skip_cmd;
		c->skip_cmd = NULL;
		c->wskip = 0;
		cmd_start_done(cmd);
		cmd = c->wcmd;
	}

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

/* Start one parsed request. 0, -EAGAIN (not consumed), or <0 to hang up. */
static int start_cmd(struct nbd_conn *c, const uint8_t *h)
{
	uint16_t flags = nbd_get16(h + 4), type = nbd_get16(h + 6);
	uint64_t cookie = nbd_get64(h + 8), offset = nbd_get64(h + 16);
	uint32_t length = nbd_get32(h + 24), err;
	struct nbd_cmd *cmd;
	struct bio *bio;

	if (type == NBD_CMD_DISC) {
		c->rpos += NBD_REQUEST_LEN;
		c->why = "client disconnected";
		c->closing = true;
		return -EAGAIN;
	}
	if (type == NBD_CMD_WRITE && length > MAX_SKIP_PAYLOAD) {
		c->why = "impossible write length";
		return -EPROTO;
	}
	bio = bio_alloc_bioset(BLK_GFP_NOWAIT, 0, &c->ex->bs);
	if (!bio)
		return stall(c);
	cmd = bio_pad_obj(bio, struct nbd_cmd, bio);
	memset(cmd, 0, offsetof(struct nbd_cmd, bio));
	cmd->conn = c;
	cmd->cookie = cookie;
	cmd->offset = offset;
	cmd->length = length;
	cmd->type = type;
	cmd->flags = flags;
	bio->bi_end_io = cmd_endio;
	c->nr_cmds++;
	c->nr_active++;

	if (type == NBD_CMD_READ || type == NBD_CMD_WRITE) {
		cmd->charge = length;
		c->held_bytes += length;
	}
	err = validate(c, cmd);
	if (!err && type == NBD_CMD_READ) {
		if (do_read(c, cmd)) {
			/* Not consumed: the same request is tried again later. */
			c->nr_active--;
			nbd_cmd_free(cmd);
			return stall(c);
		}
	}
	c->rpos += NBD_REQUEST_LEN;
	c->nr_requests++;
	cmd->t_start = stats_now();
	stats_start(&c->ex->stats);
	if (err) {
		/*
		 * A refused WRITE's payload still follows: skip it, and answer
		 * only after it, as clients expect no reply to a request
		 * they are still sending.
		 */
		if (type == NBD_CMD_WRITE && length) {
			c->wskip = length;
			cmd->error = err;
			c->skip_cmd = cmd;
			return 0;
		}
		cmd_fail(cmd, err);
		return 0;
	}
	switch (type) {
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
	return 0;
}

int nbd_cmd_process(struct nbd_conn *c)
{
	int ret;

	for (;;) {
		if (c->wcmd) {
			ret = fill_write(c);
			if (ret <= 0)
				return ret;
			continue;
		}
		if (c->wskip) {
			uint32_t n = c->rlen - c->rpos;

			if (n > c->wskip)
				n = c->wskip;
			c->rpos += n;
			c->wskip -= n;
			if (c->wskip)
				return 0;
			if (c->skip_cmd) {
				struct nbd_cmd *cmd = c->skip_cmd;

				c->skip_cmd = NULL;
				cmd_start_done(cmd);
			}
			continue;
		}
		if (c->closing || c->dead)
			return -EAGAIN;
		if (c->rlen - c->rpos < NBD_REQUEST_LEN)
			return 0;
		if (c->nr_cmds && (c->nr_cmds >= MAX_CMDS ||
				   c->held_bytes >= conn_cap(c))) {
			c->throttled = true;
			return -EAGAIN;
		}
		if (nbd_get32(c->rbuf + c->rpos) != NBD_REQUEST_MAGIC) {
			c->why = "bad request magic";
			return -EPROTO;
		}
		ret = start_cmd(c, c->rbuf + c->rpos);
		if (ret)
			return ret;
	}
}
