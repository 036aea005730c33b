/* Access log (spec §8.2): one "connection complete" line per proxied connection when it closes
 * (info, or error with error=...), "connection failed" (warn) for early denials, and
 * "connection opened" at debug. Lines go through runtime/log.h under module "access", so
 * RUST_LOG-style levels ("access=off") and the text/JSON formats apply; field keys are the
 * dotted names of the reference, in its order, and empty fields are left out. */
#ifndef ZT_ACCESSLOG_H
#define ZT_ACCESSLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/addr.h"

enum zt_direction { ZT_DIR_OUTBOUND, ZT_DIR_INBOUND };

/* Everything borrowed for the call. Strings NULL or "" and addresses with family 0 are left
 * out. */
struct zt_access_entry {
	struct zt_sockaddr src_addr;
	const char *src_workload;
	const char *src_namespace;
	const char *src_identity; /* logged only with mtls */
	const char *src_cluster;
	struct zt_sockaddr dst_addr; /* TCP next hop, e.g. 10.0.0.5:15008 (inbound: pod IP:15008) */
	const char *dst_hbone_addr;  /* CONNECT authority */
	const char *dst_service;
	const char *dst_workload;
	const char *dst_namespace;
	const char *dst_identity; /* logged only with mtls */
	const char *dst_cluster;
	bool mtls;
	enum zt_direction direction;
	/* As the relay counts them: up = client to server, down = server to client. The log
	 * shows them from the local application's side: outbound bytes_sent = up, inbound
	 * bytes_sent = down. */
	uint64_t bytes_up, bytes_down;
	uint64_t duration_ms;
	const char *error; /* NULL: success */
};

/* "connection complete": info, or error when e->error is set. */
void zt_access_log(const struct zt_access_entry *e);
/* "connection opened" at debug: the identifying fields only (no bytes, duration, error). */
void zt_access_log_opened(const struct zt_access_entry *e);
/* "connection failed" at warn, before the connection's context is known. src, dst may be
 * NULL. */
void zt_access_log_failed(const struct zt_sockaddr *src, const struct zt_sockaddr *dst,
                          enum zt_direction dir, const char *error);

const char *zt_direction_name(enum zt_direction dir);

#endif
