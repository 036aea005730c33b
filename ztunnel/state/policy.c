/* Authorization policy decoding and lifetime: every string and array of a policy lives in
 * its arena and the object is freed in one call. Evaluation is in authz.c. */
#include "state/policy.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/live.h"
#include "runtime/mem.h"
#include "state/reject.h"

ZT_LIVE_DEFINE(state_policy);

static_assert((int)ZT_POLICY_WORKLOAD_SELECTOR == (int)ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR,
              "enum");
static_assert((int)ZT_POLICY_DENY == (int)ISTIO__SECURITY__ACTION__DENY, "enum");
static_assert((int)ZT_MATCH_PRESENCE == (int)ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE,
              "enum");

static int strings(Istio__Security__StringMatch *const *pb, size_t n, struct zt_arena *a,
                   const struct zt_string_match **out, char *err, size_t errlen)
{
	struct zt_string_match *v = zt_arena_calloc(a, n, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		switch (pb[i]->match_type_case) {
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_EXACT:
			v[i].value = zt_arena_strdup(a, pb[i]->exact);
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PREFIX:
			v[i].value = zt_arena_strdup(a, pb[i]->prefix);
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_SUFFIX:
			v[i].value = zt_arena_strdup(a, pb[i]->suffix);
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE:
			v[i].value = "";
			break;
		default:
			return reject(err, errlen, "string match without a value");
		}
		v[i].kind = (enum zt_string_match_kind)pb[i]->match_type_case;
		v[i].len = strlen(v[i].value);
	}
	*out = v;
	return 0;
}

static int cidrs(Istio__Security__Address *const *pb, size_t n, struct zt_arena *a,
                 const struct zt_cidr **out, char *err, size_t errlen)
{
	struct zt_cidr *v = zt_arena_calloc(a, n, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		size_t len = pb[i]->address.len;
		if (len != 4 && len != 16)
			return reject(err, errlen, "address is %zu bytes, not 4 or 16", len);
		if (zt_cidr_from_bytes(&v[i], pb[i]->address.data, len, pb[i]->length))
			return reject(err, errlen, "prefix length %u too long", pb[i]->length);
	}
	*out = v;
	return 0;
}

static const uint32_t *ports(const uint32_t *pb, size_t n, struct zt_arena *a)
{
	uint32_t *v = zt_arena_calloc(a, n, sizeof(*v));

	if (n)
		memcpy(v, pb, n * sizeof(*v));
	return v;
}

static const struct zt_sa_match *sas(Istio__Security__ServiceAccountMatch *const *pb, size_t n,
                                     struct zt_arena *a)
{
	struct zt_sa_match *v = zt_arena_calloc(a, n, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		v[i].ns = zt_arena_strdup(a, pb[i]->namespace_);
		v[i].sa = zt_arena_strdup(a, pb[i]->serviceaccount);
	}
	return v;
}

