/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_RELOAD_H
#define BLOCKD_DAEMON_RELOAD_H

#include <stdint.h>

#include "daemon/options.h"
#include "daemon/registry.h"

/**
 * reload_open_exports - open every export of @o into @reg, in order
 * @reg: the registry
 * @o: the options
 * @lim: what opening an export needs besides its spec
 *
 * Return: 0, or 1 after logging the export that failed (those opened so
 * far stay in @reg).
 */
int reload_open_exports(struct registry *reg, const struct options *o,
			const struct export_limits *lim);

/**
 * reload_apply - SIGHUP: read the configuration again and make @reg match it
 * @argc: the command line's
 * @argv: the command line's
 * @config: the config file, absolute; may be NULL
 * @reg: the registry
 * @lim: as for reload_open_exports()
 *
 * New exports are opened and added, exports no longer named are removed
 * (their clients keep them until they disconnect).  Exports whose name
 * stays keep their settings.  The log level is applied; other global
 * settings need a restart and are left as they are.  A configuration
 * with errors changes nothing.
 */
void reload_apply(int argc, char **argv, const char *config,
		  struct registry *reg, const struct export_limits *lim);

#endif
