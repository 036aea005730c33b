/* The inbound half of a workload proxy on loopback: a proxy for default/local (127.0.0.1) with
 * certificates from a local CA, an echo server behind it, and HBONE clients from the pool
 * (the client workload "sleep" binds 127.0.0.3). CONNECT outcomes (200, 400, 401, 503), TLS
 * trust domains, policy changes on open connections, teardown, and telemetry. The plaintext
 * capture runs in a private network namespace (root only) with an iptables REDIRECT. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop_fixture.h"
#include "cert/local.h"
#include "cert/manager.h"
#include "config/config.h"
#include "protocol/ca.h"
#include "hbone/close.h"
#include "hbone/hbone.h"
#include "proxy/inbound.h"
#include "hbone/pool.h"
#include "proxy/proxy.h"
#include "hbone/relay.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "state/local.h"
#include "state/store.h"
#include "telemetry/metrics.h"

#define TD        "cluster.local"
#define LOCAL_ID  "spiffe://" TD "/ns/default/sa/local"
#define CLIENT_ID "spiffe://" TD "/ns/default/sa/sleep"
#define ECHO_HOST "echo.default.svc.cluster.local"
#define MAX_ECHO  16

struct echo_conn {
	int fd;
	struct zt_io io;
	uint8_t buf[65536];
	size_t len, off;
	bool eof;
};

static struct {
	bool skip;
	char dir[64];
	struct zt_ca *ca;
	struct zt_loop *loop;
	struct zt_cert_local *src;
	struct zt_certmgr *certs;
	struct zt_config cfg;
	struct zt_store *store;
	struct zt_metrics *metrics;
	struct zt_proxy_ctx ctx;
	struct zt_proxy *p;
	uint16_t hbone_port, inbound_port, outbound_port;
	struct zt_pool *pool;
	struct zt_tls_identity *client;
	struct zt_spiffe local_id, expect_id; /* the workload's identity; what clients expect */
	/* echo server */
	int echo_fd;
	struct zt_io echo_io;
	struct zt_sockaddr echo;
	struct echo_conn *echoes[MAX_ECHO];
	/* captured log lines */
	char log[1 << 17];
	size_t loglen;
} T;

/* ---- fixtures ---------------------------------------------------------------------------- */

static void on_line(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)level;
	(void)arg;
	if (T.loglen + len + 1 > sizeof(T.log))
		return;
	memcpy(T.log + T.loglen, line, len);
	T.loglen += len;
	T.log[T.loglen] = '\0';
}

/* The first access log line containing every one of the given strings, or NULL. */
static const char *log_line_with(const char *a, const char *b)
{
	static char line[8192];

	for (const char *s = T.log; *s;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		if (len < sizeof(line)) {
			memcpy(line, s, len);
			line[len] = '\0';
			if (strstr(line, a) && (!b || strstr(line, b)))
				return line;
		}
		s += len + (nl ? 1 : 0);
	}
	return NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static struct zt_sockaddr addr(const char *s)
{
	struct zt_sockaddr a;

	ck_assert_int_eq(zt_addr_parse(&a, s, strlen(s), 0), 0);
	return a;
}

/* ---- echo server ------------------------------------------------------------------------- */

static void echo_free(struct echo_conn *e)
{
	for (int i = 0; i < MAX_ECHO; i++)
		if (T.echoes[i] == e)
			T.echoes[i] = NULL;
	zt_io_stop(&e->io);
	close(e->fd);
	free(e);
}

static void echo_io(struct zt_io *io, unsigned events, void *arg)
{
	struct echo_conn *e = arg;

	(void)events;
	for (;;) {
		ssize_t n;
		if (e->off < e->len) {
			n = write(e->fd, e->buf + e->off, e->len - e->off);
			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0) {
				echo_free(e);
				return;
			}
			e->off += (size_t)n;
			continue;
		}
		e->off = e->len = 0;
		if (e->eof) {
			echo_free(e);
			return;
		}
		n = read(e->fd, e->buf, sizeof(e->buf));
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			echo_free(e);
			return;
		}
		if (n == 0)
			e->eof = true;
		e->len = (size_t)n;
	}
	zt_io_set(io, e->off < e->len ? ZT_IO_WRITE : ZT_IO_READ);
}

static void echo_accept(struct zt_io *io, unsigned events, void *arg)
{
	(void)events;
	(void)arg;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct echo_conn *e;
		int i;

		if (fd < 0)
			return;
		for (i = 0; i < MAX_ECHO && T.echoes[i]; i++)
			;
		ck_assert_int_lt(i, MAX_ECHO);
		e = calloc(1, sizeof(*e));
		ck_assert_ptr_nonnull(e);
		e->fd = fd;
		T.echoes[i] = e;
		ck_assert_int_eq(zt_io_start(T.loop, &e->io, fd, ZT_IO_READ, echo_io, e), 0);
	}
}

static size_t echo_conns(void)
{
	size_t n = 0;

	for (int i = 0; i < MAX_ECHO; i++)
		n += T.echoes[i] != NULL;
	return n;
}

