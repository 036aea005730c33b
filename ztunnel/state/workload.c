/* Workload decoding and lifetime. Every string and array of a workload lives in its own
 * arena, so the object is built in one pass and freed in one call; nothing is shared with
 * the protobuf it came from. */
#include "state/workload.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/mem.h"
#include "state/reject.h"

ZT_LIVE_DEFINE(state_workload);

static_assert((int)ZT_TUNNEL_HBONE == (int)ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE, "enum");
static_assert((int)ZT_WORKLOAD_JOB == (int)ISTIO__WORKLOAD__WORKLOAD_TYPE__JOB, "enum");
static_assert((int)ZT_WORKLOAD_UNHEALTHY == (int)ISTIO__WORKLOAD__WORKLOAD_STATUS__UNHEALTHY,
              "enum");
static_assert((int)ZT_NETWORK_HOST == (int)ISTIO__WORKLOAD__NETWORK_MODE__HOST_NETWORK, "enum");
static_assert((int)ZT_APP_TUNNEL_PROXY == (int)ISTIO__WORKLOAD__APPLICATION_TUNNEL__PROTOCOL__PROXY,
              "enum");
static_assert((int)ZT_APP_PROTOCOL_TLS == (int)ISTIO__WORKLOAD__APP_PROTOCOL__TLS, "enum");

static const char *str_or(struct zt_arena *a, const char *s, const char *def)
{
	return zt_arena_strdup(a, s && *s ? s : def);
}

int zt_gateway_decode(const Istio__Workload__GatewayAddress *pb, struct zt_arena *arena,
                      struct zt_gateway *out, const char *what, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->ns = out->hostname = out->network = "";
	if (!pb)
		return 0;
	if (pb->hbone_mtls_port > 65535)
		return reject(err, errlen, "%s: hbone_mtls_port %u out of range", what,
		              pb->hbone_mtls_port);
	out->hbone_mtls_port = (uint16_t)pb->hbone_mtls_port;
	switch (pb->destination_case) {
	case ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME:
		if (!pb->hostname || !pb->hostname->hostname || !*pb->hostname->hostname)
			return reject(err, errlen, "%s: empty hostname", what);
		out->kind = ZT_GATEWAY_HOSTNAME;
		out->ns = zt_arena_strdup(arena, pb->hostname->namespace_);
		out->hostname = zt_arena_strdup(arena, pb->hostname->hostname);
		return 0;
	case ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS:
		if (!pb->address ||
		    zt_ip_from_bytes(&out->ip, pb->address->address.data, pb->address->address.len))
			return reject(err, errlen, "%s: address is not 4 or 16 bytes", what);
		if (pb->address->prefix_case == ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH &&
		    pb->address->length != pb->address->address.len * 8)
			return reject(err, errlen, "%s: address must be a host, not a prefix",
			              what);
		if (pb->address->network && strlen(pb->address->network) > ZT_NETWORK_MAX)
			return reject(err, errlen, "%s: network name too long", what);
		out->kind = ZT_GATEWAY_ADDRESS;
		out->network = zt_arena_strdup(arena, pb->address->network);
		return 0;
	default:
		return reject(err, errlen, "%s: gateway address without destination", what);
	}
}

int zt_ports_decode(Istio__Workload__Port *const *pb, size_t n, struct zt_arena *arena,
                    struct zt_port **out, char *err, size_t errlen)
{
	struct zt_port *v = zt_arena_calloc(arena, n, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		if (pb[i]->service_port == 0 || pb[i]->service_port > 65535)
			return reject(err, errlen, "service port %u out of range",
			              pb[i]->service_port);
		if (pb[i]->target_port > 65535)
			return reject(err, errlen, "target port %u out of range",
			              pb[i]->target_port);
		v[i].service_port = (uint16_t)pb[i]->service_port;
		v[i].target_port = (uint16_t)pb[i]->target_port;
		v[i].app_protocol = (enum zt_app_protocol)pb[i]->app_protocol;
	}
	*out = v;
	return 0;
}

