/* SPDX-License-Identifier: MIT */
/*
 * vserial-relay LISTEN PORT...: inside the kernel-attach test's QEMU guest,
 * turn virtio-serial ports into a socket nbd-client can connect to.  The
 * guest has no network card; QEMU connects each port's chardev to blockd on
 * the host, so a port is one NBD connection.
 *
 * LISTEN is a unix socket path, or ADDR:PORT for TCP on the guest's own
 * loopback.  Once it listens the relay goes to the background (so the
 * caller may connect as soon as it returns), then accepts one connection
 * per PORT, in order, and copies bytes both ways between the connection
 * and the port until either side ends.  nbd-client -C N connects N times:
 * give N ports.  A PORT is the name given to QEMU's virtserialport
 * (looked up in /sys/class/virtio-ports) or a device path.
 *
 * Built static: the guest's initramfs has no C library of its own.
 */
#include <config.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE	(64 * 1024)
/* How long a port may wait for QEMU to connect it, in 100 ms steps. */
#define HOST_WAIT_TRIES	100

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "vserial-relay: %s %s: %s\n", what, arg, strerror(errno));
	exit(1);
}

static int listen_on(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	int fd, one = 1;

	if (spec[0] == '/') {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		if (strlen(spec) >= sizeof(sun.sun_path)) {
			errno = ENAMETOOLONG;
			die("listen", spec);
		}
		strcpy(sun.sun_path, spec);
		/* The relay of an earlier connection may have left it behind. */
		unlink(spec);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
		    listen(fd, 16))
			die("listen", spec);
		return fd;
	}
	if (colon) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		char addr[64];

		snprintf(addr, sizeof(addr), "%.*s", (int)(colon - spec), spec);
		sin.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
			errno = EINVAL;
			die("listen", spec);
		}
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 16))
			die("listen", spec);
		return fd;
	}
	errno = EINVAL;
	die("listen", spec);
	return -1;
}

/* The /dev node of the virtio-serial port called @name. */
static int open_port(const char *name)
{
	char path[300], want[256];
	struct dirent *de;
	DIR *d;
	int fd = -1;
	bool found = false;

	if (name[0] == '/')
		return open(name, O_RDWR | O_CLOEXEC);
	d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -1;
	while (fd < 0 && (de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(want, sizeof(want), f)) {
			want[strcspn(want, "\n")] = 0;
			if (!strcmp(want, name)) {
				found = true;
				snprintf(path, sizeof(path), "/dev/%s", de->d_name);
				fd = open(path, O_RDWR | O_CLOEXEC);
			}
		}
		fclose(f);
	}
	closedir(d);
	if (!found)
		errno = ENOENT;
	return fd;
}

static int write_all(int fd, const char *p, ssize_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, (size_t)n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= w;
	}
	return 0;
}

/* Copy both ways until one side ends; the other is then closed with it. */
static void relay(int sock, int port)
{
	static char buf[BUF_SIZE];
	struct pollfd pfd[2] = {
		{ .fd = sock, .events = POLLIN },
		{ .fd = port, .events = POLLIN },
	};

	for (;;) {
		unsigned int i;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (i = 0; i < 2; i++) {
			ssize_t n;

			if (!pfd[i].revents)
				continue;
			/* A port whose host side is gone reads 0 once drained. */
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || write_all(pfd[!i].fd, buf, n))
				return;
		}
	}
}

int main(int argc, char **argv)
{
	int lfd, i, tries, one = 1;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: vserial-relay LISTEN PORT...\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(argv[1]);
	pid = fork();
	if (pid < 0)
		die("fork", "");
	if (pid)
		return 0;
	for (i = 2; i < argc; i++) {
		int port, sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		struct pollfd pfd;

		if (sock < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			die("accept on", argv[1]);
		}
		setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		port = open_port(argv[i]);
		if (port < 0) {
			fprintf(stderr, "vserial-relay: port %s: %s\n", argv[i], strerror(errno));
			close(sock);
			continue;
		}
		/*
		 * POLLHUP: QEMU has no connection to blockd behind this port,
		 * as when blockd dropped an idle one and QEMU is connecting
		 * again (-chardev socket,reconnect=1).  Give it a moment.
		 */
		pfd.fd = port;
		pfd.events = POLLIN;
		for (tries = 0; tries < HOST_WAIT_TRIES; tries++) {
			if (poll(&pfd, 1, 0) < 0 || !(pfd.revents & POLLHUP))
				break;
			usleep(100 * 1000);
		}
		if (tries == HOST_WAIT_TRIES)
			fprintf(stderr, "vserial-relay: port %s: the host side is not connected\n",
				argv[i]);
		pid = fork();
		if (pid < 0)
			die("fork", "");
		if (!pid) {
			close(lfd);
			relay(sock, port);
			_exit(0);
		}
		close(sock);
		close(port);
	}
	/* A unix socket stays: the next relay on its path replaces it. */
	close(lfd);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
}
