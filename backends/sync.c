/* SPDX-License-Identifier: MIT */
/*
 * sync: the fallback engine for "file:" specs, for where io_uring is not
 * (a seccomp profile, an old kernel, BLOCKD_NO_IO_URING) or engine=sync.
 *
 * queue_rq() puts the request on a bounded FIFO and a pool of worker
 * threads does plain syscalls: preadv/pwritev, fdatasync, fallocate.  The
 * completion goes back to the loop thread that submitted the request with
 * ioloop_post(), so bi_end_io runs where the front end expects it.  A
 * submitter that runs no loop (ioloop_current() is NULL) has its requests
 * completed on the worker thread instead.
 *
 * cache=none (O_DIRECT) wants every offset, length and buffer aligned to
 * the logical block.  Requests that are not go through a bounce buffer:
 * reads read the covering blocks, writes read-modify-write them.  An RMW
 * rewrites bytes it was not asked to write, so it must not run beside any
 * other write to the same blocks: in O_DIRECT mode every write-type
 * request holds a block range lock, shared for plain writes, trims and
 * zeroing, exclusive for an RMW.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/bounce.h"
#include "backends/file.h"
#include "core/compiler.h"
#include "core/ioloop.h"
#include "core/mempool.h"
#include "core/page.h"
#include "core/range_lock.h"

#ifndef IOV_MAX
#define IOV_MAX			1024
#endif

/* Workers without queue-depth=N; the syscalls sleep, so more than cores. */
#define SYNC_DEFAULT_WORKERS	16
#define SYNC_MAX_WORKERS	64
/* Requests waiting for a worker before submitters wait (queue-depth=N sets it). */
#define SYNC_DEFAULT_QUEUED	128
/* Per-request state kept in reserve for when malloc fails. */
#define SYNC_IO_RESERVE		8
/* The largest bounce buffer one unaligned request takes from the budget. */
#define BOUNCE_MAX_PAGES	64
/*
 * A bounce buffer that is always there: the budget's pages may all belong
 * to requests queued behind the one that needs it, so waiting for pages
 * could wait forever.  It also bounds the logical block size we accept.
 */
#define BOUNCE_RESERVE_BYTES	(64u * 1024)

struct sync_dev {
	struct file_dev f;
	unsigned int align;		/* O_DIRECT alignment; 0: page cache */
	atomic_bool no_rwf_dsync;	/* pwritev2(RWF_DSYNC) is refused */
	struct pgalloc *pages;		/* bounce buffers; may be NULL */
	mempool_t io_pool;
	bool io_pool_ok;

	/* The queue and the workers. */
	pthread_mutex_t lock;
	pthread_cond_t work_cond;	/* workers wait for requests */
	pthread_cond_t space_cond;	/* submitters wait for room */
	struct sync_io *head, **tailp;	/* oldest first; tailp: the last's next */
	unsigned int queued, max_queued, space_waiters;
	bool stopping;
	pthread_t *workers;
	unsigned int nr_workers;

	/* Writes in flight in O_DIRECT mode; see the top of the file. */
	struct range_lock_tree ranges;

	pthread_mutex_t bounce_lock;	/* holds bounce_reserve */
	void *bounce_reserve;
};

struct sync_io {
	struct ioloop_work work;	/* the completion, on the submitter's loop */
	struct sync_io *next;		/* in the queue */
	struct sync_dev *d;
	struct request *rq;
	struct ioloop *loop;		/* the submitter's; NULL: complete on the worker */
	bool pooled;			/* from io_pool, not the stack */
	int status;
	uint64_t done;			/* bytes that made it before an error */
};

/* Set on worker threads, of any sync backend. */
static __thread bool in_sync_worker;

/*
 * Lock [@off, @off + @len), widened to whole blocks, exclusive for an RMW
 * and shared otherwise, sleeping until it is granted.  Only running
 * requests hold ranges, never queued ones, so a wait always ends.
 */
static void sync_range_lock(struct sync_dev *d, struct range_lock *r,
			    uint64_t off, uint64_t len, bool exclusive)
{
	range_lock_wait(&d->ranges, r, align_down(off, d->align),
			align_up(off + len, d->align), exclusive);
}

/* Bounce buffers. */

