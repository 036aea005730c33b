/* The certificate authority (spec §4) on OpenSSL 3: root load/creation, CSR checks and leaf
 * issuance. Leaves copy nothing from a CSR but its public key: the SAN is rebuilt from the
 * parsed SPIFFE ID and every other field is set here, so a hostile CSR cannot smuggle
 * extensions or a subject into a signed certificate. */
#include "protocol/ca.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "protocol/csr.h"
#include "runtime/err.h"
#include "runtime/file.h"
#include "runtime/mem.h"

struct zt_ca {
	EVP_PKEY *key;
	X509 *cert;
	char *root_pem;
	time_t not_after;
};

#define seterr(err, errlen, ...) ((void)zt_errf(0, (err), (errlen), __VA_ARGS__))

/* Reports an OpenSSL failure with the library's last reason, then clears its error queue. */
static int ossl_fail(char *err, size_t errlen, const char *what)
{
	char reason[256] = "unknown error";
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	seterr(err, errlen, "%s: %s", what, reason);
	return ZT_E_TLS;
}

/* A peer-supplied string made safe for an error message: at most 128 bytes shown, anything
 * outside printable ASCII (NUL included) replaced by '?'. */
static void printable(char *dst, size_t size, const char *s, size_t len)
{
	size_t o = 0, max = 128;

	for (size_t i = 0; i < len && i < max && o + 1 < size; i++)
		dst[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (len > max && o + 4 < size) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

/* Copies a memory BIO into a new NUL-terminated string (NULL when empty). */
static char *bio_string(BIO *bio)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);

	return n > 0 ? xstrndup(data, (size_t)n) : NULL; /* PEM text holds no NUL */
}

static char *cert_to_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (bio && PEM_write_bio_X509(bio, x) == 1)
		s = bio_string(bio);
	BIO_free(bio);
	return s;
}

/* PKCS#8, unencrypted; the BIO is secure memory so the encoding is wiped on free. The
 * returned copy is the caller's to wipe. */
static char *key_to_pem(EVP_PKEY *key, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *s = NULL;

	if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1)
		s = bio_string(bio);
	if (s)
		*len = strlen(s);
	BIO_free(bio);
	return s;
}

static void free_secret(char *s)
{
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* ---- certificate building ---------------------------------------------------------------- */

/* A random positive 128-bit serial (RFC 5280 allows up to 20 octets). */
static int set_random_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return 0;
	b[0] &= 0x7f; /* positive as a DER INTEGER */
	b[15] |= 1;   /* never zero */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

/* Adds an extension from OpenSSL's config syntax, e.g. "critical,CA:TRUE". */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* A certificate skeleton: v3, random serial, validity [now - skew, not_after], key. The
 * backdating is at most a tenth of the lifetime, so a short-lived certificate's half-life
 * (when holders refresh it) still lies ahead. */
static X509 *cert_new(EVP_PKEY *pub, time_t now, time_t not_after)
{
	X509 *x = X509_new();
	time_t skew = (not_after - now) / 10 < ZT_CA_SKEW_S ? (not_after - now) / 10 : ZT_CA_SKEW_S;

	if (!x || X509_set_version(x, X509_VERSION_3) != 1 || !set_random_serial(x) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), now - skew) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), not_after) || X509_set_pubkey(x, pub) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int ttl_check(int64_t ttl_s, char *err, size_t errlen)
{
	if (ttl_s >= 1 && ttl_s <= ZT_CA_MAX_TTL_S)
		return 0;
	seterr(err, errlen, "certificate lifetime %lld s is outside 1..%lld s", (long long)ttl_s,
	       (long long)ZT_CA_MAX_TTL_S);
	return ZT_E_RANGE;
}

/* Signs an end-entity certificate for pub with the given SANs (ownership of names stays with
 * the caller). Returns the certificate or NULL (err set). */
static X509 *issue_leaf(struct zt_ca *ca, EVP_PKEY *pub, int64_t ttl_s, GENERAL_NAMES *names,
                        char *err, size_t errlen)
{
	time_t now = time(NULL);
	time_t not_after = now + (time_t)ttl_s;
	X509_EXTENSION *san = NULL;
	X509 *x;

	if (ca->not_after <= now) {
		seterr(err, errlen, "the CA root has expired");
		return NULL;
	}
	if (not_after > ca->not_after)
		not_after = ca->not_after;
	x = cert_new(pub, now, not_after);
	/* The subject stays empty: the SAN carries the identity and is therefore critical. */
	san = X509V3_EXT_i2d(NID_subject_alt_name, 1, names);
	if (!x || !san || X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
	    !add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
	    !add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    !add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always") ||
	    X509_add_ext(x, san, -1) != 1 || X509_sign(x, ca->key, EVP_sha256()) <= 0) {
		ossl_fail(err, errlen, "issuing certificate");
		X509_free(x);
		x = NULL;
	}
	X509_EXTENSION_free(san);
	return x;
}