static void echo_start(const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct zt_sockaddr a = {.port = 0};
	int one = 1;

	ck_assert_int_eq(zt_ip_parse(&a.ip, ip, strlen(ip)), 0);
	sl = zt_addr_to_sockaddr(&a, &ss);
	T.echo_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(T.echo_fd, 0);
	setsockopt(T.echo_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(T.echo_fd, (struct sockaddr *)&ss, sl), 0);
	ck_assert_int_eq(listen(T.echo_fd, 64), 0);
	sl = sizeof(ss);
	ck_assert_int_eq(getsockname(T.echo_fd, (struct sockaddr *)&ss, &sl), 0);
	ck_assert_int_eq(zt_addr_from_sockaddr(&T.echo, (struct sockaddr *)&ss, sl), 0);
	ck_assert_int_eq(zt_io_start(T.loop, &T.echo_io, T.echo_fd, ZT_IO_READ, echo_accept, NULL),
	                 0);
}

/* ---- mesh state -------------------------------------------------------------------------- */

enum { WITH_LOCAL = 1, ALLOW_OTHER = 2, DENY_SLEEP = 4, DENY_OTHER = 8, LOCAL_SA2 = 16 };

static int load_mesh(unsigned what)
{
	char path[128], text[4096], err[512] = "";
	size_t n = 0;
	FILE *f;
	int rc;

	if (what & WITH_LOCAL)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		                      "workloads:\n"
		                      "- uid: Kubernetes//Pod/default/local\n"
		                      "  name: local\n"
		                      "  namespace: default\n"
		                      "  serviceAccount: %s\n"
		                      "  workloadIps: [\"127.0.0.1\"]\n"
		                      "  protocol: HBONE\n"
		                      "  node: node-a\n"
		                      "  workloadName: local-deploy\n"
		                      "  canonicalName: local\n"
		                      "  canonicalRevision: v1\n"
		                      "  services: {\"default/" ECHO_HOST "\": {80: %u}}\n",
		                      what & LOCAL_SA2 ? "local2" : "local", T.echo.port);
	else
		n += (size_t)snprintf(text + n, sizeof(text) - n, "workloads:\n");
	n += (size_t)snprintf(text + n, sizeof(text) - n,
	                      "- uid: Kubernetes//Pod/default/sleep\n"
	                      "  name: sleep\n"
	                      "  namespace: default\n"
	                      "  serviceAccount: sleep\n"
	                      "  workloadIps: [\"127.0.0.3\"]\n"
	                      "  protocol: HBONE\n"
	                      "  node: node-b\n"
	                      "  workloadName: sleep-deploy\n"
	                      "  canonicalName: sleep\n"
	                      "services:\n"
	                      "- name: echo\n"
	                      "  namespace: default\n"
	                      "  hostname: " ECHO_HOST "\n"
	                      "  vips: [\"/127.10.0.1\"]\n"
	                      "  ports: {80: %u}\n",
	                      T.echo.port);
	if (what & (ALLOW_OTHER | DENY_SLEEP | DENY_OTHER))
		n += (size_t)snprintf(text + n, sizeof(text) - n, "policies:\n");
	if (what & ALLOW_OTHER)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		                      "- name: allow-other\n"
		                      "  namespace: default\n"
		                      "  scope: Namespace\n"
		                      "  action: Allow\n"
		                      "  rules:\n"
		                      "  - - - principals: [{Exact: " TD
		                      "/ns/default/sa/other}]\n");
	if (what & DENY_SLEEP)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		                      "- name: deny-sleep\n"
		                      "  namespace: default\n"
		                      "  scope: Namespace\n"
		                      "  action: Deny\n"
		                      "  rules:\n"
		                      "  - - - principals: [{Exact: " TD
		                      "/ns/default/sa/sleep}]\n");
	if (what & DENY_OTHER)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		                      "- name: deny-other\n"
		                      "  namespace: default\n"
		                      "  scope: Namespace\n"
		                      "  action: Deny\n"
		                      "  rules:\n"
		                      "  - - - principals: [{Exact: " TD
		                      "/ns/default/sa/other}]\n");
	ck_assert_uint_lt(n, sizeof(text));
	snprintf(path, sizeof(path), "%s/mesh.yaml", T.dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, n, f), n);
	fclose(f);
	rc = zt_local_xds_load(T.store, path, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	return rc;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static struct zt_tls_identity *issue(const char *uri)
{
	char *cert = NULL, *key = NULL, err[256] = "";
	const char *root = zt_ca_root_pem(T.ca);
	struct zt_tls_identity *id = NULL;

	ck_assert_msg(
	        zt_ca_issue(T.ca, NULL, 0, NULL, 0, uri, 3600, &cert, &key, err, sizeof(err)) == 0,
	        "%s", err);
	ck_assert_int_eq(
	        zt_tls_identity_new(&id, cert, strlen(cert), key, strlen(key), root, strlen(root)),
	        0);
	free(cert);
	free(key);
	return id;
}

static void start_proxy(void)
{
	struct zt_proxy_opts o = {
	        .bind_ip = "127.0.0.1",
	        .outbound_port = T.outbound_port,
	        .inbound_port = T.inbound_port,
	        .hbone_port = T.hbone_port,
	};
	char err[256] = "";

	ck_assert_msg(zt_proxy_new(&T.p, &T.ctx, "default", "local", "local", NULL, &o, err,
	                           sizeof(err)) == 0,
	              "%s", err);
}

static void setup_with(const char *mark, unsigned mesh)
{
	char *env[] = {"NODE_NAME=node-a",
	               "XDS_ADDRESS=",
	               "CA_ADDRESS=",
	               "PROXY_MODE=dedicated",
	               "PROXY_WORKLOAD_INFO=default/local/local",
	               "ENABLE_ORIG_SRC=false",
	               (char *)mark,
	               NULL};
	struct zt_certmgr_opts co;
	char err[512] = "";

	signal(SIGPIPE, SIG_IGN);
	zt_log_set_sink(on_line, NULL);
	zt_log_set_format(ZT_LOG_TEXT);
	ck_assert_int_eq(zt_log_set_spec("warn,access=info,inbound=info", NULL, 0), 0);
	snprintf(T.dir, sizeof(T.dir), "/tmp/zt-inbound-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(T.dir));
	ck_assert_msg(zt_ca_open(&T.ca, T.dir, true, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(zt_loop_new(&T.loop), 0);
	ck_assert_int_eq(zt_cert_local_new(&T.src, T.loop, T.ca, TD), 0);
	zt_certmgr_opts_init(&co);
	co.source = zt_cert_local_source(T.src);
	ck_assert_int_eq(zt_certmgr_new(&T.certs, T.loop, &co), 0);
	ck_assert_msg(zt_config_load(&T.cfg, env, err, sizeof(err)) == 0, "%s", err);
	T.store = zt_store_new();
	T.metrics = zt_metrics_new("test", 0);
	T.ctx = (struct zt_proxy_ctx){T.loop, {0}, T.store, T.certs, T.metrics};
	zt_proxy_settings_from_config(&T.ctx.set, &T.cfg);
	T.echo_fd = -1;
	echo_start(mark ? "127.0.0.2" : "127.0.0.1");
	load_mesh(mesh);
	T.hbone_port = free_port();
	T.inbound_port = free_port();
	T.outbound_port = free_port();
	ck_assert_int_eq(zt_spiffe_parse(&T.local_id, LOCAL_ID, strlen(LOCAL_ID)), 0);
	T.expect_id = T.local_id;
	T.client = issue(CLIENT_ID);
	ck_assert_int_eq(zt_pool_new(&T.pool, T.loop, NULL), 0);
	start_proxy();
}

static void setup(void)
{
	memset(&T, 0, sizeof(T));
	setup_with(NULL, WITH_LOCAL);
}

static void teardown(void)
{
	if (T.skip)
		return;
	zt_proxy_free(T.p);
	zt_pool_free(T.pool);
	for (int i = 0; i < 50 && (zt_inbound_live() || zt_relay_live()); i++)
		zt_loop_run_once(T.loop, 10);
	for (int i = 0; i < 5; i++)
		zt_loop_run_once(T.loop, 1);
	ck_assert_int_eq(zt_inbound_live(), 0);
	ck_assert_int_eq(zt_relay_live(), 0);
	for (int i = 0; i < MAX_ECHO; i++)
		if (T.echoes[i])
			echo_free(T.echoes[i]);
	zt_io_stop(&T.echo_io);
	if (T.echo_fd >= 0)
		close(T.echo_fd);
	zt_tls_identity_unref(T.client);
	zt_certmgr_free(T.certs);
	zt_cert_local_free(T.src);
	zt_metrics_free(T.metrics);
	zt_store_free(T.store);
	zt_config_clear(&T.cfg);
	zt_loop_free(T.loop);
	zt_ca_free(T.ca);
	nftw(T.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	zt_log_set_sink(NULL, NULL);
	zt_log_set_spec("info", NULL, 0);
}

/* ---- HBONE client ------------------------------------------------------------------------ */

struct cli {
	struct zt_pool_req *req;
	struct zt_hbone_req hreq;
	bool ready;
	int err;
	struct zt_h2_stream *st;
	int status;
	char baggage[512];
	const uint8_t *out;
	size_t out_len, sent;
	bool end_after, end_sent;
	uint8_t *in;
	size_t in_len, in_cap;
	bool ended, closed;
	uint32_t close_code;
};

static void cli_pump(struct cli *c)
{
	while (c->st && c->status == 200 && c->sent < c->out_len) {
		ssize_t n = zt_h2_stream_write(c->st, c->out + c->sent, c->out_len - c->sent);
		if (n <= 0)
			break;
		c->sent += (size_t)n;
	}
	if (c->st && c->status == 200 && c->sent == c->out_len && c->end_after && !c->end_sent) {
		c->end_sent = true;
		zt_h2_stream_end(c->st, NULL, 0);
	}
}

static void cli_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n, bool end,
                        void *arg)
{
	struct cli *c = arg;

	(void)st;
	(void)end;
	for (size_t i = 0; i < n; i++) {
		if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0)
			c->status = (int)strtol(h[i].value, NULL, 10);
		if (h[i].name_len == 7 && memcmp(h[i].name, "baggage", 7) == 0)
			snprintf(c->baggage, sizeof(c->baggage), "%.*s", (int)h[i].value_len,
			         h[i].value);
	}
	cli_pump(c);
}

static void cli_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct cli *c = arg;

	if (c->in_len + len > c->in_cap) {
		c->in_cap = (c->in_len + len) * 2;
		c->in = realloc(c->in, c->in_cap);
		ck_assert_ptr_nonnull(c->in);
	}
	memcpy(c->in + c->in_len, p, len);
	c->in_len += len;
	zt_h2_stream_consume(st, len);
}

static void cli_end(struct zt_h2_stream *st, void *arg)
{
	(void)st;
	((struct cli *)arg)->ended = true;
}

static void cli_writable(struct zt_h2_stream *st, void *arg)
{
	(void)st;
	cli_pump(arg);
}

static void cli_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	struct cli *c = arg;

	(void)st;
	c->closed = true;
	c->close_code = code;
	c->st = NULL;
}

static const struct zt_h2_stream_cbs cli_cbs = {
        .on_headers = cli_headers,
        .on_data = cli_data,
        .on_end = cli_end,
        .on_writable = cli_writable,
        .on_close = cli_close,
};

static void cli_ready(struct zt_h2_stream *st, const struct zt_pool_result *r, void *arg)
{
	struct cli *c = arg;

	c->ready = true;
	c->req = NULL;
	c->err = r->err;
	c->st = st;
}

static void cli_open_headers(struct cli *c, struct zt_tls_identity *id,
                             const struct zt_h2_header *h, size_t n)
{
	char a[64];
	struct zt_pool_key key = {.identity = id, .dst_ids = &T.expect_id, .n_dst_ids = 1};

	snprintf(a, sizeof(a), "127.0.0.1:%u", T.hbone_port);
	key.dst = addr(a);
	ck_assert_int_eq(zt_ip_parse(&key.src_ip, "127.0.0.3", 9), 0);
	ck_assert_int_eq(zt_pool_connect(T.pool, &key, h, n, &cli_cbs, c, cli_ready, c, &c->req),
	                 0);
}

/* A CONNECT to authority from the client identity. */
static void cli_open(struct cli *c, const char *authority)
{
	struct zt_hbone_authority t;
	struct zt_hbone_connect in = {.target = &t};

	ck_assert_int_eq(zt_hbone_authority_parse(&t, authority, strlen(authority)), 0);
	ck_assert_int_eq(zt_hbone_req_build(&c->hreq, &in), 0);
	cli_open_headers(c, T.client, c->hreq.h, c->hreq.n);
}

static void cli_clear(struct cli *c)
{
	free(c->in);
	memset(c, 0, sizeof(*c));
}

static char *echo_authority(char *buf, size_t len)
{
	snprintf(buf, len, "127.0.0.1:%u", T.echo.port);
	return buf;
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + (i >> 13));
	return p;
}

