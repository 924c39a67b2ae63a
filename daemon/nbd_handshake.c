/* SPDX-License-Identifier: MIT */
/*
 * The fixed newstyle handshake: greeting, client flags, then option
 * haggling until NBD_OPT_GO or NBD_OPT_EXPORT_NAME picks an export.  Every
 * option we do not support, or cannot honour, gets an NBD_REP_ERR_* reply;
 * input we cannot parse at all ends the connection.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/nbd-protocol.h"
#include "daemon/nbd_conn.h"
#include "daemon/nbd_worker.h"

/* Option data we accept: names and queries fit with room to spare. */
#define MAX_OPT_LEN	(64u << 10)
/* Beyond this an option cannot be sane: answer and hang up. */
#define MAX_SKIP_LEN	(16u << 20)

void nbd_handshake_greet(struct nbd_conn *c)
{
	struct nbd_new_handshake g = {
		.nbdmagic = htobe64(NBD_MAGIC),
		.version = htobe64(NBD_IHAVEOPT),
		.gflags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
	};

	if (nbd_conn_out(c, &g, sizeof(g)))
		nbd_conn_kill(c, "out of memory");
}

/*
 * An option reply: its header, then @flen bytes of @fixed and @slen of
 * @str (a name or description after a fixed part).  1, or -ENOMEM.
 */
static int reply_parts(struct nbd_conn *c, uint32_t opt, uint32_t type,
		       const void *fixed, uint32_t flen, const char *str,
		       uint32_t slen)
{
	struct nbd_fixed_new_option_reply h = {
		.magic = htobe64(NBD_REP_MAGIC),
		.option = htobe32(opt),
		.reply = htobe32(type),
		.replylen = htobe32(flen + slen),
	};

	if (nbd_conn_out(c, &h, sizeof(h)) ||
	    (flen && nbd_conn_out(c, fixed, flen)) ||
	    (slen && nbd_conn_out(c, str, slen))) {
		c->why = "out of memory";
		return -ENOMEM;
	}
	return 1;
}

static int reply(struct nbd_conn *c, uint32_t opt, uint32_t type,
		 const void *data, uint32_t len)
{
	return reply_parts(c, opt, type, data, len, NULL, 0);
}

