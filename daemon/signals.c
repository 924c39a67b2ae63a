/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/signals.h"

static const char *fatal_pidfile;

int signals_open(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &mask, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static void fatal(int sig)
{
	static const char msg[] = "blockd: second signal during the drain: exiting now\n";
	ssize_t n;

	(void)sig;
	/* Only async-signal-safe calls here. */
	n = write(2, msg, sizeof(msg) - 1);
	(void)n;
	if (fatal_pidfile)
		unlink(fatal_pidfile);
	_exit(1);
}

void signals_second_is_fatal(const char *pidfile)
{
	struct sigaction sa;
	sigset_t mask;

	fatal_pidfile = pidfile;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fatal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* Only this thread unblocks them, so this thread takes them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
}