/* Appends one GeneralName of the given type holding an IA5 string copy of s. */
static int push_ia5(GENERAL_NAMES *names, int type, const char *s)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *v = ASN1_IA5STRING_new();

	if (!gn || !v || ASN1_STRING_set(v, s, (int)strlen(s)) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(v);
		return 0;
	}
	GENERAL_NAME_set0_value(gn, type, v);
	if (!sk_GENERAL_NAME_push(names, gn)) {
		GENERAL_NAME_free(gn);
		return 0;
	}
	return 1;
}

/* ---- the root ---------------------------------------------------------------------------- */

static int root_generate(struct zt_ca *ca, char *err, size_t errlen)
{
	time_t now = time(NULL);
	X509_NAME *name;

	ca->key = EVP_EC_gen("P-256");
	if (!ca->key)
		return ossl_fail(err, errlen, "generating root key");
	ca->cert = cert_new(ca->key, now, now + (time_t)ZT_CA_ROOT_TTL_S);
	name = ca->cert ? X509_get_subject_name(ca->cert) : NULL;
	if (!name ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	                               (const unsigned char *)ZT_CA_ROOT_SUBJECT, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(ca->cert, name) != 1 ||
	    !add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE") ||
	    !add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash") ||
	    X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0)
		return ossl_fail(err, errlen, "building root certificate");
	return 0;
}

/* Writes the key first: a crash in between leaves only the key, which the next open reports
 * instead of silently replacing. */
static int root_save(struct zt_ca *ca, const char *cert_path, const char *key_path, char *err,
                     size_t errlen)
{
	size_t key_len = 0;
	char *key = key_to_pem(ca->key, &key_len);
	int rc;

	if (!key)
		return ossl_fail(err, errlen, "encoding root key");
	rc = zt_file_write_atomic(key_path, key, key_len, 0600);
	free_secret(key);
	if (rc < 0) {
		seterr(err, errlen, "%s: cannot write: %s", key_path, zt_strerror(rc));
		return rc;
	}
	rc = zt_file_write_atomic(cert_path, ca->root_pem, strlen(ca->root_pem), 0644);
	if (rc < 0)
		seterr(err, errlen, "%s: cannot write: %s", cert_path, zt_strerror(rc));
	return rc;
}

/* Never asks for a pass phrase: an encrypted key is simply unreadable here. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int root_load(struct zt_ca *ca, const char *cert_path, const char *cert_pem, size_t cert_len,
                     const char *key_path, const char *key_pem, size_t key_len, char *err,
                     size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(cert_pem, (int)cert_len);

	if (!bio)
		abort();
	ca->cert = PEM_read_bio_X509(bio, NULL, no_password, NULL);
	BIO_free(bio);
	if (!ca->cert) {
		ERR_clear_error();
		seterr(err, errlen, "%s: no PEM certificate in the file", cert_path);
		return ZT_E_PARSE;
	}
	bio = BIO_new_mem_buf(key_pem, (int)key_len);
	if (!bio)
		abort();
	ca->key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
	BIO_free(bio);
	if (!ca->key) {
		ERR_clear_error();
		seterr(err, errlen, "%s: no unencrypted PEM private key in the file", key_path);
		return ZT_E_PARSE;
	}
	if (!(X509_get_extension_flags(ca->cert) & EXFLAG_CA)) {
		seterr(err, errlen, "%s: not a CA certificate (no basicConstraints CA:TRUE)",
		       cert_path);
		return ZT_E_PARSE;
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		ERR_clear_error();
		seterr(err, errlen, "%s does not match the certificate in %s", key_path, cert_path);
		return ZT_E_PARSE;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(ca->cert)) <= 0) {
		seterr(err, errlen, "%s: the root certificate has expired", cert_path);
		return ZT_E_RANGE;
	}
	return 0;
}

/* Reads one of the root files; -ENOENT is returned silently for the caller to judge. */
static int read_root_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	int rc = zt_file_read(path, ZT_CA_MAX_FILE, buf, len);

	if (rc == ZT_E_TOOBIG)
		seterr(err, errlen, "%s: larger than %u bytes", path, ZT_CA_MAX_FILE);
	else if (rc < 0 && rc != -ENOENT)
		seterr(err, errlen, "%s: cannot read: %s", path, zt_strerror(rc));
	return rc;
}

