/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_CONFIG_H
#define BLOCKD_DAEMON_CONFIG_H

#include "daemon/options.h"

/*
 * The config file (blockd.conf(5)): INI, parsed by libinih.  A [global]
 * section holds the command line's settings under their long names; each
 * [export NAME] section is one export.
 */

/**
 * config_load - read the config file
 * @path: the file
 * @o: the options, on defaults
 *
 * Return: 0; or EXIT_USAGE after printing "PATH:LINE: message" for the
 * first unknown key, bad value, duplicate export or unreadable file, with
 * @o freed.
 */
int config_load(const char *path, struct options *o);

#endif
