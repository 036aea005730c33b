/* Periodic malloc_trim when malloc holds more free memory than a threshold (see memtrim.h).
 * Invariant: the timer is armed exactly while started. */
#include "runtime/memtrim.h"

#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "runtime/log.h"

ZT_LOG_MODULE("memtrim");

static void on_tick(struct zt_timer *t, void *arg)
{
	struct zt_memtrim *m = arg;

	(void)t;
	zt_memtrim_check(m);
	zt_timer_start(m->loop, &m->timer, m->period_ms, on_tick, m);
}

static size_t rss_bytes(void)
{
	unsigned long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &pages, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * (size_t)sysconf(_SC_PAGESIZE);
}

int zt_memtrim_check(struct zt_memtrim *m)
{
	struct mallinfo2 mi = mallinfo2();
	size_t held = mi.fordblks; /* free bytes inside the heap (main and other arenas) */
	size_t rss = rss_bytes();

	/* Free chunks stay counted after a trim, so also require that RSS grew since the last
	 * one (pages were touched again, and some of them are free now) or that malloc holds
	 * more free than right after it (memory in use at that trim was freed since). */
	if (held < m->threshold ||
	    (m->trims && rss < m->rss_after + m->threshold && held < m->held_after + m->threshold))
		return 0;
	malloc_trim(0);
	m->trims++;
	m->last_release = held;
	m->rss_after = rss_bytes();
	m->held_after = mallinfo2().fordblks;
	zt_debug("trimmed the heap: %zu bytes were free, RSS %zu -> %zu KiB", held, rss >> 10,
	         m->rss_after >> 10);
	return 1;
}

void zt_memtrim_start(struct zt_memtrim *m, struct zt_loop *loop, uint64_t period_ms,
                      size_t threshold)
{
	*m = (struct zt_memtrim){.loop = loop,
	                         .period_ms = period_ms ? period_ms : ZT_MEMTRIM_PERIOD_MS,
	                         .threshold = threshold ? threshold : ZT_MEMTRIM_THRESHOLD};
	/* A fixed threshold: glibc's dynamic one grows after a large free and then keeps
	 * buffers of that size in the heap for good. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	zt_timer_start(loop, &m->timer, m->period_ms, on_tick, m);
}

void zt_memtrim_stop(struct zt_memtrim *m)
{
	zt_timer_stop(&m->timer);
}
