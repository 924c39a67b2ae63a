/* SPDX-License-Identifier: MIT */
/*
 * Requests: bios merged for a backend, after the old blk_make_request()
 * and the plugging in block/blk-core.c.  Merging happens only between
 * neighbours in submission order; a request never reorders writes.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "kmem.h"
#include "request.h"

#ifndef IOV_MAX
#define IOV_MAX	1024	/* POSIX names it only with _XOPEN_SOURCE */
#endif

/* Requests kept in reserve per queue: enough for a plug flush to make progress. */
#define RQ_RESERVE	4
#define IOV_RESERVE	2
/* A data-less request (discard, write-zeroes) covers at most this much. */
#define MAX_NODATA_BYTES	(1u << 30)

static __thread struct blk_plug *current_plug;
/*
 * Bios submitted while this thread is already inside submit_bio(), e.g.
 * from a bi_end_io run by a backend that completed inline: the outermost
 * submit_bio() dispatches them, so the stack never grows with the chain
 * (the kernel's current->bio_list).
 */
static __thread struct bio_list *current_bio_list;

void blk_queue_default_limits(struct queue_limits *lim)
{
	lim->max_segments = BIO_MAX_VECS;
	lim->max_bytes = BIO_MAX_VECS * 4096u;
	lim->logical_block_size = 512;
	lim->physical_block_size = 4096;
}

int blk_queue_init(struct blk_queue *q, const struct blk_queue_ops *ops,
		   const struct queue_limits *lim, void *queuedata)
{
	int ret;

	memset(q, 0, sizeof(*q));
	if (lim)
		q->limits = *lim;
	else
		blk_queue_default_limits(&q->limits);
	if (!q->limits.max_segments || q->limits.max_segments > IOV_MAX ||
	    q->limits.max_bytes < SECTOR_SIZE)
		return -EINVAL;
	q->ops = ops;
	q->queuedata = queuedata;

	ret = mempool_init_kmalloc_pool(&q->rq_pool, RQ_RESERVE,
					sizeof(struct request));
	if (ret)
		return ret;
	if (q->limits.max_segments > REQ_INLINE_IOVECS) {
		ret = mempool_init_kmalloc_pool(&q->iov_pool, IOV_RESERVE,
						q->limits.max_segments *
						sizeof(struct iovec));
		if (ret) {
			mempool_exit(&q->rq_pool);
			return ret;
		}
	}
	return 0;
}

void blk_queue_exit(struct blk_queue *q)
{
	if (q->limits.max_segments > REQ_INLINE_IOVECS)
		mempool_exit(&q->iov_pool);
	mempool_exit(&q->rq_pool);
}

/*
 * Count the iovecs @bio adds after a request ending at memory @tail
 * (merging a segment that starts there), and return the new tail.
 */
static unsigned int bio_count_segs(const struct bio *bio, const char **tail)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	unsigned int n = 0;

	bio_for_each_segment(bv, bio, iter) {
		const char *p = bvec_virt(&bv);

		if (p != *tail)
			n++;
		*tail = p + bv.bv_len;
	}
	return n;
}

static bool bios_mergeable(const struct bio *prev_end_bio, sector_t end,
			   const struct bio *next)
{
	return next->bi_queue == prev_end_bio->bi_queue &&
	       next->bi_opf == prev_end_bio->bi_opf &&
	       bio_op(next) != REQ_OP_FLUSH &&
	       !(next->bi_opf & REQ_PREFLUSH) &&
	       next->bi_iter.bi_sector == end &&
	       next->bi_iter.bi_size;
}

/*
 * How many bios from @first merge into one request for @q, and the iovecs
 * and bytes they make.  0 if even @first does not fit.
 */
