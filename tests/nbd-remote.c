/* SPDX-License-Identifier: MIT */
/*
 * The nbd backend against a real server (nbdkit, started by
 * tests/nbd-backend.sh), driven through bios as a front end would:
 *
 *   nbd-remote roundtrip URI          random I/O against a model, extents
 *   nbd-remote threads URI            two loops and a loop-less submitter
 *   nbd-remote order URI              prints the command order (FUA/PREFLUSH)
 *   nbd-remote caps URI KEY=VAL...    checks what open() reports
 *   nbd-remote readonly SPEC          writes end with -EROFS
 *   nbd-remote servererr URI          server errors reach the bios
 *   nbd-remote kill URI PID           SIGKILL the server with I/O in flight
 *   nbd-remote killidle URI PID       SIGKILL the idle server, then I/O
 *   nbd-remote stopped URI PID        close against a SIGSTOPped server
 *   nbd-remote badopen SPEC TEXT      open fails, saying TEXT
 *   nbd-remote hang SOCKET            a server that never answers
 *
 * Exit 0 on success, 1 on failure; every case runs under alarm().
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/bio.h"
#include "core/ioloop.h"
#include "core/page.h"
#include "core/request.h"
#include "tests/rand.h"

#define MiB		(1024u * 1024u)
#define REGION		(16 * MiB)	/* where roundtrip does random I/O */
#define MAX_SCATTER	8

static struct backend *be;
static struct ioloop *loop;		/* the main thread's */
static struct pgalloc *pages;		/* the bios' and the backend's */
static struct bio_set bs;		/* page-backed bios */
static int failures;

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			failures++;					\
		}							\
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct rng rng = { 0x9e3779b97f4a7c15ull };	/* roundtrip's */

/* One bio in flight, and what became of it. */
struct io {
	struct bio *bio;
	pthread_t submitter;
	atomic_bool done;
	atomic_bool other_thread;	/* ended on a thread that did not submit it */
	int status;
	void *bufs[MAX_SCATTER];	/* caller buffers of a scattered bio */
};

static void io_end(struct bio *bio)
{
	struct io *io = bio->bi_private;

	io->status = bio->bi_status;
	if (!pthread_equal(pthread_self(), io->submitter))
		atomic_store(&io->other_thread, true);
	atomic_store(&io->done, true);
}

/*
 * A bio for @opf at byte @off, @len bytes.  Data ops get pages, or with
 * @scatter that many separate heap buffers, which core cannot merge into
 * one iovec, so the request becomes several NBD commands.  Writes carry
 * @data.
 */
static struct io *io_new(blk_opf_t opf, uint64_t off, uint32_t len,
			 unsigned int scatter, const void *data)
{
	struct io *io = calloc(1, sizeof(*io));
	enum req_op op = (enum req_op)(opf & REQ_OP_MASK);
	struct bio *bio;

	if (!io)
		abort();
	if (!op_has_data(op)) {
		bio = bio_kmalloc(BLK_GFP_WAIT, 0);
		if (!bio)
			abort();
		bio->bi_iter.bi_size = op == REQ_OP_FLUSH ? 0 : len;
	} else if (scatter) {
		uint32_t seg = len / scatter;

		bio = bio_kmalloc(BLK_GFP_WAIT, scatter);
		if (!bio || len % scatter || seg % SECTOR_SIZE)
			abort();
		for (unsigned int i = 0; i < scatter; i++) {
			io->bufs[i] = malloc(seg);
			if (!io->bufs[i] || bio_add_page(bio, io->bufs[i], seg, 0) != seg)
				abort();
		}
	} else {
		bio = bio_alloc_bioset(BLK_GFP_WAIT, DIV_ROUND_UP(len, PAGE_SIZE), &bs);
		if (!bio || bio_prep_pages(bio, len) || bio_alloc_pages(bio, BLK_GFP_WAIT))
			abort();
	}
	bio->bi_opf = opf;
	bio->bi_queue = &be->queue;
	bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
	bio->bi_end_io = io_end;
	bio->bi_private = io;
	if (op == REQ_OP_WRITE)
		bio_copy_from_buf(bio, data, len);
	io->bio = bio;
	io->submitter = pthread_self();
	return io;
}

static void io_free(struct io *io)
{
	bio_put(io->bio);
	for (unsigned int i = 0; i < MAX_SCATTER; i++)
		free(io->bufs[i]);
	free(io);
}

/* Run @lp until @n ios are done; false after @timeout_ms. */
static bool wait_ios(struct ioloop *lp, struct io **ios, unsigned int n,
		     unsigned int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		unsigned int done = 0;

		for (unsigned int i = 0; i < n; i++)
			done += atomic_load(&ios[i]->done);
		if (done == n)
			return true;
		if (now_ms() >= deadline)
			return false;
		if (lp)
			ioloop_run_once(lp, 50);
		else
			usleep(1000);
	}
}

