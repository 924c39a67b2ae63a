/* SPDX-License-Identifier: MIT */
/*
 * Block range locks; see range_lock.h.  A plain list in arrival order: the
 * entries listed at once are the writes in flight to one device, a few
 * hundred at most, and it is scanned only while an exclusive entry is in
 * it.
 */
#include <config.h>

#include "core/range_lock.h"

void range_lock_tree_init(struct range_lock_tree *t)
{
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->head = t->tail = NULL;
	t->nr_exclusive = t->nr_waiting = t->nr_sleepers = 0;
}

void range_lock_tree_destroy(struct range_lock_tree *t)
{
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}

static bool overlap(const struct range_lock *a, const struct range_lock *b)
{
	return a->start < b->end && b->start < a->end;
}

/* Whether an entry listed before @rl keeps it waiting. Holds t->lock. */
static bool blocked(const struct range_lock_tree *t, const struct range_lock *rl)
{
	const struct range_lock *x;

	if (!t->nr_exclusive)
		return false;
	for (x = t->head; x != rl; x = x->next)
		if ((x->exclusive || rl->exclusive) && overlap(x, rl))
			return true;
	return false;
}

/* Append @rl and say whether it is granted. Holds t->lock. */
static bool list_add(struct range_lock_tree *t, struct range_lock *rl,
		     uint64_t start, uint64_t end, bool exclusive)
{
	rl->start = start;
	rl->end = end;
	rl->exclusive = exclusive;
	rl->next = NULL;
	rl->wake = NULL;
	rl->prev = t->tail;
	if (t->tail)
		t->tail->next = rl;
	else
		t->head = rl;
	t->tail = rl;
	if (exclusive)
		t->nr_exclusive++;
	rl->granted = !blocked(t, rl);
	if (!rl->granted)
		t->nr_waiting++;
	return rl->granted;
}

bool range_lock_try(struct range_lock_tree *t, struct range_lock *rl,
		    uint64_t start, uint64_t end, bool exclusive,
		    range_grant_fn *grant)
{
	bool granted;

	rl->grant = grant;
	pthread_mutex_lock(&t->lock);
	granted = list_add(t, rl, start, end, exclusive);
	pthread_mutex_unlock(&t->lock);
	return granted;
}

void range_lock_wait(struct range_lock_tree *t, struct range_lock *rl,
		     uint64_t start, uint64_t end, bool exclusive)
{
	rl->grant = NULL;
	pthread_mutex_lock(&t->lock);
	if (!list_add(t, rl, start, end, exclusive)) {
		t->nr_sleepers++;
		while (!rl->granted)
			pthread_cond_wait(&t->cond, &t->lock);
		t->nr_sleepers--;
	}
	pthread_mutex_unlock(&t->lock);
}

void range_unlock(struct range_lock_tree *t, struct range_lock *rl)
{
	struct range_lock *w, *wake = NULL, **tail = &wake;
	bool sleepers = false;

	pthread_mutex_lock(&t->lock);
	if (rl->prev)
		rl->prev->next = rl->next;
	else
		t->head = rl->next;
	if (rl->next)
		rl->next->prev = rl->prev;
	else
		t->tail = rl->prev;
	if (rl->exclusive)
		t->nr_exclusive--;
	for (w = t->head; w && t->nr_waiting; w = w->next) {
		if (w->granted || blocked(t, w))
			continue;
		w->granted = true;
		t->nr_waiting--;
		if (!w->grant) {
			sleepers = true;
			continue;
		}
		w->wake = NULL;
		*tail = w;
		tail = &w->wake;
	}
	if (sleepers)
		pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);

	/* Each goes on its own way; once its callback ran, it is not ours. */
	while (wake) {
		w = wake;
		wake = w->wake;
		w->grant(w);
	}
}
