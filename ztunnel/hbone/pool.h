/* HBONE client connection pool (spec §2.7): mTLS + HTTP/2 connections keyed by (source
 * identity, acceptable destination identities, destination address, source IP), each carrying
 * up to min(max_streams, peer's MAX_CONCURRENT_STREAMS) CONNECT streams. Creation is
 * single-flight per key: requests arriving while a connection is being established wait for
 * it, and more connections are opened only when the established ones are full. Connections
 * that received GOAWAY, died or sat unused for idle_ms are never handed out again.
 * Single-threaded: every call and callback runs on the pool's loop. */
#ifndef ZT_POOL_H
#define ZT_POOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/h2.h"
#include "protocol/spiffe.h"
#include "protocol/tls.h"
#include "hbone/close.h"
#include "hbone/sockopt.h"
#include "runtime/addr.h"
#include "runtime/loop.h"

struct zt_pool;
struct zt_pool_req;

/* Returns a new unconnected TCP socket of `family` (AF_INET/AF_INET6), e.g. one created inside
 * a pod's network namespace, or -errno. The pool takes ownership of the fd and makes it
 * non-blocking and close-on-exec itself. */
typedef int (*zt_pool_socket_cb)(int family, void *arg);

/* Defaults from zt_pool_opts_default() in brackets. */
struct zt_pool_opts {
	/* TLS12_ENABLED and key exchange groups (copied by zt_pool_new) [NULL: defaults]. */
	const struct zt_tls_opts *tls;
	/* Client HTTP/2 settings (spec §2.3) [zt_h2_settings_default(client)]. */
	struct zt_h2_settings h2;
	/* POOL_MAX_STREAMS_PER_CONNECTION [100]. */
	uint32_t max_streams;
	/* POOL_UNUSED_RELEASE_TIMEOUT: a connection without a new stream for this long leaves
	 * the pool and closes once its last stream ends [5 min]. */
	uint64_t idle_ms;
	/* TCP connect timeout, spec §1.2 [10 s]. */
	uint64_t connect_timeout_ms;
	/* TLS handshake plus the wait for the peer's first SETTINGS [10 s]. */
	uint64_t handshake_timeout_ms;
	/* SO_MARK, TCP_NODELAY, keepalive, TCP_USER_TIMEOUT (spec §1.2) [zt_sockopt_default]. */
	struct zt_sockopt sock;
	/* Creates the sockets [NULL: socket(2) in the current network namespace]. */
	zt_pool_socket_cb socket_cb;
	void *socket_arg;
};

/* Fills the defaults listed above. */
void zt_pool_opts_default(struct zt_pool_opts *o);

/* The pool key (spec §2.7). Borrowed for the duration of zt_pool_connect(); the pool copies
 * what it keeps. */
struct zt_pool_key {
	/* Our identity: its SPIFFE ID is the key's source identity; the certificate is presented on
	 * new connections (a reference is kept, so the newest identity passed for a key is used
	 * for its next connection, e.g. after rotation). */
	struct zt_tls_identity *identity;
	const struct zt_spiffe *dst_ids; /* the server must prove one; 1..ZT_TLS_MAX_EXPECTED */
	size_t n_dst_ids;                /* order matters for the key, as in the reference */
	struct zt_sockaddr dst;          /* TCP next hop, e.g. <pod IP>:15008 */
	struct zt_ip src_ip;             /* bound as local address when family is set */
};

struct zt_pool_result {
	int err; /* 0, or: -errno (socket/connect), ZT_E_TIMEOUT, ZT_E_TLS,
	            ZT_E_IDENTITY, ZT_E_CLOSED, ZT_E_PROTO, ZT_E_CANCELLED */
	enum zt_close flag; /* ZT_CLOSE_OK (success or a local error: see err), CONNECT,
	                       NETWORK_POLICY, TLS_FAILURE, IDENTITY_ERROR, H2_HANDSHAKE_FAILURE */
	const char *reason;           /* "" on success; valid during the callback only */
	const struct zt_spiffe *peer; /* on success: the identity the server proved */
	bool reused;                  /* on success: the connection carried streams before */
};

/* Fires exactly once per request unless it was cancelled, always from the loop (never inside
 * zt_pool_connect). On success st is the CONNECT stream, already submitted with the caller's
 * headers and stream callbacks; it belongs to its HTTP/2 connection like any client stream
 * (the response arrives through the stream callbacks). On failure st is NULL. The request
 * handle is invalid once this runs. */
typedef void (*zt_pool_ready_cb)(struct zt_h2_stream *st, const struct zt_pool_result *r,
                                 void *arg);

/* Creates a pool on loop (borrowed; must outlive the pool and run until it is fully closed).
 * opts may be NULL for the defaults. Returns 0, ZT_E_RANGE (max_streams 0), or the errors of
 * zt_tls_client_new. */
int zt_pool_new(struct zt_pool **out, struct zt_loop *loop, const struct zt_pool_opts *opts);

/* Closes everything: requests still waiting get ready(ZT_E_CANCELLED) from inside this call,
 * connections being established are closed now, established ones are closed immediately
 * (their streams end with on_close(CANCEL) from the loop). The remaining memory is released
 * once the last connection has finished closing, so keep running the loop for an iteration.
 * Accepts NULL. May be called from any callback, including this pool's ready callbacks (the
 * other requests then still get exactly one callback each); not twice. */
void zt_pool_free(struct zt_pool *pool);

/* Opens a CONNECT stream for key with header block h[0..n) (copied; pseudo-headers first, see
 * zt_hbone_req_build) and stream callbacks cbs/arg (copied). ready(…, ready_arg) reports the
 * outcome. *req receives a handle for zt_pool_req_cancel. Returns 0, or ZT_E_RANGE (no
 * identity, n_dst_ids out of range, n 0 or over 64) or ZT_E_STATE (pool closing) with no
 * callback to follow. */
int zt_pool_connect(struct zt_pool *pool, const struct zt_pool_key *key,
                    const struct zt_h2_header *h, size_t n, const struct zt_h2_stream_cbs *cbs,
                    void *arg, zt_pool_ready_cb ready, void *ready_arg, struct zt_pool_req **req);

/* Withdraws a request whose ready callback has not run yet; it never will. A connection being
 * established for it keeps going (it will serve later requests). */
void zt_pool_req_cancel(struct zt_pool_req *req);

struct zt_pool_stats {
	uint64_t connects;  /* connection attempts started */
	uint64_t opened;    /* attempts that reached TLS + HTTP/2 */
	uint64_t failed;    /* attempts that failed */
	uint64_t streams;   /* CONNECT streams handed out */
	uint64_t reused;    /* ... of which on a connection that had carried one before */
	size_t connections; /* connections alive now, any state */
	size_t waiting;     /* requests waiting now */
	size_t keys;        /* keys with a connection or a waiting request */
};

void zt_pool_get_stats(const struct zt_pool *pool, struct zt_pool_stats *out);

/* For /config_dump and tests (new reference):
 * {"connects":N,"opened":N,"failed":N,"streams":N,"reused":N,"waiting":N,
 *  "keys":[{"source":"spiffe://…","destination":"ip:port","destination_identities":[…],
 *           "source_ip":"ip"|null,"waiting":N,
 *           "connections":[{"state":"connecting"|"handshaking"|"starting"|"ready"|
 *                                    "draining"|"failed",
 *                           "streams":N,"max_streams":N,"streams_total":N,
 *                           "peer":"spiffe://…"|null,
 *                           "age_ms":N,"unused_ms":N}]}]} */
json_t *zt_pool_dump(const struct zt_pool *pool);

#endif
