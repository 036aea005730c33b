/* Workload mTLS on OpenSSL (spec §2.1, §2.2). Contexts carry only policy (versions, suites,
 * ALPN, verification hooks); certificates, keys and trust stores are attached per SSL from an
 * immutable refcounted identity, so a server swaps identities by pointer and a connection
 * keeps whatever it picked at its ClientHello. Peer checks run in one verify hook: chain and
 * EKU by OpenSSL, then the SPIFFE rules of spiffe.h. */
#include "protocol/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "runtime/err.h"
#include "runtime/loop.h"
#include "runtime/mem.h"

#define SUITES13 "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
#define SUITES12                                                                                   \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"                             \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"
#define ALPN_H2 "\x02h2"

struct zt_tls_identity {
	atomic_uint refs;
	X509 *leaf;
	STACK_OF(X509) * chain; /* intermediates, leaf excluded */
	EVP_PKEY *key;
	X509_STORE *roots;
	struct zt_spiffe spiffe;
	int64_t not_before, not_after;
	char serial[80];
};

struct zt_tls_server {
	SSL_CTX *ctx;
	bool cp;            /* control plane: fixed certificate, no client certificate asked */
	pthread_mutex_t mu; /* guards id */
	struct zt_tls_identity *id;
};

struct zt_tls_client {
	SSL_CTX *ctx;
	atomic_uint refs;
};

enum conn_state { HANDSHAKE, OPEN, FAILED };

struct zt_tls_conn {
	SSL *ssl;
	bool server;
	enum conn_state state;
	int err; /* sticky once FAILED */
	unsigned want;
	bool established;           /* the handshake completed (peer is valid) */
	bool eof, closed;           /* peer's close_notify seen; ours sent */
	bool peer_ok;               /* the verify hook accepted the peer */
	bool identity_rejected;     /* the verify hook refused the peer's SPIFFE identity */
	bool bulk;                  /* moved a bulk record: keeps its record buffers */
	struct zt_tls_identity *id; /* ours; server: chosen at ClientHello */
	struct zt_spiffe *expected; /* client only */
	size_t n_expected;
	struct zt_spiffe peer;
	bool cp;        /* control-plane connection: host name checks, no SPIFFE */
	char host[256]; /* cp client: the server name verified */
	char alt[256];  /* cp client: also accepted when host does not match ("" if none) */
	char alpn[8];
	char reason[256];
};

static atomic_size_t live_identities, live_conns;

static int no_password_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0;
}

/* ---- identities ------------------------------------------------------------------------- */

/* Reads every certificate of a PEM buffer into *out (at least one). */
static int read_certs(STACK_OF(X509) * *out, const char *pem, size_t len)
{
	STACK_OF(X509) *certs = NULL;
	BIO *bio = NULL;
	X509 *x;
	unsigned long e;
	int rc = ZT_E_PARSE;

	if (len > ZT_TLS_MAX_PEM)
		return ZT_E_TOOBIG;
	if (!pem)
		return ZT_E_PARSE;
	certs = sk_X509_new_null();
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!certs || !bio)
		abort();
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, no_password_cb, NULL)))
		if (!sk_X509_push(certs, x))
			abort();
	/* The loop ends on "no start line" at the end of the input; anything else is junk. */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE &&
	    sk_X509_num(certs) > 0) {
		*out = certs;
		certs = NULL;
		rc = 0;
	}
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	BIO_free(bio);
	return rc;
}

/* The roots every certificate of a node comes with are the same bytes: the last ones parsed
 * are kept (new references handed out), as parsing a certificate is most of what building an
 * identity costs. */
