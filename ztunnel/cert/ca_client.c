/* CreateCertificate calls on one shared HTTP/2 connection. Invariant: every call is on the
 * client's list until it ends, and it ends exactly once, through finish(), always from a loop
 * callback (never inside sign()), unless cancelled; a call that cannot go out yet waits on the
 * list for the connection being set up (one zt_h2_connect at a time).
 * Connections outlive the client if they must: each knows its client through a pointer that
 * the client clears when it goes. */
#include "cert/ca_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "google/protobuf/struct.pb-c.h"
#include "istio/ca/ca.pb-c.h"
#include "protocol/csr.h"
#include "protocol/h2.h"
#include "protocol/h2_connect.h"
#include "protocol/pb.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("ca");

#define IDLE_CLOSE_MS 60000 /* an unused connection is let go after this long */
#define MAX_HOST      253

struct ca_conn {
	struct zt_ca_client *cl; /* NULL once the client is gone */
	struct zt_h2_conn *h2;
	LIST_ENTRY(ca_conn) link;
};

struct call {
	struct zt_ca_client *cl;
	TAILQ_ENTRY(call) link;
	bool waiting; /* not yet on the wire */
	uint8_t *body;
	size_t body_len;
	zt_cert_done_cb done;
	void *arg;
	struct zt_grpc_call *gc;
	uint64_t deadline_at;  /* loop ms */
	struct zt_timer timer; /* deadline while waiting, or an immediate failure */
	int err;               /* failure to report from the timer */
	char msg[600];
	char **chain;
	size_t n;
};

struct zt_ca_client {
	struct zt_loop *loop;
	char *host, *alt, *authority, *cluster_id;
	uint16_t port;
	struct zt_tls_client *tls; /* replaced with the roots; connections keep what they need */
	zt_ca_token_cb token;
	void *token_arg;
	struct zt_grpc_md headers[ZT_CA_CLIENT_MAX_HEADERS];
	size_t nheaders;
	bool impersonate;
	uint64_t timeout_ms;
	LIST_HEAD(, ca_conn) conns; /* every live connection */
	struct ca_conn *cur;        /* where new calls go; NULL: none usable */
	struct zt_h2_connect *setup; /* the connection being set up, for setup_cc */
	struct ca_conn *setup_cc;
	TAILQ_HEAD(calls, call) calls;
	size_t ncalls;
	struct zt_timer idle;
};

static void pump(struct zt_ca_client *cl);
static void on_idle(struct zt_timer *t, void *arg);

static char *dup_or_null(const char *s)
{
	char *d;

	if (!s || !s[0])
		return NULL;
	d = xstrdup(s);
	return d;
}

/* ---- calls -------------------------------------------------------------------------------- */

static void unlink_call(struct call *c)
{
	struct zt_ca_client *cl = c->cl;

	TAILQ_REMOVE(&cl->calls, c, link);
	if (--cl->ncalls == 0 && cl->cur)
		zt_timer_start(cl->loop, &cl->idle, IDLE_CLOSE_MS, on_idle, cl);
}

static void call_free(struct call *c)
{
	zt_timer_stop(&c->timer);
	zt_cert_chain_free(c->chain, c->n);
	free(c->body);
	free(c);
}

/* Ends an unlinked call: the callback runs last, with nothing of the client touched after. */
static void finish(struct call *c, int err, const char *msg)
{
	zt_cert_done_cb done = c->done;
	void *arg = c->arg;
	char **chain = NULL;
	size_t n = 0;
	char text[sizeof(c->msg)];

	if (err == 0) {
		chain = c->chain;
		n = c->n;
		c->chain = NULL;
	}
	snprintf(text, sizeof(text), "%s", err ? msg : "");
	call_free(c);
	done(arg, err, text, chain, n);
}

static void on_call_timer(struct zt_timer *t, void *arg)
{
	struct call *c = arg;

	(void)t;
	unlink_call(c);
	if (c->err)
		finish(c, c->err, c->msg);
	else
		finish(c, ZT_E_TIMEOUT, "CreateCertificate: deadline exceeded before sending");
}

/* Reports a failure from the loop (the caller may be inside sign()). */
__attribute__((format(printf, 3, 4))) static void fail_soon(struct call *c, int err,
                                                            const char *fmt, ...)
{
	va_list ap;

	c->err = err;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	zt_timer_start(c->cl->loop, &c->timer, 0, on_call_timer, c);
}

