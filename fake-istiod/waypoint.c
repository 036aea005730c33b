/* The ztunnel.waypoint.Waypoint resources (see waypoint.h). Messages point into the mesh
 * model (strings borrowed) and into arrays collected in a small list, freed after packing. */
#include "fake-istiod/waypoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/log.h"
#include "runtime/mem.h"
#include "ztunnel/waypoint.pb-c.h"

ZT_LOG_MODULE("waypoint");

/* Every allocation of one waypoint's message, freed together. */
struct bag {
	void **p;
	size_t n, cap;
};

static void *bag_add(struct bag *b, void *p)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 32;
		b->p = xrealloc(b->p, b->cap * sizeof(*b->p));
	}
	b->p[b->n++] = p;
	return p;
}

static void *bag_calloc(struct bag *b, size_t n, size_t size)
{
	return bag_add(b, xcalloc(n, size));
}

static void bag_clear(struct bag *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->p[i]);
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static const char *label(const struct fi_meta *m, const char *key)
{
	return fi_labels_get(&m->labels, key);
}

const struct fi_gateway *fi_waypoint_of(const struct fi_mesh *m, const struct fi_meta *obj,
                                        bool workload)
{
	const char *name = label(obj, "istio.io/use-waypoint");
	const char *wns = label(obj, "istio.io/use-waypoint-namespace");
	if (!name) {
		const struct fi_namespace *n = fi_mesh_find_namespace(m, obj->ns);
		name = n ? label(&n->meta, "istio.io/use-waypoint") : NULL;
		wns = n ? label(&n->meta, "istio.io/use-waypoint-namespace") : NULL;
	}
	if (!name || !strcmp(name, "none"))
		return NULL;
	const struct fi_gateway *gw = fi_mesh_find_gateway(m, wns ? wns : obj->ns, name);
	if (!gw || strcmp(gw->class_name, FI_WAYPOINT_CLASS))
		return NULL;
	/* The Gateway's own Service never uses a waypoint. */
	if (!workload && !strcmp(gw->meta.ns, obj->ns) && !strcmp(gw->meta.name, obj->name))
		return NULL;
	const char *for_ = label(&gw->meta, "istio.io/waypoint-for");
	if (!for_)
		for_ = "service";
	if (!strcmp(for_, "none") || (workload && !strcmp(for_, "service")) ||
	    (!workload && !strcmp(for_, "workload")))
		return NULL;
	return gw;
}

/* A borrowed copy of a string list (protobuf-c wants char **). */
static char **strs(struct bag *b, const struct fi_strs *s, size_t *n)
{
	*n = s->n;
	return s->n ? memcpy(bag_calloc(b, s->n, sizeof(char *)), s->v, s->n * sizeof(char *))
	            : NULL;
}

static bool evaluable_key(const char *k)
{
	static const char *const keys[] = {"source.principal", "source.namespace",
	                                   "source.ip",        "remote.ip",
	                                   "destination.ip",   "destination.port"};
	size_t n = strlen(k);
	if (n > sizeof("request.headers[]") - 1 && !strncmp(k, "request.headers[", 16) &&
	    k[n - 1] == ']')
		return true;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k, keys[i]))
			return true;
	return false;
}

/* Appends "what" to the rule's unevaluable text (kept in buf). */
static void unevaluable(char *buf, size_t size, const char *what)
{
	size_t n = strlen(buf);
	if (!strstr(buf, what))
		snprintf(buf + n, size - n, "%s%s", n ? ", " : "", what);
}

