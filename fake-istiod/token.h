/* Service-account tokens for the fake istiod: JWTs shaped like Kubernetes bound tokens
 * (issuer, subject system:serviceaccount:NS:SA, audience istio-ca, and the kubernetes.io
 * claims naming namespace, service account and node), signed with HS256 under a secret kept
 * in a directory. Verification accepts nothing but HS256 with that secret; pure apart from
 * loading the key. */
#ifndef FI_TOKEN_H
#define FI_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define FI_TOKEN_KEY_FILE "token-key" /* 32 random bytes, mode 0600 */
#define FI_TOKEN_ISSUER   "fake-istiod"
#define FI_TOKEN_AUDIENCE "istio-ca"
#define FI_TOKEN_MAX_LEN  8192 /* longest token looked at */
#define FI_TOKEN_MAX_TTL  (366LL * 86400)
#define FI_TOKEN_NAME_MAX 253 /* namespace, service account, node */

struct fi_token_key;

/* What a valid token says. Names are non-empty, at most FI_TOKEN_NAME_MAX bytes, made of
 * [A-Za-z0-9._-]; node is "" when the token names none. */
struct fi_token_claims {
	char node[FI_TOKEN_NAME_MAX + 1];
	char ns[FI_TOKEN_NAME_MAX + 1];
	char sa[FI_TOKEN_NAME_MAX + 1];
	int64_t iat;
	int64_t exp;
};

/* Loads DIR/token-key, or creates it (and DIR, mode 0700, parent must exist) with a fresh
 * secret, written atomically at mode 0600. Returns 0 and a new key in *k, or ZT_E_PARSE (file
 * is not exactly 32 bytes), ZT_E_TLS (no randomness), -errno; err (may be NULL) names the
 * file and the problem. */
int fi_token_key_open(struct fi_token_key **k, const char *dir, char *err, size_t errlen);
/* Wipes and frees. Accepts NULL. */
void fi_token_key_free(struct fi_token_key *k);

/* Mints a token for service account ns/sa on node (NULL or "": no node claim), issued at now
 * (Unix seconds) and valid for ttl_s. *out is a new NUL-terminated string the caller frees.
 * Returns 0, ZT_E_PARSE (a name is empty, too long or has other characters) or ZT_E_RANGE
 * (ttl_s outside 1..FI_TOKEN_MAX_TTL). */
int fi_token_mint(const struct fi_token_key *k, const char *node, const char *ns, const char *sa,
                  int64_t ttl_s, int64_t now, char **out);

/* Checks token (NUL-terminated) at time now: three base64url segments without padding,
 * a header whose alg is exactly "HS256" (no "crit"), a valid signature (constant-time
 * compare), iss fake-istiod, exp > now, aud (string or array) holding istio-ca, and sub equal
 * to system:serviceaccount:NS:SA for the kubernetes.io namespace and serviceaccount.name.
 * Fills out (may be NULL) on success. Returns 0, or ZT_E_TOOBIG (over FI_TOKEN_MAX_LEN),
 * ZT_E_PARSE (malformed or missing claims), ZT_E_IDENTITY (alg, signature, issuer, audience
 * or subject not accepted) or ZT_E_RANGE (expired); why (may be NULL) says which in words
 * fit for a gRPC status message, e.g. "token expired" or "bad signature". */
int fi_token_verify(const struct fi_token_key *k, const char *token, int64_t now,
                    struct fi_token_claims *out, char *why, size_t whylen);

#endif
