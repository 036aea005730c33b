/* The remote certificate source (spec §4): unary gRPC
 * /istio.v1.auth.IstioCertificateService/CreateCertificate over TLS to CA_ADDRESS, with the
 * bearer token, clusterid and CA_HEADER_* metadata. One HTTP/2 connection carries every
 * concurrent call; it is dialled on demand, again after it dies or drains, and let go after a
 * minute without calls. */
#ifndef ZT_CA_CLIENT_H
#define ZT_CA_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert/source.h"
#include "protocol/grpc.h"
#include "protocol/tls.h"
#include "runtime/loop.h"

#define ZT_CA_CLIENT_PATH         "/istio.v1.auth.IstioCertificateService/CreateCertificate"
#define ZT_CA_CLIENT_TOKEN_MAX    8192       /* bearer token bytes (JWTs are ~1 KiB) */
#define ZT_CA_CLIENT_MAX_RESPONSE (1u << 20) /* bound on one IstioCertificateResponse */
#define ZT_CA_CLIENT_MAX_CHAIN    32         /* cert_chain elements accepted */
#define ZT_CA_CLIENT_MAX_HEADERS  16         /* extra metadata entries (CA_HEADER_*) */
#define ZT_CA_CLIENT_TIMEOUT_MS   10000      /* per call, connecting included */

/* Writes the bearer token and a NUL into out (len bytes: ZT_CA_CLIENT_TOKEN_MAX + 1); "" means
 * no token (no authorization header is sent). Returns 0, or < 0 to fail the call. Called for
 * every call, so a rotated token file is picked up (zt_config_token() fits behind it). */
typedef int (*zt_ca_token_cb)(void *arg, char *out, size_t len);

struct zt_ca_client_opts {
	const char *host;         /* CA_ADDRESS host: DNS name or IP literal without brackets;
	                             also the name the CA's certificate must carry */
	uint16_t port;            /* CA_ADDRESS port */
	const char *alt_hostname; /* ALT_CA_HOSTNAME: also accepted in the certificate; NULL */
	const char *roots_pem;    /* CA_ROOT_CA trust anchors (PEM); NULL: system trust store */
	size_t roots_len;
	const struct zt_tls_opts *tls; /* NULL: defaults */
	zt_ca_token_cb token;          /* NULL: no authorization header */
	void *token_arg;
	const char *cluster_id;           /* clusterid metadata; NULL or "": not sent */
	const struct zt_grpc_md *headers; /* extra metadata (CA_HEADER_*), copied; lower-case */
	size_t nheaders;
	bool impersonate;    /* shared mode: metadata {"ImpersonatedIdentity": id} (spec §4) */
	uint64_t timeout_ms; /* per call; 0: ZT_CA_CLIENT_TIMEOUT_MS */
};

struct zt_ca_client;

/* Creates a client; nothing is dialled before the first call. Strings are copied. Returns 0,
 * ZT_E_RANGE (no host, host over 253 bytes, port 0), ZT_E_PARSE (a header key or value, or
 * the cluster id, is not valid metadata), ZT_E_TOOBIG (more than ZT_CA_CLIENT_MAX_HEADERS) or
 * what zt_tls_cp_client_new returns for the roots. */
int zt_ca_client_new(struct zt_ca_client **out, struct zt_loop *loop,
                     const struct zt_ca_client_opts *o);
/* Cancels every call (their done callbacks never run) and closes the connection. The loop
 * must keep running for the connection's closing to finish. Accepts NULL. */
void zt_ca_client_free(struct zt_ca_client *c);

/* The client as a certificate source (valid while c lives). sign() never calls done before
 * it returns; it fails with ZT_E_PARSE when the CSR, identity or TTL is unusable. done
 * reports: ZT_E_TIMEOUT (deadline, connecting included), ZT_E_CLOSED (connection lost or
 * UNAVAILABLE), ZT_E_IDENTITY (UNAUTHENTICATED, PERMISSION_DENIED), ZT_E_PROTO (any other
 * gRPC status, an undecodable response, one with no or over ZT_CA_CLIENT_MAX_CHAIN elements),
 * ZT_E_TLS (handshake, e.g. the server's name or chain), the token callback's error, and the
 * dial errors of protocol/dial.h. */
struct zt_cert_source zt_ca_client_source(struct zt_ca_client *c);

/* Replaces the trust bundle (the CA_ROOT_CA file changed; NULL: system trust store): later
 * connections use it, the current one drains (its calls finish) and a connection attempt in
 * progress starts over. Returns 0 or what zt_tls_cp_client_new returns (the old bundle then
 * stays). */
int zt_ca_client_set_roots(struct zt_ca_client *c, const char *roots_pem, size_t roots_len);

/* Calls not yet answered, and whether a connection is up (for /config_dump and tests). */
size_t zt_ca_client_calls(const struct zt_ca_client *c);
bool zt_ca_client_connected(const struct zt_ca_client *c);

#endif
