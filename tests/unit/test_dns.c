/* The DNS proxy's pure core: aliases of a query name by search path, the local lookup against
 * a store (tests/data/dns/local.yaml), and the messages built with ldns (decoded back with
 * ldns to check them), including malformed input. */
#include <check.h>
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "dns/lookup.h"
#include "dns/message.h"
#include "dns/upstream.h"
#include "runtime/live.h"
#include "state/local.h"
#include "state/service.h"
#include "state/store.h"

#define MESH "tests/data/dns/local.yaml"

static char err[512];

static struct zt_dns_client client(const char *ns)
{
	return (struct zt_dns_client){
	        .ns = ns, .network = "", .cluster_domain = "cluster.local", .ipv6_enabled = true};
}

static struct zt_store *mesh(void)
{
	struct zt_store *s = zt_store_new();

	ck_assert_msg(zt_local_xds_load(s, MESH, err, sizeof(err)) == 0, "%s", err);
	return s;
}

static bool has_alias(const struct zt_dns_alias *a, size_t n, const char *name, bool stripped)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].name, name) == 0 && a[i].stripped == stripped)
			return true;
	return false;
}

/* ---- aliases ------------------------------------------------------------------------------ */

START_TEST(aliases_expand_a_short_name_by_the_pods_namespace)
{
	struct zt_dns_client c = client("default");
	struct zt_dns_alias a[ZT_DNS_MAX_ALIASES];
	size_t n = zt_dns_aliases("echo", &c, a, ZT_DNS_MAX_ALIASES);

	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(a[0].name, "echo");
	ck_assert_str_eq(a[1].name, "echo.default.svc.cluster.local");
	ck_assert(!a[1].stripped);
}
END_TEST

START_TEST(aliases_of_two_and_three_labels_follow_the_reference)
{
	struct zt_dns_client c = client("default");
	struct zt_dns_alias a[ZT_DNS_MAX_ALIASES];
	size_t n = zt_dns_aliases("echo.other", &c, a, ZT_DNS_MAX_ALIASES);

	ck_assert(has_alias(a, n, "echo.other.svc.cluster.local", false));
	ck_assert(has_alias(a, n, "echo.other.default.svc.cluster.local", false));
	n = zt_dns_aliases("echo.other.svc", &c, a, ZT_DNS_MAX_ALIASES);
	ck_assert(has_alias(a, n, "echo.other.svc.cluster.local", false));
	ck_assert(has_alias(a, n, "echo.other.svc.svc.cluster.local", false));
	n = zt_dns_aliases("a.b.c.d.e", &c, a, ZT_DNS_MAX_ALIASES);
	ck_assert_uint_eq(n, 1); /* more than four labels: the name alone */
}
END_TEST

START_TEST(aliases_strip_each_search_domain_the_name_ends_with)
{
	struct zt_dns_client c = client("default");
	struct zt_dns_alias a[ZT_DNS_MAX_ALIASES];
	size_t n =
	        zt_dns_aliases("echo.other.default.svc.cluster.local", &c, a, ZT_DNS_MAX_ALIASES);

	ck_assert_str_eq(a[0].name, "echo.other.default.svc.cluster.local");
	ck_assert(has_alias(a, n, "echo.other", true));
	ck_assert(has_alias(a, n, "echo.other.svc.cluster.local", true));
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].name, "echo.other.svc.cluster.local") == 0)
			ck_assert_str_eq(a[i].base, "echo.other");
	/* No duplicates. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			ck_assert_str_ne(a[i].name, a[j].name);
}
END_TEST

START_TEST(aliases_use_the_given_search_list_in_dedicated_mode)
{
	const char *const search[] = {"corp.example"};
	struct zt_dns_client c = client("default");
	struct zt_dns_alias a[ZT_DNS_MAX_ALIASES];
	size_t n;

	c.search = search;
	c.n_search = 1;
	n = zt_dns_aliases("echo.corp.example", &c, a, ZT_DNS_MAX_ALIASES);
	ck_assert(has_alias(a, n, "echo", true));
	ck_assert(has_alias(a, n, "echo.default.svc.cluster.local", true));
	ck_assert(!has_alias(a, n, "echo.corp", true));
}
END_TEST

START_TEST(name_norm_lowercases_and_rejects_empty_labels)
{
	char out[ZT_DNS_NAME_MAX + 1];

	ck_assert_int_eq(zt_dns_name_norm("Echo.Default.", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "echo.default");
	ck_assert_int_eq(zt_dns_name_norm("a..b", out, sizeof(out)), -1);
	ck_assert_int_eq(zt_dns_name_norm(".", out, sizeof(out)), -1);
	ck_assert_int_eq(zt_dns_name_norm("", out, sizeof(out)), -1);
}
END_TEST

/* ---- lookup ------------------------------------------------------------------------------- */

