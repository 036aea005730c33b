/* ZDS client and workload proxy manager (spec §5). The test plays the node agent: it listens
 * on a SOCK_SEQPACKET socket in a temporary directory, accepts ztunnel's connection, checks
 * the hello, sends requests (netns fds as SCM_RIGHTS) and reads the Acks. Protocol cases run
 * anywhere; cases that start proxies run as root in a private network namespace, each pod in
 * a namespace of its own, and look for the listeners from inside those namespaces. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "loop_fixture.h"
#include "config/config.h"
#include "inpod/manager.h"
#include "inpod/zds.h"
#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "protocol/zds_frame.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "state/store.h"
#include "telemetry/metrics.h"

typedef Istio__Workload__Zds__WorkloadRequest Request;

static struct {
	bool skip;
	char dir[64], path[128];
	int lfd, cfd; /* the node agent's listener and its side of ztunnel's connection */
	struct zt_loop *loop;
	struct zt_config cfg;
	struct zt_store *store;
	struct zt_metrics *metrics;
	struct zt_proxy_ctx ctx;
	struct zt_dataplane *dp;
	struct zt_podmgr *mgr;
	struct zt_zds *zds;
	int ready_calls;
	bool ready;
	int home; /* the test's own network namespace (root cases) */
} T;

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

static void on_ready(bool ready, void *arg)
{
	(void)arg;
	T.ready = ready;
	T.ready_calls++;
}