/* Submit one bio and wait for it; returns its status. */
static int io_sync(blk_opf_t opf, uint64_t off, uint32_t len, void *buf)
{
	struct io *io = io_new(opf, off, len, 0, buf);
	int status;

	submit_bio(io->bio);
	if (!wait_ios(loop, &io, 1, 10000)) {
		fprintf(stderr, "FAIL: op %u at %llu did not complete in 10 s\n",
			opf, (unsigned long long)off);
		exit(1);
	}
	CHECK(!atomic_load(&io->other_thread), "completion on another thread");
	status = io->status;
	if (!status && (opf & REQ_OP_MASK) == REQ_OP_READ)
		bio_copy_to_buf(io->bio, buf, len);
	io_free(io);
	return status;
}

/* An extents query run to completion on the main loop. */
struct ext_wait {
	struct backend_extents_req req;
	struct backend_extent ext[64];
	pthread_t submitter;
	atomic_bool done;
	atomic_bool other_thread;
};

static void ext_done(struct backend_extents_req *req)
{
	struct ext_wait *w = req->private;

	if (!pthread_equal(pthread_self(), w->submitter))
		atomic_store(&w->other_thread, true);
	atomic_store(&w->done, true);
}

static void ext_start(struct ext_wait *w, uint64_t off, uint64_t len,
		      unsigned int max)
{
	memset(w, 0, sizeof(*w));
	w->req.offset = off;
	w->req.length = len;
	w->req.ext = w->ext;
	w->req.max = max < 64 ? max : 64;
	w->req.done = ext_done;
	w->req.private = w;
	w->submitter = pthread_self();
	backend_extents(be, &w->req);
}

static bool ext_wait(struct ext_wait *w, unsigned int timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	while (!atomic_load(&w->done)) {
		if (now_ms() >= deadline)
			return false;
		ioloop_run_once(loop, 50);
	}
	CHECK(!atomic_load(&w->other_thread), "extents done() on another thread");
	return true;
}

static int extents_sync(struct ext_wait *w, uint64_t off, uint64_t len,
			unsigned int max)
{
	ext_start(w, off, len, max);
	if (!ext_wait(w, 10000)) {
		fprintf(stderr, "FAIL: extents query did not complete in 10 s\n");
		exit(1);
	}
	return w->req.status;
}

/*
 * Every byte of [off, off + len) is covered by extents with all of
 * @flags, starting at @off, contiguous.
 */
static void check_extents(uint64_t off, uint64_t len, uint32_t flags)
{
	struct ext_wait w;
	uint64_t pos = off;

	while (pos < off + len) {
		int ret = extents_sync(&w, pos, off + len - pos, 64);

		CHECK(!ret, "extents at %llu: %d", (unsigned long long)pos, ret);
		CHECK(w.req.nr > 0, "extents at %llu: none", (unsigned long long)pos);
		if (ret || !w.req.nr)
			return;
		for (unsigned int i = 0; i < w.req.nr && pos < off + len; i++) {
			struct backend_extent *e = &w.ext[i];

			CHECK(e->offset == pos, "extent %u at %llu, expected %llu", i,
			      (unsigned long long)e->offset, (unsigned long long)pos);
			CHECK(e->length > 0, "empty extent");
			CHECK((e->flags & flags) == flags,
			      "extent [%llu,+%llu) flags %#x, expected %#x",
			      (unsigned long long)e->offset,
			      (unsigned long long)e->length, e->flags, flags);
			if (!flags)
				CHECK(!(e->flags & BACKEND_EXTENT_HOLE),
				      "extent at %llu is a hole, expected data",
				      (unsigned long long)e->offset);
			pos = e->offset + e->length;
		}
	}
}

static void setup(void)
{
	pages = pgalloc_create(128 * MiB, 0, 0);
	if (!pages) {
		perror("pgalloc_create");
		exit(1);
	}
	if (bioset_init(&bs, 16, 0, BIOSET_NEED_BVECS, pages)) {
		perror("bioset_init");
		exit(1);
	}
	loop = ioloop_create(128, 0, pages);
	if (!loop) {
		perror("ioloop_create");
		exit(1);
	}
	ioloop_set_current(loop);
}

static void teardown(void)
{
	ioloop_destroy(loop);
	bioset_exit(&bs);
	pgalloc_destroy(pages);
}

static void open_or_die(const char *spec)
{
	char err[512];
	int ret = backend_open_spec(spec, pages, &be, err, sizeof(err));

	if (ret) {
		fprintf(stderr, "FAIL: open %s: %s (%d)\n", spec, err, ret);
		exit(1);
	}
}

/* Close, within @limit_ms. */
static void close_bounded(unsigned int limit_ms)
{
	uint64_t t = now_ms();

	backend_close(be);
	be = NULL;
	t = now_ms() - t;
	CHECK(t <= limit_ms, "backend_close took %llu ms", (unsigned long long)t);
}

static char *spec_of(const char *uri)
{
	static char spec[4096];

	snprintf(spec, sizeof(spec), "nbd:%s", uri);
	return spec;
}

/* roundtrip: random batches against a model, then extents. */