static int lookup(struct zt_store *s, const char *ns, const char *q, uint16_t t,
                  struct zt_dns_answer *a)
{
	struct zt_dns_client c = client(ns);
	return zt_dns_lookup(s, &c, q, t, a);
}

static bool has_addr(const struct zt_dns_answer *a, const char *ip)
{
	struct zt_ip want;

	ck_assert_int_eq(zt_ip_parse(&want, ip, strlen(ip)), 0);
	for (size_t i = 0; i < a->n_addrs; i++)
		if (zt_ip_equal(&a->addrs[i], &want))
			return true;
	return false;
}

START_TEST(lookup_answers_a_short_name_with_the_vip_of_the_pods_network)
{
	struct zt_store *s = mesh();
	struct zt_dns_answer a;

	ck_assert_int_eq(lookup(s, "default", "echo", ZT_DNS_TYPE_A, &a), 1);
	ck_assert_str_eq(a.svc->key, "default/echo.default.svc.cluster.local");
	ck_assert_uint_eq(a.n_addrs, 1); /* not the other network's VIP */
	ck_assert(has_addr(&a, "10.96.0.10"));
	ck_assert_str_eq(a.owner, "echo");
	ck_assert_str_eq(a.cname_from, "");
	zt_dns_answer_clear(&a);
	ck_assert_int_eq(lookup(s, "default", "echo", ZT_DNS_TYPE_AAAA, &a), 1);
	ck_assert(has_addr(&a, "fd00:96::10"));
	zt_dns_answer_clear(&a);
	zt_store_free(s);
}
END_TEST

START_TEST(lookup_resolves_the_same_short_name_per_namespace)
{
	struct zt_store *s = mesh();
	struct zt_dns_answer a;

	ck_assert_int_eq(lookup(s, "other", "echo", ZT_DNS_TYPE_A, &a), 1);
	ck_assert(has_addr(&a, "10.96.1.10"));
	zt_dns_answer_clear(&a);
	ck_assert_int_eq(lookup(s, "default", "echo.other", ZT_DNS_TYPE_A, &a), 1);
	ck_assert(has_addr(&a, "10.96.1.10"));
	zt_dns_answer_clear(&a);
	zt_store_free(s);
}
END_TEST

START_TEST(lookup_of_a_stripped_name_answers_with_a_cname)
{
	struct zt_store *s = mesh();
	struct zt_dns_answer a;
	const char *q = "echo.default.svc.cluster.local.default.svc.cluster.local";

	ck_assert_int_eq(lookup(s, "default", q, ZT_DNS_TYPE_A, &a), 1);
	ck_assert_str_eq(a.cname_from, q);
	ck_assert_str_eq(a.owner, "echo.default.svc.cluster.local");
	zt_dns_answer_clear(&a);
	zt_store_free(s);
}
END_TEST

START_TEST(lookup_answers_headless_services_with_endpoint_addresses)
{
	struct zt_store *s = mesh();
	struct zt_dns_answer a;

	ck_assert_int_eq(lookup(s, "default", "db", ZT_DNS_TYPE_A, &a), 1);
	ck_assert_uint_eq(a.n_addrs, 1);
	ck_assert(has_addr(&a, "10.0.0.7"));
	zt_dns_answer_clear(&a);
	ck_assert_int_eq(lookup(s, "default", "db", ZT_DNS_TYPE_AAAA, &a), 1);
	ck_assert(has_addr(&a, "fd00::7"));
	zt_dns_answer_clear(&a);
	zt_store_free(s);
}
END_TEST

