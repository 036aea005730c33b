/* The HTTP/2 client connector (protocol/h2_connect.h) on loopback against our own listener:
 * by name with control-plane TLS it hands over a working connection; failures are reported
 * once, from the loop, with the stage they happened in (refused TCP, a server that never
 * answers TLS, a certificate that does not name the host); a cancelled attempt never calls
 * back; bad arguments are refused up front. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/h2_connect.h"
#include "protocol/h2_listener.h"
#include "runtime/err.h"
#include "tls_fixture.h"

static struct fx_ca ca;
static struct fx_leaf leaf;
static struct zt_loop *loop;
static struct zt_tls_server *srv;
static struct zt_tls_client *cli;

struct outcome {
	int calls;
	struct zt_h2_conn *h2;
	int err;
	enum zt_h2_connect_stage stage;
	char reason[256];
	bool settings, closed;
};

static void on_settings(struct zt_h2_conn *c, void *arg)
{
	struct outcome *o = arg;
	(void)c;
	o->settings = true;
}

static void on_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	struct outcome *o = arg;
	(void)c;
	(void)reason;
	o->closed = true;
}

static const struct zt_h2_conn_cbs cbs = {.on_settings = on_settings, .on_close = on_close};

static void on_done(struct zt_h2_conn *h2, const struct zt_h2_connect_result *r, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->h2 = h2;
	o->err = r->err;
	o->stage = r->stage;
	snprintf(o->reason, sizeof(o->reason), "%s", r->reason);
}

static const struct zt_h2_conn_cbs srv_cbs = {0};

static void setup(void)
{
	fx_ca_init(&ca, "connector root", NULL);
	fx_leaf_issue(&leaf, &ca,
	              &(struct fx_leaf_opts){.sans = "DNS:localhost,IP:127.0.0.1",
	                                     .eku = FX_SERVER_AUTH});
	ck_assert_int_eq(zt_tls_cp_server_new(&srv, leaf.chain_pem, strlen(leaf.chain_pem),
	                                      leaf.key_pem, strlen(leaf.key_pem), NULL),
	                 0);
	ck_assert_int_eq(zt_tls_cp_client_new(&cli, ca.root_pem, strlen(ca.root_pem), NULL), 0);
	ck_assert_int_eq(zt_loop_new(&loop), 0);
}

static void teardown(void)
{
	zt_loop_free(loop);
	zt_tls_client_unref(cli);
	zt_tls_server_free(srv);
	fx_leaf_clear(&leaf);
	fx_ca_clear(&ca);
}

static struct zt_h2_listener *listen_here(void)
{
	struct zt_h2_listener *l;
	char err[256];
	struct zt_h2_listener_opts o = {.tls = srv, .cbs = &srv_cbs};

	ck_assert_int_eq(zt_h2_listener_new(&l, loop, "127.0.0.1:0", &o, err, sizeof(err)), 0);
	return l;
}

/* A port with a listening socket nobody accepts from: TCP completes, TLS never answers. */
static int silent_listener(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void run_until_called(struct outcome *o)
{
	for (int i = 0; i < 500 && o->calls == 0; i++)
		zt_loop_run_once(loop, 10);
	ck_assert_int_eq(o->calls, 1);
}

static struct zt_h2_connect_opts cp_opts(const char *host, uint16_t port, struct outcome *o)
{
	return (struct zt_h2_connect_opts){.host = host,
	                                   .port = port,
	                                   .connect_timeout_ms = 2000,
	                                   .handshake_timeout_ms = 2000,
	                                   .tls = cli,
	                                   .verify_host = host,
	                                   .cbs = &cbs,
	                                   .cbs_arg = o};
}

START_TEST(connector_hands_over_an_h2_connection_by_name)
{
	struct zt_h2_listener *l = listen_here();
	struct outcome o = {0};
	struct zt_h2_connect_opts opts = cp_opts("localhost", zt_h2_listener_addr(l)->port, &o);
	int err = 0;

	ck_assert_ptr_nonnull(zt_h2_connect_start(loop, &opts, on_done, &o, &err));
	ck_assert_int_eq(o.calls, 0); /* never from inside start */
	/* The caller's reference may go (new roots): the attempt holds one of its own. */
	zt_tls_client_unref(cli);
	cli = NULL;
	run_until_called(&o);
	ck_assert_msg(o.h2 != NULL, "%s", o.reason);
	ck_assert_int_eq(o.err, 0);
	ck_assert_str_eq(o.reason, "");
	for (int i = 0; i < 200 && !o.settings; i++)
		zt_loop_run_once(loop, 10);
	ck_assert(o.settings); /* the server's SETTINGS reached the caller's callbacks */
	zt_h2_conn_close(o.h2, "done");
	for (int i = 0; i < 100 && !o.closed; i++)
		zt_loop_run_once(loop, 10);
	ck_assert(o.closed);
	zt_h2_listener_free(l);
}
END_TEST

START_TEST(connector_reports_a_refused_port_at_the_tcp_stage)
{
	uint16_t port;
	int lfd = silent_listener(&port), err = 0;
	struct outcome o = {0};
	struct zt_h2_connect_opts opts = cp_opts("127.0.0.1", 0, &o);

	close(lfd); /* nothing listens there now */
	opts.host = NULL;
	ck_assert_int_eq(zt_addr_parse(&opts.addr, "127.0.0.1:1", 11, 0), 0);
	opts.addr.port = port;
	ck_assert_ptr_nonnull(zt_h2_connect_start(loop, &opts, on_done, &o, &err));
	ck_assert_int_eq(o.calls, 0);
	run_until_called(&o);
	ck_assert_ptr_null(o.h2);
	ck_assert_int_eq(o.stage, ZT_H2_CONNECT_TCP);
	ck_assert_int_eq(o.err, -ECONNREFUSED);
	ck_assert_msg(strstr(o.reason, "connect:") != NULL, "%s", o.reason);
}
END_TEST

START_TEST(connector_times_out_a_server_that_never_answers_tls)
{
	uint16_t port;
	int lfd = silent_listener(&port), err = 0;
	struct outcome o = {0};
	struct zt_h2_connect_opts opts = cp_opts("127.0.0.1", port, &o);

	opts.handshake_timeout_ms = 100;
	ck_assert_ptr_nonnull(zt_h2_connect_start(loop, &opts, on_done, &o, &err));
	run_until_called(&o);
	ck_assert_ptr_null(o.h2);
	ck_assert_int_eq(o.stage, ZT_H2_CONNECT_TLS);
	ck_assert_int_eq(o.err, ZT_E_TIMEOUT);
	ck_assert_str_eq(o.reason, "TLS handshake timed out after 100 ms");
	close(lfd);
}
END_TEST

START_TEST(connector_refuses_a_certificate_that_does_not_name_the_host)
{
	struct zt_h2_listener *l = listen_here();
	struct outcome o = {0};
	struct zt_h2_connect_opts opts = cp_opts("127.0.0.1", zt_h2_listener_addr(l)->port, &o);
	int err = 0;

	opts.verify_host = "istiod.istio-system.svc";
	ck_assert_ptr_nonnull(zt_h2_connect_start(loop, &opts, on_done, &o, &err));
	run_until_called(&o);
	ck_assert_ptr_null(o.h2);
	ck_assert_int_eq(o.stage, ZT_H2_CONNECT_TLS);
	ck_assert_int_eq(o.err, ZT_E_TLS);
	ck_assert_msg(strstr(o.reason, "TLS handshake failed") != NULL, "%s", o.reason);
	for (int i = 0; i < 100 && zt_h2_listener_conns(l); i++)
		zt_loop_run_once(loop, 10);
	zt_h2_listener_free(l);
}
END_TEST

START_TEST(connector_cancelled_never_calls_back)
{
	uint16_t port;
	int lfd = silent_listener(&port), err = 0;
	struct outcome o = {0};
	struct zt_h2_connect_opts opts = cp_opts("127.0.0.1", port, &o);
	struct zt_h2_connect *a, *b;

	a = zt_h2_connect_start(loop, &opts, on_done, &o, &err);
	opts.port = 0; /* by address, to a closed port: its failure is reported from a defer */
	opts.host = NULL;
	ck_assert_int_eq(zt_addr_parse(&opts.addr, "127.0.0.1:1", 11, 0), 0);
	b = zt_h2_connect_start(loop, &opts, on_done, &o, &err);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	zt_h2_connect_cancel(b); /* before its failure report ran */
	zt_loop_run_once(loop, 20);
	zt_h2_connect_cancel(a); /* in the TLS handshake */
	zt_h2_connect_cancel(NULL);
	for (int i = 0; i < 20; i++)
		zt_loop_run_once(loop, 10);
	ck_assert_int_eq(o.calls, 0);
	close(lfd);
}
END_TEST

START_TEST(connector_refuses_bad_arguments)
{
	struct outcome o = {0};
	struct zt_h2_connect_opts opts = cp_opts("127.0.0.1", 15012, &o);
	int err = 0;

	opts.tls = NULL;
	ck_assert_ptr_null(zt_h2_connect_start(loop, &opts, on_done, &o, &err));
	ck_assert_int_eq(err, ZT_E_RANGE);
	opts = cp_opts("127.0.0.1", 0, &o);
	ck_assert_ptr_null(zt_h2_connect_start(loop, &opts, on_done, &o, &err));
	opts = cp_opts("127.0.0.1", 15012, &o);
	opts.verify_host = NULL;
	ck_assert_ptr_null(zt_h2_connect_start(loop, &opts, on_done, &o, &err));
	opts = cp_opts("127.0.0.1", 15012, &o);
	opts.handshake_timeout_ms = 0;
	ck_assert_ptr_null(zt_h2_connect_start(loop, &opts, on_done, &o, &err));
	opts = cp_opts(NULL, 15012, &o);
	opts.verify_host = "x";
	ck_assert_ptr_null(zt_h2_connect_start(loop, &opts, on_done, &o, &err)); /* no address */
	for (int i = 0; i < 5; i++)
		zt_loop_run_once(loop, 1);
	ck_assert_int_eq(o.calls, 0);
}
END_TEST

Suite *h2_connect_suite(void);
Suite *h2_connect_suite(void)
{
	Suite *s = suite_create("h2_connect");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, connector_hands_over_an_h2_connection_by_name);
	tcase_add_test(tc, connector_reports_a_refused_port_at_the_tcp_stage);
	tcase_add_test(tc, connector_times_out_a_server_that_never_answers_tls);
	tcase_add_test(tc, connector_refuses_a_certificate_that_does_not_name_the_host);
	tcase_add_test(tc, connector_cancelled_never_calls_back);
	tcase_add_test(tc, connector_refuses_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}
