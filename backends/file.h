/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_BACKENDS_FILE_H
#define BLOCKD_BACKENDS_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"

/*
 * Files and block devices, whatever engine moves their data: opening (a
 * missing file is created sparse at the given size), sizes and block
 * sizes, and the synchronous operations both engines share.
 */

/* The two engines for "file:" specs. */
extern const struct backend_ops backend_uring_ops;	/* uring.c */
extern const struct backend_ops backend_sync_ops;	/* sync.c */

/**
 * file_uring_usable - whether this process can use io_uring
 *
 * Probed once.
 *
 * Return: 0, a positive errno from io_uring_setup (EPERM, ENOSYS...), or
 * -1 when BLOCKD_NO_IO_URING is set.
 */
int file_uring_usable(void);

struct file_dev {
	int fd;
	char *path;
	bool bdev;		/* a block device, not a regular file */
	bool direct;		/* opened O_DIRECT (cache=none) */
	uint64_t size;
	unsigned int lbs;	/* logical block size */
	unsigned int pbs;	/* physical block size */
};

/**
 * file_dev_open - open a file or block device for @p
 * @f: filled
 * @p: the spec: O_DIRECT for cache=none, read-only for readonly
 * @err: a message on failure
 * @errlen: its size
 *
 * A missing regular file is created, sparse, of @p->size (which is then
 * required).  An existing file keeps its size unless @p->size is larger,
 * when it is extended; a smaller @p->size caps what is exported.  The
 * size is whole logical blocks.
 *
 * Return: 0, or -errno with a message in @err.
 */
int file_dev_open(struct file_dev *f, const struct backend_params *p,
		  char *err, size_t errlen);

/**
 * file_dev_close - close what file_dev_open() opened
 * @f: the file; closing twice is harmless
 */
void file_dev_close(struct file_dev *f);

/**
 * file_dev_describe - fill @be's size, block sizes and capabilities from @f
 * @f: an open file
 * @be: the backend being opened
 */
void file_dev_describe(const struct file_dev *f, struct backend *be);

/**
 * file_dev_discard - deallocate a range
 * @f: the file
 * @off: first byte
 * @len: bytes
 *
 * PUNCH_HOLE|KEEP_SIZE on files, BLKDISCARD on devices.
 *
 * Return: 0 or -errno.
 */
int file_dev_discard(struct file_dev *f, uint64_t off, uint64_t len);

/**
 * file_dev_zero_range - make a range read as zeros without writing data
 * @f: the file
 * @off: first byte
 * @len: bytes
 * @may_unmap: a hole will do (PUNCH_HOLE rather than ZERO_RANGE on files)
 *
 * ZERO_RANGE or PUNCH_HOLE on files, BLKZEROOUT on devices.
 *
 * Return: 0, -EOPNOTSUPP when only writing zeros would do, or another
 * -errno.
 */
int file_dev_zero_range(struct file_dev *f, uint64_t off, uint64_t len,
			bool may_unmap);

/**
 * file_dev_write_zeros - write zeros with pwrite
 * @f: the file
 * @off: first byte; aligned to the block size under O_DIRECT
 * @len: bytes; the same
 *
 * The last resort for WRITE_ZEROES.
 *
 * Return: 0 or -errno.
 */
int file_dev_write_zeros(struct file_dev *f, uint64_t off, uint64_t len);

/**
 * file_dev_extents - answer an extents query from SEEK_DATA/SEEK_HOLE
 * @f: the file (a block device is all data)
 * @req: the query; its extents are filled
 *
 * Return: 0 or -errno, for req->status.
 */
int file_dev_extents(struct file_dev *f, struct backend_extents_req *req);

#endif
