// SPDX-License-Identifier: MIT
/* Queues, requests, submission and plugging (core/request.h). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/kmem.h"
#include "helpers.h"
#include "suites.h"

#define DISK_BYTES	(4u << 20)

static struct test_queue tq;
static unsigned char *buf;		/* 64 KiB of patterned memory */
static struct bio_done done[16];

static void setup(void)
{
	struct rng r;

	ck_assert_int_eq(tq_init(&tq, DISK_BYTES, NULL, false), 0);
	buf = malloc(64 * 1024);
	ck_assert_ptr_nonnull(buf);
	rng_seed(&r, 4242);
	rng_fill(&r, buf, 64 * 1024);
	for (size_t i = 0; i < ARRAY_SIZE(done); i++)
		bio_done_init(&done[i], NULL);
}

static void teardown(void)
{
	tq_exit(&tq);
	free(buf);
}

/* bios[i]: @n bios of @len bytes at sectors start + i*len/512, memory from @mem. */
static void mk_bios(struct bio **bios, int n, struct blk_queue *q, blk_opf_t opf,
		    sector_t start, unsigned char *mem, unsigned int len,
		    unsigned int mem_stride, struct bio_list *list)
{
	for (int i = 0; i < n; i++) {
		bios[i] = mk_bio(q, opf, start + (sector_t)i * (len >> SECTOR_SHIFT),
				 mem + (size_t)i * mem_stride, len, &done[i]);
		ck_assert_ptr_nonnull(bios[i]);
		if (list)
			bio_list_add(list, bios[i]);
	}
}

static void put_all(struct bio **bios, int n)
{
	for (int i = 0; i < n; i++)
		bio_put(bios[i]);
}

static void noop_queue_rq(struct blk_queue *q, struct request *rq)
{
	(void)q;
	blk_end_request(rq, 0);
}

START_TEST(test_queue_init_limits)
{
	static const struct blk_queue_ops ops = { .queue_rq = noop_queue_rq };
	struct queue_limits lim, def;
	struct blk_queue q;
	int data;

	blk_queue_default_limits(&def);
	ck_assert_uint_eq(def.max_segments, 256);
	ck_assert_uint_eq(def.max_bytes, 1u << 20);
	ck_assert_uint_eq(def.logical_block_size, 512);
	ck_assert_uint_eq(def.physical_block_size, 4096);

	ck_assert_int_eq(blk_queue_init(&q, &ops, NULL, &data), 0);
	ck_assert_ptr_eq(q.ops, &ops);
	ck_assert_ptr_eq(q.queuedata, &data);
	ck_assert_mem_eq(&q.limits, &def, sizeof(def));
	blk_queue_exit(&q);

	lim = (struct queue_limits){ 8, 65536, 4096, 4096 };
	ck_assert_int_eq(blk_queue_init(&q, &ops, &lim, NULL), 0);
	ck_assert_mem_eq(&q.limits, &lim, sizeof(lim));
	blk_queue_exit(&q);

	/* Limits no request could meet. */
	lim = (struct queue_limits){ 0, 65536, 512, 4096 };
	ck_assert_int_eq(blk_queue_init(&q, &ops, &lim, NULL), -EINVAL);
	lim = (struct queue_limits){ 8, 0, 512, 4096 };
	ck_assert_int_eq(blk_queue_init(&q, &ops, &lim, NULL), -EINVAL);
	/* More iovecs than one readv/writev takes. */
	lim = (struct queue_limits){ 1u << 20, 65536, 512, 4096 };
	ck_assert_int_eq(blk_queue_init(&q, &ops, &lim, NULL), -EINVAL);

	fault_fail_always(&fail_kmalloc);
	ck_assert_int_eq(blk_queue_init(&q, &ops, NULL, NULL), -ENOMEM);
	fault_reset(&fail_kmalloc);
}
END_TEST

START_TEST(test_make_request_merge_contiguous)
{
	struct bio_list list;
	struct request *rq;
	struct bio *b[3];

	bio_list_init(&list);
	/* One buffer, three 4 KiB bios back to back in memory and on disk. */
	mk_bios(b, 3, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR_OR_NULL(rq));
	ck_assert_ptr_eq(rq->q, &tq.q);
	ck_assert_uint_eq(rq->cmd_flags, REQ_OP_WRITE);
	ck_assert_int_eq(req_op(rq), REQ_OP_WRITE);
	ck_assert_uint_eq(rq->sector, 0);
	ck_assert_uint_eq(rq->bytes, 3 * 4096);
	ck_assert_uint_eq(rq->nr_bios, 3);
	ck_assert_ptr_eq(rq->bio, b[0]);
	ck_assert_ptr_eq(rq->biotail, b[2]);
	ck_assert_ptr_eq(b[0]->bi_next, b[1]);
	ck_assert_ptr_eq(b[1]->bi_next, b[2]);
	ck_assert_ptr_null(b[2]->bi_next);
	/* Contiguous memory: one iovec. */
	ck_assert_uint_eq(rq->nr_segs, 1);
	ck_assert_ptr_eq(rq->iov[0].iov_base, buf);
	ck_assert_uint_eq(rq->iov[0].iov_len, 3 * 4096);
	ck_assert_uint_le(rq->nr_segs, rq->max_segs);
	ck_assert(bio_list_empty(&list));
	ck_assert_ptr_null(list.tail);

	blk_end_request(rq, 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(done_calls(&done[i]), 1);
		ck_assert_int_eq(done_status(&done[i]), 0);
		ck_assert_ptr_null(b[i]->bi_next);
	}
	put_all(b, 3);
}
END_TEST

