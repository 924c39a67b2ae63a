// SPDX-License-Identifier: MIT
/*
 * Unit tests of the FUSE front end's pure code (daemon/fuse_pages.c): the
 * read-modify-write merge and the READ reply, on page bios, without
 * libfuse or a mount.
 */
#include <stdlib.h>

#include "fuse_suites.h"

int main(void)
{
	SRunner *sr = srunner_create(fuse_rmw_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
