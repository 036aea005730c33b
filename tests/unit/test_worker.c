/* Cross-thread posts (zt_loop_post, zt_loop_call) and the worker set (runtime/worker.h). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "runtime/loop.h"
#include "runtime/worker.h"

#define POSTERS   8
#define PER_POSTER 2000

struct counter {
	struct zt_loop *loop;
	long n, want; /* loop's thread only */
	pthread_t ran_on;
	int last_seq[POSTERS]; /* per poster, the last sequence number seen */
	bool in_order;
};

struct msg {
	struct counter *c;
	int poster, seq;
};

static void on_msg(void *arg)
{
	struct msg *m = arg;
	struct counter *c = m->c;

	c->ran_on = pthread_self();
	if (m->seq != c->last_seq[m->poster] + 1)
		c->in_order = false;
	c->last_seq[m->poster] = m->seq;
	if (++c->n == c->want)
		zt_loop_stop(c->loop);
	free(m);
}

struct poster {
	struct counter *c;
	int id;
	pthread_t t;
};

static void *post_many(void *arg)
{
	struct poster *p = arg;

	for (int i = 1; i <= PER_POSTER; i++) {
		struct msg *m = malloc(sizeof(*m));
		*m = (struct msg){.c = p->c, .poster = p->id, .seq = i};
		ck_assert_int_eq(zt_loop_post(p->c->loop, on_msg, m), 0);
	}
	return NULL;
}

static void counter_init(struct counter *c, struct zt_loop *loop, long want)
{
	*c = (struct counter){.loop = loop, .want = want, .in_order = true};
	for (int i = 0; i < POSTERS; i++)
		c->last_seq[i] = 0;
}

static void on_deadline(struct zt_timer *t, void *arg)
{
	(void)arg;
	zt_loop_stop(t->loop);
}

START_TEST(post_from_another_thread_runs_on_the_loops_thread)
{
	struct zt_loop *loop;
	struct counter c;
	struct poster p;
	struct zt_timer deadline = {0};

	ck_assert_int_eq(zt_loop_new(&loop), 0);
	counter_init(&c, loop, PER_POSTER);
	p = (struct poster){.c = &c, .id = 0};
	ck_assert_int_eq(pthread_create(&p.t, NULL, post_many, &p), 0);
	zt_timer_start(loop, &deadline, 30000, on_deadline, NULL);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	pthread_join(p.t, NULL);
	ck_assert_int_eq(c.n, PER_POSTER);
	ck_assert(c.in_order);
	ck_assert(pthread_equal(c.ran_on, pthread_self()));
	zt_timer_stop(&deadline);
	zt_loop_free(loop);
}
END_TEST

START_TEST(many_posters_each_seen_once_in_their_own_order)
{
	struct zt_loop *loop;
	struct counter c;
	struct poster p[POSTERS];
	struct zt_timer deadline = {0};

	ck_assert_int_eq(zt_loop_new(&loop), 0);
	counter_init(&c, loop, (long)POSTERS * PER_POSTER);
	for (int i = 0; i < POSTERS; i++) {
		p[i] = (struct poster){.c = &c, .id = i};
		ck_assert_int_eq(pthread_create(&p[i].t, NULL, post_many, &p[i]), 0);
	}
	zt_timer_start(loop, &deadline, 30000, on_deadline, NULL);
	ck_assert_int_eq(zt_loop_run(loop), 0);
	for (int i = 0; i < POSTERS; i++)
		pthread_join(p[i].t, NULL);
	ck_assert_int_eq(c.n, (long)POSTERS * PER_POSTER);
	ck_assert(c.in_order);
	for (int i = 0; i < POSTERS; i++)
		ck_assert_int_eq(c.last_seq[i], PER_POSTER);
	zt_timer_stop(&deadline);
	zt_loop_free(loop);
}
END_TEST

struct self {
	struct zt_loop *loop;
	int runs;
	bool inside; /* set while the posting call is on the stack */
	bool ran_inside;
};

static void on_self(void *arg)
{
	struct self *s = arg;

	if (s->inside)
		s->ran_inside = true;
	if (++s->runs < 3) {
		s->inside = true;
		ck_assert_int_eq(zt_loop_post(s->loop, on_self, s), 0);
		s->inside = false;
	} else {
		zt_loop_stop(s->loop);
	}
}

