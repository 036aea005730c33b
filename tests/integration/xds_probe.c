/* xds_probe: a control-plane client for the integration tests, built on the protocol library.
 *   xds_probe [conn flags] csr --identity ID [--impersonate] [--ttl S] --out DIR
 *       CreateCertificate; writes DIR/chain.pem (every element), DIR/root.pem (the last),
 *       DIR/key.pem; prints "status OK" or "status <CODE>: <message>" (exit 1).
 *   xds_probe [conn flags] ads [--responses N] [--initial-address|--initial-authorization
 *       NAME=VERSION]... [--nack NAME]
 *       one delta ADS stream subscribed (wildcard) to Address and Authorization; prints one
 *       JSON line per response {"type","nonce","resources":{name:version},"removed":[...]}
 *       and ACKs it (or NACKs when it holds a --nack name); exits after N responses.
 * conn flags: --addr IP:PORT --roots FILE [--host NAME] [--token TOKEN] [--timeout S] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "istio/ca/ca.pb-c.h"
#include "protocol/csr.h"
#include "protocol/grpc.h"
#include "protocol/pb.h"
#include "protocol/tls.h"
#include "runtime/addr.h"
#include "runtime/err.h"
#include "runtime/file.h"
#include "runtime/mem.h"

#define TYPE_ADDRESS       "type.googleapis.com/istio.workload.Address"
#define TYPE_AUTHORIZATION "type.googleapis.com/istio.security.Authorization"
#define MAX_INITIAL        256

static struct {
	const char *addr, *roots, *host, *token, *identity, *out, *nack;
	bool impersonate;
	long ttl, responses, timeout;
	char *initial[MAX_INITIAL];
	bool initial_authz[MAX_INITIAL]; /* the entry is for Authorization, else Address */
	size_t ninitial;
} o = {.ttl = 3600, .responses = 1, .timeout = 10};

static struct zt_loop *loop;
static struct zt_h2_conn *conn;
static struct zt_tls_client *cli;
static struct zt_grpc_call *call;
static int exit_code = 1;
static long seen;

static void fail(const char *what, const char *why)
{
	fprintf(stderr, "xds_probe: %s: %s\n", what, why);
	exit(1);
}

static void on_conn_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)c;
	(void)arg;
	if (call)
		fprintf(stderr, "xds_probe: connection closed: %s\n", reason);
	conn = NULL;
	zt_loop_stop(loop);
}

static const struct zt_h2_conn_cbs conn_cbs = {.on_close = on_conn_close};

static void run_csr(void);
static void run_ads(void);
static const char *cmd;

static void on_handshake(struct zt_sock *s, int err, void *arg)
{
	struct zt_h2_settings set;

	(void)arg;
	if (err < 0)
		fail("tls handshake", zt_sock_error(s));
	zt_h2_settings_default(&set, false);
	set.ping_interval_ms = 0;
	if (zt_h2_conn_new(&conn, loop, s, false, &set, &conn_cbs, NULL) < 0)
		fail("h2", "cannot start");
	free(s);
	if (!strcmp(cmd, "csr"))
		run_csr();
	else
		run_ads();
}

