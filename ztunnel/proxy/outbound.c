/* Outbound half of a workload proxy (spec §7.1): accepts what the pod's 15001 capture sends,
 * waits for the source workload, routes (proxy/route.h), and connects upstream: plain TCP for
 * passthrough and tunnel-less workloads, an HBONE CONNECT stream from the workload's pool
 * otherwise; then a relay pumps the bytes. Invariant: every accepted connection ends exactly
 * once (conn_end), which writes its one access-log line and its metrics; its memory goes from
 * a defer, after the callback stack that ended it has unwound. */
#include "proxy/outbound.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/resolver.h"
#include "hbone/close.h"
#include "hbone/hbone.h"
#include "hbone/relay.h"
#include "proxy/route.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "state/service.h"
#include "state/workload.h"

ZT_LOG_MODULE("outbound");
ZT_LIVE_DEFINE(proxy_outbound_conn);

#define SOURCE_WAIT_MS     5000  /* spec §7.1 step 2 */
#define SOURCE_RETRY_MS    100   /* how often the store is asked again meanwhile */
#define CONNECT_TIMEOUT_MS 10000 /* spec §1.2 */
#define ACCEPT_BATCH       64    /* accepts per wake-up, so a flood cannot starve the loop */
#define ACCEPT_PAUSE_MS    100   /* listener rest after running out of descriptors */


enum cstate {
	ST_SOURCE,   /* waiting for the source workload in the store */
	ST_RESOLVE,  /* resolving a hostname destination (spec §7.1) */
	ST_CONNECT,  /* plain TCP connect to the next hop */
	ST_CERT,     /* waiting for the source identity's certificate */
	ST_POOL,     /* waiting for a CONNECT stream from the pool */
	ST_RESPONSE, /* CONNECT sent, waiting for the status */
	ST_RELAY,    /* bytes flowing */
	ST_CLOSED,
};

static const char *const state_names[] = {"source", "resolving", "connecting", "certificate",
                                          "pool",   "response",  "relaying",   "closed"};

struct conn {
	LIST_ENTRY(conn) link;
	struct zt_outbound *out; /* NULL once zt_outbound_stop let go of it */
	struct zt_proxy_ctx *ctx;
	enum cstate state;
	bool routed;  /* route holds a decision */
	bool opened;  /* counted as opened: ends with "connection complete" */
	bool relayed; /* a relay ran: any error after that is not a setup failure */
	bool reopened; /* the CONNECT stream was refused unprocessed once and opened again */
	int fd;       /* downstream, until the relay takes it */
	int up_fd;    /* plain upstream while connecting */
	struct zt_io up_io;
	struct zt_timer timer; /* source retry, then connect timeout */
	struct zt_defer reap;
	struct zt_sockaddr src, dst; /* downstream client, original destination */
	uint64_t start_ms;
	struct zt_workload *source;
	struct zt_route route;
	struct zt_tls_identity *cert;
	struct zt_certmgr_fetch *fetch;
	struct zt_pool_req *req;
	struct zt_dns_resolve_req *dns;
	struct zt_h2_stream *st;
	struct zt_relay *relay;
	struct zt_spiffe peer; /* what the HBONE server proved, when has_peer */
	bool has_peer;
	struct zt_metric_series *series;
	uint64_t bytes_up, bytes_down;
	char why[192]; /* formatted error text for conn_end */
};

struct zt_outbound {
	struct zt_proxy *p;
	int lfd;
	struct zt_io lio;
	struct zt_timer pause;
	LIST_HEAD(, conn) conns;
	size_t n;
	struct {
		uint64_t accepted, hbone, plain, passthrough, denied, failed;
	} count;
};

static const struct zt_h2_stream_cbs stream_cbs;

/* ---- lifecycle of one connection -------------------------------------------------------- */

static void go_state(struct conn *c, enum cstate s)
{
	char src[ZT_ADDR_STRLEN] = "", dst[ZT_ADDR_STRLEN] = "";

	if (zt_log_enabled(&zt_log_mod_, ZT_LOG_DEBUG)) {
		zt_addr_format(&c->src, src, sizeof(src));
		zt_addr_format(&c->dst, dst, sizeof(dst));
		zt_debug("%s -> %s: %s -> %s", src, dst, state_names[c->state], state_names[s]);
	}
	c->state = s;
}

