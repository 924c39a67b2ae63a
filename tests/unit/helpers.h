/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the core unit tests: the PRNG (tests/rand.h), clocks,
 * bounded waiting, bio completion counters, and a small test queue whose
 * queue_rq() completes requests (inline or on a worker thread) against a
 * flat in-memory "disk".
 */
#ifndef BLOCKD_TESTS_UNIT_HELPERS_H
#define BLOCKD_TESTS_UNIT_HELPERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "core/bio.h"
#include "core/request.h"
#include "tests/rand.h"

/* Per-test timeout for Check (seconds); every tcase uses it or less. */
#define TEST_TIMEOUT	20

/* Monotonic time. */
uint64_t now_ns(void);
static inline double now_sec(void)
{
	return (double)now_ns() / 1e9;
}
void sleep_ms(unsigned int ms);

/* Poll @cond every 100 us until it holds or @ms pass; the final value. */
#define wait_until(cond, ms)						\
	({								\
		uint64_t __deadline = now_ns() + (uint64_t)(ms) * 1000000ull; \
		bool __ok;						\
		while (!(__ok = (cond)) && now_ns() < __deadline)	\
			usleep(100);					\
		__ok;							\
	})

/* Fail the test, naming @cond, unless it holds within @ms. */
#define ck_assert_wait(cond, ms)					\
	ck_assert_msg(wait_until(cond, ms),				\
		      "timed out after %u ms waiting for: %s",		\
		      (unsigned int)(ms), #cond)

/*
 * Bio completion bookkeeping: bi_private points at a struct bio_done;
 * done_end_io() counts the call and records the status (and the order, via
 * a shared sequence counter).  done_put_end_io() also puts the bio.
 */
struct bio_done {
	atomic_int calls;
	atomic_int status;
	atomic_int seq;			/* value of *order when it ran */
	atomic_int *order;		/* optional shared sequence counter */
};

void bio_done_init(struct bio_done *d, atomic_int *order);

/* Functions, not macros, so Check's failure messages stay readable. */
static inline int done_calls(struct bio_done *d)
{
	return atomic_load(&d->calls);
}

static inline int done_status(struct bio_done *d)
{
	return atomic_load(&d->status);
}
void done_end_io(struct bio *bio);
void done_put_end_io(struct bio *bio);

/* A kmalloc'ed bio with one segment [buf, buf+len) for @q at @sector. */
struct bio *mk_bio(struct blk_queue *q, blk_opf_t opf, sector_t sector,
		   void *buf, unsigned int len, struct bio_done *done);

/* What the test queue saw of one request, at queue_rq() time. */
struct tq_record {
	blk_opf_t opf;
	sector_t sector;
	uint64_t bytes;
	unsigned int nr_bios;
	unsigned int nr_segs;
};

#define TQ_MAX_RECORDS	64

struct test_queue {
	struct blk_queue q;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct request *head, *tail;	/* pending, linked through driver_data */
	pthread_t worker;
	bool threaded;
	bool stop;
	unsigned char *disk;
	size_t disk_bytes;
	blk_status_t status;		/* every request ends with this */
	unsigned int delay_us;		/* the worker waits this before each */
	atomic_uint nr_queue_rq;
	atomic_uint nr_done;
	atomic_ulong bytes_done;
	atomic_uint errors;		/* malformed requests seen */
	unsigned int nr_records;	/* under lock; records[] keeps the first */
	struct tq_record records[TQ_MAX_RECORDS];
};

/*
 * Set up @tq with a zeroed disk of @disk_bytes and limits @lim (NULL:
 * defaults); @threaded completes on a worker thread, else inside
 * queue_rq().  Returns 0 or a negative errno.
 */
int tq_init(struct test_queue *tq, size_t disk_bytes,
	    const struct queue_limits *lim, bool threaded);

/* Complete what is pending, stop the worker, free everything. */
void tq_exit(struct test_queue *tq);

/* Copy of record @i (under the lock). */
struct tq_record tq_record(struct test_queue *tq, unsigned int i);
unsigned int tq_nr_records(struct test_queue *tq);

/* Data model helpers: copy the bytes a bio iterator covers into @out. */
size_t iter_to_flat(const struct bio_vec *table, struct bvec_iter iter,
		    unsigned char *out);

#endif
