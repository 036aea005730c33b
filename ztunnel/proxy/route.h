/* The outbound routing decision (spec §7.1) and the inbound lookups of §7.2 steps 3-4, as pure
 * functions of the store: no sockets, no loop. A decision is a struct zt_route holding its own
 * references to the objects it was made from, so it stays valid and consistent while the store
 * changes. Randomness (load balancing, weighted waypoints) comes from a caller-supplied source
 * so tests are deterministic. */
#ifndef ZT_ROUTE_H
#define ZT_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/spiffe.h"
#include "protocol/tls.h"
#include "hbone/hbone.h"
#include "runtime/addr.h"
#include "state/store.h"

#define ZT_ROUTE_HBONE_PORT 15008 /* HBONE port of a pod, and of a waypoint sending none */
#define ZT_ROUTE_REASON_MAX 128
/* Most identities a route expects: what the pool and the TLS client accept. */
#define ZT_ROUTE_MAX_EXPECTED ZT_TLS_MAX_EXPECTED

/* Reasons, exactly as written into zt_route.reason. */
#define ZT_ROUTE_REASON_SELF            "attempted recursive call to ourselves"
#define ZT_ROUTE_REASON_NO_UPSTREAM     "no healthy upstream"
#define ZT_ROUTE_REASON_MULTI_NETWORK   "double HBONE (multi-network) is not supported"
#define ZT_ROUTE_REASON_HOSTNAME        "hostname workloads are not supported"
#define ZT_ROUTE_REASON_NO_ADDRESS      "no usable address for the destination workload"
#define ZT_ROUTE_REASON_WAYPOINT        "unknown waypoint"
#define ZT_ROUTE_REASON_UNKNOWN         "unknown destination"
#define ZT_ROUTE_REASON_SVC_PASSTHROUGH "service load balancing mode is PASSTHROUGH"

enum zt_route_kind {
	ZT_ROUTE_HBONE,       /* mTLS + CONNECT to next_hop, :authority = authority */
	ZT_ROUTE_PLAIN,       /* plain TCP to a known workload (tunnel protocol NONE) */
	ZT_ROUTE_PASSTHROUGH, /* unknown destination or PASSTHROUGH service: plain TCP to dst */
	ZT_ROUTE_DENY,        /* refused; reason says why */
};

/* Returns a uniformly distributed 32-bit value. */
typedef uint32_t (*zt_route_rand_cb)(void *arg);

struct zt_route_in {
	/* The pod owning the 15001 listener (borrowed). Required: a caller that does not know
	 * its workload must not route (spec §7.1 step 2). */
	const struct zt_workload *source;
	struct zt_sockaddr dst; /* original destination (SO_ORIGINAL_DST), canonical */
	/* Network of the source, for every lookup and comparison; NULL = source->network. */
	const char *network;
	/* Random source; NULL = arc4random(3). */
	zt_route_rand_cb rand_cb;
	void *rand_arg;
	/* Our own listener ports: loopback + one of these is refused. NULL = 15001, 15006,
	 * 15008. */
	const uint16_t *illegal_ports;
	size_t n_illegal_ports;
};

/* One decision. Fields not listed for a kind are zero/NULL/"".
 *   HBONE        next_hop, authority/target, expected (n_expected >= 1), dst_workload
 *   PLAIN        next_hop (= target), dst_workload
 *   PASSTHROUGH  next_hop (= the original dst), reason; service when a PASSTHROUGH service
 *   DENY         reason; the objects resolved before the refusal are kept for logs */
struct zt_route {
	enum zt_route_kind kind;
	/* TCP destination: <pod ip>:15008 (or a waypoint's hbone_mtls_port), <pod ip>:<target
	 * port>, or the original dst. */
	struct zt_sockaddr next_hop;
	/* The final target: VIP:port through a service waypoint, podIP:port through a workload
	 * waypoint, podIP:targetPort when direct. authority is its text ("[v6]:port"). */
	struct zt_sockaddr target;
	char authority[ZT_ADDR_STRLEN];
	/* Identities the HBONE server must prove: the next hop workload's, then the SANs of the
	 * service it was reached through (unparsable ones skipped). Owned (zt_route_clear). */
	struct zt_spiffe *expected;
	size_t n_expected;
	struct zt_workload *dst_workload;   /* ref: the pod connected to (waypoint pod if any) */
	struct zt_workload *final_workload; /* ref: the intended destination pod, if known */
	struct zt_service *service;         /* ref: the service addressed (telemetry, host=) */
	bool via_waypoint;
	/* A destination workload with a hostname and no IP (spec §7.1): its name, borrowed from
	 * dst_workload; next_hop and target then have their ports only, until
	 * zt_route_set_resolved. NULL otherwise. */
	const char *resolve_host;
	char reason[ZT_ROUTE_REASON_MAX]; /* one of ZT_ROUTE_REASON_*, or "" */
};

