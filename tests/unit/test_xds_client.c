/* Delta ADS client (xds/client.h) against an in-process istiod stand-in: a TLS gRPC server on
 * loopback (control-plane certificate for istiod.istio-system.svc and 127.0.0.1) that records
 * every request and answers initial requests with Address resources. Covers metadata and
 * node, ACK/NACK with partial acceptance, removals, reconnects announcing accepted versions,
 * backoff, certificate names, hostile responses and teardown without leaks. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "protocol/grpc.h"
#include "protocol/h2.h"
#include "protocol/pb.h"
#include "protocol/sock.h"
#include "protocol/tls.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "loop_fixture.h"
#include "tls_fixture.h"
#include "xds/client.h"

#define AUTHZ_URL  ZT_XDS_TYPE_AUTHORIZATION
#define ADDR_URL   ZT_XDS_TYPE_ADDRESS
#define MAX_REQ    128
#define MAX_STREAM 16

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest Request;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse Response;
typedef Envoy__Service__Discovery__V3__Resource Resource;

static struct zt_loop *loop;
static struct fx_ca ca;

/* ---- the istiod stand-in ----------------------------------------------------------------- */

struct rec_req {
	int stream;
	char type_url[128];
	char nonce[32];
	char error[1024]; /* error_detail.message ("" for an ACK or initial request) */
	bool has_error;
	char node_id[256]; /* "" without a node */
	char meta_name[64];
	char meta_app[64]; /* LABELS.app, a nested Struct */
	json_t *initial;   /* name -> version */
};

struct rec_stream {
	struct zt_grpc_call *call; /* NULL once done */
	char authorization[256], clusterid[64], extra[64];
};

/* A resource the server serves: body "garbage" sends bytes that are no Address. */
struct res {
	const char *name, *version;
	bool garbage;
	const char *any_type; /* NULL: the response's type */
};

static struct {
	struct zt_tls_server *tls;
	int lfd;
	struct zt_io lio;
	uint16_t port;
	struct zt_h2_conn *conns[MAX_STREAM];
	struct rec_stream streams[MAX_STREAM];
	int nstreams;
	struct rec_req reqs[MAX_REQ];
	int nreqs;
	int nonce;
	bool auto_reply; /* answer each initial Address request with addr_res */
	const struct res *addr_res;
	size_t n_addr_res;
	const char *sysver; /* system_version_info of the responses sent; NULL: "" */
} F;

static void rec_stream_clear(void)
{
	for (int i = 0; i < F.nreqs; i++)
		json_decref(F.reqs[i].initial);
	F.nreqs = 0;
}

static uint8_t *address_body(const char *uid, size_t *len)
{
	Istio__Workload__Workload w = ISTIO__WORKLOAD__WORKLOAD__INIT;
	Istio__Workload__Address a = ISTIO__WORKLOAD__ADDRESS__INIT;
	uint8_t *out;

	w.uid = (char *)uid;
	w.name = (char *)uid;
	w.namespace_ = "default";
	a.type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD;
	a.workload = &w;
	ck_assert_int_eq(zt_pb_pack(&a.base, &out, len), 0);
	return out;
}

/* Sends one DeltaDiscoveryResponse on stream s. */
static void fake_send(int s, const char *type_url, const struct res *rs, size_t n,
                      const char *const *removed, size_t nremoved)
{
	Response r = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	Resource res[16], *ptrs[16];
	Google__Protobuf__Any any[16];
	char nonce[32];
	uint8_t *buf;
	size_t len;

	ck_assert_uint_le(n, 16);
	for (size_t i = 0; i < n; i++) {
		envoy__service__discovery__v3__resource__init(&res[i]);
		google__protobuf__any__init(&any[i]);
		res[i].name = (char *)rs[i].name;
		res[i].version = (char *)rs[i].version;
		any[i].type_url = (char *)(rs[i].any_type ? rs[i].any_type : type_url);
		if (rs[i].garbage) {
			any[i].value.data = (uint8_t *)strdup("\xff\xff\xff");
			any[i].value.len = 3;
		} else {
			any[i].value.data = address_body(rs[i].name, &any[i].value.len);
		}
		res[i].resource = &any[i];
		ptrs[i] = &res[i];
	}
	snprintf(nonce, sizeof(nonce), "n%d", ++F.nonce);
	r.system_version_info = (char *)(F.sysver ? F.sysver : "");
	r.type_url = (char *)type_url;
	r.nonce = nonce;
	r.n_resources = n;
	r.resources = ptrs;
	r.n_removed_resources = nremoved;
	r.removed_resources = (char **)removed;
	ck_assert_int_eq(zt_pb_pack(&r.base, &buf, &len), 0);
	ck_assert_ptr_nonnull(F.streams[s].call);
	ck_assert_int_eq(zt_grpc_call_send(F.streams[s].call, buf, len), 0);
	free(buf);
	for (size_t i = 0; i < n; i++)
		free(any[i].value.data);
}

