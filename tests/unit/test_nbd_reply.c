// SPDX-License-Identifier: MIT
/*
 * NBD replies as bytes: simple and structured headers, the error chunk,
 * OFFSET_DATA and BLOCK_STATUS, the errno mapping, and the extents a
 * BLOCK_STATUS reply carries (clipped to the request, equal neighbours
 * merged).  Expected bytes are spelled out from the protocol document, not
 * built with the code under test.
 */
#include <errno.h>
#include <string.h>

#include <check.h>

#include "daemon/nbd_reply.h"
#include "daemon_suites.h"

static void check_bytes(const void *got, const uint8_t *want, size_t n)
{
	const uint8_t *g = got;
	size_t i;

	for (i = 0; i < n; i++)
		ck_assert_msg(g[i] == want[i], "byte %zu: 0x%02x, wanted 0x%02x",
			      i, g[i], want[i]);
}

#define SIMPLE		0x67, 0x44, 0x66, 0x98	/* simple reply magic */
#define CHUNK		0x66, 0x8e, 0x33, 0xef	/* structured reply magic */
#define DONE		0, 1			/* NBD_REPLY_FLAG_DONE */

/* One reply: what nbd_reply_build() is given, and what must come out. */
static const struct header_case {
	const char *what;
	bool structured;
	uint16_t type;
	uint64_t cookie, offset;
	uint32_t error, payload;
	uint32_t hdr_len;
	uint64_t len;
	uint8_t want[28];
} header_cases[] = {
	{ "simple READ", false, NBD_CMD_READ, 0x0102030405060708ull, 4096, 0, 65536,
	  16, 16 + 65536, { SIMPLE, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8 } },
	{ "simple READ error: no payload", false, NBD_CMD_READ, 9, 0, NBD_EINVAL, 4096,
	  16, 16, { SIMPLE, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 9 } },
	{ "structured WRITE stays simple", true, NBD_CMD_WRITE, 5, 0, 0, 4096,
	  16, 16, { SIMPLE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5 } },
	{ "OFFSET_DATA", true, NBD_CMD_READ, 7, 1 << 20, 0, 4096,
	  28, 28 + 4096, { CHUNK, DONE, 0, 1,		/* NBD_REPLY_TYPE_OFFSET_DATA */
			   0, 0, 0, 0, 0, 0, 0, 7,
			   0, 0, 0x10, 0x08,		/* length: 8 + 4096 */
			   0, 0, 0, 0, 0, 0x10, 0, 0 } },	/* offset 1 MiB */
	{ "READ error chunk", true, NBD_CMD_READ, 3, 0, NBD_EIO, 4096,
	  26, 26, { CHUNK, DONE, 0x80, 1,		/* NBD_REPLY_TYPE_ERROR */
		    0, 0, 0, 0, 0, 0, 0, 3,
		    0, 0, 0, 6,			/* error + message length */
		    0, 0, 0, 5, 0, 0 } },		/* NBD_EIO, no message */
	{ "BLOCK_STATUS error chunk", true, NBD_CMD_BLOCK_STATUS, 3, 0, NBD_EIO, 16,
	  26, 26, { CHUNK, DONE, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 3,
		    0, 0, 0, 6, 0, 0, 0, 5, 0, 0 } },
	{ "BLOCK_STATUS", true, NBD_CMD_BLOCK_STATUS, 4, 0, 0, 16,
	  24, 24 + 16, { CHUNK, DONE, 0, 5,		/* NBD_REPLY_TYPE_BLOCK_STATUS */
			 0, 0, 0, 0, 0, 0, 0, 4,
			 0, 0, 0, 20,			/* context id + two descriptors */
			 0, 0, 0, 1 } },		/* base:allocation's id */
};

START_TEST(reply_header)
{
	const struct header_case *t = &header_cases[_i];
	struct nbd_reply r;

	nbd_reply_build(&r, t->structured, t->type, t->cookie, t->offset, t->error,
			t->payload);
	ck_assert_msg(r.hdr_len == t->hdr_len, "%s: header %u bytes", t->what, r.hdr_len);
	ck_assert_msg(r.len == t->len, "%s: reply %llu bytes", t->what,
		      (unsigned long long)r.len);
	check_bytes(&r.hdr, t->want, t->hdr_len);
}
END_TEST

