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

/*
 * Whether this process can use io_uring: 0, a positive errno from
 * io_uring_setup (EPERM, ENOSYS...), or -1 when BLOCKD_NO_IO_URING is set.
 * Probed once.
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

/*
 * Open @p->target for @p: O_DIRECT for cache=none, read-only for readonly;
 * create a missing regular file, sparse, of @p->size (which is then
 * required).  An existing file keeps its size unless @p->size is larger,
 * when it is extended.  0, or -errno with a message in @err.
 */
int file_dev_open(struct file_dev *f, const struct backend_params *p,
		  char *err, size_t errlen);
void file_dev_close(struct file_dev *f);

/* Fill @be's size, block sizes and capabilities from @f. */
void file_dev_describe(const struct file_dev *f, struct backend *be);

/* Deallocate a range: PUNCH_HOLE|KEEP_SIZE, or BLKDISCARD. 0 or -errno. */
int file_dev_discard(struct file_dev *f, uint64_t off, uint64_t len);

/*
 * Make a range read as zeros without writing data: ZERO_RANGE (or
 * PUNCH_HOLE when @may_unmap) on files, BLKZEROOUT on devices.  Returns 0,
 * -EOPNOTSUPP when only writing zeros would do, or another -errno.
 */
int file_dev_zero_range(struct file_dev *f, uint64_t off, uint64_t len,
			bool may_unmap);

/*
 * Write zeros with pwrite, the last resort for WRITE_ZEROES.  Under
 * O_DIRECT the range must be aligned to the block size.  0 or -errno.
 */
int file_dev_write_zeros(struct file_dev *f, uint64_t off, uint64_t len);

/* Answer an extents query from SEEK_DATA/SEEK_HOLE (all data on devices). */
int file_dev_extents(struct file_dev *f, struct backend_extents_req *req);

#endif
