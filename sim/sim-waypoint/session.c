/* One CONNECT stream into the waypoint (see session.h). Requests are parsed with
 * libhttp-parser and re-sent in HTTP/1.1 form (head rebuilt from the parsed pieces, body
 * re-framed as received: Content-Length or chunked); responses are copied as they come,
 * parsed only to find where each ends. Invariant: at most one request is in flight upstream
 * per session, so responses leave in request order; the next request is not even parsed
 * until the current response is complete. */
#include "sim/sim-waypoint/session.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <http_parser.h>

#include "hbone/close.h"
#include "hbone/hbone.h"
#include "hbone/pool.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "sim/sim-waypoint/authz.h"
#include "sim/sim-waypoint/h2l7.h"
#include "sim/sim-waypoint/metrics.h"
#include "state/store.h"

ZT_LOG_MODULE("session");

#define MAX_QUEUED (8u << 20) /* bytes queued towards one side before the session fails */
#define DENY_BODY  "RBAC: access denied"

enum mode { SNIFF, HTTP1, H2, TCP };
enum rstate { R_IDLE, R_HEAD, R_BODY, R_WAIT }; /* request side of HTTP1 */

struct sess {
	struct wp *wp;
	struct zt_h2_stream *in, *up;
	struct zt_pool_req *req;
	bool up_ready, up_ended, in_ended, closing;
	bool in_fin, up_fin; /* we ended our side */
	enum mode mode;
	struct zt_timer sniff;
	/* who and where */
	char principal[ZT_SPIFFE_STR_SIZE];
	struct zt_spiffe peer;
	bool has_peer;
	struct zt_ip src_ip;
	struct zt_hbone_inbound target;
	struct zt_service *svc;  /* new reference, or NULL (workload-addressed) */
	struct zt_workload *dst; /* chosen endpoint, new reference */
	uint16_t dst_port;
	enum zt_app_protocol proto;
	char dst_principal[ZT_SPIFFE_STR_SIZE];
	/* HTTP1 request side */
	http_parser rp;
	enum rstate rs;
	struct zt_buf inbuf;    /* received from downstream, not parsed yet */
	struct wp_h1_head head; /* url and headers of the current request */
	bool allowed, chunked, close_after, head_req;
	struct wp_decision dec;
	char method[24], path[1024];
	uint64_t started;
	struct zt_buf upq;  /* for upstream while it is being connected */
	struct wp_h2l7 *h2; /* H2 mode */
	/* HTTP1 response side */
	http_parser sp;
	bool resp_done;
	/* flow control: bytes received but not yet acknowledged */
	size_t owe_in, owe_up;
	struct zt_defer reap;
};

static size_t live;
static const http_parser_settings req_settings, resp_settings;

size_t wp_session_live(void)
{
	return live;
}

/* ---- ending ------------------------------------------------------------------------------ */

static void on_reap(struct zt_defer *d, void *arg)
{
	struct sess *s = arg;

	(void)d;
	zt_service_unref(s->svc);
	zt_workload_unref(s->dst);
	wp_h2l7_free(s->h2);
	zt_buf_clear(&s->inbuf);
	wp_h1_head_clear(&s->head);
	zt_buf_clear(&s->upq);
	free(s);
	live--;
}

/* A stream we are done with stays its connection's until it closes; bytes still arriving
 * are acknowledged and dropped. */
static void drop_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)p;
	(void)arg;
	zt_h2_stream_consume(st, len);
}

static const struct zt_h2_stream_cbs detached_cbs = {.on_data = drop_data};

static void detach(struct zt_h2_stream **st, bool *fin, bool clean)
{
	if (!*st)
		return;
	zt_h2_stream_set_cbs(*st, &detached_cbs, NULL);
	if (!clean)
		zt_h2_stream_reset(*st, 8 /* CANCEL */);
	else if (!*fin)
		zt_h2_stream_end(*st, NULL, 0);
	*fin = true;
	*st = NULL;
}

