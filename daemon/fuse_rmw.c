/* SPDX-License-Identifier: MIT */
/*
 * Writes that do not cover whole blocks: read-modify-write.  The payload
 * is copied into page bios for the whole blocks at once (the FUSE buffer
 * is reused for the next request), the first and last block are read
 * into bios of their own (struct fuse_edge_read), their bytes outside the
 * payload are merged in (fuse_pages.c), and the whole blocks are written
 * as any write is (fuse_submit_write()).
 *
 * Two RMWs of one block would lose one's bytes, so each holds its whole
 * blocks, exclusive, in its export's rmw_locks from before its edge reads
 * until its write has ended; one that overlaps an earlier one waits, and
 * the range lock's grant callback posts it back to its own thread.  Any
 * other write touching such a block overlaps the payload (it is whole
 * blocks), so those are the writer's own race, as on a disk.
 */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "core/blk_lib.h"
#include "daemon/fuse_io.h"
#include "daemon/fuse_pages.h"

/* The whole blocks are written: let the next RMW of them go, and answer. */
static void rmw_endio(struct bio *parent)
{
	struct fuse_rmw *w = bio_pad_obj(parent, struct fuse_rmw, bio);

	range_unlock(&w->fx->rmw_locks, &w->lock);
	fuse_write_end(&w->io);
}

/* The edge reads are in: merge the bytes around the payload, then write. */
static void edges_read(struct fuse_edge_read *e, int err)
{
	struct fuse_rmw *w = e->rmw;
	struct fuse_io *io = &w->io;

	if (err) {
		/* The write ends here, unsubmitted: so does its count. */
		range_unlock(&w->fx->rmw_locks, &w->lock);
		fuse_io_end_stats(io, err);
		fuse_reply_err(io->req, blk_status_to_errno(err));
		fuse_io_free(io);
		return;
	}
	fuse_rmw_merge_edges(io->data, io->nr_data, e->head, e->tail,
			     e->pay_start, e->pay_end, e->total,
			     w->fx->ex->min_block);
	fuse_submit_write(io);
}

/* Give back the edge reads' page bios and their parent. */
static void edges_free(struct fuse_edge_read *e)
{
	unsigned int i;

	for (i = 0; i < e->nr_data; i++)
		bio_put(e->data[i]);
	bio_put(&e->bio);
}

static void edge_endio(struct bio *parent)
{
	struct fuse_edge_read *e = bio_pad_obj(parent, struct fuse_edge_read, bio);
	struct fuse_thread *t = e->t;

	edges_read(e, parent->bi_status);
	edges_free(e);
	t->nr_inflight--;
}

static void submit_edges(struct fuse_edge_read *e)
{
	fuse_submit_chain(e->t, &e->bio, e->data, e->nr_data);
}

/* Granted after waiting: read the edges on the thread that started it. */
static void granted_fn(struct ioloop_work *work)
{
	struct fuse_rmw *w = container_of(work, struct fuse_rmw, granted);
	struct fuse_thread *t = w->edges->t;

	submit_edges(w->edges);
	t->nr_inflight--;	/* the hold taken while it waited */
}

/* range_lock's grant callback: runs on the thread that released the blocks. */
static void rmw_grant(struct range_lock *rl)
{
	struct fuse_rmw *w = container_of(rl, struct fuse_rmw, lock);

	w->granted.fn = granted_fn;
	ioloop_post(w->edges->t->loop, &w->granted);
}

/* The write: a parent and page bios for its whole blocks, or NULL. */
static struct fuse_rmw *alloc_rmw(struct fuse_thread *t, struct fuse_export *fx,
				  fuse_req_t req, uint64_t start, uint64_t end)
{
	struct bio *parent = fuse_alloc_parent(fx->ex, rmw_endio);
	struct fuse_rmw *w;

	if (!parent)
		return NULL;
	w = bio_pad_obj(parent, struct fuse_rmw, bio);
	memset(w, 0, offsetof(struct fuse_rmw, bio));
	fuse_io_init(&w->io, t, req, parent);
	w->fx = fx;
	if (fuse_io_add_data(&w->io, fx->ex, REQ_OP_WRITE, start, end)) {
		fuse_io_free(&w->io);
		return NULL;
	}
	return w;
}

/* A bio reading the block at @off into @e, or NULL. */
static struct bio *edge_bio(struct fuse_edge_read *e, struct export *ex,
			    uint64_t off)
{
	struct bio *b = blk_alloc_data_bio(&ex->bs, &ex->be->queue, REQ_OP_READ,
					   off, ex->min_block);

	if (b)
		e->data[e->nr_data++] = b;
	return b;
}

/* The edge reads of a write of [@off, @off + @len) over [@start, @end), or NULL. */
static struct fuse_edge_read *alloc_edges(struct fuse_thread *t,
					  struct export *ex, uint64_t off,
					  uint32_t len, uint64_t start,
					  uint64_t end)
{
	uint32_t mb = ex->min_block;
	bool head = off & (mb - 1), tail = (off + len) & (mb - 1);
	struct bio *parent = fuse_alloc_parent(ex, edge_endio);
	struct fuse_edge_read *e;

	if (!parent)
		return NULL;
	e = bio_pad_obj(parent, struct fuse_edge_read, bio);
	memset(e, 0, offsetof(struct fuse_edge_read, bio));
	e->t = t;
	e->pay_start = (uint32_t)(off - start);
	e->pay_end = (uint32_t)(off + len - start);
	e->total = (uint32_t)(end - start);
	if (head) {
		e->head = edge_bio(e, ex, start);
		if (!e->head)
			goto nomem;
	}
	if (tail && head && e->total == mb) {
		/* One block holding both edges is read once. */
		e->tail = e->head;
	} else if (tail) {
		e->tail = edge_bio(e, ex, end - mb);
		if (!e->tail)
			goto nomem;
	}
	return e;
nomem:
	edges_free(e);
	return NULL;
}

int fuse_rmw_start(struct fuse_thread *t, fuse_req_t req, struct fuse_export *fx,
		   uint64_t off, uint32_t len, const char *data)
{
	struct export *ex = fx->ex;
	uint32_t mb = ex->min_block;
	uint64_t start = off & ~(uint64_t)(mb - 1);
	uint64_t end = (off + len + mb - 1) & ~(uint64_t)(mb - 1);
	struct fuse_edge_read *e;
	struct fuse_rmw *w;

	if (t->landed)
		fuse_fs_unland(t, data);
	w = alloc_rmw(t, fx, req, start, end);
	if (!w)
		goto wait;
	e = alloc_edges(t, ex, off, len, start, end);
	if (!e) {
		fuse_io_free(&w->io);
		goto wait;
	}
	e->rmw = w;
	w->edges = e;
	/* The payload as a source bio, as a whole-block write copies it. */
	bio_reset(t->src, REQ_OP_WRITE);
	bio_add_page(t->src, (void *)data, len, 0);
	fuse_rmw_copy_in(w->io.data, w->io.nr_data, e->pay_start, t->src, 0, len);
	w->io.len = len;
	fuse_io_account(&w->io, ex, STATS_WRITE, len);
	if (range_lock_try(&fx->rmw_locks, &w->lock, start, end, true, rmw_grant))
		submit_edges(e);
	else
		t->nr_inflight++;	/* held until granted: the thread outlives the wait */
	return 0;
wait:
	fuse_park(t, req, fx, FUSE_PENDING_WRITE, off, len, data);
	return -EAGAIN;
}
