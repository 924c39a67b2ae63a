/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/listen.h"

#define BACKLOG	128
/* Socket send buffer asked for; the kernel doubles it, then caps it. */
#define SEND_BUFFER	(2 << 20)

static int add(struct listeners *ls, int fd, bool tcp, const char *path,
	       bool owned, const char *name)
{
	struct listener *n = realloc(ls->l, (ls->n + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	ls->l = n;
	n = &ls->l[ls->n];
	memset(n, 0, sizeof(*n));
	n->fd = fd;
	n->tcp = tcp;
	n->owned = owned;
	if (path) {
		n->path = strdup(path);
		if (!n->path)
			return -ENOMEM;
	}
	snprintf(n->name, sizeof(n->name), "%s", name);
	ls->n++;
	return 0;
}

/* A socket file nobody listens on is left over from a crash: reuse the path. */
static void remove_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) || !S_ISSOCK(st.st_mode))
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) &&
	    errno == ECONNREFUSED)
		unlink(path);
	close(fd);
}

int listen_unix(struct listeners *ls, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	remove_stale(path, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	/* Owner and group may attach; others may not. */
	if (chmod(path, 0660) || listen(fd, BACKLOG)) {
		ret = -errno;
		unlink(path);
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	ret = add(ls, fd, false, path, true, path);
	if (ret) {
		unlink(path);
		close(fd);
		snprintf(err, errlen, "out of memory");
	}
	return ret;
fail:
	ret = -errno;
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	return ret;
}

/* "HOST:PORT" or "[V6ADDR]:PORT" into @host and *@port; false if malformed. */
static bool split_host_port(const char *spec, char *host, size_t size,
			    const char **port)
{
	const char *h = spec, *end;
	size_t hl;

	if (spec[0] == '[') {
		h = spec + 1;
		end = strchr(spec, ']');
		if (!end || end[1] != ':')
			return false;
		*port = end + 2;
	} else {
		end = strrchr(spec, ':');
		if (!end)
			return false;
		*port = end + 1;
	}
	hl = (size_t)(end - h);
	if (hl >= size || !**port)
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	return true;
}

int listen_tcp(struct listeners *ls, const char *spec, char *err, size_t errlen)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char host[256], name[128];
	const char *port;
	int fd = -1, ret, one = 1;

	if (!split_host_port(spec, host, sizeof(host), &port))
		goto bad;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	ret = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (ret) {
		snprintf(err, errlen, "%s: %s", spec, gai_strerror(ret));
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* One family per socket: [::]:P and 0.0.0.0:P can both be given. */
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, BACKLOG))
		goto fail;
	freeaddrinfo(res);
	snprintf(name, sizeof(name), "tcp %s", spec);
	ret = add(ls, fd, true, NULL, false, name);
	if (ret) {
		close(fd);
		snprintf(err, errlen, "out of memory");
	}
	return ret;
fail:
	ret = -errno;
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
	snprintf(err, errlen, "%s: %s", spec, strerror(-ret));
	return ret;
bad:
	snprintf(err, errlen, "'%s' is not ADDR:PORT ([ADDR]:PORT for IPv6)", spec);
	return -EINVAL;
}

int listen_adopt(struct listeners *ls, int fd, const char *label, char *err,
		 size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char name[128], addr[INET6_ADDRSTRLEN];
	int ret, flags;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		ret = -errno;
		snprintf(err, errlen, "passed socket %d (%s): %s", fd, label, strerror(-ret));
		return ret;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK)) {
		ret = -errno;
		snprintf(err, errlen, "passed socket %d (%s): %s", fd, label, strerror(-ret));
		return ret;
	}
	if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *su = (const struct sockaddr_un *)&ss;

		snprintf(name, sizeof(name), "%.100s (%s)", su->sun_path, label);
		ret = add(ls, fd, false, su->sun_path, false, name);
	} else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
		const void *a = ss.ss_family == AF_INET ?
			(const void *)&((struct sockaddr_in *)&ss)->sin_addr :
			(const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		unsigned int port = ntohs(ss.ss_family == AF_INET ?
					  ((struct sockaddr_in *)&ss)->sin_port :
					  ((struct sockaddr_in6 *)&ss)->sin6_port);

		inet_ntop(ss.ss_family, a, addr, sizeof(addr));
		snprintf(name, sizeof(name), ss.ss_family == AF_INET ? "tcp %s:%u (%s)" :
			 "tcp [%s]:%u (%s)", addr, port, label);
		ret = add(ls, fd, true, NULL, false, name);
	} else {
		snprintf(err, errlen, "passed socket %d (%s) is neither unix nor TCP", fd, label);
		return -EAFNOSUPPORT;
	}
	if (ret)
		snprintf(err, errlen, "out of memory");
	return ret;
}

int listen_accept(const struct listener *l, char *peer, size_t peerlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, one = 1, sndbuf = SEND_BUFFER;

	fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	/*
	 * Room for a few whole 1 MiB read replies: with the default ~200 KiB
	 * each one goes out in five sends, each waiting for the client to
	 * drain the socket and wake us again.  The kernel caps it at
	 * net.core.wmem_max; failing is harmless.
	 */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (!l->tcp) {
		snprintf(peer, peerlen, "unix %s", l->path);
		return fd;
	}
	/* Replies are whole messages: do not hold them back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		char a[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(peer, peerlen, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(peer, peerlen, "%s:%u", a, ntohs(s4->sin_port));
	}
	return fd;
}

void listen_close_all(struct listeners *ls)
{
	unsigned int i;

	for (i = 0; i < ls->n; i++) {
		close(ls->l[i].fd);
		if (ls->l[i].owned)
			unlink(ls->l[i].path);
		free(ls->l[i].path);
	}
	free(ls->l);
	ls->l = NULL;
	ls->n = 0;
}
