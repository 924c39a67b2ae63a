/* SPDX-License-Identifier: MIT */
/*
 * Bad input from a raw socket: each case must get an error reply or a
 * disconnect, while a second client, connected throughout, keeps working,
 * and the daemon's RSS stays within its budget.  Run by
 * tests/nbd-badinput.sh: nbd-badinput SOCKET DAEMON_PID RSS_LIMIT_BYTES,
 * against a daemon whose default export is a memory: disk of at least
 * 16 MiB.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/nbd-protocol.h"

static const char *sock_path;
static int pass, fail;
static int good = -1;		/* the well-behaved client */
static uint64_t cookie = 1;

static void result(bool ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (ok)
		pass++;
	else
		fail++;
}

static int connect_raw(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* All @n bytes, or false (EOF, error or the 5 s timeout). */
static bool read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);

		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static bool write_full(int fd, const void *buf, size_t n)
{
	return send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* Whether the server hung up: EOF or reset within 5 s, skipping any replies. */
static bool closed_by_server(int fd)
{
	char buf[4096];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0)
			return false;	/* timeout: still open */
	}
}

static bool greeting(int fd, uint32_t cflags)
{
	struct nbd_new_handshake g;
	struct nbd_new_handshake_client f = { .cflags = htobe32(cflags) };

	if (!read_full(fd, &g, sizeof(g)) || be64toh(g.nbdmagic) != NBD_MAGIC ||
	    be64toh(g.version) != NBD_IHAVEOPT)
		return false;
	return write_full(fd, &f, sizeof(f));
}

/* An option header with any magic and length, and no data. */
static bool send_opt_hdr(int fd, uint64_t magic, uint32_t opt, uint32_t len)
{
	struct nbd_new_option h = {
		.version = htobe64(magic),
		.option = htobe32(opt),
		.optlen = htobe32(len),
	};

	return write_full(fd, &h, sizeof(h));
}

static bool send_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	return send_opt_hdr(fd, NBD_IHAVEOPT, opt, len) &&
	       (!len || write_full(fd, data, len));
}

/* Read one option reply; its type, or 0 on failure.  Data is skipped. */
static uint32_t read_opt_reply(int fd, uint32_t opt)
{
	struct nbd_fixed_new_option_reply h;
	uint32_t len;
	char skip[1024];

	if (!read_full(fd, &h, sizeof(h)) || be64toh(h.magic) != NBD_REP_MAGIC ||
	    be32toh(h.option) != opt)
		return 0;
	len = be32toh(h.replylen);
	while (len) {
		uint32_t n = len < sizeof(skip) ? len : sizeof(skip);

		if (!read_full(fd, skip, n))
			return 0;
		len -= n;
	}
	return be32toh(h.reply);
}

/* Fixed newstyle, NBD_OPT_GO to the default export, simple replies. */
static bool handshake_go(int fd)
{
	uint8_t d[6] = { 0 };
	uint32_t t;

	if (!greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES) ||
	    !send_opt(fd, NBD_OPT_GO, d, sizeof(d)))
		return false;
	while ((t = read_opt_reply(fd, NBD_OPT_GO)) == NBD_REP_INFO)
		;
	return t == NBD_REP_ACK;
}

static bool send_req(int fd, uint16_t type, uint64_t off, uint32_t len,
		     uint64_t ck)
{
	struct nbd_request r = {
		.magic = htobe32(NBD_REQUEST_MAGIC),
		.flags = 0,
		.type = htobe16(type),
		.cookie = htobe64(ck),
		.offset = htobe64(off),
		.count = htobe32(len),
	};

	return write_full(fd, &r, sizeof(r));
}

/* A simple reply for @ck; its error, or -1. */
static int read_simple(int fd, uint64_t ck)
{
	struct nbd_simple_reply h;

	if (!read_full(fd, &h, sizeof(h)) || be32toh(h.magic) != NBD_SIMPLE_REPLY_MAGIC ||
	    be64toh(h.cookie) != ck)
		return -1;
	return (int)be32toh(h.error);
}

/* The well-behaved client writes and reads back 64 KiB. */
static bool good_works(void)
{
	static uint8_t w[65536], r[65536];
	uint64_t ck = cookie++;
	size_t i;

	for (i = 0; i < sizeof(w); i++)
		w[i] = (uint8_t)(i * 13 + ck);
	if (!send_req(good, NBD_CMD_WRITE, 1 << 20, sizeof(w), ck) ||
	    !write_full(good, w, sizeof(w)) || read_simple(good, ck) != 0)
		return false;
	ck = cookie++;
	if (!send_req(good, NBD_CMD_READ, 1 << 20, sizeof(r), ck) ||
	    read_simple(good, ck) != 0 || !read_full(good, r, sizeof(r)))
		return false;
	return !memcmp(w, r, sizeof(w));
}

static void check_case(const char *what, bool ok)
{
	char line[256];

	result(ok, what);
	snprintf(line, sizeof(line), "second client still works after: %s", what);
	result(good_works(), line);
}