/* Ends both sides (reset when !clean) and frees the session from the loop. */
static void finish(struct sess *s, bool clean)
{
	if (s->closing)
		return;
	s->closing = true;
	zt_timer_stop(&s->sniff);
	if (s->req) {
		zt_pool_req_cancel(s->req);
		s->req = NULL;
	}
	detach(&s->in, &s->in_fin, clean);
	detach(&s->up, &s->up_fin, clean);
	zt_defer_start(s->wp->loop, &s->reap, on_reap, s);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void to_in(struct sess *s, const void *p, size_t n)
{
	if (!s->in || s->closing || !n)
		return;
	if (zt_h2_stream_write_all(s->in, p, n) < 0 || zt_h2_stream_buffered(s->in) > MAX_QUEUED)
		finish(s, false);
}

static void to_up(struct sess *s, const void *p, size_t n)
{
	if (!n || s->closing)
		return;
	if (!s->up_ready) {
		if (zt_buf_len(&s->upq) + n > MAX_QUEUED || zt_buf_append(&s->upq, p, n) < 0)
			finish(s, false);
		return;
	}
	if (zt_h2_stream_write_all(s->up, p, n) < 0 || zt_h2_stream_buffered(s->up) > MAX_QUEUED)
		finish(s, false);
}

/* Acknowledges n bytes read from `from` once the other side is not backed up. */
static void ack(struct zt_h2_stream *from, struct zt_h2_stream *to, size_t *owe, size_t n)
{
	*owe += n;
	if (from && *owe && (!to || zt_h2_stream_writable(to))) {
		zt_h2_stream_consume(from, *owe);
		*owe = 0;
	}
}

/* ---- telemetry ----------------------------------------------------------------------------- */

static void log_request(struct sess *s, int code, const char *flags, const char *details)
{
	uint64_t ms = zt_loop_now(s->wp->loop) - s->started;
	char dst[ZT_ADDR_STRLEN] = "-";

	if (s->dst && s->dst->n_ips)
		zt_ip_format(&s->dst->ips[0], dst, sizeof(dst));
	zt_info("access method=%s path=\"%s\" status=%d flags=%s details=%s "
	        "src.identity=\"%s\" dst.identity=\"%s\" dst.service=%s dst.workload=%s "
	        "dst.addr=%s:%u duration=%llums",
	        s->method[0] ? s->method : "-", s->path[0] ? s->path : "-", code, flags, details,
	        s->principal[0] ? s->principal : "-", s->dst_principal[0] ? s->dst_principal : "-",
	        s->svc ? s->svc->hostname : "-", s->dst ? s->dst->name : "-", dst, s->dst_port,
	        (unsigned long long)ms);
	if (s->dec.audit[0] || s->dec.dry_run[0])
		zt_info("audit method=%s path=\"%s\" audit=%s dry_run=%s", s->method, s->path,
		        s->dec.audit[0] ? s->dec.audit : "-",
		        s->dec.dry_run[0] ? s->dec.dry_run : "-");
	struct wp_request_record r = {
	        .src_principal = s->principal[0] ? s->principal : NULL,
	        .src_ns = s->has_peer ? s->peer.ns : NULL,
	        .src_workload = s->has_peer ? s->peer.sa : NULL,
	        .dst_principal = s->dst_principal[0] ? s->dst_principal : NULL,
	        .dst_ns = s->dst ? s->dst->ns : NULL,
	        .dst_workload =
	                s->dst ? (s->dst->workload_name[0] ? s->dst->workload_name : s->dst->name)
	                       : NULL,
	        .dst_service = s->svc ? s->svc->hostname : NULL,
	        .dst_service_name = s->svc ? s->svc->name : NULL,
	        .dst_service_ns = s->svc ? s->svc->ns : NULL,
	        .protocol = s->mode == HTTP1 ? "http"
	                    : s->mode == H2  ? (s->proto == ZT_APP_PROTOCOL_GRPC ? "grpc" : "http")
	                                     : "tcp",
	        .code = code,
	        .flags = flags,
	        .duration_ms = ms,
	};
	wp_metrics_record(s->wp->metrics, &r);
}

/* A complete local answer (403, 400, 431, 503); close: then end the stream. */
static void respond_local(struct sess *s, int code, const char *text, const char *body, bool close)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\ncontent-type: text/plain\r\n"
	                 "%s\r\n",
	                 code, text, strlen(body), close ? "connection: close\r\n" : "");
	to_in(s, head, (size_t)n);
	to_in(s, body, strlen(body));
	if (close)
		finish(s, true);
}

/* ---- upstream ------------------------------------------------------------------------------ */

static void pump_requests(struct sess *s);
static void up_gone(struct sess *s, const char *why);

