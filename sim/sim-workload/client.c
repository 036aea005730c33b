/* Client connections. Each runs CONNECTING -> (BANNER) -> RUN and ends exactly once, as ok
 * or with one error text. In RUN it writes its pattern stream and reads the reply at the same
 * time (an echo server stops reading when nobody reads its echo). Bulk mode sends the whole
 * stream then half-closes; request mode sends one --size request at a time and starts the
 * next when its echo is complete. Invariant: rcvd <= sent, every received byte was checked
 * against the pattern, and a connection is freed from a defer, never in its own callback. */
#include "client.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"
#include "runtime/buf.h"
#include "runtime/duration.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("client");

#define CHUNK    (64 * 1024)
#define SINK_MAX 64 /* longest "received N" line, newline excluded */

enum state { CONNECTING, BANNER, RUN };

struct client;

struct conn {
	struct client *c;
	LIST_ENTRY(conn) link;
	uint32_t idx;
	int fd;
	enum state st;
	bool done;
	struct zt_io io;
	struct zt_timer timer;
	struct zt_defer reap;
	uint64_t last_ms; /* loop time of the last progress */
	uint64_t sent, rcvd;
	bool wr_shut;
	uint64_t req_t0_ns; /* when the current request's first byte left */
	struct zt_buf banner;
	bool sink;
	char line[SINK_MAX + 1];
	size_t line_len;
	bool line_done;
};

struct client {
	const struct sw_client_opts *o;
	struct sw_report *r;
	struct zt_loop *loop;
	LIST_HEAD(, conn) conns;
	uint32_t started, reaped; /* started - reaped connections are live */
	uint64_t total;           /* stream bytes per connection */
	uint64_t t0_ns;
	bool interrupted;
	struct zt_signal sigterm, sigint;
};

static uint8_t scratch[CHUNK];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- ending ------------------------------------------------------------------------------ */

static void launch(struct client *c);

static void on_reap(struct zt_defer *d, void *arg)
{
	struct conn *k = arg;
	struct client *c = k->c;

	(void)d;
	zt_buf_clear(&k->banner);
	free(k);
	c->reaped++;
	if (c->reaped == c->started && (c->started == c->o->connections || c->interrupted))
		zt_loop_stop(c->loop);
	else
		launch(c);
}

static void finish(struct conn *k)
{
	struct client *c = k->c;

	k->done = true;
	zt_io_stop(&k->io);
	zt_timer_stop(&k->timer);
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	LIST_REMOVE(k, link);
	c->r->duration_us = (now_ns() - c->t0_ns) / 1000;
	zt_defer_start(c->loop, &k->reap, on_reap, k);
}

static void succeed(struct conn *k)
{
	if (k->done)
		return;
	zt_debug("conn %u: ok, sent %llu, received %llu", k->idx, (unsigned long long)k->sent,
	         (unsigned long long)k->rcvd);
	k->c->r->ok++;
	finish(k);
}

static void fail(struct conn *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct conn *k, const char *fmt, ...)
{
	char text[SW_REPORT_ERRLEN];
	int n;
	va_list ap;

	if (k->done)
		return;
	n = snprintf(text, sizeof(text), "conn %u: ", k->idx);
	va_start(ap, fmt);
	vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
	va_end(ap);
	zt_debug("%s", text);
	sw_report_error(k->c->r, text);
	k->c->r->errors++;
	finish(k);
}

/* ---- reading ----------------------------------------------------------------------------- */

static void progress(struct conn *k)
{
	k->last_ms = zt_loop_now(k->c->loop);
}