static void cni_listen(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	memcpy(a.sun_path, T.path, strlen(T.path) + 1);
	T.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(T.lfd, 0);
	ck_assert_int_eq(bind(T.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(T.lfd, 5), 0);
}

static void start_zds(void)
{
	struct zt_zds_opts zo = {.path = T.path, .backoff_min_ms = 5, .backoff_max_ms = 40};

	ck_assert_int_eq(zt_zds_new(&T.zds, T.loop, T.mgr, &zo), 0);
	ck_assert_int_eq(zt_zds_start(T.zds), 0);
}

static void setup_common(void)
{
	char *env[] = {"NODE_NAME=node-a", "XDS_ADDRESS=", "CA_ADDRESS=", "ENABLE_ORIG_SRC=false",
	               NULL};
	struct zt_podmgr_opts mo = {.retry_ms = 100, .on_ready = on_ready};
	char err[512] = "";

	zt_log_set_spec(getenv("ZT_TEST_LOG") ? getenv("ZT_TEST_LOG") : "off", NULL, 0);
	T.lfd = T.cfd = T.home = -1;
	snprintf(T.dir, sizeof(T.dir), "/tmp/zt-zds-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(T.dir));
	snprintf(T.path, sizeof(T.path), "%s/ztunnel.sock", T.dir);
	ck_assert_msg(zt_config_load(&T.cfg, env, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(T.cfg.proxy_mode, ZT_PROXY_SHARED);
	ck_assert_int_eq(zt_loop_new(&T.loop), 0);
	T.store = zt_store_new();
	T.metrics = zt_metrics_new("test", 0);
	T.ctx = (struct zt_proxy_ctx){
	        .loop = T.loop, .store = T.store, .metrics = T.metrics};
	zt_proxy_settings_from_config(&T.ctx.set, &T.cfg);
	ck_assert_int_eq(zt_dataplane_new(&T.dp, &T.ctx, 0, "test"), 0);
	ck_assert_int_eq(zt_podmgr_new(&T.mgr, T.dp, &mo), 0);
}

static void setup(void)
{
	memset(&T, 0, sizeof(T));
	setup_common();
	cni_listen();
	start_zds();
}

static void lo_up(void)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(s, 0);
	memcpy(ifr.ifr_name, "lo", 3);
	ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

/* Root cases: this forked test process moves into a private network namespace first. */
static void setup_root(void)
{
	const char *fork_mode = getenv("CK_FORK");

	memset(&T, 0, sizeof(T));
	if (geteuid() != 0 || (fork_mode && !strcmp(fork_mode, "no"))) {
		printf("test_zds: proxy cases need root and forked tests (network namespaces); "
		       "skipped\n");
		T.skip = true;
		return;
	}
	ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
	lo_up();
	setup_common();
	T.home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(T.home, 0);
	cni_listen();
	start_zds();
}

static void teardown(void)
{
	if (T.skip)
		return;
	zt_zds_free(T.zds);
	zt_podmgr_free(T.mgr);
	zt_dataplane_free(T.dp);
	for (int i = 0; i < 4; i++)
		zt_loop_run_once(T.loop, 0);
	ck_assert_int_eq(zt_live_get("inpod_pod")->count, 0);
	zt_store_free(T.store);
	zt_metrics_free(T.metrics);
	zt_loop_free(T.loop);
	zt_config_clear(&T.cfg);
	if (T.cfd >= 0)
		close(T.cfd);
	if (T.lfd >= 0)
		close(T.lfd);
	if (T.home >= 0)
		close(T.home);
	unlink(T.path);
	rmdir(T.dir);
}

/* ---- the node agent's side ---------------------------------------------------------------- */

/* Waits for one datagram on the agent's connection while the loop runs: its length, 0 for
 * the end of the stream, -1 when nothing came within ms. */
static ssize_t cni_recv(uint8_t *buf, size_t cap, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	do {
		ssize_t n = recv(T.cfd, buf, cap, MSG_DONTWAIT);
		if (n >= 0)
			return n;
		ck_assert_msg(errno == EAGAIN || errno == ECONNRESET, "recv: %s", strerror(errno));
		if (errno == ECONNRESET)
			return 0;
		zt_loop_run_once(T.loop, 5);
	} while (now_ms() < end);
	return -1;
}

/* Accepts ztunnel's next connection and checks its ZdsHello{V1}. */
static void cni_accept(void)
{
	uint64_t end = now_ms() + 3000;
	Istio__Workload__Zds__ZdsHello *hello = NULL;
	uint8_t buf[256];
	ssize_t n;

	if (T.cfd >= 0)
		close(T.cfd);
	while ((T.cfd = accept4(T.lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 && now_ms() < end)
		zt_loop_run_once(T.loop, 5);
	ck_assert_msg(T.cfd >= 0, "ztunnel did not connect");
	n = cni_recv(buf, sizeof(buf), 2000);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(zt_pb_unpack(&istio__workload__zds__zds_hello__descriptor, buf, (size_t)n,
	                              sizeof(buf), (ProtobufCMessage **)&hello),
	                 0);
	ck_assert_int_eq(hello->version, ISTIO__WORKLOAD__ZDS__VERSION__V1);
	zt_pb_free(&hello->base);
}

/* True when ztunnel does not connect again within ms. */
static bool cni_no_connection(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end) {
		int fd = accept4(T.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return false;
		}
		zt_loop_run_once(T.loop, 5);
	}
	return true;
}

static void cni_send_raw(const void *buf, size_t len, const int *fds, size_t nfds)
{
	ck_assert_int_eq(zt_zds_frame_send_raw(T.cfd, buf, len, fds, nfds, 0), 0);
}

static void cni_send(const Request *r, const int *fds, size_t nfds)
{
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(zt_pb_pack(&r->base, &buf, &len), 0);
	cni_send_raw(buf, len, fds, nfds);
	free(buf);
}

static void send_add(const char *uid, const char *name, int netns)
{
	Istio__Workload__Zds__WorkloadInfo wi = ISTIO__WORKLOAD__ZDS__WORKLOAD_INFO__INIT;
	Istio__Workload__Zds__AddWorkload a = ISTIO__WORKLOAD__ZDS__ADD_WORKLOAD__INIT;
	Request r = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;

	wi.name = (char *)name;
	wi.namespace_ = "default";
	wi.service_account = "sleep";
	a.uid = (char *)uid;
	a.workload_info = &wi;
	r.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD;
	r.add = &a;
	cni_send(&r, &netns, netns >= 0 ? 1 : 0);
}

static void send_keep(const char *uid)
{
	Istio__Workload__Zds__KeepWorkload k = ISTIO__WORKLOAD__ZDS__KEEP_WORKLOAD__INIT;
	Request r = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;

	k.uid = (char *)uid;
	r.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_KEEP;
	r.keep = &k;
	cni_send(&r, NULL, 0);
}

static void send_del_fds(const char *uid, const int *fds, size_t nfds)
{
	Istio__Workload__Zds__DelWorkload d = ISTIO__WORKLOAD__ZDS__DEL_WORKLOAD__INIT;
	Request r = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;

	d.uid = (char *)uid;
	r.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL;
	r.del = &d;
	cni_send(&r, fds, nfds);
}

static void send_del(const char *uid)
{
	send_del_fds(uid, NULL, 0);
}

static void send_snapshot(void)
{
	Istio__Workload__Zds__SnapshotSent s = ISTIO__WORKLOAD__ZDS__SNAPSHOT_SENT__INIT;
	Request r = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;

	r.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_SNAPSHOT_SENT;
	r.snapshot_sent = &s;
	cni_send(&r, NULL, 0);
}

/* Reads the next Ack: its error text into err ("" for an ACK). */
static void next_ack(char *err, size_t errlen)
{
	Istio__Workload__Zds__WorkloadResponse *resp = NULL;
	uint8_t buf[1024];
	ssize_t n = cni_recv(buf, sizeof(buf), 3000);

	ck_assert_msg(n > 0, "no Ack (%zd)", n);
	ck_assert_int_eq(zt_pb_unpack(&istio__workload__zds__workload_response__descriptor, buf,
	                              (size_t)n, sizeof(buf), (ProtobufCMessage **)&resp),
	                 0);
	ck_assert_int_eq(resp->payload_case, ISTIO__WORKLOAD__ZDS__WORKLOAD_RESPONSE__PAYLOAD_ACK);
	snprintf(err, errlen, "%s", resp->ack->error ? resp->ack->error : "");
	zt_pb_free(&resp->base);
}

static void expect_ack(void)
{
	char err[1024];
	next_ack(err, sizeof(err));
	ck_assert_msg(err[0] == '\0', "NACK: %s", err);
}

static void expect_nack(const char *containing)
{
	char err[1024];
	next_ack(err, sizeof(err));
	ck_assert_msg(err[0] != '\0', "ACK where a NACK was expected");
	ck_assert_msg(strstr(err, containing), "NACK \"%s\" lacks \"%s\"", err, containing);
}

static void expect_closed(void)
{
	uint8_t buf[64];
	ck_assert_int_eq(cni_recv(buf, sizeof(buf), 3000), 0);
}

static void expect_quiet(int ms)
{
	uint8_t buf[64];
	ck_assert_int_eq(cni_recv(buf, sizeof(buf), ms), -1);
}

static struct zt_zds_stats zstats(void)
{
	struct zt_zds_stats s;
	zt_zds_stats(T.zds, &s);
	return s;
}

static struct zt_podmgr_counts mcounts(void)
{
	struct zt_podmgr_counts c;
	zt_podmgr_counts(T.mgr, &c);
	return c;
}

/* ---- protocol cases (no root needed) -------------------------------------------------------- */

START_TEST(zds_retries_until_the_agent_listens_then_says_hello_v1)
{
	close(T.lfd);
	unlink(T.path);
	run_ms(60); /* a few failed attempts */
	ck_assert_int_eq(zt_zds_state(T.zds), ZT_ZDS_WAITING);
	ck_assert_uint_eq(zstats().connects, 0);
	cni_listen();
	cni_accept();
	ck_assert_int_eq(zt_zds_state(T.zds), ZT_ZDS_CONNECTED);
	ck_assert_uint_eq(zstats().connects, 1);
	ck_assert_int_eq(zt_zds_start(T.zds), ZT_E_STATE);
}
END_TEST

START_TEST(zds_empty_snapshot_makes_the_manager_ready)
{
	cni_accept();
	run_ms(20);
	ck_assert(!zt_podmgr_ready(T.mgr));
	ck_assert(!T.ready);
	send_snapshot();
	expect_ack();
	ck_assert(zt_podmgr_ready(T.mgr));
	ck_assert(T.ready);
	ck_assert_int_eq(T.ready_calls, 1);
}
END_TEST

START_TEST(zds_answers_each_request_once_in_order)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(self, 0);
	cni_accept();
	/* All five queued before ztunnel reads any. */
	send_keep("a");
	send_add("", "nameless", self); /* refused by the manager: NACK, connection kept */
	send_keep("b");
	send_snapshot();
	send_del("b");
	close(self);
	expect_ack();
	expect_nack("uid empty");
	expect_ack();
	expect_ack();
	expect_ack();
	expect_quiet(100);
	ck_assert_uint_eq(zstats().messages, 5);
	ck_assert_uint_eq(zstats().acks, 4);
	ck_assert_uint_eq(zstats().nacks, 1);
	ck_assert_uint_eq(zstats().drops, 0);
	ck_assert(cni_no_connection(50));
	ck_assert(zt_podmgr_ready(T.mgr));
}
END_TEST

START_TEST(zds_nacks_an_undecodable_request_then_reconnects)
{
	static const uint8_t junk[] = {0x0a, 0x7f, 0x01}; /* field 1 longer than the message */

	cni_accept();
	cni_send_raw(junk, sizeof(junk), NULL, 0);
	expect_nack("decode");
	expect_closed();
	cni_accept();
	ck_assert_uint_eq(zstats().drops, 1);
	ck_assert_uint_eq(zstats().connects, 2);
	ck_assert_int_eq(zt_zds_state(T.zds), ZT_ZDS_CONNECTED);
}
END_TEST

START_TEST(zds_nacks_a_request_without_payload_then_reconnects)
{
	static const uint8_t unknown[] = {0x22, 0x00}; /* field 4: not a known payload */

	cni_accept();
	cni_send_raw(unknown, sizeof(unknown), NULL, 0);
	expect_nack("unknown request");
	expect_closed();
	cni_accept();
}
END_TEST

START_TEST(zds_nacks_a_truncated_datagram_then_reconnects)
{
	uint8_t big[1500];

	memset(big, 0, sizeof(big));
	cni_accept();
	cni_send_raw(big, sizeof(big), NULL, 0);
	expect_nack("longer than 1024");
	expect_closed();
	cni_accept();
	ck_assert_uint_eq(zstats().drops, 1);
}
END_TEST

START_TEST(zds_accepts_a_datagram_of_exactly_1024_bytes)
{
	Istio__Workload__Zds__KeepWorkload k = ISTIO__WORKLOAD__ZDS__KEEP_WORKLOAD__INIT;
	Request r = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;
	char uid[1024];
	size_t len;

	/* Keep{uid}: 3 bytes of WorkloadRequest header + 3 of KeepWorkload header + uid. */
	memset(uid, 'u', sizeof(uid));
	uid[1024 - 6] = '\0';
	k.uid = uid;
	r.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_KEEP;
	r.keep = &k;
	len = protobuf_c_message_get_packed_size(&r.base);
	ck_assert_uint_eq(len, 1024);
	cni_accept();
	cni_send(&r, NULL, 0);
	expect_ack();
}
END_TEST

START_TEST(zds_nacks_add_without_fd_then_reconnects)
{
	cni_accept();
	send_add("uid-1", "pod-1", -1);
	expect_nack("exactly one netns fd");
	expect_closed();
	cni_accept();
	ck_assert_uint_eq(mcounts().running + mcounts().pending, 0);
}
END_TEST

/* The fd sent is the write end of a pipe: the read end sees EOF once ztunnel closed its copy. */
static void expect_pipe_closed(int rd)
{
	char c;

	fcntl(rd, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 200 && read(rd, &c, 1) < 0 && errno == EAGAIN; i++)
		run_ms(5);
	ck_assert_int_eq(read(rd, &c, 1), 0);
}

START_TEST(zds_nacks_an_fd_on_del_closes_it_and_reconnects)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	cni_accept();
	send_del_fds("uid-1", &p[1], 1);
	close(p[1]);
	expect_nack("other than AddWorkload");
	expect_closed();
	expect_pipe_closed(p[0]);
	close(p[0]);
	cni_accept();
}
END_TEST

START_TEST(zds_nacks_add_with_two_fds_and_closes_both)
{
	Istio__Workload__Zds__WorkloadInfo wi = ISTIO__WORKLOAD__ZDS__WORKLOAD_INFO__INIT;
	Istio__Workload__Zds__AddWorkload a = ISTIO__WORKLOAD__ZDS__ADD_WORKLOAD__INIT;
	Request r = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;
	int p[2], fds[2];

	ck_assert_int_eq(pipe(p), 0);
	fds[0] = p[1];
	fds[1] = dup(p[1]);
	wi.name = "pod-1";
	a.uid = "uid-1";
	a.workload_info = &wi;
	r.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD;
	r.add = &a;
	cni_accept();
	cni_send(&r, fds, 2);
	close(fds[0]);
	close(fds[1]);
	expect_nack("got 2");
	expect_closed();
	expect_pipe_closed(p[0]);
	close(p[0]);
	cni_accept();
}
END_TEST

START_TEST(zds_nacks_add_with_a_non_netns_fd_then_reconnects)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	cni_accept();
	send_add("uid-1", "pod-1", p[1]);
	close(p[1]);
	expect_nack("not a network namespace");
	expect_closed();
	expect_pipe_closed(p[0]);
	close(p[0]);
	cni_accept();
	ck_assert_uint_eq(mcounts().running + mcounts().pending, 0);
}
END_TEST

/* Keeps the connection and the loop going for a while and checks ztunnel stays away. */
static void expect_fatal(void)
{
	expect_closed();
	ck_assert(cni_no_connection(200));
	ck_assert_int_eq(zt_zds_state(T.zds), ZT_ZDS_FATAL);
	ck_assert(!zt_podmgr_ready(T.mgr));
	ck_assert(!T.ready);
}

START_TEST(zds_keep_after_snapshot_is_fatal)
{
	cni_accept();
	send_snapshot();
	expect_ack();
	ck_assert(T.ready);
	send_keep("uid-1");
	expect_nack("after SnapshotSent");
	expect_fatal();
	ck_assert_int_eq(T.ready_calls, 2);
}
END_TEST

START_TEST(zds_second_snapshot_is_fatal)
{
	cni_accept();
	send_snapshot();
	expect_ack();
	send_snapshot();
	expect_nack("second SnapshotSent");
	expect_fatal();
}
END_TEST

START_TEST(zds_add_without_workload_info_is_fatal_and_closes_the_fd)
{
	Istio__Workload__Zds__AddWorkload a = ISTIO__WORKLOAD__ZDS__ADD_WORKLOAD__INIT;
	Request r = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	a.uid = "uid-1";
	r.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD;
	r.add = &a;
	cni_accept();
	cni_send(&r, &p[1], 1);
	close(p[1]);
	expect_nack("without workload_info");
	expect_fatal();
	expect_pipe_closed(p[0]);
	close(p[0]);
}
END_TEST

START_TEST(zds_reconnect_resets_the_snapshot_state)
{
	cni_accept();
	send_snapshot();
	expect_ack();
	ck_assert(T.ready);
	close(T.cfd); /* the agent restarts */
	T.cfd = -1;
	cni_accept();
	ck_assert(!T.ready);
	/* Keep and SnapshotSent are valid again on the new connection. */
	send_keep("uid-1");
	expect_ack();
	send_snapshot();
	expect_ack();
	ck_assert(T.ready);
	ck_assert_int_eq(zt_zds_state(T.zds), ZT_ZDS_CONNECTED);
	ck_assert_uint_eq(zstats().drops, 0);
}
END_TEST

START_TEST(zds_new_rejects_a_bad_path)
{
	struct zt_zds *z = NULL;
	char longp[200];
	struct zt_zds_opts o = {.path = longp};

	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(zt_zds_new(&z, T.loop, T.mgr, &o), -ENAMETOOLONG);
	ck_assert_ptr_null(z);
	o.path = "";
	ck_assert_int_eq(zt_zds_new(&z, T.loop, T.mgr, &o), -EINVAL);
	ck_assert_int_eq(zt_zds_new(&z, T.loop, T.mgr, NULL), -EINVAL);
}
END_TEST

START_TEST(podmgr_netns_check_accepts_only_network_namespaces)
{
	int net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	int file = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	struct stat st;

	ck_assert_int_ge(net, 0);
	ck_assert_int_ge(uts, 0);
	ck_assert_int_ge(file, 0);
	ck_assert_int_eq(zt_podmgr_netns_check(net, &st), 0);
	ck_assert_uint_ne(st.st_ino, 0);
	ck_assert_int_eq(zt_podmgr_netns_check(uts, NULL), -EINVAL);
	ck_assert_int_eq(zt_podmgr_netns_check(file, NULL), -EINVAL);
	ck_assert_int_eq(zt_podmgr_netns_check(-1, NULL), -EBADF);
	close(net);
	close(uts);
	close(file);
}
END_TEST

/* ---- proxies inside pod network namespaces (root) ------------------------------------------ */

/* A new network namespace with lo up, as a pod's would be: an fd of it. */
static int new_netns(void)
{
	int fd;

	ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
	lo_up();
	fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setns(T.home, CLONE_NEWNET), 0);
	return fd;
}

/* Another fd of the same namespace, as the agent would open it anew. */
static int reopen(int fd)
{
	char path[64];
	int again;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	again = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(again, 0);
	return again;
}

/* Connects to 127.0.0.1:port from inside the namespace ns: 0 or -errno. */
static int connect_in(int ns, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd, rc;

	ck_assert_int_eq(setns(ns, CLONE_NEWNET), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(setns(T.home, CLONE_NEWNET), 0);
	ck_assert_int_ge(fd, 0);
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* A plain listener on port inside ns (no SO_REUSEPORT): the proxy cannot bind it. */
static int block_port(int ns, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd;

	ck_assert_int_eq(setns(ns, CLONE_NEWNET), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(setns(T.home, CLONE_NEWNET), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	return fd;
}

static bool listening_in(int ns)
{
	return connect_in(ns, ZT_PORT_OUTBOUND) == 0 && connect_in(ns, ZT_PORT_INBOUND) == 0;
}

static bool refused_in(int ns)
{
	return connect_in(ns, ZT_PORT_OUTBOUND) == -ECONNREFUSED &&
	       connect_in(ns, ZT_PORT_INBOUND) == -ECONNREFUSED;
}

static bool metrics_have(const char *line)
{
	struct zt_buf b;
	bool found;

	zt_buf_init(&b, 0);
	ck_assert_int_eq(zt_metrics_render(T.metrics, &b), 0);
	ck_assert_int_eq(zt_buf_append(&b, "", 1), 0);
	found = strstr((const char *)zt_buf_data(&b), line) != NULL;
	zt_buf_clear(&b);
	return found;
}

START_TEST(zds_add_starts_the_proxy_inside_the_pod_netns)
{
	int a;
	json_t *dump, *e;

	if (T.skip)
		return;
	a = new_netns();
	cni_accept();
	send_add("uid-a", "pod-a", a);
	expect_ack();
	ck_assert(listening_in(a));
	ck_assert(refused_in(T.home)); /* nothing in ztunnel's own namespace */
	ck_assert_ptr_nonnull(zt_podmgr_proxy(T.mgr, "uid-a"));
	ck_assert_uint_eq(mcounts().running, 1);
	ck_assert_uint_eq(mcounts().started, 1);
	ck_assert(!T.ready); /* no snapshot yet */
	send_snapshot();
	expect_ack();
	ck_assert(T.ready);
	dump = zt_podmgr_dump_proxies(T.mgr);
	e = json_object_get(dump, "uid-a");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(json_string_value(json_object_get(e, "state")), "running");
	ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "pod-a");
	ck_assert_str_eq(json_string_value(json_object_get(e, "namespace")), "default");
	ck_assert_str_eq(json_string_value(json_object_get(e, "serviceAccount")), "sleep");
	json_decref(dump);
	/* The reference's workloadState shape (spec §17). */
	dump = zt_podmgr_dump(T.mgr);
	e = json_object_get(dump, "uid-a");
	ck_assert_str_eq(json_string_value(json_object_get(e, "state")), "Up");
	ck_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(e, "info"), "serviceAccount")),
	        "sleep");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "info"), "name")),
	                 "pod-a");
	ck_assert(json_is_array(json_object_get(json_object_get(e, "connections"), "inbound")));
	ck_assert(json_is_array(json_object_get(json_object_get(e, "connections"), "outbound")));
	json_decref(dump);
	ck_assert(metrics_have("workload_manager_active_proxy_count 1\n"));
	ck_assert(metrics_have("workload_manager_pending_proxy_count 0\n"));
	ck_assert(metrics_have("workload_manager_proxies_started_total 1\n"));
	close(a);
}
END_TEST