static void fake_on_message(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	int s = (int)(intptr_t)arg;
	ProtobufCMessage *m;
	Request *q;
	struct rec_req *r;

	(void)call;
	ck_assert_int_eq(
	        zt_pb_unpack(&envoy__service__discovery__v3__delta_discovery_request__descriptor, p,
	                     len, 1u << 20, &m),
	        0);
	q = (Request *)m;
	ck_assert_int_lt(F.nreqs, MAX_REQ);
	r = &F.reqs[F.nreqs++];
	memset(r, 0, sizeof(*r));
	r->stream = s;
	snprintf(r->type_url, sizeof(r->type_url), "%s", q->type_url);
	snprintf(r->nonce, sizeof(r->nonce), "%s", q->response_nonce);
	if (q->error_detail) {
		r->has_error = true;
		snprintf(r->error, sizeof(r->error), "%s", q->error_detail->message);
	}
	if (q->node) {
		snprintf(r->node_id, sizeof(r->node_id), "%s", q->node->id);
		for (size_t i = 0; q->node->metadata && i < q->node->metadata->n_fields; i++) {
			const Google__Protobuf__Struct__FieldsEntry *f =
			        q->node->metadata->fields[i];

			if (strcmp(f->key, "NAME") == 0)
				snprintf(r->meta_name, sizeof(r->meta_name), "%s",
				         f->value->string_value);
			if (strcmp(f->key, "LABELS") == 0 &&
			    f->value->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE &&
			    f->value->struct_value->n_fields == 1)
				snprintf(r->meta_app, sizeof(r->meta_app), "%s",
				         f->value->struct_value->fields[0]->value->string_value);
		}
	}
	r->initial = json_object();
	for (size_t i = 0; i < q->n_initial_resource_versions; i++)
		json_object_set_new(r->initial, q->initial_resource_versions[i]->key,
		                    json_string(q->initial_resource_versions[i]->value));
	if (F.auto_reply && !r->nonce[0] && strcmp(r->type_url, ADDR_URL) == 0) {
		/* Like istiod: skip what the client already holds at the same version. */
		struct res send[16];
		size_t n = 0;

		for (size_t i = 0; i < F.n_addr_res; i++) {
			const char *have =
			        json_string_value(json_object_get(r->initial, F.addr_res[i].name));
			if (!have || strcmp(have, F.addr_res[i].version) != 0)
				send[n++] = F.addr_res[i];
		}
		fake_send(s, ADDR_URL, send, n, NULL, 0);
	} else if (F.auto_reply && !r->nonce[0]) {
		const char *v = F.sysver; /* other types: one unmarked (empty) response */
		F.sysver = NULL;
		fake_send(s, r->type_url, NULL, 0, NULL, 0);
		F.sysver = v;
	}
	zt_pb_free(m);
}

static void fake_on_done(struct zt_grpc_call *call, int code, const char *msg, void *arg)
{
	(void)call;
	(void)code;
	(void)msg;
	F.streams[(intptr_t)arg].call = NULL;
}

static void copy_md(struct zt_grpc_call *call, const char *key, char *out, size_t len)
{
	const char *v = zt_grpc_call_md(call, key);

	snprintf(out, len, "%s", v ? v : "");
}

static void fake_on_ads(struct zt_grpc_call *call, void *arg)
{
	static const struct zt_grpc_call_cbs cbs = {.on_message = fake_on_message,
	                                            .on_done = fake_on_done};
	int s = F.nstreams++;

	(void)arg;
	ck_assert_int_lt(s, MAX_STREAM);
	F.streams[s].call = call;
	copy_md(call, "authorization", F.streams[s].authorization,
	        sizeof(F.streams[s].authorization));
	copy_md(call, "clusterid", F.streams[s].clusterid, sizeof(F.streams[s].clusterid));
	copy_md(call, "x-extra", F.streams[s].extra, sizeof(F.streams[s].extra));
	zt_grpc_call_set_cbs(call, &cbs, (void *)(intptr_t)s);
}

static const struct zt_grpc_method fake_methods[] = {{ZT_XDS_METHOD, fake_on_ads, NULL}};
static const struct zt_grpc_server fake_grpc = {fake_methods, 1, 16u << 20};

static void fake_conn_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)reason;
	(void)arg;
	for (int i = 0; i < MAX_STREAM; i++)
		if (F.conns[i] == c)
			F.conns[i] = NULL;
}

static void fake_on_request(struct zt_h2_conn *c, struct zt_h2_stream *st,
                            const struct zt_h2_header *h, size_t n, bool end, void *arg)
{
	(void)arg;
	zt_grpc_server_on_request(c, st, h, n, end, (void *)&fake_grpc);
}

static const struct zt_h2_conn_cbs fake_conn_cbs = {.on_request = fake_on_request,
                                                    .on_close = fake_conn_close};

static void fake_handshake(struct zt_sock *s, int err, void *arg)
{
	struct zt_h2_settings set;
	struct zt_h2_conn *c;

	(void)arg;
	if (err < 0) {
		zt_sock_close(s);
		free(s);
		return;
	}
	zt_h2_settings_default(&set, true);
	set.ping_interval_ms = 0;
	ck_assert_int_eq(zt_h2_conn_new(&c, loop, s, true, &set, &fake_conn_cbs, NULL), 0);
	free(s);
	for (int i = 0; i < MAX_STREAM; i++) {
		if (!F.conns[i]) {
			F.conns[i] = c;
			return;
		}
	}
	ck_abort_msg("too many connections");
}

static void fake_accept(struct zt_io *io, unsigned events, void *arg)
{
	(void)events;
	(void)arg;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct zt_tls_conn *tc;
		struct zt_sock *s;

		if (fd < 0)
			return;
		ck_assert_int_eq(zt_tls_conn_server_new(&tc, F.tls, fd), 0);
		s = calloc(1, sizeof(*s));
		ck_assert_int_eq(zt_sock_start(s, loop, fd, tc, NULL, NULL), 0);
		zt_sock_handshake(s, fake_handshake, NULL);
	}
}

