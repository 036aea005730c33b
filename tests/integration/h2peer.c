/* h2peer: the HTTP/2 + mTLS + gRPC peer used by the protocol integration tests. One binary,
 * several roles, all on the project's own loop, TLS, HTTP/2 and gRPC code:
 *   h2peer serve ADDR DIR NAME                   CONNECT echo server + gRPC test.Echo service
 *   h2peer connect ADDR DIR NAME EXPECT BYTES    CONNECT, send BYTES, half-close, verify echo
 *   h2peer unary ADDR DIR NAME EXPECT            one gRPC unary call
 *   h2peer stream ADDR DIR NAME EXPECT COUNT     gRPC bidi stream of COUNT messages
 * DIR holds root-cert.pem and NAME-cert.pem / NAME-key.pem (scripts/certs.sh). EXPECT is the
 * SPIFFE ID the server must prove. Exit status 0 only when everything was verified.
 * The server answers a CONNECT that fails the HBONE checks of spec §2.5 (authority syntax,
 * authority IP other than the address it was reached on, one of ztunnel's own ports) with
 * that status, e.g. 400 or 503, instead of echoing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/grpc.h"
#include "protocol/h2.h"
#include "protocol/sock.h"
#include "protocol/spiffe.h"
#include "protocol/tls.h"
#include "hbone/hbone.h"
#include "runtime/addr.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/loop.h"

static struct zt_loop *loop;
static struct zt_tls_identity *ident;
static int result = 1;

static void die(const char *what, int err)
{
	fprintf(stderr, "h2peer: %s: %s\n", what, zt_strerror(err));
	exit(1);
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "h2peer: cannot open %s\n", path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		exit(1);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void load_identity(const char *dir, const char *name)
{
	char certf[256], keyf[256];
	size_t cl, kl, rl;
	char *cert, *key, *roots;
	int err;

	snprintf(certf, sizeof(certf), "%s-cert.pem", name);
	snprintf(keyf, sizeof(keyf), "%s-key.pem", name);
	cert = slurp(dir, certf, &cl);
	key = slurp(dir, keyf, &kl);
	roots = slurp(dir, "root-cert.pem", &rl);
	err = zt_tls_identity_new(&ident, cert, cl, key, kl, roots, rl);
	free(cert);
	free(key);
	free(roots);
	if (err < 0)
		die("identity", err);
}

static void parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct zt_sockaddr a;

	if (zt_addr_parse(&a, s, strlen(s), ZT_ADDR_PORT0_OK) < 0) {
		fprintf(stderr, "h2peer: bad address %s\n", s);
		exit(2);
	}
	*sl = zt_addr_to_sockaddr(&a, ss);
}

/* ---- server ------------------------------------------------------------------------------ */

struct echo {
	struct zt_h2_stream *st;
	struct zt_buf pending; /* received, not yet accepted by our send side */
	bool peer_ended;
};

static void echo_pump(struct echo *e)
{
	while (zt_buf_len(&e->pending)) {
		ssize_t n = zt_h2_stream_write(e->st, zt_buf_data(&e->pending),
					       zt_buf_len(&e->pending));
		if (n <= 0)
			return;
		zt_buf_consume(&e->pending, (size_t)n);
		zt_h2_stream_consume(e->st, (size_t)n);
	}
	if (e->peer_ended) {
		e->peer_ended = false;
		zt_h2_stream_end(e->st, NULL, 0);
	}
}

static void echo_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct echo *e = arg;

	(void)st;
	if (zt_buf_append(&e->pending, p, len) < 0)
		abort();
	echo_pump(e);
}

static void echo_end(struct zt_h2_stream *st, void *arg)
{
	struct echo *e = arg;

	(void)st;
	e->peer_ended = true;
	echo_pump(e);
}

static void echo_writable(struct zt_h2_stream *st, void *arg)
{
	(void)st;
	echo_pump(arg);
}

static void echo_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	struct echo *e = arg;

	(void)st;
	(void)code;
	zt_buf_clear(&e->pending);
	free(e);
}

static const struct zt_h2_stream_cbs echo_cbs = {
	.on_data = echo_data,
	.on_end = echo_end,
	.on_writable = echo_writable,
	.on_close = echo_close,
};

static void unary_msg(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	zt_grpc_call_send(call, p, len);
	zt_grpc_call_finish(call, ZT_GRPC_OK, NULL);
}

static void stream_msg(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	zt_grpc_call_send(call, p, len);
}

static void stream_half_close(struct zt_grpc_call *call, void *arg)
{
	(void)arg;
	zt_grpc_call_finish(call, ZT_GRPC_OK, "bye");
}

