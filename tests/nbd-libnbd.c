/* SPDX-License-Identifier: MIT */
/*
 * blockd's NBD server through libnbd: every option and command, and each
 * error a client can provoke.  Run by tests/nbd-libnbd.sh against a real
 * daemon: nbd-libnbd SOCKET, with exports "scratch" (memory, 64 MiB, the
 * default) and "ro" (memory, 8 MiB, readonly).
 */
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *sock;
static int pass, fail;

#define CHECK(cond, ...)						\
	do {								\
		bool ok_ = (cond);					\
									\
		if (ok_)						\
			pass++;						\
		else							\
			fail++;						\
		printf(ok_ ? "ok: " : "FAIL: ");			\
		printf(__VA_ARGS__);					\
		if (!ok_)						\
			printf(" (%s)", nbd_get_error() ? nbd_get_error() : "no error"); \
		printf("\n");						\
	} while (0)

/* A handle on @name with structured replies @sr and base:allocation. */
static struct nbd_handle *open_export(const char *name, bool sr)
{
	struct nbd_handle *h = nbd_create();

	if (!h)
		return NULL;
	nbd_set_export_name(h, name);
	nbd_set_request_structured_replies(h, sr);
	if (sr)
		nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION);
	if (nbd_connect_unix(h, sock) == -1) {
		nbd_close(h);
		return NULL;
	}
	return h;
}

static int list_cb(void *opaque, const char *name, const char *desc)
{
	int *n = opaque;

	(void)desc;
	if (!strcmp(name, "scratch") || !strcmp(name, "ro"))
		(*n)++;
	return 0;
}

static int meta_cb(void *opaque, const char *name)
{
	int *n = opaque;

	if (!strcmp(name, LIBNBD_CONTEXT_BASE_ALLOCATION))
		(*n)++;
	return 0;
}

static void test_options(void)
{
	struct nbd_handle *h = nbd_create();
	int n = 0, m = 0, r;

	nbd_set_opt_mode(h, true);
	nbd_set_request_structured_replies(h, true);
	r = nbd_connect_unix(h, sock);
	CHECK(r == 0 && nbd_aio_is_negotiating(h), "handshake into option mode");
	r = nbd_opt_list(h, (nbd_list_callback){ .callback = list_cb, .user_data = &n });
	CHECK(r == 2 && n == 2, "NBD_OPT_LIST lists both exports");
	CHECK(nbd_get_structured_replies_negotiated(h) == 1, "NBD_OPT_STRUCTURED_REPLY acknowledged");
	nbd_set_export_name(h, "scratch");
	r = nbd_opt_list_meta_context(h, (nbd_context_callback){ .callback = meta_cb,
								 .user_data = &m });
	CHECK(r >= 1 && m == 1, "NBD_OPT_LIST_META_CONTEXT offers base:allocation");
	nbd_set_export_name(h, "no-such-export");
	r = nbd_opt_info(h);
	CHECK(r == -1, "NBD_OPT_INFO on an unknown export fails");
	nbd_set_export_name(h, "ro");
	nbd_set_full_info(h, true);
	r = nbd_opt_info(h);
	CHECK(r == 0 && nbd_get_size(h) == 8 << 20 && nbd_is_read_only(h) == 1,
	      "NBD_OPT_INFO: size and read-only flag");
	{
		char *d = nbd_get_export_description(h);
		char *cn = nbd_get_canonical_export_name(h);

		CHECK(d && !strcmp(d, "memory:"), "NBD_INFO_DESCRIPTION");
		CHECK(cn && !strcmp(cn, "ro"), "NBD_INFO_NAME");
		free(d);
		free(cn);
	}
	CHECK(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM) == 512 &&
	      nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED) == 4096 &&
	      nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM) == 32 << 20,
	      "NBD_INFO_BLOCK_SIZE 512/4096/32M");
	nbd_set_export_name(h, "scratch");
	nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION);
	r = nbd_opt_go(h);
	CHECK(r == 0 && nbd_aio_is_ready(h), "NBD_OPT_GO after haggling");
	CHECK(nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1,
	      "NBD_OPT_SET_META_CONTEXT selected base:allocation");
	CHECK(nbd_shutdown(h, 0) == 0, "NBD_CMD_DISC");
	nbd_close(h);

	h = nbd_create();
	nbd_set_opt_mode(h, true);
	r = nbd_connect_unix(h, sock);
	CHECK(r == 0 && nbd_opt_abort(h) == 0, "NBD_OPT_ABORT");
	nbd_close(h);

	/* SET_META_CONTEXT before STRUCTURED_REPLY must be refused. */
	h = nbd_create();
	nbd_set_opt_mode(h, true);
	nbd_set_request_structured_replies(h, false);
	nbd_connect_unix(h, sock);
	m = 0;
	r = nbd_opt_list_meta_context(h, (nbd_context_callback){ .callback = meta_cb,
								 .user_data = &m });
	CHECK(r == -1 || m == 0, "meta contexts need structured replies first");
	nbd_opt_abort(h);
	nbd_close(h);

	h = open_export("no-such-export", true);
	CHECK(h == NULL, "NBD_OPT_GO to an unknown export is refused");
	if (h)
		nbd_close(h);
}