static void connect_tls(void)
{
	struct zt_sockaddr a;
	struct sockaddr_storage ss;
	struct zt_tls_conn *tc;
	struct zt_sock *s = xcalloc(1, sizeof(*s));
	char *roots, host[ZT_ADDR_STRLEN];
	size_t len;
	int fd, rc;

	if (zt_addr_parse(&a, o.addr, strlen(o.addr), 0) < 0)
		fail("--addr", "expected ip:port");
	if ((rc = zt_file_read(o.roots, 1u << 20, &roots, &len)) < 0)
		fail(o.roots, zt_strerror(rc));
	if ((rc = zt_tls_cp_client_new(&cli, roots, len, NULL)) < 0)
		fail("roots", zt_strerror(rc));
	free(roots);
	socklen_t sl = zt_addr_to_sockaddr(&a, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0)
		fail("connect", strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	zt_ip_format(&a.ip, host, sizeof(host));
	if ((rc = zt_tls_conn_cp_client_new(&tc, cli, fd, o.host ? o.host : host)) < 0)
		fail("tls", zt_strerror(rc));
	zt_sock_start(s, loop, fd, tc, NULL, NULL);
	zt_sock_handshake(s, on_handshake, NULL);
}

static size_t metadata(struct zt_grpc_md *md, char *bearer, size_t len)
{
	if (!o.token)
		return 0;
	snprintf(bearer, len, "Bearer %s", o.token);
	md[0] = (struct zt_grpc_md){"authorization", bearer};
	return 1;
}

static void on_done(struct zt_grpc_call *c, int code, const char *msg, void *arg)
{
	(void)c;
	(void)arg;
	call = NULL;
	if (exit_code != 0) /* a call that finished its job is cancelled on purpose */
		printf("status %s: %s\n", zt_grpc_code_name(code), msg ? msg : "");
	fflush(stdout);
	if (conn)
		zt_h2_conn_close(conn, "done");
	zt_loop_stop(loop);
}

/* ---- csr -------------------------------------------------------------------------------- */

static struct zt_csr csr;

static void write_out(const char *name, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", o.out, name);
	if (zt_file_write_atomic(path, text, strlen(text), 0600) < 0)
		fail(path, "cannot write");
}

static void on_csr_response(struct zt_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	Istio__V1__Auth__IstioCertificateResponse *r = NULL;
	size_t total = 1;

	(void)c;
	(void)arg;
	if (zt_pb_unpack(&istio__v1__auth__istio_certificate_response__descriptor, p, len, 1u << 20,
	                 (ProtobufCMessage **)&r) < 0)
		fail("response", "undecodable");
	for (size_t i = 0; i < r->n_cert_chain; i++)
		total += strlen(r->cert_chain[i]);
	char *all = calloc(1, total);
	size_t off = 0;
	for (size_t i = 0; i < r->n_cert_chain; i++) {
		size_t l = strlen(r->cert_chain[i]);
		memcpy(all + off, r->cert_chain[i], l); /* total counted every element */
		off += l;
	}
	write_out("chain.pem", all);
	if (r->n_cert_chain)
		write_out("root.pem", r->cert_chain[r->n_cert_chain - 1]);
	char *key_pem;
	size_t key_len;
	if (zt_csr_key_pem(&csr, &key_pem, &key_len) < 0)
		fail("key", "cannot encode");
	write_out("key.pem", key_pem);
	zt_csr_key_pem_free(key_pem, key_len);
	printf("status OK elements=%zu\n", r->n_cert_chain);
	exit_code = 0;
	free(all);
	zt_pb_free(&r->base);
}

static const struct zt_grpc_call_cbs csr_cbs = {.on_message = on_csr_response, .on_done = on_done};

static void run_csr(void)
{
	struct zt_spiffe id;
	Istio__V1__Auth__IstioCertificateRequest req =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
	Google__Protobuf__Struct meta = GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Protobuf__Struct__FieldsEntry entry = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	Google__Protobuf__Struct__FieldsEntry *entries[1] = {&entry};
	Google__Protobuf__Value val = GOOGLE__PROTOBUF__VALUE__INIT;
	struct zt_grpc_md md[2];
	char bearer[8300];
	uint8_t *buf;
	size_t len;
	int err;

	if (!o.identity || !o.out)
		fail("csr", "needs --identity and --out");
	if (zt_spiffe_parse(&id, o.identity, strlen(o.identity)) < 0)
		fail("--identity", "not a SPIFFE ID");
	if (zt_csr_generate(&csr, &id) < 0)
		fail("csr", "cannot generate");
	req.csr = csr.csr_pem;
	req.validity_duration = o.ttl;
	if (o.impersonate) {
		val.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		val.string_value = (char *)o.identity;
		entry.key = (char *)"ImpersonatedIdentity";
		entry.value = &val;
		meta.n_fields = 1;
		meta.fields = entries;
		req.metadata = &meta;
	}
	zt_pb_pack(&req.base, &buf, &len);
	call = zt_grpc_call_start(conn, "istiod.istio-system.svc",
	                          "/istio.v1.auth.IstioCertificateService/CreateCertificate", md,
	                          metadata(md, bearer, sizeof(bearer)), (uint64_t)o.timeout * 1000,
	                          1u << 20, &csr_cbs, NULL, &err);
	if (!call)
		fail("call", zt_strerror(err));
	zt_grpc_call_send(call, buf, len);
	zt_grpc_call_close_send(call);
	free(buf);
}

/* ---- ads -------------------------------------------------------------------------------- */

static void send_request(const char *type, const char *nonce, const char *nack, bool initial)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest r =
	        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
	        ent[MAX_INITIAL],
	        *ents[MAX_INITIAL];
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	size_t n = 0;
	uint8_t *buf;
	size_t len;

	r.type_url = (char *)type;
	if (initial) {
		node.id = (char *)"ztunnel~127.0.0.1~probe.istio-system~istio-system.svc.cluster."
		                  "local";
		r.node = &node;
		for (size_t i = 0; i < o.ninitial; i++) {
			char *eq = strchr(o.initial[i], '=');
			if (o.initial_authz[i] != !strcmp(type, TYPE_AUTHORIZATION))
				continue;
			ent[n] = (Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry)
			        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INITIAL_RESOURCE_VERSIONS_ENTRY__INIT;
			*eq = '\0';
			ent[n].key = o.initial[i];
			ent[n].value = eq + 1;
			ents[n] = &ent[n];
			n++;
		}
		r.n_initial_resource_versions = n;
		r.initial_resource_versions = ents;
	}
	r.response_nonce = (char *)(nonce ? nonce : "");
	if (nack) {
		st.code = 3;
		st.message = (char *)nack;
		r.error_detail = &st;
	}
	zt_pb_pack(&r.base, &buf, &len);
	zt_grpc_call_send(call, buf, len);
	free(buf);
	for (size_t i = 0; initial && i < n; i++)
		ent[i].key[strlen(ent[i].key)] = '='; /* restore for the next type */
}

