/* Generated protobuf code and protocol/pb: field numbers against the spec tables, a round trip
 * of every message type with every field set, tolerance of unknown fields, rejection of
 * truncated, malformed and over-deep input, and the Any/xDS envelope. Linking every generated
 * file into this binary also proves their symbols do not clash with each other or libprotobuf-c. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/service/discovery/v3/ads.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "istio/ca/ca.pb-c.h"
#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "runtime/err.h"
#include "runtime/mem.h"

#define MAX (1u << 20)

/* ---- every message type, with the full name the wire (Any, gRPC) depends on ---------------- */

#define WL(x)   istio__workload__##x##__descriptor
#define SEC(x)  istio__security__##x##__descriptor
#define ZDS(x)  istio__workload__zds__##x##__descriptor
#define CA(x)   istio__v1__auth__##x##__descriptor
#define XDS(x)  envoy__service__discovery__v3__##x##__descriptor
#define CORE(x) envoy__config__core__v3__##x##__descriptor
#define GPB(x)  google__protobuf__##x##__descriptor

static const struct {
	const ProtobufCMessageDescriptor *d;
	const char *name;
} all_msgs[] = {
        {&WL(address), "istio.workload.Address"},
        {&WL(service), "istio.workload.Service"},
        {&WL(workload), "istio.workload.Workload"},
        {&WL(workload__services_entry), "istio.workload.Workload.ServicesEntry"},
        {&WL(locality), "istio.workload.Locality"},
        {&WL(port_list), "istio.workload.PortList"},
        {&WL(port), "istio.workload.Port"},
        {&WL(application_tunnel), "istio.workload.ApplicationTunnel"},
        {&WL(gateway_address), "istio.workload.GatewayAddress"},
        {&WL(weighted_waypoint), "istio.workload.WeightedWaypoint"},
        {&WL(network_address), "istio.workload.NetworkAddress"},
        {&WL(namespaced_hostname), "istio.workload.NamespacedHostname"},
        {&WL(extension), "istio.workload.Extension"},
        {&WL(load_balancing), "istio.workload.LoadBalancing"},
        {&SEC(authorization), "istio.security.Authorization"},
        {&SEC(rule), "istio.security.Rule"},
        {&SEC(clause), "istio.security.Clause"},
        {&SEC(match), "istio.security.Match"},
        {&SEC(address), "istio.security.Address"},
        {&SEC(service_account_match), "istio.security.ServiceAccountMatch"},
        {&SEC(string_match), "istio.security.StringMatch"},
        {&ZDS(zds_hello), "istio.workload.zds.ZdsHello"},
        {&ZDS(workload_info), "istio.workload.zds.WorkloadInfo"},
        {&ZDS(add_workload), "istio.workload.zds.AddWorkload"},
        {&ZDS(keep_workload), "istio.workload.zds.KeepWorkload"},
        {&ZDS(del_workload), "istio.workload.zds.DelWorkload"},
        {&ZDS(snapshot_sent), "istio.workload.zds.SnapshotSent"},
        {&ZDS(ack), "istio.workload.zds.Ack"},
        {&ZDS(workload_request), "istio.workload.zds.WorkloadRequest"},
        {&ZDS(workload_response), "istio.workload.zds.WorkloadResponse"},
        {&CA(istio_certificate_request), "istio.v1.auth.IstioCertificateRequest"},
        {&CA(istio_certificate_response), "istio.v1.auth.IstioCertificateResponse"},
        {&XDS(delta_discovery_request), "envoy.service.discovery.v3.DeltaDiscoveryRequest"},
        {&XDS(delta_discovery_request__initial_resource_versions_entry),
         "envoy.service.discovery.v3.DeltaDiscoveryRequest.InitialResourceVersionsEntry"},
        {&XDS(delta_discovery_response), "envoy.service.discovery.v3.DeltaDiscoveryResponse"},
        {&XDS(resource), "envoy.service.discovery.v3.Resource"},
        {&XDS(resource__cache_control), "envoy.service.discovery.v3.Resource.CacheControl"},
        {&CORE(node), "envoy.config.core.v3.Node"},
        {&CORE(locality), "envoy.config.core.v3.Locality"},
        {&GPB(any), "google.protobuf.Any"},
        {&GPB(struct), "google.protobuf.Struct"},
        {&GPB(struct__fields_entry), "google.protobuf.Struct.FieldsEntry"},
        {&GPB(value), "google.protobuf.Value"},
        {&GPB(list_value), "google.protobuf.ListValue"},
        {&GPB(empty), "google.protobuf.Empty"},
        {&GPB(uint32_value), "google.protobuf.UInt32Value"},
        {&GPB(duration), "google.protobuf.Duration"},
        {&google__rpc__status__descriptor, "google.rpc.Status"},
};
#define N_MSGS (sizeof(all_msgs) / sizeof(all_msgs[0]))

static bool listed(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < N_MSGS; i++)
		if (all_msgs[i].d == d)
			return true;
	return false;
}

/* ---- field table: spec §3.3, §3.5, §3.6, §4, §5 ----------------------------------------- */

enum { ONE, REP, ONEOF };

