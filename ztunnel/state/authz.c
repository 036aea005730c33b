/* Spec §6 evaluation. Identity-derived attributes are computed once per connection: the
 * principal is the peer SPIFFE ID without "spiffe://", the namespace is the peer's (empty
 * without identity). Without identity no positive principal or service account matches,
 * not even presence, so their not_ forms always hold. */
#include "state/authz.h"

#include <stdio.h>
#include <string.h>

#include "runtime/log.h"

ZT_LOG_MODULE("authz");

#define SPIFFE_SCHEME "spiffe://"

struct peer {
	const struct zt_authz_conn *c;
	const char *principal; /* NULL without identity */
	const char *ns;        /* "" without identity */
	char buf[ZT_SPIFFE_STR_SIZE];
};

static bool str_matches(const struct zt_string_match *m, const char *s)
{
	size_t n = strlen(s), k = strlen(m->value);

	switch (m->kind) {
	case ZT_MATCH_EXACT:
		return strcmp(s, m->value) == 0;
	case ZT_MATCH_PREFIX:
		return n >= k && memcmp(s, m->value, k) == 0;
	case ZT_MATCH_SUFFIX:
		return n >= k && memcmp(s + n - k, m->value, k) == 0;
	case ZT_MATCH_PRESENCE:
		return n > 0;
	}
	return false;
}

static bool any_str(const struct zt_string_match *v, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (str_matches(&v[i], s))
			return true;
	return false;
}

static bool any_cidr(const struct zt_cidr *v, size_t n, const struct zt_ip *ip)
{
	for (size_t i = 0; i < n; i++)
		if (zt_cidr_contains(&v[i], ip))
			return true;
	return false;
}

static bool any_port(const uint32_t *v, size_t n, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == port)
			return true;
	return false;
}

static bool any_sa(const struct zt_sa_match *v, size_t n, const struct zt_spiffe *id)
{
	for (size_t i = 0; id && i < n; i++)
		if (strcmp(v[i].ns, id->ns) == 0 && strcmp(v[i].sa, id->sa) == 0)
			return true;
	return false;
}

/* A positive list holds when empty or any element matches; a not_ list when none does. */
#define POS(n, any) ((n) == 0 || (any))
#define NEG(any)    (!(any))

static bool match_holds(const struct zt_policy_match *m, const struct peer *p)
{
	const struct zt_authz_conn *c = p->c;

	if (zt_policy_match_is_empty(m))
		return false;
	return POS(m->n_namespaces, any_str(m->namespaces, m->n_namespaces, p->ns)) &&
	       NEG(any_str(m->not_namespaces, m->n_not_namespaces, p->ns)) &&
	       POS(m->n_principals, any_str(m->principals, m->n_principals, p->principal)) &&
	       NEG(any_str(m->not_principals, m->n_not_principals, p->principal)) &&
	       POS(m->n_source_ips, any_cidr(m->source_ips, m->n_source_ips, &c->src_ip)) &&
	       NEG(any_cidr(m->not_source_ips, m->n_not_source_ips, &c->src_ip)) &&
	       POS(m->n_destination_ips,
	           any_cidr(m->destination_ips, m->n_destination_ips, &c->dst_ip)) &&
	       NEG(any_cidr(m->not_destination_ips, m->n_not_destination_ips, &c->dst_ip)) &&
	       POS(m->n_destination_ports,
	           any_port(m->destination_ports, m->n_destination_ports, c->dst_port)) &&
	       NEG(any_port(m->not_destination_ports, m->n_not_destination_ports, c->dst_port)) &&
	       POS(m->n_service_accounts,
	           any_sa(m->service_accounts, m->n_service_accounts, c->src_id)) &&
	       NEG(any_sa(m->not_service_accounts, m->n_not_service_accounts, c->src_id));
}

static bool policy_matches(const struct zt_policy *pol, const struct peer *p)
{
	for (size_t r = 0; r < pol->n_rules; r++) {
		const struct zt_policy_rule *rule = &pol->rules[r];
		bool all = true;
		for (size_t i = 0; all && i < rule->n_clauses; i++) {
			const struct zt_policy_clause *cl = &rule->clauses[i];
			bool any = cl->n_matches == 0;
			for (size_t j = 0; !any && j < cl->n_matches; j++)
				any = match_holds(&cl->matches[j], p);
			all = any;
		}
		if (all)
			return true;
	}
	return false;
}

static void peer_init(struct peer *p, const struct zt_authz_conn *c)
{
	p->c = c;
	p->principal = NULL;
	p->ns = "";
	if (c->src_id && zt_spiffe_format(c->src_id, p->buf, sizeof(p->buf)) > 0) {
		p->principal = p->buf + strlen(SPIFFE_SCHEME);
		p->ns = c->src_id->ns;
	}
}

bool zt_authz_policy_matches(const struct zt_policy *pol, const struct zt_authz_conn *c)
{
	struct peer p;

	peer_init(&p, c);
	return policy_matches(pol, &p);
}

struct eval {
	struct peer peer;
	const struct zt_policy *deny, *allow;
	bool have_allow;
};

static int visit(struct zt_policy *pol, void *arg)
{
	struct eval *e = arg;
	bool m = policy_matches(pol, &e->peer);

	if (pol->dry_run) {
		if (pol->action == ZT_POLICY_DENY && m)
			zt_info("dry-run: connection to %s would be denied by %s",
			        e->peer.c->dst->uid, pol->key);
		else if (pol->action == ZT_POLICY_ALLOW)
			zt_info("dry-run: allow policy %s %s connection to %s", pol->key,
			        m ? "matches" : "does not match", e->peer.c->dst->uid);
		return 0;
	}
	if (pol->action == ZT_POLICY_DENY) {
		if (m && !e->deny)
			e->deny = pol;
	} else {
		e->have_allow = true;
		if (m && !e->allow)
			e->allow = pol;
	}
	return 0;
}

enum zt_authz_verdict zt_authz_check(const struct zt_store *store, const struct zt_authz_conn *conn,
                                     char *why, size_t whylen)
{
	struct eval e = {0};
	enum zt_authz_verdict v;
	char tmp[8];

	if (!why || whylen == 0) {
		why = tmp;
		whylen = sizeof(tmp);
	}
	peer_init(&e.peer, conn);
	zt_store_foreach_policy_for(store, conn->dst, visit, &e);
	if (e.deny) {
		snprintf(why, whylen, "explicitly denied by: %s", e.deny->key);
		v = ZT_AUTHZ_DENY;
	} else if (!e.have_allow) {
		snprintf(why, whylen, "no allow policies");
		v = ZT_AUTHZ_ALLOW;
	} else if (e.allow) {
		snprintf(why, whylen, "allowed by: %s", e.allow->key);
		v = ZT_AUTHZ_ALLOW;
	} else {
		snprintf(why, whylen, "allow policies exist, but none allowed");
		v = ZT_AUTHZ_DENY;
	}
	return v;
}
