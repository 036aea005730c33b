/* gRPC framing (protocol/grpc.h) as pure functions: message reassembly from arbitrary chunk
 * boundaries, refusal of oversize, compressed and malformed messages, the length prefix and
 * grpc-timeout parsing. No loop, no sockets. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/grpc.h"
#include "runtime/err.h"

/* ---- a recorded message sequence --------------------------------------------------------- */

static const size_t msg_sizes[] = {3, 0, 1, 70000, 0, 0, 5, 4, 300, 0, 17};
#define NMSG (sizeof(msg_sizes) / sizeof(msg_sizes[0]))

/* Byte j of message i; depends on both so a swapped or shifted message shows. */
static uint8_t msg_byte(size_t i, size_t j)
{
	return (uint8_t)(i * 31 + j * 7 + (j >> 8) + 1);
}

/* The wire form of the whole sequence: prefix + body for each message. */
static uint8_t *encode_all(size_t *out_len)
{
	size_t n = 0, o = 0;
	uint8_t *w;

	for (size_t i = 0; i < NMSG; i++)
		n += ZT_GRPC_PREFIX + msg_sizes[i];
	w = malloc(n);
	ck_assert_ptr_nonnull(w);
	for (size_t i = 0; i < NMSG; i++) {
		zt_grpc_frame_prefix(w + o, (uint32_t)msg_sizes[i]);
		o += ZT_GRPC_PREFIX;
		for (size_t j = 0; j < msg_sizes[i]; j++)
			w[o++] = msg_byte(i, j);
	}
	*out_len = n;
	return w;
}

/* Each message body built on its own, to compare deliveries against. */
static uint8_t *expected[NMSG];

static void expected_setup(void)
{
	for (size_t i = 0; i < NMSG; i++) {
		expected[i] = malloc(msg_sizes[i] + 1);
		ck_assert_ptr_nonnull(expected[i]);
		for (size_t j = 0; j < msg_sizes[i]; j++)
			expected[i][j] = msg_byte(i, j);
	}
}

static void expected_teardown(void)
{
	for (size_t i = 0; i < NMSG; i++) {
		free(expected[i]);
		expected[i] = NULL;
	}
}

struct seen {
	size_t count;  /* messages delivered */
	bool mismatch; /* a message differed from the expected one */
	int stop_at;   /* return -42 from the callback for this message index (-1: never) */
	size_t last_len;
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	s->stop_at = -1;
}

static int check_msg(const uint8_t *p, size_t len, void *arg)
{
	struct seen *s = arg;
	size_t i = s->count++;

	s->last_len = len;
	if (i >= NMSG || len != msg_sizes[i] || (len && memcmp(p, expected[i], len) != 0))
		s->mismatch = true;
	return (int)i == s->stop_at ? -42 : 0;
}

static int count_msg(const uint8_t *p, size_t len, void *arg)
{
	struct seen *s = arg;

	(void)p;
	s->count++;
	s->last_len = len;
	return (int)s->count - 1 == s->stop_at ? -42 : 0;
}

/* Every split point; under ThreadSanitizer, which slows this single-threaded loop 20-fold and
 * has nothing to find in it, every 7th. */
#if defined(__SANITIZE_THREAD__)
#define SPLIT_STEP 7
#else
#define SPLIT_STEP 1
#endif

START_TEST(grpc_reader_same_messages_for_every_two_chunk_split)
{
	size_t n;
	uint8_t *w = encode_all(&n);

	for (size_t k = 0; k <= n; k += SPLIT_STEP) {
		struct zt_grpc_reader r;
		struct seen s;

		seen_init(&s);
		zt_grpc_reader_init(&r, 1u << 20);
		ck_assert_int_eq(zt_grpc_reader_feed(&r, w, k, check_msg, &s), 0);
		ck_assert_int_eq(zt_grpc_reader_feed(&r, w + k, n - k, check_msg, &s), 0);
		if (s.count != NMSG || s.mismatch || zt_grpc_reader_partial(&r))
			ck_abort_msg("split at %zu: %zu messages, mismatch %d, partial %d", k,
			             s.count, s.mismatch, zt_grpc_reader_partial(&r));
		zt_grpc_reader_clear(&r);
	}
	free(w);
}
END_TEST

START_TEST(grpc_reader_same_messages_fed_one_byte_at_a_time)
{
	size_t n;
	uint8_t *w = encode_all(&n);
	struct zt_grpc_reader r;
	struct seen s;

	seen_init(&s);
	zt_grpc_reader_init(&r, 1u << 20);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(zt_grpc_reader_feed(&r, w + i, 1, check_msg, &s), 0);
	ck_assert_uint_eq(s.count, NMSG);
	ck_assert(!s.mismatch);
	ck_assert(!zt_grpc_reader_partial(&r));
	zt_grpc_reader_clear(&r);
	free(w);
}
END_TEST

