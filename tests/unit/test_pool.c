/* HBONE connection pool against an in-process mTLS HTTP/2 server on loopback: stream limits,
 * single-flight creation, GOAWAY, identity failures, timeouts, idle release, cancellation. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hbone/pool.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "loop_fixture.h"
#include "tls_fixture.h"

#define SERVER_ID "spiffe://cluster.local/ns/default/sa/server"
#define CLIENT_ID "spiffe://cluster.local/ns/default/sa/client"
#define MAX_REQ   300

static struct zt_loop *loop;
static struct fx_ca root;
static struct zt_tls_identity *server_id, *client_id;
static struct zt_pool *pool;
static struct zt_pool_opts opts;

/* ---- the server -------------------------------------------------------------------------- */

static struct {
	int lfd;
	struct zt_io lio;
	bool accepting; /* false: connections stay in the kernel's accept queue */
	bool silent;    /* complete TLS, then never speak HTTP/2 */
	struct zt_tls_server *tls;
	struct zt_sockaddr addr;
	struct zt_h2_settings set;
	int accepts, requests;
	struct zt_h2_conn *conns[32];
	struct zt_sock *quiet[32];
	int nquiet;
} S;

static void srv_conn_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)reason;
	(void)arg;
	for (size_t i = 0; i < 32; i++)
		if (S.conns[i] == c)
			S.conns[i] = NULL;
}

static void srv_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)p;
	(void)arg;
	zt_h2_stream_consume(st, len);
}

static void srv_request(struct zt_h2_conn *c, struct zt_h2_stream *st, const struct zt_h2_header *h,
                        size_t n, bool end, void *arg)
{
	static const struct zt_h2_stream_cbs cbs = {.on_data = srv_data};

	(void)c;
	(void)h;
	(void)n;
	(void)end;
	(void)arg;
	S.requests++;
	zt_h2_stream_set_cbs(st, &cbs, NULL);
	zt_h2_stream_respond(st, 200, NULL, 0, false);
}

static const struct zt_h2_conn_cbs srv_cbs = {.on_request = srv_request,
                                              .on_close = srv_conn_close};

static void srv_handshake(struct zt_sock *s, int err, void *arg)
{
	struct zt_h2_conn *c;

	(void)arg;
	if (err < 0 || S.silent) {
		if (err < 0 || S.nquiet == 32) {
			zt_sock_close(s);
			free(s);
		} else {
			zt_sock_want(s, 0);
			S.quiet[S.nquiet++] = s;
		}
		return;
	}
	ck_assert_int_eq(zt_h2_conn_new(&c, loop, s, true, &S.set, &srv_cbs, NULL), 0);
	free(s);
	for (size_t i = 0; i < 32; i++)
		if (!S.conns[i]) {
			S.conns[i] = c;
			break;
		}
}

static void srv_accept(struct zt_io *io, unsigned events, void *arg)
{
	(void)events;
	(void)arg;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct zt_tls_conn *tc;
		struct zt_sock *s;

		if (fd < 0)
			return;
		S.accepts++;
		ck_assert_int_eq(zt_tls_conn_server_new(&tc, S.tls, fd), 0);
		s = calloc(1, sizeof(*s));
		ck_assert_int_eq(zt_sock_start(s, loop, fd, tc, NULL, NULL), 0);
		zt_sock_handshake(s, srv_handshake, NULL);
	}
}

static void server_start(int backlog, bool accepting)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zt_sockaddr any = {.port = 0};

	ck_assert_int_eq(zt_ip_parse(&any.ip, "127.0.0.1", 9), 0);
	sl = zt_addr_to_sockaddr(&any, &ss);
	S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(S.lfd, 0);
	ck_assert_int_eq(bind(S.lfd, (struct sockaddr *)&ss, sl), 0);
	ck_assert_int_eq(listen(S.lfd, backlog), 0);
	sl = sizeof(ss);
	ck_assert_int_eq(getsockname(S.lfd, (struct sockaddr *)&ss, &sl), 0);
	ck_assert_int_eq(zt_addr_from_sockaddr(&S.addr, (struct sockaddr *)&ss, sl), 0);
	S.accepting = accepting;
	if (accepting)
		ck_assert_int_eq(zt_io_start(loop, &S.lio, S.lfd, ZT_IO_READ, srv_accept, NULL), 0);
}

