/* Hostname resolver with a TTL cache. An entry per name holds either the last answer (with
 * its expiry) or a query in flight and the requests waiting on it. Every request completes
 * through its own defer, so callbacks never run inside zt_dns_resolve's caller. */
#include "dns/resolver.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "dns/lookup.h"
#include "dns/message.h"
#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "state/workload.h"
#include "telemetry/metrics.h"

ZT_LOG_MODULE("dns");
ZT_LIVE_DEFINE(dns_resolve_req);

struct entry;

struct zt_dns_resolve_req {
	TAILQ_ENTRY(zt_dns_resolve_req) link;
	struct entry *e; /* set while waiting on e's query */
	struct zt_dns_resolver *r;
	zt_dns_resolve_cb cb;
	void *arg;
	struct zt_defer done;
	struct zt_ip ips[ZT_DNS_RESOLVER_MAX_IPS];
	size_t n;
	int err;
};

TAILQ_HEAD(waiters, zt_dns_resolve_req);

struct entry {
	char name[ZT_DNS_NAME_MAX + 1];
	struct zt_dns_resolver *r;
	struct zt_ip ips[ZT_DNS_RESOLVER_MAX_IPS];
	size_t n;
	int err;
	uint64_t expires_ms;
	bool pending;
	uint16_t qtype, id;
	struct zt_dns_upstream_req *up;
	struct waiters waiters;
};

struct zt_dns_resolver {
	struct zt_loop *loop;
	struct zt_dns_upstream *up;
	bool ipv6;
	struct zt_hmap entries; /* name -> struct entry * */
};

struct zt_dns_resolver *zt_dns_resolver_new(struct zt_loop *loop,
                                            const struct zt_dns_upstream_opts *o, bool ipv6)
{
	struct zt_dns_resolver *r = xcalloc(1, sizeof(*r));

	r->loop = loop;
	r->up = zt_dns_upstream_new(loop, o);
	r->ipv6 = ipv6;
	return r;
}

static void req_free(struct zt_dns_resolve_req *q)
{
	zt_defer_stop(&q->done);
	free(q);
	zt_live_dec(&zt_live_dns_resolve_req);
}

static void entry_free(struct entry *e)
{
	struct zt_dns_resolve_req *q;

	zt_dns_upstream_cancel(e->up);
	while ((q = TAILQ_FIRST(&e->waiters))) {
		TAILQ_REMOVE(&e->waiters, q, link);
		req_free(q);
	}
	free(e);
}

void zt_dns_resolver_free(struct zt_dns_resolver *r)
{
	size_t pos = 0;
	const char *k;
	void *v;

	if (!r)
		return;
	while (zt_hmap_next(&r->entries, &pos, &k, &v))
		entry_free(v);
	zt_hmap_clear(&r->entries);
	zt_dns_upstream_free(r->up);
	free(r);
}

size_t zt_dns_resolver_cached(const struct zt_dns_resolver *r)
{
	return zt_hmap_count(&r->entries);
}

static void on_done(struct zt_defer *d, void *arg)
{
	struct zt_dns_resolve_req *q = arg;

	(void)d;
	q->cb(q->arg, q->err, q->ips, q->n);
	req_free(q);
}

/* Hands e's result to q, through q's defer. */
static void deliver(struct entry *e, struct zt_dns_resolve_req *q)
{
	q->e = NULL;
	q->err = e->err;
	q->n = e->n;
	memcpy(q->ips, e->ips, e->n * sizeof(*e->ips));
	zt_defer_start(e->r->loop, &q->done, on_done, q);
}

static void finish(struct entry *e, int err, uint32_t ttl)
{
	struct zt_dns_resolve_req *q;

	e->pending = false;
	e->up = NULL;
	e->err = err;
	if (err == 0 && e->n == 0)
		e->err = ZT_E_NOTFOUND;
	if (e->err)
		ttl = ZT_DNS_RESOLVER_NEG_TTL;
	else if (ttl < ZT_DNS_RESOLVER_MIN_TTL)
		ttl = ZT_DNS_RESOLVER_MIN_TTL;
	e->expires_ms = zt_loop_now(e->r->loop) + (uint64_t)ttl * 1000;
	zt_debug("resolved %s: %zu address(es), %s, cached %us", e->name, e->n,
	         e->err ? zt_strerror(e->err) : "ok", ttl);
	while ((q = TAILQ_FIRST(&e->waiters))) {
		TAILQ_REMOVE(&e->waiters, q, link);
		deliver(e, q);
	}
}

static int query(struct entry *e, uint16_t qtype);

