/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_SOCKETS_H
#define BLOCKD_DAEMON_SOCKETS_H

#include "daemon/listen.h"
#include "daemon/options.h"

/*
 * Open the NBD listeners into @nbd and the stats socket (if any) into
 * @stats: the sockets systemd passed (FileDescriptorName "stats" is the
 * stats socket, any other name NBD), else those @o names, else
 * 127.0.0.1:10809.  0, or -1 after logging why.
 */
int sockets_open(const struct options *o, struct listeners *nbd,
		 struct listeners *stats);

#endif
