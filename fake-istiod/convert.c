/* Builds istio.workload.Address and istio.security.Authorization resources from the mesh
 * model, the way istiod does for ztunnel. Each message is assembled from an arena that lives
 * for one conversion, packed, and only the packed bytes survive; the choices where the model
 * differs from a cluster are listed in convert.h. */
#include "fake-istiod/convert.h"
#include "fake-istiod/waypoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "protocol/pb.h"
#include "runtime/arena.h"
#include "runtime/hmap.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("convert");

/* ---- arena helpers: every piece of one conversion lives in one zt_arena ------------------- */

/* size zeroed bytes; never NULL, even for 0 (an empty repeated field still packs). */
static void *amem(struct zt_arena *a, size_t size)
{
	return zt_arena_calloc(a, 1, size ? size : 1);
}

static void *anew(struct zt_arena *a, const ProtobufCMessageDescriptor *d)
{
	void *m = amem(a, d->sizeof_message);
	protobuf_c_message_init(d, m);
	return m;
}

/* An array of up to n pointers (never NULL, so an empty repeated field packs fine). */
static void *aptrs(struct zt_arena *a, size_t n)
{
	return amem(a, (n ? n : 1) * sizeof(void *));
}

/* ---- conversion state ---------------------------------------------------------------------- */

struct out {
	struct fi_resource *v;
	size_t n, cap;
};

/* Indexes of m->services whose selector's first pair (labels are sorted by key) is one
 * (namespace, key, value): a pod's candidate Services are the lists under its own labels. */
struct idxlist {
	size_t *v;
	size_t n;
};

struct conv {
	const struct fi_mesh *m;
	struct fi_convert_opts o;
	struct zt_arena a; /* what one resource is built from; cleared after each */
	struct zt_arena names; /* an incremental conversion's removed names */
	bool *pod_sent;    /* per m->pods index */
	bool *svc_sent;    /* per m->services index: selects a sent pod */
	struct zt_hmap svc_by_pair; /* "ns\1key\1value" -> struct idxlist */
	bool no_index;     /* few pods to convert: candidates are their namespace's Services */
	size_t se_keys;    /* (ServiceEntry, host) pairs */
	uint32_t *se_vip;  /* auto-allocated VIP per (ServiceEntry, host), host order */
	struct out addrs, authz;
	char *err;
	size_t errlen;
};

/* [*lo, *hi): the elements of arr (n of size bytes, each starting with a struct fi_meta,
 * sorted by namespace then name) in namespace ns. */
static void ns_range(const void *arr, size_t n, size_t size, const char *ns, size_t *lo,
                     size_t *hi)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		const struct fi_meta *m = (const void *)((const char *)arr + mid * size);
		if (strcmp(m->ns ? m->ns : "", ns) < 0)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = a;
	b = n;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		const struct fi_meta *m = (const void *)((const char *)arr + mid * size);
		if (strcmp(m->ns ? m->ns : "", ns) <= 0)
			a = mid + 1;
		else
			b = mid;
	}
	*hi = a;
}

static const char *label(const struct fi_meta *m, const char *key)
{
	return fi_labels_get(&m->labels, key);
}

static const char *ns_label(const struct conv *c, const char *ns, const char *key)
{
	const struct fi_namespace *n = fi_mesh_find_namespace(c->m, ns);
	return n ? label(&n->meta, key) : NULL;
}

/* Packs msg into a new resource named name; version = hex of the first 8 bytes of the
 * SHA-256 of the bytes. */
static int emit(struct conv *c, struct out *o, const char *name, const ProtobufCMessage *msg)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 16;
		o->v = xrealloc(o->v, o->cap * sizeof(*o->v));
	}
	int rc = fi_resource_pack(&o->v[o->n], name, msg);
	if (rc) {
		snprintf(c->err, c->errlen, "%s: cannot encode %s", name, msg->descriptor->name);
		return rc;
	}
	o->n++;
	return 0;
}

/* ---- authorization (spec §3.6, §3.7) ------------------------------------------------------- */

/* "*" presence, "*x" suffix x, "x*" prefix x, else exact. */
static Istio__Security__StringMatch *string_match(struct zt_arena *a, const char *v)
{
	Istio__Security__StringMatch *sm = anew(a, &istio__security__string_match__descriptor);
	size_t n = strlen(v);
	if (!strcmp(v, "*")) {
		sm->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE;
		sm->presence = anew(a, &google__protobuf__empty__descriptor);
	} else if (v[0] == '*') {
		sm->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_SUFFIX;
		sm->suffix = zt_arena_strdup(a, v + 1);
	} else if (n && v[n - 1] == '*') {
		sm->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PREFIX;
		sm->prefix = zt_arena_printf(a, "%.*s", (int)(n - 1), v);
	} else {
		sm->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_EXACT;
		sm->exact = zt_arena_strdup(a, v);
	}
	return sm;
}

/* Principals are matched without the scheme (spec §6), so "spiffe://" is dropped. */
static size_t string_matches(struct zt_arena *a, const struct fi_strs *s, bool principal,
                             Istio__Security__StringMatch ***out)
{
	*out = aptrs(a, s->n);
	for (size_t i = 0; i < s->n; i++) {
		const char *v = s->v[i];
		if (principal && !strncmp(v, "spiffe://", 9))
			v += 9;
		(*out)[i] = string_match(a, v);
	}
	return s->n;
}

/* Bare IP = full-length prefix, CIDR kept (host bits cleared), anything else dropped. */
static size_t ip_blocks(struct conv *c, const char *policy, const struct fi_strs *s,
                        Istio__Security__Address ***out)
{
	size_t n = 0;
	*out = aptrs(&c->a, s->n);
	for (size_t i = 0; i < s->n; i++) {
		const char *v = s->v[i];
		struct zt_cidr cidr;
		struct zt_ip ip;
		if (strchr(v, '/')) {
			if (zt_cidr_parse(&cidr, v, strlen(v))) {
				zt_warn("AuthorizationPolicy %s: invalid CIDR \"%s\" dropped",
				        policy, v);
				continue;
			}
		} else if (zt_ip_parse(&ip, v, strlen(v)) ||
		           zt_cidr_from_ip(&cidr, &ip, ip.family == AF_INET ? 32 : 128)) {
			zt_warn("AuthorizationPolicy %s: invalid IP \"%s\" dropped", policy, v);
			continue;
		}
		Istio__Security__Address *ad = anew(&c->a, &istio__security__address__descriptor);
		size_t bl = cidr.ip.family == AF_INET ? 4 : 16;
		ad->address.len = bl;
		ad->address.data = amem(&c->a, bl);
		memcpy(ad->address.data, cidr.ip.bytes, bl);
		ad->length = cidr.prefix;
		(*out)[n++] = ad;
	}
	return n;
}

/* Decimal ports up to 65535; anything else dropped. */
static size_t ports(struct conv *c, const char *policy, const struct fi_strs *s, uint32_t **out)
{
	size_t n = 0;
	*out = amem(&c->a, (s->n ? s->n : 1) * sizeof(**out));
	for (size_t i = 0; i < s->n; i++) {
		const char *v = s->v[i];
		size_t len = strlen(v);
		unsigned long p = 0;
		bool ok = len > 0 && len <= 5 && strspn(v, "0123456789") == len;
		if (ok)
			p = strtoul(v, NULL, 10);
		if (!ok || p > 65535) {
			zt_warn("AuthorizationPolicy %s: invalid port \"%s\" dropped", policy, v);
			continue;
		}
		(*out)[n++] = (uint32_t)p;
	}
	return n;
}

/* "ns/sa", or a bare "sa" in the policy's namespace. */
static size_t service_accounts(struct conv *c, const char *policy, const char *policy_ns,
                               const struct fi_strs *s, Istio__Security__ServiceAccountMatch ***out)
{
	size_t n = 0;
	*out = aptrs(&c->a, s->n);
	for (size_t i = 0; i < s->n; i++) {
		const char *v = s->v[i], *slash = strchr(v, '/');
		if (!*v || (slash && (slash == v || !slash[1] || strchr(slash + 1, '/')))) {
			zt_warn("AuthorizationPolicy %s: invalid service account \"%s\" dropped",
			        policy, v);
			continue;
		}
		Istio__Security__ServiceAccountMatch *sa =
		        anew(&c->a, &istio__security__service_account_match__descriptor);
		sa->namespace_ =
		        slash ? zt_arena_printf(&c->a, "%.*s", (int)(slash - v), v) : zt_arena_strdup(&c->a, policy_ns);
		sa->serviceaccount = zt_arena_strdup(&c->a, slash ? slash + 1 : v);
		(*out)[n++] = sa;
	}
	return n;
}

static const char *const l4_when_keys[] = {"source.ip", "source.namespace", "source.principal",
                                           "destination.ip", "destination.port"};

static bool is_l4_when(const char *key)
{
	for (size_t i = 0; i < sizeof(l4_when_keys) / sizeof(l4_when_keys[0]); i++)
		if (!strcmp(key, l4_when_keys[i]))
			return true;
	return false;
}

static const enum fi_authz_source_field l7_source[] = {
        FI_SRC_REQUEST_PRINCIPALS, FI_SRC_NOT_REQUEST_PRINCIPALS, FI_SRC_REMOTE_IP_BLOCKS,
        FI_SRC_NOT_REMOTE_IP_BLOCKS};