static void on_up_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n, bool end,
                          void *arg)
{
	struct sess *s = arg;
	int status = 0;

	(void)st;
	(void)end;
	if (s->up_ready || s->closing)
		return;
	for (size_t i = 0; i < n; i++)
		if (h[i].name_len == 7 && !memcmp(h[i].name, ":status", 7))
			status = (int)strtol(h[i].value, NULL, 10);
	if (status != 200) {
		zt_warn("upstream %s:%u answered CONNECT with %d", s->dst ? s->dst->name : "-",
		        s->dst_port, status);
		detach(&s->up, &s->up_fin, false);
		up_gone(s, "refused");
		return;
	}
	s->up_ready = true;
	if (zt_buf_len(&s->upq)) {
		to_up(s, zt_buf_data(&s->upq), zt_buf_len(&s->upq));
		zt_buf_consume(&s->upq, zt_buf_len(&s->upq));
	}
	if (s->in_ended && s->mode == TCP && !s->up_fin) {
		s->up_fin = true;
		zt_h2_stream_end(s->up, NULL, 0);
	}
}

static void response_complete(struct sess *s)
{
	char details[64];
	snprintf(details, sizeof(details), "via_upstream");
	log_request(s, (int)s->sp.status_code, "-", details);
	s->rs = R_IDLE;
	s->resp_done = false;
	if (s->close_after || (s->in_ended && zt_buf_len(&s->inbuf) == 0)) {
		finish(s, true);
		return;
	}
	pump_requests(s);
}

static void on_up_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct sess *s = arg;

	if (s->closing)
		return;
	if (s->mode == TCP) {
		to_in(s, p, len);
		ack(st, s->in, &s->owe_up, len);
		return;
	}
	if (s->mode == H2) {
		if (wp_h2l7_up(s->h2, p, len) < 0)
			detach(&s->up, &s->up_fin, false);
		ack(st, s->in, &s->owe_up, len);
		return;
	}
	size_t used = http_parser_execute(&s->sp, &resp_settings, (const char *)p, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&s->sp);
	if (e != HPE_OK && e != HPE_PAUSED) {
		zt_warn("malformed response from %s: %s", s->dst ? s->dst->name : "-",
		        http_errno_name(e));
		log_request(s, 502, "UPE", "upstream_protocol_error");
		finish(s, false);
		return;
	}
	to_in(s, p, used);
	ack(st, s->in, &s->owe_up, len);
	if (s->resp_done) {
		http_parser_pause(&s->sp, 0);
		response_complete(s);
	}
}

/* The upstream stream is gone (why NULL: it ended cleanly). */
static void up_gone(struct sess *s, const char *why)
{
	detach(&s->up, &s->up_fin, why == NULL);
	s->up_ready = false;
	if (s->closing)
		return;
	if (s->mode == H2) {
		zt_buf_consume(&s->upq, zt_buf_len(&s->upq));
		wp_h2l7_up_gone(s->h2);
		return;
	}
	if (s->mode == TCP) {
		if (why || s->in_ended || !s->in)
			finish(s, why == NULL);
		return;
	}
	if (s->rs == R_WAIT && !why) {
		/* A response without a length ends with the stream. */
		http_parser_execute(&s->sp, &resp_settings, NULL, 0);
		if (s->resp_done) {
			http_parser_pause(&s->sp, 0);
			response_complete(s);
			return;
		}
	}
	if (s->rs == R_WAIT || s->rs == R_BODY) {
		log_request(s, 503, "UC", "upstream_reset_before_response_started");
		respond_local(s, 503, "Service Unavailable", "upstream connect error or disconnect",
		              true);
	}
}

static void on_up_end(struct zt_h2_stream *st, void *arg)
{
	struct sess *s = arg;

	(void)st;
	s->up_ended = true;
	if (s->mode == TCP) {
		if (s->in && !s->in_fin) {
			s->in_fin = true;
			zt_h2_stream_end(s->in, NULL, 0);
		}
		if (s->in_ended)
			up_gone(s, NULL);
		return;
	}
	/* HTTP: the server closed its connection; a new one serves the next request. */
	up_gone(s, NULL);
}

static void on_up_writable(struct zt_h2_stream *st, void *arg)
{
	struct sess *s = arg;
	ack(s->in, st, &s->owe_in, 0);
}

static void on_up_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	struct sess *s = arg;

	(void)st;
	s->up = NULL;
	s->up_fin = true;
	up_gone(s, code == 0 ? NULL : "reset");
}

static const struct zt_h2_stream_cbs up_cbs = {
        .on_headers = on_up_headers,
        .on_data = on_up_data,
        .on_end = on_up_end,
        .on_writable = on_up_writable,
        .on_close = on_up_close,
};

