/* Outbound routing decisions and the inbound port/waypoint lookups. The mesh is
 * tests/data/route/mesh.yaml (or a small inline document), turned into protobuf resources and
 * applied through the store's xDS entry points by the local-config loader. Randomness comes
 * from a seeded generator, so every run draws the same numbers. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop_fixture.h"
#include "proxy/route.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/yaml.h"
#include "state/local.h"
#include "state/store.h"

#define MESH      "tests/data/route/mesh.yaml"
#define CLIENT    "Kubernetes//Pod/default/client"
#define WAYPOINT  "Kubernetes//Pod/default/waypoint"
#define POD(name) "Kubernetes//Pod/default/" name
#define SVC(name) "default/" name ".default.svc.cluster.local"
#define ID(sa)    "spiffe://cluster.local/ns/default/sa/" sa

static char err[512];

/* ---- fixtures ----------------------------------------------------------------------------- */

/* splitmix64: a seeded stream of well-mixed values. */
static uint32_t rng_cb(void *arg)
{
	uint64_t *s = arg, z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static struct zt_store *mesh(void)
{
	struct zt_store *s = zt_store_new();

	ck_assert_msg(zt_local_xds_load(s, MESH, err, sizeof(err)) == 0, "%s", err);
	return s;
}

static void load_text(struct zt_store *s, const char *yaml)
{
	struct zt_yaml_docs docs = {0};
	struct zt_local_config cfg = {0};

	ck_assert_msg(zt_yaml_parse("inline", yaml, strlen(yaml), &docs, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_msg(zt_local_xds_parse(docs.docs[0], "inline", &cfg, err, sizeof(err)) == 0, "%s",
	              err);
	ck_assert_msg(zt_local_xds_apply(s, &cfg, err, sizeof(err)) == 0, "%s", err);
	zt_local_config_clear(&cfg);
	zt_yaml_docs_clear(&docs);
}

static struct zt_store *store_text(const char *yaml)
{
	struct zt_store *s = zt_store_new();

	load_text(s, yaml);
	return s;
}

static struct zt_sockaddr sa(const char *text)
{
	struct zt_sockaddr v;

	ck_assert_msg(zt_addr_parse(&v, text, strlen(text), 0) == 0, "bad address %s", text);
	return v;
}

static struct zt_ip ip(const char *text)
{
	struct zt_ip v;

	ck_assert_int_eq(zt_ip_parse(&v, text, strlen(text)), 0);
	return v;
}

/* Routes src_uid -> dst with the generator state *seed (NULL: arc4random). */
static int route_seeded(const struct zt_store *s, const char *src_uid, const char *dst,
                        uint64_t *seed, struct zt_route *out)
{
	struct zt_workload *src = zt_store_workload_by_uid(s, src_uid);
	struct zt_route_in in = {
	        .source = src, .dst = sa(dst), .rand_cb = seed ? rng_cb : NULL, .rand_arg = seed};
	int rc;

	ck_assert_msg(src != NULL, "no workload %s", src_uid);
	rc = zt_route_outbound(s, &in, out);
	zt_workload_unref(src);
	return rc;
}

static void route(const struct zt_store *s, const char *src_uid, const char *dst,
                  struct zt_route *out)
{
	static uint64_t seed = 42;

	ck_assert_int_eq(route_seeded(s, src_uid, dst, &seed, out), 0);
}

static const char *addr_text(const struct zt_sockaddr *a, char *buf)
{
	if (!a->ip.family)
		return "";
	ck_assert_int_gt(zt_addr_format(a, buf, ZT_ADDR_STRLEN), 0);
	return buf;
}

/* ---- the decision table ------------------------------------------------------------------- */

/* One expected decision. Every field is checked: NULL / "" / false mean "must be empty". */
struct row {
	const char *name;
	const char *src; /* uid; NULL = the default client */
	const char *dst;
	enum zt_route_kind kind;
	const char *next_hop;
	const char *authority;
	const char *dst_uid, *final_uid, *svc_key;
	bool via_waypoint;
	const char *expected[4]; /* NULL-terminated */
	const char *reason;
};

/* clang-format off */
static const struct row rows[] = {
	{"vip_to_endpoint_hbone_with_service_target_port", NULL, "10.96.0.10:80", ZT_ROUTE_HBONE,
	 "10.0.1.1:15008", "10.0.1.1:8080", POD("echo-1"), POD("echo-1"), SVC("echo"), false,
	 {ID("echo"), ID("echo-extra")}, ""},
	{"vip_named_port_mapped_by_endpoint_port_map", NULL, "10.96.0.11:80", ZT_ROUTE_HBONE,
	 "10.0.2.1:15008", "10.0.2.1:9090", POD("named-1"), POD("named-1"), SVC("named"), false,
	 {ID("named")}, ""},
	{"vip_named_port_with_app_tunnel_keeps_service_port", NULL, "10.96.0.12:80", ZT_ROUTE_HBONE,
	 "10.0.3.1:15008", "10.0.3.1:80", POD("tun-1"), POD("tun-1"), SVC("tunnel"), false,
	 {ID("tun")}, ""},
	{"vip_port_not_in_service_is_no_healthy_upstream", NULL, "10.96.0.10:81", ZT_ROUTE_DENY,
	 NULL, NULL, NULL, NULL, SVC("echo"), false, {NULL}, ZT_ROUTE_REASON_NO_UPSTREAM},
	{"service_waypoint_by_address_gets_vip_authority", NULL, "10.96.0.20:80", ZT_ROUTE_HBONE,
	 "10.0.9.1:15008", "10.96.0.20:80", WAYPOINT, NULL, SVC("wp-addr"), true,
	 {ID("waypoint")}, ""},
	{"service_waypoint_by_hostname_expects_waypoint_service_sans", NULL, "10.96.0.21:80",
	 ZT_ROUTE_HBONE, "10.0.9.1:15008", "10.96.0.21:80", WAYPOINT, NULL, SVC("wp-host"), true,
	 {ID("waypoint"), ID("waypoint-alt")}, ""},
	{"service_waypoint_by_vip_resolves_to_an_endpoint", NULL, "10.96.0.24:80", ZT_ROUTE_HBONE,
	 "10.0.9.1:15008", "10.96.0.24:80", WAYPOINT, NULL, SVC("wp-vip"), true,
	 {ID("waypoint"), ID("waypoint-alt")}, ""},
	{"service_waypoint_hbone_port_translated_by_port_map", NULL, "10.96.0.25:80",
	 ZT_ROUTE_HBONE, "10.0.9.1:15008", "10.96.0.25:80", WAYPOINT, NULL, SVC("wp-port"), true,
	 {ID("waypoint"), ID("waypoint-alt")}, ""},
	{"unknown_service_waypoint_denies", NULL, "10.96.0.26:80", ZT_ROUTE_DENY, NULL,
	 "10.96.0.26:80", NULL, NULL, SVC("wp-unknown"), true, {NULL}, ZT_ROUTE_REASON_WAYPOINT},
	{"service_waypoint_without_endpoints_is_no_healthy_upstream", NULL, "10.96.0.29:80",
	 ZT_ROUTE_DENY, NULL, "10.96.0.29:80", NULL, NULL, SVC("wp-empty"), true, {NULL},
	 ZT_ROUTE_REASON_NO_UPSTREAM},
	{"service_waypoint_on_other_network_denies", NULL, "10.96.0.27:80", ZT_ROUTE_DENY, NULL,
	 "10.96.0.27:80", POD("waypoint-remote"), NULL, SVC("wp-remote"), true, {NULL},
	 ZT_ROUTE_REASON_MULTI_NETWORK},
	{"source_that_is_the_service_waypoint_goes_to_the_endpoint", WAYPOINT, "10.96.0.20:80",
	 ZT_ROUTE_HBONE, "10.0.4.1:15008", "10.0.4.1:8080", POD("backend"), POD("backend"),
	 SVC("wp-addr"), false, {ID("backend")}, ""},
	{"pod_ip_traffic_goes_through_the_workload_waypoint", NULL, "10.0.5.1:8080",
	 ZT_ROUTE_HBONE, "10.0.9.1:15008", "10.0.5.1:8080", WAYPOINT, POD("wwl"), NULL, true,
	 {ID("waypoint")}, ""},
	{"service_addressed_traffic_ignores_the_workload_waypoint", NULL, "10.96.0.23:80",
	 ZT_ROUTE_HBONE, "10.0.5.1:15008", "10.0.5.1:8080", POD("wwl"), POD("wwl"), SVC("wwl"),
	 false, {ID("wwl")}, ""},
	{"source_that_is_the_workload_waypoint_goes_direct", WAYPOINT, "10.0.5.1:8080",
	 ZT_ROUTE_HBONE, "10.0.5.1:15008", "10.0.5.1:8080", POD("wwl"), POD("wwl"), NULL, false,
	 {ID("wwl")}, ""},
	{"pod_ip_without_waypoint_is_direct_hbone_same_port", NULL, "10.0.1.1:7070",
	 ZT_ROUTE_HBONE, "10.0.1.1:15008", "10.0.1.1:7070", POD("echo-1"), POD("echo-1"), NULL,
	 false, {ID("echo")}, ""},
	{"tunnel_none_vip_is_plain_with_port_translation", NULL, "10.96.0.30:80", ZT_ROUTE_PLAIN,
	 "10.0.6.1:8080", "10.0.6.1:8080", POD("plain-1"), POD("plain-1"), SVC("plain"), false,
	 {NULL}, ""},
	{"tunnel_none_pod_ip_is_plain_same_port", NULL, "10.0.6.1:9000", ZT_ROUTE_PLAIN,
	 "10.0.6.1:9000", "10.0.6.1:9000", POD("plain-1"), POD("plain-1"), NULL, false, {NULL},
	 ""},
	{"unknown_destination_is_passthrough", NULL, "192.0.2.1:443", ZT_ROUTE_PASSTHROUGH,
	 "192.0.2.1:443", NULL, NULL, NULL, NULL, false, {NULL}, ZT_ROUTE_REASON_UNKNOWN},
	{"passthrough_service_goes_to_original_destination", NULL, "10.96.0.31:80",
	 ZT_ROUTE_PASSTHROUGH, "10.96.0.31:80", NULL, NULL, NULL, SVC("pt"), false, {NULL},
	 ZT_ROUTE_REASON_SVC_PASSTHROUGH},
	{"passthrough_service_with_waypoint_uses_the_waypoint", NULL, "10.96.0.28:80",
	 ZT_ROUTE_HBONE, "10.0.9.1:15008", "10.96.0.28:80", WAYPOINT, NULL, SVC("pt-wp"), true,
	 {ID("waypoint")}, ""},
	{"loopback_on_outbound_port_is_recursive", NULL, "127.0.0.1:15001", ZT_ROUTE_DENY, NULL,
	 NULL, NULL, NULL, NULL, false, {NULL}, ZT_ROUTE_REASON_SELF},
	{"loopback_on_inbound_port_is_recursive", NULL, "127.0.0.5:15006", ZT_ROUTE_DENY, NULL,
	 NULL, NULL, NULL, NULL, false, {NULL}, ZT_ROUTE_REASON_SELF},
	{"ipv6_loopback_on_hbone_port_is_recursive", NULL, "[::1]:15008", ZT_ROUTE_DENY, NULL,
	 NULL, NULL, NULL, NULL, false, {NULL}, ZT_ROUTE_REASON_SELF},
	{"loopback_on_other_port_is_passthrough", NULL, "127.0.0.1:8080", ZT_ROUTE_PASSTHROUGH,
	 "127.0.0.1:8080", NULL, NULL, NULL, NULL, false, {NULL}, ZT_ROUTE_REASON_UNKNOWN},
	{"only_unhealthy_endpoints_is_no_healthy_upstream", NULL, "10.96.0.32:80", ZT_ROUTE_DENY,
	 NULL, NULL, NULL, NULL, SVC("sick"), false, {NULL}, ZT_ROUTE_REASON_NO_UPSTREAM},
	{"allow_all_health_policy_uses_unhealthy_endpoints", NULL, "10.96.0.33:80",
	 ZT_ROUTE_HBONE, "10.0.7.1:15008", "10.0.7.1:8080", POD("sick-1"), POD("sick-1"),
	 SVC("sick-allow"), false, {ID("sick")}, ""},
	{"service_without_endpoints_is_no_healthy_upstream", NULL, "10.96.0.34:80",
	 ZT_ROUTE_DENY, NULL, NULL, NULL, NULL, SVC("empty"), false, {NULL},
	 ZT_ROUTE_REASON_NO_UPSTREAM},
	{"ipv6_vip_picks_ipv6_pod_address_and_brackets_authority", NULL, "[fd00:96::10]:80",
	 ZT_ROUTE_HBONE, "[fd00:8::1]:15008", "[fd00:8::1]:8080", POD("v6"), POD("v6"), SVC("v6"),
	 false, {ID("v6")}, ""},
	{"ipv4_vip_of_dual_stack_service_picks_ipv4_pod_address", NULL, "10.96.0.35:80",
	 ZT_ROUTE_HBONE, "10.0.8.1:15008", "10.0.8.1:8080", POD("v6"), POD("v6"), SVC("v6"), false,
	 {ID("v6")}, ""},
	{"pod_ip_keeps_the_requested_address_of_a_dual_stack_pod", NULL, "[fd00:8::1]:8080",
	 ZT_ROUTE_HBONE, "[fd00:8::1]:15008", "[fd00:8::1]:8080", POD("v6"), POD("v6"), NULL,
	 false, {ID("v6")}, ""},
	{"pod_ip_keeps_the_requested_address_among_several", NULL, "10.0.10.2:80", ZT_ROUTE_HBONE,
	 "10.0.10.2:15008", "10.0.10.2:80", POD("multi"), POD("multi"), NULL, false,
	 {ID("multi")}, ""},
	{"ipv6_only_service_picks_ipv6_address_for_ipv4_vip", NULL, "10.96.0.36:80",
	 ZT_ROUTE_HBONE, "[fd00:8::1]:15008", "[fd00:8::1]:8080", POD("v6"), POD("v6"),
	 SVC("v6-only"), false, {ID("v6")}, ""},
	{"ipv4_only_service_picks_ipv4_address_for_ipv6_vip", NULL, "[fd00:96::37]:80",
	 ZT_ROUTE_HBONE, "10.0.8.1:15008", "10.0.8.1:8080", POD("v6"), POD("v6"), SVC("v4-only"),
	 false, {ID("v6")}, ""},
	{"ipv6_vip_with_waypoint_brackets_vip_authority", NULL, "[fd00:96::20]:80",
	 ZT_ROUTE_HBONE, "[fd00:9::1]:15008", "[fd00:96::20]:80", WAYPOINT, NULL, SVC("v6-wp"),
	 true, {ID("waypoint"), ID("waypoint-alt")}, ""},
	{"endpoint_on_other_network_is_unsupported_double_hbone", NULL, "10.96.0.60:80",
	 ZT_ROUTE_DENY, NULL, NULL, NULL, POD("remote-1"), SVC("remote"), false, {NULL},
	 ZT_ROUTE_REASON_MULTI_NETWORK},
	{"addressless_endpoint_behind_gateway_is_unsupported_double_hbone", NULL, "10.96.0.61:80",
	 ZT_ROUTE_DENY, NULL, NULL, NULL, POD("remote-gw"), SVC("remote-gw"), false, {NULL},
	 ZT_ROUTE_REASON_MULTI_NETWORK},
	{"addressless_endpoint_on_same_network_is_skipped", NULL, "10.96.0.62:80", ZT_ROUTE_DENY,
	 NULL, NULL, NULL, NULL, SVC("noaddr"), false, {NULL}, ZT_ROUTE_REASON_NO_UPSTREAM},
	{"hostname_endpoint_is_left_to_resolve", NULL, "10.96.0.63:80", ZT_ROUTE_HBONE, NULL, NULL,
	 POD("ext"), POD("ext"), SVC("ext"), false, {ID("ext")}, ""},
	{"pod_ip_on_other_network_is_unknown", NULL, "10.1.0.1:80", ZT_ROUTE_PASSTHROUGH,
	 "10.1.0.1:80", NULL, NULL, NULL, NULL, false, {NULL}, ZT_ROUTE_REASON_UNKNOWN},
	{"shared_vip_prefers_the_callers_namespace", NULL, "10.96.0.50:80", ZT_ROUTE_DENY, NULL,
	 NULL, NULL, NULL, SVC("shared"), false, {NULL}, ZT_ROUTE_REASON_NO_UPSTREAM},
	{"shared_vip_prefers_canonical_for_other_namespaces", "Kubernetes//Pod/third/client",
	 "10.96.0.50:80", ZT_ROUTE_DENY, NULL, NULL, NULL, NULL,
	 "other/shared.other.svc.cluster.local", false, {NULL}, ZT_ROUTE_REASON_NO_UPSTREAM},
};
/* clang-format on */

static void check_row(const struct row *r, const struct zt_route *got)
{
	char buf[ZT_ADDR_STRLEN];
	size_t n = 0;

	ck_assert_msg(got->kind == r->kind, "%s: kind %s (%s)", r->name,
	              zt_route_kind_name(got->kind), got->reason);
	ck_assert_msg(strcmp(addr_text(&got->next_hop, buf), r->next_hop ? r->next_hop : "") == 0,
	              "%s: next hop %s", r->name, buf);
	ck_assert_msg(strcmp(got->authority, r->authority ? r->authority : "") == 0,
	              "%s: authority %s", r->name, got->authority);
	ck_assert_msg(strcmp(addr_text(&got->target, buf), got->authority) == 0,
	              "%s: target %s vs authority", r->name, buf);
	ck_assert_msg(strcmp(got->dst_workload ? got->dst_workload->uid : "",
	                     r->dst_uid ? r->dst_uid : "") == 0,
	              "%s: dst workload %s", r->name,
	              got->dst_workload ? got->dst_workload->uid : "-");
	ck_assert_msg(strcmp(got->final_workload ? got->final_workload->uid : "",
	                     r->final_uid ? r->final_uid : "") == 0,
	              "%s: final workload %s", r->name,
	              got->final_workload ? got->final_workload->uid : "-");
	ck_assert_msg(strcmp(got->service ? got->service->key : "", r->svc_key ? r->svc_key : "") ==
	                      0,
	              "%s: service %s", r->name, got->service ? got->service->key : "-");
	ck_assert_msg(got->via_waypoint == r->via_waypoint, "%s: via waypoint", r->name);
	ck_assert_msg(strcmp(got->reason, r->reason) == 0, "%s: reason %s", r->name, got->reason);
	while (r->expected[n])
		n++;
	ck_assert_msg(got->n_expected == n, "%s: %zu expected identities", r->name,
	              got->n_expected);
	for (size_t i = 0; i < n; i++) {
		char id[ZT_SPIFFE_STR_SIZE];
		ck_assert_int_gt(zt_spiffe_format(&got->expected[i], id, sizeof(id)), 0);
		ck_assert_msg(strcmp(id, r->expected[i]) == 0, "%s: expected[%zu] %s", r->name, i,
		              id);
	}
}

/* Each row is decided many times with different seeds: where a choice is left to chance
 * there is exactly one eligible candidate, so every draw must give the same decision. */
START_TEST(route_decision_table)
{
	const struct row *r = &rows[_i];
	struct zt_store *s = mesh();

	for (uint64_t seed = 1; seed <= 32; seed++) {
		struct zt_route got;
		uint64_t state = seed * 7919;
		ck_assert_int_eq(route_seeded(s, r->src ? r->src : CLIENT, r->dst, &state, &got),
		                 0);
		check_row(r, &got);
		zt_route_clear(&got);
	}
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

/* Spec §7.1: a hostname endpoint names what to resolve; the resolved address completes the
 * route with the endpoint's port. */
START_TEST(route_hostname_endpoint_completes_once_resolved)
{
	struct zt_store *s = mesh();
	struct zt_route got;
	struct zt_ip ip;
	char buf[ZT_ADDR_STRLEN];
	uint64_t state = 1;

	ck_assert_int_eq(route_seeded(s, CLIENT, "10.96.0.63:80", &state, &got), 0);
	ck_assert_str_eq(got.resolve_host, "db.example.com");
	ck_assert_int_eq(got.next_hop.port, 15008);
	ck_assert_int_eq(zt_ip_parse(&ip, "192.0.2.7", 9), 0);
	zt_route_set_resolved(&got, &ip);
	ck_assert_ptr_null(got.resolve_host);
	ck_assert_str_eq(addr_text(&got.next_hop, buf), "192.0.2.7:15008");
	ck_assert_str_eq(got.authority, "192.0.2.7:8080");
	zt_route_clear(&got);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

/* ---- inputs and lifetime ------------------------------------------------------------------ */

START_TEST(route_rejects_missing_source_or_destination)
{
	struct zt_store *s = mesh();
	struct zt_workload *src = zt_store_workload_by_uid(s, CLIENT);
	struct zt_route_in in = {.source = NULL, .dst = sa("10.96.0.10:80")};
	struct zt_route out;

	ck_assert_int_eq(zt_route_outbound(s, &in, &out), -EINVAL);
	ck_assert_ptr_null(out.service);
	zt_route_clear(&out);
	in.source = src;
	in.dst = (struct zt_sockaddr){0};
	ck_assert_int_eq(zt_route_outbound(s, &in, &out), -EINVAL);
	zt_route_clear(&out);
	zt_workload_unref(src);
	zt_store_free(s);
}
END_TEST

START_TEST(route_uses_caller_illegal_ports)
{
	struct zt_store *s = mesh();
	struct zt_workload *src = zt_store_workload_by_uid(s, CLIENT);
	static const uint16_t ports[] = {15080};
	struct zt_route_in in = {.source = src,
	                         .dst = sa("127.0.0.1:15080"),
	                         .illegal_ports = ports,
	                         .n_illegal_ports = 1};
	struct zt_route out;

	ck_assert_int_eq(zt_route_outbound(s, &in, &out), 0);
	ck_assert_int_eq(out.kind, ZT_ROUTE_DENY);
	ck_assert_str_eq(out.reason, ZT_ROUTE_REASON_SELF);
	zt_route_clear(&out);
	/* With the caller's list, 15001 is no longer ours. */
	in.dst = sa("127.0.0.1:15001");
	ck_assert_int_eq(zt_route_outbound(s, &in, &out), 0);
	ck_assert_int_eq(out.kind, ZT_ROUTE_PASSTHROUGH);
	zt_route_clear(&out);
	zt_workload_unref(src);
	zt_store_free(s);
}
END_TEST

START_TEST(route_source_network_override_changes_lookups)
{
	struct zt_store *s = mesh();
	struct zt_workload *src = zt_store_workload_by_uid(s, CLIENT);
	struct zt_route_in in = {.source = src, .dst = sa("10.1.0.1:80"), .network = "net2"};
	struct zt_route out;

	/* On net2, 10.1.0.1 is a known pod on the source's own network. */
	ck_assert_int_eq(zt_route_outbound(s, &in, &out), 0);
	ck_assert_int_eq(out.kind, ZT_ROUTE_HBONE);
	ck_assert_str_eq(out.dst_workload->uid, POD("remote-1"));
	zt_route_clear(&out);
	/* The default-network VIP is not seen from net2. */
	in.dst = sa("10.96.0.10:80");
	ck_assert_int_eq(zt_route_outbound(s, &in, &out), 0);
	ck_assert_int_eq(out.kind, ZT_ROUTE_PASSTHROUGH);
	zt_route_clear(&out);
	zt_workload_unref(src);
	zt_store_free(s);
}
END_TEST

START_TEST(route_keeps_its_objects_after_the_store_changes)
{
	struct zt_store *s = mesh();
	struct zt_route out;

	route(s, CLIENT, "10.96.0.10:80", &out);
	ck_assert_int_eq(out.kind, ZT_ROUTE_HBONE);
	ck_assert_int_eq(zt_store_remove_address(s, POD("echo-1")), 0);
	zt_store_free(s);
	/* Still readable: the route holds its own references. */
	ck_assert_str_eq(out.dst_workload->uid, POD("echo-1"));
	ck_assert_str_eq(out.service->hostname, "echo.default.svc.cluster.local");
	zt_route_clear(&out);
	ck_assert_ptr_null(out.expected);
	ck_assert_int_eq(out.n_expected, 0);
	fx_assert_no_live();
	zt_route_clear(&out); /* a cleared route may be cleared again */
}
END_TEST

START_TEST(route_default_random_source_works)
{
	struct zt_store *s = mesh();
	struct zt_route out;

	ck_assert_int_eq(route_seeded(s, CLIENT, "10.96.0.22:80", NULL, &out), 0);
	ck_assert_int_eq(out.kind, ZT_ROUTE_HBONE);
	ck_assert(out.via_waypoint);
	zt_route_clear(&out);
	zt_store_free(s);
}
END_TEST

/* ---- load balancing ----------------------------------------------------------------------- */

/* Counts, over n draws, how often each uid in uids[] is the dst workload of src -> dst. */
static void tally(const struct zt_store *s, const char *src, const char *dst, size_t n,
                  const char *const *uids, size_t n_uids, unsigned *count)
{
	uint64_t seed = 12345;

	memset(count, 0, n_uids * sizeof(*count));
	for (size_t i = 0; i < n; i++) {
		struct zt_route out;
		size_t j;
		ck_assert_int_eq(route_seeded(s, src, dst, &seed, &out), 0);
		ck_assert_msg(out.kind == ZT_ROUTE_HBONE, "%s: %s", zt_route_kind_name(out.kind),
		              out.reason);
		for (j = 0; j < n_uids && strcmp(out.dst_workload->uid, uids[j]) != 0; j++)
			;
		ck_assert_msg(j < n_uids, "unexpected %s", out.dst_workload->uid);
		count[j]++;
		zt_route_clear(&out);
	}
}

static const char capacity_mesh[] =
        "workloads:\n"
        "- {uid: client, namespace: default, workloadIps: [10.0.0.1], protocol: HBONE}\n"
        "- {uid: a, namespace: default, workloadIps: [10.0.1.1], protocol: HBONE, capacity: 1,\n"
        "   services: {default/cap.default.svc.cluster.local: {}}}\n"
        "- {uid: b, namespace: default, workloadIps: [10.0.1.2], protocol: HBONE, capacity: 1,\n"
        "   services: {default/cap.default.svc.cluster.local: {}}}\n"
        "- {uid: c, namespace: default, workloadIps: [10.0.1.3], protocol: HBONE, capacity: 2,\n"
        "   services: {default/cap.default.svc.cluster.local: {}}}\n"
        "- {uid: zero, namespace: default, workloadIps: [10.0.1.4], protocol: HBONE,\n"
        "   capacity: 0, services: {default/cap.default.svc.cluster.local: {}}}\n"
        "- {uid: sick, namespace: default, workloadIps: [10.0.1.5], protocol: HBONE,\n"
        "   status: Unhealthy, capacity: 100,\n"
        "   services: {default/cap.default.svc.cluster.local: {}}}\n"
        "services:\n"
        "- {name: cap, namespace: default, hostname: cap.default.svc.cluster.local,\n"
        "   vips: [/10.96.0.40], ports: {80: 8080}}\n";

START_TEST(route_spreads_by_capacity_skipping_zero_and_unhealthy)
{
	static const char *const uids[] = {"a", "b", "c", "zero", "sick"};
	struct zt_store *s = store_text(capacity_mesh);
	unsigned count[5];

	tally(s, "client", "10.96.0.40:80", 3000, uids, 5, count);
	/* Expected 750 / 750 / 1500; the tolerance is about 6 standard deviations. */
	ck_assert_msg(count[0] >= 610 && count[0] <= 890, "a: %u", count[0]);
	ck_assert_msg(count[1] >= 610 && count[1] <= 890, "b: %u", count[1]);
	ck_assert_msg(count[2] >= 1330 && count[2] <= 1670, "c: %u", count[2]);
	ck_assert_uint_eq(count[3], 0);
	ck_assert_uint_eq(count[4], 0);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(route_weighted_waypoints_follow_weights)
{
	static const char *const uids[] = {WAYPOINT, POD("waypoint-b")};
	struct zt_store *s = mesh();
	unsigned count[2];

	tally(s, CLIENT, "10.96.0.22:80", 2000, uids, 2, count);
	/* 80 % / 20 %: expected 1600 / 400, sd ~18. */
	ck_assert_msg(count[0] >= 1500 && count[0] <= 1700, "waypoint: %u", count[0]);
	ck_assert_msg(count[1] >= 300 && count[1] <= 500, "waypoint-b: %u", count[1]);
	zt_store_free(s);
}
END_TEST

START_TEST(route_weighted_waypoints_with_zero_weights_use_waypoint)
{
	struct zt_store *s = store_text(
	        "workloads:\n"
	        "- {uid: client, namespace: default, workloadIps: [10.0.0.1], protocol: HBONE}\n"
	        "- {uid: wp1, namespace: default, workloadIps: [10.0.9.1], protocol: HBONE}\n"
	        "- {uid: wp2, namespace: default, workloadIps: [10.0.9.2], protocol: HBONE}\n"
	        "- {uid: wp3, namespace: default, workloadIps: [10.0.9.3], protocol: HBONE}\n"
	        "services:\n"
	        "- {name: s, namespace: default, hostname: s.default.svc.cluster.local,\n"
	        "   vips: [/10.96.0.1], ports: {80: 8080}, waypoint: {destination: /10.0.9.3},\n"
	        "   weightedWaypoints: [{destination: /10.0.9.1, weight: 0},\n"
	        "                       {destination: /10.0.9.2, weight: 0}]}\n"
	        "- {name: t, namespace: default, hostname: t.default.svc.cluster.local,\n"
	        "   vips: [/10.96.0.2], ports: {80: 8080},\n"
	        "   weightedWaypoints: [{destination: /10.0.9.2, weight: 0},\n"
	        "                       {destination: /10.0.9.1, weight: 5}]}\n"
	        "- {name: u, namespace: default, hostname: u.default.svc.cluster.local,\n"
	        "   vips: [/10.96.0.3], ports: {80: 8080},\n"
	        "   weightedWaypoints: [{destination: /10.0.9.2, weight: 0},\n"
	        "                       {destination: /10.0.9.1, weight: 0}]}\n");
	struct zt_route out;

	for (int i = 0; i < 20; i++) {
		route(s, "client", "10.96.0.1:80", &out);
		ck_assert_str_eq(out.dst_workload->uid, "wp3");
		zt_route_clear(&out);
		/* A zero weight is never drawn while another one is not zero. */
		route(s, "client", "10.96.0.2:80", &out);
		ck_assert_str_eq(out.dst_workload->uid, "wp1");
		zt_route_clear(&out);
		/* All zero and no plain waypoint: the first listed. */
		route(s, "client", "10.96.0.3:80", &out);
		ck_assert_str_eq(out.dst_workload->uid, "wp2");
		zt_route_clear(&out);
	}
	zt_store_free(s);
}
END_TEST

static const char locality_mesh[] =
        "workloads:\n"
        "- {uid: client, namespace: default, workloadIps: [10.0.0.1], protocol: HBONE,\n"
        "   node: n1, clusterId: c1, locality: {region: r1, zone: z1, subzone: s1}}\n"
        "- {uid: same-zone, namespace: default, workloadIps: [10.0.1.1], protocol: HBONE,\n"
        "   node: n2, locality: {region: r1, zone: z1},\n"
        "   services: {default/lb.default.svc.cluster.local: {}}}\n"
        "- {uid: same-region, namespace: default, workloadIps: [10.0.1.2], protocol: HBONE,\n"
        "   capacity: 50, locality: {region: r1, zone: z2},\n"
        "   services: {default/lb.default.svc.cluster.local: {}}}\n"
        "- {uid: far, namespace: default, workloadIps: [10.0.1.3], protocol: HBONE,\n"
        "   capacity: 50, locality: {region: r2, zone: z1},\n"
        "   services: {default/lb.default.svc.cluster.local: {}}}\n"
        "services:\n"
        "- {name: lb, namespace: default, hostname: lb.default.svc.cluster.local,\n"
        "   vips: [/10.96.0.1], ports: {80: 8080},\n"
        "   loadBalancer: {mode: %s, routingPreferences: [Region, Zone]}}\n";

static struct zt_store *locality_store(const char *mode)
{
	char yaml[sizeof(locality_mesh) + 32];

	snprintf(yaml, sizeof(yaml), locality_mesh, mode);
	return store_text(yaml);
}

/* The dst workload of 40 draws, or "" if they differ; "deny" when refused. */
static const char *always(const struct zt_store *s, const char *dst, char *buf, size_t len)
{
	uint64_t seed = 99;

	buf[0] = '\0';
	for (int i = 0; i < 40; i++) {
		struct zt_route out;
		const char *uid;
		ck_assert_int_eq(route_seeded(s, "client", dst, &seed, &out), 0);
		uid = out.kind == ZT_ROUTE_DENY ? "deny" : out.dst_workload->uid;
		if (i == 0)
			snprintf(buf, len, "%s", uid);
		else if (strcmp(buf, uid) != 0)
			buf[0] = '\0';
		zt_route_clear(&out);
	}
	return buf;
}

START_TEST(route_failover_prefers_same_zone_then_falls_back)
{
	struct zt_store *s = locality_store("Failover");
	char buf[64];

	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "same-zone");
	ck_assert_int_eq(zt_store_remove_address(s, "same-zone"), 0);
	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "same-region");
	ck_assert_int_eq(zt_store_remove_address(s, "same-region"), 0);
	/* A zone match after a region mismatch counts for nothing, but it still serves. */
	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "far");
	zt_store_free(s);
}
END_TEST

START_TEST(route_failover_skips_unhealthy_best_rank)
{
	struct zt_store *s = locality_store("Failover");
	char buf[64];

	load_text(s, "workloads:\n"
	             "- {uid: client, namespace: default, workloadIps: [10.0.0.1],\n"
	             "   protocol: HBONE, locality: {region: r1, zone: z1}}\n"
	             "- {uid: same-zone, namespace: default, workloadIps: [10.0.1.1],\n"
	             "   protocol: HBONE, status: Unhealthy, locality: {region: r1, zone: z1},\n"
	             "   services: {default/lb.default.svc.cluster.local: {}}}\n"
	             "- {uid: same-region, namespace: default, workloadIps: [10.0.1.2],\n"
	             "   protocol: HBONE, locality: {region: r1, zone: z2},\n"
	             "   services: {default/lb.default.svc.cluster.local: {}}}\n"
	             "services:\n"
	             "- {name: lb, namespace: default, hostname: lb.default.svc.cluster.local,\n"
	             "   vips: [/10.96.0.1], ports: {80: 8080},\n"
	             "   loadBalancer: {mode: Failover, routingPreferences: [Region, Zone]}}\n");
	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "same-region");
	zt_store_free(s);
}
END_TEST

START_TEST(route_unspecified_mode_ignores_preferences)
{
	static const char *const uids[] = {"same-zone", "same-region", "far"};
	struct zt_store *s = locality_store("Standard");
	unsigned count[3];

	tally(s, "client", "10.96.0.1:80", 1010, uids, 3, count);
	/* Capacities 1 / 50 / 50: the far endpoint takes about half. */
	ck_assert_msg(count[2] > 400 && count[1] > 400, "%u %u %u", count[0], count[1], count[2]);
	zt_store_free(s);
}
END_TEST

START_TEST(route_strict_refuses_without_full_match)
{
	struct zt_store *s = locality_store("Strict");
	char buf[64];

	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "same-zone");
	ck_assert_int_eq(zt_store_remove_address(s, "same-zone"), 0);
	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "deny");
	zt_store_free(s);
}
END_TEST