/* An error reply to option @opt; @msg goes to the client and the debug log. */
static int reply_err(struct nbd_conn *c, uint32_t opt, uint32_t type,
		     const char *msg)
{
	log_debug("connection %u from %s: option %u refused: %s", c->id, c->peer,
		  opt, msg);
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

/* A big-endian field of variable-length option data, at any alignment. */
static uint32_t opt_get32(const uint8_t *data, uint32_t pos)
{
	uint32_t v;

	memcpy(&v, data + pos, sizeof(v));
	return be32toh(v);
}

static uint16_t opt_get16(const uint8_t *data, uint32_t pos)
{
	uint16_t v;

	memcpy(&v, data + pos, sizeof(v));
	return be16toh(v);
}

/*
 * The export name that GO, INFO and the META_CONTEXT options start with,
 * followed by at least @tail bytes: NULL, or why the option is invalid.
 */
static const char *opt_name(const uint8_t *data, uint32_t len, uint32_t tail,
			    uint32_t *namelen)
{
	if (len < 4 + tail)
		return "option too short";
	*namelen = opt_get32(data, 0);
	if (*namelen > NBD_MAX_STRING || (uint64_t)*namelen + 4 + tail > len)
		return "bad export name length";
	return NULL;
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
	c->state = NBD_CONN_TRANSMISSION;
	c->w->nr_handshaking--;
	atomic_fetch_add(&ex->stats.connections, 1);
	log_debug("connection %u from %s: export '%s'%s", c->id, c->peer, ex->name,
		  c->structured ? ", structured replies" : "");
}

static int opt_export_name(struct nbd_conn *c, const uint8_t *data, uint32_t len)
{
	struct nbd_export_name_reply r = { 0 };
	struct export *ex;

	ex = len > NBD_MAX_STRING ? NULL :
	     registry_get(c->srv->reg, (const char *)data, len);
	if (!ex) {
		/* This option has no error reply: the protocol says hang up. */
		c->why = "unknown export (NBD_OPT_EXPORT_NAME)";
		return -ENOENT;
	}
	r.exportsize = htobe64(ex->be->size);
	r.eflags = htobe16(export_tflags(ex, c->structured));
	if (nbd_conn_out(c, &r, c->no_zeroes ? NBD_EXPORT_NAME_REPLY_SHORT : sizeof(r))) {
		export_put(ex);
		c->why = "out of memory";
		return -ENOMEM;
	}
	enter_transmission(c, ex);
	return 1;
}

/* NBD_REP_INFO: the export's size and flags, and its block sizes. */
static int info_export(struct nbd_conn *c, uint32_t opt, const struct export *ex)
{
	struct nbd_fixed_new_option_reply_info_export e = {
		.info = htobe16(NBD_INFO_EXPORT),
		.exportsize = htobe64(ex->be->size),
		.eflags = htobe16(export_tflags(ex, c->structured)),
	};
	struct nbd_fixed_new_option_reply_info_block_size b = {
		.info = htobe16(NBD_INFO_BLOCK_SIZE),
		.minimum = htobe32(ex->min_block),
		.preferred = htobe32(ex->pref_block),
		.maximum = htobe32(ex->max_block),
	};
	int ret = reply(c, opt, NBD_REP_INFO, &e, sizeof(e));

	/* Block sizes always: they say which requests are legal. */
	if (ret > 0)
		ret = reply(c, opt, NBD_REP_INFO, &b, sizeof(b));
	return ret;
}

/* NBD_REP_INFO of a name or description: @type, then the string. */
static int info_string(struct nbd_conn *c, uint32_t opt, uint16_t type,
		       const char *str)
{
	struct nbd_fixed_new_option_reply_info_name_or_desc h = {
		.info = htobe16(type),
	};

	return reply_parts(c, opt, NBD_REP_INFO, &h, sizeof(h), str,
			   (uint32_t)strlen(str));
}

/* The NBD_INFO_* the client asked for, each at most once. */
static int info_requested(struct nbd_conn *c, uint32_t opt, const struct export *ex,
			  const uint8_t *req, uint32_t nreq)
{
	bool sent_name = false, sent_desc = false;
	uint32_t i;
	int ret = 1;

	for (i = 0; i < nreq && ret > 0; i++) {
		uint16_t type = opt_get16(req, 2 * i);

		if (type == NBD_INFO_NAME && !sent_name) {
			sent_name = true;
			ret = info_string(c, opt, NBD_INFO_NAME, ex->name);
		} else if (type == NBD_INFO_DESCRIPTION && !sent_desc) {
			sent_desc = true;
			ret = info_string(c, opt, NBD_INFO_DESCRIPTION, ex->description);
		}
	}
	return ret;
}

static int opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *data,
		       uint32_t len)
{
	uint32_t namelen, nreq;
	struct export *ex;
	const char *bad;
	int ret;

	bad = opt_name(data, len, 2, &namelen);
	if (bad)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, bad);
	nreq = opt_get16(data, 4 + namelen);
	if (6 + namelen + 2ull * nreq != len)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, "bad option length");
	ex = registry_get(c->srv->reg, (const char *)data + 4, namelen);
	if (!ex)
		return reply_err(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");

	ret = info_export(c, opt, ex);
	if (ret > 0)
		ret = info_requested(c, opt, ex, data + 6 + namelen, nreq);
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
	struct nbd_fixed_new_option_reply_server *s;
	int ret;

	s = malloc(sizeof(*s) + nl + dl);
	if (!s)
		return -ENOMEM;
	s->export_name_len = htobe32(nl);
	memcpy(s + 1, ex->name, nl);
	memcpy((char *)(s + 1) + nl, ex->description, dl);
	ret = reply(c, NBD_OPT_LIST, NBD_REP_SERVER, s, (uint32_t)sizeof(*s) + nl + dl);
	free(s);
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

/*
 * Walk the @nq queries from @pos of @data; whether one matches in *@match.
 * NULL, or the reason the option is invalid.
 */
static const char *meta_queries(const uint8_t *data, uint32_t len, uint32_t pos,
				uint32_t nq, bool list, bool *match)
{
	uint32_t i, ql;

	for (i = 0; i < nq; i++) {
		if (pos + 4 > len)
			return "truncated query";
		ql = opt_get32(data, pos);
		if (ql > NBD_MAX_STRING || (uint64_t)pos + 4 + ql > len)
			return "bad query length";
		*match |= query_matches(data + pos + 4, ql, list);
		pos += 4 + ql;
	}
	return pos != len ? "bad option length" : NULL;
}

/* NBD_REP_META_CONTEXT for base:allocation, with @id. */
static int meta_reply(struct nbd_conn *c, uint32_t opt, uint32_t id)
{
	struct nbd_fixed_new_option_reply_meta_context m = {
		.context_id = htobe32(id),
	};

	return reply_parts(c, opt, NBD_REP_META_CONTEXT, &m, sizeof(m),
			   NBD_META_BASE_ALLOCATION,
			   sizeof(NBD_META_BASE_ALLOCATION) - 1);
}

static int opt_meta(struct nbd_conn *c, uint32_t opt, const uint8_t *data,
		    uint32_t len)
{
	bool list = opt == NBD_OPT_LIST_META_CONTEXT, match = false;
	struct export *ex;
	uint32_t namelen, nq;
	const char *bad;
	int ret;

	if (!c->structured)
		return reply_err(c, opt, NBD_REP_ERR_INVALID,
				 "negotiate structured replies first");
	bad = opt_name(data, len, 4, &namelen);
	if (bad)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, bad);
	nq = opt_get32(data, 4 + namelen);
	bad = meta_queries(data, len, 8 + namelen, nq, list, &match);
	if (bad)
		return reply_err(c, opt, NBD_REP_ERR_INVALID, bad);
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
	if (match)
		ret = meta_reply(c, opt, list ? 0 : NBD_META_ID_BASE_ALLOCATION);
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
		c->state = NBD_CONN_CLOSING;
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

/* The client's flags, after our greeting. */
static int client_flags(struct nbd_conn *c, const uint8_t *p, uint32_t avail)
{
	const struct nbd_new_handshake_client *h = (const void *)p;
	uint32_t flags;

	if (avail < sizeof(*h))
		return 0;
	flags = be32toh(h->cflags);
	c->rpos += sizeof(*h);
	if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
		c->why = "unknown client flags";
		return -EPROTO;
	}
	if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE)) {
		c->why = "client is not fixed newstyle";
		return -EPROTO;
	}
	c->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
	c->hs.step = NBD_HS_OPTS;
	return 1;
}

