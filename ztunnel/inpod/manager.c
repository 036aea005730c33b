/* Workload proxy manager (spec §5): pods by uid, each with its netns fd and its proxy. Every
 * socket of a pod's proxy comes from pod_socket(), which enters the pod's network namespace
 * on the calling thread and always returns to ztunnel's own before it returns (spec §1.2). */
#include "inpod/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("inpod");
ZT_LIVE_DEFINE(inpod_pod);

struct pod {
	struct zt_podmgr *m;
	char uid[ZT_PODMGR_UID_MAX];
	char name[sizeof(((struct zt_proxy *)0)->name)];
	char ns[sizeof(((struct zt_proxy *)0)->ns)];
	char sa[sizeof(((struct zt_proxy *)0)->sa)];
	int netns;
	dev_t dev;
	ino_t ino;
	struct zt_proxy_group *proxy; /* NULL: pending */
	unsigned attempts;
	char last_err[256];
};

struct zt_podmgr {
	struct zt_dataplane *dp;
	struct zt_proxy_ctx *ctx; /* the main thread's */
	struct zt_podmgr_opts o;
	int self_ns; /* ztunnel's own network namespace */
	struct zt_hmap pods;
	struct zt_timer retry;
	bool snapshot, reported_ready;
	char fatal[256]; /* "" unless the ZDS loop stopped */
	uint64_t started, stopped;
	struct zt_metric_child *m_active, *m_pending, *m_started, *m_stopped;
};

/* ---- sockets inside a pod --------------------------------------------------------------- */

