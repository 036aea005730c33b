/* The Waypoint the waypoint targets (waypoint_h2, waypoint_http1) decide their requests
 * against, as sim-waypoint would take it from xDS: a DENY policy (DELETE on /admin*) and an
 * ALLOW policy on two paths and two hosts given by the target, under the condition
 * request.headers[x-ok] = yes; and the caller every request comes from (demo/sleep to web on
 * port 80). All storage is in struct fuzz_waypoint: nothing is allocated. */
#ifndef ZT_TESTS_FUZZ_WAYPOINT_FIXTURE_H
#define ZT_TESTS_FUZZ_WAYPOINT_FIXTURE_H

#include "sim/sim-waypoint/authz.h"

struct fuzz_waypoint {
	Ztunnel__Waypoint__Waypoint wp; /* what wp_authz_check takes */
	Ztunnel__Waypoint__Policy deny, allow, *policies[2];
	Ztunnel__Waypoint__Rule deny_rule, allow_rule, *deny_rules[1], *allow_rules[1];
	Ztunnel__Waypoint__Operation deny_op, allow_op, *deny_ops[1], *allow_ops[1];
	Ztunnel__Waypoint__Condition cond, *conds[1];
	char *deny_paths[1], *deny_methods[1], *allow_paths[2], *allow_hosts[2], *cond_values[1];
};

/* Builds the Waypoint in f, which points into itself (keep f where it is: a static). The
 * strings of allow_paths and allow_hosts (two each) are borrowed for f's lifetime. */
static inline void fuzz_waypoint_init(struct fuzz_waypoint *f, char *const allow_paths[2],
                                      char *const allow_hosts[2])
{
	*f = (struct fuzz_waypoint){
	        .wp = ZTUNNEL__WAYPOINT__WAYPOINT__INIT,
	        .deny = ZTUNNEL__WAYPOINT__POLICY__INIT,
	        .allow = ZTUNNEL__WAYPOINT__POLICY__INIT,
	        .deny_rule = ZTUNNEL__WAYPOINT__RULE__INIT,
	        .allow_rule = ZTUNNEL__WAYPOINT__RULE__INIT,
	        .deny_op = ZTUNNEL__WAYPOINT__OPERATION__INIT,
	        .allow_op = ZTUNNEL__WAYPOINT__OPERATION__INIT,
	        .cond = ZTUNNEL__WAYPOINT__CONDITION__INIT,
	        .deny_paths = {"/admin*"},
	        .deny_methods = {"DELETE"},
	        .allow_paths = {allow_paths[0], allow_paths[1]},
	        .allow_hosts = {allow_hosts[0], allow_hosts[1]},
	        .cond_values = {"yes"},
	};
	f->policies[0] = &f->deny;
	f->policies[1] = &f->allow;
	f->deny_rules[0] = &f->deny_rule;
	f->allow_rules[0] = &f->allow_rule;
	f->deny_ops[0] = &f->deny_op;
	f->allow_ops[0] = &f->allow_op;
	f->conds[0] = &f->cond;

	f->deny.namespace_ = "demo";
	f->deny.name = "no-admin";
	f->deny.action = ZTUNNEL__WAYPOINT__ACTION__DENY;
	f->deny.n_rules = 1;
	f->deny.rules = f->deny_rules;
	f->deny_rule.n_to = 1;
	f->deny_rule.to = f->deny_ops;
	f->deny_op.n_paths = 1;
	f->deny_op.paths = f->deny_paths;
	f->deny_op.n_methods = 1;
	f->deny_op.methods = f->deny_methods;

	f->allow.namespace_ = "demo";
	f->allow.name = "api";
	f->allow.action = ZTUNNEL__WAYPOINT__ACTION__ALLOW;
	f->allow.n_rules = 1;
	f->allow.rules = f->allow_rules;
	f->allow_rule.n_to = 1;
	f->allow_rule.to = f->allow_ops;
	f->allow_rule.n_when = 1;
	f->allow_rule.when = f->conds;
	f->allow_op.n_paths = 2;
	f->allow_op.paths = f->allow_paths;
	f->allow_op.n_hosts = 2;
	f->allow_op.hosts = f->allow_hosts;
	f->cond.key = "request.headers[x-ok]";
	f->cond.n_values = 1;
	f->cond.values = f->cond_values;

	f->wp.namespace_ = "demo";
	f->wp.name = "waypoint";
	f->wp.n_policies = 2;
	f->wp.policies = f->policies;
}

/* Sets the caller and destination of rq: demo/sleep (mTLS identity) to the web Service on
 * port 80. */
static inline void fuzz_waypoint_caller(struct wp_request *rq)
{
	rq->principal = "cluster.local/ns/demo/sa/sleep";
	rq->src_ns = "demo";
	rq->src_sa = "sleep";
	rq->dst_port = 80;
	rq->service = "demo/web.demo.svc.cluster.local";
}

#endif
