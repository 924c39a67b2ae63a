/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_OPTIONS_H
#define BLOCKD_DAEMON_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/export_spec.h"

#define DEFAULT_CONFIG		SYSCONFDIR "/blockd/blockd.conf"
#define DEFAULT_MEMORY		(64ull << 20)
/* Workers spin up to this long before sleeping (see ioloop_set_poll()). */
#define DEFAULT_POLL_US		100
#define MAX_POLL_US		10000
#define DEFAULT_TCP		"127.0.0.1:10809"
/* Exit status for a bad option or configuration: nothing was started. */
#define EXIT_USAGE		2

/* Which settings were given, so the command line can beat the file. */
enum {
	OPT_SET_FOREGROUND	= 1u << 0,
	OPT_SET_PIDFILE		= 1u << 1,
	OPT_SET_UNIX		= 1u << 2,
	OPT_SET_TCP		= 1u << 3,
	OPT_SET_FUSE		= 1u << 4,
	OPT_SET_MEMORY		= 1u << 5,
	OPT_SET_THREADS		= 1u << 6,
	OPT_SET_LOG_LEVEL	= 1u << 7,
	OPT_SET_STATS		= 1u << 8,
	OPT_SET_POLL		= 1u << 9,
};

/* Everything the daemon is told, by the command line and the config file. */
struct options {
	unsigned int set;		/* OPT_SET_* */
	char *config;			/* NULL: none */
	bool foreground;
	char *pidfile;
	char **unix_paths;
	unsigned int nr_unix;
	char **tcp_addrs;
	unsigned int nr_tcp;
	char *fuse_mount;		/* FUSE front end: mount point, or NULL */
	uint64_t memory;
	unsigned int threads;		/* 0: one per CPU */
	unsigned int poll_us;		/* workers' spin before sleeping; 0: off */
	int log_level;			/* LOG_* */
	char *stats_socket;
	struct export_spec *exports;
	unsigned int nr_exports;
};

/* What the command line asks for besides serving. */
enum options_mode {
	MODE_SERVE,
	MODE_CHECK_CONFIG,		/* --check-config */
};

/**
 * options_init - defaults for everything
 * @o: the options
 */
void options_init(struct options *o);

/**
 * options_free - free what @o holds and clear it
 * @o: the options
 */
void options_free(struct options *o);

/**
 * options_parse_cli - parse the command line
 * @argc: as main() got it
 * @argv: as main() got it
 * @o: the options, on defaults
 * @mode: what the command line asks for besides serving
 *
 * --help and --version print and exit 0.  The config file, if any, is
 * named by o->config (-c, else the default path when it exists).
 *
 * Return: 0, or EXIT_USAGE after a message.
 */
int options_parse_cli(int argc, char **argv, struct options *o,
		      enum options_mode *mode);

/**
 * options_merge - the effective options
 * @out: @file overridden by what @cli sets; the exports of both
 * @file: from the config file; strings are moved out of it
 * @cli: from the command line; strings are moved out of it
 *
 * Return: 0, or EXIT_USAGE after a message (a duplicate export).
 */
int options_merge(struct options *out, struct options *file,
		  struct options *cli);

/**
 * options_validate - the checks that need everything merged
 * @o: the merged options: at least one export
 *
 * Return: 0 or EXIT_USAGE.
 */
int options_validate(const struct options *o);

/**
 * options_load - all of the above
 * @argc: as main() got it
 * @argv: as main() got it
 * @config: the config file instead of the one the command line names,
 *          if not NULL
 * @o: the command line and the config file, merged and validated, with
 *     every path made absolute
 * @mode: what the command line asks for besides serving
 *
 * Called again on SIGHUP, with the absolute config path, as the daemon
 * has left its starting directory by then.
 *
 * Return: 0, or EXIT_USAGE (or 1 for no memory) after a message, with @o
 * freed.
 */
int options_load(int argc, char **argv, const char *config,
		 struct options *o, enum options_mode *mode);

/**
 * options_print - write @o as a config file would say it (--check-config)
 * @o: the options
 * @f: where to
 */
void options_print(const struct options *o, FILE *f);

/**
 * options_add_string - append a copy of @s to a string vector
 * @v: the vector
 * @n: its length
 * @s: the string
 *
 * Return: 0 or -ENOMEM.
 */
int options_add_string(char ***v, unsigned int *n, const char *s);

/**
 * options_add_export - append @spec unless its name is taken
 * @o: the options
 * @spec: the export; moved into @o
 *
 * Return: 0, -EEXIST or -ENOMEM.
 */
int options_add_export(struct options *o, struct export_spec *spec);

#endif
