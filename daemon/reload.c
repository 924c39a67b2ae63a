/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/reload.h"

static void describe(const struct export_spec *e, const struct export *ex,
		     bool is_default)
{
	log_info("export '%s'%s: %s:%s, %llu bytes, engine %s%s", e->name,
		 is_default ? " (default)" : "", e->params.kind, e->params.target,
		 (unsigned long long)ex->be->size, ex->be->engine,
		 ex->be->readonly ? ", read-only" : "");
}

static int open_one(struct registry *reg, const struct export_spec *spec,
		    const struct export_limits *lim, bool is_default)
{
	char err[256];
	struct export *ex;

	ex = export_new(spec, lim, err, sizeof(err));
	if (!ex) {
		log_err("export '%s': %s", spec->name, err);
		return 1;
	}
	describe(spec, ex, is_default);
	if (registry_add(reg, ex)) {
		log_err("export '%s': out of memory", spec->name);
		export_put(ex);
		return 1;
	}
	return 0;
}

int reload_open_exports(struct registry *reg, const struct options *o,
			const struct export_limits *lim)
{
	for (unsigned int i = 0; i < o->nr_exports; i++) {
		if (open_one(reg, &o->exports[i], lim, i == 0))
			return 1;
	}
	return 0;
}

static bool wanted(const struct options *o, const char *name)
{
	for (unsigned int i = 0; i < o->nr_exports; i++) {
		if (!strcmp(o->exports[i].name, name))
			return true;
	}
	return false;
}

struct gone_arg {
	const struct options *o;
	char ***gone;
	unsigned int *nr_gone;
};

/* Note an export the new configuration no longer has; a registry_for_each() callback. */
static int note_gone(struct export *ex, void *arg)
{
	struct gone_arg *ga = arg;

	if (wanted(ga->o, ex->name))
		return 0;
	return options_add_string(ga->gone, ga->nr_gone, ex->name);
}

void reload_apply(int argc, char **argv, const char *config,
		  struct registry *reg, const struct export_limits *lim)
{
	enum options_mode mode;
	struct options o;
	unsigned int i, added = 0, removed = 0;
	char **gone = NULL;
	unsigned int nr_gone = 0;
	struct gone_arg ga;

	/* The messages of a bad file go to stderr; say it in the log too. */
	if (options_load(argc, argv, config, &o, &mode)) {
		log_err("reload: the configuration has errors; nothing changed");
		return;
	}
	log_set_level(o.log_level);

	/* Names first, under the lock; removal drops references outside it. */
	ga.o = &o;
	ga.gone = &gone;
	ga.nr_gone = &nr_gone;
	registry_for_each(reg, note_gone, &ga);
	for (i = 0; i < nr_gone; i++) {
		if (registry_remove(reg, gone[i])) {
			log_info("reload: export '%s' removed; its clients keep it until they disconnect",
				 gone[i]);
			removed++;
		}
		free(gone[i]);
	}
	free(gone);
	for (i = 0; i < o.nr_exports; i++) {
		if (registry_has(reg, o.exports[i].name))
			continue;
		if (!open_one(reg, &o.exports[i], lim, false)) {
			log_info("reload: export '%s' added", o.exports[i].name);
			added++;
		}
	}
	log_notice("reload: %u exports added, %u removed", added, removed);
	options_free(&o);
}
