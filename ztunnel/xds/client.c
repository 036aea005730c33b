/* Delta ADS client. Invariant: at most one session (dial -> TLS -> HTTP/2 -> gRPC call) is
 * current; every way it can end funnels into session_end(), which detaches it, closes what is
 * open and arms the reconnect timer exactly once. A session outlives its client when the
 * HTTP/2 connection or the call still owe it a callback (reference count), so teardown never
 * touches a freed client. Accepted resources live in per-type maps (name -> version) that only
 * change when a response is applied. */
#include "xds/client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "protocol/delta.h"
#include "protocol/h2.h"
#include "protocol/h2_connect.h"
#include "protocol/pb.h"
#include "protocol/tls.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("xds");

#define MAX_MD          32
#define MAX_TOKEN       (64u << 10)
#define MAX_NACK_TEXT   (64u << 10)
#define MAX_META_DEPTH  32
#define DEF_CONNECT_MS  5000
#define DEF_BACKOFF_MS  10
#define DEF_BACKOFF_MAX 15000
#define DEF_PING_MS     30000
#define DEF_PING_TO_MS  10000
/* TCP keepalive on the xDS connection (spec §3.1). */
#define KA_IDLE_S     300
#define KA_INTERVAL_S 75
#define KA_COUNT      9

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest Request;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
        VersionEntry;

struct xtype {
	struct zt_xds_type t;
	struct zt_hmap known; /* accepted: name -> struct known (owned; the key borrows k->nv) */
	bool answered; /* ACKed or NACKed since start */
	bool complete; /* answered a response ending a state (not marked ZT_XDS_MORE_SUFFIX) */
	uint64_t acks, nacks;
};

struct session {
	struct zt_xds_client *c; /* NULL once the client let go */
	unsigned refs;           /* HTTP/2 connection + gRPC call */
	struct zt_h2_connect *conn; /* while connecting */
	struct zt_h2_conn *h2;
	struct zt_grpc_call *call;
	const char *conn_reason; /* why the HTTP/2 connection closed (static) */
};

struct zt_xds_client {
	struct zt_loop *loop;
	char *host, *alt, *authority, *cluster_id, *node_id;
	uint16_t port;
	struct zt_grpc_md *headers;
	size_t nheaders;
	zt_xds_token_cb token_cb;
	void *token_arg;
	zt_xds_synced_cb on_synced;
	void *synced_arg;
	size_t max_msg;
	uint64_t connect_ms, backoff_initial, backoff_max;
	struct zt_h2_settings h2set;
	struct zt_tls_client *tls;
	Envoy__Config__Core__V3__Node *node;
	struct xtype *types;
	size_t ntypes;
	struct session *s;
	struct zt_timer retry;
	bool started;
	bool complete; /* the stream being ended closed with gRPC OK */
	struct zt_xds_client_stats st;
	struct zt_metric *m_terms, *m_msgs, *m_bytes; /* spec §17; NULL without metrics */
};

/* The control plane's optional strings: NULL is kept as "". */
static char *dup_or_empty(const char *s)
{
	return xstrdup(s ? s : "");
}

/* ---- node metadata: JSON -> google.protobuf.Struct ------------------------------------- */

static Google__Protobuf__Struct *struct_from_json(const json_t *obj, int depth);

static Google__Protobuf__Value *value_from_json(const json_t *j, int depth)
{
	Google__Protobuf__Value *v = xcalloc(1, sizeof(*v));

	google__protobuf__value__init(v);
	if (depth > MAX_META_DEPTH) {
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
		return v;
	}
	switch (json_typeof(j)) {
	case JSON_STRING:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		v->string_value = dup_or_empty(json_string_value(j));
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
		v->number_value = json_number_value(j);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
		v->bool_value = json_is_true(j);
		break;
	case JSON_OBJECT:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
		v->struct_value = struct_from_json(j, depth + 1);
		break;
	case JSON_ARRAY: {
		Google__Protobuf__ListValue *l = xcalloc(1, sizeof(*l));
		size_t i;

		google__protobuf__list_value__init(l);
		l->values = xcalloc(json_array_size(j), sizeof(*l->values));
		for (i = 0; i < json_array_size(j); i++)
			l->values[l->n_values++] = value_from_json(json_array_get(j, i), depth + 1);
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
		v->list_value = l;
		break;
	}
	default:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
		break;
	}
	return v;
}