/* Takes bytes of the banner line; returns how many (the rest is reply), or -1 when k ended. */
static ssize_t take_banner(struct conn *k, const uint8_t *p, size_t len)
{
	struct sw_report *r = k->c->r;
	const uint8_t *nl = memchr(p, '\n', len);
	size_t take = nl ? (size_t)(nl - p) : len;
	size_t blen;

	if (zt_buf_append(&k->banner, p, take) < 0) {
		fail(k, "banner longer than %d bytes", SW_BANNER_MAX);
		return -1;
	}
	if (!nl)
		return (ssize_t)len;
	blen = zt_buf_len(&k->banner);
	if (blen > 0 && zt_buf_data(&k->banner)[blen - 1] == '\r')
		blen--;
	if (!r->has_banner) {
		r->has_banner = true;
		if (blen > 0)
			memcpy(r->banner, zt_buf_data(&k->banner), blen);
		r->banner[blen] = '\0';
	}
	zt_buf_clear(&k->banner);
	k->st = RUN;
	return (ssize_t)(take + 1);
}

/* Takes the sink's "received N\n" answer. Returns false when k ended. */
static bool take_sink_line(struct conn *k, const uint8_t *p, size_t len)
{
	const uint8_t *nl = memchr(p, '\n', len);
	size_t take = nl ? (size_t)(nl - p) : len;
	unsigned long long n;
	char *end;

	if (k->line_done || (nl && nl + 1 != p + len)) {
		fail(k, "bytes after the sink's \"received N\" line");
		return false;
	}
	if (k->line_len + take > SINK_MAX) {
		fail(k, "reply is neither the echo nor a \"received N\" line");
		return false;
	}
	memcpy(k->line + k->line_len, p, take);
	k->line_len += take;
	if (!nl)
		return true;
	k->line[k->line_len] = '\0';
	k->line_done = true;
	errno = 0;
	if (strncmp(k->line, "received ", 9) != 0 || k->line[9] < '0' || k->line[9] > '9' ||
	    (n = strtoull(k->line + 9, &end, 10), errno != 0 || *end != '\0')) {
		fail(k, "reply is neither the echo nor a \"received N\" line");
		return false;
	}
	if (!k->wr_shut || n != k->sent) {
		fail(k, "sink received %llu bytes, %llu were sent", n, (unsigned long long)k->sent);
		return false;
	}
	k->c->r->has_sink = true;
	k->c->r->sink_received += n;
	return true;
}

/* Checks echoed bytes against what was sent and completes requests. Returns false when k
 * ended. */
static bool take_reply(struct conn *k, const uint8_t *p, size_t len)
{
	const struct sw_client_opts *o = k->c->o;
	uint64_t old = k->rcvd, avail;
	size_t bad;

	if (!k->sink && k->rcvd == 0 && p[0] == 'r')
		k->sink = true; /* no pattern stream starts with 'r' */
	if (k->sink)
		return take_sink_line(k, p, len);
	avail = k->sent - k->rcvd;
	bad = sw_pattern_check(k->idx, k->rcvd, p, len < avail ? len : (size_t)avail);
	if (bad < len && bad < avail) {
		fail(k, "echo differs from what was sent at byte %llu%s",
		     (unsigned long long)(k->rcvd + bad),
		     k->rcvd + bad == 0 && !o->expect_banner
		             ? " (a server that speaks first needs --expect-banner)"
		             : "");
		return false;
	}
	if (len > avail) {
		fail(k, "received %llu bytes, only %llu were sent",
		     (unsigned long long)(k->rcvd + len), (unsigned long long)k->sent);
		return false;
	}
	k->rcvd += len;
	/* At most one request completes: nothing past the current one was sent. */
	if (o->requests > 0 && k->rcvd / o->size > old / o->size) {
		sw_report_latency(k->c->r, now_ns() - k->req_t0_ns);
		k->c->r->requests++;
	}
	return true;
}

static void on_eof(struct conn *k)
{
	const struct sw_client_opts *o = k->c->o;

	if (k->st == BANNER)
		fail(k, "connection closed before the banner line");
	else if (k->sink && k->line_done)
		succeed(k);
	else if (k->sink)
		fail(k, "connection closed within the sink's \"received N\" line");
	else if (k->wr_shut && k->rcvd == k->c->total)
		succeed(k);
	else if (o->requests > 0)
		fail(k, "connection closed by the server during request %llu of %llu",
		     (unsigned long long)(k->rcvd / o->size + 1), (unsigned long long)o->requests);
	else
		fail(k, "connection closed by the server after %llu of %llu bytes echoed",
		     (unsigned long long)k->rcvd, (unsigned long long)k->c->total);
}

