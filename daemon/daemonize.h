/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_DAEMONIZE_H
#define BLOCKD_DAEMON_DAEMONIZE_H

/*
 * Becoming a background daemon the traditional way: fork, setsid, fork
 * again, so the daemon is no session leader and can never regain a
 * terminal.  The process that was started waits on a pipe until the
 * daemon says it is ready (then exits 0) or fails (then exits with the
 * daemon's status), so "blockd && nbdinfo ..." works in scripts and
 * SysV-style init sees start-up errors.
 */

/**
 * daemonize_start - fork
 *
 * Return: 0 in the daemon, -errno on failure (nothing forked).
 */
int daemonize_start(void);

/**
 * daemonize_ready - in the daemon: start-up is complete
 *
 * Standard input, output and error become /dev/null and the starter exits
 * 0.
 */
void daemonize_ready(void);

/**
 * daemonize_failed - in the daemon: start-up failed
 * @status: the starter exits with it
 */
void daemonize_failed(int status);

/**
 * pidfile_write - write our pid to @path
 * @path: the pidfile
 *
 * Atomically: a temporary file renamed into place, so a reader never sees
 * it half-written.
 *
 * Return: 0 or -errno.
 */
int pidfile_write(const char *path);

#endif
