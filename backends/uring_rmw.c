/* SPDX-License-Identifier: MIT */
/*
 * The io_uring engine's unaligned and zeroing I/O: the block-range lock,
 * bounce buffers, and writing zeros where the filesystem or device cannot
 * zero a range by itself.
 *
 * Under O_DIRECT a request whose offset, length or memory is not aligned
 * to the device's block (f->lbs) goes through bounce pages from the page
 * allocator; an unaligned write first reads its edge blocks
 * (read-modify-write; the arithmetic is bounce.c's).  Two RMWs of one
 * block, or an RMW and a trim or zeroing of other sectors in it, would
 * lose data if they overlapped in time, even from different loops.  So on
 * such devices every write-type request takes the device's block range
 * lock (core/range_lock.h): exclusive for an RMW, shared for plain
 * writes, trims and zeroing.  A waiter is granted on the thread that
 * releases its range and resumed on its own loop with ioloop_post().
 *
 * Bounce pages are taken before the range lock, so nothing that holds the
 * lock ever waits for memory and every holder completes by itself.  The
 * exception, an edge block of zeros written because the filesystem could
 * not zero the range, is rare: it tries once and fails with -ENOMEM.
 */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "backends/bounce.h"
#include "backends/uring.h"
#include "core/compiler.h"
#include "core/page.h"

static const char zero_buf[URING_ZERO_BUF_SIZE] __attribute__((aligned(4096)));

/* A waiter was granted, on the releasing thread: go on on its own loop. */
static void range_granted(struct range_lock *rl)
{
	struct uring_io *io = container_of(rl, struct uring_io, rl);

	ioloop_post(io->ul->loop, &io->work);
}

bool uring_range_lock(struct uring_io *io)
{
	struct uring_dev *d = io_dev(io);
	uint64_t align = d->mask + 1;
	/* A trim never rewrites a block; unaligned zeroing might. */
	bool rmw = ((io->off | io->end) & d->mask) &&
		   req_op(io->rq) != REQ_OP_DISCARD;

	io->locked = true;
	return range_lock_try(&d->ranges, &io->rl,
			      align_down(io->off, align),
			      align_up(io->end, align), rmw, range_granted);
}

void uring_range_unlock(struct uring_io *io)
{
	io->locked = false;
	range_unlock(&io_dev(io)->ranges, &io->rl);
}

/* Bytes of bounce a READ or WRITE needs, setting bstart and bend; 0 for none. */
static uint64_t bounce_size(struct uring_io *io)
{
	struct uring_dev *d = io_dev(io);
	struct request *rq = io->rq;

	if (!d->f.direct || !rq->bytes || !op_has_data(req_op(rq)))
		return 0;
	if (bounce_rq_aligned(rq, d->mask + 1))
		return 0;
	io->bstart = align_down(io->off, d->mask + 1);
	io->bend = align_up(io->end, d->mask + 1);
	return io->bend - io->bstart;
}

int uring_bounce_retry(struct uring_io *io)
{
	struct pgalloc *pa = io_dev(io)->pages;
	void *p;

	if (!pa || page_alloc_contig(pa, io->bounce_pages, BLK_GFP_NOWAIT, &p))
		return -ENOMEM;
	io->bounce_pa = pa;
	io->bounce = p;
	return 0;
}

int uring_bounce_get(struct uring_io *io)
{
	struct uring_loop *ul = io->ul;
	uint64_t size = bounce_size(io);

	if (!size)
		return 0;
	io->bounce_pages = (unsigned int)DIV_ROUND_UP(size, PAGE_SIZE);
	if (!uring_bounce_retry(io))
		return 0;
	/* Only a completion on this loop retries: is one coming? */
	if (ul->nr_active - ul->nr_memwait <= 1)
		return -ENOMEM;
	io->next = NULL;
	if (ul->memwait_tail)
		ul->memwait_tail->next = io;
	else
		ul->memwait_head = io;
	ul->memwait_tail = io;
	ul->nr_memwait++;
	return -EINPROGRESS;
}

void uring_bounce_put(struct uring_io *io)
{
	if (!io->bounce)
		return;
	page_free_contig(io->bounce_pa, io->bounce, io->bounce_pages);
	io->bounce = NULL;
}

int uring_bdev_zeroes(struct uring_io *io)
{
	struct uring_dev *d = io_dev(io);
	uint64_t lbs = d->f.lbs;
	uint64_t s = (io->off + lbs - 1) & ~(lbs - 1), e = io->end & ~(lbs - 1);
	int ret;

	io->step = ST_ZERO;
	io->zpos = io->off;
	io->zend = io->end;
	if (s >= e)
		return 1;
	ret = file_dev_zero_range(&d->f, s, e - s,
				  !(io->rq->cmd_flags & REQ_NOUNMAP));
	if (ret == -EOPNOTSUPP)
		return 1;	/* write it all */
	if (ret)
		return ret;
	io->zend = s;
	io->z2pos = e;
	io->z2end = io->end;
	return 1;
}

int uring_step_zero(struct uring_io *io)
{
	struct uring_dev *d = io_dev(io);
	uint64_t pos, len, left;
	unsigned int n;

	if (io->zpos >= io->zend) {
		if (io->z2pos >= io->z2end) {
			io->step = ST_POSTFLUSH;
			return 1;
		}
		io->zpos = io->z2pos;
		io->zend = io->z2end;
		io->z2pos = io->z2end = 0;
	}
	pos = io->zpos;
	if ((pos & d->mask) || io->zend - pos <= d->mask) {
		/* Part of a block under O_DIRECT: read it, zero, write. */
		if (!io->bounce) {
			io->bounce_pages =
				(unsigned int)DIV_ROUND_UP(d->mask + 1, PAGE_SIZE);
			if (uring_bounce_retry(io))
				return -ENOMEM;
		}
		io->bstart = pos & ~d->mask;
		io->bend = io->bstart + d->mask + 1;
		io->step = ST_ZERO_EDGE;
		uring_xfer_bounce(io, false, io->bstart, io->bend, 0);
		return 0;
	}
	len = min_t(uint64_t, io->zend - pos,
		    (uint64_t)URING_ZERO_IOVS * URING_ZERO_BUF_SIZE);
	len &= ~d->mask;
	for (n = 0, left = len; left; n++) {
		/* The kernel only reads it. */
		io->ziov[n].iov_base = (void *)zero_buf;
		io->ziov[n].iov_len = min_t(uint64_t, left, URING_ZERO_BUF_SIZE);
		left -= io->ziov[n].iov_len;
	}
	io->zpos += len;
	uring_xfer_start(io, true, io->ziov, n, pos, 0, false);
	return 0;
}

int uring_step_zero_edge(struct uring_io *io)
{
	uint64_t end = min_t(uint64_t, io->zend, io->bend);

	memset(io->bounce + (io->zpos - io->bstart), 0, end - io->zpos);
	io->zpos = end;
	io->step = ST_ZERO;
	uring_xfer_bounce(io, true, io->bstart, io->bend, 0);
	return 0;
}
