/* Upstream DNS client: one request = one query walked through the resolvers; per resolver a
 * UDP exchange on a connected socket, then TCP (2-byte length framing) if the UDP answer
 * was truncated. Responses are accepted only from the connected peer with the request's id
 * and QR set; anything else on the socket is ignored. A request's callback goes through a
 * defer, so it never runs inside the caller's own stack. */
#include "dns/upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/message.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("dns");
ZT_LIVE_DEFINE(dns_upstream_req);

enum rstate { R_UDP, R_TCP_CONNECT, R_TCP_WRITE, R_TCP_READ, R_DONE };

struct zt_dns_upstream_req {
	TAILQ_ENTRY(zt_dns_upstream_req) link;
	struct zt_dns_upstream *u;
	enum rstate state;
	size_t server;
	uint16_t id;
	uint8_t *query;
	size_t qlen;
	int fd;
	struct zt_io io;
	struct zt_timer timer;
	struct zt_defer done;
	size_t off;    /* TCP: bytes written, or read into rbuf */
	uint8_t *rbuf; /* TCP: 2-byte length + response */
	size_t rneed;  /* TCP: bytes expected in rbuf */
	int err;
	uint8_t *resp;
	size_t resp_len;
	zt_dns_upstream_cb cb;
	void *arg;
};

TAILQ_HEAD(req_list, zt_dns_upstream_req);

struct zt_dns_upstream {
	struct zt_loop *loop;
	struct zt_dns_upstream_opts o;
	struct zt_dns_resolv resolv;
	struct req_list reqs;
	size_t n;
};

uint16_t zt_dns_random_id(void)
{
	uint16_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint16_t)random();
	return v;
}

/* ---- resolv.conf ------------------------------------------------------------------------- */

int zt_dns_resolv_load(const char *path, struct zt_dns_resolv *out, char *err, size_t errlen)
{
	ldns_resolver *r = NULL;
	ldns_status st;
	ldns_rdf **ns, **sl;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!path)
		path = "/etc/resolv.conf";
	if ((st = ldns_resolver_new_frm_file(&r, path)) != LDNS_STATUS_OK)
		return zt_errf(ZT_E_PARSE, err, errlen, "%s: %s", path,
		               ldns_get_errorstr_by_id(st));
	ns = ldns_resolver_nameservers(r);
	n = ldns_resolver_nameserver_count(r);
	for (size_t i = 0; i < n && out->n_servers < ZT_DNS_MAX_SERVERS; i++) {
		struct zt_sockaddr *a = &out->servers[out->n_servers];
		if (zt_ip_from_bytes(&a->ip, ldns_rdf_data(ns[i]), ldns_rdf_size(ns[i])) < 0)
			continue;
		a->port = 53;
		out->n_servers++;
	}
	sl = ldns_resolver_searchlist(r);
	n = ldns_resolver_searchlist_count(r);
	for (size_t i = 0; i < n && out->n_search < ZT_DNS_MAX_SEARCH; i++) {
		char *s = ldns_rdf2str(sl[i]);
		if (s &&
		    zt_dns_name_norm(s, out->search[out->n_search], sizeof(out->search[0])) == 0)
			out->n_search++;
		free(s);
	}
	ldns_resolver_deep_free(r);
	if (out->n_servers == 0)
		return zt_errf(ZT_E_NOTFOUND, err, errlen, "%s: no nameserver", path);
	return 0;
}

/* ---- one request ------------------------------------------------------------------------- */

static void close_fd(struct zt_dns_upstream_req *r)
{
	zt_io_stop(&r->io);
	zt_timer_stop(&r->timer);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->rbuf);
	r->rbuf = NULL;
	r->off = r->rneed = 0;
}

static void req_free(struct zt_dns_upstream_req *r)
{
	close_fd(r);
	zt_defer_stop(&r->done);
	free(r->query);
	free(r->resp);
	free(r);
	zt_live_dec(&zt_live_dns_upstream_req);
}

static void on_done(struct zt_defer *d, void *arg)
{
	struct zt_dns_upstream_req *r = arg;
	struct zt_dns_upstream *u = r->u;

	(void)d;
	TAILQ_REMOVE(&u->reqs, r, link);
	u->n--;
	r->cb(r->arg, r->err, r->resp, r->resp_len);
	req_free(r);
}