START_TEST(route_failover_scopes_node_cluster_subzone)
{
	struct zt_store *s = store_text(
	        "workloads:\n"
	        "- {uid: client, namespace: default, workloadIps: [10.0.0.1], protocol: HBONE,\n"
	        "   node: n1, clusterId: c1, locality: {region: r1, zone: z1, subzone: s1}}\n"
	        "- {uid: other-node, namespace: default, workloadIps: [10.0.1.1], protocol: "
	        "HBONE,\n"
	        "   node: n2, clusterId: c1, locality: {region: r1, zone: z1, subzone: s1},\n"
	        "   services: {default/lb.default.svc.cluster.local: {}}}\n"
	        "- {uid: other-subzone, namespace: default, workloadIps: [10.0.1.2],\n"
	        "   protocol: HBONE, node: n1, clusterId: c1,\n"
	        "   locality: {region: r1, zone: z1, subzone: s2},\n"
	        "   services: {default/lb.default.svc.cluster.local: {}}}\n"
	        "- {uid: all, namespace: default, workloadIps: [10.0.1.3], protocol: HBONE,\n"
	        "   node: n1, clusterId: c1, locality: {region: r1, zone: z1, subzone: s1},\n"
	        "   services: {default/lb.default.svc.cluster.local: {}}}\n"
	        "services:\n"
	        "- {name: lb, namespace: default, hostname: lb.default.svc.cluster.local,\n"
	        "   vips: [/10.96.0.1], ports: {80: 8080},\n"
	        "   loadBalancer: {mode: Failover,\n"
	        "                  routingPreferences: [Cluster, Region, Zone, Subzone, Node]}}\n");
	char buf[64];

	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "all");
	ck_assert_int_eq(zt_store_remove_address(s, "all"), 0);
	/* Rank 4 (differs only by node) beats rank 3 (differs from the subzone on). */
	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "other-node");
	zt_store_free(s);
}
END_TEST

