#include <check.h>

#include "app/drain.h"
#include "config/config.h"

START_TEST(drain_first_trigger_starts_and_records_the_deadline)
{
	struct zt_drain d;

	zt_drain_init(&d, 25000);
	ck_assert_int_eq(d.state, ZT_DRAIN_RUNNING);
	ck_assert_int_eq(zt_drain_check(&d, 100, 0), ZT_DRAIN_NONE); /* not draining yet */
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_SIGTERM, 1000, 3), ZT_DRAIN_START);
	ck_assert_int_eq(d.state, ZT_DRAIN_DRAINING);
	ck_assert_int_eq(d.trigger, ZT_DRAIN_SIGTERM);
	ck_assert_uint_eq(d.ends_ms, 26000);
	ck_assert_uint_eq(d.open_at_start, 3);
	ck_assert_uint_eq(zt_drain_remaining(&d, 6000), 20000);
}
END_TEST

START_TEST(drain_repeated_term_or_quit_is_ignored)
{
	struct zt_drain d;

	zt_drain_init(&d, 5000);
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_QUIT, 0, 1), ZT_DRAIN_START);
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_QUIT, 10, 1), ZT_DRAIN_NONE);
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_SIGTERM, 20, 1), ZT_DRAIN_NONE);
	ck_assert_int_eq(d.trigger, ZT_DRAIN_QUIT);
	ck_assert_uint_eq(d.ends_ms, 5000); /* not pushed back */
}
END_TEST

START_TEST(drain_second_sigint_exits_at_once)
{
	struct zt_drain d;

	zt_drain_init(&d, 5000);
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_SIGINT, 0, 1), ZT_DRAIN_START);
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_SIGINT, 1, 1), ZT_DRAIN_EXIT_NOW);
	zt_drain_init(&d, 5000);
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_SIGTERM, 0, 1), ZT_DRAIN_START);
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_SIGINT, 1, 1), ZT_DRAIN_EXIT_NOW);
}
END_TEST

START_TEST(drain_finishes_when_the_last_connection_ends)
{
	struct zt_drain d;

	zt_drain_init(&d, 5000);
	zt_drain_on_trigger(&d, ZT_DRAIN_SIGTERM, 0, 2);
	ck_assert_int_eq(zt_drain_check(&d, 100, 2), ZT_DRAIN_NONE);
	ck_assert_int_eq(zt_drain_check(&d, 4999, 1), ZT_DRAIN_NONE);
	ck_assert_int_eq(zt_drain_check(&d, 5000 - 1, 0), ZT_DRAIN_FINISHED);
	ck_assert_int_eq(d.state, ZT_DRAIN_DONE);
	ck_assert_uint_eq(d.open_at_end, 0);
	ck_assert_int_eq(zt_drain_check(&d, 6000, 0), ZT_DRAIN_NONE); /* once */
}
END_TEST

START_TEST(drain_expires_at_the_deadline_counting_what_is_left)
{
	struct zt_drain d;

	zt_drain_init(&d, 5000);
	zt_drain_on_trigger(&d, ZT_DRAIN_SIGTERM, 1000, 4);
	ck_assert_int_eq(zt_drain_check(&d, 5999, 4), ZT_DRAIN_NONE);
	ck_assert_int_eq(zt_drain_check(&d, 6000, 3), ZT_DRAIN_EXPIRED);
	ck_assert_uint_eq(d.open_at_end, 3);
	ck_assert_uint_eq(zt_drain_remaining(&d, 6000), 0);
	/* after DONE a late SIGINT still exits at once; the rest is ignored */
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_SIGTERM, 7000, 0), ZT_DRAIN_NONE);
	ck_assert_int_eq(zt_drain_on_trigger(&d, ZT_DRAIN_SIGINT, 7000, 0), ZT_DRAIN_EXIT_NOW);
}
END_TEST

START_TEST(drain_with_nothing_open_finishes_on_the_first_check)
{
	struct zt_drain d;

	zt_drain_init(&d, 5000);
	zt_drain_on_trigger(&d, ZT_DRAIN_QUIT, 0, 0);
	ck_assert_int_eq(zt_drain_check(&d, 0, 0), ZT_DRAIN_FINISHED);
}
END_TEST

START_TEST(drain_deadline_derives_from_the_grace_period)
{
	/* spec §14: max(N > 10 ? N - 5 : N - 1, 1) s; 5 s when unset. */
	ck_assert_uint_eq(zt_config_derive_termination_ms(30), 25000);
	ck_assert_uint_eq(zt_config_derive_termination_ms(11), 6000);
	ck_assert_uint_eq(zt_config_derive_termination_ms(10), 9000);
	ck_assert_uint_eq(zt_config_derive_termination_ms(2), 1000);
	ck_assert_uint_eq(zt_config_derive_termination_ms(1), 1000);
	ck_assert_uint_eq(zt_config_derive_termination_ms(0), 1000);
	ck_assert_uint_eq(zt_config_derive_termination_ms(-1), 5000);
}
END_TEST

Suite *drain_suite(void);
Suite *drain_suite(void)
{
	Suite *s = suite_create("drain");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, drain_first_trigger_starts_and_records_the_deadline);
	tcase_add_test(tc, drain_repeated_term_or_quit_is_ignored);
	tcase_add_test(tc, drain_second_sigint_exits_at_once);
	tcase_add_test(tc, drain_finishes_when_the_last_connection_ends);
	tcase_add_test(tc, drain_expires_at_the_deadline_counting_what_is_left);
	tcase_add_test(tc, drain_with_nothing_open_finishes_on_the_first_check);
	tcase_add_test(tc, drain_deadline_derives_from_the_grace_period);
	suite_add_tcase(s, tc);
	return s;
}