START_TEST(lookup_answers_service_entry_hosts_and_wildcards)
{
	struct zt_store *s = mesh();
	struct zt_dns_answer a;

	ck_assert_int_eq(lookup(s, "default", "api.example.com", ZT_DNS_TYPE_A, &a), 1);
	ck_assert(has_addr(&a, "240.240.0.1"));
	zt_dns_answer_clear(&a);
	ck_assert_int_eq(lookup(s, "default", "x.y.wild.example", ZT_DNS_TYPE_A, &a), 1);
	ck_assert(has_addr(&a, "240.240.0.2"));
	ck_assert_str_eq(a.owner, "x.y.wild.example");
	zt_dns_answer_clear(&a);
	/* The wildcard covers names below it only. */
	ck_assert_int_eq(lookup(s, "default", "wild.example", ZT_DNS_TYPE_A, &a), 0);
	zt_store_free(s);
}
END_TEST

START_TEST(lookup_forwards_unknown_names_and_other_types)
{
	struct zt_store *s = mesh();
	struct zt_dns_answer a;

	ck_assert_int_eq(lookup(s, "default", "nope.example.com", ZT_DNS_TYPE_A, &a), 0);
	ck_assert_ptr_null(a.svc);
	ck_assert_int_eq(lookup(s, "default", "echo", 16 /* TXT */, &a), 0);
	zt_store_free(s);
}
END_TEST

START_TEST(lookup_hides_namespace_visible_services_from_other_namespaces)
{
	struct zt_store *s = mesh();
	struct zt_dns_answer a;

	ck_assert_int_eq(
	        lookup(s, "default", "private.secret.svc.cluster.local", ZT_DNS_TYPE_A, &a), 0);
	ck_assert_int_eq(lookup(s, "secret", "private", ZT_DNS_TYPE_A, &a), 1);
	ck_assert(has_addr(&a, "10.96.2.10"));
	zt_dns_answer_clear(&a);
	zt_store_free(s);
}
END_TEST

START_TEST(lookup_answers_nodata_for_a_family_the_service_lacks)
{
	struct zt_store *s = mesh();
	struct zt_dns_answer a;
	struct zt_dns_client c = client("default");

	ck_assert_int_eq(lookup(s, "default", "v4only", ZT_DNS_TYPE_AAAA, &a), 1);
	ck_assert_uint_eq(a.n_addrs, 0);
	zt_dns_answer_clear(&a);
	c.ipv6_enabled = false;
	ck_assert_int_eq(zt_dns_lookup(s, &c, "echo", ZT_DNS_TYPE_AAAA, &a), 1);
	ck_assert_uint_eq(a.n_addrs, 0);
	zt_dns_answer_clear(&a);
	zt_store_free(s);
}
END_TEST

/* ---- messages ----------------------------------------------------------------------------- */

static void make_query(const char *name, ldns_rr_type t, bool edns, uint8_t **wire, size_t *len)
{
	ldns_pkt *p =
	        ldns_pkt_query_new(ldns_dname_new_frm_str(name), t, LDNS_RR_CLASS_IN, LDNS_RD);

	ldns_pkt_set_id(p, 0x1234);
	if (edns)
		ldns_pkt_set_edns_udp_size(p, 4096);
	ck_assert_int_eq(ldns_pkt2wire(wire, p, len), LDNS_STATUS_OK);
	ldns_pkt_free(p);
}

static ldns_pkt *decode(const uint8_t *wire, size_t len)
{
	ldns_pkt *p = NULL;

	ck_assert_int_eq(ldns_wire2pkt(&p, wire, len), LDNS_STATUS_OK);
	return p;
}

