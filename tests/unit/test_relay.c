/* Relay behaviour between two loopback TCP "applications" A (client) and B (server), either
 * through one TCP<->TCP relay, or through TCP<->h2 client stream ==HTTP/2== h2 server
 * stream<->TCP (two relays over an in-process HTTP/2 pair, like HBONE without TLS). The
 * applications send pseudo-random bytes and both ends checksum what they saw. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "loop_fixture.h"
#include "protocol/h2.h"
#include "hbone/relay.h"
#include "runtime/err.h"

#define MiB (1024u * 1024u)

static struct zt_loop *loop;

/* This binary's splice(2): the real one unless a test makes it fail with EINVAL, like a pair
 * of files that cannot splice, either reading into the pipe or writing out of it. */
static enum { SPLICE_OK, SPLICE_EINVAL_IN, SPLICE_EINVAL_OUT } splice_mode;

ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
               unsigned int flags)
{
	struct stat st;
	bool from_pipe = fstat(fd_in, &st) == 0 && S_ISFIFO(st.st_mode);

	if ((splice_mode == SPLICE_EINVAL_IN && !from_pipe) ||
	    (splice_mode == SPLICE_EINVAL_OUT && from_pipe)) {
		errno = EINVAL;
		return -1;
	}
	return syscall(SYS_splice, fd_in, off_in, fd_out, off_out, len, flags);
}

/* ---- pseudo-random byte stream and checksum ---------------------------------------------- */

struct gen {
	uint64_t s, word;
	unsigned left;
};

static void gen_init(struct gen *g, uint64_t seed)
{
	*g = (struct gen){.s = seed * 0x9E3779B97F4A7C15ull + 1};
}

static void gen_fill(struct gen *g, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!g->left) {
			g->s ^= g->s << 13;
			g->s ^= g->s >> 7;
			g->s ^= g->s << 17;
			g->word = g->s;
			g->left = 8;
		}
		p[i] = (uint8_t)g->word;
		g->word >>= 8;
		g->left--;
	}
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

/* ---- applications: a loopback TCP socket driven by the loop ------------------------------ */

struct app {
	int fd;
	struct zt_io io;
	struct gen g;
	uint8_t chunk[65536];
	size_t chunk_len, chunk_off;
	uint64_t to_send, generated, sent, tx_sum;
	bool shut_after, shut_done;
	int tx_err;
	bool paused;
	uint64_t received, rx_sum;
	bool eof;
	int rx_err;
};

static struct app A, B;

static void app_io(struct zt_io *io, unsigned events, void *arg);

static void app_update(struct app *a)
{
	unsigned ev = 0;

	if (a->fd < 0)
		return;
	if (a->sent == a->to_send && a->shut_after && !a->shut_done && !a->tx_err) {
		shutdown(a->fd, SHUT_WR);
		a->shut_done = true;
	}
	if (!a->paused && !a->eof && !a->rx_err)
		ev |= ZT_IO_READ;
	if (a->sent < a->to_send && !a->tx_err)
		ev |= ZT_IO_WRITE;
	if (!ev)
		zt_io_stop(&a->io);
	else if (!a->io.active)
		ck_assert_int_eq(zt_io_start(loop, &a->io, a->fd, ev, app_io, a), 0);
	else
		zt_io_set(&a->io, ev);
}

static void app_read(struct app *a)
{
	uint8_t buf[65536];

	for (int i = 0; i < 64 && !a->paused; i++) {
		ssize_t n = recv(a->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			a->received += (uint64_t)n;
			a->rx_sum = fnv(a->rx_sum, buf, (size_t)n);
			continue;
		}
		if (n == 0)
			a->eof = true;
		else if (errno != EAGAIN && errno != EINTR)
			a->rx_err = errno;
		return;
	}
}