static struct zt_inbound_stats stats(void)
{
	struct zt_inbound_stats s;

	ck_assert_int_eq(zt_inbound_get_stats(T.p, &s), 0);
	return s;
}

/* The metrics text's first sample line of metric that contains want, or NULL. */
static char *metric_line(const char *metric, const char *want)
{
	static char line[8192];
	struct zt_buf out;
	const char *s;

	zt_buf_init(&out, 0);
	ck_assert_int_eq(zt_metrics_render(T.metrics, &out), 0);
	ck_assert_int_eq(zt_buf_append(&out, "", 1), 0);
	line[0] = '\0';
	for (s = (const char *)zt_buf_data(&out); *s;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		if (len < sizeof(line) && strncmp(s, metric, strlen(metric)) == 0 &&
		    s[strlen(metric)] == '{') {
			memcpy(line, s, len);
			line[len] = '\0';
			if (!want || strstr(line, want))
				break;
			line[0] = '\0';
		}
		s += len + (nl ? 1 : 0);
	}
	zt_buf_clear(&out);
	return line[0] ? line : NULL;
}

/* Opens a relayed CONNECT to the echo server and checks a short exchange. */
static void open_echo(struct cli *c)
{
	static const uint8_t hello[] = "hello through the mesh";
	char a[64];

	c->out = hello;
	c->out_len = sizeof(hello);
	cli_open(c, echo_authority(a, sizeof(a)));
	RUN_UNTIL(T.loop, c->in_len == sizeof(hello) || c->closed, 3000);
	ck_assert_int_eq(c->status, 200);
	ck_assert_mem_eq(c->in, hello, sizeof(hello));
}

