/* How a proxied connection ends: one enum and one table of static texts (after HAProxy's
 * termination codes). The response flag feeds the metric label response_flags and marks the
 * connection failed (spec §8.1); the reason is the access log's error= when no more precise
 * detail is known. Free-form detail (peer text, errno) goes only into the access log's error,
 * never into labels. */
#ifndef ZT_CLOSE_H
#define ZT_CLOSE_H

#include <stdbool.h>

enum zt_close {
	ZT_CLOSE_OK,                   /* "-": no error */
	ZT_CLOSE_ERROR,                /* "-": an I/O or protocol error ended it */
	ZT_CLOSE_DENY,                 /* "DENY": refused by authorization */
	ZT_CLOSE_CONNECT,              /* "CONNECT": TCP connect failed (refused, unreachable) */
	ZT_CLOSE_NETWORK_POLICY,       /* "NETWORK_POLICY": TCP connect to 15008 timed out */
	ZT_CLOSE_TLS_FAILURE,          /* "TLS_FAILURE": TLS handshake failed or timed out */
	ZT_CLOSE_IDENTITY_ERROR,       /* "IDENTITY_ERROR": no acceptable identity, or no cert */
	ZT_CLOSE_H2_HANDSHAKE_FAILURE, /* "H2_HANDSHAKE_FAILURE": HTTP/2 could not start */
	ZT_CLOSE_POLICY_CHANGE,        /* "-": a relay the policies no longer allow */
	ZT_CLOSE_NO_SOURCE,            /* "-": the source workload never appeared */
	ZT_CLOSE_SELF,                 /* "-": a CONNECT back to this ztunnel */
	ZT_CLOSE_STOPPED,              /* "-": the workload proxy stopped */
};

/* The response flag: "-", "DENY", "CONNECT", ... (static). */
const char *zt_close_flag(enum zt_close c);
/* The reason text (static): NULL for ZT_CLOSE_OK. */
const char *zt_close_reason(enum zt_close c);
/* Whether the flag is not "-" (counted in istio_tcp_connections_failed_total). */
bool zt_close_failed(enum zt_close c);

#endif
