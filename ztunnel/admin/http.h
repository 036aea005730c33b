/* A small HTTP/1.1 server for the admin, readiness and metrics endpoints: libmicrohttpd run
 * from our loop (its epoll fd watched as one io, its timeouts as one timer; no MHD threads).
 * Requests are routed by exact (method, path); a handler fills a response synchronously.
 * Request bodies are bounded by ZT_HTTP_MAX_BODY (413 beyond). */
#ifndef ZT_HTTP_H
#define ZT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/loop.h"

#define ZT_HTTP_MAX_BODY   (64u << 10)
#define ZT_HTTP_MAX_ROUTES 64

struct zt_http_server;

/* One query argument; value is NULL for a bare "?key". */
struct zt_http_kv {
	const char *key;
	const char *value;
};

/* Everything is borrowed for the duration of the handler call. */
struct zt_http_request {
	const char *method;             /* "GET", "POST", ... */
	const char *path;               /* without the query */
	const struct zt_http_kv *query; /* in request order, percent-decoded */
	size_t nquery;
	const char *body; /* NUL-terminated; "" when none */
	size_t body_len;
};

/* Filled by the handler. status starts at 200, content_type at "text/plain; charset=utf-8"
 * (must be a string that outlives the call, e.g. a literal), body empty. */
struct zt_http_response {
	int status;
	const char *content_type;
	struct zt_buf body;
};

typedef void (*zt_http_handler_cb)(const struct zt_http_request *req, struct zt_http_response *resp,
                                   void *arg);

/* Listens on listen_addr: "ip:port", "[ipv6]:port", "localhost:port" (127.0.0.1) or ":port"
 * (every address, IPv6 dual-stack when available); port 0 picks a free one. Returns the
 * server, or NULL with a message in err (bad address, bind failure, MHD start failure). */
struct zt_http_server *zt_http_server_new(struct zt_loop *loop, const char *listen_addr, char *err,
                                          size_t errlen);
/* Stops listening, drops open connections and frees. Accepts NULL. */
void zt_http_server_free(struct zt_http_server *srv);
/* Stops accepting at once (the listening socket is closed); connections already open are
 * served until they end or zt_http_server_free. Idempotent. */
void zt_http_server_quiesce(struct zt_http_server *srv);
/* The bound port (useful after port 0). */
uint16_t zt_http_server_port(const struct zt_http_server *srv);

/* Routes method + path (both copied, exact match) to cb. A path served for other methods
 * answers 405 with Allow; an unknown path 404. Returns 0, -EEXIST for a duplicate route or
 * ZT_E_TOOBIG past ZT_HTTP_MAX_ROUTES. */
int zt_http_route(struct zt_http_server *srv, const char *method, const char *path,
                  zt_http_handler_cb cb, void *arg);

/* Looks up a query argument: its value ("" for "?key" without '='), or NULL when absent. */
const char *zt_http_query(const struct zt_http_request *req, const char *key);

/* Appends formatted text to the response body. */
void zt_http_printf(struct zt_http_response *resp, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#endif
