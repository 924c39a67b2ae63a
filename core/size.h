/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_SIZE_H
#define BLOCKD_CORE_SIZE_H

#include <stdint.h>

/*
 * Parse a size such as "4096", "64K", "512M", "1G", "2T" (binary units,
 * optional "iB"/"B" suffix: "1GiB").  Returns 0 and stores bytes, or
 * -EINVAL for a malformed string, -ERANGE on overflow.
 */
int parse_size(const char *s, uint64_t *bytes);

#endif
