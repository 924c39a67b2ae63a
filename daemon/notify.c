/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "daemon/notify.h"

bool notify_available(void)
{
#ifdef HAVE_LIBSYSTEMD
	return true;
#else
	return false;
#endif
}

#ifdef HAVE_LIBSYSTEMD
void notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing requests in flight");
}

void notify_reloading(void)
{
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
}

void notify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
}

int notify_listen_fds(struct notify_fd **out)
{
	char **names = NULL;
	struct notify_fd *fds;
	int n, i;

	*out = NULL;
	n = sd_listen_fds_with_names(1, &names);
	if (n <= 0)
		return n;
	fds = calloc((size_t)n, sizeof(*fds));
	if (!fds) {
		for (i = 0; names && names[i]; i++)
			free(names[i]);
		free(names);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fds[i].fd = fd;
		snprintf(fds[i].name, sizeof(fds[i].name), "%s",
			 names && names[i] ? names[i] : "unknown");
	}
	for (i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	*out = fds;
	return n;
}
#else
void notify_ready(const char *status)
{
	(void)status;
}

void notify_stopping(void)
{
}

void notify_reloading(void)
{
}

void notify_status(const char *fmt, ...)
{
	(void)fmt;
}

int notify_listen_fds(struct notify_fd **out)
{
	*out = NULL;
	return 0;
}
#endif
