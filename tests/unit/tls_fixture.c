/* Throwaway PKI for the TLS tests, built with OpenSSL's X509 API. Leaves look like istiod's
 * workload certificates: empty subject, critical URI SAN, digitalSignature+keyEncipherment. */
#include "tls_fixture.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static long next_serial = 0x1000;

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	ck_assert_ptr_nonnull(d);
	memcpy(d, s, n);
	return d;
}

static char *concat(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *d = malloc(na + nb + 1);

	ck_assert_ptr_nonnull(d);
	memcpy(d, a, na);
	memcpy(d + na, b, nb + 1);
	return d;
}

static char *bio_take(BIO *bio)
{
	char *data, *s;
	long n = BIO_get_mem_data(bio, &data);

	ck_assert_int_gt(n, 0);
	s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	BIO_free(bio);
	return s;
}

static char *cert_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());

	ck_assert_int_eq(PEM_write_bio_X509(bio, x), 1);
	return bio_take(bio);
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_mem());

	ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
	return bio_take(bio);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ck_assert_msg(ext != NULL, "bad extension %s", value);
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer (NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, long serial, long nb, long na)
{
	X509 *x = X509_new();

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), nb));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), na));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	if (cn)
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
		                                            MBSTRING_ASC, (const unsigned char *)cn,
		                                            -1, -1, 0),
		                 1);
	ck_assert_int_eq(X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)), 1);
	return x;
}

void fx_ca_init(struct fx_ca *ca, const char *cn, const struct fx_ca *parent)
{
	memset(ca, 0, sizeof(*ca));
	ca->key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(ca->key);
	ca->cert = make_cert(ca->key, cn, parent ? parent->cert : NULL, next_serial++, -3600,
	                     30L * 86400);
	add_ext(ca->cert, parent ? parent->cert : NULL, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(ca->cert, parent ? parent->cert : NULL, NID_key_usage,
	        "critical,keyCertSign,cRLSign");
	ck_assert_int_gt(X509_sign(ca->cert, parent ? parent->key : ca->key, EVP_sha256()), 0);
	ca->pem = cert_pem(ca->cert);
	if (parent) {
		ca->chain_pem = concat(ca->pem, parent->chain_pem);
		ca->root_pem = dup_str(parent->root_pem);
	} else {
		ca->chain_pem = dup_str("");
		ca->root_pem = dup_str(ca->pem);
	}
}

void fx_ca_clear(struct fx_ca *ca)
{
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->pem);
	free(ca->chain_pem);
	free(ca->root_pem);
	memset(ca, 0, sizeof(*ca));
}

void fx_leaf_issue(struct fx_leaf *out, const struct fx_ca *ca, const struct fx_leaf_opts *o)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	long nb = o->not_before, na = o->not_after;
	char eku[64] = "";
	char *pem;
	X509 *x;

	ck_assert_ptr_nonnull(key);
	if (nb == 0 && na == 0) {
		nb = -60;
		na = 86400;
	}
	x = make_cert(key, NULL, ca->cert, o->serial ? o->serial : next_serial++, nb, na);
	add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
	if (o->eku) {
		snprintf(eku, sizeof(eku), "%s%s%s", o->eku & FX_SERVER_AUTH ? "serverAuth" : "",
		         o->eku == (FX_SERVER_AUTH | FX_CLIENT_AUTH) ? "," : "",
		         o->eku & FX_CLIENT_AUTH ? "clientAuth" : "");
		add_ext(x, ca->cert, NID_ext_key_usage, eku);
	}
	if (o->sans) {
		char *v = concat("critical,", o->sans);

		add_ext(x, ca->cert, NID_subject_alt_name, v);
		free(v);
	}
	ck_assert_int_gt(X509_sign(x, ca->key, EVP_sha256()), 0);
	pem = cert_pem(x);
	out->chain_pem = concat(pem, ca->chain_pem);
	out->key_pem = key_pem(key);
	free(pem);
	X509_free(x);
	EVP_PKEY_free(key);
}

void fx_leaf_clear(struct fx_leaf *leaf)
{
	free(leaf->chain_pem);
	free(leaf->key_pem);
	memset(leaf, 0, sizeof(*leaf));
}

struct zt_tls_identity *fx_identity_opts(const struct fx_ca *ca, const struct fx_leaf_opts *o)
{
	struct zt_tls_identity *id = NULL;
	struct fx_leaf leaf;
	int rc;

	fx_leaf_issue(&leaf, ca, o);
	rc = zt_tls_identity_new(&id, leaf.chain_pem, strlen(leaf.chain_pem), leaf.key_pem,
	                         strlen(leaf.key_pem), ca->root_pem, strlen(ca->root_pem));
	ck_assert_msg(rc == 0, "identity for %s: %d", o->sans ? o->sans : "(none)", rc);
	fx_leaf_clear(&leaf);
	return id;
}

struct zt_tls_identity *fx_identity(const struct fx_ca *ca, const char *uri)
{
	char sans[512];

	snprintf(sans, sizeof(sans), "URI:%s", uri);
	return fx_identity_opts(
	        ca, &(struct fx_leaf_opts){.sans = sans, .eku = FX_SERVER_AUTH | FX_CLIENT_AUTH});
}
