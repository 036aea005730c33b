/* The certificate authority (protocol/ca.h): root creation and reuse on disk, refusal of
 * broken root files, CSR signing with istiod's certificate layout (checked with plain
 * OpenSSL, independent of the code under test) and refusal of every kind of bad CSR. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "protocol/ca.h"
#include "protocol/csr.h"
#include "protocol/tls.h"
#include "runtime/err.h"
#include "runtime/file.h"

#define TD     "cluster.local"
#define ID_URI "spiffe://cluster.local/ns/demo/sa/sleep"

static char tmpdir[64];
static char path_buf[256];

static const char *path(const char *name)
{
	snprintf(path_buf, sizeof(path_buf), "%s/%s", tmpdir, name);
	return path_buf;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zt-ca-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct zt_ca *open_ok(const char *dir, bool create)
{
	struct zt_ca *ca = NULL;
	char err[512] = "";
	int rc = zt_ca_open(&ca, dir, create, err, sizeof(err));

	ck_assert_msg(rc == 0, "zt_ca_open(%s): %d %s", dir, rc, err);
	ck_assert_ptr_nonnull(ca);
	return ca;
}

static void write_file(const char *p, const char *data, size_t len)
{
	ck_assert_int_eq(zt_file_write_atomic(p, data, len, 0600), 0);
}

static char *read_file(const char *p)
{
	char *buf;
	size_t len;

	ck_assert_int_eq(zt_file_read(p, 1 << 20, &buf, &len), 0);
	return buf;
}

static X509 *pem_cert(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	ck_assert_ptr_nonnull(x);
	return x;
}

/* ---- root on disk ------------------------------------------------------------------------ */

START_TEST(ca_create_then_reopen_reuses_the_same_root)
{
	struct zt_ca *a, *b;
	struct stat st;
	char *dir = strdup(path("ca")); /* does not exist yet */

	a = open_ok(dir, true);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	b = open_ok(dir, false);
	ck_assert_str_eq(zt_ca_root_pem(a), zt_ca_root_pem(b));
	/* A third open with create=true does not replace it either. */
	zt_ca_free(b);
	b = open_ok(dir, true);
	ck_assert_str_eq(zt_ca_root_pem(a), zt_ca_root_pem(b));
	zt_ca_free(a);
	zt_ca_free(b);
	free(dir);
}
END_TEST

