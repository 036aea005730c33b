/* Metrics registry. Invariants: every series and child is a node in its table's hash chain
 * and insertion list, keyed by its rendered label text (escaped, "unknown" filled in), so
 * equal label sets are one node; a table never holds more than max nodes, the overflow
 * nodes live outside it; rendering only reads. */
#include "telemetry/metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("metrics");

#define MAX_VALUE  1024 /* bytes of one label value */
#define MAX_LABELS 12   /* of an extra family */
#define MAX_BOUNDS 16   /* buckets of a histogram family */

enum { OPENED, CLOSED, RECEIVED, SENT, FAILED, NCOUNTERS };

static const struct {
	const char *name, *help;
} tcp_families[NCOUNTERS] = {
        [OPENED] = {"istio_tcp_connections_opened_total",
                    "The total number of TCP connections opened"},
        [CLOSED] = {"istio_tcp_connections_closed_total",
                    "The total number of TCP connections closed"},
        [RECEIVED] = {"istio_tcp_received_bytes_total",
                      "The size of total bytes received during request in case of a TCP "
                      "connection"},
        [SENT] = {"istio_tcp_sent_bytes_total",
                  "The size of total bytes sent during response in case of a TCP connection"},
        [FAILED] = {"istio_tcp_connections_failed_total",
                    "The total number of TCP connections that failed to establish"},
};

/* spec §8.1 order; the last four only when a workload is known. */
static const char *const traffic_names[] = {
        "reporter",
        "source_workload",
        "source_canonical_service",
        "source_canonical_revision",
        "source_workload_namespace",
        "source_principal",
        "source_app",
        "source_version",
        "source_cluster",
        "destination_service",
        "destination_service_namespace",
        "destination_service_name",
        "destination_workload",
        "destination_canonical_service",
        "destination_canonical_revision",
        "destination_workload_namespace",
        "destination_principal",
        "destination_app",
        "destination_version",
        "destination_cluster",
        "request_protocol",
        "response_flags",
        "connection_security_policy",
        "source_region",
        "source_zone",
        "destination_region",
        "destination_zone",
};
#define NTRAFFIC    (sizeof(traffic_names) / sizeof(traffic_names[0]))
#define NBASE       (NTRAFFIC - 4)
#define FLAGS_INDEX 21

static const char *const reporter_names[2] = {"source", "destination"};

struct node {
	struct node *chain; /* hash bucket */
	STAILQ_ENTRY(node) order;
	uint64_t hash;
	size_t len;
	char *labels; /* rendered `name="value",...`, owned, NUL-terminated */
};

struct table {
	struct node **buckets;
	size_t nbuckets, count;
	STAILQ_HEAD(, node) nodes; /* in insertion order */
};

struct zt_metric_series {
	struct node n;
	size_t flags_off, flags_len; /* response_flags value within the label text */
	enum zt_reporter reporter;
	bool overflow;
	unsigned touched; /* 1 << counter, once updated */
	uint64_t v[NCOUNTERS];
};

struct zt_metric_child {
	struct node n;
	struct zt_metric *f;
	int64_t v;    /* counter, gauge; histogram: the observation count */
	uint64_t *le; /* histogram: per bound, observations <= it (not cumulative) */
	double sum;   /* histogram */
};

struct zt_metric {
	struct zt_metrics *m;
	char *name, *help;
	enum zt_metric_type type;
	size_t nlabels;
	char *labels[MAX_LABELS];
	double bounds[MAX_BOUNDS]; /* histogram upper bounds, increasing */
	size_t nbounds;
	struct table t;
	struct zt_metric_child *overflow;
	bool warned;
	STAILQ_ENTRY(zt_metric) link;
};

struct zt_metrics {
	char *build_tag;
	size_t max;
	struct table series;
	struct zt_metric_series *overflow[2];
	bool warned;
	int64_t sockets[2];
	bool sockets_touched[2];
	STAILQ_HEAD(, zt_metric) extras; /* in registration order */
};

/* ---- hash table -------------------------------------------------------------------------- */

static uint64_t hash_text(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return h;
}

static void table_init(struct table *t)
{
	*t = (struct table){0};
	STAILQ_INIT(&t->nodes);
}

