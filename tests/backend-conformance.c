/* SPDX-License-Identifier: MIT */
/*
 * backend-conformance: one Check suite that any backend must pass.
 *
 *   tests/backend-conformance [--enospc] SPEC
 *
 * e.g. "memory:,size=64M", "file:/tmp/x/disk.img,size=64M,cache=none",
 * "nbd:nbd+unix:///?socket=/tmp/x/nbd.sock".  The spec must be writable;
 * a file: target is created (sparse) when missing.  Each test opens the
 * backend afresh with a page allocator and an ioloop of its own, and
 * zeroes the first 64 MiB of the device (the "work region") with
 * WRITE_ZEROES, so every test starts from a known, all-zero device even
 * when the storage outlives the test (files, an NBD server).
 *
 * I/O is driven as a front end does it: bios from a bio_set (page per
 * bvec) or over the test's own buffers (odd segments, misaligned memory,
 * canaries in between), submit_bio() from the loop thread, several in
 * flight, then ioloop_run_once() until every bi_end_io has run.  Reads are
 * checked against a flat model of the device.  A discarded sector may read
 * back as its old data or as zeros, but must then read the same until it
 * is written again.
 *
 * Cases (CK_RUN_CASE=NAME runs one): describe, random, plug-merge,
 * flush-fua, unaligned, extents, concurrent, concurrent-rmw, bounds,
 * error-injection.
 *
 * --enospc runs the out-of-space suite instead: SPEC must be a file on a
 * filesystem too small to hold it (see tests/backend-errors.sh).
 *
 * Environment: BLOCKD_CONFORMANCE_SEED=N replays a failing random run
 * (every failure message names its seed); BLOCKD_CONFORMANCE_OPS=N sets
 * the number of random operations (default 2000).  Check's own CK_FORK,
 * CK_RUN_CASE, CK_VERBOSITY and CK_TIMEOUT_MULTIPLIER work as usual.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "core/bio.h"
#include "core/compiler.h"
#include "core/ioloop.h"
#include "core/page.h"
#include "core/request.h"
#include "tests/rand.h"

#define KIB			1024ull
#define MIB			(1024ull * 1024)
#define WORK_MAX		(64 * MIB)	/* the part of the device the suite uses */
#define MAX_IO_BYTES		(1u << 20)	/* largest READ/WRITE the suite builds */
#define PGALLOC_BUDGET		(48u << 20)
#define LOOP_DEPTH		256
#define WAIT_MS			15000		/* a bio not done by then is lost */
#define MAX_BUF_SEGS		32		/* segments in a caller-buffer bio */
#define GAP_MAX			67		/* bytes between caller segments */
#define CANARY			0xc5
#define TCASE_TIMEOUT		30		/* seconds; a case takes a few */
#define NR_THREADS		4

