/* fake-istiod's mesh model: the sample mesh loads with every kind, lookups and the CA's node
 * check, stable generated uids, the address file, skipped kinds, and one exact "file:line:
 * object: field: what" error for each kind of bad manifest or address line. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh_fixture.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define SAMPLE      "tests/data/mesh/sample.yaml"
#define SAMPLE_ADDR "tests/data/mesh/sample.addrs"

static void load_sample(struct fi_mesh *m)
{
	const char *files[] = {SAMPLE};
	struct fi_mesh_opts o = {.addresses_file = SAMPLE_ADDR};
	char err[512] = "";
	ck_assert_msg(fi_mesh_load(m, files, 1, &o, err, sizeof(err)) == 0, "%s", err);
}

static void assert_ip(const struct zt_ip *ip, const char *text)
{
	char got[ZT_IP_STRLEN];
	ck_assert_int_gt(zt_ip_format(ip, got, sizeof(got)), 0);
	ck_assert_str_eq(got, text);
}

START_TEST(mesh_loads_sample_with_every_kind)
{
	struct fi_mesh m;
	load_sample(&m);
	ck_assert_uint_eq(m.n_files, 1);
	ck_assert_uint_eq(m.n_namespaces, 4);
	ck_assert_uint_eq(m.n_nodes, 2);
	ck_assert_uint_eq(m.n_service_accounts, 4);
	ck_assert_uint_eq(m.n_pods, 6);
	ck_assert_uint_eq(m.n_services, 6);
	ck_assert_uint_eq(m.n_gateways, 1);
	ck_assert_uint_eq(m.n_authz_policies, 4);
	ck_assert_uint_eq(m.n_peer_authns, 1);
	/* sorted by namespace, then name */
	static const char *const pods[] = {"default/batch",   "default/echo-6d4f9c7b8-abcde",
	                                   "default/sleep",   "legacy/old",
	                                   "shop/waypoint-0", "shop/web-0"};
	for (size_t i = 0; i < m.n_pods; i++) {
		char key[128];
		snprintf(key, sizeof(key), "%s/%s", m.pods[i].meta.ns, m.pods[i].meta.name);
		ck_assert_str_eq(key, pods[i]);
	}
	ck_assert_str_eq(m.namespaces[0].meta.name, "default");
	ck_assert_ptr_null(m.namespaces[0].meta.ns);

	const struct fi_pod *echo = fi_mesh_find_pod(&m, "default", "echo-6d4f9c7b8-abcde");
	ck_assert_ptr_nonnull(echo);
	ck_assert_str_eq(echo->node, "node-2");
	ck_assert_str_eq(echo->service_account, "echo");
	ck_assert_str_eq(echo->owner_kind, "ReplicaSet");
	ck_assert_str_eq(echo->owner_name, "echo-6d4f9c7b8");
	ck_assert_uint_eq(echo->n_ports, 2);
	ck_assert_str_eq(echo->ports[1].name, "grpc");
	ck_assert_uint_eq(echo->ports[1].port, 9090);
	ck_assert_int_eq(echo->ports[1].protocol, FI_PROTO_TCP);
	ck_assert_str_eq(fi_labels_get(&echo->meta.labels, "version"), "v1");
	ck_assert(echo->ready);
	ck_assert_str_eq(echo->meta.file, SAMPLE);
	ck_assert_uint_eq(echo->meta.line, 79);

	const struct fi_pod *batch = fi_mesh_find_pod(&m, "default", "batch");
	ck_assert_str_eq(batch->service_account, "default"); /* defaulted */

	const struct fi_service *svc = fi_mesh_find_service(&m, "default", "echo");
	ck_assert_ptr_nonnull(svc);
	ck_assert_uint_eq(svc->n_ips, 1);
	assert_ip(&svc->ips[0], "10.96.0.20");
	ck_assert_uint_eq(svc->n_ports, 3);
	ck_assert_str_eq(svc->ports[0].target_port_name, "http");
	ck_assert_uint_eq(svc->ports[0].target_port, 0);
	ck_assert_uint_eq(svc->ports[1].target_port, 7001);
	ck_assert_ptr_null(svc->ports[1].target_port_name);
	const struct fi_service *headless = fi_mesh_find_service(&m, "default", "echo-headless");
	ck_assert(headless->headless);
	ck_assert_uint_eq(headless->n_ips, 0);
	ck_assert_uint_eq(headless->ports[0].target_port, 8080);

	ck_assert_ptr_nonnull(fi_mesh_find_namespace(&m, "shop"));
	ck_assert_ptr_nonnull(fi_mesh_find_node(&m, "node-1"));
	ck_assert_ptr_null(fi_mesh_find_node(&m, "node-3"));
	ck_assert_ptr_null(fi_mesh_find_pod(&m, "default", "nope"));
	ck_assert_ptr_null(fi_mesh_find_pod(&m, "nope", "sleep"));
	const struct fi_gateway *gw = fi_mesh_find_gateway(&m, "shop", "waypoint");
	ck_assert_str_eq(gw->class_name, FI_WAYPOINT_CLASS);

	const struct fi_authz_policy *ap = &m.authz_policies[0];
	ck_assert_str_eq(ap->meta.name, "echo-allow-sleep");
	ck_assert_int_eq(ap->action, FI_AUTHZ_ALLOW);
	ck_assert_str_eq(fi_labels_get(&ap->selector, "app"), "echo");
	ck_assert_uint_eq(ap->n_rules, 1);
	ck_assert_str_eq(ap->rules[0].from[0].f[FI_SRC_PRINCIPALS].v[0],
	                 "cluster.local/ns/default/sa/sleep");
	ck_assert_str_eq(ap->rules[0].to[0].f[FI_OP_PORTS].v[0], "8080");
	ck_assert(m.authz_policies[3].has_target_ref);
	ck_assert_int_eq(m.peer_authns[0].mode, FI_MTLS_STRICT);
	fi_mesh_clear(&m);
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(mesh_pod_on_node_covers_every_pod)
{
	struct fi_mesh m;
	load_sample(&m);
	ck_assert(fi_mesh_has_pod_on_node(&m, "node-2", "default", "echo"));
	ck_assert(!fi_mesh_has_pod_on_node(&m, "node-1", "default", "echo"));
	ck_assert(fi_mesh_has_pod_on_node(&m, "node-2", "legacy", "default"));  /* not in mesh */
	ck_assert(fi_mesh_has_pod_on_node(&m, "node-1", "default", "default")); /* opted out */
	ck_assert(!fi_mesh_has_pod_on_node(&m, "node-1", "shop", "default"));
	ck_assert(!fi_mesh_has_pod_on_node(&m, "node-3", "default", "sleep"));
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(mesh_membership_and_waypoint_pods)
{
	struct fi_mesh m;
	load_sample(&m);
	ck_assert(fi_mesh_pod_in_mesh(&m, fi_mesh_find_pod(&m, "default", "sleep")));
	ck_assert(!fi_mesh_pod_in_mesh(&m, fi_mesh_find_pod(&m, "default", "batch")));
	ck_assert(!fi_mesh_pod_in_mesh(&m, fi_mesh_find_pod(&m, "legacy", "old")));
	const struct fi_pod *wp = fi_mesh_find_pod(&m, "shop", "waypoint-0");
	ck_assert(!fi_mesh_pod_in_mesh(&m, wp));
	ck_assert_ptr_eq(fi_mesh_pod_waypoint(&m, wp),
	                 fi_mesh_find_gateway(&m, "shop", "waypoint"));
	ck_assert_ptr_null(fi_mesh_pod_waypoint(&m, fi_mesh_find_pod(&m, "shop", "web-0")));
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(mesh_address_file_overrides_and_fills_in)
{
	struct fi_mesh m;
	load_sample(&m);
	const struct fi_pod *web = fi_mesh_find_pod(&m, "shop", "web-0");
	ck_assert_uint_eq(web->n_ips, 2);
	assert_ip(&web->ips[0], "10.244.1.12");
	assert_ip(&web->ips[1], "fd00::c");
	const struct fi_pod *echo = fi_mesh_find_pod(&m, "default", "echo-6d4f9c7b8-abcde");
	ck_assert_uint_eq(echo->n_ips, 1);
	assert_ip(&echo->ips[0], "10.244.2.10");
	fi_mesh_clear(&m);

	/* without the file, status stays and the echo pod has no address */
	const char *files[] = {SAMPLE};
	char err[256];
	ck_assert_int_eq(fi_mesh_load(&m, files, 1, NULL, err, sizeof(err)), 0);
	web = fi_mesh_find_pod(&m, "shop", "web-0");
	ck_assert_uint_eq(web->n_ips, 1);
	assert_ip(&web->ips[0], "10.244.1.99");
	ck_assert_uint_eq(fi_mesh_find_pod(&m, "default", "echo-6d4f9c7b8-abcde")->n_ips, 0);
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(mesh_generated_uid_is_stable_and_given_uid_kept)
{
	const char *y = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n"
	                "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n---\n"
	                "apiVersion: v1\nkind: Pod\nmetadata: {name: c, uid: given-1}\n";
	struct fi_mesh m1, m2;
	char err[256];
	ck_assert_int_eq(fx_mesh_load(&m1, &y, 1, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(fx_mesh_load(&m2, &y, 1, NULL, err, sizeof(err)), 0);
	const char *a = fi_mesh_find_pod(&m1, "default", "a")->meta.uid;
	ck_assert_uint_eq(strlen(a), 36);
	ck_assert(a[8] == '-' && a[13] == '-' && a[14] == '5' && a[18] == '-' && a[23] == '-');
	ck_assert_str_eq(a, fi_mesh_find_pod(&m2, "default", "a")->meta.uid);
	ck_assert_str_ne(a, fi_mesh_find_pod(&m1, "default", "b")->meta.uid);
	ck_assert_str_eq(fi_mesh_find_pod(&m1, "default", "c")->meta.uid, "given-1");
	fi_mesh_clear(&m1);
	fi_mesh_clear(&m2);
}
END_TEST

static char captured[4096];

static void capture_cb(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)level;
	(void)arg;
	size_t have = strlen(captured);
	if (have + len < sizeof(captured)) {
		memcpy(captured + have, line, len);
		captured[have + len] = '\0';
	}
}

START_TEST(mesh_unknown_kinds_are_skipped_with_a_warning)
{
	const char *y = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: x}\n"
	                "---\n"
	                "apiVersion: networking.istio.io/v1\nkind: Gateway\n"
	                "metadata: {name: g}\nspec: {servers: []}\n---\n"
	                "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
	                "metadata: {name: r}\n---\n"
	                "apiVersion: security.istio.io/v1alpha1\nkind: AuthorizationPolicy\n"
	                "metadata: {name: old}\n---\n"
	                "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
	struct fi_mesh m;
	char err[256];
	captured[0] = '\0';
	zt_log_set_sink(capture_cb, NULL);
	int rc = fx_mesh_load(&m, &y, 1, NULL, err, sizeof(err));
	zt_log_set_sink(NULL, NULL);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(m.n_pods, 1);
	ck_assert_uint_eq(m.n_gateways, 0);
	ck_assert_uint_eq(m.n_authz_policies, 0);
	ck_assert_ptr_nonnull(strstr(captured, "m.yaml:1: skipping unsupported kind Deployment "
	                                       "(apps/v1) x/d"));
	ck_assert_ptr_nonnull(strstr(captured, "kind Gateway (networking.istio.io/v1) g"));
	ck_assert_ptr_nonnull(strstr(captured, "kind RequestAuthentication"));
	ck_assert_ptr_nonnull(strstr(captured, "kind AuthorizationPolicy "
	                                       "(security.istio.io/v1alpha1)"));
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(mesh_lists_empty_documents_and_same_names_across_kinds)
{
	const char *y = "---\n---\napiVersion: v1\nkind: List\nitems:\n"
	                "- {apiVersion: v1, kind: Pod, metadata: {name: web}}\n"
	                "- {apiVersion: v1, kind: Service, metadata: {name: web}}\n"
	                "---\n# only a comment\n";
	struct fi_mesh m;
	char err[256];
	ck_assert_int_eq(fx_mesh_load(&m, &y, 1, NULL, err, sizeof(err)), 0);
	ck_assert_uint_eq(m.n_pods, 1);
	ck_assert_uint_eq(m.n_services, 1);
	ck_assert_uint_eq(m.pods[0].meta.line, 6);
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(mesh_address_entry_for_unknown_pod_is_a_warning)
{
	const char *y = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n";
	struct fi_mesh m;
	char err[256];
	captured[0] = '\0';
	zt_log_set_sink(capture_cb, NULL);
	int rc = fx_mesh_load(&m, &y, 1, "default/gone 10.0.0.1\ndefault/web ::1\n", err,
	                      sizeof(err));
	zt_log_set_sink(NULL, NULL);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(strstr(captured, "addrs:1: no pod default/gone"));
	assert_ip(&m.pods[0].ips[0], "::1");
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(mesh_unreadable_files_name_the_path)
{
	struct fi_mesh m;
	char err[256];
	const char *files[] = {"/nonexistent/nope.yaml"};
	ck_assert_int_eq(fi_mesh_load(&m, files, 1, NULL, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/nope.yaml: No such file or directory");
	ck_assert_uint_eq(m.n_pods, 0);
	const char *ok[] = {SAMPLE};
	struct fi_mesh_opts o = {.addresses_file = "/nonexistent/addrs"};
	ck_assert_int_eq(fi_mesh_load(&m, ok, 1, &o, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/addrs: No such file or directory");
	/* a failed load leaves nothing behind */
	ck_assert_uint_eq(m.n_pods, 0);
	ck_assert_uint_eq(m.n_files, 0);
}
END_TEST

/* ---- one exact error per bad input ------------------------------------------------------- */

#define POD_HEAD "apiVersion: v1\nkind: Pod\n"
#define SVC_HEAD "apiVersion: v1\nkind: Service\n"
#define AP_HEAD                                                                                    \
	"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"                            \
	"metadata: {name: p, namespace: app}\n"
#define PA_HEAD                                                                                    \
	"apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\n"                        \
	"metadata: {name: pa, namespace: app}\n"

static const struct bad_case {
	const char *name;
	const char *yaml;
	const char *yaml2; /* a second file, or NULL */
	const char *addrs; /* an address file, or NULL */
	int rc;
	const char *err;
} bad_cases[] = {
        {"container_port_not_an_integer",
         POD_HEAD "metadata: {name: web}\nspec:\n  containers:\n  - name: c\n    ports:\n"
                  "    - containerPort: 80\n    - containerPort: http\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:9: Pod default/web: spec.containers[0].ports[1].containerPort: expected an "
         "integer 1..65535, got \"http\""},
        {"service_port_out_of_range",
         SVC_HEAD "metadata: {name: s, namespace: app}\nspec:\n  ports:\n  - port: 70000\n", NULL,
         NULL, ZT_E_RANGE,
         "m.yaml:6: Service app/s: spec.ports[0].port: expected an integer 1..65535, got "
         "\"70000\""},
        {"container_port_zero",
         POD_HEAD "metadata: {name: w}\nspec: {containers: [{ports: "
                  "[{containerPort: 0}]}]}\n",
         NULL, NULL, ZT_E_RANGE,
         "m.yaml:4: Pod default/w: spec.containers[0].ports[0].containerPort: expected an "
         "integer 1..65535, got \"0\""},
        {"container_port_missing",
         POD_HEAD "metadata: {name: w}\nspec: {containers: [{ports: "
                  "[{name: http}]}]}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: Pod default/w: spec.containers[0].ports[0].containerPort: required"},
        {"container_port_bad_name",
         POD_HEAD "metadata: {name: w}\nspec: {containers: [{ports: "
                  "[{name: Web_Port, containerPort: 80}]}]}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: Pod default/w: spec.containers[0].ports[0].name: expected a port name (up "
         "to 15 of a-z, 0-9, '-'), got \"Web_Port\""},
        {"bad_pod_ip", POD_HEAD "metadata: {name: web, namespace: app}\nstatus:\n  podIP: 10.0.0\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:5: Pod app/web: status.podIP: expected an IP address, got \"10.0.0\""},
        {"bad_pod_ips_entry",
         POD_HEAD "metadata: {name: web, namespace: app}\nstatus: {podIPs: [{ip: 10.0.0.1}, {ip: "
                  "'fe80::1%eth0'}]}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: Pod app/web: status.podIPs[1].ip: expected an IP address, got "
         "\"fe80::1%eth0\""},
        {"too_many_pod_ips",
         POD_HEAD "metadata: {name: w}\nstatus: {podIPs: [{ip: 10.0.0.1}, {ip: 10.0.0.2}, {ip: "
                  "10.0.0.3}, {ip: 10.0.0.4}, {ip: 10.0.0.5}, {ip: 10.0.0.6}, {ip: 10.0.0.7}, "
                  "{ip: 10.0.0.8}, {ip: 10.0.0.9}]}\n",
         NULL, NULL, ZT_E_TOOBIG,
         "m.yaml:4: Pod default/w: status.podIPs[8].ip: more than 8 addresses"},
        {"bad_cluster_ip",
         SVC_HEAD "metadata: {name: s, namespace: app}\nspec: {clusterIP: "
                  "300.0.0.1}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: Service app/s: spec.clusterIP: expected an IP address, got \"300.0.0.1\""},
        {"bad_target_port",
         SVC_HEAD "metadata: {name: s}\nspec: {ports: [{port: 80, targetPort: "
                  "Http_1}]}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: Service default/s: spec.ports[0].targetPort: expected a port number or name, "
         "got \"Http_1\""},
        {"bad_protocol",
         SVC_HEAD "metadata: {name: s}\nspec: {ports: [{port: 80, protocol: "
                  "tcp}]}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: Service default/s: spec.ports[0].protocol: expected TCP, UDP or SCTP, got "
         "\"tcp\""},
        {"labels_wrong_type", POD_HEAD "metadata:\n  name: web\n  labels:\n  - app\n", NULL, NULL,
         ZT_E_PARSE,
         "m.yaml:6: Pod default/web: metadata.labels: expected a mapping of strings, got "
         "sequence"},
        {"label_value_wrong_type", POD_HEAD "metadata: {name: web, labels: {app: {x: y}}}\n", NULL,
         NULL, ZT_E_PARSE,
         "m.yaml:3: Pod default/web: metadata.labels.app: expected a string, got mapping"},
        {"missing_metadata_name", POD_HEAD "metadata:\n  namespace: app\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: Pod: metadata.name: required"},
        {"missing_metadata", SVC_HEAD "spec: {}\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:1: Service: metadata.name: required"},
        {"name_wrong_type", POD_HEAD "metadata: {name: [a]}\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:3: Pod: metadata.name: expected a string, got sequence"},
        {"name_not_a_dns_name", POD_HEAD "metadata: {name: Web}\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:3: Pod: metadata.name: expected a DNS name (lowercase letters, digits, '-', "
         "'.'), got \"Web\""},
        {"namespace_with_slash", POD_HEAD "metadata: {name: web, namespace: a/b}\n", NULL, NULL,
         ZT_E_PARSE,
         "m.yaml:3: Pod: metadata.namespace: expected a DNS label (lowercase letters, digits, "
         "'-'), got \"a/b\""},
        {"bad_bool", POD_HEAD "metadata: {name: w}\nspec: {hostNetwork: maybe}\n", NULL, NULL,
         ZT_E_PARSE,
         "m.yaml:4: Pod default/w: spec.hostNetwork: expected true or false, got \"maybe\""},
        {"spec_not_a_mapping", POD_HEAD "metadata: {name: w}\nspec: [1]\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: Pod default/w: spec: expected a mapping, got sequence"},
        {"duplicate_object",
         POD_HEAD "metadata: {name: web}\n---\n" POD_HEAD "metadata: {name: web, namespace: "
                  "default}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:5: Pod default/web: duplicate (first defined at m.yaml:1)"},
        {"duplicate_across_files", SVC_HEAD "metadata: {name: s, namespace: a}\n",
         SVC_HEAD "metadata: {name: s, namespace: a}\n", NULL, ZT_E_PARSE,
         "m2.yaml:1: Service a/s: duplicate (first defined at m.yaml:1)"},
        {"duplicate_namespace",
         "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
         "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: y}}\n",
         NULL, NULL, ZT_E_PARSE, "m.yaml:5: Namespace a: duplicate (first defined at m.yaml:1)"},
        {"document_not_a_mapping", "- a\n- b\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:1: expected a Kubernetes object (a mapping), got sequence"},
        {"missing_kind", "apiVersion: v1\nmetadata: {name: x}\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:1: kind: required"},
        {"yaml_syntax_error", "kind: Pod\nmetadata: {name: [\n", NULL, NULL, ZT_E_PARSE, NULL},
        {"gateway_without_class",
         "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, "
         "namespace: app}\nspec: {}\n",
         NULL, NULL, ZT_E_PARSE, "m.yaml:4: Gateway app/g: spec.gatewayClassName: required"},
        {"policy_unknown_source_field",
         AP_HEAD "spec:\n  rules:\n  - from:\n    - source:\n        principal: [a]\n", NULL, NULL,
         ZT_E_PARSE,
         "m.yaml:8: AuthorizationPolicy app/p: spec.rules[0].from[0].source: unknown field "
         "\"principal\""},
        {"policy_unknown_rule_field", AP_HEAD "spec: {rules: [{form: []}]}\n", NULL, NULL,
         ZT_E_PARSE, "m.yaml:4: AuthorizationPolicy app/p: spec.rules[0]: unknown field \"form\""},
        {"policy_bad_action", AP_HEAD "spec: {action: REJECT}\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: AuthorizationPolicy app/p: spec.action: expected ALLOW, DENY, AUDIT or "
         "CUSTOM, got \"REJECT\""},
        {"policy_when_without_values", AP_HEAD "spec: {rules: [{when: [{key: source.ip}]}]}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: AuthorizationPolicy app/p: spec.rules[0].when[0]: needs values or "
         "notValues"},
        {"policy_when_without_key", AP_HEAD "spec: {rules: [{when: [{values: [a]}]}]}\n", NULL,
         NULL, ZT_E_PARSE,
         "m.yaml:4: AuthorizationPolicy app/p: spec.rules[0].when[0].key: required"},
        {"policy_empty_source", AP_HEAD "spec: {rules: [{from: [{source: {}}]}]}\n", NULL, NULL,
         ZT_E_PARSE,
         "m.yaml:4: AuthorizationPolicy app/p: spec.rules[0].from[0].source: must not be empty"},
        {"policy_missing_operation", AP_HEAD "spec: {rules: [{to: [{}]}]}\n", NULL, NULL,
         ZT_E_PARSE,
         "m.yaml:4: AuthorizationPolicy app/p: spec.rules[0].to[0].operation: required"},
        {"policy_list_not_a_sequence",
         AP_HEAD "spec: {rules: [{from: [{source: {principals: a}}]}]}\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: AuthorizationPolicy app/p: spec.rules[0].from[0].source.principals: "
         "expected a sequence, got \"a\""},
        {"policy_list_item_not_a_string",
         AP_HEAD "spec: {rules: [{to: [{operation: {ports: [[80]]}}]}]}\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: AuthorizationPolicy app/p: spec.rules[0].to[0].operation.ports[0]: expected "
         "a string, got sequence"},
        {"policy_selector_wrong_type", AP_HEAD "spec: {selector: {matchLabels: [app]}}\n", NULL,
         NULL, ZT_E_PARSE,
         "m.yaml:4: AuthorizationPolicy app/p: spec.selector.matchLabels: expected a mapping of "
         "strings, got sequence"},
        {"peer_authentication_bad_mode", PA_HEAD "spec: {mtls: {mode: strict}}\n", NULL, NULL,
         ZT_E_PARSE,
         "m.yaml:4: PeerAuthentication app/pa: spec.mtls.mode: expected UNSET, DISABLE, "
         "PERMISSIVE or STRICT, got \"strict\""},
        {"peer_authentication_port_level_needs_selector",
         PA_HEAD "spec: {portLevelMtls: {80: {mode: STRICT}}}\n", NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: PeerAuthentication app/pa: spec.portLevelMtls: needs a workload selector"},
        {"peer_authentication_bad_port",
         PA_HEAD "spec: {selector: {matchLabels: {a: b}}, portLevelMtls: {http: {mode: "
                 "STRICT}}}\n",
         NULL, NULL, ZT_E_PARSE,
         "m.yaml:4: PeerAuthentication app/pa: spec.portLevelMtls: expected an integer "
         "1..65535, got \"http\""},
        {"address_line_without_ip", POD_HEAD "metadata: {name: web}\n", NULL,
         "# pods\ndefault/web\n", ZT_E_PARSE, "addrs:2: expected \"namespace/pod IP[,IP]\""},
        {"address_line_without_namespace", POD_HEAD "metadata: {name: web}\n", NULL,
         "web 10.0.0.1\n", ZT_E_PARSE, "addrs:1: expected \"namespace/pod IP[,IP]\""},
        {"address_line_with_extra_field", POD_HEAD "metadata: {name: web}\n", NULL,
         "default/web 10.0.0.1 10.0.0.2\n", ZT_E_PARSE,
         "addrs:1: expected \"namespace/pod IP[,IP]\""},
        {"address_bad_ip", POD_HEAD "metadata: {name: web}\n", NULL,
         "# c\n\n  default/web 10.0.0.1,10.0.0  # x\n", ZT_E_PARSE,
         "addrs:3: default/web: bad IP address \"10.0.0\""},
        {"address_empty_ip", POD_HEAD "metadata: {name: web}\n", NULL, "default/web 10.0.0.1,\n",
         ZT_E_PARSE, "addrs:1: default/web: bad IP address \"\""},
        {"address_listed_twice", POD_HEAD "metadata: {name: web}\n", NULL,
         "default/web 10.0.0.1\ndefault/web 10.0.0.2 # again\n", ZT_E_PARSE,
         "addrs:2: default/web: listed twice (first at line 1)"},
        {"address_too_many_ips", POD_HEAD "metadata: {name: web}\n", NULL,
         "default/web 1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8,1.1.1.9\n",
         ZT_E_TOOBIG, "addrs:1: default/web: more than 8 addresses"},
};

START_TEST(mesh_bad_input_gives_one_clear_error)
{
	const struct bad_case *tc = &bad_cases[_i];
	const char *texts[] = {tc->yaml, tc->yaml2};
	struct fi_mesh m;
	char err[512] = "";
	int rc = fx_mesh_load(&m, texts, tc->yaml2 ? 2 : 1, tc->addrs, err, sizeof(err));
	ck_assert_msg(rc == tc->rc, "%s: rc %d (%s), want %d", tc->name, rc, err, tc->rc);
	if (tc->err)
		ck_assert_msg(!strcmp(err, tc->err), "%s:\n got  %s\n want %s", tc->name, err,
		              tc->err);
	else
		ck_assert_msg(!strncmp(err, "m.yaml:", 7), "%s: %s", tc->name, err);
	ck_assert_uint_eq(m.n_pods + m.n_services + m.n_namespaces + m.n_files, 0);
}
END_TEST

START_TEST(mesh_address_file_rejects_overlong_lines)
{
	const char *y = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n";
	char *addrs = malloc(FI_ADDR_FILE_MAX_LINE + 100);
	ck_assert_ptr_nonnull(addrs);
	memset(addrs, 'x', FI_ADDR_FILE_MAX_LINE + 50);
	addrs[FI_ADDR_FILE_MAX_LINE + 50] = '\0';
	struct fi_mesh m;
	char err[256];
	ck_assert_int_eq(fx_mesh_load(&m, &y, 1, addrs, err, sizeof(err)), ZT_E_TOOBIG);
	ck_assert_str_eq(err, "addrs:1: line longer than 4096 bytes");
	free(addrs);
}
END_TEST

/* ---- streaming and bounds ----------------------------------------------------------------- */

#define NS_DOC(n) "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " n "}\n"
#define POD_DOC(n)                                                                                 \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " n ", namespace: app}\n"              \
	"spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}\n"      \
	"status: {podIP: 10.0.0.1}\n"

/* Documents are converted one by one as they are read; an error in a later document names
 * its own file and line, and the load keeps nothing, neither the earlier documents of that
 * file nor earlier files (the server then goes on with its last good state). */
START_TEST(mesh_error_in_a_later_document_names_its_line_and_keeps_nothing)
{
	const char *texts[] = {NS_DOC("app") POD_DOC("a"),
	                       POD_DOC("b") POD_DOC("c") /* the port at line 17: */
	                       "---\napiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: app}\n"
	                       "spec: {containers: [{ports: [{containerPort: 0}]}]}\n" POD_DOC("e")};
	struct fi_mesh m;
	char err[512] = "";
	ck_assert_int_eq(fx_mesh_load(&m, texts, 2, NULL, err, sizeof(err)), ZT_E_RANGE);
	ck_assert_str_eq(err, "m2.yaml:17: Pod app/d: spec.containers[0].ports[0].containerPort: "
	                      "expected an integer 1..65535, got \"0\"");
	ck_assert_uint_eq(m.n_pods + m.n_namespaces + m.n_files, 0);
	/* The same files without the bad document load whole. */
	texts[1] = POD_DOC("b") POD_DOC("c") POD_DOC("e");
	ck_assert_msg(fx_mesh_load(&m, texts, 2, NULL, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m.n_pods, 4);
	ck_assert_uint_eq(m.n_namespaces, 1);
	ck_assert_uint_eq(m.n_files, 2);
	fi_mesh_clear(&m);
}
END_TEST

/* A load asked to stop (a server shutting down) stops at the next document and keeps
 * nothing. */
START_TEST(mesh_cancelled_load_stops_and_keeps_nothing)
{
	const char *text = NS_DOC("app") POD_DOC("a") POD_DOC("b");
	atomic_bool cancel = true;
	struct fi_mesh_opts o = {.cancel = &cancel};
	struct fi_mesh m;
	char err[512] = "";
	ck_assert_int_eq(fx_mesh_load_opts(&m, &text, 1, NULL, &o, err, sizeof(err)),
	                 ZT_E_CANCELLED);
	ck_assert_str_eq(err, "m.yaml: load cancelled");
	ck_assert_uint_eq(m.n_pods + m.n_namespaces + m.n_files, 0);
	atomic_store(&cancel, false);
	ck_assert_msg(fx_mesh_load_opts(&m, &text, 1, NULL, &o, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m.n_pods, 2);
	fi_mesh_clear(&m);
}
END_TEST

/* Strings that repeat across objects are held once: two pods of one namespace, node, service
 * account and labels share those strings; different values stay different. */
START_TEST(mesh_repeated_strings_are_interned)
{
	const char *text =
	        POD_DOC("a") POD_DOC("b")
	        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: other, labels: "
	        "{app: x}}\nspec: {nodeName: node-2, serviceAccountName: sa2}\n"
	        "---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: other}\n"
	        "spec: {selector: {app: x}, ports: [{port: 80}]}\n";
	struct fi_mesh m;
	char err[512] = "";
	ck_assert_msg(fx_mesh_load(&m, &text, 1, NULL, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m.n_pods, 3);
	const struct fi_pod *a = fi_mesh_find_pod(&m, "app", "a"), *b = fi_mesh_find_pod(&m, "app", "b");
	const struct fi_pod *c = fi_mesh_find_pod(&m, "other", "c");
	const struct fi_service *s = fi_mesh_find_service(&m, "other", "s");
	ck_assert(a && b && c && s);
	ck_assert_ptr_eq(a->meta.ns, b->meta.ns);
	ck_assert_ptr_eq(a->node, b->node);
	ck_assert_ptr_eq(a->service_account, b->service_account);
	ck_assert_ptr_ne(a->meta.ns, c->meta.ns);
	ck_assert_ptr_ne(a->node, c->node);
	ck_assert_str_eq(a->service_account, "default");
	ck_assert_str_eq(c->service_account, "sa2");
	ck_assert_ptr_eq(c->meta.ns, s->meta.ns);
	ck_assert_uint_eq(c->meta.labels.n, 1);
	ck_assert_ptr_eq(c->meta.labels.v[0].key, s->selector.v[0].key);
	ck_assert_ptr_eq(c->meta.labels.v[0].value, s->selector.v[0].value);
	ck_assert(fi_labels_match(&s->selector, &c->meta.labels));
	ck_assert_str_eq(c->meta.name, "c");
	/* Names are each object's own. */
	ck_assert_ptr_ne(a->meta.name, b->meta.name);
	fi_mesh_clear(&m);
	ck_assert_ptr_null(m.strings);
}
END_TEST

/* The node bound is per document: many small documents pass where their total would not,
 * one document over it fails naming the flag that raises it; the byte bound is per file. */
START_TEST(mesh_yaml_bounds_are_options_and_errors_name_the_flag)
{
	const char *many = NS_DOC("app") POD_DOC("a") POD_DOC("b") POD_DOC("c") POD_DOC("d");
	struct fi_mesh_opts o = {.max_yaml_nodes = 40};
	struct fi_mesh m;
	char err[512] = "";
	ck_assert_msg(fx_mesh_load_opts(&m, &many, 1, NULL, &o, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m.n_pods, 4);
	fi_mesh_clear(&m);

	o.max_yaml_nodes = 20;
	ck_assert_int_eq(fx_mesh_load_opts(&m, &many, 1, NULL, &o, err, sizeof(err)), ZT_E_TOOBIG);
	ck_assert_msg(strstr(err, "m.yaml:") == err && strstr(err, ": more than 20 nodes in one "
	                                                           "document (raise with "
	                                                           "--max-yaml-nodes)"),
	              "%s", err);
	ck_assert_uint_eq(m.n_pods + m.n_namespaces, 0);

	o = (struct fi_mesh_opts){.max_yaml_bytes = 200};
	ck_assert_int_eq(fx_mesh_load_opts(&m, &many, 1, NULL, &o, err, sizeof(err)), ZT_E_TOOBIG);
	ck_assert_str_eq(err, "m.yaml: larger than 200 bytes (raise with --max-yaml-bytes)");
	ck_assert_uint_eq(m.n_pods + m.n_namespaces, 0);

	/* The address file is held to the byte bound too. */
	o.max_yaml_bytes = 1024;
	const char *one = POD_DOC("a");
	char addrs[2048];
	size_t off = 0;
	for (int i = 0; i < 100; i++)
		off += (size_t)snprintf(addrs + off, sizeof(addrs) - off, "# a comment line\n");
	ck_assert_int_eq(fx_mesh_load_opts(&m, &one, 1, addrs, &o, err, sizeof(err)), ZT_E_TOOBIG);
	ck_assert_msg(strstr(err, "addrs:") == err &&
	                      strstr(err, "larger than 1024 bytes (raise with --max-yaml-bytes)"),
	              "%s", err);
}
END_TEST

START_TEST(mesh_labels_lookup_and_selectors)
{
	const char *y = "apiVersion: v1\nkind: Pod\nmetadata: {name: w, labels: {b: '2', a: 1, "
	                "c: ~, d: ''}}\n";
	struct fi_mesh m;
	char err[256];
	ck_assert_int_eq(fx_mesh_load(&m, &y, 1, NULL, err, sizeof(err)), 0);
	const struct fi_labels *l = &m.pods[0].meta.labels;
	ck_assert_uint_eq(l->n, 4);
	ck_assert_str_eq(l->v[0].key, "a"); /* sorted */
	ck_assert_str_eq(fi_labels_get(l, "a"), "1");
	ck_assert_str_eq(fi_labels_get(l, "c"), "");
	ck_assert_ptr_null(fi_labels_get(l, "z"));
	struct fi_label sel_v[] = {{"a", "1"}, {"b", "2"}};
	struct fi_labels sel = {sel_v, 2};
	ck_assert(fi_labels_match(&sel, l));
	sel_v[1].value = "3";
	ck_assert(!fi_labels_match(&sel, l));
	struct fi_labels none = {0};
	ck_assert(fi_labels_match(&none, l));
	fi_mesh_clear(&m);
}
END_TEST


/* ---- the parsed-file cache of reloads ------------------------------------------------------ */

/* Writes text to dir/name by rename, modified at the given second (long past: not racy). */
static void cache_write(const char *dir, const char *name, const char *text, time_t mtime)
{
	char path[128], tmp[140];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	if (mtime) {
		struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
		ck_assert_int_eq(utimensat(AT_FDCWD, tmp, ts, 0), 0);
	}
	ck_assert_int_eq(rename(tmp, path), 0);
}

#define CACHE_POD(name, ns, node, sa)                                                              \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: " ns "}\n"          \
	"spec: {nodeName: " node ", serviceAccountName: " sa "}\nstatus: {podIP: 10.0.0.1}\n"

/* A reload reads only the files that changed and shares the others' objects; a broken file
 * fails the load and leaves the cache as it was; a file written just now is read again; the
 * CA's node check sees every file's pods. */
START_TEST(mesh_cache_reads_only_changed_files_and_keeps_the_last_good_parts)
{
	char dir[] = "/tmp/mesh-cache.XXXXXX", a[128], b[128], err[512] = "";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.yaml", dir);
	snprintf(b, sizeof(b), "%s/b.yaml", dir);
	const char *files[] = {a, b};
	struct fi_mesh_cache *cache = fi_mesh_cache_new();
	struct fi_mesh_opts o = {.cache = cache};
	struct fi_mesh m1, m2, m3;
	size_t parsed, reused;

	cache_write(dir, "a.yaml", CACHE_POD("p1", "x", "n1", "sa1") CACHE_POD("p2", "x", "n2", "sa2"),
	            1000000000);
	cache_write(dir, "b.yaml", CACHE_POD("q1", "y", "n1", "sb1"), 1000000001);
	ck_assert_msg(fi_mesh_load(&m1, files, 2, &o, err, sizeof(err)) == 0, "%s", err);
	fi_mesh_cache_stats(cache, &parsed, &reused);
	ck_assert_uint_eq(parsed, 2);
	ck_assert_uint_eq(reused, 0);
	ck_assert(fi_mesh_has_pod_on_node(&m1, "n1", "y", "sb1"));
	ck_assert(fi_mesh_has_pod_on_node(&m1, "n2", "x", "sa2"));
	ck_assert(!fi_mesh_has_pod_on_node(&m1, "n2", "x", "sa1"));
	ck_assert(!fi_mesh_has_pod_on_node(&m1, "n1", "y", "sb2"));

	/* b changes (a new pod, one node moved): a is not read again, its pods are shared. */
	cache_write(dir, "b.yaml", CACHE_POD("q1", "y", "n3", "sb1") CACHE_POD("q2", "y", "n1", "sb2"),
	            1000000002);
	ck_assert_msg(fi_mesh_load(&m2, files, 2, &o, err, sizeof(err)) == 0, "%s", err);
	fi_mesh_cache_stats(cache, &parsed, &reused);
	ck_assert_uint_eq(parsed, 1);
	ck_assert_uint_eq(reused, 1);
	ck_assert_uint_eq(m2.n_pods, 4);
	ck_assert_ptr_eq(fi_mesh_find_pod(&m2, "x", "p1")->meta.name,
	                 fi_mesh_find_pod(&m1, "x", "p1")->meta.name);
	ck_assert_str_eq(fi_mesh_find_pod(&m2, "y", "q1")->node, "n3");
	ck_assert_str_eq(fi_mesh_find_pod(&m1, "y", "q1")->node, "n1"); /* m1 is intact */
	ck_assert(!fi_mesh_has_pod_on_node(&m2, "n1", "y", "sb1"));
	ck_assert(fi_mesh_has_pod_on_node(&m2, "n1", "y", "sb2"));
	/* Load order still numbers objects across files, as a single load does. */
	ck_assert_uint_lt(fi_mesh_find_pod(&m2, "x", "p2")->meta.seq,
	                  fi_mesh_find_pod(&m2, "y", "q1")->meta.seq);
	fi_mesh_clear(&m1);

	/* A broken b fails the load with its line; a duplicate across files too. */
	cache_write(dir, "b.yaml", CACHE_POD("q1", "y", "n3", "sb1") "---\nkind: [\n", 1000000003);
	ck_assert_int_lt(fi_mesh_load(&m3, files, 2, &o, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "b.yaml:"), "%s", err);
	cache_write(dir, "b.yaml", CACHE_POD("p1", "x", "n3", "sb1"), 1000000004);
	ck_assert_int_eq(fi_mesh_load(&m3, files, 2, &o, err, sizeof(err)), ZT_E_PARSE);
	ck_assert_msg(strstr(err, "b.yaml:2: Pod x/p1: duplicate (first defined at"), "%s", err);

	/* Back to the content of m2, written just now: read, and read again next time (a
	 * rewrite within the same clock tick would keep its size and time). */
	cache_write(dir, "b.yaml", CACHE_POD("q1", "y", "n3", "sb1") CACHE_POD("q2", "y", "n1", "sb2"),
	            0);
	ck_assert_msg(fi_mesh_load(&m3, files, 2, &o, err, sizeof(err)) == 0, "%s", err);
	fi_mesh_cache_stats(cache, &parsed, &reused);
	ck_assert_uint_eq(parsed, 1);
	fi_mesh_clear(&m3);
	ck_assert_msg(fi_mesh_load(&m3, files, 2, &o, err, sizeof(err)) == 0, "%s", err);
	fi_mesh_cache_stats(cache, &parsed, &reused);
	ck_assert_uint_eq(parsed, 1);
	ck_assert_uint_eq(reused, 1);
	ck_assert_uint_eq(m3.n_pods, 4);
	/* The meshes outlive the cache. */
	fi_mesh_cache_free(cache);
	ck_assert_str_eq(fi_mesh_find_pod(&m2, "x", "p2")->node, "n2");
	fi_mesh_clear(&m2);
	fi_mesh_clear(&m3);
	unlink(a);
	unlink(b);
	rmdir(dir);
}
END_TEST

Suite *mesh_suite(void);
Suite *mesh_suite(void)
{
	Suite *s = suite_create("mesh");
	TCase *tc = tcase_create("mesh");
	tcase_add_test(tc, mesh_loads_sample_with_every_kind);
	tcase_add_test(tc, mesh_pod_on_node_covers_every_pod);
	tcase_add_test(tc, mesh_membership_and_waypoint_pods);
	tcase_add_test(tc, mesh_address_file_overrides_and_fills_in);
	tcase_add_test(tc, mesh_generated_uid_is_stable_and_given_uid_kept);
	tcase_add_test(tc, mesh_unknown_kinds_are_skipped_with_a_warning);
	tcase_add_test(tc, mesh_lists_empty_documents_and_same_names_across_kinds);
	tcase_add_test(tc, mesh_address_entry_for_unknown_pod_is_a_warning);
	tcase_add_test(tc, mesh_unreadable_files_name_the_path);
	tcase_add_loop_test(tc, mesh_bad_input_gives_one_clear_error, 0,
	                    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, mesh_address_file_rejects_overlong_lines);
	tcase_add_test(tc, mesh_error_in_a_later_document_names_its_line_and_keeps_nothing);
	tcase_add_test(tc, mesh_yaml_bounds_are_options_and_errors_name_the_flag);
	tcase_add_test(tc, mesh_repeated_strings_are_interned);
	tcase_add_test(tc, mesh_cancelled_load_stops_and_keeps_nothing);
	tcase_add_test(tc, mesh_labels_lookup_and_selectors);
	tcase_add_test(tc, mesh_cache_reads_only_changed_files_and_keeps_the_last_good_parts);
	suite_add_tcase(s, tc);
	return s;
}
