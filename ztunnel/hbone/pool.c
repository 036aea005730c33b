/* HBONE connection pool. Invariants: per key at most one connection is being established
 * (connecting, handshaking, or open but still without the peer's SETTINGS) while requests
 * wait; waiting requests are served only from the key's dispatch defer, so ready callbacks
 * never run inside zt_pool_connect; a connection is handed streams only in the starting (one
 * stream) or ready state, below both stream limits; a key lives while it has a connection or a
 * waiting request, and is never freed while its own dispatch or failure loop runs. */
#include "hbone/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/h2_connect.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("pool");
ZT_LIVE_DEFINE(pool_connection);
ZT_LIVE_DEFINE(pool_request);

#define MAX_HEADERS 64 /* as many as one HTTP/2 header block of ours carries */

enum pc_state {
	PC_CONNECTING, /* the connector runs: TCP connect, then PC_TLS */
	PC_TLS,        /* (only shown: the connector's TLS handshake) */
	PC_STARTING,   /* HTTP/2 open, peer SETTINGS not seen: one stream at most */
	PC_READY,
	PC_DRAINING, /* GOAWAY, idle eviction or a failed stream open: never handed out */
	PC_FAILED,   /* establishment failed; waiting to be reaped */
};

static const char *const state_names[] = {"connecting", "handshaking", "starting",
                                          "ready",      "draining",    "failed"};

struct pkey;

/* A queue of waiting requests: a key's, or a detached one while they are being failed. */
struct wq {
	struct zt_pool_req *head, *tail;
	size_t n;
};

struct zt_pool_req {
	struct zt_pool *pool;
	struct pkey *key;
	struct wq *q;
	struct zt_pool_req *prev, *next;
	struct zt_h2_header *h;
	size_t n;
	struct zt_h2_stream_cbs cbs;
	void *arg;
	zt_pool_ready_cb ready;
	void *ready_arg;
};

struct pconn {
	struct pkey *key;
	struct pconn *prev, *next;
	enum pc_state state;
	struct zt_h2_connect *conn; /* until it hands over h2 */
	struct zt_h2_conn *h2;
	struct zt_timer timer; /* SETTINGS timeout, then idle eviction */
	struct zt_defer reap;
	uint64_t started_ms, used_ms, streams_total;
	struct zt_spiffe peer;
	bool has_peer;
	int err; /* establishment failure being reported */
	enum zt_close flag;
	char reason[256];
};

struct pkey {
	struct zt_pool *pool;
	struct pkey *hnext;
	uint64_t hash;
	struct zt_tls_identity *id; /* newest identity given for this key (reference) */
	struct zt_spiffe src_id;
	struct zt_spiffe *dst_ids;
	size_t n_dst;
	struct zt_sockaddr dst;
	struct zt_ip src_ip;
	struct pconn *head, *tail;
	struct wq wait;
	struct zt_defer dispatch;
	int busy;
};

struct zt_pool {
	struct zt_loop *loop;
	struct zt_pool_opts opts;
	struct zt_tls_opts tls_opts;
	struct zt_tls_client *tls;
	struct pkey **buckets;
	size_t nbuckets, nkeys, nconns, nwaiting;
	struct zt_pool_stats stats;
	bool closed;
	bool releasing; /* zt_pool_free is running: do not release from below it */
};

void zt_pool_opts_default(struct zt_pool_opts *o)
{
	memset(o, 0, sizeof(*o));
	zt_h2_settings_default(&o->h2, false);
	o->max_streams = 100;
	o->idle_ms = 5 * 60 * 1000;
	o->connect_timeout_ms = 10000;
	o->handshake_timeout_ms = 10000;
	zt_sockopt_default(&o->sock);
}

/* ---- waiting requests -------------------------------------------------------------------- */