START_TEST(test_make_request_segments)
{
	struct bio_list list;
	struct request *rq;
	struct bio *b[3], *two;

	/* Non-contiguous memory: one iovec per bio, in order. */
	bio_list_init(&list);
	mk_bios(b, 3, &tq.q, REQ_OP_READ, 100, buf, 4096, 8192, &list);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR_OR_NULL(rq));
	ck_assert_uint_eq(rq->nr_bios, 3);
	ck_assert_uint_eq(rq->sector, 100);
	ck_assert_uint_eq(rq->bytes, 3 * 4096);
	ck_assert_uint_eq(rq->nr_segs, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_eq(rq->iov[i].iov_base, buf + i * 8192);
		ck_assert_uint_eq(rq->iov[i].iov_len, 4096);
	}
	blk_free_request(rq);
	put_all(b, 3);

	/* Mixed: b0,b1 adjacent in memory, b2 elsewhere; b2 has two adjacent segments. */
	bio_list_init(&list);
	mk_bios(b, 2, &tq.q, REQ_OP_WRITE, 0, buf, 1024, 1024, &list);
	two = bio_kmalloc(BLK_GFP_WAIT, 2);
	ck_assert_ptr_nonnull(two);
	two->bi_opf = REQ_OP_WRITE;
	two->bi_queue = &tq.q;
	two->bi_iter.bi_sector = 4;
	ck_assert_uint_eq(bio_add_page(two, buf + 10000, 512, 0), 512);
	ck_assert_uint_eq(bio_add_page(two, buf + 10000, 1536, 512), 1536);
	bio_list_add(&list, two);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_NOWAIT);
	ck_assert(!IS_ERR_OR_NULL(rq));
	ck_assert_uint_eq(rq->nr_bios, 3);
	ck_assert_uint_eq(rq->bytes, 4096);
	ck_assert_uint_eq(rq->nr_segs, 2);
	ck_assert_ptr_eq(rq->iov[0].iov_base, buf);
	ck_assert_uint_eq(rq->iov[0].iov_len, 2048);
	ck_assert_ptr_eq(rq->iov[1].iov_base, buf + 10000);
	ck_assert_uint_eq(rq->iov[1].iov_len, 2048);
	blk_free_request(rq);
	put_all(b, 2);
	bio_put(two);
}
END_TEST

START_TEST(test_make_request_stops)
{
	struct bio_list list;
	struct request *rq;
	struct bio *b[4];

	/* At a gap: 0, 8, then 24. */
	bio_list_init(&list);
	mk_bios(b, 2, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	b[2] = mk_bio(&tq.q, REQ_OP_WRITE, 24, buf + 8192, 4096, &done[2]);
	bio_list_add(&list, b[2]);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR_OR_NULL(rq));
	ck_assert_uint_eq(rq->nr_bios, 2);
	ck_assert_uint_eq(rq->bytes, 8192);
	ck_assert_ptr_eq(rq->biotail, b[1]);
	ck_assert_ptr_null(b[1]->bi_next);
	ck_assert_ptr_eq(list.head, b[2]);
	ck_assert_ptr_eq(list.tail, b[2]);
	blk_free_request(rq);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR_OR_NULL(rq));
	ck_assert_uint_eq(rq->nr_bios, 1);
	ck_assert_uint_eq(rq->sector, 24);
	ck_assert(bio_list_empty(&list));
	blk_free_request(rq);
	/* Request freed, bios never ended. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(done_calls(&done[i]), 0);
	put_all(b, 3);

	/* Backwards on disk is not contiguous either. */
	bio_list_init(&list);
	b[0] = mk_bio(&tq.q, REQ_OP_WRITE, 8, buf, 4096, &done[0]);
	b[1] = mk_bio(&tq.q, REQ_OP_WRITE, 0, buf + 4096, 4096, &done[1]);
	bio_list_add(&list, b[0]);
	bio_list_add(&list, b[1]);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 1);
	ck_assert_uint_eq(bio_list_size(&list), 1);
	blk_free_request(rq);
	put_all(b, 2);

	/* At an op change, and at a flag change. */
	bio_list_init(&list);
	mk_bios(b, 4, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	b[2]->bi_opf = REQ_OP_READ;
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 2);
	ck_assert_uint_eq(bio_list_size(&list), 2);
	blk_free_request(rq);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 1);
	ck_assert_int_eq(req_op(rq), REQ_OP_READ);
	blk_free_request(rq);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 1);
	blk_free_request(rq);
	put_all(b, 4);

	bio_list_init(&list);
	mk_bios(b, 3, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	b[1]->bi_opf = REQ_OP_WRITE | REQ_FUA;
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 1);
	ck_assert_ptr_eq(list.head, b[1]);
	blk_free_request(rq);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 1);
	ck_assert_uint_eq(rq->cmd_flags, REQ_OP_WRITE | REQ_FUA);
	blk_free_request(rq);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 1);
	blk_free_request(rq);
	ck_assert(bio_list_empty(&list));
	put_all(b, 3);
}
END_TEST

