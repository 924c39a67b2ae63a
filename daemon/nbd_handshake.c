/* SPDX-License-Identifier: MIT */
/*
 * The fixed newstyle handshake: greeting, client flags, then option
 * haggling until NBD_OPT_GO or NBD_OPT_EXPORT_NAME picks an export.  Every
 * option we do not support, or cannot honour, gets an NBD_REP_ERR_* reply;
 * input we cannot parse at all ends the connection.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/nbd-protocol.h"
#include "daemon/nbd_conn.h"
#include "daemon/worker.h"

/* Option data we accept: names and queries fit with room to spare. */
#define MAX_OPT_LEN	(64u << 10)
/* Beyond this an option cannot be sane: answer and hang up. */
#define MAX_SKIP_LEN	(16u << 20)

void nbd_handshake_greet(struct nbd_conn *c)
{
	uint8_t g[18], *p = g;

	p = nbd_put64(p, NBD_MAGIC);
	p = nbd_put64(p, NBD_IHAVEOPT);
	nbd_put16(p, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (nbd_conn_out(c, g, sizeof(g)))
		nbd_conn_kill(c, "out of memory");
}

static int reply(struct nbd_conn *c, uint32_t opt, uint32_t type,
		 const void *data, uint32_t len)
{
	uint8_t h[20], *p = h;

	p = nbd_put64(p, NBD_REP_MAGIC);
	p = nbd_put32(p, opt);
	p = nbd_put32(p, type);
	nbd_put32(p, len);
	if (nbd_conn_out(c, h, sizeof(h)) || (len && nbd_conn_out(c, data, len))) {
		c->why = "out of memory";
		return -ENOMEM;
	}
	return 1;
}

static int reply_err(struct nbd_conn *c, uint32_t opt, uint32_t type,
		     const char *msg)
{
	return reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

static uint16_t export_tflags(const struct export *ex, bool structured)
{
	const struct backend *be = ex->be;
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_CACHE;

	if (be->readonly) {
		f |= NBD_FLAG_READ_ONLY;
	} else {
		if (be->caps & BACKEND_CAP_FUA)
			f |= NBD_FLAG_SEND_FUA;
		if (be->caps & BACKEND_CAP_TRIM)
			f |= NBD_FLAG_SEND_TRIM;
		/* Without a fast path FAST_ZERO is refused quickly, as it should be. */
		if (be->caps & BACKEND_CAP_WRITE_ZEROES)
			f |= NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
	}
	/* Only when one FLUSH covers the writes of every connection. */
	if (be->caps & BACKEND_CAP_MULTI_CONN)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	if (structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

static void enter_transmission(struct nbd_conn *c, struct export *ex)
{
	struct export *meta = NULL;

	/* The caller's reference to @ex is the connection's from now on. */
	c->ex = ex;
	c->tflags = export_tflags(ex, c->structured);
	if (c->meta_alloc && c->meta_export)
		meta = registry_get(c->srv->reg, c->meta_export, strlen(c->meta_export));
	if (meta != ex)
		c->meta_alloc = false;
	if (meta)
		export_put(meta);
	c->state = NBD_TRANSMISSION;
	c->w->nr_handshaking--;
	atomic_fetch_add(&ex->stats.connections, 1);
	log_info("connection %u from %s: export '%s'%s", c->id, c->peer, ex->name,
		 c->structured ? ", structured replies" : "");
}

static int opt_export_name(struct nbd_conn *c, const uint8_t *data, uint32_t len)
{
	struct export *ex;
	uint8_t r[10 + 124], *p = r;

	ex = len > NBD_MAX_STRING ? NULL :
	     registry_get(c->srv->reg, (const char *)data, len);
	if (!ex) {
		/* This option has no error reply: the protocol says hang up. */
		c->why = "unknown export (NBD_OPT_EXPORT_NAME)";
		return -ENOENT;
	}
	p = nbd_put64(p, ex->be->size);
	nbd_put16(p, export_tflags(ex, c->structured));
	memset(r + 10, 0, 124);
	if (nbd_conn_out(c, r, c->no_zeroes ? 10 : sizeof(r))) {
		export_put(ex);
		c->why = "out of memory";
		return -ENOMEM;
	}
	enter_transmission(c, ex);
	return 1;
}

static int info_reply(struct nbd_conn *c, uint32_t opt, uint16_t type,
		      const void *data, uint32_t len)
{
	uint8_t buf[2 + NBD_MAX_STRING + 32];

	nbd_put16(buf, type);
	memcpy(buf + 2, data, len);
	return reply(c, opt, NBD_REP_INFO, buf, 2 + len);
}

static int opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *data,
		       uint32_t len)
{
	uint32_t namelen, i, nreq;
	bool sent_name = false, sent_desc = false;
	struct export *ex;
	uint8_t b[20], *p;
	int ret;

	if (len < 6)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, "option too short");
	namelen = nbd_get32(data);
	if (namelen > NBD_MAX_STRING || (uint64_t)namelen + 6 > len)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, "bad export name length");
	nreq = nbd_get16(data + 4 + namelen);
	if (6 + namelen + 2ull * nreq != len)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, "bad option length");
	ex = registry_get(c->srv->reg, (const char *)data + 4, namelen);
	if (!ex)
		return reply_err(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");

	p = nbd_put64(b, ex->be->size);
	nbd_put16(p, export_tflags(ex, c->structured));
	ret = info_reply(c, opt, NBD_INFO_EXPORT, b, 10);
	/* Block sizes always: they say which requests are legal. */
	p = nbd_put32(b, ex->min_block);
	p = nbd_put32(p, ex->pref_block);
	nbd_put32(p, ex->max_block);
	if (ret > 0)
		ret = info_reply(c, opt, NBD_INFO_BLOCK_SIZE, b, 12);
	for (i = 0; i < nreq && ret > 0; i++) {
		uint16_t type = nbd_get16(data + 6 + namelen + 2 * i);

		if (type == NBD_INFO_NAME && !sent_name) {
			sent_name = true;
			ret = info_reply(c, opt, NBD_INFO_NAME, ex->name,
					 (uint32_t)strlen(ex->name));
		} else if (type == NBD_INFO_DESCRIPTION && !sent_desc) {
			sent_desc = true;
			ret = info_reply(c, opt, NBD_INFO_DESCRIPTION, ex->description,
					 (uint32_t)strlen(ex->description));
		}
	}
	if (ret > 0)
		ret = reply(c, opt, NBD_REP_ACK, NULL, 0);
	if (ret > 0 && opt == NBD_OPT_GO)
		enter_transmission(c, ex);
	else
		export_put(ex);
	return ret;
}

/* One NBD_REP_SERVER per export; a registry_for_each() callback. */
static int list_one(struct export *ex, void *arg)
{
	struct nbd_conn *c = arg;
	uint32_t nl = (uint32_t)strlen(ex->name);
	uint32_t dl = (uint32_t)strlen(ex->description);
	uint8_t *buf = malloc(4 + nl + dl);
	int ret;

	if (!buf)
		return -ENOMEM;
	nbd_put32(buf, nl);
	memcpy(buf + 4, ex->name, nl);
	memcpy(buf + 4 + nl, ex->description, dl);
	ret = reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + nl + dl);
	free(buf);
	/* reply(): 1, or -ENOMEM, which stops the walk. */
	return ret > 0 ? 0 : ret;
}