static const struct {
	const ProtobufCMessageDescriptor *d;
	const char *field;
	unsigned id;
	ProtobufCType type;
	int kind;
	const void *sub; /* message or enum descriptor, NULL for scalars */
} spec_fields[] = {
#define S(t) PROTOBUF_C_TYPE_##t
        /* spec §3.5 */
        {&WL(address), "workload", 1, S(MESSAGE), ONEOF, &WL(workload)},
        {&WL(address), "service", 2, S(MESSAGE), ONEOF, &WL(service)},
        {&WL(service), "name", 1, S(STRING), ONE, NULL},
        {&WL(service), "namespace", 2, S(STRING), ONE, NULL},
        {&WL(service), "hostname", 3, S(STRING), ONE, NULL},
        {&WL(service), "addresses", 4, S(MESSAGE), REP, &WL(network_address)},
        {&WL(service), "ports", 5, S(MESSAGE), REP, &WL(port)},
        {&WL(service), "subject_alt_names", 6, S(STRING), REP, NULL},
        {&WL(service), "waypoint", 7, S(MESSAGE), ONE, &WL(gateway_address)},
        {&WL(service), "load_balancing", 8, S(MESSAGE), ONE, &WL(load_balancing)},
        {&WL(service), "ip_families", 9, S(ENUM), ONE, &istio__workload__ipfamilies__descriptor},
        {&WL(service), "extensions", 10, S(MESSAGE), REP, &WL(extension)},
        {&WL(service), "canonical", 11, S(BOOL), ONE, NULL},
        {&WL(service), "ingress_use_waypoint", 12, S(BOOL), ONE, NULL},
        {&WL(service), "weighted_waypoints", 13, S(MESSAGE), REP, &WL(weighted_waypoint)},
        {&WL(service), "visibility", 14, S(ENUM), ONE,
         &istio__workload__service__visibility__descriptor},
        {&WL(workload), "uid", 20, S(STRING), ONE, NULL},
        {&WL(workload), "name", 1, S(STRING), ONE, NULL},
        {&WL(workload), "namespace", 2, S(STRING), ONE, NULL},
        {&WL(workload), "addresses", 3, S(BYTES), REP, NULL},
        {&WL(workload), "hostname", 21, S(STRING), ONE, NULL},
        {&WL(workload), "network", 4, S(STRING), ONE, NULL},
        {&WL(workload), "tunnel_protocol", 5, S(ENUM), ONE,
         &istio__workload__tunnel_protocol__descriptor},
        {&WL(workload), "trust_domain", 6, S(STRING), ONE, NULL},
        {&WL(workload), "service_account", 7, S(STRING), ONE, NULL},
        {&WL(workload), "waypoint", 8, S(MESSAGE), ONE, &WL(gateway_address)},
        {&WL(workload), "network_gateway", 19, S(MESSAGE), ONE, &WL(gateway_address)},
        {&WL(workload), "node", 9, S(STRING), ONE, NULL},
        {&WL(workload), "canonical_name", 10, S(STRING), ONE, NULL},
        {&WL(workload), "canonical_revision", 11, S(STRING), ONE, NULL},
        {&WL(workload), "workload_type", 12, S(ENUM), ONE,
         &istio__workload__workload_type__descriptor},
        {&WL(workload), "workload_name", 13, S(STRING), ONE, NULL},
        {&WL(workload), "native_tunnel", 14, S(BOOL), ONE, NULL},
        {&WL(workload), "application_tunnel", 23, S(MESSAGE), ONE, &WL(application_tunnel)},
        {&WL(workload), "services", 22, S(MESSAGE), REP, &WL(workload__services_entry)},
        {&WL(workload), "authorization_policies", 16, S(STRING), REP, NULL},
        {&WL(workload), "status", 17, S(ENUM), ONE, &istio__workload__workload_status__descriptor},
        {&WL(workload), "cluster_id", 18, S(STRING), ONE, NULL},
        {&WL(workload), "locality", 24, S(MESSAGE), ONE, &WL(locality)},
        {&WL(workload), "network_mode", 25, S(ENUM), ONE,
         &istio__workload__network_mode__descriptor},
        {&WL(workload), "extensions", 26, S(MESSAGE), REP, &WL(extension)},
        {&WL(workload), "capacity", 27, S(MESSAGE), ONE, &GPB(uint32_value)},
        {&WL(workload__services_entry), "key", 1, S(STRING), ONE, NULL},
        {&WL(workload__services_entry), "value", 2, S(MESSAGE), ONE, &WL(port_list)},
        {&WL(locality), "region", 1, S(STRING), ONE, NULL},
        {&WL(locality), "zone", 2, S(STRING), ONE, NULL},
        {&WL(locality), "subzone", 3, S(STRING), ONE, NULL},
        {&WL(port_list), "ports", 1, S(MESSAGE), REP, &WL(port)},
        {&WL(port), "service_port", 1, S(UINT32), ONE, NULL},
        {&WL(port), "target_port", 2, S(UINT32), ONE, NULL},
        {&WL(port), "app_protocol", 3, S(ENUM), ONE, &istio__workload__app_protocol__descriptor},
        {&WL(application_tunnel), "protocol", 1, S(ENUM), ONE,
         &istio__workload__application_tunnel__protocol__descriptor},
        {&WL(application_tunnel), "port", 2, S(UINT32), ONE, NULL},
        {&WL(gateway_address), "hostname", 1, S(MESSAGE), ONEOF, &WL(namespaced_hostname)},
        {&WL(gateway_address), "address", 2, S(MESSAGE), ONEOF, &WL(network_address)},
        {&WL(gateway_address), "hbone_mtls_port", 3, S(UINT32), ONE, NULL},
        {&WL(weighted_waypoint), "destination", 1, S(MESSAGE), ONE, &WL(gateway_address)},
        {&WL(weighted_waypoint), "weight", 2, S(UINT32), ONE, NULL},
        {&WL(network_address), "network", 1, S(STRING), ONE, NULL},
        {&WL(network_address), "address", 2, S(BYTES), ONE, NULL},
        {&WL(network_address), "length", 3, S(UINT32), ONEOF, NULL},
        {&WL(namespaced_hostname), "namespace", 1, S(STRING), ONE, NULL},
        {&WL(namespaced_hostname), "hostname", 2, S(STRING), ONE, NULL},
        {&WL(extension), "name", 1, S(STRING), ONE, NULL},
        {&WL(extension), "config", 2, S(MESSAGE), ONE, &GPB(any)},
        {&WL(load_balancing), "routing_preference", 1, S(ENUM), REP,
         &istio__workload__load_balancing__scope__descriptor},
        {&WL(load_balancing), "mode", 2, S(ENUM), ONE,
         &istio__workload__load_balancing__mode__descriptor},
        {&WL(load_balancing), "health_policy", 3, S(ENUM), ONE,
         &istio__workload__load_balancing__health_policy__descriptor},
        /* spec §3.6 */
        {&SEC(authorization), "name", 1, S(STRING), ONE, NULL},
        {&SEC(authorization), "namespace", 2, S(STRING), ONE, NULL},
        {&SEC(authorization), "scope", 3, S(ENUM), ONE, &istio__security__scope__descriptor},
        {&SEC(authorization), "action", 4, S(ENUM), ONE, &istio__security__action__descriptor},
        {&SEC(authorization), "rules", 5, S(MESSAGE), REP, &SEC(rule)},
        {&SEC(authorization), "dry_run", 6, S(BOOL), ONE, NULL},
        {&SEC(authorization), "extensions", 7, S(MESSAGE), REP, &WL(extension)},
        {&SEC(rule), "clauses", 1, S(MESSAGE), REP, &SEC(clause)},
        {&SEC(clause), "matches", 2, S(MESSAGE), REP, &SEC(match)},
        {&SEC(match), "namespaces", 1, S(MESSAGE), REP, &SEC(string_match)},
        {&SEC(match), "not_namespaces", 2, S(MESSAGE), REP, &SEC(string_match)},
        {&SEC(match), "principals", 3, S(MESSAGE), REP, &SEC(string_match)},
        {&SEC(match), "not_principals", 4, S(MESSAGE), REP, &SEC(string_match)},
        {&SEC(match), "source_ips", 5, S(MESSAGE), REP, &SEC(address)},
        {&SEC(match), "not_source_ips", 6, S(MESSAGE), REP, &SEC(address)},
        {&SEC(match), "destination_ips", 7, S(MESSAGE), REP, &SEC(address)},
        {&SEC(match), "not_destination_ips", 8, S(MESSAGE), REP, &SEC(address)},
        {&SEC(match), "destination_ports", 9, S(UINT32), REP, NULL},
        {&SEC(match), "not_destination_ports", 10, S(UINT32), REP, NULL},
        {&SEC(match), "service_accounts", 11, S(MESSAGE), REP, &SEC(service_account_match)},
        {&SEC(match), "not_service_accounts", 12, S(MESSAGE), REP, &SEC(service_account_match)},
        {&SEC(match), "extensions", 13, S(MESSAGE), REP, &WL(extension)},
        {&SEC(address), "address", 1, S(BYTES), ONE, NULL},
        {&SEC(address), "length", 2, S(UINT32), ONE, NULL},
        {&SEC(service_account_match), "namespace", 1, S(STRING), ONE, NULL},
        {&SEC(service_account_match), "serviceAccount", 2, S(STRING), ONE, NULL},
        {&SEC(string_match), "exact", 1, S(STRING), ONEOF, NULL},
        {&SEC(string_match), "prefix", 2, S(STRING), ONEOF, NULL},
        {&SEC(string_match), "suffix", 3, S(STRING), ONEOF, NULL},
        {&SEC(string_match), "presence", 4, S(MESSAGE), ONEOF, &GPB(empty)},
        /* spec §5 */
        {&ZDS(zds_hello), "version", 1, S(ENUM), ONE, &istio__workload__zds__version__descriptor},
        {&ZDS(workload_info), "name", 1, S(STRING), ONE, NULL},
        {&ZDS(workload_info), "namespace", 2, S(STRING), ONE, NULL},
        {&ZDS(workload_info), "service_account", 3, S(STRING), ONE, NULL},
        {&ZDS(add_workload), "uid", 1, S(STRING), ONE, NULL},
        {&ZDS(add_workload), "workload_info", 2, S(MESSAGE), ONE, &ZDS(workload_info)},
        {&ZDS(keep_workload), "uid", 1, S(STRING), ONE, NULL},
        {&ZDS(del_workload), "uid", 2, S(STRING), ONE, NULL},
        {&ZDS(ack), "error", 1, S(STRING), ONE, NULL},
        {&ZDS(workload_request), "add", 1, S(MESSAGE), ONEOF, &ZDS(add_workload)},
        {&ZDS(workload_request), "del", 2, S(MESSAGE), ONEOF, &ZDS(del_workload)},
        {&ZDS(workload_request), "snapshot_sent", 3, S(MESSAGE), ONEOF, &ZDS(snapshot_sent)},
        {&ZDS(workload_request), "keep", 5, S(MESSAGE), ONEOF, &ZDS(keep_workload)},
        {&ZDS(workload_response), "ack", 1, S(MESSAGE), ONEOF, &ZDS(ack)},
        /* spec §4 */
        {&CA(istio_certificate_request), "csr", 1, S(STRING), ONE, NULL},
        {&CA(istio_certificate_request), "validity_duration", 3, S(INT64), ONE, NULL},
        {&CA(istio_certificate_request), "metadata", 4, S(MESSAGE), ONE, &GPB(struct)},
        {&CA(istio_certificate_response), "cert_chain", 1, S(STRING), REP, NULL},
        /* spec §3.3 */
        {&XDS(delta_discovery_request), "node", 1, S(MESSAGE), ONE, &CORE(node)},
        {&XDS(delta_discovery_request), "type_url", 2, S(STRING), ONE, NULL},
        {&XDS(delta_discovery_request), "resource_names_subscribe", 3, S(STRING), REP, NULL},
        {&XDS(delta_discovery_request), "resource_names_unsubscribe", 4, S(STRING), REP, NULL},
        {&XDS(delta_discovery_request), "initial_resource_versions", 5, S(MESSAGE), REP,
         &XDS(delta_discovery_request__initial_resource_versions_entry)},
        {&XDS(delta_discovery_request), "response_nonce", 6, S(STRING), ONE, NULL},
        {&XDS(delta_discovery_request), "error_detail", 7, S(MESSAGE), ONE,
         &google__rpc__status__descriptor},
        {&XDS(delta_discovery_request__initial_resource_versions_entry), "key", 1, S(STRING), ONE,
         NULL},
        {&XDS(delta_discovery_request__initial_resource_versions_entry), "value", 2, S(STRING), ONE,
         NULL},
        {&XDS(delta_discovery_response), "system_version_info", 1, S(STRING), ONE, NULL},
        {&XDS(delta_discovery_response), "resources", 2, S(MESSAGE), REP, &XDS(resource)},
        {&XDS(delta_discovery_response), "type_url", 4, S(STRING), ONE, NULL},
        {&XDS(delta_discovery_response), "nonce", 5, S(STRING), ONE, NULL},
        {&XDS(delta_discovery_response), "removed_resources", 6, S(STRING), REP, NULL},
        {&XDS(resource), "version", 1, S(STRING), ONE, NULL},
        {&XDS(resource), "resource", 2, S(MESSAGE), ONE, &GPB(any)},
        {&XDS(resource), "name", 3, S(STRING), ONE, NULL},
        {&XDS(resource), "aliases", 4, S(STRING), REP, NULL},
        {&XDS(resource), "ttl", 6, S(MESSAGE), ONE, &GPB(duration)},
        {&XDS(resource), "cache_control", 7, S(MESSAGE), ONE, &XDS(resource__cache_control)},
        {&XDS(resource__cache_control), "do_not_cache", 1, S(BOOL), ONE, NULL},
        {&CORE(node), "id", 1, S(STRING), ONE, NULL},
        {&CORE(node), "cluster", 2, S(STRING), ONE, NULL},
        {&CORE(node), "metadata", 3, S(MESSAGE), ONE, &GPB(struct)},
        {&CORE(node), "locality", 4, S(MESSAGE), ONE, &CORE(locality)},
        {&CORE(node), "build_version", 5, S(STRING), ONE, NULL},
        {&CORE(node), "user_agent_name", 6, S(STRING), ONE, NULL},
        {&CORE(node), "user_agent_version", 7, S(STRING), ONEOF, NULL},
        {&CORE(node), "client_features", 10, S(STRING), REP, NULL},
        {&CORE(locality), "region", 1, S(STRING), ONE, NULL},
        {&CORE(locality), "zone", 2, S(STRING), ONE, NULL},
        {&CORE(locality), "sub_zone", 3, S(STRING), ONE, NULL},
        {&google__rpc__status__descriptor, "code", 1, S(INT32), ONE, NULL},
        {&google__rpc__status__descriptor, "message", 2, S(STRING), ONE, NULL},
        {&google__rpc__status__descriptor, "details", 3, S(MESSAGE), REP, &GPB(any)},
        {&GPB(any), "type_url", 1, S(STRING), ONE, NULL},
        {&GPB(any), "value", 2, S(BYTES), ONE, NULL},
        {&GPB(struct), "fields", 1, S(MESSAGE), REP, &GPB(struct__fields_entry)},
        {&GPB(struct__fields_entry), "key", 1, S(STRING), ONE, NULL},
        {&GPB(struct__fields_entry), "value", 2, S(MESSAGE), ONE, &GPB(value)},
        {&GPB(value), "null_value", 1, S(ENUM), ONEOF, &google__protobuf__null_value__descriptor},
        {&GPB(value), "number_value", 2, S(DOUBLE), ONEOF, NULL},
        {&GPB(value), "string_value", 3, S(STRING), ONEOF, NULL},
        {&GPB(value), "bool_value", 4, S(BOOL), ONEOF, NULL},
        {&GPB(value), "struct_value", 5, S(MESSAGE), ONEOF, &GPB(struct)},
        {&GPB(value), "list_value", 6, S(MESSAGE), ONEOF, &GPB(list_value)},
        {&GPB(list_value), "values", 1, S(MESSAGE), REP, &GPB(value)},
        {&GPB(uint32_value), "value", 1, S(UINT32), ONE, NULL},
        {&GPB(duration), "seconds", 1, S(INT64), ONE, NULL},
        {&GPB(duration), "nanos", 2, S(INT32), ONE, NULL},
#undef S
};

