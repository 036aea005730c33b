/* HTTP/2 and gRPC behaviour between our own client and server over a socketpair (plain
 * sockets, and TLS for the zero-copy body path under partial writes). */
#include <check.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_fixture.h"
#include "tls_fixture.h"
#include "protocol/grpc.h"
#include "protocol/h2.h"
#include "runtime/err.h"

static struct zt_loop *loop;
static struct zt_h2_conn *cli, *srv;
static struct zt_h2_settings cset, sset;
static int closed_conns;
static const char *cli_reason;

static void on_conn_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)arg;
	if (c == cli) {
		cli = NULL;
		cli_reason = reason;
	}
	if (c == srv)
		srv = NULL;
	closed_conns++;
}

static struct zt_h2_conn_cbs server_cbs = {.on_close = on_conn_close};
static const struct zt_h2_conn_cbs client_cbs = {.on_close = on_conn_close};

static void *server_arg;

/* Stream records live in static storage: teardown closes the connections, and the streams'
 * on_close callbacks still write into their records after the test function returned. */
struct rec {
	int status;
	bool closed;
	uint32_t code;
	bool ended;
	size_t bytes;
};
static struct rec R[4];

static void start_pair(void)
{
	int sv[2];
	struct zt_sock a, b;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_int_eq(zt_sock_start(&a, loop, sv[0], NULL, NULL, NULL), 0);
	ck_assert_int_eq(zt_sock_start(&b, loop, sv[1], NULL, NULL, NULL), 0);
	ck_assert_int_eq(zt_h2_conn_new(&cli, loop, &a, false, &cset, &client_cbs, NULL), 0);
	ck_assert_int_eq(zt_h2_conn_new(&srv, loop, &b, true, &sset, &server_cbs, server_arg), 0);
}

static void setup(void)
{
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	zt_h2_settings_default(&cset, false);
	zt_h2_settings_default(&sset, true);
	cset.ping_interval_ms = sset.ping_interval_ms = 0;
	server_cbs = (struct zt_h2_conn_cbs){.on_close = on_conn_close};
	closed_conns = 0;
	cli_reason = NULL;
	server_arg = NULL;
	memset(R, 0, sizeof(R));
}

static void teardown(void)
{
	if (cli)
		zt_h2_conn_close(cli, "test over");
	if (srv)
		zt_h2_conn_close(srv, "test over");
	while (cli || srv)
		zt_loop_run_once(loop, 10);
	zt_loop_free(loop);
	ck_assert_uint_eq(zt_h2_conn_live(), 0);
	ck_assert_uint_eq(zt_h2_stream_live(), 0);
	ck_assert_uint_eq(zt_grpc_call_live(), 0);
}

/* ---- client stream recorder ---- */

static void r_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n, bool end,
		      void *arg)
{
	struct rec *r = arg;

	(void)st;
	(void)end;
	for (size_t i = 0; i < n; i++)
		if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0)
			r->status = (int)strtol(h[i].value, NULL, 10);
}

static void r_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct rec *r = arg;

	(void)p;
	r->bytes += len;
	zt_h2_stream_consume(st, len);
}

static void r_end(struct zt_h2_stream *st, void *arg)
{
	(void)st;
	((struct rec *)arg)->ended = true;
}

static void r_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	struct rec *r = arg;

	(void)st;
	r->closed = true;
	r->code = code;
}

static const struct zt_h2_stream_cbs rec_cbs = {
	.on_headers = r_headers, .on_data = r_data, .on_end = r_end, .on_close = r_close};

static struct zt_h2_stream *connect_req(struct rec *r, const char *authority)
{
	struct zt_h2_header h[] = {ZT_H2_HDR(":method", "CONNECT"),
				   {":authority", 10, authority, strlen(authority)}};
	int err = 0;
	struct zt_h2_stream *st = zt_h2_request(cli, h, 2, false, &rec_cbs, r, &err);

	ck_assert_ptr_nonnull(st);
	return st;
}

static int requests_seen;