struct bounce {
	char *buf;
	size_t len;			/* a multiple of the alignment */
	unsigned int pages;		/* from @pa; 0: the reserve */
	struct pgalloc *pa;
};

/* A bounce buffer for an aligned span of @span bytes, or a chunk of it. */
static void bounce_get(struct sync_dev *d, struct bounce *b, uint64_t span)
{
	struct pgalloc *pa = d->pages;
	uint64_t want = min_t(uint64_t, span, BOUNCE_MAX_PAGES * PAGE_SIZE);
	unsigned int pages = (unsigned int)DIV_ROUND_UP(want, PAGE_SIZE);
	void *p;

	if (pa && !page_alloc_contig(pa, pages, BLK_GFP_NOWAIT, &p)) {
		b->buf = p;
		b->len = align_down((uint64_t)pages * PAGE_SIZE, d->align);
		b->pages = pages;
		b->pa = pa;
		return;
	}
	/* Not sleeping for pages here: see BOUNCE_RESERVE_BYTES. */
	pthread_mutex_lock(&d->bounce_lock);
	b->buf = d->bounce_reserve;
	b->len = BOUNCE_RESERVE_BYTES;
	b->pages = 0;
	b->pa = NULL;
}

static void bounce_put(struct sync_dev *d, struct bounce *b)
{
	if (b->pages)
		page_free_contig(b->pa, b->buf, b->pages);
	else
		pthread_mutex_unlock(&d->bounce_lock);
}

/* Drop @n bytes from the front of *@iov, which is ours to change. */
static void iov_consume(struct iovec **iov, int *cnt, size_t n)
{
	while (n && *cnt) {
		struct iovec *v = *iov;

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		(*iov)++;
		(*cnt)--;
	}
}

static void iov_zero(struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
}

/* The syscalls. */

static int sync_flush(struct sync_dev *d)
{
	while (fdatasync(d->f.fd)) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * Move @len bytes at @off through @iov[0..@cnt), looping over short
 * transfers; the iovecs are consumed in place.  *@rwf is 0 or RWF_DSYNC
 * for writes; it is cleared when the kernel refuses the flag, and the
 * caller then flushes.  A read that meets the end of a regular file reads
 * zeros from there: the file may be shorter than the export (opened
 * read-only, or truncated behind our back).  Returns 0 or -errno, and the
 * bytes moved in *@done.
 */
static int sync_rw(struct sync_dev *d, bool write, struct iovec *iov, int cnt,
		   uint64_t off, uint64_t len, int *rwf, uint64_t *done)
{
	uint64_t pos = 0;
	int ret = 0;

	while (pos < len) {
		int n = min_t(int, cnt, IOV_MAX);
		off_t at = (off_t)(off + pos);
		ssize_t r;

		if (!write)
			r = preadv(d->f.fd, iov, n, at);
		else if (*rwf)
			r = pwritev2(d->f.fd, iov, n, at, *rwf);
		else
			r = pwritev(d->f.fd, iov, n, at);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (write && *rwf && errno == EOPNOTSUPP) {
				atomic_store(&d->no_rwf_dsync, true);
				*rwf = 0;
				continue;
			}
			ret = -errno;
			break;
		}
		if (r == 0) {
			if (write || d->f.bdev) {
				ret = -EIO;
				break;
			}
			iov_zero(iov, cnt);
			pos = len;
			break;
		}
		pos += (uint64_t)r;
		iov_consume(&iov, &cnt, (size_t)r);
		/*
		 * O_DIRECT stops short only at the end of the file; when the
		 * file's size is not block-aligned the next read would be
		 * misaligned and fail, so the rest is past the end: zeros.
		 */
		if (!write && d->align && pos < len && ((off + pos) & (d->align - 1))) {
			iov_zero(iov, cnt);
			pos = len;
		}
	}
	*done = pos;
	return ret;
}

/* Read or write one flat, aligned buffer. */
static int sync_rw_buf(struct sync_dev *d, bool write, void *buf, uint64_t len,
		       uint64_t off, int *rwf)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };
	uint64_t done;

	return sync_rw(d, write, &v, 1, off, len, rwf, &done);
}

