#include <check.h>
#include <jansson.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"

ZT_LOG_MODULE("proxy");

static struct {
	char line[8192];
	size_t len;
	int count;
	enum zt_log_level level;
} cap;

static void on_line(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)arg;
	ck_assert_uint_lt(len, sizeof(cap.line));
	memcpy(cap.line, line, len);
	cap.line[len] = '\0';
	cap.len = len;
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
}

START_TEST(default_level_filters_debug_and_passes_info)
{
	zt_debug("hidden %d", 1);
	ck_assert_int_eq(cap.count, 0);
	zt_info("shown %d", 2);
	ck_assert_int_eq(cap.count, 1);
	ck_assert_ptr_nonnull(strstr(cap.line, "\tinfo\tproxy\tshown 2\n"));
	ck_assert_int_eq(cap.line[cap.len - 1], '\n');
}
END_TEST

START_TEST(module_override_changes_only_that_module_at_runtime)
{
	static struct zt_log_mod other = {.name = "xds"};

	ck_assert_int_eq(zt_log_set_spec("warn,proxy=trace", NULL, 0), 0);
	zt_trace("t");
	ck_assert_int_eq(cap.count, 1);
	ck_assert(!zt_log_enabled(&other, ZT_LOG_INFO));
	ck_assert(zt_log_enabled(&other, ZT_LOG_WARN));
	ck_assert_int_eq(zt_log_set_spec("info", NULL, 0), 0);
	zt_trace("t");
	ck_assert_int_eq(cap.count, 1);
	ck_assert(zt_log_enabled(&other, ZT_LOG_INFO));
}
END_TEST

START_TEST(rust_log_style_paths_name_the_last_component)
{
	char spec[256];

	ck_assert_int_eq(zt_log_set_spec(" error , ztunnel::proxy = debug ,access=off", NULL, 0), 0);
	zt_log_get_spec(spec, sizeof(spec));
	ck_assert_str_eq(spec, "error,proxy=debug,access=off");
	zt_debug("d");
	ck_assert_int_eq(cap.count, 1);
}
END_TEST

START_TEST(bad_spec_is_rejected_naming_the_item_and_keeps_old_levels)
{
	char err[256], spec[256];

	ck_assert_int_eq(zt_log_set_spec("debug,proxy=trace", NULL, 0), 0);
	ck_assert_int_eq(zt_log_set_spec("info,proxy=loud", err, sizeof(err)), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "'proxy=loud'"));
	ck_assert_int_eq(zt_log_set_spec("=debug", err, sizeof(err)), ZT_E_PARSE);
	ck_assert_int_eq(zt_log_set_spec("verbose", err, sizeof(err)), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "'verbose'"));
	zt_log_get_spec(spec, sizeof(spec));
	ck_assert_str_eq(spec, "debug,proxy=trace");
}
END_TEST

START_TEST(too_many_overrides_are_refused)
{
	char spec[2048] = "info";
	size_t off = strlen(spec);

	for (int i = 0; i < 65; i++)
		off += (size_t)snprintf(spec + off, sizeof(spec) - off, ",m%d=debug", i);
	ck_assert_int_eq(zt_log_set_spec(spec, NULL, 0), ZT_E_TOOBIG);
}
END_TEST

START_TEST(text_fields_are_key_value_and_quoted_when_needed)
{
	struct zt_log_field f[] = {
		ZT_LF_S("src.addr", "10.0.0.1:80"), ZT_LF_S("error", "connection refused"),
		ZT_LF_S("skipped", NULL),	    ZT_LF_U("bytes_sent", 42),
		ZT_LF_I("delta", -3),		    ZT_LF_S("q", "a\"b\n"),
	};

	zt_log_emit(&zt_log_mod_, ZT_LOG_INFO, f, 6, "connection complete");
	ck_assert_ptr_nonnull(strstr(cap.line,
				     "connection complete src.addr=10.0.0.1:80 "
				     "error=\"connection refused\" bytes_sent=42 delta=-3 "
				     "q=\"a\\\"b\\x0a\"\n"));
	ck_assert_ptr_null(strstr(cap.line, "skipped"));
}
END_TEST

