/* SPDX-License-Identifier: MIT */
/*
 * io_uring engine for "file:" specs: regular files and block devices.
 *
 * Requests are started on the ring of the loop that calls queue_rq() and
 * complete on it; the loop submits every SQE prepared during an iteration
 * with one io_uring_enter, so nothing here submits.
 *
 * Per (backend, loop) there is a struct uring_loop, touched only by that
 * loop's thread: at most queue_depth requests are active on it (each has
 * at most one SQE in flight), later ones wait, FIFO, on its pending list.
 * Each active request has a struct uring_io from the uring_loop's free
 * list; they are allocated on demand, at most queue_depth of them, and
 * live until close.
 *
 * cache=none (O_DIRECT): requests not aligned to the device's O_DIRECT
 * block go through bounce buffers, unaligned writes by read-modify-write
 * under a block-range lock: see uring_rmw.c.
 *
 * Fixed files: the fd is registered in each loop's table on first use.
 * A loop's table can only be changed from its own thread, so close()
 * unregisters it only from the calling thread's loop; other loops keep a
 * reference to the closed file until they are destroyed.  The stale slot
 * is keyed by the old fd number, which a later open may reuse: so the
 * first use of a backend on a loop forgets whatever that loop had
 * registered under our fd number before registering our file.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/bounce.h"
#include "backends/uring.h"
#include "core/compiler.h"
#include "core/kmem.h"

#ifndef IOV_MAX
#define IOV_MAX		1024
#endif

#define URING_DEFAULT_DEPTH	128
#define URING_MAX_BYTES		(1u << 20)
/* Both edges of an unaligned write within this: one read covers them. */
#define RMW_WHOLE_READ		(64u * 1024)

static void io_run(struct uring_io *io);
static void ul_kick(struct uring_loop *ul);

static void io_resume(struct ioloop_work *w)
{
	io_run(container_of(w, struct uring_io, work));
}

/* Submission.                                                          */

static void set_file(struct uring_io *io, struct io_uring_sqe *sqe)
{
	int idx = ioloop_fixed_file(io->ul->loop, io_dev(io)->f.fd);

	if (idx >= 0) {
		sqe->fd = idx;
		sqe->flags |= IOSQE_FIXED_FILE;
	}
}

static void xfer_issue(struct uring_io *io)
{
	struct ioloop *loop = io->ul->loop;
	struct io_uring_sqe *sqe = ioloop_get_sqe(loop, &io->op);
	int fd = io_dev(io)->f.fd;

	io->wait = W_XFER;
	if (io->xnr == 1) {
		void *base = io->xiov->iov_base;
		unsigned int len = (unsigned int)io->xiov->iov_len;
		int buf = ioloop_fixed_buffer(loop, base, len);

		if (buf >= 0 && io->xwrite)
			io_uring_prep_write_fixed(sqe, fd, base, len, io->xpos, buf);
		else if (buf >= 0)
			io_uring_prep_read_fixed(sqe, fd, base, len, io->xpos, buf);
		else if (io->xwrite)
			io_uring_prep_write(sqe, fd, base, len, io->xpos);
		else
			io_uring_prep_read(sqe, fd, base, len, io->xpos);
	} else if (io->xwrite) {
		io_uring_prep_writev(sqe, fd, io->xiov, io->xnr, io->xpos);
	} else {
		io_uring_prep_readv(sqe, fd, io->xiov, io->xnr, io->xpos);
	}
	sqe->rw_flags = io->xflags;
	set_file(io, sqe);
}

void uring_xfer_start(struct uring_io *io, bool write, struct iovec *iov,
		      unsigned int nr, uint64_t pos, int flags, bool count)
{
	io->xwrite = write;
	io->xiov = iov;
	io->xnr = nr;
	io->xpos = pos;
	io->xflags = flags;
	io->xcount = count;
	xfer_issue(io);
}

void uring_xfer_bounce(struct uring_io *io, bool write, uint64_t from,
		       uint64_t to, int flags)
{
	io->one.iov_base = io->bounce + (from - io->bstart);
	io->one.iov_len = to - from;
	uring_xfer_start(io, write, &io->one, 1, from, flags, false);
}

