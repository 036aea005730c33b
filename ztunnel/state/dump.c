/* Store to JSON. Each object is written field by field in the order of spec §9.2; optional
 * sub-objects (waypoint, application tunnel, locality, load balancer) only when present. */
#include "state/dump.h"
#include "runtime/err.h"
#include "runtime/mem.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <time.h>

#include <stdlib.h>
#include <string.h>

static const char *const app_protocols[] = {"UNKNOWN", "HTTP11", "HTTP2", "GRPC", "TCP", "TLS"};
static const char *const workload_types[] = {"deployment", "cronjob", "pod", "job"};
static const char *const lb_scopes[] = {"Unspecified", "Region",  "Zone",   "Subzone",
                                        "Node",        "Cluster", "Network"};
static const char *const lb_modes[] = {"Standard", "Strict", "Failover", "Passthrough"};
static const char *const ip_families[] = {"Automatic", "IPv4", "IPv6", "Dual"};

#define NAME(table, v) ((unsigned)(v) < sizeof(table) / sizeof(table[0]) ? table[(v)] : NULL)

const char *zt_app_protocol_name(enum zt_app_protocol v)
{
	return NAME(app_protocols, v);
}

const char *zt_workload_type_name(enum zt_workload_type v)
{
	return NAME(workload_types, v);
}

const char *zt_lb_scope_name(enum zt_lb_scope v)
{
	return NAME(lb_scopes, v);
}

const char *zt_lb_mode_name(enum zt_lb_mode v)
{
	return NAME(lb_modes, v);
}

const char *zt_ip_families_name(enum zt_ip_families v)
{
	return NAME(ip_families, v);
}

/* A name, or the raw number when the value has none. */
static json_t *enum_json(const char *name, int v)
{
	return name ? json_string(name) : json_integer(v);
}

static void set(json_t *o, const char *k, json_t *v)
{
	if (!v || json_object_set_new(o, k, v))
		abort();
}

static json_t *ip_json(const struct zt_ip *ip)
{
	char buf[ZT_IP_STRLEN];

	return json_string(zt_ip_format(ip, buf, sizeof(buf)) < 0 ? "" : buf);
}