static unsigned int plan_request(const struct blk_queue *q, const struct bio *first,
				 unsigned int *nr_segs, uint64_t *bytes)
{
	bool data = op_has_data(bio_op(first));
	uint64_t max = data ? q->limits.max_bytes : MAX_NODATA_BYTES;
	const char *tail = NULL;
	unsigned int nr = 0, segs = 0;
	const struct bio *bio, *prev = NULL;
	uint64_t total = 0;

	for (bio = first; bio; prev = bio, bio = bio->bi_next) {
		const char *t = tail;
		unsigned int s;

		/* First: a data-less bio (discard) has no bvecs to count. */
		if (prev && !bios_mergeable(prev, prev->bi_iter.bi_sector +
					    bio_sectors(prev), bio))
			break;
		s = data ? bio_count_segs(bio, &t) : 0;
		if (segs + s > q->limits.max_segments ||
		    total + bio->bi_iter.bi_size > max)
			break;
		segs += s;
		total += bio->bi_iter.bi_size;
		tail = t;
		nr++;
		/* A flush stands alone. */
		if (bio_op(bio) == REQ_OP_FLUSH)
			break;
	}
	*nr_segs = segs;
	*bytes = total;
	return nr;
}

static void rq_add_bio_segs(struct request *rq, const struct bio *bio)
{
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		char *p = bvec_virt(&bv);
		struct iovec *last = rq->nr_segs ? &rq->iov[rq->nr_segs - 1] : NULL;

		if (last && (char *)last->iov_base + last->iov_len == p) {
			last->iov_len += bv.bv_len;
			continue;
		}
		rq->iov[rq->nr_segs].iov_base = p;
		rq->iov[rq->nr_segs].iov_len = bv.bv_len;
		rq->nr_segs++;
	}
}

bool blk_rq_can_merge(const struct request *rq, const struct bio *next)
{
	const char *tail = NULL;
	unsigned int s = 0;

	if (!bios_mergeable(rq->biotail, rq->sector + (rq->bytes >> SECTOR_SHIFT),
			    next))
		return false;
	if (op_has_data(req_op(rq))) {
		if (rq->nr_segs)
			tail = (const char *)rq->iov[rq->nr_segs - 1].iov_base +
			       rq->iov[rq->nr_segs - 1].iov_len;
		s = bio_count_segs(next, &tail);
		/* The request's table may be the small inline one. */
		return rq->nr_segs + s <= rq->max_segs &&
		       rq->nr_segs + s <= rq->q->limits.max_segments &&
		       rq->bytes + next->bi_iter.bi_size <= rq->q->limits.max_bytes;
	}
	return rq->bytes + next->bi_iter.bi_size <= MAX_NODATA_BYTES;
}

struct request *blk_make_request(struct blk_queue *q, struct bio_list *list,
				 blk_gfp_t gfp)
{
	unsigned int nr, segs, i;
	struct request *rq;
	uint64_t bytes;
	struct bio *bio;

	if (bio_list_empty(list))
		return ERR_PTR(-EINVAL);
	nr = plan_request(q, list->head, &segs, &bytes);
	if (!nr)
		return ERR_PTR(-EINVAL);

	rq = mempool_alloc(&q->rq_pool, gfp);
	if (!rq)
		return ERR_PTR(-ENOMEM);
	rq->iov = rq->inline_iov;
	rq->max_segs = REQ_INLINE_IOVECS;
	if (segs > REQ_INLINE_IOVECS) {
		rq->iov = mempool_alloc(&q->iov_pool, gfp);
		if (!rq->iov) {
			mempool_free(rq, &q->rq_pool);
			return ERR_PTR(-ENOMEM);
		}
		rq->max_segs = q->limits.max_segments;
	}

	bio = list->head;
	rq->q = q;
	rq->cmd_flags = bio->bi_opf;
	rq->sector = bio->bi_iter.bi_sector;
	rq->bytes = bytes;
	rq->bio = bio;
	rq->nr_bios = nr;
	rq->nr_segs = 0;
	rq->driver_data = NULL;
	for (i = 0; i < nr; i++) {
		if (op_has_data(bio_op(bio)))
			rq_add_bio_segs(rq, bio);
		rq->biotail = bio;
		bio = bio->bi_next;
	}
	rq->biotail->bi_next = NULL;
	list->head = bio;
	if (!bio)
		list->tail = NULL;
	return rq;
}

void blk_free_request(struct request *rq)
{
	struct blk_queue *q = rq->q;

	if (rq->iov != rq->inline_iov)
		mempool_free(rq->iov, &q->iov_pool);
	mempool_free(rq, &q->rq_pool);
}

