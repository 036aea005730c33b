/* Admin, readiness and the HTTP server under them (admin/admin.h, admin/http.h), driven by
 * raw HTTP/1.1 requests over loopback TCP while the server runs on the test's loop: JSON
 * config dump, log spec changes, shutdown, readiness, routing errors and body limits. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/http.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/loop.h"

static struct zt_loop *loop;
static char err[256];

struct reply {
	int status;
	char head[2048];
	char *body;
	size_t body_len;
	char raw[256 * 1024];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sends req (len bytes) to 127.0.0.1:port and reads until the server closes, running the loop
 * meanwhile. A write the server refuses (it answered early and closed) ends the sending. */
static void http_raw(uint16_t port, const char *req, size_t len, struct reply *r)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	uint64_t deadline = now_ms() + 5000;
	size_t sent = 0, got = 0;
	int fd;
	char *sep;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 || errno == EINPROGRESS);
	while (now_ms() < deadline) {
		ssize_t n;

		zt_loop_run_once(loop, 5);
		if (sent < len) {
			n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (errno != EAGAIN && errno != ENOTCONN)
				sent = len;
		}
		n = recv(fd, r->raw + got, sizeof(r->raw) - 1 - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != ENOTCONN))
			break;
	}
	close(fd);
	r->raw[got] = '\0';
	ck_assert_msg(got > 12 && sscanf(r->raw, "HTTP/1.%*d %d", &r->status) == 1,
	              "no HTTP response: \"%s\"", r->raw);
	sep = strstr(r->raw, "\r\n\r\n");
	ck_assert_ptr_nonnull(sep);
	snprintf(r->head, sizeof(r->head), "%.*s", (int)(sep - r->raw), r->raw);
	r->body = sep + 4;
	r->body_len = got - (size_t)(r->body - r->raw);
}

static struct reply *http(uint16_t port, const char *method, const char *target)
{
	static struct reply r;
	char req[1024];
	int n = snprintf(req, sizeof(req),
	                 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s\r\n", method,
	                 target, strcmp(method, "POST") == 0 ? "Content-Length: 0\r\n" : "");

	memset(&r, 0, sizeof(r));
	http_raw(port, req, (size_t)n, &r);
	return &r;
}

static void quiet(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)level, (void)line, (void)len, (void)arg;
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	zt_log_set_sink(quiet, NULL);
	zt_log_set_spec("info", NULL, 0);
	ck_assert_int_eq(zt_loop_new(&loop), 0);
}

static void teardown(void)
{
	zt_loop_free(loop);
}

static struct zt_admin *admin_new(void)
{
	struct zt_admin *a = zt_admin_new(loop, "127.0.0.1:0", err, sizeof(err));

	ck_assert_msg(a != NULL, "%s", err);
	ck_assert_uint_ne(zt_admin_port(a), 0);
	return a;
}

/* ---- /config_dump ------------------------------------------------------------------------ */

static json_t *version_section(void *arg)
{
	return json_pack("{s:s, s:i}", "name", (const char *)arg, "n", 1);
}

static json_t *workloads_section(void *arg)
{
	(void)arg;
	return json_pack("[{s:s}, {s:s}]", "uid", "w1", "uid", "w2\"quoted\"");
}

static int written_section(void *arg, struct zt_buf *out, const char *indent)
{
	(void)arg;
	return zt_buf_appendf(out, "[\n%s  {\"n\":1},\n%s  {\"n\":2}\n%s]", indent, indent, indent);
}

static int failing_section(void *arg, struct zt_buf *out, const char *indent)
{
	(void)arg;
	(void)out;
	(void)indent;
	return ZT_E_TOOBIG;
}

static json_t *null_section(void *arg)
{
	(void)arg;
	return NULL;
}

