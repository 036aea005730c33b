/* fake-istiod's delta ADS server (fake-istiod/ads.h) against a delta client written here on
 * zt_grpc_call, over TLS + HTTP/2 on socketpairs in one loop: initial sync, incremental
 * pushes, ACK/NACK, reconnect with initial_resource_versions, explicit subscriptions, bad
 * requests, response splitting, a client that stops reading, and cleanup. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake-istiod/ads.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "protocol/grpc.h"
#include "protocol/h2.h"
#include "protocol/pb.h"
#include "protocol/tls.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "loop_fixture.h"
#include "tls_fixture.h"

#define ADDR   "type.googleapis.com/istio.workload.Address"
#define AUTHZ  "type.googleapis.com/istio.security.Authorization"
#define ISTIOD "istiod.istio-system.svc"
#define NODE   "ztunnel~10.0.0.1~ztunnel-abc.istio-system~istio-system.svc.cluster.local"

static struct zt_loop *loop;
static struct fi_ads *ads;
static struct fx_ca ca;
static struct zt_tls_server *tls_srv;
static struct zt_tls_client *tls_cli;
static struct zt_grpc_method methods[1];
static struct zt_grpc_server grpc_srv;
static struct zt_h2_settings cset, sset;

/* ---- captured log lines ------------------------------------------------------------------ */

static char logbuf[64 << 10];
static size_t loglen;

static void on_log(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)level;
	(void)arg;
	if (loglen + len < sizeof(logbuf)) {
		memcpy(logbuf + loglen, line, len);
		loglen += len;
		logbuf[loglen] = '\0';
	}
}

/* ---- client-side records ----------------------------------------------------------------- */

#define MAX_RESP 256

struct dc {
	struct zt_grpc_call *call;
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *resp[MAX_RESP];
	size_t nresp, taken;
	bool bad; /* an undecodable response */
	bool done;
	int code;
	char msg[256];
};

/* A raw HTTP/2 stream that reads responses only when told to: the server must not queue
 * a response per change for it, but send the latest state once it reads again. */
struct lazy {
	struct zt_h2_stream *st;
	struct zt_buf in;
	size_t unconsumed;
	bool reading;
	bool closed;
};

/* Static: calls and streams may end after the test function returned (teardown closes the
 * connections), and their callbacks still write here. */
static struct dc D[4];
static struct lazy L;

static void dc_clear(struct dc *d)
{
	for (size_t i = 0; i < d->nresp; i++)
		zt_pb_free(&d->resp[i]->base);
	d->nresp = d->taken = 0;
}

/* ---- TLS + HTTP/2 connections ------------------------------------------------------------ */

struct conn {
	struct zt_h2_conn *cli, *srv;
	bool failed;
};
static struct conn conns[4];

static void on_conn_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)reason;
	(void)arg;
	for (size_t i = 0; i < 4; i++) {
		if (conns[i].cli == c)
			conns[i].cli = NULL;
		if (conns[i].srv == c)
			conns[i].srv = NULL;
	}
}

static const struct zt_h2_conn_cbs srv_cbs = {.on_request = zt_grpc_server_on_request,
                                              .on_close = on_conn_close};
static const struct zt_h2_conn_cbs cli_cbs = {.on_close = on_conn_close};

static void on_srv_hs(struct zt_sock *s, int err, void *arg)
{
	struct conn *c = arg;

	if (err < 0 || zt_h2_conn_new(&c->srv, loop, s, true, &sset, &srv_cbs, &grpc_srv) < 0)
		c->failed = true;
	if (err < 0)
		zt_sock_close(s);
	free(s);
}

static void on_cli_hs(struct zt_sock *s, int err, void *arg)
{
	struct conn *c = arg;

	if (err < 0 || zt_h2_conn_new(&c->cli, loop, s, false, &cset, &cli_cbs, NULL) < 0)
		c->failed = true;
	if (err < 0)
		zt_sock_close(s);
	free(s);
}

/* A TLS + HTTP/2 connection from a client to the ADS server; returns the client end. */
static struct zt_h2_conn *connect_conn(size_t slot)
{
	struct conn *c = &conns[slot];
	struct zt_tls_conn *ctls, *stls;
	struct zt_sock *cs = calloc(1, sizeof(*cs)), *ss = calloc(1, sizeof(*ss));
	int sv[2];

	ck_assert_ptr_nonnull(cs);
	ck_assert_ptr_nonnull(ss);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(zt_tls_conn_cp_client_new(&ctls, tls_cli, sv[0], ISTIOD), 0);
	ck_assert_int_eq(zt_tls_conn_server_new(&stls, tls_srv, sv[1]), 0);
	ck_assert_int_eq(zt_sock_start(cs, loop, sv[0], ctls, NULL, NULL), 0);
	ck_assert_int_eq(zt_sock_start(ss, loop, sv[1], stls, NULL, NULL), 0);
	zt_sock_handshake(ss, on_srv_hs, c);
	zt_sock_handshake(cs, on_cli_hs, c);
	RUN_UNTIL(loop, (c->cli && c->srv) || c->failed, 5000);
	ck_assert(!c->failed);
	return c->cli;
}

static void setup(void)
{
	struct fx_leaf leaf;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	fx_ca_init(&ca, "test root", NULL);
	/* The xDS transport (spec §3.1): a server certificate for istiod's name, none from
	 * the client. */
	fx_leaf_issue(&leaf, &ca,
	              &(struct fx_leaf_opts){.sans = "DNS:" ISTIOD, .eku = FX_SERVER_AUTH});
	ck_assert_int_eq(zt_tls_cp_server_new(&tls_srv, leaf.chain_pem, strlen(leaf.chain_pem),
	                                      leaf.key_pem, strlen(leaf.key_pem), NULL),
	                 0);
	ck_assert_int_eq(zt_tls_cp_client_new(&tls_cli, ca.root_pem, strlen(ca.root_pem), NULL), 0);
	fx_leaf_clear(&leaf);
	zt_h2_settings_default(&cset, false);
	zt_h2_settings_default(&sset, true);
	cset.ping_interval_ms = sset.ping_interval_ms = 0;
	ads = fi_ads_new(loop);
	methods[0] = fi_ads_method(ads);
	grpc_srv = (struct zt_grpc_server){methods, 1, 16u << 20};
	memset(conns, 0, sizeof(conns));
	memset(D, 0, sizeof(D));
	memset(&L, 0, sizeof(L));
	loglen = 0;
	logbuf[0] = '\0';
	zt_log_set_format(ZT_LOG_TEXT);
	ck_assert_int_eq(zt_log_set_spec("info", NULL, 0), 0);
	zt_log_set_sink(on_log, NULL);
}

