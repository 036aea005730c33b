/* Server side: listeners accept non-blocking connections; each connection is a small state
 * machine over one bounded output buffer. Echo and banner buffer what they read and stop
 * reading while the buffer is full (backpressure); sink counts and discards. After the
 * client's EOF and a flushed buffer the write side is shut down and the connection closes.
 * Invariant: a connection is closed exactly once, and freed from a defer, never inside its
 * own callback. */
#include "server.h"
#include "http.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("server");

#define CONN_BUF     (256 * 1024) /* most bytes buffered per connection */
#define READ_CHUNK   (64 * 1024)
#define ACCEPT_BURST 64
#define ACCEPT_PAUSE 100 /* ms without accepting after running out of file descriptors */

struct server;

struct listener {
	struct server *s;
	int fd;
	struct zt_io io;
	struct zt_timer pause;
	char addr[ZT_ADDR_STRLEN];
};

struct conn {
	struct server *s;
	LIST_ENTRY(conn) link;
	int fd;
	struct zt_io io;
	struct zt_defer reap;
	struct zt_buf out; /* bytes to write: echo, banner, the sink's line */
	uint64_t in_bytes, out_bytes;
	bool rd_eof, wr_shut, closed;
	char peer[ZT_ADDR_STRLEN];
};

struct server {
	const struct sw_serve_opts *o;
	struct zt_loop *loop;
	struct listener ls[SW_MAX_LISTEN];
	size_t nls;
	LIST_HEAD(, conn) conns;
	size_t nconns;
	char banner[SW_MAX_BANNER + 300];
	struct zt_signal sigterm, sigint;
};

static uint8_t scratch[READ_CHUNK]; /* sink reads land here */

/* ---- connections ------------------------------------------------------------------------- */

static void on_reap(struct zt_defer *d, void *arg)
{
	struct conn *c = arg;

	(void)d;
	zt_buf_clear(&c->out);
	free(c);
}

static void conn_close(struct conn *c, const char *reason)
{
	struct server *s = c->s;

	if (c->closed)
		return;
	c->closed = true;
	zt_debug("closed %s: %s, in=%llu out=%llu", c->peer, reason,
	         (unsigned long long)c->in_bytes, (unsigned long long)c->out_bytes);
	zt_io_stop(&c->io);
	close(c->fd);
	c->fd = -1;
	LIST_REMOVE(c, link);
	s->nconns--;
	zt_defer_start(s->loop, &c->reap, on_reap, c);
}

/* Reads until the socket is drained or the buffer is full. Returns false when c closed. */
static bool conn_read(struct conn *c)
{
	bool sink = c->s->o->mode == SW_MODE_SINK;

	while (!c->rd_eof) {
		size_t room = sink ? sizeof(scratch) : zt_buf_room(&c->out);
		uint8_t *p = scratch;
		ssize_t n;

		if (room == 0)
			return true;
		if (room > READ_CHUNK)
			room = READ_CHUNK;
		if (!sink && zt_buf_reserve(&c->out, room, &p) < 0)
			abort(); /* room came from the buffer itself */
		n = recv(c->fd, p, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0) {
			conn_close(c, strerror(errno));
			return false;
		}
		if (n == 0) {
			c->rd_eof = true;
			if (sink && zt_buf_appendf(&c->out, "received %llu\n",
			                           (unsigned long long)c->in_bytes) < 0)
				abort(); /* a short line into an empty buffer */
			return true;
		}
		c->in_bytes += (uint64_t)n;
		if (!sink)
			zt_buf_commit(&c->out, (size_t)n);
	}
	return true;
}

/* Writes what is buffered. Returns false when c closed. */
static bool conn_flush(struct conn *c)
{
	while (zt_buf_len(&c->out) > 0) {
		ssize_t n = send(c->fd, zt_buf_data(&c->out), zt_buf_len(&c->out), MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0) {
			conn_close(c, strerror(errno));
			return false;
		}
		c->out_bytes += (uint64_t)n;
		zt_buf_consume(&c->out, (size_t)n);
	}
	return true;
}

/* Moves bytes both ways, half-closes after the client did, and sets what to wait for. */
static void conn_pump(struct conn *c)
{
	unsigned want = 0;

	if (!conn_read(c) || !conn_flush(c))
		return;
	if (c->rd_eof && zt_buf_len(&c->out) == 0 && !c->wr_shut) {
		c->wr_shut = true;
		if (shutdown(c->fd, SHUT_WR) < 0) {
			conn_close(c, strerror(errno));
			return;
		}
	}
	if (c->rd_eof && c->wr_shut) {
		conn_close(c, "done");
		return;
	}
	if (!c->rd_eof && (c->s->o->mode == SW_MODE_SINK || zt_buf_room(&c->out) > 0))
		want |= ZT_IO_READ;
	if (zt_buf_len(&c->out) > 0)
		want |= ZT_IO_WRITE;
	zt_io_set(&c->io, want);
}

static void on_conn(struct zt_io *io, unsigned events, void *arg)
{
	(void)io;
	(void)events;
	conn_pump(arg);
}

