/* SPDX-License-Identifier: MIT */
/*
 * NBD replies without a connection: headers, errors and extents; see
 * nbd_reply.h.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>

#include "daemon/nbd_reply.h"

uint32_t nbd_errno(blk_status_t status)
{
	switch (blk_status_to_errno(status)) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EINVAL:
		return NBD_EINVAL;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case EOPNOTSUPP:
		return NBD_ENOTSUP;
	case ENOMEM:
		return NBD_ENOMEM;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

const char *nbd_cmd_name(uint16_t type)
{
	static const char *const names[] = {
		[NBD_CMD_READ] = "READ",
		[NBD_CMD_WRITE] = "WRITE",
		[NBD_CMD_DISC] = "DISC",
		[NBD_CMD_FLUSH] = "FLUSH",
		[NBD_CMD_TRIM] = "TRIM",
		[NBD_CMD_CACHE] = "CACHE",
		[NBD_CMD_WRITE_ZEROES] = "WRITE_ZEROES",
		[NBD_CMD_BLOCK_STATUS] = "BLOCK_STATUS",
	};

	if (type >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[type];
}

static void build_simple(struct nbd_reply *r, uint64_t cookie, uint32_t error,
			 uint32_t payload)
{
	r->hdr.simple.magic = htobe32(NBD_SIMPLE_REPLY_MAGIC);
	r->hdr.simple.error = htobe32(error);
	r->hdr.simple.cookie = htobe64(cookie);
	r->hdr_len = sizeof(r->hdr.simple);
	r->len = r->hdr_len + (error ? 0 : payload);
}

/* The chunk header, flagged DONE: every reply of ours is one chunk. */
static void build_chunk(struct nbd_reply *r, uint16_t type, uint64_t cookie,
			uint32_t fixed, uint32_t payload)
{
	struct nbd_structured_reply *h = &r->hdr.structured.chunk;

	h->magic = htobe32(NBD_STRUCTURED_REPLY_MAGIC);
	h->flags = htobe16(NBD_REPLY_FLAG_DONE);
	h->type = htobe16(type);
	h->cookie = htobe64(cookie);
	h->length = htobe32(fixed + payload);
	r->hdr_len = (uint32_t)sizeof(*h) + fixed;
	r->len = r->hdr_len + payload;
}

void nbd_reply_build(struct nbd_reply *r, bool structured, uint16_t type,
		     uint64_t cookie, uint64_t offset, uint32_t error,
		     uint32_t payload)
{
	if (!structured || (type != NBD_CMD_READ && type != NBD_CMD_BLOCK_STATUS)) {
		build_simple(r, cookie, error,
			     type == NBD_CMD_READ ? payload : 0);
		return;
	}
	if (error) {
		r->hdr.structured.error.error = htobe32(error);
		r->hdr.structured.error.len = 0;
		build_chunk(r, NBD_REPLY_TYPE_ERROR, cookie,
			    sizeof(r->hdr.structured.error), 0);
	} else if (type == NBD_CMD_READ) {
		r->hdr.structured.data.offset = htobe64(offset);
		build_chunk(r, NBD_REPLY_TYPE_OFFSET_DATA, cookie,
			    sizeof(r->hdr.structured.data), payload);
	} else {
		r->hdr.structured.status.context_id =
			htobe32(NBD_META_ID_BASE_ALLOCATION);
		build_chunk(r, NBD_REPLY_TYPE_BLOCK_STATUS, cookie,
			    sizeof(r->hdr.structured.status), payload);
	}
}

static uint32_t extent_state(const struct backend_extent *e)
{
	uint32_t f = 0;

	if (e->flags & BACKEND_EXTENT_HOLE)
		f |= NBD_STATE_HOLE;
	if (e->flags & BACKEND_EXTENT_ZERO)
		f |= NBD_STATE_ZERO;
	return f;
}

unsigned int nbd_extents_encode(const struct backend_extent *ext, unsigned int nr,
				uint64_t offset, uint32_t length,
				struct nbd_block_descriptor *out)
{
	uint64_t end = offset + length;
	uint32_t last_flags = 0;
	unsigned int i, n = 0;

	for (i = 0; i < nr; i++) {
		const struct backend_extent *e = &ext[i];
		uint64_t s = e->offset < offset ? offset : e->offset;
		uint64_t t = e->offset + e->length > end ? end : e->offset + e->length;
		uint32_t f = extent_state(e);

		if (t <= s)
			continue;
		/* Neighbours with the same state are one extent to the client. */
		if (n && f == last_flags) {
			out[n - 1].length = htobe32(be32toh(out[n - 1].length) +
						    (uint32_t)(t - s));
			continue;
		}
		out[n].length = htobe32((uint32_t)(t - s));
		out[n].status_flags = htobe32(f);
		last_flags = f;
		n++;
	}
	return n;
}
