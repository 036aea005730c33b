/* A small epoll event loop: io watchers, one-shot timers on a binary heap (start/stop are
 * O(log n), so many thousands are cheap), deferred callbacks that run at the end of the
 * current iteration, signals delivered through a signalfd, and closures posted from any
 * thread. Everything but zt_loop_post and zt_loop_call belongs to the thread running the loop.
 *
 * Watchers are embedded in the caller's structs (no allocation). A started timer or defer
 * fires exactly once unless stopped first; stop is idempotent and safe from any callback,
 * including the watcher's own. An io watcher stopped during an iteration never sees an event
 * it had pending. Level-triggered: an io callback fires while the fd stays ready. */
#ifndef ZT_LOOP_H
#define ZT_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct zt_loop;
struct zt_io;
struct zt_timer;
struct zt_defer;
struct zt_signal;

enum {
	ZT_IO_READ = 1u << 0,
	ZT_IO_WRITE = 1u << 1,
	ZT_IO_ERROR = 1u << 2, /* EPOLLERR/EPOLLHUP, reported with the requested events */
};

typedef void (*zt_io_cb)(struct zt_io *io, unsigned events, void *arg);
typedef void (*zt_timer_cb)(struct zt_timer *t, void *arg);
typedef void (*zt_defer_cb)(struct zt_defer *d, void *arg);
typedef void (*zt_signal_cb)(struct zt_signal *s, int signo, void *arg);

struct zt_io {
	struct zt_loop *loop;
	int fd;
	unsigned events;
	bool active;
	zt_io_cb cb;
	void *arg;
};

struct zt_timer {
	struct zt_loop *loop;
	uint64_t due_ms;
	uint64_t seq; /* ties broken by start order */
	size_t slot;  /* heap index + 1; 0 when not armed, so a zeroed timer is inactive */
	zt_timer_cb cb;
	void *arg;
};

struct zt_defer {
	struct zt_loop *loop;
	TAILQ_ENTRY(zt_defer) link; /* in the loop's queue while active */
	uint64_t seq;
	bool active;
	zt_defer_cb cb;
	void *arg;
};

struct zt_signal {
	struct zt_loop *loop;
	LIST_ENTRY(zt_signal) link; /* in the loop's list while active */
	int signo;
	bool active;
	zt_signal_cb cb;
	void *arg;
};

/* Creates a loop. Returns 0 or -errno. */
int zt_loop_new(struct zt_loop **out);
/* Frees the loop; watchers still started are simply forgotten, closures still queued dropped.
 * A loop kept with zt_loop_ref only refuses posts from then on. Accepts NULL. */
void zt_loop_free(struct zt_loop *loop);
/* Keeps the loop's memory for a later zt_loop_post from another thread, which then fails
 * cleanly (-ESHUTDOWN) if the loop was freed meanwhile. Thread-safe. Returns loop. */
struct zt_loop *zt_loop_ref(struct zt_loop *loop);
/* Drops a zt_loop_ref reference. Thread-safe; accepts NULL. */
void zt_loop_unref(struct zt_loop *loop);

/* Runs until zt_loop_stop() or until no io, timer, defer or signal watcher is active.
 * Returns 0, or -errno if epoll itself fails. */
int zt_loop_run(struct zt_loop *loop);
/* Runs one iteration, waiting at most timeout_ms (-1: until something happens). */
int zt_loop_run_once(struct zt_loop *loop, int timeout_ms);
/* Makes zt_loop_run() return after the current iteration. Safe from any callback. */
void zt_loop_stop(struct zt_loop *loop);

/* Monotonic milliseconds cached at the start of the iteration. */
uint64_t zt_loop_now(const struct zt_loop *loop);
/* Refreshes the cached clock (for long callbacks) and returns it. */
uint64_t zt_loop_update_time(struct zt_loop *loop);

/* Watches fd for events (ZT_IO_READ|ZT_IO_WRITE, may be 0). The fd stays the caller's; stop
 * the watcher before closing it. Returns 0 or -errno. */
int zt_io_start(struct zt_loop *loop, struct zt_io *io, int fd, unsigned events, zt_io_cb cb,
		void *arg);
/* Changes the interest set of a started watcher. Returns 0 or -errno. */
int zt_io_set(struct zt_io *io, unsigned events);
/* Stops watching. Idempotent. */
void zt_io_stop(struct zt_io *io);

/* Zeroes a timer; a zero-initialised timer is equally valid (inactive). */
void zt_timer_init(struct zt_timer *t);
/* Arms (or re-arms) a one-shot timer after_ms from the loop's cached clock. */
void zt_timer_start(struct zt_loop *loop, struct zt_timer *t, uint64_t after_ms, zt_timer_cb cb,
		    void *arg);
void zt_timer_stop(struct zt_timer *t);
bool zt_timer_active(const struct zt_timer *t);
/* Number of armed timers (for tests and /config_dump). */
size_t zt_loop_timer_count(const struct zt_loop *loop);

/* Runs cb once, after the io and timer callbacks of the current iteration, in the order defers
 * were started. A defer started from a defer callback runs in the next round, before the loop
 * blocks again. Starting an active defer does nothing. */
void zt_defer_start(struct zt_loop *loop, struct zt_defer *d, zt_defer_cb cb, void *arg);
void zt_defer_stop(struct zt_defer *d);

/* Delivers signo through the loop's signalfd (the signal is blocked for the process and stays
 * blocked after stop) and calls cb on each delivery until stopped. Several watchers may share
 * a signal. Signal watchers alone do not keep zt_loop_run() running.
 * Returns 0 or -errno. */
int zt_signal_start(struct zt_loop *loop, struct zt_signal *s, int signo, zt_signal_cb cb,
		    void *arg);
void zt_signal_stop(struct zt_signal *s);

/* ---- other threads ------------------------------------------------------------------------
 * A loop is run by one thread; other threads reach it only through posted closures. The main
 * thread may wait for a worker's loop (zt_loop_call) but a worker never waits for another
 * loop, so no cycle of waits, hence no deadlock, can form. */
typedef void (*zt_post_cb)(void *arg);

/* Queues cb(arg) to run on loop's thread, in post order, after the io callbacks of an
 * iteration (a post from the loop's own thread runs in the next iteration, never inside this
 * call). Callable from any thread. Returns 0, or -ESHUTDOWN once zt_loop_post_close was called
 * (cb will never run; arg stays the caller's). Aborts on OOM. */
int zt_loop_post(struct zt_loop *loop, zt_post_cb cb, void *arg);
/* Refuses later posts; closures already queued still run at the loop's next iteration (run
 * one with zt_loop_run_once to flush them). Idempotent; callable from any thread. */
void zt_loop_post_close(struct zt_loop *loop);
/* Runs cb(arg) on loop's thread and waits for it: directly when called from that thread,
 * else posted. For control operations from the main
 * thread only; never call it from a worker's callback. Returns 0, or -ESHUTDOWN (cb never
 * ran). */
int zt_loop_call(struct zt_loop *loop, zt_post_cb cb, void *arg);
/* Marks the calling thread as the one running loop (zt_loop_new marks its creator). */
void zt_loop_bind_thread(struct zt_loop *loop);
/* The loop whose callbacks the calling thread is running now, or NULL outside any. */
struct zt_loop *zt_loop_current(void);
/* Whether the calling thread is the one running loop. */
bool zt_loop_on_thread(const struct zt_loop *loop);

#endif
