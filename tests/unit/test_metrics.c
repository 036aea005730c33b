/* Metrics registry: exact Prometheus text for a known flow, escaping, interning, overflow
 * folding, the sockets gauge, process fds and extra families. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "telemetry/metrics.h"

static struct zt_metrics *m;
static struct zt_buf out;
static int warnings;

static void on_line(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)line;
	(void)len;
	(void)arg;
	if (level == ZT_LOG_WARN)
		warnings++;
}

static void setup(void)
{
	m = zt_metrics_new("1.24.0", 0);
	zt_buf_init(&out, 0);
	warnings = 0;
	zt_log_set_sink(on_line, NULL);
}

static void teardown(void)
{
	zt_metrics_free(m);
	zt_buf_clear(&out);
	zt_log_set_sink(NULL, NULL);
}

static const char *render(void)
{
	zt_buf_consume(&out, zt_buf_len(&out));
	ck_assert_int_eq(zt_metrics_render(m, &out), 0);
	return (const char *)zt_buf_data(&out);
}

static struct zt_metric_labels flow(void)
{
	return (struct zt_metric_labels){
	        .reporter = ZT_REPORTER_SOURCE,
	        .source_workload = "client",
	        .source_canonical_service = "client",
	        .source_canonical_revision = "v1",
	        .source_workload_namespace = "default",
	        .source_principal = "spiffe://cluster.local/ns/default/sa/client",
	        .source_app = "client",
	        .source_version = "v1",
	        .source_cluster = "Kubernetes",
	        .destination_service = "echo.default.svc.cluster.local",
	        .destination_service_namespace = "default",
	        .destination_service_name = "echo",
	        .destination_workload = "echo",
	        .destination_canonical_service = "echo",
	        .destination_canonical_revision = "latest",
	        .destination_workload_namespace = "default",
	        .destination_principal = "spiffe://cluster.local/ns/default/sa/echo",
	        .destination_app = "echo",
	        .destination_version = "latest",
	        .destination_cluster = "Kubernetes",
	        .request_protocol = "tcp",
	        .response_flags = "-",
	        .connection_security_policy = "mutual_tls",
	        .source_region = "eu-west1",
	        .source_zone = "eu-west1-b",
	};
}

#define FLOW_LABELS                                                                                \
	"reporter=\"source\",source_workload=\"client\",source_canonical_service=\"client\","      \
	"source_canonical_revision=\"v1\",source_workload_namespace=\"default\","                  \
	"source_principal=\"spiffe://cluster.local/ns/default/sa/client\",source_app="             \
	"\"client\",source_version=\"v1\",source_cluster=\"Kubernetes\",destination_service="      \
	"\"echo.default.svc.cluster.local\",destination_service_namespace=\"default\","            \
	"destination_service_name=\"echo\",destination_workload=\"echo\","                         \
	"destination_canonical_service=\"echo\",destination_canonical_revision=\"latest\","        \
	"destination_workload_namespace=\"default\",destination_principal=\"spiffe://"             \
	"cluster.local/ns/default/sa/echo\",destination_app=\"echo\",destination_version="         \
	"\"latest\",destination_cluster=\"Kubernetes\",request_protocol=\"tcp\","                  \
	"response_flags=\"-\",connection_security_policy=\"mutual_tls\",source_region="            \
	"\"eu-west1\",source_zone=\"eu-west1-b\",destination_region=\"unknown\","                  \
	"destination_zone=\"unknown\""

START_TEST(render_is_exact_for_one_closed_outbound_flow)
{
	struct zt_metric_labels l = flow();
	struct zt_metric_series *s = zt_metrics_series(m, &l);
	static const char want[] =
	        "# HELP istio_tcp_connections_opened_total The total number of TCP connections "
	        "opened\n"
	        "# TYPE istio_tcp_connections_opened_total counter\n"
	        "istio_tcp_connections_opened_total{" FLOW_LABELS "} 1\n"
	        "# HELP istio_tcp_connections_closed_total The total number of TCP connections "
	        "closed\n"
	        "# TYPE istio_tcp_connections_closed_total counter\n"
	        "istio_tcp_connections_closed_total{" FLOW_LABELS "} 1\n"
	        "# HELP istio_tcp_received_bytes_total The size of total bytes received during "
	        "request in case of a TCP connection\n"
	        "# TYPE istio_tcp_received_bytes_total counter\n"
	        "istio_tcp_received_bytes_total{" FLOW_LABELS "} 100\n"
	        "# HELP istio_tcp_sent_bytes_total The size of total bytes sent during response in "
	        "case of a TCP connection\n"
	        "# TYPE istio_tcp_sent_bytes_total counter\n"
	        "istio_tcp_sent_bytes_total{" FLOW_LABELS "} 2000\n"
	        "# HELP istio_tcp_connections_failed_total The total number of TCP connections "
	        "that "
	        "failed to establish\n"
	        "# TYPE istio_tcp_connections_failed_total counter\n"
	        "# HELP istio_tcp_sockets_open The current number of open TCP sockets\n"
	        "# TYPE istio_tcp_sockets_open gauge\n"
	        "istio_tcp_sockets_open{reporter=\"source\"} 1\n"
	        "# HELP istio_build Istio component build info\n"
	        "# TYPE istio_build gauge\n"
	        "istio_build{component=\"ztunnel\",tag=\"1.24.0\"} 1\n"
	        "# HELP process_open_fds Number of open file descriptors.\n"
	        "# TYPE process_open_fds gauge\n"
	        "process_open_fds ";
	const char *text;

	zt_metrics_socket_opened(m, ZT_REPORTER_SOURCE);
	zt_metrics_conn_opened(s);
	zt_metrics_conn_closed(s, 100, 2000);
	text = render();
	ck_assert_msg(strncmp(text, want, sizeof(want) - 1) == 0, "got:\n%s", text);
	/* Rendering only reads: a second scrape is identical. */
	char *first = strdup(text);
	ck_assert_str_eq(render(), first);
	free(first);
}
END_TEST