static const enum fi_authz_operation_field l7_operation[] = {FI_OP_HOSTS,   FI_OP_NOT_HOSTS,
                                                             FI_OP_METHODS, FI_OP_NOT_METHODS,
                                                             FI_OP_PATHS,   FI_OP_NOT_PATHS};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The first L7 attribute a rule uses, or NULL. */
static const char *rule_l7(const struct fi_authz_rule *r)
{
	for (size_t i = 0; i < r->n_to; i++)
		for (size_t j = 0; j < COUNT(l7_operation); j++)
			if (r->to[i].f[l7_operation[j]].n)
				return fi_authz_operation_names[l7_operation[j]];
	for (size_t i = 0; i < r->n_from; i++)
		for (size_t j = 0; j < COUNT(l7_source); j++)
			if (r->from[i].f[l7_source[j]].n)
				return fi_authz_source_names[l7_source[j]];
	for (size_t i = 0; i < r->n_when; i++)
		if (!is_l4_when(r->when[i].key))
			return r->when[i].key;
	return NULL;
}

static Istio__Security__Clause *clause(struct conv *c, size_t cap)
{
	Istio__Security__Clause *cl = anew(&c->a, &istio__security__clause__descriptor);
	cl->matches = aptrs(&c->a, cap);
	return cl;
}

/* One Clause with a Match per to[] entry, or NULL when an entry sets no L4 field (what is
 * left of a DENY entry after its L7 fields are dropped): the clause then matches anything. */
static Istio__Security__Clause *to_clause(struct conv *c, const char *policy,
                                          const struct fi_authz_rule *r)
{
	Istio__Security__Clause *cl = clause(c, r->n_to);
	for (size_t i = 0; i < r->n_to; i++) {
		const struct fi_strs *f = r->to[i].f;
		if (!f[FI_OP_PORTS].n && !f[FI_OP_NOT_PORTS].n)
			return NULL;
		Istio__Security__Match *mt = anew(&c->a, &istio__security__match__descriptor);
		mt->n_destination_ports = ports(c, policy, &f[FI_OP_PORTS], &mt->destination_ports);
		mt->n_not_destination_ports =
		        ports(c, policy, &f[FI_OP_NOT_PORTS], &mt->not_destination_ports);
		cl->matches[cl->n_matches++] = mt;
	}
	return cl->n_matches ? cl : NULL;
}

static const enum fi_authz_source_field l4_source[] = {
        FI_SRC_PRINCIPALS,     FI_SRC_NOT_PRINCIPALS,   FI_SRC_NAMESPACES,
        FI_SRC_NOT_NAMESPACES, FI_SRC_SERVICE_ACCOUNTS, FI_SRC_NOT_SERVICE_ACCOUNTS,
        FI_SRC_IP_BLOCKS,      FI_SRC_NOT_IP_BLOCKS};

/* One Clause with a Match per from[] entry; NULL as in to_clause. */
static Istio__Security__Clause *from_clause(struct conv *c, const char *policy,
                                            const char *policy_ns, const struct fi_authz_rule *r)
{
	Istio__Security__Clause *cl = clause(c, r->n_from);
	for (size_t i = 0; i < r->n_from; i++) {
		const struct fi_strs *f = r->from[i].f;
		bool l4 = false;
		for (size_t j = 0; j < COUNT(l4_source); j++)
			l4 |= f[l4_source[j]].n > 0;
		if (!l4)
			return NULL;
		Istio__Security__Match *mt = anew(&c->a, &istio__security__match__descriptor);
		struct zt_arena *a = &c->a;
		mt->n_principals = string_matches(a, &f[FI_SRC_PRINCIPALS], true, &mt->principals);
		mt->n_not_principals =
		        string_matches(a, &f[FI_SRC_NOT_PRINCIPALS], true, &mt->not_principals);
		mt->n_namespaces = string_matches(a, &f[FI_SRC_NAMESPACES], false, &mt->namespaces);
		mt->n_not_namespaces =
		        string_matches(a, &f[FI_SRC_NOT_NAMESPACES], false, &mt->not_namespaces);
		mt->n_service_accounts = service_accounts(
		        c, policy, policy_ns, &f[FI_SRC_SERVICE_ACCOUNTS], &mt->service_accounts);
		mt->n_not_service_accounts =
		        service_accounts(c, policy, policy_ns, &f[FI_SRC_NOT_SERVICE_ACCOUNTS],
		                         &mt->not_service_accounts);
		mt->n_source_ips = ip_blocks(c, policy, &f[FI_SRC_IP_BLOCKS], &mt->source_ips);
		mt->n_not_source_ips =
		        ip_blocks(c, policy, &f[FI_SRC_NOT_IP_BLOCKS], &mt->not_source_ips);
		cl->matches[cl->n_matches++] = mt;
	}
	return cl->n_matches ? cl : NULL;
}

/* One Clause holding one Match for a when[] condition on an L4 key; NULL for other keys. */
static Istio__Security__Clause *when_clause(struct conv *c, const char *policy,
                                            const struct fi_authz_when *w)
{
	if (!is_l4_when(w->key) || (!w->values.n && !w->not_values.n))
		return NULL;
	Istio__Security__Clause *cl = clause(c, 1);
	Istio__Security__Match *mt = anew(&c->a, &istio__security__match__descriptor);
	struct zt_arena *a = &c->a;
	if (!strcmp(w->key, "source.ip")) {
		mt->n_source_ips = ip_blocks(c, policy, &w->values, &mt->source_ips);
		mt->n_not_source_ips = ip_blocks(c, policy, &w->not_values, &mt->not_source_ips);
	} else if (!strcmp(w->key, "source.namespace")) {
		mt->n_namespaces = string_matches(a, &w->values, false, &mt->namespaces);
		mt->n_not_namespaces =
		        string_matches(a, &w->not_values, false, &mt->not_namespaces);
	} else if (!strcmp(w->key, "source.principal")) {
		mt->n_principals = string_matches(a, &w->values, true, &mt->principals);
		mt->n_not_principals = string_matches(a, &w->not_values, true, &mt->not_principals);
	} else if (!strcmp(w->key, "destination.ip")) {
		mt->n_destination_ips = ip_blocks(c, policy, &w->values, &mt->destination_ips);
		mt->n_not_destination_ips =
		        ip_blocks(c, policy, &w->not_values, &mt->not_destination_ips);
	} else {
		mt->n_destination_ports = ports(c, policy, &w->values, &mt->destination_ports);
		mt->n_not_destination_ports =
		        ports(c, policy, &w->not_values, &mt->not_destination_ports);
	}
	cl->matches[cl->n_matches++] = mt;
	return cl;
}

/* A rule becomes a Rule whose clauses are ANDed: to[], from[], then one per when[]. An ALLOW
 * rule using L7 attributes is dropped whole (NULL); a DENY rule loses only those parts. */
static Istio__Security__Rule *rule(struct conv *c, const struct fi_authz_policy *p,
                                   const char *policy, size_t idx)
{
	const struct fi_authz_rule *r = &p->rules[idx];
	const char *l7 = rule_l7(r);
	if (l7 && p->action == FI_AUTHZ_ALLOW) {
		zt_warn("AuthorizationPolicy %s: rules[%zu]: ALLOW rule dropped: ztunnel cannot "
		        "enforce L7 attribute %s",
		        policy, idx, l7);
		return NULL;
	}
	if (l7)
		zt_warn("AuthorizationPolicy %s: rules[%zu]: DENY rule keeps only its L4 parts "
		        "(ignoring L7 attribute %s)",
		        policy, idx, l7);
	Istio__Security__Rule *ru = anew(&c->a, &istio__security__rule__descriptor);
	ru->clauses = aptrs(&c->a, 2 + r->n_when);
	Istio__Security__Clause *cl;
	if (r->n_to && (cl = to_clause(c, policy, r)))
		ru->clauses[ru->n_clauses++] = cl;
	if (r->n_from && (cl = from_clause(c, policy, p->meta.ns, r)))
		ru->clauses[ru->n_clauses++] = cl;
	for (size_t i = 0; i < r->n_when; i++)
		if ((cl = when_clause(c, policy, &r->when[i])))
			ru->clauses[ru->n_clauses++] = cl;
	return ru;
}

static bool policy_sent(const struct fi_authz_policy *p)
{
	return !p->has_target_ref && (p->action == FI_AUTHZ_ALLOW || p->action == FI_AUTHZ_DENY);
}

static int add_policy(struct conv *c, const struct fi_authz_policy *p)
{
	char *policy = zt_arena_printf(&c->a, "%s/%s", p->meta.ns, p->meta.name);
	if (!policy_sent(p)) {
		zt_debug("AuthorizationPolicy %s: %s, not for ztunnel", policy,
		         p->has_target_ref ? "has targetRef" : "action neither ALLOW nor DENY");
		return 0;
	}
	Istio__Security__Authorization *az =
	        anew(&c->a, &istio__security__authorization__descriptor);
	az->name = p->meta.name;
	az->namespace_ = p->meta.ns;
	az->scope = p->selector.n ? ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR
	            : !strcmp(p->meta.ns, c->o.root_namespace) ? ISTIO__SECURITY__SCOPE__GLOBAL
	                                                       : ISTIO__SECURITY__SCOPE__NAMESPACE;
	az->action = p->action == FI_AUTHZ_DENY ? ISTIO__SECURITY__ACTION__DENY
	                                        : ISTIO__SECURITY__ACTION__ALLOW;
	az->dry_run = p->dry_run;
	az->rules = aptrs(&c->a, p->n_rules);
	for (size_t i = 0; i < p->n_rules; i++) {
		Istio__Security__Rule *ru = rule(c, p, policy, i);
		if (ru)
			az->rules[az->n_rules++] = ru;
	}
	return emit(c, &c->authz, policy, &az->base);
}

