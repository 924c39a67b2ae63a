/* SPDX-License-Identifier: MIT */
/*
 * The FUSE filesystem: a root directory holding one regular file per
 * export.  This file lists its operations and maps inodes to exports;
 * fuse_meta.c answers the directory's and the files' metadata requests,
 * fuse_data.c their reads, writes, fsyncs and fallocates, fuse_rmw.c the
 * writes that do not cover whole blocks.
 */
#include <config.h>

#include "daemon/fuse_io.h"

unsigned int fuse_fs_front_pad(void)
{
	unsigned int pad = BIO_FRONT_PAD(struct fuse_read, bio);

	pad = max_t(unsigned int, pad, BIO_FRONT_PAD(struct fuse_write, bio));
	pad = max_t(unsigned int, pad, BIO_FRONT_PAD(struct fuse_rmw, bio));
	return max_t(unsigned int, pad, BIO_FRONT_PAD(struct fuse_edge_read, bio));
}

struct fuse_export *fuse_ino_export(struct fuse_frontend *fe, fuse_ino_t ino)
{
	if (ino < FUSE_FIRST_EXPORT_INO ||
	    ino - FUSE_FIRST_EXPORT_INO >= fe->nr_exports)
		return NULL;
	return &fe->fx[ino - FUSE_FIRST_EXPORT_INO];
}

const struct fuse_lowlevel_ops fuse_fs_ops = {
	.init = fuse_meta_init,
	.lookup = fuse_meta_lookup,
	.getattr = fuse_meta_getattr,
	.setattr = fuse_meta_setattr,
	.readdir = fuse_meta_readdir,
	.open = fuse_meta_open,
	.release = fuse_meta_release,
	.read = fuse_data_read,
	.write = fuse_data_write,
	.flush = fuse_data_flush,
	.fsync = fuse_data_fsync,
	.statfs = fuse_meta_statfs,
	.fallocate = fuse_data_fallocate,
	.lseek = fuse_meta_lseek,
};
