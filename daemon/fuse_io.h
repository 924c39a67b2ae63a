/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_FUSE_IO_H
#define BLOCKD_DAEMON_FUSE_IO_H

#include "core/range_lock.h"
#include "daemon/fuse_fs.h"
#include "daemon/stats.h"

/*
 * Internal to fuse_fs.c, fuse_meta.c, fuse_data.c and fuse_rmw.c: the
 * data path's requests and what those files share.
 *
 * Every data request is a data-less parent bio from the export's bio_set
 * whose front pad holds its state, one struct per role, each ending with
 * that bio (BIO_FRONT_PAD(), bio_pad_obj()).  The page bios doing the work
 * are chained to it, and its bi_end_io, one per role, answers the request
 * once they have all ended.
 */

/* What every request answered from its parent bio keeps (not an edge read). */
struct fuse_io {
	fuse_req_t req;
	struct fuse_thread *t;		/* the thread it completes and is answered on */
	struct fuse_thread *from;	/* a write handed to thread 0: who read it */
	struct bio *parent;		/* the bio ending the struct this is in */
	struct ioloop_work handoff;	/* a write posted to thread 0 */
	uint32_t len;			/* bytes for the reply */
	int error;			/* a negative errno found while starting */
	unsigned int nr_data;
	struct bio *data[FUSE_MAX_DATA_BIOS];	/* the page bios, in device order */
	/* Counted in the export's stats from fuse_io_account() on. */
	struct export_stats *st;
	enum stats_op sop;
	uint64_t sbytes, t0;
};

/* A READ: the asked bytes start @skip bytes into the blocks read. */
struct fuse_read {
	struct fuse_io io;
	uint32_t skip;
	struct bio bio;			/* the parent; last, see BIO_FRONT_PAD() */
};

/* A WRITE of whole blocks, or a data-less fsync or fallocate. */
struct fuse_write {
	struct fuse_io io;
	struct bio bio;			/* the parent; last */
};

struct fuse_edge_read;

/*
 * A WRITE of partial blocks (fuse_rmw.c): the payload is copied into page
 * bios for the whole blocks, the edge blocks are read, their bytes around
 * the payload merged in, and the whole blocks written.  Holds its blocks
 * in its export's rmw_locks from start to end.
 */
struct fuse_rmw {
	struct fuse_io io;
	struct fuse_export *fx;
	struct range_lock lock;		/* exclusive, on the whole blocks */
	struct ioloop_work granted;	/* posted back to its thread once granted */
	struct fuse_edge_read *edges;
	struct bio bio;			/* the parent; last */
};

/* The reads of a read-modify-write's first and last block. */
struct fuse_edge_read {
	struct fuse_rmw *rmw;		/* the write they are for */
	struct fuse_thread *t;
	struct bio *head, *tail;	/* the blocks read; one bio when one block has both edges */
	uint32_t pay_start, pay_end;	/* the payload, counted from the first block */
	uint32_t total;			/* bytes of whole blocks the write covers */
	unsigned int nr_data;
	struct bio *data[2];
	struct bio bio;			/* the parent; last */
};

/* fuse_fs.c: inodes to exports. */

/* The front end serving @req. */
static inline struct fuse_frontend *fuse_req_fe(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/**
 * fuse_ino_export - the export whose file is inode @ino
 * @fe: the front end
 * @ino: an inode number
 *
 * Return: the export, or NULL for the root or an unknown inode.
 */
struct fuse_export *fuse_ino_export(struct fuse_frontend *fe, fuse_ino_t ino);

/* fuse_meta.c and fuse_data.c: the operations fuse_fs.c lists. */
void fuse_meta_init(void *userdata, struct fuse_conn_info *conn);
void fuse_meta_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fuse_meta_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fuse_meta_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi);
void fuse_meta_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);
void fuse_meta_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fuse_meta_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fuse_meta_statfs(fuse_req_t req, fuse_ino_t ino);
void fuse_meta_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi);
void fuse_data_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void fuse_data_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi);
void fuse_data_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fuse_data_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi);
void fuse_data_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t length, struct fuse_file_info *fi);

/* fuse_data.c: what fuse_rmw.c shares of the data path. */

