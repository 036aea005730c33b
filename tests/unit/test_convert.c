/* Mesh model to xDS resources: a table of AuthorizationPolicy snippets against the decoded
 * Authorization (every row of spec §3.7), PeerAuthentication's synthetic policies, and the
 * Workload and Service messages built from the sample mesh and small manifests. */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "mesh_fixture.h"
#include "protocol/pb.h"
#include "runtime/log.h"

#define SAMPLE      "tests/data/mesh/sample.yaml"
#define SAMPLE_ADDR "tests/data/mesh/sample.addrs"

/* ---- rendering an Authorization as compact text -------------------------------------------
 * "<ACTION> <SCOPE>[ dry-run]:" then " {clause & clause}" per rule; a clause is
 * "(match | match)"; a match lists its fields as ns= !ns= p= !p= sa= !sa= src= !src= dst=
 * !dst= port= !port= (comma-separated values), or "<empty>". Strings render as exact text,
 * prefix(x), suffix(x) or present; addresses as ip/len. */

struct sbuf {
	char s[2048];
	size_t n;
};

__attribute__((format(printf, 2, 3))) static void put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	ck_assert(w >= 0 && (size_t)w < sizeof(b->s) - b->n);
	b->n += (size_t)w;
}

static void put_sm(struct sbuf *b, size_t start, const char *label, size_t n,
                   Istio__Security__StringMatch *const *v)
{
	for (size_t i = 0; i < n; i++) {
		const Istio__Security__StringMatch *m = v[i];
		put(b, "%s", i ? "," : (b->n == start ? "" : " "));
		if (!i)
			put(b, "%s=", label);
		switch (m->match_type_case) {
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_EXACT:
			put(b, "%s", m->exact);
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PREFIX:
			put(b, "prefix(%s)", m->prefix);
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_SUFFIX:
			put(b, "suffix(%s)", m->suffix);
			break;
		case ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE:
			put(b, "present");
			break;
		default:
			put(b, "UNSET");
		}
	}
}

static void put_ips(struct sbuf *b, size_t start, const char *label, size_t n,
                    Istio__Security__Address *const *v)
{
	for (size_t i = 0; i < n; i++) {
		char text[INET6_ADDRSTRLEN] = "?";
		size_t len = v[i]->address.len;
		if (len == 4 || len == 16)
			inet_ntop(len == 4 ? AF_INET : AF_INET6, v[i]->address.data, text,
			          sizeof(text));
		put(b, "%s", i ? "," : (b->n == start ? "" : " "));
		if (!i)
			put(b, "%s=", label);
		put(b, "%s/%u", text, v[i]->length);
	}
}

static void put_ports(struct sbuf *b, size_t start, const char *label, size_t n, const uint32_t *v)
{
	for (size_t i = 0; i < n; i++) {
		put(b, "%s", i ? "," : (b->n == start ? "" : " "));
		if (!i)
			put(b, "%s=", label);
		put(b, "%u", v[i]);
	}
}

static void put_sas(struct sbuf *b, size_t start, const char *label, size_t n,
                    Istio__Security__ServiceAccountMatch *const *v)
{
	for (size_t i = 0; i < n; i++) {
		put(b, "%s", i ? "," : (b->n == start ? "" : " "));
		if (!i)
			put(b, "%s=", label);
		put(b, "%s/%s", v[i]->namespace_, v[i]->serviceaccount);
	}
}

static void put_match(struct sbuf *b, const Istio__Security__Match *m)
{
	size_t start = b->n;
	put_sm(b, start, "ns", m->n_namespaces, m->namespaces);
	put_sm(b, start, "!ns", m->n_not_namespaces, m->not_namespaces);
	put_sm(b, start, "p", m->n_principals, m->principals);
	put_sm(b, start, "!p", m->n_not_principals, m->not_principals);
	put_sas(b, start, "sa", m->n_service_accounts, m->service_accounts);
	put_sas(b, start, "!sa", m->n_not_service_accounts, m->not_service_accounts);
	put_ips(b, start, "src", m->n_source_ips, m->source_ips);
	put_ips(b, start, "!src", m->n_not_source_ips, m->not_source_ips);
	put_ips(b, start, "dst", m->n_destination_ips, m->destination_ips);
	put_ips(b, start, "!dst", m->n_not_destination_ips, m->not_destination_ips);
	put_ports(b, start, "port", m->n_destination_ports, m->destination_ports);
	put_ports(b, start, "!port", m->n_not_destination_ports, m->not_destination_ports);
	if (b->n == start)
		put(b, "<empty>");
}

static const char *render(const Istio__Security__Authorization *a, struct sbuf *b)
{
	b->n = 0;
	b->s[0] = '\0';
	put(b, "%s %s%s:", a->action == ISTIO__SECURITY__ACTION__DENY ? "DENY" : "ALLOW",
	    a->scope == ISTIO__SECURITY__SCOPE__GLOBAL      ? "GLOBAL"
	    : a->scope == ISTIO__SECURITY__SCOPE__NAMESPACE ? "NAMESPACE"
	                                                    : "WORKLOAD_SELECTOR",
	    a->dry_run ? " dry-run" : "");
	for (size_t r = 0; r < a->n_rules; r++) {
		put(b, " {");
		for (size_t c = 0; c < a->rules[r]->n_clauses; c++) {
			const Istio__Security__Clause *cl = a->rules[r]->clauses[c];
			put(b, "%s(", c ? " & " : "");
			for (size_t m = 0; m < cl->n_matches; m++) {
				if (m)
					put(b, " | ");
				put_match(b, cl->matches[m]);
			}
			put(b, ")");
		}
		put(b, "}");
	}
	return b->s;
}

static Istio__Security__Authorization *decode_authz(const struct fi_resource *r)
{
	ProtobufCMessage *msg = NULL;
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(zt_pb_unpack(&istio__security__authorization__descriptor, r->data, r->len,
	                              1 << 20, &msg),
	                 0);
	return (Istio__Security__Authorization *)msg;
}

static Istio__Workload__Address *decode_address(const struct fi_resource *r)
{
	ProtobufCMessage *msg = NULL;
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(
	        zt_pb_unpack(&istio__workload__address__descriptor, r->data, r->len, 1 << 20, &msg),
	        0);
	return (Istio__Workload__Address *)msg;
}

static const struct fi_resource *find_authz(const struct fi_resources *r, const char *name)
{
	return fi_resources_find(r->authorizations, r->n_authorizations, name);
}

static const struct fi_resource *find_addr(const struct fi_resources *r, const char *name)
{
	return fi_resources_find(r->addresses, r->n_addresses, name);
}

/* ---- the table: spec §3.7 row by row ----------------------------------------------------- */