START_TEST(grpc_reader_same_messages_in_one_chunk)
{
	size_t n;
	uint8_t *w = encode_all(&n);
	struct zt_grpc_reader r;
	struct seen s;

	seen_init(&s);
	zt_grpc_reader_init(&r, 1u << 20);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w, n, check_msg, &s), 0);
	ck_assert_uint_eq(s.count, NMSG);
	ck_assert(!s.mismatch);
	zt_grpc_reader_clear(&r);
	free(w);
}
END_TEST

START_TEST(grpc_reader_empty_feed_delivers_nothing)
{
	struct zt_grpc_reader r;
	struct seen s;

	seen_init(&s);
	zt_grpc_reader_init(&r, 100);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, NULL, 0, count_msg, &s), 0);
	ck_assert_uint_eq(s.count, 0);
	ck_assert(!zt_grpc_reader_partial(&r));
	zt_grpc_reader_clear(&r);
}
END_TEST

/* ---- refusals ---------------------------------------------------------------------------- */

START_TEST(grpc_reader_refuses_message_over_max_before_buffering_body)
{
	uint8_t w[ZT_GRPC_PREFIX + 64];
	struct zt_grpc_reader r;
	struct seen s;

	memset(w, 0xAB, sizeof(w));
	zt_grpc_frame_prefix(w, 101);
	seen_init(&s);
	zt_grpc_reader_init(&r, 100);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w, sizeof(w), count_msg, &s), ZT_E_TOOBIG);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_uint_eq(zt_buf_len(&r.msg), 0);
	ck_assert_ptr_null(r.msg.data); /* nothing was even allocated for the body */
	/* The error stays: more bytes do not resynchronise on garbage. */
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w + ZT_GRPC_PREFIX, 10, count_msg, &s),
	                 ZT_E_TOOBIG);
	ck_assert_uint_eq(s.count, 0);
	zt_grpc_reader_clear(&r);
}
END_TEST

START_TEST(grpc_reader_refuses_largest_length_prefix)
{
	uint8_t w[ZT_GRPC_PREFIX];
	struct zt_grpc_reader r;
	struct seen s;

	zt_grpc_frame_prefix(w, UINT32_MAX);
	seen_init(&s);
	zt_grpc_reader_init(&r, 16u << 20);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w, sizeof(w), count_msg, &s), ZT_E_TOOBIG);
	ck_assert_ptr_null(r.msg.data);
	zt_grpc_reader_clear(&r);
}
END_TEST

START_TEST(grpc_reader_accepts_message_of_exactly_max)
{
	uint8_t w[ZT_GRPC_PREFIX + 100] = {0};
	struct zt_grpc_reader r;
	struct seen s;

	zt_grpc_frame_prefix(w, 100);
	seen_init(&s);
	zt_grpc_reader_init(&r, 100);
	/* Split so the body has to be buffered. */
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w, 50, count_msg, &s), 0);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w + 50, sizeof(w) - 50, count_msg, &s), 0);
	ck_assert_uint_eq(s.count, 1);
	ck_assert_uint_eq(s.last_len, 100);
	zt_grpc_reader_clear(&r);
}
END_TEST

START_TEST(grpc_reader_refuses_compressed_flag_as_unsupported)
{
	uint8_t w[ZT_GRPC_PREFIX + 3] = {1, 0, 0, 0, 3, 'a', 'b', 'c'};
	struct zt_grpc_reader r;
	struct seen s;

	seen_init(&s);
	zt_grpc_reader_init(&r, 100);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w, sizeof(w), count_msg, &s), ZT_E_UNSUPPORTED);
	ck_assert_uint_eq(s.count, 0);
	zt_grpc_reader_clear(&r);
}
END_TEST

START_TEST(grpc_reader_refuses_every_other_flag_as_protocol_error)
{
	for (int flag = 2; flag <= 255; flag++) {
		uint8_t w[ZT_GRPC_PREFIX] = {(uint8_t)flag, 0, 0, 0, 0};
		struct zt_grpc_reader r;
		struct seen s;

		seen_init(&s);
		zt_grpc_reader_init(&r, 100);
		ck_assert_int_eq(zt_grpc_reader_feed(&r, w, sizeof(w), count_msg, &s), ZT_E_PROTO);
		ck_assert_uint_eq(s.count, 0);
		zt_grpc_reader_clear(&r);
	}
}
END_TEST