/* An unaligned O_DIRECT read: whole blocks into a bounce buffer, then copy. */
static int bounce_read(struct sync_dev *d, struct request *rq, uint64_t *done)
{
	uint64_t off = blk_rq_pos_bytes(rq), end = off + rq->bytes, pos = off;
	struct bounce_iter it;
	struct bounce b;
	int ret = 0;

	bounce_iter_init(&it, rq->iov, rq->nr_segs);
	bounce_get(d, &b, align_up(end, d->align) -
			  align_down(off, d->align));
	while (pos < end) {
		uint64_t cs, ce, n = bounce_chunk(pos, end, b.len, d->align, &cs, &ce);

		ret = sync_rw_buf(d, false, b.buf, ce - cs, cs, NULL);
		if (ret)
			break;
		bounce_copy_out(&it, b.buf + (pos - cs), n);
		pos += n;
	}
	bounce_put(d, &b);
	*done = pos - off;
	return ret;
}

/*
 * Whole blocks may reach past an export whose size is not a whole number
 * of blocks: the file's size to put back after writing up to @aend, or -1.
 */
static off_t size_to_restore(struct sync_dev *d, uint64_t aend)
{
	struct stat st;

	if (aend <= d->f.size || d->f.bdev)
		return -1;
	return fstat(d->f.fd, &st) ? (off_t)d->f.size :
	       max_t(off_t, st.st_size, (off_t)d->f.size);
}

/*
 * Read-modify-write [*@pos, @end) from @it through @b, a buffer at a
 * time: read the partial blocks at either end of each piece, merge, write
 * the piece.  *@pos advances past what was written.  0 or -errno.
 */
static int rmw_pieces(struct sync_dev *d, struct bounce *b,
		      struct bounce_iter *it, uint64_t *pos, uint64_t end,
		      int *rwf)
{
	unsigned int a = d->align;
	int ret = 0;

	while (*pos < end) {
		uint64_t cs, ce, n = bounce_chunk(*pos, end, b->len, a, &cs, &ce);
		struct bounce_edges e = bounce_edges(cs, ce, *pos, *pos + n, a);

		if (e.head)
			ret = sync_rw_buf(d, false, b->buf, a, cs, NULL);
		if (!ret && e.tail)
			ret = sync_rw_buf(d, false, b->buf + (ce - a - cs), a, ce - a, NULL);
		if (ret)
			break;
		bounce_copy_in(it, b->buf + (*pos - cs), n);
		ret = sync_rw_buf(d, true, b->buf, ce - cs, cs, rwf);
		if (ret)
			break;
		*pos += n;
	}
	return ret;
}

/*
 * An unaligned O_DIRECT write of @len bytes at @off from @iov (NULL:
 * zeros).  The blocks are locked exclusively, so no other write runs
 * between our read and our write.
 */
static int rmw_write(struct sync_dev *d, const struct iovec *iov,
		     unsigned int cnt, uint64_t off, uint64_t len, int *rwf,
		     uint64_t *done)
{
	uint64_t end = off + len, pos = off;
	uint64_t aend = align_up(end, d->align);
	struct bounce_iter it;
	struct range_lock r;
	struct bounce b;
	off_t old_size;
	int ret;

	bounce_iter_init(&it, iov, cnt);
	sync_range_lock(d, &r, off, len, true);
	old_size = size_to_restore(d, aend);
	bounce_get(d, &b, aend - align_down(off, d->align));
	ret = rmw_pieces(d, &b, &it, &pos, end, rwf);
	bounce_put(d, &b);
	if (old_size >= 0 && ftruncate(d->f.fd, old_size) && !ret)
		ret = -errno;
	range_unlock(&d->ranges, &r);
	*done = pos - off;
	return ret;
}

static int sync_read(struct sync_dev *d, struct request *rq, uint64_t *done)
{
	if (d->align && !bounce_rq_aligned(rq, d->align))
		return bounce_read(d, rq, done);
	return sync_rw(d, false, rq->iov, (int)rq->nr_segs, blk_rq_pos_bytes(rq),
		       rq->bytes, NULL, done);
}