/* Listens on 127.0.0.1:port (0: any free port). */
static void fake_listen(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	socklen_t sl = sizeof(sin);
	int one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(F.lfd, 0);
	setsockopt(F.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(F.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(F.lfd, 16), 0);
	getsockname(F.lfd, (struct sockaddr *)&sin, &sl);
	F.port = ntohs(sin.sin_port);
	ck_assert_int_eq(zt_io_start(loop, &F.lio, F.lfd, ZT_IO_READ, fake_accept, NULL), 0);
}

/* Stops listening and drops every connection (an istiod restart or crash). */
static void fake_stop(void)
{
	if (F.lfd >= 0) {
		zt_io_stop(&F.lio);
		close(F.lfd);
		F.lfd = -1;
	}
	for (int i = 0; i < MAX_STREAM; i++)
		if (F.conns[i])
			zt_h2_conn_close(F.conns[i], "server stopped");
}

/* Server certificate naming sans. */
static void fake_tls(const char *sans)
{
	struct fx_leaf leaf;

	zt_tls_server_free(F.tls);
	fx_leaf_issue(&leaf, &ca, &(struct fx_leaf_opts){.sans = sans, .eku = FX_SERVER_AUTH});
	ck_assert_int_eq(zt_tls_cp_server_new(&F.tls, leaf.chain_pem, strlen(leaf.chain_pem),
	                                      leaf.key_pem, strlen(leaf.key_pem), NULL),
	                 0);
	fx_leaf_clear(&leaf);
}

/* ---- the client's side: types and callbacks --------------------------------------------- */

static json_t *applied; /* Address name -> version, as the store would hold it */
static int removes, synced_calls, token_calls;

static int addr_apply(void *arg, const char *name, const char *version, const uint8_t *data,
                      size_t len, char *err, size_t errlen)
{
	ProtobufCMessage *m;
	Istio__Workload__Address *a;

	(void)arg;
	if (zt_pb_unpack(&istio__workload__address__descriptor, data, len, 1u << 20, &m) < 0) {
		snprintf(err, errlen, "cannot decode Address");
		return -1;
	}
	a = (Istio__Workload__Address *)m;
	if (strncmp(name, "bad-", 4) == 0 ||
	    a->type_case != ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD) {
		zt_pb_free(m);
		snprintf(err, errlen, "refused by policy");
		return -1;
	}
	zt_pb_free(m);
	json_object_set_new(applied, name, json_string(version));
	return 0;
}

static int addr_remove(void *arg, const char *name)
{
	(void)arg;
	removes++;
	return json_object_del(applied, name) == 0 ? 0 : -1;
}

static int authz_apply(void *arg, const char *name, const char *version, const uint8_t *data,
                       size_t len, char *err, size_t errlen)
{
	(void)arg, (void)name, (void)version, (void)data, (void)len, (void)err, (void)errlen;
	return 0;
}

static const struct zt_xds_type types[] = {
        {ADDR_URL, addr_apply, addr_remove, NULL},
        {AUTHZ_URL, authz_apply, NULL, NULL},
};

static int token_cb(void *arg, char *out, size_t len)
{
	(void)arg;
	snprintf(out, len, "tok-%d", ++token_calls);
	return 0;
}

static void on_synced(struct zt_xds_client *c, void *arg)
{
	(void)arg;
	ck_assert(zt_xds_client_synced(c));
	synced_calls++;
}

static struct zt_xds_client_opts opts(void)
{
	static const struct zt_grpc_md extra[] = {{"x-extra", "yes"}};
	static json_t *meta;

	if (!meta)
		meta = json_pack("{s:s, s:{s:s}}", "NAME", "ztunnel-1", "LABELS", "app", "ztunnel");
	return (struct zt_xds_client_opts){
	        .host = "127.0.0.1",
	        .port = F.port,
	        .roots_pem = ca.root_pem,
	        .roots_len = strlen(ca.root_pem),
	        .node_id = "ztunnel~10.0.0.1~zt.istio-system~istio-system.svc.cluster.local",
	        .node_metadata = meta,
	        .cluster_id = "Kubernetes-test",
	        .headers = extra,
	        .nheaders = 1,
	        .token_cb = token_cb,
	        .on_synced = on_synced,
	        .backoff_initial_ms = 10,
	        .backoff_max_ms = 200,
	        .connect_timeout_ms = 2000,
	};
}

static struct zt_xds_client *client_new(const struct zt_xds_client_opts *o)
{
	int err = 0;
	struct zt_xds_client *c = zt_xds_client_new(loop, o, types, 2, &err);

	ck_assert_msg(c != NULL, "client_new: %s", zt_strerror(err));
	ck_assert_int_eq(zt_xds_client_start(c), 0);
	ck_assert_int_eq(zt_xds_client_start(c), ZT_E_STATE);
	return c;
}

/* ---- loop helpers ------------------------------------------------------------------------ */

/* Requests received from stream s of type t, in order. */
static int count_reqs(int s, const char *t)
{
	int n = 0;

	for (int i = 0; i < F.nreqs; i++)
		n += F.reqs[i].stream == s && strcmp(F.reqs[i].type_url, t) == 0;
	return n;
}

static const struct rec_req *nth_req(int s, const char *t, int k)
{
	for (int i = 0; i < F.nreqs; i++)
		if (F.reqs[i].stream == s && strcmp(F.reqs[i].type_url, t) == 0 && k-- == 0)
			return &F.reqs[i];
	ck_abort_msg("no request %d of %s on stream %d", k, t, s);
	return NULL;
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	zt_log_set_spec("off", NULL, 0);
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	fx_ca_init(&ca, "test-root", NULL);
	memset(&F, 0, sizeof(F));
	F.lfd = -1;
	F.auto_reply = true;
	applied = json_object();
	removes = synced_calls = token_calls = 0;
	fake_tls("DNS:istiod.istio-system.svc,IP:127.0.0.1");
	fake_listen(0);
}

/* Frees the client and the server, then checks nothing is left alive. */
static void finish(struct zt_xds_client *c)
{
	zt_xds_client_free(c);
	fake_stop();
	RUN_UNTIL(loop, zt_h2_conn_live() == 0 && zt_grpc_call_live() == 0 && zt_tls_conn_live() == 0, 3000);
}

static void teardown(void)
{
	zt_tls_server_free(F.tls);
	rec_stream_clear();
	json_decref(applied);
	fx_ca_clear(&ca);
	zt_loop_free(loop);
}

/* ---- tests ------------------------------------------------------------------------------- */

static const struct res three[] = {
        {"uid-a", "v1", false, NULL},
        {"uid-b", "v1", false, NULL},
        {"uid-c", "v7", false, NULL},
};

START_TEST(xds_client_sends_metadata_and_node_then_acks_every_type)
{
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;
	const struct rec_req *r;

	F.addr_res = three;
	F.n_addr_res = 3;
	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	ck_assert_int_eq(synced_calls, 1);
	ck_assert_int_eq(F.nstreams, 1);
	ck_assert_str_eq(F.streams[0].authorization, "Bearer tok-1");
	ck_assert_str_eq(F.streams[0].clusterid, "Kubernetes-test");
	ck_assert_str_eq(F.streams[0].extra, "yes");
	/* One initial request per type, with the node, nothing held yet. */
	r = nth_req(0, ADDR_URL, 0);
	ck_assert_str_eq(r->node_id, o.node_id);
	ck_assert_str_eq(r->meta_name, "ztunnel-1");
	ck_assert_str_eq(r->meta_app, "ztunnel");
	ck_assert_str_eq(r->nonce, "");
	ck_assert_int_eq(json_object_size(r->initial), 0);
	r = nth_req(0, AUTHZ_URL, 0);
	ck_assert_str_eq(r->node_id, o.node_id);
	/* Then an ACK each: the nonce of the response, no node, no error. */
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 2 && count_reqs(0, AUTHZ_URL) == 2, 2000);
	r = nth_req(0, ADDR_URL, 1);
	ck_assert_str_ne(r->nonce, "");
	ck_assert(!r->has_error);
	ck_assert_str_eq(r->node_id, "");
	ck_assert_int_eq(json_object_size(applied), 3);
	ck_assert_str_eq(zt_xds_client_version(c, ADDR_URL, "uid-c"), "v7");
	ck_assert_uint_eq(zt_xds_client_count(c, ADDR_URL), 3);
	zt_xds_client_stats(c, &st);
	ck_assert(st.connected);
	ck_assert_uint_eq(st.connects, 1);
	ck_assert_uint_eq(st.responses, 2);
	ck_assert_uint_eq(st.acks, 2);
	ck_assert_uint_eq(st.nacks, 0);
	json_t *j = zt_xds_client_json(c);
	ck_assert(json_is_true(json_object_get(j, "synced")));
	ck_assert_int_eq(
	        json_integer_value(json_object_get(
	                json_object_get(json_object_get(j, "types"), ADDR_URL), "resources")),
	        3);
	json_decref(j);
	/* A later push is applied and ACKed too; the sync callback does not fire again. */
	static const struct res upd[] = {{"uid-a", "v2", false, NULL}};
	fake_send(0, ADDR_URL, upd, 1, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 3, 2000);
	ck_assert_str_eq(json_string_value(json_object_get(applied, "uid-a")), "v2");
	ck_assert_int_eq(synced_calls, 1);
	finish(c);
}
END_TEST