START_TEST(route_failover_first_network_preference_outranks_the_rest)
{
	struct zt_store *s = store_text(
	        "workloads:\n"
	        "- {uid: client, namespace: default, workloadIps: [10.0.0.1], protocol: HBONE,\n"
	        "   locality: {region: r1, zone: z1}}\n"
	        "- {uid: local-net, namespace: default, workloadIps: [10.0.1.1], protocol: HBONE,\n"
	        "   locality: {region: r2, zone: z2},\n"
	        "   services: {default/lb.default.svc.cluster.local: {}}}\n"
	        "- {uid: remote-net, namespace: default, network: net2, workloadIps: [10.1.0.1],\n"
	        "   protocol: HBONE, capacity: 1000, locality: {region: r1, zone: z1},\n"
	        "   services: {default/lb.default.svc.cluster.local: {}}}\n"
	        "services:\n"
	        "- {name: lb, namespace: default, hostname: lb.default.svc.cluster.local,\n"
	        "   vips: [/10.96.0.1], ports: {80: 8080},\n"
	        "   loadBalancer: {mode: Failover, routingPreferences: [Network, Region, "
	        "Zone]}}\n");
	char buf[64];

	ck_assert_str_eq(always(s, "10.96.0.1:80", buf, sizeof(buf)), "local-net");
	zt_store_free(s);
}
END_TEST

