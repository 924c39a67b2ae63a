/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_LOG_H
#define BLOCKD_DAEMON_LOG_H

#include <stdbool.h>
#include <syslog.h>

/*
 * The daemon's log: standard error in the foreground, syslog (which is
 * journald under systemd) in the background.  Levels are syslog's; a
 * message above the configured level is dropped.  Safe from any thread.
 */

/* "error", "warning", "notice", "info" or "debug" to LOG_*; -1 if none. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

/* Call first: sees whether standard error is the journal. */
void log_init(void);
/* Log to syslog from now on, instead of standard error. */
void log_use_syslog(void);
/* Close and reopen the log (SIGHUP): syslog's connection is reopened. */
void log_reopen(void);
void log_set_level(int level);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
