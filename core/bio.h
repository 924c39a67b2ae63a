/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_BIO_H
#define BLOCKD_CORE_BIO_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "compiler.h"
#include "gfp.h"
#include "mempool.h"

/*
 * struct bio: one contiguous range of a device and the memory it moves to
 * or from, described by a table of bio_vecs.  This follows block/bio.c and
 * include/linux/bvec.h: a bio_vec is (address, length, offset), a bvec_iter
 * walks the table without modifying it, so several bios (clones, splits)
 * can share one table, each with its own iterator.
 */

#define SECTOR_SHIFT	9
#define SECTOR_SIZE	(1u << SECTOR_SHIFT)

typedef uint64_t sector_t;

/* Status of a completed bio: 0 or a negative errno. */
typedef int blk_status_t;

/*
 * A segment of memory.  bv_page is any address (a page from the page
 * allocator, or a caller's buffer for a source bio); the segment is
 * [bv_page + bv_offset, bv_page + bv_offset + bv_len).
 */
struct bio_vec {
	void *bv_page;
	unsigned int bv_len;
	unsigned int bv_offset;
};

struct bvec_iter {
	sector_t bi_sector;		/* device address, in 512-byte sectors */
	unsigned int bi_size;		/* bytes left */
	unsigned int bi_idx;		/* current index into the bvec table */
	unsigned int bi_bvec_done;	/* bytes done in the current bvec */
};

/* Operations, in the low byte of bi_opf. */
enum req_op {
	REQ_OP_READ = 0,
	REQ_OP_WRITE = 1,
	REQ_OP_FLUSH = 2,
	REQ_OP_DISCARD = 3,
	REQ_OP_WRITE_ZEROES = 4,
	REQ_OP_LAST,
};

#define REQ_OP_BITS	8
#define REQ_OP_MASK	((1u << REQ_OP_BITS) - 1)

/* Flags, above the op. */
#define REQ_FUA		(1u << 8)	/* forced unit access: durable on completion */
#define REQ_PREFLUSH	(1u << 9)	/* flush the cache before this bio */
#define REQ_NOUNMAP	(1u << 10)	/* write-zeroes must not deallocate */
#define REQ_SYNC	(1u << 11)

typedef unsigned int blk_opf_t;

/* bi_flags: state kept by the bio layer. */
#define BIO_CHAIN	0	/* __bi_remaining is in use */
#define BIO_CLONED	1	/* shares another bio's bvec table */
#define BIO_PAGES_OWNED	2	/* bio_alloc_pages() filled the table */

struct bio;
struct bio_set;
struct blk_queue;

typedef void (bio_end_io_t)(struct bio *bio);

/* Bvecs held inline in every bio from a bio_set. */
#define BIO_INLINE_VECS	4
/* Largest bvec table: 256 pages = 1 MiB of page-sized bvecs. */
#define BIO_MAX_VECS	256

struct bio {
	struct bio *bi_next;		/* bio_list and request chains */
	struct blk_queue *bi_queue;	/* where submit_bio() sends it */
	blk_opf_t bi_opf;
	unsigned short bi_flags;
	blk_status_t bi_status;
	atomic_int __bi_remaining;
	struct bvec_iter bi_iter;
	bio_end_io_t *bi_end_io;
	void *bi_private;
	unsigned short bi_vcnt;		/* bvecs in use */
	unsigned short bi_max_vecs;	/* bvecs the table can hold */
	atomic_int __bi_cnt;		/* references */
	struct bio_vec *bi_io_vec;
	struct bio_set *bi_pool;	/* NULL: kmalloc'ed */
	struct bio_vec bi_inline_vecs[];
};

/**
 * bio_op - the operation of @bio
 * @bio: the bio
 *
 * Return: the REQ_OP_* in the low byte of bi_opf.
 */
static inline enum req_op bio_op(const struct bio *bio)
{
	return (enum req_op)(bio->bi_opf & REQ_OP_MASK);
}

/**
 * op_is_write - whether @op changes the device
 * @op: a REQ_OP_*
 *
 * Return: true for WRITE, DISCARD and WRITE_ZEROES.
 */
