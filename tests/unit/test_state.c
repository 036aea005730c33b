/* The state store: decoding of every xDS field and default, rejections with reasons, the
 * indexes through add/update/remove, staging, lookup preferences, snapshot immutability,
 * watchers, the JSON dump, and the local config file. Resources are built as protobufs
 * here, packed, and applied through the same entry points the xDS client uses. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop_fixture.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "protocol/pb.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "state/dump.h"
#include "state/local.h"
#include "state/service.h"
#include "state/store.h"

#define EXAMPLE "tests/data/local/ztunnel-local.yaml"

static char err[512];

/* ---- builders ----------------------------------------------------------------------------- */

static ProtobufCBinaryData ipb(const char *text)
{
	static uint8_t ring[64][16];
	static unsigned next;
	struct zt_ip ip;
	uint8_t *b = ring[next++ % 64];

	ck_assert_int_eq(zt_ip_parse(&ip, text, strlen(text)), 0);
	memcpy(b, ip.bytes, 16);
	return (ProtobufCBinaryData){.len = ip.family == AF_INET ? 4 : 16, .data = b};
}

static struct zt_ip ip(const char *text)
{
	struct zt_ip v;

	ck_assert_int_eq(zt_ip_parse(&v, text, strlen(text)), 0);
	return v;
}

static int apply_msg(struct zt_store *s, const ProtobufCMessage *m, const char *name)
{
	uint8_t *buf;
	size_t len;
	int rc;

	err[0] = '\0';
	ck_assert_int_eq(zt_pb_pack(m, &buf, &len), 0);
	if (m->descriptor == &istio__security__authorization__descriptor)
		rc = zt_store_apply_authorization(s, name, "v1", buf, len, err, sizeof(err));
	else
		rc = zt_store_apply_address(s, name, "v1", buf, len, err, sizeof(err));
	free(buf);
	return rc;
}

static int apply_wl(struct zt_store *s, Istio__Workload__Workload *w)
{
	Istio__Workload__Address a = ISTIO__WORKLOAD__ADDRESS__INIT;

	a.type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD;
	a.workload = w;
	return apply_msg(s, &a.base, w->uid);
}

static int apply_svc(struct zt_store *s, Istio__Workload__Service *svc)
{
	Istio__Workload__Address a = ISTIO__WORKLOAD__ADDRESS__INIT;

	a.type_case = ISTIO__WORKLOAD__ADDRESS__TYPE_SERVICE;
	a.service = svc;
	return apply_msg(s, &a.base, svc->hostname);
}

static int apply_pol(struct zt_store *s, Istio__Security__Authorization *p)
{
	return apply_msg(s, &p->base, p->name);
}

/* A pod with one address and at most one service entry. Fill in place: it points into itself. */
struct pod {
	Istio__Workload__Workload w;
	ProtobufCBinaryData addr[2];
	Istio__Workload__Workload__ServicesEntry e[2], *ep[2];
	Istio__Workload__PortList pl[2];
	Istio__Workload__Port port[2], *pp[2];
};

static void pod_init(struct pod *p, const char *uid, const char *ns, const char *addr)
{
	memset(p, 0, sizeof(*p));
	p->w = (Istio__Workload__Workload)ISTIO__WORKLOAD__WORKLOAD__INIT;
	p->w.uid = (char *)uid;
	p->w.name = (char *)"pod";
	p->w.namespace_ = (char *)ns;
	if (addr) {
		p->addr[0] = ipb(addr);
		p->w.addresses = p->addr;
		p->w.n_addresses = 1;
	}
}

/* Adds "key" -> {sport: tport} to the pod's services map. */
static void pod_service(struct pod *p, const char *key, uint32_t sport, uint32_t tport)
{
	size_t i = p->w.n_services;

	p->e[i] = (Istio__Workload__Workload__ServicesEntry)
	        ISTIO__WORKLOAD__WORKLOAD__SERVICES_ENTRY__INIT;
	p->pl[i] = (Istio__Workload__PortList)ISTIO__WORKLOAD__PORT_LIST__INIT;
	p->port[i] = (Istio__Workload__Port)ISTIO__WORKLOAD__PORT__INIT;
	p->port[i].service_port = sport;
	p->port[i].target_port = tport;
	p->pp[i] = &p->port[i];
	p->pl[i].ports = &p->pp[i];
	p->pl[i].n_ports = 1;
	p->e[i].key = (char *)key;
	p->e[i].value = &p->pl[i];
	p->ep[i] = &p->e[i];
	p->w.services = p->ep;
	p->w.n_services = i + 1;
}

struct svc {
	Istio__Workload__Service s;
	Istio__Workload__NetworkAddress va, *vap[1];
	Istio__Workload__Port port, *pp[1];
};

static void svc_init(struct svc *v, const char *ns, const char *host, const char *vip)
{
	memset(v, 0, sizeof(*v));
	v->s = (Istio__Workload__Service)ISTIO__WORKLOAD__SERVICE__INIT;
	v->s.name = (char *)"svc";
	v->s.namespace_ = (char *)ns;
	v->s.hostname = (char *)host;
	if (vip) {
		v->va = (Istio__Workload__NetworkAddress)ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
		v->va.address = ipb(vip);
		v->vap[0] = &v->va;
		v->s.addresses = v->vap;
		v->s.n_addresses = 1;
	}
	v->port = (Istio__Workload__Port)ISTIO__WORKLOAD__PORT__INIT;
	v->port.service_port = 80;
	v->port.target_port = 8080;
	v->pp[0] = &v->port;
	v->s.ports = v->pp;
	v->s.n_ports = 1;
}

static struct zt_store_counters counters(const struct zt_store *s)
{
	struct zt_store_counters c;

	zt_store_get_counters(s, &c);
	return c;
}

/* ---- decoding ----------------------------------------------------------------------------- */

