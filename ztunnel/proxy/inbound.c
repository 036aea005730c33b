/* Inbound half of a workload proxy: the HBONE server (accept, the workload's certificate,
 * mTLS, HTTP/2, CONNECT checks, authorization, upstream connect, relay; spec §7.2) and the
 * plaintext capture (spec §7.3). Invariant: a proxied connection is one struct conn, on its
 * proxy's list from the moment it is known until its single close report (metrics and access
 * log); stopping the proxy detaches the ones whose relay still has to report, and those free
 * themselves when it does. */
#include "proxy/inbound.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/h2.h"
#include "protocol/sock.h"
#include "protocol/tls.h"
#include "hbone/close.h"
#include "hbone/hbone.h"
#include "hbone/relay.h"
#include "proxy/route.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "state/authz.h"
#include "state/service.h"
#include "state/workload.h"

ZT_LOG_MODULE("inbound");
ZT_LIVE_DEFINE(inbound_conn);


/* ---- state ------------------------------------------------------------------------------- */

enum hstate { H_QUIET, H_HELD, H_HANDSHAKE, H_SERVING };

/* One TCP connection to the HBONE port. */
struct hconn {
	struct zt_inbound *in; /* NULL once detached from a stopped proxy (serving only) */
	LIST_ENTRY(hconn) link;
	enum hstate state;
	int fd;                  /* H_QUIET, H_HELD: the accepted socket */
	struct zt_io io;         /* H_QUIET: until the peer's first bytes (no TLS state yet) */
	struct zt_sock sock;     /* H_HANDSHAKE */
	struct zt_timer timer;   /* certificate wait, then handshake deadline */
	struct zt_h2_conn *conn; /* H_SERVING */
	struct zt_sockaddr peer, local;
	struct zt_spiffe peer_id;
	bool pending; /* on in->pending: not authenticated yet (all but H_SERVING) */
	uint64_t resets_ms; /* start of the second resets counts in */
	unsigned resets;    /* streams reset by the client before their response, this second */
	TAILQ_ENTRY(hconn) pq;
};

enum cstate { C_NEW, C_WAIT, C_CONNECTING, C_RELAYING };

/* One proxied connection: an HBONE CONNECT stream or a plaintext TCP connection. */
struct conn {
	struct zt_inbound *in;    /* NULL once detached from a stopped proxy */
	struct zt_proxy_ctx *ctx; /* outlives the proxy: what a detached report uses */
	LIST_ENTRY(conn) link;
	enum cstate state;
	bool hbone;
	bool mtls;
	bool opened;             /* the context is known: reported as "connection complete" */
	bool aborted;            /* the relay was told to stop */
	enum zt_close abort_why; /* ... and why */
	struct zt_h2_stream *st; /* HBONE, until the relay takes it */
	int down_fd;             /* plaintext client, until the relay takes it */
	int up_fd;               /* upstream, until the relay takes it */
	struct zt_io up_io;
	struct zt_timer timer; /* workload wait, then connect deadline */
	struct zt_defer go;    /* the upstream connect, after the frames read with the request */
	/* DATA the client sent before the CONNECT response: kept (its window not reopened, so
	 * the stream window bounds it) and written upstream once connected. */
	struct zt_buf early;
	bool flushing; /* connected, writing early before the relay starts */
	struct zt_relay *relay;
	/* src: TCP peer; dst: the local end (pod IP:15008) or the original destination; up: where
	 * the bytes go. */
	struct zt_sockaddr src, dst, up;
	struct zt_spiffe peer_id;
	struct zt_hbone_inbound req;
	char authority[ZT_HBONE_AUTHORITY_STRLEN];
	struct zt_workload *local, *src_wl; /* references */
	struct zt_service *svc;             /* reference; telemetry only */
	struct zt_metric_series *series;
	uint64_t start_ms;
	char why[640];
	struct zt_defer reap;
};

struct zt_inbound {
	struct zt_proxy *p;
	int hbone_fd, plain_fd;
	struct zt_io hbone_io, plain_io;
	struct zt_tls_server *tls;      /* NULL until the first certificate */
	struct zt_tls_identity *served; /* reference to what tls serves */
	struct zt_certmgr_fetch *fetch; /* in flight for the held connections */
	struct zt_h2_settings h2;
	LIST_HEAD(, hconn) hconns;
	TAILQ_HEAD(, hconn) pending; /* oldest first */
	LIST_HEAD(, conn) conns;
	size_t n_hconns;  /* all of them */
	size_t n_pending; /* of which not authenticated yet */
	/* Warnings about peers' failures, at most one line a second with a count of the rest. */
	uint64_t warn_ms;
	size_t warn_dropped;
	uint64_t wait_ms;
	bool watching;
	bool draining; /* listeners closed; HBONE connections get GOAWAY (spec §14) */
	struct zt_inbound_stats st; /* counters only; the sizes are computed on demand */
};

static bool warn_ok(struct zt_inbound *in);

long zt_inbound_live(void)
{
	return zt_live_inbound_conn.count;
}

static struct zt_loop *loop_of(const struct zt_inbound *in)
{
	return in->p->ctx->loop;
}

static const char *addr_str(const struct zt_sockaddr *a, char *buf, size_t len)
{
	if (zt_addr_format(a, buf, len) < 0)
		snprintf(buf, len, "?");
	return buf;
}

/* Our listeners' ports, whatever they were configured to, besides the standard ones. */
static bool port_illegal(const struct zt_proxy *p, uint16_t port)
{
	return zt_hbone_port_illegal(port, 0) || port == p->o.outbound_port ||
	       port == p->o.inbound_port || port == p->o.hbone_port;
}

static const char *state_name(enum cstate s)
{
	switch (s) {
	case C_NEW:
		return "new";
	case C_WAIT:
		return "waiting-for-workload";
	case C_CONNECTING:
		return "connecting";
	case C_RELAYING:
		return "relaying";
	}
	return "?";
}

/* Every state change of a proxied connection goes through here. */
static void go_state(struct conn *c, enum cstate s)
{
	char a[ZT_ADDR_STRLEN];

	zt_trace("connection from %s: %s -> %s", addr_str(&c->src, a, sizeof(a)),
	         state_name(c->state), state_name(s));
	c->state = s;
}

/* ---- reporting --------------------------------------------------------------------------- */

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