static void fill(char *buf, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(seed * 131 + i * 7 + (i >> 9));
}

/* Flags, then each command once, checked by reading back. */
static void commands_basic(struct nbd_handle *h, const char *mode, bool sr,
			   char *a, char *b, size_t len)
{
	int r;

	CHECK(nbd_get_structured_replies_negotiated(h) == sr, "%s: replies negotiated", mode);
	CHECK(nbd_can_flush(h) == 1 && nbd_can_fua(h) == 1 && nbd_can_trim(h) == 1 &&
	      nbd_can_zero(h) == 1 && nbd_can_fast_zero(h) == 1 && nbd_can_cache(h) == 1 &&
	      nbd_can_multi_conn(h) == 1, "%s: flags FLUSH FUA TRIM ZERO FAST_ZERO CACHE MULTI_CONN", mode);
	fill(a, len, sr);
	r = nbd_pwrite(h, a, len, 4 << 20, 0);
	CHECK(r == 0, "%s: WRITE 1 MiB", mode);
	memset(b, 0, len);
	r = nbd_pread(h, b, len, 4 << 20, 0);
	CHECK(r == 0 && !memcmp(a, b, len), "%s: READ returns it", mode);
	r = nbd_pwrite(h, a, 4096, 6 << 20, LIBNBD_CMD_FLAG_FUA);
	CHECK(r == 0, "%s: WRITE+FUA", mode);
	CHECK(nbd_flush(h, 0) == 0, "%s: FLUSH", mode);
	CHECK(nbd_cache(h, 1 << 20, 0, 0) == 0, "%s: CACHE", mode);
	r = nbd_zero(h, 65536, 4 << 20, LIBNBD_CMD_FLAG_NO_HOLE);
	nbd_pread(h, b, 65536, 4 << 20, 0);
	CHECK(r == 0 && !b[0] && !memcmp(b, b + 1, 65535), "%s: WRITE_ZEROES+NO_HOLE", mode);
	r = nbd_zero(h, 65536, (4 << 20) + 65536, LIBNBD_CMD_FLAG_FAST_ZERO);
	CHECK(r == 0, "%s: WRITE_ZEROES+FAST_ZERO", mode);
	r = nbd_trim(h, 1 << 20, 5 << 20, 0);
	nbd_pread(h, b, 4096, 5 << 20, 0);
	CHECK(r == 0 && !b[0] && !memcmp(b, b + 1, 4095), "%s: TRIM reads back zeros", mode);
	/* A 33 MiB range trims fine: no payload, so the maximum does not apply. */
	CHECK(nbd_trim(h, 33 << 20, 0, 0) == 0, "%s: TRIM larger than the maximum block", mode);
}

