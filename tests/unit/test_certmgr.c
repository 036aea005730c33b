/* Certificate manager (cert/manager.h) against a scripted in-process source that signs CSRs
 * with a test CA, on a real loop and clock: availability, refresh at half-life, backoff with
 * jitter, rejection of bad answers, expiry, forgetting, the in-flight bound and priorities,
 * fetch semantics and the change callback. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "cert/manager.h"
#include "loop_fixture.h"
#include "cert_fixture.h"
#include "protocol/csr.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/worker.h"

#define TD "cluster.local"

/* ---- scripted source ---------------------------------------------------------------------- */

enum tmode {
	T_OK,        /* leaf, intermediate, root */
	T_FAIL,      /* done with -EIO */
	T_HANG,      /* no answer until release() */
	T_WRONG_SAN, /* leaf for another identity */
	T_ONE,       /* the leaf alone */
	T_BAD_CHAIN, /* root bundle of an unrelated CA */
	T_NO_EKU,    /* leaf with serverAuth only */
	T_SYNC,      /* answers OK inside sign() */
	T_REFUSE,    /* sign() returns an error */
};

struct treq {
	TAILQ_ENTRY(treq) link;
	char id[ZT_SPIFFE_STR_SIZE];
	char *csr;
	zt_cert_done_cb done;
	void *arg;
	struct zt_timer t;
};

#define MAX_LOG 64

static struct {
	enum tmode mode;
	uint64_t delay_ms;
	long nb, na; /* validity of issued leaves, seconds from now */
	size_t inflight, max_inflight, calls, cancels;
	char order[MAX_LOG][ZT_SPIFFE_STR_SIZE];  /* identities in the order signing started */
	uint64_t at[MAX_LOG];                     /* loop time of each sign() */
	char ans_id[MAX_LOG][ZT_SPIFFE_STR_SIZE]; /* identities in the order answered */
	uint64_t ans_at[MAX_LOG];
	size_t nans;
	int64_t ttl;
	TAILQ_HEAD(, treq) reqs; /* oldest first */
} S;

static struct fx_ca root, inter, other;
static struct zt_loop *loop;
static struct zt_certmgr *mgr;

static char *dup_str(const char *s)
{
	char *d = strdup(s);

	ck_assert_ptr_nonnull(d);
	return d;
}

static void answer(struct treq *r, enum tmode mode)
{
	char **chain = calloc(3, sizeof(*chain));
	const char *san = mode == T_WRONG_SAN ? "spiffe://" TD "/ns/evil/sa/other" : r->id;
	unsigned eku = mode == T_NO_EKU ? FX_SERVER_AUTH : FX_SERVER_AUTH | FX_CLIENT_AUTH;
	size_t n = 3;

	ck_assert_ptr_nonnull(chain);
	S.inflight--;
	if (S.nans < MAX_LOG) {
		snprintf(S.ans_id[S.nans], sizeof(S.ans_id[0]), "%s", r->id);
		S.ans_at[S.nans] = zt_loop_now(loop);
	}
	S.nans++;
	if (mode == T_FAIL) {
		free(chain);
		r->done(r->arg, -EIO, "scripted failure", NULL, 0);
		return;
	}
	chain[0] = cfx_sign_csr(&inter, r->csr, san, eku, S.nb, S.na);
	chain[1] = dup_str(inter.pem);
	chain[2] = dup_str(mode == T_BAD_CHAIN ? other.root_pem : root.root_pem);
	if (mode == T_ONE) {
		free(chain[1]);
		free(chain[2]);
		n = 1;
	}
	r->done(r->arg, 0, "", chain, n);
}

static void treq_free(struct treq *r)
{
	zt_timer_stop(&r->t);
	free(r->csr);
	free(r);
}


static void on_req_timer(struct zt_timer *t, void *arg)
{
	struct treq *r = arg;

	(void)t;
	TAILQ_REMOVE(&S.reqs, r, link);
	answer(r, S.mode);
	treq_free(r);
}

static int t_sign(void *src, const char *id, const char *csr, int64_t ttl, zt_cert_done_cb done,
                  void *arg, void **handle)
{
	struct treq *r;

	(void)src;
	if (S.mode == T_REFUSE)
		return -EPERM;
	if (S.calls < MAX_LOG) {
		snprintf(S.order[S.calls], sizeof(S.order[0]), "%s", id);
		S.at[S.calls] = zt_loop_now(loop); /* when the iteration began: timers fired */
	}
	S.calls++;
	S.ttl = ttl;
	if (++S.inflight > S.max_inflight)
		S.max_inflight = S.inflight;
	r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->csr = dup_str(csr);
	r->done = done;
	r->arg = arg;
	if (S.mode == T_SYNC) {
		answer(r, T_OK);
		treq_free(r);
		return 0;
	}
	TAILQ_INSERT_TAIL(&S.reqs, r, link);
	if (S.mode != T_HANG)
		zt_timer_start(loop, &r->t, S.delay_ms, on_req_timer, r);
	*handle = r;
	return 0;
}