static const char *g_spec;
static uint64_t g_seed = 0xb10cd5eedull;
static unsigned int g_ops = 2000;
static bool g_persistent;		/* storage outlives a backend_close() */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool is_zero(const uint8_t *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

static const char *op_name(enum req_op op)
{
	static const char *const names[] = {
		[REQ_OP_READ] = "READ", [REQ_OP_WRITE] = "WRITE",
		[REQ_OP_FLUSH] = "FLUSH", [REQ_OP_DISCARD] = "DISCARD",
		[REQ_OP_WRITE_ZEROES] = "WRITE_ZEROES",
	};

	return op < REQ_OP_LAST ? names[op] : "?";
}

/* ------------------------------------------------------------------ */
/* The model: what the device must read as.                            */

struct model {
	uint64_t base;			/* device offset of data[0] */
	uint64_t size;
	uint8_t *data;
	uint8_t *maybe;			/* per sector: discarded, old data or zeros */
};

static void model_init(struct model *m, uint64_t base, uint64_t size)
{
	m->base = base;
	m->size = size;
	m->data = calloc(1, size);
	m->maybe = calloc(1, size >> SECTOR_SHIFT);
	ck_assert_ptr_nonnull(m->data);
	ck_assert_ptr_nonnull(m->maybe);
}

static void model_free(struct model *m)
{
	free(m->data);
	free(m->maybe);
	memset(m, 0, sizeof(*m));
}

static void model_copy(struct model *dst, const struct model *src)
{
	model_init(dst, src->base, src->size);
	memcpy(dst->data, src->data, src->size);
	memcpy(dst->maybe, src->maybe, src->size >> SECTOR_SHIFT);
}

static bool model_covers(const struct model *m, uint64_t off, uint64_t len)
{
	return off >= m->base && off + len <= m->base + m->size;
}

static void model_write(struct model *m, uint64_t off, const void *buf,
			uint64_t len)
{
	uint64_t rel = off - m->base;

	BUG_ON(!model_covers(m, off, len));
	memcpy(m->data + rel, buf, len);
	memset(m->maybe + (rel >> SECTOR_SHIFT), 0, len >> SECTOR_SHIFT);
}

static void model_zero(struct model *m, uint64_t off, uint64_t len)
{
	uint64_t rel = off - m->base;

	BUG_ON(!model_covers(m, off, len));
	memset(m->data + rel, 0, len);
	memset(m->maybe + (rel >> SECTOR_SHIFT), 0, len >> SECTOR_SHIFT);
}

static void model_discard(struct model *m, uint64_t off, uint64_t len)
{
	uint64_t rel = off - m->base;

	BUG_ON(!model_covers(m, off, len));
	memset(m->maybe + (rel >> SECTOR_SHIFT), 1, len >> SECTOR_SHIFT);
}

/*
 * Whether @got, read from [@off, @off + @len), is what the device holds.
 * Discarded sectors settle on what was read.  On a mismatch, says where in
 * @why.
 */
static bool model_check(struct model *m, uint64_t off, const uint8_t *got,
			uint64_t len, char *why, size_t whylen)
{
	uint64_t rel = off - m->base, i, s;

	BUG_ON(!model_covers(m, off, len));
	for (i = 0; i < len; i += SECTOR_SIZE) {
		const uint8_t *want = m->data + rel + i;
		const uint8_t *have = got + i;

		s = (rel + i) >> SECTOR_SHIFT;
		if (!memcmp(want, have, SECTOR_SIZE)) {
			m->maybe[s] = 0;
			continue;
		}
		if (m->maybe[s] && is_zero(have, SECTOR_SIZE)) {
			memset(m->data + rel + i, 0, SECTOR_SIZE);
			m->maybe[s] = 0;
			continue;
		}
		{
			unsigned int b = 0;

			while (want[b] == have[b])
				b++;
			snprintf(why, whylen,
				 "device byte %" PRIu64 " (sector %" PRIu64 ", +%u) reads 0x%02x, want 0x%02x%s%s",
				 off + i + b, (off + i) >> SECTOR_SHIFT, b, have[b], want[b],
				 is_zero(have, SECTOR_SIZE) ? "; the sector reads as zeros" : "",
				 m->maybe[s] ? " (discarded: its old data or zeros)" : "");
		}
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* A submitter: a thread with its loop, its bio_set and its dice.      */

struct ctx {
	struct ioloop *loop;
	struct backend *be;
	struct bio_set bs;
	bool bs_ok;
	struct rng rng;
	uint64_t seed;
	atomic_int inflight;		/* bios submitted and not yet ended */
	pthread_t self;
	unsigned long long seq;		/* I/Os issued, for messages */
	char err[1024];			/* the first failure */
};

static bool ctx_fail(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool ctx_fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->err[0])
		return false;
	n = snprintf(c->err, sizeof(c->err), "[spec %s, seed 0x%" PRIx64 "] ",
		     g_spec, c->seed);
	va_start(ap, fmt);
	vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

#define ck_assert_ctx(c) ck_assert_msg(!(c)->err[0], "%s", (c)->err)
/* Assert @expr, which reports what went wrong in @c. */
#define ck_ok(c, expr) \
	ck_assert_msg((expr), "%s", (c)->err[0] ? (c)->err : #expr)

/* Make @c the calling thread's submitter for @be; the loop is created here. */
static void ctx_init(struct ctx *c, struct pgalloc *pa, struct backend *be,
		     uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->loop = ioloop_create(LOOP_DEPTH, 0, pa);
	c->be = be;
	c->self = pthread_self();
	c->seed = seed;
	rng_seed(&c->rng, seed);
	if (!c->loop) {
		ctx_fail(c, "ioloop_create: %s", strerror(errno));
		return;
	}
	ioloop_set_current(c->loop);
	if (bioset_init(&c->bs, 16, 0, BIOSET_NEED_BVECS, pa)) {
		ctx_fail(c, "bioset_init failed");
		return;
	}
	c->bs_ok = true;
}

/* After the backend is closed: the loop may hold the backend's state. */
static void ctx_exit(struct ctx *c)
{
	if (c->bs_ok)
		bioset_exit(&c->bs);
	c->bs_ok = false;
	if (c->loop)
		ioloop_destroy(c->loop);
	c->loop = NULL;
}

/* Run @c's loop until none of its bios is in flight. */
static bool ctx_wait(struct ctx *c)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	int n;

	while ((n = atomic_load(&c->inflight)) > 0) {
		int ret = ioloop_run_once(c->loop, 100);

		if (ret < 0)
			return ctx_fail(c, "ioloop_run_once: %s", strerror(-ret));
		if (now_ms() > deadline)
			return ctx_fail(c, "%d bio(s) not completed after %d ms", n,
					WAIT_MS);
	}
	if (n < 0)
		return ctx_fail(c, "more bio completions than bios (a bio ended twice)");
	return true;
}

/* ------------------------------------------------------------------ */
/* One I/O: one or more bios over one range, and its data.             */

enum layout {
	LAYOUT_PAGES,			/* bio_prep_pages() + bio_alloc_pages() */
	LAYOUT_BUF,			/* bio_add_page() over a caller buffer */
	LAYOUT_RANDOM,
};

struct seg {
	size_t pos;			/* in buf */
	unsigned int len;
};

struct io {
	struct ctx *c;
	unsigned long long seq;
	enum req_op op;
	blk_opf_t flags;
	uint64_t off;
	uint32_t len;
	enum layout layout;
	uint8_t *data;			/* flat: what a write writes, what a read read */
	uint8_t *raw, *buf;		/* LAYOUT_BUF: the buffer, buf misaligned in raw */
	size_t raw_len, buf_len, cursor;
	struct seg *segs;
	unsigned int nr_segs, max_segs;
	struct bio **bios;
	struct bvec_iter *iters;	/* as submitted */
	uint32_t *chunk_off;		/* of each bio, from off */
	unsigned int nr_bios, max_bios;
	atomic_int ends;
	atomic_int status;
	atomic_bool wrong_thread;
};

static void io_describe(const struct io *io, char *s, size_t n)
{
	snprintf(s, n, "I/O #%llu %s%s%s%s off=%" PRIu64 " len=%u (%u bio(s), %s)",
		 io->seq, op_name(io->op),
		 io->flags & REQ_FUA ? "|FUA" : "",
		 io->flags & REQ_PREFLUSH ? "|PREFLUSH" : "",
		 io->flags & REQ_NOUNMAP ? "|NOUNMAP" : "",
		 io->off, io->len, io->nr_bios,
		 !op_has_data(io->op) ? "no data" :
		 io->layout == LAYOUT_PAGES ? "page per bvec" : "caller buffer");
}

static void io_end(struct bio *bio)
{
	struct io *io = bio->bi_private;
	int zero = 0;

	if (!pthread_equal(pthread_self(), io->c->self))
		atomic_store(&io->wrong_thread, true);
	if (bio->bi_status)
		atomic_compare_exchange_strong(&io->status, &zero, bio->bi_status);
	atomic_fetch_add(&io->ends, 1);
	atomic_fetch_sub(&io->c->inflight, 1);
}

static void io_free(struct io *io)
{
	unsigned int i;

	if (!io)
		return;
	for (i = 0; i < io->nr_bios; i++)
		bio_put(io->bios[i]);
	free(io->bios);
	free(io->iters);
	free(io->chunk_off);
	free(io->segs);
	free(io->raw);
	free(io->data);
	free(io);
}

/* The largest bio of @layout the queue takes whole. */
static uint32_t chunk_limit(const struct io *io)
{
	const struct queue_limits *lim = &io->c->be->queue.limits;
	uint64_t max = min_t(uint64_t, lim->max_bytes, MAX_IO_BYTES);

	if (io->layout == LAYOUT_PAGES)
		max = min_t(uint64_t, max, (uint64_t)lim->max_segments * PAGE_SIZE);
	max &= ~(uint64_t)(SECTOR_SIZE - 1);
	return max < SECTOR_SIZE ? SECTOR_SIZE : (uint32_t)max;
}

/* A bio over caller memory for [@rel, @rel + @len) of @io, in odd segments. */
static struct bio *io_buf_bio(struct io *io, uint32_t rel, uint32_t len)
{
	struct rng *r = &io->c->rng;
	unsigned int cap = min_t(unsigned int, MAX_BUF_SEGS,
				 io->c->be->queue.limits.max_segments);
	unsigned int nseg = (unsigned int)rng_range(r, 1, min_t(uint32_t, cap, len));
	uint32_t cuts[MAX_BUF_SEGS + 1];
	bool sector_cuts = rng_chance(r, 30) && len / SECTOR_SIZE >= nseg;
	unsigned int i, n = 1;
	struct bio *bio;

	/* nseg - 1 distinct cut points inside (0, len), in order. */
	cuts[0] = 0;
	for (i = 1; i < nseg; i++) {
		uint32_t c = sector_cuts ?
			(uint32_t)rng_range(r, 1, len / SECTOR_SIZE - 1) * SECTOR_SIZE :
			(uint32_t)rng_range(r, 1, len - 1);
		unsigned int j = n;

		while (j > 0 && cuts[j - 1] > c)
			j--;
		if (cuts[j - 1] == c)
			continue;
		memmove(&cuts[j + 1], &cuts[j], (n - j) * sizeof(cuts[0]));
		cuts[j] = c;
		n++;
	}
	cuts[n] = len;

	bio = bio_kmalloc(BLK_GFP_WAIT, n);
	if (!bio)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned int slen = cuts[i + 1] - cuts[i];
		size_t gap = rng_chance(r, 25) ? 0 : rng_range(r, 1, GAP_MAX);
		uint8_t *p;

		io->cursor += gap;
		BUG_ON(io->cursor + slen > io->buf_len || io->nr_segs >= io->max_segs);
		p = io->buf + io->cursor;
		if (io->op == REQ_OP_WRITE)
			memcpy(p, io->data + rel + cuts[i], slen);
		io->segs[io->nr_segs++] = (struct seg){ io->cursor, slen };
		io->cursor += slen;
		/* As the kernel would: a page and the offset in it. */
		if (bio_add_page(bio, (void *)((uintptr_t)p & PAGE_MASK), slen,
				 (unsigned int)((uintptr_t)p & ~PAGE_MASK)) != slen) {
			bio_put(bio);
			return NULL;
		}
	}
	return bio;
}

static struct bio *io_pages_bio(struct io *io, uint32_t rel, uint32_t len)
{
	struct bio *bio = bio_alloc_bioset(BLK_GFP_WAIT, DIV_ROUND_UP(len, PAGE_SIZE),
					   &io->c->bs);

	if (!bio)
		return NULL;
	if (bio_prep_pages(bio, len) || bio_alloc_pages(bio, BLK_GFP_WAIT)) {
		bio_put(bio);
		return NULL;
	}
	if (io->op == REQ_OP_WRITE)
		bio_copy_from_buf(bio, io->data + rel, len);
	return bio;
}

/* The bytes per bio of a data I/O: the limit, or sometimes less. */
static uint32_t io_pick_chunk(struct io *io)
{
	struct ctx *c = io->c;
	uint32_t chunk = chunk_limit(io), len = io->len;

	/* Sometimes more, smaller bios: neighbours a plug may merge. */
	if (rng_chance(&c->rng, 20) && len >= 2 * SECTOR_SIZE) {
		uint32_t lo = DIV_ROUND_UP(len / SECTOR_SIZE, 8);
		uint32_t hi = len / SECTOR_SIZE - 1;

		if (lo <= hi)
			chunk = min_t(uint32_t, chunk,
				      (uint32_t)rng_range(&c->rng, lo, hi) * SECTOR_SIZE);
	}
	return chunk;
}

/* LAYOUT_BUF: the caller's memory, canaries around, often misaligned. */
static void io_alloc_buf(struct io *io)
{
	struct rng *r = &io->c->rng;
	size_t mis;

	io->max_segs = io->max_bios * MAX_BUF_SEGS;
	io->segs = calloc(io->max_segs, sizeof(*io->segs));
	io->buf_len = io->len + (size_t)io->max_segs * GAP_MAX + 64;
	io->raw_len = io->buf_len + PAGE_SIZE;
	io->raw = aligned_alloc(PAGE_SIZE,
				DIV_ROUND_UP(io->raw_len, PAGE_SIZE) * PAGE_SIZE);
	ck_assert_ptr_nonnull(io->segs);
	ck_assert_ptr_nonnull(io->raw);
	memset(io->raw, CANARY, io->raw_len);
	switch (rng_next(r) % 4) {
	case 0: mis = 0; break;
	case 1: mis = SECTOR_SIZE; break;
	default: mis = rng_range(r, 1, PAGE_SIZE - 1); break;
	}
	io->buf = io->raw + mis;
}

/* A data I/O's data (@src, random, or a filler to be read over). */
static void io_alloc_data(struct io *io, uint32_t chunk, const void *src)
{
	io->max_bios = DIV_ROUND_UP(io->len, chunk);
	io->data = malloc(io->len);
	ck_assert_ptr_nonnull(io->data);
	if (io->op != REQ_OP_WRITE)
		memset(io->data, 0x5a, io->len);
	else if (src)
		memcpy(io->data, src, io->len);
	else
		rng_fill(&io->c->rng, io->data, io->len);
	if (io->layout == LAYOUT_BUF)
		io_alloc_buf(io);
}

/* Build and submit @io's bios of @chunk bytes, one after the other. */
static void io_submit_bios(struct io *io, uint32_t chunk)
{
	struct ctx *c = io->c;
	bool data = op_has_data(io->op);
	uint32_t rel = 0;

	do {
		uint32_t n = data ? min_t(uint32_t, chunk, io->len - rel) : io->len;
		struct bio *bio;

		if (!data)
			bio = bio_kmalloc(BLK_GFP_WAIT, 0);
		else if (io->layout == LAYOUT_PAGES)
			bio = io_pages_bio(io, rel, n);
		else
			bio = io_buf_bio(io, rel, n);
		ck_assert_msg(bio != NULL, "cannot build a bio of %u bytes", n);
		if (!data)
			bio->bi_iter.bi_size = n;
		bio->bi_opf = io->op | io->flags;
		bio->bi_iter.bi_sector = (io->off + rel) >> SECTOR_SHIFT;
		bio->bi_queue = &c->be->queue;
		bio->bi_end_io = io_end;
		bio->bi_private = io;
		io->bios[io->nr_bios] = bio;
		io->iters[io->nr_bios] = bio->bi_iter;
		io->chunk_off[io->nr_bios] = rel;
		io->nr_bios++;
		atomic_fetch_add(&c->inflight, 1);
		submit_bio(bio);
		rel += n;
	} while (rel < io->len && data);
}

/*
 * Build and submit one I/O.  For a WRITE, @src is its data (NULL: random
 * data).  Bios are allocated and submitted one after the other.
 */
static struct io *io_start(struct ctx *c, enum req_op op, blk_opf_t flags,
			   uint64_t off, uint32_t len, enum layout layout,
			   const void *src)
{
	struct io *io = calloc(1, sizeof(*io));
	uint32_t chunk;

	ck_assert_ptr_nonnull(io);
	io->c = c;
	io->seq = c->seq++;
	io->op = op;
	io->flags = flags;
	io->off = off;
	io->len = len;
	if (layout == LAYOUT_RANDOM)
		layout = rng_chance(&c->rng, 50) ? LAYOUT_PAGES : LAYOUT_BUF;
	io->layout = layout;

	if (op_has_data(op)) {
		chunk = io_pick_chunk(io);
		io_alloc_data(io, chunk, src);
	} else {
		chunk = len ? len : 1;
		io->max_bios = 1;
	}
	io->bios = calloc(io->max_bios, sizeof(*io->bios));
	io->iters = calloc(io->max_bios, sizeof(*io->iters));
	io->chunk_off = calloc(io->max_bios, sizeof(*io->chunk_off));
	ck_assert_ptr_nonnull(io->bios);
	ck_assert_ptr_nonnull(io->iters);
	ck_assert_ptr_nonnull(io->chunk_off);
	io_submit_bios(io, chunk);
	return io;
}

/*
 * After the I/O has ended: check how it ended (once per bio, on the
 * submitting thread), gather what a read read into io->data, and check
 * that the memory around and under the caller's segments is as it must
 * be.  Returns the status, or INT_MIN (with c->err) when the backend broke
 * a rule.
 */
static int io_collect(struct io *io)
{
	struct ctx *c = io->c;
	char d[256];
	unsigned int i;

	io_describe(io, d, sizeof(d));
	if (atomic_load(&io->ends) != (int)io->nr_bios) {
		ctx_fail(c, "%s: %d completions for %u bio(s)", d,
			 atomic_load(&io->ends), io->nr_bios);
		return INT_MIN;
	}
	if (atomic_load(&io->wrong_thread)) {
		ctx_fail(c, "%s: completed on another thread than its submitter's", d);
		return INT_MIN;
	}
	if (!op_has_data(io->op))
		return atomic_load(&io->status);

	for (i = 0; i < io->nr_bios; i++) {
		struct bio *bio = io->bios[i];
		uint32_t n = io->iters[i].bi_size;

		/* The backend may have moved the iterator; the data is where it was. */
		bio->bi_iter = io->iters[i];
		if (io->op == REQ_OP_READ) {
			bio_copy_to_buf(bio, io->data + io->chunk_off[i], n);
		} else if (!atomic_load(&io->status)) {
			uint8_t *tmp = malloc(n);

			ck_assert_ptr_nonnull(tmp);
			bio_copy_to_buf(bio, tmp, n);
			if (memcmp(tmp, io->data + io->chunk_off[i], n)) {
				free(tmp);
				ctx_fail(c, "%s: the backend changed the data of a write", d);
				return INT_MIN;
			}
			free(tmp);
		}
	}
	if (io->layout == LAYOUT_BUF) {
		/* Not a byte outside the segments may change, before or after. */
		uint8_t *end = io->raw + io->raw_len, *p = io->raw;

		for (i = 0; i <= io->nr_segs; i++) {
			uint8_t *stop = i < io->nr_segs ? io->buf + io->segs[i].pos : end;

			for (; p < stop; p++) {
				if (*p != CANARY) {
					ctx_fail(c, "%s: byte %td of the caller's buffer, outside every segment, was overwritten",
						 d, p - io->buf);
					return INT_MIN;
				}
			}
			if (i < io->nr_segs)
				p = stop + io->segs[i].len;
		}
	}
	return atomic_load(&io->status);
}

/* Check a finished I/O against @m and apply it; false with c->err if wrong. */
static bool io_apply(struct io *io, struct model *m, int want_status)
{
	struct ctx *c = io->c;
	int st = io_collect(io);
	char d[256], why[256];

	if (st == INT_MIN)
		return false;
	io_describe(io, d, sizeof(d));
	if (st != want_status)
		return ctx_fail(c, "%s ended with %d (%s), want %d (%s)", d, st,
				st ? strerror(-st) : "success", want_status,
				want_status ? strerror(-want_status) : "success");
	if (st || !m)
		return true;
	switch (io->op) {
	case REQ_OP_READ:
		if (!model_check(m, io->off, io->data, io->len, why, sizeof(why)))
			return ctx_fail(c, "%s: %s", d, why);
		break;
	case REQ_OP_WRITE:
		model_write(m, io->off, io->data, io->len);
		break;
	case REQ_OP_WRITE_ZEROES:
		model_zero(m, io->off, io->len);
		break;
	case REQ_OP_DISCARD:
		model_discard(m, io->off, io->len);
		break;
	default:
		break;
	}
	return true;
}

/* One I/O, waited for.  Returns its status; INT_MIN with c->err on a broken rule. */
static int do_io(struct ctx *c, enum req_op op, blk_opf_t flags, uint64_t off,
		 uint32_t len, enum layout layout, void *data)
{
	struct io *io = io_start(c, op, flags, off, len, layout, data);
	int st;

	if (!ctx_wait(c))
		return INT_MIN;		/* bios still out there: leak the I/O */
	st = io_collect(io);
	if (!st && op == REQ_OP_READ && data)
		memcpy(data, io->data, len);
	io_free(io);
	return st;
}

/* Do one I/O, expect @want, keep @m in step. */
static bool do_check(struct ctx *c, struct model *m, enum req_op op,
		     blk_opf_t flags, uint64_t off, uint32_t len,
		     enum layout layout, const void *src, int want)
{
	struct io *io = io_start(c, op, flags, off, len, layout, src);
	bool ok;

	if (!ctx_wait(c))
		return false;
	ok = io_apply(io, m, want);
	io_free(io);
	return ok;
}

/* Read [off, off + len) in pieces of at most 1 MiB and check it against @m. */
static bool verify_range(struct ctx *c, struct model *m, uint64_t off, uint64_t len)
{
	while (len) {
		uint32_t n = (uint32_t)min_t(uint64_t, len, MAX_IO_BYTES);

		if (!do_check(c, m, REQ_OP_READ, 0, off, n, LAYOUT_RANDOM, NULL, 0))
			return false;
		off += n;
		len -= n;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* The fixture.                                                        */

static struct {
	struct pgalloc *pa;
	struct ctx c;
	struct backend *be;
	uint64_t work;			/* bytes of the device the suite uses */
	struct model m;			/* the work region, as the plain backend sees it */
	struct ctx threads[NR_THREADS];	/* their loops live until teardown */
} T;

/* A copy of the model for a backend opened again on the same storage. */
static void model_for_reopen(struct model *m2)
{
	if (g_persistent)
		model_copy(m2, &T.m);
	else
		model_init(m2, 0, T.work);
}

static struct backend *open_spec(const char *extra)
{
	char spec[4096], err[512] = "";
	struct backend *be = NULL;
	int ret;

	snprintf(spec, sizeof(spec), "%s%s", g_spec, extra);
	ret = backend_open_spec(spec, T.pa, &be, err, sizeof(err));
	ck_assert_msg(ret == 0, "cannot open %s: %s (%d)", spec, err, ret);
	return be;
}

/* Zero [off, off + len) without trusting WRITE_ZEROES to exist. */
static void zero_device(struct ctx *c, uint64_t off, uint64_t len)
{
	int st = do_io(c, REQ_OP_WRITE_ZEROES, 0, off, (uint32_t)len, LAYOUT_PAGES, NULL);
	uint8_t *zeros;

	ck_assert_ctx(c);
	if (!st)
		return;
	ck_assert_msg(st == -EOPNOTSUPP,
		      "setup: WRITE_ZEROES of the first %" PRIu64 " bytes failed: %s",
		      len, strerror(-st));
	zeros = calloc(1, MAX_IO_BYTES);
	for (uint64_t p = off; p < off + len; p += MAX_IO_BYTES) {
		uint32_t n = (uint32_t)min_t(uint64_t, off + len - p, MAX_IO_BYTES);

		st = do_io(c, REQ_OP_WRITE, 0, p, n, LAYOUT_PAGES, zeros);
		ck_assert_ctx(c);
		ck_assert_msg(!st, "setup: writing zeros at %" PRIu64 " failed: %s", p,
			      strerror(-st));
	}
	free(zeros);
}

static void setup(void)
{
	memset(&T, 0, sizeof(T));
	T.pa = pgalloc_create(PGALLOC_BUDGET, 0, 0);
	ck_assert_msg(T.pa != NULL, "pgalloc_create: %s", strerror(errno));
	ctx_init(&T.c, T.pa, NULL, g_seed);
	ck_assert_ctx(&T.c);
	T.be = open_spec("");
	T.c.be = T.be;
	ck_assert_msg(T.be->size >= 4 * MIB && !(T.be->size % SECTOR_SIZE),
		      "the suite needs a device of at least 4 MiB in whole sectors, not %" PRIu64,
		      T.be->size);
	T.work = min_t(uint64_t, T.be->size, WORK_MAX) & ~(uint64_t)(MIB - 1);
	zero_device(&T.c, 0, T.work);
	model_init(&T.m, 0, T.work);
}

static void teardown(void)
{
	unsigned int i;

	backend_close(T.be);
	T.be = NULL;
	ctx_exit(&T.c);
	for (i = 0; i < NR_THREADS; i++)
		ctx_exit(&T.threads[i]);
	model_free(&T.m);
	pgalloc_destroy(T.pa);
	T.pa = NULL;
}

/* ------------------------------------------------------------------ */
/* Tests.                                                              */

/* The backend describes itself sanely; a fresh device reads as zeros. */
START_TEST(test_describe)
{
	struct backend *be = T.be;
	const struct queue_limits *lim = &be->queue.limits;

	printf("backend-conformance: %s: engine=%s size=%" PRIu64 " lbs=%u pbs=%u caps=0x%x max_bytes=%u max_segments=%u\n",
	       g_spec, be->engine ? be->engine : "(null)", be->size,
	       be->logical_block_size, be->physical_block_size, be->caps,
	       lim->max_bytes, lim->max_segments);
	fflush(stdout);
	ck_assert_ptr_nonnull(be->engine);
	ck_assert(!be->readonly);
	ck_assert_uint_ge(be->logical_block_size, SECTOR_SIZE);
	ck_assert(!(be->logical_block_size & (be->logical_block_size - 1)));
	ck_assert_uint_ge(be->physical_block_size, be->logical_block_size);
	ck_assert(!(be->size % be->logical_block_size));
	ck_assert_uint_ge(lim->max_segments, 1);
	ck_assert_uint_ge(lim->max_bytes, SECTOR_SIZE);

	ck_ok(&T.c, verify_range(&T.c, &T.m, 0, 4 * MIB));
	ck_ok(&T.c, verify_range(&T.c, &T.m, T.work - 2 * MIB, 2 * MIB));
	ck_assert_ctx(&T.c);
	/* One sector at each end of the work region. */
	ck_ok(&T.c, do_check(&T.c, &T.m, REQ_OP_WRITE, 0, 0, SECTOR_SIZE, LAYOUT_BUF, NULL, 0));
	ck_ok(&T.c, do_check(&T.c, &T.m, REQ_OP_WRITE, 0, T.work - SECTOR_SIZE, SECTOR_SIZE,
			     LAYOUT_PAGES, NULL, 0));
	ck_ok(&T.c, verify_range(&T.c, &T.m, 0, 64 * KIB));
	ck_ok(&T.c, verify_range(&T.c, &T.m, T.work - 64 * KIB, 64 * KIB));
	ck_assert_ctx(&T.c);
}
END_TEST

/* A random length in sectors, log-uniform from 1 to @max_sectors. */
static uint32_t rand_sectors(struct rng *r, uint32_t max_sectors)
{
	unsigned int bits = 0, e;
	uint32_t lo, hi;

	while ((2u << bits) <= max_sectors)
		bits++;
	e = (unsigned int)rng_range(r, 0, bits);
	lo = 1u << e;
	hi = min_t(uint32_t, (2u << e) - 1, max_sectors);
	return (uint32_t)rng_range(r, lo, hi);
}

struct range {
	uint64_t off, len;
};

static bool overlaps(const struct range *rs, unsigned int n, uint64_t off,
		     uint64_t len)
{
	for (unsigned int i = 0; i < n; i++)
		if (off < rs[i].off + rs[i].len && rs[i].off < off + len)
			return true;
	return false;
}

#define BATCH_MAX	16

/* One batch of random_ops(): I/Os on disjoint ranges, in flight at once. */
struct batch {
	unsigned int k;
	struct range rs[BATCH_MAX];
	enum req_op op[BATCH_MAX];
	blk_opf_t flags[BATCH_MAX];
	struct io *ios[BATCH_MAX];
	bool seq;			/* back to back, one op: they merge */
	bool plug;
	enum req_op seq_op;
	uint64_t next;			/* seq: where the next one starts */
};

static enum req_op pick_op(struct ctx *c, const struct batch *b)
{
	unsigned int pick = (unsigned int)(rng_next(&c->rng) % 100);

	if (b->seq)
		return b->seq_op;
	if (pick < 38)
		return REQ_OP_READ;
	if (pick < 76)
		return REQ_OP_WRITE;
	if (pick < 86)
		return REQ_OP_DISCARD;
	if (pick < 97)
		return REQ_OP_WRITE_ZEROES;
	return REQ_OP_FLUSH;
}

static blk_opf_t pick_flags(struct ctx *c, enum req_op op)
{
	unsigned int pick;

	if (op == REQ_OP_WRITE_ZEROES)
		return rng_chance(&c->rng, 50) ? REQ_NOUNMAP : 0;
	if (op != REQ_OP_WRITE)
		return 0;
	pick = (unsigned int)(rng_next(&c->rng) % 100);
	if (pick < 8)
		return REQ_FUA;
	if (pick < 12)
		return REQ_PREFLUSH;
	if (pick < 15)
		return REQ_FUA | REQ_PREFLUSH;
	return 0;
}

/* The next I/O's range in @m, apart from the batch's; 0 bytes if none fits. */
static uint64_t pick_range(struct ctx *c, const struct model *m,
			   const struct batch *b, uint32_t max_len, uint64_t *offp)
{
	uint64_t region_sectors = m->size >> SECTOR_SHIFT, end = m->base + m->size;

	for (unsigned int tries = 0; tries < 16; tries++) {
		uint64_t off, len = (uint64_t)rand_sectors(&c->rng, max_len / SECTOR_SIZE)
				    << SECTOR_SHIFT;

		if (b->seq) {
			len = min_t(uint64_t, len, 256 * KIB);
			off = b->next;
			if (off + len > end)
				return 0;
		} else {
			off = rng_range(&c->rng, 0, region_sectors - 1) << SECTOR_SHIFT;
			/* A quarter of them 4 KiB aligned, as most I/O is. */
			if (rng_chance(&c->rng, 25)) {
				off &= ~(uint64_t)(PAGE_SIZE - 1);
				len = (len + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
			}
			off += m->base;
			if (off + len > end)
				len = end - off;
		}
		if (!overlaps(b->rs, b->k, off, len)) {
			*offp = off;
			return len;
		}
	}
	return 0;
}

/* Plan a batch of up to @n I/Os, counting them in *@done (up to @nops). */
static void batch_plan(struct ctx *c, const struct model *m, struct batch *b,
		       unsigned int n, unsigned int *done, unsigned int nops,
		       uint32_t max_len)
{
	for (unsigned int i = 0; i < n && *done < nops; i++) {
		enum req_op op = pick_op(c, b);
		blk_opf_t flags = pick_flags(c, op);
		uint64_t off = 0, len = 0;

		if (op != REQ_OP_FLUSH) {
			len = pick_range(c, m, b, max_len, &off);
			if (!len)
				break;
			b->next = off + len;
		}
		b->op[b->k] = op;
		b->flags[b->k] = flags;
		b->rs[b->k] = (struct range){ off, len };
		b->k++;
		(*done)++;
	}
}

static void batch_submit(struct ctx *c, struct batch *b)
{
	struct blk_plug p;

	if (b->plug)
		blk_start_plug(&p);
	/*
	 * Under a plug, bios without data go first: core's plan_request()
	 * still counts the segments of a data-less bio that follows a data
	 * bio (see the plug-merge case), and that bug must not hide what
	 * this case tests.
	 */
	for (unsigned int pass = b->plug ? 0 : 1; pass < 2; pass++) {
		for (unsigned int i = 0; i < b->k; i++) {
			if (b->plug && op_has_data(b->op[i]) != (pass == 1))
				continue;
			b->ios[i] = io_start(c, b->op[i], b->flags[i], b->rs[i].off,
					     (uint32_t)b->rs[i].len, LAYOUT_RANDOM, NULL);
		}
	}
	if (b->plug)
		blk_finish_plug(&p);
}

/* Wait for the batch and check each I/O against @m; false on a failure. */
static bool batch_finish(struct ctx *c, struct model *m, struct batch *b)
{
	if (!ctx_wait(c))
		return false;
	for (unsigned int i = 0; i < b->k; i++) {
		bool ok = io_apply(b->ios[i], m, 0);

		io_free(b->ios[i]);
		if (!ok) {
			while (++i < b->k)
				io_free(b->ios[i]);
			return false;
		}
	}
	return true;
}

/*
 * Random operations against @m (a region [m->base, m->base + m->size)):
 * batches of 1 to @depth I/Os on disjoint ranges, all in flight at once,
 * sometimes under a plug, sometimes back to back so they merge.
 */
static bool random_ops(struct ctx *c, struct model *m, unsigned int nops,
		       unsigned int depth, uint32_t max_len)
{
	uint64_t region_sectors = m->size >> SECTOR_SHIFT;
	unsigned int done = 0;

	BUG_ON(depth > BATCH_MAX);
	while (done < nops) {
		struct batch b = { 0 };
		unsigned int n = (unsigned int)rng_range(&c->rng, 1, depth);

		b.seq = n > 1 && rng_chance(&c->rng, 20);
		b.plug = rng_chance(&c->rng, 30);
		b.seq_op = rng_chance(&c->rng, 50) ? REQ_OP_READ : REQ_OP_WRITE;
		if (b.seq)
			b.next = m->base + (rng_range(&c->rng, 0, region_sectors - 1)
					    << SECTOR_SHIFT);
		batch_plan(c, m, &b, n, &done, nops, max_len);
		batch_submit(c, &b);
		if (!batch_finish(c, m, &b))
			return false;
	}
	return true;
}

START_TEST(test_random)
{
	uint64_t t0 = now_ms();

	ck_ok(&T.c, random_ops(&T.c, &T.m, g_ops, 8, MAX_IO_BYTES));
	ck_assert_ctx(&T.c);
	/* Then all of it, once more. */
	ck_ok(&T.c, verify_range(&T.c, &T.m, 0, T.work));
	ck_assert_ctx(&T.c);
	printf("backend-conformance: %u random I/Os in %.1f s\n", g_ops,
	       (double)(now_ms() - t0) / 1000);
}
END_TEST

START_TEST(test_flush_fua)
{
	struct ctx *c = &T.c;
	static const blk_opf_t flags[] = {
		REQ_FUA, REQ_PREFLUSH, REQ_FUA | REQ_PREFLUSH, REQ_FUA | REQ_SYNC,
	};
	struct io *ios[6];
	unsigned int i;

	/* A flush with nothing written, and one more. */
	ck_ok(c, do_check(c, NULL, REQ_OP_FLUSH, 0, 0, 0, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, NULL, REQ_OP_FLUSH, REQ_PREFLUSH, 0, 0, LAYOUT_PAGES, NULL, 0));
	ck_assert_ctx(c);

	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		uint64_t off = (uint64_t)(i + 1) * MIB + (i % 2) * SECTOR_SIZE;

		ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, flags[i], off,
				  64 * KIB + (uint32_t)i * SECTOR_SIZE,
				   i % 2 ? LAYOUT_BUF : LAYOUT_PAGES, NULL, 0));
		ck_ok(c, verify_range(c, &T.m, off - 4 * KIB, 72 * KIB + i * SECTOR_SIZE));
		ck_assert_ctx(c);
	}

	/* Writes in flight with a flush among them, then FUA writes behind it. */
	ios[0] = io_start(c, REQ_OP_WRITE, 0, 8 * MIB, 128 * KIB, LAYOUT_PAGES, NULL);
	ios[1] = io_start(c, REQ_OP_WRITE, 0, 9 * MIB, 12 * KIB, LAYOUT_BUF, NULL);
	ios[2] = io_start(c, REQ_OP_FLUSH, 0, 0, 0, LAYOUT_PAGES, NULL);
	ios[3] = io_start(c, REQ_OP_WRITE, REQ_FUA, 10 * MIB, 4 * KIB, LAYOUT_BUF, NULL);
	ios[4] = io_start(c, REQ_OP_WRITE, REQ_PREFLUSH | REQ_FUA, 11 * MIB, 256 * KIB,
			  LAYOUT_PAGES, NULL);
	ios[5] = io_start(c, REQ_OP_FLUSH, 0, 0, 0, LAYOUT_PAGES, NULL);
	ck_ok(c, ctx_wait(c));
	for (i = 0; i < ARRAY_SIZE(ios); i++) {
		ck_ok(c, io_apply(ios[i], &T.m, 0));
		io_free(ios[i]);
	}
	ck_ok(c, verify_range(c, &T.m, 8 * MIB, 4 * MIB));
	ck_assert_ctx(c);
}
END_TEST

/*
 * Bios of every op on one plug, so that neighbours merge into requests of
 * several bios and layouts, and data bios sit next to bios without data.
 * A crash (ASan: heap-buffer-overflow in bio_count_segs()) or a timeout
 * here is core's plan_request() walking the bvecs of a DISCARD or
 * WRITE_ZEROES bio that follows a READ or WRITE on the plug.
 */
START_TEST(test_plug_merge)
{
	struct ctx *c = &T.c;
	static const struct {
		enum req_op op;
		blk_opf_t flags;
		uint32_t off, len;
	} seq[] = {
		{ REQ_OP_WRITE, 0, 0, 64 * 1024 },	/* four writes that merge */
		{ REQ_OP_WRITE, 0, 64 * 1024, 4096 + 512 },
		{ REQ_OP_WRITE, 0, 68 * 1024 + 512, 1024 },
		{ REQ_OP_WRITE, 0, 69 * 1024 + 512, 27 * 1024 + 512 },
		{ REQ_OP_DISCARD, 0, 97 * 1024, 3 * 1024 },	/* no data after data */
		{ REQ_OP_READ, 0, 256 * 1024, 8 * 1024 },
		{ REQ_OP_WRITE_ZEROES, 0, 264 * 1024, 8 * 1024 },
		{ REQ_OP_READ, 0, 272 * 1024, 512 },
		{ REQ_OP_WRITE_ZEROES, REQ_NOUNMAP, 512 * 1024, 4096 },
		{ REQ_OP_WRITE, 0, 516 * 1024, 4096 },
		{ REQ_OP_FLUSH, 0, 0, 0 },
		{ REQ_OP_WRITE, REQ_FUA, 520 * 1024, 4096 },
		{ REQ_OP_WRITE, REQ_FUA, 524 * 1024, 4096 },
		{ REQ_OP_READ, 0, 600 * 1024, 16 * 1024 },	/* reads that merge */
		{ REQ_OP_READ, 0, 616 * 1024, 1536 },
		{ REQ_OP_READ, 0, 617 * 1024 + 512, 6 * 1024 + 512 },
	};
	struct io *ios[ARRAY_SIZE(seq)];
	struct blk_plug plug;
	unsigned int i, round;

	for (round = 0; round < 4; round++) {
		ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, 0, (uint32_t)MIB, LAYOUT_PAGES, NULL, 0));
		blk_start_plug(&plug);
		for (i = 0; i < ARRAY_SIZE(seq); i++)
			ios[i] = io_start(c, seq[i].op, seq[i].flags, seq[i].off,
					  seq[i].len, round == 0 ? LAYOUT_PAGES :
					  round == 1 ? LAYOUT_BUF : LAYOUT_RANDOM, NULL);
		blk_finish_plug(&plug);
		ck_ok(c, ctx_wait(c));
		for (i = 0; i < ARRAY_SIZE(seq); i++) {
			ck_ok(c, io_apply(ios[i], &T.m, 0));
			io_free(ios[i]);
		}
		ck_ok(c, verify_range(c, &T.m, 0, MIB + 64 * KIB));
		ck_assert_ctx(c);
	}
}
END_TEST

