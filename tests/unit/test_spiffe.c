#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "protocol/spiffe.h"
#include "runtime/err.h"

static int parse_str(struct zt_spiffe *id, const char *s)
{
	return zt_spiffe_parse(id, s, strlen(s));
}

static void assert_rejects(const char *s)
{
	struct zt_spiffe id;

	ck_assert_msg(parse_str(&id, s) == ZT_E_PARSE, "accepted or misreported: %s", s);
}

START_TEST(parse_accepts_canonical_identity)
{
	struct zt_spiffe id;

	ck_assert_int_eq(parse_str(&id, "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"),
	                 0);
	ck_assert_str_eq(id.td, "cluster.local");
	ck_assert_str_eq(id.ns, "default");
	ck_assert_str_eq(id.sa, "bookinfo-ratings");
	ck_assert_int_eq(parse_str(&id, "spiffe://a/ns/b/sa/c"), 0);
	ck_assert_int_eq(parse_str(&id, "spiffe://my_td-1.example/ns/Ns.x_y-z/sa/SA.1"), 0);
	ck_assert_str_eq(id.ns, "Ns.x_y-z");
}
END_TEST

START_TEST(parse_reads_only_len_bytes_without_nul_terminator)
{
	struct zt_spiffe id;
	const char buf[] = "spiffe://td/ns/a/sa/bXXXX";

	ck_assert_int_eq(zt_spiffe_parse(&id, buf, strlen(buf) - 4), 0);
	ck_assert_str_eq(id.sa, "b");
	ck_assert_int_eq(zt_spiffe_parse(&id, buf, strlen(buf)), 0);
	ck_assert_str_eq(id.sa, "bXXXX");
}
END_TEST

START_TEST(parse_rejects_nul_in_the_middle)
{
	struct zt_spiffe id;
	const char a[] = "spiffe://td/ns/a/sa/b\0evil";
	const char b[] = "spiffe://td\0/ns/a/sa/b";
	const char c[] = "spiffe://td/ns/a\0b/sa/c";

	ck_assert_int_eq(zt_spiffe_parse(&id, a, sizeof(a) - 1), ZT_E_PARSE);
	ck_assert_int_eq(zt_spiffe_parse(&id, b, sizeof(b) - 1), ZT_E_PARSE);
	ck_assert_int_eq(zt_spiffe_parse(&id, c, sizeof(c) - 1), ZT_E_PARSE);
	ck_assert_int_eq(zt_spiffe_parse(&id, "spiffe://td/ns/a/sa/b\0", 22), ZT_E_PARSE);
}
END_TEST

START_TEST(parse_rejects_wrong_scheme)
{
	assert_rejects("SPIFFE://td/ns/a/sa/b");
	assert_rejects("Spiffe://td/ns/a/sa/b");
	assert_rejects("spiffe:/td/ns/a/sa/b");
	assert_rejects("spiffe:td/ns/a/sa/b");
	assert_rejects("spiffe//td/ns/a/sa/b");
	assert_rejects("https://td/ns/a/sa/b");
	assert_rejects(" spiffe://td/ns/a/sa/b");
	assert_rejects("td/ns/a/sa/b");
	assert_rejects("spiffe://");
	assert_rejects("spiffe:/");
	assert_rejects("");
}
END_TEST

START_TEST(parse_rejects_extra_or_missing_path_parts)
{
	assert_rejects("spiffe://td/ns/a/sa/b/c");
	assert_rejects("spiffe://td/ns/a/sa/b/");
	assert_rejects("spiffe://td/ns/a/sa/b//");
	assert_rejects("spiffe://td/ns/a/sa");
	assert_rejects("spiffe://td/ns/a/sa/");
	assert_rejects("spiffe://td/ns/a");
	assert_rejects("spiffe://td");
	assert_rejects("spiffe://td/");
	assert_rejects("spiffe://td/x/ns/a/sa/b");
	assert_rejects("spiffe://td//ns/a/sa/b");
}
END_TEST

START_TEST(parse_rejects_empty_parts)
{
	assert_rejects("spiffe:///ns/a/sa/b");
	assert_rejects("spiffe://td/ns//sa/b");
	assert_rejects("spiffe://td/ns/a/sa/");
	assert_rejects("spiffe:///ns//sa/");
}
END_TEST