/* ---- PeerAuthentication -------------------------------------------------------------------- */

/* Namespace-wide mode for ns: the root namespace's policy, overridden by ns's (UNSET
 * inherits); the oldest policy wins at each level. */
static enum fi_mtls_mode namespace_mode(const struct conv *c, const char *ns)
{
	const struct fi_peer_authn *root = NULL, *local = NULL;
	for (size_t i = 0; i < c->m->n_peer_authns; i++) {
		const struct fi_peer_authn *p = &c->m->peer_authns[i];
		if (p->selector.n)
			continue;
		if (!strcmp(p->meta.ns, c->o.root_namespace)) {
			if (!root || p->meta.seq < root->meta.seq)
				root = p;
		} else if (!strcmp(p->meta.ns, ns) && (!local || p->meta.seq < local->meta.seq)) {
			local = p;
		}
	}
	enum fi_mtls_mode mode = root ? root->mode : FI_MTLS_UNSET;
	if (local && local->mode != FI_MTLS_UNSET)
		mode = local->mode;
	return mode;
}

/* The oldest selector policy in the pod's namespace (not the root's) that selects it. */
static const struct fi_peer_authn *workload_pa(const struct conv *c, const struct fi_pod *pod)
{
	const struct fi_peer_authn *best = NULL;
	if (!strcmp(pod->meta.ns, c->o.root_namespace))
		return NULL;
	for (size_t i = 0; i < c->m->n_peer_authns; i++) {
		const struct fi_peer_authn *p = &c->m->peer_authns[i];
		if (p->selector.n && !strcmp(p->meta.ns, pod->meta.ns) &&
		    fi_labels_match(&p->selector, &pod->meta.labels) &&
		    (!best || p->meta.seq < best->meta.seq))
			best = p;
	}
	return best;
}

static enum fi_mtls_mode pa_mode(const struct conv *c, const struct fi_peer_authn *p)
{
	return p->mode != FI_MTLS_UNSET ? p->mode : namespace_mode(c, p->meta.ns);
}

/* Ports of a selector policy whose mode differs from the policy's effective mode: the
 * non-strict ones under STRICT, the strict ones otherwise. */
static size_t pa_port_overrides(struct conv *c, const struct fi_peer_authn *p, uint32_t **outp)
{
	bool strict = pa_mode(c, p) == FI_MTLS_STRICT;
	uint32_t *out = *outp = amem(&c->a, (p->n_ports ? p->n_ports : 1) * sizeof(*out));
	size_t n = 0;
	for (size_t i = 0; i < p->n_ports; i++) {
		enum fi_mtls_mode m = p->ports[i].mode;
		if (m != FI_MTLS_UNSET && (m == FI_MTLS_STRICT) != strict)
			out[n++] = p->ports[i].port;
	}
	return n;
}

static Istio__Security__Match *no_identity_match(struct zt_arena *a)
{
	Istio__Security__Match *mt = anew(a, &istio__security__match__descriptor);
	mt->n_not_principals = 1;
	mt->not_principals = aptrs(a, 1);
	mt->not_principals[0] = string_match(a, "*");
	return mt;
}

/* DENY policy in the root namespace: no peer identity (plaintext) is denied (spec §3.7). */
static int add_static_strict(struct conv *c)
{
	struct zt_arena *a = &c->a;
	Istio__Security__Authorization *az = anew(a, &istio__security__authorization__descriptor);
	az->name = FI_STATIC_STRICT_POLICY;
	az->namespace_ = (char *)c->o.root_namespace;
	az->scope = ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR;
	az->action = ISTIO__SECURITY__ACTION__DENY;
	az->n_rules = 1;
	az->rules = aptrs(a, 1);
	az->rules[0] = anew(a, &istio__security__rule__descriptor);
	az->rules[0]->n_clauses = 1;
	az->rules[0]->clauses = aptrs(a, 1);
	az->rules[0]->clauses[0] = clause(c, 1);
	az->rules[0]->clauses[0]->n_matches = 1;
	az->rules[0]->clauses[0]->matches[0] = no_identity_match(a);
	return emit(c, &c->authz, zt_arena_printf(a, "%s/%s", c->o.root_namespace, FI_STATIC_STRICT_POLICY),
	            &az->base);
}

/* Port-level mTLS: one DENY rule, "no identity" AND "port not exempt" (under STRICT) or
 * "port is strict" (otherwise). */
static int add_converted_pa(struct conv *c, const struct fi_peer_authn *p)
{
	uint32_t *pp;
	size_t n = pa_port_overrides(c, p, &pp);
	if (!n)
		return 0;
	struct zt_arena *a = &c->a;
	Istio__Security__Authorization *az = anew(a, &istio__security__authorization__descriptor);
	az->name = zt_arena_printf(a, FI_CONVERTED_PA_PREFIX "%s", p->meta.name);
	az->namespace_ = p->meta.ns;
	az->scope = ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR;
	az->action = ISTIO__SECURITY__ACTION__DENY;
	az->n_rules = 1;
	az->rules = aptrs(a, 1);
	Istio__Security__Rule *ru = az->rules[0] = anew(a, &istio__security__rule__descriptor);
	ru->n_clauses = 2;
	ru->clauses = aptrs(a, 2);
	ru->clauses[0] = clause(c, 1);
	ru->clauses[0]->n_matches = 1;
	ru->clauses[0]->matches[0] = no_identity_match(a);
	ru->clauses[1] = clause(c, 1);
	ru->clauses[1]->n_matches = 1;
	Istio__Security__Match *mt = ru->clauses[1]->matches[0] =
	        anew(a, &istio__security__match__descriptor);
	if (pa_mode(c, p) == FI_MTLS_STRICT) {
		mt->n_not_destination_ports = n;
		mt->not_destination_ports = pp;
	} else {
		mt->n_destination_ports = n;
		mt->destination_ports = pp;
	}
	return emit(c, &c->authz, zt_arena_printf(a, "%s/%s", p->meta.ns, az->name), &az->base);
}

/* ---- workloads and services (spec §3.5) ---------------------------------------------------- */

static Istio__Workload__NetworkAddress *network_address(struct conv *c, const struct zt_ip *ip)
{
	Istio__Workload__NetworkAddress *na =
	        anew(&c->a, &istio__workload__network_address__descriptor);
	size_t bl = ip->family == AF_INET ? 4 : 16;
	na->network = (char *)c->o.network;
	na->address.len = bl;
	na->address.data = amem(&c->a, bl);
	memcpy(na->address.data, ip->bytes, bl);
	return na;
}

static const char *hostname(struct conv *c, const char *ns, const char *name)
{
	return zt_arena_printf(&c->a, "%s.%s.svc.%s", name, ns, c->o.cluster_domain);
}

/* The waypoint obj (a Pod or Service) uses, or NULL; see convert.h for the rules. */
static Istio__Workload__GatewayAddress *waypoint(struct conv *c, const struct fi_meta *obj,
                                                 bool workload)
{
	const char *name = label(obj, "istio.io/use-waypoint");
	const char *wns = label(obj, "istio.io/use-waypoint-namespace");
	if (!name) {
		name = ns_label(c, obj->ns, "istio.io/use-waypoint");
		wns = ns_label(c, obj->ns, "istio.io/use-waypoint-namespace");
	}
	if (!name || !strcmp(name, "none"))
		return NULL;
	const char *gns = wns ? wns : obj->ns;
	const struct fi_gateway *gw = fi_mesh_find_gateway(c->m, gns, name);
	if (!gw || strcmp(gw->class_name, FI_WAYPOINT_CLASS)) {
		zt_warn("%s/%s: waypoint %s/%s not found (no Gateway of class " FI_WAYPOINT_CLASS
		        ")",
		        obj->ns, obj->name, gns, name);
		return NULL;
	}
	const char *for_ = label(&gw->meta, "istio.io/waypoint-for");
	if (!for_)
		for_ = "service";
	if (!strcmp(for_, "none") || (workload && !strcmp(for_, "service")) ||
	    (!workload && !strcmp(for_, "workload")))
		return NULL;

	Istio__Workload__GatewayAddress *ga =
	        anew(&c->a, &istio__workload__gateway_address__descriptor);
	ga->hbone_mtls_port = FI_HBONE_MTLS_PORT;
	const struct zt_ip *ip = NULL;
	const struct fi_service *svc = fi_mesh_find_service(c->m, gns, name);
	if (svc && svc->n_ips)
		ip = &svc->ips[0];
	for (size_t i = 0; !ip && i < c->m->n_pods; i++) {
		const struct fi_pod *p = &c->m->pods[i];
		if (c->pod_sent[i] && fi_mesh_pod_waypoint(c->m, p) == gw)
			ip = &p->ips[0];
	}
	if (ip) {
		ga->destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS;
		ga->address = network_address(c, ip);
	} else {
		Istio__Workload__NamespacedHostname *nh =
		        anew(&c->a, &istio__workload__namespaced_hostname__descriptor);
		nh->namespace_ = (char *)gns;
		nh->hostname = (char *)hostname(c, gns, name);
		ga->destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME;
		ga->hostname = nh;
	}
	return ga;
}

