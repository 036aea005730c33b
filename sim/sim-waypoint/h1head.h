/* HTTP/1.1 request heads of a waypoint session (session.c), I/O-free: the URL and header
 * pieces libhttp-parser hands over, collected NUL-separated in one buffer within
 * WP_MAX_HEADERS bytes and WP_MAX_HEADER_COUNT headers, then laid out for the policy check
 * (names lower-cased) and rebuilt as the head sent upstream. Invariant: pieces are kept as
 * offsets (the buffer moves while it grows) until wp_h1_head_finish. */
#ifndef WP_H1HEAD_H
#define WP_H1HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/buf.h"
#include "sim/sim-waypoint/authz.h"

#define WP_MAX_HEADERS      (60 * 1024) /* request header bytes (Envoy's default 60 KiB) */
#define WP_MAX_HEADER_COUNT 100

struct wp_h1_head {
	struct zt_buf buf; /* url and header text of the current request */
	size_t url_off, url_len;
	struct {
		size_t name, value; /* offsets into buf; value SIZE_MAX: none yet */
	} hdrs[WP_MAX_HEADER_COUNT];
	size_t nh;
	bool last_value;
	bool too_big; /* a bound was hit (sticky: the session answers 431 and closes) */
};

void wp_h1_head_init(struct wp_h1_head *h);
void wp_h1_head_clear(struct wp_h1_head *h);
/* A new request begins (too_big is left as it is). */
void wp_h1_head_reset(struct wp_h1_head *h);
/* Pieces as http_parser's on_url, on_header_field and on_header_value give them. Return 0, or
 * -1 past a bound (too_big set) or on OOM. */
int wp_h1_head_url(struct wp_h1_head *h, const char *at, size_t len);
int wp_h1_head_field(struct wp_h1_head *h, const char *at, size_t len);
int wp_h1_head_value(struct wp_h1_head *h, const char *at, size_t len);
/* Ends the head: hs[0..h->nh) get the headers (names lower-cased in place, values "" when
 * absent), *url the request target ("/" when none), *host the Host header or NULL. Pointers
 * stay valid until the next reset. Returns 0 or -1 (a bound hit). */
int wp_h1_head_finish(struct wp_h1_head *h, struct wp_header *hs, const char **url,
                      const char **host);
/* Appends the head sent upstream: "METHOD URL HTTP/1.1", the headers, an empty line. */
void wp_h1_head_format(struct zt_buf *out, const char *method, const char *url,
                       const struct wp_header *hs, size_t n);

#endif
