#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "protocol/csr.h"
#include "runtime/err.h"

#define URI "spiffe://cluster.local/ns/demo/sa/sleep"

static void generate(struct zt_csr *csr)
{
	struct zt_spiffe id;

	ck_assert_int_eq(zt_spiffe_parse(&id, URI, strlen(URI)), 0);
	ck_assert_int_eq(zt_csr_generate(csr, &id), 0);
	ck_assert_uint_eq(strlen(csr->csr_pem), csr->csr_len);
	ck_assert_ptr_nonnull(csr->key);
}

/* Parses with plain OpenSSL, independent of zt_csr_parse(). */
static X509_REQ *openssl_req(const struct zt_csr *csr)
{
	BIO *bio = BIO_new_mem_buf(csr->csr_pem, (int)csr->csr_len);
	X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);

	BIO_free(bio);
	ck_assert_ptr_nonnull(req);
	return req;
}

START_TEST(generated_csr_verifies_with_empty_subject_and_sha256_ecdsa)
{
	struct zt_csr csr;
	X509_REQ *req;

	generate(&csr);
	req = openssl_req(&csr);
	ck_assert_int_eq(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	ck_assert_int_eq(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
	ck_assert_int_eq(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA256);
	ck_assert_int_eq(X509_REQ_get_version(req), X509_REQ_VERSION_1);
	X509_REQ_free(req);
	zt_csr_clear(&csr);
	ck_assert_ptr_null(csr.key);
	ck_assert_ptr_null(csr.csr_pem);
}
END_TEST

START_TEST(generated_csr_has_exactly_one_critical_uri_san)
{
	struct zt_csr csr;
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) * exts;
	X509_EXTENSION *ext;
	GENERAL_NAMES *names;
	const GENERAL_NAME *gn;

	generate(&csr);
	req = openssl_req(&csr);
	exts = X509_REQ_get_extensions(req);
	ck_assert_int_eq(sk_X509_EXTENSION_num(exts), 1);
	ext = sk_X509_EXTENSION_value(exts, 0);
	ck_assert_int_eq(OBJ_obj2nid(X509_EXTENSION_get_object(ext)), NID_subject_alt_name);
	ck_assert_int_eq(X509_EXTENSION_get_critical(ext), 1);
	names = X509V3_EXT_d2i(ext);
	ck_assert_ptr_nonnull(names);
	ck_assert_int_eq(sk_GENERAL_NAME_num(names), 1);
	gn = sk_GENERAL_NAME_value(names, 0);
	ck_assert_int_eq(gn->type, GEN_URI);
	ck_assert_int_eq(ASN1_STRING_length(gn->d.uniformResourceIdentifier), (int)strlen(URI));
	ck_assert_int_eq(
	        memcmp(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), URI, strlen(URI)),
	        0);
	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	zt_csr_clear(&csr);
}
END_TEST

