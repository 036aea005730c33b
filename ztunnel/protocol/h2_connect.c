/* HTTP/2 client connector: TCP -> TLS -> HTTP/2, one timer per stage. Invariant: an attempt
 * ends exactly once, in report(), which runs from a loop callback (a defer when the failure
 * is found inside zt_h2_connect_start) and frees the attempt after the user's callback. */
#include "protocol/h2_connect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/dial.h"
#include "protocol/sock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("h2");

#define MAX_HOST 253

struct zt_h2_connect {
	struct zt_loop *loop;
	enum zt_h2_connect_stage stage;
	struct zt_h2_connect_opts o; /* strings and arrays below are our copies */
	char *host, *verify_host, *alt_host;
	struct zt_spiffe expected[ZT_TLS_MAX_EXPECTED];
	struct zt_h2_settings h2;
	struct zt_dial *dial;
	struct zt_sock sock;
	struct zt_timer timer;
	struct zt_defer defer; /* a failure found inside zt_h2_connect_start */
	uint64_t tls_started_ms;
	struct zt_spiffe peer;
	bool has_peer;
	zt_h2_connect_cb cb;
	void *arg;
	int err;
	char reason[256];
};

static char *dup_or_null(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

static void release(struct zt_h2_connect *c)
{
	zt_timer_stop(&c->timer);
	zt_defer_stop(&c->defer);
	zt_dial_cancel(c->dial);
	c->dial = NULL;
	zt_sock_close(&c->sock);
	zt_tls_client_unref(c->o.tls);
	zt_tls_identity_unref(c->o.identity);
	free(c->host);
	free(c->verify_host);
	free(c->alt_host);
	free(c);
}

static void report(struct zt_h2_connect *c, struct zt_h2_conn *h2)
{
	struct zt_h2_connect_result r = {
	        .err = c->err,
	        .stage = c->stage,
	        .reason = c->reason,
	        .peer = h2 && c->has_peer ? &c->peer : NULL,
	        .handshake_ms = c->tls_started_ms ? zt_loop_now(c->loop) - c->tls_started_ms : 0,
	};

	zt_timer_stop(&c->timer);
	c->cb(h2, &r, c->arg);
	release(c);
}

static void on_defer(struct zt_defer *d, void *arg)
{
	(void)d;
	report(arg, NULL);
}

/* Records a failure; reports it now (from a loop callback) or, when soon, from a defer. */
__attribute__((format(printf, 5, 6))) static void fail(struct zt_h2_connect *c, bool soon,
                                                        enum zt_h2_connect_stage stage, int err,
                                                        const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	c->stage = stage;
	c->err = err;
	zt_debug("connect failed: %s", c->reason);
	zt_dial_cancel(c->dial);
	c->dial = NULL;
	zt_sock_close(&c->sock);
	if (soon)
		zt_defer_start(c->loop, &c->defer, on_defer, c);
	else
		report(c, NULL);
}

static void on_handshake(struct zt_sock *s, int err, void *arg)
{
	struct zt_h2_connect *c = arg;
	const struct zt_spiffe *peer;
	struct zt_h2_conn *h2 = NULL;

	zt_timer_stop(&c->timer);
	if (err < 0) {
		const char *why = zt_sock_error(s);
		fail(c, false, ZT_H2_CONNECT_TLS, err, "TLS handshake failed: %s",
		     why[0] ? why : zt_strerror(err));
		return;
	}
	if ((peer = zt_tls_conn_peer(s->tls))) {
		c->peer = *peer;
		c->has_peer = true;
	}
	c->stage = ZT_H2_CONNECT_H2;
	/* On failure the socket is closed by zt_h2_conn_new; on success it moved there. */
	if ((err = zt_h2_conn_new(&h2, c->loop, &c->sock, false, &c->h2, c->o.cbs, c->o.cbs_arg)) <
	    0) {
		c->sock.fd = -1;
		c->sock.tls = NULL;
		fail(c, false, ZT_H2_CONNECT_H2, err, "HTTP/2 start failed: %s", zt_strerror(err));
		return;
	}
	report(c, h2);
}

static void on_timer(struct zt_timer *t, void *arg)
{
	struct zt_h2_connect *c = arg;

	(void)t;
	if (c->stage == ZT_H2_CONNECT_TCP)
		fail(c, false, ZT_H2_CONNECT_TCP, ZT_E_TIMEOUT, "connect timed out after %llu ms",
		     (unsigned long long)c->o.connect_timeout_ms);
	else
		fail(c, false, ZT_H2_CONNECT_TLS, ZT_E_TIMEOUT, "TLS handshake timed out after %llu ms",
		     (unsigned long long)c->o.handshake_timeout_ms);
}

static void start_tls(struct zt_h2_connect *c)
{
	c->stage = ZT_H2_CONNECT_TLS;
	c->tls_started_ms = zt_loop_now(c->loop);
	zt_sock_want(&c->sock, 0);
	zt_timer_start(c->loop, &c->timer, c->o.handshake_timeout_ms, on_timer, c);
	zt_sock_handshake(&c->sock, on_handshake, c);
}

/* The TLS client end on fd (taken: closed on failure), started on c->sock with cb. */
static int tls_sock(struct zt_h2_connect *c, int fd, zt_sock_cb cb)
{
	struct zt_tls_conn *tc = NULL;
	int rc;

	if (c->o.identity)
		rc = zt_tls_conn_client_new(&tc, c->o.tls, fd, c->o.identity, c->expected,
		                            c->o.n_expected);
	else if ((rc = zt_tls_conn_cp_client_new(&tc, c->o.tls, fd, c->verify_host)) == 0 &&
	         c->alt_host)
		rc = zt_tls_conn_cp_set_alt_host(tc, c->alt_host);
	if (rc == 0)
		rc = zt_sock_start(&c->sock, c->loop, fd, tc, cb, c);
	if (rc < 0) {
		zt_tls_conn_free(tc);
		close(fd);
		c->sock.fd = -1;
	}
	return rc;
}

static void on_dial(int fd, int err, void *arg)
{
	struct zt_h2_connect *c = arg;

	c->dial = NULL;
	if (fd < 0) {
		if (err == ZT_E_TIMEOUT)
			fail(c, false, ZT_H2_CONNECT_TCP, err, "connect timed out after %llu ms",
			     (unsigned long long)c->o.connect_timeout_ms);
		else
			fail(c, false, ZT_H2_CONNECT_TCP, err, "connect: %s", zt_strerror(err));
		return;
	}
	if (c->o.prepare)
		c->o.prepare(fd, c->o.sock_arg);
	if ((err = tls_sock(c, fd, NULL)) < 0) {
		fail(c, false, ZT_H2_CONNECT_TLS, err, "TLS setup: %s", zt_strerror(err));
		return;
	}
	start_tls(c);
}

static void on_connected(struct zt_sock *s, unsigned events, void *arg)
{
	struct zt_h2_connect *c = arg;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	(void)events;
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr) {
		fail(c, false, ZT_H2_CONNECT_TCP, -soerr, "connect: %s", strerror(soerr));
		return;
	}
	zt_timer_stop(&c->timer);
	start_tls(c);
}

