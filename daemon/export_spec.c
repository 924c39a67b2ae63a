/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_spec.h"
#include "size.h"

static const char *const backends[] = { "file", "memory", "nbd" };

static bool known_backend(const char *b)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(b, backends[i]))
			return true;
	return false;
}

static int parse_key(struct export_spec *spec, char *kv, char *err,
		     size_t errlen)
{
	char *val = strchr(kv, '=');

	if (val)
		*val++ = '\0';
	if (!strcmp(kv, "readonly") || !strcmp(kv, "ro")) {
		if (val && strcmp(val, "true") && strcmp(val, "1") &&
		    strcmp(val, "false") && strcmp(val, "0")) {
			snprintf(err, errlen, "readonly takes true or false, not '%s'", val);
			return -EINVAL;
		}
		spec->readonly = !val || !strcmp(val, "true") || !strcmp(val, "1");
		return 0;
	}
	if (!val || !*val) {
		snprintf(err, errlen, "key '%s' needs a value (%s=...)", kv, kv);
		return -EINVAL;
	}
	if (!strcmp(kv, "size")) {
		if (parse_size(val, &spec->size) || !spec->size) {
			snprintf(err, errlen, "bad size '%s' (try 1G, 512M, 4096)", val);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(kv, "cache")) {
		if (!strcmp(val, "none"))
			spec->cache = EXPORT_CACHE_NONE;
		else if (!strcmp(val, "writeback"))
			spec->cache = EXPORT_CACHE_WRITEBACK;
		else {
			snprintf(err, errlen, "cache takes none or writeback, not '%s'", val);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown key '%s' (known: size, cache, readonly)", kv);
	return -EINVAL;
}

int export_spec_parse(const char *s, struct export_spec *spec, char *err,
		      size_t errlen)
{
	char *copy, *eq, *colon, *comma, *kv, *save = NULL;
	int ret = -EINVAL;

	memset(spec, 0, sizeof(*spec));
	copy = strdup(s);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	eq = strchr(copy, '=');
	colon = strchr(copy, ':');
	if (!eq || !colon || eq > colon) {
		snprintf(err, errlen,
			 "'%s' is not NAME=BACKEND:TARGET[,key=value...]", s);
		goto out;
	}
	*eq = '\0';
	*colon = '\0';
	if (!*copy) {
		snprintf(err, errlen, "'%s': the export name is empty", s);
		goto out;
	}
	if (!known_backend(eq + 1)) {
		snprintf(err, errlen, "'%s': unknown backend '%s' (known: file, memory, nbd)",
			 s, eq + 1);
		goto out;
	}
	comma = strchr(colon + 1, ',');
	if (comma)
		*comma = '\0';
	spec->name = strdup(copy);
	spec->backend = strdup(eq + 1);
	spec->target = strdup(colon + 1);
	if (!spec->name || !spec->backend || !spec->target) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	if (strcmp(spec->backend, "memory") && !*spec->target) {
		snprintf(err, errlen, "'%s': backend %s needs a %s", s, spec->backend,
			 strcmp(spec->backend, "nbd") ? "path" : "URI");
		goto out;
	}
	if (comma) {
		for (kv = strtok_r(comma + 1, ",", &save); kv;
		     kv = strtok_r(NULL, ",", &save)) {
			if (parse_key(spec, kv, err, errlen))
				goto out;
		}
	}
	ret = 0;
out:
	free(copy);
	if (ret)
		export_spec_free(spec);
	return ret;
}

void export_spec_free(struct export_spec *spec)
{
	free(spec->name);
	free(spec->backend);
	free(spec->target);
	memset(spec, 0, sizeof(*spec));
}
