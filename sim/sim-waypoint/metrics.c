/* Waypoint request metrics and their Prometheus endpoint (see metrics.h). Series are kept in
 * a list keyed by their label text; the endpoint answers one GET per connection and closes.
 * Bounds: at most MAX_SERIES series (further label sets are counted in an overflow series)
 * and 8 KiB per scrape request. */
#include "sim/sim-waypoint/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "runtime/addr.h"
#include "runtime/buf.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("metrics");

#define MAX_SERIES         1024
#define MAX_SCRAPE_REQUEST 8192

/* Istio's default request duration buckets (milliseconds). */
static const double buckets[] = {0.5,   1,      5,      10,      25,     50,    100,
                                 250,   500,    1000,   2500,    5000,   10000, 30000,
                                 60000, 300000, 600000, 1800000, 3600000};
#define NB (sizeof(buckets) / sizeof(buckets[0]))

struct series {
	TAILQ_ENTRY(series) link;
	char *labels;
	uint64_t count;
	uint64_t hist[NB];
	uint64_t sum_ms;
};

struct scrape {
	LIST_ENTRY(scrape) link;
	struct wp_metrics *m;
	int fd;
	struct zt_io io;
	struct zt_buf in;
};

struct wp_metrics {
	struct zt_loop *loop;
	int lfd;
	struct zt_io lio;
	TAILQ_HEAD(, series) series;
	size_t n;
	LIST_HEAD(, scrape) scrapes;
};

static const char *or_unknown(const char *s)
{
	return s && s[0] ? s : "unknown";
}

void wp_metrics_record(struct wp_metrics *m, const struct wp_request_record *r)
{
	char labels[2048];
	struct series *s;

	if (!m)
		return;
	snprintf(labels, sizeof(labels),
	         "reporter=\"waypoint\",source_workload=\"%s\",source_workload_namespace=\"%s\","
	         "source_principal=\"%s\",destination_workload=\"%s\","
	         "destination_workload_namespace=\"%s\",destination_principal=\"%s\","
	         "destination_service=\"%s\",destination_service_name=\"%s\","
	         "destination_service_namespace=\"%s\",request_protocol=\"%s\","
	         "response_code=\"%d\",response_flags=\"%s\","
	         "connection_security_policy=\"mutual_tls\"",
	         or_unknown(r->src_workload), or_unknown(r->src_ns), or_unknown(r->src_principal),
	         or_unknown(r->dst_workload), or_unknown(r->dst_ns), or_unknown(r->dst_principal),
	         or_unknown(r->dst_service), or_unknown(r->dst_service_name),
	         or_unknown(r->dst_service_ns), r->protocol, r->code, r->flags ? r->flags : "-");
	TAILQ_FOREACH(s, &m->series, link)
	{
		if (!strcmp(s->labels, labels))
			break;
	}
	if (!s) {
		if (m->n == MAX_SERIES) {
			snprintf(labels, sizeof(labels), "reporter=\"waypoint\",overflow=\"true\"");
			TAILQ_FOREACH(s, &m->series, link)
			{
				if (!strcmp(s->labels, labels))
					break;
			}
		}
		if (!s) {
			s = xcalloc(1, sizeof(*s));
			s->labels = xstrdup(labels);
			TAILQ_INSERT_TAIL(&m->series, s, link);
			m->n++;
		}
	}
	s->count++;
	s->sum_ms += r->duration_ms;
	for (size_t i = 0; i < NB; i++)
		if ((double)r->duration_ms <= buckets[i])
			s->hist[i]++;
}

static void render(struct wp_metrics *m, struct zt_buf *b)
{
	struct series *s;

	zt_buf_appendf(b, "# HELP istio_requests_total Requests handled by the waypoint.\n"
	                  "# TYPE istio_requests_total counter\n");
	TAILQ_FOREACH(s, &m->series, link)
	{
		zt_buf_appendf(b, "istio_requests_total{%s} %llu\n", s->labels,
		               (unsigned long long)s->count);
	}
	zt_buf_appendf(b, "# HELP istio_request_duration_milliseconds Request durations.\n"
	                  "# TYPE istio_request_duration_milliseconds histogram\n");
	TAILQ_FOREACH(s, &m->series, link)
	{
		for (size_t i = 0; i < NB; i++)
			zt_buf_appendf(
			        b,
			        "istio_request_duration_milliseconds_bucket{%s,le=\"%g\"} %llu\n",
			        s->labels, buckets[i], (unsigned long long)s->hist[i]);
		zt_buf_appendf(b,
		               "istio_request_duration_milliseconds_bucket{%s,le=\"+Inf\"} %llu\n",
		               s->labels, (unsigned long long)s->count);
		zt_buf_appendf(b, "istio_request_duration_milliseconds_sum{%s} %llu\n", s->labels,
		               (unsigned long long)s->sum_ms);
		zt_buf_appendf(b, "istio_request_duration_milliseconds_count{%s} %llu\n", s->labels,
		               (unsigned long long)s->count);
	}
}