static void fill_entry(const struct conn *c, struct zt_access_entry *e, char *sid, char *did)
{
	const struct zt_hbone_meta *bg = c->hbone && c->req.has_baggage ? &c->req.baggage : NULL;

	memset(e, 0, sizeof(*e));
	sid[0] = did[0] = '\0';
	if (c->mtls)
		zt_spiffe_format(&c->peer_id, sid, ZT_SPIFFE_STR_SIZE);
	if (c->local)
		zt_spiffe_format(c->local->identity, did, ZT_SPIFFE_STR_SIZE);
	e->src_addr = c->src;
	if (c->src_wl) {
		e->src_workload = c->src_wl->name;
		e->src_namespace = c->src_wl->ns;
		e->src_cluster = c->src_wl->cluster_id;
	} else if (bg) {
		e->src_workload = nonempty(bg->workload);
		e->src_namespace = nonempty(bg->ns);
		e->src_cluster = nonempty(bg->cluster);
	}
	if (!e->src_namespace && c->mtls)
		e->src_namespace = c->peer_id.ns;
	e->src_identity = sid;
	e->dst_addr = c->dst;
	e->dst_hbone_addr = c->hbone ? c->authority : NULL;
	e->dst_service = c->svc ? c->svc->hostname : NULL;
	if (c->local) {
		e->dst_workload = c->local->name;
		e->dst_namespace = c->local->ns;
		e->dst_cluster = c->local->cluster_id;
	}
	e->dst_identity = did;
	e->mtls = c->mtls;
	e->direction = ZT_DIR_INBOUND;
}

/* The one close report: metrics and "connection complete" once the context is known, else a
 * "connection failed" line. */
static void report(struct conn *c, enum zt_close why, const char *detail, uint64_t up,
                   uint64_t down, uint64_t duration_ms)
{
	struct zt_metrics *m = c->ctx->metrics;
	const char *error = detail ? detail : zt_close_reason(why);
	const char *flag = zt_close_failed(why) ? zt_close_flag(why) : NULL;
	char sid[ZT_SPIFFE_STR_SIZE], did[ZT_SPIFFE_STR_SIZE];
	struct zt_access_entry e;

	if (!c->opened) {
		zt_access_log_failed(&c->src, &c->dst, ZT_DIR_INBOUND, error ? error : "closed");
		return;
	}
	if (c->series) {
		struct zt_metric_series *s =
		        flag ? zt_metrics_series_with_flags(m, c->series, flag) : c->series;
		zt_metrics_conn_closed(s, up, down);
		if (flag)
			zt_metrics_conn_failed(s);
	}
	if (m)
		zt_metrics_socket_closed(m, ZT_REPORTER_DESTINATION);
	fill_entry(c, &e, sid, did);
	e.bytes_up = up;
	e.bytes_down = down;
	e.duration_ms = duration_ms;
	e.error = error;
	zt_access_log(&e);
}

static void conn_unlink(struct conn *c)
{
	struct zt_inbound *in = c->in;

	if (!in)
		return;
	LIST_REMOVE(c, link);
	c->in = NULL;
}

/* The memory of a closed connection goes after the callback stack that closed it unwound,
 * as the outbound half does it. */
static void on_reap(struct zt_defer *d, void *arg)
{
	struct conn *c = arg;

	(void)d;
	zt_workload_unref(c->local);
	zt_workload_unref(c->src_wl);
	zt_service_unref(c->svc);
	zt_live_dec(&zt_live_inbound_conn);
	free(c);
}

/* Reports c and closes it; its memory goes from a defer (on_reap). Whatever c still holds is
 * closed: a stream still ours is reset. */
static void conn_done(struct conn *c, enum zt_close why, const char *detail, uint64_t up,
                      uint64_t down)
{
	report(c, why, detail, up, down, zt_loop_now(c->ctx->loop) - c->start_ms);
	conn_unlink(c);
	zt_timer_stop(&c->timer);
	zt_defer_stop(&c->go);
	zt_io_stop(&c->up_io);
	zt_buf_clear(&c->early);
	if (c->up_fd >= 0)
		close(c->up_fd);
	if (c->down_fd >= 0)
		close(c->down_fd);
	if (c->st) {
		zt_h2_stream_set_cbs(c->st, NULL, NULL);
		zt_h2_stream_reset(c->st, NGHTTP2_CANCEL);
	}
	c->st = NULL;
	c->up_fd = c->down_fd = -1;
	zt_defer_start(c->ctx->loop, &c->reap, on_reap, c);
}

/* Refuses c before relaying: an HBONE stream gets a header-only response with status, a
 * plaintext connection is closed. error is copied for the report. */
static void fail(struct conn *c, int status, enum zt_close close, const char *error)
{
	char why[sizeof(c->why)];

	snprintf(why, sizeof(why), "%s", error ? error : zt_close_reason(close));
	if (c->in) {
		c->in->st.rejected++;
		if (status == 401)
			c->in->st.denied++;
	}
	if (c->st) {
		struct zt_h2_stream *st = c->st;
		c->st = NULL;
		zt_h2_stream_set_cbs(st, NULL, NULL);
		zt_h2_stream_respond(st, status, NULL, 0, true);
	}
	zt_debug("inbound connection refused (%d): %s", status, why);
	conn_done(c, close, why, 0, 0);
}

static struct conn *conn_new(struct zt_inbound *in, bool hbone, const struct zt_sockaddr *src,
                             const struct zt_sockaddr *dst)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->in = in;
	c->ctx = in->p->ctx;
	c->hbone = hbone;
	c->down_fd = c->up_fd = -1;
	c->src = *src;
	c->dst = *dst;
	c->start_ms = zt_loop_now(loop_of(in));
	LIST_INSERT_HEAD(&in->conns, c, link);
	zt_live_inc(&zt_live_inbound_conn);
	return c;
}

/* ---- telemetry context ------------------------------------------------------------------- */

/* Whether the endpoint ws of svc maps some service port to port. */
static bool serves_port(const struct zt_service *svc, const struct zt_workload_service *ws,
                        uint16_t port)
{
	for (size_t i = 0; i < svc->n_ports; i++)
		if (zt_service_target_port(svc, ws, svc->ports[i].service_port, NULL) == port)
			return true;
	return false;
}