static json_t *net_addr_json(const char *network, const struct zt_ip *ip)
{
	char buf[ZT_IP_STRLEN];

	if (zt_ip_format(ip, buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	return json_sprintf("%s/%s", network, buf);
}

static json_t *cidr_json(const struct zt_cidr *c)
{
	char buf[ZT_CIDR_STRLEN];

	return json_string(zt_cidr_format(c, buf, sizeof(buf)) < 0 ? "" : buf);
}

static json_t *strings_json(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static void gateway_fields(json_t *o, const struct zt_gateway *gw)
{
	if (gw->kind == ZT_GATEWAY_HOSTNAME) {
		json_t *d = json_object();
		set(d, "namespace", json_string(gw->ns));
		set(d, "hostname", json_string(gw->hostname));
		set(o, "destination", d);
	} else {
		set(o, "destination", net_addr_json(gw->network, &gw->ip));
	}
	set(o, "hboneMtlsPort", json_integer(gw->hbone_mtls_port));
}

static void set_gateway(json_t *o, const char *k, const struct zt_gateway *gw)
{
	json_t *g;

	if (gw->kind == ZT_GATEWAY_UNSET)
		return;
	g = json_object();
	gateway_fields(g, gw);
	set(o, k, g);
}

/* {"<service port>": <target port>}, or {"targetPort", "appProtocol"} when the protocol is
 * known, so nothing is lost. */
static json_t *ports_json(const struct zt_port *v, size_t n)
{
	json_t *o = json_object();
	char key[8];

	for (size_t i = 0; i < n; i++) {
		json_t *val;
		snprintf(key, sizeof(key), "%u", v[i].service_port);
		if (v[i].app_protocol == ZT_APP_PROTOCOL_UNKNOWN) {
			val = json_integer(v[i].target_port);
		} else {
			val = json_object();
			set(val, "targetPort", json_integer(v[i].target_port));
			set(val, "appProtocol",
			    enum_json(zt_app_protocol_name(v[i].app_protocol),
			              (int)v[i].app_protocol));
		}
		set(o, key, val);
	}
	return o;
}

json_t *zt_workload_to_json(const struct zt_workload *w)
{
	json_t *o = json_object(), *ips = json_array(), *svcs = json_object();

	set(o, "uid", json_string(w->uid));
	set(o, "name", json_string(w->name));
	set(o, "namespace", json_string(w->ns));
	set(o, "serviceAccount", json_string(w->service_account));
	set(o, "trustDomain", json_string(w->trust_domain));
	for (size_t i = 0; i < w->n_ips; i++)
		json_array_append_new(ips, ip_json(&w->ips[i]));
	set(o, "workloadIps", ips);
	set(o, "protocol", json_string(w->tunnel_protocol == ZT_TUNNEL_HBONE ? "HBONE" : "TCP"));
	set(o, "node", json_string(w->node));
	set(o, "network", json_string(w->network));
	set(o, "networkMode",
	    json_string(w->network_mode == ZT_NETWORK_HOST ? "HostNetwork" : "Standard"));
	set_gateway(o, "waypoint", w->waypoint);
	set_gateway(o, "networkGateway", w->network_gateway);
	if (w->application_tunnel.present) {
		json_t *t = json_object();
		set(t, "protocol",
		    json_string(w->application_tunnel.protocol == ZT_APP_TUNNEL_PROXY ? "PROXY"
		                                                                      : "NONE"));
		set(t, "port", json_integer(w->application_tunnel.port));
		set(o, "applicationTunnel", t);
	}
	set(o, "authorizationPolicies",
	    strings_json(w->authorization_policies, w->n_authorization_policies));
	set(o, "status",
	    enum_json(w->status == ZT_WORKLOAD_HEALTHY     ? "Healthy"
	              : w->status == ZT_WORKLOAD_UNHEALTHY ? "Unhealthy"
	                                                   : NULL,
	              (int)w->status));
	set(o, "clusterId", json_string(w->cluster_id));
	if (*w->locality.region || *w->locality.zone || *w->locality.subzone) {
		json_t *l = json_object();
		set(l, "region", json_string(w->locality.region));
		set(l, "zone", json_string(w->locality.zone));
		set(l, "subzone", json_string(w->locality.subzone));
		set(o, "locality", l);
	}
	set(o, "canonicalName", json_string(w->canonical_name));
	set(o, "canonicalRevision", json_string(w->canonical_revision));
	set(o, "workloadName", json_string(w->workload_name));
	set(o, "workloadType",
	    enum_json(zt_workload_type_name(w->workload_type), (int)w->workload_type));
	set(o, "hostname", json_string(w->hostname));
	set(o, "nativeTunnel", json_boolean(w->native_tunnel));
	set(o, "capacity", json_integer(w->capacity));
	for (size_t i = 0; i < w->n_services; i++)
		set(svcs, w->services[i].key,
		    ports_json(w->services[i].ports, w->services[i].n_ports));
	set(o, "services", svcs);
	return o;
}

json_t *zt_service_to_json(const struct zt_service *svc)
{
	json_t *o = json_object(), *vips = json_array(), *cidrs = json_array();

	set(o, "name", json_string(svc->name));
	set(o, "namespace", json_string(svc->ns));
	set(o, "hostname", json_string(svc->hostname));
	for (size_t i = 0; i < svc->n_vips; i++) {
		const struct zt_vip *v = &svc->vips[i];
		if (zt_vip_is_host(v)) {
			json_array_append_new(vips, net_addr_json(v->network, &v->cidr.ip));
		} else {
			char buf[ZT_CIDR_STRLEN];
			if (zt_cidr_format(&v->cidr, buf, sizeof(buf)) < 0)
				buf[0] = '\0';
			json_array_append_new(cidrs, json_sprintf("%s/%s", v->network, buf));
		}
	}
	set(o, "vips", vips);
	if (json_array_size(cidrs))
		set(o, "cidrVips", cidrs);
	else
		json_decref(cidrs);
	set(o, "ports", ports_json(svc->ports, svc->n_ports));
	set(o, "subjectAltNames", strings_json(svc->subject_alt_names, svc->n_subject_alt_names));
	set_gateway(o, "waypoint", &svc->waypoint);
	if (svc->n_weighted_waypoints) {
		json_t *a = json_array();
		for (size_t i = 0; i < svc->n_weighted_waypoints; i++) {
			json_t *ww = json_object();
			gateway_fields(ww, &svc->weighted_waypoints[i].destination);
			set(ww, "weight", json_integer(svc->weighted_waypoints[i].weight));
			json_array_append_new(a, ww);
		}
		set(o, "weightedWaypoints", a);
	}
	if (svc->load_balancing.present) {
		const struct zt_load_balancing *lb = &svc->load_balancing;
		json_t *l = json_object(), *prefs = json_array();
		for (size_t i = 0; i < lb->n_routing_preference; i++)
			json_array_append_new(
			        prefs, json_string(zt_lb_scope_name(lb->routing_preference[i])));
		set(l, "routingPreferences", prefs);
		set(l, "mode", json_string(zt_lb_mode_name(lb->mode)));
		set(l, "healthPolicy",
		    json_string(lb->health_policy == ZT_LB_ALLOW_ALL ? "AllowAll" : "OnlyHealthy"));
		set(o, "loadBalancer", l);
	}
	if (svc->ip_families != ZT_IP_FAMILIES_AUTOMATIC)
		set(o, "ipFamilies", json_string(zt_ip_families_name(svc->ip_families)));
	set(o, "canonical", json_boolean(svc->canonical));
	set(o, "ingressUseWaypoint", json_boolean(svc->ingress_use_waypoint));
	set(o, "visibility",
	    json_string(svc->visibility == ZT_VISIBILITY_NAMESPACE ? "Namespace" : "Public"));
	return o;
}

static json_t *string_matches_json(const struct zt_string_match *v, size_t n)
{
	static const char *const kinds[] = {[ZT_MATCH_EXACT] = "Exact",
	                                    [ZT_MATCH_PREFIX] = "Prefix",
	                                    [ZT_MATCH_SUFFIX] = "Suffix"};
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		if (v[i].kind == ZT_MATCH_PRESENCE) {
			json_array_append_new(a, json_string("Presence"));
		} else {
			json_t *m = json_object();
			set(m, kinds[v[i].kind], json_string(v[i].value));
			json_array_append_new(a, m);
		}
	}
	return a;
}

static json_t *cidrs_json(const struct zt_cidr *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, cidr_json(&v[i]));
	return a;
}

static json_t *ports_list_json(const uint32_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(v[i]));
	return a;
}

