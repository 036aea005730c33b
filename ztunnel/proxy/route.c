/* Outbound routing (spec §7.1) and the inbound port/waypoint lookups (spec §7.2): reads the
 * store, never changes it. Every object a decision names is held by a reference in the route;
 * objects used only while deciding are borrowed from a reference this file holds for the call
 * (a service keeps its endpoint workloads alive), so nothing outlives what owns it. */
#include "proxy/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("route");

static const uint16_t default_illegal_ports[] = {15001, 15006, 15008};

struct ctx {
	const struct zt_store *store;
	const struct zt_route_in *in;
	const struct zt_workload *src;
	const char *network; /* the source's */
	struct zt_route *out;
};

/* ---- small helpers ------------------------------------------------------------------------- */

static uint32_t draw(const struct ctx *c)
{
	return c->in->rand_cb ? c->in->rand_cb(c->in->rand_arg) : arc4random();
}

/* A value in [0, n), n >= 1, uniform up to a bias of n / 2^32 (multiply-shift). */
static uint64_t below(const struct ctx *c, uint64_t n)
{
	if (n <= (uint64_t)UINT32_MAX + 1)
		return ((uint64_t)draw(c) * n) >> 32;
	return ((uint64_t)draw(c) << 32 | draw(c)) % n;
}

static bool port_illegal(const struct zt_route_in *in, uint16_t port)
{
	const uint16_t *v = in->illegal_ports ? in->illegal_ports : default_illegal_ports;
	size_t n = in->illegal_ports ? in->n_illegal_ports : 3;

	for (size_t i = 0; i < n; i++)
		if (v[i] == port)
			return true;
	return false;
}

static int decide(struct zt_route *out, enum zt_route_kind kind, const char *reason)
{
	out->kind = kind;
	snprintf(out->reason, sizeof(out->reason), "%s", reason ? reason : "");
	return 0;
}

static int deny(struct ctx *c, const char *reason)
{
	zt_debug("deny %s: %s", c->out->authority[0] ? c->out->authority : "-", reason);
	return decide(c->out, ZT_ROUTE_DENY, reason);
}

static int passthrough(struct ctx *c, const char *reason)
{
	c->out->next_hop = c->in->dst;
	return decide(c->out, ZT_ROUTE_PASSTHROUGH, reason);
}

/* key is "ns/host". */
static bool key_is(const char *key, const char *ns, const char *host)
{
	size_t n = strlen(ns);

	return strncmp(key, ns, n) == 0 && key[n] == '/' && strcmp(key + n + 1, host) == 0;
}

static bool lists_service(const struct zt_workload *w, const char *ns, const char *host)
{
	for (size_t i = 0; i < w->n_services; i++)
		if (key_is(w->services[i].key, ns, host))
			return true;
	return false;
}

/* Whether gateway gw resolves to w: an address w owns, or a service (by VIP or by name) that
 * lists w as an endpoint. */
static bool gateway_is(const struct zt_store *store, const struct zt_gateway *gw,
                       const struct zt_workload *w)
{
	struct zt_service *svc;
	bool is;

	switch (gw->kind) {
	case ZT_GATEWAY_ADDRESS:
		if (strcmp(gw->network, w->network) == 0 && zt_workload_has_ip(w, &gw->ip))
			return true;
		svc = zt_store_service_by_vip(store, gw->network, &gw->ip, NULL);
		is = svc && lists_service(w, svc->ns, svc->hostname);
		zt_service_unref(svc);
		return is;
	case ZT_GATEWAY_HOSTNAME:
		return lists_service(w, gw->ns, gw->hostname);
	case ZT_GATEWAY_UNSET:
		break;
	}
	return false;
}

/* The address to connect to: want if w owns it, else the first of want's family, else the
 * first, among the IPs the service's families allow. NULL when none is left. */
static const struct zt_ip *pick_ip(const struct zt_workload *w, const struct zt_ip *want,
                                   enum zt_ip_families families)
{
	const struct zt_ip *first = NULL, *same = NULL;

	for (size_t i = 0; i < w->n_ips; i++) {
		const struct zt_ip *ip = &w->ips[i];
		if ((families == ZT_IP_FAMILIES_IPV4_ONLY && ip->family != AF_INET) ||
		    (families == ZT_IP_FAMILIES_IPV6_ONLY && ip->family != AF_INET6))
			continue;
		if (zt_ip_equal(ip, want))
			return ip;
		if (!first)
			first = ip;
		if (!same && ip->family == want->family)
			same = ip;
	}
	return same ? same : first;
}

