/* SPDX-License-Identifier: MIT */
/*
 * blockd: a userspace block device daemon.
 *
 * This is the daemon's entry: it parses the command line, sets up the
 * page budget and one bio_set per export, and runs until SIGINT/SIGTERM.
 * The NBD and FUSE front ends and the backends plug in here as they land.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/bio.h"
#include "core/page.h"
#include "daemon/export_spec.h"
#include "daemon/size.h"

#define DEFAULT_MEMORY	(64ull << 20)
#define EXIT_USAGE	2

struct options {
	bool foreground;
	uint64_t memory;
	unsigned int threads;
	unsigned int nr_exports;
	struct export_spec *exports;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: blockd [OPTION]... --export SPEC [--export SPEC]...\n"
"Serve files, block devices, RAM or a remote NBD disk as block devices.\n"
"\n"
"  -e, --export SPEC   add an export: NAME=BACKEND:TARGET[,key=value...]\n"
"                      backends: file:PATH, memory:, nbd:URI\n"
"                      keys: size=N, cache=none|writeback, readonly\n"
"                      the first export is also the default export\n"
"  -f, --foreground    stay in the foreground, log to stderr\n"
"  -m, --memory SIZE   page budget for I/O buffers (default 64M)\n"
"  -t, --threads N     worker threads (default: one per CPU)\n"
"  -h, --help          show this help and exit\n"
"  -V, --version       show the version and exit\n"
"\n"
"Example:\n"
"  blockd -f --export disk=file:/var/lib/blockd/disk.img,size=1G\n"
"\n"
"See blockd(8).\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "export", required_argument, NULL, 'e' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "memory", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	int c;

	o->memory = DEFAULT_MEMORY;
	while ((c = getopt_long(argc, argv, "e:fm:t:hV", longopts, NULL)) != -1) {
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
}

static void describe_export(const struct export_spec *e, bool is_default)
{
	struct stat st;

	fprintf(stderr, "blockd: export '%s'%s: %s:%s", e->name,
		is_default ? " (default)" : "", e->backend, e->target);
	if (!strcmp(e->backend, "file") && !stat(e->target, &st))
		fprintf(stderr, ", %lld bytes", (long long)st.st_size);
	else if (e->size)
		fprintf(stderr, ", %llu bytes", (unsigned long long)e->size);
	fprintf(stderr, "%s\n", e->readonly ? ", read-only" : "");
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct bio_set *sets = NULL;
	struct pgalloc *pages = NULL;
	unsigned int i, ready = 0;
	sigset_t mask;
	int ret, sig;

	ret = parse_options(argc, argv, &o);
	if (ret)
		goto out;

	/* Signals are taken synchronously: the main thread waits for them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);

	pages = pgalloc_create(o.memory, 0, PGALLOC_MLOCK);
	if (!pages) {
		fprintf(stderr, "blockd: cannot reserve %llu bytes of I/O memory: %s\n",
			(unsigned long long)o.memory, strerror(errno));
		ret = 1;
		goto out;
	}
	pgalloc_set_default(pages);

	sets = calloc(o.nr_exports, sizeof(*sets));
	if (!sets) {
		ret = 1;
		goto out;
	}
	for (i = 0; i < o.nr_exports; i++, ready++) {
		ret = bioset_init(&sets[i], 64, 0,
				  BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER);
		if (ret) {
			fprintf(stderr, "blockd: export '%s': %s\n",
				o.exports[i].name, strerror(-ret));
			ret = 1;
			goto out;
		}
		describe_export(&o.exports[i], i == 0);
	}

	fprintf(stderr,
		"blockd: %llu MiB of I/O pages reserved\n"
		"blockd: no front end is built yet: the NBD server and the FUSE mount\n"
		"blockd: arrive next; nothing can attach to these exports until then.\n"
		"blockd: running; stop with Ctrl-C or SIGTERM\n",
		(unsigned long long)(o.memory >> 20));

	sigwait(&mask, &sig);
	fprintf(stderr, "blockd: %s received, stopping\n",
		sig == SIGINT ? "SIGINT" : "SIGTERM");
	ret = 0;
out:
	for (i = 0; i < ready; i++)
		bioset_exit(&sets[i]);
	free(sets);
	pgalloc_destroy(pages);
	free_options(&o);
	return ret;
}
