/* Outbound half of the workload proxy (proxy/outbound.c) end to end on loopback. Capture needs
 * an iptables REDIRECT, so each test (Check forks one process per test) moves into a private
 * network namespace and redirects 127.0.1.0/24 to 15001 for every socket without mark 1337;
 * the proxy marks its own sockets with PACKET_MARK=1337. Behind it: a TCP echo server (plain
 * and passthrough upstreams) and in-process HBONE servers (mTLS + HTTP/2 CONNECT, echoing)
 * with identities from the same CA as the proxy's certificates. Needs root; without it every
 * test notes so and passes. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "loop_fixture.h"
#include "cert/local.h"
#include "cert/manager.h"
#include "protocol/ca.h"
#include "protocol/h2_listener.h"
#include "hbone/hbone.h"
#include "proxy/outbound.h"
#include "proxy/proxy.h"
#include "hbone/relay.h"
#include "runtime/buf.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/yaml.h"
#include "state/local.h"

#define ECHO_PORT   7777
#define CLIENT_ID   "spiffe://cluster.local/ns/default/sa/client"
#define ECHO_ID     "spiffe://cluster.local/ns/default/sa/echo"
#define IMPOSTER_ID "spiffe://cluster.local/ns/default/sa/evil"
#define MANY        200

/* Client default/client on node-a (127.0.0.1). 127.0.1.1 is nobody (passthrough); plain has no
 * tunnel, behind VIP 127.0.1.100:80; echo speaks HBONE, behind VIP 127.0.1.101:80; db speaks
 * HBONE but its 15008 is held by an impostor. */
static const char MESH[] =
        "workloads:\n"
        "- uid: Kubernetes//Pod/default/client\n"
        "  name: client\n"
        "  namespace: default\n"
        "  serviceAccount: client\n"
        "  workloadIps: [\"127.0.0.1\"]\n"
        "  protocol: HBONE\n"
        "  node: node-a\n"
        "  canonicalName: client\n"
        "  canonicalRevision: v1\n"
        "  workloadName: client-deploy\n"
        "  workloadType: deployment\n"
        "  locality: {region: r1, zone: z1}\n"
        "- uid: Kubernetes//Pod/default/plain\n"
        "  name: plain\n"
        "  namespace: default\n"
        "  serviceAccount: plain\n"
        "  workloadIps: [\"127.0.1.2\"]\n"
        "  protocol: TCP\n"
        "  services: {\"default/plain.default.svc.cluster.local\": {80: 7777}}\n"
        "- uid: Kubernetes//Pod/default/echo\n"
        "  name: echo\n"
        "  namespace: default\n"
        "  serviceAccount: echo\n"
        "  workloadIps: [\"127.0.1.3\"]\n"
        "  protocol: HBONE\n"
        "  workloadName: echo-deploy\n"
        "  canonicalName: echo\n"
        "  services: {\"default/echo.default.svc.cluster.local\": {80: 8080}}\n"
        "- uid: Kubernetes//Pod/default/db\n"
        "  name: db\n"
        "  namespace: default\n"
        "  serviceAccount: db\n"
        "  workloadIps: [\"127.0.1.4\"]\n"
        "  protocol: HBONE\n"
        "services:\n"
        "- {name: plain, namespace: default, hostname: plain.default.svc.cluster.local,\n"
        "   vips: [\"/127.0.1.100\"], ports: {80: 7777}}\n"
        "- {name: echo, namespace: default, hostname: echo.default.svc.cluster.local,\n"
        "   vips: [\"/127.0.1.101\"], ports: {80: 8080}}\n";

/* The same mesh before the client pod reached the store. */
static const char MESH_NO_CLIENT[] = "workloads:\n"
                                     "- uid: Kubernetes//Pod/default/plain\n"
                                     "  name: plain\n"
                                     "  namespace: default\n"
                                     "  workloadIps: [\"127.0.1.2\"]\n"
                                     "  protocol: TCP\n";

/* ---- access log capture ----------------------------------------------------------------- */

static char logbuf[1 << 20];
static size_t loglen;

static void sink(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)level;
	(void)arg;
	if (!memmem(line, len, "\taccess\t", 8) || loglen + len + 1 > sizeof(logbuf))
		return;
	memcpy(logbuf + loglen, line, len);
	loglen += len;
	logbuf[loglen] = '\0';
}

/* A copy of the first captured line containing every needle, or "" (static buffer). */
static const char *log_line(const char *a, const char *b)
{
	static char line[4096];
	const char *p = logbuf;

	line[0] = '\0';
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = '\0';
			if (strstr(line, a) && (!b || strstr(line, b)))
				return line;
		}
		p += n + (e ? 1 : 0);
	}
	line[0] = '\0';
	return line;
}

