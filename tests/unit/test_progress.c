// SPDX-License-Identifier: MIT
/*
 * Forward progress, the kernel's rule: with only the reserves of a bio_set
 * and of the queue, and a page budget of 8 pages, a writer that allocates
 * one bio, submits it and allocates the next always finishes, even when it
 * holds everything it submitted on a plug (the rescuer takes those).
 *
 * "Only the reserves": fail_kmalloc fails every call once the bio_set, the
 * queue and the page allocator are set up.  The bio and bvec pools and the
 * queue's request and iovec pools are all kmalloc pools, so from then on
 * every bio, bvec table and request comes from a reserve, and the test
 * asserts that it did (reserve_allocs counts every bio).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/page.h"
#include "helpers.h"
#include "suites.h"

#define PROG_BYTES	(32u << 20)
#define PROG_BUDGET	(8 * PAGE_SIZE)
#define PROG_RESERVE	2
#define PROG_LIMIT_S	15.0

struct prog {
	struct test_queue tq;
	struct bio_set bs;
	struct pgalloc *pa;
	unsigned char *src;
	atomic_ulong bytes_ended;
	atomic_uint bios_ended;
	atomic_uint errors;
	unsigned int bios;
};

static void prog_end_io(struct bio *bio)
{
	struct prog *p = bio->bi_private;

	if (bio->bi_status)
		atomic_fetch_add(&p->errors, 1);
	atomic_fetch_add(&p->bytes_ended, bio->bi_iter.bi_size);
	bio_free_pages(bio);
	bio_put(bio);
	atomic_fetch_add(&p->bios_ended, 1);
}

static struct prog *prog_setup(void)
{
	struct prog *p = calloc(1, sizeof(*p));
	struct rng r;

	ck_assert_ptr_nonnull(p);
	p->src = malloc(PROG_BYTES);
	ck_assert_ptr_nonnull(p->src);
	rng_seed(&r, 0x32);
	rng_fill(&r, p->src, PROG_BYTES);
	ck_assert_int_eq(tq_init(&p->tq, PROG_BYTES, NULL, true), 0);
	p->pa = pgalloc_create(PROG_BUDGET, 0, 0);
	ck_assert_ptr_nonnull(p->pa);
	ck_assert_int_eq(bioset_init(&p->bs, PROG_RESERVE, 0,
				     BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER,
				     p->pa), 0);
	return p;
}

static void prog_teardown(struct prog *p)
{
	struct pgalloc_stats st;

	fault_reset(&fail_kmalloc);
	pgalloc_get_stats(p->pa, &st);
	ck_assert_uint_eq(st.free_pages, st.total_pages);
	ck_assert_uint_eq(st.allocs, st.frees);
	ck_assert_int_eq(mempool_reserve_count(&p->bs.bio_pool), PROG_RESERVE);
	ck_assert_int_eq(mempool_reserve_count(&p->bs.bvec_pool), PROG_RESERVE);
	bioset_exit(&p->bs);
	tq_exit(&p->tq);
	pgalloc_destroy(p->pa);
	free(p->src);
	free(p);
}

/* Write all of src in bios of 1..64 sectors (up to 8 pages, > BIO_INLINE_VECS). */
static void prog_write(struct prog *p, bool plugged)
{
	struct blk_plug plug;
	uint64_t off = 0;
	struct rng r;

	rng_seed(&r, plugged ? 0xb : 0xa);
	if (plugged)
		blk_start_plug(&plug);
	while (off < PROG_BYTES) {
		unsigned int len = rng_range(&r, 1, 64) * SECTOR_SIZE, nr;
		struct bio *bio;

		if (len > PROG_BYTES - off)
			len = (unsigned int)(PROG_BYTES - off);
		nr = DIV_ROUND_UP(len, PAGE_SIZE);
		bio = bio_alloc_bioset(BLK_GFP_WAIT, nr, &p->bs);
		ck_assert_msg(bio != NULL, "WAIT allocation failed at %llu",
			      (unsigned long long)off);
		bio->bi_opf = REQ_OP_WRITE;
		bio->bi_queue = &p->tq.q;
		bio->bi_iter.bi_sector = off >> SECTOR_SHIFT;
		bio->bi_end_io = prog_end_io;
		bio->bi_private = p;
		ck_assert_int_eq(bio_prep_pages(bio, len), 0);
		ck_assert_msg(bio_alloc_pages(bio, BLK_GFP_WAIT) == 0,
			      "WAIT page allocation failed at %llu",
			      (unsigned long long)off);
		ck_assert_uint_eq(bio_copy_from_buf(bio, p->src + off, len), len);
		submit_bio(bio);
		p->bios++;
		off += len;
	}
	if (plugged) {
		ck_assert_ptr_eq(blk_current_plug(), &plug);
		blk_finish_plug(&plug);
	}
}

static void progress(bool plugged)
{
	struct prog *p = prog_setup();
	double t0, elapsed;
	bool finished;

	fault_fail_always(&fail_kmalloc);	/* from here on: reserves only */
	t0 = now_sec();
	prog_write(p, plugged);
	finished = wait_until(atomic_load(&p->bytes_ended) >= PROG_BYTES,
			      (unsigned int)(PROG_LIMIT_S * 1000));
	elapsed = now_sec() - t0;
	ck_assert_msg(finished, "only %lu of %u bytes completed",
		      (unsigned long)atomic_load(&p->bytes_ended), PROG_BYTES);
	ck_assert_msg(elapsed < PROG_LIMIT_S, "took %.2f s", elapsed);
	ck_assert_uint_eq(atomic_load(&p->bytes_ended), PROG_BYTES);
	ck_assert_wait(atomic_load(&p->bios_ended) == p->bios, 5000);
	ck_assert_uint_eq(atomic_load(&p->errors), 0);
	ck_assert_uint_eq(atomic_load(&p->tq.errors), 0);

	/* Everything came from the reserves. */
	ck_assert_uint_gt(atomic_load(&fail_kmalloc.failures), 0);
	ck_assert_uint_eq(atomic_load(&p->bs.bio_pool.reserve_allocs), p->bios);
	ck_assert_uint_gt(atomic_load(&p->bs.bvec_pool.reserve_allocs), 0);
	ck_assert_uint_gt(atomic_load(&p->tq.q.rq_pool.reserve_allocs), 0);
	if (plugged)
		ck_assert_msg(atomic_load(&p->bs.rescued) > 0,
			      "plugged writer finished without the rescuer");
	ck_assert_msg(memcmp(p->tq.disk, p->src, PROG_BYTES) == 0,
		      "the disk does not match the data written");
	prog_teardown(p);
}

START_TEST(test_progress_reserve_only)
{
	progress(false);
}
END_TEST

START_TEST(test_progress_plugged_rescuer)
{
	progress(true);
}
END_TEST

Suite *progress_suite(void)
{
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("progress");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_progress_reserve_only);
	tcase_add_test(tc, test_progress_plugged_rescuer);
	suite_add_tcase(s, tc);
	return s;
}
