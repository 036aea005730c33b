/* HTTP/2 L7 of a waypoint session (see h2l7.h). Streams are paired by a struct pair that both
 * sessions' stream user data point to; whichever side closes first detaches itself, the
 * other end is reset. Output is flushed after every input call. */
#include "sim/sim-waypoint/h2l7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <nghttp2/nghttp2.h>

#include "runtime/buf.h"
#include "runtime/mem.h"

#define MAX_NV    100
#define DENY_BODY "RBAC: access denied"

struct pair {
	LIST_ENTRY(pair) link;
	struct wp_h2l7 *h;
	int32_t down_id, up_id; /* 0 while absent/closed */
	/* request headers as received, NUL-separated in hb */
	struct zt_buf hb;
	size_t names[MAX_NV], values[MAX_NV], lens[MAX_NV], vlens[MAX_NV];
	size_t nh;
	bool too_big;
	/* response headers from upstream */
	struct zt_buf rb;
	size_t rnames[MAX_NV], rvalues[MAX_NV], rlens[MAX_NV], rvlens[MAX_NV];
	size_t nrh;
	struct zt_buf req_body, resp_body;
	bool req_end, resp_end, responded, local; /* local: our own answer (403/503/431) */
	const char *local_body;
	size_t local_off;
	int status;
	char method[24], path[1024];
	const char *flags, *details;
	char details_buf[WP_AUTHZ_REASON_MAX + 64];
	uint64_t started;
	bool logged;
};

struct wp_h2l7 {
	const struct wp_h2l7_cbs *cbs;
	void *arg;
	nghttp2_session *ds, *us;
	LIST_HEAD(, pair) pairs;
	bool failed;
};

static void flush(struct wp_h2l7 *h)
{
	const uint8_t *d;
	ssize_t n;

	while (h->ds && (n = nghttp2_session_mem_send(h->ds, &d)) > 0)
		h->cbs->to_down(h->arg, d, (size_t)n);
	while (h->us && (n = nghttp2_session_mem_send(h->us, &d)) > 0)
		h->cbs->to_up(h->arg, d, (size_t)n);
}

static void log_pair(struct pair *p)
{
	if (p->logged)
		return;
	p->logged = true;
	struct wp_h2_done d = {
	        .method = p->method[0] ? p->method : "-",
	        .path = p->path[0] ? p->path : "-",
	        .status = p->status,
	        .flags = p->flags ? p->flags : "-",
	        .details = p->details ? p->details : "via_upstream",
	        .started_ms = p->started,
	};
	p->h->cbs->done(p->h->arg, &d);
}

static void pair_free(struct pair *p)
{
	LIST_REMOVE(p, link);
	zt_buf_clear(&p->hb);
	zt_buf_clear(&p->rb);
	zt_buf_clear(&p->req_body);
	zt_buf_clear(&p->resp_body);
	free(p);
}

static void maybe_free(struct pair *p)
{
	if (!p->down_id && !p->up_id)
		pair_free(p);
}

/* ---- data providers -------------------------------------------------------------------- */

static ssize_t read_buf(struct zt_buf *b, bool end, uint8_t *out, size_t len, uint32_t *flags)
{
	size_t n = zt_buf_len(b) < len ? zt_buf_len(b) : len;

	if (n) {
		memcpy(out, zt_buf_data(b), n);
		zt_buf_consume(b, n);
	}
	if (zt_buf_len(b) == 0 && end)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	else if (n == 0)
		return NGHTTP2_ERR_DEFERRED;
	return (ssize_t)n;
}

static ssize_t read_req(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
	struct pair *p = src->ptr;
	(void)s, (void)id, (void)ud;
	return read_buf(&p->req_body, p->req_end, buf, len, flags);
}

