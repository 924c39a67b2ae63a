/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_FAULT_H
#define BLOCKD_CORE_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>

/*
 * Fault injection, modelled on the kernel's fault_attr (failslab,
 * fail_page_alloc).  Tests use it to make the Nth allocation fail, or each
 * allocation fail with a probability, and so reach every error path.
 * A disabled attribute costs one relaxed atomic load.
 */
struct fault_attr {
	atomic_bool enabled;
	atomic_long nth;		/* fail the call when this reaches 1; 0 = off */
	atomic_uint probability;	/* in millionths; 0 = off */
	atomic_uint seed;
	atomic_long calls;		/* calls seen while enabled */
	atomic_long failures;		/* calls failed */
};

/* Fails the kmalloc family (core/kmem.h). */
extern struct fault_attr fail_kmalloc;
/* Fails page allocations (core/page.h), counted per page. */
extern struct fault_attr fail_page_alloc;

/* Fail the @nth call from now on (1 = the next one); later calls succeed. */
void fault_fail_nth(struct fault_attr *attr, long nth);

/* Fail each call with probability @ppm / 1e6, reproducibly from @seed. */
void fault_fail_probability(struct fault_attr *attr, unsigned int ppm,
			    unsigned int seed);

/* Fail every call until fault_reset(). */
void fault_fail_always(struct fault_attr *attr);

/* Turn injection off and clear the counters. */
void fault_reset(struct fault_attr *attr);

/* Decide whether this call fails. Thread-safe. */
bool should_fail_slow(struct fault_attr *attr);

static inline bool should_fail(struct fault_attr *attr)
{
	if (!atomic_load_explicit(&attr->enabled, memory_order_relaxed))
		return false;
	return should_fail_slow(attr);
}

#endif
