/* SPDX-License-Identifier: MIT */
/*
 * The FUSE filesystem's metadata: the root directory and its one regular
 * file per export (lookup, attributes, readdir, open, statfs), and lseek's
 * SEEK_DATA / SEEK_HOLE from the backend's extents.  Sizes and names never
 * change while mounted.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon/fuse_io.h"

/* Extents asked for per lseek query. */
#define SEEK_EXTENTS		64
/* Sizes and names never change while mounted. */
#define ATTR_TIMEOUT		3600.0

/* lseek(SEEK_DATA / SEEK_HOLE): extents queries until one answers it. */
struct fuse_seek {
	struct backend_extents_req q;
	fuse_req_t req;
	struct fuse_thread *t;
	struct export *ex;
	int whence;
	struct backend_extent ext[SEEK_EXTENTS];
};

static struct export *ino_export(struct fuse_frontend *fe, fuse_ino_t ino)
{
	struct fuse_export *fx = fuse_ino_export(fe, ino);

	return fx ? fx->ex : NULL;
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

void fuse_meta_init(void *userdata, struct fuse_conn_info *conn)
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

void fuse_meta_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_frontend *fe = fuse_req_fe(req);
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

void fuse_meta_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret;

	(void)fi;
	ret = fill_attr(fuse_req_fe(req), ino, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* Sizes are fixed: only a no-op truncate and time updates pass. */
void fuse_meta_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fuse_frontend *fe = fuse_req_fe(req);
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
	fuse_meta_getattr(req, ino, fi);
}

void fuse_meta_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fuse_frontend *fe = fuse_req_fe(req);
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

void fuse_meta_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct export *ex = ino_export(fuse_req_fe(req), ino);

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

void fuse_meta_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void fuse_meta_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_frontend *fe = fuse_req_fe(req);
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
		fuse_reply_err(s->req, blk_status_to_errno(q->status));
	} else if (!seek_answer(s)) {
		q->nr = 0;
		backend_extents(s->ex->be, q);
		return;
	}
	s->t->nr_inflight--;
	free(s);
}

void fuse_meta_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct export *ex = ino_export(fuse_req_fe(req), ino);
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
