/* Gives memory freed after a spike back to the system. glibc keeps freed heap pages and
 * raises its mmap threshold after large frees, so RSS stays at its peak once thousands of
 * connections have come and gone. A periodic check asks malloc how much it holds free and
 * trims when that exceeds a threshold and RSS grew by as much since the last trim, so idle
 * RSS comes back near its baseline; the check is cheap (mallinfo2 and /proc/self/statm). */
#ifndef ZT_MEMTRIM_H
#define ZT_MEMTRIM_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/loop.h"

#define ZT_MEMTRIM_PERIOD_MS 2000
#define ZT_MEMTRIM_THRESHOLD (4u << 20) /* bytes held free by malloc before a trim */

struct zt_memtrim {
	struct zt_loop *loop;
	struct zt_timer timer;
	uint64_t period_ms;
	size_t threshold;
	uint64_t trims;      /* trims done */
	size_t last_release; /* bytes malloc held free before the last trim */
	size_t rss_after;    /* RSS right after the last trim */
	size_t held_after;   /* bytes malloc held free right after the last trim */
};

/* Fixes glibc's mmap threshold (large buffers go straight back to the system when freed) and
 * starts the periodic check on loop. period_ms/threshold 0 pick the defaults above. */
void zt_memtrim_start(struct zt_memtrim *m, struct zt_loop *loop, uint64_t period_ms,
                      size_t threshold);
void zt_memtrim_stop(struct zt_memtrim *m);
/* One check now: trims if malloc holds more than the threshold free and RSS grew by the
 * threshold since the last trim. Returns whether it trimmed. */
int zt_memtrim_check(struct zt_memtrim *m);

#endif