static Google__Protobuf__Struct *struct_from_json(const json_t *obj, int depth)
{
	Google__Protobuf__Struct *s = xcalloc(1, sizeof(*s));
	const char *key;
	json_t *val;

	google__protobuf__struct__init(s);
	if (!json_is_object(obj))
		return s;
	s->fields = xcalloc(json_object_size(obj), sizeof(*s->fields));
	json_object_foreach((json_t *)obj, key, val)
	{
		Google__Protobuf__Struct__FieldsEntry *e = xcalloc(1, sizeof(*e));

		google__protobuf__struct__fields_entry__init(e);
		e->key = dup_or_empty(key);
		e->value = value_from_json(val, depth);
		s->fields[s->n_fields++] = e;
	}
	return s;
}

static Envoy__Config__Core__V3__Node *node_new(const char *id, const json_t *meta)
{
	Envoy__Config__Core__V3__Node *n = xcalloc(1, sizeof(*n));

	envoy__config__core__v3__node__init(n);
	n->id = dup_or_empty(id);
	if (meta)
		n->metadata = struct_from_json(meta, 0);
	return n;
}

/* ---- requests ---------------------------------------------------------------------------- */

static int send_request(struct session *s, const Request *req)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (!s->call)
		return ZT_E_STATE;
	if ((rc = zt_pb_pack(&req->base, &buf, &len)) < 0)
		return rc;
	rc = zt_grpc_call_send(s->call, buf, len);
	free(buf);
	return rc;
}

/* An accepted resource: its name and version in one allocation, and the response that named
 * it last (to find a name sent twice in one response without a table of its own). */
struct known {
	uint64_t response;
	char nv[]; /* "name\0version" */
};

static struct known *known_new(const char *name, const char *version, uint64_t response)
{
	size_t ln = strlen(name) + 1, lv = strlen(version) + 1;
	struct known *k = xmalloc(sizeof(*k) + ln + lv);

	k->response = response;
	memcpy(k->nv, name, ln);
	memcpy(k->nv + ln, version, lv);
	return k;
}

static const char *known_version(const struct known *k)
{
	return k ? k->nv + strlen(k->nv) + 1 : NULL;
}

/* The first request of a type on a new stream (spec §3.3 step 1). */
static int send_initial(struct zt_xds_client *c, struct session *s, struct xtype *xt)
{
	Request req = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	size_t n = zt_hmap_count(&xt->known), i = 0, pos = 0;
	VersionEntry *entries = xcalloc(n, sizeof(*entries));
	VersionEntry **ptrs = xcalloc(n, sizeof(*ptrs));
	const char *name;
	void *ver;
	int rc;

	while (zt_hmap_next(&xt->known, &pos, &name, &ver)) {
		envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
		        &entries[i]);
		entries[i].key = (char *)name;
		entries[i].value = (char *)known_version(ver);
		ptrs[i] = &entries[i];
		i++;
	}
	req.node = c->node;
	req.type_url = (char *)xt->t.type_url;
	req.n_initial_resource_versions = i;
	req.initial_resource_versions = ptrs;
	rc = send_request(s, &req);
	free(ptrs);
	free(entries);
	return rc;
}

/* ACK (err NULL) or NACK of a response (spec §3.3 step 3). */
static int send_answer(struct session *s, const char *type_url, const char *nonce, const char *err)
{
	Request req = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;

	req.type_url = (char *)type_url;
	req.response_nonce = (char *)nonce;
	if (err) {
		status.code = ZT_GRPC_INVALID_ARGUMENT;
		status.message = (char *)err;
		req.error_detail = &status;
	}
	return send_request(s, &req);
}

/* ---- sessions ---------------------------------------------------------------------------- */

static void session_unref(struct session *s)
{
	if (--s->refs == 0)
		free(s);
}

static void on_retry(struct zt_timer *t, void *arg);