/* Workload.services is a proto map: a key sent twice keeps its last value. */
static int decode_services(const Istio__Workload__Workload *pb, struct zt_workload *w, char *err,
                           size_t errlen)
{
	struct zt_workload_service *v = zt_arena_calloc(&w->arena_, pb->n_services, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < pb->n_services; i++) {
		const Istio__Workload__Workload__ServicesEntry *e = pb->services[i];
		const char *key = e->key ? e->key : "";
		struct zt_workload_service *s = NULL;
		struct zt_port *ports = NULL;
		int rc;

		if (!*key)
			return reject(err, errlen, "empty service key");
		for (size_t j = 0; j < n; j++)
			if (strcmp(v[j].key, key) == 0)
				s = &v[j];
		if (!s) {
			s = &v[n++];
			s->key = zt_arena_strdup(&w->arena_, key);
		}
		if (e->value) {
			rc = zt_ports_decode(e->value->ports, e->value->n_ports, &w->arena_, &ports,
			                     err, errlen);
			if (rc)
				return rc;
		}
		s->ports = ports;
		s->n_ports = e->value ? e->value->n_ports : 0;
	}
	w->services = n ? v : NULL;
	w->n_services = n;
	return 0;
}

static int decode(const Istio__Workload__Workload *pb, struct zt_workload *w, char *err,
                  size_t errlen)
{
	struct zt_arena *a = &w->arena_;
	struct zt_ip *ips;
	const char **keys;
	int rc;

	if (!pb->uid || !*pb->uid)
		return reject(err, errlen, "workload has an empty uid");
	w->uid = zt_arena_strdup(a, pb->uid);
	w->name = zt_arena_strdup(a, pb->name);
	w->ns = zt_arena_strdup(a, pb->namespace_);
	ips = zt_arena_calloc(a, pb->n_addresses, sizeof(*ips));
	for (size_t i = 0; i < pb->n_addresses; i++)
		if (zt_ip_from_bytes(&ips[i], pb->addresses[i].data, pb->addresses[i].len))
			return reject(err, errlen, "address %zu is %zu bytes, not 4 or 16", i,
			              pb->addresses[i].len);
	w->ips = ips;
	w->n_ips = pb->n_addresses;
	w->hostname = zt_arena_strdup(a, pb->hostname);
	if (pb->network && strlen(pb->network) > ZT_NETWORK_MAX)
		return reject(err, errlen, "network name longer than %d bytes", ZT_NETWORK_MAX);
	w->network = zt_arena_strdup(a, pb->network);
	switch (pb->tunnel_protocol) {
	case ISTIO__WORKLOAD__TUNNEL_PROTOCOL__NONE:
	case ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE:
		w->tunnel_protocol = (enum zt_tunnel_protocol)pb->tunnel_protocol;
		break;
	case ISTIO__WORKLOAD__TUNNEL_PROTOCOL__LEGACY_ISTIO_MTLS:
		return reject(err, errlen, "tunnel protocol LEGACY_ISTIO_MTLS is not supported");
	default:
		return reject(err, errlen, "unknown tunnel protocol %d", (int)pb->tunnel_protocol);
	}
	w->trust_domain = str_or(a, pb->trust_domain, ZT_SPIFFE_DEFAULT_TD);
	w->service_account = str_or(a, pb->service_account, ZT_SPIFFE_DEFAULT_SA);
	rc = zt_gateway_decode(pb->waypoint, a, &w->waypoint, "waypoint", err, errlen);
	if (rc)
		return rc;
	rc = zt_gateway_decode(pb->network_gateway, a, &w->network_gateway, "network_gateway", err,
	                       errlen);
	if (rc)
		return rc;
	w->node = zt_arena_strdup(a, pb->node);
	w->canonical_name = zt_arena_strdup(a, pb->canonical_name);
	w->canonical_revision = zt_arena_strdup(a, pb->canonical_revision);
	w->workload_type = (enum zt_workload_type)pb->workload_type;
	w->workload_name = zt_arena_strdup(a, pb->workload_name);
	w->native_tunnel = pb->native_tunnel;
	if (pb->application_tunnel) {
		const Istio__Workload__ApplicationTunnel *t = pb->application_tunnel;
		if (t->protocol != ISTIO__WORKLOAD__APPLICATION_TUNNEL__PROTOCOL__NONE &&
		    t->protocol != ISTIO__WORKLOAD__APPLICATION_TUNNEL__PROTOCOL__PROXY)
			return reject(err, errlen, "unknown application tunnel protocol %d",
			              (int)t->protocol);
		if (t->port > 65535)
			return reject(err, errlen, "application tunnel port %u out of range",
			              t->port);
		w->application_tunnel.present = true;
		w->application_tunnel.protocol = (enum zt_app_tunnel_protocol)t->protocol;
		w->application_tunnel.port = (uint16_t)t->port;
	}
	rc = decode_services(pb, w, err, errlen);
	if (rc)
		return rc;
	keys = zt_arena_calloc(a, pb->n_authorization_policies, sizeof(*keys));
	for (size_t i = 0; i < pb->n_authorization_policies; i++)
		keys[i] = zt_arena_strdup(a, pb->authorization_policies[i]);
	w->authorization_policies = keys;
	w->n_authorization_policies = pb->n_authorization_policies;
	w->status = (enum zt_workload_status)pb->status;
	w->cluster_id = str_or(a, pb->cluster_id, ZT_WORKLOAD_DEFAULT_CLUSTER_ID);
	w->locality.region = zt_arena_strdup(a, pb->locality ? pb->locality->region : NULL);
	w->locality.zone = zt_arena_strdup(a, pb->locality ? pb->locality->zone : NULL);
	w->locality.subzone = zt_arena_strdup(a, pb->locality ? pb->locality->subzone : NULL);
	if (pb->network_mode != ISTIO__WORKLOAD__NETWORK_MODE__STANDARD &&
	    pb->network_mode != ISTIO__WORKLOAD__NETWORK_MODE__HOST_NETWORK)
		return reject(err, errlen, "unknown network mode %d", (int)pb->network_mode);
	w->network_mode = (enum zt_network_mode)pb->network_mode;
	w->capacity = pb->capacity ? pb->capacity->value : 1;
	rc = zt_spiffe_set(&w->identity, w->trust_domain, w->ns, w->service_account);
	if (rc)
		return reject(err, errlen,
		              "no valid identity from trust domain \"%.64s\", namespace "
		              "\"%.64s\", service account \"%.64s\"",
		              w->trust_domain, w->ns, w->service_account);
	return 0;
}

