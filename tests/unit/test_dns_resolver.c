/* The hostname resolver and its upstream client against a small DNS responder on loopback
 * (UDP, on the same loop, answers built with ldns): answers and their TTL cache, one query
 * for concurrent callers, NXDOMAIN, timeouts, cancellation, and the in-flight bound. */
#include <check.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/resolver.h"
#include "runtime/err.h"
#include "runtime/live.h"

struct responder {
	int fd;
	struct zt_io io;
	unsigned queries;
	uint32_t ttl;
};

/* Answers name.example with 192.0.2.9, nx.example with NXDOMAIN, ignores slow.example. */
static void on_query(struct zt_io *io, unsigned events, void *arg)
{
	struct responder *r = arg;
	uint8_t buf[4096], *out = NULL;
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	ssize_t n = recvfrom(r->fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &pl);
	ldns_pkt *q = NULL;
	size_t olen;

	(void)io;
	(void)events;
	if (n <= 0 || ldns_wire2pkt(&q, buf, (size_t)n) != LDNS_STATUS_OK)
		return;
	if (ldns_pkt_qdcount(q) != 1) {
		ldns_pkt_free(q);
		return;
	}
	r->queries++;
	ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(q), 0);
	char *name = ldns_rdf2str(ldns_rr_owner(qr));
	ldns_pkt_set_qr(q, true);
	if (strcmp(name, "slow.example.") == 0) {
		free(name);
		ldns_pkt_free(q);
		return;
	}
	if (strcmp(name, "nx.example.") == 0) {
		ldns_pkt_set_rcode(q, LDNS_RCODE_NXDOMAIN);
	} else if (ldns_rr_get_type(qr) == LDNS_RR_TYPE_A) {
		ldns_rr *a = NULL;
		char text[128];
		snprintf(text, sizeof(text), "%s %u IN A 192.0.2.9", name, r->ttl);
		ck_assert_int_eq(ldns_rr_new_frm_str(&a, text, 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(q, LDNS_SECTION_ANSWER, a);
	}
	free(name);
	ck_assert_int_eq(ldns_pkt2wire(&out, q, &olen), LDNS_STATUS_OK);
	sendto(r->fd, out, olen, 0, (struct sockaddr *)&peer, pl);
	free(out);
	ldns_pkt_free(q);
}

static struct zt_loop *loop;
static struct responder resp;
static struct zt_dns_resolv rc;

static void setup(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);

	ck_assert_int_eq(zt_loop_new(&loop), 0);
	memset(&resp, 0, sizeof(resp));
	resp.ttl = 60;
	resp.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(resp.fd, 0);
	ck_assert_int_eq(bind(resp.fd, (struct sockaddr *)&sin, sl), 0);
	ck_assert_int_eq(getsockname(resp.fd, (struct sockaddr *)&sin, &sl), 0);
	ck_assert_int_eq(zt_io_start(loop, &resp.io, resp.fd, ZT_IO_READ, on_query, &resp), 0);
	memset(&rc, 0, sizeof(rc));
	rc.servers[0].ip.family = AF_INET;
	rc.servers[0].ip.v4.s_addr = htonl(INADDR_LOOPBACK);
	rc.servers[0].port = ntohs(sin.sin_port);
	rc.n_servers = 1;
}

static void teardown(void)
{
	zt_io_stop(&resp.io);
	close(resp.fd);
	zt_loop_free(loop);
	ck_assert_int_eq(zt_live_total(), 0);
}

struct result {
	bool done;
	int err;
	size_t n;
	struct zt_ip ip;
};

static void on_result(void *arg, int err, const struct zt_ip *ips, size_t n)
{
	struct result *r = arg;

	ck_assert(!r->done);
	r->done = true;
	r->err = err;
	r->n = n;
	if (n)
		r->ip = ips[0];
}

static void run_until(struct result *r)
{
	for (int i = 0; i < 300 && !r->done; i++)
		zt_loop_run_once(loop, 20);
	ck_assert(r->done);
}

static struct zt_dns_resolver *resolver(uint32_t timeout_ms)
{
	struct zt_dns_upstream_opts o = {.resolv = &rc, .timeout_ms = timeout_ms};
	return zt_dns_resolver_new(loop, &o, false);
}

START_TEST(resolver_answers_and_caches_for_the_records_ttl)
{
	struct zt_dns_resolver *dr = resolver(0);
	struct zt_dns_resolve_req *q;
	struct result a = {0}, b = {0};
	char text[ZT_IP_STRLEN];

	ck_assert_int_eq(zt_dns_resolve(dr, "Name.Example", on_result, &a, &q), 0);
	ck_assert(!a.done); /* never inside the call */
	run_until(&a);
	ck_assert_int_eq(a.err, 0);
	ck_assert_uint_eq(a.n, 1);
	zt_ip_format(&a.ip, text, sizeof(text));
	ck_assert_str_eq(text, "192.0.2.9");
	ck_assert_uint_eq(resp.queries, 1);
	ck_assert_int_eq(zt_dns_resolve(dr, "name.example", on_result, &b, &q), 0);
	run_until(&b);
	ck_assert_int_eq(b.err, 0);
	ck_assert_uint_eq(resp.queries, 1); /* from the cache */
	ck_assert_uint_eq(zt_dns_resolver_cached(dr), 1);
	zt_dns_resolver_free(dr);
}
END_TEST