START_TEST(json_format_emits_one_parseable_object_per_line)
{
	struct zt_log_field f[] = {ZT_LF_S("dst.addr", "[fd00::1]:443"), ZT_LF_U("bytes_recv", 7)};
	json_error_t jerr;
	json_t *o;

	zt_log_set_format(ZT_LOG_JSON);
	zt_log_emit(&zt_log_mod_, ZT_LOG_WARN, f, 2, "hello \"%s\"", "world");
	ck_assert_int_eq(cap.line[cap.len - 1], '\n');
	ck_assert_ptr_null(memchr(cap.line, '\n', cap.len - 1));
	o = json_loads(cap.line, 0, &jerr);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
	ck_assert_str_eq(json_string_value(json_object_get(o, "scope")), "proxy");
	ck_assert_str_eq(json_string_value(json_object_get(o, "message")), "hello \"world\"");
	ck_assert_str_eq(json_string_value(json_object_get(o, "dst.addr")), "[fd00::1]:443");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes_recv")), 7);
	json_decref(o);
}
END_TEST

START_TEST(json_line_survives_invalid_utf8_from_a_peer)
{
	struct zt_log_field f[] = {ZT_LF_S("authority", "\xff\xfe bad")};

	zt_log_set_format(ZT_LOG_JSON);
	zt_log_emit(&zt_log_mod_, ZT_LOG_INFO, f, 1, "m");
	ck_assert_int_eq(cap.count, 1);
	ck_assert_ptr_nonnull(strstr(cap.line, "\"authority\":\"?? bad\""));
}
END_TEST

START_TEST(overlong_message_is_cut_but_line_still_ends_with_newline)
{
	static char big[20000];

	memset(big, 'x', sizeof(big) - 1);
	zt_info("%s", big);
	ck_assert_int_eq(cap.count, 1);
	ck_assert_int_eq(cap.line[cap.len - 1], '\n');
	ck_assert_uint_le(cap.len, 8192);
}
END_TEST

START_TEST(level_and_format_names_parse)
{
	enum zt_log_format fmt;

	ck_assert_int_eq(zt_log_level_parse("TRACE"), ZT_LOG_TRACE);
	ck_assert_int_eq(zt_log_level_parse("warning"), ZT_LOG_WARN);
	ck_assert_int_eq(zt_log_level_parse("nope"), ZT_E_PARSE);
	ck_assert_int_eq(zt_log_format_parse("JSON", &fmt), 0);
	ck_assert_int_eq(fmt, ZT_LOG_JSON);
	ck_assert_int_eq(zt_log_format_parse("plain", &fmt), 0);
	ck_assert_int_eq(fmt, ZT_LOG_TEXT);
	ck_assert_int_eq(zt_log_format_parse("xml", &fmt), ZT_E_PARSE);
}
END_TEST

Suite *log_suite(void);
Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, default_level_filters_debug_and_passes_info);
	tcase_add_test(tc, module_override_changes_only_that_module_at_runtime);
	tcase_add_test(tc, rust_log_style_paths_name_the_last_component);
	tcase_add_test(tc, bad_spec_is_rejected_naming_the_item_and_keeps_old_levels);
	tcase_add_test(tc, too_many_overrides_are_refused);
	tcase_add_test(tc, text_fields_are_key_value_and_quoted_when_needed);
	tcase_add_test(tc, json_format_emits_one_parseable_object_per_line);
	tcase_add_test(tc, json_line_survives_invalid_utf8_from_a_peer);
	tcase_add_test(tc, overlong_message_is_cut_but_line_still_ends_with_newline);
	tcase_add_test(tc, level_and_format_names_parse);
	suite_add_tcase(s, tc);
	return s;
}
