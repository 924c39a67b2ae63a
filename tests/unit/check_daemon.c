// SPDX-License-Identifier: MIT
/*
 * Unit tests of the daemon's pure logic, beside check_core's of the core:
 * what the NBD front end puts on the wire without a connection, socket or
 * backend behind it (daemon/nbd_reply.c), and the FUSE front end's
 * read-modify-write merge and READ reply on page bios, without libfuse or
 * a mount (daemon/fuse_pages.c).
 */
#include <stdlib.h>

#include "daemon_suites.h"

int main(void)
{
	SRunner *sr = srunner_create(nbd_reply_suite());
	int failed;

	srunner_add_suite(sr, fuse_rmw_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