static void t_cancel(void *src, void *handle)
{
	struct treq *r = handle;

	(void)src;
	TAILQ_REMOVE(&S.reqs, r, link);
	treq_free(r);
	S.cancels++;
	S.inflight--;
}

/* Answers the oldest hung request with a good chain. */
static void release_one(void)
{
	struct treq *r = TAILQ_FIRST(&S.reqs);

	ck_assert_ptr_nonnull(r);
	TAILQ_REMOVE(&S.reqs, r, link);
	answer(r, T_OK);
	treq_free(r);
}

/* ---- change and fetch recorders ----------------------------------------------------------- */

static struct {
	size_t count, nulls;
	char serial[80];
	char id[ZT_SPIFFE_STR_SIZE];
} C;

static void on_change(void *arg, const struct zt_spiffe *id, struct zt_tls_identity *cert)
{
	(void)arg;
	C.count++;
	zt_spiffe_format(id, C.id, sizeof(C.id));
	if (!cert) {
		C.nulls++;
		C.serial[0] = '\0';
	} else {
		snprintf(C.serial, sizeof(C.serial), "%s", zt_tls_identity_serial(cert));
	}
}

struct got {
	bool done;
	int err;
	char serial[80];
};

static void on_fetched(void *arg, int err, struct zt_tls_identity *cert)
{
	struct got *g = arg;

	ck_assert(!g->done); /* exactly once */
	g->done = true;
	g->err = err;
	ck_assert((err == 0) == (cert != NULL));
	if (cert)
		snprintf(g->serial, sizeof(g->serial), "%s", zt_tls_identity_serial(cert));
}

/* ---- harness ------------------------------------------------------------------------------ */

static struct zt_spiffe sp(const char *ns, const char *sa)
{
	struct zt_spiffe id;

	ck_assert_int_eq(zt_spiffe_set(&id, TD, ns, sa), 0);
	return id;
}

static struct zt_certmgr_opts opts(void)
{
	struct zt_certmgr_opts o;

	zt_certmgr_opts_init(&o);
	o.source = (struct zt_cert_source){.sign = t_sign, .cancel = t_cancel, .src = &S};
	o.ttl_s = 3600;
	o.on_change = on_change;
	return o;
}

static void start_mgr(const struct zt_certmgr_opts *o)
{
	ck_assert_int_eq(zt_certmgr_new(&mgr, loop, o), 0);
}

static int state(const struct zt_spiffe *id)
{
	return zt_certmgr_state(mgr, id);
}

static bool available(const struct zt_spiffe *id)
{
	struct zt_tls_identity *c = zt_certmgr_get(mgr, id);

	zt_tls_identity_unref(c);
	return c != NULL;
}

/* The dump object of id (borrowed from arr). */
static json_t *dump_of(json_t *arr, const char *uri)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o)
	{
		if (strcmp(json_string_value(json_object_get(o, "identity")), uri) == 0)
			return o;
	}
	ck_abort_msg("%s not in dump", uri);
	return NULL;
}

static void setup(void)
{
	zt_log_set_spec("error", NULL, 0);
	memset(&S, 0, sizeof(S));
	TAILQ_INIT(&S.reqs);
	memset(&C, 0, sizeof(C));
	S.na = 3600;
	S.delay_ms = 5;
	fx_ca_init(&root, "mesh root", NULL);
	fx_ca_init(&inter, "mesh intermediate", &root);
	fx_ca_init(&other, "unrelated root", NULL);
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	mgr = NULL;
}

