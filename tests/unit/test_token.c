/* fake-istiod tokens (fake-istiod/token.h): key persistence, mint/verify round trip, and
 * refusal of expired, foreign, tampered, unsigned and malformed tokens. Hostile tokens are
 * built by hand here (header/payload JSON, base64url with OpenSSL), independent of the code
 * under test. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fake-istiod/token.h"
#include "runtime/err.h"
#include "runtime/file.h"

#define NOW 1700000000LL

static char tmpdir[64];
static struct fi_token_key *key;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	char err[256] = "";

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zt-token-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_msg(fi_token_key_open(&key, tmpdir, err, sizeof(err)) == 0, "%s", err);
}

static void teardown(void)
{
	fi_token_key_free(key);
	key = NULL;
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *mint(const char *node, const char *ns, const char *sa, int64_t ttl)
{
	char *t = NULL;

	ck_assert_int_eq(fi_token_mint(key, node, ns, sa, ttl, NOW, &t), 0);
	ck_assert_ptr_nonnull(t);
	return t;
}

static void expect_refused(const char *token, int64_t now, int want_rc, const char *want_why)
{
	struct fi_token_claims c;
	char why[256] = "";
	int rc = fi_token_verify(key, token, now, &c, why, sizeof(why));

	ck_assert_msg(rc == want_rc, "rc %d (%s), want %d", rc, why, want_rc);
	ck_assert_msg(strstr(why, want_why) != NULL, "why \"%s\" lacks \"%s\"", why, want_why);
}

/* ---- hand-built tokens ------------------------------------------------------------------- */

static char *b64url(const void *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock((unsigned char *)s, p, (int)n);

	while (len > 0 && s[len - 1] == '=')
		len--;
	s[len] = '\0';
	for (int i = 0; i < len; i++)
		s[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
	return s;
}

static unsigned char secret[32];

/* The raw key, read from the file the code under test wrote. */
static void load_secret(void)
{
	char path[128], *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, FI_TOKEN_KEY_FILE);
	ck_assert_int_eq(zt_file_read(path, 64, &buf, &len), 0);
	ck_assert_uint_eq(len, 32);
	memcpy(secret, buf, 32);
	free(buf);
}