/* ---- inbound ------------------------------------------------------------------------------ */

static struct zt_hbone_authority auth(const char *text)
{
	struct zt_hbone_authority a;

	ck_assert_int_eq(zt_hbone_authority_parse(&a, text, strlen(text)), 0);
	return a;
}

static int inbound_port(const struct zt_store *s, const char *uid, const char *target,
                        uint16_t *port)
{
	struct zt_workload *w = zt_store_workload_by_uid(s, uid);
	struct zt_hbone_authority a = auth(target);
	int rc;

	ck_assert_ptr_nonnull(w);
	*port = 1;
	rc = zt_route_inbound_port(s, w, &a, port);
	zt_workload_unref(w);
	return rc;
}

START_TEST(route_inbound_port_ip_target_keeps_port)
{
	struct zt_store *s = mesh();
	uint16_t port;

	ck_assert_int_eq(inbound_port(s, POD("echo-1"), "10.0.1.1:8080", &port), 0);
	ck_assert_uint_eq(port, 8080);
	ck_assert_int_eq(inbound_port(s, POD("v6"), "[fd00:8::1]:9999", &port), 0);
	ck_assert_uint_eq(port, 9999);
	zt_store_free(s);
}
END_TEST

START_TEST(route_inbound_port_app_tunnel_port_overrides)
{
	struct zt_store *s = mesh();
	uint16_t port;

	ck_assert_int_eq(inbound_port(s, POD("tun-1"), "10.0.3.1:80", &port), 0);
	ck_assert_uint_eq(port, 15088);
	ck_assert_int_eq(
	        inbound_port(s, POD("tun-1"), "tunnel.default.svc.cluster.local:80", &port), 0);
	ck_assert_uint_eq(port, 15088);
	zt_store_free(s);
}
END_TEST

