/* Service decoding, endpoint snapshots and lifetime. The decoded definition lives in a
 * reference-counted core (an arena) shared by every version of the service; each version
 * owns only its endpoint array and the workload references in it. */
#include "state/service.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/mem.h"
#include "state/reject.h"

ZT_LIVE_DEFINE(state_service);

static_assert((int)ZT_LB_SCOPE_NETWORK == (int)ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__NETWORK,
              "enum");
static_assert((int)ZT_LB_MODE_PASSTHROUGH ==
                      (int)ISTIO__WORKLOAD__LOAD_BALANCING__MODE__PASSTHROUGH,
              "enum");
static_assert((int)ZT_LB_ALLOW_ALL ==
                      (int)ISTIO__WORKLOAD__LOAD_BALANCING__HEALTH_POLICY__ALLOW_ALL,
              "enum");
static_assert((int)ZT_IP_FAMILIES_DUAL == (int)ISTIO__WORKLOAD__IPFAMILIES__DUAL, "enum");
static_assert((int)ZT_VISIBILITY_NAMESPACE == (int)ISTIO__WORKLOAD__SERVICE__VISIBILITY__NAMESPACE,
              "enum");

struct zt_service_core {
	atomic_uint refs;
	struct zt_arena arena;
};

static void core_unref(struct zt_service_core *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
		zt_arena_clear(&c->arena);
		free(c);
	}
}

static int decode_vips(const Istio__Workload__Service *pb, struct zt_service *s, struct zt_arena *a,
                       char *err, size_t errlen)
{
	struct zt_vip *v = zt_arena_calloc(a, pb->n_addresses, sizeof(*v));

	for (size_t i = 0; i < pb->n_addresses; i++) {
		const Istio__Workload__NetworkAddress *na = pb->addresses[i];
		size_t len = na->address.len;
		unsigned prefix = (unsigned)len * 8;

		if (na->prefix_case == ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH) {
			if (na->length > prefix)
				return reject(err, errlen, "VIP %zu: prefix length %u too long", i,
				              na->length);
			prefix = na->length;
		}
		if (len != 4 && len != 16)
			return reject(err, errlen, "VIP %zu: address is %zu bytes, not 4 or 16", i,
			              len);
		if (na->network && strlen(na->network) > ZT_NETWORK_MAX)
			return reject(err, errlen, "VIP %zu: network name too long", i);
		if (zt_cidr_from_bytes(&v[i].cidr, na->address.data, len, prefix))
			return reject(err, errlen, "VIP %zu: bad prefix", i);
		v[i].network = zt_arena_strdup(a, na->network);
	}
	s->vips = v;
	s->n_vips = pb->n_addresses;
	return 0;
}

static int decode_lb(const Istio__Workload__LoadBalancing *pb, struct zt_service *s,
                     struct zt_arena *a, char *err, size_t errlen)
{
	enum zt_lb_scope *v;

	if (!pb)
		return 0;
	s->load_balancing.present = true;
	v = zt_arena_calloc(a, pb->n_routing_preference, sizeof(*v));
	for (size_t i = 0; i < pb->n_routing_preference; i++) {
		if ((unsigned)pb->routing_preference[i] > ZT_LB_SCOPE_NETWORK)
			return reject(err, errlen, "unknown load balancing scope %d",
			              (int)pb->routing_preference[i]);
		v[i] = (enum zt_lb_scope)pb->routing_preference[i];
	}
	s->load_balancing.routing_preference = v;
	s->load_balancing.n_routing_preference = pb->n_routing_preference;
	if ((unsigned)pb->mode > ZT_LB_MODE_PASSTHROUGH)
		return reject(err, errlen, "unknown load balancing mode %d", (int)pb->mode);
	s->load_balancing.mode = (enum zt_lb_mode)pb->mode;
	if ((unsigned)pb->health_policy > ZT_LB_ALLOW_ALL)
		return reject(err, errlen, "unknown health policy %d", (int)pb->health_policy);
	s->load_balancing.health_policy = (enum zt_lb_health)pb->health_policy;
	return 0;
}

