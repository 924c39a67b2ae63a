/* SPDX-License-Identifier: MIT */
/*
 * The plain-socket NBD transport: the bytes go straight to the kernel.
 */
#include <config.h>

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/nbd_transport.h"

static ssize_t sock_result(ssize_t n)
{
	if (n >= 0)
		return n;
	/* One spelling of "nothing now" for every caller. */
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static ssize_t sock_recv(struct nbd_transport *t, void *buf, size_t len)
{
	return sock_result(recv(t->fd, buf, len, MSG_DONTWAIT));
}

static ssize_t sock_recvv(struct nbd_transport *t, const struct iovec *iov, int n)
{
	return sock_result(readv(t->fd, iov, n));
}

static ssize_t sock_sendv(struct nbd_transport *t, const struct iovec *iov, int n)
{
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = (size_t)n,
	};

	return sock_result(sendmsg(t->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT));
}

static void sock_shutdown(struct nbd_transport *t, int how)
{
	shutdown(t->fd, how);
}

static void sock_close(struct nbd_transport *t)
{
	close(t->wfd);
	close(t->fd);
	t->fd = t->wfd = -1;
}

static const struct nbd_transport_ops socket_ops = {
	.recv = sock_recv,
	.recvv = sock_recvv,
	.sendv = sock_sendv,
	.shutdown = sock_shutdown,
	.close = sock_close,
};

int nbd_transport_socket_init(struct nbd_transport *t, int fd)
{
	int wfd = dup(fd);

	if (wfd < 0)
		return -errno;
	t->ops = &socket_ops;
	t->fd = fd;
	t->wfd = wfd;
	t->priv = NULL;
	return 0;
}