START_TEST(state_workload_decodes_every_field)
{
	struct zt_store *s = zt_store_new();
	Istio__Workload__Workload w = ISTIO__WORKLOAD__WORKLOAD__INIT;
	ProtobufCBinaryData addrs[2] = {ipb("10.0.0.5"), ipb("fd00::5")};
	Istio__Workload__NetworkAddress gw_addr = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__NamespacedHostname wp_host = ISTIO__WORKLOAD__NAMESPACED_HOSTNAME__INIT;
	Istio__Workload__GatewayAddress wp = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__GatewayAddress gw = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__ApplicationTunnel tun = ISTIO__WORKLOAD__APPLICATION_TUNNEL__INIT;
	Istio__Workload__Locality loc = ISTIO__WORKLOAD__LOCALITY__INIT;
	Google__Protobuf__UInt32Value cap = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
	Istio__Workload__Port p1 = ISTIO__WORKLOAD__PORT__INIT, p2 = ISTIO__WORKLOAD__PORT__INIT;
	Istio__Workload__Port *ports[] = {&p1, &p2};
	Istio__Workload__PortList pl = ISTIO__WORKLOAD__PORT_LIST__INIT;
	Istio__Workload__Workload__ServicesEntry e =
	        ISTIO__WORKLOAD__WORKLOAD__SERVICES_ENTRY__INIT;
	Istio__Workload__Workload__ServicesEntry *entries[] = {&e};
	char *pols[] = {"ns1/p1", "ns1/p2"};
	char why[256];

	wp_host.namespace_ = "ns1";
	wp_host.hostname = "waypoint.ns1.svc.cluster.local";
	wp.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME;
	wp.hostname = &wp_host;
	wp.hbone_mtls_port = 15008;
	gw_addr.network = "net2";
	gw_addr.address = ipb("192.0.2.1");
	gw.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS;
	gw.address = &gw_addr;
	gw.hbone_mtls_port = 15009;
	tun.protocol = ISTIO__WORKLOAD__APPLICATION_TUNNEL__PROTOCOL__PROXY;
	tun.port = 15088;
	loc.region = "r";
	loc.zone = "z";
	loc.subzone = "sz";
	cap.value = 7;
	p1.service_port = 80;
	p1.target_port = 8080;
	p1.app_protocol = ISTIO__WORKLOAD__APP_PROTOCOL__HTTP2;
	p2.service_port = 443;
	p2.target_port = 0;
	p2.app_protocol = 42; /* unknown: kept as sent */
	pl.ports = ports;
	pl.n_ports = 2;
	e.key = "ns1/svc.ns1.svc.cluster.local";
	e.value = &pl;
	w.uid = "Kubernetes//Pod/ns1/pod-a";
	w.name = "pod-a";
	w.namespace_ = "ns1";
	w.addresses = addrs;
	w.n_addresses = 2;
	w.hostname = "pod-a.example";
	w.network = "net1";
	w.tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE;
	w.trust_domain = "td.example";
	w.service_account = "sa1";
	w.waypoint = &wp;
	w.network_gateway = &gw;
	w.node = "node-1";
	w.canonical_name = "app";
	w.canonical_revision = "v2";
	w.workload_type = ISTIO__WORKLOAD__WORKLOAD_TYPE__JOB;
	w.workload_name = "job-a";
	w.native_tunnel = true;
	w.application_tunnel = &tun;
	w.services = entries;
	w.n_services = 1;
	w.authorization_policies = pols;
	w.n_authorization_policies = 2;
	w.status = ISTIO__WORKLOAD__WORKLOAD_STATUS__UNHEALTHY;
	w.cluster_id = "c1";
	w.locality = &loc;
	w.network_mode = ISTIO__WORKLOAD__NETWORK_MODE__STANDARD;
	w.capacity = &cap;
	ck_assert_msg(apply_wl(s, &w) == 0, "%s", err);

	struct zt_workload *got = zt_store_workload_by_uid(s, "Kubernetes//Pod/ns1/pod-a");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->uid, "Kubernetes//Pod/ns1/pod-a");
	ck_assert_str_eq(got->name, "pod-a");
	ck_assert_str_eq(got->ns, "ns1");
	ck_assert_uint_eq(got->n_ips, 2);
	ck_assert(zt_ip_equal(&got->ips[0], &(struct zt_ip){0}) == false);
	struct zt_ip a0 = ip("10.0.0.5"), a1 = ip("fd00::5");
	ck_assert(zt_ip_equal(&got->ips[0], &a0));
	ck_assert(zt_ip_equal(&got->ips[1], &a1));
	ck_assert_str_eq(got->hostname, "pod-a.example");
	ck_assert_str_eq(got->network, "net1");
	ck_assert_int_eq(got->tunnel_protocol, ZT_TUNNEL_HBONE);
	ck_assert_str_eq(got->trust_domain, "td.example");
	ck_assert_str_eq(got->service_account, "sa1");
	ck_assert_int_eq(got->waypoint->kind, ZT_GATEWAY_HOSTNAME);
	ck_assert_str_eq(got->waypoint->ns, "ns1");
	ck_assert_str_eq(got->waypoint->hostname, "waypoint.ns1.svc.cluster.local");
	ck_assert_uint_eq(got->waypoint->hbone_mtls_port, 15008);
	ck_assert_int_eq(got->network_gateway->kind, ZT_GATEWAY_ADDRESS);
	ck_assert_str_eq(got->network_gateway->network, "net2");
	struct zt_ip g = ip("192.0.2.1");
	ck_assert(zt_ip_equal(&got->network_gateway->ip, &g));
	ck_assert_uint_eq(got->network_gateway->hbone_mtls_port, 15009);
	ck_assert_str_eq(got->node, "node-1");
	ck_assert_str_eq(got->canonical_name, "app");
	ck_assert_str_eq(got->canonical_revision, "v2");
	ck_assert_int_eq(got->workload_type, ZT_WORKLOAD_JOB);
	ck_assert_str_eq(got->workload_name, "job-a");
	ck_assert(got->native_tunnel);
	ck_assert(got->application_tunnel.present);
	ck_assert_int_eq(got->application_tunnel.protocol, ZT_APP_TUNNEL_PROXY);
	ck_assert_uint_eq(got->application_tunnel.port, 15088);
	ck_assert_uint_eq(got->n_services, 1);
	const struct zt_workload_service *ws =
	        zt_workload_service(got, "ns1/svc.ns1.svc.cluster.local");
	ck_assert_ptr_eq(ws, &got->services[0]);
	ck_assert_uint_eq(ws->n_ports, 2);
	ck_assert_uint_eq(ws->ports[0].service_port, 80);
	ck_assert_uint_eq(ws->ports[0].target_port, 8080);
	ck_assert_int_eq(ws->ports[0].app_protocol, ZT_APP_PROTOCOL_HTTP2);
	ck_assert_uint_eq(ws->ports[1].target_port, 0);
	ck_assert_int_eq(ws->ports[1].app_protocol, 42);
	ck_assert_uint_eq(got->n_authorization_policies, 2);
	ck_assert_str_eq(got->authorization_policies[1], "ns1/p2");
	ck_assert_int_eq(got->status, ZT_WORKLOAD_UNHEALTHY);
	ck_assert_str_eq(got->cluster_id, "c1");
	ck_assert_str_eq(got->locality.region, "r");
	ck_assert_str_eq(got->locality.zone, "z");
	ck_assert_str_eq(got->locality.subzone, "sz");
	ck_assert_int_eq(got->network_mode, ZT_NETWORK_STANDARD);
	ck_assert_uint_eq(got->capacity, 7);
	zt_spiffe_format(got->identity, why, sizeof(why));
	ck_assert_str_eq(why, "spiffe://td.example/ns/ns1/sa/sa1");
	ck_assert_int_eq(zt_workload_ip_rank(got), 3);
	zt_workload_unref(got);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_workload_defaults_apply_to_empty_fields)
{
	struct zt_store *s = zt_store_new();
	struct pod p;
	Google__Protobuf__UInt32Value zero = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
	char id[ZT_SPIFFE_STR_SIZE];

	pod_init(&p, "u1", "ns", NULL);
	ck_assert_msg(apply_wl(s, &p.w) == 0, "%s", err);
	struct zt_workload *w = zt_store_workload_by_uid(s, "u1");
	ck_assert_str_eq(w->trust_domain, "cluster.local");
	ck_assert_str_eq(w->service_account, "default");
	ck_assert_str_eq(w->cluster_id, "Kubernetes");
	ck_assert_str_eq(w->network, "");
	ck_assert_str_eq(w->hostname, "");
	ck_assert_str_eq(w->locality.region, "");
	ck_assert_uint_eq(w->capacity, 1);
	ck_assert_uint_eq(w->n_ips, 0);
	ck_assert_int_eq(w->tunnel_protocol, ZT_TUNNEL_NONE);
	ck_assert_int_eq(w->status, ZT_WORKLOAD_HEALTHY);
	ck_assert_int_eq(w->workload_type, ZT_WORKLOAD_DEPLOYMENT);
	ck_assert_int_eq(w->waypoint->kind, ZT_GATEWAY_UNSET);
	ck_assert_int_eq(w->network_gateway->kind, ZT_GATEWAY_UNSET);
	ck_assert(!w->application_tunnel.present);
	ck_assert_ptr_null(w->services);
	zt_spiffe_format(w->identity, id, sizeof(id));
	ck_assert_str_eq(id, "spiffe://cluster.local/ns/ns/sa/default");
	ck_assert_int_eq(zt_workload_ip_rank(w), 0);
	zt_workload_unref(w);

	/* A present capacity wrapper holding 0 is 0, not the default. */
	p.w.capacity = &zero;
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	w = zt_store_workload_by_uid(s, "u1");
	ck_assert_uint_eq(w->capacity, 0);
	zt_workload_unref(w);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_workload_name_same_as_the_name_is_the_name)
{
	struct zt_store *s = zt_store_new();
	struct pod p;

	pod_init(&p, "u1", "ns", NULL);
	p.w.workload_name = (char *)"pod";
	ck_assert_msg(apply_wl(s, &p.w) == 0, "%s", err);
	struct zt_workload *w = zt_store_workload_by_uid(s, "u1");
	ck_assert_ptr_eq(w->workload_name, w->name);
	zt_workload_unref(w);
	/* An owner's name is interned: two pods of one deployment share it. */
	p.w.workload_name = (char *)"shop";
	ck_assert_msg(apply_wl(s, &p.w) == 0, "%s", err);
	pod_init(&p, "u2", "ns", NULL);
	p.w.workload_name = (char *)"shop";
	ck_assert_msg(apply_wl(s, &p.w) == 0, "%s", err);
	struct zt_workload *w1 = zt_store_workload_by_uid(s, "u1");
	struct zt_workload *w2 = zt_store_workload_by_uid(s, "u2");
	ck_assert_str_eq(w1->workload_name, "shop");
	ck_assert_ptr_eq(w1->workload_name, w2->workload_name);
	zt_workload_unref(w1);
	zt_workload_unref(w2);
	zt_store_free(s);
}
END_TEST

