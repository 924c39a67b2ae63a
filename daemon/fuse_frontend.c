/* SPDX-License-Identifier: MIT */
/*
 * The FUSE session: mount, threads, stop.  Each thread runs its own
 * ioloop and reads requests from the (non-blocking) /dev/fuse descriptor
 * when the loop says it is readable; a request is started on the thread
 * that read it and its disk I/O completes and is answered there, as NBD
 * connections are on their worker.  Writes are the exception: thread 0
 * submits and answers them all, and another thread that has read one
 * reads nothing more until it is answered (see fuse_submit_write() in
 * fuse_data.c).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/page.h"
#include "core/request.h"
#include "daemon/fuse_frontend.h"
#include "daemon/fuse_fs.h"
#include "daemon/log.h"

/* Loop depth per thread: the poll and the disk I/O of its requests. */
#define FUSE_QUEUE_DEPTH	256
/* Requests read in a row before the loop runs completions. */
#define FUSE_READ_BATCH		16
/*
 * libfuse 3.14 reads requests into a buffer of 256 pages plus a header
 * page.  We hand it one we allocated and touched, so the first request
 * needs no fresh memory; newer libfuse sizes its own.
 */
#if FUSE_VERSION <= FUSE_MAKE_VERSION(3, 16)
#define FUSE_BUF_BYTES		(256u * 4096u + 4096u)
#endif

static __thread struct fuse_thread *current_thread;

struct fuse_thread *fuse_current_thread(void)
{
	return current_thread;
}

unsigned int fuse_frontend_front_pad(void)
{
	return fuse_fs_front_pad();
}

/*
 * Loop-on-FUSE: the kernel may need this daemon to write pages back in
 * order to free memory, so serving a request must not itself wait for
 * reclaim.  Resident memory stays resident (MCL_ONFAULT: what is touched
 * is locked, nothing is populated up front), and PR_SET_IO_FLUSHER makes
 * the kernel treat our allocations as GFP_NOIO and not throttle us as a
 * writer of the very device we clean.  Threads inherit both.
 */
static void harden_memory(void)
{
#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT))
		log_warn("FUSE: mlockall: %s; memory may be paged out",
			strerror(errno));
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		log_warn("FUSE: PR_SET_IO_FLUSHER: %s (needs CAP_SYS_RESOURCE)",
			strerror(errno));
}

int fuse_frontend_prepare(const char *mountpoint, char *err, size_t errlen)
{
	int ret = fuse_mountpoint_check(mountpoint, err, errlen);

	if (ret)
		return ret;
	harden_memory();
	return 0;
}

int fuse_frontend_check_names(struct export **exports, unsigned int nr,
			      char *err, size_t errlen)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		const char *n = exports[i]->name;

		if (strchr(n, '/') || !strcmp(n, ".") || !strcmp(n, "..") ||
		    strlen(n) > 255) {
			snprintf(err, errlen,
				 "export name '%s' cannot be a file name under --fuse-mount",
				 n);
			return -EINVAL;
		}
	}
	return 0;
}

int fuse_frontend_event_fd(const struct fuse_frontend *fe)
{
	return fe ? fe->event_fd : -1;
}

static void poll_cb(struct ioloop_op *op, int res, unsigned int flags)
{
	struct fuse_thread *t = container_of(op, struct fuse_thread, poll_op);

	(void)res;
	(void)flags;
	t->poll_armed = false;
}

static void cancel_cb(struct ioloop_op *op, int res, unsigned int flags)
{
	struct fuse_thread *t = container_of(op, struct fuse_thread, cancel_op);

	(void)res;
	(void)flags;
	t->cancel_armed = false;
}

/* Stop reading; an armed poll is cancelled so the loop can be destroyed. */
static void thread_stop(struct fuse_thread *t)
{
	if (t->stop)
		return;
	t->stop = true;
	if (!t->poll_armed)
		return;
	if (ioloop_cancel(t->loop, &t->poll_op, &t->cancel_op)) {
		/* epoll: the one-shot registration dies with the loop. */
		t->poll_armed = false;
		return;
	}
	t->cancel_armed = true;
}

static void stop_fn(struct ioloop_work *w)
{
	thread_stop(container_of(w, struct fuse_thread, stop_work));
}

/* The kernel ended the session (unmounted from outside): tell main once. */
static void session_ended(struct fuse_thread *t)
{
	struct fuse_frontend *fe = t->fe;
	uint64_t one = 1;

	if (!atomic_exchange(&fe->ended, true))
		(void)!write(fe->event_fd, &one, sizeof(one));
	thread_stop(t);
}