static void on_unary(struct zt_grpc_call *call, void *arg)
{
	static const struct zt_grpc_call_cbs cbs = {.on_message = unary_msg};
	const char *auth = zt_grpc_call_md(call, "authorization");

	(void)arg;
	if (!auth || strcmp(auth, "Bearer test-token") != 0) {
		zt_grpc_call_finish(call, ZT_GRPC_UNAUTHENTICATED, "missing bearer token");
		return;
	}
	zt_grpc_call_set_cbs(call, &cbs, NULL);
}

static void on_stream(struct zt_grpc_call *call, void *arg)
{
	static const struct zt_grpc_call_cbs cbs = {.on_message = stream_msg,
						    .on_half_close = stream_half_close};
	(void)arg;
	zt_grpc_call_set_cbs(call, &cbs, NULL);
}

static const struct zt_grpc_method methods[] = {
	{"/test.Echo/Unary", on_unary, NULL},
	{"/test.Echo/Stream", on_stream, NULL},
};
static const struct zt_grpc_server grpc_srv = {methods, 2, 16u << 20};

static void on_request(struct zt_h2_conn *c, struct zt_h2_stream *st, const struct zt_h2_header *h,
		       size_t n, bool end, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		if (h[i].name_len == 7 && memcmp(h[i].name, ":method", 7) == 0 &&
		    h[i].value_len == 7 && memcmp(h[i].value, "CONNECT", 7) == 0) {
			struct zt_hbone_inbound in;
			struct zt_hbone_status hs;
			/* The HBONE server checks (spec §2.5) against our own address. */
			if (zt_hbone_validate(&in, h, n, zt_h2_conn_arg(c), 0, &hs) != 200) {
				fprintf(stderr, "h2peer: refused CONNECT: %d %s\n", hs.code,
					hs.reason);
				zt_h2_stream_respond(st, hs.code, NULL, 0, true);
				return;
			}
			struct echo *e = calloc(1, sizeof(*e));
			e->st = st;
			zt_buf_init(&e->pending, 0);
			zt_h2_stream_set_cbs(st, &echo_cbs, e);
			zt_h2_stream_respond(st, 200, NULL, 0, false);
			return;
		}
	}
	zt_grpc_server_on_request(c, st, h, n, end, (void *)&grpc_srv);
	(void)arg;
}

static void on_server_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)c;
	(void)reason;
	free(arg);
}

static const struct zt_h2_conn_cbs server_cbs = {.on_request = on_request,
						 .on_close = on_server_close};

static void on_server_handshake(struct zt_sock *s, int err, void *arg)
{
	struct zt_h2_settings set;
	struct zt_h2_conn *c;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct zt_sockaddr local;
	struct zt_ip *dst;

	(void)arg;
	if (err < 0) {
		fprintf(stderr, "h2peer: server handshake failed: %s (%s)\n", zt_strerror(err),
			zt_sock_error(s));
		zt_sock_close(s);
		free(s);
		return;
	}
	/* The connection's destination IP, for the CONNECT authority check. */
	dst = calloc(1, sizeof(*dst));
	if (getsockname(s->fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    zt_addr_from_sockaddr(&local, (struct sockaddr *)&ss, sl) == 0)
		*dst = local.ip;
	zt_h2_settings_default(&set, true);
	set.ping_interval_ms = 0;
	if (zt_h2_conn_new(&c, loop, s, true, &set, &server_cbs, dst) < 0)
		free(dst);
	free(s);
}

static struct zt_tls_server *tls_srv;

static void on_accept(struct zt_io *io, unsigned events, void *arg)
{
	(void)events;
	(void)arg;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct zt_tls_conn *tc;
		struct zt_sock *s;
		int one = 1;

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (zt_tls_conn_server_new(&tc, tls_srv, fd) < 0) {
			close(fd);
			continue;
		}
		s = calloc(1, sizeof(*s));
		zt_sock_start(s, loop, fd, tc, NULL, NULL);
		zt_sock_handshake(s, on_server_handshake, NULL);
	}
}

static int serve(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct zt_io lio;
	int fd, one = 1, err;

	parse_addr(addr, &ss, &sl);
	err = zt_tls_server_new(&tls_srv, ident, NULL);
	if (err < 0)
		die("tls server", err);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0)
		die("listen", -errno);
	zt_io_start(loop, &lio, fd, ZT_IO_READ, on_accept, NULL);
	{
		/* Port 0 picks a free one: print the real address for the test scripts. */
		struct sockaddr_storage bound;
		socklen_t bl = sizeof(bound);
		struct zt_sockaddr a;
		char text[ZT_ADDR_STRLEN];

		getsockname(fd, (struct sockaddr *)&bound, &bl);
		zt_addr_from_sockaddr(&a, (struct sockaddr *)&bound, bl);
		zt_addr_format(&a, text, sizeof(text));
		printf("listening %s\n", text);
	}
	fflush(stdout);
	return zt_loop_run(loop);
}