/* Whether svc is the Service of a waypoint Gateway (named like it, same namespace). */
static bool waypoint_service(const struct conv *c, const struct fi_service *svc)
{
	const struct fi_gateway *g = fi_mesh_find_gateway(c->m, svc->meta.ns, svc->meta.name);
	return g && !strcmp(g->class_name, FI_WAYPOINT_CLASS);
}

/* istiod's choice from the port name or appProtocol: only HTTP/1.1, HTTP/2 and gRPC are
 * reported; everything else is UNKNOWN. */
static Istio__Workload__AppProtocol app_protocol(const struct fi_service_port *sp)
{
	char proto[32] = "";
	if (sp->app_protocol)
		snprintf(proto, sizeof(proto), "%s", sp->app_protocol);
	else if (sp->name)
		snprintf(proto, sizeof(proto), "%.*s", (int)strcspn(sp->name, "-"), sp->name);
	if (!strcasecmp(proto, "http"))
		return ISTIO__WORKLOAD__APP_PROTOCOL__HTTP11;
	if (!strcasecmp(proto, "http2") || !strcmp(proto, "kubernetes.io/h2c"))
		return ISTIO__WORKLOAD__APP_PROTOCOL__HTTP2;
	if (!strcasecmp(proto, "grpc"))
		return ISTIO__WORKLOAD__APP_PROTOCOL__GRPC;
	return ISTIO__WORKLOAD__APP_PROTOCOL__UNKNOWN;
}

static bool service_selects(const struct fi_service *s, const struct fi_pod *p)
{
	return s->selector.n && !strcmp(s->meta.ns, p->meta.ns) &&
	       fi_labels_match(&s->selector, &p->meta.labels);
}

/* c->svc_sent is complete once every pod has been converted. */
static bool service_sent(const struct conv *c, const struct fi_service *s)
{
	const char *mode = ns_label(c, s->meta.ns, "istio.io/dataplane-mode");
	return (mode && !strcmp(mode, "ambient")) || waypoint_service(c, s) ||
	       c->svc_sent[s - c->m->services];
}

static char *pair_key(struct zt_arena *a, const char *ns, const struct fi_label *l)
{
	return zt_arena_printf(a, "%s\1%s\1%s", ns, l->key, l->value);
}

static void index_services(struct conv *c)
{
	for (size_t i = 0; i < c->m->n_services; i++) {
		const struct fi_service *s = &c->m->services[i];
		if (!s->selector.n)
			continue;
		char *key = pair_key(&c->a, s->meta.ns, &s->selector.v[0]);
		struct idxlist *l = zt_hmap_get(&c->svc_by_pair, key);
		if (!l) {
			l = xcalloc(1, sizeof(*l));
			zt_hmap_put(&c->svc_by_pair, key, l);
		}
		if ((l->n & (l->n - 1)) == 0)
			l->v = xrealloc(l->v, (l->n ? 2 * l->n : 1) * sizeof(*l->v));
		l->v[l->n++] = i;
	}
	zt_arena_clear(&c->a);
}

static void index_clear(struct conv *c)
{
	size_t pos = 0;
	void *val;
	while (zt_hmap_next(&c->svc_by_pair, &pos, NULL, &val)) {
		struct idxlist *l = val;
		free(l->v);
		free(l);
	}
	zt_hmap_clear(&c->svc_by_pair);
}

static int size_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* Indexes of the Services that may select p (same namespace, first selector pair among its
 * labels), ascending; an arena array of *n. */
static size_t *service_candidates(struct conv *c, const struct fi_pod *p, size_t *n)
{
	const struct fi_labels *lb = &p->meta.labels;
	if (c->no_index) {
		size_t lo, hi;
		ns_range(c->m->services, c->m->n_services, sizeof(*c->m->services), p->meta.ns,
		         &lo, &hi);
		size_t *v = amem(&c->a, (hi - lo + 1) * sizeof(*v));
		for (size_t i = lo; i < hi; i++)
			v[i - lo] = i;
		*n = hi - lo;
		return v;
	}
	const struct idxlist *hit[64];
	size_t nhit = 0, total = 0;
	for (size_t i = 0; i < lb->n && nhit < sizeof(hit) / sizeof(hit[0]); i++) {
		const struct idxlist *l = zt_hmap_get(&c->svc_by_pair, pair_key(&c->a, p->meta.ns, &lb->v[i]));
		if (l) {
			hit[nhit++] = l;
			total += l->n;
		}
	}
	/* More labels than looked up: fall back to every Service. */
	if (lb->n > sizeof(hit) / sizeof(hit[0])) {
		size_t *all = amem(&c->a, (c->m->n_services + 1) * sizeof(*all));
		for (size_t i = 0; i < c->m->n_services; i++)
			all[i] = i;
		*n = c->m->n_services;
		return all;
	}
	size_t *v = amem(&c->a, (total + 1) * sizeof(*v)), k = 0;
	for (size_t i = 0; i < nhit; i++)
		for (size_t j = 0; j < hit[i]->n; j++)
			v[k++] = hit[i]->v[j];
	if (k > 1)
		qsort(v, k, sizeof(*v), size_cmp);
	*n = k;
	return v;
}

static int add_service(struct conv *c, const struct fi_service *s)
{
	if (!service_sent(c, s))
		return 0;
	Istio__Workload__Service *sv = anew(&c->a, &istio__workload__service__descriptor);
	sv->name = s->meta.name;
	sv->namespace_ = s->meta.ns;
	sv->hostname = (char *)hostname(c, s->meta.ns, s->meta.name);
	sv->addresses = aptrs(&c->a, s->n_ips);
	for (size_t i = 0; i < s->n_ips; i++)
		sv->addresses[sv->n_addresses++] = network_address(c, &s->ips[i]);
	sv->ports = aptrs(&c->a, s->n_ports);
	for (size_t i = 0; i < s->n_ports; i++) {
		Istio__Workload__Port *pt = anew(&c->a, &istio__workload__port__descriptor);
		pt->service_port = s->ports[i].port;
		pt->target_port = s->ports[i].target_port;
		pt->app_protocol = app_protocol(&s->ports[i]);
		sv->ports[sv->n_ports++] = pt;
	}
	if (!waypoint_service(c, s))
		sv->waypoint = waypoint(c, &s->meta, false);
	Istio__Workload__Address *ad = anew(&c->a, &istio__workload__address__descriptor);
	ad->type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_SERVICE;
	ad->service = sv;
	return emit(c, &c->addrs, zt_arena_printf(&c->a, "%s/%s", s->meta.ns, sv->hostname), &ad->base);
}

/* <name>-<8..10 digits>: the Job of a CronJob. Returns the CronJob name length or 0. */
static size_t cronjob_prefix(const char *job)
{
	const char *dash = strrchr(job, '-');
	size_t digits = dash ? strlen(dash + 1) : 0;
	if (!dash || dash == job || digits < 8 || digits > 10 ||
	    strspn(dash + 1, "0123456789") != digits)
		return 0;
	return (size_t)(dash - job);
}

/* istiod's workloadNameAndType over the pod's controller reference (see convert.h). */
static void workload_kind(struct conv *c, const struct fi_pod *p, Istio__Workload__Workload *w)
{
	const char *kind = p->owner_kind, *owner = p->owner_name;
	w->workload_name = p->meta.name;
	w->workload_type = ISTIO__WORKLOAD__WORKLOAD_TYPE__POD;
	if (!kind)
		return;
	if (!strcmp(kind, "ReplicaSet")) {
		const char *hash = label(&p->meta, "pod-template-hash");
		size_t ol = strlen(owner), hl = hash ? strlen(hash) : 0;
		if (!hl || ol < hl || strcmp(owner + ol - hl, hash))
			return;
		ol -= hl;
		if (ol && owner[ol - 1] == '-')
			ol--;
		w->workload_name = zt_arena_printf(&c->a, "%.*s", (int)ol, owner);
		w->workload_type = ISTIO__WORKLOAD__WORKLOAD_TYPE__DEPLOYMENT;
	} else if (!strcmp(kind, "Job")) {
		size_t cl = cronjob_prefix(owner);
		w->workload_name = cl ? zt_arena_printf(&c->a, "%.*s", (int)cl, owner) : (char *)owner;
		w->workload_type = cl ? ISTIO__WORKLOAD__WORKLOAD_TYPE__CRONJOB
		                      : ISTIO__WORKLOAD__WORKLOAD_TYPE__JOB;
	}
}

static const char *first_label(const struct fi_pod *p, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *v = label(&p->meta, *keys);
		if (v && *v)
			return v;
	}
	return NULL;
}

static Istio__Workload__Locality *locality(struct conv *c, const struct fi_pod *p)
{
	const struct fi_node *n = p->node ? fi_mesh_find_node(c->m, p->node) : NULL;
	if (!n)
		return NULL;
	const char *region = label(&n->meta, "topology.kubernetes.io/region");
	const char *zone = label(&n->meta, "topology.kubernetes.io/zone");
	const char *subzone = label(&n->meta, "topology.istio.io/subzone");
	if (!region && !zone && !subzone)
		return NULL;
	Istio__Workload__Locality *l = anew(&c->a, &istio__workload__locality__descriptor);
	l->region = region ? (char *)region : l->region;
	l->zone = zone ? (char *)zone : l->zone;
	l->subzone = subzone ? (char *)subzone : l->subzone;
	return l;
}