/* The first @n bytes read into @t's landing pages, to @dst. */
static void land_copy(const struct fuse_thread *t, char *dst, size_t n)
{
	size_t done;

	for (done = 0; done < n; done += PAGE_SIZE)
		memcpy(dst + done, t->land[done / PAGE_SIZE],
		       n - done < PAGE_SIZE ? n - done : PAGE_SIZE);
}

#ifdef FUSE_BUF_BYTES
/* What the kernel puts before a WRITE's payload (as before a READ's nothing). */
#define FUSE_WRITE_HDR	(sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))

/* A full set of landing pages, or none: a partial set would only hoard. */
static bool fill_land(struct fuse_thread *t)
{
	struct pgalloc *pa = t->fe->pages;

	if (!t->fe->land)
		return false;
	if (t->nr_land < FUSE_LAND_PAGES)
		t->nr_land += page_alloc_bulk(pa, BLK_GFP_NOWAIT,
					      FUSE_LAND_PAGES - t->nr_land,
					      t->land + t->nr_land);
	if (t->nr_land == FUSE_LAND_PAGES)
		return true;
	page_free_bulk(pa, t->nr_land, t->land);
	t->nr_land = 0;
	return false;
}

/*
 * fuse_session_receive_buf(), but the bytes past a WRITE header go to the
 * landing pages (readv), so its payload need not be copied again.  Any
 * other request longer than that header is made whole again in the
 * buffer, as libfuse expects.  Returns as fuse_session_receive_buf().
 */
static int receive_landing(struct fuse_thread *t)
{
	struct fuse_session *se = t->fe->se;
	struct iovec iov[FUSE_LAND_PAGES + 1];
	char *hdr = t->buf.mem;
	const struct fuse_in_header *in = (const void *)hdr;
	size_t extra;
	ssize_t res;
	unsigned int i, n;

	/* The kernel wants room for a header and max_write: exactly this. */
	iov[0] = (struct iovec){ hdr, FUSE_WRITE_HDR };
	for (i = 0, n = 1; i < FUSE_LAND_PAGES; i++) {
		if (n > 1 && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == t->land[i])
			iov[n - 1].iov_len += PAGE_SIZE;
		else
			iov[n++] = (struct iovec){ t->land[i], PAGE_SIZE };
	}
	do
		res = readv(fuse_session_fd(se), iov, (int)n);
	while (res < 0 && errno == ENOENT);	/* interrupted: as libfuse, again */
	if (fuse_session_exited(se))
		return 0;
	if (res < 0) {
		if (errno == ENODEV) {
			fuse_session_exit(se);
			return 0;
		}
		return -errno;
	}
	if ((size_t)res < sizeof(*in))
		return -EIO;
	extra = (size_t)res > FUSE_WRITE_HDR ? (size_t)res - FUSE_WRITE_HDR : 0;
	if (in->opcode == FUSE_WRITE) {
		t->landed = (uint32_t)extra;
	} else {
		land_copy(t, hdr + FUSE_WRITE_HDR, extra);
	}
	t->buf.size = (size_t)res;
	return (int)res;
}
#endif

void fuse_fs_unland(struct fuse_thread *t, const char *data)
{
	land_copy(t, (char *)data, t->landed);
	t->landed = 0;
}

static int receive(struct fuse_thread *t)
{
#ifdef FUSE_BUF_BYTES
	if (fill_land(t))
		return receive_landing(t);
#endif
	return fuse_session_receive_buf(t->fe->se, &t->buf);
}

/* Read and start requests until there are none, or one must wait. True if more may follow. */
static bool read_requests(struct fuse_thread *t)
{
	struct fuse_session *se = t->fe->se;
	unsigned int i;

	for (i = 0; i < FUSE_READ_BATCH; i++) {
		int res = receive(t);

		if (res == -EINTR)
			continue;
		if (res == -EAGAIN) {
			if (!t->poll_armed &&
			    !ioloop_poll(t->loop, fuse_session_fd(se), POLLIN, &t->poll_op))
				t->poll_armed = true;
			return false;
		}
		if (res <= 0 || fuse_session_exited(se)) {
			if (res < 0)
				log_err("FUSE: reading /dev/fuse: %s",
					strerror(-res));
			session_ended(t);
			return false;
		}
		fuse_session_process_buf(se, &t->buf);
		if (t->has_pending || !fuse_fs_may_read(t))
			return false;
		/* Answered without taking the landed payload (an error): the pages stay. */
		t->landed = 0;
	}
	return true;
}

/*
 * Whether @t may finish.  Thread 0 submits the other threads' writes, so
 * it stays until none of them can hand it another one.
 */