/* Offsets and lengths that are 512-byte but not 4096-byte aligned. */
static const struct {
	uint32_t off, len;
} odd_ranges[] = {
	{ 512, 1536 },
	{ 0, 512 },
	{ 3584, 1024 },			/* across a 4 KiB boundary */
	{ 4096 - 512, 8192 + 1024 },
	{ 7 * 512, 512 },
	{ 8192 + 512, 64 * 1024 - 1024 },
	{ 64 * 1024 - 512, 128 * 1024 + 1024 },
	{ 1536, 4096 },			/* 4 KiB long, not aligned */
	{ 5 * 4096 + 1024, 3 * 4096 + 1536 },
	{ 1024 * 1024 - 512, 1024 * 1024 },	/* 1 MiB straddling two */
};

START_TEST(test_unaligned)
{
	struct ctx *c = &T.c;
	const uint64_t base = 2 * MIB;
	struct io *ios[16];
	unsigned int i, j, n;

	/* Known neighbours: random data over the whole area. */
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, base, (uint32_t)MIB, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, base + MIB, (uint32_t)MIB, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, base + 2 * MIB, (uint32_t)MIB, LAYOUT_PAGES, NULL, 0));
	ck_assert_ctx(c);

	for (j = 0; j < 2; j++) {
		for (i = 0; i < ARRAY_SIZE(odd_ranges); i++) {
			uint64_t off = base + odd_ranges[i].off;
			uint32_t len = odd_ranges[i].len;
			uint64_t lo = (off & ~(uint64_t)(PAGE_SIZE - 1)) - PAGE_SIZE;
			uint64_t hi = ((off + len + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1)) + PAGE_SIZE;

			/* Misaligned memory (j = 0) and page-aligned pages (j = 1). */
			ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, off, len,
					  j ? LAYOUT_PAGES : LAYOUT_BUF, NULL, 0));
			/* The range itself, then with its neighbours. */
			ck_ok(c, do_check(c, &T.m, REQ_OP_READ, 0, off, len,
					  j ? LAYOUT_BUF : LAYOUT_PAGES, NULL, 0));
			ck_ok(c, do_check(c, &T.m, REQ_OP_READ, 0, lo, (uint32_t)(hi - lo),
					  LAYOUT_BUF, NULL, 0));
			ck_assert_ctx(c);
		}
	}

	/* Zeroing and discarding odd ranges leaves the neighbours be. */
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE_ZEROES, 0, base + 512, 1024, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE_ZEROES, REQ_NOUNMAP, base + 8192 + 1536, 4096,
			  LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE_ZEROES, 0, base + 65536 - 512, 65536 + 1024,
			  LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_DISCARD, 0, base + MIB + 1536, 2048, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_DISCARD, 0, base + MIB + 65536 - 512, 65536 + 1024,
			  LAYOUT_PAGES, NULL, 0));
	ck_ok(c, verify_range(c, &T.m, base, 3 * MIB));
	ck_assert_ctx(c);

	/*
	 * Eight 512-byte writes into one 4 KiB block, all in flight at once
	 * (no plug: one request each), and the same with reads of the other
	 * sectors beside them: an engine that read-modify-writes whole blocks
	 * must not lose or tear its neighbours.
	 */
	for (j = 0; j < 3; j++) {
		uint64_t blk = base + 2 * MIB + j * 16 * KIB;

		n = 0;
		for (i = 0; i < 8; i++) {
			bool rd = j == 2 && (i % 2);

			ios[n++] = io_start(c, rd ? REQ_OP_READ : REQ_OP_WRITE, 0,
					    blk + (uint64_t)i * SECTOR_SIZE, SECTOR_SIZE,
					    j == 1 ? LAYOUT_PAGES : LAYOUT_BUF, NULL);
		}
		/* And odd sectors of the next block, one write straddling the next. */
		ios[n++] = io_start(c, REQ_OP_WRITE, 0, blk + 4096 + 1024, 1024, LAYOUT_BUF, NULL);
		ios[n++] = io_start(c, REQ_OP_WRITE, 0, blk + 8192 - 1024, 2048, LAYOUT_BUF, NULL);
		ck_ok(c, ctx_wait(c));
		for (i = 0; i < n; i++) {
			ck_ok(c, io_apply(ios[i], &T.m, 0));
			io_free(ios[i]);
		}
		ck_ok(c, verify_range(c, &T.m, blk - 4096, 16 * KIB));
		ck_assert_ctx(c);
	}
	ck_ok(c, verify_range(c, &T.m, 0, T.work));
	ck_assert_ctx(c);
}
END_TEST

