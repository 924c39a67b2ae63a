/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_FUSE_PAGES_H
#define BLOCKD_DAEMON_FUSE_PAGES_H

#include <stdint.h>
#include <sys/uio.h>

#include "core/bio.h"

/*
 * The FUSE data path's byte arithmetic over a request's page bios, kept
 * apart from libfuse so the unit tests link it: which bytes a READ reply
 * sends, and how a read-modify-write merges its payload and the bytes of
 * its edge blocks into the pages it writes.  A block over 4 KiB spans
 * pages, so everything goes by bvec iterators.
 */

/**
 * fuse_bio_whole_iter - an iterator over all of @b's pages
 * @b: a page bio, wherever its own iterator has got to
 *
 * Return: an iterator from @b's first byte to its last.
 */
struct bvec_iter fuse_bio_whole_iter(const struct bio *b);

/**
 * fuse_read_iov - the iovecs of a READ reply
 * @bios: the page bios read, in device order
 * @nr: how many
 * @skip: bytes read before the asked range (it starts mid-block)
 * @len: bytes asked
 * @iov: where the iovecs go: room for @nr * BIO_MAX_VECS
 *
 * Neighbours in memory become one iovec.
 *
 * Return: the number of iovecs.
 */
int fuse_read_iov(struct bio *const *bios, unsigned int nr, uint32_t skip,
		  uint32_t len, struct iovec *iov);

/**
 * fuse_rmw_copy_in - copy bytes of @src into a write's page bios
 * @dst: the write's page bios, in device order, one run of whole blocks
 * @nr_dst: how many
 * @at: where the bytes go, counted from the first byte of @dst[0]
 * @src: a page bio holding them (an edge block as read, or the payload)
 * @from: the first byte of @src to copy
 * @n: bytes to copy; fewer when @src or @dst ends first
 */
void fuse_rmw_copy_in(struct bio *const *dst, unsigned int nr_dst, uint32_t at,
		      struct bio *src, uint32_t from, uint32_t n);

/**
 * fuse_rmw_merge_edges - the bytes around a payload, from its edge blocks
 * @dst: the write's page bios, holding the payload at [@pay_start, @pay_end)
 * @nr_dst: how many
 * @head: the first block as read, or NULL when the payload starts it
 * @tail: the last block as read, or NULL when the payload ends it; may be
 *        @head when one block holds both edges
 * @pay_start: the payload's first byte, counted from the first block's
 * @pay_end: the byte after its last, counted the same way
 * @total: bytes of whole blocks the write covers
 * @block: the block size
 *
 * After this, @dst holds the whole blocks as they must be written.
 */
void fuse_rmw_merge_edges(struct bio *const *dst, unsigned int nr_dst,
			  struct bio *head, struct bio *tail,
			  uint32_t pay_start, uint32_t pay_end, uint32_t total,
			  uint32_t block);

#endif