/* ---- HBONE ------------------------------------------------------------------------------- */

START_TEST(hbone_relays_1mib_byte_exact_to_the_workload)
{
	struct cli c = {0};
	size_t len = 1u << 20;
	uint8_t *data = pattern(len);
	char a[64], want[128];
	const char *line;
	char *m;
	json_t *dump;

	c.out = data;
	c.out_len = len;
	c.end_after = true;
	cli_open(&c, echo_authority(a, sizeof(a)));
	RUN_UNTIL(T.loop, c.ended || c.closed, 8000);
	ck_assert_int_eq(c.err, 0);
	ck_assert_int_eq(c.status, 200);
	ck_assert(c.ended);
	ck_assert_uint_eq(c.in_len, len);
	ck_assert_mem_eq(c.in, data, len);
	/* The response describes the destination workload. */
	ck_assert_ptr_nonnull(strstr(c.baggage, "k8s.namespace.name=default"));
	ck_assert_ptr_nonnull(strstr(c.baggage, "service.name=local"));
	RUN_UNTIL(T.loop, zt_inbound_live() == 0, 3000);

	line = log_line_with("connection complete", NULL);
	ck_assert_msg(line, "no access log in:\n%s", T.log);
	snprintf(want, sizeof(want), "dst.addr=127.0.0.1:%u", T.hbone_port);
	ck_assert_ptr_nonnull(strstr(line, want));
	snprintf(want, sizeof(want), "dst.hbone_addr=127.0.0.1:%u", T.echo.port);
	ck_assert_ptr_nonnull(strstr(line, want));
	ck_assert_ptr_nonnull(strstr(line, "src.identity=" CLIENT_ID " "));
	ck_assert_ptr_nonnull(strstr(line, "dst.identity=" LOCAL_ID " "));
	ck_assert_ptr_nonnull(strstr(line, "src.workload=sleep "));
	ck_assert_ptr_nonnull(strstr(line, "dst.service=" ECHO_HOST " "));
	ck_assert_ptr_nonnull(strstr(line, "bytes_sent=1048576"));
	ck_assert_ptr_nonnull(strstr(line, "bytes_recv=1048576"));
	ck_assert_ptr_null(strstr(line, "error="));

	m = metric_line("istio_tcp_connections_opened_total", "reporter=\"destination\"");
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "source_principal=\"" CLIENT_ID "\""));
	ck_assert_ptr_nonnull(strstr(m, "destination_principal=\"" LOCAL_ID "\""));
	ck_assert_ptr_nonnull(strstr(m, "source_workload=\"sleep-deploy\""));
	ck_assert_ptr_nonnull(strstr(m, "destination_workload=\"local-deploy\""));
	ck_assert_ptr_nonnull(strstr(m, "destination_service=\"" ECHO_HOST "\""));
	ck_assert_ptr_nonnull(strstr(m, "connection_security_policy=\"mutual_tls\""));
	ck_assert_ptr_nonnull(strstr(m, "} 1"));
	m = metric_line("istio_tcp_received_bytes_total", "reporter=\"destination\"");
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "} 1048576"));
	ck_assert_ptr_null(metric_line("istio_tcp_connections_failed_total", NULL));
	ck_assert_uint_eq(stats().relayed, 1);
	ck_assert_uint_eq(stats().rejected, 0);

	/* The certificate served is the workload's. */
	dump = zt_inbound_dump(T.p);
	ck_assert_str_eq(json_string_value(json_object_get(dump, "certificate")), LOCAL_ID);
	json_decref(dump);
	free(data);
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_host_authority_resolves_the_service_target_port)
{
	struct cli c = {0};
	static const uint8_t msg[] = "by name";

	c.out = msg;
	c.out_len = sizeof(msg);
	cli_open(&c, ECHO_HOST ":80");
	RUN_UNTIL(T.loop, c.in_len == sizeof(msg) || c.closed, 3000);
	ck_assert_int_eq(c.status, 200);
	ck_assert_mem_eq(c.in, msg, sizeof(msg));
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_unknown_host_or_port_gets_503)
{
	struct cli c = {0}, d = {0};

	cli_open(&c, "other.default.svc.cluster.local:80");
	cli_open(&d, ECHO_HOST ":81");
	RUN_UNTIL(T.loop, c.status && d.status, 3000);
	ck_assert_int_eq(c.status, 503);
	ck_assert_int_eq(d.status, 503);
	ck_assert_uint_eq(stats().rejected, 2);
	ck_assert_uint_eq(echo_conns(), 0);
	cli_clear(&c);
	cli_clear(&d);
}
END_TEST