START_TEST(xds_client_is_synced_only_after_the_last_part_of_a_split_initial_state)
{
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client *c;
	static const struct res rest[] = {{"uid-d", "v1", false, NULL}};

	/* The server answers the initial Address request with a part marked "more follows";
	 * authorization's (empty) answer is unmarked. */
	F.addr_res = three;
	F.n_addr_res = 3;
	F.sysver = "7" ZT_XDS_MORE_SUFFIX;
	c = client_new(&o);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 2 && count_reqs(0, AUTHZ_URL) == 2, 5000);
	/* Both parts so far applied and ACKed, Authorization complete, Address not. */
	ck_assert_uint_eq(zt_xds_client_count(c, ADDR_URL), 3);
	ck_assert(!nth_req(0, ADDR_URL, 1)->has_error);
	ck_assert(!zt_xds_client_synced(c));
	ck_assert_int_eq(synced_calls, 0);
	/* A second marked part still does not complete it... */
	fake_send(0, ADDR_URL, rest, 1, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 3, 2000);
	ck_assert_uint_eq(zt_xds_client_count(c, ADDR_URL), 4);
	ck_assert(!zt_xds_client_synced(c));
	/* ...the last part (unmarked, here with nothing left to add) does. */
	F.sysver = "7";
	fake_send(0, ADDR_URL, NULL, 0, NULL, 0);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 2000);
	ck_assert_int_eq(synced_calls, 1);
	/* A marked push after sync changes nothing about it. */
	F.sysver = "8" ZT_XDS_MORE_SUFFIX;
	fake_send(0, ADDR_URL, rest, 1, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 5, 2000);
	ck_assert(zt_xds_client_synced(c));
	ck_assert_int_eq(synced_calls, 1);
	finish(c);
}
END_TEST

