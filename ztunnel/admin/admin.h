/* The admin endpoints (spec §8.3) on a loopback-only HTTP server, and the readiness endpoint
 * on its own server. Admin: /config_dump (JSON assembled from registered sections, every
 * object's keys sorted as the reference's serde_json writes them, spec §17), /logging (show
 * or change the log spec), /quitquitquit (POST: calls the stop callback), / (the list of
 * endpoints). Readiness: /healthz/ready answers 200 "ready"
 * once every registered task is done, else 500 naming what is pending. */
#ifndef ZT_ADMIN_H
#define ZT_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "admin/http.h"
#include "runtime/loop.h"

#define ZT_ADMIN_MAX_SECTIONS 32
#define ZT_READY_MAX_TASKS    1024

struct zt_admin;
struct zt_ready;

/* Returns a new reference to the section's JSON (NULL shows as null). */
typedef json_t *(*zt_admin_section_cb)(void *arg);
/* /quitquitquit: begin a graceful shutdown. Runs inside the request; the reply ("shutdown
 * now", spec §14) follows without waiting for the drain. Returns false when a shutdown was
 * already under way (the reply then says so). */
typedef bool (*zt_admin_stop_cb)(void *arg);

/* Serves the admin endpoints on listen_addr (zt_http_server_new() syntax), which must be a
 * loopback address ("127.0.0.1:15000", "[::1]:15000", "localhost:15000"). The current log
 * spec is remembered as the one /logging?reset restores. Returns NULL with a message in err
 * for a non-loopback or bad address or a bind failure. */
struct zt_admin *zt_admin_new(struct zt_loop *loop, const char *listen_addr, char *err,
                              size_t errlen);
/* Accepts NULL. */
void zt_admin_free(struct zt_admin *a);
/* Stops accepting connections at once (drain, spec §14); open ones are still served. */
void zt_admin_quiesce(struct zt_admin *a);
uint16_t zt_admin_port(const struct zt_admin *a);
/* The underlying server, to add routes (borrowed). */
struct zt_http_server *zt_admin_http(struct zt_admin *a);

/* Adds a /config_dump section: key name (copied), value fn(arg) computed per request.
 * Returns 0, -EEXIST (name taken) or ZT_E_TOOBIG (more than ZT_ADMIN_MAX_SECTIONS). */
int zt_admin_add_section(struct zt_admin *a, const char *name, zt_admin_section_cb fn, void *arg);
/* Adds a /config_dump section whose value write(arg, out, indent) appends to out as JSON
 * text (lines after the first prefixed with indent), for values too large to build as one
 * tree; returns 0 or a negative error. Same returns as zt_admin_add_section. */
typedef int (*zt_admin_section_write_cb)(void *arg, struct zt_buf *out, const char *indent);
int zt_admin_add_section_writer(struct zt_admin *a, const char *name,
                                zt_admin_section_write_cb write, void *arg);
/* Sets what /quitquitquit calls (without one it answers 503). */
void zt_admin_set_stop(struct zt_admin *a, zt_admin_stop_cb cb, void *arg);
/* Appends the /config_dump document to out: a JSON object with the sections sorted by name,
 * one per line at two spaces, tree sections indented by two, then "}\n". Returns 0, or the
 * first error of a writer or of out (ZT_E_TOOBIG). */
int zt_admin_config_dump_write(struct zt_admin *a, struct zt_buf *out);

/* /logging behaviour, usable without a server: applies the query (reset; level=SPEC where
 * items may be written mod:lvl; then every other key as MODULE=LEVEL merged into the current
 * spec) and writes the resulting spec into out. No arguments only reads. Returns 0, or
 * ZT_E_PARSE / ZT_E_TOOBIG with the reason in out (nothing changed). */
int zt_admin_logging(const struct zt_http_request *req, const char *reset_spec, char *out,
                     size_t outlen);

/* ---- readiness --------------------------------------------------------------------------- */

struct zt_ready *zt_ready_new(void);
/* Stops serving and frees. Accepts NULL. */
void zt_ready_free(struct zt_ready *r);
/* Closes the readiness port at once (drain: it never answers 500 first, spec §14). */
void zt_ready_quiesce(struct zt_ready *r);
/* Serves GET /healthz/ready on listen_addr (any address allowed). Returns 0 or ZT_E_STATE
 * (already serving) or -EINVAL with a message in err. */
int zt_ready_serve(struct zt_ready *r, struct zt_loop *loop, const char *listen_addr, char *err,
                   size_t errlen);
uint16_t zt_ready_port(const struct zt_ready *r);
/* Marks task (copied) pending; adding a pending task again does nothing. Returns 0 or
 * ZT_E_TOOBIG (more than ZT_READY_MAX_TASKS pending). */
int zt_ready_add(struct zt_ready *r, const char *task);
/* Marks task done; an unknown task is ignored. */
void zt_ready_done(struct zt_ready *r, const char *task);
bool zt_ready_is_ready(const struct zt_ready *r);
/* The pending tasks, comma-separated in the order they were added ("" when ready). */
void zt_ready_pending(const struct zt_ready *r, char *buf, size_t len);

#endif
