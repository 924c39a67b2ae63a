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

/*
 * Create an allocator owning @budget_bytes (rounded up to whole pages) in
 * arenas of at most @arena_bytes each (0: PGALLOC_MAX_ARENA_BYTES).  The
 * arenas are reserved at once but only touched on use, unless mlocked.
 * Returns NULL with errno set on failure.
 */
struct pgalloc *pgalloc_create(size_t budget_bytes, size_t arena_bytes,
			       unsigned int flags);

/*
 * Unmap the arenas.  Every page must have been freed, and no other thread
 * may use @pa any more.
 */
void pgalloc_destroy(struct pgalloc *pa);

/*
 * alloc_contig_range-style: allocate @nr_pages physically contiguous pages
 * from one arena, all or nothing, and store the first one's address in
 * *@addr.  Returns 0, -ENOMEM (NOWAIT and no run free, or injected
 * failure), or -EINVAL (@nr_pages is 0 or larger than any arena, so it
 * could never succeed).  With BLK_GFP_WAIT it sleeps until a run is free.
 * BLK_GFP_ZERO zeroes the pages.
 */
int page_alloc_contig(struct pgalloc *pa, unsigned int nr_pages,
		      blk_gfp_t gfp, void **addr);

/* Free a run from page_alloc_contig(); @nr_pages must match. */
void page_free_contig(struct pgalloc *pa, void *addr, unsigned int nr_pages);

/* One page, or NULL. */
void *page_alloc(struct pgalloc *pa, blk_gfp_t gfp);

/* Free one page. */
void page_free(struct pgalloc *pa, void *page);

/*
 * alloc_pages_bulk-style: fill @pages[0..@nr) with single pages, from the
 * calling thread's page cache or under one lock.  NOWAIT stores as many as
 * are free and returns how many (fault injection counts each page and
 * stops at the first injected failure).  WAIT sleeps until all @nr are free and
 * returns @nr, unless @nr exceeds the budget or a fault is injected, where
 * it returns what it got.  The caller frees a short result itself.
 */
unsigned int page_alloc_bulk(struct pgalloc *pa, blk_gfp_t gfp,
			     unsigned int nr, void **pages);

/* Free @nr single pages under one lock. */
void page_free_bulk(struct pgalloc *pa, unsigned int nr, void *const *pages);

/* Number of arenas, fixed at creation. */
unsigned int pgalloc_nr_arenas(const struct pgalloc *pa);

/* Address range of arena @idx, for io_uring_register_buffers(). */
void pgalloc_arena(const struct pgalloc *pa, unsigned int idx, void **base,
		   size_t *len);

/* Index of the arena holding @addr, or -1 if it is not the allocator's. */
int pgalloc_arena_of(const struct pgalloc *pa, const void *addr);

/* A consistent snapshot of the counters. */
void pgalloc_get_stats(struct pgalloc *pa, struct pgalloc_stats *st);

#endif
