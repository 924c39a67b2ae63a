/* SPDX-License-Identifier: MIT */
/*
 * The page allocator.  Each arena is one mmap'd region tracked by a bitmap
 * (a set bit is an allocated page).  Single pages are the lowest free ones
 * (address-ordered first fit), found from a hint below which every word is
 * full, so a steady alloc/free pattern stays O(1).  Lowest-first keeps the
 * pages in use packed into as few as the load needs, which stay in the CPU
 * caches: a moving hint instead walks through the whole budget and every
 * page it hands out is cold (a 1 MiB FUSE write landing in cold pages cost
 * a quarter of its CPU time).  Contiguous runs are found by a first-fit
 * scan, word by word.
 *
 * Like the kernel's per-cpu page lists, each thread keeps a small cache of
 * free pages (a pcp), refilled from and flushed to the arenas in batches,
 * so the common bio cycle touches no shared lock.  Pages parked in caches
 * must never make an allocation fail or sleep while they could serve it:
 * before failing or sleeping, an allocation drains every cache, and while
 * anyone sleeps, frees bypass the caches (see pgalloc.waiters).
 *
 * Lock order: pcp_list_lock, then a pcp's lock, then lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "compiler.h"
#include "fault.h"
#include "kmem.h"
#include "page.h"

#define BITS_PER_WORD	64

/* Pages a thread's cache holds at most, and moves to or from the arenas at once. */
#define PCP_HIGH	64
#define PCP_BATCH	16
/* Budgets below this many pages are too small to spread over thread caches. */
#define PCP_MIN_PAGES	1024
/* A sleeping allocation looks again this often even without a wake-up. */
#define WAIT_RETRY_NS	(50 * 1000000l)

struct arena {
	char *base;
	size_t nr_pages;
	size_t nr_free;
	size_t hint;		/* every word below it is full */
	uint64_t *bitmap;
};

struct pcp {
	pthread_spinlock_t lock;
	unsigned int count;
	uint64_t allocs, frees;		/* here, not shared, to keep the fast path local */
	struct pgalloc *pa;
	struct pcp *next;		/* pa->pcps, under pa->pcp_list_lock */
	void *pages[PCP_HIGH];
};

struct pgalloc {
	pthread_mutex_t lock;
	pthread_cond_t wait;
	unsigned int nr_arenas;
	unsigned int next_arena;	/* round-robin start for single pages */
	/* Sleepers; while non-zero, frees go straight to the arenas. */
	atomic_uint waiters;
	bool locked;
	bool use_pcp;
	size_t total_pages;
	size_t free_pages;		/* in the arenas, not counting caches */
	size_t max_arena_pages;
	uint64_t allocs, frees, failures, waits;

	pthread_key_t pcp_key;
	pthread_mutex_t pcp_list_lock;
	struct pcp *pcps;

	struct arena arenas[];
};

static size_t bitmap_words(size_t bits)
{
	return DIV_ROUND_UP(bits, BITS_PER_WORD);
}

static void bitmap_set_range(uint64_t *map, size_t start, size_t n)
{
	while (n) {
		size_t w = start / BITS_PER_WORD, b = start % BITS_PER_WORD;
		size_t k = BITS_PER_WORD - b < n ? BITS_PER_WORD - b : n;
		uint64_t mask = (k == BITS_PER_WORD ? ~0ull : ((1ull << k) - 1)) << b;

		BUG_ON(map[w] & mask);
		map[w] |= mask;
		start += k;
		n -= k;
	}
}

static void bitmap_clear_range(uint64_t *map, size_t start, size_t n)
{
	while (n) {
		size_t w = start / BITS_PER_WORD, b = start % BITS_PER_WORD;
		size_t k = BITS_PER_WORD - b < n ? BITS_PER_WORD - b : n;
		uint64_t mask = (k == BITS_PER_WORD ? ~0ull : ((1ull << k) - 1)) << b;

		/* Freeing a page that is not allocated: a double free. */
		BUG_ON((map[w] & mask) != mask);
		map[w] &= ~mask;
		start += k;
		n -= k;
	}
}

