/* epoll event loop. Invariants: the timer heap is a min-heap on (due_ms, seq) and every armed
 * timer's slot is its heap index + 1; an io watcher stopped mid-iteration has its pending events
 * cleared from the current batch, so a callback never sees a watcher that was stopped. The
 * post queue is the only state shared between threads: it and its closed flag are touched
 * under post_lock only, and the eventfd is written whenever the queue turns non-empty. */
#include "runtime/loop.h"
#include "runtime/mem.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

struct zt_loop {
	int epfd;
	bool stopping;
	uint64_t now_ms;
	uint64_t timer_seq;
	uint64_t defer_seq;
	size_t nio;

	struct zt_timer **heap;
	size_t nheap, heap_cap;

	TAILQ_HEAD(, zt_defer) defers; /* in start order */

	int sigfd;
	sigset_t sigmask;
	struct zt_io sig_io;
	LIST_HEAD(, zt_signal) signals;
	unsigned nsignals;

	struct epoll_event events[MAX_EVENTS];
	int nevents, cur;

	pthread_t owner; /* the thread running the loop */
	atomic_int refs; /* zt_loop_free's and each zt_loop_ref's: the struct stays until 0 */
	pthread_mutex_t post_lock;
	STAILQ_HEAD(, post) posts; /* under post_lock */
	bool posts_closed;         /* under post_lock */
	int postfd;                /* eventfd: readable while posts may be queued */
	struct zt_io post_io;
};

struct post {
	STAILQ_ENTRY(post) link;
	zt_post_cb cb;
	void *arg;
};

static __thread struct zt_loop *running; /* the loop this thread is in a callback of */

static void on_posts(struct zt_io *io, unsigned events, void *arg);

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int zt_loop_new(struct zt_loop **out)
{
	struct zt_loop *loop = calloc(1, sizeof(*loop));

	*out = NULL;
	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int err = -errno;
		free(loop);
		return err;
	}
	loop->sigfd = -1;
	TAILQ_INIT(&loop->defers);
	LIST_INIT(&loop->signals);
	sigemptyset(&loop->sigmask);
	loop->now_ms = mono_ms();
	loop->owner = pthread_self();
	atomic_init(&loop->refs, 1);
	pthread_mutex_init(&loop->post_lock, NULL);
	STAILQ_INIT(&loop->posts);
	loop->postfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->postfd < 0 ||
	    zt_io_start(loop, &loop->post_io, loop->postfd, ZT_IO_READ, on_posts, loop) < 0) {
		int err = -errno;
		if (loop->postfd >= 0)
			close(loop->postfd);
		close(loop->epfd);
		pthread_mutex_destroy(&loop->post_lock);
		free(loop);
		return err;
	}
	loop->nio--; /* the post watcher alone must not keep zt_loop_run() going */
	*out = loop;
	return 0;
}

struct zt_loop *zt_loop_ref(struct zt_loop *loop)
{
	atomic_fetch_add(&loop->refs, 1);
	return loop;
}

