/* SPDX-License-Identifier: MIT */
/*
 * Opening files and block devices, and the synchronous operations that
 * both the io_uring and the sync engine use.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/file.h"
#include "core/ioloop.h"
#include "core/page.h"

static int uring_usable;
static pthread_once_t uring_probe_once = PTHREAD_ONCE_INIT;

static void uring_probe(void)
{
	struct io_uring ring;
	int ret;

	if (ioloop_uring_disabled()) {
		uring_usable = -1;
		return;
	}
	ret = io_uring_queue_init(2, &ring, 0);
	if (!ret)
		io_uring_queue_exit(&ring);
	uring_usable = -ret;
}

int file_uring_usable(void)
{
	/* Backends may be opened from several threads at once. */
	pthread_once(&uring_probe_once, uring_probe);
	return uring_usable;
}

/*
 * Open @p->target with @flags into f->fd, creating a missing regular file
 * of @p->size, sparse.  0, or -errno with a message in @err and no fd.
 */
static int open_or_create(struct file_dev *f, const struct backend_params *p,
			  int flags, char *err, size_t errlen)
{
	int e;

	f->fd = open(p->target, flags);
	if (f->fd < 0 && errno == ENOENT && !p->readonly) {
		if (!p->size) {
			snprintf(err, errlen, "%s does not exist; give size=N to create it",
				 p->target);
			return -ENOENT;
		}
		f->fd = open(p->target, flags | O_CREAT | O_EXCL, 0600);
		if (f->fd >= 0 && ftruncate(f->fd, (off_t)p->size)) {
			e = errno;
			close(f->fd);
			f->fd = -1;
			unlink(p->target);
			snprintf(err, errlen, "cannot size %s to %llu bytes: %s", p->target,
				 (unsigned long long)p->size, strerror(e));
			return -e;
		}
	}
	if (f->fd >= 0)
		return 0;
	e = errno;
	snprintf(err, errlen, "cannot open %s: %s%s", p->target, strerror(e),
		 e == EINVAL && f->direct ?
		 " (cache=none needs a filesystem with O_DIRECT)" : "");
	return -e;
}

/* A block device's size and block sizes; a smaller size= caps it. */
static int size_bdev(struct file_dev *f, const struct backend_params *p,
		     char *err, size_t errlen)
{
	uint64_t bytes;
	int lbs = 512, pbs = 4096;

	f->bdev = true;
	if (ioctl(f->fd, BLKGETSIZE64, &bytes)) {
		int e = errno;

		snprintf(err, errlen, "BLKGETSIZE64 on %s: %s", p->target, strerror(e));
		return -e;
	}
	ioctl(f->fd, BLKSSZGET, &lbs);
	ioctl(f->fd, BLKPBSZGET, &pbs);
	f->size = bytes;
	f->lbs = (unsigned int)lbs;
	f->pbs = (unsigned int)pbs;
	if (p->size && p->size < f->size)
		f->size = p->size;
	return 0;
}

/* A regular file's size: a larger size= extends it, a smaller one caps it. */
static int size_regular(struct file_dev *f, const struct backend_params *p,
			const struct stat *st, char *err, size_t errlen)
{
	f->size = (uint64_t)st->st_size;
	if (p->size > f->size && !p->readonly) {
		if (ftruncate(f->fd, (off_t)p->size)) {
			int e = errno;

			snprintf(err, errlen, "cannot extend %s to %llu bytes: %s",
				 p->target, (unsigned long long)p->size, strerror(e));
			return -e;
		}
		f->size = p->size;
	} else if (p->size && p->size < f->size) {
		f->size = p->size;
	}
	/* O_DIRECT alignment: the filesystem block, at least 512. */
	f->lbs = f->direct ? 4096 : 512;
	f->pbs = 4096;
	return 0;
}

/* Size and block sizes of the open f->fd.  0, or -errno with a message. */
static int file_dev_size(struct file_dev *f, const struct backend_params *p,
			 char *err, size_t errlen)
{
	struct stat st;
	int ret;

	if (fstat(f->fd, &st)) {
		int e = errno;

		snprintf(err, errlen, "cannot stat %s: %s", p->target, strerror(e));
		return -e;
	}
	if (S_ISBLK(st.st_mode))
		ret = size_bdev(f, p, err, errlen);
	else if (S_ISREG(st.st_mode))
		ret = size_regular(f, p, &st, err, errlen);
	else {
		snprintf(err, errlen, "%s is neither a regular file nor a block device",
			 p->target);
		ret = -EINVAL;
	}
	if (ret)
		return ret;
	/*
	 * Whole logical blocks only: O_DIRECT cannot write a partial last
	 * block, and both engines must export the same size.
	 */
	f->size &= ~(uint64_t)(f->lbs - 1);
	if (!f->size) {
		snprintf(err, errlen, "%s is smaller than one block; give size=N to extend it",
			 p->target);
		return -EINVAL;
	}
	return 0;
}

