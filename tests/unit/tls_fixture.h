/* Throwaway PKI for the TLS tests: a root or intermediate CA and leaf certificates with chosen
 * SANs, EKUs and validity, as PEM, plus shortcuts that build a struct zt_tls_identity. Every
 * call either succeeds or fails the running test. */
#ifndef TLS_FIXTURE_H
#define TLS_FIXTURE_H

#include <stdbool.h>

#include <openssl/types.h>

#include "protocol/tls.h"

enum { FX_SERVER_AUTH = 1, FX_CLIENT_AUTH = 2 };

struct fx_ca {
	EVP_PKEY *key;
	X509 *cert;
	char *pem;       /* this CA's certificate */
	char *chain_pem; /* certificates to send after a leaf it issues ("" for a root) */
	char *root_pem;  /* the root at the top of its chain */
};

struct fx_leaf_opts {
	const char *sans; /* OpenSSL config syntax, e.g. "URI:spiffe://td/ns/a/sa/b,DNS:x";
	                     NULL: no subjectAltName */
	unsigned eku;     /* FX_SERVER_AUTH | FX_CLIENT_AUTH; 0: no EKU extension */
	long serial;      /* 0: next from a counter */
	long not_before;  /* seconds from now (default -60 when both are 0) */
	long not_after;   /* seconds from now (default one day when both are 0) */
};

struct fx_leaf {
	char *chain_pem; /* leaf followed by the issuer's chain */
	char *key_pem;
};

/* parent NULL: a self-signed root named cn; else an intermediate signed by parent. */
void fx_ca_init(struct fx_ca *ca, const char *cn, const struct fx_ca *parent);
void fx_ca_clear(struct fx_ca *ca);

void fx_leaf_issue(struct fx_leaf *out, const struct fx_ca *ca, const struct fx_leaf_opts *o);
void fx_leaf_clear(struct fx_leaf *leaf);

/* A workload identity for uri with both EKUs, valid for a day, trusting ca's root. */
struct zt_tls_identity *fx_identity(const struct fx_ca *ca, const char *uri);
/* The same from explicit options. */
struct zt_tls_identity *fx_identity_opts(const struct fx_ca *ca, const struct fx_leaf_opts *o);

#endif