static void teardown(void)
{
	zt_certmgr_free(mgr);
	mgr = NULL;
	ck_assert(TAILQ_EMPTY(&S.reqs)); /* everything in flight was cancelled */
	ck_assert_uint_eq(S.inflight, 0);
	fx_run_for(loop, 30); /* fetch callbacks still due */
	zt_loop_free(loop);
	fx_ca_clear(&root);
	fx_ca_clear(&inter);
	fx_ca_clear(&other);
	ck_assert_uint_eq(zt_tls_identity_live(), 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(prefetch_makes_a_validated_certificate_available)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");
	struct zt_tls_identity *c;
	json_t *d, *e;

	start_mgr(&o);
	ck_assert_int_eq(zt_certmgr_prefetch(mgr, &id), 0);
	ck_assert_int_eq(state(&id), ZT_CERT_INITIALIZING);
	ck_assert_ptr_null(zt_certmgr_get(mgr, &id));
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 1);
	RUN_UNTIL(loop, available(&id), 3000);
	ck_assert_int_eq(S.ttl, 3600);
	ck_assert_str_eq(S.order[0], "spiffe://" TD "/ns/app/sa/web");
	ck_assert_int_eq(state(&id), ZT_CERT_AVAILABLE);
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 0);
	c = zt_certmgr_get(mgr, &id);
	ck_assert(zt_spiffe_eq(zt_tls_identity_spiffe(c), &id));
	ck_assert_uint_eq(C.count, 1);
	ck_assert_str_eq(C.serial, zt_tls_identity_serial(c));
	ck_assert_str_eq(C.id, "spiffe://" TD "/ns/app/sa/web");

	d = zt_certmgr_dump(mgr);
	ck_assert_uint_eq(json_array_size(d), 1);
	e = dump_of(d, "spiffe://" TD "/ns/app/sa/web");
	ck_assert_str_eq(json_string_value(json_object_get(e, "state")), "available");
	ck_assert_str_eq(json_string_value(json_object_get(e, "serial")),
	                 zt_tls_identity_serial(c));
	ck_assert_int_eq(json_integer_value(json_object_get(e, "chainLength")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(e, "refs")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(e, "failures")), 0);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(e, "notAfter"))), 20);
	ck_assert_ptr_nonnull(json_object_get(e, "nextRefresh"));
	json_decref(d);
	zt_tls_identity_unref(c);
}
END_TEST

START_TEST(second_prefetch_of_the_same_identity_shares_one_request)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");

	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	zt_certmgr_prefetch(mgr, &id);
	RUN_UNTIL(loop, available(&id), 3000);
	zt_certmgr_prefetch(mgr, &id);
	fx_run_for(loop, 50);
	ck_assert_uint_eq(S.calls, 1);
	ck_assert_uint_eq(zt_certmgr_entries(mgr), 1);
}
END_TEST

START_TEST(refresh_happens_at_half_life_and_keeps_serving_meanwhile)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");
	struct zt_tls_identity *first, *during, *second;
	uint64_t issued, refreshed;

	S.na = 4; /* a 4 s certificate: refresh due 2 s after its notBefore */
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	RUN_UNTIL(loop, available(&id), 3000);
	issued = S.at[0];
	first = zt_certmgr_get(mgr, &id);
	S.mode = T_HANG;
	RUN_UNTIL(loop, S.calls == 2, 4000);
	refreshed = S.at[1];
	/* notBefore is truncated to the second, so the refresh lands 1 to 2 s after issuing. */
	ck_assert_msg(refreshed - issued >= 900 && refreshed - issued <= 2300,
	              "refresh after %llu ms", (unsigned long long)(refreshed - issued));
	ck_assert_int_eq(state(&id), ZT_CERT_REFRESHING);
	during = zt_certmgr_get(mgr, &id);
	ck_assert_ptr_eq(during, first);
	release_one();
	ck_assert_int_eq(state(&id), ZT_CERT_AVAILABLE);
	second = zt_certmgr_get(mgr, &id);
	ck_assert_ptr_ne(second, first);
	ck_assert_str_ne(zt_tls_identity_serial(second), zt_tls_identity_serial(first));
	ck_assert_uint_eq(C.count, 2);
	ck_assert_str_eq(C.serial, zt_tls_identity_serial(second));
	zt_tls_identity_unref(first);
	zt_tls_identity_unref(during);
	zt_tls_identity_unref(second);
}
END_TEST

START_TEST(failures_back_off_doubling_within_jitter_up_to_the_cap)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");
	const uint64_t want[] = {50, 100, 200, 400, 400, 400};
	json_t *d, *e;

	o.backoff_base_ms = 50;
	o.backoff_cap_ms = 400;
	o.jitter_pct = 20;
	S.mode = T_FAIL;
	S.delay_ms = 0;
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	RUN_UNTIL(loop, S.calls == 7, 5000);
	for (size_t i = 0; i < 6; i++) {
		uint64_t gap = S.at[i + 1] - S.at[i];

		/* Jitter 20 %, plus a little for loop scheduling. */
		ck_assert_msg(gap * 100 >= want[i] * 80 - 500 && gap * 100 <= want[i] * 120 + 6000,
		              "retry %zu after %llu ms, want %llu ±20%%", i + 1,
		              (unsigned long long)gap, (unsigned long long)want[i]);
	}
	RUN_UNTIL(loop, state(&id) == ZT_CERT_RETRYING, 1000);
	ck_assert_ptr_null(zt_certmgr_get(mgr, &id));
	d = zt_certmgr_dump(mgr);
	e = dump_of(d, "spiffe://" TD "/ns/app/sa/web");
	ck_assert_str_eq(json_string_value(json_object_get(e, "state")), "failed-retrying");
	ck_assert_int_ge(json_integer_value(json_object_get(e, "failures")), 7);
	ck_assert_ptr_nonnull(json_object_get(e, "nextRetry"));
	ck_assert_ptr_nonnull(
	        strstr(json_string_value(json_object_get(e, "lastError")), "scripted failure"));
	json_decref(d);
	ck_assert_uint_eq(C.count, 0);
}
END_TEST

