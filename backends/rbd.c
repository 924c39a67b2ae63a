/* SPDX-License-Identifier: MIT */
/*
 * rbd: a Ceph RBD image, through librbd.  Spec
 * "rbd:POOL/IMAGE[@SNAP][,conf=PATH][,id=CLIENT][,cluster=NAME]", also
 * "rbd:POOL/NAMESPACE/IMAGE".  conf= is a ceph.conf (default: librados's
 * own search, $CEPH_CONF first), id= the client name without "client."
 * (default admin), cluster= the cluster name (default ceph).
 *
 * Threading.  librbd's aio calls do not block the caller
 * (rbd_non_blocking_aio), so a request's I/O is issued straight from
 * queue_rq() on the submitter's loop thread, as many at once as the front
 * end sends.  librbd runs completion callbacks on threads of its own; the
 * callback only records the result and posts the command back to the loop
 * it came from (ioloop_post(): a lock-free push and an eventfd kick, never
 * a wait), where the next phase is issued or the request ended.  A
 * submitter with no loop has its requests advanced on librbd's thread.
 *
 * Phases.  REQ_PREFLUSH is a flush that completes before the op starts;
 * REQ_FUA is the op, then a flush (librbd has no per-write FUA).  A read
 * or write is one rbd_aio_readv/writev over the request's iovecs (librbd
 * copies writes; see connect_cluster()).  WRITE_ZEROES with REQ_NOUNMAP asks librbd to keep the range
 * allocated (RBD_WRITE_ZEROES_FLAG_THICK_PROVISION).
 *
 * Extents come from rbd_diff_iterate2 against the image's creation: what
 * it reports is data, the rest holes that read as zeros.  That call is
 * synchronous, so queries go to one helper thread of the backend's, which
 * posts each answer back to its submitter's loop.
 *
 * Errors.  librados is told to give up on an OSD or mon op after a while
 * (rados_osd_op_timeout, rados_mon_op_timeout; RBD_OP_TIMEOUT when the
 * configuration leaves them at 0, which means "wait forever"), so a stopped
 * OSD fails requests instead of hanging them.  Anything that is not about
 * the request itself (timeouts, EBLOCKLISTED, a lost connection) ends the
 * bios with -EIO.  The first such failure of a burst is logged, and the
 * first success after it; librados reconnects by itself when the cluster
 * is back.  A blocklisted client stays blocklisted: restart the daemon.
 *
 * Cache.  librbd's own cache acknowledges a write before an OSD has it
 * and reports a failure only at the next flush, so a dead OSD would go
 * unnoticed by every write.  By default (and with cache=none) it is off
 * (rbd_cache = false) and each write completes when the OSD has it;
 * cache=writeback leaves librbd's cache as the configuration sets it.
 *
 * The spec keys engine= and queue-depth= do not apply and are ignored;
 * size= must match the image if given.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "backends/backend.h"
#include "core/ioloop.h"

#ifndef IOV_MAX
#define IOV_MAX	1024
#endif
#ifndef EBLOCKLISTED
#define EBLOCKLISTED	ESHUTDOWN
#endif

/* Seconds an OSD or mon op may take when the configuration says "forever". */
#define RBD_OP_TIMEOUT		"30"
/* Seconds rados_connect() may wait for a mon; Ceph's default is 300. */
#define RBD_MOUNT_TIMEOUT	30
/* One extents query covers at most this much. */
#define RBD_MAX_EXTENT_BYTES	(1ull << 30)
/* Commands kept in reserve, so submitting never fails for memory. */
#define RBD_CMD_RESERVE		16

enum rbd_phase {
	PHASE_NEW,
	PHASE_PREFLUSH,		/* REQ_PREFLUSH: flush before the op */
	PHASE_MAIN,
	PHASE_POSTFLUSH,	/* REQ_FUA: flush after */
	PHASE_DONE,
};

/* One request or extents query. */
struct rbd_cmd {
	struct backend_cmd bc;		/* first: the pool allocates the whole */
	struct rbd_cmd *next;		/* extents queue */
	struct rbd_dev *dev;
	uint64_t ext_end;		/* end of the range asked of librbd */
	enum rbd_phase phase;
};