static void scrape_free(struct scrape *c)
{
	zt_io_stop(&c->io);
	close(c->fd);
	zt_buf_clear(&c->in);
	LIST_REMOVE(c, link);
	free(c);
}

/* Writes all of p on a socket with a send timeout (loopback scrapes are small and fast). */
static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		c += w;
		n -= (size_t)w;
	}
}

static void on_scrape(struct zt_io *io, unsigned ev, void *arg)
{
	struct scrape *c = arg;
	uint8_t *p;
	ssize_t r;

	(void)io;
	(void)ev;
	if (zt_buf_reserve(&c->in, 1024, &p) < 0) {
		scrape_free(c);
		return;
	}
	r = recv(c->fd, p, 1024, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		scrape_free(c);
		return;
	}
	zt_buf_commit(&c->in, (size_t)r);
	const char *d = (const char *)zt_buf_data(&c->in);
	size_t n = zt_buf_len(&c->in);
	if (n > MAX_SCRAPE_REQUEST) {
		scrape_free(c);
		return;
	}
	if (!memmem(d, n, "\r\n\r\n", 4))
		return;
	struct zt_buf body, head;
	zt_buf_init(&body, 0);
	zt_buf_init(&head, 0);
	bool ok = (n > 13 && !memcmp(d, "GET /metrics ", 13)) ||
	          (n > 23 && !memcmp(d, "GET /stats/prometheus ", 22));
	if (ok)
		render(c->m, &body);
	else
		zt_buf_appendf(&body, "not found: GET /metrics or /stats/prometheus\n");
	zt_buf_appendf(&head,
	               "HTTP/1.1 %s\r\ncontent-type: text/plain; version=0.0.4\r\n"
	               "content-length: %zu\r\nconnection: close\r\n\r\n",
	               ok ? "200 OK" : "404 Not Found", zt_buf_len(&body));
	struct timeval tv = {.tv_sec = 1};
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	send_all(c->fd, zt_buf_data(&head), zt_buf_len(&head));
	send_all(c->fd, zt_buf_data(&body), zt_buf_len(&body));
	zt_buf_clear(&head);
	zt_buf_clear(&body);
	scrape_free(c);
}

static void on_accept(struct zt_io *io, unsigned ev, void *arg)
{
	struct wp_metrics *m = arg;

	(void)io;
	(void)ev;
	for (;;) {
		/* Blocking sockets: the reply goes out with a send timeout (see send_all). */
		int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct scrape *c = xcalloc(1, sizeof(*c));
		c->m = m;
		c->fd = fd;
		zt_buf_init(&c->in, 0);
		LIST_INSERT_HEAD(&m->scrapes, c, link);
		if (zt_io_start(m->loop, &c->io, fd, ZT_IO_READ, on_scrape, c) < 0)
			scrape_free(c);
		return;
	}
}

int wp_metrics_new(struct wp_metrics **out, struct zt_loop *loop, const char *addr)
{
	struct zt_sockaddr sa;
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, rc;
	struct wp_metrics *m;

	if (zt_addr_parse(&sa, addr, strlen(addr), 0) < 0)
		return -EINVAL;
	sl = zt_addr_to_sockaddr(&sa, &ss);
	m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	TAILQ_INIT(&m->series);
	LIST_INIT(&m->scrapes);
	m->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->lfd < 0 || setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(m->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(m->lfd, 64) < 0) {
		rc = -errno;
		if (m->lfd >= 0)
			close(m->lfd);
		free(m);
		return rc;
	}
	if ((rc = zt_io_start(loop, &m->lio, m->lfd, ZT_IO_READ, on_accept, m)) < 0) {
		close(m->lfd);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void wp_metrics_free(struct wp_metrics *m)
{
	struct series *s;

	if (!m)
		return;
	while (!LIST_EMPTY(&m->scrapes))
		scrape_free(LIST_FIRST(&m->scrapes));
	zt_io_stop(&m->lio);
	close(m->lfd);
	while ((s = TAILQ_FIRST(&m->series))) {
		TAILQ_REMOVE(&m->series, s, link);
		free(s->labels);
		free(s);
	}
	free(m);
}
