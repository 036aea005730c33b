/* libmicrohttpd in external-epoll mode on our loop. Invariant: after every MHD_run() the
 * timer is re-armed from MHD_get_timeout(), so work MHD has pending without a new event on
 * its epoll fd (buffered input, idle timeouts) is never left waiting, and a client that has
 * shut its write side is seen to have done so (see nudge_half_closed). Each request carries
 * a small context (body bounded by ZT_HTTP_MAX_BODY) freed by MHD's completion callback. */
#include "admin/http.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "runtime/addr.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("http");

#define MAX_QUERY      32
#define CONN_LIMIT     64
#define CONN_TIMEOUT_S 30
#define DEFAULT_CTYPE  "text/plain; charset=utf-8"

struct route {
	char *method, *path;
	zt_http_handler_cb cb;
	void *arg;
};

/* A client connection MHD holds, from its start to its close notification (the socket is
 * open all that time). */
struct conn {
	LIST_ENTRY(conn) link;
	int fd;
	bool nudged; /* its end of input was signalled to MHD once */
};

struct zt_http_server {
	struct zt_loop *loop;
	struct MHD_Daemon *mhd;
	struct zt_io io;
	struct zt_timer timer;
	uint16_t port;
	bool quiesced;
	struct route routes[ZT_HTTP_MAX_ROUTES];
	size_t nroutes;
	LIST_HEAD(, conn) conns; /* at most CONN_LIMIT */
};

struct req_ctx {
	struct zt_buf body;
	bool too_big;
	struct zt_http_kv query[MAX_QUERY];
	size_t nquery;
};

/* ---- loop integration -------------------------------------------------------------------- */

static void on_timer(struct zt_timer *t, void *arg);

/* MHD watches client sockets edge-triggered and takes a short read to mean "nothing more to
 * read": when a request and the client's FIN arrive before MHD looks (`printf ... | nc -N`,
 * shutdown(SHUT_WR) after writing), it reads the request, answers, and never sees the end of
 * input, so a keep-alive connection answered, or an incomplete request, would stay open until
 * the idle timeout. After each run, every connection whose peer has shut its write side and
 * whose bytes MHD has all read gets one fresh readiness edge (setting SO_RCVLOWAT to its
 * default makes TCP signal a readable socket, end of input included): MHD reads the end of
 * input and closes, after the answer in progress if any. Once is enough: with nothing left
 * to read, MHD's next read on the socket returns the end of input. */
static void nudge_half_closed(struct zt_http_server *srv)
{
	struct pollfd pfd[CONN_LIMIT];
	struct conn *c, *by[CONN_LIMIT];
	nfds_t n = 0;
	int pending, one = 1;

	LIST_FOREACH(c, &srv->conns, link)
	{
		if (c->nudged || n == CONN_LIMIT)
			continue;
		pfd[n] = (struct pollfd){.fd = c->fd, .events = POLLRDHUP};
		by[n++] = c;
	}
	if (n == 0 || poll(pfd, n, 0) <= 0)
		return;
	for (nfds_t i = 0; i < n; i++) {
		/* Skip the open ones and those with bytes left: MHD reads them on its own. */
		if (!(pfd[i].revents & POLLRDHUP) || ioctl(pfd[i].fd, FIONREAD, &pending) < 0 ||
		    pending > 0)
			continue;
		(void)setsockopt(pfd[i].fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
		by[i]->nudged = true;
	}
}

static void run(struct zt_http_server *srv)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(srv->mhd);
	nudge_half_closed(srv);
	if (MHD_get_timeout(srv->mhd, &ms) == MHD_YES)
		zt_timer_start(srv->loop, &srv->timer, ms, on_timer, srv);
	else
		zt_timer_stop(&srv->timer);
}

static void on_timer(struct zt_timer *t, void *arg)
{
	(void)t;
	run(arg);
}

static void on_io(struct zt_io *io, unsigned events, void *arg)
{
	(void)io;
	(void)events;
	run(arg);
}

/* ---- requests ---------------------------------------------------------------------------- */

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	struct req_ctx *rc = cls;

	(void)kind;
	if (rc->nquery == MAX_QUERY)
		return MHD_NO;
	rc->query[rc->nquery++] = (struct zt_http_kv){key, value};
	return MHD_YES;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, int status, const char *ctype,
                                     const void *body, size_t len, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	r = MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ok = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ok;
}

/* A handler's body goes to MHD without a copy (a large one, such as /config_dump, would
 * otherwise be held twice): MHD frees it after sending. */
