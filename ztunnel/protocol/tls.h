/* Workload mTLS for HBONE (spec §2.1, §2.2) on OpenSSL: identities (leaf + chain + key +
 * roots), server and client contexts, and non-blocking connections on a caller-owned fd.
 * Identities are immutable once built and shared by reference; a connection keeps the
 * identity it started with, so swapping a server's identity only affects new handshakes.
 * Connections are loop-agnostic: a call that cannot progress returns -EAGAIN and
 * zt_tls_conn_want() says which readiness (ZT_IO_READ/ZT_IO_WRITE) to wait for. */
#ifndef ZT_TLS_H
#define ZT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/types.h>

#include "protocol/spiffe.h"

#define ZT_TLS_MAX_PEM      (1u << 20) /* bound on each PEM input */
#define ZT_TLS_MAX_EXPECTED 64         /* expected server identities per client connection */

/* ---- identities ------------------------------------------------------------------------- */

struct zt_tls_identity;

/* Builds an identity from PEM text (each buffer bounded by ZT_TLS_MAX_PEM, need not be
 * NUL-terminated). chain: the leaf first, then intermediates. key: the leaf's private key
 * (PKCS#8 or traditional). roots: one or more trust anchors (the trust bundle used to verify
 * peers). The leaf must carry a SPIFFE URI SAN (the first one that parses is the identity),
 * match the key, and chain to one of the roots (validity dates are not checked here).
 * Returns 0 and a new reference in *out, or ZT_E_TOOBIG, ZT_E_PARSE (bad PEM or no
 * certificate), ZT_E_IDENTITY (no SPIFFE SAN, key mismatch, chain does not verify). */
int zt_tls_identity_new(struct zt_tls_identity **out, const char *chain, size_t chain_len,
                        const char *key, size_t key_len, const char *roots, size_t roots_len);
/* The same with the private key as an object (a reference is taken; key_pem's parse is what
 * costs most when a node fetches a thousand certificates). */
int zt_tls_identity_new_pkey(struct zt_tls_identity **out, const char *chain, size_t chain_len,
                             EVP_PKEY *key, const char *roots, size_t roots_len);
/* Returns a new reference (id itself). */
struct zt_tls_identity *zt_tls_identity_ref(struct zt_tls_identity *id);
/* Drops a reference; the last one frees. Accepts NULL. Thread-safe. */
void zt_tls_identity_unref(struct zt_tls_identity *id);

/* Accessors: the returned pointers live as long as the identity. */
const struct zt_spiffe *zt_tls_identity_spiffe(const struct zt_tls_identity *id);
int64_t zt_tls_identity_not_before(const struct zt_tls_identity *id); /* Unix seconds */
int64_t zt_tls_identity_not_after(const struct zt_tls_identity *id);
const char *zt_tls_identity_serial(const struct zt_tls_identity *id); /* upper-case hex */
X509 *zt_tls_identity_leaf(const struct zt_tls_identity *id);         /* borrowed */
/* The intermediates (leaf excluded) and the trust anchors, borrowed. */
STACK_OF(X509) * zt_tls_identity_chain(const struct zt_tls_identity *id);
X509_STORE *zt_tls_identity_roots(const struct zt_tls_identity *id);
/* Identities alive in the process (for leak checks and /config_dump). */
size_t zt_tls_identity_live(void);

/* ---- contexts --------------------------------------------------------------------------- */

struct zt_tls_opts {
	bool allow_tls12;   /* TLS12_ENABLED: accept TLS 1.2 besides 1.3 */
	const char *groups; /* key exchange groups (OpenSSL list syntax); NULL: provider default */
};

struct zt_tls_server;
struct zt_tls_client;