/**
 * fuse_alloc_parent - a data-less parent bio of @ex's bio_set
 * @ex: the export
 * @end_io: the role's completion
 *
 * Return: the bio, or NULL when the bio_set is empty (never waits).  The
 * caller clears its front-pad struct.
 */
struct bio *fuse_alloc_parent(struct export *ex, bio_end_io_t *end_io);

/**
 * fuse_io_init - set up the common part of a request
 * @io: its struct fuse_io, cleared
 * @t: the thread that read it
 * @req: the FUSE request
 * @parent: its parent bio
 */
void fuse_io_init(struct fuse_io *io, struct fuse_thread *t, fuse_req_t req,
		  struct bio *parent);

/**
 * fuse_io_account - count @io as started in @ex's stats
 * @io: the request
 * @ex: its export
 * @op: what it is for the stats socket
 * @bytes: its bytes
 */
void fuse_io_account(struct fuse_io *io, struct export *ex, enum stats_op op,
		     uint64_t bytes);

/**
 * fuse_io_end_stats - count @io as ended, if it was counted
 * @io: the request
 * @err: 0 or a negative errno
 */
void fuse_io_end_stats(struct fuse_io *io, int err);

/**
 * fuse_io_add_data - page bios for [@start, @end) of @ex, all or none
 * @io: the request, with none yet
 * @ex: its export
 * @opf: REQ_OP_READ or REQ_OP_WRITE
 * @start: first byte, block aligned
 * @end: byte after the last, block aligned
 *
 * Return: 0, or -ENOMEM when memory is short (nothing is kept).
 */
int fuse_io_add_data(struct fuse_io *io, struct export *ex, blk_opf_t opf,
		     uint64_t start, uint64_t end);

/**
 * fuse_write_end - answer a write whose bios have all ended
 * @io: the write; freed by this
 */
void fuse_write_end(struct fuse_io *io);

/**
 * fuse_io_free - put an unstarted request's page bios and parent
 * @io: the request
 */
void fuse_io_free(struct fuse_io *io);

/**
 * fuse_io_done - a request was answered: let its bios and thread go
 * @io: the request, freed by this
 */
void fuse_io_done(struct fuse_io *io);

/**
 * fuse_submit_chain - submit page bios chained to @parent, then let it end
 * @t: the thread they complete on (counted in flight until @parent ends)
 * @parent: the parent bio; the caller's hold on it is dropped
 * @data: the page bios, each kept (bio_get) for the reply's use
 * @nr: how many
 *
 * A backend may complete them, and end @parent, before this returns.
 */
void fuse_submit_chain(struct fuse_thread *t, struct bio *parent,
		       struct bio *const *data, unsigned int nr);

/**
 * fuse_submit_write - submit a write's page bios on thread 0
 * @io: the write, started on io->t
 *
 * Writes are submitted, completed and answered on thread 0; from another
 * thread @io is posted there and its thread reads nothing more until it
 * is answered.
 */
void fuse_submit_write(struct fuse_io *io);

/**
 * fuse_park - keep a request that cannot get its memory for a retry
 * @t: its thread, which reads nothing more until the retry starts it
 * @req: the request
 * @fx: its export
 * @op: FUSE_PENDING_READ or FUSE_PENDING_WRITE
 * @off: its offset
 * @len: its length
 * @data: a WRITE's payload in the FUSE buffer, or NULL while it is landed
 */
void fuse_park(struct fuse_thread *t, fuse_req_t req, struct fuse_export *fx,
	       int op, uint64_t off, uint32_t len, const char *data);

/* fuse_rmw.c */

/**
 * fuse_rmw_start - start a WRITE that does not cover whole blocks
 * @t: the thread that read it
 * @req: the request
 * @fx: its export
 * @off: its offset
 * @len: its length
 * @data: its payload in the FUSE buffer (a landed one is moved there)
 *
 * Return: 0 when started (it may wait for an earlier overlapping one),
 * -EAGAIN when parked for want of memory.
 */
int fuse_rmw_start(struct fuse_thread *t, fuse_req_t req, struct fuse_export *fx,
		   uint64_t off, uint32_t len, const char *data);

#endif
