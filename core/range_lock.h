/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_RANGE_LOCK_H
#define BLOCKD_CORE_RANGE_LOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Block range locks, in arrival order.
 *
 * A read-modify-write rewrites bytes it was not asked to write, so it must
 * not overlap in time with another write to the same blocks: two RMWs of
 * one block would lose one's bytes.  Every such writer lists a range here
 * before it starts; an exclusive entry (an RMW) waits for every earlier
 * entry it overlaps, and a shared entry (a plain write, trim or zeroing)
 * waits only for an earlier exclusive one it overlaps.  Shared entries
 * never wait for each other, and while nothing exclusive is listed no list
 * is scanned, so writers that never RMW pay one mutex round trip.
 *
 * Arrival order makes it fair: a stream of shared writers cannot starve an
 * RMW, since each one listed after it waits behind it.
 *
 * An entry that cannot be granted at once is granted later by the thread
 * that releases what it waits for: either its @grant callback runs there
 * (an event loop posts the waiter back to its own thread), or, for
 * range_lock_wait(), the sleeping thread is woken.
 */

struct range_lock;

/* A waiter became granted; runs on the releasing thread, no lock held. */
typedef void (range_grant_fn)(struct range_lock *rl);

/* One writer's claim on [start, end). Embed it in the caller's state. */
struct range_lock {
	uint64_t start, end;
	bool exclusive;
	bool granted;
	range_grant_fn *grant;		/* NULL: a sleeper in range_lock_wait() */
	struct range_lock *prev, *next;	/* the tree's list, oldest first */
	struct range_lock *wake;	/* release's list of entries to grant */
};

/* The ranges of one device. */
struct range_lock_tree {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* range_lock_wait()'s sleepers */
	struct range_lock *head, *tail;
	unsigned int nr_exclusive;	/* listed exclusive entries */
	unsigned int nr_waiting;	/* listed entries not yet granted */
	unsigned int nr_sleepers;	/* of those, in range_lock_wait() */
};

/**
 * range_lock_tree_init - set up an empty tree
 * @t: the tree
 */
void range_lock_tree_init(struct range_lock_tree *t);

/**
 * range_lock_tree_destroy - free a tree's mutex and condition
 * @t: the tree, with nothing listed
 */
void range_lock_tree_destroy(struct range_lock_tree *t);

/**
 * range_lock_try - list @rl for [@start, @end) behind every earlier entry
 * @t: the tree
 * @rl: the caller's entry, unlisted
 * @start: first byte
 * @end: byte after the last
 * @exclusive: true for a read-modify-write
 * @grant: called with @rl once it is granted, if it is not granted now
 *
 * Return: true if @rl holds the range now; false if it waits, in which
 * case @grant(@rl) runs once it is granted, on the thread whose
 * range_unlock() let it go.  Either way @rl is listed until range_unlock().
 */
bool range_lock_try(struct range_lock_tree *t, struct range_lock *rl,
		    uint64_t start, uint64_t end, bool exclusive,
		    range_grant_fn *grant);

/**
 * range_lock_wait - range_lock_try() that sleeps until granted
 * @t: the tree
 * @rl: the caller's entry, unlisted
 * @start: first byte
 * @end: byte after the last
 * @exclusive: true for a read-modify-write
 *
 * For threads that may block (a syscall worker pool).  Never call it on an
 * event loop: the entry it waits for may be completed by that loop.
 */
void range_lock_wait(struct range_lock_tree *t, struct range_lock *rl,
		     uint64_t start, uint64_t end, bool exclusive);

/**
 * range_unlock - unlist @rl and grant every waiter that may go on now
 * @t: the tree
 * @rl: a listed entry, granted
 *
 * Grant callbacks run here, after the tree's mutex is dropped; once one
 * has run its entry is not ours to touch.
 */
void range_unlock(struct range_lock_tree *t, struct range_lock *rl);

#endif
