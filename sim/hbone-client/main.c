/* hbone-client: opens one HBONE tunnel (mTLS + HTTP/2 CONNECT, spec §2) and pipes stdin into
 * it and its bytes to stdout, with half-close both ways. Built on the daemon's own pool, TLS
 * and CONNECT code, so it exercises them end to end. Invariant: the exit status is decided
 * once (0 tunnel ended cleanly, 2 non-200 answer, 1 anything else) and the process only exits
 * after every object it created is gone. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/h2.h"
#include "protocol/spiffe.h"
#include "protocol/tls.h"
#include "hbone/hbone.h"
#include "hbone/pool.h"
#include "runtime/addr.h"
#include "runtime/buf.h"
#include "runtime/duration.h"
#include "runtime/err.h"
#include "runtime/loop.h"
#include "runtime/mem.h"

#define MAX_EXTRA  32
#define READ_CHUNK (64 * 1024)

static const char synopsis[] =
        "usage: hbone-client --cert FILE --key FILE --roots FILE --expect "
        "SPIFFE_ID[,SPIFFE_ID...]\n"
        "                    --connect IP:PORT --authority HOST:PORT [--header NAME=VALUE]...\n"
        "                    [--timeout DURATION]\n";
static const char details[] =
        "\n"
        "Opens one HBONE tunnel: mutual TLS to --connect presenting --cert/--key (trusting\n"
        "--roots), requires the server to prove one of the --expect identities, sends\n"
        "CONNECT --authority (ip:port, [v6]:port or host:port), then copies stdin into the tunnel\n"
        "and the tunnel to stdout. stdin EOF half-closes the tunnel; the peer's end of stream "
        "ends\n"
        "the program once stdout is flushed. --timeout (default 10s) bounds each step up to the\n"
        "CONNECT response: TCP connect, TLS and HTTP/2 handshake, the response itself.\n"
        "Prints 'status: N' and 'peer: ID' to stderr.\n"
        "Exit status: 0 tunnel completed, 2 CONNECT answered with a status other than 200,\n"
        "1 any other failure.\n";

static struct {
	struct zt_loop *loop;
	struct zt_pool *pool;
	struct zt_pool_req *req;
	struct zt_h2_stream *st;
	struct zt_timer timer;
	uint64_t timeout_ms;
	char peer[ZT_SPIFFE_STR_SIZE];
	int status;
	int result; /* exit status once decided, -1 before */
	bool peer_ended;
	/* stdin -> tunnel */
	int in_fl;
	bool in_poll, in_eof, in_ended;
	struct zt_io in_io;
	struct zt_defer in_defer;
	uint8_t in_buf[READ_CHUNK];
	size_t in_len, in_off;
	/* tunnel -> stdout */
	int out_fl;
	bool out_poll;
	struct zt_io out_io;
	struct zt_buf out;
} A = {.result = -1, .in_fl = -1, .out_fl = -1};

static void fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hbone-client: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s(--help for details)\n", synopsis);
	exit(1);
}

/* ---- ending ------------------------------------------------------------------------------ */

static void finish(int result)
{
	if (A.result >= 0)
		return;
	A.result = result;
	zt_timer_stop(&A.timer);
	zt_io_stop(&A.in_io);
	zt_io_stop(&A.out_io);
	zt_defer_stop(&A.in_defer);
	if (A.req)
		zt_pool_req_cancel(A.req);
	A.req = NULL;
	/* The stream ends with its connection; our callbacks ignore it from here on. */
	A.st = NULL;
	zt_pool_free(A.pool);
	A.pool = NULL;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (A.result >= 0)
		return;
	fprintf(stderr, "hbone-client: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	finish(1);
}

/* ---- tunnel -> stdout -------------------------------------------------------------------- */

static void maybe_done(void)
{
	if (A.result < 0 && A.peer_ended && zt_buf_len(&A.out) == 0)
		finish(0);
}

/* Writes what is buffered; the stream window is reopened only for bytes that left. */
static void flush_out(void)
{
	while (zt_buf_len(&A.out)) {
		ssize_t n = write(STDOUT_FILENO, zt_buf_data(&A.out), zt_buf_len(&A.out));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			zt_io_set(&A.out_io, ZT_IO_WRITE);
			return;
		}
		if (n < 0) {
			fail("stdout: %s", strerror(errno));
			return;
		}
		zt_buf_consume(&A.out, (size_t)n);
		if (A.st)
			zt_h2_stream_consume(A.st, (size_t)n);
	}
	if (A.out_poll)
		zt_io_set(&A.out_io, 0);
	maybe_done();
}