START_TEST(xds_client_nacks_rejected_resources_and_keeps_the_good_ones)
{
	static const struct res mixed[] = {
	        {"uid-a", "v1", false, NULL},
	        {"bad-1", "v1", false, NULL},
	        {"uid-b", "v1", false, NULL},
	        {"junk", "v1", true, NULL},
	};
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;
	const struct rec_req *r;

	F.addr_res = mixed;
	F.n_addr_res = 4;
	c = client_new(&o);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 2, 5000);
	r = nth_req(0, ADDR_URL, 1);
	ck_assert(r->has_error);
	ck_assert_str_eq(r->error, "bad-1: refused by policy; junk: cannot decode Address");
	ck_assert_str_eq(r->nonce, "n1");
	/* Partial acceptance: the good ones are applied and known, the bad ones are not. */
	ck_assert_int_eq(json_object_size(applied), 2);
	ck_assert_ptr_nonnull(zt_xds_client_version(c, ADDR_URL, "uid-b"));
	ck_assert_ptr_null(zt_xds_client_version(c, ADDR_URL, "bad-1"));
	ck_assert_ptr_null(zt_xds_client_version(c, ADDR_URL, "junk"));
	/* A NACK counts as an answer for readiness. */
	RUN_UNTIL(loop, zt_xds_client_synced(c), 2000);
	zt_xds_client_stats(c, &st);
	ck_assert_uint_eq(st.nacks, 1);
	ck_assert_uint_eq(st.acks, 1);
	/* A later good version of a rejected one is accepted. */
	static const struct res fixed[] = {{"junk", "v2", false, NULL}};
	fake_send(0, ADDR_URL, fixed, 1, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 3, 2000);
	ck_assert(!nth_req(0, ADDR_URL, 2)->has_error);
	ck_assert_str_eq(zt_xds_client_version(c, ADDR_URL, "junk"), "v2");
	finish(c);
}
END_TEST

START_TEST(xds_client_applies_removals_after_updates)
{
	static const char *const gone[] = {"uid-a", "uid-z"};
	static const struct res again[] = {{"uid-b", "v2", false, NULL}};
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client *c;

	F.addr_res = three;
	F.n_addr_res = 3;
	c = client_new(&o);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 2, 5000);
	/* uid-a removed, uid-z (never sent) removed, uid-b updated in the same response. */
	fake_send(0, ADDR_URL, again, 1, gone, 2);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 3, 2000);
	ck_assert(!nth_req(0, ADDR_URL, 2)->has_error);
	ck_assert_int_eq(removes, 2);
	ck_assert_ptr_null(json_object_get(applied, "uid-a"));
	ck_assert_ptr_null(zt_xds_client_version(c, ADDR_URL, "uid-a"));
	ck_assert_str_eq(zt_xds_client_version(c, ADDR_URL, "uid-b"), "v2");
	ck_assert_uint_eq(zt_xds_client_count(c, ADDR_URL), 2);
	/* A removal that is also in the update list wins (removals come last). */
	static const char *const b[] = {"uid-b"};
	static const struct res b3[] = {{"uid-b", "v3", false, NULL}};
	fake_send(0, ADDR_URL, b3, 1, b, 1);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 4, 2000);
	ck_assert_ptr_null(zt_xds_client_version(c, ADDR_URL, "uid-b"));
	finish(c);
}
END_TEST

START_TEST(xds_client_reconnects_after_restart_announcing_accepted_versions)
{
	static const struct res mixed[] = {
	        {"uid-a", "v1", false, NULL},
	        {"bad-1", "v1", false, NULL},
	        {"uid-b", "v3", false, NULL},
	};
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;
	const struct rec_req *r;
	uint16_t port;

	F.addr_res = mixed;
	F.n_addr_res = 3;
	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	/* istiod goes away and comes back on the same port. */
	port = F.port;
	fake_stop();
	RUN_UNTIL(loop, (zt_xds_client_stats(c, &st), !st.connected), 2000);
	ck_assert_str_ne(st.last_error, "");
	fake_listen(port);
	RUN_UNTIL(loop, F.nstreams == 2 && count_reqs(1, ADDR_URL) >= 1 && count_reqs(1, AUTHZ_URL) >= 1, 5000);
	/* The token is read again for the new connection. */
	ck_assert_str_eq(F.streams[1].authorization, "Bearer tok-2");
	r = nth_req(1, ADDR_URL, 0);
	ck_assert_str_eq(r->nonce, "");
	ck_assert_str_eq(r->node_id, o.node_id);
	ck_assert_int_eq(json_object_size(r->initial), 2);
	ck_assert_str_eq(json_string_value(json_object_get(r->initial, "uid-a")), "v1");
	ck_assert_str_eq(json_string_value(json_object_get(r->initial, "uid-b")), "v3");
	ck_assert_ptr_null(json_object_get(r->initial, "bad-1"));
	/* State was kept meanwhile; the server resent only the rejected one. */
	ck_assert_int_eq(json_object_size(applied), 2);
	RUN_UNTIL(loop, count_reqs(1, ADDR_URL) == 2, 2000);
	ck_assert_str_eq(nth_req(1, ADDR_URL, 1)->error, "bad-1: refused by policy");
	zt_xds_client_stats(c, &st);
	ck_assert_uint_eq(st.connects, 2);
	ck_assert(st.connected);
	ck_assert_int_eq(synced_calls, 1);
	finish(c);
}
END_TEST

