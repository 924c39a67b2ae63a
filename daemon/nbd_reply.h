/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_NBD_REPLY_H
#define BLOCKD_DAEMON_NBD_REPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "core/bio.h"
#include "daemon/nbd-protocol.h"

/*
 * The pure part of NBD transmission: reply headers, the errno mapping and
 * the BLOCK_STATUS extents, with no connection, socket or bio behind them,
 * so tests/unit/check_daemon tests them alone.
 */

/* A reply's header: simple, or a structured chunk with its fixed part. */
union nbd_reply_header {
	struct nbd_simple_reply simple;
	struct {
		struct nbd_structured_reply chunk;
		union {
			struct nbd_structured_reply_offset_data data;
			struct nbd_structured_reply_error error;
			struct nbd_structured_reply_block_status_hdr status;
		};
	} NBD_PACKED structured;
};

/* What a finished command is answered with; its payload follows the header. */
struct nbd_reply {
	union nbd_reply_header hdr;
	uint32_t hdr_len;		/* bytes of @hdr on the wire */
	uint64_t len;			/* the whole reply: header + payload */
};

/**
 * nbd_errno - the NBD error for a bio or backend status
 * @status: 0 or -errno (a bio's bi_status, an extents query's status)
 *
 * Goes through blk_status_to_errno(), then maps to the few errors the
 * protocol has; anything else is NBD_EIO.
 *
 * Return: 0 for success, else an NBD_E* value.
 */
uint32_t nbd_errno(blk_status_t status);

/**
 * nbd_reply_build - the reply header for a finished command
 * @r: filled in: header, its length and the reply's length
 * @structured: structured replies were negotiated
 * @type: the request's NBD_CMD_*
 * @cookie: the request's cookie
 * @offset: the request's offset
 * @error: NBD_E*, or 0
 * @payload: bytes that follow the header when @error is 0: a READ's
 *	length, or a BLOCK_STATUS reply's descriptors
 *
 * READ and BLOCK_STATUS get a structured chunk (OFFSET_DATA, BLOCK_STATUS
 * or ERROR, each flagged DONE) when @structured; everything else, and
 * every command of a simple connection, a simple reply.  A simple reply
 * carries a payload only for a READ without error.
 */
void nbd_reply_build(struct nbd_reply *r, bool structured, uint16_t type,
		     uint64_t cookie, uint64_t offset, uint32_t error,
		     uint32_t payload);

/**
 * nbd_extents_encode - backend extents as BLOCK_STATUS descriptors
 * @ext: the backend's extents, in device order
 * @nr: how many
 * @offset: the request's offset
 * @length: the request's length
 * @out: room for @nr descriptors, filled big-endian
 *
 * Each extent is clipped to [@offset, @offset + @length); extents wholly
 * outside are dropped, and neighbours whose NBD_STATE_* flags are equal
 * merge into one descriptor, as the client would see them anyway.
 *
 * Return: the number of descriptors written (0 when none overlap).
 */
unsigned int nbd_extents_encode(const struct backend_extent *ext, unsigned int nr,
				uint64_t offset, uint32_t length,
				struct nbd_block_descriptor *out);

/**
 * nbd_cmd_name - a command's name, for logs
 * @type: NBD_CMD_*
 *
 * Return: "READ", "WRITE", ..., or NULL for a type the protocol does
 * not define.
 */
const char *nbd_cmd_name(uint16_t type);

#endif
