#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "protocol/tls.h"
#include "runtime/err.h"
#include "runtime/loop.h"
#include "tls_fixture.h"

#define TD       "cluster.local"
#define SRV_URI  "spiffe://" TD "/ns/app/sa/server"
#define SRV2_URI "spiffe://" TD "/ns/app/sa/server2"
#define CLI_URI  "spiffe://" TD "/ns/web/sa/client"

static struct fx_ca root, other_root;

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	fx_ca_init(&root, "test root", NULL);
	fx_ca_init(&other_root, "other root", NULL);
}

static void teardown(void)
{
	fx_ca_clear(&root);
	fx_ca_clear(&other_root);
	/* Every test frees what it made: nothing may be left alive. */
	ck_assert_uint_eq(zt_tls_identity_live(), 0);
	ck_assert_uint_eq(zt_tls_conn_live(), 0);
}

static struct zt_spiffe spiffe(const char *uri)
{
	struct zt_spiffe id;

	ck_assert_int_eq(zt_spiffe_parse(&id, uri, strlen(uri)), 0);
	return id;
}

static void nonblocking_pair(int fds[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
}

/* A client and a server connection over a socketpair (fds[0] client, fds[1] server). */
struct pair {
	int fds[2];
	struct zt_tls_conn *cli, *srv;
	int crc, src; /* last handshake results */
};

static void pair_open(struct pair *p, struct zt_tls_client *cli, struct zt_tls_server *srv,
                      struct zt_tls_identity *cli_id, const char *const *expected, size_t n)
{
	struct zt_spiffe exp[8];
	size_t i;

	ck_assert_uint_le(n, 8);
	for (i = 0; i < n; i++)
		exp[i] = spiffe(expected[i]);
	nonblocking_pair(p->fds);
	ck_assert_int_eq(zt_tls_conn_client_new(&p->cli, cli, p->fds[0], cli_id, exp, n), 0);
	ck_assert_int_eq(zt_tls_conn_server_new(&p->srv, srv, p->fds[1]), 0);
	p->crc = p->src = -EAGAIN;
}

static void pair_close(struct pair *p)
{
	zt_tls_conn_free(p->cli);
	zt_tls_conn_free(p->srv);
	close(p->fds[0]);
	if (p->fds[1] >= 0)
		close(p->fds[1]);
}

static short poll_events(unsigned want)
{
	ck_assert_msg(want == ZT_IO_READ || want == ZT_IO_WRITE, "want %u after -EAGAIN", want);
	return (short)((want & ZT_IO_READ ? POLLIN : 0) | (want & ZT_IO_WRITE ? POLLOUT : 0));
}

/* Drives both handshakes, waiting only for the readiness each side asked for, so a wrong
 * want() shows up as a stall. Stops when neither side can progress. */
static void pair_handshake(struct pair *p)
{
	p->crc = zt_tls_conn_handshake(p->cli);
	p->src = zt_tls_conn_handshake(p->srv);
	while (p->crc == -EAGAIN || p->src == -EAGAIN) {
		struct pollfd pfd[2];
		int n = 0, ci = -1, si = -1;

		if (p->crc == -EAGAIN) {
			pfd[n] = (struct pollfd){p->fds[0], poll_events(zt_tls_conn_want(p->cli))};
			ci = n++;
		}
		if (p->src == -EAGAIN) {
			pfd[n] = (struct pollfd){p->fds[1], poll_events(zt_tls_conn_want(p->srv))};
			si = n++;
		}
		if (poll(pfd, (nfds_t)n, 1000) <= 0)
			return;
		if (ci >= 0 && pfd[ci].revents)
			p->crc = zt_tls_conn_handshake(p->cli);
		if (si >= 0 && pfd[si].revents)
			p->src = zt_tls_conn_handshake(p->srv);
	}
}

/* Reads until something other than -EAGAIN, waiting on the wanted readiness (1 s cap). */
static ssize_t read_wait(struct zt_tls_conn *c, int fd, void *buf, size_t len)
{
	ssize_t n;
	int i;

	for (i = 0; i < 100; i++) {
		struct pollfd pfd;

		n = zt_tls_conn_read(c, buf, len);
		if (n != -EAGAIN)
			return n;
		pfd = (struct pollfd){fd, poll_events(zt_tls_conn_want(c))};
		poll(&pfd, 1, 10);
	}
	return -EAGAIN;
}

static void write_all(struct zt_tls_conn *c, const char *s)
{
	ck_assert_int_eq(zt_tls_conn_write(c, s, strlen(s)), (ssize_t)strlen(s));
}

static void expect_read(struct zt_tls_conn *c, int fd, const char *s)
{
	char buf[256];
	ssize_t n = read_wait(c, fd, buf, sizeof(buf) - 1);

	ck_assert_int_eq(n, (ssize_t)strlen(s));
	buf[n] = '\0';
	ck_assert_str_eq(buf, s);
}

/* Sends total pattern bytes from w to r through non-blocking sockets: the writer writes
 * until pushed back, then the reader drains, so partial writes and -EAGAIN on both ends are
 * exercised. Checks every byte arrives in order. */
static void transfer(struct zt_tls_conn *w, int wfd, struct zt_tls_conn *r, int rfd, size_t total)
{
	static unsigned char out[64 * 1024], in[64 * 1024];
	size_t sent = 0, got = 0, bad = 0, i;
	int stalls = 0, pushed_back = 0;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (unsigned char)(i * 7 + 3);
	while (got < total) {
		struct pollfd pfd[2];
		nfds_t n = 0;
		ssize_t k = 0;

		while (sent < total) {
			size_t off = sent % sizeof(out), chunk = sizeof(out) - off;

			if (chunk > total - sent)
				chunk = total - sent;
			k = zt_tls_conn_write(w, out + off, chunk);
			if (k <= 0)
				break;
			sent += (size_t)k;
		}
		if (sent < total) {
			ck_assert_int_eq(k, -EAGAIN);
			pushed_back++;
			pfd[n++] = (struct pollfd){wfd, poll_events(zt_tls_conn_want(w))};
		}
		while ((k = zt_tls_conn_read(r, in, sizeof(in))) > 0) {
			for (i = 0; i < (size_t)k; i++)
				bad += in[i] != out[(got + i) % sizeof(out)];
			got += (size_t)k;
			stalls = 0;
		}
		ck_assert_int_eq(k, -EAGAIN);
		if (got == total)
			break;
		pfd[n++] = (struct pollfd){rfd, poll_events(zt_tls_conn_want(r))};
		if (poll(pfd, n, 1000) <= 0)
			ck_assert_int_lt(++stalls, 3);
	}
	ck_assert_uint_eq(got, total);
	ck_assert_uint_eq(bad, 0);
	/* Far more than a socket buffer was sent, so the writer must have been pushed back. */
	ck_assert_int_gt(pushed_back, 1);
}

/* ---- identities ------------------------------------------------------------------------- */

START_TEST(identity_exposes_spiffe_serial_and_validity)
{
	struct zt_tls_identity *id;
	char uri[ZT_SPIFFE_STR_SIZE];
	time_t now = time(NULL);

	id = fx_identity_opts(
	        &root, &(struct fx_leaf_opts){.sans = "DNS:x.example,URI:https://x/,URI:" SRV_URI
	                                              ",URI:" CLI_URI,
	                                      .eku = FX_SERVER_AUTH | FX_CLIENT_AUTH,
	                                      .serial = 0x1a2b3c,
	                                      .not_before = -100,
	                                      .not_after = 7200});
	zt_spiffe_format(zt_tls_identity_spiffe(id), uri, sizeof(uri));
	ck_assert_str_eq(uri, SRV_URI); /* first SAN that parses as SPIFFE */
	ck_assert_str_eq(zt_tls_identity_serial(id), "1A2B3C");
	ck_assert_int_le(llabs(zt_tls_identity_not_before(id) - (now - 100)), 5);
	ck_assert_int_le(llabs(zt_tls_identity_not_after(id) - (now + 7200)), 5);
	ck_assert_ptr_nonnull(zt_tls_identity_leaf(id));
	ck_assert_uint_eq(zt_tls_identity_live(), 1);
	ck_assert_ptr_eq(zt_tls_identity_ref(id), id);
	zt_tls_identity_unref(id);
	ck_assert_uint_eq(zt_tls_identity_live(), 1);
	zt_tls_identity_unref(id);
	zt_tls_identity_unref(NULL);
}
END_TEST

static int identity_rc(const char *chain, const char *key, const char *roots)
{
	struct zt_tls_identity *id = (struct zt_tls_identity *)1;
	int rc = zt_tls_identity_new(&id, chain, strlen(chain), key, strlen(key), roots,
	                             strlen(roots));

	ck_assert(rc == 0 ? id != NULL : id == NULL);
	zt_tls_identity_unref(id);
	return rc;
}

START_TEST(identity_rejects_bad_material)
{
	struct fx_leaf a, b, nospiffe, nosan;
	char *big;

	fx_leaf_issue(&a, &root, &(struct fx_leaf_opts){.sans = "URI:" SRV_URI, .eku = 3});
	fx_leaf_issue(&b, &root, &(struct fx_leaf_opts){.sans = "URI:" CLI_URI, .eku = 3});
	fx_leaf_issue(&nospiffe, &root,
	              &(struct fx_leaf_opts){.sans = "DNS:x.example,URI:spiffe://td/ns/a/sa/b/c",
	                                     .eku = 3});
	fx_leaf_issue(&nosan, &root, &(struct fx_leaf_opts){.eku = 3});

	ck_assert_int_eq(identity_rc(a.chain_pem, a.key_pem, root.root_pem), 0);
	ck_assert_int_eq(identity_rc(a.chain_pem, b.key_pem, root.root_pem), ZT_E_IDENTITY);
	ck_assert_int_eq(identity_rc(nospiffe.chain_pem, nospiffe.key_pem, root.root_pem),
	                 ZT_E_IDENTITY);
	ck_assert_int_eq(identity_rc(nosan.chain_pem, nosan.key_pem, root.root_pem), ZT_E_IDENTITY);
	ck_assert_int_eq(identity_rc(a.chain_pem, a.key_pem, other_root.root_pem), ZT_E_IDENTITY);
	ck_assert_int_eq(identity_rc("", a.key_pem, root.root_pem), ZT_E_PARSE);
	ck_assert_int_eq(identity_rc(a.chain_pem, a.key_pem, ""), ZT_E_PARSE);
	ck_assert_int_eq(identity_rc(a.chain_pem, "junk", root.root_pem), ZT_E_PARSE);
	ck_assert_int_eq(identity_rc(a.chain_pem, a.key_pem,
	                             "-----BEGIN CERTIFICATE-----\nAAAA\n"
	                             "-----END CERTIFICATE-----\n"),
	                 ZT_E_PARSE);
	/* Several roots: the one that issued the leaf may be anywhere in the bundle. */
	big = malloc(strlen(other_root.pem) + strlen(root.pem) + 1);
	memcpy(big, other_root.pem, strlen(other_root.pem));
	memcpy(big + strlen(other_root.pem), root.pem, strlen(root.pem) + 1);
	ck_assert_int_eq(identity_rc(a.chain_pem, a.key_pem, big), 0);
	free(big);
	big = calloc(1, ZT_TLS_MAX_PEM + 2);
	memset(big, '\n', ZT_TLS_MAX_PEM + 1);
	ck_assert_int_eq(identity_rc(big, a.key_pem, root.root_pem), ZT_E_TOOBIG);
	ck_assert_int_eq(identity_rc(a.chain_pem, a.key_pem, big), ZT_E_TOOBIG);
	free(big);

	fx_leaf_clear(&a);
	fx_leaf_clear(&b);
	fx_leaf_clear(&nospiffe);
	fx_leaf_clear(&nosan);
}
END_TEST

START_TEST(contexts_reject_unknown_key_exchange_group)
{
	struct zt_tls_identity *id = fx_identity(&root, SRV_URI);
	struct zt_tls_server *srv = (struct zt_tls_server *)1;
	struct zt_tls_client *cli = (struct zt_tls_client *)1;

	ck_assert_int_eq(zt_tls_server_new(&srv, id, &(struct zt_tls_opts){.groups = "nosuch"}),
	                 ZT_E_UNSUPPORTED);
	ck_assert_ptr_null(srv);
	ck_assert_int_eq(zt_tls_client_new(&cli, &(struct zt_tls_opts){.groups = "nosuch"}),
	                 ZT_E_UNSUPPORTED);
	ck_assert_ptr_null(cli);
	ck_assert_int_eq(zt_tls_client_new(&cli, &(struct zt_tls_opts){.groups = "P-256"}), 0);
	zt_tls_client_unref(cli);
	zt_tls_client_unref(NULL);
	zt_tls_server_free(NULL);
	zt_tls_identity_unref(id);
}
END_TEST

/* ---- handshakes between our client and server -------------------------------------------- */

struct env {
	struct zt_tls_identity *srv_id, *cli_id;
	struct zt_tls_server *srv;
	struct zt_tls_client *cli;
};

static void env_open(struct env *e, struct zt_tls_identity *srv_id, struct zt_tls_identity *cli_id)
{
	e->srv_id = srv_id;
	e->cli_id = cli_id;
	ck_assert_int_eq(zt_tls_server_new(&e->srv, srv_id, NULL), 0);
	ck_assert_int_eq(zt_tls_client_new(&e->cli, NULL), 0);
}

static void env_close(struct env *e)
{
	zt_tls_server_free(e->srv);
	zt_tls_client_unref(e->cli);
	zt_tls_identity_unref(e->srv_id);
	zt_tls_identity_unref(e->cli_id);
}

static void assert_peer(struct zt_tls_conn *c, const char *uri)
{
	char buf[ZT_SPIFFE_STR_SIZE];

	ck_assert_ptr_nonnull(zt_tls_conn_peer(c));
	zt_spiffe_format(zt_tls_conn_peer(c), buf, sizeof(buf));
	ck_assert_str_eq(buf, uri);
}

START_TEST(handshake_succeeds_with_tls13_h2_and_verified_identities)
{
	struct env e;
	struct pair p;
	const char *cipher;
	const char *exp[] = {SRV_URI};

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	ck_assert_ptr_null(zt_tls_conn_peer(p.cli));
	ck_assert_str_eq(zt_tls_conn_alpn(p.cli), "");
	pair_handshake(&p);
	ck_assert_msg(p.crc == 0 && p.src == 0, "client %d (%s) server %d (%s)", p.crc,
	              zt_tls_conn_error(p.cli), p.src, zt_tls_conn_error(p.srv));
	assert_peer(p.cli, SRV_URI);
	assert_peer(p.srv, CLI_URI);
	ck_assert_str_eq(zt_tls_conn_alpn(p.cli), "h2");
	ck_assert_str_eq(zt_tls_conn_alpn(p.srv), "h2");
	ck_assert_int_eq(SSL_version(zt_tls_conn_ssl(p.cli)), TLS1_3_VERSION);
	ck_assert_int_eq(SSL_version(zt_tls_conn_ssl(p.srv)), TLS1_3_VERSION);
	cipher = SSL_get_cipher_name(zt_tls_conn_ssl(p.srv));
	ck_assert_msg(strcmp(cipher, "TLS_AES_256_GCM_SHA384") == 0 ||
	                      strcmp(cipher, "TLS_AES_128_GCM_SHA256") == 0,
	              "cipher %s", cipher);
	/* No SNI on the wire: the server saw no server name. */
	ck_assert_ptr_null(SSL_get_servername(zt_tls_conn_ssl(p.srv), TLSEXT_NAMETYPE_host_name));
	ck_assert_int_eq(SSL_session_reused(zt_tls_conn_ssl(p.cli)), 0);
	ck_assert_ptr_eq(zt_tls_conn_identity(p.srv), e.srv_id);
	ck_assert_ptr_eq(zt_tls_conn_identity(p.cli), e.cli_id);
	ck_assert_str_eq(zt_tls_conn_error(p.cli), "");
	ck_assert_int_eq(zt_tls_conn_handshake(p.cli), 0); /* idempotent once done */
	ck_assert_uint_eq(zt_tls_conn_live(), 2);
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(quiet_connection_releases_record_buffers_busy_one_keeps_them)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert(p.crc == 0 && p.src == 0);
	write_all(p.cli, "ping");
	expect_read(p.srv, p.fds[1], "ping");
	ck_assert(SSL_get_mode(zt_tls_conn_ssl(p.cli)) & SSL_MODE_RELEASE_BUFFERS);
	ck_assert(SSL_get_mode(zt_tls_conn_ssl(p.srv)) & SSL_MODE_RELEASE_BUFFERS);
	/* Whole records both ways: no malloc and free per record from then on. */
	transfer(p.cli, p.fds[0], p.srv, p.fds[1], 1u << 20);
	ck_assert(!(SSL_get_mode(zt_tls_conn_ssl(p.cli)) & SSL_MODE_RELEASE_BUFFERS));
	ck_assert(!(SSL_get_mode(zt_tls_conn_ssl(p.srv)) & SSL_MODE_RELEASE_BUFFERS));
	write_all(p.srv, "pong");
	expect_read(p.cli, p.fds[0], "pong");
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(data_flows_both_ways_and_close_notify_gives_eof)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};
	char buf[16];

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert(p.crc == 0 && p.src == 0);
	ck_assert_int_eq(zt_tls_conn_read(p.srv, buf, sizeof(buf)), -EAGAIN);
	ck_assert_uint_eq(zt_tls_conn_want(p.srv), ZT_IO_READ);
	write_all(p.cli, "ping");
	expect_read(p.srv, p.fds[1], "ping");
	write_all(p.srv, "pong");
	expect_read(p.cli, p.fds[0], "pong");
	transfer(p.cli, p.fds[0], p.srv, p.fds[1], 6u * 1024 * 1024);
	transfer(p.srv, p.fds[1], p.cli, p.fds[0], 6u * 1024 * 1024);

	/* Client half-closes: the server sees EOF but can still answer. */
	ck_assert_int_eq(zt_tls_conn_shutdown(p.cli), 0);
	ck_assert_int_eq(zt_tls_conn_shutdown(p.cli), 0);
	ck_assert_int_eq(zt_tls_conn_write(p.cli, "x", 1), ZT_E_STATE);
	ck_assert_int_eq(read_wait(p.srv, p.fds[1], buf, sizeof(buf)), 0);
	ck_assert_int_eq(zt_tls_conn_read(p.srv, buf, sizeof(buf)), 0);
	write_all(p.srv, "bye");
	expect_read(p.cli, p.fds[0], "bye");
	ck_assert_int_eq(zt_tls_conn_shutdown(p.srv), 0);
	ck_assert_int_eq(read_wait(p.cli, p.fds[0], buf, sizeof(buf)), 0);
	ck_assert_str_eq(zt_tls_conn_error(p.cli), "");
	ck_assert_str_eq(zt_tls_conn_error(p.srv), "");
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(io_before_handshake_is_a_state_error)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};
	char buf[4];

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	ck_assert_int_eq(zt_tls_conn_read(p.cli, buf, sizeof(buf)), ZT_E_STATE);
	ck_assert_int_eq(zt_tls_conn_write(p.cli, "x", 1), ZT_E_STATE);
	ck_assert_int_eq(zt_tls_conn_shutdown(p.srv), ZT_E_STATE);
	ck_assert_ptr_null(zt_tls_conn_identity(p.srv)); /* chosen at ClientHello */
	/* ... and does not break the connection. */
	pair_handshake(&p);
	ck_assert(p.crc == 0 && p.src == 0);
	ck_assert_int_eq(zt_tls_conn_read(p.cli, buf, 0), ZT_E_RANGE);
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(peer_closing_tcp_without_close_notify_is_reported)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};
	char buf[4];

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert(p.crc == 0 && p.src == 0);
	close(p.fds[1]);
	ck_assert_int_eq(read_wait(p.cli, p.fds[0], buf, sizeof(buf)), ZT_E_CLOSED);
	ck_assert_str_eq(zt_tls_conn_error(p.cli), "unexpected EOF from peer");
	/* Failures are sticky, and the verified identity stays available for logging. */
	ck_assert_int_eq(zt_tls_conn_write(p.cli, "x", 1), ZT_E_CLOSED);
	ck_assert_int_eq(zt_tls_conn_shutdown(p.cli), ZT_E_CLOSED);
	assert_peer(p.cli, SRV_URI);
	p.fds[1] = -1;
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(client_accepts_server_matching_any_expected_identity)
{
	struct env e;
	struct pair p;
	const char *exp[] = {"spiffe://" TD "/ns/app/sa/nope", SRV_URI, "spiffe://x/ns/y/sa/z"};

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 3);
	pair_handshake(&p);
	ck_assert(p.crc == 0 && p.src == 0);
	assert_peer(p.cli, SRV_URI);
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(client_refuses_server_identity_not_in_expected_list)
{
	struct env e;
	struct pair p;
	const char *exp[] = {"spiffe://" TD "/ns/app/sa/other",
	                     "spiffe://other.td/ns/app/sa/server"};

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 2);
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_IDENTITY);
	ck_assert_str_eq(zt_tls_conn_error(p.cli),
	                 "peer identity " SRV_URI " not in expected list (spiffe://" TD
	                 "/ns/app/sa/other, ...)");
	ck_assert_ptr_null(zt_tls_conn_peer(p.cli));
	ck_assert_int_eq(p.src, ZT_E_TLS); /* the client's alert */
	ck_assert_int_eq(zt_tls_conn_handshake(p.cli), ZT_E_IDENTITY);
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(client_skips_unparsable_sans_when_matching_server)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	env_open(&e,
	         fx_identity_opts(
	                 &root,
	                 &(struct fx_leaf_opts){.sans = "URI:" SRV_URI "/x,DNS:server,URI:" SRV_URI,
	                                        .eku = 3}),
	         fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, 0); /* the valid SAN later in the list counts */
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(client_refuses_server_signed_by_different_root)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	env_open(&e, fx_identity(&other_root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	ck_assert_str_eq(zt_tls_conn_error(p.cli),
	                 "certificate verify failed: unable to get local issuer certificate");
	ck_assert_int_eq(p.src, ZT_E_TLS);
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(client_refuses_server_without_server_auth_eku)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	env_open(&e,
	         fx_identity_opts(&root, &(struct fx_leaf_opts){.sans = "URI:" SRV_URI,
	                                                        .eku = FX_CLIENT_AUTH}),
	         fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	ck_assert_str_eq(zt_tls_conn_error(p.cli),
	                 "certificate verify failed: unsuitable certificate purpose");
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(client_refuses_expired_server_certificate)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	env_open(&e,
	         fx_identity_opts(&root, &(struct fx_leaf_opts){.sans = "URI:" SRV_URI,
	                                                        .eku = 3,
	                                                        .not_before = -7200,
	                                                        .not_after = -3600}),
	         fx_identity(&root, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	ck_assert_str_eq(zt_tls_conn_error(p.cli),
	                 "certificate verify failed: certificate has expired");
	pair_close(&p);
	env_close(&e);
}
END_TEST

/* In TLS 1.3 the client finishes first; a server-side refusal arrives as an alert. */
static void assert_server_refused(struct pair *p, int server_rc, const char *reason)
{
	char buf[8];

	ck_assert_msg(p->src == server_rc, "server %d (%s)", p->src, zt_tls_conn_error(p->srv));
	ck_assert_str_eq(zt_tls_conn_error(p->srv), reason);
	ck_assert_ptr_null(zt_tls_conn_peer(p->srv));
	if (p->crc == 0)
		ck_assert_int_eq(read_wait(p->cli, p->fds[0], buf, sizeof(buf)), ZT_E_TLS);
	else
		ck_assert_int_eq(p->crc, ZT_E_TLS);
}

START_TEST(server_refuses_client_from_other_trust_domain)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	env_open(&e, fx_identity(&root, SRV_URI),
	         fx_identity(&root, "spiffe://other.td/ns/web/sa/client"));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	assert_server_refused(&p, ZT_E_IDENTITY,
	                      "peer identity spiffe://other.td/ns/web/sa/client not in trust "
	                      "domain " TD);
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(server_reports_first_spiffe_san_when_a_later_one_is_in_its_trust_domain)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	env_open(&e, fx_identity(&root, SRV_URI),
	         fx_identity_opts(&root,
	                          &(struct fx_leaf_opts){
	                                  .sans = "URI:spiffe://other.td/ns/a/sa/b,URI:" CLI_URI,
	                                  .eku = 3}));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert(p.crc == 0 && p.src == 0);
	assert_peer(p.srv, "spiffe://other.td/ns/a/sa/b");
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(server_refuses_client_signed_by_different_root)
{
	struct env e;
	struct pair p;
	struct zt_tls_identity *foreign = fx_identity(&other_root, CLI_URI);
	struct fx_leaf leaf;
	char *roots;
	const char *exp[] = {SRV_URI};

	/* The client trusts both roots, so only the server's check can fail. */
	fx_leaf_issue(&leaf, &other_root, &(struct fx_leaf_opts){.sans = "URI:" CLI_URI, .eku = 3});
	roots = malloc(strlen(root.pem) + strlen(other_root.pem) + 1);
	memcpy(roots, root.pem, strlen(root.pem));
	memcpy(roots + strlen(root.pem), other_root.pem, strlen(other_root.pem) + 1);
	zt_tls_identity_unref(foreign);
	ck_assert_int_eq(zt_tls_identity_new(&foreign, leaf.chain_pem, strlen(leaf.chain_pem),
	                                     leaf.key_pem, strlen(leaf.key_pem), roots,
	                                     strlen(roots)),
	                 0);
	env_open(&e, fx_identity(&root, SRV_URI), foreign);
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	assert_server_refused(&p, ZT_E_TLS,
	                      "certificate verify failed: unable to get local issuer certificate");
	pair_close(&p);
	env_close(&e);
	fx_leaf_clear(&leaf);
	free(roots);
}
END_TEST

START_TEST(server_refuses_client_without_client_auth_eku)
{
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	env_open(&e, fx_identity(&root, SRV_URI),
	         fx_identity_opts(&root, &(struct fx_leaf_opts){.sans = "URI:" CLI_URI,
	                                                        .eku = FX_SERVER_AUTH}));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	assert_server_refused(&p, ZT_E_TLS,
	                      "certificate verify failed: unsuitable certificate purpose");
	pair_close(&p);
	env_close(&e);
}
END_TEST

START_TEST(chains_with_intermediates_verify_both_ways)
{
	struct fx_ca inter;
	struct env e;
	struct pair p;
	const char *exp[] = {SRV_URI};

	fx_ca_init(&inter, "intermediate", &root);
	env_open(&e, fx_identity(&inter, SRV_URI), fx_identity(&inter, CLI_URI));
	pair_open(&p, e.cli, e.srv, e.cli_id, exp, 1);
	pair_handshake(&p);
	ck_assert_msg(p.crc == 0 && p.src == 0, "client %s server %s", zt_tls_conn_error(p.cli),
	              zt_tls_conn_error(p.srv));
	assert_peer(p.srv, CLI_URI);
	pair_close(&p);
	env_close(&e);
	fx_ca_clear(&inter);
}
END_TEST

START_TEST(client_conn_requires_an_expected_identity)
{
	struct env e;
	struct zt_tls_conn *c = (struct zt_tls_conn *)1;
	struct zt_spiffe exp[ZT_TLS_MAX_EXPECTED + 1];
	size_t i;

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	for (i = 0; i <= ZT_TLS_MAX_EXPECTED; i++)
		exp[i] = spiffe(SRV_URI);
	ck_assert_int_eq(zt_tls_conn_client_new(&c, e.cli, 0, e.cli_id, exp, 0), ZT_E_RANGE);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(
	        zt_tls_conn_client_new(&c, e.cli, 0, e.cli_id, exp, ZT_TLS_MAX_EXPECTED + 1),
	        ZT_E_RANGE);
	ck_assert_int_eq(zt_tls_conn_client_new(&c, e.cli, 0, e.cli_id, exp, ZT_TLS_MAX_EXPECTED),
	                 0);
	zt_tls_conn_free(c);
	zt_tls_conn_free(NULL);
	env_close(&e);
}
END_TEST

START_TEST(hot_swap_serves_new_identity_and_keeps_established_connection)
{
	struct env e;
	struct pair old, stale, fresh;
	struct zt_tls_identity *id2 = fx_identity(&root, SRV2_URI), *cur;
	const char *exp1[] = {SRV_URI}, *exp2[] = {SRV2_URI};
	char buf[8];

	env_open(&e, fx_identity(&root, SRV_URI), fx_identity(&root, CLI_URI));
	pair_open(&old, e.cli, e.srv, e.cli_id, exp1, 1);
	pair_handshake(&old);
	ck_assert(old.crc == 0 && old.src == 0);
	assert_peer(old.cli, SRV_URI);

	zt_tls_server_set_identity(e.srv, id2);
	cur = zt_tls_server_identity(e.srv);
	ck_assert_ptr_eq(cur, id2);
	zt_tls_identity_unref(cur);
	/* Drop our references: only the established connection keeps the old identity. */
	zt_tls_identity_unref(e.srv_id);
	e.srv_id = id2;

	pair_open(&stale, e.cli, e.srv, e.cli_id, exp1, 1);
	pair_handshake(&stale);
	ck_assert_int_eq(stale.crc, ZT_E_IDENTITY);
	pair_open(&fresh, e.cli, e.srv, e.cli_id, exp2, 1);
	pair_handshake(&fresh);
	ck_assert(fresh.crc == 0 && fresh.src == 0);
	assert_peer(fresh.cli, SRV2_URI);
	ck_assert_ptr_eq(zt_tls_conn_identity(fresh.srv), id2);

	/* The old connection still works in both directions with its own certificate. */
	ck_assert_ptr_ne(zt_tls_conn_identity(old.srv), id2);
	ck_assert_str_eq(zt_tls_identity_spiffe(zt_tls_conn_identity(old.srv))->sa, "server");
	write_all(old.cli, "after");
	expect_read(old.srv, old.fds[1], "after");
	write_all(old.srv, "swap");
	expect_read(old.cli, old.fds[0], "swap");
	ck_assert_int_eq(zt_tls_conn_shutdown(old.srv), 0);
	ck_assert_int_eq(read_wait(old.cli, old.fds[0], buf, sizeof(buf)), 0);

	pair_close(&old);
	pair_close(&stale);
	pair_close(&fresh);
	ck_assert_uint_eq(zt_tls_identity_live(), 2);
	env_close(&e);
}
END_TEST

/* ---- a plain OpenSSL client, for what our client never does ------------------------------ */

struct raw_opts {
	const struct fx_leaf *leaf; /* NULL: no client certificate */
	int max_version;            /* 0: TLS 1.3 */
	const char *alpn;           /* wire format; NULL: no ALPN extension */
	const char *sni;
	SSL_SESSION *session; /* offered for resumption */
};

struct raw {
	SSL_CTX *ctx;
	SSL *ssl;
	struct zt_tls_conn *srv;
	int fds[2];
	bool ok; /* the OpenSSL client completed its handshake */
	int src; /* the server's handshake result */
};

/* Handshakes a plain OpenSSL client (no server verification) against srv. */
static void raw_open(struct raw *r, struct zt_tls_server *srv, const struct raw_opts *o)
{
	int ret = -1, i;

	r->ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(r->ctx);
	SSL_CTX_set_max_proto_version(r->ctx, o->max_version ? o->max_version : TLS1_3_VERSION);
	if (o->leaf) {
		BIO *c = BIO_new_mem_buf(o->leaf->chain_pem, -1);
		BIO *k = BIO_new_mem_buf(o->leaf->key_pem, -1);
		X509 *x = PEM_read_bio_X509(c, NULL, NULL, NULL);
		EVP_PKEY *key = PEM_read_bio_PrivateKey(k, NULL, NULL, NULL);

		ck_assert_int_eq(SSL_CTX_use_certificate(r->ctx, x), 1);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey(r->ctx, key), 1);
		X509_free(x);
		EVP_PKEY_free(key);
		BIO_free(c);
		BIO_free(k);
	}
	if (o->alpn)
		ck_assert_int_eq(SSL_CTX_set_alpn_protos(r->ctx, (const unsigned char *)o->alpn,
		                                         (unsigned)strlen(o->alpn)),
		                 0);
	nonblocking_pair(r->fds);
	r->ssl = SSL_new(r->ctx);
	ck_assert_int_eq(SSL_set_fd(r->ssl, r->fds[0]), 1);
	SSL_set_connect_state(r->ssl);
	if (o->sni)
		ck_assert_int_eq(SSL_set_tlsext_host_name(r->ssl, o->sni), 1);
	if (o->session)
		ck_assert_int_eq(SSL_set_session(r->ssl, o->session), 1);
	ck_assert_int_eq(zt_tls_conn_server_new(&r->srv, srv, r->fds[1]), 0);
	r->src = -EAGAIN;
	for (i = 0; i < 100 && (ret < 0 || r->src == -EAGAIN); i++) {
		if (ret < 0) {
			ret = SSL_do_handshake(r->ssl);
			if (ret != 1) {
				int err = SSL_get_error(r->ssl, ret);

				ret = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? -1
				                                                                : 0;
			}
		}
		if (r->src == -EAGAIN)
			r->src = zt_tls_conn_handshake(r->srv);
		usleep(100);
	}
	r->ok = ret == 1;
}

static void raw_close(struct raw *r)
{
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	zt_tls_conn_free(r->srv);
	close(r->fds[0]);
	close(r->fds[1]);
}

struct srv_env {
	struct zt_tls_identity *id;
	struct zt_tls_server *srv;
	struct fx_leaf leaf; /* a valid client certificate */
};

static void srv_env_open(struct srv_env *e, const struct zt_tls_opts *opts)
{
	e->id = fx_identity(&root, SRV_URI);
	ck_assert_int_eq(zt_tls_server_new(&e->srv, e->id, opts), 0);
	fx_leaf_issue(&e->leaf, &root, &(struct fx_leaf_opts){.sans = "URI:" CLI_URI, .eku = 3});
}

static void srv_env_close(struct srv_env *e)
{
	fx_leaf_clear(&e->leaf);
	zt_tls_server_free(e->srv);
	zt_tls_identity_unref(e->id);
}

START_TEST(server_refuses_client_without_certificate)
{
	struct srv_env e;
	struct raw r;

	srv_env_open(&e, NULL);
	raw_open(&r, e.srv, &(struct raw_opts){.alpn = "\x02h2"});
	ck_assert_int_eq(r.src, ZT_E_TLS);
	ck_assert_str_eq(zt_tls_conn_error(r.srv), "peer did not return a certificate");
	raw_close(&r);
	srv_env_close(&e);
}
END_TEST

START_TEST(server_requires_h2_in_alpn)
{
	struct srv_env e;
	struct raw r;

	srv_env_open(&e, NULL);
	raw_open(&r, e.srv, &(struct raw_opts){.leaf = &e.leaf});
	ck_assert_int_eq(r.src, ZT_E_TLS);
	ck_assert(!r.ok);
	ck_assert_str_eq(zt_tls_conn_error(r.srv), "client offered no ALPN");
	raw_close(&r);

	raw_open(&r, e.srv, &(struct raw_opts){.leaf = &e.leaf, .alpn = "\x08http/1.1\x03h2c"});
	ck_assert_int_eq(r.src, ZT_E_TLS);
	ck_assert(!r.ok);
	ck_assert_str_eq(zt_tls_conn_error(r.srv), "client offered no h2 in ALPN");
	raw_close(&r);

	/* h2 anywhere in the client's list is enough. */
	raw_open(&r, e.srv, &(struct raw_opts){.leaf = &e.leaf, .alpn = "\x08http/1.1\x02h2"});
	ck_assert_int_eq(r.src, 0);
	ck_assert(r.ok);
	ck_assert_str_eq(zt_tls_conn_alpn(r.srv), "h2");
	raw_close(&r);
	srv_env_close(&e);
}
END_TEST

START_TEST(server_ignores_sni_from_client)
{
	struct srv_env e;
	struct raw r;

	srv_env_open(&e, NULL);
	raw_open(&r, e.srv,
	         &(struct raw_opts){.leaf = &e.leaf, .alpn = "\x02h2", .sni = "unrelated.example"});
	ck_assert_int_eq(r.src, 0);
	ck_assert(r.ok);
	ck_assert_ptr_eq(zt_tls_conn_identity(r.srv), e.id);
	raw_close(&r);
	srv_env_close(&e);
}
END_TEST

START_TEST(server_issues_no_session_ticket_and_never_resumes)
{
	struct srv_env e;
	struct raw r;
	SSL_SESSION *sess;
	char buf[8];
	int i, n = -1;

	srv_env_open(&e, NULL);
	raw_open(&r, e.srv, &(struct raw_opts){.leaf = &e.leaf, .alpn = "\x02h2"});
	ck_assert(r.ok && r.src == 0);
	/* Reading past the handshake processes any NewSessionTicket sent before the data. */
	write_all(r.srv, "x");
	for (i = 0; i < 100 && n <= 0; i++) {
		n = SSL_read(r.ssl, buf, sizeof(buf));
		usleep(100);
	}
	ck_assert_int_eq(n, 1);
	sess = SSL_get1_session(r.ssl);
	ck_assert_ptr_nonnull(sess);
	ck_assert_int_eq(SSL_SESSION_is_resumable(sess), 0);
	raw_close(&r);

	raw_open(&r, e.srv, &(struct raw_opts){.leaf = &e.leaf, .alpn = "\x02h2", .session = sess});
	ck_assert(r.ok && r.src == 0);
	ck_assert_int_eq(SSL_session_reused(zt_tls_conn_ssl(r.srv)), 0);
	assert_peer(r.srv, CLI_URI); /* the certificate was checked again */
	raw_close(&r);
	SSL_SESSION_free(sess);
	srv_env_close(&e);
}
END_TEST

START_TEST(tls12_is_refused_unless_allowed)
{
	struct srv_env e;
	struct raw r;
	struct raw_opts o = {.max_version = TLS1_2_VERSION, .alpn = "\x02h2"};

	srv_env_open(&e, NULL);
	o.leaf = &e.leaf;
	raw_open(&r, e.srv, &o);
	ck_assert_int_eq(r.src, ZT_E_TLS);
	ck_assert(!r.ok);
	ck_assert_str_eq(zt_tls_conn_error(r.srv), "unsupported protocol");
	raw_close(&r);
	srv_env_close(&e);

	srv_env_open(&e, &(struct zt_tls_opts){.allow_tls12 = true});
	o.leaf = &e.leaf;
	raw_open(&r, e.srv, &o);
	ck_assert_int_eq(r.src, 0);
	ck_assert(r.ok);
	ck_assert_int_eq(SSL_version(zt_tls_conn_ssl(r.srv)), TLS1_2_VERSION);
	assert_peer(r.srv, CLI_URI);
	raw_close(&r);
	srv_env_close(&e);
}
END_TEST

/* ---- control plane ---------------------------------------------------------------------- */

struct cp_env {
	struct fx_leaf leaf;
	struct zt_tls_server *srv;
	struct zt_tls_client *cli;
};

static void cp_env_open(struct cp_env *e, const char *sans, const struct fx_ca *trusted)
{
	fx_leaf_issue(&e->leaf, &root, &(struct fx_leaf_opts){.sans = sans, .eku = FX_SERVER_AUTH});
	ck_assert_int_eq(zt_tls_cp_server_new(&e->srv, e->leaf.chain_pem, strlen(e->leaf.chain_pem),
	                                      e->leaf.key_pem, strlen(e->leaf.key_pem), NULL),
	                 0);
	ck_assert_int_eq(
	        zt_tls_cp_client_new(&e->cli, trusted->root_pem, strlen(trusted->root_pem), NULL),
	        0);
}

static void cp_env_close(struct cp_env *e)
{
	zt_tls_client_unref(e->cli);
	zt_tls_server_free(e->srv);
	fx_leaf_clear(&e->leaf);
}

static void cp_pair_open(struct pair *p, struct cp_env *e, const char *host)
{
	nonblocking_pair(p->fds);
	ck_assert_int_eq(zt_tls_conn_cp_client_new(&p->cli, e->cli, p->fds[0], host), 0);
	ck_assert_int_eq(zt_tls_conn_server_new(&p->srv, e->srv, p->fds[1]), 0);
	p->crc = p->src = -EAGAIN;
}

START_TEST(cp_client_verifies_dns_and_ip_names_without_client_certificate)
{
	struct cp_env e;
	struct pair p;
	const char *hosts[] = {"istiod.istio-system.svc", "127.0.0.1", "::1"};

	cp_env_open(&e, "DNS:istiod.istio-system.svc,IP:127.0.0.1,IP:::1", &root);
	for (size_t i = 0; i < 3; i++) {
		cp_pair_open(&p, &e, hosts[i]);
		pair_handshake(&p);
		ck_assert_msg(p.crc == 0, "%s: %s", hosts[i], zt_tls_conn_error(p.cli));
		ck_assert_int_eq(p.src, 0);
		ck_assert_str_eq(zt_tls_conn_alpn(p.cli), "h2");
		ck_assert_ptr_null(zt_tls_conn_peer(p.srv));
		write_all(p.cli, "ping");
		expect_read(p.srv, p.fds[1], "ping");
		pair_close(&p);
	}
	cp_env_close(&e);
}
END_TEST

START_TEST(cp_client_refuses_wrong_name_and_foreign_root)
{
	struct cp_env e;
	struct pair p;

	cp_env_open(&e, "DNS:istiod.istio-system.svc,IP:127.0.0.1", &root);
	cp_pair_open(&p, &e, "evil.example");
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	ck_assert_msg(strstr(zt_tls_conn_error(p.cli), "server certificate for evil.example"), "%s",
	              zt_tls_conn_error(p.cli));
	pair_close(&p);
	cp_pair_open(&p, &e, "127.0.0.2");
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	pair_close(&p);
	cp_env_close(&e);

	cp_env_open(&e, "DNS:istiod.istio-system.svc", &other_root);
	cp_pair_open(&p, &e, "istiod.istio-system.svc");
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	ck_assert_msg(strstr(zt_tls_conn_error(p.cli), "unable to get local issuer"), "%s",
	              zt_tls_conn_error(p.cli));
	pair_close(&p);
	cp_env_close(&e);
}
END_TEST

START_TEST(cp_client_accepts_alternative_name_only_when_set)
{
	struct cp_env e;
	struct pair p;

	cp_env_open(&e, "DNS:istiod.istio-system.svc", &root);
	/* Dialled by IP, the certificate names only the DNS name: refused without alt. */
	cp_pair_open(&p, &e, "127.0.0.1");
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	pair_close(&p);
	cp_pair_open(&p, &e, "127.0.0.1");
	ck_assert_int_eq(zt_tls_conn_cp_set_alt_host(p.cli, "istiod.istio-system.svc"), 0);
	pair_handshake(&p);
	ck_assert_msg(p.crc == 0, "%s", zt_tls_conn_error(p.cli));
	ck_assert_int_eq(p.src, 0);
	pair_close(&p);
	/* A wrong alternative does not help. */
	cp_pair_open(&p, &e, "127.0.0.1");
	ck_assert_int_eq(zt_tls_conn_cp_set_alt_host(p.cli, "istiod.other.svc"), 0);
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	pair_close(&p);
	cp_env_close(&e);

	/* An IP alternative for a DNS host; a foreign root still fails. */
	cp_env_open(&e, "IP:10.1.2.3", &root);
	cp_pair_open(&p, &e, "istiod.example");
	ck_assert_int_eq(zt_tls_conn_cp_set_alt_host(p.cli, "10.1.2.3"), 0);
	ck_assert_int_eq(zt_tls_conn_cp_set_alt_host(p.cli, ""), ZT_E_RANGE);
	pair_handshake(&p);
	ck_assert_msg(p.crc == 0, "%s", zt_tls_conn_error(p.cli));
	pair_close(&p);
	cp_env_close(&e);
	cp_env_open(&e, "DNS:istiod.istio-system.svc", &other_root);
	cp_pair_open(&p, &e, "127.0.0.1");
	ck_assert_int_eq(zt_tls_conn_cp_set_alt_host(p.cli, "istiod.istio-system.svc"), 0);
	pair_handshake(&p);
	ck_assert_int_eq(p.crc, ZT_E_TLS);
	pair_close(&p);
	cp_env_close(&e);
}
END_TEST

START_TEST(cp_contexts_reject_bad_material)
{
	struct zt_tls_server *srv;
	struct zt_tls_client *cli;
	struct zt_tls_conn *c;
	struct fx_leaf a, b;

	fx_leaf_issue(&a, &root, &(struct fx_leaf_opts){.sans = "DNS:a", .eku = FX_SERVER_AUTH});
	fx_leaf_issue(&b, &root, &(struct fx_leaf_opts){.sans = "DNS:b", .eku = FX_SERVER_AUTH});
	ck_assert_int_eq(zt_tls_cp_server_new(&srv, a.chain_pem, strlen(a.chain_pem), b.key_pem,
	                                      strlen(b.key_pem), NULL),
	                 ZT_E_IDENTITY);
	ck_assert_ptr_null(srv);
	ck_assert_int_eq(zt_tls_cp_server_new(&srv, "junk", 4, a.key_pem, strlen(a.key_pem), NULL),
	                 ZT_E_PARSE);
	ck_assert_int_eq(
	        zt_tls_cp_server_new(&srv, a.chain_pem, strlen(a.chain_pem), "junk", 4, NULL),
	        ZT_E_PARSE);
	ck_assert_int_eq(zt_tls_cp_client_new(&cli, "junk", 4, NULL), ZT_E_PARSE);
	ck_assert_int_eq(zt_tls_cp_client_new(&cli, NULL, 0, NULL), 0);
	ck_assert_int_eq(zt_tls_conn_cp_client_new(&c, cli, 0, ""), ZT_E_RANGE);
	zt_tls_client_unref(cli);
	fx_leaf_clear(&a);
	fx_leaf_clear(&b);
}
END_TEST

Suite *tls_suite(void);
Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *id = tcase_create("identity");
	TCase *hs = tcase_create("handshake");
	TCase *raw = tcase_create("foreign_client");

	tcase_add_checked_fixture(id, setup, teardown);
	tcase_add_test(id, identity_exposes_spiffe_serial_and_validity);
	tcase_add_test(id, identity_rejects_bad_material);
	tcase_add_test(id, contexts_reject_unknown_key_exchange_group);
	suite_add_tcase(s, id);

	tcase_add_checked_fixture(hs, setup, teardown);
	tcase_add_test(hs, handshake_succeeds_with_tls13_h2_and_verified_identities);
	tcase_add_test(hs, data_flows_both_ways_and_close_notify_gives_eof);
	tcase_add_test(hs, quiet_connection_releases_record_buffers_busy_one_keeps_them);
	tcase_add_test(hs, io_before_handshake_is_a_state_error);
	tcase_add_test(hs, peer_closing_tcp_without_close_notify_is_reported);
	tcase_add_test(hs, client_accepts_server_matching_any_expected_identity);
	tcase_add_test(hs, client_refuses_server_identity_not_in_expected_list);
	tcase_add_test(hs, client_skips_unparsable_sans_when_matching_server);
	tcase_add_test(hs, client_refuses_server_signed_by_different_root);
	tcase_add_test(hs, client_refuses_server_without_server_auth_eku);
	tcase_add_test(hs, client_refuses_expired_server_certificate);
	tcase_add_test(hs, server_refuses_client_from_other_trust_domain);
	tcase_add_test(hs, server_reports_first_spiffe_san_when_a_later_one_is_in_its_trust_domain);
	tcase_add_test(hs, server_refuses_client_signed_by_different_root);
	tcase_add_test(hs, server_refuses_client_without_client_auth_eku);
	tcase_add_test(hs, chains_with_intermediates_verify_both_ways);
	tcase_add_test(hs, client_conn_requires_an_expected_identity);
	tcase_add_test(hs, hot_swap_serves_new_identity_and_keeps_established_connection);
	suite_add_tcase(s, hs);

	tcase_add_checked_fixture(raw, setup, teardown);
	tcase_add_test(raw, server_refuses_client_without_certificate);
	tcase_add_test(raw, server_requires_h2_in_alpn);
	tcase_add_test(raw, server_ignores_sni_from_client);
	tcase_add_test(raw, server_issues_no_session_ticket_and_never_resumes);
	tcase_add_test(raw, tls12_is_refused_unless_allowed);
	suite_add_tcase(s, raw);

	TCase *cp = tcase_create("control_plane");
	tcase_add_checked_fixture(cp, setup, teardown);
	tcase_add_test(cp, cp_client_verifies_dns_and_ip_names_without_client_certificate);
	tcase_add_test(cp, cp_client_refuses_wrong_name_and_foreign_root);
	tcase_add_test(cp, cp_client_accepts_alternative_name_only_when_set);
	tcase_add_test(cp, cp_contexts_reject_bad_material);
	suite_add_tcase(s, cp);
	return s;
}
