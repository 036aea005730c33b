/* Spec §6 decisions. Policies and the destination workload come from local-config YAML (the
 * format is tested in test_state), so each row of the tables is one readable match. The
 * default connection: 10.0.0.1 -> 10.0.0.2:8080 from spiffe://cluster.local/ns/src/sa/client
 * to workload dst/w, which lists the selector policies dst/sel and dst/missing. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "bench/authz_ref.h"
#include "loop_fixture.h"
#include "runtime/arena.h"
#include "runtime/log.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/yaml.h"
#include "state/authz.h"
#include "state/local.h"

static const char *const base = "workloads:\n"
                                "- uid: Kubernetes//Pod/dst/w\n"
                                "  namespace: dst\n"
                                "  workloadIps: [\"10.0.0.2\"]\n"
                                "  authorizationPolicies: [dst/sel, dst/missing]\n";

struct fixture {
	struct zt_store *store;
	struct zt_workload *dst;
	struct zt_spiffe id;
	struct zt_authz_conn conn;
	char why[256];
};

static void setup(struct fixture *f, const char *policies)
{
	char text[8192], err[512];
	struct zt_yaml_docs docs;
	struct zt_local_config cfg;

	snprintf(text, sizeof(text), "%spolicies:\n%s", base, policies);
	ck_assert_msg(zt_yaml_parse("t.yaml", text, strlen(text), &docs, err, sizeof(err)) == 0,
	              "%s", err);
	ck_assert_msg(zt_local_xds_parse(docs.docs[0], "t.yaml", &cfg, err, sizeof(err)) == 0,
	              "%s\n%s", err, text);
	f->store = zt_store_new();
	ck_assert_msg(zt_local_xds_apply(f->store, &cfg, err, sizeof(err)) == 0, "%s", err);
	zt_local_config_clear(&cfg);
	zt_yaml_docs_clear(&docs);
	f->dst = zt_store_workload_by_uid(f->store, "Kubernetes//Pod/dst/w");
	ck_assert_int_eq(zt_spiffe_set(&f->id, "cluster.local", "src", "client"), 0);
	memset(&f->conn, 0, sizeof(f->conn));
	zt_ip_parse(&f->conn.src_ip, "10.0.0.1", 8);
	zt_ip_parse(&f->conn.dst_ip, "10.0.0.2", 8);
	f->conn.dst_port = 8080;
	f->conn.src_id = &f->id;
	f->conn.dst = f->dst;
}

static void teardown(struct fixture *f)
{
	zt_workload_unref(f->dst);
	zt_store_free(f->store);
	fx_assert_no_live();
}

static enum zt_authz_verdict check(struct fixture *f)
{
	return zt_authz_check(f->store, &f->conn, f->why, sizeof(f->why));
}

/* ---- one ALLOW policy with one match: every match field, positive and negated ------------- */

enum conn_kind { MTLS, PLAINTEXT, OTHER_SRC_IP, OTHER_PORT, V6 };

