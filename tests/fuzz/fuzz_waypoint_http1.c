/* Fuzz target: the waypoint's HTTP/1.1 request path (sim/sim-waypoint/session.c with
 * h1head.h): a downstream client's bytes through libhttp-parser with the session's callbacks,
 * each request head collected within its bounds, decided by wp_authz_check (policies on paths,
 * methods, hosts and a header condition), and the head rebuilt for upstream. The rebuilt head
 * must parse again into the same request target and the same headers (no header or request
 * smuggled in by what the client sent). Pipelined requests are parsed one after the other.
 * Input: the downstream bytes. */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/log.h"
#include "sim/sim-waypoint/h1head.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/waypoint_fixture.h"

/* The ALLOW policy's paths and hosts (tests/fuzz/waypoint_fixture.h has the rest). */
static char *allow_paths[] = {"/api/*", "/"}, *allow_hosts[] = {"web*", "*.svc.cluster.local"};
static struct fuzz_waypoint fx;

/* One parse: the session's request side, or the check of a rebuilt head. */
struct req_side {
	struct wp_h1_head head;
	struct wp_header hs[WP_MAX_HEADER_COUNT];
	const char *url, *host;
	struct zt_buf up; /* what would go upstream */
	bool done_head, check;
	size_t heads;
};

static int on_begin(http_parser *p)
{
	struct req_side *r = p->data;
	wp_h1_head_reset(&r->head);
	r->done_head = false;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	return wp_h1_head_url(&((struct req_side *)p->data)->head, at, len);
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	return wp_h1_head_field(&((struct req_side *)p->data)->head, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	return wp_h1_head_value(&((struct req_side *)p->data)->head, at, len);
}

static void check_rebuilt(const char *method, const struct req_side *orig);

static int on_headers(http_parser *p)
{
	struct req_side *r = p->data;
	struct wp_decision d;
	const char *method = http_method_str(p->method);

	if (wp_h1_head_finish(&r->head, r->hs, &r->url, &r->host) < 0)
		return -1;
	r->done_head = true;
	r->heads++;
	if (r->check)
		return 1; /* a rebuilt head: no body follows in it */
	struct wp_request rq = {.http = true,
	                        .method = method,
	                        .path = r->url,
	                        .host = r->host,
	                        .headers = r->hs,
	                        .n_headers = r->head.nh};
	fuzz_waypoint_caller(&rq);
	if (wp_authz_check(&fx.wp, &rq, &d)) {
		zt_buf_consume(&r->up, zt_buf_len(&r->up));
		wp_h1_head_format(&r->up, method, r->url, r->hs, r->head.nh);
		check_rebuilt(method, r);
	}
	return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_begin,
        .on_url = on_url,
        .on_header_field = on_field,
        .on_header_value = on_value,
        .on_headers_complete = on_headers,
};

/* The head sent upstream parses into the same method, target and headers. */
static void check_rebuilt(const char *method, const struct req_side *orig)
{
	struct req_side r = {.check = true};
	http_parser p;
	size_t len = zt_buf_len(&orig->up);

	wp_h1_head_init(&r.head);
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &r;
	size_t used = http_parser_execute(&p, &settings, (const char *)zt_buf_data(&orig->up), len);
	if (HTTP_PARSER_ERRNO(&p) != HPE_OK || !r.done_head || r.heads != 1 || used != len ||
	    strcmp(http_method_str(p.method), method) != 0 || strcmp(r.url, orig->url) != 0 ||
	    r.head.nh != orig->head.nh)
		__builtin_trap();
	for (size_t i = 0; i < r.head.nh; i++)
		if (strcmp(r.hs[i].name, orig->hs[i].name) != 0 ||
		    strcmp(r.hs[i].value, orig->hs[i].value) != 0)
			__builtin_trap();
	wp_h1_head_clear(&r.head);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	fuzz_waypoint_init(&fx, allow_paths, allow_hosts);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct req_side r = {0};
	http_parser p;
	const char *at = (const char *)data;

	wp_h1_head_init(&r.head);
	zt_buf_init(&r.up, 0);
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &r;
	/* As the session's pump: parse, and go on after each request until an error or the end
	 * (an upgrade is refused there). */
	while (size) {
		size_t used = http_parser_execute(&p, &settings, at, size);
		if (HTTP_PARSER_ERRNO(&p) != HPE_OK || p.upgrade || used == 0)
			break;
		at += used;
		size -= used;
	}
	wp_h1_head_clear(&r.head);
	zt_buf_clear(&r.up);
	return 0;
}
