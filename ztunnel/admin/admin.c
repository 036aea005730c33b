/* Admin and readiness endpoints. Invariant: handlers only read state through the registered
 * callbacks and change nothing but the log spec (and, through the stop callback, whatever the
 * daemon does on shutdown); a bad /logging request changes nothing. */
#include "admin/admin.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/addr.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("admin");

#define SPEC_MAX 2048

struct section {
	char *name;
	zt_admin_section_cb fn;          /* a tree, or */
	zt_admin_section_write_cb write; /* text written in place */
	void *arg;
};

struct zt_admin {
	struct zt_http_server *http;
	struct section sections[ZT_ADMIN_MAX_SECTIONS];
	size_t nsections;
	zt_admin_stop_cb stop;
	void *stop_arg;
	char reset_spec[SPEC_MAX];
};

struct zt_ready {
	struct zt_http_server *http;
	char *tasks[ZT_READY_MAX_TASKS];
	size_t ntasks;
};

static const char *const endpoints[] = {
        "/config_dump   GET   effective configuration and state (JSON)",
        "/logging       GET   current log spec; POST ?level=SPEC | ?MODULE=LEVEL | ?reset",
        "/quitquitquit  POST  graceful shutdown",
        "/debug/heap    GET   allocator summary (glibc mallinfo2, JSON); ?format=xml: malloc_info",
};

/* ---- /config_dump ------------------------------------------------------------------------ */

/* json_dump_callback into a zt_buf, two spaces after each newline: a section's value nested
 * one level in the document. Strings carry no raw newline (JSON escapes it). */
static int nested(const char *p, size_t n, void *arg)
{
	struct zt_buf *out = arg;

	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) + 1 : n;

		if (zt_buf_append(out, p, len) < 0 || (nl && zt_buf_append(out, "  ", 2) < 0))
			return -1;
		p += len;
		n -= len;
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(const struct section *const *)a)->name,
	              (*(const struct section *const *)b)->name);
}

int zt_admin_config_dump_write(struct zt_admin *a, struct zt_buf *out)
{
	const struct section *order[ZT_ADMIN_MAX_SECTIONS];
	int rc = 0;

	for (size_t i = 0; i < a->nsections; i++)
		order[i] = &a->sections[i];
	if (a->nsections)
		qsort(order, a->nsections, sizeof(order[0]), by_name);
	if (zt_buf_append(out, "{", 1) < 0)
		return ZT_E_TOOBIG;
	for (size_t i = 0; rc == 0 && i < a->nsections; i++) {
		const struct section *s = order[i];
		json_t *key = json_string(s->name);

		if (!key)
			abort();
		if (zt_buf_appendf(out, "%s\n  ", i ? "," : "") < 0 ||
		    json_dump_callback(key, nested, out, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) < 0 ||
		    zt_buf_append(out, ": ", 2) < 0) {
			rc = ZT_E_TOOBIG;
		} else if (s->write) {
			rc = s->write(s->arg, out, "  ");
		} else {
			json_t *v = s->fn(s->arg);

			if (json_dump_callback(v ? v : json_null(), nested, out,
			                       JSON_ENCODE_ANY | JSON_INDENT(2) |
			                               JSON_ENSURE_ASCII | JSON_SORT_KEYS) < 0)
				rc = ZT_E_TOOBIG;
			json_decref(v);
		}
		json_decref(key);
	}
	if (rc == 0 && zt_buf_appendf(out, "%s}\n", a->nsections ? "\n" : "") < 0)
		rc = ZT_E_TOOBIG;
	return rc;
}

/* The document is written into the response's body and handed to the server without a copy:
 * one handler call on the loop thread, so a consistent snapshot of the state (nothing applies
 * an update meanwhile) and at most one object's tree in memory besides the text. */
static void on_config_dump(const struct zt_http_request *req, struct zt_http_response *resp,
                           void *arg)
{
	int rc = zt_admin_config_dump_write(arg, &resp->body);

	(void)req;
	if (rc < 0) {
		zt_buf_clear(&resp->body);
		resp->status = 500;
		zt_http_printf(resp, "cannot encode the configuration: %s\n", zt_strerror(rc));
		return;
	}
	resp->content_type = "application/json";
}

