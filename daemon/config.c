/* SPDX-License-Identifier: MIT */
/*
 * libinih calls back once per key with its section; it does not report
 * section headers or line numbers, so a reader wrapped around fgets
 * counts lines and notes where each header is: a message can then name
 * the line that is wrong, and an export whose section has no keys at all
 * is still seen.
 */
#include <config.h>

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/size.h"
#include "daemon/config.h"
#include "daemon/log.h"

enum global_key {
	G_FOREGROUND, G_PIDFILE, G_UNIX, G_TCP, G_FUSE_MOUNT, G_MEMORY,
	G_THREADS, G_POLL_US, G_LOG_LEVEL, G_STATS_SOCKET, G_NR
};

static const char *const global_keys[G_NR] = {
	[G_FOREGROUND] = "foreground", [G_PIDFILE] = "pidfile",
	[G_UNIX] = "unix", [G_TCP] = "tcp", [G_FUSE_MOUNT] = "fuse-mount",
	[G_MEMORY] = "memory", [G_THREADS] = "threads", [G_POLL_US] = "poll-us",
	[G_LOG_LEVEL] = "log-level", [G_STATS_SOCKET] = "stats-socket",
};

enum export_key {
	E_BACKEND, E_PATH, E_URI, E_SIZE, E_READONLY, E_CACHE, E_ENGINE,
	E_QUEUE_DEPTH, E_DESCRIPTION, E_POOL_SIZE, E_IMAGE, E_CONF, E_ID,
	E_CLUSTER, E_NR
};

static const char *const export_keys[E_NR] = {
	[E_BACKEND] = "backend", [E_PATH] = "path", [E_URI] = "uri",
	[E_SIZE] = "size", [E_READONLY] = "readonly", [E_CACHE] = "cache",
	[E_ENGINE] = "engine", [E_QUEUE_DEPTH] = "queue-depth",
	[E_DESCRIPTION] = "description", [E_POOL_SIZE] = "pool-size",
	[E_IMAGE] = "image", [E_CONF] = "conf", [E_ID] = "id",
	[E_CLUSTER] = "cluster",
};

struct section {
	char *name;		/* the export's name; NULL for [global] */
	unsigned int header_line;
	struct export_spec spec;
	char *backend, *path, *uri, *image;
	unsigned int backend_line;
	/* rbd's conf, id, cluster: set once the backend is known. */
	char *rbd[3];
	unsigned int rbd_line[3];
	bool set_keys[E_NR];	/* a key given twice is a mistake */
};

struct parse {
	const char *path;
	FILE *f;
	struct options *o;
	unsigned int line;		/* the line inih is parsing */
	unsigned int header_line;	/* the last [section] line */
	bool header_export;		/* ... and it says [export ...] */
	bool global_set[G_NR];		/* [global] keys seen */
	unsigned int cur_header;	/* the header of the section keys go to */
	struct section sec;
	bool in_export;
	bool failed;
};

static void fail(struct parse *p, unsigned int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct parse *p, unsigned int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The log: at a reload, standard error may be /dev/null. */
	log_err("%s:%u: %s", p->path, line, msg);
}

static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	char *s;
	size_t n;

	if (p->failed)
		return NULL;	/* stop: the first error is the one reported */
	s = fgets(str, num, p->f);
	if (!s)
		return NULL;
	p->line++;
	n = strlen(s);
	if (n == (size_t)num - 1 && s[n - 1] != '\n' && !feof(p->f)) {
		fail(p, p->line, "line too long (at most %d characters)", num - 3);
		return NULL;
	}
	s += strspn(s, " \t");
	if (*s == '[') {
		/* The section before had no keys: nothing called back for it. */
		if (p->header_export && p->header_line != p->cur_header) {
			fail(p, p->header_line, "this export section has no keys (it needs a backend)");
			return NULL;
		}
		p->header_line = p->line;
		s += 1 + strspn(s + 1, " \t");
		p->header_export = !strncmp(s, "export", 6);
	}
	return str;
}

