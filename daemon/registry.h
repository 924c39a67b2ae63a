/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_REGISTRY_H
#define BLOCKD_DAEMON_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/export.h"

/*
 * The exports clients can name now.  Worker threads look exports up
 * during the handshake while the main thread adds and removes them on
 * SIGHUP, so every access holds the lock; a client keeps the export it
 * attached to by reference, not through the registry.
 */
struct registry {
	pthread_mutex_t lock;
	struct export **ex;
	unsigned int nr;
};

void registry_init(struct registry *r);

/* Drop every export's registry reference. */
void registry_clear(struct registry *r);

/* Add @ex at the end, taking over the caller's reference. 0 or -ENOMEM. */
int registry_add(struct registry *r, struct export *ex);

/* Remove the export called @name; false if there is none. */
bool registry_remove(struct registry *r, const char *name);

/*
 * The export called @name (length @len), with a reference the caller
 * drops with export_put(); "" names the first.  NULL if there is none.
 */
struct export *registry_get(struct registry *r, const char *name, size_t len);

/* Whether an export called @name is registered. */
bool registry_has(struct registry *r, const char *name);

/* For iterating r->ex[0..nr) (NBD_OPT_LIST, stats). */
void registry_lock(struct registry *r);
void registry_unlock(struct registry *r);

#endif
