/* SPDX-License-Identifier: MIT */
/*
 * blockd: a userspace block device daemon.
 *
 * The daemon's life: read the command line and config file (nothing is
 * started if they have errors), become a daemon unless --foreground, set
 * up the page budget and the exports, open the listeners (or take them
 * from systemd), start the worker threads, say READY=1 and write the
 * pidfile; then serve until SIGTERM/SIGINT, reloading on SIGHUP; then
 * drain: no new clients, every request in flight answered, every export
 * flushed, sockets and pidfile removed.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/page.h"
#include "daemon/daemonize.h"
#include "daemon/fuse_frontend.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "daemon/nbd_conn.h"
#include "daemon/nbd_worker.h"
#include "daemon/notify.h"
#include "daemon/options.h"
#include "daemon/registry.h"
#include "daemon/reload.h"
#include "daemon/signals.h"
#include "daemon/sockets.h"
#include "daemon/stats_socket.h"

/* Generous: a guest may open the socket and say nothing for a while. */
#define HANDSHAKE_TIMEOUT	60
/* How often STATUS= is refreshed for systemctl status. */
#define STATUS_INTERVAL_MS	2000
/* How often, at most, connections opened and closed are summed up in the log. */
#define CONN_SUMMARY_SECS	60

struct daemon {
	int argc;
	char **argv;
	struct options o;
	struct registry reg;
	struct listeners ls;		/* NBD */
	struct listeners stats_ls;	/* the stats socket */
	struct nbd_server srv;
	struct nbd_worker *ws;
	unsigned int nr_workers;
	struct nbd_workers_summary conn_summary;
	struct pgalloc *pages;
	struct stats_source stats;
	struct fuse_frontend *fe;	/* --fuse-mount */
	struct export **fuse_ex;	/* the exports it serves, referenced */
	unsigned int nr_fuse_ex;
	int sfd;
	char last_status[128];
};

/* The largest payload: 32 MiB, or less when the budget could not hold two. */
static uint32_t max_payload(uint64_t budget)
{
	uint32_t max = NBD_MAX_PAYLOAD;

	while (max > (1u << 20) && max > budget / 2)
		max >>= 1;
	return max;
}

static unsigned int nr_clients(const struct daemon *d)
{
	unsigned int i, n = 0;

	for (i = 0; i < d->nr_workers; i++)
		n += atomic_load(&d->ws[i].nr_conns);
	return n;
}

static void update_status(struct daemon *d)
{
	unsigned int nr, clients = nr_clients(d);
	char status[128];

	nr = registry_count(&d->reg);
	snprintf(status, sizeof(status), "serving %u export%s to %u client%s", nr,
		 nr == 1 ? "" : "s", clients, clients == 1 ? "" : "s");
	if (strcmp(status, d->last_status)) {
		notify_status("%s", status);
		memcpy(d->last_status, status, sizeof(status));
	}
}

/* Mount the FUSE file system with the exports there are now. */
static int start_fuse(struct daemon *d)
{
	char err[256];
	int ret;

	d->fuse_ex = registry_snapshot(&d->reg, &d->nr_fuse_ex);
	if (!d->fuse_ex) {
		log_err("--fuse-mount: out of memory");
		return 1;
	}
	ret = fuse_frontend_start(&d->fe, d->o.fuse_mount, d->fuse_ex, d->nr_fuse_ex,
				  d->pages, d->nr_workers, d->o.poll_us, err, sizeof(err));
	if (ret) {
		log_err("--fuse-mount: %s", err);
		d->fe = NULL;
		return 1;
	}
	log_info("FUSE: exports are files in %s", d->o.fuse_mount);
	return 0;
}

/* Finish FUSE's requests, flush, unmount; then let its exports go. */
static void stop_fuse(struct daemon *d)
{
	fuse_frontend_stop(d->fe);
	d->fe = NULL;
	exports_put_all(d->fuse_ex, d->nr_fuse_ex);
	d->fuse_ex = NULL;
	d->nr_fuse_ex = 0;
}