/* ---- expected identities (spec §2.2) ------------------------------------------------------ */

static void expect(struct zt_route *out, const struct zt_spiffe *id)
{
	for (size_t i = 0; i < out->n_expected; i++)
		if (zt_spiffe_eq(&out->expected[i], id))
			return;
	if (out->n_expected == ZT_ROUTE_MAX_EXPECTED) {
		zt_warn("more than %d expected identities, ignoring the rest",
		        ZT_ROUTE_MAX_EXPECTED);
		return;
	}
	out->expected[out->n_expected++] = *id;
}

/* The next hop's identity, then the SANs of svc (may be NULL) that parse. */
static void set_expected(struct zt_route *out, const struct zt_workload *w,
                         const struct zt_service *svc)
{
	size_t n_sans = svc ? svc->n_subject_alt_names : 0;
	size_t cap = 1 + n_sans < ZT_ROUTE_MAX_EXPECTED ? 1 + n_sans : ZT_ROUTE_MAX_EXPECTED;

	out->expected = xcalloc(cap, sizeof(*out->expected));
	out->n_expected = 0;
	expect(out, w->identity);
	for (size_t i = 0; i < n_sans; i++) {
		const char *san = svc->subject_alt_names[i];
		struct zt_spiffe id;
		if (zt_spiffe_parse(&id, san, strlen(san)) == 0)
			expect(out, &id);
		else
			zt_debug("service %s: skipping SAN \"%s\": not a SPIFFE ID", svc->key, san);
	}
}

static void set_target(struct zt_route *out, const struct zt_sockaddr *target)
{
	out->target = *target;
	if (zt_addr_format(target, out->authority, sizeof(out->authority)) < 0)
		out->authority[0] = '\0';
}

/* ---- endpoint selection (spec §7.1 "Endpoint selection") ---------------------------------- */

/* The endpoint's port for svc_port, or 0 if it has none. */
static uint16_t endpoint_port(const struct zt_service *svc, const struct zt_endpoint *ep,
                              uint16_t svc_port, bool waypoint)
{
	const struct zt_app_tunnel *tun = &ep->workload->application_tunnel;
	uint16_t port = zt_service_target_port(svc, ep->ports, svc_port, NULL);

	if (port)
		return port;
	/* The receiving side delivers to the tunnel port: keep the service port. */
	if (tun->present && (tun->port || waypoint))
		return svc_port;
	return 0;
}

static bool scope_matches(const struct ctx *c, enum zt_lb_scope s, const struct zt_workload *w)
{
	const struct zt_workload *src = c->src;

	switch (s) {
	case ZT_LB_SCOPE_REGION:
		return strcmp(src->locality.region, w->locality.region) == 0;
	case ZT_LB_SCOPE_ZONE:
		return strcmp(src->locality.zone, w->locality.zone) == 0;
	case ZT_LB_SCOPE_SUBZONE:
		return strcmp(src->locality.subzone, w->locality.subzone) == 0;
	case ZT_LB_SCOPE_NODE:
		return strcmp(src->node, w->node) == 0;
	case ZT_LB_SCOPE_CLUSTER:
		return strcmp(src->cluster_id, w->cluster_id) == 0;
	case ZT_LB_SCOPE_NETWORK:
		return strcmp(c->network, w->network) == 0;
	case ZT_LB_SCOPE_UNSPECIFIED:
		break;
	}
	return true; /* istiod never sends UNSPECIFIED: it constrains nothing */
}

/* Number of leading preferences w matches. Counting only a leading run is what makes a first
 * NETWORK preference outrank every other match. */
static size_t rank_of(const struct ctx *c, const struct zt_load_balancing *lb,
                      const struct zt_workload *w)
{
	size_t r = 0;

	while (r < lb->n_routing_preference && scope_matches(c, lb->routing_preference[r], w))
		r++;
	return r;
}

