/* The inbound half of a workload proxy (spec §7.2, §7.3): the 15008 HBONE server (mTLS with
 * the workload's certificate, HTTP/2 CONNECT streams) and the 15006 plaintext capture, each
 * proxied connection checked against the L4 policies (spec §6) when it starts and again
 * whenever the policies or the workload change. */
#ifndef ZT_INBOUND_H
#define ZT_INBOUND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/shared.h"

/* How long a CONNECT (or a plaintext connection) waits for the proxied workload to appear in
 * xDS before it is refused (503 / close), and how long an accepted HBONE connection is held
 * while the workload's certificate is being fetched. */
#define ZT_INBOUND_WORKLOAD_WAIT_MS 5000
#define ZT_INBOUND_CERT_WAIT_MS     5000
/* TLS handshake deadline (short: the peer is not authenticated yet) and upstream connect
 * timeout (spec §1.2). */
#define ZT_INBOUND_HANDSHAKE_MS 5000
#define ZT_INBOUND_CONNECT_MS   10000
/* Authenticated HBONE connections one proxy keeps at once. */
#define ZT_INBOUND_MAX_CONNS 4096
/* Connections not authenticated yet (held for a certificate or in the TLS handshake) have a
 * budget of their own: when it is full the oldest of them makes room for the newcomer, so
 * unauthenticated peers can neither refuse an authenticated one nor starve new handshakes. */
#define ZT_INBOUND_MAX_PENDING 512
/* Streams a client may reset before their CONNECT response, per HBONE connection and second;
 * more is a rapid-reset attack and ends the connection with GOAWAY ENHANCE_YOUR_CALM. */
#define ZT_INBOUND_MAX_EARLY_RESETS 100

/* Opens p's plaintext and (with certificates) HBONE listeners. Returns 0 or -errno with err. */
int zt_inbound_start(struct zt_proxy *p, char *err, size_t errlen);
/* Closes the listeners and every inbound connection of p (each reports its close). */
void zt_inbound_stop(struct zt_proxy *p);
/* For /config_dump (new reference). */
json_t *zt_inbound_dump(const struct zt_proxy *p);
/* Drain (spec §14): closes the listeners and sends GOAWAY on every serving HBONE connection
 * (and on those whose handshake completes later); proxied connections go on. */
void zt_inbound_drain(struct zt_proxy *p);
/* Proxied inbound connections of p not yet closed. */
size_t zt_inbound_open(const struct zt_proxy *p);

struct zt_inbound_stats {
	size_t hbone_conns;      /* TLS/HTTP/2 connections: held, handshaking or serving */
	size_t held;             /* ... of which waiting for the workload's certificate */
	size_t live;             /* proxied connections of this proxy not yet closed */
	uint64_t accepted_hbone; /* TCP connections accepted on the HBONE port */
	uint64_t accepted_plain; /* TCP connections accepted on the plaintext port */
	uint64_t tls_failed;     /* handshakes that failed or timed out, certificate waits too */
	uint64_t streams;        /* CONNECT requests received */
	uint64_t rejected;       /* refused before relaying (4xx/5xx or closed), denials too */
	uint64_t denied;         /* ... of which by authorization (401 or close) */
	uint64_t relayed;        /* connections that reached the byte pump */
	uint64_t policy_closed;  /* relays ended by a policy re-check */
};

/* Fills out for p's inbound half. Returns 0, or ZT_E_STATE when the half is not running. */
int zt_inbound_get_stats(const struct zt_proxy *p, struct zt_inbound_stats *out);

/* Replaces ZT_INBOUND_WORKLOAD_WAIT_MS for connections that start after the call (tests). */
void zt_inbound_set_workload_wait(struct zt_proxy *p, uint64_t ms);

/* Proxied inbound connections alive in the process, including those of stopped proxies whose
 * close is still being reported. */
long zt_inbound_live(void);

#endif