static const struct authz_case {
	const char *name;
	const char *ns;   /* policy namespace; NULL = "foo" */
	const char *spec; /* YAML after metadata */
	const char *want; /* rendering; NULL = not sent */
} authz_cases[] = {
        {"allow_without_rules_allows_nothing", NULL, "spec: {}", "ALLOW NAMESPACE:"},
        {"no_spec_is_allow_nothing", NULL, "", "ALLOW NAMESPACE:"},
        {"deny_without_rules_is_sent_empty", NULL, "spec: {action: DENY}", "DENY NAMESPACE:"},
        {"empty_rule_has_no_clauses", NULL, "spec: {rules: [{}]}", "ALLOW NAMESPACE: {}"},
        {"string_forms_exact_prefix_suffix_presence", NULL,
         "spec: {rules: [{from: [{source: {namespaces: [a, 'b*', '*c', '*']}}]}]}",
         "ALLOW NAMESPACE: {(ns=a,prefix(b),suffix(c),present)}"},
        {"not_namespaces", NULL,
         "spec: {rules: [{from: [{source: {notNamespaces: ['kube-*', x]}}]}]}",
         "ALLOW NAMESPACE: {(!ns=prefix(kube-),x)}"},
        {"principals_sent_without_spiffe_scheme", NULL,
         "spec: {rules: [{from: [{source: {principals: ['spiffe://cluster.local/ns/a/sa/b', "
         "'cluster.local/ns/z/*', '*/sa/admin'], notPrincipals: ['spiffe://td/ns/x/sa/y', "
         "'*']}}]}]}",
         "ALLOW NAMESPACE: {(p=cluster.local/ns/a/sa/b,prefix(cluster.local/ns/z/),suffix(/sa/"
         "admin) !p=td/ns/x/sa/y,present)}"},
        {"bare_service_account_gets_policy_namespace", NULL,
         "spec: {rules: [{from: [{source: {serviceAccounts: [sleep, other/web], "
         "notServiceAccounts: [bad, 'a/b/c', '/x']}}]}]}",
         "ALLOW NAMESPACE: {(sa=foo/sleep,other/web !sa=foo/bad)}"},
        {"ip_blocks_bare_cidr_and_invalid", NULL,
         "spec: {rules: [{from: [{source: {ipBlocks: [10.0.0.1, 10.1.0.0/16, 10.2.3.4/8, "
         "'fd00::/8', bogus, 300.1.1.1, 10.0.0.0/33, '::1'], notIpBlocks: ['2001:db8::1']}}]}]}",
         "ALLOW NAMESPACE: {(src=10.0.0.1/32,10.1.0.0/16,10.0.0.0/8,fd00::/8,::1/128 "
         "!src=2001:db8::1/128)}"},
        {"only_invalid_ips_leave_an_empty_match", NULL,
         "spec: {rules: [{from: [{source: {ipBlocks: [bogus]}}]}]}",
         "ALLOW NAMESPACE: {(<empty>)}"},
        {"ports_decimal_up_to_65535", NULL,
         "spec: {rules: [{to: [{operation: {ports: ['80', '0', '65535', '65536', http, '-1', "
         "'0x50', '+80', '']}}]}]}",
         "ALLOW NAMESPACE: {(port=80,0,65535)}"},
        {"not_ports", NULL, "spec: {rules: [{to: [{operation: {notPorts: ['8080', '9090']}}]}]}",
         "ALLOW NAMESPACE: {(!port=8080,9090)}"},
        {"each_to_and_from_entry_is_one_match", NULL,
         "spec: {rules: [{to: [{operation: {ports: ['80']}}, {operation: {notPorts: ['81']}}], "
         "from: [{source: {namespaces: [a]}}, {source: {ipBlocks: [10.0.0.0/8]}}]}]}",
         "ALLOW NAMESPACE: {(port=80 | !port=81) & (ns=a | src=10.0.0.0/8)}"},
        {"clauses_in_order_to_from_then_each_when", NULL,
         "spec: {rules: [{when: [{key: source.namespace, values: [w]}, {key: destination.port, "
         "values: ['53']}], from: [{source: {namespaces: [f]}}], to: [{operation: {ports: "
         "['80']}}]}]}",
         "ALLOW NAMESPACE: {(port=80) & (ns=f) & (ns=w) & (port=53)}"},
        {"every_when_key_with_values_and_not_values", NULL,
         "spec: {rules: [{when: ["
         "{key: source.ip, values: [10.0.0.0/8], notValues: [10.1.2.3, nope]},"
         "{key: source.namespace, values: ['prod-*'], notValues: [prod-test]},"
         "{key: source.principal, values: ['spiffe://td/ns/a/sa/b'], notValues: ['*']},"
         "{key: destination.ip, values: ['fd00::1'], notValues: [192.168.0.0/16]},"
         "{key: destination.port, values: ['443'], notValues: ['8443', x]}]}]}",
         "ALLOW NAMESPACE: {(src=10.0.0.0/8 !src=10.1.2.3/32) & (ns=prefix(prod-) !ns=prod-test) "
         "& (p=td/ns/a/sa/b !p=present) & (dst=fd00::1/128 !dst=192.168.0.0/16) & (port=443 "
         "!port=8443)}"},
        {"when_not_values_only", NULL,
         "spec: {rules: [{when: [{key: source.namespace, notValues: [kube-system]}]}]}",
         "ALLOW NAMESPACE: {(!ns=kube-system)}"},
        {"allow_with_methods_drops_the_rule", NULL,
         "spec: {rules: [{to: [{operation: {methods: [GET], ports: ['80']}}]}, {from: [{source: "
         "{namespaces: [a]}}]}]}",
         "ALLOW NAMESPACE: {(ns=a)}"},
        {"allow_with_hosts_drops_the_rule", NULL,
         "spec: {rules: [{to: [{operation: {hosts: [x.com]}}]}]}", "ALLOW NAMESPACE:"},
        {"allow_with_not_paths_drops_the_rule", NULL,
         "spec: {rules: [{to: [{operation: {notPaths: [/admin]}}]}]}", "ALLOW NAMESPACE:"},
        {"allow_with_request_principals_drops_the_rule", NULL,
         "spec: {rules: [{from: [{source: {namespaces: [a], requestPrincipals: ['*']}}]}]}",
         "ALLOW NAMESPACE:"},
        {"allow_with_remote_ip_blocks_drops_the_rule", NULL,
         "spec: {rules: [{from: [{source: {notRemoteIpBlocks: [1.2.3.4]}}]}]}", "ALLOW NAMESPACE:"},
        {"allow_with_l7_when_key_drops_the_rule", NULL,
         "spec: {rules: [{from: [{source: {namespaces: [a]}}], when: [{key: "
         "'request.headers[x-user]', values: [admin]}]}]}",
         "ALLOW NAMESPACE:"},
        {"deny_drops_only_l7_parts", NULL,
         "spec: {action: DENY, rules: [{from: [{source: {namespaces: [a], remoteIpBlocks: "
         "[1.2.3.4], requestPrincipals: ['*']}}], to: [{operation: {methods: [GET], ports: "
         "['80']}}], when: [{key: 'request.auth.claims[iss]', values: [x]}, {key: "
         "destination.port, values: ['443']}]}]}",
         "DENY NAMESPACE: {(port=80) & (ns=a) & (port=443)}"},
        {"deny_entry_left_without_l4_fields_matches_anything", NULL,
         "spec: {action: DENY, rules: [{to: [{operation: {ports: ['80']}}, {operation: {paths: "
         "[/admin]}}], from: [{source: {namespaces: [a]}}]}]}",
         "DENY NAMESPACE: {(ns=a)}"},
        {"deny_with_only_l7_denies_everything", NULL,
         "spec: {action: DENY, rules: [{to: [{operation: {methods: [POST]}}]}]}",
         "DENY NAMESPACE: {}"},
        {"target_ref_is_not_sent", NULL,
         "spec: {targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: wp}, rules: "
         "[{}]}",
         NULL},
        {"target_refs_is_not_sent", NULL,
         "spec: {targetRefs: [{kind: Service, group: '', name: web}], action: DENY, rules: [{}]}",
         NULL},
        {"audit_is_not_sent", NULL, "spec: {action: AUDIT, rules: [{}]}", NULL},
        {"custom_is_not_sent", NULL, "spec: {action: CUSTOM, provider: {name: ext}, rules: [{}]}",
         NULL},
        {"root_namespace_without_selector_is_global", "istio-system",
         "spec: {action: DENY, rules: [{from: [{source: {ipBlocks: [192.0.2.0/24]}}]}]}",
         "DENY GLOBAL: {(src=192.0.2.0/24)}"},
        {"selector_is_workload_selector", NULL,
         "spec: {selector: {matchLabels: {app: echo}}, rules: [{}]}",
         "ALLOW WORKLOAD_SELECTOR: {}"},
        {"root_namespace_with_selector_is_workload_selector", "istio-system",
         "spec: {selector: {matchLabels: {app: echo}}}", "ALLOW WORKLOAD_SELECTOR:"},
        {"empty_match_labels_is_no_selector", NULL, "spec: {selector: {matchLabels: {}}}",
         "ALLOW NAMESPACE:"},
};

