/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_REQUEST_H
#define BLOCKD_CORE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include "bio.h"

/*
 * Queues and requests: where bios meet a backend.
 *
 * A front end builds bios and calls submit_bio().  The bio's queue turns
 * bios into requests, the blk_make_request() analogue: sector-contiguous
 * bios of the same operation are merged into one request whose data is a
 * single iovec list, within the queue's limits, so the backend issues one
 * readv/writev where the kernel would.  The backend's queue_rq() starts the
 * I/O and later calls blk_end_request(), which ends every bio in it.
 *
 * Front ends and backends know each other only through this interface.
 */

struct request;

struct queue_limits {
	unsigned int max_segments;	/* iovecs per request (<= IOV_MAX) */
	unsigned int max_bytes;		/* bytes per request */
	unsigned int logical_block_size;
	unsigned int physical_block_size;
};

struct blk_queue_ops {
	/*
	 * Start @rq.  The backend owns it until it calls blk_end_request(),
	 * from any thread, possibly before queue_rq() returns.
	 */
	void (*queue_rq)(struct blk_queue *q, struct request *rq);
};

struct blk_queue {
	const struct blk_queue_ops *ops;
	struct queue_limits limits;
	void *queuedata;		/* the backend's */
	/*
	 * Requests and their large iovec tables come from reserves, like the
	 * kernel's preallocated tags, so submitting never fails for memory.
	 */
	mempool_t rq_pool;
	mempool_t iov_pool;
};

/**
 * blk_queue_default_limits - the limits of a queue that names none
 * @lim: filled with 256 segments, 1 MiB, 512-byte logical and 4096-byte
 *       physical blocks
 */
void blk_queue_default_limits(struct queue_limits *lim);

/**
 * blk_queue_init - set up @q, its limits fixed from then on
 * @q: the queue
 * @ops: the backend's operations
 * @lim: the limits; NULL: blk_queue_default_limits()
 * @queuedata: the backend's, in q->queuedata
 *
 * Return: 0, -EINVAL for impossible limits, or -ENOMEM.
 */
int blk_queue_init(struct blk_queue *q, const struct blk_queue_ops *ops,
		   const struct queue_limits *lim, void *queuedata);

/**
 * blk_queue_exit - free the queue's reserves
 * @q: the queue; every request must have ended
 */
void blk_queue_exit(struct blk_queue *q);

#define REQ_INLINE_IOVECS	16

struct request {
	struct blk_queue *q;
	blk_opf_t cmd_flags;		/* op and flags, as in bi_opf */
	sector_t sector;		/* first sector */
	uint64_t bytes;			/* total length */
	struct bio *bio;		/* first bio; the rest follow via bi_next */
	struct bio *biotail;
	unsigned int nr_bios;
	unsigned int nr_segs;		/* iovecs in use */
	unsigned int max_segs;		/* iovecs in the table */
	struct iovec *iov;		/* data, for READ and WRITE */
	void *driver_data;		/* the backend's */
	struct iovec inline_iov[REQ_INLINE_IOVECS];
};

/**
 * req_op - the operation of @rq
 * @rq: the request
 *
 * Return: the REQ_OP_* of its cmd_flags.
 */
static inline enum req_op req_op(const struct request *rq)
{
	return (enum req_op)(rq->cmd_flags & REQ_OP_MASK);
}

/**
 * blk_rq_pos_bytes - where @rq starts on the device
 * @rq: the request
 *
 * Return: its first sector, in bytes.
 */
static inline uint64_t blk_rq_pos_bytes(const struct request *rq)
{
	return rq->sector << SECTOR_SHIFT;
}