struct range {
	uint64_t off;
	uint32_t len;
};

static bool overlaps(const struct range *r, unsigned int n, uint64_t off,
		     uint32_t len)
{
	for (unsigned int i = 0; i < n; i++)
		if (off < r[i].off + r[i].len && r[i].off < off + len)
			return true;
	return false;
}

static void verify_region(const uint8_t *model, uint64_t off, uint64_t len)
{
	uint8_t *buf = malloc(MiB);

	if (!buf)
		abort();
	for (uint64_t pos = off; pos < off + len; pos += MiB) {
		uint32_t n = (uint32_t)min_t(uint64_t, MiB, off + len - pos);
		int ret = io_sync(REQ_OP_READ, pos, n, buf);

		CHECK(!ret, "read at %llu: %d", (unsigned long long)pos, ret);
		if (!ret && memcmp(buf, model + pos, n)) {
			uint32_t i = 0;

			while (buf[i] == model[pos + i])
				i++;
			CHECK(0, "data differs at byte %llu",
			      (unsigned long long)(pos + i));
			break;
		}
	}
	free(buf);
}

#define RT_BATCH	24

/* What roundtrip keeps: the model of the region, a buffer, counts. */
struct roundtrip {
	uint8_t *model;			/* REGION bytes, as the export must read */
	uint8_t *data;			/* 4 MiB */
	unsigned int nr_rq, nr_scatter, nr_fua, nr_merged;
};

/* One round's I/Os, on disjoint ranges. */
struct round {
	unsigned int nr;
	struct io *ios[RT_BATCH];
	struct range r[RT_BATCH];
	blk_opf_t ops[RT_BATCH];
};

static void rt_check_open(void)
{
	const unsigned int want = BACKEND_CAP_FLUSH | BACKEND_CAP_FUA | BACKEND_CAP_TRIM |
				  BACKEND_CAP_WRITE_ZEROES | BACKEND_CAP_EXTENTS;

	CHECK(be->size == 64 * MiB, "size %llu", (unsigned long long)be->size);
	CHECK(!be->readonly, "readonly");
	CHECK((be->caps & want) == want, "caps %#x", be->caps);
	CHECK(!strcmp(be->engine, "nbd"), "engine %s", be->engine);
}

/* A write-type or read op for a random @kind 1..15, with its flags. */
static blk_opf_t rt_pick_op(struct roundtrip *rt, unsigned int kind)
{
	blk_opf_t opf;

	if (kind < 9)
		opf = REQ_OP_WRITE;
	else if (kind < 12)
		opf = REQ_OP_DISCARD;
	else if (kind < 14)
		opf = REQ_OP_WRITE_ZEROES | (rng_chance(&rng, 50) ? REQ_NOUNMAP : 0);
	else
		opf = REQ_OP_READ;
	if (op_is_write(opf & REQ_OP_MASK) && rng_chance(&rng, 20)) {
		opf |= REQ_FUA;
		rt->nr_fua++;
	}
	if (opf == REQ_OP_WRITE && !rng_range(&rng, 0, 6))
		opf |= REQ_PREFLUSH;
	return opf;
}

static void rt_plan(struct roundtrip *rt, struct round *rd)
{
	unsigned int want = (unsigned int)rng_range(&rng, 1, 20);

	rd->nr = 0;
	while (rd->nr < want) {
		uint32_t len = (uint32_t)rng_range(&rng, 1, 512) * SECTOR_SIZE;
		uint64_t off = rng_range(&rng, 0, (REGION - len) / SECTOR_SIZE - 1) *
			       SECTOR_SIZE;
		unsigned int kind = (unsigned int)rng_range(&rng, 0, 15);

		if (kind == 0) {
			rd->r[rd->nr] = (struct range){ 0, 0 };
			rd->ops[rd->nr++] = REQ_OP_FLUSH;
			continue;
		}
		if (overlaps(rd->r, rd->nr, off, len))
			continue;
		rd->r[rd->nr] = (struct range){ off, len };
		rd->ops[rd->nr++] = rt_pick_op(rt, kind);
	}
}

/* Submit @rd's I/Os (random data, sometimes scattered), and update the model. */
static void rt_submit(struct roundtrip *rt, struct round *rd)
{
	for (unsigned int i = 0; i < rd->nr; i++) {
		enum req_op op = (enum req_op)(rd->ops[i] & REQ_OP_MASK);
		uint32_t len = rd->r[i].len;
		unsigned int scatter = 0;

		if (op == REQ_OP_WRITE) {
			rng_fill(&rng, rt->data, len);
			if (!(len % (4 * SECTOR_SIZE)) && !rng_range(&rng, 0, 2))
				scatter = 4;
		}
		if (op == REQ_OP_READ && !(len % (8 * SECTOR_SIZE)) && rng_chance(&rng, 50))
			scatter = 8;
		rt->nr_scatter += scatter > 0;
		rd->ios[i] = io_new(rd->ops[i], rd->r[i].off, len, scatter, rt->data);
		submit_bio(rd->ios[i]->bio);
		if (op == REQ_OP_WRITE)
			memcpy(rt->model + rd->r[i].off, rt->data, len);
		else if (op == REQ_OP_DISCARD || op == REQ_OP_WRITE_ZEROES)
			memset(rt->model + rd->r[i].off, 0, len);
	}
	rt->nr_rq += rd->nr;
}

