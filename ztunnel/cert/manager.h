/* Workload certificate cache (spec §4 "SecretManager"): one certificate per SPIFFE identity,
 * obtained from a zt_cert_source with a fresh key and CSR per request, validated, refreshed at
 * half its validity and retried with jittered exponential backoff. At most max_inflight
 * requests run at once, served by priority: RealTime (a connection waits) > Warmup (prefetch)
 * > Background (rotation). A still-valid certificate keeps being served while its refresh
 * fails; once it expires it is no longer handed out. Identities returned are immutable and
 * shared by reference. Every call on the loop's thread, except zt_certmgr_get,
 * zt_certmgr_fetch and zt_certmgr_fetch_cancel, which other loops' threads may call from their
 * callbacks (a fetch's callback then runs on the requesting loop); the manager must outlive
 * those loops' fetches. */
#ifndef ZT_CERT_MANAGER_H
#define ZT_CERT_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cert/source.h"
#include "protocol/spiffe.h"
#include "protocol/tls.h"
#include "runtime/loop.h"

enum zt_cert_state {
	ZT_CERT_INITIALIZING, /* no certificate yet, a request is queued or running */
	ZT_CERT_AVAILABLE,    /* valid certificate, waiting for its refresh time */
	ZT_CERT_REFRESHING,   /* valid certificate, a new one is queued or running */
	ZT_CERT_RETRYING,     /* the last request failed; the next waits for its backoff */
	ZT_CERT_EXPIRED,      /* the certificate expired and nothing newer came yet */
};

/* "initializing", "available", "refreshing", "failed-retrying", "expired". */
const char *zt_cert_state_name(enum zt_cert_state s);

/* id's certificate changed: cert is the new one (borrowed; take a reference to keep it) or
 * NULL when the old one expired. Called from the loop; the callback must not free the
 * manager, but may call anything else on it. */
typedef void (*zt_certmgr_change_cb)(void *arg, const struct zt_spiffe *id,
                                     struct zt_tls_identity *cert);

struct zt_certmgr_opts {
	struct zt_cert_source source;   /* borrowed: must outlive the manager */
	int64_t ttl_s;                  /* requested validity (SECRET_TTL) */
	unsigned max_inflight;          /* concurrent requests, >= 1 */
	uint64_t backoff_base_ms;       /* first retry delay, > 0 */
	uint64_t backoff_cap_ms;        /* longest retry delay before jitter, >= base */
	unsigned jitter_pct;            /* each delay is scaled by a uniform 1 ± jitter_pct/100 */
	zt_certmgr_change_cb on_change; /* may be NULL */
	void *change_arg;
};

/* Defaults of spec §4: ttl 86400 s, 8 in flight, backoff 500 ms doubling to 150 s, 20 %
 * jitter, no change callback; source left zeroed for the caller to set. */
void zt_certmgr_opts_init(struct zt_certmgr_opts *o);

struct zt_certmgr;
struct zt_certmgr_fetch;

/* Returns 0 and a manager, or ZT_E_RANGE (an option out of range, or no source.sign). */
int zt_certmgr_new(struct zt_certmgr **out, struct zt_loop *loop, const struct zt_certmgr_opts *o);
/* Cancels every request, drops every certificate reference it holds. Fetches not cancelled
 * by then still get their callback (ZT_E_CANCELLED) from the loop. Accepts NULL. */
void zt_certmgr_free(struct zt_certmgr *m);

/* While held, only RealTime requests start (a connection is waiting); prefetch and rotation
 * requests queue until the hold is released. ztunnel holds them during its first xDS sync,
 * which then has the thread to itself; the local workloads' certificates follow it. */
void zt_certmgr_hold(struct zt_certmgr *m, bool hold);

/* Takes one reference on id's entry (one per local workload with that identity) and makes
 * sure a certificate is being obtained (Warmup priority) if there is no valid one and the
 * identity is not backing off. Returns 0, or ZT_E_PARSE if id is not a valid identity. */
int zt_certmgr_prefetch(struct zt_certmgr *m, const struct zt_spiffe *id);
/* Drops one reference taken by prefetch. At zero the entry goes: its request is cancelled
 * and fetches waiting on it get ZT_E_CANCELLED. Returns 0, ZT_E_NOTFOUND (unknown id) or
 * ZT_E_STATE (no prefetch reference left). */
int zt_certmgr_forget(struct zt_certmgr *m, const struct zt_spiffe *id);

/* A new reference to id's certificate if it has one that has not expired, else NULL. */
struct zt_tls_identity *zt_certmgr_get(struct zt_certmgr *m, const struct zt_spiffe *id);

/* The outcome of a fetch: err 0 and cert (borrowed for the call; take a reference to keep
 * it), or err < 0 (the failure of the request, ZT_E_CANCELLED when the entry went away) and
 * cert NULL. */
typedef void (*zt_certmgr_fetch_cb)(void *arg, int err, struct zt_tls_identity *cert);

/* Waits for id's certificate (RealTime priority: queued ahead of prefetch and rotation).
 * cb runs exactly once from the loop, never inside this call, unless the fetch is cancelled
 * first: at once (next loop round) when a valid certificate is there (callers should try
 * zt_certmgr_get first), with the last error when the identity is in backoff without a valid
 * certificate, else when the running request ends. An identity nobody prefetched gets an
 * entry that is dropped at its refresh time or when a request for it fails. Returns 0 and a
 * handle valid until cb runs, or ZT_E_PARSE (invalid id; *handle NULL, cb never runs). */
int zt_certmgr_fetch(struct zt_certmgr *m, const struct zt_spiffe *id, zt_certmgr_fetch_cb cb,
                     void *arg, struct zt_certmgr_fetch **handle);
/* Cancels a fetch whose callback has not run. Accepts NULL. */
void zt_certmgr_fetch_cancel(struct zt_certmgr_fetch *f);

/* id's state, or ZT_E_NOTFOUND. */
int zt_certmgr_state(struct zt_certmgr *m, const struct zt_spiffe *id);

/* Identities prefetched that have no valid certificate now (readiness: "certificates:
 * spiffe://... pending"). */
size_t zt_certmgr_pending(const struct zt_certmgr *m);
/* Calls cb with the URI of each of them, in no particular order. */
void zt_certmgr_foreach_pending(const struct zt_certmgr *m, void (*cb)(void *arg, const char *id),
                                void *arg);
/* Requests running now, and entries alive (for tests and /config_dump). */
size_t zt_certmgr_inflight(const struct zt_certmgr *m);
size_t zt_certmgr_entries(const struct zt_certmgr *m);

/* A new JSON array, one object per identity sorted by identity: "identity", "state",
 * "refs", "failures", and when known "serial" (hex), "notBefore", "notAfter" (RFC 3339 UTC),
 * "chainLength" (certificates from the leaf up, root excluded), "nextRefresh" or "nextRetry"
 * (RFC 3339) and "lastError". */
json_t *zt_certmgr_dump(const struct zt_certmgr *m);

#endif