static bool thread_done(struct fuse_thread *t)
{
	if (!t->stop || t->has_pending || t->nr_inflight || t->poll_armed ||
	    t->cancel_armed || !fuse_fs_may_read(t))
		return false;
	if (!t->quiesced) {
		/* Nothing to read, retry or complete here: nothing more is handed on. */
		t->quiesced = true;
		atomic_fetch_sub(&t->fe->nr_producing, 1);
	}
	return t->idx || (!atomic_load(&t->fe->nr_producing) &&
			  !atomic_load(&t->handoffs));
}

static void *thread_main(void *arg)
{
	struct fuse_thread *t = arg;
	struct fuse_session *se = t->fe->se;

	current_thread = t;
	ioloop_set_current(t->loop);
	while (!thread_done(t)) {
		bool more = false;
		int timeout = -1;

		if (!t->stop && fuse_session_exited(se))
			session_ended(t);
		if (t->has_pending)
			fuse_fs_retry_pending(t);
		if (!t->stop && !t->has_pending && !t->poll_armed &&
		    fuse_fs_may_read(t))
			more = read_requests(t);
		if (more)
			timeout = 0;
		else if (t->has_pending)
			timeout = 1;	/* pages come back from other threads too */
		else if (t->stop)
			timeout = 100;
		ioloop_run_once(t->loop, timeout);
	}
	ioloop_set_current(NULL);
	current_thread = NULL;
	atomic_fetch_sub(&t->fe->nr_running, 1);
	return NULL;
}

static void free_frontend(struct fuse_frontend *fe)
{
	unsigned int i;

	if (fe->threads) {
		for (i = 0; i < fe->nr_threads; i++) {
			struct fuse_thread *t = &fe->threads[i];

			ioloop_destroy(t->loop);
			if (t->src)
				bio_put(t->src);
			page_free_bulk(fe->pages, t->nr_land, t->land);
#ifdef FUSE_BUF_BYTES
			if (t->buf.mem)
				munmap(t->buf.mem, FUSE_BUF_BYTES);
#else
			free(t->buf.mem);
#endif
		}
		free(fe->threads);
	}
	if (fe->se) {
		if (fe->mounted)
			fuse_session_unmount(fe->se);
		fuse_session_destroy(fe->se);
	}
	if (fe->event_fd >= 0)
		close(fe->event_fd);
	if (fe->fx) {
		for (i = 0; i < fe->nr_exports; i++)
			range_lock_tree_destroy(&fe->fx[i].rmw_locks);
		free(fe->fx);
	}
	free(fe->mountpoint);
	free(fe);
}

/*
 * Landing pages are held while a thread waits for its next request, so
 * every thread keeps a full WRITE's worth back from everyone else.  Only
 * where that is a small part of the budget; a tight budget keeps every
 * page for requests in flight and copies instead.
 */
static bool land_pays_off(struct pgalloc *pages, unsigned int nr_threads)
{
#ifdef FUSE_BUF_BYTES
	struct pgalloc_stats st;

	if (!pages)
		return false;
	pgalloc_get_stats(pages, &st);
	return st.total_pages >= 8ull * FUSE_LAND_PAGES * nr_threads;
#else
	/* Newer libfuse sizes and reads its own buffer. */
	(void)pages;
	(void)nr_threads;
	return false;
#endif
}

static int setup_thread(struct fuse_frontend *fe, struct fuse_thread *t,
			unsigned int idx)
{
	t->fe = fe;
	t->idx = idx;
	t->poll_op.cb = poll_cb;
	t->cancel_op.cb = cancel_cb;
	t->stop_work.fn = stop_fn;
	t->loop = ioloop_create(FUSE_QUEUE_DEPTH, 0, fe->pages);
	if (!t->loop)
		return -errno;
	ioloop_set_poll(t->loop, fe->poll_us);
	t->src = bio_kmalloc(BLK_GFP_WAIT, 1);
	if (!t->src)
		return -ENOMEM;
#ifdef FUSE_BUF_BYTES
	t->buf.mem = mmap(NULL, FUSE_BUF_BYTES, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (t->buf.mem == MAP_FAILED) {
		t->buf.mem = NULL;
		return -errno;
	}
	/* Resident and, when allowed, locked: no fault while serving. */
	mlock(t->buf.mem, FUSE_BUF_BYTES);
	t->buf.size = FUSE_BUF_BYTES;
#endif
	return 0;
}

/* The front end's state, nothing opened yet; NULL when memory is short. */
static struct fuse_frontend *alloc_frontend(const char *mountpoint,
					    struct export **exports,
					    unsigned int nr, unsigned int nr_threads)
{
	struct fuse_frontend *fe = calloc(1, sizeof(*fe));
	unsigned int i;

	if (!fe)
		return NULL;
	fe->event_fd = -1;
	fe->mountpoint = strdup(mountpoint);
	fe->threads = calloc(nr_threads, sizeof(*fe->threads));
	fe->fx = calloc(nr ? nr : 1, sizeof(*fe->fx));
	if (!fe->mountpoint || !fe->threads || !fe->fx) {
		free_frontend(fe);
		return NULL;
	}
	fe->exports = exports;
	fe->nr_exports = nr;
	for (i = 0; i < nr; i++) {
		fe->fx[i].ex = exports[i];
		range_lock_tree_init(&fe->fx[i].rmw_locks);
	}
	fe->nr_threads = nr_threads;
	fe->uid = getuid();
	fe->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fe->start_time);
	return fe;
}