/* First bit at or after @start in [@start, @end) equal to @set, or @end. */
static size_t bitmap_find(const uint64_t *map, size_t start, size_t end,
			  bool set)
{
	while (start < end) {
		size_t w = start / BITS_PER_WORD, b = start % BITS_PER_WORD;
		uint64_t word = set ? map[w] : ~map[w];

		word &= ~0ull << b;
		if (word) {
			size_t bit = w * BITS_PER_WORD + (size_t)__builtin_ctzll(word);

			return bit < end ? bit : end;
		}
		start = (w + 1) * BITS_PER_WORD;
	}
	return end;
}

/* First fit of @n clear bits in @a, or -1. Caller holds the lock. */
static long arena_find_run(struct arena *a, size_t n)
{
	size_t i = 0, j;

	if (a->nr_free < n)
		return -1;
	while (i + n <= a->nr_pages) {
		i = bitmap_find(a->bitmap, i, a->nr_pages, false);
		if (i + n > a->nr_pages)
			break;
		j = bitmap_find(a->bitmap, i, i + n, true);
		if (j == i + n)
			return (long)i;
		i = j + 1;
	}
	return -1;
}


/* Page @bit of @a is free again: keep every word below the hint full. */
static void arena_freed(struct arena *a, size_t bit)
{
	if (bit / BITS_PER_WORD < a->hint)
		a->hint = bit / BITS_PER_WORD;
}

/* Take up to @nr of the lowest free pages of @a. Caller holds the lock. */
static unsigned int arena_take(struct arena *a, unsigned int nr, void **pages)
{
	size_t words = bitmap_words(a->nr_pages), w;
	unsigned int got = 0;

	for (w = a->hint; got < nr && a->nr_free && w < words; w++) {
		uint64_t free_bits = ~a->bitmap[w];

		while (free_bits && got < nr) {
			size_t bit = w * BITS_PER_WORD +
				     (size_t)__builtin_ctzll(free_bits);

			free_bits &= free_bits - 1;
			a->bitmap[w] |= 1ull << (bit % BITS_PER_WORD);
			a->nr_free--;
			pages[got++] = a->base + bit * PAGE_SIZE;
		}
		if (got == nr)
			break;
	}
	/* Words passed are full; the one we stopped in may not be. */
	a->hint = w;
	return got;
}

static int arena_index(const struct pgalloc *pa, const void *addr)
{
	unsigned int i;

	for (i = 0; i < pa->nr_arenas; i++) {
		const struct arena *a = &pa->arenas[i];
		const char *p = addr;

		if (p >= a->base && p < a->base + a->nr_pages * PAGE_SIZE)
			return (int)i;
	}
	return -1;
}

/* Take @nr pages across the arenas (caller checked free_pages). Holds lock. */
static unsigned int take_pages(struct pgalloc *pa, unsigned int nr, void **pages)
{
	unsigned int got = 0, i;

	for (i = 0; got < nr && i < pa->nr_arenas; i++) {
		struct arena *a = &pa->arenas[(pa->next_arena + i) % pa->nr_arenas];

		got += arena_take(a, nr - got, pages + got);
	}
	if (pa->nr_arenas > 1 && got < nr)
		pa->next_arena = (pa->next_arena + 1) % pa->nr_arenas;
	pa->free_pages -= got;
	return got;
}

/* Return pages to the arenas. Holds lock. */
static void put_pages(struct pgalloc *pa, unsigned int nr, void *const *pages)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		int idx = arena_index(pa, pages[i]);
		struct arena *a;
		size_t bit;

		BUG_ON(idx < 0 || ((uintptr_t)pages[i] & (PAGE_SIZE - 1)));
		a = &pa->arenas[idx];
		bit = (size_t)((char *)pages[i] - a->base) / PAGE_SIZE;
		bitmap_clear_range(a->bitmap, bit, 1);
		a->nr_free++;
		arena_freed(a, bit);
	}
	pa->free_pages += nr;
	if (atomic_load(&pa->waiters))
		pthread_cond_broadcast(&pa->wait);
}

static void arenas_free(struct pgalloc *pa, unsigned int nr, void *const *pages)
{
	pthread_mutex_lock(&pa->lock);
	put_pages(pa, nr, pages);
	pthread_mutex_unlock(&pa->lock);
}

