/* Local config: YAML tree -> protobuf messages -> serialized resources -> store. Messages are
 * built in a per-resource arena (strings, arrays and sub-messages alike) and packed at once,
 * so only the packed bytes outlive a resource's parse. Every error names file:line:col. */
#include "state/local.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "protocol/pb.h"
#include "runtime/arena.h"
#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "state/dump.h"

ZT_LOG_MODULE("state");

#define DEFAULT_HBONE_PORT 15008

struct ctx {
	struct zt_yaml_rd rd; /* file:line:col messages */
	struct zt_arena a;   /* the resource being built */
	struct zt_hmap seen; /* "a:" / "p:" + name -> (void *)1 */
	struct zt_local_config *out;
};

#define fail(c, n, ...) zt_yaml_rd_fail(&(c)->rd, (n), ZT_E_PARSE, __VA_ARGS__)

static void *msg_new(struct ctx *c, const ProtobufCMessageDescriptor *d)
{
	void *m = zt_arena_calloc(&c->a, 1, d->sizeof_message);

	protobuf_c_message_init(d, m);
	return m;
}

/* ---- shapes ------------------------------------------------------------------------------- */

static int want(struct ctx *c, const struct zt_yaml *n, enum zt_yaml_type t, const char *what)
{
	return zt_yaml_rd_want(&c->rd, n, t, what);
}

/* n must be a mapping whose keys are all in keys (NULL-terminated). */
static int check_keys(struct ctx *c, const struct zt_yaml *n, const char *const *keys,
                      const char *what)
{
	size_t mark = zt_yaml_rd_enter(&c->rd, "%s", what);
	int rc = zt_yaml_rd_only_keys(&c->rd, n, keys);

	zt_yaml_rd_leave(&c->rd, mark);
	return rc;
}

/* A sequence, or nothing for an absent or null node (*n = 0). */
static int seq(struct ctx *c, const struct zt_yaml *n, const char *what, size_t *len)
{
	*len = 0;
	if (!n || zt_yaml_is_null(n))
		return 0;
	if (want(c, n, ZT_YAML_SEQ, what))
		return ZT_E_PARSE;
	*len = n->n;
	return 0;
}

/* ---- scalars: absent keys leave *out as it is (the protobuf default) ---------------------- */

static int get_str(struct ctx *c, const struct zt_yaml *map, const char *key, char **out)
{
	const char *s;
	int rc = zt_yaml_rd_str(&c->rd, map, key, false, &s);

	if (s)
		*out = zt_arena_strdup(&c->a, s);
	return rc;
}

static int to_uint(struct ctx *c, const struct zt_yaml *n, const char *what, int64_t min,
                   int64_t max, uint32_t *out)
{
	int64_t v;
	int rc = zt_yaml_int(n, min, max, &v);

	if (rc == ZT_E_RANGE)
		return fail(c, n, "%s: %s out of range %lld..%lld", what, zt_yaml_str(n),
		            (long long)min, (long long)max);
	if (rc)
		return fail(c, n, "%s: expected an integer", what);
	*out = (uint32_t)v;
	return 0;
}

static int get_uint(struct ctx *c, const struct zt_yaml *map, const char *key, int64_t max,
                    uint32_t *out)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);

	return n ? to_uint(c, n, key, 0, max, out) : 0;
}

static int get_bool(struct ctx *c, const struct zt_yaml *map, const char *key,
                    protobuf_c_boolean *out)
{
	bool b = *out;
	int rc = zt_yaml_rd_bool(&c->rd, map, key, &b);

	*out = b;
	return rc;
}

/* names[v] is the text of value v; NULL entries are holes. */
static int to_enum(struct ctx *c, const struct zt_yaml *n, const char *what,
                   const char *const *names, size_t count, int *out)
{
	const char *s = zt_yaml_str(n);

	for (size_t i = 0; s && i < count; i++) {
		if (names[i] && strcmp(names[i], s) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	char list[256] = "";
	size_t used = 0;
	for (size_t i = 0; i < count; i++)
		if (names[i] && used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
			                         used ? "|" : "", names[i]);
	return fail(c, n, "%s: \"%s\" is not one of %s", what, s ? s : "", list);
}

/* An optional enum-valued key; names is an array (its size gives the value count). */
#define ENUM_FIELD(c, map, key, names, out)                                                        \
	enum_field((c), (map), (key), (names), sizeof(names) / sizeof((names)[0]), (out))

static int enum_field(struct ctx *c, const struct zt_yaml *map, const char *key,
                      const char *const *names, size_t count, int *out)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);

	return n ? to_enum(c, n, key, names, count, out) : 0;
}

static int get_strings(struct ctx *c, const struct zt_yaml *map, const char *key, char ***out,
                       size_t *count)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);
	size_t len;
	char **v;

	if (seq(c, n, key, &len))
		return ZT_E_PARSE;
	v = zt_arena_calloc(&c->a, len, sizeof(*v));
	for (size_t i = 0; i < len; i++) {
		const struct zt_yaml *e = zt_yaml_at(n, i);
		if (e->type != ZT_YAML_SCALAR)
			return fail(c, e, "%s: expected a string, got %s", key,
			            zt_yaml_type_name(e));
		v[i] = zt_arena_strdup(&c->a, zt_yaml_str(e));
	}
	*out = v;
	*count = len;
	return 0;
}