static void teardown(void)
{
	fi_ads_free(ads);
	ads = NULL;
	for (size_t i = 0; i < 4; i++) {
		if (conns[i].cli)
			zt_h2_conn_close(conns[i].cli, "test over");
		if (conns[i].srv)
			zt_h2_conn_close(conns[i].srv, "test over");
	}
	for (int i = 0; i < 200 && (zt_h2_conn_live() || zt_grpc_call_live()); i++)
		zt_loop_run_once(loop, 10);
	zt_loop_free(loop);
	for (size_t i = 0; i < 4; i++)
		dc_clear(&D[i]);
	zt_buf_clear(&L.in);
	zt_tls_server_free(tls_srv);
	zt_tls_client_unref(tls_cli);
	fx_ca_clear(&ca);
	zt_log_set_sink(NULL, NULL);
	ck_assert_uint_eq(zt_grpc_call_live(), 0);
	ck_assert_uint_eq(zt_h2_conn_live(), 0);
	ck_assert_uint_eq(zt_h2_stream_live(), 0);
	ck_assert_uint_eq(zt_tls_conn_live(), 0);
	ck_assert_int_eq(fx_live("fi_ads_stream"), 0);
	ck_assert_int_eq(fx_live("fi_ads_resource"), 0);
}

/* ---- resource sets from text ------------------------------------------------------------- */

/* Sets type to the resources in spec, "name@version ..."; each one's data is "name=version"
 * padded with pad bytes of 'x'. Returns what fi_ads_set returns. */
static int set_pad(const char *type, const char *spec, size_t pad)
{
	struct fi_resource res[64];
	char *names[64], *datas[64];
	char *copy = strdup(spec), *save = NULL, *tok;
	size_t n = 0;
	int rc;

	ck_assert_ptr_nonnull(copy);
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *at = strchr(tok, '@');
		size_t len;

		ck_assert_ptr_nonnull(at);
		ck_assert_uint_lt(n, 64);
		*at = '\0';
		names[n] = tok;
		len = strlen(tok) + 1 + strlen(at + 1) + pad;
		datas[n] = malloc(len + 1);
		ck_assert_ptr_nonnull(datas[n]);
		snprintf(datas[n], len + 1, "%s=%s", tok, at + 1);
		memset(datas[n] + strlen(datas[n]), 'x', pad);
		res[n] = (struct fi_resource){names[n], at + 1, (uint8_t *)datas[n], len};
		n++;
	}
	rc = fi_ads_set(ads, type, res, n);
	for (size_t i = 0; i < n; i++)
		free(datas[i]);
	free(copy);
	return rc;
}

static int set(const char *type, const char *spec)
{
	return set_pad(type, spec, 0);
}

/* ---- the test's delta client ------------------------------------------------------------- */

static void dc_on_message(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	struct dc *d = arg;
	ProtobufCMessage *m = NULL;

	(void)call;
	if (zt_pb_unpack(&envoy__service__discovery__v3__delta_discovery_response__descriptor, p,
	                 len, 64u << 20, &m) < 0 ||
	    d->nresp == MAX_RESP) {
		d->bad = true;
		zt_pb_free(m);
		return;
	}
	d->resp[d->nresp++] = (Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *)m;
}

static void dc_on_done(struct zt_grpc_call *call, int code, const char *msg, void *arg)
{
	struct dc *d = arg;

	(void)call;
	d->call = NULL;
	d->done = true;
	d->code = code;
	snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
}

static const struct zt_grpc_call_cbs dc_cbs = {.on_message = dc_on_message, .on_done = dc_on_done};

static void dc_open(struct dc *d, struct zt_h2_conn *c)
{
	int err = 0;

	dc_clear(d);
	memset(d, 0, sizeof(*d));
	d->call = zt_grpc_call_start(c, ISTIOD, FI_ADS_METHOD_PATH, NULL, 0, 0, 64u << 20, &dc_cbs,
	                             d, &err);
	ck_assert_msg(d->call != NULL, "call start: %d", err);
}

/* Lists are NULL-terminated; init entries are "name@version". */
struct rq {
	const char *type;
	const char *node;
	const char *const *sub;
	const char *const *unsub;
	const char *const *init;
	const char *nonce;
	const char *nack; /* error_detail.message: makes the request a NACK */
};

static size_t count(const char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

static void dc_send_raw(struct dc *d, const void *p, size_t len)
{
	ck_assert_ptr_nonnull(d->call);
	ck_assert_int_eq(zt_grpc_call_send(d->call, p, len), 0);
}

static void dc_send(struct dc *d, const struct rq *o)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest rq =
	        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry e[16],
	        *ep[16];
	char names[16][64];
	uint8_t *buf;
	size_t len, ninit = count(o->init);

	ck_assert_uint_le(ninit, 16);
	rq.type_url = (char *)(o->type ? o->type : "");
	if (o->node) {
		node.id = (char *)o->node;
		rq.node = &node;
	}
	rq.n_resource_names_subscribe = count(o->sub);
	rq.resource_names_subscribe = (char **)o->sub;
	rq.n_resource_names_unsubscribe = count(o->unsub);
	rq.resource_names_unsubscribe = (char **)o->unsub;
	for (size_t i = 0; i < ninit; i++) {
		const char *at = strchr(o->init[i], '@');

		ck_assert_ptr_nonnull(at);
		envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
		        &e[i]);
		snprintf(names[i], sizeof(names[i]), "%.*s", (int)(at - o->init[i]), o->init[i]);
		e[i].key = names[i];
		e[i].value = (char *)at + 1;
		ep[i] = &e[i];
	}
	rq.n_initial_resource_versions = ninit;
	rq.initial_resource_versions = ep;
	if (o->nonce)
		rq.response_nonce = (char *)o->nonce;
	if (o->nack) {
		status.code = 3;
		status.message = (char *)o->nack;
		rq.error_detail = &status;
	}
	ck_assert_int_eq(zt_pb_pack(&rq.base, &buf, &len), 0);
	dc_send_raw(d, buf, len);
	free(buf);
}

/* Half-closes after a request the server is expected to refuse. Needed because the gRPC
 * client only reports a call done once its HTTP/2 stream closes, and a server that ends the
 * call first leaves the stream half-open until the client ends its side. */
static void dc_close_send(struct dc *d)
{
	ck_assert_int_eq(zt_grpc_call_close_send(d->call), 0);
}

/* Waits for and returns the next unread response. */
static Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *dc_next(struct dc *d)
{
	RUN_UNTIL(loop, d->nresp > d->taken || d->done, 5000);
	ck_assert_msg(d->nresp > d->taken, "stream ended: %s %s", zt_grpc_code_name(d->code),
	              d->msg);
	ck_assert(!d->bad);
	return d->resp[d->taken++];
}

/* Sends the ACK of r. */
static void dc_ack(struct dc *d, const Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r)
{
	dc_send(d, &(struct rq){.type = r->type_url, .nonce = r->nonce});
}

