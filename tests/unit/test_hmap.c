/* String-keyed hash table: lookups, replacement, deletion with backward shift, growth and
 * iteration, checked against a plain array model under random operations. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/hmap.h"

START_TEST(hmap_empty_table_finds_nothing)
{
	struct zt_hmap m;
	size_t pos = 0;

	zt_hmap_init(&m);
	ck_assert_ptr_null(zt_hmap_get(&m, "a"));
	ck_assert_ptr_null(zt_hmap_del(&m, "a"));
	ck_assert_uint_eq(zt_hmap_count(&m), 0);
	ck_assert(!zt_hmap_next(&m, &pos, NULL, NULL));
	zt_hmap_clear(&m);
	zt_hmap_clear(&m);
}
END_TEST

START_TEST(hmap_put_replaces_and_returns_previous_value)
{
	struct zt_hmap m = {0};
	int a, b;

	ck_assert_ptr_null(zt_hmap_put(&m, "k", &a));
	ck_assert_ptr_eq(zt_hmap_put(&m, "k", &b), &a);
	ck_assert_ptr_eq(zt_hmap_get(&m, "k"), &b);
	ck_assert_uint_eq(zt_hmap_count(&m), 1);
	ck_assert_ptr_eq(zt_hmap_del(&m, "k"), &b);
	ck_assert_ptr_null(zt_hmap_get(&m, "k"));
	ck_assert_uint_eq(zt_hmap_count(&m), 0);
	zt_hmap_clear(&m);
}
END_TEST

START_TEST(hmap_copies_keys)
{
	struct zt_hmap m = {0};
	char key[8] = "abc";
	int v;

	zt_hmap_put(&m, key, &v);
	memcpy(key, "xyz", 4);
	ck_assert_ptr_eq(zt_hmap_get(&m, "abc"), &v);
	ck_assert_ptr_null(zt_hmap_get(&m, "xyz"));
	zt_hmap_clear(&m);
}
END_TEST

START_TEST(hmap_empty_and_similar_keys_are_distinct)
{
	struct zt_hmap m = {0};
	int a, b, c;

	zt_hmap_put(&m, "", &a);
	zt_hmap_put(&m, "a", &b);
	zt_hmap_put(&m, "a/", &c);
	ck_assert_ptr_eq(zt_hmap_get(&m, ""), &a);
	ck_assert_ptr_eq(zt_hmap_get(&m, "a"), &b);
	ck_assert_ptr_eq(zt_hmap_get(&m, "a/"), &c);
	zt_hmap_clear(&m);
}
END_TEST

START_TEST(hmap_grows_and_keeps_every_entry)
{
	struct zt_hmap m = {0};
	static int vals[20000];
	char key[32];

	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert_ptr_null(zt_hmap_put(&m, key, &vals[i]));
	}
	ck_assert_uint_eq(zt_hmap_count(&m), 20000);
	ck_assert_uint_le(zt_hmap_count(&m) * 4, m.cap * 3);
	for (int i = 0; i < 20000; i += 2) {
		snprintf(key, sizeof(key), "key-%d", i);
		ck_assert_ptr_eq(zt_hmap_del(&m, key), &vals[i]);
	}
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		if (i % 2)
			ck_assert_ptr_eq(zt_hmap_get(&m, key), &vals[i]);
		else
			ck_assert_ptr_null(zt_hmap_get(&m, key));
	}
	zt_hmap_clear(&m);
}
END_TEST

START_TEST(hmap_iteration_visits_each_entry_once)
{
	struct zt_hmap m = {0};
	int vals[100], seen[100] = {0};
	char key[16];
	const char *k;
	void *v;
	size_t pos = 0, n = 0;

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "%d", i);
		zt_hmap_put(&m, key, &vals[i]);
	}
	while (zt_hmap_next(&m, &pos, &k, &v)) {
		int i = (int)((int *)v - vals);
		ck_assert_int_eq((int)strtol(k, NULL, 10), i);
		seen[i]++;
		n++;
	}
	ck_assert_uint_eq(n, 100);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(seen[i], 1);
	zt_hmap_clear(&m);
}
END_TEST

/* Random puts and deletes over a small key space, so probe runs collide, wrap around the
 * end of the array and get shifted back; every lookup must agree with the model. */
