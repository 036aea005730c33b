/* The waypoint's authorization decision (sim/sim-waypoint/authz), fed the way sim-waypoint is:
 * AuthorizationPolicy YAML through fake-istiod's conversion into a ztunnel.waypoint.Waypoint,
 * then one request. A table covers every match kind (principals, namespaces, service
 * accounts, ipBlocks, ports, methods, paths (exact, prefix, suffix, any), hosts, headers, when
 * keys), deny before allow, AUDIT, dry-run, Service-scoped binding and failing closed. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fake-istiod/waypoint.h"
#include "mesh_fixture.h"
#include "protocol/pb.h"
#include "sim/sim-waypoint/authz.h"

#define MESH                                                                                       \
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: "                         \
	"{istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}\n---\n"              \
	"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, "     \
	"namespace: shop}\nspec: {gatewayClassName: istio-waypoint}\n---\n"                        \
	"apiVersion: v1\nkind: Service\nmetadata: {name: cart, namespace: shop}\nspec: "           \
	"{clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}\n---\n"                          \
	"apiVersion: v1\nkind: Service\nmetadata: {name: pay, namespace: shop}\nspec: "            \
	"{clusterIP: 10.96.0.21, ports: [{name: http, port: 80}]}\n---\n"
#define AP(name, ns, body)                                                                         \
	"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " name      \
	", namespace: " ns "}\nspec: " body "\n---\n"
#define GW  "targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]"
#define SVC "targetRefs: [{kind: Service, group: '', name: cart}]"

static Ztunnel__Waypoint__Waypoint *waypoint_of(const char *policies)
{
	char yaml[8192];
	struct fi_mesh m;
	struct fi_resources r;
	ProtobufCMessage *msg = NULL;

	snprintf(yaml, sizeof(yaml), "%s%s", MESH, policies);
	fx_mesh_convert(yaml, &m, &r);
	ck_assert_uint_eq(r.n_waypoints, 1);
	ck_assert_str_eq(r.waypoints[0].name, "shop/waypoint");
	ck_assert_int_eq(zt_pb_unpack(&ztunnel__waypoint__waypoint__descriptor, r.waypoints[0].data,
	                              r.waypoints[0].len, 1u << 20, &msg),
	                 0);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	return (Ztunnel__Waypoint__Waypoint *)msg;
}

/* One row: policies, what differs from the default request, the verdict and its reason. */
struct row {
	const char *name;
	const char *policies;
	const char *principal, *method, *path, *host, *user, *src_ip, *service;
	int tcp; /* 1: no L7 attributes */
	bool allow;
	const char *reason; /* exact */
	const char *audit;  /* exact, "" when NULL */
};