static ssize_t read_resp(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
	struct pair *p = src->ptr;
	(void)s, (void)id, (void)ud;
	if (p->local) {
		size_t left = strlen(p->local_body) - p->local_off, n = left < len ? left : len;
		memcpy(buf, p->local_body + p->local_off, n);
		p->local_off += n;
		if (p->local_off == strlen(p->local_body))
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	return read_buf(&p->resp_body, p->resp_end, buf, len, flags);
}

/* Our own answer on the downstream stream. */
static void answer(struct pair *p, int status, const char *body, const char *flags,
                   const char *details)
{
	char st[8], len[24];
	snprintf(st, sizeof(st), "%d", status);
	snprintf(len, sizeof(len), "%zu", strlen(body));
	nghttp2_nv nv[] = {
	        {(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), NGHTTP2_NV_FLAG_NONE},
	        {(uint8_t *)"content-type", (uint8_t *)"text/plain", 12, 10, NGHTTP2_NV_FLAG_NONE},
	        {(uint8_t *)"content-length", (uint8_t *)len, 14, strlen(len),
	         NGHTTP2_NV_FLAG_NONE},
	};
	nghttp2_data_provider dp = {.source.ptr = p, .read_callback = read_resp};
	p->local = true;
	p->local_body = body;
	p->responded = true;
	p->status = status;
	p->flags = flags;
	p->details = details;
	nghttp2_submit_response(p->h->ds, p->down_id, nv, 3, &dp);
}

/* ---- downstream (server session) -------------------------------------------------------- */

static int d_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct wp_h2l7 *h = ud;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct pair *p = xcalloc(1, sizeof(*p));
	p->h = h;
	p->down_id = f->hd.stream_id;
	p->started = h->cbs->now(h->arg);
	zt_buf_init(&p->hb, 0);
	zt_buf_init(&p->rb, 0);
	zt_buf_init(&p->req_body, 0);
	zt_buf_init(&p->resp_body, 0);
	LIST_INSERT_HEAD(&h->pairs, p, link);
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, p);
	return 0;
}

static int add_hdr(struct zt_buf *b, size_t *names, size_t *lens, size_t *values, size_t *vlens,
                   size_t *n, const uint8_t *name, size_t nl, const uint8_t *value, size_t vl)
{
	if (*n == MAX_NV || zt_buf_len(b) + nl + vl + 2 > WP_H2_MAX_HEADERS)
		return -1;
	names[*n] = zt_buf_len(b);
	lens[*n] = nl;
	zt_buf_append(b, name, nl);
	zt_buf_append(b, "", 1);
	values[*n] = zt_buf_len(b);
	vlens[*n] = vl;
	zt_buf_append(b, value, vl);
	zt_buf_append(b, "", 1);
	(*n)++;
	return 0;
}

static int d_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct pair *p = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	(void)flags, (void)ud;
	if (!p || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (add_hdr(&p->hb, p->names, p->lens, p->values, p->vlens, &p->nh, name, nl, value, vl))
		p->too_big = true;
	return 0;
}

static const char *hval(const struct pair *p, const char *name)
{
	const char *base = (const char *)zt_buf_data(&p->hb);
	for (size_t i = 0; i < p->nh; i++)
		if (!strcmp(base + p->names[i], name))
			return base + p->values[i];
	return NULL;
}

static void start_request(struct wp_h2l7 *h, struct pair *p)
{
	const char *base = (const char *)zt_buf_data(&p->hb);
	struct wp_header hs[MAX_NV];
	struct wp_decision dec;
	size_t nhs = 0;
	const char *m = hval(p, ":method"), *path = hval(p, ":path"), *auth = hval(p, ":authority");

	snprintf(p->method, sizeof(p->method), "%s", m ? m : "-");
	snprintf(p->path, sizeof(p->path), "%.1000s", path ? path : "-");
	if (p->too_big) {
		answer(p, 431, "request headers too large", "DPE", "request_headers_too_large");
		return;
	}
	for (size_t i = 0; i < p->nh; i++)
		if (base[p->names[i]] != ':')
			hs[nhs++] = (struct wp_header){base + p->names[i], base + p->values[i]};
	if (!auth)
		auth = hval(p, "host");
	struct wp_request rq = {.http = true,
	                        .method = m,
	                        .path = path,
	                        .host = auth,
	                        .headers = hs,
	                        .n_headers = nhs};
	h->cbs->decide(h->arg, &rq, &dec);
	if (!dec.allow) {
		snprintf(p->details_buf, sizeof(p->details_buf),
		         "rbac_access_denied_matched_policy[%s%s%s]",
		         dec.policy ? dec.policy->namespace_ : "", dec.policy ? "." : "",
		         dec.policy ? dec.policy->name : "none");
		answer(p, 403, DENY_BODY, "-", p->details_buf);
		return;
	}
	if (h->cbs->need_up(h->arg) < 0 || !h->us) {
		answer(p, 503, "no healthy upstream", "UH", "no_healthy_upstream");
		return;
	}
	nghttp2_nv nv[MAX_NV];
	size_t n = 0;
	for (size_t i = 0; i < p->nh; i++)
		nv[n++] =
		        (nghttp2_nv){(uint8_t *)base + p->names[i], (uint8_t *)base + p->values[i],
		                     p->lens[i], p->vlens[i], NGHTTP2_NV_FLAG_NONE};
	nghttp2_data_provider dp = {.source.ptr = p, .read_callback = read_req};
	int32_t id = nghttp2_submit_request(h->us, NULL, nv, n, p->req_end ? NULL : &dp, p);
	if (id < 0) {
		answer(p, 503, "upstream refused the request", "UC", "upstream_reset");
		return;
	}
	p->up_id = id;
}