static void complete(struct zt_dns_upstream_req *r, int err)
{
	close_fd(r);
	r->state = R_DONE;
	r->err = err;
	zt_defer_start(r->u->loop, &r->done, on_done, r);
}

static void attempt(struct zt_dns_upstream_req *r, int last_err);

static void next_server(struct zt_dns_upstream_req *r, int err)
{
	close_fd(r);
	r->server++;
	attempt(r, err);
}

static void on_timeout(struct zt_timer *t, void *arg)
{
	(void)t;
	next_server(arg, ZT_E_TIMEOUT);
}

static int new_socket(struct zt_dns_upstream_req *r, int family, int type)
{
	struct zt_dns_upstream *u = r->u;
	int fd = u->o.socket_cb ? u->o.socket_cb(family, type, u->o.socket_arg)
	                        : socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno ? -errno : -EIO;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (u->o.mark_set &&
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &u->o.mark, sizeof(u->o.mark)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static void on_io(struct zt_io *io, unsigned events, void *arg);

static int start_io(struct zt_dns_upstream_req *r, unsigned events)
{
	struct zt_dns_upstream *u = r->u;
	int rc = zt_io_start(u->loop, &r->io, r->fd, events, on_io, r);

	if (rc == 0)
		zt_timer_start(u->loop, &r->timer, u->o.timeout_ms, on_timeout, r);
	return rc;
}

static int connect_to(struct zt_dns_upstream_req *r, int type)
{
	const struct zt_sockaddr *srv = &r->u->resolv.servers[r->server];
	struct sockaddr_storage ss;
	socklen_t sl = zt_addr_to_sockaddr(srv, &ss);
	int fd = new_socket(r, ss.ss_family, type);

	if (fd < 0)
		return fd;
	r->fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
		return -errno;
	return 0;
}

static void attempt(struct zt_dns_upstream_req *r, int last_err)
{
	struct zt_dns_upstream *u = r->u;
	int rc;

	for (; r->server < u->resolv.n_servers; r->server++, close_fd(r)) {
		r->state = R_UDP;
		if ((rc = connect_to(r, SOCK_DGRAM)) < 0 ||
		    (send(r->fd, r->query, r->qlen, 0) < 0 && (rc = -errno)) ||
		    (rc = start_io(r, ZT_IO_READ)) < 0) {
			last_err = rc;
			continue;
		}
		return;
	}
	complete(r, last_err ? last_err : ZT_E_STATE);
}

static void tcp_start(struct zt_dns_upstream_req *r)
{
	int rc;

	close_fd(r);
	r->state = R_TCP_CONNECT;
	r->rbuf = xmalloc(2 + r->qlen);
	r->rbuf[0] = (uint8_t)(r->qlen >> 8);
	r->rbuf[1] = (uint8_t)r->qlen;
	memcpy(r->rbuf + 2, r->query, r->qlen);
	r->rneed = 2 + r->qlen;
	if ((rc = connect_to(r, SOCK_STREAM)) < 0 || (rc = start_io(r, ZT_IO_WRITE)) < 0)
		next_server(r, rc);
}

/* The response in buf is ours: complete, or go to TCP when truncated. */
static void got(struct zt_dns_upstream_req *r, const uint8_t *buf, size_t n)
{
	bool tc = false;

	if (zt_dns_response_check(buf, n, r->id, &tc) < 0)
		return; /* not an answer to this query: keep waiting */
	if (tc && r->state == R_UDP) {
		tcp_start(r);
		return;
	}
	r->resp = xmalloc(n);
	memcpy(r->resp, buf, n);
	r->resp_len = n;
	complete(r, 0);
}

static void on_udp(struct zt_dns_upstream_req *r)
{
	static __thread uint8_t buf[ZT_DNS_MSG_MAX]; /* one per worker thread */

	for (int i = 0; i < 8 && r->state == R_UDP; i++) {
		ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				next_server(r, -errno);
			return;
		}
		got(r, buf, (size_t)n);
	}
}

static void on_tcp(struct zt_dns_upstream_req *r, unsigned events)
{
	ssize_t n;

	if (r->state == R_TCP_CONNECT || r->state == R_TCP_WRITE) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (r->state == R_TCP_CONNECT) {
			getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
			if (soerr) {
				next_server(r, -soerr);
				return;
			}
			r->state = R_TCP_WRITE;
		}
		n = send(r->fd, r->rbuf + r->off, r->rneed - r->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				next_server(r, -errno);
			return;
		}
		r->off += (size_t)n;
		if (r->off < r->rneed)
			return;
		free(r->rbuf);
		r->rbuf = xmalloc(2 + ZT_DNS_MSG_MAX);
		r->off = 0;
		r->rneed = 2;
		r->state = R_TCP_READ;
		zt_io_set(&r->io, ZT_IO_READ);
		return;
	}
	(void)events;
	n = recv(r->fd, r->rbuf + r->off, r->rneed - r->off, 0);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			next_server(r, n == 0 ? ZT_E_CLOSED : -errno);
		return;
	}
	r->off += (size_t)n;
	if (r->off < r->rneed)
		return;
	if (r->rneed == 2) {
		r->rneed = 2 + ((size_t)r->rbuf[0] << 8 | r->rbuf[1]);
		if (r->rneed == 2)
			next_server(r, ZT_E_PROTO);
		return;
	}
	got(r, r->rbuf + 2, r->rneed - 2);
	if (r->state == R_TCP_READ)
		next_server(r, ZT_E_PROTO); /* a framed message that is not our answer */
}

