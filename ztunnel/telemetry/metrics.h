/* Prometheus metrics (spec §8.1): the istio_tcp_* traffic counters keyed by the full traffic
 * label set, the sockets gauge, istio_build, process_open_fds/process_max_fds, and extra
 * counters and gauges registered by name (xDS, workload manager). Invariant: a label set is
 * interned once (hash-consed on its rendered, escaped text) into a series handle that lives as
 * long as the registry, so per-connection updates are O(1); the number of series is bounded
 * and anything past the bound is counted under one "overflow" series. A registry belongs to one
 * thread (each worker has its own); zt_metrics_merge sums them for a scrape. */
#ifndef ZT_METRICS_H
#define ZT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

#define ZT_METRICS_MAX_SERIES   10000
#define ZT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct zt_metrics;
struct zt_metric_series;
struct zt_metric;
struct zt_metric_child;

enum zt_reporter {
	ZT_REPORTER_SOURCE,      /* outbound: reporter="source" */
	ZT_REPORTER_DESTINATION, /* inbound: reporter="destination" */
};

/* The traffic label set, in the order of spec §8.1 (which is also the rendering order).
 * Every string is borrowed for the call only; NULL or "" renders as "unknown". Values are
 * cut to 1024 bytes (at a UTF-8 boundary). The four locality labels are added whenever the
 * source or the destination workload is known (source_workload or destination_workload
 * set). Callers fill request_protocol ("tcp"), response_flags ("-", "DENY", "CONNECT", ...)
 * and connection_security_policy ("mutual_tls" or "unknown") themselves. */
struct zt_metric_labels {
	enum zt_reporter reporter;
	const char *source_workload;
	const char *source_canonical_service;
	const char *source_canonical_revision;
	const char *source_workload_namespace;
	const char *source_principal;
	const char *source_app;
	const char *source_version;
	const char *source_cluster;
	const char *destination_service;
	const char *destination_service_namespace;
	const char *destination_service_name;
	const char *destination_workload;
	const char *destination_canonical_service;
	const char *destination_canonical_revision;
	const char *destination_workload_namespace;
	const char *destination_principal;
	const char *destination_app;
	const char *destination_version;
	const char *destination_cluster;
	const char *request_protocol;
	const char *response_flags;
	const char *connection_security_policy;
	const char *source_region;
	const char *source_zone;
	const char *destination_region;
	const char *destination_zone;
};

/* A registry. build_tag is istio_build's tag label (copied; NULL: "unknown"). max_series
 * bounds the traffic series and each extra family's children (0: ZT_METRICS_MAX_SERIES).
 * Never fails (out of memory aborts). */
struct zt_metrics *zt_metrics_new(const char *build_tag, size_t max_series);
/* Frees the registry and every handle it gave out. Accepts NULL. */
void zt_metrics_free(struct zt_metrics *m);

/* The series for a label set: the same handle for equal label sets, valid until
 * zt_metrics_free(). Once max_series exist, a new label set gets the overflow series of its
 * reporter (every other label "overflow") and a warning is logged once. Never NULL. */
struct zt_metric_series *zt_metrics_series(struct zt_metrics *m, const struct zt_metric_labels *l);
/* The series with the same labels but these response_flags (for a connection that fails after
 * it was opened). An overflow series stays itself. */
struct zt_metric_series *zt_metrics_series_with_flags(struct zt_metrics *m,
                                                      const struct zt_metric_series *s,
                                                      const char *response_flags);
/* Traffic series interned so far (overflow series not included). */
size_t zt_metrics_series_count(const struct zt_metrics *m);

/* istio_tcp_connections_opened_total += 1. */
void zt_metrics_conn_opened(struct zt_metric_series *s);
/* istio_tcp_connections_closed_total += 1, istio_tcp_received_bytes_total += received (client
 * to server), istio_tcp_sent_bytes_total += sent (server to client). */
void zt_metrics_conn_closed(struct zt_metric_series *s, uint64_t received, uint64_t sent);
/* istio_tcp_connections_failed_total += 1 (use a series whose response_flags is not "-"). */
void zt_metrics_conn_failed(struct zt_metric_series *s);

/* istio_tcp_sockets_open{reporter} up and down. */
void zt_metrics_socket_opened(struct zt_metrics *m, enum zt_reporter r);
void zt_metrics_socket_closed(struct zt_metrics *m, enum zt_reporter r);

enum zt_metric_type { ZT_METRIC_COUNTER, ZT_METRIC_GAUGE, ZT_METRIC_HISTOGRAM };

/* Registers an extra family, rendered after the traffic metrics in registration order. name
 * is the full metric name (counters end in _total by convention); label_names (nlabels <= 12)
 * are copied. Returns 0 with *out set (valid until zt_metrics_free), ZT_E_PARSE for a name
 * that is not a Prometheus metric or label name, ZT_E_RANGE for too many labels, or
 * ZT_E_STATE if the name is taken. */
int zt_metrics_register(struct zt_metrics *m, struct zt_metric **out, const char *name,
                        const char *help, enum zt_metric_type type, const char *const *label_names,
                        size_t nlabels);
/* Registers a histogram family (use zt_metric_observe): bounds[0..nbounds) are the bucket upper
 * bounds, strictly increasing, at most 16 ("+Inf" is implied); no label may be named "le".
 * Returns what zt_metrics_register does, or ZT_E_RANGE for bad bounds. */
int zt_metrics_register_histogram(struct zt_metrics *m, struct zt_metric **out, const char *name,
                                  const char *help, const char *const *label_names, size_t nlabels,
                                  const double *bounds, size_t nbounds);
/* The extra family registered under name, or NULL. Lets several users share one family. */
struct zt_metric *zt_metrics_find(struct zt_metrics *m, const char *name);
/* The child for these label values (nlabels of them, borrowed; NULL or "" is "unknown"); the
 * same handle for equal values. A family without labels has one child (values may be NULL).
 * Past max_series, the family's overflow child. Never NULL. */
struct zt_metric_child *zt_metric_child(struct zt_metric *f, const char *const *values);
/* Counter or gauge += delta (a counter ignores a negative delta). */
void zt_metric_add(struct zt_metric_child *c, int64_t delta);
/* Gauge = v (ignored for a counter). */
void zt_metric_set(struct zt_metric_child *c, int64_t v);
int64_t zt_metric_value(const struct zt_metric_child *c);
/* Histogram: one observation of v. Ignored for other types. */
void zt_metric_observe(struct zt_metric_child *c, double v);

/* Appends the Prometheus text exposition (format 0.0.4): for each family "# HELP", "# TYPE",
 * then its samples, in a stable order (families as listed in spec §8.1 then extras by
 * registration; samples by creation). A traffic family lists the series that counter was
 * updated for. Returns 0, or ZT_E_TOOBIG if out's limit was hit (out then holds a prefix). */
int zt_metrics_render(struct zt_metrics *m, struct zt_buf *out);

/* Adds src's counts into dst: each traffic series, socket gauge and family child of src is
 * added to the one with the same labels in dst (created there, after dst's own, when
 * missing; a family missing in dst is registered as src has it). Rendering the sum of the
 * per-thread registries this way gives what one registry would have counted. Run it where
 * src is not being changed (on src's thread). */
void zt_metrics_merge(struct zt_metrics *dst, const struct zt_metrics *src);

/* Appends s to out as a Prometheus label value: backslash, double quote and newline escaped.
 * Returns 0 or ZT_E_TOOBIG. */
int zt_metrics_escape(struct zt_buf *out, const char *s, size_t len);

#endif
