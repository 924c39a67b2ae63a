/* SPDX-License-Identifier: MIT */
/*
 * The bio layer, after block/bio.c: allocation from bio_sets with their
 * reserves and rescuer, page-per-bvec buffers, data copies between bios of
 * any layout, splitting, chaining and completion.
 */
#include <errno.h>
#include <string.h>

#include "bio.h"
#include "kmem.h"
#include "page.h"
#include "request.h"

/* Sizes of the kmalloc'ed bvec tables, like the kernel's biovec slabs. */
static unsigned int bvec_table_size(unsigned int nr)
{
	if (nr <= 16)
		return 16;
	if (nr <= 64)
		return 64;
	if (nr <= 128)
		return 128;
	return BIO_MAX_VECS;
}

static struct bio_vec *bvec_alloc(struct bio_set *bs, unsigned int *nr_vecs,
				  blk_gfp_t gfp)
{
	unsigned int nr = bvec_table_size(*nr_vecs);
	struct bio_vec *bvl;

	if (nr == BIO_MAX_VECS && (bs->flags & BIOSET_NEED_BVECS)) {
		bvl = mempool_alloc(&bs->bvec_pool, gfp);
		goto out;
	}
	/* Try the heap without sleeping, then fall back on the reserve. */
	bvl = kmalloc(nr * sizeof(*bvl), gfp & ~BLK_GFP_WAIT);
	if (!bvl && (bs->flags & BIOSET_NEED_BVECS)) {
		nr = BIO_MAX_VECS;
		bvl = mempool_alloc(&bs->bvec_pool, gfp);
	} else if (!bvl && (gfp & BLK_GFP_WAIT)) {
		bvl = kmalloc(nr * sizeof(*bvl), gfp);
	}
out:
	if (bvl)
		*nr_vecs = nr;
	return bvl;
}

static void bvec_free(struct bio_set *bs, struct bio_vec *bvl, unsigned int nr)
{
	if (nr == BIO_MAX_VECS && (bs->flags & BIOSET_NEED_BVECS))
		mempool_free(bvl, &bs->bvec_pool);
	else
		kfree(bvl);
}

static void bio_init(struct bio *bio, struct bio_vec *table,
		     unsigned short max_vecs)
{
	memset(bio, 0, sizeof(*bio));
	atomic_init(&bio->__bi_remaining, 1);
	atomic_init(&bio->__bi_cnt, 1);
	bio->bi_io_vec = table;
	bio->bi_max_vecs = max_vecs;
}

void bio_reset(struct bio *bio, blk_opf_t opf)
{
	struct bio_vec *table;
	unsigned short max_vecs;
	struct bio_set *bs = bio->bi_pool;
	int cnt = atomic_load(&bio->__bi_cnt);

	/* The reset forgets which pages the bio owns: give them back first. */
	bio_free_pages(bio);
	table = bio->bi_io_vec;
	max_vecs = bio->bi_max_vecs;

	bio_init(bio, table, max_vecs);
	atomic_store(&bio->__bi_cnt, cnt);
	bio->bi_pool = bs;
	bio->bi_opf = opf;
}

static void *bio_rescue_work(void *arg)
{
	struct bio_set *bs = arg;
	struct bio_list list;
	struct bio *bio;

	pthread_mutex_lock(&bs->rescue_lock);
	for (;;) {
		while (bio_list_empty(&bs->rescue_list) && !bs->rescue_stop)
			pthread_cond_wait(&bs->rescue_cond, &bs->rescue_lock);
		if (bio_list_empty(&bs->rescue_list))
			break;
		list = bs->rescue_list;
		bio_list_init(&bs->rescue_list);
		pthread_mutex_unlock(&bs->rescue_lock);

		/* The rescuer holds no plug: each bio goes straight out. */
		while ((bio = bio_list_pop(&list))) {
			atomic_fetch_add(&bs->rescued, 1);
			submit_bio(bio);
		}
		pthread_mutex_lock(&bs->rescue_lock);
	}
	pthread_mutex_unlock(&bs->rescue_lock);
	return NULL;
}