START_TEST(hbone_non_connect_method_gets_400)
{
	struct cli c = {0};
	char a[64];
	struct zt_h2_header h[4] = {
	        ZT_H2_HDR(":method", "POST"),
	        ZT_H2_HDR(":scheme", "https"),
	        ZT_H2_HDR(":path", "/"),
	        ZT_H2_HDR(":authority", echo_authority(a, sizeof(a))),
	};

	cli_open_headers(&c, T.client, h, 4);
	RUN_UNTIL(T.loop, c.status, 3000);
	ck_assert_int_eq(c.status, 400);
	ck_assert_uint_eq(stats().rejected, 1);
	ck_assert_uint_eq(stats().relayed, 0);
	ck_assert_ptr_nonnull(log_line_with("connection failed", "direction=inbound"));
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_authority_without_port_gets_400)
{
	struct cli c = {0};
	struct zt_h2_header h[2] = {
	        ZT_H2_HDR(":method", "CONNECT"),
	        ZT_H2_HDR(":authority", "127.0.0.1"),
	};

	cli_open_headers(&c, T.client, h, 2);
	RUN_UNTIL(T.loop, c.status, 3000);
	ck_assert_int_eq(c.status, 400);
	ck_assert_uint_eq(echo_conns(), 0);
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_authority_ip_of_another_pod_gets_400_ip_mismatch)
{
	struct cli c = {0};
	char a[64];

	snprintf(a, sizeof(a), "127.0.0.5:%u", T.echo.port);
	cli_open(&c, a);
	RUN_UNTIL(T.loop, c.status, 3000);
	ck_assert_int_eq(c.status, 400);
	ck_assert_ptr_nonnull(
	        log_line_with("connection failed", "ip mismatch: 127.0.0.5 != 127.0.0.1"));
	ck_assert_uint_eq(echo_conns(), 0);
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_target_on_our_own_ports_gets_503)
{
	struct cli c = {0}, d = {0};
	char a[64];

	cli_open(&c, "127.0.0.1:15008");
	snprintf(a, sizeof(a), "127.0.0.1:%u", T.inbound_port);
	cli_open(&d, a);
	RUN_UNTIL(T.loop, c.status && d.status, 3000);
	ck_assert_int_eq(c.status, 503);
	ck_assert_int_eq(d.status, 503);
	ck_assert_ptr_nonnull(
	        log_line_with("connection failed", "attempted recursive call to ourselves"));
	ck_assert_uint_eq(stats().accepted_plain, 0);
	cli_clear(&c);
	cli_clear(&d);
}
END_TEST