START_TEST(admin_config_dump_is_json_with_every_section_and_sorted_keys)
{
	struct zt_admin *a = admin_new();
	struct reply *r;
	json_t *doc;
	json_error_t jerr;

	ck_assert_int_eq(zt_admin_add_section(a, "version", version_section, "ztunnel"), 0);
	ck_assert_int_eq(zt_admin_add_section(a, "workloads", workloads_section, NULL), 0);
	ck_assert_int_eq(zt_admin_add_section(a, "certificates", null_section, NULL), 0);
	ck_assert_int_eq(zt_admin_add_section(a, "workloads", workloads_section, NULL), -EEXIST);
	ck_assert_int_eq(zt_admin_add_section_writer(a, "policies", written_section, NULL), 0);
	ck_assert_int_eq(zt_admin_add_section_writer(a, "version", written_section, NULL), -EEXIST);
	r = http(zt_admin_port(a), "GET", "/config_dump");
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strcasestr(r->head, "Content-Type: application/json"));
	doc = json_loadb(r->body, r->body_len, 0, &jerr);
	ck_assert_msg(doc != NULL, "invalid JSON: %s", jerr.text);
	ck_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(doc, "version"), "name")),
	        "ztunnel");
	ck_assert_int_eq(json_array_size(json_object_get(doc, "workloads")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
	                         json_array_get(json_object_get(doc, "workloads"), 1), "uid")),
	                 "w2\"quoted\"");
	ck_assert(json_is_null(json_object_get(doc, "certificates")));
	ck_assert(strstr(r->body, "\"version\"") < strstr(r->body, "\"workloads\""));
	ck_assert(strstr(r->body, "\"certificates\"") < strstr(r->body, "\"version\""));
	/* A written section sits among the others in name order, its lines as written. */
	ck_assert_int_eq(json_integer_value(json_object_get(
	                         json_array_get(json_object_get(doc, "policies"), 1), "n")),
	                 2);
	ck_assert_ptr_nonnull(
	        strstr(r->body, "\n  \"policies\": [\n    {\"n\":1},\n    {\"n\":2}\n  ],\n"));
	ck_assert(strstr(r->body, "\"policies\"") < strstr(r->body, "\"version\""));
	json_decref(doc);
	/* POST is not how to read it. */
	ck_assert_int_eq(http(zt_admin_port(a), "POST", "/config_dump")->status, 405);
	zt_admin_free(a);
}
END_TEST

START_TEST(admin_config_dump_answers_500_when_a_section_cannot_be_written)
{
	struct zt_admin *a = admin_new();
	struct reply *r;

	ck_assert_int_eq(zt_admin_add_section(a, "version", version_section, "ztunnel"), 0);
	ck_assert_int_eq(zt_admin_add_section_writer(a, "workloads", failing_section, NULL), 0);
	r = http(zt_admin_port(a), "GET", "/config_dump");
	ck_assert_int_eq(r->status, 500);
	ck_assert_ptr_nonnull(strstr(r->body, "cannot encode the configuration"));
	ck_assert_ptr_null(strstr(r->body, "ztunnel"));
	zt_admin_free(a);
}
END_TEST

/* ---- /logging ---------------------------------------------------------------------------- */

static void expect_spec(const char *want)
{
	char spec[256];

	zt_log_get_spec(spec, sizeof(spec));
	ck_assert_str_eq(spec, want);
}

START_TEST(admin_logging_shows_the_spec_and_post_changes_it)
{
	struct zt_admin *a;
	uint16_t port;
	struct reply *r;

	zt_log_set_spec("info,proxy=warn", NULL, 0);
	a = admin_new();
	port = zt_admin_port(a);
	r = http(port, "GET", "/logging");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "info,proxy=warn\n");
	r = http(port, "POST", "/logging");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "info,proxy=warn\n");

	r = http(port, "POST", "/logging?access=trace");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "info,proxy=warn,access=trace\n");
	expect_spec("info,proxy=warn,access=trace");
	r = http(port, "POST", "/logging?access=debug");
	ck_assert_str_eq(r->body, "info,proxy=warn,access=debug\n"); /* replaced, not added */

	r = http(port, "POST", "/logging?level=debug");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "debug\n");
	expect_spec("debug");
	r = http(port, "POST", "/logging?level=warn,xds:trace,ztunnel::pool:error");
	ck_assert_str_eq(r->body, "warn,xds=trace,pool=error\n");

	/* Bad requests change nothing. */
	r = http(port, "POST", "/logging?level=loud");
	ck_assert_int_eq(r->status, 400);
	ck_assert_ptr_nonnull(strstr(r->body, "loud"));
	r = http(port, "POST", "/logging?xds=sometimes");
	ck_assert_int_eq(r->status, 400);
	r = http(port, "POST", "/logging?xds");
	ck_assert_int_eq(r->status, 400);
	r = http(port, "GET", "/logging?level=off");
	ck_assert_int_eq(r->status, 405);
	expect_spec("warn,xds=trace,pool=error");

	r = http(port, "POST", "/logging?reset");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "info,proxy=warn\n");
	expect_spec("info,proxy=warn");
	zt_admin_free(a);
}
END_TEST