/* Each I/O of @rd succeeded on our thread; reads match the model. */
static void rt_check(struct roundtrip *rt, struct round *rd, unsigned int round)
{
	for (unsigned int i = 0; i < rd->nr; i++) {
		enum req_op op = (enum req_op)(rd->ops[i] & REQ_OP_MASK);
		struct io *io = rd->ios[i];

		CHECK(!io->status, "round %u op %#x at %llu+%u: %d", round,
		      rd->ops[i], (unsigned long long)rd->r[i].off, rd->r[i].len,
		      io->status);
		CHECK(!atomic_load(&io->other_thread), "completion on another thread");
		if (op == REQ_OP_READ && !io->status) {
			bio_copy_to_buf(io->bio, rt->data, rd->r[i].len);
			CHECK(!memcmp(rt->data, rt->model + rd->r[i].off, rd->r[i].len),
			      "round %u: read at %llu+%u differs from the model",
			      round, (unsigned long long)rd->r[i].off, rd->r[i].len);
		}
		io_free(io);
	}
}

static void rt_rounds(struct roundtrip *rt, unsigned int rounds)
{
	for (unsigned int round = 0; round < rounds; round++) {
		struct blk_plug plug;
		struct round rd;

		rt_plan(rt, &rd);
		/* Half the rounds go through a plug, so neighbours may merge. */
		if (round % 2)
			blk_start_plug(&plug);
		rt_submit(rt, &rd);
		if (round % 2)
			blk_finish_plug(&plug);
		if (!wait_ios(loop, rd.ios, rd.nr, 20000)) {
			fprintf(stderr, "FAIL: round %u did not complete in 20 s\n", round);
			exit(1);
		}
		rt_check(rt, &rd, round);
	}
}

/* Big requests: four contiguous 1 MiB bios merge into one 4 MiB request. */
static void rt_big_merge(struct roundtrip *rt)
{
	struct io *ios[4];
	struct blk_plug plug;
	uint64_t base = 20 * MiB;

	rng_fill(&rng, rt->data, 4 * MiB);
	blk_start_plug(&plug);
	for (unsigned int i = 0; i < 4; i++) {
		ios[i] = io_new(REQ_OP_WRITE, base + i * MiB, MiB, 0, rt->data + i * MiB);
		submit_bio(ios[i]->bio);
	}
	blk_finish_plug(&plug);
	rt->nr_merged++;
	CHECK(wait_ios(loop, ios, 4, 20000), "4 MiB write timed out");
	for (unsigned int i = 0; i < 4; i++) {
		CHECK(!ios[i]->status, "4 MiB write: %d", ios[i]->status);
		io_free(ios[i]);
	}
	for (unsigned int i = 0; i < 4; i++) {
		uint8_t *buf = malloc(MiB);

		CHECK(!io_sync(REQ_OP_READ, base + i * MiB, MiB, buf), "read back");
		CHECK(!memcmp(buf, rt->data + i * MiB, MiB), "4 MiB write: data differs");
		free(buf);
	}
}

/* Extents: data where written, holes where trimmed; max and the end. */
static void rt_extents(struct roundtrip *rt)
{
	uint64_t hole = 30 * MiB, full = 32 * MiB;
	struct ext_wait w;

	memset(rt->data, 0xa5, MiB);
	CHECK(!io_sync(REQ_OP_WRITE, hole, MiB, rt->data), "write");
	CHECK(!io_sync(REQ_OP_WRITE, hole + MiB, MiB, rt->data), "write");
	CHECK(!io_sync(REQ_OP_WRITE, full, MiB, rt->data), "write");
	check_extents(hole, 2 * MiB, 0);
	CHECK(!io_sync(REQ_OP_DISCARD, hole + MiB / 2, MiB, NULL), "trim");
	check_extents(hole + MiB / 2, MiB, BACKEND_EXTENT_HOLE | BACKEND_EXTENT_ZERO);
	check_extents(hole, MiB / 2, 0);
	check_extents(hole + 3 * MiB / 2, MiB / 2, 0);
	/* Zeroes that keep the allocation read as zero but are no hole. */
	CHECK(!io_sync(REQ_OP_WRITE_ZEROES | REQ_NOUNMAP, full, MiB, NULL), "zero");
	check_extents(full, MiB, BACKEND_EXTENT_ZERO);
	CHECK(!io_sync(REQ_OP_FLUSH, 0, 0, NULL), "flush");

	CHECK(!extents_sync(&w, hole, 2 * MiB, 1), "extents max 1");
	CHECK(w.req.nr == 1 && w.ext[0].offset == hole &&
	      w.ext[0].length == MiB / 2 && !w.ext[0].flags,
	      "max 1: nr %u len %llu flags %#x", w.req.nr,
	      (unsigned long long)w.ext[0].length, w.ext[0].flags);
	CHECK(!extents_sync(&w, be->size - MiB, 10 * MiB, 64), "extents at end");
	CHECK(w.req.nr >= 1 && w.ext[w.req.nr - 1].offset +
	      w.ext[w.req.nr - 1].length <= be->size, "extents past the end");
	CHECK(extents_sync(&w, be->size, MiB, 64) == -EINVAL,
	      "extents beyond the end: %d", w.req.status);
}