__attribute__((format(printf, 3, 4))) static void session_end(struct zt_xds_client *c, bool benign,
                                                              const char *fmt, ...)
{
	struct session *s = c->s;
	uint64_t delay;
	va_list ap;

	if (!s)
		return;
	if (c->m_terms) {
		/* spec §17: connect failed, stream ended Ok, benign end, anything else */
		const char *why = !c->st.connected ? "ConnectionError"
		                  : c->complete    ? "Complete"
		                  : benign         ? "Reconnect"
		                                   : "Error";
		zt_metric_add(zt_metric_child(c->m_terms, (const char *const[]){why}), 1);
	}
	c->complete = false;
	c->s = NULL;
	s->c = NULL;
	zt_h2_connect_cancel(s->conn);
	s->conn = NULL;
	if (s->call)
		zt_grpc_call_cancel(s->call);
	if (s->h2)
		zt_h2_conn_close(s->h2, "xds stream ended");
	if (s->refs == 0)
		free(s);

	va_start(ap, fmt);
	vsnprintf(c->st.last_error, sizeof(c->st.last_error), fmt, ap);
	va_end(ap);
	/* Peer text ends up here: keep it printable ASCII for logs and JSON. */
	for (char *p = c->st.last_error; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	if (c->st.connected)
		c->st.connected = false;
	if (benign) {
		delay = c->backoff_initial;
	} else {
		delay = c->st.backoff_ms;
		c->st.backoff_ms = c->st.backoff_ms * 2 > c->backoff_max ? c->backoff_max
		                                                         : c->st.backoff_ms * 2;
	}
	zt_warn("xds: %s; reconnecting in %llums", c->st.last_error, (unsigned long long)delay);
	zt_timer_start(c->loop, &c->retry, delay, on_retry, c);
}

/* Classifies how a stream ended (spec §3.1): benign endings reconnect at once. */
static bool benign_end(int code, const char *msg, const char *conn_reason)
{
	if (conn_reason)
		return strcmp(conn_reason, "connection drained") == 0; /* GOAWAY */
	switch (code) {
	case ZT_GRPC_OK:
	case ZT_GRPC_UNKNOWN:
	case ZT_GRPC_CANCELLED:
	case ZT_GRPC_DEADLINE_EXCEEDED:
		return true;
	case ZT_GRPC_UNAVAILABLE:
		return strstr(msg, "transport is closing") || strstr(msg, "received prior goaway");
	default:
		return false;
	}
}

/* ---- responses --------------------------------------------------------------------------- */

static struct xtype *find_type(struct zt_xds_client *c, const char *url)
{
	for (size_t i = 0; i < c->ntypes; i++)
		if (strcmp(c->types[i].t.type_url, url) == 0)
			return &c->types[i];
	return NULL;
}

static void nack_add(struct zt_buf *b, const char *name, const char *reason)
{
	char item[1024];
	int n = snprintf(item, sizeof(item), "%s%s: %s", zt_buf_len(b) ? "; " : "",
	                 name[0] ? name : "<unnamed>", reason);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(item))
		n = sizeof(item) - 1;
	if (zt_buf_len(b) + (size_t)n > MAX_NACK_TEXT)
		return;
	if (zt_buf_append(b, item, (size_t)n) < 0)
		abort();
}

static void check_synced(struct zt_xds_client *c)
{
	if (c->st.synced)
		return;
	for (size_t i = 0; i < c->ntypes; i++)
		if (!c->types[i].complete)
			return;
	c->st.synced = true;
	zt_info("xds: synced (%zu types)", c->ntypes);
	if (c->on_synced)
		c->on_synced(c, c->synced_arg);
}

/* NUL-terminated copies of a response's strings, in one block sized by the message. A string
 * present takes at least two bytes more on the wire (tag and length) than its copy; absent
 * ones copied as "": type_url and nonce (two bytes), and per resource its name and one of
 * version or Any type, where the resource itself takes two bytes and its Any two more. */
#define POOL_SLACK 16
struct pool {
	char *p;
	size_t used, cap;
};

static const char *pool_str(struct pool *pl, struct zt_delta_str s)
{
	char *d = pl->p + pl->used;

	if (pl->used + s.len + 1 > pl->cap)
		abort(); /* cannot happen: see above */
	memcpy(d, s.p, s.len);
	d[s.len] = '\0';
	pl->used += s.len + 1;
	return d;
}

/* Applies one response (spec §3.3 step 2), numbered response, and collects the rejections
 * into nack. Each body is decoded by the type's apply, one at a time. */
static void apply_response(struct xtype *xt, const struct zt_delta *d, uint64_t response,
                           struct pool *pl, struct zt_buf *nack)
{
	struct zt_delta_resource res;
	struct zt_delta_str gone;
	struct zt_hmap refused; /* names of this response not accepted (names live in pl) */
	char reason[512];
	size_t pos = 0;