static struct {
	pthread_mutex_t lock;
	char *pem;
	size_t len;
	STACK_OF(X509) * certs;
} roots_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int read_roots(STACK_OF(X509) * *out, const char *pem, size_t len)
{
	STACK_OF(X509) *certs = NULL;
	int rc;

	pthread_mutex_lock(&roots_cache.lock);
	if (pem && roots_cache.pem && len == roots_cache.len &&
	    memcmp(pem, roots_cache.pem, len) == 0)
		certs = X509_chain_up_ref(roots_cache.certs);
	pthread_mutex_unlock(&roots_cache.lock);
	if (certs) {
		*out = certs;
		return 0;
	}
	if ((rc = read_certs(&certs, pem, len)) < 0)
		return rc;
	pthread_mutex_lock(&roots_cache.lock);
	sk_X509_pop_free(roots_cache.certs, X509_free);
	free(roots_cache.pem);
	roots_cache.pem = xmalloc(len ? len : 1);
	memcpy(roots_cache.pem, pem, len);
	roots_cache.len = len;
	roots_cache.certs = X509_chain_up_ref(certs);
	pthread_mutex_unlock(&roots_cache.lock);
	*out = certs;
	return 0;
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

static int format_serial(char *buf, size_t size, X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int rc = 0;

	if (!hex || strlen(hex) >= size)
		rc = ZT_E_PARSE;
	else
		memcpy(buf, hex, strlen(hex) + 1);
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

/* Whether leaf + chain verify against roots, ignoring validity dates and purpose. */
static bool chains_to_roots(X509 *leaf, STACK_OF(X509) * chain, X509_STORE *roots)
{
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	bool ok;

	if (!sctx)
		abort();
	ok = X509_STORE_CTX_init(sctx, roots, leaf, chain) == 1;
	if (ok) {
		X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(sctx),
		                            X509_V_FLAG_NO_CHECK_TIME);
		ok = X509_verify_cert(sctx) == 1;
	}
	X509_STORE_CTX_free(sctx);
	ERR_clear_error();
	return ok;
}

static void identity_free(struct zt_tls_identity *id)
{
	X509_free(id->leaf);
	sk_X509_pop_free(id->chain, X509_free);
	EVP_PKEY_free(id->key);
	X509_STORE_free(id->roots);
	free(id);
	atomic_fetch_sub(&live_identities, 1);
}

int zt_tls_identity_new(struct zt_tls_identity **out, const char *chain, size_t chain_len,
                        const char *key, size_t key_len, const char *roots, size_t roots_len)
{
	EVP_PKEY *pkey;
	BIO *bio;
	int rc;

	*out = NULL;
	if (key_len > ZT_TLS_MAX_PEM)
		return ZT_E_TOOBIG;
	if (!key)
		return ZT_E_PARSE;
	/* Size checks first, as the key's parse costs more than all of them. */
	if (chain_len > ZT_TLS_MAX_PEM || roots_len > ZT_TLS_MAX_PEM)
		return ZT_E_TOOBIG;
	bio = BIO_new_mem_buf(key, (int)key_len);
	if (!bio)
		abort();
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password_cb, NULL);
	ERR_clear_error();
	BIO_free(bio);
	if (!pkey)
		return ZT_E_PARSE;
	rc = zt_tls_identity_new_pkey(out, chain, chain_len, pkey, roots, roots_len);
	EVP_PKEY_free(pkey);
	return rc;
}

int zt_tls_identity_new_pkey(struct zt_tls_identity **out, const char *chain, size_t chain_len,
                             EVP_PKEY *key, const char *roots, size_t roots_len)
{
	struct zt_tls_identity *id;
	STACK_OF(X509) *root_certs = NULL;
	struct zt_spiffe_sans sans = {0};
	int i, rc;

	*out = NULL;
	if (!key)
		return ZT_E_PARSE;
	id = xcalloc(1, sizeof(*id));
	atomic_init(&id->refs, 1);
	atomic_fetch_add(&live_identities, 1);

	if ((rc = read_certs(&id->chain, chain, chain_len)) < 0 ||
	    (rc = read_roots(&root_certs, roots, roots_len)) < 0)
		goto out;
	id->leaf = sk_X509_shift(id->chain);
	if (EVP_PKEY_up_ref(key) != 1)
		abort();
	id->key = key;

	id->roots = X509_STORE_new();
	if (!id->roots)
		abort();
	for (i = 0; i < sk_X509_num(root_certs); i++)
		if (X509_STORE_add_cert(id->roots, sk_X509_value(root_certs, i)) != 1)
			ERR_clear_error(); /* a duplicate root is harmless */

	rc = ZT_E_IDENTITY;
	if (X509_check_private_key(id->leaf, id->key) != 1)
		goto out;
	if (zt_spiffe_sans_from_x509(id->leaf, &sans) < 0)
		goto out;
	for (i = 0; i < (int)sans.n; i++)
		if (zt_spiffe_parse(&id->spiffe, sans.v[i].uri, sans.v[i].len) == 0)
			break;
	if (i == (int)sans.n)
		goto out;
	if (!chains_to_roots(id->leaf, id->chain, id->roots))
		goto out;
	if ((rc = format_serial(id->serial, sizeof(id->serial), id->leaf)) < 0)
		goto out;
	id->not_before = asn1_time_unix(X509_get0_notBefore(id->leaf));
	id->not_after = asn1_time_unix(X509_get0_notAfter(id->leaf));
	rc = 0;
out:
	ERR_clear_error();
	zt_spiffe_sans_clear(&sans);
	sk_X509_pop_free(root_certs, X509_free);
	if (rc < 0) {
		identity_free(id);
		id = NULL;
	}
	*out = id;
	return rc;
}

