/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_SIGNALS_H
#define BLOCKD_DAEMON_SIGNALS_H

/*
 * SIGTERM, SIGINT and SIGHUP are blocked in every thread and read from a
 * signalfd by the main loop, so they arrive as events, not interruptions.
 */

/* Block them (before any thread starts); the signalfd, or -errno. */
int signals_open(void);

/*
 * The drain has begun: from now on SIGTERM or SIGINT ends the process at
 * once (status 1), removing @pidfile (may be NULL) on the way out.
 */
void signals_second_is_fatal(const char *pidfile);

#endif