static void on_ads_response(struct zt_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r = NULL;
	char nack[512] = "";

	(void)c;
	(void)arg;
	if (zt_pb_unpack(&envoy__service__discovery__v3__delta_discovery_response__descriptor, p,
	                 len, 256u << 20, (ProtobufCMessage **)&r) < 0)
		fail("response", "undecodable");
	json_t *res = json_object(), *rem = json_array();
	for (size_t i = 0; i < r->n_resources; i++) {
		json_object_set_new(res, r->resources[i]->name,
		                    json_string(r->resources[i]->version));
		if (o.nack && !strcmp(o.nack, r->resources[i]->name))
			snprintf(nack, sizeof(nack), "%s: rejected by the probe", o.nack);
	}
	for (size_t i = 0; i < r->n_removed_resources; i++)
		json_array_append_new(rem, json_string(r->removed_resources[i]));
	const char *type = strcmp(r->type_url, TYPE_ADDRESS) ? "authorization" : "address";
	json_t *line = json_pack("{s:s, s:s, s:o, s:o}", "type", type, "nonce", r->nonce,
	                         "resources", res, "removed", rem);
	char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
	printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_decref(line);
	send_request(r->type_url, r->nonce, nack[0] ? nack : NULL, false);
	zt_pb_free(&r->base);
	if (++seen >= o.responses) {
		exit_code = 0;
		zt_grpc_call_close_send(call); /* after the ACKs: the server then ends the call */
	}
}

static const struct zt_grpc_call_cbs ads_cbs = {.on_message = on_ads_response, .on_done = on_done};

static void run_ads(void)
{
	struct zt_grpc_md md[2];
	char bearer[8300];
	int err;

	call = zt_grpc_call_start(
	        conn, "istiod.istio-system.svc",
	        "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
	        md, metadata(md, bearer, sizeof(bearer)), 0, 256u << 20, &ads_cbs, NULL, &err);
	if (!call)
		fail("call", zt_strerror(err));
	send_request(TYPE_ADDRESS, NULL, NULL, true);
	send_request(TYPE_AUTHORIZATION, NULL, NULL, true);
}

static void on_timeout(struct zt_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	fprintf(stderr, "xds_probe: timed out after %ld responses\n", seen);
	exit(3);
}

int main(int argc, char **argv)
{
	struct zt_timer timer = {0};

	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool used = true;
		if (!strcmp(a, "--impersonate")) {
			o.impersonate = true;
			continue;
		}
		if (!strcmp(a, "csr") || !strcmp(a, "ads")) {
			cmd = a;
			continue;
		}
		if (!v)
			fail(a, "missing value");
		if (!strcmp(a, "--addr"))
			o.addr = v;
		else if (!strcmp(a, "--roots"))
			o.roots = v;
		else if (!strcmp(a, "--host"))
			o.host = v;
		else if (!strcmp(a, "--token"))
			o.token = v;
		else if (!strcmp(a, "--identity"))
			o.identity = v;
		else if (!strcmp(a, "--out"))
			o.out = v;
		else if (!strcmp(a, "--nack"))
			o.nack = v;
		else if (!strcmp(a, "--ttl"))
			o.ttl = strtol(v, NULL, 10);
		else if (!strcmp(a, "--responses"))
			o.responses = strtol(v, NULL, 10);
		else if (!strcmp(a, "--timeout"))
			o.timeout = strtol(v, NULL, 10);
		else if ((!strcmp(a, "--initial-address") ||
		          !strcmp(a, "--initial-authorization")) &&
		         o.ninitial < MAX_INITIAL && strchr(v, '=')) {
			o.initial_authz[o.ninitial] = !strcmp(a, "--initial-authorization");
			o.initial[o.ninitial++] = argv[i + 1];
		} else
			used = false;
		if (!used)
			fail(a, "unknown flag");
		i++;
	}
	if (!cmd || !o.addr || !o.roots)
		fail("usage", "xds_probe --addr IP:PORT --roots FILE [flags] csr|ads ...");
	if (zt_loop_new(&loop) < 0)
		fail("loop", "cannot create");
	connect_tls();
	zt_timer_start(loop, &timer, (uint64_t)o.timeout * 1000, on_timeout, NULL);
	zt_loop_run(loop);
	zt_timer_stop(&timer);
	if (conn)
		zt_h2_conn_close(conn, "exit");
	for (int i = 0; i < 5; i++)
		zt_loop_run_once(loop, 0);
	zt_tls_client_unref(cli);
	zt_loop_free(loop);
	zt_csr_clear(&csr);
	return exit_code;
}
