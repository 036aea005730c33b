/* DNS proxy server: listeners, the per-query path (parse, client, local answer or forward,
 * reply) and the istio_dns_* metrics. A forwarded query is a struct fwd holding the parsed
 * query and where to reply (a UDP peer, or a TCP connection that stops reading until the
 * reply is written). TCP connections and forwards unlink from the server when they end, and
 * are freed through a defer, never inside their own callbacks. */
#include "dns/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/lookup.h"
#include "dns/message.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "state/workload.h"

ZT_LOG_MODULE("dns");
ZT_LIVE_DEFINE(dns_tcp_conn);
ZT_LIVE_DEFINE(dns_forward);

#define MAX_LISTENERS 2
#define UDP_BATCH     64

struct listener {
	struct zt_dns_server *s;
	struct zt_sockaddr addr;
	int ufd, tfd;
	struct zt_io uio, tio;
};

struct tcp_conn;

struct fwd {
	TAILQ_ENTRY(fwd) link;
	struct zt_dns_server *s;
	struct zt_dns_query q;
	struct zt_dns_upstream_req *req;
	struct listener *l; /* UDP: reply from this listener to peer */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct tcp_conn *tc; /* TCP: reply on this connection */
	uint64_t start_ms;
	struct zt_metric_child *m_up_fail, *m_up_dur;
};

struct tcp_conn {
	TAILQ_ENTRY(tcp_conn) link;
	struct zt_dns_server *s;
	int fd;
	struct zt_io io;
	struct zt_timer timer;
	struct zt_defer reap;
	uint8_t in[2 + ZT_DNS_MSG_MAX];
	size_t in_len;
	uint8_t *out;
	size_t out_len, out_off;
	struct fwd *busy; /* a forward answering this connection's current request */
	bool closing;
};

TAILQ_HEAD(fwd_list, fwd);
TAILQ_HEAD(tcp_list, tcp_conn);

struct zt_dns_server {
	struct zt_dns_server_opts o;
	struct listener ls[MAX_LISTENERS];
	size_t n_ls;
	struct zt_dns_resolv resolv;
	char cluster_domain[ZT_DNS_NAME_MAX + 1];
	const char *search[ZT_DNS_MAX_SEARCH];
	struct zt_dns_upstream *up;
	struct fwd_list fwds;
	struct tcp_list conns;
	size_t n_conns;
	struct zt_metric *m_req, *m_up_req, *m_up_fail, *m_up_dur;
	struct {
		uint64_t queries, local, forwarded, malformed, dropped, servfail;
	} count;
};

/* ---- metrics (spec §13.4) ---------------------------------------------------------------- */

static const char *const label_names[] = {"request_query_type", "request_protocol",
                                          "source_canonical_service", "source_canonical_revision"};
static const double dur_bounds[] = {0.0005, 0.001, 0.01, 0.1, 1, 5};

static struct zt_metric *family(struct zt_metrics *m, const char *name, const char *help,
                                bool histogram)
{
	struct zt_metric *f = zt_metrics_find(m, name);

	if (f)
		return f;
	if (histogram)
		zt_metrics_register_histogram(m, &f, name, help, label_names, 4, dur_bounds,
		                              sizeof(dur_bounds) / sizeof(dur_bounds[0]));
	else
		zt_metrics_register(m, &f, name, help, ZT_METRIC_COUNTER, label_names, 4);
	return f;
}

static struct zt_metric_child *child(struct zt_metric *f, const struct zt_dns_query *q, bool tcp,
                                     const struct zt_workload *w)
{
	const char *v[4] = {q && q->type_label[0] ? q->type_label : NULL, tcp ? "tcp" : "udp",
	                    w ? w->canonical_name : NULL, w ? w->canonical_revision : NULL};

	return f ? zt_metric_child(f, v) : NULL;
}

static void count(struct zt_metric *f, const struct zt_dns_query *q, bool tcp,
                  const struct zt_workload *w)
{
	struct zt_metric_child *c = child(f, q, tcp, w);

	if (c)
		zt_metric_add(c, 1);
}

