/* Certificate cache keyed by SPIFFE URI. Invariants: an entry is in at most one of {queued,
 * in flight, backing off}; m->inflight counts entries in flight and never exceeds
 * max_inflight; waiters are attached only while the entry has no valid certificate and every
 * waiter callback runs from its own defer, so no user callback runs inside an API call. An
 * entry removed while one of its callbacks runs (pinned) is freed when the callback returns.
 * Threads: everything runs on the manager's loop except zt_certmgr_get and the fetch calls
 * made from another loop's thread. Such a get reads the table under m->lock, which the
 * manager's thread holds whenever it adds or removes an entry or swaps a certificate; such a
 * fetch is a "remote" handle: posted to the manager's loop, which runs an ordinary fetch and
 * posts the outcome back to the requester's loop, where it is delivered unless cancelled. */
#include "cert/manager.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "protocol/csr.h"
#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("cert");

enum prio { RT, WARMUP, BG, NPRIO };

#define MIN_REFRESH_MS  1000 /* refresh never sooner than this after a new certificate */
#define MAX_FUTURE_SKEW 300  /* seconds a notBefore may lie ahead of our clock */

struct zt_certmgr_fetch {
	struct entry *e; /* NULL once the outcome is decided */
	LIST_ENTRY(zt_certmgr_fetch) link; /* in e->waiters while e is set */
	zt_certmgr_fetch_cb cb;
	void *arg;
	struct zt_loop *loop; /* where cb runs */
	struct zt_defer defer;
	int err;
	struct zt_tls_identity *cert;
	/* A remote fetch (requested from another loop's thread). */
	bool remote;
	atomic_int refs;                /* the delivery's, and a cancel's in flight */
	bool cancelled;                 /* requester's thread only */
	struct zt_certmgr *m;           /* manager's thread only from here down */
	struct zt_spiffe id;
	struct zt_certmgr_fetch *inner; /* the fetch run for it, until it settles */
};

struct entry {
	struct zt_certmgr *m;
	TAILQ_ENTRY(entry) qlink;
	int qprio; /* -1: not queued */
	struct zt_spiffe id;
	char uri[ZT_SPIFFE_STR_SIZE];
	unsigned refs; /* prefetch references */
	unsigned pins; /* callbacks running on this entry */
	bool removed;
	struct zt_tls_identity *cert;
	size_t chain_len;
	/* the request in flight */
	bool inflight, in_sign, answered;
	void *handle;
	struct zt_csr csr;
	/* failures */
	bool retrying;
	unsigned failures;
	int last_err;
	char last_error[ZT_SPIFFE_STR_SIZE + 256];
	int64_t next_at_ms;     /* wall clock of the next refresh or retry; 0: none */
	struct zt_timer timer;  /* refresh or retry */
	struct zt_timer expiry; /* notAfter of cert */
	LIST_HEAD(, zt_certmgr_fetch) waiters;
};

struct zt_certmgr {
	struct zt_loop *loop;
	struct zt_certmgr_opts o;
	struct zt_hmap entries; /* URI -> struct entry */
	TAILQ_HEAD(, entry) queue[NPRIO];
	size_t inflight;
	bool held; /* zt_certmgr_hold: only RealTime requests start */
	struct zt_defer dispatch;
	uint64_t rng;
	pthread_mutex_t lock; /* entries' membership and certificates, for other threads */
};

const char *zt_cert_state_name(enum zt_cert_state s)
{
	switch (s) {
	case ZT_CERT_INITIALIZING:
		return "initializing";
	case ZT_CERT_AVAILABLE:
		return "available";
	case ZT_CERT_REFRESHING:
		return "refreshing";
	case ZT_CERT_RETRYING:
		return "failed-retrying";
	case ZT_CERT_EXPIRED:
		return "expired";
	}
	return "unknown";
}