int zt_ca_open(struct zt_ca **out, const char *dir, bool create, char *err, size_t errlen)
{
	struct zt_ca *ca = calloc(1, sizeof(*ca));
	char *cert_path = NULL, *key_path = NULL, *cert_buf = NULL, *key_buf = NULL;
	size_t cert_len = 0, key_len = 0;
	struct tm tm;
	int rc, rc_cert, rc_key;

	*out = NULL;
	if (!ca)
		abort();
	cert_path = xasprintf("%s/%s", dir, ZT_CA_ROOT_CERT);
	key_path = xasprintf("%s/%s", dir, ZT_CA_ROOT_KEY);
	rc_cert = read_root_file(cert_path, &cert_buf, &cert_len, err, errlen);
	if (rc_cert < 0 && rc_cert != -ENOENT) {
		rc = rc_cert;
		goto out;
	}
	rc_key = read_root_file(key_path, &key_buf, &key_len, err, errlen);
	if (rc_key < 0 && rc_key != -ENOENT) {
		rc = rc_key;
		goto out;
	}
	if (rc_cert == 0 && rc_key == 0) {
		rc = root_load(ca, cert_path, cert_buf, cert_len, key_path, key_buf, key_len, err,
		               errlen);
	} else if (rc_cert == 0 || rc_key == 0) {
		seterr(err, errlen, "%s is missing but %s exists", rc_cert ? cert_path : key_path,
		       rc_cert ? key_path : cert_path);
		rc = ZT_E_PARSE;
	} else if (!create) {
		seterr(err, errlen, "%s: no CA root (and creating one was not asked for)",
		       cert_path);
		rc = ZT_E_NOTFOUND;
	} else {
		rc = zt_file_mkdir(dir, 0700);
		if (rc < 0)
			seterr(err, errlen, "%s: cannot create directory: %s", dir,
			       zt_strerror(rc));
		if (rc == 0)
			rc = root_generate(ca, err, errlen);
		if (rc == 0) {
			ca->root_pem = cert_to_pem(ca->cert);
			if (!ca->root_pem)
				rc = ossl_fail(err, errlen, "encoding root certificate");
		}
		if (rc == 0)
			rc = root_save(ca, cert_path, key_path, err, errlen);
	}
	if (rc < 0)
		goto out;
	/* Re-encoded rather than copied, so junk around the PEM in the file is not served. */
	if (!ca->root_pem)
		ca->root_pem = cert_to_pem(ca->cert);
	if (!ca->root_pem || !ASN1_TIME_to_tm(X509_get0_notAfter(ca->cert), &tm)) {
		rc = ossl_fail(err, errlen, cert_path);
		goto out;
	}
	ca->not_after = timegm(&tm);
	*out = ca;
	ca = NULL;
out:
	zt_ca_free(ca);
	if (key_buf)
		OPENSSL_cleanse(key_buf, key_len);
	free(key_buf);
	free(cert_buf);
	free(key_path);
	free(cert_path);
	return rc;
}

void zt_ca_free(struct zt_ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->root_pem);
	free(ca);
}

const char *zt_ca_root_pem(const struct zt_ca *ca)
{
	return ca->root_pem;
}

/* ---- CSR signing ------------------------------------------------------------------------- */

/* EC on P-256/P-384 or RSA of 2048..8192 bits; checked before the signature so an absurd key
 * costs nothing to refuse. */
static int csr_key_check(X509_REQ *req, char *err, size_t errlen)
{
	EVP_PKEY *key = X509_REQ_get0_pubkey(req);
	char group[64] = "";
	int bits, nid;

	if (!key) {
		ERR_clear_error();
		seterr(err, errlen, "CSR public key is unreadable");
		return ZT_E_PROTO;
	}
	bits = EVP_PKEY_get_bits(key);
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1)
			break;
		nid = OBJ_sn2nid(group);
		if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1)
			return 0;
		break;
	case EVP_PKEY_RSA:
		if (bits >= 2048 && bits <= 8192)
			return 0;
		break;
	default:
		break;
	}
	ERR_clear_error();
	seterr(err, errlen, "CSR key (%s%s%s, %d bits) is not EC P-256/P-384 or RSA 2048..8192",
	       OBJ_nid2sn(EVP_PKEY_get_base_id(key)), group[0] ? " " : "", group, bits);
	return ZT_E_PROTO;
}