/* ---- addresses ---------------------------------------------------------------------------- */

static void ip_bytes(struct ctx *c, const struct zt_ip *ip, ProtobufCBinaryData *out)
{
	out->len = ip->family == AF_INET ? 4 : 16;
	out->data = zt_arena_calloc(&c->a, 1, out->len);
	memcpy(out->data, ip->bytes, out->len);
}

/* "<network>/<ip>", or a bare "<ip>" on the default network. */
static int net_ip(struct ctx *c, const struct zt_yaml *n, const char *what,
                  Istio__Workload__NetworkAddress *out)
{
	const char *s = zt_yaml_str(n), *slash;
	struct zt_ip ip;

	if (!s || n->type != ZT_YAML_SCALAR)
		return fail(c, n, "%s: expected \"<network>/<ip>\"", what);
	slash = strchr(s, '/');
	if (zt_ip_parse(&ip, slash ? slash + 1 : s, strlen(slash ? slash + 1 : s)))
		return fail(c, n, "%s: bad IP address \"%s\"", what, s);
	out->network = zt_arena_strndup(&c->a, s, slash ? (size_t)(slash - s) : 0);
	ip_bytes(c, &ip, &out->address);
	return 0;
}

/* "<network>/<ip>/<prefix>", or "<ip>/<prefix>" on the default network. */
static int net_cidr(struct ctx *c, const struct zt_yaml *n, const char *what,
                    Istio__Workload__NetworkAddress *out)
{
	const char *s = zt_yaml_str(n), *first, *text;
	struct zt_cidr cidr;

	if (!s || n->type != ZT_YAML_SCALAR)
		return fail(c, n, "%s: expected \"<network>/<ip>/<prefix>\"", what);
	first = strchr(s, '/');
	text = first && strchr(first + 1, '/') ? first + 1 : s;
	if (zt_cidr_parse(&cidr, text, strlen(text)))
		return fail(c, n, "%s: bad CIDR \"%s\"", what, s);
	out->network = zt_arena_strndup(&c->a, s, text == s ? 0 : (size_t)(first - s));
	ip_bytes(c, &cidr.ip, &out->address);
	out->prefix_case = ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH;
	out->length = cidr.prefix;
	return 0;
}

/* "<ip>/<prefix>" or a bare IP (full-length prefix). */
static int policy_addr(struct ctx *c, const struct zt_yaml *n, Istio__Security__Address *out)
{
	const char *s = zt_yaml_str(n);
	struct zt_cidr cidr;
	struct zt_ip ip;

	if (s && n->type == ZT_YAML_SCALAR && zt_cidr_parse(&cidr, s, strlen(s)) == 0) {
		ip = cidr.ip;
	} else if (s && n->type == ZT_YAML_SCALAR && zt_ip_parse(&ip, s, strlen(s)) == 0) {
		cidr.prefix = ip.family == AF_INET ? 32 : 128;
	} else {
		return fail(c, n, "bad IP address or CIDR \"%s\"", s ? s : "");
	}
	ip_bytes(c, &ip, &out->address);
	out->length = cidr.prefix;
	return 0;
}

/* ---- workload and service pieces ---------------------------------------------------------- */

/* {<service port>: <target port> | {targetPort, appProtocol}} */
static int port_map(struct ctx *c, const struct zt_yaml *n, const char *what,
                    Istio__Workload__Port ***out, size_t *count)
{
	static const char *const keys[] = {"targetPort", "appProtocol", NULL};
	static const char *const protos[] = {"UNKNOWN", "HTTP11", "HTTP2", "GRPC", "TCP", "TLS"};
	Istio__Workload__Port **v;

	*count = 0;
	if (!n || zt_yaml_is_null(n))
		return 0;
	if (want(c, n, ZT_YAML_MAP, what))
		return ZT_E_PARSE;
	v = zt_arena_calloc(&c->a, n->n, sizeof(*v));
	for (size_t i = 0; i < n->n; i++) {
		const struct zt_yaml *val = zt_yaml_val(n, i);
		Istio__Workload__Port *p = msg_new(c, &istio__workload__port__descriptor);
		if (to_uint(c, zt_yaml_key(n, i), "service port", 1, 65535, &p->service_port))
			return ZT_E_PARSE;
		if (val && val->type == ZT_YAML_MAP) {
			int proto = 0;
			if (check_keys(c, val, keys, "port") ||
			    get_uint(c, val, "targetPort", 65535, &p->target_port) ||
			    ENUM_FIELD(c, val, "appProtocol", protos, &proto))
				return ZT_E_PARSE;
			p->app_protocol = (Istio__Workload__AppProtocol)proto;
		} else if (to_uint(c, val, "target port", 0, 65535, &p->target_port)) {
			return ZT_E_PARSE;
		}
		v[i] = p;
	}
	*out = v;
	*count = n->n;
	return 0;
}

