/* Upstream DNS client of the proxy (spec §13.3): sends one query to the resolvers of a
 * resolv.conf, in order, over UDP from a fresh socket (random source port, the caller's
 * random id), retries over TCP when the answer is truncated, and moves to the next resolver
 * on a timeout or an error. No cache. Sockets come from a factory so that, in in-pod mode,
 * they are made inside the pod's namespace and carry the mark that keeps them out of the DNS
 * capture. Invariant: a request's callback runs exactly once, from the loop (never inside
 * zt_dns_upstream_send), unless it is cancelled first; in-flight requests are bounded. */
#ifndef ZT_DNS_UPSTREAM_H
#define ZT_DNS_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/addr.h"
#include "runtime/loop.h"

#define ZT_DNS_MAX_SERVERS       3 /* as resolv.conf's MAXNS */
#define ZT_DNS_MAX_SEARCH        6
#define ZT_DNS_UPSTREAM_TIMEOUT  2000 /* ms per resolver attempt */
#define ZT_DNS_UPSTREAM_INFLIGHT 128  /* requests per upstream client */

/* What a resolv.conf says (nameservers with port 53, search domains without trailing dot). */
struct zt_dns_resolv {
	struct zt_sockaddr servers[ZT_DNS_MAX_SERVERS];
	size_t n_servers;
	char search[ZT_DNS_MAX_SEARCH][254];
	size_t n_search;
};

/* Reads path (NULL: /etc/resolv.conf) with ldns. Returns 0, or a negative code with the
 * reason in err (unreadable, no nameserver). */
int zt_dns_resolv_load(const char *path, struct zt_dns_resolv *out, char *err, size_t errlen);

/* Creates a socket of family and type where the queries must come from; -errno. */
typedef int (*zt_dns_socket_cb)(int family, int type, void *arg);

struct zt_dns_upstream_opts {
	const struct zt_dns_resolv *resolv; /* copied */
	zt_dns_socket_cb socket_cb;         /* NULL: socket(2) in the current namespace */
	void *socket_arg;
	bool mark_set;
	uint32_t mark;       /* SO_MARK on every socket when mark_set */
	uint32_t timeout_ms; /* per attempt; 0: ZT_DNS_UPSTREAM_TIMEOUT */
	size_t max_inflight; /* 0: ZT_DNS_UPSTREAM_INFLIGHT */
};

struct zt_dns_upstream;
struct zt_dns_upstream_req;

/* err 0: resp[0..len) is the upstream response (borrowed for the call). Otherwise a negative
 * code: ZT_E_TIMEOUT, ZT_E_PROTO (no usable answer), -errno. */
typedef void (*zt_dns_upstream_cb)(void *arg, int err, const uint8_t *resp, size_t len);

struct zt_dns_upstream *zt_dns_upstream_new(struct zt_loop *loop,
                                            const struct zt_dns_upstream_opts *o);
/* Cancels every request (no callbacks) and frees. Accepts NULL. */
void zt_dns_upstream_free(struct zt_dns_upstream *u);

/* Sends query (copied; its id must be id). Returns 0 with *req set (may be NULL when the
 * caller will never cancel), ZT_E_TOOBIG when max_inflight requests are pending, or
 * ZT_E_STATE when there is no resolver. */
int zt_dns_upstream_send(struct zt_dns_upstream *u, const uint8_t *query, size_t len, uint16_t id,
                         zt_dns_upstream_cb cb, void *arg, struct zt_dns_upstream_req **req);
/* Cancels a pending request: its callback will not run. */
void zt_dns_upstream_cancel(struct zt_dns_upstream_req *req);

/* Requests in flight. */
size_t zt_dns_upstream_inflight(const struct zt_dns_upstream *u);

/* A random 16-bit query id (getrandom-seeded). */
uint16_t zt_dns_random_id(void);

#endif