void zt_loop_unref(struct zt_loop *loop)
{
	if (!loop || atomic_fetch_sub(&loop->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&loop->post_lock);
	free(loop);
}

void zt_loop_free(struct zt_loop *loop)
{
	if (!loop)
		return;
	pthread_mutex_lock(&loop->post_lock);
	loop->posts_closed = true;
	while (!STAILQ_EMPTY(&loop->posts)) {
		struct post *p = STAILQ_FIRST(&loop->posts);
		STAILQ_REMOVE_HEAD(&loop->posts, link);
		free(p);
	}
	pthread_mutex_unlock(&loop->post_lock);
	if (loop->sigfd >= 0) {
		sigprocmask(SIG_UNBLOCK, &loop->sigmask, NULL);
		close(loop->sigfd);
	}
	for (size_t i = 0; i < loop->nheap; i++)
		loop->heap[i]->slot = 0;
	free(loop->heap);
	loop->heap = NULL;
	close(loop->postfd);
	close(loop->epfd);
	zt_loop_unref(loop);
}

uint64_t zt_loop_now(const struct zt_loop *loop)
{
	return loop->now_ms;
}

uint64_t zt_loop_update_time(struct zt_loop *loop)
{
	loop->now_ms = mono_ms();
	return loop->now_ms;
}

void zt_loop_stop(struct zt_loop *loop)
{
	loop->stopping = true;
}

/* ---- io ---------------------------------------------------------------------------------- */

static uint32_t to_epoll(unsigned events)
{
	return (events & ZT_IO_READ ? EPOLLIN | EPOLLRDHUP : 0) | (events & ZT_IO_WRITE ? EPOLLOUT : 0);
}

int zt_io_start(struct zt_loop *loop, struct zt_io *io, int fd, unsigned events, zt_io_cb cb,
		void *arg)
{
	struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	io->loop = loop;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	io->active = true;
	loop->nio++;
	return 0;
}

int zt_io_set(struct zt_io *io, unsigned events)
{
	struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};

	if (!io->active)
		return -EINVAL;
	if (io->events == events)
		return 0;
	if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	io->events = events;
	return 0;
}

void zt_io_stop(struct zt_io *io)
{
	struct zt_loop *loop = io->loop;

	if (!io->active)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->active = false;
	loop->nio--;
	for (int i = loop->cur; i < loop->nevents; i++)
		if (loop->events[i].data.ptr == io)
			loop->events[i].data.ptr = NULL;
}

/* ---- timers: binary min-heap ------------------------------------------------------------- */