/* ---- /quitquitquit ----------------------------------------------------------------------- */

static int stops;

static bool on_stop(void *arg)
{
	ck_assert_ptr_eq(arg, &stops);
	return ++stops == 1;
}

START_TEST(admin_quitquitquit_stops_on_post_only)
{
	struct zt_admin *a = admin_new();
	struct reply *r;

	stops = 0;
	r = http(zt_admin_port(a), "POST", "/quitquitquit");
	ck_assert_int_eq(r->status, 503); /* nobody to stop yet */
	zt_admin_set_stop(a, on_stop, &stops);
	r = http(zt_admin_port(a), "GET", "/quitquitquit");
	ck_assert_int_eq(r->status, 405);
	ck_assert_ptr_nonnull(strcasestr(r->head, "Allow: POST"));
	ck_assert_int_eq(stops, 0);
	r = http(zt_admin_port(a), "POST", "/quitquitquit");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "shutdown now\n");
	ck_assert_int_eq(stops, 1);
	r = http(zt_admin_port(a), "POST", "/quitquitquit");
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "shutdown already in progress\n");
	ck_assert_int_eq(stops, 2);
	zt_admin_free(a);
}
END_TEST

START_TEST(admin_quiesce_refuses_new_connections_and_serves_open_ones)
{
	struct zt_admin *a = admin_new();
	uint16_t port = zt_admin_port(a);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
	char buf[4096];
	size_t got = 0;
	uint64_t deadline;
	int fd, fd2;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	for (int i = 0; i < 20; i++) /* accepted by the server */
		zt_loop_run_once(loop, 5);
	zt_admin_quiesce(a);
	zt_admin_quiesce(a); /* idempotent */
	fd2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(fd2, (struct sockaddr *)&sin, sizeof(sin)), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(fd2);
	ck_assert_int_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	deadline = now_ms() + 5000;
	while (now_ms() < deadline && got < sizeof(buf) - 1) {
		ssize_t n;
		zt_loop_run_once(loop, 5);
		n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			break;
	}
	buf[got] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "reply: %s", buf);
	close(fd);
	zt_admin_free(a);
}
END_TEST

START_TEST(admin_heap_summary_in_json_or_malloc_info_xml)
{
	struct zt_admin *a = admin_new();
	struct reply *r;
	json_t *doc;

	r = http(zt_admin_port(a), "GET", "/debug/heap");
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strcasestr(r->head, "Content-Type: application/json"));
	doc = json_loadb(r->body, r->body_len, 0, NULL);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "allocator")), "glibc");
	ck_assert(json_is_integer(json_object_get(doc, "inUseBytes")));
	ck_assert(json_is_integer(json_object_get(doc, "arenaBytes")));
	json_decref(doc);
	r = http(zt_admin_port(a), "GET", "/debug/heap?format=xml");
	ck_assert_int_eq(r->status, 200);
	ck_assert_msg(strncmp(r->body, "<malloc version=", 16) == 0, "%s", r->body);
	r = http(zt_admin_port(a), "GET", "/debug/heap?format=svg");
	ck_assert_int_eq(r->status, 400);
	ck_assert_str_eq(r->body, "format=svg: expected json or xml\n");
	zt_admin_free(a);
}
END_TEST

START_TEST(admin_unknown_path_is_404_and_index_lists_endpoints)
{
	struct zt_admin *a = admin_new();
	struct reply *r;

	r = http(zt_admin_port(a), "GET", "/nope");
	ck_assert_int_eq(r->status, 404);
	r = http(zt_admin_port(a), "GET", "/config_dump/extra");
	ck_assert_int_eq(r->status, 404);
	r = http(zt_admin_port(a), "GET", "/");
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, "/quitquitquit"));
	zt_admin_free(a);
}
END_TEST