START_TEST(convert_authorization_table)
{
	const struct authz_case *tc = &authz_cases[_i];
	const char *ns = tc->ns ? tc->ns : "foo";
	char *yaml = NULL, key[128];
	ck_assert_int_gt(asprintf(&yaml,
	                          "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	                          "metadata: {name: p, namespace: %s}\n%s\n",
	                          ns, tc->spec),
	                 0);
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert(yaml, &m, &r);
	snprintf(key, sizeof(key), "%s/p", ns);
	const struct fi_resource *res = find_authz(&r, key);
	if (!tc->want) {
		ck_assert_msg(!res, "%s: sent but should not be", tc->name);
		ck_assert_uint_eq(r.n_authorizations, 0);
	} else {
		ck_assert_msg(res, "%s: not sent", tc->name);
		Istio__Security__Authorization *a = decode_authz(res);
		struct sbuf b;
		ck_assert_str_eq(a->name, "p");
		ck_assert_str_eq(a->namespace_, ns);
		ck_assert_msg(!strcmp(render(a, &b), tc->want), "%s:\n got  %s\n want %s", tc->name,
		              b.s, tc->want);
		zt_pb_free(&a->base);
	}
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	free(yaml);
}
END_TEST

START_TEST(convert_dry_run_annotation_sets_dry_run)
{
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert("apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\n"
	                "metadata: {name: p, namespace: foo, annotations: {istio.io/dry-run: "
	                "'true'}}\nspec: {action: DENY, rules: [{}]}\n",
	                &m, &r);
	Istio__Security__Authorization *a = decode_authz(find_authz(&r, "foo/p"));
	struct sbuf b;
	ck_assert_str_eq(render(a, &b), "DENY NAMESPACE dry-run: {}");
	zt_pb_free(&a->base);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
}
END_TEST

static char captured[2048];

static void capture_cb(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)arg;
	size_t have = strlen(captured);
	if (level == ZT_LOG_WARN && have + len < sizeof(captured)) {
		memcpy(captured + have, line, len);
		captured[have + len] = '\0';
	}
}

START_TEST(convert_l7_warnings_name_policy_and_attribute)
{
	struct fi_mesh m;
	struct fi_resources r;
	captured[0] = '\0';
	zt_log_set_sink(capture_cb, NULL);
	fx_mesh_convert(
	        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	        "metadata: {name: a, namespace: foo}\n"
	        "spec: {rules: [{}, {to: [{operation: {paths: [/x]}}]}]}\n---\n"
	        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	        "metadata: {name: d, namespace: foo}\n"
	        "spec: {action: DENY, rules: [{from: [{source: {remoteIpBlocks: [1.1.1.1]}}]}]}\n",
	        &m, &r);
	zt_log_set_sink(NULL, NULL);
	ck_assert_ptr_nonnull(strstr(captured,
	                             "AuthorizationPolicy foo/a: rules[1]: ALLOW rule "
	                             "dropped: ztunnel cannot enforce L7 attribute paths"));
	ck_assert_ptr_nonnull(strstr(captured,
	                             "AuthorizationPolicy foo/d: rules[0]: DENY rule keeps "
	                             "only its L4 parts (ignoring L7 attribute "
	                             "remoteIpBlocks)"));
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
}
END_TEST

/* ---- workloads and services ---------------------------------------------------------------- */

struct sample {
	struct fi_mesh m;
	struct fi_resources r;
};

