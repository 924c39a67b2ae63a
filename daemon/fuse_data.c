/* SPDX-License-Identifier: MIT */
/*
 * The FUSE data path: READ, WRITE, fsync and fallocate become bios from
 * the export's bio_set, chained to one data-less parent bio whose front
 * pad holds the request (fuse_io.h); the parent's completion sends the
 * reply.  A WRITE's payload is either read by the kernel straight into
 * pages that become the page bio's (the thread's landing pages), or, when
 * memory is too short to keep those, copied from the FUSE buffer into the
 * page bios; a READ is answered straight from the page bios' pages.  A
 * WRITE that does not cover whole blocks is read-modify-written
 * (fuse_rmw.c).
 *
 * Memory is never waited for on a loop thread: when the bio_set or the
 * page budget says no, the request is parked on its thread, which reads
 * nothing more from /dev/fuse until the request could start.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>

#include "core/blk_lib.h"
#include "core/page.h"
#include "core/request.h"
#include "daemon/fuse_io.h"
#include "daemon/fuse_pages.h"

struct bio *fuse_alloc_parent(struct export *ex, bio_end_io_t *end_io)
{
	struct bio *parent = bio_alloc_bioset(BLK_GFP_NOWAIT, 0, &ex->bs);

	if (parent)
		parent->bi_end_io = end_io;
	return parent;
}

void fuse_io_init(struct fuse_io *io, struct fuse_thread *t, fuse_req_t req,
		  struct bio *parent)
{
	io->req = req;
	io->t = t;
	io->parent = parent;
}

/* The request has started: the stats socket counts it from here. */
void fuse_io_account(struct fuse_io *io, struct export *ex, enum stats_op op,
		     uint64_t bytes)
{
	io->st = &ex->stats;
	io->sop = op;
	io->sbytes = bytes;
	io->t0 = stats_now();
	stats_start(io->st);
}

void fuse_io_end_stats(struct fuse_io *io, int err)
{
	if (io->st)
		stats_end(io->st, io->sop, io->sbytes, err, io->t0);
}

void fuse_io_free(struct fuse_io *io)
{
	unsigned int i;

	for (i = 0; i < io->nr_data; i++)
		bio_put(io->data[i]);
	bio_put(io->parent);
}

static void resume_fn(struct ioloop_work *w)
{
	struct fuse_thread *t = container_of(w, struct fuse_thread, resume_work);

	/* Waking the loop was the point: it reads again if nothing is out. */
	atomic_store(&t->resume_posted, false);
}

/* On thread 0: a write that @from read and handed on has been answered. */
static void write_answered(struct fuse_thread *from)
{
	if (atomic_fetch_sub(&from->writes_out, 1) != 1)
		return;
	if (!atomic_exchange(&from->resume_posted, true)) {
		from->resume_work.fn = resume_fn;
		ioloop_post(from->loop, &from->resume_work);
	}
}

bool fuse_fs_may_read(struct fuse_thread *t)
{
	return !atomic_load(&t->writes_out);
}

void fuse_io_done(struct fuse_io *io)
{
	struct fuse_thread *t = io->t;

	if (io->from)
		write_answered(io->from);
	fuse_io_free(io);
	t->nr_inflight--;
}

/* The status a request ends with: what it found while starting, or its bios'. */
static int io_status(const struct fuse_io *io)
{
	return io->error ? io->error : io->parent->bi_status;
}

static void read_endio(struct bio *parent)
{
	struct fuse_read *r = bio_pad_obj(parent, struct fuse_read, bio);
	struct iovec iov[FUSE_MAX_DATA_BIOS * BIO_MAX_VECS];
	int err = io_status(&r->io), n;

	fuse_io_end_stats(&r->io, err);
	if (err) {
		fuse_reply_err(r->io.req, blk_status_to_errno(err));
	} else {
		/* The asked range of the pages; neighbours in memory become one iovec. */
		n = fuse_read_iov(r->io.data, r->io.nr_data, r->skip, r->io.len, iov);
		fuse_reply_iov(r->io.req, iov, n);
	}
	fuse_io_done(&r->io);
}

void fuse_write_end(struct fuse_io *io)
{
	int err = io_status(io);

	fuse_io_end_stats(io, err);
	if (err)
		fuse_reply_err(io->req, blk_status_to_errno(err));
	else
		fuse_reply_write(io->req, io->len);
	fuse_io_done(io);
}

static void write_endio(struct bio *parent)
{
	fuse_write_end(&bio_pad_obj(parent, struct fuse_write, bio)->io);
}

