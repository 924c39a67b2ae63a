// SPDX-License-Identifier: MIT
/*
 * backends/bounce: the arithmetic of unaligned direct I/O (which blocks,
 * which edges) and the copies in and out of a bounce buffer, checked
 * against a byte-by-byte model.
 */
#include <check.h>
#include <string.h>

#include "backends/bounce.h"
#include "core/request.h"
#include "helpers.h"
#include "suites.h"

START_TEST(test_align)
{
	ck_assert_uint_eq(align_down(4095, 4096), 0);
	ck_assert_uint_eq(align_down(4096, 4096), 4096);
	ck_assert_uint_eq(align_up(4097, 4096), 8192);
	ck_assert_uint_eq(align_up(8192, 4096), 8192);
	ck_assert_uint_eq(align_up(0, 512), 0);
}
END_TEST

START_TEST(test_rq_aligned)
{
	static char buf[3 * 4096] __attribute__((aligned(4096)));
	struct request rq = { 0 };

	rq.iov = rq.inline_iov;
	rq.nr_segs = 2;
	rq.sector = 8;
	rq.bytes = 8192;
	rq.iov[0] = (struct iovec){ buf, 4096 };
	rq.iov[1] = (struct iovec){ buf + 4096, 4096 };
	ck_assert(bounce_rq_aligned(&rq, 4096));
	ck_assert(bounce_rq_aligned(&rq, 512));
	rq.sector = 9;					/* the offset */
	ck_assert(!bounce_rq_aligned(&rq, 4096));
	ck_assert(bounce_rq_aligned(&rq, 512));
	rq.sector = 8;
	rq.iov[1].iov_base = buf + 4096 + 512;		/* an address */
	ck_assert(!bounce_rq_aligned(&rq, 4096));
	ck_assert(bounce_rq_aligned(&rq, 512));
	rq.iov[1].iov_base = buf + 4096;
	rq.iov[0].iov_len = 4096 - 512;			/* a length */
	rq.iov[1].iov_len = 4096 + 512;
	ck_assert(!bounce_rq_aligned(&rq, 4096));
	ck_assert(bounce_rq_aligned(&rq, 512));
}
END_TEST

/* Whether the write [off, end) covers block [b, b + a) only in part. */
static bool partial(uint64_t b, uint64_t a, uint64_t off, uint64_t end)
{
	return off < b + a && end > b && (off > b || end < b + a);
}

START_TEST(test_edges_model)
{
	const uint64_t a = 512;

	/* Every write in a span of up to 4 blocks: each partial block is read once. */
	for (uint64_t off = 0; off < 4 * a; off += 128) {
		for (uint64_t end = off + 128; end <= 4 * a; end += 128) {
			uint64_t s = align_down(off, a), e = align_up(end, a);
			struct bounce_edges x = bounce_edges(s, e, off, end, a);

			for (uint64_t b = s; b < e; b += a) {
				unsigned int reads = (x.head && b == s) +
						     (x.tail && b == e - a);

				ck_assert_msg(reads == partial(b, a, off, end),
					      "block %llu of [%llu, %llu) read %u times",
					      (unsigned long long)b, (unsigned long long)off,
					      (unsigned long long)end, reads);
			}
		}
	}
	/* One block, partial at both ends: read once, as the head. */
	ck_assert(bounce_edges(0, 512, 10, 20, 512).head);
	ck_assert(!bounce_edges(0, 512, 10, 20, 512).tail);
	ck_assert(!bounce_edges(0, 512, 0, 20, 512).head);
	ck_assert(bounce_edges(0, 512, 0, 20, 512).tail);
}
END_TEST

START_TEST(test_chunks_cover)
{
	struct rng r;

	rng_seed(&r, 0xb0);
	for (unsigned int i = 0; i < 2000; i++) {
		uint64_t a = 512ull << rng_range(&r, 0, 3);
		uint64_t buf = a * rng_range(&r, 1, 8);
		uint64_t off = rng_range(&r, 0, 1 << 20), end = off + rng_range(&r, 1, 70000);
		uint64_t pos = off, last_ce = 0;
		bool first = true;

		while (pos < end) {
			uint64_t cs, ce, n = bounce_chunk(pos, end, buf, a, &cs, &ce);

			ck_assert(n > 0);
			ck_assert(!(cs % a) && !(ce % a));
			ck_assert(cs <= pos && pos + n <= ce && ce - cs <= buf);
			ck_assert(pos + n == end || pos + n == ce);
			ck_assert(first || cs == last_ce);
			first = false;
			last_ce = ce;
			pos += n;
		}
		ck_assert_uint_eq(pos, end);
	}
}
END_TEST

START_TEST(test_copy_in_out)
{
	unsigned char src[1000], dst[1000], flat[1000];
	struct iovec in[4], out[3];
	struct bounce_iter it;
	size_t lens[4] = { 1, 300, 0, 699 }, at = 0;
	struct rng r;

	rng_seed(&r, 0xc0);
	rng_fill(&r, src, sizeof(src));
	for (unsigned int i = 0; i < 4; i++) {
		in[i] = (struct iovec){ src + at, lens[i] };
		at += lens[i];
	}
	/* In, in uneven pieces. */
	bounce_iter_init(&it, in, 4);
	bounce_copy_in(&it, (char *)flat, 7);
	bounce_copy_in(&it, (char *)flat + 7, 500);
	bounce_copy_in(&it, (char *)flat + 507, 493);
	ck_assert_mem_eq(flat, src, sizeof(src));

	/* Out, into another layout. */
	memset(dst, 0, sizeof(dst));
	out[0] = (struct iovec){ dst, 512 };
	out[1] = (struct iovec){ dst + 512, 1 };
	out[2] = (struct iovec){ dst + 513, 487 };
	bounce_iter_init(&it, out, 3);
	bounce_copy_out(&it, (char *)flat, 600);
	bounce_copy_out(&it, (char *)flat + 600, 400);
	ck_assert_mem_eq(dst, src, sizeof(dst));

	/* No iovecs: zeros. */
	bounce_iter_init(&it, NULL, 0);
	bounce_copy_in(&it, (char *)flat, 100);
	for (unsigned int i = 0; i < 100; i++)
		ck_assert_uint_eq(flat[i], 0);
	ck_assert_uint_eq(flat[100], src[100]);
}
END_TEST

Suite *bounce_suite(void)
{
	Suite *s = suite_create("bounce");
	TCase *tc = tcase_create("bounce");

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_test(tc, test_align);
	tcase_add_test(tc, test_rq_aligned);
	tcase_add_test(tc, test_edges_model);
	tcase_add_test(tc, test_chunks_cover);
	tcase_add_test(tc, test_copy_in_out);
	suite_add_tcase(s, tc);
	return s;
}