START_TEST(test_make_request_other_queue)
{
	struct test_queue other;
	struct bio_list list;
	struct request *rq;
	struct bio *b[2];

	ck_assert_int_eq(tq_init(&other, DISK_BYTES, NULL, false), 0);
	bio_list_init(&list);
	mk_bios(b, 2, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	b[1]->bi_queue = &other.q;
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR_OR_NULL(rq));
	ck_assert_uint_eq(rq->nr_bios, 1);
	ck_assert_ptr_eq(list.head, b[1]);
	blk_free_request(rq);
	put_all(b, 2);
	tq_exit(&other);
}
END_TEST

START_TEST(test_make_request_max_segments)
{
	struct queue_limits lim = { 2, 1u << 20, 512, 4096 };
	struct test_queue small;
	struct bio_list list;
	struct request *rq;
	struct bio *b[3];

	/* max_segments 2: three scattered bios make 2 + 1. */
	ck_assert_int_eq(tq_init(&small, DISK_BYTES, &lim, false), 0);
	bio_list_init(&list);
	mk_bios(b, 3, &small.q, REQ_OP_WRITE, 0, buf, 4096, 8192, &list);
	rq = blk_make_request(&small.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR_OR_NULL(rq));
	ck_assert_uint_eq(rq->nr_bios, 2);
	ck_assert_uint_eq(rq->nr_segs, 2);
	ck_assert_ptr_eq(list.head, b[2]);
	blk_free_request(rq);
	rq = blk_make_request(&small.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 1);
	blk_free_request(rq);
	put_all(b, 3);

	/* ...but the same bios contiguous in memory are one segment: all fit. */
	bio_list_init(&list);
	mk_bios(b, 3, &small.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	rq = blk_make_request(&small.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 3);
	ck_assert_uint_eq(rq->nr_segs, 1);
	blk_free_request(rq);
	put_all(b, 3);

	/* A single bio with more segments than allowed: -EINVAL, list kept. */
	bio_list_init(&list);
	b[0] = bio_kmalloc(BLK_GFP_WAIT, 3);
	ck_assert_ptr_nonnull(b[0]);
	b[0]->bi_opf = REQ_OP_WRITE;
	b[0]->bi_queue = &small.q;
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(bio_add_page(b[0], buf + i * 2048, 1024, 0), 1024);
	bio_list_add(&list, b[0]);
	rq = blk_make_request(&small.q, &list, BLK_GFP_WAIT);
	ck_assert(IS_ERR(rq));
	ck_assert_int_eq(PTR_ERR(rq), -EINVAL);
	ck_assert_ptr_eq(list.head, b[0]);
	bio_put(b[0]);
	tq_exit(&small);
}
END_TEST

START_TEST(test_make_request_max_bytes)
{
	/* max_bytes 8 KiB: three 4 KiB bios make 2 + 1; a 12 KiB bio alone is -EINVAL. */
	struct queue_limits lim = { 256, 8192, 512, 4096 };
	struct test_queue small;
	struct bio_list list;
	struct request *rq;
	struct bio *b[3];

	ck_assert_int_eq(tq_init(&small, DISK_BYTES, &lim, false), 0);
	bio_list_init(&list);
	mk_bios(b, 3, &small.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	rq = blk_make_request(&small.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 2);
	ck_assert_uint_eq(rq->bytes, 8192);
	ck_assert_ptr_eq(list.head, b[2]);
	blk_free_request(rq);
	rq = blk_make_request(&small.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 1);
	blk_free_request(rq);
	put_all(b, 3);
	bio_list_init(&list);
	b[0] = mk_bio(&small.q, REQ_OP_WRITE, 0, buf, 12288, &done[0]);
	bio_list_add(&list, b[0]);
	rq = blk_make_request(&small.q, &list, BLK_GFP_WAIT);
	ck_assert_int_eq(PTR_ERR(rq), -EINVAL);
	ck_assert_ptr_eq(list.head, b[0]);

	/* ...and submitted, it ends with -EINVAL without reaching queue_rq. */
	bio_list_init(&list);
	submit_bio(b[0]);
	ck_assert_int_eq(done_calls(&done[0]), 1);
	ck_assert_int_eq(done_status(&done[0]), -EINVAL);
	ck_assert_uint_eq(atomic_load(&small.nr_queue_rq), 0);
	bio_put(b[0]);
	tq_exit(&small);

	/* An empty list. */
	bio_list_init(&list);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(IS_ERR(rq));
	ck_assert_int_eq(PTR_ERR(rq), -EINVAL);
}
END_TEST

START_TEST(test_make_request_enomem)
{
	struct request *held[64];
	struct bio *b[16];
	struct bio_list list;
	struct request *rq;
	int n = 0;

	bio_list_init(&list);
	mk_bios(b, 2, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	fault_fail_always(&fail_kmalloc);
	/* Take requests until the reserve is gone (the list stays intact). */
	for (;;) {
		rq = blk_make_request(&tq.q, &list, BLK_GFP_NOWAIT);
		if (IS_ERR(rq))
			break;
		ck_assert_int_lt(n, 64);
		held[n++] = rq;
		/* Put the bios back at the head for the next try. */
		bio_list_init(&list);
		bio_list_add(&list, b[0]);
		bio_list_add(&list, b[1]);
	}
	ck_assert_int_eq(PTR_ERR(rq), -ENOMEM);
	ck_assert_int_ge(n, 1);
	ck_assert_ptr_eq(list.head, b[0]);
	ck_assert_ptr_eq(list.tail, b[1]);
	ck_assert_ptr_eq(b[0]->bi_next, b[1]);

	/* With WAIT it sleeps until one is freed, never failing. */
	blk_free_request(held[--n]);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR_OR_NULL(rq));
	ck_assert_uint_eq(rq->nr_bios, 2);
	blk_free_request(rq);
	while (n)
		blk_free_request(held[--n]);
	put_all(b, 2);

	/* More than REQ_INLINE_IOVECS segments need an iovec table: also reserved. */
	fault_reset(&fail_kmalloc);
	bio_list_init(&list);
	mk_bios(b, 16, &tq.q, REQ_OP_WRITE, 0, buf, 1024, 2048, &list);
	{
		struct bio *extra = mk_bio(&tq.q, REQ_OP_WRITE, 32, buf + 40000, 512,
					   &done[0]);

		ck_assert_ptr_nonnull(extra);
		bio_list_add(&list, extra);
		fault_fail_always(&fail_kmalloc);
		for (;;) {
			rq = blk_make_request(&tq.q, &list, BLK_GFP_NOWAIT);
			if (IS_ERR(rq))
				break;
			ck_assert_int_lt(n, 64);
			ck_assert_uint_eq(rq->nr_segs, 17);
			ck_assert_uint_ge(rq->max_segs, 17);
			ck_assert_uint_eq(rq->nr_bios, 17);
			held[n++] = rq;
			bio_list_init(&list);
			for (int i = 0; i < 16; i++)
				bio_list_add(&list, b[i]);
			bio_list_add(&list, extra);
		}
		ck_assert_int_eq(PTR_ERR(rq), -ENOMEM);
		ck_assert_int_ge(n, 1);
		ck_assert_uint_eq(bio_list_size(&list), 17);
		while (n)
			blk_free_request(held[--n]);
		fault_reset(&fail_kmalloc);
		bio_put(extra);
	}
	put_all(b, 16);
}
END_TEST

START_TEST(test_end_request)
{
	struct bio_list list;
	struct request *rq;
	struct bio *b[3];

	bio_list_init(&list);
	mk_bios(b, 3, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, &list);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 3);
	blk_end_request(rq, -EIO);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(done_calls(&done[i]), 1);
		ck_assert_int_eq(done_status(&done[i]), -EIO);
	}
	put_all(b, 3);
}
END_TEST