/* No further response arrives in a while. */
static void dc_expect_quiet(struct dc *d)
{
	fx_run_for(loop, 150);
	ck_assert_msg(d->nresp == d->taken, "unexpected response: %zu unread", d->nresp - d->taken);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "+a@1 +b@2 -c": added or updated resources then removed names, each sorted. Every Any is
 * checked against the response's type URL and the data set_pad() makes. */
static const char *summary(const Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r)
{
	static char out[8192];
	char *items[1024];
	size_t n = 0, o = 0;

	out[0] = '\0';
	ck_assert_uint_le(r->n_resources + r->n_removed_resources, 1024);
	for (size_t i = 0; i < r->n_resources; i++) {
		const Envoy__Service__Discovery__V3__Resource *res = r->resources[i];
		char want[256];
		size_t wl;

		ck_assert_ptr_nonnull(res->resource);
		ck_assert_str_eq(res->resource->type_url, r->type_url);
		wl = (size_t)snprintf(want, sizeof(want), "%s=%s", res->name, res->version);
		ck_assert_uint_ge(res->resource->value.len, wl);
		ck_assert_mem_eq(res->resource->value.data, want, wl);
		ck_assert_int_ge(asprintf(&items[n++], "+%s@%s", res->name, res->version), 0);
	}
	qsort(items, n, sizeof(*items), cmp_cstr);
	for (size_t i = 0; i < r->n_removed_resources; i++)
		ck_assert_int_ge(asprintf(&items[n++], "-%s", r->removed_resources[i]), 0);
	qsort(items + r->n_resources, r->n_removed_resources, sizeof(*items), cmp_cstr);
	for (size_t i = 0; i < n; i++) {
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", i ? " " : "", items[i]);
		free(items[i]);
		ck_assert_uint_lt(o, sizeof(out));
	}
	return out;
}

/* Opens a wildcard stream for type on c and returns its first response. */
static Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *
dc_wildcard(struct dc *d, struct zt_h2_conn *c, const char *type)
{
	dc_open(d, c);
	dc_send(d, &(struct rq){.type = type, .node = NODE});
	return dc_next(d);
}

static struct fi_ads_stats stats(void)
{
	struct fi_ads_stats st;

	fi_ads_stats(ads, &st);
	return st;
}

/* ---- initial sync ------------------------------------------------------------------------ */

START_TEST(ads_initial_wildcard_request_gets_every_resource)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;

	ck_assert_int_eq(set(ADDR, "w1@1 w2@1 svc@7"), 3);
	r = dc_wildcard(d, c, ADDR);
	ck_assert_str_eq(summary(r), "+svc@7 +w1@1 +w2@1");
	ck_assert_str_eq(r->type_url, ADDR);
	ck_assert_str_eq(r->system_version_info, "1");
	ck_assert_str_ne(r->nonce, "");
	ck_assert_uint_eq(stats().streams, 1);
	ck_assert_uint_eq(stats().responses, 1);
	dc_expect_quiet(d);
	dc_clear(d);
}
END_TEST

START_TEST(ads_initial_request_for_an_unset_type_gets_one_empty_response)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = dc_wildcard(d, c, AUTHZ);

	ck_assert_str_eq(summary(r), "");
	ck_assert_str_eq(r->type_url, AUTHZ);
	ck_assert_str_eq(r->system_version_info, "0");
	dc_expect_quiet(d);
	/* The first set of that type reaches the stream that was already waiting. */
	ck_assert_int_eq(set(AUTHZ, "ns/deny@1"), 1);
	ck_assert_str_eq(summary(dc_next(d)), "+ns/deny@1");
	dc_clear(d);
}
END_TEST

/* ---- incremental pushes ------------------------------------------------------------------ */

START_TEST(ads_set_pushes_exactly_the_changed_added_and_removed)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;

	set(ADDR, "a@1 b@1 c@1 d@1");
	r = dc_wildcard(d, c, ADDR);
	ck_assert_str_eq(summary(r), "+a@1 +b@1 +c@1 +d@1");
	dc_ack(d, r);
	/* b changed, e added, c removed, a and d unchanged. */
	ck_assert_int_eq(set(ADDR, "a@1 b@2 d@1 e@1"), 3);
	r = dc_next(d);
	ck_assert_str_eq(summary(r), "+b@2 +e@1 -c");
	ck_assert_str_eq(r->system_version_info, "2");
	dc_ack(d, r);
	/* The same set again changes nothing and pushes nothing. */
	ck_assert_int_eq(set(ADDR, "d@1 e@1 b@2 a@1"), 0);
	dc_expect_quiet(d);
	/* Emptying the type removes everything the client holds. */
	ck_assert_int_eq(set(ADDR, ""), 4);
	ck_assert_str_eq(summary(dc_next(d)), "-a -b -d -e");
	ck_assert_uint_eq(fi_ads_count(ads, ADDR), 0);
	dc_clear(d);
}
END_TEST

/* Resources given with the hints of the previous set are matched by pointer: the pushes are
 * what fi_ads_set makes of the same input, in order or not. */
START_TEST(ads_hinted_set_pushes_what_a_plain_set_would)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
#define RES(n, v) ((struct fi_resource){n, v, (uint8_t *)(n "=" v), sizeof(n "=" v) - 1})
	struct fi_resource one[] = {RES("a", "1"), RES("b", "1"), RES("c", "1"), RES("d", "1"),
	                            RES("e", "1")};
	const void *h1[5], *h2[5], *h3[5];

	ck_assert_int_eq(fi_ads_set_hinted(ads, ADDR, one, 5, h1), 5);
	r = dc_wildcard(d, c, ADDR);
	ck_assert_str_eq(summary(r), "+a@1 +b@1 +c@1 +d@1 +e@1");
	dc_ack(d, r);
	/* b changed (no hint), c removed, f added; a, d and e hinted. */
	struct fi_resource two[] = {RES("a", "1"), RES("b", "2"), RES("d", "1"), RES("e", "1"),
	                            RES("f", "1")};
	two[0].held = h1[0];
	two[2].held = h1[3];
	two[3].held = h1[4];
	ck_assert_int_eq(fi_ads_set_hinted(ads, ADDR, two, 5, h2), 3);
	ck_assert_ptr_eq(h2[0], h1[0]);
	ck_assert_ptr_ne(h2[1], h1[1]);
	r = dc_next(d);
	ck_assert_str_eq(summary(r), "+b@2 +f@1 -c");
	dc_ack(d, r);
	/* Out of order with every hint: nothing changed. */
	struct fi_resource three[] = {RES("e", "1"), RES("a", "1"), RES("f", "1"), RES("d", "1"),
	                              RES("b", "2")};
	three[0].held = h2[3];
	three[1].held = h2[0];
	three[2].held = h2[4];
	three[3].held = h2[2];
	three[4].held = h2[1];
	ck_assert_int_eq(fi_ads_set_hinted(ads, ADDR, three, 5, h3), 0);
	ck_assert_ptr_eq(h3[0], h2[3]);
	dc_expect_quiet(d);
	ck_assert_uint_eq(fi_ads_count(ads, ADDR), 5);
#undef RES
	dc_clear(d);
}
END_TEST

START_TEST(ads_sets_before_the_loop_runs_coalesce_into_one_push)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];

	set(ADDR, "a@1 b@1");
	dc_ack(d, dc_wildcard(d, c, ADDR));
	ck_assert_int_eq(set(ADDR, "a@2 b@1"), 1);
	ck_assert_int_eq(set(ADDR, "a@3 c@1"), 3);
	ck_assert_str_eq(summary(dc_next(d)), "+a@3 +c@1 -b");
	dc_expect_quiet(d);
	dc_clear(d);
}
END_TEST

/* ---- ACK / NACK -------------------------------------------------------------------------- */