static const struct zt_workload *dst_workload(const struct conn *c)
{
	return c->route.final_workload ? c->route.final_workload : c->route.dst_workload;
}

/* The identity the destination proved, else the one it was expected to prove. */
static const struct zt_spiffe *dst_identity(const struct conn *c)
{
	if (c->has_peer)
		return &c->peer;
	return c->route.n_expected ? &c->route.expected[0] : NULL;
}

static struct zt_metric_series *series_for(const struct conn *c, const struct zt_spiffe *dst_id)
{
	struct zt_proxy_labels l;

	if (!c->ctx->metrics)
		return NULL;
	zt_proxy_labels_fill(&l, ZT_REPORTER_SOURCE, c->source, c->source->identity,
	                     dst_workload(c), dst_id, c->route.service,
	                     c->route.kind == ZT_ROUTE_HBONE);
	return zt_metrics_series(c->ctx->metrics, &l.l);
}

static void entry_fill(const struct conn *c, struct zt_access_entry *e, char *src_id, char *dst_id)
{
	const struct zt_workload *dw = dst_workload(c);
	const struct zt_spiffe *did = dst_identity(c);

	*e = (struct zt_access_entry){
	        .src_addr = c->src,
	        .src_workload = c->source->name,
	        .src_namespace = c->source->ns,
	        .src_cluster = c->source->cluster_id,
	        .dst_addr = c->route.next_hop,
	        .dst_hbone_addr = c->route.kind == ZT_ROUTE_HBONE ? c->route.authority : NULL,
	        .dst_service = c->route.service ? c->route.service->hostname : NULL,
	        .dst_workload = dw ? dw->name : NULL,
	        .dst_namespace = dw ? dw->ns : NULL,
	        .dst_cluster = dw ? dw->cluster_id : NULL,
	        .mtls = c->route.kind == ZT_ROUTE_HBONE,
	        .direction = ZT_DIR_OUTBOUND,
	        .bytes_up = c->bytes_up,
	        .bytes_down = c->bytes_down,
	        .duration_ms = zt_loop_now(c->ctx->loop) - c->start_ms,
	};
	if (zt_spiffe_format(c->source->identity, src_id, ZT_SPIFFE_STR_SIZE) > 0)
		e->src_identity = src_id;
	if (did && zt_spiffe_format(did, dst_id, ZT_SPIFFE_STR_SIZE) > 0)
		e->dst_identity = dst_id;
}

static void on_reap(struct zt_defer *d, void *arg)
{
	struct conn *c = arg;

	(void)d;
	zt_route_clear(&c->route);
	zt_workload_unref(c->source);
	zt_tls_identity_unref(c->cert);
	zt_live_dec(&zt_live_proxy_outbound_conn);
	free(c);
}