struct zt_tls_identity *zt_tls_identity_ref(struct zt_tls_identity *id)
{
	atomic_fetch_add(&id->refs, 1);
	return id;
}

void zt_tls_identity_unref(struct zt_tls_identity *id)
{
	if (id && atomic_fetch_sub(&id->refs, 1) == 1)
		identity_free(id);
}

const struct zt_spiffe *zt_tls_identity_spiffe(const struct zt_tls_identity *id)
{
	return &id->spiffe;
}

int64_t zt_tls_identity_not_before(const struct zt_tls_identity *id)
{
	return id->not_before;
}

int64_t zt_tls_identity_not_after(const struct zt_tls_identity *id)
{
	return id->not_after;
}

const char *zt_tls_identity_serial(const struct zt_tls_identity *id)
{
	return id->serial;
}

X509 *zt_tls_identity_leaf(const struct zt_tls_identity *id)
{
	return id->leaf;
}

STACK_OF(X509) * zt_tls_identity_chain(const struct zt_tls_identity *id)
{
	return id->chain;
}

X509_STORE *zt_tls_identity_roots(const struct zt_tls_identity *id)
{
	return id->roots;
}

size_t zt_tls_identity_live(void)
{
	return atomic_load(&live_identities);
}

/* ---- connections: failure bookkeeping --------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void set_reason(struct zt_tls_conn *c, const char *fmt,
                                                             ...)
{
	va_list ap;

	if (c->reason[0])
		return; /* the first cause is the useful one */
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

static int fail(struct zt_tls_conn *c, int err)
{
	c->state = FAILED;
	c->err = err;
	c->want = 0;
	if (!c->reason[0])
		set_reason(c, "%s", zt_strerror(err));
	ERR_clear_error();
	return err;
}

/* Maps a non-positive SSL_* result. Returns -EAGAIN (want set), 1 for a clean close_notify,
 * or a failure made sticky. saved_errno is errno right after the SSL call. */
static int io_result(struct zt_tls_conn *c, int ret, int saved_errno)
{
	unsigned long e;

	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		c->want = ZT_IO_READ;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want = ZT_IO_WRITE;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (saved_errno == 0) {
				set_reason(c, "unexpected EOF from peer");
				return fail(c, ZT_E_CLOSED);
			}
			set_reason(c, "%s", strerror(saved_errno));
			return fail(c, -saved_errno);
		}
		break;
	default:
		break;
	}
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		set_reason(c, "unexpected EOF from peer");
		return fail(c, ZT_E_CLOSED);
	}
	if (c->identity_rejected)
		return fail(c, ZT_E_IDENTITY);
	set_reason(c, "%s",
	           e && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "TLS failure");
	return fail(c, ZT_E_TLS);
}

/* ---- contexts and their hooks ----------------------------------------------------------- */

/* Peer certificate check for both ends: chain, validity and EKU (set as the context purpose)
 * by OpenSSL, then the SPIFFE rule of our side (spec §2.2). */
