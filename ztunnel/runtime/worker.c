/* Worker threads. Invariant: a worker's quit flag is written and read on its own thread only
 * (set by a posted closure), and its loop refuses posts before the thread flushes the queue
 * for the last time, so every accepted post runs exactly once. */
#include "runtime/worker.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/mem.h"

struct worker {
	struct zt_loop *loop;
	pthread_t thread;
	bool started;
	bool quit; /* worker's thread only */
	char name[32]; /* the thread's name: its first 15 bytes */
	sem_t bound; /* posted once the thread owns the loop */
};

struct zt_workers {
	size_t n;
	struct worker *w;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	zt_loop_bind_thread(w->loop);
	sem_post(&w->bound);
	w->name[15] = '\0';
	pthread_setname_np(pthread_self(), w->name);
	while (!w->quit)
		if (zt_loop_run_once(w->loop, -1) < 0)
			break;
	for (int i = 0; i < 4; i++) /* what the last closures deferred (closes reporting) */
		zt_loop_run_once(w->loop, 0);
	zt_loop_post_close(w->loop);
	zt_loop_run_once(w->loop, 0); /* what was posted before the close */
	return NULL;
}

static void on_quit(void *arg)
{
	((struct worker *)arg)->quit = true;
}

int zt_workers_new(struct zt_workers **out, size_t n, const char *name)
{
	struct zt_workers *ws = xcalloc(1, sizeof(*ws));
	sigset_t all, old;
	int rc = 0;

	*out = NULL;
	if (n == 0) {
		free(ws);
		return -EINVAL;
	}
	ws->w = xcalloc(n, sizeof(*ws->w));
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* inherited by the threads */
	for (; ws->n < n; ws->n++) {
		struct worker *w = &ws->w[ws->n];
		snprintf(w->name, sizeof(w->name), "%.8s-%zu", name ? name : "worker", ws->n);
		if ((rc = zt_loop_new(&w->loop)) < 0)
			break;
		sem_init(&w->bound, 0, 0);
		if ((rc = -pthread_create(&w->thread, NULL, worker_main, w)) < 0) {
			sem_destroy(&w->bound);
			zt_loop_free(w->loop);
			w->loop = NULL;
			break;
		}
		/* From here on, zt_loop_call from this thread posts rather than runs inline. */
		while (sem_wait(&w->bound) < 0 && errno == EINTR)
			;
		sem_destroy(&w->bound);
		w->started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		zt_workers_free(ws);
		return rc;
	}
	*out = ws;
	return 0;
}

size_t zt_workers_count(const struct zt_workers *ws)
{
	return ws->n;
}

struct zt_loop *zt_workers_loop(const struct zt_workers *ws, size_t i)
{
	return i < ws->n ? ws->w[i].loop : NULL;
}

void zt_workers_free(struct zt_workers *ws)
{
	if (!ws)
		return;
	for (size_t i = 0; i < ws->n; i++)
		if (ws->w[i].started && zt_loop_post(ws->w[i].loop, on_quit, &ws->w[i]) < 0)
			abort(); /* only this function closes a worker's loop */
	for (size_t i = 0; i < ws->n; i++) {
		if (ws->w[i].started)
			pthread_join(ws->w[i].thread, NULL);
		zt_loop_free(ws->w[i].loop);
	}
	free(ws->w);
	free(ws);
}