/* Decides where a connection from in->source to in->dst goes (spec §7.1):
 *   1. loopback dst on an illegal port: DENY SELF;
 *   2. dst a service VIP (zt_store_service_by_vip with the source's namespace): a service
 *      waypoint (weighted_waypoints drawn by weight, else waypoint) gives HBONE to the
 *      waypoint with target = dst, unless the source is that waypoint; a PASSTHROUGH service
 *      gives PASSTHROUGH; else an endpoint is load-balanced (below) or DENY NO_UPSTREAM;
 *   3. dst a workload IP on the source's network: that workload, port unchanged;
 *      otherwise PASSTHROUGH UNKNOWN;
 *   4. the workload on another network: DENY MULTI_NETWORK; with a hostname and no IP: its
 *      name in resolve_host (the caller resolves it); with no IP the service allows: DENY
 *      NO_ADDRESS;
 *   5. workload-addressed, the workload has a waypoint and the source is not it: HBONE to the
 *      waypoint with target = dst;
 *   6. direct: HBONE to <ip>:15008, target <ip>:<target port>, or PLAIN to <ip>:<target port>.
 * A waypoint (GatewayAddress) is resolved as a destination: an address owned by a workload is
 * that workload at hbone_mtls_port (15008 when 0); an address that is a VIP, or a hostname,
 * names a service whose endpoint is load-balanced with hbone_mtls_port as the service port.
 * Unresolvable: DENY WAYPOINT. Waypoints are always HBONE.
 * Endpoint choice: usable per zt_service_endpoint_usable; target port = the endpoint's own
 * mapping, else the service's non-zero target port, else the service port when the endpoint
 * has an application tunnel with a port (any application tunnel for a waypoint); endpoints
 * with none are skipped, as are endpoints without address (unless on another network with a
 * network gateway, which then is DENY MULTI_NETWORK). Mode UNSPECIFIED draws by capacity among
 * all; FAILOVER ranks by the number of leading routing preferences matching the source and
 * draws among the best; STRICT keeps only endpoints matching every preference.
 * IP choice: dst if the workload owns it, else the first IP of dst's family, else the first
 * (after the service's IPV4_ONLY/IPV6_ONLY filter).
 * out is always initialised (zt_route_clear it after use, whatever the result). Returns 0
 * with a decision in out, or -EINVAL (no source, or dst without family). */
int zt_route_outbound(const struct zt_store *store, const struct zt_route_in *in,
                      struct zt_route *out);

/* Completes a route with resolve_host set: ip becomes the target's and next hop's address. */
void zt_route_set_resolved(struct zt_route *r, const struct zt_ip *ip);

/* Drops the references and the identities, and zeroes r. Accepts a zeroed route. */
void zt_route_clear(struct zt_route *r);

const char *zt_route_kind_name(enum zt_route_kind k); /* "hbone", "plain", ... */

/* Spec §7.2 step 4: the port of local (the pod behind this 15008) that an inbound CONNECT to
 * target goes to. An IP target keeps its port; a host name target must name a service local
 * is an endpoint of (matched among local->services, case-insensitively), whose service port
 * is mapped by local's own port map, else by the service's non-zero target port. Then a
 * non-zero application_tunnel.port overrides the result. The caller checks the result against
 * its illegal ports. Returns 0 (*port set) or ZT_E_NOTFOUND (unknown host, unmapped port). */
int zt_route_inbound_port(const struct zt_store *store, const struct zt_workload *local,
                          const struct zt_hbone_authority *target, uint16_t *port);

/* Spec §7.2 step 3 waypoint exception: whether local is a waypoint of target_ip (on local's
 * network), i.e. the waypoint of the workload owning target_ip, or the waypoint (or one of
 * the weighted waypoints) of the service with VIP target_ip, resolves to local: an address
 * local owns, or a service (by VIP or hostname) local is an endpoint of. */
bool zt_route_is_waypoint_for(const struct zt_store *store, const struct zt_workload *local,
                              const struct zt_ip *target_ip);

#endif