START_TEST(zds_del_stops_the_proxy)
{
	int a;

	if (T.skip)
		return;
	a = new_netns();
	cni_accept();
	send_add("uid-a", "pod-a", reopen(a));
	expect_ack();
	send_snapshot();
	expect_ack();
	ck_assert(listening_in(a));
	send_del("uid-a");
	expect_ack();
	ck_assert(refused_in(a));
	ck_assert_ptr_null(zt_podmgr_proxy(T.mgr, "uid-a"));
	ck_assert_uint_eq(mcounts().running, 0);
	ck_assert_uint_eq(mcounts().stopped, 1);
	ck_assert(metrics_have("workload_manager_proxies_stopped_total 1\n"));
	ck_assert(metrics_have("workload_manager_active_proxy_count 0\n"));
	/* Deleting an unknown pod is answered too. */
	send_del("uid-a");
	expect_ack();
	ck_assert(T.ready);
	close(a);
}
END_TEST

START_TEST(zds_add_of_a_running_pod_in_the_same_netns_changes_nothing)
{
	struct zt_proxy_group *p;
	int a;

	if (T.skip)
		return;
	a = new_netns();
	cni_accept();
	send_add("uid-a", "pod-a", reopen(a));
	expect_ack();
	p = zt_podmgr_proxy(T.mgr, "uid-a");
	ck_assert_ptr_nonnull(p);
	send_add("uid-a", "pod-a", reopen(a)); /* another fd, same namespace */
	expect_ack();
	ck_assert_ptr_eq(zt_podmgr_proxy(T.mgr, "uid-a"), p);
	ck_assert_uint_eq(mcounts().started, 1);
	ck_assert_uint_eq(mcounts().stopped, 0);
	ck_assert(listening_in(a));
	close(a);
}
END_TEST