/* ---- /logging ---------------------------------------------------------------------------- */

/* Copies the items of spec into out, dropping the override of module (if any). */
static void spec_without(const char *spec, const char *module, char *out, size_t outlen)
{
	size_t mlen = strlen(module), off = 0;
	const char *p = spec;

	out[0] = '\0';
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (!(len > mlen && strncmp(p, module, mlen) == 0 && p[mlen] == '=') &&
		    off + len + 2 < outlen) {
			off += (size_t)snprintf(out + off, outlen - off, "%s%.*s", off ? "," : "",
			                        (int)len, p);
		}
		p += len + (end ? 1 : 0);
	}
}

int zt_admin_logging(const struct zt_http_request *req, const char *reset_spec, char *out,
                     size_t outlen)
{
	char spec[SPEC_MAX], tmp[SPEC_MAX], saved[SPEC_MAX], why[256];
	const char *level = zt_http_query(req, "level");
	int n;

	zt_log_get_spec(saved, sizeof(saved));
	snprintf(spec, sizeof(spec), "%s", saved);
	if (zt_http_query(req, "reset"))
		snprintf(spec, sizeof(spec), "%s", reset_spec);
	if (level) {
		if (strlen(level) >= sizeof(spec)) {
			snprintf(out, outlen, "log spec too long");
			return ZT_E_TOOBIG;
		}
		/* The reference writes overrides as mod:lvl. */
		snprintf(spec, sizeof(spec), "%s", level);
		for (char *c = spec; *c; c++)
			if (*c == ':' && c[1] != ':' && (c == spec || c[-1] != ':'))
				*c = '=';
	}
	for (size_t i = 0; i < req->nquery; i++) {
		const struct zt_http_kv *kv = &req->query[i];

		if (strcmp(kv->key, "level") == 0 || strcmp(kv->key, "reset") == 0)
			continue;
		if (!kv->value || !kv->value[0] || strchr(kv->key, ',') || strchr(kv->key, '=')) {
			snprintf(out, outlen, "bad argument \"%.64s\": expected MODULE=LEVEL",
			         kv->key);
			return ZT_E_PARSE;
		}
		spec_without(spec, kv->key, tmp, sizeof(tmp));
		n = snprintf(spec, sizeof(spec), "%s,%s=%s", tmp, kv->key, kv->value);
		if (n < 0 || (size_t)n >= sizeof(spec)) {
			snprintf(out, outlen, "log spec too long");
			return ZT_E_TOOBIG;
		}
	}
	if (zt_log_set_spec(spec, why, sizeof(why)) < 0) {
		zt_log_set_spec(saved, NULL, 0);
		snprintf(out, outlen, "%s", why);
		return ZT_E_PARSE;
	}
	zt_log_get_spec(out, outlen);
	if (strcmp(out, saved) != 0)
		zt_info("log spec changed from %s to %s", saved, out);
	return 0;
}

static void on_logging(const struct zt_http_request *req, struct zt_http_response *resp, void *arg)
{
	struct zt_admin *a = arg;
	char out[SPEC_MAX];

	if (strcmp(req->method, "GET") == 0 && req->nquery > 0) {
		resp->status = 405;
		zt_http_printf(resp, "changing the log spec needs POST\n");
		return;
	}
	if (zt_admin_logging(req, a->reset_spec, out, sizeof(out)) < 0)
		resp->status = 400;
	zt_http_printf(resp, "%s\n", out);
}

/* ---- /quitquitquit and / ----------------------------------------------------------------- */

static void on_quit(const struct zt_http_request *req, struct zt_http_response *resp, void *arg)
{
	struct zt_admin *a = arg;

	(void)req;
	if (!a->stop) {
		resp->status = 503;
		zt_http_printf(resp, "shutdown not available\n");
		return;
	}
	zt_info("shutdown requested through /quitquitquit");
	if (a->stop(a->stop_arg))
		zt_http_printf(resp, "shutdown now\n");
	else
		zt_http_printf(resp, "shutdown already in progress\n");
}