/* Extents queries. */

struct ext_wait {
	struct backend_extents_req req;
	pthread_t self;
	atomic_int calls;
	atomic_bool wrong_thread;
};

static void ext_done(struct backend_extents_req *req)
{
	struct ext_wait *w = container_of(req, struct ext_wait, req);

	if (!pthread_equal(pthread_self(), w->self))
		atomic_store(&w->wrong_thread, true);
	atomic_fetch_add(&w->calls, 1);
}

/*
 * Query [off, off + len) in calls of at most @max extents until it is
 * covered; check that the answers tile it in order.  Returns the extents
 * (free them) and their number in *@nr.
 */
static struct backend_extent *query_extents(struct ctx *c, uint64_t off,
					    uint64_t len, unsigned int max,
					    unsigned int *nr)
{
	struct backend_extent *all = NULL, *ext = calloc(max, sizeof(*ext));
	uint64_t pos = off, end = off + len, deadline;
	unsigned int n = 0, cap = 0, calls = 0, i;
	struct ext_wait w;

	ck_assert_ptr_nonnull(ext);
	while (pos < end) {
		ck_assert_msg(++calls < 100000, "extents: no progress at %" PRIu64, pos);
		memset(&w, 0, sizeof(w));
		w.self = pthread_self();
		w.req = (struct backend_extents_req){
			.offset = pos, .length = end - pos, .ext = ext, .max = max,
			.done = ext_done, .private = &w,
		};
		backend_extents(c->be, &w.req);
		deadline = now_ms() + WAIT_MS;
		while (!atomic_load(&w.calls)) {
			ck_assert_int_ge(ioloop_run_once(c->loop, 100), 0);
			ck_assert_msg(now_ms() < deadline,
				      "extents query at %" PRIu64 " not answered after %d ms",
				      pos, WAIT_MS);
		}
		ck_assert_msg(!atomic_load(&w.wrong_thread),
			      "extents: done() ran on another thread than the submitter's");
		ck_assert_int_eq(atomic_load(&w.calls), 1);
		ck_assert_msg(w.req.status == 0, "extents [%" PRIu64 ", +%" PRIu64 "): status %d (%s)",
			      pos, end - pos, w.req.status, strerror(-w.req.status));
		ck_assert_msg(w.req.nr >= 1 && w.req.nr <= max,
			      "extents at %" PRIu64 ": %u extents, want 1..%u", pos, w.req.nr, max);
		for (i = 0; i < w.req.nr; i++) {
			const struct backend_extent *e = &ext[i];

			ck_assert_msg(e->offset == pos,
				      "extents: extent %u starts at %" PRIu64 ", want %" PRIu64 " (not tiling)",
				      n, e->offset, pos);
			ck_assert_msg(e->length > 0 && e->length <= end - pos,
				      "extents: extent at %" PRIu64 " has length %" PRIu64 ", want 1..%" PRIu64,
				      pos, e->length, end - pos);
			ck_assert_msg(!(e->flags & ~(uint32_t)(BACKEND_EXTENT_HOLE | BACKEND_EXTENT_ZERO)),
				      "extents: unknown flags 0x%x", e->flags);
			if (n == cap) {
				struct backend_extent *more;

				cap = cap ? 2 * cap : 64;
				more = realloc(all, cap * sizeof(*all));
				ck_assert_ptr_nonnull(more);
				all = more;
			}
			all[n++] = *e;
			pos += e->length;
		}
	}
	free(ext);
	*nr = n;
	return all;
}