static int log_count(const char *needle)
{
	int n = 0;

	for (const char *p = logbuf; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* ---- the rig ---------------------------------------------------------------------------- */

struct hsrv {
	struct zt_tls_identity *id;
	struct zt_tls_server *tls;
	struct zt_h2_listener *l;
	int requests;
	int refuse;              /* CONNECTs still to refuse unprocessed (-1: every one) */
	uint16_t client_port[4]; /* TCP source port of each request's connection */
	char authority[128], forwarded[256], baggage[2048], traceparent[64];
};

static struct {
	char dir[64];
	struct zt_loop *loop;
	struct zt_config cfg;
	struct zt_store *store;
	struct zt_ca *ca;
	struct zt_cert_local *src;
	struct zt_certmgr *certs;
	struct zt_metrics *metrics;
	struct zt_proxy_ctx ctx;
	struct zt_proxy *proxy;
	struct hsrv hs[2];
	int echo_fd;
	pthread_t echo_th;
} T;

static char err[512];

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void run_ms(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end)
		zt_loop_run_once(T.loop, 5);
}

static long live(const char *name)
{
	const struct zt_live *l = zt_live_get(name);

	return l ? l->count : 0;
}

static void load_text(const char *yaml)
{
	struct zt_yaml_docs docs = {0};
	struct zt_local_config cfg = {0};

	ck_assert_msg(zt_yaml_parse("inline", yaml, strlen(yaml), &docs, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_msg(zt_local_xds_parse(docs.docs[0], "inline", &cfg, err, sizeof(err)) == 0, "%s",
	              err);
	ck_assert_msg(zt_local_xds_apply(T.store, &cfg, err, sizeof(err)) == 0, "%s", err);
	zt_local_config_clear(&cfg);
	zt_yaml_docs_clear(&docs);
}

static int sh(const char *cmd)
{
	char full[512];

	snprintf(full, sizeof(full), "PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH %s", cmd);
	return system(full);
}

/* Moves this test process into a new network namespace with the capture rule. */
static bool netns_up(void)
{
	const char *fork_mode = getenv("CK_FORK");

	if (getuid() != 0 || (fork_mode && strcmp(fork_mode, "no") == 0)) {
		printf("test_outbound: needs root and forked tests (network namespace); skipped\n");
		return false;
	}
	ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
	ck_assert_int_eq(sh("ip link set lo up"), 0);
	ck_assert_int_eq(sh("iptables -t nat -A OUTPUT -p tcp -m mark ! --mark 1337 "
	                    "-d 127.0.1.0/24 -j REDIRECT --to-ports 15001"),
	                 0);
	return true;
}

static void *echo_conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0, w; off < n; off += w)
			if ((w = write(fd, buf + off, (size_t)(n - off))) <= 0)
				goto out;
	shutdown(fd, SHUT_WR);
out:
	close(fd);
	return NULL;
}

static void *echo_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(T.echo_fd, NULL, NULL);
		pthread_t th;

		if (fd < 0)
			return NULL;
		pthread_create(&th, NULL, echo_conn_main, (void *)(intptr_t)fd);
		pthread_detach(th);
	}
}

static void echo_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(ECHO_PORT)};
	int one = 1;

	T.echo_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(T.echo_fd, 0);
	setsockopt(T.echo_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(T.echo_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(T.echo_fd, 128), 0);
	ck_assert_int_eq(pthread_create(&T.echo_th, NULL, echo_main, NULL), 0);
}

/* ---- HBONE servers: CONNECT to port 401 is refused with 401, anything else echoes ------- */
/* (unless told to refuse the next CONNECTs as a draining server does: GOAWAY, REFUSED_STREAM) */

static void hs_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	ck_assert_int_eq(zt_h2_stream_write_all(st, p, len), 0);
	zt_h2_stream_consume(st, len);
}

static void hs_end(struct zt_h2_stream *st, void *arg)
{
	(void)arg;
	zt_h2_stream_end(st, NULL, 0);
}

static const struct zt_h2_stream_cbs hs_stream_cbs = {.on_data = hs_data, .on_end = hs_end};

static void keep(char *dst, size_t size, const struct zt_h2_header *h)
{
	snprintf(dst, size, "%.*s", (int)h->value_len, h->value);
}

