/* SPDX-License-Identifier: MIT */
/*
 * The command line, and how it combines with the config file: a setting
 * given on the command line wins; listeners given there replace the
 * file's; exports add to the file's.
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/size.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/options.h"

enum {
	LONG_PIDFILE = 256,
	LONG_LOG_LEVEL,
	LONG_STATS_SOCKET,
	LONG_CHECK_CONFIG,
	LONG_POLL_US,
};

void options_init(struct options *o)
{
	memset(o, 0, sizeof(*o));
	o->memory = DEFAULT_MEMORY;
	o->poll_us = DEFAULT_POLL_US;
	o->log_level = LOG_INFO;
}

static void free_strings(char **v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void options_free(struct options *o)
{
	for (unsigned int i = 0; i < o->nr_exports; i++)
		export_spec_free(&o->exports[i]);
	free(o->exports);
	free_strings(o->unix_paths, o->nr_unix);
	free_strings(o->tcp_addrs, o->nr_tcp);
	free(o->config);
	free(o->pidfile);
	free(o->fuse_mount);
	free(o->stats_socket);
	memset(o, 0, sizeof(*o));
}

int options_add_string(char ***v, unsigned int *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

int options_add_export(struct options *o, struct export_spec *spec)
{
	struct export_spec *n;

	for (unsigned int i = 0; i < o->nr_exports; i++) {
		if (!strcmp(o->exports[i].name, spec->name))
			return -EEXIST;
	}
	n = realloc(o->exports, (o->nr_exports + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	o->exports = n;
	n[o->nr_exports++] = *spec;
	memset(spec, 0, sizeof(*spec));
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: blockd [OPTION]... [--export SPEC]...\n"
"Serve files, block devices, RAM, a remote NBD disk or a Ceph RBD image as\n"
"block devices.\n"
"\n"
"  -c, --config FILE     read settings and exports from FILE (INI, see\n"
"                        blockd.conf(5)); default " DEFAULT_CONFIG "\n"
"                        when it exists\n"
"  -e, --export SPEC     add an export: [NAME=]BACKEND:TARGET[,key=value...]\n"
"                        (no NAME: it is named disk)\n"
"                        backends: file:PATH, memory:, nbd:URI,\n"
"                        rbd:POOL/IMAGE[@SNAP][,conf=F][,id=C][,cluster=N]%s\n"
"                        keys: size=N, cache=none|writeback, readonly,\n"
"                              engine=auto|uring|sync, queue-depth=N\n"
"                        the first export is also the default export\n"
"  -f, --foreground      stay in the foreground, log to stderr\n"
"  -p, --pidfile FILE    write the daemon's pid to FILE once it is ready\n"
"  -u, --unix PATH       serve NBD on a unix socket (mode 0660); repeatable\n"
"  -T, --tcp ADDR:PORT   serve NBD on TCP ([ADDR]:PORT for IPv6); repeatable;\n"
"                        default 127.0.0.1:10809 when no --unix/--tcp/--fuse-mount\n"
"  -F, --fuse-mount DIR  serve every export as the file DIR/NAME over FUSE\n"
"                        (losetup it to get a block device)\n"
"  -m, --memory SIZE     page budget for I/O buffers (default 64M)\n"
"  -t, --threads N       worker threads (default: one per CPU)\n"
"      --poll-us N       a worker spins up to N microseconds for its next\n"
"                        event before it sleeps, adaptively (default 100;\n"
"                        0: never)\n"
"      --log-level LEVEL error, warning, notice, info (default) or debug\n"
"  -s, --stats-socket PATH  serve counters as JSON on a unix socket\n"
"                        (contrib/blockd-stat prints them as a table)\n"
"      --check-config    check the configuration, print it and exit\n"
"  -h, --help            show this help and exit\n"
"  -V, --version         show the version and exit\n"
"\n"
"Example:\n"
"  blockd -f --unix /run/blockd.sock --export disk=file:/var/lib/blockd/disk.img,size=1G\n"
"  nbdinfo 'nbd+unix:///disk?socket=/run/blockd.sock'\n"
"\n"
"See blockd(8), blockd.conf(5) and blockd-backends(5).\n",
		backend_have_rbd() ? "" :
		"\n                        (rbd: not built in; needs librbd-dev at build time)");
}

static int oom(void)
{
	fprintf(stderr, "blockd: out of memory\n");
	return 1;
}

static int set_string(char **dst, const char *s)
{
	free(*dst);
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "export", required_argument, NULL, 'e' },
	{ "foreground", no_argument, NULL, 'f' },
	{ "pidfile", required_argument, NULL, 'p' },
	{ "unix", required_argument, NULL, 'u' },
	{ "tcp", required_argument, NULL, 'T' },
	{ "fuse-mount", required_argument, NULL, 'F' },
	{ "memory", required_argument, NULL, 'm' },
	{ "threads", required_argument, NULL, 't' },
	{ "poll-us", required_argument, NULL, LONG_POLL_US },
	{ "log-level", required_argument, NULL, LONG_LOG_LEVEL },
	{ "stats-socket", required_argument, NULL, 's' },
	{ "check-config", no_argument, NULL, LONG_CHECK_CONFIG },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* -e: parse @arg and add it.  0, EXIT_USAGE after a message, or 1 (no memory). */
