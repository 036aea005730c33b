/* On-demand resolution of hostname workloads (spec §7.1 "IP choice"): the addresses of a
 * workload that has a hostname and no IP, from the system resolvers (resolv.conf) through the
 * upstream client, cached for the smallest TTL of the answer. A then AAAA (when IPv6 is on).
 * Invariant: one query per name at a time (later callers wait on it), the cache holds at most
 * ZT_DNS_RESOLVER_MAX names, and a callback runs exactly once, from the loop, unless
 * cancelled. */
#ifndef ZT_DNS_RESOLVER_H
#define ZT_DNS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/upstream.h"
#include "runtime/addr.h"
#include "runtime/loop.h"

#define ZT_DNS_RESOLVER_MAX     1024 /* names cached */
#define ZT_DNS_RESOLVER_MAX_IPS 8
#define ZT_DNS_RESOLVER_MIN_TTL 1 /* seconds: an answer is reused at least this long */
#define ZT_DNS_RESOLVER_NEG_TTL 5 /* seconds a failed name is remembered */

struct zt_dns_resolver;
struct zt_dns_resolve_req;

/* err 0: ips[0..n) (n >= 1, borrowed for the call). Otherwise ZT_E_NOTFOUND (no address),
 * ZT_E_TIMEOUT or another upstream failure. */
typedef void (*zt_dns_resolve_cb)(void *arg, int err, const struct zt_ip *ips, size_t n);

/* o: where queries go (resolv.conf, sockets, mark); ipv6: ask AAAA when A has nothing. */
struct zt_dns_resolver *zt_dns_resolver_new(struct zt_loop *loop,
                                            const struct zt_dns_upstream_opts *o, bool ipv6);
/* Cancels every waiter (no callbacks) and frees. Accepts NULL. */
void zt_dns_resolver_free(struct zt_dns_resolver *r);

/* Resolves host (a DNS name). Returns 0 with *req set (cancel with
 * zt_dns_resolve_cancel until the callback ran), or ZT_E_PARSE for a name ldns refuses. */
int zt_dns_resolve(struct zt_dns_resolver *r, const char *host, zt_dns_resolve_cb cb, void *arg,
                   struct zt_dns_resolve_req **req);
void zt_dns_resolve_cancel(struct zt_dns_resolve_req *req);

struct zt_metrics;
struct zt_workload;
/* istio_on_demand_dns_total += 1 for a connection from src needing host resolved (spec
 * §8.1: the source labels and hostname). m NULL: nothing. */
void zt_dns_count_on_demand(struct zt_metrics *m, const struct zt_workload *src, const char *host);

/* Names cached (for /config_dump and tests). */
size_t zt_dns_resolver_cached(const struct zt_dns_resolver *r);

#endif