static void conn_new(struct server *s, struct listener *l, int fd,
                     const struct sockaddr_storage *ss, socklen_t sslen)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	struct zt_sockaddr peer;
	int one = 1, err;

	c->s = s;
	c->fd = fd;
	/* Echo each read at once: request/response latency must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	zt_buf_init(&c->out, CONN_BUF);
	if (zt_addr_from_sockaddr(&peer, (const struct sockaddr *)ss, sslen) < 0 ||
	    zt_addr_format(&peer, c->peer, sizeof(c->peer)) < 0)
		snprintf(c->peer, sizeof(c->peer), "?");
	err = zt_io_start(s->loop, &c->io, fd, ZT_IO_READ, on_conn, c);
	if (err < 0) {
		zt_warn("accept from %s: %s", c->peer, zt_strerror(err));
		close(fd);
		zt_buf_clear(&c->out);
		free(c);
		return;
	}
	LIST_INSERT_HEAD(&s->conns, c, link);
	s->nconns++;
	zt_debug("accepted %s on %s", c->peer, l->addr);
	if (s->o->mode == SW_MODE_BANNER) {
		if (zt_buf_appendf(&c->out, "%s\n", s->banner) < 0)
			abort(); /* the banner is far below the buffer limit */
		conn_pump(c);
	}
}

/* ---- listeners --------------------------------------------------------------------------- */

static void on_accept(struct zt_io *io, unsigned events, void *arg);

static void on_pause_end(struct zt_timer *t, void *arg)
{
	struct listener *l = arg;

	(void)t;
	zt_io_set(&l->io, ZT_IO_READ);
}

static void on_accept(struct zt_io *io, unsigned events, void *arg)
{
	struct listener *l = arg;

	(void)io;
	(void)events;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Level-triggered: waiting is the only way not to spin. */
				zt_warn("accept on %s: %s; pausing", l->addr, strerror(errno));
				zt_io_set(&l->io, 0);
				zt_timer_start(l->s->loop, &l->pause, ACCEPT_PAUSE, on_pause_end,
				               l);
				return;
			}
			zt_debug("accept on %s: %s", l->addr, strerror(errno));
			continue; /* ECONNABORTED and the like concern that one connection */
		}
		if (l->s->o->mode == SW_MODE_HTTP)
			sw_http_conn_start(l->s->loop, fd, &ss, sslen, l->s->banner);
		else
			conn_new(l->s, l, fd, &ss, sslen);
	}
}

static int listener_open(struct server *s, const struct sw_listen *want, struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sslen = zt_addr_to_sockaddr(&want->addr, &ss);
	struct zt_sockaddr bound;
	int one = 1, v6only = want->v6only, err;

	l->s = s;
	l->fd = socket(want->addr.ip.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (want->addr.ip.family == AF_INET6 &&
	     setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) ||
	    bind(l->fd, (struct sockaddr *)&ss, sslen) < 0 || listen(l->fd, SOMAXCONN) < 0)
		return -errno;
	sslen = sizeof(ss);
	if (getsockname(l->fd, (struct sockaddr *)&ss, &sslen) < 0)
		return -errno;
	if ((err = zt_addr_from_sockaddr(&bound, (struct sockaddr *)&ss, sslen)) < 0 ||
	    (err = zt_addr_format(&bound, l->addr, sizeof(l->addr))) < 0)
		return err;
	return zt_io_start(s->loop, &l->io, l->fd, ZT_IO_READ, on_accept, l);
}

/* ---- running ----------------------------------------------------------------------------- */

static void on_signal(struct zt_signal *sig, int signo, void *arg)
{
	struct server *s = arg;

	(void)sig;
	zt_info("exiting on %s with %zu connections open", strsignal(signo), s->nconns);
	zt_loop_stop(s->loop);
}

static void make_banner(struct server *s)
{
	char host[256] = "";
	const char *name = s->o->name;

	if (s->o->banner) {
		snprintf(s->banner, sizeof(s->banner), "%s", s->o->banner);
		return;
	}
	if (!name) {
		name = "sim-workload";
		if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
			name = host;
	}
	snprintf(s->banner, sizeof(s->banner), "hello from %s", name);
}

int sw_server_run(const struct sw_serve_opts *o)
{
	struct server s = {.o = o};
	int err;

	signal(SIGPIPE, SIG_IGN);
	make_banner(&s);
	err = zt_loop_new(&s.loop);
	if (err < 0) {
		zt_error("event loop: %s", zt_strerror(err));
		return err;
	}
	for (size_t i = 0; i < o->nlisten; i++, s.nls++) {
		char want[ZT_ADDR_STRLEN];

		s.ls[i].fd = -1;
		err = listener_open(&s, &o->listen[i], &s.ls[i]);
		if (err < 0) {
			zt_addr_format(&o->listen[i].addr, want, sizeof(want));
			zt_error("listen on %s: %s", want, zt_strerror(err));
			s.nls++;
			goto out;
		}
		printf("listening %s\n", s.ls[i].addr);
	}
	fflush(stdout);
	if ((err = zt_signal_start(s.loop, &s.sigterm, SIGTERM, on_signal, &s)) < 0 ||
	    (err = zt_signal_start(s.loop, &s.sigint, SIGINT, on_signal, &s)) < 0) {
		zt_error("signals: %s", zt_strerror(err));
		goto out;
	}
	err = zt_loop_run(s.loop);
	if (err < 0)
		zt_error("event loop: %s", zt_strerror(err));
out:
	zt_signal_stop(&s.sigterm);
	zt_signal_stop(&s.sigint);
	for (size_t i = 0; i < s.nls; i++) {
		zt_io_stop(&s.ls[i].io);
		zt_timer_stop(&s.ls[i].pause);
		if (s.ls[i].fd >= 0)
			close(s.ls[i].fd);
	}
	while (!LIST_EMPTY(&s.conns))
		conn_close(LIST_FIRST(&s.conns), "exiting");
	sw_http_close_all();
	/* Runs the defers that free the closed connections. */
	zt_loop_run_once(s.loop, 0);
	zt_loop_free(s.loop);
	return err;
}