START_TEST(xds_client_keeps_claiming_the_held_version_after_a_nack_and_sees_the_removal)
{
	static const struct res v1[] = {{"uid-a", "v1", false, NULL}, {"uid-b", "v1", false, NULL}};
	static const struct res bad_update[] = {{"uid-a", "v2", true, NULL}};
	static const char *const gone[] = {"uid-a"};
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;
	const struct rec_req *r;
	uint16_t port;

	F.addr_res = v1;
	F.n_addr_res = 2;
	c = client_new(&o);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 2, 5000);
	/* An update of uid-a is rejected: the store keeps v1, and so does the client. */
	fake_send(0, ADDR_URL, bad_update, 1, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 3, 2000);
	ck_assert(nth_req(0, ADDR_URL, 2)->has_error);
	ck_assert_str_eq(json_string_value(json_object_get(applied, "uid-a")), "v1");
	ck_assert_str_eq(zt_xds_client_version(c, ADDR_URL, "uid-a"), "v1");
	/* After a reconnect it still claims uid-a at v1 ... */
	port = F.port;
	F.n_addr_res = 0;
	fake_stop();
	RUN_UNTIL(loop, (zt_xds_client_stats(c, &st), !st.connected), 2000);
	fake_listen(port);
	RUN_UNTIL(loop, F.nstreams == 2 && count_reqs(1, ADDR_URL) >= 1, 5000);
	r = nth_req(1, ADDR_URL, 0);
	ck_assert_str_eq(json_string_value(json_object_get(r->initial, "uid-a")), "v1");
	ck_assert_str_eq(json_string_value(json_object_get(r->initial, "uid-b")), "v1");
	/* ... so the server's removal of it reaches the store. */
	fake_send(1, ADDR_URL, NULL, 0, gone, 1);
	RUN_UNTIL(loop, count_reqs(1, ADDR_URL) >= 2, 2000);
	ck_assert_ptr_null(json_object_get(applied, "uid-a"));
	ck_assert_ptr_null(zt_xds_client_version(c, ADDR_URL, "uid-a"));
	ck_assert_str_eq(zt_xds_client_version(c, ADDR_URL, "uid-b"), "v1");
	finish(c);
}
END_TEST

START_TEST(xds_client_backoff_grows_while_nothing_listens)
{
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;

	fake_stop(); /* the port is now closed */
	c = client_new(&o);
	/* 10, 20, 40, 80, 160, 200, 200 ms: at least 5 attempts within about 600 ms. */
	fx_run_for(loop, 700);
	zt_xds_client_stats(c, &st);
	ck_assert_uint_ge(st.attempts, 5);
	ck_assert_uint_le(st.attempts, 9);
	ck_assert_uint_eq(st.backoff_ms, 200); /* capped at backoff_max_ms */
	ck_assert_uint_eq(st.connects, 0);
	ck_assert(!st.connected);
	ck_assert(!zt_xds_client_synced(c));
	ck_assert_msg(strstr(st.last_error, "refused"), "%s", st.last_error);
	/* Once istiod is there, a response resets the backoff. */
	fake_listen(o.port);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 3000);
	zt_xds_client_stats(c, &st);
	ck_assert_uint_eq(st.backoff_ms, 10);
	finish(c);
}
END_TEST

START_TEST(xds_client_checks_the_server_name_and_accepts_the_alternative)
{
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;

	fake_tls("DNS:istiod.istio-system.svc"); /* no IP SAN: dialling 127.0.0.1 must fail */
	c = client_new(&o);
	RUN_UNTIL(loop, (zt_xds_client_stats(c, &st), st.attempts >= 2), 3000);
	ck_assert_uint_eq(st.connects, 0);
	ck_assert_int_eq(F.nstreams, 0);
	ck_assert_msg(strstr(st.last_error, "TLS"), "%s", st.last_error);
	zt_xds_client_free(c);

	o.alt_hostname = "istiod.istio-system.svc";
	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	zt_xds_client_free(c);

	/* Another CA's roots are refused even with the right name. */
	struct fx_ca other;
	fx_ca_init(&other, "other-root", NULL);
	o.roots_pem = other.root_pem;
	o.roots_len = strlen(other.root_pem);
	c = client_new(&o);
	RUN_UNTIL(loop, (zt_xds_client_stats(c, &st), st.attempts >= 2), 3000);
	ck_assert_uint_eq(st.connects, 0);
	fx_ca_clear(&other);
	finish(c);
}
END_TEST

