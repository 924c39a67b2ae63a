/* SPDX-License-Identifier: MIT */
/*
 * What every backend shares: the spec grammar, choosing the engine for
 * files, the queue that leads to queue_rq(), and request bounds checks.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/file.h"
#include "core/compiler.h"
#include "core/size.h"

static bool parse_bool(const char *v, bool *out)
{
	if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*out = false;
	else
		return false;
	return true;
}

/*
 * One spec key's setter: @val is never NULL or empty except for keys
 * that take no value (readonly).  0, or -errno with a message in @err.
 */
typedef int (key_set_fn)(struct backend_params *p, const char *key,
			 const char *val, char *err, size_t errlen);

static int set_readonly(struct backend_params *p, const char *key,
			const char *val, char *err, size_t errlen)
{
	(void)key;
	if (parse_bool(val, &p->readonly))
		return 0;
	snprintf(err, errlen, "readonly takes true or false, not '%s'", val);
	return -EINVAL;
}

static int set_size(struct backend_params *p, const char *key,
		    const char *val, char *err, size_t errlen)
{
	(void)key;
	if (!parse_size(val, &p->size) && p->size)
		return 0;
	snprintf(err, errlen, "bad size '%s' (try 1G, 512M, 4096)", val);
	return -EINVAL;
}

/* A key's named values; the list ends with a NULL name. */
struct choice {
	const char *name;
	int value;
};

static bool choose(const struct choice *c, const char *val, int *out)
{
	for (; c->name; c++) {
		if (!strcmp(c->name, val)) {
			*out = c->value;
			return true;
		}
	}
	return false;
}

static const struct choice cache_choices[] = {
	{ "none", BACKEND_CACHE_NONE },
	{ "writeback", BACKEND_CACHE_WRITEBACK },
	{ NULL, 0 },
};

static const struct choice engine_choices[] = {
	{ "auto", BACKEND_ENGINE_AUTO },
	{ "uring", BACKEND_ENGINE_URING },
	{ "io_uring", BACKEND_ENGINE_URING },
	{ "sync", BACKEND_ENGINE_SYNC },
	{ NULL, 0 },
};

/* cache= and engine=: one of their named values. */
static int set_choice(struct backend_params *p, const char *key,
		      const char *val, char *err, size_t errlen)
{
	bool cache = !strcmp(key, "cache");
	int v;

	if (!choose(cache ? cache_choices : engine_choices, val, &v)) {
		snprintf(err, errlen, "%s takes %s, not '%s'", key,
			 cache ? "none or writeback" : "auto, uring or sync", val);
		return -EINVAL;
	}
	if (cache)
		p->cache = (enum backend_cache)v;
	else
		p->engine = (enum backend_engine)v;
	return 0;
}

static int set_queue_depth(struct backend_params *p, const char *key,
			   const char *val, char *err, size_t errlen)
{
	char *end;
	long n = strtol(val, &end, 10);

	(void)key;
	if (*end || n < 1 || n > 4096) {
		snprintf(err, errlen, "queue-depth takes 1 to 4096, not '%s'", val);
		return -EINVAL;
	}
	p->queue_depth = (unsigned int)n;
	return 0;
}