START_TEST(query_parse_reads_name_type_and_edns)
{
	struct zt_dns_query q;
	uint8_t *wire;
	size_t len;

	make_query("Echo.Default.", LDNS_RR_TYPE_AAAA, true, &wire, &len);
	ck_assert_int_eq(zt_dns_query_parse(wire, len, &q), 0);
	ck_assert_str_eq(q.name, "echo.default");
	ck_assert_uint_eq(q.qtype, ZT_DNS_TYPE_AAAA);
	ck_assert_str_eq(q.type_label, "aaaa");
	ck_assert_uint_eq(q.id, 0x1234);
	ck_assert(q.edns);
	ck_assert_uint_eq(zt_dns_udp_limit(&q), 4096);
	zt_dns_query_clear(&q);
	free(wire);
}
END_TEST

START_TEST(local_reply_is_authoritative_with_ttl_30_and_cname_first)
{
	struct zt_store *s = mesh();
	struct zt_dns_query q;
	struct zt_dns_answer a;
	uint8_t *wire, *out;
	size_t len, olen;
	ldns_pkt *p;
	ldns_rr_list *an;
	const char *name = "echo.default.svc.cluster.local.default.svc.cluster.local.";

	make_query(name, LDNS_RR_TYPE_A, false, &wire, &len);
	ck_assert_int_eq(zt_dns_query_parse(wire, len, &q), 0);
	ck_assert_int_eq(lookup(s, "default", q.name, q.qtype, &a), 1);
	ck_assert_int_eq(zt_dns_reply_local(&q, &a, 512, &out, &olen), 0);
	p = decode(out, olen);
	ck_assert(ldns_pkt_qr(p) && ldns_pkt_aa(p) && ldns_pkt_ra(p));
	ck_assert_uint_eq(ldns_pkt_id(p), 0x1234);
	ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	an = ldns_pkt_answer(p);
	ck_assert_uint_eq(ldns_rr_list_rr_count(an), 2);
	ck_assert_int_eq(ldns_rr_get_type(ldns_rr_list_rr(an, 0)), LDNS_RR_TYPE_CNAME);
	ck_assert_int_eq(ldns_rr_get_type(ldns_rr_list_rr(an, 1)), LDNS_RR_TYPE_A);
	ck_assert_uint_eq(ldns_rr_ttl(ldns_rr_list_rr(an, 1)), 30);
	char *owner = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(an, 1)));
	ck_assert_str_eq(owner, "echo.default.svc.cluster.local.");
	free(owner);
	ldns_pkt_free(p);
	free(out);
	zt_dns_answer_clear(&a);
	zt_dns_query_clear(&q);
	free(wire);
	zt_store_free(s);
}
END_TEST

START_TEST(reply_over_the_udp_limit_is_truncated)
{
	struct zt_dns_query q;
	struct zt_dns_answer a = {0};
	uint8_t *wire, *out;
	size_t len, olen;
	ldns_pkt *p;

	make_query("many.example.", LDNS_RR_TYPE_AAAA, false, &wire, &len);
	ck_assert_int_eq(zt_dns_query_parse(wire, len, &q), 0);
	snprintf(a.owner, sizeof(a.owner), "many.example");
	for (size_t i = 0; i < ZT_DNS_MAX_ADDRS; i++) {
		a.addrs[i].family = AF_INET6;
		a.addrs[i].bytes[15] = (uint8_t)i;
	}
	a.n_addrs = ZT_DNS_MAX_ADDRS; /* 32 AAAA records: over 512 bytes */
	ck_assert_int_eq(zt_dns_reply_local(&q, &a, zt_dns_udp_limit(&q), &out, &olen), 0);
	ck_assert_uint_le(olen, 512);
	p = decode(out, olen);
	ck_assert(ldns_pkt_tc(p));
	ck_assert_uint_eq(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
	free(out);
	ck_assert_int_eq(zt_dns_reply_local(&q, &a, ZT_DNS_MSG_MAX, &out, &olen), 0);
	p = decode(out, olen);
	ck_assert(!ldns_pkt_tc(p));
	ck_assert_uint_eq(ldns_pkt_ancount(p), ZT_DNS_MAX_ADDRS);
	ldns_pkt_free(p);
	free(out);
	zt_dns_query_clear(&q);
	free(wire);
}
END_TEST

START_TEST(malformed_queries_get_formerr_or_are_dropped)
{
	static const uint8_t junk[] = {0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00,
	                               0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 'x'};
	struct zt_dns_query q;
	uint8_t *out, buf[64];
	size_t olen;
	ldns_pkt *p;

	ck_assert_int_eq(zt_dns_query_parse(junk, 5, &q), -1);
	ck_assert_int_eq(zt_dns_query_parse(junk, sizeof(junk), &q), ZT_DNS_RCODE_FORMERR);
	ck_assert_int_eq(
	        zt_dns_reply_error(junk, sizeof(junk), NULL, ZT_DNS_RCODE_FORMERR, &out, &olen), 0);
	p = decode(out, olen);
	ck_assert_uint_eq(ldns_pkt_id(p), 0xabcd);
	ck_assert(ldns_pkt_qr(p));
	ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_FORMERR);
	ldns_pkt_free(p);
	free(out);
	/* A response sent as a query, and a query with no question. */
	memcpy(buf, junk, 12);
	buf[2] |= 0x80;
	buf[5] = 0;
	ck_assert_int_eq(zt_dns_query_parse(buf, 12, &q), ZT_DNS_RCODE_FORMERR);
	buf[2] = 0x01;
	ck_assert_int_eq(zt_dns_query_parse(buf, 12, &q), ZT_DNS_RCODE_FORMERR);
	/* Opcode STATUS (2): not implemented. */
	buf[2] = 2 << 3;
	ck_assert_int_eq(zt_dns_query_parse(buf, 12, &q), ZT_DNS_RCODE_NOTIMP);
}
END_TEST

