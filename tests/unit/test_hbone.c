/* HBONE CONNECT headers and server-side checks (spec §2.4, §2.5, §7.2): table-driven over
 * authorities, status codes, baggage, forwarded and traceparent, with hostile inputs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hbone/hbone.h"
#include "runtime/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct zt_ip ip(const char *s)
{
	struct zt_ip v;

	ck_assert_int_eq(zt_ip_parse(&v, s, strlen(s)), 0);
	return v;
}

static struct zt_h2_header hdr(const char *name, const char *value)
{
	return (struct zt_h2_header){name, strlen(name), value, strlen(value)};
}

/* ---- authority --------------------------------------------------------------------------- */

START_TEST(authority_parse_accepts_ip_v6_mapped_and_host_forms)
{
	static const struct {
		const char *in;
		bool is_host;
		const char *canonical; /* zt_hbone_authority_format output */
		unsigned port;
	} ok[] = {
	        {"10.0.0.1:80", false, "10.0.0.1:80", 80},
	        {"[ff06::c3]:80", false, "[ff06::c3]:80", 80},
	        {"[FF06:0:0::C3]:65535", false, "[ff06::c3]:65535", 65535},
	        {"[::ffff:10.0.0.1]:8080", false, "10.0.0.1:8080", 8080},
	        {"echo.default.svc.cluster.local:80", true, "echo.default.svc.cluster.local:80",
	         80},
	        {"Echo.Default.SVC:1", true, "echo.default.svc:1", 1},
	        {"my_svc-1.ns:443", true, "my_svc-1.ns:443", 443},
	        {"localhost:9", true, "localhost:9", 9},
	        {"a.1b:80", true, "a.1b:80", 80},
	};

	for (size_t i = 0; i < N(ok); i++) {
		struct zt_hbone_authority a;
		char buf[ZT_HBONE_AUTHORITY_STRLEN];

		ck_assert_msg(zt_hbone_authority_parse(&a, ok[i].in, strlen(ok[i].in)) == 0, "%s",
		              ok[i].in);
		ck_assert_msg(a.is_host == ok[i].is_host, "%s", ok[i].in);
		ck_assert_uint_eq(a.port, ok[i].port);
		ck_assert_int_eq(zt_hbone_authority_format(&a, buf, sizeof(buf)),
		                 (int)strlen(ok[i].canonical));
		ck_assert_str_eq(buf, ok[i].canonical);
	}
}
END_TEST

START_TEST(authority_parse_rejects_missing_port_and_junk)
{
	static const struct {
		const char *in;
		int err;
	} bad[] = {
	        {"", ZT_E_PARSE},
	        {"10.0.0.1", ZT_E_PARSE},
	        {"echo.default", ZT_E_PARSE},
	        {"[::1]", ZT_E_PARSE},
	        {"::1:80", ZT_E_PARSE},
	        {"fd00::1:80", ZT_E_PARSE},
	        {"[fe80::1%eth0]:80", ZT_E_PARSE},
	        {"10.0.0.1:", ZT_E_PARSE},
	        {"svc:", ZT_E_PARSE},
	        {":80", ZT_E_PARSE},
	        {"10.0.0.1:080", ZT_E_PARSE},
	        {"svc:+80", ZT_E_PARSE},
	        {"svc:8o", ZT_E_PARSE},
	        {"10.0.0.1:0", ZT_E_RANGE},
	        {"10.0.0.1:65536", ZT_E_RANGE},
	        {"svc:0", ZT_E_RANGE},
	        {"svc:99999999999999999999", ZT_E_RANGE},
	        {"1.2.3:80", ZT_E_PARSE},
	        {"01.2.3.4:80", ZT_E_PARSE},
	        {"256.1.1.1:80", ZT_E_PARSE},
	        {"a..b:80", ZT_E_PARSE},
	        {"a.b.:80", ZT_E_PARSE},
	        {".a.b:80", ZT_E_PARSE},
	        {"-a.b:80", ZT_E_PARSE},
	        {"a-.b:80", ZT_E_PARSE},
	        {"a b:80", ZT_E_PARSE},
	        {"a/b:80", ZT_E_PARSE},
	        {"user@host:80", ZT_E_PARSE},
	        {"http://x:80", ZT_E_PARSE},
	        {" 10.0.0.1:80", ZT_E_PARSE},
	        {"10.0.0.1:80 ", ZT_E_PARSE},
	        {"[10.0.0.1]:80", ZT_E_PARSE},
	};

	for (size_t i = 0; i < N(bad); i++) {
		struct zt_hbone_authority a = {.port = 7};
		int rc = zt_hbone_authority_parse(&a, bad[i].in, strlen(bad[i].in));
		ck_assert_msg(rc == bad[i].err, "'%s': got %d want %d", bad[i].in, rc, bad[i].err);
		ck_assert_uint_eq(a.port, 7); /* untouched on error */
	}
	/* A NUL inside the counted text. */
	struct zt_hbone_authority a;
	ck_assert_int_eq(zt_hbone_authority_parse(&a, "a\0b:80", 6), ZT_E_PARSE);
}
END_TEST