/* Lets go of everything still pending; the downstream socket is closed (FIN). */
static void release(struct conn *c)
{
	zt_timer_stop(&c->timer);
	zt_io_stop(&c->up_io);
	if (c->up_fd >= 0)
		close(c->up_fd);
	c->up_fd = -1;
	zt_certmgr_fetch_cancel(c->fetch);
	c->fetch = NULL;
	zt_dns_resolve_cancel(c->dns);
	c->dns = NULL;
	if (c->req)
		zt_pool_req_cancel(c->req);
	c->req = NULL;
	if (c->st) {
		zt_h2_stream_set_cbs(c->st, NULL, NULL);
		zt_h2_stream_reset(c->st, NGHTTP2_CANCEL);
		c->st = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void unlink_conn(struct conn *c)
{
	struct zt_outbound *out = c->out;

	if (!out)
		return;
	LIST_REMOVE(c, link);
	out->n--;
	c->out = NULL;
}

/* Ends c once, for why (hbone/close.h); detail (NULL: why's reason) is the access log's
 * error. A connection that was never opened logs "connection failed", the others "connection
 * complete" (spec §8.2). */
static void conn_end(struct conn *c, enum zt_close why, const char *detail)
{
	struct zt_metrics *m = c->ctx->metrics;
	const char *error = detail ? detail : zt_close_reason(why);
	const char *flags = zt_close_failed(why) ? zt_close_flag(why) : NULL;

	if (c->state == ST_CLOSED)
		return;
	go_state(c, ST_CLOSED);
	release(c);
	if (c->opened) {
		char src_id[ZT_SPIFFE_STR_SIZE], dst_id[ZT_SPIFFE_STR_SIZE];
		struct zt_access_entry e;
		struct zt_metric_series *s = c->series;

		if (s && c->has_peer && c->route.n_expected &&
		    !zt_spiffe_eq(&c->peer, &c->route.expected[0]))
			s = series_for(c, &c->peer);
		if (s && flags)
			s = zt_metrics_series_with_flags(m, s, flags);
		if (s) {
			zt_metrics_conn_closed(s, c->bytes_up, c->bytes_down);
			if (flags)
				zt_metrics_conn_failed(s);
		}
		entry_fill(c, &e, src_id, dst_id);
		e.error = error;
		zt_access_log(&e);
	} else {
		if (c->series && flags)
			zt_metrics_conn_failed(zt_metrics_series_with_flags(m, c->series, flags));
		zt_access_log_failed(&c->src, &c->dst, ZT_DIR_OUTBOUND, error);
	}
	if (c->out && error && !c->relayed && !(c->routed && c->route.kind == ZT_ROUTE_DENY))
		c->out->count.failed++;
	if (m)
		zt_metrics_socket_closed(m, ZT_REPORTER_SOURCE);
	unlink_conn(c);
	zt_defer_start(c->ctx->loop, &c->reap, on_reap, c);
}

static void on_relay_done(struct zt_relay *r, const struct zt_relay_result *res, void *arg)
{
	struct conn *c = arg;

	(void)r;
	c->relay = NULL;
	c->bytes_up = res->bytes_up;
	c->bytes_down = res->bytes_down;
	conn_end(c, res->error ? ZT_CLOSE_ERROR : ZT_CLOSE_OK, res->error);
}

/* Hands the downstream socket and server to a relay; both are the relay's on success. */
static void relay(struct conn *c, struct zt_relay_end server)
{
	struct zt_relay_end client = {.fd = c->fd, .st = NULL};
	int rc = zt_relay_start(&c->relay, c->ctx->loop, client, server, NULL, on_relay_done, c);

	if (rc < 0) {
		snprintf(c->why, sizeof(c->why), "relay: %s", zt_strerror(rc));
		conn_end(c, ZT_CLOSE_ERROR, c->why);
		return;
	}
	c->fd = -1;
	c->relayed = true;
	go_state(c, ST_RELAY);
}

/* ---- plain TCP (PASSTHROUGH, PLAIN) ----------------------------------------------------- */

static void on_connect_timeout(struct zt_timer *t, void *arg)
{
	struct conn *c = arg;

	(void)t;
	conn_end(c, ZT_CLOSE_CONNECT, "connect: connection timed out");
}

static void on_connected(struct zt_io *io, unsigned events, void *arg)
{
	struct conn *c = arg;
	int fd = c->up_fd, soerr = 0;
	socklen_t sl = sizeof(soerr);

	(void)io;
	(void)events;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr) {
		snprintf(c->why, sizeof(c->why), "connect: %s", strerror(soerr));
		conn_end(c, ZT_CLOSE_CONNECT, c->why);
		return;
	}
	zt_io_stop(&c->up_io);
	zt_timer_stop(&c->timer);
	c->up_fd = -1;
	relay(c, (struct zt_relay_end){.fd = fd, .st = NULL});
	if (c->state != ST_RELAY)
		close(fd); /* the relay did not take it */
}

static void tcp_connect(struct conn *c)
{
	const struct zt_sockaddr *to = &c->route.next_hop;
	int rc = zt_proxy_socket(c->out->p, to->ip.family, NULL);

	if (rc >= 0) {
		c->up_fd = rc;
		rc = zt_sockopt_connect(c->up_fd, to);
	}
	if (rc >= 0)
		rc = zt_io_start(c->ctx->loop, &c->up_io, c->up_fd, ZT_IO_WRITE, on_connected, c);
	if (rc < 0) {
		snprintf(c->why, sizeof(c->why), "connect: %s", zt_strerror(rc));
		conn_end(c, ZT_CLOSE_CONNECT, c->why);
		return;
	}
	zt_timer_start(c->ctx->loop, &c->timer, CONNECT_TIMEOUT_MS, on_connect_timeout, c);
	go_state(c, ST_CONNECT);
}

/* ---- HBONE ------------------------------------------------------------------------------ */

static void on_headers(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n, bool end,
                       void *arg)
{
	struct conn *c = arg;
	long status = 0;

	(void)end;
	for (size_t i = 0; i < n; i++)
		if (h[i].name_len == 7 && memcmp(h[i].name, ":status", 7) == 0 &&
		    h[i].value_len == 3 && h[i].value[0] >= '1' && h[i].value[0] <= '9')
			status = strtol(h[i].value, NULL, 10);
	if (status == 200) {
		c->st = NULL; /* the relay's from now on, or reset by relay() failing below */
		relay(c, (struct zt_relay_end){.fd = -1, .st = st});
		if (c->state != ST_RELAY) {
			zt_h2_stream_set_cbs(st, NULL, NULL);
			zt_h2_stream_reset(st, NGHTTP2_CANCEL);
		}
		return;
	}
	/* Spec §2.5: any other status fails the connection, without retry. */
	snprintf(c->why, sizeof(c->why), "http status: %ld", status);
	conn_end(c, ZT_CLOSE_CONNECT, c->why);
}

static void open_stream(struct conn *c);

static void on_stream_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	struct conn *c = arg;

	(void)st;
	c->st = NULL;
	/* REFUSED_STREAM before any response: the peer never processed the CONNECT (RFC 9113
	 * §8.7), e.g. it was above a draining peer's GOAWAY last-stream-id while that GOAWAY was
	 * in flight. Safe to open once more: the pool no longer hands out that connection. */
	if (code == NGHTTP2_REFUSED_STREAM && !c->reopened) {
		c->reopened = true;
		zt_debug("CONNECT stream refused unprocessed: opening it again");
		open_stream(c);
		return;
	}
	snprintf(c->why, sizeof(c->why), "stream closed before the response (%s)",
	         nghttp2_http2_strerror(code));
	conn_end(c, ZT_CLOSE_CONNECT, c->why);
}