START_TEST(grpc_reader_bad_flag_after_good_message_delivers_the_good_one_only)
{
	uint8_t w[] = {0, 0, 0, 0, 1, 'x', 7, 0, 0, 0, 1, 'y'};
	struct zt_grpc_reader r;
	struct seen s;

	seen_init(&s);
	zt_grpc_reader_init(&r, 100);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w, sizeof(w), count_msg, &s), ZT_E_PROTO);
	ck_assert_uint_eq(s.count, 1);
	ck_assert_uint_eq(s.last_len, 1);
	zt_grpc_reader_clear(&r);
}
END_TEST

/* Three one-byte messages in one chunk; the callback refuses the second. */
START_TEST(grpc_reader_callback_error_stops_feeding_whole_messages)
{
	uint8_t w[] = {0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, 'b', 0, 0, 0, 0, 1, 'c'};
	struct zt_grpc_reader r;
	struct seen s;

	seen_init(&s);
	s.stop_at = 1;
	zt_grpc_reader_init(&r, 100);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w, sizeof(w), count_msg, &s), -42);
	ck_assert_uint_eq(s.count, 2);
	zt_grpc_reader_clear(&r);
}
END_TEST

/* Same, but the refused message was reassembled from two chunks (the buffered path). */
START_TEST(grpc_reader_callback_error_stops_feeding_buffered_message)
{
	uint8_t w[] = {0, 0, 0, 0, 2, 'a', 'b', 0, 0, 0, 0, 1, 'c'};
	struct zt_grpc_reader r;
	struct seen s;

	seen_init(&s);
	s.stop_at = 0;
	zt_grpc_reader_init(&r, 100);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w, 6, count_msg, &s), 0);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w + 6, sizeof(w) - 6, count_msg, &s), -42);
	ck_assert_uint_eq(s.count, 1);
	ck_assert_uint_eq(s.last_len, 2);
	zt_grpc_reader_clear(&r);
}
END_TEST

START_TEST(grpc_reader_partial_inside_prefix_and_body_only)
{
	uint8_t w[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0};
	struct zt_grpc_reader r;
	struct seen s;

	seen_init(&s);
	zt_grpc_reader_init(&r, 100);
	ck_assert(!zt_grpc_reader_partial(&r));
	/* Inside the prefix: after 1..4 of its bytes. */
	for (size_t i = 0; i < 4; i++) {
		ck_assert_int_eq(zt_grpc_reader_feed(&r, w + i, 1, count_msg, &s), 0);
		ck_assert_msg(zt_grpc_reader_partial(&r), "not partial after %zu prefix bytes",
		              i + 1);
	}
	/* Prefix complete, no body yet; then inside the body. */
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w + 4, 1, count_msg, &s), 0);
	ck_assert(zt_grpc_reader_partial(&r));
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w + 5, 2, count_msg, &s), 0);
	ck_assert(zt_grpc_reader_partial(&r));
	ck_assert_uint_eq(s.count, 0);
	/* Last body byte: the message is whole. */
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w + 7, 1, count_msg, &s), 0);
	ck_assert_uint_eq(s.count, 1);
	ck_assert(!zt_grpc_reader_partial(&r));
	/* An empty message completes with its prefix. */
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w + 8, 4, count_msg, &s), 0);
	ck_assert(zt_grpc_reader_partial(&r));
	ck_assert_int_eq(zt_grpc_reader_feed(&r, w + 12, 1, count_msg, &s), 0);
	ck_assert_uint_eq(s.count, 2);
	ck_assert_uint_eq(s.last_len, 0);
	ck_assert(!zt_grpc_reader_partial(&r));
	zt_grpc_reader_clear(&r);
}
END_TEST

/* ---- prefix encoding --------------------------------------------------------------------- */

START_TEST(grpc_frame_prefix_is_zero_flag_and_big_endian_length)
{
	static const struct {
		uint32_t len;
		uint8_t want[ZT_GRPC_PREFIX];
	} cases[] = {
	        {0, {0, 0, 0, 0, 0}},
	        {1, {0, 0, 0, 0, 1}},
	        {0x01020304, {0, 1, 2, 3, 4}},
	        {70000, {0, 0, 0x01, 0x11, 0x70}},
	        {UINT32_MAX, {0, 0xff, 0xff, 0xff, 0xff}},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[ZT_GRPC_PREFIX];

		memset(out, 0x5a, sizeof(out));
		zt_grpc_frame_prefix(out, cases[i].len);
		ck_assert_mem_eq(out, cases[i].want, ZT_GRPC_PREFIX);
	}
}
END_TEST

/* ---- grpc-timeout ------------------------------------------------------------------------ */

static int64_t tparse(const char *s)
{
	return zt_grpc_timeout_parse(s, strlen(s));
}

