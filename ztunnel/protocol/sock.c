/* Invariant: the epoll interest is always the union of what the owner's wanted directions
 * need right now (TLS may need the opposite direction), recomputed after every call that can
 * change it, so no readiness is ever waited for in vain. */
#include "protocol/sock.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/tls.h"
#include "runtime/err.h"

static void update_interest(struct zt_sock *s)
{
	unsigned ev = 0;

	if (s->fd < 0)
		return;
	if (s->hs_cb) {
		/* Each step runs from the loop: the first on write readiness, which a connected
		 * socket has at once; a plain socket is done right there. */
		ev = s->tls ? zt_tls_conn_want(s->tls) : 0;
		if (!ev)
			ev = ZT_IO_WRITE;
	} else {
		if (s->want & ZT_IO_READ)
			ev |= s->tls_rd_need;
		if (s->want & ZT_IO_WRITE)
			ev |= s->tls_wr_need;
	}
	zt_io_set(&s->io, ev);
}

static void finish_handshake(struct zt_sock *s, int err)
{
	zt_sock_done_cb cb = s->hs_cb;

	s->hs_cb = NULL;
	s->check_buffered = err == 0 && s->tls;
	update_interest(s);
	cb(s, err, s->hs_arg);
}

static void step_handshake(struct zt_sock *s)
{
	int err = s->tls ? zt_tls_conn_handshake(s->tls) : 0;

	if (err == -EAGAIN) {
		update_interest(s);
		return;
	}
	finish_handshake(s, err);
}

static void on_io(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_sock *s = arg;
	unsigned user = 0;

	(void)io;
	if (s->hs_cb) {
		step_handshake(s);
		return;
	}
	if ((s->want & ZT_IO_READ) && (events & (s->tls_rd_need | ZT_IO_ERROR)))
		user |= ZT_IO_READ;
	if ((s->want & ZT_IO_WRITE) && (events & (s->tls_wr_need | ZT_IO_ERROR)))
		user |= ZT_IO_WRITE;
	if (user)
		s->cb(s, user, s->arg);
}

int zt_sock_start(struct zt_sock *s, struct zt_loop *loop, int fd, struct zt_tls_conn *tls,
                  zt_sock_cb cb, void *arg)
{
	int err;

	*s = (struct zt_sock){.loop = loop,
	                      .fd = fd,
	                      .tls = tls,
	                      .cb = cb,
	                      .arg = arg,
	                      .tls_rd_need = ZT_IO_READ,
	                      .tls_wr_need = ZT_IO_WRITE};
	err = zt_io_start(loop, &s->io, fd, 0, on_io, s);
	if (err < 0) {
		s->fd = -1;
		s->tls = NULL;
	}
	return err;
}

void zt_sock_set_cb(struct zt_sock *s, zt_sock_cb cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
}

void zt_sock_move(struct zt_sock *dst, struct zt_sock *src, zt_sock_cb cb, void *arg)
{
	unsigned want = src->want;

	/* epoll holds the watcher's address: re-register it at the new place. */
	zt_io_stop(&src->io);
	zt_defer_stop(&src->buffered);
	*dst = *src;
	dst->buffered = (struct zt_defer){0};
	dst->cb = cb;
	dst->arg = arg;
	dst->want = 0;
	if (zt_io_start(dst->loop, &dst->io, dst->fd, 0, on_io, dst) < 0)
		abort(); /* the fd was registered a moment ago: only ENOMEM can fail */
	zt_sock_want(dst, want);
	src->fd = -1;
	src->tls = NULL;
}

static void on_buffered(struct zt_defer *d, void *arg)
{
	struct zt_sock *s = arg;

	(void)d;
	if (s->fd >= 0 && !s->hs_cb && (s->want & ZT_IO_READ))
		s->cb(s, ZT_IO_READ, s->arg);
}

void zt_sock_want(struct zt_sock *s, unsigned events)
{
	s->want = events & (ZT_IO_READ | ZT_IO_WRITE);
	update_interest(s);
	/* Only once, after the handshake: later reads run until -EAGAIN, after which what TLS
	 * holds is at most part of a record, which readiness does announce the rest of. */
	if ((s->want & ZT_IO_READ) && s->check_buffered && !s->hs_cb) {
		s->check_buffered = false;
		if (zt_sock_pending(s))
			zt_defer_start(s->loop, &s->buffered, on_buffered, s);
	}
}

void zt_sock_handshake(struct zt_sock *s, zt_sock_done_cb done, void *arg)
{
	s->hs_cb = done;
	s->hs_arg = arg;
	update_interest(s);
}

/* After a TLS read or write returned n: a blocked call waits for what TLS asked for (maybe
 * the opposite direction), anything else for its own direction again. */
static void track_need(struct zt_sock *s, unsigned *need, unsigned own, ssize_t n)
{
	unsigned want = n == -EAGAIN ? zt_tls_conn_want(s->tls) : 0;
	unsigned next = want ? want : own;

	if (*need != next) {
		*need = next;
		update_interest(s);
	}
}

static ssize_t ret_errno(void)
{
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

ssize_t zt_sock_read(struct zt_sock *s, void *buf, size_t len)
{
	ssize_t n;

	if (!s->tls) {
		do
			n = read(s->fd, buf, len);
		while (n < 0 && errno == EINTR);
		return n < 0 ? ret_errno() : n;
	}
	n = zt_tls_conn_read(s->tls, buf, len);
	track_need(s, &s->tls_rd_need, ZT_IO_READ, n);
	return n;
}

ssize_t zt_sock_write(struct zt_sock *s, const void *buf, size_t len)
{
	ssize_t n;

	if (!s->tls) {
		do
			n = send(s->fd, buf, len, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		return n < 0 ? ret_errno() : n;
	}
	n = zt_tls_conn_write(s->tls, buf, len);
	track_need(s, &s->tls_wr_need, ZT_IO_WRITE, n);
	return n;
}

int zt_sock_shutdown_write(struct zt_sock *s)
{
	if (s->tls) {
		int err = zt_tls_conn_shutdown(s->tls);
		if (err < 0)
			return err;
	}
	if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
		return -errno;
	return 0;
}

bool zt_sock_pending(const struct zt_sock *s)
{
	return s->tls && SSL_has_pending(zt_tls_conn_ssl(s->tls));
}

const char *zt_sock_error(const struct zt_sock *s)
{
	return s->tls ? zt_tls_conn_error(s->tls) : "";
}

void zt_sock_close(struct zt_sock *s)
{
	if (s->fd < 0)
		return;
	zt_io_stop(&s->io);
	zt_defer_stop(&s->buffered);
	zt_tls_conn_free(s->tls);
	s->tls = NULL;
	close(s->fd);
	s->fd = -1;
	s->hs_cb = NULL;
}