/* Per-endpoint ports of svc for pod p: a named targetPort resolves to the pod's container port
 * of that name and protocol; a name the pod lacks leaves the port out. */
static Istio__Workload__PortList *port_list(struct conv *c, const struct fi_service *s,
                                            const struct fi_pod *p)
{
	Istio__Workload__PortList *pl = anew(&c->a, &istio__workload__port_list__descriptor);
	pl->ports = aptrs(&c->a, s->n_ports);
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct fi_service_port *sp = &s->ports[i];
		uint32_t target = sp->target_port;
		if (sp->target_port_name) {
			target = 0;
			for (size_t j = 0; !target && j < p->n_ports; j++)
				if (p->ports[j].name && p->ports[j].protocol == sp->protocol &&
				    !strcmp(p->ports[j].name, sp->target_port_name))
					target = p->ports[j].port;
			if (!target)
				continue;
		}
		Istio__Workload__Port *pt = anew(&c->a, &istio__workload__port__descriptor);
		pt->service_port = sp->port;
		pt->target_port = target;
		pl->ports[pl->n_ports++] = pt;
	}
	return pl;
}

static void selected_by_entries(struct conv *c, Istio__Workload__Workload *w, const char *ns,
                                const struct fi_labels *labels, const struct fi_labels *ports,
                                size_t cap);

static void workload_services(struct conv *c, const struct fi_pod *p, Istio__Workload__Workload *w)
{
	size_t ncand;
	const size_t *cand = service_candidates(c, p, &ncand);
	w->services = aptrs(&c->a, ncand + c->se_keys);
	for (size_t k = 0; k < ncand; k++) {
		const struct fi_service *s = &c->m->services[cand[k]];
		if (!service_selects(s, p))
			continue;
		c->svc_sent[cand[k]] = true;
		Istio__Workload__Workload__ServicesEntry *e =
		        anew(&c->a, &istio__workload__workload__services_entry__descriptor);
		e->key = zt_arena_printf(&c->a, "%s/%s", s->meta.ns, hostname(c, s->meta.ns, s->meta.name));
		e->value = port_list(c, s, p);
		w->services[w->n_services++] = e;
	}
	selected_by_entries(c, w, p->meta.ns, &p->meta.labels, NULL, ncand + c->se_keys);
}

/* Keys of the selector policies that select p, then its PeerAuthentication policy if any. */
static void workload_policies(struct conv *c, const struct fi_pod *p, Istio__Workload__Workload *w)
{
	const struct fi_mesh *m = c->m;
	size_t lo[2], hi[2];
	/* Policies are sorted by namespace: the pod's and the root's are two runs, taken in
	 * array order. */
	ns_range(m->authz_policies, m->n_authz_policies, sizeof(*m->authz_policies), p->meta.ns,
	         &lo[0], &hi[0]);
	ns_range(m->authz_policies, m->n_authz_policies, sizeof(*m->authz_policies),
	         c->o.root_namespace, &lo[1], &hi[1]);
	if (lo[1] == lo[0])
		hi[1] = lo[1];
	else if (lo[1] < lo[0]) {
		size_t tl = lo[0], th = hi[0];
		lo[0] = lo[1], hi[0] = hi[1], lo[1] = tl, hi[1] = th;
	}
	w->authorization_policies = aptrs(&c->a, (hi[0] - lo[0]) + (hi[1] - lo[1]) + 1);
	for (int r = 0; r < 2; r++)
		for (size_t i = lo[r]; i < hi[r]; i++) {
			const struct fi_authz_policy *ap = &m->authz_policies[i];
			if (policy_sent(ap) && ap->selector.n &&
			    fi_labels_match(&ap->selector, &p->meta.labels))
				w->authorization_policies[w->n_authorization_policies++] =
				        zt_arena_printf(&c->a, "%s/%s", ap->meta.ns, ap->meta.name);
		}
	const struct fi_peer_authn *pa = workload_pa(c, p);
	uint32_t *over;
	char *key = NULL;
	if (pa && pa_port_overrides(c, pa, &over))
		key = zt_arena_printf(&c->a, "%s/" FI_CONVERTED_PA_PREFIX "%s", pa->meta.ns, pa->meta.name);
	else if ((pa ? pa_mode(c, pa) : namespace_mode(c, p->meta.ns)) == FI_MTLS_STRICT)
		key = zt_arena_printf(&c->a, "%s/" FI_STATIC_STRICT_POLICY, c->o.root_namespace);
	if (key)
		w->authorization_policies[w->n_authorization_policies++] = key;
}

static int add_workload(struct conv *c, const struct fi_pod *p)
{
	static const char *const name_keys[] = {"service.istio.io/canonical-name",
	                                        "app.kubernetes.io/name", "app", NULL};
	static const char *const rev_keys[] = {"service.istio.io/canonical-revision",
	                                       "app.kubernetes.io/version", "version", NULL};
	struct zt_arena *a = &c->a;
	Istio__Workload__Workload *w = anew(a, &istio__workload__workload__descriptor);
	w->uid = zt_arena_printf(a, "%s//Pod/%s/%s", c->o.cluster_id, p->meta.ns, p->meta.name);
	w->name = p->meta.name;
	w->namespace_ = p->meta.ns;
	w->addresses = amem(a, p->n_ips * sizeof(*w->addresses));
	for (size_t i = 0; i < p->n_ips; i++) {
		size_t bl = p->ips[i].family == AF_INET ? 4 : 16;
		w->addresses[i].len = bl;
		w->addresses[i].data = amem(a, bl);
		memcpy(w->addresses[i].data, p->ips[i].bytes, bl);
	}
	w->n_addresses = p->n_ips;
	w->network = (char *)c->o.network;
	w->tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE;
	w->trust_domain = (char *)c->o.trust_domain;
	w->service_account = p->service_account;
	if (p->node)
		w->node = p->node;
	workload_kind(c, p, w);
	const char *cn = first_label(p, name_keys), *cr = first_label(p, rev_keys);
	w->canonical_name = cn ? (char *)cn : w->workload_name;
	w->canonical_revision = cr ? (char *)cr : "latest";
	w->status = p->ready ? ISTIO__WORKLOAD__WORKLOAD_STATUS__HEALTHY
	                     : ISTIO__WORKLOAD__WORKLOAD_STATUS__UNHEALTHY;
	w->cluster_id = (char *)c->o.cluster_id;
	w->locality = locality(c, p);
	if (p->host_network)
		w->network_mode = ISTIO__WORKLOAD__NETWORK_MODE__HOST_NETWORK;
	workload_services(c, p, w);
	workload_policies(c, p, w);
	if (!fi_mesh_pod_waypoint(c->m, p))
		w->waypoint = waypoint(c, &p->meta, true);
	Istio__Workload__Address *ad = anew(a, &istio__workload__address__descriptor);
	ad->type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD;
	ad->workload = w;
	return emit(c, &c->addrs, w->uid, &ad->base);
}

/* ---- ServiceEntry and WorkloadEntry (spec §13.2) ------------------------------------------- */

/* Istio's auto-allocation range (PILOT_IP_AUTOALLOCATE_IPV4_PREFIX). A host's address is a
 * hash of "ns/host" in it, probing past taken ones, so it stays put while others come and go
 * (istiod keeps its allocation in the ServiceEntry status instead). */
#define AUTO_V4_PREFIX 0xF0F00000u /* 240.240.0.0/16 */

static bool se_auto_allocates(const struct fi_service_entry *e, const char *host)
{
	const char *lbl =
	        fi_labels_get(&e->meta.labels, "networking.istio.io/enable-autoallocate-ip");
	return e->resolution != FI_SE_NONE && e->n_addrs == 0 && host[0] != '*' &&
	       !(lbl && !strcmp(lbl, "false"));
}

/* c->se_vip[k]: the address of the k-th (ServiceEntry, host) pair, or 0. */
static void se_allocate(struct conv *c)
{
	const struct fi_mesh *m = c->m;
	size_t k = 0, total = 0;
	for (size_t i = 0; i < m->n_service_entries; i++)
		total += m->service_entries[i].hosts.n;
	c->se_vip = xcalloc(total ? total : 1, sizeof(*c->se_vip));
	uint8_t *used = amem(&c->a, 1u << 16);
	for (size_t i = 0; i < m->n_service_entries; i++) {
		const struct fi_service_entry *e = &m->service_entries[i];
		for (size_t j = 0; j < e->hosts.n; j++, k++) {
			if (!se_auto_allocates(e, e->hosts.v[j]))
				continue;
			uint32_t h = 2166136261u;
			for (const char *p = e->meta.ns; *p; p++)
				h = (h ^ (uint8_t)*p) * 16777619u;
			h = (h ^ '/') * 16777619u;
			for (const char *p = e->hosts.v[j]; *p; p++)
				h = (h ^ (uint8_t)*p) * 16777619u;
			uint32_t slot = 1 + h % 65534;
			while (used[slot])
				slot = slot % 65534 + 1;
			used[slot] = 1;
			c->se_vip[k] = AUTO_V4_PREFIX | slot;
		}
	}
}

static Istio__Workload__NetworkAddress *cidr_address(struct conv *c, const struct zt_cidr *cidr)
{
	Istio__Workload__NetworkAddress *na = network_address(c, &cidr->ip);
	unsigned full = cidr->ip.family == AF_INET ? 32 : 128;
	if (cidr->prefix != full) {
		na->length = cidr->prefix;
	}
	return na;
}