static inline bool op_is_write(enum req_op op)
{
	return op == REQ_OP_WRITE || op == REQ_OP_DISCARD ||
	       op == REQ_OP_WRITE_ZEROES;
}

/**
 * op_has_data - whether @op moves data through the bvecs
 * @op: a REQ_OP_*
 *
 * Return: true for READ and WRITE.
 */
static inline bool op_has_data(enum req_op op)
{
	return op == REQ_OP_READ || op == REQ_OP_WRITE;
}

/**
 * bio_flagged - whether flag @bit (BIO_*) is set on @bio
 * @bio: the bio
 * @bit: the flag's bit number
 *
 * Return: true if it is set.
 */
static inline bool bio_flagged(const struct bio *bio, unsigned int bit)
{
	return bio->bi_flags & (1u << bit);
}

/**
 * bio_set_flag - set flag @bit (BIO_*) on @bio
 * @bio: the bio
 * @bit: the flag's bit number
 */
static inline void bio_set_flag(struct bio *bio, unsigned int bit)
{
	bio->bi_flags |= (unsigned short)(1u << bit);
}

/**
 * bio_clear_flag - clear flag @bit (BIO_*) on @bio
 * @bio: the bio
 * @bit: the flag's bit number
 */
static inline void bio_clear_flag(struct bio *bio, unsigned int bit)
{
	bio->bi_flags &= (unsigned short)~(1u << bit);
}

/**
 * bio_sectors - what is left of @bio, in sectors
 * @bio: the bio
 *
 * Return: bi_iter.bi_size in 512-byte sectors.
 */
static inline unsigned int bio_sectors(const struct bio *bio)
{
	return bio->bi_iter.bi_size >> SECTOR_SHIFT;
}

/**
 * bio_end_sector - the sector after the last one @bio addresses
 * @bio: the bio
 *
 * Return: bi_sector + bio_sectors().
 */
static inline sector_t bio_end_sector(const struct bio *bio)
{
	return bio->bi_iter.bi_sector + bio_sectors(bio);
}

/* bvec iteration, as in <linux/bvec.h>. */

/**
 * bvec_iter_bvec - the segment at @iter
 * @bvec: the bvec table
 * @iter: a place in it
 *
 * Return: the rest of the current bvec, clipped to bi_size.
 */
static inline struct bio_vec bvec_iter_bvec(const struct bio_vec *bvec,
					    struct bvec_iter iter)
{
	const struct bio_vec *bv = &bvec[iter.bi_idx];
	unsigned int len = bv->bv_len - iter.bi_bvec_done;

	return (struct bio_vec){
		.bv_page = bv->bv_page,
		.bv_len = len < iter.bi_size ? len : iter.bi_size,
		.bv_offset = bv->bv_offset + iter.bi_bvec_done,
	};
}

/**
 * bvec_virt - the address of a segment's first byte
 * @bv: the segment
 *
 * Return: bv_page + bv_offset.
 */
static inline void *bvec_virt(const struct bio_vec *bv)
{
	return (char *)bv->bv_page + bv->bv_offset;
}

/**
 * bvec_iter_advance - move @iter forward @bytes
 * @bv: the bvec table
 * @iter: the place to move
 * @bytes: how far
 *
 * Return: true; false, leaving @iter at the end, if @bytes exceeds bi_size.
 */
static inline bool bvec_iter_advance(const struct bio_vec *bv,
				     struct bvec_iter *iter,
				     unsigned int bytes)
{
	unsigned int idx = iter->bi_idx;
	bool ok = true;

	if (unlikely(bytes > iter->bi_size)) {
		bytes = iter->bi_size;
		ok = false;
	}
	iter->bi_size -= bytes;
	bytes += iter->bi_bvec_done;
	while (bytes && bytes >= bv[idx].bv_len) {
		bytes -= bv[idx].bv_len;
		idx++;
	}
	iter->bi_idx = idx;
	iter->bi_bvec_done = bytes;
	return ok;
}

/**
 * bvec_iter_advance_single - bvec_iter_advance() within one segment
 * @bv: the bvec table
 * @iter: the place to move
 * @bytes: how far; no further than the current segment ends (fast path)
 */
