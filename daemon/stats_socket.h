/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_STATS_SOCKET_H
#define BLOCKD_DAEMON_STATS_SOCKET_H

#include <time.h>

#include "core/page.h"
#include "daemon/registry.h"

/*
 * The stats socket: whoever connects reads one JSON document (see
 * blockd(8)) and the connection is closed; contrib/blockd-stat prints it.
 */
struct stats_source {
	struct registry *reg;
	struct pgalloc *pages;
	time_t started;
};

/**
 * stats_socket_serve - write the document to an accepted socket and close it
 * @fd: the socket
 * @src: what the document counts
 */
void stats_socket_serve(int fd, const struct stats_source *src);

#endif