/* A read found the end of the file: the rest reads as zeros. */
static void xfer_zero_rest(struct uring_io *io)
{
	for (; io->xnr; io->xnr--, io->xiov++) {
		memset(io->xiov->iov_base, 0, io->xiov->iov_len);
		if (io->xcount)
			io->done += io->xiov->iov_len;
	}
}

/* A transfer's CQE: 1 if resubmitted, 0 when complete, or -errno. */
static int xfer_done(struct uring_io *io, int res)
{
	size_t n;

	if (res == -EAGAIN || res == -EINTR) {
		xfer_issue(io);
		return 1;
	}
	if (res < 0)
		return res;
	if (!res) {
		/* A write that moves nothing would loop forever. */
		if (io->xwrite)
			return -EIO;
		/* The file is shorter than the export (truncated under us). */
		xfer_zero_rest(io);
		return 0;
	}
	n = (size_t)res;
	io->xpos += n;
	if (io->xcount)
		io->done += n;
	while (n && io->xnr) {
		if (n < io->xiov->iov_len) {
			io->xiov->iov_base = (char *)io->xiov->iov_base + n;
			io->xiov->iov_len -= n;
			break;
		}
		n -= io->xiov->iov_len;
		io->xiov++;
		io->xnr--;
	}
	if (!io->xnr)
		return 0;
	/* A short O_DIRECT read at an unaligned place is the end of file. */
	if (!io->xwrite && (io->xpos & io_dev(io)->mask)) {
		xfer_zero_rest(io);
		return 0;
	}
	xfer_issue(io);
	return 1;
}

static void issue_fsync(struct uring_io *io)
{
	struct io_uring_sqe *sqe = ioloop_get_sqe(io->ul->loop, &io->op);

	io->wait = W_FSYNC;
	io_uring_prep_fsync(sqe, io_dev(io)->f.fd, IORING_FSYNC_DATASYNC);
	set_file(io, sqe);
}

static void issue_falloc(struct uring_io *io)
{
	struct io_uring_sqe *sqe = ioloop_get_sqe(io->ul->loop, &io->op);

	io->wait = W_FALLOC;
	io_uring_prep_fallocate(sqe, io_dev(io)->f.fd, io->falloc_mode,
				(off_t)io->off, (off_t)(io->end - io->off));
	set_file(io, sqe);
}

/* Completion.                                                          */

static void io_put(struct uring_loop *ul, struct uring_io *io)
{
	io->next = ul->free;
	ul->free = io;
	ul->nr_active--;
}

/* End @io's request; @io is free (and maybe reused) on return. */
static void io_finish(struct uring_io *io, int status)
{
	struct uring_loop *ul = io->ul;
	struct request *rq = io->rq;
	uint64_t done = io->done;

	if (io->locked)
		uring_range_unlock(io);
	uring_bounce_put(io);
	io_put(ul, io);
	if (status && done)
		blk_end_request_partial(rq, done, status);
	else
		blk_end_request(rq, status);
	ul_kick(ul);
}

/* fallocate's answer; -EOPNOTSUPP falls back as the op allows. */
static int falloc_done(struct uring_io *io, int res)
{
	if (res == -EAGAIN || res == -EINTR) {
		issue_falloc(io);
		return 1;
	}
	if (res != -EOPNOTSUPP && res != -ENOSYS)
		return res;
	/* A trim is a hint: keeping the data is a valid answer. */
	if (req_op(io->rq) == REQ_OP_DISCARD)
		return 0;
	if (io->falloc_mode & FALLOC_FL_PUNCH_HOLE) {
		io->falloc_mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		issue_falloc(io);
		return 1;
	}
	io->zpos = io->off;
	io->zend = io->end;
	io->step = ST_ZERO;
	return 0;
}

static void io_cqe(struct ioloop_op *op, int res, unsigned int flags)
{
	struct uring_io *io = container_of(op, struct uring_io, op);
	int ret;

	(void)flags;
	switch (io->wait) {
	case W_XFER:
		ret = xfer_done(io, res);
		break;
	case W_FSYNC:
		ret = res;
		if (res == -EAGAIN || res == -EINTR) {
			issue_fsync(io);
			ret = 1;
		}
		break;
	default:
		ret = falloc_done(io, res);
		break;
	}
	if (ret > 0)
		return;
	if (ret < 0) {
		io_finish(io, ret);
		return;
	}
	io_run(io);
}

/* The state machine.                                                   */

