/* One CONNECT stream into the waypoint (spec §18): the destination it names (a Service VIP or
 * a workload that uses this waypoint), the caller's identity, then either HTTP/1.1 request by
 * request (policy per request, 403 `RBAC: access denied` on deny with the connection kept
 * open, allowed requests re-sent to one load-balanced endpoint through HBONE with our own
 * identity), HTTP/2 with prior knowledge stream by stream the same way (h2l7.h), or, for
 * other protocols, L4: one policy decision, then bytes both ways.
 * Bad input: malformed HTTP 400 and close, headers over WP_MAX_HEADERS 431 and close. */
#ifndef WP_SESSION_H
#define WP_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol/h2.h"
#include "sim/sim-waypoint/h1head.h" /* WP_MAX_HEADERS, WP_MAX_HEADER_COUNT */
#include "sim/sim-waypoint/wp.h"

/* Handles a new request on the HBONE listener (h2 on_request): validates the CONNECT,
 * answers an error itself, or answers 200 and runs a session until the stream ends. */
void wp_session_on_request(struct wp *wp, struct zt_h2_conn *c, struct zt_h2_stream *st,
                           const struct zt_h2_header *h, size_t n);

/* Sessions alive (for leak checks). */
size_t wp_session_live(void);

#endif