static int gateway_fields(struct ctx *c, const struct zt_yaml *n, const char *what,
                          Istio__Workload__GatewayAddress *gw)
{
	static const char *const host_keys[] = {"namespace", "hostname", NULL};
	const struct zt_yaml *d = zt_yaml_get(n, "destination");

	gw->hbone_mtls_port = DEFAULT_HBONE_PORT;
	if (get_uint(c, n, "hboneMtlsPort", 65535, &gw->hbone_mtls_port))
		return ZT_E_PARSE;
	if (!d || zt_yaml_is_null(d))
		return fail(c, n, "%s: missing destination", what);
	if (d->type == ZT_YAML_MAP) {
		Istio__Workload__NamespacedHostname *h =
		        msg_new(c, &istio__workload__namespaced_hostname__descriptor);
		if (check_keys(c, d, host_keys, "destination") ||
		    get_str(c, d, "namespace", &h->namespace_) ||
		    get_str(c, d, "hostname", &h->hostname))
			return ZT_E_PARSE;
		gw->destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME;
		gw->hostname = h;
		return 0;
	}
	gw->address = msg_new(c, &istio__workload__network_address__descriptor);
	gw->destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS;
	return net_ip(c, d, what, gw->address);
}

static int gateway(struct ctx *c, const struct zt_yaml *map, const char *key,
                   Istio__Workload__GatewayAddress **out)
{
	static const char *const keys[] = {"destination", "hboneMtlsPort", NULL};
	const struct zt_yaml *n = zt_yaml_get(map, key);
	Istio__Workload__GatewayAddress *gw;

	if (!n || zt_yaml_is_null(n))
		return 0;
	if (check_keys(c, n, keys, key))
		return ZT_E_PARSE;
	gw = msg_new(c, &istio__workload__gateway_address__descriptor);
	*out = gw;
	return gateway_fields(c, n, key, gw);
}

/* Key of a resource name in the sets of names seen: one name space per resource type. */
static char *seen_key(enum zt_local_kind kind, const char *name)
{
	char *key = NULL;

	key = xasprintf("%c:%s", kind == ZT_LOCAL_ADDRESS ? 'a' : 'p', name);
	return key;
}

/* Packs msg into a new resource; the arena is then reset for the next one. */
static int emit(struct ctx *c, enum zt_local_kind kind, const char *name,
                const struct zt_yaml *where, const ProtobufCMessage *msg)
{
	struct zt_local_config *o = c->out;
	struct zt_local_resource *r;
	char *key = seen_key(kind, name);
	bool dup = zt_hmap_put(&c->seen, key, (void *)1) != NULL;

	free(key);
	if (dup)
		return fail(c, where, "duplicate resource \"%s\"", name);
	r = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
	o->v = r;
	r = &o->v[o->n];
	memset(r, 0, sizeof(*r));
	if (zt_pb_pack(msg, &r->data, &r->len))
		return fail(c, where, "cannot encode \"%s\"", name);
	r->kind = kind;
	r->name = xstrdup(name);
	r->line = where->line;
	o->n++;
	zt_arena_clear(&c->a);
	return 0;
}

