/* Duration and byte-size parsing/formatting: accepted syntax, every rejection class, overflow
 * at the exact 64-bit boundary, and format/parse round trips. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "runtime/duration.h"
#include "runtime/err.h"

#define SENTINEL 0xdeadbeefULL

struct ok_case {
	const char *text;
	uint64_t want;
};

static void expect_duration(const struct ok_case *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t ms = SENTINEL;
		int rc = zt_duration_parse(c[i].text, &ms);

		ck_assert_msg(rc == 0, "\"%s\": rc %d", c[i].text, rc);
		ck_assert_msg(ms == c[i].want, "\"%s\": got %llu, want %llu", c[i].text,
		              (unsigned long long)ms, (unsigned long long)c[i].want);
	}
}

static void expect_duration_err(const char *const *texts, size_t n, int want)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t ms = SENTINEL;
		int rc = zt_duration_parse(texts[i], &ms);

		ck_assert_msg(rc == want, "\"%s\": rc %d, want %d", texts[i], rc, want);
		ck_assert_msg(ms == SENTINEL, "\"%s\": output written on failure", texts[i]);
	}
}

static void expect_size(const struct ok_case *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t v = SENTINEL;
		int rc = zt_size_parse(c[i].text, &v);

		ck_assert_msg(rc == 0, "\"%s\": rc %d", c[i].text, rc);
		ck_assert_msg(v == c[i].want, "\"%s\": got %llu, want %llu", c[i].text,
		              (unsigned long long)v, (unsigned long long)c[i].want);
	}
}

static void expect_size_err(const char *const *texts, size_t n, int want)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t v = SENTINEL;
		int rc = zt_size_parse(texts[i], &v);

		ck_assert_msg(rc == want, "\"%s\": rc %d, want %d", texts[i], rc, want);
		ck_assert_msg(v == SENTINEL, "\"%s\": output written on failure", texts[i]);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(duration_parse_accepts_each_unit)
{
	static const struct ok_case c[] = {
	        {"500ms", 500},    {"10s", 10000}, {"5m", 300000},     {"24h", 86400000},
	        {"2d", 172800000}, {"1ms", 1},     {"0s", 0},          {"0ms", 0},
	        {"010s", 10000},   {"00m", 0},     {"3600s", 3600000},
	};
	expect_duration(c, N(c));
}
END_TEST

START_TEST(duration_parse_sums_compound_components)
{
	static const struct ok_case c[] = {
	        {"1h30m", 5400000}, {"1m30s", 90000},
	        {"1s500ms", 1500},  {"1d2h3m4s5ms", 86400000 + 2 * 3600000 + 3 * 60000 + 4000 + 5},
	        {"30m1h", 5400000}, /* any order, as Go */
	        {"1m1m", 120000},
	};
	expect_duration(c, N(c));
}
END_TEST

START_TEST(duration_parse_accepts_fractions_that_give_whole_ms)
{
	static const struct ok_case c[] = {
	        {"1.5s", 1500},
	        {"0.5m", 30000},
	        {"1.25h", 4500000},
	        {"0.001s", 1},
	        {"1.5d", 129600000},
	        {"2.0ms", 2},
	        {"1.000000000000000000000000s", 1000},
	        {"0.0000125d", 1080},
	};
	expect_duration(c, N(c));
}
END_TEST

START_TEST(duration_parse_accepts_bare_zero_only)
{
	static const struct ok_case c[] = {{"0", 0}};
	static const char *const bad[] = {"00", "1", "10", "1.5", "0.0", "500"};

	expect_duration(c, N(c));
	expect_duration_err(bad, N(bad), ZT_E_PARSE);
}
END_TEST

START_TEST(duration_parse_rejects_empty_and_null)
{
	uint64_t ms = SENTINEL;

	ck_assert_int_eq(zt_duration_parse("", &ms), ZT_E_PARSE);
	ck_assert_int_eq(zt_duration_parse(NULL, &ms), ZT_E_PARSE);
	ck_assert_uint_eq(ms, SENTINEL);
}
END_TEST

START_TEST(duration_parse_rejects_signs)
{
	static const char *const bad[] = {"-1s", "+1s", "-0", "1h-30m", "1h+30m"};

	expect_duration_err(bad, N(bad), ZT_E_PARSE);
}
END_TEST

START_TEST(duration_parse_rejects_spaces)
{
	static const char *const bad[] = {" 1s", "1s ", "1 s", "1h 30m", "\t1s", "1s\n"};

	expect_duration_err(bad, N(bad), ZT_E_PARSE);
}
END_TEST

