/* Client report: keeps counters and latency samples, and renders them with jansson. Text
 * from the peer (the banner) is made valid UTF-8 before it goes into the JSON. */
#include "report.h"
#include "runtime/mem.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void sw_report_init(struct sw_report *r)
{
	memset(r, 0, sizeof(*r));
}

void sw_report_clear(struct sw_report *r)
{
	free(r->lat_ns);
	sw_report_init(r);
}

void sw_report_error(struct sw_report *r, const char *text)
{
	if (!r->error[0])
		snprintf(r->error, sizeof(r->error), "%s", text);
}

void sw_report_latency(struct sw_report *r, uint64_t ns)
{
	if (r->nlat == r->lat_cap) {
		size_t cap = r->lat_cap ? 2 * r->lat_cap : 1024;
		r->lat_ns = xrealloc(r->lat_ns, cap * sizeof(*r->lat_ns));
		r->lat_cap = cap;
	}
	r->lat_ns[r->nlat++] = ns;
}

uint64_t sw_percentile(const uint64_t *s, size_t n, unsigned pct)
{
	/* Nearest rank: the smallest sample with at least pct% of samples at or below it. */
	size_t rank = (size_t)(((uint64_t)n * pct + 99) / 100);

	if (rank == 0)
		rank = 1;
	return s[rank - 1];
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A JSON string of peer bytes: anything that is not printable ASCII becomes '?'. */
static json_t *peer_string(const char *s)
{
	char clean[SW_BANNER_MAX + 1];
	size_t n = strlen(s);

	if (n >= sizeof(clean))
		n = sizeof(clean) - 1;
	for (size_t i = 0; i < n; i++)
		clean[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	return json_stringn(clean, n);
}

static json_t *latency_json(struct sw_report *r)
{
	const uint64_t *s = r->lat_ns;
	size_t n = r->nlat;

	if (!r->request_mode || n == 0)
		return json_null();
	qsort(r->lat_ns, n, sizeof(*s), cmp_u64);
	/* Microseconds, rounded to the nearest. */
	return json_pack("{s:I,s:I,s:I,s:I}", "p50",
	                 (json_int_t)((sw_percentile(s, n, 50) + 500) / 1000), "p90",
	                 (json_int_t)((sw_percentile(s, n, 90) + 500) / 1000), "p99",
	                 (json_int_t)((sw_percentile(s, n, 99) + 500) / 1000), "max",
	                 (json_int_t)((s[n - 1] + 500) / 1000));
}

int sw_report_print(struct sw_report *r, FILE *f)
{
	double mbps = 0;
	json_t *j;
	char *text;
	int err = 0;

	if (r->duration_us > 0)
		mbps = (double)(r->bytes_sent + r->bytes_received) * 8.0 / (double)r->duration_us;
	j = json_pack("{s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:o,s:f,s:o,s:o,s:s}", "connections",
	              (json_int_t)r->connections, "ok", (json_int_t)r->ok, "errors",
	              (json_int_t)r->errors, "error",
	              r->error[0] ? peer_string(r->error) : json_null(), "bytes_sent",
	              (json_int_t)r->bytes_sent, "bytes_received", (json_int_t)r->bytes_received,
	              "duration_ms", (json_int_t)(r->duration_us / 1000), "requests",
	              (json_int_t)r->requests, "latency_us", latency_json(r), "throughput_mbps",
	              (double)(int64_t)(mbps * 1000.0 + 0.5) / 1000.0, "banner",
	              r->has_banner ? peer_string(r->banner) : json_null(), "sink_received",
	              r->has_sink ? json_integer((json_int_t)r->sink_received) : json_null(),
	              "peer", r->peer);
	if (!j)
		abort(); /* only allocation can fail here */
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	json_decref(j);
	if (!text)
		abort();
	if (fprintf(f, "%s\n", text) < 0 || fflush(f) != 0)
		err = -EIO;
	free(text);
	return err;
}