START_TEST(parse_requires_literal_ns_and_sa)
{
	assert_rejects("spiffe://td/NS/a/sa/b");
	assert_rejects("spiffe://td/ns/a/SA/b");
	assert_rejects("spiffe://td/sa/a/ns/b");
	assert_rejects("spiffe://td/namespace/a/sa/b");
	assert_rejects("spiffe://td/ns/a/serviceaccount/b");
	assert_rejects("spiffe://td/n/a/sa/b");
	assert_rejects("spiffe://td/nss/a/sa/b");
	assert_rejects("spiffe://td/ns/a/s/b");
}
END_TEST

START_TEST(parse_rejects_query_fragment_and_uri_syntax)
{
	assert_rejects("spiffe://td/ns/a/sa/b?x=1");
	assert_rejects("spiffe://td/ns/a/sa/b#frag");
	assert_rejects("spiffe://td/ns/a/sa/b?");
	assert_rejects("spiffe://td:443/ns/a/sa/b");
	assert_rejects("spiffe://user@td/ns/a/sa/b");
	assert_rejects("spiffe://td/ns/a/sa/%62");
	assert_rejects("spiffe://td/ns/a/sa/b;c");
}
END_TEST

START_TEST(parse_rejects_control_bytes_whitespace_and_non_ascii)
{
	assert_rejects("spiffe://td/ns/a/sa/b\n");
	assert_rejects("spiffe://td/ns/a/sa/b\r\n");
	assert_rejects("spiffe://td/ns/a\t/sa/b");
	assert_rejects("spiffe://td/ns/a b/sa/c");
	assert_rejects("spiffe://td /ns/a/sa/b");
	assert_rejects("spiffe://td/ns/a/sa/b\x01");
	assert_rejects("spiffe://td/ns/a/sa/b\x7f");
	assert_rejects("spiffe://td/ns/a/sa/b\x1b[31m");
	assert_rejects("spiffe://t\xc3\xa9/ns/a/sa/b");
	assert_rejects("spiffe://td/ns/\xff/sa/b");
}
END_TEST

START_TEST(parse_follows_spiffe_character_rules)
{
	struct zt_spiffe id;

	assert_rejects("spiffe://Cluster.Local/ns/a/sa/b"); /* trust domains are lower case */
	assert_rejects("spiffe://td/ns/./sa/b");
	assert_rejects("spiffe://td/ns/a/sa/..");
	ck_assert_int_eq(parse_str(&id, "spiffe://td/ns/.a/sa/..b"), 0);
}
END_TEST

START_TEST(parse_bounds_total_and_part_lengths)
{
	struct zt_spiffe id;
	char buf[4096];
	size_t n;

	/* Trust domain of exactly 255 is fine, 256 is too big. */
	n = (size_t)snprintf(buf, sizeof(buf), "spiffe://%0255d/ns/a/sa/b", 0);
	ck_assert_int_eq(zt_spiffe_parse(&id, buf, n), 0);
	ck_assert_uint_eq(strlen(id.td), 255);
	n = (size_t)snprintf(buf, sizeof(buf), "spiffe://%0256d/ns/a/sa/b", 0);
	ck_assert_int_eq(zt_spiffe_parse(&id, buf, n), ZT_E_TOOBIG);
	n = (size_t)snprintf(buf, sizeof(buf), "spiffe://td/ns/%0253d/sa/%0253d", 0, 0);
	ck_assert_int_eq(zt_spiffe_parse(&id, buf, n), 0);
	n = (size_t)snprintf(buf, sizeof(buf), "spiffe://td/ns/%0254d/sa/b", 0);
	ck_assert_int_eq(zt_spiffe_parse(&id, buf, n), ZT_E_TOOBIG);
	n = (size_t)snprintf(buf, sizeof(buf), "spiffe://td/ns/a/sa/%0254d", 0);
	ck_assert_int_eq(zt_spiffe_parse(&id, buf, n), ZT_E_TOOBIG);
}
END_TEST

START_TEST(parse_rejects_huge_input_before_scanning)
{
	struct zt_spiffe id;
	size_t n = 1u << 20;
	char *big = malloc(n);

	ck_assert_ptr_nonnull(big);
	memset(big, 'a', n);
	memcpy(big, "spiffe://", 9);
	ck_assert_int_eq(zt_spiffe_parse(&id, big, n), ZT_E_TOOBIG);
	ck_assert_int_eq(zt_spiffe_parse(&id, big, ZT_SPIFFE_MAX_LEN + 1), ZT_E_TOOBIG);
	ck_assert_int_eq(zt_spiffe_parse(&id, big, ZT_SPIFFE_MAX_LEN), ZT_E_PARSE);
	free(big);
}
END_TEST