/*
 * The caller is about to sleep for memory while bios of @bs wait on its
 * plug; they may be what would free that memory, so submit them from the
 * rescuer thread instead.
 */
static void punt_bios_to_rescuer(struct bio_set *bs)
{
	struct bio_list punt;

	bio_list_init(&punt);
	blk_plug_steal_bios(bs, &punt);
	if (bio_list_empty(&punt))
		return;

	pthread_mutex_lock(&bs->rescue_lock);
	bio_list_merge(&bs->rescue_list, &punt);
	pthread_cond_signal(&bs->rescue_cond);
	pthread_mutex_unlock(&bs->rescue_lock);
}

/* Whether a sleeping allocation for @bs should first try without sleeping. */
static bool must_punt_first(struct bio_set *bs, blk_gfp_t gfp)
{
	if (!bs || !bs->rescue_running || !(gfp & BLK_GFP_WAIT))
		return false;
	return blk_has_pending_bios();
}

int bioset_init(struct bio_set *bs, unsigned int pool_size,
		unsigned int front_pad, unsigned int flags,
		struct pgalloc *pages)
{
	int ret;

	memset(bs, 0, sizeof(*bs));
	if (front_pad % _Alignof(struct bio))
		return -EINVAL;
	bs->front_pad = front_pad;
	bs->flags = flags;
	bs->pages = pages;
	bs->bio_size = front_pad + sizeof(struct bio) +
		       BIO_INLINE_VECS * sizeof(struct bio_vec);
	bio_list_init(&bs->rescue_list);
	pthread_mutex_init(&bs->rescue_lock, NULL);
	pthread_cond_init(&bs->rescue_cond, NULL);

	ret = mempool_init_kmalloc_pool(&bs->bio_pool, (int)pool_size,
					bs->bio_size);
	if (ret)
		goto out_lock;
	if (flags & BIOSET_NEED_BVECS) {
		ret = mempool_init_kmalloc_pool(&bs->bvec_pool, (int)pool_size,
						BIO_MAX_VECS * sizeof(struct bio_vec));
		if (ret)
			goto out_bio_pool;
	}
	if (flags & BIOSET_NEED_RESCUER) {
		ret = -pthread_create(&bs->rescue_thread, NULL, bio_rescue_work, bs);
		if (ret)
			goto out_bvec_pool;
		bs->rescue_running = true;
	}
	return 0;

out_bvec_pool:
	if (flags & BIOSET_NEED_BVECS)
		mempool_exit(&bs->bvec_pool);
out_bio_pool:
	mempool_exit(&bs->bio_pool);
out_lock:
	pthread_cond_destroy(&bs->rescue_cond);
	pthread_mutex_destroy(&bs->rescue_lock);
	return ret;
}

void bioset_exit(struct bio_set *bs)
{
	if (bs->rescue_running) {
		pthread_mutex_lock(&bs->rescue_lock);
		bs->rescue_stop = true;
		pthread_cond_signal(&bs->rescue_cond);
		pthread_mutex_unlock(&bs->rescue_lock);
		pthread_join(bs->rescue_thread, NULL);
		bs->rescue_running = false;
	}
	if (bs->flags & BIOSET_NEED_BVECS)
		mempool_exit(&bs->bvec_pool);
	mempool_exit(&bs->bio_pool);
	pthread_cond_destroy(&bs->rescue_cond);
	pthread_mutex_destroy(&bs->rescue_lock);
}

struct bio *bio_alloc_bioset(blk_gfp_t gfp, unsigned int nr_vecs,
			     struct bio_set *bs)
{
	blk_gfp_t saved_gfp = gfp;
	struct bio *bio;
	void *p;

	if (nr_vecs > BIO_MAX_VECS)
		return NULL;

	if (!bs) {
		bio = kmalloc(sizeof(*bio) + nr_vecs * sizeof(struct bio_vec), gfp);
		if (!bio)
			return NULL;
		bio_init(bio, bio->bi_inline_vecs, (unsigned short)nr_vecs);
		return bio;
	}

