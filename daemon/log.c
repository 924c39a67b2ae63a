/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/log.h"

static atomic_int level = LOG_INFO;
static atomic_bool use_syslog;
static bool journal_stderr;

static const char *const names[] = {
	[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

int log_level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		if (names[i] && !strcmp(s, names[i]))
			return i;
	}
	return -1;
}

const char *log_level_name(int l)
{
	if (l < 0 || l >= (int)(sizeof(names) / sizeof(names[0])) || !names[l])
		return "info";
	return names[l];
}

void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* Under systemd, standard error may be the journal's stream. */
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st))
		journal_stderr = st.st_dev == dev && st.st_ino == ino;
}

void log_set_level(int l)
{
	atomic_store(&level, l);
}

void log_use_syslog(void)
{
	openlog("blockd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store(&use_syslog, true);
}

void log_reopen(void)
{
	if (!atomic_load(&use_syslog))
		return;
	closelog();
	openlog("blockd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_msg(int l, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (l > atomic_load(&level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (atomic_load(&use_syslog)) {
		syslog(l, "%s", buf);
		return;
	}
	/* The journal takes the level from a "<N>" prefix. */
	if (journal_stderr)
		fprintf(stderr, "<%d>blockd: %s\n", l, buf);
	else
		fprintf(stderr, "blockd: %s\n", buf);
}