static void respond_200(struct zt_h2_conn *c, struct zt_h2_stream *st,
			const struct zt_h2_header *h, size_t n, bool end, void *arg)
{
	(void)c;
	(void)h;
	(void)n;
	(void)end;
	(void)arg;
	requests_seen++;
	zt_h2_stream_respond(st, 200, NULL, 0, false);
}

START_TEST(oversized_request_headers_get_431_and_the_connection_survives)
{
	static char big[20000];
	struct rec *r1 = &R[0], *r2 = &R[1];
	struct zt_h2_header h[] = {ZT_H2_HDR(":method", "CONNECT"),
				   ZT_H2_HDR(":authority", "10.0.0.1:80"), {"x-big", 5, big, 0}};
	int err;

	memset(big, 'a', sizeof(big) - 1);
	h[2].value_len = sizeof(big) - 1;
	sset.max_header_list = 16384;
	server_cbs.on_request = respond_200;
	requests_seen = 0;
	start_pair();
	ck_assert_ptr_nonnull(zt_h2_request(cli, h, 3, false, &rec_cbs, r1, &err));
	RUN_UNTIL(loop, r1->status != 0, 3000);
	ck_assert_int_eq(r1->status, 431);
	ck_assert_int_eq(requests_seen, 0);
	/* A stream-local failure: the same connection still carries new streams. */
	connect_req(r2, "10.0.0.1:80");
	RUN_UNTIL(loop, r2->status == 200, 3000);
	ck_assert_ptr_nonnull(cli);
}
END_TEST

static struct zt_h2_stream *held[8];
static int nheld;

static void hold(struct zt_h2_conn *c, struct zt_h2_stream *st, const struct zt_h2_header *h,
		 size_t n, bool end, void *arg)
{
	(void)c;
	(void)h;
	(void)n;
	(void)end;
	(void)arg;
	held[nheld++] = st;
	zt_h2_stream_respond(st, 200, NULL, 0, false);
}

START_TEST(server_stream_limit_is_announced_and_respected)
{
	struct rec *r = R;

	sset.max_streams = 2;
	server_cbs.on_request = hold;
	nheld = 0;
	start_pair();
	for (int i = 0; i < 10; i++) /* let the SETTINGS exchange happen */
		zt_loop_run_once(loop, 5);
	connect_req(&r[0], "10.0.0.1:1");
	connect_req(&r[1], "10.0.0.1:2");
	RUN_UNTIL(loop, nheld == 2, 3000);
	ck_assert(!zt_h2_conn_can_open(cli));
	/* One ends: room for another. */
	zt_h2_stream_reset(held[0], NGHTTP2_CANCEL);
	RUN_UNTIL(loop, r[0].closed, 3000);
	ck_assert(zt_h2_conn_can_open(cli));
	connect_req(&r[2], "10.0.0.1:3");
	RUN_UNTIL(loop, nheld == 3, 3000);
}
END_TEST

static int settings_seen;
static bool open_after_one;
static uint32_t peer_max_seen;

static void cli_settings(struct zt_h2_conn *c, void *arg)
{
	(void)arg;
	if (++settings_seen == 1) {
		connect_req(&R[0], "10.0.0.1:1");
		open_after_one = zt_h2_conn_can_open(c);
		peer_max_seen = zt_h2_conn_peer_max_streams(c);
	}
}

START_TEST(peer_settings_are_reported_with_their_values_in_effect)
{
	static const struct zt_h2_conn_cbs cbs = {.on_close = on_conn_close,
						  .on_settings = cli_settings};
	int sv[2];
	struct zt_sock a, b;

	sset.max_streams = 1;
	server_cbs.on_request = respond_200;
	settings_seen = 0;
	open_after_one = true;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_int_eq(zt_sock_start(&a, loop, sv[0], NULL, NULL, NULL), 0);
	ck_assert_int_eq(zt_sock_start(&b, loop, sv[1], NULL, NULL, NULL), 0);
	ck_assert_int_eq(zt_h2_conn_new(&cli, loop, &a, false, &cset, &cbs, NULL), 0);
	ck_assert_int_eq(zt_h2_conn_new(&srv, loop, &b, true, &sset, &server_cbs, NULL), 0);
	ck_assert_uint_gt(zt_h2_conn_peer_max_streams(cli), 1); /* assumed until SETTINGS */
	RUN_UNTIL(loop, R[0].status == 200, 3000);
	ck_assert_uint_eq(peer_max_seen, 1);
	/* Reported once (ACKs are not), with the peer's limit of one stream already applied. */
	ck_assert_int_eq(settings_seen, 1);
	ck_assert(!open_after_one);
}
END_TEST

