/* Services decoded from istio.workload.Service (spec §3.5) together with a snapshot of their
 * endpoints. A struct zt_service is immutable and reference counted: when the service or any
 * of its endpoints changes, the store publishes a new object, so a reader holding a reference
 * sees one consistent service with one consistent endpoint list. Successive versions with the
 * same definition share its decoded fields. */
#ifndef ZT_STATE_SERVICE_H
#define ZT_STATE_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "istio/workload/workload.pb-c.h"
#include "runtime/addr.h"
#include "state/workload.h"

/* Numeric values equal the protobuf enums; all are validated at decode time. */
enum zt_lb_scope {
	ZT_LB_SCOPE_UNSPECIFIED = 0,
	ZT_LB_SCOPE_REGION = 1,
	ZT_LB_SCOPE_ZONE = 2,
	ZT_LB_SCOPE_SUBZONE = 3,
	ZT_LB_SCOPE_NODE = 4,
	ZT_LB_SCOPE_CLUSTER = 5,
	ZT_LB_SCOPE_NETWORK = 6,
};
enum zt_lb_mode {
	ZT_LB_MODE_UNSPECIFIED = 0,
	ZT_LB_MODE_STRICT = 1,
	ZT_LB_MODE_FAILOVER = 2,
	ZT_LB_MODE_PASSTHROUGH = 3,
};
enum zt_lb_health { ZT_LB_ONLY_HEALTHY = 0, ZT_LB_ALLOW_ALL = 1 };
enum zt_ip_families {
	ZT_IP_FAMILIES_AUTOMATIC = 0,
	ZT_IP_FAMILIES_IPV4_ONLY = 1,
	ZT_IP_FAMILIES_IPV6_ONLY = 2,
	ZT_IP_FAMILIES_DUAL = 3,
};
enum zt_visibility { ZT_VISIBILITY_PUBLIC = 0, ZT_VISIBILITY_NAMESPACE = 1 };

/* A VIP: a host address (prefix 32 or 128) or, from newer istiod, a CIDR range. */
struct zt_vip {
	const char *network; /* "" = default network */
	struct zt_cidr cidr;
};

struct zt_weighted_waypoint {
	struct zt_gateway destination; /* never ZT_GATEWAY_UNSET */
	uint32_t weight;
};

struct zt_load_balancing {
	bool present; /* load_balancing was sent */
	const enum zt_lb_scope *routing_preference;
	size_t n_routing_preference;
	enum zt_lb_mode mode;
	enum zt_lb_health health_policy;
};

/* One endpoint: a workload listing this service, and its port map for it (borrowed from the
 * workload, so valid as long as the endpoint's reference). */
struct zt_endpoint {
	struct zt_workload *workload;
	const struct zt_workload_service *ports;
};

/* Every string is non-NULL; arrays are NULL when empty. */
struct zt_service {
	const char *name;
	const char *ns;            /* non-empty */
	const char *hostname;      /* non-empty */
	const char *key;           /* "ns/hostname": the resource name and store key */
	const struct zt_vip *vips; /* empty = headless */
	size_t n_vips;
	const struct zt_port *ports;
	size_t n_ports;
	const char *const *subject_alt_names;
	size_t n_subject_alt_names;
	struct zt_gateway waypoint;
	struct zt_load_balancing load_balancing;
	enum zt_ip_families ip_families;
	bool canonical;
	bool ingress_use_waypoint;
	const struct zt_weighted_waypoint *weighted_waypoints;
	size_t n_weighted_waypoints;
	enum zt_visibility visibility;
	/* Endpoint snapshot, in the order the workloads first listed the service. Includes
	 * unhealthy workloads: see zt_service_endpoint_usable. */
	const struct zt_endpoint *endpoints;
	size_t n_endpoints;

	/* private */
	atomic_uint refs_;
	struct zt_service_core *core_; /* shared decoded fields */
};

/* Decodes pb (borrowed) into a new service with no endpoints and one reference. Rejects with
 * a reason: empty namespace or hostname, a VIP address that is not 4 or 16 bytes or whose
 * prefix length is too long, a port of 0 or over 65535, a GatewayAddress without
 * destination, a weighted waypoint without destination, an unknown enum value (load
 * balancing scope, mode, health policy, IP families, visibility).
 * Returns 0 or ZT_E_PROTO (*out NULL). */
int zt_service_decode(const Istio__Workload__Service *pb, struct zt_service **out, char *err,
                      size_t errlen);

/* A new service (one reference) with svc's fields and the endpoints ws[0..n) (each gets a
 * reference; each must list svc->key in its services). svc is borrowed and unchanged. */
struct zt_service *zt_service_with_endpoints(const struct zt_service *svc,
                                             struct zt_workload *const *ws, size_t n);

/* New reference; returns svc (NULL allowed). */
struct zt_service *zt_service_ref(struct zt_service *svc);
/* Drops a reference; the last one frees the object and its endpoint references. NULL ok. */
void zt_service_unref(struct zt_service *svc);

/* The Port entry for service_port, or NULL. Borrowed from svc. */
const struct zt_port *zt_service_port(const struct zt_service *svc, uint16_t service_port);

/* The one service-port -> target-port rule (spec §7.1): the port an endpoint receives
 * service_port on is its own mapping for that port when the mapping names a target (ws, the
 * workload's entry for svc), else the Service's targetPort; 0 when neither names one. svc and
 * ws may be NULL. *known (may be NULL) tells whether either lists service_port at all. */
uint16_t zt_service_target_port(const struct zt_service *svc, const struct zt_workload_service *ws,
                                uint16_t service_port, bool *known);

/* Spec §3.5: an unhealthy endpoint is usable only under health_policy ALLOW_ALL. */
bool zt_service_endpoint_usable(const struct zt_service *svc, const struct zt_endpoint *ep);

/* Visibility filter (spec §7.1): a NAMESPACE-visibility service is seen only by clients in
 * its own namespace. A NULL caller_ns sees everything. */
bool zt_service_visible_to(const struct zt_service *svc, const char *caller_ns);

/* True when the VIP is a single address rather than a range. */
bool zt_vip_is_host(const struct zt_vip *vip);

#endif