START_TEST(authority_host_length_limits_are_dns_limits)
{
	char buf[400];
	struct zt_hbone_authority a;

	/* One label of 63 is fine, 64 is not. */
	memset(buf, 'a', 63);
	memcpy(buf + 63, ":80", 4);
	ck_assert_int_eq(zt_hbone_authority_parse(&a, buf, strlen(buf)), 0);
	memset(buf, 'a', 64);
	memcpy(buf + 64, ":80", 4);
	ck_assert_int_eq(zt_hbone_authority_parse(&a, buf, strlen(buf)), ZT_E_PARSE);
	/* 253 bytes in all is fine (labels of 49 + dot), 254 is not. */
	for (int i = 0; i < 253; i++)
		buf[i] = (i % 50 == 49) ? '.' : 'b';
	memcpy(buf + 253, ":80", 4);
	ck_assert_int_eq(zt_hbone_authority_parse(&a, buf, strlen(buf)), 0);
	ck_assert_uint_eq(strlen(a.host), 253);
	buf[253] = 'c';
	memcpy(buf + 254, ":80", 4);
	ck_assert_int_eq(zt_hbone_authority_parse(&a, buf, strlen(buf)), ZT_E_PARSE);
}
END_TEST

START_TEST(authority_format_reports_small_buffer_and_unset_value)
{
	struct zt_hbone_authority a, unset = {0};
	char small[8];

	ck_assert_int_eq(zt_hbone_authority_parse(&a, "svc.example:8080", 16), 0);
	ck_assert_int_eq(zt_hbone_authority_format(&a, small, sizeof(small)), ZT_E_TOOBIG);
	ck_assert_str_eq(small, "");
	ck_assert_int_eq(zt_hbone_authority_format(&unset, small, sizeof(small)), ZT_E_PARSE);
}
END_TEST

/* ---- server checks ----------------------------------------------------------------------- */

struct vcase {
	const char *method;    /* NULL: header absent */
	const char *authority; /* NULL: header absent */
	const char *dst;
	unsigned flags;
	int code;
	const char *reason;
};

static int run_validate(const struct vcase *c, struct zt_hbone_inbound *in,
                        struct zt_hbone_status *st)
{
	struct zt_h2_header h[4];
	size_t n = 0;
	struct zt_ip dst = ip(c->dst);

	if (c->method)
		h[n++] = hdr(":method", c->method);
	if (c->authority)
		h[n++] = hdr(":authority", c->authority);
	h[n++] = hdr("user-agent", "x");
	return zt_hbone_validate(in, h, n, &dst, c->flags, st);
}

START_TEST(validate_answers_each_failure_with_its_status)
{
	static const struct vcase cases[] = {
	        {"GET", "10.0.0.1:80", "10.0.0.1", 0, 400, "method is not CONNECT"},
	        {"connect", "10.0.0.1:80", "10.0.0.1", 0, 400, "method is not CONNECT"},
	        {"CONNECTX", "10.0.0.1:80", "10.0.0.1", 0, 400, "method is not CONNECT"},
	        {NULL, "10.0.0.1:80", "10.0.0.1", 0, 400, "method is not CONNECT"},
	        {"CONNECT", NULL, "10.0.0.1", 0, 400, "missing authority"},
	        {"CONNECT", "10.0.0.1", "10.0.0.1", 0, 400, "invalid authority"},
	        {"CONNECT", "svc.ns.svc.cluster.local", "10.0.0.1", 0, 400, "invalid authority"},
	        {"CONNECT", "::1:80", "::1", 0, 400, "invalid authority"},
	        {"CONNECT", "10.0.0.1:0", "10.0.0.1", 0, 400, "invalid authority"},
	        {"CONNECT", "<script>:80", "10.0.0.1", 0, 400, "invalid authority"},
	        {"CONNECT", "10.0.0.2:80", "10.0.0.1", 0, 400, "ip mismatch: 10.0.0.2 != 10.0.0.1"},
	        {"CONNECT", "[fd00::2]:80", "fd00::1", 0, 400, "ip mismatch: fd00::2 != fd00::1"},
	        {"CONNECT", "10.0.0.1:80", "fd00::1", 0, 400, "ip mismatch: 10.0.0.1 != fd00::1"},
	        {"CONNECT", "10.0.0.1:15001", "10.0.0.1", 0, 503,
	         "attempted recursive call to ourselves"},
	        {"CONNECT", "10.0.0.1:15006", "10.0.0.1", 0, 503,
	         "attempted recursive call to ourselves"},
	        {"CONNECT", "10.0.0.1:15008", "10.0.0.1", 0, 503,
	         "attempted recursive call to ourselves"},
	        {"CONNECT", "10.0.0.1:15080", "10.0.0.1", ZT_HBONE_SOCKS5, 503,
	         "attempted recursive call to ourselves"},
	        /* The IP check runs before the port check. */
	        {"CONNECT", "10.0.0.9:15008", "10.0.0.1", 0, 400,
	         "ip mismatch: 10.0.0.9 != 10.0.0.1"},
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct zt_hbone_inbound in;
		struct zt_hbone_status st;
		int code = run_validate(&cases[i], &in, &st);

		ck_assert_msg(code == cases[i].code && st.code == code, "case %zu (%s): %d", i,
		              cases[i].authority ? cases[i].authority : "-", code);
		ck_assert_str_eq(st.reason, cases[i].reason);
	}
}
END_TEST

