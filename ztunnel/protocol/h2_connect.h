/* One HTTP/2 client connector: TCP (by host name through zt_dial, or to an address on a socket
 * the caller may make, e.g. inside a pod's network namespace), then TLS (workload mTLS with
 * SPIFFE checks, or control-plane TLS with server-name checks), then an HTTP/2 client
 * connection with the caller's settings and callbacks. Used by the HBONE pool, the xDS client
 * and the CA client. Every start reports exactly once, from the loop (never inside
 * zt_h2_connect_start), unless cancelled first. */
#ifndef ZT_H2_CONNECT_H
#define ZT_H2_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/h2.h"
#include "protocol/spiffe.h"
#include "protocol/tls.h"
#include "runtime/addr.h"
#include "runtime/loop.h"

struct zt_h2_connect;

/* Where an attempt is, or where it failed. */
enum zt_h2_connect_stage {
	ZT_H2_CONNECT_TCP, /* name lookup, socket, TCP connect */
	ZT_H2_CONNECT_TLS, /* TLS handshake and peer checks */
	ZT_H2_CONNECT_H2,  /* HTTP/2 start (preface and SETTINGS sent) */
};

/* Makes the socket for opts.addr: non-blocking, options set, bound if wanted. Returns the fd
 * (taken by the connector) or -errno with *what naming the step that failed. */
typedef int (*zt_h2_connect_socket_cb)(int family, const char **what, void *arg);
/* Called on a socket zt_dial connected, before TLS starts (socket options). */
typedef void (*zt_h2_connect_prepare_cb)(int fd, void *arg);

struct zt_h2_connect_opts {
	/* Destination: host (DNS name or IP literal, resolved off the loop) and port, or, when
	 * host is NULL, addr. */
	const char *host;
	uint16_t port;
	struct zt_sockaddr addr;
	zt_h2_connect_socket_cb socket_cb; /* for addr [NULL: socket(2) here] */
	zt_h2_connect_prepare_cb prepare;  /* for host [NULL: nothing] */
	void *sock_arg;                    /* for both */
	uint64_t connect_timeout_ms;       /* lookup + TCP connect; > 0 */
	uint64_t handshake_timeout_ms;     /* TLS handshake; > 0 */
	/* TLS context (a reference is held while the attempt runs). Workload mTLS when identity
	 * is set: present it, the server must prove one of expected[0..n_expected). Else
	 * control plane: the server must name verify_host (also accepting alt_host if set). */
	struct zt_tls_client *tls;
	struct zt_tls_identity *identity;
	const struct zt_spiffe *expected;
	size_t n_expected;
	const char *verify_host, *alt_host;
	/* The HTTP/2 connection to make: our settings, its callbacks and their argument. */
	const struct zt_h2_settings *h2;
	const struct zt_h2_conn_cbs *cbs;
	void *cbs_arg;
};

struct zt_h2_connect_result {
	int err; /* 0, or -errno, ZT_E_NOTFOUND, ZT_E_TIMEOUT, ZT_E_TLS, ZT_E_IDENTITY,
	            ZT_E_CLOSED, or the errors of zt_h2_conn_new */
	enum zt_h2_connect_stage stage; /* where it failed (H2 on success) */
	const char *reason;             /* "" on success; valid during the callback only */
	const struct zt_spiffe *peer;   /* on success with mTLS: the identity the server proved */
	uint64_t handshake_ms;          /* time the TLS handshake took */
};

/* h2: the new connection (owned by the caller, its callbacks are opts.cbs) or NULL on failure.
 * The connector is freed after this returns; its handle is then invalid. */
typedef void (*zt_h2_connect_cb)(struct zt_h2_conn *h2, const struct zt_h2_connect_result *r,
                                 void *arg);

/* Starts an attempt; opts and what it points to are copied. Returns the handle, or NULL with
 * *err = ZT_E_RANGE (no destination, no TLS context, timeouts 0, host over 253 bytes,
 * n_expected out of range, no verify_host without an identity) and no callback to follow. */
struct zt_h2_connect *zt_h2_connect_start(struct zt_loop *loop,
                                          const struct zt_h2_connect_opts *opts,
                                          zt_h2_connect_cb cb, void *arg, int *err);

/* Abandons an attempt whose callback has not run: closes what it opened; cb never runs.
 * Accepts NULL. */
void zt_h2_connect_cancel(struct zt_h2_connect *c);

/* Where the attempt is now (for dumps). */
enum zt_h2_connect_stage zt_h2_connect_stage(const struct zt_h2_connect *c);

#endif
