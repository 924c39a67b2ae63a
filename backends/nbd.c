/* SPDX-License-Identifier: MIT */
/*
 * nbd: a remote export, through libnbd.  Spec "nbd:URI", for instance
 * "nbd:nbd+unix:///?socket=/run/x.sock" or "nbd:nbd://host:10809/name".
 *
 * Threading.  One I/O thread per backend owns the libnbd handle: after
 * open() no other thread calls into libnbd until close() has joined it.
 * Submitters (queue_rq() and extents(), on their loop threads) put a
 * command on a locked list and kick an eventfd; the I/O thread polls the
 * eventfd and the NBD socket (in the direction libnbd asks for), issues
 * nbd_aio_* calls and notifies libnbd of socket events.  A handle polled
 * in one thread while others issue commands would need those others to
 * kick the poller whenever the direction changes; keeping every call on
 * one thread avoids that, and libnbd's lock is then never contended.
 *
 * libnbd callbacks run with the handle lock held and may not call libnbd,
 * so they only record the result and put the command on a ready list,
 * which the I/O thread works through after each libnbd call returns.  A
 * finished command is posted to the loop it was submitted from, whose
 * thread ends the request (the rule in backend.h); a submitter with no
 * loop (ioloop_current() NULL) has its requests ended on the I/O thread.
 *
 * Data.  libnbd reads and writes one flat buffer per command, and a
 * request carries an iovec list, so a read or write becomes one NBD
 * command per iovec, all in flight at once, and the request ends when the
 * last one does, with the first error seen.  This costs 28 bytes of
 * request header per iovec but no copy and no bounce buffer that could
 * fail for memory; core already merges memory-contiguous segments, so a
 * request is usually a few commands.
 *
 * Flushes.  REQ_PREFLUSH is a flush that must complete before the op is
 * sent (NBD orders nothing between commands in flight).  REQ_FUA is the
 * NBD FUA flag, or, from a server without FUA but with flush, a flush after
 * the op completes.  A server without flush has no cache: flushes succeed.
 *
 * A lost connection (server killed, reset, protocol error) is logged once;
 * libnbd fails everything in flight, and every later request ends with
 * -EIO at once.  The handle is not reconnected.  Opening waits at most
 * NBD_CONNECT_TIMEOUT_MS for the handshake, and close at most
 * NBD_DISCONNECT_TIMEOUT_MS for the server to acknowledge the disconnect.
 * A server that stops answering while the connection stays up is not
 * detected: its requests wait (NBD cannot cancel a single command).
 *
 * The spec keys cache=, engine= and queue-depth= do not apply and are
 * ignored; size= must match the export if given.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "backends/backend.h"
#include "core/ioloop.h"

#ifndef IOV_MAX
#define IOV_MAX	1024
#endif

/* The NBD protocol's default, and what servers that say nothing expect. */
#define NBD_MAX_BYTES		(32u << 20)
/* One block-status query covers at most this much. */
#define NBD_MAX_STATUS_BYTES	(1ull << 30)
/* A server that accepts but never finishes the handshake. */
#define NBD_CONNECT_TIMEOUT_MS	10000
/* A server that does not close after NBD_CMD_DISC. */
#define NBD_DISCONNECT_TIMEOUT_MS	2000
/* Commands kept in reserve, so submitting never fails for memory. */
#define NBD_CMD_RESERVE		16

enum nbd_phase {
	PHASE_NEW,
	PHASE_PREFLUSH,		/* REQ_PREFLUSH: flush before the op */
	PHASE_MAIN,
	PHASE_POSTFLUSH,	/* REQ_FUA without server FUA: flush after */
	PHASE_DONE,
};

/* One request or extents query on its way through the I/O thread. */
struct nbd_cmd {
	struct backend_cmd bc;		/* first: the pool allocates the whole */
	struct nbd_cmd *next;		/* submit list or ready list */
	struct nbd_dev *dev;
	uint64_t ext_end;		/* end of the range asked of the server */
	enum nbd_phase phase;
	unsigned int pending;		/* libnbd commands not yet freed; I/O thread only */
};

