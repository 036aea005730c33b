/* The client's results: counters filled while connections run, latency samples, and the one
 * JSON line they end as. Pure data plus formatting; no I/O besides the final write. */
#ifndef SW_REPORT_H
#define SW_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/addr.h"

#define SW_REPORT_ERRLEN 256
#define SW_BANNER_MAX    4096 /* longest banner line the client accepts, newline excluded */

struct sw_report {
	uint32_t connections, ok, errors;
	char error[SW_REPORT_ERRLEN]; /* the first error; "" while there is none */
	uint64_t bytes_sent, bytes_received;
	uint64_t duration_us;
	bool request_mode;
	uint64_t requests; /* round trips completed */
	uint64_t *lat_ns;  /* one sample per completed round trip; owned */
	size_t nlat, lat_cap;
	bool has_banner;
	char banner[SW_BANNER_MAX + 1]; /* the first banner line read */
	bool has_sink;
	uint64_t sink_received; /* sum of the sinks' "received N" */
	char peer[ZT_ADDR_STRLEN];
};

/* Starts an empty report. */
void sw_report_init(struct sw_report *r);
/* Frees the samples; r is then empty. */
void sw_report_clear(struct sw_report *r);

/* Keeps the text as the first error unless one is already kept. */
void sw_report_error(struct sw_report *r, const char *text);
/* Adds one round-trip latency. */
void sw_report_latency(struct sw_report *r, uint64_t ns);

/* Nearest-rank percentile (0 < pct <= 100) of the sorted samples s[0..n), n > 0. */
uint64_t sw_percentile(const uint64_t *s, size_t n, unsigned pct);

/* Writes the summary as one JSON line (sorting the samples). Fields:
 * connections, ok, errors, error (first error or null), bytes_sent, bytes_received,
 * duration_ms, requests, latency_us {p50,p90,p99,max} (null unless request mode with samples),
 * throughput_mbps (bytes both ways, megabits per second), banner (or null), sink_received
 * (or null when no sink answered), peer. Returns 0 or -EIO. */
int sw_report_print(struct sw_report *r, FILE *f);

#endif