/* fsync and fallocate: no data, an empty reply. */
static void nodata_endio(struct bio *parent)
{
	struct fuse_write *w = bio_pad_obj(parent, struct fuse_write, bio);
	int err = io_status(&w->io);

	fuse_io_end_stats(&w->io, err);
	fuse_reply_err(w->io.req, blk_status_to_errno(err));
	fuse_io_done(&w->io);
}

/* A parent for a READ or a whole-block WRITE, or NULL when the bio_set is empty. */
static struct fuse_io *alloc_io(struct fuse_thread *t, struct export *ex,
				fuse_req_t req, bio_end_io_t *end_io)
{
	struct bio *parent = fuse_alloc_parent(ex, end_io);
	struct fuse_io *io;

	if (!parent)
		return NULL;
	if (end_io == read_endio) {
		struct fuse_read *r = bio_pad_obj(parent, struct fuse_read, bio);

		memset(r, 0, offsetof(struct fuse_read, bio));
		io = &r->io;
	} else {
		struct fuse_write *w = bio_pad_obj(parent, struct fuse_write, bio);

		memset(w, 0, offsetof(struct fuse_write, bio));
		io = &w->io;
	}
	fuse_io_init(io, t, req, parent);
	return io;
}

int fuse_io_add_data(struct fuse_io *io, struct export *ex, blk_opf_t opf,
		     uint64_t start, uint64_t end)
{
	int n;

	/* FUSE_MAX_DATA_BIOS covers the largest request: only memory fails. */
	n = blk_alloc_data_bios(&ex->bs, &ex->be->queue, opf, start, end - start,
				io->data, FUSE_MAX_DATA_BIOS);
	if (n < 0)
		return -ENOMEM;
	io->nr_data = (unsigned int)n;
	return 0;
}

/* A request with page bios for [@start, @end) of @ex, or NULL when memory is short. */
static struct fuse_io *alloc_data_io(struct fuse_thread *t, struct export *ex,
				     fuse_req_t req, bio_end_io_t *end_io,
				     uint64_t start, uint64_t end)
{
	struct fuse_io *io = alloc_io(t, ex, req, end_io);
	blk_opf_t opf = end_io == read_endio ? REQ_OP_READ : REQ_OP_WRITE;

	if (!io)
		return NULL;
	if (fuse_io_add_data(io, ex, opf, start, end)) {
		fuse_io_free(io);
		return NULL;
	}
	return io;
}

void fuse_submit_chain(struct fuse_thread *t, struct bio *parent,
		       struct bio *const *data, unsigned int nr)
{
	unsigned int i;

	t->nr_inflight++;
	for (i = 0; i < nr; i++) {
		/* The reply still needs the pages once the bio has ended. */
		bio_get(data[i]);
		bio_chain_and_submit(parent, data[i]);
	}
	bio_endio(parent);
}

static void submit_now(struct fuse_io *io)
{
	fuse_submit_chain(io->t, io->parent, io->data, io->nr_data);
}

static void handoff_fn(struct ioloop_work *w)
{
	struct fuse_io *io = container_of(w, struct fuse_io, handoff);
	struct fuse_thread *t = io->t;

	/* A backend may complete it, and free @io, before this returns. */
	submit_now(io);
	atomic_fetch_sub(&t->handoffs, 1);
}

/*
 * Writes are submitted, completed and answered on thread 0.  io_uring
 * runs a file's buffered writes one at a time on one worker of a ring,
 * but the workers of two rings write the same file at once and spin on
 * its inode lock, so one thread writing beats two.  Reads stay on the
 * thread that read them, where two threads are worth it.
 *
 * A thread that has handed a write on reads nothing more until it is
 * answered, so a stream of writes is read by thread 0 too: the write's
 * second copy already keeps io_uring's worker busy on the other CPU, and
 * a second reader only added wake-ups and a third busy thread.
 */
void fuse_submit_write(struct fuse_io *io)
{
	struct fuse_thread *owner = &io->t->fe->threads[0];

	if (io->t == owner) {
		submit_now(io);
		return;
	}
	io->from = io->t;
	atomic_fetch_add(&io->from->writes_out, 1);
	io->t = owner;
	io->handoff.fn = handoff_fn;
	atomic_fetch_add(&owner->handoffs, 1);
	ioloop_post(owner->loop, &io->handoff);
}

void fuse_park(struct fuse_thread *t, fuse_req_t req, struct fuse_export *fx,
	       int op, uint64_t off, uint32_t len, const char *data)
{
	t->has_pending = true;
	t->pending = (struct fuse_pending){
		.req = req, .fx = fx, .op = op, .off = off, .len = len, .data = data,
	};
}

