/* Whole-file helpers (runtime/file.h): bounded reads, atomic replacement with the final
 * mode, directory creation. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/file.h"

static char tmpdir[64];
static char pbuf[256];

static const char *path(const char *name)
{
	snprintf(pbuf, sizeof(pbuf), "%s/%s", tmpdir, name);
	return pbuf;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zt-file-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int count_entries(void)
{
	char cmd[128], line[256];
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -A %s", tmpdir);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while (fgets(line, sizeof(line), p))
		n++;
	pclose(p);
	return n;
}

START_TEST(file_write_atomic_then_read_back_with_mode)
{
	char *buf;
	size_t len;
	struct stat st;

	ck_assert_int_eq(zt_file_write_atomic(path("a"), "hello\0world", 11, 0640), 0);
	ck_assert_int_eq(stat(path("a"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0640);
	ck_assert_int_eq(zt_file_read(path("a"), 11, &buf, &len), 0);
	ck_assert_uint_eq(len, 11);
	ck_assert_int_eq(memcmp(buf, "hello\0world", 12), 0); /* NUL-terminated too */
	free(buf);
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

START_TEST(file_write_atomic_replaces_existing_file)
{
	char *buf;
	size_t len;

	ck_assert_int_eq(zt_file_write_atomic(path("a"), "old contents", 12, 0600), 0);
	ck_assert_int_eq(zt_file_write_atomic(path("a"), "new", 3, 0600), 0);
	ck_assert_int_eq(zt_file_read(path("a"), 100, &buf, &len), 0);
	ck_assert_str_eq(buf, "new");
	free(buf);
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

START_TEST(file_write_atomic_into_missing_directory_fails_cleanly)
{
	ck_assert_int_eq(zt_file_write_atomic(path("nodir/a"), "x", 1, 0600), -ENOENT);
	ck_assert_int_eq(count_entries(), 0);
}
END_TEST

START_TEST(file_read_refuses_over_bound_missing_and_directories)
{
	char *buf = (char *)1;
	size_t len = 7;

	ck_assert_int_eq(zt_file_write_atomic(path("a"), "12345", 5, 0600), 0);
	ck_assert_int_eq(zt_file_read(path("a"), 4, &buf, &len), ZT_E_TOOBIG);
	ck_assert_ptr_null(buf);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(zt_file_read(path("a"), 5, &buf, &len), 0);
	free(buf);
	ck_assert_int_eq(zt_file_read(path("missing"), 5, &buf, &len), -ENOENT);
	ck_assert_int_eq(zt_file_read(tmpdir, 5, &buf, &len), -EINVAL);
}
END_TEST

START_TEST(file_read_of_empty_file_gives_empty_string)
{
	char *buf;
	size_t len;

	ck_assert_int_eq(zt_file_write_atomic(path("e"), "", 0, 0600), 0);
	ck_assert_int_eq(zt_file_read(path("e"), 0, &buf, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(buf, "");
	free(buf);
}
END_TEST

START_TEST(file_mkdir_creates_once_and_refuses_a_file_in_the_way)
{
	struct stat st;

	ck_assert_int_eq(zt_file_mkdir(path("d"), 0700), 0);
	ck_assert_int_eq(stat(path("d"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(zt_file_mkdir(path("d"), 0700), 0);
	ck_assert_int_eq(zt_file_write_atomic(path("f"), "x", 1, 0600), 0);
	ck_assert_int_eq(zt_file_mkdir(path("f"), 0700), -ENOTDIR);
	ck_assert_int_eq(zt_file_mkdir(path("no/such"), 0700), -ENOENT);
}
END_TEST

Suite *file_suite(void);
Suite *file_suite(void)
{
	Suite *s = suite_create("file");
	TCase *tc = tcase_create("file");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, file_write_atomic_then_read_back_with_mode);
	tcase_add_test(tc, file_write_atomic_replaces_existing_file);
	tcase_add_test(tc, file_write_atomic_into_missing_directory_fails_cleanly);
	tcase_add_test(tc, file_read_refuses_over_bound_missing_and_directories);
	tcase_add_test(tc, file_read_of_empty_file_gives_empty_string);
	tcase_add_test(tc, file_mkdir_creates_once_and_refuses_a_file_in_the_way);
	suite_add_tcase(s, tc);
	return s;
}