static int workload(struct ctx *c, const struct zt_yaml *n)
{
	/* clang-format off */
	static const char *const keys[] = {
		"uid", "name", "namespace", "serviceAccount", "trustDomain", "workloadIps",
		"protocol", "node", "network", "networkMode", "waypoint", "networkGateway",
		"applicationTunnel", "authorizationPolicies", "status", "clusterId", "locality",
		"canonicalName", "canonicalRevision", "workloadName", "workloadType", "hostname",
		"nativeTunnel", "capacity", "services", NULL};
	/* clang-format on */
	static const char *const tunnel_keys[] = {"protocol", "port", NULL};
	static const char *const locality_keys[] = {"region", "zone", "subzone", NULL};
	static const char *const protocols[] = {"TCP", "HBONE"};
	static const char *const modes[] = {"Standard", "HostNetwork"};
	static const char *const statuses[] = {"Healthy", "Unhealthy"};
	static const char *const types[] = {"deployment", "cronjob", "pod", "job"};
	static const char *const tunnels[] = {"NONE", "PROXY"};
	Istio__Workload__Address *addr = msg_new(c, &istio__workload__address__descriptor);
	Istio__Workload__Workload *w = msg_new(c, &istio__workload__workload__descriptor);
	const struct zt_yaml *ips, *t, *loc, *svcs, *cap;
	int proto = 0, mode = 0, status = 0, type = 0;
	size_t n_ips;

	addr->type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD;
	addr->workload = w;
	if (check_keys(c, n, keys, "workload") || get_str(c, n, "uid", &w->uid) ||
	    get_str(c, n, "name", &w->name) || get_str(c, n, "namespace", &w->namespace_) ||
	    get_str(c, n, "serviceAccount", &w->service_account) ||
	    get_str(c, n, "trustDomain", &w->trust_domain) || get_str(c, n, "node", &w->node) ||
	    get_str(c, n, "network", &w->network) || get_str(c, n, "hostname", &w->hostname) ||
	    get_str(c, n, "clusterId", &w->cluster_id) ||
	    get_str(c, n, "canonicalName", &w->canonical_name) ||
	    get_str(c, n, "canonicalRevision", &w->canonical_revision) ||
	    get_str(c, n, "workloadName", &w->workload_name) ||
	    ENUM_FIELD(c, n, "protocol", protocols, &proto) ||
	    ENUM_FIELD(c, n, "networkMode", modes, &mode) ||
	    ENUM_FIELD(c, n, "status", statuses, &status) ||
	    ENUM_FIELD(c, n, "workloadType", types, &type) ||
	    get_bool(c, n, "nativeTunnel", &w->native_tunnel) ||
	    gateway(c, n, "waypoint", &w->waypoint) ||
	    gateway(c, n, "networkGateway", &w->network_gateway) ||
	    get_strings(c, n, "authorizationPolicies", &w->authorization_policies,
	                &w->n_authorization_policies))
		return ZT_E_PARSE;
	if (!*w->uid)
		return fail(c, n, "workload without uid");
	w->tunnel_protocol = (Istio__Workload__TunnelProtocol)proto;
	w->network_mode = (Istio__Workload__NetworkMode)mode;
	w->status = (Istio__Workload__WorkloadStatus)status;
	w->workload_type = (Istio__Workload__WorkloadType)type;
	ips = zt_yaml_get(n, "workloadIps");
	if (seq(c, ips, "workloadIps", &n_ips))
		return ZT_E_PARSE;
	w->addresses = zt_arena_calloc(&c->a, n_ips, sizeof(*w->addresses));
	w->n_addresses = n_ips;
	for (size_t i = 0; i < n_ips; i++) {
		const struct zt_yaml *e = zt_yaml_at(ips, i);
		const char *s = zt_yaml_str(e);
		struct zt_ip ip;
		if (!s || e->type != ZT_YAML_SCALAR || zt_ip_parse(&ip, s, strlen(s)))
			return fail(c, e, "workloadIps: bad IP address \"%s\"", s ? s : "");
		ip_bytes(c, &ip, &w->addresses[i]);
	}
	if ((t = zt_yaml_get(n, "applicationTunnel")) && !zt_yaml_is_null(t)) {
		int tp = 0;
		w->application_tunnel =
		        msg_new(c, &istio__workload__application_tunnel__descriptor);
		if (check_keys(c, t, tunnel_keys, "applicationTunnel") ||
		    ENUM_FIELD(c, t, "protocol", tunnels, &tp) ||
		    get_uint(c, t, "port", 65535, &w->application_tunnel->port))
			return ZT_E_PARSE;
		w->application_tunnel->protocol = (Istio__Workload__ApplicationTunnel__Protocol)tp;
	}
	if ((loc = zt_yaml_get(n, "locality")) && !zt_yaml_is_null(loc)) {
		w->locality = msg_new(c, &istio__workload__locality__descriptor);
		if (check_keys(c, loc, locality_keys, "locality") ||
		    get_str(c, loc, "region", &w->locality->region) ||
		    get_str(c, loc, "zone", &w->locality->zone) ||
		    get_str(c, loc, "subzone", &w->locality->subzone))
			return ZT_E_PARSE;
	}
	if ((cap = zt_yaml_get(n, "capacity"))) {
		w->capacity = msg_new(c, &google__protobuf__uint32_value__descriptor);
		if (to_uint(c, cap, "capacity", 0, UINT32_MAX, &w->capacity->value))
			return ZT_E_PARSE;
	}
	if ((svcs = zt_yaml_get(n, "services")) && !zt_yaml_is_null(svcs)) {
		if (want(c, svcs, ZT_YAML_MAP, "services"))
			return ZT_E_PARSE;
		w->services = zt_arena_calloc(&c->a, svcs->n, sizeof(*w->services));
		w->n_services = svcs->n;
		for (size_t i = 0; i < svcs->n; i++) {
			Istio__Workload__Workload__ServicesEntry *e =
			        msg_new(c, &istio__workload__workload__services_entry__descriptor);
			const struct zt_yaml *k = zt_yaml_key(svcs, i);
			if (!zt_yaml_str(k) || !strchr(zt_yaml_str(k), '/'))
				return fail(c, k,
				            "services: key must be \"<namespace>/<hostname>\"");
			e->key = zt_arena_strdup(&c->a, zt_yaml_str(k));
			e->value = msg_new(c, &istio__workload__port_list__descriptor);
			if (port_map(c, zt_yaml_val(svcs, i), e->key, &e->value->ports,
			             &e->value->n_ports))
				return ZT_E_PARSE;
			w->services[i] = e;
		}
	}
	return emit(c, ZT_LOCAL_ADDRESS, w->uid, n, &addr->base);
}

/* Enum names shared with the dump, as a table indexed by value. */
static void names_of(const char *(*name)(int), const char **v, size_t count)
{
	for (size_t i = 0; i < count; i++)
		v[i] = name((int)i);
}

static const char *scope_name(int v)
{
	return zt_lb_scope_name((enum zt_lb_scope)v);
}

static const char *mode_name(int v)
{
	return zt_lb_mode_name((enum zt_lb_mode)v);
}

static const char *families_name(int v)
{
	return zt_ip_families_name((enum zt_ip_families)v);
}

