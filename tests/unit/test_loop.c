#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/loop.h"

static struct zt_loop *loop;

static void setup(void)
{
	ck_assert_int_eq(zt_loop_new(&loop), 0);
}

static void teardown(void)
{
	zt_loop_free(loop);
	loop = NULL;
}

/* ---- timers ---- */

struct rec {
	int order[64];
	int n;
};

struct tctx {
	struct zt_timer t;
	struct rec *rec;
	int id;
	struct zt_timer *cancel; /* timer to stop from this callback */
	int rearm;		 /* times left to re-arm itself */
};

static void on_timer(struct zt_timer *t, void *arg)
{
	struct tctx *c = arg;

	ck_assert_ptr_eq(t, &c->t);
	ck_assert(!zt_timer_active(t));
	c->rec->order[c->rec->n++] = c->id;
	if (c->cancel)
		zt_timer_stop(c->cancel);
	if (c->rearm > 0) {
		c->rearm--;
		zt_timer_start(loop, t, 0, on_timer, c);
	}
}

START_TEST(timers_fire_in_due_order_then_start_order)
{
	struct rec rec = {0};
	struct tctx c[4] = {{.rec = &rec, .id = 0}, {.rec = &rec, .id = 1}, {.rec = &rec, .id = 2},
			    {.rec = &rec, .id = 3}};

	zt_timer_start(loop, &c[0].t, 30, on_timer, &c[0]);
	zt_timer_start(loop, &c[1].t, 10, on_timer, &c[1]);
	zt_timer_start(loop, &c[2].t, 10, on_timer, &c[2]);
	zt_timer_start(loop, &c[3].t, 0, on_timer, &c[3]);
	ck_assert_uint_eq(zt_loop_timer_count(loop), 4);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(rec.n, 4);
	ck_assert_int_eq(rec.order[0], 3);
	ck_assert_int_eq(rec.order[1], 1);
	ck_assert_int_eq(rec.order[2], 2);
	ck_assert_int_eq(rec.order[3], 0);
	ck_assert_uint_eq(zt_loop_timer_count(loop), 0);
}
END_TEST

START_TEST(timer_waits_at_least_its_delay)
{
	struct rec rec = {0};
	struct tctx c = {.rec = &rec};
	uint64_t start = zt_loop_update_time(loop);

	zt_timer_start(loop, &c.t, 50, on_timer, &c);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(rec.n, 1);
	ck_assert_uint_ge(zt_loop_now(loop) - start, 50);
}
END_TEST

START_TEST(timer_stopped_by_earlier_callback_in_same_iteration_never_fires)
{
	struct rec rec = {0};
	struct tctx a = {.rec = &rec, .id = 1}, b = {.rec = &rec, .id = 2};

	a.cancel = &b.t;
	zt_timer_start(loop, &a.t, 0, on_timer, &a);
	zt_timer_start(loop, &b.t, 0, on_timer, &b);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(rec.n, 1);
	ck_assert_int_eq(rec.order[0], 1);
}
END_TEST

START_TEST(timer_stopping_itself_in_callback_is_harmless)
{
	struct rec rec = {0};
	struct tctx a = {.rec = &rec, .id = 7};

	a.cancel = &a.t;
	zt_timer_start(loop, &a.t, 0, on_timer, &a);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(rec.n, 1);
	zt_timer_stop(&a.t);
	ck_assert(!zt_timer_active(&a.t));
}
END_TEST

