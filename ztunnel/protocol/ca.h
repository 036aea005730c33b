/* A certificate authority for workload certificates (spec §4): an ECDSA P-256 root kept as
 * two PEM files in a directory, CSR signing with istiod's checks and certificate layout, and
 * plain key+certificate issuance for serving certificates. Used by fake-istiod and as the
 * daemon's local CA. Invariant: a struct zt_ca never changes after zt_ca_open(), so signing
 * may run from several threads at once. */
#ifndef ZT_CA_H
#define ZT_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/spiffe.h"

#define ZT_CA_ROOT_CERT    "root-cert.pem"
#define ZT_CA_ROOT_KEY     "root-key.pem"
#define ZT_CA_ROOT_SUBJECT "ztunnel lab CA"     /* O= of a generated root */
#define ZT_CA_ROOT_TTL_S   (10LL * 365 * 86400) /* lifetime of a generated root */
#define ZT_CA_MAX_TTL_S    (10LL * 365 * 86400) /* longest certificate issued */
#define ZT_CA_SKEW_S       60                   /* notBefore is backdated up to this much */
#define ZT_CA_MAX_FILE     (64u * 1024)         /* bound on each root file */
#define ZT_CA_MAX_SANS     64                   /* DNS + IP SANs for zt_ca_issue */

struct zt_ca;

/* Loads DIR/root-cert.pem and DIR/root-key.pem. When neither exists and create is true, makes
 * DIR (mode 0700, parent must exist) if needed and a new self-signed root there (CA:TRUE and
 * keyCertSign|cRLSign, both critical; subject key identifier; ZT_CA_ROOT_TTL_S), written
 * atomically with the key file at mode 0600; a later open reuses it. Only one of the two
 * files present is an error, never repaired. The loaded root must be a CA certificate, not
 * expired, and match the key.
 * Returns 0 and a new CA in *out, or: ZT_E_NOTFOUND (no root and create is false),
 * ZT_E_PARSE (a file is not the PEM it should be, or the pair does not fit together),
 * ZT_E_RANGE (root expired), ZT_E_TOOBIG (file over ZT_CA_MAX_FILE), ZT_E_TLS (OpenSSL
 * failure), -errno (file system). err (may be NULL) then names the file and what is wrong. */
int zt_ca_open(struct zt_ca **out, const char *dir, bool create, char *err, size_t errlen);

/* Accepts NULL. */
void zt_ca_free(struct zt_ca *ca);

/* The root certificate as PEM (ends in "\n"), valid as long as ca. */
const char *zt_ca_root_pem(const struct zt_ca *ca);

/* Signs a workload CSR (spec §4) after checking it: csr_pem[0..len) (need not be
 * NUL-terminated, at most ZT_CSR_MAX_PEM bytes) is one PEM certificate request with a valid
 * self-signature, an EC (P-256/P-384) or RSA (>= 2048 bits) key, and exactly one URI SAN,
 * which is a SPIFFE ID in trust_domain and, when required_id is non-NULL, equal to it (other
 * SAN types are ignored and not copied).
 * The leaf has a random 128-bit serial, an empty subject, notBefore now - min(ZT_CA_SKEW_S,
 * ttl_s / 10),
 * notAfter now + ttl_s (clamped to the root's notAfter), basicConstraints CA:FALSE and keyUsage
 * digitalSignature|keyEncipherment (both critical), EKU serverAuth+clientAuth, the authority
 * key identifier, and the SPIFFE ID as its only (critical) SAN.
 * On success *chain is a new array of *nchain = 2 new strings: the leaf PEM then the root PEM,
 * each ending in "\n" (free with zt_ca_chain_free), and id_out (may be NULL) gets the identity.
 * Returns 0 or: ZT_E_TOOBIG (len), ZT_E_PARSE (not a PEM CSR), ZT_E_PROTO (bad signature or
 * key not accepted), ZT_E_IDENTITY (SAN checks), ZT_E_RANGE (ttl_s outside
 * 1..ZT_CA_MAX_TTL_S), ZT_E_TLS (OpenSSL failure). err (may be NULL) says why in words, naming
 * the offending SAN (non-printable bytes shown as '?'). */
int zt_ca_sign_csr(struct zt_ca *ca, const char *csr_pem, size_t len, const char *trust_domain,
                   const char *required_id, int64_t ttl_s, char ***chain, size_t *nchain,
                   struct zt_spiffe *id_out, char *err, size_t errlen);

/* Frees chain[0..n) and the array. Accepts NULL. */
void zt_ca_chain_free(char **chain, size_t n);

/* Issues a new P-256 key and a certificate for it, laid out like a signed leaf (empty
 * subject, critical SAN, both EKUs) with SANs dns[0..ndns) (host names, `*.` wildcard
 * allowed), ips[0..nips) (IPv4/IPv6 text) and uri (NULL: none). At least one SAN is needed.
 * Serving certificates for zt_tls_cp_server_new() come from here (no uri) as do workload
 * identities for tests (with a SPIFFE uri).
 * *cert_pem gets the certificate alone (the root is zt_ca_root_pem), *key_pem the key as
 * PKCS#8; both new NUL-terminated strings the caller frees.
 * Returns 0 or: ZT_E_PARSE (a malformed SAN), ZT_E_RANGE (no SAN, more than ZT_CA_MAX_SANS,
 * ttl_s outside 1..ZT_CA_MAX_TTL_S), ZT_E_TLS. err (may be NULL) says why. */
int zt_ca_issue(struct zt_ca *ca, const char *const *dns, size_t ndns, const char *const *ips,
                size_t nips, const char *uri, int64_t ttl_s, char **cert_pem, char **key_pem,
                char *err, size_t errlen);

#endif
