/* h2 listener: accept → TLS handshake (with a deadline) → zt_h2_conn. Each accepted
 * connection has one entry on the listener's list from accept to its h2 on_close (or a
 * failed handshake); entries are the only owners of the sockets they hold. Freeing the
 * listener detaches serving entries, which then free themselves at their on_close. */
#include "protocol/h2_listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("h2listen");

struct entry {
	struct zt_h2_listener *l;
	LIST_ENTRY(entry) link;
	struct zt_sock sock;     /* until the handshake completes */
	struct zt_timer timer;   /* handshake deadline */
	struct zt_h2_conn *conn; /* once serving */
};

struct zt_h2_listener {
	struct zt_loop *loop;
	struct zt_io io;
	struct zt_sockaddr addr;
	struct zt_h2_listener_opts o;
	struct zt_h2_conn_cbs chained;
	LIST_HEAD(, entry) entries;
	size_t n;
	bool closing;
};

static void unlink_entry(struct entry *e)
{
	struct zt_h2_listener *l = e->l;

	LIST_REMOVE(e, link);
	l->n--;
	free(e);
}

static void on_request(struct zt_h2_conn *c, struct zt_h2_stream *st, const struct zt_h2_header *h,
                       size_t n, bool end, void *arg)
{
	struct entry *e = arg;

	if (e->l && e->l->o.cbs->on_request)
		e->l->o.cbs->on_request(c, st, h, n, end, e->l->o.arg);
	else
		zt_h2_stream_reset(st, 0x7 /* REFUSED_STREAM */);
}

static void on_goaway(struct zt_h2_conn *c, uint32_t code, void *arg)
{
	struct entry *e = arg;

	if (e->l && e->l->o.cbs->on_goaway)
		e->l->o.cbs->on_goaway(c, code, e->l->o.arg);
}

static void on_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	struct entry *e = arg;

	if (!e->l) {
		free(e); /* the listener is gone */
		return;
	}
	if (e->l->o.cbs->on_close)
		e->l->o.cbs->on_close(c, reason, e->l->o.arg);
	unlink_entry(e);
}

static void handshake_failed(struct entry *e, const char *why)
{
	zt_timer_stop(&e->timer);
	zt_sock_close(&e->sock);
	zt_debug("handshake failed: %s", why);
	unlink_entry(e);
}

static void on_timeout(struct zt_timer *t, void *arg)
{
	(void)t;
	handshake_failed(arg, "timed out");
}

static void on_handshake(struct zt_sock *s, int err, void *arg)
{
	struct entry *e = arg;
	struct zt_h2_listener *l = e->l;

	if (err < 0) {
		char why[320];
		snprintf(why, sizeof(why), "%s (%s)", zt_strerror(err), zt_sock_error(s));
		handshake_failed(e, why);
		return;
	}
	zt_timer_stop(&e->timer);
	if (zt_h2_conn_new(&e->conn, l->loop, &e->sock, true, &l->o.settings, &l->chained, e) < 0) {
		unlink_entry(e); /* the socket was closed by zt_h2_conn_new */
		return;
	}
}

static void on_accept(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_h2_listener *l = arg;

	(void)events;
	for (int burst = 0; burst < 64; burst++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct zt_tls_conn *tc;
		struct entry *e;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				zt_warn("accept: %s", strerror(errno));
			return;
		}
		if (l->n >= l->o.max_conns) {
			zt_warn("refusing connection: %zu connections open", l->n);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (zt_tls_conn_server_new(&tc, l->o.tls, fd) < 0) {
			close(fd);
			continue;
		}
		e = xcalloc(1, sizeof(*e));
		e->l = l;
		if (zt_sock_start(&e->sock, l->loop, fd, tc, NULL, NULL) < 0) {
			zt_tls_conn_free(tc);
			close(fd);
			free(e);
			continue;
		}
		LIST_INSERT_HEAD(&l->entries, e, link);
		l->n++;
		zt_timer_start(l->loop, &e->timer, l->o.handshake_timeout_ms, on_timeout, e);
		zt_sock_handshake(&e->sock, on_handshake, e);
	}
}

int zt_h2_listener_new(struct zt_h2_listener **out, struct zt_loop *loop, const char *addr,
                       const struct zt_h2_listener_opts *o, char *err, size_t errlen)
{
	struct sockaddr_storage ss, bound;
	socklen_t sl, bl = sizeof(bound);
	struct zt_h2_listener *l;
	int fd, one = 1, rc;

	*out = NULL;
	l = xcalloc(1, sizeof(*l));
	if (zt_addr_parse(&l->addr, addr, strlen(addr), ZT_ADDR_PORT0_OK) < 0) {
		free(l);
		return zt_errf(ZT_E_PARSE, err, errlen, "listen address %s: expected ip:port", addr);
	}
	sl = zt_addr_to_sockaddr(&l->addr, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &bl) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		free(l);
		return zt_errf(rc, err, errlen, "listen on %s: %s", addr, strerror(-rc));
	}
	zt_addr_from_sockaddr(&l->addr, (struct sockaddr *)&bound, bl);
	l->loop = loop;
	l->o = *o;
	if (!l->o.settings.max_frame)
		zt_h2_settings_default(&l->o.settings, true);
	if (!l->o.handshake_timeout_ms)
		l->o.handshake_timeout_ms = 10000;
	if (!l->o.max_conns)
		l->o.max_conns = 4096;
	l->chained = (struct zt_h2_conn_cbs){on_request, on_goaway, on_close};
	zt_io_start(loop, &l->io, fd, ZT_IO_READ, on_accept, l);
	*out = l;
	return 0;
}

const struct zt_sockaddr *zt_h2_listener_addr(const struct zt_h2_listener *l)
{
	return &l->addr;
}

size_t zt_h2_listener_conns(const struct zt_h2_listener *l)
{
	return l->n;
}

static void stop_accepting(struct zt_h2_listener *l)
{
	if (l->io.fd >= 0) {
		int fd = l->io.fd;
		zt_io_stop(&l->io);
		close(fd);
		l->io.fd = -1;
	}
}

void zt_h2_listener_shutdown(struct zt_h2_listener *l)
{
	stop_accepting(l);
	struct entry *e;
	LIST_FOREACH(e, &l->entries, link)
		if (e->conn)
			zt_h2_conn_shutdown(e->conn);
}

void zt_h2_listener_free(struct zt_h2_listener *l)
{
	if (!l)
		return;
	stop_accepting(l);
	while (!LIST_EMPTY(&l->entries)) {
		struct entry *e = LIST_FIRST(&l->entries);
		LIST_REMOVE(e, link);
		if (e->conn) {
			/* Its on_close comes from a later loop iteration: detached entries free
			 * themselves there without calling back into the caller. */
			e->l = NULL;
			zt_h2_conn_close(e->conn, "listener closed");
		} else {
			zt_timer_stop(&e->timer);
			zt_sock_close(&e->sock);
			free(e);
		}
	}
	free(l);
}
