/* SPDX-License-Identifier: MIT */
/*
 * memory: a sparse RAM disk.  Pages are allocated on first write and freed
 * by trim; holes read as zeros and show as holes in extents.  Its pages are
 * the export's storage, not I/O buffers, so they come from the heap rather
 * than the I/O page budget; the export's size bounds them.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "core/page.h"

struct mem_dev {
	pthread_mutex_t lock;
	size_t nr_pages;
	size_t allocated;
	void **pages;
};

static int mem_open(struct backend *be, const struct backend_params *p,
		    char *err, size_t errlen)
{
	struct mem_dev *m;
	int ret;

	if (p->size % SECTOR_SIZE) {
		snprintf(err, errlen, "memory size must be a multiple of 512 bytes");
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		goto nomem;
	m->nr_pages = DIV_ROUND_UP(p->size, PAGE_SIZE);
	m->pages = calloc(m->nr_pages, sizeof(void *));
	if (!m->pages)
		goto nomem;
	pthread_mutex_init(&m->lock, NULL);
	be->priv = m;
	be->size = p->size;
	be->caps = BACKEND_CAP_FLUSH | BACKEND_CAP_FUA | BACKEND_CAP_TRIM |
		   BACKEND_CAP_WRITE_ZEROES | BACKEND_CAP_FAST_ZERO |
		   BACKEND_CAP_EXTENTS | BACKEND_CAP_ZERO_DETECT |
		   BACKEND_CAP_MULTI_CONN;
	be->engine = "memory";
	ret = backend_init_queue(be, NULL);
	if (ret) {
		pthread_mutex_destroy(&m->lock);
		free(m->pages);
		free(m);
		snprintf(err, errlen, "cannot set up the queue: %s", strerror(-ret));
		return ret;
	}
	return 0;
nomem:
	if (m)
		free(m->pages);
	free(m);
	snprintf(err, errlen, "out of memory for a %llu-byte RAM disk's page table",
		 (unsigned long long)p->size);
	return -ENOMEM;
}

static void mem_close(struct backend *be)
{
	struct mem_dev *m = be->priv;

	blk_queue_exit(&be->queue);
	for (size_t i = 0; i < m->nr_pages; i++)
		free(m->pages[i]);
	free(m->pages);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* Copy between the disk at @off and @buf, @len bytes. Holds lock. */
static int mem_rw(struct mem_dev *m, bool write, uint64_t off, char *buf,
		  size_t len)
{
	while (len) {
		size_t idx = off / PAGE_SIZE, in = off % PAGE_SIZE;
		size_t n = PAGE_SIZE - in < len ? PAGE_SIZE - in : len;
		char *page = m->pages[idx];

		if (write) {
			if (!page) {
				page = calloc(1, PAGE_SIZE);
				if (!page)
					return -ENOSPC;
				m->pages[idx] = page;
				m->allocated++;
			}
			memcpy(page + in, buf, n);
		} else if (page) {
			memcpy(buf, page + in, n);
		} else {
			memset(buf, 0, n);
		}
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Zero a range, freeing whole pages unless @keep. Holds lock. */
static void mem_zero(struct mem_dev *m, uint64_t off, uint64_t len, bool keep)
{
	while (len) {
		size_t idx = off / PAGE_SIZE, in = off % PAGE_SIZE;
		size_t n = PAGE_SIZE - in < len ? PAGE_SIZE - in : len;
		char *page = m->pages[idx];

		if (page) {
			if (n == PAGE_SIZE && !keep) {
				free(page);
				m->pages[idx] = NULL;
				m->allocated--;
			} else {
				memset(page + in, 0, n);
			}
		}
		off += n;
		len -= n;
	}
}

static void mem_queue_rq(struct backend *be, struct request *rq)
{
	struct mem_dev *m = be->priv;
	uint64_t off = blk_rq_pos_bytes(rq);
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		for (unsigned int i = 0; i < rq->nr_segs && !ret; i++) {
			ret = mem_rw(m, req_op(rq) == REQ_OP_WRITE, off,
				     rq->iov[i].iov_base, rq->iov[i].iov_len);
			off += rq->iov[i].iov_len;
		}
		break;
	case REQ_OP_DISCARD:
		mem_zero(m, off, rq->bytes, false);
		break;
	case REQ_OP_WRITE_ZEROES:
		mem_zero(m, off, rq->bytes, rq->cmd_flags & REQ_NOUNMAP);
		break;
	case REQ_OP_FLUSH:
		break;
	default:
		ret = -EOPNOTSUPP;
	}
	pthread_mutex_unlock(&m->lock);
	blk_end_request(rq, ret);
}

static void mem_extents(struct backend *be, struct backend_extents_req *req)
{
	struct mem_dev *m = be->priv;
	uint64_t pos = req->offset, end = req->offset + req->length;

	if (end > be->size)
		end = be->size;
	req->nr = 0;
	req->status = 0;
	pthread_mutex_lock(&m->lock);
	while (pos < end && req->nr < req->max) {
		bool hole = !m->pages[pos / PAGE_SIZE];
		uint64_t next = (pos / PAGE_SIZE + 1) * PAGE_SIZE;

		while (next < end && !m->pages[next / PAGE_SIZE] == hole)
			next += PAGE_SIZE;
		if (next > end)
			next = end;
		req->ext[req->nr++] = (struct backend_extent){
			pos, next - pos,
			hole ? BACKEND_EXTENT_HOLE | BACKEND_EXTENT_ZERO : 0,
		};
		pos = next;
	}
	pthread_mutex_unlock(&m->lock);
	req->done(req);
}

const struct backend_ops backend_memory_ops = {
	.name = "memory",
	.open = mem_open,
	.close = mem_close,
	.queue_rq = mem_queue_rq,
	.extents = mem_extents,
};