START_TEST(zds_add_of_a_running_pod_in_another_netns_restarts_it_there)
{
	int a, b;

	if (T.skip)
		return;
	a = new_netns();
	b = new_netns();
	cni_accept();
	send_add("uid-a", "pod-a", reopen(a));
	expect_ack();
	ck_assert(listening_in(a));
	ck_assert(refused_in(b));
	send_add("uid-a", "pod-a", reopen(b));
	expect_ack();
	ck_assert(refused_in(a));
	ck_assert(listening_in(b));
	ck_assert_uint_eq(mcounts().running, 1);
	ck_assert_uint_eq(mcounts().started, 2);
	ck_assert_uint_eq(mcounts().stopped, 1);
	close(a);
	close(b);
}
END_TEST

START_TEST(zds_snapshot_stops_pods_not_mentioned_since_the_connection_started)
{
	int a, b, c, d;

	if (T.skip)
		return;
	a = new_netns();
	b = new_netns();
	c = new_netns();
	d = new_netns();
	cni_accept();
	send_add("uid-a", "pod-a", reopen(a));
	send_add("uid-b", "pod-b", reopen(b));
	send_add("uid-c", "pod-c", reopen(c));
	send_add("uid-d", "pod-d", reopen(d));
	for (int i = 0; i < 4; i++)
		expect_ack();
	send_snapshot();
	expect_ack();
	ck_assert_uint_eq(mcounts().running, 4);

	/* The agent restarts and replays: a kept without a netns, b added again, c added then
	 * deleted before SnapshotSent, d not mentioned. */
	close(T.cfd);
	T.cfd = -1;
	cni_accept();
	send_keep("uid-a");
	expect_ack();
	send_add("uid-b", "pod-b", reopen(b));
	expect_ack();
	send_add("uid-c", "pod-c", reopen(c));
	expect_ack();
	send_del("uid-c");
	expect_ack();
	ck_assert(listening_in(c)); /* only dropped from the snapshot so far */
	ck_assert(listening_in(d));
	send_snapshot();
	expect_ack();
	ck_assert(listening_in(a));
	ck_assert(listening_in(b));
	ck_assert(refused_in(c));
	ck_assert(refused_in(d));
	ck_assert_uint_eq(mcounts().running, 2);
	ck_assert_uint_eq(mcounts().started, 4); /* b was a no-op */
	ck_assert_uint_eq(mcounts().stopped, 2);
	ck_assert(T.ready);
	close(a);
	close(b);
	close(c);
	close(d);
}
END_TEST