START_TEST(grpc_timeout_parses_every_unit_to_ms)
{
	ck_assert_int_eq(tparse("2H"), 2 * 3600000);
	ck_assert_int_eq(tparse("3M"), 3 * 60000);
	ck_assert_int_eq(tparse("5S"), 5000);
	ck_assert_int_eq(tparse("100m"), 100);
	ck_assert_int_eq(tparse("0m"), 0);
	ck_assert_int_eq(tparse("7000u"), 7);
	ck_assert_int_eq(tparse("9000000n"), 9);
	ck_assert_int_eq(tparse("00000042S"), 42000);
}
END_TEST

START_TEST(grpc_timeout_sub_millisecond_rounds_up_not_to_zero)
{
	ck_assert_int_eq(tparse("1u"), 1);
	ck_assert_int_eq(tparse("1500u"), 2);
	ck_assert_int_eq(tparse("1n"), 1);
	ck_assert_int_eq(tparse("1000001n"), 2);
	ck_assert_int_eq(tparse("0n"), 0);
}
END_TEST

START_TEST(grpc_timeout_accepts_eight_digits)
{
	ck_assert_int_eq(tparse("99999999H"), INT64_C(99999999) * 3600000);
	ck_assert_int_eq(tparse("99999999m"), 99999999);
}
END_TEST

START_TEST(grpc_timeout_rejects_nine_or_more_digits)
{
	ck_assert_int_eq(tparse("123456789m"), ZT_E_PARSE);
	ck_assert_int_eq(tparse("000000001S"), ZT_E_PARSE);
	ck_assert_int_eq(tparse("99999999999999999999H"), ZT_E_PARSE);
}
END_TEST

START_TEST(grpc_timeout_rejects_missing_unit_junk_and_empty)
{
	static const char *const bad[] = {
	        "",    "5",   "12345678", "m",    "S",   "1h", "1s",   "1x",   "1 m", " 1m",
	        "1m ", "-1m", "+1m",      "1.5S", "1mm", "m1", "0x1m", "1\0m", "１m", "1e3m",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(tparse(bad[i]) == ZT_E_PARSE, "accepted '%s'", bad[i]);
	/* Embedded NUL inside the given length. */
	ck_assert_int_eq(zt_grpc_timeout_parse("1\0m", 3), ZT_E_PARSE);
}
END_TEST

START_TEST(grpc_timeout_reads_only_the_given_length)
{
	ck_assert_int_eq(zt_grpc_timeout_parse("250mXYZ", 4), 250);
	ck_assert_int_eq(zt_grpc_timeout_parse("250", 0), ZT_E_PARSE);
}
END_TEST

Suite *grpc_suite(void);
Suite *grpc_suite(void)
{
	Suite *s = suite_create("grpc");
	TCase *tc = tcase_create("reader");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, expected_setup, expected_teardown);
	tcase_add_test(tc, grpc_reader_same_messages_for_every_two_chunk_split);
	tcase_add_test(tc, grpc_reader_same_messages_fed_one_byte_at_a_time);
	tcase_add_test(tc, grpc_reader_same_messages_in_one_chunk);
	tcase_add_test(tc, grpc_reader_empty_feed_delivers_nothing);
	tcase_add_test(tc, grpc_reader_refuses_message_over_max_before_buffering_body);
	tcase_add_test(tc, grpc_reader_refuses_largest_length_prefix);
	tcase_add_test(tc, grpc_reader_accepts_message_of_exactly_max);
	tcase_add_test(tc, grpc_reader_refuses_compressed_flag_as_unsupported);
	tcase_add_test(tc, grpc_reader_refuses_every_other_flag_as_protocol_error);
	tcase_add_test(tc, grpc_reader_bad_flag_after_good_message_delivers_the_good_one_only);
	tcase_add_test(tc, grpc_reader_callback_error_stops_feeding_whole_messages);
	tcase_add_test(tc, grpc_reader_callback_error_stops_feeding_buffered_message);
	tcase_add_test(tc, grpc_reader_partial_inside_prefix_and_body_only);
	suite_add_tcase(s, tc);

	tc = tcase_create("prefix");
	tcase_add_test(tc, grpc_frame_prefix_is_zero_flag_and_big_endian_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeout");
	tcase_add_test(tc, grpc_timeout_parses_every_unit_to_ms);
	tcase_add_test(tc, grpc_timeout_sub_millisecond_rounds_up_not_to_zero);
	tcase_add_test(tc, grpc_timeout_accepts_eight_digits);
	tcase_add_test(tc, grpc_timeout_rejects_nine_or_more_digits);
	tcase_add_test(tc, grpc_timeout_rejects_missing_unit_junk_and_empty);
	tcase_add_test(tc, grpc_timeout_reads_only_the_given_length);
	suite_add_tcase(s, tc);
	return s;
}
