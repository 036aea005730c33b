/* A workload proxy: the listener set ztunnel runs for one workload (spec §1.1): 15001
 * outbound capture, 15006 inbound plaintext, 15008 inbound HBONE, with that workload's HBONE
 * pool. Dedicated mode runs one for the process's workload; in-pod mode one per pod, its
 * sockets made inside the pod's network namespace through socket_cb. The halves live in
 * outbound.c and inbound.c; this file holds what they share: the workload lookup, socket
 * options, original-destination recovery and telemetry labels. */
#ifndef ZT_PROXY_H
#define ZT_PROXY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cert/manager.h"
#include "config/config.h"
#include "proxy/pool.h"
#include "runtime/addr.h"
#include "runtime/loop.h"
#include "state/store.h"
#include "telemetry/accesslog.h"
#include "telemetry/metrics.h"

#define ZT_PORT_OUTBOUND 15001
#define ZT_PORT_INBOUND  15006
#define ZT_PORT_HBONE    15008

/* Process-wide services every workload proxy uses (borrowed; outlive the proxies). */
struct zt_proxy_ctx {
	struct zt_loop *loop;
	const struct zt_config *cfg;
	struct zt_store *store;
	struct zt_certmgr *certs;   /* NULL: no certificates, so no HBONE either way */
	struct zt_metrics *metrics; /* may be NULL */
};

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
	struct zt_dns_server *dns; /* the DNS proxy (spec §13), NULL when DNS capture is off */
	struct zt_dns_resolver *resolver; /* hostname workloads (spec §7.1), ztunnel's resolvers */
	bool transparent; /* IP_TRANSPARENT worked on the listeners: spoof client sources */
};

/* Starts the listener set for the workload ns/name/sa (uid NULL when unknown). Fails, with
 * the port and reason in err, if a listener cannot be opened. */
int zt_proxy_new(struct zt_proxy **out, struct zt_proxy_ctx *ctx, const char *ns, const char *name,
                 const char *sa, const char *uid, const struct zt_proxy_opts *o, char *err,
                 size_t errlen);
/* Closes the listeners and every connection of this workload. Accepts NULL. */
void zt_proxy_free(struct zt_proxy *p);
json_t *zt_proxy_dump(const struct zt_proxy *p);

/* The proxied workload as xDS has it now (new reference) or NULL: by uid when known, else by
 * (name, namespace, service account) among workloads on NODE_NAME. */
struct zt_workload *zt_proxy_workload(struct zt_proxy *p);

/* A listening socket on port with SO_REUSEPORT, SO_MARK (PACKET_MARK), IP_TRANSPARENT when
 * available (best effort unless ENABLE_ORIG_SRC=true), backlog 128. Returns the fd or
 * -errno with err set. */
int zt_proxy_listen(struct zt_proxy *p, uint16_t port, char *err, size_t errlen);
/* An outgoing non-blocking TCP socket of family with SO_MARK, TCP_NODELAY and keepalive
 * (spec §1.2); when src is given and the listeners are transparent, bound to it with
 * IP_TRANSPARENT (spoofed source, spec §7.2 step 6). Returns the fd or -errno. */
int zt_proxy_socket(struct zt_proxy *p, int family, const struct zt_ip *src);
/* TCP_NODELAY and keepalive on an accepted socket. */
void zt_proxy_accepted(struct zt_proxy *p, int fd);
/* SO_ORIGINAL_DST (v4, then v6), else the socket's local address. */
int zt_proxy_original_dst(int fd, struct zt_sockaddr *out);
/* Starts a non-blocking connect of fd to dst; 0 when in progress or done, else -errno. */
int zt_proxy_connect(int fd, const struct zt_sockaddr *dst);

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

/* Implemented by the halves. start: 0 or -errno with err; stop: closes everything. */
int zt_outbound_start(struct zt_proxy *p, char *err, size_t errlen);
void zt_outbound_stop(struct zt_proxy *p);
json_t *zt_outbound_dump(const struct zt_proxy *p);
int zt_inbound_start(struct zt_proxy *p, char *err, size_t errlen);
void zt_inbound_stop(struct zt_proxy *p);
json_t *zt_inbound_dump(const struct zt_proxy *p);

#endif
