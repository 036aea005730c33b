/* Open-addressing hash table: linear probing over a power-of-two slot array kept at most 4/5
 * full. Deletion shifts the following probe run back instead of leaving tombstones, so a
 * lookup stops at the first empty slot and every entry sits between its home slot and the
 * first empty slot after it. */
#include "runtime/hmap.h"
#include "runtime/mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MIN_CAP 8

static uint64_t seed;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Seeded before main(), so lookups from any thread only ever read it. */
__attribute__((constructor)) static void seed_init(void)
{
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = mix((uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed);
}

/* Eight bytes a turn from a random basis, each word folded in with a multiply, then the
 * length and a full avalanche. */
uint64_t zt_hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull ^ seed, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x9fb21c651e98df25ull;
		h ^= h >> 29;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, p + i, len - i);
		h = (h ^ w) * 0x9fb21c651e98df25ull;
		h ^= h >> 29;
	}
	return mix(h ^ len ^ seed);
}

static uint64_t hash(const char *key)
{
	return zt_hash_bytes(key, strlen(key));
}

void zt_hmap_init(struct zt_hmap *m)
{
	memset(m, 0, sizeof(*m));
}

void zt_hmap_init_borrowed(struct zt_hmap *m)
{
	memset(m, 0, sizeof(*m));
	m->borrowed = true;
}

void zt_hmap_clear(struct zt_hmap *m)
{
	bool borrowed = m->borrowed;

	if (!borrowed)
		for (size_t i = 0; i < m->cap; i++)
			free(m->slots[i].key);
	free(m->slots);
	zt_hmap_init(m);
	m->borrowed = borrowed;
}

size_t zt_hmap_count(const struct zt_hmap *m)
{
	return m->n;
}

/* Index of key's slot, or of the empty slot where it would go. cap must be non-zero. */
static size_t find(const struct zt_hmap *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1, i = h & mask;

	while (m->slots[i].key && (m->slots[i].hash != h || strcmp(m->slots[i].key, key) != 0))
		i = (i + 1) & mask;
	return i;
}

static void grow(struct zt_hmap *m)
{
	struct zt_hmap_slot *old = m->slots;
	size_t old_cap = m->cap;

	m->cap = old_cap ? old_cap * 2 : MIN_CAP;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].key)
			continue;
		size_t j = old[i].hash & (m->cap - 1);
		while (m->slots[j].key)
			j = (j + 1) & (m->cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
}

void *zt_hmap_get(const struct zt_hmap *m, const char *key)
{
	if (m->n == 0)
		return NULL;
	return m->slots[find(m, key, hash(key))].val;
}

void *zt_hmap_put(struct zt_hmap *m, const char *key, void *val)
{
	uint64_t h = hash(key);
	size_t i;

	if ((m->n + 1) * 5 > m->cap * 4)
		grow(m);
	i = find(m, key, h);
	if (m->slots[i].key) {
		void *prev = m->slots[i].val;
		m->slots[i].val = val;
		if (m->borrowed)
			m->slots[i].key = (char *)key;
		return prev;
	}
	m->slots[i].key = m->borrowed ? (char *)key : xstrdup(key);
	m->slots[i].hash = h;
	m->slots[i].val = val;
	m->n++;
	return NULL;
}

void *zt_hmap_del(struct zt_hmap *m, const char *key)
{
	size_t mask, i, j;
	void *val;

	if (m->n == 0)
		return NULL;
	mask = m->cap - 1;
	i = find(m, key, hash(key));
	if (!m->slots[i].key)
		return NULL;
	val = m->slots[i].val;
	if (!m->borrowed)
		free(m->slots[i].key);
	m->n--;
	/* Pull back every later entry of the run whose home slot is not in (i, j]. */
	for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	return val;
}

bool zt_hmap_next(const struct zt_hmap *m, size_t *pos, const char **key, void **val)
{
	for (; *pos < m->cap; (*pos)++) {
		const struct zt_hmap_slot *s = &m->slots[*pos];
		if (!s->key)
			continue;
		if (key)
			*key = s->key;
		if (val)
			*val = s->val;
		(*pos)++;
		return true;
	}
	return false;
}
