/* Spec §6 decisions. Policies and the destination workload come from local-config YAML (the
 * format is tested in test_state), so each row of the tables is one readable match. The
 * default connection: 10.0.0.1 -> 10.0.0.2:8080 from spiffe://cluster.local/ns/src/sa/client
 * to workload dst/w, which lists the selector policies dst/sel and dst/missing. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "loop_fixture.h"
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
	suite_add_tcase(s, tc);
	return s;
}
