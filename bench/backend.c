/* SPDX-License-Identifier: MIT */
/*
 * bench/backend: drive a backend through core, as a front end would, with
 * no front end: per I/O a bio from a bio_set, pages from the page
 * allocator, submit_bio, and bio_put at completion, keeping DEPTH in
 * flight on one ioloop thread.  Prints one line of key=value results for
 * bench/backend.sh to tabulate beside fio.
 *
 *   bench/backend -m randread|randwrite|read|write -b BYTES -d DEPTH
 *                 -t SECONDS SPEC
 */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "core/bio.h"
#include "core/ioloop.h"
#include "core/page.h"
#include "tests/rand.h"

struct io {
	uint64_t start_ns;
	struct bio bio;			/* last: front_pad */
};

static struct {
	struct backend *be;
	struct bio_set bs;
	bool write, random;
	unsigned int bs_bytes, depth;
	uint64_t blocks, next_block;
	struct rng rng;
	uint64_t done, errors, bytes;
	uint64_t *lat;			/* ns, one per I/O while there is room */
	size_t nr_lat, max_lat;
	bool stop;
	uint64_t t_end;
	unsigned int inflight;
} b;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void submit_one(void);

static void io_done(struct bio *bio)
{
	struct io *io = container_of(bio, struct io, bio);
	uint64_t lat = now_ns() - io->start_ns;

	if (bio->bi_status)
		b.errors++;
	b.done++;
	b.bytes += b.bs_bytes;
	if (b.nr_lat < b.max_lat)
		b.lat[b.nr_lat++] = lat;
	bio_put(bio);
	b.inflight--;
	/* Checked here too: a backend that completes inline never returns to main. */
	if (!b.stop && !(b.done % 64 == 0 && now_ns() >= b.t_end))
		submit_one();
}

static void submit_one(void)
{
	unsigned int nr = DIV_ROUND_UP(b.bs_bytes, PAGE_SIZE);
	struct bio *bio = bio_alloc_bioset(BLK_GFP_WAIT, nr, &b.bs);
	struct io *io = container_of(bio, struct io, bio);
	uint64_t block;

	if (bio_prep_pages(bio, b.bs_bytes) || bio_alloc_pages(bio, BLK_GFP_WAIT)) {
		fprintf(stderr, "bench/backend: out of pages\n");
		exit(1);
	}
	if (b.random)
		block = rng_range(&b.rng, 0, b.blocks - 1);
	else
		block = b.next_block++ % b.blocks;
	bio->bi_opf = b.write ? REQ_OP_WRITE : REQ_OP_READ;
	bio->bi_iter.bi_sector = block * (b.bs_bytes >> SECTOR_SHIFT);
	bio->bi_queue = &b.be->queue;
	bio->bi_end_io = io_done;
	io->start_ns = now_ns();
	b.inflight++;
	submit_bio(bio);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;

	return a < c ? -1 : a > c;
}

/* Options into b; the spec's index in @argv, or 0 for a usage error. */
static int parse_args(int argc, char **argv, double *seconds)
{
	const char *mode = "randread";
	int c;

	b.bs_bytes = 4096;
	b.depth = 32;
	while ((c = getopt(argc, argv, "m:b:d:t:")) != -1) {
		switch (c) {
		case 'm': mode = optarg; break;
		case 'b': b.bs_bytes = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'd': b.depth = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 't': *seconds = strtod(optarg, NULL); break;
		default: return 0;
		}
	}
	if (optind != argc - 1 || !b.bs_bytes || b.bs_bytes % 4096 ||
	    b.bs_bytes > BIO_MAX_VECS * PAGE_SIZE || !b.depth)
		return 0;
	b.write = strstr(mode, "write") != NULL;
	b.random = !strncmp(mode, "rand", 4);
	return optind;
}

/* Keep b.depth in flight for @seconds; the seconds it took. */
static double run(struct ioloop *loop, double seconds)
{
	uint64_t t0 = now_ns();
	double elapsed;

	b.t_end = t0 + (uint64_t)(seconds * 1e9);
	for (unsigned int i = 0; i < b.depth && now_ns() < b.t_end; i++)
		submit_one();
	while (b.inflight && now_ns() < b.t_end)
		ioloop_run_once(loop, 100);
	b.stop = true;
	elapsed = (double)(now_ns() - t0) / 1e9;
	while (b.inflight)
		ioloop_run_once(loop, 100);
	return elapsed;
}

static void report(double elapsed)
{
	double mean = 0;

	qsort(b.lat, b.nr_lat, sizeof(*b.lat), cmp_u64);
	for (size_t i = 0; i < b.nr_lat; i++)
		mean += (double)b.lat[i];
	mean = b.nr_lat ? mean / (double)b.nr_lat : 0;
	printf("engine=%s iops=%.0f mibps=%.1f lat_mean_us=%.1f lat_p99_us=%.1f errors=%llu\n",
	       b.be->engine, (double)b.done / elapsed,
	       (double)b.bytes / elapsed / (1 << 20), mean / 1000,
	       b.nr_lat ? (double)b.lat[b.nr_lat * 99 / 100] / 1000 : 0,
	       (unsigned long long)b.errors);
}

int main(int argc, char **argv)
{
	double seconds = 5;
	struct ioloop *loop;
	struct pgalloc *pa;
	char err[256];
	int spec;

	rng_seed(&b.rng, 0x2545f4914f6cdd1dull);
	spec = parse_args(argc, argv, &seconds);
	if (!spec) {
		fprintf(stderr,
			"usage: bench/backend [-m randread|randwrite|read|write] [-b BYTES] [-d DEPTH] [-t SECONDS] SPEC\n");
		return 2;
	}
	/* Room for every in-flight buffer twice over. */
	pa = pgalloc_create((size_t)b.depth * b.bs_bytes * 2 + (8u << 20), 0,
			    PGALLOC_MLOCK);
	if (!pa)
		return 1;
	loop = ioloop_create(b.depth * 2 + 16, 0, pa);
	if (!loop) {
		perror("bench/backend: ioloop");
		return 1;
	}
	ioloop_set_current(loop);
	if (backend_open_spec(argv[spec], pa, &b.be, err, sizeof(err))) {
		fprintf(stderr, "bench/backend: %s\n", err);
		return 1;
	}
	if (bioset_init(&b.bs, b.depth, offsetof(struct io, bio), BIOSET_NEED_BVECS,
			pa))
		return 1;
	b.blocks = b.be->size / b.bs_bytes;
	b.max_lat = 4u << 20;
	b.lat = malloc(b.max_lat * sizeof(*b.lat));

	report(run(loop, seconds));

	bioset_exit(&b.bs);
	backend_close(b.be);
	ioloop_destroy(loop);
	pgalloc_destroy(pa);
	free(b.lat);
	return b.errors ? 1 : 0;
}