/* ---- clients ----------------------------------------------------------------------------- */

static struct zt_tls_client *tls_cli;
static const char *target;
static struct zt_spiffe expect;
static void (*after_connect)(struct zt_h2_conn *c);

static void on_client_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)c;
	(void)arg;
	(void)reason;
	zt_loop_stop(loop);
}

static const struct zt_h2_conn_cbs client_cbs = {.on_close = on_client_close};

static void on_client_handshake(struct zt_sock *s, int err, void *arg)
{
	struct zt_h2_settings set;
	struct zt_h2_conn *c;
	char peer[256] = "";

	(void)arg;
	if (err < 0) {
		fprintf(stderr, "h2peer: client handshake failed: %s (%s)\n", zt_strerror(err),
			zt_sock_error(s));
		zt_sock_close(s);
		zt_loop_stop(loop);
		return;
	}
	zt_spiffe_format(zt_tls_conn_peer(s->tls), peer, sizeof(peer));
	fprintf(stderr, "h2peer: server identity %s, alpn %s\n", peer, zt_tls_conn_alpn(s->tls));
	zt_h2_settings_default(&set, false);
	if (zt_h2_conn_new(&c, loop, s, false, &set, &client_cbs, NULL) < 0)
		die("h2", ZT_E_STATE);
	after_connect(c);
}

static struct zt_sock csock;

static void dial(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct zt_tls_conn *tc;
	int fd, err, one = 1;

	parse_addr(addr, &ss, &sl);
	err = zt_tls_client_new(&tls_cli, NULL);
	if (err < 0)
		die("tls client", err);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
		die("connect", -errno);
	err = zt_tls_conn_client_new(&tc, tls_cli, fd, ident, &expect, 1);
	if (err < 0)
		die("tls conn", err);
	zt_sock_start(&csock, loop, fd, tc, NULL, NULL);
	zt_sock_handshake(&csock, on_client_handshake, NULL);
}

/* CONNECT echo: send `total` bytes of a counting pattern, half-close, expect them back. */
static uint64_t total, sent, recvd;
static bool got_200, got_end, bad_data;
static struct zt_h2_stream *tunnel;

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 13));
}

static void tun_fill(struct zt_h2_stream *st)
{
	uint8_t buf[64 * 1024];

	while (sent < total) {
		size_t n = total - sent < sizeof(buf) ? (size_t)(total - sent) : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(sent + i);
		ssize_t w = zt_h2_stream_write(st, buf, n);
		if (w <= 0)
			return;
		sent += (uint64_t)w;
	}
	if (sent == total) {
		sent++; /* end once */
		zt_h2_stream_end(st, NULL, 0);
	}
}

static void tun_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n, bool end,
			void *arg)
{
	(void)arg;
	(void)end;
	for (size_t i = 0; i < n; i++)
		if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0) {
			fprintf(stderr, "h2peer: CONNECT status %.*s\n", (int)h[i].value_len,
				h[i].value);
			got_200 = h[i].value_len == 3 && memcmp(h[i].value, "200", 3) == 0;
		}
	if (got_200)
		tun_fill(st);
	else
		zt_h2_stream_reset(st, 8);
}

static void tun_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern(recvd + i))
			bad_data = true;
	recvd += len;
	zt_h2_stream_consume(st, len);
}

static void tun_end(struct zt_h2_stream *st, void *arg)
{
	(void)st;
	(void)arg;
	got_end = true;
}

static void tun_writable(struct zt_h2_stream *st, void *arg)
{
	(void)arg;
	tun_fill(st);
}

static void tun_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	(void)arg;
	tunnel = NULL;
	if (got_200 && got_end && !bad_data && recvd == total && code == 0)
		result = 0;
	fprintf(stderr, "h2peer: tunnel closed code=%u sent=%llu echoed=%llu intact=%s\n", code,
		(unsigned long long)total, (unsigned long long)recvd, bad_data ? "no" : "yes");
	zt_h2_conn_shutdown(zt_h2_stream_conn(st));
}

