/* Access log lines as the log sink receives them: field order and values (spec §8.2) in text
 * and JSON, byte orientation per direction, levels. */
#include <check.h>
#include <jansson.h>
#include <string.h>

#include "runtime/log.h"
#include "telemetry/accesslog.h"

static struct {
	char line[8192];
	int count;
	enum zt_log_level level;
} cap;

static void on_line(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)arg;
	ck_assert_uint_lt(len, sizeof(cap.line));
	memcpy(cap.line, line, len);
	cap.line[len] = '\0';
	cap.level = level;
	cap.count++;
}

static void setup(void)
{
	memset(&cap, 0, sizeof(cap));
	zt_log_set_sink(on_line, NULL);
	zt_log_set_format(ZT_LOG_TEXT);
	ck_assert_int_eq(zt_log_set_spec("info", NULL, 0), 0);
}

static void teardown(void)
{
	zt_log_set_sink(NULL, NULL);
	zt_log_set_format(ZT_LOG_TEXT);
	zt_log_set_spec("info", NULL, 0);
}

static struct zt_sockaddr addr(const char *s)
{
	struct zt_sockaddr a;

	ck_assert_int_eq(zt_addr_parse(&a, s, strlen(s), 0), 0);
	return a;
}

static struct zt_access_entry outbound(void)
{
	return (struct zt_access_entry){
	        .src_addr = addr("10.0.0.1:45678"),
	        .src_workload = "client-7d4b9",
	        .src_namespace = "default",
	        .src_identity = "spiffe://cluster.local/ns/default/sa/client",
	        .src_cluster = "Kubernetes",
	        .dst_addr = addr("10.0.0.5:15008"),
	        .dst_hbone_addr = "10.0.0.5:8080",
	        .dst_service = "echo.default.svc.cluster.local",
	        .dst_workload = "echo-5f6c8",
	        .dst_namespace = "default",
	        .dst_identity = "spiffe://cluster.local/ns/default/sa/echo",
	        .dst_cluster = "Kubernetes",
	        .mtls = true,
	        .direction = ZT_DIR_OUTBOUND,
	        .bytes_up = 120,
	        .bytes_down = 4500,
	        .duration_ms = 37,
	};
}

/* The line without its timestamp. */
static const char *after_time(void)
{
	const char *tab = strchr(cap.line, '\t');

	ck_assert_ptr_nonnull(tab);
	return tab + 1;
}

START_TEST(complete_line_has_every_field_in_reference_order)
{
	struct zt_access_entry e = outbound();

	zt_access_log(&e);
	ck_assert_int_eq(cap.count, 1);
	ck_assert_int_eq(cap.level, ZT_LOG_INFO);
	ck_assert_str_eq(after_time(),
	                 "info\taccess\tconnection complete src.addr=10.0.0.1:45678 "
	                 "src.workload=client-7d4b9 src.namespace=default "
	                 "src.identity=spiffe://cluster.local/ns/default/sa/client "
	                 "src.cluster=Kubernetes dst.addr=10.0.0.5:15008 "
	                 "dst.hbone_addr=10.0.0.5:8080 dst.service=echo.default.svc.cluster.local "
	                 "dst.workload=echo-5f6c8 dst.namespace=default "
	                 "dst.identity=spiffe://cluster.local/ns/default/sa/echo "
	                 "dst.cluster=Kubernetes direction=outbound bytes_sent=120 bytes_recv=4500 "
	                 "duration=37ms\n");
}
END_TEST

START_TEST(inbound_bytes_sent_is_server_to_client)
{
	struct zt_access_entry e = outbound();

	e.direction = ZT_DIR_INBOUND;
	zt_access_log(&e);
	ck_assert_ptr_nonnull(
	        strstr(cap.line, " direction=inbound bytes_sent=4500 bytes_recv=120 "));
	e.direction = ZT_DIR_OUTBOUND;
	zt_access_log(&e);
	ck_assert_ptr_nonnull(
	        strstr(cap.line, " direction=outbound bytes_sent=120 bytes_recv=4500 "));
}
END_TEST

START_TEST(empty_fields_and_identities_without_mtls_are_left_out)
{
	struct zt_access_entry e = {
	        .src_addr = addr("[fd00::1]:5000"),
	        .src_workload = "",
	        .src_identity = "spiffe://cluster.local/ns/a/sa/b",
	        .dst_addr = addr("10.0.0.9:80"),
	        .dst_identity = "spiffe://cluster.local/ns/a/sa/c",
	        .direction = ZT_DIR_OUTBOUND,
	        .duration_ms = 0,
	};

	zt_access_log(&e);
	ck_assert_str_eq(after_time(), "info\taccess\tconnection complete src.addr=[fd00::1]:5000 "
	                               "dst.addr=10.0.0.9:80 direction=outbound bytes_sent=0 "
	                               "bytes_recv=0 duration=0ms\n");
}
END_TEST