static int add_se_services(struct conv *c, const struct fi_service_entry *e, size_t *k)
{
	int rc = 0;
	for (size_t j = 0; !rc && j < e->hosts.n; j++, (*k)++) {
		Istio__Workload__Service *sv = anew(&c->a, &istio__workload__service__descriptor);
		sv->name = e->meta.name;
		sv->namespace_ = e->meta.ns;
		sv->hostname = e->hosts.v[j];
		sv->addresses = aptrs(&c->a, e->n_addrs + 1);
		for (size_t i = 0; i < e->n_addrs; i++)
			sv->addresses[sv->n_addresses++] = cidr_address(c, &e->addrs[i]);
		if (c->se_vip[*k]) {
			struct zt_ip ip = {.family = AF_INET};
			ip.v4.s_addr = htonl(c->se_vip[*k]);
			sv->addresses[sv->n_addresses++] = network_address(c, &ip);
		}
		sv->ports = aptrs(&c->a, e->n_ports);
		for (size_t i = 0; i < e->n_ports; i++) {
			Istio__Workload__Port *pt = anew(&c->a, &istio__workload__port__descriptor);
			pt->service_port = e->ports[i].number;
			pt->target_port = e->ports[i].target_port ? e->ports[i].target_port
			                                          : e->ports[i].number;
			sv->ports[sv->n_ports++] = pt;
		}
		sv->subject_alt_names = e->subject_alt_names.v;
		sv->n_subject_alt_names = e->subject_alt_names.n;
		if (e->resolution == FI_SE_NONE) {
			sv->load_balancing =
			        anew(&c->a, &istio__workload__load_balancing__descriptor);
			sv->load_balancing->mode =
			        ISTIO__WORKLOAD__LOAD_BALANCING__MODE__PASSTHROUGH;
		}
		Istio__Workload__Address *ad = anew(&c->a, &istio__workload__address__descriptor);
		ad->type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_SERVICE;
		ad->service = sv;
		rc = emit(c, &c->addrs, zt_arena_printf(&c->a, "%s/%s", e->meta.ns, sv->hostname), &ad->base);
	}
	return rc;
}

/* An endpoint's port map for e: port name -> endpoint port, else targetPort, else number. */
static Istio__Workload__PortList *se_port_list(struct conv *c, const struct fi_service_entry *e,
                                               const struct fi_labels *ports)
{
	Istio__Workload__PortList *pl = anew(&c->a, &istio__workload__port_list__descriptor);
	pl->ports = aptrs(&c->a, e->n_ports);
	for (size_t i = 0; i < e->n_ports; i++) {
		const struct fi_se_port *sp = &e->ports[i];
		const char *v = sp->name && ports ? fi_labels_get(ports, sp->name) : NULL;
		Istio__Workload__Port *pt = anew(&c->a, &istio__workload__port__descriptor);
		pt->service_port = sp->number;
		pt->target_port = v                 ? (uint32_t)strtoul(v, NULL, 10)
		                  : sp->target_port ? sp->target_port
		                                    : sp->number;
		pl->ports[pl->n_ports++] = pt;
	}
	return pl;
}

/* Adds the keys of e's hosts (only host when not NULL) to w's services. */
static void add_se_keys(struct conv *c, Istio__Workload__Workload *w,
                        const struct fi_service_entry *e, const char *host,
                        const struct fi_labels *ports, size_t cap)
{
	for (size_t j = 0; j < e->hosts.n && w->n_services < cap; j++) {
		if (host && strcmp(host, e->hosts.v[j]))
			continue;
		Istio__Workload__Workload__ServicesEntry *se =
		        anew(&c->a, &istio__workload__workload__services_entry__descriptor);
		se->key = zt_arena_printf(&c->a, "%s/%s", e->meta.ns, e->hosts.v[j]);
		se->value = se_port_list(c, e, ports);
		w->services[w->n_services++] = se;
	}
}

static size_t se_keys_total(const struct fi_mesh *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n_service_entries; i++)
		n += m->service_entries[i].hosts.n;
	return n;
}

/* Keys of the ServiceEntries whose workloadSelector picks labels in ns. */
static void selected_by_entries(struct conv *c, Istio__Workload__Workload *w, const char *ns,
                                const struct fi_labels *labels, const struct fi_labels *ports,
                                size_t cap)
{
	for (size_t i = 0; i < c->m->n_service_entries; i++) {
		const struct fi_service_entry *e = &c->m->service_entries[i];
		if (e->has_selector && !strcmp(e->meta.ns, ns) &&
		    fi_labels_match(&e->selector, labels))
			add_se_keys(c, w, e, NULL, ports, cap);
	}
}

/* A workload for an entry address: IP or hostname, plain TCP unless the entry says it runs
 * ambient (label istio.io/dataplane-mode=ambient). */
static Istio__Workload__Workload *entry_workload(struct conv *c, const char *uid,
                                                 const struct fi_meta *meta,
                                                 const struct fi_workload_entry *we)
{
	static const char *const name_keys[] = {"service.istio.io/canonical-name",
	                                        "app.kubernetes.io/name", "app", NULL};
	struct zt_arena *a = &c->a;
	Istio__Workload__Workload *w = anew(a, &istio__workload__workload__descriptor);
	const struct fi_labels *labels = we->labels.n ? &we->labels : &meta->labels;
	const char *mode = fi_labels_get(labels, "istio.io/dataplane-mode");
	w->uid = (char *)uid;
	w->name = meta->name;
	w->namespace_ = meta->ns;
	if (we->address.is_ip) {
		size_t bl = we->address.ip.family == AF_INET ? 4 : 16;
		w->addresses = amem(a, sizeof(*w->addresses));
		w->addresses[0].len = bl;
		w->addresses[0].data = amem(a, bl);
		memcpy(w->addresses[0].data, we->address.ip.bytes, bl);
		w->n_addresses = 1;
	} else {
		w->hostname = we->address.host;
	}
	w->network = we->network && *we->network ? we->network : (char *)c->o.network;
	w->tunnel_protocol = mode && !strcmp(mode, "ambient")
	                             ? ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE
	                             : ISTIO__WORKLOAD__TUNNEL_PROTOCOL__NONE;
	w->trust_domain = (char *)c->o.trust_domain;
	w->service_account = we->service_account;
	w->workload_name = meta->name;
	w->workload_type = ISTIO__WORKLOAD__WORKLOAD_TYPE__POD;
	w->canonical_name = meta->name;
	for (size_t i = 0; name_keys[i]; i++)
		if (fi_labels_get(labels, name_keys[i])) {
			w->canonical_name = (char *)fi_labels_get(labels, name_keys[i]);
			break;
		}
	w->canonical_revision = "latest";
	w->cluster_id = (char *)c->o.cluster_id;
	if (we->weight) {
		w->capacity = anew(a, &google__protobuf__uint32_value__descriptor);
		w->capacity->value = we->weight;
	}
	return w;
}

static int emit_workload(struct conv *c, Istio__Workload__Workload *w)
{
	Istio__Workload__Address *ad = anew(&c->a, &istio__workload__address__descriptor);
	ad->type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD;
	ad->workload = w;
	return emit(c, &c->addrs, w->uid, &ad->base);
}

/* Inline endpoints; with DNS resolution and neither endpoints nor selector, one hostname
 * workload per (non-wildcard) host, as istiod builds them. */
static int add_se_workloads(struct conv *c, const struct fi_service_entry *e)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < e->n_endpoints; i++) {
		const struct fi_workload_entry *ep = &e->endpoints[i];
		char *uid = zt_arena_printf(&c->a, "%s/networking.istio.io/ServiceEntry/%s/%s/%s",
		                 c->o.cluster_id, e->meta.ns, e->meta.name, ep->address.host);
		Istio__Workload__Workload *w = entry_workload(c, uid, &e->meta, ep);
		w->services = aptrs(&c->a, e->hosts.n);
		add_se_keys(c, w, e, NULL, &ep->ports, e->hosts.n);
		rc = emit_workload(c, w);
	}
	if (e->n_endpoints || e->has_selector ||
	    (e->resolution != FI_SE_DNS && e->resolution != FI_SE_DNS_ROUND_ROBIN))
		return rc;
	for (size_t j = 0; !rc && j < e->hosts.n; j++) {
		if (e->hosts.v[j][0] == '*')
			continue;
		struct fi_workload_entry ep = {.address = {.host = e->hosts.v[j]},
		                               .service_account = "default"};
		char *uid = zt_arena_printf(&c->a, "%s/networking.istio.io/ServiceEntry/%s/%s/%s",
		                 c->o.cluster_id, e->meta.ns, e->meta.name, e->hosts.v[j]);
		Istio__Workload__Workload *w = entry_workload(c, uid, &e->meta, &ep);
		w->service_account = zt_arena_strdup(&c->a, "default");
		w->services = aptrs(&c->a, 1);
		add_se_keys(c, w, e, e->hosts.v[j], NULL, 1);
		rc = emit_workload(c, w);
	}
	return rc;
}