START_TEST(hbone_upstream_refusing_gets_503_with_connect_flag)
{
	struct cli c = {0};
	char a[64];
	char *m;

	snprintf(a, sizeof(a), "127.0.0.1:%u", free_port());
	cli_open(&c, a);
	RUN_UNTIL(T.loop, c.status, 3000);
	ck_assert_int_eq(c.status, 503);
	RUN_UNTIL(T.loop, zt_inbound_live() == 0, 3000);
	ck_assert_ptr_nonnull(log_line_with("connection complete", "Connection refused"));
	m = metric_line("istio_tcp_connections_failed_total", "response_flags=\"CONNECT\"");
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "} 1"));
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_principal_outside_allow_policy_gets_401)
{
	struct cli c = {0};
	char a[64];
	const char *line;
	char *m;

	load_mesh(WITH_LOCAL | ALLOW_OTHER);
	cli_open(&c, echo_authority(a, sizeof(a)));
	RUN_UNTIL(T.loop, c.status, 3000);
	ck_assert_int_eq(c.status, 401);
	ck_assert_uint_eq(echo_conns(), 0);
	RUN_UNTIL(T.loop, zt_inbound_live() == 0, 3000);
	line = log_line_with("connection complete", "error=");
	ck_assert_msg(line, "%s", T.log);
	ck_assert_ptr_nonnull(strstr(line, "allow policies exist, but none allowed"));
	ck_assert_ptr_nonnull(strstr(line, "src.identity=" CLIENT_ID " "));
	m = metric_line("istio_tcp_connections_failed_total", "reporter=\"destination\"");
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "response_flags=\"DENY\""));
	ck_assert_ptr_nonnull(strstr(m, "source_principal=\"" CLIENT_ID "\""));
	ck_assert_ptr_nonnull(strstr(m, "} 1"));
	ck_assert_uint_eq(stats().denied, 1);
	ck_assert_uint_eq(stats().relayed, 0);
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_allow_policy_naming_the_client_lets_it_through)
{
	struct cli c = {0};

	load_mesh(WITH_LOCAL | ALLOW_OTHER);
	/* Same policy set, but now the client is "other". */
	zt_tls_identity_unref(T.client);
	T.client = issue("spiffe://" TD "/ns/default/sa/other");
	open_echo(&c);
	ck_assert_uint_eq(stats().denied, 0);
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_client_from_another_trust_domain_is_refused_at_tls)
{
	struct cli c = {0};
	struct zt_tls_identity *foreign = issue("spiffe://other.example/ns/default/sa/sleep");
	char a[64];
	struct zt_hbone_authority t;
	struct zt_hbone_connect in = {.target = &t};

	echo_authority(a, sizeof(a));
	ck_assert_int_eq(zt_hbone_authority_parse(&t, a, strlen(a)), 0);
	ck_assert_int_eq(zt_hbone_req_build(&c.hreq, &in), 0);
	cli_open_headers(&c, foreign, c.hreq.h, c.hreq.n);
	RUN_UNTIL(T.loop, (c.ready && c.err < 0) || c.closed || stats().tls_failed, 5000);
	RUN_UNTIL(T.loop, (c.ready && c.err < 0) || c.closed, 5000);
	ck_assert_int_ne(c.status, 200);
	ck_assert_uint_eq(stats().tls_failed, 1);
	ck_assert_uint_eq(stats().streams, 0);
	ck_assert_uint_eq(echo_conns(), 0);
	zt_tls_identity_unref(foreign);
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_waits_for_the_local_workload_then_503)
{
	struct cli c = {0};
	char a[64];

	load_mesh(0);
	zt_inbound_set_workload_wait(T.p, 100);
	cli_open(&c, echo_authority(a, sizeof(a)));
	RUN_UNTIL(T.loop, c.status, 3000);
	ck_assert_int_eq(c.status, 503);
	ck_assert_ptr_nonnull(
	        log_line_with("connection failed", "workload default/local not found"));
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_stream_proceeds_when_the_local_workload_appears)
{
	struct cli c = {0};
	static const uint8_t msg[] = "late workload";
	char a[64];

	load_mesh(0);
	c.out = msg;
	c.out_len = sizeof(msg);
	cli_open(&c, echo_authority(a, sizeof(a)));
	RUN_UNTIL(T.loop, stats().streams == 1, 3000);
	for (int i = 0; i < 5; i++)
		zt_loop_run_once(T.loop, 5);
	ck_assert_int_eq(c.status, 0);
	ck_assert_uint_eq(stats().live, 1);
	load_mesh(WITH_LOCAL);
	RUN_UNTIL(T.loop, c.in_len == sizeof(msg), 3000);
	ck_assert_int_eq(c.status, 200);
	ck_assert_mem_eq(c.in, msg, sizeof(msg));
	cli_clear(&c);
}
END_TEST