static void workload_free(struct zt_workload *w)
{
	struct zt_arena a = w->arena_;

	zt_arena_clear(&a);
	free(w);
	zt_live_dec(&zt_live_state_workload);
}

int zt_workload_decode(const Istio__Workload__Workload *pb, struct zt_workload **out, char *err,
                       size_t errlen)
{
	struct zt_workload *w = xcalloc(1, sizeof(*w));
	int rc;

	zt_live_inc(&zt_live_state_workload);
	atomic_init(&w->refs_, 1);
	rc = decode(pb, w, err, errlen);
	if (rc) {
		workload_free(w);
		w = NULL;
	}
	*out = w;
	return rc;
}

struct zt_workload *zt_workload_ref(struct zt_workload *w)
{
	if (w)
		atomic_fetch_add(&w->refs_, 1);
	return w;
}

void zt_workload_unref(struct zt_workload *w)
{
	if (w && atomic_fetch_sub(&w->refs_, 1) == 1)
		workload_free(w);
}

const struct zt_workload_service *zt_workload_service(const struct zt_workload *w, const char *key)
{
	for (size_t i = 0; i < w->n_services; i++)
		if (strcmp(w->services[i].key, key) == 0)
			return &w->services[i];
	return NULL;
}

int zt_workload_ip_rank(const struct zt_workload *w)
{
	return (strstr(w->uid, "//Pod/") ? 2 : 0) + (w->tunnel_protocol == ZT_TUNNEL_HBONE);
}

bool zt_workload_has_ip(const struct zt_workload *w, const struct zt_ip *ip)
{
	for (size_t i = 0; i < w->n_ips; i++)
		if (zt_ip_equal(&w->ips[i], ip))
			return true;
	return false;
}