static void partial(uint64_t bytes, blk_status_t status, const int *want)
{
	struct bio_list list;
	struct request *rq;
	struct bio *b[3];

	for (int i = 0; i < 3; i++)
		bio_done_init(&done[i], NULL);
	bio_list_init(&list);
	mk_bios(b, 3, &tq.q, REQ_OP_READ, 0, buf, 4096, 4096, &list);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 3);
	blk_end_request_partial(rq, bytes, status);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(done_calls(&done[i]) == 1,
			      "partial %llu: bio %d ended %d times",
			      (unsigned long long)bytes, i, done_calls(&done[i]));
		ck_assert_msg(done_status(&done[i]) == want[i],
			      "partial %llu, %d: bio %d status %d, want %d",
			      (unsigned long long)bytes, status, i,
			      done_status(&done[i]), want[i]);
	}
	put_all(b, 3);
}

START_TEST(test_end_request_partial)
{
	partial(4096 + 100, -ENOSPC, (const int[]){ 0, -ENOSPC, -ENOSPC });
	partial(8192, -ENOSPC, (const int[]){ 0, 0, -ENOSPC });
	/* A short transfer with status 0 is still an error for the rest. */
	partial(8192, 0, (const int[]){ 0, 0, -EIO });
	partial(0, -EAGAIN, (const int[]){ -EAGAIN, -EAGAIN, -EAGAIN });
	partial(4095, -EIO, (const int[]){ -EIO, -EIO, -EIO });
	/* All of it: every bio succeeded. */
	partial(12288, 0, (const int[]){ 0, 0, 0 });
}
END_TEST