static void hs_request(struct zt_h2_conn *c, struct zt_h2_stream *st, const struct zt_h2_header *h,
                       size_t n, bool end, void *arg)
{
	struct hsrv *s = arg;
	struct zt_hbone_authority a;

	(void)end;
	if ((size_t)s->requests < sizeof(s->client_port) / sizeof(s->client_port[0])) {
		struct sockaddr_in peer;
		socklen_t sl = sizeof(peer);

		if (getpeername(zt_h2_conn_sock(c)->fd, (struct sockaddr *)&peer, &sl) == 0)
			s->client_port[s->requests] = ntohs(peer.sin_port);
	}
	s->requests++;
	if (s->refuse) {
		/* As a draining server: GOAWAY, and the stream refused unprocessed (RFC 9113
		 * §8.7). */
		s->refuse -= s->refuse > 0;
		zt_h2_conn_shutdown(c);
		zt_h2_stream_reset(st, NGHTTP2_REFUSED_STREAM);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct zt_slice name = zt_slice_make(h[i].name, h[i].name_len);
		if (zt_slice_equal(name, zt_slice_from_str(":authority")))
			keep(s->authority, sizeof(s->authority), &h[i]);
		else if (zt_slice_equal(name, zt_slice_from_str("forwarded")))
			keep(s->forwarded, sizeof(s->forwarded), &h[i]);
		else if (zt_slice_equal(name, zt_slice_from_str("baggage")))
			keep(s->baggage, sizeof(s->baggage), &h[i]);
		else if (zt_slice_equal(name, zt_slice_from_str("traceparent")))
			keep(s->traceparent, sizeof(s->traceparent), &h[i]);
	}
	if (zt_hbone_authority_parse(&a, s->authority, strlen(s->authority)) == 0 &&
	    a.port == 401) {
		zt_h2_stream_respond(st, 401, NULL, 0, true);
		return;
	}
	zt_h2_stream_set_cbs(st, &hs_stream_cbs, s);
	zt_h2_stream_respond(st, 200, NULL, 0, false);
}

static const struct zt_h2_conn_cbs hs_cbs = {.on_request = hs_request};

static void hs_start(struct hsrv *s, const char *addr, const char *uri)
{
	const char *root = zt_ca_root_pem(T.ca);
	char *cert = NULL, *key = NULL;
	struct zt_h2_listener_opts o = {.cbs = &hs_cbs, .arg = s};

	ck_assert_msg(
	        zt_ca_issue(T.ca, NULL, 0, NULL, 0, uri, 86400, &cert, &key, err, sizeof(err)) == 0,
	        "%s", err);
	ck_assert_int_eq(zt_tls_identity_new(&s->id, cert, strlen(cert), key, strlen(key), root,
	                                     strlen(root)),
	                 0);
	free(cert);
	free(key);
	ck_assert_int_eq(zt_tls_server_new(&s->tls, s->id, NULL), 0);
	o.tls = s->tls;
	ck_assert_msg(zt_h2_listener_new(&s->l, T.loop, addr, &o, err, sizeof(err)) == 0, "%s",
	              err);
}

/* ---- set-up and tear-down --------------------------------------------------------------- */