static int err_from_grpc(int code)
{
	switch (code) {
	case ZT_GRPC_DEADLINE_EXCEEDED:
		return ZT_E_TIMEOUT;
	case ZT_GRPC_UNAVAILABLE:
	case ZT_GRPC_CANCELLED:
		return ZT_E_CLOSED;
	case ZT_GRPC_UNAUTHENTICATED:
	case ZT_GRPC_PERMISSION_DENIED:
		return ZT_E_IDENTITY;
	default:
		return ZT_E_PROTO;
	}
}

static void on_message(struct zt_grpc_call *gc, const uint8_t *p, size_t len, void *arg)
{
	struct call *c = arg;
	Istio__V1__Auth__IstioCertificateResponse *resp = NULL;
	int rc;

	if (c->err)
		return;
	if (c->chain) {
		c->err = ZT_E_PROTO;
		snprintf(c->msg, sizeof(c->msg), "CreateCertificate: more than one response");
		zt_grpc_call_cancel(gc);
		return;
	}
	rc = zt_pb_unpack(&istio__v1__auth__istio_certificate_response__descriptor, p, len,
	                  ZT_CA_CLIENT_MAX_RESPONSE, (ProtobufCMessage **)&resp);
	if (rc < 0 || resp->n_cert_chain == 0 || resp->n_cert_chain > ZT_CA_CLIENT_MAX_CHAIN) {
		c->err = ZT_E_PROTO;
		snprintf(c->msg, sizeof(c->msg), "CreateCertificate: %s",
		         rc < 0               ? "undecodable response"
		         : resp->n_cert_chain ? "too many certificates in response"
		                              : "empty certificate chain");
		zt_pb_free((ProtobufCMessage *)resp);
		return;
	}
	c->chain = xcalloc(resp->n_cert_chain, sizeof(*c->chain));
	for (size_t i = 0; i < resp->n_cert_chain; i++) {
		c->chain[i] = xstrdup(resp->cert_chain[i]);
	}
	c->n = resp->n_cert_chain;
	zt_pb_free((ProtobufCMessage *)resp);
}

static void on_done(struct zt_grpc_call *gc, int code, const char *message, void *arg)
{
	struct call *c = arg;
	struct zt_ca_client *cl = c->cl;
	char msg[sizeof(c->msg)];

	(void)gc;
	c->gc = NULL;
	unlink_call(c);
	pump(cl); /* a call held back by the server's stream limit may go now */
	if (c->err) {
		finish(c, c->err, c->msg);
	} else if (code != ZT_GRPC_OK) {
		snprintf(msg, sizeof(msg), "CreateCertificate: %s%s%s", zt_grpc_code_name(code),
		         message && message[0] ? ": " : "", message ? message : "");
		finish(c, err_from_grpc(code), msg);
	} else if (!c->chain) {
		finish(c, ZT_E_PROTO, "CreateCertificate: no response message");
	} else {
		finish(c, 0, "");
	}
}

static const struct zt_grpc_call_cbs call_cbs = {.on_message = on_message, .on_done = on_done};
static const struct zt_grpc_call_cbs no_cbs = {0};

/* Puts a waiting call on the wire over cl->cur. */
static void start_call(struct call *c)
{
	struct zt_ca_client *cl = c->cl;
	struct zt_grpc_md md[ZT_CA_CLIENT_MAX_HEADERS + 2];
	char token[ZT_CA_CLIENT_TOKEN_MAX + 1], auth[ZT_CA_CLIENT_TOKEN_MAX + 16];
	uint64_t now = zt_loop_now(cl->loop);
	size_t n = 0;
	int rc = 0;

	c->waiting = false;
	zt_timer_stop(&c->timer);
	token[0] = '\0';
	if (cl->token && (rc = cl->token(cl->token_arg, token, sizeof(token))) < 0) {
		fail_soon(c, rc, "CreateCertificate: cannot read token: %s", zt_strerror(rc));
		return;
	}
	token[sizeof(token) - 1] = '\0';
	if (token[0]) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		md[n++] = (struct zt_grpc_md){"authorization", auth};
	}
	if (cl->cluster_id)
		md[n++] = (struct zt_grpc_md){"clusterid", cl->cluster_id};
	for (size_t i = 0; i < cl->nheaders; i++)
		md[n++] = cl->headers[i];
	c->gc = zt_grpc_call_start(cl->cur->h2, cl->authority, ZT_CA_CLIENT_PATH, md, n,
	                           c->deadline_at > now ? c->deadline_at - now : 1,
	                           ZT_CA_CLIENT_MAX_RESPONSE, &call_cbs, c, &rc);
	if (!c->gc) {
		fail_soon(c, ZT_E_CLOSED, "CreateCertificate: cannot open a stream: %s",
		          zt_strerror(rc));
		return;
	}
	if (zt_grpc_call_send(c->gc, c->body, c->body_len) < 0 ||
	    zt_grpc_call_close_send(c->gc) < 0)
		zt_grpc_call_cancel(c->gc); /* on_done reports it */
}