/* Whether ep may be chosen; if so its port and rank. */
static bool eligible(const struct ctx *c, const struct zt_service *svc,
                     const struct zt_endpoint *ep, uint16_t svc_port, bool waypoint, uint16_t *port,
                     size_t *rank)
{
	const struct zt_workload *w = ep->workload;
	const struct zt_load_balancing *lb = &svc->load_balancing;

	if (!zt_service_endpoint_usable(svc, ep))
		return false;
	if (w->n_ips == 0 && !w->hostname[0] &&
	    (strcmp(w->network, c->network) == 0 || w->network_gateway->kind == ZT_GATEWAY_UNSET))
		return false;
	if (!(*port = endpoint_port(svc, ep, svc_port, waypoint)))
		return false;
	*rank = 0;
	if (lb->mode == ZT_LB_MODE_FAILOVER || lb->mode == ZT_LB_MODE_STRICT) {
		*rank = rank_of(c, lb, w);
		if (lb->mode == ZT_LB_MODE_STRICT && *rank < lb->n_routing_preference)
			return false;
	}
	return true;
}

/* Draws an endpoint of svc for svc_port, weighted by capacity among the best ranked. Returns
 * it (borrowed from svc) and its port, or NULL. */
static const struct zt_endpoint *pick_endpoint(const struct ctx *c, const struct zt_service *svc,
                                               uint16_t svc_port, bool waypoint, uint16_t *port)
{
	uint64_t total = 0, r;
	size_t best = 0, rank;
	uint16_t p;

	for (size_t i = 0; i < svc->n_endpoints; i++) {
		if (!eligible(c, svc, &svc->endpoints[i], svc_port, waypoint, &p, &rank))
			continue;
		if (rank > best) {
			best = rank;
			total = 0;
		}
		if (rank == best)
			total += svc->endpoints[i].workload->capacity;
	}
	if (total == 0)
		return NULL;
	r = below(c, total);
	for (size_t i = 0; i < svc->n_endpoints; i++) {
		const struct zt_endpoint *ep = &svc->endpoints[i];
		if (!eligible(c, svc, ep, svc_port, waypoint, &p, &rank) || rank != best)
			continue;
		if (r < ep->workload->capacity) {
			*port = p;
			return ep;
		}
		r -= ep->workload->capacity;
	}
	return NULL; /* not reached: the second pass sees what the first did */
}

/* ---- waypoints ---------------------------------------------------------------------------- */

/* The service's waypoint for this connection: weighted_waypoints drawn by weight, else
 * waypoint. If every weight is 0, waypoint, else the first weighted one. NULL if none. */
static const struct zt_gateway *service_waypoint(const struct ctx *c, const struct zt_service *svc)
{
	uint64_t total = 0, r;

	for (size_t i = 0; i < svc->n_weighted_waypoints; i++)
		total += svc->weighted_waypoints[i].weight;
	if (total > 0) {
		r = below(c, total);
		for (size_t i = 0; i < svc->n_weighted_waypoints; i++) {
			if (r < svc->weighted_waypoints[i].weight)
				return &svc->weighted_waypoints[i].destination;
			r -= svc->weighted_waypoints[i].weight;
		}
	}
	if (svc->waypoint.kind != ZT_GATEWAY_UNSET)
		return &svc->waypoint;
	return svc->n_weighted_waypoints ? &svc->weighted_waypoints[0].destination : NULL;
}

