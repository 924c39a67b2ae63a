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

/**
 * fault_fail_nth - fail the @nth call from now on; later calls succeed
 * @attr: the attribute
 * @nth: 1 is the next call
 */
void fault_fail_nth(struct fault_attr *attr, long nth);

/**
 * fault_fail_probability - fail each call with probability @ppm / 1e6
 * @attr: the attribute
 * @ppm: the probability, in millionths
 * @seed: makes the failures reproducible
 */
void fault_fail_probability(struct fault_attr *attr, unsigned int ppm,
			    unsigned int seed);

/**
 * fault_fail_always - fail every call until fault_reset()
 * @attr: the attribute
 */
void fault_fail_always(struct fault_attr *attr);

/**
 * fault_reset - turn injection off and clear the counters
 * @attr: the attribute
 */
void fault_reset(struct fault_attr *attr);

/**
 * should_fail_slow - decide whether this call fails
 * @attr: an enabled attribute
 *
 * Thread-safe.
 *
 * Return: true when the call must fail.
 */
bool should_fail_slow(struct fault_attr *attr);

/**
 * should_fail - whether this call fails; one relaxed load when disabled
 * @attr: the attribute
 *
 * Return: true when the call must fail.
 */
static inline bool should_fail(struct fault_attr *attr)
{
	if (!atomic_load_explicit(&attr->enabled, memory_order_relaxed))
		return false;
	return should_fail_slow(attr);
}

#endif