static struct node *table_find(const struct table *t, const char *s, size_t len, uint64_t h)
{
	if (!t->nbuckets)
		return NULL;
	for (struct node *n = t->buckets[h & (t->nbuckets - 1)]; n; n = n->chain)
		if (n->hash == h && n->len == len && memcmp(n->labels, s, len) == 0)
			return n;
	return NULL;
}

static void table_insert(struct table *t, struct node *n)
{
	if (t->count >= t->nbuckets) {
		size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
		struct node **b = xcalloc(nb, sizeof(*b));
		struct node *x;

		STAILQ_FOREACH(x, &t->nodes, order) {
			x->chain = b[x->hash & (nb - 1)];
			b[x->hash & (nb - 1)] = x;
		}
		free(t->buckets);
		t->buckets = b;
		t->nbuckets = nb;
	}
	n->chain = t->buckets[n->hash & (t->nbuckets - 1)];
	t->buckets[n->hash & (t->nbuckets - 1)] = n;
	STAILQ_INSERT_TAIL(&t->nodes, n, order);
	t->count++;
}

static void node_set(struct node *n, const struct zt_buf *text)
{
	n->len = zt_buf_len(text);
	n->labels = xmalloc(n->len + 1);
	if (n->len)
		memcpy(n->labels, zt_buf_data(text), n->len);
	n->labels[n->len] = '\0';
	n->hash = hash_text(n->labels, n->len);
}

static void table_clear(struct table *t)
{
	struct node *n;

	while ((n = STAILQ_FIRST(&t->nodes))) {
		STAILQ_REMOVE_HEAD(&t->nodes, order);
		free(n->labels);
		free(n); /* the node is the first member of its series or child */
	}
	free(t->buckets);
	table_init(t);
}

/* ---- label text -------------------------------------------------------------------------- */

int zt_metrics_escape(struct zt_buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		const char *rep = s[i] == '\\'   ? "\\\\"
		                  : s[i] == '"'  ? "\\\""
		                  : s[i] == '\n' ? "\\n"
		                                 : NULL;
		int err = rep ? zt_buf_append(out, rep, 2) : zt_buf_append(out, &s[i], 1);
		if (err < 0)
			return err;
	}
	return 0;
}

/* Length of s cut to MAX_VALUE bytes without splitting a UTF-8 sequence. */
static size_t clip(const char *s)
{
	size_t len = strnlen(s, MAX_VALUE + 1);

	if (len <= MAX_VALUE)
		return len;
	len = MAX_VALUE;
	while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
		len--;
	return len;
}

/* Appends `name="value"` (comma-separated) and returns where the escaped value starts; its
 * length is then zt_buf_len(b) - 1 - that. */
static size_t append_label(struct zt_buf *b, const char *name, const char *value)
{
	size_t start;

	if (!value || !*value)
		value = "unknown";
	if (zt_buf_len(b) && zt_buf_append(b, ",", 1) < 0)
		abort();
	if (zt_buf_appendf(b, "%s=\"", name) < 0)
		abort();
	start = zt_buf_len(b);
	if (zt_metrics_escape(b, value, clip(value)) < 0 || zt_buf_append(b, "\"", 1) < 0)
		abort();
	return start;
}

/* ---- registry ---------------------------------------------------------------------------- */

static struct zt_metric_series *series_node(struct zt_metrics *m, enum zt_reporter r,
                                            const struct zt_buf *text, size_t flags_off,
                                            size_t flags_len, bool overflow)
{
	struct zt_metric_series *s = xcalloc(1, sizeof(*s));

	node_set(&s->n, text);
	s->reporter = r;
	s->flags_off = flags_off;
	s->flags_len = flags_len;
	s->overflow = overflow;
	if (!overflow)
		table_insert(&m->series, &s->n);
	return s;
}

/* Renders a full traffic label set into b, noting where response_flags' value is. */
static void traffic_text(struct zt_buf *b, const char *const *v, size_t n, size_t *flags_off,
                         size_t *flags_len)
{
	*flags_off = *flags_len = 0;
	for (size_t i = 0; i < n; i++) {
		size_t start = append_label(b, traffic_names[i], v[i]);
		if (i == FLAGS_INDEX) {
			*flags_off = start;
			*flags_len = zt_buf_len(b) - 1 - start;
		}
	}
}

