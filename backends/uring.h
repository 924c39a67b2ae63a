/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_BACKENDS_URING_H
#define BLOCKD_BACKENDS_URING_H

/*
 * The io_uring engine's insides, shared by uring.c (admission, the state
 * machine, transfers, the backend ops) and uring_rmw.c (what unaligned
 * and zeroing I/O need: the range lock, bounce buffers, writing zeros).
 * Nothing outside those two files includes this.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backends/file.h"
#include "core/ioloop.h"
#include "core/range_lock.h"
#include "core/request.h"

#define URING_ZERO_BUF_SIZE	(64u * 1024)
#define URING_ZERO_IOVS		16	/* 1 MiB of zeros per write */

struct uring_loop;

struct uring_dev {
	struct file_dev f;
	unsigned int depth;
	uint64_t mask;			/* O_DIRECT alignment - 1, or 0 */
	bool track;			/* RMW is possible: lock ranges */
	struct pgalloc *pages;		/* bounce buffers; may be NULL */
	_Atomic(struct uring_loop *) loops;
	struct range_lock_tree ranges;	/* write-type requests, when track */
};

struct uring_io;

/* One loop's view of one device; only that loop's thread touches it. */
struct uring_loop {
	struct uring_loop *next;	/* immutable once published */
	struct uring_dev *d;
	struct ioloop *loop;
	unsigned int nr_alloc;		/* uring_ios allocated */
	unsigned int nr_active;		/* requests holding a uring_io */
	unsigned int nr_memwait;	/* of those, waiting for bounce pages */
	struct uring_io *free;
	struct uring_io *memwait_head, *memwait_tail;
	struct request *pending_head, *pending_tail;	/* via driver_data */
	bool kicking, kick_again;
};

enum io_step {
	ST_PREFLUSH,	/* fsync before a REQ_PREFLUSH request, or a FLUSH */
	ST_ALLOC,	/* bounce pages for unaligned direct I/O */
	ST_LOCK,	/* the range lock */
	ST_BODY,	/* the operation itself */
	ST_RMW_TAIL,	/* unaligned write: read its last block */
	ST_RMW_WRITE,	/* merge the data into the bounce and write it */
	ST_COPYOUT,	/* bounced read: copy out */
	ST_ZERO,	/* write zeros, piece by piece */
	ST_ZERO_EDGE,	/* a partial block of that has been read */
	ST_POSTFLUSH,	/* fsync after a FUA discard or write-zeroes */
	ST_DONE,
};

enum io_wait { W_XFER, W_FSYNC, W_FALLOC };

/* An active request's state. */
struct uring_io {
	struct ioloop_op op;
	struct ioloop_work work;	/* resumes after the range lock */
	struct uring_io *next;		/* free or memwait list */
	struct uring_loop *ul;
	struct request *rq;
	enum io_step step;
	enum io_wait wait;
	uint64_t off, end;		/* the request, bytes */
	uint64_t done;			/* bytes of the request's memory moved */

	/* The transfer in progress; its iovecs advance on short I/O. */
	struct iovec *xiov;
	unsigned int xnr;
	uint64_t xpos;
	int xflags;
	bool xwrite, xcount;
	struct iovec one;

	struct pgalloc *bounce_pa;
	char *bounce;
	unsigned int bounce_pages;
	uint64_t bstart, bend;		/* device range the bounce holds */
	uint64_t head_end;		/* RMW: read up to here from bstart */

	int falloc_mode;
	uint64_t zpos, zend, z2pos, z2end;	/* zeros still to write */
	struct iovec ziov[URING_ZERO_IOVS];

	struct range_lock rl;		/* its blocks, exclusive for an RMW */
	bool locked;
};

/**
 * io_dev - the device @io's request is for
 * @io: an active request's state
 *
 * Return: the device.
 */
static inline struct uring_dev *io_dev(const struct uring_io *io)
{
	return io->ul->d;
}

/* uring.c */

/**
 * uring_xfer_start - start moving data for @io
 * @io: the request's state
 * @write: a write, else a read
 * @iov: the iovecs; advanced in place on short transfers
 * @nr: how many
 * @pos: the device offset
 * @flags: rw_flags for the SQE (RWF_DSYNC for FUA)
 * @count: the iovecs are the request's own, so what is moved counts
 *	towards a partial completion
 *
 * Reads and short transfers included, the CQE handler then goes on with
 * io->step.
 */
void uring_xfer_start(struct uring_io *io, bool write, struct iovec *iov,
		      unsigned int nr, uint64_t pos, int flags, bool count);

/**
 * uring_xfer_bounce - move the bounce buffer's bytes for a device range
 * @io: the request's state, holding a bounce for [io->bstart, io->bend)
 * @write: a write, else a read
 * @from: the range's first byte
 * @to: the byte after its last
 * @flags: rw_flags for the SQE
 */
void uring_xfer_bounce(struct uring_io *io, bool write, uint64_t from,
		       uint64_t to, int flags);

/* uring_rmw.c */

/**
 * uring_range_lock - list @io's blocks in the device's range lock
 * @io: a write-type request's state
 *
 * Exclusive for a read-modify-write, shared for the rest (a trim is never
 * exclusive).
 *
 * Return: true if it holds them now; false if it waits, and io->work is
 * posted to its loop once it holds them.
 */
bool uring_range_lock(struct uring_io *io);

/**
 * uring_range_unlock - unlist @io's blocks
 * @io: a request that holds its range
 *
 * Waiters it lets go are posted to their own loops.
 */
void uring_range_unlock(struct uring_io *io);

/**
 * uring_bounce_get - bounce pages for @io, if it needs them
 * @io: a READ or WRITE not aligned for O_DIRECT, or any other request
 *
 * Return: 0, -EINPROGRESS when parked on the loop's memwait list, or
 * -ENOMEM when nothing on this loop will free memory.
 */
int uring_bounce_get(struct uring_io *io);

/**
 * uring_bounce_retry - try once (more) for io->bounce_pages
 * @io: the request's state
 *
 * Return: 0, or -ENOMEM (also when the device has no page allocator).
 */
int uring_bounce_retry(struct uring_io *io);

/**
 * uring_bounce_put - free @io's bounce pages, if it has any
 * @io: the request's state
 */
void uring_bounce_put(struct uring_io *io);

/**
 * uring_bdev_zeroes - WRITE_ZEROES on a block device
 * @io: the request's state
 *
 * BLKZEROOUT for the whole blocks, then ST_ZERO writes the edges.
 *
 * Return: 1 (go on with io->step) or -errno.
 */
int uring_bdev_zeroes(struct uring_io *io);

/**
 * uring_step_zero - ST_ZERO: write the next piece of zeros
 * @io: the request's state
 *
 * Return: 1 to go on, 0 when I/O was issued, or -errno.
 */
int uring_step_zero(struct uring_io *io);

/**
 * uring_step_zero_edge - ST_ZERO_EDGE: zero part of a block just read, write it
 * @io: the request's state
 *
 * Return: 0, as I/O was issued.
 */
int uring_step_zero_edge(struct uring_io *io);

#endif