START_TEST(route_inbound_port_hostname_target_maps_service_port)
{
	struct zt_store *s = mesh();
	uint16_t port;

	/* The service's target port. */
	ck_assert_int_eq(inbound_port(s, POD("echo-1"), "echo.default.svc.cluster.local:80", &port),
	                 0);
	ck_assert_uint_eq(port, 8080);
	/* Upper case names match. */
	ck_assert_int_eq(inbound_port(s, POD("echo-1"), "ECHO.default.svc.cluster.local:80", &port),
	                 0);
	ck_assert_uint_eq(port, 8080);
	/* The endpoint's own mapping of a named port. */
	ck_assert_int_eq(
	        inbound_port(s, POD("named-1"), "named.default.svc.cluster.local:80", &port), 0);
	ck_assert_uint_eq(port, 9090);
	zt_store_free(s);
}
END_TEST

START_TEST(route_inbound_port_hostname_target_unresolvable)
{
	struct zt_store *s = mesh();
	uint16_t port;

	/* Not a service of this pod. */
	ck_assert_int_eq(
	        inbound_port(s, POD("echo-1"), "named.default.svc.cluster.local:80", &port),
	        ZT_E_NOTFOUND);
	ck_assert_uint_eq(port, 1);
	/* Not a port of the service. */
	ck_assert_int_eq(inbound_port(s, POD("echo-1"), "echo.default.svc.cluster.local:81", &port),
	                 ZT_E_NOTFOUND);
	/* An application tunnel does not make up a port the service lacks. */
	ck_assert_int_eq(
	        inbound_port(s, POD("tun-1"), "tunnel.default.svc.cluster.local:81", &port),
	        ZT_E_NOTFOUND);
	/* A named port this endpoint does not map. */
	ck_assert_int_eq(
	        inbound_port(s, POD("named-2"), "named.default.svc.cluster.local:80", &port),
	        ZT_E_NOTFOUND);
	/* A service whose definition has not arrived. */
	ck_assert_int_eq(
	        inbound_port(s, POD("backend"), "ghost.default.svc.cluster.local:80", &port),
	        ZT_E_NOTFOUND);
	zt_store_free(s);
}
END_TEST