/* The service to report (spec §7.4): the one a host name authority or the `forwarded` host=
 * names among the local workload's services, else the first whose port maps to the target. */
static struct zt_service *pick_service(const struct conn *c)
{
	const struct zt_store *store = c->ctx->store;
	const struct zt_workload *w = c->local;
	const char *host = NULL;

	if (c->hbone)
		host = c->req.target.is_host ? c->req.target.host : nonempty(c->req.forwarded_host);
	for (size_t i = 0; host && i < w->n_services; i++) {
		const char *slash = strchr(w->services[i].key, '/');
		if (slash && strcasecmp(slash + 1, host) == 0)
			return zt_store_service_by_key(store, w->services[i].key);
	}
	for (size_t i = 0; i < w->n_services; i++) {
		struct zt_service *svc = zt_store_service_by_key(store, w->services[i].key);
		if (svc && serves_port(svc, &w->services[i], c->up.port))
			return svc;
		zt_service_unref(svc);
	}
	return NULL;
}

/* Source labels from baggage when the source workload is not known by IP (spec §8.1). */
static void baggage_labels(struct zt_metric_labels *l, const struct zt_hbone_meta *m)
{
	l->source_workload = nonempty(m->workload);
	l->source_canonical_service = nonempty(m->service);
	l->source_canonical_revision = nonempty(m->version);
	l->source_workload_namespace = nonempty(m->ns);
	l->source_app = nonempty(m->service);
	l->source_version = nonempty(m->version);
	l->source_cluster = nonempty(m->cluster);
	l->source_region = nonempty(m->region);
	l->source_zone = nonempty(m->zone);
}

/* The context is known: source workload, service, labels; counts the connection opened. */
static void conn_open(struct conn *c)
{
	struct zt_metrics *m = c->ctx->metrics;
	const char *net = c->local->network;
	char sid[ZT_SPIFFE_STR_SIZE], did[ZT_SPIFFE_STR_SIZE];
	struct zt_access_entry e;
	struct zt_proxy_labels pl;

	/* A request relayed from another network (x-forwarded-network) comes from a gateway:
	 * its source IP says nothing about the workload (spec §2.4). */
	if (!(c->hbone && c->req.network[0] && strcmp(c->req.network, net) != 0))
		c->src_wl = zt_store_workload_by_ip(c->ctx->store, net, &c->src.ip);
	c->svc = pick_service(c);
	zt_proxy_labels_fill(&pl, ZT_REPORTER_DESTINATION, c->src_wl, c->mtls ? &c->peer_id : NULL,
	                     c->local, c->local->identity, c->svc, c->mtls);
	if (!c->src_wl && c->hbone && c->req.has_baggage)
		baggage_labels(&pl.l, &c->req.baggage);
	if (m) {
		c->series = zt_metrics_series(m, &pl.l);
		zt_metrics_conn_opened(c->series);
		zt_metrics_socket_opened(m, ZT_REPORTER_DESTINATION);
	}
	c->opened = true;
	fill_entry(c, &e, sid, did);
	zt_access_log_opened(&e);
}

/* ---- authorization ----------------------------------------------------------------------- */

static enum zt_authz_verdict authorize(const struct conn *c, const struct zt_workload *dst,
                                       char *why, size_t whylen)
{
	struct zt_authz_conn ac = {
	        .src_ip = c->src.ip,
	        .dst_ip = c->up.ip,
	        .dst_port = c->up.port,
	        .src_id = c->mtls ? &c->peer_id : NULL,
	        .dst = dst,
	};

	return zt_authz_check(c->ctx->store, &ac, why, whylen);
}

/* ---- relaying ---------------------------------------------------------------------------- */

static void on_relay_done(struct zt_relay *r, const struct zt_relay_result *res, void *arg)
{
	struct conn *c = arg;

	(void)r;
	c->relay = NULL;
	conn_done(c, c->aborted ? c->abort_why : res->error ? ZT_CLOSE_ERROR : ZT_CLOSE_OK,
	          res->error, res->bytes_up, res->bytes_down);
}

/* Upstream connected: 200 (HBONE, with the destination's baggage) and the relay, started in
 * the same callback so no DATA is missed (relay.h). */
static void start_relay(struct conn *c)
{
	struct zt_relay_end client = {.fd = c->down_fd, .st = NULL};
	struct zt_relay_end server = {.fd = c->up_fd, .st = NULL};
	int rc;

	if (c->hbone) {
		const struct zt_workload *w = c->local;
		struct zt_hbone_meta m = {.wl_type = (enum zt_hbone_wl_type)w->workload_type};
		char bag[ZT_HBONE_BAGGAGE_STRLEN];
		struct zt_h2_header h[1];
		size_t nh = 0;

		snprintf(m.cluster, sizeof(m.cluster), "%s", w->cluster_id);
		snprintf(m.ns, sizeof(m.ns), "%s", w->ns);
		snprintf(m.workload, sizeof(m.workload), "%s", w->workload_name);
		snprintf(m.service, sizeof(m.service), "%s", w->canonical_name);
		snprintf(m.version, sizeof(m.version), "%s", w->canonical_revision);
		snprintf(m.region, sizeof(m.region), "%s", w->locality.region);
		snprintf(m.zone, sizeof(m.zone), "%s", w->locality.zone);
		if (zt_hbone_baggage_format(&m, bag, sizeof(bag)) > 0)
			h[nh++] = ZT_H2_HDR("baggage", bag);
		if (zt_h2_stream_respond(c->st, 200, h, nh, false) < 0) {
			fail(c, 503, ZT_CLOSE_ERROR, "cannot answer the CONNECT request");
			return;
		}
		client = (struct zt_relay_end){.fd = -1, .st = c->st};
	}
	rc = zt_relay_start(&c->relay, loop_of(c->in), client, server, NULL, on_relay_done, c);
	if (rc < 0) {
		snprintf(c->why, sizeof(c->why), "cannot relay: %s", zt_strerror(rc));
		zt_warn("%s", c->why);
		conn_done(c, ZT_CLOSE_ERROR, c->why, 0, 0);
		return;
	}
	c->st = NULL;
	c->down_fd = c->up_fd = -1;
	go_state(c, C_RELAYING);
	c->in->st.relayed++;
}

static void flush_early(struct conn *c);
static void on_connect_timeout(struct zt_timer *t, void *arg);

