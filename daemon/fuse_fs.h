/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_FUSE_FS_H
#define BLOCKD_DAEMON_FUSE_FS_H

#define FUSE_USE_VERSION 35

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/bio.h"
#include "core/ioloop.h"
#include "core/range_lock.h"
#include "daemon/export.h"

/*
 * Internal to the FUSE front end: fuse_frontend.c runs the session
 * threads; fuse_fs.c holds the filesystem's operations, which
 * fuse_meta.c (the directory and its files), fuse_data.c (reads, writes,
 * fsync and fallocate) and fuse_rmw.c (writes of partial blocks) answer;
 * fuse_mountpoint.c looks after the mount point.
 */

/* Largest READ or WRITE the kernel sends (max_write, max_pages). */
#define FUSE_MAX_IO		(1u << 20)
/* Page bios per request: a read unaligned at both ends spans two. */
#define FUSE_MAX_DATA_BIOS	3
/* A WRITE payload at most, in pages. */
#define FUSE_LAND_PAGES		(FUSE_MAX_IO / 4096u)
/* Inode of the root directory; export i is FUSE_ROOT_ID + 1 + i. */
#define FUSE_FIRST_EXPORT_INO	(FUSE_ROOT_ID + 1)

struct fuse_thread;

/*
 * An export as the FUSE front end serves it: the file whose inode is
 * FUSE_FIRST_EXPORT_INO plus its index in fe->exports.
 */
struct fuse_export {
	struct export *ex;
	struct range_lock_tree rmw_locks;	/* its read-modify-writes (fuse_rmw.c) */
};

/* A request that could not get its memory and waits to be retried. */
struct fuse_pending {
	fuse_req_t req;
	struct fuse_export *fx;
	int op;				/* FUSE_PENDING_READ or _WRITE */
	uint64_t off;
	uint32_t len;
	const char *data;		/* WRITE: the payload in the thread's buffer, or NULL in land[] */
};

#define FUSE_PENDING_READ	1
#define FUSE_PENDING_WRITE	2

struct fuse_frontend {
	struct fuse_session *se;
	char *mountpoint;
	struct export **exports;	/* the exports at start, referenced */
	struct fuse_export *fx;		/* the same, with the front end's state */
	unsigned int nr_exports;
	struct pgalloc *pages;
	uid_t uid;
	gid_t gid;
	struct timespec start_time;	/* every inode's times */
	unsigned int nr_threads;
	unsigned int poll_us;
	struct fuse_thread *threads;
	int event_fd;			/* written when the session ends */
	atomic_uint nr_running;		/* threads not yet finished */
	atomic_uint nr_producing;	/* threads that may still hand writes on */
	atomic_bool ended;		/* the kernel ended the session */
	bool mounted;
	bool land;			/* threads read WRITE payloads into pages */
};

struct fuse_thread {
	struct fuse_frontend *fe;
	unsigned int idx;
	pthread_t thread;
	bool started;
	struct ioloop *loop;
	struct fuse_buf buf;		/* the request being processed */
	struct bio *src;		/* describes a WRITE payload for bio_copy_data */
	struct ioloop_op poll_op, cancel_op;
	bool poll_armed;
	bool cancel_armed;
	struct ioloop_work stop_work;
	bool stop;			/* no more requests: stop or end */
	bool has_pending;
	struct fuse_pending pending;
	unsigned int nr_inflight;	/* requests started, not yet answered */
	atomic_uint handoffs;		/* thread 0: writes posted to it, not yet started */
	/*
	 * Other threads: writes handed to thread 0 and not yet answered.
	 * While there is one, the thread reads no more requests (see
	 * fuse_submit_write() in fuse_data.c); thread 0 posts resume_work when the
	 * last is answered, once (resume_posted).
	 */
	atomic_uint writes_out;
	atomic_bool resume_posted;
	struct ioloop_work resume_work;
	bool quiesced;			/* stopped, nothing parked: hands nothing on */
	/*
	 * Pages from fe->pages that the next request is read into past its
	 * WRITE header, so a payload lands where its bio will take it.
	 */
	void *land[FUSE_LAND_PAGES];
	unsigned int nr_land;
	uint32_t landed;		/* bytes of this WRITE's payload in land[] */
};

/* The lowlevel operations of fuse_fs.c. */
extern const struct fuse_lowlevel_ops fuse_fs_ops;

/**
 * fuse_current_thread - the thread running the current request
 *
 * Return: the calling session thread (set by fuse_frontend.c).
 */
struct fuse_thread *fuse_current_thread(void);

/**
 * fuse_fs_unland - move a landed WRITE payload back into the FUSE buffer
 * @t: the thread whose landing pages hold the payload
 * @data: where libfuse says the payload is
 *
 * For a write served from the buffer (a read-modify-write, or a retry).
 */
void fuse_fs_unland(struct fuse_thread *t, const char *data);

/**
 * fuse_fs_retry_pending - start the request @t parked for want of memory
 * @t: the thread, with has_pending set
 *
 * Return: true if it was started (or answered with an error), false if it
 * is parked again.
 */
bool fuse_fs_retry_pending(struct fuse_thread *t);

/**
 * fuse_fs_may_read - whether @t may read requests now
 * @t: the thread
 *
 * Return: false while a write it handed to thread 0 is not yet answered.
 */
bool fuse_fs_may_read(struct fuse_thread *t);

/**
 * fuse_fs_front_pad - the front pad FUSE needs in an export's bio_set
 *
 * Return: the largest BIO_FRONT_PAD() of the data path's request structs.
 */
unsigned int fuse_fs_front_pad(void);

/**
 * fuse_mountpoint_check - check @dir and recover a stale mount there
 * @dir: the mount point
 * @err: where a message for the user goes
 * @errlen: its size
 *
 * See fuse_frontend_prepare().
 *
 * Return: 0, or -errno with a message in @err.
 */
int fuse_mountpoint_check(const char *dir, char *err, size_t errlen);

#endif