/* Checks the URI SANs and leaves the identity in *id. */
static int csr_identity(X509_REQ *req, const char *trust_domain, const char *required_id,
                        struct zt_spiffe *id, char *err, size_t errlen)
{
	struct zt_spiffe_sans sans = {0};
	char shown[160], uri[ZT_SPIFFE_STR_SIZE];
	int rc = zt_csr_uri_sans(req, &sans);

	if (rc == ZT_E_TOOBIG) {
		seterr(err, errlen, "CSR has more than %d URI SANs", ZT_SPIFFE_MAX_SANS);
		rc = ZT_E_IDENTITY;
	} else if (rc < 0) {
		seterr(err, errlen, "CSR subjectAltName extension is malformed");
		rc = ZT_E_IDENTITY;
	} else if (sans.n != 1) {
		seterr(err, errlen, "CSR has %zu URI SANs, exactly one SPIFFE ID is required",
		       sans.n);
		rc = ZT_E_IDENTITY;
	} else if (zt_spiffe_parse(id, sans.v[0].uri, sans.v[0].len) < 0) {
		printable(shown, sizeof(shown), sans.v[0].uri, sans.v[0].len);
		seterr(err, errlen, "CSR URI SAN \"%s\" is not a SPIFFE workload ID", shown);
		rc = ZT_E_IDENTITY;
	} else {
		zt_spiffe_format(id, uri, sizeof(uri));
		if (strcmp(id->td, trust_domain) != 0) {
			seterr(err, errlen, "CSR identity %s is not in trust domain %s", uri,
			       trust_domain);
			rc = ZT_E_IDENTITY;
		} else if (required_id && strcmp(uri, required_id) != 0) {
			printable(shown, sizeof(shown), required_id, strlen(required_id));
			seterr(err, errlen, "CSR identity %s is not the identity allowed here (%s)",
			       uri, shown);
			rc = ZT_E_IDENTITY;
		}
	}
	zt_spiffe_sans_clear(&sans);
	return rc;
}

int zt_ca_sign_csr(struct zt_ca *ca, const char *csr_pem, size_t len, const char *trust_domain,
                   const char *required_id, int64_t ttl_s, char ***chain, size_t *nchain,
                   struct zt_spiffe *id_out, char *err, size_t errlen)
{
	char uri[ZT_SPIFFE_STR_SIZE];
	X509_REQ *req = NULL;
	GENERAL_NAMES *names = NULL;
	struct zt_spiffe id;
	X509 *leaf = NULL;
	char **out = NULL;
	int rc;

	*chain = NULL;
	*nchain = 0;
	rc = ttl_check(ttl_s, err, errlen);
	if (rc < 0)
		goto out;
	rc = zt_csr_parse(&req, csr_pem, len);
	if (rc == ZT_E_TOOBIG) {
		seterr(err, errlen, "CSR is %zu bytes, over the limit of %u", len, ZT_CSR_MAX_PEM);
		goto out;
	}
	if (rc < 0) {
		seterr(err, errlen, "CSR is not a PEM certificate request");
		goto out;
	}
	rc = csr_key_check(req, err, errlen);
	if (rc < 0)
		goto out;
	rc = zt_csr_verify(req);
	if (rc < 0) {
		seterr(err, errlen, "CSR signature does not verify");
		goto out;
	}
	rc = csr_identity(req, trust_domain, required_id, &id, err, errlen);
	if (rc < 0)
		goto out;
	zt_spiffe_format(&id, uri, sizeof(uri));
	names = GENERAL_NAMES_new();
	if (!names || !push_ia5(names, GEN_URI, uri)) {
		rc = ossl_fail(err, errlen, "building SAN");
		goto out;
	}
	leaf = issue_leaf(ca, X509_REQ_get0_pubkey(req), ttl_s, names, err, errlen);
	if (!leaf) {
		rc = ZT_E_TLS;
		goto out;
	}
	out = xcalloc(2, sizeof(*out));
	out[0] = cert_to_pem(leaf);
	out[1] = strdup(ca->root_pem);
	if (!out[0] || !out[1]) {
		zt_ca_chain_free(out, 2);
		rc = ossl_fail(err, errlen, "encoding certificate");
		goto out;
	}
	*chain = out;
	*nchain = 2;
	if (id_out)
		*id_out = id;
out:
	X509_free(leaf);
	GENERAL_NAMES_free(names);
	X509_REQ_free(req);
	return rc;
}