START_TEST(resolver_asks_once_for_concurrent_callers_and_again_after_the_ttl)
{
	struct zt_dns_resolver *dr = resolver(0);
	struct zt_dns_resolve_req *q1, *q2;
	struct result a = {0}, b = {0}, c = {0};

	resp.ttl = 1;
	ck_assert_int_eq(zt_dns_resolve(dr, "name.example", on_result, &a, &q1), 0);
	ck_assert_int_eq(zt_dns_resolve(dr, "name.example", on_result, &b, &q2), 0);
	run_until(&a);
	run_until(&b);
	ck_assert_uint_eq(resp.queries, 1);
	/* Past the 1 s TTL the name is asked again. */
	uint64_t until = zt_loop_update_time(loop) + 1100;
	while (zt_loop_update_time(loop) < until)
		zt_loop_run_once(loop, 50);
	ck_assert_int_eq(zt_dns_resolve(dr, "name.example", on_result, &c, &q1), 0);
	run_until(&c);
	ck_assert_int_eq(c.err, 0);
	ck_assert_uint_eq(resp.queries, 2);
	zt_dns_resolver_free(dr);
}
END_TEST

START_TEST(resolver_reports_nxdomain_and_timeouts)
{
	struct zt_dns_resolver *dr = resolver(200);
	struct zt_dns_resolve_req *q;
	struct result a = {0}, b = {0};

	ck_assert_int_eq(zt_dns_resolve(dr, "nx.example", on_result, &a, &q), 0);
	run_until(&a);
	ck_assert_int_eq(a.err, ZT_E_NOTFOUND);
	ck_assert_int_eq(zt_dns_resolve(dr, "slow.example", on_result, &b, &q), 0);
	run_until(&b);
	ck_assert_int_eq(b.err, ZT_E_TIMEOUT);
	ck_assert_int_eq(zt_dns_resolve(dr, "bad..name", on_result, &b, &q), ZT_E_PARSE);
	zt_dns_resolver_free(dr);
}
END_TEST

START_TEST(resolver_cancel_means_no_callback)
{
	struct zt_dns_resolver *dr = resolver(0);
	struct zt_dns_resolve_req *q;
	struct result a = {0}, b = {0};

	ck_assert_int_eq(zt_dns_resolve(dr, "name.example", on_result, &a, &q), 0);
	zt_dns_resolve_cancel(q);
	ck_assert_int_eq(zt_dns_resolve(dr, "other.example", on_result, &b, &q), 0);
	run_until(&b);
	for (int i = 0; i < 10; i++)
		zt_loop_run_once(loop, 10);
	ck_assert(!a.done);
	zt_dns_resolver_free(dr);
}
END_TEST

static void count_cb(void *arg, int err, const uint8_t *resp_, size_t len)
{
	(void)err;
	(void)resp_;
	(void)len;
	(*(int *)arg)++;
}

START_TEST(upstream_bounds_requests_in_flight)
{
	struct zt_dns_upstream_opts o = {.resolv = &rc, .timeout_ms = 100, .max_inflight = 4};
	struct zt_dns_upstream *u = zt_dns_upstream_new(loop, &o);
	static const uint8_t query[12] = {0};
	int done = 0;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(
		        zt_dns_upstream_send(u, query, sizeof(query), 0, count_cb, &done, NULL), 0);
	ck_assert_int_eq(zt_dns_upstream_send(u, query, sizeof(query), 0, count_cb, &done, NULL),
	                 ZT_E_TOOBIG);
	ck_assert_uint_eq(zt_dns_upstream_inflight(u), 4);
	for (int i = 0; i < 100 && done < 4; i++)
		zt_loop_run_once(loop, 20);
	ck_assert_int_eq(done, 4); /* each ends (timed out: the responder ignores them) */
	ck_assert_uint_eq(zt_dns_upstream_inflight(u), 0);
	zt_dns_upstream_free(u);
}
END_TEST

Suite *dns_resolver_suite(void);
Suite *dns_resolver_suite(void)
{
	Suite *s = suite_create("dns_resolver");
	TCase *tc = tcase_create("dns_resolver");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, resolver_answers_and_caches_for_the_records_ttl);
	tcase_add_test(tc, resolver_asks_once_for_concurrent_callers_and_again_after_the_ttl);
	tcase_add_test(tc, resolver_reports_nxdomain_and_timeouts);
	tcase_add_test(tc, resolver_cancel_means_no_callback);
	tcase_add_test(tc, upstream_bounds_requests_in_flight);
	suite_add_tcase(s, tc);
	return s;
}
