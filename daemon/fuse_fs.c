/* SPDX-License-Identifier: MIT */
/*
 * The FUSE filesystem: a root directory holding one regular file per
 * export.  Every data request becomes bios from the export's bio_set,
 * chained to one data-less parent bio whose front pad holds the request
 * (struct fuse_io); the parent's completion sends the reply.  A WRITE's
 * payload is either read by the kernel straight into pages that become
 * the page bio's (the thread's landing pages), or, when memory is too
 * short to keep those, copied from the FUSE buffer into the page bios
 * with bio_copy_data; a READ is answered straight from the page bios'
 * pages.  A WRITE that does not cover whole blocks is read-modify-written
 * (start_rmw()).
 *
 * Memory is never waited for on a loop thread: when the bio_set or the
 * page budget says no, the request is parked on its thread, which reads
 * nothing more from /dev/fuse until the request could start.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/page.h"
#include "core/request.h"
#include "daemon/fuse_fs.h"
#include "daemon/stats.h"

/* Data-less requests (zeroing, punching holes) are split at this size. */
#define NODATA_BIO_BYTES	(256u << 20)
/* Page bios are at most one full bvec table. */
#define DATA_BIO_BYTES		(BIO_MAX_VECS * PAGE_SIZE)
/* Extents asked for per lseek query. */
#define SEEK_EXTENTS		64
/* Sizes and names never change while mounted. */
#define ATTR_TIMEOUT		3600.0

enum fuse_io_op { FIO_READ, FIO_WRITE, FIO_NODATA, FIO_RMW_READ };

/* One request, in the front pad of its parent bio. */
struct fuse_io {
	fuse_req_t req;
	struct fuse_thread *t;
	enum fuse_io_op op;
	uint32_t len;			/* bytes for the reply */
	uint32_t skip;			/* READ: bytes read before the asked range */
	int error;			/* a negative errno found while starting */
	unsigned int nr_data;
	struct bio *data[FUSE_MAX_DATA_BIOS];
	struct ioloop_work handoff;	/* a write posted to thread 0, or a granted RMW */
	struct fuse_thread *from;	/* ... the thread that read that write */
	struct bio *parent;		/* ... and the bio it ends */
	/* A read-modify-write: the write, listed in fe->rmw_head while it runs. */
	struct export *ex;
	uint64_t start, end;		/* the whole blocks it rewrites */
	bool rmw, granted;
	struct fuse_io *rmw_next;
	struct fuse_io *ready_next;	/* rmw_unlock()'s list of those to post */
	struct fuse_io *rio;		/* the write: its edge reads */
	/* The edge reads (FIO_RMW_READ): */
	struct fuse_io *wio;		/* the write they are for */
	bool head, tail;		/* data[0] is the first block, data[last] the last */
	/* Counted in the export's stats (not the edge reads, part of their write). */
	struct export_stats *st;
	enum stats_op sop;
	uint64_t sbytes, t0;
	struct bio bio;			/* the parent; last, see BIO_FRONT_PAD() */
};

/* lseek(SEEK_DATA / SEEK_HOLE): extents queries until one answers it. */
struct fuse_seek {
	struct backend_extents_req q;
	fuse_req_t req;
	struct fuse_thread *t;
	struct export *ex;
	int whence;
	struct backend_extent ext[SEEK_EXTENTS];
};

unsigned int fuse_fs_front_pad(void)
{
	return BIO_FRONT_PAD(struct fuse_io, bio);
}