START_TEST(test_rq_can_merge)
{
	struct queue_limits lim = { 3, 12288, 512, 4096 };
	struct test_queue small;
	struct bio_list list;
	struct request *rq;
	struct bio *b[2], *n;

	ck_assert_int_eq(tq_init(&small, DISK_BYTES, &lim, false), 0);
	bio_list_init(&list);
	mk_bios(b, 2, &small.q, REQ_OP_WRITE, 8, buf, 4096, 8192, &list);
	rq = blk_make_request(&small.q, &list, BLK_GFP_WAIT);
	ck_assert_uint_eq(rq->nr_bios, 2);
	ck_assert_uint_eq(rq->nr_segs, 2);

	n = mk_bio(&small.q, REQ_OP_WRITE, 24, buf + 30000, 4096, &done[2]);
	ck_assert(blk_rq_can_merge(rq, n));
	/* Contiguous with the last iovec: no new segment needed either. */
	n->bi_io_vec[0].bv_page = buf + 8192 + 4096;
	ck_assert(blk_rq_can_merge(rq, n));
	n->bi_io_vec[0].bv_page = buf + 30000;
	n->bi_iter.bi_sector = 25;
	ck_assert(!blk_rq_can_merge(rq, n));	/* gap */
	n->bi_iter.bi_sector = 0;
	ck_assert(!blk_rq_can_merge(rq, n));	/* in front */
	n->bi_iter.bi_sector = 24;
	n->bi_opf = REQ_OP_READ;
	ck_assert(!blk_rq_can_merge(rq, n));	/* op */
	n->bi_opf = REQ_OP_WRITE | REQ_FUA;
	ck_assert(!blk_rq_can_merge(rq, n));	/* flags */
	n->bi_opf = REQ_OP_WRITE;
	n->bi_queue = &tq.q;
	ck_assert(!blk_rq_can_merge(rq, n));	/* queue */
	n->bi_queue = &small.q;
	n->bi_io_vec[0].bv_len = 4097;
	n->bi_iter.bi_size = 4097;
	ck_assert(!blk_rq_can_merge(rq, n));	/* max_bytes */
	n->bi_io_vec[0].bv_len = 4096;
	n->bi_iter.bi_size = 4096;
	ck_assert(blk_rq_can_merge(rq, n));
	bio_put(n);

	/* max_segments: a bio of two scattered segments would make 4. */
	n = bio_kmalloc(BLK_GFP_WAIT, 2);
	n->bi_opf = REQ_OP_WRITE;
	n->bi_queue = &small.q;
	n->bi_iter.bi_sector = 24;
	ck_assert_uint_eq(bio_add_page(n, buf + 30000, 1024, 0), 1024);
	ck_assert_uint_eq(bio_add_page(n, buf + 40000, 1024, 0), 1024);
	ck_assert(!blk_rq_can_merge(rq, n));
	bio_put(n);
	blk_free_request(rq);
	put_all(b, 2);
	tq_exit(&small);
}
END_TEST

/*
 * Regression: blk_rq_can_merge() checked only the queue's limit, not the
 * request's own (inline, 16-entry) iovec table.
 */
START_TEST(test_rq_can_merge_inline_table)
{
	struct bio *b[REQ_INLINE_IOVECS], *n;
	struct bio_list list;
	struct request *rq;

	bio_list_init(&list);
	/* 16 bios of 512 bytes, scattered in memory: 16 iovecs, the inline table. */
	mk_bios(b, REQ_INLINE_IOVECS, &tq.q, REQ_OP_WRITE, 0, buf, 512, 1024, &list);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR(rq));
	ck_assert_uint_eq(rq->nr_segs, REQ_INLINE_IOVECS);
	ck_assert_uint_eq(rq->max_segs, REQ_INLINE_IOVECS);
	ck_assert_uint_gt(tq.q.limits.max_segments, REQ_INLINE_IOVECS);

	n = bio_kmalloc(BLK_GFP_WAIT, 1);
	n->bi_opf = REQ_OP_WRITE;
	n->bi_queue = &tq.q;
	n->bi_iter.bi_sector = REQ_INLINE_IOVECS;
	ck_assert_uint_eq(bio_add_page(n, buf + 40000, 512, 0), 512);
	ck_assert(!blk_rq_can_merge(rq, n));	/* a 17th iovec has no room */
	/* Memory-contiguous with the last iovec: it needs no new entry. */
	n->bi_io_vec[0].bv_page = buf + (REQ_INLINE_IOVECS - 1) * 1024 + 512;
	ck_assert(blk_rq_can_merge(rq, n));
	bio_put(n);
	blk_free_request(rq);
	put_all(b, REQ_INLINE_IOVECS);
}
END_TEST

/*
 * Regression: a backend that completes inline, with a bi_end_io that
 * submits the next bio, recursed without bound and overflowed the stack.
 * Nested submissions are now queued and the outer submit_bio() loops.
 */
static struct blk_queue inline_q;
static int chain_left, chain_depth, chain_max_depth;

static void inline_queue_rq(struct blk_queue *q, struct request *rq)
{
	(void)q;
	chain_depth++;
	if (chain_depth > chain_max_depth)
		chain_max_depth = chain_depth;
	blk_end_request(rq, 0);
	chain_depth--;
}

static void chain_end_io(struct bio *bio)
{
	if (--chain_left > 0) {
		bio_reset(bio, REQ_OP_READ);
		bio->bi_queue = &inline_q;
		bio->bi_end_io = chain_end_io;
		submit_bio(bio);
		return;
	}
	bio_put(bio);
}