static const struct {
	const ProtobufCEnumDescriptor *d;
	const char *name;
	int value;
} spec_enums[] = {
#define E(d, n, v)                                                                                 \
	{                                                                                          \
		&istio__workload__##d##__descriptor, n, v                                          \
	}
        E(service__visibility, "PUBLIC", 0),
        E(service__visibility, "NAMESPACE", 1),
        E(tunnel_protocol, "NONE", 0),
        E(tunnel_protocol, "HBONE", 1),
        E(tunnel_protocol, "LEGACY_ISTIO_MTLS", 2),
        E(workload_type, "DEPLOYMENT", 0),
        E(workload_type, "CRONJOB", 1),
        E(workload_type, "POD", 2),
        E(workload_type, "JOB", 3),
        E(workload_status, "HEALTHY", 0),
        E(workload_status, "UNHEALTHY", 1),
        E(network_mode, "STANDARD", 0),
        E(network_mode, "HOST_NETWORK", 1),
        E(app_protocol, "UNKNOWN", 0),
        E(app_protocol, "HTTP11", 1),
        E(app_protocol, "HTTP2", 2),
        E(app_protocol, "GRPC", 3),
        E(app_protocol, "TCP", 4),
        E(app_protocol, "TLS", 5),
        E(application_tunnel__protocol, "NONE", 0),
        E(application_tunnel__protocol, "PROXY", 1),
        E(load_balancing__scope, "UNSPECIFIED_SCOPE", 0),
        E(load_balancing__scope, "REGION", 1),
        E(load_balancing__scope, "ZONE", 2),
        E(load_balancing__scope, "SUBZONE", 3),
        E(load_balancing__scope, "NODE", 4),
        E(load_balancing__scope, "CLUSTER", 5),
        E(load_balancing__scope, "NETWORK", 6),
        E(load_balancing__mode, "UNSPECIFIED_MODE", 0),
        E(load_balancing__mode, "STRICT", 1),
        E(load_balancing__mode, "FAILOVER", 2),
        E(load_balancing__mode, "PASSTHROUGH", 3),
        E(load_balancing__health_policy, "ONLY_HEALTHY", 0),
        E(load_balancing__health_policy, "ALLOW_ALL", 1),
        E(ipfamilies, "AUTOMATIC", 0),
        E(ipfamilies, "IPV4_ONLY", 1),
        E(ipfamilies, "IPV6_ONLY", 2),
        E(ipfamilies, "DUAL", 3),
#undef E
        {&istio__security__scope__descriptor, "GLOBAL", 0},
        {&istio__security__scope__descriptor, "NAMESPACE", 1},
        {&istio__security__scope__descriptor, "WORKLOAD_SELECTOR", 2},
        {&istio__security__action__descriptor, "ALLOW", 0},
        {&istio__security__action__descriptor, "DENY", 1},
        {&istio__workload__zds__version__descriptor, "NOT_USED", 0},
        {&istio__workload__zds__version__descriptor, "V1", 1},
        {&google__protobuf__null_value__descriptor, "NULL_VALUE", 0},
};

/* ---- generic helpers driven by the descriptors -------------------------------------------- */

static size_t slot_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4;
	}
}

static void *member(const ProtobufCMessage *m, size_t offset)
{
	return (char *)m + offset;
}

/* Position of oneof member f among its group, and the group size. */
static void oneof_pos(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                      unsigned *pos, unsigned *count)
{
	*pos = *count = 0;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *g = &d->fields[i];

		if (!(g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
		    g->quantifier_offset != f->quantifier_offset)
			continue;
		if (g == f)
			*pos = *count;
		(*count)++;
	}
}

#define FILL_DEPTH 4
#define VARIANTS   6 /* largest oneof (google.protobuf.Value.kind) */

struct filler {
	unsigned seed;
	unsigned variant; /* which member of each oneof to set */
};

static ProtobufCMessage *fill_new(const ProtobufCMessageDescriptor *d, struct filler *fl,
                                  unsigned depth);

/* Stores a non-default value of f's type in slot; false for messages past FILL_DEPTH. */
static bool fill_value(const ProtobufCFieldDescriptor *f, void *slot, struct filler *fl,
                       unsigned depth)
{
	unsigned s = fl->seed++;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)slot = -1000 - (int32_t)s;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)slot = 1000 + s;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *)slot = -1000000000000 - (int64_t)s;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)slot = 1000000000000 + s;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)slot = 1.5f + (float)s;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)slot = 2.25 + s;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)slot = 1;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;

		*(int *)slot = ed->values[ed->n_values > 1 ? 1 + s % (ed->n_values - 1) : 0].value;
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char buf[64];

		snprintf(buf, sizeof(buf), "%s-%u", f->name, s);
		*(char **)slot = strdup(buf);
		if (!*(char **)slot)
			abort();
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = slot;

		b->len = s % 2 ? 16 : 4;
		b->data = xcalloc(1, b->len);
		for (size_t i = 0; i < b->len; i++)
			b->data[i] = (uint8_t)(s + i + 1);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		if (depth >= FILL_DEPTH)
			return false;
		*(ProtobufCMessage **)slot = fill_new(f->descriptor, fl, depth + 1);
		break;
	}
	return true;
}

/* A new message of type d with every field set (two elements per repeated field, the
 * fl->variant-th member of each oneof), down to FILL_DEPTH levels of nesting. */
static ProtobufCMessage *fill_new(const ProtobufCMessageDescriptor *d, struct filler *fl,
                                  unsigned depth)
{
	ProtobufCMessage *m = xcalloc(1, d->sizeof_message);

	d->message_init(m);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		void *slot = member(m, f->offset);

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n =
			        f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= FILL_DEPTH ? 0 : 2;
			char *arr = xcalloc(n, slot_size(f->type));

			*(size_t *)member(m, f->quantifier_offset) = n;
			*(void **)slot = arr;
			for (size_t j = 0; j < n; j++)
				fill_value(f, arr + j * slot_size(f->type), fl, depth);
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			unsigned pos, count;

			oneof_pos(d, f, &pos, &count);
			if (pos == fl->variant % count && fill_value(f, slot, fl, depth))
				*(uint32_t *)member(m, f->quantifier_offset) = f->id;
		} else {
			fill_value(f, slot, fl, depth);
		}
	}
	return m;
}

static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, unsigned variant)
{
	struct filler fl = {.seed = 1, .variant = variant};

	return fill_new(d, &fl, 0);
}