/* TCP to an address on a socket of ours or the caller's. Failures are reported soon. */
static void connect_addr(struct zt_h2_connect *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = zt_addr_to_sockaddr(&c->o.addr, &ss);
	const char *what = "socket";
	int fd, rc;

	if (c->o.socket_cb)
		fd = c->o.socket_cb(ss.ss_family, &what, c->o.sock_arg);
	else if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		fd = -errno;
	if (fd < 0) {
		fail(c, true, ZT_H2_CONNECT_TCP, fd, "%s: %s", what, zt_strerror(fd));
		return;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		fail(c, true, ZT_H2_CONNECT_TCP, rc, "connect: %s", zt_strerror(rc));
		return;
	}
	if ((rc = tls_sock(c, fd, on_connected)) < 0) {
		fail(c, true, ZT_H2_CONNECT_TLS, rc, "TLS setup: %s", zt_strerror(rc));
		return;
	}
	zt_sock_want(&c->sock, ZT_IO_WRITE);
	zt_timer_start(c->loop, &c->timer, c->o.connect_timeout_ms, on_timer, c);
}

struct zt_h2_connect *zt_h2_connect_start(struct zt_loop *loop,
                                          const struct zt_h2_connect_opts *o,
                                          zt_h2_connect_cb cb, void *arg, int *err)
{
	struct zt_h2_connect *c;

	if ((o->host ? !o->host[0] || strlen(o->host) > MAX_HOST || !o->port
	             : !o->addr.ip.family) ||
	    !o->tls || !o->connect_timeout_ms || !o->handshake_timeout_ms || !cb ||
	    (o->identity ? !o->n_expected || o->n_expected > ZT_TLS_MAX_EXPECTED
	                 : !o->verify_host || !o->verify_host[0] ||
	                           strlen(o->verify_host) > MAX_HOST ||
	                           (o->alt_host && strlen(o->alt_host) > MAX_HOST))) {
		*err = ZT_E_RANGE;
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->o = *o;
	c->o.tls = zt_tls_client_ref(o->tls);
	c->o.identity = o->identity ? zt_tls_identity_ref(o->identity) : NULL;
	c->host = dup_or_null(o->host);
	c->verify_host = dup_or_null(o->verify_host);
	c->alt_host = dup_or_null(o->alt_host);
	if (o->identity)
		memcpy(c->expected, o->expected, o->n_expected * sizeof(*o->expected));
	if (o->h2)
		c->h2 = *o->h2;
	else
		zt_h2_settings_default(&c->h2, false);
	c->o.host = c->o.verify_host = c->o.alt_host = NULL;
	c->o.expected = NULL;
	c->o.h2 = NULL;
	c->sock.fd = -1;
	c->cb = cb;
	c->arg = arg;
	c->stage = ZT_H2_CONNECT_TCP;
	if (c->host) {
		int rc = 0;
		c->dial = zt_dial_start(loop, c->host, o->port, o->connect_timeout_ms, on_dial, c, &rc);
		if (!c->dial)
			fail(c, true, ZT_H2_CONNECT_TCP, rc, "connect: %s", zt_strerror(rc));
	} else {
		connect_addr(c);
	}
	return c;
}

void zt_h2_connect_cancel(struct zt_h2_connect *c)
{
	if (c)
		release(c);
}

enum zt_h2_connect_stage zt_h2_connect_stage(const struct zt_h2_connect *c)
{
	return c->stage;
}
