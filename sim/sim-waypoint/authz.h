/* The waypoint's L4+L7 authorization decision (spec §18, semantics of spec §6 and Envoy's
 * RBAC filter): pure, no I/O. Input is the waypoint's ztunnel.waypoint.Waypoint resource and
 * what is known of one request; output is allow or deny with the deciding policy and a
 * reason. Order: DENY policies first (any match denies), then ALLOW policies (if any applies,
 * one must match), else allow. AUDIT policies are matched and reported only; dry-run
 * policies are matched and reported but never decide. Attributes the connection cannot
 * provide (HTTP-only ones on a TCP stream, parts fake-istiod marked unevaluable) make an
 * ALLOW or AUDIT rule never match and are ignored by a DENY rule, so both fail closed. */
#ifndef WP_AUTHZ_H
#define WP_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/addr.h"
#include "ztunnel/waypoint.pb-c.h"

struct wp_header {
	const char *name; /* lower-case */
	const char *value;
};

/* One request (or one TCP connection when !http). Every pointer is borrowed; NULL strings
 * count as absent. */
struct wp_request {
	const char *principal; /* source SPIFFE ID without "spiffe://"; NULL: unauthenticated */
	const char *src_ns, *src_sa;
	struct zt_ip src_ip; /* the downstream's address (TCP peer of the HBONE connection) */
	struct zt_ip dst_ip; /* the CONNECT authority's address (family 0: a host name) */
	uint16_t dst_port;
	const char *service; /* "<ns>/<hostname>" of the destination Service, or NULL */
	bool http;           /* the L7 attributes below are known */
	const char *method, *path, *host;
	const struct wp_header *headers;
	size_t n_headers;
};

#define WP_AUTHZ_REASON_MAX 256

struct wp_decision {
	bool allow;
	/* The policy that decided: the matching DENY, the matching ALLOW, or NULL (no ALLOW
	 * policy applies, or none matched). Borrowed from the Waypoint. */
	const Ztunnel__Waypoint__Policy *policy;
	char reason[WP_AUTHZ_REASON_MAX];  /* e.g. "denied by shop/no-writes" */
	char audit[WP_AUTHZ_REASON_MAX];   /* "ns/name" of matching AUDIT policies, or "" */
	char dry_run[WP_AUTHZ_REASON_MAX]; /* "ns/name=ALLOW|DENY" of matching dry-run ones */
};

/* Decides rq against w (NULL: no policies, allow). out is fully written. Returns out->allow. */
bool wp_authz_check(const Ztunnel__Waypoint__Waypoint *w, const struct wp_request *rq,
                    struct wp_decision *out);

/* Istio's string match: "*" matches any non-empty value, "*x" a suffix, "x*" a prefix, else
 * exact; with nocase, ASCII case is ignored. */
bool wp_authz_str_match(const char *pattern, const char *value, bool nocase);

#endif