	zt_hmap_init_borrowed(&refused);
	while (zt_delta_next_resource(d, &pos, &res)) {
		const char *name = pool_str(pl, res.name);
		struct known *k;

		reason[0] = '\0';
		if (!name[0]) {
			nack_add(nack, name, "resource without a name");
			continue;
		}
		/* As Envoy: a name twice in one response is an error; the first copy stands. */
		k = zt_hmap_get(&xt->known, name);
		if ((k && k->response == response) || zt_hmap_get(&refused, name)) {
			nack_add(nack, name, "duplicate resource in one response");
			continue;
		}
		if (!res.has_body) {
			snprintf(reason, sizeof(reason), "resource without a body");
		} else if (!zt_delta_str_eq(res.type, xt->t.type_url)) {
			snprintf(reason, sizeof(reason), "resource of type %.200s in a %s response",
			         pool_str(pl, res.type), xt->t.type_url);
		} else {
			const char *version = pool_str(pl, res.version);
			if (xt->t.apply(xt->t.arg, name, version, res.body, res.body_len, reason,
			                sizeof(reason)) == 0) {
				k = known_new(name, version, response);
				free(zt_hmap_put(&xt->known, k->nv, k));
				continue;
			}
			if (!reason[0])
				snprintf(reason, sizeof(reason), "rejected");
		}
		zt_hmap_put(&refused, name, (void *)1);
		reason[sizeof(reason) - 1] = '\0';
		/* The store keeps what it had, so the version held stays claimed (and is announced
		 * in initial_resource_versions after a reconnect): forgetting it would hide a
		 * later removal of that resource from us forever. */
		nack_add(nack, name, reason);
	}
	pos = 0;
	while (zt_delta_next_removed(d, &pos, &gone)) {
		const char *name = pool_str(pl, gone);

		if (xt->t.remove && xt->t.remove(xt->t.arg, name) != 0)
			zt_debug("xds: removing %s %s: not present", xt->t.type_url, name);
		free(zt_hmap_del(&xt->known, name));
	}
	zt_hmap_clear(&refused);
}

/* Whether d is a part of a split state with more parts to come (ZT_XDS_MORE_SUFFIX). */
static bool more_follows(const struct zt_delta *d)
{
	size_t n = d->version_info.len, k = strlen(ZT_XDS_MORE_SUFFIX);

	return n >= k && memcmp(d->version_info.p + n - k, ZT_XDS_MORE_SUFFIX, k) == 0;
}

static void handle_response(struct zt_xds_client *c, struct session *s, const struct zt_delta *d,
                            struct pool *pl, const char *url)
{
	const char *nonce = pool_str(pl, d->nonce);
	struct xtype *xt = find_type(c, url);
	struct zt_buf nack;
	bool is_nack;
	int rc;

	zt_buf_init(&nack, 0);
	if (!xt) {
		nack_add(&nack, url, "type not subscribed");
	} else {
		zt_debug("xds: %s response: %zu resources, %zu removed, nonce %s", url,
		         d->n_resources, d->n_removed, nonce);
		apply_response(xt, d, c->st.responses, pl, &nack);
	}
	if (zt_buf_len(&nack) && zt_buf_append(&nack, "", 1) < 0)
		abort();
	is_nack = zt_buf_len(&nack) > 0;
	rc = send_answer(s, url, nonce, is_nack ? (const char *)zt_buf_data(&nack) : NULL);
	if (rc < 0) {
		zt_buf_clear(&nack);
		session_end(c, false, "sending %s: %s", is_nack ? "NACK" : "ACK", zt_strerror(rc));
		return;
	}
	if (is_nack) {
		zt_warn("xds: NACK %s: %s", url, (const char *)zt_buf_data(&nack));
		c->st.nacks++;
		if (xt)
			xt->nacks++;
	} else {
		c->st.acks++;
		if (xt)
			xt->acks++;
	}
	zt_buf_clear(&nack);
	if (xt) {
		xt->answered = true;
		xt->complete = xt->complete || !more_follows(d);
		check_synced(c);
	}
}

/* ---- gRPC call --------------------------------------------------------------------------- */

