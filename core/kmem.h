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

/* Allocate @size bytes, zeroed when @gfp has BLK_GFP_ZERO. NULL on failure. */
void *kmalloc(size_t size, blk_gfp_t gfp);

/* kmalloc(size, gfp | BLK_GFP_ZERO). */
void *kzalloc(size_t size, blk_gfp_t gfp);

/* Zeroed array of @n elements of @size; NULL on overflow or failure. */
void *kcalloc(size_t n, size_t size, blk_gfp_t gfp);

/* Free what the kmalloc family returned; NULL is a no-op. */
void kfree(void *p);

#endif