static void on_out(struct zt_io *io, unsigned events, void *arg)
{
	(void)io;
	(void)events;
	(void)arg;
	flush_out();
}

static void on_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)st;
	(void)arg;
	if (A.result >= 0)
		return;
	if (zt_buf_append(&A.out, p, len) < 0)
		abort();
	flush_out();
}

static void on_end(struct zt_h2_stream *st, void *arg)
{
	(void)st;
	(void)arg;
	A.peer_ended = true;
	maybe_done();
}

/* ---- stdin -> tunnel --------------------------------------------------------------------- */

static void pump_in(void);

static void on_in_defer(struct zt_defer *d, void *arg)
{
	(void)d;
	(void)arg;
	pump_in();
}

/* Moves stdin into the stream until one side has to wait. */
static void pump_in(void)
{
	for (;;) {
		if (A.result >= 0 || !A.st)
			return;
		if (A.in_off < A.in_len) {
			ssize_t w =
			        zt_h2_stream_write(A.st, A.in_buf + A.in_off, A.in_len - A.in_off);
			if (w < 0) {
				fail("tunnel write: %s", zt_strerror((int)w));
				return;
			}
			A.in_off += (size_t)w;
			if (A.in_off < A.in_len) {
				/* Stream buffer full: on_writable resumes. */
				if (A.in_poll)
					zt_io_set(&A.in_io, 0);
				return;
			}
		}
		if (A.in_eof) {
			if (!A.in_ended) {
				A.in_ended = true;
				zt_h2_stream_end(A.st, NULL, 0);
			}
			if (A.in_poll)
				zt_io_set(&A.in_io, 0);
			return;
		}
		ssize_t n = read(STDIN_FILENO, A.in_buf, sizeof(A.in_buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			zt_io_set(&A.in_io, ZT_IO_READ);
			return;
		}
		if (n < 0) {
			fail("stdin: %s", strerror(errno));
			return;
		}
		A.in_off = 0;
		A.in_len = (size_t)n;
		A.in_eof = n == 0;
		if (!A.in_poll && n > 0) {
			/* A regular file is always readable: continue from the loop so that the
			 * other direction keeps moving. */
			ssize_t w = zt_h2_stream_write(A.st, A.in_buf, A.in_len);
			if (w < 0) {
				fail("tunnel write: %s", zt_strerror((int)w));
				return;
			}
			A.in_off = (size_t)w;
			if (A.in_off == A.in_len)
				zt_defer_start(A.loop, &A.in_defer, on_in_defer, NULL);
			return;
		}
	}
}

static void on_in(struct zt_io *io, unsigned events, void *arg)
{
	(void)io;
	(void)events;
	(void)arg;
	pump_in();
}

static void on_writable(struct zt_h2_stream *st, void *arg)
{
	(void)st;
	(void)arg;
	if (A.in_poll && A.in_off == A.in_len && !A.in_eof)
		zt_io_set(&A.in_io, ZT_IO_READ);
	pump_in();
}

/* Makes fd non-blocking and watched if epoll supports it (pipes, sockets, terminals); regular
 * files are not pollable and are used blocking, which never waits for them. */
static bool watch(int fd, struct zt_io *io, zt_io_cb cb, int *saved_fl)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || zt_io_start(A.loop, io, fd, 0, cb, NULL) < 0)
		return false;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
		*saved_fl = fl;
	return true;
}

static void start_pipes(void)
{
	A.in_poll = watch(STDIN_FILENO, &A.in_io, on_in, &A.in_fl);
	A.out_poll = watch(STDOUT_FILENO, &A.out_io, on_out, &A.out_fl);
	pump_in();
}

/* ---- CONNECT ----------------------------------------------------------------------------- */

static void on_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n, bool end,
                       void *arg)
{
	(void)st;
	(void)end;
	(void)arg;
	if (A.status || A.result >= 0)
		return; /* trailers */
	for (size_t i = 0; i < n; i++)
		if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0)
			A.status = (int)strtol(h[i].value, NULL, 10);
	fprintf(stderr, "status: %d\npeer: %s\n", A.status, A.peer);
	zt_timer_stop(&A.timer);
	if (A.status != 200) {
		finish(2);
		return;
	}
	start_pipes();
}