START_TEST(duration_parse_rejects_unknown_and_sub_ms_units)
{
	static const char *const bad[] = {"1ns",  "1us",  "1\xc2\xb5s", "1S",   "1H",  "1Ms",
	                                  "1sec", "1y",   "1w",         "1msx", "5mx", "1mss",
	                                  "0ns",  "1min", "1hr",        "1D"};

	expect_duration_err(bad, N(bad), ZT_E_PARSE);
}
END_TEST

START_TEST(duration_parse_rejects_trailing_junk_and_missing_unit)
{
	static const char *const bad[] = {"1s!", "1s.", "1s1", "1h30",  "1s;",
	                                  "s",   "ms",  "h1",  "1s\x01"};

	expect_duration_err(bad, N(bad), ZT_E_PARSE);
}
END_TEST

START_TEST(duration_parse_rejects_malformed_fractions)
{
	static const char *const bad[] = {".5s", "1.s", "1..5s", "1.5.5s", "1,5s", "."};

	expect_duration_err(bad, N(bad), ZT_E_PARSE);
}
END_TEST

START_TEST(duration_parse_rejects_values_below_ms_precision)
{
	static const char *const bad[] = {"1.0005s",          "0.5ms",          "1.5ms", "0.0001s",
	                                  "1.0000000000001s", "0.333333333333h"};

	expect_duration_err(bad, N(bad), ZT_E_PARSE);
}
END_TEST

START_TEST(duration_parse_accepts_largest_value)
{
	static const struct ok_case c[] = {
	        {"18446744073709551615ms", UINT64_MAX},
	        {"213503982334d", 213503982334ULL * 86400000ULL},
	        {"18446744073709551s615ms", UINT64_MAX},
	};
	expect_duration(c, N(c));
}
END_TEST

START_TEST(duration_parse_rejects_overflow_with_range)
{
	static const char *const bad[] = {
	        "18446744073709551616ms",    /* digits alone overflow */
	        "213503982335d",             /* multiply overflows */
	        "18446744073709551615ms1ms", /* sum overflows */
	        "99999999999999999999999999s",
	        "18446744073709551s616ms",
	};

	expect_duration_err(bad, N(bad), ZT_E_RANGE);
}
END_TEST

START_TEST(duration_parse_reports_syntax_error_over_overflow)
{
	static const char *const bad[] = {"99999999999999999999999x", "213503982335d junk",
	                                  "99999999999999999999999999"};

	expect_duration_err(bad, N(bad), ZT_E_PARSE);
}
END_TEST

START_TEST(duration_format_writes_shortest_components)
{
	static const struct ok_case c[] = {
	        {"0s", 0},         {"500ms", 500},       {"1s", 1000},
	        {"1s500ms", 1500}, {"1h30m", 5400000},   {"1d", 86400000},
	        {"5m", 300000},    {"2d1ms", 172800001}, {"1d1h1m1s1ms", 90061001},
	};
	char buf[ZT_DURATION_STRLEN];
	size_t i;

	for (i = 0; i < N(c); i++) {
		ck_assert_int_eq(zt_duration_format(c[i].want, buf, sizeof(buf)), 0);
		ck_assert_str_eq(buf, c[i].text);
	}
}
END_TEST

START_TEST(duration_format_round_trips_through_parse)
{
	static const uint64_t v[] = {0,
	                             1,
	                             999,
	                             1000,
	                             59999,
	                             60001,
	                             3599999,
	                             86399999,
	                             86400000,
	                             1234567890123ULL,
	                             UINT64_MAX - 1,
	                             UINT64_MAX};
	char buf[ZT_DURATION_STRLEN];
	size_t i;

	for (i = 0; i < N(v); i++) {
		uint64_t back = SENTINEL;

		ck_assert_int_eq(zt_duration_format(v[i], buf, sizeof(buf)), 0);
		ck_assert_int_eq(zt_duration_parse(buf, &back), 0);
		ck_assert_msg(back == v[i], "\"%s\" did not round trip", buf);
	}
	ck_assert_int_eq(zt_duration_format(UINT64_MAX, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "213503982334d14h25m51s615ms");
}
END_TEST

START_TEST(duration_format_reports_short_buffer)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(zt_duration_format(5400000, buf, 5), -ENOSPC); /* "1h30m" needs 6 */
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(zt_duration_format(5400000, buf, 6), 0);
	ck_assert_str_eq(buf, "1h30m");
	ck_assert_int_eq(zt_duration_format(0, buf, 2), -ENOSPC);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(zt_duration_format(0, buf, 0), -ENOSPC);
}
END_TEST