START_TEST(set_validates_parts_like_parse)
{
	struct zt_spiffe id;
	char big[300];

	ck_assert_int_eq(zt_spiffe_set(&id, ZT_SPIFFE_DEFAULT_TD, "ns1", ZT_SPIFFE_DEFAULT_SA), 0);
	ck_assert_str_eq(id.td, "cluster.local");
	ck_assert_str_eq(id.sa, "default");
	ck_assert_int_eq(zt_spiffe_set(&id, "", "a", "b"), ZT_E_PARSE);
	ck_assert_int_eq(zt_spiffe_set(&id, "td", "a/b", "c"), ZT_E_PARSE);
	ck_assert_int_eq(zt_spiffe_set(&id, "td", "a", "b c"), ZT_E_PARSE);
	ck_assert_int_eq(zt_spiffe_set(&id, "TD", "a", "b"), ZT_E_PARSE);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(zt_spiffe_set(&id, big, "a", "b"), ZT_E_TOOBIG);
	ck_assert_int_eq(zt_spiffe_set(&id, "td", big, "b"), ZT_E_TOOBIG);
}
END_TEST

START_TEST(format_round_trips_through_parse)
{
	struct zt_spiffe a, b;
	char buf[ZT_SPIFFE_STR_SIZE];
	const char *s = "spiffe://cluster.local/ns/istio-system/sa/ztunnel";

	ck_assert_int_eq(parse_str(&a, s), 0);
	ck_assert_int_eq(zt_spiffe_format(&a, buf, sizeof(buf)), (int)strlen(s));
	ck_assert_str_eq(buf, s);
	ck_assert_int_eq(parse_str(&b, buf), 0);
	ck_assert(zt_spiffe_eq(&a, &b));
}
END_TEST

START_TEST(format_fits_longest_identity_and_reports_small_buffer)
{
	struct zt_spiffe id;
	char buf[ZT_SPIFFE_STR_SIZE], small[10];

	memset(id.td, 't', ZT_SPIFFE_TD_MAX);
	id.td[ZT_SPIFFE_TD_MAX] = '\0';
	memset(id.ns, 'n', ZT_SPIFFE_NAME_MAX);
	id.ns[ZT_SPIFFE_NAME_MAX] = '\0';
	memset(id.sa, 's', ZT_SPIFFE_NAME_MAX);
	id.sa[ZT_SPIFFE_NAME_MAX] = '\0';
	ck_assert_int_eq(zt_spiffe_format(&id, buf, sizeof(buf)), (int)sizeof(buf) - 1);
	ck_assert_int_eq(zt_spiffe_format(&id, buf, sizeof(buf) - 1), ZT_E_TOOBIG);
	ck_assert_int_eq(zt_spiffe_format(&id, small, sizeof(small)), ZT_E_TOOBIG);
	ck_assert_str_eq(small, "");
}
END_TEST

START_TEST(eq_and_same_td_compare_parts)
{
	struct zt_spiffe a, b, c, d;

	ck_assert_int_eq(parse_str(&a, "spiffe://td/ns/x/sa/y"), 0);
	ck_assert_int_eq(parse_str(&b, "spiffe://td/ns/x/sa/y"), 0);
	ck_assert_int_eq(parse_str(&c, "spiffe://td/ns/x/sa/z"), 0);
	ck_assert_int_eq(parse_str(&d, "spiffe://other/ns/x/sa/y"), 0);
	ck_assert(zt_spiffe_eq(&a, &b));
	ck_assert(!zt_spiffe_eq(&a, &c));
	ck_assert(!zt_spiffe_eq(&a, &d));
	ck_assert(zt_spiffe_same_td(&a, &c));
	ck_assert(!zt_spiffe_same_td(&a, &d));
}
END_TEST

static void sans_add(struct zt_spiffe_sans *s, const char *uri)
{
	ck_assert_int_eq(zt_spiffe_sans_add(s, uri, strlen(uri)), 0);
}

START_TEST(verify_client_accepts_same_td_and_reports_first_spiffe_san)
{
	struct zt_spiffe own, peer;
	struct zt_spiffe_sans sans = {0};

	ck_assert_int_eq(parse_str(&own, "spiffe://cluster.local/ns/srv/sa/srv"), 0);
	sans_add(&sans, "https://example.com/");
	sans_add(&sans, "spiffe://other.td/ns/a/sa/b");
	sans_add(&sans, "spiffe://cluster.local/ns/c/sa/d");
	ck_assert_int_eq(zt_spiffe_verify_client(&own, &sans, &peer), 0);
	ck_assert_str_eq(peer.td, "other.td"); /* peer identity = first SPIFFE SAN (spec §2.2) */
	ck_assert_str_eq(peer.ns, "a");
	ck_assert_int_eq(zt_spiffe_verify_client(&own, &sans, NULL), 0);
	zt_spiffe_sans_clear(&sans);
	ck_assert_uint_eq(sans.n, 0);
}
END_TEST