static void on_answer(void *arg, int err, const uint8_t *resp, size_t len)
{
	struct entry *e = arg;
	uint32_t ttl = 0;
	int rcode = 0, n = 0;

	e->up = NULL;
	if (err == 0) {
		n = zt_dns_response_addrs(resp, len, e->ips, ZT_DNS_RESOLVER_MAX_IPS, &ttl, &rcode);
		if (n < 0)
			err = ZT_E_PROTO;
		else if (rcode != ZT_DNS_RCODE_NOERROR && rcode != ZT_DNS_RCODE_NXDOMAIN)
			err = ZT_E_PROTO;
	}
	e->n = n > 0 ? (size_t)n : 0;
	if (e->n == 0 && e->qtype == ZT_DNS_TYPE_A && e->r->ipv6 && !err &&
	    rcode != ZT_DNS_RCODE_NXDOMAIN && query(e, ZT_DNS_TYPE_AAAA) == 0)
		return;
	finish(e, err, ttl);
}

static int query(struct entry *e, uint16_t qtype)
{
	uint8_t *wire = NULL;
	size_t len = 0;
	int rc;

	e->qtype = qtype;
	e->id = zt_dns_random_id();
	if (zt_dns_query_new(e->name, qtype, e->id, &wire, &len) < 0)
		return ZT_E_PARSE;
	rc = zt_dns_upstream_send(e->r->up, wire, len, e->id, on_answer, e, &e->up);
	free(wire);
	return rc;
}

/* Room for one more name: drops expired entries, then any settled one. */
static bool make_room(struct zt_dns_resolver *r)
{
	uint64_t now = zt_loop_now(r->loop);
	struct entry *victim = NULL;
	size_t pos = 0;
	const char *k;
	void *v;

	if (zt_hmap_count(&r->entries) < ZT_DNS_RESOLVER_MAX)
		return true;
	while (zt_hmap_next(&r->entries, &pos, &k, &v)) {
		struct entry *e = v;
		if (e->pending)
			continue;
		if (!victim || e->expires_ms <= now)
			victim = e;
		if (e->expires_ms <= now)
			break;
	}
	if (!victim)
		return false;
	zt_hmap_del(&r->entries, victim->name);
	entry_free(victim);
	return true;
}

int zt_dns_resolve(struct zt_dns_resolver *r, const char *host, zt_dns_resolve_cb cb, void *arg,
                   struct zt_dns_resolve_req **out)
{
	char name[ZT_DNS_NAME_MAX + 1];
	struct zt_dns_resolve_req *q;
	struct entry *e;
	int rc;

	*out = NULL;
	if (zt_dns_name_norm(host, name, sizeof(name)) < 0)
		return ZT_E_PARSE;
	q = xcalloc(1, sizeof(*q));
	zt_live_inc(&zt_live_dns_resolve_req);
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	*out = q;
	e = zt_hmap_get(&r->entries, name);
	if (e && !e->pending && zt_loop_now(r->loop) < e->expires_ms) {
		deliver(e, q);
		return 0;
	}
	if (!e) {
		if (!make_room(r)) {
			q->err = ZT_E_TOOBIG;
			zt_defer_start(r->loop, &q->done, on_done, q);
			return 0;
		}
		e = xcalloc(1, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->r = r;
		TAILQ_INIT(&e->waiters);
		zt_hmap_put(&r->entries, e->name, e);
	}
	q->e = e;
	TAILQ_INSERT_TAIL(&e->waiters, q, link);
	if (e->pending)
		return 0;
	e->pending = true;
	e->n = 0;
	if ((rc = query(e, ZT_DNS_TYPE_A)) < 0)
		finish(e, rc, 0);
	return 0;
}

void zt_dns_resolve_cancel(struct zt_dns_resolve_req *q)
{
	if (!q)
		return;
	if (q->e)
		TAILQ_REMOVE(&q->e->waiters, q, link);
	req_free(q);
}

void zt_dns_count_on_demand(struct zt_metrics *m, const struct zt_workload *src, const char *host)
{
	static const char *const names[] = {"source_workload",
	                                    "source_canonical_service",
	                                    "source_canonical_revision",
	                                    "source_workload_namespace",
	                                    "source_principal",
	                                    "source_app",
	                                    "source_version",
	                                    "source_cluster",
	                                    "hostname"};
	char principal[ZT_SPIFFE_STR_SIZE] = "";
	struct zt_metric *f;

	if (!m)
		return;
	if (!(f = zt_metrics_find(m, "istio_on_demand_dns_total")) &&
	    zt_metrics_register(m, &f, "istio_on_demand_dns_total",
	                        "Total number of DNS requests made on demand for hostname "
	                        "workloads.",
	                        ZT_METRIC_COUNTER, names, 9) < 0)
		return;
	if (src)
		zt_spiffe_format(src->identity, principal, sizeof(principal));
	const char *v[9] = {src ? src->workload_name : NULL,
	                    src ? src->canonical_name : NULL,
	                    src ? src->canonical_revision : NULL,
	                    src ? src->ns : NULL,
	                    principal,
	                    src ? src->canonical_name : NULL,
	                    src ? src->canonical_revision : NULL,
	                    src ? src->cluster_id : NULL,
	                    host};
	zt_metric_add(zt_metric_child(f, v), 1);
}