START_TEST(jitter_spreads_retries_of_many_identities)
{
	struct zt_certmgr_opts o = opts();
	uint64_t lo = UINT64_MAX, hi = 0;
	char sa[32];

	o.backoff_base_ms = 200;
	o.max_inflight = 64;
	S.mode = T_FAIL;
	S.delay_ms = 0;
	start_mgr(&o);
	for (int i = 0; i < 30; i++) {
		struct zt_spiffe id;

		snprintf(sa, sizeof(sa), "sa%d", i);
		id = sp("app", sa);
		zt_certmgr_prefetch(mgr, &id);
	}
	RUN_UNTIL(loop, S.calls >= 60, 3000);
	for (size_t i = 30; i < 60; i++) {
		size_t k = 0;
		uint64_t gap;

		while (strcmp(S.ans_id[k], S.order[i]) != 0) /* the failure this retry follows */
			k++;
		ck_assert_uint_lt(k, 30);
		gap = S.at[i] - S.ans_at[k];
		lo = gap < lo ? gap : lo;
		hi = gap > hi ? gap : hi;
	}
	/* All thirty failed in one loop round. Uniform in 160..240 ms, thirty draws do not all
	 * land within 10 ms of each other; without jitter they would all be 200 ms. A timer may
	 * fire late on a loaded machine (never early), so the upper bound is loose. */
	ck_assert_msg(lo >= 155 && hi <= 1000, "retries between %llu and %llu ms",
	              (unsigned long long)lo, (unsigned long long)hi);
	ck_assert_msg(hi - lo >= 10, "no spread: %llu..%llu ms", (unsigned long long)lo,
	              (unsigned long long)hi);
}
END_TEST

/* Bad answers, one per loop index, and what the dump must say about each. */
static const struct {
	enum tmode mode;
	const char *error;
} bad[] = {
        {T_WRONG_SAN, "ns/evil/sa/other"}, {T_ONE, "1 element"},
        {T_BAD_CHAIN, "does not chain"},   {T_NO_EKU, "extended key usage"},
        {T_REFUSE, "not started"},
};

START_TEST(bad_answers_are_rejected_and_retried)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");
	struct got g = {0};
	struct zt_certmgr_fetch *f;
	json_t *d;
	const char *err;

	o.backoff_base_ms = 300;
	o.backoff_cap_ms = 300;
	S.mode = bad[_i].mode;
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	zt_certmgr_fetch(mgr, &id, on_fetched, &g, &f);
	RUN_UNTIL(loop, g.done, 3000);
	ck_assert_int_lt(g.err, 0);
	ck_assert_int_eq(state(&id), ZT_CERT_RETRYING);
	ck_assert_ptr_null(zt_certmgr_get(mgr, &id));
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 1);
	d = zt_certmgr_dump(mgr);
	err = json_string_value(json_object_get(json_array_get(d, 0), "lastError"));
	ck_assert_msg(err && strstr(err, bad[_i].error), "lastError %s, want %s", err,
	              bad[_i].error);
	ck_assert_ptr_null(json_object_get(json_array_get(d, 0), "serial"));
	json_decref(d);
	ck_assert_uint_eq(C.count, 0);
	/* A good answer after the backoff heals it. */
	S.mode = T_OK;
	RUN_UNTIL(loop, available(&id), 1000);
}
END_TEST

START_TEST(expired_certificate_stops_being_served)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");
	struct zt_tls_identity *c;
	json_t *d;

	S.na = 3; /* refresh 1 to 1.5 s after issuing, expiry 2 to 3 s after */
	o.backoff_base_ms = 200;
	o.backoff_cap_ms = 200;
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	RUN_UNTIL(loop, available(&id), 3000);
	c = zt_certmgr_get(mgr, &id);
	S.mode = T_FAIL;
	/* Refresh failed: the still-valid certificate keeps being served. */
	RUN_UNTIL(loop, S.calls >= 2 && state(&id) == ZT_CERT_RETRYING, 3000);
	ck_assert(available(&id));
	RUN_UNTIL(loop, !available(&id), 4000);
	ck_assert_int_eq(state(&id), ZT_CERT_EXPIRED);
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 1);
	RUN_UNTIL(loop, C.nulls == 1, 1000);
	d = zt_certmgr_dump(mgr);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "state")),
	                 "expired");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "serial")),
	                 zt_tls_identity_serial(c));
	json_decref(d);
	/* Retries go on; a good answer brings it back. */
	S.mode = T_OK;
	S.na = 3600;
	RUN_UNTIL(loop, available(&id), 2000);
	ck_assert_uint_eq(C.count, 3);
	zt_tls_identity_unref(c);
}
END_TEST

