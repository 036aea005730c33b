/* The intern table: open addressing (linear probing, backward-shift deletion) over entries
 * that carry their own hash. An entry's payload (string bytes, or a struct zt_spiffe) is
 * what callers hold; the entry header sits right before it. Invariant: an entry is in the
 * table exactly while its reference count is non-zero, and both change only under the lock
 * (zt_intern_ref excepted: a holder's increment cannot race the count down to zero). */
#include "state/intern.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/hmap.h"
#include "runtime/live.h"
#include "runtime/mem.h"

ZT_LIVE_DEFINE(state_intern);

enum kind { STR = 1, SPIFFE = 2 };

struct entry {
	atomic_uint refs;
	uint8_t kind;
	uint32_t keylen; /* key: the string, or "td\0ns\0sa" for an identity */
	uint64_t hash;
	const char *key;                  /* into data */
	alignas(max_align_t) char data[]; /* STR: the string; SPIFFE: struct zt_spiffe + key */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry **slots;
static size_t cap, count;

static struct entry *entry_of(const void *p)
{
	return (struct entry *)((char *)p - offsetof(struct entry, data));
}

static bool same(const struct entry *e, enum kind k, const char *key, size_t len, uint64_t h)
{
	return e->hash == h && e->kind == k && e->keylen == len && memcmp(e->key, key, len) == 0;
}

static void insert(struct entry *e)
{
	size_t i = e->hash & (cap - 1);

	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = e;
}

static void grow(void)
{
	struct entry **old = slots;
	size_t ocap = cap;

	cap = cap ? cap * 2 : 256;
	slots = xcalloc(cap, sizeof(*slots));
	for (size_t i = 0; i < ocap; i++)
		if (old[i])
			insert(old[i]);
	free(old);
}

/* The entry for (k, key), created with make() when absent; one more reference. */
static struct entry *get(enum kind k, const char *key, size_t len,
                         struct entry *(*make)(const char *, size_t, void *), void *arg)
{
	uint64_t h = zt_hash_bytes(key, len) ^ k;
	struct entry *e = NULL;

	pthread_mutex_lock(&lock);
	if (cap) {
		for (size_t i = h & (cap - 1); slots[i]; i = (i + 1) & (cap - 1))
			if (same(slots[i], k, key, len, h)) {
				e = slots[i];
				atomic_fetch_add(&e->refs, 1);
				break;
			}
	}
	if (!e && (e = make(key, len, arg))) {
		atomic_init(&e->refs, 1);
		e->kind = (uint8_t)k;
		e->keylen = (uint32_t)len;
		e->hash = h;
		if ((count + 1) * 4 > cap * 3)
			grow();
		insert(e);
		count++;
		zt_live_inc(&zt_live_state_intern);
	}
	pthread_mutex_unlock(&lock);
	return e;
}

static struct entry *make_str(const char *s, size_t len, void *arg)
{
	struct entry *e = xmalloc(sizeof(*e) + len + 1);

	(void)arg;
	memcpy(e->data, s, len);
	e->data[len] = '\0';
	e->key = e->data;
	return e;
}

const char *zt_intern_n(const char *s, size_t len)
{
	if (len > UINT32_MAX)
		abort();
	return get(STR, s ? s : "", s ? len : 0, make_str, NULL)->data;
}

const char *zt_intern(const char *s)
{
	return zt_intern_n(s, s ? strlen(s) : 0);
}

struct spiffe_arg {
	const char *td, *ns, *sa;
	int rc;
};

static struct entry *make_spiffe(const char *key, size_t len, void *arg)
{
	struct spiffe_arg *a = arg;
	struct zt_spiffe id;
	struct entry *e;

	memset(&id, 0, sizeof(id));
	if ((a->rc = zt_spiffe_set(&id, a->td, a->ns, a->sa)) < 0)
		return NULL;
	e = xmalloc(sizeof(*e) + sizeof(id) + len);
	memcpy(e->data, &id, sizeof(id));
	memcpy(e->data + sizeof(id), key, len);
	e->key = e->data + sizeof(id);
	return e;
}

const struct zt_spiffe *zt_intern_spiffe(const char *td, const char *ns, const char *sa, int *rc)
{
	size_t ltd = strlen(td), lns = strlen(ns), lsa = strlen(sa);
	struct spiffe_arg a = {.td = td, .ns = ns, .sa = sa};
	struct entry *e;
	char buf[256], *key;

	key = ltd + lns + lsa + 2 <= sizeof(buf) ? buf : xmalloc(ltd + lns + lsa + 2);
	memcpy(key, td, ltd);
	key[ltd] = '\0';
	memcpy(key + ltd + 1, ns, lns);
	key[ltd + 1 + lns] = '\0';
	memcpy(key + ltd + lns + 2, sa, lsa);
	e = get(SPIFFE, key, ltd + lns + lsa + 2, make_spiffe, &a);
	if (key != buf)
		free(key);
	*rc = e ? 0 : a.rc;
	return e ? (const struct zt_spiffe *)(const void *)e->data : NULL;
}

const void *zt_intern_ref(const void *p)
{
	if (p)
		atomic_fetch_add(&entry_of(p)->refs, 1);
	return p;
}

void zt_intern_release(const void *p)
{
	struct entry *e;
	size_t i, j, mask;

	if (!p)
		return;
	e = entry_of(p);
	pthread_mutex_lock(&lock);
	if (atomic_fetch_sub(&e->refs, 1) != 1) {
		pthread_mutex_unlock(&lock);
		return;
	}
	mask = cap - 1;
	for (i = e->hash & mask; slots[i] != e; i = (i + 1) & mask)
		;
	/* Backward shift: pull later entries of the probe run into the hole when their home
	 * slot is not cyclically within (hole, their slot]. */
	for (j = (i + 1) & mask; slots[j]; j = (j + 1) & mask) {
		size_t h = slots[j]->hash & mask;
		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			slots[i] = slots[j];
			i = j;
		}
	}
	slots[i] = NULL;
	count--;
	zt_live_dec(&zt_live_state_intern);
	pthread_mutex_unlock(&lock);
	free(e);
}

size_t zt_intern_count(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = count;
	pthread_mutex_unlock(&lock);
	return n;
}