START_TEST(ads_ack_is_counted_and_nack_is_logged_without_resend)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
	char want[512];

	set(ADDR, "a@1");
	r = dc_wildcard(d, c, ADDR);
	dc_ack(d, r);
	RUN_UNTIL(loop, stats().acks == 1, 5000);
	ck_assert_uint_eq(stats().nacks, 0);

	set(ADDR, "a@2");
	r = dc_next(d);
	ck_assert_str_eq(summary(r), "+a@2");
	dc_send(d, &(struct rq){.type = ADDR, .nonce = r->nonce, .nack = "a: bad\nworkload"});
	RUN_UNTIL(loop, stats().nacks == 1, 5000);
	ck_assert_uint_eq(stats().acks, 1);
	/* Logged with node id, type, nonce and the message (control bytes made harmless). */
	snprintf(want, sizeof(want), "NACK from node %s for %s nonce %s: code 3: a: bad?workload",
	         NODE, ADDR, r->nonce);
	ck_assert_msg(strstr(logbuf, want) != NULL, "log lacks \"%s\":\n%s", want, logbuf);
	ck_assert_ptr_nonnull(strstr(logbuf, "\twarn\tads\t"));
	/* Not resent, and later changes still flow. */
	dc_expect_quiet(d);
	set(ADDR, "a@3");
	ck_assert_str_eq(summary(dc_next(d)), "+a@3");
	dc_clear(d);
}
END_TEST

START_TEST(ads_stale_unknown_and_repeated_nonces_are_ignored)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r1, *r2;

	set(ADDR, "a@1");
	r1 = dc_wildcard(d, c, ADDR);
	set(ADDR, "a@2");
	r2 = dc_next(d);
	ck_assert_str_ne(r1->nonce, r2->nonce);
	/* Pipelined: the older response is acknowledged after the newer one was sent. */
	dc_ack(d, r1);
	RUN_UNTIL(loop, stats().acks == 1, 5000);
	dc_ack(d, r1); /* already answered */
	dc_send(d, &(struct rq){.type = ADDR, .nonce = "no-such-nonce"});
	dc_send(d, &(struct rq){.type = ADDR, .nonce = "99999999999999999999999"});
	RUN_UNTIL(loop, stats().stale == 3, 5000);
	/* A nonce of the Address stream given for another type is not that type's either. */
	dc_send(d, &(struct rq){.type = AUTHZ});
	ck_assert_str_eq(summary(dc_next(d)), "");
	dc_send(d, &(struct rq){.type = AUTHZ, .nonce = r2->nonce, .nack = "x"});
	RUN_UNTIL(loop, stats().stale == 4, 5000);
	ck_assert_uint_eq(stats().nacks, 0);
	dc_ack(d, r2);
	RUN_UNTIL(loop, stats().acks == 2, 5000);
	dc_send(d, &(struct rq){.type = ADDR, .nonce = r2->nonce, .nack = "late"});
	RUN_UNTIL(loop, stats().stale == 5, 5000);
	ck_assert_uint_eq(stats().nacks, 0);
	ck_assert_ptr_null(strstr(logbuf, "NACK"));
	dc_expect_quiet(d);
	dc_clear(d);
}
END_TEST

/* ---- reconnect --------------------------------------------------------------------------- */

START_TEST(ads_reconnect_with_initial_versions_gets_only_changed_and_removed)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;

	set(ADDR, "a@1 b@1 c@1");
	dc_ack(d, dc_wildcard(d, c, ADDR));
	zt_grpc_call_cancel(d->call);
	RUN_UNTIL(loop, d->done, 5000);
	dc_clear(d);
	RUN_UNTIL(loop, stats().streams == 0, 5000);

	/* While away: b changed, c removed, e added; the client also holds a stale x. */
	set(ADDR, "a@1 b@2 e@1");
	c = connect_conn(1);
	dc_open(d, c);
	dc_send(d, &(struct rq){.type = ADDR,
	                        .node = NODE,
	                        .init = (const char *const[]){"a@1", "b@1", "c@1", "x@9", NULL}});
	r = dc_next(d);
	ck_assert_str_eq(summary(r), "+b@2 +e@1 -c -x");
	dc_ack(d, r);
	dc_expect_quiet(d);
	/* From then on it is an ordinary stream. */
	set(ADDR, "a@2 b@2 e@1");
	ck_assert_str_eq(summary(dc_next(d)), "+a@2");
	dc_clear(d);
}
END_TEST

START_TEST(ads_reconnect_with_everything_current_still_gets_one_empty_response)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;

	set(ADDR, "a@1 b@1");
	dc_open(d, c);
	dc_send(d, &(struct rq){.type = ADDR, .init = (const char *const[]){"a@1", "b@1", NULL}});
	r = dc_next(d);
	ck_assert_str_eq(summary(r), "");
	ck_assert_str_eq(r->system_version_info, "1");
	dc_expect_quiet(d);
	dc_clear(d);
}
END_TEST

/* ---- several streams and types ----------------------------------------------------------- */

START_TEST(ads_two_streams_both_receive_pushes_sharing_one_copy)
{
	struct zt_h2_conn *c1 = connect_conn(0), *c2 = connect_conn(1);
	struct dc *d1 = &D[0], *d2 = &D[1];

	set(ADDR, "a@1 b@1 c@1");
	ck_assert_str_eq(summary(dc_wildcard(d1, c1, ADDR)), "+a@1 +b@1 +c@1");
	ck_assert_str_eq(summary(dc_wildcard(d2, c2, ADDR)), "+a@1 +b@1 +c@1");
	ck_assert_uint_eq(stats().streams, 2);
	/* Both streams reference the set's resources; nothing is copied per stream. */
	ck_assert_int_eq(fx_live("fi_ads_resource"), 3);
	set(ADDR, "a@2 b@1 c@1");
	ck_assert_str_eq(summary(dc_next(d1)), "+a@2");
	ck_assert_str_eq(summary(dc_next(d2)), "+a@2");
	ck_assert_int_eq(fx_live("fi_ads_resource"), 3);
	/* A third stream on the first connection. */
	{
		struct dc *d3 = &D[2];

		ck_assert_str_eq(summary(dc_wildcard(d3, c1, ADDR)), "+a@2 +b@1 +c@1");
		set(ADDR, "b@1");
		ck_assert_str_eq(summary(dc_next(d3)), "-a -c");
		dc_clear(d3);
	}
	ck_assert_str_eq(summary(dc_next(d1)), "-a -c");
	ck_assert_str_eq(summary(dc_next(d2)), "-a -c");
	ck_assert_int_eq(fx_live("fi_ads_resource"), 1);
	dc_clear(d1);
	dc_clear(d2);
}
END_TEST

