/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_NBD_PROTOCOL_H
#define BLOCKD_DAEMON_NBD_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/*
 * The NBD wire protocol, fixed newstyle, from the NBD project's
 * doc/proto.md.  Every field on the wire is big-endian.
 */

#define NBD_MAGIC		0x4e42444d41474943ull	/* "NBDMAGIC" */
#define NBD_IHAVEOPT		0x49484156454f5054ull	/* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC	0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE	(1u << 0)
#define NBD_FLAG_NO_ZEROES	(1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES	NBD_FLAG_NO_ZEROES

/* Options. */
#define NBD_OPT_EXPORT_NAME	1
#define NBD_OPT_ABORT		2
#define NBD_OPT_LIST		3
#define NBD_OPT_STARTTLS	5
#define NBD_OPT_INFO		6
#define NBD_OPT_GO		7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT 10

/* Option replies. */
#define NBD_REP_ACK		1
#define NBD_REP_SERVER		2
#define NBD_REP_INFO		3
#define NBD_REP_META_CONTEXT	4
#define NBD_REP_FLAG_ERROR	(1u << 31)
#define NBD_REP_ERR_UNSUP	(NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY	(NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID	(NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM	(NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD	(NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN	(NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN	(NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG	(NBD_REP_FLAG_ERROR | 9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT		0
#define NBD_INFO_NAME		1
#define NBD_INFO_DESCRIPTION	2
#define NBD_INFO_BLOCK_SIZE	3

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS	(1u << 0)
#define NBD_FLAG_READ_ONLY	(1u << 1)
#define NBD_FLAG_SEND_FLUSH	(1u << 2)
#define NBD_FLAG_SEND_FUA	(1u << 3)
#define NBD_FLAG_ROTATIONAL	(1u << 4)
#define NBD_FLAG_SEND_TRIM	(1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF	(1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN	(1u << 8)
#define NBD_FLAG_SEND_CACHE	(1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO	(1u << 11)

/* Commands. */
#define NBD_CMD_READ		0
#define NBD_CMD_WRITE		1
#define NBD_CMD_DISC		2
#define NBD_CMD_FLUSH		3
#define NBD_CMD_TRIM		4
#define NBD_CMD_CACHE		5
#define NBD_CMD_WRITE_ZEROES	6
#define NBD_CMD_BLOCK_STATUS	7

/* Command flags. */
#define NBD_CMD_FLAG_FUA	(1u << 0)
#define NBD_CMD_FLAG_NO_HOLE	(1u << 1)
#define NBD_CMD_FLAG_DF		(1u << 2)
#define NBD_CMD_FLAG_REQ_ONE	(1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO	(1u << 4)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE	(1u << 0)
#define NBD_REPLY_TYPE_NONE	0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR	((1u << 15) | 1)

/* base:allocation flags. */
#define NBD_STATE_HOLE		(1u << 0)
#define NBD_STATE_ZERO		(1u << 1)

/* Errors. */
#define NBD_EPERM		1
#define NBD_EIO			5
#define NBD_ENOMEM		12
#define NBD_EINVAL		22
#define NBD_ENOSPC		28
#define NBD_EOVERFLOW		75
#define NBD_ENOTSUP		95
#define NBD_ESHUTDOWN		108

/* Strings (export names, queries) are at most this long. */
#define NBD_MAX_STRING		4096

/* The meta context we offer, and the id we give it. */
#define NBD_META_BASE_ALLOCATION "base:allocation"
#define NBD_META_ID_BASE_ALLOCATION 1

/*
 * The messages, as nbdkit's common/protocol/nbd-protocol.h lays them out:
 * packed, every field big-endian on the wire (fill with htobe*, read with
 * be*toh from <endian.h>).  Variable-length parts (names, payloads) follow
 * the struct they belong to.
 */
#define NBD_PACKED __attribute__((packed))

/* The server's greeting: "NBDMAGIC", "IHAVEOPT", handshake flags. */
struct nbd_new_handshake {
	uint64_t nbdmagic;		/* NBD_MAGIC */
	uint64_t version;		/* NBD_IHAVEOPT */
	uint16_t gflags;		/* NBD_FLAG_FIXED_NEWSTYLE ... */
} NBD_PACKED;

/* The client's flags, after the greeting. */
struct nbd_new_handshake_client {
	uint32_t cflags;		/* NBD_FLAG_C_* */
} NBD_PACKED;

/* An option from the client; @optlen bytes of data follow. */
struct nbd_new_option {
	uint64_t version;		/* NBD_IHAVEOPT */
	uint32_t option;		/* NBD_OPT_* */
	uint32_t optlen;
} NBD_PACKED;

/* The answer to NBD_OPT_EXPORT_NAME (no zeroes with NBD_FLAG_C_NO_ZEROES). */
struct nbd_export_name_reply {
	uint64_t exportsize;
	uint16_t eflags;		/* transmission flags */
	uint8_t zeroes[124];
} NBD_PACKED;

/* The length of an NBD_OPT_EXPORT_NAME reply without its zeroes. */
#define NBD_EXPORT_NAME_REPLY_SHORT offsetof(struct nbd_export_name_reply, zeroes)