START_TEST(failure_is_logged_at_error_with_the_error_last)
{
	struct zt_access_entry e = outbound();

	e.error = "connection reset by server";
	zt_access_log(&e);
	ck_assert_int_eq(cap.level, ZT_LOG_ERROR);
	ck_assert_ptr_nonnull(strstr(cap.line, "\terror\taccess\tconnection complete src.addr="));
	ck_assert_ptr_nonnull(
	        strstr(cap.line, " duration=37ms error=\"connection reset by server\"\n"));
}
END_TEST

START_TEST(connection_failed_is_a_warning_with_four_fields)
{
	struct zt_sockaddr src = addr("10.0.0.1:3333"), dst = addr("10.0.0.2:15008");

	zt_access_log_failed(&src, &dst, ZT_DIR_INBOUND, "denied by authorization policy");
	ck_assert_int_eq(cap.level, ZT_LOG_WARN);
	ck_assert_str_eq(after_time(), "warn\taccess\tconnection failed src.addr=10.0.0.1:3333 "
	                               "dst.addr=10.0.0.2:15008 direction=inbound "
	                               "error=\"denied by authorization policy\"\n");
	zt_access_log_failed(NULL, NULL, ZT_DIR_OUTBOUND, "x");
	ck_assert_str_eq(after_time(),
	                 "warn\taccess\tconnection failed direction=outbound error=x\n");
}
END_TEST

START_TEST(access_level_filters_lines_and_opened_is_debug)
{
	struct zt_access_entry e = outbound();

	zt_access_log_opened(&e);
	ck_assert_int_eq(cap.count, 0);
	ck_assert_int_eq(zt_log_set_spec("info,access=debug", NULL, 0), 0);
	zt_access_log_opened(&e);
	ck_assert_int_eq(cap.count, 1);
	ck_assert_int_eq(cap.level, ZT_LOG_DEBUG);
	ck_assert_ptr_nonnull(strstr(cap.line, "\tconnection opened src.addr=10.0.0.1:45678 "));
	ck_assert_ptr_null(strstr(cap.line, "bytes_sent"));
	ck_assert_ptr_nonnull(strstr(cap.line, " dst.cluster=Kubernetes direction=outbound\n"));
	ck_assert_int_eq(zt_log_set_spec("info,access=off", NULL, 0), 0);
	zt_access_log(&e);
	zt_access_log_failed(NULL, NULL, ZT_DIR_OUTBOUND, "x");
	ck_assert_int_eq(cap.count, 1);
}
END_TEST

START_TEST(json_lines_use_the_dotted_keys_in_order_with_typed_values)
{
	static const char *const keys[] = {
	        "time",           "level",         "scope",        "message",       "src.addr",
	        "src.workload",   "src.namespace", "src.identity", "src.cluster",   "dst.addr",
	        "dst.hbone_addr", "dst.service",   "dst.workload", "dst.namespace", "dst.identity",
	        "dst.cluster",    "direction",     "bytes_sent",   "bytes_recv",    "duration",
	        "error"};
	struct zt_access_entry e = outbound();
	json_error_t jerr;
	json_t *o;
	const char *prev = cap.line, *p;
	char quoted[64];

	e.direction = ZT_DIR_INBOUND;
	e.error = "stream reset by client";
	zt_log_set_format(ZT_LOG_JSON);
	zt_access_log(&e);
	o = json_loads(cap.line, 0, &jerr);
	ck_assert_msg(o != NULL, "not JSON: %s", cap.line);
	ck_assert_uint_eq(json_object_size(o), sizeof(keys) / sizeof(keys[0]));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(quoted, sizeof(quoted), "\"%s\":", keys[i]);
		p = strstr(cap.line, quoted);
		ck_assert_msg(p && p > prev, "key %s missing or out of order in %s", keys[i],
		              cap.line);
		prev = p;
	}
	ck_assert_str_eq(json_string_value(json_object_get(o, "scope")), "access");
	ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "error");
	ck_assert_str_eq(json_string_value(json_object_get(o, "message")), "connection complete");
	ck_assert_str_eq(json_string_value(json_object_get(o, "src.addr")), "10.0.0.1:45678");
	ck_assert_str_eq(json_string_value(json_object_get(o, "direction")), "inbound");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes_sent")), 4500);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes_recv")), 120);
	ck_assert_str_eq(json_string_value(json_object_get(o, "duration")), "37ms");
	ck_assert_str_eq(json_string_value(json_object_get(o, "error")), "stream reset by client");
	json_decref(o);
}
END_TEST

Suite *accesslog_suite(void);
Suite *accesslog_suite(void)
{
	Suite *s = suite_create("accesslog");
	TCase *tc = tcase_create("accesslog");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, complete_line_has_every_field_in_reference_order);
	tcase_add_test(tc, inbound_bytes_sent_is_server_to_client);
	tcase_add_test(tc, empty_fields_and_identities_without_mtls_are_left_out);
	tcase_add_test(tc, failure_is_logged_at_error_with_the_error_last);
	tcase_add_test(tc, connection_failed_is_a_warning_with_four_fields);
	tcase_add_test(tc, access_level_filters_lines_and_opened_is_debug);
	tcase_add_test(tc, json_lines_use_the_dotted_keys_in_order_with_typed_values);
	suite_add_tcase(s, tc);
	return s;
}