static void app_write(struct app *a)
{
	while (a->sent < a->to_send) {
		if (a->chunk_off == a->chunk_len) {
			uint64_t left = a->to_send - a->generated;
			a->chunk_len = left < sizeof(a->chunk) ? (size_t)left : sizeof(a->chunk);
			a->chunk_off = 0;
			gen_fill(&a->g, a->chunk, a->chunk_len);
			a->generated += a->chunk_len;
		}
		ssize_t n = send(a->fd, a->chunk + a->chunk_off, a->chunk_len - a->chunk_off,
		                 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				a->tx_err = errno;
			return;
		}
		a->tx_sum = fnv(a->tx_sum, a->chunk + a->chunk_off, (size_t)n);
		a->chunk_off += (size_t)n;
		a->sent += (uint64_t)n;
	}
}

static void app_io(struct zt_io *io, unsigned events, void *arg)
{
	struct app *a = arg;

	(void)io;
	if (events & ZT_IO_READ)
		app_read(a);
	if (events & ZT_IO_WRITE)
		app_write(a);
	app_update(a);
}

static void app_init(struct app *a, uint64_t seed)
{
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	a->tx_sum = a->rx_sum = FNV_INIT;
	gen_init(&a->g, seed);
}

static void app_start(struct app *a, int fd)
{
	a->fd = fd;
	ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	app_update(a);
}

/* Queues n more bytes; with shut, half-closes once they are sent. */
static void app_send(struct app *a, uint64_t n, bool shut)
{
	a->to_send += n;
	a->shut_after = shut;
	app_update(a);
}

static void app_pause(struct app *a, bool paused)
{
	a->paused = paused;
	app_update(a);
}

/* Closes with a TCP RST. */
static void app_reset(struct app *a)
{
	struct linger lg = {1, 0};

	zt_io_stop(&a->io);
	ck_assert_int_eq(setsockopt(a->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(a->fd);
	a->fd = -1;
}

static void app_close(struct app *a)
{
	if (a->fd < 0)
		return;
	zt_io_stop(&a->io);
	close(a->fd);
	a->fd = -1;
}

/* A connected loopback TCP pair. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*a, 0);
	ck_assert_int_eq(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(*b, 0);
	close(l);
}

/* ---- topologies -------------------------------------------------------------------------- */

enum mode { M_SPLICE, M_COPY, M_H2 };

struct done_rec {
	int count;
	struct zt_relay_result res;
};

static struct {
	struct zt_relay *r[2]; /* [0] A's side (TCP<->TCP or TCP<->client stream), [1] B's side */
	struct done_rec done[2];
	int ra, rb; /* relay-side sockets until a relay takes them */
	struct zt_h2_conn *cli, *srv;
	struct zt_h2_settings cset, sset;
	struct zt_h2_stream *cst, *sst;
	bool hold; /* the server answers 200 but keeps the stream instead of relaying */
	uint32_t held_close_code;
	bool held_closed;
} T;

static void on_done(struct zt_relay *r, const struct zt_relay_result *res, void *arg)
{
	int i = (int)(intptr_t)arg;

	ck_assert_ptr_eq(r, T.r[i]);
	T.done[i].count++;
	T.done[i].res = *res;
	T.r[i] = NULL;
}

static void on_conn_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	(void)reason;
	(void)arg;
	if (c == T.cli)
		T.cli = NULL;
	if (c == T.srv)
		T.srv = NULL;
}

static void held_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)p;
	(void)arg;
	zt_h2_stream_consume(st, len);
}

static void held_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	(void)st;
	(void)arg;
	T.held_closed = true;
	T.held_close_code = code;
	T.sst = NULL;
}

