/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_TESTS_RAND_H
#define BLOCKD_TESTS_RAND_H

/*
 * The tests' one source of randomness: xorshift64*, small, fast and the
 * same on every platform, so a seed printed by a failing test replays it.
 * Every C test includes this; none keeps a generator of its own.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rng {
	uint64_t s;
};

/* Start @r at @seed (0 picks a fixed non-zero state: xorshift needs one). */
static inline void rng_seed(struct rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* The next 64 random bits. */
static inline uint64_t rng_next(struct rng *r)
{
	uint64_t x = r->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/*
 * Uniform in [@lo, @hi], from the high bits (xorshift64*'s low bits are
 * its weakest).
 */
static inline uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	uint64_t span = hi - lo + 1;

	if (!span)
		return rng_next(r);
	return lo + (uint64_t)(((unsigned __int128)rng_next(r) * span) >> 64);
}

/* True with a chance of @percent in 100. */
static inline bool rng_chance(struct rng *r, unsigned int percent)
{
	return rng_range(r, 0, 99) < percent;
}

/* Fill @buf with @len random bytes. */
static inline void rng_fill(struct rng *r, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		uint64_t v = rng_next(r);
		size_t n = len < sizeof(v) ? len : sizeof(v);

		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
}

#endif