START_TEST(test_submit_nested_no_recursion)
{
	static const struct blk_queue_ops ops = { .queue_rq = inline_queue_rq };
	struct bio *bio;

	ck_assert_int_eq(blk_queue_init(&inline_q, &ops, NULL, NULL), 0);
	chain_left = 200000;
	bio = bio_kmalloc(BLK_GFP_WAIT, 0);
	bio->bi_opf = REQ_OP_READ;
	bio->bi_queue = &inline_q;
	bio->bi_end_io = chain_end_io;
	submit_bio(bio);
	ck_assert_int_eq(chain_left, 0);
	ck_assert_int_eq(chain_max_depth, 1);	/* never entered queue_rq twice at once */
	ck_assert(!blk_has_pending_bios());
	blk_queue_exit(&inline_q);
}
END_TEST

/*
 * Regression: a contiguous DISCARD after a WRITE on one list had its
 * (absent) bvecs counted before the merge check, reading past its table.
 */
START_TEST(test_make_request_data_then_nodata)
{
	struct bio_list list;
	struct request *rq;
	struct bio *w, *d;

	bio_list_init(&list);
	w = mk_bio(&tq.q, REQ_OP_WRITE, 0, buf, 4096, &done[0]);
	d = bio_kmalloc(BLK_GFP_WAIT, 0);
	d->bi_opf = REQ_OP_DISCARD;
	d->bi_queue = &tq.q;
	d->bi_iter.bi_sector = 8;
	d->bi_iter.bi_size = 1 << 20;
	bio_list_add(&list, w);
	bio_list_add(&list, d);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR(rq));
	ck_assert_uint_eq(rq->nr_bios, 1);
	ck_assert_ptr_eq(list.head, d);
	blk_free_request(rq);
	rq = blk_make_request(&tq.q, &list, BLK_GFP_WAIT);
	ck_assert(!IS_ERR(rq));
	ck_assert_uint_eq(req_op(rq), REQ_OP_DISCARD);
	ck_assert_uint_eq(rq->bytes, 1 << 20);
	ck_assert_uint_eq(rq->nr_segs, 0);
	blk_free_request(rq);
	bio_put(w);
	bio_put(d);
}
END_TEST

/* Threaded queue for the submission tests. */
static void setup_threaded(void)
{
	setup();
	tq_exit(&tq);
	ck_assert_int_eq(tq_init(&tq, DISK_BYTES, NULL, true), 0);
}

static bool all_done(int n)
{
	for (int i = 0; i < n; i++)
		if (done_calls(&done[i]) != 1)
			return false;
	return true;
}

START_TEST(test_submit_no_plug)
{
	struct bio *b[3];

	ck_assert_ptr_null(blk_current_plug());
	mk_bios(b, 3, &tq.q, REQ_OP_WRITE, 64, buf, 4096, 4096, NULL);
	for (int i = 0; i < 3; i++)
		submit_bio(b[i]);
	ck_assert_wait(all_done(3), 5000);
	/* Without a plug each bio is a request of its own. */
	ck_assert_uint_eq(atomic_load(&tq.nr_queue_rq), 3);
	for (unsigned int i = 0; i < 3; i++) {
		struct tq_record r = tq_record(&tq, i);

		ck_assert_uint_eq(r.nr_bios, 1);
		ck_assert_uint_eq(r.bytes, 4096);
		ck_assert_uint_eq(r.sector, 64 + 8 * i);
		ck_assert_int_eq(done_status(&done[i]), 0);
	}
	ck_assert_uint_eq(atomic_load(&tq.errors), 0);
	ck_assert_mem_eq(tq.disk + 64 * 512, buf, 3 * 4096);
	put_all(b, 3);
}
END_TEST

START_TEST(test_submit_plug_merges)
{
	struct blk_plug plug;
	struct bio *b[5];

	mk_bios(b, 4, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, NULL);
	b[4] = mk_bio(&tq.q, REQ_OP_WRITE, 100, buf + 20000, 4096, &done[4]);
	blk_start_plug(&plug);
	ck_assert_ptr_eq(blk_current_plug(), &plug);
	for (int i = 0; i < 5; i++)
		submit_bio(b[i]);
	sleep_ms(10);
	/* Held on the plug. */
	ck_assert_uint_eq(atomic_load(&tq.nr_queue_rq), 0);
	ck_assert_uint_eq(bio_list_size(&plug.bios), 5);
	blk_finish_plug(&plug);
	ck_assert_ptr_null(blk_current_plug());
	ck_assert_wait(all_done(5), 5000);
	/* The contiguous four are one request; the far one another. */
	ck_assert_uint_eq(atomic_load(&tq.nr_queue_rq), 2);
	ck_assert_uint_eq(tq_record(&tq, 0).nr_bios, 4);
	ck_assert_uint_eq(tq_record(&tq, 0).bytes, 4 * 4096);
	ck_assert_uint_eq(tq_record(&tq, 0).nr_segs, 1);
	ck_assert_uint_eq(tq_record(&tq, 0).sector, 0);
	ck_assert_uint_eq(tq_record(&tq, 1).nr_bios, 1);
	ck_assert_uint_eq(tq_record(&tq, 1).sector, 100);
	ck_assert_uint_eq(atomic_load(&tq.errors), 0);
	ck_assert_mem_eq(tq.disk, buf, 4 * 4096);
	ck_assert_mem_eq(tq.disk + 100 * 512, buf + 20000, 4096);
	put_all(b, 5);
}
END_TEST

