/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemonize.h"

static int ready_fd = -1;

int daemonize_start(void)
{
	unsigned char status = 1;
	int pfd[2];
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid > 0) {
		/* The starter: wait for the daemon's word. */
		close(pfd[1]);
		waitpid(pid, NULL, 0);
		do
			n = read(pfd[0], &status, 1);
		while (n < 0 && errno == EINTR);
		/* EOF without a word: the daemon died during start-up. */
		_exit(n == 1 ? status : 1);
	}
	close(pfd[0]);
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	ready_fd = pfd[1];
	umask(022);
	if (chdir("/"))
		return -errno;
	return 0;
}

static void tell(unsigned char status)
{
	ssize_t n;

	if (ready_fd < 0)
		return;
	do
		n = write(ready_fd, &status, 1);
	while (n < 0 && errno == EINTR);
	close(ready_fd);
	ready_fd = -1;
}

void daemonize_ready(void)
{
	int fd;

	if (ready_fd < 0)
		return;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	tell(0);
}

void daemonize_failed(int status)
{
	tell((unsigned char)(status ? status : 1));
}

int pidfile_write(const char *path)
{
	char *tmp, buf[32];
	int fd, ret = 0, len;

	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)len) != len)
		ret = errno ? -errno : -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
out:
	free(tmp);
	return ret;
}