static void start_tunnel(struct zt_h2_conn *c)
{
	static const struct zt_h2_stream_cbs cbs = {.on_headers = tun_headers,
						    .on_data = tun_data,
						    .on_end = tun_end,
						    .on_writable = tun_writable,
						    .on_close = tun_close};
	struct zt_h2_header h[] = {ZT_H2_HDR(":method", "CONNECT"),
				   {":authority", 10, target, strlen(target)}};
	int err;

	tunnel = zt_h2_request(c, h, 2, false, &cbs, NULL, &err);
	if (!tunnel)
		die("CONNECT", err);
}

/* gRPC: unary, or a bidi stream of `count` numbered messages echoed in order. */
static uint64_t count, next_rx;
static struct zt_grpc_call *gcall;

static void g_message(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	char want[32];
	int n = snprintf(want, sizeof(want), "message %llu", (unsigned long long)next_rx);

	(void)call;
	(void)arg;
	if ((size_t)n != len || memcmp(p, want, len) != 0)
		bad_data = true;
	next_rx++;
}

static void g_done(struct zt_grpc_call *call, int code, const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "h2peer: grpc status %d (%s) \"%s\" messages=%llu/%llu\n", code,
		zt_grpc_code_name(code), msg, (unsigned long long)next_rx,
		(unsigned long long)count);
	if (code == 0 && next_rx == count && !bad_data)
		result = 0;
	(void)call;
}

static uint64_t g_sent;

static void g_pump(struct zt_grpc_call *call, void *arg)
{
	char msg[32];

	(void)arg;
	while (g_sent < count && zt_grpc_call_writable(call)) {
		int n = snprintf(msg, sizeof(msg), "message %llu", (unsigned long long)g_sent++);
		zt_grpc_call_send(call, msg, (size_t)n);
	}
	if (g_sent == count) {
		g_sent++;
		zt_grpc_call_close_send(call);
	}
}

static struct zt_h2_conn *gconn;

static void g_done_conn(struct zt_grpc_call *call, int code, const char *msg, void *arg)
{
	g_done(call, code, msg, arg);
	zt_h2_conn_shutdown(gconn);
}

static void start_grpc(struct zt_h2_conn *c)
{
	static const struct zt_grpc_call_cbs cbs = {
		.on_message = g_message, .on_done = g_done_conn, .on_writable = g_pump};
	struct zt_grpc_md md[] = {{"authorization", "Bearer test-token"}, {"clusterid", "Kubernetes"}};
	int err;

	gconn = c;
	gcall = zt_grpc_call_start(c, "istiod.istio-system.svc:15012",
				   count == 1 ? "/test.Echo/Unary" : "/test.Echo/Stream", md, 2,
				   30000, 1u << 20, &cbs, NULL, &err);
	if (!gcall)
		die("grpc call", err);
	g_pump(gcall, NULL);
}

int main(int argc, char **argv)
{
	int err;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 5) {
		fprintf(stderr, "usage: see the comment at the top of h2peer.c\n");
		return 2;
	}
	err = zt_loop_new(&loop);
	if (err < 0)
		die("loop", err);
	load_identity(argv[3], argv[4]);
	if (strcmp(argv[1], "serve") == 0)
		return serve(argv[2]) < 0 ? 1 : 0;
	if (argc < 6 || zt_spiffe_parse(&expect, argv[5], strlen(argv[5])) < 0) {
		fprintf(stderr, "h2peer: missing or bad expected identity\n");
		return 2;
	}
	target = argv[2];
	if (strcmp(argv[1], "connect") == 0 && argc >= 7) {
		total = strtoull(argv[6], NULL, 10);
		after_connect = start_tunnel;
	} else if (strcmp(argv[1], "unary") == 0) {
		count = 1;
		after_connect = start_grpc;
	} else if (strcmp(argv[1], "stream") == 0 && argc >= 7) {
		count = strtoull(argv[6], NULL, 10);
		after_connect = start_grpc;
	} else {
		fprintf(stderr, "h2peer: unknown role %s\n", argv[1]);
		return 2;
	}
	dial(argv[2]);
	zt_loop_run(loop);
	/* Let the connection finish its own close path, then check nothing is left over. */
	zt_loop_run(loop);
	zt_tls_client_unref(tls_cli);
	zt_tls_identity_unref(ident);
	zt_loop_free(loop);
	if (result == 0 && (zt_h2_conn_live() || zt_h2_stream_live() || zt_grpc_call_live())) {
		fprintf(stderr, "h2peer: leaked objects: conns=%zu streams=%zu calls=%zu\n",
			zt_h2_conn_live(), zt_h2_stream_live(), zt_grpc_call_live());
		result = 1;
	}
	return result;
}
