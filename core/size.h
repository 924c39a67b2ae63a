/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_SIZE_H
#define BLOCKD_CORE_SIZE_H

#include <stdint.h>

/**
 * parse_size - parse a size such as "4096", "64K", "512M", "1G", "2T"
 * @s: the string: binary units, optional "iB"/"B" suffix ("1GiB")
 * @bytes: where the size goes, in bytes
 *
 * Return: 0, -EINVAL for a malformed string, or -ERANGE on overflow.
 */
int parse_size(const char *s, uint64_t *bytes);

#endif
