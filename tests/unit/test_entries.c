/* ServiceEntry and WorkloadEntry in fake-istiod: loading (with one exact "file:line: ..." error
 * for a bad host or address) and the services and workloads built from them, decoded back
 * from the packed resources. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "istio/workload/workload.pb-c.h"
#include "mesh_fixture.h"
#include "protocol/pb.h"

static char err[512];

#define AMBIENT_NS                                                                                 \
	"apiVersion: v1\nkind: Namespace\n"                                                        \
	"metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}\n---\n"

static Istio__Workload__Address *address(const struct fi_resources *r, const char *name)
{
	const struct fi_resource *res = fi_resources_find(r->addresses, r->n_addresses, name);
	ProtobufCMessage *msg = NULL;

	ck_assert_msg(res != NULL, "no resource %s", name);
	ck_assert_int_eq(zt_pb_unpack(&istio__workload__address__descriptor, res->data, res->len,
	                              1 << 20, &msg),
	                 0);
	return (Istio__Workload__Address *)msg;
}

static void free_address(Istio__Workload__Address *a)
{
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

static const char *ip_text(const ProtobufCBinaryData *b, char *buf)
{
	inet_ntop(b->len == 4 ? AF_INET : AF_INET6, b->data, buf, INET6_ADDRSTRLEN);
	return buf;
}

START_TEST(service_entry_with_dns_resolution_gets_a_vip_and_a_hostname_endpoint)
{
	struct fi_mesh m = {0};
	struct fi_resources r = {0};
	char ip[INET6_ADDRSTRLEN];

	fx_mesh_convert(AMBIENT_NS "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	                           "metadata: {name: api, namespace: shop}\n"
	                           "spec: {hosts: [api.example.com], resolution: DNS,\n"
	                           "       ports: [{number: 443, name: tls, targetPort: 8443}]}\n",
	                &m, &r);
	Istio__Workload__Address *a = address(&r, "shop/api.example.com");
	Istio__Workload__Service *s = a->service;
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->hostname, "api.example.com");
	ck_assert_uint_eq(s->n_addresses, 1);
	ck_assert_uint_eq(s->addresses[0]->address.len, 4);
	ck_assert_msg(strncmp(ip_text(&s->addresses[0]->address, ip), "240.240.", 8) == 0, "%s",
	              ip);
	ck_assert_uint_eq(s->ports[0]->service_port, 443);
	ck_assert_uint_eq(s->ports[0]->target_port, 8443);
	ck_assert_ptr_null(s->load_balancing);
	free_address(a);

	a = address(&r, "Kubernetes/networking.istio.io/ServiceEntry/shop/api/api.example.com");
	ck_assert_ptr_nonnull(a->workload);
	ck_assert_str_eq(a->workload->hostname, "api.example.com");
	ck_assert_uint_eq(a->workload->n_addresses, 0);
	ck_assert_int_eq(a->workload->tunnel_protocol, ISTIO__WORKLOAD__TUNNEL_PROTOCOL__NONE);
	ck_assert_uint_eq(a->workload->n_services, 1);
	ck_assert_str_eq(a->workload->services[0]->key, "shop/api.example.com");
	free_address(a);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(service_entry_addresses_endpoints_and_passthrough)
{
	struct fi_mesh m = {0};
	struct fi_resources r = {0};
	char ip[INET6_ADDRSTRLEN];

	fx_mesh_convert(AMBIENT_NS "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	                           "metadata: {name: db, namespace: shop}\n"
	                           "spec:\n  hosts: [db.example.com]\n  addresses: [10.50.0.1]\n"
	                           "  resolution: STATIC\n  ports: [{number: 5432, name: sql}]\n"
	                           "  endpoints: [{address: 192.0.2.10, ports: {sql: 15432}}]\n"
	                           "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	                           "metadata: {name: any, namespace: shop}\n"
	                           "spec: {hosts: ['*.any.example'], resolution: NONE,\n"
	                           "       ports: [{number: 80, name: http}]}\n",
	                &m, &r);
	Istio__Workload__Address *a = address(&r, "shop/db.example.com");
	ck_assert_str_eq(ip_text(&a->service->addresses[0]->address, ip), "10.50.0.1");
	free_address(a);
	a = address(&r, "Kubernetes/networking.istio.io/ServiceEntry/shop/db/192.0.2.10");
	ck_assert_str_eq(ip_text(&a->workload->addresses[0], ip), "192.0.2.10");
	ck_assert_uint_eq(a->workload->services[0]->value->ports[0]->target_port, 15432);
	free_address(a);
	/* Resolution NONE: no auto-allocated address, load balancing PASSTHROUGH. */
	a = address(&r, "shop/*.any.example");
	ck_assert_uint_eq(a->service->n_addresses, 0);
	ck_assert_ptr_nonnull(a->service->load_balancing);
	ck_assert_int_eq(a->service->load_balancing->mode,
	                 ISTIO__WORKLOAD__LOAD_BALANCING__MODE__PASSTHROUGH);
	free_address(a);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(workload_entry_becomes_a_workload_of_the_services_selecting_it)
{
	struct fi_mesh m = {0};
	struct fi_resources r = {0};
	char ip[INET6_ADDRSTRLEN];

	fx_mesh_convert(AMBIENT_NS "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
	                           "metadata: {name: vm-1, namespace: shop}\n"
	                           "spec: {address: 10.9.0.5, labels: {app: erp}, serviceAccount: "
	                           "erp, ports: {http: 9090}}\n"
	                           "---\napiVersion: v1\nkind: Service\n"
	                           "metadata: {name: erp, namespace: shop}\n"
	                           "spec: {clusterIP: 10.96.0.42, selector: {app: erp},\n"
	                           "       ports: [{port: 80, targetPort: http}]}\n"
	                           "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	                           "metadata: {name: erp-ext, namespace: shop}\n"
	                           "spec: {hosts: [erp.corp.example], resolution: STATIC,\n"
	                           "       workloadSelector: {labels: {app: erp}},\n"
	                           "       ports: [{number: 80, name: http}]}\n",
	                &m, &r);
	Istio__Workload__Address *a =
	        address(&r, "Kubernetes/networking.istio.io/WorkloadEntry/shop/vm-1");
	Istio__Workload__Workload *w = a->workload;
	ck_assert_str_eq(ip_text(&w->addresses[0], ip), "10.9.0.5");
	ck_assert_str_eq(w->service_account, "erp");
	ck_assert_str_eq(w->canonical_name, "erp");
	ck_assert_uint_eq(w->n_services, 2);
	ck_assert_str_eq(w->services[0]->key, "shop/erp.shop.svc.cluster.local");
	ck_assert_uint_eq(w->services[0]->value->ports[0]->target_port, 9090);
	ck_assert_str_eq(w->services[1]->key, "shop/erp.corp.example");
	ck_assert_uint_eq(w->services[1]->value->ports[0]->target_port, 9090);
	free_address(a);
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
}
END_TEST

