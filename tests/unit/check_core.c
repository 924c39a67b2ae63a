// SPDX-License-Identifier: MIT
/*
 * Unit tests of the core bio layer (core/): one Check suite per area, each
 * test in its own process (Check's default CK_FORK), so fault injection
 * never leaks from one test to the next.  The pure parts of the file
 * backends (backends/bounce.c) are tested here too.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
	SRunner *sr = srunner_create(kmem_suite());
	int failed;

	srunner_add_suite(sr, page_suite());
	srunner_add_suite(sr, mempool_suite());
	srunner_add_suite(sr, bio_suite());
	srunner_add_suite(sr, copy_suite());
	srunner_add_suite(sr, split_suite());
	srunner_add_suite(sr, request_suite());
	srunner_add_suite(sr, progress_suite());
	srunner_add_suite(sr, ioloop_suite());
	srunner_add_suite(sr, range_lock_suite());
	srunner_add_suite(sr, bounce_suite());

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