START_TEST(ca_root_files_have_private_key_mode_and_no_temp_leftovers)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	struct stat st;
	char *cert = read_file(path(ZT_CA_ROOT_CERT));

	ck_assert_int_eq(stat(path(ZT_CA_ROOT_KEY), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(stat(path(ZT_CA_ROOT_CERT), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0077, 0044);
	ck_assert_str_eq(cert, zt_ca_root_pem(ca));
	/* Exactly the two files: the temporaries were renamed away. */
	{
		int n = 0;
		FILE *p;
		char cmd[128], line[256];

		snprintf(cmd, sizeof(cmd), "ls -A %s", tmpdir);
		p = popen(cmd, "r");
		while (fgets(line, sizeof(line), p))
			n++;
		pclose(p);
		ck_assert_int_eq(n, 2);
	}
	free(cert);
	zt_ca_free(ca);
}
END_TEST

START_TEST(ca_generated_root_is_a_p256_ca_for_ten_years)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	X509 *x = pem_cert(zt_ca_root_pem(ca));
	EVP_PKEY *pub = X509_get0_pubkey(x);
	char group[32];
	int days, secs, crit = -1;
	BASIC_CONSTRAINTS *bc;

	ck_assert_int_eq(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
	ck_assert_int_eq(EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL), 1);
	ck_assert_str_eq(group, "prime256v1");
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	ck_assert_ptr_nonnull(bc);
	ck_assert(bc->ca);
	ck_assert_int_eq(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_uint_eq(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ck_assert_int_eq(X509_get_ext_by_NID(x, NID_key_usage, -1) >= 0, 1);
	ck_assert_int_eq(X509_EXTENSION_get_critical(
	                         X509_get_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1))),
	                 1);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
	ck_assert_int_eq(
	        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
	ck_assert_int_ge(days, 3650);
	ck_assert_int_le(days, 3651);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	ck_assert_int_eq(X509_verify(x, pub), 1);
	X509_free(x);
	zt_ca_free(ca);
}
END_TEST

START_TEST(ca_open_without_root_and_without_create_is_not_found)
{
	struct zt_ca *ca = (struct zt_ca *)1;
	char err[512] = "";

	ck_assert_int_eq(zt_ca_open(&ca, tmpdir, false, err, sizeof(err)), ZT_E_NOTFOUND);
	ck_assert_ptr_null(ca);
	ck_assert_ptr_nonnull(strstr(err, ZT_CA_ROOT_CERT));
	ck_assert_int_eq(access(path(ZT_CA_ROOT_KEY), F_OK), -1);
}
END_TEST

static void expect_open_error(int want_rc, const char *want_text)
{
	struct zt_ca *ca = NULL;
	char err[512] = "";
	int rc = zt_ca_open(&ca, tmpdir, true, err, sizeof(err));

	ck_assert_msg(rc == want_rc, "rc %d (%s), want %d", rc, err, want_rc);
	ck_assert_ptr_null(ca);
	ck_assert_msg(strstr(err, want_text) != NULL, "error \"%s\" lacks \"%s\"", err, want_text);
}

START_TEST(ca_open_refuses_a_key_of_another_root)
{
	char *other = strdup(path("other"));
	char key_path[300];
	char *key;

	zt_ca_free(open_ok(tmpdir, true));
	zt_ca_free(open_ok(other, true));
	snprintf(key_path, sizeof(key_path), "%s/%s", other, ZT_CA_ROOT_KEY);
	key = read_file(key_path);
	write_file(path(ZT_CA_ROOT_KEY), key, strlen(key));
	expect_open_error(ZT_E_PARSE, "does not match");
	free(key);
	free(other);
}
END_TEST

START_TEST(ca_open_refuses_garbage_certificate_naming_the_file)
{
	zt_ca_free(open_ok(tmpdir, true));
	write_file(path(ZT_CA_ROOT_CERT), "hello\n", 6);
	expect_open_error(ZT_E_PARSE, "/" ZT_CA_ROOT_CERT ": no PEM certificate");
}
END_TEST

START_TEST(ca_open_refuses_garbage_key_naming_the_file)
{
	static const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

	zt_ca_free(open_ok(tmpdir, true));
	write_file(path(ZT_CA_ROOT_KEY), junk, sizeof(junk) - 1);
	expect_open_error(ZT_E_PARSE, "/" ZT_CA_ROOT_KEY ": no unencrypted PEM private key");
}
END_TEST

START_TEST(ca_open_refuses_encrypted_key_without_prompting)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	EVP_PKEY *key = EVP_EC_gen("P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	zt_ca_free(ca);
	ck_assert_int_eq(
	        PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_128_cbc(), "pw", 2, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	write_file(path(ZT_CA_ROOT_KEY), data, (size_t)n);
	expect_open_error(ZT_E_PARSE, "no unencrypted PEM private key");
	BIO_free(bio);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(ca_open_reports_a_missing_half_and_keeps_the_other)
{
	char *key_before;
	char *key_after;

	zt_ca_free(open_ok(tmpdir, true));
	key_before = read_file(path(ZT_CA_ROOT_KEY));
	ck_assert_int_eq(unlink(path(ZT_CA_ROOT_CERT)), 0);
	expect_open_error(ZT_E_PARSE, ZT_CA_ROOT_CERT " is missing but");
	key_after = read_file(path(ZT_CA_ROOT_KEY));
	ck_assert_str_eq(key_before, key_after);
	ck_assert_int_eq(access(path(ZT_CA_ROOT_CERT), F_OK), -1);
	free(key_before);
	free(key_after);
}
END_TEST

START_TEST(ca_open_refuses_a_leaf_certificate_as_root)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	const char *dns[] = {"leaf.example"};
	char *cert, *key, err[256];

	ck_assert_int_eq(
	        zt_ca_issue(ca, dns, 1, NULL, 0, NULL, 3600, &cert, &key, err, sizeof(err)), 0);
	zt_ca_free(ca);
	write_file(path(ZT_CA_ROOT_CERT), cert, strlen(cert));
	write_file(path(ZT_CA_ROOT_KEY), key, strlen(key));
	expect_open_error(ZT_E_PARSE, "not a CA certificate");
	free(cert);
	free(key);
}
END_TEST

START_TEST(ca_open_refuses_an_oversize_file)
{
	size_t n = ZT_CA_MAX_FILE + 1;
	char *big = malloc(n);

	zt_ca_free(open_ok(tmpdir, true));
	memset(big, 'A', n);
	write_file(path(ZT_CA_ROOT_CERT), big, n);
	expect_open_error(ZT_E_TOOBIG, "larger than");
	free(big);
}
END_TEST

START_TEST(ca_open_refuses_a_directory_path_that_is_a_file)
{
	struct zt_ca *ca = NULL;
	char err[512] = "";
	char *f = strdup(path("plain"));

	write_file(f, "x", 1);
	ck_assert_int_lt(zt_ca_open(&ca, f, true, err, sizeof(err)), 0);
	ck_assert_ptr_null(ca);
	ck_assert_ptr_nonnull(strstr(err, f));
	free(f);
}
END_TEST

/* ---- signing ----------------------------------------------------------------------------- */

static void make_csr(struct zt_csr *csr, const char *uri)
{
	struct zt_spiffe id;

	ck_assert_int_eq(zt_spiffe_parse(&id, uri, strlen(uri)), 0);
	ck_assert_int_eq(zt_csr_generate(csr, &id), 0);
}

/* A CSR built directly with OpenSSL: SANs in config syntax (NULL: none), signed by key. */
static char *custom_csr(EVP_PKEY *key, const char *sans)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	if (sans) {
		X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name, sans);

		ck_assert_ptr_nonnull(ext);
		sk_X509_EXTENSION_push(exts, ext);
		ck_assert_int_eq(X509_REQ_add_extensions(req, exts), 1);
	}
	ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
	ck_assert_int_gt(
	        X509_REQ_sign(req, key,
	                      EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()),
	        0);
	ck_assert_int_eq(PEM_write_bio_X509_REQ(bio, req), 1);
	n = BIO_get_mem_data(bio, &data);
	s = strndup(data, (size_t)n);
	BIO_free(bio);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return s;
}

static char *custom_csr_p256(const char *sans)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	char *s = custom_csr(key, sans);

	EVP_PKEY_free(key);
	return s;
}