static int verify_cb(X509_STORE_CTX *sctx, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct zt_tls_conn *c = SSL_get_app_data(ssl);
	struct zt_spiffe_sans sans = {0};
	struct zt_spiffe first;
	char want[ZT_SPIFFE_STR_SIZE], got[ZT_SPIFFE_STR_SIZE] = "none";
	size_t i;
	int rc;

	(void)arg;
	if (X509_verify_cert(sctx) != 1) {
		set_reason(c, "certificate verify failed: %s",
		           X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
		return 0;
	}
	rc = zt_spiffe_sans_from_x509(X509_STORE_CTX_get0_cert(sctx), &sans);
	if (rc == 0 && c->server)
		rc = c->id ? zt_spiffe_verify_client(&c->id->spiffe, &sans, &c->peer)
		           : ZT_E_IDENTITY;
	else if (rc == 0)
		rc = zt_spiffe_verify_server(c->expected, c->n_expected, &sans, &c->peer);
	if (rc < 0) {
		for (i = 0; i < sans.n; i++) {
			if (zt_spiffe_parse(&first, sans.v[i].uri, sans.v[i].len) == 0) {
				zt_spiffe_format(&first, got, sizeof(got));
				break;
			}
		}
		if (c->server)
			set_reason(c, "peer identity %s not in trust domain %s", got,
			           c->id ? c->id->spiffe.td : "?");
		else if (c->n_expected > 0 &&
		         zt_spiffe_format(&c->expected[0], want, sizeof(want)) > 0)
			set_reason(c, "peer identity %s not in expected list (%s%s)", got, want,
			           c->n_expected > 1 ? ", ..." : "");
		c->identity_rejected = true;
		X509_STORE_CTX_set_error(sctx,
		                         X509_V_ERR_CERT_REJECTED); /* alert bad_certificate */
	} else {
		c->peer_ok = true;
	}
	zt_spiffe_sans_clear(&sans);
	return rc == 0;
}

/* Server: attach the identity current at this ClientHello to the SSL. */
static int cert_cb(SSL *ssl, void *arg)
{
	struct zt_tls_conn *c = SSL_get_app_data(ssl);
	struct zt_tls_identity *id;

	if (!c->id)
		c->id = zt_tls_server_identity(arg);
	id = c->id;
	if (SSL_use_certificate(ssl, id->leaf) != 1 || SSL_use_PrivateKey(ssl, id->key) != 1 ||
	    SSL_set1_chain(ssl, id->chain) != 1 ||
	    SSL_set1_verify_cert_store(ssl, id->roots) != 1) {
		set_reason(c, "cannot install server certificate");
		return 0;
	}
	return 1;
}

/* Server: a ClientHello without ALPN never reaches alpn_cb, so refuse it here. */
static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	const unsigned char *ext;
	size_t len;

	(void)arg;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
	                               &ext, &len)) {
		set_reason(SSL_get_app_data(ssl), "client offered no ALPN");
		*alert = SSL_AD_NO_APPLICATION_PROTOCOL;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Server: select h2 or refuse. OpenSSL has validated the list's framing. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
	unsigned i;

	(void)arg;
	for (i = 0; i < inlen; i += 1u + in[i]) {
		if (in[i] == 2 && i + 3 <= inlen && memcmp(in + i + 1, "h2", 2) == 0) {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
	}
	set_reason(SSL_get_app_data(ssl), "client offered no h2 in ALPN");
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int ctx_new(SSL_CTX **out, bool server, const struct zt_tls_opts *opts)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	bool tls12 = opts && opts->allow_tls12;
	int rc = ZT_E_TLS;

	if (!ctx)
		goto out;
	if (SSL_CTX_set_min_proto_version(ctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, SUITES13) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, SUITES12) != 1 ||
	    SSL_CTX_set_purpose(ctx, server ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER) !=
	            1)
		goto out;
	if (opts && opts->groups && SSL_CTX_set1_groups_list(ctx, opts->groups) != 1) {
		rc = ZT_E_UNSUPPORTED;
		goto out;
	}
	/* No resumption: every connection proves its identity afresh (spec §2.1). */
	SSL_CTX_set_options(ctx,
	                    SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* RELEASE_BUFFERS: an idle connection (a pending handshake, a quiet tunnel) holds no
	 * record buffers, about 34 KiB less each. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                              SSL_MODE_RELEASE_BUFFERS);
	/* Read ahead: one read(2) per record instead of a header and then a body. The buffer
	 * stays at its default (one full record and a little): OpenSSL moves what follows a
	 * record to the front of the buffer before the next one, so a larger buffer would cost
	 * more copying than the reads it saves. The bytes it holds beyond the record being
	 * returned are not announced by readiness: readers loop until -EAGAIN (zt_sock_pending). */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
	                   NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_cb, NULL);
	if (server) {
		if (SSL_CTX_set_num_tickets(ctx, 0) != 1)
			goto out;
		SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
	} else if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)ALPN_H2,
	                                   sizeof(ALPN_H2) - 1) != 0) {
		goto out;
	}
	*out = ctx;
	ctx = NULL;
	rc = 0;
out:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

int zt_tls_server_new(struct zt_tls_server **out, struct zt_tls_identity *id,
                      const struct zt_tls_opts *opts)
{
	struct zt_tls_server *srv;
	int rc;

	*out = NULL;
	srv = xcalloc(1, sizeof(*srv));
	if ((rc = ctx_new(&srv->ctx, true, opts)) < 0) {
		free(srv);
		return rc;
	}
	pthread_mutex_init(&srv->mu, NULL);
	srv->id = zt_tls_identity_ref(id);
	SSL_CTX_set_cert_cb(srv->ctx, cert_cb, srv);
	*out = srv;
	return 0;
}

void zt_tls_server_free(struct zt_tls_server *srv)
{
	if (!srv)
		return;
	SSL_CTX_free(srv->ctx);
	zt_tls_identity_unref(srv->id);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}

void zt_tls_server_set_identity(struct zt_tls_server *srv, struct zt_tls_identity *id)
{
	struct zt_tls_identity *old;

	zt_tls_identity_ref(id);
	pthread_mutex_lock(&srv->mu);
	old = srv->id;
	srv->id = id;
	pthread_mutex_unlock(&srv->mu);
	zt_tls_identity_unref(old);
}

struct zt_tls_identity *zt_tls_server_identity(struct zt_tls_server *srv)
{
	struct zt_tls_identity *id;

	pthread_mutex_lock(&srv->mu);
	id = zt_tls_identity_ref(srv->id);
	pthread_mutex_unlock(&srv->mu);
	return id;
}

int zt_tls_client_new(struct zt_tls_client **out, const struct zt_tls_opts *opts)
{
	struct zt_tls_client *cli;
	int rc;

	*out = NULL;
	cli = xcalloc(1, sizeof(*cli));
	if ((rc = ctx_new(&cli->ctx, false, opts)) < 0) {
		free(cli);
		return rc;
	}
	atomic_init(&cli->refs, 1);
	*out = cli;
	return 0;
}

struct zt_tls_client *zt_tls_client_ref(struct zt_tls_client *cli)
{
	if (cli)
		atomic_fetch_add(&cli->refs, 1);
	return cli;
}

void zt_tls_client_unref(struct zt_tls_client *cli)
{
	if (!cli || atomic_fetch_sub(&cli->refs, 1) != 1)
		return;
	SSL_CTX_free(cli->ctx);
	free(cli);
}

/* ---- connections ------------------------------------------------------------------------ */

static int conn_new(struct zt_tls_conn **out, SSL_CTX *ctx, int fd, bool server)
{
	struct zt_tls_conn *c = xcalloc(1, sizeof(*c));

	atomic_fetch_add(&live_conns, 1);
	c->server = server;
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
		zt_tls_conn_free(c);
		ERR_clear_error();
		return ZT_E_TLS;
	}
	SSL_set_app_data(c->ssl, c);
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	*out = c;
	return 0;
}