START_TEST(bad_hosts_and_addresses_name_file_and_line)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
	        {"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	         "metadata: {name: x, namespace: shop}\nspec:\n  hosts:\n  - ok.example\n"
	         "  - bad..example\n",
	         "m.yaml:7: ServiceEntry shop/x: spec.hosts[1]: expected a DNS name, optionally "
	         "starting with \"*.\", got \"bad..example\""},
	        {"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	         "metadata: {name: x, namespace: shop}\nspec:\n  hosts: [a.example]\n"
	         "  addresses: [10.0.0.300]\n",
	         "m.yaml:6: ServiceEntry shop/x: spec.addresses[0]: expected an IP address or a "
	         "CIDR, got \"10.0.0.300\""},
	        {"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	         "metadata: {name: x, namespace: shop}\nspec:\n  hosts: [a.example]\n"
	         "  resolution: STATIC\n  endpoints: [{address: host.example}]\n",
	         "m.yaml:7: ServiceEntry shop/x: spec.endpoints[0].address: expected an IP "
	         "address, got \"host.example\""},
	        {"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	         "metadata: {name: x, namespace: shop}\nspec: {ports: []}\n",
	         "m.yaml:4: ServiceEntry shop/x: spec.hosts: required: at least one host"},
	        {"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
	         "metadata: {name: vm, namespace: shop}\nspec: {address: 'not an address'}\n",
	         "m.yaml:4: WorkloadEntry shop/vm: spec.address: expected an IP address or a DNS "
	         "name, got \"not an address\""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fi_mesh m = {0};
		const char *y = cases[i].yaml;
		ck_assert_int_ne(fx_mesh_load(&m, &y, 1, NULL, err, sizeof(err)), 0);
		ck_assert_str_eq(err, cases[i].want);
		fi_mesh_clear(&m);
	}
}
END_TEST

Suite *entries_suite(void);
Suite *entries_suite(void)
{
	Suite *s = suite_create("entries");
	TCase *tc = tcase_create("entries");

	tcase_add_test(tc, service_entry_with_dns_resolution_gets_a_vip_and_a_hostname_endpoint);
	tcase_add_test(tc, service_entry_addresses_endpoints_and_passthrough);
	tcase_add_test(tc, workload_entry_becomes_a_workload_of_the_services_selecting_it);
	tcase_add_test(tc, bad_hosts_and_addresses_name_file_and_line);
	suite_add_tcase(s, tc);
	return s;
}