START_TEST(generated_key_is_pkcs8_p256_matching_the_csr)
{
	struct zt_csr csr, other;
	X509_REQ *req;
	EVP_PKEY *key;
	BIO *bio;
	char *pem;
	size_t pem_len;
	char group[32];

	generate(&csr);
	ck_assert_int_eq(zt_csr_key_pem(&csr, &pem, &pem_len), 0);
	ck_assert_uint_eq(strlen(pem), pem_len);
	ck_assert_ptr_nonnull(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
	ck_assert_ptr_nonnull(strstr(csr.csr_pem, "-----BEGIN CERTIFICATE REQUEST-----"));
	bio = BIO_new_mem_buf(pem, (int)pem_len);
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	zt_csr_key_pem_free(pem, pem_len);
	ck_assert_int_eq(EVP_PKEY_eq(key, csr.key), 1);
	ck_assert_ptr_nonnull(key);
	ck_assert_int_eq(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	ck_assert_int_eq(EVP_PKEY_get_group_name(key, group, sizeof(group), NULL), 1);
	ck_assert_str_eq(group, "prime256v1");
	req = openssl_req(&csr);
	ck_assert_int_eq(EVP_PKEY_eq(key, X509_REQ_get0_pubkey(req)), 1);
	/* A fresh key per request. */
	generate(&other);
	ck_assert_int_ne(EVP_PKEY_eq(other.key, csr.key), 1);
	zt_csr_clear(&other);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	zt_csr_clear(&csr);
}
END_TEST

START_TEST(parse_verify_and_uri_sans_round_trip)
{
	struct zt_csr csr;
	struct zt_spiffe_sans sans = {0};
	X509_REQ *req;

	generate(&csr);
	ck_assert_int_eq(zt_csr_parse(&req, csr.csr_pem, csr.csr_len), 0);
	ck_assert_int_eq(zt_csr_verify(req), 0);
	ck_assert_int_eq(zt_csr_uri_sans(req, &sans), 0);
	ck_assert_uint_eq(sans.n, 1);
	ck_assert_uint_eq(sans.v[0].len, strlen(URI));
	ck_assert_str_eq(sans.v[0].uri, URI);
	zt_spiffe_sans_clear(&sans);
	X509_REQ_free(req);
	zt_csr_clear(&csr);
}
END_TEST

START_TEST(tampered_csr_fails_verification)
{
	struct zt_csr csr;
	X509_REQ *req;
	unsigned char *der = NULL, *hit;
	const unsigned char *p;
	int len;
	struct zt_spiffe_sans sans = {0};

	generate(&csr);
	ck_assert_int_eq(zt_csr_parse(&req, csr.csr_pem, csr.csr_len), 0);
	len = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(len, 0);
	X509_REQ_free(req);
	/* Rewrite the requested service account "sleep" to "sleeq" inside the signed part. */
	hit = memmem(der, (size_t)len, "sa/sleep", 8);
	ck_assert_ptr_nonnull(hit);
	hit[7] = 'q';
	p = der;
	req = d2i_X509_REQ(NULL, &p, len);
	ck_assert_ptr_nonnull(req);
	ck_assert_int_eq(zt_csr_uri_sans(req, &sans), 0);
	ck_assert_str_eq(sans.v[0].uri, "spiffe://cluster.local/ns/demo/sa/sleeq");
	ck_assert_int_eq(zt_csr_verify(req), ZT_E_PROTO);
	zt_spiffe_sans_clear(&sans);
	X509_REQ_free(req);
	OPENSSL_free(der);
	zt_csr_clear(&csr);
}
END_TEST

START_TEST(parse_rejects_garbage_truncation_and_oversize)
{
	struct zt_csr csr;
	X509_REQ *req = (X509_REQ *)1;
	char *big, *pem;
	size_t pem_len;

	ck_assert_int_eq(zt_csr_parse(&req, "", 0), ZT_E_PARSE);
	ck_assert_ptr_null(req);
	ck_assert_int_eq(zt_csr_parse(&req, "hello", 5), ZT_E_PARSE);
	generate(&csr);
	ck_assert_int_eq(zt_csr_parse(&req, csr.csr_pem, csr.csr_len / 2), ZT_E_PARSE);
	/* A private key is not a CSR. */
	ck_assert_int_eq(zt_csr_key_pem(&csr, &pem, &pem_len), 0);
	ck_assert_int_eq(zt_csr_parse(&req, pem, pem_len), ZT_E_PARSE);
	zt_csr_key_pem_free(pem, pem_len);
	big = calloc(1, ZT_CSR_MAX_PEM + 1);
	ck_assert_ptr_nonnull(big);
	memcpy(big, csr.csr_pem, csr.csr_len);
	ck_assert_int_eq(zt_csr_parse(&req, big, ZT_CSR_MAX_PEM + 1), ZT_E_TOOBIG);
	free(big);
	zt_csr_clear(&csr);
}
END_TEST

/* A request signed by key with the given subjectAltName extensions. */
static X509_REQ *custom_req(EVP_PKEY *key, const char *san1, const char *san2)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	const char *sans[2] = {san1, san2};
	int i;

	ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
	for (i = 0; i < 2; i++) {
		X509_EXTENSION *ext;

		if (!sans[i])
			continue;
		ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans[i]);
		ck_assert_ptr_nonnull(ext);
		ck_assert_int_gt(sk_X509_EXTENSION_push(exts, ext), 0);
	}
	if (sk_X509_EXTENSION_num(exts) > 0)
		ck_assert_int_eq(X509_REQ_add_extensions(req, exts), 1);
	ck_assert_int_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return req;
}

START_TEST(uri_sans_ignore_other_types_and_refuse_duplicate_extension)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	struct zt_spiffe_sans sans = {0};
	X509_REQ *req;

	req = custom_req(key, "DNS:spiffe.example,URI:spiffe://td/ns/a/sa/b,email:a@b", NULL);
	ck_assert_int_eq(zt_csr_verify(req), 0);
	ck_assert_int_eq(zt_csr_uri_sans(req, &sans), 0);
	ck_assert_uint_eq(sans.n, 1);
	ck_assert_str_eq(sans.v[0].uri, "spiffe://td/ns/a/sa/b");
	zt_spiffe_sans_clear(&sans);
	X509_REQ_free(req);

	req = custom_req(key, NULL, NULL);
	ck_assert_int_eq(zt_csr_uri_sans(req, &sans), 0);
	ck_assert_uint_eq(sans.n, 0);
	X509_REQ_free(req);

	req = custom_req(key, "URI:spiffe://td/ns/a/sa/b", "URI:spiffe://td/ns/a/sa/admin");
	ck_assert_int_eq(zt_csr_uri_sans(req, &sans), ZT_E_PARSE);
	ck_assert_uint_eq(sans.n, 0);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
}
END_TEST

Suite *csr_suite(void);
Suite *csr_suite(void)
{
	Suite *s = suite_create("csr");
	TCase *tc = tcase_create("csr");

	tcase_add_test(tc, generated_csr_verifies_with_empty_subject_and_sha256_ecdsa);
	tcase_add_test(tc, generated_csr_has_exactly_one_critical_uri_san);
	tcase_add_test(tc, generated_key_is_pkcs8_p256_matching_the_csr);
	tcase_add_test(tc, parse_verify_and_uri_sans_round_trip);
	tcase_add_test(tc, tampered_csr_fails_verification);
	tcase_add_test(tc, parse_rejects_garbage_truncation_and_oversize);
	tcase_add_test(tc, uri_sans_ignore_other_types_and_refuse_duplicate_extension);
	suite_add_tcase(s, tc);
	return s;
}