/* Every ZERO extent reads as zeros (and as the model says). */
static void check_zero_extents(struct ctx *c, struct model *m,
			       const struct backend_extent *e, unsigned int n)
{
	uint8_t *buf = malloc(MAX_IO_BYTES);
	char why[256];

	ck_assert_ptr_nonnull(buf);
	for (unsigned int i = 0; i < n; i++) {
		if (!(e[i].flags & BACKEND_EXTENT_ZERO))
			continue;
		for (uint64_t p = e[i].offset; p < e[i].offset + e[i].length;) {
			uint32_t len = (uint32_t)min_t(uint64_t, e[i].offset + e[i].length - p,
						       MAX_IO_BYTES);
			int st = do_io(c, REQ_OP_READ, 0, p, len, LAYOUT_PAGES, buf);

			ck_assert_ctx(c);
			ck_assert_int_eq(st, 0);
			ck_assert_msg(is_zero(buf, len),
				      "extent [%" PRIu64 ", +%" PRIu64 ") flags 0x%x says zero, but [%" PRIu64 ", +%u) has data",
				      e[i].offset, e[i].length, e[i].flags, p, len);
			ck_assert_msg(model_check(m, p, buf, len, why, sizeof(why)), "%s", why);
			p += len;
		}
	}
	free(buf);
}