static int sign(struct zt_ca *ca, const char *pem, const char *required, char ***chain, size_t *n,
                char *err, size_t errlen)
{
	return zt_ca_sign_csr(ca, pem, strlen(pem), TD, required, 3600, chain, n, NULL, err,
	                      errlen);
}

static void expect_sign_error(const char *pem, const char *required, int want_rc,
                              const char *want_text)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	char **chain = (char **)1, err[512] = "";
	size_t n = 99;
	int rc = sign(ca, pem, required, &chain, &n, err, sizeof(err));

	ck_assert_msg(rc == want_rc, "rc %d (%s), want %d", rc, err, want_rc);
	ck_assert_ptr_null(chain);
	ck_assert_uint_eq(n, 0);
	ck_assert_msg(strstr(err, want_text) != NULL, "error \"%s\" lacks \"%s\"", err, want_text);
	zt_ca_free(ca);
}

static bool verifies(X509 *leaf, X509 *root, int purpose)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok;

	X509_STORE_add_cert(store, root);
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

START_TEST(ca_signed_leaf_chains_to_root_with_istio_layout)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	struct zt_csr csr;
	struct zt_spiffe id;
	char **chain = NULL, err[512] = "";
	size_t n = 0;
	X509 *leaf, *root;
	GENERAL_NAMES *names;
	const GENERAL_NAME *gn;
	int crit = -1, days, secs;
	BASIC_CONSTRAINTS *bc;

	make_csr(&csr, ID_URI);
	ck_assert_int_eq(zt_ca_sign_csr(ca, csr.csr_pem, csr.csr_len, TD, NULL, 7200, &chain, &n,
	                                &id, err, sizeof(err)),
	                 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(chain[1], zt_ca_root_pem(ca));
	ck_assert_int_eq(chain[0][strlen(chain[0]) - 1], '\n');
	ck_assert_int_eq(chain[1][strlen(chain[1]) - 1], '\n');
	ck_assert_str_eq(id.ns, "demo");
	ck_assert_str_eq(id.sa, "sleep");
	leaf = pem_cert(chain[0]);
	root = pem_cert(chain[1]);
	ck_assert(verifies(leaf, root, X509_PURPOSE_SSL_SERVER));
	ck_assert(verifies(leaf, root, X509_PURPOSE_SSL_CLIENT));
	/* The leaf's key is the CSR's. */
	ck_assert_int_eq(X509_check_private_key(leaf, csr.key), 1);
	/* One critical URI SAN, the identity; empty subject. */
	names = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	ck_assert_ptr_nonnull(names);
	ck_assert_int_eq(crit, 1);
	ck_assert_int_eq(sk_GENERAL_NAME_num(names), 1);
	gn = sk_GENERAL_NAME_value(names, 0);
	ck_assert_int_eq(gn->type, GEN_URI);
	ck_assert_str_eq((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
	                 ID_URI);
	GENERAL_NAMES_free(names);
	ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
	/* Usages and constraints. */
	ck_assert_uint_eq(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	ck_assert_uint_eq(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(X509_EXTENSION_get_critical(
	                         X509_get_ext(leaf, X509_get_ext_by_NID(leaf, NID_key_usage, -1))),
	                 1);
	bc = X509_get_ext_d2i(leaf, NID_basic_constraints, &crit, NULL);
	ck_assert_ptr_nonnull(bc);
	ck_assert(!bc->ca);
	ck_assert_int_eq(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
	                                       X509_get0_subject_key_id(root)),
	                 0);
	/* Lifetime: ttl plus the clock-skew backdating. */
	ck_assert_int_eq(
	        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf)),
	        1);
	ck_assert_int_eq(days * 86400 + secs, 7200 + ZT_CA_SKEW_S);
	ck_assert_int_le(X509_cmp_current_time(X509_get0_notBefore(leaf)), 0);
	X509_free(leaf);
	X509_free(root);
	zt_ca_chain_free(chain, n);
	zt_csr_clear(&csr);
	zt_ca_free(ca);
}
END_TEST

