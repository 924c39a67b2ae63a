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
 * attached to by reference, not through the registry.  Its fields are
 * private to registry.c: use the functions below.
 */
struct registry {
	pthread_mutex_t lock;
	struct export **ex;
	unsigned int nr;
};

/**
 * registry_init - an empty registry
 * @r: the registry
 */
void registry_init(struct registry *r);

/**
 * registry_clear - drop every export's registry reference
 * @r: the registry
 */
void registry_clear(struct registry *r);

/**
 * registry_add - add @ex at the end
 * @r: the registry
 * @ex: the export; the registry takes over the caller's reference
 *
 * Return: 0 or -ENOMEM.
 */
int registry_add(struct registry *r, struct export *ex);

/**
 * registry_remove - remove the export called @name
 * @r: the registry
 * @name: the export's name
 *
 * Return: true, or false if there is none.
 */
bool registry_remove(struct registry *r, const char *name);

/**
 * registry_get - the export called @name
 * @r: the registry
 * @name: the name; "" names the first
 * @len: its length
 *
 * Return: the export, with a reference the caller drops with
 * export_put(), or NULL if there is none.
 */
struct export *registry_get(struct registry *r, const char *name, size_t len);

/**
 * registry_has - whether an export called @name is registered
 * @r: the registry
 * @name: the name
 *
 * Return: true when it is.
 */
bool registry_has(struct registry *r, const char *name);

/**
 * registry_count - how many exports are registered now
 * @r: the registry
 *
 * Return: their number.
 */
unsigned int registry_count(struct registry *r);

/**
 * registry_for_each - call @fn on every export, in order, under the lock
 * @r: the registry
 * @fn: the callback; it must not call into the registry.  A non-zero
 *      return stops the walk.
 * @arg: passed to @fn
 *
 * Return: 0, or what @fn returned that stopped the walk.
 */
int registry_for_each(struct registry *r,
		      int (*fn)(struct export *ex, void *arg), void *arg);

/**
 * registry_snapshot - the exports registered now, each referenced
 * @r: the registry
 * @nr: set to their number
 *
 * Return: an array the caller gives back with exports_put_all(), or NULL
 * when out of memory.  For work that must not hold the lock (flushing).
 */
struct export **registry_snapshot(struct registry *r, unsigned int *nr);

#endif