static bool waypoint_for(const struct zt_store *s, const char *uid, const char *target)
{
	struct zt_workload *w = zt_store_workload_by_uid(s, uid);
	struct zt_ip t = ip(target);
	bool is;

	ck_assert_ptr_nonnull(w);
	is = zt_route_is_waypoint_for(s, w, &t);
	zt_workload_unref(w);
	return is;
}

START_TEST(route_is_waypoint_for_workload_and_service_targets)
{
	struct zt_store *s = mesh();

	ck_assert(waypoint_for(s, WAYPOINT, "10.0.5.1"));            /* wwl's workload waypoint */
	ck_assert(waypoint_for(s, WAYPOINT, "10.96.0.20"));          /* by address */
	ck_assert(waypoint_for(s, WAYPOINT, "10.96.0.21"));          /* by service hostname */
	ck_assert(waypoint_for(s, WAYPOINT, "10.96.0.24"));          /* by service VIP */
	ck_assert(waypoint_for(s, WAYPOINT, "fd00:96::20"));         /* IPv6 VIP */
	ck_assert(waypoint_for(s, POD("waypoint-b"), "10.96.0.22")); /* a weighted one */
	ck_assert(waypoint_for(s, WAYPOINT, "10.96.0.22"));
	ck_assert(!waypoint_for(s, POD("waypoint-b"), "10.96.0.21")); /* not in the service */
	ck_assert(!waypoint_for(s, WAYPOINT, "10.0.1.1"));            /* pod without waypoint */
	ck_assert(!waypoint_for(s, WAYPOINT, "10.96.0.10"));          /* service without waypoint */
	ck_assert(!waypoint_for(s, WAYPOINT, "192.0.2.1"));           /* unknown */
	ck_assert(!waypoint_for(s, CLIENT, "10.0.5.1"));
	ck_assert(!waypoint_for(s, POD("backend"), "10.96.0.20"));
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

static void setup(void)
{
	zt_log_set_spec("info,state=warn", NULL, 0);
}

static void teardown(void)
{
	zt_log_set_spec("info", NULL, 0);
}

Suite *route_suite(void);
Suite *route_suite(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tcase_create("route");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, route_decision_table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, route_hostname_endpoint_completes_once_resolved);
	tcase_add_test(tc, route_rejects_missing_source_or_destination);
	tcase_add_test(tc, route_uses_caller_illegal_ports);
	tcase_add_test(tc, route_source_network_override_changes_lookups);
	tcase_add_test(tc, route_keeps_its_objects_after_the_store_changes);
	tcase_add_test(tc, route_default_random_source_works);
	tcase_add_test(tc, route_spreads_by_capacity_skipping_zero_and_unhealthy);
	tcase_add_test(tc, route_weighted_waypoints_follow_weights);
	tcase_add_test(tc, route_weighted_waypoints_with_zero_weights_use_waypoint);
	tcase_add_test(tc, route_failover_prefers_same_zone_then_falls_back);
	tcase_add_test(tc, route_failover_skips_unhealthy_best_rank);
	tcase_add_test(tc, route_unspecified_mode_ignores_preferences);
	tcase_add_test(tc, route_strict_refuses_without_full_match);
	tcase_add_test(tc, route_failover_scopes_node_cluster_subzone);
	tcase_add_test(tc, route_failover_first_network_preference_outranks_the_rest);
	tcase_add_test(tc, route_inbound_port_ip_target_keeps_port);
	tcase_add_test(tc, route_inbound_port_app_tunnel_port_overrides);
	tcase_add_test(tc, route_inbound_port_hostname_target_maps_service_port);
	tcase_add_test(tc, route_inbound_port_hostname_target_unresolvable);
	tcase_add_test(tc, route_is_waypoint_for_workload_and_service_targets);
	suite_add_tcase(s, tc);
	return s;
}
