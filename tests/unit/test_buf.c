#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/buf.h"
#include "runtime/err.h"

static struct zt_slice S(const char *s) {
	return zt_slice_from_str(s);
}

/* Fills p with a pattern that depends on the absolute stream offset, so misplaced or
 * duplicated bytes are caught. */
static void
pattern(uint8_t *p, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((off + i) * 7 + ((off + i) >> 8));
}

static void assert_pattern(const uint8_t *p, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(p[i] == (uint8_t)((off + i) * 7 + ((off + i) >> 8)),
		              "byte %zu of stream is wrong", off + i);
}

static void assert_contents(const struct zt_buf *b, const char *want)
{
	ck_assert_uint_eq(zt_buf_len(b), strlen(want));
	ck_assert_mem_eq(zt_buf_data(b), want, strlen(want));
}

/* ---- slices ------------------------------------------------------------------------------- */

START_TEST(slice_from_str_excludes_nul)
{
	struct zt_slice s = S("abc");

	ck_assert_uint_eq(s.len, 3);
	ck_assert_mem_eq(s.p, "abc", 3);
	ck_assert_uint_eq(S("").len, 0);
}
END_TEST

START_TEST(slice_equal_compares_length_and_bytes)
{
	ck_assert(zt_slice_equal(S("abc"), S("abc")));
	ck_assert(!zt_slice_equal(S("abc"), S("abd")));
	ck_assert(!zt_slice_equal(S("abc"), S("ab")));
	ck_assert(!zt_slice_equal(S("ab"), S("abc")));
	ck_assert(zt_slice_equal(zt_slice_make(NULL, 0), S("")));
	ck_assert(!zt_slice_equal(zt_slice_make(NULL, 0), S("a")));
	/* Embedded NULs are bytes like any other. */
	ck_assert(!zt_slice_equal(zt_slice_make("a\0b", 3), zt_slice_make("a\0c", 3)));
	ck_assert(zt_slice_equal(zt_slice_make("a\0b", 3), zt_slice_make("a\0b", 3)));
}
END_TEST

START_TEST(slice_has_prefix_checks_leading_bytes)
{
	ck_assert(zt_slice_has_prefix(S("CONNECT x"), S("CONNECT")));
	ck_assert(zt_slice_has_prefix(S("CONNECT"), S("CONNECT")));
	ck_assert(zt_slice_has_prefix(S("abc"), S("")));
	ck_assert(zt_slice_has_prefix(zt_slice_make(NULL, 0), zt_slice_make(NULL, 0)));
	ck_assert(!zt_slice_has_prefix(S("CONN"), S("CONNECT")));
	ck_assert(!zt_slice_has_prefix(S("connect x"), S("CONNECT")));
	ck_assert(!zt_slice_has_prefix(zt_slice_make(NULL, 0), S("a")));
}
END_TEST

START_TEST(slice_advance_moves_start_and_shrinks)
{
	const char *text = "hello world";
	struct zt_slice s = S(text);

	zt_slice_advance(&s, 6);
	ck_assert_ptr_eq(s.p, (const uint8_t *)text + 6);
	ck_assert(zt_slice_equal(s, S("world")));
	zt_slice_advance(&s, 0);
	ck_assert(zt_slice_equal(s, S("world")));
	zt_slice_advance(&s, 5);
	ck_assert_uint_eq(s.len, 0);
	s = zt_slice_make(NULL, 0);
	zt_slice_advance(&s, 0);
	ck_assert_uint_eq(s.len, 0);
}
END_TEST

START_TEST(slice_advance_past_end_aborts)
{
	struct zt_slice s = S("abc");

	zt_slice_advance(&s, 4);
}
END_TEST

/* ---- buffer basics ------------------------------------------------------------------------ */

