/* The data plane's threads (ZTUNNEL_WORKER_THREADS) and the workload proxy group above
 * struct zt_proxy: one zt_proxy per worker for each workload, each created, run and freed on
 * its worker's thread, each with its own listeners (SO_REUSEPORT, so the kernel spreads
 * connections), HBONE pool, relays, DNS server and resolver, metrics. The main thread reaches
 * a worker only through its loop (zt_loop_call for the group operations below, zt_loop_post
 * for store events); workers never wait for the main thread. */
#ifndef ZT_PROXY_DATAPLANE_H
#define ZT_PROXY_DATAPLANE_H

#include <jansson.h>
#include <stddef.h>

#include "proxy/proxy.h"
#include "runtime/buf.h"

struct zt_dataplane;
struct zt_proxy_group;

/* Starts nworkers threads serving proxies built like base (borrowed, with the main loop and
 * the main thread's metrics; its store, certs and settings are shared by every worker). With
 * more than one worker, listeners always get SO_REUSEPORT. nworkers 0: no thread, every
 * proxy runs on base->loop with base's metrics (one-loop programs and tests). build_tag is
 * istio_build's tag for the summed metrics. Returns 0 or -errno. */
int zt_dataplane_new(struct zt_dataplane **out, const struct zt_proxy_ctx *base, size_t nworkers,
                     const char *build_tag);
/* Stops and joins the workers. Free every group first. Accepts NULL. */
void zt_dataplane_free(struct zt_dataplane *dp);
/* The main thread's context (the manager of in-pod mode keeps its timers and metrics there). */
struct zt_proxy_ctx *zt_dataplane_ctx(struct zt_dataplane *dp);
/* Loops carrying proxies: the worker count, or 1 without workers. */
size_t zt_dataplane_loops(const struct zt_dataplane *dp);
/* Prometheus text of the main thread's metrics and every worker's, summed (zt_metrics_merge).
 * Returns what zt_metrics_render does. */
int zt_dataplane_render_metrics(struct zt_dataplane *dp, struct zt_buf *out);

/* Starts the workload's proxy on every loop (zt_proxy_new's arguments). On failure none is
 * left running and err names the worker and the reason. */
int zt_proxy_group_new(struct zt_proxy_group **out, struct zt_dataplane *dp, const char *ns,
                       const char *name, const char *sa, const char *uid,
                       const struct zt_proxy_opts *o, char *err, size_t errlen);
/* zt_proxy_free on every loop. Accepts NULL. */
void zt_proxy_group_free(struct zt_proxy_group *g);
/* zt_proxy_drain on every loop. Accepts NULL. */
void zt_proxy_group_drain(struct zt_proxy_group *g);
/* Sum of zt_proxy_open over the loops. */
size_t zt_proxy_group_open(const struct zt_proxy_group *g);
/* zt_proxy_dump of every loop folded into one (lists joined, counts summed, the rest from the
 * first), plus "workers": [{"outboundAccepted", "inboundAccepted", "hboneAccepted"}] per
 * loop. New reference. */
json_t *zt_proxy_group_dump(const struct zt_proxy_group *g);

#endif