static struct zt_metric_series *overflow_series(struct zt_metrics *m, enum zt_reporter r)
{
	const char *v[NBASE];
	struct zt_buf b;
	size_t off, len;

	if (m->overflow[r])
		return m->overflow[r];
	v[0] = reporter_names[r];
	for (size_t i = 1; i < NBASE; i++)
		v[i] = "overflow";
	zt_buf_init(&b, 0);
	traffic_text(&b, v, NBASE, &off, &len);
	m->overflow[r] = series_node(m, r, &b, off, len, true);
	zt_buf_clear(&b);
	return m->overflow[r];
}

struct zt_metrics *zt_metrics_new(const char *build_tag, size_t max_series)
{
	struct zt_metrics *m = xcalloc(1, sizeof(*m));

	m->build_tag = xstrdup(build_tag && *build_tag ? build_tag : "unknown");
	m->max = max_series ? max_series : ZT_METRICS_MAX_SERIES;
	table_init(&m->series);
	STAILQ_INIT(&m->extras);
	return m;
}

void zt_metrics_free(struct zt_metrics *m)
{
	struct zt_metric *f;

	if (!m)
		return;
	table_clear(&m->series);
	for (int i = 0; i < 2; i++) {
		if (m->overflow[i]) {
			free(m->overflow[i]->n.labels);
			free(m->overflow[i]);
		}
	}
	while ((f = STAILQ_FIRST(&m->extras))) {
		struct node *n;

		STAILQ_REMOVE_HEAD(&m->extras, link);
		STAILQ_FOREACH(n, &f->t.nodes, order)
			free(((struct zt_metric_child *)n)->le);
		table_clear(&f->t);
		if (f->overflow) {
			free(f->overflow->le);
			free(f->overflow->n.labels);
			free(f->overflow);
		}
		for (size_t i = 0; i < f->nlabels; i++)
			free(f->labels[i]);
		free(f->name);
		free(f->help);
		free(f);
	}
	free(m->build_tag);
	free(m);
}

static struct zt_metric_series *intern(struct zt_metrics *m, enum zt_reporter r,
                                       const struct zt_buf *b, size_t off, size_t len)
{
	const char *text = (const char *)zt_buf_data(b);
	struct node *n =
	        table_find(&m->series, text, zt_buf_len(b), hash_text(text, zt_buf_len(b)));

	if (n)
		return (struct zt_metric_series *)n;
	if (m->series.count >= m->max) {
		if (!m->warned) {
			zt_warn("traffic metrics reached %zu series; further label sets are "
			        "counted "
			        "as \"overflow\"",
			        m->max);
			m->warned = true;
		}
		return overflow_series(m, r);
	}
	return series_node(m, r, b, off, len, false);
}

struct zt_metric_series *zt_metrics_series(struct zt_metrics *m, const struct zt_metric_labels *l)
{
	const char *v[NTRAFFIC] = {
	        reporter_names[l->reporter == ZT_REPORTER_DESTINATION],
	        l->source_workload,
	        l->source_canonical_service,
	        l->source_canonical_revision,
	        l->source_workload_namespace,
	        l->source_principal,
	        l->source_app,
	        l->source_version,
	        l->source_cluster,
	        l->destination_service,
	        l->destination_service_namespace,
	        l->destination_service_name,
	        l->destination_workload,
	        l->destination_canonical_service,
	        l->destination_canonical_revision,
	        l->destination_workload_namespace,
	        l->destination_principal,
	        l->destination_app,
	        l->destination_version,
	        l->destination_cluster,
	        l->request_protocol,
	        l->response_flags,
	        l->connection_security_policy,
	        l->source_region,
	        l->source_zone,
	        l->destination_region,
	        l->destination_zone,
	};
	bool locality = (l->source_workload && *l->source_workload) ||
	                (l->destination_workload && *l->destination_workload);
	struct zt_metric_series *s;
	struct zt_buf b;
	size_t off, len;