static void on_up_ready(struct zt_h2_stream *st, const struct zt_pool_result *r, void *arg)
{
	struct sess *s = arg;

	s->req = NULL;
	if (!st) {
		zt_warn("HBONE to %s:%u failed: %s %s", s->dst ? s->dst->name : "-", s->dst_port,
		        zt_close_flag(r->flag), r->reason[0] ? r->reason : zt_strerror(r->err));
		if (s->mode == TCP) {
			log_request(s, 503, "UF", "upstream_connect_failure");
			finish(s, false);
			return;
		}
		log_request(s, 503, "UF", "upstream_connect_failure");
		respond_local(s, 503, "Service Unavailable", "upstream connect error", true);
		return;
	}
	s->up = st;
	if (r->peer)
		zt_spiffe_format(r->peer, s->dst_principal, sizeof(s->dst_principal));
}

/* Opens the HBONE stream to the chosen endpoint with our identity (spec §18: :authority
 * podIP:targetPort, no forwarded header). */
static int open_upstream(struct sess *s)
{
	struct zt_hbone_authority a;
	struct zt_hbone_req hr;
	struct zt_sockaddr sa;
	struct zt_pool_key key;
	int rc;

	if (!s->wp->id || !s->dst || !s->dst->n_ips)
		return ZT_E_STATE;
	memset(&sa, 0, sizeof(sa));
	sa.ip = s->dst->ips[0];
	sa.port = s->dst_port;
	zt_hbone_authority_from_addr(&a, &sa);
	if ((rc = zt_hbone_req_build(&hr, &(struct zt_hbone_connect){.target = &a})) < 0)
		return rc;
	memset(&key, 0, sizeof(key));
	key.identity = s->wp->id;
	key.dst_ids = s->dst->identity;
	key.n_dst_ids = 1;
	key.dst.ip = s->dst->ips[0];
	key.dst.port = 15008;
	s->up_ready = s->up_ended = false;
	return zt_pool_connect(s->wp->pool, &key, hr.h, hr.n, &up_cbs, s, on_up_ready, s, &s->req);
}

/* ---- HTTP/1.1 requests ----------------------------------------------------------------------- */

static struct sess *of(http_parser *p)
{
	return p->data;
}

static int on_msg_begin(http_parser *p)
{
	struct sess *s = of(p);

	s->rs = R_HEAD;
	wp_h1_head_reset(&s->head);
	s->started = zt_loop_now(s->wp->loop);
	s->method[0] = s->path[0] = '\0';
	memset(&s->dec, 0, sizeof(s->dec));
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	return wp_h1_head_url(&of(p)->head, at, len);
}

static int on_hfield(http_parser *p, const char *at, size_t len)
{
	return wp_h1_head_field(&of(p)->head, at, len);
}

static int on_hvalue(http_parser *p, const char *at, size_t len)
{
	return wp_h1_head_value(&of(p)->head, at, len);
}

static int on_headers_done(http_parser *p)
{
	struct sess *s = of(p);
	struct wp_header hs[WP_MAX_HEADER_COUNT];
	struct zt_buf out;
	const char *url, *host;

	if (wp_h1_head_finish(&s->head, hs, &url, &host) < 0)
		return -1;
	snprintf(s->method, sizeof(s->method), "%s", http_method_str(p->method));
	snprintf(s->path, sizeof(s->path), "%.1000s", url);
	struct wp_request rq = {
	        .principal = s->principal[0] ? s->principal + strlen("spiffe://") : NULL,
	        .src_ns = s->has_peer ? s->peer.ns : NULL,
	        .src_sa = s->has_peer ? s->peer.sa : NULL,
	        .src_ip = s->src_ip,
	        .dst_ip = s->target.target.is_host ? (struct zt_ip){0} : s->target.target.addr.ip,
	        .dst_port = s->target.target.port,
	        .service = s->svc ? s->svc->key : NULL,
	        .http = true,
	        .method = s->method,
	        .path = url,
	        .host = host,
	        .headers = hs,
	        .n_headers = s->head.nh,
	};
	s->allowed = wp_authz_check(s->wp->cfg, &rq, &s->dec);
	s->chunked = (p->flags & F_CHUNKED) != 0;
	s->close_after = !http_should_keep_alive(p);
	s->head_req = p->method == HTTP_HEAD;
	s->rs = R_BODY;
	if (!s->allowed)
		return 0;
	http_parser_init(&s->sp, HTTP_RESPONSE);
	s->sp.data = s;
	s->resp_done = false;
	/* Rebuild the head for upstream. */
	zt_buf_init(&out, 0);
	wp_h1_head_format(&out, s->method, url, hs, s->head.nh);
	if (!s->up && !s->req && open_upstream(s) < 0) {
		zt_buf_clear(&out);
		s->allowed = false;
		snprintf(s->dec.reason, sizeof(s->dec.reason), "no upstream");
		return 0;
	}
	to_up(s, zt_buf_data(&out), zt_buf_len(&out));
	zt_buf_clear(&out);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct sess *s = of(p);
	char n[24];

	if (!s->allowed)
		return 0;
	if (s->chunked) {
		int k = snprintf(n, sizeof(n), "%zx\r\n", len);
		to_up(s, n, (size_t)k);
		to_up(s, at, len);
		to_up(s, "\r\n", 2);
	} else {
		to_up(s, at, len);
	}
	return 0;
}