START_TEST(zds_start_failure_nacks_keeps_the_connection_and_retries)
{
	json_t *dump;
	int a, blocker;
	uint64_t end;

	if (T.skip)
		return;
	a = new_netns();
	blocker = block_port(a, ZT_PORT_OUTBOUND);
	cni_accept();
	send_add("uid-a", "pod-a", reopen(a));
	send_snapshot();
	expect_nack("15001");
	expect_ack(); /* same connection, next answer in order */
	ck_assert_uint_eq(mcounts().pending, 1);
	ck_assert(!T.ready); /* a pod is pending */
	ck_assert(!zt_podmgr_ready(T.mgr));
	dump = zt_podmgr_dump_proxies(T.mgr);
	ck_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(dump, "uid-a"), "state")),
	        "pending");
	ck_assert_ptr_nonnull(strstr(
	        json_string_value(json_object_get(json_object_get(dump, "uid-a"), "lastError")),
	        "15001"));
	json_decref(dump);
	dump = zt_podmgr_dump(T.mgr);
	ck_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(dump, "uid-a"), "state")),
	        "Pending");
	ck_assert_ptr_null(json_object_get(json_object_get(dump, "uid-a"), "connections"));
	json_decref(dump);
	ck_assert(metrics_have("workload_manager_pending_proxy_count 1\n"));
	run_ms(250); /* retries keep failing while the port is taken */
	ck_assert_uint_eq(mcounts().pending, 1);
	close(blocker);
	end = now_ms() + 3000;
	while (!T.ready && now_ms() < end)
		zt_loop_run_once(T.loop, 10);
	ck_assert(T.ready);
	ck_assert_uint_eq(mcounts().running, 1);
	ck_assert_uint_eq(mcounts().pending, 0);
	ck_assert(listening_in(a));
	ck_assert_uint_eq(zstats().drops, 0);
	ck_assert_uint_eq(zstats().connects, 1);
	close(a);
}
END_TEST