static int load_balancer(struct ctx *c, const struct zt_yaml *n, Istio__Workload__Service *s)
{
	static const char *const keys[] = {"routingPreferences", "mode", "healthPolicy", NULL};
	static const char *const health[] = {"OnlyHealthy", "AllowAll"};
	const char *scopes[7], *modes[4];
	Istio__Workload__LoadBalancing *lb;
	const struct zt_yaml *prefs;
	int mode = 0, hp = 0;
	size_t np;

	if (!n || zt_yaml_is_null(n))
		return 0;
	names_of(scope_name, scopes, 7);
	names_of(mode_name, modes, 4);
	lb = msg_new(c, &istio__workload__load_balancing__descriptor);
	s->load_balancing = lb;
	if (check_keys(c, n, keys, "loadBalancer") || ENUM_FIELD(c, n, "mode", modes, &mode) ||
	    ENUM_FIELD(c, n, "healthPolicy", health, &hp))
		return ZT_E_PARSE;
	lb->mode = (Istio__Workload__LoadBalancing__Mode)mode;
	lb->health_policy = (Istio__Workload__LoadBalancing__HealthPolicy)hp;
	prefs = zt_yaml_get(n, "routingPreferences");
	if (seq(c, prefs, "routingPreferences", &np))
		return ZT_E_PARSE;
	lb->routing_preference = zt_arena_calloc(&c->a, np, sizeof(*lb->routing_preference));
	lb->n_routing_preference = np;
	for (size_t i = 0; i < np; i++) {
		int v;
		if (to_enum(c, zt_yaml_at(prefs, i), "routingPreferences", scopes, 7, &v))
			return ZT_E_PARSE;
		lb->routing_preference[i] = (Istio__Workload__LoadBalancing__Scope)v;
	}
	return 0;
}

static int service(struct ctx *c, const struct zt_yaml *n)
{
	/* clang-format off */
	static const char *const keys[] = {
		"name", "namespace", "hostname", "vips", "cidrVips", "ports", "subjectAltNames",
		"waypoint", "weightedWaypoints", "loadBalancer", "ipFamilies", "canonical",
		"ingressUseWaypoint", "visibility", NULL};
	/* clang-format on */
	static const char *const ww_keys[] = {"destination", "hboneMtlsPort", "weight", NULL};
	static const char *const visibilities[] = {"Public", "Namespace"};
	const char *families[4];
	Istio__Workload__Address *addr = msg_new(c, &istio__workload__address__descriptor);
	Istio__Workload__Service *s = msg_new(c, &istio__workload__service__descriptor);
	const struct zt_yaml *vips = zt_yaml_get(n, "vips"), *cidrs = zt_yaml_get(n, "cidrVips");
	const struct zt_yaml *wws = zt_yaml_get(n, "weightedWaypoints");
	size_t nv, nc, nw;
	int fam = 0, vis = 0;
	char *key;

	names_of(families_name, families, 4);
	addr->type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_SERVICE;
	addr->service = s;
	if (check_keys(c, n, keys, "service") || get_str(c, n, "name", &s->name) ||
	    get_str(c, n, "namespace", &s->namespace_) || get_str(c, n, "hostname", &s->hostname) ||
	    port_map(c, zt_yaml_get(n, "ports"), "ports", &s->ports, &s->n_ports) ||
	    get_strings(c, n, "subjectAltNames", &s->subject_alt_names, &s->n_subject_alt_names) ||
	    gateway(c, n, "waypoint", &s->waypoint) ||
	    load_balancer(c, zt_yaml_get(n, "loadBalancer"), s) ||
	    ENUM_FIELD(c, n, "ipFamilies", families, &fam) ||
	    get_bool(c, n, "canonical", &s->canonical) ||
	    get_bool(c, n, "ingressUseWaypoint", &s->ingress_use_waypoint) ||
	    ENUM_FIELD(c, n, "visibility", visibilities, &vis) || seq(c, vips, "vips", &nv) ||
	    seq(c, cidrs, "cidrVips", &nc) || seq(c, wws, "weightedWaypoints", &nw))
		return ZT_E_PARSE;
	if (!*s->namespace_ || !*s->hostname)
		return fail(c, n, "service needs a namespace and a hostname");
	s->ip_families = (Istio__Workload__IPFamilies)fam;
	s->visibility = (Istio__Workload__Service__Visibility)vis;
	s->addresses = zt_arena_calloc(&c->a, nv + nc, sizeof(*s->addresses));
	s->n_addresses = nv + nc;
	for (size_t i = 0; i < nv + nc; i++) {
		s->addresses[i] = msg_new(c, &istio__workload__network_address__descriptor);
		if (i < nv ? net_ip(c, zt_yaml_at(vips, i), "vips", s->addresses[i])
		           : net_cidr(c, zt_yaml_at(cidrs, i - nv), "cidrVips", s->addresses[i]))
			return ZT_E_PARSE;
	}
	s->weighted_waypoints = zt_arena_calloc(&c->a, nw, sizeof(*s->weighted_waypoints));
	s->n_weighted_waypoints = nw;
	for (size_t i = 0; i < nw; i++) {
		const struct zt_yaml *e = zt_yaml_at(wws, i);
		Istio__Workload__WeightedWaypoint *ww =
		        msg_new(c, &istio__workload__weighted_waypoint__descriptor);
		ww->destination = msg_new(c, &istio__workload__gateway_address__descriptor);
		if (check_keys(c, e, ww_keys, "weightedWaypoints") ||
		    gateway_fields(c, e, "weightedWaypoints", ww->destination) ||
		    get_uint(c, e, "weight", UINT32_MAX, &ww->weight))
			return ZT_E_PARSE;
		s->weighted_waypoints[i] = ww;
	}
	key = zt_arena_printf(&c->a, "%s/%s", s->namespace_, s->hostname);
	return emit(c, ZT_LOCAL_ADDRESS, key, n, &addr->base);
}