static int key_index(const char *const *keys, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(keys[i], key))
			return (int)i;
	}
	return -1;
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
		*out = false;
	else
		return false;
	return true;
}

static bool parse_uint(const char *v, unsigned long min, unsigned long max,
		       unsigned int *out)
{
	char *end;
	unsigned long n;

	if (!*v || *v == '-')
		return false;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (*end || errno || n < min || n > max)
		return false;
	*out = (unsigned int)n;
	return true;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

static bool global_key(struct parse *p, const char *key, const char *v)
{
	struct options *o = p->o;
	int k = key_index(global_keys, sizeof(global_keys) / sizeof(*global_keys), key);
	int l;

	/* unix and tcp add a listener each time; the rest are set once. */
	if (k >= 0 && k != G_UNIX && k != G_TCP) {
		if (p->global_set[k]) {
			fail(p, p->line, "%s is given twice in [global]", key);
			return false;
		}
		p->global_set[k] = true;
	}
	switch (k) {
	case G_FOREGROUND:
		if (!parse_bool(v, &o->foreground))
			fail(p, p->line, "foreground takes yes or no, not '%s'", v);
		o->set |= OPT_SET_FOREGROUND;
		break;
	case G_PIDFILE:
		if (*v != '/')
			fail(p, p->line, "pidfile must be an absolute path, not '%s'", v);
		else if (set_str(&o->pidfile, v))
			fail(p, p->line, "out of memory");
		break;
	case G_UNIX:
		if (!*v || options_add_string(&o->unix_paths, &o->nr_unix, v))
			fail(p, p->line, "unix needs a socket path");
		break;
	case G_TCP:
		if (!strchr(v, ':') || options_add_string(&o->tcp_addrs, &o->nr_tcp, v))
			fail(p, p->line, "tcp takes ADDR:PORT ([ADDR]:PORT for IPv6), not '%s'", v);
		break;
	case G_FUSE_MOUNT:
		if (*v != '/')
			fail(p, p->line, "fuse-mount must be an absolute path, not '%s'", v);
		else if (set_str(&o->fuse_mount, v))
			fail(p, p->line, "out of memory");
		break;
	case G_MEMORY:
		if (parse_size(v, &o->memory) || o->memory < 1024 * 1024)
			fail(p, p->line, "memory: bad size '%s' (at least 1M, e.g. 256M)", v);
		break;
	case G_THREADS:
		if (!parse_uint(v, 1, 1024, &o->threads))
			fail(p, p->line, "threads takes a number from 1 to 1024, not '%s'", v);
		break;
	case G_POLL_US:
		if (!parse_uint(v, 0, MAX_POLL_US, &o->poll_us))
			fail(p, p->line, "poll-us takes a number from 0 to %d, not '%s'", MAX_POLL_US, v);
		break;
	case G_LOG_LEVEL:
		l = log_level_parse(v);
		if (l < 0)
			fail(p, p->line, "log-level takes error, warning, notice, info or debug, not '%s'", v);
		o->log_level = l;
		break;
	case G_STATS_SOCKET:
		if (*v != '/')
			fail(p, p->line, "stats-socket must be an absolute path, not '%s'", v);
		else if (set_str(&o->stats_socket, v))
			fail(p, p->line, "out of memory");
		break;
	default:
		fail(p, p->line, "unknown key '%s' in [global] (known: foreground, pidfile, unix, tcp, fuse-mount, memory, threads, poll-us, log-level, stats-socket)",
		     key);
	}
	return !p->failed;
}

static bool export_key(struct parse *p, const char *key, const char *v)
{
	struct section *s = &p->sec;
	int k = key_index(export_keys, sizeof(export_keys) / sizeof(*export_keys), key);
	char err[256];

	if (k < 0) {
		fail(p, p->line, "unknown key '%s' in [export %s] (known: backend, path, uri, image, size, readonly, cache, engine, queue-depth, description, pool-size, conf, id, cluster)",
		     key, s->name);
		return false;
	}
	if (s->set_keys[k]) {
		fail(p, p->line, "%s is given twice in [export %s]", key, s->name);
		return false;
	}
	s->set_keys[k] = true;
	switch (k) {
	case E_BACKEND:
		if (strcmp(v, "file") && strcmp(v, "memory") && strcmp(v, "nbd") &&
		    strcmp(v, "rbd"))
			fail(p, p->line, "unknown backend '%s' (known: file, memory, nbd, rbd)", v);
		else if (!strcmp(v, "rbd") && !backend_have_rbd())
			fail(p, p->line, "backend rbd is not built into this blockd (build it with librbd-dev installed)");
		else if (set_str(&s->backend, v))
			fail(p, p->line, "out of memory");
		s->backend_line = p->line;
		break;
	case E_PATH:
		if (!*v || set_str(&s->path, v))
			fail(p, p->line, "path needs a file or device");
		break;
	case E_URI:
		if (!*v || set_str(&s->uri, v))
			fail(p, p->line, "uri needs an NBD URI");
		break;
	case E_IMAGE:
		if (!*v || set_str(&s->image, v))
			fail(p, p->line, "image needs POOL/IMAGE[@SNAP]");
		break;
	case E_CONF:
	case E_ID:
	case E_CLUSTER:
		if (set_str(&s->rbd[k - E_CONF], v))
			fail(p, p->line, "out of memory");
		s->rbd_line[k - E_CONF] = p->line;
		break;
	case E_DESCRIPTION:
		if (set_str(&s->spec.description, v))
			fail(p, p->line, "out of memory");
		break;
	case E_POOL_SIZE:
		if (!parse_uint(v, 1, 65536, &s->spec.pool_size))
			fail(p, p->line, "pool-size takes a number of bios from 1 to 65536, not '%s'", v);
		break;
	default:
		/* The spec's own keys: the same grammar as --export. */
		if (backend_param_set(&s->spec.params, key, v, err, sizeof(err)))
			fail(p, p->line, "%s", err);
	}
	return !p->failed;
}

static void section_reset(struct section *s)
{
	free(s->name);
	free(s->backend);
	free(s->path);
	free(s->uri);
	free(s->image);
	for (int i = 0; i < 3; i++)
		free(s->rbd[i]);
	export_spec_free(&s->spec);
	memset(s, 0, sizeof(*s));
}

/* The current section ended: an export section becomes an export. */
static void end_section(struct parse *p)
{
	struct section *s = &p->sec;
	const char *target;
	char err[256];
	int ret, i;

	if (!p->in_export || p->failed)
		goto out;
	if (!s->backend) {
		fail(p, s->header_line, "[export %s] needs a backend (file, memory or nbd)", s->name);
		goto out;
	}
	if (s->image && strcmp(s->backend, "rbd")) {
		fail(p, s->backend_line, "[export %s]: backend %s takes no image", s->name, s->backend);
		goto out;
	}
	if (!strcmp(s->backend, "rbd")) {
		target = s->image;
		if (!target || s->path || s->uri) {
			fail(p, s->backend_line, "[export %s]: backend rbd takes an image (POOL/IMAGE[@SNAP])%s",
			     s->name, s->path || s->uri ? ", not a path or uri" : "");
			goto out;
		}
	} else if (!strcmp(s->backend, "file")) {
		target = s->path;
		if (!target || s->uri) {
			fail(p, s->backend_line, "[export %s]: backend file takes a path%s",
			     s->name, s->uri ? ", not a uri" : "");
			goto out;
		}
	} else if (!strcmp(s->backend, "nbd")) {
		target = s->uri;
		if (!target || s->path) {
			fail(p, s->backend_line, "[export %s]: backend nbd takes a uri%s",
			     s->name, s->path ? ", not a path" : "");
			goto out;
		}
	} else {
		target = "";
		if (s->path || s->uri) {
			fail(p, s->backend_line, "[export %s]: backend memory takes no path or uri", s->name);
			goto out;
		}
		if (!s->spec.params.size) {
			fail(p, s->backend_line, "[export %s]: backend memory needs a size", s->name);
			goto out;
		}
	}
	s->spec.name = strdup(s->name);
	s->spec.params.kind = strdup(s->backend);
	s->spec.params.target = strdup(target);
	if (!s->spec.name || !s->spec.params.kind || !s->spec.params.target) {
		fail(p, s->header_line, "out of memory");
		goto out;
	}
	for (i = 0; i < 3; i++) {
		if (s->rbd[i] && backend_param_set(&s->spec.params, export_keys[E_CONF + i],
						   s->rbd[i], err, sizeof(err))) {
			fail(p, s->rbd_line[i], "%s", err);
			goto out;
		}
	}
	ret = options_add_export(p->o, &s->spec);
	if (ret)
		fail(p, s->header_line, "%s", ret == -EEXIST ?
		     "an export of this name is defined above" : "out of memory");
out:
	section_reset(s);
	p->in_export = false;
}

/* A new section starts on p->header_line. */
static void begin_section(struct parse *p, const char *name)
{
	unsigned int i;

	end_section(p);
	if (p->failed)
		return;
	if (!strcmp(name, "global"))
		return;
	if (strncmp(name, "export ", 7) || !name[7]) {
		fail(p, p->header_line, "unknown section [%s] (known: [global], [export NAME])", name);
		return;
	}
	name += 7;
	name += strspn(name, " \t");
	if (strlen(name) > 4096 || strchr(name, '/') == name) {
		fail(p, p->header_line, "bad export name '%s'", name);
		return;
	}
	for (i = 0; i < p->o->nr_exports; i++) {
		if (!strcmp(p->o->exports[i].name, name)) {
			fail(p, p->header_line, "duplicate export '%s'", name);
			return;
		}
	}
	p->sec.name = strdup(name);
	p->sec.header_line = p->header_line;
	p->in_export = p->sec.name != NULL;
	if (!p->sec.name)
		fail(p, p->header_line, "out of memory");
}

static int handler(void *user, const char *section, const char *key,
		   const char *value)
{
	struct parse *p = user;

	if (p->failed)
		return 0;
	/* A new section, or the same name again: the header line tells. */
	if (p->header_line != p->cur_header || !p->header_line) {
		if (!p->header_line) {
			fail(p, p->line, "key '%s' before any section (start with [global])", key);
			return 0;
		}
		p->cur_header = p->header_line;
		begin_section(p, section);
		if (p->failed)
			return 0;
	}
	if (!value)
		value = "";
	if (p->in_export)
		return export_key(p, key, value);
	return global_key(p, key, value);
}

int config_load(const char *path, struct options *o)
{
	struct parse p = { .path = path, .o = o };
	int ret;

	p.f = fopen(path, "re");
	if (!p.f) {
		log_err("%s:0: cannot read: %s", path, strerror(errno));
		options_free(o);
		return EXIT_USAGE;
	}
	/* No "name: value" or multi-line guesses: one key = value a line. */
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	ret = ini_parse_stream(reader, &p, handler, &p);
	if (ret > 0)
		fail(&p, (unsigned int)ret, "syntax error (expected [section] or key = value)");
	else if (ret < 0)
		fail(&p, p.line, "cannot parse: %s", ret == -2 ? "out of memory" : "read error");
	/* The last section had no keys. */
	if (p.header_export && p.header_line != p.cur_header)
		fail(&p, p.header_line, "this export section has no keys (it needs a backend)");
	end_section(&p);
	fclose(p.f);
	if (p.failed) {
		section_reset(&p.sec);
		options_free(o);
		return EXIT_USAGE;
	}
	return 0;
}
