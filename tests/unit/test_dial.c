/* Outgoing connections by name (protocol/dial.h) on loopback: IP literals and names connect,
 * refused ports report the errno, the callback never runs inside start and never after
 * cancel, and bad arguments are refused up front. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocol/dial.h"
#include "runtime/err.h"
#include "runtime/loop.h"

static struct zt_loop *loop;
static int lfd = -1, done_fd, done_err, calls;
static uint16_t port;

static void on_dial(int fd, int err, void *arg)
{
	ck_assert_ptr_eq(arg, &calls);
	calls++;
	done_fd = fd;
	done_err = err;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wait_done(void)
{
	uint64_t until = now_ms() + 5000;

	while (calls == 0 && now_ms() < until)
		zt_loop_run_once(loop, 10);
	ck_assert_int_eq(calls, 1);
}

static void setup(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);

	ck_assert_int_eq(zt_loop_new(&loop), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	getsockname(lfd, (struct sockaddr *)&sin, &sl);
	port = ntohs(sin.sin_port);
	calls = 0;
	done_fd = -1;
	done_err = 0;
}

static void teardown(void)
{
	if (lfd >= 0)
		close(lfd);
	lfd = -1;
	zt_loop_free(loop);
}

START_TEST(dial_connects_to_an_ip_literal_from_the_loop)
{
	int err = 0;
	struct zt_dial *d = zt_dial_start(loop, "127.0.0.1", port, 2000, on_dial, &calls, &err);

	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(calls, 0); /* never inside start */
	wait_done();
	ck_assert_int_eq(done_err, 0);
	ck_assert_int_ge(done_fd, 0);
	close(done_fd);
}
END_TEST

START_TEST(dial_resolves_a_name_and_skips_addresses_that_refuse)
{
	int err = 0;

	/* localhost may list ::1 first, where nothing listens: the next address is tried. */
	ck_assert_ptr_nonnull(zt_dial_start(loop, "localhost", port, 3000, on_dial, &calls, &err));
	wait_done();
	ck_assert_int_eq(done_err, 0);
	ck_assert_int_ge(done_fd, 0);
	close(done_fd);
}
END_TEST

START_TEST(dial_reports_a_refused_port)
{
	int err = 0;

	close(lfd);
	lfd = -1;
	ck_assert_ptr_nonnull(zt_dial_start(loop, "127.0.0.1", port, 2000, on_dial, &calls, &err));
	wait_done();
	ck_assert_int_eq(done_fd, -1);
	ck_assert_int_eq(done_err, -ECONNREFUSED);
}
END_TEST

START_TEST(dial_cancelled_never_calls_back)
{
	int err = 0;
	struct zt_dial *a = zt_dial_start(loop, "127.0.0.1", port, 2000, on_dial, &calls, &err);
	struct zt_dial *b = zt_dial_start(loop, "localhost", port, 2000, on_dial, &calls, &err);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	zt_dial_cancel(a);
	zt_dial_cancel(b);
	zt_dial_cancel(NULL);
	for (int i = 0; i < 20; i++)
		zt_loop_run_once(loop, 10);
	ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(dial_refuses_bad_arguments)
{
	char longname[300];
	int err = 0;

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_ptr_null(zt_dial_start(loop, "", port, 1000, on_dial, &calls, &err));
	ck_assert_int_eq(err, ZT_E_RANGE);
	ck_assert_ptr_null(zt_dial_start(loop, "127.0.0.1", 0, 1000, on_dial, &calls, &err));
	ck_assert_ptr_null(zt_dial_start(loop, "127.0.0.1", port, 0, on_dial, &calls, &err));
	ck_assert_ptr_null(zt_dial_start(loop, longname, port, 1000, on_dial, &calls, &err));
	ck_assert_int_eq(err, ZT_E_RANGE);
}
END_TEST

Suite *dial_suite(void);
Suite *dial_suite(void)
{
	Suite *s = suite_create("dial");
	TCase *t = tcase_create("dial");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, dial_connects_to_an_ip_literal_from_the_loop);
	tcase_add_test(t, dial_resolves_a_name_and_skips_addresses_that_refuse);
	tcase_add_test(t, dial_reports_a_refused_port);
	tcase_add_test(t, dial_cancelled_never_calls_back);
	tcase_add_test(t, dial_refuses_bad_arguments);
	suite_add_tcase(s, t);
	return s;
}