START_TEST(test_extents)
{
	struct ctx *c = &T.c;
	uint64_t u = (T.work / 32) & ~(uint64_t)(64 * KIB - 1);	/* 2 MiB on 64 MiB */
	struct backend_extent *e;
	unsigned int n, i;

	/* Data, data at odd places, data then a trim, a trim alone, zeroes. */
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, u, 300 * KIB, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, 2 * u + 512, 3 * 4096 + 512, LAYOUT_BUF, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, 4 * u, 256 * KIB, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_DISCARD, 0, 4 * u + 64 * KIB, 128 * KIB, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_DISCARD, 0, 6 * u, (uint32_t)MIB, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, 8 * u, 128 * KIB, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE_ZEROES, REQ_NOUNMAP, 8 * u, 64 * KIB,
			  LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE_ZEROES, 0, 8 * u + 64 * KIB, 64 * KIB,
			  LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, T.work - 64 * KIB, 64 * KIB, LAYOUT_PAGES, NULL, 0));
	ck_assert_ctx(c);

	/* The whole work region, in big answers and in one-extent answers. */
	e = query_extents(c, 0, T.work, 64, &n);
	check_zero_extents(c, &T.m, e, n);
	printf("backend-conformance: %u extent(s) over %" PRIu64 " bytes\n", n, T.work);
	free(e);
	e = query_extents(c, 0, T.work, 1, &n);
	check_zero_extents(c, &T.m, e, n);
	free(e);
	/* Odd ranges: inside one extent, across several. */
	e = query_extents(c, u + 512, 100000 * 5 + 512, 8, &n);
	free(e);
	e = query_extents(c, 4 * u + 4096 + 1024, 200 * KIB, 3, &n);
	check_zero_extents(c, &T.m, e, n);
	free(e);
	e = query_extents(c, T.work - 4096, 4096, 4, &n);
	free(e);

	if (!(T.be->caps & BACKEND_CAP_EXTENTS))
		return;
	/* A freshly trimmed, 64 KiB aligned range of data is a hole. */
	e = query_extents(c, 4 * u + 64 * KIB, 128 * KIB, 16, &n);
	for (i = 0; i < n; i++)
		ck_assert_msg(e[i].flags & BACKEND_EXTENT_HOLE,
			      "[%" PRIu64 ", +%" PRIu64 ") was written, then trimmed (64 KiB aligned), but is reported with flags 0x%x, not a hole",
			      e[i].offset, e[i].length, e[i].flags);
	free(e);
}
END_TEST

/* Concurrent submitters. */

struct worker {
	struct ctx *c;
	struct model m;
	uint64_t base, size;
	unsigned int index;		/* concurrent-rmw: owns sectors index mod NR_THREADS */
	bool interleave;
	pthread_barrier_t *start;
	struct pgalloc *pa;
	struct backend *be;
	uint64_t seed;
	bool ok;
};

/*
 * Single-sector I/O on the sectors of [m->base, m->base + m->size) that
 * thread @t of NR_THREADS owns (sector mod NR_THREADS == t): every 4 KiB
 * block is shared with the other threads, so an O_DIRECT engine
 * read-modify-writes blocks that other loops are writing at the same time.
 */