START_TEST(state_service_decodes_every_field)
{
	struct zt_store *s = zt_store_new();
	Istio__Workload__Service svc = ISTIO__WORKLOAD__SERVICE__INIT;
	Istio__Workload__NetworkAddress v4 = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__NetworkAddress v6 = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__NetworkAddress cidr = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__NetworkAddress full = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__NetworkAddress *addrs[] = {&v4, &v6, &cidr, &full};
	Istio__Workload__Port p1 = ISTIO__WORKLOAD__PORT__INIT, *ports[] = {&p1};
	char *sans[] = {"spiffe://cluster.local/ns/a/sa/b"};
	Istio__Workload__NetworkAddress wpa = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__GatewayAddress wp = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__LoadBalancing lb = ISTIO__WORKLOAD__LOAD_BALANCING__INIT;
	Istio__Workload__LoadBalancing__Scope prefs[] = {
	        ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__NETWORK,
	        ISTIO__WORKLOAD__LOAD_BALANCING__SCOPE__ZONE};
	Istio__Workload__NamespacedHostname wwh = ISTIO__WORKLOAD__NAMESPACED_HOSTNAME__INIT;
	Istio__Workload__GatewayAddress wwg = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__WeightedWaypoint ww = ISTIO__WORKLOAD__WEIGHTED_WAYPOINT__INIT,
	                                  *wws[] = {&ww};

	v4.network = "n1";
	v4.address = ipb("10.96.0.10");
	v6.address = ipb("fd00::10");
	cidr.address = ipb("10.200.0.0");
	cidr.prefix_case = ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH;
	cidr.length = 16;
	full.address = ipb("10.97.0.1");
	full.prefix_case = ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH;
	full.length = 32;
	p1.service_port = 443;
	p1.target_port = 8443;
	p1.app_protocol = ISTIO__WORKLOAD__APP_PROTOCOL__TLS;
	wpa.address = ipb("10.0.0.99");
	wp.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS;
	wp.address = &wpa;
	wp.hbone_mtls_port = 15008;
	lb.routing_preference = prefs;
	lb.n_routing_preference = 2;
	lb.mode = ISTIO__WORKLOAD__LOAD_BALANCING__MODE__FAILOVER;
	lb.health_policy = ISTIO__WORKLOAD__LOAD_BALANCING__HEALTH_POLICY__ALLOW_ALL;
	wwh.namespace_ = "a";
	wwh.hostname = "wp.a.svc.cluster.local";
	wwg.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME;
	wwg.hostname = &wwh;
	ww.destination = &wwg;
	ww.weight = 30;
	svc.name = "web";
	svc.namespace_ = "a";
	svc.hostname = "web.a.svc.cluster.local";
	svc.addresses = addrs;
	svc.n_addresses = 4;
	svc.ports = ports;
	svc.n_ports = 1;
	svc.subject_alt_names = sans;
	svc.n_subject_alt_names = 1;
	svc.waypoint = &wp;
	svc.load_balancing = &lb;
	svc.ip_families = ISTIO__WORKLOAD__IPFAMILIES__DUAL;
	svc.canonical = true;
	svc.ingress_use_waypoint = true;
	svc.weighted_waypoints = wws;
	svc.n_weighted_waypoints = 1;
	svc.visibility = ISTIO__WORKLOAD__SERVICE__VISIBILITY__NAMESPACE;
	ck_assert_msg(apply_svc(s, &svc) == 0, "%s", err);

	struct zt_service *got = zt_store_service_by_host(s, "a", "web.a.svc.cluster.local");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->name, "web");
	ck_assert_str_eq(got->ns, "a");
	ck_assert_str_eq(got->key, "a/web.a.svc.cluster.local");
	ck_assert_uint_eq(got->n_vips, 4);
	ck_assert_str_eq(got->vips[0].network, "n1");
	ck_assert(zt_vip_is_host(&got->vips[0]));
	ck_assert(zt_vip_is_host(&got->vips[1]));
	ck_assert_uint_eq(got->vips[1].cidr.prefix, 128);
	ck_assert(!zt_vip_is_host(&got->vips[2]));
	ck_assert_uint_eq(got->vips[2].cidr.prefix, 16);
	ck_assert(zt_vip_is_host(&got->vips[3]));
	ck_assert_uint_eq(got->n_ports, 1);
	ck_assert_ptr_eq(zt_service_port(got, 443), &got->ports[0]);
	ck_assert_ptr_null(zt_service_port(got, 80));
	ck_assert_uint_eq(got->ports[0].target_port, 8443);
	ck_assert_int_eq(got->ports[0].app_protocol, ZT_APP_PROTOCOL_TLS);
	ck_assert_uint_eq(got->n_subject_alt_names, 1);
	ck_assert_str_eq(got->subject_alt_names[0], "spiffe://cluster.local/ns/a/sa/b");
	ck_assert_int_eq(got->waypoint.kind, ZT_GATEWAY_ADDRESS);
	ck_assert_str_eq(got->waypoint.network, "");
	ck_assert(got->load_balancing.present);
	ck_assert_uint_eq(got->load_balancing.n_routing_preference, 2);
	ck_assert_int_eq(got->load_balancing.routing_preference[0], ZT_LB_SCOPE_NETWORK);
	ck_assert_int_eq(got->load_balancing.routing_preference[1], ZT_LB_SCOPE_ZONE);
	ck_assert_int_eq(got->load_balancing.mode, ZT_LB_MODE_FAILOVER);
	ck_assert_int_eq(got->load_balancing.health_policy, ZT_LB_ALLOW_ALL);
	ck_assert_int_eq(got->ip_families, ZT_IP_FAMILIES_DUAL);
	ck_assert(got->canonical);
	ck_assert(got->ingress_use_waypoint);
	ck_assert_uint_eq(got->n_weighted_waypoints, 1);
	ck_assert_int_eq(got->weighted_waypoints[0].destination.kind, ZT_GATEWAY_HOSTNAME);
	ck_assert_str_eq(got->weighted_waypoints[0].destination.hostname, "wp.a.svc.cluster.local");
	ck_assert_uint_eq(got->weighted_waypoints[0].weight, 30);
	ck_assert_int_eq(got->visibility, ZT_VISIBILITY_NAMESPACE);
	ck_assert_uint_eq(got->n_endpoints, 0);
	zt_service_unref(got);

	/* Absent sub-messages leave defaults. */
	Istio__Workload__Service bare = ISTIO__WORKLOAD__SERVICE__INIT;
	bare.namespace_ = "b";
	bare.hostname = "headless.b";
	ck_assert_int_eq(apply_svc(s, &bare), 0);
	got = zt_store_service_by_key(s, "b/headless.b");
	ck_assert_uint_eq(got->n_vips, 0);
	ck_assert(!got->load_balancing.present);
	ck_assert_int_eq(got->load_balancing.mode, ZT_LB_MODE_UNSPECIFIED);
	ck_assert_int_eq(got->waypoint.kind, ZT_GATEWAY_UNSET);
	ck_assert_int_eq(got->visibility, ZT_VISIBILITY_PUBLIC);
	ck_assert_int_eq(got->ip_families, ZT_IP_FAMILIES_AUTOMATIC);
	zt_service_unref(got);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_policy_decodes_every_field)
{
	struct zt_store *s = zt_store_new();
	Istio__Security__Authorization a = ISTIO__SECURITY__AUTHORIZATION__INIT;
	Istio__Security__Rule r = ISTIO__SECURITY__RULE__INIT, *rules[] = {&r};
	Istio__Security__Clause c = ISTIO__SECURITY__CLAUSE__INIT, *clauses[] = {&c};
	Istio__Security__Match m = ISTIO__SECURITY__MATCH__INIT, *matches[] = {&m};
	Istio__Security__StringMatch ex = ISTIO__SECURITY__STRING_MATCH__INIT;
	Istio__Security__StringMatch pre = ISTIO__SECURITY__STRING_MATCH__INIT;
	Istio__Security__StringMatch suf = ISTIO__SECURITY__STRING_MATCH__INIT;
	Istio__Security__StringMatch pres = ISTIO__SECURITY__STRING_MATCH__INIT;
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
	Istio__Security__StringMatch *sm1[] = {&ex}, *sm2[] = {&pre}, *sm3[] = {&suf},
	                             *sm4[] = {&pres};
	Istio__Security__Address a1 = ISTIO__SECURITY__ADDRESS__INIT;
	Istio__Security__Address a2 = ISTIO__SECURITY__ADDRESS__INIT;
	Istio__Security__Address *ad1[] = {&a1}, *ad2[] = {&a2};
	uint32_t ports1[] = {80, 443}, ports2[] = {9999};
	Istio__Security__ServiceAccountMatch sa = ISTIO__SECURITY__SERVICE_ACCOUNT_MATCH__INIT;
	Istio__Security__ServiceAccountMatch *sas[] = {&sa};

	ex.match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_EXACT;
	ex.exact = "ns1";
	pre.match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PREFIX;
	pre.prefix = "td/ns/";
	suf.match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_SUFFIX;
	suf.suffix = "/sa/x";
	pres.match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE;
	pres.presence = &empty;
	a1.address = ipb("10.1.2.3");
	a1.length = 8;
	a2.address = ipb("fd00::");
	a2.length = 64;
	sa.namespace_ = "ns2";
	sa.serviceaccount = "sa2";
	m.namespaces = sm1;
	m.n_namespaces = 1;
	m.not_namespaces = sm4;
	m.n_not_namespaces = 1;
	m.principals = sm2;
	m.n_principals = 1;
	m.not_principals = sm3;
	m.n_not_principals = 1;
	m.source_ips = ad1;
	m.n_source_ips = 1;
	m.not_source_ips = ad2;
	m.n_not_source_ips = 1;
	m.destination_ips = ad2;
	m.n_destination_ips = 1;
	m.not_destination_ips = ad1;
	m.n_not_destination_ips = 1;
	m.destination_ports = ports1;
	m.n_destination_ports = 2;
	m.not_destination_ports = ports2;
	m.n_not_destination_ports = 1;
	m.service_accounts = sas;
	m.n_service_accounts = 1;
	m.not_service_accounts = sas;
	m.n_not_service_accounts = 1;
	c.matches = matches;
	c.n_matches = 1;
	r.clauses = clauses;
	r.n_clauses = 1;
	a.name = "p1";
	a.namespace_ = "ns1";
	a.scope = ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR;
	a.action = ISTIO__SECURITY__ACTION__DENY;
	a.dry_run = true;
	a.rules = rules;
	a.n_rules = 1;
	ck_assert_msg(apply_pol(s, &a) == 0, "%s", err);

	struct zt_policy *p = zt_store_policy_by_key(s, "ns1/p1");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->name, "p1");
	ck_assert_str_eq(p->ns, "ns1");
	ck_assert_int_eq(p->scope, ZT_POLICY_WORKLOAD_SELECTOR);
	ck_assert_int_eq(p->action, ZT_POLICY_DENY);
	ck_assert(p->dry_run);
	ck_assert_uint_eq(p->n_rules, 1);
	ck_assert_uint_eq(p->rules[0].n_clauses, 1);
	ck_assert_uint_eq(p->rules[0].clauses[0].n_matches, 1);
	const struct zt_policy_match *pm = &p->rules[0].clauses[0].matches[0];
	ck_assert_int_eq(pm->namespaces[0].kind, ZT_MATCH_EXACT);
	ck_assert_str_eq(pm->namespaces[0].value, "ns1");
	ck_assert_int_eq(pm->not_namespaces[0].kind, ZT_MATCH_PRESENCE);
	ck_assert_int_eq(pm->principals[0].kind, ZT_MATCH_PREFIX);
	ck_assert_str_eq(pm->principals[0].value, "td/ns/");
	ck_assert_int_eq(pm->not_principals[0].kind, ZT_MATCH_SUFFIX);
	ck_assert_str_eq(pm->not_principals[0].value, "/sa/x");
	char buf[ZT_CIDR_STRLEN];
	zt_cidr_format(&pm->source_ips[0], buf, sizeof(buf));
	ck_assert_str_eq(buf, "10.0.0.0/8");
	zt_cidr_format(&pm->not_source_ips[0], buf, sizeof(buf));
	ck_assert_str_eq(buf, "fd00::/64");
	ck_assert_uint_eq(pm->n_destination_ips, 1);
	ck_assert_uint_eq(pm->n_not_destination_ips, 1);
	ck_assert_uint_eq(pm->n_destination_ports, 2);
	ck_assert_uint_eq(pm->destination_ports[1], 443);
	ck_assert_uint_eq(pm->not_destination_ports[0], 9999);
	ck_assert_str_eq(pm->service_accounts[0].ns, "ns2");
	ck_assert_str_eq(pm->service_accounts[0].sa, "sa2");
	ck_assert_str_eq(pm->not_service_accounts[0].sa, "sa2");
	ck_assert(!zt_policy_match_is_empty(pm));
	zt_policy_unref(p);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

/* ---- rejections --------------------------------------------------------------------------- */

static void assert_rejected(struct zt_store *s, int rc, int want, const char *reason)
{
	ck_assert_msg(rc == want, "rc %d, want %d (%s)", rc, want, err);
	ck_assert_msg(strstr(err, reason), "reason \"%s\" lacks \"%s\"", err, reason);
	(void)s;
}

