/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_GFP_H
#define BLOCKD_CORE_GFP_H

/*
 * Allocation flags, the userspace counterpart of gfp_t.  The only question
 * an allocator in blockd asks is whether the caller may sleep.
 */
typedef unsigned int blk_gfp_t;

/* Fail at once rather than sleep (GFP_NOWAIT / GFP_ATOMIC). */
#define BLK_GFP_NOWAIT	0x0u
/* May sleep until memory is given back (GFP_KERNEL / GFP_NOIO). */
#define BLK_GFP_WAIT	0x1u
/* Zero the memory (__GFP_ZERO). */
#define BLK_GFP_ZERO	0x2u

/**
 * gfpflags_allow_blocking - whether @gfp lets the allocator sleep
 * @gfp: allocation flags
 *
 * Return: 1 with BLK_GFP_WAIT, else 0.
 */
static inline int gfpflags_allow_blocking(blk_gfp_t gfp)
{
	return !!(gfp & BLK_GFP_WAIT);
}

#endif