START_TEST(validate_accepts_matching_ip_and_the_documented_exceptions)
{
	static const struct vcase cases[] = {
	        {"CONNECT", "10.0.0.1:80", "10.0.0.1", 0, 200, ""},
	        {"CONNECT", "[::ffff:10.0.0.1]:80", "10.0.0.1", 0, 200, ""},
	        {"CONNECT", "[fd00::1]:8080", "fd00::1", 0, 200, ""},
	        {"CONNECT", "[FD00:0::1]:8080", "fd00::1", 0, 200, ""},
	        {"CONNECT", "10.0.0.2:80", "10.0.0.1", ZT_HBONE_APP_TUNNEL, 200, ""},
	        {"CONNECT", "10.96.0.10:80", "10.0.0.1", ZT_HBONE_WAYPOINT, 200, ""},
	        /* Host names skip the IP check; their port is checked once resolved. */
	        {"CONNECT", "echo.default.svc.cluster.local:80", "10.0.0.1", 0, 200, ""},
	        {"CONNECT", "echo.default.svc.cluster.local:15008", "10.0.0.1", 0, 200, ""},
	        {"CONNECT", "10.0.0.1:15080", "10.0.0.1", 0, 200, ""},
	        {"CONNECT", "10.0.0.1:15000", "10.0.0.1", 0, 200, ""},
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct zt_hbone_inbound in;
		struct zt_hbone_status st;

		ck_assert_msg(run_validate(&cases[i], &in, &st) == 200, "case %zu: %d %s", i,
		              st.code, st.reason);
		ck_assert_str_eq(st.reason, "");
	}
}
END_TEST

START_TEST(duplicate_pseudo_headers_are_rejected)
{
	struct zt_h2_header dup_auth[] = {hdr(":method", "CONNECT"),
	                                  hdr(":authority", "10.0.0.1:80"),
	                                  hdr(":authority", "10.0.0.2:80")};
	struct zt_h2_header dup_method[] = {hdr(":method", "CONNECT"), hdr(":method", "CONNECT"),
	                                    hdr(":authority", "10.0.0.1:80")};
	struct zt_hbone_inbound in;
	struct zt_hbone_status st;

	ck_assert_int_eq(zt_hbone_parse_request(&in, dup_auth, 3, &st), 400);
	ck_assert_str_eq(st.reason, "duplicate authority");
	ck_assert_int_eq(zt_hbone_parse_request(&in, dup_method, 3, &st), 400);
}
END_TEST

START_TEST(check_port_applies_to_resolved_host_name_ports)
{
	struct zt_hbone_status st;

	ck_assert_int_eq(zt_hbone_check_port(15008, 0, &st), 503);
	ck_assert_str_eq(st.reason, "attempted recursive call to ourselves");
	ck_assert_int_eq(zt_hbone_check_port(8080, 0, &st), 200);
	ck_assert(!zt_hbone_port_illegal(15080, 0));
	ck_assert(zt_hbone_port_illegal(15080, ZT_HBONE_SOCKS5));
	ck_assert(!zt_hbone_port_illegal(15009, ZT_HBONE_SOCKS5));
}
END_TEST

/* ---- client request ---------------------------------------------------------------------- */

static void fill_meta(struct zt_hbone_meta *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->cluster, sizeof(m->cluster), "Kubernetes");
	snprintf(m->ns, sizeof(m->ns), "default");
	m->wl_type = ZT_HBONE_WL_DEPLOYMENT;
	snprintf(m->workload, sizeof(m->workload), "sleep");
	snprintf(m->service, sizeof(m->service), "sleep");
	snprintf(m->version, sizeof(m->version), "v1");
	snprintf(m->region, sizeof(m->region), "us-east1");
	snprintf(m->zone, sizeof(m->zone), "us-east1-b");
}