START_TEST(state_rejects_invalid_workloads_with_reasons)
{
	struct zt_store *s = zt_store_new();
	struct pod p;
	Istio__Workload__GatewayAddress nodest = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Workload__ApplicationTunnel tun = ISTIO__WORKLOAD__APPLICATION_TUNNEL__INIT;
	uint8_t five[5] = {1, 2, 3, 4, 5};

	pod_init(&p, "Kubernetes//Pod/ns/a", "ns", "10.0.0.1");
	ck_assert_int_eq(apply_wl(s, &p.w), 0);

	p.w.tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__LEGACY_ISTIO_MTLS;
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "LEGACY_ISTIO_MTLS");
	p.w.tunnel_protocol = 9;
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "unknown tunnel protocol 9");
	p.w.tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE;

	p.w.waypoint = &nodest;
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO,
	                "waypoint: gateway address without destination");
	p.w.waypoint = NULL;
	p.w.network_gateway = &nodest;
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO,
	                "network_gateway: gateway address without");
	p.w.network_gateway = NULL;

	p.addr[0] = (ProtobufCBinaryData){.len = 5, .data = five};
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "address 0 is 5 bytes, not 4 or 16");
	p.addr[0] = ipb("10.0.0.2");

	p.w.network_mode = 5;
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "unknown network mode 5");
	p.w.network_mode = 0;

	tun.protocol = 3;
	p.w.application_tunnel = &tun;
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "unknown application tunnel protocol 3");
	p.w.application_tunnel = NULL;

	pod_service(&p, "ns/svc", 80, 70000);
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "target port 70000 out of range");
	p.port[0].target_port = 80;
	p.port[0].service_port = 0;
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "service port 0 out of range");
	p.w.n_services = 0;

	p.w.service_account = "bad sa";
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "no valid identity");
	p.w.service_account = "";
	p.w.namespace_ = "";
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "no valid identity");
	p.w.namespace_ = "ns";

	p.w.uid = "";
	assert_rejected(s, apply_wl(s, &p.w), ZT_E_PROTO, "empty uid");

	/* Every rejection left the first version in place. */
	struct zt_store_counters c = counters(s);
	ck_assert_uint_eq(c.workloads, 1);
	ck_assert_uint_eq(c.applied, 1);
	ck_assert_uint_eq(c.rejected, 12);
	struct zt_ip a = ip("10.0.0.1");
	struct zt_workload *w = zt_store_workload_by_ip(s, "", &a);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(w->tunnel_protocol, ZT_TUNNEL_NONE);
	zt_workload_unref(w);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_rejects_invalid_services_policies_and_bytes)
{
	struct zt_store *s = zt_store_new();
	struct svc v;
	Istio__Workload__WeightedWaypoint ww = ISTIO__WORKLOAD__WEIGHTED_WAYPOINT__INIT,
	                                  *wws[] = {&ww};
	Istio__Workload__LoadBalancing lb = ISTIO__WORKLOAD__LOAD_BALANCING__INIT;
	Istio__Workload__LoadBalancing__Scope bad_scope[] = {11};
	Istio__Workload__Address none = ISTIO__WORKLOAD__ADDRESS__INIT;
	uint8_t three[3] = {1, 2, 3};

	svc_init(&v, "ns", "a.ns", "10.96.0.1");
	v.s.hostname = "";
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "empty hostname");
	v.s.hostname = "a.ns";
	v.s.namespace_ = "";
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "empty namespace");
	v.s.namespace_ = "ns";
	v.va.prefix_case = ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH;
	v.va.length = 33;
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "prefix length 33 too long");
	v.va.prefix_case = 0;
	v.va.address = (ProtobufCBinaryData){.len = 3, .data = three};
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "not 4 or 16");
	v.va.address = ipb("10.96.0.1");
	v.port.service_port = 65536;
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "service port 65536 out of range");
	v.port.service_port = 80;
	v.s.weighted_waypoints = wws;
	v.s.n_weighted_waypoints = 1;
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO,
	                "weighted waypoint 0 without destination");
	v.s.n_weighted_waypoints = 0;
	v.s.load_balancing = &lb;
	lb.mode = 9;
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "unknown load balancing mode 9");
	lb.mode = 0;
	lb.health_policy = 2;
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "unknown health policy 2");
	lb.health_policy = 0;
	lb.routing_preference = bad_scope;
	lb.n_routing_preference = 1;
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "unknown load balancing scope 11");
	v.s.load_balancing = NULL;
	v.s.ip_families = 4;
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "unknown ip families 4");
	v.s.ip_families = 0;
	v.s.visibility = 2;
	assert_rejected(s, apply_svc(s, &v.s), ZT_E_PROTO, "unknown visibility 2");
	v.s.visibility = 0;
	ck_assert_msg(apply_svc(s, &v.s) == 0, "%s", err);

	/* Address with neither member, undecodable bytes, oversized input. */
	assert_rejected(s, apply_msg(s, &none.base, "x"), ZT_E_PROTO,
	                "neither a workload nor a service");
	static const uint8_t junk[] = {0x0a, 0x05, 0x01};
	assert_rejected(s,
	                zt_store_apply_address(s, "x", "v", junk, sizeof(junk), err, sizeof(err)),
	                ZT_E_PARSE, "cannot decode");
	uint8_t *big = calloc(1, ZT_STORE_MAX_RESOURCE + 1);
	assert_rejected(s,
	                zt_store_apply_address(s, "x", "v", big, ZT_STORE_MAX_RESOURCE + 1, err,
	                                       sizeof(err)),
	                ZT_E_TOOBIG, "cannot decode");
	free(big);

	/* Policies. */
	Istio__Security__Authorization a = ISTIO__SECURITY__AUTHORIZATION__INIT;
	Istio__Security__Rule r = ISTIO__SECURITY__RULE__INIT, *rules[] = {&r};
	Istio__Security__Clause c = ISTIO__SECURITY__CLAUSE__INIT, *clauses[] = {&c};
	Istio__Security__Match m = ISTIO__SECURITY__MATCH__INIT, *matches[] = {&m};
	Istio__Security__StringMatch unset = ISTIO__SECURITY__STRING_MATCH__INIT, *sm[] = {&unset};
	Istio__Security__Address ad = ISTIO__SECURITY__ADDRESS__INIT, *ads[] = {&ad};
	a.namespace_ = "ns";
	assert_rejected(s, apply_pol(s, &a), ZT_E_PROTO, "empty name");
	a.name = "p";
	a.scope = 3;
	assert_rejected(s, apply_pol(s, &a), ZT_E_PROTO, "unknown policy scope 3");
	a.scope = 0;
	a.action = 2;
	assert_rejected(s, apply_pol(s, &a), ZT_E_PROTO, "unknown policy action 2");
	a.action = 0;
	a.rules = rules;
	a.n_rules = 1;
	r.clauses = clauses;
	r.n_clauses = 1;
	c.matches = matches;
	c.n_matches = 1;
	m.principals = sm;
	m.n_principals = 1;
	assert_rejected(s, apply_pol(s, &a), ZT_E_PROTO, "string match without a value");
	m.n_principals = 0;
	m.source_ips = ads;
	m.n_source_ips = 1;
	ad.address = (ProtobufCBinaryData){.len = 3, .data = three};
	assert_rejected(s, apply_pol(s, &a), ZT_E_PROTO, "address is 3 bytes");
	ad.address = ipb("10.0.0.0");
	ad.length = 40;
	assert_rejected(s, apply_pol(s, &a), ZT_E_PROTO, "prefix length 40 too long");
	ad.length = 8;
	ck_assert_msg(apply_pol(s, &a) == 0, "%s", err);

	struct zt_store_counters cn = counters(s);
	ck_assert_uint_eq(cn.services, 1);
	ck_assert_uint_eq(cn.policies, 1);
	ck_assert_uint_eq(cn.rejected, 20);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

/* ---- indexes ------------------------------------------------------------------------------ */