START_TEST(forget_at_zero_refs_cancels_the_request_and_waiting_fetches)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web"), unknown = sp("x", "y");
	struct zt_certmgr_fetch *f;
	struct got g = {0};

	S.mode = T_HANG;
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	zt_certmgr_prefetch(mgr, &id);
	RUN_UNTIL(loop, S.inflight == 1, 1000);
	ck_assert_uint_eq(zt_certmgr_inflight(mgr), 1);
	zt_certmgr_fetch(mgr, &id, on_fetched, &g, &f);
	ck_assert_int_eq(zt_certmgr_forget(mgr, &id), 0);
	ck_assert_uint_eq(S.cancels, 0); /* one reference left */
	ck_assert_int_eq(zt_certmgr_forget(mgr, &id), 0);
	ck_assert_uint_eq(S.cancels, 1);
	ck_assert_uint_eq(S.inflight, 0);
	ck_assert_uint_eq(zt_certmgr_inflight(mgr), 0);
	ck_assert_uint_eq(zt_certmgr_entries(mgr), 0);
	ck_assert_int_eq(state(&id), ZT_E_NOTFOUND);
	ck_assert(!g.done); /* never inside the call */
	RUN_UNTIL(loop, g.done, 1000);
	ck_assert_int_eq(g.err, ZT_E_CANCELLED);
	ck_assert_int_eq(zt_certmgr_forget(mgr, &id), ZT_E_NOTFOUND);
	ck_assert_int_eq(zt_certmgr_forget(mgr, &unknown), ZT_E_NOTFOUND);
}
END_TEST

START_TEST(forget_of_an_entry_only_fetched_is_a_state_error)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");
	struct zt_certmgr_fetch *f;
	struct got g = {0};

	start_mgr(&o);
	zt_certmgr_fetch(mgr, &id, on_fetched, &g, &f);
	ck_assert_int_eq(zt_certmgr_forget(mgr, &id), ZT_E_STATE);
	RUN_UNTIL(loop, g.done, 2000);
	ck_assert_int_eq(g.err, 0);
	ck_assert(available(&id));
	/* Not prefetched, so not pending for readiness. */
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 0);
}
END_TEST

static char ids[20][ZT_SPIFFE_STR_SIZE];

static void prefetch_n(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char sa[32];
		struct zt_spiffe id;

		snprintf(sa, sizeof(sa), "sa%02zu", i);
		id = sp("bulk", sa);
		zt_spiffe_format(&id, ids[i], sizeof(ids[i]));
		ck_assert_int_eq(zt_certmgr_prefetch(mgr, &id), 0);
	}
}

START_TEST(at_most_max_inflight_requests_and_realtime_fetch_jumps_the_queue)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe last = sp("bulk", "sa19");
	struct zt_certmgr_fetch *f;
	struct got g = {0};

	S.mode = T_HANG;
	start_mgr(&o);
	prefetch_n(20);
	RUN_UNTIL(loop, S.inflight == 8, 1000);
	fx_run_for(loop, 100);
	ck_assert_uint_eq(S.inflight, 8);
	ck_assert_uint_eq(S.calls, 8);
	ck_assert_uint_eq(zt_certmgr_inflight(mgr), 8);
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 20);
	for (size_t i = 0; i < 8; i++) /* Warmup requests go in order */
		ck_assert_str_eq(S.order[i], ids[i]);

	/* A connection waits for the last one: it goes next, before sa08..sa18. */
	zt_certmgr_fetch(mgr, &last, on_fetched, &g, &f);
	fx_run_for(loop, 50);
	ck_assert_uint_eq(S.calls, 8);
	release_one();
	RUN_UNTIL(loop, S.calls == 9, 1000);
	ck_assert_str_eq(S.order[8], ids[19]);
	release_one();
	RUN_UNTIL(loop, S.calls == 10, 1000);
	ck_assert_str_eq(S.order[9], ids[8]);

	while (!TAILQ_EMPTY(&S.reqs) || S.calls < 20) {
		if (!TAILQ_EMPTY(&S.reqs))
			release_one();
		zt_loop_run_once(loop, 10);
		ck_assert_uint_le(S.inflight, 8);
	}
	ck_assert_uint_eq(S.max_inflight, 8);
	ck_assert_uint_eq(S.calls, 20);
	RUN_UNTIL(loop, zt_certmgr_pending(mgr) == 0, 1000);
	ck_assert(g.done);
	ck_assert_int_eq(g.err, 0);
}
END_TEST

