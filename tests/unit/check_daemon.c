// SPDX-License-Identifier: MIT
/*
 * Unit tests of the daemon's pure logic: what it puts on the wire without
 * a connection, socket or backend behind it (daemon/nbd_reply.c).
 */
#include <stdlib.h>

#include <check.h>

Suite *nbd_reply_suite(void);

int main(void)
{
	SRunner *sr = srunner_create(nbd_reply_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