void zt_ca_chain_free(char **chain, size_t n)
{
	if (!chain)
		return;
	for (size_t i = 0; i < n; i++)
		free(chain[i]);
	free(chain);
}

/* ---- plain issuance ---------------------------------------------------------------------- */

/* A host name: dot-separated labels of [A-Za-z0-9-], optionally "*." in front. */
static bool dns_name_ok(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n >= 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		n -= 2;
	}
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '-') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

/* Printable ASCII without spaces, with a scheme separator. */
static bool uri_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ZT_SPIFFE_MAX_LEN || !strchr(s, ':'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static int issue_names(GENERAL_NAMES *names, const char *const *dns, size_t ndns,
                       const char *const *ips, size_t nips, const char *uri, char *err,
                       size_t errlen)
{
	char shown[160];

	for (size_t i = 0; i < ndns; i++) {
		if (!dns_name_ok(dns[i])) {
			printable(shown, sizeof(shown), dns[i], strlen(dns[i]));
			seterr(err, errlen, "DNS SAN \"%s\" is not a host name", shown);
			return ZT_E_PARSE;
		}
		if (!push_ia5(names, GEN_DNS, dns[i]))
			return ossl_fail(err, errlen, "building SAN");
	}
	for (size_t i = 0; i < nips; i++) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(ips[i]);
		GENERAL_NAME *gn;

		if (!ip) {
			ERR_clear_error();
			printable(shown, sizeof(shown), ips[i], strlen(ips[i]));
			seterr(err, errlen, "IP SAN \"%s\" is not an IP address", shown);
			return ZT_E_PARSE;
		}
		gn = GENERAL_NAME_new();
		if (!gn) {
			ASN1_OCTET_STRING_free(ip);
			return ossl_fail(err, errlen, "building SAN");
		}
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
		if (!sk_GENERAL_NAME_push(names, gn)) {
			GENERAL_NAME_free(gn);
			return ossl_fail(err, errlen, "building SAN");
		}
	}
	if (uri) {
		if (!uri_ok(uri)) {
			printable(shown, sizeof(shown), uri, strlen(uri));
			seterr(err, errlen, "URI SAN \"%s\" is not a URI", shown);
			return ZT_E_PARSE;
		}
		if (!push_ia5(names, GEN_URI, uri))
			return ossl_fail(err, errlen, "building SAN");
	}
	return 0;
}

int zt_ca_issue(struct zt_ca *ca, const char *const *dns, size_t ndns, const char *const *ips,
                size_t nips, const char *uri, int64_t ttl_s, char **cert_pem, char **key_pem,
                char *err, size_t errlen)
{
	GENERAL_NAMES *names = NULL;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	size_t key_len;
	int rc;

	*cert_pem = NULL;
	*key_pem = NULL;
	rc = ttl_check(ttl_s, err, errlen);
	if (rc < 0)
		return rc;
	if (ndns + nips + (uri != NULL) == 0 || ndns > ZT_CA_MAX_SANS ||
	    nips > ZT_CA_MAX_SANS - ndns) {
		seterr(err, errlen, "a certificate needs 1..%d SANs", ZT_CA_MAX_SANS);
		return ZT_E_RANGE;
	}
	names = GENERAL_NAMES_new();
	if (!names)
		abort();
	rc = issue_names(names, dns, ndns, ips, nips, uri, err, errlen);
	if (rc < 0)
		goto out;
	key = EVP_EC_gen("P-256");
	if (!key) {
		rc = ossl_fail(err, errlen, "generating key");
		goto out;
	}
	x = issue_leaf(ca, key, ttl_s, names, err, errlen);
	if (!x) {
		rc = ZT_E_TLS;
		goto out;
	}
	*cert_pem = cert_to_pem(x);
	*key_pem = key_to_pem(key, &key_len);
	if (!*cert_pem || !*key_pem) {
		free(*cert_pem);
		free_secret(*key_pem);
		*cert_pem = *key_pem = NULL;
		rc = ossl_fail(err, errlen, "encoding certificate");
	}
out:
	X509_free(x);
	EVP_PKEY_free(key);
	GENERAL_NAMES_free(names);
	return rc;
}