/* Many requests in flight at once, answered in any order. */
static void commands_pipelined(struct nbd_handle *h, const char *mode)
{
	int64_t cookies[64];
	char *bufs = malloc(64 * 8192);
	int i, bad = 0, done;

	for (i = 0; i < 64; i++) {
		fill(bufs + i * 8192, 8192, (unsigned int)i + 7);
		cookies[i] = nbd_aio_pwrite(h, bufs + i * 8192, 8192,
					    (uint64_t)i * 8192 + (32 << 20),
					    NBD_NULL_COMPLETION, 0);
	}
	do {
		done = 0;
		for (i = 0; i < 64; i++)
			done += nbd_aio_command_completed(h, (uint64_t)cookies[i]) != 0;
		if (done < 64)
			nbd_poll(h, -1);
	} while (0);
	while (nbd_aio_in_flight(h) > 0)
		nbd_poll(h, -1);
	for (i = 0; i < 64; i++) {
		char c[8192], want[8192];

		fill(want, 8192, (unsigned int)i + 7);
		if (nbd_pread(h, c, 8192, (uint64_t)i * 8192 + (32 << 20), 0) ||
		    memcmp(c, want, 8192))
			bad++;
	}
	CHECK(bad == 0, "%s: 64 pipelined writes land", mode);
	free(bufs);
}

/* Requests the server refuses, with the errors the protocol names. */
static void commands_refused(struct nbd_handle *h, const char *mode, char *a, char *b)
{
	size_t big = (32 << 20) + 512;
	char *c = malloc(big);
	int r;

	nbd_set_strict_mode(h, 0);
	r = nbd_pread(h, b, 4096, 64 << 20, 0);
	CHECK(r == -1 && nbd_get_errno() == EINVAL, "%s: READ past the end: EINVAL", mode);
	r = nbd_pwrite(h, a, 4096, (64 << 20) - 512, 0);
	CHECK(r == -1 && nbd_get_errno() == ENOSPC, "%s: WRITE past the end: ENOSPC", mode);
	r = nbd_trim(h, 4096, 64 << 20, 0);
	CHECK(r == -1 && nbd_get_errno() == ENOSPC, "%s: TRIM past the end: ENOSPC", mode);
	r = nbd_pread(h, b, 512, 1, 0);
	CHECK(r == -1 && nbd_get_errno() == EINVAL, "%s: unaligned READ: EINVAL", mode);
	r = nbd_pwrite(h, a, 100, 0, 0);
	CHECK(r == -1 && nbd_get_errno() == EINVAL, "%s: unaligned WRITE: EINVAL", mode);
	memset(c, 0, big);
	r = nbd_pread(h, c, big, 0, 0);
	CHECK(r == -1 && (nbd_get_errno() == EINVAL || nbd_get_errno() == EOVERFLOW),
	      "%s: READ over the maximum: EINVAL", mode);
	r = nbd_pwrite(h, c, big, 0, 0);
	CHECK(r == -1 && (nbd_get_errno() == EINVAL || nbd_get_errno() == EOVERFLOW),
	      "%s: WRITE over the maximum: EINVAL", mode);
	free(c);
	r = nbd_pread(h, b, 4096, 0, 0);
	CHECK(r == 0, "%s: the connection still works after errors", mode);
}

static void test_commands(bool sr)
{
	const char *mode = sr ? "structured" : "simple";
	struct nbd_handle *h = open_export("scratch", sr);
	size_t len = 1 << 20;
	char *a = malloc(len), *b = malloc(len);
	int r;

	if (!h) {
		CHECK(0, "%s: connect", mode);
		free(a);
		free(b);
		return;
	}
	commands_basic(h, mode, sr, a, b, len);
	commands_pipelined(h, mode);
	commands_refused(h, mode, a, b);
	if (!sr) {
		r = nbd_block_status(h, 4096, 0, (nbd_extent_callback){ 0 }, 0);
		CHECK(r == -1, "simple: BLOCK_STATUS without a meta context fails");
	}
	CHECK(nbd_shutdown(h, 0) == 0, "%s: DISC", mode);
	nbd_close(h);
	free(a);
	free(b);
}

struct extents {
	uint32_t e[64];
	size_t n;
};