/* HBONE to the waypoint gw, asking it for target. */
static int via_waypoint(struct ctx *c, const struct zt_gateway *gw,
                        const struct zt_sockaddr *target)
{
	uint16_t mtls_port = gw->hbone_mtls_port ? gw->hbone_mtls_port : ZT_ROUTE_HBONE_PORT;
	struct zt_workload *w = NULL;
	struct zt_service *svc = NULL;
	const struct zt_endpoint *ep;
	const struct zt_ip *want = &target->ip, *ip;
	uint16_t port = mtls_port;
	int rc;

	c->out->via_waypoint = true;
	set_target(c->out, target);
	if (gw->kind == ZT_GATEWAY_ADDRESS) {
		w = zt_store_workload_by_ip(c->store, gw->network, &gw->ip);
		want = &gw->ip;
		if (!w)
			svc = zt_store_service_by_vip(c->store, gw->network, &gw->ip, NULL);
	} else if (gw->kind == ZT_GATEWAY_HOSTNAME) {
		svc = zt_store_service_by_host(c->store, gw->ns, gw->hostname);
	}
	if (!w && !svc) {
		rc = deny(c, ZT_ROUTE_REASON_WAYPOINT);
		goto out;
	}
	if (svc) {
		if (!(ep = pick_endpoint(c, svc, mtls_port, true, &port))) {
			rc = deny(c, ZT_ROUTE_REASON_NO_UPSTREAM);
			goto out;
		}
		w = zt_workload_ref(ep->workload);
		want = &target->ip;
	}
	c->out->dst_workload = zt_workload_ref(w);
	if (strcmp(w->network, c->network) != 0) {
		rc = deny(c, ZT_ROUTE_REASON_MULTI_NETWORK);
		goto out;
	}
	if (!(ip = pick_ip(w, want, svc ? svc->ip_families : ZT_IP_FAMILIES_AUTOMATIC))) {
		rc = deny(c,
		          w->hostname[0] ? ZT_ROUTE_REASON_HOSTNAME : ZT_ROUTE_REASON_NO_ADDRESS);
		goto out;
	}
	c->out->next_hop = (struct zt_sockaddr){.ip = *ip, .port = port};
	set_expected(c->out, w, svc);
	rc = decide(c->out, ZT_ROUTE_HBONE, NULL);
out:
	zt_workload_unref(w);
	zt_service_unref(svc);
	return rc;
}

/* ---- the decision ------------------------------------------------------------------------- */

/* Goes to workload w on port (spec §7.1 steps 5-7). svc: the service it was chosen from, NULL
 * when workload-addressed. */
static int to_workload(struct ctx *c, struct zt_workload *w, uint16_t port,
                       const struct zt_service *svc)
{
	struct zt_route *out = c->out;
	const struct zt_ip *ip;
	struct zt_sockaddr target;

	out->final_workload = zt_workload_ref(w);
	if (strcmp(w->network, c->network) != 0)
		return deny(c, ZT_ROUTE_REASON_MULTI_NETWORK);
	/* A workload waypoint applies to workload-addressed traffic only, and not to the
	 * waypoint's own traffic. */
	if (!svc && w->waypoint->kind != ZT_GATEWAY_UNSET &&
	    !gateway_is(c->store, w->waypoint, c->src))
		return via_waypoint(c, w->waypoint, &c->in->dst);
	out->dst_workload = zt_workload_ref(w);
	ip = pick_ip(w, &c->in->dst.ip, svc ? svc->ip_families : ZT_IP_FAMILIES_AUTOMATIC);
	if (!ip && w->n_ips == 0 && w->hostname[0]) {
		/* Spec §7.1: resolved on demand by the caller (zt_route_set_resolved). */
		out->resolve_host = w->hostname;
		out->target.port = port;
		out->next_hop.port =
		        w->tunnel_protocol == ZT_TUNNEL_HBONE ? ZT_ROUTE_HBONE_PORT : port;
		if (w->tunnel_protocol != ZT_TUNNEL_HBONE)
			return decide(out, ZT_ROUTE_PLAIN, NULL);
		set_expected(out, w, svc);
		return decide(out, ZT_ROUTE_HBONE, NULL);
	}
	if (!ip)
		return deny(c, ZT_ROUTE_REASON_NO_ADDRESS);
	target = (struct zt_sockaddr){.ip = *ip, .port = port};
	set_target(out, &target);
	if (w->tunnel_protocol != ZT_TUNNEL_HBONE) {
		out->next_hop = target;
		return decide(out, ZT_ROUTE_PLAIN, NULL);
	}
	out->next_hop = (struct zt_sockaddr){.ip = *ip, .port = ZT_ROUTE_HBONE_PORT};
	set_expected(out, w, svc);
	return decide(out, ZT_ROUTE_HBONE, NULL);
}