static void on_connected(struct zt_io *io, unsigned events, void *arg)
{
	struct conn *c = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)io;
	(void)events;
	if (c->flushing) {
		flush_early(c);
		return;
	}
	if (getsockopt(c->up_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		char a[ZT_ADDR_STRLEN];
		snprintf(c->why, sizeof(c->why), "connect to %s failed: %s",
		         addr_str(&c->up, a, sizeof(a)), strerror(err));
		fail(c, 503, ZT_CLOSE_CONNECT, c->why);
		return;
	}
	zt_timer_stop(&c->timer);
	if (!zt_buf_len(&c->early)) {
		zt_io_stop(&c->up_io);
		start_relay(c);
		return;
	}
	/* Early bytes go first; the connect deadline covers writing them too. */
	c->flushing = true;
	zt_timer_start(loop_of(c->in), &c->timer, ZT_INBOUND_CONNECT_MS, on_connect_timeout, c);
	flush_early(c);
}

/* Writes the early bytes upstream, reopening the stream window for each one delivered; the
 * relay starts once none is left. */
static void flush_early(struct conn *c)
{
	while (zt_buf_len(&c->early)) {
		ssize_t n = send(c->up_fd, zt_buf_data(&c->early), zt_buf_len(&c->early),
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return; /* up_io (writable) calls again */
		if (n < 0) {
			char a[ZT_ADDR_STRLEN];
			snprintf(c->why, sizeof(c->why), "write to %s failed: %s",
			         addr_str(&c->up, a, sizeof(a)), strerror(errno));
			fail(c, 503, ZT_CLOSE_CONNECT, c->why);
			return;
		}
		zt_buf_consume(&c->early, (size_t)n);
		if (c->st)
			zt_h2_stream_consume(c->st, (size_t)n);
	}
	zt_buf_clear(&c->early);
	c->flushing = false;
	zt_io_stop(&c->up_io);
	zt_timer_stop(&c->timer);
	start_relay(c);
}

static void on_connect_timeout(struct zt_timer *t, void *arg)
{
	struct conn *c = arg;
	char a[ZT_ADDR_STRLEN];

	(void)t;
	snprintf(c->why, sizeof(c->why), "connect to %s timed out", addr_str(&c->up, a, sizeof(a)));
	fail(c, 503, ZT_CLOSE_CONNECT, c->why);
}

/* Connects to c->up from inside the workload's network, spoofing the client's address when
 * the listeners are transparent (spec §1.2, §7.2 step 6). */
static int start_connect(struct conn *c)
{
	struct zt_proxy *p = c->in->p;
	bool spoof = !zt_ip_equal(&c->src.ip, &c->up.ip);
	int fd, rc;

	fd = zt_proxy_socket(p, c->up.ip.family, spoof ? &c->src.ip : NULL);
	if (fd < 0)
		return fd;
	if ((rc = zt_sockopt_connect(fd, &c->up)) < 0 ||
	    (rc = zt_io_start(loop_of(c->in), &c->up_io, fd, ZT_IO_WRITE, on_connected, c)) < 0) {
		close(fd);
		return rc;
	}
	c->up_fd = fd;
	go_state(c, C_CONNECTING);
	zt_timer_start(loop_of(c->in), &c->timer, ZT_INBOUND_CONNECT_MS, on_connect_timeout, c);
	return 0;
}

/* ---- the steps of one connection --------------------------------------------------------- */

/* Spec §7.2 steps 3-4 for a CONNECT: destination check and upstream port. Fails c and returns
 * false when refused. */
static bool resolve_hbone(struct conn *c)
{
	const struct zt_hbone_authority *t = &c->req.target;
	const struct zt_store *store = c->ctx->store;
	struct zt_hbone_status s;
	unsigned flags = 0;
	bool owned = !t->is_host && zt_workload_has_ip(c->local, &t->addr.ip);
	uint16_t port;

	if (c->local->application_tunnel.present)
		flags |= ZT_HBONE_APP_TUNNEL;
	else if (!t->is_host && !zt_ip_equal(&t->addr.ip, &c->dst.ip) &&
	         zt_route_is_waypoint_for(store, c->local, &t->addr.ip))
		flags |= ZT_HBONE_WAYPOINT;
	if (zt_hbone_check_target(t, &c->dst.ip, flags, &s) != 200) {
		fail(c, s.code, ZT_CLOSE_ERROR, s.reason);
		return false;
	}
	if (zt_route_inbound_port(store, c->local, t, &port) < 0) {
		snprintf(c->why, sizeof(c->why), "no port of %s/%s for %s", c->local->ns,
		         c->local->name, c->authority);
		fail(c, 503, ZT_CLOSE_ERROR, c->why);
		return false;
	}
	if (port_illegal(c->in->p, port)) {
		fail(c, 503, ZT_CLOSE_SELF, NULL);
		return false;
	}
	/* The pod's own address, or the target a waypoint serves; a host name (or an address
	 * only an application tunnel accepts) goes to the address the client reached. */
	c->up.ip = owned || (flags & ZT_HBONE_WAYPOINT) ? t->addr.ip : c->dst.ip;
	c->up.port = port;
	return true;
}

static void on_wait_timeout(struct zt_timer *t, void *arg)
{
	struct conn *c = arg;

	(void)t;
	snprintf(c->why, sizeof(c->why), "workload %s/%s not found", c->in->p->ns, c->in->p->name);
	fail(c, 503, ZT_CLOSE_ERROR, c->why);
}

static void on_go(struct zt_defer *d, void *arg)
{
	struct conn *c = arg;
	int rc;

	(void)d;
	if ((rc = start_connect(c)) < 0) {
		snprintf(c->why, sizeof(c->why), "cannot connect: %s", zt_strerror(rc));
		fail(c, 503, ZT_CLOSE_CONNECT, c->why);
	}
}

/* Runs c from the local workload lookup to the upstream connect. Called when c is new and
 * again for each store change while it waits for the workload. */
static void proceed(struct conn *c)
{
	struct zt_inbound *in = c->in;
	char why[ZT_HBONE_REASON_MAX];

	c->local = zt_proxy_workload(in->p);
	if (!c->local) {
		if (c->state == C_NEW) {
			go_state(c, C_WAIT);
			zt_timer_start(loop_of(in), &c->timer, in->wait_ms, on_wait_timeout, c);
		}
		return;
	}
	zt_timer_stop(&c->timer);
	if (c->hbone && !resolve_hbone(c))
		return;
	conn_open(c);
	if (authorize(c, c->local, why, sizeof(why)) == ZT_AUTHZ_DENY) {
		char a[ZT_ADDR_STRLEN];
		zt_info("connection from %s denied: %s", addr_str(&c->src, a, sizeof(a)), why);
		snprintf(c->why, sizeof(c->why), "connection closed due to policy rejection: %s",
		         why);
		fail(c, 401, ZT_CLOSE_DENY, c->why);
		return;
	}
	/* After the rest of what was read with the request: a reset among those frames (rapid
	 * reset) then cancels the stream before any upstream connection is made. */
	zt_defer_start(loop_of(in), &c->go, on_go, c);
}

/* ---- HBONE streams ----------------------------------------------------------------------- */

/* Stream callbacks until the relay takes the stream over. */
static void pending_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct conn *c = arg;

	(void)st;
	/* HTTP/2 lets a client send before the response: keep the bytes (bounded by the stream
	 * window, which is not reopened until they are written upstream). */
	if (zt_buf_append(&c->early, p, len) < 0)
		abort();
	if (c->flushing)
		flush_early(c);
}