/* ---- client side records ----------------------------------------------------------------- */

struct rec {
	bool done;
	int err;
	enum zt_close flag;
	char reason[256];
	char peer[ZT_SPIFFE_STR_SIZE];
	bool reused;
	struct zt_h2_stream *st;
	int status;
	bool closed;
	struct zt_pool_req *req;
};
static struct rec R[MAX_REQ];
static int ndone;

static void c_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n, bool end,
                      void *arg)
{
	struct rec *r = arg;

	(void)st;
	(void)end;
	for (size_t i = 0; i < n; i++)
		if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0)
			r->status = (int)strtol(h[i].value, NULL, 10);
}

static void c_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	struct rec *r = arg;

	(void)st;
	(void)code;
	r->closed = true;
	r->st = NULL;
}

static const struct zt_h2_stream_cbs c_cbs = {.on_headers = c_headers, .on_close = c_close};

static void on_ready(struct zt_h2_stream *st, const struct zt_pool_result *res, void *arg)
{
	struct rec *r = arg;

	ck_assert(!r->done);
	r->done = true;
	r->req = NULL;
	r->st = st;
	r->err = res->err;
	r->flag = res->flag;
	r->reused = res->reused;
	snprintf(r->reason, sizeof(r->reason), "%s", res->reason);
	if (res->peer)
		zt_spiffe_format(res->peer, r->peer, sizeof(r->peer));
	ck_assert(st ? res->err == 0 : res->err < 0);
	ndone++;
}

static struct zt_spiffe expect_ids[2];
static struct zt_pool_key key;

static void key_init(const char *expected)
{
	ck_assert_int_eq(zt_spiffe_parse(&expect_ids[0], expected, strlen(expected)), 0);
	key = (struct zt_pool_key){
	        .identity = client_id, .dst_ids = expect_ids, .n_dst_ids = 1, .dst = S.addr};
}

static void request(int i)
{
	static const struct zt_h2_header h[] = {{":method", 7, "CONNECT", 7},
	                                        {":authority", 10, "10.0.0.1:80", 11}};

	ck_assert_int_lt(i, MAX_REQ);
	ck_assert_int_eq(
	        zt_pool_connect(pool, &key, h, 2, &c_cbs, &R[i], on_ready, &R[i], &R[i].req), 0);
	ck_assert_ptr_nonnull(R[i].req);
}

static struct zt_pool_stats stats(void)
{
	struct zt_pool_stats st;

	zt_pool_get_stats(pool, &st);
	return st;
}

static void pool_start(void)
{
	ck_assert_int_eq(zt_pool_new(&pool, loop, &opts), 0);
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the daemon does: peers that reset surface as EPIPE */
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	fx_ca_init(&root, "root", NULL);
	server_id = fx_identity(&root, SERVER_ID);
	client_id = fx_identity(&root, CLIENT_ID);
	memset(&S, 0, sizeof(S));
	S.lfd = -1;
	ck_assert_int_eq(zt_tls_server_new(&S.tls, server_id, NULL), 0);
	zt_h2_settings_default(&S.set, true);
	S.set.ping_interval_ms = 0;
	zt_pool_opts_default(&opts);
	opts.h2.ping_interval_ms = 0;
	memset(R, 0, sizeof(R));
	ndone = 0;
	pool = NULL;
}