static inline void bvec_iter_advance_single(const struct bio_vec *bv,
					    struct bvec_iter *iter,
					    unsigned int bytes)
{
	unsigned int done = iter->bi_bvec_done + bytes;

	if (done == bv[iter->bi_idx].bv_len) {
		done = 0;
		iter->bi_idx++;
	}
	iter->bi_bvec_done = done;
	iter->bi_size -= bytes;
}

#define for_each_bvec_iter(bvl, bvec_table, iter, start)		\
	for ((iter) = (start);						\
	     (iter).bi_size &&						\
		((bvl = bvec_iter_bvec((bvec_table), (iter))), 1);	\
	     bvec_iter_advance((bvec_table), &(iter), (bvl).bv_len))

/* Each segment of @bio from its current iterator; struct bio_vec bvl, struct bvec_iter iter. */
#define bio_for_each_segment(bvl, bio, iter) \
	for_each_bvec_iter(bvl, (bio)->bi_io_vec, iter, (bio)->bi_iter)

/* Every bvec in the table, ignoring the iterator (the table's owner only). */
#define bio_for_each_bvec_all(bvl, bio, i) \
	for ((i) = 0, (bvl) = (bio)->bi_io_vec; (i) < (bio)->bi_vcnt; (i)++, (bvl)++)

/* bio_list: a FIFO of bios linked through bi_next. */
struct bio_list {
	struct bio *head;
	struct bio *tail;
};

/**
 * bio_list_init - make @bl empty
 * @bl: the list
 */
static inline void bio_list_init(struct bio_list *bl)
{
	bl->head = bl->tail = NULL;
}

/**
 * bio_list_empty - whether @bl holds no bio
 * @bl: the list
 *
 * Return: true if it is empty.
 */
static inline bool bio_list_empty(const struct bio_list *bl)
{
	return bl->head == NULL;
}

/**
 * bio_list_add - append @bio to @bl
 * @bl: the list
 * @bio: a bio on no list (its bi_next is overwritten)
 */
static inline void bio_list_add(struct bio_list *bl, struct bio *bio)
{
	bio->bi_next = NULL;
	if (bl->tail)
		bl->tail->bi_next = bio;
	else
		bl->head = bio;
	bl->tail = bio;
}

/**
 * bio_list_merge - append the bios of @bl2 to @bl
 * @bl: the list that grows
 * @bl2: the list appended; left as it was, so the caller reinitialises it
 */
static inline void bio_list_merge(struct bio_list *bl, struct bio_list *bl2)
{
	if (!bl2->head)
		return;
	if (bl->tail)
		bl->tail->bi_next = bl2->head;
	else
		bl->head = bl2->head;
	bl->tail = bl2->tail;
}

/**
 * bio_list_pop - take the first bio off @bl
 * @bl: the list
 *
 * Return: the bio, its bi_next cleared, or NULL if @bl is empty.
 */
static inline struct bio *bio_list_pop(struct bio_list *bl)
{
	struct bio *bio = bl->head;

	if (bio) {
		bl->head = bio->bi_next;
		if (!bl->head)
			bl->tail = NULL;
		bio->bi_next = NULL;
	}
	return bio;
}

/**
 * bio_list_size - count the bios on @bl
 * @bl: the list
 *
 * Return: how many there are.
 */
static inline unsigned int bio_list_size(const struct bio_list *bl)
{
	unsigned int n = 0;

	for (struct bio *b = bl->head; b; b = b->bi_next)
		n++;
	return n;
}

/*
 * bio_set: where bios come from.  Each bio_set owns a mempool of bios laid
 * out as [front_pad][struct bio][BIO_INLINE_VECS bvecs], so a caller embeds
 * its per-I/O state in front of the bio and finds it with container_of();
 * a mempool of BIO_MAX_VECS bvec tables for bios that need more; and, with
 * BIOSET_NEED_RESCUER, a rescuer thread (see bio_alloc_bioset()).
 */
#define BIOSET_NEED_BVECS	0x1u	/* keep a reserve of bvec tables too */
#define BIOSET_NEED_RESCUER	0x2u	/* start a rescuer thread */

