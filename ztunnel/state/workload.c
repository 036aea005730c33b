/* Workload decoding and lifetime. A workload is one allocation: the struct, then its arrays
 * and unique strings (uid, name, hostname), sized from the protobuf before copying; every
 * other string is interned, except a workload_name equal to the name (every pod without an
 * owner), which is the name itself. Nothing is shared with the protobuf it came from. */
#include "state/workload.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/mem.h"
#include "state/intern.h"
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

/* Copies s into arena, or interns it without one. */
static const char *keep_str(struct zt_arena *arena, const char *s)
{
	return arena ? zt_arena_strdup(arena, s) : zt_intern(s);
}

static int gateway_decode(const Istio__Workload__GatewayAddress *pb, struct zt_arena *arena,
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
		out->ns = keep_str(arena, pb->hostname->namespace_);
		out->hostname = keep_str(arena, pb->hostname->hostname);
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
		out->network = keep_str(arena, pb->address->network);
		return 0;
	default:
		return reject(err, errlen, "%s: gateway address without destination", what);
	}
}

int zt_gateway_decode(const Istio__Workload__GatewayAddress *pb, struct zt_arena *arena,
                      struct zt_gateway *out, const char *what, char *err, size_t errlen)
{
	return gateway_decode(pb, arena, out, what, err, errlen);
}

const struct zt_gateway zt_gateway_unset = {.ns = "", .hostname = "", .network = ""};

/* Releases the strings of an interned gateway ("" literals are not interned). */
static void gateway_release(const struct zt_gateway *g)
{
	if (!g)
		return;
	if (g->kind == ZT_GATEWAY_HOSTNAME) {
		zt_intern_release(g->ns);
		zt_intern_release(g->hostname);
	} else if (g->kind == ZT_GATEWAY_ADDRESS) {
		zt_intern_release(g->network);
	}
}

static int ports_fill(Istio__Workload__Port *const *pb, size_t n, struct zt_port *v, char *err,
                      size_t errlen)
{
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
	return 0;
}

int zt_ports_decode(Istio__Workload__Port *const *pb, size_t n, struct zt_arena *arena,
                    struct zt_port **out, char *err, size_t errlen)
{
	struct zt_port *v = zt_arena_calloc(arena, n, sizeof(*v));

	*out = v;
	return ports_fill(pb, n, v, err, errlen);
}

/* The block after the struct: arrays first (aligned), then strings. */
struct bump {
	char *p, *end;
};

static void *take(struct bump *b, size_t size)
{
	void *p = b->p;

	size = (size + 7) & ~(size_t)7;
	assert((size_t)(b->end - b->p) >= size);
	b->p += size;
	return size ? p : NULL;
}