START_TEST(reset_stream_ends_only_that_stream)
{
	struct rec *a = &R[0], *b = &R[1];
	struct zt_h2_stream *sa;

	server_cbs.on_request = respond_200;
	start_pair();
	sa = connect_req(a, "10.0.0.1:1");
	connect_req(b, "10.0.0.1:2");
	RUN_UNTIL(loop, a->status == 200 && b->status == 200, 3000);
	zt_h2_stream_reset(sa, NGHTTP2_CANCEL);
	RUN_UNTIL(loop, a->closed, 3000);
	ck_assert_uint_eq(a->code, NGHTTP2_CANCEL);
	ck_assert(!b->closed);
	ck_assert_uint_eq(zt_h2_conn_streams(cli), 1);
}
END_TEST

START_TEST(graceful_shutdown_lets_open_streams_finish_then_closes)
{
	struct rec *a = &R[0], *b = &R[1];
	struct zt_h2_stream *sa;
	int err;
	struct zt_h2_header h[] = {ZT_H2_HDR(":method", "CONNECT"),
				   ZT_H2_HDR(":authority", "10.0.0.1:9")};

	server_cbs.on_request = hold;
	nheld = 0;
	start_pair();
	sa = connect_req(a, "10.0.0.1:1");
	RUN_UNTIL(loop, nheld == 1 && a->status == 200, 3000);
	zt_h2_conn_shutdown(srv);
	RUN_UNTIL(loop, !zt_h2_conn_can_open(cli), 3000);
	ck_assert_ptr_null(zt_h2_request(cli, h, 2, false, &rec_cbs, b, &err));
	ck_assert_int_eq(err, ZT_E_STATE);
	/* The open stream still works in both directions, then both ends close cleanly. */
	ck_assert_int_eq(zt_h2_stream_write(held[0], "hello", 5), 5);
	zt_h2_stream_end(held[0], NULL, 0);
	RUN_UNTIL(loop, a->ended && a->bytes == 5, 3000);
	zt_h2_stream_end(sa, NULL, 0);
	RUN_UNTIL(loop, cli == NULL && srv == NULL, 3000);
	ck_assert(a->closed);
	ck_assert_uint_eq(a->code, 0);
	ck_assert_str_eq(cli_reason, "connection drained");
}
END_TEST

START_TEST(server_shutdown_still_serves_a_request_already_on_its_way)
{
	struct rec *a = &R[0], *b = &R[1];

	server_cbs.on_request = hold;
	nheld = 0;
	start_pair();
	connect_req(a, "10.0.0.1:1");
	RUN_UNTIL(loop, nheld == 1 && a->status == 200, 5000);
	/* The client sends before it can have seen the shutdown: the notice (largest stream
	 * id) lets the server take it; the final GOAWAY follows ZT_H2_GOAWAY_GRACE_MS later. */
	zt_h2_conn_shutdown(srv);
	connect_req(b, "10.0.0.1:2");
	RUN_UNTIL(loop, nheld == 2 && b->status == 200, 5000);
	ck_assert(!b->closed);
	ck_assert(!zt_h2_conn_can_open(cli));
}
END_TEST