struct bio_set {
	mempool_t bio_pool;
	mempool_t bvec_pool;
	unsigned int front_pad;
	unsigned int flags;
	size_t bio_size;		/* front_pad + bio + inline vecs */
	struct pgalloc *pages;		/* for bio_alloc_pages(); NULL: none */

	/* The rescuer: bios punted from a plug that would otherwise deadlock. */
	pthread_mutex_t rescue_lock;
	pthread_cond_t rescue_cond;
	struct bio_list rescue_list;
	pthread_t rescue_thread;
	bool rescue_running;
	bool rescue_stop;
	atomic_ulong rescued;		/* bios the rescuer submitted */
};

/**
 * bioset_init - set up a bio_set
 * @bs: the bio_set
 * @pool_size: bios kept in reserve (and bvec tables, with BIOSET_NEED_BVECS)
 * @front_pad: bytes before each bio; must keep the bio aligned (a multiple
 *	of 8, as offsetof(struct x, bio) is)
 * @flags: BIOSET_NEED_BVECS, BIOSET_NEED_RESCUER
 * @pages: the page allocator bio_alloc_pages() and bio_free_pages() use for
 *	this set's bios; NULL for a set whose bios never own pages
 *
 * Return: 0, -EINVAL for a misaligned @front_pad, or -ENOMEM; on failure
 * nothing is left allocated.
 */
int bioset_init(struct bio_set *bs, unsigned int pool_size,
		unsigned int front_pad, unsigned int flags,
		struct pgalloc *pages);

/**
 * bioset_exit - stop the rescuer and free the reserves
 * @bs: a set from bioset_init(); every bio of it must have been put
 */
void bioset_exit(struct bio_set *bs);

/**
 * bio_alloc_bioset - allocate a bio
 * @gfp: BLK_GFP_WAIT to sleep until one is free
 * @nr_vecs: bvecs it needs room for (bi_max_vecs >= @nr_vecs), at most
 *	BIO_MAX_VECS
 * @bs: the set to take it from, or NULL for kmalloc
 *
 * From a bio_set with BLK_GFP_WAIT it never fails (for @nr_vecs above
 * BIO_INLINE_VECS the bio_set needs BIOSET_NEED_BVECS).  That guarantee has the
 * kernel's price: a caller must not allocate a second bio from the same
 * bio_set while it holds one it has not submitted, or it may wait forever
 * on its own bio.  The rule is: allocate one, submit it, allocate the next.
 * Bios submitted under a plug (blk_start_plug()) are not yet really
 * submitted; for those, when the allocation would sleep, the bios of this
 * bio_set on the caller's plug are handed to @bs's rescuer thread, which
 * submits them, and then the allocation sleeps.
 *
 * Return: the bio, or NULL without WAIT, with @nr_vecs > BIO_MAX_VECS, or
 * (NULL @bs) when kmalloc fails.
 */
struct bio *bio_alloc_bioset(blk_gfp_t gfp, unsigned int nr_vecs,
			     struct bio_set *bs);

/**
 * bio_kmalloc - bio_alloc_bioset(@gfp, @nr_vecs, NULL)
 * @gfp: as for bio_alloc_bioset()
 * @nr_vecs: bvecs it needs room for
 *
 * Return: the bio, or NULL.  It has no page allocator: it cannot own pages.
 */
static inline struct bio *bio_kmalloc(blk_gfp_t gfp, unsigned int nr_vecs)
{
	return bio_alloc_bioset(gfp, nr_vecs, NULL);
}

/*
 * Per-I/O state in a bio's front pad, the kernel's way: the caller's
 * struct ends with its bio (struct dio { ...; struct bio bio; }), the
 * bio_set's front_pad is at least BIO_FRONT_PAD() of it, and container_of()
 * goes from the bio to the struct (bio_pad_obj()) while &obj->bio goes
 * back.  Never (char *)bio - front_pad: two front ends share one bio_set
 * sized for the larger of their structs, and the smaller one's state
 * then starts later in the pad than its first byte.
 */

/**
 * BIO_FRONT_PAD - the front pad @type needs in a bio_set
 * @type: the caller's struct
 * @member: its struct bio, which must be its last member (checked at
 *          build time, as the inline bvecs follow the bio)
 */
