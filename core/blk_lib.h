/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_BLK_LIB_H
#define BLOCKD_CORE_BLK_LIB_H

#include <stdint.h>

#include "core/bio.h"
#include "core/page.h"
#include "core/request.h"

/*
 * Building one front-end request out of bios, as the kernel's
 * block/blk-lib.c does for discards and zeroing: the request is one
 * data-less "parent" bio whose front pad holds the front end's state, and
 * every bio that does the work is chained to it, so the parent's bi_end_io
 * runs once, when the last of them and the caller's own hold have ended.
 *
 *	parent = bio_alloc_bioset(..., bs); (state in its front pad)
 *	blk_alloc_data_bios() / blk_submit_nodata() ...
 *	bio_chain_and_submit(parent, child) for each data bio
 *	bio_endio(parent);	(drop the caller's hold)
 *
 * Never waits for memory: a front end that is told -ENOMEM stops reading
 * requests and tries again later, which keeps the forward-progress rule.
 */

/* Data-less bios (discard, write zeroes) are split at this size. */
#define BIO_NODATA_MAX_BYTES	(256u << 20)
/* A page bio holds at most one full bvec table. */
#define BIO_DATA_MAX_BYTES	(BIO_MAX_VECS * PAGE_SIZE)

/**
 * bio_chain_and_submit - chain @child to @parent and submit @child
 * @parent: the request's parent bio
 * @child: a bio doing part of its work
 *
 * The kernel's bio_chain_and_submit(), for a chain that always ends at the
 * one parent: @parent's completion waits for @child's, and takes its error.
 */
void bio_chain_and_submit(struct bio *parent, struct bio *child);

/**
 * blk_alloc_data_bio - a page bio of @bs for @size bytes at @off
 * @bs: the bio_set (its page allocator gives the pages)
 * @q: the queue the bio goes to
 * @opf: op and flags
 * @off: device offset in bytes, sector aligned
 * @size: at most BIO_DATA_MAX_BYTES
 *
 * Return: the bio with a page per bvec, or NULL when the bio_set or the
 * page budget is empty (never waits).
 */
struct bio *blk_alloc_data_bio(struct bio_set *bs, struct blk_queue *q,
			       blk_opf_t opf, uint64_t off, uint32_t size);

/**
 * blk_alloc_data_bios - page bios for [@off, @off + @len), all or none
 * @bs: the bio_set
 * @q: the queue they go to
 * @opf: op and flags
 * @off: device offset in bytes, sector aligned
 * @len: bytes
 * @bios: where the bios go, in device order
 * @max: room in @bios
 *
 * Split at BIO_DATA_MAX_BYTES, as blk-lib splits at the queue's limit.
 *
 * Return: the number of bios, -ENOMEM when memory is short (none are
 * kept), or -E2BIG when @max is too small.
 */
int blk_alloc_data_bios(struct bio_set *bs, struct blk_queue *q, blk_opf_t opf,
			uint64_t off, uint64_t len, struct bio **bios,
			unsigned int max);

/**
 * blk_submit_nodata - a data-less @opf over [@off, @off + @len), chained
 * @parent: the request's parent bio
 * @bs: the bio_set the pieces come from
 * @q: the queue they go to
 * @opf: REQ_OP_DISCARD, REQ_OP_WRITE_ZEROES or REQ_OP_FLUSH, with flags
 * @off: device offset in bytes (ignored for a flush)
 * @len: bytes (ignored for a flush, which is one bio)
 *
 * Split at BIO_NODATA_MAX_BYTES, each piece chained to @parent and
 * submitted.
 *
 * Return: 0, or -ENOMEM when @bs ran dry: the pieces already submitted
 * stand, and @parent still ends after them.
 */
int blk_submit_nodata(struct bio *parent, struct bio_set *bs,
		      struct blk_queue *q, blk_opf_t opf, uint64_t off,
		      uint64_t len);

#endif