static int pod_socket(int family, int type, void *arg)
{
	struct pod *p = arg;
	int fd, e;

	if (setns(p->netns, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	e = errno;
	if (setns(p->m->self_ns, CLONE_NEWNET) < 0) {
		/* Staying in a pod's namespace would put every later socket there. */
		zt_error("cannot return to ztunnel's network namespace: %s", strerror(errno));
		abort();
	}
	errno = e;
	return fd < 0 ? -e : fd;
}

int zt_podmgr_netns_check(int fd, struct stat *st)
{
	struct statfs fs;
	int type = ioctl(fd, NS_GET_NSTYPE);

	if (type < 0) {
		/* Kernels before 4.11 know no NS_GET_NSTYPE: any nsfs file then. */
		if (errno != ENOTTY)
			return errno == EBADF ? -EBADF : -EINVAL;
		if (fstatfs(fd, &fs) < 0)
			return -errno;
		if (fs.f_type != NSFS_MAGIC)
			return -EINVAL;
	} else if (type != CLONE_NEWNET) {
		return -EINVAL;
	}
	if (st && fstat(fd, st) < 0)
		return -errno;
	return 0;
}

/* ---- bookkeeping ------------------------------------------------------------------------ */

static void counts(const struct zt_podmgr *m, size_t *running, size_t *pending)
{
	size_t pos = 0;
	void *v;

	*running = *pending = 0;
	while (zt_hmap_next(&m->pods, &pos, NULL, &v)) {
		if (((struct pod *)v)->proxy)
			(*running)++;
		else
			(*pending)++;
	}
}

static void on_retry(struct zt_timer *t, void *arg);

/* After every change: metrics, the retry timer, readiness. */
static void refresh(struct zt_podmgr *m)
{
	size_t running, pending;
	bool ready;

	counts(m, &running, &pending);
	if (m->m_active) {
		zt_metric_set(m->m_active, (int64_t)running);
		zt_metric_set(m->m_pending, (int64_t)pending);
	}
	if (pending && !zt_timer_active(&m->retry))
		zt_timer_start(m->ctx->loop, &m->retry, m->o.retry_ms, on_retry, m);
	else if (!pending)
		zt_timer_stop(&m->retry);
	ready = zt_podmgr_ready(m);
	if (ready != m->reported_ready) {
		m->reported_ready = ready;
		zt_info("workload proxy manager %s", ready ? "ready" : "not ready");
		if (m->o.on_ready)
			m->o.on_ready(ready, m->o.ready_arg);
	}
}

static int start_pod(struct zt_podmgr *m, struct pod *p, char *err, size_t errlen)
{
	struct zt_proxy_opts o = m->o.proxy;
	int rc;

	o.socket_cb = pod_socket;
	o.socket_arg = p;
	p->attempts++;
	err[0] = '\0';
	rc = zt_proxy_group_new(&p->proxy, m->dp, p->ns, p->name, p->sa, NULL, &o, err, errlen);
	if (rc < 0) {
		if (!err[0])
			snprintf(err, errlen, "%s", zt_strerror(rc));
		snprintf(p->last_err, sizeof(p->last_err), "%s", err);
		zt_warn("pod %s (%s/%s): proxy start failed (attempt %u): %s", p->uid, p->ns,
		        p->name, p->attempts, err);
		return rc;
	}
	p->last_err[0] = '\0';
	m->started++;
	if (m->m_started)
		zt_metric_add(m->m_started, 1);
	zt_info("pod %s (%s/%s): proxy started", p->uid, p->ns, p->name);
	return 0;
}

static void free_pod(struct zt_podmgr *m, struct pod *p)
{
	if (p->proxy) {
		zt_proxy_group_free(p->proxy);
		m->stopped++;
		if (m->m_stopped)
			zt_metric_add(m->m_stopped, 1);
		zt_info("pod %s (%s/%s): proxy stopped", p->uid, p->ns, p->name);
	}
	close(p->netns);
	free(p);
	zt_live_dec(&zt_live_inpod_pod);
}

static void on_retry(struct zt_timer *t, void *arg)
{
	struct zt_podmgr *m = arg;
	size_t pos = 0;
	void *v;
	char err[256];

	(void)t;
	while (zt_hmap_next(&m->pods, &pos, NULL, &v))
		if (!((struct pod *)v)->proxy)
			start_pod(m, v, err, sizeof(err));
	refresh(m);
}

/* ---- public ----------------------------------------------------------------------------- */

static struct zt_metric_child *family(struct zt_metrics *mt, const char *name, const char *help,
                                      enum zt_metric_type type)
{
	struct zt_metric *f;

	if (zt_metrics_register(mt, &f, name, help, type, NULL, 0) < 0)
		return NULL;
	return zt_metric_child(f, NULL);
}

int zt_podmgr_new(struct zt_podmgr **out, struct zt_dataplane *dp, const struct zt_podmgr_opts *o)
{
	struct zt_podmgr *m = xcalloc(1, sizeof(*m));
	struct zt_proxy_ctx *ctx = zt_dataplane_ctx(dp);
	struct zt_metrics *mt = ctx->metrics;

	*out = NULL;
	m->dp = dp;
	m->ctx = ctx;
	if (o)
		m->o = *o;
	if (!m->o.retry_ms)
		m->o.retry_ms = ZT_PODMGR_RETRY_MS;
	m->self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (m->self_ns < 0) {
		int rc = -errno;
		free(m);
		return rc;
	}
	if (mt) {
		m->m_active = family(mt, "workload_manager_active_proxy_count",
		                     "Workload proxies running", ZT_METRIC_GAUGE);
		m->m_pending =
		        family(mt, "workload_manager_pending_proxy_count",
		               "Workload proxies waiting for a start retry", ZT_METRIC_GAUGE);
		m->m_started = family(mt, "workload_manager_proxies_started_total",
		                      "Workload proxies started", ZT_METRIC_COUNTER);
		m->m_stopped = family(mt, "workload_manager_proxies_stopped_total",
		                      "Workload proxies stopped", ZT_METRIC_COUNTER);
		if (!m->m_active || !m->m_pending || !m->m_started || !m->m_stopped)
			m->m_active = m->m_pending = m->m_started = m->m_stopped = NULL;
	}
	*out = m;
	return 0;
}

void zt_podmgr_free(struct zt_podmgr *m)
{
	size_t pos = 0;
	void *v;

	if (!m)
		return;
	zt_timer_stop(&m->retry);
	while (zt_hmap_next(&m->pods, &pos, NULL, &v))
		free_pod(m, v);
	zt_hmap_clear(&m->pods);
	close(m->self_ns);
	free(m);
}

void zt_podmgr_drain(struct zt_podmgr *m)
{
	size_t pos = 0;
	void *v;

	zt_timer_stop(&m->retry);
	while (zt_hmap_next(&m->pods, &pos, NULL, &v)) {
		struct pod *p = v;
		if (p->proxy)
			zt_proxy_group_drain(p->proxy);
	}
}

size_t zt_podmgr_open(const struct zt_podmgr *m)
{
	size_t pos = 0, n = 0;
	void *v;

	while (zt_hmap_next(&m->pods, &pos, NULL, &v)) {
		const struct pod *p = v;
		if (p->proxy)
			n += zt_proxy_group_open(p->proxy);
	}
	return n;
}

static bool fits(const char *s, size_t size)
{
	return s && strlen(s) < size;
}

int zt_podmgr_add(struct zt_podmgr *m, const struct zt_podmgr_pod *pod, int netns_fd, char *err,
                  size_t errlen)
{
	struct pod *p, *old;
	struct stat st;
	int rc;

	if (!fits(pod->uid, sizeof(p->uid)) || !*pod->uid || !fits(pod->name, sizeof(p->name)) ||
	    !fits(pod->ns, sizeof(p->ns)) || !fits(pod->sa, sizeof(p->sa))) {
		snprintf(err, errlen,
		         "pod uid empty or uid, name, namespace or service account too long");
		close(netns_fd);
		return ZT_E_RANGE;
	}
	if (fstat(netns_fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "netns fd: %s", strerror(errno));
		close(netns_fd);
		return rc;
	}
	old = zt_hmap_get(&m->pods, pod->uid);
	if (old && old->proxy && old->dev == st.st_dev && old->ino == st.st_ino) {
		zt_debug("pod %s: already running in this network namespace", pod->uid);
		close(netns_fd);
		return 1;
	}
	if (old) {
		zt_info("pod %s: %s, starting again", pod->uid,
		        old->proxy ? "new network namespace" : "added again while pending");
		zt_hmap_del(&m->pods, pod->uid);
		free_pod(m, old);
	}
	p = xcalloc(1, sizeof(*p));
	zt_live_inc(&zt_live_inpod_pod);
	p->m = m;
	snprintf(p->uid, sizeof(p->uid), "%s", pod->uid);
	snprintf(p->name, sizeof(p->name), "%s", pod->name);
	snprintf(p->ns, sizeof(p->ns), "%s", pod->ns);
	snprintf(p->sa, sizeof(p->sa), "%s", pod->sa);
	p->netns = netns_fd;
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	zt_hmap_put(&m->pods, p->uid, p);
	rc = start_pod(m, p, err, errlen);
	refresh(m);
	return rc;
}

int zt_podmgr_del(struct zt_podmgr *m, const char *uid)
{
	struct pod *p = zt_hmap_del(&m->pods, uid);

	if (!p)
		return ZT_E_NOTFOUND;
	free_pod(m, p);
	refresh(m);
	return 0;
}

size_t zt_podmgr_retain(struct zt_podmgr *m, zt_podmgr_keep_cb keep, void *arg)
{
	size_t pos = 0, n = 0, removed = 0;
	const char *uid;
	char **gone = NULL;

	/* Collect first: the table must not change while iterating. */
	gone = xcalloc(zt_hmap_count(&m->pods) + 1, sizeof(*gone));
	while (zt_hmap_next(&m->pods, &pos, &uid, NULL))
		if (!keep(uid, arg))
			gone[n++] = strdup(uid);
	for (size_t i = 0; i < n; i++) {
		if (!gone[i])
			abort();
		zt_info("pod %s: not in the node agent's snapshot, stopping", gone[i]);
		if (zt_podmgr_del(m, gone[i]) == 0)
			removed++;
		free(gone[i]);
	}
	free(gone);
	refresh(m);
	return removed;
}

void zt_podmgr_set_snapshot(struct zt_podmgr *m, bool received)
{
	m->snapshot = received;
	refresh(m);
}

void zt_podmgr_set_fatal(struct zt_podmgr *m, const char *reason)
{
	snprintf(m->fatal, sizeof(m->fatal), "%s", reason && *reason ? reason : "fatal error");
	refresh(m);
}

bool zt_podmgr_ready(const struct zt_podmgr *m)
{
	size_t running, pending;

	if (!m->snapshot || m->fatal[0])
		return false;
	counts(m, &running, &pending);
	return pending == 0;
}

void zt_podmgr_counts(const struct zt_podmgr *m, struct zt_podmgr_counts *out)
{
	counts(m, &out->running, &out->pending);
	out->started = m->started;
	out->stopped = m->stopped;
}

struct zt_proxy_group *zt_podmgr_proxy(struct zt_podmgr *m, const char *uid)
{
	struct pod *p = zt_hmap_get(&m->pods, uid);
	return p ? p->proxy : NULL;
}

json_t *zt_podmgr_dump_proxies(const struct zt_podmgr *m)
{
	json_t *o = json_object();
	size_t pos = 0;
	void *v;

	while (zt_hmap_next(&m->pods, &pos, NULL, &v)) {
		const struct pod *p = v;
		json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s?, s:o}", "uid", p->uid,
		                      "name", p->name, "namespace", p->ns, "serviceAccount", p->sa,
		                      "state", p->proxy ? "running" : "pending", "attempts",
		                      (json_int_t)p->attempts, "lastError",
		                      p->last_err[0] ? p->last_err : NULL, "proxy",
		                      p->proxy ? zt_proxy_group_dump(p->proxy) : json_null());
		json_object_set_new(o, p->uid, e);
	}
	return o;
}

