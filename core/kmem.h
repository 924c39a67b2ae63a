/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_KMEM_H
#define BLOCKD_CORE_KMEM_H

#include <stddef.h>
#include "gfp.h"

/*
 * kmalloc/kzalloc/kfree: small-object allocation on top of malloc, with the
 * kernel's flags and a fault-injection hook (fail_kmalloc in core/fault.h).
 *
 * As in the kernel, these may return NULL even with BLK_GFP_WAIT (for
 * instance under fault injection); code that must not fail allocates from
 * a mempool instead.
 */

/**
 * kmalloc - allocate @size bytes
 * @size: bytes
 * @gfp: BLK_GFP_WAIT and BLK_GFP_ZERO (zero the memory) as needed
 *
 * Return: the memory, or NULL on failure.
 */
void *kmalloc(size_t size, blk_gfp_t gfp);

/**
 * kzalloc - kmalloc(@size, @gfp | BLK_GFP_ZERO)
 * @size: bytes
 * @gfp: allocation flags
 *
 * Return: the zeroed memory, or NULL on failure.
 */
void *kzalloc(size_t size, blk_gfp_t gfp);

/**
 * kcalloc - a zeroed array of @n elements of @size
 * @n: elements
 * @size: bytes per element
 * @gfp: allocation flags
 *
 * Return: the array, or NULL on overflow or failure.
 */
void *kcalloc(size_t n, size_t size, blk_gfp_t gfp);

/**
 * kfree - free what the kmalloc family returned
 * @p: the memory; NULL is a no-op
 */
void kfree(void *p);

#endif
