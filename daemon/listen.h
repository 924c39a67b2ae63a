/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_LISTEN_H
#define BLOCKD_DAEMON_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Listening sockets: unix sockets (mode 0660, removed again on exit) and
 * TCP on IPv4 or IPv6, any number of each.
 */
struct listener {
	int fd;
	bool tcp;
	char *path;		/* a unix socket's path */
	bool owned;		/* we created it: remove it on close */
	char name[128];		/* for logs */
};

struct listeners {
	struct listener *l;
	unsigned int n;
};

/* Bind and listen on @path. 0, or -errno with a message in @err. */
int listen_unix(struct listeners *ls, const char *path, char *err, size_t errlen);

/* Bind and listen on ADDR:PORT, [V6ADDR]:PORT or :PORT. 0 or -errno. */
int listen_tcp(struct listeners *ls, const char *spec, char *err, size_t errlen);

/*
 * Take over @fd, a listening socket passed by the service manager (unix
 * or TCP; made non-blocking).  @label names it in logs.  0 or -errno.
 */
int listen_adopt(struct listeners *ls, int fd, const char *label, char *err,
		 size_t errlen);

/*
 * Accept one connection on @l: a non-blocking socket (TCP_NODELAY for
 * TCP) and the peer's name in @peer; -1 with errno when there is none.
 */
int listen_accept(const struct listener *l, char *peer, size_t peerlen);

/* Close every listener and remove the unix sockets. */
void listen_close_all(struct listeners *ls);

#endif