START_TEST(xds_client_nacks_unknown_type_and_mistyped_resource)
{
	static const struct res mistyped[] = {
	        {"uid-a", "v1", false, "type.googleapis.com/istio.workload.Workload"},
	        {"", "v1", false, NULL},
	};
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client *c;
	const struct rec_req *r;

	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	fake_send(0, "type.googleapis.com/istio.workload.Workload", three, 1, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, "type.googleapis.com/istio.workload.Workload") == 1, 2000);
	r = nth_req(0, "type.googleapis.com/istio.workload.Workload", 0);
	ck_assert(r->has_error);
	ck_assert_ptr_nonnull(strstr(r->error, "type not subscribed"));
	fake_send(0, ADDR_URL, mistyped, 2, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 3, 2000);
	r = nth_req(0, ADDR_URL, 2);
	ck_assert_str_eq(r->error, "uid-a: resource of type "
	                           "type.googleapis.com/istio.workload.Workload in a "
	                           "type.googleapis.com/istio.workload.Address response; "
	                           "<unnamed>: resource without a name");
	ck_assert_int_eq(json_object_size(applied), 0);
	finish(c);
}
END_TEST

START_TEST(xds_client_nacks_a_duplicate_name_and_keeps_the_first_copy)
{
	static const struct res dup[] = {
	        {"uid-d", "v1", false, NULL},
	        {"uid-d", "v2", false, NULL},
	};
	static const struct res later[] = {{"uid-d", "v3", false, NULL}};
	static const struct res refused[] = {
	        {"uid-d", "v4", true, NULL},
	        {"uid-d", "v5", false, NULL},
	        {"uid-n", "v1", true, NULL},
	        {"uid-n", "v2", false, NULL},
	};
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client *c;
	const struct rec_req *r;

	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	fake_send(0, ADDR_URL, dup, 2, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 3, 2000);
	r = nth_req(0, ADDR_URL, 2);
	ck_assert(r->has_error);
	ck_assert_str_eq(r->error, "uid-d: duplicate resource in one response");
	ck_assert_str_eq(zt_xds_client_version(c, ADDR_URL, "uid-d"), "v1");
	/* The name again in a later response is an update, not a duplicate. */
	fake_send(0, ADDR_URL, later, 1, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 4, 2000);
	ck_assert(!nth_req(0, ADDR_URL, 3)->has_error);
	ck_assert_str_eq(zt_xds_client_version(c, ADDR_URL, "uid-d"), "v3");
	/* A refused first copy still makes the second one a duplicate, known name or not. */
	fake_send(0, ADDR_URL, refused, 4, NULL, 0);
	RUN_UNTIL(loop, count_reqs(0, ADDR_URL) == 5, 2000);
	r = nth_req(0, ADDR_URL, 4);
	ck_assert(r->has_error);
	ck_assert_ptr_nonnull(strstr(r->error, "uid-d: duplicate resource in one response"));
	ck_assert_ptr_nonnull(strstr(r->error, "uid-n: duplicate resource in one response"));
	ck_assert_str_eq(zt_xds_client_version(c, ADDR_URL, "uid-d"), "v3");
	ck_assert_ptr_null(zt_xds_client_version(c, ADDR_URL, "uid-n"));
	finish(c);
}
END_TEST

START_TEST(xds_client_drops_the_stream_on_oversized_or_malformed_response)
{
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;
	uint8_t big[4096] = {0};

	o.max_msg = 1024;
	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	ck_assert_int_eq(zt_grpc_call_send(F.streams[0].call, big, sizeof(big)), 0);
	RUN_UNTIL(loop, F.nstreams == 2, 3000);
	zt_xds_client_stats(c, &st);
	ck_assert_msg(strstr(st.last_error, "RESOURCE_EXHAUSTED"), "%s", st.last_error);
	/* Bytes that are no DeltaDiscoveryResponse end the stream as well. */
	RUN_UNTIL(loop, F.streams[1].call != NULL && count_reqs(1, ADDR_URL) == 2, 2000);
	ck_assert_int_eq(zt_grpc_call_send(F.streams[1].call, "\xff\xff\xff", 3), 0);
	RUN_UNTIL(loop, F.nstreams == 3, 3000);
	zt_xds_client_stats(c, &st);
	ck_assert_msg(strstr(st.last_error, "malformed"), "%s", st.last_error);
	finish(c);
}
END_TEST

static char *render(struct zt_metrics *mt)
{
	struct zt_buf b;
	char *s;

	zt_buf_init(&b, 0);
	ck_assert_int_eq(zt_metrics_render(mt, &b), 0);
	s = strndup((const char *)zt_buf_data(&b), zt_buf_len(&b));
	zt_buf_clear(&b);
	return s;
}

