/* L4 authorization policies decoded from istio.security.Authorization (spec §3.6). A struct
 * zt_policy is immutable and reference counted; an update builds a new one. Names follow
 * ztunnel: a policy has rules (OR), a rule has clauses (AND), a clause has matches (OR). */
#ifndef ZT_STATE_POLICY_H
#define ZT_STATE_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "istio/security/authorization.pb-c.h"
#include "runtime/addr.h"
#include "runtime/arena.h"

/* Numeric values equal the protobuf enums; unknown values are rejected at decode time. */
enum zt_policy_scope {
	ZT_POLICY_GLOBAL = 0,
	ZT_POLICY_NAMESPACE = 1,
	ZT_POLICY_WORKLOAD_SELECTOR = 2,
};
enum zt_policy_action { ZT_POLICY_ALLOW = 0, ZT_POLICY_DENY = 1 };

enum zt_string_match_kind {
	ZT_MATCH_EXACT = 1,
	ZT_MATCH_PREFIX = 2,
	ZT_MATCH_SUFFIX = 3,
	ZT_MATCH_PRESENCE = 4, /* any non-empty value */
};
struct zt_string_match {
	enum zt_string_match_kind kind;
	const char *value; /* "" for PRESENCE */
	size_t len;        /* strlen(value) */
};

struct zt_sa_match {
	const char *ns, *sa;
};

/* Every populated group must hold; within a positive list any element may match; a not_
 * list must have no element matching. A match with every list empty matches nothing. */
struct zt_policy_match {
	const struct zt_string_match *namespaces, *not_namespaces;
	size_t n_namespaces, n_not_namespaces;
	const struct zt_string_match *principals, *not_principals; /* without spiffe:// */
	size_t n_principals, n_not_principals;
	const struct zt_cidr *source_ips, *not_source_ips;
	size_t n_source_ips, n_not_source_ips;
	const struct zt_cidr *destination_ips, *not_destination_ips;
	size_t n_destination_ips, n_not_destination_ips;
	const uint32_t *destination_ports, *not_destination_ports; /* as sent */
	size_t n_destination_ports, n_not_destination_ports;
	const struct zt_sa_match *service_accounts, *not_service_accounts;
	size_t n_service_accounts, n_not_service_accounts;
};

struct zt_policy_clause {
	const struct zt_policy_match *matches;
	size_t n_matches;
};

struct zt_policy_rule {
	const struct zt_policy_clause *clauses;
	size_t n_clauses;
};

/* One entry of a policy's port index: rule `rule` can only match connections to `port`. */
struct zt_policy_port_rule {
	uint32_t port;
	uint32_t rule;
};

struct zt_policy {
	/* First, in one cache line with the port index summary: what a decision reads of
	 * every selected policy. */
	enum zt_policy_scope scope;
	enum zt_policy_action action;
	bool dry_run;
	size_t n_rules;
	const struct zt_policy_rule *rules;
	const char *name; /* non-empty */
	const char *ns;
	const char *key; /* "ns/name": resource name and store key */

	/* private: the rules by destination port, built at decode time. A rule with a clause
	 * whose every match names destination ports can only hold on one of those ports: it is
	 * listed under each (sorted by port, then rule); every other rule is in any_rules_. */
	uint64_t port_bits_; /* bit (port % 64) set for every port in port_rules_ */
	size_t n_any_rules_;
	const struct zt_policy_port_rule *port_rules_;
	size_t n_port_rules_;
	const uint32_t *any_rules_;
	atomic_uint refs_;
	struct zt_arena arena_;
} __attribute__((aligned(64)));

/* Decodes pb (borrowed) into a new policy with one reference. Rejects with a reason: empty
 * name, unknown scope or action, a StringMatch with no value, an address that is not 4 or 16
 * bytes or whose prefix length is too long. Returns 0 or ZT_E_PROTO (*out NULL). */
int zt_policy_decode(const Istio__Security__Authorization *pb, struct zt_policy **out, char *err,
                     size_t errlen);

/* New reference; returns p (NULL allowed). */
struct zt_policy *zt_policy_ref(struct zt_policy *p);
/* Drops a reference, freeing on the last one. NULL ok. */
void zt_policy_unref(struct zt_policy *p);

/* The ports p can hold on, as a mask of bit (port % 64): a rule can only match a connection to
 * port when bit port % 64 is set. All bits for a dry-run policy (always evaluated, to be
 * logged) or one with a rule that holds on any port. */
static inline uint64_t zt_policy_port_mask(const struct zt_policy *p)
{
	return p->dry_run || p->n_any_rules_ ? UINT64_MAX : p->port_bits_;
}

static inline bool zt_policy_may_hold_on(uint64_t mask, uint16_t port)
{
	return (mask >> (port % 64)) & 1;
}

/* True if every list of m is empty. */
bool zt_policy_match_is_empty(const struct zt_policy_match *m);

#endif
