/* Allocation groups: zeroed blocks, string copies, and one clear for everything. */
#include <check.h>
#include <string.h>

#include "runtime/arena.h"

START_TEST(arena_blocks_are_zeroed_and_owned_until_clear)
{
	struct zt_arena a;
	int *v;

	zt_arena_init(&a);
	v = zt_arena_calloc(&a, 100, sizeof(*v));
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(v[i], 0);
	ck_assert_ptr_null(zt_arena_calloc(&a, 0, 8));
	ck_assert_uint_eq(a.n, 1);
	zt_arena_clear(&a);
	ck_assert_uint_eq(a.n, 0);
	zt_arena_clear(&a);
}
END_TEST

START_TEST(arena_copies_strings)
{
	struct zt_arena a = {0};
	char src[] = "hello";
	char *c = zt_arena_strdup(&a, src);

	src[0] = 'j';
	ck_assert_str_eq(c, "hello");
	ck_assert_str_eq(zt_arena_strdup(&a, NULL), "");
	ck_assert_str_eq(zt_arena_strndup(&a, "abcdef", 3), "abc");
	ck_assert_str_eq(zt_arena_printf(&a, "%s/%d", "ns", 7), "ns/7");
	for (int i = 0; i < 1000; i++)
		zt_arena_strdup(&a, "grow");
	ck_assert_uint_eq(a.n, 1004);
	zt_arena_clear(&a);
}
END_TEST

Suite *arena_suite(void);
Suite *arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, arena_blocks_are_zeroed_and_owned_until_clear);
	tcase_add_test(tc, arena_copies_strings);
	suite_add_tcase(s, tc);
	return s;
}