static void load_sample(struct sample *s)
{
	const char *files[] = {SAMPLE};
	struct fi_mesh_opts o = {.addresses_file = SAMPLE_ADDR};
	char err[512] = "";
	ck_assert_msg(fi_mesh_load(&s->m, files, 1, &o, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(fi_convert(&s->m, NULL, &s->r, err, sizeof(err)) == 0, "%s", err);
}

static void sample_clear(struct sample *s)
{
	fi_resources_clear(&s->r);
	fi_mesh_clear(&s->m);
}

static Istio__Workload__Workload *workload(const struct fi_resources *r, const char *uid)
{
	const struct fi_resource *res = find_addr(r, uid);
	ck_assert_msg(res != NULL, "no workload %s", uid);
	Istio__Workload__Address *a = decode_address(res);
	ck_assert_int_eq(a->type_case, ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD);
	Istio__Workload__Workload *w = a->workload;
	a->workload = NULL;
	a->type_case = ISTIO__WORKLOAD__ADDRESS__TYPE__NOT_SET;
	zt_pb_free(&a->base);
	return w;
}

static Istio__Workload__Service *service(const struct fi_resources *r, const char *name)
{
	const struct fi_resource *res = find_addr(r, name);
	ck_assert_msg(res != NULL, "no service %s", name);
	Istio__Workload__Address *a = decode_address(res);
	ck_assert_int_eq(a->type_case, ISTIO__WORKLOAD__ADDRESS__TYPE_SERVICE);
	Istio__Workload__Service *s = a->service;
	a->service = NULL;
	a->type_case = ISTIO__WORKLOAD__ADDRESS__TYPE__NOT_SET;
	zt_pb_free(&a->base);
	return s;
}

static void assert_ip(const ProtobufCBinaryData *b, const char *text)
{
	char got[INET6_ADDRSTRLEN] = "?";
	ck_assert(b->len == 4 || b->len == 16);
	inet_ntop(b->len == 4 ? AF_INET : AF_INET6, b->data, got, sizeof(got));
	ck_assert_str_eq(got, text);
}

static const Istio__Workload__PortList *services_entry(const Istio__Workload__Workload *w,
                                                       const char *key)
{
	for (size_t i = 0; i < w->n_services; i++)
		if (!strcmp(w->services[i]->key, key))
			return w->services[i]->value;
	return NULL;
}

static bool has_policy(const Istio__Workload__Workload *w, const char *key)
{
	for (size_t i = 0; i < w->n_authorization_policies; i++)
		if (!strcmp(w->authorization_policies[i], key))
			return true;
	return false;
}

START_TEST(convert_sample_sends_exactly_the_mesh)
{
	struct sample s;
	load_sample(&s);
	static const char *const want[] = {
	        "Kubernetes//Pod/default/echo-6d4f9c7b8-abcde",
	        "Kubernetes//Pod/default/sleep",
	        "Kubernetes//Pod/shop/waypoint-0",
	        "Kubernetes//Pod/shop/web-0",
	        "default/echo-headless.default.svc.cluster.local",
	        "default/echo.default.svc.cluster.local",
	        "default/external.default.svc.cluster.local",
	        "shop/waypoint.shop.svc.cluster.local",
	        "shop/web.shop.svc.cluster.local",
	};
	ck_assert_uint_eq(s.r.n_addresses, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < s.r.n_addresses; i++) {
		ck_assert_str_eq(s.r.addresses[i].name, want[i]);
		ck_assert_uint_eq(strlen(s.r.addresses[i].version), 16);
	}
	static const char *const want_authz[] = {
	        "default/echo-allow-sleep",
	        "istio-system/deny-documentation-net",
	        "istio-system/istio_converted_static_strict",
	        "shop/deny-legacy",
	};
	ck_assert_uint_eq(s.r.n_authorizations, 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert_str_eq(s.r.authorizations[i].name, want_authz[i]);
	sample_clear(&s);
}
END_TEST

START_TEST(convert_workload_fields_from_a_deployment_pod)
{
	struct sample s;
	load_sample(&s);
	Istio__Workload__Workload *w =
	        workload(&s.r, "Kubernetes//Pod/default/echo-6d4f9c7b8-abcde");
	ck_assert_str_eq(w->uid, "Kubernetes//Pod/default/echo-6d4f9c7b8-abcde");
	ck_assert_str_eq(w->name, "echo-6d4f9c7b8-abcde");
	ck_assert_str_eq(w->namespace_, "default");
	ck_assert_uint_eq(w->n_addresses, 1);
	assert_ip(&w->addresses[0], "10.244.2.10"); /* from the address file */
	ck_assert_str_eq(w->network, "");
	ck_assert_int_eq(w->tunnel_protocol, ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE);
	ck_assert_str_eq(w->trust_domain, "cluster.local");
	ck_assert_str_eq(w->service_account, "echo");
	ck_assert_str_eq(w->node, "node-2");
	ck_assert_str_eq(w->canonical_name, "echo");
	ck_assert_str_eq(w->canonical_revision, "v1");
	ck_assert_str_eq(w->workload_name, "echo");
	ck_assert_int_eq(w->workload_type, ISTIO__WORKLOAD__WORKLOAD_TYPE__DEPLOYMENT);
	ck_assert_str_eq(w->cluster_id, "Kubernetes");
	ck_assert_int_eq(w->status, ISTIO__WORKLOAD__WORKLOAD_STATUS__HEALTHY);
	ck_assert_ptr_nonnull(w->locality);
	ck_assert_str_eq(w->locality->region, "lab");
	ck_assert_str_eq(w->locality->zone, "zone-b");
	ck_assert_ptr_null(w->waypoint); /* namespace default has no waypoint */
	/* selector policy and no PeerAuthentication in "default" */
	ck_assert_uint_eq(w->n_authorization_policies, 1);
	ck_assert_str_eq(w->authorization_policies[0], "default/echo-allow-sleep");
	/* named targetPort resolved per pod; an unknown name leaves the port out */
	ck_assert_uint_eq(w->n_services, 2);
	const Istio__Workload__PortList *pl =
	        services_entry(w, "default/echo.default.svc.cluster.local");
	ck_assert_ptr_nonnull(pl);
	ck_assert_uint_eq(pl->n_ports, 2);
	ck_assert_uint_eq(pl->ports[0]->service_port, 80);
	ck_assert_uint_eq(pl->ports[0]->target_port, 8080);
	ck_assert_uint_eq(pl->ports[1]->service_port, 7000);
	ck_assert_uint_eq(pl->ports[1]->target_port, 7001);
	pl = services_entry(w, "default/echo-headless.default.svc.cluster.local");
	ck_assert_ptr_nonnull(pl);
	ck_assert_uint_eq(pl->n_ports, 1);
	ck_assert_uint_eq(pl->ports[0]->target_port, 8080);
	zt_pb_free(&w->base);
	sample_clear(&s);
}
END_TEST

START_TEST(convert_bare_pod_is_pod_type_with_defaults)
{
	struct sample s;
	load_sample(&s);
	Istio__Workload__Workload *w = workload(&s.r, "Kubernetes//Pod/default/sleep");
	ck_assert_str_eq(w->workload_name, "sleep");
	ck_assert_int_eq(w->workload_type, ISTIO__WORKLOAD__WORKLOAD_TYPE__POD);
	ck_assert_str_eq(w->canonical_name, "sleep");
	ck_assert_str_eq(w->canonical_revision, "latest");
	assert_ip(&w->addresses[0], "10.244.1.10"); /* status.podIP */
	ck_assert_uint_eq(w->n_services, 0);
	ck_assert_uint_eq(w->n_authorization_policies, 0);
	zt_pb_free(&w->base);
	sample_clear(&s);
}
END_TEST

START_TEST(convert_waypoint_by_namespace_label_and_strict_namespace)
{
	struct sample s;
	load_sample(&s);
	Istio__Workload__Workload *w = workload(&s.r, "Kubernetes//Pod/shop/web-0");
	ck_assert_uint_eq(w->n_addresses, 2); /* address file overrides status */
	assert_ip(&w->addresses[0], "10.244.1.12");
	assert_ip(&w->addresses[1], "fd00::c");
	ck_assert_ptr_nonnull(w->waypoint);
	ck_assert_int_eq(w->waypoint->destination_case,
	                 ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS);
	assert_ip(&w->waypoint->address->address, "10.96.0.40");
	ck_assert_uint_eq(w->waypoint->hbone_mtls_port, 15008);
	ck_assert_uint_eq(w->n_authorization_policies, 1);
	ck_assert_str_eq(w->authorization_policies[0],
	                 "istio-system/istio_converted_static_strict");
	zt_pb_free(&w->base);

	/* the waypoint's pod is sent with HBONE although it opted out, and uses no waypoint */
	w = workload(&s.r, "Kubernetes//Pod/shop/waypoint-0");
	ck_assert_int_eq(w->tunnel_protocol, ISTIO__WORKLOAD__TUNNEL_PROTOCOL__HBONE);
	ck_assert_ptr_null(w->waypoint);
	ck_assert_ptr_nonnull(services_entry(w, "shop/waypoint.shop.svc.cluster.local"));
	zt_pb_free(&w->base);

	Istio__Workload__Service *sv = service(&s.r, "shop/web.shop.svc.cluster.local");
	ck_assert_ptr_nonnull(sv->waypoint);
	assert_ip(&sv->waypoint->address->address, "10.96.0.40");
	zt_pb_free(&sv->base);
	sv = service(&s.r, "shop/waypoint.shop.svc.cluster.local");
	ck_assert_ptr_null(sv->waypoint); /* a waypoint does not route through itself */
	zt_pb_free(&sv->base);
	sample_clear(&s);
}
END_TEST

START_TEST(convert_service_fields)
{
	struct sample s;
	load_sample(&s);
	Istio__Workload__Service *sv = service(&s.r, "default/echo.default.svc.cluster.local");
	ck_assert_str_eq(sv->name, "echo");
	ck_assert_str_eq(sv->namespace_, "default");
	ck_assert_str_eq(sv->hostname, "echo.default.svc.cluster.local");
	ck_assert_uint_eq(sv->n_addresses, 1);
	ck_assert_str_eq(sv->addresses[0]->network, "");
	assert_ip(&sv->addresses[0]->address, "10.96.0.20");
	ck_assert_int_eq(sv->addresses[0]->prefix_case,
	                 ISTIO__WORKLOAD__NETWORK_ADDRESS__PREFIX__NOT_SET);
	ck_assert_uint_eq(sv->n_ports, 3);
	ck_assert_uint_eq(sv->ports[0]->service_port, 80);
	ck_assert_uint_eq(sv->ports[0]->target_port, 0); /* named */
	ck_assert_int_eq(sv->ports[0]->app_protocol, ISTIO__WORKLOAD__APP_PROTOCOL__HTTP11);
	ck_assert_uint_eq(sv->ports[1]->target_port, 7001);
	ck_assert_int_eq(sv->ports[1]->app_protocol, ISTIO__WORKLOAD__APP_PROTOCOL__UNKNOWN);
	ck_assert_uint_eq(sv->ports[2]->target_port, 0);
	ck_assert_uint_eq(sv->n_subject_alt_names, 0);
	ck_assert_ptr_null(sv->waypoint);
	zt_pb_free(&sv->base);

	sv = service(&s.r, "default/echo-headless.default.svc.cluster.local");
	ck_assert_uint_eq(sv->n_addresses, 0);
	ck_assert_uint_eq(sv->ports[0]->target_port, 8080); /* absent targetPort = port */
	zt_pb_free(&sv->base);
	sample_clear(&s);
}
END_TEST

START_TEST(convert_opted_out_and_non_ambient_pods_are_not_sent)
{
	struct sample s;
	load_sample(&s);
	ck_assert_ptr_null(find_addr(&s.r, "Kubernetes//Pod/default/batch"));
	ck_assert_ptr_null(find_addr(&s.r, "Kubernetes//Pod/legacy/old"));
	ck_assert_ptr_null(find_addr(&s.r, "legacy/old.legacy.svc.cluster.local"));
	/* still known to the model, e.g. for the CA */
	ck_assert_ptr_nonnull(fi_mesh_find_pod(&s.m, "legacy", "old"));
	sample_clear(&s);
}
END_TEST

#define TWO_PODS                                                                                   \
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: app, labels: "                          \
	"{istio.io/dataplane-mode: ambient}}\n---\n"                                               \
	"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: app}\n"                         \
	"status: {podIP: 10.0.0.1}\n---\n"                                                         \
	"apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: app}\n"                         \
	"status: {podIP: %s}\n"