/* Held, the manager starts nothing but RealTime requests; released, the prefetches go. */
START_TEST(hold_lets_only_realtime_requests_start_until_released)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe conn = sp("rt", "conn");
	struct zt_certmgr_fetch *f;
	struct got g = {0};

	start_mgr(&o);
	zt_certmgr_hold(mgr, true);
	prefetch_n(3);
	fx_run_for(loop, 100);
	ck_assert_uint_eq(S.calls, 0);
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 3);
	zt_certmgr_fetch(mgr, &conn, on_fetched, &g, &f);
	RUN_UNTIL(loop, g.done, 2000);
	ck_assert_int_eq(g.err, 0);
	ck_assert_uint_eq(S.calls, 1);
	ck_assert_str_eq(S.order[0], "spiffe://" TD "/ns/rt/sa/conn");
	fx_run_for(loop, 50);
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 3);
	zt_certmgr_hold(mgr, false);
	RUN_UNTIL(loop, zt_certmgr_pending(mgr) == 0, 2000);
	ck_assert_uint_eq(S.calls, 4);
}
END_TEST

START_TEST(background_refresh_waits_behind_warmup)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe a = sp("app", "a"), b = sp("app", "b"), c = sp("app", "c"),
	                 d = sp("app", "d");

	o.max_inflight = 1;
	S.na = 3; /* a's refresh is due 1 to 1.5 s after issuing, well before expiry */
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &a);
	RUN_UNTIL(loop, available(&a), 2000);
	S.mode = T_HANG;
	S.na = 3600;
	zt_certmgr_prefetch(mgr, &b);
	RUN_UNTIL(loop, S.calls == 2, 1000);
	zt_certmgr_prefetch(mgr, &c);
	RUN_UNTIL(loop, state(&a) == ZT_CERT_REFRESHING, 3000); /* queued in Background */
	zt_certmgr_prefetch(mgr, &d);
	for (size_t n = 3; n <= 5; n++) {
		release_one();
		RUN_UNTIL(loop, S.calls == n, 1000);
	}
	ck_assert_str_eq(S.order[2], "spiffe://" TD "/ns/app/sa/c");
	ck_assert_str_eq(S.order[3], "spiffe://" TD "/ns/app/sa/d");
	ck_assert_str_eq(S.order[4], "spiffe://" TD "/ns/app/sa/a");
	ck_assert_uint_eq(S.max_inflight, 1);
	release_one();
}
END_TEST

START_TEST(fetch_of_available_certificate_answers_from_the_loop)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");
	struct zt_certmgr_fetch *f;
	struct got g = {0}, h = {0};
	struct zt_tls_identity *c;

	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	RUN_UNTIL(loop, available(&id), 2000);
	c = zt_certmgr_get(mgr, &id);
	ck_assert_int_eq(zt_certmgr_fetch(mgr, &id, on_fetched, &g, &f), 0);
	ck_assert(!g.done);
	RUN_UNTIL(loop, g.done, 1000);
	ck_assert_int_eq(g.err, 0);
	ck_assert_str_eq(g.serial, zt_tls_identity_serial(c));
	/* A cancelled fetch never calls back. */
	zt_certmgr_fetch(mgr, &id, on_fetched, &h, &f);
	zt_certmgr_fetch_cancel(f);
	fx_run_for(loop, 50);
	ck_assert(!h.done);
	ck_assert_uint_eq(S.calls, 1);
	zt_tls_identity_unref(c);
}
END_TEST

START_TEST(fetch_during_backoff_without_certificate_fails_fast)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");
	struct zt_certmgr_fetch *f;
	struct got g = {0};

	o.backoff_base_ms = 10000;
	S.mode = T_FAIL;
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	RUN_UNTIL(loop, state(&id) == ZT_CERT_RETRYING, 1000);
	zt_certmgr_fetch(mgr, &id, on_fetched, &g, &f);
	RUN_UNTIL(loop, g.done, 500);
	ck_assert_int_eq(g.err, -EIO);
	ck_assert_uint_eq(S.calls, 1); /* no extra request */
}
END_TEST

START_TEST(source_answering_inside_sign_is_handled)
{
	struct zt_certmgr_opts o = opts();

	S.mode = T_SYNC;
	start_mgr(&o);
	prefetch_n(12);
	RUN_UNTIL(loop, zt_certmgr_pending(mgr) == 0, 3000);
	ck_assert_uint_eq(S.calls, 12);
	ck_assert_uint_eq(zt_certmgr_inflight(mgr), 0);
	ck_assert_uint_eq(C.count, 12);
}
END_TEST

