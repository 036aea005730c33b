/* fake-istiod's CreateCertificate (fake-istiod/ca_service.h) end to end in one process: a
 * gRPC server on the loop with the service registered, and our gRPC client calling it over a
 * socketpair with control-plane TLS (server name checked against a zt_ca_issue certificate,
 * no client certificate). Checks what a ztunnel would see: status codes and messages, and a
 * returned chain whose leaf carries the requested identity and verifies against the root. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "loop_fixture.h"
#include "fake-istiod/ca_service.h"
#include "fake-istiod/token.h"
#include "istio/ca/ca.pb-c.h"
#include "protocol/csr.h"
#include "protocol/h2.h"
#include "protocol/pb.h"
#include "protocol/tls.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define TD       "cluster.local"
#define SLEEP_ID "spiffe://cluster.local/ns/demo/sa/sleep"
#define MAX_TTL  86400

static char tmpdir[64];
static struct zt_ca *ca;
static struct fi_token_key *tkey;
static struct fi_ca_service svc;
static struct zt_grpc_method methods[1];
static struct zt_grpc_server gsrv;
static struct zt_loop *loop;
static struct zt_tls_server *tls_srv;
static struct zt_tls_client *tls_cli;
static struct zt_sock ssock, csock;
static struct zt_h2_conn *cli, *srv;
static int handshakes;

/* Pods by node, what has_pod_on_node looks up. */
static const struct {
	const char *node, *ns, *sa;
} pods[] = {{"node-1", "demo", "sleep"}, {"node-2", "demo", "httpbin"}};

static bool has_pod_on_node(void *arg, const char *node, const char *ns, const char *sa)
{
	(void)arg;
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++)
		if (!strcmp(pods[i].node, node) && !strcmp(pods[i].ns, ns) &&
		    !strcmp(pods[i].sa, sa))
			return true;
	return false;
}

/* ---- log capture ------------------------------------------------------------------------- */

static char logbuf[8192];

static void log_sink(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	size_t have = strlen(logbuf);

	(void)level;
	(void)arg;
	if (have + len < sizeof(logbuf)) {
		memcpy(logbuf + have, line, len);
		logbuf[have + len] = '\0';
	}
}

/* ---- loopback server and client ---------------------------------------------------------- */

static void on_conn_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)reason;
	(void)arg;
	if (c == cli)
		cli = NULL;
	if (c == srv)
		srv = NULL;
}

static const struct zt_h2_conn_cbs server_cbs = {.on_request = zt_grpc_server_on_request,
                                                 .on_close = on_conn_close};
static const struct zt_h2_conn_cbs client_cbs = {.on_close = on_conn_close};

static void on_handshake(struct zt_sock *s, int err, void *arg)
{
	bool server = arg != NULL;
	struct zt_h2_settings set;

	ck_assert_msg(err == 0, "%s handshake: %s (%s)", server ? "server" : "client",
	              zt_strerror(err), zt_sock_error(s));
	zt_h2_settings_default(&set, server);
	set.ping_interval_ms = 0;
	if (server)
		ck_assert_int_eq(zt_h2_conn_new(&srv, loop, s, true, &set, &server_cbs, &gsrv), 0);
	else
		ck_assert_int_eq(zt_h2_conn_new(&cli, loop, s, false, &set, &client_cbs, NULL), 0);
	handshakes++;
}