START_TEST(label_values_escape_backslash_quote_and_newline)
{
	struct zt_metric_labels l = flow();
	struct zt_metric_series *s;

	l.destination_service = "a\\b\"c\nd";
	s = zt_metrics_series(m, &l);
	zt_metrics_conn_opened(s);
	ck_assert_ptr_nonnull(strstr(render(), "destination_service=\"a\\\\b\\\"c\\nd\","));
}
END_TEST

START_TEST(equal_label_sets_intern_to_one_handle_and_missing_values_are_unknown)
{
	struct zt_metric_labels a = flow(), b = flow(), c = {.reporter = ZT_REPORTER_DESTINATION},
	                        d = c;
	struct zt_metric_series *sa, *sc;

	/* Different storage, same text. */
	char ns[] = "default";
	b.source_workload_namespace = ns;
	sa = zt_metrics_series(m, &a);
	ck_assert_ptr_eq(zt_metrics_series(m, &b), sa);
	b.response_flags = "DENY";
	ck_assert_ptr_ne(zt_metrics_series(m, &b), sa);
	/* NULL and "" are both "unknown". */
	d.source_workload = "";
	d.request_protocol = "";
	sc = zt_metrics_series(m, &c);
	ck_assert_ptr_eq(zt_metrics_series(m, &d), sc);
	ck_assert_uint_eq(zt_metrics_series_count(m), 3);
	zt_metrics_conn_opened(sc);
	zt_metrics_conn_opened(sc);
	const char *text = render();
	ck_assert_ptr_nonnull(
	        strstr(text, "{reporter=\"destination\",source_workload=\"unknown\","));
	ck_assert_ptr_nonnull(strstr(text, "connection_security_policy=\"unknown\"} 2\n"));
	/* No workload known: no locality labels. */
	ck_assert_ptr_null(strstr(text, "\"unknown\",source_region="));
}
END_TEST

START_TEST(with_flags_changes_only_response_flags)
{
	struct zt_metric_labels l = flow(), deny = flow();
	struct zt_metric_series *s = zt_metrics_series(m, &l), *f;

	deny.response_flags = "CONNECT";
	f = zt_metrics_series_with_flags(m, s, "CONNECT");
	ck_assert_ptr_eq(f, zt_metrics_series(m, &deny));
	ck_assert_ptr_eq(zt_metrics_series_with_flags(m, f, "-"), s);
	zt_metrics_conn_failed(f);
	const char *text = render();
	ck_assert_ptr_nonnull(
	        strstr(text, "istio_tcp_connections_failed_total{reporter=\"source\""));
	ck_assert_ptr_nonnull(strstr(text, "response_flags=\"CONNECT\",connection_security_policy="
	                                   "\"mutual_tls\",source_region=\"eu-west1\""));
	/* Only the failed counter was touched for it, and nothing for the "-" series. */
	ck_assert_ptr_null(strstr(text, "istio_tcp_connections_opened_total{"));
}
END_TEST