START_TEST(ca_signed_leaf_builds_a_tls_identity)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	struct zt_tls_identity *tid = NULL;
	struct zt_csr csr;
	char **chain = NULL, err[512] = "";
	size_t n = 0;

	make_csr(&csr, ID_URI);
	ck_assert_int_eq(sign(ca, csr.csr_pem, ID_URI, &chain, &n, err, sizeof(err)), 0);
	char *key_pem;
	size_t key_len;
	ck_assert_int_eq(zt_csr_key_pem(&csr, &key_pem, &key_len), 0);
	ck_assert_int_eq(zt_tls_identity_new(&tid, chain[0], strlen(chain[0]), key_pem, key_len,
	                                     chain[n - 1], strlen(chain[n - 1])),
	                 0);
	zt_csr_key_pem_free(key_pem, key_len);
	ck_assert_str_eq(zt_tls_identity_spiffe(tid)->sa, "sleep");
	zt_tls_identity_unref(tid);
	zt_ca_chain_free(chain, n);
	zt_csr_clear(&csr);
	zt_ca_free(ca);
}
END_TEST

/* The key object path, and the parsed roots kept between identities: other roots bytes are
 * parsed again (a leaf of one CA never verifies against a cached root of another). */
START_TEST(ca_signed_leaf_builds_an_identity_from_the_key_object_and_fresh_roots)
{
	struct zt_ca *ca = open_ok(tmpdir, true), *other;
	struct zt_tls_identity *tid = NULL;
	struct zt_csr csr, csr2;
	char **chain = NULL, **chain2 = NULL, err[512] = "", dir2[256];
	size_t n = 0, n2 = 0;

	snprintf(dir2, sizeof(dir2), "%s/other", tmpdir);
	ck_assert_int_eq(mkdir(dir2, 0700), 0);
	other = open_ok(dir2, true);
	make_csr(&csr, ID_URI);
	make_csr(&csr2, ID_URI);
	ck_assert_int_eq(sign(ca, csr.csr_pem, ID_URI, &chain, &n, err, sizeof(err)), 0);
	ck_assert_int_eq(sign(other, csr2.csr_pem, ID_URI, &chain2, &n2, err, sizeof(err)), 0);
	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(zt_tls_identity_new_pkey(&tid, chain[0], strlen(chain[0]), csr.key,
		                                          chain[n - 1], strlen(chain[n - 1])),
		                 0);
		ck_assert_str_eq(zt_tls_identity_spiffe(tid)->sa, "sleep");
		zt_tls_identity_unref(tid);
		/* Another key than the certificate's. */
		ck_assert_int_eq(zt_tls_identity_new_pkey(&tid, chain[0], strlen(chain[0]), csr2.key,
		                                          chain[n - 1], strlen(chain[n - 1])),
		                 ZT_E_IDENTITY);
		ck_assert_ptr_null(tid);
		/* This CA's leaf with the other CA's roots, and the other way round. */
		ck_assert_int_eq(zt_tls_identity_new_pkey(&tid, chain[0], strlen(chain[0]), csr.key,
		                                          chain2[n2 - 1], strlen(chain2[n2 - 1])),
		                 ZT_E_IDENTITY);
		ck_assert_int_eq(zt_tls_identity_new_pkey(&tid, chain2[0], strlen(chain2[0]),
		                                          csr2.key, chain[n - 1],
		                                          strlen(chain[n - 1])),
		                 ZT_E_IDENTITY);
		ck_assert_int_eq(zt_tls_identity_new_pkey(&tid, chain2[0], strlen(chain2[0]),
		                                          csr2.key, chain2[n2 - 1],
		                                          strlen(chain2[n2 - 1])),
		                 0);
		zt_tls_identity_unref(tid);
	}
	zt_ca_chain_free(chain, n);
	zt_ca_chain_free(chain2, n2);
	zt_csr_clear(&csr);
	zt_csr_clear(&csr2);
	zt_ca_free(other);
	zt_ca_free(ca);
}
END_TEST