static const struct zt_h2_stream_cbs stream_cbs = {.on_headers = on_headers,
                                                   .on_close = on_stream_close};

static void on_ready(struct zt_h2_stream *st, const struct zt_pool_result *r, void *arg)
{
	struct conn *c = arg;

	c->req = NULL;
	if (!st) {
		snprintf(c->why, sizeof(c->why), "%s",
		         *r->reason ? r->reason : zt_strerror(r->err));
		conn_end(c, r->flag != ZT_CLOSE_OK ? r->flag : ZT_CLOSE_CONNECT, c->why);
		return;
	}
	c->st = st;
	if (r->peer) {
		c->peer = *r->peer;
		c->has_peer = true;
	}
	go_state(c, ST_RESPONSE);
}

static void source_meta(struct zt_hbone_meta *m, const struct zt_workload *w)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->cluster, sizeof(m->cluster), "%s", w->cluster_id);
	snprintf(m->ns, sizeof(m->ns), "%s", w->ns);
	m->wl_type = (enum zt_hbone_wl_type)w->workload_type;
	snprintf(m->workload, sizeof(m->workload), "%s", w->workload_name);
	snprintf(m->service, sizeof(m->service), "%s", w->canonical_name);
	snprintf(m->version, sizeof(m->version), "%s", w->canonical_revision);
	snprintf(m->region, sizeof(m->region), "%s", w->locality.region);
	snprintf(m->zone, sizeof(m->zone), "%s", w->locality.zone);
}

static void open_stream(struct conn *c)
{
	struct zt_hbone_authority target;
	struct zt_hbone_meta meta;
	struct zt_hbone_req req;
	struct zt_hbone_connect in = {.target = &target, .client = &c->src, .source = &meta};
	struct zt_pool_key key = {.identity = c->cert,
	                          .dst_ids = c->route.expected,
	                          .n_dst_ids = c->route.n_expected,
	                          .dst = c->route.next_hop};
	int rc;

	zt_hbone_authority_from_addr(&target, &c->route.target);
	source_meta(&meta, c->source);
	if (c->route.service)
		in.service_host = c->route.service->hostname;
	rc = zt_hbone_req_build(&req, &in);
	if (rc < 0 && in.service_host) {
		/* A host name the header cannot carry only costs the server its service label. */
		in.service_host = NULL;
		rc = zt_hbone_req_build(&req, &in);
	}
	if (rc >= 0)
		rc = zt_pool_connect(c->out->p->pool, &key, req.h, req.n, &stream_cbs, c, on_ready,
		                     c, &c->req);
	if (rc < 0) {
		c->req = NULL;
		snprintf(c->why, sizeof(c->why), "CONNECT: %s", zt_strerror(rc));
		conn_end(c, ZT_CLOSE_CONNECT, c->why);
		return;
	}
	go_state(c, ST_POOL);
}