static void accept_all(struct daemon *d, struct listener *l, bool stats)
{
	char peer[64];
	int fd;

	while ((fd = listen_accept(l, peer, sizeof(peer))) >= 0) {
		if (stats)
			stats_socket_serve(fd, &d->stats);
		else
			nbd_workers_add_conn(d->ws, d->nr_workers, fd, peer);
	}
	/* Out of descriptors: let a moment pass rather than spin. */
	if (errno == EMFILE || errno == ENFILE) {
		log_warn("accept: %s", strerror(errno));
		usleep(100000);
	}
}

/*
 * Accept clients and take signals; returns the signal that stops us, or
 * 0 when the FUSE mount, the only front end, went away.
 */
static int serve(struct daemon *d, const struct export_limits *lim)
{
	unsigned int nls = d->ls.n, n = nls + d->stats_ls.n, i;
	struct pollfd *pfd = calloc(n + 2, sizeof(*pfd));
	struct signalfd_siginfo si;

	if (!pfd)
		return SIGTERM;
	for (i = 0; i < n; i++) {
		pfd[i].fd = i < nls ? d->ls.l[i].fd : d->stats_ls.l[i - nls].fd;
		pfd[i].events = POLLIN;
	}
	pfd[n].fd = d->sfd;
	pfd[n].events = POLLIN;
	/* Readable once the FUSE mount is gone from outside; -1: ignored. */
	pfd[n + 1].fd = fuse_frontend_event_fd(d->fe);
	pfd[n + 1].events = POLLIN;
	for (;;) {
		int r = poll(pfd, n + 2, STATUS_INTERVAL_MS);

		if (r < 0 && errno != EINTR)
			break;
		update_status(d);
		nbd_workers_log_summary(d->ws, d->nr_workers, &d->conn_summary,
					time(NULL), CONN_SUMMARY_SECS);
		if (r <= 0)
			continue;
		if (pfd[n].revents && read(d->sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo != SIGHUP) {
				free(pfd);
				return (int)si.ssi_signo;
			}
			log_info("SIGHUP received: reopening the log, reloading exports");
			notify_reloading();
			log_reopen();
			reload_apply(d->argc, d->argv, d->o.config, &d->reg, lim);
			notify_ready("reloaded");
			d->last_status[0] = '\0';
		}
		if (pfd[n + 1].fd >= 0 && pfd[n + 1].revents) {
			/* Unmounted from outside: that front end stops, NBD goes on. */
			stop_fuse(d);
			pfd[n + 1].fd = -1;
			if (!nls) {
				log_info("no front end left, stopping");
				free(pfd);
				return 0;
			}
		}
		for (i = 0; i < n; i++) {
			if (pfd[i].revents)
				accept_all(d, i < nls ? &d->ls.l[i] : &d->stats_ls.l[i - nls],
					   i >= nls);
		}
	}
	free(pfd);
	return SIGTERM;
}

/* Every acknowledged write reaches the backend's stable storage. */
static void flush_exports(struct daemon *d)
{
	unsigned int nr;
	struct export **ex = registry_snapshot(&d->reg, &nr);

	if (!ex) {
		log_err("cannot flush the exports: out of memory");
		return;
	}
	exports_flush_all(ex, nr, "NBD");
	exports_put_all(ex, nr);
}

static int start(struct daemon *d, struct export_limits *lim)
{
	int ret;

	d->pages = pgalloc_create(d->o.memory, 0, PGALLOC_MLOCK);
	if (!d->pages) {
		log_err("cannot reserve %llu bytes of I/O memory: %s",
			(unsigned long long)d->o.memory, strerror(errno));
		return 1;
	}
	lim->pages = d->pages;
	if (reload_open_exports(&d->reg, &d->o, lim))
		return 1;
	d->srv.reg = &d->reg;
	d->srv.handshake_timeout = HANDSHAKE_TIMEOUT;
	d->srv.poll_us = d->o.poll_us;
	d->srv.budget = d->o.memory;
	d->stats.reg = &d->reg;
	d->stats.pages = d->pages;
	d->stats.started = time(NULL);
	if (sockets_open(&d->o, &d->ls, &d->stats_ls))
		return 1;
	d->nr_workers = d->o.threads;
	if (!d->nr_workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		d->nr_workers = n > 0 ? (unsigned int)n : 1;
	}
	ret = nbd_workers_start(&d->ws, d->nr_workers, &d->srv, d->pages);
	if (ret) {
		log_err("cannot start worker threads: %s", strerror(-ret));
		d->ws = NULL;
		return 1;
	}
	/* Before READY=1: a client told "ready" may open the files at once. */
	if (d->o.fuse_mount && start_fuse(d))
		return 1;
	return 0;
}

