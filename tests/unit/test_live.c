/* Live-object counters: registration (eager via ZT_LIVE_DEFINE, lazy on first inc), counts
 * and peaks, listing order, totals, and the debug checks that catch misuse. Each test uses its
 * own counters, so results do not depend on test order. */
#include <check.h>
#include <signal.h>
#include <string.h>

#include "runtime/live.h"

ZT_LIVE_DEFINE(test_defined_zz);
ZT_LIVE_DEFINE(test_defined_aa);
ZT_LIVE_DEFINE(test_counts);
ZT_LIVE_DEFINE(test_total_a);
ZT_LIVE_DEFINE(test_total_b);
ZT_LIVE_DEFINE(test_underflow);

struct listing {
	const char *names[64];
	long counts[64];
	size_t n;
};

static void collect_cb(const struct zt_live *l, void *arg)
{
	struct listing *li = arg;

	ck_assert_uint_lt(li->n, 64);
	li->names[li->n] = l->name;
	li->counts[li->n] = l->count;
	li->n++;
}

static int times_listed(const struct listing *li, const char *name)
{
	size_t i;
	int n = 0;

	for (i = 0; i < li->n; i++)
		n += strcmp(li->names[i], name) == 0;
	return n;
}

START_TEST(live_defined_counter_is_listed_at_zero_before_use)
{
	struct listing li = {0};
	const struct zt_live *l = zt_live_get("test_defined_zz");

	ck_assert_ptr_eq(l, &zt_live_test_defined_zz);
	ck_assert_int_eq(l->count, 0);
	ck_assert_int_eq(l->peak, 0);
	zt_live_foreach(collect_cb, &li);
	ck_assert_int_eq(times_listed(&li, "test_defined_zz"), 1);
	ck_assert_int_eq(times_listed(&li, "test_defined_aa"), 1);
}
END_TEST

START_TEST(live_inc_dec_track_count_and_peak)
{
	struct zt_live *c = &zt_live_test_counts;

	zt_live_inc(c);
	zt_live_inc(c);
	zt_live_inc(c);
	ck_assert_int_eq(c->count, 3);
	ck_assert_int_eq(c->peak, 3);
	zt_live_dec(c);
	zt_live_dec(c);
	ck_assert_int_eq(c->count, 1);
	ck_assert_int_eq(c->peak, 3);
	zt_live_inc(c);
	ck_assert_int_eq(c->count, 2);
	ck_assert_int_eq(c->peak, 3);
	zt_live_dec(c);
	zt_live_dec(c);
	ck_assert_int_eq(zt_live_get("test_counts")->count, 0);
	ck_assert_int_eq(zt_live_get("test_counts")->peak, 3);
}
END_TEST

START_TEST(live_plain_counter_registers_on_first_inc_and_stays_listed)
{
	static struct zt_live lazy = ZT_LIVE_INIT("test_lazy");
	struct listing li = {0};

	ck_assert_ptr_null(zt_live_get("test_lazy"));
	zt_live_inc(&lazy);
	ck_assert_ptr_eq(zt_live_get("test_lazy"), &lazy);
	zt_live_dec(&lazy);
	ck_assert_ptr_eq(zt_live_get("test_lazy"), &lazy);
	ck_assert_int_eq(lazy.count, 0);
	zt_live_inc(&lazy);
	zt_live_foreach(collect_cb, &li);
	ck_assert_int_eq(times_listed(&li, "test_lazy"), 1);
}
END_TEST

START_TEST(live_register_is_idempotent)
{
	static struct zt_live twice = ZT_LIVE_INIT("test_twice");
	struct listing li = {0};

	zt_live_register(&twice);
	zt_live_register(&twice);
	zt_live_inc(&twice);
	zt_live_register(&zt_live_test_defined_aa);
	zt_live_foreach(collect_cb, &li);
	ck_assert_int_eq(times_listed(&li, "test_twice"), 1);
	ck_assert_int_eq(times_listed(&li, "test_defined_aa"), 1);
}
END_TEST

