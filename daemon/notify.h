/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_NOTIFY_H
#define BLOCKD_DAEMON_NOTIFY_H

#include <stdbool.h>

/*
 * systemd integration through libsystemd's sd-daemon: readiness and
 * status for Type=notify, and sockets passed by socket activation.  Built
 * without libsystemd, notifications do nothing and no sockets are passed.
 */

/* Tell the service manager: READY=1, STOPPING=1, RELOADING=1... */
void notify_ready(const char *status);
void notify_stopping(void);
void notify_reloading(void);
/* STATUS=@fmt... (shown by systemctl status). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One socket from the service manager. */
struct notify_fd {
	int fd;
	char name[64];		/* its FileDescriptorName=; "unknown" if none */
};

/*
 * The sockets passed by socket activation, from fd 3 on, made
 * close-on-exec; the environment variables that passed them are removed.
 * Returns their number (0: none), or -errno; *@fds is for free().
 */
int notify_listen_fds(struct notify_fd **fds);

/* Whether the daemon was built with libsystemd. */
bool notify_available(void);

#endif