static int cli_export(struct options *o, const char *arg)
{
	struct export_spec spec;
	char err[256];
	int ret;

	if (export_spec_parse(arg, &spec, err, sizeof(err))) {
		fprintf(stderr, "blockd: --export: %s\n", err);
		return EXIT_USAGE;
	}
	ret = options_add_export(o, &spec);
	if (ret == -EEXIST)
		fprintf(stderr, "blockd: --export: export '%s' is given twice\n",
			spec.name);
	export_spec_free(&spec);
	if (ret)
		return ret == -EEXIST ? EXIT_USAGE : oom();
	return 0;
}

/* -p, -F, -s: the one file, mount point or socket they name.  0, or 1. */
static int cli_path(struct options *o, int c, const char *arg)
{
	char **slot = c == 'p' ? &o->pidfile :
		      c == 'F' ? &o->fuse_mount : &o->stats_socket;

	if (set_string(slot, arg))
		return oom();
	o->set |= c == 'p' ? OPT_SET_PIDFILE :
		  c == 'F' ? OPT_SET_FUSE : OPT_SET_STATS;
	return 0;
}

/* -u, -T: one more listener of that kind.  0, or 1 (no memory). */
static int cli_listener(struct options *o, int c, const char *arg)
{
	int ret;

	if (c == 'T')
		ret = options_add_string(&o->tcp_addrs, &o->nr_tcp, arg);
	else
		ret = options_add_string(&o->unix_paths, &o->nr_unix, arg);
	if (ret)
		return oom();
	o->set |= c == 'T' ? OPT_SET_TCP : OPT_SET_UNIX;
	return 0;
}

/* @arg as a whole decimal number from @min to @max; false if it is not. */
static bool cli_number(const char *arg, long min, long max, unsigned int *out)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (*end || !*arg || n < min || n > max)
		return false;
	*out = (unsigned int)n;
	return true;
}

/*
 * The options that take a number or a level (-m, -t, --poll-us,
 * --log-level).  0, or EXIT_USAGE after a message.
 */
static int cli_value(struct options *o, int c, const char *arg)
{
	switch (c) {
	case 'm':
		if (parse_size(arg, &o->memory) || o->memory < 1024 * 1024) {
			fprintf(stderr, "blockd: --memory: bad size '%s' (at least 1M, e.g. 256M)\n",
				arg);
			return EXIT_USAGE;
		}
		o->set |= OPT_SET_MEMORY;
		break;
	case 't':
		if (!cli_number(arg, 1, 1024, &o->threads)) {
			fprintf(stderr, "blockd: --threads: '%s' is not a number from 1 to 1024\n",
				arg);
			return EXIT_USAGE;
		}
		o->set |= OPT_SET_THREADS;
		break;
	case LONG_POLL_US:
		if (!cli_number(arg, 0, MAX_POLL_US, &o->poll_us)) {
			fprintf(stderr, "blockd: --poll-us: '%s' is not a number from 0 to %d\n",
				arg, MAX_POLL_US);
			return EXIT_USAGE;
		}
		o->set |= OPT_SET_POLL;
		break;
	case LONG_LOG_LEVEL:
		o->log_level = log_level_parse(arg);
		if (o->log_level < 0) {
			fprintf(stderr, "blockd: --log-level: '%s' is not error, warning, notice, info or debug\n",
				arg);
			return EXIT_USAGE;
		}
		o->set |= OPT_SET_LOG_LEVEL;
		break;
	}
	return 0;
}