int zt_tls_conn_server_new(struct zt_tls_conn **out, struct zt_tls_server *srv, int fd)
{
	int rc;

	*out = NULL;
	if ((rc = conn_new(out, srv->ctx, fd, true)) == 0)
		(*out)->cp = srv->cp;
	return rc;
}

int zt_tls_conn_client_new(struct zt_tls_conn **out, struct zt_tls_client *cli, int fd,
                           struct zt_tls_identity *id, const struct zt_spiffe *expected, size_t n)
{
	struct zt_tls_conn *c;
	int rc;

	*out = NULL;
	if (n == 0 || n > ZT_TLS_MAX_EXPECTED)
		return ZT_E_RANGE;
	if ((rc = conn_new(&c, cli->ctx, fd, false)) < 0)
		return rc;
	c->id = zt_tls_identity_ref(id);
	c->expected = xcalloc(n, sizeof(*c->expected));
	memcpy(c->expected, expected, n * sizeof(*expected));
	c->n_expected = n;
	if (SSL_use_certificate(c->ssl, id->leaf) != 1 ||
	    SSL_use_PrivateKey(c->ssl, id->key) != 1 || SSL_set1_chain(c->ssl, id->chain) != 1 ||
	    SSL_set1_verify_cert_store(c->ssl, id->roots) != 1) {
		zt_tls_conn_free(c);
		ERR_clear_error();
		return ZT_E_TLS;
	}
	*out = c;
	return 0;
}

void zt_tls_conn_free(struct zt_tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	zt_tls_identity_unref(c->id);
	free(c->expected);
	free(c);
	atomic_fetch_sub(&live_conns, 1);
}

int zt_tls_conn_handshake(struct zt_tls_conn *c)
{
	const unsigned char *alpn;
	unsigned alpn_len;
	int ret, saved_errno, rc;

	if (c->state == FAILED)
		return c->err;
	if (c->state == OPEN)
		return 0;
	c->want = 0;
	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(c->ssl);
	saved_errno = errno;
	if (c->cp && !c->server && SSL_get_verify_result(c->ssl) != X509_V_OK)
		set_reason(c, "server certificate for %s: %s", c->host,
		           X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
	if (ret != 1) {
		rc = io_result(c, ret, saved_errno);
		if (rc == 1) {
			set_reason(c, "peer closed during handshake");
			return fail(c, ZT_E_CLOSED);
		}
		return rc;
	}
	/* Control plane: OpenSSL checked the chain and host name (client) or asked for nothing
	 * (server). */
	if (c->cp && (c->server || SSL_get_verify_result(c->ssl) == X509_V_OK))
		c->peer_ok = true;
	/* Both checks hold by construction of the hooks; refuse rather than trust that. */
	if (!c->peer_ok) {
		set_reason(c, "peer certificate not verified");
		return fail(c, ZT_E_IDENTITY);
	}
	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
		set_reason(c, "h2 not negotiated by ALPN");
		return fail(c, ZT_E_TLS);
	}
	memcpy(c->alpn, "h2", 3);
	c->state = OPEN;
	c->established = true;
	return 0;
}

/* SSL_MODE_RELEASE_BUFFERS frees a connection's record buffers whenever they run empty: right
 * for the many quiet connections, but on a busy one that is a malloc and a free per record. A
 * connection that once moved a record of BULK_RECORD bytes or more keeps its buffers (about
 * 34 KiB) for good. */
#define BULK_RECORD (8u << 10)

static void note_bulk(struct zt_tls_conn *c, size_t n)
{
	if (n >= BULK_RECORD && !c->bulk) {
		c->bulk = true;
		SSL_clear_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
	}
}

ssize_t zt_tls_conn_read(struct zt_tls_conn *c, void *buf, size_t len)
{
	int ret, saved_errno, rc;

	if (c->state == FAILED)
		return c->err;
	if (c->state != OPEN)
		return ZT_E_STATE;
	if (c->eof)
		return 0;
	if (len == 0)
		return ZT_E_RANGE;
	c->want = 0;
	ERR_clear_error();
	errno = 0;
	ret = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	saved_errno = errno;
	if (ret > 0) {
		note_bulk(c, (size_t)ret);
		return ret;
	}
	rc = io_result(c, ret, saved_errno);
	if (rc == 1) {
		c->eof = true;
		return 0;
	}
	return rc;
}