void zt_certmgr_opts_init(struct zt_certmgr_opts *o)
{
	*o = (struct zt_certmgr_opts){.ttl_s = 86400,
	                              .max_inflight = 8,
	                              .backoff_base_ms = 500,
	                              .backoff_cap_ms = 150000,
	                              .jitter_pct = 20};
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool valid(const struct entry *e)
{
	return e->cert && wall_ms() < zt_tls_identity_not_after(e->cert) * 1000;
}

static void pin(struct entry *e)
{
	e->pins++;
}

static void entry_free(struct entry *e)
{
	zt_tls_identity_unref(e->cert);
	free(e);
}

static void unpin(struct entry *e)
{
	if (--e->pins == 0 && e->removed)
		entry_free(e);
}

/* ---- jitter ------------------------------------------------------------------------------- */

/* xorshift64*: plenty for spreading retries; never used for anything secret. */
static uint64_t rng_next(struct zt_certmgr *m)
{
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return m->rng * 0x2545F4914F6CDD1DULL;
}

/* base·2^(failures-1), capped, then scaled by 1 ± jitter (spec §4). */
static uint64_t backoff_ms(struct zt_certmgr *m, unsigned failures)
{
	uint64_t interval = m->o.backoff_cap_ms;
	unsigned k = failures > 0 ? failures - 1 : 0;
	double u, d;

	if (k < 40 && (m->o.backoff_base_ms << k) >> k == m->o.backoff_base_ms &&
	    (m->o.backoff_base_ms << k) < m->o.backoff_cap_ms)
		interval = m->o.backoff_base_ms << k;
	u = (double)(rng_next(m) >> 11) / (double)(1ULL << 53); /* [0, 1) */
	d = (double)interval * (1.0 + (double)m->o.jitter_pct / 100.0 * (2.0 * u - 1.0));
	return d < 1.0 ? 1 : (uint64_t)d;
}

/* ---- table and queues --------------------------------------------------------------------- */

static struct entry *lookup(struct zt_certmgr *m, const struct zt_spiffe *id, bool create)
{
	char uri[ZT_SPIFFE_STR_SIZE];
	struct entry *e;

	if (zt_spiffe_format(id, uri, sizeof(uri)) < 0)
		return NULL;
	e = zt_hmap_get(&m->entries, uri);
	if (e || !create)
		return e;
	e = xcalloc(1, sizeof(*e));
	e->m = m;
	e->id = *id;
	memcpy(e->uri, uri, sizeof(uri));
	e->qprio = -1;
	pthread_mutex_lock(&m->lock);
	zt_hmap_put(&m->entries, uri, e);
	pthread_mutex_unlock(&m->lock);
	return e;
}

static void q_remove(struct entry *e)
{
	struct zt_certmgr *m = e->m;

	if (e->qprio < 0)
		return;
	TAILQ_REMOVE(&m->queue[e->qprio], e, qlink);
	e->qprio = -1;
}

static void q_push(struct entry *e, int prio)
{
	struct zt_certmgr *m = e->m;

	e->qprio = prio;
	TAILQ_INSERT_TAIL(&m->queue[prio], e, qlink);
}

static void on_dispatch(struct zt_defer *d, void *arg);

static void schedule_dispatch(struct zt_certmgr *m)
{
	zt_defer_start(m->loop, &m->dispatch, on_dispatch, m);
}

/* Queues a request for e at prio, or raises the priority of the one already queued. */
static void request(struct entry *e, int prio)
{
	if (e->inflight || e->removed)
		return;
	if (e->qprio >= 0) {
		if (prio < e->qprio) {
			q_remove(e);
			q_push(e, prio);
		}
		return;
	}
	q_push(e, prio);
	schedule_dispatch(e->m);
}

/* ---- waiters ------------------------------------------------------------------------------ */

static void fetch_free(struct zt_certmgr_fetch *f)
{
	zt_defer_stop(&f->defer);
	zt_tls_identity_unref(f->cert);
	free(f);
}

static void on_fetch_done(struct zt_defer *d, void *arg)
{
	struct zt_certmgr_fetch *f = arg;

	(void)d;
	f->cb(f->arg, f->err, f->cert);
	fetch_free(f);
}

/* Decides f's outcome; its callback runs from the loop. */
static void fetch_settle(struct zt_certmgr_fetch *f, int err, struct zt_tls_identity *cert)
{
	f->err = err;
	f->cert = cert ? zt_tls_identity_ref(cert) : NULL;
	zt_defer_start(f->loop, &f->defer, on_fetch_done, f);
}

static void settle_waiters(struct entry *e, int err, struct zt_tls_identity *cert)
{
	struct zt_certmgr_fetch *f;

	while ((f = LIST_FIRST(&e->waiters))) {
		LIST_REMOVE(f, link);
		f->e = NULL;
		fetch_settle(f, err, cert);
	}
}

/* ---- entry lifecycle ---------------------------------------------------------------------- */

static void entry_remove(struct entry *e)
{
	struct zt_certmgr *m = e->m;

	pthread_mutex_lock(&m->lock);
	zt_hmap_del(&m->entries, e->uri);
	pthread_mutex_unlock(&m->lock);
	q_remove(e);
	if (e->inflight) {
		if (!e->in_sign)
			m->o.source.cancel(m->o.source.src, e->handle);
		e->inflight = false;
		m->inflight--;
		schedule_dispatch(m);
	}
	zt_timer_stop(&e->timer);
	zt_timer_stop(&e->expiry);
	zt_csr_clear(&e->csr);
	settle_waiters(e, ZT_E_CANCELLED, NULL);
	e->removed = true;
	zt_debug("%s: dropped", e->uri);
	if (e->pins == 0)
		entry_free(e);
}

static void on_retry(struct zt_timer *t, void *arg)
{
	struct entry *e = arg;

	(void)t;
	e->retrying = false;
	e->next_at_ms = 0;
	request(e, valid(e) ? BG : !LIST_EMPTY(&e->waiters) ? RT : WARMUP);
}

static void on_refresh(struct zt_timer *t, void *arg)
{
	struct entry *e = arg;

	(void)t;
	e->next_at_ms = 0;
	if (e->refs == 0 && LIST_EMPTY(&e->waiters)) {
		entry_remove(e); /* fetched on demand only: not worth keeping fresh */
		return;
	}
	request(e, BG);
}

static void on_expiry(struct zt_timer *t, void *arg)
{
	struct entry *e = arg;
	struct zt_certmgr *m = e->m;

	(void)t;
	zt_warn("%s: certificate %s expired", e->uri, zt_tls_identity_serial(e->cert));
	if (m->o.on_change) {
		pin(e);
		m->o.on_change(m->o.change_arg, &e->id, NULL);
		unpin(e);
	}
}

static void failed(struct entry *e, int err, const char *msg)
{
	struct zt_certmgr *m = e->m;
	uint64_t delay;

	e->failures++;
	e->last_err = err;
	snprintf(e->last_error, sizeof(e->last_error), "%s",
	         msg && msg[0] ? msg : zt_strerror(err));
	if (!valid(e))
		settle_waiters(e, err, NULL);
	if (e->refs == 0) {
		zt_warn("%s: certificate request failed: %s", e->uri, e->last_error);
		entry_remove(e);
		return;
	}
	delay = backoff_ms(m, e->failures);
	zt_warn("%s: certificate request failed (%u in a row), retrying in %" PRIu64 " ms: %s",
	        e->uri, e->failures, delay, e->last_error);
	e->retrying = true;
	e->next_at_ms = wall_ms() + (int64_t)delay;
	zt_timer_start(m->loop, &e->timer, delay, on_retry, e);
}

static void installed(struct entry *e, struct zt_tls_identity *id, size_t chain_len)
{
	struct zt_certmgr *m = e->m;
	int64_t nb = zt_tls_identity_not_before(id) * 1000,
	        na = zt_tls_identity_not_after(id) * 1000;
	int64_t now = wall_ms(), refresh = nb + (na - nb) / 2, delay = refresh - now;

	pthread_mutex_lock(&m->lock);
	zt_tls_identity_unref(e->cert);
	e->cert = id;
	pthread_mutex_unlock(&m->lock);
	e->chain_len = chain_len;
	e->failures = 0;
	e->last_err = 0;
	e->last_error[0] = '\0';
	e->retrying = false;
	if (delay < MIN_REFRESH_MS)
		delay = MIN_REFRESH_MS;
	e->next_at_ms = now + delay;
	zt_timer_start(m->loop, &e->timer, (uint64_t)delay, on_refresh, e);
	zt_timer_start(m->loop, &e->expiry, (uint64_t)(na - now), on_expiry, e);
	zt_info("%s: new certificate %s, valid until %" PRId64 ", refresh in %" PRId64 " s", e->uri,
	        zt_tls_identity_serial(id), na / 1000, delay / 1000);
	settle_waiters(e, 0, id);
	if (m->o.on_change)
		m->o.on_change(m->o.change_arg, &e->id, id);
}

/* ---- responses ---------------------------------------------------------------------------- */

static size_t count_certs(const char *pem)
{
	size_t n = 0;

	while ((pem = strstr(pem, "-----BEGIN CERTIFICATE-----"))) {
		n++;
		pem++;
	}
	return n;
}

/* Checks a CA answer for e (spec §4): leaf first, root bundle last, the leaf for e's identity
 * with both EKUs, chaining to the bundle, currently valid. Returns 0 and the identity in *out,
 * or an error with why filled. */
static int build(struct entry *e, char **chain, size_t n, struct zt_tls_identity **out,
                 size_t *chain_len, char *why, size_t whylen)
{
	char got[ZT_SPIFFE_STR_SIZE];
	char *certs = NULL;
	size_t len = 0, off = 0;
	struct zt_tls_identity *id = NULL;
	int64_t now = wall_ms() / 1000;
	uint32_t xku;
	X509 *leaf;
	int rc;

	*out = NULL;
	if (n < 2) {
		snprintf(why, whylen,
		         "CA returned %zu element(s): a leaf and a root bundle are needed", n);
		return ZT_E_PROTO;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		size_t l = strlen(chain[i]);

		if (l > ZT_TLS_MAX_PEM || len + l + 1 > ZT_TLS_MAX_PEM) {
			snprintf(why, whylen, "certificate chain too large");
			return ZT_E_TOOBIG;
		}
		len += l + 1;
	}
	certs = xmalloc(len + 1);
	for (size_t i = 0; i + 1 < n; i++) {
		size_t l = strlen(chain[i]);

		memcpy(certs + off, chain[i], l);
		off += l;
		if (l == 0 || chain[i][l - 1] != '\n')
			certs[off++] = '\n';
	}
	certs[off] = '\0';
	rc = zt_tls_identity_new_pkey(&id, certs, off, e->csr.key, chain[n - 1],
	                              strlen(chain[n - 1]));
	if (rc < 0) {
		snprintf(why, whylen, "%s",
		         rc == ZT_E_IDENTITY
		                 ? "certificate has no SPIFFE SAN, does not match the key "
		                   "or does not chain to the returned roots"
		                 : "unparsable certificate chain");
		goto out;
	}
	rc = ZT_E_IDENTITY;
	if (!zt_spiffe_eq(zt_tls_identity_spiffe(id), &e->id)) {
		zt_spiffe_format(zt_tls_identity_spiffe(id), got, sizeof(got));
		snprintf(why, whylen, "certificate is for %s, not the identity requested", got);
		goto out;
	}
	leaf = zt_tls_identity_leaf(id);
	xku = X509_get_extended_key_usage(leaf);
	if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) || !(xku & XKU_SSL_SERVER) ||
	    !(xku & XKU_SSL_CLIENT)) {
		snprintf(why, whylen,
		         "certificate lacks extended key usage serverAuth and clientAuth");
		goto out;
	}
	if (zt_tls_identity_not_after(id) <= now ||
	    zt_tls_identity_not_after(id) <= zt_tls_identity_not_before(id) ||
	    zt_tls_identity_not_before(id) > now + MAX_FUTURE_SKEW) {
		snprintf(why, whylen, "certificate not valid now");
		goto out;
	}
	*chain_len = count_certs(certs);
	*out = id;
	id = NULL;
	rc = 0;