/* In place of the reference's jemalloc/pprof endpoints (spec §8.3): what glibc's allocator
 * reports, with no profiling. */
static void on_heap(const struct zt_http_request *req, struct zt_http_response *resp, void *arg)
{
	const char *fmt = zt_http_query(req, "format");
	struct mallinfo2 mi;
	json_t *o;
	char *text;

	(void)arg;
	if (fmt && !strcmp(fmt, "xml")) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		if (!f || malloc_info(0, f) < 0) {
			if (f)
				fclose(f);
			free(buf);
			resp->status = 500;
			zt_http_printf(resp, "malloc_info failed\n");
			return;
		}
		fclose(f);
		resp->content_type = "application/xml";
		zt_http_printf(resp, "%.*s", (int)len, buf);
		free(buf);
		return;
	}
	if (fmt && *fmt && strcmp(fmt, "json")) {
		resp->status = 400;
		zt_http_printf(resp, "format=%s: expected json or xml\n", fmt);
		return;
	}
	mi = mallinfo2();
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "allocator", "glibc",
	              "arenaBytes", (json_int_t)mi.arena, "mmappedBytes", (json_int_t)mi.hblkhd,
	              "mmappedRegions", (json_int_t)mi.hblks, "inUseBytes",
	              (json_int_t)(mi.uordblks + mi.hblkhd), "freeBytes", (json_int_t)mi.fordblks,
	              "freeChunks", (json_int_t)mi.ordblks, "releasableBytes",
	              (json_int_t)mi.keepcost);
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (!text)
		abort();
	resp->content_type = "application/json";
	zt_http_printf(resp, "%s\n", text);
	free(text);
}

static void on_index(const struct zt_http_request *req, struct zt_http_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
		zt_http_printf(resp, "%s\n", endpoints[i]);
}

/* ---- admin lifecycle --------------------------------------------------------------------- */

static bool loopback_addr(const char *s)
{
	struct zt_sockaddr sa;

	if (strncmp(s, "localhost:", 10) == 0)
		return true;
	return zt_addr_parse(&sa, s, strlen(s), ZT_ADDR_PORT0_OK) == 0 && zt_ip_is_loopback(&sa.ip);
}