	/*
	 * Sleeping while bios of this bio_set sit on our own plug could wait
	 * forever for ourselves: try without sleeping first, and only after
	 * handing those bios to the rescuer, sleep.
	 */
	if (must_punt_first(bs, gfp))
		gfp &= ~BLK_GFP_WAIT;

	p = mempool_alloc(&bs->bio_pool, gfp);
	if (!p && gfp != saved_gfp) {
		punt_bios_to_rescuer(bs);
		gfp = saved_gfp;
		p = mempool_alloc(&bs->bio_pool, gfp);
	}
	if (unlikely(!p))
		return NULL;
	bio = (struct bio *)((char *)p + bs->front_pad);

	if (nr_vecs > BIO_INLINE_VECS) {
		struct bio_vec *bvl = bvec_alloc(bs, &nr_vecs, gfp);

		if (!bvl && gfp != saved_gfp) {
			punt_bios_to_rescuer(bs);
			gfp = saved_gfp;
			bvl = bvec_alloc(bs, &nr_vecs, gfp);
		}
		if (unlikely(!bvl)) {
			mempool_free(p, &bs->bio_pool);
			return NULL;
		}
		bio_init(bio, bvl, (unsigned short)nr_vecs);
	} else if (nr_vecs) {
		bio_init(bio, bio->bi_inline_vecs, BIO_INLINE_VECS);
	} else {
		bio_init(bio, NULL, 0);
	}
	bio->bi_pool = bs;
	return bio;
}

/* The allocator of @bio's bio_set; NULL for none (or a kmalloc'ed bio). */
static struct pgalloc *bio_page_allocator(const struct bio *bio)
{
	return bio->bi_pool ? bio->bi_pool->pages : NULL;
}

static void bio_free(struct bio *bio)
{
	struct bio_set *bs = bio->bi_pool;

	if (bio_flagged(bio, BIO_PAGES_OWNED))
		bio_free_pages(bio);
	if (!bs) {
		kfree(bio);
		return;
	}
	if (bio->bi_max_vecs > BIO_INLINE_VECS && !bio_flagged(bio, BIO_CLONED))
		bvec_free(bs, bio->bi_io_vec, bio->bi_max_vecs);
	mempool_free((char *)bio - bs->front_pad, &bs->bio_pool);
}

void bio_get(struct bio *bio)
{
	atomic_fetch_add_explicit(&bio->__bi_cnt, 1, memory_order_relaxed);
}

void bio_put(struct bio *bio)
{
	int old = atomic_fetch_sub_explicit(&bio->__bi_cnt, 1,
					    memory_order_acq_rel);

	BUG_ON(old <= 0);
	if (old == 1)
		bio_free(bio);
}

unsigned int bio_add_page(struct bio *bio, void *page, unsigned int len,
			  unsigned int offset)
{
	struct bio_vec *bv;

	if (!len || bio_flagged(bio, BIO_CLONED) ||
	    bio->bi_vcnt >= bio->bi_max_vecs ||
	    bio->bi_iter.bi_size > UINT32_MAX - len)
		return 0;
	bv = &bio->bi_io_vec[bio->bi_vcnt++];
	bv->bv_page = page;
	bv->bv_len = len;
	bv->bv_offset = offset;
	bio->bi_iter.bi_size += len;
	return len;
}

int bio_prep_pages(struct bio *bio, unsigned int size)
{
	unsigned int nr = DIV_ROUND_UP(size, PAGE_SIZE), i;

	if (bio->bi_vcnt || bio_flagged(bio, BIO_CLONED) || nr > bio->bi_max_vecs)
		return -EINVAL;
	for (i = 0; i < nr; i++) {
		struct bio_vec *bv = &bio->bi_io_vec[i];

		bv->bv_page = NULL;
		bv->bv_offset = 0;
		bv->bv_len = size - i * PAGE_SIZE < PAGE_SIZE ?
			     size - i * PAGE_SIZE : PAGE_SIZE;
	}
	bio->bi_vcnt = (unsigned short)nr;
	bio->bi_iter.bi_size = size;
	return 0;
}