static const char *take_str(struct bump *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *p = take(b, n + 1);

	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static size_t str_size(const char *s)
{
	return ((s ? strlen(s) : 0) + 1 + 7) & ~(size_t)7;
}

/* Bytes the block needs for pb (an upper bound: map keys sent twice count twice). */
static size_t block_size(const Istio__Workload__Workload *pb)
{
	size_t n = str_size(pb->uid) + str_size(pb->name) + str_size(pb->hostname);

	n += ((pb->n_addresses * sizeof(struct zt_ip)) + 7) & ~(size_t)7;
	n += pb->n_services * sizeof(struct zt_workload_service);
	for (size_t i = 0; i < pb->n_services; i++)
		if (pb->services[i]->value)
			n += ((pb->services[i]->value->n_ports * sizeof(struct zt_port)) + 7) &
			     ~(size_t)7;
	n += pb->n_authorization_policies * sizeof(char *);
	n += ((pb->waypoint != NULL) + (pb->network_gateway != NULL)) *
	     ((sizeof(struct zt_gateway) + 7) & ~(size_t)7);
	return n;
}

/* Workload.services is a proto map: a key sent twice keeps its last value. */
static int decode_services(const Istio__Workload__Workload *pb, struct zt_workload *w,
                           struct bump *b, char *err, size_t errlen)
{
	struct zt_workload_service *v = take(b, pb->n_services * sizeof(*v));
	size_t n = 0;

	w->services = v;
	for (size_t i = 0; i < pb->n_services; i++) {
		const Istio__Workload__Workload__ServicesEntry *e = pb->services[i];
		const char *key = e->key ? e->key : "";
		struct zt_workload_service *s = NULL;
		struct zt_port *ports = NULL;
		size_t np = e->value ? e->value->n_ports : 0;
		int rc;

		if (!*key)
			return reject(err, errlen, "empty service key");
		for (size_t j = 0; j < n; j++)
			if (strcmp(v[j].key, key) == 0)
				s = &v[j];
		if (!s) {
			s = &v[n++];
			s->key = zt_intern(key);
			w->n_services = n;
		}
		ports = take(b, np * sizeof(*ports));
		if (np && (rc = ports_fill(e->value->ports, np, ports, err, errlen)))
			return rc;
		s->ports = ports;
		s->n_ports = np;
	}
	if (!n)
		w->services = NULL;
	return 0;
}

static const char *intern_or(const char *s, const char *def)
{
	return zt_intern(s && *s ? s : def);
}

static int decode(const Istio__Workload__Workload *pb, struct zt_workload *w, struct bump *b,
                  char *err, size_t errlen)
{
	struct zt_ip *ips;
	const char **keys;
	int rc;

	if (!pb->uid || !*pb->uid)
		return reject(err, errlen, "workload has an empty uid");
	ips = take(b, pb->n_addresses * sizeof(*ips));
	for (size_t i = 0; i < pb->n_addresses; i++)
		if (zt_ip_from_bytes(&ips[i], pb->addresses[i].data, pb->addresses[i].len))
			return reject(err, errlen, "address %zu is %zu bytes, not 4 or 16", i,
			              pb->addresses[i].len);
	w->ips = ips;
	w->n_ips = pb->n_addresses;
	if (pb->network && strlen(pb->network) > ZT_NETWORK_MAX)
		return reject(err, errlen, "network name longer than %d bytes", ZT_NETWORK_MAX);
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
	w->waypoint = w->network_gateway = &zt_gateway_unset;
	if (pb->waypoint) {
		struct zt_gateway *g = take(b, sizeof(*g));
		w->waypoint = g;
		if ((rc = gateway_decode(pb->waypoint, NULL, g, "waypoint", err, errlen)))
			return rc;
	}
	if (pb->network_gateway) {
		struct zt_gateway *g = take(b, sizeof(*g));
		w->network_gateway = g;
		if ((rc = gateway_decode(pb->network_gateway, NULL, g, "network_gateway", err,
		                         errlen)))
			return rc;
	}
	w->workload_type = (enum zt_workload_type)pb->workload_type;
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
	rc = decode_services(pb, w, b, err, errlen);
	if (rc)
		return rc;
	keys = take(b, pb->n_authorization_policies * sizeof(*keys));
	for (size_t i = 0; i < pb->n_authorization_policies; i++) {
		keys[i] = zt_intern(pb->authorization_policies[i]);
		w->n_authorization_policies = i + 1;
	}
	w->authorization_policies = keys;
	w->status = (enum zt_workload_status)pb->status;
	if (pb->network_mode != ISTIO__WORKLOAD__NETWORK_MODE__STANDARD &&
	    pb->network_mode != ISTIO__WORKLOAD__NETWORK_MODE__HOST_NETWORK)
		return reject(err, errlen, "unknown network mode %d", (int)pb->network_mode);
	w->network_mode = (enum zt_network_mode)pb->network_mode;
	w->capacity = pb->capacity ? pb->capacity->value : 1;
	w->uid = take_str(b, pb->uid);
	w->name = take_str(b, pb->name);
	w->hostname = take_str(b, pb->hostname);
	w->ns = zt_intern(pb->namespace_);
	w->network = zt_intern(pb->network);
	w->trust_domain = intern_or(pb->trust_domain, ZT_SPIFFE_DEFAULT_TD);
	w->service_account = intern_or(pb->service_account, ZT_SPIFFE_DEFAULT_SA);
	w->node = zt_intern(pb->node);
	w->canonical_name = zt_intern(pb->canonical_name);
	w->canonical_revision = zt_intern(pb->canonical_revision);
	w->workload_name = strcmp(w->name, pb->workload_name ? pb->workload_name : "") == 0
	                           ? w->name
	                           : zt_intern(pb->workload_name);
	w->cluster_id = intern_or(pb->cluster_id, ZT_WORKLOAD_DEFAULT_CLUSTER_ID);
	w->locality.region = zt_intern(pb->locality ? pb->locality->region : NULL);
	w->locality.zone = zt_intern(pb->locality ? pb->locality->zone : NULL);
	w->locality.subzone = zt_intern(pb->locality ? pb->locality->subzone : NULL);
	w->identity = zt_intern_spiffe(w->trust_domain, w->ns, w->service_account, &rc);
	if (!w->identity)
		return reject(err, errlen,
		              "no valid identity from trust domain \"%.64s\", namespace "
		              "\"%.64s\", service account \"%.64s\"",
		              w->trust_domain, w->ns, w->service_account);
	return 0;
}

/* Releases what decode() interned; fields it did not reach are NULL. */
static void workload_free(struct zt_workload *w)
{
	const char *const interned[] = {
	        w->ns,           w->network,        w->trust_domain,       w->service_account,
	        w->node,         w->canonical_name, w->canonical_revision,
	        w->workload_name != w->name ? w->workload_name : NULL,
	        w->cluster_id,   w->locality.region, w->locality.zone,     w->locality.subzone,
	};

	for (size_t i = 0; i < sizeof(interned) / sizeof(interned[0]); i++)
		zt_intern_release(interned[i]);
	zt_intern_release(w->identity);
	gateway_release(w->waypoint);
	gateway_release(w->network_gateway);
	for (size_t i = 0; i < w->n_services; i++)
		zt_intern_release(w->services[i].key);
	for (size_t i = 0; i < w->n_authorization_policies; i++)
		zt_intern_release(w->authorization_policies[i]);
	free(w);
	zt_live_dec(&zt_live_state_workload);
}

int zt_workload_decode(const Istio__Workload__Workload *pb, struct zt_workload **out, char *err,
                       size_t errlen)
{
	size_t extra = block_size(pb);
	struct zt_workload *w = xcalloc(1, sizeof(*w) + extra);
	struct bump b = {.p = (char *)(w + 1), .end = (char *)(w + 1) + extra};
	int rc;

	zt_live_inc(&zt_live_state_workload);
	atomic_init(&w->refs_, 1);
	rc = decode(pb, w, &b, err, errlen);
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
