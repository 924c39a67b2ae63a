/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_MEMPOOL_H
#define BLOCKD_CORE_MEMPOOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include "gfp.h"

/*
 * mempool: an allocator with a reserve, following mm/mempool.c.
 *
 * An allocation first asks the underlying allocator (without sleeping),
 * then takes an element from the reserve, and with BLK_GFP_WAIT finally
 * sleeps until an element is freed to the pool; so mempool_alloc() with
 * WAIT never returns NULL.  mempool_free() refills the reserve before
 * giving anything back to the underlying allocator, and wakes waiters.
 * The reserve guarantees forward progress as long as every element that is
 * allocated is eventually freed without needing a further allocation from
 * the same pool.
 */

typedef void *(mempool_alloc_t)(blk_gfp_t gfp, void *pool_data);
typedef void (mempool_free_t)(void *element, void *pool_data);

typedef struct mempool {
	pthread_mutex_t lock;
	pthread_cond_t wait;
	int min_nr;		/* size of the reserve */
	atomic_int curr_nr;	/* elements in the reserve now */
	void **elements;	/* the reserve, used as a stack */
	void *pool_data;
	mempool_alloc_t *alloc;
	mempool_free_t *free;
	atomic_ulong waits;	/* allocations that slept */
	atomic_ulong reserve_allocs;	/* allocations served from the reserve */
} mempool_t;

/**
 * mempool_init - initialise @pool and fill its reserve
 * @pool: the pool
 * @min_nr: elements in the reserve
 * @alloc: the underlying allocator, which fills the reserve
 * @free: gives elements back to it
 * @pool_data: passed to @alloc and @free
 *
 * Return: 0, or -ENOMEM (nothing is left allocated).
 */
int mempool_init(mempool_t *pool, int min_nr, mempool_alloc_t *alloc,
		 mempool_free_t *free, void *pool_data);

/**
 * mempool_exit - free the reserve
 * @pool: the pool; every element must have come back
 */
void mempool_exit(mempool_t *pool);

/**
 * mempool_create - a heap-allocated pool, as mempool_init() sets it up
 * @min_nr: elements in the reserve
 * @alloc: the underlying allocator
 * @free: gives elements back to it
 * @pool_data: passed to @alloc and @free
 *
 * Return: the pool, or NULL on failure.
 */
mempool_t *mempool_create(int min_nr, mempool_alloc_t *alloc,
			  mempool_free_t *free, void *pool_data);

/**
 * mempool_destroy - mempool_exit() and free a pool from mempool_create()
 * @pool: the pool; NULL is a no-op
 */
void mempool_destroy(mempool_t *pool);

/**
 * mempool_resize - grow or shrink the reserve to @new_min_nr
 * @pool: the pool
 * @new_min_nr: the reserve's new size
 *
 * Return: 0, -EINVAL for a size below 1, or -ENOMEM when growing fails;
 * the reserve's size is then already @new_min_nr but it holds fewer
 * elements, and frees refill it.
 */
int mempool_resize(mempool_t *pool, int new_min_nr);

/**
 * mempool_alloc - an element of @pool
 * @pool: the pool
 * @gfp: with BLK_GFP_WAIT, sleep until an element is freed
 *
 * Return: an element, or NULL only without BLK_GFP_WAIT.
 */
void *mempool_alloc(mempool_t *pool, blk_gfp_t gfp);

/**
 * mempool_free - give @element back
 * @element: what mempool_alloc() returned; NULL is a no-op
 * @pool: the pool it came from
 */
void mempool_free(void *element, mempool_t *pool);

/**
 * mempool_reserve_count - elements in the reserve now
 * @pool: the pool
 *
 * Return: the number of elements.
 */
static inline int mempool_reserve_count(mempool_t *pool)
{
	return atomic_load(&pool->curr_nr);
}

/**
 * mempool_kmalloc - the allocator of a pool of fixed-size kmalloc objects
 * @gfp: allocation flags
 * @pool_data: the object's size
 *
 * Return: an object, or NULL.
 */
void *mempool_kmalloc(blk_gfp_t gfp, void *pool_data);

/**
 * mempool_kfree - the free of a pool of fixed-size kmalloc objects
 * @element: the object
 * @pool_data: the object's size
 */
void mempool_kfree(void *element, void *pool_data);

/**
 * mempool_init_kmalloc_pool - mempool_init() for objects of @size bytes
 * @pool: the pool
 * @min_nr: elements in the reserve
 * @size: bytes per object
 *
 * Return: 0 or -ENOMEM.
 */
static inline int mempool_init_kmalloc_pool(mempool_t *pool, int min_nr,
					    size_t size)
{
	return mempool_init(pool, min_nr, mempool_kmalloc, mempool_kfree,
			    (void *)size);
}

#endif