static void wq_push(struct wq *q, struct zt_pool_req *r, bool front)
{
	r->q = q;
	if (front) {
		r->prev = NULL;
		r->next = q->head;
		if (q->head)
			q->head->prev = r;
		else
			q->tail = r;
		q->head = r;
	} else {
		r->next = NULL;
		r->prev = q->tail;
		if (q->tail)
			q->tail->next = r;
		else
			q->head = r;
		q->tail = r;
	}
	q->n++;
	r->pool->nwaiting++;
}

static void wq_remove(struct zt_pool_req *r)
{
	struct wq *q = r->q;

	if (r->prev)
		r->prev->next = r->next;
	else
		q->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		q->tail = r->prev;
	q->n--;
	r->pool->nwaiting--;
	r->q = NULL;
	r->prev = r->next = NULL;
}

static struct zt_pool_req *wq_pop(struct wq *q)
{
	struct zt_pool_req *r = q->head;

	if (r)
		wq_remove(r);
	return r;
}

static void req_free(struct zt_pool_req *r)
{
	zt_live_dec(&zt_live_pool_request);
	free(r);
}

/* Runs the request's callback and frees it. */
static void req_finish(struct zt_pool_req *r, struct zt_h2_stream *st,
                       const struct zt_pool_result *res)
{
	zt_pool_ready_cb cb = r->ready;
	void *arg = r->ready_arg;

	req_free(r);
	cb(st, res, arg);
}

/* Fails every request waiting on k now; requests added by the callbacks stay queued. */
static void fail_waiters(struct pkey *k, int err, enum zt_close flag, const char *reason)
{
	struct zt_pool_result res = {.err = err, .flag = flag, .reason = reason};
	struct wq local = {0};
	struct zt_pool_req *r;

	while ((r = wq_pop(&k->wait)))
		wq_push(&local, r, false);
	k->busy++;
	while ((r = wq_pop(&local)))
		req_finish(r, NULL, &res);
	k->busy--;
}