START_TEST(ads_types_are_independent)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;

	set(ADDR, "a@1");
	set(AUTHZ, "ns/p@1");
	r = dc_wildcard(d, c, ADDR);
	ck_assert_str_eq(summary(r), "+a@1");
	dc_ack(d, r);
	/* A change of a type the stream has not subscribed to is not sent. */
	set(AUTHZ, "ns/p@2");
	dc_expect_quiet(d);
	dc_send(d, &(struct rq){.type = AUTHZ});
	r = dc_next(d);
	ck_assert_str_eq(r->type_url, AUTHZ);
	ck_assert_str_eq(summary(r), "+ns/p@2");
	/* Same resource name in both types: separate resources, separate pushes. */
	set(AUTHZ, "a@5");
	r = dc_next(d);
	ck_assert_str_eq(r->type_url, AUTHZ);
	ck_assert_str_eq(summary(r), "+a@5 -ns/p");
	dc_expect_quiet(d);
	set(ADDR, "");
	r = dc_next(d);
	ck_assert_str_eq(r->type_url, ADDR);
	ck_assert_str_eq(summary(r), "-a");
	ck_assert_uint_eq(fi_ads_count(ads, AUTHZ), 1);
	dc_clear(d);
}
END_TEST

/* ---- explicit subscriptions -------------------------------------------------------------- */

START_TEST(ads_explicit_subscription_gets_only_named_resources)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;

	set(ADDR, "a@1 b@1 c@1");
	dc_open(d, c);
	dc_send(d, &(struct rq){.type = ADDR,
	                        .sub = (const char *const[]){"a", "zz", "a", "zz", NULL}});
	r = dc_next(d);
	/* zz does not exist: it is reported removed so the client stops waiting for it. */
	ck_assert_str_eq(summary(r), "+a@1 -zz");
	dc_ack(d, r);
	set(ADDR, "a@1 b@2 c@1"); /* not subscribed */
	dc_expect_quiet(d);
	set(ADDR, "a@2 b@2 c@1 zz@1");
	ck_assert_str_eq(summary(dc_next(d)), "+a@2 +zz@1");
	/* More names later; unsubscribed ones stop flowing. */
	dc_send(d, &(struct rq){.type = ADDR,
	                        .sub = (const char *const[]){"c", NULL},
	                        .unsub = (const char *const[]){"a", NULL}});
	ck_assert_str_eq(summary(dc_next(d)), "+c@1");
	set(ADDR, "a@3 b@2 c@1 zz@1");
	dc_expect_quiet(d);
	/* Wildcard on top of the explicit names brings in everything else. */
	dc_send(d, &(struct rq){.type = ADDR, .sub = (const char *const[]){"*", NULL}});
	ck_assert_str_eq(summary(dc_next(d)), "+a@3 +b@2");
	dc_clear(d);
}
END_TEST

START_TEST(ads_on_demand_client_subscribes_to_nothing_then_to_one_name)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];

	set(ADDR, "/10.0.0.7@1 other@1");
	dc_open(d, c);
	/* spec §3.4: subscribe and unsubscribe "*" together means nothing at all. */
	dc_send(d, &(struct rq){.type = ADDR,
	                        .node = NODE,
	                        .sub = (const char *const[]){"*", NULL},
	                        .unsub = (const char *const[]){"*", NULL}});
	ck_assert_str_eq(summary(dc_next(d)), "");
	set(ADDR, "/10.0.0.7@2 other@2");
	dc_expect_quiet(d);
	dc_send(d, &(struct rq){.type = ADDR, .sub = (const char *const[]){"/10.0.0.7", NULL}});
	ck_assert_str_eq(summary(dc_next(d)), "+/10.0.0.7@2");
	/* Asking again for a name it holds answers again (a lookup waits for a mention). */
	dc_send(d, &(struct rq){.type = ADDR, .sub = (const char *const[]){"/10.0.0.7", NULL}});
	ck_assert_str_eq(summary(dc_next(d)), "+/10.0.0.7@2");
	dc_expect_quiet(d);
	/* Its removal is reported once; the unsubscribed name stays unmentioned. */
	set(ADDR, "other@3");
	ck_assert_str_eq(summary(dc_next(d)), "-/10.0.0.7");
	/* A name that does not exist is reported removed each time it is asked for. */
	for (int i = 0; i < 2; i++) {
		dc_send(d, &(struct rq){.type = ADDR,
		                        .sub = (const char *const[]){"/10.0.0.9", NULL}});
		ck_assert_str_eq(summary(dc_next(d)), "-/10.0.0.9");
	}
	dc_expect_quiet(d);
	dc_clear(d);
}
END_TEST

/* ---- bad requests ------------------------------------------------------------------------ */

START_TEST(ads_garbage_request_ends_stream_invalid_argument_and_server_keeps_serving)
{
	static const uint8_t garbage[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x'};
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0], *ok = &D[1];

	set(ADDR, "a@1");
	dc_open(d, c);
	dc_send_raw(d, garbage, sizeof(garbage));
	dc_close_send(d);
	RUN_UNTIL(loop, d->done, 5000);
	ck_assert_int_eq(d->code, ZT_GRPC_INVALID_ARGUMENT);
	ck_assert_str_eq(d->msg, "malformed DeltaDiscoveryRequest");
	ck_assert_uint_eq(d->nresp, 0);
	ck_assert_uint_eq(stats().rejected, 1);
	RUN_UNTIL(loop, stats().streams == 0, 5000);
	/* Same connection, new stream: served normally. */
	ck_assert_str_eq(summary(dc_wildcard(ok, c, ADDR)), "+a@1");
	dc_clear(ok);
}
END_TEST

START_TEST(ads_request_without_type_url_ends_stream_invalid_argument)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];

	set(ADDR, "a@1");
	dc_open(d, c);
	dc_send(d, &(struct rq){.node = NODE});
	dc_close_send(d);
	RUN_UNTIL(loop, d->done, 5000);
	ck_assert_int_eq(d->code, ZT_GRPC_INVALID_ARGUMENT);
	ck_assert_str_eq(d->msg, "DeltaDiscoveryRequest without type_url");
	ck_assert_uint_eq(d->nresp, 0);
	/* The bad request comes after a good one: the stream had been served, then ends. */
	dc_ack(d, dc_wildcard(d, c, ADDR));
	dc_send(d, &(struct rq){.type = ""});
	dc_close_send(d);
	RUN_UNTIL(loop, d->done, 5000);
	ck_assert_int_eq(d->code, ZT_GRPC_INVALID_ARGUMENT);
	ck_assert_uint_eq(stats().rejected, 2);
	dc_clear(d);
}
END_TEST

START_TEST(ads_too_many_types_on_one_stream_end_it_resource_exhausted)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	char type[64];

	dc_open(d, c);
	for (int i = 0; i <= FI_ADS_MAX_TYPES; i++) {
		snprintf(type, sizeof(type), "type.googleapis.com/t%d", i);
		dc_send(d, &(struct rq){.type = type});
	}
	dc_close_send(d);
	RUN_UNTIL(loop, d->done, 5000);
	ck_assert_int_eq(d->code, ZT_GRPC_RESOURCE_EXHAUSTED);
	ck_assert_uint_eq(d->nresp, FI_ADS_MAX_TYPES);
	dc_clear(d);
}
END_TEST

/* ---- lifetimes --------------------------------------------------------------------------- */