ssize_t zt_tls_conn_write(struct zt_tls_conn *c, const void *buf, size_t len)
{
	int ret, saved_errno, rc;

	if (c->state == FAILED)
		return c->err;
	if (c->state != OPEN || c->closed)
		return ZT_E_STATE;
	if (len == 0)
		return 0;
	note_bulk(c, len);
	c->want = 0;
	ERR_clear_error();
	errno = 0;
	ret = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	saved_errno = errno;
	if (ret > 0)
		return ret;
	rc = io_result(c, ret, saved_errno);
	if (rc == 1) {
		set_reason(c, "write after peer close_notify");
		return fail(c, ZT_E_CLOSED);
	}
	return rc;
}

int zt_tls_conn_shutdown(struct zt_tls_conn *c)
{
	int ret, saved_errno, rc;

	if (c->state == FAILED)
		return c->err;
	if (c->state != OPEN)
		return ZT_E_STATE;
	if (c->closed)
		return 0;
	c->want = 0;
	ERR_clear_error();
	errno = 0;
	ret = SSL_shutdown(c->ssl);
	saved_errno = errno;
	if (ret >= 0) {
		c->closed = true;
		return 0;
	}
	rc = io_result(c, ret, saved_errno);
	return rc == 1 ? 0 : rc;
}

unsigned zt_tls_conn_want(const struct zt_tls_conn *c)
{
	return c->want;
}

const char *zt_tls_conn_error(const struct zt_tls_conn *c)
{
	return c->state == FAILED ? c->reason : "";
}

const struct zt_spiffe *zt_tls_conn_peer(const struct zt_tls_conn *c)
{
	return c->established && !c->cp ? &c->peer : NULL;
}

const char *zt_tls_conn_alpn(const struct zt_tls_conn *c)
{
	return c->alpn;
}

struct zt_tls_identity *zt_tls_conn_identity(const struct zt_tls_conn *c)
{
	return c->id;
}

SSL *zt_tls_conn_ssl(const struct zt_tls_conn *c)
{
	return c->ssl;
}

size_t zt_tls_conn_live(void)
{
	return atomic_load(&live_conns);
}

/* ---- control plane ---------------------------------------------------------------------- */

int zt_tls_cp_server_new(struct zt_tls_server **out, const char *chain, size_t chain_len,
                         const char *key, size_t key_len, const struct zt_tls_opts *opts)
{
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *pkey = NULL;
	struct zt_tls_server *srv;
	BIO *bio;
	int rc;

	*out = NULL;
	if (key_len > ZT_TLS_MAX_PEM)
		return ZT_E_TOOBIG;
	if ((rc = read_certs(&certs, chain, chain_len)) < 0)
		return rc;
	srv = xcalloc(1, sizeof(*srv));
	srv->cp = true;
	pthread_mutex_init(&srv->mu, NULL);
	if ((rc = ctx_new(&srv->ctx, true, opts)) < 0)
		goto fail;
	SSL_CTX_set_verify(srv->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_cert_verify_callback(srv->ctx, NULL, NULL);
	bio = BIO_new_mem_buf(key, (int)key_len);
	if (!bio)
		abort();
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password_cb, NULL);
	BIO_free(bio);
	rc = ZT_E_PARSE;
	if (!pkey || SSL_CTX_use_certificate(srv->ctx, sk_X509_value(certs, 0)) != 1)
		goto fail;
	rc = ZT_E_IDENTITY;
	if (SSL_CTX_use_PrivateKey(srv->ctx, pkey) != 1 || SSL_CTX_check_private_key(srv->ctx) != 1)
		goto fail;
	for (int i = 1; i < sk_X509_num(certs); i++)
		if (SSL_CTX_add1_chain_cert(srv->ctx, sk_X509_value(certs, i)) != 1)
			goto fail;
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	*out = srv;
	return 0;
fail:
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(certs, X509_free);
	zt_tls_server_free(srv);
	ERR_clear_error();
	return rc;
}