/* conf=, id=, cluster=: strings for the rbd backend. */
static int set_rbd(struct backend_params *p, const char *key,
		   const char *val, char *err, size_t errlen)
{
	char **slot = !strcmp(key, "conf") ? &p->rbd_conf :
		      !strcmp(key, "id") ? &p->rbd_id : &p->rbd_cluster;

	if (strcmp(p->kind, "rbd")) {
		snprintf(err, errlen, "key '%s' is for the rbd backend only", key);
		return -EINVAL;
	}
	free(*slot);
	*slot = strdup(val);
	if (!*slot) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* fail-reads=, fail-writes=: a fraction, kept in millionths. */
static int set_fail(struct backend_params *p, const char *key,
		    const char *val, char *err, size_t errlen)
{
	char *end;
	double f = strtod(val, &end);

	if (*end || !(f >= 0 && f <= 1)) {
		snprintf(err, errlen, "%s takes a fraction from 0 to 1, not '%s'", key, val);
		return -EINVAL;
	}
	*(!strcmp(key, "fail-reads") ? &p->fail_reads_ppm : &p->fail_writes_ppm) =
		(unsigned int)(f * 1000000 + 0.5);
	return 0;
}

static const struct spec_key {
	const char *name;
	key_set_fn *set;
	bool needs_value;
} spec_keys[] = {
	{ "readonly", set_readonly, false },
	{ "ro", set_readonly, false },
	{ "size", set_size, true },
	{ "cache", set_choice, true },
	{ "engine", set_choice, true },
	{ "queue-depth", set_queue_depth, true },
	{ "conf", set_rbd, true },
	{ "id", set_rbd, true },
	{ "cluster", set_rbd, true },
	{ "fail-reads", set_fail, true },
	{ "fail-writes", set_fail, true },
};

static int parse_key(struct backend_params *p, char *kv, char *err,
		     size_t errlen)
{
	char *val = strchr(kv, '=');
	const struct spec_key *k;

	if (val)
		*val++ = '\0';
	for (k = spec_keys; k < spec_keys + ARRAY_SIZE(spec_keys); k++)
		if (!strcmp(kv, k->name))
			break;
	if (k < spec_keys + ARRAY_SIZE(spec_keys) && !k->needs_value)
		return k->set(p, kv, val, err, errlen);
	if (!val || !*val) {
		snprintf(err, errlen, "key '%s' needs a value (%s=...)", kv, kv);
		return -EINVAL;
	}
	if (k < spec_keys + ARRAY_SIZE(spec_keys))
		return k->set(p, kv, val, err, errlen);
	snprintf(err, errlen,
		 "unknown key '%s' (known: size, cache, engine, queue-depth, readonly, conf, id, cluster, fail-reads, fail-writes)",
		 kv);
	return -EINVAL;
}

int backend_param_set(struct backend_params *p, const char *key,
		      const char *value, char *err, size_t errlen)
{
	char *kv;
	int ret;

	if (asprintf(&kv, "%s%s%s", key, value ? "=" : "", value ? value : "") < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = parse_key(p, kv, err, errlen);
	free(kv);
	return ret;
}

static const char *const kinds[] = { "file", "memory", "nbd", "rbd" };

int backend_parse(const char *spec, struct backend_params *p, char *err,
		  size_t errlen)
{
	char *copy, *colon, *comma, *kv, *save = NULL;
	bool known = false;
	int ret = -EINVAL;

	memset(p, 0, sizeof(*p));
	copy = strdup(spec);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	colon = strchr(copy, ':');
	if (!colon) {
		snprintf(err, errlen, "'%s' is not BACKEND:TARGET[,key=value...]", spec);
		goto out;
	}
	*colon = '\0';
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		known |= !strcmp(copy, kinds[i]);
	if (!known) {
		snprintf(err, errlen, "unknown backend '%s' (known: file, memory, nbd, rbd)", copy);
		goto out;
	}
	if (!strcmp(copy, "rbd") && !backend_have_rbd()) {
		snprintf(err, errlen,
			 "backend rbd is not built into this blockd (build it with librbd-dev installed, configure --with-rbd)");
		goto out;
	}
	/*
	 * Options follow the first comma.  An NBD URI has no commas of its
	 * own in practice; a path with a comma cannot be given this way.
	 */
	comma = strchr(colon + 1, ',');
	if (comma)
		*comma = '\0';
	p->kind = strdup(copy);
	p->target = strdup(colon + 1);
	if (!p->kind || !p->target) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	if (strcmp(p->kind, "memory") && !*p->target) {
		snprintf(err, errlen, "backend %s needs a %s", p->kind,
			 !strcmp(p->kind, "nbd") ? "URI" :
			 !strcmp(p->kind, "rbd") ? "POOL/IMAGE" : "path");
		goto out;
	}
	if (!strcmp(p->kind, "memory") && *p->target) {
		snprintf(err, errlen, "backend memory takes no target (memory:,size=N)");
		goto out;
	}
	if (comma) {
		for (kv = strtok_r(comma + 1, ",", &save); kv;
		     kv = strtok_r(NULL, ",", &save)) {
			if (parse_key(p, kv, err, errlen))
				goto out;
		}
	}
	if (!strcmp(p->kind, "memory") && !p->size) {
		snprintf(err, errlen, "backend memory needs a size (memory:,size=N)");
		goto out;
	}
	ret = 0;
out:
	free(copy);
	if (ret)
		backend_params_free(p);
	return ret;
}

void backend_params_free(struct backend_params *p)
{
	free(p->kind);
	free(p->target);
	free(p->rbd_conf);
	free(p->rbd_id);
	free(p->rbd_cluster);
	memset(p, 0, sizeof(*p));
}

static void backend_queue_rq(struct blk_queue *q, struct request *rq)
{
	struct backend *be = queue_to_backend(q);
	int ret = backend_check_request(be, rq);

	if (unlikely(ret)) {
		blk_end_request(rq, ret);
		return;
	}
	/* Injected failures stand for a disk that failed the I/O. */
	if (unlikely(req_op(rq) != REQ_OP_FLUSH &&
		     should_fail(op_is_write(req_op(rq)) ? &be->fail_writes :
				 &be->fail_reads))) {
		blk_end_request(rq, -EIO);
		return;
	}
	be->ops->queue_rq(be, rq);
}

static const struct blk_queue_ops backend_queue_ops = {
	.queue_rq = backend_queue_rq,
};

int backend_init_queue(struct backend *be, const struct queue_limits *lim)
{
	return blk_queue_init(&be->queue, &backend_queue_ops, lim, be);
}

int backend_check_request(const struct backend *be, const struct request *rq)
{
	enum req_op op = req_op(rq);
	uint64_t off = blk_rq_pos_bytes(rq);

	if (op == REQ_OP_FLUSH)
		return 0;
	if (be->readonly && op_is_write(op))
		return -EROFS;
	if (off > be->size || rq->bytes > be->size - off)
		return op_is_write(op) ? -ENOSPC : -EINVAL;
	return 0;
}

/* The file engine for @p: "sync" when asked or when io_uring is unusable. */
static const struct backend_ops *file_engine(const struct backend_params *p,
					     char *err, size_t errlen)
{
	int why;

	if (p->engine == BACKEND_ENGINE_SYNC)
		return &backend_sync_ops;
	why = file_uring_usable();
	if (!why)
		return &backend_uring_ops;
	if (p->engine == BACKEND_ENGINE_URING) {
		snprintf(err, errlen, "engine=uring, but io_uring is unavailable: %s",
			 why > 0 ? strerror(why) : "disabled by BLOCKD_NO_IO_URING");
		return NULL;
	}
	/* Once per process: the reason the fast engine is not used. */
	{
		static atomic_bool said;

		if (!atomic_exchange(&said, true))
			fprintf(stderr,
				"blockd: io_uring is unavailable (%s); using the sync engine (worker threads)\n",
				why > 0 ? strerror(why) : "disabled by BLOCKD_NO_IO_URING");
	}
	return &backend_sync_ops;
}

int backend_open(const struct backend_params *p, struct pgalloc *pages,
		 struct backend **out, char *err, size_t errlen)
{
	const struct backend_ops *ops;
	struct backend *be;
	int ret;

	if (!strcmp(p->kind, "file"))
		ops = file_engine(p, err, errlen);
	else if (!strcmp(p->kind, "memory"))
		ops = &backend_memory_ops;
	else if (!strcmp(p->kind, "nbd"))
		ops = &backend_nbd_ops;
#ifdef HAVE_RBD
	else if (!strcmp(p->kind, "rbd"))
		ops = &backend_rbd_ops;
#endif
	else {
		snprintf(err, errlen, "unknown backend '%s'", p->kind);
		return -EINVAL;
	}
	if (!ops)
		return -EOPNOTSUPP;

	be = calloc(1, sizeof(*be));
	if (!be) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	be->ops = ops;
	be->readonly = p->readonly;
	be->logical_block_size = 512;
	be->physical_block_size = 4096;
	be->engine = ops->name;
	be->pages = pages;
	if (p->fail_reads_ppm)
		fault_fail_probability(&be->fail_reads, p->fail_reads_ppm, 0x5eed);
	if (p->fail_writes_ppm)
		fault_fail_probability(&be->fail_writes, p->fail_writes_ppm, 0xfa11);
	ret = ops->open(be, p, err, errlen);
	if (ret) {
		free(be);
		return ret;
	}
	*out = be;
	return 0;
}

int backend_open_spec(const char *spec, struct pgalloc *pages,
		      struct backend **out, char *err, size_t errlen)
{
	struct backend_params p;
	int ret;

	ret = backend_parse(spec, &p, err, errlen);
	if (ret)
		return ret;
	ret = backend_open(&p, pages, out, err, errlen);
	backend_params_free(&p);
	return ret;
}

void backend_close(struct backend *be)
{
	if (!be)
		return;
	be->ops->close(be);
	free(be);
}

void backend_extents(struct backend *be, struct backend_extents_req *req)
{
	req->nr = 0;
	if (req->offset >= be->size || !req->length || !req->max) {
		req->status = -EINVAL;
		req->done(req);
		return;
	}
	if (be->ops->extents) {
		be->ops->extents(be, req);
		return;
	}
	/* No extents to tell: all data, clipped to the device. */
	req->status = 0;
	req->ext[0].offset = req->offset;
	req->ext[0].length = req->length < be->size - req->offset ?
			     req->length : be->size - req->offset;
	req->ext[0].flags = 0;
	req->nr = 1;
	req->done(req);
}

int backend_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg,
			  const char *name)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return -ret;
	pthread_setname_np(*thread, name);
	return 0;
}

