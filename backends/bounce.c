/* SPDX-License-Identifier: MIT */
/* Bounce buffers for unaligned direct I/O; see bounce.h. */
#include <config.h>

#include <string.h>

#include "backends/bounce.h"
#include "core/compiler.h"
#include "core/request.h"

bool bounce_rq_aligned(const struct request *rq, uint64_t align)
{
	uint64_t bits = blk_rq_pos_bytes(rq) | rq->bytes;

	for (unsigned int i = 0; i < rq->nr_segs; i++)
		bits |= (uintptr_t)rq->iov[i].iov_base | rq->iov[i].iov_len;
	return !(bits & (align - 1));
}

uint64_t bounce_chunk(uint64_t pos, uint64_t end, uint64_t buf_len,
		      uint64_t align, uint64_t *cs, uint64_t *ce)
{
	*cs = align_down(pos, align);
	*ce = min_t(uint64_t, *cs + buf_len, align_up(end, align));
	return min_t(uint64_t, *ce, end) - pos;
}

struct bounce_edges bounce_edges(uint64_t start, uint64_t stop, uint64_t off,
				 uint64_t end, uint64_t align)
{
	struct bounce_edges e;

	e.head = off > start;
	e.tail = end < stop && !(e.head && stop - align == start);
	return e;
}

void bounce_iter_init(struct bounce_iter *it, const struct iovec *iov,
		      unsigned int nr)
{
	it->iov = iov;
	it->nr = nr;
	it->idx = 0;
	it->off = 0;
}

static void iter_copy(struct bounce_iter *it, char *buf, size_t len, bool out)
{
	while (len) {
		const struct iovec *v;
		size_t n;
		char *p;

		BUG_ON(it->idx >= it->nr);
		v = &it->iov[it->idx];
		n = min_t(size_t, v->iov_len - it->off, len);
		p = (char *)v->iov_base + it->off;
		if (out)
			memcpy(p, buf, n);
		else
			memcpy(buf, p, n);
		buf += n;
		len -= n;
		it->off += n;
		if (it->off == v->iov_len) {
			it->idx++;
			it->off = 0;
		}
	}
}

void bounce_copy_in(struct bounce_iter *it, char *buf, size_t len)
{
	if (!it->iov) {
		memset(buf, 0, len);
		return;
	}
	iter_copy(it, buf, len, false);
}

void bounce_copy_out(struct bounce_iter *it, const char *buf, size_t len)
{
	BUG_ON(!it->iov);
	iter_copy(it, (char *)buf, len, true);
}
