/* gRPC calls on HTTP/2 streams. Invariant: a call lives exactly as long as its stream plus
 * one deferred on_done: every ending (trailers, reset, deadline, cancel, connection loss)
 * goes through the stream's on_close, which fixes the status if none was set and schedules
 * on_done; the call is freed after on_done returns. */
#include "protocol/grpc.h"

#include <ctype.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("grpc");

#define MAX_MD 32
#define MAX_MD_BYTES 8192u

struct zt_grpc_call {
	struct zt_loop *loop;
	struct zt_h2_stream *st; /* NULL once the stream closed */
	bool server;
	bool headers_sent;	 /* server: response headers out */
	bool send_closed;
	bool status_set;
	int code;
	char message[256];
	struct zt_grpc_reader rd;
	struct zt_grpc_call_cbs cb;
	void *arg;
	struct zt_timer deadline;
	struct zt_defer done;
	char *path;
	struct zt_grpc_md md[MAX_MD];
	size_t nmd;
};

static atomic_size_t live_calls; /* all threads */

size_t zt_grpc_call_live(void)
{
	return live_calls;
}

const char *zt_grpc_code_name(int code)
{
	static const char *const names[] = {
		"OK",		     "CANCELLED",	"UNKNOWN",	    "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND",	"ALREADY_EXISTS",   "PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",	    "OUT_OF_RANGE",
		"UNIMPLEMENTED",     "INTERNAL",	"UNAVAILABLE",	    "DATA_LOSS",
		"UNAUTHENTICATED",
	};
	if (code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	return "UNKNOWN";
}

/* ---- framing ----------------------------------------------------------------------------- */

void zt_grpc_frame_prefix(uint8_t out[ZT_GRPC_PREFIX], uint32_t len)
{
	out[0] = 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

void zt_grpc_reader_init(struct zt_grpc_reader *r, size_t max_msg)
{
	memset(r, 0, sizeof(*r));
	r->max_msg = max_msg;
	zt_buf_init(&r->msg, 0);
}

void zt_grpc_reader_clear(struct zt_grpc_reader *r)
{
	zt_buf_clear(&r->msg);
}

bool zt_grpc_reader_partial(const struct zt_grpc_reader *r)
{
	return r->have_prefix > 0 || r->in_body;
}

int zt_grpc_reader_feed(struct zt_grpc_reader *r, const uint8_t *p, size_t len,
			zt_grpc_msg_cb cb, void *arg)
{
	while (len > 0) {
		if (!r->in_body) {
			size_t take = ZT_GRPC_PREFIX - r->have_prefix;
			if (take > len)
				take = len;
			memcpy(r->prefix + r->have_prefix, p, take);
			r->have_prefix += take;
			p += take;
			len -= take;
			if (r->have_prefix < ZT_GRPC_PREFIX)
				break;
			if (r->prefix[0] == 1)
				return ZT_E_UNSUPPORTED;
			if (r->prefix[0] != 0)
				return ZT_E_PROTO;
			r->need = (uint32_t)r->prefix[1] << 24 | (uint32_t)r->prefix[2] << 16 |
				  (uint32_t)r->prefix[3] << 8 | r->prefix[4];
			if (r->need > r->max_msg)
				return ZT_E_TOOBIG;
			r->have_prefix = 0;
			r->in_body = true;
			zt_buf_consume(&r->msg, zt_buf_len(&r->msg));
		}
		size_t have = zt_buf_len(&r->msg), take = r->need - have;
		if (take > len)
			take = len;
		/* A whole message in this chunk needs no copy. */
		if (have == 0 && take == r->need) {
			r->in_body = false;
			int rv = cb(p, take, arg);
			if (rv < 0)
				return rv;
		} else {
			if (zt_buf_append(&r->msg, p, take) < 0)
				abort();
			if (zt_buf_len(&r->msg) == r->need) {
				r->in_body = false;
				int rv = cb(zt_buf_data(&r->msg), r->need, arg);
				if (rv < 0)
					return rv;
			}
		}
		p += take;
		len -= take;
	}
	return 0;
}

int64_t zt_grpc_timeout_parse(const char *s, size_t len)
{
	int64_t v = 0;
	size_t i;

	if (len < 2 || len > 9)
		return ZT_E_PARSE;
	for (i = 0; i < len - 1; i++) {
		if (!isdigit((unsigned char)s[i]))
			return ZT_E_PARSE;
		v = v * 10 + (s[i] - '0');
	}
	switch (s[len - 1]) {
	case 'H':
		return v * 3600000;
	case 'M':
		return v * 60000;
	case 'S':
		return v * 1000;
	case 'm':
		return v;
	case 'u':
		return (v + 999) / 1000;
	case 'n':
		return (v + 999999) / 1000000;
	default:
		return ZT_E_PARSE;
	}
}

/* grpc-message is percent-encoded (gRPC over HTTP/2 spec). */
static void pct_encode(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in && o + 4 < outlen; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

static void pct_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < outlen; i++) {
		if (in[i] == '%' && i + 2 < len && isxdigit((unsigned char)in[i + 1]) &&
		    isxdigit((unsigned char)in[i + 2])) {
			char hx[3] = {in[i + 1], in[i + 2], 0};
			out[o++] = (char)strtol(hx, NULL, 16);
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
}

/* ---- common call plumbing ---------------------------------------------------------------- */

static void set_status(struct zt_grpc_call *call, int code, const char *msg)
{
	if (call->status_set)
		return;
	call->status_set = true;
	call->code = code;
	snprintf(call->message, sizeof(call->message), "%s", msg ? msg : "");
}

static void call_free(struct zt_grpc_call *call)
{
	zt_timer_stop(&call->deadline);
	zt_defer_stop(&call->done);
	zt_grpc_reader_clear(&call->rd);
	for (size_t i = 0; i < call->nmd; i++) {
		free((char *)call->md[i].key);
		free((char *)call->md[i].value);
	}
	free(call->path);
	live_calls--;
	free(call);
}

static void on_done_defer(struct zt_defer *d, void *arg)
{
	struct zt_grpc_call *call = arg;

	(void)d;
	if (call->cb.on_done)
		call->cb.on_done(call, call->code, call->message, call->arg);
	call_free(call);
}

static void st_on_close(struct zt_h2_stream *st, uint32_t error_code, void *arg)
{
	struct zt_grpc_call *call = arg;

	(void)st;
	call->st = NULL;
	zt_timer_stop(&call->deadline);
	if (error_code == NGHTTP2_CANCEL)
		set_status(call, ZT_GRPC_CANCELLED, "stream cancelled");
	else if (error_code != 0)
		set_status(call, ZT_GRPC_UNAVAILABLE, nghttp2_http2_strerror(error_code));
	else
		set_status(call, ZT_GRPC_INTERNAL, "stream ended without grpc-status");
	zt_defer_start(call->loop, &call->done, on_done_defer, call);
}

static int deliver(const uint8_t *p, size_t len, void *arg)
{
	struct zt_grpc_call *call = arg;

	if (call->cb.on_message)
		call->cb.on_message(call, p, len, call->arg);
	return call->st ? 0 : ZT_E_CLOSED;
}

static void fail_call(struct zt_grpc_call *call, int code, const char *msg)
{
	set_status(call, code, msg);
	if (call->st)
		zt_h2_stream_reset(call->st, NGHTTP2_CANCEL);
}

static void st_on_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct zt_grpc_call *call = arg;
	int rv = zt_grpc_reader_feed(&call->rd, p, len, deliver, call);

	if (call->st)
		zt_h2_stream_consume(st, len);
	if (rv == ZT_E_TOOBIG)
		fail_call(call, ZT_GRPC_RESOURCE_EXHAUSTED, "received message larger than max");
	else if (rv == ZT_E_UNSUPPORTED)
		fail_call(call, ZT_GRPC_UNIMPLEMENTED, "compressed messages are not supported");
	else if (rv < 0 && rv != ZT_E_CLOSED)
		fail_call(call, ZT_GRPC_INTERNAL, "malformed message framing");
}

static void st_on_writable(struct zt_h2_stream *st, void *arg)
{
	struct zt_grpc_call *call = arg;

	(void)st;
	if (call->cb.on_writable)
		call->cb.on_writable(call, call->arg);
}

static void on_deadline(struct zt_timer *t, void *arg)
{
	(void)t;
	fail_call(arg, ZT_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

static struct zt_grpc_call *call_new(struct zt_loop *loop, bool server, size_t max_msg)
{
	struct zt_grpc_call *call = xcalloc(1, sizeof(*call));

	call->loop = loop;
	call->server = server;
	zt_grpc_reader_init(&call->rd, max_msg);
	live_calls++;
	return call;
}

static bool hdr_is(const struct zt_h2_header *h, const char *name)
{
	return h->name_len == strlen(name) && memcmp(h->name, name, h->name_len) == 0;
}

int zt_grpc_call_send(struct zt_grpc_call *call, const void *p, size_t len)
{
	uint8_t prefix[ZT_GRPC_PREFIX];

	if (!call->st || call->send_closed || call->status_set || len > UINT32_MAX)
		return ZT_E_STATE;
	if (call->server && !call->headers_sent) {
		struct zt_h2_header h[] = {ZT_H2_HDR("content-type", "application/grpc")};
		if (zt_h2_stream_respond(call->st, 200, h, 1, false) < 0)
			return ZT_E_STATE;
		call->headers_sent = true;
	}
	zt_grpc_frame_prefix(prefix, (uint32_t)len);
	if (zt_h2_stream_write_all(call->st, prefix, sizeof(prefix)) < 0 ||
	    zt_h2_stream_write_all(call->st, p, len) < 0)
		return ZT_E_STATE;
	return 0;
}

bool zt_grpc_call_writable(const struct zt_grpc_call *call)
{
	return call->st && zt_h2_stream_writable(call->st);
}

void zt_grpc_call_cancel(struct zt_grpc_call *call)
{
	fail_call(call, ZT_GRPC_CANCELLED, "cancelled");
}

const char *zt_grpc_call_md(const struct zt_grpc_call *call, const char *key)
{
	for (size_t i = 0; i < call->nmd; i++)
		if (strcmp(call->md[i].key, key) == 0)
			return call->md[i].value;
	return NULL;
}

const char *zt_grpc_call_path(const struct zt_grpc_call *call)
{
	return call->path;
}

struct zt_h2_conn *zt_grpc_call_conn(const struct zt_grpc_call *call)
{
	return call->st ? zt_h2_stream_conn(call->st) : NULL;
}

void zt_grpc_call_set_cbs(struct zt_grpc_call *call, const struct zt_grpc_call_cbs *cbs, void *arg)
{
	call->cb = *cbs;
	call->arg = arg;
}

/* ---- client ------------------------------------------------------------------------------ */

static int status_from_http(int http)
{
	switch (http) {
	case 400:
		return ZT_GRPC_INTERNAL;
	case 401:
		return ZT_GRPC_UNAUTHENTICATED;
	case 403:
		return ZT_GRPC_PERMISSION_DENIED;
	case 404:
		return ZT_GRPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return ZT_GRPC_UNAVAILABLE;
	default:
		return ZT_GRPC_UNKNOWN;
	}
}

static void read_status(struct zt_grpc_call *call, const struct zt_h2_header *h, size_t n)
{
	const struct zt_h2_header *code = NULL, *msg = NULL;
	char text[256] = "";

	for (size_t i = 0; i < n; i++) {
		if (hdr_is(&h[i], "grpc-status"))
			code = &h[i];
		else if (hdr_is(&h[i], "grpc-message"))
			msg = &h[i];
	}
	if (!code) {
		set_status(call, ZT_GRPC_INTERNAL, "response ended without grpc-status");
		return;
	}
	if (msg)
		pct_decode(msg->value, msg->value_len, text, sizeof(text));
	char *end;
	long v = strtol(code->value, &end, 10);
	if (end == code->value || *end || v < 0 || v > 16)
		set_status(call, ZT_GRPC_INTERNAL, "malformed grpc-status");
	else
		set_status(call, (int)v, text);
}

static void cl_on_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n,
			  bool end, void *arg)
{
	struct zt_grpc_call *call = arg;
	int status = 0;

	(void)st;
	for (size_t i = 0; i < n; i++) {
		if (hdr_is(&h[i], ":status")) {
			status = (int)strtol(h[i].value, NULL, 10);
		}
	}
	if (status != 0 && status != 200) {
		char msg[64];
		snprintf(msg, sizeof(msg), "HTTP status %d", status);
		set_status(call, status_from_http(status), msg);
	} else if (end) {
		read_status(call, h, n);
	}
}

static void cl_on_end(struct zt_h2_stream *st, void *arg)
{
	struct zt_grpc_call *call = arg;

	(void)st;
	if (zt_grpc_reader_partial(&call->rd))
		set_status(call, ZT_GRPC_INTERNAL, "stream ended inside a message");
	/* The server's end completes the call: a client still sending (a bidi stream) stops
	 * here, else the stream would stay half-open and on_done never come. */
	if (call->st && !call->send_closed) {
		call->send_closed = true;
		zt_h2_stream_reset(call->st, NGHTTP2_NO_ERROR);
	}
}

static const struct zt_h2_stream_cbs client_stream_cbs = {
	.on_headers = cl_on_headers,
	.on_data = st_on_data,
	.on_end = cl_on_end,
	.on_writable = st_on_writable,
	.on_close = st_on_close,
};

struct zt_grpc_call *zt_grpc_call_start(struct zt_h2_conn *c, const char *authority,
					const char *path, const struct zt_grpc_md *md, size_t nmd,
					uint64_t deadline_ms, size_t max_msg,
					const struct zt_grpc_call_cbs *cbs, void *arg, int *err)
{
	struct zt_h2_header h[8 + MAX_MD];
	char timeout[16];
	size_t n = 0;
	struct zt_grpc_call *call;
	struct zt_loop *loop = zt_h2_conn_sock(c)->loop;

	if (nmd > MAX_MD) {
		*err = ZT_E_TOOBIG;
		return NULL;
	}
	h[n++] = ZT_H2_HDR(":method", "POST");
	h[n++] = ZT_H2_HDR(":scheme", "https");
	h[n++] = (struct zt_h2_header){":path", 5, path, strlen(path)};
	h[n++] = (struct zt_h2_header){":authority", 10, authority, strlen(authority)};
	h[n++] = ZT_H2_HDR("content-type", "application/grpc");
	h[n++] = ZT_H2_HDR("te", "trailers");
	if (deadline_ms) {
		/* At most 8 digits: switch to seconds for long deadlines. */
		if (deadline_ms < 100000000)
			snprintf(timeout, sizeof(timeout), "%llum", (unsigned long long)deadline_ms);
		else
			snprintf(timeout, sizeof(timeout), "%lluS",
				 (unsigned long long)(deadline_ms / 1000 % 100000000));
		h[n++] = (struct zt_h2_header){"grpc-timeout", 12, timeout, strlen(timeout)};
	}
	for (size_t i = 0; i < nmd; i++)
		h[n++] = (struct zt_h2_header){md[i].key, strlen(md[i].key), md[i].value,
					       strlen(md[i].value)};
	call = call_new(loop, false, max_msg);
	call->cb = *cbs;
	call->arg = arg;
	call->path = strdup(path);
	call->st = zt_h2_request(c, h, n, false, &client_stream_cbs, call, err);
	if (!call->st) {
		call_free(call);
		return NULL;
	}
	if (deadline_ms)
		zt_timer_start(loop, &call->deadline, deadline_ms, on_deadline, call);
	return call;
}

int zt_grpc_call_close_send(struct zt_grpc_call *call)
{
	if (!call->st || call->send_closed)
		return ZT_E_STATE;
	call->send_closed = true;
	return zt_h2_stream_end(call->st, NULL, 0);
}

/* ---- server ------------------------------------------------------------------------------ */

static void sv_on_end(struct zt_h2_stream *st, void *arg)
{
	struct zt_grpc_call *call = arg;

	(void)st;
	if (zt_grpc_reader_partial(&call->rd)) {
		fail_call(call, ZT_GRPC_INTERNAL, "request ended inside a message");
		return;
	}
	if (call->cb.on_half_close)
		call->cb.on_half_close(call, call->arg);
}

static const struct zt_h2_stream_cbs server_stream_cbs = {
	.on_data = st_on_data,
	.on_end = sv_on_end,
	.on_writable = st_on_writable,
	.on_close = st_on_close,
};

int zt_grpc_call_finish(struct zt_grpc_call *call, int code, const char *message)
{
	char scode[8], smsg[768];
	struct zt_h2_header h[3];
	size_t n = 0;
	int rv;

	if (!call->st || !call->server || call->send_closed)
		return ZT_E_STATE;
	snprintf(scode, sizeof(scode), "%d", code);
	pct_encode(message ? message : "", smsg, sizeof(smsg));
	call->send_closed = true;
	if (!call->headers_sent)
		h[n++] = ZT_H2_HDR("content-type", "application/grpc");
	h[n++] = (struct zt_h2_header){"grpc-status", 11, scode, strlen(scode)};
	if (smsg[0])
		h[n++] = (struct zt_h2_header){"grpc-message", 12, smsg, strlen(smsg)};
	if (!call->headers_sent) {
		call->headers_sent = true;
		rv = zt_h2_stream_respond(call->st, 200, h, n, true); /* trailers-only */
	} else {
		rv = zt_h2_stream_end(call->st, h, n);
	}
	set_status(call, code, message);
	return rv;
}

static void refuse(struct zt_h2_stream *st, int code, const char *msg)
{
	char scode[8];
	struct zt_h2_header h[] = {
		ZT_H2_HDR("content-type", "application/grpc"),
		{"grpc-status", 11, scode, 0},
		ZT_H2_HDR("grpc-message", msg),
	};

	snprintf(scode, sizeof(scode), "%d", code);
	h[1].value_len = strlen(scode);
	zt_h2_stream_set_cbs(st, NULL, NULL);
	zt_h2_stream_respond(st, 200, h, 3, true);
}

void zt_grpc_server_on_request(struct zt_h2_conn *c, struct zt_h2_stream *st,
			       const struct zt_h2_header *h, size_t n, bool end, void *arg)
{
	const struct zt_grpc_server *srv = arg;
	const struct zt_h2_header *method = NULL, *path = NULL, *ctype = NULL, *timeout = NULL;
	const struct zt_grpc_method *m = NULL;
	struct zt_grpc_call *call;
	size_t md_bytes = 0;

	for (size_t i = 0; i < n; i++) {
		if (hdr_is(&h[i], ":method"))
			method = &h[i];
		else if (hdr_is(&h[i], ":path"))
			path = &h[i];
		else if (hdr_is(&h[i], "content-type"))
			ctype = &h[i];
		else if (hdr_is(&h[i], "grpc-timeout"))
			timeout = &h[i];
	}
	if (!method || method->value_len != 4 || memcmp(method->value, "POST", 4) != 0) {
		zt_h2_stream_respond(st, 405, NULL, 0, true);
		return;
	}
	/* "application/grpc" optionally followed by "+format" or parameters; a plain prefix match
	 * would take application/grpc-web(-text), whose framing differs. */
	if (!ctype || ctype->value_len < 16 || memcmp(ctype->value, "application/grpc", 16) != 0 ||
	    (ctype->value_len > 16 && ctype->value[16] != '+' && ctype->value[16] != ';')) {
		zt_h2_stream_respond(st, 415, NULL, 0, true);
		return;
	}
	for (size_t i = 0; path && i < srv->nmethods; i++)
		if (strlen(srv->methods[i].path) == path->value_len &&
		    memcmp(srv->methods[i].path, path->value, path->value_len) == 0)
			m = &srv->methods[i];
	if (!m) {
		refuse(st, ZT_GRPC_UNIMPLEMENTED, "unknown method");
		return;
	}
	/* Metadata over the bound is refused by name, never cut silently (a call that lost its
	 * authorization entry would be told it has none). */
	size_t big = n;
	for (size_t i = 0; i < n; i++) {
		if (h[i].name_len == 0 || h[i].name[0] == ':')
			continue;
		md_bytes += h[i].name_len + h[i].value_len;
		if (big == n || h[i].value_len > h[big].value_len)
			big = i;
	}
	if (md_bytes > MAX_MD_BYTES) {
		char why[160];
		snprintf(why, sizeof(why), "request metadata larger than %u bytes (%.*s: %zu bytes)",
		         MAX_MD_BYTES, (int)(h[big].name_len > 64 ? 64 : h[big].name_len), h[big].name,
		         h[big].value_len);
		refuse(st, ZT_GRPC_RESOURCE_EXHAUSTED, why);
		return;
	}
	call = call_new(zt_h2_conn_sock(c)->loop, true, srv->max_msg);
	call->st = st;
	call->path = strdup(m->path);
	for (size_t i = 0; i < n && call->nmd < MAX_MD; i++) {
		if (h[i].name_len == 0 || h[i].name[0] == ':')
			continue;
		call->md[call->nmd].key = strndup(h[i].name, h[i].name_len);
		call->md[call->nmd].value = strndup(h[i].value, h[i].value_len);
		call->nmd++;
	}
	zt_h2_stream_set_cbs(st, &server_stream_cbs, call);
	if (timeout) {
		int64_t ms = zt_grpc_timeout_parse(timeout->value, timeout->value_len);
		if (ms >= 0)
			zt_timer_start(call->loop, &call->deadline, (uint64_t)ms, on_deadline, call);
	}
	m->handler(call, m->arg);
	if (end && call->st && call->cb.on_half_close)
		call->cb.on_half_close(call, call->arg);
}