START_TEST(peer_that_stops_answering_pings_is_dropped)
{
	int sv[2];
	struct zt_sock a;

	cset.ping_interval_ms = 20;
	cset.ping_timeout_ms = 60;
	/* The other end is a silent socket: no SETTINGS, no PING ACK. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_int_eq(zt_sock_start(&a, loop, sv[0], NULL, NULL, NULL), 0);
	ck_assert_int_eq(zt_h2_conn_new(&cli, loop, &a, false, &cset, &client_cbs, NULL), 0);
	RUN_UNTIL(loop, cli == NULL, 3000);
	ck_assert_str_eq(cli_reason, "ping timeout");
	close(sv[1]);
}
END_TEST

START_TEST(garbage_instead_of_a_preface_closes_the_connection)
{
	int sv[2];
	struct zt_sock b;
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_int_eq(zt_sock_start(&b, loop, sv[1], NULL, NULL, NULL), 0);
	ck_assert_int_eq(zt_h2_conn_new(&srv, loop, &b, true, &sset, &server_cbs, NULL), 0);
	ck_assert_int_eq(write(sv[0], junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
	RUN_UNTIL(loop, srv == NULL, 3000);
	close(sv[0]);
}
END_TEST

static size_t unconsumed_bytes;

static void keep_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)st;
	(void)p;
	(void)arg;
	unconsumed_bytes += len;
}

static void hold_unconsumed(struct zt_h2_conn *c, struct zt_h2_stream *st,
			    const struct zt_h2_header *h, size_t n, bool end, void *arg)
{
	static const struct zt_h2_stream_cbs cbs = {.on_data = keep_data};

	hold(c, st, h, n, end, arg);
	zt_h2_stream_set_cbs(st, &cbs, NULL);
}

START_TEST(receive_window_is_only_reopened_by_consume)
{
	/* The server never consumes: the client can send exactly one stream window. */
	static uint8_t chunk[65536];
	struct rec *r = &R[0];
	struct zt_h2_stream *st;
	size_t sent = 0;

	sset.stream_window = 65535 * 2;
	server_cbs.on_request = hold_unconsumed;
	nheld = 0;
	start_pair();
	st = connect_req(r, "10.0.0.1:1");
	RUN_UNTIL(loop, r->status == 200, 3000);
	for (int i = 0; i < 200; i++) {
		ssize_t n = zt_h2_stream_write(st, chunk, sizeof(chunk));
		if (n > 0)
			sent += (size_t)n;
		zt_loop_run_once(loop, 5);
	}
	ck_assert_uint_gt(sent, sset.stream_window);
	/* Whatever could not go out is still queued on our side, bounded by the send buffer. */
	ck_assert_uint_eq(sent - zt_h2_stream_buffered(st), sset.stream_window);
	ck_assert_uint_le(zt_h2_stream_buffered(st), cset.stream_send_buffer);
	ck_assert_uint_eq(unconsumed_bytes, sset.stream_window);
	/* Consuming on the receiving side lets the rest through. */
	zt_h2_stream_consume(held[0], unconsumed_bytes);
	RUN_UNTIL(loop, unconsumed_bytes > sset.stream_window, 3000);
}
END_TEST


/* ---- zero-copy bodies: zt_h2_stream_reserve / commit ---- */

/* Sends total bytes of a pattern (byte i is i % 251) through reserve/commit, committing less
 * than reserved now and then, and ends the stream; on_writable drives it. */
struct sender {
	size_t total, sent, refused, writable_calls;
	bool ended;
};

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i % 251);
}

static void sender_fill(struct zt_h2_stream *st, struct sender *s)
{
	while (s->sent < s->total) {
		size_t want = s->total - s->sent < 70000 ? s->total - s->sent : 70000;
		uint8_t *p = NULL;
		ssize_t n = zt_h2_stream_reserve(st, want, &p);
		ck_assert_int_ge(n, 0);
		if (n == 0) {
			s->refused++;
			return;
		}
		ck_assert_uint_le((size_t)n, want);
		size_t k = (s->sent / 7) % 3 == 0 && n > 1 ? (size_t)n / 2 : (size_t)n;
		for (size_t i = 0; i < k; i++)
			p[i] = pattern(s->sent + i);
		zt_h2_stream_commit(st, k);
		s->sent += k;
	}
	if (!s->ended) {
		s->ended = true;
		ck_assert_int_eq(zt_h2_stream_end(st, NULL, 0), 0);
	}
}

static void sender_writable(struct zt_h2_stream *st, void *arg)
{
	struct sender *s = arg;

	s->writable_calls++;
	sender_fill(st, s);
}

static void sender_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	(void)st;
	(void)arg;
	R[3].closed = true;
	R[3].code = code;
}