static void teardown(void)
{
	zt_pool_free(pool);
	for (size_t i = 0; i < 32; i++)
		if (S.conns[i])
			zt_h2_conn_close(S.conns[i], "test over");
	for (int i = 0; i < S.nquiet; i++) {
		zt_sock_close(S.quiet[i]);
		free(S.quiet[i]);
	}
	for (int i = 0; i < 50 && (zt_h2_conn_live() || fx_live("pool_connection")); i++)
		zt_loop_run_once(loop, 10);
	ck_assert_uint_eq(zt_h2_conn_live(), 0);
	ck_assert_uint_eq(zt_h2_stream_live(), 0);
	ck_assert_int_eq(fx_live("pool_connection"), 0);
	ck_assert_int_eq(fx_live("pool_request"), 0);
	zt_io_stop(&S.lio);
	if (S.lfd >= 0)
		close(S.lfd);
	for (int i = 0; i < 20; i++)
		zt_loop_run_once(loop, 1); /* let server handshakes still queued fail and free */
	zt_tls_server_free(S.tls);
	ck_assert_uint_eq(zt_tls_conn_live(), 0);
	zt_tls_identity_unref(server_id);
	zt_tls_identity_unref(client_id);
	ck_assert_uint_eq(zt_tls_identity_live(), 0);
	fx_ca_clear(&root);
	zt_loop_free(loop);
}

/* reading zt_pool_dump() */
static json_t *dump_conns(size_t key_index)
{
	json_t *d = zt_pool_dump(pool), *keys = json_object_get(d, "keys");
	json_t *conns =
	        json_incref(json_object_get(json_array_get(keys, key_index), "connections"));

	json_decref(d);
	return conns;
}

/* ---- tests ------------------------------------------------------------------------------- */

START_TEST(concurrent_requests_fill_connections_up_to_max_streams)
{
	json_t *conns;
	int reused = 0;

	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	for (int i = 0; i < 250; i++)
		request(i);
	RUN_UNTIL(loop, ndone == 250 && S.requests == 250, 10000);
	for (int i = 0; i < 250; i++) {
		ck_assert_msg(R[i].err == 0 && R[i].st, "request %d: %s", i, R[i].reason);
		ck_assert_str_eq(R[i].peer, SERVER_ID);
		reused += R[i].reused;
	}
	RUN_UNTIL(loop, R[249].status == 200, 10000);
	ck_assert_int_eq(S.accepts, 3);
	ck_assert_uint_eq(stats().connects, 3);
	ck_assert_uint_eq(stats().opened, 3);
	ck_assert_uint_eq(stats().streams, 250);
	ck_assert_uint_eq(stats().reused, 247);
	ck_assert_int_eq(reused, 247);
	conns = dump_conns(0);
	ck_assert_uint_eq(json_array_size(conns), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(conns, 0), "streams")),
	                 100);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(conns, 1), "streams")),
	                 100);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(conns, 2), "streams")),
	                 50);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(conns, 2), "state")),
	                 "ready");
	json_decref(conns);
	/* A stream ending frees a slot that the next request takes: no new connection. */
	zt_h2_stream_reset(R[0].st, 8);
	RUN_UNTIL(loop, R[0].closed, 10000);
	request(250);
	RUN_UNTIL(loop, R[250].done, 10000);
	ck_assert_int_eq(R[250].err, 0);
	ck_assert_int_eq(S.accepts, 3);
}
END_TEST

START_TEST(peer_max_concurrent_streams_bounds_each_connection)
{
	S.set.max_streams = 10;
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	for (int i = 0; i < 25; i++)
		request(i);
	RUN_UNTIL(loop, ndone == 25 && S.requests == 25, 10000);
	for (int i = 0; i < 25; i++)
		ck_assert_int_eq(R[i].err, 0);
	ck_assert_int_eq(S.accepts, 3);
	json_t *conns = dump_conns(0);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(conns, 0), "streams")),
	                 10);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(conns, 2), "streams")),
	                 5);
	json_decref(conns);
}
END_TEST

START_TEST(requests_arriving_during_the_handshake_wait_for_it)
{
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	/* The TCP connection exists, the TLS handshake has not finished. */
	RUN_UNTIL(loop, S.accepts == 1, 10000);
	ck_assert_int_eq(ndone, 0);
	for (int i = 1; i < 6; i++)
		request(i);
	ck_assert_uint_eq(stats().waiting, 6);
	RUN_UNTIL(loop, ndone == 6, 10000);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(R[i].err, 0);
	ck_assert_int_eq(S.accepts, 1);
	ck_assert_uint_eq(stats().connects, 1);
	ck_assert(!R[0].reused);
	ck_assert(R[5].reused);
}
END_TEST