static void assert_meta_eq(const struct zt_hbone_meta *a, const struct zt_hbone_meta *b)
{
	ck_assert_str_eq(a->cluster, b->cluster);
	ck_assert_str_eq(a->ns, b->ns);
	ck_assert_int_eq(a->wl_type, b->wl_type);
	ck_assert_str_eq(a->workload, b->workload);
	ck_assert_str_eq(a->service, b->service);
	ck_assert_str_eq(a->version, b->version);
	ck_assert_str_eq(a->region, b->region);
	ck_assert_str_eq(a->zone, b->zone);
}

static const char *find(const struct zt_hbone_req *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strlen(name) == r->h[i].name_len &&
		    memcmp(r->h[i].name, name, r->h[i].name_len) == 0) {
			ck_assert_uint_eq(strlen(r->h[i].value), r->h[i].value_len);
			return r->h[i].value;
		}
	return NULL;
}

START_TEST(request_carries_connect_authority_forwarded_baggage_traceparent)
{
	struct zt_hbone_authority t;
	struct zt_sockaddr client;
	struct zt_hbone_meta m;
	struct zt_hbone_req r;

	fill_meta(&m);
	ck_assert_int_eq(zt_hbone_authority_parse(&t, "[ff06::c3]:80", 13), 0);
	ck_assert_int_eq(zt_addr_parse(&client, "10.0.0.1:4567", 13, 0), 0);
	ck_assert_int_eq(
	        zt_hbone_req_build(
	                &r,
	                &(struct zt_hbone_connect){.target = &t,
	                                           .client = &client,
	                                           .service_host = "echo.default.svc.cluster.local",
	                                           .source = &m}),
	        0);
	ck_assert_uint_eq(r.n, 5);
	/* Pseudo-headers first, authority-form: no :scheme or :path. */
	ck_assert_str_eq(r.h[0].name, ":method");
	ck_assert_str_eq(r.h[0].value, "CONNECT");
	ck_assert_str_eq(r.h[1].name, ":authority");
	ck_assert_str_eq(r.h[1].value, "[ff06::c3]:80");
	ck_assert_ptr_null(find(&r, ":scheme"));
	ck_assert_ptr_null(find(&r, ":path"));
	ck_assert_ptr_null(find(&r, "x-forwarded-network"));
	ck_assert_str_eq(find(&r, "forwarded"),
	                 "for=\"10.0.0.1:4567\";host=echo.default.svc.cluster.local");
	ck_assert_str_eq(find(&r, "baggage"),
	                 "k8s.cluster.name=Kubernetes,k8s.namespace.name=default,"
	                 "k8s.deployment.name=sleep,service.name=sleep,service.version=v1,"
	                 "cloud.region=us-east1,cloud.availability_zone=us-east1-b");
	ck_assert_ptr_nonnull(find(&r, "traceparent"));
}
END_TEST

START_TEST(forwarded_without_service_host_and_with_ipv6_client)
{
	struct zt_hbone_authority t;
	struct zt_sockaddr client;
	struct zt_hbone_req r;

	ck_assert_int_eq(zt_hbone_authority_parse(&t, "10.0.0.5:8080", 13), 0);
	ck_assert_int_eq(zt_addr_parse(&client, "[fd00::1]:4567", 14, 0), 0);
	ck_assert_int_eq(
	        zt_hbone_req_build(&r, &(struct zt_hbone_connect){.target = &t, .client = &client}),
	        0);
	ck_assert_str_eq(find(&r, "forwarded"), "for=\"[fd00::1]:4567\"");
	ck_assert_int_eq(zt_hbone_req_build(&r, &(struct zt_hbone_connect){.target = &t,
	                                                                   .client = &client,
	                                                                   .service_host = ""}),
	                 0);
	ck_assert_str_eq(find(&r, "forwarded"), "for=\"[fd00::1]:4567\"");
	/* No client address: no forwarded header at all, and no baggage without metadata. */
	ck_assert_int_eq(zt_hbone_req_build(&r, &(struct zt_hbone_connect){.target = &t}), 0);
	ck_assert_ptr_null(find(&r, "forwarded"));
	ck_assert_ptr_null(find(&r, "baggage"));
	ck_assert_uint_eq(r.n, 3);
}
END_TEST