/* ---- keys -------------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t hash_spiffe(uint64_t h, const struct zt_spiffe *s)
{
	h = fnv(h, s->td, strlen(s->td) + 1);
	h = fnv(h, s->ns, strlen(s->ns) + 1);
	return fnv(h, s->sa, strlen(s->sa) + 1);
}

static uint64_t hash_ip(uint64_t h, const struct zt_ip *ip)
{
	h = fnv(h, &ip->family, sizeof(ip->family));
	return fnv(h, ip->bytes, sizeof(ip->bytes));
}

static uint64_t key_hash(const struct zt_spiffe *src, const struct zt_pool_key *key)
{
	uint64_t h = hash_spiffe(0xcbf29ce484222325ULL, src);

	for (size_t i = 0; i < key->n_dst_ids; i++)
		h = hash_spiffe(h, &key->dst_ids[i]);
	h = hash_ip(h, &key->dst.ip);
	h = fnv(h, &key->dst.port, sizeof(key->dst.port));
	return hash_ip(h, &key->src_ip);
}

static bool key_match(const struct pkey *k, uint64_t hash, const struct zt_spiffe *src,
                      const struct zt_pool_key *key)
{
	if (k->hash != hash || k->n_dst != key->n_dst_ids || !zt_spiffe_eq(&k->src_id, src) ||
	    !zt_addr_equal(&k->dst, &key->dst) || !zt_ip_equal(&k->src_ip, &key->src_ip))
		return false;
	for (size_t i = 0; i < k->n_dst; i++)
		if (!zt_spiffe_eq(&k->dst_ids[i], &key->dst_ids[i]))
			return false;
	return true;
}

static void table_grow(struct zt_pool *p)
{
	size_t n = p->nbuckets ? p->nbuckets * 2 : 16;
	struct pkey **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < p->nbuckets; i++) {
		while (p->buckets[i]) {
			struct pkey *k = p->buckets[i];
			p->buckets[i] = k->hnext;
			k->hnext = b[k->hash & (n - 1)];
			b[k->hash & (n - 1)] = k;
		}
	}
	free(p->buckets);
	p->buckets = b;
	p->nbuckets = n;
}

static struct pkey *key_get(struct zt_pool *p, const struct zt_pool_key *key)
{
	const struct zt_spiffe *src = zt_tls_identity_spiffe(key->identity);
	uint64_t hash = key_hash(src, key);
	struct pkey *k;

	for (k = p->nbuckets ? p->buckets[hash & (p->nbuckets - 1)] : NULL; k; k = k->hnext) {
		if (key_match(k, hash, src, key)) {
			if (k->id != key->identity) {
				zt_tls_identity_unref(k->id);
				k->id = zt_tls_identity_ref(key->identity);
			}
			return k;
		}
	}
	if (p->nkeys >= p->nbuckets)
		table_grow(p);
	k = xcalloc(1, sizeof(*k));
	k->pool = p;
	k->hash = hash;
	k->id = zt_tls_identity_ref(key->identity);
	k->src_id = *src;
	k->dst_ids = xcalloc(key->n_dst_ids, sizeof(*k->dst_ids));
	memcpy(k->dst_ids, key->dst_ids, key->n_dst_ids * sizeof(*k->dst_ids));
	k->n_dst = key->n_dst_ids;
	k->dst = key->dst;
	k->src_ip = key->src_ip;
	k->hnext = p->buckets[hash & (p->nbuckets - 1)];
	p->buckets[hash & (p->nbuckets - 1)] = k;
	p->nkeys++;
	return k;
}

static void pool_maybe_release(struct zt_pool *p);

/* Frees k once it has nothing left and nothing of it is on the stack. */
static void key_maybe_free(struct pkey *k)
{
	struct zt_pool *p = k->pool;

	if (k->busy || k->head || k->wait.head)
		return;
	zt_defer_stop(&k->dispatch);
	for (struct pkey **pp = &p->buckets[k->hash & (p->nbuckets - 1)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == k) {
			*pp = k->hnext;
			break;
		}
	}
	p->nkeys--;
	zt_tls_identity_unref(k->id);
	free(k->dst_ids);
	free(k);
	pool_maybe_release(p);
}

static void on_dispatch(struct zt_defer *d, void *arg);

static void schedule_dispatch(struct pkey *k)
{
	if (!k->pool->closed)
		zt_defer_start(k->pool->loop, &k->dispatch, on_dispatch, k);
}

/* ---- connections ------------------------------------------------------------------------- */

static void go_state(struct pconn *pc, enum pc_state s)
{
	char dst[ZT_ADDR_STRLEN];

	zt_addr_format(&pc->key->dst, dst, sizeof(dst));
	zt_debug("connection to %s: %s -> %s", dst, state_names[pc->state], state_names[s]);
	pc->state = s;
}

static uint32_t stream_limit(const struct pconn *pc)
{
	uint32_t peer = zt_h2_conn_peer_max_streams(pc->h2), own = pc->key->pool->opts.max_streams;

	/* Until the peer's SETTINGS say how many it allows, only one stream goes out, so that
	 * the first request does not wait for them and the rest respect the peer's limit. */
	if (pc->state == PC_STARTING)
		return 1;
	return peer < own ? peer : own;
}

static bool usable(const struct pconn *pc)
{
	return (pc->state == PC_STARTING || pc->state == PC_READY) && zt_h2_conn_can_open(pc->h2) &&
	       zt_h2_conn_streams(pc->h2) < stream_limit(pc);
}

static bool establishing(const struct pkey *k)
{
	for (const struct pconn *pc = k->head; pc; pc = pc->next)
		if (pc->state == PC_CONNECTING || pc->state == PC_TLS || pc->state == PC_STARTING ||
		    pc->state == PC_FAILED)
			return true;
	return false;
}