START_TEST(ready_never_runs_inside_connect_even_with_a_free_connection)
{
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, ndone == 1, 10000);
	fx_run_for(loop, 50); /* peer SETTINGS in: the connection is ready */
	request(1);
	ck_assert(!R[1].done);
	RUN_UNTIL(loop, R[1].done, 10000);
	ck_assert(R[1].reused);
	ck_assert_int_eq(S.accepts, 1);
}
END_TEST

START_TEST(goaway_from_server_makes_next_request_open_a_new_connection)
{
	struct zt_h2_conn *first;

	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, R[0].status == 200, 10000);
	first = zt_h2_stream_conn(R[0].st);
	ck_assert_ptr_nonnull(S.conns[0]);
	zt_h2_conn_shutdown(S.conns[0]);
	RUN_UNTIL(loop, !zt_h2_conn_can_open(first), 10000);
	request(1);
	RUN_UNTIL(loop, R[1].done, 10000);
	ck_assert_int_eq(R[1].err, 0);
	ck_assert_ptr_ne(zt_h2_stream_conn(R[1].st), first);
	ck_assert(!R[1].reused);
	ck_assert_int_eq(S.accepts, 2);
	/* The old connection keeps its open stream until it ends, then goes. */
	ck_assert(!R[0].closed);
	json_t *conns = dump_conns(0);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(conns, 0), "state")),
	                 "draining");
	json_decref(conns);
	zt_h2_stream_reset(R[0].st, 8);
	RUN_UNTIL(loop, stats().connections == 1, 10000);
}
END_TEST

START_TEST(server_with_wrong_identity_fails_every_waiting_request)
{
	server_start(128, true);
	pool_start();
	key_init("spiffe://cluster.local/ns/default/sa/expected");
	for (int i = 0; i < 5; i++)
		request(i);
	RUN_UNTIL(loop, ndone == 5, 10000);
	for (int i = 0; i < 5; i++) {
		ck_assert_ptr_null(R[i].st);
		ck_assert_int_eq(R[i].err, ZT_E_IDENTITY);
		ck_assert_int_eq(R[i].flag, ZT_CLOSE_IDENTITY_ERROR);
		ck_assert_msg(strstr(R[i].reason, SERVER_ID) != NULL, "%s", R[i].reason);
	}
	ck_assert_str_eq(zt_close_flag(R[0].flag), "IDENTITY_ERROR");
	ck_assert_int_eq(S.accepts, 1);
	ck_assert_uint_eq(stats().failed, 1);
	ck_assert_uint_eq(stats().connections, 0);
	ck_assert_uint_eq(stats().keys, 0);
	/* The next request tries again (no negative caching) and fails the same way. */
	request(5);
	RUN_UNTIL(loop, R[5].done, 10000);
	ck_assert_int_eq(R[5].flag, ZT_CLOSE_IDENTITY_ERROR);
	ck_assert_int_eq(S.accepts, 2);
}
END_TEST

START_TEST(any_of_several_expected_identities_is_accepted)
{
	server_start(128, true);
	pool_start();
	key_init("spiffe://cluster.local/ns/default/sa/other");
	ck_assert_int_eq(zt_spiffe_parse(&expect_ids[1], SERVER_ID, strlen(SERVER_ID)), 0);
	key.n_dst_ids = 2;
	request(0);
	RUN_UNTIL(loop, R[0].done, 10000);
	ck_assert_int_eq(R[0].err, 0);
	ck_assert_str_eq(R[0].peer, SERVER_ID);
}
END_TEST