struct rbd_dev {
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	char *name;			/* POOL/IMAGE[@SNAP], for log lines */

	/* A burst of cluster errors: logged at its start and end. */
	atomic_bool failing;
	atomic_uint burst_errors;

	/* The extents thread and its queue. */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rbd_cmd *ext_head, *ext_tail;
	bool stop;

	struct backend_cmd_pool cmds;
};

/*
 * A librbd result, as the backend contract spells errors.  Anything that
 * is not a statement about the request is a failed device.
 */
static int rbd_status(int r)
{
	switch (r) {
	case -ENOSPC:
	case -EDQUOT:
		return -ENOSPC;
	case -EROFS:
	case -EPERM:
		return -EROFS;
	case -EOPNOTSUPP:
		return -EOPNOTSUPP;
	case -EINVAL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* Log the first cluster error of a burst, and its end. */
static void note_result(struct rbd_dev *dev, int r)
{
	if (r >= 0) {
		if (atomic_load_explicit(&dev->failing, memory_order_relaxed) &&
		    atomic_exchange(&dev->failing, false))
			fprintf(stderr, "blockd: rbd: %s: I/O works again (%u request(s) failed meanwhile)\n",
				dev->name, atomic_exchange(&dev->burst_errors, 0));
		return;
	}
	if (rbd_status(r) != -EIO)
		return;
	atomic_fetch_add(&dev->burst_errors, 1);
	if (!atomic_exchange(&dev->failing, true))
		fprintf(stderr, "blockd: rbd: %s: I/O failed: %s%s; failing requests with EIO until the cluster answers again\n",
			dev->name, strerror(-r),
			r == -EBLOCKLISTED ? " (this client is blocklisted)" : "");
}

/* Requests. */

static void cmd_advance(struct rbd_cmd *cmd);

static void cmd_advance_work(struct ioloop_work *w)
{
	cmd_advance(container_of(w, struct rbd_cmd, bc.work));
}

/* librbd's thread: record the result, send the command home. */
static void rbd_cb(rbd_completion_t c, void *arg)
{
	struct rbd_cmd *cmd = arg;
	int r = (int)rbd_aio_get_return_value(c);

	rbd_aio_release(c);
	note_result(cmd->dev, r);
	if (r < 0 && !cmd->bc.status)
		cmd->bc.status = rbd_status(r);
	if (cmd->bc.loop) {
		cmd->bc.work.fn = cmd_advance_work;
		ioloop_post(cmd->bc.loop, &cmd->bc.work);
		return;
	}
	cmd_advance(cmd);
}

/* Issue @cmd's current phase.  Returns 0, or a librbd error it did not start with. */
static int issue(struct rbd_cmd *cmd)
{
	struct rbd_dev *dev = cmd->dev;
	struct request *rq = cmd->bc.rq;
	uint64_t off = blk_rq_pos_bytes(rq);
	rbd_completion_t c;
	int r;

	r = rbd_aio_create_completion(cmd, rbd_cb, &c);
	if (r < 0)
		return r;
	if (cmd->phase != PHASE_MAIN) {
		r = rbd_aio_flush(dev->image, c);
		goto out;
	}
	switch (req_op(rq)) {
	case REQ_OP_READ:
		r = rbd_aio_readv(dev->image, rq->iov, (int)rq->nr_segs, off, c);
		break;
	case REQ_OP_WRITE:
		r = rbd_aio_writev(dev->image, rq->iov, (int)rq->nr_segs, off, c);
		break;
	case REQ_OP_FLUSH:
		r = rbd_aio_flush(dev->image, c);
		break;
	case REQ_OP_DISCARD:
		r = rbd_aio_discard(dev->image, off, rq->bytes, c);
		break;
	case REQ_OP_WRITE_ZEROES:
		r = rbd_aio_write_zeroes(dev->image, off, rq->bytes, c,
					 (rq->cmd_flags & REQ_NOUNMAP) ?
					 RBD_WRITE_ZEROES_FLAG_THICK_PROVISION : 0, 0);
		break;
	default:
		r = -EOPNOTSUPP;
	}
out:
	if (r < 0)
		rbd_aio_release(c);
	return r;
}

/* The phase after the current one that applies to @rq. */
static enum rbd_phase next_phase(const struct rbd_cmd *cmd)
{
	const struct request *rq = cmd->bc.rq;
	enum req_op op = req_op(rq);
	enum rbd_phase ph = cmd->phase + 1;

	if (ph == PHASE_PREFLUSH &&
	    !((rq->cmd_flags & REQ_PREFLUSH) && op != REQ_OP_FLUSH))
		ph++;
	if (ph == PHASE_MAIN && !rq->bytes && op != REQ_OP_FLUSH)
		ph++;	/* nothing to do; librbd would only queue a no-op */
	if (ph == PHASE_POSTFLUSH && !((rq->cmd_flags & REQ_FUA) && op_is_write(op)))
		ph++;
	return ph;
}

/* On the submitter's loop thread: issue the next phase, or end. */
static void cmd_advance(struct rbd_cmd *cmd)
{
	while (!cmd->bc.status) {
		int r;

		cmd->phase = next_phase(cmd);
		if (cmd->phase == PHASE_DONE)
			break;
		r = issue(cmd);
		if (!r)
			return;		/* rbd_cb() brings it back */
		note_result(cmd->dev, r);
		cmd->bc.status = rbd_status(r);
	}
	backend_cmd_end(&cmd->bc);
}

static struct rbd_cmd *cmd_alloc(struct rbd_dev *dev)
{
	struct rbd_cmd *cmd = backend_cmd_alloc(&dev->cmds);

	cmd->dev = dev;
	return cmd;
}

static void rbd_queue_rq(struct backend *be, struct request *rq)
{
	struct rbd_cmd *cmd = cmd_alloc(be->priv);

	cmd->bc.rq = rq;
	cmd_advance(cmd);
}

/* Extents, on the helper thread. */

struct diff_range {
	uint64_t off, len;
};

/* What rbd_diff_iterate2 reported: data ranges, in no particular order. */
struct diff_state {
	struct diff_range *r;
	size_t nr, cap;
};

/*
 * librbd diffs objects concurrently and reports each as it finishes, so
 * the ranges are gathered first and put in order afterwards.
 */
static int diff_cb(uint64_t off, size_t len, int exists, void *arg)
{
	struct diff_state *s = arg;

	if (!exists || !len)
		return 0;	/* gone since the start: a hole, like unreported ranges */
	if (s->nr == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct diff_range *r = realloc(s->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		s->r = r;
		s->cap = cap;
	}
	s->r[s->nr++] = (struct diff_range){ off, len };
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct diff_range *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Append [*pos, *pos + len) to the answer; false when it is full. */
static bool add_extent(struct backend_extents_req *req, uint64_t *pos,
		       uint64_t len, uint32_t flags)
{
	struct backend_extent *last = req->nr ? &req->ext[req->nr - 1] : NULL;

	if (!len)
		return true;
	if (last && last->flags == flags) {
		last->length += len;
	} else {
		if (req->nr == req->max)
			return false;
		req->ext[req->nr++] = (struct backend_extent){ *pos, len, flags };
	}
	*pos += len;
	return true;
}

static void do_extents(struct rbd_dev *dev, struct rbd_cmd *cmd)
{
	const uint32_t hole = BACKEND_EXTENT_HOLE | BACKEND_EXTENT_ZERO;
	struct backend_extents_req *req = cmd->bc.ext;
	uint64_t pos = req->offset, end = cmd->ext_end;
	struct diff_state s = { 0 };
	int r;

	req->nr = 0;
	r = rbd_diff_iterate2(dev->image, NULL, req->offset, end - req->offset,
			      1, 0, diff_cb, &s);
	note_result(dev, r);
	if (r < 0) {
		cmd->bc.status = rbd_status(r);
		goto out;
	}
	if (s.nr)	/* qsort() takes no NULL, even for nothing */
		qsort(s.r, s.nr, sizeof(*s.r), range_cmp);
	for (size_t i = 0; i < s.nr && pos < end; i++) {
		/* Clip to what was asked; librbd may report whole objects. */
		uint64_t a = max_t(uint64_t, s.r[i].off, pos);
		uint64_t b = min_t(uint64_t, s.r[i].off + s.r[i].len, end);

		if (a >= b)
			continue;
		if (!add_extent(req, &pos, a - pos, hole) ||
		    !add_extent(req, &pos, b - a, 0))
			goto out;
	}
	/* Past the last data, up to the end asked: a hole. */
	add_extent(req, &pos, end - pos, hole);
out:
	free(s.r);
	if (!cmd->bc.status && !req->nr)
		cmd->bc.status = -EIO;
}

static void *extents_thread(void *arg)
{
	struct rbd_dev *dev = arg;

	pthread_mutex_lock(&dev->lock);
	for (;;) {
		struct rbd_cmd *cmd = dev->ext_head;

		if (!cmd) {
			if (dev->stop)
				break;
			pthread_cond_wait(&dev->cond, &dev->lock);
			continue;
		}
		dev->ext_head = cmd->next;
		if (!dev->ext_head)
			dev->ext_tail = NULL;
		pthread_mutex_unlock(&dev->lock);
		do_extents(dev, cmd);
		backend_cmd_finish(&cmd->bc);
		pthread_mutex_lock(&dev->lock);
	}
	pthread_mutex_unlock(&dev->lock);
	return NULL;
}

static void rbd_extents(struct backend *be, struct backend_extents_req *req)
{
	struct rbd_dev *dev = be->priv;
	uint64_t end = req->offset + min_t(uint64_t, req->length, be->size - req->offset);
	struct rbd_cmd *cmd = cmd_alloc(dev);

	cmd->bc.ext = req;
	cmd->ext_end = req->offset + min_t(uint64_t, end - req->offset, RBD_MAX_EXTENT_BYTES);
	req->nr = 0;
	pthread_mutex_lock(&dev->lock);
	if (dev->ext_tail)
		dev->ext_tail->next = cmd;
	else
		dev->ext_head = cmd;
	dev->ext_tail = cmd;
	pthread_cond_signal(&dev->cond);
	pthread_mutex_unlock(&dev->lock);
}

/* Open and close. */

/* Split "POOL[/NAMESPACE]/IMAGE[@SNAP]" in place. */
static int parse_target(char *t, char **pool, char **ns, char **image,
			char **snap, char *err, size_t errlen)
{
	char *slash = strchr(t, '/'), *at;

	*ns = *snap = NULL;
	if (!slash || slash == t)
		goto bad;
	*slash = '\0';
	*pool = t;
	*image = slash + 1;
	slash = strchr(*image, '/');
	if (slash) {
		*slash = '\0';
		*ns = *image;
		*image = slash + 1;
	}
	at = strchr(*image, '@');
	if (at) {
		*at = '\0';
		*snap = at + 1;
		if (!**snap)
			goto bad;
	}
	if (!**image || strchr(*image, '/'))
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "rbd target must be POOL/IMAGE[@SNAP] or POOL/NAMESPACE/IMAGE[@SNAP]");
	return -EINVAL;
}

/* An op timeout of 0 waits forever: give it a bound unless one is set. */
static int bound_timeouts(rados_t cluster)
{
	static const char *const keys[] = { "rados_osd_op_timeout", "rados_mon_op_timeout" };
	char buf[64];
	int r;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		r = rados_conf_get(cluster, keys[i], buf, sizeof(buf));
		if (r < 0)
			return r;
		if (strtod(buf, NULL) <= 0) {
			r = rados_conf_set(cluster, keys[i], RBD_OP_TIMEOUT);
			if (r < 0)
				return r;
		}
	}
	r = rados_conf_get(cluster, "client_mount_timeout", buf, sizeof(buf));
	if (r < 0)
		return r;
	if (strtod(buf, NULL) <= 0 || strtod(buf, NULL) > RBD_MOUNT_TIMEOUT) {
		snprintf(buf, sizeof(buf), "%d", RBD_MOUNT_TIMEOUT);
		r = rados_conf_set(cluster, "client_mount_timeout", buf);
	}
	return r;
}

static int connect_cluster(struct rbd_dev *dev, const struct backend_params *p,
			   char *err, size_t errlen)
{
	char client[256];
	int r;

	/* id=blockd and id=client.blockd both name client.blockd. */
	snprintf(client, sizeof(client), "%s%s",
		 p->rbd_id && !strncmp(p->rbd_id, "client.", 7) ? "" : "client.",
		 p->rbd_id ? p->rbd_id : "admin");
	r = rados_create2(&dev->cluster, p->rbd_cluster ? p->rbd_cluster : "ceph",
			  client, 0);
	if (r < 0) {
		dev->cluster = NULL;
		snprintf(err, errlen, "rbd %s: cannot create a cluster handle: %s",
			 dev->name, strerror(-r));
		return r;
	}
	r = rados_conf_read_file(dev->cluster, p->rbd_conf);
	if (r < 0) {
		snprintf(err, errlen, "rbd %s: cannot read %s: %s", dev->name,
			 p->rbd_conf ? p->rbd_conf : "the Ceph configuration ($CEPH_CONF, /etc/ceph/ceph.conf)",
			 strerror(-r));
		return r;
	}
	r = rados_conf_parse_env(dev->cluster, NULL);
	if (!r)
		r = bound_timeouts(dev->cluster);
	if (!r && p->cache != BACKEND_CACHE_WRITEBACK)
		r = rados_conf_set(dev->cluster, "rbd_cache", "false");
	/*
	 * librbd's dispatch thread stays (rbd_non_blocking_aio, the default):
	 * dispatching in the worker instead saved no measurable time on 1 MiB
	 * I/O (bench/rbd.sh), and the worker must not wait on librbd's locks.
	 *
	 * Writes stay copied (rbd_disable_zero_copy_writes, Ceph's default):
	 * without the copy librbd holds the completion until the messenger
	 * lets go of the caller's buffer, and it keeps it queued for resending
	 * to a dead OSD, so a timed-out write would never end.  That is worth
	 * more than what the copy costs (see bench/README.md).
	 */
	if (r < 0) {
		snprintf(err, errlen, "rbd %s: bad Ceph configuration: %s", dev->name,
			 strerror(-r));
		return r;
	}
	r = rados_connect(dev->cluster);
	if (r < 0) {
		snprintf(err, errlen, "rbd %s: cannot connect to the Ceph cluster as %s: %s",
			 dev->name, client, strerror(-r));
		return r;
	}
	return 0;
}

static int open_image(struct rbd_dev *dev, const struct backend_params *p,
		      char *err, size_t errlen)
{
	char *t = strdup(p->target), *pool, *ns, *image, *snap;
	int r;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = parse_target(t, &pool, &ns, &image, &snap, err, errlen);
	if (r)
		goto out;
	r = connect_cluster(dev, p, err, errlen);
	if (r)
		goto out;
	r = rados_ioctx_create(dev->cluster, pool, &dev->ioctx);
	if (r < 0) {
		dev->ioctx = NULL;
		snprintf(err, errlen, "rbd %s: no pool '%s': %s", dev->name, pool, strerror(-r));
		goto out;
	}
	if (ns)
		rados_ioctx_set_namespace(dev->ioctx, ns);
	/* Read-only opens take no exclusive lock; snapshots are read-only. */
	if (p->readonly || snap)
		r = rbd_open_read_only(dev->ioctx, image, &dev->image, snap);
	else
		r = rbd_open(dev->ioctx, image, &dev->image, NULL);
	if (r < 0) {
		dev->image = NULL;
		if (r == -ENOENT)
			snprintf(err, errlen, "rbd %s: no such image%s in pool '%s'",
				 dev->name, snap ? " or snapshot" : "", pool);
		else
			snprintf(err, errlen, "rbd %s: cannot open the image: %s",
				 dev->name, strerror(-r));
		goto out;
	}
	r = 0;
out:
	free(t);
	return r;
}

static int setup_backend(struct backend *be, struct rbd_dev *dev,
			 const struct backend_params *p, char *err,
			 size_t errlen)
{
	rbd_image_info_t info;
	struct queue_limits lim;
	int r;

	r = rbd_stat(dev->image, &info, sizeof(info));
	if (r < 0) {
		snprintf(err, errlen, "rbd %s: cannot stat the image: %s", dev->name,
			 strerror(-r));
		return r;
	}
	be->size = info.size - info.size % SECTOR_SIZE;
	if (!be->size) {
		snprintf(err, errlen, "rbd %s is %llu bytes, less than one sector",
			 dev->name, (unsigned long long)info.size);
		return -EINVAL;
	}
	if (p->size && p->size != be->size) {
		snprintf(err, errlen, "size=%llu given, but rbd %s is %llu bytes (the image sets the size; leave size= out)",
			 (unsigned long long)p->size, dev->name,
			 (unsigned long long)be->size);
		return -EINVAL;
	}
	be->readonly = p->readonly || strchr(p->target, '@');
	be->logical_block_size = SECTOR_SIZE;
	be->physical_block_size = 4096;
	/* One image handle serves every submitter, so a flush covers them all. */
	be->caps = BACKEND_CAP_FLUSH | BACKEND_CAP_FUA | BACKEND_CAP_TRIM |
		   BACKEND_CAP_WRITE_ZEROES | BACKEND_CAP_EXTENTS |
		   BACKEND_CAP_ZERO_DETECT | BACKEND_CAP_MULTI_CONN;
	be->engine = "librbd";

	lim.logical_block_size = SECTOR_SIZE;
	lim.physical_block_size = be->physical_block_size;
	lim.max_segments = IOV_MAX;
	/* An object at a time: bigger requests only split inside librbd. */
	lim.max_bytes = (unsigned int)min_t(uint64_t, max_t(uint64_t, info.obj_size, 1u << 20),
					    32u << 20);
	r = backend_init_queue(be, &lim);
	if (r)
		snprintf(err, errlen, "cannot set up the queue: %s", strerror(-r));
	return r;
}

static int start_thread(struct rbd_dev *dev)
{
	int ret = backend_thread_create(&dev->thread, extents_thread, dev, "blockd-rbd");

	if (!ret)
		dev->thread_started = true;
	return ret;
}

static void dev_free(struct rbd_dev *dev)
{
	if (dev->thread_started) {
		pthread_mutex_lock(&dev->lock);
		dev->stop = true;
		pthread_cond_signal(&dev->cond);
		pthread_mutex_unlock(&dev->lock);
		pthread_join(dev->thread, NULL);
	}
	if (dev->image)
		rbd_close(dev->image);
	if (dev->ioctx)
		rados_ioctx_destroy(dev->ioctx);
	if (dev->cluster)
		rados_shutdown(dev->cluster);
	backend_cmd_pool_exit(&dev->cmds);
	pthread_cond_destroy(&dev->cond);
	pthread_mutex_destroy(&dev->lock);
	free(dev->name);
	free(dev);
}

static int rbd_open_backend(struct backend *be, const struct backend_params *p,
			    char *err, size_t errlen)
{
	struct rbd_dev *dev;
	int ret;

	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&dev->lock, NULL);
	pthread_cond_init(&dev->cond, NULL);
	ret = backend_cmd_pool_init(&dev->cmds, RBD_CMD_RESERVE, sizeof(struct rbd_cmd));
	if (ret) {
		pthread_cond_destroy(&dev->cond);
		pthread_mutex_destroy(&dev->lock);
		free(dev);
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	dev->name = strdup(p->target);
	if (!dev->name) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	ret = open_image(dev, p, err, errlen);
	if (ret)
		goto fail;
	ret = setup_backend(be, dev, p, err, errlen);
	if (ret)
		goto fail;
	ret = start_thread(dev);
	if (ret) {
		snprintf(err, errlen, "cannot start the rbd extents thread: %s", strerror(-ret));
		blk_queue_exit(&be->queue);
		goto fail;
	}
	be->priv = dev;
	return 0;
fail:
	dev_free(dev);
	return ret;
}

static void rbd_close_backend(struct backend *be)
{
	struct rbd_dev *dev = be->priv;

	/* The caller's bug, but bios that never end deserve a line in the log. */
	if (atomic_load(&dev->cmds.nr))
		fprintf(stderr, "blockd: rbd: %s closed with %u requests not ended\n",
			dev->name, atomic_load(&dev->cmds.nr));
	dev_free(dev);
	blk_queue_exit(&be->queue);
}

const struct backend_ops backend_rbd_ops = {
	.name = "rbd",
	.open = rbd_open_backend,
	.close = rbd_close_backend,
	.queue_rq = rbd_queue_rq,
	.extents = rbd_extents,
};