static void on_request(struct zt_h2_conn *c, struct zt_h2_stream *st, const struct zt_h2_header *h,
                       size_t n, bool end, void *arg)
{
	static const struct zt_h2_stream_cbs held_cbs = {.on_data = held_data,
	                                                 .on_close = held_close};

	(void)c;
	(void)h;
	(void)n;
	(void)end;
	(void)arg;
	T.sst = st;
	ck_assert_int_eq(zt_h2_stream_respond(st, 200, NULL, 0, false), 0);
	if (T.hold) {
		zt_h2_stream_set_cbs(st, &held_cbs, NULL);
		return;
	}
	ck_assert_int_eq(zt_relay_start(&T.r[1], loop, (struct zt_relay_end){.fd = -1, .st = st},
	                                (struct zt_relay_end){.fd = T.rb, .st = NULL}, NULL,
	                                on_done, (void *)1),
	                 0);
	T.rb = -1;
}

/* The client starts its relay from the 200 itself, so no DATA can slip past it. */
static void on_response(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n, bool end,
                        void *arg)
{
	(void)end;
	(void)arg;
	for (size_t i = 0; i < n; i++) {
		if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0) {
			ck_assert_str_eq(h[i].value, "200");
			ck_assert_int_eq(zt_relay_start(&T.r[0], loop,
			                                (struct zt_relay_end){.fd = T.ra},
			                                (struct zt_relay_end){.fd = -1, .st = st},
			                                NULL, on_done, (void *)0),
			                 0);
			T.ra = -1;
		}
	}
}

static void start_tcp(bool no_splice)
{
	struct zt_relay_opts opts = {.no_splice = no_splice};
	int a, b;

	tcp_pair(&a, &T.ra);
	tcp_pair(&T.rb, &b);
	ck_assert_int_eq(zt_relay_start(&T.r[0], loop, (struct zt_relay_end){.fd = T.ra},
	                                (struct zt_relay_end){.fd = T.rb}, &opts, on_done,
	                                (void *)0),
	                 0);
	T.ra = T.rb = -1;
	app_start(&A, a);
	app_start(&B, b);
}

static void start_h2(void)
{
	static const struct zt_h2_conn_cbs ccbs = {.on_close = on_conn_close};
	static const struct zt_h2_conn_cbs scbs = {.on_request = on_request,
	                                           .on_close = on_conn_close};
	static const struct zt_h2_stream_cbs pre = {.on_headers = on_response};
	struct zt_h2_header hdr[] = {ZT_H2_HDR(":method", "CONNECT"),
	                             ZT_H2_HDR(":authority", "127.0.0.1:8080")};
	struct zt_sock sa, sb;
	int sv[2], a, b = -1, err;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_int_eq(zt_sock_start(&sa, loop, sv[0], NULL, NULL, NULL), 0);
	ck_assert_int_eq(zt_sock_start(&sb, loop, sv[1], NULL, NULL, NULL), 0);
	ck_assert_int_eq(zt_h2_conn_new(&T.cli, loop, &sa, false, &T.cset, &ccbs, NULL), 0);
	ck_assert_int_eq(zt_h2_conn_new(&T.srv, loop, &sb, true, &T.sset, &scbs, NULL), 0);
	tcp_pair(&a, &T.ra);
	if (!T.hold)
		tcp_pair(&T.rb, &b);
	T.cst = zt_h2_request(T.cli, hdr, 2, false, &pre, NULL, &err);
	ck_assert_ptr_nonnull(T.cst);
	RUN_UNTIL(loop, T.r[0] && (T.hold || T.r[1]), 20000);
	app_start(&A, a);
	if (b >= 0)
		app_start(&B, b);
}

static void start(enum mode m)
{
	if (m == M_H2)
		start_h2();
	else
		start_tcp(m == M_COPY);
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	memset(&T, 0, sizeof(T));
	T.ra = T.rb = -1;
	splice_mode = SPLICE_OK;
	zt_h2_settings_default(&T.cset, false);
	zt_h2_settings_default(&T.sset, true);
	T.cset.ping_interval_ms = T.sset.ping_interval_ms = 0;
	app_init(&A, 1);
	app_init(&B, 2);
}