START_TEST(series_past_the_bound_fold_into_overflow_and_warn_once)
{
	struct zt_metric_series *s[6];
	char name[32];

	zt_metrics_free(m);
	m = zt_metrics_new(NULL, 3);
	for (int i = 0; i < 6; i++) {
		struct zt_metric_labels l = flow();
		snprintf(name, sizeof(name), "client-%d", i);
		l.source_workload = name;
		l.reporter = i == 5 ? ZT_REPORTER_DESTINATION : ZT_REPORTER_SOURCE;
		s[i] = zt_metrics_series(m, &l);
		zt_metrics_conn_opened(s[i]);
	}
	ck_assert_uint_eq(zt_metrics_series_count(m), 3);
	ck_assert_ptr_ne(s[0], s[1]);
	ck_assert_ptr_eq(s[3], s[4]);
	ck_assert_ptr_ne(s[4], s[5]); /* one overflow series per reporter */
	ck_assert_int_eq(warnings, 1);
	/* An existing label set keeps its own series. */
	struct zt_metric_labels again = flow();
	again.source_workload = "client-1";
	ck_assert_ptr_eq(zt_metrics_series(m, &again), s[1]);
	ck_assert_ptr_eq(zt_metrics_series_with_flags(m, s[3], "DENY"), s[3]);
	const char *text = render();
	ck_assert_ptr_nonnull(strstr(text, "istio_tcp_connections_opened_total{reporter=\"source\","
	                                   "source_workload=\"overflow\",source_canonical_service="
	                                   "\"overflow\","));
	ck_assert_ptr_nonnull(strstr(text, "connection_security_policy=\"overflow\"} 2\n"));
	ck_assert_ptr_nonnull(
	        strstr(text, "{reporter=\"destination\",source_workload=\"overflow\""));
	ck_assert_int_eq(warnings, 1);
}
END_TEST

START_TEST(sockets_gauge_goes_up_and_down_per_reporter)
{
	zt_metrics_socket_opened(m, ZT_REPORTER_SOURCE);
	zt_metrics_socket_opened(m, ZT_REPORTER_SOURCE);
	zt_metrics_socket_opened(m, ZT_REPORTER_DESTINATION);
	zt_metrics_socket_closed(m, ZT_REPORTER_SOURCE);
	const char *text = render();
	ck_assert_ptr_nonnull(strstr(text, "\nistio_tcp_sockets_open{reporter=\"source\"} 1\n"
	                                   "istio_tcp_sockets_open{reporter=\"destination\"} 1\n"));
	zt_metrics_socket_closed(m, ZT_REPORTER_SOURCE);
	zt_metrics_socket_closed(m, ZT_REPORTER_DESTINATION);
	text = render();
	ck_assert_ptr_nonnull(strstr(text, "\nistio_tcp_sockets_open{reporter=\"source\"} 0\n"
	                                   "istio_tcp_sockets_open{reporter=\"destination\"} 0\n"));
}
END_TEST

START_TEST(process_fds_are_reported_from_proc_and_rlimit)
{
	struct rlimit rl;
	const char *text = render(), *p;
	char want[64];
	long fds;

	p = strstr(text, "\nprocess_open_fds ");
	ck_assert_ptr_nonnull(p);
	fds = strtol(p + strlen("\nprocess_open_fds "), NULL, 10);
	ck_assert_int_gt(fds, 2); /* at least stdin, stdout, stderr */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	snprintf(want, sizeof(want), "\nprocess_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	ck_assert_ptr_nonnull(strstr(text, want));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE process_max_fds gauge\n"));
}
END_TEST

START_TEST(extra_families_render_after_the_builtin_ones_in_registration_order)
{
	static const char *const reason[] = {"reason"};
	struct zt_metric *term, *active;
	struct zt_metric_child *c;

	ck_assert_int_eq(zt_metrics_register(m, &term, "istio_xds_connection_terminations_total",
	                                     "The total number of completed connections to xds "
	                                     "server (unstable)",
	                                     ZT_METRIC_COUNTER, reason, 1),
	                 0);
	ck_assert_int_eq(zt_metrics_register(m, &active, "workload_manager_active_proxy_count",
	                                     "The total number current workloads with active "
	                                     "proxies",
	                                     ZT_METRIC_GAUGE, NULL, 0),
	                 0);
	c = zt_metric_child(term, (const char *const[]){"Reconnect"});
	ck_assert_ptr_eq(zt_metric_child(term, (const char *const[]){"Reconnect"}), c);
	zt_metric_add(c, 2);
	zt_metric_add(c, -5); /* counters never go down */
	ck_assert_int_eq(zt_metric_value(c), 2);
	zt_metric_set(zt_metric_child(active, NULL), 7);
	zt_metric_add(zt_metric_child(active, NULL), -2);
	const char *text = render();
	const char *t =
	        strstr(text, "# HELP istio_xds_connection_terminations_total The total "
	                     "number of completed connections to xds server (unstable)\n"
	                     "# TYPE istio_xds_connection_terminations_total counter\n"
	                     "istio_xds_connection_terminations_total{reason=\"Reconnect\"} "
	                     "2\n"
	                     "# HELP workload_manager_active_proxy_count The total number "
	                     "current workloads with active proxies\n"
	                     "# TYPE workload_manager_active_proxy_count gauge\n"
	                     "workload_manager_active_proxy_count 5\n"
	                     "# HELP process_open_fds ");
	ck_assert_msg(t != NULL, "got:\n%s", text);
	ck_assert(t > strstr(text, "istio_build{"));
}
END_TEST