/* The serving certificate fake-istiod presents: DNS and IP SANs, no SPIFFE identity. */
static void serve_cp(void)
{
	static const char *const dns[] = {"istiod.istio-system.svc"};
	static const char *const ips[] = {"127.0.0.1"};
	char *cert, *key, err[256] = "";
	const char *root = zt_ca_root_pem(ca);

	ck_assert_msg(zt_ca_issue(ca, dns, 1, ips, 1, NULL, 3600, &cert, &key, err, sizeof(err)) ==
	                      0,
	              "%s", err);
	ck_assert_int_eq(zt_tls_cp_server_new(&tls_srv, cert, strlen(cert), key, strlen(key), NULL),
	                 0);
	ck_assert_int_eq(zt_tls_cp_client_new(&tls_cli, root, strlen(root), NULL), 0);
	free(cert);
	free(key);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	struct zt_tls_conn *sc, *cc;
	char err[256] = "";
	int sv[2];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zt-ca-svc-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_msg(zt_ca_open(&ca, tmpdir, true, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(fi_token_key_open(&tkey, tmpdir, err, sizeof(err)) == 0, "%s", err);
	svc = (struct fi_ca_service){.ca = ca,
	                             .key = tkey,
	                             .trust_domain = TD,
	                             .max_ttl_s = MAX_TTL,
	                             .trusted_accounts = NULL,
	                             .has_pod_on_node = has_pod_on_node};
	methods[0] = fi_ca_service_method(&svc);
	gsrv = (struct zt_grpc_server){methods, 1, 1 << 20};
	logbuf[0] = '\0';
	zt_log_set_sink(log_sink, NULL);

	ck_assert_int_eq(zt_loop_new(&loop), 0);
	serve_cp();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(zt_tls_conn_server_new(&sc, tls_srv, sv[1]), 0);
	ck_assert_int_eq(zt_tls_conn_cp_client_new(&cc, tls_cli, sv[0], "istiod.istio-system.svc"),
	                 0);
	ck_assert_int_eq(zt_sock_start(&ssock, loop, sv[1], sc, NULL, NULL), 0);
	ck_assert_int_eq(zt_sock_start(&csock, loop, sv[0], cc, NULL, NULL), 0);
	handshakes = 0;
	zt_sock_handshake(&ssock, on_handshake, (void *)1);
	zt_sock_handshake(&csock, on_handshake, NULL);
	RUN_UNTIL(loop, handshakes == 2, 5000);
}

static void teardown(void)
{
	if (cli)
		zt_h2_conn_close(cli, "test over");
	if (srv)
		zt_h2_conn_close(srv, "test over");
	while (cli || srv)
		zt_loop_run_once(loop, 10);
	zt_loop_run_once(loop, 0); /* deferred on_done of calls cut short */
	zt_loop_free(loop);
	zt_tls_client_unref(tls_cli);
	zt_tls_server_free(tls_srv);
	zt_log_set_sink(NULL, NULL);
	fi_token_key_free(tkey);
	zt_ca_free(ca);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	ck_assert_uint_eq(zt_grpc_call_live(), 0);
	ck_assert_uint_eq(zt_h2_conn_live(), 0);
	ck_assert_uint_eq(zt_tls_conn_live(), 0);
}

/* ---- one call ---------------------------------------------------------------------------- */

struct result {
	bool done;
	int code;
	char msg[512];
	size_t nmsgs;
	uint8_t *body;
	size_t len;
};

static struct result res;

static void r_message(struct zt_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	(void)c;
	(void)arg;
	res.nmsgs++;
	free(res.body);
	res.body = malloc(len ? len : 1);
	memcpy(res.body, p, len);
	res.len = len;
}

static void r_done(struct zt_grpc_call *c, int code, const char *msg, void *arg)
{
	(void)c;
	(void)arg;
	res.done = true;
	res.code = code;
	snprintf(res.msg, sizeof(res.msg), "%s", msg ? msg : "");
}

static const struct zt_grpc_call_cbs r_cbs = {.on_message = r_message, .on_done = r_done};

/* Sends the given request messages (raw bytes) with a Bearer token (NULL: no
 * authorization; a string starting with '!' is sent verbatim after the '!'). */
static void call_raw(const char *token, const uint8_t *const *msgs, const size_t *lens, size_t n)
{
	char auth[FI_TOKEN_MAX_LEN + 16];
	struct zt_grpc_md md[2] = {{"clusterid", "Kubernetes"}, {"authorization", auth}};
	struct zt_grpc_call *c;
	int err = 0;

	free(res.body);
	memset(&res, 0, sizeof(res));
	if (token && token[0] == '!')
		snprintf(auth, sizeof(auth), "%s", token + 1);
	else if (token)
		snprintf(auth, sizeof(auth), "Bearer %s", token);
	c = zt_grpc_call_start(cli, "istiod.istio-system.svc:15012", FI_CA_SERVICE_PATH, md,
	                       token ? 2 : 1, 5000, 1 << 20, &r_cbs, NULL, &err);
	ck_assert_ptr_nonnull(c);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(zt_grpc_call_send(c, msgs[i], lens[i]), 0);
	zt_grpc_call_close_send(c);
	RUN_UNTIL(loop, res.done, 5000);
}

/* Builds and sends an IstioCertificateRequest. */
static void call_csr(const char *token, const char *csr_pem, int64_t validity,
                     const char *impersonate)
{
	Istio__V1__Auth__IstioCertificateRequest req =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
	Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Protobuf__Struct__FieldsEntry entry = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	Google__Protobuf__Struct__FieldsEntry *entries[] = {&entry};
	Google__Protobuf__Value value = GOOGLE__PROTOBUF__VALUE__INIT;
	uint8_t *buf;
	size_t len;

	req.csr = (char *)csr_pem;
	req.validity_duration = validity;
	if (impersonate) {
		value.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		value.string_value = (char *)impersonate;
		entry.key = FI_CA_IMPERSONATE_KEY;
		entry.value = &value;
		md.n_fields = 1;
		md.fields = entries;
		req.metadata = &md;
	}
	ck_assert_int_eq(zt_pb_pack(&req.base, &buf, &len), 0);
	call_raw(token, (const uint8_t *const[]){buf}, (const size_t[]){len}, 1);
	free(buf);
}

static char *mint(const char *node, const char *ns, const char *sa, int64_t ttl, int64_t ago)
{
	char *t = NULL;

	ck_assert_int_eq(fi_token_mint(tkey, node, ns, sa, ttl, (int64_t)time(NULL) - ago, &t), 0);
	return t;
}

static char *ztunnel_token(void)
{
	return mint("node-1", "istio-system", "ztunnel", 3600, 0);
}

static void csr_for(struct zt_csr *csr, const char *uri)
{
	struct zt_spiffe id;

	ck_assert_int_eq(zt_spiffe_parse(&id, uri, strlen(uri)), 0);
	ck_assert_int_eq(zt_csr_generate(csr, &id), 0);
}

static void expect_status(int code, const char *text)
{
	ck_assert_msg(res.code == code, "status %s (%s), want %s", zt_grpc_code_name(res.code),
	              res.msg, zt_grpc_code_name(code));
	ck_assert_msg(strstr(res.msg, text) != NULL, "message \"%s\" lacks \"%s\"", res.msg, text);
	ck_assert_uint_eq(res.nmsgs, 0);
}

static X509 *pem_cert(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	ck_assert_ptr_nonnull(x);
	return x;
}

/* Checks an OK answer: two PEMs, the leaf for uri verifying against the CA root with both
 * client and server purposes; returns the leaf lifetime in seconds. */
static long expect_chain(const char *uri)
{
	Istio__V1__Auth__IstioCertificateResponse *r = NULL;
	struct zt_spiffe_sans sans = {0};
	X509 *leaf, *root;
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	int days, secs;

	ck_assert_msg(res.code == ZT_GRPC_OK, "status %s: %s", zt_grpc_code_name(res.code),
	              res.msg);
	ck_assert_uint_eq(res.nmsgs, 1);
	ck_assert_int_eq(zt_pb_unpack(&istio__v1__auth__istio_certificate_response__descriptor,
	                              res.body, res.len, 1 << 20, (ProtobufCMessage **)&r),
	                 0);
	ck_assert_uint_eq(r->n_cert_chain, 2);
	ck_assert_str_eq(r->cert_chain[1], zt_ca_root_pem(ca));
	leaf = pem_cert(r->cert_chain[0]);
	root = pem_cert(r->cert_chain[1]);
	ck_assert_int_eq(zt_spiffe_sans_from_x509(leaf, &sans), 0);
	ck_assert_uint_eq(sans.n, 1);
	ck_assert_str_eq(sans.v[0].uri, uri);
	store = X509_STORE_new();
	X509_STORE_add_cert(store, root);
	for (int purpose = X509_PURPOSE_SSL_CLIENT; purpose <= X509_PURPOSE_SSL_SERVER; purpose++) {
		ctx = X509_STORE_CTX_new();
		X509_STORE_CTX_init(ctx, store, leaf, NULL);
		X509_STORE_CTX_set_purpose(ctx, purpose);
		ck_assert_msg(X509_verify_cert(ctx) == 1, "verify: %s",
		              X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		X509_STORE_CTX_free(ctx);
	}
	ck_assert_int_eq(
	        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf)),
	        1);
	X509_STORE_free(store);
	X509_free(leaf);
	X509_free(root);
	zt_spiffe_sans_clear(&sans);
	zt_pb_free(&r->base);
	return (long)days * 86400 + secs - ZT_CA_SKEW_S;
}

/* ---- tests ------------------------------------------------------------------------------- */

START_TEST(ca_service_trusted_node_agent_gets_impersonated_identity)
{
	char *t = ztunnel_token();
	struct zt_csr csr;

	csr_for(&csr, SLEEP_ID);
	call_csr(t, csr.csr_pem, 3600, SLEEP_ID);
	ck_assert_int_eq(expect_chain(SLEEP_ID), 3600);
	/* The decision is logged with caller, node, identity and outcome. */
	ck_assert_ptr_nonnull(strstr(logbuf, "certificate issued: caller=istio-system/ztunnel "
	                                     "node=node-1 identity=" SLEEP_ID));
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_caller_not_trusted_cannot_impersonate)
{
	char *t = mint("node-1", "demo", "sleep", 3600, 0);
	struct zt_csr csr;

	csr_for(&csr, SLEEP_ID);
	call_csr(t, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_PERMISSION_DENIED, "caller demo/sleep is not a trusted node account");
	ck_assert_ptr_nonnull(strstr(logbuf, "certificate refused: caller=demo/sleep"));
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_trusted_accounts_list_is_honoured)
{
	char *t = mint("node-1", "kube-system", "agent", 3600, 0);
	struct zt_csr csr;

	csr_for(&csr, SLEEP_ID);
	svc.trusted_accounts = "a/b, kube-system/agent ,c/d";
	call_csr(t, csr.csr_pem, 3600, SLEEP_ID);
	expect_chain(SLEEP_ID);
	/* The default account is no longer trusted once a list is given. */
	free(t);
	t = ztunnel_token();
	call_csr(t, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_PERMISSION_DENIED, "not a trusted node account");
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_refuses_identity_with_no_pod_on_the_callers_node)
{
	char *t = mint("node-2", "istio-system", "ztunnel", 3600, 0);
	struct zt_csr csr;

	csr_for(&csr, SLEEP_ID);
	call_csr(t, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_PERMISSION_DENIED, "cannot impersonate " SLEEP_ID);
	ck_assert_ptr_nonnull(strstr(res.msg, "node node-2"));
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_refuses_impersonation_without_node_or_outside_trust_domain)
{
	char *t = mint(NULL, "istio-system", "ztunnel", 3600, 0);
	char *t2 = ztunnel_token();
	struct zt_csr csr;

	csr_for(&csr, SLEEP_ID);
	call_csr(t, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_PERMISSION_DENIED, "names no node");
	call_csr(t2, csr.csr_pem, 3600, "spiffe://other.td/ns/demo/sa/sleep");
	expect_status(ZT_GRPC_PERMISSION_DENIED, "not a SPIFFE ID in trust domain cluster.local");
	call_csr(t2, csr.csr_pem, 3600, "not a uri");
	expect_status(ZT_GRPC_PERMISSION_DENIED, "not a SPIFFE ID");
	zt_csr_clear(&csr);
	free(t);
	free(t2);
}
END_TEST

START_TEST(ca_service_unauthenticated_without_a_valid_bearer_token)
{
	struct fi_token_key *other = NULL;
	char dir[128], err[256], *expired = mint("node-1", "istio-system", "ztunnel", 60, 120);
	char *foreign = NULL, *good = ztunnel_token(), raw[FI_TOKEN_MAX_LEN + 16];
	struct zt_csr csr;

	snprintf(dir, sizeof(dir), "%s/other", tmpdir);
	ck_assert_int_eq(fi_token_key_open(&other, dir, err, sizeof(err)), 0);
	ck_assert_int_eq(fi_token_mint(other, "node-1", "istio-system", "ztunnel", 3600,
	                               (int64_t)time(NULL), &foreign),
	                 0);
	csr_for(&csr, SLEEP_ID);
	call_csr(NULL, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_UNAUTHENTICATED, "missing authorization");
	call_csr(expired, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_UNAUTHENTICATED, "token expired");
	call_csr(foreign, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_UNAUTHENTICATED, "bad signature");
	snprintf(raw, sizeof(raw), "!Basic %s", good);
	call_csr(raw, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_UNAUTHENTICATED, "not a Bearer token");
	call_csr("!Bearer not.a.token", csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_UNAUTHENTICATED, "authentication failed: malformed");
	/* The scheme is case-insensitive, as in HTTP. */
	snprintf(raw, sizeof(raw), "!bearer %s", good);
	call_csr(raw, csr.csr_pem, 3600, SLEEP_ID);
	expect_chain(SLEEP_ID);
	zt_csr_clear(&csr);
	fi_token_key_free(other);
	free(expired);
	free(foreign);
	free(good);
}
END_TEST

START_TEST(ca_service_signs_own_identity_without_metadata)
{
	char *t = mint("node-1", "demo", "sleep", 3600, 0);
	struct zt_csr csr, other;

	csr_for(&csr, SLEEP_ID);
	call_csr(t, csr.csr_pem, 0, NULL);
	ck_assert_int_eq(expect_chain(SLEEP_ID), MAX_TTL); /* 0: the maximum */
	/* Not someone else's, even in the trust domain. */
	csr_for(&other, "spiffe://cluster.local/ns/demo/sa/httpbin");
	call_csr(t, other.csr_pem, 3600, NULL);
	expect_status(ZT_GRPC_INVALID_ARGUMENT, "not the identity allowed here");
	zt_csr_clear(&csr);
	zt_csr_clear(&other);
	free(t);
}
END_TEST

START_TEST(ca_service_caps_lifetime_at_the_maximum)
{
	char *t = ztunnel_token();
	struct zt_csr csr;

	csr_for(&csr, SLEEP_ID);
	call_csr(t, csr.csr_pem, 10L * MAX_TTL, SLEEP_ID);
	ck_assert_int_eq(expect_chain(SLEEP_ID), MAX_TTL);
	call_csr(t, csr.csr_pem, -5, SLEEP_ID);
	ck_assert_int_eq(expect_chain(SLEEP_ID), MAX_TTL);
	call_csr(t, csr.csr_pem, 600, SLEEP_ID);
	ck_assert_int_eq(expect_chain(SLEEP_ID), 600);
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_csr_with_wrong_san_is_invalid_argument)
{
	char *t = ztunnel_token();
	struct zt_csr csr;

	csr_for(&csr, "spiffe://cluster.local/ns/demo/sa/httpbin");
	call_csr(t, csr.csr_pem, 3600, SLEEP_ID);
	expect_status(ZT_GRPC_INVALID_ARGUMENT,
	              "CSR identity spiffe://cluster.local/ns/demo/sa/httpbin is not the identity");
	call_csr(t, "garbage", 3600, SLEEP_ID);
	expect_status(ZT_GRPC_INVALID_ARGUMENT, "not a PEM certificate request");
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_garbage_protobuf_is_invalid_argument_and_server_keeps_serving)
{
	static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x'};
	static const uint8_t group[] = {0x0b, 0x0c};
	char *t = ztunnel_token();
	struct zt_csr csr;

	call_raw(t, (const uint8_t *const[]){junk}, (const size_t[]){sizeof(junk)}, 1);
	expect_status(ZT_GRPC_INVALID_ARGUMENT, "malformed IstioCertificateRequest");
	call_raw(t, (const uint8_t *const[]){group}, (const size_t[]){sizeof(group)}, 1);
	expect_status(ZT_GRPC_INVALID_ARGUMENT, "malformed IstioCertificateRequest");
	/* Same connection, next call works. */
	ck_assert_ptr_nonnull(cli);
	csr_for(&csr, SLEEP_ID);
	call_csr(t, csr.csr_pem, 3600, SLEEP_ID);
	expect_chain(SLEEP_ID);
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_unary_call_refuses_zero_or_two_messages)
{
	static const uint8_t empty[1];
	char *t = ztunnel_token();

	call_raw(t, NULL, NULL, 0);
	expect_status(ZT_GRPC_INVALID_ARGUMENT, "no request message");
	call_raw(t, (const uint8_t *const[]){empty, empty}, (const size_t[]){0, 0}, 2);
	expect_status(ZT_GRPC_INVALID_ARGUMENT, "more than one request message");
	free(t);
}
END_TEST

START_TEST(ca_service_non_string_impersonation_is_invalid_argument)
{
	Istio__V1__Auth__IstioCertificateRequest req =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
	Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Protobuf__Struct__FieldsEntry entry = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	Google__Protobuf__Struct__FieldsEntry *entries[] = {&entry};
	Google__Protobuf__Value value = GOOGLE__PROTOBUF__VALUE__INIT;
	char *t = ztunnel_token(), msg[256];
	uint8_t *buf, *resp = (uint8_t *)1;
	size_t len, resp_len = 9;
	char auth[FI_TOKEN_MAX_LEN + 16];

	value.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
	value.number_value = 7;
	entry.key = FI_CA_IMPERSONATE_KEY;
	entry.value = &value;
	md.n_fields = 1;
	md.fields = entries;
	req.metadata = &md;
	ck_assert_int_eq(zt_pb_pack(&req.base, &buf, &len), 0);
	snprintf(auth, sizeof(auth), "Bearer %s", t);
	/* Straight through the pure entry point this time. */
	ck_assert_int_eq(
	        fi_ca_service_handle(&svc, auth, buf, len, &resp, &resp_len, msg, sizeof(msg)),
	        ZT_GRPC_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(msg, "must be a string"));
	ck_assert_ptr_null(resp);
	ck_assert_uint_eq(resp_len, 0);
	free(buf);
	free(t);
}
END_TEST

START_TEST(ca_service_request_over_its_bound_is_refused)
{
	size_t n = FI_CA_MAX_REQUEST + 1;
	uint8_t *big = calloc(1, n), *resp;
	size_t resp_len;
	char *t = ztunnel_token(), auth[FI_TOKEN_MAX_LEN + 16], msg[256];

	snprintf(auth, sizeof(auth), "Bearer %s", t);
	ck_assert_int_eq(
	        fi_ca_service_handle(&svc, auth, big, n, &resp, &resp_len, msg, sizeof(msg)),
	        ZT_GRPC_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(msg, "too large"));
	free(big);
	free(t);
}
END_TEST

START_TEST(ca_service_refuses_a_nul_inside_the_impersonated_identity)
{
	static const char id_nul[] = SLEEP_ID "\0/../../ns/istio-system/sa/istiod";
	Istio__V1__Auth__IstioCertificateRequest req =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
	Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Protobuf__Struct__FieldsEntry entry = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	Google__Protobuf__Struct__FieldsEntry *entries[] = {&entry};
	Google__Protobuf__Value value = GOOGLE__PROTOBUF__VALUE__INIT;
	char *t = ztunnel_token(), msg[256], auth[FI_TOKEN_MAX_LEN + 16];
	uint8_t *buf, *resp = NULL, *at;
	size_t len, resp_len = 0;
	struct zt_csr csr;

	csr_for(&csr, SLEEP_ID);
	/* Encoded with a placeholder of the same length, then the NUL written into the bytes
	 * (protobuf-c cannot encode one itself). */
	char placeholder[sizeof(id_nul)];
	memcpy(placeholder, id_nul, sizeof(id_nul));
	placeholder[strlen(SLEEP_ID)] = 'X';
	value.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	value.string_value = placeholder;
	entry.key = FI_CA_IMPERSONATE_KEY;
	entry.value = &value;
	md.n_fields = 1;
	md.fields = entries;
	req.metadata = &md;
	req.csr = csr.csr_pem;
	ck_assert_int_eq(zt_pb_pack(&req.base, &buf, &len), 0);
	at = memmem(buf, len, placeholder, sizeof(id_nul) - 1);
	ck_assert_ptr_nonnull(at);
	at[strlen(SLEEP_ID)] = '\0';
	snprintf(auth, sizeof(auth), "Bearer %s", t);
	ck_assert_int_eq(
	        fi_ca_service_handle(&svc, auth, buf, len, &resp, &resp_len, msg, sizeof(msg)),
	        ZT_GRPC_INVALID_ARGUMENT);
	ck_assert_str_eq(msg, FI_CA_IMPERSONATE_KEY " holds a NUL byte");
	ck_assert_ptr_null(resp);
	/* The same request without the NUL is signed: the refusal is about the byte. */
	at[strlen(SLEEP_ID)] = 'X';
	ck_assert_int_eq(
	        fi_ca_service_handle(&svc, auth, buf, len, &resp, &resp_len, msg, sizeof(msg)),
	        ZT_GRPC_PERMISSION_DENIED);
	free(resp);
	free(buf);
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_raises_a_tiny_requested_lifetime_to_the_floor)
{
	char *t = ztunnel_token();
	struct zt_csr csr;

	csr_for(&csr, SLEEP_ID);
	call_csr(t, csr.csr_pem, 1, SLEEP_ID);
	ck_assert_int_eq(expect_chain(SLEEP_ID), FI_CA_MIN_TTL_S);
	svc.min_ttl_s = 3000;
	call_csr(t, csr.csr_pem, 1, SLEEP_ID);
	ck_assert_int_eq(expect_chain(SLEEP_ID), 3000);
	zt_csr_clear(&csr);
	free(t);
}
END_TEST

START_TEST(ca_service_token_too_large_is_named_as_such)
{
	size_t n = 12 * 1024;
	char *auth = malloc(n + 1);
	struct zt_grpc_md md[1] = {{"authorization", auth}};
	struct zt_grpc_call *c;
	int err = 0;

	memcpy(auth, "Bearer ", 7);
	memset(auth + 7, 'a', n - 7);
	auth[n] = '\0';
	free(res.body);
	memset(&res, 0, sizeof(res));
	c = zt_grpc_call_start(cli, "istiod.istio-system.svc:15012", FI_CA_SERVICE_PATH, md, 1,
	                       5000, 1 << 20, &r_cbs, NULL, &err);
	ck_assert_ptr_nonnull(c);
	zt_grpc_call_close_send(c);
	RUN_UNTIL(loop, res.done, 5000);
	ck_assert_int_eq(res.code, ZT_GRPC_RESOURCE_EXHAUSTED);
	ck_assert_msg(strstr(res.msg, "authorization: 12288 bytes"), "%s", res.msg);
	free(auth);
}
END_TEST

Suite *ca_service_suite(void);
Suite *ca_service_suite(void)
{
	Suite *s = suite_create("ca_service");
	TCase *tc = tcase_create("create_certificate");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ca_service_trusted_node_agent_gets_impersonated_identity);
	tcase_add_test(tc, ca_service_caller_not_trusted_cannot_impersonate);
	tcase_add_test(tc, ca_service_trusted_accounts_list_is_honoured);
	tcase_add_test(tc, ca_service_refuses_identity_with_no_pod_on_the_callers_node);
	tcase_add_test(tc, ca_service_refuses_impersonation_without_node_or_outside_trust_domain);
	tcase_add_test(tc, ca_service_unauthenticated_without_a_valid_bearer_token);
	tcase_add_test(tc, ca_service_signs_own_identity_without_metadata);
	tcase_add_test(tc, ca_service_caps_lifetime_at_the_maximum);
	tcase_add_test(tc, ca_service_csr_with_wrong_san_is_invalid_argument);
	tcase_add_test(tc,
	               ca_service_garbage_protobuf_is_invalid_argument_and_server_keeps_serving);
	tcase_add_test(tc, ca_service_unary_call_refuses_zero_or_two_messages);
	tcase_add_test(tc, ca_service_non_string_impersonation_is_invalid_argument);
	tcase_add_test(tc, ca_service_request_over_its_bound_is_refused);
	tcase_add_test(tc, ca_service_refuses_a_nul_inside_the_impersonated_identity);
	tcase_add_test(tc, ca_service_raises_a_tiny_requested_lifetime_to_the_floor);
	tcase_add_test(tc, ca_service_token_too_large_is_named_as_such);
	suite_add_tcase(s, tc);
	return s;
}
