/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/export.h"

/* Bios kept in reserve per export: enough for one full-size command. */
#define EXPORT_BIO_RESERVE	64

int export_open(struct export *ex, const struct export_spec *spec,
		unsigned int front_pad, uint32_t max_payload, char *err,
		size_t errlen)
{
	int ret;

	memset(ex, 0, sizeof(*ex));
	ex->name = strdup(spec->name);
	if (asprintf(&ex->description, "%s:%s", spec->params.kind,
		     spec->params.target) < 0)
		ex->description = NULL;
	if (!ex->name || !ex->description) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	ret = backend_open(&spec->params, &ex->be, err, errlen);
	if (ret)
		goto fail;
	ret = bioset_init(&ex->bs, EXPORT_BIO_RESERVE, front_pad,
			  BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER);
	if (ret) {
		snprintf(err, errlen, "cannot set up its bio_set: %s", strerror(-ret));
		goto fail;
	}
	ex->bs_ready = true;
	/*
	 * Bios address whole sectors, so nothing smaller than the logical
	 * block can be expressed; a client that honours the advertised
	 * minimum never sends less.
	 */
	ex->min_block = ex->be->logical_block_size;
	if (ex->min_block < SECTOR_SIZE)
		ex->min_block = SECTOR_SIZE;
	ex->pref_block = ex->be->physical_block_size;
	if (ex->pref_block < ex->min_block)
		ex->pref_block = ex->min_block;
	ex->max_block = max_payload;
	return 0;
fail:
	export_close(ex);
	return ret;
}

void export_close(struct export *ex)
{
	if (ex->bs_ready)
		bioset_exit(&ex->bs);
	if (ex->be)
		backend_close(ex->be);
	free(ex->name);
	free(ex->description);
	memset(ex, 0, sizeof(*ex));
}

struct export *export_find(struct export *exports, unsigned int nr,
			   const char *name, size_t len)
{
	unsigned int i;

	if (!nr)
		return NULL;
	if (!len)
		return &exports[0];
	for (i = 0; i < nr; i++) {
		if (strlen(exports[i].name) == len &&
		    !memcmp(exports[i].name, name, len))
			return &exports[i];
	}
	return NULL;
}