/* Reads until the socket is drained. Returns false when k ended. */
static bool conn_read(struct conn *k)
{
	for (;;) {
		ssize_t n = recv(k->fd, scratch, sizeof(scratch), 0);
		const uint8_t *p = scratch;
		size_t len;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0) {
			fail(k, "receive: %s", strerror(errno));
			return false;
		}
		if (n == 0) {
			on_eof(k);
			return false;
		}
		k->c->r->bytes_received += (uint64_t)n;
		progress(k);
		len = (size_t)n;
		if (k->st == BANNER) {
			ssize_t used = take_banner(k, p, len);
			if (used < 0)
				return false;
			p += used;
			len -= (size_t)used;
		}
		if (len > 0 && !take_reply(k, p, len))
			return false;
	}
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Sends what may be sent now, half-closes when the stream is complete, and sets what to wait
 * for. */
static void conn_write(struct conn *k)
{
	const struct sw_client_opts *o = k->c->o;
	uint64_t limit = k->c->total;
	unsigned want = ZT_IO_READ;

	if (o->requests > 0 && (k->rcvd / o->size + 1) * o->size < limit)
		limit = (k->rcvd / o->size + 1) * o->size; /* the end of the current request */
	while (k->sent < limit) {
		size_t len = limit - k->sent < CHUNK ? (size_t)(limit - k->sent) : CHUNK;
		ssize_t n;

		if (o->requests > 0 && k->sent % o->size == 0)
			k->req_t0_ns = now_ns();
		sw_pattern_fill(k->idx, k->sent, scratch, len);
		n = send(k->fd, scratch, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			fail(k, "send: %s", strerror(errno));
			return;
		}
		k->sent += (uint64_t)n;
		k->c->r->bytes_sent += (uint64_t)n;
		progress(k);
	}
	if (k->sent < limit)
		want |= ZT_IO_WRITE;
	if (k->sent == k->c->total && !k->wr_shut && (o->requests == 0 || k->rcvd == k->c->total)) {
		k->wr_shut = true;
		if (shutdown(k->fd, SHUT_WR) < 0) {
			fail(k, "shutdown: %s", strerror(errno));
			return;
		}
	}
	zt_io_set(&k->io, want);
}

/* ---- connecting -------------------------------------------------------------------------- */

static void connected(struct conn *k)
{
	progress(k);
	zt_debug("conn %u: connected", k->idx);
	k->st = k->c->o->expect_banner ? BANNER : RUN;
	if (k->st == BANNER)
		zt_io_set(&k->io, ZT_IO_READ);
	else
		conn_write(k);
}

static void on_io(struct zt_io *io, unsigned events, void *arg)
{
	struct conn *k = arg;
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	(void)io;
	(void)events;
	if (k->st == CONNECTING) {
		if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			fail(k, "connect: %s", strerror(soerr));
			return;
		}
		connected(k);
		return;
	}
	if (!conn_read(k))
		return;
	if (k->st == RUN)
		conn_write(k);
}

static void on_timer(struct zt_timer *t, void *arg)
{
	struct conn *k = arg;
	uint64_t idle = zt_loop_now(k->c->loop) - k->last_ms;
	uint64_t limit = k->c->o->timeout_ms;
	char d[ZT_DURATION_STRLEN];

	if (idle < limit) {
		zt_timer_start(k->c->loop, t, limit - idle, on_timer, k);
		return;
	}
	zt_duration_format(limit, d, sizeof(d));
	if (k->st == CONNECTING)
		fail(k, "timed out: no progress for %s while connecting", d);
	else if (k->st == BANNER)
		fail(k, "timed out: no progress for %s waiting for the banner", d);
	else if (k->wr_shut && (k->rcvd == k->c->total || k->sink))
		fail(k, "timed out: no progress for %s waiting for the server to close", d);
	else
		fail(k, "timed out: no progress for %s with %llu of %llu bytes sent, %llu echoed",
		     d, (unsigned long long)k->sent, (unsigned long long)k->c->total,
		     (unsigned long long)k->rcvd);
}