START_TEST(ca_short_lived_leaf_is_backdated_a_tenth_of_its_ttl)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	struct zt_csr csr;
	struct zt_spiffe id;
	char **chain = NULL, err[512] = "";
	size_t n = 0;
	int days, secs;

	make_csr(&csr, ID_URI);
	ck_assert_int_eq(zt_ca_sign_csr(ca, csr.csr_pem, csr.csr_len, "cluster.local", NULL, 20,
	                                &chain, &n, &id, err, sizeof(err)),
	                 0);
	BIO *bio = BIO_new_mem_buf(chain[0], -1);
	X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	ck_assert_int_eq(
	        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf)),
	        1);
	/* 20 s + 2 s backdating: the half-life (refresh time) lies 9 s ahead, not behind. */
	ck_assert_int_eq(days * 86400 + secs, 22);
	X509_free(leaf);
	BIO_free(bio);
	zt_ca_chain_free(chain, n);
	zt_csr_clear(&csr);
	zt_ca_free(ca);
}
END_TEST

START_TEST(ca_serials_are_random_and_positive_128_bit)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	struct zt_csr csr;
	ASN1_INTEGER *prev = NULL;

	make_csr(&csr, ID_URI);
	for (int i = 0; i < 4; i++) {
		char **chain = NULL, err[256];
		size_t n;
		X509 *x;
		const ASN1_INTEGER *serial;
		BIGNUM *bn;

		ck_assert_int_eq(sign(ca, csr.csr_pem, NULL, &chain, &n, err, sizeof(err)), 0);
		x = pem_cert(chain[0]);
		serial = X509_get0_serialNumber(x);
		bn = ASN1_INTEGER_to_BN(serial, NULL);
		ck_assert(!BN_is_negative(bn));
		ck_assert_int_gt(BN_num_bits(bn), 64);
		ck_assert_int_le(BN_num_bits(bn), 128);
		if (prev)
			ck_assert_int_ne(ASN1_INTEGER_cmp(prev, serial), 0);
		ASN1_INTEGER_free(prev);
		prev = ASN1_INTEGER_dup(serial);
		BN_free(bn);
		X509_free(x);
		zt_ca_chain_free(chain, n);
	}
	ASN1_INTEGER_free(prev);
	zt_csr_clear(&csr);
	zt_ca_free(ca);
}
END_TEST

START_TEST(ca_sign_refuses_ttl_out_of_range)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	struct zt_csr csr;
	char **chain, err[256] = "";
	size_t n;

	make_csr(&csr, ID_URI);
	ck_assert_int_eq(zt_ca_sign_csr(ca, csr.csr_pem, csr.csr_len, TD, NULL, 0, &chain, &n, NULL,
	                                err, sizeof(err)),
	                 ZT_E_RANGE);
	ck_assert_int_eq(zt_ca_sign_csr(ca, csr.csr_pem, csr.csr_len, TD, NULL, ZT_CA_MAX_TTL_S + 1,
	                                &chain, &n, NULL, err, sizeof(err)),
	                 ZT_E_RANGE);
	ck_assert_ptr_nonnull(strstr(err, "lifetime"));
	zt_csr_clear(&csr);
	zt_ca_free(ca);
}
END_TEST