static int sync_write(struct sync_dev *d, struct request *rq, int *rwf,
		      uint64_t *done)
{
	uint64_t off = blk_rq_pos_bytes(rq);
	struct range_lock r;
	int ret;

	if (!d->align)
		return sync_rw(d, true, rq->iov, (int)rq->nr_segs, off, rq->bytes,
			       rwf, done);
	if (!bounce_rq_aligned(rq, d->align))
		return rmw_write(d, rq->iov, rq->nr_segs, off, rq->bytes, rwf, done);
	sync_range_lock(d, &r, off, rq->bytes, false);
	ret = sync_rw(d, true, rq->iov, (int)rq->nr_segs, off, rq->bytes, rwf, done);
	range_unlock(&d->ranges, &r);
	return ret;
}

/*
 * Block devices take BLKDISCARD and BLKZEROOUT only in whole logical
 * blocks; fallocate() on files takes any range.
 */
static unsigned int zero_align(const struct sync_dev *d)
{
	return d->f.bdev ? d->f.lbs : 1;
}

static int sync_discard(struct sync_dev *d, uint64_t off, uint64_t len)
{
	uint64_t start = align_up(off, zero_align(d));
	uint64_t end = align_down(off + len, zero_align(d));
	struct range_lock r;
	int ret;

	/* A trim is a hint: the partial blocks at its ends keep their data. */
	if (start >= end)
		return 0;
	if (d->align)
		sync_range_lock(d, &r, start, end - start, false);
	ret = file_dev_discard(&d->f, start, end - start);
	if (d->align)
		range_unlock(&d->ranges, &r);
	/* Storage that cannot free space keeps the data, as it may. */
	if (ret == -EOPNOTSUPP || ret == -ENOSYS)
		ret = 0;
	return ret;
}

/* Write zeros over [@off, @off + @len) with data I/O. */
static int write_zeros(struct sync_dev *d, uint64_t off, uint64_t len)
{
	struct range_lock r;
	uint64_t done;
	int ret, rwf = 0;

	if (!d->align)
		return file_dev_write_zeros(&d->f, off, len);
	/* pwrite of zeros needs aligned ranges under O_DIRECT. */
	if ((off | len) & (d->align - 1))
		return rmw_write(d, NULL, 0, off, len, &rwf, &done);
	sync_range_lock(d, &r, off, len, false);
	ret = file_dev_write_zeros(&d->f, off, len);
	range_unlock(&d->ranges, &r);
	return ret;
}

/* Zero whole blocks cheaply where the storage can; else write zeros. */
static int zero_range(struct sync_dev *d, uint64_t off, uint64_t len,
		      bool may_unmap)
{
	struct range_lock r;
	int ret;

	if (d->align)
		sync_range_lock(d, &r, off, len, false);
	ret = file_dev_zero_range(&d->f, off, len, may_unmap);
	if (d->align)
		range_unlock(&d->ranges, &r);
	if (ret == -EOPNOTSUPP)
		ret = write_zeros(d, off, len);
	return ret;
}

static int sync_write_zeroes(struct sync_dev *d, uint64_t off, uint64_t len,
			     bool may_unmap)
{
	uint64_t end = off + len;
	uint64_t start = align_up(off, zero_align(d));
	uint64_t aend = align_down(end, zero_align(d));
	int ret;

	if (start >= aend)
		return write_zeros(d, off, len);
	ret = zero_range(d, start, aend - start, may_unmap);
	if (!ret && off < start)
		ret = write_zeros(d, off, start - off);
	if (!ret && aend < end)
		ret = write_zeros(d, aend, end - aend);
	return ret;
}