int bio_alloc_pages(struct bio *bio, blk_gfp_t gfp)
{
	struct pgalloc *pa = bio_page_allocator(bio);
	unsigned int nr = bio->bi_vcnt, got, i;
	blk_gfp_t saved_gfp = gfp;
	void *pages[BIO_MAX_VECS];

	if (bio_flagged(bio, BIO_PAGES_OWNED) || bio_flagged(bio, BIO_CLONED))
		return -EINVAL;
	if (!pa || nr > BIO_MAX_VECS)
		return -ENOMEM;
	if (!nr)
		return 0;

	/* As in bio_alloc_bioset(): never sleep on pages our own plug holds. */
	if (must_punt_first(bio->bi_pool, gfp))
		gfp &= ~BLK_GFP_WAIT;
	got = page_alloc_bulk(pa, gfp, nr, pages);
	if (got < nr && gfp != saved_gfp) {
		page_free_bulk(pa, got, pages);
		punt_bios_to_rescuer(bio->bi_pool);
		got = page_alloc_bulk(pa, saved_gfp, nr, pages);
	}
	if (got < nr) {
		page_free_bulk(pa, got, pages);
		return -ENOMEM;
	}
	for (i = 0; i < nr; i++)
		bio->bi_io_vec[i].bv_page = pages[i];
	bio_set_flag(bio, BIO_PAGES_OWNED);
	return 0;
}

int bio_adopt_pages(struct bio *bio, void *const *pages, unsigned int nr,
		    unsigned int size)
{
	unsigned int i;

	if (!size || nr != DIV_ROUND_UP(size, PAGE_SIZE) ||
	    bio_flagged(bio, BIO_PAGES_OWNED) || bio_prep_pages(bio, size))
		return -EINVAL;
	for (i = 0; i < nr; i++)
		bio->bi_io_vec[i].bv_page = pages[i];
	bio_set_flag(bio, BIO_PAGES_OWNED);
	return 0;
}

void bio_free_pages(struct bio *bio)
{
	struct pgalloc *pa = bio_page_allocator(bio);
	void *pages[BIO_MAX_VECS];
	unsigned int i, n = 0;

	if (!bio_flagged(bio, BIO_PAGES_OWNED))
		return;
	for (i = 0; i < bio->bi_vcnt; i++) {
		if (bio->bi_io_vec[i].bv_page)
			pages[n++] = bio->bi_io_vec[i].bv_page;
		bio->bi_io_vec[i].bv_page = NULL;
	}
	page_free_bulk(pa, n, pages);
	bio_clear_flag(bio, BIO_PAGES_OWNED);
}

void bio_copy_data_iter(struct bio *dst, struct bvec_iter *dst_iter,
			struct bio *src, struct bvec_iter *src_iter)
{
	while (src_iter->bi_size && dst_iter->bi_size) {
		struct bio_vec src_bv = bvec_iter_bvec(src->bi_io_vec, *src_iter);
		struct bio_vec dst_bv = bvec_iter_bvec(dst->bi_io_vec, *dst_iter);
		unsigned int bytes = src_bv.bv_len < dst_bv.bv_len ?
				     src_bv.bv_len : dst_bv.bv_len;

		memcpy(bvec_virt(&dst_bv), bvec_virt(&src_bv), bytes);
		bvec_iter_advance_single(src->bi_io_vec, src_iter, bytes);
		bvec_iter_advance_single(dst->bi_io_vec, dst_iter, bytes);
	}
}

void bio_copy_data(struct bio *dst, struct bio *src)
{
	struct bvec_iter src_iter = src->bi_iter;
	struct bvec_iter dst_iter = dst->bi_iter;

	bio_copy_data_iter(dst, &dst_iter, src, &src_iter);
}

size_t bio_copy_to_buf(struct bio *bio, void *buf, size_t len)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	size_t done = 0;

	bio_for_each_segment(bv, bio, iter) {
		size_t n = len - done < bv.bv_len ? len - done : bv.bv_len;

		memcpy((char *)buf + done, bvec_virt(&bv), n);
		done += n;
		if (done == len)
			break;
	}
	return done;
}