static const struct row rows[] = {
        {"no policy allows", "", .allow = true, .reason = "no policy"},
        {"principal exact",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: {principals: "
            "[cluster.local/ns/frontend/sa/client]}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"principal exact miss",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: {principals: "
            "[cluster.local/ns/frontend/sa/other]}}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"principal prefix",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: {principals: "
            "['cluster.local/ns/frontend/*']}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"principal suffix",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: {principals: "
            "['*/sa/client']}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"principal any needs one",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: "
            "{principals: ['*']}}]}]}"),
         .principal = "", .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"notPrincipals",
         AP("d", "shop",
            "{" GW ", action: DENY, rules: [{from: [{source: "
            "{notPrincipals: ['*/sa/admin']}}]}]}"),
         .allow = false, .reason = "denied by shop/d"},
        {"namespaces",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: {namespaces: "
            "[frontend]}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"notNamespaces",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: {namespaces: "
            "['*'], notNamespaces: [frontend]}}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"serviceAccounts",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: "
            "{serviceAccounts: [frontend/client]}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"ipBlocks cidr",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: {ipBlocks: "
            "[10.244.1.0/24]}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"ipBlocks single miss",
         AP("p", "shop",
            "{" GW ", rules: [{from: [{source: {ipBlocks: "
            "[10.244.1.11]}}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"remoteIpBlocks",
         AP("d", "shop",
            "{" GW ", action: DENY, rules: [{from: [{source: "
            "{remoteIpBlocks: [10.244.2.0/24]}}]}]}"),
         .src_ip = "10.244.2.7", .allow = false, .reason = "denied by shop/d"},
        {"ports", AP("p", "shop", "{" GW ", rules: [{to: [{operation: {ports: ['80']}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"notPorts", AP("p", "shop", "{" GW ", rules: [{to: [{operation: {notPorts: ['80']}}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"methods",
         AP("d", "shop",
            "{" GW ", action: DENY, rules: [{to: [{operation: "
            "{methods: [POST, PUT]}}]}]}"),
         .method = "POST", .allow = false, .reason = "denied by shop/d"},
        {"methods miss",
         AP("d", "shop",
            "{" GW ", action: DENY, rules: [{to: [{operation: "
            "{methods: [POST]}}]}]}"),
         .allow = true, .reason = "no policy"},
        {"path exact",
         AP("p", "shop",
            "{" GW ", rules: [{to: [{operation: {paths: "
            "[/items/1]}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"path exact ignores query",
         AP("p", "shop",
            "{" GW ", rules: [{to: [{operation: {paths: "
            "[/items/1]}}]}]}"),
         .path = "/items/1?x=1", .allow = true, .reason = "allowed by shop/p"},
        {"path prefix",
         AP("p", "shop",
            "{" GW ", rules: [{to: [{operation: {paths: "
            "['/items/*']}}]}]}"),
         .path = "/admin", .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"path suffix",
         AP("p", "shop",
            "{" GW ", rules: [{to: [{operation: {paths: "
            "['*.png']}}]}]}"),
         .path = "/img/a.png", .allow = true, .reason = "allowed by shop/p"},
        {"path any", AP("p", "shop", "{" GW ", rules: [{to: [{operation: {paths: ['*']}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"notPaths",
         AP("d", "shop",
            "{" GW ", action: DENY, rules: [{to: [{operation: "
            "{notPaths: ['/items/*']}}]}]}"),
         .path = "/admin", .allow = false, .reason = "denied by shop/d"},
        {"hosts ignore case and port",
         AP("p", "shop",
            "{" GW ", rules: [{to: [{operation: "
            "{hosts: [CART.shop]}}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"hosts miss",
         AP("p", "shop", "{" GW ", rules: [{to: [{operation: {hosts: [pay.shop]}}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"header when",
         AP("p", "shop",
            "{" GW ", rules: [{when: [{key: 'request.headers[x-user]', "
            "values: [alice, bob]}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"header when miss",
         AP("p", "shop",
            "{" GW ", rules: [{when: [{key: "
            "'request.headers[x-user]', values: [bob]}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"header notValues",
         AP("d", "shop",
            "{" GW ", action: DENY, rules: [{when: [{key: "
            "'request.headers[x-user]', notValues: [alice]}]}]}"),
         .user = "mallory", .allow = false, .reason = "denied by shop/d"},
        {"when source.principal",
         AP("p", "shop",
            "{" GW ", rules: [{when: [{key: source.principal, "
            "values: ['cluster.local/ns/frontend/*']}]}]}"),
         .allow = true, .reason = "allowed by shop/p"},
        {"when source.namespace",
         AP("p", "shop",
            "{" GW ", rules: [{when: [{key: source.namespace, "
            "values: [backend]}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/p)"},
        {"deny before allow",
         AP("a", "shop", "{" GW ", rules: [{}]}")
                 AP("d", "shop",
                    "{" GW ", action: DENY, rules: [{to: [{operation: {methods: [GET]}}]}]}"),
         .allow = false, .reason = "denied by shop/d"},
        {"audit reports, does not decide", AP("au", "shop", "{" GW ", action: AUDIT, rules: [{}]}"),
         .allow = true, .reason = "no policy", .audit = "shop/au"},
        {"dry-run deny does not deny",
         "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, "
         "namespace: shop, annotations: {istio.io/dry-run: 'true'}}\nspec: {" GW
         ", action: DENY, rules: [{}]}\n---\n",
         .allow = true, .reason = "no policy"},
        {"empty rules allow nothing", AP("a", "shop", "{" GW "}"), .allow = false,
         .reason = "no ALLOW policy matched (shop/a)"},
        {"unevaluable allow fails closed",
         AP("a", "shop",
            "{" GW ", rules: [{from: [{source: "
            "{requestPrincipals: ['*']}}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/a)"},
        {"unevaluable deny matches without it",
         AP("d", "shop",
            "{" GW ", action: DENY, rules: [{when: [{key: 'request.auth.claims[iss]', "
            "values: [x]}], to: [{operation: {methods: [GET]}}]}]}"),
         .allow = false, .reason = "denied by shop/d"},
        {"http field on tcp: allow rule fails",
         AP("a", "shop",
            "{" GW ", rules: [{to: [{operation: "
            "{methods: [GET]}}]}]}"),
         .tcp = 1, .allow = false, .reason = "no ALLOW policy matched (shop/a)"},
        {"http field on tcp: deny rule ignores it",
         AP("d", "shop",
            "{" GW ", action: DENY, rules: [{to: [{operation: {paths: [/x], ports: ['80']}}]}]}"),
         .tcp = 1, .allow = false, .reason = "denied by shop/d"},
        {"service-bound policy applies to its service",
         AP("a", "shop", "{" SVC ", rules: [{from: [{source: {namespaces: [nobody]}}]}]}"),
         .allow = false, .reason = "no ALLOW policy matched (shop/a)"},
        {"service-bound policy skips other services",
         AP("a", "shop", "{" SVC ", rules: [{from: [{source: {namespaces: [nobody]}}]}]}"),
         .service = "shop/pay.shop.svc.cluster.local", .allow = true, .reason = "no policy"},
        {"gateway class from the root namespace",
         AP("root", "istio-system",
            "{targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: "
            "istio-waypoint}], action: DENY, rules: [{to: [{operation: {paths: ['/admin*']}}]}]}"),
         .path = "/admin/x", .allow = false, .reason = "denied by istio-system/root"},
        {"gateway class outside the root namespace is not bound",
         AP("root", "shop",
            "{targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: "
            "istio-waypoint}], action: DENY, rules: [{}]}"),
         .allow = true, .reason = "no policy"},
        {"selector policy is not the waypoint's",
         AP("sel", "shop", "{selector: {matchLabels: {app: x}}, action: DENY, rules: [{}]}"),
         .allow = true, .reason = "no policy"},
};

START_TEST(waypoint_authz_table)
{
	const struct row *r = &rows[_i];
	Ztunnel__Waypoint__Waypoint *w = waypoint_of(r->policies);
	struct wp_header h[] = {{"x-user", r->user ? r->user : "alice"}, {"accept", "*/*"}};
	struct wp_request rq = {
	        .principal = r->principal ? (r->principal[0] ? r->principal : NULL)
	                                  : "cluster.local/ns/frontend/sa/client",
	        .src_ns = "frontend",
	        .src_sa = "client",
	        .dst_port = 80,
	        .service = r->service ? r->service : "shop/cart.shop.svc.cluster.local",
	        .http = !r->tcp,
	        .method = r->method ? r->method : "GET",
	        .path = r->path ? r->path : "/items/1",
	        .host = r->host ? r->host : "cart.shop:80",
	        .headers = h,
	        .n_headers = 2,
	};
	struct wp_decision d;
	const char *ip = r->src_ip ? r->src_ip : "10.244.1.10";

	ck_assert_int_eq(zt_ip_parse(&rq.src_ip, ip, strlen(ip)), 0);
	ck_assert_int_eq(zt_ip_parse(&rq.dst_ip, "10.96.0.20", 10), 0);
	if (r->principal && !r->principal[0])
		rq.src_ns = rq.src_sa = NULL;
	ck_assert_msg(wp_authz_check(w, &rq, &d) == r->allow, "%s: got %s (%s)", r->name,
	              d.allow ? "allow" : "deny", d.reason);
	ck_assert_msg(!strcmp(d.reason, r->reason), "%s: reason '%s', want '%s'", r->name, d.reason,
	              r->reason);
	ck_assert_msg(!strcmp(d.audit, r->audit ? r->audit : ""), "%s: audit '%s'", r->name,
	              d.audit);
	zt_pb_free(&w->base);
}
END_TEST

START_TEST(waypoint_authz_dry_run_is_reported)
{
	Ztunnel__Waypoint__Waypoint *w = waypoint_of(
	        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, "
	        "namespace: shop, annotations: {istio.io/dry-run: 'true'}}\nspec: {" GW
	        ", action: DENY, rules: [{}]}\n---\n");
	struct wp_request rq = {.http = true, .method = "GET", .path = "/"};
	struct wp_decision d;

	ck_assert(wp_authz_check(w, &rq, &d));
	ck_assert_str_eq(d.dry_run, "shop/d=DENY");
	zt_pb_free(&w->base);
}
END_TEST

START_TEST(waypoint_authz_unevaluable_named_in_resource)
{
	Ztunnel__Waypoint__Waypoint *w = waypoint_of(
	        AP("a", "shop",
	           "{" GW ", rules: [{from: [{source: {requestPrincipals: ['*']}}], when: "
	           "[{key: connection.sni, values: [x]}]}]}"));

	ck_assert_uint_eq(w->n_policies, 1);
	ck_assert_str_eq(w->policies[0]->rules[0]->unevaluable,
	                 "requestPrincipals, connection.sni");
	ck_assert_uint_eq(w->policies[0]->rules[0]->n_when, 0);
	zt_pb_free(&w->base);
}
END_TEST

START_TEST(waypoint_authz_string_match_kinds)
{
	ck_assert(wp_authz_str_match("*", "x", false));
	ck_assert(!wp_authz_str_match("*", "", false));
	ck_assert(!wp_authz_str_match("*", NULL, false));
	ck_assert(wp_authz_str_match("a*", "abc", false));
	ck_assert(!wp_authz_str_match("a*", "bac", false));
	ck_assert(wp_authz_str_match("*c", "abc", false));
	ck_assert(!wp_authz_str_match("*c", "cab", false));
	ck_assert(wp_authz_str_match("abc", "abc", false));
	ck_assert(!wp_authz_str_match("abc", "ABC", false));
	ck_assert(wp_authz_str_match("abc", "ABC", true));
	ck_assert(!wp_authz_str_match("abc", "abcd", false));
}
END_TEST

Suite *waypoint_authz_suite(void);
Suite *waypoint_authz_suite(void)
{
	Suite *s = suite_create("waypoint_authz");
	TCase *tc = tcase_create("waypoint_authz");
	tcase_add_loop_test(tc, waypoint_authz_table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, waypoint_authz_dry_run_is_reported);
	tcase_add_test(tc, waypoint_authz_unevaluable_named_in_resource);
	tcase_add_test(tc, waypoint_authz_string_match_kinds);
	suite_add_tcase(s, tc);
	return s;
}
