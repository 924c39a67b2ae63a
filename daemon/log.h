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

/**
 * log_level_parse - a level's name to its LOG_*
 * @s: "error", "warning", "notice", "info" or "debug"
 *
 * Return: the LOG_* level, or -1 if @s names none.
 */
int log_level_parse(const char *s);

/**
 * log_level_name - a LOG_* level's name, as log_level_parse() takes it
 * @level: the level
 *
 * Return: the name; "info" for a level without one.
 */
const char *log_level_name(int level);

/**
 * log_init - call first: sees whether standard error is the journal
 */
void log_init(void);

/**
 * log_use_syslog - log to syslog from now on, instead of standard error
 */
void log_use_syslog(void);

/**
 * log_reopen - close and reopen the log (SIGHUP)
 *
 * Syslog's connection is reopened.
 */
void log_reopen(void);

/**
 * log_set_level - drop messages above @level from now on
 * @level: LOG_*
 */
void log_set_level(int level);

/**
 * log_msg - log a message, unless it is above the configured level
 * @level: LOG_*
 * @fmt: printf format
 */
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)	log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