static void conn_unlink(struct pconn *pc)
{
	struct pkey *k = pc->key;

	if (pc->prev)
		pc->prev->next = pc->next;
	else
		k->head = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	else
		k->tail = pc->prev;
	zt_timer_stop(&pc->timer);
	zt_defer_stop(&pc->reap);
	k->pool->nconns--;
	zt_live_dec(&zt_live_pool_connection);
	free(pc);
}

/* After a connection is gone: let waiting requests move on, drop the key if empty. */
static void after_conn_gone(struct pkey *k)
{
	if (k->wait.head)
		schedule_dispatch(k);
	key_maybe_free(k);
}

static void on_reap(struct zt_defer *d, void *arg)
{
	struct pconn *pc = arg;
	struct pkey *k = pc->key;
	char reason[sizeof(pc->reason)];
	int err = pc->err;
	enum zt_close flag = pc->flag;

	(void)d;
	memcpy(reason, pc->reason, sizeof(reason));
	conn_unlink(pc);
	k->busy++;
	fail_waiters(k, err, flag, reason);
	k->busy--;
	after_conn_gone(k);
}

/* Establishment failed before HTTP/2 took the socket: close now, report from the loop. */
static void fail_early(struct pconn *pc, int err, enum zt_close flag, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void fail_early(struct pconn *pc, int err, enum zt_close flag, const char *fmt, ...)
{
	struct zt_pool *p = pc->key->pool;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pc->reason, sizeof(pc->reason), fmt, ap);
	va_end(ap);
	pc->err = err;
	pc->flag = flag;
	zt_debug("connection failed: %s (%s)", pc->reason, zt_close_flag(flag));
	go_state(pc, PC_FAILED);
	p->stats.failed++;
	zt_h2_connect_cancel(pc->conn);
	pc->conn = NULL;
	zt_timer_stop(&pc->timer);
	zt_defer_start(p->loop, &pc->reap, on_reap, pc);
}

static void on_h2_close(struct zt_h2_conn *c, const char *reason, void *arg)
{
	struct pconn *pc = arg;
	struct pkey *k = pc->key;
	struct zt_pool *p = k->pool;

	(void)c;
	if (pc->state == PC_STARTING && !p->closed) {
		/* Closed before the HTTP/2 handshake completed: the waiters' attempt failed. */
		if (!pc->err) {
			pc->err = ZT_E_CLOSED;
			pc->flag = ZT_CLOSE_H2_HANDSHAKE_FAILURE;
			snprintf(pc->reason, sizeof(pc->reason),
			         "connection closed before HTTP/2 SETTINGS: %s", reason);
		}
		p->stats.failed++;
		zt_debug("connection failed: %s (%s)", pc->reason, zt_close_flag(pc->flag));
		go_state(pc, PC_FAILED);
		on_reap(&pc->reap, pc);
		return;
	}
	zt_debug("connection closed: %s", reason);
	conn_unlink(pc);
	after_conn_gone(k);
}

static void on_h2_goaway(struct zt_h2_conn *c, uint32_t code, void *arg)
{
	struct pconn *pc = arg;

	(void)c;
	zt_debug("GOAWAY (code %u) from peer", code);
	if (pc->state == PC_READY || pc->state == PC_STARTING) {
		if (pc->state == PC_STARTING)
			zt_timer_stop(&pc->timer);
		go_state(pc, PC_DRAINING);
	}
	if (pc->key->wait.head)
		schedule_dispatch(pc->key);
}

static void on_pc_timer(struct zt_timer *t, void *arg);

static void on_h2_settings(struct zt_h2_conn *c, void *arg)
{
	struct pconn *pc = arg;
	struct zt_pool *p = pc->key->pool;

	if (pc->state != PC_STARTING)
		return;
	if (zt_h2_conn_peer_max_streams(c) == 0) {
		/* It would never take a stream: fail the attempt rather than open more. */
		pc->err = ZT_E_PROTO;
		pc->flag = ZT_CLOSE_H2_HANDSHAKE_FAILURE;
		snprintf(pc->reason, sizeof(pc->reason), "peer allows no streams");
		zt_h2_conn_close(c, "peer allows no streams");
		return;
	}
	go_state(pc, PC_READY);
	p->stats.opened++;
	pc->used_ms = zt_loop_now(p->loop);
	zt_timer_start(p->loop, &pc->timer, p->opts.idle_ms, on_pc_timer, pc);
	schedule_dispatch(pc->key);
}