static char diff_buf[256];

/* NULL when a and b hold the same known fields, else the name of the first that differs. */
static const char *msg_diff(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	const ProtobufCMessageDescriptor *d;

	if (!a || !b)
		return a == b ? NULL : "one message missing";
	d = a->descriptor;
	if (d != b->descriptor)
		return "descriptor";
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		size_t n = 1, sz = slot_size(f->type);
		const char *pa = member(a, f->offset), *pb = member(b, f->offset), *sub;

		snprintf(diff_buf, sizeof(diff_buf), "%s.%s", d->name, f->name);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(size_t *)member(a, f->quantifier_offset);
			if (n != *(size_t *)member(b, f->quantifier_offset))
				return diff_buf;
			pa = *(char **)pa;
			pb = *(char **)pb;
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t ca = *(uint32_t *)member(a, f->quantifier_offset);

			if (ca != *(uint32_t *)member(b, f->quantifier_offset))
				return diff_buf;
			if (ca != f->id)
				continue;
		}
		for (size_t j = 0; j < n; j++, pa += sz, pb += sz) {
			switch (f->type) {
			case PROTOBUF_C_TYPE_STRING:
				if (strcmp(*(char **)pa, *(char **)pb) != 0)
					return diff_buf;
				break;
			case PROTOBUF_C_TYPE_BYTES: {
				const ProtobufCBinaryData *x = (const void *)pa,
				                          *y = (const void *)pb;

				if (x->len != y->len ||
				    (x->len && memcmp(x->data, y->data, x->len)))
					return diff_buf;
				break;
			}
			case PROTOBUF_C_TYPE_MESSAGE:
				sub = msg_diff(*(ProtobufCMessage **)pa, *(ProtobufCMessage **)pb);
				if (sub)
					return sub;
				break;
			default:
				if (memcmp(pa, pb, sz) != 0)
					return diff_buf;
			}
		}
	}
	return NULL;
}

/* Name of a top-level field of m left at its default, or NULL if all are set. A oneof
 * counts as set when any member is. */
static const char *unset_field(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *slot = member(m, f->offset);
		bool set;

		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			set = *(size_t *)member(m, f->quantifier_offset) > 0;
		else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			set = *(uint32_t *)member(m, f->quantifier_offset) != 0;
		else if (f->type == PROTOBUF_C_TYPE_STRING)
			set = **(char *const *)slot != '\0';
		else if (f->type == PROTOBUF_C_TYPE_BYTES)
			set = ((const ProtobufCBinaryData *)slot)->len > 0;
		else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			set = *(ProtobufCMessage *const *)slot != NULL;
		else
			set = memcmp(slot, "\0\0\0\0\0\0\0\0", slot_size(f->type)) != 0;
		if (!set)
			return f->name;
	}
	return NULL;
}

/* Flips one bit of the first value held by field f of m (recursing into messages); applying
 * it twice restores m. False when f holds nothing that can change. */
static bool perturb(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	char *slot = member(m, f->offset);

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (*(size_t *)member(m, f->quantifier_offset) == 0)
			return false;
		slot = *(char **)slot;
	} else if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
	           *(uint32_t *)member(m, f->quantifier_offset) != f->id) {
		return false;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		(*(char **)slot)[0] ^= 1;
		return true;
	case PROTOBUF_C_TYPE_BYTES:
		((ProtobufCBinaryData *)(void *)slot)->data[0] ^= 1;
		return true;
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub = *(ProtobufCMessage **)slot;

		for (unsigned i = 0; sub && i < sub->descriptor->n_fields; i++)
			if (perturb(sub, &sub->descriptor->fields[i]))
				return true;
		return false;
	}
	default:
		slot[0] ^= 1;
		return true;
	}
}

/* Length of the first top-level field of p (tag, and value per wire type), 0 if malformed.
 * An independent reading of the wire format, used to find where a cut is a field boundary. */
static size_t varint_len(const uint8_t *p, size_t len, uint64_t *v)
{
	*v = 0;
	for (size_t i = 0; i < len && i < 10; i++) {
		*v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80))
			return i + 1;
	}
	return 0;
}

