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

/**
 * listen_unix - bind and listen on a unix socket
 * @ls: the listeners it joins
 * @path: the socket's path
 * @err: a message for the user
 * @errlen: its size
 *
 * Return: 0, or -errno with a message in @err.
 */
int listen_unix(struct listeners *ls, const char *path, char *err, size_t errlen);

/**
 * listen_tcp - bind and listen on TCP
 * @ls: the listeners it joins
 * @spec: ADDR:PORT, [V6ADDR]:PORT or :PORT
 * @err: a message for the user
 * @errlen: its size
 *
 * Return: 0 or -errno.
 */
int listen_tcp(struct listeners *ls, const char *spec, char *err, size_t errlen);

/**
 * listen_adopt - take over a listening socket passed by the service manager
 * @ls: the listeners it joins
 * @fd: the socket, unix or TCP; made non-blocking
 * @label: names it in logs
 * @err: a message for the user
 * @errlen: its size
 *
 * Return: 0 or -errno.
 */
int listen_adopt(struct listeners *ls, int fd, const char *label, char *err,
		 size_t errlen);

/**
 * listen_accept - accept one connection on @l
 * @l: the listener
 * @peer: the peer's name
 * @peerlen: its size
 *
 * Return: a non-blocking socket (TCP_NODELAY for TCP), or -1 with errno
 * when there is none.
 */
int listen_accept(const struct listener *l, char *peer, size_t peerlen);

/**
 * listen_close_all - close every listener and remove the unix sockets
 * @ls: the listeners
 */
void listen_close_all(struct listeners *ls);

#endif