/* 0 started, -EAGAIN parked. */
static int start_read(struct fuse_thread *t, fuse_req_t req,
		      struct fuse_export *fx, uint64_t off, uint32_t len)
{
	struct export *ex = fx->ex;
	uint64_t mask = ex->min_block - 1;
	uint64_t start = off & ~mask;
	uint64_t end = (off + len + mask) & ~mask;
	struct fuse_io *io;

	io = alloc_data_io(t, ex, req, read_endio, start, end);
	if (!io) {
		fuse_park(t, req, fx, FUSE_PENDING_READ, off, len, NULL);
		return -EAGAIN;
	}
	io->len = len;
	bio_pad_obj(io->parent, struct fuse_read, bio)->skip = (uint32_t)(off - start);
	fuse_io_account(io, ex, STATS_READ, len);
	submit_now(io);
	return 0;
}

/*
 * The payload was read from /dev/fuse straight into the thread's landing
 * pages: they become the page bio's own, so the bytes are copied once
 * (by the kernel, from the writer's pages) instead of twice.  A splice
 * read would not save that copy: the kernel copies direct-I/O writers'
 * pages into the pipe anyway (it cannot bound the pipe buffers' lifetime).
 */
static int start_landed_write(struct fuse_thread *t, fuse_req_t req,
			      struct fuse_export *fx, uint64_t off, uint32_t len)
{
	unsigned int nr = DIV_ROUND_UP(len, PAGE_SIZE);
	struct export *ex = fx->ex;
	struct fuse_io *io;
	struct bio *bio;

	if (len > t->landed || nr > t->nr_land) {
		/* Cannot happen: the kernel sent fewer bytes than it said. */
		t->landed = 0;
		fuse_reply_err(req, EIO);
		return 0;
	}
	io = alloc_io(t, ex, req, write_endio);
	if (!io)
		goto wait;
	bio = bio_alloc_bioset(BLK_GFP_NOWAIT, nr, &ex->bs);
	if (!bio) {
		fuse_io_free(io);
		goto wait;
	}
	bio_adopt_pages(bio, t->land, nr, len);
	bio->bi_opf = REQ_OP_WRITE;
	bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
	bio->bi_queue = &ex->be->queue;
	io->data[io->nr_data++] = bio;
	io->len = len;
	t->nr_land -= nr;
	memmove(t->land, t->land + nr, t->nr_land * sizeof(t->land[0]));
	t->landed = 0;
	fuse_io_account(io, ex, STATS_WRITE, len);
	fuse_submit_write(io);
	return 0;
wait:
	fuse_park(t, req, fx, FUSE_PENDING_WRITE, off, len, NULL);
	return -EAGAIN;
}

static int start_write(struct fuse_thread *t, fuse_req_t req,
		       struct fuse_export *fx, uint64_t off, uint32_t len,
		       const char *data)
{
	struct export *ex = fx->ex;
	struct bvec_iter src_iter;
	struct fuse_io *io;
	unsigned int i;

	if (((off | len) & (ex->min_block - 1)))
		return fuse_rmw_start(t, req, fx, off, len, data);
	if (t->landed)
		return start_landed_write(t, req, fx, off, len);
	io = alloc_data_io(t, ex, req, write_endio, off, off + len);
	if (!io) {
		fuse_park(t, req, fx, FUSE_PENDING_WRITE, off, len, data);
		return -EAGAIN;
	}
	io->len = len;
	/* The source bio describes the payload in the FUSE buffer. */
	bio_reset(t->src, REQ_OP_WRITE);
	bio_add_page(t->src, (void *)data, len, 0);
	src_iter = t->src->bi_iter;
	for (i = 0; i < io->nr_data; i++) {
		struct bvec_iter dst_iter = io->data[i]->bi_iter;

		bio_copy_data_iter(io->data[i], &dst_iter, t->src, &src_iter);
	}
	fuse_io_account(io, ex, STATS_WRITE, len);
	fuse_submit_write(io);
	return 0;
}

bool fuse_fs_retry_pending(struct fuse_thread *t)
{
	struct fuse_pending p = t->pending;

	t->has_pending = false;
	if (p.op == FUSE_PENDING_READ)
		return !start_read(t, p.req, p.fx, p.off, p.len);
	return !start_write(t, p.req, p.fx, p.off, p.len, p.data);
}