START_TEST(verify_client_rejects_foreign_td_and_non_spiffe_sans)
{
	struct zt_spiffe own, peer;
	struct zt_spiffe_sans sans = {0};
	const char nul_san[] = "spiffe://cluster.local/ns/a/sa/b\0x";

	ck_assert_int_eq(parse_str(&own, "spiffe://cluster.local/ns/srv/sa/srv"), 0);
	ck_assert_int_eq(zt_spiffe_verify_client(&own, &sans, &peer), ZT_E_IDENTITY);
	sans_add(&sans, "spiffe://evil.local/ns/a/sa/b");
	sans_add(&sans, "spiffe://cluster.local.evil/ns/a/sa/b");
	sans_add(&sans, "spiffe://cluster.local/ns/a/sa/b/extra");
	sans_add(&sans, "spiffe://cluster.local/ns/a/sa/b?x");
	sans_add(&sans, "SPIFFE://cluster.local/ns/a/sa/b");
	ck_assert_int_eq(zt_spiffe_sans_add(&sans, nul_san, sizeof(nul_san) - 1), 0);
	ck_assert_int_eq(zt_spiffe_verify_client(&own, &sans, &peer), ZT_E_IDENTITY);
	zt_spiffe_sans_clear(&sans);
}
END_TEST

START_TEST(verify_server_accepts_any_expected_identity)
{
	struct zt_spiffe exp[2], got;
	struct zt_spiffe_sans sans = {0};

	ck_assert_int_eq(parse_str(&exp[0], "spiffe://td/ns/a/sa/one"), 0);
	ck_assert_int_eq(parse_str(&exp[1], "spiffe://td/ns/a/sa/two"), 0);
	sans_add(&sans, "spiffe://td/ns/a/sa/zero");
	sans_add(&sans, "not a uri");
	sans_add(&sans, "spiffe://td/ns/a/sa/two");
	ck_assert_int_eq(zt_spiffe_verify_server(exp, 2, &sans, &got), 0);
	ck_assert(zt_spiffe_eq(&got, &exp[1]));
	zt_spiffe_sans_clear(&sans);
}
END_TEST

START_TEST(verify_server_rejects_unexpected_or_empty_list)
{
	struct zt_spiffe exp;
	struct zt_spiffe_sans sans = {0};

	ck_assert_int_eq(parse_str(&exp, "spiffe://td/ns/a/sa/one"), 0);
	sans_add(&sans, "spiffe://td/ns/a/sa/onex");
	sans_add(&sans, "spiffe://other/ns/a/sa/one");
	sans_add(&sans, "spiffe://td/ns/a/sa/one/");
	ck_assert_int_eq(zt_spiffe_verify_server(&exp, 1, &sans, NULL), ZT_E_IDENTITY);
	sans_add(&sans, "spiffe://td/ns/a/sa/one");
	ck_assert_int_eq(zt_spiffe_verify_server(&exp, 1, &sans, NULL), 0);
	ck_assert_int_eq(zt_spiffe_verify_server(&exp, 0, &sans, NULL), ZT_E_IDENTITY);
	zt_spiffe_sans_clear(&sans);
}
END_TEST

/* Adds a GeneralName of the given type and raw value to names. */
static void gn_add(GENERAL_NAMES *names, int type, const void *val, int len)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();

	ck_assert_ptr_nonnull(gn);
	if (type == GEN_EMAIL || type == GEN_DNS || type == GEN_URI || type == GEN_IPADD) {
		ASN1_STRING *s = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();

		ck_assert_int_eq(ASN1_STRING_set(s, val, len), 1);
		GENERAL_NAME_set0_value(gn, type, s);
	}
	ck_assert_int_gt(sk_GENERAL_NAME_push(names, gn), 0);
}