static int match(const Istio__Security__Match *pb, struct zt_arena *a, struct zt_policy_match *m,
                 char *err, size_t errlen)
{
	int rc;

#define STRINGS(f)                                                                                 \
	m->n_##f = pb->n_##f;                                                                      \
	if ((rc = strings(pb->f, pb->n_##f, a, &m->f, err, errlen)))                               \
		return rc;
#define CIDRS(f)                                                                                   \
	m->n_##f = pb->n_##f;                                                                      \
	if ((rc = cidrs(pb->f, pb->n_##f, a, &m->f, err, errlen)))                                 \
		return rc;
	STRINGS(namespaces)
	STRINGS(not_namespaces)
	STRINGS(principals)
	STRINGS(not_principals)
	CIDRS(source_ips)
	CIDRS(not_source_ips)
	CIDRS(destination_ips)
	CIDRS(not_destination_ips)
#undef STRINGS
#undef CIDRS
	m->n_destination_ports = pb->n_destination_ports;
	m->destination_ports = ports(pb->destination_ports, pb->n_destination_ports, a);
	m->n_not_destination_ports = pb->n_not_destination_ports;
	m->not_destination_ports = ports(pb->not_destination_ports, pb->n_not_destination_ports, a);
	m->n_service_accounts = pb->n_service_accounts;
	m->service_accounts = sas(pb->service_accounts, pb->n_service_accounts, a);
	m->n_not_service_accounts = pb->n_not_service_accounts;
	m->not_service_accounts = sas(pb->not_service_accounts, pb->n_not_service_accounts, a);
	return 0;
}

/* The clause of rule r restricting it to destination ports: one whose matches all name
 * ports (and has at least one match). NULL when the rule holds on any port. */
static const struct zt_policy_clause *port_clause(const struct zt_policy_rule *r)
{
	for (size_t i = 0; i < r->n_clauses; i++) {
		const struct zt_policy_clause *cl = &r->clauses[i];
		bool all = cl->n_matches > 0;
		for (size_t j = 0; all && j < cl->n_matches; j++)
			all = cl->matches[j].n_destination_ports > 0;
		if (all)
			return cl;
	}
	return NULL;
}

static int cmp_port_rule(const void *a, const void *b)
{
	const struct zt_policy_port_rule *x = a, *y = b;

	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Builds p's port index (see policy.h). Duplicate (port, rule) pairs are dropped. */
static void index_ports(struct zt_policy *p)
{
	size_t n = 0, k = 0, nany = 0;
	struct zt_policy_port_rule *v;
	uint32_t *any;

	for (size_t r = 0; r < p->n_rules; r++) {
		const struct zt_policy_clause *cl = port_clause(&p->rules[r]);
		for (size_t j = 0; cl && j < cl->n_matches; j++)
			n += cl->matches[j].n_destination_ports;
		nany += !cl;
	}
	v = zt_arena_calloc(&p->arena_, n, sizeof(*v));
	any = zt_arena_calloc(&p->arena_, nany, sizeof(*any));
	nany = 0;
	for (size_t r = 0; r < p->n_rules; r++) {
		const struct zt_policy_clause *cl = port_clause(&p->rules[r]);
		if (!cl)
			any[nany++] = (uint32_t)r;
		for (size_t j = 0; cl && j < cl->n_matches; j++)
			for (size_t i = 0; i < cl->matches[j].n_destination_ports; i++)
				v[k++] = (struct zt_policy_port_rule){
				        .port = cl->matches[j].destination_ports[i],
				        .rule = (uint32_t)r};
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_port_rule);
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || cmp_port_rule(&v[k - 1], &v[i]) != 0)
			v[k++] = v[i];
	for (size_t i = 0; i < k; i++)
		p->port_bits_ |= 1ull << (v[i].port % 64);
	p->port_rules_ = v;
	p->n_port_rules_ = k;
	p->any_rules_ = any;
	p->n_any_rules_ = nany;
}

static int decode(const Istio__Security__Authorization *pb, struct zt_policy *p, char *err,
                  size_t errlen)
{
	struct zt_arena *a = &p->arena_;
	struct zt_policy_rule *rules;
	int rc;

	if (!pb->name || !*pb->name)
		return reject(err, errlen, "policy has an empty name");
	p->name = zt_arena_strdup(a, pb->name);
	p->ns = zt_arena_strdup(a, pb->namespace_);
	p->key = zt_arena_printf(a, "%s/%s", p->ns, p->name);
	if ((unsigned)pb->scope > ZT_POLICY_WORKLOAD_SELECTOR)
		return reject(err, errlen, "unknown policy scope %d", (int)pb->scope);
	p->scope = (enum zt_policy_scope)pb->scope;
	if ((unsigned)pb->action > ZT_POLICY_DENY)
		return reject(err, errlen, "unknown policy action %d", (int)pb->action);
	p->action = (enum zt_policy_action)pb->action;
	p->dry_run = pb->dry_run;
	rules = zt_arena_calloc(a, pb->n_rules, sizeof(*rules));
	for (size_t i = 0; i < pb->n_rules; i++) {
		const Istio__Security__Rule *r = pb->rules[i];
		struct zt_policy_clause *cl = zt_arena_calloc(a, r->n_clauses, sizeof(*cl));
		for (size_t j = 0; j < r->n_clauses; j++) {
			const Istio__Security__Clause *c = r->clauses[j];
			struct zt_policy_match *ms = zt_arena_calloc(a, c->n_matches, sizeof(*ms));
			for (size_t k = 0; k < c->n_matches; k++) {
				rc = match(c->matches[k], a, &ms[k], err, errlen);
				if (rc)
					return rc;
			}
			cl[j].matches = ms;
			cl[j].n_matches = c->n_matches;
		}
		rules[i].clauses = cl;
		rules[i].n_clauses = r->n_clauses;
	}
	if (pb->n_rules > UINT32_MAX)
		return reject(err, errlen, "too many rules");
	p->rules = rules;
	p->n_rules = pb->n_rules;
	index_ports(p);
	return 0;
}

static void policy_free(struct zt_policy *p)
{
	struct zt_arena a = p->arena_;

	zt_arena_clear(&a);
	free(p);
	zt_live_dec(&zt_live_state_policy);
}

int zt_policy_decode(const Istio__Security__Authorization *pb, struct zt_policy **out, char *err,
                     size_t errlen)
{
	/* Cache-line aligned: see the field order in policy.h. */
	struct zt_policy *p = aligned_alloc(64, sizeof(*p));
	int rc;

	if (!p)
		abort();
	memset(p, 0, sizeof(*p));

	zt_live_inc(&zt_live_state_policy);
	atomic_init(&p->refs_, 1);
	rc = decode(pb, p, err, errlen);
	if (rc) {
		policy_free(p);
		p = NULL;
	}
	*out = p;
	return rc;
}

struct zt_policy *zt_policy_ref(struct zt_policy *p)
{
	if (p)
		atomic_fetch_add(&p->refs_, 1);
	return p;
}

void zt_policy_unref(struct zt_policy *p)
{
	if (p && atomic_fetch_sub(&p->refs_, 1) == 1)
		policy_free(p);
}

bool zt_policy_match_is_empty(const struct zt_policy_match *m)
{
	return !(m->n_namespaces || m->n_not_namespaces || m->n_principals || m->n_not_principals ||
	         m->n_source_ips || m->n_not_source_ips || m->n_destination_ips ||
	         m->n_not_destination_ips || m->n_destination_ports || m->n_not_destination_ports ||
	         m->n_service_accounts || m->n_not_service_accounts);
}
