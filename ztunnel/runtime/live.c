/* Registry of live-object counters: one singly linked list of static zt_live structs, kept
 * sorted by name so listings are stable whatever the link or constructor order. A counter is
 * in the list at most once and never leaves it. */
#include "runtime/live.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>

static struct zt_live *head;

void zt_live_register(struct zt_live *l)
{
	struct zt_live **pp;

	if (l->registered)
		return;
	for (pp = &head; *pp && strcmp((*pp)->name, l->name) < 0; pp = &(*pp)->next)
		;
	assert(!*pp || strcmp((*pp)->name, l->name) != 0);
	l->next = *pp;
	*pp = l;
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

	for (l = head; l; l = l->next)
		cb(l, arg);
}

const struct zt_live *zt_live_get(const char *name)
{
	const struct zt_live *l;

	for (l = head; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			return l;
	return NULL;
}

long zt_live_total(void)
{
	const struct zt_live *l;
	long sum = 0;

	for (l = head; l; l = l->next)
		sum += l->count;
	return sum;
}