static int fua_flags(const struct request *rq)
{
	return rq->cmd_flags & REQ_FUA ? RWF_DSYNC : 0;
}

/* Returns 1 to go on with io->step, 0 when waiting, or -errno. */
static int step_discard(struct uring_io *io)
{
	struct uring_dev *d = io_dev(io);
	uint64_t s, e;
	int ret;

	io->step = ST_POSTFLUSH;
	if (!d->f.bdev) {
		io->falloc_mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		issue_falloc(io);
		return 0;
	}
	/* BLKDISCARD takes whole logical blocks; a trim may do less. */
	s = (io->off + d->f.lbs - 1) & ~(uint64_t)(d->f.lbs - 1);
	e = io->end & ~(uint64_t)(d->f.lbs - 1);
	if (s >= e)
		return 1;
	ret = file_dev_discard(&d->f, s, e - s);
	return ret == -EOPNOTSUPP ? 1 : ret ? ret : 1;
}

static int step_write_zeroes(struct uring_io *io)
{
	bool unmap = !(io->rq->cmd_flags & REQ_NOUNMAP);

	if (io_dev(io)->f.bdev)
		return uring_bdev_zeroes(io);
	io->step = ST_POSTFLUSH;
	io->falloc_mode = (unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) |
			  FALLOC_FL_KEEP_SIZE;
	issue_falloc(io);
	return 0;
}

/* An unaligned write: read its first block, or all of a small range. */
static int step_rmw_head(struct uring_io *io)
{
	uint64_t align = io_dev(io)->mask + 1;
	struct bounce_edges e = bounce_edges(io->bstart, io->bend, io->off,
					     io->end, align);

	io->step = ST_RMW_TAIL;
	io->head_end = io->bstart;
	if (!e.head)
		return 1;
	io->head_end = io->bstart + align;
	if (e.tail && io->bend - io->bstart <= RMW_WHOLE_READ)
		io->head_end = io->bend;
	uring_xfer_bounce(io, false, io->bstart, io->head_end, 0);
	return 0;
}

static int step_body(struct uring_io *io)
{
	struct request *rq = io->rq;

	if (!rq->bytes && req_op(rq) != REQ_OP_FLUSH) {
		io->step = ST_POSTFLUSH;
		return 1;
	}
	switch (req_op(rq)) {
	case REQ_OP_READ:
		if (io->bounce) {
			io->step = ST_COPYOUT;
			uring_xfer_bounce(io, false, io->bstart, io->bend, 0);
		} else {
			io->step = ST_DONE;
			uring_xfer_start(io, false, rq->iov, rq->nr_segs, io->off,
					 0, true);
		}
		return 0;
	case REQ_OP_WRITE:
		if (!io->bounce) {
			io->step = ST_DONE;
			uring_xfer_start(io, true, rq->iov, rq->nr_segs, io->off,
					 fua_flags(rq), true);
			return 0;
		}
		return step_rmw_head(io);
	case REQ_OP_DISCARD:
		return step_discard(io);
	case REQ_OP_WRITE_ZEROES:
		return step_write_zeroes(io);
	default:
		return -EOPNOTSUPP;
	}
}

static int step(struct uring_io *io)
{
	struct uring_dev *d = io_dev(io);
	struct request *rq = io->rq;
	enum req_op op = req_op(rq);
	struct bounce_iter it;
	uint64_t tail;
	int ret;

	switch (io->step) {
	case ST_PREFLUSH:
		io->step = op == REQ_OP_FLUSH ? ST_DONE : ST_ALLOC;
		issue_fsync(io);
		return 0;
	case ST_ALLOC:
		io->step = ST_LOCK;
		ret = uring_bounce_get(io);
		if (ret == -EINPROGRESS)
			return 0;
		return ret ? ret : 1;
	case ST_LOCK:
		io->step = ST_BODY;
		if (d->track && op_is_write(op) && !uring_range_lock(io))
			return 0;
		return 1;
	case ST_BODY:
		return step_body(io);
	case ST_RMW_TAIL:
		io->step = ST_RMW_WRITE;
		tail = io->bend - d->mask - 1;
		if (!bounce_edges(io->bstart, io->bend, io->off, io->end,
				  d->mask + 1).tail || io->head_end == io->bend)
			return 1;
		uring_xfer_bounce(io, false, tail, io->bend, 0);
		return 0;
	case ST_RMW_WRITE:
		bounce_iter_init(&it, rq->iov, rq->nr_segs);
		bounce_copy_in(&it, io->bounce + (io->off - io->bstart), rq->bytes);
		io->step = ST_DONE;
		uring_xfer_bounce(io, true, io->bstart, io->bend, fua_flags(rq));
		return 0;
	case ST_COPYOUT:
		bounce_iter_init(&it, rq->iov, rq->nr_segs);
		bounce_copy_out(&it, io->bounce + (io->off - io->bstart), rq->bytes);
		io->step = ST_DONE;
		return 1;
	case ST_ZERO:
		return uring_step_zero(io);
	case ST_ZERO_EDGE:
		return uring_step_zero_edge(io);
	case ST_POSTFLUSH:
		io->step = ST_DONE;
		/* Writes carry RWF_DSYNC; the rest are made durable here. */
		if (!(rq->cmd_flags & REQ_FUA) || op == REQ_OP_WRITE || !op_is_write(op))
			return 1;
		issue_fsync(io);
		return 0;
	default:
		return -EIO;
	}
}

