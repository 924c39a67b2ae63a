/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kmem.h"

void *kmalloc(size_t size, blk_gfp_t gfp)
{
	void *p;

	if (should_fail(&fail_kmalloc))
		return NULL;
	p = (gfp & BLK_GFP_ZERO) ? calloc(1, size ? size : 1) :
				   malloc(size ? size : 1);
	return p;
}

void *kzalloc(size_t size, blk_gfp_t gfp)
{
	return kmalloc(size, gfp | BLK_GFP_ZERO);
}

void *kcalloc(size_t n, size_t size, blk_gfp_t gfp)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes))
		return NULL;
	return kmalloc(bytes, gfp | BLK_GFP_ZERO);
}

void kfree(void *p)
{
	free(p);
}