static int d_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct wp_h2l7 *h = ud;
	struct pair *p = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	if (!p)
		return 0;
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		p->req_end = true;
		if (p->up_id)
			nghttp2_session_resume_data(h->us, p->up_id);
	}
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		start_request(h, p);
	return 0;
}

static int d_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
                  void *ud)
{
	struct wp_h2l7 *h = ud;
	struct pair *p = nghttp2_session_get_stream_user_data(s, id);
	(void)flags;
	if (!p || p->local)
		return 0; /* answered already: the body is dropped */
	if (zt_buf_len(&p->req_body) + len > WP_H2_MAX_QUEUED) {
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_ENHANCE_YOUR_CALM);
		return 0;
	}
	zt_buf_append(&p->req_body, d, len);
	if (p->up_id)
		nghttp2_session_resume_data(h->us, p->up_id);
	return 0;
}

static int d_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct wp_h2l7 *h = ud;
	struct pair *p = nghttp2_session_get_stream_user_data(s, id);
	(void)code;
	if (!p)
		return 0;
	p->down_id = 0;
	if (p->up_id && h->us)
		nghttp2_submit_rst_stream(h->us, NGHTTP2_FLAG_NONE, p->up_id, NGHTTP2_CANCEL);
	if (!p->status)
		p->status = 0, p->flags = "DC", p->details = "downstream_remote_disconnect";
	log_pair(p);
	if (p->up_id && h->us)
		nghttp2_session_set_stream_user_data(h->us, p->up_id, NULL);
	p->up_id = 0;
	maybe_free(p);
	return 0;
}

/* ---- upstream (client session) ----------------------------------------------------------- */

static int u_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct pair *p = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	(void)flags, (void)ud;
	if (!p || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_RESPONSE)
		return 0;
	if (nl == 7 && !memcmp(name, ":status", 7)) {
		/* nghttp2 checks for three digits only: "001" would go downstream as it is. An
		 * invalid status resets the stream (503 downstream, as any upstream reset). */
		if (vl != 3 || value[0] < '1' || value[0] > '5')
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		if (value[0] == '1')
			return 0; /* interim */
	}
	if (add_hdr(&p->rb, p->rnames, p->rlens, p->rvalues, p->rvlens, &p->nrh, name, nl, value,
	            vl))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int u_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct wp_h2l7 *h = ud;
	struct pair *p = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	if (!p || !p->down_id)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !p->responded && p->nrh) {
		const char *base = (const char *)zt_buf_data(&p->rb);
		nghttp2_nv nv[MAX_NV];
		for (size_t i = 0; i < p->nrh; i++) {
			nv[i] = (nghttp2_nv){(uint8_t *)base + p->rnames[i],
			                     (uint8_t *)base + p->rvalues[i], p->rlens[i],
			                     p->rvlens[i], NGHTTP2_NV_FLAG_NONE};
			if (!strcmp(base + p->rnames[i], ":status"))
				p->status = (int)strtol(base + p->rvalues[i], NULL, 10);
		}
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
			p->resp_end = true;
		nghttp2_data_provider dp = {.source.ptr = p, .read_callback = read_resp};
		p->responded = true;
		nghttp2_submit_response(h->ds, p->down_id, nv, p->nrh, &dp);
		return 0;
	}
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		p->resp_end = true;
		nghttp2_session_resume_data(h->ds, p->down_id);
	}
	return 0;
}

static int u_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
                  void *ud)
{
	struct wp_h2l7 *h = ud;
	struct pair *p = nghttp2_session_get_stream_user_data(s, id);
	(void)flags;
	if (!p || !p->down_id)
		return 0;
	if (zt_buf_len(&p->resp_body) + len > WP_H2_MAX_QUEUED) {
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_ENHANCE_YOUR_CALM);
		return 0;
	}
	zt_buf_append(&p->resp_body, d, len);
	nghttp2_session_resume_data(h->ds, p->down_id);
	return 0;
}