static size_t field_len(const uint8_t *p, size_t len)
{
	uint64_t key, n;
	size_t k = varint_len(p, len, &key), v;

	if (!k)
		return 0;
	switch (key & 7) {
	case 0:
		v = varint_len(p + k, len - k, &n);
		return v ? k + v : 0;
	case 1:
		return k + 8;
	case 5:
		return k + 4;
	case 2:
		v = varint_len(p + k, len - k, &n);
		return v ? k + v + (size_t)n : 0;
	}
	return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

/* Packs m with zt_pb_pack and frees nothing; the caller frees *buf. */
static size_t pack(const ProtobufCMessage *m, uint8_t **buf)
{
	size_t len;

	ck_assert_int_eq(zt_pb_pack(m, buf, &len), 0);
	ck_assert_ptr_nonnull(*buf);
	return len;
}

/* ---- spec conformance ----------------------------------------------------------------- */

START_TEST(fields_have_spec_numbers_types_and_labels)
{
	for (size_t i = 0; i < sizeof(spec_fields) / sizeof(spec_fields[0]); i++) {
		const ProtobufCFieldDescriptor *f;
		int kind;

		f = protobuf_c_message_descriptor_get_field_by_name(spec_fields[i].d,
		                                                    spec_fields[i].field);
		ck_assert_msg(f, "%s.%s missing", spec_fields[i].d->name, spec_fields[i].field);
		ck_assert_msg(f->id == spec_fields[i].id, "%s.%s = %u, spec says %u",
		              spec_fields[i].d->name, f->name, f->id, spec_fields[i].id);
		ck_assert_msg(f->type == spec_fields[i].type, "%s.%s type", spec_fields[i].d->name,
		              f->name);
		kind = f->label == PROTOBUF_C_LABEL_REPEATED      ? REP
		       : (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? ONEOF
		                                                  : ONE;
		ck_assert_msg(kind == spec_fields[i].kind, "%s.%s label", spec_fields[i].d->name,
		              f->name);
		if (spec_fields[i].sub)
			ck_assert_msg(f->descriptor == spec_fields[i].sub, "%s.%s subtype",
			              spec_fields[i].d->name, f->name);
	}
}
END_TEST

START_TEST(messages_declare_no_field_beyond_the_spec_tables)
{
	/* Every declared field is in the table above, so none escapes the number check. */
	for (size_t i = 0; i < N_MSGS; i++) {
		const ProtobufCMessageDescriptor *d = all_msgs[i].d;

		for (unsigned j = 0; j < d->n_fields; j++) {
			bool found = false;

			for (size_t k = 0; k < sizeof(spec_fields) / sizeof(spec_fields[0]); k++)
				if (spec_fields[k].d == d &&
				    strcmp(spec_fields[k].field, d->fields[j].name) == 0)
					found = true;
			ck_assert_msg(found, "%s.%s not in the spec table", d->name,
			              d->fields[j].name);
		}
	}
	/* Reserved numbers stay unused. */
	ck_assert_ptr_null(protobuf_c_message_descriptor_get_field(&WL(workload), 15));
	ck_assert_ptr_null(protobuf_c_message_descriptor_get_field(&WL(gateway_address), 4));
	ck_assert_ptr_null(protobuf_c_message_descriptor_get_field(&ZDS(workload_info), 4));
	ck_assert_ptr_null(protobuf_c_message_descriptor_get_field(&SEC(clause), 1));
	ck_assert_ptr_null(protobuf_c_message_descriptor_get_field(&ZDS(workload_request), 4));
}
END_TEST

START_TEST(enums_have_spec_values)
{
	for (size_t i = 0; i < sizeof(spec_enums) / sizeof(spec_enums[0]); i++) {
		const ProtobufCEnumValue *v;

		v = protobuf_c_enum_descriptor_get_value_by_name(spec_enums[i].d,
		                                                 spec_enums[i].name);
		ck_assert_msg(v, "%s.%s missing", spec_enums[i].d->name, spec_enums[i].name);
		ck_assert_msg(v->value == spec_enums[i].value, "%s.%s = %d", spec_enums[i].d->name,
		              spec_enums[i].name, v->value);
	}
}
END_TEST

START_TEST(message_full_names_match_the_real_packages)
{
	for (size_t i = 0; i < N_MSGS; i++)
		ck_assert_str_eq(all_msgs[i].d->name, all_msgs[i].name);
}
END_TEST

START_TEST(message_list_covers_every_reachable_type)
{
	/* Every message a listed message refers to is itself listed (and so round-tripped). */
	for (size_t i = 0; i < N_MSGS; i++) {
		const ProtobufCMessageDescriptor *d = all_msgs[i].d;

		for (unsigned j = 0; j < d->n_fields; j++) {
			const ProtobufCMessageDescriptor *sub = d->fields[j].descriptor;

			if (d->fields[j].type == PROTOBUF_C_TYPE_MESSAGE)
				ck_assert_msg(listed(sub), "%s not listed", sub->name);
		}
	}
}
END_TEST

START_TEST(golden_bytes_decode_into_spec_fields)
{
	/* DelWorkload.uid is field 2 (spec §5): tag 0x12. */
	static const uint8_t del[] = {0x12, 0x03, 'p', 'o', 'd'};
	/* WorkloadRequest.keep is field 5 holding KeepWorkload{uid=1}. */
	static const uint8_t keep[] = {0x2a, 0x03, 0x0a, 0x01, 'k'};
	/* Workload.uid = 20 (tag 0xa2 0x01), capacity = 27 (0xda 0x01) {value = 7}. */
	static const uint8_t wl[] = {0xa2, 0x01, 0x01, 'u', 0xda, 0x01, 0x02, 0x08, 0x07};
	ProtobufCMessage *m;
	Istio__Workload__Zds__DelWorkload *d;
	Istio__Workload__Zds__WorkloadRequest *r;
	Istio__Workload__Workload *w;

	ck_assert_int_eq(zt_pb_unpack(&ZDS(del_workload), del, sizeof(del), MAX, &m), 0);
	d = (void *)m;
	ck_assert_str_eq(d->uid, "pod");
	zt_pb_free(m);

	ck_assert_int_eq(zt_pb_unpack(&ZDS(workload_request), keep, sizeof(keep), MAX, &m), 0);
	r = (void *)m;
	ck_assert_int_eq(r->payload_case, ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_KEEP);
	ck_assert_str_eq(r->keep->uid, "k");
	zt_pb_free(m);

	ck_assert_int_eq(zt_pb_unpack(&WL(workload), wl, sizeof(wl), MAX, &m), 0);
	w = (void *)m;
	ck_assert_str_eq(w->uid, "u");
	ck_assert_ptr_nonnull(w->capacity);
	ck_assert_uint_eq(w->capacity->value, 7);
	zt_pb_free(m);
}
END_TEST

START_TEST(network_address_length_keeps_presence_of_zero)
{
	/* length is proto3 `optional` upstream: 0 present (a /0 prefix) differs from absent. */
	Istio__Workload__NetworkAddress a = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__NetworkAddress *u;
	ProtobufCMessage *m;
	uint8_t *buf;
	size_t len;

	len = pack(&a.base, &buf);
	ck_assert_uint_eq(len, 0);
	free(buf);

	a.prefix_case = ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH;
	a.length = 0;
	len = pack(&a.base, &buf);
	ck_assert_uint_eq(len, 2);
	ck_assert_uint_eq(buf[0], 0x18);
	ck_assert_int_eq(zt_pb_unpack(&WL(network_address), buf, len, MAX, &m), 0);
	u = (void *)m;
	ck_assert_int_eq(u->prefix_case, ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH);
	ck_assert_uint_eq(u->length, 0);
	zt_pb_free(m);
	free(buf);
}
END_TEST

START_TEST(grpc_method_paths_match_istio)
{
	char buf[128];
	int n;

	n = zt_pb_method_path(
	        &envoy__service__discovery__v3__aggregated_discovery_service__descriptor,
	        "DeltaAggregatedResources", buf, sizeof(buf));
	ck_assert_str_eq(buf, "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
	                      "DeltaAggregatedResources");
	ck_assert_int_eq(n, (int)strlen(buf));
	ck_assert_int_gt(zt_pb_method_path(&istio__v1__auth__istio_certificate_service__descriptor,
	                                   "CreateCertificate", buf, sizeof(buf)),
	                 0);
	ck_assert_str_eq(buf, "/istio.v1.auth.IstioCertificateService/CreateCertificate");
}
END_TEST

START_TEST(method_path_rejects_unknown_method_and_short_buffer)
{
	char buf[16];

	ck_assert_int_eq(
	        zt_pb_method_path(
	                &envoy__service__discovery__v3__aggregated_discovery_service__descriptor,
	                "StreamAggregatedResources", buf, sizeof(buf)),
	        ZT_E_NOTFOUND);
	ck_assert_int_eq(zt_pb_method_path(&istio__v1__auth__istio_certificate_service__descriptor,
	                                   "CreateCertificate", buf, sizeof(buf)),
	                 ZT_E_TOOBIG);
}
END_TEST

/* ---- round trips ---------------------------------------------------------------------- */

START_TEST(every_message_round_trips_with_all_fields_set)
{
	for (size_t i = 0; i < N_MSGS; i++) {
		const ProtobufCMessageDescriptor *d = all_msgs[i].d;

		for (unsigned v = 0; v < VARIANTS; v++) {
			ProtobufCMessage *m = fill(d, v), *u;
			uint8_t *buf, *again;
			size_t len, len2;
			const char *why;

			why = unset_field(m);
			ck_assert_msg(!why, "%s.%s not set by the filler", d->name, why);
			len = pack(m, &buf);
			ck_assert_msg(len > 0 || d->n_fields == 0, "%s packed empty", d->name);
			ck_assert_int_eq(zt_pb_unpack(d, buf, len, len, &u), 0);
			why = msg_diff(m, u);
			ck_assert_msg(!why, "%s variant %u: %s differs", d->name, v, why);
			/* Re-encoding the decoded message gives the same bytes. */
			len2 = pack(u, &again);
			ck_assert_uint_eq(len, len2);
			ck_assert(memcmp(buf, again, len) == 0);
			free(again);
			free(buf);
			zt_pb_free(u);
			zt_pb_free(m);
		}
	}
}
END_TEST

/* The same decodes into scratch memory, one after another with a reset between, and a
 * message larger than the block kept: equal to the filled messages, ASan-clean. */
START_TEST(every_message_round_trips_through_scratch_memory)
{
	struct zt_pb_scratch sc = {0};
	uint8_t big[300 * 1024];

	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < N_MSGS; i++) {
			const ProtobufCMessageDescriptor *d = all_msgs[i].d;
			for (unsigned v = 0; v < VARIANTS; v++) {
				ProtobufCMessage *m = fill(d, v), *u, *u2;
				uint8_t *buf;
				size_t len = pack(m, &buf);
				const char *why;

				ck_assert_int_eq(zt_pb_unpack_scratch(d, buf, len, len, &sc, &u), 0);
				ck_assert_int_eq(zt_pb_unpack_scratch(d, buf, len, len, &sc, &u2), 0);
				ck_assert_ptr_ne(u, u2);
				why = msg_diff(m, u);
				ck_assert_msg(!why, "%s variant %u: %s differs", d->name, v, why);
				why = msg_diff(m, u2);
				ck_assert_msg(!why, "%s variant %u: %s differs", d->name, v, why);
				zt_pb_scratch_reset(&sc);
				free(buf);
				zt_pb_free(m);
			}
		}
	/* A bytes field of 300 KiB: a block above the kept size, dropped on reset. */
	{
		Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
		ProtobufCMessage *u;
		uint8_t *buf;
		size_t len;

		memset(big, 'x', sizeof(big));
		any.value.data = big;
		any.value.len = sizeof(big);
		ck_assert_int_eq(zt_pb_pack(&any.base, &buf, &len), 0);
		ck_assert_int_eq(zt_pb_unpack_scratch(&google__protobuf__any__descriptor, buf, len,
		                                      len, &sc, &u),
		                 0);
		ck_assert_uint_eq(((Google__Protobuf__Any *)u)->value.len, sizeof(big));
		ck_assert(memcmp(((Google__Protobuf__Any *)u)->value.data, big, sizeof(big)) == 0);
		zt_pb_scratch_reset(&sc);
		ck_assert_ptr_null(sc.head);
		free(buf);
		/* A malformed input leaves nothing behind either. */
		ck_assert_int_eq(zt_pb_unpack_scratch(&google__protobuf__any__descriptor,
		                                      (const uint8_t *)"\x0a\x05" "ab", 4, 4, &sc, &u),
		                 ZT_E_PARSE);
		ck_assert_ptr_null(u);
	}
	zt_pb_scratch_clear(&sc);
}
END_TEST

START_TEST(round_trip_fills_every_oneof_member)
{
	/* The variants set each member of every oneof at least once at the top level. */
	for (size_t i = 0; i < N_MSGS; i++) {
		const ProtobufCMessageDescriptor *d = all_msgs[i].d;

		for (unsigned j = 0; j < d->n_fields; j++) {
			const ProtobufCFieldDescriptor *f = &d->fields[j];
			bool seen = false;

			if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
				continue;
			for (unsigned v = 0; v < VARIANTS; v++) {
				ProtobufCMessage *m = fill(d, v);

				seen |= *(uint32_t *)member(m, f->quantifier_offset) == f->id;
				zt_pb_free(m);
			}
			ck_assert_msg(seen, "%s.%s never set", d->name, f->name);
		}
	}
}
END_TEST

START_TEST(round_trip_comparison_detects_a_change_in_any_field)
{
	/* Guards the comparator the round trip relies on: flipping a bit of any field of the
	 * decoded message is reported, and flipping it back makes the messages equal again. */
	for (size_t i = 0; i < N_MSGS; i++) {
		const ProtobufCMessageDescriptor *d = all_msgs[i].d;

		for (unsigned v = 0; v < VARIANTS; v++) {
			ProtobufCMessage *m = fill(d, v), *u;
			uint8_t *buf;
			size_t len = pack(m, &buf);

			ck_assert_int_eq(zt_pb_unpack(d, buf, len, MAX, &u), 0);
			for (unsigned j = 0; j < d->n_fields; j++) {
				if (!perturb(u, &d->fields[j]))
					continue;
				ck_assert_msg(msg_diff(m, u), "%s.%s change not seen", d->name,
				              d->fields[j].name);
				perturb(u, &d->fields[j]);
				ck_assert_ptr_null(msg_diff(m, u));
			}
			free(buf);
			zt_pb_free(u);
			zt_pb_free(m);
		}
	}
}
END_TEST

static uint8_t wl_ip4[] = {10, 0, 0, 7};
static uint8_t wl_ip6[16] = {0xfd, 0, [15] = 7};

START_TEST(workload_round_trips_field_by_field)
{
	Istio__Workload__NamespacedHostname wp_host = ISTIO__WORKLOAD__NAMESPACED_HOSTNAME__INIT;
	Istio__Workload__NetworkAddress gw_addr = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__GatewayAddress wp = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__GatewayAddress gw = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__ApplicationTunnel tun = ISTIO__WORKLOAD__APPLICATION_TUNNEL__INIT;
	Istio__Workload__Port port = ISTIO__WORKLOAD__PORT__INIT, *ports[] = {&port};
	Istio__Workload__PortList pl = ISTIO__WORKLOAD__PORT_LIST__INIT;
	Istio__Workload__Workload__ServicesEntry se =
	        ISTIO__WORKLOAD__WORKLOAD__SERVICES_ENTRY__INIT;
	Istio__Workload__Workload__ServicesEntry *ses[] = {&se};
	Istio__Workload__Locality loc = ISTIO__WORKLOAD__LOCALITY__INIT;
	Istio__Workload__Extension ext = ISTIO__WORKLOAD__EXTENSION__INIT, *exts[] = {&ext};
	Google__Protobuf__Any cfg = GOOGLE__PROTOBUF__ANY__INIT;
	Google__Protobuf__UInt32Value cap = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
	Istio__Workload__Workload w = ISTIO__WORKLOAD__WORKLOAD__INIT, *u;
	ProtobufCBinaryData addrs[] = {{4, wl_ip4}, {16, wl_ip6}};
	char *policies[] = {"ns/allow", "ns/deny"};
	ProtobufCMessage *m;
	uint8_t *buf;
	size_t len;

	wp_host.namespace_ = "istio-system";
	wp_host.hostname = "waypoint.istio-system.svc.cluster.local";
	wp.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME;
	wp.hostname = &wp_host;
	wp.hbone_mtls_port = 15008;
	gw_addr.network = "remote";
	gw_addr.address = (ProtobufCBinaryData){4, wl_ip4};
	gw.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS;
	gw.address = &gw_addr;
	gw.hbone_mtls_port = 15009;
	tun.protocol = ISTIO__WORKLOAD__APPLICATION_TUNNEL__PROTOCOL__PROXY;
	tun.port = 15088;
	port.service_port = 80;
	port.target_port = 8080;
	port.app_protocol = ISTIO__WORKLOAD__APP_PROTOCOL__HTTP2;
	pl.n_ports = 1;
	pl.ports = ports;
	se.key = "default/echo.default.svc.cluster.local";
	se.value = &pl;
	loc.region = "r1";
	loc.zone = "z1";
	loc.subzone = "s1";
	cfg.type_url = "type.googleapis.com/google.protobuf.Empty";
	ext.name = "ext";
	ext.config = &cfg;
	cap.value = 5;

	w.uid = "Kubernetes//Pod/default/echo-1";
	w.name = "echo-1";
	w.namespace_ = "default";
	w.n_addresses = 2;
	w.addresses = addrs;
	w.hostname = "echo-1.example";
	w.network = "net1";
	w.tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE;
	w.trust_domain = "td.local";
	w.service_account = "echo";
	w.waypoint = &wp;
	w.network_gateway = &gw;
	w.node = "node-a";
	w.canonical_name = "echo";
	w.canonical_revision = "v1";
	w.workload_type = ISTIO__WORKLOAD__WORKLOAD_TYPE__POD;
	w.workload_name = "echo";
	w.native_tunnel = 1;
	w.application_tunnel = &tun;
	w.n_services = 1;
	w.services = ses;
	w.n_authorization_policies = 2;
	w.authorization_policies = policies;
	w.status = ISTIO__WORKLOAD__WORKLOAD_STATUS__UNHEALTHY;
	w.cluster_id = "c1";
	w.locality = &loc;
	w.network_mode = ISTIO__WORKLOAD__NETWORK_MODE__HOST_NETWORK;
	w.n_extensions = 1;
	w.extensions = exts;
	w.capacity = &cap;
	ck_assert_ptr_null(unset_field(&w.base));

	len = pack(&w.base, &buf);
	ck_assert_int_eq(zt_pb_unpack(&WL(workload), buf, len, len, &m), 0);
	u = (void *)m;
	ck_assert_str_eq(u->uid, "Kubernetes//Pod/default/echo-1");
	ck_assert_str_eq(u->name, "echo-1");
	ck_assert_str_eq(u->namespace_, "default");
	ck_assert_uint_eq(u->n_addresses, 2);
	ck_assert_uint_eq(u->addresses[0].len, 4);
	ck_assert(memcmp(u->addresses[0].data, wl_ip4, 4) == 0);
	ck_assert_uint_eq(u->addresses[1].len, 16);
	ck_assert(memcmp(u->addresses[1].data, wl_ip6, 16) == 0);
	ck_assert_str_eq(u->hostname, "echo-1.example");
	ck_assert_str_eq(u->network, "net1");
	ck_assert_int_eq(u->tunnel_protocol, ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE);
	ck_assert_str_eq(u->trust_domain, "td.local");
	ck_assert_str_eq(u->service_account, "echo");
	ck_assert_int_eq(u->waypoint->destination_case,
	                 ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME);
	ck_assert_str_eq(u->waypoint->hostname->namespace_, "istio-system");
	ck_assert_str_eq(u->waypoint->hostname->hostname,
	                 "waypoint.istio-system.svc.cluster.local");
	ck_assert_uint_eq(u->waypoint->hbone_mtls_port, 15008);
	ck_assert_int_eq(u->network_gateway->destination_case,
	                 ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS);
	ck_assert_str_eq(u->network_gateway->address->network, "remote");
	ck_assert_uint_eq(u->network_gateway->address->address.len, 4);
	ck_assert_int_eq(u->network_gateway->address->prefix_case,
	                 ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX__NOT_SET);
	ck_assert_uint_eq(u->network_gateway->hbone_mtls_port, 15009);
	ck_assert_str_eq(u->node, "node-a");
	ck_assert_str_eq(u->canonical_name, "echo");
	ck_assert_str_eq(u->canonical_revision, "v1");
	ck_assert_int_eq(u->workload_type, ISTIO__WORKLOAD__WORKLOAD_TYPE__POD);
	ck_assert_str_eq(u->workload_name, "echo");
	ck_assert(u->native_tunnel);
	ck_assert_int_eq(u->application_tunnel->protocol,
	                 ISTIO__WORKLOAD__APPLICATION_TUNNEL__PROTOCOL__PROXY);
	ck_assert_uint_eq(u->application_tunnel->port, 15088);
	ck_assert_uint_eq(u->n_services, 1);
	ck_assert_str_eq(u->services[0]->key, "default/echo.default.svc.cluster.local");
	ck_assert_uint_eq(u->services[0]->value->n_ports, 1);
	ck_assert_uint_eq(u->services[0]->value->ports[0]->service_port, 80);
	ck_assert_uint_eq(u->services[0]->value->ports[0]->target_port, 8080);
	ck_assert_int_eq(u->services[0]->value->ports[0]->app_protocol,
	                 ISTIO__WORKLOAD__APP_PROTOCOL__HTTP2);
	ck_assert_uint_eq(u->n_authorization_policies, 2);
	ck_assert_str_eq(u->authorization_policies[0], "ns/allow");
	ck_assert_str_eq(u->authorization_policies[1], "ns/deny");
	ck_assert_int_eq(u->status, ISTIO__WORKLOAD__WORKLOAD_STATUS__UNHEALTHY);
	ck_assert_str_eq(u->cluster_id, "c1");
	ck_assert_str_eq(u->locality->region, "r1");
	ck_assert_str_eq(u->locality->zone, "z1");
	ck_assert_str_eq(u->locality->subzone, "s1");
	ck_assert_int_eq(u->network_mode, ISTIO__WORKLOAD__NETWORK_MODE__HOST_NETWORK);
	ck_assert_uint_eq(u->n_extensions, 1);
	ck_assert_str_eq(u->extensions[0]->name, "ext");
	ck_assert_str_eq(u->extensions[0]->config->type_url,
	                 "type.googleapis.com/google.protobuf.Empty");
	ck_assert_uint_eq(u->capacity->value, 5);
	ck_assert_ptr_null(msg_diff(&w.base, m));
	zt_pb_free(m);
	free(buf);
}
END_TEST

START_TEST(workload_in_any_round_trips_inside_delta_discovery_response)
{
	ProtobufCMessage *wm = fill(&WL(workload), 0), *m, *am;
	Istio__Workload__Address addr = ISTIO__WORKLOAD__ADDRESS__INIT, *ua;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Envoy__Service__Discovery__V3__Resource res = ENVOY__SERVICE__DISCOVERY__V3__RESOURCE__INIT;
	Envoy__Service__Discovery__V3__Resource *resources[] = {&res};
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp =
	        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *ur;
	char *aliases[] = {"/10.0.0.7"}, *removed[] = {"gone"};
	uint8_t *buf;
	size_t len;

	addr.type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD;
	addr.workload = (void *)wm;
	ck_assert_int_eq(zt_pb_any_pack(&addr.base, &any), 0);
	ck_assert_str_eq(any.type_url, "type.googleapis.com/istio.workload.Address");
	res.name = "Kubernetes//Pod/default/echo-1";
	res.version = "7";
	res.resource = &any;
	res.n_aliases = 1;
	res.aliases = aliases;
	resp.system_version_info = "sv";
	resp.n_resources = 1;
	resp.resources = resources;
	resp.type_url = "type.googleapis.com/istio.workload.Address";
	resp.nonce = "n1";
	resp.n_removed_resources = 1;
	resp.removed_resources = removed;

	len = pack(&resp.base, &buf);
	ck_assert_int_eq(zt_pb_unpack(&XDS(delta_discovery_response), buf, len, len, &m), 0);
	ur = (void *)m;
	ck_assert_ptr_null(msg_diff(&resp.base, m));
	ck_assert_str_eq(ur->type_url, "type.googleapis.com/istio.workload.Address");
	ck_assert_str_eq(ur->nonce, "n1");
	ck_assert_uint_eq(ur->n_resources, 1);
	ck_assert_str_eq(ur->resources[0]->name, "Kubernetes//Pod/default/echo-1");
	ck_assert_str_eq(ur->resources[0]->version, "7");
	ck_assert_str_eq(ur->removed_resources[0], "gone");

	ck_assert_int_eq(zt_pb_any_unpack(ur->resources[0]->resource, &WL(address), MAX, &am), 0);
	ua = (void *)am;
	ck_assert_int_eq(ua->type_case, ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD);
	ck_assert_ptr_null(msg_diff(wm, &ua->workload->base));
	ck_assert_str_eq(ua->workload->uid, ((Istio__Workload__Workload *)(void *)wm)->uid);

	/* The resource bound applies to the Any payload too. */
	ck_assert_int_eq(zt_pb_any_unpack(ur->resources[0]->resource, &WL(address),
	                                  ur->resources[0]->resource->value.len - 1, &am),
	                 ZT_E_TOOBIG);
	ck_assert_ptr_null(am);
	zt_pb_free(&ua->base);
	zt_pb_free(m);
	free(buf);
	zt_pb_any_clear(&any);
	ck_assert_str_eq(any.type_url, "");
	ck_assert_uint_eq(any.value.len, 0);
	zt_pb_free(wm);
}
END_TEST

START_TEST(any_unpack_checks_the_type_name_after_the_last_slash)
{
	ProtobufCMessage *m = fill(&SEC(authorization), 0), *u;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	char *url;

	ck_assert_int_eq(zt_pb_any_pack(m, &any), 0);
	ck_assert_int_eq(zt_pb_any_unpack(&any, &WL(address), MAX, &u), ZT_E_PROTO);
	ck_assert_ptr_null(u);
	ck_assert_int_eq(zt_pb_any_unpack(&any, &SEC(authorization), MAX, &u), 0);
	ck_assert_ptr_null(msg_diff(m, u));
	zt_pb_free(u);

	url = any.type_url;
	any.type_url = "example.com/a/istio.security.Authorization";
	ck_assert_int_eq(zt_pb_any_unpack(&any, &SEC(authorization), MAX, &u), 0);
	zt_pb_free(u);
	any.type_url = "istio.security.Authorization"; /* no '/' */
	ck_assert_int_eq(zt_pb_any_unpack(&any, &SEC(authorization), MAX, &u), ZT_E_PROTO);
	any.type_url = "type.googleapis.com/istio.security.AuthorizationX";
	ck_assert_int_eq(zt_pb_any_unpack(&any, &SEC(authorization), MAX, &u), ZT_E_PROTO);
	any.type_url = url;
	zt_pb_any_clear(&any);
	zt_pb_any_clear(NULL);
	zt_pb_free(m);
}
END_TEST

/* ---- hostile input -------------------------------------------------------------------- */

START_TEST(unknown_fields_of_every_wire_type_are_skipped)
{
	/* Fields 1000..1003 exist in no message: varint, fixed64, length-delimited, fixed32. */
	static const uint8_t unknown[] = {
	        0xc0, 0x3e, 0xac, 0x02,                       /* 1000: varint 300 */
	        0xc9, 0x3e, 1,    2,    3,   4,   5, 6, 7, 8, /* 1001: fixed64 */
	        0xd2, 0x3e, 0x03, 'a',  'b', 'c',             /* 1002: bytes "abc" */
	        0xdd, 0x3e, 9,    9,    9,   9,               /* 1003: fixed32 */
	};

	for (size_t i = 0; i < N_MSGS; i++) {
		const ProtobufCMessageDescriptor *d = all_msgs[i].d;
		ProtobufCMessage *m = fill(d, 0), *u;
		uint8_t *buf, *big;
		size_t len = pack(m, &buf);

		for (unsigned id = 1000; id < 1004; id++)
			ck_assert_ptr_null(protobuf_c_message_descriptor_get_field(d, id));
		/* unknown fields before and after the known ones */
		big = xcalloc(1, len + 2 * sizeof(unknown));
		memcpy(big, unknown, sizeof(unknown));
		memcpy(big + sizeof(unknown), buf, len);
		memcpy(big + sizeof(unknown) + len, unknown, sizeof(unknown));
		ck_assert_int_eq(zt_pb_unpack(d, big, len + 2 * sizeof(unknown), MAX, &u), 0);
		ck_assert_msg(!msg_diff(m, u), "%s: %s", d->name, msg_diff(m, u));
		zt_pb_free(u);
		free(big);
		free(buf);
		zt_pb_free(m);
	}
}
END_TEST

START_TEST(unknown_fields_inside_nested_messages_are_skipped)
{
	/* Address{workload(1){uid(20)="w", waypoint(8){unknown 1000 = 1, hbone_mtls_port(3)=15008,
	 * unknown 1002 = "x"}}} */
	static const uint8_t b[] = {0x0a, 0x13, 0xa2, 0x01, 0x01, 'w',  0x42,
	                            0x0a, 0xc0, 0x3e, 0x01, 0x18, 0xa0, 0x75,
	                            0xd2, 0x3e, 0x01, 'x',  0xc0, 0x3e, 0x02};
	Istio__Workload__Address *a;
	ProtobufCMessage *m;

	ck_assert_int_eq(zt_pb_unpack(&WL(address), b, sizeof(b), MAX, &m), 0);
	a = (void *)m;
	ck_assert_int_eq(a->type_case, ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD);
	ck_assert_str_eq(a->workload->uid, "w");
	ck_assert_ptr_nonnull(a->workload->waypoint);
	ck_assert_uint_eq(a->workload->waypoint->hbone_mtls_port, 15008);
	zt_pb_free(m);
}
END_TEST

START_TEST(every_truncation_is_rejected_unless_at_a_field_boundary)
{
	for (size_t i = 0; i < N_MSGS; i++) {
		const ProtobufCMessageDescriptor *d = all_msgs[i].d;
		ProtobufCMessage *m = fill(d, 0), *u;
		uint8_t *buf;
		size_t len = pack(m, &buf), next = 0;

		for (size_t cut = 0; cut < len; cut++) {
			/* an exact-size copy, so a read past the cut is caught by ASan */
			uint8_t *p = xcalloc(1, cut);
			int r;

			memcpy(p, buf, cut);
			r = zt_pb_unpack(d, p, cut, MAX, &u);
			if (cut == next) {
				ck_assert_msg(r == 0, "%s cut %zu at boundary: %d", d->name, cut,
				              r);
				ck_assert_msg(msg_diff(m, u), "%s cut %zu lost nothing", d->name,
				              cut);
				next += field_len(buf + next, len - next);
				zt_pb_free(u);
			} else {
				ck_assert_msg(r == ZT_E_PARSE, "%s cut %zu of %zu: %d", d->name,
				              cut, len, r);
				ck_assert_ptr_null(u);
			}
			free(p);
		}
		free(buf);
		zt_pb_free(m);
	}
}
END_TEST

static const struct {
	const char *what;
	uint8_t len;
	uint8_t b[16];
} malformed[] = {
        {"varint over 10 bytes",
         12,
         {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
        {"length past the end", 3, {0x0a, 0x05, 'a'}},
        {"length near 2^64",
         11,
         {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
        {"field number 0", 2, {0x00, 0x01}},
        {"start group", 2, {0xc3, 0x3e}},
        {"end group", 2, {0xc4, 0x3e}},
        {"wire type 6", 2, {0x0e, 0x00}},
        {"wire type 7", 2, {0x0f, 0x00}},
        {"string field as varint", 3, {0xa2 - 2, 0x01, 0x05}},
        {"bad bytes inside waypoint", 5, {0x42, 0x03, 0x18, 0x80, 0x80}},
        {"fixed64 cut short", 5, {0xc9, 0x3e, 1, 2, 3}},
};

START_TEST(malformed_encodings_are_rejected)
{
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		ProtobufCMessage *m = (void *)1;
		uint8_t *p = xcalloc(1, malformed[i].len);

		memcpy(p, malformed[i].b, malformed[i].len);
		ck_assert_msg(zt_pb_unpack(&WL(workload), p, malformed[i].len, MAX, &m) ==
		                      ZT_E_PARSE,
		              "%s accepted", malformed[i].what);
		ck_assert_ptr_null(m);
		free(p);
	}
}
END_TEST

/* Field numbers past 2^29 - 1 cannot be written by a protobuf encoder. Where the bytes are
 * walked before decoding (a type that can contain itself, like Value) they are refused; a
 * type whose schema bounds its nesting is left to protobuf-c, which keeps them as unknown
 * fields: nothing of them reaches the decoded message. */
START_TEST(field_numbers_past_the_protobuf_range)
{
	static const uint8_t b[] = {0x80, 0x80, 0x80, 0x80, 0x10, 0x00}; /* 2^29, varint 0 */
	ProtobufCMessage *m = (void *)1;

	ck_assert_int_eq(zt_pb_unpack(&GPB(value), b, sizeof(b), MAX, &m), ZT_E_PARSE);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(zt_pb_unpack(&WL(workload), b, sizeof(b), MAX, &m), 0);
	ck_assert_uint_eq(m->n_unknown_fields, 1);
	ck_assert_uint_eq(m->unknown_fields[0].tag, 1u << 29);
	ck_assert_str_eq(((Istio__Workload__Workload *)(void *)m)->uid, "");
	zt_pb_free(m);
}
END_TEST

static uint32_t rng_state = 0x9e3779b9;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

START_TEST(random_and_mutated_input_never_crashes)
{
	for (size_t i = 0; i < N_MSGS; i++) {
		const ProtobufCMessageDescriptor *d = all_msgs[i].d;
		ProtobufCMessage *m = fill(d, i), *u;
		uint8_t *good;
		size_t good_len = pack(m, &good);

		for (int iter = 0; iter < 300; iter++) {
			size_t len = rnd() % 64;
			uint8_t *p;
			int r;

			/* half pure noise, half a valid encoding with a few bytes changed */
			if (iter % 2 && good_len > 0) {
				len = good_len;
				p = xcalloc(1, len);
				memcpy(p, good, len);
				for (int k = 0; k < 3; k++)
					p[rnd() % len] = (uint8_t)rnd();
			} else {
				p = xcalloc(1, len);
				for (size_t k = 0; k < len; k++)
					p[k] = (uint8_t)rnd();
			}
			r = zt_pb_unpack(d, p, len, MAX, &u);
			ck_assert_msg(r == 0 || r == ZT_E_PARSE, "%s: %d", d->name, r);
			ck_assert(r == 0 || u == NULL);
			zt_pb_free(u);
			free(p);
		}
		free(good);
		zt_pb_free(m);
	}
}
END_TEST

/* Value nested through list_value `levels` times around a string_value, built back to front. */
static uint8_t *nested_value(unsigned levels, size_t *len)
{
	size_t cap = 16 + (size_t)levels * 24, start = cap - 3, n;
	uint8_t *b = xcalloc(1, cap), hdr[12];

	memcpy(b + start, "\x1a\x01x", 3); /* Value.string_value = "x" */
	for (unsigned i = 0; i < 2 * levels; i++) {
		/* even steps wrap in ListValue.values (1), odd steps in Value.list_value (6) */
		hdr[0] = i % 2 ? 0x32 : 0x0a;
		n = 1 + put_varint(hdr + 1, cap - start);
		start -= n;
		memcpy(b + start, hdr, n);
	}
	*len = cap - start;
	memmove(b, b + start, *len);
	return b;
}

START_TEST(nesting_beyond_max_depth_is_rejected_without_recursing)
{
	ProtobufCMessage *m;
	uint8_t *b;
	size_t len;

	/* 50 Value/ListValue pairs put the innermost Value at depth 100: accepted. */
	b = nested_value(ZT_PB_MAX_DEPTH / 2, &len);
	ck_assert_int_eq(zt_pb_unpack(&GPB(value), b, len, len, &m), 0);
	ck_assert_int_eq(((Google__Protobuf__Value *)(void *)m)->kind_case,
	                 GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
	zt_pb_free(m);
	free(b);

	b = nested_value(ZT_PB_MAX_DEPTH / 2 + 1, &len);
	ck_assert_int_eq(zt_pb_unpack(&GPB(value), b, len, len, &m), ZT_E_PARSE);
	ck_assert_ptr_null(m);
	free(b);

	/* deep enough to overflow the stack if anything recursed per level */
	b = nested_value(500000, &len);
	ck_assert_int_eq(zt_pb_unpack(&GPB(value), b, len, len, &m), ZT_E_PARSE);
	free(b);
}
END_TEST

START_TEST(input_longer_than_max_len_is_too_big)
{
	ProtobufCMessage *m = fill(&ZDS(workload_request), 0), *u = (void *)1;
	uint8_t *buf;
	size_t len = pack(m, &buf);

	ck_assert_int_eq(zt_pb_unpack(&ZDS(workload_request), buf, len, len - 1, &u), ZT_E_TOOBIG);
	ck_assert_ptr_null(u);
	ck_assert_int_eq(zt_pb_unpack(&ZDS(workload_request), buf, len, len, &u), 0);
	zt_pb_free(u);
	free(buf);
	zt_pb_free(m);
}
END_TEST

START_TEST(empty_input_decodes_to_a_default_message)
{
	Istio__Workload__Zds__Ack *a;
	ProtobufCMessage *m;

	ck_assert_int_eq(zt_pb_unpack(&ZDS(ack), NULL, 0, 0, &m), 0);
	a = (void *)m;
	ck_assert_str_eq(a->error, "");
	zt_pb_free(m);
	ck_assert_int_eq(zt_pb_unpack(&ZDS(ack), NULL, 1, 8, &m), ZT_E_PARSE);
	zt_pb_free(NULL);
}
END_TEST

START_TEST(pack_returns_a_buffer_even_when_empty_and_rejects_invalid_messages)
{
	Istio__Workload__Zds__SnapshotSent s = ISTIO__WORKLOAD__ZDS__SNAPSHOT_SENT__INIT;
	Istio__Workload__Zds__Ack ack = ISTIO__WORKLOAD__ZDS__ACK__INIT;
	Istio__V1__Auth__IstioCertificateResponse r =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_RESPONSE__INIT;
	char *chain[] = {"leaf", NULL};
	uint8_t *buf;
	size_t len = 99;

	ck_assert_int_eq(zt_pb_pack(&s.base, &buf, &len), 0);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(len, 0);
	free(buf);

	ack.error = "bad netns";
	ck_assert_int_eq(zt_pb_pack(&ack.base, &buf, &len), 0);
	ck_assert_uint_eq(len, 11);
	ck_assert(memcmp(buf,
	                 "\x0a\x09"
	                 "bad netns",
	                 11) == 0);
	free(buf);

	r.n_cert_chain = 2;
	r.cert_chain = chain;
	ck_assert_int_eq(zt_pb_pack(&r.base, &buf, &len), -EINVAL);
	ck_assert_ptr_null(buf);
	ck_assert_uint_eq(len, 0);
}
END_TEST

Suite *proto_suite(void);
Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *spec = tcase_create("spec");
	TCase *rt = tcase_create("round_trip");
	TCase *hostile = tcase_create("hostile");

	tcase_add_test(spec, fields_have_spec_numbers_types_and_labels);
	tcase_add_test(spec, messages_declare_no_field_beyond_the_spec_tables);
	tcase_add_test(spec, enums_have_spec_values);
	tcase_add_test(spec, message_full_names_match_the_real_packages);
	tcase_add_test(spec, message_list_covers_every_reachable_type);
	tcase_add_test(spec, golden_bytes_decode_into_spec_fields);
	tcase_add_test(spec, network_address_length_keeps_presence_of_zero);
	tcase_add_test(spec, grpc_method_paths_match_istio);
	tcase_add_test(spec, method_path_rejects_unknown_method_and_short_buffer);
	suite_add_tcase(s, spec);

	tcase_add_test(rt, every_message_round_trips_with_all_fields_set);
	tcase_add_test(rt, every_message_round_trips_through_scratch_memory);
	tcase_add_test(rt, round_trip_fills_every_oneof_member);
	tcase_add_test(rt, round_trip_comparison_detects_a_change_in_any_field);
	tcase_add_test(rt, workload_round_trips_field_by_field);
	tcase_add_test(rt, workload_in_any_round_trips_inside_delta_discovery_response);
	tcase_add_test(rt, any_unpack_checks_the_type_name_after_the_last_slash);
	tcase_add_test(rt, pack_returns_a_buffer_even_when_empty_and_rejects_invalid_messages);
	suite_add_tcase(s, rt);

	tcase_add_test(hostile, unknown_fields_of_every_wire_type_are_skipped);
	tcase_add_test(hostile, unknown_fields_inside_nested_messages_are_skipped);
	tcase_add_test(hostile, every_truncation_is_rejected_unless_at_a_field_boundary);
	tcase_add_test(hostile, malformed_encodings_are_rejected);
	tcase_add_test(hostile, random_and_mutated_input_never_crashes);
	tcase_add_test(hostile, nesting_beyond_max_depth_is_rejected_without_recursing);
	tcase_add_test(hostile, field_numbers_past_the_protobuf_range);
	tcase_add_test(hostile, input_longer_than_max_len_is_too_big);
	tcase_add_test(hostile, empty_input_decodes_to_a_default_message);
	suite_add_tcase(s, hostile);
	return s;
}