START_TEST(test_flush_plug_keeps_plug)
{
	struct blk_plug plug;
	struct bio *b[4];

	mk_bios(b, 4, &tq.q, REQ_OP_WRITE, 0, buf, 4096, 4096, NULL);
	blk_start_plug(&plug);
	submit_bio(b[0]);
	submit_bio(b[1]);
	blk_flush_plug(&plug);
	ck_assert_wait(all_done(2), 5000);
	ck_assert_ptr_eq(blk_current_plug(), &plug);
	ck_assert(bio_list_empty(&plug.bios));
	submit_bio(b[2]);
	submit_bio(b[3]);
	sleep_ms(5);
	ck_assert_int_eq(done_calls(&done[2]), 0);
	blk_finish_plug(&plug);
	ck_assert_wait(all_done(4), 5000);
	ck_assert_uint_eq(atomic_load(&tq.nr_queue_rq), 2);
	ck_assert_uint_eq(tq_record(&tq, 0).nr_bios, 2);
	ck_assert_uint_eq(tq_record(&tq, 1).nr_bios, 2);
	ck_assert_uint_eq(tq_record(&tq, 1).sector, 16);
	put_all(b, 4);
}
END_TEST

START_TEST(test_submit_bio_wait)
{
	unsigned char *back = calloc(1, 8192);
	struct blk_plug plug;
	struct bio *w, *r;

	ck_assert_ptr_nonnull(back);
	w = mk_bio(&tq.q, REQ_OP_WRITE, 200, buf, 8192, NULL);
	ck_assert_int_eq(submit_bio_wait(w), 0);
	ck_assert_mem_eq(tq.disk + 200 * 512, buf, 8192);
	r = mk_bio(&tq.q, REQ_OP_READ, 200, back, 8192, NULL);
	ck_assert_int_eq(submit_bio_wait(r), 0);
	ck_assert_mem_eq(back, buf, 8192);
	bio_put(r);
	bio_put(w);

	/* The backend's error comes back. */
	tq.status = -EIO;
	w = mk_bio(&tq.q, REQ_OP_WRITE, 0, buf, 4096, NULL);
	ck_assert_int_eq(submit_bio_wait(w), -EIO);
	bio_put(w);
	tq.status = 0;

	/* Under a plug it cannot wait for itself. */
	blk_start_plug(&plug);
	w = mk_bio(&tq.q, REQ_OP_WRITE, 0, buf, 4096, NULL);
	ck_assert_int_eq(submit_bio_wait(w), 0);
	bio_put(w);
	blk_finish_plug(&plug);
	free(back);
}
END_TEST

START_TEST(test_submit_nodata)
{
	struct bio *b[3];
	struct blk_plug plug;

	memset(tq.disk, 0xff, 64 * 1024);
	for (int i = 0; i < 3; i++) {
		b[i] = bio_kmalloc(BLK_GFP_WAIT, 0);
		ck_assert_ptr_nonnull(b[i]);
		b[i]->bi_opf = REQ_OP_WRITE_ZEROES;
		b[i]->bi_queue = &tq.q;
		b[i]->bi_iter.bi_sector = 8 + 16 * (unsigned int)i;
		b[i]->bi_iter.bi_size = 8192;
		b[i]->bi_end_io = done_end_io;
		b[i]->bi_private = &done[i];
	}
	blk_start_plug(&plug);
	for (int i = 0; i < 3; i++)
		submit_bio(b[i]);
	blk_finish_plug(&plug);
	ck_assert_wait(all_done(3), 5000);
	ck_assert_uint_eq(atomic_load(&tq.nr_queue_rq), 1);
	ck_assert_uint_eq(tq_record(&tq, 0).nr_bios, 3);
	ck_assert_uint_eq(tq_record(&tq, 0).bytes, 3 * 8192);
	ck_assert_uint_eq(tq_record(&tq, 0).nr_segs, 0);
	ck_assert_uint_eq(atomic_load(&tq.errors), 0);
	for (int i = 0; i < 64 * 1024; i++) {
		bool zero = i >= 4096 && i < 4096 + 3 * 8192;

		ck_assert_msg(tq.disk[i] == (zero ? 0 : 0xff), "disk[%d]", i);
	}
	put_all(b, 3);
}
END_TEST

