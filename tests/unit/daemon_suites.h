/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_TESTS_UNIT_DAEMON_SUITES_H
#define BLOCKD_TESTS_UNIT_DAEMON_SUITES_H

#include <check.h>

/* The daemon's pure code (check_daemon). */
Suite *nbd_reply_suite(void);
Suite *fuse_rmw_suite(void);

#endif