START_TEST(different_keys_never_share_a_connection)
{
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	/* Same server, a different list of acceptable identities: another key. */
	ck_assert_int_eq(zt_spiffe_parse(&expect_ids[1], CLIENT_ID, strlen(CLIENT_ID)), 0);
	key.n_dst_ids = 2;
	request(1);
	RUN_UNTIL(loop, ndone == 2, 10000);
	ck_assert_int_eq(R[0].err, 0);
	ck_assert_int_eq(R[1].err, 0);
	ck_assert_int_eq(S.accepts, 2);
	ck_assert_uint_eq(stats().keys, 2);
}
END_TEST

START_TEST(unused_connection_is_released_after_the_timeout)
{
	uint64_t t0;

	opts.idle_ms = 150;
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, R[0].status == 200, 10000);
	t0 = zt_loop_update_time(loop);
	zt_h2_stream_reset(R[0].st, 8);
	RUN_UNTIL(loop, R[0].closed, 10000);
	RUN_UNTIL(loop, stats().connections == 0, 10000);
	ck_assert_uint_ge(zt_loop_update_time(loop) - t0, 140);
	ck_assert_uint_eq(stats().keys, 0);
	RUN_UNTIL(loop, S.conns[0] == NULL, 10000); /* the server saw it close */
}
END_TEST

START_TEST(evicted_connection_with_streams_closes_when_the_last_one_ends)
{
	opts.idle_ms = 100;
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, R[0].status == 200, 10000);
	fx_run_for(loop, 200);
	/* Out of the pool but still carrying its stream. */
	ck_assert(!R[0].closed);
	ck_assert_uint_eq(stats().connections, 1);
	json_t *conns = dump_conns(0);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(conns, 0), "state")),
	                 "draining");
	json_decref(conns);
	request(1);
	RUN_UNTIL(loop, R[1].done, 10000);
	ck_assert_int_eq(S.accepts, 2);
	zt_h2_stream_reset(R[0].st, 8);
	RUN_UNTIL(loop, stats().connections == 1, 10000);
}
END_TEST

START_TEST(cancelled_request_never_hears_back_and_connection_still_forms)
{
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	request(1);
	zt_pool_req_cancel(R[0].req);
	RUN_UNTIL(loop, R[1].done, 10000);
	fx_run_for(loop, 50);
	ck_assert(!R[0].done);
	ck_assert_int_eq(S.requests, 1);
	/* Cancelling the only request of a fresh key: nothing stays waiting. */
	request(2);
	zt_pool_req_cancel(R[2].req);
	ck_assert_uint_eq(stats().waiting, 0);
	fx_run_for(loop, 50);
	ck_assert(!R[2].done);
	ck_assert_int_eq(S.requests, 1);
	ck_assert_int_eq(S.accepts, 1);
}
END_TEST

START_TEST(refused_tcp_connect_is_a_connect_failure)
{
	server_start(128, false);
	close(S.lfd); /* nothing listens on the port any more */
	S.lfd = -1;
	pool_start();
	key_init(SERVER_ID);
	request(0);
	request(1);
	RUN_UNTIL(loop, ndone == 2, 10000);
	ck_assert_int_eq(R[0].err, -ECONNREFUSED);
	ck_assert_int_eq(R[0].flag, ZT_CLOSE_CONNECT);
	ck_assert_int_eq(R[1].flag, ZT_CLOSE_CONNECT);
	ck_assert_str_eq(zt_close_flag(R[1].flag), "CONNECT");
	ck_assert_uint_eq(stats().connects, 1);
}
END_TEST

START_TEST(tcp_connect_timeout_is_a_network_policy_failure)
{
	int fill[8], n = 0;
	struct sockaddr_storage ss;
	socklen_t sl;

	opts.connect_timeout_ms = 200;
	server_start(0, false);
	/* Fill the accept queue of a listener that never accepts: later SYNs are dropped. */
	sl = zt_addr_to_sockaddr(&S.addr, &ss);
	for (n = 0; n < 8; n++) {
		fill[n] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[n], (struct sockaddr *)&ss, sl);
	}
	fx_run_for(loop, 50);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, R[0].done, 10000);
	for (int i = 0; i < n; i++)
		close(fill[i]);
	ck_assert_msg(R[0].flag == ZT_CLOSE_NETWORK_POLICY, "flag %s: %s",
	              zt_close_flag(R[0].flag), R[0].reason);
	ck_assert_int_eq(R[0].err, ZT_E_TIMEOUT);
	ck_assert_str_eq(zt_close_flag(R[0].flag), "NETWORK_POLICY");
}
END_TEST