static Ztunnel__Waypoint__Rule *rule(struct bag *b, const char *policy, size_t idx,
                                     const struct fi_authz_rule *r)
{
	Ztunnel__Waypoint__Rule *ru = bag_calloc(b, 1, sizeof(*ru));
	char why[256] = "";

	ztunnel__waypoint__rule__init(ru);
	ru->from = bag_calloc(b, r->n_from, sizeof(*ru->from));
	for (size_t i = 0; i < r->n_from; i++) {
		const struct fi_strs *f = r->from[i].f;
		Ztunnel__Waypoint__Source *s = bag_calloc(b, 1, sizeof(*s));
		ztunnel__waypoint__source__init(s);
		s->principals = strs(b, &f[FI_SRC_PRINCIPALS], &s->n_principals);
		s->not_principals = strs(b, &f[FI_SRC_NOT_PRINCIPALS], &s->n_not_principals);
		s->namespaces = strs(b, &f[FI_SRC_NAMESPACES], &s->n_namespaces);
		s->not_namespaces = strs(b, &f[FI_SRC_NOT_NAMESPACES], &s->n_not_namespaces);
		s->ip_blocks = strs(b, &f[FI_SRC_IP_BLOCKS], &s->n_ip_blocks);
		s->not_ip_blocks = strs(b, &f[FI_SRC_NOT_IP_BLOCKS], &s->n_not_ip_blocks);
		s->remote_ip_blocks = strs(b, &f[FI_SRC_REMOTE_IP_BLOCKS], &s->n_remote_ip_blocks);
		s->not_remote_ip_blocks =
		        strs(b, &f[FI_SRC_NOT_REMOTE_IP_BLOCKS], &s->n_not_remote_ip_blocks);
		s->service_accounts = strs(b, &f[FI_SRC_SERVICE_ACCOUNTS], &s->n_service_accounts);
		s->not_service_accounts =
		        strs(b, &f[FI_SRC_NOT_SERVICE_ACCOUNTS], &s->n_not_service_accounts);
		if (f[FI_SRC_REQUEST_PRINCIPALS].n)
			unevaluable(why, sizeof(why), "requestPrincipals");
		if (f[FI_SRC_NOT_REQUEST_PRINCIPALS].n)
			unevaluable(why, sizeof(why), "notRequestPrincipals");
		ru->from[ru->n_from++] = s;
	}
	ru->to = bag_calloc(b, r->n_to, sizeof(*ru->to));
	for (size_t i = 0; i < r->n_to; i++) {
		const struct fi_strs *f = r->to[i].f;
		Ztunnel__Waypoint__Operation *o = bag_calloc(b, 1, sizeof(*o));
		ztunnel__waypoint__operation__init(o);
		o->hosts = strs(b, &f[FI_OP_HOSTS], &o->n_hosts);
		o->not_hosts = strs(b, &f[FI_OP_NOT_HOSTS], &o->n_not_hosts);
		o->ports = strs(b, &f[FI_OP_PORTS], &o->n_ports);
		o->not_ports = strs(b, &f[FI_OP_NOT_PORTS], &o->n_not_ports);
		o->methods = strs(b, &f[FI_OP_METHODS], &o->n_methods);
		o->not_methods = strs(b, &f[FI_OP_NOT_METHODS], &o->n_not_methods);
		o->paths = strs(b, &f[FI_OP_PATHS], &o->n_paths);
		o->not_paths = strs(b, &f[FI_OP_NOT_PATHS], &o->n_not_paths);
		ru->to[ru->n_to++] = o;
	}
	ru->when = bag_calloc(b, r->n_when, sizeof(*ru->when));
	for (size_t i = 0; i < r->n_when; i++) {
		const struct fi_authz_when *w = &r->when[i];
		if (!evaluable_key(w->key)) {
			unevaluable(why, sizeof(why), w->key);
			continue;
		}
		Ztunnel__Waypoint__Condition *c = bag_calloc(b, 1, sizeof(*c));
		ztunnel__waypoint__condition__init(c);
		c->key = w->key;
		c->values = strs(b, &w->values, &c->n_values);
		c->not_values = strs(b, &w->not_values, &c->n_not_values);
		ru->when[ru->n_when++] = c;
	}
	if (why[0]) {
		zt_warn("AuthorizationPolicy %s: rules[%zu]: cannot evaluate %s in a waypoint; an "
		        "ALLOW rule fails closed, a DENY rule is matched without it",
		        policy, idx, why);
		ru->unevaluable = bag_add(b, xstrdup(why));
	}
	return ru;
}

/* How p binds to gw, or NULL; for a Service binding, adds the Service's key to pol. */
static const char *binding(const struct fi_mesh *m, const struct fi_gateway *gw,
                           const struct fi_authz_policy *p, const char *root_ns, const char *domain,
                           struct bag *b, Ztunnel__Waypoint__Policy *pol)
{
	const char *how = NULL;
	bool whole = false;

