/* HS256 JWTs for the fake istiod (RFC 7519/7515 subset). Verification order matters: the
 * header is checked for alg HS256 before anything else, the signature before any claim is
 * read, so an unsigned or differently signed token never gets its payload interpreted. */
#include "token.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "runtime/err.h"
#include "runtime/file.h"
#include "runtime/mem.h"

#define SECRET_LEN 32
#define SIG_LEN    32 /* HMAC-SHA256 */
#define SUB_PREFIX "system:serviceaccount:"

struct fi_token_key {
	unsigned char secret[SECRET_LEN];
};

#define seterr(err, errlen, ...) ((void)zt_errf(0, (err), (errlen), __VA_ARGS__))

/* ---- key --------------------------------------------------------------------------------- */

int fi_token_key_open(struct fi_token_key **k, const char *dir, char *err, size_t errlen)
{
	struct fi_token_key *key = xcalloc(1, sizeof(*key));
	char *path = NULL, *buf = NULL;
	size_t len = 0;
	int rc;

	*k = NULL;
	path = xasprintf("%s/%s", dir, FI_TOKEN_KEY_FILE);
	rc = zt_file_read(path, 4 * SECRET_LEN, &buf, &len);
	if (rc == 0 && len != SECRET_LEN) {
		seterr(err, errlen, "%s: holds %zu bytes, a token key is exactly %d", path, len,
		       SECRET_LEN);
		rc = ZT_E_PARSE;
	} else if (rc == 0) {
		memcpy(key->secret, buf, SECRET_LEN);
	} else if (rc == ZT_E_TOOBIG) {
		seterr(err, errlen, "%s: too large for a token key (exactly %d bytes)", path,
		       SECRET_LEN);
		rc = ZT_E_PARSE;
	} else if (rc != -ENOENT) {
		seterr(err, errlen, "%s: cannot read: %s", path, zt_strerror(rc));
	} else if ((rc = zt_file_mkdir(dir, 0700)) < 0) {
		seterr(err, errlen, "%s: cannot create directory: %s", dir, zt_strerror(rc));
	} else if (RAND_bytes(key->secret, SECRET_LEN) != 1) {
		seterr(err, errlen, "no randomness for a token key");
		rc = ZT_E_TLS;
	} else if ((rc = zt_file_write_atomic(path, key->secret, SECRET_LEN, 0600)) < 0) {
		seterr(err, errlen, "%s: cannot write: %s", path, zt_strerror(rc));
	}
	if (buf)
		OPENSSL_cleanse(buf, len);
	free(buf);
	free(path);
	if (rc < 0) {
		fi_token_key_free(key);
		return rc;
	}
	*k = key;
	return 0;
}