START_TEST(silent_tls_peer_is_a_tls_failure_after_the_timeout)
{
	opts.handshake_timeout_ms = 150;
	server_start(128, false); /* the kernel completes TCP; nobody answers the ClientHello */
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, R[0].done, 10000);
	ck_assert_int_eq(R[0].flag, ZT_CLOSE_TLS_FAILURE);
	ck_assert_int_eq(R[0].err, ZT_E_TIMEOUT);
	ck_assert_msg(strstr(R[0].reason, "TLS handshake timed out") != NULL, "%s", R[0].reason);
}
END_TEST

START_TEST(peer_without_http2_settings_is_an_h2_handshake_failure)
{
	opts.handshake_timeout_ms = 200;
	S.silent = true;
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	for (int i = 0; i < 3; i++)
		request(i);
	RUN_UNTIL(loop, ndone == 3, 10000);
	/* The first stream went out at once; the others waited for SETTINGS that never came. */
	ck_assert_int_eq(R[0].err, 0);
	for (int i = 1; i < 3; i++) {
		ck_assert_int_eq(R[i].flag, ZT_CLOSE_H2_HANDSHAKE_FAILURE);
		ck_assert_int_eq(R[i].err, ZT_E_TIMEOUT);
	}
	RUN_UNTIL(loop, R[0].closed, 10000);
	ck_assert_int_eq(S.accepts, 1);
	ck_assert_str_eq(zt_close_flag(R[1].flag), "H2_HANDSHAKE_FAILURE");
}
END_TEST

START_TEST(peer_allowing_no_streams_is_an_h2_handshake_failure)
{
	S.set.max_streams = 0;
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	for (int i = 0; i < 4; i++)
		request(i);
	RUN_UNTIL(loop, ndone == 4, 10000);
	/* One stream left before the SETTINGS said no; the others fail with the attempt. */
	for (int i = 1; i < 4; i++) {
		ck_assert_int_eq(R[i].flag, ZT_CLOSE_H2_HANDSHAKE_FAILURE);
		ck_assert_str_eq(R[i].reason, "peer allows no streams");
	}
	ck_assert_int_eq(S.accepts, 1);
	RUN_UNTIL(loop, R[0].closed, 10000);
	ck_assert_int_ne(R[0].status, 200);
}
END_TEST

static int hook_calls;

static int hook(int family, void *arg)
{
	ck_assert_ptr_eq(arg, &hook_calls);
	hook_calls++;
	return socket(family, SOCK_STREAM, 0); /* blocking on purpose: the pool fixes that */
}

START_TEST(socket_hook_creates_every_socket)
{
	hook_calls = 0;
	opts.socket_cb = hook;
	opts.socket_arg = &hook_calls;
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, R[0].status == 200, 10000);
	ck_assert_int_eq(hook_calls, 1);
}
END_TEST

static int failing_hook(int family, void *arg)
{
	(void)family;
	(void)arg;
	return -EMFILE;
}

START_TEST(socket_hook_failure_is_reported_as_a_connect_failure)
{
	opts.socket_cb = failing_hook;
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, R[0].done, 10000);
	ck_assert_int_eq(R[0].err, -EMFILE);
	ck_assert_int_eq(R[0].flag, ZT_CLOSE_CONNECT);
	ck_assert_int_eq(S.accepts, 0);
}
END_TEST

START_TEST(socket_mark_is_applied_or_its_refusal_reported)
{
	opts.sock.mark_set = true;
	opts.sock.mark = 1337;
	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(0);
	RUN_UNTIL(loop, R[0].done, 10000);
	if (geteuid() == 0) {
		ck_assert_int_eq(R[0].err, 0);
	} else {
		ck_assert_int_eq(R[0].flag, ZT_CLOSE_CONNECT);
		ck_assert_msg(strstr(R[0].reason, "SO_MARK") != NULL, "%s", R[0].reason);
	}
}
END_TEST

