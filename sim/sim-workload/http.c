/* HTTP mode of sim-workload (see http.h). HTTP/1.1 requests are parsed with libhttp-parser;
 * h2c connections run on the project's HTTP/2 layer over a plain socket. Invariant: a
 * connection is closed once and freed from a defer. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <http_parser.h>

#include "protocol/h2.h"
#include "protocol/sock.h"
#include "runtime/addr.h"
#include "runtime/buf.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("http");

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

struct hconn {
	LIST_ENTRY(hconn) link;
	struct zt_loop *loop;
	int fd;
	struct zt_io io;
	struct zt_defer reap;
	bool closed, h2, close_after_flush, too_big;
	char peer[ZT_ADDR_STRLEN];
	char banner[400];
	/* HTTP/1.1 */
	http_parser p;
	struct zt_buf in, out;
	struct zt_buf req; /* the answer being built for the current request */
	bool last_value;
	/* h2c */
	struct zt_h2_conn *h2c;
};

static LIST_HEAD(, hconn) conns = LIST_HEAD_INITIALIZER(conns);

static void on_reap(struct zt_defer *d, void *arg)
{
	struct hconn *c = arg;

	(void)d;
	zt_buf_clear(&c->in);
	zt_buf_clear(&c->out);
	zt_buf_clear(&c->req);
	free(c);
}

static void hclose(struct hconn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	LIST_REMOVE(c, link);
	if (c->h2c) {
		zt_h2_conn_close(c->h2c, "exiting");
		c->h2c = NULL;
	} else if (c->fd >= 0) {
		zt_io_stop(&c->io);
		close(c->fd);
	}
	c->fd = -1;
	zt_defer_start(c->loop, &c->reap, on_reap, c);
}

void sw_http_close_all(void)
{
	while (!LIST_EMPTY(&conns))
		hclose(LIST_FIRST(&conns));
}

/* ---- HTTP/1.1 -------------------------------------------------------------------------- */

static int on_begin(http_parser *p)
{
	struct hconn *c = p->data;
	zt_buf_consume(&c->req, zt_buf_len(&c->req));
	zt_buf_appendf(&c->req, "%s\nsource=%s\nprotocol=HTTP/1.1\n", c->banner, c->peer);
	c->last_value = false;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct hconn *c = p->data;
	if (zt_buf_len(&c->req) + len > SW_HTTP_MAX_HEAD) {
		c->too_big = true;
		return -1;
	}
	/* The method is known once the URL starts; the URL may come in pieces. */
	const char *d = (const char *)zt_buf_data(&c->req);
	if (!memmem(d, zt_buf_len(&c->req), "\nmethod=", 8))
		zt_buf_appendf(&c->req, "method=%s\npath=", http_method_str(p->method));
	zt_buf_append(&c->req, at, len);
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct hconn *c = p->data;
	if (zt_buf_len(&c->req) + len > SW_HTTP_MAX_HEAD) {
		c->too_big = true;
		return -1;
	}
	if (c->last_value || !memmem(zt_buf_data(&c->req), zt_buf_len(&c->req), "\nheader ", 8))
		zt_buf_appendf(&c->req, "\nheader ");
	c->last_value = false;
	for (size_t i = 0; i < len; i++) {
		char ch = at[i];
		zt_buf_appendf(&c->req, "%c", ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct hconn *c = p->data;
	if (zt_buf_len(&c->req) + len > SW_HTTP_MAX_HEAD) {
		c->too_big = true;
		return -1;
	}
	if (!c->last_value)
		zt_buf_appendf(&c->req, ": ");
	c->last_value = true;
	zt_buf_append(&c->req, at, len);
	return 0;
}

static int on_done(http_parser *p)
{
	struct hconn *c = p->data;
	bool keep = http_should_keep_alive(p);

	zt_buf_appendf(&c->req, "\n");
	zt_buf_appendf(
	        &c->out,
	        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n%s\r\n",
	        zt_buf_len(&c->req), keep ? "" : "connection: close\r\n");
	zt_buf_append(&c->out, zt_buf_data(&c->req), zt_buf_len(&c->req));
	if (!keep)
		c->close_after_flush = true;
	return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_begin,
        .on_url = on_url,
        .on_header_field = on_field,
        .on_header_value = on_value,
        .on_message_complete = on_done,
};

static void flush1(struct hconn *c)
{
	while (zt_buf_len(&c->out)) {
		ssize_t w = send(c->fd, zt_buf_data(&c->out), zt_buf_len(&c->out), MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			zt_io_set(&c->io, ZT_IO_READ | ZT_IO_WRITE);
			return;
		}
		if (w <= 0) {
			hclose(c);
			return;
		}
		zt_buf_consume(&c->out, (size_t)w);
	}
	zt_io_set(&c->io, ZT_IO_READ);
	if (c->close_after_flush)
		hclose(c);
}

static void bad(struct hconn *c, int code, const char *text)
{
	zt_buf_appendf(&c->out,
	               "HTTP/1.1 %d %s\r\ncontent-length: %zu\r\nconnection: close\r\n\r\n%s\n",
	               code, text, strlen(text) + 1, text);
	c->close_after_flush = true;
	flush1(c);
}

static void on_io1(struct zt_io *io, unsigned ev, void *arg)
{
	struct hconn *c = arg;
	char buf[16384];

	(void)io;
	if (ev & ZT_IO_WRITE) {
		flush1(c);
		if (c->closed)
			return;
	}
	if (!(ev & ZT_IO_READ) || c->close_after_flush)
		return;
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		hclose(c);
		return;
	}
	size_t used = http_parser_execute(&c->p, &settings, buf, (size_t)n);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
	if (e != HPE_OK || (n > 0 && used != (size_t)n)) {
		bool big = c->too_big || e == HPE_HEADER_OVERFLOW;
		zt_info("bad request from %s: %s", c->peer,
		        big ? "head too large" : http_errno_name(e));
		bad(c, big ? 431 : 400, big ? "Request Header Fields Too Large" : "Bad Request");
		return;
	}
	if (n == 0) {
		c->close_after_flush = true;
		if (!zt_buf_len(&c->out)) {
			hclose(c);
			return;
		}
	}
	flush1(c);
}

/* ---- h2c -------------------------------------------------------------------------------- */

static void on_h2_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	(void)p;
	(void)arg;
	zt_h2_stream_consume(st, len);
}