void fi_token_key_free(struct fi_token_key *k)
{
	if (!k)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

/* ---- base64url (RFC 4648 §5, no padding) ------------------------------------------------- */

static char *b64url_encode(const void *p, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1, len;
	char *s;

	if (n > INT32_MAX / 2)
		abort();
	s = xmalloc(cap);
	len = (size_t)EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	while (len > 0 && s[len - 1] == '=')
		len--;
	s[len] = '\0';
	for (size_t i = 0; i < len; i++)
		s[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
	return s;
}

/* The 6-bit value of a base64url character, or -1. */
static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes s[0..n) into a new buffer *out of *outlen bytes (plus a NUL for JSON text). Only
 * the canonical encoding is accepted: URL alphabet, no padding, no whitespace, unused low
 * bits of the last character zero. Returns false on anything else. */
static bool b64url_decode(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
	size_t pad = (4 - n % 4) % 4, full = n + pad;
	char *tmp;
	unsigned char *buf;
	int got, last;

	*out = NULL;
	if (n == 0 || n % 4 == 1 || n > FI_TOKEN_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (b64url_value(s[i]) < 0)
			return false;
	last = b64url_value(s[n - 1]);
	if ((n % 4 == 2 && (last & 0x0f)) || (n % 4 == 3 && (last & 0x03)))
		return false;
	tmp = xmalloc(full);
	buf = xmalloc(full / 4 * 3 + 1);
	for (size_t i = 0; i < n; i++)
		tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	memset(tmp + n, '=', pad);
	got = EVP_DecodeBlock(buf, (const unsigned char *)tmp, (int)full);
	free(tmp);
	if (got < 0 || (size_t)got < pad) {
		free(buf);
		return false;
	}
	*outlen = (size_t)got - pad; /* DecodeBlock counts the padding as zero bytes */
	buf[*outlen] = '\0';
	*out = buf;
	return true;
}

/* ---- minting ----------------------------------------------------------------------------- */

/* A Kubernetes-style name as carried in tokens: 1..253 bytes of [A-Za-z0-9._-]. */
static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > FI_TOKEN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static void hmac(const struct fi_token_key *k, const char *data, size_t len,
                 unsigned char mac[SIG_LEN])
{
	unsigned int maclen = 0;

	if (!HMAC(EVP_sha256(), k->secret, SECRET_LEN, (const unsigned char *)data, len, mac,
	          &maclen) ||
	    maclen != SIG_LEN)
		abort();
}

int fi_token_mint(const struct fi_token_key *k, const char *node, const char *ns, const char *sa,
                  int64_t ttl_s, int64_t now, char **out)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[SIG_LEN];
	char *sub = NULL, *h64, *p64, *s64, *text, *signing;
	json_t *payload, *kube;

	*out = NULL;
	if (!ns || !sa || !name_ok(ns, strlen(ns)) || !name_ok(sa, strlen(sa)) ||
	    (node && node[0] && !name_ok(node, strlen(node))))
		return ZT_E_PARSE;
	if (ttl_s < 1 || ttl_s > FI_TOKEN_MAX_TTL || now > INT64_MAX - ttl_s)
		return ZT_E_RANGE;
	sub = xasprintf(SUB_PREFIX "%s:%s", ns, sa);
	kube = json_pack("{s:s, s:{s:s}}", "namespace", ns, "serviceaccount", "name", sa);
	if (kube && node && node[0])
		json_object_set_new(kube, "node", json_pack("{s:s}", "name", node));
	payload = json_pack("{s:s, s:s, s:[s], s:I, s:I, s:o}", "iss", FI_TOKEN_ISSUER, "sub", sub,
	                    "aud", FI_TOKEN_AUDIENCE, "iat", (json_int_t)now, "exp",
	                    (json_int_t)(now + ttl_s), "kubernetes.io", kube);
	text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	if (!text)
		abort();
	h64 = b64url_encode(header, sizeof(header) - 1);
	p64 = b64url_encode(text, strlen(text));
	signing = xasprintf("%s.%s", h64, p64);
	hmac(k, signing, strlen(signing), mac);
	s64 = b64url_encode(mac, sizeof(mac));
	*out = xasprintf("%s.%s", signing, s64);
	free(s64);
	free(signing);
	free(p64);
	free(h64);
	free(text);
	json_decref(payload);
	free(sub);
	return 0;
}

/* ---- verification ------------------------------------------------------------------------ */

/* Decodes one segment as a JSON object (duplicate keys refused). NULL when it is not one. */
static json_t *segment_json(const char *s, size_t n)
{
	unsigned char *raw;
	size_t len;
	json_t *j;

	if (!b64url_decode(s, n, &raw, &len))
		return NULL;
	j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Copies a valid name from a JSON string; false if absent, not a string or not a name. */
static bool get_name(json_t *v, char dst[FI_TOKEN_NAME_MAX + 1])
{
	const char *s = json_string_value(v);
	size_t n = s ? json_string_length(v) : 0;

	if (!s || !name_ok(s, n))
		return false;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

static bool audience_ok(json_t *aud)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), FI_TOKEN_AUDIENCE) == 0;
	json_array_foreach(aud, i,
	                   v) if (json_is_string(v) &&
	                          strcmp(json_string_value(v), FI_TOKEN_AUDIENCE) == 0) return true;
	return false;
}

static int check_header(const char *s, size_t n, char *why, size_t whylen)
{
	json_t *h = segment_json(s, n);
	const char *alg;
	int rc = 0;

	if (!h) {
		seterr(why, whylen, "malformed token header");
		return ZT_E_PARSE;
	}
	alg = json_string_value(json_object_get(h, "alg"));
	if (!alg || strcmp(alg, "HS256") != 0) {
		seterr(why, whylen, "token algorithm is not HS256");
		rc = ZT_E_IDENTITY;
	} else if (json_object_get(h, "crit")) {
		seterr(why, whylen, "token header has critical extensions");
		rc = ZT_E_IDENTITY;
	}
	json_decref(h);
	return rc;
}

static int check_signature(const struct fi_token_key *k, const char *token, size_t signed_len,
                           const char *sig, size_t sig_len, char *why, size_t whylen)
{
	unsigned char mac[SIG_LEN], *got = NULL;
	size_t got_len = 0;
	int rc = 0;

	if (!b64url_decode(sig, sig_len, &got, &got_len) || got_len != SIG_LEN) {
		seterr(why, whylen, "malformed token signature");
		rc = ZT_E_PARSE;
	} else {
		hmac(k, token, signed_len, mac);
		if (CRYPTO_memcmp(mac, got, SIG_LEN) != 0) {
			seterr(why, whylen, "bad signature");
			rc = ZT_E_IDENTITY;
		}
	}
	free(got);
	return rc;
}

static int check_claims(json_t *p, int64_t now, struct fi_token_claims *c, char *why, size_t whylen)
{
	json_t *kube = json_object_get(p, "kubernetes.io"), *node;
	const char *iss = json_string_value(json_object_get(p, "iss"));
	const char *sub = json_string_value(json_object_get(p, "sub"));
	json_t *exp = json_object_get(p, "exp"), *iat = json_object_get(p, "iat");
	json_t *nbf = json_object_get(p, "nbf");
	char want_sub[sizeof(SUB_PREFIX) + 2 * FI_TOKEN_NAME_MAX + 2];

	if (!iss || strcmp(iss, FI_TOKEN_ISSUER) != 0) {
		seterr(why, whylen, "token issuer is not " FI_TOKEN_ISSUER);
		return ZT_E_IDENTITY;
	}
	if (!json_is_integer(exp) || !json_is_integer(iat)) {
		seterr(why, whylen, "token lacks integer exp and iat claims");
		return ZT_E_PARSE;
	}
	c->exp = json_integer_value(exp);
	c->iat = json_integer_value(iat);
	if (c->exp <= now) {
		seterr(why, whylen, "token expired");
		return ZT_E_RANGE;
	}
	if (nbf && (!json_is_integer(nbf) || json_integer_value(nbf) > now)) {
		seterr(why, whylen, "token not valid yet");
		return ZT_E_RANGE;
	}
	if (!audience_ok(json_object_get(p, "aud"))) {
		seterr(why, whylen, "token audience does not include " FI_TOKEN_AUDIENCE);
		return ZT_E_IDENTITY;
	}
	if (!json_is_object(kube) || !get_name(json_object_get(kube, "namespace"), c->ns) ||
	    !get_name(json_object_get(json_object_get(kube, "serviceaccount"), "name"), c->sa)) {
		seterr(why, whylen, "token lacks kubernetes.io namespace and serviceaccount");
		return ZT_E_PARSE;
	}
	node = json_object_get(kube, "node");
	c->node[0] = '\0';
	if (node && !get_name(json_object_get(node, "name"), c->node)) {
		seterr(why, whylen, "token has a malformed kubernetes.io node");
		return ZT_E_PARSE;
	}
	snprintf(want_sub, sizeof(want_sub), SUB_PREFIX "%s:%s", c->ns, c->sa);
	if (!sub || strcmp(sub, want_sub) != 0) {
		seterr(why, whylen, "token subject does not match its service account");
		return ZT_E_IDENTITY;
	}
	return 0;
}

int fi_token_verify(const struct fi_token_key *k, const char *token, int64_t now,
                    struct fi_token_claims *out, char *why, size_t whylen)
{
	size_t len = strnlen(token, FI_TOKEN_MAX_LEN + 1);
	const char *d1, *d2;
	struct fi_token_claims c;
	json_t *payload;
	int rc;

	if (len > FI_TOKEN_MAX_LEN) {
		seterr(why, whylen, "token longer than %d bytes", FI_TOKEN_MAX_LEN);
		return ZT_E_TOOBIG;
	}
	d1 = memchr(token, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
		seterr(why, whylen, "token is not three dot-separated segments");
		return ZT_E_PARSE;
	}
	rc = check_header(token, (size_t)(d1 - token), why, whylen);
	if (rc == 0)
		rc = check_signature(k, token, (size_t)(d2 - token), d2 + 1,
		                     len - (size_t)(d2 + 1 - token), why, whylen);
	if (rc < 0)
		return rc;
	payload = segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
	if (!payload) {
		seterr(why, whylen, "malformed token payload");
		return ZT_E_PARSE;
	}
	memset(&c, 0, sizeof(c));
	rc = check_claims(payload, now, &c, why, whylen);
	json_decref(payload);
	if (rc == 0 && out)
		*out = c;
	return rc;
}
