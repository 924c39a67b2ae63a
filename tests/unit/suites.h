/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_TESTS_UNIT_SUITES_H
#define BLOCKD_TESTS_UNIT_SUITES_H

#include <check.h>

Suite *page_suite(void);
Suite *kmem_suite(void);
Suite *mempool_suite(void);
Suite *bio_suite(void);
Suite *copy_suite(void);
Suite *split_suite(void);
Suite *request_suite(void);
Suite *progress_suite(void);
Suite *ioloop_suite(void);
Suite *range_lock_suite(void);
Suite *bounce_suite(void);

#endif