static int cmd_roundtrip(const char *uri)
{
	struct roundtrip rt = { .model = calloc(1, REGION), .data = malloc(4 * MiB) };

	if (!rt.model || !rt.data)
		abort();
	open_or_die(spec_of(uri));
	rt_check_open();
	/* A fresh memory export is one big hole. */
	check_extents(0, be->size, BACKEND_EXTENT_HOLE | BACKEND_EXTENT_ZERO);
	rt_rounds(&rt, 150);
	verify_region(rt.model, 0, REGION);
	rt_big_merge(&rt);
	rt_extents(&rt);

	/* Out of bounds: the backend contract's errors. */
	CHECK(io_sync(REQ_OP_READ, be->size, 4096, rt.data) == -EINVAL, "read past end");
	CHECK(io_sync(REQ_OP_WRITE, be->size - 512, 4096, rt.data) == -ENOSPC,
	      "write past end");

	close_bounded(3000);
	printf("roundtrip (%s loop): %u requests (%u scattered, %u FUA, %u big merged), data and extents match\n",
	       ioloop_has_uring(loop) ? "io_uring" : "epoll", rt.nr_rq, rt.nr_scatter,
	       rt.nr_fua, rt.nr_merged);
	free(rt.model);
	free(rt.data);
	return 0;
}

/* threads: two loop threads and one without a loop, at once. */

struct worker {
	pthread_t thread;
	uint64_t base;
	bool with_loop;
	int errors;
	unsigned int ops;
};

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct ioloop *lp = NULL;
	uint8_t *a = malloc(64 * 1024), *b = malloc(64 * 1024);

	if (!a || !b)
		abort();
	if (wk->with_loop) {
		lp = ioloop_create(64, 0, NULL);
		if (!lp)
			abort();
		ioloop_set_current(lp);
	}
	for (unsigned int i = 0; i < 200; i++) {
		uint32_t len = (uint32_t)(1 + i % 128) * SECTOR_SIZE;
		uint64_t off = wk->base + (i % 64) * 64 * 1024;
		struct io *io[2];

		memset(a, (int)(i * 7 + wk->base / MiB), len);
		io[0] = io_new(REQ_OP_WRITE | (i % 3 ? 0 : REQ_FUA), off, len, 0, a);
		submit_bio(io[0]->bio);
		if (!wait_ios(lp, io, 1, 10000)) {
			wk->errors++;
			break;
		}
		io[1] = io_new(REQ_OP_READ, off, len, 0, NULL);
		submit_bio(io[1]->bio);
		if (!wait_ios(lp, &io[1], 1, 10000)) {
			wk->errors++;
			io_free(io[0]);
			break;
		}
		bio_copy_to_buf(io[1]->bio, b, len);
		if (io[0]->status || io[1]->status || memcmp(a, b, len))
			wk->errors++;
		/* With a loop: on the submitter; without: on the I/O thread. */
		for (int k = 0; k < 2; k++)
			if (atomic_load(&io[k]->other_thread) == wk->with_loop)
				wk->errors++;
		io_free(io[0]);
		io_free(io[1]);
		wk->ops += 2;
	}
	if (lp)
		ioloop_destroy(lp);
	free(a);
	free(b);
	return NULL;
}

static int cmd_threads(const char *uri)
{
	struct worker wk[3] = {
		{ .base = 0, .with_loop = true },
		{ .base = 8 * MiB, .with_loop = true },
		{ .base = 16 * MiB, .with_loop = false },
	};

	open_or_die(spec_of(uri));
	for (int i = 0; i < 3; i++)
		pthread_create(&wk[i].thread, NULL, worker_main, &wk[i]);
	for (int i = 0; i < 3; i++) {
		pthread_join(wk[i].thread, NULL);
		CHECK(!wk[i].errors, "worker %d: %d errors", i, wk[i].errors);
	}
	close_bounded(3000);
	printf("threads: %u + %u ops on two loops, %u without a loop, each completed where expected\n",
	       wk[0].ops, wk[1].ops, wk[2].ops);
	return 0;
}

/*
 * order: one plain write, one with PREFLUSH, one with FUA, one at a time,
 * so the server's log shows how each went out.
 */
