#include <check.h>
#include <errno.h>
#include <string.h>

#include "runtime/err.h"

START_TEST(strerror_names_project_codes_and_errno)
{
	ck_assert_str_eq(zt_strerror(0), "success");
	ck_assert_str_eq(zt_strerror(ZT_E_PARSE), "malformed input");
	ck_assert_str_eq(zt_strerror(ZT_E_AUTHZ_DENY), "denied by authorization policy");
	ck_assert_str_eq(zt_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
	ck_assert_str_eq(zt_strerror(ZT_E_LAST), "unknown error");
	ck_assert_str_eq(zt_strerror(-(ZT_E_BASE + 999)), "unknown error");
	ck_assert_str_eq(zt_strerror(5), "invalid error code");
}
END_TEST

Suite *err_suite(void);
Suite *err_suite(void)
{
	Suite *s = suite_create("err");
	TCase *tc = tcase_create("strerror");

	tcase_add_test(tc, strerror_names_project_codes_and_errno);
	suite_add_tcase(s, tc);
	return s;
}
