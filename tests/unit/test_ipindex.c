/* The store's binary address index: keys are (network, address) pairs compared by bytes, so
 * an IPv4 address, the IPv6 address with the same bytes and the same address on another network are
 * three keys; deletion keeps every other entry reachable; checked against a model under
 * random operations. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/addr.h"
#include "state/ipindex.h"

static struct zt_ip ip_of(const char *s)
{
	struct zt_ip ip;

	ck_assert_int_eq(zt_ip_parse(&ip, s, strlen(s)), 0);
	return ip;
}

START_TEST(ipindex_network_and_family_are_part_of_the_key)
{
	struct zt_ipindex m = {0};
	struct zt_ip v4 = ip_of("10.0.0.1"), same_bytes = ip_of("a00:1::");
	int a, b, c;

	ck_assert_ptr_null(zt_ipindex_get(&m, NULL, &v4));
	ck_assert_ptr_null(zt_ipindex_put(&m, NULL, &v4, &a));
	ck_assert_ptr_null(zt_ipindex_put(&m, "net-b", &v4, &b));
	ck_assert_ptr_null(zt_ipindex_put(&m, "", &same_bytes, &c));
	ck_assert_ptr_eq(zt_ipindex_get(&m, "", &v4), &a);
	ck_assert_ptr_eq(zt_ipindex_get(&m, "net-b", &v4), &b);
	ck_assert_ptr_eq(zt_ipindex_get(&m, NULL, &same_bytes), &c);
	ck_assert_ptr_null(zt_ipindex_get(&m, "net-c", &v4));
	ck_assert_ptr_eq(zt_ipindex_put(&m, "net-b", &v4, &a), &b);
	ck_assert_ptr_eq(zt_ipindex_del(&m, "", &v4), &a);
	ck_assert_ptr_null(zt_ipindex_get(&m, "", &v4));
	ck_assert_ptr_eq(zt_ipindex_get(&m, "net-b", &v4), &a);
	ck_assert_uint_eq(m.n, 2);
	zt_ipindex_clear(&m);
	zt_ipindex_clear(&m);
}
END_TEST

START_TEST(ipindex_random_operations_match_a_model)
{
	enum { N = 600 };
	static int vals[N];
	void *model[N] = {0};
	struct zt_ipindex m = {0};
	char text[64];
	unsigned seed = 7;

	for (int round = 0; round < 20000; round++) {
		int i = rand_r(&seed) % N;
		/* Three networks, both families, addresses that differ in one byte. */
		const char *net = i % 3 == 0 ? "" : i % 3 == 1 ? "west" : "east";
		if (i % 2)
			snprintf(text, sizeof(text), "10.1.%d.%d", i / 256, i % 256);
		else
			snprintf(text, sizeof(text), "fd00::%x", i);
		struct zt_ip ip = ip_of(text);
		if (rand_r(&seed) % 3) {
			ck_assert_ptr_eq(zt_ipindex_put(&m, net, &ip, &vals[i]), model[i]);
			model[i] = &vals[i];
		} else {
			ck_assert_ptr_eq(zt_ipindex_del(&m, net, &ip), model[i]);
			model[i] = NULL;
		}
		if (round % 1000 == 0) {
			size_t live = 0, pos = 0, seen = 0;
			void *v;
			for (int k = 0; k < N; k++)
				live += model[k] != NULL;
			while (zt_ipindex_next(&m, &pos, &v))
				seen++;
			ck_assert_uint_eq(m.n, live);
			ck_assert_uint_eq(seen, live);
		}
	}
	for (int i = 0; i < N; i++) {
		const char *net = i % 3 == 0 ? "" : i % 3 == 1 ? "west" : "east";
		if (i % 2)
			snprintf(text, sizeof(text), "10.1.%d.%d", i / 256, i % 256);
		else
			snprintf(text, sizeof(text), "fd00::%x", i);
		struct zt_ip ip = ip_of(text);
		ck_assert_ptr_eq(zt_ipindex_get(&m, net, &ip), model[i]);
	}
	zt_ipindex_clear(&m);
}
END_TEST

Suite *ipindex_suite(void);
Suite *ipindex_suite(void)
{
	Suite *s = suite_create("ipindex");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, ipindex_network_and_family_are_part_of_the_key);
	tcase_add_test(tc, ipindex_random_operations_match_a_model);
	suite_add_tcase(s, tc);
	return s;
}