START_TEST(buf_zeroed_struct_is_empty_unlimited_buffer)
{
	struct zt_buf b = {0};

	ck_assert_uint_eq(zt_buf_len(&b), 0);
	ck_assert_ptr_null(zt_buf_data(&b));
	ck_assert_uint_eq(zt_buf_room(&b), SIZE_MAX);
	ck_assert_int_eq(zt_buf_append(&b, "abc", 3), 0);
	assert_contents(&b, "abc");
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_init_allocates_nothing_and_clear_resets)
{
	struct zt_buf b;

	zt_buf_init(&b, 64);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.cap, 0);
	ck_assert_int_eq(zt_buf_append(&b, NULL, 0), 0); /* empty append needs no storage */
	ck_assert_ptr_null(b.data);
	ck_assert_int_eq(zt_buf_append(&b, "xyz", 3), 0);
	zt_buf_clear(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(zt_buf_len(&b), 0);
	ck_assert_uint_eq(b.limit, 64);
	zt_buf_clear(&b); /* twice is harmless */
	ck_assert_int_eq(zt_buf_append(&b, "again", 5), 0);
	assert_contents(&b, "again");
	ck_assert_uint_eq(zt_buf_room(&b), 59);
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_append_preserves_order_across_growth)
{
	struct zt_buf b = {0};
	uint8_t chunk[1000];
	size_t total = 0, grows = 0, cap = 0;

	while (total < (1u << 20)) {
		pattern(chunk, total, sizeof(chunk));
		ck_assert_int_eq(zt_buf_append(&b, chunk, sizeof(chunk)), 0);
		total += sizeof(chunk);
		ck_assert_uint_le(zt_buf_len(&b), b.cap);
		if (b.cap != cap) {
			/* Every growth at least doubles: amortised O(1) per byte. */
			ck_assert_uint_ge(b.cap, 2 * cap);
			grows++;
			cap = b.cap;
		}
	}
	ck_assert_uint_eq(zt_buf_len(&b), total);
	assert_pattern(zt_buf_data(&b), 0, total);
	ck_assert_uint_le(grows, 14); /* 256 B .. 2 MiB */
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_append_one_large_block_allocates_once)
{
	struct zt_buf b = {0};
	size_t n = 100000;
	uint8_t *src = malloc(n);

	ck_assert_ptr_nonnull(src);
	pattern(src, 0, n);
	ck_assert_int_eq(zt_buf_append(&b, src, n), 0);
	ck_assert_uint_ge(b.cap, n);
	ck_assert_uint_lt(b.cap, 2 * n);
	assert_pattern(zt_buf_data(&b), 0, n);
	zt_buf_clear(&b);
	free(src);
}
END_TEST

/* ---- limits ------------------------------------------------------------------------------- */

START_TEST(buf_append_beyond_limit_fails_and_leaves_buffer_unchanged)
{
	struct zt_buf b;
	uint8_t big[101] = {0};
	const uint8_t *data;
	size_t cap;

	zt_buf_init(&b, 100);
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(zt_buf_append(&b, big, 101), ZT_E_TOOBIG);
	ck_assert_ptr_null(b.data);
	ck_assert_int_eq(zt_buf_append(&b, "0123456789", 10), 0);
	data = zt_buf_data(&b);
	cap = b.cap;
	ck_assert_int_eq(zt_buf_append(&b, big, 91), ZT_E_TOOBIG);
	ck_assert_ptr_eq(zt_buf_data(&b), data);
	ck_assert_uint_eq(b.cap, cap);
	assert_contents(&b, "0123456789");
	ck_assert_int_eq(zt_buf_append(&b, big, 90), 0); /* exactly up to the limit */
	ck_assert_uint_eq(zt_buf_len(&b), 100);
	ck_assert_uint_eq(zt_buf_room(&b), 0);
	ck_assert_int_eq(zt_buf_append(&b, "x", 1), ZT_E_TOOBIG);
	ck_assert_uint_eq(zt_buf_len(&b), 100);
	ck_assert_mem_eq(zt_buf_data(&b), "0123456789aaaa", 14);
	ck_assert_uint_le(b.cap, 100);
	/* Huge sizes must not overflow the limit check. */
	ck_assert_int_eq(zt_buf_append(&b, big, SIZE_MAX), ZT_E_TOOBIG);
	ck_assert_uint_eq(zt_buf_len(&b), 100);
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_allocation_never_exceeds_limit)
{
	struct zt_buf b;
	uint8_t chunk[700];
	size_t in = 0, out = 0, i;

	zt_buf_init(&b, 1000);
	for (i = 0; i < 500; i++) {
		size_t n = 1 + (i * 37) % sizeof(chunk);

		if (n > zt_buf_room(&b)) {
			ck_assert_int_eq(zt_buf_append(&b, chunk, n), ZT_E_TOOBIG);
		} else {
			pattern(chunk, in, n);
			ck_assert_int_eq(zt_buf_append(&b, chunk, n), 0);
			in += n;
		}
		ck_assert_uint_le(b.cap, 1000);
		ck_assert_uint_le(zt_buf_len(&b), 1000);
		n = zt_buf_len(&b) / 2 + (i % 3);
		if (n > zt_buf_len(&b))
			n = zt_buf_len(&b);
		assert_pattern(zt_buf_data(&b), out, zt_buf_len(&b));
		zt_buf_consume(&b, n);
		out += n;
	}
	ck_assert_uint_gt(in, 10000); /* the loop really cycled data through */
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_at_limit_compacts_to_accept_after_consume)
{
	struct zt_buf b;
	uint8_t chunk[100];

	uint8_t *data;

	zt_buf_init(&b, 100);
	pattern(chunk, 0, 100);
	ck_assert_int_eq(zt_buf_append(&b, chunk, 100), 0);
	ck_assert_uint_eq(b.cap, 100);
	data = b.data;
	zt_buf_consume(&b, 30);
	pattern(chunk, 100, 30);
	ck_assert_int_eq(zt_buf_append(&b, chunk, 30), 0);
	ck_assert_uint_eq(b.cap, 100);
	ck_assert_ptr_eq(b.data, data); /* moved in place, no new allocation */
	ck_assert_uint_eq(b.rd, 0);
	assert_pattern(zt_buf_data(&b), 30, 100);
	zt_buf_clear(&b);
}
END_TEST