/* header.payload signed with the real key (sign) or with sig_text as the signature. */
static char *forge(const char *header, const char *payload, bool sign, const char *sig_text)
{
	char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
	char *signing, *out, *s;
	unsigned char mac[32];
	unsigned int maclen;

	ck_assert_int_gt(asprintf(&signing, "%s.%s", h, p), 0);
	if (sign) {
		load_secret();
		HMAC(EVP_sha256(), secret, 32, (unsigned char *)signing, strlen(signing), mac,
		     &maclen);
		s = b64url(mac, maclen);
	} else {
		s = strdup(sig_text);
	}
	ck_assert_int_gt(asprintf(&out, "%s.%s", signing, s), 0);
	free(s);
	free(signing);
	free(h);
	free(p);
	return out;
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define KUBE_OK                                                                                    \
	"\"kubernetes.io\":{\"namespace\":\"istio-system\",\"serviceaccount\":{\"name\":"          \
	"\"ztunnel\"},\"node\":{\"name\":\"node-1\"}}"
#define SUB_OK       "\"sub\":\"system:serviceaccount:istio-system:ztunnel\""
#define PAYLOAD(...) "{\"iss\":\"fake-istiod\",\"aud\":[\"istio-ca\"]," __VA_ARGS__ "}"
#define GOOD_PAYLOAD PAYLOAD(SUB_OK ",\"iat\":1700000000,\"exp\":1700003600," KUBE_OK)

/* ---- tests ------------------------------------------------------------------------------- */

START_TEST(token_mint_verify_round_trip_returns_the_claims)
{
	char *t = mint("node-1", "istio-system", "ztunnel", 3600);
	struct fi_token_claims c;
	char why[256] = "";

	ck_assert_int_eq(fi_token_verify(key, t, NOW + 3599, &c, why, sizeof(why)), 0);
	ck_assert_str_eq(c.node, "node-1");
	ck_assert_str_eq(c.ns, "istio-system");
	ck_assert_str_eq(c.sa, "ztunnel");
	ck_assert_int_eq(c.iat, NOW);
	ck_assert_int_eq(c.exp, NOW + 3600);
	free(t);
}
END_TEST

START_TEST(token_hand_built_with_the_key_verifies)
{
	char *t = forge(HS256, GOOD_PAYLOAD, true, NULL);
	struct fi_token_claims c;

	ck_assert_int_eq(fi_token_verify(key, t, NOW, &c, NULL, 0), 0);
	ck_assert_str_eq(c.sa, "ztunnel");
	free(t);
}
END_TEST

START_TEST(token_minted_payload_is_kubernetes_shaped)
{
	char *t = mint("n1", "demo", "sleep", 60);
	char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
	char b64[1024], json[1024];
	size_t n = (size_t)(dot2 - dot1 - 1);
	int len;

	/* Decode by hand: pad and translate back to standard base64. */
	memcpy(b64, dot1 + 1, n);
	while (n % 4)
		b64[n++] = '=';
	for (size_t i = 0; i < n; i++)
		b64[i] = b64[i] == '-' ? '+' : b64[i] == '_' ? '/' : b64[i];
	len = EVP_DecodeBlock((unsigned char *)json, (unsigned char *)b64, (int)n);
	ck_assert_int_gt(len, 0);
	json[len] = '\0';
	ck_assert_ptr_nonnull(strstr(json, "\"iss\":\"fake-istiod\""));
	ck_assert_ptr_nonnull(strstr(json, "\"sub\":\"system:serviceaccount:demo:sleep\""));
	ck_assert_ptr_nonnull(strstr(json, "\"aud\":[\"istio-ca\"]"));
	ck_assert_ptr_nonnull(strstr(json, "\"node\":{\"name\":\"n1\"}"));
	ck_assert_ptr_nonnull(strstr(json, "\"serviceaccount\":{\"name\":\"sleep\"}"));
	ck_assert_ptr_null(strchr(t, '='));
	free(t);
}
END_TEST

START_TEST(token_without_node_verifies_with_empty_node)
{
	char *t = mint(NULL, "demo", "sleep", 60);
	struct fi_token_claims c;

	memset(&c, 'x', sizeof(c));
	ck_assert_int_eq(fi_token_verify(key, t, NOW, &c, NULL, 0), 0);
	ck_assert_str_eq(c.node, "");
	free(t);
}
END_TEST

START_TEST(token_expired_is_refused_at_exactly_exp)
{
	char *t = mint("n", "demo", "sleep", 60);

	expect_refused(t, NOW + 60, ZT_E_RANGE, "token expired");
	expect_refused(t, NOW + 100000, ZT_E_RANGE, "token expired");
	free(t);
}
END_TEST

START_TEST(token_from_another_key_has_a_bad_signature)
{
	struct fi_token_key *other = NULL;
	char dir[128], err[256] = "", *t;

	snprintf(dir, sizeof(dir), "%s/other", tmpdir);
	ck_assert_int_eq(fi_token_key_open(&other, dir, err, sizeof(err)), 0);
	ck_assert_int_eq(fi_token_mint(other, "n", "demo", "sleep", 60, NOW, &t), 0);
	expect_refused(t, NOW, ZT_E_IDENTITY, "bad signature");
	free(t);
	fi_token_key_free(other);
}
END_TEST

START_TEST(token_key_persists_across_opens)
{
	struct fi_token_key *again = NULL;
	char err[256] = "", *t, path[128];
	struct stat st;

	ck_assert_int_eq(fi_token_key_open(&again, tmpdir, err, sizeof(err)), 0);
	ck_assert_int_eq(fi_token_mint(again, "n", "demo", "sleep", 60, NOW, &t), 0);
	ck_assert_int_eq(fi_token_verify(key, t, NOW, NULL, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, FI_TOKEN_KEY_FILE);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(st.st_size, 32);
	free(t);
	fi_token_key_free(again);
}
END_TEST

START_TEST(token_key_file_of_wrong_size_is_refused)
{
	struct fi_token_key *k = (struct fi_token_key *)1;
	char dir[128], path[160], err[256] = "";

	snprintf(dir, sizeof(dir), "%s/short", tmpdir);
	ck_assert_int_eq(zt_file_mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, FI_TOKEN_KEY_FILE);
	ck_assert_int_eq(zt_file_write_atomic(path, "0123456789", 10, 0600), 0);
	ck_assert_int_eq(fi_token_key_open(&k, dir, err, sizeof(err)), ZT_E_PARSE);
	ck_assert_ptr_null(k);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_ptr_nonnull(strstr(err, "10 bytes"));
}
END_TEST

START_TEST(token_with_tampered_payload_has_a_bad_signature)
{
	char *good = forge(HS256, GOOD_PAYLOAD, true, NULL);
	char *evil = forge(HS256,
	                   PAYLOAD("\"sub\":\"system:serviceaccount:istio-system:admin\","
	                           "\"iat\":1700000000,\"exp\":1700003600,"
	                           "\"kubernetes.io\":{\"namespace\":\"istio-system\","
	                           "\"serviceaccount\":{\"name\":\"admin\"}}"),
	                   false, strrchr(good, '.') + 1);

	expect_refused(evil, NOW, ZT_E_IDENTITY, "bad signature");
	free(good);
	free(evil);
}
END_TEST

START_TEST(token_with_flipped_signature_bit_is_refused)
{
	char *t = mint("n", "demo", "sleep", 60);
	char *sig = strrchr(t, '.') + 1;

	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	expect_refused(t, NOW, ZT_E_IDENTITY, "bad signature");
	free(t);
}
END_TEST

START_TEST(token_with_alg_none_is_refused_signed_or_not)
{
	char *t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, false, "");
	char *t2 = forge("{\"alg\":\"none\"}", GOOD_PAYLOAD, true, NULL);
	char *t3 = forge("{\"alg\":\"hs256\"}", GOOD_PAYLOAD, true, NULL);
	char *t4 = forge("{\"typ\":\"JWT\"}", GOOD_PAYLOAD, true, NULL);

	expect_refused(t, NOW, ZT_E_IDENTITY, "not HS256");
	expect_refused(t2, NOW, ZT_E_IDENTITY, "not HS256");
	expect_refused(t3, NOW, ZT_E_IDENTITY, "not HS256");
	expect_refused(t4, NOW, ZT_E_IDENTITY, "not HS256");
	free(t);
	free(t2);
	free(t3);
	free(t4);
}
END_TEST

START_TEST(token_with_crit_header_or_duplicate_alg_is_refused)
{
	char *t = forge("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", GOOD_PAYLOAD, true, NULL);
	char *t2 = forge("{\"alg\":\"none\",\"alg\":\"HS256\"}", GOOD_PAYLOAD, true, NULL);

	expect_refused(t, NOW, ZT_E_IDENTITY, "critical");
	expect_refused(t2, NOW, ZT_E_PARSE, "malformed token header");
	free(t);
	free(t2);
}
END_TEST

START_TEST(token_with_malformed_segments_is_refused)
{
	char *good = mint("n", "demo", "sleep", 60);
	char *padded, *extra;
	static const char *const bad[] = {
	        "",
	        "abc",
	        "a.b",
	        "a.b.c.d",
	        "..",
	        "eyJhbGciOiJIUzI1NiJ9..sig",
	        "ey J.e30.AAAA",
	        "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",     /* signature of the wrong length */
	        "e.e30.AAAA",                        /* one-character segment cannot be base64 */
	        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.", /* empty signature */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = fi_token_verify(key, bad[i], NOW, NULL, NULL, 0);

		ck_assert_msg(rc == ZT_E_PARSE, "\"%s\" gave %d", bad[i], rc);
	}
	/* Padding and standard-alphabet characters are not base64url. */
	ck_assert_int_gt(asprintf(&padded, "%s=", good), 0);
	ck_assert_int_eq(fi_token_verify(key, padded, NOW, NULL, NULL, 0), ZT_E_PARSE);
	extra = strdup(good);
	*strchr(extra, '.') = '+';
	ck_assert_int_ne(fi_token_verify(key, extra, NOW, NULL, NULL, 0), 0);
	free(padded);
	free(extra);
	free(good);
}
END_TEST

START_TEST(token_with_non_canonical_base64_is_refused)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *t = mint("n", "demo", "sleep", 60);
	char *sig = strrchr(t, '.') + 1;
	size_t n = strlen(sig);
	int v;

	/* 32 bytes -> 43 characters: the last carries 4 data bits and 2 unused, zero bits.
	 * Setting an unused bit decodes to the same bytes, but is not the canonical form. */
	ck_assert_uint_eq(n, 43);
	v = (int)(strchr(alphabet, sig[n - 1]) - alphabet);
	ck_assert_int_eq(v & 3, 0);
	sig[n - 1] = alphabet[v | 1];
	expect_refused(t, NOW, ZT_E_PARSE, "malformed token signature");
	free(t);
}
END_TEST

