/* The store's address indexes: a hash table keyed by the binary pair (network, IP address),
 * so a lookup on the connection path hashes the address bytes and never formats text. Values
 * are opaque non-NULL pointers the table never frees; the network name is copied in. Open
 * addressing with linear probing and backward-shift deletion, seeded per process from
 * getrandom(). Readers may share a table only while nobody writes it. */
#ifndef ZT_IPINDEX_H
#define ZT_IPINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/addr.h"

struct zt_ipindex_slot {
	void *val; /* NULL = empty slot */
	uint64_t hash;
	struct zt_ip ip;
	const char *network; /* interned (state/intern.h); "" for the default network */
};

struct zt_ipindex {
	struct zt_ipindex_slot *slots;
	size_t cap; /* 0 or a power of two */
	size_t n;
};

/* A zeroed struct is an empty table. Frees the slots and names (not the values). */
void zt_ipindex_clear(struct zt_ipindex *m);

/* The value under (network, ip), or NULL. network NULL means "". */
void *zt_ipindex_get(const struct zt_ipindex *m, const char *network, const struct zt_ip *ip);

/* Stores val (not NULL) under (network, ip), replacing and returning any previous value. */
void *zt_ipindex_put(struct zt_ipindex *m, const char *network, const struct zt_ip *ip, void *val);

/* Removes (network, ip); returns the value it had, or NULL. */
void *zt_ipindex_del(struct zt_ipindex *m, const char *network, const struct zt_ip *ip);

/* Iterates values: *pos = 0, then call until false. The table must not change meanwhile. */
bool zt_ipindex_next(const struct zt_ipindex *m, size_t *pos, void **val);

#endif
