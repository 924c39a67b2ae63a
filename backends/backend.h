/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_BACKENDS_BACKEND_H
#define BLOCKD_BACKENDS_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fault.h"
#include "core/ioloop.h"
#include "core/mempool.h"
#include "core/request.h"

struct pgalloc;

/*
 * A backend turns core's requests into real I/O on a file, a block
 * device, RAM or a remote server.  Front ends never look behind this
 * interface: they build bios, point them at backend->queue and call
 * submit_bio(); the backend's queue_rq() does the I/O and ends the request
 * with blk_end_request(), which ends every bio in it.
 *
 * Threading: requests are submitted from threads running an ioloop
 * (core/ioloop.h, ioloop_current() is not NULL), any number of them at
 * once.  A request completes on the loop thread that submitted it, inside
 * queue_rq() or later from that loop; a backend that does I/O on threads
 * of its own hands the completion back with ioloop_post().  So a loop
 * thread must never sleep in submit_bio_wait(): it would wait for a
 * completion only it can run.  Close backends before destroying loops.
 *
 * Errors reach the bios as negative errnos: -EIO for a failed device,
 * -ENOSPC when the storage is full or a write lies past the end, -EINVAL
 * for a range that is out of bounds for a read, -EOPNOTSUPP for an op the
 * backend lacks, -EROFS for a write to a read-only backend.
 */

/* Capabilities. */
#define BACKEND_CAP_FLUSH		(1u << 0)	/* FLUSH makes writes durable */
#define BACKEND_CAP_FUA			(1u << 1)	/* REQ_FUA honoured per write */
#define BACKEND_CAP_TRIM		(1u << 2)	/* DISCARD frees space */
#define BACKEND_CAP_WRITE_ZEROES	(1u << 3)
#define BACKEND_CAP_FAST_ZERO		(1u << 4)	/* WRITE_ZEROES costs no data I/O */
#define BACKEND_CAP_ZERO_DETECT		(1u << 5)	/* extents tell which ranges read as zero */
#define BACKEND_CAP_EXTENTS		(1u << 6)	/* extents tell holes from data */
#define BACKEND_CAP_MULTI_CONN		(1u << 7)	/* a FLUSH covers writes from every submitter */

/* One extent, as NBD's base:allocation sees it. */
#define BACKEND_EXTENT_HOLE	(1u << 0)	/* not allocated */
#define BACKEND_EXTENT_ZERO	(1u << 1)	/* reads as zeros */

struct backend_extent {
	uint64_t offset;
	uint64_t length;
	uint32_t flags;
};

/*
 * An extents query.  The backend fills ext[0..nr) with extents that
 * together cover [offset, offset + n) for some n > 0 (it may stop early,
 * at most @max extents), sets status (0 or -errno) and calls done() on the
 * submitting loop thread, possibly before backend_extents() returns.  A
 * query that starts at or past the end, or asks for nothing, answers
 * -EINVAL with no extents, without reaching the backend.
 */
struct backend_extents_req {
	uint64_t offset;
	uint64_t length;
	struct backend_extent *ext;
	unsigned int max;
	unsigned int nr;
	int status;
	void (*done)(struct backend_extents_req *req);
	void *private;
};

enum backend_cache {
	BACKEND_CACHE_DEFAULT,		/* the backend's choice */
	BACKEND_CACHE_NONE,		/* O_DIRECT: bypass the page cache */
	BACKEND_CACHE_WRITEBACK,	/* through the page cache */
};

enum backend_engine {
	BACKEND_ENGINE_AUTO,		/* io_uring, else the sync fallback */
	BACKEND_ENGINE_URING,
	BACKEND_ENGINE_SYNC,
};

/* A parsed spec: KIND:TARGET[,key=value...]. */
struct backend_params {
	char *kind;			/* "file", "memory", "nbd", "rbd" */
	char *target;			/* path, URI or POOL/IMAGE; "" for memory */
	uint64_t size;			/* 0: not given */
	enum backend_cache cache;
	enum backend_engine engine;
	unsigned int queue_depth;	/* 0: default */
	bool readonly;
	/* Error injection, in millionths: that share of reads/writes ends with -EIO. */
	unsigned int fail_reads_ppm;
	unsigned int fail_writes_ppm;
	/* rbd: conf=, id=, cluster=; NULL when not given. */
	char *rbd_conf;
	char *rbd_id;
	char *rbd_cluster;
};