static int opt_list(struct nbd_conn *c, uint32_t len)
{
	int ret;

	if (len)
		return reply_err(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
				 "NBD_OPT_LIST takes no data");
	ret = registry_for_each(c->srv->reg, list_one, c);
	if (ret)
		return ret;
	return reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/* Whether query @q (length @n) names base:allocation, for LIST or SET. */
static bool query_matches(const uint8_t *q, uint32_t n, bool list)
{
	static const char name[] = NBD_META_BASE_ALLOCATION;

	if (n == sizeof(name) - 1 && !memcmp(q, name, n))
		return true;
	/* LIST may ask for every context of a namespace. */
	return list && n == 5 && !memcmp(q, "base:", 5);
}

static int opt_meta(struct nbd_conn *c, uint32_t opt, const uint8_t *data,
		    uint32_t len)
{
	bool list = opt == NBD_OPT_LIST_META_CONTEXT, match = false;
	struct export *ex;
	uint32_t namelen, nq, i, pos;
	uint8_t r[4 + sizeof(NBD_META_BASE_ALLOCATION)];
	int ret;

	if (!c->structured)
		return reply_err(c, opt, NBD_REP_ERR_INVALID,
				 "negotiate structured replies first");
	if (len < 8)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, "option too short");
	namelen = nbd_get32(data);
	if (namelen > NBD_MAX_STRING || (uint64_t)namelen + 8 > len)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, "bad export name length");
	nq = nbd_get32(data + 4 + namelen);
	pos = 8 + namelen;
	for (i = 0; i < nq; i++) {
		uint32_t ql;

		if (pos + 4 > len)
			return reply_err(c, opt, NBD_REP_ERR_INVALID, "truncated query");
		ql = nbd_get32(data + pos);
		if (ql > NBD_MAX_STRING || (uint64_t)pos + 4 + ql > len)
			return reply_err(c, opt, NBD_REP_ERR_INVALID, "bad query length");
		match |= query_matches(data + pos + 4, ql, list);
		pos += 4 + ql;
	}
	if (pos != len)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, "bad option length");
	ex = registry_get(c->srv->reg, (const char *)data + 4, namelen);
	if (!ex)
		return reply_err(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");
	export_put(ex);
	/* An empty LIST asks for everything; an empty SET selects nothing. */
	if (list && !nq)
		match = true;
	if (!list) {
		free(c->meta_export);
		c->meta_export = strndup((const char *)data + 4, namelen);
		c->meta_alloc = match && c->meta_export;
	}
	ret = 1;
	if (match) {
		nbd_put32(r, list ? 0 : NBD_META_ID_BASE_ALLOCATION);
		memcpy(r + 4, NBD_META_BASE_ALLOCATION, sizeof(r) - 4);
		ret = reply(c, opt, NBD_REP_META_CONTEXT, r, sizeof(r) - 1);
	}
	if (ret > 0)
		ret = reply(c, opt, NBD_REP_ACK, NULL, 0);
	return ret;
}

