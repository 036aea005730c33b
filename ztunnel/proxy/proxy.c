/* Workload proxy: the listener set's lifecycle. Owns the HBONE pool and the two halves
 * (inbound.c, outbound.c), which share only proxy/shared.h with this file. */
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/resolver.h"
#include "dns/server.h"
#include "proxy/inbound.h"
#include "proxy/outbound.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("proxy");

void zt_proxy_settings_from_config(struct zt_proxy_settings *s, const struct zt_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->node_name = cfg->node_name;
	s->trust_domain = cfg->trust_domain;
	s->ipv6 = cfg->ipv6_enabled;
	s->port_reuse = cfg->inpod_port_reuse;
	s->orig_src = cfg->enable_orig_src == ZT_ORIG_SRC_ON    ? ZT_PROXY_ORIG_SRC_ON
	              : cfg->enable_orig_src == ZT_ORIG_SRC_OFF ? ZT_PROXY_ORIG_SRC_OFF
	                                                        : ZT_PROXY_ORIG_SRC_AUTO;
	zt_sockopt_default(&s->sock);
	s->sock.mark_set = cfg->packet_mark_set;
	s->sock.mark = cfg->packet_mark;
	s->sock.keepalive = cfg->keepalive_enabled;
	s->sock.keepalive_time_s = (uint32_t)(cfg->keepalive_time_ms / 1000);
	s->sock.keepalive_interval_s = (uint32_t)(cfg->keepalive_interval_ms / 1000);
	s->sock.keepalive_retries = (uint32_t)cfg->keepalive_retries;
	s->h2_stream_window = (uint32_t)cfg->h2_stream_window;
	s->h2_conn_window = (uint32_t)cfg->h2_conn_window;
	s->h2_max_frame = (uint32_t)cfg->h2_frame_size;
	s->pool_max_streams = (uint32_t)cfg->pool_max_streams;
	s->pool_idle_ms = cfg->pool_unused_release_ms;
	s->dns_enabled = cfg->dns_enabled;
	s->dns_addrs = cfg->dns_addrs;
	s->n_dns_addrs = cfg->n_dns_addrs;
	s->cluster_domain = cfg->cluster_domain;
	s->preferred_ns = cfg->prefered_service_namespace;
	s->dns_search_from_resolv = cfg->proxy_mode == ZT_PROXY_DEDICATED;
}

static int pool_socket(int family, void *arg)
{
	struct zt_proxy *p = arg;
	return p->o.socket_cb(family, SOCK_STREAM, p->o.socket_arg);
}

/* ---- DNS (spec §13, §7.1) ---------------------------------------------------------------- */

static struct zt_workload *dns_client(void *arg)
{
	return zt_proxy_workload(arg);
}

/* The hostname resolver (ztunnel's own resolvers, from its namespace) and, unless DNS capture
 * is off, the DNS proxy where the workload lives. */
static int dns_start(struct zt_proxy *p, char *err, size_t errlen)
{
	const struct zt_proxy_settings *set = &p->ctx->set;
	struct zt_dns_server_opts o = {
	        .loop = p->ctx->loop,
	        .store = p->ctx->store,
	        .metrics = p->ctx->metrics,
	        .socket_cb = p->o.socket_cb,
	        .socket_arg = p->o.socket_arg,
	        .client_cb = dns_client,
	        .client_arg = p,
	        .addrs = set->dns_addrs,
	        .n_addrs = set->n_dns_addrs,
	        .cluster_domain = set->cluster_domain,
	        .preferred_ns = set->preferred_ns,
	        .ipv6 = set->ipv6,
	        .port_reuse = set->port_reuse,
	        .mark_set = set->sock.mark_set,
	        .mark = set->sock.mark,
	        .search_from_resolv = set->dns_search_from_resolv,
	        .tcp_max_conn = zt_proxy_share(p, ZT_DNS_TCP_MAX_CONN),
	};
	struct zt_dns_resolv rc;
	struct zt_dns_upstream_opts uo = {.resolv = &rc};
	char why[256];

	if (zt_dns_resolv_load(NULL, &rc, why, sizeof(why)) < 0)
		zt_debug("hostname workloads: %s", why);
	p->resolver = zt_dns_resolver_new(p->ctx->loop, &uo, set->ipv6);
	if (!set->dns_enabled || set->n_dns_addrs == 0)
		return 0;
	return zt_dns_server_new(&p->dns, &o, err, errlen);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int zt_proxy_new(struct zt_proxy **out, struct zt_proxy_ctx *ctx, const char *ns, const char *name,
                 const char *sa, const char *uid, const struct zt_proxy_opts *o, char *err,
                 size_t errlen)
{
	const struct zt_proxy_settings *set = &ctx->set;
	struct zt_proxy *p = xcalloc(1, sizeof(*p));
	struct zt_pool_opts po;
	int rc;

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
	po.h2.stream_window = set->h2_stream_window;
	po.h2.conn_window = set->h2_conn_window;
	po.h2.max_frame = set->h2_max_frame;
	po.max_streams = set->pool_max_streams;
	po.idle_ms = set->pool_idle_ms;
	po.sock = set->sock;
	if (p->o.socket_cb) {
		po.socket_cb = pool_socket;
		po.socket_arg = p;
	}
	if ((rc = zt_pool_new(&p->pool, ctx->loop, &po)) < 0) {
		zt_errf(rc, err, errlen, "HBONE pool: %s", zt_strerror(rc));
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
	zt_inbound_stop(p);
	zt_dns_resolver_free(p->resolver);
	zt_pool_free(p->pool);
	free(p);
}

void zt_proxy_drain(struct zt_proxy *p)
{
	if (!p)
		return;
	zt_outbound_drain(p);
	zt_inbound_drain(p);
}

size_t zt_proxy_open(const struct zt_proxy *p)
{
	return zt_outbound_open(p) + zt_inbound_open(p);
}

json_t *zt_proxy_dump(const struct zt_proxy *p)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:o}", "namespace", p->ns,
	                 "name", p->name, "serviceAccount", p->sa, "uid", p->uid, "transparent",
	                 p->transparent, "outbound", zt_outbound_dump(p), "inbound",
	                 zt_inbound_dump(p), "pool", zt_pool_dump(p->pool), "dns",
	                 p->dns ? zt_dns_server_dump(p->dns) : json_null());
}
