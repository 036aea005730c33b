/* The event-loop fixture every unit suite uses: run the loop until a condition holds (with a
 * deadline on the monotonic clock, generous for a loaded machine), run it for a while to show
 * nothing more happens, read live-object counters, and finish a case by checking that every
 * object it made is gone. Root-only cases register through fx_add_root_test, which prints
 * them as skipped when not root instead of letting them pass unrun. */
#ifndef LOOP_FIXTURE_H
#define LOOP_FIXTURE_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/loop.h"

/* Monotonic milliseconds. */
uint64_t fx_now_ms(void);

/* ThreadSanitizer slows the byte paths several times over: deadlines stretch to match. */
#if defined(__SANITIZE_THREAD__)
#define FX_SLOW 8
#else
#define FX_SLOW 1
#endif

/* Runs loop until cond holds; fails the case naming cond when ms (times FX_SLOW) pass first. */
#define RUN_UNTIL(loop, cond, ms)                                                                  \
	do {                                                                                       \
		uint64_t fx_end_ = fx_now_ms() + (uint64_t)(ms) * FX_SLOW;                         \
		while (!(cond) && fx_now_ms() < fx_end_)                                           \
			zt_loop_run_once((loop), 10);                                              \
		ck_assert_msg((cond), "timed out after %llu ms waiting for %s",                    \
		              (unsigned long long)(ms) * FX_SLOW, #cond);                          \
	} while (0)

/* Runs loop for ms, whatever happens. */
void fx_run_for(struct zt_loop *loop, uint64_t ms);

/* The count of the live-object counter name; 0 when no such object was ever made. */
long fx_live(const char *name);

/* Fails the case naming every live-object counter that is not back at zero. */
void fx_assert_no_live(void);

/* Ends a case that owns loop: runs what is deferred, frees the loop (*loop becomes NULL) and
 * checks that no object is left alive. */
void fx_finish(struct zt_loop **loop);

/* True when cases may move into their own network namespace: root, and each case forked. */
bool fx_is_root(void);

/* Adds a case that needs fx_is_root(); otherwise prints "SKIP suite/name (...)" and leaves it
 * out, so the closing count never claims it. fx_skipped() counts the cases left out. */
#define fx_add_root_test(tc, suite, fn) fx_add_root_test_((tc), (suite), (fn), #fn)
void fx_add_root_test_(TCase *tc, const char *suite, const TTest *fn, const char *name);
/* Prints "SKIP suite/name (why)" for a case left out of this build and counts it. */
void fx_skip(const char *suite, const char *name, const char *why);
int fx_skipped(void);

#endif