/* ---- reserve / commit --------------------------------------------------------------------- */

START_TEST(buf_reserve_commit_appends_written_bytes)
{
	struct zt_buf b = {0};
	uint8_t *p;

	ck_assert_int_eq(zt_buf_append(&b, "head:", 5), 0);
	ck_assert_int_eq(zt_buf_reserve(&b, 4096, &p), 0);
	ck_assert_uint_ge(b.cap - b.wr, 4096);
	memset(p, 'z', 4096); /* the whole reservation is writable (ASan checks) */
	memcpy(p, "body", 4);
	zt_buf_commit(&b, 4); /* a short read commits less than reserved */
	assert_contents(&b, "head:body");
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_reserve_beyond_limit_fails_unchanged)
{
	struct zt_buf b;
	uint8_t *p = NULL;

	zt_buf_init(&b, 16);
	ck_assert_int_eq(zt_buf_append(&b, "12345678", 8), 0);
	ck_assert_int_eq(zt_buf_reserve(&b, 9, &p), ZT_E_TOOBIG);
	ck_assert_ptr_null(p);
	assert_contents(&b, "12345678");
	ck_assert_int_eq(zt_buf_reserve(&b, zt_buf_room(&b), &p), 0);
	memcpy(p, "abcdefgh", 8);
	zt_buf_commit(&b, 8);
	assert_contents(&b, "12345678abcdefgh");
	ck_assert_uint_eq(b.cap, 16);
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_commit_beyond_reservation_aborts)
{
	struct zt_buf b;
	uint8_t *p;

	zt_buf_init(&b, 16);
	ck_assert_int_eq(zt_buf_reserve(&b, 8, &p), 0);
	zt_buf_commit(&b, 17);
}
END_TEST

START_TEST(buf_reserve_compacts_when_little_is_unread)
{
	struct zt_buf b = {0};
	uint8_t chunk[256], *p;

	pattern(chunk, 0, sizeof(chunk));
	ck_assert_int_eq(zt_buf_append(&b, chunk, 200), 0);
	ck_assert_uint_eq(b.cap, 256);
	zt_buf_consume(&b, 190);
	ck_assert_int_eq(zt_buf_reserve(&b, 100, &p), 0);
	ck_assert_uint_eq(b.cap, 256); /* reused, not grown */
	ck_assert_uint_eq(b.rd, 0);
	ck_assert_ptr_eq(p, b.data + 10);
	assert_pattern(zt_buf_data(&b), 190, 10);
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_reserve_grows_rather_than_compacting_mostly_full_buffer)
{
	struct zt_buf b = {0};
	uint8_t chunk[256], *p;

	pattern(chunk, 0, sizeof(chunk));
	ck_assert_int_eq(zt_buf_append(&b, chunk, 256), 0);
	ck_assert_uint_eq(b.cap, 256);
	zt_buf_consume(&b, 10);
	/* Compacting would move 246 bytes to gain 10; growing keeps the total copying linear. */
	ck_assert_int_eq(zt_buf_reserve(&b, 10, &p), 0);
	ck_assert_uint_eq(b.cap, 512);
	ck_assert_uint_eq(b.rd, 0);
	assert_pattern(zt_buf_data(&b), 10, 246);
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_reserve_zero_on_empty_buffer_succeeds)
{
	struct zt_buf b = {0};
	uint8_t *p = (uint8_t *)&b;

	ck_assert_int_eq(zt_buf_reserve(&b, 0, &p), 0);
	ck_assert_ptr_null(p);
	zt_buf_commit(&b, 0);
	ck_assert_uint_eq(zt_buf_len(&b), 0);
}
END_TEST