START_TEST(live_foreach_lists_in_name_order)
{
	static struct zt_live mid = ZT_LIVE_INIT("test_m");
	static struct zt_live first = ZT_LIVE_INIT("a_test_first");
	struct listing li = {0};
	size_t i;

	zt_live_inc(&mid);
	zt_live_inc(&first);
	zt_live_foreach(collect_cb, &li);
	ck_assert_uint_ge(li.n, 8);
	for (i = 1; i < li.n; i++)
		ck_assert_msg(strcmp(li.names[i - 1], li.names[i]) < 0, "%s listed before %s",
		              li.names[i - 1], li.names[i]);
	ck_assert_int_eq(times_listed(&li, "a_test_first"), 1);
	ck_assert_int_eq(times_listed(&li, "test_m"), 1);
}
END_TEST

START_TEST(live_foreach_reports_current_counts)
{
	struct listing li = {0};
	size_t i;

	zt_live_inc(&zt_live_test_defined_aa);
	zt_live_inc(&zt_live_test_defined_aa);
	zt_live_foreach(collect_cb, &li);
	for (i = 0; i < li.n; i++)
		if (strcmp(li.names[i], "test_defined_aa") == 0)
			ck_assert_int_eq(li.counts[i], 2);
	ck_assert_int_eq(times_listed(&li, "test_defined_aa"), 1);
	zt_live_dec(&zt_live_test_defined_aa);
	zt_live_dec(&zt_live_test_defined_aa);
}
END_TEST

START_TEST(live_total_sums_all_counters)
{
	long base = zt_live_total();

	zt_live_inc(&zt_live_test_total_a);
	zt_live_inc(&zt_live_test_total_a);
	zt_live_inc(&zt_live_test_total_b);
	ck_assert_int_eq(zt_live_total(), base + 3);
	zt_live_dec(&zt_live_test_total_a);
	ck_assert_int_eq(zt_live_total(), base + 2);
	zt_live_dec(&zt_live_test_total_a);
	zt_live_dec(&zt_live_test_total_b);
	ck_assert_int_eq(zt_live_total(), base);
}
END_TEST

START_TEST(live_get_unknown_name_is_null)
{
	ck_assert_ptr_null(zt_live_get("no_such_counter"));
	ck_assert_ptr_null(zt_live_get(""));
	ck_assert_ptr_null(zt_live_get("test_defined")); /* prefix of a real name */
}
END_TEST

#ifndef NDEBUG
START_TEST(live_dec_below_zero_aborts)
{
	zt_live_inc(&zt_live_test_underflow);
	zt_live_dec(&zt_live_test_underflow);
	zt_live_dec(&zt_live_test_underflow);
}
END_TEST

START_TEST(live_registering_a_second_counter_with_a_taken_name_aborts)
{
	static struct zt_live dup = ZT_LIVE_INIT("test_counts");

	zt_live_inc(&dup);
}
END_TEST
#endif

Suite *live_suite(void);
Suite *live_suite(void)
{
	Suite *s = suite_create("live");
	TCase *tc = tcase_create("counters");

	tcase_add_test(tc, live_defined_counter_is_listed_at_zero_before_use);
	tcase_add_test(tc, live_inc_dec_track_count_and_peak);
	tcase_add_test(tc, live_plain_counter_registers_on_first_inc_and_stays_listed);
	tcase_add_test(tc, live_register_is_idempotent);
	tcase_add_test(tc, live_foreach_lists_in_name_order);
	tcase_add_test(tc, live_foreach_reports_current_counts);
	tcase_add_test(tc, live_total_sums_all_counters);
	tcase_add_test(tc, live_get_unknown_name_is_null);
#ifndef NDEBUG
	tcase_add_test_raise_signal(tc, live_dec_below_zero_aborts, SIGABRT);
	tcase_add_test_raise_signal(tc, live_registering_a_second_counter_with_a_taken_name_aborts,
	                            SIGABRT);
#endif
	suite_add_tcase(s, tc);
	return s;
}