	zt_buf_init(&b, 0);
	traffic_text(&b, v, locality ? NTRAFFIC : NBASE, &off, &len);
	s = intern(m,
	           l->reporter == ZT_REPORTER_DESTINATION ? ZT_REPORTER_DESTINATION
	                                                  : ZT_REPORTER_SOURCE,
	           &b, off, len);
	zt_buf_clear(&b);
	return s;
}

struct zt_metric_series *zt_metrics_series_with_flags(struct zt_metrics *m,
                                                      const struct zt_metric_series *s,
                                                      const char *response_flags)
{
	struct zt_metric_series *out;
	const char *f = response_flags && *response_flags ? response_flags : "unknown";
	struct zt_buf b;
	size_t len;

	if (s->overflow)
		return (struct zt_metric_series *)s;
	zt_buf_init(&b, 0);
	if (zt_buf_append(&b, s->n.labels, s->flags_off) < 0 ||
	    zt_metrics_escape(&b, f, clip(f)) < 0)
		abort();
	len = zt_buf_len(&b) - s->flags_off;
	if (zt_buf_append(&b, s->n.labels + s->flags_off + s->flags_len,
	                  s->n.len - s->flags_off - s->flags_len) < 0)
		abort();
	out = intern(m, s->reporter, &b, s->flags_off, len);
	zt_buf_clear(&b);
	return out;
}

size_t zt_metrics_series_count(const struct zt_metrics *m)
{
	return m->series.count;
}

void zt_metrics_conn_opened(struct zt_metric_series *s)
{
	s->v[OPENED]++;
	s->touched |= 1u << OPENED;
}

void zt_metrics_conn_closed(struct zt_metric_series *s, uint64_t received, uint64_t sent)
{
	s->v[CLOSED]++;
	s->v[RECEIVED] += received;
	s->v[SENT] += sent;
	s->touched |= 1u << CLOSED | 1u << RECEIVED | 1u << SENT;
}

void zt_metrics_conn_failed(struct zt_metric_series *s)
{
	s->v[FAILED]++;
	s->touched |= 1u << FAILED;
}

void zt_metrics_socket_opened(struct zt_metrics *m, enum zt_reporter r)
{
	m->sockets[r == ZT_REPORTER_DESTINATION]++;
	m->sockets_touched[r == ZT_REPORTER_DESTINATION] = true;
}

void zt_metrics_socket_closed(struct zt_metrics *m, enum zt_reporter r)
{
	m->sockets[r == ZT_REPORTER_DESTINATION]--;
	m->sockets_touched[r == ZT_REPORTER_DESTINATION] = true;
}

/* ---- extra families ---------------------------------------------------------------------- */

static bool valid_name(const char *s, bool metric)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	if (!metric && s[0] == '_' && s[1] == '_')
		return false; /* reserved for Prometheus itself */
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (metric && c == ':')))
			return false;
	}
	return true;
}

static bool name_taken(const struct zt_metrics *m, const char *name)
{
	static const char *const builtin[] = {"istio_tcp_sockets_open", "istio_build",
	                                      "process_open_fds", "process_max_fds"};
	const struct zt_metric *f;

	for (size_t i = 0; i < NCOUNTERS; i++)
		if (strcmp(tcp_families[i].name, name) == 0)
			return true;
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (strcmp(builtin[i], name) == 0)
			return true;
	STAILQ_FOREACH(f, &m->extras, link)
		if (strcmp(f->name, name) == 0)
			return true;
	return false;
}

int zt_metrics_register(struct zt_metrics *m, struct zt_metric **out, const char *name,
                        const char *help, enum zt_metric_type type, const char *const *label_names,
                        size_t nlabels)
{
	struct zt_metric *f;

	*out = NULL;
	if (nlabels > MAX_LABELS)
		return ZT_E_RANGE;
	if (!valid_name(name, true))
		return ZT_E_PARSE;
	for (size_t i = 0; i < nlabels; i++)
		if (!valid_name(label_names[i], false))
			return ZT_E_PARSE;
	if (name_taken(m, name))
		return ZT_E_STATE;
	f = xcalloc(1, sizeof(*f));
	f->m = m;
	f->name = xstrdup(name);
	f->help = xstrdup(help ? help : "");
	f->type = type;
	f->nlabels = nlabels;
	for (size_t i = 0; i < nlabels; i++)
		f->labels[i] = xstrdup(label_names[i]);
	table_init(&f->t);
	STAILQ_INSERT_TAIL(&m->extras, f, link);
	*out = f;
	return 0;
}