START_TEST(token_payload_that_is_not_an_object_is_refused)
{
	char *t = forge(HS256, "[1,2]", true, NULL);
	char *t2 = forge(HS256, "{\"iss\":", true, NULL);

	expect_refused(t, NOW, ZT_E_PARSE, "malformed token payload");
	expect_refused(t2, NOW, ZT_E_PARSE, "malformed token payload");
	free(t);
	free(t2);
}
END_TEST

START_TEST(token_with_missing_claims_is_refused)
{
	struct {
		const char *payload;
		int rc;
		const char *why;
	} cases[] = {
	        {"{\"aud\":\"istio-ca\"," SUB_OK ",\"iat\":1,\"exp\":1700003600," KUBE_OK "}",
	         ZT_E_IDENTITY, "issuer"},
	        {PAYLOAD(SUB_OK ",\"iat\":1," KUBE_OK), ZT_E_PARSE, "exp and iat"},
	        {PAYLOAD(SUB_OK ",\"exp\":1700003600," KUBE_OK), ZT_E_PARSE, "exp and iat"},
	        {PAYLOAD(SUB_OK ",\"iat\":1,\"exp\":\"1700003600\"," KUBE_OK), ZT_E_PARSE,
	         "exp and iat"},
	        {"{\"iss\":\"fake-istiod\"," SUB_OK ",\"iat\":1,\"exp\":1700003600," KUBE_OK "}",
	         ZT_E_IDENTITY, "audience"},
	        {"{\"iss\":\"fake-istiod\",\"aud\":[\"other\"]," SUB_OK
	         ",\"iat\":1,\"exp\":1700003600," KUBE_OK "}",
	         ZT_E_IDENTITY, "audience"},
	        {PAYLOAD(SUB_OK ",\"iat\":1,\"exp\":1700003600"), ZT_E_PARSE, "kubernetes.io"},
	        {PAYLOAD(SUB_OK ",\"iat\":1,\"exp\":1700003600,\"kubernetes.io\":{"
	                        "\"serviceaccount\":{\"name\":\"ztunnel\"}}"),
	         ZT_E_PARSE, "kubernetes.io"},
	        {PAYLOAD(SUB_OK ",\"iat\":1,\"exp\":1700003600,\"kubernetes.io\":{"
	                        "\"namespace\":\"istio-system\",\"serviceaccount\":{}}"),
	         ZT_E_PARSE, "kubernetes.io"},
	        {PAYLOAD(SUB_OK
	                 ",\"iat\":1,\"exp\":1700003600,\"kubernetes.io\":{"
	                 "\"namespace\":\"istio system\",\"serviceaccount\":{\"name\":\"z\"}}"),
	         ZT_E_PARSE, "kubernetes.io"},
	        {PAYLOAD(SUB_OK ",\"iat\":1,\"exp\":1700003600,\"kubernetes.io\":{"
	                        "\"namespace\":\"istio-system\",\"serviceaccount\":{\"name\":"
	                        "\"ztunnel\"},\"node\":{\"name\":7}}"),
	         ZT_E_PARSE, "node"},
	        {PAYLOAD("\"iat\":1,\"exp\":1700003600," KUBE_OK), ZT_E_IDENTITY, "subject"},
	        {PAYLOAD("\"sub\":\"system:serviceaccount:istio-system:admin\",\"iat\":1,"
	                 "\"exp\":1700003600," KUBE_OK),
	         ZT_E_IDENTITY, "subject"},
	        {PAYLOAD(SUB_OK ",\"iat\":1,\"exp\":1700003600,\"nbf\":1700000100," KUBE_OK),
	         ZT_E_RANGE, "not valid yet"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = forge(HS256, cases[i].payload, true, NULL);
		char why[256] = "";
		int rc = fi_token_verify(key, t, NOW, NULL, why, sizeof(why));

		ck_assert_msg(rc == cases[i].rc && strstr(why, cases[i].why),
		              "case %zu: rc %d why \"%s\"", i, rc, why);
		free(t);
	}
}
END_TEST

START_TEST(token_audience_may_be_a_plain_string)
{
	char *t = forge(HS256,
	                "{\"iss\":\"fake-istiod\",\"aud\":\"istio-ca\"," SUB_OK
	                ",\"iat\":1,\"exp\":1700003600," KUBE_OK "}",
	                true, NULL);

	ck_assert_int_eq(fi_token_verify(key, t, NOW, NULL, NULL, 0), 0);
	free(t);
}
END_TEST

START_TEST(token_over_the_length_bound_is_refused_unread)
{
	size_t n = FI_TOKEN_MAX_LEN + 1;
	char *t = malloc(n + 1);

	memset(t, 'A', n);
	t[n] = '\0';
	t[10] = t[20] = '.';
	expect_refused(t, NOW, ZT_E_TOOBIG, "longer than");
	free(t);
}
END_TEST

START_TEST(token_mint_refuses_bad_names_and_ttl)
{
	char *t = (char *)1;
	char long_name[FI_TOKEN_NAME_MAX + 2];

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert_int_eq(fi_token_mint(key, "n", "", "sa", 60, NOW, &t), ZT_E_PARSE);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(fi_token_mint(key, "n", "ns", "a:b", 60, NOW, &t), ZT_E_PARSE);
	ck_assert_int_eq(fi_token_mint(key, "n\"", "ns", "sa", 60, NOW, &t), ZT_E_PARSE);
	ck_assert_int_eq(fi_token_mint(key, "n", long_name, "sa", 60, NOW, &t), ZT_E_PARSE);
	ck_assert_int_eq(fi_token_mint(key, "n", "ns", "sa", 0, NOW, &t), ZT_E_RANGE);
	ck_assert_int_eq(fi_token_mint(key, "n", "ns", "sa", FI_TOKEN_MAX_TTL + 1, NOW, &t),
	                 ZT_E_RANGE);
	long_name[FI_TOKEN_NAME_MAX] = '\0'; /* exactly at the bound: fine */
	ck_assert_int_eq(fi_token_mint(key, long_name, long_name, long_name, 60, NOW, &t), 0);
	ck_assert_int_eq(fi_token_verify(key, t, NOW, NULL, NULL, 0), 0);
	free(t);
}
END_TEST

Suite *token_suite(void);
Suite *token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *tc = tcase_create("token");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, token_mint_verify_round_trip_returns_the_claims);
	tcase_add_test(tc, token_hand_built_with_the_key_verifies);
	tcase_add_test(tc, token_minted_payload_is_kubernetes_shaped);
	tcase_add_test(tc, token_without_node_verifies_with_empty_node);
	tcase_add_test(tc, token_expired_is_refused_at_exactly_exp);
	tcase_add_test(tc, token_from_another_key_has_a_bad_signature);
	tcase_add_test(tc, token_key_persists_across_opens);
	tcase_add_test(tc, token_key_file_of_wrong_size_is_refused);
	tcase_add_test(tc, token_with_tampered_payload_has_a_bad_signature);
	tcase_add_test(tc, token_with_flipped_signature_bit_is_refused);
	tcase_add_test(tc, token_with_alg_none_is_refused_signed_or_not);
	tcase_add_test(tc, token_with_crit_header_or_duplicate_alg_is_refused);
	tcase_add_test(tc, token_with_malformed_segments_is_refused);
	tcase_add_test(tc, token_with_non_canonical_base64_is_refused);
	tcase_add_test(tc, token_payload_that_is_not_an_object_is_refused);
	tcase_add_test(tc, token_with_missing_claims_is_refused);
	tcase_add_test(tc, token_audience_may_be_a_plain_string);
	tcase_add_test(tc, token_over_the_length_bound_is_refused_unread);
	tcase_add_test(tc, token_mint_refuses_bad_names_and_ttl);
	suite_add_tcase(s, tc);
	return s;
}
