/* Workload proxy: the shared half. Owns the HBONE pool and the two halves; everything here is
 * per-socket plumbing or lookups, no connection state. */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/resolver.h"
#include "dns/server.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "state/service.h"
#include "state/workload.h"

ZT_LOG_MODULE("proxy");

static int pool_socket(int family, void *arg)
{
	struct zt_proxy *p = arg;
	return p->o.socket_cb(family, SOCK_STREAM, p->o.socket_arg);
}

static int raw_socket(struct zt_proxy *p, int family)
{
	int fd = p->o.socket_cb ? p->o.socket_cb(family, SOCK_STREAM, p->o.socket_arg)
	                        : socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return fd < 0 && errno ? -errno : fd;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

static int set_mark(struct zt_proxy *p, int fd)
{
	const struct zt_config *cfg = p->ctx->cfg;
	if (!cfg->packet_mark_set)
		return 0;
	return setsockopt(fd, SOL_SOCKET, SO_MARK, &cfg->packet_mark, sizeof(cfg->packet_mark)) < 0
	               ? -errno
	               : 0;
}

static void set_tcp_opts(struct zt_proxy *p, int fd)
{
	const struct zt_config *cfg = p->ctx->cfg;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!cfg->keepalive_enabled)
		return;
	int idle = (int)(cfg->keepalive_time_ms / 1000),
	    intvl = (int)(cfg->keepalive_interval_ms / 1000), cnt = (int)cfg->keepalive_retries;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

void zt_proxy_accepted(struct zt_proxy *p, int fd)
{
	set_tcp_opts(p, fd);
}

int zt_proxy_listen(struct zt_proxy *p, uint16_t port, char *err, size_t errlen)
{
	const struct zt_config *cfg = p->ctx->cfg;
	const char *ip = p->o.bind_ip ? p->o.bind_ip : cfg->ipv6_enabled ? "::" : "0.0.0.0";
	struct zt_sockaddr a;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, zero = 0, rc;

	if (zt_ip_parse(&a.ip, ip, strlen(ip)) < 0) {
		snprintf(err, errlen, "listener address %s: not an IP", ip);
		return ZT_E_PARSE;
	}
	a.port = port;
	sl = zt_addr_to_sockaddr(&a, &ss);
	if ((fd = raw_socket(p, ss.ss_family)) < 0) {
		snprintf(err, errlen, "listener on port %u: socket: %s", port, strerror(-fd));
		return fd;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cfg->inpod_port_reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if ((rc = set_mark(p, fd)) < 0) {
		snprintf(err, errlen, "listener on port %u: SO_MARK %u: %s (needs CAP_NET_ADMIN)",
		         port, cfg->packet_mark, strerror(-rc));
		close(fd);
		return rc;
	}
	if (cfg->enable_orig_src != ZT_ORIG_SRC_OFF) {
		int ok = setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) == 0;
		if (ss.ss_family == AF_INET6)
			ok &= setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) == 0;
		if (!ok && cfg->enable_orig_src == ZT_ORIG_SRC_ON) {
			rc = -errno;
			snprintf(err, errlen, "listener on port %u: IP_TRANSPARENT: %s", port,
			         strerror(errno));
			close(fd);
			return rc;
		}
		p->transparent = ok;
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		snprintf(err, errlen, "listener on %s port %u: %s", ip, port, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

int zt_proxy_socket(struct zt_proxy *p, int family, const struct zt_ip *src)
{
	int fd = raw_socket(p, family), one = 1, rc;

	if (fd < 0)
		return fd;
	if ((rc = set_mark(p, fd)) < 0) {
		close(fd);
		return rc;
	}
	set_tcp_opts(p, fd);
	if (src && p->transparent) {
		struct zt_sockaddr a = {.ip = *src, .port = 0};
		struct sockaddr_storage ss;
		socklen_t sl = zt_addr_to_sockaddr(&a, &ss);
		setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
		setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one));
		if (family == AF_INET6)
			setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
		if (ss.ss_family == family && bind(fd, (struct sockaddr *)&ss, sl) < 0)
			zt_debug("cannot bind the client source: %s", strerror(errno));
	}
	return fd;
}

int zt_proxy_connect(int fd, const struct zt_sockaddr *dst)
{
	struct sockaddr_storage ss;
	socklen_t sl = zt_addr_to_sockaddr(dst, &ss);

	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
		return -errno;
	return 0;
}

int zt_proxy_original_dst(int fd, struct zt_sockaddr *out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(struct sockaddr_in);

	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &sl) == 0)
		return zt_addr_from_sockaddr(out, (struct sockaddr *)&ss, sl);
	sl = sizeof(struct sockaddr_in6);
	if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &sl) == 0)
		return zt_addr_from_sockaddr(out, (struct sockaddr *)&ss, sl);
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	return zt_addr_from_sockaddr(out, (struct sockaddr *)&ss, sl);
}

/* ---- the workload ----------------------------------------------------------------------- */

struct find {
	struct zt_proxy *p;
	struct zt_workload *found;
};