/* Do @io's request; the status and the bytes done go in @io. */
static void sync_do(struct sync_io *io)
{
	struct sync_dev *d = io->d;
	struct request *rq = io->rq;
	bool fua = rq->cmd_flags & REQ_FUA;
	int ret = 0, rwf;

	io->done = 0;
	if (rq->cmd_flags & REQ_PREFLUSH) {
		ret = sync_flush(d);
		if (ret)
			goto out;
	}
	switch (req_op(rq)) {
	case REQ_OP_READ:
		ret = sync_read(d, rq, &io->done);
		break;
	case REQ_OP_WRITE:
		rwf = fua && !atomic_load(&d->no_rwf_dsync) ? RWF_DSYNC : 0;
		ret = sync_write(d, rq, &rwf, &io->done);
		/* Written durably as it went, unless RWF_DSYNC was refused. */
		if (rwf)
			fua = false;
		else if (ret && fua)
			io->done = 0;
		break;
	case REQ_OP_FLUSH:
		if (!(rq->cmd_flags & REQ_PREFLUSH))
			ret = sync_flush(d);
		fua = false;
		break;
	case REQ_OP_DISCARD:
		ret = sync_discard(d, blk_rq_pos_bytes(rq), rq->bytes);
		break;
	case REQ_OP_WRITE_ZEROES:
		ret = sync_write_zeroes(d, blk_rq_pos_bytes(rq), rq->bytes,
					!(rq->cmd_flags & REQ_NOUNMAP));
		break;
	default:
		ret = -EOPNOTSUPP;
		break;
	}
	if (!ret && fua)
		ret = sync_flush(d);
out:
	io->status = ret;
}

/* End @io's request, on whichever thread is to run its completion. */
static void sync_end(struct sync_io *io)
{
	struct request *rq = io->rq;
	uint64_t done = io->done;
	int status = io->status;

	/* First: a bi_end_io may submit again and want an io. */
	if (io->pooled)
		mempool_free(io, &io->d->io_pool);
	if (status && done)
		blk_end_request_partial(rq, done, status);
	else
		blk_end_request(rq, status);
}

static void sync_end_work(struct ioloop_work *w)
{
	sync_end(container_of(w, struct sync_io, work));
}

static void *sync_worker(void *arg)
{
	struct sync_dev *d = arg;
	struct sync_io *io;

	in_sync_worker = true;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		while (!d->head && !d->stopping)
			pthread_cond_wait(&d->work_cond, &d->lock);
		io = d->head;
		if (!io)
			break;
		d->head = io->next;
		if (!d->head)
			d->tailp = &d->head;
		d->queued--;
		if (d->space_waiters)
			pthread_cond_signal(&d->space_cond);
		pthread_mutex_unlock(&d->lock);

		sync_do(io);
		/* After the post, @io belongs to the loop thread. */
		if (io->loop)
			ioloop_post(io->loop, &io->work);
		else
			sync_end(io);

		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Run @rq on the calling thread and end it there. */
static void sync_run_inline(struct sync_dev *d, struct request *rq)
{
	struct sync_io io = { .d = d, .rq = rq };

	sync_do(&io);
	sync_end(&io);
}

static void sync_queue_rq(struct backend *be, struct request *rq)
{
	struct sync_dev *d = be->priv;
	struct sync_io *io;

	/*
	 * A worker ending a request for a thread without a loop runs the
	 * bi_end_io itself, which may submit again: waiting there for room
	 * in the queue could wait on ourselves, so do that request here.
	 */
	if (in_sync_worker) {
		sync_run_inline(d, rq);
		return;
	}
	io = mempool_alloc(&d->io_pool, BLK_GFP_NOWAIT);
	if (unlikely(!io)) {
		/*
		 * Waiting for an io could wait for completions that only this
		 * thread's loop can run; the request goes slower, not never.
		 */
		sync_run_inline(d, rq);
		return;
	}
	io->work.fn = sync_end_work;
	io->next = NULL;
	io->d = d;
	io->rq = rq;
	io->loop = ioloop_current();
	io->pooled = true;

	pthread_mutex_lock(&d->lock);
	/* The workers never wait for a loop, so room always comes. */
	while (d->queued >= d->max_queued) {
		d->space_waiters++;
		pthread_cond_wait(&d->space_cond, &d->lock);
		d->space_waiters--;
	}
	*d->tailp = io;
	d->tailp = &io->next;
	d->queued++;
	pthread_cond_signal(&d->work_cond);
	pthread_mutex_unlock(&d->lock);
}

/* A quick walk of SEEK_DATA/SEEK_HOLE: answered here, no thread hop. */
static void sync_extents(struct backend *be, struct backend_extents_req *req)
{
	struct sync_dev *d = be->priv;

	req->status = file_dev_extents(&d->f, req);
	req->done(req);
}

static void sync_stop_workers(struct sync_dev *d)
{
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->work_cond);
	pthread_mutex_unlock(&d->lock);
	for (unsigned int i = 0; i < d->nr_workers; i++)
		pthread_join(d->workers[i], NULL);
	d->nr_workers = 0;
}

