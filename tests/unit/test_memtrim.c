/* runtime/memtrim: after a spike of small allocations is freed, a check hands the pages back
 * (RSS drops); with little held free it does nothing. Needs glibc's own malloc, so the case
 * is left out (and says so) under AddressSanitizer and ThreadSanitizer, whose allocators
 * replace it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/loop.h"
#include "runtime/memtrim.h"
#include "loop_fixture.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define OTHER_MALLOC 1
#endif

#if !defined(OTHER_MALLOC)
static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%ld %ld", &pages, &rss), 2);
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

START_TEST(memtrim_returns_freed_spike_memory_to_the_system)
{
	enum { N = 60000, SIZE = 1000 };
	struct zt_loop *loop;
	struct zt_memtrim m;
	char **v = calloc(N, sizeof(*v));
	long before, after;

	ck_assert_int_eq(zt_loop_new(&loop), 0);
	zt_memtrim_start(&m, loop, 0, 0);
	for (int i = 0; i < N; i++) {
		v[i] = malloc(SIZE);
		memset(v[i], 1, SIZE);
	}
	/* The last block pins the heap top, so only a trim can release the pages below it. */
	for (int i = 0; i < N - 1; i++)
		free(v[i]);
	before = rss_kib();
	ck_assert_int_eq(zt_memtrim_check(&m), 1);
	after = rss_kib();
	ck_assert_msg(before - after > 40 * 1024, "RSS %ld KiB -> %ld KiB", before, after);
	ck_assert_uint_eq(m.trims, 1);
	/* Nothing touched since: no second trim. */
	ck_assert_int_eq(zt_memtrim_check(&m), 0);
	/* A second spike reuses the free chunks; freed again, it is trimmed again. */
	for (int i = 0; i < N - 1; i++) {
		v[i] = malloc(SIZE);
		memset(v[i], 2, SIZE);
	}
	for (int i = 0; i < N - 1; i++)
		free(v[i]);
	before = rss_kib();
	ck_assert_int_eq(zt_memtrim_check(&m), 1);
	after = rss_kib();
	ck_assert_msg(before - after > 40 * 1024, "second spike: RSS %ld KiB -> %ld KiB", before,
	              after);
	free(v[N - 1]);
	free(v);
	zt_memtrim_stop(&m);
	zt_loop_free(loop);
}
END_TEST

/* A trim while half the spike is still in use; the rest freed later is trimmed at the next
 * check, though RSS did not grow since the first trim. */
START_TEST(memtrim_trims_memory_freed_after_a_trim)
{
	enum { N = 60000, SIZE = 1000 };
	struct zt_loop *loop;
	struct zt_memtrim m;
	char **v = calloc(N, sizeof(*v));
	long before, after;

	ck_assert_int_eq(zt_loop_new(&loop), 0);
	zt_memtrim_start(&m, loop, 0, 0);
	for (int i = 0; i < N; i++) {
		v[i] = malloc(SIZE);
		memset(v[i], 1, SIZE);
	}
	for (int i = 0; i < N / 2; i++)
		free(v[i]);
	ck_assert_int_eq(zt_memtrim_check(&m), 1);
	for (int i = N / 2; i < N - 1; i++)
		free(v[i]);
	before = rss_kib();
	ck_assert_int_eq(zt_memtrim_check(&m), 1);
	after = rss_kib();
	ck_assert_msg(before - after > 20 * 1024, "RSS %ld KiB -> %ld KiB", before, after);
	ck_assert_int_eq(zt_memtrim_check(&m), 0);
	free(v[N - 1]);
	free(v);
	zt_memtrim_stop(&m);
	zt_loop_free(loop);
}
END_TEST
#endif

Suite *memtrim_suite(void);
Suite *memtrim_suite(void)
{
	Suite *s = suite_create("memtrim");
	TCase *tc = tcase_create("core");

#if defined(OTHER_MALLOC)
	fx_skip("memtrim", "memtrim_returns_freed_spike_memory_to_the_system",
	        "the sanitizer replaces malloc");
	fx_skip("memtrim", "memtrim_trims_memory_freed_after_a_trim", "the sanitizer replaces malloc");
#else
	tcase_add_test(tc, memtrim_returns_freed_spike_memory_to_the_system);
	tcase_add_test(tc, memtrim_trims_memory_freed_after_a_trim);
#endif
	suite_add_tcase(s, tc);
	return s;
}