static void pending_end(struct zt_h2_stream *st, void *arg)
{
	struct conn *c = arg;

	c->st = NULL;
	zt_h2_stream_set_cbs(st, NULL, NULL);
	zt_h2_stream_reset(st, NGHTTP2_CANCEL);
	conn_done(c, ZT_CLOSE_ERROR, "stream ended by the client before the CONNECT response", 0, 0);
}

static void pending_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	struct conn *c = arg;
	struct zt_h2_conn *hc = zt_h2_stream_conn(st);
	struct hconn *h = hc ? zt_h2_conn_arg(hc) : NULL;

	(void)code;
	c->st = NULL;
	/* A client reset, not the connection going away: count it against the rapid-reset
	 * budget of its connection. */
	if (h && h->in && !zt_h2_conn_closing(hc)) {
		uint64_t now = zt_loop_now(loop_of(h->in));
		if (now - h->resets_ms >= 1000) {
			h->resets_ms = now;
			h->resets = 0;
		}
		if (++h->resets == ZT_INBOUND_MAX_EARLY_RESETS + 1) {
			char a[ZT_ADDR_STRLEN];
			if (warn_ok(h->in))
				zt_warn("HBONE connection from %s: more than %d streams reset before "
				        "their response in a second: GOAWAY ENHANCE_YOUR_CALM",
				        addr_str(&h->peer, a, sizeof(a)), ZT_INBOUND_MAX_EARLY_RESETS);
			zt_h2_conn_terminate(hc, NGHTTP2_ENHANCE_YOUR_CALM);
		}
	}
	conn_done(c, ZT_CLOSE_ERROR, "stream closed before the CONNECT response", 0, 0);
}

static const struct zt_h2_stream_cbs pending_cbs = {
        .on_data = pending_data,
        .on_end = pending_end,
        .on_close = pending_close,
};

static void on_request(struct zt_h2_conn *hc, struct zt_h2_stream *st, const struct zt_h2_header *h,
                       size_t n, bool end, void *arg)
{
	struct hconn *hx = arg;
	struct zt_inbound *in = hx->in;
	struct zt_hbone_status s;
	struct conn *c;

	(void)hc;
	if (!in) {
		zt_h2_stream_reset(st, NGHTTP2_REFUSED_STREAM);
		return;
	}
	in->st.streams++;
	c = conn_new(in, true, &hx->peer, &hx->local);
	c->st = st;
	c->mtls = true;
	c->peer_id = hx->peer_id;
	if (zt_hbone_parse_request(&c->req, h, n, &s) != 200) {
		fail(c, s.code, ZT_CLOSE_ERROR, s.reason);
		return;
	}
	zt_hbone_authority_format(&c->req.target, c->authority, sizeof(c->authority));
	if (end) {
		fail(c, 400, ZT_CLOSE_ERROR, "CONNECT request ended its stream");
		return;
	}
	zt_h2_stream_set_cbs(st, &pending_cbs, c);
	proceed(c);
}

/* ---- HBONE connections ------------------------------------------------------------------- */

static void pending_leave(struct hconn *h)
{
	if (!h->pending || !h->in)
		return;
	TAILQ_REMOVE(&h->in->pending, h, pq);
	h->in->n_pending--;
	h->pending = false;
}

static void hconn_unlink(struct hconn *h)
{
	struct zt_inbound *in = h->in;

	if (!in)
		return;
	pending_leave(h);
	LIST_REMOVE(h, link);
	in->n_hconns--;
	h->in = NULL;
}

/* Frees a connection that is not serving HTTP/2. */
static void hconn_free(struct hconn *h)
{
	hconn_unlink(h);
	zt_timer_stop(&h->timer);
	if (h->state == H_QUIET)
		zt_io_stop(&h->io);
	if ((h->state == H_HELD || h->state == H_QUIET) && h->fd >= 0)
		close(h->fd);
	else if (h->state == H_HANDSHAKE)
		zt_sock_close(&h->sock);
	free(h);
}

static void on_h2_close(struct zt_h2_conn *hc, const char *reason, void *arg)
{
	struct hconn *h = arg;

	(void)hc;
	zt_debug("HBONE connection closed: %s", reason);
	hconn_unlink(h);
	free(h);
}

static const struct zt_h2_conn_cbs h2_cbs = {.on_request = on_request, .on_close = on_h2_close};

/* Whether a warning caused by a peer may be logged now (one a second per proxy); the ones
 * held back are counted and announced with the next. */
static bool warn_ok(struct zt_inbound *in)
{
	uint64_t now = zt_loop_now(loop_of(in));

	if (in->warn_ms && now - in->warn_ms < 1000) {
		in->warn_dropped++;
		return false;
	}
	in->warn_ms = now;
	if (in->warn_dropped) {
		zt_warn("%zu similar HBONE connection warnings were not logged", in->warn_dropped);
		in->warn_dropped = 0;
	}
	return true;
}