START_TEST(convert_output_is_deterministic_and_versions_follow_content)
{
	struct sample a, b;
	load_sample(&a);
	load_sample(&b);
	ck_assert_uint_eq(a.r.n_addresses, b.r.n_addresses);
	for (size_t i = 0; i < a.r.n_addresses; i++) {
		ck_assert_str_eq(a.r.addresses[i].version, b.r.addresses[i].version);
		ck_assert_uint_eq(a.r.addresses[i].len, b.r.addresses[i].len);
		ck_assert(!memcmp(a.r.addresses[i].data, b.r.addresses[i].data,
		                  a.r.addresses[i].len));
	}
	sample_clear(&a);
	sample_clear(&b);

	/* one pod changes: only its resource gets a new version */
	char y1[512], y2[512];
	snprintf(y1, sizeof(y1), TWO_PODS, "10.0.0.2");
	snprintf(y2, sizeof(y2), TWO_PODS, "10.0.0.3");
	struct fi_mesh m1, m2;
	struct fi_resources r1, r2;
	fx_mesh_convert(y1, &m1, &r1);
	fx_mesh_convert(y2, &m2, &r2);
	ck_assert_str_eq(find_addr(&r1, "Kubernetes//Pod/app/a")->version,
	                 find_addr(&r2, "Kubernetes//Pod/app/a")->version);
	ck_assert_str_ne(find_addr(&r1, "Kubernetes//Pod/app/b")->version,
	                 find_addr(&r2, "Kubernetes//Pod/app/b")->version);
	fi_resources_clear(&r1);
	fi_resources_clear(&r2);
	fi_mesh_clear(&m1);
	fi_mesh_clear(&m2);
}
END_TEST

/* A literal, so the format is checked at every optimisation level. */
#define AMBIENT_NS                                                                                 \
	"apiVersion: v1\nkind: Namespace\n"                                                         \
	"metadata: {name: app, labels: {istio.io/dataplane-mode: ambient%s}}\n"

/* One manifest with a namespace "app" (extra labels in ns_labels) and the rest. */
static char *manifest(const char *ns_labels, const char *rest)
{
	char *head = NULL, *all = NULL;
	ck_assert_int_gt(asprintf(&head, AMBIENT_NS, ns_labels), 0);
	ck_assert_int_gt(asprintf(&all, "%s---\n%s", head, rest), 0);
	free(head);
	return all;
}

START_TEST(convert_waypoint_for_service_default_skips_workloads)
{
	char *y =
	        manifest(", istio.io/use-waypoint: wp",
	                 "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
	                 "metadata: {name: wp, namespace: app}\n"
	                 "spec: {gatewayClassName: istio-waypoint}\n---\n"
	                 "apiVersion: v1\nkind: Pod\nmetadata: {name: wp-1, namespace: app, "
	                 "labels: {gateway.networking.k8s.io/gateway-name: wp}}\n"
	                 "status: {podIP: 10.0.0.9}\n---\n"
	                 "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: app, labels: "
	                 "{app: a}}\nstatus: {podIP: 10.0.0.1}\n---\n"
	                 "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: app}\n"
	                 "spec: {clusterIP: 10.96.0.1, selector: {app: a}, ports: [{port: 80}]}\n");
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert(y, &m, &r);
	Istio__Workload__Workload *w = workload(&r, "Kubernetes//Pod/app/a");
	ck_assert_ptr_null(w->waypoint);
	zt_pb_free(&w->base);
	/* no Service for the waypoint: its pod's IP is the address */
	Istio__Workload__Service *sv = service(&r, "app/a.app.svc.cluster.local");
	ck_assert_ptr_nonnull(sv->waypoint);
	ck_assert_int_eq(sv->waypoint->destination_case,
	                 ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_ADDRESS);
	assert_ip(&sv->waypoint->address->address, "10.0.0.9");
	zt_pb_free(&sv->base);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	free(y);
}
END_TEST

START_TEST(convert_waypoint_label_on_object_overrides_namespace)
{
	char *y = manifest(", istio.io/use-waypoint: wp",
	                   "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
	                   "metadata: {name: wp, namespace: app, labels: "
	                   "{istio.io/waypoint-for: workload}}\n"
	                   "spec: {gatewayClassName: istio-waypoint}\n---\n"
	                   "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
	                   "metadata: {name: other, namespace: infra, labels: "
	                   "{istio.io/waypoint-for: all}}\n"
	                   "spec: {gatewayClassName: istio-waypoint}\n---\n"
	                   "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: app}\n"
	                   "status: {podIP: 10.0.0.1}\n---\n"
	                   "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: app, labels: "
	                   "{istio.io/use-waypoint: none}}\nstatus: {podIP: 10.0.0.2}\n---\n"
	                   "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: app, labels: "
	                   "{istio.io/use-waypoint: other, istio.io/use-waypoint-namespace: "
	                   "infra}}\nstatus: {podIP: 10.0.0.3}\n---\n"
	                   "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: app}\n"
	                   "spec: {clusterIP: 10.96.0.1}\n");
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert(y, &m, &r);
	Istio__Workload__Workload *w = workload(&r, "Kubernetes//Pod/app/a");
	ck_assert_ptr_nonnull(w->waypoint);
	/* no Service and no pod: referenced by hostname */
	ck_assert_int_eq(w->waypoint->destination_case,
	                 ISTIO__WORKLOAD__GATEWAY_ADDRESS__DESTINATION_HOSTNAME);
	ck_assert_str_eq(w->waypoint->hostname->namespace_, "app");
	ck_assert_str_eq(w->waypoint->hostname->hostname, "wp.app.svc.cluster.local");
	ck_assert_uint_eq(w->waypoint->hbone_mtls_port, 15008);
	zt_pb_free(&w->base);
	w = workload(&r, "Kubernetes//Pod/app/b");
	ck_assert_ptr_null(w->waypoint);
	zt_pb_free(&w->base);
	w = workload(&r, "Kubernetes//Pod/app/c");
	ck_assert_ptr_nonnull(w->waypoint);
	ck_assert_str_eq(w->waypoint->hostname->hostname, "other.infra.svc.cluster.local");
	zt_pb_free(&w->base);
	/* waypoint-for: workload leaves services alone */
	Istio__Workload__Service *sv = service(&r, "app/s.app.svc.cluster.local");
	ck_assert_ptr_null(sv->waypoint);
	zt_pb_free(&sv->base);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	free(y);
}
END_TEST

START_TEST(convert_missing_waypoint_is_no_waypoint)
{
	char *y = manifest(", istio.io/use-waypoint: nope",
	                   "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: app}\n"
	                   "status: {podIP: 10.0.0.1}\n");
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert(y, &m, &r);
	Istio__Workload__Workload *w = workload(&r, "Kubernetes//Pod/app/a");
	ck_assert_ptr_null(w->waypoint);
	zt_pb_free(&w->base);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	free(y);
}
END_TEST

