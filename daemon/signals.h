/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_SIGNALS_H
#define BLOCKD_DAEMON_SIGNALS_H

/*
 * SIGTERM, SIGINT and SIGHUP are blocked in every thread and read from a
 * signalfd by the main loop, so they arrive as events, not interruptions.
 */

/**
 * signals_open - block them, before any thread starts
 *
 * Return: the signalfd, or -errno.
 */
int signals_open(void);

/**
 * signals_second_is_fatal - the drain has begun
 * @pidfile: removed on the way out; may be NULL
 *
 * From now on SIGTERM or SIGINT ends the process at once (status 1).
 */
void signals_second_is_fatal(const char *pidfile);

#endif