static void call_on_message(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	struct session *s = arg;
	struct zt_xds_client *c = s->c;
	struct zt_delta d;
	struct pool pl;
	const char *url;
	char err[128];

	(void)call;
	if (!c)
		return;
	if (len > c->max_msg) {
		session_end(c, false, "malformed DeltaDiscoveryResponse: %s", zt_strerror(ZT_E_TOOBIG));
		return;
	}
	if (zt_delta_parse(p, len, &d, err, sizeof(err)) < 0) {
		session_end(c, false, "malformed DeltaDiscoveryResponse: %s", err);
		return;
	}
	c->st.responses++;
	c->st.backoff_ms = c->backoff_initial; /* the server is healthy again */
	pl = (struct pool){.p = xmalloc(len + POOL_SLACK), .cap = len + POOL_SLACK};
	url = pool_str(&pl, d.type_url);
	if (c->m_msgs) {
		struct zt_delta_resource res;
		uint64_t bytes = 0;
		size_t pos = 0;
		while (zt_delta_next_resource(&d, &pos, &res))
			bytes += res.body_len;
		zt_metric_add(zt_metric_child(c->m_msgs, &url), 1);
		zt_metric_add(zt_metric_child(c->m_bytes, &url), (int64_t)bytes);
	}
	handle_response(c, s, &d, &pl, url);
	free(pl.p);
}

static void call_on_done(struct zt_grpc_call *call, int code, const char *msg, void *arg)
{
	struct session *s = arg;
	struct zt_xds_client *c = s->c;

	(void)call;
	s->call = NULL;
	if (c) {
		const char *reason = s->conn_reason;

		if (reason && strcmp(reason, "connection drained") != 0) {
			session_end(c, false, "connection closed: %s", reason);
		} else {
			c->complete = code == ZT_GRPC_OK;
			session_end(c, benign_end(code, msg, reason), "stream ended: %s: %s",
			            zt_grpc_code_name(code), msg);
		}
	}
	session_unref(s);
}

static const struct zt_grpc_call_cbs call_cbs = {
        .on_message = call_on_message,
        .on_done = call_on_done,
};

/* ---- HTTP/2 connection ------------------------------------------------------------------- */

static void h2_on_close(struct zt_h2_conn *h2, const char *reason, void *arg)
{
	struct session *s = arg;

	(void)h2;
	s->h2 = NULL;
	s->conn_reason = reason;
	/* With a call open, its on_done follows and ends the session. */
	if (s->c && !s->call)
		session_end(s->c, false, "connection closed: %s", reason);
	session_unref(s);
}

static const struct zt_h2_conn_cbs h2_cbs = {.on_close = h2_on_close};

/* Opens the stream and sends one initial request per type. */
static void open_stream(struct zt_xds_client *c, struct session *s)
{
	struct zt_grpc_md md[MAX_MD];
	char *token = NULL, *bearer = NULL;
	size_t nmd = 0;
	int rc = 0;

	if (c->token_cb) {
		token = xcalloc(1, MAX_TOKEN + 1);
		rc = c->token_cb(c->token_arg, token, MAX_TOKEN + 1);
		if (rc < 0) {
			free(token);
			session_end(c, false, "reading the token: %s", zt_strerror(rc));
			return;
		}
		if (token[0]) {
			size_t n = strlen(token) + sizeof("Bearer ");

			bearer = xcalloc(1, n);
			snprintf(bearer, n, "Bearer %s", token);
			md[nmd++] = (struct zt_grpc_md){"authorization", bearer};
		}
		free(token);
	}
	if (c->cluster_id[0])
		md[nmd++] = (struct zt_grpc_md){"clusterid", c->cluster_id};
	for (size_t i = 0; i < c->nheaders; i++)
		md[nmd++] = c->headers[i];
	s->call = zt_grpc_call_start(s->h2, c->authority, ZT_XDS_METHOD, md, nmd, 0, c->max_msg,
	                             &call_cbs, s, &rc);
	free(bearer);
	if (!s->call) {
		session_end(c, false, "starting the stream: %s", zt_strerror(rc));
		return;
	}
	s->refs++;
	c->st.connects++;
	c->st.connected = true;
	zt_info("xds: connected to %s", c->authority);
	for (size_t i = 0; i < c->ntypes; i++) {
		if ((rc = send_initial(c, s, &c->types[i])) < 0) {
			session_end(c, false, "sending the initial request: %s", zt_strerror(rc));
			return;
		}
	}
}

static void on_connect(struct zt_h2_conn *h2, const struct zt_h2_connect_result *r, void *arg)
{
	struct session *s = arg;
	struct zt_xds_client *c = s->c;

	s->conn = NULL;
	if (!h2) {
		session_end(c, false, "connecting to %s: %s", c->authority, r->reason);
		return;
	}
	s->h2 = h2;
	s->refs++;
	open_stream(c, s);
}