/* ---- replies ----------------------------------------------------------------------------- */

static void tcp_reply(struct tcp_conn *c, const uint8_t *msg, size_t len);

static void udp_send(struct listener *l, const struct sockaddr_storage *peer, socklen_t plen,
                     const uint8_t *msg, size_t len)
{
	if (sendto(l->ufd, msg, len, MSG_DONTWAIT, (const struct sockaddr *)peer, plen) < 0)
		zt_debug("reply to a client: %s", strerror(errno));
}

/* Where a reply goes: one of these is set. */
struct dest {
	struct listener *l;
	const struct sockaddr_storage *peer;
	socklen_t peer_len;
	struct tcp_conn *tc;
};

static void send_reply(const struct dest *d, uint8_t *msg, size_t len)
{
	if (!msg)
		return;
	if (d->tc)
		tcp_reply(d->tc, msg, len);
	else
		udp_send(d->l, d->peer, d->peer_len, msg, len);
	free(msg);
}

static size_t reply_max(const struct dest *d, const struct zt_dns_query *q)
{
	return d->tc ? ZT_DNS_MSG_MAX : zt_dns_udp_limit(q);
}

static void reply_error(struct zt_dns_server *s, const struct dest *d, const uint8_t *raw,
                        size_t len, const struct zt_dns_query *q, int rcode)
{
	uint8_t *msg = NULL;
	size_t n = 0;

	if (rcode == ZT_DNS_RCODE_SERVFAIL)
		s->count.servfail++;
	if (zt_dns_reply_error(raw, len, q, rcode, &msg, &n) == 0)
		send_reply(d, msg, n);
}

/* ---- forwarding -------------------------------------------------------------------------- */

static void fwd_free(struct fwd *f)
{
	zt_dns_upstream_cancel(f->req);
	zt_dns_query_clear(&f->q);
	free(f);
	zt_live_dec(&zt_live_dns_forward);
}

static void tcp_resume(struct tcp_conn *c);

static void on_upstream(void *arg, int err, const uint8_t *resp, size_t len)
{
	struct fwd *f = arg;
	struct zt_dns_server *s = f->s;
	struct dest d = {f->l, &f->peer, f->peer_len, f->tc};
	double secs = (double)(zt_loop_update_time(s->o.loop) - f->start_ms) / 1000.0;
	uint8_t *msg = NULL;
	size_t n = 0;

	f->req = NULL;
	TAILQ_REMOVE(&s->fwds, f, link);
	if (f->m_up_dur)
		zt_metric_observe(f->m_up_dur, secs);
	if (err == 0 &&
	    zt_dns_reply_forwarded(&f->q, resp, len, reply_max(&d, &f->q), &msg, &n) < 0)
		err = ZT_E_PROTO;
	if (err < 0) {
		if (f->m_up_fail)
			zt_metric_add(f->m_up_fail, 1);
		zt_debug("%s %s: result=\"forwarding failed (%s)\"", f->q.type_label, f->q.name,
		         zt_strerror(err));
		reply_error(s, &d, NULL, 0, &f->q, ZT_DNS_RCODE_SERVFAIL);
	} else {
		zt_debug("%s %s: result=forwarded", f->q.type_label, f->q.name);
		send_reply(&d, msg, n);
	}
	if (f->tc) {
		f->tc->busy = NULL;
		tcp_resume(f->tc);
	}
	fwd_free(f);
}