START_TEST(ads_stream_closed_by_client_frees_its_state)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d1 = &D[0], *d2 = &D[1];

	set(ADDR, "a@1 b@1");
	dc_wildcard(d1, c, ADDR);
	dc_wildcard(d2, c, ADDR);
	ck_assert_int_eq(fx_live("fi_ads_stream"), 2);
	/* Cancelled by the client. */
	zt_grpc_call_cancel(d1->call);
	RUN_UNTIL(loop, stats().streams == 1, 5000);
	ck_assert_int_eq(fx_live("fi_ads_stream"), 1);
	/* Half-closed by the client: the server ends the stream with OK. */
	ck_assert_int_eq(zt_grpc_call_close_send(d2->call), 0);
	RUN_UNTIL(loop, d2->done, 5000);
	ck_assert_int_eq(d2->code, ZT_GRPC_OK);
	RUN_UNTIL(loop, stats().streams == 0, 5000);
	ck_assert_int_eq(fx_live("fi_ads_stream"), 0);
	/* The set is all that holds resources now; a push reaches nobody. */
	ck_assert_int_eq(fx_live("fi_ads_resource"), 2);
	ck_assert_int_eq(set(ADDR, "a@2"), 2);
	fx_run_for(loop, 50);
	ck_assert_int_eq(fx_live("fi_ads_resource"), 1);
	ck_assert_uint_eq(stats().responses, 2);
	dc_clear(d1);
	dc_clear(d2);
}
END_TEST

START_TEST(ads_connection_loss_frees_every_stream_on_it)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d1 = &D[0], *d2 = &D[1];

	set(ADDR, "a@1");
	dc_wildcard(d1, c, ADDR);
	dc_wildcard(d2, c, ADDR);
	zt_h2_conn_close(c, "gone");
	RUN_UNTIL(loop, d1->done && d2->done && stats().streams == 0, 5000);
	ck_assert_int_eq(fx_live("fi_ads_stream"), 0);
	dc_clear(d1);
	dc_clear(d2);
}
END_TEST

START_TEST(ads_free_with_open_streams_cancels_them)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];

	set(ADDR, "a@1");
	dc_wildcard(d, c, ADDR);
	fi_ads_free(ads);
	ads = NULL;
	ck_assert_int_eq(fx_live("fi_ads_stream"), 0);
	ck_assert_int_eq(fx_live("fi_ads_resource"), 0);
	RUN_UNTIL(loop, d->done, 5000);
	ck_assert(d->code == ZT_GRPC_CANCELLED || d->code == ZT_GRPC_UNAVAILABLE);
	dc_clear(d);
}
END_TEST

/* ---- fi_ads_set input -------------------------------------------------------------------- */

START_TEST(ads_set_refuses_bad_input_and_changes_nothing)
{
	uint8_t big[2048] = {0};
	struct fi_resource r[2] = {{"a", "1", (uint8_t *)"x", 1}, {"b", "1", NULL, 0}};
	char url[FI_ADS_MAX_TYPE_URL + 2];

	ck_assert_int_eq(fi_ads_set(ads, ADDR, r, 2), 2);
	ck_assert_int_eq(fi_ads_set(ads, NULL, r, 2), -EINVAL);
	ck_assert_int_eq(fi_ads_set(ads, "", r, 2), -EINVAL);
	memset(url, 'u', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	ck_assert_int_eq(fi_ads_set(ads, url, r, 2), -EINVAL);
	ck_assert_int_eq(fi_ads_set(ads, ADDR, NULL, 1), -EINVAL);
	ck_assert_int_eq(fi_ads_set(ads, ADDR, (struct fi_resource[]){{NULL, "1", NULL, 0}}, 1),
	                 -EINVAL);
	ck_assert_int_eq(fi_ads_set(ads, ADDR, (struct fi_resource[]){{"", "1", NULL, 0}}, 1),
	                 -EINVAL);
	ck_assert_int_eq(fi_ads_set(ads, ADDR, (struct fi_resource[]){{"a", NULL, NULL, 0}}, 1),
	                 -EINVAL);
	ck_assert_int_eq(fi_ads_set(ads, ADDR, (struct fi_resource[]){{"a", "2", NULL, 3}}, 1),
	                 -EINVAL);
	ck_assert_int_eq(
	        fi_ads_set(ads, ADDR,
	                   (struct fi_resource[]){{"a", "2", NULL, 0}, {"a", "3", NULL, 0}}, 2),
	        -EINVAL);
	fi_ads_set_max_msg(ads, 1024);
	ck_assert_int_eq(fi_ads_set(ads, ADDR, (struct fi_resource[]){{"c", "1", big, 1000}}, 1),
	                 ZT_E_TOOBIG);
	/* Still the first set, and a new type was not created by a refused set. */
	ck_assert_uint_eq(fi_ads_count(ads, ADDR), 2);
	ck_assert_int_eq(fi_ads_set(ads, ADDR, r, 2), 0);
	ck_assert_int_eq(fi_ads_set(ads, AUTHZ, (struct fi_resource[]){{"c", "1", big, 1000}}, 1),
	                 ZT_E_TOOBIG);
	ck_assert_uint_eq(fi_ads_count(ads, AUTHZ), 0);
	ck_assert_int_eq(fx_live("fi_ads_resource"), 2);
}
END_TEST

/* ---- bounds ------------------------------------------------------------------------------ */

START_TEST(ads_large_push_is_split_into_responses_under_max_msg)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	char spec[1024] = "";
	bool got[20] = {false};
	size_t seen = 0, o = 0;

	fi_ads_set_max_msg(ads, 4096);
	for (int i = 0; i < 20; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "r%02d@1 ", i);
	ck_assert_int_eq(set_pad(ADDR, spec, 1000), 20);
	dc_open(d, c);
	dc_send(d, &(struct rq){.type = ADDR});
	/* Each response holds at most three 1 KiB resources; together they hold all twenty,
	 * each once. */
	while (seen < 20) {
		Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = dc_next(d);

		ck_assert_uint_le(protobuf_c_message_get_packed_size(&r->base), 4096);
		ck_assert_uint_ge(r->n_resources, 1);
		ck_assert_uint_le(r->n_resources, 3);
		summary(r); /* checks every payload */
		for (size_t i = 0; i < r->n_resources; i++) {
			const char *name = r->resources[i]->name;
			char *end = NULL;
			long k = name[0] == 'r' ? strtol(name + 1, &end, 10) : -1;

			ck_assert(k >= 0 && k < 20 && *end == '\0' && !got[k]);
			got[k] = true;
		}
		seen += r->n_resources;
		/* Every part but the last says more follows (ztunnel's "synced" waits for it). */
		size_t vl = strlen(r->system_version_info);
		ck_assert_int_eq(vl > 5 && strcmp(r->system_version_info + vl - 5, ";more") == 0,
		                 seen < 20);
	}
	ck_assert_uint_ge(d->nresp, 7);
	dc_expect_quiet(d);
	dc_clear(d);
}
END_TEST

