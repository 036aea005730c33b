/* The intern table: one shared copy per distinct value, freed with its last reference;
 * identities interned by their parts; the table shrinking back to empty. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "loop_fixture.h"
#include "state/intern.h"

START_TEST(intern_equal_strings_share_one_copy_until_the_last_release)
{
	char a[] = "ns-1", b[] = "ns-1";
	size_t base = zt_intern_count();
	const char *x = zt_intern(a), *y = zt_intern(b), *z = zt_intern_n("ns-12", 4);

	ck_assert_ptr_ne(x, a);
	ck_assert_ptr_eq(x, y);
	ck_assert_ptr_eq(x, z);
	ck_assert_str_eq(x, "ns-1");
	a[0] = 'X'; /* the copy does not depend on the caller's buffer */
	ck_assert_str_eq(x, "ns-1");
	ck_assert_uint_eq(zt_intern_count(), base + 1);
	ck_assert_ptr_eq(zt_intern_ref(x), x);
	for (int i = 0; i < 3; i++)
		zt_intern_release(x);
	ck_assert_uint_eq(zt_intern_count(), base + 1);
	zt_intern_release(x);
	ck_assert_uint_eq(zt_intern_count(), base);
	zt_intern_release(NULL);
	fx_assert_no_live();
}
END_TEST

START_TEST(intern_distinct_values_and_null_as_empty)
{
	const char *e1 = zt_intern(NULL), *e2 = zt_intern(""), *p = zt_intern("p"), *q;

	ck_assert_ptr_eq(e1, e2);
	ck_assert_str_eq(e1, "");
	q = zt_intern("q");
	ck_assert_ptr_ne(p, q);
	ck_assert_str_eq(q, "q");
	zt_intern_release(e1);
	zt_intern_release(e2);
	zt_intern_release(p);
	zt_intern_release(q);
	fx_assert_no_live();
}
END_TEST

START_TEST(intern_identities_by_parts_and_refuses_invalid_ones)
{
	int rc = 1;
	const struct zt_spiffe *a = zt_intern_spiffe("cluster.local", "ns", "sa", &rc);
	const struct zt_spiffe *b = zt_intern_spiffe("cluster.local", "ns", "sa", &rc);
	/* The same bytes split differently are another identity. */
	const struct zt_spiffe *c = zt_intern_spiffe("cluster.local", "nss", "a", &rc);
	char s[ZT_SPIFFE_STR_SIZE];

	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_eq(a, b);
	ck_assert_ptr_ne(a, c);
	ck_assert_int_gt(zt_spiffe_format(a, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "spiffe://cluster.local/ns/ns/sa/sa");
	/* An identity and a string with the same bytes are different values. */
	const char *str = zt_intern("cluster.local");
	ck_assert_ptr_ne((const void *)str, (const void *)a);
	ck_assert_ptr_null(zt_intern_spiffe("cluster.local", "", "sa", &rc));
	ck_assert_int_lt(rc, 0);
	zt_intern_release(a);
	zt_intern_release(b);
	zt_intern_release(c);
	zt_intern_release(str);
	fx_assert_no_live();
}
END_TEST

START_TEST(intern_long_identities_are_interned_like_short_ones)
{
	char td[201], ns[64], sa[64];
	int rc = 1;

	/* Parts longer than the lookup's stack key together (200 + 63 + 63 bytes). */
	memset(td, 'd', sizeof(td) - 1);
	td[sizeof(td) - 1] = '\0';
	memcpy(td + 190, ".local", 7);
	memset(ns, 'n', sizeof(ns) - 1);
	ns[sizeof(ns) - 1] = '\0';
	memset(sa, 's', sizeof(sa) - 1);
	sa[sizeof(sa) - 1] = '\0';
	const struct zt_spiffe *a = zt_intern_spiffe(td, ns, sa, &rc);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(rc, 0);
	sa[0] = 'x';
	const struct zt_spiffe *b = zt_intern_spiffe(td, ns, sa, &rc);
	sa[0] = 's';
	const struct zt_spiffe *c = zt_intern_spiffe(td, ns, sa, &rc);
	ck_assert_ptr_ne(a, b);
	ck_assert_ptr_eq(a, c);
	zt_intern_release(a);
	zt_intern_release(b);
	zt_intern_release(c);
	fx_assert_no_live();
}
END_TEST

START_TEST(intern_table_grows_and_empties_with_many_values)
{
	static const char *v[5000];
	char buf[32];

	for (int i = 0; i < 5000; i++) {
		snprintf(buf, sizeof(buf), "value-%d", i);
		v[i] = zt_intern(buf);
	}
	ck_assert_uint_eq(zt_intern_count(), 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(buf, sizeof(buf), "value-%d", i);
		ck_assert_str_eq(v[i], buf);
	}
	/* Releasing every other one keeps the rest findable (deletion keeps probe runs). */
	for (int i = 0; i < 5000; i += 2)
		zt_intern_release(v[i]);
	for (int i = 1; i < 5000; i += 2) {
		snprintf(buf, sizeof(buf), "value-%d", i);
		const char *again = zt_intern(buf);
		ck_assert_ptr_eq(again, v[i]);
		zt_intern_release(again);
	}
	ck_assert_uint_eq(zt_intern_count(), 2500);
	for (int i = 1; i < 5000; i += 2)
		zt_intern_release(v[i]);
	ck_assert_uint_eq(zt_intern_count(), 0);
	fx_assert_no_live();
}
END_TEST

static void *churn(void *arg)
{
	char buf[32];

	for (int i = 0; i < 20000; i++) {
		snprintf(buf, sizeof(buf), "shared-%d", i % 37);
		const char *s = zt_intern(buf);
		if (strcmp(s, buf) != 0)
			return arg;
		zt_intern_release(zt_intern_ref(s));
		zt_intern_release(s);
	}
	return NULL;
}

START_TEST(intern_is_safe_across_threads)
{
	pthread_t t[4];
	void *bad = NULL;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn, (void *)(t + 4)), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad = bad ? bad : r;
	}
	ck_assert_ptr_null(bad);
	ck_assert_uint_eq(zt_intern_count(), 0);
	fx_assert_no_live();
}
END_TEST

Suite *intern_suite(void);
Suite *intern_suite(void)
{
	Suite *s = suite_create("intern");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, intern_equal_strings_share_one_copy_until_the_last_release);
	tcase_add_test(tc, intern_distinct_values_and_null_as_empty);
	tcase_add_test(tc, intern_identities_by_parts_and_refuses_invalid_ones);
	tcase_add_test(tc, intern_long_identities_are_interned_like_short_ones);
	tcase_add_test(tc, intern_table_grows_and_empties_with_many_values);
	tcase_add_test(tc, intern_is_safe_across_threads);
	suite_add_tcase(s, tc);
	return s;
}