static void teardown(void)
{
	for (int i = 0; i < 2; i++)
		if (T.r[i])
			zt_relay_abort(T.r[i], "test over");
	RUN_UNTIL(loop, !T.r[0] && !T.r[1], 20000);
	app_close(&A);
	app_close(&B);
	if (T.cli)
		zt_h2_conn_close(T.cli, "test over");
	if (T.srv)
		zt_h2_conn_close(T.srv, "test over");
	RUN_UNTIL(loop, !T.cli && !T.srv, 20000);
	if (T.ra >= 0)
		close(T.ra);
	if (T.rb >= 0)
		close(T.rb);
	zt_loop_free(loop);
	ck_assert_int_eq(zt_relay_live(), 0);
	ck_assert_uint_eq(zt_h2_stream_live(), 0);
}

/* The relay that faces A (and B's, when there are two) ended once, with this error. */
static void assert_done(int i, const char *error)
{
	ck_assert_int_eq(T.done[i].count, 1);
	if (error)
		ck_assert_pstr_eq(T.done[i].res.error, error);
	else
		ck_assert_ptr_null(T.done[i].res.error);
}

static bool relays_done(enum mode m)
{
	return T.done[0].count && (m != M_H2 || T.done[1].count);
}

/* ---- transfers --------------------------------------------------------------------------- */

/* Under ThreadSanitizer (FX_SLOW) the large transfer is 8 MiB: same paths, a tenth of the time. */
static const uint64_t sizes[] = {1, 1 * MiB, 64 * MiB / FX_SLOW};

/* _i runs every (mode, size): 3 modes x 3 sizes. */
START_TEST(bytes_arrive_intact_both_ways_and_counts_are_exact)
{
	enum mode m = (enum mode)(_i / 3);
	uint64_t n = sizes[_i % 3];

	start(m);
	app_send(&A, n, true);
	app_send(&B, n + 7, true);
	RUN_UNTIL(loop, A.eof && B.eof && relays_done(m), 20000);
	ck_assert_uint_eq(B.received, n);
	ck_assert_uint_eq(B.rx_sum, A.tx_sum);
	ck_assert_uint_eq(A.received, n + 7);
	ck_assert_uint_eq(A.rx_sum, B.tx_sum);
	for (int i = 0; i < (m == M_H2 ? 2 : 1); i++) {
		assert_done(i, NULL);
		ck_assert_uint_eq(T.done[i].res.bytes_up, n);
		ck_assert_uint_eq(T.done[i].res.bytes_down, n + 7);
	}
	ck_assert_int_eq(A.rx_err, 0);
	ck_assert_int_eq(B.rx_err, 0);
}
END_TEST

/* _i: mode (splice, h2) x which side half-closes first. */
START_TEST(half_close_passes_on_while_the_other_direction_keeps_flowing)
{
	enum mode m = _i / 2 ? M_H2 : M_SPLICE;
	bool client_first = _i % 2 == 0;
	struct app *first = client_first ? &A : &B, *second = client_first ? &B : &A;

	start(m);
	app_send(first, 1000, true);
	RUN_UNTIL(loop, second->eof, 20000);
	ck_assert_uint_eq(second->received, 1000);
	/* The other direction is still open: bytes sent after the EOF arrive, then its own EOF. */
	ck_assert_int_eq(T.done[0].count, 0);
	app_send(second, 3 * MiB, false);
	RUN_UNTIL(loop, first->received == 3 * MiB, 20000);
	ck_assert(!first->eof);
	ck_assert_int_eq(T.done[0].count, 0);
	app_send(second, 5, true);
	RUN_UNTIL(loop, first->eof && relays_done(m), 20000);
	ck_assert_uint_eq(first->received, 3 * MiB + 5);
	ck_assert_uint_eq(first->rx_sum, second->tx_sum);
	for (int i = 0; i < (m == M_H2 ? 2 : 1); i++) {
		assert_done(i, NULL);
		ck_assert_uint_eq(client_first ? T.done[i].res.bytes_up : T.done[i].res.bytes_down,
		                  1000);
		ck_assert_uint_eq(client_first ? T.done[i].res.bytes_down : T.done[i].res.bytes_up,
		                  3 * MiB + 5);
	}
}
END_TEST