START_TEST(size_parse_accepts_bytes_and_binary_units)
{
	static const struct ok_case c[] = {
	        {"1048576", 1048576},
	        {"0", 0},
	        {"0B", 0},
	        {"10B", 10},
	        {"64KiB", 65536},
	        {"64K", 65536},
	        {"4MiB", 4u << 20},
	        {"4M", 4u << 20},
	        {"16MiB", 16u << 20},
	        {"1GiB", 1u << 30},
	        {"1G", 1u << 30},
	        {"007KiB", 7168},
	        {"18446744073709551615", UINT64_MAX},
	        {"17179869183GiB", 17179869183ULL << 30},
	};
	expect_size(c, N(c));
}
END_TEST

START_TEST(size_parse_rejects_malformed_text)
{
	static const char *const bad[] = {"",    "MiB",   "4 MiB", " 4MiB", "4MiB ",  "4MB",
	                                  "4KB", "4kib",  "4mib",  "4k",    "1.5MiB", "-1",
	                                  "+1",  "4MiBx", "4Mi",   "4iB",   "0x10",   "4TiB",
	                                  "4b",  "4GB",   "1e6",   "4MiB\n"};

	expect_size_err(bad, N(bad), ZT_E_PARSE);
	{
		uint64_t v = SENTINEL;

		ck_assert_int_eq(zt_size_parse(NULL, &v), ZT_E_PARSE);
		ck_assert_uint_eq(v, SENTINEL);
	}
}
END_TEST

START_TEST(size_parse_rejects_overflow_with_range)
{
	static const char *const bad[] = {"18446744073709551616", "17179869184GiB",
	                                  "99999999999999999999999K"};
	static const char *const junk[] = {"99999999999999999999999x"};

	expect_size_err(bad, N(bad), ZT_E_RANGE);
	expect_size_err(junk, N(junk), ZT_E_PARSE);
}
END_TEST

START_TEST(size_format_uses_largest_exact_unit)
{
	static const struct ok_case c[] = {
	        {"4MiB", 4u << 20},       {"16MiB", 16u << 20},
	        {"64KiB", 65536},         {"1GiB", 1u << 30},
	        {"3KiB", 3072},           {"1536B", 1536},
	        {"1000B", 1000},          {"0B", 0},
	        {"1025KiB", 1025u << 10}, {"18446744073709551615B", UINT64_MAX},
	};
	char buf[ZT_DURATION_STRLEN];
	size_t i;

	for (i = 0; i < N(c); i++) {
		uint64_t back = SENTINEL;

		ck_assert_int_eq(zt_size_format(c[i].want, buf, sizeof(buf)), 0);
		ck_assert_str_eq(buf, c[i].text);
		ck_assert_int_eq(zt_size_parse(buf, &back), 0);
		ck_assert_uint_eq(back, c[i].want);
	}
	ck_assert_int_eq(zt_size_format(4u << 20, buf, 4), -ENOSPC);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(zt_size_format(4u << 20, buf, 5), 0);
	ck_assert_str_eq(buf, "4MiB");
}
END_TEST

Suite *duration_suite(void);
Suite *duration_suite(void)
{
	Suite *s = suite_create("duration");
	TCase *p = tcase_create("parse");
	TCase *f = tcase_create("format");
	TCase *z = tcase_create("size");

	tcase_add_test(p, duration_parse_accepts_each_unit);
	tcase_add_test(p, duration_parse_sums_compound_components);
	tcase_add_test(p, duration_parse_accepts_fractions_that_give_whole_ms);
	tcase_add_test(p, duration_parse_accepts_bare_zero_only);
	tcase_add_test(p, duration_parse_rejects_empty_and_null);
	tcase_add_test(p, duration_parse_rejects_signs);
	tcase_add_test(p, duration_parse_rejects_spaces);
	tcase_add_test(p, duration_parse_rejects_unknown_and_sub_ms_units);
	tcase_add_test(p, duration_parse_rejects_trailing_junk_and_missing_unit);
	tcase_add_test(p, duration_parse_rejects_malformed_fractions);
	tcase_add_test(p, duration_parse_rejects_values_below_ms_precision);
	tcase_add_test(p, duration_parse_accepts_largest_value);
	tcase_add_test(p, duration_parse_rejects_overflow_with_range);
	tcase_add_test(p, duration_parse_reports_syntax_error_over_overflow);
	tcase_add_test(f, duration_format_writes_shortest_components);
	tcase_add_test(f, duration_format_round_trips_through_parse);
	tcase_add_test(f, duration_format_reports_short_buffer);
	tcase_add_test(z, size_parse_accepts_bytes_and_binary_units);
	tcase_add_test(z, size_parse_rejects_malformed_text);
	tcase_add_test(z, size_parse_rejects_overflow_with_range);
	tcase_add_test(z, size_format_uses_largest_exact_unit);
	suite_add_tcase(s, p);
	suite_add_tcase(s, f);
	suite_add_tcase(s, z);
	return s;
}