static int on_msg_done(http_parser *p)
{
	struct sess *s = of(p);

	if (s->allowed) {
		if (s->chunked)
			to_up(s, "0\r\n\r\n", 5);
		s->rs = R_WAIT;
		http_parser_pause(p, 1); /* the next request waits for this response */
		return 0;
	}
	const char *name = s->dec.policy ? s->dec.policy->name : "none";
	const char *ns = s->dec.policy ? s->dec.policy->namespace_ : "";
	char details[WP_AUTHZ_REASON_MAX + 64];
	if (!strcmp(s->dec.reason, "no upstream")) {
		log_request(s, 503, "UH", "no_healthy_upstream");
		respond_local(s, 503, "Service Unavailable", "no healthy upstream", s->close_after);
	} else {
		snprintf(details, sizeof(details), "rbac_access_denied_matched_policy[%s%s%s]", ns,
		         ns[0] ? "." : "", name);
		zt_info("denied method=%s path=\"%s\" reason=\"%s\"", s->method, s->path,
		        s->dec.reason);
		log_request(s, 403, "-", details);
		respond_local(s, 403, "Forbidden", DENY_BODY, s->close_after);
	}
	s->rs = R_IDLE;
	return 0;
}

static const http_parser_settings req_settings = {
        .on_message_begin = on_msg_begin,
        .on_url = on_url,
        .on_header_field = on_hfield,
        .on_header_value = on_hvalue,
        .on_headers_complete = on_headers_done,
        .on_body = on_body,
        .on_message_complete = on_msg_done,
};

static int on_resp_headers(http_parser *p)
{
	struct sess *s = of(p);
	return s->head_req ? 1 : 0; /* a response to HEAD has no body */
}