static struct zt_metric_child *child_node(struct zt_metric *f, const struct zt_buf *text)
{
	struct zt_metric_child *c = xcalloc(1, sizeof(*c));

	c->f = f;
	if (f->type == ZT_METRIC_HISTOGRAM) {
		c->le = xcalloc(f->nbounds ? f->nbounds : 1, sizeof(*c->le));
	}
	node_set(&c->n, text);
	return c;
}

struct zt_metric_child *zt_metric_child(struct zt_metric *f, const char *const *values)
{
	struct zt_metric_child *c;
	struct node *n;
	struct zt_buf b;
	const char *text;

	zt_buf_init(&b, 0);
	for (size_t i = 0; i < f->nlabels; i++)
		append_label(&b, f->labels[i], values ? values[i] : NULL);
	text = zt_buf_len(&b) ? (const char *)zt_buf_data(&b) : "";
	n = table_find(&f->t, text, zt_buf_len(&b), hash_text(text, zt_buf_len(&b)));
	if (n) {
		c = (struct zt_metric_child *)n;
	} else if (f->t.count < f->m->max) {
		c = child_node(f, &b);
		table_insert(&f->t, &c->n);
	} else {
		if (!f->warned) {
			zt_warn("metric %s reached %zu series; further label sets are counted as "
			        "\"overflow\"",
			        f->name, f->m->max);
			f->warned = true;
		}
		if (!f->overflow) {
			zt_buf_consume(&b, zt_buf_len(&b));
			for (size_t i = 0; i < f->nlabels; i++)
				append_label(&b, f->labels[i], "overflow");
			f->overflow = child_node(f, &b);
		}
		c = f->overflow;
	}
	zt_buf_clear(&b);
	return c;
}

void zt_metric_add(struct zt_metric_child *c, int64_t delta)
{
	if (c->f->type == ZT_METRIC_COUNTER && delta < 0)
		return;
	c->v += delta;
}

int zt_metrics_register_histogram(struct zt_metrics *m, struct zt_metric **out, const char *name,
                                  const char *help, const char *const *label_names, size_t nlabels,
                                  const double *bounds, size_t nbounds)
{
	int rc;

	*out = NULL;
	if (nbounds == 0 || nbounds > MAX_BOUNDS)
		return ZT_E_RANGE;
	for (size_t i = 1; i < nbounds; i++)
		if (!(bounds[i] > bounds[i - 1]))
			return ZT_E_RANGE;
	for (size_t i = 0; i < nlabels; i++)
		if (label_names[i] && strcmp(label_names[i], "le") == 0)
			return ZT_E_PARSE;
	if ((rc = zt_metrics_register(m, out, name, help, ZT_METRIC_HISTOGRAM, label_names,
	                              nlabels)) < 0)
		return rc;
	memcpy((*out)->bounds, bounds, nbounds * sizeof(*bounds));
	(*out)->nbounds = nbounds;
	return 0;
}

struct zt_metric *zt_metrics_find(struct zt_metrics *m, const char *name)
{
	struct zt_metric *f;

