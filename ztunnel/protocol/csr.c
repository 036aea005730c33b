/* CSR generation and inspection on OpenSSL (spec §4). The subject stays empty, so the single
 * URI SAN carries the identity and is marked critical as RFC 5280 requires for that case. */
#include "protocol/csr.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "runtime/err.h"
#include "runtime/mem.h"

/* Copies a memory BIO's contents into a new NUL-terminated string. */
static char *bio_string(BIO *bio, size_t *len)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);

	if (n <= 0)
		return NULL;
	*len = (size_t)n;
	return xstrndup(data, (size_t)n); /* PEM text holds no NUL */
}

/* A critical subjectAltName with one URI, as a one-element extension stack. */
static STACK_OF(X509_EXTENSION) * san_extension(const char *uri)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	X509_EXTENSION *ext = NULL;

	if (!names || !gn || !s || ASN1_STRING_set(s, uri, (int)strlen(uri)) != 1)
		goto out;
	GENERAL_NAME_set0_value(gn, GEN_URI, s);
	s = NULL;
	if (!sk_GENERAL_NAME_push(names, gn))
		goto out;
	gn = NULL;
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, names);
	exts = sk_X509_EXTENSION_new_null();
	if (!ext || !exts || !sk_X509_EXTENSION_push(exts, ext)) {
		sk_X509_EXTENSION_free(exts);
		exts = NULL;
		goto out;
	}
	ext = NULL;
out:
	X509_EXTENSION_free(ext);
	ASN1_IA5STRING_free(s);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return exts;
}

/* Puts key's public half into req as an id-ecPublicKey on prime256v1 with the uncompressed
 * point, as X509_REQ_set_pubkey would; that call decodes the key again through OpenSSL 3's
 * decoder lookup, most of what a request costs. */
static int set_ec_pubkey(X509_REQ *req, EVP_PKEY *key)
{
	X509_PUBKEY *pub = X509_REQ_get_X509_PUBKEY(req);
	unsigned char *point = NULL;
	size_t n = EVP_PKEY_get1_encoded_public_key(key, &point);

	if (!pub || n == 0 || n > INT_MAX ||
	    X509_PUBKEY_set0_param(pub, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
	                           OBJ_nid2obj(NID_X9_62_prime256v1), point, (int)n) != 1) {
		OPENSSL_free(point);
		return -1;
	}
	return 0;
}

int zt_csr_generate(struct zt_csr *out, const struct zt_spiffe *id)
{
	char uri[ZT_SPIFFE_STR_SIZE];
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	BIO *csr_bio = NULL;
	int rc = ZT_E_TLS;

	memset(out, 0, sizeof(*out));
	if (zt_spiffe_format(id, uri, sizeof(uri)) < 0)
		return ZT_E_TOOBIG; /* cannot happen for a valid struct zt_spiffe */
	key = EVP_EC_gen("P-256");
	req = X509_REQ_new();
	exts = san_extension(uri);
	csr_bio = BIO_new(BIO_s_mem());
	if (!key || !req || !exts || !csr_bio)
		goto out;
	/* X509_REQ_new() starts with version 1 and an empty subject; both are what we want. */
	if (set_ec_pubkey(req, key) < 0 || X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	if (PEM_write_bio_X509_REQ(csr_bio, req) != 1)
		goto out;
	out->csr_pem = bio_string(csr_bio, &out->csr_len);
	if (!out->csr_pem)
		goto out;
	out->key = key;
	key = NULL;
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(csr_bio);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

void zt_csr_clear(struct zt_csr *csr)
{
	free(csr->csr_pem);
	EVP_PKEY_free(csr->key);
	memset(csr, 0, sizeof(*csr));
}

int zt_csr_key_pem(const struct zt_csr *csr, char **pem, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_secmem()); /* wiped on free */
	int rc = ZT_E_TLS;

	*pem = NULL;
	*len = 0;
	if (!bio)
		abort();
	if (csr->key && PEM_write_bio_PrivateKey(bio, csr->key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (*pem = bio_string(bio, len)))
		rc = 0;
	ERR_clear_error();
	BIO_free(bio);
	return rc;
}

void zt_csr_key_pem_free(char *pem, size_t len)
{
	if (pem)
		OPENSSL_cleanse(pem, len);
	free(pem);
}

int zt_csr_parse(X509_REQ **out, const char *pem, size_t len)
{
	BIO *bio;

	*out = NULL;
	if (len > ZT_CSR_MAX_PEM)
		return ZT_E_TOOBIG;
	if (!pem)
		return ZT_E_PARSE;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		abort();
	*out = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return *out ? 0 : ZT_E_PARSE;
}

int zt_csr_verify(X509_REQ *req)
{
	EVP_PKEY *key = X509_REQ_get0_pubkey(req);
	int ok = key && X509_REQ_verify(req, key) == 1;

	ERR_clear_error();
	return ok ? 0 : ZT_E_PROTO;
}

int zt_csr_uri_sans(X509_REQ *req, struct zt_spiffe_sans *out)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *names = NULL;
	int i, rc = 0;

	for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name)
			continue;
		if (names) {
			rc = ZT_E_PARSE;
			break;
		}
		names = X509V3_EXT_d2i(ext);
		if (!names) {
			rc = ZT_E_PARSE;
			break;
		}
	}
	if (rc == 0 && names)
		rc = zt_spiffe_sans_from_names(names, out);
	if (rc < 0)
		zt_spiffe_sans_clear(out);
	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	return rc;
}