static int on_resp_done(http_parser *p)
{
	struct sess *s = of(p);
	if (p->status_code >= 100 && p->status_code < 200)
		return 0; /* interim: the final response follows */
	s->resp_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings resp_settings = {
        .on_headers_complete = on_resp_headers,
        .on_message_complete = on_resp_done,
};

/* Parses what downstream sent while no response is outstanding. */
static void pump_requests(struct sess *s)
{
	while (!s->closing && s->rs != R_WAIT && zt_buf_len(&s->inbuf)) {
		const char *p = (const char *)zt_buf_data(&s->inbuf);
		size_t len = zt_buf_len(&s->inbuf);
		if (HTTP_PARSER_ERRNO(&s->rp) == HPE_PAUSED)
			http_parser_pause(&s->rp, 0);
		size_t used = http_parser_execute(&s->rp, &req_settings, p, len);
		enum http_errno e = HTTP_PARSER_ERRNO(&s->rp);
		zt_buf_consume(&s->inbuf, used);
		ack(s->in, s->up, &s->owe_in, used);
		if (e == HPE_OK || e == HPE_PAUSED) {
			if (s->rp.upgrade) {
				respond_local(s, 400, "Bad Request", "upgrade not supported", true);
				return;
			}
			continue;
		}
		bool big = s->head.too_big || e == HPE_HEADER_OVERFLOW;
		zt_warn("bad request from %s: %s", s->principal[0] ? s->principal : "-",
		        big ? "headers too large" : http_errno_description(e));
		if (!s->method[0])
			snprintf(s->method, sizeof(s->method), "-");
		log_request(s, big ? 431 : 400, "DPE",
		            big ? "request_headers_too_large" : "http1.codec_error");
		respond_local(s, big ? 431 : 400,
		              big ? "Request Header Fields Too Large" : "Bad Request",
		              big ? "request headers too large" : "bad request", true);
		return;
	}
	if (!s->closing && s->in_ended && zt_buf_len(&s->inbuf) == 0 && s->rs == R_IDLE)
		finish(s, true);
}

/* ---- downstream ------------------------------------------------------------------------------ */

/* ---- HTTP/2 ------------------------------------------------------------------------------- */

static void h2_decide(void *arg, struct wp_request *rq, struct wp_decision *out)
{
	struct sess *s = arg;

	rq->principal = s->principal[0] ? s->principal + strlen("spiffe://") : NULL;
	rq->src_ns = s->has_peer ? s->peer.ns : NULL;
	rq->src_sa = s->has_peer ? s->peer.sa : NULL;
	rq->src_ip = s->src_ip;
	rq->dst_ip = s->target.target.is_host ? (struct zt_ip){0} : s->target.target.addr.ip;
	rq->dst_port = s->target.target.port;
	rq->service = s->svc ? s->svc->key : NULL;
	if (!wp_authz_check(s->wp->cfg, rq, out))
		zt_info("denied method=%s path=\"%.1000s\" reason=\"%s\"",
		        rq->method ? rq->method : "-", rq->path ? rq->path : "-", out->reason);
	s->dec = *out;
}

static void h2_to_down(void *arg, const uint8_t *p, size_t n)
{
	to_in(arg, p, n);
}

static void h2_to_up(void *arg, const uint8_t *p, size_t n)
{
	to_up(arg, p, n);
}

static int h2_need_up(void *arg)
{
	struct sess *s = arg;
	return s->up || s->req ? 0 : open_upstream(s);
}

static void h2_done(void *arg, const struct wp_h2_done *d)
{
	struct sess *s = arg;

	snprintf(s->method, sizeof(s->method), "%s", d->method);
	snprintf(s->path, sizeof(s->path), "%s", d->path);
	s->started = d->started_ms;
	log_request(s, d->status, d->flags, d->details);
}

static uint64_t h2_now(void *arg)
{
	struct sess *s = arg;
	return zt_loop_now(s->wp->loop);
}

static const struct wp_h2l7_cbs h2_cbs = {
        .decide = h2_decide,
        .to_down = h2_to_down,
        .to_up = h2_to_up,
        .need_up = h2_need_up,
        .done = h2_done,
        .now = h2_now,
};

static void h2_input(struct sess *s)
{
	size_t n = zt_buf_len(&s->inbuf);

	if (!n || s->closing)
		return;
	int rc = wp_h2l7_down(s->h2, zt_buf_data(&s->inbuf), n);
	zt_buf_consume(&s->inbuf, n);
	ack(s->in, s->up, &s->owe_in, n);
	if (rc < 0) {
		zt_warn("HTTP/2 from %s failed: protocol error",
		        s->principal[0] ? s->principal : "-");
		finish(s, true);
	}
}

static void start_mode(struct sess *s, enum mode m)
{
	s->mode = m;
	zt_timer_stop(&s->sniff);
	if (m == H2) {
		if (wp_h2l7_new(&s->h2, &h2_cbs, s) < 0) {
			finish(s, false);
			return;
		}
		h2_input(s);
		return;
	}
	if (m == HTTP1) {
		http_parser_init(&s->rp, HTTP_REQUEST);
		s->rp.data = s;
		pump_requests(s);
		return;
	}
	/* L4: one decision for the connection, HTTP-only rule parts unknown. */
	struct wp_request rq = {
	        .principal = s->principal[0] ? s->principal + strlen("spiffe://") : NULL,
	        .src_ns = s->has_peer ? s->peer.ns : NULL,
	        .src_sa = s->has_peer ? s->peer.sa : NULL,
	        .src_ip = s->src_ip,
	        .dst_ip = s->target.target.is_host ? (struct zt_ip){0} : s->target.target.addr.ip,
	        .dst_port = s->target.target.port,
	        .service = s->svc ? s->svc->key : NULL,
	};
	s->started = zt_loop_now(s->wp->loop);
	if (!wp_authz_check(s->wp->cfg, &rq, &s->dec)) {
		zt_info("denied connection from %s to %s: %s", s->principal,
		        s->svc ? s->svc->hostname : "-", s->dec.reason);
		log_request(s, 0, "-", "rbac_access_denied");
		finish(s, false);
		return;
	}
	if (open_upstream(s) < 0) {
		log_request(s, 0, "UH", "no_healthy_upstream");
		finish(s, false);
		return;
	}
	if (zt_buf_len(&s->inbuf)) {
		to_up(s, zt_buf_data(&s->inbuf), zt_buf_len(&s->inbuf));
		ack(s->in, NULL, &s->owe_in, zt_buf_len(&s->inbuf));
		zt_buf_consume(&s->inbuf, zt_buf_len(&s->inbuf));
	}
}

static void on_sniff_timeout(struct zt_timer *t, void *arg)
{
	(void)t;
	start_mode(arg, TCP);
}

/* HTTP/1.1 if the first bytes are a request line's method token and a space. */
static void sniff(struct sess *s)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	const uint8_t *p = zt_buf_data(&s->inbuf);
	size_t n = zt_buf_len(&s->inbuf), i = 0;

	if (!memcmp(p, preface, n < sizeof(preface) - 1 ? n : sizeof(preface) - 1)) {
		if (n >= sizeof(preface) - 1)
			start_mode(s, H2);
		else if (s->in_ended)
			start_mode(s, TCP);
		return; /* a prefix of the preface: wait */
	}

	while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z')
		i++;
	if (i == n && n < 16 && !s->in_ended)
		return; /* undecided: wait for more */
	start_mode(s, i > 0 && i < n && p[i] == ' ' ? HTTP1 : TCP);
}

