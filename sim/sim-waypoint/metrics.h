/* Request telemetry of the waypoint (spec §8): one access-log line per request and
 * istio_requests_total / istio_request_duration_milliseconds with Istio's standard labels
 * (reporter="waypoint"), served in Prometheus text on a loopback HTTP endpoint. */
#ifndef WP_METRICS_H
#define WP_METRICS_H

#include <stdint.h>

#include "runtime/loop.h"

struct wp_metrics;

/* What one finished request reports; strings borrowed, "unknown" when NULL. */
struct wp_request_record {
	const char *src_principal, *src_ns, *src_workload;
	const char *dst_principal, *dst_ns, *dst_workload;
	const char *dst_service; /* hostname */
	const char *dst_service_name;
	const char *dst_service_ns;
	const char *protocol; /* "http" or "tcp" */
	int code;
	const char *flags; /* response flags, "-" when none */
	uint64_t duration_ms;
};

/* Listens on addr ("ip:port") for GET /metrics (or /stats/prometheus). Returns 0 or -errno. */
int wp_metrics_new(struct wp_metrics **out, struct zt_loop *loop, const char *addr);
void wp_metrics_free(struct wp_metrics *m);
void wp_metrics_record(struct wp_metrics *m, const struct wp_request_record *r);

#endif