/* _i: splice fails reading into the pipe, or writing out of it with bytes inside. */
START_TEST(splice_einval_falls_back_to_copying_without_losing_bytes)
{
	struct zt_relay_stats st;

	start(M_SPLICE);
	app_send(&A, 100, false);
	RUN_UNTIL(loop, B.received == 100, 20000);
	zt_relay_stats(T.r[0], &st);
	ck_assert_uint_eq(st.alloc, 0); /* spliced so far */
	splice_mode = _i == 0 ? SPLICE_EINVAL_IN : SPLICE_EINVAL_OUT;
	app_send(&A, 3 * MiB, false);
	app_send(&B, 3 * MiB, false);
	RUN_UNTIL(loop, B.received == 100 + 3 * MiB && A.received == 3 * MiB, 20000);
	zt_relay_stats(T.r[0], &st);
	ck_assert_uint_gt(st.alloc, 0); /* now copying through buffers */
	app_send(&A, 0, true);
	app_send(&B, 0, true);
	RUN_UNTIL(loop, A.eof && B.eof && relays_done(M_SPLICE), 20000);
	ck_assert_uint_eq(B.rx_sum, A.tx_sum);
	ck_assert_uint_eq(A.received, 3 * MiB);
	ck_assert_uint_eq(A.rx_sum, B.tx_sum);
	assert_done(0, NULL);
	ck_assert_uint_eq(T.done[0].res.bytes_up, 100 + 3 * MiB);
	ck_assert_uint_eq(T.done[0].res.bytes_down, 3 * MiB);
}
END_TEST

/* ---- backpressure ------------------------------------------------------------------------ */

struct peak {
	size_t q[2][2]; /* [relay][up, down] */
	size_t alloc[2];
};

static void sample(struct peak *pk)
{
	for (int i = 0; i < 2; i++) {
		struct zt_relay_stats s;
		if (!T.r[i])
			continue;
		zt_relay_stats(T.r[i], &s);
		if (s.queued_up > pk->q[i][0])
			pk->q[i][0] = s.queued_up;
		if (s.queued_down > pk->q[i][1])
			pk->q[i][1] = s.queued_down;
		if (s.alloc > pk->alloc[i])
			pk->alloc[i] = s.alloc;
	}
}

static void run_sampling(uint64_t ms, struct peak *pk)
{
	uint64_t until = zt_loop_update_time(loop) + ms;

	while (zt_loop_now(loop) < until) {
		zt_loop_run_once(loop, 10);
		sample(pk);
	}
}

START_TEST(tcp_relay_holds_at_most_one_pipe_while_the_reader_is_paused)
{
	struct peak pk = {0}, pk2 = {0};

	start(M_SPLICE);
	app_pause(&B, true);
	app_send(&A, 64 * MiB, true);
	run_sampling(400, &pk);
	/* A is stalled well before the end: the relay stopped reading. */
	ck_assert_uint_lt(A.sent, 64 * MiB);
	ck_assert_uint_eq(B.received, 0);
	ck_assert_uint_le(pk.q[0][0], 64 * 1024);
	ck_assert_uint_eq(pk.alloc[0], 0); /* spliced: no user-space buffer at all */
	/* After 10 MiB the pipe may grow to 1 MiB, and that is the bound from then on. */
	app_pause(&B, false);
	RUN_UNTIL(loop, B.received >= 16 * MiB, 20000);
	app_pause(&B, true);
	run_sampling(400, &pk2);
	ck_assert_uint_lt(A.sent, 64 * MiB);
	ck_assert_uint_le(pk2.q[0][0], 1 * MiB);
	ck_assert_uint_eq(pk2.alloc[0], 0);
	app_pause(&B, false);
	RUN_UNTIL(loop, B.eof, 20000);
	ck_assert_uint_eq(B.received, 64 * MiB);
	ck_assert_uint_eq(B.rx_sum, A.tx_sum);
}
END_TEST

