/* The TLS + HTTP/2 listener: serves gRPC over control-plane TLS on an ephemeral port, drops
 * clients that never finish their handshake, caps connections, and frees with live ones. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/grpc.h"
#include "protocol/h2_listener.h"
#include "runtime/err.h"
#include "tls_fixture.h"

static struct fx_ca ca;
static struct fx_leaf leaf;
static struct zt_loop *loop;
static struct zt_tls_server *tls;

static void echo_message(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	zt_grpc_call_send(call, p, len);
	zt_grpc_call_finish(call, 0, NULL);
}

static const struct zt_grpc_call_cbs echo_cbs = {.on_message = echo_message};

static void echo_handler(struct zt_grpc_call *call, void *arg)
{
	(void)arg;
	zt_grpc_call_set_cbs(call, &echo_cbs, NULL);
}

/* Refuses at once, before the client has half-closed. */
static void reject_handler(struct zt_grpc_call *call, void *arg)
{
	(void)arg;
	zt_grpc_call_finish(call, 7, "go away");
}

static const struct zt_grpc_method methods[] = {{"/t.Echo/Unary", echo_handler, NULL},
                                                {"/t.Reject/Now", reject_handler, NULL}};
static const struct zt_grpc_server grpc = {methods, 2, 1u << 20};

static void grpc_request(struct zt_h2_conn *c, struct zt_h2_stream *st,
                         const struct zt_h2_header *h, size_t n, bool end, void *arg)
{
	zt_grpc_server_on_request(c, st, h, n, end, arg);
}

static size_t server_closes;
static void server_closed(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)c;
	(void)reason;
	(void)arg;
	server_closes++;
}

static const struct zt_h2_conn_cbs srv_cbs = {.on_request = grpc_request,
                                              .on_close = server_closed};

static void setup(void)
{
	fx_ca_init(&ca, "listener root", NULL);
	fx_leaf_issue(&leaf, &ca,
	              &(struct fx_leaf_opts){.sans = "DNS:istiod.istio-system.svc,IP:127.0.0.1",
	                                     .eku = FX_SERVER_AUTH});
	ck_assert_int_eq(zt_tls_cp_server_new(&tls, leaf.chain_pem, strlen(leaf.chain_pem),
	                                      leaf.key_pem, strlen(leaf.key_pem), NULL),
	                 0);
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	server_closes = 0;
}

static void teardown(void)
{
	zt_loop_free(loop);
	zt_tls_server_free(tls);
	fx_leaf_clear(&leaf);
	fx_ca_clear(&ca);
}

static struct zt_h2_listener *listen_here(size_t max_conns, unsigned hs_timeout_ms)
{
	struct zt_h2_listener *l;
	char err[256];
	struct zt_h2_listener_opts o = {.tls = tls,
	                                .cbs = &srv_cbs,
	                                .arg = (void *)&grpc,
	                                .max_conns = max_conns,
	                                .handshake_timeout_ms = hs_timeout_ms};
	ck_assert_int_eq(zt_h2_listener_new(&l, loop, "127.0.0.1:0", &o, err, sizeof(err)), 0);
	ck_assert_uint_ne(zt_h2_listener_addr(l)->port, 0);
	return l;
}