/* Reads responses until the names r00..r(n-1) have all arrived once each at version v. */
static size_t read_all_at(struct dc *d, int n, const char *v, size_t max_msg)
{
	bool got[32] = {false};
	int seen = 0;
	size_t responses = 0;

	while (seen < n) {
		Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = dc_next(d);

		responses++;
		ck_assert_uint_le(protobuf_c_message_get_packed_size(&r->base), max_msg);
		ck_assert_uint_eq(r->n_removed_resources, 0);
		summary(r);
		for (size_t i = 0; i < r->n_resources; i++) {
			const char *name = r->resources[i]->name;
			char *end = NULL;
			long k = name[0] == 'r' ? strtol(name + 1, &end, 10) : -1;

			ck_assert(k >= 0 && k < n && *end == '\0' && !got[k]);
			ck_assert_str_eq(r->resources[i]->version, v);
			got[k] = true;
			seen++;
		}
		dc_ack(d, r);
	}
	return responses;
}

/* A synced wildcard stream keeps one reference to the set it holds; the next push is the
 * difference from it, split when it does not fit one response, and a later explicit name
 * still works on top of it. */
START_TEST(ads_synced_stream_gets_differences_from_the_set_it_holds)
{
	struct zt_h2_conn *c = connect_conn(0);
	struct dc *d = &D[0];
	char spec[1024];
	size_t o = 0;

	fi_ads_set_max_msg(ads, 4096);
	for (int i = 0; i < 20; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "r%02d@1 ", i);
	ck_assert_int_eq(set_pad(ADDR, spec, 1000), 20);
	dc_open(d, c);
	dc_send(d, &(struct rq){.type = ADDR});
	ck_assert_uint_ge(read_all_at(d, 20, "1", 4096), 7);
	uint64_t base0 = stats().from_base;
	/* Every resource changed: more than one response can hold, so it is split again. */
	o = 0;
	for (int i = 0; i < 20; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "r%02d@2 ", i);
	ck_assert_int_eq(set_pad(ADDR, spec, 1000), 20);
	ck_assert_uint_ge(read_all_at(d, 20, "2", 4096), 7);
	dc_expect_quiet(d);
	/* One changed, one removed, one added: exactly that, in one response. */
	ck_assert_int_eq(set_pad(ADDR, "r00@2 r01@2 r02@3 r04@2 r05@2 r06@2 r07@2 r08@2 r09@2 "
	                                "r10@2 r11@2 r12@2 r13@2 r14@2 r15@2 r16@2 r17@2 r18@2 "
	                                "r19@2 r20@1",
	                         1000),
	                 3);
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = dc_next(d);
	ck_assert_str_eq(summary(r), "+r02@3 +r20@1 -r03");
	ck_assert_uint_eq(stats().from_base, base0 + 1);
	dc_ack(d, r);
	dc_expect_quiet(d);
	/* An explicit name for something absent is answered as removed; pushes go on. */
	dc_send(d, &(struct rq){.type = ADDR, .sub = (const char *const[]){"zz", NULL}});
	ck_assert_str_eq(summary(dc_next(d)), "-zz");
	ck_assert_int_eq(set_pad(ADDR, "r00@2 r01@2 r02@3 r04@2 r05@2 r06@2 r07@2 r08@2 r09@2 "
	                                "r10@2 r11@2 r12@2 r13@2 r14@2 r15@2 r16@2 r17@2 r18@2 "
	                                "r19@2 r20@2",
	                         1000),
	                 1);
	ck_assert_str_eq(summary(dc_next(d)), "+r20@2");
	dc_expect_quiet(d);
	dc_clear(d);
}
END_TEST

static void lazy_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct lazy *l = arg;

	ck_assert_int_eq(zt_buf_append(&l->in, p, len), 0);
	if (l->reading)
		zt_h2_stream_consume(st, len);
	else
		l->unconsumed += len;
}

static void lazy_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	(void)st;
	(void)code;
	((struct lazy *)arg)->closed = true;
	((struct lazy *)arg)->st = NULL;
}

static const struct zt_h2_stream_cbs lazy_cbs = {.on_data = lazy_data, .on_close = lazy_close};

/* Applies every response in the bytes received to a name -> version state ("a@1 b@2"). */
struct state {
	char names[64][16];
	char versions[64][16];
	size_t n, responses, removed;
};

static int apply_resp(const uint8_t *p, size_t len, void *arg)
{
	struct state *s = arg;
	ProtobufCMessage *m = NULL;
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;

	ck_assert_int_eq(
	        zt_pb_unpack(&envoy__service__discovery__v3__delta_discovery_response__descriptor,
	                     p, len, 64u << 20, &m),
	        0);
	r = (Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *)m;
	s->responses++;
	for (size_t i = 0; i < r->n_resources; i++) {
		size_t k = 0;

		while (k < s->n && strcmp(s->names[k], r->resources[i]->name) != 0)
			k++;
		ck_assert_uint_lt(k, 64);
		if (k == s->n)
			s->n++;
		snprintf(s->names[k], sizeof(s->names[k]), "%s", r->resources[i]->name);
		snprintf(s->versions[k], sizeof(s->versions[k]), "%s", r->resources[i]->version);
	}
	for (size_t i = 0; i < r->n_removed_resources; i++) {
		size_t k = 0;

		while (k < s->n && strcmp(s->names[k], r->removed_resources[i]) != 0)
			k++;
		ck_assert_msg(k < s->n, "%s removed, never sent", r->removed_resources[i]);
		memmove(s->names[k], s->names[k + 1], (s->n - k - 1) * sizeof(s->names[0]));
		memmove(s->versions[k], s->versions[k + 1], (s->n - k - 1) * sizeof(s->versions[0]));
		s->n--;
		s->removed++;
	}
	zt_pb_free(m);
	return 0;
}

/* Applies the responses received so far; true once every response sent was seen whole. */
static bool caught_up(struct zt_grpc_reader *rd, struct state *st)
{
	ck_assert_int_eq(
	        zt_grpc_reader_feed(rd, zt_buf_data(&L.in), zt_buf_len(&L.in), apply_resp, st), 0);
	zt_buf_consume(&L.in, zt_buf_len(&L.in));
	return st->responses >= 2 && st->responses == stats().responses;
}

/* Opens l's stream on c with a wildcard request for ADDR; the client reads nothing yet. */
static void lazy_open(struct lazy *l, struct zt_h2_conn *c)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest rq =
	        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	uint8_t *buf, prefix[ZT_GRPC_PREFIX];
	size_t len;
	int err = 0;
	struct zt_h2_header h[] = {
	        ZT_H2_HDR(":method", "POST"),
	        ZT_H2_HDR(":scheme", "https"),
	        ZT_H2_HDR(":path", FI_ADS_METHOD_PATH),
	        ZT_H2_HDR(":authority", "istiod"),
	        ZT_H2_HDR("content-type", "application/grpc"),
	        ZT_H2_HDR("te", "trailers"),
	};

	l->st = zt_h2_request(c, h, sizeof(h) / sizeof(h[0]), false, &lazy_cbs, l, &err);
	ck_assert_ptr_nonnull(l->st);
	rq.type_url = ADDR;
	ck_assert_int_eq(zt_pb_pack(&rq.base, &buf, &len), 0);
	zt_grpc_frame_prefix(prefix, (uint32_t)len);
	ck_assert_int_eq(zt_h2_stream_write_all(l->st, prefix, sizeof(prefix)), 0);
	ck_assert_int_eq(zt_h2_stream_write_all(l->st, buf, len), 0);
	free(buf);
}