static void tls_failed(struct hconn *h, const char *what, const char *detail)
{
	char a[ZT_ADDR_STRLEN];

	if (h->in)
		h->in->st.tls_failed++;
	if (!h->in || warn_ok(h->in))
		zt_warn("HBONE connection from %s: %s%s%s", addr_str(&h->peer, a, sizeof(a)), what,
		        detail && *detail ? ": " : "", detail ? detail : "");
	hconn_free(h);
}

static void on_handshake(struct zt_sock *s, int err, void *arg)
{
	struct hconn *h = arg;
	struct zt_inbound *in = h->in;
	const struct zt_spiffe *peer;

	zt_timer_stop(&h->timer);
	if (err < 0) {
		tls_failed(h, zt_strerror(err), zt_sock_error(s));
		return;
	}
	if (!(peer = zt_tls_conn_peer(s->tls))) {
		tls_failed(h, "no peer identity", NULL);
		return;
	}
	h->peer_id = *peer;
	if (in->n_hconns - in->n_pending >= zt_proxy_share(in->p, ZT_INBOUND_MAX_CONNS)) {
		tls_failed(h, "too many HBONE connections", NULL);
		return;
	}
	pending_leave(h);
	if (zt_h2_conn_new(&h->conn, loop_of(in), &h->sock, true, &in->h2, &h2_cbs, h) < 0) {
		/* zt_h2_conn_new closed the socket. */
		hconn_unlink(h);
		free(h);
		return;
	}
	h->state = H_SERVING;
	if (in->draining)
		zt_h2_conn_shutdown(h->conn);
}

static void on_handshake_timeout(struct zt_timer *t, void *arg)
{
	(void)t;
	tls_failed(arg, "TLS handshake timed out", NULL);
}

static void start_handshake(struct hconn *h)
{
	struct zt_inbound *in = h->in;
	struct zt_tls_conn *tc = NULL;

	if (zt_tls_conn_server_new(&tc, in->tls, h->fd) < 0 ||
	    zt_sock_start(&h->sock, loop_of(in), h->fd, tc, NULL, NULL) < 0) {
		zt_tls_conn_free(tc);
		tls_failed(h, "cannot start TLS", NULL);
		return;
	}
	h->fd = -1; /* the socket's now */
	h->state = H_HANDSHAKE;
	zt_timer_start(loop_of(in), &h->timer, ZT_INBOUND_HANDSHAKE_MS, on_handshake_timeout, h);
	zt_sock_handshake(&h->sock, on_handshake, h);
}

/* The peer's first bytes (its ClientHello): only now is the TLS state allocated, so a silent
 * connection costs no more than its struct. */
static void on_first_bytes(struct zt_io *io, unsigned events, void *arg)
{
	struct hconn *h = arg;

	(void)events;
	zt_io_stop(io);
	zt_timer_stop(&h->timer);
	start_handshake(h);
}

static void on_quiet_timeout(struct zt_timer *t, void *arg)
{
	(void)t;
	tls_failed(arg, "no TLS handshake started in time", NULL);
}

/* The identity served: the workload's as xDS has it, else the one its name implies. */
static void local_identity(struct zt_inbound *in, struct zt_spiffe *id)
{
	struct zt_workload *w = zt_proxy_workload(in->p);
	const char *td = in->p->ctx->set.trust_domain;

	if (w) {
		*id = *w->identity;
		zt_workload_unref(w);
		return;
	}
	if (zt_spiffe_set(id, td && *td ? td : ZT_SPIFFE_DEFAULT_TD, in->p->ns, in->p->sa) < 0)
		memset(id, 0, sizeof(*id));
}

/* Serves cert from now on (a rotated or changed identity affects new handshakes only). */
static void install(struct zt_inbound *in, struct zt_tls_identity *cert)
{
	int rc;

	if (cert == in->served)
		return;
	if (!in->tls) {
		if ((rc = zt_tls_server_new(&in->tls, cert, NULL)) < 0) {
			zt_error("cannot build the HBONE TLS server: %s", zt_strerror(rc));
			in->tls = NULL;
			return;
		}
	} else {
		zt_tls_server_set_identity(in->tls, cert);
	}
	zt_tls_identity_unref(in->served);
	in->served = zt_tls_identity_ref(cert);
}

static void on_hold_timeout(struct zt_timer *t, void *arg)
{
	(void)t;
	tls_failed(arg, "no certificate for the workload in time", NULL);
}

static void on_cert(void *arg, int err, struct zt_tls_identity *cert)
{
	struct zt_inbound *in = arg;

	in->fetch = NULL;
	if (err == 0)
		install(in, cert);
	else
		zt_warn("no certificate for %s/%s: %s", in->p->ns, in->p->name, zt_strerror(err));
	for (struct hconn *h = LIST_FIRST(&in->hconns), *next; h; h = next) {
		next = LIST_NEXT(h, link);
		if (h->state != H_HELD)
			continue;
		zt_timer_stop(&h->timer);
		if (err == 0 && in->tls)
			start_handshake(h);
		else
			tls_failed(h, "no certificate for the workload", zt_strerror(err));
	}
}

/* The TLS server with the workload's current certificate, or NULL while it is being fetched
 * (a fetch is started if none runs). */
static struct zt_tls_server *current_tls(struct zt_inbound *in)
{
	struct zt_certmgr *certs = in->p->ctx->certs;
	struct zt_tls_identity *cert;
	struct zt_spiffe id;
	int rc;

	local_identity(in, &id);
	if ((cert = zt_certmgr_get(certs, &id))) {
		install(in, cert);
		zt_tls_identity_unref(cert);
		return in->tls;
	}
	if (!in->fetch && (rc = zt_certmgr_fetch(certs, &id, on_cert, in, &in->fetch)) < 0) {
		zt_error("cannot fetch a certificate for %s/%s: %s", in->p->ns, in->p->name,
		         zt_strerror(rc));
		in->fetch = NULL;
	}
	return NULL;
}

static int accept_one(int lfd, struct zt_sockaddr *peer)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			zt_warn("accept: %s", strerror(errno));
		return -1;
	}
	if (zt_addr_from_sockaddr(peer, (struct sockaddr *)&ss, sl) < 0) {
		close(fd);
		return -2;
	}
	return fd;
}