static const struct row {
	const char *match;
	enum conn_kind conn;
	enum zt_authz_verdict want;
} rows[] = {
        /* namespaces: from the peer identity; "" without one. */
        {"namespaces: [{Exact: src}]", MTLS, ZT_AUTHZ_ALLOW},
        {"namespaces: [{Exact: other}]", MTLS, ZT_AUTHZ_DENY},
        {"namespaces: [{Exact: other}, {Exact: src}]", MTLS, ZT_AUTHZ_ALLOW},
        {"namespaces: [{Prefix: sr}]", MTLS, ZT_AUTHZ_ALLOW},
        {"namespaces: [{Prefix: src-}]", MTLS, ZT_AUTHZ_DENY},
        {"namespaces: [{Suffix: rc}]", MTLS, ZT_AUTHZ_ALLOW},
        {"namespaces: [{Suffix: xsrc}]", MTLS, ZT_AUTHZ_DENY},
        {"namespaces: [Presence]", MTLS, ZT_AUTHZ_ALLOW},
        {"namespaces: [Presence]", PLAINTEXT, ZT_AUTHZ_DENY},
        {"namespaces: [{Exact: src}]", PLAINTEXT, ZT_AUTHZ_DENY},
        {"notNamespaces: [{Exact: src}]", MTLS, ZT_AUTHZ_DENY},
        {"notNamespaces: [{Exact: other}]", MTLS, ZT_AUTHZ_ALLOW},
        {"notNamespaces: [{Exact: other}, {Prefix: s}]", MTLS, ZT_AUTHZ_DENY},
        {"notNamespaces: [Presence]", PLAINTEXT, ZT_AUTHZ_ALLOW},
        {"notNamespaces: [Presence]", MTLS, ZT_AUTHZ_DENY},
        /* principals: compared without "spiffe://"; never match without identity. */
        {"principals: [{Exact: cluster.local/ns/src/sa/client}]", MTLS, ZT_AUTHZ_ALLOW},
        {"principals: [{Exact: \"spiffe://cluster.local/ns/src/sa/client\"}]", MTLS, ZT_AUTHZ_DENY},
        {"principals: [{Exact: cluster.local/ns/src/sa/other}]", MTLS, ZT_AUTHZ_DENY},
        {"principals: [{Prefix: cluster.local/ns/src/}]", MTLS, ZT_AUTHZ_ALLOW},
        {"principals: [{Suffix: /sa/client}]", MTLS, ZT_AUTHZ_ALLOW},
        {"principals: [{Suffix: /sa/clients}]", MTLS, ZT_AUTHZ_DENY},
        {"principals: [Presence]", MTLS, ZT_AUTHZ_ALLOW},
        {"principals: [Presence]", PLAINTEXT, ZT_AUTHZ_DENY},
        {"principals: [{Prefix: \"\"}]", PLAINTEXT, ZT_AUTHZ_DENY},
        {"notPrincipals: [{Exact: cluster.local/ns/src/sa/client}]", MTLS, ZT_AUTHZ_DENY},
        {"notPrincipals: [{Exact: cluster.local/ns/x/sa/y}]", MTLS, ZT_AUTHZ_ALLOW},
        {"notPrincipals: [Presence]", MTLS, ZT_AUTHZ_DENY},
        {"notPrincipals: [Presence]", PLAINTEXT, ZT_AUTHZ_ALLOW},
        /* source IPs: CIDR contains the peer address; a bare IP is a host prefix. */
        {"sourceIps: [\"10.0.0.0/24\"]", MTLS, ZT_AUTHZ_ALLOW},
        {"sourceIps: [\"10.0.0.1\"]", MTLS, ZT_AUTHZ_ALLOW},
        {"sourceIps: [\"10.9.0.0/16\"]", MTLS, ZT_AUTHZ_DENY},
        {"sourceIps: [\"10.0.0.0/24\"]", OTHER_SRC_IP, ZT_AUTHZ_DENY},
        {"sourceIps: [\"::/0\"]", MTLS, ZT_AUTHZ_DENY},
        {"sourceIps: [\"fd00::/8\"]", V6, ZT_AUTHZ_ALLOW},
        {"sourceIps: [\"0.0.0.0/0\"]", PLAINTEXT, ZT_AUTHZ_ALLOW},
        {"notSourceIps: [\"10.0.0.0/24\"]", MTLS, ZT_AUTHZ_DENY},
        {"notSourceIps: [\"10.0.0.0/24\"]", OTHER_SRC_IP, ZT_AUTHZ_ALLOW},
        /* destination IPs. */
        {"destinationIps: [\"10.0.0.2/32\"]", MTLS, ZT_AUTHZ_ALLOW},
        {"destinationIps: [\"10.0.1.0/24\"]", MTLS, ZT_AUTHZ_DENY},
        {"notDestinationIps: [\"10.0.0.0/8\"]", MTLS, ZT_AUTHZ_DENY},
        {"notDestinationIps: [\"192.168.0.0/16\"]", MTLS, ZT_AUTHZ_ALLOW},
        /* destination ports: the resolved target port. */
        {"destinationPorts: [80, 8080]", MTLS, ZT_AUTHZ_ALLOW},
        {"destinationPorts: [80]", MTLS, ZT_AUTHZ_DENY},
        {"destinationPorts: [8080]", OTHER_PORT, ZT_AUTHZ_DENY},
        {"notDestinationPorts: [8080]", MTLS, ZT_AUTHZ_DENY},
        {"notDestinationPorts: [9999]", MTLS, ZT_AUTHZ_ALLOW},
        {"notDestinationPorts: [8080]", OTHER_PORT, ZT_AUTHZ_ALLOW},
        /* service accounts: (namespace, account) of the peer; no identity never matches. */
        {"serviceAccounts: [{namespace: src, serviceAccount: client}]", MTLS, ZT_AUTHZ_ALLOW},
        {"serviceAccounts: [{namespace: src, serviceAccount: other}]", MTLS, ZT_AUTHZ_DENY},
        {"serviceAccounts: [{namespace: other, serviceAccount: client}]", MTLS, ZT_AUTHZ_DENY},
        {"serviceAccounts: [{namespace: src, serviceAccount: client}]", PLAINTEXT, ZT_AUTHZ_DENY},
        {"notServiceAccounts: [{namespace: src, serviceAccount: client}]", MTLS, ZT_AUTHZ_DENY},
        {"notServiceAccounts: [{namespace: src, serviceAccount: other}]", MTLS, ZT_AUTHZ_ALLOW},
        {"notServiceAccounts: [{namespace: src, serviceAccount: client}]", PLAINTEXT,
         ZT_AUTHZ_ALLOW},
        /* Every populated field of one match must hold. */
        {"sourceIps: [\"10.0.0.0/8\"], destinationPorts: [8080]", MTLS, ZT_AUTHZ_ALLOW},
        {"sourceIps: [\"10.0.0.0/8\"], destinationPorts: [80]", MTLS, ZT_AUTHZ_DENY},
        {"namespaces: [{Exact: src}], notPrincipals: [{Suffix: /sa/client}]", MTLS, ZT_AUTHZ_DENY},
};