static bool rig_up(const char *workload_info, const char *mesh)
{
	char info[128];
	char *env[] = {"NODE_NAME=node-a",
	               "XDS_ADDRESS=",
	               "CA_ADDRESS=",
	               "PROXY_MODE=dedicated",
	               info,
	               "ENABLE_ORIG_SRC=false",
	               "PACKET_MARK=1337",
	               "LOCAL_XDS_PATH=",
	               NULL};
	struct zt_certmgr_opts co;
	struct zt_proxy_opts po = {.bind_ip = "127.0.0.1"};

	if (!netns_up())
		return false;
	signal(SIGPIPE, SIG_IGN);
	loglen = 0;
	logbuf[0] = '\0';
	zt_log_set_spec(getenv("ZT_TEST_LOG") ? getenv("ZT_TEST_LOG") : "off,access=info", NULL, 0);
	zt_log_set_sink(sink, NULL);
	snprintf(info, sizeof(info), "PROXY_WORKLOAD_INFO=%s", workload_info);
	ck_assert_msg(zt_config_load(&T.cfg, env, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(zt_loop_new(&T.loop), 0);
	T.store = zt_store_new();
	load_text(mesh);
	snprintf(T.dir, sizeof(T.dir), "/tmp/zt-outbound-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(T.dir));
	ck_assert_msg(zt_ca_open(&T.ca, T.dir, true, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(zt_cert_local_new(&T.src, T.loop, T.ca, "cluster.local"), 0);
	zt_certmgr_opts_init(&co);
	co.source = zt_cert_local_source(T.src);
	ck_assert_int_eq(zt_certmgr_new(&T.certs, T.loop, &co), 0);
	T.metrics = zt_metrics_new("test", 0);
	T.ctx = (struct zt_proxy_ctx){.loop = T.loop,
	                              .store = T.store,
	                              .certs = T.certs,
	                              .metrics = T.metrics};
	zt_proxy_settings_from_config(&T.ctx.set, &T.cfg);
	ck_assert_msg(zt_proxy_new(&T.proxy, &T.ctx, T.cfg.workload_info.ns,
	                           T.cfg.workload_info.name, T.cfg.workload_info.sa, NULL, &po, err,
	                           sizeof(err)) == 0,
	              "%s", err);
	echo_start();
	hs_start(&T.hs[0], "127.0.1.3:15008", ECHO_ID);
	hs_start(&T.hs[1], "127.0.1.4:15008", IMPOSTER_ID);
	return true;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static void rig_down(void)
{
	zt_proxy_free(T.proxy);
	T.proxy = NULL;
	run_ms(50);
	ck_assert_int_eq(live("proxy_outbound_conn"), 0);
	ck_assert_int_eq(zt_relay_live(), 0);
	for (int i = 0; i < 2; i++)
		zt_h2_listener_free(T.hs[i].l);
	run_ms(50);
	for (int i = 0; i < 2; i++) {
		zt_tls_server_free(T.hs[i].tls);
		zt_tls_identity_unref(T.hs[i].id);
	}
	zt_certmgr_free(T.certs);
	run_ms(20);
	ck_assert_uint_eq(zt_h2_conn_live(), 0);
	ck_assert_uint_eq(zt_h2_stream_live(), 0);
	zt_cert_local_free(T.src);
	zt_ca_free(T.ca);
	nftw(T.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	zt_metrics_free(T.metrics);
	zt_store_free(T.store);
	zt_config_clear(&T.cfg);
	zt_loop_free(T.loop);
	shutdown(T.echo_fd, SHUT_RDWR);
	pthread_join(T.echo_th, NULL);
	close(T.echo_fd);
	zt_log_set_sink(NULL, NULL);
	ck_assert_uint_eq(zt_tls_identity_live(), 0);
}

/* ---- clients (threads, so the loop keeps running in the test's main thread) ------------ */

struct client {
	const char *ip;
	uint16_t port;
	size_t len; /* bytes sent, expected back */
	bool shut;  /* shutdown(SHUT_WR) once everything went out */
	pthread_t th;
	atomic_bool done;
	int connect_err;
	size_t sent, got;
	bool match, eof, reset;
	uint16_t local_port;
	uint64_t elapsed_ms;
};

static uint8_t pat(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 12));
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(c->port)};
	socklen_t sl = sizeof(sin);
	uint64_t start = now_ms();
	uint8_t buf[32768];
	bool shut_done = false;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, c->ip, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		c->connect_err = errno;
		goto out;
	}
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	c->local_port = ntohs(sin.sin_port);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	c->match = true;
	while (now_ms() - start < 20000) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		if (c->sent == c->len && c->shut && !shut_done) {
			shutdown(fd, SHUT_WR);
			shut_done = true;
		}
		if (c->sent < c->len)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (pfd.revents & POLLOUT) {
			size_t n = c->len - c->sent < sizeof(buf) ? c->len - c->sent : sizeof(buf);
			for (size_t i = 0; i < n; i++)
				buf[i] = pat(c->sent + i);
			ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
			if (w > 0)
				c->sent += (size_t)w;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r > 0) {
				for (ssize_t i = 0; i < r; i++)
					if (buf[i] != pat(c->got + (size_t)i))
						c->match = false;
				c->got += (size_t)r;
			} else if (r == 0) {
				c->eof = true;
				break;
			} else if (errno != EAGAIN && errno != EINTR) {
				c->reset = true;
				break;
			}
		}
	}
	c->elapsed_ms = now_ms() - start;
	close(fd);
out:
	atomic_store(&c->done, true);
	return NULL;
}

static void client_start(struct client *c, const char *ip, uint16_t port, size_t len, bool shut)
{
	*c = (struct client){.ip = ip, .port = port, .len = len, .shut = shut};
	ck_assert_int_eq(pthread_create(&c->th, NULL, client_main, c), 0);
}

/* Runs the loop until the client is done, then until its connection is reaped. */
static void client_wait(struct client *c)
{
	uint64_t end = now_ms() + 25000;

	while (!atomic_load(&c->done) && now_ms() < end)
		zt_loop_run_once(T.loop, 5);
	ck_assert(atomic_load(&c->done));
	pthread_join(c->th, NULL);
	end = now_ms() + 5000;
	while (live("proxy_outbound_conn") > 0 && now_ms() < end)
		zt_loop_run_once(T.loop, 5);
	run_ms(20);
}

static void echo_through(const char *ip, uint16_t port, size_t len, struct client *c)
{
	client_start(c, ip, port, len, true);
	client_wait(c);
	ck_assert_int_eq(c->connect_err, 0);
	ck_assert(c->eof);
	ck_assert_uint_eq(c->sent, len);
	ck_assert_uint_eq(c->got, len);
	ck_assert(c->match);
}

static json_t *counters(void)
{
	json_t *d = zt_outbound_dump(T.proxy);
	json_t *c = json_incref(json_object_get(d, "counters"));

	json_decref(d);
	return c;
}

static json_int_t counter(json_t *c, const char *name)
{
	return json_integer_value(json_object_get(c, name));
}

static char *metrics_text(void)
{
	struct zt_buf b;
	char *s;

	zt_buf_init(&b, 0);
	ck_assert_int_eq(zt_metrics_render(T.metrics, &b), 0);
	s = strndup((const char *)zt_buf_data(&b), zt_buf_len(&b));
	zt_buf_clear(&b);
	return s;
}

/* The first sample line of family with every needle, or NULL (pointer into text, cut). */
static char *metric_line(char *text, const char *family, const char *a, const char *b)
{
	for (char *p = text; p && *p;) {
		char *e = strchr(p, '\n');
		if (e)
			*e = '\0';
		bool hit = strncmp(p, family, strlen(family)) == 0 && p[strlen(family)] == '{' &&
		           strstr(p, a) && (!b || strstr(p, b));
		if (e)
			*e = '\n';
		if (hit) {
			if (e)
				*e = '\0';
			return p;
		}
		p = e ? e + 1 : NULL;
	}
	return NULL;
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(passthrough_to_unknown_destination_echoes_one_mib_exactly)
{
	struct client c;
	json_t *cnt;

	if (!rig_up("default/client/client", MESH))
		return;
	echo_through("127.0.1.1", ECHO_PORT, 1 << 20, &c);
	ck_assert_str_ne(log_line("connection complete", "dst.addr=127.0.1.1:7777"), "");
	ck_assert_ptr_null(strstr(log_line("connection complete", NULL), "dst.hbone_addr"));
	ck_assert_ptr_nonnull(strstr(log_line("connection complete", NULL), "bytes_sent=1048576 "));
	ck_assert_ptr_null(strstr(log_line("connection complete", NULL), "error="));
	cnt = counters();
	ck_assert_int_eq(counter(cnt, "accepted"), 1);
	ck_assert_int_eq(counter(cnt, "passthrough"), 1);
	ck_assert_int_eq(counter(cnt, "failed"), 0);
	json_decref(cnt);
	rig_down();
}
END_TEST

START_TEST(tunnel_none_workload_gets_plain_tcp_to_the_target_port)
{
	struct client c;
	const char *l;
	json_t *cnt;

	if (!rig_up("default/client/client", MESH))
		return;
	/* VIP 127.0.1.100:80 -> plain pod, service port 80 -> target port 7777. */
	echo_through("127.0.1.100", 80, 64 << 10, &c);
	l = log_line("connection complete", NULL);
	ck_assert_ptr_nonnull(strstr(l, " dst.addr=127.0.1.2:7777 "));
	ck_assert_ptr_nonnull(strstr(l, " dst.service=plain.default.svc.cluster.local "));
	ck_assert_ptr_nonnull(strstr(l, " dst.workload=plain "));
	ck_assert_ptr_null(strstr(l, "identity="));
	ck_assert_ptr_null(strstr(l, "hbone_addr"));
	cnt = counters();
	ck_assert_int_eq(counter(cnt, "plain"), 1);
	json_decref(cnt);
	rig_down();
}
END_TEST

START_TEST(hbone_connect_carries_authority_forwarded_baggage_and_echoes)
{
	struct client c;
	struct hsrv *s = &T.hs[0];
	struct zt_hbone_meta m = {0};
	char fwd[128];

	if (!rig_up("default/client/client", MESH))
		return;
	echo_through("127.0.1.101", 80, 256 << 10, &c);
	ck_assert_int_eq(s->requests, 1);
	ck_assert_str_eq(s->authority, "127.0.1.3:8080");
	snprintf(fwd, sizeof(fwd), "for=\"127.0.0.1:%u\";host=echo.default.svc.cluster.local",
	         c.local_port);
	ck_assert_str_eq(s->forwarded, fwd);
	ck_assert(zt_hbone_baggage_parse(&m, s->baggage, strlen(s->baggage)));
	ck_assert_str_eq(m.cluster, "Kubernetes");
	ck_assert_str_eq(m.ns, "default");
	ck_assert_int_eq(m.wl_type, ZT_HBONE_WL_DEPLOYMENT);
	ck_assert_str_eq(m.workload, "client-deploy");
	ck_assert_str_eq(m.service, "client");
	ck_assert_str_eq(m.version, "v1");
	ck_assert_str_eq(m.region, "r1");
	ck_assert_str_eq(m.zone, "z1");
	ck_assert_uint_eq(strlen(s->traceparent), ZT_HBONE_TRACEPARENT_LEN);
	rig_down();
}
END_TEST

START_TEST(access_log_of_an_hbone_flow_has_the_reference_fields)
{
	struct client c;
	char want[512];
	const char *l;

	if (!rig_up("default/client/client", MESH))
		return;
	echo_through("127.0.1.101", 80, 1000, &c);
	l = log_line("\tinfo\taccess\tconnection complete ", NULL);
	snprintf(want, sizeof(want),
	         "connection complete src.addr=127.0.0.1:%u src.workload=client "
	         "src.namespace=default src.identity=" CLIENT_ID " src.cluster=Kubernetes "
	         "dst.addr=127.0.1.3:15008 dst.hbone_addr=127.0.1.3:8080 "
	         "dst.service=echo.default.svc.cluster.local dst.workload=echo "
	         "dst.namespace=default dst.identity=" ECHO_ID " dst.cluster=Kubernetes "
	         "direction=outbound bytes_sent=1000 bytes_recv=1000 duration=",
	         c.local_port);
	ck_assert_msg(strstr(l, want), "got: %s\nwant: %s", l, want);
	ck_assert_ptr_null(strstr(l, "error="));
	ck_assert_int_eq(log_count("connection complete"), 1);
	rig_down();
}
END_TEST

START_TEST(metrics_count_the_flow_with_source_reporter_and_mutual_tls)
{
	struct client c;
	char *text, *line;

	if (!rig_up("default/client/client", MESH))
		return;
	echo_through("127.0.1.101", 80, 1000, &c);
	text = metrics_text();
	line = metric_line(text, "istio_tcp_connections_opened_total", "reporter=\"source\"",
	                   "destination_workload=\"echo-deploy\"");
	ck_assert_msg(line, "%s", text);
	ck_assert_ptr_nonnull(strstr(line, "source_workload=\"client-deploy\""));
	ck_assert_ptr_nonnull(strstr(line, "source_principal=\"" CLIENT_ID "\""));
	ck_assert_ptr_nonnull(strstr(line, "destination_principal=\"" ECHO_ID "\""));
	ck_assert_ptr_nonnull(
	        strstr(line, "destination_service=\"echo.default.svc.cluster.local\""));
	ck_assert_ptr_nonnull(strstr(line, "connection_security_policy=\"mutual_tls\""));
	ck_assert_ptr_nonnull(strstr(line, "response_flags=\"-\""));
	ck_assert_ptr_nonnull(strstr(line, "} 1"));
	free(text);
	text = metrics_text();
	line = metric_line(text, "istio_tcp_received_bytes_total", "reporter=\"source\"", NULL);
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_nonnull(strstr(line, "} 1000"));
	free(text);
	text = metrics_text();
	ck_assert_ptr_nonnull(metric_line(text, "istio_tcp_connections_closed_total",
	                                  "reporter=\"source\"", NULL));
	ck_assert_ptr_null(
	        metric_line(text, "istio_tcp_connections_failed_total", "reporter", NULL));
	free(text);
	text = metrics_text();
	ck_assert_ptr_nonnull(strstr(text, "istio_tcp_sockets_open{reporter=\"source\"} 0"));
	free(text);
	rig_down();
}
END_TEST

START_TEST(non_200_closes_the_downstream_and_logs_the_status)
{
	struct client c;
	char *text;

	if (!rig_up("default/client/client", MESH))
		return;
	client_start(&c, "127.0.1.3", 401, 0, false); /* the server refuses port 401 */
	client_wait(&c);
	ck_assert(c.eof || c.reset);
	ck_assert_uint_lt(c.elapsed_ms, 5000);
	ck_assert_int_eq(T.hs[0].requests, 1);
	ck_assert_str_eq(T.hs[0].authority, "127.0.1.3:401");
	ck_assert_str_ne(
	        log_line("\terror\taccess\tconnection complete ", "error=\"http status: 401\""),
	        "");
	text = metrics_text();
	ck_assert_ptr_nonnull(metric_line(text, "istio_tcp_connections_failed_total",
	                                  "response_flags=\"CONNECT\"", NULL));
	free(text);
	rig_down();
}
END_TEST

START_TEST(server_with_the_wrong_identity_fails_with_identity_error)
{
	struct client c;
	char *text;
	json_t *cnt;

	if (!rig_up("default/client/client", MESH))
		return;
	client_start(&c, "127.0.1.4", 5432, 0, false);
	client_wait(&c);
	ck_assert(c.eof || c.reset);
	ck_assert_int_eq(T.hs[1].requests, 0);
	ck_assert_str_ne(
	        log_line("\terror\taccess\tconnection complete ", "dst.addr=127.0.1.4:15008"), "");
	ck_assert_str_ne(log_line("connection complete", "error="), "");
	text = metrics_text();
	ck_assert_ptr_nonnull(metric_line(text, "istio_tcp_connections_failed_total",
	                                  "response_flags=\"IDENTITY_ERROR\"", NULL));
	free(text);
	cnt = counters();
	ck_assert_int_eq(counter(cnt, "hbone"), 1);
	ck_assert_int_eq(counter(cnt, "failed"), 1);
	json_decref(cnt);
	rig_down();
}
END_TEST

START_TEST(loopback_to_an_illegal_port_is_denied)
{
	struct client c;
	char *text;
	json_t *cnt;

	if (!rig_up("default/client/client", MESH))
		return;
	client_start(&c, "127.0.1.9", 15008, 0, false);
	client_wait(&c);
	ck_assert(c.eof || c.reset);
	ck_assert_str_ne(log_line("\twarn\taccess\tconnection failed ",
	                          "error=\"attempted recursive call to ourselves\""),
	                 "");
	ck_assert_int_eq(log_count("connection complete"), 0);
	text = metrics_text();
	ck_assert_ptr_nonnull(metric_line(text, "istio_tcp_connections_failed_total",
	                                  "response_flags=\"DENY\"", NULL));
	ck_assert_ptr_null(
	        metric_line(text, "istio_tcp_connections_opened_total", "reporter", NULL));
	free(text);
	cnt = counters();
	ck_assert_int_eq(counter(cnt, "denied"), 1);
	ck_assert_int_eq(counter(cnt, "failed"), 0);
	json_decref(cnt);
	rig_down();
}
END_TEST

START_TEST(refused_plain_connect_closes_with_connect_flag)
{
	struct client c;
	char *text;

	if (!rig_up("default/client/client", MESH))
		return;
	client_start(&c, "127.0.1.1", ECHO_PORT + 1, 0, false); /* nobody listens there */
	client_wait(&c);
	ck_assert(c.eof || c.reset);
	ck_assert_str_ne(log_line("connection complete", "error=\"connect: Connection refused\""),
	                 "");
	text = metrics_text();
	ck_assert_ptr_nonnull(metric_line(text, "istio_tcp_connections_failed_total",
	                                  "response_flags=\"CONNECT\"", NULL));
	free(text);
	rig_down();
}
END_TEST

START_TEST(unknown_source_workload_closes_after_five_seconds)
{
	struct client c;

	if (!rig_up("default/ghost/ghost", MESH))
		return;
	client_start(&c, "127.0.1.1", ECHO_PORT, 0, false);
	client_wait(&c);
	ck_assert(c.eof || c.reset);
	ck_assert_uint_ge(c.elapsed_ms, 4900);
	ck_assert_uint_lt(c.elapsed_ms, 8000);
	ck_assert_str_ne(log_line("connection failed", "error=\"unknown source workload\""), "");
	ck_assert_ptr_nonnull(
	        strstr(log_line("connection failed", NULL), "dst.addr=127.0.1.1:7777"));
	rig_down();
}
END_TEST

START_TEST(source_workload_arriving_during_the_wait_is_used)
{
	struct client c;

	if (!rig_up("default/client/client", MESH_NO_CLIENT))
		return;
	client_start(&c, "127.0.1.1", ECHO_PORT, 4096, true);
	run_ms(400);
	ck_assert(!atomic_load(&c.done));
	load_text(MESH);
	client_wait(&c);
	ck_assert(c.eof);
	ck_assert_uint_eq(c.got, 4096);
	ck_assert(c.match);
	ck_assert_uint_ge(c.elapsed_ms, 400);
	ck_assert_str_ne(log_line("connection complete", "src.workload=client"), "");
	rig_down();
}
END_TEST

/* 200 connections held open at once through one HBONE destination, then the proxy stops. */
static struct {
	atomic_bool ready, done;
	atomic_int echoed, closed;
} M;

static void *many_main(void *arg)
{
	int fds[MANY];
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
	struct timeval tv = {.tv_sec = 20};

	(void)arg;
	inet_pton(AF_INET, "127.0.1.101", &sin.sin_addr);
	for (int i = 0; i < MANY; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)) < 0)
			goto out;
		send(fds[i], "ping", 4, MSG_NOSIGNAL);
	}
	for (int i = 0; i < MANY; i++) {
		char buf[4];
		size_t got = 0;
		ssize_t r;
		while (got < 4 && (r = recv(fds[i], buf + got, 4 - got, 0)) > 0)
			got += (size_t)r;
		if (got == 4 && memcmp(buf, "ping", 4) == 0)
			atomic_fetch_add(&M.echoed, 1);
	}
	atomic_store(&M.ready, true);
	for (int i = 0; i < MANY; i++) {
		char b;
		if (recv(fds[i], &b, 1, 0) <= 0)
			atomic_fetch_add(&M.closed, 1);
		close(fds[i]);
	}