static void cancel_other(struct zt_h2_stream *st, const struct zt_pool_result *res, void *arg)
{
	on_ready(st, res, arg);
	if (R[1].req)
		zt_pool_req_cancel(R[1].req);
}

START_TEST(freeing_the_pool_cancels_waiters_and_closes_connections)
{
	static const struct zt_h2_header h[] = {{":method", 7, "CONNECT", 7},
	                                        {":authority", 10, "10.0.0.1:80", 11}};
	struct zt_pool_req *r0;

	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	request(2);
	RUN_UNTIL(loop, R[2].status == 200, 10000);
	/* A ready callback that cancels another waiting request while the pool closes. */
	ck_assert_int_eq(zt_pool_connect(pool, &key, h, 2, &c_cbs, &R[0], cancel_other, &R[0], &r0),
	                 0);
	request(1);
	zt_pool_free(pool);
	pool = NULL;
	ck_assert(R[0].done);
	ck_assert_int_eq(R[0].err, ZT_E_CANCELLED);
	ck_assert(!R[1].done);
	RUN_UNTIL(loop, R[2].closed, 10000);
	RUN_UNTIL(loop, fx_live("pool_connection") == 0, 10000);
}
END_TEST

static void free_pool_then_record(struct zt_h2_stream *st, const struct zt_pool_result *res,
                                  void *arg)
{
	zt_pool_free(pool);
	pool = NULL;
	on_ready(st, res, arg);
}

START_TEST(freeing_the_pool_from_a_ready_callback_is_safe)
{
	static const struct zt_h2_header h[] = {{":method", 7, "CONNECT", 7},
	                                        {":authority", 10, "10.0.0.1:80", 11}};

	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	/* Success path: freed while dispatching; the second request is cancelled. */
	ck_assert_int_eq(zt_pool_connect(pool, &key, h, 2, &c_cbs, &R[0], free_pool_then_record,
	                                 &R[0], &R[0].req),
	                 0);
	request(1);
	RUN_UNTIL(loop, ndone == 2, 10000);
	ck_assert_int_eq(R[0].err, 0);
	ck_assert_int_eq(R[1].err, ZT_E_CANCELLED);
	RUN_UNTIL(loop, R[0].closed && fx_live("pool_connection") == 0, 10000);
	/* Failure path: freed while waiters are being failed; each still hears back once. */
	memset(R, 0, sizeof(R));
	ndone = 0;
	pool_start();
	key_init("spiffe://cluster.local/ns/default/sa/expected");
	ck_assert_int_eq(zt_pool_connect(pool, &key, h, 2, &c_cbs, &R[0], free_pool_then_record,
	                                 &R[0], &R[0].req),
	                 0);
	request(1);
	request(2);
	RUN_UNTIL(loop, ndone == 3, 10000);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(R[i].flag, ZT_CLOSE_IDENTITY_ERROR);
	RUN_UNTIL(loop, fx_live("pool_connection") == 0, 10000);
}
END_TEST

START_TEST(connect_rejects_bad_keys_without_a_callback)
{
	static const struct zt_h2_header h[] = {{":method", 7, "CONNECT", 7}};
	struct zt_pool_req *r;
	struct zt_pool_key k;

	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	k = key;
	k.n_dst_ids = 0;
	ck_assert_int_eq(zt_pool_connect(pool, &k, h, 1, NULL, NULL, on_ready, &R[0], &r),
	                 ZT_E_RANGE);
	k = key;
	k.identity = NULL;
	ck_assert_int_eq(zt_pool_connect(pool, &k, h, 1, NULL, NULL, on_ready, &R[0], &r),
	                 ZT_E_RANGE);
	k = key;
	k.n_dst_ids = ZT_TLS_MAX_EXPECTED + 1;
	ck_assert_int_eq(zt_pool_connect(pool, &k, h, 1, NULL, NULL, on_ready, &R[0], &r),
	                 ZT_E_RANGE);
	ck_assert_int_eq(zt_pool_connect(pool, &key, h, 0, NULL, NULL, on_ready, &R[0], &r),
	                 ZT_E_RANGE);
	ck_assert_ptr_null(r);
	fx_run_for(loop, 20);
	ck_assert(!R[0].done);
	ck_assert_uint_eq(stats().keys, 0);
}
END_TEST