static const struct zt_h2_conn_cbs h2_cbs = {
        .on_goaway = on_h2_goaway,
        .on_close = on_h2_close,
        .on_settings = on_h2_settings,
};

static void on_pc_timer(struct zt_timer *t, void *arg)
{
	struct pconn *pc = arg;
	struct zt_pool *p = pc->key->pool;
	uint64_t now = zt_loop_now(p->loop), unused;

	(void)t;
	switch (pc->state) {
	case PC_STARTING:
		pc->err = ZT_E_TIMEOUT;
		pc->flag = ZT_CLOSE_H2_HANDSHAKE_FAILURE;
		snprintf(pc->reason, sizeof(pc->reason), "no HTTP/2 SETTINGS from peer in %llu ms",
		         (unsigned long long)p->opts.handshake_timeout_ms);
		zt_h2_conn_close(pc->h2, "handshake timeout");
		break;
	case PC_READY:
		unused = now - pc->used_ms;
		if (unused < p->opts.idle_ms) {
			zt_timer_start(p->loop, &pc->timer, p->opts.idle_ms - unused, on_pc_timer,
			               pc);
			break;
		}
		/* Out of the pool; closes as soon as its last stream ends (spec §2.7). */
		go_state(pc, PC_DRAINING);
		zt_h2_conn_shutdown(pc->h2);
		break;
	default:
		break;
	}
}

/* The response flag of a failed connection attempt (spec §8.1). */
static enum zt_close flag_of(const struct zt_h2_connect_result *r)
{
	switch (r->stage) {
	case ZT_H2_CONNECT_TCP:
		return r->err == ZT_E_TIMEOUT ? ZT_CLOSE_NETWORK_POLICY : ZT_CLOSE_CONNECT;
	case ZT_H2_CONNECT_TLS:
		return r->err == ZT_E_IDENTITY ? ZT_CLOSE_IDENTITY_ERROR
		                               : ZT_CLOSE_TLS_FAILURE;
	case ZT_H2_CONNECT_H2:
	default:
		return ZT_CLOSE_H2_HANDSHAKE_FAILURE;
	}
}

static void on_connect(struct zt_h2_conn *h2, const struct zt_h2_connect_result *r, void *arg)
{
	struct pconn *pc = arg;
	struct pkey *k = pc->key;
	struct zt_pool *p = k->pool;
	uint64_t left = p->opts.handshake_timeout_ms;

	pc->conn = NULL;
	if (!h2) {
		fail_early(pc, r->err, flag_of(r), "%s", r->reason);
		return;
	}
	if (r->peer) {
		pc->peer = *r->peer;
		pc->has_peer = true;
	}
	pc->h2 = h2;
	go_state(pc, PC_STARTING);
	/* The TLS handshake and the peer's first SETTINGS share one deadline. */
	left = r->handshake_ms < left ? left - r->handshake_ms : 1;
	zt_timer_start(p->loop, &pc->timer, left, on_pc_timer, pc);
	schedule_dispatch(k);
}

/* A non-blocking TCP socket with the options of spec §1.2, bound to the key's source IP when
 * it is set. */