/* The session, every thread's loop and buffers, and the mount. */
static int open_session(struct fuse_frontend *fe, const char *mountpoint,
			char *err, size_t errlen)
{
	char opts[256];
	char *argv[] = { "blockd", "-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	unsigned int i;
	int ret, fd, fl;

	/* Only root may let the kernel's own threads (loop) reach a user's mount. */
	snprintf(opts, sizeof(opts), "fsname=blockd,subtype=blockd,default_permissions%s",
		 geteuid() == 0 ? ",allow_other" : "");
	fe->se = fuse_session_new(&args, &fuse_fs_ops, sizeof(fuse_fs_ops), fe);
	fuse_opt_free_args(&args);
	if (!fe->se) {
		snprintf(err, errlen, "cannot set up a FUSE session");
		return -EINVAL;
	}
	for (i = 0; i < fe->nr_threads; i++) {
		ret = setup_thread(fe, &fe->threads[i], i);
		if (ret) {
			snprintf(err, errlen, "cannot set up FUSE thread: %s", strerror(-ret));
			return ret;
		}
	}
	if (fuse_session_mount(fe->se, mountpoint)) {
		snprintf(err, errlen, "cannot mount FUSE on %s (is /dev/fuse there, and fuse3 installed?)",
			 mountpoint);
		return -EIO;
	}
	fe->mounted = true;
	fd = fuse_session_fd(fe->se);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK)) {
		ret = -errno;
		snprintf(err, errlen, "cannot make /dev/fuse non-blocking: %s", strerror(errno));
		return ret;
	}
	return 0;
}

/* Start every thread; on failure stop (and free) what was started. */
static int start_threads(struct fuse_frontend *fe, char *err, size_t errlen)
{
	unsigned int i, nr_threads = fe->nr_threads;
	int ret;

	atomic_store(&fe->nr_producing, nr_threads);
	for (i = 0; i < nr_threads; i++) {
		struct fuse_thread *t = &fe->threads[i];

		atomic_fetch_add(&fe->nr_running, 1);
		ret = -pthread_create(&t->thread, NULL, thread_main, t);
		if (ret) {
			atomic_fetch_sub(&fe->nr_running, 1);
			/* Those never started hand nothing on. */
			atomic_fetch_sub(&fe->nr_producing, nr_threads - i);
			snprintf(err, errlen, "cannot start FUSE thread: %s", strerror(-ret));
			fe->nr_threads = i;
			fuse_frontend_stop(fe);
			return ret;
		}
		t->started = true;
	}
	return 0;
}

int fuse_frontend_start(struct fuse_frontend **out, const char *mountpoint,
			struct export **exports, unsigned int nr,
			struct pgalloc *pages, unsigned int nr_threads,
			unsigned int poll_us, char *err, size_t errlen)
{
	struct fuse_frontend *fe;
	int ret;

	ret = fuse_frontend_check_names(exports, nr, err, errlen);
	if (ret)
		return ret;
	fe = alloc_frontend(mountpoint, exports, nr, nr_threads);
	if (!fe) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	fe->pages = pages;
	fe->poll_us = poll_us;
	fe->land = land_pays_off(pages, nr_threads);
	fe->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fe->event_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	ret = open_session(fe, mountpoint, err, errlen);
	if (ret)
		goto fail;
	ret = start_threads(fe, err, errlen);
	if (ret)
		return ret;
	*out = fe;
	return 0;
fail:
	free_frontend(fe);
	return ret;
}

void fuse_frontend_stop(struct fuse_frontend *fe)
{
	unsigned int i;

	if (!fe)
		return;
	for (i = 0; i < fe->nr_threads; i++) {
		if (fe->threads[i].started)
			ioloop_post(fe->threads[i].loop, &fe->threads[i].stop_work);
	}
	for (i = 0; i < fe->nr_threads; i++) {
		if (fe->threads[i].started)
			pthread_join(fe->threads[i].thread, NULL);
	}
	/* Make every acknowledged write durable before the mount goes away. */
	exports_flush_all(fe->exports, fe->nr_exports, "FUSE");
	log_info("FUSE: %s %s",
		atomic_load(&fe->ended) ? "was unmounted from" : "unmounting", fe->mountpoint);
	free_frontend(fe);
}