/* Server context: TLS 1.3 (1.2 if allowed), AES-GCM suites, ALPN h2 required (a ClientHello
 * without h2 is refused with no_application_protocol), SNI ignored, no session resumption.
 * Clients must present a chain that verifies against the current identity's roots with EKU
 * clientAuth and has a SPIFFE URI SAN in the current identity's trust domain.
 * id: the identity served (new reference taken). opts may be NULL.
 * Returns 0, ZT_E_UNSUPPORTED (groups not available) or ZT_E_TLS. */
int zt_tls_server_new(struct zt_tls_server **out, struct zt_tls_identity *id,
                      const struct zt_tls_opts *opts);
/* Accepts NULL. Connections created from srv must be freed first. */
void zt_tls_server_free(struct zt_tls_server *srv);
/* Serves id (new reference taken) on handshakes that start after this call; connections
 * already past their ClientHello keep the identity they chose. Thread-safe. */
void zt_tls_server_set_identity(struct zt_tls_server *srv, struct zt_tls_identity *id);
/* Returns a new reference to the identity currently served. */
struct zt_tls_identity *zt_tls_server_identity(struct zt_tls_server *srv);

/* Client context: same versions and suites, offers ALPN h2 and requires it, sends no SNI,
 * no session resumption, no host name checks. The identity and the expected server identities
 * are given per connection. opts may be NULL. Returns 0, ZT_E_UNSUPPORTED or ZT_E_TLS.
 * Client contexts are reference-counted (atomically): *out holds the first reference. A
 * connection keeps what it needs of its context, so the last reference may go while
 * connections made from it are still open (e.g. when the roots are replaced). */
int zt_tls_client_new(struct zt_tls_client **out, const struct zt_tls_opts *opts);
/* A new reference to cli (returned; NULL stays NULL). */
struct zt_tls_client *zt_tls_client_ref(struct zt_tls_client *cli);
/* Drops a reference; the last one frees the context. Accepts NULL. */
void zt_tls_client_unref(struct zt_tls_client *cli);

/* ---- connections ------------------------------------------------------------------------ */

struct zt_tls_conn;

/* Wraps fd (connected, non-blocking, still owned by the caller) as the server end.
 * Returns 0 or ZT_E_TLS. */
int zt_tls_conn_server_new(struct zt_tls_conn **out, struct zt_tls_server *srv, int fd);
/* Wraps fd as the client end presenting id (new reference taken). The server must prove one
 * of expected[0..n) (copied; 1 <= n <= ZT_TLS_MAX_EXPECTED) in a chain that verifies against
 * id's roots with EKU serverAuth. Returns 0, ZT_E_RANGE (n) or ZT_E_TLS. */
int zt_tls_conn_client_new(struct zt_tls_conn **out, struct zt_tls_client *cli, int fd,
                           struct zt_tls_identity *id, const struct zt_spiffe *expected, size_t n);
/* Frees without sending anything and without closing fd. Accepts NULL. */
void zt_tls_conn_free(struct zt_tls_conn *c);

/* Drives the handshake. Returns 0 once complete (peer verified, h2 negotiated), -EAGAIN
 * (wait for zt_tls_conn_want() readiness, then call again), or a failure: ZT_E_IDENTITY (the
 * peer's chain was fine but its SPIFFE identity is not accepted), ZT_E_TLS (any other TLS or
 * certificate failure, including a fatal alert from the peer), ZT_E_CLOSED (EOF from the
 * peer), -errno (socket error). Failures are sticky; zt_tls_conn_error() explains them.
 * With TLS 1.3 the client completes before the server has checked the client certificate:
 * a rejection then surfaces on the client's next read as ZT_E_TLS. */
int zt_tls_conn_handshake(struct zt_tls_conn *c);

/* Reads up to len bytes. Returns the count (> 0), 0 on a clean EOF (peer's close_notify),
 * -EAGAIN, ZT_E_STATE (handshake not complete) or the failures of zt_tls_conn_handshake();
 * an EOF without close_notify is ZT_E_CLOSED. */