/* Re-encodes a CSR after changing the first occurrence of from (in its DER) to to. */
static char *tamper_der(const char *pem, const char *from, const char *to)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	unsigned char *der = NULL, *hit = NULL;
	const unsigned char *p;
	int len;
	char *out, *data;
	long n;

	BIO_free(bio);
	len = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	ck_assert_int_gt(len, 0);
	for (int i = 0; i + (int)strlen(from) <= len && !hit; i++)
		if (memcmp(der + i, from, strlen(from)) == 0)
			hit = der + i;
	ck_assert_ptr_nonnull(hit);
	memcpy(hit, to, strlen(to));
	p = der;
	req = d2i_X509_REQ(NULL, &p, len);
	ck_assert_ptr_nonnull(req);
	bio = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_X509_REQ(bio, req), 1);
	n = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)n);
	BIO_free(bio);
	X509_REQ_free(req);
	OPENSSL_free(der);
	return out;
}

START_TEST(ca_sign_refuses_a_tampered_csr)
{
	struct zt_csr csr;
	char *bad;

	make_csr(&csr, ID_URI);
	/* Same length, another service account: only the signature gives it away. */
	bad = tamper_der(csr.csr_pem, "sa/sleep", "sa/admin");
	expect_sign_error(bad, NULL, ZT_E_PROTO, "signature does not verify");
	free(bad);
	zt_csr_clear(&csr);
}
END_TEST

START_TEST(ca_sign_refuses_two_uri_sans)
{
	char *pem = custom_csr_p256("critical,URI:" ID_URI ",URI:spiffe://cluster.local/ns/a/sa/b");

	expect_sign_error(pem, NULL, ZT_E_IDENTITY, "has 2 URI SANs");
	free(pem);
}
END_TEST

START_TEST(ca_sign_refuses_no_san)
{
	char *pem = custom_csr_p256(NULL);

	expect_sign_error(pem, NULL, ZT_E_IDENTITY, "has 0 URI SANs");
	free(pem);
}
END_TEST

START_TEST(ca_sign_refuses_dns_only_san)
{
	char *pem = custom_csr_p256("DNS:sleep.demo.svc");

	expect_sign_error(pem, NULL, ZT_E_IDENTITY, "has 0 URI SANs");
	free(pem);
}
END_TEST

START_TEST(ca_sign_refuses_non_spiffe_uri_and_names_it)
{
	char *pem = custom_csr_p256("URI:https://cluster.local/ns/demo/sa/sleep");

	expect_sign_error(pem, NULL, ZT_E_IDENTITY,
	                  "\"https://cluster.local/ns/demo/sa/sleep\" is not a SPIFFE");
	free(pem);
}
END_TEST

START_TEST(ca_sign_shows_control_bytes_in_a_san_as_question_marks)
{
	char *pem = custom_csr_p256("URI:spiffe://cluster.local/ns/demo/sa/sl\x01\x7f"
	                            "ep");

	expect_sign_error(pem, NULL, ZT_E_IDENTITY, "sa/sl??ep\" is not a SPIFFE");
	free(pem);
}
END_TEST

START_TEST(ca_sign_refuses_another_trust_domain)
{
	struct zt_csr csr;

	make_csr(&csr, "spiffe://evil.local/ns/demo/sa/sleep");
	expect_sign_error(csr.csr_pem, NULL, ZT_E_IDENTITY, "not in trust domain cluster.local");
	zt_csr_clear(&csr);
}
END_TEST

START_TEST(ca_sign_refuses_identity_other_than_required)
{
	struct zt_csr csr;

	make_csr(&csr, "spiffe://cluster.local/ns/demo/sa/other");
	expect_sign_error(csr.csr_pem, ID_URI, ZT_E_IDENTITY, "not the identity allowed here");
	zt_csr_clear(&csr);
}
END_TEST

START_TEST(ca_sign_refuses_garbage_pem)
{
	expect_sign_error("-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n"
	                  "-----END CERTIFICATE REQUEST-----\n",
	                  NULL, ZT_E_PARSE, "not a PEM certificate request");
	expect_sign_error("", NULL, ZT_E_PARSE, "not a PEM certificate request");
}
END_TEST

