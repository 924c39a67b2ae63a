/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_EXPORT_H
#define BLOCKD_DAEMON_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "core/bio.h"
#include "daemon/export_spec.h"

/*
 * An export: what a client names in the handshake.  It owns its backend
 * and the bio_set every request to it is built from; the bios carry the
 * front end's per-command state in their front pad.
 */
struct export {
	char *name;
	char *description;
	struct backend *be;
	struct bio_set bs;
	bool bs_ready;
	/* Block sizes the front end advertises and enforces. */
	uint32_t min_block;
	uint32_t pref_block;
	uint32_t max_block;
};

/*
 * Open @spec's backend and set up its bio_set with @front_pad bytes per
 * bio.  @max_payload caps the advertised maximum block size.  0, or -errno
 * with a message in @err.
 */
int export_open(struct export *ex, const struct export_spec *spec,
		unsigned int front_pad, uint32_t max_payload, char *err,
		size_t errlen);

/* Release an opened export. No bio of it may be in flight. */
void export_close(struct export *ex);

/* The export called @name (length @len); "" is the first one.  NULL if none. */
struct export *export_find(struct export *exports, unsigned int nr,
			   const char *name, size_t len);

#endif