static const struct {
	blk_status_t status;
	uint32_t nbd;
} errno_cases[] = {
	{ 0, 0 },
	{ -EPERM, NBD_EPERM }, { -EROFS, NBD_EPERM },
	{ -ENOSPC, NBD_ENOSPC }, { -EDQUOT, NBD_ENOSPC }, { -EFBIG, NBD_ENOSPC },
	{ -EINVAL, NBD_EINVAL }, { -EOVERFLOW, NBD_EOVERFLOW },
	{ -EOPNOTSUPP, NBD_ENOTSUP }, { -ENOMEM, NBD_ENOMEM },
	{ -ESHUTDOWN, NBD_ESHUTDOWN }, { -EIO, NBD_EIO },
	/* Anything else, and what is no errno at all, is EIO. */
	{ -ENOENT, NBD_EIO }, { -100000, NBD_EIO },
	/* A positive errno is taken as its negative. */
	{ ENOSPC, NBD_ENOSPC },
};

START_TEST(errno_mapping)
{
	ck_assert_msg(nbd_errno(errno_cases[_i].status) == errno_cases[_i].nbd,
		      "status %d: %u, wanted %u", errno_cases[_i].status,
		      nbd_errno(errno_cases[_i].status), errno_cases[_i].nbd);
}
END_TEST

#define HZ	(BACKEND_EXTENT_HOLE | BACKEND_EXTENT_ZERO)

/* Backend extents for a request, and the descriptors the client gets. */
static const struct extents_case {
	const char *what;
	uint64_t offset;
	uint32_t length;
	unsigned int nr;
	struct backend_extent ext[6];
	unsigned int n;
	uint32_t want[4][2];		/* length, NBD_STATE_* */
} extents_cases[] = {
	{ "equal neighbours merge", 0, 28672, 6,
	  { { 0, 4096, 0 }, { 4096, 4096, 0 }, { 8192, 8192, HZ }, { 16384, 4096, HZ },
	    { 20480, 4096, BACKEND_EXTENT_ZERO }, { 24576, 4096, 0 } },
	  4, { { 8192, 0 }, { 12288, NBD_STATE_HOLE | NBD_STATE_ZERO },
	       { 4096, NBD_STATE_ZERO }, { 4096, 0 } } },
	{ "clipped to the request", 4096, 8192, 3,
	  { { 0, 8192, 0 }, { 8192, 65536, BACKEND_EXTENT_HOLE }, { 73728, 4096, 0 } },
	  2, { { 4096, 0 }, { 4096, NBD_STATE_HOLE } } },
	{ "none overlaps", 8192, 4096, 2,
	  { { 0, 4096, 0 }, { 4096, 4096, BACKEND_EXTENT_ZERO } }, 0, { { 0 } } },
	{ "no extents", 0, 4096, 0, { { 0 } }, 0, { { 0 } } },
	/* A dropped empty extent between two equal ones does not split them. */
	{ "merge across a dropped one", 0, 8192, 3,
	  { { 0, 4096, 0 }, { 4096, 0, BACKEND_EXTENT_HOLE }, { 4096, 4096, 0 } },
	  1, { { 8192, 0 } } },
};

START_TEST(extents_encode)
{
	const struct extents_case *t = &extents_cases[_i];
	struct nbd_block_descriptor d[6];
	unsigned int i, n;

	n = nbd_extents_encode(t->ext, t->nr, t->offset, t->length, d);
	ck_assert_msg(n == t->n, "%s: %u descriptors, wanted %u", t->what, n, t->n);
	for (i = 0; i < n; i++) {
		uint32_t len = t->want[i][0], f = t->want[i][1];
		const uint8_t want[8] = {
			(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			(uint8_t)len, 0, 0, 0, (uint8_t)f,
		};

		check_bytes(&d[i], want, sizeof(want));
	}
}
END_TEST

START_TEST(cmd_names)
{
	ck_assert_str_eq(nbd_cmd_name(NBD_CMD_READ), "READ");
	ck_assert_str_eq(nbd_cmd_name(NBD_CMD_BLOCK_STATUS), "BLOCK_STATUS");
	ck_assert_ptr_null(nbd_cmd_name(42));
}
END_TEST

#define NR(a)	((int)(sizeof(a) / sizeof((a)[0])))

Suite *nbd_reply_suite(void)
{
	Suite *s = suite_create("nbd_reply");
	TCase *t = tcase_create("nbd_reply");

	tcase_add_loop_test(t, reply_header, 0, NR(header_cases));
	tcase_add_loop_test(t, errno_mapping, 0, NR(errno_cases));
	tcase_add_loop_test(t, extents_encode, 0, NR(extents_cases));
	tcase_add_test(t, cmd_names);
	suite_add_tcase(s, t);
	return s;
}