START_TEST(ca_sign_refuses_a_certificate_in_place_of_a_csr)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	char *root = strdup(zt_ca_root_pem(ca));

	zt_ca_free(ca);
	expect_sign_error(root, NULL, ZT_E_PARSE, "not a PEM certificate request");
	free(root);
}
END_TEST

START_TEST(ca_sign_refuses_oversize_input_before_parsing)
{
	size_t n = ZT_CSR_MAX_PEM + 1;
	char *big = malloc(n + 1);
	struct zt_csr csr;

	make_csr(&csr, ID_URI);
	/* A valid CSR followed by padding: still refused, by size alone. */
	memset(big, '\n', n);
	memcpy(big, csr.csr_pem, csr.csr_len);
	big[n] = '\0';
	expect_sign_error(big, NULL, ZT_E_TOOBIG, "over the limit");
	free(big);
	zt_csr_clear(&csr);
}
END_TEST

START_TEST(ca_sign_refuses_weak_or_unexpected_keys)
{
	EVP_PKEY *rsa = EVP_RSA_gen(1024);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char *pem;

	ck_assert_ptr_nonnull(rsa);
	ck_assert_ptr_nonnull(ed);
	pem = custom_csr(rsa, "critical,URI:" ID_URI);
	expect_sign_error(pem, NULL, ZT_E_PROTO, "1024 bits");
	free(pem);
	pem = custom_csr(ed, "critical,URI:" ID_URI);
	expect_sign_error(pem, NULL, ZT_E_PROTO, "is not EC P-256/P-384");
	free(pem);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}
END_TEST

START_TEST(ca_sign_accepts_p384_and_rsa_2048)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	EVP_PKEY *keys[] = {EVP_EC_gen("P-384"), EVP_RSA_gen(2048)};

	for (size_t i = 0; i < 2; i++) {
		char *pem = custom_csr(keys[i], "critical,URI:" ID_URI);
		char **chain, err[256] = "";
		size_t n;

		ck_assert_msg(sign(ca, pem, NULL, &chain, &n, err, sizeof(err)) == 0, "%s", err);
		zt_ca_chain_free(chain, n);
		free(pem);
		EVP_PKEY_free(keys[i]);
	}
	zt_ca_free(ca);
}
END_TEST

/* ---- plain issuance ---------------------------------------------------------------------- */

START_TEST(ca_issue_serving_cert_has_dns_ip_and_uri_sans)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	const char *dns[] = {"istiod.istio-system.svc", "*.example.org"};
	const char *ips[] = {"127.0.0.1", "fd00::1"};
	char *cert, *key, err[256] = "";
	X509 *x, *root;

	ck_assert_int_eq(zt_ca_issue(ca, dns, 2, ips, 2, "spiffe://cluster.local/ns/a/sa/b", 3600,
	                             &cert, &key, err, sizeof(err)),
	                 0);
	x = pem_cert(cert);
	root = pem_cert(zt_ca_root_pem(ca));
	ck_assert_int_eq(X509_check_host(x, "istiod.istio-system.svc", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_host(x, "a.example.org", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(x, "fd00::1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(x, "127.0.0.2", 0), 0);
	ck_assert(verifies(x, root, X509_PURPOSE_SSL_SERVER));
	ck_assert(verifies(x, root, X509_PURPOSE_SSL_CLIENT));
	{
		BIO *b = BIO_new_mem_buf(key, -1);
		EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);

		ck_assert_int_eq(X509_check_private_key(x, k), 1);
		EVP_PKEY_free(k);
		BIO_free(b);
	}
	ck_assert_ptr_nonnull(strstr(key, "-----BEGIN PRIVATE KEY-----"));
	X509_free(x);
	X509_free(root);
	free(cert);
	free(key);
	zt_ca_free(ca);
}
END_TEST

START_TEST(ca_issue_refuses_bad_sans)
{
	struct zt_ca *ca = open_ok(tmpdir, true);
	const char *bad_dns[] = {"a..b"}, *bad_ip[] = {"300.1.1.1"}, *ok_dns[] = {"x.y"};
	char *cert = (char *)1, *key = (char *)1, err[256] = "";

	ck_assert_int_eq(
	        zt_ca_issue(ca, bad_dns, 1, NULL, 0, NULL, 60, &cert, &key, err, sizeof(err)),
	        ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "\"a..b\" is not a host name"));
	ck_assert_ptr_null(cert);
	ck_assert_ptr_null(key);
	ck_assert_int_eq(
	        zt_ca_issue(ca, NULL, 0, bad_ip, 1, NULL, 60, &cert, &key, err, sizeof(err)),
	        ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "300.1.1.1"));
	ck_assert_int_eq(zt_ca_issue(ca, NULL, 0, NULL, 0, "has space:x y", 60, &cert, &key, err,
	                             sizeof(err)),
	                 ZT_E_PARSE);
	ck_assert_int_eq(zt_ca_issue(ca, NULL, 0, NULL, 0, NULL, 60, &cert, &key, err, sizeof(err)),
	                 ZT_E_RANGE);
	ck_assert_int_eq(
	        zt_ca_issue(ca, ok_dns, 1, NULL, 0, NULL, -5, &cert, &key, err, sizeof(err)),
	        ZT_E_RANGE);
	zt_ca_free(ca);
}
END_TEST

