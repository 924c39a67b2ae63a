/* SPDX-License-Identifier: MIT */
/*
 * mempool, after mm/mempool.c.  The reserve is a stack (last freed, first
 * reused, as in the kernel), and the fast paths take no lock: allocation
 * asks the underlying allocator first, and free only looks at the reserve
 * when it is below min_nr.
 */
#include <errno.h>
#include <stdbool.h>
#include <time.h>

#include "compiler.h"
#include "kmem.h"
#include "mempool.h"

/*
 * A sleeping allocator retries the underlying allocator this often even
 * without a wake-up, since memory may come back there rather than to the
 * pool (the kernel waits 5 s; userspace allocators recover faster).
 */
#define MEMPOOL_RETRY_MS	200

static void add_element(mempool_t *pool, void *element)
{
	int n = atomic_load_explicit(&pool->curr_nr, memory_order_relaxed);

	BUG_ON(n >= pool->min_nr);
	pool->elements[n] = element;
	atomic_store(&pool->curr_nr, n + 1);
}

static void *remove_element(mempool_t *pool)
{
	int n = atomic_load_explicit(&pool->curr_nr, memory_order_relaxed) - 1;

	BUG_ON(n < 0);
	atomic_store(&pool->curr_nr, n);
	return pool->elements[n];
}

void mempool_exit(mempool_t *pool)
{
	while (atomic_load(&pool->curr_nr))
		pool->free(remove_element(pool), pool->pool_data);
	kfree(pool->elements);
	pool->elements = NULL;
	pthread_cond_destroy(&pool->wait);
	pthread_mutex_destroy(&pool->lock);
}

int mempool_init(mempool_t *pool, int min_nr, mempool_alloc_t *alloc,
		 mempool_free_t *free, void *pool_data)
{
	if (min_nr < 0)
		return -EINVAL;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wait, NULL);
	pool->min_nr = min_nr;
	atomic_init(&pool->curr_nr, 0);
	atomic_init(&pool->waits, 0);
	atomic_init(&pool->reserve_allocs, 0);
	pool->pool_data = pool_data;
	pool->alloc = alloc;
	pool->free = free;
	pool->elements = kcalloc(min_nr ? (size_t)min_nr : 1, sizeof(void *),
				 BLK_GFP_WAIT);
	if (!pool->elements)
		goto fail;

	while (atomic_load(&pool->curr_nr) < min_nr) {
		void *element = alloc(BLK_GFP_WAIT, pool_data);

		if (!element)
			goto fail;
		add_element(pool, element);
	}
	return 0;

fail:
	if (pool->elements)
		mempool_exit(pool);
	else {
		pthread_cond_destroy(&pool->wait);
		pthread_mutex_destroy(&pool->lock);
	}
	return -ENOMEM;
}

mempool_t *mempool_create(int min_nr, mempool_alloc_t *alloc,
			  mempool_free_t *free, void *pool_data)
{
	mempool_t *pool = kzalloc(sizeof(*pool), BLK_GFP_WAIT);

	if (!pool)
		return NULL;
	if (mempool_init(pool, min_nr, alloc, free, pool_data)) {
		kfree(pool);
		return NULL;
	}
	return pool;
}

void mempool_destroy(mempool_t *pool)
{
	if (!pool)
		return;
	mempool_exit(pool);
	kfree(pool);
}

int mempool_resize(mempool_t *pool, int new_min_nr)
{
	void **new_elements;

	if (new_min_nr <= 0)
		return -EINVAL;

	pthread_mutex_lock(&pool->lock);
	if (new_min_nr <= pool->min_nr) {
		while (atomic_load(&pool->curr_nr) > new_min_nr) {
			void *element = remove_element(pool);

			pthread_mutex_unlock(&pool->lock);
			pool->free(element, pool->pool_data);
			pthread_mutex_lock(&pool->lock);
		}
		pool->min_nr = new_min_nr;
		goto out_unlock;
	}
	pthread_mutex_unlock(&pool->lock);

	new_elements = kcalloc((size_t)new_min_nr, sizeof(void *), BLK_GFP_WAIT);
	if (!new_elements)
		return -ENOMEM;

	pthread_mutex_lock(&pool->lock);
	if (new_min_nr <= pool->min_nr) {
		/* Raced with another resize; try again. */
		pthread_mutex_unlock(&pool->lock);
		kfree(new_elements);
		return mempool_resize(pool, new_min_nr);
	}
	for (int i = 0; i < atomic_load(&pool->curr_nr); i++)
		new_elements[i] = pool->elements[i];
	kfree(pool->elements);
	pool->elements = new_elements;
	pool->min_nr = new_min_nr;

	while (atomic_load(&pool->curr_nr) < pool->min_nr) {
		void *element;

		pthread_mutex_unlock(&pool->lock);
		element = pool->alloc(BLK_GFP_WAIT, pool->pool_data);
		if (!element)
			return -ENOMEM;
		pthread_mutex_lock(&pool->lock);
		if (atomic_load(&pool->curr_nr) < pool->min_nr) {
			add_element(pool, element);
		} else {
			pthread_mutex_unlock(&pool->lock);
			pool->free(element, pool->pool_data);
			pthread_mutex_lock(&pool->lock);
		}
	}
	pthread_cond_broadcast(&pool->wait);
out_unlock:
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

void *mempool_alloc(mempool_t *pool, blk_gfp_t gfp)
{
	/* The first attempt never sleeps: the reserve is better than waiting. */
	blk_gfp_t gfp_temp = gfp & ~BLK_GFP_WAIT;
	bool waited = false;
	void *element;

	for (;;) {
		element = pool->alloc(gfp_temp, pool->pool_data);
		if (likely(element))
			return element;

		pthread_mutex_lock(&pool->lock);
		if (likely(atomic_load(&pool->curr_nr))) {
			element = remove_element(pool);
			pthread_mutex_unlock(&pool->lock);
			atomic_fetch_add(&pool->reserve_allocs, 1);
			return element;
		}

		if (!(gfp & BLK_GFP_WAIT)) {
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}

		/* Reserve empty: try the allocator once more, then sleep. */
		if (gfp_temp != gfp) {
			pthread_mutex_unlock(&pool->lock);
			gfp_temp = gfp;
			continue;
		}

		if (!waited) {
			atomic_fetch_add(&pool->waits, 1);
			waited = true;
		}
		{
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += MEMPOOL_RETRY_MS * 1000000l;
			if (ts.tv_nsec >= 1000000000l) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000l;
			}
			pthread_cond_timedwait(&pool->wait, &pool->lock, &ts);
		}
		pthread_mutex_unlock(&pool->lock);
	}
}

void mempool_free(void *element, mempool_t *pool)
{
	if (unlikely(!element))
		return;

	/*
	 * Refill the reserve before anything else: a reserve that is not
	 * full is what a waiter is waiting for.  The unlocked read may be
	 * stale; the locked check decides.
	 */
	if (unlikely(atomic_load(&pool->curr_nr) < pool->min_nr)) {
		pthread_mutex_lock(&pool->lock);
		if (atomic_load(&pool->curr_nr) < pool->min_nr) {
			add_element(pool, element);
			pthread_cond_signal(&pool->wait);
			pthread_mutex_unlock(&pool->lock);
			return;
		}
		pthread_mutex_unlock(&pool->lock);
	}
	pool->free(element, pool->pool_data);
}

void *mempool_kmalloc(blk_gfp_t gfp, void *pool_data)
{
	return kmalloc((size_t)pool_data, gfp);
}

void mempool_kfree(void *element, void *pool_data)
{
	(void)pool_data;
	kfree(element);
}