static void set_sockopts(int fd, void *arg)
{
	int one = 1, idle = KA_IDLE_S, intvl = KA_INTERVAL_S, cnt = KA_COUNT;

	(void)arg;
	/* Best effort: a failure only loses an optimisation or dead-peer detection. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void connect_now(struct zt_xds_client *c)
{
	struct session *s = xcalloc(1, sizeof(*s));
	struct zt_h2_connect_opts o = {
	        .host = c->host,
	        .port = c->port,
	        .prepare = set_sockopts,
	        .connect_timeout_ms = c->connect_ms,
	        .handshake_timeout_ms = c->connect_ms,
	        .tls = c->tls,
	        .verify_host = c->host,
	        .alt_host = c->alt,
	        .h2 = &c->h2set,
	        .cbs = &h2_cbs,
	        .cbs_arg = s,
	};
	int err = 0;

	s->c = c;
	c->s = s;
	c->st.attempts++;
	s->conn = zt_h2_connect_start(c->loop, &o, on_connect, s, &err);
	if (!s->conn)
		session_end(c, false, "connecting to %s: %s", c->authority, zt_strerror(err));
}

static void on_retry(struct zt_timer *t, void *arg)
{
	(void)t;
	connect_now(arg);
}

/* ---- public API -------------------------------------------------------------------------- */

struct zt_xds_client *zt_xds_client_new(struct zt_loop *loop, const struct zt_xds_client_opts *o,
                                        const struct zt_xds_type *types, size_t n, int *err)
{
	struct zt_xds_client *c;
	char auth[300];
	int rc;

	if (!o->host || !o->host[0] || strlen(o->host) > 253 || o->port == 0 || n == 0 ||
	    o->nheaders > MAX_MD - 2 || (o->nheaders && !o->headers)) {
		*err = ZT_E_RANGE;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!types[i].type_url || !types[i].apply) {
			*err = ZT_E_RANGE;
			return NULL;
		}
	}
	c = xcalloc(1, sizeof(*c));
	rc = zt_tls_cp_client_new(&c->tls, o->roots_pem, o->roots_len, NULL);
	if (rc < 0) {
		free(c);
		*err = rc;
		return NULL;
	}
	c->loop = loop;
	c->host = dup_or_empty(o->host);
	c->alt = o->alt_hostname && o->alt_hostname[0] ? dup_or_empty(o->alt_hostname) : NULL;
	c->port = o->port;
	snprintf(auth, sizeof(auth), strchr(o->host, ':') ? "[%s]:%u" : "%s:%u", o->host, o->port);
	c->authority = dup_or_empty(auth);
	c->cluster_id = dup_or_empty(o->cluster_id);
	c->node_id = dup_or_empty(o->node_id);
	c->node = node_new(c->node_id, o->node_metadata);
	c->headers = xcalloc(o->nheaders, sizeof(*c->headers));
	for (size_t i = 0; i < o->nheaders; i++) {
		c->headers[i].key = dup_or_empty(o->headers[i].key);
		c->headers[i].value = dup_or_empty(o->headers[i].value);
	}
	c->nheaders = o->nheaders;
	c->token_cb = o->token_cb;
	c->token_arg = o->token_arg;
	c->on_synced = o->on_synced;
	if (o->metrics) {
		static const char *const reason[] = {"reason"}, *const url[] = {"url"};
		/* A second client on the same registry (names taken) counts nothing. */
		if (zt_metrics_register(o->metrics, &c->m_terms,
		                        "istio_xds_connection_terminations_total",
		                        "Stream terminations of the xDS client", ZT_METRIC_COUNTER,
		                        reason, 1) < 0 ||
		    zt_metrics_register(o->metrics, &c->m_msgs, "istio_xds_message_total",
		                        "xDS responses received", ZT_METRIC_COUNTER, url, 1) < 0 ||
		    zt_metrics_register(o->metrics, &c->m_bytes, "istio_xds_message_bytes_total",
		                        "Bytes of resources in xDS responses", ZT_METRIC_COUNTER,
		                        url, 1) < 0)
			c->m_terms = c->m_msgs = c->m_bytes = NULL;
	}
	c->synced_arg = o->synced_arg;
	c->max_msg = o->max_msg ? o->max_msg : ZT_XDS_MAX_MSG;
	c->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : DEF_CONNECT_MS;
	c->backoff_initial = o->backoff_initial_ms ? o->backoff_initial_ms : DEF_BACKOFF_MS;
	c->backoff_max = o->backoff_max_ms ? o->backoff_max_ms : DEF_BACKOFF_MAX;
	if (c->backoff_max < c->backoff_initial)
		c->backoff_max = c->backoff_initial;
	c->st.backoff_ms = c->backoff_initial;
	zt_h2_settings_default(&c->h2set, false);
	c->h2set.ping_interval_ms = o->ping_interval_ms ? o->ping_interval_ms : DEF_PING_MS;
	c->h2set.ping_timeout_ms = o->ping_timeout_ms ? o->ping_timeout_ms : DEF_PING_TO_MS;
	c->types = xcalloc(n, sizeof(*c->types));
	for (size_t i = 0; i < n; i++) {
		c->types[i].t = types[i];
		zt_hmap_init_borrowed(&c->types[i].known);
	}
	c->ntypes = n;
	return c;
}

