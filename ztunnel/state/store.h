/* The daemon's view of the mesh: every workload, service and authorization policy received
 * over xDS (or from the local config file), and the indexes routing and authorization look
 * them up by (spec §3.5, §3.6, §6, §7.1). Objects in the store are immutable and reference
 * counted; an update builds a new object and swaps it in, so a reader keeps a consistent
 * view for as long as it holds a reference. Lookups return NEW references: the caller
 * releases them with zt_workload_unref / zt_service_unref / zt_policy_unref.
 * Apply and remove run on one thread (the main one), as do watchers; lookups and iteration
 * may run on any thread (a read-write lock; a callback must not change the store). */
#ifndef ZT_STATE_STORE_H
#define ZT_STATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/addr.h"
#include "state/policy.h"
#include "state/service.h"
#include "state/workload.h"

/* Largest serialized resource accepted by the apply functions. */
#define ZT_STORE_MAX_RESOURCE (4u << 20)

struct zt_store;

/* A new empty store. Aborts on OOM. */
struct zt_store *zt_store_new(void);
/* Drops every object reference the store holds and frees it. Accepts NULL. Must not be
 * called from a watcher. */
void zt_store_free(struct zt_store *store);

/* ---- xDS apply/remove (the xDS client's resource callbacks) --------------------------------
 * arg is the struct zt_store. data[0..len) is a serialized istio.workload.Address (a Workload
 * or a Service) or istio.security.Authorization. The resource's own key (workload uid,
 * service "namespace/hostname", policy "namespace/name") identifies it; name and version are
 * used for messages only. An update replaces the previous object with the same key.
 * Returns 0, or a negative code with the reason in err (the store is then unchanged):
 *   ZT_E_TOOBIG  len over ZT_STORE_MAX_RESOURCE
 *   ZT_E_PARSE   not a valid encoding of the message
 *   ZT_E_PROTO   decoded but invalid (LEGACY_ISTIO_MTLS, missing gateway destination, ...)
 *   ZT_E_STATE   called from a watcher callback */
int zt_store_apply_address(void *arg, const char *name, const char *version, const uint8_t *data,
                           size_t len, char *err, size_t errlen);
int zt_store_apply_authorization(void *arg, const char *name, const char *version,
                                 const uint8_t *data, size_t len, char *err, size_t errlen);
/* Removes the Address named name: tried as a workload uid first, then as a service
 * "namespace/hostname" (spec §3.5). Returns 0, ZT_E_NOTFOUND or ZT_E_STATE. */
int zt_store_remove_address(void *arg, const char *name);
/* Removes the policy "namespace/name". Returns 0, ZT_E_NOTFOUND or ZT_E_STATE. */
int zt_store_remove_authorization(void *arg, const char *name);

/* The same, for already decoded objects (borrowed; the store takes its own reference). A
 * service given here may carry endpoints: they are ignored and rebuilt from the store's
 * workloads. Return 0 or ZT_E_STATE. */
int zt_store_put_workload(struct zt_store *store, struct zt_workload *w);
int zt_store_put_service(struct zt_store *store, struct zt_service *svc);
int zt_store_put_policy(struct zt_store *store, struct zt_policy *p);

/* ---- lookups: each returns a new reference or NULL --------------------------------------- */
struct zt_workload *zt_store_workload_by_uid(const struct zt_store *store, const char *uid);
/* The workload owning ip on network ("" = default). When several share it, the preferred one
 * per spec §3.5 (Pod uid and HBONE > Pod > HBONE > other; ties: the one indexed first).
 * HOST_NETWORK workloads are not indexed by IP. */
struct zt_workload *zt_store_workload_by_ip(const struct zt_store *store, const char *network,
                                            const struct zt_ip *ip);
/* The service "ns/hostname". */
struct zt_service *zt_store_service_by_host(const struct zt_store *store, const char *ns,
                                            const char *hostname);
struct zt_service *zt_store_service_by_key(const struct zt_store *store, const char *key);
/* The service whose VIP is ip on network (spec §7.1): exact VIPs first, preferring a service
 * in caller_ns, then a canonical one, then the first indexed; failing that, CIDR VIPs
 * containing ip, preferring caller_ns, then the longest prefix, then canonical. Services
 * with NAMESPACE visibility are skipped unless caller_ns is their namespace. caller_ns NULL:
 * no namespace preference and no visibility filter. */