/* ---- policies ----------------------------------------------------------------------------- */

/* {Exact|Prefix|Suffix: "..."} or Presence (a plain scalar, or {Presence: ~}). */
static int string_match(struct ctx *c, const struct zt_yaml *n, Istio__Security__StringMatch *m)
{
	static const char *const keys[] = {"Exact", "Prefix", "Suffix", "Presence", NULL};
	const struct zt_yaml *k, *v;
	const char *kind;

	if (n && n->type == ZT_YAML_SCALAR && zt_yaml_str(n) &&
	    strcmp(zt_yaml_str(n), "Presence") == 0) {
		kind = "Presence";
		v = NULL;
	} else {
		if (check_keys(c, n, keys, "string match"))
			return ZT_E_PARSE;
		if (n->n != 1)
			return fail(c, n,
			            "string match needs exactly one of Exact, Prefix, "
			            "Suffix, Presence");
		k = zt_yaml_key(n, 0);
		v = zt_yaml_val(n, 0);
		kind = zt_yaml_str(k);
		if (strcmp(kind, "Presence") != 0 && (!v || v->type != ZT_YAML_SCALAR))
			return fail(c, v ? v : k, "%s: expected a string", kind);
	}
	if (strcmp(kind, "Presence") == 0) {
		m->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE;
		m->presence = msg_new(c, &google__protobuf__empty__descriptor);
	} else if (strcmp(kind, "Exact") == 0) {
		m->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_EXACT;
		m->exact = zt_arena_strdup(&c->a, zt_yaml_str(v));
	} else if (strcmp(kind, "Prefix") == 0) {
		m->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PREFIX;
		m->prefix = zt_arena_strdup(&c->a, zt_yaml_str(v));
	} else {
		m->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_SUFFIX;
		m->suffix = zt_arena_strdup(&c->a, zt_yaml_str(v));
	}
	return 0;
}

static int string_matches(struct ctx *c, const struct zt_yaml *map, const char *key,
                          Istio__Security__StringMatch ***out, size_t *count)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);
	size_t len;

	if (seq(c, n, key, &len))
		return ZT_E_PARSE;
	*out = zt_arena_calloc(&c->a, len, sizeof(**out));
	*count = len;
	for (size_t i = 0; i < len; i++) {
		(*out)[i] = msg_new(c, &istio__security__string_match__descriptor);
		if (string_match(c, zt_yaml_at(n, i), (*out)[i]))
			return ZT_E_PARSE;
	}
	return 0;
}

static int addresses(struct ctx *c, const struct zt_yaml *map, const char *key,
                     Istio__Security__Address ***out, size_t *count)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);
	size_t len;

	if (seq(c, n, key, &len))
		return ZT_E_PARSE;
	*out = zt_arena_calloc(&c->a, len, sizeof(**out));
	*count = len;
	for (size_t i = 0; i < len; i++) {
		(*out)[i] = msg_new(c, &istio__security__address__descriptor);
		if (policy_addr(c, zt_yaml_at(n, i), (*out)[i]))
			return ZT_E_PARSE;
	}
	return 0;
}

static int port_list(struct ctx *c, const struct zt_yaml *map, const char *key, uint32_t **out,
                     size_t *count)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);
	size_t len;

	if (seq(c, n, key, &len))
		return ZT_E_PARSE;
	*out = zt_arena_calloc(&c->a, len, sizeof(**out));
	*count = len;
	for (size_t i = 0; i < len; i++)
		if (to_uint(c, zt_yaml_at(n, i), key, 0, 65535, &(*out)[i]))
			return ZT_E_PARSE;
	return 0;
}

static int service_accounts(struct ctx *c, const struct zt_yaml *map, const char *key,
                            Istio__Security__ServiceAccountMatch ***out, size_t *count)
{
	static const char *const keys[] = {"namespace", "serviceAccount", NULL};
	const struct zt_yaml *n = zt_yaml_get(map, key);
	size_t len;

	if (seq(c, n, key, &len))
		return ZT_E_PARSE;
	*out = zt_arena_calloc(&c->a, len, sizeof(**out));
	*count = len;
	for (size_t i = 0; i < len; i++) {
		const struct zt_yaml *e = zt_yaml_at(n, i);
		Istio__Security__ServiceAccountMatch *m =
		        msg_new(c, &istio__security__service_account_match__descriptor);
		if (check_keys(c, e, keys, key) || get_str(c, e, "namespace", &m->namespace_) ||
		    get_str(c, e, "serviceAccount", &m->serviceaccount))
			return ZT_E_PARSE;
		(*out)[i] = m;
	}
	return 0;
}

