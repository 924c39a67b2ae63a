/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/registry.h"

void registry_init(struct registry *r)
{
	pthread_mutex_init(&r->lock, NULL);
	r->ex = NULL;
	r->nr = 0;
}

static void registry_lock(struct registry *r)
{
	pthread_mutex_lock(&r->lock);
}

static void registry_unlock(struct registry *r)
{
	pthread_mutex_unlock(&r->lock);
}

unsigned int registry_count(struct registry *r)
{
	unsigned int nr;

	registry_lock(r);
	nr = r->nr;
	registry_unlock(r);
	return nr;
}

int registry_for_each(struct registry *r,
		      int (*fn)(struct export *ex, void *arg), void *arg)
{
	unsigned int i;
	int ret = 0;

	registry_lock(r);
	for (i = 0; i < r->nr && !ret; i++)
		ret = fn(r->ex[i], arg);
	registry_unlock(r);
	return ret;
}

struct export **registry_snapshot(struct registry *r, unsigned int *nr)
{
	struct export **ex;
	unsigned int i;

	registry_lock(r);
	/* One more than needed: an empty registry still gets an array. */
	ex = calloc(r->nr + 1, sizeof(*ex));
	*nr = 0;
	for (i = 0; ex && i < r->nr; i++) {
		export_get(r->ex[i]);
		ex[(*nr)++] = r->ex[i];
	}
	registry_unlock(r);
	return ex;
}

void registry_clear(struct registry *r)
{
	struct export **ex;
	unsigned int i, nr;

	registry_lock(r);
	ex = r->ex;
	nr = r->nr;
	r->ex = NULL;
	r->nr = 0;
	registry_unlock(r);
	/* Outside the lock: the last reference closes the backend. */
	for (i = 0; i < nr; i++)
		export_put(ex[i]);
	free(ex);
}

int registry_add(struct registry *r, struct export *ex)
{
	struct export **n;

	registry_lock(r);
	n = realloc(r->ex, (r->nr + 1) * sizeof(*n));
	if (!n) {
		registry_unlock(r);
		return -ENOMEM;
	}
	r->ex = n;
	n[r->nr++] = ex;
	registry_unlock(r);
	return 0;
}

static int find(struct registry *r, const char *name, size_t len)
{
	unsigned int i;

	if (!r->nr)
		return -1;
	if (!len)
		return 0;
	for (i = 0; i < r->nr; i++) {
		if (strlen(r->ex[i]->name) == len && !memcmp(r->ex[i]->name, name, len))
			return (int)i;
	}
	return -1;
}

bool registry_remove(struct registry *r, const char *name)
{
	struct export *ex;
	int i;

	registry_lock(r);
	i = *name ? find(r, name, strlen(name)) : -1;
	if (i < 0) {
		registry_unlock(r);
		return false;
	}
	ex = r->ex[i];
	memmove(&r->ex[i], &r->ex[i + 1], (r->nr - (unsigned int)i - 1) * sizeof(*r->ex));
	r->nr--;
	registry_unlock(r);
	export_put(ex);
	return true;
}

struct export *registry_get(struct registry *r, const char *name, size_t len)
{
	struct export *ex = NULL;
	int i;

	registry_lock(r);
	i = find(r, name, len);
	if (i >= 0) {
		ex = r->ex[i];
		export_get(ex);
	}
	registry_unlock(r);
	return ex;
}

bool registry_has(struct registry *r, const char *name)
{
	bool has;

	registry_lock(r);
	has = *name && find(r, name, strlen(name)) >= 0;
	registry_unlock(r);
	return has;
}