START_TEST(forwarded_reply_keeps_the_clients_id_and_upstream_rcode)
{
	struct zt_dns_query q;
	uint8_t *wire, *up, *out;
	size_t len, ulen, olen;
	ldns_pkt *u, *p;

	make_query("nope.example.", LDNS_RR_TYPE_A, true, &wire, &len);
	ck_assert_int_eq(zt_dns_query_parse(wire, len, &q), 0);
	ck_assert_int_eq(zt_dns_query_upstream(&q, 0x4242, &up, &ulen), 0);
	u = decode(up, ulen);
	ck_assert_uint_eq(ldns_pkt_id(u), 0x4242);
	ck_assert(ldns_pkt_rd(u));
	ldns_pkt_set_qr(u, true);
	ldns_pkt_set_aa(u, true);
	ldns_pkt_set_rcode(u, LDNS_RCODE_NXDOMAIN);
	free(up);
	ck_assert_int_eq(ldns_pkt2wire(&up, u, &ulen), LDNS_STATUS_OK);
	ldns_pkt_free(u);
	bool tc = true;
	ck_assert_int_eq(zt_dns_response_check(up, ulen, 0x4242, &tc), 0);
	ck_assert(!tc);
	ck_assert_int_eq(zt_dns_response_check(up, ulen, 0x4243, &tc), -1);
	ck_assert_int_eq(zt_dns_reply_forwarded(&q, up, ulen, 4096, &out, &olen), 0);
	p = decode(out, olen);
	ck_assert_uint_eq(ldns_pkt_id(p), 0x1234);
	ck_assert_int_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	ck_assert(!ldns_pkt_aa(p));
	ck_assert_uint_eq(ldns_pkt_edns_udp_size(p), 4096);
	ldns_pkt_free(p);
	free(out);
	free(up);
	zt_dns_query_clear(&q);
	free(wire);
}
END_TEST