static int cmd_order(const char *uri)
{
	uint8_t buf[4096];

	memset(buf, 0x5a, sizeof(buf));
	open_or_die(spec_of(uri));
	printf("caps: fua=%d flush=%d\n", !!(be->caps & BACKEND_CAP_FUA),
	       !!(be->caps & BACKEND_CAP_FLUSH));
	CHECK(!io_sync(REQ_OP_WRITE, 0, 4096, buf), "write");
	CHECK(!io_sync(REQ_OP_WRITE | REQ_PREFLUSH, 4096, 4096, buf), "preflush write");
	CHECK(!io_sync(REQ_OP_WRITE | REQ_FUA, 8192, 4096, buf), "fua write");
	CHECK(!io_sync(REQ_OP_READ, 8192, 4096, buf) && buf[100] == 0x5a, "read back");
	close_bounded(3000);
	return 0;
}

/* One KEY=VALUE of caps: a limit, or a capability by name (1 or 0). */
static void caps_check_one(char *kv)
{
	static const struct { const char *name; unsigned int cap; } names[] = {
		{ "flush", BACKEND_CAP_FLUSH }, { "fua", BACKEND_CAP_FUA },
		{ "trim", BACKEND_CAP_TRIM }, { "zero", BACKEND_CAP_WRITE_ZEROES },
		{ "fast_zero", BACKEND_CAP_FAST_ZERO },
		{ "extents", BACKEND_CAP_EXTENTS },
		{ "multi_conn", BACKEND_CAP_MULTI_CONN },
	};
	char *eq = strchr(kv, '=');
	unsigned long long want;

	if (!eq)
		abort();
	*eq = '\0';
	want = strtoull(eq + 1, NULL, 0);
	if (!strcmp(kv, "size")) {
		CHECK(be->size == want, "size %llu", (unsigned long long)be->size);
	} else if (!strcmp(kv, "lbs")) {
		CHECK(be->logical_block_size == want, "lbs %u", be->logical_block_size);
	} else if (!strcmp(kv, "pbs")) {
		CHECK(be->physical_block_size == want, "pbs %u", be->physical_block_size);
	} else if (!strcmp(kv, "max_bytes")) {
		CHECK(be->queue.limits.max_bytes == want, "max_bytes %u",
		      be->queue.limits.max_bytes);
	} else if (!strcmp(kv, "readonly")) {
		CHECK(be->readonly == !!want, "readonly %d", be->readonly);
	} else {
		size_t k = 0;

		while (k < ARRAY_SIZE(names) && strcmp(kv, names[k].name))
			k++;
		if (k == ARRAY_SIZE(names))
			abort();
		CHECK(!!(be->caps & names[k].cap) == !!want, "%s is %d",
		      names[k].name, !!(be->caps & names[k].cap));
	}
}

/* Extents and the ops the server lacks: answered truly, or refused. */
static void caps_check_ops(void)
{
	struct ext_wait w;

	/* With or without base:allocation, extents answer something true. */
	CHECK(!extents_sync(&w, 4096, MiB, 64), "extents: %d", w.req.status);
	CHECK(w.req.nr >= 1 && w.ext[0].offset == 4096, "extents: nr %u", w.req.nr);
	if (!(be->caps & BACKEND_CAP_EXTENTS))
		CHECK(w.req.nr == 1 && w.ext[0].length == MiB && !w.ext[0].flags,
		      "no base:allocation: expected one data extent");
	/* Ops the server lacks are refused, not faked. */
	if (!(be->caps & BACKEND_CAP_WRITE_ZEROES))
		CHECK(io_sync(REQ_OP_WRITE_ZEROES, 0, 4096, NULL) == -EOPNOTSUPP,
		      "write-zeroes without server support");
	if (!(be->caps & BACKEND_CAP_TRIM) && !be->readonly)
		CHECK(io_sync(REQ_OP_DISCARD, 0, 4096, NULL) == -EOPNOTSUPP,
		      "discard without server support");
	/*
	 * Under the logical block size libnbd refuses the command before it
	 * is sent: the request must still end, promptly, with -EINVAL.
	 */
	if (be->logical_block_size > SECTOR_SIZE) {
		uint8_t buf[SECTOR_SIZE];

		CHECK(io_sync(REQ_OP_READ, SECTOR_SIZE, SECTOR_SIZE, buf) == -EINVAL,
		      "unaligned read");
	}
	/* Trims and zeroes far above the largest data request. */
	if (be->caps & BACKEND_CAP_TRIM)
		CHECK(!io_sync(REQ_OP_DISCARD, 8 * MiB, 16 * MiB, NULL), "16 MiB trim");
	if (be->caps & BACKEND_CAP_WRITE_ZEROES)
		CHECK(!io_sync(REQ_OP_WRITE_ZEROES | REQ_NOUNMAP, 8 * MiB, 16 * MiB, NULL),
		      "16 MiB write-zeroes");
}

