/* Binary-keyed address index: linear probing over a power-of-two slot array kept at most 4/5
 * full; deletion shifts the following probe run back, so a lookup stops at the first empty
 * slot. The hash covers the family, the 16 address bytes and the network name. */
#include "state/ipindex.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/hmap.h"
#include "runtime/mem.h"
#include "state/intern.h"

#define MIN_CAP 8

/* Family, the 16 address bytes and the name, through the seeded hash of runtime/hmap. */
static uint64_t hash(const char *network, const struct zt_ip *ip)
{
	unsigned char key[1 + sizeof(ip->bytes) + 256];
	size_t n = strnlen(network, 255);

	key[0] = (unsigned char)ip->family;
	memcpy(key + 1, ip->bytes, sizeof(ip->bytes));
	memcpy(key + 1 + sizeof(ip->bytes), network, n);
	return zt_hash_bytes(key, 1 + sizeof(ip->bytes) + n);
}

static bool same(const struct zt_ipindex_slot *s, uint64_t h, const char *network,
                 const struct zt_ip *ip)
{
	return s->hash == h && s->ip.family == ip->family &&
	       memcmp(s->ip.bytes, ip->bytes, sizeof(ip->bytes)) == 0 &&
	       strcmp(s->network, network) == 0;
}

static size_t find(const struct zt_ipindex *m, uint64_t h, const char *network,
                   const struct zt_ip *ip)
{
	size_t mask = m->cap - 1, i = h & mask;

	while (m->slots[i].val && !same(&m->slots[i], h, network, ip))
		i = (i + 1) & mask;
	return i;
}

void zt_ipindex_clear(struct zt_ipindex *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].val)
			zt_intern_release(m->slots[i].network);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

void *zt_ipindex_get(const struct zt_ipindex *m, const char *network, const struct zt_ip *ip)
{
	if (!network)
		network = "";
	if (m->n == 0)
		return NULL;
	return m->slots[find(m, hash(network, ip), network, ip)].val;
}

static void grow(struct zt_ipindex *m)
{
	struct zt_ipindex old = *m;

	m->cap = old.cap ? old.cap * 2 : MIN_CAP;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < old.cap; i++) {
		struct zt_ipindex_slot *s = &old.slots[i];
		if (s->val)
			m->slots[find(m, s->hash, s->network, &s->ip)] = *s;
	}
	free(old.slots);
}

void *zt_ipindex_put(struct zt_ipindex *m, const char *network, const struct zt_ip *ip, void *val)
{
	uint64_t h;
	size_t i;
	void *prev;

	if (!network)
		network = "";
	if ((m->n + 1) * 5 > m->cap * 4)
		grow(m);
	h = hash(network, ip);
	i = find(m, h, network, ip);
	prev = m->slots[i].val;
	if (!prev) {
		struct zt_ipindex_slot *s = &m->slots[i];
		s->hash = h;
		memset(&s->ip, 0, sizeof(s->ip));
		s->ip.family = ip->family;
		memcpy(s->ip.bytes, ip->bytes, sizeof(ip->bytes));
		s->network = zt_intern(network);
		m->n++;
	}
	m->slots[i].val = val;
	return prev;
}

void *zt_ipindex_del(struct zt_ipindex *m, const char *network, const struct zt_ip *ip)
{
	size_t mask, i, j;
	void *prev;

	if (!network)
		network = "";
	if (m->n == 0)
		return NULL;
	mask = m->cap - 1;
	i = find(m, hash(network, ip), network, ip);
	if (!(prev = m->slots[i].val))
		return NULL;
	zt_intern_release(m->slots[i].network);
	m->slots[i].val = NULL;
	m->n--;
	/* Backward shift: move later entries of the run into the hole when their home slot
	 * does not lie cyclically within (hole, j]. */
	for (j = (i + 1) & mask; m->slots[j].val; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			m->slots[j].val = NULL;
			i = j;
		}
	}
	return prev;
}

bool zt_ipindex_next(const struct zt_ipindex *m, size_t *pos, void **val)
{
	while (*pos < m->cap) {
		const struct zt_ipindex_slot *s = &m->slots[(*pos)++];
		if (s->val) {
			*val = s->val;
			return true;
		}
	}
	return false;
}