void blk_end_request_partial(struct request *rq, uint64_t bytes,
			     blk_status_t status)
{
	struct bio *bio = rq->bio, *next;
	uint64_t done = 0;

	if (!status && bytes < rq->bytes)
		status = -EIO;
	/* The request goes first: a bio's end_io may submit, and want a request. */
	blk_free_request(rq);
	for (; bio; bio = next) {
		next = bio->bi_next;
		bio->bi_next = NULL;
		done += bio->bi_iter.bi_size;
		bio_endio_status(bio, done <= bytes ? 0 : status);
	}
}

void blk_end_request(struct request *rq, blk_status_t status)
{
	struct bio *bio = rq->bio, *next;

	blk_free_request(rq);
	for (; bio; bio = next) {
		next = bio->bi_next;
		bio->bi_next = NULL;
		bio_endio_status(bio, status);
	}
}

/* Make requests of @list and start them, ending bios that cannot be. */
static void dispatch_list(struct bio_list *list)
{
	while (!bio_list_empty(list)) {
		struct blk_queue *q = list->head->bi_queue;
		struct request *rq = blk_make_request(q, list, BLK_GFP_WAIT);

		if (IS_ERR(rq)) {
			bio_endio_status(bio_list_pop(list), (int)PTR_ERR(rq));
			continue;
		}
		q->ops->queue_rq(q, rq);
	}
}

void submit_bio(struct bio *bio)
{
	struct bio_list pending;

	if (current_plug) {
		bio_list_add(&current_plug->bios, bio);
		return;
	}
	if (current_bio_list) {
		bio_list_add(current_bio_list, bio);
		return;
	}
	bio_list_init(&pending);
	bio_list_add(&pending, bio);
	current_bio_list = &pending;
	while (!bio_list_empty(&pending)) {
		struct bio_list batch = pending;

		bio_list_init(&pending);
		dispatch_list(&batch);
	}
	current_bio_list = NULL;
}

struct submit_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void submit_bio_wait_endio(struct bio *bio)
{
	struct submit_wait *w = bio->bi_private;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

blk_status_t submit_bio_wait(struct bio *bio)
{
	struct submit_wait w = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};

	bio->bi_private = &w;
	bio->bi_end_io = submit_bio_wait_endio;
	submit_bio(bio);
	/* A plugged bio would never start while we sleep. */
	if (current_plug)
		blk_flush_plug(current_plug);

	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return bio->bi_status;
}

void blk_start_plug(struct blk_plug *plug)
{
	bio_list_init(&plug->bios);
	plug->prev = NULL;
	/* Nested plugs are ignored, as in the kernel: the outer one flushes. */
	if (!current_plug)
		current_plug = plug;
}

void blk_flush_plug(struct blk_plug *plug)
{
	/* Bios submitted while dispatching land on the plug again: loop. */
	while (!bio_list_empty(&plug->bios)) {
		struct bio_list list = plug->bios;

		bio_list_init(&plug->bios);
		dispatch_list(&list);
	}
}

void blk_finish_plug(struct blk_plug *plug)
{
	if (plug != current_plug)
		return;
	blk_flush_plug(plug);
	current_plug = NULL;
}

struct blk_plug *blk_current_plug(void)
{
	return current_plug;
}

bool blk_has_pending_bios(void)
{
	return (current_plug && !bio_list_empty(&current_plug->bios)) ||
	       (current_bio_list && !bio_list_empty(current_bio_list));
}

static void steal_from(struct bio_list *list, struct bio_set *bs,
		       struct bio_list *out)
{
	struct bio_list keep;
	struct bio *bio;

	bio_list_init(&keep);
	while ((bio = bio_list_pop(list))) {
		if (bio->bi_pool == bs)
			bio_list_add(out, bio);
		else
			bio_list_add(&keep, bio);
	}
	*list = keep;
}

void blk_plug_steal_bios(struct bio_set *bs, struct bio_list *out)
{
	if (current_plug)
		steal_from(&current_plug->bios, bs, out);
	if (current_bio_list)
		steal_from(current_bio_list, bs, out);
}