/* ---- connection --------------------------------------------------------------------------- */

static void conn_unlink(struct ca_conn *cc)
{
	struct zt_ca_client *cl = cc->cl;

	LIST_REMOVE(cc, link);
	if (cl->cur == cc)
		cl->cur = NULL;
	cc->cl = NULL;
}

static void on_conn_goaway(struct zt_h2_conn *h2, uint32_t code, void *arg)
{
	struct ca_conn *cc = arg;

	(void)h2;
	zt_debug("CA connection draining (GOAWAY %u)", code);
	if (cc->cl && cc->cl->cur == cc) {
		cc->cl->cur = NULL;
		pump(cc->cl);
	}
}

static void on_conn_close(struct zt_h2_conn *h2, const char *reason, void *arg)
{
	struct ca_conn *cc = arg;
	struct zt_ca_client *cl = cc->cl;

	(void)h2;
	zt_debug("CA connection closed: %s", reason);
	if (cl) {
		conn_unlink(cc);
		pump(cl);
	}
	free(cc);
}

static const struct zt_h2_conn_cbs conn_cbs = {.on_goaway = on_conn_goaway,
                                               .on_close = on_conn_close};

static void on_idle(struct zt_timer *t, void *arg)
{
	struct zt_ca_client *cl = arg;

	(void)t;
	if (cl->ncalls == 0 && cl->cur) {
		zt_h2_conn_shutdown(cl->cur->h2);
		cl->cur = NULL;
	}
}

/* Fails every call still waiting for a connection. */
static void fail_waiting(struct zt_ca_client *cl, int err, const char *why)
{
	struct calls failing = TAILQ_HEAD_INITIALIZER(failing);
	struct call *c, *next;

	for (c = TAILQ_FIRST(&cl->calls); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (!c->waiting)
			continue;
		unlink_call(c);
		TAILQ_INSERT_HEAD(&failing, c, link);
	}
	while ((c = TAILQ_FIRST(&failing))) {
		TAILQ_REMOVE(&failing, c, link);
		finish(c, err, why);
	}
}