/* Move every thread's cached pages back to the arenas. */
static void drain_all_pages(struct pgalloc *pa)
{
	struct pcp *pcp;

	if (!pa->use_pcp)
		return;
	pthread_mutex_lock(&pa->pcp_list_lock);
	for (pcp = pa->pcps; pcp; pcp = pcp->next) {
		pthread_spin_lock(&pcp->lock);
		if (pcp->count) {
			arenas_free(pa, pcp->count, pcp->pages);
			pcp->count = 0;
		}
		pthread_spin_unlock(&pcp->lock);
	}
	pthread_mutex_unlock(&pa->pcp_list_lock);
}

/* At thread exit: give the cache back and forget it. */
static void pcp_release(void *arg)
{
	struct pcp *pcp = arg, **pp;
	struct pgalloc *pa = pcp->pa;

	pthread_mutex_lock(&pa->pcp_list_lock);
	for (pp = &pa->pcps; *pp; pp = &(*pp)->next) {
		if (*pp == pcp) {
			*pp = pcp->next;
			break;
		}
	}
	pthread_spin_lock(&pcp->lock);
	pthread_mutex_lock(&pa->lock);
	put_pages(pa, pcp->count, pcp->pages);
	pa->allocs += pcp->allocs;
	pa->frees += pcp->frees;
	pthread_mutex_unlock(&pa->lock);
	pthread_spin_unlock(&pcp->lock);
	pthread_mutex_unlock(&pa->pcp_list_lock);
	pthread_spin_destroy(&pcp->lock);
	free(pcp);
}

/* This thread's cache, made on first use; NULL if caches are off or memory is short. */
static struct pcp *this_pcp(struct pgalloc *pa)
{
	struct pcp *pcp;

	if (!pa->use_pcp)
		return NULL;
	pcp = pthread_getspecific(pa->pcp_key);
	if (likely(pcp))
		return pcp;
	/* The allocator's own bookkeeping, like its bitmaps: not a kmalloc user. */
	pcp = calloc(1, sizeof(*pcp));
	if (!pcp)
		return NULL;
	pthread_spin_init(&pcp->lock, PTHREAD_PROCESS_PRIVATE);
	pcp->pa = pa;
	if (pthread_setspecific(pa->pcp_key, pcp)) {
		free(pcp);
		return NULL;
	}
	pthread_mutex_lock(&pa->pcp_list_lock);
	pcp->next = pa->pcps;
	pa->pcps = pcp;
	pthread_mutex_unlock(&pa->pcp_list_lock);
	return pcp;
}

struct pgalloc *pgalloc_create(size_t budget_bytes, size_t arena_bytes,
			       unsigned int flags)
{
	pthread_mutexattr_t attr;
	size_t total, per_arena, left;
	unsigned int nr, i;
	struct pgalloc *pa;

	if (!arena_bytes || arena_bytes > PGALLOC_MAX_ARENA_BYTES)
		arena_bytes = PGALLOC_MAX_ARENA_BYTES;
	total = DIV_ROUND_UP(budget_bytes, PAGE_SIZE);
	per_arena = arena_bytes / PAGE_SIZE;
	if (!total || !per_arena) {
		errno = EINVAL;
		return NULL;
	}
	nr = (unsigned int)DIV_ROUND_UP(total, per_arena);

	pa = kzalloc(sizeof(*pa) + nr * sizeof(struct arena), BLK_GFP_WAIT);
	if (!pa) {
		errno = ENOMEM;
		return NULL;
	}
	/*
	 * Critical sections are a few dozen ns of bitmap work: spinning
	 * briefly beats a futex sleep when two threads collide.
	 */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&pa->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_cond_init(&pa->wait, NULL);
	pthread_mutex_init(&pa->pcp_list_lock, NULL);
	pa->total_pages = pa->free_pages = total;
	pa->locked = (flags & PGALLOC_MLOCK) != 0;
	pa->use_pcp = total >= PCP_MIN_PAGES &&
		      !pthread_key_create(&pa->pcp_key, pcp_release);

	left = total;
	for (i = 0; i < nr; i++) {
		struct arena *a = &pa->arenas[i];
		size_t n = left < per_arena ? left : per_arena;
		void *base;

		base = mmap(NULL, n * PAGE_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base == MAP_FAILED)
			goto fail;
		a->base = base;
		a->nr_pages = a->nr_free = n;
		pa->nr_arenas = i + 1;
		a->bitmap = kzalloc(bitmap_words(n) * sizeof(uint64_t),
				    BLK_GFP_WAIT);
		if (!a->bitmap)
			goto fail;
		/* Bits past the last page read as allocated, so no scan hands them out. */
		if (n % BITS_PER_WORD)
			a->bitmap[n / BITS_PER_WORD] = ~0ull << (n % BITS_PER_WORD);
		/* Fewer TLB misses when copying large bios; a hint only. */
		madvise(base, n * PAGE_SIZE, MADV_HUGEPAGE);
		/*
		 * Locked arenas cannot be swapped out, so the I/O path never
		 * waits on swap-in while the kernel may be waiting on us (a
		 * loop device on our FUSE file).  Best effort: without
		 * RLIMIT_MEMLOCK we run unlocked and report it.
		 */
		if (pa->locked && mlock(base, n * PAGE_SIZE))
			pa->locked = false;
		if (n > pa->max_arena_pages)
			pa->max_arena_pages = n;
		left -= n;
	}
	return pa;

fail:
	pgalloc_destroy(pa);
	errno = ENOMEM;
	return NULL;
}