static int match(struct ctx *c, const struct zt_yaml *n, Istio__Security__Match *m)
{
	/* clang-format off */
	static const char *const keys[] = {
		"namespaces", "notNamespaces", "principals", "notPrincipals", "sourceIps",
		"notSourceIps", "destinationIps", "notDestinationIps", "destinationPorts",
		"notDestinationPorts", "serviceAccounts", "notServiceAccounts", NULL};
	/* clang-format on */

	if (zt_yaml_is_null(n))
		return 0;
	if (check_keys(c, n, keys, "match") ||
	    string_matches(c, n, "namespaces", &m->namespaces, &m->n_namespaces) ||
	    string_matches(c, n, "notNamespaces", &m->not_namespaces, &m->n_not_namespaces) ||
	    string_matches(c, n, "principals", &m->principals, &m->n_principals) ||
	    string_matches(c, n, "notPrincipals", &m->not_principals, &m->n_not_principals) ||
	    addresses(c, n, "sourceIps", &m->source_ips, &m->n_source_ips) ||
	    addresses(c, n, "notSourceIps", &m->not_source_ips, &m->n_not_source_ips) ||
	    addresses(c, n, "destinationIps", &m->destination_ips, &m->n_destination_ips) ||
	    addresses(c, n, "notDestinationIps", &m->not_destination_ips,
	              &m->n_not_destination_ips) ||
	    port_list(c, n, "destinationPorts", &m->destination_ports, &m->n_destination_ports) ||
	    port_list(c, n, "notDestinationPorts", &m->not_destination_ports,
	              &m->n_not_destination_ports) ||
	    service_accounts(c, n, "serviceAccounts", &m->service_accounts,
	                     &m->n_service_accounts) ||
	    service_accounts(c, n, "notServiceAccounts", &m->not_service_accounts,
	                     &m->n_not_service_accounts))
		return ZT_E_PARSE;
	return 0;
}

/* rules: [[[match, ...] (clause), ...] (rule), ...] */
static int rules(struct ctx *c, const struct zt_yaml *n, Istio__Security__Authorization *p)
{
	size_t nr;

	if (seq(c, n, "rules", &nr))
		return ZT_E_PARSE;
	p->rules = zt_arena_calloc(&c->a, nr, sizeof(*p->rules));
	p->n_rules = nr;
	for (size_t i = 0; i < nr; i++) {
		const struct zt_yaml *rn = zt_yaml_at(n, i);
		Istio__Security__Rule *r = msg_new(c, &istio__security__rule__descriptor);
		size_t nc;
		p->rules[i] = r;
		if (seq(c, rn, "rule (a list of clauses)", &nc))
			return ZT_E_PARSE;
		r->clauses = zt_arena_calloc(&c->a, nc, sizeof(*r->clauses));
		r->n_clauses = nc;
		for (size_t j = 0; j < nc; j++) {
			const struct zt_yaml *cn = zt_yaml_at(rn, j);
			Istio__Security__Clause *cl =
			        msg_new(c, &istio__security__clause__descriptor);
			size_t nm;
			r->clauses[j] = cl;
			if (seq(c, cn, "clause (a list of matches)", &nm))
				return ZT_E_PARSE;
			cl->matches = zt_arena_calloc(&c->a, nm, sizeof(*cl->matches));
			cl->n_matches = nm;
			for (size_t k = 0; k < nm; k++) {
				cl->matches[k] = msg_new(c, &istio__security__match__descriptor);
				if (match(c, zt_yaml_at(cn, k), cl->matches[k]))
					return ZT_E_PARSE;
			}
		}
	}
	return 0;
}

static int policy(struct ctx *c, const struct zt_yaml *n)
{
	static const char *const keys[] = {"name",   "namespace", "scope", "action",
	                                   "dryRun", "rules",     NULL};
	static const char *const scopes[] = {"Global", "Namespace", "WorkloadSelector"};
	static const char *const actions[] = {"Allow", "Deny"};
	Istio__Security__Authorization *p = msg_new(c, &istio__security__authorization__descriptor);
	int scope = 0, action = 0;

	if (check_keys(c, n, keys, "policy") || get_str(c, n, "name", &p->name) ||
	    get_str(c, n, "namespace", &p->namespace_) ||
	    ENUM_FIELD(c, n, "scope", scopes, &scope) ||
	    ENUM_FIELD(c, n, "action", actions, &action) || get_bool(c, n, "dryRun", &p->dry_run) ||
	    rules(c, zt_yaml_get(n, "rules"), p))
		return ZT_E_PARSE;
	if (!*p->name)
		return fail(c, n, "policy without name");
	/* Both have proto defaults (Global, Allow) too far-reaching to assume from a typo. */
	if (!zt_yaml_get(n, "scope") || !zt_yaml_get(n, "action"))
		return fail(c, n, "policy %s needs a scope and an action", p->name);
	p->scope = (Istio__Security__Scope)scope;
	p->action = (Istio__Security__Action)action;
	return emit(c, ZT_LOCAL_AUTHORIZATION,
	            zt_arena_printf(&c->a, "%s/%s", p->namespace_, p->name), n, &p->base);
}

/* ---- entry points ------------------------------------------------------------------------- */

void zt_local_config_clear(struct zt_local_config *cfg)
{
	for (size_t i = 0; i < cfg->n; i++) {
		free(cfg->v[i].name);
		free(cfg->v[i].data);
	}
	free(cfg->v);
	free(cfg->file);
	memset(cfg, 0, sizeof(*cfg));
}