ssize_t zt_tls_conn_read(struct zt_tls_conn *c, void *buf, size_t len);
/* Writes up to len bytes (partial writes happen). Returns the count (> 0; 0 only if len is
 * 0), -EAGAIN (retry with the same bytes), ZT_E_STATE or the failures above. The process
 * must ignore SIGPIPE. */
ssize_t zt_tls_conn_write(struct zt_tls_conn *c, const void *buf, size_t len);
/* Sends close_notify (our side is done writing; reading may continue until the peer's EOF).
 * Returns 0 once sent, -EAGAIN, ZT_E_STATE (handshake not complete) or a sticky failure. */
int zt_tls_conn_shutdown(struct zt_tls_conn *c);

/* After -EAGAIN: ZT_IO_READ and/or ZT_IO_WRITE to wait for; 0 otherwise. */
unsigned zt_tls_conn_want(const struct zt_tls_conn *c);
/* Why the connection failed ("" if it has not), e.g. "certificate verify failed: unable to
 * get local issuer certificate" or "peer identity spiffe://... not in expected list". */
const char *zt_tls_conn_error(const struct zt_tls_conn *c);
/* The verified peer identity once the handshake has completed (still available after a later
 * failure), else NULL. Server side: the
 * client's first SPIFFE URI SAN (spec §2.2). Client side: the expected identity the server
 * proved. */
const struct zt_spiffe *zt_tls_conn_peer(const struct zt_tls_conn *c);
/* The negotiated ALPN protocol ("h2") once the handshake has completed, else "". */
const char *zt_tls_conn_alpn(const struct zt_tls_conn *c);
/* Our identity on this connection (borrowed): the client's own, or the one the server chose
 * for this handshake (NULL before the ClientHello). */
struct zt_tls_identity *zt_tls_conn_identity(const struct zt_tls_conn *c);
/* The underlying SSL (borrowed), for inspection only. */
SSL *zt_tls_conn_ssl(const struct zt_tls_conn *c);
/* Connections alive in the process. */
size_t zt_tls_conn_live(void);

/* ---- control plane (gRPC to istiod: server names, no client certificate) ---------------- */

/* Server context presenting chain (leaf first, then intermediates) with key, asking clients
 * for no certificate; TLS versions, suites and ALPN h2 as above. Connections come from
 * zt_tls_conn_server_new() and report no peer identity. Returns 0, ZT_E_TOOBIG, ZT_E_PARSE
 * (bad PEM), ZT_E_IDENTITY (key does not match) or ZT_E_TLS. */
int zt_tls_cp_server_new(struct zt_tls_server **out, const char *chain, size_t chain_len,
                         const char *key, size_t key_len, const struct zt_tls_opts *opts);
/* Client context that verifies servers against roots (PEM, one or more certificates; NULL:
 * the system trust store), presents no certificate and requires ALPN h2. Returns 0,
 * ZT_E_TOOBIG, ZT_E_PARSE or ZT_E_TLS. */
int zt_tls_cp_client_new(struct zt_tls_client **out, const char *roots, size_t roots_len,
                         const struct zt_tls_opts *opts);
/* Client connection on fd whose server must prove host: a DNS name (also sent as SNI) or an
 * IP literal, matched against the certificate's SANs. Returns 0, ZT_E_RANGE (empty or
 * over-long host) or ZT_E_TLS. A mismatch fails the handshake with ZT_E_TLS and a reason
 * naming host. */
int zt_tls_conn_cp_client_new(struct zt_tls_conn **out, struct zt_tls_client *cli, int fd,
                              const char *host);
/* Also accepts a server certificate that names alt (DNS name or IP literal) when it does not
 * name host (ALT_XDS_HOSTNAME / ALT_CA_HOSTNAME, spec §3.1). Call before the handshake, on a
 * connection from zt_tls_conn_cp_client_new(). Returns 0 or ZT_E_RANGE (not such a
 * connection, alt empty or over-long). */
int zt_tls_conn_cp_set_alt_host(struct zt_tls_conn *c, const char *alt);

#endif