static int u_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct wp_h2l7 *h = ud;
	struct pair *p = nghttp2_session_get_stream_user_data(s, id);
	(void)s;
	if (!p)
		return 0;
	p->up_id = 0;
	if (p->down_id && !(p->responded && p->resp_end)) {
		if (!p->responded)
			answer(p, 503, "upstream reset", "UC",
			       "upstream_reset_before_response_started");
		else
			nghttp2_submit_rst_stream(h->ds, NGHTTP2_FLAG_NONE, p->down_id,
			                          code ? code : NGHTTP2_INTERNAL_ERROR);
	}
	maybe_free(p);
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int new_session(nghttp2_session **out, bool server, struct wp_h2l7 *h)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
	                                {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, WP_H2_MAX_HEADERS}};
	int rc;

	if (nghttp2_session_callbacks_new(&cb))
		return -1;
	if (server) {
		nghttp2_session_callbacks_set_on_begin_headers_callback(cb, d_begin);
		nghttp2_session_callbacks_set_on_header_callback(cb, d_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cb, d_frame);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, d_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(cb, d_close);
		rc = nghttp2_session_server_new(out, cb, h);
	} else {
		nghttp2_session_callbacks_set_on_header_callback(cb, u_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cb, u_frame);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, u_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(cb, u_close);
		rc = nghttp2_session_client_new(out, cb, h);
	}
	nghttp2_session_callbacks_del(cb);
	if (rc || nghttp2_submit_settings(*out, NGHTTP2_FLAG_NONE, set, 2))
		return -1;
	return 0;
}

int wp_h2l7_new(struct wp_h2l7 **out, const struct wp_h2l7_cbs *cbs, void *arg)
{
	struct wp_h2l7 *h = xcalloc(1, sizeof(*h));

	h->cbs = cbs;
	h->arg = arg;
	LIST_INIT(&h->pairs);
	if (new_session(&h->ds, true, h) < 0 || new_session(&h->us, false, h) < 0) {
		wp_h2l7_free(h);
		return -1;
	}
	*out = h;
	return 0;
}

void wp_h2l7_free(struct wp_h2l7 *h)
{
	if (!h)
		return;
	nghttp2_session_del(h->ds);
	nghttp2_session_del(h->us);
	while (!LIST_EMPTY(&h->pairs))
		pair_free(LIST_FIRST(&h->pairs));
	free(h);
}

int wp_h2l7_down(struct wp_h2l7 *h, const uint8_t *p, size_t n)
{
	ssize_t r = nghttp2_session_mem_recv(h->ds, p, n);
	flush(h);
	return r < 0 || (size_t)r != n ? -1 : 0;
}

int wp_h2l7_up(struct wp_h2l7 *h, const uint8_t *p, size_t n)
{
	ssize_t r = nghttp2_session_mem_recv(h->us, p, n);
	flush(h);
	if (r < 0 || (size_t)r != n) {
		wp_h2l7_up_gone(h);
		return -1;
	}
	return 0;
}

void wp_h2l7_up_gone(struct wp_h2l7 *h)
{
	struct pair *p, *next;

	for (p = LIST_FIRST(&h->pairs); p; p = next) {
		next = LIST_NEXT(p, link);
		if (!p->up_id)
			continue;
		nghttp2_session_set_stream_user_data(h->us, p->up_id, NULL);
		p->up_id = 0;
		if (p->down_id && !p->responded)
			answer(p, 503, "upstream reset", "UC",
			       "upstream_reset_before_response_started");
		else if (p->down_id && !p->resp_end)
			nghttp2_submit_rst_stream(h->ds, NGHTTP2_FLAG_NONE, p->down_id,
			                          NGHTTP2_INTERNAL_ERROR);
	}
	/* A fresh client session for the next upstream. */
	nghttp2_session_del(h->us);
	h->us = NULL;
	if (new_session(&h->us, false, h) < 0)
		h->us = NULL;
	flush(h);
}

bool wp_h2l7_idle(const struct wp_h2l7 *h)
{
	return LIST_EMPTY(&h->pairs) && !nghttp2_session_want_write(h->ds);
}