static void on_stream_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	(void)st;
	(void)arg;
	if (A.result >= 0)
		return;
	A.st = NULL;
	if (!A.status) {
		fail("tunnel closed before the CONNECT response (HTTP/2 error code %u)", code);
		return;
	}
	/* A reset with NO_ERROR ends the stream like END_STREAM (spec §2.6). */
	if (A.peer_ended || code == 0) {
		A.peer_ended = true;
		maybe_done();
		if (A.result < 0 && !A.out_poll)
			flush_out();
		return;
	}
	fail("tunnel reset by peer (HTTP/2 error code %u) before it ended", code);
}

static const struct zt_h2_stream_cbs stream_cbs = {
        .on_headers = on_headers,
        .on_data = on_data,
        .on_end = on_end,
        .on_writable = on_writable,
        .on_close = on_stream_close,
};

static void on_timeout(struct zt_timer *t, void *arg)
{
	char d[ZT_DURATION_STRLEN];

	(void)t;
	(void)arg;
	zt_duration_format(A.timeout_ms, d, sizeof(d));
	fail("no CONNECT response within %s", d);
}

static void on_ready(struct zt_h2_stream *st, const struct zt_pool_result *r, void *arg)
{
	(void)arg;
	A.req = NULL;
	if (!st) {
		fail("%s: %s", zt_close_flag(r->flag),
		     r->reason[0] ? r->reason : zt_strerror(r->err));
		return;
	}
	A.st = st;
	if (r->peer)
		zt_spiffe_format(r->peer, A.peer, sizeof(A.peer));
	zt_timer_start(A.loop, &A.timer, A.timeout_ms, on_timeout, NULL);
}

/* ---- command line ------------------------------------------------------------------------ */