static void io_run(struct uring_io *io)
{
	int ret;

	while (io->step != ST_DONE) {
		ret = step(io);
		if (!ret)
			return;
		if (ret < 0) {
			io_finish(io, ret);
			return;
		}
	}
	io_finish(io, 0);
}

static void io_start(struct uring_io *io, struct request *rq)
{
	rq->driver_data = io;
	io->rq = rq;
	io->off = blk_rq_pos_bytes(rq);
	io->end = io->off + rq->bytes;
	io->done = 0;
	io->bounce = NULL;
	io->locked = false;
	io->z2pos = io->z2end = 0;
	io->step = op_is_write(req_op(rq)) && (rq->cmd_flags & REQ_PREFLUSH) ?
		   ST_PREFLUSH : ST_ALLOC;
	if (req_op(rq) == REQ_OP_FLUSH)
		io->step = ST_PREFLUSH;
	io_run(io);
}

/* Per-loop state and admission.                                        */

static struct uring_io *io_get(struct uring_loop *ul)
{
	struct uring_io *io = ul->free;

	if (io) {
		ul->free = io->next;
		return io;
	}
	if (ul->nr_alloc >= ul->d->depth)
		return NULL;
	io = kzalloc(sizeof(*io), BLK_GFP_NOWAIT);
	if (!io)
		return NULL;
	io->ul = ul;
	io->op.cb = io_cqe;
	io->work.fn = io_resume;
	ul->nr_alloc++;
	return io;
}

static struct request *pending_pop(struct uring_loop *ul)
{
	struct request *rq = ul->pending_head;

	ul->pending_head = rq->driver_data;
	if (!ul->pending_head)
		ul->pending_tail = NULL;
	rq->driver_data = NULL;
	return rq;
}

/*
 * Retry what waits for memory, admit pending requests while there is
 * depth, and fail memory waiters nothing here can help.  Requests ending
 * inline re-enter through queue_rq() or io_finish(): they only ask for
 * another round.
 */
static void ul_kick(struct uring_loop *ul)
{
	struct uring_io *io;

	if (ul->kicking) {
		ul->kick_again = true;
		return;
	}
	ul->kicking = true;
	do {
		ul->kick_again = false;
		while ((io = ul->memwait_head) && !uring_bounce_retry(io)) {
			ul->memwait_head = io->next;
			if (!ul->memwait_head)
				ul->memwait_tail = NULL;
			ul->nr_memwait--;
			io_run(io);
		}
		while (ul->pending_head && ul->nr_active < ul->d->depth) {
			io = io_get(ul);
			if (!io && ul->nr_active)
				break;	/* a completion comes back here */
			if (!io) {
				blk_end_request(pending_pop(ul), -ENOMEM);
				continue;
			}
			ul->nr_active++;
			io_start(io, pending_pop(ul));
		}
		if (ul->nr_memwait && ul->nr_memwait == ul->nr_active) {
			while ((io = ul->memwait_head)) {
				ul->memwait_head = io->next;
				if (!ul->memwait_head)
					ul->memwait_tail = NULL;
				ul->nr_memwait--;
				io_finish(io, -ENOMEM);
			}
		}
	} while (ul->kick_again);
	ul->kicking = false;
}

