/* Registry of live-object counters: one <sys/queue.h> SLIST of static zt_live structs, kept
 * sorted by name so listings are stable whatever the link or constructor order. A counter is
 * in the list at most once and never leaves it. */
#include "runtime/live.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>
#include <sys/queue.h>

static SLIST_HEAD(, zt_live) registry = SLIST_HEAD_INITIALIZER(registry);

void zt_live_register(struct zt_live *l)
{
	struct zt_live *prev = NULL, *it;

	if (l->registered)
		return;
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
	l->registered = true;
}

void zt_live_inc(struct zt_live *l)
{
	if (!l->registered)
		zt_live_register(l);
	l->count++;
	if (l->count > l->peak)
		l->peak = l->count;
}

void zt_live_dec(struct zt_live *l)
{
	assert(l->count > 0);
	l->count--;
}

void zt_live_foreach(zt_live_cb cb, void *arg)
{
	const struct zt_live *l;

	SLIST_FOREACH(l, &registry, link)
		cb(l, arg);
}

const struct zt_live *zt_live_get(const char *name)
{
	const struct zt_live *l;

	SLIST_FOREACH(l, &registry, link)
		if (strcmp(l->name, name) == 0)
			return l;
	return NULL;
}

long zt_live_total(void)
{
	const struct zt_live *l;
	long sum = 0;

	SLIST_FOREACH(l, &registry, link)
		sum += l->count;
	return sum;
}