static int tcp_connect(struct zt_h2_listener *l)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(zt_h2_listener_addr(l)->port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* ---- a client making one unary call ----------------------------------------------------- */

struct client {
	const char *path;
	bool keep_open; /* do not half-close after the message */
	struct zt_tls_client *cli;
	struct zt_sock sock;
	struct zt_h2_conn *conn;
	int code;
	bool done, closed;
	char reply[64];
};

static void client_msg(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	struct client *c = arg;
	(void)call;
	if (len < sizeof(c->reply))
		memcpy(c->reply, p, len);
}

static void client_done(struct zt_grpc_call *call, int code, const char *msg, void *arg)
{
	struct client *c = arg;
	(void)call;
	(void)msg;
	c->code = code;
	c->done = true;
	zt_h2_conn_close(c->conn, "done");
}

static const struct zt_grpc_call_cbs client_cbs = {.on_message = client_msg,
                                                   .on_done = client_done};

static void client_conn_closed(struct zt_h2_conn *h, const char *reason, void *arg)
{
	struct client *c = arg;
	(void)h;
	(void)reason;
	c->closed = true;
}

static const struct zt_h2_conn_cbs client_conn_cbs = {.on_close = client_conn_closed};

static void client_handshake(struct zt_sock *s, int err, void *arg)
{
	struct client *c = arg;
	struct zt_h2_settings set;
	int e;

	ck_assert_msg(err == 0, "client handshake: %s", zt_sock_error(s));
	zt_h2_settings_default(&set, false);
	ck_assert_int_eq(zt_h2_conn_new(&c->conn, loop, &c->sock, false, &set, &client_conn_cbs, c),
	                 0);
	struct zt_grpc_call *call = zt_grpc_call_start(c->conn, "istiod.istio-system.svc", c->path,
	                                               NULL, 0, 5000, 1u << 20, &client_cbs, c, &e);
	ck_assert_ptr_nonnull(call);
	ck_assert_int_eq(zt_grpc_call_send(call, "hello", 5), 0);
	if (!c->keep_open)
		ck_assert_int_eq(zt_grpc_call_close_send(call), 0);
}

static void run_call(struct zt_h2_listener *l, struct client *c)
{
	struct zt_tls_conn *tc;

	ck_assert_int_eq(zt_tls_cp_client_new(&c->cli, ca.root_pem, strlen(ca.root_pem), NULL), 0);
	int fd = tcp_connect(l);
	ck_assert_int_eq(zt_tls_conn_cp_client_new(&tc, c->cli, fd, "127.0.0.1"), 0);
	ck_assert_int_eq(zt_sock_start(&c->sock, loop, fd, tc, NULL, NULL), 0);
	zt_sock_handshake(&c->sock, client_handshake, c);
	for (int i = 0; i < 400 && !c->done; i++)
		zt_loop_run_once(loop, 10);
	ck_assert(c->done);
}

START_TEST(client_call_ends_when_server_finishes_before_half_close)
{
	struct zt_h2_listener *l = listen_here(0, 0);
	struct client c = {.code = -1, .path = "/t.Reject/Now", .keep_open = true};

	run_call(l, &c);
	ck_assert_int_eq(c.code, 7);
	for (int i = 0; i < 100 && zt_h2_listener_conns(l); i++)
		zt_loop_run_once(loop, 10);
	ck_assert_uint_eq(zt_h2_listener_conns(l), 0);
	ck_assert_uint_eq(zt_grpc_call_live(), 0);
	zt_h2_listener_free(l);
	zt_tls_client_unref(c.cli);
}
END_TEST

START_TEST(listener_serves_grpc_over_control_plane_tls)
{
	struct zt_h2_listener *l = listen_here(0, 0);
	struct client c = {.code = -1, .path = "/t.Echo/Unary"};

	run_call(l, &c);
	ck_assert_int_eq(c.code, 0);
	ck_assert_str_eq(c.reply, "hello");
	for (int i = 0; i < 100 && (!c.closed || zt_h2_listener_conns(l)); i++)
		zt_loop_run_once(loop, 10);
	ck_assert_uint_eq(zt_h2_listener_conns(l), 0);
	ck_assert_uint_eq(server_closes, 1);
	zt_h2_listener_free(l);
	zt_tls_client_unref(c.cli);
}
END_TEST

START_TEST(listener_drops_clients_that_never_handshake)
{
	/* A deadline long enough to see the connection held on a loaded machine. */
	struct zt_h2_listener *l = listen_here(0, 1000);
	int fd = tcp_connect(l);
	char b;

	for (int i = 0; i < 100 && zt_h2_listener_conns(l) == 0; i++)
		zt_loop_run_once(loop, 5);
	ck_assert_uint_eq(zt_h2_listener_conns(l), 1);
	for (int i = 0; i < 500 && zt_h2_listener_conns(l); i++)
		zt_loop_run_once(loop, 10);
	ck_assert_uint_eq(zt_h2_listener_conns(l), 0);
	ck_assert_int_eq(read(fd, &b, 1), 0); /* closed by the server */
	close(fd);
	zt_h2_listener_free(l);
}
END_TEST

START_TEST(listener_caps_connections_and_frees_with_live_ones)
{
	struct zt_h2_listener *l = listen_here(2, 0);
	int fds[3];
	char b;

	for (int i = 0; i < 3; i++)
		fds[i] = tcp_connect(l);
	for (int i = 0; i < 10; i++)
		zt_loop_run_once(loop, 5);
	ck_assert_uint_eq(zt_h2_listener_conns(l), 2);
	ck_assert_int_eq(read(fds[2], &b, 1), 0); /* the third was closed at once */
	zt_h2_listener_free(l);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(read(fds[i], &b, 1), 0);
		close(fds[i]);
	}
	close(fds[2]);
}
END_TEST

START_TEST(listener_rejects_bad_address)
{
	struct zt_h2_listener *l;
	char err[256];
	struct zt_h2_listener_opts o = {.tls = tls, .cbs = &srv_cbs};

	ck_assert_int_eq(zt_h2_listener_new(&l, loop, "nowhere", &o, err, sizeof(err)), ZT_E_PARSE);
	ck_assert_str_eq(err, "listen address nowhere: expected ip:port");
	ck_assert_int_eq(zt_h2_listener_new(&l, loop, "192.0.2.1:1", &o, err, sizeof(err)),
	                 -EADDRNOTAVAIL);
	ck_assert_msg(strstr(err, "listen on 192.0.2.1:1"), "%s", err);
}
END_TEST

Suite *h2_listener_suite(void);
Suite *h2_listener_suite(void)
{
	Suite *s = suite_create("h2_listener");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, listener_serves_grpc_over_control_plane_tls);
	tcase_add_test(tc, listener_drops_clients_that_never_handshake);
	tcase_add_test(tc, client_call_ends_when_server_finishes_before_half_close);
	tcase_add_test(tc, listener_caps_connections_and_frees_with_live_ones);
	tcase_add_test(tc, listener_rejects_bad_address);
	suite_add_tcase(s, tc);
	return s;
}