out:
	zt_tls_identity_unref(id);
	free(certs);
	return rc;
}

static void on_answer(void *arg, int err, const char *msg, char **chain, size_t n)
{
	struct entry *e = arg;
	struct zt_certmgr *m = e->m;
	struct zt_tls_identity *id = NULL;
	size_t chain_len = 0;
	char why[ZT_SPIFFE_STR_SIZE + 256];

	e->answered = true;
	e->inflight = false;
	e->handle = NULL;
	m->inflight--;
	schedule_dispatch(m);
	pin(e);
	if (err < 0)
		failed(e, err, msg);
	else if ((err = build(e, chain, n, &id, &chain_len, why, sizeof(why))) < 0)
		failed(e, err, why);
	else
		installed(e, id, chain_len);
	zt_csr_clear(&e->csr);
	zt_cert_chain_free(chain, n);
	unpin(e);
}

static void start(struct entry *e)
{
	struct zt_certmgr *m = e->m;
	void *handle = NULL;
	int rc;

	pin(e);
	if ((rc = zt_csr_generate(&e->csr, &e->id)) < 0) {
		failed(e, rc, "cannot generate a CSR");
		goto out;
	}
	e->inflight = true;
	e->answered = false;
	e->in_sign = true;
	m->inflight++;
	zt_debug("%s: requesting a certificate", e->uri);
	rc = m->o.source.sign(m->o.source.src, e->uri, e->csr.csr_pem, m->o.ttl_s, on_answer, e,
	                      &handle);
	e->in_sign = false;
	if (e->answered)
		goto out;
	if (e->removed) { /* forgotten from inside sign(): the request is no longer wanted */
		if (rc == 0)
			m->o.source.cancel(m->o.source.src, handle);
		goto out;
	}
	if (rc < 0) {
		e->inflight = false;
		m->inflight--;
		zt_csr_clear(&e->csr);
		failed(e, rc, "certificate request not started");
		goto out;
	}
	e->handle = handle;
out:
	unpin(e);
}