static void on_cert(void *arg, int err, struct zt_tls_identity *cert)
{
	struct conn *c = arg;

	c->fetch = NULL;
	if (err < 0) {
		snprintf(c->why, sizeof(c->why), "source certificate: %s", zt_strerror(err));
		conn_end(c, ZT_CLOSE_IDENTITY_ERROR, c->why);
		return;
	}
	c->cert = zt_tls_identity_ref(cert);
	open_stream(c);
}

static void hbone_connect(struct conn *c)
{
	struct zt_certmgr *m = c->ctx->certs;
	int rc;

	if (!m) {
		conn_end(c, ZT_CLOSE_IDENTITY_ERROR, "source certificate: no certificate provider");
		return;
	}
	c->cert = zt_certmgr_get(m, c->source->identity);
	if (c->cert) {
		open_stream(c);
		return;
	}
	go_state(c, ST_CERT);
	if ((rc = zt_certmgr_fetch(m, c->source->identity, on_cert, c, &c->fetch)) < 0) {
		c->fetch = NULL;
		snprintf(c->why, sizeof(c->why), "source certificate: %s", zt_strerror(rc));
		conn_end(c, ZT_CLOSE_IDENTITY_ERROR, c->why);
	}
}

/* ---- hostname destinations (spec §7.1) -------------------------------------------------- */

static void on_resolved(void *arg, int err, const struct zt_ip *ips, size_t n)
{
	struct conn *c = arg;
	const struct zt_ip *pick = NULL;
	size_t same = 0;

	c->dns = NULL;
	if (err < 0) {
		snprintf(c->why, sizeof(c->why), "DNS resolution of %s: %s", c->route.resolve_host,
		         zt_strerror(err));
		conn_end(c, ZT_CLOSE_CONNECT, c->why);
		return;
	}
	/* A random answer, of the original destination's family when there is one. */
	for (size_t i = 0; i < n; i++)
		same += ips[i].family == c->dst.ip.family;
	if (same) {
		size_t k = arc4random_uniform((uint32_t)same);
		for (size_t i = 0; !pick && i < n; i++)
			if (ips[i].family == c->dst.ip.family && k-- == 0)
				pick = &ips[i];
	} else {
		pick = &ips[arc4random_uniform((uint32_t)n)];
	}
	zt_route_set_resolved(&c->route, pick);
	if (c->route.kind == ZT_ROUTE_HBONE)
		hbone_connect(c);
	else
		tcp_connect(c);
}

static void resolve(struct conn *c)
{
	struct zt_proxy *p = c->out->p;
	int rc;

	zt_dns_count_on_demand(c->ctx->metrics, c->source, c->route.resolve_host);
	go_state(c, ST_RESOLVE);
	if (!p->resolver || (rc = zt_dns_resolve(p->resolver, c->route.resolve_host, on_resolved, c,
	                                         &c->dns)) < 0) {
		c->dns = NULL;
		snprintf(c->why, sizeof(c->why), "DNS resolution of %s: not possible",
		         c->route.resolve_host);
		conn_end(c, ZT_CLOSE_CONNECT, c->why);
	}
}

/* ---- accept, source, route -------------------------------------------------------------- */

