/* Spec §6 evaluation. Identity-derived attributes are computed once per connection: the
 * principal is the peer SPIFFE ID without "spiffe://", the namespace is the peer's (empty
 * without identity). Without identity no positive principal or service account matches,
 * not even presence, so their not_ forms always hold. A decision evaluates only the rules a
 * policy's port index leaves for the destination port, and stops at the first enforced
 * ALLOW policy that matches (DENY policies are walked first), which gives the same verdict
 * and reason as evaluating every rule of every selected policy in order. */
#include "state/authz.h"

#include <stdio.h>
#include <string.h>

#include "runtime/log.h"

ZT_LOG_MODULE("authz");

struct peer {
	const struct zt_authz_conn *c;
	const char *principal; /* NULL without identity */
	const char *ns;        /* "" without identity */
	size_t principal_len, ns_len;
	char buf[ZT_SPIFFE_STR_SIZE];
};

static bool str_matches(const struct zt_string_match *m, const char *s, size_t n)
{
	size_t k = m->len;

	switch (m->kind) {
	case ZT_MATCH_EXACT:
		return n == k && memcmp(s, m->value, k) == 0;
	case ZT_MATCH_PREFIX:
		return n >= k && memcmp(s, m->value, k) == 0;
	case ZT_MATCH_SUFFIX:
		return n >= k && memcmp(s + n - k, m->value, k) == 0;
	case ZT_MATCH_PRESENCE:
		return n > 0;
	}
	return false;
}

static bool any_str(const struct zt_string_match *v, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; s && i < n; i++)
		if (str_matches(&v[i], s, len))
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
	return POS(m->n_namespaces, any_str(m->namespaces, m->n_namespaces, p->ns, p->ns_len)) &&
	       NEG(any_str(m->not_namespaces, m->n_not_namespaces, p->ns, p->ns_len)) &&
	       POS(m->n_principals,
	           any_str(m->principals, m->n_principals, p->principal, p->principal_len)) &&
	       NEG(any_str(m->not_principals, m->n_not_principals, p->principal,
	                   p->principal_len)) &&
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

static bool rule_matches(const struct zt_policy_rule *rule, const struct peer *p)
{
	for (size_t i = 0; i < rule->n_clauses; i++) {
		const struct zt_policy_clause *cl = &rule->clauses[i];
		bool any = cl->n_matches == 0;
		for (size_t j = 0; !any && j < cl->n_matches; j++)
			any = match_holds(&cl->matches[j], p);
		if (!any)
			return false;
	}
	return true;
}

/* Every rule, in order: the definition the port index must agree with. */
static bool policy_matches_all(const struct zt_policy *pol, const struct peer *p)
{
	for (size_t r = 0; r < pol->n_rules; r++)
		if (rule_matches(&pol->rules[r], p))
			return true;
	return false;
}

/* Only the rules that can hold on the destination port (policy.h: the port index). */
static bool policy_matches(const struct zt_policy *pol, const struct peer *p)
{
	const struct zt_policy_port_rule *v = pol->port_rules_;
	size_t lo = 0, hi = pol->n_port_rules_;
	uint32_t port = p->c->dst_port;

	/* Most policies are decided here without reading their rules. */
	if (!pol->n_any_rules_ && !(pol->port_bits_ & (1ull << (port % 64))))
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].port < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < pol->n_port_rules_ && v[lo].port == port; lo++)
		if (rule_matches(&pol->rules[v[lo].rule], p))
			return true;
	for (size_t i = 0; i < pol->n_any_rules_; i++)
		if (rule_matches(&pol->rules[pol->any_rules_[i]], p))
			return true;
	return false;
}

/* principal = "td/ns/NS/sa/SA": the SPIFFE ID without its scheme. */
static void peer_init(struct peer *p, const struct zt_authz_conn *c)
{
	const struct zt_spiffe *id = c->src_id;

	p->c = c;
	p->principal = NULL;
	p->principal_len = 0;
	p->ns = "";
	p->ns_len = 0;
	if (id) {
		size_t td = strlen(id->td), ns = strlen(id->ns), sa = strlen(id->sa), n = 0;
		if (td + ns + sa + 8 > sizeof(p->buf))
			return;
		memcpy(p->buf, id->td, td);
		n += td;
		memcpy(p->buf + n, "/ns/", 4);
		n += 4;
		memcpy(p->buf + n, id->ns, ns);
		n += ns;
		memcpy(p->buf + n, "/sa/", 4);
		n += 4;
		memcpy(p->buf + n, id->sa, sa);
		n += sa;
		p->buf[n] = '\0';
		p->principal = p->buf;
		p->principal_len = n;
		p->ns = id->ns;
		p->ns_len = ns;
	}
}

bool zt_authz_policy_matches(const struct zt_policy *pol, const struct zt_authz_conn *c)
{
	struct peer p;

	peer_init(&p, c);
	return policy_matches_all(pol, &p);
}

struct eval {
	struct peer peer;
	const struct zt_policy *deny, *allow;
	bool have_allow;
};

static int visit(struct zt_policy *pol, void *arg)
{
	struct eval *e = arg;

	if (pol->dry_run) {
		bool m = policy_matches(pol, &e->peer);
		if (pol->action == ZT_POLICY_DENY && m)
			zt_info("dry-run: connection to %s would be denied by %s",
			        e->peer.c->dst->uid, pol->key);
		else if (pol->action == ZT_POLICY_ALLOW)
			zt_info("dry-run: allow policy %s %s connection to %s", pol->key,
			        m ? "matches" : "does not match", e->peer.c->dst->uid);
		return 0;
	}
	/* DENY and dry-run policies come first (zt_store_foreach_policy_for): once denied,
	 * only dry-run policies still need evaluating; once an enforced ALLOW is reached, the
	 * first that matches decides, and its mere presence decides a denied connection. */
	if (pol->action == ZT_POLICY_DENY) {
		if (!e->deny && policy_matches(pol, &e->peer))
			e->deny = pol;
		return 0;
	}
	e->have_allow = true;
	if (e->deny)
		return 1;
	if (policy_matches(pol, &e->peer)) {
		e->allow = pol;
		return 1;
	}
	return 0;
}

enum zt_authz_verdict zt_authz_check(const struct zt_store *store, const struct zt_authz_conn *conn,
                                     char *why, size_t whylen)
{
	struct eval e = {0};
	enum zt_authz_verdict v;
	bool skipped_allow;

	peer_init(&e.peer, conn);
	zt_store_foreach_policy_on_port(store, conn->dst, conn->dst_port, &skipped_allow, visit,
	                                &e);
	e.have_allow |= skipped_allow;
	if (e.deny) {
		v = ZT_AUTHZ_DENY;
		if (why && whylen)
			snprintf(why, whylen, "explicitly denied by: %s", e.deny->key);
	} else if (!e.have_allow) {
		v = ZT_AUTHZ_ALLOW;
		if (why && whylen)
			snprintf(why, whylen, "no allow policies");
	} else if (e.allow) {
		v = ZT_AUTHZ_ALLOW;
		if (why && whylen)
			snprintf(why, whylen, "allowed by: %s", e.allow->key);
	} else {
		v = ZT_AUTHZ_DENY;
		if (why && whylen)
			snprintf(why, whylen, "allow policies exist, but none allowed");
	}
	return v;
}