void pgalloc_destroy(struct pgalloc *pa)
{
	struct pcp *pcp, *next;
	unsigned int i;

	if (!pa)
		return;
	if (pa->use_pcp) {
		/* Threads still alive keep a dangling key value; it is never read again. */
		pthread_key_delete(pa->pcp_key);
		for (pcp = pa->pcps; pcp; pcp = next) {
			next = pcp->next;
			pthread_spin_destroy(&pcp->lock);
			free(pcp);
		}
	}
	for (i = 0; i < pa->nr_arenas; i++) {
		struct arena *a = &pa->arenas[i];

		if (a->base)
			munmap(a->base, a->nr_pages * PAGE_SIZE);
		kfree(a->bitmap);
	}
	pthread_mutex_destroy(&pa->pcp_list_lock);
	pthread_cond_destroy(&pa->wait);
	pthread_mutex_destroy(&pa->lock);
	kfree(pa);
}

int pgalloc_arena_of(const struct pgalloc *pa, const void *addr)
{
	return arena_index(pa, addr);
}

/*
 * Wait for a free, but not forever: a thread's cache refill can race with
 * our drain, and the next look drains again.
 */
static void timed_wait(struct pgalloc *pa)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += WAIT_RETRY_NS;
	if (ts.tv_nsec >= 1000000000l) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000l;
	}
	pthread_cond_timedwait(&pa->wait, &pa->lock, &ts);
}

/*
 * Sleep until @enough(pa, arg) holds.  Called and returns with lock held.
 * Registering as a waiter first makes every later free bypass the caches
 * and wake us; draining then catches the pages freed into caches before.
 */
static void wait_until(struct pgalloc *pa, bool (*enough)(struct pgalloc *, size_t),
		       size_t arg)
{
	pa->waits++;
	atomic_fetch_add(&pa->waiters, 1);
	while (!enough(pa, arg)) {
		pthread_mutex_unlock(&pa->lock);
		drain_all_pages(pa);
		pthread_mutex_lock(&pa->lock);
		if (enough(pa, arg))
			break;
		timed_wait(pa);
	}
	atomic_fetch_sub(&pa->waiters, 1);
}

/* Find and take a run of @nr pages. Holds lock. NULL if none. */
static void *take_run(struct pgalloc *pa, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < pa->nr_arenas; i++) {
		struct arena *a = &pa->arenas[i];
		long start = arena_find_run(a, nr);

		if (start >= 0) {
			bitmap_set_range(a->bitmap, (size_t)start, nr);
			a->nr_free -= nr;
			pa->free_pages -= nr;
			pa->allocs += nr;
			return a->base + (size_t)start * PAGE_SIZE;
		}
	}
	return NULL;
}

static bool run_free(struct pgalloc *pa, size_t nr)
{
	unsigned int i;

	for (i = 0; i < pa->nr_arenas; i++)
		if (arena_find_run(&pa->arenas[i], nr) >= 0)
			return true;
	return false;
}