static void on_in_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct sess *s = arg;

	if (s->closing) {
		zt_h2_stream_consume(st, len);
		return;
	}
	if (s->mode == TCP) {
		to_up(s, p, len);
		ack(st, s->up, &s->owe_in, len);
		return;
	}
	if (zt_buf_append(&s->inbuf, p, len) < 0) {
		finish(s, false);
		return;
	}
	if (s->mode == SNIFF)
		sniff(s);
	else if (s->mode == H2)
		h2_input(s);
	else
		pump_requests(s);
}

static void on_in_end(struct zt_h2_stream *st, void *arg)
{
	struct sess *s = arg;

	(void)st;
	s->in_ended = true;
	if (s->closing)
		return;
	if (s->mode == SNIFF) {
		sniff(s);
		if (s->mode == SNIFF)
			start_mode(s, TCP);
	}
	if (s->mode == H2) {
		finish(s, true);
		return;
	}
	if (s->mode == TCP) {
		if (s->up && s->up_ready && !s->up_fin) {
			s->up_fin = true;
			zt_h2_stream_end(s->up, NULL, 0);
		}
		if (!s->up && !s->req)
			finish(s, true);
		return;
	}
	if (s->rs == R_IDLE && zt_buf_len(&s->inbuf) == 0)
		finish(s, true);
}

static void on_in_writable(struct zt_h2_stream *st, void *arg)
{
	struct sess *s = arg;
	ack(s->up, st, &s->owe_up, 0);
}

static void on_in_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	struct sess *s = arg;

	(void)st;
	s->in = NULL;
	s->in_fin = true;
	finish(s, code == 0);
}

static const struct zt_h2_stream_cbs in_cbs = {
        .on_data = on_in_data,
        .on_end = on_in_end,
        .on_writable = on_in_writable,
        .on_close = on_in_close,
};

/* ---- the CONNECT -------------------------------------------------------------------------- */

static bool is_us(const struct wp *wp, const struct zt_gateway *g)
{
	if (g->kind == ZT_GATEWAY_ADDRESS)
		return zt_ip_equal(&g->ip, &wp->pod_ip);
	if (g->kind == ZT_GATEWAY_HOSTNAME)
		return !strcmp(g->hostname, wp->host);
	return false;
}

/* The upstream port for service port sp on endpoint ep (named target ports resolve per
 * endpoint). */
static uint16_t target_port(const struct zt_service *svc, const struct zt_endpoint *ep, uint16_t sp)
{
	const struct zt_port *p = zt_service_port(svc, sp);
	for (size_t i = 0; ep->ports && i < ep->ports->n_ports; i++)
		if (ep->ports->ports[i].service_port == sp && ep->ports->ports[i].target_port)
			return ep->ports->ports[i].target_port;
	return p && p->target_port ? p->target_port : sp;
}