START_TEST(ads_client_that_stops_reading_gets_the_latest_state_coalesced)
{
	struct zt_h2_conn *c;
	struct lazy *l = &L;
	struct zt_grpc_reader rd;
	struct state state = {0};
	char spec[512] = "";

	cset.stream_window = 65535;
	c = connect_conn(0);
	zt_buf_init(&l->in, 0);
	for (int v = 1; v <= 30; v++) {
		size_t o = 0;

		for (int i = 0; i < 10; i++)
			o += (size_t)snprintf(spec + o, sizeof(spec) - o, "r%d@%d ", i, v);
		ck_assert_int_ge(set_pad(ADDR, spec, 100000), 0);
		if (v > 1)
			continue;
		/* First version: open the stream and let the server fill the window and its
		 * send buffer with the initial 1 MB response. */
		lazy_open(l, c);
		RUN_UNTIL(loop, l->unconsumed >= 65535 - 64, 5000);
	}
	fx_run_for(loop, 100);
	/* 29 changes of every resource later: still the one response, and memory holds only
	 * the current set plus what the stream's client was sent. */
	ck_assert_uint_eq(stats().responses, 1);
	ck_assert_int_le(fx_live("fi_ads_resource"), 20);
	ck_assert(!l->closed);

	/* Reading again brings the rest of the first response, then the latest state. */
	l->reading = true;
	zt_h2_stream_consume(l->st, l->unconsumed);
	zt_grpc_reader_init(&rd, 64u << 20);
	RUN_UNTIL(loop, caught_up(&rd, &state), 5000);
	ck_assert_uint_eq(stats().responses, 2);
	ck_assert_uint_eq(state.n, 10);
	ck_assert_uint_eq(state.removed, 0);
	for (size_t i = 0; i < state.n; i++)
		ck_assert_str_eq(state.versions[i], "30");
	zt_grpc_reader_clear(&rd);
	zt_buf_clear(&l->in);
}
END_TEST

/* A first send in parts (the client holds a growing prefix of one set) that a new set
 * interrupts: the client ends with exactly the new set. A resource it was sent and that is
 * gone is reported removed, one gone before it was sent never appears, changes on both
 * sides of the prefix arrive. */
START_TEST(ads_first_send_in_parts_interrupted_by_a_new_set_ends_at_the_new_set)
{
	struct zt_h2_conn *c;
	struct lazy *l = &L;
	struct zt_grpc_reader rd;
	struct state state = {0};
	char spec[1024];
	size_t o = 0;

	cset.stream_window = 65535;
	c = connect_conn(0);
	zt_buf_init(&l->in, 0);
	fi_ads_set_max_msg(ads, 45000); /* two 20 kB resources per response */
	for (int i = 0; i < 50; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "r%02d@1 ", i);
	ck_assert_int_eq(set_pad(ADDR, spec, 20000), 50);
	lazy_open(l, c);
	/* The server sends parts until its send buffer is full: a prefix of the set. */
	RUN_UNTIL(loop, l->unconsumed >= 65535 - 64, 5000);
	fx_run_for(loop, 100);
	uint64_t parts = stats().responses;
	ck_assert_uint_gt(parts, 2);
	ck_assert_uint_lt(parts, 20);
	/* r00 (sent) changed, r01 (sent) removed, r30 (not sent) changed, r49 (not sent)
	 * removed, r50 added. */
	o = (size_t)snprintf(spec, sizeof(spec), "r00@2 ");
	for (int i = 2; i < 49; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "r%02d@%d ", i, i == 30 ? 2 : 1);
	snprintf(spec + o, sizeof(spec) - o, "r50@1");
	ck_assert_int_eq(set_pad(ADDR, spec, 20000), 5);

	l->reading = true;
	zt_h2_stream_consume(l->st, l->unconsumed);
	zt_grpc_reader_init(&rd, 64u << 20);
	RUN_UNTIL(loop, caught_up(&rd, &state) && state.n == 49, 5000);
	fx_run_for(loop, 100);
	ck_assert(caught_up(&rd, &state));
	ck_assert_uint_eq(state.removed, 1); /* r01 */
	ck_assert_uint_eq(state.n, 49);
	for (size_t i = 0; i < state.n; i++) {
		long k = strtol(state.names[i] + 1, NULL, 10);
		ck_assert_msg(k != 1 && k != 49, "%s", state.names[i]);
		ck_assert_str_eq(state.versions[i], k == 0 || k == 30 ? "2" : "1");
	}
	zt_grpc_reader_clear(&rd);
	zt_buf_clear(&l->in);
}
END_TEST

Suite *ads_suite(void);
Suite *ads_suite(void)
{
	Suite *s = suite_create("ads");
	TCase *tc = tcase_create("ads");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, ads_initial_wildcard_request_gets_every_resource);
	tcase_add_test(tc, ads_initial_request_for_an_unset_type_gets_one_empty_response);
	tcase_add_test(tc, ads_set_pushes_exactly_the_changed_added_and_removed);
	tcase_add_test(tc, ads_hinted_set_pushes_what_a_plain_set_would);
	tcase_add_test(tc, ads_sets_before_the_loop_runs_coalesce_into_one_push);
	tcase_add_test(tc, ads_ack_is_counted_and_nack_is_logged_without_resend);
	tcase_add_test(tc, ads_stale_unknown_and_repeated_nonces_are_ignored);
	tcase_add_test(tc, ads_reconnect_with_initial_versions_gets_only_changed_and_removed);
	tcase_add_test(tc, ads_reconnect_with_everything_current_still_gets_one_empty_response);
	tcase_add_test(tc, ads_two_streams_both_receive_pushes_sharing_one_copy);
	tcase_add_test(tc, ads_types_are_independent);
	tcase_add_test(tc, ads_explicit_subscription_gets_only_named_resources);
	tcase_add_test(tc, ads_on_demand_client_subscribes_to_nothing_then_to_one_name);
	tcase_add_test(tc,
	               ads_garbage_request_ends_stream_invalid_argument_and_server_keeps_serving);
	tcase_add_test(tc, ads_request_without_type_url_ends_stream_invalid_argument);
	tcase_add_test(tc, ads_too_many_types_on_one_stream_end_it_resource_exhausted);
	tcase_add_test(tc, ads_stream_closed_by_client_frees_its_state);
	tcase_add_test(tc, ads_connection_loss_frees_every_stream_on_it);
	tcase_add_test(tc, ads_free_with_open_streams_cancels_them);
	tcase_add_test(tc, ads_set_refuses_bad_input_and_changes_nothing);
	tcase_add_test(tc, ads_large_push_is_split_into_responses_under_max_msg);
	tcase_add_test(tc, ads_first_send_in_parts_interrupted_by_a_new_set_ends_at_the_new_set);
	tcase_add_test(tc, ads_synced_stream_gets_differences_from_the_set_it_holds);
	tcase_add_test(tc, ads_client_that_stops_reading_gets_the_latest_state_coalesced);
	suite_add_tcase(s, tc);
	return s;
}