START_TEST(hbone_serves_the_new_certificate_when_the_identity_changes)
{
	struct cli c = {0}, d = {0};
	const char *id2 = "spiffe://" TD "/ns/default/sa/local2";
	json_t *dump;

	open_echo(&c);
	/* Same pod (uid), new service account: new identity, fetched on the next accept while
	 * that connection is held, then swapped into the TLS server. */
	load_mesh(WITH_LOCAL | LOCAL_SA2);
	ck_assert_int_eq(zt_spiffe_parse(&T.expect_id, id2, strlen(id2)), 0);
	ck_assert_ptr_null(zt_certmgr_get(T.certs, &T.expect_id));
	open_echo(&d);
	ck_assert_uint_eq(stats().tls_failed, 0);
	dump = zt_inbound_dump(T.p);
	ck_assert_str_eq(json_string_value(json_object_get(dump, "certificate")), id2);
	json_decref(dump);
	/* The first connection keeps its identity and keeps working. */
	ck_assert(!c.closed);
	cli_clear(&c);
	cli_clear(&d);
}
END_TEST

START_TEST(policy_added_while_open_closes_the_connection)
{
	struct cli c = {0};
	json_t *dump, *conns;

	open_echo(&c);
	dump = zt_inbound_dump(T.p);
	conns = json_object_get(dump, "connections");
	ck_assert_uint_eq(json_array_size(conns), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(conns, 0), "identity")),
	                 CLIENT_ID);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(conns, 0), "state")),
	                 "relaying");
	json_decref(dump);

	load_mesh(WITH_LOCAL | DENY_SLEEP);
	RUN_UNTIL(T.loop, c.closed, 3000);
	ck_assert_uint_ne(c.close_code, 0);
	RUN_UNTIL(T.loop, zt_inbound_live() == 0 && echo_conns() == 0, 3000);
	ck_assert_ptr_nonnull(
	        log_line_with("connection complete", "connection closed due to policy change"));
	ck_assert_uint_eq(stats().policy_closed, 1);
	cli_clear(&c);
}
END_TEST

START_TEST(policy_change_that_still_allows_keeps_the_connection)
{
	struct cli c = {0};
	static const uint8_t more[] = "still here";
	size_t before;

	open_echo(&c);
	before = c.in_len;
	load_mesh(WITH_LOCAL | DENY_OTHER);
	c.out = more;
	c.out_len = sizeof(more);
	c.sent = 0;
	cli_pump(&c);
	RUN_UNTIL(T.loop, c.in_len == before + sizeof(more) || c.closed, 3000);
	ck_assert(!c.closed);
	ck_assert_mem_eq(c.in + before, more, sizeof(more));
	ck_assert_uint_eq(stats().policy_closed, 0);
	cli_clear(&c);
}
END_TEST

START_TEST(proxy_free_closes_live_connections)
{
	struct cli c = {0}, d = {0};

	open_echo(&c);
	open_echo(&d);
	ck_assert_uint_eq(stats().live, 2);
	zt_proxy_free(T.p);
	T.p = NULL;
	RUN_UNTIL(T.loop, c.closed && d.closed, 3000);
	RUN_UNTIL(T.loop, zt_inbound_live() == 0 && zt_relay_live() == 0 && echo_conns() == 0, 3000);
	ck_assert_ptr_nonnull(log_line_with("connection complete", zt_close_reason(ZT_CLOSE_STOPPED)));
	cli_clear(&c);
	cli_clear(&d);
}
END_TEST

START_TEST(plaintext_to_our_own_port_is_closed)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[16];
	ssize_t n = -1;

	a.sin_port = htons(T.inbound_port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	RUN_UNTIL(T.loop, (n = read(fd, buf, sizeof(buf))) >= 0 || errno != EAGAIN, 3000);
	/* Closed by the proxy: EOF or a reset, never data. */
	ck_assert(n == 0 || (n < 0 && errno == ECONNRESET));
	close(fd);
	ck_assert_uint_eq(stats().accepted_plain, 1);
	ck_assert_ptr_nonnull(
	        log_line_with("connection failed", "attempted recursive call to ourselves"));
	ck_assert_uint_eq(echo_conns(), 0);
}
END_TEST

/* ---- plaintext in a private network namespace -------------------------------------------- */

static void setup_netns(void)
{
	char cmd[256];

	memset(&T, 0, sizeof(T));
	if (geteuid() != 0) {
		T.skip = true;
		return;
	}
	ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
	ck_assert_int_eq(system("ip link set lo up"), 0);
	/* Marked sockets are the proxy's own: their connects are not captured again. */
	setup_with("PACKET_MARK=1337", WITH_LOCAL);
	snprintf(cmd, sizeof(cmd),
	         "iptables -t nat -A OUTPUT -p tcp -d 127.0.0.2 -m mark ! --mark 1337 "
	         "-j REDIRECT --to-ports %u",
	         T.inbound_port);
	ck_assert_int_eq(system(cmd), 0);
}

/* Sends msg to 127.0.0.2:<echo port> over plain TCP (captured to the inbound port) and reads
 * until EOF; returns what came back. */