int zt_tls_cp_client_new(struct zt_tls_client **out, const char *roots, size_t roots_len,
                         const struct zt_tls_opts *opts)
{
	STACK_OF(X509) *certs = NULL;
	struct zt_tls_client *cli;
	X509_STORE *store;
	int rc;

	*out = NULL;
	if (roots && (rc = read_certs(&certs, roots, roots_len)) < 0)
		return rc;
	if ((rc = zt_tls_client_new(&cli, opts)) < 0) {
		sk_X509_pop_free(certs, X509_free);
		return rc;
	}
	SSL_CTX_set_cert_verify_callback(cli->ctx, NULL, NULL);
	SSL_CTX_set_verify(cli->ctx, SSL_VERIFY_PEER, NULL);
	store = SSL_CTX_get_cert_store(cli->ctx);
	if (!certs) {
		rc = SSL_CTX_set_default_verify_paths(cli->ctx) == 1 ? 0 : ZT_E_TLS;
	} else {
		rc = 0;
		for (int i = 0; i < sk_X509_num(certs) && rc == 0; i++)
			if (X509_STORE_add_cert(store, sk_X509_value(certs, i)) != 1)
				rc = ZT_E_PARSE;
	}
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	if (rc < 0) {
		zt_tls_client_unref(cli);
		return rc;
	}
	*out = cli;
	return 0;
}

int zt_tls_conn_cp_client_new(struct zt_tls_conn **out, struct zt_tls_client *cli, int fd,
                              const char *host)
{
	struct zt_tls_conn *c;
	struct in6_addr a6;
	struct in_addr a4;
	size_t len = host ? strlen(host) : 0;
	bool ip;
	int rc;

	*out = NULL;
	if (len == 0 || len >= sizeof(c->host))
		return ZT_E_RANGE;
	ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
	if ((rc = conn_new(&c, cli->ctx, fd, false)) < 0)
		return rc;
	c->cp = true;
	memcpy(c->host, host, len + 1);
	if (ip)
		rc = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) == 1 ? 0
		                                                                      : ZT_E_TLS;
	else
		rc = SSL_set1_host(c->ssl, host) == 1 && SSL_set_tlsext_host_name(c->ssl, host) == 1
		             ? 0
		             : ZT_E_TLS;
	ERR_clear_error();
	if (rc < 0) {
		zt_tls_conn_free(c);
		return rc;
	}
	SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	*out = c;
	return 0;
}

/* Accepts the leaf when it names c->alt although host did not match: the only error this
 * overrides is the name mismatch at depth 0, and it clears it so the handshake succeeds. */
static int cp_alt_verify_cb(int ok, X509_STORE_CTX *sctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct zt_tls_conn *c = SSL_get_app_data(ssl);
	int err = X509_STORE_CTX_get_error(sctx);
	X509 *leaf = X509_STORE_CTX_get_current_cert(sctx);
	struct in6_addr a6;
	struct in_addr a4;
	int match;

	if (ok || !c->alt[0] || X509_STORE_CTX_get_error_depth(sctx) != 0 ||
	    (err != X509_V_ERR_HOSTNAME_MISMATCH && err != X509_V_ERR_IP_ADDRESS_MISMATCH))
		return ok;
	if (inet_pton(AF_INET, c->alt, &a4) == 1 || inet_pton(AF_INET6, c->alt, &a6) == 1)
		match = X509_check_ip_asc(leaf, c->alt, 0);
	else
		match = X509_check_host(leaf, c->alt, strlen(c->alt),
		                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
	if (match != 1)
		return 0;
	X509_STORE_CTX_set_error(sctx, X509_V_OK);
	return 1;
}

int zt_tls_conn_cp_set_alt_host(struct zt_tls_conn *c, const char *alt)
{
	size_t len = alt ? strlen(alt) : 0;

	if (!c->cp || c->server || len == 0 || len >= sizeof(c->alt))
		return ZT_E_RANGE;
	memcpy(c->alt, alt, len + 1);
	SSL_set_verify(c->ssl, SSL_VERIFY_PEER, cp_alt_verify_cb);
	return 0;
}