static void sender_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n,
			   bool end, void *arg)
{
	(void)arg;
	r_headers(st, h, n, end, &R[3]);
}

static const struct zt_h2_stream_cbs sender_cbs = {
	.on_headers = sender_headers, .on_writable = sender_writable, .on_close = sender_close};

/* The server side checks the pattern and consumes only while told to. */
static struct {
	size_t got, unconsumed;
	bool consume, ended, bad;
} rx;

static void rx_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern(rx.got + i))
			rx.bad = true;
	rx.got += len;
	if (rx.consume)
		zt_h2_stream_consume(st, len);
	else
		rx.unconsumed += len;
}

static void rx_end(struct zt_h2_stream *st, void *arg)
{
	(void)st;
	(void)arg;
	rx.ended = true;
}

static void rx_request(struct zt_h2_conn *c, struct zt_h2_stream *st, const struct zt_h2_header *h,
		       size_t n, bool end, void *arg)
{
	static const struct zt_h2_stream_cbs cbs = {.on_data = rx_data, .on_end = rx_end};

	hold(c, st, h, n, end, arg);
	zt_h2_stream_set_cbs(st, &cbs, NULL);
}

static struct zt_h2_stream *sender_req(struct sender *s)
{
	struct zt_h2_header h[] = {ZT_H2_HDR(":method", "CONNECT"),
				   ZT_H2_HDR(":authority", "10.0.0.1:1")};
	int err = 0;
	struct zt_h2_stream *st = zt_h2_request(cli, h, 2, false, &sender_cbs, s, &err);

	ck_assert_ptr_nonnull(st);
	return st;
}

START_TEST(reserved_bytes_go_out_framed_in_order_and_reserve_waits_for_an_empty_buffer)
{
	static struct sender s = {.total = 5u << 20};
	struct zt_h2_stream *st;
	uint8_t *p;

	s = (struct sender){.total = 5u << 20};
	memset(&rx, 0, sizeof(rx));
	rx.consume = true;
	server_cbs.on_request = rx_request;
	nheld = 0;
	start_pair();
	st = sender_req(&s);
	/* Room after queued bytes is offered in place; once it runs out, none until the buffer
	 * is empty, and then on_writable says so. */
	ck_assert_int_eq(zt_h2_stream_reserve(st, 1000, &p), 1000);
	for (int i = 0; i < 400; i++)
		p[i] = pattern((size_t)i);
	zt_h2_stream_commit(st, 400);
	ck_assert_int_eq(zt_h2_stream_reserve(st, 2000, &p), 1024 - 400);
	for (int i = 0; i < 1024 - 400; i++)
		p[i] = pattern((size_t)(400 + i));
	zt_h2_stream_commit(st, 1024 - 400);
	s.sent = 1024;
	ck_assert_int_eq(zt_h2_stream_reserve(st, 100, &p), 0);
	ck_assert_uint_eq(zt_h2_stream_buffered(st), 1024);
	RUN_UNTIL(loop, s.writable_calls > 0, 3000);
	RUN_UNTIL(loop, rx.ended, 10000);
	ck_assert(!rx.bad);
	ck_assert_uint_eq(rx.got, s.total);
	ck_assert_uint_gt(s.refused, 0);
	/* Ended: no more room. */
	ck_assert_int_eq(zt_h2_stream_reserve(st, 1, &p), ZT_E_STATE);
}
END_TEST

START_TEST(reserved_bytes_wait_out_a_closed_window_and_flow_once_it_reopens)
{
	static struct sender s;
	struct zt_h2_stream *st;

	s = (struct sender){.total = 1u << 20};
	memset(&rx, 0, sizeof(rx));
	sset.stream_window = 65535;
	server_cbs.on_request = rx_request;
	nheld = 0;
	start_pair();
	st = sender_req(&s);
	sender_fill(st, &s);
	/* The receiver consumes nothing: exactly one window arrives, the rest waits queued. */
	RUN_UNTIL(loop, rx.got == sset.stream_window, 3000);
	for (int i = 0; i < 20; i++)
		zt_loop_run_once(loop, 5);
	ck_assert_uint_eq(rx.got, sset.stream_window);
	ck_assert_uint_gt(zt_h2_stream_buffered(st), 0);
	ck_assert(!rx.ended);
	rx.consume = true;
	ck_assert_int_eq(nheld, 1);
	zt_h2_stream_consume(held[0], rx.unconsumed);
	RUN_UNTIL(loop, rx.ended, 10000);
	ck_assert(!rx.bad);
	ck_assert_uint_eq(rx.got, s.total);
}
END_TEST