/* Finds what the authority names. Returns 200 or the status to answer with. */
static int resolve(struct sess *s, char *why, size_t whylen)
{
	struct wp *wp = s->wp;
	const struct zt_hbone_authority *t = &s->target.target;

	if (t->is_host) {
		snprintf(why, whylen, "host name authorities are not served");
		return 503;
	}
	s->svc = zt_store_service_by_vip(wp->store, "", &t->addr.ip, NULL);
	if (s->svc) {
		const struct zt_port *sp = zt_service_port(s->svc, t->port);
		if (!is_us(wp, &s->svc->waypoint)) {
			snprintf(why, whylen, "service %s does not use this waypoint",
			         s->svc->hostname);
			return 503;
		}
		if (!sp) {
			snprintf(why, whylen, "service %s has no port %u", s->svc->hostname,
			         t->port);
			return 503;
		}
		s->proto = sp->app_protocol;
		size_t n = s->svc->n_endpoints, usable = 0;
		for (size_t i = 0; i < n; i++)
			if (zt_service_endpoint_usable(s->svc, &s->svc->endpoints[i]) &&
			    s->svc->endpoints[i].workload->n_ips)
				usable++;
		if (!usable) {
			snprintf(why, whylen, "service %s has no usable endpoint",
			         s->svc->hostname);
			return 503;
		}
		size_t pick = (size_t)(wp->rr++ % usable);
		for (size_t i = 0; i < n; i++) {
			const struct zt_endpoint *ep = &s->svc->endpoints[i];
			if (!zt_service_endpoint_usable(s->svc, ep) || !ep->workload->n_ips)
				continue;
			if (pick-- == 0) {
				s->dst = zt_workload_ref(ep->workload);
				s->dst_port = target_port(s->svc, ep, t->port);
				break;
			}
		}
		return 200;
	}
	s->dst = zt_store_workload_by_ip(wp->store, "", &t->addr.ip);
	if (!s->dst || !is_us(wp, s->dst->waypoint)) {
		snprintf(why, whylen, "%s is not a service or workload using this waypoint",
		         s->dst ? s->dst->name : "the destination");
		return 503;
	}
	s->dst_port = t->port;
	s->proto = ZT_APP_PROTOCOL_UNKNOWN;
	return 200;
}

void wp_session_on_request(struct wp *wp, struct zt_h2_conn *c, struct zt_h2_stream *st,
                           const struct zt_h2_header *h, size_t n)
{
	struct sess *s = xcalloc(1, sizeof(*s));
	struct zt_hbone_status hs;
	struct zt_sock *sock = zt_h2_conn_sock(c);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char why[256] = "";
	int code;

	live++;
	s->wp = wp;
	s->in = st;
	zt_buf_init(&s->inbuf, 0);
	wp_h1_head_init(&s->head);
	zt_buf_init(&s->upq, 0);
	zt_h2_stream_set_cbs(st, &in_cbs, s);
	s->started = zt_loop_now(wp->loop);
	if (sock->tls && zt_tls_conn_peer(sock->tls)) {
		s->peer = *zt_tls_conn_peer(sock->tls);
		s->has_peer = true;
		zt_spiffe_format(&s->peer, s->principal, sizeof(s->principal));
	}
	if (getpeername(sock->fd, (struct sockaddr *)&ss, &sl) == 0) {
		struct zt_sockaddr pa;
		if (zt_addr_from_sockaddr(&pa, (struct sockaddr *)&ss, sl) == 0)
			s->src_ip = pa.ip;
	}
	code = zt_hbone_parse_request(&s->target, h, n, &hs);
	if (code == 200 && !s->has_peer) {
		code = 401;
		snprintf(why, sizeof(why), "no client identity");
	} else if (code == 200) {
		code = resolve(s, why, sizeof(why));
	} else {
		snprintf(why, sizeof(why), "%s", hs.reason);
	}
	if (code != 200) {
		char auth[ZT_HBONE_AUTHORITY_STRLEN] = "-";
		zt_hbone_authority_format(&s->target.target, auth, sizeof(auth));
		zt_warn("CONNECT %s from %s refused with %d: %s", auth,
		        s->principal[0] ? s->principal : "-", code, why);
		s->in_fin = true;
		zt_h2_stream_respond(st, code, NULL, 0, true);
		finish(s, true);
		return;
	}
	if (zt_h2_stream_respond(st, 200, NULL, 0, false) < 0) {
		finish(s, false);
		return;
	}
	switch (s->proto) {
	case ZT_APP_PROTOCOL_HTTP11:
		start_mode(s, HTTP1);
		break;
	case ZT_APP_PROTOCOL_UNKNOWN:
		s->mode = SNIFF;
		zt_timer_start(wp->loop, &s->sniff, wp->o.sniff_ms, on_sniff_timeout, s);
		break;
	case ZT_APP_PROTOCOL_HTTP2:
	case ZT_APP_PROTOCOL_GRPC:
		start_mode(s, H2);
		break;
	default: /* TCP, TLS: carried at L4 */
		start_mode(s, TCP);
		break;
	}
}