static void conn_start(struct client *c)
{
	const struct sw_client_opts *o = c->o;
	struct conn *k = xcalloc(1, sizeof(*k));
	struct sockaddr_storage ss;
	socklen_t sslen;
	int one = 1, err;

	k->c = c;
	k->idx = c->started++;
	k->fd = -1;
	zt_buf_init(&k->banner, SW_BANNER_MAX);
	LIST_INSERT_HEAD(&c->conns, k, link);
	progress(k);
	zt_timer_start(c->loop, &k->timer, o->timeout_ms, on_timer, k);

	k->fd = socket(o->connect.ip.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->fd < 0) {
		fail(k, "socket: %s", strerror(errno));
		return;
	}
	/* Request mode measures round trips: never hold a small write back. */
	setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->bind.family) {
		struct zt_sockaddr src = {.ip = o->bind};

		sslen = zt_addr_to_sockaddr(&src, &ss);
		if (bind(k->fd, (struct sockaddr *)&ss, sslen) < 0) {
			fail(k, "bind: %s", strerror(errno));
			return;
		}
	}
	err = zt_io_start(c->loop, &k->io, k->fd, ZT_IO_WRITE, on_io, k);
	if (err < 0) {
		fail(k, "watch: %s", zt_strerror(err));
		return;
	}
	sslen = zt_addr_to_sockaddr(&o->connect, &ss);
	if (connect(k->fd, (struct sockaddr *)&ss, sslen) == 0)
		connected(k);
	else if (errno != EINPROGRESS)
		fail(k, "connect: %s", strerror(errno));
}

static void launch(struct client *c)
{
	/* Counting until reaped bounds the memory even when connections fail at once. */
	while (!c->interrupted && c->started - c->reaped < c->o->concurrency &&
	       c->started < c->o->connections)
		conn_start(c);
}

/* ---- running ----------------------------------------------------------------------------- */

static void on_signal(struct zt_signal *sig, int signo, void *arg)
{
	struct client *c = arg;
	uint32_t never = c->o->connections - c->started;

	(void)sig;
	if (c->interrupted)
		return;
	c->interrupted = true;
	while (!LIST_EMPTY(&c->conns))
		fail(LIST_FIRST(&c->conns), "interrupted by %s", strsignal(signo));
	/* Connections never started count as failed too. */
	c->r->errors += never;
	if (never > 0)
		sw_report_error(c->r, "interrupted before every connection started");
	if (c->reaped == c->started)
		zt_loop_stop(c->loop);
}

int sw_client_run(const struct sw_client_opts *o, struct sw_report *r)
{
	struct client c = {.o = o, .r = r};
	int err;

	signal(SIGPIPE, SIG_IGN);
	r->connections = o->connections;
	r->request_mode = o->requests > 0;
	zt_addr_format(&o->connect, r->peer, sizeof(r->peer));
	c.total = o->requests > 0 ? o->requests * o->size : o->bytes;
	err = zt_loop_new(&c.loop);
	if (err < 0)
		return err;
	if ((err = zt_signal_start(c.loop, &c.sigterm, SIGTERM, on_signal, &c)) < 0 ||
	    (err = zt_signal_start(c.loop, &c.sigint, SIGINT, on_signal, &c)) < 0)
		goto out;
	c.t0_ns = now_ns();
	launch(&c);
	err = zt_loop_run(c.loop);
out:
	zt_signal_stop(&c.sigterm);
	zt_signal_stop(&c.sigint);
	c.interrupted = true; /* start nothing more */
	while (!LIST_EMPTY(&c.conns))
		fail(LIST_FIRST(&c.conns), "event loop failed");
	/* Frees what finished after the loop stopped. */
	while (c.reaped < c.started && zt_loop_run_once(c.loop, 0) == 0)
		;
	zt_loop_free(c.loop);
	return err;
}