static void on_hbone_accept(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_inbound *in = arg;

	(void)events;
	for (int burst = 0; burst < 64; burst++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct zt_sockaddr peer;
		struct hconn *h;
		int fd = accept_one(io->fd, &peer);

		if (fd == -1)
			return;
		if (fd < 0)
			continue;
		in->st.accepted_hbone++;
		if (in->n_hconns - in->n_pending >= zt_proxy_share(in->p, ZT_INBOUND_MAX_CONNS) ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
			if (warn_ok(in))
				zt_warn("refusing an HBONE connection: %zu open", in->n_hconns);
			close(fd);
			continue;
		}
		if (in->n_pending >= zt_proxy_share(in->p, ZT_INBOUND_MAX_PENDING)) {
			struct hconn *old = TAILQ_FIRST(&in->pending);
			in->st.tls_failed++;
			if (warn_ok(in))
				zt_warn("%zu HBONE connections without a completed handshake: "
				        "closing the oldest",
				        in->n_pending);
			hconn_free(old);
		}
		zt_proxy_accepted(in->p, fd);
		h = xcalloc(1, sizeof(*h));
		h->in = in;
		h->fd = fd;
		h->peer = peer;
		zt_addr_from_sockaddr(&h->local, (struct sockaddr *)&ss, sl);
		LIST_INSERT_HEAD(&in->hconns, h, link);
		in->n_hconns++;
		h->pending = true;
		TAILQ_INSERT_TAIL(&in->pending, h, pq);
		in->n_pending++;
		if (current_tls(in)) {
			h->state = H_QUIET;
			zt_io_start(loop_of(in), &h->io, fd, ZT_IO_READ, on_first_bytes, h);
			zt_timer_start(loop_of(in), &h->timer, ZT_INBOUND_HANDSHAKE_MS,
			               on_quiet_timeout, h);
		} else {
			h->state = H_HELD;
			zt_timer_start(loop_of(in), &h->timer, ZT_INBOUND_CERT_WAIT_MS,
			               on_hold_timeout, h);
		}
	}
}

/* ---- plaintext --------------------------------------------------------------------------- */

static void on_plain_accept(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_inbound *in = arg;

	(void)events;
	for (int burst = 0; burst < 64; burst++) {
		struct zt_sockaddr peer, dst;
		struct conn *c;
		int fd = accept_one(io->fd, &peer);

		if (fd == -1)
			return;
		if (fd < 0)
			continue;
		in->st.accepted_plain++;
		zt_proxy_accepted(in->p, fd);
		if (zt_sockopt_original_dst(fd, &dst) < 0) {
			close(fd);
			continue;
		}
		/* Spec §1.1: the original destination is one of our own ports. */
		if (port_illegal(in->p, dst.port)) {
			in->st.rejected++;
			zt_access_log_failed(&peer, &dst, ZT_DIR_INBOUND, zt_close_reason(ZT_CLOSE_SELF));
			close(fd);
			continue;
		}
		c = conn_new(in, false, &peer, &dst);
		c->down_fd = fd;
		c->up = dst;
		proceed(c);
	}
}

/* ---- store changes ----------------------------------------------------------------------- */

/* Spec §6: a connection the policies no longer allow is closed. */
static void recheck(struct conn *c, const struct zt_workload *now)
{
	char why[ZT_HBONE_REASON_MAX], a[ZT_ADDR_STRLEN];

	if (c->aborted || authorize(c, now ? now : c->local, why, sizeof(why)) == ZT_AUTHZ_ALLOW)
		return;
	zt_info("closing the connection from %s: %s", addr_str(&c->src, a, sizeof(a)), why);
	if (c->state == C_RELAYING) {
		c->aborted = true;
		c->abort_why = ZT_CLOSE_POLICY_CHANGE;
		c->in->st.policy_closed++;
		zt_relay_abort(c->relay, zt_close_reason(ZT_CLOSE_POLICY_CHANGE));
	} else {
		fail(c, 401, ZT_CLOSE_DENY, zt_close_reason(ZT_CLOSE_POLICY_CHANGE));
	}
}