/* Every other option's reply header; @replylen bytes of data follow. */
struct nbd_fixed_new_option_reply {
	uint64_t magic;			/* NBD_REP_MAGIC */
	uint32_t option;		/* the option answered */
	uint32_t reply;			/* NBD_REP_* */
	uint32_t replylen;
} NBD_PACKED;

/* NBD_REP_SERVER: the name's length, the name, then the description. */
struct nbd_fixed_new_option_reply_server {
	uint32_t export_name_len;
} NBD_PACKED;

/* NBD_REP_INFO of type NBD_INFO_EXPORT. */
struct nbd_fixed_new_option_reply_info_export {
	uint16_t info;			/* NBD_INFO_EXPORT */
	uint64_t exportsize;
	uint16_t eflags;
} NBD_PACKED;

/* NBD_REP_INFO of type NBD_INFO_NAME or _DESCRIPTION: the string follows. */
struct nbd_fixed_new_option_reply_info_name_or_desc {
	uint16_t info;
} NBD_PACKED;

/* NBD_REP_INFO of type NBD_INFO_BLOCK_SIZE. */
struct nbd_fixed_new_option_reply_info_block_size {
	uint16_t info;			/* NBD_INFO_BLOCK_SIZE */
	uint32_t minimum;
	uint32_t preferred;
	uint32_t maximum;
} NBD_PACKED;

/* NBD_REP_META_CONTEXT: the context's id, then its name. */
struct nbd_fixed_new_option_reply_meta_context {
	uint32_t context_id;
} NBD_PACKED;

/* A request in transmission; a WRITE's payload follows. */
struct nbd_request {
	uint32_t magic;			/* NBD_REQUEST_MAGIC */
	uint16_t flags;			/* NBD_CMD_FLAG_* */
	uint16_t type;			/* NBD_CMD_* */
	uint64_t cookie;
	uint64_t offset;
	uint32_t count;
} NBD_PACKED;

/* A simple reply; a READ's data follows when there is no error. */
struct nbd_simple_reply {
	uint32_t magic;			/* NBD_SIMPLE_REPLY_MAGIC */
	uint32_t error;			/* NBD_E* */
	uint64_t cookie;
} NBD_PACKED;

/* A structured reply chunk's header; @length bytes of payload follow. */
struct nbd_structured_reply {
	uint32_t magic;			/* NBD_STRUCTURED_REPLY_MAGIC */
	uint16_t flags;			/* NBD_REPLY_FLAG_* */
	uint16_t type;			/* NBD_REPLY_TYPE_* */
	uint64_t cookie;
	uint32_t length;
} NBD_PACKED;

/* NBD_REPLY_TYPE_OFFSET_DATA: the data follows. */
struct nbd_structured_reply_offset_data {
	uint64_t offset;
} NBD_PACKED;

/* NBD_REPLY_TYPE_ERROR: a message of @len bytes may follow. */
struct nbd_structured_reply_error {
	uint32_t error;			/* NBD_E* */
	uint16_t len;
} NBD_PACKED;

/* NBD_REPLY_TYPE_BLOCK_STATUS: descriptors follow. */
struct nbd_structured_reply_block_status_hdr {
	uint32_t context_id;
} NBD_PACKED;

/* One extent of a NBD_REPLY_TYPE_BLOCK_STATUS chunk. */
struct nbd_block_descriptor {
	uint32_t length;
	uint32_t status_flags;		/* NBD_STATE_* */
} NBD_PACKED;

_Static_assert(sizeof(struct nbd_new_handshake) == 18, "greeting");
_Static_assert(sizeof(struct nbd_new_handshake_client) == 4, "client flags");
_Static_assert(sizeof(struct nbd_new_option) == 16, "option header");
_Static_assert(sizeof(struct nbd_export_name_reply) == 134, "export name reply");
_Static_assert(sizeof(struct nbd_fixed_new_option_reply) == 20, "option reply");
_Static_assert(sizeof(struct nbd_fixed_new_option_reply_server) == 4, "REP_SERVER");
_Static_assert(sizeof(struct nbd_fixed_new_option_reply_info_export) == 12, "INFO_EXPORT");
_Static_assert(sizeof(struct nbd_fixed_new_option_reply_info_name_or_desc) == 2, "INFO_NAME");
_Static_assert(sizeof(struct nbd_fixed_new_option_reply_info_block_size) == 14,
	       "INFO_BLOCK_SIZE");
_Static_assert(sizeof(struct nbd_fixed_new_option_reply_meta_context) == 4, "META_CONTEXT");
_Static_assert(sizeof(struct nbd_request) == 28, "request");
_Static_assert(sizeof(struct nbd_simple_reply) == 16, "simple reply");
_Static_assert(sizeof(struct nbd_structured_reply) == 20, "chunk header");
_Static_assert(sizeof(struct nbd_structured_reply_offset_data) == 8, "OFFSET_DATA");
_Static_assert(sizeof(struct nbd_structured_reply_error) == 6, "ERROR chunk");
_Static_assert(sizeof(struct nbd_structured_reply_block_status_hdr) == 4, "BLOCK_STATUS");
_Static_assert(sizeof(struct nbd_block_descriptor) == 8, "block descriptor");

#endif