START_TEST(state_indexes_follow_add_update_remove)
{
	struct zt_store *s = zt_store_new();
	struct pod p;
	struct zt_ip a = ip("10.0.0.1"), b = ip("10.0.0.2"), c = ip("10.0.0.3");
	struct zt_workload *w;

	pod_init(&p, "u1", "ns", "10.0.0.1");
	p.addr[1] = ipb("10.0.0.2");
	p.w.n_addresses = 2;
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	w = zt_store_workload_by_ip(s, "", &a);
	ck_assert_str_eq(w->uid, "u1");
	zt_workload_unref(w);
	w = zt_store_workload_by_ip(s, NULL, &b);
	ck_assert_str_eq(w->uid, "u1");
	zt_workload_unref(w);
	ck_assert_ptr_null(zt_store_workload_by_ip(s, "other", &a));
	ck_assert_ptr_null(zt_store_workload_by_ip(s, "", &c));

	/* Update: 10.0.0.2 -> 10.0.0.3, and the network moves. */
	p.addr[1] = ipb("10.0.0.3");
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	ck_assert_ptr_null(zt_store_workload_by_ip(s, "", &b));
	w = zt_store_workload_by_ip(s, "", &c);
	ck_assert_ptr_nonnull(w);
	zt_workload_unref(w);
	p.w.network = "net1";
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	ck_assert_ptr_null(zt_store_workload_by_ip(s, "", &a));
	w = zt_store_workload_by_ip(s, "net1", &a);
	ck_assert_str_eq(w->network, "net1");
	zt_workload_unref(w);
	ck_assert_uint_eq(counters(s).workloads, 1);

	/* Host-network workloads are found by uid only. */
	struct pod h;
	pod_init(&h, "host", "ns", "10.0.0.50");
	h.w.network_mode = ISTIO__WORKLOAD__NETWORK_MODE__HOST_NETWORK;
	ck_assert_int_eq(apply_wl(s, &h.w), 0);
	struct zt_ip hip = ip("10.0.0.50");
	ck_assert_ptr_null(zt_store_workload_by_ip(s, "", &hip));
	w = zt_store_workload_by_uid(s, "host");
	ck_assert_int_eq(w->network_mode, ZT_NETWORK_HOST);
	zt_workload_unref(w);

	ck_assert_int_eq(zt_store_remove_address(s, "u1"), 0);
	ck_assert_ptr_null(zt_store_workload_by_uid(s, "u1"));
	ck_assert_ptr_null(zt_store_workload_by_ip(s, "net1", &a));
	ck_assert_int_eq(zt_store_remove_address(s, "u1"), ZT_E_NOTFOUND);
	struct zt_store_counters cn = counters(s);
	ck_assert_uint_eq(cn.workloads, 1);
	ck_assert_uint_eq(cn.removed, 1);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_endpoints_are_staged_until_their_service_arrives)
{
	struct zt_store *s = zt_store_new();
	struct pod p;
	struct svc v;
	struct zt_ip vip = ip("10.96.0.1");
	struct zt_service *got;

	pod_init(&p, "u1", "ns", "10.0.0.1");
	pod_service(&p, "ns/web.ns", 80, 9090);
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	ck_assert_uint_eq(counters(s).staged_endpoints, 1);
	ck_assert_uint_eq(counters(s).services, 0);
	ck_assert_ptr_null(zt_store_service_by_key(s, "ns/web.ns"));

	svc_init(&v, "ns", "web.ns", "10.96.0.1");
	ck_assert_int_eq(apply_svc(s, &v.s), 0);
	struct zt_store_counters c = counters(s);
	ck_assert_uint_eq(c.staged_endpoints, 0);
	ck_assert_uint_eq(c.endpoints, 1);
	got = zt_store_service_by_vip(s, "", &vip, "ns");
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(got->n_endpoints, 1);
	ck_assert_str_eq(got->endpoints[0].workload->uid, "u1");
	ck_assert_uint_eq(got->endpoints[0].ports->ports[0].target_port, 9090);
	ck_assert(zt_service_endpoint_usable(got, &got->endpoints[0]));
	zt_service_unref(got);

	/* Removing the service stages its endpoints again; re-adding restores them. */
	ck_assert_int_eq(zt_store_remove_address(s, "ns/web.ns"), 0);
	ck_assert_ptr_null(zt_store_service_by_vip(s, "", &vip, NULL));
	ck_assert_uint_eq(counters(s).staged_endpoints, 1);
	ck_assert_int_eq(zt_store_remove_address(s, "ns/web.ns"), ZT_E_NOTFOUND);
	ck_assert_int_eq(apply_svc(s, &v.s), 0);
	got = zt_store_service_by_key(s, "ns/web.ns");
	ck_assert_uint_eq(got->n_endpoints, 1);
	zt_service_unref(got);

	/* Unhealthy endpoints stay listed but are usable only under ALLOW_ALL. */
	p.w.status = ISTIO__WORKLOAD__WORKLOAD_STATUS__UNHEALTHY;
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	got = zt_store_service_by_key(s, "ns/web.ns");
	ck_assert_uint_eq(got->n_endpoints, 1);
	ck_assert(!zt_service_endpoint_usable(got, &got->endpoints[0]));
	zt_service_unref(got);
	Istio__Workload__LoadBalancing lb = ISTIO__WORKLOAD__LOAD_BALANCING__INIT;
	lb.health_policy = ISTIO__WORKLOAD__LOAD_BALANCING__HEALTH_POLICY__ALLOW_ALL;
	v.s.load_balancing = &lb;
	ck_assert_int_eq(apply_svc(s, &v.s), 0);
	got = zt_store_service_by_key(s, "ns/web.ns");
	ck_assert(zt_service_endpoint_usable(got, &got->endpoints[0]));
	zt_service_unref(got);

	/* Removing the workload leaves an empty service and no staged entry. */
	ck_assert_int_eq(zt_store_remove_address(s, "u1"), 0);
	got = zt_store_service_by_key(s, "ns/web.ns");
	ck_assert_uint_eq(got->n_endpoints, 0);
	zt_service_unref(got);
	ck_assert_uint_eq(counters(s).staged_endpoints, 0);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_workload_update_replaces_its_endpoints_in_every_service)
{
	struct zt_store *s = zt_store_new();
	struct pod p, q;
	struct svc a, b;
	struct zt_service *sa, *sb;

	svc_init(&a, "ns", "a.ns", "10.96.0.1");
	svc_init(&b, "ns", "b.ns", "10.96.0.2");
	ck_assert_int_eq(apply_svc(s, &a.s), 0);
	ck_assert_int_eq(apply_svc(s, &b.s), 0);
	pod_init(&p, "u1", "ns", "10.0.0.1");
	pod_service(&p, "ns/a.ns", 80, 8080);
	pod_service(&p, "ns/b.ns", 80, 8081);
	pod_init(&q, "u2", "ns", "10.0.0.2");
	pod_service(&q, "ns/a.ns", 80, 8080);
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	ck_assert_int_eq(apply_wl(s, &q.w), 0);
	sa = zt_store_service_by_key(s, "ns/a.ns");
	ck_assert_uint_eq(sa->n_endpoints, 2);
	ck_assert_str_eq(sa->endpoints[0].workload->uid, "u1");
	ck_assert_str_eq(sa->endpoints[1].workload->uid, "u2");
	zt_service_unref(sa);

	/* u1 now lists only b, with a new port: gone from a, updated in b. */
	p.e[0] = p.e[1];
	p.w.n_services = 1;
	p.port[1].target_port = 9999;
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	sa = zt_store_service_by_key(s, "ns/a.ns");
	sb = zt_store_service_by_key(s, "ns/b.ns");
	ck_assert_uint_eq(sa->n_endpoints, 1);
	ck_assert_str_eq(sa->endpoints[0].workload->uid, "u2");
	ck_assert_uint_eq(sb->n_endpoints, 1);
	ck_assert_uint_eq(sb->endpoints[0].ports->ports[0].target_port, 9999);
	zt_service_unref(sa);
	zt_service_unref(sb);

	/* An update keeps the endpoint's place in the list. */
	pod_service(&p, "ns/a.ns", 80, 1);
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	q.w.name = "renamed";
	ck_assert_int_eq(apply_wl(s, &q.w), 0);
	sa = zt_store_service_by_key(s, "ns/a.ns");
	ck_assert_uint_eq(sa->n_endpoints, 2);
	ck_assert_str_eq(sa->endpoints[0].workload->uid, "u2");
	ck_assert_str_eq(sa->endpoints[0].workload->name, "renamed");
	ck_assert_str_eq(sa->endpoints[1].workload->uid, "u1");
	zt_service_unref(sa);
	ck_assert_uint_eq(counters(s).endpoints, 3);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_service_snapshot_held_by_reader_never_changes)
{
	struct zt_store *s = zt_store_new();
	struct pod p, q;
	struct svc v;
	struct zt_service *old, *cur;

	svc_init(&v, "ns", "web.ns", "10.96.0.1");
	ck_assert_int_eq(apply_svc(s, &v.s), 0);
	pod_init(&p, "u1", "ns", "10.0.0.1");
	pod_service(&p, "ns/web.ns", 80, 8080);
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	old = zt_store_service_by_key(s, "ns/web.ns");
	ck_assert_uint_eq(old->n_endpoints, 1);

	pod_init(&q, "u2", "ns", "10.0.0.2");
	pod_service(&q, "ns/web.ns", 80, 8080);
	ck_assert_int_eq(apply_wl(s, &q.w), 0);
	p.port[0].target_port = 1234;
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	v.port.target_port = 7;
	ck_assert_int_eq(apply_svc(s, &v.s), 0);
	ck_assert_int_eq(zt_store_remove_address(s, "u1"), 0);
	ck_assert_int_eq(zt_store_remove_address(s, "ns/web.ns"), 0);

	/* The reader's version still has its one endpoint, its port map and its definition. */
	ck_assert_uint_eq(old->n_endpoints, 1);
	ck_assert_str_eq(old->endpoints[0].workload->uid, "u1");
	ck_assert_uint_eq(old->endpoints[0].ports->ports[0].target_port, 8080);
	ck_assert_uint_eq(old->ports[0].target_port, 8080);
	ck_assert_str_eq(old->hostname, "web.ns");
	ck_assert_ptr_null(zt_store_service_by_key(s, "ns/web.ns"));
	ck_assert_int_eq(apply_svc(s, &v.s), 0);
	cur = zt_store_service_by_key(s, "ns/web.ns");
	ck_assert_ptr_ne(cur, old);
	ck_assert_uint_eq(cur->n_endpoints, 1);
	ck_assert_str_eq(cur->endpoints[0].workload->uid, "u2");
	zt_service_unref(cur);
	zt_store_free(s);
	/* The store is gone; the held version still owns its workload reference. */
	ck_assert_str_eq(old->endpoints[0].workload->ns, "ns");
	ck_assert_int_eq(zt_live_get("state_workload")->count, 1);
	zt_service_unref(old);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_ip_sharing_prefers_pod_hbone_then_pod_then_hbone)
{
	struct zt_store *s = zt_store_new();
	struct pod other, hbone, pod, podh;
	struct zt_ip a = ip("10.0.0.9");
	struct zt_workload *w;

	pod_init(&other, "x//WorkloadEntry/ns/other", "ns", "10.0.0.9");
	pod_init(&hbone, "x//WorkloadEntry/ns/hbone", "ns", "10.0.0.9");
	hbone.w.tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE;
	pod_init(&pod, "Kubernetes//Pod/ns/pod", "ns", "10.0.0.9");
	pod_init(&podh, "Kubernetes//Pod/ns/podh", "ns", "10.0.0.9");
	podh.w.tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE;
	ck_assert_int_eq(apply_wl(s, &other.w), 0);
	ck_assert_int_eq(apply_wl(s, &hbone.w), 0);
	ck_assert_int_eq(apply_wl(s, &pod.w), 0);
	ck_assert_int_eq(apply_wl(s, &podh.w), 0);

	static const char *const order[] = {"Kubernetes//Pod/ns/podh", "Kubernetes//Pod/ns/pod",
	                                    "x//WorkloadEntry/ns/hbone",
	                                    "x//WorkloadEntry/ns/other"};
	for (size_t i = 0; i < 4; i++) {
		w = zt_store_workload_by_ip(s, "", &a);
		ck_assert_ptr_nonnull(w);
		ck_assert_str_eq(w->uid, order[i]);
		zt_workload_unref(w);
		ck_assert_int_eq(zt_store_remove_address(s, order[i]), 0);
	}
	ck_assert_ptr_null(zt_store_workload_by_ip(s, "", &a));

	/* Equal rank: the first indexed wins, and an update keeps its place. */
	ck_assert_int_eq(apply_wl(s, &other.w), 0);
	other.w.tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__NONE;
	struct pod second;
	pod_init(&second, "x//WorkloadEntry/ns/second", "ns", "10.0.0.9");
	ck_assert_int_eq(apply_wl(s, &second.w), 0);
	other.w.name = "updated";
	ck_assert_int_eq(apply_wl(s, &other.w), 0);
	w = zt_store_workload_by_ip(s, "", &a);
	ck_assert_str_eq(w->name, "updated");
	zt_workload_unref(w);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_vip_lookup_prefers_caller_namespace_then_canonical)
{
	struct zt_store *s = zt_store_new();
	struct svc s1, s2, s3, priv, wide, narrow;
	struct zt_ip vip = ip("10.96.0.1"), vip2 = ip("10.96.0.2"), in = ip("10.1.2.3");
	struct zt_service *got;

	svc_init(&s1, "a", "x.a", "10.96.0.1");
	svc_init(&s2, "b", "x.b", "10.96.0.1");
	s2.s.canonical = true;
	svc_init(&s3, "c", "x.c", "10.96.0.1");
	ck_assert_int_eq(apply_svc(s, &s1.s), 0);
	ck_assert_int_eq(apply_svc(s, &s2.s), 0);
	ck_assert_int_eq(apply_svc(s, &s3.s), 0);

	static const struct {
		const char *caller, *want;
	} rows[] = {{"a", "a"}, {"b", "b"}, {"c", "c"}, {"z", "b"}, {NULL, "b"}};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		got = zt_store_service_by_vip(s, "", &vip, rows[i].caller);
		ck_assert_ptr_nonnull(got);
		ck_assert_str_eq(got->ns, rows[i].want);
		zt_service_unref(got);
	}
	ck_assert_ptr_null(zt_store_service_by_vip(s, "net9", &vip, "a"));

	/* Without a canonical one, the first indexed. */
	s2.s.canonical = false;
	ck_assert_int_eq(apply_svc(s, &s2.s), 0);
	got = zt_store_service_by_vip(s, "", &vip, "z");
	ck_assert_str_eq(got->ns, "a");
	zt_service_unref(got);

	/* NAMESPACE visibility hides a service from other namespaces. */
	svc_init(&priv, "d", "p.d", "10.96.0.2");
	priv.s.visibility = ISTIO__WORKLOAD__SERVICE__VISIBILITY__NAMESPACE;
	ck_assert_int_eq(apply_svc(s, &priv.s), 0);
	got = zt_store_service_by_vip(s, "", &vip2, "d");
	ck_assert_ptr_nonnull(got);
	zt_service_unref(got);
	ck_assert_ptr_null(zt_store_service_by_vip(s, "", &vip2, "e"));
	got = zt_store_service_by_vip(s, "", &vip2, NULL);
	ck_assert_ptr_nonnull(got);
	zt_service_unref(got);

	/* CIDR VIPs: same namespace first, then the longest prefix; exact VIPs win. */
	svc_init(&wide, "a", "wide.a", "10.0.0.0");
	wide.va.prefix_case = ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH;
	wide.va.length = 8;
	svc_init(&narrow, "b", "narrow.b", "10.1.0.0");
	narrow.va.prefix_case = ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX_LENGTH;
	narrow.va.length = 16;
	ck_assert_int_eq(apply_svc(s, &wide.s), 0);
	ck_assert_int_eq(apply_svc(s, &narrow.s), 0);
	got = zt_store_service_by_vip(s, "", &in, "a");
	ck_assert_str_eq(got->hostname, "wide.a");
	zt_service_unref(got);
	got = zt_store_service_by_vip(s, "", &in, "z");
	ck_assert_str_eq(got->hostname, "narrow.b");
	zt_service_unref(got);
	got = zt_store_service_by_vip(s, "", &vip, "a");
	ck_assert_str_eq(got->hostname, "x.a");
	zt_service_unref(got);
	/* Replacing the service re-indexes its CIDR. */
	narrow.va.length = 24;
	narrow.va.address = ipb("10.2.0.0");
	ck_assert_int_eq(apply_svc(s, &narrow.s), 0);
	got = zt_store_service_by_vip(s, "", &in, "z");
	ck_assert_str_eq(got->hostname, "wide.a");
	zt_service_unref(got);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