START_TEST(h2_relays_stay_within_window_and_chunk_while_readers_are_paused)
{
	struct peak pk = {0};

	/* Small windows make the bound sharp: nothing is consumed before the socket took it. */
	T.cset.stream_window = T.sset.stream_window = 256 * 1024;
	T.cset.stream_send_buffer = T.sset.stream_send_buffer = 128 * 1024;
	start(M_H2);
	app_pause(&A, true);
	app_pause(&B, true);
	app_send(&A, 64 * MiB, true);
	app_send(&B, 64 * MiB, true);
	run_sampling(500, &pk);
	ck_assert_uint_lt(A.sent, 64 * MiB);
	ck_assert_uint_lt(B.sent, 64 * MiB);
	/* Reading TCP: at most one chunk (256 KiB) queued and allocated per direction. */
	ck_assert_uint_le(pk.q[0][0], 256 * 1024);
	ck_assert_uint_le(pk.q[1][1], 256 * 1024);
	/* Delivering from the stream: at most its receive window. */
	ck_assert_uint_le(pk.q[1][0], 256 * 1024);
	ck_assert_uint_le(pk.q[0][1], 256 * 1024);
	ck_assert_uint_le(pk.alloc[0], 2 * 256 * 1024);
	ck_assert_uint_le(pk.alloc[1], 2 * 256 * 1024);
	ck_assert_uint_le(zt_h2_stream_buffered(T.cst), 2 * T.cset.stream_send_buffer);
	/* TCP to stream reads into the stream's buffer in place: one chunk at most waits there. */
	ck_assert_uint_le(zt_h2_stream_buffered(T.cst), 256 * 1024);
	ck_assert_uint_le(zt_h2_stream_buffered(T.sst), 256 * 1024);
	app_pause(&A, false);
	app_pause(&B, false);
	RUN_UNTIL(loop, A.eof && B.eof && relays_done(M_H2), 20000);
	ck_assert_uint_eq(B.received, 64 * MiB);
	ck_assert_uint_eq(B.rx_sum, A.tx_sum);
	ck_assert_uint_eq(A.received, 64 * MiB);
	ck_assert_uint_eq(A.rx_sum, B.tx_sum);
	ck_assert_uint_eq(T.done[0].res.bytes_up, 64 * MiB);
	ck_assert_uint_eq(T.done[1].res.bytes_down, 64 * MiB);
}
END_TEST

START_TEST(copy_buffer_grows_1k_16k_256k_with_bytes_moved)
{
	struct zt_relay_stats s;

	start(M_COPY);
	app_send(&A, 1, false);
	RUN_UNTIL(loop, B.received == 1, 20000);
	zt_relay_stats(T.r[0], &s);
	ck_assert_uint_eq(s.alloc, 1024);
	app_send(&A, 200 * 1024, false);
	RUN_UNTIL(loop, B.received == 1 + 200 * 1024, 20000);
	zt_relay_stats(T.r[0], &s);
	ck_assert_uint_eq(s.alloc, 16 * 1024);
	app_send(&A, 11 * MiB, false);
	RUN_UNTIL(loop, B.received == 1 + 200 * 1024 + 11 * MiB, 20000);
	zt_relay_stats(T.r[0], &s);
	ck_assert_uint_eq(s.alloc, 256 * 1024);
	ck_assert_uint_eq(s.bytes_up, B.received);
	ck_assert_uint_eq(s.queued_up, 0);
}
END_TEST

/* ---- resets and aborts ------------------------------------------------------------------- */