	for (size_t i = 0; i < p->n_target_refs; i++) {
		const struct fi_target_ref *t = &p->target_refs[i];
		bool gwapi = !strcmp(t->group, "gateway.networking.k8s.io");
		if (t->ns && strcmp(t->ns, p->meta.ns))
			continue;
		if (gwapi && !strcmp(t->kind, "Gateway") && !strcmp(t->name, gw->meta.name) &&
		    !strcmp(p->meta.ns, gw->meta.ns)) {
			how = "Gateway", whole = true;
		} else if (gwapi && !strcmp(t->kind, "GatewayClass") &&
		           !strcmp(t->name, FI_WAYPOINT_CLASS) && !strcmp(p->meta.ns, root_ns)) {
			if (!whole)
				how = "GatewayClass";
			whole = true;
		} else if (!t->group[0] && !strcmp(t->kind, "Service")) {
			const struct fi_service *s = fi_mesh_find_service(m, p->meta.ns, t->name);
			if (!s || fi_waypoint_of(m, &s->meta, false) != gw)
				continue;
			if (!how)
				how = "Service";
			char key[512];
			snprintf(key, sizeof(key), "%s/%s.%s.svc.%s", s->meta.ns, s->meta.name,
			         s->meta.ns, domain);
			pol->services = xrealloc(pol->services,
			                         (pol->n_services + 1) * sizeof(*pol->services));
			pol->services[pol->n_services++] = bag_add(b, xstrdup(key));
		}
	}
	if (whole) {
		pol->n_services = 0;
	}
	if (pol->services)
		bag_add(b, pol->services);
	return how;
}

static int one(const struct fi_mesh *m, const struct fi_gateway *gw, const char *root_ns,
               const char *domain, struct fi_resource *out, char *err, size_t errlen)
{
	struct bag b = {0};
	Ztunnel__Waypoint__Waypoint w = ZTUNNEL__WAYPOINT__WAYPOINT__INIT;
	char name[512];
	const char *sa = fi_labels_get(&gw->meta.annotations, "gateway.istio.io/service-account");

	w.namespace_ = gw->meta.ns;
	w.name = gw->meta.name;
	w.service_account = (char *)(sa ? sa : gw->meta.name);
	w.policies = bag_calloc(&b, m->n_authz_policies, sizeof(*w.policies));
	/* Root namespace first, then the rest in model order (namespace, name). */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < m->n_authz_policies; i++) {
			const struct fi_authz_policy *p = &m->authz_policies[i];
			if ((pass == 0) != !strcmp(p->meta.ns, root_ns) || !p->n_target_refs)
				continue;
			Ztunnel__Waypoint__Policy *pol = bag_calloc(&b, 1, sizeof(*pol));
			ztunnel__waypoint__policy__init(pol);
			const char *how = binding(m, gw, p, root_ns, domain, &b, pol);
			if (!how)
				continue;
			char policy[512];
			snprintf(policy, sizeof(policy), "%s/%s", p->meta.ns, p->meta.name);
			if (p->action == FI_AUTHZ_CUSTOM) {
				zt_warn("AuthorizationPolicy %s: CUSTOM is not supported by the "
				        "waypoint %s/%s; skipped",
				        policy, gw->meta.ns, gw->meta.name);
				continue;
			}
			pol->namespace_ = p->meta.ns;
			pol->name = p->meta.name;
			pol->action = p->action == FI_AUTHZ_DENY ? ZTUNNEL__WAYPOINT__ACTION__DENY
			              : p->action == FI_AUTHZ_AUDIT
			                      ? ZTUNNEL__WAYPOINT__ACTION__AUDIT
			                      : ZTUNNEL__WAYPOINT__ACTION__ALLOW;
			pol->dry_run = p->dry_run;
			pol->bound_by = (char *)how;
			pol->rules = bag_calloc(&b, p->n_rules, sizeof(*pol->rules));
			for (size_t r = 0; r < p->n_rules; r++)
				pol->rules[pol->n_rules++] = rule(&b, policy, r, &p->rules[r]);
			w.policies[w.n_policies++] = pol;
		}
	}
	snprintf(name, sizeof(name), "%s/%s", gw->meta.ns, gw->meta.name);
	int rc = fi_resource_pack(out, name, &w.base);
	if (rc)
		snprintf(err, errlen, "%s: cannot encode the waypoint resource", name);
	bag_clear(&b);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct fi_resource *)a)->name, ((const struct fi_resource *)b)->name);
}

int fi_waypoint_convert(const struct fi_mesh *m, const char *root_ns, const char *cluster_domain,
                        struct fi_resource **out, size_t *n, char *err, size_t errlen)
{
	struct fi_resource *v = xcalloc(m->n_gateways, sizeof(*v));
	size_t k = 0;
	int rc = 0;

	for (size_t i = 0; !rc && i < m->n_gateways; i++)
		if (!strcmp(m->gateways[i].class_name, FI_WAYPOINT_CLASS))
			if (!(rc = one(m, &m->gateways[i], root_ns, cluster_domain, &v[k], err,
			               errlen)))
				k++;
	if (rc) {
		for (size_t i = 0; i < k; i++)
			fi_resource_clear(&v[i]);
		free(v);
		*out = NULL;
		*n = 0;
		return rc;
	}
	qsort(v, k, sizeof(*v), by_name);
	*out = v;
	*n = k;
	return 0;
}
