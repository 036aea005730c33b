/* CSR signing for the certificate tests, on OpenSSL's X509 API. */
#include "cert_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "protocol/csr.h"

static long serial = 0x7000;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ck_assert_msg(ext != NULL, "bad extension %s", value);
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

char *cfx_sign_csr(const struct fx_ca *ca, const char *csr_pem, const char *san, unsigned eku,
                   long nb, long na)
{
	X509_REQ *req = NULL;
	X509 *x = X509_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char v[4096], *data, *pem;
	long n;

	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(zt_csr_parse(&req, csr_pem, strlen(csr_pem)), 0);
	ck_assert_int_eq(zt_csr_verify(req), 0);
	ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), nb));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), na));
	ck_assert_int_eq(X509_set_pubkey(x, X509_REQ_get0_pubkey(req)), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, X509_get_subject_name(ca->cert)), 1);
	add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
	if (eku) {
		snprintf(v, sizeof(v), "%s%s%s", eku & FX_SERVER_AUTH ? "serverAuth" : "",
		         eku == (FX_SERVER_AUTH | FX_CLIENT_AUTH) ? "," : "",
		         eku & FX_CLIENT_AUTH ? "clientAuth" : "");
		add_ext(x, ca->cert, NID_ext_key_usage, v);
	}
	if (san) {
		snprintf(v, sizeof(v), "critical,URI:%s", san);
		add_ext(x, ca->cert, NID_subject_alt_name, v);
	}
	ck_assert_int_gt(X509_sign(x, ca->key, EVP_sha256()), 0);
	ck_assert_int_eq(PEM_write_bio_X509(bio, x), 1);
	n = BIO_get_mem_data(bio, &data);
	ck_assert_int_gt(n, 0);
	pem = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(pem);
	memcpy(pem, data, (size_t)n);
	pem[n] = '\0';
	BIO_free(bio);
	X509_free(x);
	X509_REQ_free(req);
	return pem;
}
