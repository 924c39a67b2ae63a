/* SPDX-License-Identifier: MIT */
/*
 * blockd: a userspace block device daemon.
 *
 * This is the daemon's entry: it parses the command line, sets up the
 * page budget, opens each export's backend with a bio_set for it, starts
 * the worker threads and accepts NBD clients on the listeners until
 * SIGINT/SIGTERM; with --fuse-mount it also serves every export as a file
 * there (daemon/fuse_frontend.c).
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/bio.h"
#include "core/page.h"
#include "core/size.h"
#include "daemon/export.h"
#include "daemon/export_spec.h"
#include "daemon/fuse_frontend.h"
#include "daemon/listen.h"
#include "daemon/nbd_conn.h"
#include "daemon/worker.h"

#define DEFAULT_MEMORY	(64ull << 20)
#define DEFAULT_TCP	"127.0.0.1:10809"
/* Generous: a guest may open the socket and say nothing for a while. */
#define HANDSHAKE_TIMEOUT	60
#define EXIT_USAGE	2
/* serve(): the FUSE mount went away from outside. */
#define SERVE_FUSE_ENDED	(-1)

struct options {
	bool foreground;
	uint64_t memory;
	unsigned int threads;
	unsigned int nr_exports;
	struct export_spec *exports;
	unsigned int nr_unix, nr_tcp;
	char **unix_paths;
	char **tcp_addrs;
	char *fuse_mount;
};

static int add_string(char ***v, unsigned int *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv)
		return -1;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -1;
	(*n)++;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: blockd [OPTION]... --export SPEC [--export SPEC]...\n"