static void on_io(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_dns_upstream_req *r = arg;

	(void)io;
	if (r->state == R_UDP)
		on_udp(r);
	else if (r->state != R_DONE)
		on_tcp(r, events);
}

/* ---- the client -------------------------------------------------------------------------- */

struct zt_dns_upstream *zt_dns_upstream_new(struct zt_loop *loop,
                                            const struct zt_dns_upstream_opts *o)
{
	struct zt_dns_upstream *u = xcalloc(1, sizeof(*u));

	u->loop = loop;
	u->o = *o;
	if (o->resolv)
		u->resolv = *o->resolv;
	u->o.resolv = NULL;
	if (!u->o.timeout_ms)
		u->o.timeout_ms = ZT_DNS_UPSTREAM_TIMEOUT;
	if (!u->o.max_inflight)
		u->o.max_inflight = ZT_DNS_UPSTREAM_INFLIGHT;
	TAILQ_INIT(&u->reqs);
	return u;
}

void zt_dns_upstream_free(struct zt_dns_upstream *u)
{
	struct zt_dns_upstream_req *r;

	if (!u)
		return;
	while ((r = TAILQ_FIRST(&u->reqs))) {
		TAILQ_REMOVE(&u->reqs, r, link);
		req_free(r);
	}
	free(u);
}

int zt_dns_upstream_send(struct zt_dns_upstream *u, const uint8_t *query, size_t len, uint16_t id,
                         zt_dns_upstream_cb cb, void *arg, struct zt_dns_upstream_req **out)
{
	struct zt_dns_upstream_req *r;

	if (out)
		*out = NULL;
	if (u->resolv.n_servers == 0)
		return ZT_E_STATE;
	if (u->n >= u->o.max_inflight)
		return ZT_E_TOOBIG;
	r = xcalloc(1, sizeof(*r));
	zt_live_inc(&zt_live_dns_upstream_req);
	r->u = u;
	r->fd = -1;
	r->id = id;
	r->query = xmalloc(len);
	memcpy(r->query, query, len);
	r->qlen = len;
	r->cb = cb;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&u->reqs, r, link);
	u->n++;
	attempt(r, 0);
	if (out)
		*out = r;
	return 0;
}

void zt_dns_upstream_cancel(struct zt_dns_upstream_req *r)
{
	if (!r)
		return;
	TAILQ_REMOVE(&r->u->reqs, r, link);
	r->u->n--;
	req_free(r);
}

size_t zt_dns_upstream_inflight(const struct zt_dns_upstream *u)
{
	return u->n;
}