static void setup_failed(struct zt_ca_client *cl, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The connection attempt failed: every waiting call fails with it. */
static void setup_failed(struct zt_ca_client *cl, int err, const char *fmt, ...)
{
	char why[400], msg[sizeof(((struct call *)0)->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	zt_warn("CA %s unreachable: %s", cl->authority, why);
	snprintf(msg, sizeof(msg), "CreateCertificate: %s", why);
	fail_waiting(cl, err, msg);
}

static void stop_setup(struct zt_ca_client *cl)
{
	zt_h2_connect_cancel(cl->setup);
	cl->setup = NULL;
	free(cl->setup_cc);
	cl->setup_cc = NULL;
}

static void on_connect(struct zt_h2_conn *h2, const struct zt_h2_connect_result *r, void *arg)
{
	struct zt_ca_client *cl = arg;
	struct ca_conn *cc = cl->setup_cc;

	cl->setup = NULL;
	cl->setup_cc = NULL;
	if (!h2) {
		free(cc);
		setup_failed(cl, r->err, "connecting to %s: %s", cl->authority, r->reason);
		return;
	}
	cc->cl = cl;
	cc->h2 = h2;
	LIST_INSERT_HEAD(&cl->conns, cc, link);
	cl->cur = cc;
	zt_debug("CA connection to %s up", cl->authority);
	pump(cl);
}

static void set_nodelay(int fd, void *arg)
{
	int one = 1;

	(void)arg;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Starts setting up a connection. Returns 0 or ZT_E_RANGE. */
static int start_setup(struct zt_ca_client *cl)
{
	struct zt_h2_settings set;
	struct zt_h2_connect_opts o = {
	        .host = cl->host,
	        .port = cl->port,
	        .prepare = set_nodelay,
	        .connect_timeout_ms = cl->timeout_ms,
	        .handshake_timeout_ms = cl->timeout_ms,
	        .tls = cl->tls,
	        .verify_host = cl->host,
	        .alt_host = cl->alt,
	        .h2 = &set,
	        .cbs = &conn_cbs,
	};
	int rc = 0;

	zt_h2_settings_default(&set, false);
	cl->setup_cc = o.cbs_arg = xcalloc(1, sizeof(*cl->setup_cc));
	cl->setup = zt_h2_connect_start(cl->loop, &o, on_connect, cl, &rc);
	if (!cl->setup) {
		free(cl->setup_cc);
		cl->setup_cc = NULL;
	}
	return rc;
}

/* Sends what can go out, and starts a connection when calls wait without a usable one. */
static void pump(struct zt_ca_client *cl)
{
	struct call *c;
	int rc = 0;

	TAILQ_FOREACH(c, &cl->calls, link) {
		if (!c->waiting)
			continue;
		if (!cl->cur) {
			if (cl->setup)
				return;
			if ((rc = start_setup(cl)) < 0) {
				c->waiting = false;
				fail_soon(c, rc, "CreateCertificate: cannot dial %s: %s",
				          cl->authority, zt_strerror(rc));
				continue;
			}
			return;
		}
		if (!zt_h2_conn_can_open(cl->cur->h2))
			return; /* at the server's stream limit: the next call end pumps again */
		zt_timer_stop(&cl->idle);
		start_call(c);
	}
}

/* ---- source interface --------------------------------------------------------------------- */

static int encode_request(const char *id, const char *csr, int64_t ttl_s, bool impersonate,
                          uint8_t **out, size_t *len)
{
	Istio__V1__Auth__IstioCertificateRequest req =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
	Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Protobuf__Struct__FieldsEntry ent = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	Google__Protobuf__Struct__FieldsEntry *ents[1] = {&ent};
	Google__Protobuf__Value val = GOOGLE__PROTOBUF__VALUE__INIT;

	req.csr = (char *)csr;
	req.validity_duration = ttl_s;
	if (impersonate) {
		val.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		val.string_value = (char *)id;
		ent.key = "ImpersonatedIdentity";
		ent.value = &val;
		md.n_fields = 1;
		md.fields = ents;
		req.metadata = &md;
	}
	return zt_pb_pack(&req.base, out, len);
}

static int src_sign(void *src, const char *spiffe_id, const char *csr_pem, int64_t ttl_s,
                    zt_cert_done_cb done, void *arg, void **handle)
{
	struct zt_ca_client *cl = src;
	struct call *c;

	if (!spiffe_id || !spiffe_id[0] || strlen(spiffe_id) >= ZT_SPIFFE_STR_SIZE || !csr_pem ||
	    !csr_pem[0] || strlen(csr_pem) > ZT_CSR_MAX_PEM || ttl_s <= 0)
		return ZT_E_PARSE;
	c = xcalloc(1, sizeof(*c));
	if (encode_request(spiffe_id, csr_pem, ttl_s, cl->impersonate, &c->body, &c->body_len) <
	    0) {
		free(c);
		return ZT_E_PARSE;
	}
	c->cl = cl;
	c->done = done;
	c->arg = arg;
	c->waiting = true;
	c->deadline_at = zt_loop_now(cl->loop) + cl->timeout_ms;
	zt_timer_start(cl->loop, &c->timer, cl->timeout_ms, on_call_timer, c);
	TAILQ_INSERT_TAIL(&cl->calls, c, link);
	cl->ncalls++;
	*handle = c;
	pump(cl);
	return 0;
}

static void cancel_call(struct call *c)
{
	unlink_call(c);
	if (c->gc) {
		zt_grpc_call_set_cbs(c->gc, &no_cbs, NULL);
		zt_grpc_call_cancel(c->gc);
	}
	call_free(c);
}

static void src_cancel(void *src, void *handle)
{
	(void)src;
	cancel_call(handle);
}

struct zt_cert_source zt_ca_client_source(struct zt_ca_client *c)
{
	return (struct zt_cert_source){.sign = src_sign, .cancel = src_cancel, .src = c};
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static bool valid_header(const char *k, const char *v)
{
	if (!k || !k[0] || !v || strncmp(k, "grpc-", 5) == 0)
		return false;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '-' ||
		      *k == '_' || *k == '.'))
			return false;
	for (; *v; v++)
		if (*v < 0x20 || *v > 0x7e)
			return false;
	return true;
}

int zt_ca_client_new(struct zt_ca_client **out, struct zt_loop *loop,
                     const struct zt_ca_client_opts *o)
{
	struct zt_tls_client *tls;
	struct zt_ca_client *cl;
	char auth[MAX_HOST + 16];
	int rc;

	*out = NULL;
	if (!o->host || !o->host[0] || strlen(o->host) > MAX_HOST || o->port == 0 ||
	    (o->alt_hostname && strlen(o->alt_hostname) > MAX_HOST))
		return ZT_E_RANGE;
	if (o->nheaders > ZT_CA_CLIENT_MAX_HEADERS)
		return ZT_E_TOOBIG;
	for (size_t i = 0; i < o->nheaders; i++)
		if (!valid_header(o->headers[i].key, o->headers[i].value))
			return ZT_E_PARSE;
	if (o->cluster_id && !valid_header("clusterid", o->cluster_id))
		return ZT_E_PARSE;
	if ((rc = zt_tls_cp_client_new(&tls, o->roots_pem, o->roots_len, o->tls)) < 0)
		return rc;
	cl = xcalloc(1, sizeof(*cl));
	cl->loop = loop;
	cl->tls = tls;
	cl->host = dup_or_null(o->host);
	cl->alt = dup_or_null(o->alt_hostname);
	cl->port = o->port;
	snprintf(auth, sizeof(auth), strchr(o->host, ':') ? "[%s]:%u" : "%s:%u", o->host, o->port);
	cl->authority = dup_or_null(auth);
	cl->cluster_id = dup_or_null(o->cluster_id);
	cl->token = o->token;
	cl->token_arg = o->token_arg;
	for (size_t i = 0; i < o->nheaders; i++) {
		cl->headers[i].key = xstrdup(o->headers[i].key);
		cl->headers[i].value = xstrdup(o->headers[i].value);
	}
	cl->nheaders = o->nheaders;
	cl->impersonate = o->impersonate;
	cl->timeout_ms = o->timeout_ms ? o->timeout_ms : ZT_CA_CLIENT_TIMEOUT_MS;
	LIST_INIT(&cl->conns);
	TAILQ_INIT(&cl->calls);
	*out = cl;
	return 0;
}

void zt_ca_client_free(struct zt_ca_client *cl)
{
	if (!cl)
		return;
	while (!TAILQ_EMPTY(&cl->calls))
		cancel_call(TAILQ_FIRST(&cl->calls));
	zt_timer_stop(&cl->idle);
	stop_setup(cl);
	while (!LIST_EMPTY(&cl->conns)) {
		struct zt_h2_conn *h2 = LIST_FIRST(&cl->conns)->h2;

		conn_unlink(LIST_FIRST(&cl->conns));
		zt_h2_conn_close(h2, "CA client closed");
	}
	zt_tls_client_unref(cl->tls);
	for (size_t i = 0; i < cl->nheaders; i++) {
		free((char *)cl->headers[i].key);
		free((char *)cl->headers[i].value);
	}
	free(cl->host);
	free(cl->alt);
	free(cl->authority);
	free(cl->cluster_id);
	free(cl);
}

int zt_ca_client_set_roots(struct zt_ca_client *cl, const char *roots_pem, size_t roots_len)
{
	struct zt_tls_client *tls;
	int rc;

	if ((rc = zt_tls_cp_client_new(&tls, roots_pem, roots_len, NULL)) < 0)
		return rc;
	stop_setup(cl);
	zt_tls_client_unref(cl->tls);
	cl->tls = tls;
	if (cl->cur) {
		zt_h2_conn_shutdown(cl->cur->h2);
		cl->cur = NULL;
	}
	pump(cl);
	return 0;
}

size_t zt_ca_client_calls(const struct zt_ca_client *cl)
{
	return cl->ncalls;
}

bool zt_ca_client_connected(const struct zt_ca_client *cl)
{
	return cl->cur != NULL;
}