static void on_store(struct zt_store *store, const struct zt_store_event *ev, void *arg)
{
	struct zt_inbound *in = arg;
	struct zt_workload *now;

	(void)store;
	if (ev->kind != ZT_STORE_POLICY_CHANGED &&
	    !zt_proxy_event_is_local(ev, in->p->uid, in->p->ns, in->p->name, in->p->sa))
		return;
	now = zt_proxy_workload(in->p);
	for (struct conn *c = LIST_FIRST(&in->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link);
		if (c->state == C_WAIT)
			proceed(c);
		else if (c->state == C_CONNECTING || c->state == C_RELAYING)
			recheck(c, now);
	}
	zt_workload_unref(now);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void stop_listener(struct zt_io *io, int *fd)
{
	if (*fd < 0)
		return;
	zt_io_stop(io);
	close(*fd);
	*fd = -1;
}

int zt_inbound_start(struct zt_proxy *p, char *err, size_t errlen)
{
	const struct zt_proxy_settings *set = &p->ctx->set;
	struct zt_inbound *in = xcalloc(1, sizeof(*in));
	int rc;

	in->p = p;
	in->hbone_fd = in->plain_fd = -1;
	TAILQ_INIT(&in->pending);
	in->wait_ms = ZT_INBOUND_WORKLOAD_WAIT_MS;
	zt_h2_settings_default(&in->h2, true);
	in->h2.stream_window = set->h2_stream_window;
	in->h2.conn_window = set->h2_conn_window;
	in->h2.max_frame = set->h2_max_frame;
	p->in = in;
	if ((rc = zt_proxy_listen(p, p->o.inbound_port, err, errlen)) < 0)
		goto fail;
	in->plain_fd = rc;
	if ((rc = zt_io_start(p->ctx->loop, &in->plain_io, in->plain_fd, ZT_IO_READ,
	                      on_plain_accept, in)) < 0) {
		zt_errf(rc, err, errlen, "inbound listener: %s", zt_strerror(rc));
		goto fail;
	}
	/* Without certificates there is no HBONE at all (proxy.h). */
	if (p->ctx->certs) {
		if ((rc = zt_proxy_listen(p, p->o.hbone_port, err, errlen)) < 0)
			goto fail;
		in->hbone_fd = rc;
		if ((rc = zt_io_start(p->ctx->loop, &in->hbone_io, in->hbone_fd, ZT_IO_READ,
		                      on_hbone_accept, in)) < 0) {
			zt_errf(rc, err, errlen, "HBONE listener: %s", zt_strerror(rc));
			goto fail;
		}
	}
	zt_proxy_watch(p->ctx, on_store, in);
	in->watching = true;
	return 0;
fail:
	zt_inbound_stop(p);
	return rc;
}

void zt_inbound_drain(struct zt_proxy *p)
{
	struct zt_inbound *in = p->in;

	if (!in || in->draining)
		return;
	in->draining = true;
	/* Connections the kernel already queued would be reset by the close: take them. */
	if (in->plain_fd >= 0)
		on_plain_accept(&in->plain_io, ZT_IO_READ, in);
	if (in->hbone_fd >= 0)
		on_hbone_accept(&in->hbone_io, ZT_IO_READ, in);
	stop_listener(&in->plain_io, &in->plain_fd);
	stop_listener(&in->hbone_io, &in->hbone_fd);
	/* Shutting one down may close it (no streams) from the loop, never from here. */
	struct hconn *h;
	LIST_FOREACH(h, &in->hconns, link)
		if (h->state == H_SERVING)
			zt_h2_conn_shutdown(h->conn);
}

size_t zt_inbound_open(const struct zt_proxy *p)
{
	const struct zt_inbound *in = p->in;
	size_t n = 0;

	if (!in)
		return 0;
	const struct conn *c;
	LIST_FOREACH(c, &in->conns, link)
		n++;
	return n;
}

void zt_inbound_stop(struct zt_proxy *p)
{
	struct zt_inbound *in = p->in;

	if (!in)
		return;
	if (in->watching)
		zt_proxy_unwatch(p->ctx, on_store, in);
	stop_listener(&in->plain_io, &in->plain_fd);
	stop_listener(&in->hbone_io, &in->hbone_fd);
	zt_certmgr_fetch_cancel(in->fetch);
	in->fetch = NULL;
	while (!LIST_EMPTY(&in->conns)) {
		struct conn *c = LIST_FIRST(&in->conns);
		if (c->state == C_RELAYING) {
			/* Reports from the loop, detached. */
			conn_unlink(c);
			c->aborted = true;
			c->abort_why = ZT_CLOSE_STOPPED;
			zt_relay_abort(c->relay, zt_close_reason(ZT_CLOSE_STOPPED));
		} else {
			conn_done(c, ZT_CLOSE_STOPPED, NULL, 0, 0);
		}
	}
	while (!LIST_EMPTY(&in->hconns)) {
		struct hconn *h = LIST_FIRST(&in->hconns);
		if (h->state == H_SERVING) {
			/* Its on_close comes from the loop and frees it. Handshakes are over on
			 * these, so the TLS server below is no longer used by them. */
			hconn_unlink(h);
			zt_h2_conn_close(h->conn, "workload proxy stopped");
		} else {
			hconn_free(h);
		}
	}
	zt_tls_server_free(in->tls);
	zt_tls_identity_unref(in->served);
	free(in);
	p->in = NULL;
}

int zt_inbound_get_stats(const struct zt_proxy *p, struct zt_inbound_stats *out)
{
	const struct zt_inbound *in = p->in;

	if (!in)
		return ZT_E_STATE;
	*out = in->st;
	out->hbone_conns = in->n_hconns;
	out->held = out->live = 0;
	const struct hconn *h;
	const struct conn *c;
	LIST_FOREACH(h, &in->hconns, link)
		out->held += h->state == H_HELD;
	LIST_FOREACH(c, &in->conns, link)
		out->live++;
	return 0;
}

void zt_inbound_set_workload_wait(struct zt_proxy *p, uint64_t ms)
{
	if (p->in)
		p->in->wait_ms = ms;
}

static json_t *conn_json(const struct conn *c, uint64_t now)
{
	char src[ZT_ADDR_STRLEN], dst[ZT_ADDR_STRLEN], id[ZT_SPIFFE_STR_SIZE];
	struct zt_relay_stats rs = {0};
	json_t *o;

	if (c->relay)
		zt_relay_stats(c->relay, &rs);
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "protocol", c->hbone ? "hbone" : "tcp",
	              "state", state_name(c->state), "src", addr_str(&c->src, src, sizeof(src)),
	              "dst", addr_str(&c->dst, dst, sizeof(dst)), "bytesUp",
	              (json_int_t)rs.bytes_up, "bytesDown", (json_int_t)rs.bytes_down, "ageMs",
	              (json_int_t)(now - c->start_ms));
	if (c->hbone)
		json_object_set_new(o, "authority", json_string(c->authority));
	if (c->mtls && zt_spiffe_format(&c->peer_id, id, sizeof(id)) > 0)
		json_object_set_new(o, "identity", json_string(id));
	return o;
}

json_t *zt_inbound_dump(const struct zt_proxy *p)
{
	const struct zt_inbound *in = p->in;
	struct zt_inbound_stats s;
	char id[ZT_SPIFFE_STR_SIZE];
	json_t *conns, *o;

	if (!in)
		return json_null();
	zt_inbound_get_stats(p, &s);
	conns = json_array();
	const struct conn *c;
	LIST_FOREACH(c, &in->conns, link)
		json_array_append_new(conns, conn_json(c, zt_loop_now(loop_of(in))));
	o = json_pack("{s:i, s:i, s:b, s:I, s:I, s:o}", "hbonePort", (int)p->o.hbone_port,
	              "inboundPort", (int)p->o.inbound_port, "hboneListening", in->hbone_fd >= 0,
	              "hboneConnections", (json_int_t)s.hbone_conns, "held", (json_int_t)s.held,
	              "connections", conns);
	json_object_set_new(o, "certificate",
	                    in->served && zt_spiffe_format(zt_tls_identity_spiffe(in->served), id,
	                                                   sizeof(id)) > 0
	                            ? json_string(id)
	                            : json_null());
	json_object_set_new(o, "counters",
	                    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "acceptedHbone",
	                              (json_int_t)s.accepted_hbone, "acceptedPlain",
	                              (json_int_t)s.accepted_plain, "tlsFailed",
	                              (json_int_t)s.tls_failed, "streams", (json_int_t)s.streams,
	                              "rejected", (json_int_t)s.rejected, "denied",
	                              (json_int_t)s.denied, "relayed", (json_int_t)s.relayed,
	                              "policyClosed", (json_int_t)s.policy_closed));
	return o;
}