/* Forgets the identity whose certificate just changed, from inside the callback. */
static void forget_on_change(void *arg, const struct zt_spiffe *id, struct zt_tls_identity *cert)
{
	(void)arg;
	on_change(NULL, id, cert);
	ck_assert_int_eq(zt_certmgr_forget(mgr, id), 0);
}

START_TEST(change_callback_may_forget_its_own_identity)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe id = sp("app", "web");

	o.on_change = forget_on_change;
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &id);
	RUN_UNTIL(loop, C.count == 1, 2000);
	ck_assert_uint_eq(zt_certmgr_entries(mgr), 0);
	ck_assert_ptr_null(zt_certmgr_get(mgr, &id));
}
END_TEST

static void collect(void *arg, const char *id)
{
	json_array_append_new(arg, json_string(id));
}

START_TEST(pending_lists_prefetched_identities_without_valid_certificate)
{
	struct zt_certmgr_opts o = opts();
	struct zt_spiffe a = sp("app", "a"), b = sp("app", "b");
	json_t *list = json_array();

	S.mode = T_HANG;
	start_mgr(&o);
	zt_certmgr_prefetch(mgr, &a);
	zt_certmgr_prefetch(mgr, &b);
	RUN_UNTIL(loop, S.calls == 2, 1000);
	release_one();
	zt_certmgr_foreach_pending(mgr, collect, list);
	ck_assert_uint_eq(json_array_size(list), 1);
	ck_assert_str_eq(json_string_value(json_array_get(list, 0)), "spiffe://" TD "/ns/app/sa/b");
	ck_assert_uint_eq(zt_certmgr_pending(mgr), 1);
	json_decref(list);
}
END_TEST

START_TEST(options_out_of_range_are_refused)
{
	struct zt_certmgr_opts o = opts();
	struct zt_certmgr *m = (void *)1;

	o.max_inflight = 0;
	ck_assert_int_eq(zt_certmgr_new(&m, loop, &o), ZT_E_RANGE);
	ck_assert_ptr_null(m);
	o = opts();
	o.backoff_cap_ms = o.backoff_base_ms - 1;
	ck_assert_int_eq(zt_certmgr_new(&m, loop, &o), ZT_E_RANGE);
	o = opts();
	o.jitter_pct = 101;
	ck_assert_int_eq(zt_certmgr_new(&m, loop, &o), ZT_E_RANGE);
	o = opts();
	o.ttl_s = 0;
	ck_assert_int_eq(zt_certmgr_new(&m, loop, &o), ZT_E_RANGE);
	o = opts();
	o.source.sign = NULL;
	ck_assert_int_eq(zt_certmgr_new(&m, loop, &o), ZT_E_RANGE);
	ck_assert_str_eq(zt_cert_state_name(ZT_CERT_RETRYING), "failed-retrying");
}
END_TEST

/* ---- fetches from a worker thread ---------------------------------------------------------- */

struct rgot {
	atomic_bool done; /* set last, by the worker */
	int err;
	char serial[80];
	pthread_t thread;
	struct zt_certmgr_fetch *f;
	struct zt_spiffe id;
	bool cancel; /* cancel right after the fetch, on the worker */
};

static void on_remote(void *arg, int err, struct zt_tls_identity *cert)
{
	struct rgot *g = arg;

	ck_assert(!atomic_load(&g->done));
	g->err = err;
	g->thread = pthread_self();
	if (cert)
		snprintf(g->serial, sizeof(g->serial), "%s", zt_tls_identity_serial(cert));
	atomic_store(&g->done, true);
}

static void fetch_on_worker(void *arg)
{
	struct rgot *g = arg;
	struct zt_tls_identity *c = zt_certmgr_get(mgr, &g->id);

	ck_assert_ptr_null(c); /* the cases below ask before anything is there */
	ck_assert_int_eq(zt_certmgr_fetch(mgr, &g->id, on_remote, g, &g->f), 0);
	if (g->cancel)
		zt_certmgr_fetch_cancel(g->f);
}

static void get_on_worker(void *arg)
{
	struct rgot *g = arg;
	struct zt_tls_identity *c = zt_certmgr_get(mgr, &g->id);

	if (c)
		snprintf(g->serial, sizeof(g->serial), "%s", zt_tls_identity_serial(c));
	zt_tls_identity_unref(c);
}