static long rss_bytes(const char *pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* Handshakes cut short or malformed: each ends the connection. */
static void bad_handshakes(void)
{
	uint8_t g[sizeof(struct nbd_new_handshake)];
	int fd;

	/* Truncated handshake: two bytes of the flags, then EOF. */
	fd = connect_raw();
	greeting(fd, 0);	/* 4 bytes; the server wants no fewer */
	close(fd);
	fd = connect_raw();
	read_full(fd, g, sizeof(g));
	write_full(fd, "\0\0", 2);
	shutdown(fd, SHUT_WR);
	check_case("truncated handshake: disconnected", closed_by_server(fd));
	close(fd);

	fd = connect_raw();
	greeting(fd, 0xffffffff);
	check_case("unknown client flags: disconnected", closed_by_server(fd));
	close(fd);

	fd = connect_raw();
	greeting(fd, 0);
	check_case("client without fixed newstyle: disconnected", closed_by_server(fd));
	close(fd);
}

/* Options the server must refuse, or hang up on. */
static void bad_options(void)
{
	int fd;

	fd = connect_raw();
	greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
	send_opt_hdr(fd, 0x1122334455667788ull, NBD_OPT_GO, 0);
	check_case("wrong option magic: disconnected", closed_by_server(fd));
	close(fd);

	fd = connect_raw();
	greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
	send_opt_hdr(fd, NBD_IHAVEOPT, NBD_OPT_GO, 0xffffffffu);
	send_opt_hdr(fd, NBD_IHAVEOPT, NBD_OPT_GO, 0xffffffffu);	/* a little of the "4 GiB" */
	check_case("option length of 4 GiB: NBD_REP_ERR_TOO_BIG",
		   read_opt_reply(fd, NBD_OPT_GO) == NBD_REP_ERR_TOO_BIG &&
		   closed_by_server(fd));
	close(fd);

	fd = connect_raw();
	greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
	send_opt(fd, 4242, "x", 1);
	{
		bool ok = read_opt_reply(fd, 4242) == NBD_REP_ERR_UNSUP;
		struct nbd_export_name_reply info;

		/* The same connection goes on: NBD_OPT_EXPORT_NAME, then a read. */
		send_opt(fd, NBD_OPT_EXPORT_NAME, "", 0);
		ok = ok && read_full(fd, &info, sizeof(info)) &&
		     be64toh(info.exportsize) >= (16 << 20);
		ok = ok && send_req(fd, NBD_CMD_READ, 0, 4096, 77) && read_simple(fd, 77) == 0;
		check_case("unknown option: NBD_REP_ERR_UNSUP, then EXPORT_NAME works", ok);
	}
	close(fd);

	fd = connect_raw();
	greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
	send_opt(fd, NBD_OPT_EXPORT_NAME, "nope", 4);
	check_case("EXPORT_NAME of an unknown export: disconnected", closed_by_server(fd));
	close(fd);
}

/* Bad input once in transmission. */
static void bad_requests(void)
{
	/* Long enough to be taken for a request. */
	static const uint8_t info[14] = { 0, 0, 0, 8, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h' };
	char garbage[sizeof(struct nbd_request)];
	int fd;

	fd = connect_raw();
	handshake_go(fd);
	send_opt(fd, NBD_OPT_INFO, info, sizeof(info));
	check_case("option after GO: disconnected", closed_by_server(fd));
	close(fd);

	fd = connect_raw();
	handshake_go(fd);
	memset(garbage, 0xa5, sizeof(garbage));
	write_full(fd, garbage, sizeof(garbage));
	check_case("garbage in transmission: disconnected", closed_by_server(fd));
	close(fd);

	fd = connect_raw();
	handshake_go(fd);
	send_req(fd, NBD_CMD_WRITE, 0, 0xfffffe00u, 5);
	check_case("WRITE of an impossible length: disconnected", closed_by_server(fd));
	close(fd);

	/* A WRITE whose payload never arrives: the others do not wait for it. */
	fd = connect_raw();
	handshake_go(fd);
	send_req(fd, NBD_CMD_WRITE, 0, 1 << 20, 6);
	write_full(fd, "partial", 7);
	usleep(200000);
	check_case("WRITE whose payload never arrives: others unaffected", true);
	close(fd);
}

/*
 * A flood: thousands of pipelined reads from a client that never reads
 * its replies.  The server must stop reading it rather than buffer
 * without bound.
 */
static void flood(const char *pid, long limit)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	int fd, i, sent = 0;
	long rss;

	fd = connect_raw();
	handshake_go(fd);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (i = 0; i < 20000; i++) {
		if (!send_req(fd, NBD_CMD_READ, ((uint64_t)i % 4096) * 4096,
			      1 << 20, 1000 + (uint64_t)i))
			break;
		sent++;
	}
	printf("# flood: %d 1 MiB reads sent before the server stopped reading\n", sent);
	check_case("flood of unread 1 MiB reads: the server stops reading",
		   sent < 20000);
	rss = rss_bytes(pid);
	printf("# RSS %ld MiB during the flood, limit %ld MiB\n", rss >> 20, limit >> 20);
	result(rss > 0 && rss <= limit, "RSS within budget during the flood");
	close(fd);
}

int main(int argc, char **argv)
{
	long limit, rss;

	if (argc != 4) {
		fprintf(stderr, "usage: %s SOCKET PID RSS_LIMIT_BYTES\n", argv[0]);
		return 2;
	}
	sock_path = argv[1];
	limit = atol(argv[3]);

	good = connect_raw();
	result(handshake_go(good) && good_works(), "second client: handshake and I/O");
	bad_handshakes();
	bad_options();
	bad_requests();
	flood(argv[2], limit);
	usleep(200000);

	rss = rss_bytes(argv[2]);
	printf("# RSS %ld MiB at the end, limit %ld MiB\n", rss >> 20, limit >> 20);
	result(rss > 0 && rss <= limit, "RSS within budget at the end");
	result(good_works(), "second client works at the end");
	close(good);
	printf("%d passed, %d failed\n", pass, fail);
	return fail ? 1 : 0;
}