START_TEST(register_rejects_bad_names_duplicates_and_too_many_labels)
{
	static const char *const bad_label[] = {"9lives"};
	static const char *const reserved[] = {"__name"};
	static const char *const many[] = {"a", "b", "c", "d", "e", "f", "g",
	                                   "h", "i", "j", "k", "l", "m"};
	struct zt_metric *f;

	ck_assert_int_eq(zt_metrics_register(m, &f, "bad-name", "", ZT_METRIC_COUNTER, NULL, 0),
	                 ZT_E_PARSE);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(zt_metrics_register(m, &f, "", "", ZT_METRIC_COUNTER, NULL, 0),
	                 ZT_E_PARSE);
	ck_assert_int_eq(zt_metrics_register(m, &f, "x_total", "", ZT_METRIC_COUNTER, bad_label, 1),
	                 ZT_E_PARSE);
	ck_assert_int_eq(zt_metrics_register(m, &f, "x_total", "", ZT_METRIC_COUNTER, reserved, 1),
	                 ZT_E_PARSE);
	ck_assert_int_eq(zt_metrics_register(m, &f, "x_total", "", ZT_METRIC_COUNTER, many, 13),
	                 ZT_E_RANGE);
	ck_assert_int_eq(zt_metrics_register(m, &f, "istio_build", "", ZT_METRIC_GAUGE, NULL, 0),
	                 ZT_E_STATE);
	ck_assert_int_eq(zt_metrics_register(m, &f, "x_total", "", ZT_METRIC_COUNTER, NULL, 0), 0);
	ck_assert_int_eq(zt_metrics_register(m, &f, "x_total", "", ZT_METRIC_GAUGE, NULL, 0),
	                 ZT_E_STATE);
}
END_TEST

START_TEST(extra_family_children_fold_into_overflow_past_the_bound)
{
	static const char *const url[] = {"url"};
	struct zt_metric *f;
	struct zt_metric_child *c[4];
	char v[32];

	zt_metrics_free(m);
	m = zt_metrics_new("t", 2);
	ck_assert_int_eq(zt_metrics_register(m, &f, "istio_xds_message_total", "help\\with\nlines",
	                                     ZT_METRIC_COUNTER, url, 1),
	                 0);
	for (int i = 0; i < 4; i++) {
		snprintf(v, sizeof(v), "type/%d", i);
		c[i] = zt_metric_child(f, (const char *const[]){v});
		zt_metric_add(c[i], 1);
	}
	ck_assert_ptr_eq(c[2], c[3]);
	ck_assert_int_eq(warnings, 1);
	const char *text = render();
	ck_assert_ptr_nonnull(strstr(text, "istio_xds_message_total{url=\"overflow\"} 2\n"));
	ck_assert_ptr_nonnull(
	        strstr(text, "# HELP istio_xds_message_total help\\\\with\\nlines\n"));
}
END_TEST

START_TEST(long_values_are_cut_at_a_utf8_boundary)
{
	struct zt_metric_labels l = flow();
	char big[3000];
	const char *p, *q;

	/* "é" is two bytes; 1024 falls on an odd offset after one leading 'x'. */
	big[0] = 'x';
	for (size_t i = 1; i + 1 < sizeof(big); i += 2) {
		big[i] = (char)0xc3;
		big[i + 1] = (char)0xa9;
	}
	big[sizeof(big) - 1] = '\0';
	l.destination_service = big;
	zt_metrics_conn_opened(zt_metrics_series(m, &l));
	p = strstr(render(), "destination_service=\"");
	ck_assert_ptr_nonnull(p);
	p += strlen("destination_service=\"");
	q = strchr(p, '"');
	ck_assert_int_eq(q - p, 1023);
	ck_assert_int_eq((unsigned char)q[-1], 0xa9);
}
END_TEST