static json_t *sas_json(const struct zt_sa_match *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *m = json_object();
		set(m, "namespace", json_string(v[i].ns));
		set(m, "serviceAccount", json_string(v[i].sa));
		json_array_append_new(a, m);
	}
	return a;
}

static json_t *match_json(const struct zt_policy_match *m)
{
	json_t *o = json_object();

#define FIELD(key, f, conv)                                                                        \
	if (m->n_##f)                                                                              \
		set(o, key, conv(m->f, m->n_##f));
	FIELD("namespaces", namespaces, string_matches_json)
	FIELD("notNamespaces", not_namespaces, string_matches_json)
	FIELD("principals", principals, string_matches_json)
	FIELD("notPrincipals", not_principals, string_matches_json)
	FIELD("sourceIps", source_ips, cidrs_json)
	FIELD("notSourceIps", not_source_ips, cidrs_json)
	FIELD("destinationIps", destination_ips, cidrs_json)
	FIELD("notDestinationIps", not_destination_ips, cidrs_json)
	FIELD("destinationPorts", destination_ports, ports_list_json)
	FIELD("notDestinationPorts", not_destination_ports, ports_list_json)
	FIELD("serviceAccounts", service_accounts, sas_json)
	FIELD("notServiceAccounts", not_service_accounts, sas_json)
#undef FIELD
	return o;
}

json_t *zt_policy_to_json(const struct zt_policy *p)
{
	static const char *const scopes[] = {"Global", "Namespace", "WorkloadSelector"};
	json_t *o = json_object(), *rules = json_array();

	set(o, "name", json_string(p->name));
	set(o, "namespace", json_string(p->ns));
	set(o, "scope", json_string(scopes[p->scope]));
	set(o, "action", json_string(p->action == ZT_POLICY_DENY ? "Deny" : "Allow"));
	set(o, "dryRun", json_boolean(p->dry_run));
	for (size_t r = 0; r < p->n_rules; r++) {
		json_t *clauses = json_array();
		for (size_t c = 0; c < p->rules[r].n_clauses; c++) {
			const struct zt_policy_clause *cl = &p->rules[r].clauses[c];
			json_t *matches = json_array();
			for (size_t m = 0; m < cl->n_matches; m++)
				json_array_append_new(matches, match_json(&cl->matches[m]));
			json_array_append_new(clauses, matches);
		}
		json_array_append_new(rules, clauses);
	}
	set(o, "rules", rules);
	return o;
}

/* Collects borrowed objects with their keys, to sort before writing. */
struct item {
	const char *key;
	const void *obj;
};
struct items {
	struct item *v;
	size_t n, cap;
};

static void add(struct items *it, const char *key, const void *obj)
{
	if (it->n == it->cap) {
		it->cap = it->cap ? it->cap * 2 : 16;
		it->v = xrealloc(it->v, it->cap * sizeof(*it->v));
	}
	it->v[it->n++] = (struct item){key, obj};
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->key, ((const struct item *)b)->key);
}

static int add_workload(struct zt_workload *w, void *arg)
{
	add(arg, w->uid, w);
	return 0;
}

static int add_service(struct zt_service *s, void *arg)
{
	add(arg, s->key, s);
	return 0;
}

static int add_policy(struct zt_policy *p, void *arg)
{
	add(arg, p->key, p);
	return 0;
}

static json_t *sorted(struct items *it, json_t *(*conv)(const void *))
{
	json_t *a = json_array();

	if (it->n)
		qsort(it->v, it->n, sizeof(*it->v), by_key);
	for (size_t i = 0; i < it->n; i++)
		json_array_append_new(a, conv(it->v[i].obj));
	free(it->v);
	memset(it, 0, sizeof(*it));
	return a;
}

static json_t *conv_workload(const void *o)
{
	return zt_workload_to_json(o);
}

static json_t *conv_service(const void *o)
{
	return zt_service_to_json(o);
}

static json_t *conv_policy(const void *o)
{
	return zt_policy_to_json(o);
}

/* json_dump_callback into a zt_buf. */
static int to_buf(const char *p, size_t n, void *arg)
{
	return zt_buf_append(arg, p, n) < 0 ? -1 : 0;
}

/* The sorted items, each converted, written and freed before the next: the text grows by one
 * line per object and at most one object's tree exists at a time. */
static int write_sorted(struct items *it, json_t *(*conv)(const void *), struct zt_buf *out,
                        const char *indent)
{
	int rc = 0;

	if (it->n)
		qsort(it->v, it->n, sizeof(*it->v), by_key);
	if (zt_buf_appendf(out, it->n ? "[\n" : "[]") < 0)
		rc = ZT_E_TOOBIG;
	for (size_t i = 0; rc == 0 && i < it->n; i++) {
		json_t *o = conv(it->v[i].obj);

		if (zt_buf_appendf(out, "%s  ", indent) < 0 ||
		    json_dump_callback(o, to_buf, out,
		                       JSON_COMPACT | JSON_ENSURE_ASCII | JSON_SORT_KEYS) < 0 ||
		    zt_buf_appendf(out, i + 1 < it->n ? ",\n" : "\n") < 0)
			rc = ZT_E_TOOBIG;
		json_decref(o);
	}
	if (rc == 0 && it->n && zt_buf_appendf(out, "%s]", indent) < 0)
		rc = ZT_E_TOOBIG;
	free(it->v);
	memset(it, 0, sizeof(*it));
	return rc;
}

int zt_store_write_part(const struct zt_store *store, enum zt_dump_part part, struct zt_buf *out,
                        const char *indent)
{
	struct items it = {0};

	switch (part) {
	case ZT_DUMP_WORKLOADS:
		zt_store_foreach_workload(store, add_workload, &it);
		return write_sorted(&it, conv_workload, out, indent);
	case ZT_DUMP_SERVICES:
		zt_store_foreach_service(store, add_service, &it);
		return write_sorted(&it, conv_service, out, indent);
	case ZT_DUMP_POLICIES:
		zt_store_foreach_policy(store, add_policy, &it);
		return write_sorted(&it, conv_policy, out, indent);
	}
	return ZT_E_RANGE;
}

json_t *zt_store_dump(const struct zt_store *store)
{
	json_t *o = json_object();
	struct items it = {0};

	zt_store_foreach_workload(store, add_workload, &it);
	set(o, "workloads", sorted(&it, conv_workload));
	zt_store_foreach_service(store, add_service, &it);
	set(o, "services", sorted(&it, conv_service));
	zt_store_foreach_policy(store, add_policy, &it);
	set(o, "policies", sorted(&it, conv_policy));
	return o;
}

json_t *zt_store_counters_json(const struct zt_store *store)
{
	struct zt_store_counters c;
	json_t *o = json_object();

	zt_store_get_counters(store, &c);
	set(o, "workloads", json_integer((json_int_t)c.workloads));
	set(o, "services", json_integer((json_int_t)c.services));
	set(o, "policies", json_integer((json_int_t)c.policies));
	set(o, "endpoints", json_integer((json_int_t)c.endpoints));
	set(o, "stagedEndpoints", json_integer((json_int_t)c.staged_endpoints));
	set(o, "applied", json_integer((json_int_t)c.applied));
	set(o, "rejected", json_integer((json_int_t)c.rejected));
	set(o, "removed", json_integer((json_int_t)c.removed));
	return o;
}

/* ---- certificates (spec §17) ---------------------------------------------------------------- */

static json_t *asn1_time_json(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (!t || !ASN1_TIME_to_tm(t, &tm) ||
	    !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(buf);
}

static json_t *cert_json(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *dec = bn ? BN_bn2dec(bn) : NULL, *pem = NULL, *b64 = NULL;
	long len = 0;
	json_t *o;

	if (!bio || !PEM_write_bio_X509(bio, x) || (len = BIO_get_mem_data(bio, &pem)) <= 0)
		len = 0;
	b64 = calloc(1, 4 * ((size_t)len / 3 + 1) + 1);
	if (!b64)
		abort();
	if (len)
		EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)pem, (int)len);
	o = json_pack("{s:o, s:s, s:s, s:o}", "expirationTime",
	              asn1_time_json(X509_get0_notAfter(x)), "pem", b64, "serialNumber",
	              dec ? dec : "", "validFrom", asn1_time_json(X509_get0_notBefore(x)));
	free(b64);
	OPENSSL_free(dec);
	BN_free(bn);
	BIO_free(bio);
	return o;
}

static json_t *certs_of(struct zt_tls_identity *id, json_t **roots)
{
	STACK_OF(X509) *chain = zt_tls_identity_chain(id);
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(zt_tls_identity_roots(id));
	json_t *a = json_array();

	json_array_append_new(a, cert_json(zt_tls_identity_leaf(id)));
	for (int i = 0; chain && i < sk_X509_num(chain); i++)
		json_array_append_new(a, cert_json(sk_X509_value(chain, i)));
	*roots = json_array();
	for (int i = 0; objs && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *r = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		if (r)
			json_array_append_new(*roots, cert_json(r));
	}
	return a;
}

json_t *zt_dump_certificates(struct zt_certmgr *m)
{
	json_t *mine = m ? zt_certmgr_dump(m) : json_array(), *out = json_array(), *e;
	size_t i;

	/* zt_certmgr_dump is sorted by identity already. */
	json_array_foreach(mine, i, e)
	{
		const char *uri = json_string_value(json_object_get(e, "identity"));
		const char *st = json_string_value(json_object_get(e, "state"));
		const char *why = json_string_value(json_object_get(e, "lastError"));
		struct zt_tls_identity *cert = NULL;
		struct zt_spiffe id;
		json_t *chain, *roots;
		char state[512];

		if (!uri)
			continue;
		if (zt_spiffe_parse(&id, uri, strlen(uri)) == 0)
			cert = zt_certmgr_get(m, &id);
		if (cert) {
			snprintf(state, sizeof(state), "Available");
			chain = certs_of(cert, &roots);
		} else {
			if (st && !strcmp(st, "initializing"))
				snprintf(state, sizeof(state), "Initializing");
			else
				snprintf(state, sizeof(state), "Unavailable: %s",
				         why  ? why
				         : st ? st
				              : "no certificate");
			chain = json_array();
			roots = json_array();
		}
		json_array_append_new(out, json_pack("{s:o, s:s, s:o, s:s}", "certChain", chain,
		                                     "identity", uri, "rootCerts", roots, "state",
		                                     state));
		zt_tls_identity_unref(cert);
	}
	json_decref(mine);
	return out;
}
