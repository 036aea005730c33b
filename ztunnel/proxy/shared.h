/* What both halves of a workload proxy share (spec §1.1): the proxy object and its settings,
 * the workload lookup, sockets made where the workload lives with the options of spec §1.2,
 * and telemetry labels. Below inbound.c and outbound.c, above nothing of theirs: the halves
 * include this, never proxy.h, so the workload proxy has no include cycle. */
#ifndef ZT_PROXY_SHARED_H
#define ZT_PROXY_SHARED_H

#include <stdbool.h>
#include <stdint.h>

#include "cert/manager.h"
#include "hbone/pool.h"
#include "hbone/sockopt.h"
#include "runtime/addr.h"
#include "runtime/loop.h"
#include "state/store.h"
#include "telemetry/accesslog.h"
#include "telemetry/metrics.h"

#define ZT_PORT_OUTBOUND 15001
#define ZT_PORT_INBOUND  15006
#define ZT_PORT_HBONE    15008

/* ENABLE_ORIG_SRC (spec §1.2): IP_TRANSPARENT on listeners best effort, required, or never. */
enum zt_proxy_orig_src { ZT_PROXY_ORIG_SRC_AUTO, ZT_PROXY_ORIG_SRC_ON, ZT_PROXY_ORIG_SRC_OFF };

/* The settings a workload proxy reads; zt_proxy_settings_from_config (proxy.h) fills them from
 * the environment. Strings are borrowed and outlive the proxies. */
struct zt_proxy_settings {
	const char *node_name;    /* NODE_NAME: the proxied workload runs there ("" or NULL: any) */
	const char *trust_domain; /* TRUST_DOMAIN: the identity served before xDS knows the pod */
	bool ipv6;                /* IPV6_ENABLED: listeners on "::" rather than "0.0.0.0" */
	bool port_reuse;          /* INPOD_PORT_REUSE: SO_REUSEPORT on listeners */
	enum zt_proxy_orig_src orig_src;
	struct zt_sockopt sock; /* SO_MARK, TCP_NODELAY, keepalive of every TCP socket */
	uint32_t h2_stream_window, h2_conn_window, h2_max_frame; /* both sides' HTTP/2 */
	uint32_t pool_max_streams;                                /* POOL_MAX_STREAMS_PER_CONNECTION */
	uint64_t pool_idle_ms;                                    /* POOL_UNUSED_RELEASE_TIMEOUT */
	/* The DNS proxy (spec §13.1): ISTIO_META_DNS_CAPTURE, ISTIO_META_DNS_PROXY_ADDR. */
	bool dns_enabled;
	const struct zt_sockaddr *dns_addrs;
	size_t n_dns_addrs;
	const char *cluster_domain, *preferred_ns; /* CLUSTER_DOMAIN, PREFERED_SERVICE_NAMESPACE */
	bool dns_search_from_resolv; /* dedicated mode: resolv.conf's search list */
	/* Loops (worker threads) each running this workload's proxy: the per-proxy bounds on
	 * what peers can open are split between them. 0 or 1: one. */
	unsigned loops;
};

struct zt_proxy_watchers;

/* What the workload proxies of one loop use (borrowed; outlive the proxies). store and certs
 * are shared by every thread (both thread-safe for what a proxy calls); loop, metrics and
 * watchers belong to the loop's thread. */
struct zt_proxy_ctx {
	struct zt_loop *loop;
	struct zt_proxy_settings set;
	struct zt_store *store;
	struct zt_certmgr *certs;   /* NULL: no certificates, so no HBONE either way */
	struct zt_metrics *metrics; /* may be NULL */
	/* Store events for proxies on a worker thread, forwarded by proxy/dataplane.c; NULL:
	 * the store's own watchers (the proxies run on the store's thread). */
	struct zt_proxy_watchers *watchers;
};