static void conn_for(struct fixture *f, enum conn_kind k)
{
	switch (k) {
	case PLAINTEXT:
		f->conn.src_id = NULL;
		break;
	case OTHER_SRC_IP:
		zt_ip_parse(&f->conn.src_ip, "172.16.0.1", 10);
		break;
	case OTHER_PORT:
		f->conn.dst_port = 9090;
		break;
	case V6:
		zt_ip_parse(&f->conn.src_ip, "fd00::1", 7);
		break;
	case MTLS:
		break;
	}
}

START_TEST(authz_every_match_field_positive_and_negated)
{
	const struct row *r = &rows[_i];
	struct fixture f;
	char pol[1024];

	snprintf(
	        pol, sizeof(pol),
	        "- {name: p, namespace: dst, scope: Namespace, action: Allow, rules: [[[{%s}]]]}\n",
	        r->match);
	setup(&f, pol);
	conn_for(&f, r->conn);
	ck_assert_msg(check(&f) == r->want, "row %d: {%s} conn %d: got %s", _i, r->match, r->conn,
	              f.why);
	struct zt_policy *p = zt_store_policy_by_key(f.store, "dst/p");
	ck_assert(zt_authz_policy_matches(p, &f.conn) == (r->want == ZT_AUTHZ_ALLOW));
	zt_policy_unref(p);
	teardown(&f);
}
END_TEST

/* ---- structure: rules OR, clauses AND, matches OR, empty forms ---------------------------- */

static const struct shape {
	const char *rules;
	enum zt_authz_verdict want;
} shapes[] = {
        {"[]", ZT_AUTHZ_DENY},       /* ALLOW with no rules allows nothing */
        {"[[]]", ZT_AUTHZ_ALLOW},    /* a rule with no clauses matches */
        {"[[[]]]", ZT_AUTHZ_ALLOW},  /* a clause with no matches matches */
        {"[[[{}]]]", ZT_AUTHZ_DENY}, /* an empty match is skipped */
        {"[[[{}, {destinationPorts: [8080]}]]]", ZT_AUTHZ_ALLOW},
        {"[[[{destinationPorts: [1]}, {destinationPorts: [8080]}]]]", ZT_AUTHZ_ALLOW},  /* OR */
        {"[[[{destinationPorts: [8080]}], [{destinationPorts: [1]}]]]", ZT_AUTHZ_DENY}, /* AND */
        {"[[[{destinationPorts: [8080]}], [{namespaces: [{Exact: src}]}]]]", ZT_AUTHZ_ALLOW},
        {"[[[{destinationPorts: [1]}]], [[{destinationPorts: [8080]}]]]", ZT_AUTHZ_ALLOW}, /* OR */
        {"[[[{destinationPorts: [1]}]], [[{destinationPorts: [2]}]]]", ZT_AUTHZ_DENY},
};