/* ---- policies and watchers ---------------------------------------------------------------- */

static void policy_msg(Istio__Security__Authorization *a, const char *ns, const char *name,
                       Istio__Security__Scope scope)
{
	*a = (Istio__Security__Authorization)ISTIO__SECURITY__AUTHORIZATION__INIT;
	a->namespace_ = (char *)ns;
	a->name = (char *)name;
	a->scope = scope;
}

static int collect_key(struct zt_policy *p, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 256 - n, "%s%s", n ? "," : "", p->key);
	return 0;
}

START_TEST(state_policies_are_selected_by_scope)
{
	struct zt_store *s = zt_store_new();
	Istio__Security__Authorization g, n1, n2, sel, other;
	struct pod p;
	char keys[256] = "";
	char *pols[] = {"ns/sel", "ns/missing", "ns/n1", "ns/sel", "other/other"};

	policy_msg(&g, "istio-system", "g", ISTIO__SECURITY__SCOPE__GLOBAL);
	policy_msg(&n1, "ns", "n1", ISTIO__SECURITY__SCOPE__NAMESPACE);
	policy_msg(&n2, "ns2", "n2", ISTIO__SECURITY__SCOPE__NAMESPACE);
	policy_msg(&sel, "ns", "sel", ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR);
	policy_msg(&other, "other", "other", ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR);
	ck_assert_int_eq(apply_pol(s, &g), 0);
	ck_assert_int_eq(apply_pol(s, &n1), 0);
	ck_assert_int_eq(apply_pol(s, &n2), 0);
	ck_assert_int_eq(apply_pol(s, &sel), 0);
	ck_assert_int_eq(apply_pol(s, &other), 0);
	pod_init(&p, "u1", "ns", NULL);
	p.w.authorization_policies = pols;
	p.w.n_authorization_policies = 5;
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	struct zt_workload *w = zt_store_workload_by_uid(s, "u1");
	zt_store_foreach_policy_for(s, w, collect_key, keys);
	ck_assert_str_eq(keys, "istio-system/g,ns/n1,ns/sel,other/other");

	/* A scope change moves the policy between indexes; removal drops it. */
	policy_msg(&n1, "ns", "n1", ISTIO__SECURITY__SCOPE__WORKLOAD_SELECTOR);
	ck_assert_int_eq(apply_pol(s, &n1), 0);
	ck_assert_int_eq(zt_store_remove_authorization(s, "istio-system/g"), 0);
	ck_assert_int_eq(zt_store_remove_authorization(s, "istio-system/g"), ZT_E_NOTFOUND);
	keys[0] = '\0';
	zt_store_foreach_policy_for(s, w, collect_key, keys);
	ck_assert_str_eq(keys, "ns/sel,ns/n1,other/other");
	zt_workload_unref(w);
	ck_assert_uint_eq(counters(s).policies, 4);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

struct events {
	struct zt_store *store;
	int n;
	enum zt_store_event_kind kind[16];
	char key[16][64];
	struct zt_workload *old_w[16], *new_w[16];
	struct zt_policy *old_p[16], *new_p[16];
	int nested_rc;
	bool unwatch_self;
};

static void on_event(struct zt_store *store, const struct zt_store_event *ev, void *arg)
{
	struct events *e = arg;
	int i = e->n++;
	struct pod p;

	ck_assert_ptr_eq(store, e->store);
	e->kind[i] = ev->kind;
	snprintf(e->key[i], sizeof(e->key[i]), "%s", ev->key);
	e->old_w[i] = zt_workload_ref(ev->old_workload);
	e->new_w[i] = zt_workload_ref(ev->new_workload);
	e->old_p[i] = zt_policy_ref(ev->old_policy);
	e->new_p[i] = zt_policy_ref(ev->new_policy);
	/* The store is already updated, and refuses changes from here. */
	if (ev->new_workload) {
		struct zt_workload *w = zt_store_workload_by_uid(store, ev->key);
		ck_assert_ptr_eq(w, ev->new_workload);
		zt_workload_unref(w);
	}
	pod_init(&p, "nested", "ns", NULL);
	e->nested_rc = apply_wl(store, &p.w);
	if (e->unwatch_self)
		ck_assert_int_eq(zt_store_unwatch(store, on_event, arg), 0);
}

static void events_clear(struct events *e)
{
	for (int i = 0; i < e->n; i++) {
		zt_workload_unref(e->old_w[i]);
		zt_workload_unref(e->new_w[i]);
		zt_policy_unref(e->old_p[i]);
		zt_policy_unref(e->new_p[i]);
	}
}

START_TEST(state_watchers_see_old_and_new_objects)
{
	struct zt_store *s = zt_store_new();
	struct events e = {.store = s};
	struct pod p;
	Istio__Security__Authorization a;

	zt_store_watch(s, on_event, &e);
	pod_init(&p, "u1", "ns", "10.0.0.1");
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	p.w.name = "v2";
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	ck_assert_int_eq(zt_store_remove_address(s, "u1"), 0);
	policy_msg(&a, "ns", "p", ISTIO__SECURITY__SCOPE__NAMESPACE);
	ck_assert_int_eq(apply_pol(s, &a), 0);
	a.action = ISTIO__SECURITY__ACTION__DENY;
	ck_assert_int_eq(apply_pol(s, &a), 0);
	ck_assert_int_eq(zt_store_remove_authorization(s, "ns/p"), 0);
	/* Rejected and unknown-name changes fire nothing. */
	p.w.uid = "";
	ck_assert_int_ne(apply_wl(s, &p.w), 0);
	ck_assert_int_eq(zt_store_remove_address(s, "nope"), ZT_E_NOTFOUND);

	ck_assert_int_eq(e.n, 6);
	ck_assert_int_eq(e.nested_rc, ZT_E_STATE);
	ck_assert_int_eq(e.kind[0], ZT_STORE_WORKLOAD_ADDED);
	ck_assert_ptr_null(e.old_w[0]);
	ck_assert_str_eq(e.new_w[0]->name, "pod");
	ck_assert_int_eq(e.kind[1], ZT_STORE_WORKLOAD_CHANGED);
	ck_assert_ptr_eq(e.old_w[1], e.new_w[0]);
	ck_assert_str_eq(e.old_w[1]->name, "pod");
	ck_assert_str_eq(e.new_w[1]->name, "v2");
	ck_assert_int_eq(e.kind[2], ZT_STORE_WORKLOAD_REMOVED);
	ck_assert_ptr_eq(e.old_w[2], e.new_w[1]);
	ck_assert_ptr_null(e.new_w[2]);
	ck_assert_str_eq(e.key[2], "u1");
	ck_assert_int_eq(e.kind[3], ZT_STORE_POLICY_CHANGED);
	ck_assert_ptr_null(e.old_p[3]);
	ck_assert_int_eq(e.new_p[3]->action, ZT_POLICY_ALLOW);
	ck_assert_int_eq(e.kind[4], ZT_STORE_POLICY_CHANGED);
	ck_assert_ptr_eq(e.old_p[4], e.new_p[3]);
	ck_assert_int_eq(e.new_p[4]->action, ZT_POLICY_DENY);
	ck_assert_int_eq(e.kind[5], ZT_STORE_POLICY_CHANGED);
	ck_assert_ptr_null(e.new_p[5]);
	ck_assert_str_eq(e.key[5], "ns/p");
	ck_assert_uint_eq(counters(s).workloads, 0);

	/* A watcher may remove itself; later changes reach nobody. */
	e.unwatch_self = true;
	p.w.uid = "u2";
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	ck_assert_int_eq(e.n, 7);
	p.w.uid = "u3";
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	ck_assert_int_eq(e.n, 7);
	ck_assert_int_eq(zt_store_unwatch(s, on_event, &e), ZT_E_NOTFOUND);
	events_clear(&e);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

/* ---- dump --------------------------------------------------------------------------------- */

/* zt_store_write_part writes the arrays of zt_store_dump, in order, one object per line. */
static void assert_parts_written_as_dump(const struct zt_store *s, const json_t *d)
{
	static const char *const keys[] = {"workloads", "services", "policies"};

	for (int part = ZT_DUMP_WORKLOADS; part <= ZT_DUMP_POLICIES; part++) {
		const json_t *want = json_object_get(d, keys[part]);
		struct zt_buf out;
		json_error_t jerr;
		json_t *got;
		char *text, *line, *save = NULL;
		size_t i = 0;

		zt_buf_init(&out, 0);
		ck_assert_int_eq(zt_store_write_part(s, part, &out, "  "), 0);
		text = strndup((const char *)zt_buf_data(&out), zt_buf_len(&out));
		got = json_loads(text, 0, &jerr);
		ck_assert_msg(got && json_equal(got, want), "%s: %s", keys[part], text);
		json_decref(got);
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			size_t len = strlen(line);
			if (!strcmp(line, "[") || !strcmp(line, "  ]") || !strcmp(line, "[]"))
				continue;
			ck_assert_msg(!strncmp(line, "    {", 5), "%s", line);
			if (line[len - 1] == ',')
				line[len - 1] = '\0';
			got = json_loads(line, 0, &jerr);
			ck_assert_msg(got && json_equal(got, json_array_get(want, i)), "%s", line);
			json_decref(got);
			i++;
		}
		ck_assert_uint_eq(i, json_array_size(want));
		free(text);
		zt_buf_clear(&out);
	}
}

START_TEST(state_dump_writes_local_config_shapes)
{
	struct zt_store *s = zt_store_new();
	struct pod p;
	struct svc v;
	Istio__Workload__NetworkAddress wpa = ISTIO__WORKLOAD__NETWORK_ADDRESS__INIT;
	Istio__Workload__GatewayAddress wp = ISTIO__WORKLOAD__GATEWAY_ADDRESS__INIT;
	Istio__Security__Authorization a;
	Istio__Security__Rule r = ISTIO__SECURITY__RULE__INIT, *rules[] = {&r};
	Istio__Security__Clause c = ISTIO__SECURITY__CLAUSE__INIT, *clauses[] = {&c};
	Istio__Security__Match m = ISTIO__SECURITY__MATCH__INIT, *matches[] = {&m};
	Istio__Security__StringMatch ex = ISTIO__SECURITY__STRING_MATCH__INIT;
	Istio__Security__StringMatch pres = ISTIO__SECURITY__STRING_MATCH__INIT,
	                             *sm[] = {&ex, &pres};
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
	Istio__Security__Address ad = ISTIO__SECURITY__ADDRESS__INIT, *ads[] = {&ad};
	uint32_t ports[] = {9999};

	pod_init(&p, "Kubernetes//Pod/ns/a", "ns", "10.0.0.1");
	pod_service(&p, "ns/web.ns", 80, 8080);
	wpa.network = "net";
	wpa.address = ipb("10.0.0.9");
	wp.destination_case = ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS;
	wp.address = &wpa;
	wp.hbone_mtls_port = 15008;
	p.w.waypoint = &wp;
	p.w.tunnel_protocol = ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE;
	ck_assert_int_eq(apply_wl(s, &p.w), 0);
	svc_init(&v, "ns", "web.ns", "10.96.0.1");
	ck_assert_int_eq(apply_svc(s, &v.s), 0);
	policy_msg(&a, "ns", "deny", ISTIO__SECURITY__SCOPE__NAMESPACE);
	a.action = ISTIO__SECURITY__ACTION__DENY;
	ex.match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_EXACT;
	ex.exact = "cluster.local/ns/x/sa/y";
	pres.match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE;
	pres.presence = &empty;
	ad.address = ipb("10.0.0.0");
	ad.length = 8;
	m.principals = sm;
	m.n_principals = 2;
	m.source_ips = ads;
	m.n_source_ips = 1;
	m.not_destination_ports = ports;
	m.n_not_destination_ports = 1;
	c.matches = matches;
	c.n_matches = 1;
	r.clauses = clauses;
	r.n_clauses = 1;
	a.rules = rules;
	a.n_rules = 1;
	ck_assert_int_eq(apply_pol(s, &a), 0);

	json_t *d = zt_store_dump(s);
	char *text = json_dumps(d, JSON_COMPACT);
	assert_parts_written_as_dump(s, d);
	json_t *w = json_array_get(json_object_get(d, "workloads"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(w, "uid")), "Kubernetes//Pod/ns/a");
	ck_assert_str_eq(json_string_value(json_object_get(w, "protocol")), "HBONE");
	ck_assert_str_eq(json_string_value(json_object_get(w, "serviceAccount")), "default");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(w, "workloadIps"), 0)),
	                 "10.0.0.1");
	ck_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(w, "waypoint"), "destination")),
	        "net/10.0.0.9");
	ck_assert_int_eq(
	        json_integer_value(json_object_get(
	                json_object_get(json_object_get(w, "services"), "ns/web.ns"), "80")),
	        8080);
	ck_assert_ptr_null(json_object_get(w, "applicationTunnel"));
	json_t *sv = json_array_get(json_object_get(d, "services"), 0);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(sv, "vips"), 0)),
	                 "/10.96.0.1");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(sv, "ports"), "80")),
	                 8080);
	ck_assert_msg(strstr(text, "\"policies\":[{\"name\":\"deny\",\"namespace\":\"ns\","
	                           "\"scope\":\"Namespace\",\"action\":\"Deny\",\"dryRun\":false,"
	                           "\"rules\":[[[{\"principals\":[{\"Exact\":\"cluster.local/ns/x/"
	                           "sa/y\"},\"Presence\"],\"sourceIps\":[\"10.0.0.0/8\"],"
	                           "\"notDestinationPorts\":[9999]}]]]}]"),
	              "%s", text);
	free(text);
	json_decref(d);
	d = zt_store_counters_json(s);
	text = json_dumps(d, JSON_COMPACT);
	ck_assert_str_eq(text, "{\"workloads\":1,\"services\":1,\"policies\":1,\"endpoints\":1,"
	                       "\"stagedEndpoints\":0,\"applied\":3,\"rejected\":0,\"removed\":0}");
	free(text);
	json_decref(d);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