int page_alloc_contig(struct pgalloc *pa, unsigned int nr_pages,
		      blk_gfp_t gfp, void **addr)
{
	void *p;

	if (!nr_pages || nr_pages > pa->max_arena_pages)
		return -EINVAL;
	if (unlikely(atomic_load_explicit(&fail_page_alloc.enabled,
					  memory_order_relaxed))) {
		for (unsigned int i = 0; i < nr_pages; i++) {
			if (should_fail(&fail_page_alloc)) {
				pthread_mutex_lock(&pa->lock);
				pa->failures++;
				pthread_mutex_unlock(&pa->lock);
				return -ENOMEM;
			}
		}
	}

	pthread_mutex_lock(&pa->lock);
	p = take_run(pa, nr_pages);
	if (!p && pa->use_pcp) {
		/* Cached single pages may be what splits the run. */
		pthread_mutex_unlock(&pa->lock);
		drain_all_pages(pa);
		pthread_mutex_lock(&pa->lock);
		p = take_run(pa, nr_pages);
	}
	if (!p && (gfp & BLK_GFP_WAIT)) {
		wait_until(pa, run_free, nr_pages);
		p = take_run(pa, nr_pages);
	}
	if (!p)
		pa->failures++;
	pthread_mutex_unlock(&pa->lock);
	if (!p)
		return -ENOMEM;
	if (gfp & BLK_GFP_ZERO)
		memset(p, 0, (size_t)nr_pages * PAGE_SIZE);
	*addr = p;
	return 0;
}

void page_free_contig(struct pgalloc *pa, void *addr, unsigned int nr_pages)
{
	struct arena *a;
	size_t first;
	int idx;

	if (!addr || !nr_pages)
		return;
	idx = arena_index(pa, addr);
	BUG_ON(idx < 0 || ((uintptr_t)addr & (PAGE_SIZE - 1)));
	a = &pa->arenas[idx];
	first = (size_t)((char *)addr - a->base) / PAGE_SIZE;
	BUG_ON(first + nr_pages > a->nr_pages);

	pthread_mutex_lock(&pa->lock);
	bitmap_clear_range(a->bitmap, first, nr_pages);
	a->nr_free += nr_pages;
	arena_freed(a, first);
	pa->free_pages += nr_pages;
	pa->frees += nr_pages;
	if (atomic_load(&pa->waiters))
		pthread_cond_broadcast(&pa->wait);
	pthread_mutex_unlock(&pa->lock);
}

/* Fast path: @nr pages from this thread's cache, refilling it in a batch. */
static bool pcp_alloc(struct pgalloc *pa, unsigned int nr, void **pages)
{
	struct pcp *pcp = this_pcp(pa);

	if (!pcp || nr > PCP_HIGH / 2)
		return false;
	pthread_spin_lock(&pcp->lock);
	if (pcp->count < nr) {
		/* While someone sleeps for pages, take no more than we need. */
		unsigned int want = nr - pcp->count +
				    (atomic_load(&pa->waiters) ? 0 : PCP_BATCH);

		pthread_mutex_lock(&pa->lock);
		if (want > pa->free_pages)
			want = (unsigned int)pa->free_pages;
		pcp->count += take_pages(pa, want, pcp->pages + pcp->count);
		pthread_mutex_unlock(&pa->lock);
	}
	if (pcp->count < nr) {
		pthread_spin_unlock(&pcp->lock);
		return false;
	}
	pcp->count -= nr;
	memcpy(pages, pcp->pages + pcp->count, nr * sizeof(void *));
	pcp->allocs += nr;
	pthread_spin_unlock(&pcp->lock);
	return true;
}

static bool pages_free(struct pgalloc *pa, size_t nr)
{
	return pa->free_pages >= nr;
}