int file_dev_open(struct file_dev *f, const struct backend_params *p,
		  char *err, size_t errlen)
{
	int flags = O_CLOEXEC | (p->readonly ? O_RDONLY : O_RDWR);
	int ret;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (p->cache == BACKEND_CACHE_NONE)
		flags |= O_DIRECT;
	f->direct = p->cache == BACKEND_CACHE_NONE;

	ret = open_or_create(f, p, flags, err, errlen);
	if (ret)
		return ret;
	ret = file_dev_size(f, p, err, errlen);
	if (ret) {
		file_dev_close(f);
		return ret;
	}
	f->path = strdup(p->target);
	if (!f->path) {
		file_dev_close(f);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void file_dev_close(struct file_dev *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->path);
	f->path = NULL;
}

void file_dev_describe(const struct file_dev *f, struct backend *be)
{
	be->size = f->size;
	be->logical_block_size = f->lbs;
	be->physical_block_size = f->pbs;
	be->caps = BACKEND_CAP_FLUSH | BACKEND_CAP_FUA | BACKEND_CAP_TRIM |
		   BACKEND_CAP_WRITE_ZEROES | BACKEND_CAP_FAST_ZERO |
		   BACKEND_CAP_MULTI_CONN;
	/* One fd serves every submitter, so a flush covers all their writes. */
	if (!f->bdev)
		be->caps |= BACKEND_CAP_EXTENTS | BACKEND_CAP_ZERO_DETECT;
}

int file_dev_discard(struct file_dev *f, uint64_t off, uint64_t len)
{
	if (f->bdev) {
		uint64_t range[2] = { off, len };

		return ioctl(f->fd, BLKDISCARD, range) ? -errno : 0;
	}
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len))
		return -errno;
	return 0;
}

int file_dev_zero_range(struct file_dev *f, uint64_t off, uint64_t len,
			bool may_unmap)
{
	int ret;

	if (f->bdev) {
		uint64_t range[2] = { off, len };

		return ioctl(f->fd, BLKZEROOUT, range) ? -errno : 0;
	}
	if (may_unmap) {
		ret = file_dev_discard(f, off, len);
		if (!ret || (ret != -EOPNOTSUPP && ret != -ENOSYS))
			return ret;
	}
	if (fallocate(f->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len)) {
		ret = -errno;
		return ret == -ENOSYS ? -EOPNOTSUPP : ret;
	}
	return 0;
}

int file_dev_write_zeros(struct file_dev *f, uint64_t off, uint64_t len)
{
	static const char zeros[64 * 1024] __attribute__((aligned(4096)));

	while (len) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		ssize_t r = pwrite(f->fd, zeros, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

int file_dev_extents(struct file_dev *f, struct backend_extents_req *req)
{
	uint64_t pos = req->offset, end = req->offset + req->length;

	req->nr = 0;
	if (end > f->size)
		end = f->size;
	if (f->bdev || pos >= end) {
		if (pos < end && req->max) {
			req->ext[0] = (struct backend_extent){ pos, end - pos, 0 };
			req->nr = 1;
		}
		return 0;
	}
	while (pos < end && req->nr < req->max) {
		off_t data = lseek(f->fd, (off_t)pos, SEEK_DATA), hole;
		struct backend_extent *e = &req->ext[req->nr];

		if (data < 0 && errno != ENXIO)
			return req->nr ? 0 : -errno;
		if (data < 0 || (uint64_t)data >= end)
			data = (off_t)end;	/* a hole to the end */
		if ((uint64_t)data > pos) {
			*e = (struct backend_extent){ pos, (uint64_t)data - pos,
						      BACKEND_EXTENT_HOLE | BACKEND_EXTENT_ZERO };
			req->nr++;
			pos = (uint64_t)data;
			continue;
		}
		hole = lseek(f->fd, (off_t)pos, SEEK_HOLE);
		if (hole < 0)
			return req->nr ? 0 : -errno;
		if ((uint64_t)hole > end)
			hole = (off_t)end;
		*e = (struct backend_extent){ pos, (uint64_t)hole - pos, 0 };
		req->nr++;
		pos = (uint64_t)hole;
	}
	return 0;
}