struct zt_admin *zt_admin_new(struct zt_loop *loop, const char *listen_addr, char *err,
                              size_t errlen)
{
	struct zt_admin *a;

	if (!loopback_addr(listen_addr)) {
		snprintf(err, errlen, "admin address \"%.64s\" is not a loopback address",
		         listen_addr);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->http = zt_http_server_new(loop, listen_addr, err, errlen);
	if (!a->http) {
		free(a);
		return NULL;
	}
	zt_log_get_spec(a->reset_spec, sizeof(a->reset_spec));
	if (zt_http_route(a->http, "GET", "/config_dump", on_config_dump, a) < 0 ||
	    zt_http_route(a->http, "GET", "/logging", on_logging, a) < 0 ||
	    zt_http_route(a->http, "POST", "/logging", on_logging, a) < 0 ||
	    zt_http_route(a->http, "POST", "/quitquitquit", on_quit, a) < 0 ||
	    zt_http_route(a->http, "GET", "/debug/heap", on_heap, a) < 0 ||
	    zt_http_route(a->http, "GET", "/", on_index, a) < 0)
		abort(); /* a fresh server has room for these */
	return a;
}

void zt_admin_quiesce(struct zt_admin *a)
{
	if (a)
		zt_http_server_quiesce(a->http);
}

void zt_ready_quiesce(struct zt_ready *r)
{
	if (r)
		zt_http_server_quiesce(r->http);
}

void zt_admin_free(struct zt_admin *a)
{
	if (!a)
		return;
	zt_http_server_free(a->http);
	for (size_t i = 0; i < a->nsections; i++)
		free(a->sections[i].name);
	free(a);
}

uint16_t zt_admin_port(const struct zt_admin *a)
{
	return zt_http_server_port(a->http);
}

struct zt_http_server *zt_admin_http(struct zt_admin *a)
{
	return a->http;
}

static int add_section(struct zt_admin *a, const char *name, zt_admin_section_cb fn,
                       zt_admin_section_write_cb write, void *arg)
{
	for (size_t i = 0; i < a->nsections; i++)
		if (strcmp(a->sections[i].name, name) == 0)
			return -EEXIST;
	if (a->nsections == ZT_ADMIN_MAX_SECTIONS)
		return ZT_E_TOOBIG;
	a->sections[a->nsections].name = xstrdup(name);
	a->sections[a->nsections].fn = fn;
	a->sections[a->nsections].write = write;
	a->sections[a->nsections].arg = arg;
	a->nsections++;
	return 0;
}

int zt_admin_add_section(struct zt_admin *a, const char *name, zt_admin_section_cb fn, void *arg)
{
	return add_section(a, name, fn, NULL, arg);
}

int zt_admin_add_section_writer(struct zt_admin *a, const char *name,
                                zt_admin_section_write_cb write, void *arg)
{
	return add_section(a, name, NULL, write, arg);
}

void zt_admin_set_stop(struct zt_admin *a, zt_admin_stop_cb cb, void *arg)
{
	a->stop = cb;
	a->stop_arg = arg;
}

/* ---- readiness --------------------------------------------------------------------------- */

struct zt_ready *zt_ready_new(void)
{
	struct zt_ready *r = xcalloc(1, sizeof(*r));

	return r;
}

void zt_ready_free(struct zt_ready *r)
{
	if (!r)
		return;
	zt_http_server_free(r->http);
	for (size_t i = 0; i < r->ntasks; i++)
		free(r->tasks[i]);
	free(r);
}

static void on_ready(const struct zt_http_request *req, struct zt_http_response *resp, void *arg)
{
	struct zt_ready *r = arg;
	char pending[1024];

	(void)req;
	if (zt_ready_is_ready(r)) {
		zt_http_printf(resp, "ready\n");
		return;
	}
	zt_ready_pending(r, pending, sizeof(pending));
	resp->status = 500;
	zt_http_printf(resp, "not ready, pending: %s\n", pending);
}

int zt_ready_serve(struct zt_ready *r, struct zt_loop *loop, const char *listen_addr, char *err,
                   size_t errlen)
{
	if (r->http)
		return ZT_E_STATE;
	r->http = zt_http_server_new(loop, listen_addr, err, errlen);
	if (!r->http)
		return -EINVAL;
	if (zt_http_route(r->http, "GET", "/healthz/ready", on_ready, r) < 0)
		abort();
	return 0;
}

uint16_t zt_ready_port(const struct zt_ready *r)
{
	return r->http ? zt_http_server_port(r->http) : 0;
}

int zt_ready_add(struct zt_ready *r, const char *task)
{
	for (size_t i = 0; i < r->ntasks; i++)
		if (strcmp(r->tasks[i], task) == 0)
			return 0;
	if (r->ntasks == ZT_READY_MAX_TASKS)
		return ZT_E_TOOBIG;
	r->tasks[r->ntasks] = xstrdup(task);
	r->ntasks++;
	return 0;
}

void zt_ready_done(struct zt_ready *r, const char *task)
{
	for (size_t i = 0; i < r->ntasks; i++) {
		if (strcmp(r->tasks[i], task) != 0)
			continue;
		free(r->tasks[i]);
		memmove(&r->tasks[i], &r->tasks[i + 1], (r->ntasks - i - 1) * sizeof(r->tasks[0]));
		r->ntasks--;
		if (r->ntasks == 0)
			zt_info("ready");
		return;
	}
}

bool zt_ready_is_ready(const struct zt_ready *r)
{
	return r->ntasks == 0;
}

void zt_ready_pending(const struct zt_ready *r, char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < r->ntasks && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", r->tasks[i]);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}
