/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_TESTS_UNIT_FUSE_SUITES_H
#define BLOCKD_TESTS_UNIT_FUSE_SUITES_H

#include <check.h>

/* The FUSE front end's pure code (check_fuse). */
Suite *fuse_rmw_suite(void);

#endif