static int decode(const Istio__Workload__Service *pb, struct zt_service *s, struct zt_arena *a,
                  char *err, size_t errlen)
{
	struct zt_port *ports = NULL;
	struct zt_weighted_waypoint *ww;
	const char **sans;
	int rc;

	if (!pb->namespace_ || !*pb->namespace_)
		return reject(err, errlen, "service has an empty namespace");
	if (!pb->hostname || !*pb->hostname)
		return reject(err, errlen, "service has an empty hostname");
	s->name = zt_arena_strdup(a, pb->name);
	s->ns = zt_arena_strdup(a, pb->namespace_);
	s->hostname = zt_arena_strdup(a, pb->hostname);
	s->key = zt_arena_printf(a, "%s/%s", s->ns, s->hostname);
	rc = decode_vips(pb, s, a, err, errlen);
	if (rc)
		return rc;
	rc = zt_ports_decode(pb->ports, pb->n_ports, a, &ports, err, errlen);
	if (rc)
		return rc;
	s->ports = ports;
	s->n_ports = pb->n_ports;
	sans = zt_arena_calloc(a, pb->n_subject_alt_names, sizeof(*sans));
	for (size_t i = 0; i < pb->n_subject_alt_names; i++)
		sans[i] = zt_arena_strdup(a, pb->subject_alt_names[i]);
	s->subject_alt_names = sans;
	s->n_subject_alt_names = pb->n_subject_alt_names;
	rc = zt_gateway_decode(pb->waypoint, a, &s->waypoint, "waypoint", err, errlen);
	if (rc)
		return rc;
	rc = decode_lb(pb->load_balancing, s, a, err, errlen);
	if (rc)
		return rc;
	if ((unsigned)pb->ip_families > ZT_IP_FAMILIES_DUAL)
		return reject(err, errlen, "unknown ip families %d", (int)pb->ip_families);
	s->ip_families = (enum zt_ip_families)pb->ip_families;
	s->canonical = pb->canonical;
	s->ingress_use_waypoint = pb->ingress_use_waypoint;
	ww = zt_arena_calloc(a, pb->n_weighted_waypoints, sizeof(*ww));
	for (size_t i = 0; i < pb->n_weighted_waypoints; i++) {
		if (!pb->weighted_waypoints[i]->destination)
			return reject(err, errlen, "weighted waypoint %zu without destination", i);
		rc = zt_gateway_decode(pb->weighted_waypoints[i]->destination, a,
		                       &ww[i].destination, "weighted waypoint", err, errlen);
		if (rc)
			return rc;
		ww[i].weight = pb->weighted_waypoints[i]->weight;
	}
	s->weighted_waypoints = ww;
	s->n_weighted_waypoints = pb->n_weighted_waypoints;
	if ((unsigned)pb->visibility > ZT_VISIBILITY_NAMESPACE)
		return reject(err, errlen, "unknown visibility %d", (int)pb->visibility);
	s->visibility = (enum zt_visibility)pb->visibility;
	return 0;
}

static struct zt_service *service_alloc(struct zt_service_core *core)
{
	struct zt_service *s = xcalloc(1, sizeof(*s));

	atomic_init(&s->refs_, 1);
	atomic_fetch_add(&core->refs, 1);
	s->core_ = core;
	zt_live_inc(&zt_live_state_service);
	return s;
}

static void service_free(struct zt_service *s)
{
	for (size_t i = 0; i < s->n_endpoints; i++)
		zt_workload_unref(s->endpoints[i].workload);
	free((void *)s->endpoints);
	core_unref(s->core_);
	free(s);
	zt_live_dec(&zt_live_state_service);
}

int zt_service_decode(const Istio__Workload__Service *pb, struct zt_service **out, char *err,
                      size_t errlen)
{
	struct zt_service_core *core = calloc(1, sizeof(*core));
	struct zt_service *s;
	int rc;

	if (!core)
		abort();
	atomic_init(&core->refs, 0);
	s = service_alloc(core);
	rc = decode(pb, s, &core->arena, err, errlen);
	if (rc) {
		service_free(s);
		s = NULL;
	}
	*out = s;
	return rc;
}

struct zt_service *zt_service_with_endpoints(const struct zt_service *svc,
                                             struct zt_workload *const *ws, size_t n)
{
	struct zt_service *s = service_alloc(svc->core_);
	struct zt_endpoint *eps = NULL;

	if (n) {
		eps = xcalloc(n, sizeof(*eps));
	}
	for (size_t i = 0; i < n; i++) {
		eps[i].workload = zt_workload_ref(ws[i]);
		eps[i].ports = zt_workload_service(ws[i], svc->key);
		assert(eps[i].ports);
	}
	/* The definition is everything before the endpoints; it points into the shared core. */
	memcpy(s, svc, offsetof(struct zt_service, endpoints));
	s->endpoints = eps;
	s->n_endpoints = n;
	return s;
}

struct zt_service *zt_service_ref(struct zt_service *svc)
{
	if (svc)
		atomic_fetch_add(&svc->refs_, 1);
	return svc;
}

void zt_service_unref(struct zt_service *svc)
{
	if (svc && atomic_fetch_sub(&svc->refs_, 1) == 1)
		service_free(svc);
}

const struct zt_port *zt_service_port(const struct zt_service *svc, uint16_t service_port)
{
	for (size_t i = 0; i < svc->n_ports; i++)
		if (svc->ports[i].service_port == service_port)
			return &svc->ports[i];
	return NULL;
}

uint16_t zt_service_target_port(const struct zt_service *svc, const struct zt_workload_service *ws,
                                uint16_t service_port, bool *known)
{
	const struct zt_port *sp = svc ? zt_service_port(svc, service_port) : NULL;
	bool listed = sp != NULL;
	uint16_t port = 0;

	for (size_t i = 0; ws && i < ws->n_ports; i++) {
		if (ws->ports[i].service_port != service_port)
			continue;
		listed = true;
		if (ws->ports[i].target_port)
			port = ws->ports[i].target_port;
	}
	if (!port && sp)
		port = sp->target_port;
	if (known)
		*known = listed;
	return port;
}

bool zt_service_endpoint_usable(const struct zt_service *svc, const struct zt_endpoint *ep)
{
	return ep->workload->status == ZT_WORKLOAD_HEALTHY ||
	       svc->load_balancing.health_policy == ZT_LB_ALLOW_ALL;
}

bool zt_service_visible_to(const struct zt_service *svc, const char *caller_ns)
{
	return svc->visibility != ZT_VISIBILITY_NAMESPACE || !caller_ns ||
	       strcmp(caller_ns, svc->ns) == 0;
}

bool zt_vip_is_host(const struct zt_vip *vip)
{
	return vip->cidr.prefix == (vip->cidr.ip.family == AF_INET ? 32u : 128u);
}
