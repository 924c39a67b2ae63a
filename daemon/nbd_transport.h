/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_DAEMON_NBD_TRANSPORT_H
#define BLOCKD_DAEMON_NBD_TRANSPORT_H

#include <sys/types.h>
#include <sys/uio.h>

/*
 * How an NBD connection's bytes travel.  Every byte in and out of a
 * connection goes through these operations, never through the socket
 * itself, so another transport (TLS) can be put underneath without
 * touching the handshake or command handling.  All of them are
 * non-blocking; readiness comes from polling @fd (input) and @wfd (output).
 */

struct nbd_transport;

struct nbd_transport_ops {
	/* Receive up to @len bytes: >0 bytes, 0 at EOF, or -errno. */
	ssize_t (*recv)(struct nbd_transport *t, void *buf, size_t len);
	/* Receive into @iov: as recv. */
	ssize_t (*recvv)(struct nbd_transport *t, const struct iovec *iov, int n);
	/* Send from @iov: bytes sent (maybe fewer), or -errno. */
	ssize_t (*sendv)(struct nbd_transport *t, const struct iovec *iov, int n);
	/* Stop input (SHUT_RD) or both directions (SHUT_RDWR); wakes pollers. */
	void (*shutdown)(struct nbd_transport *t, int how);
	/* Release everything, the descriptors too. */
	void (*close)(struct nbd_transport *t);
};

struct nbd_transport {
	const struct nbd_transport_ops *ops;
	int fd;				/* poll this for input */
	int wfd;			/* ... and this for output */
	void *priv;			/* the transport's own */
};

/**
 * nbd_transport_socket_init - a plain-socket transport over @fd
 * @t: the transport to fill
 * @fd: a connected, non-blocking stream socket; @t owns it from now on
 *
 * Output is polled on a dup of @fd, so that input and output each have a
 * poll registration of their own.
 *
 * Return: 0, or -errno (@fd is not closed: the caller still owns it).
 */
int nbd_transport_socket_init(struct nbd_transport *t, int fd);

/**
 * nbd_transport_recv - receive up to @len bytes
 * @t: the transport
 * @buf: where they go
 * @len: room in @buf
 *
 * Return: bytes received, 0 at EOF, or -errno (-EAGAIN: nothing there).
 */
static inline ssize_t nbd_transport_recv(struct nbd_transport *t, void *buf,
					 size_t len)
{
	return t->ops->recv(t, buf, len);
}

/**
 * nbd_transport_recvv - receive into an iovec array
 * @t: the transport
 * @iov: where the bytes go, in order
 * @n: entries in @iov
 *
 * Return: as nbd_transport_recv().
 */
static inline ssize_t nbd_transport_recvv(struct nbd_transport *t,
					  const struct iovec *iov, int n)
{
	return t->ops->recvv(t, iov, n);
}

/**
 * nbd_transport_sendv - send from an iovec array
 * @t: the transport
 * @iov: the bytes, in order
 * @n: entries in @iov
 *
 * Return: bytes sent, possibly fewer than asked, or -errno (-EAGAIN: the
 * transport is full; poll @t->wfd for POLLOUT).
 */
static inline ssize_t nbd_transport_sendv(struct nbd_transport *t,
					  const struct iovec *iov, int n)
{
	return t->ops->sendv(t, iov, n);
}

/**
 * nbd_transport_shutdown - stop one or both directions
 * @t: the transport
 * @how: SHUT_RD or SHUT_RDWR
 *
 * Completes any poll armed on the transport, so the connection can go.
 */
static inline void nbd_transport_shutdown(struct nbd_transport *t, int how)
{
	t->ops->shutdown(t, how);
}

/**
 * nbd_transport_close - release the transport and its descriptors
 * @t: the transport; its fields are invalid afterwards
 */
static inline void nbd_transport_close(struct nbd_transport *t)
{
	t->ops->close(t);
}

#endif