/* Takes q. Returns 0 (the reply will come), or a negative code (q given back cleared). */
static int forward(struct zt_dns_server *s, const struct dest *d, struct zt_dns_query *q,
                   const struct zt_workload *w)
{
	struct fwd *f;
	uint8_t *wire = NULL;
	size_t n = 0;
	uint16_t id = zt_dns_random_id();
	int rc;

	if (zt_dns_upstream_inflight(s->up) >= ZT_DNS_UPSTREAM_INFLIGHT)
		return ZT_E_TOOBIG;
	if (zt_dns_query_upstream(q, id, &wire, &n) < 0)
		return ZT_E_PARSE;
	f = xcalloc(1, sizeof(*f));
	zt_live_inc(&zt_live_dns_forward);
	f->s = s;
	f->q = *q;
	memset(q, 0, sizeof(*q));
	f->l = d->l;
	if (d->peer) {
		memcpy(&f->peer, d->peer, d->peer_len);
		f->peer_len = d->peer_len;
	}
	f->tc = d->tc;
	f->start_ms = zt_loop_update_time(s->o.loop);
	count(s->m_up_req, &f->q, d->tc != NULL, w);
	f->m_up_fail = child(s->m_up_fail, &f->q, d->tc != NULL, w);
	f->m_up_dur = child(s->m_up_dur, &f->q, d->tc != NULL, w);
	TAILQ_INSERT_TAIL(&s->fwds, f, link);
	rc = zt_dns_upstream_send(s->up, wire, n, id, on_upstream, f, &f->req);
	free(wire);
	if (rc < 0) {
		/* No resolver: a failed forward, answered now. */
		struct dest dd = *d;
		f->req = NULL;
		TAILQ_REMOVE(&s->fwds, f, link);
		if (f->m_up_dur)
			zt_metric_observe(f->m_up_dur, 0);
		if (f->m_up_fail)
			zt_metric_add(f->m_up_fail, 1);
		zt_debug("%s %s: result=\"forwarding failed (%s)\"", f->q.type_label, f->q.name,
		         zt_strerror(rc));
		reply_error(s, &dd, NULL, 0, &f->q, ZT_DNS_RCODE_SERVFAIL);
		fwd_free(f);
		return 0;
	}
	if (d->tc)
		d->tc->busy = f;
	s->count.forwarded++;
	return 0;
}

/* ---- one query --------------------------------------------------------------------------- */

static void handle(struct zt_dns_server *s, const struct dest *d, const uint8_t *buf, size_t len)
{
	struct zt_dns_query q;
	struct zt_dns_answer a;
	struct zt_workload *w = NULL;
	struct zt_dns_client cl;
	uint8_t *msg = NULL;
	size_t n = 0;
	int rc;

	s->count.queries++;
	rc = zt_dns_query_parse(buf, len, &q);
	if (rc < 0) {
		s->count.malformed++;
		return; /* not even a header */
	}
	if (rc > 0) {
		s->count.malformed++;
		zt_debug("malformed query (%zu bytes): %s", len,
		         rc == ZT_DNS_RCODE_NOTIMP ? "not a standard query" : "FORMERR");
		reply_error(s, d, buf, len, NULL, rc);
		return;
	}
	w = s->o.client_cb ? s->o.client_cb(s->o.client_arg) : NULL;
	count(s->m_req, &q, d->tc != NULL, w);
	if (!w) {
		/* Spec §13.2 rule 1. */
		zt_debug("%s %s: unknown client", q.type_label, q.name);
		reply_error(s, d, NULL, 0, &q, ZT_DNS_RCODE_SERVFAIL);
		goto out;
	}
	cl = (struct zt_dns_client){
	        .ns = w->ns,
	        .network = w->network,
	        .cluster_domain = s->cluster_domain,
	        .search = s->o.search_from_resolv ? s->search : NULL,
	        .n_search = s->o.search_from_resolv ? s->resolv.n_search : 0,
	        .preferred_ns = s->o.preferred_ns,
	        .ipv6_enabled = s->o.ipv6,
	        .rand_cb = NULL,
	};
	if (q.name[0] && zt_dns_lookup(s->o.store, &cl, q.name, q.qtype, &a) == 1) {
		zt_debug("%s %s: result=%s (service %s)", q.type_label, q.name,
		         a.n_addrs ? "success" : "no records", a.svc->key);
		if (zt_dns_reply_local(&q, &a, reply_max(d, &q), &msg, &n) == 0)
			send_reply(d, msg, n);
		s->count.local++;
		zt_dns_answer_clear(&a);
		goto out;
	}
	if ((rc = forward(s, d, &q, w)) < 0) {
		s->count.dropped++;
		zt_debug("%s %s: not forwarded: %s", q.type_label, q.name, zt_strerror(rc));
		if (d->tc) /* UDP clients retry; a TCP one waits for its answer */
			reply_error(s, d, NULL, 0, &q, ZT_DNS_RCODE_SERVFAIL);
	}
out:
	zt_dns_query_clear(&q);
	zt_workload_unref(w);
}