static int find_cb(struct zt_workload *w, void *arg)
{
	struct find *f = arg;
	const char *node = f->p->ctx->cfg->node_name;

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

/* ---- lifecycle -------------------------------------------------------------------------- */

static struct zt_workload *dns_client(void *arg)
{
	return zt_proxy_workload(arg);
}

static int dns_start(struct zt_proxy *p, char *err, size_t errlen)
{
	const struct zt_config *cfg = p->ctx->cfg;
	struct zt_dns_server_opts o = {
	        .loop = p->ctx->loop,
	        .cfg = cfg,
	        .store = p->ctx->store,
	        .metrics = p->ctx->metrics,
	        .socket_cb = p->o.socket_cb,
	        .socket_arg = p->o.socket_arg,
	        .client_cb = dns_client,
	        .client_arg = p,
	        .search_from_resolv = cfg->proxy_mode == ZT_PROXY_DEDICATED,
	};

	struct zt_dns_resolv rc;
	struct zt_dns_upstream_opts uo = {.resolv = &rc};
	char why[256];

	/* The system resolvers, from ztunnel's own namespace. */
	if (zt_dns_resolv_load(NULL, &rc, why, sizeof(why)) < 0)
		zt_debug("hostname workloads: %s", why);
	p->resolver = zt_dns_resolver_new(p->ctx->loop, &uo, cfg->ipv6_enabled);
	if (!cfg->dns_enabled)
		return 0;
	return zt_dns_server_new(&p->dns, &o, err, errlen);
}

int zt_proxy_new(struct zt_proxy **out, struct zt_proxy_ctx *ctx, const char *ns, const char *name,
                 const char *sa, const char *uid, const struct zt_proxy_opts *o, char *err,
                 size_t errlen)
{
	const struct zt_config *cfg = ctx->cfg;
	struct zt_proxy *p = calloc(1, sizeof(*p));
	struct zt_pool_opts po;
	int rc;

	if (!p)
		abort();
	*out = NULL;
	p->ctx = ctx;
	if (o)
		p->o = *o;
	if (!p->o.outbound_port)
		p->o.outbound_port = ZT_PORT_OUTBOUND;
	if (!p->o.inbound_port)
		p->o.inbound_port = ZT_PORT_INBOUND;
	if (!p->o.hbone_port)
		p->o.hbone_port = ZT_PORT_HBONE;
	snprintf(p->ns, sizeof(p->ns), "%s", ns);
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->sa, sizeof(p->sa), "%s", sa);
	snprintf(p->uid, sizeof(p->uid), "%s", uid ? uid : "");

	zt_pool_opts_default(&po);
	zt_h2_settings_default(&po.h2, false);
	po.h2.stream_window = (uint32_t)cfg->h2_stream_window;
	po.h2.conn_window = (uint32_t)cfg->h2_conn_window;
	po.h2.max_frame = (uint32_t)cfg->h2_frame_size;
	po.max_streams = (uint32_t)cfg->pool_max_streams;
	po.idle_ms = cfg->pool_unused_release_ms;
	po.mark_set = cfg->packet_mark_set;
	po.mark = cfg->packet_mark;
	po.keepalive = cfg->keepalive_enabled;
	po.keepalive_time_s = (uint32_t)(cfg->keepalive_time_ms / 1000);
	po.keepalive_interval_s = (uint32_t)(cfg->keepalive_interval_ms / 1000);
	po.keepalive_retries = (uint32_t)cfg->keepalive_retries;
	if (p->o.socket_cb) {
		po.socket_cb = pool_socket;
		po.socket_arg = p;
	}
	if ((rc = zt_pool_new(&p->pool, ctx->loop, &po)) < 0) {
		snprintf(err, errlen, "HBONE pool: %s", zt_strerror(rc));
		goto fail;
	}
	if ((rc = zt_inbound_start(p, err, errlen)) < 0 ||
	    (rc = zt_outbound_start(p, err, errlen)) < 0 || (rc = dns_start(p, err, errlen)) < 0)
		goto fail;
	zt_info("proxying %s/%s (service account %s)%s", ns, name, sa,
	        p->transparent ? ", transparent" : "");
	*out = p;
	return 0;
fail:
	zt_proxy_free(p);
	return rc;
}

void zt_proxy_free(struct zt_proxy *p)
{
	if (!p)
		return;
	zt_dns_server_free(p->dns);
	zt_outbound_stop(p);
	zt_dns_resolver_free(p->resolver);
	zt_inbound_stop(p);
	zt_pool_free(p->pool);
	free(p);
}

json_t *zt_proxy_dump(const struct zt_proxy *p)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:o}", "namespace", p->ns,
	                 "name", p->name, "serviceAccount", p->sa, "uid", p->uid, "transparent",
	                 p->transparent, "outbound", zt_outbound_dump(p), "inbound",
	                 zt_inbound_dump(p), "pool", zt_pool_dump(p->pool), "dns",
	                 p->dns ? zt_dns_server_dump(p->dns) : json_null());
}