START_TEST(podmgr_free_stops_every_proxy)
{
	struct zt_podmgr_pod pod = {"uid-a", "pod-a", "default", "sleep"};
	char err[256];
	int a;

	if (T.skip)
		return;
	a = new_netns();
	ck_assert_int_eq(zt_podmgr_add(T.mgr, &pod, reopen(a), err, sizeof(err)), 0);
	ck_assert_int_eq(zt_podmgr_add(T.mgr, &pod, reopen(a), err, sizeof(err)), 1);
	ck_assert(listening_in(a));
	ck_assert_int_eq(zt_live_get("inpod_pod")->count, 1);
	zt_zds_free(T.zds);
	T.zds = NULL;
	zt_podmgr_free(T.mgr);
	T.mgr = NULL;
	ck_assert(refused_in(a));
	ck_assert_int_eq(zt_live_get("inpod_pod")->count, 0);
	close(a);
}
END_TEST

Suite *zds_suite(void);
Suite *zds_suite(void)
{
	Suite *s = suite_create("zds");
	TCase *tc = tcase_create("protocol");
	TCase *pods = tcase_create("pods");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, zds_retries_until_the_agent_listens_then_says_hello_v1);
	tcase_add_test(tc, zds_empty_snapshot_makes_the_manager_ready);
	tcase_add_test(tc, zds_answers_each_request_once_in_order);
	tcase_add_test(tc, zds_nacks_an_undecodable_request_then_reconnects);
	tcase_add_test(tc, zds_nacks_a_request_without_payload_then_reconnects);
	tcase_add_test(tc, zds_nacks_a_truncated_datagram_then_reconnects);
	tcase_add_test(tc, zds_accepts_a_datagram_of_exactly_1024_bytes);
	tcase_add_test(tc, zds_nacks_add_without_fd_then_reconnects);
	tcase_add_test(tc, zds_nacks_an_fd_on_del_closes_it_and_reconnects);
	tcase_add_test(tc, zds_nacks_add_with_two_fds_and_closes_both);
	tcase_add_test(tc, zds_nacks_add_with_a_non_netns_fd_then_reconnects);
	tcase_add_test(tc, zds_keep_after_snapshot_is_fatal);
	tcase_add_test(tc, zds_second_snapshot_is_fatal);
	tcase_add_test(tc, zds_add_without_workload_info_is_fatal_and_closes_the_fd);
	tcase_add_test(tc, zds_reconnect_resets_the_snapshot_state);
	tcase_add_test(tc, zds_new_rejects_a_bad_path);
	tcase_add_test(tc, podmgr_netns_check_accepts_only_network_namespaces);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(pods, setup_root, teardown);
	tcase_set_timeout(pods, 30);
	fx_add_root_test(pods, "zds", zds_add_starts_the_proxy_inside_the_pod_netns);
	fx_add_root_test(pods, "zds", zds_del_stops_the_proxy);
	fx_add_root_test(pods, "zds", zds_add_of_a_running_pod_in_the_same_netns_changes_nothing);
	fx_add_root_test(pods, "zds", zds_add_of_a_running_pod_in_another_netns_restarts_it_there);
	fx_add_root_test(pods, "zds", zds_snapshot_stops_pods_not_mentioned_since_the_connection_started);
	fx_add_root_test(pods, "zds", zds_start_failure_nacks_keeps_the_connection_and_retries);
	fx_add_root_test(pods, "zds", podmgr_free_stops_every_proxy);
	suite_add_tcase(s, pods);
	return s;
}