int zt_local_xds_parse(const struct zt_yaml *doc, const char *file, struct zt_local_config *out,
                       char *err, size_t errlen)
{
	static const char *const keys[] = {"workloads", "services", "policies", NULL};
	static const char *const sections[] = {"workloads", "services", "policies"};
	static int (*const build[])(struct ctx *, const struct zt_yaml *) = {workload, service,
	                                                                     policy};
	struct ctx c = {.out = out};
	int rc = 0;

	zt_yaml_rd_init(&c.rd, file, err, errlen, true);
	memset(out, 0, sizeof(*out));
	out->file = xstrdup(file);
	if (!zt_yaml_is_null(doc))
		rc = check_keys(&c, doc, keys, "local config");
	for (size_t s = 0; rc == 0 && !zt_yaml_is_null(doc) && s < 3; s++) {
		const struct zt_yaml *list = zt_yaml_get(doc, sections[s]);
		size_t len;
		rc = seq(&c, list, sections[s], &len);
		for (size_t i = 0; rc == 0 && i < len; i++)
			rc = build[s](&c, zt_yaml_at(list, i));
	}
	zt_arena_clear(&c.a);
	zt_hmap_clear(&c.seen);
	if (rc)
		zt_local_config_clear(out);
	return rc;
}

static int apply_one(struct zt_store *store, const struct zt_local_resource *r, char *err,
                     size_t errlen)
{
	if (r->kind == ZT_LOCAL_ADDRESS)
		return zt_store_apply_address(store, r->name, "local", r->data, r->len, err,
		                              errlen);
	return zt_store_apply_authorization(store, r->name, "local", r->data, r->len, err, errlen);
}

struct stale {
	const struct zt_hmap *keep;
	char **names;
	size_t n;
	enum zt_local_kind kind;
};

static void stale_add(struct stale *st, const char *name)
{
	char *key = seen_key(st->kind, name);
	bool keep = zt_hmap_get(st->keep, key) != NULL;

	free(key);
	if (keep)
		return;
	st->names = xrealloc(st->names, (st->n + 1) * sizeof(*st->names));
	st->names[st->n] = xstrdup(name);
	st->n++;
}

static int stale_workload(struct zt_workload *w, void *arg)
{
	stale_add(arg, w->uid);
	return 0;
}

static int stale_service(struct zt_service *svc, void *arg)
{
	stale_add(arg, svc->key);
	return 0;
}

static int stale_policy(struct zt_policy *p, void *arg)
{
	stale_add(arg, p->key);
	return 0;
}

int zt_local_xds_apply(struct zt_store *store, const struct zt_local_config *cfg, char *err,
                       size_t errlen)
{
	struct zt_store *scratch = zt_store_new();
	struct zt_hmap keep = {0};
	struct stale addrs = {.keep = &keep, .kind = ZT_LOCAL_ADDRESS};
	struct stale pols = {.keep = &keep, .kind = ZT_LOCAL_AUTHORIZATION};
	char reason[512];
	int rc = 0;

	/* Validate everything first, so a bad file leaves the store untouched. */
	for (size_t i = 0; rc == 0 && i < cfg->n; i++) {
		rc = apply_one(scratch, &cfg->v[i], reason, sizeof(reason));
		if (rc)
			snprintf(err, errlen, "%s:%u: %s: %s", cfg->file, cfg->v[i].line,
			         cfg->v[i].name, reason);
	}
	zt_store_free(scratch);
	for (size_t i = 0; rc == 0 && i < cfg->n; i++) {
		char *key = seen_key(cfg->v[i].kind, cfg->v[i].name);
		zt_hmap_put(&keep, key, (void *)1);
		free(key);
		rc = apply_one(store, &cfg->v[i], err, errlen);
	}
	if (rc == 0) {
		zt_store_foreach_workload(store, stale_workload, &addrs);
		zt_store_foreach_service(store, stale_service, &addrs);
		zt_store_foreach_policy(store, stale_policy, &pols);
		for (size_t i = 0; i < addrs.n; i++)
			zt_store_remove_address(store, addrs.names[i]);
		for (size_t i = 0; i < pols.n; i++)
			zt_store_remove_authorization(store, pols.names[i]);
		zt_info("local config %s: %zu resources, %zu removed", cfg->file, cfg->n,
		        addrs.n + pols.n);
	}
	for (size_t i = 0; i < addrs.n; i++)
		free(addrs.names[i]);
	for (size_t i = 0; i < pols.n; i++)
		free(pols.names[i]);
	free(addrs.names);
	free(pols.names);
	zt_hmap_clear(&keep);
	return rc;
}

int zt_local_xds_load(struct zt_store *store, const char *path, char *err, size_t errlen)
{
	struct zt_yaml_docs docs = {0};
	struct zt_local_config cfg = {0};
	int rc;

	rc = zt_yaml_load_file(path, &docs, err, errlen);
	if (rc)
		return rc;
	if (docs.n > 1) {
		snprintf(err, errlen, "%s: expected one YAML document, found %zu", path, docs.n);
		rc = ZT_E_PARSE;
		goto out;
	}
	rc = zt_local_xds_parse(docs.n ? docs.docs[0] : NULL, path, &cfg, err, errlen);
	if (rc == 0)
		rc = zt_local_xds_apply(store, &cfg, err, errlen);
out:
	zt_local_config_clear(&cfg);
	zt_yaml_docs_clear(&docs);
	return rc;
}