Suite *ca_suite(void);
Suite *ca_suite(void)
{
	Suite *s = suite_create("ca");
	TCase *root = tcase_create("root"), *sig = tcase_create("sign"),
	      *iss = tcase_create("issue");

	tcase_add_checked_fixture(root, setup, teardown);
	tcase_add_test(root, ca_create_then_reopen_reuses_the_same_root);
	tcase_add_test(root, ca_root_files_have_private_key_mode_and_no_temp_leftovers);
	tcase_add_test(root, ca_generated_root_is_a_p256_ca_for_ten_years);
	tcase_add_test(root, ca_open_without_root_and_without_create_is_not_found);
	tcase_add_test(root, ca_open_refuses_a_key_of_another_root);
	tcase_add_test(root, ca_open_refuses_garbage_certificate_naming_the_file);
	tcase_add_test(root, ca_open_refuses_garbage_key_naming_the_file);
	tcase_add_test(root, ca_open_refuses_encrypted_key_without_prompting);
	tcase_add_test(root, ca_open_reports_a_missing_half_and_keeps_the_other);
	tcase_add_test(root, ca_open_refuses_a_leaf_certificate_as_root);
	tcase_add_test(root, ca_open_refuses_an_oversize_file);
	tcase_add_test(root, ca_open_refuses_a_directory_path_that_is_a_file);
	suite_add_tcase(s, root);

	tcase_add_checked_fixture(sig, setup, teardown);
	tcase_set_timeout(sig, 30);
	tcase_add_test(sig, ca_signed_leaf_chains_to_root_with_istio_layout);
	tcase_add_test(sig, ca_signed_leaf_builds_a_tls_identity);
	tcase_add_test(sig, ca_serials_are_random_and_positive_128_bit);
	tcase_add_test(sig, ca_signed_leaf_builds_an_identity_from_the_key_object_and_fresh_roots);
	tcase_add_test(sig, ca_short_lived_leaf_is_backdated_a_tenth_of_its_ttl);
	tcase_add_test(sig, ca_sign_refuses_ttl_out_of_range);
	tcase_add_test(sig, ca_sign_refuses_a_tampered_csr);
	tcase_add_test(sig, ca_sign_refuses_two_uri_sans);
	tcase_add_test(sig, ca_sign_refuses_no_san);
	tcase_add_test(sig, ca_sign_refuses_dns_only_san);
	tcase_add_test(sig, ca_sign_refuses_non_spiffe_uri_and_names_it);
	tcase_add_test(sig, ca_sign_shows_control_bytes_in_a_san_as_question_marks);
	tcase_add_test(sig, ca_sign_refuses_another_trust_domain);
	tcase_add_test(sig, ca_sign_refuses_identity_other_than_required);
	tcase_add_test(sig, ca_sign_refuses_garbage_pem);
	tcase_add_test(sig, ca_sign_refuses_a_certificate_in_place_of_a_csr);
	tcase_add_test(sig, ca_sign_refuses_oversize_input_before_parsing);
	tcase_add_test(sig, ca_sign_refuses_weak_or_unexpected_keys);
	tcase_add_test(sig, ca_sign_accepts_p384_and_rsa_2048);
	suite_add_tcase(s, sig);

	tcase_add_checked_fixture(iss, setup, teardown);
	tcase_add_test(iss, ca_issue_serving_cert_has_dns_ip_and_uri_sans);
	tcase_add_test(iss, ca_issue_refuses_bad_sans);
	suite_add_tcase(s, iss);
	return s;
}
