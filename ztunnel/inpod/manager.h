/* The workload proxy manager of in-pod mode (spec §5): one workload proxy per pod the node
 * agent added, every socket of it (listeners and outgoing) created inside the pod's network
 * namespace. Invariant: a known pod is either running (its proxy exists) or pending (its last
 * start failed; retried every retry_ms) and owns its netns fd until it is removed. Ready =
 * a snapshot was received on the current ZDS connection, no pod is pending, no fatal error. */
#ifndef ZT_INPOD_MANAGER_H
#define ZT_INPOD_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include "proxy/dataplane.h"

#define ZT_PODMGR_RETRY_MS 5000
#define ZT_PODMGR_UID_MAX  256 /* bytes of a pod uid, NUL included */

struct zt_podmgr;

/* Called on every change of zt_podmgr_ready(). */
typedef void (*zt_podmgr_ready_cb)(bool ready, void *arg);
/* Whether the pod uid stays (zt_podmgr_retain). */
typedef bool (*zt_podmgr_keep_cb)(const char *uid, void *arg);

struct zt_podmgr_opts {
	/* Listener address and ports for every pod (0: the standard ones); socket_cb and
	 * socket_arg are ignored: each pod gets its own. */
	struct zt_proxy_opts proxy;
	uint64_t retry_ms; /* 0: ZT_PODMGR_RETRY_MS */
	zt_podmgr_ready_cb on_ready;
	void *ready_arg;
};

/* What the node agent tells about a pod (strings borrowed for the call). */
struct zt_podmgr_pod {
	const char *uid, *name, *ns, *sa;
};

/* Creates a manager proxying through dp (borrowed; outlives the manager): one proxy group
 * per pod, so one proxy per worker thread, each making its sockets in the pod's namespace
 * from its own thread. Keeps an fd of the caller's network namespace (which the workers
 * share) to come back to after each socket made in a pod (setns is per thread). With the
 * main context's metrics, registers the workload_manager_* metrics (spec §8.1). Starts not
 * ready. Returns 0 or -errno. */
int zt_podmgr_new(struct zt_podmgr **out, struct zt_dataplane *dp, const struct zt_podmgr_opts *o);
/* Stops every proxy (closing its connections) and closes every netns fd. Never calls
 * on_ready. Accepts NULL. */
void zt_podmgr_free(struct zt_podmgr *m);

/* Checks that fd is a network namespace (NS_GET_NSTYPE, or the nsfs magic on kernels
 * without it, spec §1.2) and, when st is given, fills it from fstat (st_dev + st_ino name
 * the namespace). Returns 0, -EINVAL (another kind of fd or namespace) or -errno. */
int zt_podmgr_netns_check(int fd, struct stat *st);

/* Starts the proxy of pod in the network namespace netns_fd (ownership taken in every case).
 * A pod already running in the same namespace (same st_dev and st_ino) is left alone; in
 * another namespace it is stopped and started again there. A pending pod is replaced and
 * tried now. Returns 0 when started, 1 when already running there (netns_fd closed),
 * ZT_E_RANGE (a field too long or the uid empty; nothing changed), or the start error with
 * the reason in err: the pod then stays pending and is retried every retry_ms. */
int zt_podmgr_add(struct zt_podmgr *m, const struct zt_podmgr_pod *pod, int netns_fd, char *err,
                  size_t errlen);
/* Stops and forgets the pod uid (running or pending). Returns 0 or ZT_E_NOTFOUND. */
int zt_podmgr_del(struct zt_podmgr *m, const char *uid);
/* Stops and forgets every pod for which keep returns false (snapshot reconciliation).
 * Returns how many were removed. */
size_t zt_podmgr_retain(struct zt_podmgr *m, zt_podmgr_keep_cb keep, void *arg);

/* Graceful drain of every running pod proxy (zt_proxy_drain; spec §14): listeners closed,
 * connections left to end; pending pods are no longer retried. */
void zt_podmgr_drain(struct zt_podmgr *m);
/* Connections still open across every pod proxy (zt_proxy_open). */
size_t zt_podmgr_open(const struct zt_podmgr *m);

/* Readiness inputs from the ZDS client: whether the current connection's snapshot was
 * received, and a fatal error (the ZDS loop stopped; never ready again; reason copied). */
void zt_podmgr_set_snapshot(struct zt_podmgr *m, bool received);
void zt_podmgr_set_fatal(struct zt_podmgr *m, const char *reason);
bool zt_podmgr_ready(const struct zt_podmgr *m);

struct zt_podmgr_counts {
	size_t running, pending;
	uint64_t started, stopped; /* proxies started and stopped since creation */
};
void zt_podmgr_counts(const struct zt_podmgr *m, struct zt_podmgr_counts *out);

/* The running proxy group of uid (borrowed, valid until the pod changes) or NULL. */
struct zt_proxy_group *zt_podmgr_proxy(struct zt_podmgr *m, const char *uid);

/* /config_dump "workloadState" in the reference's shape (spec §17): an object keyed by pod
 * uid, each {"connections": {"inbound": [...], "outbound": [...]}, "info": {"name",
 * "namespace", "serviceAccount"}, "state": "Up"} for a running proxy, or {"info", "state":
 * "Pending"} (no "connections") for one whose start is being retried. A connection is
 * {"actualDst", "originalDst", "protocol" ("HBONE" or "TCP"), "src"}; only open ones. New
 * reference. */
json_t *zt_podmgr_dump(const struct zt_podmgr *m);
/* Our own detail per pod ("workloadProxies"): an object keyed by uid, each {uid, name,
 * namespace, serviceAccount, state ("running" or "pending"), attempts, lastError, proxy}.
 * New reference. */
json_t *zt_podmgr_dump_proxies(const struct zt_podmgr *m);

#endif