static size_t plain_exchange(const uint8_t *msg, size_t len, uint8_t *back, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t sent = 0, got = 0;
	bool eof = false, shut = false;
	uint64_t deadline = now_ms() + 5000;

	a.sin_port = htons(T.echo.port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (!eof && now_ms() < deadline) {
		ssize_t n;
		if (sent < len && (n = write(fd, msg + sent, len - sent)) > 0)
			sent += (size_t)n;
		if (sent == len && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		n = read(fd, back + got, cap - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EAGAIN)
			eof = true;
		zt_loop_run_once(T.loop, 5);
	}
	close(fd);
	ck_assert(eof);
	return got;
}

START_TEST(plaintext_relays_to_the_original_destination)
{
	size_t len = 256u << 10;
	uint8_t *msg, *back;
	char want[128];
	const char *line;
	char *m;

	if (T.skip) {
		printf("plaintext_relays_to_the_original_destination: skipped, needs root\n");
		return;
	}
	msg = pattern(len);
	back = malloc(len);
	ck_assert_uint_eq(plain_exchange(msg, len, back, len), len);
	ck_assert_mem_eq(back, msg, len);
	RUN_UNTIL(T.loop, zt_inbound_live() == 0, 3000);
	ck_assert_uint_eq(stats().accepted_plain, 1);
	ck_assert_uint_eq(stats().relayed, 1);
	line = log_line_with("connection complete", NULL);
	ck_assert_msg(line, "%s", T.log);
	snprintf(want, sizeof(want), "dst.addr=127.0.0.2:%u", T.echo.port);
	ck_assert_ptr_nonnull(strstr(line, want));
	ck_assert_ptr_null(strstr(line, "src.identity"));
	ck_assert_ptr_null(strstr(line, "dst.hbone_addr"));
	m = metric_line("istio_tcp_connections_opened_total", "reporter=\"destination\"");
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "connection_security_policy=\"unknown\""));
	ck_assert_ptr_nonnull(strstr(m, "destination_workload=\"local-deploy\""));
	free(msg);
	free(back);
}
END_TEST

START_TEST(plaintext_denied_by_policy_is_closed)
{
	uint8_t back[64];
	char *m;

	if (T.skip) {
		printf("plaintext_denied_by_policy_is_closed: skipped, needs root\n");
		return;
	}
	/* An ALLOW policy naming a principal never matches a connection without identity. */
	load_mesh(WITH_LOCAL | ALLOW_OTHER);
	ck_assert_uint_eq(plain_exchange((const uint8_t *)"x", 1, back, sizeof(back)), 0);
	RUN_UNTIL(T.loop, zt_inbound_live() == 0, 3000);
	ck_assert_uint_eq(stats().denied, 1);
	ck_assert_uint_eq(echo_conns(), 0);
	ck_assert_ptr_nonnull(
	        log_line_with("connection complete", "allow policies exist, but none allowed"));
	m = metric_line("istio_tcp_connections_failed_total", "response_flags=\"DENY\"");
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(strstr(m, "connection_security_policy=\"unknown\""));
}
END_TEST

Suite *inbound_suite(void);
Suite *inbound_suite(void)
{
	Suite *s = suite_create("inbound");
	TCase *h = tcase_create("hbone");
	TCase *n = tcase_create("plaintext");

	tcase_add_checked_fixture(h, setup, teardown);
	tcase_set_timeout(h, 30);
	tcase_add_test(h, hbone_relays_1mib_byte_exact_to_the_workload);
	tcase_add_test(h, hbone_host_authority_resolves_the_service_target_port);
	tcase_add_test(h, hbone_unknown_host_or_port_gets_503);
	tcase_add_test(h, hbone_non_connect_method_gets_400);
	tcase_add_test(h, hbone_authority_without_port_gets_400);
	tcase_add_test(h, hbone_authority_ip_of_another_pod_gets_400_ip_mismatch);
	tcase_add_test(h, hbone_target_on_our_own_ports_gets_503);
	tcase_add_test(h, hbone_upstream_refusing_gets_503_with_connect_flag);
	tcase_add_test(h, hbone_principal_outside_allow_policy_gets_401);
	tcase_add_test(h, hbone_allow_policy_naming_the_client_lets_it_through);
	tcase_add_test(h, hbone_client_from_another_trust_domain_is_refused_at_tls);
	tcase_add_test(h, hbone_waits_for_the_local_workload_then_503);
	tcase_add_test(h, hbone_stream_proceeds_when_the_local_workload_appears);
	tcase_add_test(h, hbone_serves_the_new_certificate_when_the_identity_changes);
	tcase_add_test(h, policy_added_while_open_closes_the_connection);
	tcase_add_test(h, policy_change_that_still_allows_keeps_the_connection);
	tcase_add_test(h, proxy_free_closes_live_connections);
	tcase_add_test(h, plaintext_to_our_own_port_is_closed);
	suite_add_tcase(s, h);

	tcase_add_checked_fixture(n, setup_netns, teardown);
	tcase_set_timeout(n, 30);
	fx_add_root_test(n, "inbound", plaintext_relays_to_the_original_destination);
	fx_add_root_test(n, "inbound", plaintext_denied_by_policy_is_closed);
	suite_add_tcase(s, n);
	return s;
}
