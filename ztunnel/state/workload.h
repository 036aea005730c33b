/* Workloads decoded from istio.workload.Workload (spec §3.5): every field, with the defaults
 * the reference applies, plus the derived SPIFFE identity. A struct zt_workload is immutable
 * once decoded and shared by reference count: an update builds a new object, and a reader
 * keeps what it resolved for as long as it holds its reference. */
#ifndef ZT_STATE_WORKLOAD_H
#define ZT_STATE_WORKLOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "istio/workload/workload.pb-c.h"
#include "protocol/spiffe.h"
#include "runtime/addr.h"
#include "runtime/arena.h"

/* Defaults for empty proto3 fields (spec §3.5). */
#define ZT_WORKLOAD_DEFAULT_CLUSTER_ID "Kubernetes"
/* Longest network name accepted (real ones are Kubernetes label values, at most 63). */
#define ZT_NETWORK_MAX 253

/* Numeric values equal the protobuf enums. Fields documented "kept as sent" may hold values
 * beyond the named ones (proto3 open enums) where no decision depends on them; the others
 * are validated at decode time. */
enum zt_tunnel_protocol { ZT_TUNNEL_NONE = 0, ZT_TUNNEL_HBONE = 1 };
enum zt_app_protocol {
	ZT_APP_PROTOCOL_UNKNOWN = 0,
	ZT_APP_PROTOCOL_HTTP11 = 1,
	ZT_APP_PROTOCOL_HTTP2 = 2,
	ZT_APP_PROTOCOL_GRPC = 3,
	ZT_APP_PROTOCOL_TCP = 4,
	ZT_APP_PROTOCOL_TLS = 5,
};
enum zt_workload_type {
	ZT_WORKLOAD_DEPLOYMENT = 0,
	ZT_WORKLOAD_CRONJOB = 1,
	ZT_WORKLOAD_POD = 2,
	ZT_WORKLOAD_JOB = 3,
};
enum zt_workload_status { ZT_WORKLOAD_HEALTHY = 0, ZT_WORKLOAD_UNHEALTHY = 1 };
enum zt_network_mode { ZT_NETWORK_STANDARD = 0, ZT_NETWORK_HOST = 1 };
enum zt_app_tunnel_protocol { ZT_APP_TUNNEL_NONE = 0, ZT_APP_TUNNEL_PROXY = 1 };

/* GatewayAddress: a waypoint or an east-west gateway, named by address or by service. */
enum zt_gateway_kind {
	ZT_GATEWAY_UNSET = 0, /* the field was absent */
	ZT_GATEWAY_HOSTNAME,  /* ns + hostname of a service */
	ZT_GATEWAY_ADDRESS,   /* network + ip */
};
struct zt_gateway {
	enum zt_gateway_kind kind;
	const char *ns, *hostname; /* HOSTNAME; "" otherwise */
	const char *network;       /* ADDRESS; "" otherwise */
	struct zt_ip ip;           /* ADDRESS */
	uint16_t hbone_mtls_port;  /* 0 when not sent */
};

/* One Port entry (workload port maps and service ports). */
struct zt_port {
	uint16_t service_port;             /* 1..65535 */
	uint16_t target_port;              /* 0 = named port, resolved per endpoint */
	enum zt_app_protocol app_protocol; /* kept as sent */
};

/* One entry of Workload.services: this endpoint's port map for a service. */
struct zt_workload_service {
	const char *key; /* "namespace/hostname" */
	const struct zt_port *ports;
	size_t n_ports;
};

struct zt_locality {
	const char *region, *zone, *subzone; /* "" when unset */
};

struct zt_app_tunnel {
	bool present; /* application_tunnel was sent */
	enum zt_app_tunnel_protocol protocol;
	uint16_t port; /* 0 = keep the original port */
};

