/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_SOCKETS_H
#define BLOCKD_DAEMON_SOCKETS_H

#include "daemon/listen.h"
#include "daemon/options.h"

/**
 * sockets_open - open the NBD listeners and the stats socket
 * @o: the options, naming the sockets
 * @nbd: where the NBD listeners go
 * @stats: where the stats socket goes, if any
 *
 * The sockets are those systemd passed (FileDescriptorName "stats" is the
 * stats socket, any other name NBD), else those @o names, else
 * 127.0.0.1:10809.
 *
 * Return: 0, or -1 after logging why.
 */
int sockets_open(const struct options *o, struct listeners *nbd,
		 struct listeners *stats);

#endif
