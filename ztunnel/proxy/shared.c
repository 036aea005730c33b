/* Workload proxy: what the halves share. Everything here is per-socket plumbing or lookups
 * over the proxy's settings, no connection state. */
#include "proxy/shared.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "state/service.h"
#include "state/workload.h"

ZT_LOG_MODULE("proxy");

static int raw_socket(struct zt_proxy *p, int family)
{
	int fd = p->o.socket_cb ? p->o.socket_cb(family, SOCK_STREAM, p->o.socket_arg)
	                        : socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return fd < 0 && errno ? -errno : fd;
	zt_sockopt_nonblock(fd);
	return fd;
}

void zt_proxy_accepted(struct zt_proxy *p, int fd)
{
	zt_sockopt_tcp(&p->ctx->set.sock, fd, NULL);
}

int zt_proxy_listen(struct zt_proxy *p, uint16_t port, char *err, size_t errlen)
{
	const struct zt_proxy_settings *set = &p->ctx->set;
	const char *ip = p->o.bind_ip ? p->o.bind_ip : set->ipv6 ? "::" : "0.0.0.0";
	struct zt_sockaddr a;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, zero = 0, rc;

	if (zt_ip_parse(&a.ip, ip, strlen(ip)) < 0) {
		return zt_errf(ZT_E_PARSE, err, errlen, "listener address %s: not an IP", ip);
	}
	a.port = port;
	sl = zt_addr_to_sockaddr(&a, &ss);
	if ((fd = raw_socket(p, ss.ss_family)) < 0) {
		return zt_errf(fd, err, errlen, "listener on port %u: socket: %s", port, strerror(-fd));
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (set->port_reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if ((rc = zt_sockopt_mark(&set->sock, fd)) < 0) {
		close(fd);
		return zt_errf(rc, err, errlen, "listener on port %u: SO_MARK %u: %s (needs CAP_NET_ADMIN)",
		               port, set->sock.mark, strerror(-rc));
	}
	if (set->orig_src != ZT_PROXY_ORIG_SRC_OFF) {
		int ok = (rc = zt_sockopt_transparent(fd, ss.ss_family)) == 0;
		if (!ok && set->orig_src == ZT_PROXY_ORIG_SRC_ON) {
			close(fd);
			return zt_errf(rc, err, errlen, "listener on port %u: IP_TRANSPARENT: %s", port,
			               strerror(-rc));
		}
		p->transparent = ok;
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		close(fd);
		return zt_errf(rc, err, errlen, "listener on %s port %u: %s", ip, port, strerror(-rc));
	}
	return fd;
}

int zt_proxy_socket(struct zt_proxy *p, int family, const struct zt_ip *src)
{
	int fd = raw_socket(p, family), rc;

	if (fd < 0)
		return fd;
	if ((rc = zt_sockopt_mark(&p->ctx->set.sock, fd)) < 0) {
		close(fd);
		return rc;
	}
	zt_sockopt_tcp(&p->ctx->set.sock, fd, NULL);
	if (src && p->transparent && (rc = zt_sockopt_bind_spoofed(fd, family, src)) < 0)
		zt_debug("cannot bind the client source: %s", strerror(-rc));
	return fd;
}

/* ---- the workload ----------------------------------------------------------------------- */

struct find {
	struct zt_proxy *p;
	struct zt_workload *found;
};

static int find_cb(struct zt_workload *w, void *arg)
{
	struct find *f = arg;
	const char *node = f->p->ctx->set.node_name;

	if (strcmp(w->name, f->p->name) || strcmp(w->ns, f->p->ns) ||
	    strcmp(w->service_account, f->p->sa) || (node && *node && strcmp(w->node, node)))
		return 0;
	f->found = zt_workload_ref(w);
	return 1;
}

struct zt_workload *zt_proxy_workload(struct zt_proxy *p)
{
	struct find f = {p, NULL};

	if (p->uid[0]) {
		struct zt_workload *w = zt_store_workload_by_uid(p->ctx->store, p->uid);
		if (w)
			return w;
	}
	zt_store_foreach_workload(p->ctx->store, find_cb, &f);
	if (f.found && !p->uid[0])
		snprintf(p->uid, sizeof(p->uid), "%s", f.found->uid);
	return f.found;
}

size_t zt_proxy_share(const struct zt_proxy *p, size_t bound)
{
	size_t n = p->ctx->set.loops > 1 ? p->ctx->set.loops : 1;

	return bound / n > 0 ? bound / n : 1;
}

/* ---- store events ------------------------------------------------------------------------ */

struct watcher {
	zt_store_watch_cb cb;
	void *arg;
	bool dead;
};

struct zt_proxy_watchers {
	struct watcher *w;
	size_t n, cap;
	unsigned emitting;
};

struct zt_proxy_watchers *zt_proxy_watchers_new(void)
{
	return xcalloc(1, sizeof(struct zt_proxy_watchers));
}

void zt_proxy_watchers_free(struct zt_proxy_watchers *ws)
{
	if (!ws)
		return;
	free(ws->w);
	free(ws);
}

static void reap(struct zt_proxy_watchers *ws)
{
	size_t j = 0;

	for (size_t i = 0; i < ws->n; i++)
		if (!ws->w[i].dead)
			ws->w[j++] = ws->w[i];
	ws->n = j;
}

bool zt_proxy_event_is_local(const struct zt_store_event *ev, const char *uid, const char *ns,
                             const char *name, const char *sa)
{
	const struct zt_workload *w = ev->new_workload ? ev->new_workload : ev->old_workload;

	if (uid[0] && ev->key && strcmp(ev->key, uid) == 0)
		return true;
	return w && strcmp(w->name, name) == 0 && strcmp(w->ns, ns) == 0 &&
	       strcmp(w->service_account, sa) == 0;
}

void zt_proxy_watchers_emit(struct zt_proxy_watchers *ws, struct zt_store *store,
                            const struct zt_store_event *ev)
{
	size_t n = ws->n; /* watchers added meanwhile wait for the next event */

	ws->emitting++;
	for (size_t i = 0; i < n; i++)
		if (!ws->w[i].dead)
			ws->w[i].cb(store, ev, ws->w[i].arg);
	if (--ws->emitting == 0)
		reap(ws);
}

void zt_proxy_watch(struct zt_proxy_ctx *ctx, zt_store_watch_cb cb, void *arg)
{
	struct zt_proxy_watchers *ws = ctx->watchers;

	if (!ws) {
		zt_store_watch(ctx->store, cb, arg);
		return;
	}
	if (ws->n == ws->cap) {
		ws->cap = ws->cap ? ws->cap * 2 : 8;
		ws->w = xrealloc(ws->w, ws->cap * sizeof(*ws->w));
	}
	ws->w[ws->n++] = (struct watcher){.cb = cb, .arg = arg};
}

void zt_proxy_unwatch(struct zt_proxy_ctx *ctx, zt_store_watch_cb cb, void *arg)
{
	struct zt_proxy_watchers *ws = ctx->watchers;

	if (!ws) {
		zt_store_unwatch(ctx->store, cb, arg);
		return;
	}
	for (size_t i = 0; i < ws->n; i++) {
		if (!ws->w[i].dead && ws->w[i].cb == cb && ws->w[i].arg == arg) {
			ws->w[i].dead = true;
			if (!ws->emitting)
				reap(ws);
			return;
		}
	}
}

/* ---- telemetry -------------------------------------------------------------------------- */

static const char *or_null(const char *s)
{
	return s && *s ? s : NULL;
}

void zt_proxy_labels_fill(struct zt_proxy_labels *out, enum zt_reporter reporter,
                          const struct zt_workload *src, const struct zt_spiffe *src_id,
                          const struct zt_workload *dst, const struct zt_spiffe *dst_id,
                          const struct zt_service *svc, bool mtls)
{
	struct zt_metric_labels *l = &out->l;

	memset(out, 0, sizeof(*out));
	l->reporter = reporter;
	if (src_id && zt_spiffe_format(src_id, out->src_principal, sizeof(out->src_principal)) > 0)
		l->source_principal = out->src_principal;
	if (dst_id && zt_spiffe_format(dst_id, out->dst_principal, sizeof(out->dst_principal)) > 0)
		l->destination_principal = out->dst_principal;
	if (src) {
		l->source_workload = or_null(src->workload_name);
		l->source_canonical_service = or_null(src->canonical_name);
		l->source_canonical_revision = or_null(src->canonical_revision);
		l->source_workload_namespace = or_null(src->ns);
		l->source_app = or_null(src->canonical_name);
		l->source_version = or_null(src->canonical_revision);
		l->source_cluster = or_null(src->cluster_id);
		l->source_region = or_null(src->locality.region);
		l->source_zone = or_null(src->locality.zone);
	}
	if (dst) {
		l->destination_workload = or_null(dst->workload_name);
		l->destination_canonical_service = or_null(dst->canonical_name);
		l->destination_canonical_revision = or_null(dst->canonical_revision);
		l->destination_workload_namespace = or_null(dst->ns);
		l->destination_app = or_null(dst->canonical_name);
		l->destination_version = or_null(dst->canonical_revision);
		l->destination_cluster = or_null(dst->cluster_id);
		l->destination_region = or_null(dst->locality.region);
		l->destination_zone = or_null(dst->locality.zone);
	}
	if (svc) {
		l->destination_service = or_null(svc->hostname);
		l->destination_service_name = or_null(svc->name);
		l->destination_service_namespace = or_null(svc->ns);
	}
	l->request_protocol = "tcp";
	l->response_flags = "-";
	l->connection_security_policy = mtls ? "mutual_tls" : "unknown";
}