START_TEST(resolv_conf_gives_nameservers_and_search_domains)
{
	char path[] = "/tmp/zt-resolv-XXXXXX";
	int fd = mkstemp(path);
	struct zt_dns_resolv r;
	const char text[] = "search a.example b.example\nnameserver 192.0.2.53\n"
	                    "nameserver 2001:db8::53\noptions ndots:5\n";

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	ck_assert_int_eq(zt_dns_resolv_load(path, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.n_servers, 2);
	ck_assert_uint_eq(r.servers[0].port, 53);
	ck_assert_uint_eq(r.n_search, 2);
	ck_assert_str_eq(r.search[1], "b.example");
	unlink(path);
	ck_assert_int_lt(zt_dns_resolv_load("/nonexistent/resolv.conf", &r, err, sizeof(err)), 0);
}
END_TEST

/* ---- settings (spec §13.1) ----------------------------------------------------------------- */

START_TEST(dns_settings_default_on_both_loopbacks_and_follow_the_variables)
{
	struct zt_config cfg;
	char *env_default[] = {NULL};
	char *env_off[] = {"ISTIO_META_DNS_CAPTURE=False", NULL};
	char *env_on[] = {"ISTIO_META_DNS_CAPTURE=TRUE", "ISTIO_META_DNS_PROXY_ADDR=127.0.0.1:5353",
	                  NULL};
	char *env_bad[] = {"ISTIO_META_DNS_PROXY_ADDR=localhost", NULL};
	char buf[ZT_ADDR_STRLEN];

	ck_assert_int_eq(zt_config_load(&cfg, env_default, err, sizeof(err)), 0);
	ck_assert(cfg.dns_enabled);
	ck_assert_uint_eq(cfg.n_dns_addrs, 2);
	zt_addr_format(&cfg.dns_addrs[1], buf, sizeof(buf));
	ck_assert_str_eq(buf, "[::1]:15053");
	zt_config_clear(&cfg);
	ck_assert_int_eq(zt_config_load(&cfg, env_off, err, sizeof(err)), 0);
	ck_assert(!cfg.dns_enabled);
	zt_config_clear(&cfg);
	ck_assert_int_eq(zt_config_load(&cfg, env_on, err, sizeof(err)), 0);
	ck_assert(cfg.dns_enabled);
	ck_assert_uint_eq(cfg.n_dns_addrs, 1);
	ck_assert_uint_eq(cfg.dns_addrs[0].port, 5353);
	zt_config_clear(&cfg);
	ck_assert_int_ne(zt_config_load(&cfg, env_bad, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "failed to parse DNS_PROXY_ADDR"));
}
END_TEST

Suite *dns_suite(void);
Suite *dns_suite(void)
{
	Suite *s = suite_create("dns");
	TCase *tc = tcase_create("dns");

	tcase_add_test(tc, aliases_expand_a_short_name_by_the_pods_namespace);
	tcase_add_test(tc, aliases_of_two_and_three_labels_follow_the_reference);
	tcase_add_test(tc, aliases_strip_each_search_domain_the_name_ends_with);
	tcase_add_test(tc, aliases_use_the_given_search_list_in_dedicated_mode);
	tcase_add_test(tc, name_norm_lowercases_and_rejects_empty_labels);
	tcase_add_test(tc, lookup_answers_a_short_name_with_the_vip_of_the_pods_network);
	tcase_add_test(tc, lookup_resolves_the_same_short_name_per_namespace);
	tcase_add_test(tc, lookup_of_a_stripped_name_answers_with_a_cname);
	tcase_add_test(tc, lookup_answers_headless_services_with_endpoint_addresses);
	tcase_add_test(tc, lookup_answers_service_entry_hosts_and_wildcards);
	tcase_add_test(tc, lookup_forwards_unknown_names_and_other_types);
	tcase_add_test(tc, lookup_hides_namespace_visible_services_from_other_namespaces);
	tcase_add_test(tc, lookup_answers_nodata_for_a_family_the_service_lacks);
	tcase_add_test(tc, query_parse_reads_name_type_and_edns);
	tcase_add_test(tc, local_reply_is_authoritative_with_ttl_30_and_cname_first);
	tcase_add_test(tc, reply_over_the_udp_limit_is_truncated);
	tcase_add_test(tc, malformed_queries_get_formerr_or_are_dropped);
	tcase_add_test(tc, forwarded_reply_keeps_the_clients_id_and_upstream_rcode);
	tcase_add_test(tc, resolv_conf_gives_nameservers_and_search_domains);
	tcase_add_test(tc, dns_settings_default_on_both_loopbacks_and_follow_the_variables);
	suite_add_tcase(s, tc);
	return s;
}