/* A TLS pair on a socketpair with small kernel buffers, so TLS writes block part way. */
static struct fx_ca tls_ca;
static struct zt_tls_server *tls_srv;
static struct zt_tls_client *tls_cli;
static int hs_done, hs_err;

static bool hs_write_hello; /* the client writes at once when its handshake is done */

static void on_hs(struct zt_sock *s, int err, void *arg)
{
	hs_done++;
	if (err)
		hs_err = err;
	if (!err && hs_write_hello && arg == (void *)&hs_write_hello)
		ck_assert_int_eq(zt_sock_write(s, "hello", 5), 5);
}

static void tls_socks(struct zt_sock *a, struct zt_sock *b)
{
	struct zt_tls_identity *sid, *cid;
	struct zt_tls_conn *tc, *ts;
	struct zt_spiffe want;
	const char *suri = "spiffe://td/ns/a/sa/srv";
	int sv[2], small = 4096;

	fx_ca_init(&tls_ca, "h2 test root", NULL);
	sid = fx_identity(&tls_ca, suri);
	cid = fx_identity(&tls_ca, "spiffe://td/ns/a/sa/cli");
	ck_assert_int_eq(zt_spiffe_parse(&want, suri, strlen(suri)), 0);
	ck_assert_int_eq(zt_tls_server_new(&tls_srv, sid, NULL), 0);
	ck_assert_int_eq(zt_tls_client_new(&tls_cli, NULL), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	ck_assert_int_eq(zt_tls_conn_client_new(&tc, tls_cli, sv[0], cid, &want, 1), 0);
	ck_assert_int_eq(zt_tls_conn_server_new(&ts, tls_srv, sv[1]), 0);
	zt_tls_identity_unref(sid);
	zt_tls_identity_unref(cid);
	ck_assert_int_eq(zt_sock_start(a, loop, sv[0], tc, NULL, NULL), 0);
	ck_assert_int_eq(zt_sock_start(b, loop, sv[1], ts, NULL, NULL), 0);
	hs_done = hs_err = 0;
	zt_sock_handshake(a, on_hs, &hs_write_hello);
	zt_sock_handshake(b, on_hs, NULL);
	RUN_UNTIL(loop, hs_done == 2, 5000);
	ck_assert_int_eq(hs_err, 0);
}

static void tls_teardown(void)
{
	teardown();
	hs_write_hello = false;
	zt_tls_server_free(tls_srv);
	zt_tls_client_unref(tls_cli);
	fx_ca_clear(&tls_ca);
	tls_srv = NULL;
	tls_cli = NULL;
}

START_TEST(tls_peer_that_stops_reading_gets_every_byte_once_it_reads_again)
{
	static struct sender s;
	struct zt_sock a, b;
	struct zt_h2_stream *st;

	s = (struct sender){.total = 3u << 20};
	memset(&rx, 0, sizeof(rx));
	rx.consume = true;
	server_cbs.on_request = rx_request;
	nheld = 0;
	tls_socks(&a, &b);
	/* Only the client speaks HTTP/2 at first: the server reads nothing, so the client's TLS
	 * writes stop part way (-EAGAIN) with frames half written. */
	ck_assert_int_eq(zt_h2_conn_new(&cli, loop, &a, false, &cset, &client_cbs, NULL), 0);
	st = sender_req(&s);
	sender_fill(st, &s);
	for (int i = 0; i < 50; i++)
		zt_loop_run_once(loop, 2);
	ck_assert_uint_eq(rx.got, 0);
	ck_assert_int_eq(zt_h2_conn_new(&srv, loop, &b, true, &sset, &server_cbs, NULL), 0);
	RUN_UNTIL(loop, rx.ended, 20000);
	ck_assert(!rx.bad);
	ck_assert_uint_eq(rx.got, s.total);
	RUN_UNTIL(loop, R[3].status == 200, 3000);
}
END_TEST

static unsigned hello_events;

static void hello_cb(struct zt_sock *s, unsigned events, void *arg)
{
	(void)s;
	(void)arg;
	hello_events |= events;
}

START_TEST(tls_bytes_read_ahead_with_the_handshake_are_reported_readable)
{
	struct zt_sock a, b;
	char buf[16];

	hs_write_hello = true;
	hello_events = 0;
	tls_socks(&a, &b);
	/* The server's last handshake read took the client's first record along: the socket
	 * has nothing left to announce, the TLS layer holds it. */
	ck_assert(zt_sock_pending(&b));
	zt_sock_set_cb(&b, hello_cb, NULL);
	zt_sock_want(&b, ZT_IO_READ);
	RUN_UNTIL(loop, hello_events & ZT_IO_READ, 3000);
	ck_assert_int_eq(zt_sock_read(&b, buf, sizeof(buf)), 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	ck_assert_int_eq(zt_sock_read(&b, buf, sizeof(buf)), -EAGAIN);
	zt_sock_close(&a);
	zt_sock_close(&b);
}
END_TEST

/* ---- gRPC ---- */

static int g_code;
static char g_msg[128];
static bool g_done_seen;
static size_t g_msgs;

static void g_on_message(struct zt_grpc_call *c, const uint8_t *p, size_t len, void *arg)
{
	(void)c;
	(void)p;
	(void)len;
	(void)arg;
	g_msgs++;
}

static void g_on_done(struct zt_grpc_call *c, int code, const char *msg, void *arg)
{
	(void)c;
	(void)arg;
	g_code = code;
	snprintf(g_msg, sizeof(g_msg), "%s", msg);
	g_done_seen = true;
}

static const struct zt_grpc_call_cbs g_cbs = {.on_message = g_on_message, .on_done = g_on_done};

static void silent_handler(struct zt_grpc_call *call, void *arg)
{
	(void)call;
	(void)arg; /* never answers */
}

static void big_handler(struct zt_grpc_call *call, void *arg)
{
	static uint8_t big[4096];

	(void)arg;
	zt_grpc_call_send(call, big, sizeof(big));
	zt_grpc_call_finish(call, ZT_GRPC_OK, NULL);
}

static const struct zt_grpc_method g_methods[] = {{"/t.S/Silent", silent_handler, NULL},
						  {"/t.S/Big", big_handler, NULL}};
static struct zt_grpc_server g_srv = {g_methods, 2, 1 << 20};

static void start_grpc_pair(void)
{
	server_cbs.on_request = zt_grpc_server_on_request;
	server_arg = &g_srv;
	start_pair();
}

static struct zt_grpc_call *call(const char *path, uint64_t deadline, size_t max_msg)
{
	int err;
	struct zt_grpc_call *c;

	g_done_seen = false;
	g_msgs = 0;
	c = zt_grpc_call_start(cli, "x", path, NULL, 0, deadline, max_msg, &g_cbs, NULL, &err);
	ck_assert_ptr_nonnull(c);
	return c;
}

START_TEST(grpc_call_past_its_deadline_ends_deadline_exceeded)
{
	struct zt_grpc_call *c;

	start_grpc_pair();
	c = call("/t.S/Silent", 50, 1024);
	zt_grpc_call_close_send(c);
	RUN_UNTIL(loop, g_done_seen, 3000);
	ck_assert_int_eq(g_code, ZT_GRPC_DEADLINE_EXCEEDED);
}
END_TEST

START_TEST(grpc_message_over_the_limit_ends_resource_exhausted)
{
	struct zt_grpc_call *c;

	start_grpc_pair();
	c = call("/t.S/Big", 0, 1000);
	zt_grpc_call_close_send(c);
	RUN_UNTIL(loop, g_done_seen, 3000);
	ck_assert_int_eq(g_code, ZT_GRPC_RESOURCE_EXHAUSTED);
	ck_assert_uint_eq(g_msgs, 0);
}
END_TEST

START_TEST(grpc_unknown_method_is_unimplemented_and_known_one_succeeds)
{
	struct zt_grpc_call *c;

	start_grpc_pair();
	c = call("/t.S/Nope", 0, 1 << 20);
	zt_grpc_call_close_send(c);
	RUN_UNTIL(loop, g_done_seen, 3000);
	ck_assert_int_eq(g_code, ZT_GRPC_UNIMPLEMENTED);
	c = call("/t.S/Big", 0, 1 << 20);
	zt_grpc_call_close_send(c);
	RUN_UNTIL(loop, g_done_seen, 3000);
	ck_assert_int_eq(g_code, ZT_GRPC_OK);
	ck_assert_uint_eq(g_msgs, 1);
}
END_TEST

START_TEST(grpc_calls_end_unavailable_or_cancelled_when_the_connection_drops)
{
	start_grpc_pair();
	call("/t.S/Silent", 0, 1024);
	RUN_UNTIL(loop, zt_h2_conn_streams(srv) == 1, 3000);
	zt_h2_conn_close(srv, "gone");
	RUN_UNTIL(loop, g_done_seen, 3000);
	ck_assert(g_code == ZT_GRPC_UNAVAILABLE || g_code == ZT_GRPC_CANCELLED);
}
END_TEST

START_TEST(grpc_call_still_sending_ends_when_the_server_finishes)
{
	start_grpc_pair();
	/* A bidi-style call that never half-closes: the server's status alone ends it. */
	call("/t.S/Big", 0, 1 << 20);
	RUN_UNTIL(loop, g_done_seen, 3000);
	ck_assert_int_eq(g_code, ZT_GRPC_OK);
	ck_assert_uint_eq(g_msgs, 1);
	RUN_UNTIL(loop, zt_h2_conn_streams(cli) == 0 && zt_h2_conn_streams(srv) == 0, 3000);
}
END_TEST

Suite *h2_suite(void);
Suite *h2_suite(void)
{
	Suite *s = suite_create("h2");
	TCase *tc = tcase_create("h2"), *g = tcase_create("grpc_calls");
	TCase *t = tcase_create("tls");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, oversized_request_headers_get_431_and_the_connection_survives);
	tcase_add_test(tc, server_stream_limit_is_announced_and_respected);
	tcase_add_test(tc, peer_settings_are_reported_with_their_values_in_effect);
	tcase_add_test(tc, reset_stream_ends_only_that_stream);
	tcase_add_test(tc, graceful_shutdown_lets_open_streams_finish_then_closes);
	tcase_add_test(tc, server_shutdown_still_serves_a_request_already_on_its_way);
	tcase_add_test(tc, peer_that_stops_answering_pings_is_dropped);
	tcase_add_test(tc, garbage_instead_of_a_preface_closes_the_connection);
	tcase_add_test(tc, receive_window_is_only_reopened_by_consume);
	tcase_add_test(tc, reserved_bytes_go_out_framed_in_order_and_reserve_waits_for_an_empty_buffer);
	tcase_add_test(tc, reserved_bytes_wait_out_a_closed_window_and_flow_once_it_reopens);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(t, setup, tls_teardown);
	tcase_add_test(t, tls_peer_that_stops_reading_gets_every_byte_once_it_reads_again);
	tcase_add_test(t, tls_bytes_read_ahead_with_the_handshake_are_reported_readable);
	suite_add_tcase(s, t);
	tcase_add_checked_fixture(g, setup, teardown);
	tcase_add_test(g, grpc_call_past_its_deadline_ends_deadline_exceeded);
	tcase_add_test(g, grpc_message_over_the_limit_ends_resource_exhausted);
	tcase_add_test(g, grpc_unknown_method_is_unimplemented_and_known_one_succeeds);
	tcase_add_test(g, grpc_calls_end_unavailable_or_cancelled_when_the_connection_drops);
	tcase_add_test(g, grpc_call_still_sending_ends_when_the_server_finishes);
	suite_add_tcase(s, g);
	return s;
}