START_TEST(request_build_rejects_bad_inputs)
{
	struct zt_hbone_authority t, unset = {0};
	struct zt_sockaddr client;
	struct zt_hbone_req r;
	char longhost[300];

	ck_assert_int_eq(zt_hbone_authority_parse(&t, "10.0.0.5:8080", 13), 0);
	ck_assert_int_eq(zt_addr_parse(&client, "10.0.0.1:1", 10, 0), 0);
	ck_assert_int_eq(zt_hbone_req_build(&r, &(struct zt_hbone_connect){0}), ZT_E_PARSE);
	ck_assert_int_eq(zt_hbone_req_build(&r, &(struct zt_hbone_connect){.target = &unset}),
	                 ZT_E_PARSE);
	/* A host= that would break the header syntax. */
	ck_assert_int_eq(
	        zt_hbone_req_build(&r, &(struct zt_hbone_connect){.target = &t,
	                                                          .client = &client,
	                                                          .service_host = "a;for=evil"}),
	        ZT_E_PARSE);
	memset(longhost, 'a', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	ck_assert_int_eq(
	        zt_hbone_req_build(&r, &(struct zt_hbone_connect){.target = &t,
	                                                          .client = &client,
	                                                          .service_host = longhost}),
	        ZT_E_TOOBIG);
	ck_assert_int_eq(zt_hbone_req_build(
	                         &r, &(struct zt_hbone_connect){.target = &t, .network = "net 1"}),
	                 ZT_E_PARSE);
	ck_assert_int_eq(zt_hbone_req_build(&r, &(struct zt_hbone_connect){.target = &t,
	                                                                   .network = "network1"}),
	                 0);
	ck_assert_str_eq(find(&r, "x-forwarded-network"), "network1");
}
END_TEST

START_TEST(baggage_omits_empty_values_and_names_the_workload_kind)
{
	static const struct {
		enum zt_hbone_wl_type type;
		const char *key;
	} kinds[] = {{ZT_HBONE_WL_DEPLOYMENT, "k8s.deployment.name=w"},
	             {ZT_HBONE_WL_CRONJOB, "k8s.cronjob.name=w"},
	             {ZT_HBONE_WL_POD, "k8s.pod.name=w"},
	             {ZT_HBONE_WL_JOB, "k8s.job.name=w"}};
	struct zt_hbone_meta m = {0};
	char buf[ZT_HBONE_BAGGAGE_STRLEN];

	ck_assert_int_eq(zt_hbone_baggage_format(&m, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	snprintf(m.workload, sizeof(m.workload), "w");
	for (size_t i = 0; i < N(kinds); i++) {
		struct zt_hbone_meta back = {0};
		m.wl_type = kinds[i].type;
		ck_assert_int_gt(zt_hbone_baggage_format(&m, buf, sizeof(buf)), 0);
		ck_assert_str_eq(buf, kinds[i].key);
		ck_assert(zt_hbone_baggage_parse(&back, buf, strlen(buf)));
		assert_meta_eq(&m, &back);
	}
	snprintf(m.zone, sizeof(m.zone), "z1");
	zt_hbone_baggage_format(&m, buf, sizeof(buf));
	ck_assert_str_eq(buf, "k8s.job.name=w,cloud.availability_zone=z1");
}
END_TEST

START_TEST(baggage_round_trips_including_characters_that_need_escaping)
{
	struct zt_hbone_meta m, back = {0};
	char buf[ZT_HBONE_BAGGAGE_STRLEN];

	fill_meta(&m);
	snprintf(m.region, sizeof(m.region), "a,b=c;d e\"%%\\");
	snprintf(m.version, sizeof(m.version), "%%41");
	ck_assert_int_gt(zt_hbone_baggage_format(&m, buf, sizeof(buf)), 0);
	ck_assert_ptr_null(strchr(buf, ' '));
	ck_assert_ptr_null(strchr(buf, ';'));
	ck_assert_ptr_null(strchr(buf, '"'));
	ck_assert(zt_hbone_baggage_parse(&back, buf, strlen(buf)));
	/* Spaces are not printable baggage octets, so the region comes back as not known. */
	ck_assert_str_eq(back.region, "");
	snprintf(m.region, sizeof(m.region), "a,b=c;d\"%%\\");
	zt_hbone_baggage_format(&m, buf, sizeof(buf));
	memset(&back, 0, sizeof(back));
	ck_assert(zt_hbone_baggage_parse(&back, buf, strlen(buf)));
	assert_meta_eq(&m, &back);
}
END_TEST

START_TEST(baggage_parse_skips_junk_and_keeps_good_entries)
{
	static const struct {
		const char *in;
		const char *ns;       /* expected namespace afterwards */
		const char *workload; /* expected workload */
		bool taken;
	} cases[] = {
	        {"k8s.namespace.name=ns1,k8s.pod.name=p", "ns1", "p", true},
	        {" k8s.namespace.name = ns1 ;prop=1 , junk", "ns1", "", true},
	        {",,,=,==,k8s.namespace.name,service.name", "", "", false},
	        {"unknown.key=1,K8S.NAMESPACE.NAME=x", "", "", false},
	        {"k8s.namespace.name=a%", "a%", "", true},
	        {"k8s.namespace.name=a%4", "a%4", "", true},
	        {"k8s.namespace.name=%41b", "Ab", "", true},
	        {"k8s.namespace.name=%00", "", "", false},
	        {"k8s.namespace.name=a b", "", "", false},
	        {"k8s.namespace.name=\x01", "", "", false},
	        {"k8s.namespace.name=\xc3\xa9", "", "", false},
	        {"k8s.namespace.name=x,k8s.namespace.name=", "", "", true},
	        {"k8s.namespace.name=a=b", "a=b", "", true},
	        {"k8s.deployment.name=w,k8s.pod.name=\x01", "", "w", true},
	        {"k8s.deployment.name=w,k8s.pod.name=p", "", "p", true},
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct zt_hbone_meta m = {0};
		bool taken = zt_hbone_baggage_parse(&m, cases[i].in, strlen(cases[i].in));
		ck_assert_msg(taken == cases[i].taken, "case %zu", i);
		ck_assert_str_eq(m.ns, cases[i].ns);
		ck_assert_str_eq(m.workload, cases[i].workload);
		/* The kind follows the key that set the workload, never a skipped one. */
		if (m.workload[0] == 'w')
			ck_assert_int_eq(m.wl_type, ZT_HBONE_WL_DEPLOYMENT);
		if (m.workload[0] == 'p')
			ck_assert_int_eq(m.wl_type, ZT_HBONE_WL_POD);
	}
}
END_TEST

START_TEST(baggage_parse_bounds_values_and_headers)
{
	static char big[ZT_HBONE_BAGGAGE_IN + 64];
	struct zt_hbone_meta m = {0};
	size_t n;

	/* A value one byte over the bound is skipped; exactly at the bound is kept. */
	n = (size_t)snprintf(big, sizeof(big), "k8s.namespace.name=");
	memset(big + n, 'x', ZT_HBONE_META_MAX + 1);
	big[n + ZT_HBONE_META_MAX + 1] = '\0';
	ck_assert(!zt_hbone_baggage_parse(&m, big, strlen(big)));
	big[n + ZT_HBONE_META_MAX] = '\0';
	ck_assert(zt_hbone_baggage_parse(&m, big, strlen(big)));
	ck_assert_uint_eq(strlen(m.ns), ZT_HBONE_META_MAX);
	/* A header over ZT_HBONE_BAGGAGE_IN is ignored as a whole. */
	memset(&m, 0, sizeof(m));
	n = (size_t)snprintf(big, sizeof(big), "k8s.cluster.name=c,");
	memset(big + n, ',', ZT_HBONE_BAGGAGE_IN - n + 1);
	big[ZT_HBONE_BAGGAGE_IN + 1] = '\0';
	ck_assert(!zt_hbone_baggage_parse(&m, big, strlen(big)));
	ck_assert_str_eq(m.cluster, "");
	/* A value longer than the bound once decoded ("%41" x 254) is skipped too. */
	n = (size_t)snprintf(big, sizeof(big), "k8s.cluster.name=");
	for (int i = 0; i <= ZT_HBONE_META_MAX; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%%41");
	ck_assert(!zt_hbone_baggage_parse(&m, big, n));
}
END_TEST

START_TEST(baggage_of_maximal_metadata_fits_the_header_bounds)
{
	struct zt_hbone_authority t;
	struct zt_sockaddr client;
	struct zt_hbone_meta m;
	struct zt_hbone_req r;
	char host[ZT_HBONE_HOST_MAX + 1];
	size_t total = 0;
	char *fields[] = {m.cluster, m.ns, m.workload, m.service, m.version, m.region, m.zone};

	/* Every value at its bound and made of characters that expand x3 when escaped. */
	for (size_t i = 0; i < N(fields); i++) {
		memset(fields[i], ',', ZT_HBONE_META_MAX);
		fields[i][ZT_HBONE_META_MAX] = '\0';
	}
	m.wl_type = ZT_HBONE_WL_DEPLOYMENT;
	for (int i = 0; i < ZT_HBONE_HOST_MAX; i++)
		host[i] = (i % 50 == 49) ? '.' : 'h';
	host[ZT_HBONE_HOST_MAX] = '\0';
	ck_assert_int_eq(
	        zt_addr_parse(&client, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 47, 0),
	        0);
	ck_assert(client.ip.family == AF_INET6);
	char auth[ZT_HBONE_HOST_MAX + 8];
	snprintf(auth, sizeof(auth), "%s:65535", host);
	ck_assert_int_eq(zt_hbone_authority_parse(&t, auth, strlen(auth)), 0);
	ck_assert_int_eq(zt_hbone_req_build(&r, &(struct zt_hbone_connect){.target = &t,
	                                                                   .client = &client,
	                                                                   .service_host = host,
	                                                                   .source = &m,
	                                                                   .network = host}),
	                 0);
	ck_assert_uint_eq(r.n, ZT_HBONE_REQ_HEADERS);
	for (size_t i = 0; i < r.n; i++)
		total += r.h[i].name_len + r.h[i].value_len + 32; /* RFC 9113 §6.5.2 */
	/* Under the smallest MAX_HEADER_LIST_SIZE a peer of ours announces (client, 16 KiB). */
	ck_assert_uint_le(total, 16u << 10);
	ck_assert_uint_eq(strlen(find(&r, "baggage")), r.h[3].value_len);
	/* One byte over the value bound does not fit in a struct zt_hbone_meta: the formatter
	 * refuses an unterminated field rather than reading past it. */
	memset(m.zone, 'z', sizeof(m.zone));
	ck_assert_int_eq(zt_hbone_baggage_format(&m, r.baggage, sizeof(r.baggage)), ZT_E_TOOBIG);
	/* A buffer too small for the escaped text is reported, never overrun. */
	fill_meta(&m);
	char small[32];
	ck_assert_int_eq(zt_hbone_baggage_format(&m, small, sizeof(small)), ZT_E_TOOBIG);
	ck_assert_str_eq(small, "");
}
END_TEST

START_TEST(forwarded_host_parse_is_tolerant)
{
	static const struct {
		const char *in;
		const char *host; /* "" when none */
	} cases[] = {
	        {"for=\"10.0.0.1:4567\";host=echo.default.svc.cluster.local",
	         "echo.default.svc.cluster.local"},
	        {"for=\"10.0.0.1:4567\"", ""},
	        {"", ""},
	        {"host=Echo.Default:8080", "echo.default"},
	        {"Host=\"a.b\";for=1.2.3.4", "a.b"},
	        {" for=x ; HOST = a.b ", "a.b"},
	        {"for=\"[fd00::1]:1\";proto=http;host=\"q\\.x\"", "q.x"},
	        {"for=a, host=second.element", ""},
	        {"host=\"unterminated", ""},
	        {"host=[fd00::1]:80", ""},
	        {"host=a;b", "a"},
	        {"host=a b", "a"},
	        {"host=a:99999", ""},
	        {"host=a/b", ""},
	        {"host=", ""},
	        {"for;host=x.y", "x.y"},
	        {"for=\"a;host=evil\";host=good", "good"},
	        {";;;=;host=ok", "ok"},
	};

	for (size_t i = 0; i < N(cases); i++) {
		char host[ZT_HBONE_HOST_MAX + 1] = "junk";
		bool found = zt_hbone_forwarded_host(cases[i].in, strlen(cases[i].in), host);
		ck_assert_msg(found == (cases[i].host[0] != '\0'), "case %zu '%s'", i, cases[i].in);
		ck_assert_str_eq(host, cases[i].host);
	}
}
END_TEST

START_TEST(forwarded_host_over_the_bound_is_ignored)
{
	char in[600], host[ZT_HBONE_HOST_MAX + 1];
	int n = snprintf(in, sizeof(in), "host=");

	memset(in + n, 'a', 300);
	in[n + 300] = '\0';
	ck_assert(!zt_hbone_forwarded_host(in, strlen(in), host));
	ck_assert_str_eq(host, "");
}
END_TEST

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
			return false;
	return true;
}

START_TEST(traceparent_has_w3c_format_and_is_random)
{
	char a[ZT_HBONE_TRACEPARENT_LEN + 1], b[ZT_HBONE_TRACEPARENT_LEN + 1];

	ck_assert_int_eq(zt_hbone_traceparent_new(a), 0);
	ck_assert_int_eq(zt_hbone_traceparent_new(b), 0);
	ck_assert_uint_eq(strlen(a), ZT_HBONE_TRACEPARENT_LEN);
	ck_assert(strncmp(a, "00-", 3) == 0);
	ck_assert(is_lower_hex(a + 3, 32));
	ck_assert_int_eq(a[35], '-');
	ck_assert(is_lower_hex(a + 36, 16));
	ck_assert_str_eq(a + 52, "-00");
	/* Fresh ids per call: both the trace id and the parent id differ. */
	ck_assert(memcmp(a + 3, b + 3, 32) != 0);
	ck_assert(memcmp(a + 36, b + 36, 16) != 0);
}
END_TEST

START_TEST(inbound_keeps_only_well_formed_traceparent)
{
	static const struct {
		const char *in;
		bool kept;
	} cases[] = {
	        {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true},
	        {"00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", false},
	        {"00-00000000000000000000000000000000-b7ad6b7169203331-01", false},
	        {"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false},
	        {"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false},
	        {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0", false},
	        {"00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01", false},
	        {"", false},
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct zt_h2_header h[] = {hdr(":method", "CONNECT"),
		                           hdr(":authority", "1.2.3.4:80"),
		                           hdr("traceparent", cases[i].in)};
		struct zt_hbone_inbound in;
		struct zt_hbone_status st;

		ck_assert_int_eq(zt_hbone_parse_request(&in, h, 3, &st), 200);
		ck_assert_msg(strcmp(in.traceparent, cases[i].kept ? cases[i].in : "") == 0,
		              "case %zu", i);
	}
}
END_TEST

START_TEST(server_reads_back_what_the_client_sent)
{
	struct zt_hbone_authority t;
	struct zt_sockaddr client;
	struct zt_hbone_meta m;
	struct zt_hbone_req r;
	struct zt_hbone_inbound in;
	struct zt_hbone_status st;
	struct zt_ip dst = ip("10.0.0.5");

	fill_meta(&m);
	m.wl_type = ZT_HBONE_WL_CRONJOB;
	ck_assert_int_eq(zt_hbone_authority_parse(&t, "10.0.0.5:8080", 13), 0);
	ck_assert_int_eq(zt_addr_parse(&client, "10.0.0.1:4567", 13, 0), 0);
	ck_assert_int_eq(
	        zt_hbone_req_build(
	                &r,
	                &(struct zt_hbone_connect){.target = &t,
	                                           .client = &client,
	                                           .service_host = "Echo.default.svc.cluster.local",
	                                           .source = &m,
	                                           .network = "net-a"}),
	        0);
	ck_assert_int_eq(zt_hbone_validate(&in, r.h, r.n, &dst, 0, &st), 200);
	ck_assert(!in.target.is_host);
	ck_assert(zt_addr_equal(&in.target.addr, &t.addr));
	ck_assert_str_eq(in.forwarded_host, "echo.default.svc.cluster.local");
	ck_assert(in.has_baggage);
	assert_meta_eq(&in.baggage, &m);
	ck_assert_str_eq(in.traceparent, r.traceparent);
	ck_assert_str_eq(in.network, "net-a");
}
END_TEST

START_TEST(inbound_optional_headers_absent_or_hostile_leave_fields_empty)
{
	char junk[ZT_HBONE_META_MAX + 50];
	struct zt_hbone_inbound in;
	struct zt_hbone_status st;

	memset(junk, 'n', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	struct zt_h2_header h[] = {
	        hdr(":method", "CONNECT"),        hdr(":authority", "1.2.3.4:80"),
	        hdr("baggage", "garbage"),        hdr("forwarded", "host=\"x"),
	        hdr("x-forwarded-network", junk), hdr("x-forwarded-network", "a,b")};
	ck_assert_int_eq(zt_hbone_parse_request(&in, h, N(h), &st), 200);
	ck_assert(!in.has_baggage);
	ck_assert_str_eq(in.forwarded_host, "");
	ck_assert_str_eq(in.network, "");
	ck_assert_str_eq(in.traceparent, "");
	ck_assert_str_eq(in.baggage.ns, "");
}
END_TEST

Suite *hbone_suite(void);
Suite *hbone_suite(void)
{
	Suite *s = suite_create("hbone");
	TCase *a = tcase_create("authority"), *v = tcase_create("server"),
	      *c = tcase_create("client");

	tcase_add_test(a, authority_parse_accepts_ip_v6_mapped_and_host_forms);
	tcase_add_test(a, authority_parse_rejects_missing_port_and_junk);
	tcase_add_test(a, authority_host_length_limits_are_dns_limits);
	tcase_add_test(a, authority_format_reports_small_buffer_and_unset_value);
	suite_add_tcase(s, a);
	tcase_add_test(v, validate_answers_each_failure_with_its_status);
	tcase_add_test(v, validate_accepts_matching_ip_and_the_documented_exceptions);
	tcase_add_test(v, duplicate_pseudo_headers_are_rejected);
	tcase_add_test(v, check_port_applies_to_resolved_host_name_ports);
	tcase_add_test(v, inbound_keeps_only_well_formed_traceparent);
	tcase_add_test(v, inbound_optional_headers_absent_or_hostile_leave_fields_empty);
	tcase_add_test(v, forwarded_host_parse_is_tolerant);
	tcase_add_test(v, forwarded_host_over_the_bound_is_ignored);
	tcase_add_test(v, baggage_parse_skips_junk_and_keeps_good_entries);
	tcase_add_test(v, baggage_parse_bounds_values_and_headers);
	suite_add_tcase(s, v);
	tcase_add_test(c, request_carries_connect_authority_forwarded_baggage_traceparent);
	tcase_add_test(c, forwarded_without_service_host_and_with_ipv6_client);
	tcase_add_test(c, request_build_rejects_bad_inputs);
	tcase_add_test(c, baggage_omits_empty_values_and_names_the_workload_kind);
	tcase_add_test(c, baggage_round_trips_including_characters_that_need_escaping);
	tcase_add_test(c, baggage_of_maximal_metadata_fits_the_header_bounds);
	tcase_add_test(c, traceparent_has_w3c_format_and_is_random);
	tcase_add_test(c, server_reads_back_what_the_client_sent);
	suite_add_tcase(s, c);
	return s;
}