static int sync_start_workers(struct sync_dev *d, unsigned int n)
{
	int ret = 0;

	d->workers = calloc(n, sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	for (; d->nr_workers < n; d->nr_workers++) {
		ret = backend_thread_create(&d->workers[d->nr_workers], sync_worker,
					    d, "blockd-sync");
		if (ret)
			break;
	}
	return ret;
}

static void sync_dev_free(struct sync_dev *d)
{
	if (d->io_pool_ok)
		mempool_exit(&d->io_pool);
	free(d->bounce_reserve);
	free(d->workers);
	pthread_mutex_destroy(&d->bounce_lock);
	range_lock_tree_destroy(&d->ranges);
	pthread_cond_destroy(&d->space_cond);
	pthread_cond_destroy(&d->work_cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int sync_open(struct backend *be, const struct backend_params *p,
		     char *err, size_t errlen)
{
	unsigned int workers = SYNC_DEFAULT_WORKERS;
	struct queue_limits lim;
	struct sync_dev *d;
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->work_cond, NULL);
	pthread_cond_init(&d->space_cond, NULL);
	d->tailp = &d->head;
	range_lock_tree_init(&d->ranges);
	pthread_mutex_init(&d->bounce_lock, NULL);
	d->max_queued = SYNC_DEFAULT_QUEUED;
	if (p->queue_depth) {
		workers = min_t(unsigned int, p->queue_depth, SYNC_MAX_WORKERS);
		d->max_queued = p->queue_depth;
	}

	ret = file_dev_open(&d->f, p, err, errlen);
	if (ret) {
		sync_dev_free(d);
		return ret;
	}
	if (d->f.lbs < SECTOR_SIZE || (d->f.lbs & (d->f.lbs - 1)) ||
	    d->f.lbs > BOUNCE_RESERVE_BYTES) {
		snprintf(err, errlen, "%s: logical block size %u is not supported",
			 d->f.path, d->f.lbs);
		ret = -EINVAL;
		goto out_file;
	}
	d->align = d->f.direct ? d->f.lbs : 0;
	d->pages = be->pages;
	file_dev_describe(&d->f, be);

	blk_queue_default_limits(&lim);
	lim.max_segments = min_t(unsigned int, lim.max_segments, IOV_MAX);
	lim.logical_block_size = d->f.lbs;
	lim.physical_block_size = d->f.pbs;
	ret = backend_init_queue(be, &lim);
	if (ret) {
		snprintf(err, errlen, "cannot set up the queue: %s", strerror(-ret));
		goto out_file;
	}
	ret = mempool_init_kmalloc_pool(&d->io_pool, SYNC_IO_RESERVE,
					sizeof(struct sync_io));
	if (ret)
		goto out_nomem;
	d->io_pool_ok = true;
	if (d->align && posix_memalign(&d->bounce_reserve, PAGE_SIZE,
				       BOUNCE_RESERVE_BYTES)) {
		d->bounce_reserve = NULL;
		ret = -ENOMEM;
		goto out_nomem;
	}
	ret = sync_start_workers(d, workers);
	if (ret) {
		snprintf(err, errlen, "cannot start %u worker threads: %s", workers,
			 strerror(-ret));
		goto out_workers;
	}
	be->priv = d;
	return 0;

out_workers:
	sync_stop_workers(d);
	goto out_queue;
out_nomem:
	snprintf(err, errlen, "out of memory");
out_queue:
	blk_queue_exit(&be->queue);
out_file:
	file_dev_close(&d->f);
	sync_dev_free(d);
	return ret;
}

static void sync_close(struct backend *be)
{
	struct sync_dev *d = be->priv;

	/* Nothing is in flight, so the queue is empty and the workers idle. */
	sync_stop_workers(d);
	blk_queue_exit(&be->queue);
	file_dev_close(&d->f);
	sync_dev_free(d);
}

const struct backend_ops backend_sync_ops = {
	.name = "sync",
	.open = sync_open,
	.close = sync_close,
	.queue_rq = sync_queue_rq,
	.extents = sync_extents,
};