static void on_dispatch(struct zt_defer *d, void *arg)
{
	struct zt_certmgr *m = arg;

	(void)d;
	while (m->inflight < m->o.max_inflight) {
		struct entry *e = NULL;

		for (int p = 0; p < (m->held ? WARMUP : NPRIO) && !e; p++)
			e = TAILQ_FIRST(&m->queue[p]);
		if (!e)
			break;
		q_remove(e);
		start(e);
	}
}

/* ---- API ---------------------------------------------------------------------------------- */

void zt_certmgr_hold(struct zt_certmgr *m, bool hold)
{
	m->held = hold;
	if (!hold)
		zt_defer_start(m->loop, &m->dispatch, on_dispatch, m);
}

int zt_certmgr_new(struct zt_certmgr **out, struct zt_loop *loop, const struct zt_certmgr_opts *o)
{
	struct zt_certmgr *m;

	*out = NULL;
	if (!o->source.sign || !o->source.cancel || o->ttl_s <= 0 || o->max_inflight == 0 ||
	    o->backoff_base_ms == 0 || o->backoff_cap_ms < o->backoff_base_ms ||
	    o->jitter_pct > 100)
		return ZT_E_RANGE;
	m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	pthread_mutex_init(&m->lock, NULL);
	for (int p = 0; p < NPRIO; p++)
		TAILQ_INIT(&m->queue[p]);
	m->o = *o;
	zt_hmap_init(&m->entries);
	if (getrandom(&m->rng, sizeof(m->rng), GRND_NONBLOCK) != sizeof(m->rng))
		m->rng = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32);
	m->rng |= 1; /* xorshift must not start at zero */
	*out = m;
	return 0;
}