START_TEST(hmap_random_operations_match_a_model)
{
	enum { KEYS = 300, OPS = 200000 };
	static int vals[KEYS];
	void *model[KEYS] = {0};
	struct zt_hmap m = {0};
	unsigned seed = 12345;
	char key[16];

	for (int op = 0; op < OPS; op++) {
		seed = seed * 1103515245u + 12345u;
		int k = (int)((seed >> 8) % KEYS);
		snprintf(key, sizeof(key), "k%d", k);
		if ((seed >> 20) % 3) {
			ck_assert_ptr_eq(zt_hmap_put(&m, key, &vals[k]), model[k]);
			model[k] = &vals[k];
		} else {
			ck_assert_ptr_eq(zt_hmap_del(&m, key), model[k]);
			model[k] = NULL;
		}
		if (op % 1000 == 0) {
			size_t live = 0;
			for (int i = 0; i < KEYS; i++) {
				snprintf(key, sizeof(key), "k%d", i);
				ck_assert_ptr_eq(zt_hmap_get(&m, key), model[i]);
				live += model[i] != NULL;
			}
			ck_assert_uint_eq(zt_hmap_count(&m), live);
		}
	}
	zt_hmap_clear(&m);
}
END_TEST

START_TEST(hmap_borrowed_keys_are_stored_as_given)
{
	struct zt_hmap m;
	char *k1 = strdup("key"), *k2 = strdup("key");
	const char *key;
	size_t pos = 0;
	int a, b;

	zt_hmap_init_borrowed(&m);
	ck_assert_ptr_null(zt_hmap_put(&m, k1, &a));
	ck_assert(zt_hmap_next(&m, &pos, &key, NULL));
	ck_assert_ptr_eq(key, k1);
	/* A put over the entry stores the new key pointer: the old one may go. */
	ck_assert_ptr_eq(zt_hmap_put(&m, k2, &b), &a);
	free(k1);
	pos = 0;
	ck_assert(zt_hmap_next(&m, &pos, &key, NULL));
	ck_assert_ptr_eq(key, k2);
	ck_assert_ptr_eq(zt_hmap_get(&m, "key"), &b);
	ck_assert_ptr_eq(zt_hmap_del(&m, "key"), &b);
	ck_assert_uint_eq(zt_hmap_count(&m), 0);
	ck_assert_ptr_null(zt_hmap_put(&m, k2, &a));
	zt_hmap_clear(&m); /* frees no key */
	ck_assert(m.borrowed);
	free(k2);
}
END_TEST

START_TEST(hmap_borrowed_table_matches_a_model)
{
	enum { KEYS = 300 };
	static char keys[KEYS][16];
	struct zt_hmap m;
	int vals[KEYS];
	bool in[KEYS] = {false};

	zt_hmap_init_borrowed(&m);
	for (int i = 0; i < KEYS; i++)
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
	srand(7);
	for (int op = 0; op < 20000; op++) {
		int i = rand() % KEYS;
		if (rand() % 3) {
			ck_assert_ptr_eq(zt_hmap_put(&m, keys[i], &vals[i]), in[i] ? &vals[i] : NULL);
			in[i] = true;
		} else {
			ck_assert_ptr_eq(zt_hmap_del(&m, keys[i]), in[i] ? &vals[i] : NULL);
			in[i] = false;
		}
	}
	for (int i = 0; i < KEYS; i++)
		ck_assert_ptr_eq(zt_hmap_get(&m, keys[i]), in[i] ? &vals[i] : NULL);
	zt_hmap_clear(&m);
}
END_TEST

START_TEST(hmap_hash_covers_length_and_every_byte)
{
	const char a[16] = "0123456789abcdef", b[16] = "0123456789abcdeF";
	const char z[4] = {'a', 'b', 0, 0};

	ck_assert(zt_hash_bytes(a, 16) == zt_hash_bytes(a, 16));
	ck_assert(zt_hash_bytes(a, 16) != zt_hash_bytes(b, 16)); /* last byte of a word */
	ck_assert(zt_hash_bytes(z, 2) != zt_hash_bytes(z, 4)); /* zero padding is not the same */
	ck_assert(zt_hash_bytes(a, 15) == zt_hash_bytes(b, 15)); /* only what len covers */
}
END_TEST

Suite *hmap_suite(void);
Suite *hmap_suite(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, hmap_empty_table_finds_nothing);
	tcase_add_test(tc, hmap_put_replaces_and_returns_previous_value);
	tcase_add_test(tc, hmap_copies_keys);
	tcase_add_test(tc, hmap_empty_and_similar_keys_are_distinct);
	tcase_add_test(tc, hmap_grows_and_keeps_every_entry);
	tcase_add_test(tc, hmap_iteration_visits_each_entry_once);
	tcase_add_test(tc, hmap_random_operations_match_a_model);
	tcase_add_test(tc, hmap_borrowed_keys_are_stored_as_given);
	tcase_add_test(tc, hmap_borrowed_table_matches_a_model);
	tcase_add_test(tc, hmap_hash_covers_length_and_every_byte);
	suite_add_tcase(s, tc);
	return s;
}