	STAILQ_FOREACH(f, &m->extras, link)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

void zt_metric_observe(struct zt_metric_child *c, double v)
{
	if (c->f->type != ZT_METRIC_HISTOGRAM)
		return;
	for (size_t i = 0; i < c->f->nbounds; i++) {
		if (v <= c->f->bounds[i]) {
			c->le[i]++;
			break;
		}
	}
	c->v++;
	c->sum += v;
}

void zt_metric_set(struct zt_metric_child *c, int64_t v)
{
	if (c->f->type == ZT_METRIC_GAUGE)
		c->v = v;
}

int64_t zt_metric_value(const struct zt_metric_child *c)
{
	return c->v;
}

/* ---- merging per-thread registries --------------------------------------------------------- */

static struct zt_metric_series *merge_series(struct zt_metrics *dst,
                                             const struct zt_metric_series *s)
{
	struct zt_metric_series *d;
	struct zt_buf b;

	if (s->overflow)
		return overflow_series(dst, s->reporter);
	zt_buf_init(&b, 0);
	if (zt_buf_append(&b, s->n.labels, s->n.len) < 0)
		abort();
	d = intern(dst, s->reporter, &b, s->flags_off, s->flags_len);
	zt_buf_clear(&b);
	return d;
}

static void add_series(struct zt_metric_series *d, const struct zt_metric_series *s)
{
	for (int c = 0; c < NCOUNTERS; c++)
		d->v[c] += s->v[c];
	d->touched |= s->touched;
}

static void add_child(struct zt_metric_child *d, const struct zt_metric_child *s)
{
	d->v += s->v;
	d->sum += s->sum;
	for (size_t i = 0; d->le && s->le && i < d->f->nbounds && i < s->f->nbounds; i++)
		d->le[i] += s->le[i];
}

static struct zt_metric *merge_family(struct zt_metrics *dst, const struct zt_metric *f)
{
	struct zt_metric *d = zt_metrics_find(dst, f->name);

	if (d)
		return d->type == f->type && d->nlabels == f->nlabels ? d : NULL;
	if (f->type == ZT_METRIC_HISTOGRAM)
		zt_metrics_register_histogram(dst, &d, f->name, f->help,
		                              (const char *const *)f->labels, f->nlabels, f->bounds,
		                              f->nbounds);
	else
		zt_metrics_register(dst, &d, f->name, f->help, f->type,
		                    (const char *const *)f->labels, f->nlabels);
	return d;
}

void zt_metrics_merge(struct zt_metrics *dst, const struct zt_metrics *src)
{
	const struct zt_metric *f;
	const struct node *n;

	STAILQ_FOREACH(n, &src->series.nodes, order) {
		const struct zt_metric_series *s = (const struct zt_metric_series *)n;
		add_series(merge_series(dst, s), s);
	}
	for (int r = 0; r < 2; r++) {
		if (src->overflow[r])
			add_series(merge_series(dst, src->overflow[r]), src->overflow[r]);
		dst->sockets[r] += src->sockets[r];
		dst->sockets_touched[r] |= src->sockets_touched[r];
	}
	STAILQ_FOREACH(f, &src->extras, link) {
		struct zt_metric *d = merge_family(dst, f);
		if (!d)
			continue; /* the same name with another shape: not ours to sum */
		STAILQ_FOREACH(n, &f->t.nodes, order) {
			const struct zt_metric_child *c = (const struct zt_metric_child *)n;
			struct node *dn = table_find(&d->t, c->n.labels, c->n.len, c->n.hash);
			struct zt_metric_child *dc;
			if (dn) {
				dc = (struct zt_metric_child *)dn;
			} else {
				struct zt_buf b;
				zt_buf_init(&b, 0);
				if (zt_buf_append(&b, c->n.labels, c->n.len) < 0)
					abort();
				dc = child_node(d, &b);
				table_insert(&d->t, &dc->n);
				zt_buf_clear(&b);
			}
			add_child(dc, c);
		}
		if (f->overflow) {
			if (!d->overflow) {
				struct zt_buf b;
				zt_buf_init(&b, 0);
				if (zt_buf_append(&b, f->overflow->n.labels, f->overflow->n.len) < 0)
					abort();
				d->overflow = child_node(d, &b);
				zt_buf_clear(&b);
			}
			add_child(d->overflow, f->overflow);
		}
	}
}

/* ---- rendering --------------------------------------------------------------------------- */

struct out {
	struct zt_buf *b;
	int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->err)
		return;
	va_start(ap, fmt);
	o->err = zt_buf_vappendf(o->b, fmt, ap);
	va_end(ap);
}

static void header(struct out *o, const char *name, const char *help, const char *type)
{
	put(o, "# HELP %s ", name);
	for (const char *p = help; *p && !o->err; p++) {
		if (*p == '\\')
			put(o, "\\\\");
		else if (*p == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *p);
	}
	put(o, "\n# TYPE %s %s\n", name, type);
}