/* Every string is non-NULL ("" when unset, or the default). Arrays are NULL when empty.
 * Memory (issue: ≤ 1 KiB per workload at 100,000 pods): uid, name, hostname and the arrays
 * live in one block with the struct; every other string, the service and policy keys and
 * the identity are interned (state/intern.h), shared with every workload naming them. */
struct zt_workload {
	const char *uid; /* non-empty */
	const char *name;
	const char *ns;
	const struct zt_ip *ips; /* each IPv4 or IPv6, canonical */
	size_t n_ips;
	const char *hostname;
	const char *network;
	enum zt_tunnel_protocol tunnel_protocol;
	const char *trust_domain;    /* default cluster.local */
	const char *service_account; /* default "default" */
	const struct zt_gateway *waypoint;        /* never NULL: &zt_gateway_unset if not sent */
	const struct zt_gateway *network_gateway; /* likewise */
	const char *node;
	const char *canonical_name;
	const char *canonical_revision;
	enum zt_workload_type workload_type; /* kept as sent */
	const char *workload_name;
	bool native_tunnel;
	struct zt_app_tunnel application_tunnel;
	const struct zt_workload_service *services; /* unique keys, in the order sent */
	size_t n_services;
	const char *const *authorization_policies; /* "ns/name" */
	size_t n_authorization_policies;
	enum zt_workload_status status; /* kept as sent: only HEALTHY counts as healthy */
	const char *cluster_id;         /* default Kubernetes */
	struct zt_locality locality;
	enum zt_network_mode network_mode;
	uint32_t capacity;                /* default 1 when the wrapper is absent */
	const struct zt_spiffe *identity; /* spiffe://trust_domain/ns/ns/sa/service_account */

	/* private */
	atomic_uint refs_;
};

/* A workload's gateway that was not sent (kind UNSET, strings ""). */
extern const struct zt_gateway zt_gateway_unset;

/* Decodes pb (borrowed) into a new workload with one reference (*out). Rejects, with a
 * reason in err: empty uid, an address that is not 4 or 16 bytes, tunnel protocol
 * LEGACY_ISTIO_MTLS or unknown, a network name over ZT_NETWORK_MAX, a GatewayAddress without
 * destination or with a bad address, a port over 65535, an unknown network mode or application
 * tunnel protocol, an empty service key, and a namespace/service account/trust domain that make no
 * SPIFFE identity. Returns 0 or ZT_E_PROTO (*out NULL). */
int zt_workload_decode(const Istio__Workload__Workload *pb, struct zt_workload **out, char *err,
                       size_t errlen);

/* Decodes a GatewayAddress (shared with services); NULL pb gives kind UNSET. Strings are
 * copied into arena. Returns 0 or ZT_E_PROTO with a reason prefixed by what. */
int zt_gateway_decode(const Istio__Workload__GatewayAddress *pb, struct zt_arena *arena,
                      struct zt_gateway *out, const char *what, char *err, size_t errlen);

/* Decodes a repeated Port. Returns 0 or ZT_E_PROTO. */
int zt_ports_decode(Istio__Workload__Port *const *pb, size_t n, struct zt_arena *arena,
                    struct zt_port **out, char *err, size_t errlen);

/* New reference; accepts NULL (returns it). */
struct zt_workload *zt_workload_ref(struct zt_workload *w);
/* Drops a reference, freeing on the last one. Accepts NULL. */
void zt_workload_unref(struct zt_workload *w);

/* This workload's port map for service key "ns/hostname", or NULL. Borrowed from w. */
const struct zt_workload_service *zt_workload_service(const struct zt_workload *w, const char *key);

/* Preference among workloads sharing an IP (spec §3.5): 3 = Pod uid and HBONE, 2 = Pod,
 * 1 = HBONE, 0 = other. */
int zt_workload_ip_rank(const struct zt_workload *w);

/* Whether w owns ip. */
bool zt_workload_has_ip(const struct zt_workload *w, const struct zt_ip *ip);

#endif