static int make_socket(int family, const char **what, void *arg)
{
	struct pconn *pc = arg;
	const struct zt_pool_opts *o = &pc->key->pool->opts;
	const struct zt_ip *src = &pc->key->src_ip;
	int fd, err = 0;

	*what = "socket";
	if (o->socket_cb) {
		fd = o->socket_cb(family, o->socket_arg);
		if (fd < 0)
			return fd;
		err = zt_sockopt_nonblock(fd);
	} else {
		fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
	}
	if (!err)
		err = zt_sockopt_tcp(&o->sock, fd, what);
	if (!err && (err = zt_sockopt_mark(&o->sock, fd)) < 0)
		*what = "SO_MARK";
	if (!err && src->family) {
		struct sockaddr_storage ss;
		struct zt_sockaddr sa = {.ip = *src};
		socklen_t sl = zt_addr_to_sockaddr(&sa, &ss);
		if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
			err = -errno;
			*what = "bind";
		}
	}
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

static void start_conn(struct pkey *k)
{
	struct zt_pool *p = k->pool;
	struct pconn *pc = xcalloc(1, sizeof(*pc));
	struct zt_h2_connect_opts o = {
	        .addr = k->dst,
	        .socket_cb = make_socket,
	        .sock_arg = pc,
	        .connect_timeout_ms = p->opts.connect_timeout_ms,
	        .handshake_timeout_ms = p->opts.handshake_timeout_ms,
	        .tls = p->tls,
	        .identity = k->id,
	        .expected = k->dst_ids,
	        .n_expected = k->n_dst,
	        .h2 = &p->opts.h2,
	        .cbs = &h2_cbs,
	        .cbs_arg = pc,
	};
	int err = 0;

	pc->key = k;
	pc->state = PC_CONNECTING;
	pc->started_ms = pc->used_ms = zt_loop_now(p->loop);
	pc->prev = k->tail;
	if (k->tail)
		k->tail->next = pc;
	else
		k->head = pc;
	k->tail = pc;
	p->nconns++;
	p->stats.connects++;
	zt_live_inc(&zt_live_pool_connection);

	pc->conn = zt_h2_connect_start(p->loop, &o, on_connect, pc, &err);
	if (!pc->conn)
		fail_early(pc, err, ZT_CLOSE_CONNECT, "connect: %s", zt_strerror(err));
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static struct pconn *pick(struct pkey *k)
{
	for (struct pconn *pc = k->head; pc; pc = pc->next)
		if (usable(pc))
			return pc;
	return NULL;
}

/* Opens r's stream on pc and reports it. Returns false if pc refused (r is then untouched). */
static bool hand_out(struct pconn *pc, struct zt_pool_req *r)
{
	struct zt_pool *p = pc->key->pool;
	struct zt_pool_result res = {.reason = ""};
	struct zt_h2_stream *st;
	int err = 0;

	st = zt_h2_request(pc->h2, r->h, r->n, false, &r->cbs, r->arg, &err);
	if (!st && err == ZT_E_STATE) {
		go_state(pc, PC_DRAINING);
		return false;
	}
	if (!st) {
		res.err = err;
		res.reason = "stream open failed";
		req_finish(r, NULL, &res);
		return true;
	}
	res.reused = pc->streams_total > 0;
	res.peer = pc->has_peer ? &pc->peer : NULL;
	pc->streams_total++;
	pc->used_ms = zt_loop_now(p->loop);
	p->stats.streams++;
	if (res.reused)
		p->stats.reused++;
	req_finish(r, st, &res);
	return true;
}

static void on_dispatch(struct zt_defer *d, void *arg)
{
	struct pkey *k = arg;
	struct zt_pool_req *r;
	struct pconn *pc;

	(void)d;
	k->busy++;
	while (k->wait.head && (pc = pick(k))) {
		r = wq_pop(&k->wait);
		if (!hand_out(pc, r))
			wq_push(&k->wait, r, true);
	}
	if (k->wait.head && !establishing(k) && !k->pool->closed)
		start_conn(k);
	k->busy--;
	key_maybe_free(k);
}

/* ---- public API -------------------------------------------------------------------------- */

int zt_pool_new(struct zt_pool **out, struct zt_loop *loop, const struct zt_pool_opts *opts)
{
	struct zt_pool *p;
	int err;

	*out = NULL;
	p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	if (opts)
		p->opts = *opts;
	else
		zt_pool_opts_default(&p->opts);
	if (p->opts.tls) {
		p->tls_opts = *p->opts.tls;
		p->opts.tls = &p->tls_opts;
	}
	if (p->opts.max_streams == 0) {
		free(p);
		return ZT_E_RANGE;
	}
	err = zt_tls_client_new(&p->tls, p->opts.tls);
	if (err < 0) {
		free(p);
		return err;
	}
	*out = p;
	return 0;
}

/* A closed pool goes once its last key (hence its last connection) is gone. */
static void pool_maybe_release(struct zt_pool *p)
{
	if (!p->closed || p->releasing || p->nconns || p->nkeys)
		return;
	zt_tls_client_unref(p->tls);
	free(p->buckets);
	free(p);
}

void zt_pool_free(struct zt_pool *p)
{
	struct zt_pool_result res = {.err = ZT_E_CANCELLED, .reason = "pool closed"};

	if (!p || p->closed)
		return;
	p->closed = true;
	p->releasing = true;
	/* Pin every key while callbacks run: they may cancel requests of other keys. */
	for (size_t i = 0; i < p->nbuckets; i++)
		for (struct pkey *k = p->buckets[i]; k; k = k->hnext)
			k->busy++;
	for (size_t i = 0; i < p->nbuckets; i++) {
		for (struct pkey *k = p->buckets[i]; k; k = k->hnext) {
			struct zt_pool_req *r;
			zt_defer_stop(&k->dispatch);
			while ((r = wq_pop(&k->wait)))
				req_finish(r, NULL, &res);
		}
	}
	for (size_t i = 0; i < p->nbuckets; i++) {
		for (struct pkey *k = p->buckets[i]; k; k = k->hnext) {
			struct pconn *pc, *next;
			for (pc = k->head; pc; pc = next) {
				next = pc->next;
				if (pc->h2) {
					/* Closes from the loop; on_h2_close unlinks it. */
					zt_h2_conn_close(pc->h2, "pool closed");
				} else {
					zt_h2_connect_cancel(pc->conn);
					conn_unlink(pc);
				}
			}
		}
	}
	/* Keys without connections go now, the others with their last connection. */
	for (size_t i = 0; i < p->nbuckets; i++) {
		struct pkey *k, *next;
		for (k = p->buckets[i]; k; k = next) {
			next = k->hnext;
			k->busy--;
			key_maybe_free(k);
		}
	}
	p->releasing = false;
	pool_maybe_release(p);
}

int zt_pool_connect(struct zt_pool *p, const struct zt_pool_key *key, const struct zt_h2_header *h,
                    size_t n, const struct zt_h2_stream_cbs *cbs, void *arg, zt_pool_ready_cb ready,
                    void *ready_arg, struct zt_pool_req **req)
{
	struct zt_pool_req *r;
	struct pkey *k;
	size_t bytes = 0;
	char *store;

	*req = NULL;
	if (p->closed)
		return ZT_E_STATE;
	if (!key->identity || key->n_dst_ids == 0 || key->n_dst_ids > ZT_TLS_MAX_EXPECTED ||
	    !key->dst_ids || !key->dst.ip.family || key->dst.port == 0 || n == 0 ||
	    n > MAX_HEADERS || !ready)
		return ZT_E_RANGE;
	for (size_t i = 0; i < n; i++)
		bytes += h[i].name_len + h[i].value_len + 2;
	/* One block: the request, its header array, then the NUL-terminated copies. */
	r = xcalloc(1, sizeof(*r) + n * sizeof(*r->h) + bytes);
	r->h = (struct zt_h2_header *)(r + 1);
	store = (char *)(r->h + n);
	for (size_t i = 0; i < n; i++) {
		r->h[i] = (struct zt_h2_header){store, h[i].name_len, NULL, h[i].value_len};
		memcpy(store, h[i].name, h[i].name_len);
		store += h[i].name_len + 1;
		r->h[i].value = store;
		memcpy(store, h[i].value, h[i].value_len);
		store += h[i].value_len + 1;
	}
	r->n = n;
	r->pool = p;
	if (cbs)
		r->cbs = *cbs;
	r->arg = arg;
	r->ready = ready;
	r->ready_arg = ready_arg;
	zt_live_inc(&zt_live_pool_request);
	k = key_get(p, key);
	r->key = k;
	wq_push(&k->wait, r, false);
	schedule_dispatch(k);
	*req = r;
	return 0;
}

void zt_pool_req_cancel(struct zt_pool_req *r)
{
	struct pkey *k = r->key;

	wq_remove(r);
	req_free(r);
	key_maybe_free(k);
}

void zt_pool_get_stats(const struct zt_pool *p, struct zt_pool_stats *out)
{
	*out = p->stats;
	out->connections = p->nconns;
	out->waiting = p->nwaiting;
	out->keys = p->nkeys;
}

static json_t *spiffe_json(const struct zt_spiffe *id)
{
	char buf[ZT_SPIFFE_STR_SIZE];

	return zt_spiffe_format(id, buf, sizeof(buf)) < 0 ? json_null() : json_string(buf);
}

static json_t *conn_json(const struct pconn *pc, uint64_t now)
{
	enum pc_state st = pc->state == PC_CONNECTING && pc->conn &&
	                                   zt_h2_connect_stage(pc->conn) != ZT_H2_CONNECT_TCP
	                           ? PC_TLS
	                           : pc->state;

	return json_pack("{s:s, s:I, s:I, s:I, s:o, s:I, s:I}", "state", state_names[st],
	                 "streams", (json_int_t)(pc->h2 ? zt_h2_conn_streams(pc->h2) : 0),
	                 "max_streams", (json_int_t)(pc->h2 ? stream_limit(pc) : 0),
	                 "streams_total", (json_int_t)pc->streams_total, "peer",
	                 pc->has_peer ? spiffe_json(&pc->peer) : json_null(), "age_ms",
	                 (json_int_t)(now - pc->started_ms), "unused_ms",
	                 (json_int_t)(now - pc->used_ms));
}

static json_t *key_json(const struct pkey *k, uint64_t now)
{
	char dst[ZT_ADDR_STRLEN], src[ZT_IP_STRLEN];
	json_t *ids = json_array(), *conns = json_array();

	zt_addr_format(&k->dst, dst, sizeof(dst));
	for (size_t i = 0; i < k->n_dst; i++)
		json_array_append_new(ids, spiffe_json(&k->dst_ids[i]));
	for (const struct pconn *pc = k->head; pc; pc = pc->next)
		json_array_append_new(conns, conn_json(pc, now));
	return json_pack("{s:o, s:s, s:o, s:o, s:I, s:o}", "source", spiffe_json(&k->src_id),
	                 "destination", dst, "destination_identities", ids, "source_ip",
	                 k->src_ip.family && zt_ip_format(&k->src_ip, src, sizeof(src)) > 0
	                         ? json_string(src)
	                         : json_null(),
	                 "waiting", (json_int_t)k->wait.n, "connections", conns);
}

json_t *zt_pool_dump(const struct zt_pool *p)
{
	uint64_t now = zt_loop_now(p->loop);
	json_t *keys = json_array();

	for (size_t i = 0; i < p->nbuckets; i++)
		for (const struct pkey *k = p->buckets[i]; k; k = k->hnext)
			json_array_append_new(keys, key_json(k, now));
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "connects",
	                 (json_int_t)p->stats.connects, "opened", (json_int_t)p->stats.opened,
	                 "failed", (json_int_t)p->stats.failed, "streams",
	                 (json_int_t)p->stats.streams, "reused", (json_int_t)p->stats.reused,
	                 "waiting", (json_int_t)p->nwaiting, "keys", keys);
}