START_TEST(test_plug_steal_bios)
{
	struct bio_list out;
	struct blk_plug plug;
	struct bio_set bs;
	struct bio *b[5];
	static const int from_bs[5] = { 1, 0, 1, 0, 1 };

	ck_assert_int_eq(bioset_init(&bs, 4, 0, 0, NULL), 0);
	bio_list_init(&out);
	/* Without a plug there is nothing to steal. */
	blk_plug_steal_bios(&bs, &out);
	ck_assert(bio_list_empty(&out));

	for (int i = 0; i < 5; i++) {
		b[i] = from_bs[i] ? bio_alloc_bioset(BLK_GFP_WAIT, 1, &bs) :
				    bio_kmalloc(BLK_GFP_WAIT, 1);
		ck_assert_ptr_nonnull(b[i]);
		b[i]->bi_opf = REQ_OP_WRITE;
		b[i]->bi_queue = &tq.q;
		b[i]->bi_iter.bi_sector = 8 * (unsigned int)i;
		ck_assert_uint_eq(bio_add_page(b[i], buf + 4096 * i, 4096, 0), 4096);
		b[i]->bi_end_io = done_end_io;
		b[i]->bi_private = &done[i];
	}
	blk_start_plug(&plug);
	for (int i = 0; i < 5; i++)
		submit_bio(b[i]);
	blk_plug_steal_bios(&bs, &out);
	/* Ours, in submission order; the others stay on the plug, in order. */
	ck_assert_uint_eq(bio_list_size(&out), 3);
	ck_assert_ptr_eq(out.head, b[0]);
	ck_assert_ptr_eq(b[0]->bi_next, b[2]);
	ck_assert_ptr_eq(b[2]->bi_next, b[4]);
	ck_assert_ptr_eq(out.tail, b[4]);
	ck_assert_uint_eq(bio_list_size(&plug.bios), 2);
	ck_assert_ptr_eq(plug.bios.head, b[1]);
	ck_assert_ptr_eq(plug.bios.tail, b[3]);
	blk_finish_plug(&plug);
	ck_assert_wait(done_calls(&done[1]) == 1 && done_calls(&done[3]) == 1, 5000);
	ck_assert_int_eq(done_calls(&done[0]), 0);
	ck_assert_uint_eq(atomic_load(&tq.nr_queue_rq), 2);
	/* Submitting the stolen ones later works as usual. */
	for (struct bio *bio; (bio = bio_list_pop(&out));)
		submit_bio(bio);
	ck_assert_wait(all_done(5), 5000);
	ck_assert_mem_eq(tq.disk, buf, 5 * 4096);
	put_all(b, 5);
	bioset_exit(&bs);
}
END_TEST

START_TEST(test_submit_from_reserve)
{
	/* kmalloc failing: every request (and large iovec table) from the reserve. */
	struct bio *b[16];
	struct blk_plug plug;

	fault_fail_always(&fail_kmalloc);
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 16; i++)
			bio_done_init(&done[i], NULL);
		fault_reset(&fail_kmalloc);
		/* 16 scattered bios (16 segments) plus, under a plug, merged. */
		mk_bios(b, 16, &tq.q, REQ_OP_WRITE, (sector_t)round * 64, buf, 1024, 2048,
			NULL);
		fault_fail_always(&fail_kmalloc);
		if (round & 1)
			blk_start_plug(&plug);
		for (int i = 0; i < 16; i++)
			submit_bio(b[i]);
		if (round & 1)
			blk_finish_plug(&plug);
		ck_assert_wait(all_done(16), 5000);
		for (int i = 0; i < 16; i++)
			ck_assert_int_eq(done_status(&done[i]), 0);
		fault_reset(&fail_kmalloc);
		put_all(b, 16);
		fault_fail_always(&fail_kmalloc);
	}
	fault_reset(&fail_kmalloc);
	ck_assert_uint_eq(atomic_load(&tq.errors), 0);
	for (int round = 0; round < 20; round++)
		for (int i = 0; i < 16; i++)
			ck_assert_mem_eq(tq.disk + round * 64 * 512 + i * 1024,
					 buf + i * 2048, 1024);
}
END_TEST

Suite *request_suite(void)
{
	Suite *s = suite_create("request");
	TCase *tc = tcase_create("make_request");
	TCase *ts = tcase_create("submit");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_queue_init_limits);
	tcase_add_test(tc, test_make_request_merge_contiguous);
	tcase_add_test(tc, test_make_request_segments);
	tcase_add_test(tc, test_make_request_stops);
	tcase_add_test(tc, test_make_request_other_queue);
	tcase_add_test(tc, test_make_request_max_segments);
	tcase_add_test(tc, test_make_request_max_bytes);
	tcase_add_test(tc, test_make_request_enomem);
	tcase_add_test(tc, test_end_request);
	tcase_add_test(tc, test_end_request_partial);
	tcase_add_test(tc, test_rq_can_merge);
	tcase_add_test(tc, test_rq_can_merge_inline_table);
	tcase_add_test(tc, test_submit_nested_no_recursion);
	tcase_add_test(tc, test_make_request_data_then_nodata);
	suite_add_tcase(s, tc);

	tcase_set_timeout(ts, TEST_TIMEOUT);
	tcase_add_checked_fixture(ts, setup_threaded, teardown);
	tcase_add_test(ts, test_submit_no_plug);
	tcase_add_test(ts, test_submit_plug_merges);
	tcase_add_test(ts, test_flush_plug_keeps_plug);
	tcase_add_test(ts, test_submit_bio_wait);
	tcase_add_test(ts, test_submit_nodata);
	tcase_add_test(ts, test_plug_steal_bios);
	tcase_add_test(ts, test_submit_from_reserve);
	suite_add_tcase(s, ts);
	return s;
}