out:
	atomic_store(&M.done, true);
	return NULL;
}

START_TEST(concurrent_connections_share_two_pooled_connections_and_stop_closes_them)
{
	struct zt_pool_stats ps;
	pthread_t th;
	uint64_t end;
	json_t *d, *out;

	if (!rig_up("default/client/client", MESH))
		return;
	ck_assert_int_eq(pthread_create(&th, NULL, many_main, NULL), 0);
	end = now_ms() + 30000;
	while (!atomic_load(&M.ready) && !atomic_load(&M.done) && now_ms() < end)
		zt_loop_run_once(T.loop, 5);
	ck_assert(atomic_load(&M.ready));
	ck_assert_int_eq(atomic_load(&M.echoed), MANY);
	zt_pool_get_stats(T.proxy->pool, &ps);
	ck_assert_uint_eq(ps.streams, MANY);
	ck_assert_uint_eq(ps.connects, 2);
	ck_assert_uint_eq(ps.connections, 2);
	ck_assert_int_eq(T.hs[0].requests, MANY);

	d = zt_proxy_dump(T.proxy);
	out = json_object_get(d, "outbound");
	ck_assert_uint_eq(json_array_size(json_object_get(out, "connections")), MANY);
	json_t *first = json_array_get(json_object_get(out, "connections"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(first, "route")), "hbone");
	ck_assert_str_eq(json_string_value(json_object_get(first, "state")), "relaying");
	ck_assert_str_eq(json_string_value(json_object_get(first, "nextHop")), "127.0.1.3:15008");
	ck_assert_str_eq(json_string_value(json_object_get(first, "dst")), "127.0.1.101:80");
	ck_assert_int_eq(json_integer_value(json_object_get(first, "bytesUp")), 4);
	ck_assert_int_eq(
	        json_integer_value(json_object_get(json_object_get(out, "counters"), "hbone")),
	        MANY);
	json_decref(d);

	zt_proxy_free(T.proxy);
	T.proxy = NULL;
	end = now_ms() + 20000;
	while (!atomic_load(&M.done) && now_ms() < end)
		zt_loop_run_once(T.loop, 5);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&M.closed), MANY);
	RUN_UNTIL(T.loop, live("proxy_outbound_conn") == 0, 5000);
	ck_assert_int_eq(log_count("error=\"connection closed: workload proxy stopped\""), MANY);
	rig_down();
}
END_TEST

