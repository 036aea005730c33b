/* CA client (cert/ca_client.h) against an in-process istiod stand-in: a TLS gRPC server on
 * loopback implementing CreateCertificate with a test CA, scripted to answer, stay silent,
 * refuse, send junk or drop the connection. Also the manager over this client end to end. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cert/ca_client.h"
#include "cert/manager.h"
#include "loop_fixture.h"
#include "cert_fixture.h"
#include "fake-istiod/ca_service.h"
#include "fake-istiod/token.h"
#include "google/protobuf/struct.pb-c.h"
#include "istio/ca/ca.pb-c.h"
#include "protocol/csr.h"
#include "protocol/h2.h"
#include "protocol/pb.h"
#include "runtime/err.h"
#include "runtime/file.h"
#include "runtime/log.h"

#define HOST  "istiod.istio-system.svc"
#define ID    "spiffe://cluster.local/ns/app/sa/web"
#define TOKEN "eyJhbGciOiJSUzI1NiJ9.test.token"

static struct zt_loop *loop;
static struct fx_ca root, other;

/* ---- the server --------------------------------------------------------------------------- */

enum smode { S_OK, S_SILENT, S_UNAUTH, S_GARBAGE, S_EMPTY, S_CLOSE };

#define MAX_CONNS 8

static struct {
	int lfd;
	struct zt_io lio;
	uint16_t port;
	struct zt_tls_server *tls;
	enum smode mode;
	size_t accepted, requests;
	struct zt_h2_conn *conns[MAX_CONNS];
	struct zt_grpc_call *held; /* silent mode */
	bool held_ended;
	/* the last request */
	char auth[ZT_CA_CLIENT_TOKEN_MAX + 16], clusterid[64], extra[64], imp[ZT_SPIFFE_STR_SIZE];
	bool has_metadata;
	int64_t validity;
	char *csr;
} SV;

struct sconn {
	struct zt_sock sock;
};

static void on_srv_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)reason, (void)arg;
	for (size_t i = 0; i < MAX_CONNS; i++)
		if (SV.conns[i] == c)
			SV.conns[i] = NULL;
}

static void copy_md(struct zt_grpc_call *call, const char *key, char *buf, size_t size)
{
	const char *v = zt_grpc_call_md(call, key);

	snprintf(buf, size, "%s", v ? v : "");
}

