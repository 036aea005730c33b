/* SPIFFE workload identities `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`
 * (spec §2.2): strict parsing and formatting, and the identity checks both ends of an mTLS
 * handshake apply to the peer's URI SANs. Parsing and checks are pure; the only OpenSSL use is
 * reading URI SANs out of an already parsed certificate. A struct zt_spiffe always holds a
 * valid identity: every part non-empty, bounded and made of the SPIFFE character set. */
#ifndef ZT_SPIFFE_H
#define ZT_SPIFFE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/types.h>
#include <openssl/x509v3.h>

#define ZT_SPIFFE_MAX_LEN  2048 /* longest input even looked at (SPIFFE standard URI bound) */
#define ZT_SPIFFE_TD_MAX   255  /* trust domain */
#define ZT_SPIFFE_NAME_MAX 253  /* namespace and service account (Kubernetes name bound) */
#define ZT_SPIFFE_MAX_SANS 64   /* URI SANs accepted from one certificate or CSR */
#define ZT_SPIFFE_STR_SIZE                                                                         \
	(sizeof("spiffe://") - 1 + ZT_SPIFFE_TD_MAX + sizeof("/ns/") - 1 + ZT_SPIFFE_NAME_MAX +    \
	 sizeof("/sa/") - 1 + ZT_SPIFFE_NAME_MAX + 1)
/* Values used when xDS leaves the field empty (spec §2.2). Applied by callers. */
#define ZT_SPIFFE_DEFAULT_TD "cluster.local"
#define ZT_SPIFFE_DEFAULT_SA "default"

struct zt_spiffe {
	char td[ZT_SPIFFE_TD_MAX + 1];
	char ns[ZT_SPIFFE_NAME_MAX + 1];
	char sa[ZT_SPIFFE_NAME_MAX + 1];
};

/* One URI SAN as found in a certificate: a NUL-terminated copy, but len is authoritative
 * (a hostile certificate may embed NUL bytes, which then make the SAN unparsable). */
struct zt_spiffe_san {
	char *uri;
	size_t len;
};

/* An owned list of URI SANs, in certificate order. Zero-initialise before first use. */
struct zt_spiffe_sans {
	struct zt_spiffe_san *v;
	size_t n;
};

/* Parses exactly `spiffe://TD/ns/NS/sa/SA` from s[0..len) (s need not be NUL-terminated).
 * Scheme is case-sensitive; the 2nd and 4th path parts are literally `ns` and `sa`; no other
 * path parts, query, fragment, port or user info. Characters follow the SPIFFE standard:
 * trust domain [a-z0-9._-], namespace and service account [A-Za-z0-9._-], neither `.` nor
 * `..`. So NUL, control bytes, whitespace, `%`, `?` and `#` are all rejected.
 * Returns 0 (out filled), ZT_E_TOOBIG (input or a part over its bound) or ZT_E_PARSE.
 * out is left unspecified on error. */
int zt_spiffe_parse(struct zt_spiffe *out, const char *s, size_t len);

/* Builds an identity from its parts (NUL-terminated), validated as zt_spiffe_parse() does.
 * Returns 0, ZT_E_TOOBIG or ZT_E_PARSE. */
int zt_spiffe_set(struct zt_spiffe *out, const char *td, const char *ns, const char *sa);

/* Writes the URI form and a NUL into buf. Returns its length (without the NUL), or
 * ZT_E_TOOBIG if size is too small (ZT_SPIFFE_STR_SIZE always suffices). */
int zt_spiffe_format(const struct zt_spiffe *id, char *buf, size_t size);

bool zt_spiffe_eq(const struct zt_spiffe *a, const struct zt_spiffe *b);
bool zt_spiffe_same_td(const struct zt_spiffe *a, const struct zt_spiffe *b);

/* Server-side check of a client certificate (spec §2.2): at least one URI SAN must be a
 * SPIFFE ID in own->td. The peer identity is then the first URI SAN that parses as SPIFFE
 * (whatever its trust domain); it is written to peer (may be NULL).
 * Returns 0 or ZT_E_IDENTITY. */
int zt_spiffe_verify_client(const struct zt_spiffe *own, const struct zt_spiffe_sans *sans,
                            struct zt_spiffe *peer);

/* Client-side check of a server certificate (spec §2.2): some URI SAN must parse as SPIFFE
 * and equal one of expected[0..n). The first SAN that matches is written to matched (may be
 * NULL). An empty expected list accepts nothing. Returns 0 or ZT_E_IDENTITY. */
int zt_spiffe_verify_server(const struct zt_spiffe *expected, size_t n,
                            const struct zt_spiffe_sans *sans, struct zt_spiffe *matched);

/* Appends the URI entries of names to out (other GeneralName types are ignored).
 * Returns 0 or ZT_E_TOOBIG (more than ZT_SPIFFE_MAX_SANS in total; out is then cleared). */
int zt_spiffe_sans_from_names(const GENERAL_NAMES *names, struct zt_spiffe_sans *out);

/* Fills out (which must be empty) with the URI SANs of cert's subjectAltName extension; no
 * extension gives an empty list. Returns 0, ZT_E_PARSE (extension present but undecodable or
 * duplicated) or ZT_E_TOOBIG. */
int zt_spiffe_sans_from_x509(X509 *cert, struct zt_spiffe_sans *out);

/* Frees the entries and empties the list. Accepts an empty list. */
void zt_spiffe_sans_clear(struct zt_spiffe_sans *sans);

/* Appends a copy of uri[0..len) (for tests and callers holding SANs as strings).
 * Returns 0 or ZT_E_TOOBIG. */
int zt_spiffe_sans_add(struct zt_spiffe_sans *sans, const char *uri, size_t len);

#endif