/*
 * Before any thread: become a daemon (threads do not survive fork()),
 * take the signals, and prepare the FUSE mount point, whose memory
 * hardening the threads inherit.  0 or 1.
 */
static int prepare(struct daemon *d, struct export_limits *lim)
{
	char err[256];
	int ret;

	if (!d->o.foreground) {
		ret = daemonize_start();
		if (ret) {
			log_err("cannot become a daemon: %s", strerror(-ret));
			return 1;
		}
	}
	d->sfd = signals_open();
	if (d->sfd < 0) {
		log_err("signalfd: %s", strerror(-d->sfd));
		return 1;
	}
	if (!d->o.fuse_mount)
		return 0;
	if (fuse_frontend_prepare(d->o.fuse_mount, err, sizeof(err))) {
		log_err("--fuse-mount: %s", err);
		return 1;
	}
	/* One bio_set serves both front ends: room for the larger state. */
	if (fuse_frontend_front_pad() > lim->front_pad)
		lim->front_pad = fuse_frontend_front_pad();
	return 0;
}

/* Started: write the pidfile, say so in the log and to systemd.  0 or 1. */
static int announce(struct daemon *d, bool *pid_written)
{
	int ret;

	if (d->o.pidfile) {
		ret = pidfile_write(d->o.pidfile);
		if (ret) {
			log_err("pidfile %s: %s", d->o.pidfile, strerror(-ret));
			return 1;
		}
		*pid_written = true;
	}
	log_info("%llu MiB of I/O pages reserved, %u worker threads",
		 (unsigned long long)(d->o.memory >> 20), d->nr_workers);
	log_info("running; stop with Ctrl-C or SIGTERM, reload with SIGHUP");
	if (!d->o.foreground) {
		log_use_syslog();
		daemonize_ready();
	}
	notify_ready("running");
	return 0;
}

/* Stopping on @sig (0: the last front end went away): lose nothing. */
static void drain(struct daemon *d, int sig)
{
	if (sig)
		log_info("%s received: draining; a second one exits at once",
			 sig == SIGINT ? "SIGINT" : "SIGTERM");
	notify_stopping();
	signals_second_is_fatal(d->o.pidfile);
	/* No new clients; the workers finish what their clients started. */
	listen_close_all(&d->ls);
	listen_close_all(&d->stats_ls);
	/* FUSE takes no new requests, finishes, flushes and unmounts. */
	stop_fuse(d);
	nbd_workers_stop(d->ws, d->nr_workers);
	d->ws = NULL;
	flush_exports(d);
	log_info("stopped");
}

/* Free whatever was set up, on every path out. */
static void teardown(struct daemon *d, bool pid_written)
{
	stop_fuse(d);
	listen_close_all(&d->ls);
	listen_close_all(&d->stats_ls);
	nbd_workers_stop(d->ws, d->nr_workers);
	registry_clear(&d->reg);
	pgalloc_destroy(d->pages);
	if (pid_written)
		unlink(d->o.pidfile);
	if (d->sfd >= 0)
		close(d->sfd);
	options_free(&d->o);
}

int main(int argc, char **argv)
{
	struct daemon d = { .argc = argc, .argv = argv, .sfd = -1 };
	struct export_limits lim = { .front_pad = NBD_CMD_PAD };
	enum options_mode mode;
	bool pid_written = false;
	int ret;

	log_init();
	registry_init(&d.reg);
	ret = options_load(argc, argv, NULL, &d.o, &mode);
	if (ret)
		return ret;
	if (mode == MODE_CHECK_CONFIG) {
		options_print(&d.o, stdout);
		options_free(&d.o);
		return 0;
	}
	log_set_level(d.o.log_level);
	lim.max_payload = max_payload(d.o.memory);

	ret = prepare(&d, &lim);
	if (!ret)
		ret = start(&d, &lim);
	if (!ret)
		ret = announce(&d, &pid_written);
	if (!ret)
		drain(&d, serve(&d, &lim));
	if (ret)
		daemonize_failed(ret);
	teardown(&d, pid_written);
	return ret;
}