/* ---- UDP --------------------------------------------------------------------------------- */

static void on_udp(struct zt_io *io, unsigned events, void *arg)
{
	static __thread uint8_t buf[ZT_DNS_MSG_MAX]; /* one per worker thread */
	struct listener *l = arg;

	(void)io;
	(void)events;
	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(l->ufd, buf, sizeof(buf), MSG_DONTWAIT,
		                     (struct sockaddr *)&peer, &plen);
		struct dest d = {l, &peer, plen, NULL};

		if (n < 0)
			return;
		handle(l->s, &d, buf, (size_t)n);
	}
}

/* ---- TCP --------------------------------------------------------------------------------- */

static void on_reap(struct zt_defer *d, void *arg)
{
	struct tcp_conn *c = arg;

	(void)d;
	free(c->out);
	free(c);
	zt_live_dec(&zt_live_dns_tcp_conn);
}

static void tcp_close(struct tcp_conn *c)
{
	struct zt_dns_server *s = c->s;

	if (c->closing)
		return;
	c->closing = true;
	zt_io_stop(&c->io);
	zt_timer_stop(&c->timer);
	close(c->fd);
	c->fd = -1;
	if (c->busy) {
		TAILQ_REMOVE(&s->fwds, c->busy, link);
		fwd_free(c->busy);
		c->busy = NULL;
	}
	TAILQ_REMOVE(&s->conns, c, link);
	s->n_conns--;
	zt_defer_start(s->o.loop, &c->reap, on_reap, c);
}

static void on_tcp_timeout(struct zt_timer *t, void *arg)
{
	(void)t;
	tcp_close(arg);
}

static void tcp_update(struct tcp_conn *c)
{
	unsigned ev = 0;

	if (c->closing)
		return;
	if (c->out_off < c->out_len)
		ev |= ZT_IO_WRITE;
	else if (!c->busy)
		ev |= ZT_IO_READ;
	zt_io_set(&c->io, ev);
}

static void tcp_reply(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (c->closing)
		return;
	c->out = xrealloc(c->out, c->out_len + 2 + len);
	c->out[c->out_len] = (uint8_t)(len >> 8);
	c->out[c->out_len + 1] = (uint8_t)len;
	memcpy(c->out + c->out_len + 2, msg, len);
	c->out_len += 2 + len;
	tcp_update(c);
}

/* Handles complete requests in the input while none is being forwarded. */
static void tcp_process(struct tcp_conn *c)
{
	while (!c->closing && !c->busy && c->in_len >= 2) {
		size_t need = 2 + ((size_t)c->in[0] << 8 | c->in[1]);
		struct dest d = {NULL, NULL, 0, c};

		if (need == 2) {
			tcp_close(c);
			return;
		}
		if (c->in_len < need)
			break;
		handle(c->s, &d, c->in + 2, need - 2);
		if (c->closing)
			return;
		memmove(c->in, c->in + need, c->in_len - need);
		c->in_len -= need;
		/* A new request gets its own deadline. */
		zt_timer_start(c->s->o.loop, &c->timer, ZT_DNS_TCP_TIMEOUT, on_tcp_timeout, c);
	}
	tcp_update(c);
}

static void tcp_resume(struct tcp_conn *c)
{
	tcp_process(c);
}