START_TEST(connect_refused_unprocessed_is_opened_once_more_on_a_new_connection)
{
	struct zt_pool_stats ps;
	struct client c;
	json_t *cnt;

	if (!rig_up("default/client/client", MESH))
		return;
	T.hs[0].refuse = 1;
	echo_through("127.0.1.101", 80, 64 << 10, &c);
	ck_assert_int_eq(T.hs[0].requests, 2);
	/* The refusing connection was draining: the second CONNECT went on a new one. */
	ck_assert_uint_ne(T.hs[0].client_port[0], T.hs[0].client_port[1]);
	zt_pool_get_stats(T.proxy->pool, &ps);
	ck_assert_uint_eq(ps.connects, 2);
	ck_assert_str_eq(log_line("connection complete", "error="), "");
	cnt = counters();
	ck_assert_int_eq(counter(cnt, "hbone"), 1);
	ck_assert_int_eq(counter(cnt, "failed"), 0);
	json_decref(cnt);
	rig_down();
}
END_TEST

START_TEST(connect_refused_unprocessed_twice_fails_without_a_third_attempt)
{
	struct client c;

	if (!rig_up("default/client/client", MESH))
		return;
	T.hs[0].refuse = -1;
	client_start(&c, "127.0.1.101", 80, 0, false);
	client_wait(&c);
	ck_assert(c.eof || c.reset);
	ck_assert_uint_eq(c.got, 0);
	ck_assert_int_eq(T.hs[0].requests, 2);
	ck_assert_str_ne(log_line("\terror\taccess\tconnection complete ",
	                          "error=\"stream closed before the response (REFUSED_STREAM)\""),
	                 "");
	rig_down();
}
END_TEST