static const struct zt_h2_stream_cbs h2_stream_cbs = {.on_data = on_h2_data};

static void on_h2_request(struct zt_h2_conn *hc, struct zt_h2_stream *st,
                          const struct zt_h2_header *h, size_t n, bool end, void *arg)
{
	struct hconn *c = arg;
	struct zt_buf b;
	const char *method = "-", *path = "-";
	size_t ml = 1, pl = 1;

	(void)hc;
	(void)end;
	zt_h2_stream_set_cbs(st, &h2_stream_cbs, c);
	for (size_t i = 0; i < n; i++) {
		if (h[i].name_len == 7 && !memcmp(h[i].name, ":method", 7))
			method = h[i].value, ml = h[i].value_len;
		if (h[i].name_len == 5 && !memcmp(h[i].name, ":path", 5))
			path = h[i].value, pl = h[i].value_len;
	}
	zt_buf_init(&b, 0);
	zt_buf_appendf(&b, "%s\nsource=%s\nprotocol=HTTP/2\nmethod=%.*s\npath=%.*s", c->banner,
	               c->peer, (int)ml, method, (int)pl, path);
	for (size_t i = 0; i < n; i++)
		if (h[i].name_len && h[i].name[0] != ':')
			zt_buf_appendf(&b, "\nheader %.*s: %.*s", (int)h[i].name_len, h[i].name,
			               (int)h[i].value_len, h[i].value);
	zt_buf_appendf(&b, "\n");
	char len[24];
	snprintf(len, sizeof(len), "%zu", zt_buf_len(&b));
	struct zt_h2_header rh[] = {ZT_H2_HDR("content-type", "text/plain"),
	                            ZT_H2_HDR("content-length", len)};
	if (zt_h2_stream_respond(st, 200, rh, 2, false) == 0 &&
	    zt_h2_stream_write_all(st, zt_buf_data(&b), zt_buf_len(&b)) == 0)
		zt_h2_stream_end(st, NULL, 0);
	zt_buf_clear(&b);
}

static void on_h2_close(struct zt_h2_conn *hc, const char *reason, void *arg)
{
	struct hconn *c = arg;

	(void)hc;
	zt_debug("h2c connection from %s closed: %s", c->peer, reason);
	c->h2c = NULL;
	hclose(c);
}

static const struct zt_h2_conn_cbs h2_cbs = {.on_request = on_h2_request, .on_close = on_h2_close};

/* ---- detection --------------------------------------------------------------------------- */

static void on_first(struct zt_io *io, unsigned ev, void *arg)
{
	struct hconn *c = arg;
	char peek[sizeof(PREFACE) - 1];
	ssize_t n;

	(void)io;
	(void)ev;
	n = recv(c->fd, peek, sizeof(peek), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		hclose(c);
		return;
	}
	if ((size_t)n < sizeof(peek) && !memcmp(peek, PREFACE, (size_t)n))
		return; /* could still be the preface: wait for more */
	zt_io_stop(&c->io);
	if ((size_t)n == sizeof(peek) && !memcmp(peek, PREFACE, sizeof(peek))) {
		struct zt_sock s;
		struct zt_h2_settings set;
		int fd = c->fd;
		memset(&s, 0, sizeof(s));
		zt_h2_settings_default(&set, true);
		c->h2 = true;
		if (zt_sock_start(&s, c->loop, fd, NULL, NULL, NULL) < 0 ||
		    zt_h2_conn_new(&c->h2c, c->loop, &s, true, &set, &h2_cbs, c) < 0) {
			c->fd = -1; /* closed by the failing call */
			c->h2c = NULL;
			hclose(c);
		}
		return;
	}
	http_parser_init(&c->p, HTTP_REQUEST);
	c->p.data = c;
	if (zt_io_start(c->loop, &c->io, c->fd, ZT_IO_READ, on_io1, c) < 0)
		hclose(c);
}

void sw_http_conn_start(struct zt_loop *loop, int fd, const struct sockaddr_storage *ss,
                        socklen_t sslen, const char *banner)
{
	struct hconn *c = xcalloc(1, sizeof(*c));
	struct zt_sockaddr peer;

	c->loop = loop;
	c->fd = fd;
	snprintf(c->banner, sizeof(c->banner), "%s", banner);
	zt_buf_init(&c->in, 0);
	zt_buf_init(&c->out, 0);
	zt_buf_init(&c->req, 0);
	if (zt_addr_from_sockaddr(&peer, (const struct sockaddr *)ss, sslen) < 0 ||
	    zt_addr_format(&peer, c->peer, sizeof(c->peer)) < 0)
		snprintf(c->peer, sizeof(c->peer), "?");
	LIST_INSERT_HEAD(&conns, c, link);
	if (zt_io_start(loop, &c->io, fd, ZT_IO_READ, on_first, c) < 0)
		hclose(c);
}