struct backend;

struct backend_ops {
	const char *name;
	/*
	 * Set up @be from @p: fill size, block sizes, caps and the queue
	 * limits (backend_init_queue()).  0, or -errno with a message in @err.
	 */
	int (*open)(struct backend *be, const struct backend_params *p,
		    char *err, size_t errlen);
	/* Release everything. No request is in flight. */
	void (*close)(struct backend *be);
	/* Start @rq; see the threading rules above. */
	void (*queue_rq)(struct backend *be, struct request *rq);
	/* Answer @req; NULL when the backend has no extents (all data). */
	void (*extents)(struct backend *be, struct backend_extents_req *req);
};

struct backend {
	const struct backend_ops *ops;
	struct blk_queue queue;		/* bios for this backend go here */
	uint64_t size;			/* bytes */
	unsigned int logical_block_size;
	unsigned int physical_block_size;
	unsigned int caps;
	bool readonly;
	const char *engine;		/* what does the I/O, for logs: "io_uring", "sync" */
	struct pgalloc *pages;		/* bounce buffers' pages; may be NULL */
	void *priv;			/* the backend's */
	/* fail-reads= / fail-writes=: requests that end with -EIO unseen by the backend. */
	struct fault_attr fail_reads;
	struct fault_attr fail_writes;
};

/**
 * backend_parse - parse a spec
 * @spec: KIND:TARGET[,key=value...], e.g.
 *	"file:/var/lib/blockd/disk.img,size=1G,cache=none", "memory:,size=512M",
 *	"nbd:nbd+unix:///?socket=/run/x.sock",
 *	"rbd:rbd/disk@snap,conf=/etc/ceph/ceph.conf,id=blockd"
 * @p: filled; free it with backend_params_free()
 * @err: a message on failure
 * @errlen: its size
 *
 * Keys: size, cache=none|writeback, engine=auto|uring|sync, queue-depth=N,
 * readonly, for rbd conf=PATH, id=CLIENT, cluster=NAME, and for tests
 * fail-reads=P, fail-writes=P (P a fraction 0..1 of requests that end
 * with -EIO).  An rbd spec in a build without librbd fails here, saying
 * so.
 *
 * Return: 0, or -EINVAL with a message in @err.
 */
int backend_parse(const char *spec, struct backend_params *p, char *err,
		  size_t errlen);

/**
 * backend_params_free - free what backend_parse() allocated in @p
 * @p: the parameters
 */
void backend_params_free(struct backend_params *p);

/**
 * backend_param_set - set one spec key of @p
 * @p: the parameters
 * @key: the key, as in a spec
 * @value: its value; NULL for a key alone (",readonly")
 * @err: a message on failure
 * @errlen: its size
 *
 * As if ",@key=@value" were in a spec; for config files, whose keys are
 * the spec's.
 *
 * Return: 0, or -EINVAL with a message in @err.
 */
int backend_param_set(struct backend_params *p, const char *key,
		      const char *value, char *err, size_t errlen);

/**
 * backend_open - open the backend @p names
 * @p: a parsed spec
 * @pages: the page allocator the backend takes its own buffers from (the
 *	file engines' bounce buffers for unaligned direct I/O); may be NULL,
 *	when those buffers come from a small reserve or the I/O fails with
 *	-ENOMEM
 * @out: the backend, on success
 * @err: a message on failure
 * @errlen: its size
 *
 * Return: 0 and *@out, or -errno with a message in @err.
 */
int backend_open(const struct backend_params *p, struct pgalloc *pages,
		 struct backend **out, char *err, size_t errlen);

/**
 * backend_open_spec - backend_parse() then backend_open()
 * @spec: KIND:TARGET[,key=value...]
 * @pages: as for backend_open()
 * @out: the backend, on success
 * @err: a message on failure
 * @errlen: its size
 *
 * Return: 0 and *@out, or -errno with a message in @err.
 */
int backend_open_spec(const char *spec, struct pgalloc *pages,
		      struct backend **out, char *err, size_t errlen);

/**
 * backend_close - close and free a backend
 * @be: the backend, with no request in flight; NULL does nothing
 */
void backend_close(struct backend *be);

