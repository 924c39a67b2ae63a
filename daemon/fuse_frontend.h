/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_FUSE_FRONTEND_H
#define BLOCKD_DAEMON_FUSE_FRONTEND_H

#include <stddef.h>

#include "daemon/export.h"

/*
 * The FUSE front end: a FUSE mount in which every export is one regular
 * file, DIR/<export name>, that losetup can turn into a block device.
 * Its requests become bios from the export's bio_set and go to the same
 * backend as NBD's, so one export may be open over both at once.
 */

struct fuse_frontend;
struct pgalloc;

/**
 * fuse_frontend_front_pad - the front pad FUSE needs in an export's bio_set
 *
 * Return: the bytes of per-request state the FUSE front end keeps in front
 * of its bios; the export's bio_set must have at least this much.
 */
unsigned int fuse_frontend_front_pad(void);

/**
 * fuse_frontend_prepare - check the mount point and harden the process
 * @mountpoint: the directory to mount on
 * @err: where a message for the user goes
 * @errlen: its size
 *
 * Before anything else starts (threads inherit what this sets): check
 * @mountpoint, recover a stale mount a killed daemon left there, and
 * harden the process against memory pressure (mlockall, PR_SET_IO_FLUSHER,
 * where permitted).
 *
 * Return: 0, or -errno with a message in @err.
 */
int fuse_frontend_prepare(const char *mountpoint, char *err, size_t errlen);

/**
 * fuse_frontend_check_names - check that every export name can be a file name
 * @exports: the exports
 * @nr: how many
 * @err: where a message for the user goes
 * @errlen: its size
 *
 * Return: 0, or -EINVAL with a message in @err.
 */
int fuse_frontend_check_names(struct export **exports, unsigned int nr,
			      char *err, size_t errlen);

/**
 * fuse_frontend_start - mount and serve
 * @out: where the front end goes
 * @mountpoint: the directory to mount on
 * @exports: the exports, one file each; the caller keeps them referenced
 *           until fuse_frontend_stop() returns
 * @nr: how many
 * @pages: the page allocator of the threads' loops and landing pages
 * @nr_threads: session threads, each with its own ioloop
 * @poll_us: how long a loop may spin before it sleeps (ioloop_set_poll())
 * @err: where a message for the user goes
 * @errlen: its size
 *
 * Return: 0 and *@out, or -errno with a message in @err (nothing is left
 * mounted).
 */
int fuse_frontend_start(struct fuse_frontend **out, const char *mountpoint,
			struct export **exports, unsigned int nr,
			struct pgalloc *pages, unsigned int nr_threads,
			unsigned int poll_us, char *err, size_t errlen);

/**
 * fuse_frontend_event_fd - what says the mount went away from outside
 * @fe: the front end, or NULL
 *
 * Return: a descriptor that becomes readable once the mount has gone away
 * from outside (fusermount3 -u, umount): call fuse_frontend_stop() then.
 * -1 for NULL.
 */
int fuse_frontend_event_fd(const struct fuse_frontend *fe);

/**
 * fuse_frontend_stop - stop serving, unmount and free
 * @fe: the front end, or NULL (a no-op)
 *
 * Take no new requests, finish those in flight, flush every writable
 * export, unmount and free.
 */
void fuse_frontend_stop(struct fuse_frontend *fe);

#endif
