// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kmem.h"
#include "helpers.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000l,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void bio_done_init(struct bio_done *d, atomic_int *order)
{
	atomic_init(&d->calls, 0);
	atomic_init(&d->status, 0);
	atomic_init(&d->seq, -1);
	d->order = order;
}

void done_end_io(struct bio *bio)
{
	struct bio_done *d = bio->bi_private;

	atomic_store(&d->status, bio->bi_status);
	if (d->order)
		atomic_store(&d->seq, atomic_fetch_add(d->order, 1));
	atomic_fetch_add(&d->calls, 1);
}

void done_put_end_io(struct bio *bio)
{
	done_end_io(bio);
	bio_put(bio);
}

struct bio *mk_bio(struct blk_queue *q, blk_opf_t opf, sector_t sector,
		   void *buf, unsigned int len, struct bio_done *done)
{
	struct bio *bio = bio_kmalloc(BLK_GFP_WAIT, 1);

	if (!bio)
		return NULL;
	bio->bi_opf = opf;
	bio->bi_queue = q;
	bio->bi_iter.bi_sector = sector;
	if (len && bio_add_page(bio, buf, len, 0) != len) {
		bio_put(bio);
		return NULL;
	}
	bio->bi_end_io = done_end_io;
	bio->bi_private = done;
	return bio;
}

size_t iter_to_flat(const struct bio_vec *table, struct bvec_iter iter,
		    unsigned char *out)
{
	struct bvec_iter it;
	struct bio_vec bv;
	size_t n = 0;

	for_each_bvec_iter(bv, table, it, iter) {
		memcpy(out + n, bvec_virt(&bv), bv.bv_len);
		n += bv.bv_len;
	}
	return n;
}

/* Check what queue_rq() was given against the interface's promises. */
static bool tq_request_ok(struct test_queue *tq, struct request *rq)
{
	enum req_op op = req_op(rq);
	uint64_t sum = 0, off = 0;
	unsigned int n = 0, i;
	struct bio *bio, *last = NULL;

	if (rq->q != &tq->q || !rq->bio || !rq->nr_bios)
		return false;
	for (bio = rq->bio; bio; bio = bio->bi_next) {
		if (bio->bi_iter.bi_sector != rq->sector + (off >> SECTOR_SHIFT))
			return false;
		if ((bio->bi_opf) != rq->cmd_flags)
			return false;
		off += bio->bi_iter.bi_size;
		last = bio;
		n++;
	}
	if (n != rq->nr_bios || last != rq->biotail || off != rq->bytes)
		return false;
	if (blk_rq_pos_bytes(rq) + rq->bytes > tq->disk_bytes)
		return false;
	if (op_has_data(op)) {
		if (rq->nr_segs > tq->q.limits.max_segments ||
		    rq->bytes > tq->q.limits.max_bytes ||
		    rq->nr_segs > rq->max_segs)
			return false;
		for (i = 0; i < rq->nr_segs; i++)
			sum += rq->iov[i].iov_len;
		if (sum != rq->bytes)
			return false;
	}
	return true;
}

static void tq_process(struct test_queue *tq, struct request *rq)
{
	enum req_op op = req_op(rq);
	uint64_t pos = blk_rq_pos_bytes(rq), bytes = rq->bytes;
	blk_status_t status = tq->status;
	unsigned int i;

	if (!tq_request_ok(tq, rq)) {
		atomic_fetch_add(&tq->errors, 1);
		blk_end_request(rq, -EIO);
		atomic_fetch_add(&tq->nr_done, 1);
		return;
	}
	if (op == REQ_OP_WRITE || op == REQ_OP_READ) {
		for (i = 0; i < rq->nr_segs; i++) {
			void *base = rq->iov[i].iov_base;
			size_t len = rq->iov[i].iov_len;

			if (op == REQ_OP_WRITE)
				memcpy(tq->disk + pos, base, len);
			else
				memcpy(base, tq->disk + pos, len);
			pos += len;
		}
	} else if (op == REQ_OP_WRITE_ZEROES || op == REQ_OP_DISCARD) {
		memset(tq->disk + pos, 0, bytes);
	}
	blk_end_request(rq, status);
	atomic_fetch_add(&tq->bytes_done, bytes);
	atomic_fetch_add(&tq->nr_done, 1);
}