/**
 * backend_extents - start an extents query
 * @be: the backend
 * @req: the query (see struct backend_extents_req)
 *
 * A backend without extents answers one data extent for the whole range.
 */
void backend_extents(struct backend *be, struct backend_extents_req *req);

/*
 * A request or extents query that a backend hands to a thread of its own
 * (libnbd's, librbd's) and ends on the loop thread that submitted it, so
 * that bio_endio and extents callbacks never run on a foreign thread.
 * Embedded in the backend's own command; the backend may also use @work
 * to post other steps to @loop.
 */
struct backend_cmd {
	struct ioloop_work work;
	struct ioloop *loop;		/* the submitter's; NULL: end where it finishes */
	struct request *rq;		/* or, for extents: */
	struct backend_extents_req *ext;
	int status;			/* first error */
	struct backend_cmd_pool *pool;
};

/* A backend's commands: a mempool with a reserve, and those not yet ended. */
struct backend_cmd_pool {
	mempool_t pool;
	size_t size;
	atomic_uint nr;
};

/**
 * backend_cmd_pool_init - set up a backend's pool of commands
 * @cp: the pool
 * @reserve: commands kept in reserve for when malloc fails
 * @size: bytes per command, a struct starting with struct backend_cmd
 *
 * Return: 0 or -ENOMEM.
 */
int backend_cmd_pool_init(struct backend_cmd_pool *cp, int reserve, size_t size);

/**
 * backend_cmd_pool_exit - free the pool's reserve
 * @cp: the pool; every command must have ended
 */
void backend_cmd_pool_exit(struct backend_cmd_pool *cp);

/**
 * backend_cmd_alloc - a zeroed command for the calling thread's loop
 * @cp: the pool
 *
 * Counted until it ends.  Waits for one to be freed when the pool and its
 * reserve are spent.
 *
 * Return: the command.
 */
void *backend_cmd_alloc(struct backend_cmd_pool *cp);

/**
 * backend_cmd_end - end @c here, on its submitter's thread
 * @c: the command
 *
 * The command is freed first, since ending its request may submit more
 * and want one; then the request ends with @c->status, or the extents
 * query does (reporting nothing on error).
 */
void backend_cmd_end(struct backend_cmd *c);

/**
 * backend_cmd_finish - end @c from another thread
 * @c: the command
 *
 * It ends on its submitter's loop, or here if it has none.
 */
void backend_cmd_finish(struct backend_cmd *c);

/**
 * backend_init_queue - set up be->queue, for open()
 * @be: the backend
 * @lim: the limits; NULL for the defaults
 *
 * The queue's queue_rq calls be->ops->queue_rq.
 *
 * Return: 0 or -errno.
 */
int backend_init_queue(struct backend *be, const struct queue_limits *lim);

/**
 * queue_to_backend - the backend that owns @q
 * @q: a queue set up by backend_init_queue()
 *
 * Return: the backend.
 */
static inline struct backend *queue_to_backend(struct blk_queue *q)
{
	return q->queuedata;
}

/**
 * backend_check_request - check @rq against the backend's size and mode
 * @be: the backend
 * @rq: the request
 *
 * Return: 0, or the -errno to end it with (see the error rules above).
 */
int backend_check_request(const struct backend *be, const struct request *rq);

/**
 * backend_thread_create - start a backend's helper thread
 * @thread: set to the thread
 * @fn: what it runs
 * @arg: @fn's argument
 * @name: the thread's name, for ps and gdb
 *
 * Every signal is blocked in it: signals are for the daemon's own threads.
 *
 * Return: 0 or -errno.
 */
int backend_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg,
			  const char *name);

/* The backends, for open() to dispatch on. */
extern const struct backend_ops backend_file_ops;	/* uring.c, or sync.c */
extern const struct backend_ops backend_memory_ops;	/* memory.c */
extern const struct backend_ops backend_nbd_ops;	/* nbd.c */
#ifdef HAVE_RBD
extern const struct backend_ops backend_rbd_ops;	/* rbd.c */
#endif

/**
 * backend_have_rbd - whether this build has the rbd backend
 *
 * Return: true if configured --with-rbd.
 */
static inline bool backend_have_rbd(void)
{
#ifdef HAVE_RBD
	return true;
#else
	return false;
#endif
}

#endif