/* _i: mode (splice, copy, h2) x which application resets. */
START_TEST(tcp_reset_is_propagated_to_the_other_side)
{
	enum mode m = (enum mode)(_i / 2);
	bool client = _i % 2 == 0;
	struct app *rst = client ? &A : &B, *other = client ? &B : &A;

	start(m);
	app_send(rst, 10, false);
	RUN_UNTIL(loop, other->received == 10, 20000);
	app_reset(rst);
	RUN_UNTIL(loop, other->rx_err != 0 && relays_done(m), 20000);
	ck_assert_int_eq(other->rx_err, ECONNRESET);
	ck_assert(!other->eof);
	if (m != M_H2) {
		assert_done(0,
		            client ? "connection reset by client" : "connection reset by server");
	} else {
		/* The relay that saw the TCP reset, then the other one through RST_STREAM. */
		assert_done(client ? 0 : 1,
		            client ? "connection reset by client" : "connection reset by server");
		assert_done(client ? 1 : 0,
		            client ? "stream reset by client" : "stream reset by server");
	}
	ck_assert_uint_eq(client ? T.done[0].res.bytes_up : T.done[0].res.bytes_down, 10);
}
END_TEST

START_TEST(stream_reset_with_cancel_is_eof_and_other_codes_reset_tcp)
{
	bool cancel = _i == 0;

	T.hold = true;
	start(M_H2);
	ck_assert_int_eq(zt_h2_stream_write(T.sst, "hello", 5), 5);
	RUN_UNTIL(loop, A.received == 5, 20000);
	zt_h2_stream_reset(T.sst, cancel ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR);
	RUN_UNTIL(loop, T.done[0].count && (A.eof || A.rx_err), 20000);
	if (cancel) {
		ck_assert(A.eof);
		ck_assert_int_eq(A.rx_err, 0);
		assert_done(0, NULL);
	} else {
		ck_assert_int_eq(A.rx_err, ECONNRESET);
		assert_done(0, "stream reset by server");
	}
	ck_assert_uint_eq(T.done[0].res.bytes_down, 5);
}
END_TEST

START_TEST(end_stream_on_a_held_stream_half_closes_the_socket)
{
	T.hold = true;
	start(M_H2);
	ck_assert_int_eq(zt_h2_stream_write(T.sst, "bye", 3), 3);
	ck_assert_int_eq(zt_h2_stream_end(T.sst, NULL, 0), 0);
	RUN_UNTIL(loop, A.eof, 20000);
	ck_assert_uint_eq(A.received, 3);
	ck_assert_int_eq(T.done[0].count, 0);
	/* A can still answer; its EOF ends the stream and the relay cleanly. */
	app_send(&A, 4, true);
	RUN_UNTIL(loop, T.done[0].count && T.held_closed, 20000);
	assert_done(0, NULL);
	ck_assert_uint_eq(T.held_close_code, NGHTTP2_NO_ERROR);
	ck_assert_uint_eq(T.done[0].res.bytes_up, 4);
	ck_assert_uint_eq(T.done[0].res.bytes_down, 3);
}
END_TEST

START_TEST(losing_the_http2_connection_resets_both_applications)
{
	start(M_H2);
	app_send(&A, 100, false);
	RUN_UNTIL(loop, B.received == 100, 20000);
	zt_h2_conn_close(T.srv, "gone");
	RUN_UNTIL(loop, A.rx_err && B.rx_err && relays_done(M_H2), 20000);
	ck_assert_int_eq(A.rx_err, ECONNRESET);
	ck_assert_int_eq(B.rx_err, ECONNRESET);
	assert_done(0, "HTTP/2 connection closed");
	assert_done(1, "HTTP/2 connection closed");
}
END_TEST

