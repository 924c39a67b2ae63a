/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_STATS_H
#define BLOCKD_DAEMON_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Counters: per export, bumped by the front end on the worker threads
 * with relaxed atomics (they are statistics, not synchronisation), read by
 * the stats socket on the main thread.
 */
enum stats_op {
	STATS_READ,
	STATS_WRITE,
	STATS_FLUSH,
	STATS_TRIM,
	STATS_WRITE_ZEROES,
	STATS_BLOCK_STATUS,
	STATS_CACHE,
	STATS_OTHER,
	STATS_NR_OPS,
};

/* Latency histogram: bucket i counts requests that took < 2^i microseconds. */
#define STATS_LAT_BUCKETS	32

struct export_stats {
	atomic_uint_least64_t ops[STATS_NR_OPS];
	atomic_uint_least64_t bytes[STATS_NR_OPS];
	atomic_uint_least64_t errors;
	atomic_int in_flight;
	atomic_uint connections;
	atomic_uint_least64_t lat[STATS_LAT_BUCKETS];
};

extern const char *const stats_op_names[STATS_NR_OPS];

/**
 * stats_op_of_nbd - an NBD command type to its counter
 * @nbd_type: NBD_CMD_*
 *
 * Return: the STATS_* counter.
 */
enum stats_op stats_op_of_nbd(uint16_t nbd_type);

/**
 * stats_now - monotonic time, for stats_end()
 *
 * Return: the time in nanoseconds.
 */
uint64_t stats_now(void);

/**
 * stats_start - a request started
 * @st: its export's counters
 */
void stats_start(struct export_stats *st);

/**
 * stats_end - a request that stats_start() counted ended
 * @st: its export's counters
 * @op: what it was
 * @bytes: how many bytes it moved
 * @error: whether it failed
 * @t0: when it started (stats_now())
 */
void stats_end(struct export_stats *st, enum stats_op op, uint64_t bytes,
	       int error, uint64_t t0);

/**
 * stats_percentile - the latency below which @pct percent of requests finished
 * @lat: a latency histogram (STATS_LAT_BUCKETS)
 * @pct: the percentile
 *
 * Return: the latency in microseconds.
 */
uint64_t stats_percentile(const uint64_t *lat, double pct);

#endif