START_TEST(dump_describes_keys_and_connections)
{
	char dst[ZT_ADDR_STRLEN];
	json_t *d, *k, *c;

	server_start(128, true);
	pool_start();
	key_init(SERVER_ID);
	ck_assert_int_eq(zt_ip_parse(&key.src_ip, "127.0.0.1", 9), 0);
	request(0);
	request(1);
	RUN_UNTIL(loop, ndone == 2, 10000);
	d = zt_pool_dump(pool);
	zt_addr_format(&S.addr, dst, sizeof(dst));
	ck_assert_int_eq(json_integer_value(json_object_get(d, "connects")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(d, "streams")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(d, "reused")), 1);
	k = json_array_get(json_object_get(d, "keys"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(k, "source")), CLIENT_ID);
	ck_assert_str_eq(json_string_value(json_object_get(k, "destination")), dst);
	ck_assert_str_eq(json_string_value(json_object_get(k, "source_ip")), "127.0.0.1");
	ck_assert_str_eq(
	        json_string_value(json_array_get(json_object_get(k, "destination_identities"), 0)),
	        SERVER_ID);
	c = json_array_get(json_object_get(k, "connections"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "streams")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "max_streams")), 100);
	ck_assert_str_eq(json_string_value(json_object_get(c, "peer")), SERVER_ID);
	json_decref(d);
}
END_TEST

Suite *pool_suite(void);
Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool"), *f = tcase_create("failures");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, concurrent_requests_fill_connections_up_to_max_streams);
	tcase_add_test(tc, peer_max_concurrent_streams_bounds_each_connection);
	tcase_add_test(tc, requests_arriving_during_the_handshake_wait_for_it);
	tcase_add_test(tc, ready_never_runs_inside_connect_even_with_a_free_connection);
	tcase_add_test(tc, goaway_from_server_makes_next_request_open_a_new_connection);
	tcase_add_test(tc, any_of_several_expected_identities_is_accepted);
	tcase_add_test(tc, different_keys_never_share_a_connection);
	tcase_add_test(tc, unused_connection_is_released_after_the_timeout);
	tcase_add_test(tc, evicted_connection_with_streams_closes_when_the_last_one_ends);
	tcase_add_test(tc, cancelled_request_never_hears_back_and_connection_still_forms);
	tcase_add_test(tc, socket_hook_creates_every_socket);
	tcase_add_test(tc, freeing_the_pool_cancels_waiters_and_closes_connections);
	tcase_add_test(tc, freeing_the_pool_from_a_ready_callback_is_safe);
	tcase_add_test(tc, connect_rejects_bad_keys_without_a_callback);
	tcase_add_test(tc, dump_describes_keys_and_connections);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(f, setup, teardown);
	tcase_set_timeout(f, 30);
	tcase_add_test(f, server_with_wrong_identity_fails_every_waiting_request);
	tcase_add_test(f, refused_tcp_connect_is_a_connect_failure);
	tcase_add_test(f, tcp_connect_timeout_is_a_network_policy_failure);
	tcase_add_test(f, silent_tls_peer_is_a_tls_failure_after_the_timeout);
	tcase_add_test(f, peer_without_http2_settings_is_an_h2_handshake_failure);
	tcase_add_test(f, peer_allowing_no_streams_is_an_h2_handshake_failure);
	tcase_add_test(f, socket_hook_failure_is_reported_as_a_connect_failure);
	tcase_add_test(f, socket_mark_is_applied_or_its_refusal_reported);
	suite_add_tcase(s, f);
	return s;
}
