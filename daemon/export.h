/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_EXPORT_H
#define BLOCKD_DAEMON_EXPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "core/bio.h"
#include "daemon/export_spec.h"
#include "daemon/stats.h"

/*
 * An export: what a client names in the handshake.  It owns its backend
 * and the bio_set every request to it is built from; the bios carry the
 * front end's per-command state in their front pad.
 *
 * Exports are counted references: the registry holds one while the export
 * is configured and each client in transmission holds one, so an export
 * removed by a reload lives on until its last client leaves.
 */
struct export {
	atomic_uint refs;
	char *name;
	char *description;
	struct backend *be;
	struct bio_set bs;
	bool bs_ready;
	/* Block sizes the front end advertises and enforces. */
	uint32_t min_block;
	uint32_t pref_block;
	uint32_t max_block;
	struct export_stats stats;
};

/* What opening an export needs besides its spec; the same for every export. */
struct export_limits {
	unsigned int front_pad;		/* bytes before each bio: the front ends' state */
	uint32_t max_payload;		/* caps the advertised maximum block size */
	struct pgalloc *pages;		/* the daemon's I/O pages: bios' and backends' */
};

/**
 * export_open - open an export's backend and bio_set
 * @ex: the export to fill
 * @spec: what to open
 * @lim: the front pad, payload cap and page allocator
 * @err: a message on failure
 * @errlen: its size
 *
 * The backend and the bio_set both take their pages from @lim->pages.
 *
 * Return: 0, or -errno with a message in @err.
 */
int export_open(struct export *ex, const struct export_spec *spec,
		const struct export_limits *lim, char *err, size_t errlen);

/**
 * export_close - release an opened export
 * @ex: the export; no bio of it may be in flight
 */
void export_close(struct export *ex);

/**
 * export_new - export_open() into a new export holding one reference
 * @spec: what to open
 * @lim: as for export_open()
 * @err: a message on failure
 * @errlen: its size
 *
 * Return: the export, or NULL with a message in @err.
 */
struct export *export_new(const struct export_spec *spec,
			  const struct export_limits *lim, char *err,
			  size_t errlen);

/**
 * export_get - take a reference
 * @ex: the export
 */
void export_get(struct export *ex);

/**
 * export_put - drop a reference
 * @ex: the export
 *
 * The last one closes and frees the export, on any thread: no bio of it
 * is in flight once nobody holds it.
 */
void export_put(struct export *ex);

/**
 * export_flush - make every acknowledged write to @ex durable
 * @ex: the export
 *
 * Return: 0 or -errno.
 */
int export_flush(struct export *ex);

/**
 * exports_flush_all - export_flush() each of @ex, logging each failure
 * @ex: the exports
 * @nr: how many
 * @who: the front end, for the log line ("FUSE", "NBD")
 *
 * Every front end calls this as it stops, so nothing acknowledged is lost.
 */
void exports_flush_all(struct export *const *ex, unsigned int nr, const char *who);

/**
 * exports_put_all - export_put() each of @ex and free the array
 * @ex: an array from registry_snapshot(), or NULL
 * @nr: how many
 */
void exports_put_all(struct export **ex, unsigned int nr);

#endif