static int extent_cb(void *opaque, const char *meta, uint64_t offset,
		     uint32_t *entries, size_t nr, int *error)
{
	struct extents *x = opaque;

	(void)offset;
	(void)error;
	if (strcmp(meta, LIBNBD_CONTEXT_BASE_ALLOCATION))
		return 0;
	for (size_t i = 0; i < nr && x->n < 64; i++)
		x->e[x->n++] = entries[i];
	return 0;
}

static void test_block_status(void)
{
	struct nbd_handle *h = open_export("scratch", true);
	struct extents x = { .n = 0 };
	char buf[65536];
	int r;

	if (!h) {
		CHECK(0, "block status: connect");
		return;
	}
	memset(buf, 1, sizeof(buf));
	nbd_trim(h, 1 << 20, 40 << 20, 0);
	nbd_pwrite(h, buf, sizeof(buf), 40 << 20, 0);
	r = nbd_block_status(h, 1 << 20, 40 << 20,
			     (nbd_extent_callback){ .callback = extent_cb, .user_data = &x }, 0);
	CHECK(r == 0 && x.n >= 4 && x.e[0] == 65536 && x.e[1] == 0 &&
	      x.e[3] == (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO),
	      "BLOCK_STATUS: data then hole (%zu entries: %u/%u %u/%u)", x.n,
	      x.e[0], x.e[1], x.e[2], x.e[3]);
	x.n = 0;
	r = nbd_block_status(h, 1 << 20, 40 << 20,
			     (nbd_extent_callback){ .callback = extent_cb, .user_data = &x },
			     LIBNBD_CMD_FLAG_REQ_ONE);
	CHECK(r == 0 && x.n == 2, "BLOCK_STATUS+REQ_ONE: one extent");
	x.n = 0;
	nbd_set_strict_mode(h, 0);
	r = nbd_block_status(h, 4096, 64 << 20,
			     (nbd_extent_callback){ .callback = extent_cb, .user_data = &x }, 0);
	CHECK(r == -1 && nbd_get_errno() == EINVAL, "BLOCK_STATUS past the end: EINVAL");
	nbd_shutdown(h, 0);
	nbd_close(h);
}

static void test_readonly(void)
{
	struct nbd_handle *h = open_export("ro", true);
	char buf[4096] = { 0 };
	int r;

	if (!h) {
		CHECK(0, "ro: connect");
		return;
	}
	CHECK(nbd_is_read_only(h) == 1, "ro: NBD_FLAG_READ_ONLY");
	nbd_set_strict_mode(h, 0);
	r = nbd_pwrite(h, buf, sizeof(buf), 0, 0);
	CHECK(r == -1 && nbd_get_errno() == EPERM, "ro: WRITE: EPERM");
	r = nbd_trim(h, 4096, 0, 0);
	CHECK(r == -1 && nbd_get_errno() == EPERM, "ro: TRIM: EPERM");
	r = nbd_zero(h, 4096, 0, 0);
	CHECK(r == -1 && nbd_get_errno() == EPERM, "ro: WRITE_ZEROES: EPERM");
	CHECK(nbd_pread(h, buf, sizeof(buf), 0, 0) == 0, "ro: READ works");
	nbd_shutdown(h, 0);
	nbd_close(h);
}

static void test_multi_conn(void)
{
	struct nbd_handle *a = open_export("scratch", true);
	struct nbd_handle *b = open_export("scratch", false);
	char w[4096], r[4096];

	if (!a || !b) {
		CHECK(0, "multi-conn: connect");
		return;
	}
	fill(w, sizeof(w), 99);
	CHECK(nbd_pwrite(a, w, sizeof(w), 48 << 20, 0) == 0 && nbd_flush(b, 0) == 0 &&
	      nbd_pread(b, r, sizeof(r), 48 << 20, 0) == 0 && !memcmp(w, r, sizeof(w)),
	      "multi-conn: a write on one connection, flushed and read on another");
	nbd_shutdown(a, 0);
	nbd_shutdown(b, 0);
	nbd_close(a);
	nbd_close(b);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
		return 2;
	}
	sock = argv[1];
	test_options();
	test_commands(true);
	test_commands(false);
	test_block_status();
	test_readonly();
	test_multi_conn();
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