static int handle_option(struct nbd_conn *c, uint32_t opt, const uint8_t *data,
			 uint32_t len)
{
	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		return opt_export_name(c, data, len);
	case NBD_OPT_ABORT:
		c->why = "client aborted";
		c->closing = true;
		return reply(c, opt, NBD_REP_ACK, NULL, 0);
	case NBD_OPT_LIST:
		return opt_list(c, len);
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return opt_info_go(c, opt, data, len);
	case NBD_OPT_STRUCTURED_REPLY:
		if (len)
			return reply_err(c, opt, NBD_REP_ERR_INVALID,
					 "NBD_OPT_STRUCTURED_REPLY takes no data");
		c->structured = true;
		return reply(c, opt, NBD_REP_ACK, NULL, 0);
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		return opt_meta(c, opt, data, len);
	case NBD_OPT_STARTTLS:
		return reply_err(c, opt, NBD_REP_ERR_UNSUP, "TLS is not supported");
	default:
		return reply_err(c, opt, NBD_REP_ERR_UNSUP, "unknown option");
	}
}

int nbd_handshake_step(struct nbd_conn *c)
{
	uint32_t avail = c->rlen - c->rpos, opt, len;
	const uint8_t *p = c->rbuf + c->rpos;

	/* The rest of an option too big to take. */
	if (c->wskip) {
		uint32_t n = avail < c->wskip ? avail : c->wskip;

		c->rpos += n;
		c->wskip -= n;
		return n ? 1 : 0;
	}
	if (c->state == NBD_HS_FLAGS) {
		uint32_t flags;

		if (avail < 4)
			return 0;
		flags = nbd_get32(p);
		c->rpos += 4;
		if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
			c->why = "unknown client flags";
			return -EPROTO;
		}
		if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE)) {
			c->why = "client is not fixed newstyle";
			return -EPROTO;
		}
		c->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
		c->state = NBD_HS_OPTS;
		return 1;
	}
	if (avail < NBD_OPT_HDR_LEN)
		return 0;
	if (nbd_get64(p) != NBD_IHAVEOPT) {
		c->why = "bad option magic";
		return -EPROTO;
	}
	opt = nbd_get32(p + 8);
	len = nbd_get32(p + 12);
	if (len > MAX_OPT_LEN) {
		c->rpos += NBD_OPT_HDR_LEN;
		if (len > MAX_SKIP_LEN) {
			c->why = "option too long";
			c->closing = true;
		} else {
			c->wskip = len;
		}
		return reply_err(c, opt, NBD_REP_ERR_TOO_BIG, "option too long");
	}
	if (avail < NBD_OPT_HDR_LEN + len)
		return 0;
	c->rpos += NBD_OPT_HDR_LEN + len;
	return handle_option(c, opt, p + NBD_OPT_HDR_LEN, len);
}
