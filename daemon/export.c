/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ioloop.h"
#include "core/page.h"
#include "core/request.h"
#include "daemon/export.h"
#include "daemon/log.h"

/* Bios kept in reserve per export: enough for one full-size command. */
#define EXPORT_BIO_RESERVE	64

int export_open(struct export *ex, const struct export_spec *spec,
		const struct export_limits *lim, char *err, size_t errlen)
{
	int ret;

	memset(ex, 0, sizeof(*ex));
	ex->name = strdup(spec->name);
	if (spec->description)
		ex->description = strdup(spec->description);
	else if (asprintf(&ex->description, "%s:%s", spec->params.kind,
			  spec->params.target) < 0)
		ex->description = NULL;
	if (!ex->name || !ex->description) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	ret = backend_open(&spec->params, lim->pages, &ex->be, err, errlen);
	if (ret)
		goto fail;
	ret = bioset_init(&ex->bs, spec->pool_size ? spec->pool_size : EXPORT_BIO_RESERVE,
			  lim->front_pad, BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER,
			  lim->pages);
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
	ex->max_block = lim->max_payload;
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

struct export *export_new(const struct export_spec *spec,
			  const struct export_limits *lim, char *err,
			  size_t errlen)
{
	struct export *ex = malloc(sizeof(*ex));

	if (!ex) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (export_open(ex, spec, lim, err, errlen)) {
		free(ex);
		return NULL;
	}
	atomic_init(&ex->refs, 1);
	return ex;
}

void export_get(struct export *ex)
{
	atomic_fetch_add(&ex->refs, 1);
}

void export_put(struct export *ex)
{
	if (atomic_fetch_sub(&ex->refs, 1) != 1)
		return;
	log_info("export '%s' closed", ex->name);
	export_close(ex);
	free(ex);
}

struct flush_wait {
	bool done;
	int status;
};

static void flush_endio(struct bio *bio)
{
	struct flush_wait *fw = bio->bi_private;

	fw->status = bio->bi_status;
	fw->done = true;
}

int export_flush(struct export *ex)
{
	struct flush_wait fw = { 0 };
	struct ioloop *loop, *prev = ioloop_current();
	struct bio *bio;

	if (!(ex->be->caps & BACKEND_CAP_FLUSH) || ex->be->readonly)
		return 0;
	/*
	 * Backends complete on the submitting loop's thread, so the calling
	 * thread runs a loop of its own for as long as the flush takes.
	 */
	loop = prev ? prev : ioloop_create(8, 0, NULL);
	if (!loop)
		return -errno;
	ioloop_set_current(loop);
	bio = bio_kmalloc(BLK_GFP_WAIT, 0);
	if (!bio) {
		fw.status = -ENOMEM;
		goto out;
	}
	bio_reset(bio, REQ_OP_FLUSH);
	bio->bi_queue = &ex->be->queue;
	bio->bi_end_io = flush_endio;
	bio->bi_private = &fw;
	submit_bio(bio);
	ioloop_run_until(loop, &fw.done);
	bio_put(bio);
out:
	ioloop_set_current(prev);
	if (!prev)
		ioloop_destroy(loop);
	return fw.status;
}

void exports_flush_all(struct export *const *ex, unsigned int nr, const char *who)
{
	unsigned int i;
	int ret;

	for (i = 0; i < nr; i++) {
		ret = export_flush(ex[i]);
		if (ret)
			log_err("%s: flushing export '%s' failed: %s", who, ex[i]->name,
				strerror(-ret));
	}
}

void exports_put_all(struct export **ex, unsigned int nr)
{
	unsigned int i;

	for (i = 0; ex && i < nr; i++)
		export_put(ex[i]);
	free(ex);
}