static void route(struct conn *c)
{
	struct zt_proxy *p = c->out->p;
	uint16_t ports[] = {p->o.outbound_port, p->o.inbound_port, p->o.hbone_port};
	struct zt_route_in in = {.source = c->source,
	                         .dst = c->dst,
	                         .illegal_ports = ports,
	                         .n_illegal_ports = sizeof(ports) / sizeof(ports[0])};
	struct zt_access_entry e;
	char src_id[ZT_SPIFFE_STR_SIZE], dst_id[ZT_SPIFFE_STR_SIZE];
	int rc;

	if ((rc = zt_route_outbound(p->ctx->store, &in, &c->route)) < 0) {
		snprintf(c->why, sizeof(c->why), "routing: %s", zt_strerror(rc));
		conn_end(c, ZT_CLOSE_ERROR, c->why);
		return;
	}
	c->routed = true;
	c->series = series_for(c, dst_identity(c));
	switch (c->route.kind) {
	case ZT_ROUTE_DENY:
		c->out->count.denied++;
		conn_end(c, ZT_CLOSE_DENY, c->route.reason);
		return;
	case ZT_ROUTE_HBONE:
		c->out->count.hbone++;
		break;
	case ZT_ROUTE_PLAIN:
		c->out->count.plain++;
		break;
	case ZT_ROUTE_PASSTHROUGH:
		c->out->count.passthrough++;
		break;
	}
	c->opened = true;
	if (c->series)
		zt_metrics_conn_opened(c->series);
	entry_fill(c, &e, src_id, dst_id);
	zt_access_log_opened(&e);
	if (c->route.resolve_host)
		resolve(c);
	else if (c->route.kind == ZT_ROUTE_HBONE)
		hbone_connect(c);
	else
		tcp_connect(c);
}

static void on_source_timer(struct zt_timer *t, void *arg);

/* Spec §7.1 step 2: the proxied workload may reach the store after its first connection. */
static void try_source(struct conn *c)
{
	struct zt_loop *loop = c->ctx->loop;

	c->source = zt_proxy_workload(c->out->p);
	if (c->source) {
		zt_timer_stop(&c->timer);
		route(c);
		return;
	}
	if (zt_loop_now(loop) - c->start_ms >= SOURCE_WAIT_MS) {
		conn_end(c, ZT_CLOSE_NO_SOURCE, NULL);
		return;
	}
	zt_timer_start(loop, &c->timer, SOURCE_RETRY_MS, on_source_timer, c);
}

static void on_source_timer(struct zt_timer *t, void *arg)
{
	(void)t;
	try_source(arg);
}

static void accepted(struct zt_outbound *out, int fd, const struct sockaddr_storage *ss,
                     socklen_t sl)
{
	struct zt_proxy *p = out->p;
	struct zt_sockaddr src = {0}, dst;
	struct conn *c;
	int rc;

	out->count.accepted++;
	zt_addr_from_sockaddr(&src, (const struct sockaddr *)ss, sl);
	zt_proxy_accepted(p, fd);
	if ((rc = zt_sockopt_original_dst(fd, &dst)) < 0) {
		zt_access_log_failed(&src, NULL, ZT_DIR_OUTBOUND, "original destination unknown");
		out->count.failed++;
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	zt_live_inc(&zt_live_proxy_outbound_conn);
	c->out = out;
	c->ctx = p->ctx;
	c->fd = fd;
	c->up_fd = -1;
	c->src = src;
	c->dst = dst;
	c->start_ms = zt_loop_now(p->ctx->loop);
	LIST_INSERT_HEAD(&out->conns, c, link);
	out->n++;
	if (p->ctx->metrics)
		zt_metrics_socket_opened(p->ctx->metrics, ZT_REPORTER_SOURCE);
	try_source(c);
}

static void on_accept(struct zt_io *io, unsigned events, void *arg);

static void on_pause_end(struct zt_timer *t, void *arg)
{
	struct zt_outbound *out = arg;

	(void)t;
	if (zt_io_start(out->p->ctx->loop, &out->lio, out->lfd, ZT_IO_READ, on_accept, out) < 0)
		zt_timer_start(out->p->ctx->loop, &out->pause, ACCEPT_PAUSE_MS, on_pause_end, out);
}

static void on_accept(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_outbound *out = arg;

	(void)io;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH && out->lfd >= 0; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(out->lfd, (struct sockaddr *)&ss, &sl,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			accepted(out, fd, &ss, sl);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* The pending connection stays queued; a level-triggered watcher would
			 * spin on it, so rest the listener. */
			zt_warn("outbound accept: %s", strerror(errno));
			zt_io_stop(&out->lio);
			zt_timer_start(out->p->ctx->loop, &out->pause, ACCEPT_PAUSE_MS,
			               on_pause_end, out);
		}
		return;
	}
}

/* ---- the half --------------------------------------------------------------------------- */