int zt_route_outbound(const struct zt_store *store, const struct zt_route_in *in,
                      struct zt_route *out)
{
	struct ctx c = {.store = store, .in = in, .out = out};
	const struct zt_sockaddr *dst;
	const struct zt_gateway *gw;
	const struct zt_endpoint *ep;
	struct zt_service *svc;
	struct zt_workload *w;
	uint16_t port;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!store || !in || !in->source ||
	    (in->dst.ip.family != AF_INET && in->dst.ip.family != AF_INET6))
		return -EINVAL;
	dst = &in->dst;
	c.src = in->source;
	c.network = in->network ? in->network : in->source->network;

	if (zt_ip_is_loopback(&dst->ip) && port_illegal(in, dst->port))
		return deny(&c, ZT_ROUTE_REASON_SELF);

	svc = zt_store_service_by_vip(store, c.network, &dst->ip, c.src->ns);
	if (svc) {
		out->service = svc;
		gw = service_waypoint(&c, svc);
		if (gw && !gateway_is(store, gw, c.src))
			return via_waypoint(&c, gw, dst);
		if (svc->load_balancing.mode == ZT_LB_MODE_PASSTHROUGH)
			return passthrough(&c, ZT_ROUTE_REASON_SVC_PASSTHROUGH);
		if (!zt_service_port(svc, dst->port) ||
		    !(ep = pick_endpoint(&c, svc, dst->port, false, &port)))
			return deny(&c, ZT_ROUTE_REASON_NO_UPSTREAM);
		return to_workload(&c, ep->workload, port, svc);
	}

	w = zt_store_workload_by_ip(store, c.network, &dst->ip);
	if (!w)
		return passthrough(&c, ZT_ROUTE_REASON_UNKNOWN);
	rc = to_workload(&c, w, dst->port, NULL);
	zt_workload_unref(w);
	return rc;
}

void zt_route_set_resolved(struct zt_route *r, const struct zt_ip *ip)
{
	struct zt_sockaddr target = {.ip = *ip, .port = r->target.port};

	set_target(r, &target);
	r->next_hop.ip = *ip;
	r->resolve_host = NULL;
}

void zt_route_clear(struct zt_route *r)
{
	zt_workload_unref(r->dst_workload);
	zt_workload_unref(r->final_workload);
	zt_service_unref(r->service);
	free(r->expected);
	memset(r, 0, sizeof(*r));
}

const char *zt_route_kind_name(enum zt_route_kind k)
{
	switch (k) {
	case ZT_ROUTE_HBONE:
		return "hbone";
	case ZT_ROUTE_PLAIN:
		return "plain";
	case ZT_ROUTE_PASSTHROUGH:
		return "passthrough";
	case ZT_ROUTE_DENY:
		return "deny";
	}
	return "unknown";
}

/* ---- inbound (spec §7.2) ------------------------------------------------------------------ */

int zt_route_inbound_port(const struct zt_store *store, const struct zt_workload *local,
                          const struct zt_hbone_authority *target, uint16_t *port)
{
	const struct zt_workload_service *ws = NULL;
	uint16_t p = target->port;
	bool known = false; /* the service has the requested port */

	if (target->is_host) {
		for (size_t i = 0; !ws && i < local->n_services; i++) {
			const char *slash = strchr(local->services[i].key, '/');
			if (slash && strcasecmp(slash + 1, target->host) == 0)
				ws = &local->services[i];
		}
		if (!ws)
			return ZT_E_NOTFOUND;
		struct zt_service *svc = zt_store_service_by_key(store, ws->key);
		p = zt_service_target_port(svc, ws, target->port, &known);
		zt_service_unref(svc);
		if (!known)
			return ZT_E_NOTFOUND;
	}
	if (local->application_tunnel.present && local->application_tunnel.port)
		p = local->application_tunnel.port;
	if (!p)
		return ZT_E_NOTFOUND;
	*port = p;
	return 0;
}

bool zt_route_is_waypoint_for(const struct zt_store *store, const struct zt_workload *local,
                              const struct zt_ip *target_ip)
{
	struct zt_workload *w = zt_store_workload_by_ip(store, local->network, target_ip);
	struct zt_service *svc = zt_store_service_by_vip(store, local->network, target_ip, NULL);
	bool is = false;

	if (w && w->waypoint->kind != ZT_GATEWAY_UNSET)
		is = gateway_is(store, w->waypoint, local);
	if (!is && svc && svc->waypoint.kind != ZT_GATEWAY_UNSET)
		is = gateway_is(store, &svc->waypoint, local);
	for (size_t i = 0; !is && svc && i < svc->n_weighted_waypoints; i++)
		is = gateway_is(store, &svc->weighted_waypoints[i].destination, local);
	zt_workload_unref(w);
	zt_service_unref(svc);
	return is;
}
