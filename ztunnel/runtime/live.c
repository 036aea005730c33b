/* Registry of live-object counters: one <sys/queue.h> SLIST of static zt_live structs, kept
 * sorted by name so listings are stable whatever the link or constructor order. A counter is
 * in the list at most once and never leaves it. */
#include "runtime/live.h"

#include <assert.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/queue.h>

static SLIST_HEAD(, zt_live) registry = SLIST_HEAD_INITIALIZER(registry);
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

void zt_live_register(struct zt_live *l)
{
	struct zt_live *prev = NULL, *it;

	if (atomic_load(&l->registered))
		return;
	pthread_mutex_lock(&registry_lock);
	if (atomic_load(&l->registered)) {
		pthread_mutex_unlock(&registry_lock);
		return;
	}
	SLIST_FOREACH(it, &registry, link) {
		if (strcmp(it->name, l->name) >= 0)
			break;
		prev = it;
	}
	assert(!it || strcmp(it->name, l->name) != 0);
	if (prev)
		SLIST_INSERT_AFTER(prev, l, link);
	else
		SLIST_INSERT_HEAD(&registry, l, link);
	atomic_store(&l->registered, true);
	pthread_mutex_unlock(&registry_lock);
}

void zt_live_inc(struct zt_live *l)
{
	long now, peak;

	if (!atomic_load_explicit(&l->registered, memory_order_acquire))
		zt_live_register(l);
	now = atomic_fetch_add_explicit(&l->count, 1, memory_order_relaxed) + 1;
	peak = atomic_load_explicit(&l->peak, memory_order_relaxed);
	while (now > peak && !atomic_compare_exchange_weak_explicit(
	                             &l->peak, &peak, now, memory_order_relaxed, memory_order_relaxed))
		;
}

void zt_live_dec(struct zt_live *l)
{
	long was = atomic_fetch_sub_explicit(&l->count, 1, memory_order_relaxed);

	assert(was > 0);
	(void)was;
}

void zt_live_foreach(zt_live_cb cb, void *arg)
{
	const struct zt_live *l;

	pthread_mutex_lock(&registry_lock);
	SLIST_FOREACH(l, &registry, link)
		cb(l, arg);
	pthread_mutex_unlock(&registry_lock);
}

const struct zt_live *zt_live_get(const char *name)
{
	const struct zt_live *l;

	pthread_mutex_lock(&registry_lock);
	SLIST_FOREACH(l, &registry, link)
		if (strcmp(l->name, name) == 0)
			break;
	pthread_mutex_unlock(&registry_lock);
	return l;
}

long zt_live_total(void)
{
	const struct zt_live *l;
	long sum = 0;

	pthread_mutex_lock(&registry_lock);
	SLIST_FOREACH(l, &registry, link)
		sum += atomic_load(&l->count);
	pthread_mutex_unlock(&registry_lock);
	return sum;
}
