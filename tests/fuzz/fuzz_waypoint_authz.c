/* Fuzz target: the waypoint's policies as sim-waypoint takes them from xDS
 * (sim/sim-waypoint/config.c): a ztunnel.waypoint.Waypoint decoded with the xDS resource
 * bound, then every request of a fixed set (HTTP with headers, a TCP connection, an
 * unauthenticated caller, IPv6) decided by wp_authz_check: principals, namespaces, IP blocks
 * (CIDRs parsed at decision time), ports, methods, paths, hosts and conditions as the policy
 * author wrote them. Input: the encoded Waypoint. */
#include <stdlib.h>
#include <string.h>

#include "protocol/pb.h"
#include "runtime/log.h"
#include "sim/sim-waypoint/authz.h"
#include "state/store.h"
#include "tests/fuzz/fuzz.h"

static struct wp_request reqs[4];
static const struct wp_header hdrs[] = {
        {"x-ok", "yes"}, {"user-agent", "curl/8"}, {"x-forwarded-for", "10.0.0.9"}};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	reqs[0] = (struct wp_request){.principal = "cluster.local/ns/demo/sa/sleep",
	                              .src_ns = "demo",
	                              .src_sa = "sleep",
	                              .dst_port = 80,
	                              .service = "demo/web.demo.svc.cluster.local",
	                              .http = true,
	                              .method = "GET",
	                              .path = "/api/v1/items?x=1",
	                              .host = "web.demo.svc.cluster.local:80",
	                              .headers = hdrs,
	                              .n_headers = 3};
	reqs[1] = reqs[0];
	reqs[1].http = false;
	reqs[2] = reqs[0];
	reqs[2].principal = reqs[2].src_ns = reqs[2].src_sa = NULL;
	reqs[2].method = "DELETE";
	reqs[2].path = "/admin";
	reqs[3] = reqs[0];
	reqs[3].service = NULL;
	if (zt_ip_parse(&reqs[0].src_ip, "10.244.1.7", 10) < 0 ||
	    zt_ip_parse(&reqs[0].dst_ip, "10.96.0.10", 10) < 0 ||
	    zt_ip_parse(&reqs[3].src_ip, "fd00::7", 7) < 0 ||
	    zt_ip_parse(&reqs[3].dst_ip, "fd00::a", 7) < 0)
		abort();
	reqs[1].src_ip = reqs[2].src_ip = reqs[0].src_ip;
	reqs[1].dst_ip = reqs[2].dst_ip = reqs[0].dst_ip;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = NULL;
	struct wp_decision d;

	if (zt_pb_unpack(&ztunnel__waypoint__waypoint__descriptor, data, size,
	                 ZT_STORE_MAX_RESOURCE, &m) < 0)
		return 0;
	for (size_t i = 0; i < 4; i++) {
		bool allow = wp_authz_check((const Ztunnel__Waypoint__Waypoint *)m, &reqs[i], &d);
		if (allow != d.allow || strnlen(d.reason, sizeof(d.reason)) == sizeof(d.reason))
			__builtin_trap();
	}
	zt_pb_free(m);
	return 0;
}