int zt_xds_client_start(struct zt_xds_client *c)
{
	if (c->started)
		return ZT_E_STATE;
	c->started = true;
	zt_timer_start(c->loop, &c->retry, 0, on_retry, c);
	return 0;
}

void zt_xds_client_free(struct zt_xds_client *c)
{
	struct session *s;

	if (!c)
		return;
	zt_timer_stop(&c->retry);
	if ((s = c->s)) {
		c->s = NULL;
		s->c = NULL;
		zt_h2_connect_cancel(s->conn);
		if (s->call)
			zt_grpc_call_cancel(s->call);
		if (s->h2)
			zt_h2_conn_close(s->h2, "xds client closed");
		if (s->refs == 0)
			free(s);
	}
	for (size_t i = 0; i < c->ntypes; i++) {
		size_t pos = 0;
		void *ver;
		while (zt_hmap_next(&c->types[i].known, &pos, NULL, &ver))
			free(ver);
		zt_hmap_clear(&c->types[i].known);
	}
	free(c->types);
	for (size_t i = 0; i < c->nheaders; i++) {
		free((char *)c->headers[i].key);
		free((char *)c->headers[i].value);
	}
	free(c->headers);
	zt_pb_free(&c->node->base);
	zt_tls_client_unref(c->tls);
	free(c->host);
	free(c->alt);
	free(c->authority);
	free(c->cluster_id);
	free(c->node_id);
	free(c);
}

bool zt_xds_client_synced(const struct zt_xds_client *c)
{
	return c->st.synced;
}

void zt_xds_client_stats(const struct zt_xds_client *c, struct zt_xds_client_stats *out)
{
	*out = c->st;
}

const char *zt_xds_client_version(const struct zt_xds_client *c, const char *type_url,
                                  const char *name)
{
	struct xtype *xt = find_type((struct zt_xds_client *)c, type_url);

	return xt ? known_version(zt_hmap_get(&xt->known, name)) : NULL;
}

size_t zt_xds_client_count(const struct zt_xds_client *c, const char *type_url)
{
	struct xtype *xt = find_type((struct zt_xds_client *)c, type_url);

	return xt ? zt_hmap_count(&xt->known) : 0;
}

json_t *zt_xds_client_json(const struct zt_xds_client *c)
{
	json_t *types = json_object();

	for (size_t i = 0; i < c->ntypes; i++)
		json_object_set_new(types, c->types[i].t.type_url,
		                    json_pack("{s:I, s:I, s:I, s:b, s:b}", "resources",
		                              (json_int_t)zt_hmap_count(&c->types[i].known),
		                              "acks", (json_int_t)c->types[i].acks, "nacks",
		                              (json_int_t)c->types[i].nacks, "answered",
		                              c->types[i].answered, "complete",
		                              c->types[i].complete));
	return json_pack("{s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o}", "address",
	                 c->authority, "connected", c->st.connected, "synced", c->st.synced,
	                 "attempts", (json_int_t)c->st.attempts, "connects",
	                 (json_int_t)c->st.connects, "responses", (json_int_t)c->st.responses,
	                 "acks", (json_int_t)c->st.acks, "nacks", (json_int_t)c->st.nacks,
	                 "backoffMs", (json_int_t)c->st.backoff_ms, "lastError", c->st.last_error,
	                 "types", types);
}