#define BIO_FRONT_PAD(type, member)					\
	((unsigned int)offsetof(type, member) +				\
	 0u * (unsigned int)sizeof(struct {				\
		_Static_assert(offsetof(type, member) + sizeof(struct bio) ==	\
			       sizeof(type), #type " must end with its bio");	\
		int dummy;						\
	}))

/**
 * bio_pad_obj - the caller's struct that ends with @bio
 * @bio: a bio from a bio_set whose front_pad is at least
 *       BIO_FRONT_PAD(@type, @member)
 * @type: the caller's struct
 * @member: its struct bio
 */
#define bio_pad_obj(bio, type, member) container_of(bio, type, member)

/**
 * bio_reset - make @bio empty again, for op and flags @opf
 * @bio: the bio
 * @opf: its new bi_opf
 *
 * It keeps its bvec table, pool and reference count.  Pages from
 * bio_alloc_pages() are freed first; bi_end_io, bi_private, bi_queue, the
 * flags and the status are cleared and the remaining-completions count is
 * 1 again.
 */
void bio_reset(struct bio *bio, blk_opf_t opf);

/**
 * bio_add_page - append a segment to @bio
 * @bio: the bio
 * @page: the memory (segments need not be page-sized: any address works)
 * @len: its length
 * @offset: where the segment starts in @page
 *
 * Return: @len, or 0 when the table is full, @len is 0, the bio is a
 * clone, or bi_size would overflow (no partial add).
 */
unsigned int bio_add_page(struct bio *bio, void *page, unsigned int len,
			  unsigned int offset);

/**
 * bio_prep_pages - lay out @size bytes as page-sized bvecs, no memory yet
 * @bio: an empty bio
 * @size: bytes
 *
 * The bvecs have bv_page NULL, ready for bio_alloc_pages(); bi_vcnt and
 * bi_iter.bi_size are set.
 *
 * Return: 0, or -EINVAL if the table is too small or the bio not empty.
 */
int bio_prep_pages(struct bio *bio, unsigned int size);

/**
 * bio_alloc_pages - give every bvec up to bi_vcnt a page of its own
 * @bio: a bio from bio_prep_pages()
 * @gfp: BLK_GFP_WAIT to sleep for pages
 *
 * The pages come from the page allocator of the bio's set (bioset_init()).
 *
 * Return: 0, -EINVAL if the bio already owns pages or is a clone, or
 * -ENOMEM having freed exactly the pages it allocated (the bvecs are back
 * to NULL), and also when the bio's set has no allocator (or the bio is
 * not from a set).
 */
int bio_alloc_pages(struct bio *bio, blk_gfp_t gfp);

/**
 * bio_adopt_pages - give @bio pages the caller allocated
 * @bio: an empty bio
 * @pages: @nr pages from its bio_set's page allocator
 * @nr: how many
 * @size: bytes in them, in page-sized bvecs, the last one partial
 *
 * The bio then owns them as if bio_alloc_pages() had given them: they are
 * freed with the bio.  For a front end that lands a payload in pages
 * before it knows which request it belongs to.
 *
 * Return: 0, or -EINVAL (bio not empty, a clone, table too small, or @nr
 * not DIV_ROUND_UP(@size, PAGE_SIZE)), having taken nothing.
 */
int bio_adopt_pages(struct bio *bio, void *const *pages, unsigned int nr,
		    unsigned int size);

/**
 * bio_free_pages - free the pages bio_alloc_pages() or bio_adopt_pages() gave
 * @bio: the bio; nothing happens if it owns none
 */
void bio_free_pages(struct bio *bio);

/**
 * bio_copy_data - copy data between two bios of any bvec layout
 * @dst: the bio copied to
 * @src: the bio copied from
 *
 * Copies min(dst size, src size) bytes from their iterators; neither
 * bio's iterator changes.
 */
void bio_copy_data(struct bio *dst, struct bio *src);

/**
 * bio_copy_data_iter - bio_copy_data() from and to explicit iterators
 * @dst: the bio copied to
 * @dst_iter: where in @dst; advanced past the copied bytes
 * @src: the bio copied from
 * @src_iter: where in @src; advanced past the copied bytes
 */
void bio_copy_data_iter(struct bio *dst, struct bvec_iter *dst_iter,
			struct bio *src, struct bvec_iter *src_iter);

/**
 * bio_copy_to_buf - copy the bio's data, from its iterator, to @buf
 * @bio: the bio; its iterator does not move
 * @buf: a flat buffer
 * @len: at most this many bytes
 *
 * Return: the bytes copied.
 */
size_t bio_copy_to_buf(struct bio *bio, void *buf, size_t len);

/**
 * bio_copy_from_buf - copy @buf into the bio's data, from its iterator
 * @bio: the bio; its iterator does not move
 * @buf: a flat buffer
 * @len: at most this many bytes
 *
 * Return: the bytes copied.
 */
size_t bio_copy_from_buf(struct bio *bio, const void *buf, size_t len);

/**
 * zero_fill_bio - zero the bio's data from its iterator
 * @bio: the bio
 */
void zero_fill_bio(struct bio *bio);

/**
 * bio_advance - move the bio's iterator, and its sector, @bytes forward
 * @bio: the bio
 * @bytes: how far
 */
void bio_advance(struct bio *bio, unsigned int bytes);

/**
 * bio_split - split off the first @sectors of @bio
 * @bio: the bio; advanced past them
 * @sectors: how many; more than 0 and fewer than bio_sectors(@bio)
 * @gfp: as for bio_alloc_bioset()
 * @bs: the set the new bio comes from (NULL: kmalloc)
 *
 * The front part shares @bio's bvec table, so it must complete before the
 * table's owner frees it: chain it to @bio with bio_chain().
 *
 * Return: the front part, ERR_PTR(-EINVAL) for a bad @sectors, or
 * ERR_PTR(-ENOMEM) if the allocation fails.
 */
struct bio *bio_split(struct bio *bio, unsigned int sectors, blk_gfp_t gfp,
		      struct bio_set *bs);

/**
 * bio_alloc_clone - a new bio sharing @src's bvec table
 * @src: the bio cloned; it must outlive the clone
 * @gfp: as for bio_alloc_bioset()
 * @bs: the set the clone comes from (NULL: kmalloc)
 *
 * The clone has @src's iterator, op and queue.
 *
 * Return: the clone, or NULL on failure.
 */
struct bio *bio_alloc_clone(struct bio *src, blk_gfp_t gfp, struct bio_set *bs);

/**
 * bio_chain - make @parent complete only after @bio
 * @bio: the child; its completion puts it and ends @parent, passing on
 *	the first error.  Its bi_end_io and bi_private are overwritten.
 * @parent: the bio that waits
 */
void bio_chain(struct bio *bio, struct bio *parent);

/**
 * bio_inc_remaining - one more completion @bio waits for
 * @bio: the bio; its bi_end_io runs only after one more bio_endio()
 */
void bio_inc_remaining(struct bio *bio);

/**
 * bio_endio - complete @bio
 * @bio: the bio
 *
 * Once every chained child and the bio itself have ended, its bi_end_io
 * runs.  Safe from any thread.
 */
void bio_endio(struct bio *bio);

/**
 * blk_status_to_errno - a bio's status as a positive errno for a front end
 * @status: bi_status: 0 or -errno
 *
 * As the kernel's blk_status_to_errno(): 0 stays 0, a status that is no
 * errno (out of range) is EIO.  Each front end maps this to its protocol.
 */
static inline int blk_status_to_errno(blk_status_t status)
{
	int err = status < 0 ? -status : status;

	return err > 0 && err < 4096 ? err : err ? EIO : 0;
}

/**
 * bio_endio_status - end @bio with @status
 * @bio: the bio
 * @status: 0, or a -errno that becomes its bi_status
 */
static inline void bio_endio_status(struct bio *bio, blk_status_t status)
{
	if (status)
		bio->bi_status = status;
	bio_endio(bio);
}

/**
 * bio_get - take a reference to @bio
 * @bio: the bio; a new bio holds one reference
 */
void bio_get(struct bio *bio);

/**
 * bio_put - drop a reference to @bio
 * @bio: the bio
 *
 * The last one frees it, along with any pages bio_alloc_pages() gave it
 * that bio_free_pages() did not free.
 */
void bio_put(struct bio *bio);

#endif
