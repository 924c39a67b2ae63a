/* SPDX-License-Identifier: MIT */
/*
 * The mount point, before mounting: it must be a directory nobody has
 * mounted on.  A daemon that was killed leaves its FUSE mount behind with
 * no one serving it: every access fails with ENOTCONN ("Transport endpoint
 * is not connected"), or ECONNABORTED once the kernel has seen the abort.
 * That one we recover by a lazy unmount, which is
 * what fusermount3 -u -z does; anything else is reported with the command
 * that fixes it.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/fuse_fs.h"
#include "daemon/log.h"

/* fusermount3 -u -z DIR, for when we may not unmount ourselves. */
static int run_fusermount(const char *dir)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", dir, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EPERM;
}

static int recover_stale(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (umount2(dir, MNT_DETACH) && run_fusermount(dir)) {
		snprintf(err, errlen,
			 "%s is a dead FUSE mount (Transport endpoint is not connected), "
			 "left by a daemon that was killed; unmount it with: fusermount3 -u -z %s",
			 dir, dir);
		return -ENOTCONN;
	}
	if (stat(dir, &st)) {
		snprintf(err, errlen, "%s: %s after unmounting a dead FUSE mount there",
			 dir, strerror(errno));
		return -errno;
	}
	log_warn("%s was a dead FUSE mount left by a killed daemon; unmounted it",
		dir);
	return 0;
}

int fuse_mountpoint_check(const char *dir, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	struct stat st, pst;
	int ret;

	if (stat(dir, &st)) {
		ret = -errno;
		if (errno == ENOTCONN || errno == ECONNABORTED)
			return recover_stale(dir, err, errlen);
		if (errno == ENOENT)
			snprintf(err, errlen, "%s does not exist; create it with: mkdir -p %s",
				 dir, dir);
		else
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if (snprintf(parent, sizeof(parent), "%s/..", dir) >= (int)sizeof(parent)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	if (stat(parent, &pst)) {
		snprintf(err, errlen, "%s: %s", parent, strerror(errno));
		return -errno;
	}
	/* A mount point is on another device than its parent (or is "/"). */
	if (st.st_dev != pst.st_dev || st.st_ino == pst.st_ino) {
		struct statfs sf;

		/* stat() may answer from the cache; statfs always asks the server. */
		if (statfs(dir, &sf) && (errno == ENOTCONN || errno == ECONNABORTED))
			return recover_stale(dir, err, errlen);
		snprintf(err, errlen,
			 "%s is already a mount point (another blockd?); unmount it first: umount %s",
			 dir, dir);
		return -EBUSY;
	}
	return 0;
}