static enum MHD_Result send_body(struct MHD_Connection *conn, struct zt_http_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	if (!resp->body.data || resp->body.rd != 0) {
		ok = send_response(conn, resp->status, resp->content_type, zt_buf_data(&resp->body),
		                   zt_buf_len(&resp->body), NULL);
		zt_buf_clear(&resp->body);
		return ok;
	}
	r = MHD_create_response_from_buffer(zt_buf_len(&resp->body), resp->body.data,
	                                    MHD_RESPMEM_MUST_FREE);
	if (!r) {
		zt_buf_clear(&resp->body);
		return MHD_NO;
	}
	zt_buf_init(&resp->body, 0); /* MHD owns the storage now */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	ok = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, int status, const char *text)
{
	return send_response(conn, status, DEFAULT_CTYPE, text, strlen(text), NULL);
}

static enum MHD_Result dispatch(struct zt_http_server *srv, struct MHD_Connection *conn,
                                struct req_ctx *rc, const char *method, const char *path)
{
	struct zt_http_response resp = {.status = 200, .content_type = DEFAULT_CTYPE};
	struct zt_http_request req = {.method = method, .path = path};
	const struct route *rt = NULL;
	char allow[128] = "";

	for (size_t i = 0; i < srv->nroutes; i++) {
		if (strcmp(srv->routes[i].path, path) != 0)
			continue;
		if (strcmp(srv->routes[i].method, method) == 0) {
			rt = &srv->routes[i];
			break;
		}
		size_t off = strlen(allow);
		snprintf(allow + off, sizeof(allow) - off, "%s%s", off ? ", " : "",
		         srv->routes[i].method);
	}
	if (!rt && allow[0])
		return send_response(conn, 405, DEFAULT_CTYPE, "method not allowed\n", 19, allow);
	if (!rt)
		return send_text(conn, 404, "not found\n");
	if (rc->too_big)
		return send_text(conn, 413, "request body too large\n");
	if (MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, rc) < 0 ||
	    rc->nquery == MAX_QUERY)
		return send_text(conn, 400, "too many query arguments\n");
	if (zt_buf_append(&rc->body, "", 1) < 0) /* NUL-terminate */
		abort();
	req.body = (const char *)zt_buf_data(&rc->body);
	req.body_len = zt_buf_len(&rc->body) - 1;
	req.query = rc->query;
	req.nquery = rc->nquery;
	zt_buf_init(&resp.body, 0);
	rt->cb(&req, &resp, rt->arg);
	return send_body(conn, &resp);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	struct zt_http_server *srv = cls;
	struct req_ctx *rc = *con_cls;

	(void)version;
	if (!rc) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		char *end = NULL;
		unsigned long long n;

		rc = xcalloc(1, sizeof(*rc));
		zt_buf_init(&rc->body, ZT_HTTP_MAX_BODY + 1);
		*con_cls = rc;
		/* Refuse a declared oversized body before reading any of it. */
		errno = 0;
		if (cl && (n = strtoull(cl, &end, 10), errno || *end || n > ZT_HTTP_MAX_BODY))
			return send_text(conn, 413, "request body too large\n");
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rc->too_big && (zt_buf_len(&rc->body) + *upload_data_size > ZT_HTTP_MAX_BODY ||
		                     zt_buf_append(&rc->body, upload_data, *upload_data_size) < 0))
			rc->too_big = true;
		if (rc->too_big)
			zt_buf_clear(&rc->body);
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(srv, conn, rc, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req_ctx *rc = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!rc)
		return;
	zt_buf_clear(&rc->body);
	free(rc);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *mconn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct zt_http_server *srv = cls;
	const union MHD_ConnectionInfo *info;
	struct conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(mconn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!info)
			return;
		c = xcalloc(1, sizeof(*c));
		c->fd = info->connect_fd;
		LIST_INSERT_HEAD(&srv->conns, c, link);
		*socket_context = c;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
		LIST_REMOVE(c, link);
		free(c);
		*socket_context = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	zt_debug("libmicrohttpd: %s", msg);
}

/* ---- server ------------------------------------------------------------------------------ */

