/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_PAGE_H
#define BLOCKD_CORE_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gfp.h"

/*
 * The page allocator: every data buffer in blockd is made of 4096-byte pages
 * carved from a few large mmap'd arenas, and the arenas' total size is the
 * memory budget.  When the budget is spent, NOWAIT allocations fail and WAIT
 * allocations sleep until pages are freed; nothing grows.  Because all data
 * lives in a fixed set of arenas, a backend can register them once with
 * io_uring as fixed buffers (see pgalloc_arena()).
 */

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1u << PAGE_SHIFT)
#define PAGE_MASK	(~((uintptr_t)PAGE_SIZE - 1))

/* Flags for pgalloc_create(). */
#define PGALLOC_MLOCK	0x1u	/* mlock the arenas when RLIMIT_MEMLOCK allows */

/* Largest arena; io_uring limits one fixed buffer to 1 GiB. */
#define PGALLOC_MAX_ARENA_BYTES	(1ul << 30)

struct pgalloc;

struct pgalloc_stats {
	size_t total_pages;	/* the budget, in pages */
	size_t free_pages;	/* including those cached by threads */
	unsigned int nr_arenas;
	bool locked;		/* arenas are mlock'ed */
	uint64_t allocs;	/* pages handed out, ever */
	uint64_t frees;		/* pages given back, ever */
	uint64_t failures;	/* allocation calls that failed */
	uint64_t waits;		/* allocation calls that slept */
};

/**
 * pgalloc_create - create a page allocator
 * @budget_bytes: the memory it owns, rounded up to whole pages
 * @arena_bytes: the largest arena (0: PGALLOC_MAX_ARENA_BYTES)
 * @flags: PGALLOC_MLOCK
 *
 * The arenas are reserved at once but only touched on use, unless mlocked.
 *
 * Return: the allocator, or NULL with errno set on failure.
 */
struct pgalloc *pgalloc_create(size_t budget_bytes, size_t arena_bytes,
			       unsigned int flags);

/**
 * pgalloc_destroy - unmap the arenas
 * @pa: the allocator; every page must have been freed, and no other
 *	thread may use it any more
 */
void pgalloc_destroy(struct pgalloc *pa);

/**
 * page_alloc_contig - allocate a run of physically contiguous pages
 * @pa: the allocator
 * @nr_pages: how many, all from one arena (alloc_contig_range-style)
 * @gfp: BLK_GFP_WAIT sleeps until a run is free; BLK_GFP_ZERO zeroes them
 * @addr: set to the first page's address
 *
 * All or nothing.
 *
 * Return: 0, -ENOMEM (NOWAIT and no run free, or an injected failure), or
 * -EINVAL (@nr_pages is 0 or larger than any arena, so it could never
 * succeed).
 */
int page_alloc_contig(struct pgalloc *pa, unsigned int nr_pages,
		      blk_gfp_t gfp, void **addr);

/**
 * page_free_contig - free a run from page_alloc_contig()
 * @pa: the allocator it came from
 * @addr: its first page
 * @nr_pages: its length, as allocated
 */
void page_free_contig(struct pgalloc *pa, void *addr, unsigned int nr_pages);

/**
 * page_alloc - allocate one page
 * @pa: the allocator
 * @gfp: BLK_GFP_WAIT sleeps until one is free; BLK_GFP_ZERO zeroes it
 *
 * Return: the page, or NULL.
 */
void *page_alloc(struct pgalloc *pa, blk_gfp_t gfp);

/**
 * page_free - free one page
 * @pa: the allocator it came from
 * @page: the page, or NULL for nothing
 */
void page_free(struct pgalloc *pa, void *page);

/**
 * page_alloc_bulk - fill @pages[0..@nr) with single pages
 * @pa: the allocator
 * @gfp: BLK_GFP_WAIT to sleep until all @nr are free
 * @nr: how many
 * @pages: the array to fill
 *
 * alloc_pages_bulk-style: from the calling thread's page cache or under
 * one lock.  NOWAIT stores as many as are free (fault injection counts
 * each page and stops at the first injected failure).  WAIT sleeps until
 * all @nr are free, unless @nr exceeds the budget or a fault is injected.
 * The caller frees a short result itself.
 *
 * Return: how many pages were stored.
 */
unsigned int page_alloc_bulk(struct pgalloc *pa, blk_gfp_t gfp,
			     unsigned int nr, void **pages);

/**
 * page_free_bulk - free @nr single pages under one lock
 * @pa: the allocator they came from
 * @nr: how many
 * @pages: the pages
 */
void page_free_bulk(struct pgalloc *pa, unsigned int nr, void *const *pages);

/**
 * pgalloc_nr_arenas - how many arenas @pa has, fixed at creation
 * @pa: the allocator
 *
 * Return: the number of arenas.
 */
unsigned int pgalloc_nr_arenas(const struct pgalloc *pa);

/**
 * pgalloc_arena - the address range of one arena
 * @pa: the allocator
 * @idx: the arena, below pgalloc_nr_arenas()
 * @base: set to its first byte
 * @len: set to its length
 *
 * For io_uring_register_buffers().
 */
void pgalloc_arena(const struct pgalloc *pa, unsigned int idx, void **base,
		   size_t *len);

/**
 * pgalloc_arena_of - the arena that holds @addr
 * @pa: the allocator
 * @addr: any address
 *
 * Return: the arena's index, or -1 if @addr is not the allocator's.
 */
int pgalloc_arena_of(const struct pgalloc *pa, const void *addr);

/**
 * pgalloc_get_stats - a consistent snapshot of the counters
 * @pa: the allocator
 * @st: filled
 */
void pgalloc_get_stats(struct pgalloc *pa, struct pgalloc_stats *st);

#endif