/* A Kubernetes Service's port map for a WorkloadEntry (named target ports through its ports). */
static Istio__Workload__PortList *we_port_list(struct conv *c, const struct fi_service *s,
                                               const struct fi_workload_entry *we)
{
	Istio__Workload__PortList *pl = anew(&c->a, &istio__workload__port_list__descriptor);
	pl->ports = aptrs(&c->a, s->n_ports);
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct fi_service_port *sp = &s->ports[i];
		uint32_t target = sp->target_port;
		if (sp->target_port_name) {
			const char *v = fi_labels_get(&we->ports, sp->target_port_name);
			if (!v)
				continue;
			target = (uint32_t)strtoul(v, NULL, 10);
		}
		Istio__Workload__Port *pt = anew(&c->a, &istio__workload__port__descriptor);
		pt->service_port = sp->port;
		pt->target_port = target;
		pl->ports[pl->n_ports++] = pt;
	}
	return pl;
}

static int add_workload_entry(struct conv *c, const struct fi_workload_entry *we)
{
	const struct fi_mesh *m = c->m;
	const struct fi_labels *labels = we->labels.n ? &we->labels : &we->meta.labels;
	char *uid = zt_arena_printf(&c->a, "%s/networking.istio.io/WorkloadEntry/%s/%s", c->o.cluster_id,
	                 we->meta.ns, we->meta.name);
	Istio__Workload__Workload *w = entry_workload(c, uid, &we->meta, we);
	size_t cap = m->n_services + c->se_keys;
	w->services = aptrs(&c->a, cap);
	for (size_t i = 0; i < m->n_services; i++) {
		const struct fi_service *s = &m->services[i];
		if (!s->selector.n || strcmp(s->meta.ns, we->meta.ns) ||
		    !fi_labels_match(&s->selector, labels))
			continue;
		Istio__Workload__Workload__ServicesEntry *e =
		        anew(&c->a, &istio__workload__workload__services_entry__descriptor);
		e->key = zt_arena_printf(&c->a, "%s/%s", s->meta.ns, hostname(c, s->meta.ns, s->meta.name));
		e->value = we_port_list(c, s, we);
		w->services[w->n_services++] = e;
	}
	selected_by_entries(c, w, we->meta.ns, labels, &we->ports, cap);
	return emit_workload(c, w);
}

static int convert_entries(struct conv *c)
{
	const struct fi_mesh *m = c->m;
	size_t k = 0;
	int rc = 0;
	se_allocate(c);
	for (size_t i = 0; !rc && i < m->n_service_entries; i++) {
		rc = add_se_services(c, &m->service_entries[i], &k);
		if (!rc)
			rc = add_se_workloads(c, &m->service_entries[i]);
	}
	for (size_t i = 0; !rc && i < m->n_workload_entries; i++)
		rc = add_workload_entry(c, &m->workload_entries[i]);
	return rc;
}

/* ---- driver -------------------------------------------------------------------------------- */

static int resource_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fi_resource *)a)->name, ((const struct fi_resource *)b)->name);
}

const struct fi_resource *fi_resources_find(const struct fi_resource *v, size_t n, const char *name)
{
	struct fi_resource key = {.name = (char *)name};
	return n ? bsearch(&key, v, n, sizeof(*v), resource_cmp) : NULL;
}

static void out_clear(struct out *o)
{
	for (size_t i = 0; i < o->n; i++)
		fi_resource_clear(&o->v[i]);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

void fi_resources_clear(struct fi_resources *r)
{
	struct out a = {.v = r->addresses, .n = r->n_addresses};
	struct out z = {.v = r->authorizations, .n = r->n_authorizations};
	struct out w = {.v = r->waypoints, .n = r->n_waypoints};
	out_clear(&a);
	out_clear(&z);
	out_clear(&w);
	memset(r, 0, sizeof(*r));
}

void fi_resources_strip(struct fi_resources *r)
{
	struct fi_resource *sets[] = {r->addresses, r->authorizations, r->waypoints};
	size_t ns[] = {r->n_addresses, r->n_authorizations, r->n_waypoints};
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < ns[k]; i++) {
			free(sets[k][i].data);
			sets[k][i].data = NULL;
			sets[k][i].len = 0;
		}
}

static int convert_all(struct conv *c)
{
	const struct fi_mesh *m = c->m;
	int rc = 0;
	for (size_t i = 0; i < m->n_pods; i++) {
		const struct fi_pod *p = &m->pods[i];
		c->pod_sent[i] =
		        p->n_ips && (fi_mesh_pod_in_mesh(m, p) || fi_mesh_pod_waypoint(m, p));
	}
	index_services(c);
	for (size_t i = 0; !rc && i < m->n_pods; i++) {
		if (c->pod_sent[i])
			rc = add_workload(c, &m->pods[i]);
		zt_arena_clear(&c->a);
	}
	for (size_t i = 0; !rc && i < m->n_services; i++) {
		rc = add_service(c, &m->services[i]);
		zt_arena_clear(&c->a);
	}
	if (!rc)
		rc = convert_entries(c);
	zt_arena_clear(&c->a);
	for (size_t i = 0; !rc && i < m->n_authz_policies; i++) {
		rc = add_policy(c, &m->authz_policies[i]);
		zt_arena_clear(&c->a);
	}
	bool strict = false;
	for (size_t i = 0; !rc && i < m->n_peer_authns; i++) {
		strict |= m->peer_authns[i].mode == FI_MTLS_STRICT;
		if (m->peer_authns[i].selector.n)
			rc = add_converted_pa(c, &m->peer_authns[i]);
		zt_arena_clear(&c->a);
	}
	if (!rc && strict)
		rc = add_static_strict(c);
	return rc;
}

/* A conversion of m with o's defaults filled in, out emptied and the sent-marks allocated. */
static void conv_init(struct conv *c, const struct fi_mesh *m, const struct fi_convert_opts *o,
                      struct fi_resources *out, char *err, size_t errlen)
{
	static const struct fi_convert_opts none = {0};

	if (!o)
		o = &none;
	*c = (struct conv){
	        .m = m,
	        .o = {.trust_domain = o->trust_domain ? o->trust_domain : "cluster.local",
	              .cluster_id = o->cluster_id ? o->cluster_id : "Kubernetes",
	              .cluster_domain = o->cluster_domain ? o->cluster_domain : "cluster.local",
	              .root_namespace = o->root_namespace ? o->root_namespace : "istio-system",
	              .network = o->network ? o->network : ""},
	        .err = err,
	        .errlen = errlen,
	};
	memset(out, 0, sizeof(*out));
	c->pod_sent = xcalloc(m->n_pods ? m->n_pods : 1, sizeof(*c->pod_sent));
	c->svc_sent = xcalloc(m->n_services ? m->n_services : 1, sizeof(*c->svc_sent));
}

int fi_convert(const struct fi_mesh *m, const struct fi_convert_opts *o, struct fi_resources *out,
               char *err, size_t errlen)
{
	struct conv c;

	conv_init(&c, m, o, out, err, errlen);
	c.se_keys = se_keys_total(m);
	int rc = convert_all(&c);
	free(c.pod_sent);
	free(c.svc_sent);
	free(c.se_vip);
	index_clear(&c);
	zt_arena_clear(&c.a);
	if (rc) {
		out_clear(&c.addrs);
		out_clear(&c.authz);
		return rc;
	}
	if (c.addrs.n)
		qsort(c.addrs.v, c.addrs.n, sizeof(*c.addrs.v), resource_cmp);
	if (c.authz.n)
		qsort(c.authz.v, c.authz.n, sizeof(*c.authz.v), resource_cmp);
	*out = (struct fi_resources){.addresses = c.addrs.v,
	                             .n_addresses = c.addrs.n,
	                             .authorizations = c.authz.v,
	                             .n_authorizations = c.authz.n};
	rc = fi_waypoint_convert(m, c.o.root_namespace, c.o.cluster_domain, &out->waypoints,
	                         &out->n_waypoints, err, errlen);
	if (rc)
		fi_resources_clear(out);
	return rc;
}

/* ---- incremental conversion ---------------------------------------------------------------- */

/* Objects equal but for seq (load order, which only orders objects of one kind, and keeps
 * their relative order when no object of that kind changed). A struct copied from the same
 * parsed file compares equal; one parsed again does not (its strings moved): conservative. */
static bool same_objects(const void *a, const void *b, size_t n, size_t size)
{
	const size_t at = offsetof(struct fi_meta, seq), after = at + sizeof(unsigned);
	for (size_t i = 0; i < n; i++) {
		const char *x = (const char *)a + i * size, *y = (const char *)b + i * size;
		if (memcmp(x, y, at) || memcmp(x + after, y + after, size - after))
			return false;
	}
	return true;
}

#define SAME_KIND(a, b, f, nf) ((a)->nf == (b)->nf && same_objects((a)->f, (b)->f, (a)->nf, sizeof(*(a)->f)))

static bool same_labels(const struct fi_labels *a, const struct fi_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].key, b->v[i].key) || strcmp(a->v[i].value, b->v[i].value))
			return false;
	return true;
}

/* Whether a workload's bytes depend on nothing that differs between m and pm but its own
 * pod: every kind a workload reads is unchanged, policies differ at most in their rules, no
 * ServiceEntry or WorkloadEntry (they select pods), and every waypoint has a Service with an
 * address (else its address is a pod's). */