/* Calls cb for every store change (zt_store_watch_cb), on the proxy's own loop. */
void zt_proxy_watch(struct zt_proxy_ctx *ctx, zt_store_watch_cb cb, void *arg);
void zt_proxy_unwatch(struct zt_proxy_ctx *ctx, zt_store_watch_cb cb, void *arg);
/* A worker's watcher list (its thread only); emit calls each watcher added before the call. */
struct zt_proxy_watchers *zt_proxy_watchers_new(void);
void zt_proxy_watchers_free(struct zt_proxy_watchers *ws);
void zt_proxy_watchers_emit(struct zt_proxy_watchers *ws, struct zt_store *store,
                            const struct zt_store_event *ev);

/* Creates a socket of family and type (SOCK_STREAM) where the workload lives; -errno. */
typedef int (*zt_proxy_socket_cb)(int family, int type, void *arg);

struct zt_proxy_opts {
	zt_proxy_socket_cb socket_cb; /* NULL: the current network namespace */
	void *socket_arg;
	const char *bind_ip; /* listeners' address; NULL: "::" ("0.0.0.0" without IPv6) */
	uint16_t outbound_port, inbound_port, hbone_port; /* 0: 15001, 15006, 15008 */
};

struct zt_outbound;
struct zt_inbound;
struct zt_dns_server;
struct zt_dns_resolver;

struct zt_proxy {
	struct zt_proxy_ctx *ctx;
	struct zt_proxy_opts o;
	char ns[64], name[254], sa[64]; /* how the workload is found in xDS (spec §5) */
	char uid[320];                  /* "" until known */
	struct zt_pool *pool;           /* HBONE client pool of this workload (spec §2.7) */
	struct zt_outbound *out;
	struct zt_inbound *in;
	struct zt_dns_server *dns;        /* the DNS proxy (spec §13); NULL when capture is off */
	struct zt_dns_resolver *resolver; /* hostname workloads (spec §7.1): system resolvers */
	bool transparent; /* IP_TRANSPARENT worked on the listeners: spoof client sources */
};

/* The proxied workload as xDS has it now (new reference) or NULL: by uid when known, else by
 * (name, namespace, service account) among workloads on NODE_NAME. */
struct zt_workload *zt_proxy_workload(struct zt_proxy *p);

/* Whether a store event is about the workload proxied under this identity (uid when known,
 * else or also name, namespace and service account): what an inbound watcher reacts to
 * besides policy changes. */
bool zt_proxy_event_is_local(const struct zt_store_event *ev, const char *uid, const char *ns,
                             const char *name, const char *sa);

/* A listening socket on port with SO_REUSEPORT, SO_MARK (PACKET_MARK), IP_TRANSPARENT when
 * available (best effort unless ENABLE_ORIG_SRC=true), backlog 128. Returns the fd or
 * -errno with err set. */
int zt_proxy_listen(struct zt_proxy *p, uint16_t port, char *err, size_t errlen);
/* An outgoing non-blocking TCP socket of family with SO_MARK, TCP_NODELAY and keepalive
 * (spec §1.2); when src is given and the listeners are transparent, bound to it with
 * IP_TRANSPARENT (spoofed source, spec §7.2 step 6). Returns the fd or -errno. */
int zt_proxy_socket(struct zt_proxy *p, int family, const struct zt_ip *src);
/* This proxy's share of a bound that holds for the workload across every loop (>= 1). */
size_t zt_proxy_share(const struct zt_proxy *p, size_t bound);
/* TCP_NODELAY and keepalive on an accepted socket. */
void zt_proxy_accepted(struct zt_proxy *p, int fd);

/* Telemetry labels for a connection (spec §8.1). Strings are borrowed from the arguments;
 * keep them alive while the labels are used. principal fields need buffers of
 * ZT_SPIFFE_STR_SIZE each. */
struct zt_proxy_labels {
	struct zt_metric_labels l;
	char src_principal[ZT_SPIFFE_STR_SIZE], dst_principal[ZT_SPIFFE_STR_SIZE];
	char svc_name[254], svc_ns[64];
};
void zt_proxy_labels_fill(struct zt_proxy_labels *out, enum zt_reporter reporter,
                          const struct zt_workload *src, const struct zt_spiffe *src_id,
                          const struct zt_workload *dst, const struct zt_spiffe *dst_id,
                          const struct zt_service *svc, bool mtls);

#endif
