/* HTTP/2 (prior knowledge, h2c) inside one waypoint session, I/O-free on nghttp2: a server
 * session for the downstream bytes and a client session for the upstream bytes. Each request
 * stream is authorized on its own (403 `RBAC: access denied` on deny, other streams go on);
 * an allowed one becomes a stream upstream with the same headers, and its response streams
 * back. Bounds: a request's header block WP_H2_MAX_HEADERS bytes (over: 431), bodies queued
 * per stream at most WP_H2_MAX_QUEUED bytes (over: the stream is reset). */
#ifndef WP_H2L7_H
#define WP_H2L7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim-waypoint/authz.h"

#define WP_H2_MAX_HEADERS (60 * 1024)
#define WP_H2_MAX_QUEUED  (4u << 20)

struct wp_h2l7;

/* One finished request, for the access log and metrics. */
struct wp_h2_done {
	const char *method, *path;
	int status;
	const char *flags, *details;
	uint64_t started_ms;
};

struct wp_h2l7_cbs {
	/* Authorizes one request (rq->http true; the owner fills in the connection parts). */
	void (*decide)(void *arg, struct wp_request *rq, struct wp_decision *out);
	/* Bytes for the downstream / upstream stream. */
	void (*to_down)(void *arg, const uint8_t *p, size_t n);
	void (*to_up)(void *arg, const uint8_t *p, size_t n);
	/* Make sure an upstream exists (first allowed request); 0 or an error. */
	int (*need_up)(void *arg);
	void (*done)(void *arg, const struct wp_h2_done *d);
	uint64_t (*now)(void *arg);
};

/* Returns 0 or -1 (nghttp2 could not start). cbs/arg borrowed. */
int wp_h2l7_new(struct wp_h2l7 **out, const struct wp_h2l7_cbs *cbs, void *arg);
void wp_h2l7_free(struct wp_h2l7 *h);
/* Feeds bytes from downstream / upstream. Returns 0, or -1 when the HTTP/2 connection failed
 * (protocol error: the owner closes the session after what was queued is sent). */
int wp_h2l7_down(struct wp_h2l7 *h, const uint8_t *p, size_t n);
int wp_h2l7_up(struct wp_h2l7 *h, const uint8_t *p, size_t n);
/* The upstream went away: its open streams are reset downstream (503 when not started). */
void wp_h2l7_up_gone(struct wp_h2l7 *h);
/* Whether both sessions are done (GOAWAY both ways or nothing open after peer's end). */
bool wp_h2l7_idle(const struct wp_h2l7 *h);

#endif
