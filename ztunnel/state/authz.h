/* The L4 authorization decision of spec §6: which policies apply to a destination workload
 * and whether they allow a connection. Pure: reads the store, writes only a log line for
 * dry-run policies, does no I/O of its own. */
#ifndef ZT_STATE_AUTHZ_H
#define ZT_STATE_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/spiffe.h"
#include "runtime/addr.h"
#include "state/policy.h"
#include "state/store.h"

enum zt_authz_verdict { ZT_AUTHZ_ALLOW = 0, ZT_AUTHZ_DENY = 1 };

/* What is known about an inbound connection; everything is borrowed. */
struct zt_authz_conn {
	struct zt_ip src_ip;
	struct zt_ip dst_ip;
	uint16_t dst_port;              /* the port ztunnel connects to (resolved target port) */
	const struct zt_spiffe *src_id; /* peer identity; NULL for plaintext (no identity) */
	const struct zt_workload *dst;  /* destination workload; required */
};

/* Decides conn against the policies selected for conn->dst (zt_store_foreach_policy_for):
 * dry-run policies are evaluated and logged only; any matching enforced DENY denies; then,
 * with no enforced ALLOW policy the connection is allowed, else one must match. why (may be
 * NULL) receives the reason: "explicitly denied by: ns/name", "allow policies exist, but none
 * allowed", "allowed by: ns/name" or "no allow policies". */
enum zt_authz_verdict zt_authz_check(const struct zt_store *store, const struct zt_authz_conn *conn,
                                     char *why, size_t whylen);

/* Whether policy p's rules match conn (its action and dry_run are not considered): any rule
 * whose clauses all hold, a clause holding when it has no matches or any non-empty match
 * holds. A policy with no rules never matches. */
bool zt_authz_policy_matches(const struct zt_policy *p, const struct zt_authz_conn *conn);

#endif