START_TEST(authz_rules_or_clauses_and_matches_or)
{
	const struct shape *sh = &shapes[_i];
	struct fixture f;
	char pol[1024];

	snprintf(pol, sizeof(pol),
	         "- {name: p, namespace: dst, scope: Namespace, action: Allow, rules: %s}\n",
	         sh->rules);
	setup(&f, pol);
	ck_assert_msg(check(&f) == sh->want, "rules %s: %s", sh->rules, f.why);
	teardown(&f);
}
END_TEST

/* ---- selection and precedence -------------------------------------------------------------- */

START_TEST(authz_no_policies_allows_everything_including_plaintext)
{
	struct fixture f;

	setup(&f, "  []\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	ck_assert_str_eq(f.why, "no allow policies");
	f.conn.src_id = NULL;
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	teardown(&f);
}
END_TEST

START_TEST(authz_global_policy_applies_to_every_namespace)
{
	struct fixture f;

	setup(&f, "- {name: deny-all, namespace: istio-system, scope: Global, action: Deny, "
	          "rules: [[]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_DENY);
	ck_assert_str_eq(f.why, "explicitly denied by: istio-system/deny-all");
	teardown(&f);
}
END_TEST

START_TEST(authz_namespace_policy_applies_only_to_its_namespace)
{
	struct fixture f;

	setup(&f, "- {name: deny-all, namespace: other, scope: Namespace, action: Deny, "
	          "rules: [[]]}\n"
	          "- {name: allow-none, namespace: other, scope: Namespace, action: Allow}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	ck_assert_str_eq(f.why, "no allow policies");
	teardown(&f);
	setup(&f, "- {name: deny-all, namespace: dst, scope: Namespace, action: Deny, "
	          "rules: [[]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_DENY);
	ck_assert_str_eq(f.why, "explicitly denied by: dst/deny-all");
	teardown(&f);
}
END_TEST

START_TEST(authz_selector_policy_applies_only_when_listed_on_the_workload)
{
	struct fixture f;

	/* dst/sel is listed on the workload; dst/unlisted is not; dst/missing is unknown. */
	setup(&f, "- {name: unlisted, namespace: dst, scope: WorkloadSelector, action: Deny, "
	          "rules: [[]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	teardown(&f);
	setup(&f, "- {name: sel, namespace: dst, scope: WorkloadSelector, action: Deny, "
	          "rules: [[]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_DENY);
	ck_assert_str_eq(f.why, "explicitly denied by: dst/sel");
	teardown(&f);
}
END_TEST

START_TEST(authz_deny_takes_precedence_over_allow)
{
	struct fixture f;

	setup(&f, "- {name: allow, namespace: dst, scope: Namespace, action: Allow, rules: [[]]}\n"
	          "- {name: deny, namespace: dst, scope: Namespace, action: Deny, "
	          "rules: [[[{destinationPorts: [8080]}]]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_DENY);
	ck_assert_str_eq(f.why, "explicitly denied by: dst/deny");
	f.conn.dst_port = 9090;
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	ck_assert_str_eq(f.why, "allowed by: dst/allow");
	teardown(&f);
}
END_TEST

START_TEST(authz_allow_policies_must_match_when_present)
{
	struct fixture f;

	setup(&f, "- {name: a1, namespace: dst, scope: Namespace, action: Allow, "
	          "rules: [[[{destinationPorts: [1]}]]]}\n"
	          "- {name: a2, namespace: istio-system, scope: Global, action: Allow, "
	          "rules: [[[{destinationPorts: [2]}]]]}\n"
	          "- {name: d, namespace: dst, scope: Namespace, action: Deny, "
	          "rules: [[[{destinationPorts: [3]}]]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_DENY);
	ck_assert_str_eq(f.why, "allow policies exist, but none allowed");
	f.conn.dst_port = 2;
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	ck_assert_str_eq(f.why, "allowed by: istio-system/a2");
	teardown(&f);
}
END_TEST

START_TEST(authz_deny_with_no_rules_is_a_no_op)
{
	struct fixture f;

	setup(&f, "- {name: d, namespace: dst, scope: Namespace, action: Deny, rules: []}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	teardown(&f);
}
END_TEST

START_TEST(authz_dry_run_policies_are_not_enforced)
{
	struct fixture f;

	setup(&f, "- {name: d, namespace: dst, scope: Namespace, action: Deny, dryRun: true, "
	          "rules: [[]]}\n"
	          "- {name: a, namespace: dst, scope: Namespace, action: Allow, dryRun: true, "
	          "rules: [[[{destinationPorts: [1]}]]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	ck_assert_str_eq(f.why, "no allow policies");
	teardown(&f);
	/* Enforced policies still decide next to dry-run ones. */
	setup(&f, "- {name: d, namespace: dst, scope: Namespace, action: Deny, dryRun: true, "
	          "rules: [[]]}\n"
	          "- {name: a, namespace: dst, scope: Namespace, action: Allow, "
	          "rules: [[[{destinationPorts: [1]}]]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_DENY);
	ck_assert_str_eq(f.why, "allow policies exist, but none allowed");
	teardown(&f);
}
END_TEST

START_TEST(authz_strict_mtls_policy_denies_plaintext_only)
{
	struct fixture f;

	/* What istiod sends for PeerAuthentication STRICT (spec §3.7). */
	setup(&f,
	      "- {name: istio_converted_static_strict, namespace: istio-system, "
	      "scope: WorkloadSelector, action: Deny, rules: [[[{notPrincipals: [Presence]}]]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	teardown(&f);
	/* Listed on the workload via a different key: unknown keys are skipped, so add it. */
	setup(&f, "- {name: sel, namespace: dst, scope: WorkloadSelector, action: Deny, "
	          "rules: [[[{notPrincipals: [Presence]}]]]}\n");
	ck_assert_int_eq(check(&f), ZT_AUTHZ_ALLOW);
	f.conn.src_id = NULL;
	ck_assert_int_eq(check(&f), ZT_AUTHZ_DENY);
	ck_assert_str_eq(f.why, "explicitly denied by: dst/sel");
	teardown(&f);
}
END_TEST

START_TEST(authz_why_may_be_null)
{
	struct fixture f;

	setup(&f, "- {name: d, namespace: dst, scope: Namespace, action: Deny, rules: [[]]}\n");
	ck_assert_int_eq(zt_authz_check(f.store, &f.conn, NULL, 0), ZT_AUTHZ_DENY);
	teardown(&f);
}
END_TEST

/* ---- the scoped, port-indexed decision against a scan of every policy --------------------- */

static uint32_t rnd_state;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static const char *const rnd_ns[] = {"a", "b", "c", "istio-system"};
static const char *const rnd_sa[] = {"x", "y"};
static const uint32_t rnd_port[] = {80, 81, 144, 443, 70000};

static Istio__Security__StringMatch **rnd_strings(struct zt_arena *a, size_t *n, bool principal)
{
	Istio__Security__StringMatch **v;

	*n = 1 + rnd(2);
	v = zt_arena_calloc(a, *n, sizeof(*v));
	for (size_t i = 0; i < *n; i++) {
		Istio__Security__StringMatch *m = zt_arena_calloc(a, 1, sizeof(*m));
		const char *ns = rnd_ns[rnd(4)], *sa = rnd_sa[rnd(2)];
		*m = (Istio__Security__StringMatch)ISTIO__SECURITY__STRING_MATCH__INIT;
		switch (rnd(4)) {
		case 0:
			m->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_EXACT;
			m->exact = principal
			                   ? zt_arena_printf(a, "cluster.local/ns/%s/sa/%s", ns, sa)
			                   : (char *)ns;
			break;
		case 1:
			m->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PREFIX;
			m->prefix = principal ? zt_arena_printf(a, "cluster.local/ns/%s/", ns)
			                      : (char *)"istio";
			break;
		case 2:
			m->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_SUFFIX;
			m->suffix = principal ? zt_arena_printf(a, "/sa/%s", sa) : (char *)"b";
			break;
		default:
			m->match_type_case = ISTIO__SECURITY__STRING_MATCH__MATCH_TYPE_PRESENCE;
		}
		v[i] = m;
	}
	return v;
}

static Istio__Security__Address **rnd_cidrs(struct zt_arena *a, size_t *n)
{
	Istio__Security__Address **v;

	*n = 1 + rnd(2);
	v = zt_arena_calloc(a, *n, sizeof(*v));
	for (size_t i = 0; i < *n; i++) {
		Istio__Security__Address *ad = zt_arena_calloc(a, 1, sizeof(*ad));
		uint8_t *b = zt_arena_calloc(a, 4, 1);
		*ad = (Istio__Security__Address)ISTIO__SECURITY__ADDRESS__INIT;
		b[0] = 10;
		b[3] = (uint8_t)(1 + rnd(3));
		ad->address.data = b;
		ad->address.len = 4;
		ad->length = rnd(2) ? 32 : 24;
		v[i] = ad;
	}
	return v;
}

static uint32_t *rnd_ports(struct zt_arena *a, size_t *n)
{
	uint32_t *v;

	*n = 1 + rnd(3);
	v = zt_arena_calloc(a, *n, sizeof(*v));
	for (size_t i = 0; i < *n; i++)
		v[i] = rnd_port[rnd(5)];
	return v;
}

static Istio__Security__ServiceAccountMatch **rnd_sas(struct zt_arena *a, size_t *n)
{
	Istio__Security__ServiceAccountMatch **v;

	*n = 1 + rnd(2);
	v = zt_arena_calloc(a, *n, sizeof(*v));
	for (size_t i = 0; i < *n; i++) {
		Istio__Security__ServiceAccountMatch *m = zt_arena_calloc(a, 1, sizeof(*m));
		*m = (Istio__Security__ServiceAccountMatch)
		        ISTIO__SECURITY__SERVICE_ACCOUNT_MATCH__INIT;
		m->namespace_ = (char *)rnd_ns[rnd(4)];
		m->serviceaccount = (char *)rnd_sa[rnd(2)];
		v[i] = m;
	}
	return v;
}

/* A match with a few random fields; destination ports are the most common (the index). */
static Istio__Security__Match *rnd_match(struct zt_arena *a)
{
	Istio__Security__Match *m = zt_arena_calloc(a, 1, sizeof(*m));

	*m = (Istio__Security__Match)ISTIO__SECURITY__MATCH__INIT;
	for (unsigned k = 1 + rnd(2); k > 0; k--) {
		switch (rnd(14)) {
		case 0:
			m->namespaces = rnd_strings(a, &m->n_namespaces, false);
			break;
		case 1:
			m->not_namespaces = rnd_strings(a, &m->n_not_namespaces, false);
			break;
		case 2:
			m->principals = rnd_strings(a, &m->n_principals, true);
			break;
		case 3:
			m->not_principals = rnd_strings(a, &m->n_not_principals, true);
			break;
		case 4:
			m->source_ips = rnd_cidrs(a, &m->n_source_ips);
			break;
		case 5:
			m->not_source_ips = rnd_cidrs(a, &m->n_not_source_ips);
			break;
		case 6:
			m->destination_ips = rnd_cidrs(a, &m->n_destination_ips);
			break;
		case 7:
			m->not_destination_ips = rnd_cidrs(a, &m->n_not_destination_ips);
			break;
		case 8:
			m->not_destination_ports = rnd_ports(a, &m->n_not_destination_ports);
			break;
		case 9:
			m->service_accounts = rnd_sas(a, &m->n_service_accounts);
			break;
		case 10:
			m->not_service_accounts = rnd_sas(a, &m->n_not_service_accounts);
			break;
		default:
			m->destination_ports = rnd_ports(a, &m->n_destination_ports);
		}
	}
	return m;
}

static void rnd_policy(struct zt_store *st, unsigned i)
{
	struct zt_arena a = {0};
	Istio__Security__Authorization pb = ISTIO__SECURITY__AUTHORIZATION__INIT;
	struct zt_policy *p = NULL;
	char err[256];

	pb.scope = (Istio__Security__Scope)rnd(3);
	pb.namespace_ = (char *)(pb.scope == ISTIO__SECURITY__SCOPE__GLOBAL ? "istio-system"
	                                                                    : rnd_ns[rnd(3)]);
	pb.name = zt_arena_printf(&a, "p%u", i);
	pb.action = rnd(3) ? ISTIO__SECURITY__ACTION__ALLOW : ISTIO__SECURITY__ACTION__DENY;
	pb.dry_run = rnd(8) == 0;
	pb.n_rules = rnd(4);
	pb.rules = zt_arena_calloc(&a, pb.n_rules, sizeof(*pb.rules));
	for (size_t r = 0; r < pb.n_rules; r++) {
		Istio__Security__Rule *rule = zt_arena_calloc(&a, 1, sizeof(*rule));
		*rule = (Istio__Security__Rule)ISTIO__SECURITY__RULE__INIT;
		rule->n_clauses = rnd(3);
		rule->clauses = zt_arena_calloc(&a, rule->n_clauses, sizeof(*rule->clauses));
		for (size_t c = 0; c < rule->n_clauses; c++) {
			Istio__Security__Clause *cl = zt_arena_calloc(&a, 1, sizeof(*cl));
			*cl = (Istio__Security__Clause)ISTIO__SECURITY__CLAUSE__INIT;
			cl->n_matches = rnd(3);
			cl->matches = zt_arena_calloc(&a, cl->n_matches, sizeof(*cl->matches));
			for (size_t k = 0; k < cl->n_matches; k++)
				cl->matches[k] = rnd_match(&a);
			rule->clauses[c] = cl;
		}
		pb.rules[r] = rule;
	}
	ck_assert_msg(zt_policy_decode(&pb, &p, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(zt_store_put_policy(st, p), 0);
	zt_policy_unref(p);
	zt_arena_clear(&a);
}

static void rnd_workload(struct zt_store *st, unsigned i, unsigned npol)
{
	struct zt_arena a = {0};
	Istio__Workload__Workload pb = ISTIO__WORKLOAD__WORKLOAD__INIT;
	struct zt_workload *w = NULL;
	uint8_t ip[4] = {10, 0, 0, (uint8_t)(1 + i % 3)};
	ProtobufCBinaryData addr = {.len = 4, .data = ip};
	char err[256];

	pb.uid = zt_arena_printf(&a, "w%u", i);
	pb.namespace_ = (char *)rnd_ns[rnd(3)];
	pb.n_addresses = 1;
	pb.addresses = &addr;
	pb.n_authorization_policies = rnd(5);
	pb.authorization_policies =
	        zt_arena_calloc(&a, pb.n_authorization_policies, sizeof(char *));
	for (size_t k = 0; k < pb.n_authorization_policies; k++)
		pb.authorization_policies[k] = zt_arena_printf(
		        &a, "%s/p%u", rnd(4) ? pb.namespace_ : rnd_ns[rnd(3)], rnd(npol + 2));
	ck_assert_msg(zt_workload_decode(&pb, &w, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(zt_store_put_workload(st, w), 0);
	zt_workload_unref(w);
	zt_arena_clear(&a);
}

/* Random connections to every workload (and to old versions held past an update); returns
 * how many were denied, so the caller can check both verdicts were exercised. */
static unsigned compare_decisions(struct zt_store *st, struct zt_workload **held, size_t nheld,
                                  unsigned nwl)
{
	unsigned denied = 0;

	for (unsigned k = 0; k < 400; k++) {
		struct zt_spiffe id;
		struct zt_authz_conn c = {0};
		char uid[16];
		struct zt_workload *w = NULL;
		snprintf(uid, sizeof(uid), "w%u", rnd(nwl));
		if (nheld && rnd(4) == 0)
			c.dst = held[rnd((uint32_t)nheld)];
		else
			c.dst = w = zt_store_workload_by_uid(st, uid);
		ck_assert_ptr_nonnull(c.dst);
		ck_assert_int_eq(
		        zt_spiffe_set(&id, "cluster.local", rnd_ns[rnd(4)], rnd_sa[rnd(2)]), 0);
		c.src_id = rnd(5) ? &id : NULL;
		zt_ip_parse(&c.src_ip, rnd(2) ? "10.0.0.1" : "10.0.0.3", 8);
		c.dst_ip = c.dst->ips[0];
		c.dst_port = (uint16_t)rnd_port[rnd(4)];
		if (rnd(8) == 0)
			c.dst_port =
			        (uint16_t)(70000 - 65536); /* a port only a truncation would hit */
		enum zt_authz_verdict want = authz_ref_check(st, &c);
		ck_assert_msg(zt_authz_check(st, &c, NULL, 0) == want,
		              "workload %s port %u: the scan says %s", c.dst->uid, c.dst_port,
		              want == ZT_AUTHZ_ALLOW ? "allow" : "deny");
		denied += want == ZT_AUTHZ_DENY;
		zt_workload_unref(w);
	}
	return denied;
}

START_TEST(authz_indexed_decision_equals_scan_of_every_policy_on_random_meshes)
{
	unsigned denied = 0, total = 0;
	char spec[256], err[128];

	zt_log_get_spec(spec, sizeof(spec));
	ck_assert_int_eq(zt_log_set_spec("error", err, sizeof(err)), 0);
	for (unsigned trial = 0; trial < 40; trial++) {
		struct zt_store *st = zt_store_new();
		struct zt_workload *held[8];
		size_t nheld = 0;
		unsigned npol = 5 + rnd(40), nwl = 8;

		rnd_state = trial * 2654435761u + 1;
		for (unsigned i = 0; i < npol; i++)
			rnd_policy(st, i);
		for (unsigned i = 0; i < nwl; i++)
			rnd_workload(st, i, npol);
		denied += compare_decisions(st, NULL, 0, nwl);
		/* Updates: workloads re-listed (old versions kept), policies replaced, removed. */
		for (unsigned i = 0; i < 8; i++) {
			char uid[16];
			unsigned j = rnd(nwl);
			snprintf(uid, sizeof(uid), "w%u", j);
			held[nheld++] = zt_store_workload_by_uid(st, uid);
			rnd_workload(st, j, npol);
		}
		for (unsigned i = 0; i < npol / 3; i++)
			rnd_policy(st, rnd(npol));
		for (unsigned i = 0; i < npol / 4; i++) {
			char key[32];
			snprintf(key, sizeof(key), "%s/p%u", rnd_ns[rnd(4)], rnd(npol));
			zt_store_remove_authorization(st, key);
		}
		denied += compare_decisions(st, held, nheld, nwl);
		total += 800;
		for (size_t i = 0; i < nheld; i++)
			zt_workload_unref(held[i]);
		zt_store_free(st);
	}
	ck_assert_int_eq(zt_log_set_spec(spec, err, sizeof(err)), 0);
	/* Both verdicts were exercised in earnest. */
	ck_assert_uint_gt(denied, total / 10);
	ck_assert_uint_lt(denied, total - total / 10);
	fx_assert_no_live();
}
END_TEST

Suite *authz_suite(void);
Suite *authz_suite(void)
{
	Suite *s = suite_create("authz");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, authz_every_match_field_positive_and_negated, 0,
	                    (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_loop_test(tc, authz_rules_or_clauses_and_matches_or, 0,
	                    (int)(sizeof(shapes) / sizeof(shapes[0])));
	tcase_add_test(tc, authz_no_policies_allows_everything_including_plaintext);
	tcase_add_test(tc, authz_global_policy_applies_to_every_namespace);
	tcase_add_test(tc, authz_namespace_policy_applies_only_to_its_namespace);
	tcase_add_test(tc, authz_selector_policy_applies_only_when_listed_on_the_workload);
	tcase_add_test(tc, authz_deny_takes_precedence_over_allow);
	tcase_add_test(tc, authz_allow_policies_must_match_when_present);
	tcase_add_test(tc, authz_deny_with_no_rules_is_a_no_op);
	tcase_add_test(tc, authz_dry_run_policies_are_not_enforced);
	tcase_add_test(tc, authz_strict_mtls_policy_denies_plaintext_only);
	tcase_add_test(tc, authz_why_may_be_null);
	tcase_add_test(tc, authz_indexed_decision_equals_scan_of_every_policy_on_random_meshes);
	suite_add_tcase(s, tc);
	return s;
}