/* The calling loop's state for @d, made on first use. */
static struct uring_loop *loop_state(struct uring_dev *d, struct ioloop *loop)
{
	struct uring_loop *ul, *old;

	old = atomic_load_explicit(&d->loops, memory_order_acquire);
	for (ul = old; ul; ul = ul->next)
		if (ul->loop == loop)
			return ul;
	ul = kzalloc(sizeof(*ul), BLK_GFP_NOWAIT);
	if (!ul)
		return NULL;
	ul->d = d;
	ul->loop = loop;
	/* A closed file registered under our fd number must not get our I/O. */
	ioloop_forget_file(loop, d->f.fd);
	do {
		ul->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&d->loops, &old, ul,
							memory_order_release,
							memory_order_acquire));
	return ul;
}

/* Backend operations.                                                  */

static void uring_queue_rq(struct backend *be, struct request *rq)
{
	struct uring_dev *d = be->priv;
	struct ioloop *loop = ioloop_current();
	struct uring_loop *ul;

	/* The sync engine serves submitters without an io_uring loop. */
	if (!loop || !ioloop_has_uring(loop)) {
		blk_end_request(rq, -EOPNOTSUPP);
		return;
	}
	ul = loop_state(d, loop);
	if (!ul) {
		blk_end_request(rq, -ENOMEM);
		return;
	}
	rq->driver_data = NULL;
	if (ul->pending_tail)
		ul->pending_tail->driver_data = rq;
	else
		ul->pending_head = rq;
	ul->pending_tail = rq;
	ul_kick(ul);
}

static void uring_extents(struct backend *be, struct backend_extents_req *req)
{
	struct uring_dev *d = be->priv;

	req->status = file_dev_extents(&d->f, req);
	req->done(req);
}

static int uring_open(struct backend *be, const struct backend_params *p,
		      char *err, size_t errlen)
{
	struct queue_limits lim;
	struct uring_dev *d;
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = file_dev_open(&d->f, p, err, errlen);
	if (ret) {
		free(d);
		return ret;
	}
	/* A partial last block could not be written with O_DIRECT. */
	d->f.size &= ~(uint64_t)(d->f.lbs - 1);
	if (!d->f.size) {
		snprintf(err, errlen, "%s is smaller than one %u-byte block",
			 p->target, d->f.lbs);
		ret = -EINVAL;
		goto fail;
	}
	file_dev_describe(&d->f, be);
	d->depth = p->queue_depth ? p->queue_depth : URING_DEFAULT_DEPTH;
	d->mask = d->f.direct ? d->f.lbs - 1 : 0;
	d->pages = be->pages;
	/* Requests are whole sectors: only a larger block needs RMW. */
	d->track = d->f.direct && d->f.lbs > SECTOR_SIZE;
	range_lock_tree_init(&d->ranges);

	lim.max_segments = IOV_MAX;
	lim.max_bytes = URING_MAX_BYTES;
	lim.logical_block_size = d->f.lbs;
	lim.physical_block_size = d->f.pbs;
	ret = backend_init_queue(be, &lim);
	if (ret) {
		snprintf(err, errlen, "cannot set up the queue: %s", strerror(-ret));
		range_lock_tree_destroy(&d->ranges);
		goto fail;
	}
	be->priv = d;
	be->engine = "io_uring";
	return 0;
fail:
	file_dev_close(&d->f);
	free(d);
	return ret;
}

static void uring_close(struct backend *be)
{
	struct uring_dev *d = be->priv;
	struct ioloop *cur = ioloop_current();
	struct uring_loop *ul, *next;
	struct uring_io *io;

	for (ul = atomic_load(&d->loops); ul; ul = next) {
		next = ul->next;
		BUG_ON(ul->nr_active || ul->pending_head);
		/* Other loops' tables are theirs: see the top of the file. */
		if (ul->loop == cur)
			ioloop_forget_file(cur, d->f.fd);
		while ((io = ul->free)) {
			ul->free = io->next;
			kfree(io);
		}
		kfree(ul);
	}
	blk_queue_exit(&be->queue);
	file_dev_close(&d->f);
	range_lock_tree_destroy(&d->ranges);
	free(d);
}

const struct backend_ops backend_uring_ops = {
	.name = "io_uring",
	.open = uring_open,
	.close = uring_close,
	.queue_rq = uring_queue_rq,
	.extents = uring_extents,
};