/* ---- consume / compact -------------------------------------------------------------------- */

START_TEST(buf_consume_drops_from_front_without_moving)
{
	struct zt_buf b = {0};
	const uint8_t *start;

	ck_assert_int_eq(zt_buf_append(&b, "abcdef", 6), 0);
	start = zt_buf_data(&b);
	zt_buf_consume(&b, 2);
	ck_assert_ptr_eq(zt_buf_data(&b), start + 2);
	assert_contents(&b, "cdef");
	ck_assert(zt_slice_equal(zt_buf_slice(&b), S("cdef")));
	zt_buf_consume(&b, 0);
	assert_contents(&b, "cdef");
	zt_buf_consume(&b, 4);
	ck_assert_uint_eq(zt_buf_len(&b), 0);
	ck_assert_uint_eq(b.rd, 0); /* emptied: rewound to the start */
	ck_assert_uint_eq(b.wr, 0);
	ck_assert_int_eq(zt_buf_append(&b, "g", 1), 0);
	ck_assert_ptr_eq(zt_buf_data(&b), start);
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_consume_past_end_aborts)
{
	struct zt_buf b = {0};

	ck_assert_int_eq(zt_buf_append(&b, "abc", 3), 0);
	zt_buf_consume(&b, 4);
}
END_TEST

START_TEST(buf_compact_moves_unread_to_front)
{
	struct zt_buf b = {0};
	size_t cap;

	zt_buf_compact(&b); /* nothing allocated: no-op */
	ck_assert_int_eq(zt_buf_append(&b, "0123456789", 10), 0);
	cap = b.cap;
	zt_buf_consume(&b, 7);
	zt_buf_compact(&b);
	ck_assert_uint_eq(b.rd, 0);
	ck_assert_ptr_eq(zt_buf_data(&b), b.data);
	ck_assert_uint_eq(b.cap, cap);
	assert_contents(&b, "789");
	zt_buf_compact(&b); /* already compact */
	assert_contents(&b, "789");
	zt_buf_clear(&b);
}
END_TEST

/* ---- appendf ------------------------------------------------------------------------------ */

START_TEST(buf_appendf_concatenates_and_terminates)
{
	struct zt_buf b = {0};

	ck_assert_int_eq(zt_buf_appendf(&b, "%s=%d", "port", 15008), 0);
	ck_assert_int_eq(zt_buf_appendf(&b, "%s", ""), 0);
	ck_assert_int_eq(zt_buf_appendf(&b, " %s", "ok"), 0);
	assert_contents(&b, "port=15008 ok");
	ck_assert_str_eq((const char *)zt_buf_data(&b), "port=15008 ok");
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_appendf_grows_instead_of_truncating)
{
	struct zt_buf b = {0};
	const char *data;
	size_t i;

	ck_assert_int_eq(zt_buf_append(&b, "<", 1), 0);
	ck_assert_uint_eq(b.cap, 256);
	ck_assert_int_eq(zt_buf_appendf(&b, "%5000d>", 42), 0);
	ck_assert_uint_eq(zt_buf_len(&b), 5002);
	data = (const char *)zt_buf_data(&b);
	ck_assert_int_eq(data[0], '<');
	for (i = 1; i < 4999; i++)
		ck_assert_int_eq(data[i], ' ');
	ck_assert_mem_eq(data + 4999, "42>", 3);
	ck_assert_int_eq(data[5002], '\0');
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_appendf_reuses_existing_space)
{
	struct zt_buf b = {0};
	uint8_t *data;

	ck_assert_int_eq(zt_buf_append(&b, "a", 1), 0);
	data = b.data;
	ck_assert_int_eq(zt_buf_appendf(&b, "%d", 123), 0);
	ck_assert_ptr_eq(b.data, data);
	assert_contents(&b, "a123");
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_appendf_exactly_filling_free_space_is_not_truncated)
{
	struct zt_buf b = {0};
	const char *data;

	ck_assert_int_eq(zt_buf_append(&b, "<", 1), 0);
	ck_assert_uint_eq(b.cap - b.wr, 255);
	/* 255 characters fill the space but leave none for vsnprintf's NUL. */
	ck_assert_int_eq(zt_buf_appendf(&b, "%254d>", 7), 0);
	ck_assert_uint_eq(zt_buf_len(&b), 256);
	data = (const char *)zt_buf_data(&b);
	ck_assert_mem_eq(data + 254, "7>", 3); /* NUL included */
	zt_buf_clear(&b);
}
END_TEST