int zt_outbound_start(struct zt_proxy *p, char *err, size_t errlen)
{
	struct zt_outbound *out = xcalloc(1, sizeof(*out));
	int rc;

	out->p = p;
	out->lfd = zt_proxy_listen(p, p->o.outbound_port, err, errlen);
	if (out->lfd < 0) {
		rc = out->lfd;
		free(out);
		return rc;
	}
	rc = zt_io_start(p->ctx->loop, &out->lio, out->lfd, ZT_IO_READ, on_accept, out);
	if (rc < 0) {
		zt_errf(rc, err, errlen, "outbound listener: %s", zt_strerror(rc));
		close(out->lfd);
		free(out);
		return rc;
	}
	p->out = out;
	return 0;
}

void zt_outbound_drain(struct zt_proxy *p)
{
	struct zt_outbound *out = p->out;

	if (!out || out->lfd < 0)
		return;
	/* Connections the kernel already queued on this listener would be reset by the close:
	 * take them (spec §15: during an upgrade the new instance gets the rest). */
	on_accept(&out->lio, ZT_IO_READ, out);
	zt_io_stop(&out->lio);
	zt_timer_stop(&out->pause);
	close(out->lfd);
	out->lfd = -1;
}

size_t zt_outbound_open(const struct zt_proxy *p)
{
	return p->out ? p->out->n : 0;
}

void zt_outbound_stop(struct zt_proxy *p)
{
	struct zt_outbound *out = p->out;

	if (!out)
		return;
	zt_outbound_drain(p);
	while (!LIST_EMPTY(&out->conns)) {
		struct conn *c = LIST_FIRST(&out->conns);

		unlink_conn(c);
		/* A relay reports from the loop: c lives on until then, without out. */
		if (c->relay)
			zt_relay_abort(c->relay, zt_close_reason(ZT_CLOSE_STOPPED));
		else
			conn_end(c, ZT_CLOSE_STOPPED, NULL);
	}
	free(out);
	p->out = NULL;
}

static json_t *addr_json(const struct zt_sockaddr *a)
{
	char buf[ZT_ADDR_STRLEN];

	return a->ip.family && zt_addr_format(a, buf, sizeof(buf)) > 0 ? json_string(buf)
	                                                               : json_null();
}

static json_t *conn_json(const struct conn *c)
{
	struct zt_relay_stats rs = {0};
	json_t *o;

	if (c->relay)
		zt_relay_stats(c->relay, &rs);
	o = json_pack("{s:o, s:o, s:s, s:I, s:I, s:I}", "src", addr_json(&c->src), "dst",
	              addr_json(&c->dst), "state", state_names[c->state], "bytesUp",
	              (json_int_t)rs.bytes_up, "bytesDown", (json_int_t)rs.bytes_down, "ageMs",
	              (json_int_t)(zt_loop_now(c->ctx->loop) - c->start_ms));
	if (c->routed) {
		json_object_set_new(o, "route", json_string(zt_route_kind_name(c->route.kind)));
		json_object_set_new(o, "nextHop", addr_json(&c->route.next_hop));
		if (c->route.kind == ZT_ROUTE_HBONE)
			json_object_set_new(o, "authority", json_string(c->route.authority));
	}
	return o;
}

/* {"port":N,"connections":[{"src","dst","state","bytesUp","bytesDown","ageMs"[,"route",
 *  "nextHop"[,"authority"]]}],"counters":{...}}, or null when the half is not running.
 * Counters: accepted (every accepted socket), hbone/plain/passthrough (routing decisions),
 * denied (DENY decisions), failed (connections that ended before bytes could flow for any
 * other reason: no original destination, no source workload, certificate, pool, connect or
 * CONNECT status failures). */
json_t *zt_outbound_dump(const struct zt_proxy *p)
{
	const struct zt_outbound *out = p->out;
	json_t *conns;

	if (!out)
		return json_null();
	conns = json_array();
	const struct conn *c;
	LIST_FOREACH(c, &out->conns, link)
		json_array_append_new(conns, conn_json(c));
	return json_pack("{s:i, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "port",
	                 (int)p->o.outbound_port, "connections", conns, "counters", "accepted",
	                 (json_int_t)out->count.accepted, "hbone", (json_int_t)out->count.hbone,
	                 "plain", (json_int_t)out->count.plain, "passthrough",
	                 (json_int_t)out->count.passthrough, "denied",
	                 (json_int_t)out->count.denied, "failed", (json_int_t)out->count.failed);
}