/* Opens the listening socket for listen_addr. Returns the fd or -1 with err set. */
static int open_listener(const char *text, uint16_t *port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct zt_sockaddr sa;
	char buf[ZT_ADDR_STRLEN + 16];
	bool any = false;
	socklen_t sl;
	int fd = -1, one = 1, zero = 0, rc;

	if (text[0] == ':') {
		snprintf(buf, sizeof(buf), "[::]%s", text);
		any = true;
	} else if (strncmp(text, "localhost:", 10) == 0) {
		snprintf(buf, sizeof(buf), "127.0.0.1%s", text + 9);
	} else {
		snprintf(buf, sizeof(buf), "%s", text);
	}
	if (strlen(text) >= sizeof(buf) ||
	    zt_addr_parse(&sa, buf, strlen(buf), ZT_ADDR_PORT0_OK) < 0) {
		snprintf(err, errlen, "bad listen address \"%.64s\"", text);
		return -1;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		sl = zt_addr_to_sockaddr(&sa, &ss);
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 || !any || errno != EAFNOSUPPORT)
			break;
		/* ":port" on a host without IPv6: every IPv4 address instead. */
		snprintf(buf, sizeof(buf), "0.0.0.0%s", text);
		zt_addr_parse(&sa, buf, strlen(buf), ZT_ADDR_PORT0_OK);
	}
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		rc = errno;
		close(fd);
		snprintf(err, errlen, "listen on %.64s: %s", text, strerror(rc));
		return -1;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    zt_addr_from_sockaddr(&sa, (struct sockaddr *)&ss, sl) == 0)
		*port = sa.port;
	return fd;
}

struct zt_http_server *zt_http_server_new(struct zt_loop *loop, const char *listen_addr, char *err,
                                          size_t errlen)
{
	struct zt_http_server *srv;
	const union MHD_DaemonInfo *info;
	int fd;

	srv = xcalloc(1, sizeof(*srv));
	srv->loop = loop;
	LIST_INIT(&srv->conns);
	fd = open_listener(listen_addr, &srv->port, err, errlen);
	if (fd < 0) {
		free(srv);
		return NULL;
	}
	srv->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_access,
	                            srv, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
	                            on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
	                            srv, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
	                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
	                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_END);
	if (!srv->mhd) {
		close(fd);
		free(srv);
		snprintf(err, errlen, "cannot start the HTTP server on %.64s", listen_addr);
		return NULL;
	}
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || zt_io_start(loop, &srv->io, info->epoll_fd, ZT_IO_READ, on_io, srv) < 0) {
		MHD_stop_daemon(srv->mhd);
		free(srv);
		snprintf(err, errlen, "cannot watch the HTTP server's epoll fd");
		return NULL;
	}
	run(srv);
	return srv;
}

void zt_http_server_free(struct zt_http_server *srv)
{
	if (!srv)
		return;
	zt_io_stop(&srv->io);
	zt_timer_stop(&srv->timer);
	MHD_stop_daemon(srv->mhd); /* closes the listening socket too */
	for (size_t i = 0; i < srv->nroutes; i++) {
		free(srv->routes[i].method);
		free(srv->routes[i].path);
	}
	free(srv);
}

void zt_http_server_quiesce(struct zt_http_server *srv)
{
	MHD_socket fd;

	if (!srv || srv->quiesced)
		return;
	srv->quiesced = true;
	fd = MHD_quiesce_daemon(srv->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

uint16_t zt_http_server_port(const struct zt_http_server *srv)
{
	return srv->port;
}

int zt_http_route(struct zt_http_server *srv, const char *method, const char *path,
                  zt_http_handler_cb cb, void *arg)
{
	struct route *r;

	for (size_t i = 0; i < srv->nroutes; i++)
		if (strcmp(srv->routes[i].method, method) == 0 &&
		    strcmp(srv->routes[i].path, path) == 0)
			return -EEXIST;
	if (srv->nroutes == ZT_HTTP_MAX_ROUTES)
		return ZT_E_TOOBIG;
	r = &srv->routes[srv->nroutes];
	r->method = xstrdup(method);
	r->path = xstrdup(path);
	r->cb = cb;
	r->arg = arg;
	srv->nroutes++;
	return 0;
}

const char *zt_http_query(const struct zt_http_request *req, const char *key)
{
	for (size_t i = 0; i < req->nquery; i++)
		if (strcmp(req->query[i].key, key) == 0)
			return req->query[i].value ? req->query[i].value : "";
	return NULL;
}

void zt_http_printf(struct zt_http_response *resp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (zt_buf_vappendf(&resp->body, fmt, ap) == ZT_E_TOOBIG)
		abort(); /* the body has no limit: only out of memory gets here */
	va_end(ap);
}