START_TEST(buf_appendf_beyond_limit_fails_unchanged)
{
	struct zt_buf b;

	zt_buf_init(&b, 10);
	ck_assert_int_eq(zt_buf_appendf(&b, "%s", "0123456789"), ZT_E_TOOBIG); /* no room for NUL */
	ck_assert_uint_eq(zt_buf_len(&b), 0);
	ck_assert_int_eq(zt_buf_appendf(&b, "%s", "012345678"), 0); /* text + NUL = limit */
	assert_contents(&b, "012345678");
	zt_buf_consume(&b, 5);
	ck_assert_int_eq(zt_buf_appendf(&b, "%d", 123456), ZT_E_TOOBIG); /* 4 + 6 + NUL */
	assert_contents(&b, "5678");
	ck_assert_int_eq(zt_buf_appendf(&b, "%d", 12345), 0); /* compacts at the limit */
	assert_contents(&b, "567812345");
	ck_assert_int_eq(zt_buf_appendf(&b, "%s", ""), 0); /* the NUL alone still fits */
	ck_assert_int_eq(zt_buf_append(&b, "x", 1), 0);
	ck_assert_int_eq(zt_buf_appendf(&b, "%s", ""), ZT_E_TOOBIG);
	assert_contents(&b, "567812345x");
	ck_assert_uint_le(b.cap, 10);
	zt_buf_clear(&b);
}
END_TEST

Suite *buf_suite(void);
Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc;

	tc = tcase_create("slice");
	tcase_add_test(tc, slice_from_str_excludes_nul);
	tcase_add_test(tc, slice_equal_compares_length_and_bytes);
	tcase_add_test(tc, slice_has_prefix_checks_leading_bytes);
	tcase_add_test(tc, slice_advance_moves_start_and_shrinks);
	tcase_add_test_raise_signal(tc, slice_advance_past_end_aborts, SIGABRT);
	suite_add_tcase(s, tc);

	tc = tcase_create("buf");
	tcase_add_test(tc, buf_zeroed_struct_is_empty_unlimited_buffer);
	tcase_add_test(tc, buf_init_allocates_nothing_and_clear_resets);
	tcase_add_test(tc, buf_append_preserves_order_across_growth);
	tcase_add_test(tc, buf_append_one_large_block_allocates_once);
	tcase_add_test(tc, buf_append_beyond_limit_fails_and_leaves_buffer_unchanged);
	tcase_add_test(tc, buf_allocation_never_exceeds_limit);
	tcase_add_test(tc, buf_at_limit_compacts_to_accept_after_consume);
	tcase_add_test(tc, buf_reserve_commit_appends_written_bytes);
	tcase_add_test(tc, buf_reserve_beyond_limit_fails_unchanged);
	tcase_add_test_raise_signal(tc, buf_commit_beyond_reservation_aborts, SIGABRT);
	tcase_add_test(tc, buf_reserve_compacts_when_little_is_unread);
	tcase_add_test(tc, buf_reserve_grows_rather_than_compacting_mostly_full_buffer);
	tcase_add_test(tc, buf_reserve_zero_on_empty_buffer_succeeds);
	tcase_add_test(tc, buf_consume_drops_from_front_without_moving);
	tcase_add_test_raise_signal(tc, buf_consume_past_end_aborts, SIGABRT);
	tcase_add_test(tc, buf_compact_moves_unread_to_front);
	suite_add_tcase(s, tc);

	tc = tcase_create("appendf");
	tcase_add_test(tc, buf_appendf_concatenates_and_terminates);
	tcase_add_test(tc, buf_appendf_grows_instead_of_truncating);
	tcase_add_test(tc, buf_appendf_reuses_existing_space);
	tcase_add_test(tc, buf_appendf_exactly_filling_free_space_is_not_truncated);
	tcase_add_test(tc, buf_appendf_beyond_limit_fails_unchanged);
	suite_add_tcase(s, tc);
	return s;
}
