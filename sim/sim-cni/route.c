/* Policy routing for the in-pod redirection (spec §1.3) with libnl-route-3. Every call opens
 * its own rtnetlink socket, so it acts on the namespace the caller is in at that moment. */
#include "route.h"

#include <errno.h>
#include <linux/fib_rules.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/socket.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>

static const int family_af[] = {AF_INET, AF_INET6};
static const char *const family_tag[] = {"v4", "v6"};

static int nl_fail(char *err, size_t errlen, const char *what, int nlerr)
{
	snprintf(err, errlen, "%s: %s", what, nl_geterror(nlerr < 0 ? -nlerr : nlerr));
	return -EIO;
}

static int open_sock(struct nl_sock **out, char *err, size_t errlen)
{
	struct nl_sock *sk = nl_socket_alloc();
	int rc;

	*out = NULL;
	if (!sk) {
		snprintf(err, errlen, "netlink: out of memory");
		return -EIO;
	}
	rc = nl_connect(sk, NETLINK_ROUTE);
	if (rc < 0) {
		nl_socket_free(sk);
		return nl_fail(err, errlen, "netlink connect", rc);
	}
	*out = sk;
	return 0;
}

int cni_route_lo_state(bool *up, bool *has_v6, char *err, size_t errlen)
{
	struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL;
	struct nl_cache *addrs = NULL;
	int rc, ifindex;

	*up = *has_v6 = false;
	rc = open_sock(&sk, err, errlen);
	if (rc < 0)
		return rc;
	rc = rtnl_link_get_kernel(sk, 0, "lo", &link);
	if (rc < 0) {
		rc = nl_fail(err, errlen, "looking up lo", rc);
		goto out;
	}
	*up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
	ifindex = rtnl_link_get_ifindex(link);
	rc = rtnl_addr_alloc_cache(sk, &addrs);
	if (rc < 0) {
		rc = nl_fail(err, errlen, "listing addresses", rc);
		goto out;
	}
	for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;

		if (rtnl_addr_get_family(a) == AF_INET6 && rtnl_addr_get_ifindex(a) == ifindex)
			*has_v6 = true;
	}
	rc = 0;
out:
	nl_cache_free(addrs);
	if (link)
		rtnl_link_put(link);
	nl_socket_free(sk);
	return rc;
}

static struct rtnl_rule *make_rule(enum cni_family f)
{
	struct rtnl_rule *r = rtnl_rule_alloc();

	if (!r)
		return NULL;
	rtnl_rule_set_family(r, family_af[f]);
	rtnl_rule_set_prio(r, CNI_ROUTE_PREF);
	rtnl_rule_set_mark(r, CNI_ROUTE_MARK);
	rtnl_rule_set_mask(r, CNI_ROUTE_MASK);
	rtnl_rule_set_table(r, CNI_ROUTE_TABLE);
	rtnl_rule_set_action(r, FR_ACT_TO_TBL);
	return r;
}

/* local 0.0.0.0/0 (or ::/0) dev lo table 100. */
static struct rtnl_route *make_route(enum cni_family f, int lo)
{
	static const unsigned char zeros[16];
	struct rtnl_route *r = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *dst = nl_addr_build(family_af[f], zeros, f == CNI_V4 ? 4 : 16);

	if (!r || !nh || !dst) {
		if (r)
			rtnl_route_put(r);
		if (nh)
			rtnl_route_nh_free(nh);
		nl_addr_put(dst);
		return NULL;
	}
	nl_addr_set_prefixlen(dst, 0);
	rtnl_route_set_family(r, family_af[f]);
	rtnl_route_set_table(r, CNI_ROUTE_TABLE);
	rtnl_route_set_type(r, RTN_LOCAL);
	rtnl_route_set_scope(r, RT_SCOPE_HOST);
	rtnl_route_set_protocol(r, RTPROT_BOOT);
	rtnl_route_set_dst(r, dst);
	nl_addr_put(dst);
	rtnl_route_nh_set_ifindex(nh, lo);
	rtnl_route_add_nexthop(r, nh); /* the route owns nh now */
	return r;
}

int cni_route_install(enum cni_family f, char *err, size_t errlen)
{
	struct nl_sock *sk = NULL;
	struct rtnl_rule *rule = NULL;
	struct rtnl_route *route = NULL;
	char what[64];
	int rc, lo = (int)if_nametoindex("lo");

	if (lo == 0) {
		snprintf(err, errlen, "no lo interface");
		return -EIO;
	}
	rc = open_sock(&sk, err, errlen);
	if (rc < 0)
		return rc;
	rule = make_rule(f);
	route = make_route(f, lo);
	if (!rule || !route) {
		snprintf(err, errlen, "netlink: out of memory");
		rc = -EIO;
		goto out;
	}
	rc = rtnl_rule_add(sk, rule, NLM_F_EXCL);
	if (rc < 0 && rc != -NLE_EXIST) {
		snprintf(what, sizeof(what), "ip rule add fwmark (%s)", family_tag[f]);
		rc = nl_fail(err, errlen, what, rc);
		goto out;
	}
	rc = rtnl_route_add(sk, route, NLM_F_REPLACE);
	if (rc < 0) {
		snprintf(what, sizeof(what), "ip route add local table 100 (%s)", family_tag[f]);
		rc = nl_fail(err, errlen, what, rc);
		goto out;
	}
	rc = 0;
out:
	if (rule)
		rtnl_rule_put(rule);
	if (route)
		rtnl_route_put(route);
	nl_socket_free(sk);
	return rc;
}

static bool gone(int nlerr)
{
	return nlerr == -NLE_OBJ_NOTFOUND || nlerr == -NLE_AF_NOSUPPORT || nlerr == -NLE_NOADDR ||
	       nlerr == -NLE_NODEV;
}

int cni_route_remove(enum cni_family f, char *err, size_t errlen)
{
	struct nl_sock *sk = NULL;
	struct rtnl_rule *rule = NULL;
	struct rtnl_route *route = NULL;
	char what[64];
	int rc, first = 0, lo = (int)if_nametoindex("lo");

	rc = open_sock(&sk, err, errlen);
	if (rc < 0)
		return rc;
	rule = make_rule(f);
	route = lo > 0 ? make_route(f, lo) : NULL;
	if (!rule || (lo > 0 && !route)) {
		snprintf(err, errlen, "netlink: out of memory");
		first = -EIO;
		goto out;
	}
	/* A rule added twice by hand is deleted twice; stop at the first "not found". */
	for (int i = 0; i < 16; i++) {
		rc = rtnl_rule_delete(sk, rule, 0);
		if (rc < 0)
			break;
	}
	if (rc < 0 && !gone(rc)) {
		snprintf(what, sizeof(what), "ip rule del fwmark (%s)", family_tag[f]);
		first = nl_fail(err, errlen, what, rc);
	}
	if (route) {
		rc = rtnl_route_delete(sk, route, 0);
		if (rc < 0 && !gone(rc) && first == 0) {
			snprintf(what, sizeof(what), "ip route del local table 100 (%s)",
			         family_tag[f]);
			first = nl_fail(err, errlen, what, rc);
		}
	}
out:
	if (rule)
		rtnl_rule_put(rule);
	if (route)
		rtnl_route_put(route);
	nl_socket_free(sk);
	return first;
}