/*
 * The export a READ or WRITE at @off is for, or NULL when it has been
 * answered: EISDIR for no export's file, EROFS for writing a read-only one,
 * EINVAL for a negative offset.
 */
static struct fuse_export *rw_export(fuse_req_t req, fuse_ino_t ino, off_t off,
				     bool write)
{
	struct fuse_export *fx = fuse_ino_export(fuse_req_fe(req), ino);
	int err = 0;

	if (!fx)
		err = EISDIR;
	else if (write && fx->ex->be->readonly)
		err = EROFS;
	else if (off < 0)
		err = EINVAL;
	if (err)
		fuse_reply_err(req, err);
	return err ? NULL : fx;
}

void fuse_data_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_export *fx = rw_export(req, ino, off, false);
	uint64_t dev;

	(void)fi;
	if (!fx)
		return;
	dev = fx->ex->be->size;
	if ((uint64_t)off >= dev || !size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > dev - (uint64_t)off)
		size = dev - (uint64_t)off;
	if (size > FUSE_MAX_IO)
		size = FUSE_MAX_IO;
	start_read(fuse_current_thread(), req, fx, (uint64_t)off, (uint32_t)size);
}

void fuse_data_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_export *fx = rw_export(req, ino, off, true);
	uint64_t dev;

	(void)fi;
	if (!fx)
		return;
	dev = fx->ex->be->size;
	if (!size) {
		fuse_reply_write(req, 0);
		return;
	}
	/* The file cannot grow: a write that starts at the end fails, one across it is short. */
	if ((uint64_t)off >= dev) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	if (size > dev - (uint64_t)off)
		size = dev - (uint64_t)off;
	/* Unaligned ones are read-modify-written (fuse_rmw_start). */
	if (size > FUSE_MAX_IO) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	start_write(fuse_current_thread(), req, fx, (uint64_t)off, (uint32_t)size, buf);
}

/* Data-less bios for [@off, @off + @len), split, chained to one parent. */
static void start_nodata(fuse_req_t req, struct export *ex, blk_opf_t opf,
			 uint64_t off, uint64_t len)
{
	struct fuse_thread *t = fuse_current_thread();
	struct fuse_io *io = alloc_io(t, ex, req, nodata_endio);

	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	t->nr_inflight++;
	fuse_io_account(io, ex, opf == REQ_OP_FLUSH ? STATS_FLUSH :
			opf == REQ_OP_DISCARD ? STATS_TRIM : STATS_WRITE_ZEROES, len);
	/* The reserve makes a shortage rare; the part already sent stands. */
	io->error = blk_submit_nodata(io->parent, &ex->bs, &ex->be->queue, opf,
				      off, len);
	bio_endio(io->parent);
}

void fuse_data_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct fuse_export *fx = fuse_ino_export(fuse_req_fe(req), ino);

	(void)datasync;
	(void)fi;
	if (!fx) {
		fuse_reply_err(req, 0);
		return;
	}
	start_nodata(req, fx->ex, REQ_OP_FLUSH, 0, 0);
}

void fuse_data_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close(): writes are already with the backend; fsync makes them durable. */
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void fuse_data_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t length, struct fuse_file_info *fi)
{
	struct fuse_export *fx = fuse_ino_export(fuse_req_fe(req), ino);
	struct export *ex = fx ? fx->ex : NULL;
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	uint64_t dev, end;
	blk_opf_t opf;

	(void)fi;
	if (!ex) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (ex->be->readonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	dev = ex->be->size;
	end = (uint64_t)off + (uint64_t)length;
	if (end > dev) {
		/* Past the end is nothing to do when the size stays; else it would grow. */
		if (!keep) {
			fuse_reply_err(req, EFBIG);
			return;
		}
		end = dev;
	}
	if ((uint64_t)off >= end) {
		fuse_reply_err(req, 0);
		return;
	}
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
		/* Plain allocation: the file already has its full size. */
		fuse_reply_err(req, 0);
		return;
	}
	if (((uint64_t)off | end) & (ex->min_block - 1)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/*
	 * A punched hole must read back as zeros, which a trim does not
	 * promise (a block device may keep the data): ask for zeroes that
	 * may deallocate, which file and memory backends do by punching.
	 * ZERO_RANGE keeps the blocks allocated.
	 */
	if (!(ex->be->caps & BACKEND_CAP_WRITE_ZEROES)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	opf = REQ_OP_WRITE_ZEROES;
	if (mode & FALLOC_FL_ZERO_RANGE)
		opf |= REQ_NOUNMAP;
	start_nodata(req, ex, opf, (uint64_t)off, end - (uint64_t)off);
}

