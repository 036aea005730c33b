/* The L4 authorization decision of spec §6 by a scan of every policy in the store: the
 * reference the scoped lookup of zt_authz_check is compared with (authz_bench times both,
 * test_authz checks they agree on random policies and connections). Not used by ztunnel.
 * Invariant: it shares no selection or indexing code with zt_authz_check, only the
 * all-rules evaluation of one policy (zt_authz_policy_matches). */
#ifndef ZT_BENCH_AUTHZ_REF_H
#define ZT_BENCH_AUTHZ_REF_H

#include <stdbool.h>
#include <string.h>

#include "state/authz.h"
#include "state/store.h"

struct authz_ref {
	const struct zt_authz_conn *c;
	bool deny, have_allow, allow;
};

/* Whether p applies to w: GLOBAL, NAMESPACE in w's namespace, or named by w. */
static inline bool authz_ref_applies(const struct zt_policy *p, const struct zt_workload *w)
{
	if (p->scope == ZT_POLICY_GLOBAL)
		return true;
	if (p->scope == ZT_POLICY_NAMESPACE && strcmp(p->ns, w->ns) == 0)
		return true;
	for (size_t i = 0; i < w->n_authorization_policies; i++)
		if (strcmp(w->authorization_policies[i], p->key) == 0)
			return true;
	return false;
}

static inline int authz_ref_visit(struct zt_policy *p, void *arg)
{
	struct authz_ref *r = arg;

	if (p->dry_run || !authz_ref_applies(p, r->c->dst))
		return 0;
	if (p->action == ZT_POLICY_DENY) {
		r->deny = r->deny || zt_authz_policy_matches(p, r->c);
	} else {
		r->have_allow = true;
		r->allow = r->allow || zt_authz_policy_matches(p, r->c);
	}
	return 0;
}

static inline enum zt_authz_verdict authz_ref_check(const struct zt_store *st,
                                                    const struct zt_authz_conn *c)
{
	struct authz_ref r = {.c = c};

	zt_store_foreach_policy(st, authz_ref_visit, &r);
	if (r.deny)
		return ZT_AUTHZ_DENY;
	return !r.have_allow || r.allow ? ZT_AUTHZ_ALLOW : ZT_AUTHZ_DENY;
}

#endif