size_t bio_copy_from_buf(struct bio *bio, const void *buf, size_t len)
{
	struct bvec_iter iter;
	struct bio_vec bv;
	size_t done = 0;

	bio_for_each_segment(bv, bio, iter) {
		size_t n = len - done < bv.bv_len ? len - done : bv.bv_len;

		memcpy(bvec_virt(&bv), (const char *)buf + done, n);
		done += n;
		if (done == len)
			break;
	}
	return done;
}

void zero_fill_bio(struct bio *bio)
{
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter)
		memset(bvec_virt(&bv), 0, bv.bv_len);
}

void bio_advance(struct bio *bio, unsigned int bytes)
{
	if (!bytes)
		return;
	bio->bi_iter.bi_sector += bytes >> SECTOR_SHIFT;
	if (op_has_data(bio_op(bio)) && bio->bi_io_vec)
		bvec_iter_advance(bio->bi_io_vec, &bio->bi_iter, bytes);
	else
		bio->bi_iter.bi_size -= bytes < bio->bi_iter.bi_size ?
					bytes : bio->bi_iter.bi_size;
}

struct bio *bio_alloc_clone(struct bio *src, blk_gfp_t gfp, struct bio_set *bs)
{
	struct bio *bio = bio_alloc_bioset(gfp, 0, bs);

	if (!bio)
		return NULL;
	bio->bi_io_vec = src->bi_io_vec;
	bio->bi_iter = src->bi_iter;
	bio->bi_opf = src->bi_opf;
	bio->bi_queue = src->bi_queue;
	bio_set_flag(bio, BIO_CLONED);
	return bio;
}

struct bio *bio_split(struct bio *bio, unsigned int sectors, blk_gfp_t gfp,
		      struct bio_set *bs)
{
	struct bio *split;

	if (!sectors || sectors >= bio_sectors(bio))
		return ERR_PTR(-EINVAL);
	split = bio_alloc_clone(bio, gfp, bs);
	if (!split)
		return ERR_PTR(-ENOMEM);
	split->bi_iter.bi_size = sectors << SECTOR_SHIFT;
	bio_advance(bio, split->bi_iter.bi_size);
	return split;
}

void bio_inc_remaining(struct bio *bio)
{
	bio_set_flag(bio, BIO_CHAIN);
	atomic_fetch_add(&bio->__bi_remaining, 1);
}

static void bio_chain_endio(struct bio *bio)
{
	/* Never called: bio_endio() unrolls chains itself. */
	(void)bio;
	BUG_ON(1);
}

void bio_chain(struct bio *bio, struct bio *parent)
{
	bio->bi_private = parent;
	bio->bi_end_io = bio_chain_endio;
	bio_inc_remaining(parent);
}

static bool bio_remaining_done(struct bio *bio)
{
	if (!bio_flagged(bio, BIO_CHAIN))
		return true;
	if (atomic_fetch_sub(&bio->__bi_remaining, 1) == 1) {
		bio_clear_flag(bio, BIO_CHAIN);
		return true;
	}
	return false;
}

/* Hand @bio's error to its parent (the first one wins), put it, return the parent. */
static struct bio *bio_chain_parent_done(struct bio *bio)
{
	struct bio *parent = bio->bi_private;
	int expected = 0;

	if (bio->bi_status)
		__atomic_compare_exchange_n(&parent->bi_status, &expected,
					    bio->bi_status, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	bio_put(bio);
	return parent;
}

void bio_endio(struct bio *bio)
{
	/* A loop, not recursion: chains can be as long as a 32 MiB request is split. */
	for (;;) {
		if (!bio_remaining_done(bio))
			return;
		if (bio->bi_end_io != bio_chain_endio)
			break;
		bio = bio_chain_parent_done(bio);
	}
	if (bio->bi_end_io)
		bio->bi_end_io(bio);
}
