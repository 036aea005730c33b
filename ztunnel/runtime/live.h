/* Live-object counters per type, for leak checks in tests and for /config_dump. A module
 * defines one counter per object type and bumps it in its _new/_free; every counter that was
 * defined with ZT_LIVE_DEFINE or ever incremented is listed, even when back at zero.
 * Thread-safe: counts are atomic; the registry only grows, under a lock. */
#ifndef ZT_LIVE_H
#define ZT_LIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/queue.h>

struct zt_live {
	const char *name; /* static text, unique among registered counters */
	atomic_long count; /* objects alive now, never negative */
	atomic_long peak;  /* highest count seen */
	atomic_bool registered;
	SLIST_ENTRY(zt_live) link; /* registry list, sorted by name */
};

/* Initialiser for a counter that registers itself on its first zt_live_inc(). */
#define ZT_LIVE_INIT(name_text)                                                                    \
	{                                                                                          \
		.name = (name_text)                                                                \
	}

/* Defines the global counter zt_live_<id>, named "<id>", registered before main() so it is
 * listed from the start. The symbol is global so a duplicate id fails at link time. */
#define ZT_LIVE_DEFINE(id)                                                                         \
	ZT_LIVE_DECLARE(id);                                                                       \
	__attribute__((constructor)) static void zt_live_register_##id(void)                       \
	{                                                                                          \
		zt_live_register(&zt_live_##id);                                                   \
	}                                                                                          \
	struct zt_live zt_live_##id = ZT_LIVE_INIT(#id)

/* Declares a counter defined with ZT_LIVE_DEFINE in another file. */
#define ZT_LIVE_DECLARE(id) extern struct zt_live zt_live_##id

/* Adds l (borrowed; must outlive the process, i.e. static storage) to the registry. Idempotent
 * for the same counter; a different counter with an already registered name is a programming
 * error (assert). */
void zt_live_register(struct zt_live *l);

/* One more object alive; registers l on first use and updates the peak. */
void zt_live_inc(struct zt_live *l);

/* One object gone. Going below zero is a programming error: asserted unless NDEBUG. */
void zt_live_dec(struct zt_live *l);

typedef void (*zt_live_cb)(const struct zt_live *l, void *arg);

/* Calls cb for every registered counter, in name order. cb must not register counters. */
void zt_live_foreach(zt_live_cb cb, void *arg);

/* The registered counter with this name, or NULL. Borrowed. */
const struct zt_live *zt_live_get(const char *name);

/* Sum of all registered counts: 0 when nothing is alive. */
long zt_live_total(void);

#endif