struct nbd_dev {
	struct nbd_handle *nbd;
	char *uri;			/* for log lines */

	bool can_flush, can_fua, can_trim, can_zero, has_extents;

	pthread_t thread;
	bool thread_started;
	int wake_fd;			/* eventfd: the submit list gained work, or stop */

	pthread_mutex_t lock;		/* guards submit list and stop */
	struct nbd_cmd *submit_head, *submit_tail;
	bool stop;

	atomic_bool dead;		/* the connection is gone for good */
	char last_error[256];		/* I/O thread: why libnbd last failed */

	struct nbd_cmd *ready_head, *ready_tail;	/* I/O thread only */

	struct backend_cmd_pool cmds;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds left until @deadline, for poll(). */
static int ms_left(uint64_t deadline)
{
	uint64_t now = now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

static void save_error(struct nbd_dev *dev)
{
	const char *msg = nbd_get_error();

	snprintf(dev->last_error, sizeof(dev->last_error), "%s",
		 msg ? msg : "unknown libnbd error");
}

/*
 * A server's errno, as the backend contract spells errors.  Anything that
 * is not a statement about the request itself is a failed device.
 */
static int nbd_status(int err)
{
	switch (err) {
	case 0:
		return 0;
	case EIO:
	case ENOSPC:
	case EINVAL:
		return -err;
	case EOPNOTSUPP:
		return -EOPNOTSUPP;
	case EPERM:
	case EROFS:
		return -EROFS;
	case EOVERFLOW:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* The connection is gone: say so once. */
static void check_dead(struct nbd_dev *dev)
{
	if (atomic_load(&dev->dead))
		return;
	if (!nbd_aio_is_dead(dev->nbd) && !nbd_aio_is_closed(dev->nbd))
		return;
	atomic_store(&dev->dead, true);
	fprintf(stderr, "blockd: nbd: lost the connection to %s (%s); all I/O to it now fails with EIO\n",
		dev->uri, dev->last_error[0] ? dev->last_error : "closed by the server");
}

/* libnbd callbacks: record, never call libnbd (its lock is held). */

static int cmd_complete_cb(void *opaque, int *error)
{
	struct nbd_cmd *cmd = opaque;

	if (*error && !cmd->bc.status)
		cmd->bc.status = nbd_status(*error);
	return 1;	/* retire the command */
}

/*
 * Called once per libnbd command after its completion callback, or in
 * place of it when the command could not be issued.
 */
static void cmd_free_cb(void *opaque)
{
	struct nbd_cmd *cmd = opaque;
	struct nbd_dev *dev = cmd->dev;

	if (--cmd->pending)
		return;
	cmd->next = NULL;
	if (dev->ready_tail)
		dev->ready_tail->next = cmd;
	else
		dev->ready_head = cmd;
	dev->ready_tail = cmd;
}

static int extent_cb(void *opaque, const char *context, uint64_t offset,
		     uint32_t *entries, size_t nr_entries, int *error)
{
	struct nbd_cmd *cmd = opaque;
	struct backend_extents_req *req = cmd->bc.ext;
	uint64_t pos = offset;

	/* One reply per context is the rule; ignore others and repeats. */
	if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) || *error ||
	    req->nr || offset != req->offset)
		return 0;
	for (size_t i = 0; i + 1 < nr_entries && pos < cmd->ext_end; i += 2) {
		uint64_t len = min_t(uint64_t, entries[i], cmd->ext_end - pos);
		uint32_t flags = 0;
		struct backend_extent *last = req->nr ? &req->ext[req->nr - 1] : NULL;

		if (!len)
			continue;
		if (entries[i + 1] & LIBNBD_STATE_HOLE)
			flags |= BACKEND_EXTENT_HOLE;
		if (entries[i + 1] & LIBNBD_STATE_ZERO)
			flags |= BACKEND_EXTENT_ZERO;
		if (last && last->flags == flags) {
			last->length += len;
		} else {
			if (req->nr == req->max)
				break;
			req->ext[req->nr++] = (struct backend_extent){ pos, len, flags };
		}
		pos += len;
	}
	return 0;
}

/* I/O thread: the command is finished; hand it back. */
static void cmd_finish(struct nbd_dev *dev, struct nbd_cmd *cmd)
{
	/* Whatever libnbd said once the connection broke, the device failed. */
	if (cmd->bc.status && atomic_load(&dev->dead))
		cmd->bc.status = -EIO;
	if (!cmd->bc.status && cmd->bc.ext && !cmd->bc.ext->nr)
		cmd->bc.status = -EIO;	/* the server answered nothing usable */
	backend_cmd_finish(&cmd->bc);
}

/* Issuing, on the I/O thread. */

static nbd_completion_callback cmd_callback(struct nbd_cmd *cmd)
{
	return (nbd_completion_callback){
		.callback = cmd_complete_cb,
		.user_data = cmd,
		.free = cmd_free_cb,
	};
}

/*
 * After an nbd_aio_* call: on failure record why and say to stop issuing.
 * libnbd has already called the free callback.
 */
static bool issued(struct nbd_dev *dev, struct nbd_cmd *cmd, int64_t cookie)
{
	int err;

	if (cookie >= 0)
		return true;
	/* Read the error before the next libnbd call replaces it. */
	err = nbd_get_errno();
	save_error(dev);
	check_dead(dev);
	if (!cmd->bc.status)
		cmd->bc.status = atomic_load(&dev->dead) ? -EIO :
			      nbd_status(err ? err : EIO);
	return false;
}

static void issue_flush(struct nbd_dev *dev, struct nbd_cmd *cmd)
{
	cmd->pending++;
	issued(dev, cmd, nbd_aio_flush(dev->nbd, cmd_callback(cmd), 0));
}

static void issue_main(struct nbd_dev *dev, struct nbd_cmd *cmd)
{
	struct nbd_handle *h = dev->nbd;
	struct request *rq = cmd->bc.rq;
	uint32_t flags = 0;
	uint64_t off;

	if (cmd->bc.ext) {
		cmd->pending++;
		issued(dev, cmd, nbd_aio_block_status(h, cmd->ext_end - cmd->bc.ext->offset,
				cmd->bc.ext->offset,
				(nbd_extent_callback){ .callback = extent_cb, .user_data = cmd },
				cmd_callback(cmd), 0));
		return;
	}
	off = blk_rq_pos_bytes(rq);
	if ((rq->cmd_flags & REQ_FUA) && dev->can_fua)
		flags |= LIBNBD_CMD_FLAG_FUA;

	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		for (unsigned int i = 0; i < rq->nr_segs; i++) {
			const struct iovec *iov = &rq->iov[i];
			int64_t c;

			cmd->pending++;
			if (req_op(rq) == REQ_OP_READ)
				c = nbd_aio_pread(h, iov->iov_base, iov->iov_len, off,
						  cmd_callback(cmd), 0);
			else
				c = nbd_aio_pwrite(h, iov->iov_base, iov->iov_len, off,
						   cmd_callback(cmd), flags);
			if (!issued(dev, cmd, c))
				return;
			off += iov->iov_len;
		}
		return;
	case REQ_OP_FLUSH:
		/* A server without flush has no cache to flush. */
		if (dev->can_flush)
			issue_flush(dev, cmd);
		return;
	case REQ_OP_DISCARD:
		if (!dev->can_trim) {
			cmd->bc.status = -EOPNOTSUPP;
			return;
		}
		if (!rq->bytes)
			return;
		cmd->pending++;
		issued(dev, cmd, nbd_aio_trim(h, rq->bytes, off, cmd_callback(cmd), flags));
		return;
	case REQ_OP_WRITE_ZEROES:
		if (!dev->can_zero) {
			cmd->bc.status = -EOPNOTSUPP;
			return;
		}
		if (!rq->bytes)
			return;
		if (rq->cmd_flags & REQ_NOUNMAP)
			flags |= LIBNBD_CMD_FLAG_NO_HOLE;
		cmd->pending++;
		issued(dev, cmd, nbd_aio_zero(h, rq->bytes, off, cmd_callback(cmd), flags));
		return;
	default:
		cmd->bc.status = -EOPNOTSUPP;
	}
}

/* The phase after the current one that applies to @cmd. */
static enum nbd_phase next_phase(const struct nbd_dev *dev,
				 const struct nbd_cmd *cmd)
{
	const struct request *rq = cmd->bc.rq;
	enum nbd_phase ph = cmd->phase + 1;

	if (ph == PHASE_PREFLUSH &&
	    !(rq && (rq->cmd_flags & REQ_PREFLUSH) &&
	      req_op(rq) != REQ_OP_FLUSH && dev->can_flush))
		ph++;
	if (ph == PHASE_POSTFLUSH &&
	    !(rq && (rq->cmd_flags & REQ_FUA) && op_is_write(req_op(rq)) &&
	      !dev->can_fua && dev->can_flush))
		ph++;
	return ph;
}

/*
 * Move @cmd on: issue its next phase, or finish it.  Each phase holds a
 * bias on pending while it issues, so callbacks cannot requeue it early.
 */
static void cmd_advance(struct nbd_dev *dev, struct nbd_cmd *cmd)
{
	while (!cmd->bc.status) {
		cmd->phase = next_phase(dev, cmd);
		if (cmd->phase == PHASE_DONE)
			break;
		cmd->pending = 1;
		if (cmd->phase == PHASE_MAIN)
			issue_main(dev, cmd);
		else
			issue_flush(dev, cmd);
		if (--cmd->pending)
			return;	/* cmd_free_cb() puts it on the ready list */
	}
	cmd_finish(dev, cmd);
}

static void cmd_start(struct nbd_dev *dev, struct nbd_cmd *cmd)
{
	if (atomic_load(&dev->dead)) {
		cmd->bc.status = -EIO;
		cmd_finish(dev, cmd);
		return;
	}
	cmd_advance(dev, cmd);
}

static void run_ready(struct nbd_dev *dev)
{
	struct nbd_cmd *cmd;

	check_dead(dev);
	while ((cmd = dev->ready_head)) {
		dev->ready_head = cmd->next;
		if (!dev->ready_head)
			dev->ready_tail = NULL;
		cmd_advance(dev, cmd);
	}
}

/* Tell libnbd what poll() saw on its socket. */
static void notify(struct nbd_dev *dev, short revents)
{
	unsigned int dir = nbd_aio_get_direction(dev->nbd);
	int r = 0;

	/* Reading first: a reply may change what there is to write. */
	if ((dir & LIBNBD_AIO_DIRECTION_READ) &&
	    (revents & (POLLIN | POLLHUP | POLLERR)))
		r = nbd_aio_notify_read(dev->nbd);
	else if ((dir & LIBNBD_AIO_DIRECTION_WRITE) &&
		 (revents & (POLLOUT | POLLHUP | POLLERR)))
		r = nbd_aio_notify_write(dev->nbd);
	if (r == -1)
		save_error(dev);
}

/* Wait up to @timeout_ms for the socket or a kick, and act on it. */
static void wait_events(struct nbd_dev *dev, int timeout_ms)
{
	struct pollfd pfd[2] = { { .fd = dev->wake_fd, .events = POLLIN } };
	nfds_t n = 1;
	uint64_t v;

	if (!atomic_load(&dev->dead)) {
		int fd = nbd_aio_get_fd(dev->nbd);
		unsigned int dir = nbd_aio_get_direction(dev->nbd);

		if (fd >= 0 && dir) {
			pfd[1].fd = fd;
			pfd[1].events = (short)(((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
						((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0));
			n = 2;
		}
	}
	if (poll(pfd, n, timeout_ms) <= 0)
		return;	/* timeout, or EINTR: the caller loops */
	if (pfd[0].revents)
		(void)!read(dev->wake_fd, &v, sizeof(v));
	if (n == 2 && pfd[1].revents)
		notify(dev, pfd[1].revents);
}

/* Say goodbye to the server, but never wait on it for long. */
static void disconnect(struct nbd_dev *dev)
{
	uint64_t deadline = now_ms() + NBD_DISCONNECT_TIMEOUT_MS;

	if (atomic_load(&dev->dead) || !nbd_aio_is_ready(dev->nbd))
		return;
	if (nbd_aio_disconnect(dev->nbd, 0) == -1)
		return;
	while (!nbd_aio_is_closed(dev->nbd) && !nbd_aio_is_dead(dev->nbd)) {
		int left = ms_left(deadline);

		if (!left)
			break;
		wait_events(dev, left);
	}
}

static void *io_thread(void *arg)
{
	struct nbd_dev *dev = arg;

	for (;;) {
		struct nbd_cmd *list, *cmd;
		bool stop;

		pthread_mutex_lock(&dev->lock);
		list = dev->submit_head;
		dev->submit_head = dev->submit_tail = NULL;
		stop = dev->stop;
		pthread_mutex_unlock(&dev->lock);

		while ((cmd = list)) {
			list = cmd->next;
			cmd_start(dev, cmd);
		}
		run_ready(dev);
		if (stop)
			break;
		wait_events(dev, -1);
		run_ready(dev);
	}
	disconnect(dev);
	return NULL;
}

/* Submitting, on any thread. */

static void submit(struct nbd_dev *dev, struct nbd_cmd *cmd)
{
	uint64_t one = 1;
	bool kick;

	cmd->next = NULL;
	pthread_mutex_lock(&dev->lock);
	kick = !dev->submit_head;
	if (dev->submit_tail)
		dev->submit_tail->next = cmd;
	else
		dev->submit_head = cmd;
	dev->submit_tail = cmd;
	pthread_mutex_unlock(&dev->lock);
	/* A non-empty list means the thread has a kick pending already. */
	if (kick)
		(void)!write(dev->wake_fd, &one, sizeof(one));
}

static struct nbd_cmd *cmd_alloc(struct nbd_dev *dev)
{
	struct nbd_cmd *cmd = backend_cmd_alloc(&dev->cmds);

	cmd->dev = dev;
	return cmd;
}

static void nbd_queue_rq(struct backend *be, struct request *rq)
{
	struct nbd_dev *dev = be->priv;
	struct nbd_cmd *cmd;

	/* Not worth a trip through the thread; ending here is allowed. */
	if (atomic_load(&dev->dead)) {
		blk_end_request(rq, -EIO);
		return;
	}
	cmd = cmd_alloc(dev);
	cmd->bc.rq = rq;
	submit(dev, cmd);
}

static void extents_now(struct backend_extents_req *req, int status,
			uint64_t data_end)
{
	req->nr = 0;
	req->status = status;
	if (!status && req->max && data_end > req->offset) {
		req->ext[0] = (struct backend_extent){
			req->offset, data_end - req->offset, 0,
		};
		req->nr = 1;
	}
	req->done(req);
}

static void nbd_extents(struct backend *be, struct backend_extents_req *req)
{
	struct nbd_dev *dev = be->priv;
	uint64_t end;
	struct nbd_cmd *cmd;

	/* Nothing lies past the end; asking the server would be EINVAL too. */
	if (req->offset >= be->size) {
		extents_now(req, -EINVAL, 0);
		return;
	}
	end = req->offset + min_t(uint64_t, req->length, be->size - req->offset);
	if (!dev->has_extents) {
		extents_now(req, 0, end);
		return;
	}
	if (!req->max) {
		extents_now(req, 0, 0);
		return;
	}
	if (atomic_load(&dev->dead)) {
		extents_now(req, -EIO, 0);
		return;
	}
	cmd = cmd_alloc(dev);
	cmd->bc.ext = req;
	cmd->ext_end = req->offset + min_t(uint64_t, end - req->offset,
					   NBD_MAX_STATUS_BYTES);
	req->nr = 0;
	submit(dev, cmd);
}

/* Open and close. */

/* Connect, waiting at most NBD_CONNECT_TIMEOUT_MS for the handshake. */
static int connect_bounded(struct nbd_dev *dev, char *err, size_t errlen)
{
	uint64_t deadline = now_ms() + NBD_CONNECT_TIMEOUT_MS;
	struct nbd_handle *h = dev->nbd;
	int e;

	if (nbd_aio_connect_uri(h, dev->uri) == -1)
		goto fail;
	while (!nbd_aio_is_ready(h)) {
		int left = ms_left(deadline), r;

		if (nbd_aio_is_dead(h) || nbd_aio_is_closed(h)) {
			snprintf(err, errlen, "cannot connect to NBD server %s: the server closed the connection during the handshake",
				 dev->uri);
			return -ECONNREFUSED;
		}
		if (!left) {
			snprintf(err, errlen, "cannot connect to NBD server %s: no handshake within %d seconds",
				 dev->uri, NBD_CONNECT_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		r = nbd_poll(h, left);
		if (r == -1)
			goto fail;
	}
	return 0;
fail:
	e = nbd_get_errno();
	snprintf(err, errlen, "cannot connect to NBD server %s: %s", dev->uri,
		 nbd_get_error() ? nbd_get_error() : "unknown error");
	return e > 0 ? -e : -EIO;
}

/* Size, block sizes, caps and queue limits from what the server said. */
static int setup_backend(struct backend *be, struct nbd_dev *dev,
			 const struct backend_params *p, char *err,
			 size_t errlen)
{
	struct nbd_handle *h = dev->nbd;
	int64_t size = nbd_get_size(h);
	int64_t bmin = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
	int64_t bpref = nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED);
	int64_t bmax = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
	struct queue_limits lim;
	unsigned int lbs = SECTOR_SIZE;
	int ret;

	if (size < 0) {
		snprintf(err, errlen, "NBD server %s: cannot get the export size: %s",
			 dev->uri, nbd_get_error());
		return -EIO;
	}
	/* The protocol caps the minimum at 64 KiB, a power of two. */
	if (bmin > SECTOR_SIZE && bmin <= 65536)
		lbs = (unsigned int)bmin;
	be->logical_block_size = lbs;
	be->physical_block_size = max_t(unsigned int, lbs, 4096);
	if (bpref > 0)
		be->physical_block_size = (unsigned int)min_t(int64_t,
			max_t(int64_t, bpref, lbs), 65536);
	/* The device is whole blocks; a ragged tail is not addressable. */
	be->size = (uint64_t)size - (uint64_t)size % lbs;
	if (!be->size) {
		snprintf(err, errlen, "NBD server %s exports %lld bytes, less than one %u-byte block",
			 dev->uri, (long long)size, lbs);
		return -EINVAL;
	}
	if (p->size && p->size != be->size) {
		snprintf(err, errlen, "size=%llu given, but NBD server %s exports %llu bytes (the server sets the size; leave size= out)",
			 (unsigned long long)p->size, dev->uri,
			 (unsigned long long)be->size);
		return -EINVAL;
	}

	be->readonly = p->readonly || nbd_is_read_only(h) == 1;
	dev->can_flush = nbd_can_flush(h) == 1;
	dev->can_fua = nbd_can_fua(h) == 1;
	dev->can_trim = nbd_can_trim(h) == 1;
	dev->can_zero = nbd_can_zero(h) == 1;
	dev->has_extents = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	be->caps = 0;
	if (dev->can_flush)
		be->caps |= BACKEND_CAP_FLUSH;
	if (dev->can_fua)
		be->caps |= BACKEND_CAP_FUA;
	if (dev->can_trim)
		be->caps |= BACKEND_CAP_TRIM;
	if (dev->can_zero)
		be->caps |= BACKEND_CAP_WRITE_ZEROES;
	if (dev->can_zero && nbd_can_fast_zero(h) == 1)
		be->caps |= BACKEND_CAP_FAST_ZERO;
	if (nbd_can_multi_conn(h) == 1)
		be->caps |= BACKEND_CAP_MULTI_CONN;
	if (dev->has_extents)
		be->caps |= BACKEND_CAP_EXTENTS | BACKEND_CAP_ZERO_DETECT;
	be->engine = "nbd";

	lim.logical_block_size = lbs;
	lim.physical_block_size = be->physical_block_size;
	lim.max_segments = IOV_MAX;
	lim.max_bytes = NBD_MAX_BYTES;
	if (bmax > 0 && bmax < NBD_MAX_BYTES)
		lim.max_bytes = (unsigned int)bmax;
	lim.max_bytes -= lim.max_bytes % lbs;
	if (lim.max_bytes < lbs) {
		snprintf(err, errlen, "NBD server %s: maximum block size %lld is below the %u-byte minimum",
			 dev->uri, (long long)bmax, lbs);
		return -EINVAL;
	}
	ret = backend_init_queue(be, &lim);
	if (ret)
		snprintf(err, errlen, "cannot set up the queue: %s", strerror(-ret));
	return ret;
}

static int start_thread(struct nbd_dev *dev)
{
	int ret = backend_thread_create(&dev->thread, io_thread, dev, "blockd-nbd");

	if (!ret)
		dev->thread_started = true;
	return ret;
}

static void dev_free(struct nbd_dev *dev)
{
	if (dev->nbd)
		nbd_close(dev->nbd);
	if (dev->wake_fd >= 0)
		close(dev->wake_fd);
	backend_cmd_pool_exit(&dev->cmds);
	pthread_mutex_destroy(&dev->lock);
	free(dev->uri);
	free(dev);
}

static int nbd_open(struct backend *be, const struct backend_params *p,
		    char *err, size_t errlen)
{
	struct nbd_dev *dev;
	int ret;

	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dev->wake_fd = -1;
	pthread_mutex_init(&dev->lock, NULL);
	ret = backend_cmd_pool_init(&dev->cmds, NBD_CMD_RESERVE, sizeof(struct nbd_cmd));
	if (ret) {
		pthread_mutex_destroy(&dev->lock);
		free(dev);
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	dev->uri = strdup(p->target);
	dev->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!dev->uri || dev->wake_fd < 0) {
		ret = dev->uri ? -errno : -ENOMEM;
		snprintf(err, errlen, "cannot set up the nbd backend: %s", strerror(-ret));
		goto fail;
	}

	dev->nbd = nbd_create();
	if (!dev->nbd ||
	    nbd_set_request_structured_replies(dev->nbd, true) == -1 ||
	    nbd_add_meta_context(dev->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1) {
		snprintf(err, errlen, "cannot create an NBD handle: %s", nbd_get_error());
		ret = -ENOMEM;
		goto fail;
	}
	ret = connect_bounded(dev, err, errlen);
	if (ret)
		goto fail;
	ret = setup_backend(be, dev, p, err, errlen);
	if (ret)
		goto fail;
	be->priv = dev;
	ret = start_thread(dev);
	if (ret) {
		snprintf(err, errlen, "cannot start the nbd I/O thread: %s", strerror(-ret));
		blk_queue_exit(&be->queue);
		goto fail;
	}
	return 0;
fail:
	be->priv = NULL;
	dev_free(dev);
	return ret;
}

static void nbd_close_backend(struct backend *be)
{
	struct nbd_dev *dev = be->priv;
	uint64_t one = 1;

	pthread_mutex_lock(&dev->lock);
	dev->stop = true;
	pthread_mutex_unlock(&dev->lock);
	(void)!write(dev->wake_fd, &one, sizeof(one));
	if (dev->thread_started)
		pthread_join(dev->thread, NULL);
	/* The caller's bug, but bios that never end deserve a line in the log. */
	if (atomic_load(&dev->cmds.nr))
		fprintf(stderr, "blockd: nbd: %s closed with %u requests not ended\n",
			dev->uri, atomic_load(&dev->cmds.nr));
	dev_free(dev);
	blk_queue_exit(&be->queue);
}

const struct backend_ops backend_nbd_ops = {
	.name = "nbd",
	.open = nbd_open,
	.close = nbd_close_backend,
	.queue_rq = nbd_queue_rq,
	.extents = nbd_extents,
};