START_TEST(convert_pod_level_opt_in_and_unready_and_no_ip)
{
	const char *y = "apiVersion: v1\nkind: Namespace\nmetadata: {name: plain}\n---\n"
	                "apiVersion: v1\nkind: Pod\nmetadata: {name: in, namespace: plain, labels: "
	                "{istio.io/dataplane-mode: ambient, app.kubernetes.io/name: svc-name, "
	                "app.kubernetes.io/version: '2', app: ignored}}\n"
	                "status: {podIP: 10.0.0.1, conditions: [{type: Ready, status: 'False'}]}\n"
	                "---\n"
	                "apiVersion: v1\nkind: Pod\nmetadata: {name: noip, namespace: plain, "
	                "labels: {istio.io/dataplane-mode: ambient}}\n"
	                "---\n"
	                "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: plain}\n"
	                "spec: {clusterIP: 10.96.0.1, selector: {app: ignored}}\n"
	                "---\n"
	                "apiVersion: v1\nkind: Service\nmetadata: {name: t, namespace: plain}\n"
	                "spec: {clusterIP: 10.96.0.2}\n";
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert(y, &m, &r);
	Istio__Workload__Workload *w = workload(&r, "Kubernetes//Pod/plain/in");
	ck_assert_int_eq(w->status, ISTIO__WORKLOAD__WORKLOAD_STATUS__UNHEALTHY);
	ck_assert_str_eq(w->canonical_name, "svc-name");
	ck_assert_str_eq(w->canonical_revision, "2");
	ck_assert_str_eq(w->node, "");
	ck_assert_ptr_null(w->locality);
	zt_pb_free(&w->base);
	ck_assert_ptr_null(find_addr(&r, "Kubernetes//Pod/plain/noip"));
	/* a non-ambient namespace's Service is sent only when it selects a sent workload */
	ck_assert_ptr_nonnull(find_addr(&r, "plain/s.plain.svc.cluster.local"));
	ck_assert_ptr_null(find_addr(&r, "plain/t.plain.svc.cluster.local"));
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(convert_job_and_cronjob_owners)
{
	char *y =
	        manifest("", "apiVersion: v1\nkind: Pod\nmetadata: {name: j-x, namespace: app, "
	                     "ownerReferences: [{kind: Job, name: backup, controller: true}]}\n"
	                     "status: {podIP: 10.0.0.1}\n---\n"
	                     "apiVersion: v1\nkind: Pod\nmetadata: {name: c-x, namespace: app, "
	                     "ownerReferences: [{kind: Job, name: nightly-28391520, controller: "
	                     "true}]}\nstatus: {podIP: 10.0.0.2}\n---\n"
	                     "apiVersion: v1\nkind: Pod\nmetadata: {name: r-x, namespace: app, "
	                     "ownerReferences: [{kind: ReplicaSet, name: rs, controller: false}]}\n"
	                     "status: {podIP: 10.0.0.3}\n");
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert(y, &m, &r);
	Istio__Workload__Workload *w = workload(&r, "Kubernetes//Pod/app/j-x");
	ck_assert_str_eq(w->workload_name, "backup");
	ck_assert_int_eq(w->workload_type, ISTIO__WORKLOAD__WORKLOAD_TYPE__JOB);
	zt_pb_free(&w->base);
	w = workload(&r, "Kubernetes//Pod/app/c-x");
	ck_assert_str_eq(w->workload_name, "nightly");
	ck_assert_int_eq(w->workload_type, ISTIO__WORKLOAD__WORKLOAD_TYPE__CRONJOB);
	zt_pb_free(&w->base);
	w = workload(&r, "Kubernetes//Pod/app/r-x"); /* not a controller: a bare pod */
	ck_assert_str_eq(w->workload_name, "r-x");
	ck_assert_int_eq(w->workload_type, ISTIO__WORKLOAD__WORKLOAD_TYPE__POD);
	zt_pb_free(&w->base);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	free(y);
}
END_TEST

START_TEST(convert_selector_policy_listed_on_selected_workloads_only)
{
	char *y = manifest("", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: app, "
	                       "labels: {app: a, tier: web}}\nstatus: {podIP: 10.0.0.1}\n---\n"
	                       "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: app, "
	                       "labels: {app: b}}\nstatus: {podIP: 10.0.0.2}\n---\n"
	                       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	                       "metadata: {name: only-a, namespace: app}\n"
	                       "spec: {selector: {matchLabels: {app: a, tier: web}}}\n---\n"
	                       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	                       "metadata: {name: mesh-b, namespace: istio-system}\n"
	                       "spec: {selector: {matchLabels: {app: b}}, action: DENY}\n---\n"
	                       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	                       "metadata: {name: elsewhere, namespace: other}\n"
	                       "spec: {selector: {matchLabels: {app: a}}}\n---\n"
	                       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	                       "metadata: {name: ns-wide, namespace: app}\nspec: {}\n---\n"
	                       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	                       "metadata: {name: audit-a, namespace: app}\n"
	                       "spec: {selector: {matchLabels: {app: a}}, action: AUDIT}\n");
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert(y, &m, &r);
	Istio__Workload__Workload *w = workload(&r, "Kubernetes//Pod/app/a");
	ck_assert_uint_eq(w->n_authorization_policies, 1);
	ck_assert_str_eq(w->authorization_policies[0], "app/only-a");
	zt_pb_free(&w->base);
	w = workload(&r, "Kubernetes//Pod/app/b");
	ck_assert_uint_eq(w->n_authorization_policies, 1);
	ck_assert_str_eq(w->authorization_policies[0], "istio-system/mesh-b");
	zt_pb_free(&w->base);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	free(y);
}
END_TEST

/* ---- PeerAuthentication ------------------------------------------------------------------- */

static const char *const pa_pods =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: other, labels: "
        "{istio.io/dataplane-mode: ambient}}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: app, labels: {app: a}}\n"
        "status: {podIP: 10.0.0.1}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: app, labels: {app: b}}\n"
        "status: {podIP: 10.0.0.2}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: other}\n"
        "status: {podIP: 10.0.0.3}\n---\n";

#define PA(ns, name, body)                                                                         \
	"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: " name       \
	", namespace: " ns "}\nspec: " body "\n---\n"

static const char *const strict_key = "istio-system/istio_converted_static_strict";

/* Loads pa_pods plus pas and asserts whether each of app/a, app/b, other/c lists key; the
 * resources are handed back in keep when it is not NULL. */
static void pa_refs(const char *pas, const char *key, bool want_a, bool want_b, bool want_c,
                    struct fi_resources *keep)
{
	char *rest = NULL;
	ck_assert_int_gt(asprintf(&rest, "%s%s", pa_pods, pas), 0);
	char *y = manifest("", rest);
	struct fi_mesh m;
	struct fi_resources r;
	fx_mesh_convert(y, &m, &r);
	const char *uids[] = {"Kubernetes//Pod/app/a", "Kubernetes//Pod/app/b",
	                      "Kubernetes//Pod/other/c"};
	bool want[] = {want_a, want_b, want_c};
	for (int i = 0; i < 3; i++) {
		Istio__Workload__Workload *w = workload(&r, uids[i]);
		ck_assert_msg(has_policy(w, key) == want[i], "%s: %s %s", uids[i],
		              want[i] ? "lacks" : "has", key);
		zt_pb_free(&w->base);
	}
	if (keep)
		*keep = r;
	else
		fi_resources_clear(&r);
	fi_mesh_clear(&m);
	free(rest);
	free(y);
}

START_TEST(convert_peer_authentication_strict_synthetic_policy)
{
	struct fi_resources r;
	pa_refs(PA("app", "strict", "{mtls: {mode: STRICT}}"), strict_key, true, true, false, &r);
	Istio__Security__Authorization *a = decode_authz(find_authz(&r, strict_key));
	struct sbuf b;
	ck_assert_str_eq(a->name, "istio_converted_static_strict");
	ck_assert_str_eq(a->namespace_, "istio-system");
	ck_assert_str_eq(render(a, &b), "DENY WORKLOAD_SELECTOR: {(!p=present)}");
	zt_pb_free(&a->base);
	fi_resources_clear(&r);
}
END_TEST

#define PA_MESH_STRICT PA("istio-system", "mesh", "{mtls: {mode: STRICT}}")
#define PA_APP(mode)   PA("app", "ns-wide", "{mtls: {mode: " mode "}}")
#define PA_SEL(ns, name, app, mode)                                                                \
	PA(ns, name, "{selector: {matchLabels: {app: " app "}}, mtls: {mode: " mode "}}")

START_TEST(convert_peer_authentication_scopes)
{
	/* mesh-wide, overridden per namespace, overridden per workload (UNSET inherits) */
	pa_refs(PA_MESH_STRICT, strict_key, true, true, true, NULL);
	pa_refs(PA_MESH_STRICT PA_APP("PERMISSIVE"), strict_key, false, false, true, NULL);
	pa_refs(PA_APP("PERMISSIVE") PA_SEL("app", "a-strict", "a", "STRICT"), strict_key, true,
	        false, false, NULL);
	pa_refs(PA_APP("STRICT") PA_SEL("app", "b-unset", "b", "UNSET")
	                PA_SEL("app", "a-off", "a", "DISABLE"),
	        strict_key, false, true, false, NULL);
	/* a selector in the root namespace is ignored */
	pa_refs(PA_SEL("istio-system", "root-sel", "a", "STRICT"), strict_key, false, false, false,
	        NULL);
	/* no STRICT anywhere: no synthetic policy at all */
	struct fi_resources r;
	pa_refs(PA_APP("PERMISSIVE"), strict_key, false, false, false, &r);
	ck_assert_ptr_null(find_authz(&r, strict_key));
	fi_resources_clear(&r);
}
END_TEST

START_TEST(convert_peer_authentication_port_level)
{
	struct fi_resources r;
	struct sbuf b;
	const char *key = "app/converted_peer_authentication_a-ports";
	pa_refs(PA("app", "a-ports",
	           "{selector: {matchLabels: {app: a}}, mtls: {mode: STRICT}, "
	           "portLevelMtls: {8080: {mode: PERMISSIVE}, 9090: {mode: "
	           "STRICT}}}"),
	        key, true, false, false, &r);
	Istio__Security__Authorization *a = decode_authz(find_authz(&r, key));
	ck_assert_str_eq(render(a, &b), "DENY WORKLOAD_SELECTOR: {(!p=present) & (!port=8080)}");
	zt_pb_free(&a->base);
	fi_resources_clear(&r);
	/* the converted policy replaces the static one on that workload */
	pa_refs(PA("app", "a-ports",
	           "{selector: {matchLabels: {app: a}}, mtls: {mode: STRICT}, "
	           "portLevelMtls: {8080: {mode: PERMISSIVE}}}"),
	        strict_key, false, false, false, NULL);

	pa_refs(PA("app", "a-ports",
	           "{selector: {matchLabels: {app: a}}, portLevelMtls: {8443: "
	           "{mode: STRICT}}}"),
	        key, true, false, false, &r);
	a = decode_authz(find_authz(&r, key));
	ck_assert_str_eq(render(a, &b), "DENY WORKLOAD_SELECTOR: {(!p=present) & (port=8443)}");
	zt_pb_free(&a->base);
	fi_resources_clear(&r);

	/* every port as strict as the workload: just the static policy */
	pa_refs(PA("app", "a-ports",
	           "{selector: {matchLabels: {app: a}}, mtls: {mode: STRICT}, "
	           "portLevelMtls: {8080: {mode: STRICT}}}"),
	        strict_key, true, false, false, &r);
	ck_assert_ptr_null(find_authz(&r, key));
	fi_resources_clear(&r);
}
END_TEST

START_TEST(convert_options_change_identity_fields)
{
	struct fi_mesh m;
	struct fi_resources r;
	char *y =
	        manifest("", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: app}\n"
	                     "status: {podIP: 10.0.0.1}\n---\n"
	                     "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: app}\n"
	                     "spec: {clusterIP: 10.96.0.1}\n---\n"
	                     "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	                     "metadata: {name: g, namespace: mesh-root}\nspec: {}\n");
	char err[256];
	ck_assert_int_eq(fx_mesh_load(&m, (const char *const *)&y, 1, NULL, err, sizeof(err)), 0);
	struct fi_convert_opts o = {.trust_domain = "example.org",
	                            .cluster_id = "c1",
	                            .cluster_domain = "corp",
	                            .root_namespace = "mesh-root",
	                            .network = "net1"};
	ck_assert_int_eq(fi_convert(&m, &o, &r, err, sizeof(err)), 0);
	Istio__Workload__Workload *w = workload(&r, "c1//Pod/app/a");
	ck_assert_str_eq(w->trust_domain, "example.org");
	ck_assert_str_eq(w->cluster_id, "c1");
	ck_assert_str_eq(w->network, "net1");
	zt_pb_free(&w->base);
	Istio__Workload__Service *sv = service(&r, "app/s.app.svc.corp");
	ck_assert_str_eq(sv->addresses[0]->network, "net1");
	zt_pb_free(&sv->base);
	Istio__Security__Authorization *a = decode_authz(find_authz(&r, "mesh-root/g"));
	ck_assert_int_eq(a->scope, ISTIO__SECURITY__SCOPE__GLOBAL);
	zt_pb_free(&a->base);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	free(y);
}
END_TEST

START_TEST(convert_empty_mesh_gives_no_resources)
{
	struct fi_mesh m = {0};
	struct fi_resources r;
	char err[64];
	ck_assert_int_eq(fi_convert(&m, NULL, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.n_addresses, 0);
	ck_assert_uint_eq(r.n_authorizations, 0);
	ck_assert_ptr_null(fi_resources_find(r.addresses, r.n_addresses, "x"));
	fi_resources_clear(&r);
	fi_resources_clear(&r);
}
END_TEST


/* ---- incremental conversion against a full one -------------------------------------------- */

#define UPD_FILES 3
#define UPD_PODS  24

struct upd_pod {
	bool live;
	unsigned ns, app, ip, ver;
	unsigned mode; /* label istio.io/dataplane-mode: 0 none, 1 "none", 2 "ambient" */
	bool host;
};

struct upd_world {
	char dir[64];
	struct upd_pod pods[UPD_FILES][UPD_PODS];
	unsigned policy_port, svc_port, stamp;
};

/* Writes path by rename with a modification time in the past, distinct per write, so the
 * loader's cache sees a new file that is not racy. */
static void upd_write(struct upd_world *w, const char *name, const char *text)
{
	char path[128], tmp[140];
	snprintf(path, sizeof(path), "%s/%s", w->dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	struct timespec ts[2] = {{.tv_sec = 1000000000 + ++w->stamp}, {.tv_sec = 1000000000 + w->stamp}};
	ck_assert_int_eq(utimensat(AT_FDCWD, tmp, ts, 0), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

static void upd_write_base(struct upd_world *w)
{
	char text[4096];
	snprintf(text, sizeof(text),
	         "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-a, labels: "
	         "{istio.io/dataplane-mode: ambient}}\n---\n"
	         "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-b, labels: "
	         "{istio.io/dataplane-mode: ambient, istio.io/use-waypoint: wp}}\n---\n"
	         "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-c}\n---\n"
	         "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: "
	         "{topology.kubernetes.io/region: r1}}\n---\n"
	         "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: wp, "
	         "namespace: ns-b, labels: {istio.io/waypoint-for: all}}\n"
	         "spec: {gatewayClassName: istio-waypoint}\n---\n"
	         "apiVersion: v1\nkind: Service\nmetadata: {name: wp, namespace: ns-b}\n"
	         "spec: {clusterIP: 10.96.9.9, ports: [{port: 15008}]}\n---\n"
	         "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: "
	         "s, namespace: ns-b}\nspec: {mtls: {mode: STRICT}}\n");
	for (unsigned ns = 0; ns < 3; ns++)
		for (unsigned app = 0; app < 3; app++) {
			size_t n = strlen(text);
			snprintf(text + n, sizeof(text) - n,
			         "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%u, namespace: "
			         "ns-%c}\nspec: {clusterIP: 10.96.%u.%u, selector: {app: a%u}, ports: "
			         "[{port: %u, targetPort: http}]}\n",
			         app, 'a' + ns, ns, app + 1, app, app ? 80 : w->svc_port);
		}
	upd_write(w, "base.yaml", text);
}

static void upd_write_policies(struct upd_world *w)
{
	char text[2048] = "";
	for (unsigned ns = 0; ns < 3; ns++) {
		size_t n = strlen(text);
		snprintf(text + n, sizeof(text) - n,
		         "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: "
		         "{name: p, namespace: ns-%c}\nspec:\n  selector: {matchLabels: {app: a%u}}\n"
		         "  rules: [{to: [{operation: {ports: [\"%u\"]}}]}]\n",
		         'a' + ns, ns, w->policy_port + ns);
	}
	upd_write(w, "policies.yaml", text);
}

static void upd_write_pods(struct upd_world *w, unsigned f)
{
	static char text[UPD_PODS * 400];
	char name[32];
	text[0] = '\0';
	for (unsigned i = 0; i < UPD_PODS; i++) {
		const struct upd_pod *p = &w->pods[f][i];
		size_t n = strlen(text);
		if (!p->live)
			continue;
		snprintf(text + n, sizeof(text) - n,
		         "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%u-%u, namespace: ns-%c, "
		         "labels: {app: a%u, version: v%u%s}}\nspec: {nodeName: n1, hostNetwork: %s, "
		         "containers: [{ports: [{name: http, containerPort: 8%03u}]}]}\n"
		         "status: {podIP: 10.1.%u.%u}\n",
		         f, i, 'a' + p->ns, p->app, p->ver,
		         p->mode == 1   ? ", istio.io/dataplane-mode: none"
		         : p->mode == 2 ? ", istio.io/dataplane-mode: ambient"
		                        : "",
		         p->host ? "true" : "false", p->app, f, p->ip);
	}
	snprintf(name, sizeof(name), "pods-%u.yaml", f);
	upd_write(w, name, text);
}

static void upd_random_pod(struct upd_pod *p)
{
	*p = (struct upd_pod){.live = true,
	                      .ns = (unsigned)rand() % 3,
	                      .app = (unsigned)rand() % 4,
	                      .ip = 1 + (unsigned)rand() % 250,
	                      .host = rand() % 10 == 0,
	                      .mode = rand() % 10 == 0 ? 1u : rand() % 2 ? 2u : 0u};
}

static void upd_assert_equal(const struct fi_resource *a, size_t na, const struct fi_resource *b,
                             size_t nb, const char *what, int iter)
{
	ck_assert_msg(na == nb, "iteration %d: %s: %zu resources incrementally, %zu in full", iter,
	              what, na, nb);
	for (size_t i = 0; i < na; i++) {
		ck_assert_msg(!strcmp(a[i].name, b[i].name), "iteration %d: %s[%zu]: %s vs %s", iter,
		              what, i, a[i].name, b[i].name);
		ck_assert_msg(!strcmp(a[i].version, b[i].version),
		              "iteration %d: %s %s: version %s incrementally, %s in full", iter, what,
		              a[i].name, a[i].version, b[i].version);
		/* Bytes reused from the stripped previous set are gone; the version is their hash. */
		ck_assert(!a[i].data || (a[i].len == b[i].len && !memcmp(a[i].data, b[i].data, a[i].len)));
	}
}

/* Random pod changes (added, removed, relabelled, moved, opted in or out (ns-c is not
 * ambient: its Services are sent while an opted-in pod selects them), host network), policy
 * rule changes, and now and then a Service change (which needs the full conversion): the
 * incremental result must equal fi_convert of the same model, resource for resource. */
START_TEST(convert_update_equals_full_conversion_on_random_changes)
{
	static struct upd_world w;
	const char *files[UPD_FILES + 2];
	char paths[UPD_FILES + 2][96], err[256];
	struct fi_mesh_cache *cache = fi_mesh_cache_new();
	struct fi_mesh prev_m = {0}, m;
	struct fi_resources prev = {0}, full, upd;
	int incremental = 0, fallback = 0;

	memset(&w, 0, sizeof(w));
	snprintf(w.dir, sizeof(w.dir), "/tmp/convert-upd.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(w.dir));
	srand(17);
	w.policy_port = 9000;
	w.svc_port = 70;
	for (unsigned f = 0; f < UPD_FILES; f++) {
		for (unsigned i = 0; i < UPD_PODS; i++)
			if (rand() % 2)
				upd_random_pod(&w.pods[f][i]);
		upd_write_pods(&w, f);
	}
	upd_write_base(&w);
	upd_write_policies(&w);
	for (unsigned f = 0; f < UPD_FILES; f++)
		snprintf(paths[f], sizeof(paths[f]), "%s/pods-%u.yaml", w.dir, f);
	snprintf(paths[UPD_FILES], sizeof(paths[0]), "%s/base.yaml", w.dir);
	snprintf(paths[UPD_FILES + 1], sizeof(paths[0]), "%s/policies.yaml", w.dir);
	for (unsigned f = 0; f < UPD_FILES + 2; f++)
		files[f] = paths[f];
	struct fi_mesh_opts mo = {.cache = cache};

	for (int iter = 0; iter < 100; iter++) {
		if (iter) {
			unsigned f = (unsigned)rand() % UPD_FILES;
			for (int k = 1 + rand() % 3; k > 0; k--) {
				struct upd_pod *p = &w.pods[f][(unsigned)rand() % UPD_PODS];
				switch (rand() % 5) {
				case 0:
					upd_random_pod(p);
					break;
				case 1:
					p->live = false;
					break;
				case 2:
					p->app = (unsigned)rand() % 4;
					p->ver++;
					break;
				case 3:
					p->ip = 1 + (unsigned)rand() % 250;
					break;
				default:
					p->mode = (p->mode + 1) % 3;
				}
			}
			upd_write_pods(&w, f);
			if (rand() % 3 == 0) {
				w.policy_port++;
				upd_write_policies(&w);
			}
			if (rand() % 8 == 0) {
				w.svc_port++;
				upd_write_base(&w);
			}
		}
		ck_assert_msg(fi_mesh_load(&m, files, UPD_FILES + 2, &mo, err, sizeof(err)) == 0,
		              "%s", err);
		ck_assert_int_eq(fi_convert(&m, NULL, &full, err, sizeof(err)), 0);
		int rc = fi_convert_update(&m, iter ? &prev_m : NULL, iter ? &prev : NULL, NULL, &upd,
		                           err, sizeof(err));
		ck_assert_msg(rc >= 0, "%s", err);
		incremental += rc == 1;
		fallback += iter && rc == 0;
		upd_assert_equal(upd.addresses, upd.n_addresses, full.addresses, full.n_addresses,
		                 "addresses", iter);
		upd_assert_equal(upd.authorizations, upd.n_authorizations, full.authorizations,
		                 full.n_authorizations, "authorizations", iter);
		upd_assert_equal(upd.waypoints, upd.n_waypoints, full.waypoints, full.n_waypoints,
		                 "waypoints", iter);
		fi_resources_clear(&full);
		fi_resources_clear(&prev);
		fi_mesh_clear(&prev_m);
		prev = upd;
		prev_m = m;
		fi_resources_strip(&prev);
	}
	size_t parsed, reused;
	fi_mesh_cache_stats(cache, &parsed, &reused);
	ck_assert_uint_gt(reused, 0);
	ck_assert_int_gt(incremental, 50);
	ck_assert_int_gt(fallback, 0);
	fi_resources_clear(&prev);
	fi_mesh_clear(&prev_m);
	fi_mesh_cache_free(cache);
	for (unsigned f = 0; f < UPD_FILES + 2; f++)
		unlink(paths[f]);
	rmdir(w.dir);
}
END_TEST

Suite *convert_suite(void);
Suite *convert_suite(void)
{
	Suite *s = suite_create("convert");
	TCase *tc = tcase_create("convert");
	tcase_add_loop_test(tc, convert_authorization_table, 0,
	                    (int)(sizeof(authz_cases) / sizeof(authz_cases[0])));
	tcase_add_test(tc, convert_dry_run_annotation_sets_dry_run);
	tcase_add_test(tc, convert_l7_warnings_name_policy_and_attribute);
	tcase_add_test(tc, convert_sample_sends_exactly_the_mesh);
	tcase_add_test(tc, convert_workload_fields_from_a_deployment_pod);
	tcase_add_test(tc, convert_bare_pod_is_pod_type_with_defaults);
	tcase_add_test(tc, convert_waypoint_by_namespace_label_and_strict_namespace);
	tcase_add_test(tc, convert_service_fields);
	tcase_add_test(tc, convert_opted_out_and_non_ambient_pods_are_not_sent);
	tcase_add_test(tc, convert_output_is_deterministic_and_versions_follow_content);
	tcase_add_test(tc, convert_waypoint_for_service_default_skips_workloads);
	tcase_add_test(tc, convert_waypoint_label_on_object_overrides_namespace);
	tcase_add_test(tc, convert_missing_waypoint_is_no_waypoint);
	tcase_add_test(tc, convert_pod_level_opt_in_and_unready_and_no_ip);
	tcase_add_test(tc, convert_job_and_cronjob_owners);
	tcase_add_test(tc, convert_selector_policy_listed_on_selected_workloads_only);
	tcase_add_test(tc, convert_peer_authentication_strict_synthetic_policy);
	tcase_add_test(tc, convert_peer_authentication_scopes);
	tcase_add_test(tc, convert_peer_authentication_port_level);
	tcase_add_test(tc, convert_options_change_identity_fields);
	tcase_add_test(tc, convert_empty_mesh_gives_no_resources);
	tcase_add_test(tc, convert_update_equals_full_conversion_on_random_changes);
	suite_add_tcase(s, tc);
	return s;
}