int backend_cmd_pool_init(struct backend_cmd_pool *cp, int reserve, size_t size)
{
	atomic_init(&cp->nr, 0);
	cp->size = size;
	return mempool_init_kmalloc_pool(&cp->pool, reserve, size);
}

void backend_cmd_pool_exit(struct backend_cmd_pool *cp)
{
	mempool_exit(&cp->pool);
}

void *backend_cmd_alloc(struct backend_cmd_pool *cp)
{
	struct backend_cmd *c = mempool_alloc(&cp->pool, BLK_GFP_WAIT);

	memset(c, 0, cp->size);
	atomic_fetch_add(&cp->nr, 1);
	c->pool = cp;
	c->loop = ioloop_current();
	return c;
}

void backend_cmd_end(struct backend_cmd *c)
{
	struct backend_cmd_pool *cp = c->pool;
	struct request *rq = c->rq;
	struct backend_extents_req *ext = c->ext;
	int status = c->status;

	mempool_free(c, &cp->pool);
	atomic_fetch_sub(&cp->nr, 1);
	if (rq) {
		blk_end_request(rq, status);
		return;
	}
	ext->status = status;
	if (status)
		ext->nr = 0;
	ext->done(ext);
}

static void cmd_end_work(struct ioloop_work *w)
{
	backend_cmd_end(container_of(w, struct backend_cmd, work));
}

void backend_cmd_finish(struct backend_cmd *c)
{
	if (c->loop) {
		c->work.fn = cmd_end_work;
		ioloop_post(c->loop, &c->work);
		return;
	}
	backend_cmd_end(c);
}