static char *slurp(const char *flag, const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "hbone-client: %s %s: %s\n", flag, path, strerror(errno));
		return NULL;
	}
	buf = xmalloc(ZT_TLS_MAX_PEM + 1);
	n = fread(buf, 1, ZT_TLS_MAX_PEM + 1, f);
	if (ferror(f) || n > ZT_TLS_MAX_PEM) {
		fprintf(stderr, "hbone-client: %s %s: %s\n", flag, path,
		        ferror(f) ? "read error" : "larger than 1 MiB");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

static int parse_expect(const char *s, struct zt_spiffe *ids, size_t *n)
{
	*n = 0;
	for (;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		if (*n == ZT_TLS_MAX_EXPECTED || zt_spiffe_parse(&ids[*n], s, len) < 0)
			return -1;
		(*n)++;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

/* name=value: a lower-case HTTP field name (no pseudo-headers) and a value free of CR, LF and
 * NUL. Points into arg. */
static bool parse_header(char *arg, struct zt_h2_header *h)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg)
		return false;
	for (char *p = arg; p < eq; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_' || *p == '.'))
			return false;
	if (strpbrk(eq + 1, "\r\n"))
		return false;
	*h = (struct zt_h2_header){arg, (size_t)(eq - arg), eq + 1, strlen(eq + 1)};
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"cert", required_argument, NULL, 'c'},
	        {"key", required_argument, NULL, 'k'},
	        {"roots", required_argument, NULL, 'r'},
	        {"expect", required_argument, NULL, 'e'},
	        {"connect", required_argument, NULL, 'C'},
	        {"authority", required_argument, NULL, 'a'},
	        {"header", required_argument, NULL, 'H'},
	        {"timeout", required_argument, NULL, 't'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *cert = NULL, *key = NULL, *roots = NULL, *expect = NULL, *connect_to = NULL;
	const char *authority = NULL;
	struct zt_spiffe ids[ZT_TLS_MAX_EXPECTED];
	size_t nids = 0, nextra = 0, cl = 0, kl = 0, rl = 0;
	struct zt_h2_header extra[MAX_EXTRA], all[ZT_HBONE_REQ_HEADERS + MAX_EXTRA];
	struct zt_hbone_authority target;
	struct zt_hbone_req hreq;
	struct zt_pool_opts popts;
	struct zt_pool_key pkey;
	struct zt_tls_identity *id = NULL;
	char *cert_pem = NULL, *key_pem = NULL, *roots_pem = NULL;
	int opt, err;

	A.timeout_ms = 10000;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'r':
			roots = optarg;
			break;
		case 'e':
			expect = optarg;
			break;
		case 'C':
			connect_to = optarg;
			break;
		case 'a':
			authority = optarg;
			break;
		case 'H':
			if (nextra == MAX_EXTRA)
				fail_usage("too many --header flags (at most %d)", MAX_EXTRA);
			if (!parse_header(optarg, &extra[nextra++]))
				fail_usage("bad --header '%s': want lower-case-name=value", optarg);
			break;
		case 't':
			if (zt_duration_parse(optarg, &A.timeout_ms) < 0 || A.timeout_ms == 0)
				fail_usage(
				        "bad --timeout '%s': want a duration such as 10s or 500ms",
				        optarg);
			break;
		case 'h':
			fputs(synopsis, stdout);
			fputs(details, stdout);
			return 0;
		case ':':
			fail_usage("flag %s needs a value", argv[optind - 1]);
			break;
		default:
			fail_usage("unknown flag %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		fail_usage("unexpected argument '%s'", argv[optind]);
	if (!cert || !key || !roots || !expect || !connect_to || !authority)
		fail_usage("missing %s", !cert         ? "--cert"
		                         : !key        ? "--key"
		                         : !roots      ? "--roots"
		                         : !expect     ? "--expect"
		                         : !connect_to ? "--connect"
		                                       : "--authority");
	if (parse_expect(expect, ids, &nids) < 0)
		fail_usage("bad --expect '%s': want spiffe://TD/ns/NS/sa/SA[,...]", expect);
	memset(&pkey, 0, sizeof(pkey));
	if (zt_addr_parse(&pkey.dst, connect_to, strlen(connect_to), 0) < 0)
		fail_usage("bad --connect '%s': want IP:PORT or [IPv6]:PORT", connect_to);
	if (zt_hbone_authority_parse(&target, authority, strlen(authority)) < 0)
		fail_usage("bad --authority '%s': want IP:PORT, [IPv6]:PORT or HOST:PORT",
		           authority);

	signal(SIGPIPE, SIG_IGN);
	cert_pem = slurp("--cert", cert, &cl);
	key_pem = cert_pem ? slurp("--key", key, &kl) : NULL;
	roots_pem = key_pem ? slurp("--roots", roots, &rl) : NULL;
	if (!roots_pem) {
		free(cert_pem);
		free(key_pem);
		return 1;
	}
	err = zt_tls_identity_new(&id, cert_pem, cl, key_pem, kl, roots_pem, rl);
	free(cert_pem);
	free(key_pem);
	free(roots_pem);
	if (err < 0) {
		fprintf(stderr, "hbone-client: cannot use --cert/--key/--roots: %s\n",
		        zt_strerror(err));
		return 1;
	}
	err = zt_hbone_req_build(&hreq, &(struct zt_hbone_connect){.target = &target});
	if (err < 0) {
		fprintf(stderr, "hbone-client: building the request: %s\n", zt_strerror(err));
		zt_tls_identity_unref(id);
		return 1;
	}
	memcpy(all, hreq.h, hreq.n * sizeof(all[0]));
	memcpy(all + hreq.n, extra, nextra * sizeof(all[0]));

	zt_pool_opts_default(&popts);
	popts.connect_timeout_ms = popts.handshake_timeout_ms = A.timeout_ms;
	popts.sock.keepalive = false;
	if ((err = zt_loop_new(&A.loop)) < 0 || (err = zt_pool_new(&A.pool, A.loop, &popts)) < 0) {
		fprintf(stderr, "hbone-client: setup: %s\n", zt_strerror(err));
		zt_loop_free(A.loop);
		zt_tls_identity_unref(id);
		return 1;
	}
	zt_buf_init(&A.out, 0);
	pkey.identity = id;
	pkey.dst_ids = ids;
	pkey.n_dst_ids = nids;
	err = zt_pool_connect(A.pool, &pkey, all, hreq.n + nextra, &stream_cbs, NULL, on_ready,
	                      NULL, &A.req);
	if (err < 0)
		fail("connect: %s", zt_strerror(err));
	/* Runs until finish() has closed the pool and its connection is gone. */
	zt_loop_run(A.loop);
	zt_loop_free(A.loop);
	zt_buf_clear(&A.out);
	zt_tls_identity_unref(id);
	if (A.in_fl >= 0)
		fcntl(STDIN_FILENO, F_SETFL, A.in_fl);
	if (A.out_fl >= 0)
		fcntl(STDOUT_FILENO, F_SETFL, A.out_fl);
	return A.result < 0 ? 1 : A.result;
}