START_TEST(admin_refuses_to_listen_beyond_loopback)
{
	static const char *const refused[] = {"0.0.0.0:0", "10.1.2.3:0", ":0", "[::]:0",
	                                      "nonsense"};
	struct zt_admin *a;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err[0] = '\0';
		ck_assert_ptr_null(zt_admin_new(loop, refused[i], err, sizeof(err)));
		ck_assert_msg(strstr(err, "loopback"), "%s: %s", refused[i], err);
	}
	a = zt_admin_new(loop, "localhost:0", err, sizeof(err));
	ck_assert_msg(a != NULL, "%s", err);
	ck_assert_int_eq(http(zt_admin_port(a), "GET", "/logging")->status, 200);
	zt_admin_free(a);
}
END_TEST

/* ---- request bodies ---------------------------------------------------------------------- */

static void on_echo(const struct zt_http_request *req, struct zt_http_response *resp, void *arg)
{
	(void)arg;
	ck_assert_uint_eq(strlen(req->body), req->body_len);
	zt_http_printf(resp, "%zu", req->body_len);
}

static void post_body(uint16_t port, size_t n, bool chunked, struct reply *r)
{
	size_t cap = n + 1024, off;
	char *req = malloc(cap);

	ck_assert_ptr_nonnull(req);
	off = (size_t)snprintf(req, cap, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
	if (chunked) {
		off += (size_t)snprintf(req + off, cap - off,
		                        "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", n);
		memset(req + off, 'b', n);
		off += n;
		off += (size_t)snprintf(req + off, cap - off, "\r\n0\r\n\r\n");
	} else {
		off += (size_t)snprintf(req + off, cap - off, "Content-Length: %zu\r\n\r\n", n);
		memset(req + off, 'b', n);
		off += n;
	}
	memset(r, 0, sizeof(*r));
	http_raw(port, req, off, r);
	free(req);
}

START_TEST(http_bodies_up_to_the_limit_are_delivered_and_larger_ones_get_413)
{
	static struct reply r;
	struct zt_admin *a = admin_new();
	uint16_t port = zt_admin_port(a);

	ck_assert_int_eq(zt_http_route(zt_admin_http(a), "POST", "/echo", on_echo, NULL), 0);
	post_body(port, 5, false, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "5");
	post_body(port, ZT_HTTP_MAX_BODY, false, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "65536");
	post_body(port, ZT_HTTP_MAX_BODY, true, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "65536");
	/* A chunked body has no declared size: it is read, dropped, and refused at the end. */
	post_body(port, ZT_HTTP_MAX_BODY + 1, true, &r);
	ck_assert_int_eq(r.status, 413);
	/* A declared size over the limit is refused before the body is read. */
	memset(&r, 0, sizeof(r));
	http_raw(port,
	         "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	         "Content-Length: 100000000\r\n\r\n",
	         strlen("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	                "Content-Length: 100000000\r\n\r\n"),
	         &r);
	ck_assert_int_eq(r.status, 413);
	zt_admin_free(a);
}
END_TEST

/* ---- the HTTP server itself -------------------------------------------------------------- */

static void on_query(const struct zt_http_request *req, struct zt_http_response *resp, void *arg)
{
	(void)arg;
	resp->status = 202;
	resp->content_type = "text/x-test";
	for (size_t i = 0; i < req->nquery; i++)
		zt_http_printf(resp, "[%s=%s]", req->query[i].key,
		               req->query[i].value ? req->query[i].value : "(none)");
	zt_http_printf(resp, " b=%s", zt_http_query(req, "b") ? "present" : "absent");
	zt_http_printf(resp, " z=%s", zt_http_query(req, "z") ? "present" : "absent");
}

START_TEST(http_server_passes_decoded_query_and_handler_status)
{
	struct zt_http_server *s = zt_http_server_new(loop, "127.0.0.1:0", err, sizeof(err));
	struct reply *r;

	ck_assert_msg(s != NULL, "%s", err);
	ck_assert_int_eq(zt_http_route(s, "GET", "/q", on_query, NULL), 0);
	ck_assert_int_eq(zt_http_route(s, "GET", "/q", on_query, NULL), -EEXIST);
	r = http(zt_http_server_port(s), "GET", "/q?a=1&b&c=x%20y");
	ck_assert_int_eq(r->status, 202);
	ck_assert_ptr_nonnull(strcasestr(r->head, "Content-Type: text/x-test"));
	ck_assert_str_eq(r->body, "[a=1][b=(none)][c=x y] b=present z=absent");
	ck_assert_int_eq(http(zt_http_server_port(s), "DELETE", "/q")->status, 405);
	zt_http_server_free(s);
	zt_http_server_free(NULL);
}
END_TEST

START_TEST(http_server_reports_a_port_already_in_use)
{
	struct zt_http_server *a = zt_http_server_new(loop, "127.0.0.1:0", err, sizeof(err));
	char addr[64];

	ck_assert_ptr_nonnull(a);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", zt_http_server_port(a));
	ck_assert_ptr_null(zt_http_server_new(loop, addr, err, sizeof(err)));
	ck_assert_msg(strstr(err, "in use"), "%s", err);
	ck_assert_ptr_null(zt_http_server_new(loop, "127.0.0.1:99999", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "bad listen address"));
	zt_http_server_free(a);
}
END_TEST

START_TEST(http_server_answers_many_requests_on_one_connection)
{
	struct zt_http_server *s = zt_http_server_new(loop, "127.0.0.1:0", err, sizeof(err));
	static struct reply r;
	char req[4096] = "";
	size_t off = 0;
	int count = 0;

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(zt_http_route(s, "GET", "/q", on_query, NULL), 0);
	for (int i = 0; i < 9; i++)
		off += (size_t)snprintf(req + off, sizeof(req) - off,
		                        "GET /q?i=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
	off += (size_t)snprintf(req + off, sizeof(req) - off,
	                        "GET /q?i=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	http_raw(zt_http_server_port(s), req, off, &r);
	for (const char *p = r.raw; (p = strstr(p, "HTTP/1.1 202")); p++)
		count++;
	ck_assert_int_eq(count, 10);
	ck_assert_ptr_nonnull(strstr(r.raw, "[i=last]"));
	zt_http_server_free(s);
}
END_TEST

/* Sends req on a new connection, shuts the write side (as `nc -N` or `curl` with a request
 * read from a pipe does) and runs the loop until the server closes or 5 s have passed (its
 * idle timeout is 30 s). Returns the bytes read, NUL-terminated in buf; *closed tells whether
 * the server closed within the deadline. */
static size_t half_closed(uint16_t port, const char *req, char *buf, size_t cap, bool *closed)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	uint64_t deadline = now_ms() + 5000;
	size_t got = 0;
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	*closed = false;
	while (now_ms() < deadline && got < cap - 1) {
		ssize_t n;

		zt_loop_run_once(loop, 5);
		n = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			*closed = true;
			break;
		}
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

START_TEST(http_server_answers_and_closes_at_once_when_the_client_half_closes)
{
	struct zt_http_server *s = zt_http_server_new(loop, "127.0.0.1:0", err, sizeof(err));
	uint16_t port;
	char buf[8192];
	bool closed;
	int count = 0;

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(zt_http_route(s, "GET", "/q", on_query, NULL), 0);
	ck_assert_int_eq(zt_http_route(s, "POST", "/echo", on_echo, NULL), 0);
	port = zt_http_server_port(s);

	/* A complete request, then end of input: answered, then closed. */
	half_closed(port, "GET /q?i=1 HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf), &closed);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 202", 12) == 0 && strstr(buf, "[i=1]"),
	              "reply: \"%s\"", buf);
	ck_assert_msg(closed, "connection still open after the answer");

	/* Two pipelined requests: both answered. */
	half_closed(port,
	            "GET /q?i=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /q?i=2 HTTP/1.1\r\nHost: x\r\n\r\n",
	            buf, sizeof(buf), &closed);
	for (const char *p = buf; (p = strstr(p, "HTTP/1.1 202")); p++)
		count++;
	ck_assert_msg(count == 2 && strstr(buf, "[i=2]"), "reply: \"%s\"", buf);
	ck_assert(closed);

	/* A request with a body. */
	half_closed(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", buf,
	            sizeof(buf), &closed);
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "reply: \"%s\"", buf);
	ck_assert_str_eq(strstr(buf, "\r\n\r\n") + 4, "3");
	ck_assert(closed);

	/* Incomplete requests (head, body) that will never be finished: closed, unanswered or
	 * with an error status, not held until the idle timeout. */
	half_closed(port, "GET /q HTTP/1.1\r\nHost:", buf, sizeof(buf), &closed);
	ck_assert_msg(closed, "incomplete head held open");
	ck_assert_msg(buf[0] == '\0' || strncmp(buf, "HTTP/1.1 4", 10) == 0, "reply: \"%s\"", buf);
	half_closed(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", buf,
	            sizeof(buf), &closed);
	ck_assert_msg(closed, "incomplete body held open");
	ck_assert_msg(buf[0] == '\0' || strncmp(buf, "HTTP/1.1 4", 10) == 0, "reply: \"%s\"", buf);
	/* Nothing at all. */
	half_closed(port, "", buf, sizeof(buf), &closed);
	ck_assert(closed);
	ck_assert_str_eq(buf, "");
	zt_http_server_free(s);
}
END_TEST

/* ---- readiness --------------------------------------------------------------------------- */

START_TEST(ready_is_500_naming_pending_tasks_then_200)
{
	struct zt_ready *r = zt_ready_new();
	struct reply *rep;
	char pending[64];
	uint16_t port;

	ck_assert_int_eq(zt_ready_add(r, "state manager"), 0);
	ck_assert_int_eq(zt_ready_add(r, "proxy"), 0);
	ck_assert_int_eq(zt_ready_add(r, "proxy"), 0); /* once is enough */
	ck_assert_int_eq(zt_ready_serve(r, loop, "127.0.0.1:0", err, sizeof(err)), 0);
	ck_assert_int_eq(zt_ready_serve(r, loop, "127.0.0.1:0", err, sizeof(err)), ZT_E_STATE);
	port = zt_ready_port(r);
	rep = http(port, "GET", "/healthz/ready");
	ck_assert_int_eq(rep->status, 500);
	ck_assert_str_eq(rep->body, "not ready, pending: state manager, proxy\n");
	zt_ready_done(r, "state manager");
	zt_ready_done(r, "unknown task");
	rep = http(port, "GET", "/healthz/ready");
	ck_assert_int_eq(rep->status, 500);
	ck_assert_str_eq(rep->body, "not ready, pending: proxy\n");
	ck_assert(!zt_ready_is_ready(r));
	zt_ready_done(r, "proxy");
	ck_assert(zt_ready_is_ready(r));
	zt_ready_pending(r, pending, sizeof(pending));
	ck_assert_str_eq(pending, "");
	rep = http(port, "GET", "/healthz/ready");
	ck_assert_int_eq(rep->status, 200);
	ck_assert_str_eq(rep->body, "ready\n");
	ck_assert_int_eq(http(port, "POST", "/healthz/ready")->status, 405);
	ck_assert_int_eq(http(port, "GET", "/config_dump")->status, 404);
	zt_ready_free(r);
}
END_TEST

START_TEST(ready_task_list_is_bounded)
{
	struct zt_ready *r = zt_ready_new();
	char name[16];

	for (int i = 0; i < ZT_READY_MAX_TASKS; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		ck_assert_int_eq(zt_ready_add(r, name), 0);
	}
	ck_assert_int_eq(zt_ready_add(r, "one more"), ZT_E_TOOBIG);
	zt_ready_free(r);
	zt_ready_free(NULL);
	zt_admin_free(NULL);
}
END_TEST

Suite *admin_suite(void);
Suite *admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *t = tcase_create("admin");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 20);
	tcase_add_test(t, admin_config_dump_is_json_with_every_section_and_sorted_keys);
	tcase_add_test(t, admin_config_dump_answers_500_when_a_section_cannot_be_written);
	tcase_add_test(t, admin_logging_shows_the_spec_and_post_changes_it);
	tcase_add_test(t, admin_quitquitquit_stops_on_post_only);
	tcase_add_test(t, admin_quiesce_refuses_new_connections_and_serves_open_ones);
	tcase_add_test(t, admin_heap_summary_in_json_or_malloc_info_xml);
	tcase_add_test(t, admin_unknown_path_is_404_and_index_lists_endpoints);
	tcase_add_test(t, admin_refuses_to_listen_beyond_loopback);
	tcase_add_test(t, http_bodies_up_to_the_limit_are_delivered_and_larger_ones_get_413);
	tcase_add_test(t, http_server_passes_decoded_query_and_handler_status);
	tcase_add_test(t, http_server_reports_a_port_already_in_use);
	tcase_add_test(t, http_server_answers_many_requests_on_one_connection);
	tcase_add_test(t, http_server_answers_and_closes_at_once_when_the_client_half_closes);
	tcase_add_test(t, ready_is_500_naming_pending_tasks_then_200);
	tcase_add_test(t, ready_task_list_is_bounded);
	suite_add_tcase(s, t);
	return s;
}