static void on_req_message(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	Istio__V1__Auth__IstioCertificateRequest *req = NULL;

	(void)call, (void)arg;
	ck_assert_int_eq(zt_pb_unpack(&istio__v1__auth__istio_certificate_request__descriptor, p,
	                              len, 1 << 20, (ProtobufCMessage **)&req),
	                 0);
	free(SV.csr);
	SV.csr = strdup(req->csr);
	SV.validity = req->validity_duration;
	SV.has_metadata = req->metadata != NULL;
	SV.imp[0] = '\0';
	if (req->metadata) {
		ck_assert_uint_eq(req->metadata->n_fields, 1);
		ck_assert_str_eq(req->metadata->fields[0]->key, "ImpersonatedIdentity");
		ck_assert_int_eq(req->metadata->fields[0]->value->kind_case,
		                 GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
		snprintf(SV.imp, sizeof(SV.imp), "%s",
		         req->metadata->fields[0]->value->string_value);
	}
	zt_pb_free((ProtobufCMessage *)req);
}

static void on_held_done(struct zt_grpc_call *call, int code, const char *msg, void *arg)
{
	(void)call, (void)code, (void)msg, (void)arg;
	SV.held = NULL;
	SV.held_ended = true;
}

static void reply_chain(struct zt_grpc_call *call)
{
	Istio__V1__Auth__IstioCertificateResponse resp =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_RESPONSE__INIT;
	char *chain[2];
	uint8_t *buf;
	size_t len;

	chain[0] = cfx_sign_csr(&root, SV.csr, SV.imp[0] ? SV.imp : ID,
	                        FX_SERVER_AUTH | FX_CLIENT_AUTH, -60, 3600);
	chain[1] = root.root_pem;
	resp.n_cert_chain = SV.mode == S_EMPTY ? 0 : 2;
	resp.cert_chain = chain;
	ck_assert_int_eq(zt_pb_pack(&resp.base, &buf, &len), 0);
	zt_grpc_call_send(call, buf, len);
	zt_grpc_call_finish(call, ZT_GRPC_OK, NULL);
	free(buf);
	free(chain[0]);
}

static const struct zt_grpc_call_cbs held_cbs = {.on_done = on_held_done};

static void on_req_half_close(struct zt_grpc_call *call, void *arg)
{
	(void)arg;
	SV.requests++;
	if (strcmp(SV.auth, "Bearer " TOKEN) != 0 || SV.mode == S_UNAUTH) {
		zt_grpc_call_finish(call, ZT_GRPC_UNAUTHENTICATED, "bad token");
		return;
	}
	switch (SV.mode) {
	case S_OK:
	case S_EMPTY:
		reply_chain(call);
		break;
	case S_SILENT:
		SV.held = call;
		zt_grpc_call_set_cbs(call, &held_cbs, NULL);
		break;
	case S_GARBAGE:
		zt_grpc_call_send(call, "\xff\xff\xff", 3);
		zt_grpc_call_finish(call, ZT_GRPC_OK, NULL);
		break;
	case S_CLOSE:
		zt_h2_conn_close(zt_grpc_call_conn(call), "scripted close");
		break;
	case S_UNAUTH:
		break;
	}
}

static const struct zt_grpc_call_cbs req_cbs = {.on_message = on_req_message,
                                                .on_half_close = on_req_half_close};

static void handle(struct zt_grpc_call *call, void *arg)
{
	(void)arg;
	copy_md(call, "authorization", SV.auth, sizeof(SV.auth));
	copy_md(call, "clusterid", SV.clusterid, sizeof(SV.clusterid));
	copy_md(call, "x-extra", SV.extra, sizeof(SV.extra));
	zt_grpc_call_set_cbs(call, &req_cbs, NULL);
}

static const struct zt_grpc_method methods[] = {{ZT_CA_CLIENT_PATH, handle, NULL}};
static struct zt_grpc_server grpc_srv; /* methods: the scripted handler or fake istiod's */
static const struct zt_h2_conn_cbs srv_cbs = {.on_request = zt_grpc_server_on_request,
                                              .on_close = on_srv_close};

static void on_srv_sock(struct zt_sock *s, unsigned ev, void *arg)
{
	(void)s, (void)ev, (void)arg;
}

static void on_srv_handshake(struct zt_sock *s, int err, void *arg)
{
	struct sconn *sc = arg;
	struct zt_h2_settings set;
	struct zt_h2_conn *c;

	if (err == 0) {
		zt_h2_settings_default(&set, true);
		ck_assert_int_eq(zt_h2_conn_new(&c, loop, s, true, &set, &srv_cbs, &grpc_srv), 0);
		for (size_t i = 0; i < MAX_CONNS; i++)
			if (!SV.conns[i]) {
				SV.conns[i] = c;
				break;
			}
	} else {
		zt_sock_close(s);
	}
	free(sc);
}

static void on_accept(struct zt_io *io, unsigned ev, void *arg)
{
	struct zt_tls_conn *tls;
	struct sconn *sc;
	int fd;

	(void)io, (void)ev, (void)arg;
	fd = accept4(SV.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	SV.accepted++;
	sc = calloc(1, sizeof(*sc));
	ck_assert_ptr_nonnull(sc);
	ck_assert_int_eq(zt_tls_conn_server_new(&tls, SV.tls, fd), 0);
	ck_assert_int_eq(zt_sock_start(&sc->sock, loop, fd, tls, on_srv_sock, sc), 0);
	zt_sock_handshake(&sc->sock, on_srv_handshake, sc);
}

/* Starts the server presenting a leaf with the given SANs, signed by root. */
static void server_start(const char *sans)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct fx_leaf leaf;

	fx_leaf_issue(&leaf, &root, &(struct fx_leaf_opts){.sans = sans, .eku = FX_SERVER_AUTH});
	ck_assert_int_eq(zt_tls_cp_server_new(&SV.tls, leaf.chain_pem, strlen(leaf.chain_pem),
	                                      leaf.key_pem, strlen(leaf.key_pem), NULL),
	                 0);
	fx_leaf_clear(&leaf);
	SV.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(SV.lfd, 0);
	ck_assert_int_eq(bind(SV.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(SV.lfd, 16), 0);
	ck_assert_int_eq(getsockname(SV.lfd, (struct sockaddr *)&sa, &len), 0);
	SV.port = ntohs(sa.sin_port);
	ck_assert_int_eq(zt_io_start(loop, &SV.lio, SV.lfd, ZT_IO_READ, on_accept, NULL), 0);
}

static void server_drop_connections(void)
{
	for (size_t i = 0; i < MAX_CONNS; i++)
		if (SV.conns[i])
			zt_h2_conn_close(SV.conns[i], "test");
}

/* ---- the client side ---------------------------------------------------------------------- */

static char token_path[64];
static struct zt_ca_client *cli;

struct res {
	bool done;
	int err;
	char msg[300];
	char **chain;
	size_t n;
};

static void on_signed(void *arg, int err, const char *msg, char **chain, size_t n)
{
	struct res *r = arg;

	ck_assert(!r->done);
	r->done = true;
	r->err = err;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	r->chain = chain;
	r->n = n;
}

static void res_clear(struct res *r)
{
	zt_cert_chain_free(r->chain, r->n);
	memset(r, 0, sizeof(*r));
}

static void write_token(const char *text)
{
	FILE *f = fopen(token_path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* The token callback the daemon would pass: the file read again on every call. */
static int read_token(void *arg, char *out, size_t len)
{
	char *text = NULL;
	size_t n = 0;
	int rc = zt_file_read(arg, len - 1, &text, &n);

	if (rc < 0)
		return rc;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	memcpy(out, text, n);
	out[n] = '\0';
	free(text);
	return 0;
}

static const struct zt_grpc_md extra[] = {{"x-extra", "yes"}};

/* Dials 127.0.0.1; the server's certificate only names HOST (ALT_CA_HOSTNAME). */
static struct zt_ca_client_opts client_opts(void)
{
	return (struct zt_ca_client_opts){.host = "127.0.0.1",
	                                  .port = SV.port,
	                                  .alt_hostname = HOST,
	                                  .roots_pem = root.root_pem,
	                                  .roots_len = strlen(root.root_pem),
	                                  .token = read_token,
	                                  .token_arg = token_path,
	                                  .cluster_id = "Kubernetes",
	                                  .headers = extra,
	                                  .nheaders = 1,
	                                  .impersonate = true,
	                                  .timeout_ms = 2000};
}

static void client_start(const struct zt_ca_client_opts *o)
{
	ck_assert_int_eq(zt_ca_client_new(&cli, loop, o), 0);
}

/* Starts one signing call for id with a fresh CSR. */
static void *sign(const char *id, struct res *r)
{
	struct zt_cert_source src = zt_ca_client_source(cli);
	struct zt_spiffe sp;
	struct zt_csr csr;
	void *h = NULL;

	ck_assert_int_eq(zt_spiffe_parse(&sp, id, strlen(id)), 0);
	ck_assert_int_eq(zt_csr_generate(&csr, &sp), 0);
	ck_assert_int_eq(src.sign(src.src, id, csr.csr_pem, 86400, on_signed, r, &h), 0);
	ck_assert(!r->done); /* never inside sign() */
	zt_csr_clear(&csr);
	return h;
}

static void setup(void)
{
	int fd;

	zt_log_set_spec("error", NULL, 0);
	memset(&SV, 0, sizeof(SV));
	SV.lfd = -1;
	cli = NULL;
	grpc_srv = (struct zt_grpc_server){methods, 1, 1 << 20};
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	fx_ca_init(&root, "istiod root", NULL);
	fx_ca_init(&other, "other root", NULL);
	snprintf(token_path, sizeof(token_path), "/tmp/zt-ca-token-XXXXXX");
	fd = mkstemp(token_path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	write_token(TOKEN "\n");
	server_start("DNS:" HOST);
}

static void teardown(void)
{
	zt_ca_client_free(cli);
	server_drop_connections();
	fx_run_for(loop, 50);
	if (SV.lfd >= 0) {
		zt_io_stop(&SV.lio);
		close(SV.lfd);
	}
	zt_tls_server_free(SV.tls);
	free(SV.csr);
	zt_loop_free(loop);
	unlink(token_path);
	fx_ca_clear(&root);
	fx_ca_clear(&other);
	ck_assert_uint_eq(zt_h2_conn_live(), 0);
	ck_assert_uint_eq(zt_grpc_call_live(), 0);
	ck_assert_uint_eq(zt_tls_conn_live(), 0);
	ck_assert_uint_eq(zt_tls_identity_live(), 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(create_certificate_sends_token_metadata_and_impersonation_and_returns_chain)
{
	struct zt_ca_client_opts o = client_opts();
	struct res r = {0};

	client_start(&o);
	sign(ID, &r);
	ck_assert_uint_eq(zt_ca_client_calls(cli), 1);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_msg(r.err == 0, "%d %s", r.err, r.msg);
	ck_assert_str_eq(SV.auth, "Bearer " TOKEN);
	ck_assert_str_eq(SV.clusterid, "Kubernetes");
	ck_assert_str_eq(SV.extra, "yes");
	ck_assert(SV.has_metadata);
	ck_assert_str_eq(SV.imp, ID);
	ck_assert_int_eq(SV.validity, 86400);
	ck_assert_ptr_nonnull(strstr(SV.csr, "BEGIN CERTIFICATE REQUEST"));
	ck_assert_uint_eq(r.n, 2);
	ck_assert_ptr_nonnull(strstr(r.chain[0], "BEGIN CERTIFICATE"));
	ck_assert_str_eq(r.chain[1], root.root_pem);
	ck_assert_uint_eq(zt_ca_client_calls(cli), 0);
	ck_assert(zt_ca_client_connected(cli));
	res_clear(&r);
}
END_TEST

START_TEST(dedicated_mode_sends_no_metadata_and_no_token_means_no_authorization)
{
	struct zt_ca_client_opts o = client_opts();
	struct res r = {0};

	o.impersonate = false;
	o.token = NULL;
	o.cluster_id = NULL;
	client_start(&o);
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	/* The stand-in refuses calls without the token. */
	ck_assert_int_eq(r.err, ZT_E_IDENTITY);
	ck_assert_ptr_nonnull(strstr(r.msg, "UNAUTHENTICATED: bad token"));
	ck_assert_str_eq(SV.auth, "");
	ck_assert_str_eq(SV.clusterid, "");
	ck_assert(!SV.has_metadata);
	res_clear(&r);
}
END_TEST

START_TEST(token_file_is_read_again_for_every_call)
{
	struct zt_ca_client_opts o = client_opts();
	struct res r = {0};

	client_start(&o);
	write_token("rotated-token");
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_str_eq(SV.auth, "Bearer rotated-token");
	ck_assert_int_eq(r.err, ZT_E_IDENTITY);
	res_clear(&r);
	unlink(token_path);
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_int_eq(r.err, -ENOENT);
	ck_assert_ptr_nonnull(strstr(r.msg, "token"));
	res_clear(&r);
}
END_TEST

START_TEST(concurrent_calls_share_one_connection)
{
	char ids[5][64];
	struct zt_ca_client_opts o = client_opts();
	struct res r[5] = {0};

	client_start(&o);
	for (int i = 0; i < 5; i++) {
		snprintf(ids[i], sizeof(ids[i]), "spiffe://cluster.local/ns/app/sa/w%d", i);
		sign(ids[i], &r[i]);
	}
	RUN_UNTIL(loop, r[0].done && r[1].done && r[2].done && r[3].done && r[4].done, 5000);
	for (int i = 0; i < 5; i++) {
		ck_assert_msg(r[i].err == 0, "%d: %s", i, r[i].msg);
		res_clear(&r[i]);
	}
	ck_assert_uint_eq(SV.accepted, 1);
	ck_assert_uint_eq(SV.requests, 5);
}
END_TEST

START_TEST(connection_is_dialled_again_after_it_dies)
{
	struct zt_ca_client_opts o = client_opts();
	struct res r = {0};

	client_start(&o);
	SV.mode = S_CLOSE;
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_int_eq(r.err, ZT_E_CLOSED);
	res_clear(&r);
	RUN_UNTIL(loop, !zt_ca_client_connected(cli), 1000);
	SV.mode = S_OK;
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_msg(r.err == 0, "%s", r.msg);
	ck_assert_uint_eq(SV.accepted, 2);
	res_clear(&r);
}
END_TEST

START_TEST(server_must_prove_the_dialled_or_alternative_name)
{
	struct zt_ca_client_opts o = client_opts();
	struct res r = {0};

	/* The server has no IP SAN: dialling 127.0.0.1 needs ALT_CA_HOSTNAME. */
	o.alt_hostname = NULL;
	client_start(&o);
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_int_eq(r.err, ZT_E_TLS);
	ck_assert_ptr_nonnull(strstr(r.msg, "mismatch"));
	ck_assert_uint_eq(SV.requests, 0);
	res_clear(&r);
	zt_ca_client_free(cli);
	o.alt_hostname = "istiod.other.svc";
	client_start(&o);
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_int_eq(r.err, ZT_E_TLS);
	res_clear(&r);
	zt_ca_client_free(cli);
	o.alt_hostname = HOST;
	client_start(&o);
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_msg(r.err == 0, "%s", r.msg);
	res_clear(&r);
}
END_TEST

START_TEST(server_from_another_root_is_refused_until_roots_are_replaced)
{
	struct zt_ca_client_opts o = client_opts();
	struct res r = {0};

	o.roots_pem = other.root_pem;
	o.roots_len = strlen(other.root_pem);
	client_start(&o);
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_int_eq(r.err, ZT_E_TLS);
	ck_assert_msg(strstr(r.msg, "unable to get local issuer") != NULL, "%s", r.msg);
	res_clear(&r);
	ck_assert_int_eq(zt_ca_client_set_roots(cli, "junk", 4), ZT_E_PARSE);
	ck_assert_int_eq(zt_ca_client_set_roots(cli, root.root_pem, strlen(root.root_pem)), 0);
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_msg(r.err == 0, "%s", r.msg);
	res_clear(&r);
	/* Replacing the roots drains the live connection; the next call dials anew. */
	ck_assert_int_eq(zt_ca_client_set_roots(cli, root.root_pem, strlen(root.root_pem)), 0);
	ck_assert(!zt_ca_client_connected(cli));
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(SV.accepted, 3);
	res_clear(&r);
}
END_TEST

START_TEST(call_without_answer_ends_at_its_deadline)
{
	struct zt_ca_client_opts o = client_opts();
	struct res r = {0};
	uint64_t t0;

	o.timeout_ms = 300;
	client_start(&o);
	SV.mode = S_SILENT;
	t0 = zt_loop_update_time(loop);
	sign(ID, &r);
	RUN_UNTIL(loop, r.done, 3000);
	ck_assert_int_eq(r.err, ZT_E_TIMEOUT);
	ck_assert_uint_ge(zt_loop_update_time(loop) - t0, 290);
	ck_assert_uint_le(zt_loop_update_time(loop) - t0, 1000);
	RUN_UNTIL(loop, SV.held_ended, 1000);
	res_clear(&r);
}
END_TEST

START_TEST(bad_responses_fail_the_call)
{
	const enum smode modes[] = {S_GARBAGE, S_EMPTY};
	const char *why[] = {"undecodable", "empty certificate chain"};
	struct zt_ca_client_opts o = client_opts();

	client_start(&o);
	for (size_t i = 0; i < 2; i++) {
		struct res r = {0};

		SV.mode = modes[i];
		sign(ID, &r);
		RUN_UNTIL(loop, r.done, 3000);
		ck_assert_int_eq(r.err, ZT_E_PROTO);
		ck_assert_ptr_null(r.chain);
		ck_assert_msg(strstr(r.msg, why[i]) != NULL, "%s", r.msg);
	}
	SV.mode = S_UNAUTH;
	{
		struct res r = {0};

		sign(ID, &r);
		RUN_UNTIL(loop, r.done, 3000);
		ck_assert_int_eq(r.err, ZT_E_IDENTITY);
	}
}
END_TEST

START_TEST(cancelled_call_never_calls_back_and_resets_its_stream)
{
	struct zt_ca_client_opts o = client_opts();
	struct zt_cert_source src;
	struct res r = {0}, w = {0};
	void *h;

	client_start(&o);
	src = zt_ca_client_source(cli);
	/* Cancelled while still waiting for the connection. */
	h = sign(ID, &w);
	src.cancel(src.src, h);
	SV.mode = S_SILENT;
	h = sign(ID, &r);
	RUN_UNTIL(loop, SV.held != NULL, 3000);
	src.cancel(src.src, h);
	ck_assert_uint_eq(zt_ca_client_calls(cli), 0);
	RUN_UNTIL(loop, SV.held_ended, 1000);
	fx_run_for(loop, 50);
	ck_assert(!r.done);
	ck_assert(!w.done);
	ck_assert_uint_eq(SV.requests, 1);
}
END_TEST

START_TEST(unreachable_ca_fails_waiting_calls)
{
	struct zt_ca_client_opts o = client_opts();
	struct res r[2] = {0};

	zt_io_stop(&SV.lio);
	close(SV.lfd);
	SV.lfd = -1;
	client_start(&o);
	sign(ID, &r[0]);
	sign(ID, &r[1]);
	RUN_UNTIL(loop, r[0].done && r[1].done, 3000);
	ck_assert_int_eq(r[0].err, -ECONNREFUSED);
	ck_assert_int_eq(r[1].err, -ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(r[0].msg, "refused"));
}
END_TEST

START_TEST(client_options_are_validated)
{
	struct zt_ca_client_opts o = client_opts();
	struct zt_grpc_md bad_key[] = {{"X-Upper", "v"}}, bad_val[] = {{"x-ok", "a\r\nb"}},
	                  reserved[] = {{"grpc-timeout", "1S"}};
	struct zt_grpc_md many[ZT_CA_CLIENT_MAX_HEADERS + 1];
	struct zt_ca_client *c = (void *)1;

	o.host = NULL;
	ck_assert_int_eq(zt_ca_client_new(&c, loop, &o), ZT_E_RANGE);
	ck_assert_ptr_null(c);
	o = client_opts();
	o.port = 0;
	ck_assert_int_eq(zt_ca_client_new(&c, loop, &o), ZT_E_RANGE);
	o = client_opts();
	o.headers = bad_key;
	ck_assert_int_eq(zt_ca_client_new(&c, loop, &o), ZT_E_PARSE);
	o.headers = bad_val;
	ck_assert_int_eq(zt_ca_client_new(&c, loop, &o), ZT_E_PARSE);
	o.headers = reserved;
	ck_assert_int_eq(zt_ca_client_new(&c, loop, &o), ZT_E_PARSE);
	for (size_t i = 0; i <= ZT_CA_CLIENT_MAX_HEADERS; i++)
		many[i] = (struct zt_grpc_md){"x-a", "b"};
	o.headers = many;
	o.nheaders = ZT_CA_CLIENT_MAX_HEADERS + 1;
	ck_assert_int_eq(zt_ca_client_new(&c, loop, &o), ZT_E_TOOBIG);
	o = client_opts();
	o.roots_pem = "junk";
	o.roots_len = 4;
	ck_assert_int_eq(zt_ca_client_new(&c, loop, &o), ZT_E_PARSE);
	o = client_opts();
	ck_assert_int_eq(zt_ca_client_new(&c, loop, &o), 0);
	{
		struct zt_cert_source src = zt_ca_client_source(c);
		void *h;

		ck_assert_int_eq(src.sign(src.src, ID, "", 10, on_signed, NULL, &h), ZT_E_PARSE);
		ck_assert_int_eq(src.sign(src.src, "", "x", 10, on_signed, NULL, &h), ZT_E_PARSE);
		ck_assert_int_eq(src.sign(src.src, ID, "x", 0, on_signed, NULL, &h), ZT_E_PARSE);
	}
	zt_ca_client_free(c);
}
END_TEST

static void count_change(void *arg, const struct zt_spiffe *id, struct zt_tls_identity *cert)
{
	(void)id;
	if (cert)
		(*(int *)arg)++;
}

START_TEST(manager_obtains_certificates_through_the_ca_client)
{
	struct zt_ca_client_opts o = client_opts();
	struct zt_certmgr_opts mo;
	struct zt_certmgr *m;
	struct zt_spiffe a, b;
	struct zt_tls_identity *ca = NULL, *cb = NULL;
	int changes = 0;

	client_start(&o);
	zt_certmgr_opts_init(&mo);
	mo.source = zt_ca_client_source(cli);
	mo.on_change = count_change;
	mo.change_arg = &changes;
	ck_assert_int_eq(zt_certmgr_new(&m, loop, &mo), 0);
	ck_assert_int_eq(zt_spiffe_set(&a, "cluster.local", "app", "a"), 0);
	ck_assert_int_eq(zt_spiffe_set(&b, "cluster.local", "app", "b"), 0);
	zt_certmgr_prefetch(m, &a);
	zt_certmgr_prefetch(m, &b);
	RUN_UNTIL(loop, zt_certmgr_pending(m) == 0, 5000);
	ca = zt_certmgr_get(m, &a);
	cb = zt_certmgr_get(m, &b);
	ck_assert_ptr_nonnull(ca);
	ck_assert_ptr_nonnull(cb);
	ck_assert(zt_spiffe_eq(zt_tls_identity_spiffe(ca), &a));
	ck_assert(zt_spiffe_eq(zt_tls_identity_spiffe(cb), &b));
	ck_assert_int_eq(changes, 2);
	ck_assert_uint_eq(SV.accepted, 1);
	zt_tls_identity_unref(ca);
	zt_tls_identity_unref(cb);
	zt_certmgr_free(m);
}
END_TEST

/* ---- against fake istiod's CreateCertificate ----------------------------------------------- */

static char fi_dir[64];
static struct zt_ca *fi_ca;
static struct fi_token_key *fi_key;
static struct fi_ca_service fi_svc;
static struct zt_grpc_method fi_methods[1];

static bool sleep_on_node_1(void *arg, const char *node, const char *ns, const char *sa)
{
	(void)arg;
	return !strcmp(node, "node-1") && !strcmp(ns, "demo") && !strcmp(sa, "sleep");
}

static void fi_setup(void)
{
	char err[256] = "", *token = NULL;

	setup();
	snprintf(fi_dir, sizeof(fi_dir), "/tmp/zt-ca-client-fi-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fi_dir));
	ck_assert_msg(zt_ca_open(&fi_ca, fi_dir, true, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(fi_token_key_open(&fi_key, fi_dir, err, sizeof(err)) == 0, "%s", err);
	fi_svc = (struct fi_ca_service){.ca = fi_ca,
	                                .key = fi_key,
	                                .trust_domain = "cluster.local",
	                                .max_ttl_s = 86400,
	                                .has_pod_on_node = sleep_on_node_1};
	fi_methods[0] = fi_ca_service_method(&fi_svc);
	grpc_srv = (struct zt_grpc_server){fi_methods, 1, 1 << 20};
	/* ztunnel's own token: istio-system/ztunnel on node-1, trusted to impersonate. */
	ck_assert_int_eq(fi_token_mint(fi_key, "node-1", "istio-system", "ztunnel", 3600,
	                               (int64_t)time(NULL), &token),
	                 0);
	write_token(token);
	free(token);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static void fi_teardown(void)
{
	teardown();
	fi_token_key_free(fi_key);
	zt_ca_free(fi_ca);
	nftw(fi_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

START_TEST(manager_gets_impersonated_certificates_from_fake_istiod_only_for_its_node)
{
	struct zt_ca_client_opts o = client_opts();
	struct zt_certmgr_opts mo;
	struct zt_certmgr *m;
	struct zt_spiffe sleep, httpbin;
	struct zt_tls_identity *c;
	json_t *d;
	const char *err;

	o.cluster_id = NULL;
	o.nheaders = 0;
	client_start(&o);
	zt_certmgr_opts_init(&mo);
	mo.source = zt_ca_client_source(cli);
	mo.backoff_base_ms = 10000;
	ck_assert_int_eq(zt_certmgr_new(&m, loop, &mo), 0);
	ck_assert_int_eq(zt_spiffe_set(&sleep, "cluster.local", "demo", "sleep"), 0);
	ck_assert_int_eq(zt_spiffe_set(&httpbin, "cluster.local", "demo", "httpbin"), 0);
	zt_certmgr_prefetch(m, &sleep);
	zt_certmgr_prefetch(m, &httpbin);
	RUN_UNTIL(loop, zt_certmgr_state(m, &httpbin) == ZT_CERT_RETRYING &&
	                  zt_certmgr_state(m, &sleep) == ZT_CERT_AVAILABLE, 5000);
	c = zt_certmgr_get(m, &sleep);
	ck_assert(zt_spiffe_eq(zt_tls_identity_spiffe(c), &sleep));
	ck_assert_ptr_null(zt_certmgr_get(m, &httpbin));
	d = zt_certmgr_dump(m);
	err = json_string_value(json_object_get(json_array_get(d, 0), "lastError"));
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "identity")),
	                 "spiffe://cluster.local/ns/demo/sa/httpbin");
	ck_assert_msg(err && strstr(err, "PERMISSION_DENIED"), "%s", err);
	json_decref(d);
	zt_tls_identity_unref(c);
	zt_certmgr_free(m);
}
END_TEST

Suite *ca_client_suite(void);
Suite *ca_client_suite(void)
{
	Suite *s = suite_create("ca_client");
	TCase *tc = tcase_create("ca_client");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	               create_certificate_sends_token_metadata_and_impersonation_and_returns_chain);
	tcase_add_test(tc, dedicated_mode_sends_no_metadata_and_no_token_means_no_authorization);
	tcase_add_test(tc, token_file_is_read_again_for_every_call);
	tcase_add_test(tc, concurrent_calls_share_one_connection);
	tcase_add_test(tc, connection_is_dialled_again_after_it_dies);
	tcase_add_test(tc, server_must_prove_the_dialled_or_alternative_name);
	tcase_add_test(tc, server_from_another_root_is_refused_until_roots_are_replaced);
	tcase_add_test(tc, call_without_answer_ends_at_its_deadline);
	tcase_add_test(tc, bad_responses_fail_the_call);
	tcase_add_test(tc, cancelled_call_never_calls_back_and_resets_its_stream);
	tcase_add_test(tc, unreachable_ca_fails_waiting_calls);
	tcase_add_test(tc, client_options_are_validated);
	tcase_add_test(tc, manager_obtains_certificates_through_the_ca_client);
	suite_add_tcase(s, tc);
	tc = tcase_create("fake_istiod");
	tcase_add_checked_fixture(tc, fi_setup, fi_teardown);
	tcase_add_test(tc,
	               manager_gets_impersonated_certificates_from_fake_istiod_only_for_its_node);
	suite_add_tcase(s, tc);
	return s;
}