struct zt_service *zt_store_service_by_vip(const struct zt_store *store, const char *network,
                                           const struct zt_ip *ip, const char *caller_ns);
struct zt_policy *zt_store_policy_by_key(const struct zt_store *store, const char *key);

/* ---- iteration: cb gets borrowed objects; a nonzero return stops and is returned ----------
 * The store must not change during iteration. Order is unspecified. */
typedef int (*zt_store_workload_cb)(struct zt_workload *w, void *arg);
typedef int (*zt_store_service_cb)(struct zt_service *svc, void *arg);
typedef int (*zt_store_policy_cb)(struct zt_policy *p, void *arg);
int zt_store_foreach_workload(const struct zt_store *store, zt_store_workload_cb cb, void *arg);
int zt_store_foreach_service(const struct zt_store *store, zt_store_service_cb cb, void *arg);
int zt_store_foreach_policy(const struct zt_store *store, zt_store_policy_cb cb, void *arg);
/* The policies that apply to workload w (spec §6), each once: every GLOBAL policy and every
 * NAMESPACE policy of w's namespace, in the order received, then the policy named by each key
 * in w->authorization_policies (unknown keys are logged and skipped); in two passes, first
 * the DENY and dry-run policies, then the enforced ALLOW ones, so a decision can stop at the
 * first ALLOW that matches. A workload held by the store finds its named policies with one
 * pointer lookup (their resolved list is shared by workloads with the same namespace and
 * list); another one by key. */
int zt_store_foreach_policy_for(const struct zt_store *store, const struct zt_workload *w,
                                zt_store_policy_cb cb, void *arg);
/* As zt_store_foreach_policy_for, for a connection to port: a policy none of whose rules can
 * hold on port (zt_policy_port_mask) is left out, most often without reading it, and
 * *skipped_allow tells whether an enforced ALLOW policy was among those left out (its
 * presence still decides an unmatched connection). Dry-run policies are always visited. */
int zt_store_foreach_policy_on_port(const struct zt_store *store, const struct zt_workload *w,
                                    uint16_t port, bool *skipped_allow, zt_store_policy_cb cb,
                                    void *arg);

/* ---- watchers ------------------------------------------------------------------------------ */
enum zt_store_event_kind {
	ZT_STORE_WORKLOAD_ADDED,   /* new_workload set */
	ZT_STORE_WORKLOAD_CHANGED, /* old_workload and new_workload set (same uid) */
	ZT_STORE_WORKLOAD_REMOVED, /* old_workload set */
	ZT_STORE_POLICY_CHANGED,   /* added (old NULL), updated, or removed (new NULL) */
};
struct zt_store_event {
	enum zt_store_event_kind kind;
	const char *key; /* workload uid or policy "ns/name" */
	struct zt_workload *old_workload, *new_workload;
	struct zt_policy *old_policy, *new_policy;
};
/* Called after the store has changed, with borrowed objects (take a reference to keep one).
 * A watcher must not apply or remove resources (those return ZT_E_STATE); it may call
 * lookups and zt_store_unwatch. */
typedef void (*zt_store_watch_cb)(struct zt_store *store, const struct zt_store_event *ev,
                                  void *arg);
/* Adds a watcher; watchers are called in the order added. Aborts on OOM. */
void zt_store_watch(struct zt_store *store, zt_store_watch_cb cb, void *arg);
/* Removes the first watcher with this cb and arg. Returns 0 or ZT_E_NOTFOUND. */
int zt_store_unwatch(struct zt_store *store, zt_store_watch_cb cb, void *arg);

/* ---- counters for /config_dump ------------------------------------------------------------ */
struct zt_store_counters {
	size_t workloads, services, policies;
	size_t endpoints;        /* endpoint entries across all known services */
	size_t staged_endpoints; /* workload entries naming a service not received yet */
	uint64_t applied;        /* resources accepted (adds and updates) */
	uint64_t rejected;       /* resources refused */
	uint64_t removed;        /* resources removed */
};
void zt_store_get_counters(const struct zt_store *store, struct zt_store_counters *out);

#endif