START_TEST(timer_rearmed_from_its_callback_fires_again_next_iteration)
{
	struct rec rec = {0};
	struct tctx a = {.rec = &rec, .id = 5, .rearm = 3};

	zt_timer_start(loop, &a.t, 0, on_timer, &a);
	/* One iteration fires it once even though the re-armed timer is already due. */
	ck_assert_int_eq(zt_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(rec.n, 1);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(rec.n, 4);
}
END_TEST

START_TEST(restarting_an_armed_timer_moves_it)
{
	struct rec rec = {0};
	struct tctx a = {.rec = &rec, .id = 1}, b = {.rec = &rec, .id = 2};

	zt_timer_start(loop, &a.t, 0, on_timer, &a);
	zt_timer_start(loop, &b.t, 5, on_timer, &b);
	zt_timer_start(loop, &a.t, 20, on_timer, &a);
	ck_assert_uint_eq(zt_loop_timer_count(loop), 2);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(rec.n, 2);
	ck_assert_int_eq(rec.order[0], 2);
	ck_assert_int_eq(rec.order[1], 1);
}
END_TEST

struct many {
	struct zt_timer t;
	uint64_t due;
	uint64_t *last;
	int *fired;
};

static void on_many(struct zt_timer *t, void *arg)
{
	struct many *m = arg;

	(void)t;
	ck_assert_uint_ge(m->due, *m->last);
	*m->last = m->due;
	(*m->fired)++;
}

START_TEST(twenty_thousand_timers_with_half_cancelled_fire_sorted)
{
	enum { N = 20000 };
	struct many *m = calloc(N, sizeof(*m));
	uint64_t last = 0;
	int fired = 0;

	srand(42);
	for (int i = 0; i < N; i++) {
		m[i].due = (uint64_t)(rand() % 40);
		m[i].last = &last;
		m[i].fired = &fired;
		zt_timer_start(loop, &m[i].t, m[i].due, on_many, &m[i]);
	}
	for (int i = 0; i < N; i += 2)
		zt_timer_stop(&m[i].t);
	ck_assert_uint_eq(zt_loop_timer_count(loop), N / 2);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(fired, N / 2);
	free(m);
}
END_TEST

START_TEST(zeroed_timer_is_inactive_and_stop_is_idempotent)
{
	struct zt_timer t = {0};

	ck_assert(!zt_timer_active(&t));
	zt_timer_stop(&t);
	zt_timer_init(&t);
	ck_assert(!zt_timer_active(&t));
}
END_TEST

/* ---- defers ---- */

struct dctx {
	struct zt_defer d;
	struct rec *rec;
	int id;
	struct zt_defer *cancel;
	struct dctx *spawn;
};

static void on_defer(struct zt_defer *d, void *arg)
{
	struct dctx *c = arg;

	(void)d;
	c->rec->order[c->rec->n++] = c->id;
	if (c->cancel)
		zt_defer_stop(c->cancel);
	if (c->spawn)
		zt_defer_start(loop, &c->spawn->d, on_defer, c->spawn);
}

START_TEST(defers_run_once_in_start_order)
{
	struct rec rec = {0};
	struct dctx a = {.rec = &rec, .id = 1}, b = {.rec = &rec, .id = 2};

	zt_defer_start(loop, &a.d, on_defer, &a);
	zt_defer_start(loop, &b.d, on_defer, &b);
	zt_defer_start(loop, &a.d, on_defer, &a); /* already queued: no effect */
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(rec.n, 2);
	ck_assert_int_eq(rec.order[0], 1);
	ck_assert_int_eq(rec.order[1], 2);
}
END_TEST

START_TEST(defer_stopped_by_another_defer_never_runs)
{
	struct rec rec = {0};
	struct dctx a = {.rec = &rec, .id = 1}, b = {.rec = &rec, .id = 2},
		    c = {.rec = &rec, .id = 3};

	a.cancel = &b.d;
	zt_defer_start(loop, &a.d, on_defer, &a);
	zt_defer_start(loop, &b.d, on_defer, &b);
	zt_defer_start(loop, &c.d, on_defer, &c);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(rec.n, 2);
	ck_assert_int_eq(rec.order[0], 1);
	ck_assert_int_eq(rec.order[1], 3);
}
END_TEST

START_TEST(defer_started_from_a_defer_runs_in_the_next_round)
{
	struct rec rec = {0};
	struct dctx b = {.rec = &rec, .id = 2}, a = {.rec = &rec, .id = 1, .spawn = &b};

	zt_defer_start(loop, &a.d, on_defer, &a);
	ck_assert_int_eq(zt_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(rec.n, 1);
	ck_assert_int_eq(zt_loop_run_once(loop, 1000), 0); /* must not block: a defer is due */
	ck_assert_int_eq(rec.n, 2);
	ck_assert_int_eq(rec.order[1], 2);
}
END_TEST

/* ---- io ---- */

struct ioctx {
	struct zt_io io;
	int fd;
	int reads;
	unsigned last;
	struct zt_io *stop_other;
};

static void on_io(struct zt_io *io, unsigned events, void *arg)
{
	struct ioctx *c = arg;
	char buf[16];

	c->reads++;
	c->last = events;
	if (events & ZT_IO_READ) {
		ssize_t n = read(io->fd, buf, sizeof(buf));
		if (n == 0)
			zt_io_stop(io);
	}
	if (c->stop_other)
		zt_io_stop(c->stop_other);
}

START_TEST(io_watcher_reports_readable_pipe_and_eof)
{
	int p[2];
	struct ioctx c = {0};

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(zt_io_start(loop, &c.io, p[0], ZT_IO_READ, on_io, &c), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(zt_loop_run_once(loop, 1000), 0);
	ck_assert_int_eq(c.reads, 1);
	ck_assert(c.last & ZT_IO_READ);
	close(p[1]);
	ck_assert_int_eq(zt_loop_run(loop), 0); /* reads EOF, stops itself, loop empties */
	ck_assert_int_eq(c.reads, 2);
	ck_assert(!c.io.active);
	close(p[0]);
}
END_TEST

START_TEST(io_watcher_stopped_in_same_batch_never_sees_its_event)
{
	int p1[2], p2[2];
	struct ioctx a = {0}, b = {0};

	ck_assert_int_eq(pipe(p1), 0);
	ck_assert_int_eq(pipe(p2), 0);
	a.stop_other = &b.io;
	b.stop_other = &a.io;
	ck_assert_int_eq(zt_io_start(loop, &a.io, p1[0], ZT_IO_READ, on_io, &a), 0);
	ck_assert_int_eq(zt_io_start(loop, &b.io, p2[0], ZT_IO_READ, on_io, &b), 0);
	ck_assert_int_eq(write(p1[1], "x", 1), 1);
	ck_assert_int_eq(write(p2[1], "x", 1), 1);
	ck_assert_int_eq(zt_loop_run_once(loop, 1000), 0);
	/* Exactly one ran; it stopped the other before its pending event was delivered. */
	ck_assert_int_eq(a.reads + b.reads, 1);
	zt_io_stop(&a.io);
	zt_io_stop(&b.io);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}
END_TEST

START_TEST(io_set_switches_interest_to_write)
{
	int p[2];
	struct ioctx c = {0};

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(zt_io_start(loop, &c.io, p[1], 0, on_io, &c), 0);
	ck_assert_int_eq(zt_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(c.reads, 0);
	ck_assert_int_eq(zt_io_set(&c.io, ZT_IO_WRITE), 0);
	ck_assert_int_eq(zt_loop_run_once(loop, 1000), 0);
	ck_assert_int_eq(c.reads, 1);
	ck_assert(c.last & ZT_IO_WRITE);
	zt_io_stop(&c.io);
	ck_assert_int_lt(zt_io_set(&c.io, ZT_IO_READ), 0);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(io_start_on_a_bad_fd_returns_errno)
{
	struct ioctx c = {0};

	ck_assert_int_lt(zt_io_start(loop, &c.io, -1, ZT_IO_READ, on_io, &c), 0);
	ck_assert(!c.io.active);
}
END_TEST

/* ---- signals and stop ---- */

struct sctx {
	struct zt_signal s;
	int count;
	int signo;
};

static void on_signal(struct zt_signal *s, int signo, void *arg)
{
	struct sctx *c = arg;

	c->count++;
	c->signo = signo;
	zt_signal_stop(s);
	zt_loop_stop(s->loop);
}

static void on_kick(struct zt_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	kill(getpid(), SIGUSR1);
}

START_TEST(signal_is_delivered_through_the_loop)
{
	struct sctx c = {0};
	struct zt_timer kick = {0}, guard = {0};

	ck_assert_int_eq(zt_signal_start(loop, &c.s, SIGUSR1, on_signal, &c), 0);
	zt_timer_start(loop, &kick, 1, on_kick, NULL);
	zt_timer_start(loop, &guard, 5000, on_kick, NULL);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert_int_eq(c.count, 1);
	ck_assert_int_eq(c.signo, SIGUSR1);
	ck_assert(zt_timer_active(&guard)); /* stopped by the signal, not by the guard */
	zt_timer_stop(&guard);
}
END_TEST

static void on_stop_timer(struct zt_timer *t, void *arg)
{
	(void)arg;
	zt_loop_stop(t->loop);
}

START_TEST(loop_stop_returns_with_watchers_still_active)
{
	struct zt_timer a = {0}, b = {0};

	zt_timer_start(loop, &a, 0, on_stop_timer, NULL);
	zt_timer_start(loop, &b, 10000, on_stop_timer, NULL);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	ck_assert(zt_timer_active(&b));
	zt_timer_stop(&b);
	ck_assert_int_eq(zt_loop_run(loop), 0); /* nothing left: returns at once */
}
END_TEST

Suite *loop_suite(void);
Suite *loop_suite(void)
{
	Suite *s = suite_create("loop");
	TCase *t = tcase_create("timers"), *d = tcase_create("defers"), *io = tcase_create("io"),
	      *sig = tcase_create("signals");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, timers_fire_in_due_order_then_start_order);
	tcase_add_test(t, timer_waits_at_least_its_delay);
	tcase_add_test(t, timer_stopped_by_earlier_callback_in_same_iteration_never_fires);
	tcase_add_test(t, timer_stopping_itself_in_callback_is_harmless);
	tcase_add_test(t, timer_rearmed_from_its_callback_fires_again_next_iteration);
	tcase_add_test(t, restarting_an_armed_timer_moves_it);
	tcase_add_test(t, twenty_thousand_timers_with_half_cancelled_fire_sorted);
	tcase_add_test(t, zeroed_timer_is_inactive_and_stop_is_idempotent);
	suite_add_tcase(s, t);
	tcase_add_checked_fixture(d, setup, teardown);
	tcase_add_test(d, defers_run_once_in_start_order);
	tcase_add_test(d, defer_stopped_by_another_defer_never_runs);
	tcase_add_test(d, defer_started_from_a_defer_runs_in_the_next_round);
	suite_add_tcase(s, d);
	tcase_add_checked_fixture(io, setup, teardown);
	tcase_add_test(io, io_watcher_reports_readable_pipe_and_eof);
	tcase_add_test(io, io_watcher_stopped_in_same_batch_never_sees_its_event);
	tcase_add_test(io, io_set_switches_interest_to_write);
	tcase_add_test(io, io_start_on_a_bad_fd_returns_errno);
	suite_add_tcase(s, io);
	tcase_add_checked_fixture(sig, setup, teardown);
	tcase_add_test(sig, signal_is_delivered_through_the_loop);
	tcase_add_test(sig, loop_stop_returns_with_watchers_still_active);
	suite_add_tcase(s, sig);
	return s;
}