unsigned int page_alloc_bulk(struct pgalloc *pa, blk_gfp_t gfp,
			     unsigned int nr, void **pages)
{
	unsigned int want = nr, got, i;

	if (!nr)
		return 0;
	/* Injected failures count per page, so a caller can fail at page k. */
	if (unlikely(atomic_load_explicit(&fail_page_alloc.enabled,
					  memory_order_relaxed))) {
		for (want = 0; want < nr; want++)
			if (should_fail(&fail_page_alloc))
				break;
	}
	if (want == nr && pcp_alloc(pa, nr, pages)) {
		got = nr;
		goto out;
	}

	pthread_mutex_lock(&pa->lock);
	if (pa->free_pages < want && pa->use_pcp) {
		pthread_mutex_unlock(&pa->lock);
		drain_all_pages(pa);
		pthread_mutex_lock(&pa->lock);
	}
	/* All or nothing: holding a part while waiting could deadlock. */
	if ((gfp & BLK_GFP_WAIT) && want == nr && nr <= pa->total_pages &&
	    pa->free_pages < nr)
		wait_until(pa, pages_free, nr);
	got = take_pages(pa, want < pa->free_pages ? want : (unsigned int)pa->free_pages,
			 pages);
	pa->allocs += got;
	if (got < nr)
		pa->failures++;
	pthread_mutex_unlock(&pa->lock);
out:
	if (gfp & BLK_GFP_ZERO)
		for (i = 0; i < got; i++)
			memset(pages[i], 0, PAGE_SIZE);
	return got;
}

void page_free_bulk(struct pgalloc *pa, unsigned int nr, void *const *pages)
{
	struct pcp *pcp;

	if (!nr)
		return;
	pcp = nr <= PCP_HIGH / 2 ? this_pcp(pa) : NULL;
	if (pcp) {
		pthread_spin_lock(&pcp->lock);
		/* A sleeper must see these pages: no parking them now. */
		if (likely(!atomic_load(&pa->waiters))) {
			if (pcp->count + nr > PCP_HIGH) {
				/* Flush the coldest pages, at the bottom of the stack. */
				unsigned int out = pcp->count + nr - PCP_HIGH + PCP_BATCH;

				if (out > pcp->count)
					out = pcp->count;
				arenas_free(pa, out, pcp->pages);
				memmove(pcp->pages, pcp->pages + out,
					(pcp->count - out) * sizeof(void *));
				pcp->count -= out;
			}
			memcpy(pcp->pages + pcp->count, pages, nr * sizeof(void *));
			pcp->count += nr;
			pcp->frees += nr;
			pthread_spin_unlock(&pcp->lock);
			return;
		}
		pthread_spin_unlock(&pcp->lock);
	}
	pthread_mutex_lock(&pa->lock);
	put_pages(pa, nr, pages);
	pa->frees += nr;
	pthread_mutex_unlock(&pa->lock);
}

void *page_alloc(struct pgalloc *pa, blk_gfp_t gfp)
{
	void *page;

	return page_alloc_bulk(pa, gfp, 1, &page) == 1 ? page : NULL;
}

void page_free(struct pgalloc *pa, void *page)
{
	if (page)
		page_free_bulk(pa, 1, &page);
}

unsigned int pgalloc_nr_arenas(const struct pgalloc *pa)
{
	return pa->nr_arenas;
}

void pgalloc_arena(const struct pgalloc *pa, unsigned int idx, void **base,
		   size_t *len)
{
	BUG_ON(idx >= pa->nr_arenas);
	*base = pa->arenas[idx].base;
	*len = pa->arenas[idx].nr_pages * PAGE_SIZE;
}

void pgalloc_get_stats(struct pgalloc *pa, struct pgalloc_stats *st)
{
	struct pcp *pcp;

	/* Every lock, in order, so cached pages are counted exactly once. */
	pthread_mutex_lock(&pa->pcp_list_lock);
	for (pcp = pa->pcps; pcp; pcp = pcp->next)
		pthread_spin_lock(&pcp->lock);
	pthread_mutex_lock(&pa->lock);
	st->total_pages = pa->total_pages;
	st->free_pages = pa->free_pages;
	st->nr_arenas = pa->nr_arenas;
	st->locked = pa->locked;
	st->allocs = pa->allocs;
	st->frees = pa->frees;
	st->failures = pa->failures;
	st->waits = pa->waits;
	for (pcp = pa->pcps; pcp; pcp = pcp->next) {
		st->free_pages += pcp->count;
		st->allocs += pcp->allocs;
		st->frees += pcp->frees;
	}
	pthread_mutex_unlock(&pa->lock);
	for (pcp = pa->pcps; pcp; pcp = pcp->next)
		pthread_spin_unlock(&pcp->lock);
	pthread_mutex_unlock(&pa->pcp_list_lock);
}