START_TEST(render_into_a_bounded_buffer_reports_too_big)
{
	struct zt_buf small;

	zt_buf_init(&small, 64);
	ck_assert_int_eq(zt_metrics_render(m, &small), ZT_E_TOOBIG);
	ck_assert_uint_le(zt_buf_len(&small), 64);
	ck_assert(zt_buf_len(&small) == 0 ||
	          memcmp(zt_buf_data(&small), "# HELP istio_tcp_connections_opened_total", 41) ==
	                  0);
	zt_buf_clear(&small);
}
END_TEST

/* Two registries counting halves of the same traffic render, once merged, exactly what one
 * registry counting all of it renders (process_open_fds aside, which is read at render). */
static void count_half(struct zt_metrics *r, int which)
{
	struct zt_metric_labels l = flow();
	struct zt_metric_series *s = zt_metrics_series(r, &l);
	static const char *const names[] = {"kind"};
	static const double bounds[] = {0.5, 2};
	struct zt_metric *f, *h;

	zt_metrics_conn_opened(s);
	zt_metrics_conn_closed(s, 100 + (uint64_t)which, 7);
	if (which) {
		zt_metrics_conn_failed(zt_metrics_series_with_flags(r, s, "DENY"));
		zt_metrics_socket_opened(r, ZT_REPORTER_DESTINATION);
	}
	zt_metrics_socket_opened(r, ZT_REPORTER_SOURCE);
	if (!(f = zt_metrics_find(r, "extra_total")))
		ck_assert_int_eq(zt_metrics_register(r, &f, "extra_total", "Extra", ZT_METRIC_COUNTER,
		                                     names, 1), 0);
	zt_metric_add(zt_metric_child(f, (const char *const[]){which ? "b" : "a"}), 3);
	if (!(h = zt_metrics_find(r, "lat_seconds")))
		ck_assert_int_eq(zt_metrics_register_histogram(r, &h, "lat_seconds", "Latency",
		                                               NULL, 0, bounds, 2), 0);
	zt_metric_observe(zt_metric_child(h, NULL), which ? 1.0 : 0.25);
}

static char *cut_fds(const char *text)
{
	char *copy = strdup(text), *p = strstr(copy, "# HELP process_open_fds");
	if (p)
		*p = '\0';
	return copy;
}

START_TEST(merged_registries_render_as_one_registry_would)
{
	struct zt_metrics *a = zt_metrics_new("1.24.0", 0), *b = zt_metrics_new("1.24.0", 0);
	struct zt_metrics *sum = zt_metrics_new("1.24.0", 0);
	char *want, *got;

	count_half(m, 0);
	count_half(m, 1);
	want = cut_fds(render());
	count_half(a, 0);
	count_half(b, 1);
	zt_metrics_merge(sum, a);
	zt_metrics_merge(sum, b);
	zt_buf_consume(&out, zt_buf_len(&out));
	ck_assert_int_eq(zt_metrics_render(sum, &out), 0);
	got = cut_fds((const char *)zt_buf_data(&out));
	ck_assert_str_eq(got, want);
	ck_assert_ptr_nonnull(strstr(got, "istio_tcp_received_bytes_total{reporter=\"source\""));
	ck_assert_ptr_nonnull(strstr(got, "lat_seconds_count 2\n"));
	free(want);
	free(got);
	zt_metrics_free(a);
	zt_metrics_free(b);
	zt_metrics_free(sum);
}
END_TEST

Suite *metrics_suite(void);
Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, render_is_exact_for_one_closed_outbound_flow);
	tcase_add_test(tc, label_values_escape_backslash_quote_and_newline);
	tcase_add_test(tc, equal_label_sets_intern_to_one_handle_and_missing_values_are_unknown);
	tcase_add_test(tc, with_flags_changes_only_response_flags);
	tcase_add_test(tc, series_past_the_bound_fold_into_overflow_and_warn_once);
	tcase_add_test(tc, sockets_gauge_goes_up_and_down_per_reporter);
	tcase_add_test(tc, process_fds_are_reported_from_proc_and_rlimit);
	tcase_add_test(tc, extra_families_render_after_the_builtin_ones_in_registration_order);
	tcase_add_test(tc, register_rejects_bad_names_duplicates_and_too_many_labels);
	tcase_add_test(tc, extra_family_children_fold_into_overflow_past_the_bound);
	tcase_add_test(tc, long_values_are_cut_at_a_utf8_boundary);
	tcase_add_test(tc, render_into_a_bounded_buffer_reports_too_big);
	tcase_add_test(tc, merged_registries_render_as_one_registry_would);
	suite_add_tcase(s, tc);
	return s;
}