START_TEST(xds_client_benign_end_reconnects_at_once_and_errors_back_off)
{
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;
	struct zt_metrics *mt = zt_metrics_new("test", 0);
	char *text;

	o.metrics = mt;
	F.addr_res = three;
	F.n_addr_res = 3;
	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	/* A clean end (grpc-status 0) is benign: no growth. */
	zt_grpc_call_finish(F.streams[0].call, ZT_GRPC_OK, NULL);
	RUN_UNTIL(loop, F.nstreams == 2 && count_reqs(1, ADDR_URL) == 2, 3000);
	zt_xds_client_stats(c, &st);
	ck_assert_uint_eq(st.backoff_ms, 10);
	ck_assert_msg(strstr(st.last_error, "OK"), "%s", st.last_error);
	/* An auth failure is not: the next failure will wait longer. */
	zt_grpc_call_finish(F.streams[1].call, ZT_GRPC_UNAUTHENTICATED, "bad token");
	RUN_UNTIL(loop, (zt_xds_client_stats(c, &st), !st.connected), 2000);
	ck_assert_uint_eq(st.backoff_ms, 20);
	ck_assert_msg(strstr(st.last_error, "UNAUTHENTICATED: bad token"), "%s", st.last_error);
	RUN_UNTIL(loop, F.nstreams == 3, 3000);
	ck_assert_uint_eq(st.connects, 2);
	/* spec §17: one termination per stream end, by reason; messages and bytes by type URL */
	text = render(mt);
	ck_assert_msg(strstr(text, "istio_xds_connection_terminations_total{reason=\"Complete\"} 1\n"),
	              "%s", text);
	ck_assert_msg(strstr(text, "istio_xds_connection_terminations_total{reason=\"Error\"} 1\n"),
	              "%s", text);
	ck_assert_ptr_nonnull(strstr(text, "istio_xds_message_total{url=\"" ADDR_URL "\"} "));
	ck_assert_ptr_nonnull(strstr(text, "istio_xds_message_bytes_total{url=\"" ADDR_URL "\"} "));
	ck_assert_ptr_null(strstr(text, "istio_xds_message_bytes_total{url=\"" ADDR_URL "\"} 0\n"));
	free(text);
	finish(c);
	zt_metrics_free(mt);
}
END_TEST

START_TEST(xds_client_free_at_any_stage_leaves_nothing_alive)
{
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client_stats st;
	struct zt_xds_client *c;

	/* Before the first attempt, during the handshake, and with the stream open. */
	c = client_new(&o);
	zt_xds_client_free(c);
	c = client_new(&o);
	RUN_UNTIL(loop, (zt_xds_client_stats(c, &st), st.attempts == 1), 1000);
	zt_loop_run_once(loop, 0);
	zt_xds_client_free(c);
	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	/* A DNS name goes through the resolver thread; free while it may still run. */
	struct zt_xds_client_opts named = o;
	named.host = "localhost";
	struct zt_xds_client *d = client_new(&named);
	zt_loop_run_once(loop, 0);
	zt_xds_client_free(d);
	finish(c);
	ck_assert_int_eq(zt_h2_stream_live(), 0);
}
END_TEST

START_TEST(xds_client_resolves_dns_names)
{
	struct zt_xds_client_opts o = opts();
	struct zt_xds_client *c;

	o.host =
	        "localhost"; /* may resolve to ::1 first: that attempt is refused, then 127.0.0.1 */
	o.alt_hostname = "127.0.0.1";
	c = client_new(&o);
	RUN_UNTIL(loop, zt_xds_client_synced(c), 5000);
	finish(c);
}
END_TEST

START_TEST(xds_client_rejects_bad_options)
{
	struct zt_xds_client_opts o = opts();
	int err = 0;

	o.host = "";
	ck_assert_ptr_null(zt_xds_client_new(loop, &o, types, 2, &err));
	ck_assert_int_eq(err, ZT_E_RANGE);
	o = opts();
	o.port = 0;
	ck_assert_ptr_null(zt_xds_client_new(loop, &o, types, 2, &err));
	ck_assert_int_eq(err, ZT_E_RANGE);
	o = opts();
	ck_assert_ptr_null(zt_xds_client_new(loop, &o, types, 0, &err));
	ck_assert_int_eq(err, ZT_E_RANGE);
	o.roots_pem = "not a certificate";
	o.roots_len = strlen(o.roots_pem);
	ck_assert_ptr_null(zt_xds_client_new(loop, &o, types, 2, &err));
	ck_assert_int_eq(err, ZT_E_PARSE);
	zt_xds_client_free(NULL);
}
END_TEST

Suite *xds_client_suite(void);
Suite *xds_client_suite(void)
{
	Suite *s = suite_create("xds_client");
	TCase *t = tcase_create("stream");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, xds_client_sends_metadata_and_node_then_acks_every_type);
	tcase_add_test(t, xds_client_is_synced_only_after_the_last_part_of_a_split_initial_state);
	tcase_add_test(t, xds_client_nacks_rejected_resources_and_keeps_the_good_ones);
	tcase_add_test(t, xds_client_keeps_claiming_the_held_version_after_a_nack_and_sees_the_removal);
	tcase_add_test(t, xds_client_applies_removals_after_updates);
	tcase_add_test(t, xds_client_reconnects_after_restart_announcing_accepted_versions);
	tcase_add_test(t, xds_client_backoff_grows_while_nothing_listens);
	tcase_add_test(t, xds_client_checks_the_server_name_and_accepts_the_alternative);
	tcase_add_test(t, xds_client_nacks_unknown_type_and_mistyped_resource);
	tcase_add_test(t, xds_client_nacks_a_duplicate_name_and_keeps_the_first_copy);
	tcase_add_test(t, xds_client_drops_the_stream_on_oversized_or_malformed_response);
	tcase_add_test(t, xds_client_benign_end_reconnects_at_once_and_errors_back_off);
	tcase_add_test(t, xds_client_free_at_any_stage_leaves_nothing_alive);
	tcase_add_test(t, xds_client_resolves_dns_names);
	tcase_add_test(t, xds_client_rejects_bad_options);
	suite_add_tcase(s, t);
	return s;
}