static bool interleaved_ops(struct ctx *c, struct model *m, unsigned int t,
			    unsigned int nops)
{
	uint64_t owned = (m->size >> SECTOR_SHIFT) / NR_THREADS;
	unsigned int done = 0, i, j, k;
	struct io *ios[8];
	char why[256];

	while (done < nops) {
		unsigned int n = (unsigned int)rng_range(&c->rng, 1, 8);

		for (k = 0; k < n && done < nops; k++, done++) {
			uint64_t off;
			unsigned int pick = (unsigned int)(rng_next(&c->rng) % 100);
			enum req_op op = pick < 55 ? REQ_OP_WRITE : pick < 85 ? REQ_OP_READ :
					 pick < 95 ? REQ_OP_WRITE_ZEROES : REQ_OP_DISCARD;
			blk_opf_t flags = op == REQ_OP_WRITE_ZEROES && (pick & 1) ? REQ_NOUNMAP : 0;

			do {
				off = m->base + ((rng_range(&c->rng, 0, owned - 1) * NR_THREADS + t)
						 << SECTOR_SHIFT);
				for (j = 0; j < k && ios[j]->off != off; j++)
					;
			} while (j < k);
			ios[k] = io_start(c, op, flags, off, SECTOR_SIZE, LAYOUT_RANDOM, NULL);
		}
		if (!ctx_wait(c))
			return false;
		for (i = 0; i < k; i++) {
			struct io *io = ios[i];
			int st = io_collect(io);
			bool ok = st != INT_MIN;

			if (ok && st) {
				char d[256];

				io_describe(io, d, sizeof(d));
				ok = ctx_fail(c, "%s ended with %d (%s)", d, st, strerror(-st));
			} else if (ok && io->op == REQ_OP_READ &&
				   !model_check(m, io->off, io->data, SECTOR_SIZE, why, sizeof(why))) {
				char d[256];

				io_describe(io, d, sizeof(d));
				ok = ctx_fail(c, "thread %u, %s: %s", t, d, why);
			} else if (ok && io->op == REQ_OP_WRITE) {
				model_write(m, io->off, io->data, SECTOR_SIZE);
			} else if (ok && io->op == REQ_OP_WRITE_ZEROES) {
				model_zero(m, io->off, SECTOR_SIZE);
			} else if (ok && io->op == REQ_OP_DISCARD) {
				model_discard(m, io->off, SECTOR_SIZE);
			}
			io_free(io);
			if (!ok) {
				while (++i < k)
					io_free(ios[i]);
				return false;
			}
		}
	}
	return true;
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	struct ctx *c = w->c;

	ctx_init(c, w->pa, w->be, w->seed);
	pthread_barrier_wait(w->start);
	if (c->err[0])
		return NULL;
	if (w->interleave)
		w->ok = interleaved_ops(c, &w->m, w->index, 400);
	else
		w->ok = random_ops(c, &w->m, 200, 4, 256 * KIB) &&
			verify_range(c, &w->m, w->base, w->size);
	/* The loop stays for teardown, after the backend is closed. */
	ioloop_set_current(NULL);
	return NULL;
}

static void run_workers(struct worker *w, bool interleave)
{
	pthread_t th[NR_THREADS];
	pthread_barrier_t start;
	uint64_t region = (T.work / NR_THREADS) & ~(uint64_t)(MIB - 1);
	unsigned int i;

	pthread_barrier_init(&start, NULL, NR_THREADS);
	for (i = 0; i < NR_THREADS; i++) {
		w[i] = (struct worker){
			.c = &T.threads[i], .index = i, .interleave = interleave,
			.base = interleave ? 4 * MIB : i * region,
			.size = interleave ? MIB : region,
			.start = &start, .pa = T.pa, .be = T.be,
			.seed = g_seed ^ (0x1000193ull * (i + 1)),
		};
		model_init(&w[i].m, w[i].base, w[i].size);
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_fn, &w[i]), 0);
	}
	for (i = 0; i < NR_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < NR_THREADS; i++) {
		ck_assert_msg(w[i].ok && !w[i].c->err[0], "thread %u: %s", i,
			      w[i].c->err[0] ? w[i].c->err : "failed");
	}
}

/* Threads with loops of their own, on disjoint regions at once. */
START_TEST(test_concurrent)
{
	struct worker w[NR_THREADS];
	unsigned int i;

	run_workers(w, false);
	/* Everything each thread wrote, as seen from here. */
	for (i = 0; i < NR_THREADS; i++) {
		ck_assert_msg(verify_range(&T.c, &w[i].m, w[i].base, w[i].size),
			      "thread %u's region, read from the main thread: %s", i, T.c.err);
		model_free(&w[i].m);
	}
}
END_TEST

/* Threads writing interleaved sectors of the same blocks at once. */
START_TEST(test_concurrent_rmw)
{
	struct worker w[NR_THREADS];
	struct model all;
	uint64_t s, nsect;
	unsigned int i;

	run_workers(w, true);
	/* Put the sectors together and read them all from here. */
	model_init(&all, w[0].base, w[0].size);
	nsect = all.size >> SECTOR_SHIFT;
	for (s = 0; s < nsect; s++) {
		const struct model *m = &w[s % NR_THREADS].m;

		memcpy(all.data + (s << SECTOR_SHIFT), m->data + (s << SECTOR_SHIFT), SECTOR_SIZE);
		all.maybe[s] = m->maybe[s];
	}
	for (i = 0; i < NR_THREADS; i++)
		model_free(&w[i].m);
	ck_assert_msg(verify_range(&T.c, &all, all.base, all.size),
		      "interleaved sectors, read from the main thread: %s", T.c.err);
	model_free(&all);
}
END_TEST

/* Out of range, and read-only. */
START_TEST(test_bounds)
{
	struct ctx *c = &T.c;
	uint64_t size = T.be->size;
	uint8_t last[4096], again[4096];
	struct backend *ro;
	struct model pat;

	ck_assert_int_eq(do_io(c, REQ_OP_READ, 0, size - 4096, 4096, LAYOUT_BUF, last), 0);
	ck_assert_int_eq(do_io(c, REQ_OP_READ, 0, size, 512, LAYOUT_PAGES, NULL), -EINVAL);
	ck_assert_int_eq(do_io(c, REQ_OP_READ, 0, size - 512, 1024, LAYOUT_BUF, NULL), -EINVAL);
	ck_assert_int_eq(do_io(c, REQ_OP_READ, 0, size + 1024 * MIB, 4096, LAYOUT_PAGES, NULL), -EINVAL);
	ck_assert_int_eq(do_io(c, REQ_OP_WRITE, 0, size, 512, LAYOUT_PAGES, NULL), -ENOSPC);
	ck_assert_int_eq(do_io(c, REQ_OP_WRITE, 0, size - 512, 4096, LAYOUT_BUF, NULL), -ENOSPC);
	ck_assert_int_eq(do_io(c, REQ_OP_WRITE, REQ_FUA, size + 1024 * MIB, 4096,
			       LAYOUT_PAGES, NULL), -ENOSPC);
	ck_assert_int_eq(do_io(c, REQ_OP_DISCARD, 0, size - 4096, 8192, LAYOUT_PAGES, NULL), -ENOSPC);
	ck_assert_int_eq(do_io(c, REQ_OP_WRITE_ZEROES, 0, size - 4096, 8192, LAYOUT_PAGES, NULL), -ENOSPC);
	ck_assert_int_eq(do_io(c, REQ_OP_WRITE_ZEROES, REQ_NOUNMAP, size, 512,
			       LAYOUT_PAGES, NULL), -ENOSPC);
	ck_assert_int_eq(do_io(c, REQ_OP_FLUSH, 0, 0, 0, LAYOUT_PAGES, NULL), 0);
	ck_assert_ctx(c);
	/* The rejected writes did not touch the last sectors. */
	ck_assert_int_eq(do_io(c, REQ_OP_READ, 0, size - 4096, 4096, LAYOUT_PAGES, again), 0);
	ck_assert_msg(!memcmp(last, again, sizeof(last)),
		      "a rejected write changed the device's last 4 KiB");
	/* Still usable. */
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, 4096, 64 * KIB, LAYOUT_BUF, NULL, 0));
	ck_ok(c, verify_range(c, &T.m, 0, 128 * KIB));
	ck_assert_ctx(c);

	/* Read-only: the data is there, nothing writes. */
	ro = open_spec(",readonly");
	ck_assert(ro->readonly);
	model_for_reopen(&pat);
	c->be = ro;
	ck_ok(c, do_check(c, &pat, REQ_OP_WRITE, 0, 0, 4096, LAYOUT_PAGES, NULL, -EROFS));
	ck_ok(c, do_check(c, &pat, REQ_OP_WRITE, REQ_FUA, 8192, 512, LAYOUT_BUF, NULL, -EROFS));
	ck_ok(c, do_check(c, &pat, REQ_OP_DISCARD, 0, 0, 64 * KIB, LAYOUT_PAGES, NULL, -EROFS));
	ck_ok(c, do_check(c, &pat, REQ_OP_WRITE_ZEROES, 0, 0, 64 * KIB, LAYOUT_PAGES, NULL, -EROFS));
	ck_ok(c, do_check(c, &pat, REQ_OP_WRITE_ZEROES, REQ_NOUNMAP, 4096, 4096,
			  LAYOUT_PAGES, NULL, -EROFS));
	ck_ok(c, do_check(c, &pat, REQ_OP_WRITE, 0, ro->size, 512, LAYOUT_PAGES, NULL, -EROFS));
	ck_ok(c, do_check(c, NULL, REQ_OP_FLUSH, 0, 0, 0, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, verify_range(c, &pat, 0, 128 * KIB));
	ck_assert_ctx(c);
	c->be = T.be;
	backend_close(ro);
	model_free(&pat);
	/* And nothing changed underneath. */
	ck_ok(c, verify_range(c, &T.m, 0, 128 * KIB));
	ck_assert_ctx(c);
}
END_TEST

