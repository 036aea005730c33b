/* The DNS proxy of one workload (spec §13): UDP and TCP listeners on 127.0.0.1:15053 and
 * [::1]:15053 (or ISTIO_META_DNS_PROXY_ADDR) where the workload lives - inside the pod's
 * namespace in in-pod mode, ztunnel's own in dedicated mode. A/AAAA queries for service
 * names are answered from the store (dns/lookup.h); everything else goes to the resolvers of
 * resolv.conf (dns/upstream.h) and the answer is relayed. Counts istio_dns_* (spec §13.4).
 * Invariant: every query read is answered or dropped exactly once, malformed ones with
 * FORMERR, and the work one client can queue is bounded (forwards in flight, TCP
 * connections, a request deadline per TCP connection). */
#ifndef ZT_DNS_SERVER_H
#define ZT_DNS_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "dns/upstream.h"
#include "runtime/loop.h"
#include "state/store.h"
#include "telemetry/metrics.h"

#define ZT_DNS_PORT         15053
#define ZT_DNS_TCP_MAX_CONN 64
#define ZT_DNS_TCP_TIMEOUT  5000 /* ms for one request on a TCP connection (spec §13.1) */

/* The workload owning the server as the store has it now: a new reference, or NULL. */
typedef struct zt_workload *(*zt_dns_client_cb)(void *arg);

struct zt_dns_server_opts {
	struct zt_loop *loop;
	const struct zt_store *store;
	struct zt_metrics *metrics; /* NULL: no metrics */
	zt_dns_socket_cb socket_cb; /* NULL: the current namespace */
	void *socket_arg;
	zt_dns_client_cb client_cb;
	void *client_arg;
	const struct zt_sockaddr *addrs; /* listener addresses (at most 2) */
	size_t n_addrs;
	const char *cluster_domain; /* CLUSTER_DOMAIN; NULL: cluster.local */
	const char *preferred_ns;   /* PREFERED_SERVICE_NAMESPACE or NULL */
	bool ipv6;                  /* IPV6_ENABLED: AAAA answered */
	bool port_reuse;            /* SO_REUSEPORT on the listeners */
	bool mark_set;              /* SO_MARK on every socket (listeners, upstream queries) */
	uint32_t mark;
	const char *resolv_conf; /* NULL: /etc/resolv.conf */
	/* Search domains: resolv.conf's (dedicated mode) instead of the pod's namespace ones. */
	bool search_from_resolv;
	uint32_t upstream_timeout_ms; /* 0: ZT_DNS_UPSTREAM_TIMEOUT */
	size_t tcp_max_conn;          /* open TCP connections; 0: ZT_DNS_TCP_MAX_CONN */
};

struct zt_dns_server;

/* Opens the listeners. An IPv6 loopback that cannot be bound (IPv6 off in the namespace) is
 * skipped; any other listener failure is an error with the address and reason in err.
 * Missing or empty resolv.conf is not an error: forwarded queries then get SERVFAIL.
 * Returns 0 or -errno. */
int zt_dns_server_new(struct zt_dns_server **out, const struct zt_dns_server_opts *o, char *err,
                      size_t errlen);
/* Closes the listeners and connections and cancels forwards. Accepts NULL. */
void zt_dns_server_free(struct zt_dns_server *s);
/* {"listeners":[...],"upstreams":[...],"counters":{...}} */
json_t *zt_dns_server_dump(const struct zt_dns_server *s);

#endif