START_TEST(post_to_self_runs_in_a_later_iteration_not_inside_the_call)
{
	struct self s = {0};
	struct zt_timer deadline = {0};

	ck_assert_int_eq(zt_loop_new(&s.loop), 0);
	s.inside = true;
	ck_assert_int_eq(zt_loop_post(s.loop, on_self, &s), 0);
	s.inside = false;
	ck_assert_int_eq(s.runs, 0);
	zt_timer_start(s.loop, &deadline, 30000, on_deadline, NULL);
	ck_assert_int_eq(zt_loop_run(s.loop), 0);
	ck_assert_int_eq(s.runs, 3);
	ck_assert(!s.ran_inside);
	zt_timer_stop(&deadline);
	zt_loop_free(s.loop);
}
END_TEST

static void bump(void *arg)
{
	(*(int *)arg)++;
}

START_TEST(post_after_close_is_refused_and_queued_ones_still_run)
{
	struct zt_loop *loop;
	int n = 0;

	ck_assert_int_eq(zt_loop_new(&loop), 0);
	ck_assert_int_eq(zt_loop_post(loop, bump, &n), 0);
	zt_loop_post_close(loop);
	ck_assert_int_eq(zt_loop_post(loop, bump, &n), -ESHUTDOWN);
	ck_assert_int_eq(zt_loop_call(loop, bump, &n), 0); /* own thread: runs inline */
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(zt_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(n, 2);
	zt_loop_free(loop);
}
END_TEST

struct where {
	struct zt_loop *loop;
	pthread_t thread;
	bool on_thread;
	struct zt_loop *current;
};

static void note_thread(void *arg)
{
	struct where *w = arg;

	w->thread = pthread_self();
	w->on_thread = zt_loop_on_thread(w->loop);
	w->current = zt_loop_current();
}

START_TEST(workers_run_calls_on_their_own_threads)
{
	struct zt_workers *ws;
	struct where w[3];

	ck_assert_int_eq(zt_workers_new(&ws, 3, "test"), 0);
	ck_assert_uint_eq(zt_workers_count(ws), 3);
	ck_assert_ptr_null(zt_workers_loop(ws, 3));
	for (size_t i = 0; i < 3; i++) {
		w[i] = (struct where){.loop = zt_workers_loop(ws, i)};
		ck_assert(!zt_loop_on_thread(w[i].loop));
		ck_assert_int_eq(zt_loop_call(w[i].loop, note_thread, &w[i]), 0);
		ck_assert(w[i].on_thread);
		ck_assert_ptr_eq(w[i].current, w[i].loop);
		ck_assert(!pthread_equal(w[i].thread, pthread_self()));
	}
	ck_assert(!pthread_equal(w[0].thread, w[1].thread));
	ck_assert(!pthread_equal(w[1].thread, w[2].thread));
	zt_workers_free(ws);
}
END_TEST

struct late {
	atomic_int runs;
};

static void count_late(void *arg)
{
	atomic_fetch_add(&((struct late *)arg)->runs, 1);
}

START_TEST(workers_free_runs_what_was_posted_before_it)
{
	struct zt_workers *ws;
	struct late l = {0};

	ck_assert_int_eq(zt_workers_new(&ws, 2, "test"), 0);
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(zt_loop_post(zt_workers_loop(ws, (size_t)i % 2), count_late, &l), 0);
	zt_workers_free(ws);
	ck_assert_int_eq(atomic_load(&l.runs), 500);
	ck_assert_int_eq(zt_workers_new(&ws, 0, "test"), -EINVAL);
}
END_TEST

Suite *worker_suite(void);
Suite *worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *p = tcase_create("post"), *w = tcase_create("workers");

	tcase_add_test(p, post_from_another_thread_runs_on_the_loops_thread);
	tcase_add_test(p, many_posters_each_seen_once_in_their_own_order);
	tcase_add_test(p, post_to_self_runs_in_a_later_iteration_not_inside_the_call);
	tcase_add_test(p, post_after_close_is_refused_and_queued_ones_still_run);
	suite_add_tcase(s, p);
	tcase_add_test(w, workers_run_calls_on_their_own_threads);
	tcase_add_test(w, workers_free_runs_what_was_posted_before_it);
	suite_add_tcase(s, w);
	return s;
}