Suite *outbound_suite(void);
Suite *outbound_suite(void)
{
	Suite *s = suite_create("outbound");
	TCase *tc = tcase_create("outbound");

	tcase_set_timeout(tc, 60);
	fx_add_root_test(tc, "outbound", passthrough_to_unknown_destination_echoes_one_mib_exactly);
	fx_add_root_test(tc, "outbound", tunnel_none_workload_gets_plain_tcp_to_the_target_port);
	fx_add_root_test(tc, "outbound", hbone_connect_carries_authority_forwarded_baggage_and_echoes);
	fx_add_root_test(tc, "outbound", access_log_of_an_hbone_flow_has_the_reference_fields);
	fx_add_root_test(tc, "outbound", metrics_count_the_flow_with_source_reporter_and_mutual_tls);
	fx_add_root_test(tc, "outbound", non_200_closes_the_downstream_and_logs_the_status);
	fx_add_root_test(tc, "outbound", server_with_the_wrong_identity_fails_with_identity_error);
	fx_add_root_test(tc, "outbound", loopback_to_an_illegal_port_is_denied);
	fx_add_root_test(tc, "outbound", refused_plain_connect_closes_with_connect_flag);
	fx_add_root_test(tc, "outbound", unknown_source_workload_closes_after_five_seconds);
	fx_add_root_test(tc, "outbound", source_workload_arriving_during_the_wait_is_used);
	fx_add_root_test(tc, "outbound", concurrent_connections_share_two_pooled_connections_and_stop_closes_them);
	fx_add_root_test(tc, "outbound", connect_refused_unprocessed_is_opened_once_more_on_a_new_connection);
	fx_add_root_test(tc, "outbound", connect_refused_unprocessed_twice_fails_without_a_third_attempt);
	suite_add_tcase(s, tc);
	return s;
}
