/* The close vocabulary (hbone/close.h): every reason has its flag from spec §8.1 and a static
 * text; only flagged reasons count as failed connections. */
#include <check.h>
#include <string.h>

#include "hbone/close.h"

START_TEST(close_flags_are_the_spec_response_flags)
{
	static const struct {
		enum zt_close c;
		const char *flag;
	} want[] = {
	        {ZT_CLOSE_OK, "-"},
	        {ZT_CLOSE_ERROR, "-"},
	        {ZT_CLOSE_DENY, "DENY"},
	        {ZT_CLOSE_CONNECT, "CONNECT"},
	        {ZT_CLOSE_NETWORK_POLICY, "NETWORK_POLICY"},
	        {ZT_CLOSE_TLS_FAILURE, "TLS_FAILURE"},
	        {ZT_CLOSE_IDENTITY_ERROR, "IDENTITY_ERROR"},
	        {ZT_CLOSE_H2_HANDSHAKE_FAILURE, "H2_HANDSHAKE_FAILURE"},
	        {ZT_CLOSE_POLICY_CHANGE, "-"},
	        {ZT_CLOSE_NO_SOURCE, "-"},
	        {ZT_CLOSE_SELF, "-"},
	        {ZT_CLOSE_STOPPED, "-"},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ck_assert_str_eq(zt_close_flag(want[i].c), want[i].flag);
		ck_assert_int_eq(zt_close_failed(want[i].c), strcmp(want[i].flag, "-") != 0);
		if (want[i].c == ZT_CLOSE_OK)
			ck_assert_ptr_null(zt_close_reason(want[i].c));
		else
			ck_assert_msg(zt_close_reason(want[i].c) && *zt_close_reason(want[i].c),
			              "reason %zu", i);
	}
	ck_assert_str_eq(zt_close_reason(ZT_CLOSE_POLICY_CHANGE),
	                 "connection closed due to policy change");
	ck_assert_str_eq(zt_close_flag((enum zt_close)999), "-");
}
END_TEST

Suite *close_suite(void);
Suite *close_suite(void)
{
	Suite *s = suite_create("close");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, close_flags_are_the_spec_response_flags);
	suite_add_tcase(s, tc);
	return s;
}
