/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_NOTIFY_H
#define BLOCKD_DAEMON_NOTIFY_H

#include <stdbool.h>

/*
 * systemd integration through libsystemd's sd-daemon: readiness and
 * status for Type=notify, and sockets passed by socket activation.  Built
 * without libsystemd, notifications do nothing and no sockets are passed.
 */

/**
 * notify_ready - tell the service manager READY=1
 * @status: its STATUS=
 */
void notify_ready(const char *status);

/**
 * notify_stopping - tell the service manager STOPPING=1
 */
void notify_stopping(void);

/**
 * notify_reloading - tell the service manager RELOADING=1
 */
void notify_reloading(void);

/**
 * notify_status - tell the service manager STATUS=
 * @fmt: printf format of the status (shown by systemctl status)
 */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One socket from the service manager. */
struct notify_fd {
	int fd;
	char name[64];		/* its FileDescriptorName=; "unknown" if none */
};

/**
 * notify_listen_fds - the sockets passed by socket activation
 * @fds: set to them, from fd 3 on, made close-on-exec; for free()
 *
 * The environment variables that passed them are removed.
 *
 * Return: their number (0: none), or -errno.
 */
int notify_listen_fds(struct notify_fd **fds);

/**
 * notify_available - whether the daemon was built with libsystemd
 *
 * Return: true when it was.
 */
bool notify_available(void);

#endif