/* One option @c, as getopt_long() returned it.  0, EXIT_USAGE or 1. */
static int cli_option(struct options *o, int c, const char *arg,
		      enum options_mode *mode, bool *config_given)
{
	switch (c) {
	case 'c':
		if (set_string(&o->config, arg))
			return oom();
		*config_given = true;
		return 0;
	case 'e':
		return cli_export(o, arg);
	case 'f':
		o->foreground = true;
		o->set |= OPT_SET_FOREGROUND;
		return 0;
	case 'p':
	case 'F':
	case 's':
		return cli_path(o, c, arg);
	case 'u':
	case 'T':
		return cli_listener(o, c, arg);
	case 'm':
	case 't':
	case LONG_POLL_US:
	case LONG_LOG_LEVEL:
		return cli_value(o, c, arg);
	case LONG_CHECK_CONFIG:
		*mode = MODE_CHECK_CONFIG;
		return 0;
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

int options_parse_cli(int argc, char **argv, struct options *o,
		      enum options_mode *mode)
{
	bool config_given = false;
	int c, ret;

	*mode = MODE_SERVE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:e:fp:u:T:F:m:t:s:hV", longopts, NULL)) != -1) {
		ret = cli_option(o, c, optarg, mode, &config_given);
		if (ret)
			return ret;
	}
	if (optind < argc) {
		fprintf(stderr, "blockd: unexpected argument '%s'\nTry 'blockd --help'.\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	/* The default file is read only when it is there. */
	if (!config_given && !access(DEFAULT_CONFIG, F_OK) &&
	    set_string(&o->config, DEFAULT_CONFIG))
		return oom();
	return 0;
}

static void take_string(char **dst, char **src)
{
	free(*dst);
	*dst = *src;
	*src = NULL;
}

static void take_strings(char ***dst, unsigned int *nd, char ***src,
			 unsigned int *ns)
{
	free_strings(*dst, *nd);
	*dst = *src;
	*nd = *ns;
	*src = NULL;
	*ns = 0;
}

int options_merge(struct options *out, struct options *file,
		  struct options *cli)
{
	unsigned int i;
	int ret;

	*out = *file;
	options_init(file);
	out->set |= cli->set;
	take_string(&out->config, &cli->config);
	if (cli->set & OPT_SET_FOREGROUND)
		out->foreground = cli->foreground;
	if (cli->set & OPT_SET_PIDFILE)
		take_string(&out->pidfile, &cli->pidfile);
	/* Listeners on the command line replace the file's, both kinds. */
	if (cli->set & (OPT_SET_UNIX | OPT_SET_TCP)) {
		take_strings(&out->unix_paths, &out->nr_unix, &cli->unix_paths, &cli->nr_unix);
		take_strings(&out->tcp_addrs, &out->nr_tcp, &cli->tcp_addrs, &cli->nr_tcp);
	}
	if (cli->set & OPT_SET_FUSE)
		take_string(&out->fuse_mount, &cli->fuse_mount);
	if (cli->set & OPT_SET_MEMORY)
		out->memory = cli->memory;
	if (cli->set & OPT_SET_THREADS)
		out->threads = cli->threads;
	if (cli->set & OPT_SET_POLL)
		out->poll_us = cli->poll_us;
	if (cli->set & OPT_SET_LOG_LEVEL)
		out->log_level = cli->log_level;
	if (cli->set & OPT_SET_STATS)
		take_string(&out->stats_socket, &cli->stats_socket);
	for (i = 0; i < cli->nr_exports; i++) {
		ret = options_add_export(out, &cli->exports[i]);
		if (ret == -EEXIST) {
			fprintf(stderr, "blockd: --export: export '%s' is also in %s\n",
				cli->exports[i].name, out->config);
			return EXIT_USAGE;
		}
		if (ret)
			return oom();
	}
	return 0;
}

int options_validate(const struct options *o)
{
	/* A 1 MiB FUSE request, unaligned, needs a little more than 1 MiB of pages. */
	if (o->fuse_mount && o->memory < (2ull << 20)) {
		fprintf(stderr, "blockd: --fuse-mount needs --memory of at least 2M\n");
		return EXIT_USAGE;
	}
	if (!o->nr_exports) {
		fprintf(stderr, "blockd: no export given (--export [NAME=]BACKEND:TARGET, or [export NAME] in %s)\n"
			"Try 'blockd --help'.\n", o->config ? o->config : DEFAULT_CONFIG);
		return EXIT_USAGE;
	}
	return 0;
}

/* A daemon runs in "/": make @p absolute while the start's cwd is known. */
static int absolutize(char **p)
{
	char cwd[4096], *abs;

	if (!*p || !**p || **p == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, *p) < 0)
		return -1;
	free(*p);
	*p = abs;
	return 0;
}

static int absolutize_all(struct options *o)
{
	unsigned int i;
	int ret = 0;

	ret |= absolutize(&o->config);
	ret |= absolutize(&o->pidfile);
	ret |= absolutize(&o->fuse_mount);
	ret |= absolutize(&o->stats_socket);
	for (i = 0; i < o->nr_unix; i++)
		ret |= absolutize(&o->unix_paths[i]);
	for (i = 0; i < o->nr_exports; i++) {
		if (!strcmp(o->exports[i].params.kind, "file"))
			ret |= absolutize(&o->exports[i].params.target);
		ret |= absolutize(&o->exports[i].params.rbd_conf);
	}
	return ret;
}

int options_load(int argc, char **argv, const char *config,
		 struct options *o, enum options_mode *mode)
{
	struct options cli, file;
	int ret;

	options_init(&cli);
	options_init(&file);
	options_init(o);
	ret = options_parse_cli(argc, argv, &cli, mode);
	if (!ret && config && set_string(&cli.config, config))
		ret = oom();
	if (!ret && cli.config)
		ret = config_load(cli.config, &file);
	if (!ret)
		ret = options_merge(o, &file, &cli);
	if (!ret)
		ret = options_validate(o);
	if (!ret && absolutize_all(o))
		ret = oom();
	options_free(&cli);
	options_free(&file);
	if (ret)
		options_free(o);
	return ret;
}

static const char *cache_name(enum backend_cache c)
{
	return c == BACKEND_CACHE_NONE ? "none" : "writeback";
}

static const char *engine_name(enum backend_engine e)
{
	return e == BACKEND_ENGINE_URING ? "uring" :
	       e == BACKEND_ENGINE_SYNC ? "sync" : "auto";
}

void options_print(const struct options *o, FILE *f)
{
	unsigned int i;

	fprintf(f, "# blockd %s: the effective configuration%s%s\n", PACKAGE_VERSION,
		o->config ? ", from " : "", o->config ? o->config : "");
	fprintf(f, "[global]\n");
	fprintf(f, "foreground = %s\n", o->foreground ? "yes" : "no");
	if (o->pidfile)
		fprintf(f, "pidfile = %s\n", o->pidfile);
	for (i = 0; i < o->nr_unix; i++)
		fprintf(f, "unix = %s\n", o->unix_paths[i]);
	for (i = 0; i < o->nr_tcp; i++)
		fprintf(f, "tcp = %s\n", o->tcp_addrs[i]);
	if (!o->nr_unix && !o->nr_tcp && !o->fuse_mount)
		fprintf(f, "tcp = %s\n", DEFAULT_TCP);
	if (o->fuse_mount)
		fprintf(f, "fuse-mount = %s\n", o->fuse_mount);
	fprintf(f, "memory = %lluM\n", (unsigned long long)(o->memory >> 20));
	if (o->threads)
		fprintf(f, "threads = %u\n", o->threads);
	else
		fprintf(f, "# threads = one per CPU\n");
	fprintf(f, "poll-us = %u\n", o->poll_us);
	fprintf(f, "log-level = %s\n", log_level_name(o->log_level));
	if (o->stats_socket)
		fprintf(f, "stats-socket = %s\n", o->stats_socket);
	for (i = 0; i < o->nr_exports; i++) {
		const struct export_spec *e = &o->exports[i];
		const struct backend_params *p = &e->params;

		fprintf(f, "\n[export %s]%s\n", e->name, i ? "" : "\n# the default export");
		fprintf(f, "backend = %s\n", p->kind);
		if (!strcmp(p->kind, "file"))
			fprintf(f, "path = %s\n", p->target);
		else if (!strcmp(p->kind, "nbd"))
			fprintf(f, "uri = %s\n", p->target);
		else if (!strcmp(p->kind, "rbd"))
			fprintf(f, "image = %s\n", p->target);
		if (p->size)
			fprintf(f, "size = %llu\n", (unsigned long long)p->size);
		fprintf(f, "readonly = %s\n", p->readonly ? "yes" : "no");
		if (p->cache != BACKEND_CACHE_DEFAULT)
			fprintf(f, "cache = %s\n", cache_name(p->cache));
		fprintf(f, "engine = %s\n", engine_name(p->engine));
		if (p->queue_depth)
			fprintf(f, "queue-depth = %u\n", p->queue_depth);
		if (e->description)
			fprintf(f, "description = %s\n", e->description);
		if (e->pool_size)
			fprintf(f, "pool-size = %u\n", e->pool_size);
		if (p->rbd_conf)
			fprintf(f, "conf = %s\n", p->rbd_conf);
		if (p->rbd_id)
			fprintf(f, "id = %s\n", p->rbd_id);
		if (p->rbd_cluster)
			fprintf(f, "cluster = %s\n", p->rbd_cluster);
	}
}
