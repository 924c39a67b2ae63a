/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_EXPORT_SPEC_H
#define BLOCKD_DAEMON_EXPORT_SPEC_H

#include <stdbool.h>
#include <stdint.h>

/*
 * An export as the user wrote it: NAME=BACKEND:TARGET[,key=value...], e.g.
 * "disk=file:/var/lib/blockd/disk.img,size=1G,cache=none",
 * "scratch=memory:,size=512M", "up=nbd:nbd+unix:///?socket=/run/x.sock".
 */
enum export_cache {
	EXPORT_CACHE_DEFAULT,
	EXPORT_CACHE_NONE,
	EXPORT_CACHE_WRITEBACK,
};

struct export_spec {
	char *name;
	char *backend;		/* "file", "memory", "nbd" */
	char *target;		/* path or URI; may be empty */
	uint64_t size;		/* 0: not given */
	enum export_cache cache;
	bool readonly;
};

/*
 * Parse @s into @spec.  Returns 0, or -EINVAL with a message for the user
 * in @err (size @errlen).  On success free with export_spec_free().
 */
int export_spec_parse(const char *s, struct export_spec *spec, char *err,
		      size_t errlen);

void export_spec_free(struct export_spec *spec);

#endif