START_TEST(abort_reports_the_reason_once_and_resets_the_sockets)
{
	enum mode m = (enum mode)_i;

	start(m);
	app_send(&A, 3, false);
	app_send(&B, 4, false);
	RUN_UNTIL(loop, B.received == 3 && A.received == 4, 20000);
	zt_relay_abort(T.r[0], "policy changed");
	zt_relay_abort(T.r[0], "second reason ignored");
	ck_assert_int_eq(T.done[0].count, 0); /* reported from the loop, not from abort */
	RUN_UNTIL(loop, A.rx_err && relays_done(m) && (m != M_H2 ? B.rx_err != 0 : B.eof), 20000);
	assert_done(0, "policy changed");
	ck_assert_int_eq(A.rx_err, ECONNRESET);
	ck_assert_uint_eq(T.done[0].res.bytes_up, 3);
	ck_assert_uint_eq(T.done[0].res.bytes_down, 4);
	if (m == M_H2) {
		/* RST_STREAM(CANCEL) reads as EOF on the far side (spec §2.6). */
		assert_done(1, NULL);
		ck_assert_int_eq(B.rx_err, 0);
	} else {
		ck_assert_int_eq(B.rx_err, ECONNRESET);
	}
}
END_TEST

START_TEST(start_rejects_bad_ends_and_takes_nothing)
{
	struct zt_relay *r = (struct zt_relay *)&r;
	int a, b;

	tcp_pair(&a, &b);
	ck_assert_int_eq(zt_relay_start(&r, loop, (struct zt_relay_end){.fd = a},
	                                (struct zt_relay_end){.fd = -1}, NULL, on_done, NULL),
	                 ZT_E_UNSUPPORTED);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(zt_relay_start(&r, loop, (struct zt_relay_end){.fd = a, .st = (void *)&r},
	                                (struct zt_relay_end){.fd = b}, NULL, on_done, NULL),
	                 ZT_E_UNSUPPORTED);
	ck_assert_int_eq(zt_relay_start(&r, loop, (struct zt_relay_end){.fd = -1, .st = (void *)&a},
	                                (struct zt_relay_end){.fd = -1, .st = (void *)&b}, NULL,
	                                on_done, NULL),
	                 ZT_E_UNSUPPORTED);
	ck_assert_int_eq(zt_relay_start(&r, loop, (struct zt_relay_end){.fd = a},
	                                (struct zt_relay_end){.fd = 1000000}, NULL, on_done, NULL),
	                 -EBADF);
	/* Still the caller's. */
	ck_assert_int_ge(fcntl(a, F_GETFD), 0);
	ck_assert_int_ge(fcntl(b, F_GETFD), 0);
	ck_assert_int_eq(zt_relay_live(), 0);
	close(a);
	close(b);
}
END_TEST

Suite *relay_suite(void);
Suite *relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tc = tcase_create("relay");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, bytes_arrive_intact_both_ways_and_counts_are_exact, 0, 9);
	tcase_add_loop_test(tc, half_close_passes_on_while_the_other_direction_keeps_flowing, 0, 4);
	tcase_add_loop_test(tc, splice_einval_falls_back_to_copying_without_losing_bytes, 0, 2);
	tcase_add_test(tc, tcp_relay_holds_at_most_one_pipe_while_the_reader_is_paused);
	tcase_add_test(tc, h2_relays_stay_within_window_and_chunk_while_readers_are_paused);
	tcase_add_test(tc, copy_buffer_grows_1k_16k_256k_with_bytes_moved);
	tcase_add_loop_test(tc, tcp_reset_is_propagated_to_the_other_side, 0, 6);
	tcase_add_loop_test(tc, stream_reset_with_cancel_is_eof_and_other_codes_reset_tcp, 0, 2);
	tcase_add_test(tc, end_stream_on_a_held_stream_half_closes_the_socket);
	tcase_add_test(tc, losing_the_http2_connection_resets_both_applications);
	tcase_add_loop_test(tc, abort_reports_the_reason_once_and_resets_the_sockets, 0, 3);
	tcase_add_test(tc, start_rejects_bad_ends_and_takes_nothing);
	suite_add_tcase(s, tc);
	return s;
}