static bool before(const struct zt_timer *a, const struct zt_timer *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_set(struct zt_loop *loop, size_t i, struct zt_timer *t)
{
	loop->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct zt_loop *loop, size_t i)
{
	struct zt_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void sift_down(struct zt_loop *loop, size_t i)
{
	struct zt_timer *t = loop->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= loop->nheap)
			break;
		if (c + 1 < loop->nheap && before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

void zt_timer_init(struct zt_timer *t)
{
	memset(t, 0, sizeof(*t));
}

bool zt_timer_active(const struct zt_timer *t)
{
	return t->slot != 0;
}

void zt_timer_stop(struct zt_timer *t)
{
	struct zt_loop *loop = t->loop;
	size_t i;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	loop->nheap--;
	if (i == loop->nheap)
		return;
	heap_set(loop, i, loop->heap[loop->nheap]);
	if (i > 0 && before(loop->heap[i], loop->heap[(i - 1) / 2]))
		sift_up(loop, i);
	else
		sift_down(loop, i);
}

void zt_timer_start(struct zt_loop *loop, struct zt_timer *t, uint64_t after_ms, zt_timer_cb cb,
		    void *arg)
{
	zt_timer_stop(t);
	if (loop->nheap == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct zt_timer **h = xrealloc(loop->heap, cap * sizeof(*h));
		loop->heap = h;
		loop->heap_cap = cap;
	}
	t->loop = loop;
	t->cb = cb;
	t->arg = arg;
	t->due_ms = loop->now_ms + after_ms;
	t->seq = loop->timer_seq++;
	heap_set(loop, loop->nheap, t);
	sift_up(loop, loop->nheap++);
}

size_t zt_loop_timer_count(const struct zt_loop *loop)
{
	return loop->nheap;
}

/* Fires every timer due at the cached clock. A timer re-armed by its own callback for 0 ms is
 * due again only on the next iteration, so a callback cannot starve the loop. */
static void run_timers(struct zt_loop *loop)
{
	uint64_t limit = loop->timer_seq;

	while (loop->nheap > 0) {
		struct zt_timer *t = loop->heap[0];
		if (t->due_ms > loop->now_ms || t->seq >= limit)
			break;
		zt_timer_stop(t);
		t->cb(t, t->arg);
	}
}

/* ---- deferred callbacks ------------------------------------------------------------------ */

void zt_defer_start(struct zt_loop *loop, struct zt_defer *d, zt_defer_cb cb, void *arg)
{
	if (d->active && d->loop == loop)
		return;
	d->loop = loop;
	d->cb = cb;
	d->arg = arg;
	d->seq = loop->defer_seq++;
	d->active = true;
	TAILQ_INSERT_TAIL(&loop->defers, d, link);
}

void zt_defer_stop(struct zt_defer *d)
{
	if (!d->active)
		return;
	d->active = false;
	TAILQ_REMOVE(&d->loop->defers, d, link);
}

/* Runs the defers queued before this call; ones started by these callbacks wait for the next
 * round, which happens before the loop blocks again. */
static void run_defers(struct zt_loop *loop)
{
	uint64_t limit = loop->defer_seq;
	struct zt_defer *d;

	while ((d = TAILQ_FIRST(&loop->defers)) && d->seq < limit) {
		TAILQ_REMOVE(&loop->defers, d, link);
		d->active = false;
		d->cb(d, d->arg);
	}
}

/* ---- signals ----------------------------------------------------------------------------- */

static void on_signalfd(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_loop *loop = arg;
	struct signalfd_siginfo si;

	(void)io;
	(void)events;
	while (read(loop->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		struct zt_signal *s, *next;

		for (s = LIST_FIRST(&loop->signals); s; s = next) {
			next = LIST_NEXT(s, link);
			if (s->active && s->signo == (int)si.ssi_signo)
				s->cb(s, s->signo, s->arg);
		}
	}
}

int zt_signal_start(struct zt_loop *loop, struct zt_signal *s, int signo, zt_signal_cb cb,
		    void *arg)
{
	sigset_t one;
	int fd;

	if (s->active)
		return -EBUSY;
	sigemptyset(&one);
	if (sigaddset(&one, signo) < 0)
		return -EINVAL;
	sigaddset(&loop->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &one, NULL) < 0)
		return -errno;
	fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (loop->sigfd < 0) {
		int err;
		loop->sigfd = fd;
		err = zt_io_start(loop, &loop->sig_io, fd, ZT_IO_READ, on_signalfd, loop);
		if (err < 0) {
			close(fd);
			loop->sigfd = -1;
			return err;
		}
		/* The signalfd watcher alone must not keep zt_loop_run() going. */
		loop->nio--;
	}
	s->loop = loop;
	s->signo = signo;
	s->cb = cb;
	s->arg = arg;
	s->active = true;
	LIST_INSERT_HEAD(&loop->signals, s, link);
	loop->nsignals++;
	return 0;
}

void zt_signal_stop(struct zt_signal *s)
{
	if (!s->active)
		return;
	s->active = false;
	LIST_REMOVE(s, link);
	s->loop->nsignals--;
}

/* ---- posts from other threads ------------------------------------------------------------ */

int zt_loop_post(struct zt_loop *loop, zt_post_cb cb, void *arg)
{
	struct post *p = xmalloc(sizeof(*p));
	bool wake;

	p->cb = cb;
	p->arg = arg;
	pthread_mutex_lock(&loop->post_lock);
	if (loop->posts_closed) {
		pthread_mutex_unlock(&loop->post_lock);
		free(p);
		return -ESHUTDOWN;
	}
	wake = STAILQ_EMPTY(&loop->posts);
	STAILQ_INSERT_TAIL(&loop->posts, p, link);
	pthread_mutex_unlock(&loop->post_lock);
	if (wake) {
		uint64_t one = 1;
		/* Only EAGAIN (counter full) can fail here, and then it is readable anyway. */
		if (write(loop->postfd, &one, sizeof(one)) < 0) {
		}
	}
	return 0;
}

void zt_loop_post_close(struct zt_loop *loop)
{
	pthread_mutex_lock(&loop->post_lock);
	loop->posts_closed = true;
	pthread_mutex_unlock(&loop->post_lock);
}

/* Runs the closures queued when the batch is taken; later ones wake the loop again. */
static void on_posts(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_loop *loop = arg;
	STAILQ_HEAD(, post) batch = STAILQ_HEAD_INITIALIZER(batch);
	uint64_t n;
	struct post *p;

	(void)io;
	(void)events;
	if (read(loop->postfd, &n, sizeof(n)) < 0) {
		/* EAGAIN: a previous round took the batch this wake-up was for. */
	}
	pthread_mutex_lock(&loop->post_lock);
	STAILQ_CONCAT(&batch, &loop->posts);
	pthread_mutex_unlock(&loop->post_lock);
	while ((p = STAILQ_FIRST(&batch))) {
		STAILQ_REMOVE_HEAD(&batch, link);
		p->cb(p->arg);
		free(p);
	}
}

struct call {
	zt_post_cb cb;
	void *arg;
	sem_t done;
};

static void run_call(void *arg)
{
	struct call *c = arg;

	c->cb(c->arg);
	sem_post(&c->done);
}

int zt_loop_call(struct zt_loop *loop, zt_post_cb cb, void *arg)
{
	struct call c = {.cb = cb, .arg = arg};
	int rc;

	if (zt_loop_on_thread(loop)) {
		cb(arg);
		return 0;
	}
	sem_init(&c.done, 0, 0);
	if ((rc = zt_loop_post(loop, run_call, &c)) == 0)
		while (sem_wait(&c.done) < 0 && errno == EINTR)
			;
	sem_destroy(&c.done);
	return rc;
}

void zt_loop_bind_thread(struct zt_loop *loop)
{
	loop->owner = pthread_self();
}

struct zt_loop *zt_loop_current(void)
{
	return running;
}

bool zt_loop_on_thread(const struct zt_loop *loop)
{
	return pthread_equal(loop->owner, pthread_self());
}

/* ---- running ----------------------------------------------------------------------------- */

static int next_timeout(struct zt_loop *loop, int max_ms)
{
	uint64_t wait;

	if (!TAILQ_EMPTY(&loop->defers))
		return 0;
	if (loop->nheap == 0)
		return max_ms;
	if (loop->heap[0]->due_ms <= loop->now_ms)
		return 0;
	wait = loop->heap[0]->due_ms - loop->now_ms;
	if (max_ms >= 0 && wait > (uint64_t)max_ms)
		return max_ms;
	return wait > INT32_MAX ? INT32_MAX : (int)wait;
}

int zt_loop_run_once(struct zt_loop *loop, int timeout_ms)
{
	struct zt_loop *outer = running;
	int n;

	n = epoll_wait(loop->epfd, loop->events, MAX_EVENTS, next_timeout(loop, timeout_ms));
	if (n < 0 && errno != EINTR)
		return -errno;
	running = loop;
	zt_loop_update_time(loop);
	loop->nevents = n > 0 ? n : 0;
	for (loop->cur = 0; loop->cur < loop->nevents;) {
		struct epoll_event *ev = &loop->events[loop->cur++];
		struct zt_io *io = ev->data.ptr;
		unsigned events = 0;

		if (!io)
			continue;
		if (ev->events & (EPOLLIN | EPOLLRDHUP))
			events |= ZT_IO_READ;
		if (ev->events & EPOLLOUT)
			events |= ZT_IO_WRITE;
		/* Report hang-up and errors as readiness too, so the callback's read or write
		 * observes the EOF or the error itself. */
		if (ev->events & (EPOLLERR | EPOLLHUP))
			events |= ZT_IO_ERROR | io->events;
		io->cb(io, events, io->arg);
	}
	loop->nevents = loop->cur = 0;
	run_timers(loop);
	run_defers(loop);
	running = outer;
	return 0;
}

int zt_loop_run(struct zt_loop *loop)
{
	loop->stopping = false;
	while (!loop->stopping &&
	       (loop->nio > 0 || loop->nheap > 0 || !TAILQ_EMPTY(&loop->defers) || loop->nsignals > 0)) {
		int err = zt_loop_run_once(loop, -1);
		if (err < 0)
			return err;
	}
	return 0;
}