START_TEST(fetch_from_a_worker_is_answered_on_the_worker)
{
	struct zt_certmgr_opts o = opts();
	struct zt_workers *ws;
	struct rgot g = {.id = sp("app", "web")}, h = {.id = sp("app", "web")};
	struct zt_tls_identity *c;

	start_mgr(&o);
	ck_assert_int_eq(zt_workers_new(&ws, 1, "test"), 0);
	ck_assert_int_eq(zt_loop_call(zt_workers_loop(ws, 0), fetch_on_worker, &g), 0);
	RUN_UNTIL(loop, atomic_load(&g.done), 3000);
	ck_assert_int_eq(g.err, 0);
	ck_assert(!pthread_equal(g.thread, pthread_self()));
	c = zt_certmgr_get(mgr, &g.id);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(g.serial, zt_tls_identity_serial(c));
	/* The worker's get sees the same certificate. */
	ck_assert_int_eq(zt_loop_call(zt_workers_loop(ws, 0), get_on_worker, &h), 0);
	ck_assert_str_eq(h.serial, zt_tls_identity_serial(c));
	zt_tls_identity_unref(c);
	zt_workers_free(ws);
}
END_TEST

START_TEST(fetch_cancelled_on_the_worker_never_calls_back_and_drops_its_request)
{
	struct zt_certmgr_opts o = opts();
	struct zt_workers *ws;
	struct rgot g = {.id = sp("app", "web"), .cancel = true};

	S.mode = T_HANG;
	start_mgr(&o);
	ck_assert_int_eq(zt_workers_new(&ws, 1, "test"), 0);
	ck_assert_int_eq(zt_loop_call(zt_workers_loop(ws, 0), fetch_on_worker, &g), 0);
	RUN_UNTIL(loop, S.calls == 1 && zt_certmgr_entries(mgr) == 1, 3000);
	fx_run_for(loop, 50);
	ck_assert(!atomic_load(&g.done));
	zt_workers_free(ws);
	/* The request the worker gave up on still runs for the entry; the manager's free
	 * cancels it (teardown checks nothing is left in flight). */
}
END_TEST

START_TEST(fetch_in_flight_when_the_worker_stops_is_freed_by_the_manager)
{
	struct zt_certmgr_opts o = opts();
	struct zt_workers *ws;
	struct rgot g = {.id = sp("app", "web")};

	S.mode = T_HANG;
	start_mgr(&o);
	ck_assert_int_eq(zt_workers_new(&ws, 1, "test"), 0);
	ck_assert_int_eq(zt_loop_call(zt_workers_loop(ws, 0), fetch_on_worker, &g), 0);
	RUN_UNTIL(loop, S.calls == 1, 3000);
	zt_workers_free(ws); /* its loop refuses the answer from now on */
	zt_certmgr_free(mgr);
	mgr = NULL;
	fx_run_for(loop, 50);
	ck_assert(!atomic_load(&g.done));
}
END_TEST

Suite *certmgr_suite(void);
Suite *certmgr_suite(void)
{
	Suite *s = suite_create("certmgr");
	TCase *tc = tcase_create("certmgr");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, prefetch_makes_a_validated_certificate_available);
	tcase_add_test(tc, second_prefetch_of_the_same_identity_shares_one_request);
	tcase_add_test(tc, refresh_happens_at_half_life_and_keeps_serving_meanwhile);
	tcase_add_test(tc, failures_back_off_doubling_within_jitter_up_to_the_cap);
	tcase_add_test(tc, jitter_spreads_retries_of_many_identities);
	tcase_add_loop_test(tc, bad_answers_are_rejected_and_retried, 0,
	                    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, expired_certificate_stops_being_served);
	tcase_add_test(tc, forget_at_zero_refs_cancels_the_request_and_waiting_fetches);
	tcase_add_test(tc, forget_of_an_entry_only_fetched_is_a_state_error);
	tcase_add_test(tc, at_most_max_inflight_requests_and_realtime_fetch_jumps_the_queue);
	tcase_add_test(tc, background_refresh_waits_behind_warmup);
	tcase_add_test(tc, hold_lets_only_realtime_requests_start_until_released);
	tcase_add_test(tc, fetch_of_available_certificate_answers_from_the_loop);
	tcase_add_test(tc, fetch_during_backoff_without_certificate_fails_fast);
	tcase_add_test(tc, source_answering_inside_sign_is_handled);
	tcase_add_test(tc, change_callback_may_forget_its_own_identity);
	tcase_add_test(tc, pending_lists_prefetched_identities_without_valid_certificate);
	tcase_add_test(tc, options_out_of_range_are_refused);
	tcase_add_test(tc, fetch_from_a_worker_is_answered_on_the_worker);
	tcase_add_test(tc, fetch_cancelled_on_the_worker_never_calls_back_and_drops_its_request);
	tcase_add_test(tc, fetch_in_flight_when_the_worker_stops_is_freed_by_the_manager);
	suite_add_tcase(s, tc);
	return s;
}
