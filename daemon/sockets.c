/* SPDX-License-Identifier: MIT */
/*
 * Which sockets to serve.  Sockets passed by systemd win over configured
 * ones: the socket unit owns those paths and ports, and binding them
 * again would fail or, for a stale unix path, steal it.
 */
#include <config.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/sockets.h"

int sockets_open(const struct options *o, struct listeners *nbd,
		 struct listeners *stats)
{
	struct notify_fd *fds = NULL;
	char err[256];
	unsigned int i;
	int n;

	n = notify_listen_fds(&fds);
	if (n < 0) {
		log_err("socket activation: %s", strerror(-n));
		return -1;
	}
	for (i = 0; i < (unsigned int)n; i++) {
		bool is_stats = !strcmp(fds[i].name, "stats");

		if (listen_adopt(is_stats ? stats : nbd, fds[i].fd, fds[i].name,
				 err, sizeof(err)))
			goto fail;
	}
	free(fds);
	fds = NULL;
	if (n > 0 && (o->nr_unix || o->nr_tcp))
		log_notice("sockets passed by systemd: unix/tcp settings are not used");
	if (!nbd->n && !n) {
		for (i = 0; i < o->nr_unix; i++) {
			if (listen_unix(nbd, o->unix_paths[i], err, sizeof(err)))
				goto fail;
		}
		for (i = 0; i < o->nr_tcp; i++) {
			if (listen_tcp(nbd, o->tcp_addrs[i], err, sizeof(err)))
				goto fail;
		}
		/* FUSE alone is a front end too: no default TCP beside it. */
		if (!o->nr_unix && !o->nr_tcp && !o->fuse_mount &&
		    listen_tcp(nbd, DEFAULT_TCP, err, sizeof(err)))
			goto fail;
	}
	if (!nbd->n && n) {
		log_err("no NBD socket: systemd passed only a stats socket");
		return -1;
	}
	if (!stats->n && o->stats_socket &&
	    listen_unix(stats, o->stats_socket, err, sizeof(err)))
		goto fail;
	for (i = 0; i < nbd->n; i++)
		log_info("listening on %s", nbd->l[i].name);
	for (i = 0; i < stats->n; i++)
		log_info("stats on %s", stats->l[i].name);
	return 0;
fail:
	free(fds);
	log_err("cannot listen: %s", err);
	return -1;
}