static bool pods_only_changed(const struct fi_mesh *m, const struct fi_mesh *pm)
{
	if (!SAME_KIND(m, pm, namespaces, n_namespaces) || !SAME_KIND(m, pm, nodes, n_nodes) ||
	    !SAME_KIND(m, pm, service_accounts, n_service_accounts) ||
	    !SAME_KIND(m, pm, services, n_services) || !SAME_KIND(m, pm, gateways, n_gateways) ||
	    !SAME_KIND(m, pm, peer_authns, n_peer_authns) || m->n_service_entries ||
	    pm->n_service_entries || m->n_workload_entries || pm->n_workload_entries ||
	    m->n_authz_policies != pm->n_authz_policies)
		return false;
	for (size_t i = 0; i < m->n_authz_policies; i++) {
		const struct fi_authz_policy *a = &m->authz_policies[i], *b = &pm->authz_policies[i];
		if (strcmp(a->meta.ns, b->meta.ns) || strcmp(a->meta.name, b->meta.name) ||
		    policy_sent(a) != policy_sent(b) || !same_labels(&a->selector, &b->selector))
			return false;
	}
	for (size_t i = 0; i < m->n_gateways; i++) {
		const struct fi_gateway *g = &m->gateways[i];
		const struct fi_service *s = fi_mesh_find_service(m, g->meta.ns, g->meta.name);
		if (!strcmp(g->class_name, FI_WAYPOINT_CLASS) && (!s || !s->n_ips))
			return false;
	}
	return true;
}

static bool pod_sent(const struct fi_mesh *m, const struct fi_pod *p)
{
	return p->n_ips && (fi_mesh_pod_in_mesh(m, p) || fi_mesh_pod_waypoint(m, p));
}

/* One edit of the address set: name dropped, then res (when not NULL) put in its place. */
struct edit {
	char *name;
	struct fi_resource *res;
};

static int edit_cmp(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	/* A removal sorts before the upsert of the same name. */
	return c ? c : (x->res != NULL) - (y->res != NULL);
}

static void add_edit(struct edit **v, size_t *n, size_t *cap, char *name, struct fi_resource *res)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = (struct edit){name, res};
}

/* The first index in [lo, n) whose name is not below name. */
static size_t lower_bound(const struct fi_resource *v, size_t lo, size_t n, const char *name)
{
	size_t hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* prev's address set with edits applied (sorted; a name's removal before its upsert), in
 * prev's own array, so the 100,000 kept entries are neither copied to a new array nor
 * compared: a forward pass takes out every entry an edit names (prev keeps them), a backward
 * pass over the grown array puts the upserts in. Returns the array, n_out its length. */
static struct fi_resource *apply_edits(struct fi_resources *prev, struct edit *e, size_t ne,
                                       size_t *n_out)
{
	size_t n = prev->n_addresses, nup = 0, r = 0, w = 0, d = 0;
	struct fi_resource *pv = prev->addresses;
	struct fi_resource *dropped = xmalloc((ne + 1) * sizeof(*dropped));

	for (size_t j = 0; j < ne; j++) {
		nup += e[j].res != NULL;
		if (j && !strcmp(e[j - 1].name, e[j].name))
			continue;
		size_t pos = lower_bound(pv, r, n, e[j].name);
		memmove(pv + w, pv + r, (pos - r) * sizeof(*pv));
		w += pos - r;
		r = pos;
		if (r < n && !strcmp(pv[r].name, e[j].name))
			dropped[d++] = pv[r++];
	}
	memmove(pv + w, pv + r, (n - r) * sizeof(*pv));
	w += n - r;
	pv = xrealloc(pv, (w + nup + 1) * sizeof(*pv));
	size_t i = w;
	w += nup;
	for (size_t j = ne; j-- > 0;) {
		if (!e[j].res)
			continue;
		size_t pos = lower_bound(pv, 0, i, e[j].name), cnt = i - pos;
		w -= cnt;
		memmove(pv + w, pv + pos, cnt * sizeof(*pv));
		pv[--w] = *e[j].res;
		i = pos;
	}
	*n_out = n - d + nup;
	prev->addresses = dropped;
	prev->n_addresses = d;
	return pv;
}

/* Services whose selector picks p (by the index of c->m's Services, which pm shares). */
static void mark_selecting(struct conv *c, const struct fi_pod *p, bool *affected)
{
	size_t n;
	const size_t *cand = service_candidates(c, p, &n);
	for (size_t k = 0; k < n; k++)
		if (service_selects(&c->m->services[cand[k]], p))
			affected[cand[k]] = true;
}

static int convert_update(struct conv *c, const struct fi_mesh *pm, struct edit **edits,
                          size_t *ne)
{
	const struct fi_mesh *m = c->m;
	size_t cap = 0, i = 0, j = 0;
	bool *affected = xcalloc(m->n_services + 1, sizeof(*affected));
	int rc = 0;

	/* Building the index of every Service costs more than the few pods it would serve. */
	c->no_index = true;
	/* Pods: both arrays sorted by (namespace, name); a pod unchanged keeps its bytes. */
	while (!rc && (i < m->n_pods || j < pm->n_pods)) {
		const struct fi_pod *p = i < m->n_pods ? &m->pods[i] : NULL;
		const struct fi_pod *q = j < pm->n_pods ? &pm->pods[j] : NULL;
		/* The same name string: the same object of one parsed file (the common case). */
		int cmp = !p ? 1 : !q ? -1 : p->meta.name == q->meta.name ? 0 : strcmp(p->meta.ns, q->meta.ns);
		if (p && q && !cmp && p->meta.name != q->meta.name)
			cmp = strcmp(p->meta.name, q->meta.name);
		if (!cmp && same_objects(p, q, 1, sizeof(*p))) {
			i++, j++;
			continue;
		}
		if (cmp >= 0) { /* q changed or removed */
			if (pod_sent(pm, q)) {
				add_edit(edits, ne, &cap,
				         zt_arena_printf(&c->names, "%s//Pod/%s/%s", c->o.cluster_id,
				                         q->meta.ns, q->meta.name),
				         NULL);
				mark_selecting(c, q, affected);
			}
			j++;
		}
		if (cmp <= 0) { /* p changed or added */
			if ((c->pod_sent[i] = pod_sent(m, p))) {
				mark_selecting(c, p, affected);
				rc = add_workload(c, p);
			}
			i++;
		}
		zt_arena_clear(&c->a);
	}
	/* Services a changed pod selects (before or after): sent while any sent pod selects
	 * them; the others keep their bytes. */
	for (size_t s = 0; !rc && s < m->n_services; s++) {
		const struct fi_service *sv = &m->services[s];
		size_t lo, hi;
		if (!affected[s])
			continue;
		ns_range(m->pods, m->n_pods, sizeof(*m->pods), sv->meta.ns, &lo, &hi);
		for (size_t k = lo; k < hi && !c->svc_sent[s]; k++)
			c->svc_sent[s] = service_selects(sv, &m->pods[k]) && pod_sent(m, &m->pods[k]);
		add_edit(edits, ne, &cap,
		         zt_arena_printf(&c->names, "%s/%s", sv->meta.ns,
		                         hostname(c, sv->meta.ns, sv->meta.name)),
		         NULL);
		rc = add_service(c, sv);
		zt_arena_clear(&c->a);
	}
	free(affected);
	for (size_t k = 0; k < c->addrs.n; k++)
		add_edit(edits, ne, &cap, c->addrs.v[k].name, &c->addrs.v[k]);
	/* Authorizations, as a full conversion makes them: they are few. */
	for (size_t k = 0; !rc && k < m->n_authz_policies; k++) {
		rc = add_policy(c, &m->authz_policies[k]);
		zt_arena_clear(&c->a);
	}
	bool strict = false;
	for (size_t k = 0; !rc && k < m->n_peer_authns; k++) {
		strict |= m->peer_authns[k].mode == FI_MTLS_STRICT;
		if (m->peer_authns[k].selector.n)
			rc = add_converted_pa(c, &m->peer_authns[k]);
		zt_arena_clear(&c->a);
	}
	if (!rc && strict)
		rc = add_static_strict(c);
	return rc;
}

int fi_convert_update(const struct fi_mesh *m, const struct fi_mesh *pm,
                      struct fi_resources *prev, const struct fi_convert_opts *o,
                      struct fi_resources *out, char *err, size_t errlen)
{
	struct edit *edits = NULL;
	struct conv c;
	size_t ne = 0;
	int rc;

	if (!pm || !prev || !pods_only_changed(m, pm))
		return fi_convert(m, o, out, err, errlen);
	conv_init(&c, m, o, out, err, errlen);
	rc = convert_update(&c, pm, &edits, &ne);
	free(c.pod_sent);
	free(c.svc_sent);
	index_clear(&c);
	zt_arena_clear(&c.a);
	if (!rc)
		rc = fi_waypoint_convert(m, c.o.root_namespace, c.o.cluster_domain, &out->waypoints,
		                         &out->n_waypoints, err, errlen);
	if (rc) {
		free(edits);
		zt_arena_clear(&c.names);
		out_clear(&c.addrs);
		out_clear(&c.authz);
		fi_resources_clear(out);
		return rc;
	}
	if (ne > 1)
		qsort(edits, ne, sizeof(*edits), edit_cmp);
	out->addresses = apply_edits(prev, edits, ne, &out->n_addresses);
	free(edits);
	zt_arena_clear(&c.names);
	free(c.addrs.v); /* the resources themselves moved into out */
	if (c.authz.n)
		qsort(c.authz.v, c.authz.n, sizeof(*c.authz.v), resource_cmp);
	out->authorizations = c.authz.v;
	out->n_authorizations = c.authz.n;
	return 1;
}