static void sample(struct out *o, const char *name, const char *labels, long long v)
{
	if (labels && *labels)
		put(o, "%s{%s} %lld\n", name, labels, v);
	else
		put(o, "%s %lld\n", name, v);
}

static void sample_u(struct out *o, const char *name, const char *labels, uint64_t v)
{
	put(o, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
}

/* name_bucket{labels,le="b"} (cumulative, then +Inf), name_sum, name_count. */
static void histogram(struct out *o, const struct zt_metric *f, const struct zt_metric_child *c)
{
	const char *l = c->n.labels ? c->n.labels : "";
	const char *sep = *l ? "," : "";
	uint64_t cum = 0;

	for (size_t i = 0; i < f->nbounds; i++) {
		cum += c->le[i];
		put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, l, sep, f->bounds[i],
		    (unsigned long long)cum);
	}
	put(o, "%s_bucket{%s%sle=\"+Inf\"} %lld\n", f->name, l, sep, (long long)c->v);
	if (*l) {
		put(o, "%s_sum{%s} %.9g\n", f->name, l, c->sum);
		put(o, "%s_count{%s} %lld\n", f->name, l, (long long)c->v);
	} else {
		put(o, "%s_sum %.9g\n", f->name, c->sum);
		put(o, "%s_count %lld\n", f->name, (long long)c->v);
	}
}

static long count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own descriptor */
}

int zt_metrics_render(struct zt_metrics *m, struct zt_buf *b)
{
	struct out o = {.b = b};
	struct zt_metric *f;
	struct node *n;
	struct rlimit rl;
	long fds;

	for (int c = 0; c < NCOUNTERS; c++) {
		header(&o, tcp_families[c].name, tcp_families[c].help, "counter");
		STAILQ_FOREACH(n, &m->series.nodes, order) {
			struct zt_metric_series *s = (struct zt_metric_series *)n;
			if (s->touched & (1u << c))
				sample_u(&o, tcp_families[c].name, n->labels, s->v[c]);
		}
		for (int r = 0; r < 2; r++)
			if (m->overflow[r] && (m->overflow[r]->touched & (1u << c)))
				sample_u(&o, tcp_families[c].name, m->overflow[r]->n.labels,
				         m->overflow[r]->v[c]);
	}
	header(&o, "istio_tcp_sockets_open", "The current number of open TCP sockets", "gauge");
	for (int r = 0; r < 2; r++)
		if (m->sockets_touched[r])
			put(&o, "istio_tcp_sockets_open{reporter=\"%s\"} %lld\n", reporter_names[r],
			    (long long)m->sockets[r]);
	header(&o, "istio_build", "Istio component build info", "gauge");
	{
		struct zt_buf tag;
		zt_buf_init(&tag, 0);
		if (zt_metrics_escape(&tag, m->build_tag, strlen(m->build_tag)) < 0 ||
		    zt_buf_append(&tag, "", 1) < 0)
			abort();
		put(&o, "istio_build{component=\"ztunnel\",tag=\"%s\"} 1\n",
		    (const char *)zt_buf_data(&tag));
		zt_buf_clear(&tag);
	}
	STAILQ_FOREACH(f, &m->extras, link) {
		if (f->type == ZT_METRIC_HISTOGRAM) {
			header(&o, f->name, f->help, "histogram");
			STAILQ_FOREACH(n, &f->t.nodes, order)
				histogram(&o, f, (struct zt_metric_child *)n);
			if (f->overflow)
				histogram(&o, f, f->overflow);
			continue;
		}
		header(&o, f->name, f->help, f->type == ZT_METRIC_COUNTER ? "counter" : "gauge");
		STAILQ_FOREACH(n, &f->t.nodes, order)
			sample(&o, f->name, n->labels, (long long)((struct zt_metric_child *)n)->v);
		if (f->overflow)
			sample(&o, f->name, f->overflow->n.labels, (long long)f->overflow->v);
	}
	fds = count_open_fds();
	header(&o, "process_open_fds", "Number of open file descriptors.", "gauge");
	put(&o, "process_open_fds %ld\n", fds);
	header(&o, "process_max_fds", "Maximum number of open file descriptors.", "gauge");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		put(&o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	else
		put(&o, "process_max_fds -1\n");
	return o.err;
}
