/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_EXPORT_SPEC_H
#define BLOCKD_DAEMON_EXPORT_SPEC_H

#include <stddef.h>

#include "backends/backend.h"

/*
 * An export as the user wrote it: [NAME=]BACKEND:TARGET[,key=value...], e.g.
 * "disk=file:/var/lib/blockd/disk.img,size=1G,cache=none",
 * "scratch=memory:,size=512M", "up=nbd:nbd+unix:///?socket=/run/x.sock".
 * Everything after "NAME=" is a backend spec (backends/backend.h).  One
 * without a name, as qemu-nbd and nbdkit serve a disk, is named
 * EXPORT_SPEC_UNNAMED: the file a FUSE mount shows it as, and a name NBD
 * clients may ask for besides the default export's "".
 */
#define EXPORT_SPEC_UNNAMED	"disk"

struct export_spec {
	char *name;
	struct backend_params params;
	char *description;	/* NULL: "BACKEND:TARGET" */
	unsigned int pool_size;	/* bios kept in reserve; 0: the default */
};

/**
 * export_spec_parse - parse @s into @spec
 * @s: [NAME=]BACKEND:TARGET[,key=value...]
 * @spec: on success, to be freed with export_spec_free()
 * @err: a message for the user
 * @errlen: its size
 *
 * Return: 0, or -EINVAL with a message in @err.
 */
int export_spec_parse(const char *s, struct export_spec *spec, char *err,
		      size_t errlen);

/**
 * export_spec_free - free what @spec holds and clear it
 * @spec: the spec
 */
void export_spec_free(struct export_spec *spec);

#endif
