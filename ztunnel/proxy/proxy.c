/* Workload proxy: the listener set's lifecycle. Owns the HBONE pool and the two halves
 * (inbound.c, outbound.c), which share only proxy/shared.h with this file. */
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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
}

static int pool_socket(int family, void *arg)
{
	struct zt_proxy *p = arg;
	return p->o.socket_cb(family, SOCK_STREAM, p->o.socket_arg);
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
		snprintf(err, errlen, "HBONE pool: %s", zt_strerror(rc));
		goto fail;
	}
	if ((rc = zt_inbound_start(p, err, errlen)) < 0 ||
	    (rc = zt_outbound_start(p, err, errlen)) < 0)
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
	zt_outbound_stop(p);
	zt_inbound_stop(p);
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
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "namespace", p->ns, "name",
	                 p->name, "serviceAccount", p->sa, "uid", p->uid, "transparent",
	                 p->transparent, "outbound", zt_outbound_dump(p), "inbound",
	                 zt_inbound_dump(p), "pool", zt_pool_dump(p->pool));
}