/* One option, header and data, once all of it is buffered. */
static int option(struct nbd_conn *c, const uint8_t *p, uint32_t avail)
{
	const struct nbd_new_option *h = (const void *)p;
	uint32_t opt, len;

	if (avail < sizeof(*h))
		return 0;
	if (be64toh(h->version) != NBD_IHAVEOPT) {
		c->why = "bad option magic";
		return -EPROTO;
	}
	opt = be32toh(h->option);
	len = be32toh(h->optlen);
	if (len > MAX_OPT_LEN) {
		c->rpos += sizeof(*h);
		if (len > MAX_SKIP_LEN) {
			c->why = "option too long";
			c->state = NBD_CONN_CLOSING;
		} else {
			c->hs.opt_skip = len;
		}
		return reply_err(c, opt, NBD_REP_ERR_TOO_BIG, "option too long");
	}
	if (avail < sizeof(*h) + len)
		return 0;
	c->rpos += sizeof(*h) + len;
	return handle_option(c, opt, p + sizeof(*h), len);
}

int nbd_handshake_step(struct nbd_conn *c)
{
	uint32_t avail = c->rlen - c->rpos;
	const uint8_t *p = c->rbuf + c->rpos;

	/* The rest of an option too big to take. */
	if (c->hs.opt_skip) {
		uint32_t n = avail < c->hs.opt_skip ? avail : c->hs.opt_skip;

		c->rpos += n;
		c->hs.opt_skip -= n;
		return n ? 1 : 0;
	}
	if (c->hs.step == NBD_HS_FLAGS)
		return client_flags(c, p, avail);
	return option(c, p, avail);
}