/* Aligned I/O works within the limits. */
static void caps_check_io(void)
{
	uint32_t len = min_t(uint32_t, be->queue.limits.max_bytes, MiB);
	uint8_t *buf = malloc(len), *back = malloc(len);

	memset(buf, 0x3c, len);
	CHECK(!io_sync(REQ_OP_WRITE, be->logical_block_size, len, buf), "write");
	CHECK(!io_sync(REQ_OP_READ, be->logical_block_size, len, back), "read");
	CHECK(!memcmp(buf, back, len), "data differs");
	free(buf);
	free(back);
}

/* caps: KEY=VALUE pairs that must match what open() reported. */
static int cmd_caps(const char *uri, int argc, char **argv)
{
	open_or_die(spec_of(uri));
	printf("size=%llu lbs=%u pbs=%u max_bytes=%u max_segments=%u caps=%#x readonly=%d\n",
	       (unsigned long long)be->size, be->logical_block_size,
	       be->physical_block_size, be->queue.limits.max_bytes,
	       be->queue.limits.max_segments, be->caps, be->readonly);
	for (int i = 0; i < argc; i++)
		caps_check_one(argv[i]);
	caps_check_ops();
	caps_check_io();
	close_bounded(3000);
	return 0;
}

static int cmd_readonly(const char *spec)
{
	uint8_t buf[4096];

	open_or_die(spec);
	CHECK(be->readonly, "not read-only");
	CHECK(io_sync(REQ_OP_READ, 0, 4096, buf) == 0, "read");
	CHECK(io_sync(REQ_OP_WRITE, 0, 4096, buf) == -EROFS, "write not EROFS");
	CHECK(io_sync(REQ_OP_DISCARD, 0, 4096, NULL) == -EROFS, "trim not EROFS");
	CHECK(io_sync(REQ_OP_WRITE_ZEROES, 0, 4096, NULL) == -EROFS, "zero not EROFS");
	close_bounded(3000);
	return 0;
}

/*
 * servererr: the server fails reads with EIO and writes with ENOSPC (the
 * error filter); the errors reach the bios and the connection lives on.
 */
static int cmd_servererr(const char *uri)
{
	uint8_t buf[8192];

	memset(buf, 7, sizeof(buf));
	open_or_die(spec_of(uri));
	for (int i = 0; i < 3; i++) {
		CHECK(io_sync(REQ_OP_READ, 0, 4096, buf) == -EIO, "read error");
		CHECK(io_sync(REQ_OP_WRITE | REQ_FUA, 4096, 8192, buf) == -ENOSPC,
		      "write error");
		CHECK(!io_sync(REQ_OP_FLUSH, 0, 0, NULL), "flush after errors");
		CHECK(!io_sync(REQ_OP_WRITE_ZEROES, 0, 4096, NULL), "zero after errors");
	}
	close_bounded(3000);
	return 0;
}

/* I/O after the server died: every kind fails with -EIO, promptly. */
static void check_dead_io(void)
{
	uint8_t buf[4096] = { 0 };
	struct ext_wait w;
	uint64_t t = now_ms();

	CHECK(io_sync(REQ_OP_READ, 0, 4096, buf) == -EIO, "read after death");
	CHECK(io_sync(REQ_OP_WRITE, 0, 4096, buf) == -EIO, "write after death");
	CHECK(io_sync(REQ_OP_FLUSH, 0, 0, NULL) == -EIO, "flush after death");
	CHECK(io_sync(REQ_OP_DISCARD, 0, 4096, NULL) == -EIO, "trim after death");
	CHECK(extents_sync(&w, 0, MiB, 64) == -EIO && !w.req.nr,
	      "extents after death: %d", w.req.status);
	CHECK(now_ms() - t < 1000, "I/O after death took %llu ms",
	      (unsigned long long)(now_ms() - t));
}

/* kill: SIGKILL the server (which delays every op) with I/O in flight. */
static int cmd_kill(const char *uri, pid_t pid)
{
	struct io *ios[40];
	struct ext_wait w;
	unsigned int n = 0;
	uint8_t *data = calloc(1, 256 * 1024);
	uint64_t t;

	open_or_die(spec_of(uri));
	for (unsigned int i = 0; i < 12; i++)
		ios[n++] = io_new(REQ_OP_WRITE | (i % 2 ? REQ_FUA : 0),
				  i * 256 * 1024, 256 * 1024, i % 3 ? 0 : 4, data);
	for (unsigned int i = 0; i < 12; i++)
		ios[n++] = io_new(REQ_OP_READ, i * 65536, 65536, i % 2 ? 8 : 0, NULL);
	ios[n++] = io_new(REQ_OP_FLUSH, 0, 0, 0, NULL);
	ios[n++] = io_new(REQ_OP_DISCARD, 8 * MiB, MiB, 0, NULL);
	ios[n++] = io_new(REQ_OP_WRITE_ZEROES, 9 * MiB, MiB, 0, NULL);
	for (unsigned int i = 0; i < n; i++)
		submit_bio(ios[i]->bio);
	ext_start(&w, 0, MiB, 64);

	/* Let them reach the server, which sits on each for seconds. */
	t = now_ms() + 300;
	while (now_ms() < t)
		ioloop_run_once(loop, 50);
	for (unsigned int i = 0; i < n; i++)
		CHECK(!atomic_load(&ios[i]->done), "io %u ended before the kill", i);

	if (kill(pid, SIGKILL)) {
		perror("kill");
		return 1;
	}
	t = now_ms();
	CHECK(wait_ios(loop, ios, n, 5000), "in-flight I/O not ended 5 s after the kill");
	CHECK(ext_wait(&w, 5000), "in-flight extents not done 5 s after the kill");
	printf("kill: %u requests and one extents query in flight ended %llu ms after SIGKILL\n",
	       n, (unsigned long long)(now_ms() - t));
	for (unsigned int i = 0; i < n; i++) {
		CHECK(!atomic_load(&ios[i]->done) || ios[i]->status == -EIO,
		      "in-flight io %u ended with %d, expected -EIO", i, ios[i]->status);
		CHECK(!atomic_load(&ios[i]->other_thread), "completion on another thread");
		if (atomic_load(&ios[i]->done))
			io_free(ios[i]);
	}
	CHECK(w.req.status == -EIO && !w.req.nr, "in-flight extents: %d", w.req.status);
	check_dead_io();
	close_bounded(3000);
	free(data);
	return 0;
}

