/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <time.h>

#include "daemon/stats.h"

const char *const stats_op_names[STATS_NR_OPS] = {
	[STATS_READ] = "read", [STATS_WRITE] = "write", [STATS_FLUSH] = "flush",
	[STATS_TRIM] = "trim", [STATS_WRITE_ZEROES] = "write_zeroes",
	[STATS_BLOCK_STATUS] = "block_status", [STATS_CACHE] = "cache",
	[STATS_OTHER] = "other",
};

enum stats_op stats_op_of_nbd(uint16_t t)
{
	/* NBD_CMD_* numbers: READ 0, WRITE 1, DISC 2, FLUSH 3, TRIM 4, CACHE 5, WRITE_ZEROES 6, BLOCK_STATUS 7. */
	switch (t) {
	case 0: return STATS_READ;
	case 1: return STATS_WRITE;
	case 3: return STATS_FLUSH;
	case 4: return STATS_TRIM;
	case 5: return STATS_CACHE;
	case 6: return STATS_WRITE_ZEROES;
	case 7: return STATS_BLOCK_STATUS;
	default: return STATS_OTHER;
	}
}

uint64_t stats_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void stats_start(struct export_stats *st)
{
	atomic_fetch_add_explicit(&st->in_flight, 1, memory_order_relaxed);
}

void stats_end(struct export_stats *st, enum stats_op op, uint64_t bytes,
	       int error, uint64_t t0)
{
	uint64_t us = (stats_now() - t0) / 1000;
	unsigned int b = 0;

	while (b < STATS_LAT_BUCKETS - 1 && (1ull << b) <= us)
		b++;
	atomic_fetch_add_explicit(&st->ops[op], 1, memory_order_relaxed);
	if (!error)
		atomic_fetch_add_explicit(&st->bytes[op], bytes, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&st->errors, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->lat[b], 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&st->in_flight, 1, memory_order_relaxed);
}

uint64_t stats_percentile(const uint64_t *lat, double pct)
{
	uint64_t total = 0, seen = 0;
	unsigned int b;

	for (b = 0; b < STATS_LAT_BUCKETS; b++)
		total += lat[b];
	if (!total)
		return 0;
	for (b = 0; b < STATS_LAT_BUCKETS; b++) {
		seen += lat[b];
		if ((double)seen * 100.0 >= pct * (double)total)
			return 1ull << b;
	}
	return 1ull << (STATS_LAT_BUCKETS - 1);
}