static void tq_queue_rq(struct blk_queue *q, struct request *rq)
{
	struct test_queue *tq = q->queuedata;

	atomic_fetch_add(&tq->nr_queue_rq, 1);
	pthread_mutex_lock(&tq->lock);
	if (tq->nr_records < TQ_MAX_RECORDS) {
		struct tq_record *r = &tq->records[tq->nr_records];

		r->opf = rq->cmd_flags;
		r->sector = rq->sector;
		r->bytes = rq->bytes;
		r->nr_bios = rq->nr_bios;
		r->nr_segs = rq->nr_segs;
	}
	tq->nr_records++;
	if (!tq->threaded) {
		pthread_mutex_unlock(&tq->lock);
		tq_process(tq, rq);
		return;
	}
	rq->driver_data = NULL;
	if (tq->tail)
		tq->tail->driver_data = rq;
	else
		tq->head = rq;
	tq->tail = rq;
	pthread_cond_signal(&tq->cond);
	pthread_mutex_unlock(&tq->lock);
}

static const struct blk_queue_ops tq_ops = {
	.queue_rq = tq_queue_rq,
};

static void *tq_worker(void *arg)
{
	struct test_queue *tq = arg;
	struct request *rq;

	pthread_mutex_lock(&tq->lock);
	for (;;) {
		while (!tq->head && !tq->stop)
			pthread_cond_wait(&tq->cond, &tq->lock);
		rq = tq->head;
		if (!rq)
			break;
		tq->head = rq->driver_data;
		if (!tq->head)
			tq->tail = NULL;
		pthread_mutex_unlock(&tq->lock);
		if (tq->delay_us)
			usleep(tq->delay_us);
		tq_process(tq, rq);
		pthread_mutex_lock(&tq->lock);
	}
	pthread_mutex_unlock(&tq->lock);
	return NULL;
}

int tq_init(struct test_queue *tq, size_t disk_bytes,
	    const struct queue_limits *lim, bool threaded)
{
	int ret;

	memset(tq, 0, sizeof(*tq));
	tq->disk = calloc(1, disk_bytes ? disk_bytes : 1);
	if (!tq->disk)
		return -ENOMEM;
	tq->disk_bytes = disk_bytes;
	tq->threaded = threaded;
	pthread_mutex_init(&tq->lock, NULL);
	pthread_cond_init(&tq->cond, NULL);
	ret = blk_queue_init(&tq->q, &tq_ops, lim, tq);
	if (ret)
		goto out_free;
	if (threaded) {
		ret = -pthread_create(&tq->worker, NULL, tq_worker, tq);
		if (ret) {
			blk_queue_exit(&tq->q);
			goto out_free;
		}
	}
	return 0;

out_free:
	pthread_cond_destroy(&tq->cond);
	pthread_mutex_destroy(&tq->lock);
	free(tq->disk);
	return ret;
}

void tq_exit(struct test_queue *tq)
{
	if (tq->threaded) {
		pthread_mutex_lock(&tq->lock);
		tq->stop = true;
		pthread_cond_signal(&tq->cond);
		pthread_mutex_unlock(&tq->lock);
		pthread_join(tq->worker, NULL);
	}
	blk_queue_exit(&tq->q);
	pthread_cond_destroy(&tq->cond);
	pthread_mutex_destroy(&tq->lock);
	free(tq->disk);
	tq->disk = NULL;
}

struct tq_record tq_record(struct test_queue *tq, unsigned int i)
{
	struct tq_record r = { 0 };

	pthread_mutex_lock(&tq->lock);
	if (i < tq->nr_records && i < TQ_MAX_RECORDS)
		r = tq->records[i];
	pthread_mutex_unlock(&tq->lock);
	return r;
}

unsigned int tq_nr_records(struct test_queue *tq)
{
	unsigned int n;

	pthread_mutex_lock(&tq->lock);
	n = tq->nr_records;
	pthread_mutex_unlock(&tq->lock);
	return n;
}
