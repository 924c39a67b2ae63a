/* SPDX-License-Identifier: MIT */
/*
 * bench/core: the bio layer's hot paths, timed.
 *
 *  - one 64 KiB bio cycle: bio_alloc_bioset + bio_prep_pages +
 *    bio_alloc_pages (16 pages) + bio_put (pages and bio freed),
 *    on 1 and on 2 threads sharing one bio_set and page allocator;
 *  - bio_copy_data between page-per-bvec bios of 4 KiB and 1 MiB, against
 *    memcpy of the same number of bytes between flat buffers.
 *
 * Each figure is the best of several rounds: on a shared machine the best
 * round is the one least disturbed.  Not a test; see bench/README.md.
 */
#include <config.h>

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bio.h"
#include "core/page.h"

#define ROUNDS	7

static struct bio_set bs;
static unsigned long cycles = 200000;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bio_cycles(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		struct bio *bio = bio_alloc_bioset(BLK_GFP_WAIT, 16, &bs);

		if (bio_prep_pages(bio, 16 * PAGE_SIZE) ||
		    bio_alloc_pages(bio, BLK_GFP_WAIT)) {
			fprintf(stderr, "bench/core: allocation failed\n");
			exit(1);
		}
		bio_put(bio);
	}
}

static void *cycle_thread(void *arg)
{
	(void)arg;
	bio_cycles(cycles);
	return NULL;
}

/* ns per cycle, per thread, best of ROUNDS. */
static double bench_cycles(unsigned int nthreads)
{
	double best = 1e30;

	for (int r = 0; r < ROUNDS; r++) {
		pthread_t t[8];
		double t0 = now(), ns;

		for (unsigned int i = 0; i < nthreads; i++)
			pthread_create(&t[i], NULL, cycle_thread, NULL);
		for (unsigned int i = 0; i < nthreads; i++)
			pthread_join(t[i], NULL);
		ns = (now() - t0) * 1e9 / cycles;
		if (ns < best)
			best = ns;
	}
	return best;
}

static struct bio *page_bio(unsigned int size)
{
	struct bio *bio = bio_alloc_bioset(BLK_GFP_WAIT,
					   DIV_ROUND_UP(size, PAGE_SIZE), &bs);

	if (bio_prep_pages(bio, size) || bio_alloc_pages(bio, BLK_GFP_WAIT)) {
		fprintf(stderr, "bench/core: allocation failed\n");
		exit(1);
	}
	memset(bio->bi_io_vec[0].bv_page, 0x5a, PAGE_SIZE);
	return bio;
}

/* GB/s of bio_copy_data and of memcpy for @size bytes, best of ROUNDS. */
static void bench_copy(unsigned int size, double *bio_gbs, double *memcpy_gbs)
{
	unsigned long reps = (256ul << 20) / size * 8;
	struct bio *src = page_bio(size), *dst = page_bio(size);
	char *a = aligned_alloc(PAGE_SIZE, size), *b = aligned_alloc(PAGE_SIZE, size);
	double best_bio = 0, best_mem = 0;

	memset(a, 0x5a, size);
	memset(b, 0, size);
	zero_fill_bio(src);
	zero_fill_bio(dst);
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now(), gbs;

		for (unsigned long i = 0; i < reps; i++) {
			bio_copy_data(dst, src);
			__asm__ volatile("" ::: "memory");
		}
		gbs = (double)size * reps / (now() - t0) / 1e9;
		if (gbs > best_bio)
			best_bio = gbs;

		t0 = now();
		for (unsigned long i = 0; i < reps; i++) {
			memcpy(b, a, size);
			__asm__ volatile("" ::: "memory");
		}
		gbs = (double)size * reps / (now() - t0) / 1e9;
		if (gbs > best_mem)
			best_mem = gbs;
	}
	*bio_gbs = best_bio;
	*memcpy_gbs = best_mem;
	bio_put(src);
	bio_put(dst);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	double c1, c2, b4, m4, b1m, m1m;
	struct pgalloc *pa;
	int c;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c == 'n')
			cycles = strtoul(optarg, NULL, 10);
		else {
			fprintf(stderr, "usage: bench/core [-n cycles]\n");
			return 2;
		}
	}

	pa = pgalloc_create(64u << 20, 0, PGALLOC_MLOCK);
	if (!pa || bioset_init(&bs, 64, 0, BIOSET_NEED_BVECS, pa)) {
		fprintf(stderr, "bench/core: setup failed\n");
		return 1;
	}

	c1 = bench_cycles(1);
	c2 = bench_cycles(2);
	bench_copy(4096, &b4, &m4);
	bench_copy(1u << 20, &b1m, &m1m);

	printf("| benchmark                                   | result      | target     |\n");
	printf("|---------------------------------------------|-------------|------------|\n");
	printf("| 64 KiB bio alloc+pages+free, 1 thread       | %7.0f ns  | < 300 ns   |\n", c1);
	printf("| 64 KiB bio alloc+pages+free, 2 threads      | %7.0f ns  | < 300 ns   |\n", c2);
	printf("| bio_copy_data 4 KiB                         | %6.2f GB/s |            |\n", b4);
	printf("| memcpy 4 KiB                                | %6.2f GB/s |            |\n", m4);
	printf("| bio_copy_data / memcpy, 4 KiB               | %9.0f %% |            |\n", 100 * b4 / m4);
	printf("| bio_copy_data 1 MiB                         | %6.2f GB/s |            |\n", b1m);
	printf("| memcpy 1 MiB                                | %6.2f GB/s |            |\n", m1m);
	printf("| bio_copy_data / memcpy, 1 MiB               | %9.0f %% | >= 80 %%    |\n", 100 * b1m / m1m);
	printf("(2 threads: ns per cycle per thread, both threads cycling at once)\n");

	bioset_exit(&bs);
	pgalloc_destroy(pa);
	return 0;
}
