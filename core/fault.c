/* SPDX-License-Identifier: MIT */
/*
 * Fault injection for the allocators.  Kept separate from them so tests
 * can drive any allocator's failures the same way.
 */
#include "fault.h"

struct fault_attr fail_kmalloc;
struct fault_attr fail_page_alloc;

void fault_reset(struct fault_attr *attr)
{
	atomic_store(&attr->enabled, false);
	atomic_store(&attr->nth, 0);
	atomic_store(&attr->probability, 0);
	atomic_store(&attr->calls, 0);
	atomic_store(&attr->failures, 0);
}

void fault_fail_nth(struct fault_attr *attr, long nth)
{
	fault_reset(attr);
	if (nth <= 0)
		return;
	atomic_store(&attr->nth, nth);
	atomic_store(&attr->enabled, true);
}

void fault_fail_probability(struct fault_attr *attr, unsigned int ppm,
			    unsigned int seed)
{
	fault_reset(attr);
	atomic_store(&attr->seed, seed ? seed : 1);
	atomic_store(&attr->probability, ppm > 1000000 ? 1000000 : ppm);
	atomic_store(&attr->enabled, ppm > 0);
}

void fault_fail_always(struct fault_attr *attr)
{
	fault_fail_probability(attr, 1000000, 1);
}

/* xorshift32 advanced with a CAS, so concurrent callers draw distinct values. */
static unsigned int next_random(struct fault_attr *attr)
{
	unsigned int old = atomic_load(&attr->seed), x;

	do {
		x = old;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
	} while (!atomic_compare_exchange_weak(&attr->seed, &old, x));
	return x;
}

bool should_fail_slow(struct fault_attr *attr)
{
	unsigned int ppm;
	long nth;

	atomic_fetch_add(&attr->calls, 1);

	nth = atomic_load(&attr->nth);
	while (nth > 0) {
		if (atomic_compare_exchange_weak(&attr->nth, &nth, nth - 1)) {
			if (nth != 1)
				return false;
			atomic_fetch_add(&attr->failures, 1);
			return true;
		}
	}

	ppm = atomic_load(&attr->probability);
	if (ppm && next_random(attr) % 1000000 < ppm) {
		atomic_fetch_add(&attr->failures, 1);
		return true;
	}
	return false;
}