/* The reference's connection entries from our proxy dump: outbound {src, dst (the original
 * destination), nextHop, route}; inbound {protocol, src, dst, authority}. */
static json_t *conns_of(json_t *half, bool inbound)
{
	json_t *out = json_array(), *c;
	size_t i;

	json_array_foreach(json_object_get(half, "connections"), i, c)
	{
		json_t *src = json_object_get(c, "src"), *dst = json_object_get(c, "dst");
		const char *proto;
		json_t *actual, *orig;

		if (inbound) {
			bool hbone = !strcmp(
			        json_string_value(json_object_get(c, "protocol")) ?: "", "hbone");
			proto = hbone ? "HBONE" : "TCP";
			/* the pod IP and target port; no forwarded header is kept: null */
			actual = json_object_get(c, hbone ? "authority" : "dst");
			orig = json_null();
		} else {
			const char *route = json_string_value(json_object_get(c, "route"));
			proto = route && !strcmp(route, "hbone") ? "HBONE" : "TCP";
			actual = json_object_get(c, "nextHop");
			if (!actual)
				actual = dst;
			orig = json_incref(dst);
		}
		json_array_append_new(out, json_pack("{s:O?, s:o, s:s, s:O?}", "actualDst", actual,
		                                     "originalDst", orig ? orig : json_null(),
		                                     "protocol", proto, "src", src));
	}
	return out;
}

json_t *zt_podmgr_dump(const struct zt_podmgr *m)
{
	json_t *o = json_object();
	size_t pos = 0;
	void *v;

	while (zt_hmap_next(&m->pods, &pos, NULL, &v)) {
		const struct pod *p = v;
		json_t *e = json_pack("{s:{s:s, s:s, s:s}, s:s}", "info", "name", p->name,
		                      "namespace", p->ns, "serviceAccount", p->sa, "state",
		                      p->proxy ? "Up" : "Pending");
		if (p->proxy) {
			json_t *d = zt_proxy_group_dump(p->proxy);
			json_object_set_new(
			        e, "connections",
			        json_pack("{s:o, s:o}", "inbound",
			                  conns_of(json_object_get(d, "inbound"), true), "outbound",
			                  conns_of(json_object_get(d, "outbound"), false)));
			json_decref(d);
		}
		json_object_set_new(o, p->uid, e);
	}
	return o;
}