"Serve files, block devices, RAM, a remote NBD disk or a Ceph RBD image as\n"
"block devices.\n"
"\n"
"  -e, --export SPEC   add an export: NAME=BACKEND:TARGET[,key=value...]\n"
"                      backends: file:PATH, memory:, nbd:URI,\n"
"                      rbd:POOL/IMAGE[@SNAP][,conf=F][,id=C][,cluster=N]%s\n"
"                      keys: size=N, cache=none|writeback, readonly,\n"
"                            engine=auto|uring|sync, queue-depth=N\n"
"                      the first export is also the default export\n"
"  -f, --foreground    stay in the foreground, log to stderr\n"
"  -u, --unix PATH     serve NBD on a unix socket (mode 0660); repeatable\n"
"  -T, --tcp ADDR:PORT serve NBD on TCP ([ADDR]:PORT for IPv6); repeatable;\n"
"                      default 127.0.0.1:10809 when no --unix/--tcp/--fuse-mount\n"
"  -F, --fuse-mount DIR  serve every export as the file DIR/NAME over FUSE\n"
"                      (losetup it to get a block device)\n"
"  -m, --memory SIZE   page budget for I/O buffers (default 64M)\n"
"  -t, --threads N     worker threads (default: one per CPU)\n"
"  -h, --help          show this help and exit\n"
"  -V, --version       show the version and exit\n"
"\n"
"Example:\n"
"  blockd -f --unix /run/blockd.sock --export disk=file:/var/lib/blockd/disk.img,size=1G\n"
"  nbdinfo 'nbd+unix:///disk?socket=/run/blockd.sock'\n"
"\n"
"See blockd(8).\n",
		backend_have_rbd() ? "" :
		"\n                      (rbd: not built in; needs librbd-dev at build time)");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "export", required_argument, NULL, 'e' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "unix", required_argument, NULL, 'u' },
		{ "tcp", required_argument, NULL, 'T' },
		{ "fuse-mount", required_argument, NULL, 'F' },
		{ "memory", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	int c;

	o->memory = DEFAULT_MEMORY;
	while ((c = getopt_long(argc, argv, "e:fu:T:F:m:t:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'e': {
			struct export_spec *n;

			n = realloc(o->exports, (o->nr_exports + 1) * sizeof(*n));
			if (!n) {
				fprintf(stderr, "blockd: out of memory\n");
				return 1;
			}
			o->exports = n;
			if (export_spec_parse(optarg, &o->exports[o->nr_exports],
					      err, sizeof(err))) {
				fprintf(stderr, "blockd: --export: %s\n", err);
				return EXIT_USAGE;
			}
			for (unsigned int i = 0; i < o->nr_exports; i++) {
				if (!strcmp(o->exports[i].name,
					    o->exports[o->nr_exports].name)) {
					fprintf(stderr, "blockd: --export: export '%s' is given twice\n",
						o->exports[i].name);
					o->nr_exports++;
					return EXIT_USAGE;
				}
			}
			o->nr_exports++;
			break;
		}
		case 'f':
			o->foreground = true;
			break;
		case 'u':
		case 'T':
			if (c == 'u' ? add_string(&o->unix_paths, &o->nr_unix, optarg) :
			    add_string(&o->tcp_addrs, &o->nr_tcp, optarg)) {
				fprintf(stderr, "blockd: out of memory\n");
				return 1;
			}
			break;
		case 'F':
			free(o->fuse_mount);
			o->fuse_mount = strdup(optarg);
			if (!o->fuse_mount) {
				fprintf(stderr, "blockd: out of memory\n");
				return 1;
			}
			break;
		case 'm':
			if (parse_size(optarg, &o->memory) || o->memory < 1024 * 1024) {
				fprintf(stderr, "blockd: --memory: bad size '%s' (at least 1M, e.g. 256M)\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 't': {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*end || n < 1 || n > 1024) {
				fprintf(stderr, "blockd: --threads: '%s' is not a number from 1 to 1024\n",
					optarg);
				return EXIT_USAGE;
			}
			o->threads = (unsigned int)n;
			break;
		}
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("blockd %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'blockd --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "blockd: unexpected argument '%s'\nTry 'blockd --help'.\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (!o->nr_exports) {
		fprintf(stderr, "blockd: no export given (--export NAME=BACKEND:TARGET)\n"
			"Try 'blockd --help'.\n");
		return EXIT_USAGE;
	}
	/* A 1 MiB FUSE request, unaligned, needs a little more than 1 MiB of pages. */
	if (o->fuse_mount && o->memory < (2ull << 20)) {
		fprintf(stderr, "blockd: --fuse-mount needs --memory of at least 2M\n");
		return EXIT_USAGE;
	}
	if (!o->foreground) {
		fprintf(stderr, "blockd: running as a background daemon is not built yet; use --foreground\n");
		return EXIT_USAGE;
	}
	return 0;
}

static void free_options(struct options *o)
{
	for (unsigned int i = 0; i < o->nr_exports; i++)
		export_spec_free(&o->exports[i]);
	free(o->exports);
	for (unsigned int i = 0; i < o->nr_unix; i++)
		free(o->unix_paths[i]);
	for (unsigned int i = 0; i < o->nr_tcp; i++)
		free(o->tcp_addrs[i]);
	free(o->unix_paths);
	free(o->tcp_addrs);
	free(o->fuse_mount);
}

static void describe_export(const struct export_spec *e,
			    const struct backend *be, bool is_default)
{
	fprintf(stderr, "blockd: export '%s'%s: %s:%s, %llu bytes, engine %s%s\n",
		e->name, is_default ? " (default)" : "", e->params.kind,
		e->params.target, (unsigned long long)be->size, be->engine,
		be->readonly ? ", read-only" : "");
}

/* The largest payload: 32 MiB, or less when the budget could not hold two. */
static uint32_t max_payload(uint64_t budget)
{
	uint32_t max = NBD_MAX_PAYLOAD;

	while (max > (1u << 20) && max > budget / 2)
		max >>= 1;
	return max;
}

static int open_listeners(const struct options *o, struct listeners *ls)
{
	char err[256];
	unsigned int i;

	for (i = 0; i < o->nr_unix; i++) {
		if (listen_unix(ls, o->unix_paths[i], err, sizeof(err)))
			goto fail;
	}
	for (i = 0; i < o->nr_tcp; i++) {
		if (listen_tcp(ls, o->tcp_addrs[i], err, sizeof(err)))
			goto fail;
	}
	if (!o->nr_unix && !o->nr_tcp && !o->fuse_mount &&
	    listen_tcp(ls, DEFAULT_TCP, err, sizeof(err)))
		goto fail;
	for (i = 0; i < ls->n; i++)
		fprintf(stderr, "blockd: listening on %s\n", ls->l[i].name);
	return 0;
fail:
	fprintf(stderr, "blockd: cannot listen: %s\n", err);
	return -1;
}

/*
 * Accept clients until a signal comes; returns the signal, or
 * SERVE_FUSE_ENDED when @efd (-1: none) says the FUSE mount went away.
 */
static int serve(struct listeners *ls, int sfd, int efd, struct worker *ws,
		 unsigned int nr_workers)
{
	struct pollfd *pfd = calloc(ls->n + 2, sizeof(*pfd));
	unsigned int i;

	if (!pfd)
		return SIGTERM;
	for (i = 0; i < ls->n; i++) {
		pfd[i].fd = ls->l[i].fd;
		pfd[i].events = POLLIN;
	}
	pfd[ls->n].fd = sfd;
	pfd[ls->n].events = POLLIN;
	pfd[ls->n + 1].fd = efd;
	pfd[ls->n + 1].events = POLLIN;
	for (;;) {
		if (poll(pfd, ls->n + 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[ls->n].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				free(pfd);
				return (int)si.ssi_signo;
			}
		}
		if (pfd[ls->n + 1].revents) {
			free(pfd);
			return SERVE_FUSE_ENDED;
		}
		for (i = 0; i < ls->n; i++) {
			char peer[64];
			int fd;

			if (!pfd[i].revents)
				continue;
			while ((fd = listen_accept(&ls->l[i], peer, sizeof(peer))) >= 0)
				workers_add_conn(ws, nr_workers, fd, peer);
			/* Out of descriptors: let a moment pass rather than spin. */
			if (errno == EMFILE || errno == ENFILE) {
				fprintf(stderr, "blockd: accept: %s\n", strerror(errno));
				usleep(100000);
			}
		}
	}
	free(pfd);
	return SIGTERM;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct export *exports = NULL;
	struct listeners ls = { 0 };
	struct nbd_server srv = { 0 };
	struct worker *ws = NULL;
	struct fuse_frontend *fe = NULL;
	unsigned int front_pad = NBD_CMD_PAD;
	char err[256];
	struct pgalloc *pages = NULL;
	unsigned int i, ready = 0, nr_workers = 0;
	sigset_t mask;
	int ret, sig, sfd = -1;

	ret = parse_options(argc, argv, &o);
	if (ret)
		goto out;

	/* Signals are taken synchronously, by the accept loop. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "blockd: signalfd: %s\n", strerror(errno));
		ret = 1;
		goto out;
	}

	if (o.fuse_mount) {
		/* Before any thread starts: they inherit the memory hardening. */
		if (fuse_frontend_prepare(o.fuse_mount, err, sizeof(err))) {
			fprintf(stderr, "blockd: --fuse-mount: %s\n", err);
			ret = 1;
			goto out;
		}
		if (fuse_frontend_front_pad() > front_pad)
			front_pad = fuse_frontend_front_pad();
	}

	pages = pgalloc_create(o.memory, 0, PGALLOC_MLOCK);
	if (!pages) {
		fprintf(stderr, "blockd: cannot reserve %llu bytes of I/O memory: %s\n",
			(unsigned long long)o.memory, strerror(errno));
		ret = 1;
		goto out;
	}
	pgalloc_set_default(pages);

	exports = calloc(o.nr_exports, sizeof(*exports));
	if (!exports) {
		ret = 1;
		goto out;
	}
	for (i = 0; i < o.nr_exports; i++, ready++) {
		ret = export_open(&exports[i], &o.exports[i], front_pad,
				  max_payload(o.memory), err, sizeof(err));
		if (ret) {
			fprintf(stderr, "blockd: export '%s': %s\n", o.exports[i].name, err);
			ret = 1;
			goto out;
		}
		describe_export(&o.exports[i], exports[i].be, i == 0);
	}
	srv.exports = exports;
	srv.nr_exports = o.nr_exports;
	srv.handshake_timeout = HANDSHAKE_TIMEOUT;
	srv.budget = o.memory;

	if (open_listeners(&o, &ls)) {
		ret = 1;
		goto out;
	}
	nr_workers = o.threads;
	if (!nr_workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nr_workers = n > 0 ? (unsigned int)n : 1;
	}
	ret = workers_start(&ws, nr_workers, &srv, pages);
	if (ret) {
		fprintf(stderr, "blockd: cannot start worker threads: %s\n", strerror(-ret));
		ws = NULL;
		ret = 1;
		goto out;
	}

	if (o.fuse_mount) {
		ret = fuse_frontend_start(&fe, o.fuse_mount, exports, o.nr_exports,
					  pages, nr_workers, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "blockd: --fuse-mount: %s\n", err);
			fe = NULL;
			ret = 1;
			goto out;
		}
		fprintf(stderr, "blockd: FUSE: exports are files in %s\n", o.fuse_mount);
	}

	fprintf(stderr,
		"blockd: %llu MiB of I/O pages reserved, %u worker threads\n"
		"blockd: running; stop with Ctrl-C or SIGTERM\n",
		(unsigned long long)(o.memory >> 20), nr_workers);

	while ((sig = serve(&ls, sfd, fuse_frontend_event_fd(fe), ws,
			    nr_workers)) == SERVE_FUSE_ENDED) {
		/* Unmounted from outside: that front end stops, NBD goes on. */
		fuse_frontend_stop(fe);
		fe = NULL;
		if (!ls.n) {
			fprintf(stderr, "blockd: no front end left, stopping\n");
			break;
		}
	}
	if (sig != SERVE_FUSE_ENDED)
		fprintf(stderr, "blockd: %s received, stopping\n",
			sig == SIGINT ? "SIGINT" : "SIGTERM");
	/* No new requests; in-flight ones finish, then FUSE flushes and unmounts. */
	fuse_frontend_stop(fe);
	fe = NULL;
	listen_close_all(&ls);
	workers_stop(ws, nr_workers);
	ws = NULL;
	ret = 0;
out:
	fuse_frontend_stop(fe);
	listen_close_all(&ls);
	workers_stop(ws, nr_workers);
	for (i = 0; i < ready; i++)
		export_close(&exports[i]);
	free(exports);
	pgalloc_destroy(pages);
	if (sfd >= 0)
		close(sfd);
	free_options(&o);
	return ret;
}
