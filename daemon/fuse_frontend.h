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

/*
 * Bytes of per-request state the FUSE front end keeps in front of its
 * bios: the export's bio_set must have at least this much front pad.
 */
unsigned int fuse_frontend_front_pad(void);

/*
 * Before anything else starts (threads inherit what this sets): check
 * @mountpoint, recover a stale mount a killed daemon left there, and
 * harden the process against memory pressure (mlockall, PR_SET_IO_FLUSHER,
 * where permitted).  0, or -errno with a message for the user in @err.
 */
int fuse_frontend_prepare(const char *mountpoint, char *err, size_t errlen);

/*
 * Check that every export name can be a file name.  0, or -EINVAL with
 * a message in @err.
 */
int fuse_frontend_check_names(struct export **exports, unsigned int nr,
			      char *err, size_t errlen);

/*
 * Mount @mountpoint and serve @exports (the caller keeps them referenced
 * until fuse_frontend_stop() returns) on @nr_threads threads, each with
 * its own ioloop whose buffers come from @pages and which spins up to
 * @poll_us before it sleeps (ioloop_set_poll()).  0 and *@out, or -errno
 * with a message in @err (nothing is left mounted).
 */
int fuse_frontend_start(struct fuse_frontend **out, const char *mountpoint,
			struct export **exports, unsigned int nr,
			struct pgalloc *pages, unsigned int nr_threads,
			unsigned int poll_us, char *err, size_t errlen);

/*
 * A descriptor that becomes readable once the mount has gone away from
 * outside (fusermount3 -u, umount): call fuse_frontend_stop() then.  -1
 * for NULL.
 */
int fuse_frontend_event_fd(const struct fuse_frontend *fe);

/*
 * Stop: take no new requests, finish those in flight, flush every
 * writable export, unmount and free.  NULL is a no-op.
 */
void fuse_frontend_stop(struct fuse_frontend *fe);

#endif