static struct fuse_frontend *req_fe(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct export *ino_export(struct fuse_frontend *fe, fuse_ino_t ino)
{
	if (ino < FUSE_FIRST_EXPORT_INO ||
	    ino - FUSE_FIRST_EXPORT_INO >= fe->nr_exports)
		return NULL;
	return fe->exports[ino - FUSE_FIRST_EXPORT_INO];
}

static int fill_attr(struct fuse_frontend *fe, fuse_ino_t ino, struct stat *st)
{
	struct export *ex;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fe->uid;
	st->st_gid = fe->gid;
	st->st_atim = st->st_mtim = st->st_ctim = fe->start_time;
	st->st_blksize = 4096;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	ex = ino_export(fe, ino);
	if (!ex)
		return -ENOENT;
	st->st_mode = S_IFREG | (ex->be->readonly ? 0400 : 0600);
	st->st_nlink = 1;
	st->st_size = (off_t)ex->be->size;
	/* Allocation is the backend's business; report the whole size. */
	st->st_blocks = (blkcnt_t)(ex->be->size >> 9);
	if (ex->pref_block > 4096)
		st->st_blksize = ex->pref_block;
	return 0;
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Whole 1 MiB requests, and enough of them in flight for QD32 and more. */
	conn->max_write = FUSE_MAX_IO;
	conn->max_background = 128;
	conn->congestion_threshold = 96;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	/*
	 * No writeback cache: dirty pages of the FUSE file would need this
	 * daemon to clean them, which is how loop-on-FUSE deadlocks.
	 */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->time_gran = 1;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_frontend *fe = req_fe(req);
	struct fuse_entry_param e;
	unsigned int i;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (i = 0; i < fe->nr_exports; i++) {
		if (!strcmp(fe->exports[i]->name, name))
			break;
	}
	if (i == fe->nr_exports) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FUSE_FIRST_EXPORT_INO + i;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ATTR_TIMEOUT;
	fill_attr(fe, e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret;

	(void)fi;
	ret = fill_attr(req_fe(req), ino, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* Sizes are fixed: only a no-op truncate and time updates pass. */
static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fuse_frontend *fe = req_fe(req);
	struct export *ex = ino_export(fe, ino);
	const int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			  FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
			  FUSE_SET_ATTR_CTIME;

	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (!ex) {
			fuse_reply_err(req, EISDIR);
			return;
		}
		if (ex->be->readonly) {
			fuse_reply_err(req, EROFS);
			return;
		}
		if ((uint64_t)attr->st_size != ex->be->size) {
			fuse_reply_err(req, EPERM);
			return;
		}
	}
	if (to_set & ~(times | FUSE_SET_ATTR_SIZE)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fs_getattr(req, ino, fi);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fuse_frontend *fe = req_fe(req);
	size_t used = 0;
	unsigned int i, n = fe->nr_exports + 2;
	char *buf;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Entry i is ".", "..", then the exports; its offset cookie is i + 1. */
	for (i = (unsigned int)off; i < n; i++) {
		const char *name = i == 0 ? "." : i == 1 ? ".." : fe->exports[i - 2]->name;
		struct stat st = { 0 };
		size_t len;

		st.st_ino = i < 2 ? FUSE_ROOT_ID : FUSE_FIRST_EXPORT_INO + i - 2;
		st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
		len = fuse_add_direntry(req, buf + used, size - used, name, &st,
					(off_t)i + 1);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct export *ex = ino_export(req_fe(req), ino);

	if (!ex) {
		fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && ex->be->readonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/*
	 * No page cache for the file: what NBD clients write is what FUSE
	 * readers see, and no dirty FUSE pages can wait on this daemon.
	 */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_frontend *fe = req_fe(req);
	struct statvfs sv;
	uint64_t bytes = 0;
	unsigned int i;

	(void)ino;
	for (i = 0; i < fe->nr_exports; i++)
		bytes += fe->exports[i]->be->size;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = bytes / 4096;
	sv.f_files = fe->nr_exports + 1;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static int reply_errno(int err)
{
	err = err < 0 ? -err : err;
	return err > 0 && err < 4096 ? err : EIO;
}

static void rmw_read_done(struct fuse_io *rio, int err);
static void rmw_unlock(struct fuse_io *io);

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

/* An iterator over all of @b's pages, wherever its own has got to. */
static struct bvec_iter bio_whole_iter(const struct bio *b)
{
	struct bvec_iter it = { 0 };
	unsigned int k;

	for (k = 0; k < b->bi_vcnt; k++)
		it.bi_size += b->bi_io_vec[k].bv_len;
	return it;
}

/* The parent bio ended: every bio of the request has. */
static void io_endio(struct bio *parent)
{
	struct fuse_io *io = bio_pad_obj(parent, struct fuse_io, bio);
	struct fuse_thread *t = io->t;
	int err = io->error ? io->error : parent->bi_status;
	unsigned int i;

	if (io->op == FIO_RMW_READ) {
		rmw_read_done(io, err);
	} else if (io->rmw) {
		rmw_unlock(io);
	}
	if (io->st)
		stats_end(io->st, io->sop, io->sbytes, err, io->t0);
	if (io->op == FIO_RMW_READ) {
		/* Answered with the write. */
	} else if (err) {
		fuse_reply_err(io->req, reply_errno(err));
	} else if (io->op == FIO_READ) {
		struct iovec iov[FUSE_MAX_DATA_BIOS * BIO_MAX_VECS];
		uint32_t skip = io->skip, left = io->len;
		int n = 0;

		/* The asked range of the pages; neighbours in memory become one iovec. */
		for (i = 0; i < io->nr_data && left; i++) {
			struct bvec_iter it;
			struct bio_vec bv;
			struct bio *b = io->data[i];

			for_each_bvec_iter(bv, b->bi_io_vec, it, bio_whole_iter(b)) {
				char *p = bvec_virt(&bv);
				uint32_t len = bv.bv_len;

				if (skip >= len) {
					skip -= len;
					continue;
				}
				p += skip;
				len -= skip;
				skip = 0;
				if (len > left)
					len = left;
				if (n && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == p)
					iov[n - 1].iov_len += len;
				else
					iov[n++] = (struct iovec){ p, len };
				left -= len;
				if (!left)
					break;
			}
		}
		fuse_reply_iov(io->req, iov, n);
	} else if (io->op == FIO_WRITE) {
		fuse_reply_write(io->req, io->len);
	} else {
		fuse_reply_err(io->req, 0);
	}
	if (io->from)
		write_answered(io->from);
	for (i = 0; i < io->nr_data; i++)
		bio_put(io->data[i]);
	bio_put(parent);
	t->nr_inflight--;
}

/* A parent bio for a request on @ex, or NULL when the bio_set is empty. */
static struct fuse_io *alloc_io(struct fuse_thread *t, struct export *ex,
				fuse_req_t req, enum fuse_io_op op)
{
	struct bio *parent = bio_alloc_bioset(BLK_GFP_NOWAIT, 0, &ex->bs);
	struct fuse_io *io;

	if (!parent)
		return NULL;
	io = bio_pad_obj(parent, struct fuse_io, bio);
	memset(io, 0, offsetof(struct fuse_io, bio));
	io->req = req;
	io->t = t;
	io->op = op;
	parent->bi_end_io = io_endio;
	return io;
}

/* The request has started: the stats socket counts it from here. */
static void io_account(struct fuse_io *io, struct export *ex, enum stats_op op,
		       uint64_t bytes)
{
	io->st = &ex->stats;
	io->sop = op;
	io->sbytes = bytes;
	io->t0 = stats_now();
	stats_start(io->st);
}

static void free_io(struct fuse_io *io, struct bio *parent)
{
	unsigned int i;

	for (i = 0; i < io->nr_data; i++)
		bio_put(io->data[i]);
	bio_put(parent);
}

/*
 * Allocate the page bios for [@start, @end) of @ex, all or none.  Returns
 * the request, or NULL when memory is short.
 */
static struct fuse_io *alloc_data_io(struct fuse_thread *t, struct export *ex,
				     fuse_req_t req, enum fuse_io_op op,
				     uint64_t start, uint64_t end,
				     struct bio **parentp)
{
	struct fuse_io *io = alloc_io(t, ex, req, op);
	blk_opf_t opf = op == FIO_READ ? REQ_OP_READ : REQ_OP_WRITE;
	struct bio *parent;
	uint64_t off;

	if (!io)
		return NULL;
	parent = &io->bio;
	for (off = start; off < end; ) {
		uint32_t n = end - off > DATA_BIO_BYTES ? DATA_BIO_BYTES : (uint32_t)(end - off);
		struct bio *bio = export_alloc_data_bio(ex, opf, off, n);

		if (!bio) {
			free_io(io, parent);
			return NULL;
		}
		io->data[io->nr_data++] = bio;
		off += n;
	}
	*parentp = parent;
	return io;
}

/* Submit the page bios, then drop the request's own hold on the parent. */
static void submit_now(struct fuse_io *io, struct bio *parent)
{
	unsigned int i;

	io->t->nr_inflight++;
	for (i = 0; i < io->nr_data; i++) {
		/* The reply still needs the pages once the bio has ended. */
		bio_get(io->data[i]);
		bio_chain(io->data[i], parent);
		submit_bio(io->data[i]);
	}
	bio_endio(parent);
}

static void handoff_fn(struct ioloop_work *w)
{
	struct fuse_io *io = container_of(w, struct fuse_io, handoff);
	struct fuse_thread *t = io->t;

	/* A backend may complete it, and free @io, before this returns. */
	submit_now(io, io->parent);
	atomic_fetch_sub(&t->handoffs, 1);
}

/*
 * Writes are submitted, completed and answered on thread 0.  io_uring
 * runs a file's buffered writes one at a time on one worker of a ring,
 * but the workers of two rings write the same file at once and spin on
 * its inode lock: with two FUSE threads, 1 MiB writes on a loop device
 * ran at 0.9x qemu-storage-daemon, with one at 1.27x.  Reads stay on the
 * thread that read them, where two threads are worth it (1 MiB reads
 * fell to 0.67x with one).
 *
 * A thread that has handed a write on reads nothing more until it is
 * answered, so a stream of writes is read by thread 0 too: the write's
 * second copy already keeps io_uring's worker busy on the other CPU, and
 * a second reader only added wake-ups and a third busy thread (1 MiB
 * writes on a loop device at 1.05x qemu-storage-daemon, 1.3x without).
 */
static void submit_data(struct fuse_io *io, struct bio *parent)
{
	struct fuse_thread *owner = &io->t->fe->threads[0];

	if (io->op != FIO_WRITE || io->t == owner) {
		submit_now(io, parent);
		return;
	}
	io->from = io->t;
	atomic_fetch_add(&io->from->writes_out, 1);
	io->t = owner;
	io->parent = parent;
	io->handoff.fn = handoff_fn;
	atomic_fetch_add(&owner->handoffs, 1);
	ioloop_post(owner->loop, &io->handoff);
}

static void park(struct fuse_thread *t, fuse_req_t req, struct export *ex,
		 int op, uint64_t off, uint32_t len, const char *data)
{
	t->has_pending = true;
	t->pending = (struct fuse_pending){
		.req = req, .ex = ex, .op = op, .off = off, .len = len, .data = data,
	};
}

/* 0 started, -EAGAIN parked. */
static int start_read(struct fuse_thread *t, fuse_req_t req, struct export *ex,
		      uint64_t off, uint32_t len)
{
	uint64_t mask = ex->min_block - 1;
	uint64_t start = off & ~mask;
	uint64_t end = (off + len + mask) & ~mask;
	struct bio *parent;
	struct fuse_io *io;

	io = alloc_data_io(t, ex, req, FIO_READ, start, end, &parent);
	if (!io) {
		park(t, req, ex, FUSE_PENDING_READ, off, len, NULL);
		return -EAGAIN;
	}
	io->len = len;
	io->skip = (uint32_t)(off - start);
	io_account(io, ex, STATS_READ, len);
	submit_data(io, parent);
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
			      struct export *ex, uint64_t off, uint32_t len)
{
	unsigned int nr = DIV_ROUND_UP(len, PAGE_SIZE);
	struct fuse_io *io;
	struct bio *parent, *bio;

	if (len > t->landed || nr > t->nr_land) {
		/* Cannot happen: the kernel sent fewer bytes than it said. */
		t->landed = 0;
		fuse_reply_err(req, EIO);
		return 0;
	}
	io = alloc_io(t, ex, req, FIO_WRITE);
	if (!io)
		goto wait;
	parent = &io->bio;
	bio = bio_alloc_bioset(BLK_GFP_NOWAIT, nr, &ex->bs);
	if (!bio) {
		free_io(io, parent);
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
	io_account(io, ex, STATS_WRITE, len);
	submit_data(io, parent);
	return 0;
wait:
	park(t, req, ex, FUSE_PENDING_WRITE, off, len, NULL);
	return -EAGAIN;
}


/*
 * Writes that do not cover whole blocks: read-modify-write.  The payload
 * is copied into page bios for the whole blocks at once (the FUSE buffer
 * is reused for the next request), the first and last block are read
 * into bios of their own, their bytes outside the payload are merged in,
 * and the whole blocks are written.  Two RMWs of one block would lose
 * one's bytes, so RMWs overlapping an earlier one in fe->rmw_head wait
 * for it.  Any other write touching such a block overlaps the payload
 * (it is whole blocks), so those are the writer's own race, as on a disk.
 */

/* Whether an RMW listed before @io overlaps it. Holds rmw_lock. */
static bool rmw_blocked(struct fuse_frontend *fe, const struct fuse_io *io)
{
	const struct fuse_io *x;

	for (x = fe->rmw_head; x != io; x = x->rmw_next)
		if (x->ex == io->ex && x->start < io->end && io->start < x->end)
			return true;
	return false;
}

/* List @io; true if it may start now, else it is posted when it may. */
static bool rmw_lock(struct fuse_frontend *fe, struct fuse_io *io)
{
	struct fuse_io **pp;
	bool granted;

	pthread_mutex_lock(&fe->rmw_lock);
	for (pp = &fe->rmw_head; *pp; pp = &(*pp)->rmw_next)
		;
	io->rmw_next = NULL;
	*pp = io;
	/* Read here: once unlocked, a waiter may be granted and posted. */
	granted = io->granted = !rmw_blocked(fe, io);
	pthread_mutex_unlock(&fe->rmw_lock);
	return granted;
}

static void rmw_resume_fn(struct ioloop_work *w);

/* Unlist @io and post every waiter that may start now to its thread. */
static void rmw_unlock(struct fuse_io *io)
{
	struct fuse_frontend *fe = io->t->fe;
	struct fuse_io **pp, *x, *ready = NULL;

	pthread_mutex_lock(&fe->rmw_lock);
	for (pp = &fe->rmw_head; *pp != io; pp = &(*pp)->rmw_next)
		;
	*pp = io->rmw_next;
	for (x = fe->rmw_head; x; x = x->rmw_next) {
		if (x->granted || rmw_blocked(fe, x))
			continue;
		x->granted = true;
		x->ready_next = ready;
		ready = x;
	}
	pthread_mutex_unlock(&fe->rmw_lock);
	while (ready) {
		x = ready;
		ready = x->ready_next;
		x->handoff.fn = rmw_resume_fn;
		ioloop_post(x->rio->t->loop, &x->handoff);
	}
}

/*
 * @n bytes of @src (an edge read, or the payload in t->src), from @from
 * on, into the write's pages @at bytes into its blocks.  A block may span
 * pages (blocks over 4 KiB), so this goes by iterators throughout.
 */
static void rmw_copy_in(struct fuse_io *io, uint32_t at, struct bio *src,
			uint32_t from, uint32_t n)
{
	struct bvec_iter src_iter = bio_whole_iter(src);
	unsigned int i;

	bvec_iter_advance(src->bi_io_vec, &src_iter, from);
	if (src_iter.bi_size > n)
		src_iter.bi_size = n;
	for (i = 0; i < io->nr_data && src_iter.bi_size; i++) {
		struct bio *dst = io->data[i];
		struct bvec_iter dst_iter = bio_whole_iter(dst);

		if (at >= dst_iter.bi_size) {
			at -= dst_iter.bi_size;
			continue;
		}
		bvec_iter_advance(dst->bi_io_vec, &dst_iter, at);
		at = 0;
		bio_copy_data_iter(dst, &dst_iter, src, &src_iter);
	}
}

/* The edge reads are in: merge the bytes around the payload, then write. */
static void rmw_read_done(struct fuse_io *rio, int err)
{
	struct fuse_io *io = rio->wio;
	uint32_t mb = io->ex->min_block, head = (uint32_t)(rio->skip);
	uint32_t pay_end = rio->len, total = (uint32_t)(io->end - io->start);

	if (err) {
		/* The write ends here, unsubmitted: so does its count. */
		rmw_unlock(io);
		stats_end(io->st, io->sop, io->sbytes, err, io->t0);
		fuse_reply_err(io->req, reply_errno(err));
		free_io(io, io->parent);
		return;
	}
	if (rio->head)
		rmw_copy_in(io, 0, rio->data[0], 0, head);
	if (rio->tail) {
		uint32_t tail_block = total - mb;

		rmw_copy_in(io, pay_end, rio->data[rio->nr_data - 1],
			    pay_end - tail_block, total - pay_end);
	}
	submit_data(io, io->parent);
}

/* Granted after waiting: read the edges on the thread that started it. */
static void rmw_resume_fn(struct ioloop_work *w)
{
	struct fuse_io *io = container_of(w, struct fuse_io, handoff);
	struct fuse_io *rio = io->rio;
	struct fuse_thread *t = rio->t;

	submit_now(rio, rio->parent);
	t->nr_inflight--;	/* the hold taken while it waited */
}

static int start_rmw(struct fuse_thread *t, fuse_req_t req, struct export *ex,
		     uint64_t off, uint32_t len, const char *data)
{
	uint32_t mb = ex->min_block;
	uint64_t start = off & ~(uint64_t)(mb - 1);
	uint64_t end = (off + len + mb - 1) & ~(uint64_t)(mb - 1);
	struct bio *parent, *rparent, *bio;
	struct fuse_io *io, *rio;
	bool head = off & (mb - 1), tail = (off + len) & (mb - 1);

	if (t->landed)
		fuse_fs_unland(t, data);
	io = alloc_data_io(t, ex, req, FIO_WRITE, start, end, &parent);
	if (!io)
		goto wait;
	rio = alloc_io(t, ex, req, FIO_RMW_READ);
	if (!rio) {
		free_io(io, parent);
		goto wait;
	}
	rparent = &rio->bio;
	/* One block holding both edges is read once. */
	if (head && tail && end - start == mb)
		tail = false, rio->tail = true;
	if (head) {
		bio = export_alloc_data_bio(ex, REQ_OP_READ, start, mb);
		if (!bio)
			goto nomem;
		rio->data[rio->nr_data++] = bio;
		rio->head = true;
	}
	if (tail) {
		bio = export_alloc_data_bio(ex, REQ_OP_READ, end - mb, mb);
		if (!bio)
			goto nomem;
		rio->data[rio->nr_data++] = bio;
		rio->tail = true;
	}
	/* The payload as a source bio, as start_write() copies it. */
	bio_reset(t->src, REQ_OP_WRITE);
	bio_add_page(t->src, (void *)data, len, 0);
	rmw_copy_in(io, (uint32_t)(off - start), t->src, 0, len);
	io->len = len;
	io->parent = parent;
	io->ex = ex;
	io->start = start;
	io->end = end;
	io->rmw = true;
	io->rio = rio;
	rio->wio = io;
	rio->parent = rparent;
	rio->skip = (uint32_t)(off - start);
	rio->len = (uint32_t)(off + len - start);
	io_account(io, ex, STATS_WRITE, len);
	if (rmw_lock(t->fe, io)) {
		submit_now(rio, rparent);
	} else {
		/* Held until granted, so the thread outlives the wait. */
		t->nr_inflight++;
	}
	return 0;
nomem:
	free_io(rio, rparent);
	free_io(io, parent);
wait:
	park(t, req, ex, FUSE_PENDING_WRITE, off, len, data);
	return -EAGAIN;
}

static int start_write(struct fuse_thread *t, fuse_req_t req, struct export *ex,
		       uint64_t off, uint32_t len, const char *data)
{
	struct bvec_iter src_iter;
	struct bio *parent;
	struct fuse_io *io;
	unsigned int i;

	if (((off | len) & (ex->min_block - 1)))
		return start_rmw(t, req, ex, off, len, data);
	if (t->landed)
		return start_landed_write(t, req, ex, off, len);
	io = alloc_data_io(t, ex, req, FIO_WRITE, off, off + len, &parent);
	if (!io) {
		park(t, req, ex, FUSE_PENDING_WRITE, off, len, data);
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
	io_account(io, ex, STATS_WRITE, len);
	submit_data(io, parent);
	return 0;
}

bool fuse_fs_retry_pending(struct fuse_thread *t)
{
	struct fuse_pending p = t->pending;

	t->has_pending = false;
	if (p.op == FUSE_PENDING_READ)
		return !start_read(t, p.req, p.ex, p.off, p.len);
	return !start_write(t, p.req, p.ex, p.off, p.len, p.data);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct export *ex = ino_export(req_fe(req), ino);
	uint64_t dev = ex ? ex->be->size : 0;

	(void)fi;
	if (!ex) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= dev || !size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > dev - (uint64_t)off)
		size = dev - (uint64_t)off;
	if (size > FUSE_MAX_IO)
		size = FUSE_MAX_IO;
	start_read(fuse_current_thread(), req, ex, (uint64_t)off, (uint32_t)size);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct export *ex = ino_export(req_fe(req), ino);
	uint64_t dev = ex ? ex->be->size : 0;

	(void)fi;
	if (!ex) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ex->be->readonly) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
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
	/* Unaligned ones are read-modify-written (start_rmw). */
	if (size > FUSE_MAX_IO) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	start_write(fuse_current_thread(), req, ex, (uint64_t)off, (uint32_t)size, buf);
}

/* Data-less bios for [@off, @off + @len), split, chained to one parent. */
static void start_nodata(fuse_req_t req, struct export *ex, blk_opf_t opf,
			 uint64_t off, uint64_t len)
{
	struct fuse_thread *t = fuse_current_thread();
	struct fuse_io *io = alloc_io(t, ex, req, FIO_NODATA);
	struct bio *parent;

	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	parent = &io->bio;
	t->nr_inflight++;
	io_account(io, ex, opf == REQ_OP_FLUSH ? STATS_FLUSH :
		   opf == REQ_OP_DISCARD ? STATS_TRIM : STATS_WRITE_ZEROES, len);
	do {
		uint32_t n = len > NODATA_BIO_BYTES ? NODATA_BIO_BYTES : (uint32_t)len;
		struct bio *bio = bio_alloc_bioset(BLK_GFP_NOWAIT, 0, &ex->bs);

		/* The reserve makes this rare; the part already sent stands. */
		if (!bio) {
			io->error = -ENOMEM;
			break;
		}
		bio->bi_opf = opf;
		bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
		bio->bi_iter.bi_size = n;
		bio->bi_queue = &ex->be->queue;
		bio_chain(bio, parent);
		submit_bio(bio);
		off += n;
		len -= n;
	} while (len);
	bio_endio(parent);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct export *ex = ino_export(req_fe(req), ino);

	(void)datasync;
	(void)fi;
	if (!ex) {
		fuse_reply_err(req, 0);
		return;
	}
	start_nodata(req, ex, REQ_OP_FLUSH, 0, 0);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close(): writes are already with the backend; fsync makes them durable. */
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t length, struct fuse_file_info *fi)
{
	struct export *ex = ino_export(req_fe(req), ino);
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

/* Reply to lseek from @q's extents; false when another query must follow. */
static bool seek_answer(struct fuse_seek *s)
{
	uint64_t size = s->ex->be->size, pos = s->q.offset;
	unsigned int i;

	for (i = 0; i < s->q.nr; i++) {
		const struct backend_extent *e = &s->ext[i];
		bool hole = e->flags & BACKEND_EXTENT_HOLE;
		uint64_t start = e->offset > s->q.offset ? e->offset : s->q.offset;

		if (e->offset + e->length <= s->q.offset)
			continue;
		if (hole == (s->whence == SEEK_HOLE)) {
			fuse_reply_lseek(s->req, (off_t)start);
			return true;
		}
		pos = e->offset + e->length;
	}
	if (pos < size && s->q.nr) {
		s->q.offset = pos;
		s->q.length = size - pos;
		return false;
	}
	/* The end of the file is a hole; past the last data there is no data. */
	if (s->whence == SEEK_HOLE)
		fuse_reply_lseek(s->req, (off_t)size);
	else
		fuse_reply_err(s->req, ENXIO);
	return true;
}

static void seek_done(struct backend_extents_req *q)
{
	struct fuse_seek *s = q->private;

	if (q->status) {
		fuse_reply_err(s->req, reply_errno(q->status));
	} else if (!seek_answer(s)) {
		q->nr = 0;
		backend_extents(s->ex->be, q);
		return;
	}
	s->t->nr_inflight--;
	free(s);
}

static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct export *ex = ino_export(req_fe(req), ino);
	struct fuse_seek *s;

	(void)fi;
	if (!ex) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0 || (uint64_t)off >= ex->be->size) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	s->req = req;
	s->t = fuse_current_thread();
	s->ex = ex;
	s->whence = whence;
	s->q.offset = (uint64_t)off;
	s->q.length = ex->be->size - (uint64_t)off;
	s->q.ext = s->ext;
	s->q.max = SEEK_EXTENTS;
	s->q.done = seek_done;
	s->q.private = s;
	s->t->nr_inflight++;
	backend_extents(ex->be, &s->q);
}

const struct fuse_lowlevel_ops fuse_fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.release = fs_release,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.statfs = fs_statfs,
	.fallocate = fs_fallocate,
	.lseek = fs_lseek,
};