static void on_tcp(struct zt_io *io, unsigned events, void *arg)
{
	struct tcp_conn *c = arg;
	ssize_t n;

	(void)io;
	if (events & ZT_IO_WRITE) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		         MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			tcp_close(c);
			return;
		}
		if (n > 0)
			c->out_off += (size_t)n;
		if (c->out_off == c->out_len) {
			c->out_off = c->out_len = 0;
			tcp_process(c);
		}
		return;
	}
	if (events & (ZT_IO_READ | ZT_IO_ERROR)) {
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			tcp_close(c);
			return;
		}
		if (n > 0)
			c->in_len += (size_t)n;
		tcp_process(c);
	}
}

static void on_accept(struct zt_io *io, unsigned events, void *arg)
{
	struct listener *l = arg;
	struct zt_dns_server *s = l->s;

	(void)io;
	(void)events;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(l->tfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct tcp_conn *c;

		if (fd < 0)
			return;
		if (s->n_conns >= (s->o.tcp_max_conn ? s->o.tcp_max_conn : ZT_DNS_TCP_MAX_CONN)) {
			s->count.dropped++;
			close(fd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		zt_live_inc(&zt_live_dns_tcp_conn);
		c->s = s;
		c->fd = fd;
		if (zt_io_start(s->o.loop, &c->io, fd, ZT_IO_READ, on_tcp, c) < 0) {
			close(fd);
			free(c);
			zt_live_dec(&zt_live_dns_tcp_conn);
			continue;
		}
		TAILQ_INSERT_TAIL(&s->conns, c, link);
		s->n_conns++;
		zt_timer_start(s->o.loop, &c->timer, ZT_DNS_TCP_TIMEOUT, on_tcp_timeout, c);
	}
}

/* ---- listeners --------------------------------------------------------------------------- */

static int make_socket(struct zt_dns_server *s, int family, int type)
{
	int fd = s->o.socket_cb ? s->o.socket_cb(family, type, s->o.socket_arg)
	                        : socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno ? -errno : -EIO;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

static int bind_one(struct zt_dns_server *s, const struct zt_sockaddr *a, int type)
{
	const struct zt_dns_server_opts *o = &s->o;
	struct sockaddr_storage ss;
	socklen_t sl = zt_addr_to_sockaddr(a, &ss);
	int one = 1, fd = make_socket(s, ss.ss_family, type), rc;

	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (o->port_reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (o->mark_set && setsockopt(fd, SOL_SOCKET, SO_MARK, &o->mark, sizeof(o->mark)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		goto fail;
	return fd;
fail:
	rc = -errno;
	close(fd);
	return rc;
}

static int listen_on(struct zt_dns_server *s, const struct zt_sockaddr *a, char *err, size_t errlen)
{
	struct listener *l = &s->ls[s->n_ls];
	char txt[ZT_ADDR_STRLEN];
	int rc;

	zt_addr_format(a, txt, sizeof(txt));
	l->s = s;
	l->addr = *a;
	l->ufd = l->tfd = -1;
	if ((l->ufd = bind_one(s, a, SOCK_DGRAM)) < 0) {
		rc = l->ufd;
		goto fail;
	}
	if ((l->tfd = bind_one(s, a, SOCK_STREAM)) < 0) {
		rc = l->tfd;
		goto fail;
	}
	if ((rc = zt_io_start(s->o.loop, &l->uio, l->ufd, ZT_IO_READ, on_udp, l)) < 0 ||
	    (rc = zt_io_start(s->o.loop, &l->tio, l->tfd, ZT_IO_READ, on_accept, l)) < 0)
		goto fail;
	s->n_ls++;
	return 0;
fail:
	zt_io_stop(&l->uio);
	zt_io_stop(&l->tio);
	if (l->ufd >= 0)
		close(l->ufd);
	if (l->tfd >= 0)
		close(l->tfd);
	l->ufd = l->tfd = -1;
	if (a->ip.family == AF_INET6 && zt_ip_is_loopback(&a->ip) &&
	    (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)) {
		zt_debug("DNS proxy: %s skipped (no IPv6 loopback)", txt);
		return 0;
	}
	snprintf(err, errlen, "DNS proxy on %s: %s", txt, zt_strerror(rc));
	return rc;
}

int zt_dns_server_new(struct zt_dns_server **out, const struct zt_dns_server_opts *o, char *err,
                      size_t errlen)
{
	struct zt_dns_server *s = xcalloc(1, sizeof(*s));
	const struct zt_sockaddr *addrs = o->addrs;
	size_t n = o->n_addrs;
	struct zt_dns_upstream_opts uo = {0};
	char why[256];
	int rc;

	*out = NULL;
	s->o = *o;
	TAILQ_INIT(&s->fwds);
	TAILQ_INIT(&s->conns);
	snprintf(s->cluster_domain, sizeof(s->cluster_domain), "%s",
	         o->cluster_domain ? o->cluster_domain : "cluster.local");
	if (zt_dns_resolv_load(o->resolv_conf, &s->resolv, why, sizeof(why)) < 0)
		zt_warn("DNS proxy: %s; names outside the mesh will fail", why);
	for (size_t i = 0; i < s->resolv.n_search; i++)
		s->search[i] = s->resolv.search[i];
	uo.resolv = &s->resolv;
	uo.socket_cb = o->socket_cb;
	uo.socket_arg = o->socket_arg;
	uo.mark_set = o->mark_set;
	uo.mark = o->mark;
	uo.timeout_ms = o->upstream_timeout_ms;
	s->up = zt_dns_upstream_new(o->loop, &uo);
	if (o->metrics) {
		s->m_req = family(o->metrics, "istio_dns_requests_total",
		                  "Total number of DNS requests.", false);
		s->m_up_req = family(o->metrics, "istio_dns_upstream_requests_total",
		                     "Total number of DNS requests forwarded to upstream.", false);
		s->m_up_fail = family(o->metrics, "istio_dns_upstream_failures_total",
		                      "Total number of DNS failures.", false);
		s->m_up_dur = family(o->metrics, "istio_dns_upstream_request_duration_seconds",
		                     "Total time in seconds Istio takes to get DNS response from "
		                     "upstream.",
		                     true);
	}
	for (size_t i = 0; i < n && i < MAX_LISTENERS; i++) {
		if ((rc = listen_on(s, &addrs[i], err, errlen)) < 0) {
			zt_dns_server_free(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

void zt_dns_server_free(struct zt_dns_server *s)
{
	struct tcp_conn *c;
	struct fwd *f;

	if (!s)
		return;
	while ((c = TAILQ_FIRST(&s->conns)))
		tcp_close(c);
	while ((f = TAILQ_FIRST(&s->fwds))) {
		TAILQ_REMOVE(&s->fwds, f, link);
		fwd_free(f);
	}
	for (size_t i = 0; i < s->n_ls; i++) {
		zt_io_stop(&s->ls[i].uio);
		zt_io_stop(&s->ls[i].tio);
		close(s->ls[i].ufd);
		close(s->ls[i].tfd);
	}
	zt_dns_upstream_free(s->up);
	free(s);
}

json_t *zt_dns_server_dump(const struct zt_dns_server *s)
{
	json_t *ls = json_array(), *ups = json_array();
	char buf[ZT_ADDR_STRLEN];

	for (size_t i = 0; i < s->n_ls; i++) {
		zt_addr_format(&s->ls[i].addr, buf, sizeof(buf));
		json_array_append_new(ls, json_string(buf));
	}
	for (size_t i = 0; i < s->resolv.n_servers; i++) {
		zt_addr_format(&s->resolv.servers[i], buf, sizeof(buf));
		json_array_append_new(ups, json_string(buf));
	}
	return json_pack("{s:o, s:o, s:i, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "listeners", ls,
	                 "upstreams", ups, "tcpConnections", (int)s->n_conns, "counters", "queries",
	                 (json_int_t)s->count.queries, "local", (json_int_t)s->count.local,
	                 "forwarded", (json_int_t)s->count.forwarded, "malformed",
	                 (json_int_t)s->count.malformed, "dropped", (json_int_t)s->count.dropped,
	                 "servfail", (json_int_t)s->count.servfail);
}
