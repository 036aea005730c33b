/* Certificate signing requests for workload certificates (spec §4): generation on the
 * workload side (fresh ECDSA P-256 key, empty subject, one critical URI SAN, SHA-256) and the
 * checks a signer applies to a received CSR. All data is PEM in memory. */
#ifndef ZT_CSR_H
#define ZT_CSR_H

#include <stddef.h>

#include <openssl/types.h>

#include "protocol/spiffe.h"

#define ZT_CSR_MAX_PEM (64u * 1024) /* bound on a CSR accepted for parsing */

/* A generated request: the PEM request (NUL-terminated, len excludes the NUL) and its key,
 * owned. The key stays an object: it never exists as text in the daemon. */
struct zt_csr {
	char *csr_pem; /* "CERTIFICATE REQUEST" */
	size_t csr_len;
	EVP_PKEY *key; /* ECDSA P-256 */
};

/* Generates a new P-256 key and a CSR for id into out (overwritten, not freed first).
 * Returns 0, ZT_E_TLS (OpenSSL failure) or ZT_E_TOOBIG (id not a valid struct zt_spiffe);
 * out is empty on error. */
int zt_csr_generate(struct zt_csr *out, const struct zt_spiffe *id);
/* The key as PEM "PRIVATE KEY" (PKCS#8, unencrypted): a new NUL-terminated string in *pem
 * (free with zt_csr_key_pem_free), for tools and tests. Returns 0 or ZT_E_TLS. */
int zt_csr_key_pem(const struct zt_csr *csr, char **pem, size_t *len);
void zt_csr_key_pem_free(char *pem, size_t len);
/* Frees the request and the key (OpenSSL wipes it). Accepts a zeroed or cleared struct. */
void zt_csr_clear(struct zt_csr *csr);

/* Parses one PEM CSR from pem[0..len) (need not be NUL-terminated). The signature is not
 * checked. Returns 0 and a new X509_REQ in *out (free with X509_REQ_free), ZT_E_TOOBIG
 * (len > ZT_CSR_MAX_PEM) or ZT_E_PARSE. */
int zt_csr_parse(X509_REQ **out, const char *pem, size_t len);
/* Checks the request's self-signature with its own public key. Returns 0 or ZT_E_PROTO. */
int zt_csr_verify(X509_REQ *req);
/* Fills out (which must be empty) with the URI SANs of the request's extensions, in order;
 * none gives an empty list. Returns 0, ZT_E_PARSE (undecodable or duplicated
 * subjectAltName) or ZT_E_TOOBIG. */
int zt_csr_uri_sans(X509_REQ *req, struct zt_spiffe_sans *out);

#endif