/* ---- local config ------------------------------------------------------------------------- */

static char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/zt-local-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static int load_text(struct zt_store *s, const char *text)
{
	char *path = write_tmp(text);
	int rc = zt_local_xds_load(s, path, err, sizeof(err));

	unlink(path);
	return rc;
}

START_TEST(state_local_example_file_loads_every_field)
{
	struct zt_store *s = zt_store_new();
	struct zt_ip lo = ip("127.0.0.1"), v6 = ip("::1"), vip = ip("10.96.0.1"),
	             in = ip("127.20.3.4");
	struct zt_workload *w;
	struct zt_service *svc;
	struct zt_policy *p;

	ck_assert_msg(zt_local_xds_load(s, EXAMPLE, err, sizeof(err)) == 0, "%s", err);
	struct zt_store_counters c = counters(s);
	ck_assert_uint_eq(c.workloads, 2);
	ck_assert_uint_eq(c.services, 1);
	ck_assert_uint_eq(c.policies, 2);
	ck_assert_uint_eq(c.endpoints, 2);

	w = zt_store_workload_by_ip(s, "", &v6);
	ck_assert_str_eq(w->uid, "Kubernetes//Pod/default/local");
	ck_assert_str_eq(w->service_account, "local");
	ck_assert_int_eq(w->tunnel_protocol, ZT_TUNNEL_HBONE);
	ck_assert_str_eq(w->node, "node-a");
	ck_assert_int_eq(w->waypoint->kind, ZT_GATEWAY_ADDRESS);
	ck_assert_int_eq(w->network_gateway->kind, ZT_GATEWAY_HOSTNAME);
	ck_assert_uint_eq(w->network_gateway->hbone_mtls_port, 15009);
	ck_assert_int_eq(w->application_tunnel.protocol, ZT_APP_TUNNEL_PROXY);
	ck_assert_uint_eq(w->application_tunnel.port, 15088);
	ck_assert_str_eq(w->authorization_policies[0], "default/allow-sleep");
	ck_assert_str_eq(w->cluster_id, "cluster-1");
	ck_assert_str_eq(w->locality.subzone, "rack-7");
	ck_assert_str_eq(w->canonical_revision, "v1");
	ck_assert_str_eq(w->workload_name, "local-deploy");
	ck_assert_uint_eq(w->capacity, 3);
	const struct zt_workload_service *ws = zt_workload_service(w, "default/example.com");
	ck_assert_uint_eq(ws->n_ports, 2);
	ck_assert_uint_eq(ws->ports[1].service_port, 443);
	ck_assert_uint_eq(ws->ports[1].target_port, 8443);
	ck_assert_int_eq(ws->ports[1].app_protocol, ZT_APP_PROTOCOL_HTTP2);
	zt_workload_unref(w);
	w = zt_store_workload_by_uid(s, "Kubernetes//Pod/default/remote");
	ck_assert_int_eq(w->network_mode, ZT_NETWORK_HOST);
	ck_assert_int_eq(w->status, ZT_WORKLOAD_UNHEALTHY);
	ck_assert_int_eq(w->workload_type, ZT_WORKLOAD_POD);
	ck_assert_uint_eq(w->capacity, 1);
	zt_workload_unref(w);
	/* Host network: 127.0.0.2 is not indexed, 127.0.0.1 is the local pod. */
	w = zt_store_workload_by_ip(s, "", &lo);
	ck_assert_str_eq(w->name, "local");
	zt_workload_unref(w);

	svc = zt_store_service_by_vip(s, "net2", &vip, "default");
	ck_assert_ptr_nonnull(svc);
	ck_assert_uint_eq(svc->n_vips, 3);
	ck_assert_uint_eq(svc->n_endpoints, 2);
	ck_assert_uint_eq(svc->n_weighted_waypoints, 2);
	ck_assert_uint_eq(svc->weighted_waypoints[1].destination.hbone_mtls_port, 15008);
	ck_assert_uint_eq(svc->weighted_waypoints[1].weight, 20);
	ck_assert_uint_eq(svc->load_balancing.n_routing_preference, 6);
	ck_assert_int_eq(svc->load_balancing.routing_preference[0], ZT_LB_SCOPE_NETWORK);
	ck_assert_int_eq(svc->load_balancing.mode, ZT_LB_MODE_FAILOVER);
	ck_assert_int_eq(svc->load_balancing.health_policy, ZT_LB_ALLOW_ALL);
	ck_assert_int_eq(svc->ip_families, ZT_IP_FAMILIES_DUAL);
	ck_assert(svc->canonical);
	ck_assert_int_eq(svc->waypoint.kind, ZT_GATEWAY_HOSTNAME);
	ck_assert_str_eq(svc->subject_alt_names[0], "spiffe://cluster.local/ns/default/sa/extra");
	zt_service_unref(svc);
	svc = zt_store_service_by_vip(s, "", &in, NULL);
	ck_assert_ptr_nonnull(svc);
	zt_service_unref(svc);

	p = zt_store_policy_by_key(s, "default/allow-sleep");
	ck_assert_int_eq(p->scope, ZT_POLICY_WORKLOAD_SELECTOR);
	ck_assert_uint_eq(p->n_rules, 2);
	ck_assert_uint_eq(p->rules[0].n_clauses, 2);
	ck_assert_uint_eq(p->rules[0].clauses[0].n_matches, 2);
	const struct zt_policy_match *m = &p->rules[0].clauses[0].matches[0];
	ck_assert_int_eq(m->principals[1].kind, ZT_MATCH_PREFIX);
	ck_assert_int_eq(m->namespaces[0].kind, ZT_MATCH_PRESENCE);
	ck_assert_uint_eq(p->rules[0].clauses[0].matches[1].source_ips[1].prefix, 32);
	ck_assert_uint_eq(p->rules[1].clauses[0].matches[0].n_not_service_accounts, 1);
	zt_policy_unref(p);
	p = zt_store_policy_by_key(s, "istio-system/deny-9999");
	ck_assert(p->dry_run);
	ck_assert_int_eq(p->scope, ZT_POLICY_GLOBAL);
	zt_policy_unref(p);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_local_dump_loads_back_to_the_same_state)
{
	struct zt_store *s = zt_store_new(), *t = zt_store_new();
	json_t *d1, *d2;
	char *text, *path;

	ck_assert_msg(zt_local_xds_load(s, EXAMPLE, err, sizeof(err)) == 0, "%s", err);
	d1 = zt_store_dump(s);
	assert_parts_written_as_dump(s, d1);
	text = json_dumps(d1, JSON_INDENT(1));
	path = write_tmp(text);
	ck_assert_msg(zt_local_xds_load(t, path, err, sizeof(err)) == 0, "%s", err);
	unlink(path);
	d2 = zt_store_dump(t);
	ck_assert_msg(json_equal(d1, d2), "%s", text);
	free(text);
	json_decref(d1);
	json_decref(d2);
	zt_store_free(s);
	zt_store_free(t);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_local_errors_name_file_line_and_column)
{
	struct zt_store *s = zt_store_new();
	static const struct {
		const char *text, *want;
	} rows[] = {
	        {"workloads:\n- uid: a\n  namespace: ns\n  colour: red\n",
	         ":4:3: workload: unknown field \"colour\""},
	        {"workloads:\n- uid: a\n  workloadIps: [\"10.0.0.1\", \"10.0.0.300\"]\n",
	         ":3:29: workloadIps: bad IP address \"10.0.0.300\""},
	        {"services:\n- namespace: ns\n  hostname: h\n  vips: [\"/10.0.0.1\", "
	         "\"net/1.2.3\"]\n",
	         ":4:23: vips: bad IP address \"net/1.2.3\""},
	        {"extra: 1\n", ":1:1: local config: unknown field \"extra\""},
	        {"workloads: {}\n", "workloads: expected a sequence, got mapping"},
	        {"workloads:\n- uid: a\n  protocol: MTLS\n",
	         ":3:13: protocol: \"MTLS\" is not one of TCP|HBONE"},
	        {"workloads:\n- uid: a\n  services: {\"ns/x\": {70000: 1}}\n",
	         "service port: 70000 out of range 1..65535"},
	        {"workloads:\n- uid: a\n  waypoint: {hboneMtlsPort: 1}\n",
	         ":3:13: waypoint: missing destination"},
	        {"workloads:\n- name: a\n", "workload without uid"},
	        {"workloads:\n- uid: a\n- uid: a\n", ":3:3: duplicate resource \"a\""},
	        {"policies:\n- name: p\n  rules: [[[{principals: [{Regex: x}]}]]]\n",
	         "string match: unknown field \"Regex\""},
	        {"policies:\n- name: p\n  rules: [[[{sourceIps: [\"10.0.0.0/33\"]}]]]\n",
	         "bad IP address or CIDR \"10.0.0.0/33\""},
	        {"policies:\n- name: p\n  rules: [{}]\n",
	         ":3:11: rule (a list of clauses): expected a sequence"},
	        {"policies:\n- name: p\n  rules: [[{}]]\n",
	         ":3:12: clause (a list of matches): expected"},
	        {"policies:\n- name: p\n  dryRun: maybe\n",
	         ":3:11: dryRun: expected true or false, got \"maybe\""},
	        {"policies:\n- {name: p, action: Deny}\n",
	         ":2:3: policy p needs a scope and an action"},
	        {"workloads:\n- uid: a\n  namespace: ns\n  serviceAccount: \"bad sa\"\n",
	         ":2: a: no valid identity"},
	        {"a: [\n", "did not find expected node"},
	        {"---\n---\n", "expected one YAML document"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int rc = load_text(s, rows[i].text);
		ck_assert_msg(rc != 0, "row %zu accepted", i);
		ck_assert_msg(strstr(err, rows[i].want), "row %zu: \"%s\" lacks \"%s\"", i, err,
		              rows[i].want);
		ck_assert_msg(strncmp(err, "/tmp/zt-local-", 14) == 0, "row %zu: %s", i, err);
	}
	ck_assert_uint_eq(counters(s).workloads, 0);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

static const char *const config_a =
        "workloads:\n"
        "- {uid: w1, namespace: ns, workloadIps: [\"10.0.0.1\"], services: {\"ns/s1\": {80: "
        "8080}}}\n"
        "- {uid: w2, namespace: ns, workloadIps: [\"10.0.0.2\"]}\n"
        "services:\n"
        "- {name: s1, namespace: ns, hostname: s1, vips: [\"/10.96.0.1\"], ports: {80: 8080}}\n"
        "policies:\n"
        "- {name: p1, namespace: ns, scope: Namespace, action: Deny, rules: [[]]}\n";
static const char *const config_b =
        "workloads:\n"
        "- {uid: w2, name: changed, namespace: ns, workloadIps: [\"10.0.0.2\"]}\n"
        "- {uid: w3, namespace: ns, workloadIps: [\"10.0.0.3\"]}\n"
        "policies:\n"
        "- {name: p2, namespace: ns, scope: Namespace, action: Allow}\n";

START_TEST(state_local_reload_replaces_the_whole_state)
{
	struct zt_store *s = zt_store_new();
	struct events e = {.store = s};
	struct zt_workload *w;
	struct zt_policy *p;

	ck_assert_msg(load_text(s, config_a) == 0, "%s", err);
	ck_assert_uint_eq(counters(s).workloads, 2);
	zt_store_watch(s, on_event, &e);
	ck_assert_msg(load_text(s, config_b) == 0, "%s", err);

	struct zt_store_counters c = counters(s);
	ck_assert_uint_eq(c.workloads, 2);
	ck_assert_uint_eq(c.services, 0);
	ck_assert_uint_eq(c.policies, 1);
	ck_assert_uint_eq(c.staged_endpoints, 0);
	ck_assert_ptr_null(zt_store_workload_by_uid(s, "w1"));
	ck_assert_ptr_null(zt_store_service_by_key(s, "ns/s1"));
	ck_assert_ptr_null(zt_store_policy_by_key(s, "ns/p1"));
	w = zt_store_workload_by_uid(s, "w2");
	ck_assert_str_eq(w->name, "changed");
	zt_workload_unref(w);
	p = zt_store_policy_by_key(s, "ns/p2");
	ck_assert_ptr_nonnull(p);
	zt_policy_unref(p);

	/* Watchers saw each change: w2 changed, w3 added, p2 added, w1 removed, p1 removed. */
	ck_assert_int_eq(e.n, 5);
	ck_assert_int_eq(e.kind[0], ZT_STORE_WORKLOAD_CHANGED);
	ck_assert_str_eq(e.key[0], "w2");
	ck_assert_int_eq(e.kind[1], ZT_STORE_WORKLOAD_ADDED);
	ck_assert_str_eq(e.key[1], "w3");
	ck_assert_int_eq(e.kind[2], ZT_STORE_POLICY_CHANGED);
	ck_assert_int_eq(e.kind[3], ZT_STORE_WORKLOAD_REMOVED);
	ck_assert_str_eq(e.key[3], "w1");
	ck_assert_int_eq(e.kind[4], ZT_STORE_POLICY_CHANGED);
	ck_assert_ptr_null(e.new_p[4]);
	events_clear(&e);

	/* An empty file empties the store. */
	zt_store_unwatch(s, on_event, &e);
	ck_assert_msg(load_text(s, "") == 0, "%s", err);
	c = counters(s);
	ck_assert_uint_eq(c.workloads + c.services + c.policies, 0);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(state_local_broken_reload_keeps_the_previous_state)
{
	struct zt_store *s = zt_store_new();
	json_t *before, *after;

	ck_assert_msg(load_text(s, config_a) == 0, "%s", err);
	before = zt_store_dump(s);
	/* A syntax error, a shape error late in the file, and a resource the store rejects
	 * after earlier ones in the same file were fine. */
	ck_assert_int_ne(load_text(s, "workloads: [\n"), 0);
	ck_assert_int_ne(load_text(s, "workloads:\n- {uid: w9, namespace: ns}\npolicies: 3\n"), 0);
	ck_assert_int_eq(load_text(s, "workloads:\n- {uid: w9, namespace: ns}\n"
	                              "- {uid: w10, namespace: ns, trustDomain: \"BAD TD\"}\n"),
	                 ZT_E_PROTO);
	ck_assert_msg(strstr(err, ":3: w10: no valid identity"), "%s", err);
	ck_assert_int_lt(zt_local_xds_load(s, "/nonexistent/ztunnel.yaml", err, sizeof(err)), 0);
	after = zt_store_dump(s);
	ck_assert(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	zt_store_free(s);
	fx_assert_no_live();
}
END_TEST

START_TEST(service_target_port_prefers_the_endpoint_mapping_then_the_service)
{
	struct zt_port sports[] = {{.service_port = 80, .target_port = 8080},
	                           {.service_port = 81, .target_port = 0}};
	struct zt_port wports[] = {{.service_port = 80, .target_port = 9090},
	                           {.service_port = 82, .target_port = 0}};
	struct zt_service svc = {.ports = sports, .n_ports = 2};
	struct zt_workload_service ws = {.key = "ns/h", .ports = wports, .n_ports = 2};
	bool known = false;

	ck_assert_uint_eq(zt_service_target_port(&svc, &ws, 80, &known), 9090);
	ck_assert(known);
	ck_assert_uint_eq(zt_service_target_port(&svc, NULL, 80, &known), 8080);
	ck_assert_uint_eq(zt_service_target_port(&svc, &ws, 81, &known), 0); /* named port */
	ck_assert(known);
	ck_assert_uint_eq(zt_service_target_port(&svc, &ws, 82, &known), 0);
	ck_assert(known); /* listed by the endpoint only */
	ck_assert_uint_eq(zt_service_target_port(&svc, &ws, 83, &known), 0);
	ck_assert(!known);
	ck_assert_uint_eq(zt_service_target_port(NULL, &ws, 80, NULL), 9090);
}
END_TEST

Suite *state_suite(void);
Suite *state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, state_workload_decodes_every_field);
	tcase_add_test(tc, state_workload_defaults_apply_to_empty_fields);
	tcase_add_test(tc, state_workload_name_same_as_the_name_is_the_name);
	tcase_add_test(tc, state_service_decodes_every_field);
	tcase_add_test(tc, state_policy_decodes_every_field);
	tcase_add_test(tc, state_rejects_invalid_workloads_with_reasons);
	tcase_add_test(tc, state_rejects_invalid_services_policies_and_bytes);
	tcase_add_test(tc, state_indexes_follow_add_update_remove);
	tcase_add_test(tc, state_endpoints_are_staged_until_their_service_arrives);
	tcase_add_test(tc, state_workload_update_replaces_its_endpoints_in_every_service);
	tcase_add_test(tc, state_service_snapshot_held_by_reader_never_changes);
	tcase_add_test(tc, state_ip_sharing_prefers_pod_hbone_then_pod_then_hbone);
	tcase_add_test(tc, state_vip_lookup_prefers_caller_namespace_then_canonical);
	tcase_add_test(tc, state_policies_are_selected_by_scope);
	tcase_add_test(tc, state_watchers_see_old_and_new_objects);
	tcase_add_test(tc, state_dump_writes_local_config_shapes);
	tcase_add_test(tc, state_local_example_file_loads_every_field);
	tcase_add_test(tc, state_local_dump_loads_back_to_the_same_state);
	tcase_add_test(tc, state_local_errors_name_file_line_and_column);
	tcase_add_test(tc, state_local_reload_replaces_the_whole_state);
	tcase_add_test(tc, state_local_broken_reload_keeps_the_previous_state);
	tcase_add_test(tc, service_target_port_prefers_the_endpoint_mapping_then_the_service);
	suite_add_tcase(s, tc);
	return s;
}