START_TEST(sans_from_x509_keeps_only_uri_entries_with_exact_length)
{
	X509 *x = X509_new();
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	struct zt_spiffe_sans sans = {0};
	const unsigned char ip[4] = {10, 0, 0, 1};
	const char nul_uri[] = "spiffe://td/ns/a/sa/b\0tail";

	gn_add(names, GEN_DNS, "spiffe://td/ns/dns/sa/x", 23);
	gn_add(names, GEN_URI, "spiffe://td/ns/a/sa/b", 21);
	gn_add(names, GEN_IPADD, ip, 4);
	gn_add(names, GEN_EMAIL, "spiffe://td/ns/mail/sa/x", 24);
	gn_add(names, GEN_URI, nul_uri, (int)sizeof(nul_uri) - 1);
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 1, 0), 1);
	ck_assert_int_eq(zt_spiffe_sans_from_x509(x, &sans), 0);
	ck_assert_uint_eq(sans.n, 2);
	ck_assert_str_eq(sans.v[0].uri, "spiffe://td/ns/a/sa/b");
	ck_assert_uint_eq(sans.v[1].len, sizeof(nul_uri) - 1);
	ck_assert_int_eq(memcmp(sans.v[1].uri, nul_uri, sizeof(nul_uri) - 1), 0);
	zt_spiffe_sans_clear(&sans);
	GENERAL_NAMES_free(names);
	X509_free(x);
}
END_TEST

START_TEST(sans_from_x509_handles_missing_duplicate_and_excess)
{
	X509 *x = X509_new();
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	struct zt_spiffe_sans sans = {0};
	int i;

	ck_assert_int_eq(zt_spiffe_sans_from_x509(x, &sans), 0);
	ck_assert_uint_eq(sans.n, 0);
	for (i = 0; i <= ZT_SPIFFE_MAX_SANS; i++)
		gn_add(names, GEN_URI, "spiffe://td/ns/a/sa/b", 21);
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0), 1);
	ck_assert_int_eq(zt_spiffe_sans_from_x509(x, &sans), ZT_E_TOOBIG);
	ck_assert_uint_eq(sans.n, 0);
	/* A second subjectAltName extension makes the certificate ambiguous. */
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_APPEND),
	                 1);
	ck_assert_int_eq(zt_spiffe_sans_from_x509(x, &sans), ZT_E_PARSE);
	GENERAL_NAMES_free(names);
	X509_free(x);
}
END_TEST

START_TEST(sans_add_caps_list_length)
{
	struct zt_spiffe_sans sans = {0};
	int i;

	for (i = 0; i < ZT_SPIFFE_MAX_SANS; i++)
		ck_assert_int_eq(zt_spiffe_sans_add(&sans, "x", 1), 0);
	ck_assert_int_eq(zt_spiffe_sans_add(&sans, "x", 1), ZT_E_TOOBIG);
	ck_assert_uint_eq(sans.n, ZT_SPIFFE_MAX_SANS);
	zt_spiffe_sans_clear(&sans);
}
END_TEST

Suite *spiffe_suite(void);
Suite *spiffe_suite(void)
{
	Suite *s = suite_create("spiffe");
	TCase *parse = tcase_create("parse");
	TCase *verify = tcase_create("verify");

	tcase_add_test(parse, parse_accepts_canonical_identity);
	tcase_add_test(parse, parse_reads_only_len_bytes_without_nul_terminator);
	tcase_add_test(parse, parse_rejects_nul_in_the_middle);
	tcase_add_test(parse, parse_rejects_wrong_scheme);
	tcase_add_test(parse, parse_rejects_extra_or_missing_path_parts);
	tcase_add_test(parse, parse_rejects_empty_parts);
	tcase_add_test(parse, parse_requires_literal_ns_and_sa);
	tcase_add_test(parse, parse_rejects_query_fragment_and_uri_syntax);
	tcase_add_test(parse, parse_rejects_control_bytes_whitespace_and_non_ascii);
	tcase_add_test(parse, parse_follows_spiffe_character_rules);
	tcase_add_test(parse, parse_bounds_total_and_part_lengths);
	tcase_add_test(parse, parse_rejects_huge_input_before_scanning);
	tcase_add_test(parse, set_validates_parts_like_parse);
	tcase_add_test(parse, format_round_trips_through_parse);
	tcase_add_test(parse, format_fits_longest_identity_and_reports_small_buffer);
	tcase_add_test(parse, eq_and_same_td_compare_parts);
	suite_add_tcase(s, parse);

	tcase_add_test(verify, verify_client_accepts_same_td_and_reports_first_spiffe_san);
	tcase_add_test(verify, verify_client_rejects_foreign_td_and_non_spiffe_sans);
	tcase_add_test(verify, verify_server_accepts_any_expected_identity);
	tcase_add_test(verify, verify_server_rejects_unexpected_or_empty_list);
	tcase_add_test(verify, sans_from_x509_keeps_only_uri_entries_with_exact_length);
	tcase_add_test(verify, sans_from_x509_handles_missing_duplicate_and_excess);
	tcase_add_test(verify, sans_add_caps_list_length);
	suite_add_tcase(s, verify);
	return s;
}
