/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_BACKENDS_BOUNCE_H
#define BLOCKD_BACKENDS_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * Bounce buffers for unaligned direct I/O, the part both file engines
 * share (uring_rmw.c and uring.c, sync.c): which blocks to bounce, which
 * of their edges a write must read first, and copying a request's data in
 * and out of the buffer.  The engines do the I/O and hold the block range
 * lock (core/range_lock.h) around a read-modify-write.
 *
 * O_DIRECT wants every offset, length and buffer aligned to the logical
 * block.  A request that is not goes through a buffer of whole blocks: a
 * read reads the blocks that cover it and copies out what was asked for;
 * a write reads the partial blocks at its edges, copies its data in
 * between and writes the whole blocks back (read-modify-write).
 *
 * Everything here is pure; @align is always a power of two.
 */

struct request;

/**
 * align_down - @x rounded down to a multiple of @align
 * @x: a byte offset
 * @align: a power of two
 *
 * Return: the multiple.
 */
static inline uint64_t align_down(uint64_t x, uint64_t align)
{
	return x & ~(align - 1);
}

/**
 * align_up - @x rounded up to a multiple of @align
 * @x: a byte offset
 * @align: a power of two
 *
 * Return: the multiple.
 */
static inline uint64_t align_up(uint64_t x, uint64_t align)
{
	return (x + align - 1) & ~(align - 1);
}

/**
 * bounce_rq_aligned - whether a request can go to O_DIRECT as it is
 * @rq: a READ or WRITE request
 * @align: the device's O_DIRECT alignment
 *
 * Return: true if @rq's offset and length, and the address and length of
 * each of its iovecs, are multiples of @align.
 */
bool bounce_rq_aligned(const struct request *rq, uint64_t align);

/**
 * bounce_chunk - the next piece of a transfer through a bounce buffer
 * @pos: the first byte still to move
 * @end: the byte after the transfer's last
 * @buf_len: the buffer's size, a multiple of @align
 * @align: the block size
 * @cs: set to the first device byte of the piece, block-aligned
 * @ce: set to the byte after its last, block-aligned
 *
 * The piece is the blocks from the one holding @pos, as many as fit in
 * the buffer, and no further than the block holding @end - 1.
 *
 * Return: how many of the transfer's bytes, from @pos, lie in the piece.
 */
uint64_t bounce_chunk(uint64_t pos, uint64_t end, uint64_t buf_len,
		      uint64_t align, uint64_t *cs, uint64_t *ce);

/* The partial blocks a read-modify-write must read before it writes. */
struct bounce_edges {
	bool head;	/* the first block: the write starts inside it */
	bool tail;	/* the last block: the write ends inside it, and it
			 * is not the first block too */
};

/**
 * bounce_edges - the edge blocks of a write into whole blocks
 * @start: the first byte of the blocks, aligned
 * @stop: the byte after them, aligned
 * @off: the first byte the write brings
 * @end: the byte after its last
 * @align: the block size
 *
 * Return: which of [@start, @start + @align) and [@stop - @align, @stop)
 * must be read first because the write covers them only in part.  When
 * there is one block and both ends are partial, only @head is set.
 */
struct bounce_edges bounce_edges(uint64_t start, uint64_t stop, uint64_t off,
				 uint64_t end, uint64_t align);

/* A place in a request's iovecs, for copying piece by piece. */
struct bounce_iter {
	const struct iovec *iov;	/* NULL: a source of zeros */
	unsigned int nr, idx;
	size_t off;			/* into iov[idx] */
};

/**
 * bounce_iter_init - start at the first byte of @iov
 * @it: the iterator
 * @iov: the iovecs, or NULL for as many zeros as are asked for
 * @nr: how many iovecs
 */
void bounce_iter_init(struct bounce_iter *it, const struct iovec *iov,
		      unsigned int nr);

/**
 * bounce_copy_in - copy the next @len bytes of the iovecs into @buf
 * @it: where in the iovecs; advanced past them
 * @buf: the bounce buffer's place for them
 * @len: bytes, no more than are left
 *
 * For a write: the data goes between the edge blocks.
 */
void bounce_copy_in(struct bounce_iter *it, char *buf, size_t len);

/**
 * bounce_copy_out - copy @len bytes from @buf into the next of the iovecs
 * @it: where in the iovecs, which are not a source of zeros; advanced
 * @buf: the bounce buffer's bytes
 * @len: bytes, no more than are left
 *
 * For a read: what was asked for, out of the blocks that cover it.
 */
void bounce_copy_out(struct bounce_iter *it, const char *buf, size_t len);

#endif
