/* A string-keyed hash table with open addressing (linear probing, backward-shift deletion, so
 * no tombstones). Keys are copied in, or borrowed (zt_hmap_init_borrowed); values are opaque non-NULL pointers the table never
 * frees. Hashes are seeded once per process (before main) from getrandom(), so a peer
 * choosing names cannot predict collisions. Readers may share a table only while nobody
 * writes it; iteration order is unspecified. */
#ifndef ZT_HMAP_H
#define ZT_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zt_hmap_slot {
	char *key; /* NULL = empty slot */
	uint64_t hash;
	void *val;
};

struct zt_hmap {
	struct zt_hmap_slot *slots;
	size_t cap; /* 0 or a power of two */
	size_t n;
	bool borrowed; /* keys are the caller's */
};

/* A zeroed struct zt_hmap is an empty table; _init just zeroes it. */
void zt_hmap_init(struct zt_hmap *m);
/* An empty table that stores the key pointers it is given instead of copies (a key usually
 * lives in its value): each must stay valid and unchanged while its entry is stored, and a
 * put over an existing entry stores the new key pointer with the new value. */
void zt_hmap_init_borrowed(struct zt_hmap *m);
/* Frees the keys (unless borrowed) and slots (not the values) and leaves an empty table of
 * the same kind. */
void zt_hmap_clear(struct zt_hmap *m);

size_t zt_hmap_count(const struct zt_hmap *m);

/* The value stored under key, or NULL. */
void *zt_hmap_get(const struct zt_hmap *m, const char *key);

/* Stores val (must not be NULL) under a copy of key (or key itself), replacing any previous value.
 * Returns the previous value (the caller still owns it) or NULL. Aborts on OOM. */
void *zt_hmap_put(struct zt_hmap *m, const char *key, void *val);

/* Removes key. Returns the value it had, or NULL when absent. */
void *zt_hmap_del(struct zt_hmap *m, const char *key);

/* Iterates: set *pos = 0, then call until it returns false. key and val (either may be NULL)
 * receive the entry, borrowed. The table must not change while iterating. */
bool zt_hmap_next(const struct zt_hmap *m, size_t *pos, const char **key, void **val);

/* The tables' seeded hash of len bytes, for other tables keyed by binary data. */
uint64_t zt_hash_bytes(const void *data, size_t len);

#endif