/* fail-writes=1: every write fails; reads see the data as it was. */
static void check_fail_writes(struct ctx *c)
{
	struct backend *be = open_spec(",fail-writes=1");
	struct model m2;

	model_for_reopen(&m2);
	c->be = be;
	for (unsigned int i = 0; i < 24; i++) {
		static const enum req_op ops[] = { REQ_OP_WRITE, REQ_OP_DISCARD, REQ_OP_WRITE_ZEROES };
		enum req_op op = ops[i % 3];
		blk_opf_t fl = i % 4 == 1 ? (op == REQ_OP_WRITE ? REQ_FUA : REQ_NOUNMAP) : 0;

		ck_ok(c, do_check(c, &m2, op, fl, (uint64_t)i * 32 * KIB + (i % 2) * 512,
				  4096 * (i % 5 + 1), LAYOUT_RANDOM, NULL, -EIO));
	}
	ck_ok(c, do_check(c, NULL, REQ_OP_FLUSH, 0, 0, 0, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, verify_range(c, &m2, 0, 2 * MIB));
	ck_assert_ctx(c);
	c->be = T.be;
	backend_close(be);
	model_free(&m2);
	/* The failed writes never reached the storage. */
	ck_ok(c, verify_range(c, &T.m, 0, 2 * MIB));
	ck_assert_ctx(c);
}

/*
 * Up to 8 random reads in flight together, on disjoint ranges, under
 * fail-reads: each ends 0 (and reads right, by @m) or -EIO.  Returns how
 * many were started (at least 1 counted, so the caller moves on).
 */
static unsigned int fail_reads_batch(struct ctx *c, struct model *m,
				     unsigned int max, unsigned int *ok,
				     unsigned int *eio)
{
	struct io *ios[8];
	unsigned int j, k;

	for (k = 0; k < 8 && k < max; k++) {
		uint64_t off = rng_range(&c->rng, 0, 2 * MIB / 512 - 129) * 512;
		uint32_t len = (uint32_t)rng_range(&c->rng, 1, 128) * 512;
		bool overlap = false;

		for (j = 0; j < k; j++)
			overlap |= off < ios[j]->off + ios[j]->len && ios[j]->off < off + len;
		if (overlap)
			break;
		ios[k] = io_start(c, REQ_OP_READ, 0, off, len, LAYOUT_RANDOM, NULL);
	}
	ck_ok(c, ctx_wait(c));
	for (j = 0; j < k; j++) {
		int st = io_collect(ios[j]);

		ck_assert_ctx(c);
		ck_assert_msg(st == 0 || st == -EIO, "a read under fail-reads ended with %d", st);
		if (st) {
			(*eio)++;
		} else {
			(*ok)++;
			ck_ok(c, io_apply(ios[j], m, 0));
		}
		io_free(ios[j]);
	}
	return k ? k : 1;
}

/* fail-reads=0.5: half the reads fail, the others read right; writes work. */
static void check_fail_reads(struct ctx *c)
{
	struct backend *be = open_spec(",fail-reads=0.5");
	unsigned int i, ok = 0, eio = 0;
	struct model m2;

	model_for_reopen(&m2);
	c->be = be;
	ck_ok(c, do_check(c, &m2, REQ_OP_WRITE, 0, MIB, (uint32_t)MIB, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &m2, REQ_OP_WRITE, REQ_FUA, 3 * MIB, 64 * KIB, LAYOUT_BUF, NULL, 0));
	for (i = 0; i < 200;)
		i += fail_reads_batch(c, &m2, 200 - i, &ok, &eio);
	ck_assert_msg(ok >= 30 && eio >= 30, "fail-reads=0.5: %u reads ok, %u failed", ok, eio);
	ck_ok(c, do_check(c, &m2, REQ_OP_WRITE, 0, 4 * MIB, 128 * KIB, LAYOUT_RANDOM, NULL, 0));
	ck_ok(c, do_check(c, &m2, REQ_OP_WRITE_ZEROES, 0, 4 * MIB, 4096, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, NULL, REQ_OP_FLUSH, 0, 0, 0, LAYOUT_PAGES, NULL, 0));
	ck_assert_ctx(c);
	c->be = T.be;
	backend_close(be);
	model_free(&m2);
}

/* fail-writes=1 and fail-reads=0.5. */
START_TEST(test_error_injection)
{
	struct ctx *c = &T.c;

	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, 0, (uint32_t)MIB, LAYOUT_PAGES, NULL, 0));
	ck_assert_ctx(c);
	check_fail_writes(c);
	check_fail_reads(c);
}
END_TEST

/*
 * Out of space (--enospc): the device is a sparse file larger than its
 * filesystem.  Writes end with -ENOSPC once it is full, and afterwards
 * the backend still works: what was written reads back, a trim frees
 * space, and a write then succeeds.
 */
START_TEST(test_enospc)
{
	struct ctx *c = &T.c;
	const uint32_t chunk = 256 * KIB;
	unsigned int i, nchunks = (unsigned int)(T.work / chunk), written = 0;
	int st = 0;

	for (i = 0; i < nchunks; i++) {
		struct io *io = io_start(c, REQ_OP_WRITE, 0, (uint64_t)i * chunk, chunk,
					 i % 2 ? LAYOUT_BUF : LAYOUT_PAGES, NULL);

		ck_ok(c, ctx_wait(c));
		st = io_collect(io);
		ck_assert_ctx(c);
		if (!st)
			model_write(&T.m, io->off, io->data, io->len);
		io_free(io);
		if (st)
			break;
		written++;
	}
	ck_assert_msg(st == -ENOSPC,
		      "writing %u chunks of %u bytes: the write of chunk %u ended with %d (%s), want -ENOSPC",
		      nchunks, chunk, i, st, st ? strerror(-st) : "success: is the filesystem small enough?");
	ck_assert_msg(written >= 2, "only %u chunk(s) written before ENOSPC", written);
	printf("backend-conformance: ENOSPC after %u KiB written\n", written * (chunk / 1024));
	/* Full stays full. */
	ck_assert_int_eq(do_io(c, REQ_OP_WRITE, 0, (uint64_t)(written + 1) * chunk, chunk,
			       LAYOUT_PAGES, NULL), -ENOSPC);
	ck_assert_ctx(c);
	/* What was written is there. */
	ck_ok(c, verify_range(c, &T.m, 0, (uint64_t)written * chunk));
	ck_ok(c, do_check(c, NULL, REQ_OP_FLUSH, 0, 0, 0, LAYOUT_PAGES, NULL, 0));
	ck_assert_ctx(c);
	/* Trim 1 MiB of it, then the failed chunk fits. */
	ck_ok(c, do_check(c, &T.m, REQ_OP_DISCARD, 0, 0,
			  (uint32_t)min_t(uint64_t, MIB, (uint64_t)written * chunk),
			  LAYOUT_PAGES, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, 0, (uint64_t)written * chunk, chunk / 2,
			  LAYOUT_BUF, NULL, 0));
	ck_ok(c, do_check(c, &T.m, REQ_OP_WRITE, REQ_FUA, (uint64_t)written * chunk + chunk / 2,
			  4096, LAYOUT_PAGES, NULL, 0));
	ck_ok(c, verify_range(c, &T.m, 0, (uint64_t)written * chunk + chunk / 2 + 4096));
	ck_assert_ctx(c);
}
END_TEST

static void add_case(Suite *s, const char *name, const TTest *test, int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

static Suite *conformance_suite(void)
{
	Suite *s = suite_create("backend-conformance");

	add_case(s, "describe", test_describe, TCASE_TIMEOUT);
	add_case(s, "random", test_random, TCASE_TIMEOUT);
	add_case(s, "plug-merge", test_plug_merge, 15);
	add_case(s, "flush-fua", test_flush_fua, TCASE_TIMEOUT);
	add_case(s, "unaligned", test_unaligned, TCASE_TIMEOUT);
	add_case(s, "extents", test_extents, TCASE_TIMEOUT);
	add_case(s, "concurrent", test_concurrent, TCASE_TIMEOUT);
	add_case(s, "concurrent-rmw", test_concurrent_rmw, TCASE_TIMEOUT);
	add_case(s, "bounds", test_bounds, TCASE_TIMEOUT);
	add_case(s, "error-injection", test_error_injection, TCASE_TIMEOUT);
	return s;
}

static Suite *enospc_suite(void)
{
	Suite *s = suite_create("backend-enospc");

	add_case(s, "enospc", test_enospc, TCASE_TIMEOUT);
	return s;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: backend-conformance [--enospc] SPEC\n"
		"  e.g. memory:,size=64M  file:/tmp/x/disk.img,size=64M,cache=none\n"
		"  BLOCKD_CONFORMANCE_SEED=N, BLOCKD_CONFORMANCE_OPS=N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct backend_params p;
	bool enospc = false;
	char err[512];
	const char *e;
	SRunner *sr;
	int i, failed;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--enospc"))
			enospc = true;
		else if (argv[i][0] == '-')
			usage();
		else if (!g_spec)
			g_spec = argv[i];
		else
			usage();
	}
	if (!g_spec)
		usage();
	/* Forked cases must not inherit unflushed output. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (backend_parse(g_spec, &p, err, sizeof(err))) {
		fprintf(stderr, "backend-conformance: %s\n", err);
		return 2;
	}
	g_persistent = strcmp(p.kind, "memory") != 0;
	backend_params_free(&p);
	e = getenv("BLOCKD_CONFORMANCE_SEED");
	if (e && *e)
		g_seed = strtoull(e, NULL, 0);
	e = getenv("BLOCKD_CONFORMANCE_OPS");
	if (e && *e)
		g_ops = (unsigned int)strtoul(e, NULL, 0);

	sr = srunner_create(enospc ? enospc_suite() : conformance_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (failed)
		printf("backend-conformance: %s: %d case(s) failed (seed 0x%" PRIx64 ")\n",
		       g_spec, failed, g_seed);
	return failed ? 1 : 0;
}