/**
 * blk_make_request - one request from the bios at the head of @list
 * @q: the queue
 * @list: the bios; those used are removed, call again for the rest
 * @gfp: with BLK_GFP_WAIT it never fails for memory
 *
 * The request holds the first bio and every following one that is
 * sector-contiguous with it, of the same op and flags, while the merged
 * iovec list stays within @q's limits.  Adjacent segments that are
 * contiguous in memory share one iovec.  Requests for other queues than
 * @q are not merged.
 *
 * Return: the request, ERR_PTR(-EINVAL) for an empty list or a first bio
 * that alone exceeds the limits, ERR_PTR(-ENOMEM) when it may not sleep
 * and no request is free (@list is then unchanged).
 */
struct request *blk_make_request(struct blk_queue *q, struct bio_list *list,
				 blk_gfp_t gfp);

/**
 * blk_rq_can_merge - whether @next may be merged at the back of @rq
 * @rq: the request
 * @next: the bio
 *
 * Return: true for the same op, sector-contiguous, within the limits.
 */
bool blk_rq_can_merge(const struct request *rq, const struct bio *next);

/**
 * blk_end_request - complete @rq: every bio in it ends with @status
 * @rq: the request; it is freed
 * @status: 0 or -errno
 */
void blk_end_request(struct request *rq, blk_status_t status);

/**
 * blk_end_request_partial - complete @rq having transferred only @bytes
 * @rq: the request; it is freed
 * @bytes: what was transferred from its start
 * @status: for the bios not wholly inside @bytes (-EIO if it is 0);
 *          the others end with 0
 */
void blk_end_request_partial(struct request *rq, uint64_t bytes,
			     blk_status_t status);

/**
 * blk_free_request - free a request that was never started
 * @rq: the request; its bios are left unended
 */
void blk_free_request(struct request *rq);

/**
 * submit_bio - send @bio to bio->bi_queue
 * @bio: the bio; one that exceeds its queue's limits ends with -EINVAL
 *
 * Under a plug the bio is only queued on the plug and goes out, merged
 * with its neighbours, at blk_finish_plug(); otherwise it becomes a
 * request at once.  Called from within another submit_bio() (a bi_end_io
 * run by a backend that completes inline), it is queued and the outer call
 * dispatches it, so chains of completions and resubmissions never deepen
 * the stack.
 */
void submit_bio(struct bio *bio);

/**
 * submit_bio_wait - submit @bio and sleep until it completes
 * @bio: the bio
 *
 * Return: its status.
 */
blk_status_t submit_bio_wait(struct bio *bio);

/*
 * A plug batches the bios a thread submits so contiguous ones merge, as
 * blk_start_plug() does.  Plugs do not nest; one per thread.
 */
struct blk_plug {
	struct bio_list bios;
	struct blk_plug *prev;
};

/**
 * blk_start_plug - plug the calling thread's submissions
 * @plug: the plug, on the caller's stack
 */
void blk_start_plug(struct blk_plug *plug);

/**
 * blk_finish_plug - submit the plugged bios and remove the plug
 * @plug: the plug blk_start_plug() was given
 */
void blk_finish_plug(struct blk_plug *plug);

/**
 * blk_flush_plug - submit the plugged bios now, keeping the plug
 * @plug: the plug
 */
void blk_flush_plug(struct blk_plug *plug);

/**
 * blk_current_plug - the calling thread's plug
 *
 * Return: the plug, or NULL.
 */
struct blk_plug *blk_current_plug(void);

/**
 * blk_has_pending_bios - whether the calling thread holds undispatched bios
 *
 * Return: true when bios it submitted are not yet dispatched: on its plug,
 * or queued by a submit_bio() nested inside another (from a bi_end_io that
 * ran inline).
 */
bool blk_has_pending_bios(void);

/**
 * blk_plug_steal_bios - take the pending bios of @bs
 * @bs: the bio_set whose bios (bi_pool) are taken
 * @out: they are appended here
 *
 * Used by bio_alloc_bioset() to hand them to the rescuer before it sleeps.
 */
void blk_plug_steal_bios(struct bio_set *bs, struct bio_list *out);

#endif