/* killidle: the server dies while nothing is in flight. */
static int cmd_killidle(const char *uri, pid_t pid)
{
	uint8_t buf[4096];

	memset(buf, 1, sizeof(buf));
	open_or_die(spec_of(uri));
	CHECK(!io_sync(REQ_OP_WRITE, 0, 4096, buf), "write");
	CHECK(!io_sync(REQ_OP_READ, 0, 4096, buf), "read");
	if (kill(pid, SIGKILL)) {
		perror("kill");
		return 1;
	}
	usleep(300 * 1000);
	check_dead_io();
	close_bounded(3000);
	return 0;
}

/* stopped: a frozen server must not freeze close(). */
static int cmd_stopped(const char *uri, pid_t pid)
{
	uint8_t buf[4096];

	open_or_die(spec_of(uri));
	CHECK(!io_sync(REQ_OP_READ, 0, 4096, buf), "read");
	kill(pid, SIGSTOP);
	close_bounded(4000);
	kill(pid, SIGCONT);
	return 0;
}

/* badopen: open fails, promptly, with a message containing @text. */
static int cmd_badopen(const char *spec, const char *text, unsigned int limit_ms)
{
	char err[512] = "";
	uint64_t t = now_ms();
	int ret = backend_open_spec(spec, pages, &be, err, sizeof(err));

	t = now_ms() - t;
	printf("open %s: %d: %s (%llu ms)\n", spec, ret, err, (unsigned long long)t);
	CHECK(ret < 0, "open succeeded");
	CHECK(strstr(err, text), "message lacks '%s'", text);
	CHECK(t <= limit_ms, "open took %llu ms", (unsigned long long)t);
	if (!ret)
		backend_close(be);
	return 0;
}

/* hang: a socket that accepts connections but never says anything. */
static int cmd_hang(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char spec[4200];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 4)) {
		perror("socket");
		return 1;
	}
	snprintf(spec, sizeof(spec), "nbd:nbd+unix:///?socket=%s", path);
	cmd_badopen(spec, "no handshake", 15000);
	close(fd);
	unlink(path);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: nbd-remote roundtrip|threads|order|caps|readonly|servererr|kill|killidle|stopped|badopen|hang ARGS\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int ret;

	if (argc < 3)
		return usage();
	/* No case may hang the suite. */
	alarm(120);
	setup();
	if (!strcmp(cmd, "roundtrip"))
		ret = cmd_roundtrip(argv[2]);
	else if (!strcmp(cmd, "threads"))
		ret = cmd_threads(argv[2]);
	else if (!strcmp(cmd, "order"))
		ret = cmd_order(argv[2]);
	else if (!strcmp(cmd, "caps"))
		ret = cmd_caps(argv[2], argc - 3, argv + 3);
	else if (!strcmp(cmd, "servererr"))
		ret = cmd_servererr(argv[2]);
	else if (!strcmp(cmd, "readonly"))
		ret = cmd_readonly(argv[2]);
	else if (!strcmp(cmd, "kill") && argc == 4)
		ret = cmd_kill(argv[2], (pid_t)atoi(argv[3]));
	else if (!strcmp(cmd, "killidle") && argc == 4)
		ret = cmd_killidle(argv[2], (pid_t)atoi(argv[3]));
	else if (!strcmp(cmd, "stopped") && argc == 4)
		ret = cmd_stopped(argv[2], (pid_t)atoi(argv[3]));
	else if (!strcmp(cmd, "badopen") && argc == 4)
		ret = cmd_badopen(argv[2], argv[3], 5000);
	else if (!strcmp(cmd, "hang"))
		ret = cmd_hang(argv[2]);
	else
		return usage();
	teardown();
	if (ret || failures) {
		fprintf(stderr, "%s: %d failures\n", cmd, failures);
		return 1;
	}
	return 0;
}