void zt_certmgr_free(struct zt_certmgr *m)
{
	if (!m)
		return;
	for (;;) {
		size_t pos = 0;
		void *e;

		if (!zt_hmap_next(&m->entries, &pos, NULL, &e))
			break;
		entry_remove(e);
	}
	zt_defer_stop(&m->dispatch);
	zt_hmap_clear(&m->entries);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int zt_certmgr_prefetch(struct zt_certmgr *m, const struct zt_spiffe *id)
{
	struct entry *e = lookup(m, id, true);

	if (!e)
		return ZT_E_PARSE;
	e->refs++;
	if (!valid(e) && !e->retrying)
		request(e, WARMUP);
	return 0;
}

int zt_certmgr_forget(struct zt_certmgr *m, const struct zt_spiffe *id)
{
	struct entry *e = lookup(m, id, false);

	if (!e)
		return ZT_E_NOTFOUND;
	if (e->refs == 0)
		return ZT_E_STATE;
	if (--e->refs == 0)
		entry_remove(e);
	return 0;
}

struct zt_tls_identity *zt_certmgr_get(struct zt_certmgr *m, const struct zt_spiffe *id)
{
	struct zt_tls_identity *cert;
	struct entry *e;

	if (zt_loop_on_thread(m->loop)) {
		e = lookup(m, id, false);
		return e && valid(e) ? zt_tls_identity_ref(e->cert) : NULL;
	}
	pthread_mutex_lock(&m->lock);
	e = lookup(m, id, false);
	cert = e && valid(e) ? zt_tls_identity_ref(e->cert) : NULL;
	pthread_mutex_unlock(&m->lock);
	return cert;
}

/* ---- fetches from another thread ---------------------------------------------------------- */

static void remote_unref(struct zt_certmgr_fetch *f)
{
	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	zt_tls_identity_unref(f->cert);
	zt_loop_unref(f->loop);
	free(f);
}

/* Requester's loop: the outcome, unless cancelled meanwhile. */
static void remote_deliver(void *arg)
{
	struct zt_certmgr_fetch *f = arg;

	if (!f->cancelled)
		f->cb(f->arg, f->err, f->cert);
	remote_unref(f);
}

/* Manager's loop: hands the outcome to the requester's loop; if that loop is gone, nobody
 * waits for it any more. */
static void remote_settled(struct zt_certmgr_fetch *f, int err, struct zt_tls_identity *cert)
{
	f->inner = NULL;
	f->err = err;
	f->cert = cert ? zt_tls_identity_ref(cert) : NULL;
	if (zt_loop_post(f->loop, remote_deliver, f) < 0)
		remote_unref(f);
}

static void on_remote_done(void *arg, int err, struct zt_tls_identity *cert)
{
	remote_settled(arg, err, cert);
}

static void remote_start(void *arg)
{
	struct zt_certmgr_fetch *f = arg;
	int rc = zt_certmgr_fetch(f->m, &f->id, on_remote_done, f, &f->inner);

	if (rc < 0)
		remote_settled(f, rc, NULL);
}

/* Manager's loop, after remote_start (posts keep their order): the requester gave up. */
static void remote_cancel(void *arg)
{
	struct zt_certmgr_fetch *f = arg;

	if (f->inner) { /* else already settled: the delivery is on its way */
		zt_certmgr_fetch_cancel(f->inner);
		remote_settled(f, ZT_E_CANCELLED, NULL);
	}
	remote_unref(f);
}

static int remote_fetch(struct zt_certmgr *m, const struct zt_spiffe *id, zt_certmgr_fetch_cb cb,
                        void *arg, struct zt_certmgr_fetch **handle)
{
	char uri[ZT_SPIFFE_STR_SIZE];
	struct zt_certmgr_fetch *f;

	if (zt_spiffe_format(id, uri, sizeof(uri)) < 0)
		return ZT_E_PARSE;
	f = xcalloc(1, sizeof(*f));
	f->remote = true;
	atomic_init(&f->refs, 1);
	f->cb = cb;
	f->arg = arg;
	f->loop = zt_loop_ref(zt_loop_current()); /* the requester's loop may go first */
	f->m = m;
	f->id = *id;
	if (zt_loop_post(m->loop, remote_start, f) < 0) {
		remote_unref(f);
		return ZT_E_CANCELLED;
	}
	*handle = f;
	return 0;
}

int zt_certmgr_fetch(struct zt_certmgr *m, const struct zt_spiffe *id, zt_certmgr_fetch_cb cb,
                     void *arg, struct zt_certmgr_fetch **handle)
{
	struct entry *e;
	struct zt_certmgr_fetch *f;

	*handle = NULL;
	if (!zt_loop_on_thread(m->loop) && zt_loop_current())
		return remote_fetch(m, id, cb, arg, handle);
	if (!(e = lookup(m, id, true)))
		return ZT_E_PARSE;
	f = xcalloc(1, sizeof(*f));
	f->cb = cb;
	f->arg = arg;
	f->loop = m->loop;
	*handle = f;
	if (valid(e)) {
		fetch_settle(f, 0, e->cert);
	} else if (e->retrying) {
		fetch_settle(f, e->last_err, NULL);
	} else {
		f->e = e;
		LIST_INSERT_HEAD(&e->waiters, f, link);
		request(e, RT);
	}
	return 0;
}

void zt_certmgr_fetch_cancel(struct zt_certmgr_fetch *f)
{
	struct entry *e;

	if (!f)
		return;
	if (f->remote) {
		/* Freed by its delivery, which now calls nothing; the manager's loop drops the
		 * request it runs for f sooner. */
		f->cancelled = true;
		atomic_fetch_add(&f->refs, 1);
		if (zt_loop_post(f->m->loop, remote_cancel, f) < 0)
			remote_unref(f);
		return;
	}
	if ((e = f->e))
		LIST_REMOVE(f, link);
	fetch_free(f);
}

static enum zt_cert_state state_of(const struct entry *e)
{
	if (e->cert && !valid(e))
		return ZT_CERT_EXPIRED;
	if (e->inflight || e->qprio >= 0)
		return e->cert ? ZT_CERT_REFRESHING : ZT_CERT_INITIALIZING;
	if (e->retrying)
		return ZT_CERT_RETRYING;
	return e->cert ? ZT_CERT_AVAILABLE : ZT_CERT_INITIALIZING;
}

int zt_certmgr_state(struct zt_certmgr *m, const struct zt_spiffe *id)
{
	struct entry *e = lookup(m, id, false);

	return e ? (int)state_of(e) : ZT_E_NOTFOUND;
}

void zt_certmgr_foreach_pending(const struct zt_certmgr *m, void (*cb)(void *arg, const char *id),
                                void *arg)
{
	size_t pos = 0;
	void *v;

	while (zt_hmap_next(&m->entries, &pos, NULL, &v)) {
		struct entry *e = v;

		if (e->refs > 0 && !valid(e))
			cb(arg, e->uri);
	}
}

static void count_one(void *arg, const char *id)
{
	(void)id;
	(*(size_t *)arg)++;
}

size_t zt_certmgr_pending(const struct zt_certmgr *m)
{
	size_t n = 0;

	zt_certmgr_foreach_pending(m, count_one, &n);
	return n;
}

size_t zt_certmgr_inflight(const struct zt_certmgr *m)
{
	return m->inflight;
}

size_t zt_certmgr_entries(const struct zt_certmgr *m)
{
	return zt_hmap_count(&m->entries);
}

static json_t *rfc3339(int64_t unix_ms)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

static int by_uri(const void *a, const void *b)
{
	return strcmp((*(struct entry *const *)a)->uri, (*(struct entry *const *)b)->uri);
}

json_t *zt_certmgr_dump(const struct zt_certmgr *m)
{
	struct entry **v = xcalloc(zt_hmap_count(&m->entries) + 1, sizeof(*v));
	json_t *arr = json_array();
	size_t n = 0, pos = 0;
	void *val;

	if (!arr)
		abort();
	while (zt_hmap_next(&m->entries, &pos, NULL, &val))
		v[n++] = val;
	qsort(v, n, sizeof(*v), by_uri);
	for (size_t i = 0; i < n; i++) {
		struct entry *e = v[i];
		json_t *o = json_object();

		json_object_set_new(o, "identity", json_string(e->uri));
		json_object_set_new(o, "state", json_string(zt_cert_state_name(state_of(e))));
		json_object_set_new(o, "refs", json_integer(e->refs));
		json_object_set_new(o, "failures", json_integer(e->failures));
		if (e->cert) {
			json_object_set_new(o, "serial",
			                    json_string(zt_tls_identity_serial(e->cert)));
			json_object_set_new(o, "notBefore",
			                    rfc3339(zt_tls_identity_not_before(e->cert) * 1000));
			json_object_set_new(o, "notAfter",
			                    rfc3339(zt_tls_identity_not_after(e->cert) * 1000));
			json_object_set_new(o, "chainLength",
			                    json_integer((json_int_t)e->chain_len));
		}
		if (e->next_at_ms)
			json_object_set_new(o, e->retrying ? "nextRetry" : "nextRefresh",
			                    rfc3339(e->next_at_ms));
		if (e->last_error[0])
			json_object_set_new(o, "lastError", json_string(e->last_error));
		json_array_append_new(arr, o);
	}
	free(v);
	return arr;
}
