/* The store: owning tables by key plus derived indexes that borrow from them.
 *   workloads  uid -> workload (reference)          wl_by_ip  (network, ip) -> vec of workloads
 *   slots      "ns/hostname" -> svc_slot            svc_by_vip (network, ip) -> vec of slots
 *   policies   key -> policy (reference)            pol_by_ns, pol_global: NAMESPACE / GLOBAL
 *   pol_sets   (ns, keys) -> pol_set                wl_sets   workload pointer -> its pol_set
 *   sets_by_key  policy key -> vec of pol_sets naming it
 * The four owning tables borrow their keys from their values (uid, slot key, policy key, id).
 * A pol_set is the resolved authorization_policies list shared by every stored workload with
 * the same namespace and list: a decision finds it with one pointer-keyed lookup instead of
 * one string lookup per key, and a policy change re-resolves the sets naming its key.
 * A service slot exists while its service is known or some workload lists it: its member
 * list (workloads naming the service, in first-listed order) is the source of the service's
 * endpoint snapshot, so endpoints for an unknown service are simply "staged" members. Every
 * change to a slot's members or definition publishes a new zt_service into the slot. */
#include "state/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "protocol/pb.h"
#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "state/ipindex.h"
#include "state/reject.h"

ZT_LOG_MODULE("state");
ZT_LIVE_DEFINE(state_store);

struct vec {
	void **v;
	size_t n, cap;
};

struct svc_slot {
	char *key;
	struct zt_service *svc; /* current version (reference); NULL while staged */
	struct vec members;     /* struct zt_workload *, borrowed from the workloads table */
};

struct cidr_vip {
	struct svc_slot *slot;
	const struct zt_vip *vip; /* borrowed from slot->svc */
};

/* A named policy as the walk reads it, without touching the policy unless it is visited. */
struct pol_ent {
	struct zt_policy *p; /* borrowed; NULL while unknown */
	uint64_t ports;      /* zt_policy_port_mask(p): a walk for one port reads no policy
	                        that cannot hold on it */
	bool skip;           /* GLOBAL, or NAMESPACE in the set's namespace: visited as such */
	bool first;          /* DENY or dry-run: the first pass of the walk */
	bool allow;          /* an enforced ALLOW policy */
};

/* A workload's authorization_policies, resolved (see the header comment). */
struct pol_set {
	char *id; /* length-prefixed ns and keys: the pol_sets key */
	char *ns;
	char **keys;          /* unique, in the order first listed */
	struct pol_ent *pols; /* pols[i]: policy keys[i] */
	size_t n;
	size_t users; /* stored workloads pointing at it */
};

/* Pointer-keyed open-addressing table (workload -> pol_set), linear probing with
 * backward-shift deletion like zt_hmap. */
struct ptr_slot {
	const void *key; /* NULL = empty */
	void *val;
};
struct ptrmap {
	struct ptr_slot *slots;
	size_t cap, n;
};

struct watcher {
	zt_store_watch_cb cb;
	void *arg;
	bool dead;
};

struct zt_store {
	struct zt_hmap workloads;
	struct zt_ipindex wl_by_ip;
	struct zt_hmap slots;
	struct zt_ipindex svc_by_vip;
	struct vec cidr_vips; /* struct cidr_vip * */
	struct zt_hmap policies;
	struct zt_hmap pol_by_ns; /* ns -> struct vec * of NAMESPACE-scoped policies */
	struct vec pol_global;
	struct zt_hmap pol_sets;    /* id -> struct pol_set * */
	struct zt_hmap sets_by_key; /* policy key -> struct vec * of pol_sets */
	struct ptrmap wl_sets;      /* struct zt_workload * -> struct pol_set * */
	struct zt_pb_scratch scratch; /* the resource being applied, decoded (writer only) */
	struct watcher *watchers;
	size_t n_watchers, cap_watchers;
	unsigned dispatching;
	uint64_t applied, rejected, removed;
	/* Readers (lookups, iteration) on any thread; the one writer (apply and remove, on the
	 * main thread) holds it exclusively, and never while watchers run. */
	pthread_rwlock_t lock;
};

static void rd_lock(const struct zt_store *s)
{
	pthread_rwlock_rdlock((pthread_rwlock_t *)&s->lock);
}

static void unlock(const struct zt_store *s)
{
	pthread_rwlock_unlock((pthread_rwlock_t *)&s->lock);
}

static void wr_lock(struct zt_store *s)
{
	pthread_rwlock_wrlock(&s->lock);
}

/* ---- small vectors of pointers, order-preserving ------------------------------------------ */

static void vec_push(struct vec *v, void *p)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		void **nv = xrealloc(v->v, cap * sizeof(*nv));
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = p;
}

static ssize_t vec_find(const struct vec *v, const void *p)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i] == p)
			return (ssize_t)i;
	return -1;
}

static bool vec_remove(struct vec *v, const void *p)
{
	ssize_t i = vec_find(v, p);

	if (i < 0)
		return false;
	memmove(&v->v[i], &v->v[i + 1], (v->n - (size_t)i - 1) * sizeof(*v->v));
	v->n--;
	return true;
}

static void vec_clear(struct vec *v)
{
	free(v->v);
	memset(v, 0, sizeof(*v));
}

static struct vec *vec_new(void)
{
	struct vec *v = xcalloc(1, sizeof(*v));

	return v;
}

/* A list-valued index entry: add p under key unless already there. */
static void multi_add(struct zt_hmap *m, const char *key, void *p)
{
	struct vec *v = zt_hmap_get(m, key);

	if (!v) {
		v = vec_new();
		zt_hmap_put(m, key, v);
	}
	if (vec_find(v, p) < 0)
		vec_push(v, p);
}

static void multi_del(struct zt_hmap *m, const char *key, const void *p)
{
	struct vec *v = zt_hmap_get(m, key);

	if (v && vec_remove(v, p) && v->n == 0) {
		zt_hmap_del(m, key);
		vec_clear(v);
		free(v);
	}
}

static void multi_free_all(struct zt_hmap *m)
{
	size_t pos = 0;
	void *v;

	while (zt_hmap_next(m, &pos, NULL, &v)) {
		vec_clear(v);
		free(v);
	}
	zt_hmap_clear(m);
}

/* The same over an address index, keyed by (network, ip). Most addresses have one owner:
 * the entry is then the pointer itself; a shared address holds a vec, tagged by bit 0. */
#define IP_VEC_TAG ((uintptr_t)1)

static struct vec *ip_vec(void *v)
{
	return ((uintptr_t)v & IP_VEC_TAG) ? (struct vec *)((uintptr_t)v & ~IP_VEC_TAG) : NULL;
}

/* The owners of (network, ip): *items points at n pointers (one may be stored in *one). */
static size_t ip_multi_items(const struct zt_ipindex *m, const char *network,
                             const struct zt_ip *ip, void **one, void *const **items)
{
	void *v = zt_ipindex_get(m, network, ip);
	struct vec *vec = v ? ip_vec(v) : NULL;

	if (!v)
		return 0;
	if (vec) {
		*items = vec->v;
		return vec->n;
	}
	*one = v;
	*items = one;
	return 1;
}

static void ip_multi_add(struct zt_ipindex *m, const char *network, const struct zt_ip *ip,
                         void *p)
{
	void *v = zt_ipindex_get(m, network, ip);
	struct vec *vec;

	if (!v) {
		zt_ipindex_put(m, network, ip, p);
		return;
	}
	if (!(vec = ip_vec(v))) {
		if (v == p)
			return;
		vec = vec_new();
		vec_push(vec, v);
		zt_ipindex_put(m, network, ip, (void *)((uintptr_t)vec | IP_VEC_TAG));
	}
	if (vec_find(vec, p) < 0)
		vec_push(vec, p);
}

static void ip_multi_del(struct zt_ipindex *m, const char *network, const struct zt_ip *ip,
                         const void *p)
{
	void *v = zt_ipindex_get(m, network, ip);
	struct vec *vec;

	if (!v)
		return;
	if (!(vec = ip_vec(v))) {
		if (v == p)
			zt_ipindex_del(m, network, ip);
		return;
	}
	if (vec_remove(vec, p) && vec->n == 1) {
		zt_ipindex_put(m, network, ip, vec->v[0]);
		vec_clear(vec);
		free(vec);
	}
}

/* Puts neu in old's place among the owners of (network, ip); false when old is not one. */
static bool ip_multi_replace(struct zt_ipindex *m, const char *network, const struct zt_ip *ip,
                             const void *old, void *neu)
{
	void *v = zt_ipindex_get(m, network, ip);
	struct vec *vec;
	ssize_t at;

	if (!v)
		return false;
	if (!(vec = ip_vec(v))) {
		if (v != old)
			return false;
		zt_ipindex_put(m, network, ip, neu);
		return true;
	}
	if ((at = vec_find(vec, old)) < 0 || vec_find(vec, neu) >= 0)
		return false;
	vec->v[at] = neu;
	return true;
}

static void ip_multi_free_all(struct zt_ipindex *m)
{
	size_t pos = 0;
	void *v;

	while (zt_ipindex_next(m, &pos, &v)) {
		struct vec *vec = ip_vec(v);
		if (vec) {
			vec_clear(vec);
			free(vec);
		}
	}
	zt_ipindex_clear(m);
}

/* ---- pointer map --------------------------------------------------------------------------- */

static size_t ptr_home(const struct ptrmap *m, const void *key)
{
	uint64_t x = (uint64_t)(uintptr_t)key;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (size_t)x & (m->cap - 1);
}

static void *ptr_get(const struct ptrmap *m, const void *key)
{
	if (!m->n)
		return NULL;
	for (size_t i = ptr_home(m, key);; i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i].key == key)
			return m->slots[i].val;
		if (!m->slots[i].key)
			return NULL;
	}
}

static void ptr_put(struct ptrmap *m, const void *key, void *val);

static void ptr_grow(struct ptrmap *m)
{
	struct ptrmap old = *m;

	m->cap = old.cap ? old.cap * 2 : 16;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	m->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key)
			ptr_put(m, old.slots[i].key, old.slots[i].val);
	free(old.slots);
}

/* key must not be present. */
static void ptr_put(struct ptrmap *m, const void *key, void *val)
{
	size_t i;

	if ((m->n + 1) * 5 > m->cap * 4)
		ptr_grow(m);
	for (i = ptr_home(m, key); m->slots[i].key; i = (i + 1) & (m->cap - 1))
		;
	m->slots[i] = (struct ptr_slot){.key = key, .val = val};
	m->n++;
}

static void *ptr_del(struct ptrmap *m, const void *key)
{
	size_t mask = m->cap - 1, i, j;
	void *val;

	if (!m->n)
		return NULL;
	for (i = ptr_home(m, key); m->slots[i].key != key; i = (i + 1) & mask)
		if (!m->slots[i].key)
			return NULL;
	val = m->slots[i].val;
	/* Backward shift: move later entries of the probe run into the hole when their home
	 * slot does not lie cyclically in (hole, their position]. */
	for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t h = ptr_home(m, m->slots[j].key);
		if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i] = (struct ptr_slot){0};
	m->n--;
	return val;
}

/* ---- lifecycle and events ----------------------------------------------------------------- */

struct zt_store *zt_store_new(void)
{
	struct zt_store *s = xcalloc(1, sizeof(*s));

	/* The owning tables are keyed by their values' own keys. */
	zt_hmap_init_borrowed(&s->workloads);
	zt_hmap_init_borrowed(&s->slots);
	zt_hmap_init_borrowed(&s->policies);
	zt_hmap_init_borrowed(&s->pol_sets);
	pthread_rwlock_init(&s->lock, NULL);
	zt_live_inc(&zt_live_state_store);
	return s;
}

/* ---- policy sets ---------------------------------------------------------------------------- */

static void pol_set_free(struct pol_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		free(set->keys[i]);
	free(set->keys);
	free(set->pols);
	free(set->ns);
	free(set->id);
	free(set);
}

/* The id of w's set: each string as "<length>:<bytes>", so no two lists share one. */
static char *pol_set_id(const struct zt_workload *w)
{
	char *id = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&id, &len);

	if (!f)
		abort();
	fprintf(f, "%zu:%s", strlen(w->ns), w->ns);
	for (size_t i = 0; i < w->n_authorization_policies; i++)
		fprintf(f, "%zu:%s", strlen(w->authorization_policies[i]),
		        w->authorization_policies[i]);
	if (fclose(f))
		abort();
	return id;
}

static bool first_pass(const struct zt_policy *p)
{
	return p->dry_run || p->action == ZT_POLICY_DENY;
}

static void pol_ent_set(struct pol_ent *e, const struct pol_set *set, struct zt_policy *p)
{
	e->p = p;
	e->skip = p && (p->scope == ZT_POLICY_GLOBAL ||
	                (p->scope == ZT_POLICY_NAMESPACE && strcmp(p->ns, set->ns) == 0));
	e->first = p && first_pass(p);
	e->allow = p && !e->first;
	e->ports = p ? zt_policy_port_mask(p) : 0;
}

/* The set for w (created and resolved if new) with one more user. */
static struct pol_set *pol_set_acquire(struct zt_store *s, const struct zt_workload *w)
{
	char *id = pol_set_id(w);
	struct pol_set *set = zt_hmap_get(&s->pol_sets, id);

	if (set) {
		free(id);
		set->users++;
		return set;
	}
	set = xcalloc(1, sizeof(*set));
	set->id = id;
	set->ns = xstrdup(w->ns);
	set->keys = xcalloc(w->n_authorization_policies, sizeof(*set->keys));
	set->pols = xcalloc(w->n_authorization_policies, sizeof(*set->pols));
	for (size_t i = 0; i < w->n_authorization_policies; i++) {
		const char *key = w->authorization_policies[i];
		bool dup = false;
		for (size_t j = 0; !dup && j < set->n; j++)
			dup = strcmp(set->keys[j], key) == 0;
		if (dup)
			continue;
		set->keys[set->n] = xstrdup(key);
		pol_ent_set(&set->pols[set->n], set, zt_hmap_get(&s->policies, key));
		multi_add(&s->sets_by_key, key, set);
		set->n++;
	}
	set->users = 1;
	zt_hmap_put(&s->pol_sets, set->id, set);
	return set;
}

static void pol_set_release(struct zt_store *s, struct pol_set *set)
{
	if (!set || --set->users)
		return;
	for (size_t i = 0; i < set->n; i++)
		multi_del(&s->sets_by_key, set->keys[i], set);
	zt_hmap_del(&s->pol_sets, set->id);
	pol_set_free(set);
}

/* Points every set naming key at p (NULL: the policy is gone). */
static void pol_sets_resolve(struct zt_store *s, const char *key, struct zt_policy *p)
{
	const struct vec *v = zt_hmap_get(&s->sets_by_key, key);

	for (size_t i = 0; v && i < v->n; i++) {
		struct pol_set *set = v->v[i];
		for (size_t j = 0; j < set->n; j++)
			if (strcmp(set->keys[j], key) == 0)
				pol_ent_set(&set->pols[j], set, p);
	}
}

/* Moves w's place in the policy sets from old to neu (either may be NULL). */
static void pol_sets_reindex(struct zt_store *s, struct zt_workload *old, struct zt_workload *neu)
{
	struct pol_set *set = old ? ptr_del(&s->wl_sets, old) : NULL;

	if (neu && neu->n_authorization_policies)
		ptr_put(&s->wl_sets, neu, pol_set_acquire(s, neu));
	pol_set_release(s, set);
}

static void slot_free(struct svc_slot *slot)
{
	zt_service_unref(slot->svc);
	vec_clear(&slot->members);
	free(slot->key);
	free(slot);
}

void zt_store_free(struct zt_store *s)
{
	size_t pos;
	void *v;

	if (!s)
		return;
	pos = 0;
	while (zt_hmap_next(&s->slots, &pos, NULL, &v))
		slot_free(v);
	zt_hmap_clear(&s->slots);
	pos = 0;
	while (zt_hmap_next(&s->workloads, &pos, NULL, &v))
		zt_workload_unref(v);
	zt_hmap_clear(&s->workloads);
	pos = 0;
	while (zt_hmap_next(&s->policies, &pos, NULL, &v))
		zt_policy_unref(v);
	zt_hmap_clear(&s->policies);
	ip_multi_free_all(&s->wl_by_ip);
	ip_multi_free_all(&s->svc_by_vip);
	multi_free_all(&s->pol_by_ns);
	for (size_t i = 0; i < s->cidr_vips.n; i++)
		free(s->cidr_vips.v[i]);
	vec_clear(&s->cidr_vips);
	vec_clear(&s->pol_global);
	pos = 0;
	while (zt_hmap_next(&s->pol_sets, &pos, NULL, &v))
		pol_set_free(v);
	zt_hmap_clear(&s->pol_sets);
	multi_free_all(&s->sets_by_key);
	free(s->wl_sets.slots);
	free(s->watchers);
	zt_pb_scratch_clear(&s->scratch);
	pthread_rwlock_destroy(&s->lock);
	free(s);
	zt_live_dec(&zt_live_state_store);
}

void zt_store_watch(struct zt_store *s, zt_store_watch_cb cb, void *arg)
{
	if (s->n_watchers == s->cap_watchers) {
		size_t cap = s->cap_watchers ? s->cap_watchers * 2 : 4;
		struct watcher *w = xrealloc(s->watchers, cap * sizeof(*w));
		s->watchers = w;
		s->cap_watchers = cap;
	}
	s->watchers[s->n_watchers++] = (struct watcher){.cb = cb, .arg = arg};
}

static void reap_watchers(struct zt_store *s)
{
	size_t j = 0;

	for (size_t i = 0; i < s->n_watchers; i++)
		if (!s->watchers[i].dead)
			s->watchers[j++] = s->watchers[i];
	s->n_watchers = j;
}

int zt_store_unwatch(struct zt_store *s, zt_store_watch_cb cb, void *arg)
{
	for (size_t i = 0; i < s->n_watchers; i++) {
		struct watcher *w = &s->watchers[i];
		if (!w->dead && w->cb == cb && w->arg == arg) {
			w->dead = true;
			if (!s->dispatching)
				reap_watchers(s);
			return 0;
		}
	}
	return ZT_E_NOTFOUND;
}

static void emit(struct zt_store *s, const struct zt_store_event *ev)
{
	/* Watchers added during dispatch wait for the next event. */
	size_t n = s->n_watchers;

	s->dispatching++;
	for (size_t i = 0; i < n; i++)
		if (!s->watchers[i].dead)
			s->watchers[i].cb(s, ev, s->watchers[i].arg);
	if (--s->dispatching == 0)
		reap_watchers(s);
}

/* ---- services ----------------------------------------------------------------------------- */

static struct svc_slot *slot_get(struct zt_store *s, const char *key)
{
	struct svc_slot *slot = zt_hmap_get(&s->slots, key);

	if (!slot) {
		slot = xcalloc(1, sizeof(*slot));
		slot->key = xstrdup(key);
		zt_hmap_put(&s->slots, slot->key, slot);
	}
	return slot;
}

/* Drops the slot once it has neither a service nor members. */
static void slot_gc(struct zt_store *s, struct svc_slot *slot)
{
	if (!slot->svc && slot->members.n == 0) {
		zt_hmap_del(&s->slots, slot->key);
		slot_free(slot);
	}
}

/* Publishes a new version of slot's service with endpoints from its current members. */
static void republish(struct svc_slot *slot)
{
	struct zt_service *old = slot->svc;

	if (!old)
		return;
	slot->svc = zt_service_with_endpoints(old, (struct zt_workload *const *)slot->members.v,
	                                      slot->members.n);
	zt_service_unref(old);
}

static void vips_index(struct zt_store *s, struct svc_slot *slot, bool add)
{
	const struct zt_service *svc = slot->svc;

	for (size_t i = 0; i < svc->n_vips; i++) {
		const struct zt_vip *vip = &svc->vips[i];
		if (!zt_vip_is_host(vip))
			continue;
		if (add)
			ip_multi_add(&s->svc_by_vip, vip->network, &vip->cidr.ip, slot);
		else
			ip_multi_del(&s->svc_by_vip, vip->network, &vip->cidr.ip, slot);
	}
	if (!add) {
		size_t j = 0;
		for (size_t i = 0; i < s->cidr_vips.n; i++) {
			struct cidr_vip *cv = s->cidr_vips.v[i];
			if (cv->slot == slot)
				free(cv);
			else
				s->cidr_vips.v[j++] = cv;
		}
		s->cidr_vips.n = j;
		return;
	}
	for (size_t i = 0; i < svc->n_vips; i++) {
		if (zt_vip_is_host(&svc->vips[i]))
			continue;
		struct cidr_vip *cv = xmalloc(sizeof(*cv));
		cv->slot = slot;
		cv->vip = &svc->vips[i];
		vec_push(&s->cidr_vips, cv);
	}
}

int zt_store_put_service(struct zt_store *s, struct zt_service *svc)
{
	struct svc_slot *slot;
	struct zt_service *old;

	if (s->dispatching)
		return ZT_E_STATE;
	wr_lock(s);
	slot = slot_get(s, svc->key);
	old = slot->svc;
	if (old)
		vips_index(s, slot, false);
	slot->svc = zt_service_with_endpoints(svc, (struct zt_workload *const *)slot->members.v,
	                                      slot->members.n);
	vips_index(s, slot, true);
	zt_service_unref(old);
	s->applied++;
	zt_debug("service %s %s (%zu endpoints)", svc->key, old ? "updated" : "added",
	         slot->members.n);
	unlock(s);
	return 0;
}

static int remove_service(struct zt_store *s, const char *key)
{
	struct svc_slot *slot;

	wr_lock(s);
	slot = zt_hmap_get(&s->slots, key);
	if (!slot || !slot->svc) {
		unlock(s);
		return ZT_E_NOTFOUND;
	}
	vips_index(s, slot, false);
	zt_service_unref(slot->svc);
	slot->svc = NULL;
	s->removed++;
	zt_debug("service %s removed (%zu endpoints staged)", key, slot->members.n);
	slot_gc(s, slot);
	unlock(s);
	return 0;
}

/* ---- workloads ---------------------------------------------------------------------------- */

static bool ip_indexed(const struct zt_workload *w)
{
	return w && w->network_mode != ZT_NETWORK_HOST;
}

/* Moves the IP index from old to neu (either may be NULL). A workload keeping an address
 * keeps its place among the workloads sharing it. */
static void ips_reindex(struct zt_store *s, struct zt_workload *old, struct zt_workload *neu)
{
	if (old == neu)
		return;
	if (ip_indexed(old)) {
		for (size_t i = 0; i < old->n_ips; i++) {
			const struct zt_ip *ip = &old->ips[i];
			if (ip_indexed(neu) && strcmp(neu->network, old->network) == 0 &&
			    zt_workload_has_ip(neu, ip) &&
			    ip_multi_replace(&s->wl_by_ip, old->network, ip, old, neu))
				continue;
			ip_multi_del(&s->wl_by_ip, old->network, ip, old);
		}
	}
	if (ip_indexed(neu))
		for (size_t i = 0; i < neu->n_ips; i++)
			ip_multi_add(&s->wl_by_ip, neu->network, &neu->ips[i], neu);
}

/* Moves service membership from old to neu and republishes every service touched. */
static void members_reindex(struct zt_store *s, struct zt_workload *old, struct zt_workload *neu)
{
	struct vec touched = {0};

	for (size_t i = 0; old && i < old->n_services; i++) {
		struct svc_slot *slot = zt_hmap_get(&s->slots, old->services[i].key);
		ssize_t at = slot ? vec_find(&slot->members, old) : -1;
		if (at < 0)
			continue;
		if (neu && zt_workload_service(neu, slot->key))
			slot->members.v[at] = neu;
		else
			vec_remove(&slot->members, old);
		vec_push(&touched, slot);
	}
	for (size_t i = 0; neu && i < neu->n_services; i++) {
		struct svc_slot *slot = slot_get(s, neu->services[i].key);
		if (vec_find(&slot->members, neu) < 0)
			vec_push(&slot->members, neu);
		if (vec_find(&touched, slot) < 0)
			vec_push(&touched, slot);
	}
	for (size_t i = 0; i < touched.n; i++) {
		republish(touched.v[i]);
		slot_gc(s, touched.v[i]);
	}
	vec_clear(&touched);
}

int zt_store_put_workload(struct zt_store *s, struct zt_workload *w)
{
	struct zt_workload *old;
	struct zt_store_event ev = {0};

	if (s->dispatching)
		return ZT_E_STATE;
	zt_workload_ref(w);
	wr_lock(s);
	old = zt_hmap_put(&s->workloads, w->uid, w);
	ips_reindex(s, old, w);
	members_reindex(s, old, w);
	pol_sets_reindex(s, old, w);
	s->applied++;
	unlock(s);
	zt_debug("workload %s %s", w->uid, old ? "updated" : "added");
	ev.kind = old ? ZT_STORE_WORKLOAD_CHANGED : ZT_STORE_WORKLOAD_ADDED;
	ev.key = w->uid;
	ev.old_workload = old;
	ev.new_workload = w;
	emit(s, &ev);
	zt_workload_unref(old);
	return 0;
}

static int remove_workload(struct zt_store *s, const char *uid)
{
	struct zt_workload *old;
	struct zt_store_event ev = {0};

	wr_lock(s);
	if (!(old = zt_hmap_del(&s->workloads, uid))) {
		unlock(s);
		return ZT_E_NOTFOUND;
	}
	ips_reindex(s, old, NULL);
	members_reindex(s, old, NULL);
	pol_sets_reindex(s, old, NULL);
	s->removed++;
	unlock(s);
	zt_debug("workload %s removed", old->uid);
	ev.kind = ZT_STORE_WORKLOAD_REMOVED;
	ev.key = old->uid;
	ev.old_workload = old;
	emit(s, &ev);
	zt_workload_unref(old);
	return 0;
}

/* ---- policies ----------------------------------------------------------------------------- */

static void policy_index(struct zt_store *s, struct zt_policy *p, bool add)
{
	if (p->scope == ZT_POLICY_GLOBAL) {
		if (add)
			vec_push(&s->pol_global, p);
		else
			vec_remove(&s->pol_global, p);
	} else if (p->scope == ZT_POLICY_NAMESPACE) {
		if (add)
			multi_add(&s->pol_by_ns, p->ns, p);
		else
			multi_del(&s->pol_by_ns, p->ns, p);
	}
}

int zt_store_put_policy(struct zt_store *s, struct zt_policy *p)
{
	struct zt_policy *old;
	struct zt_store_event ev = {0};

	if (s->dispatching)
		return ZT_E_STATE;
	zt_policy_ref(p);
	wr_lock(s);
	old = zt_hmap_put(&s->policies, p->key, p);
	if (old)
		policy_index(s, old, false);
	policy_index(s, p, true);
	pol_sets_resolve(s, p->key, p);
	s->applied++;
	unlock(s);
	zt_debug("policy %s %s", p->key, old ? "updated" : "added");
	ev.kind = ZT_STORE_POLICY_CHANGED;
	ev.key = p->key;
	ev.old_policy = old;
	ev.new_policy = p;
	emit(s, &ev);
	zt_policy_unref(old);
	return 0;
}

int zt_store_remove_authorization(void *arg, const char *name)
{
	struct zt_store *s = arg;
	struct zt_policy *old;
	struct zt_store_event ev = {0};

	if (s->dispatching)
		return ZT_E_STATE;
	wr_lock(s);
	if (!(old = zt_hmap_del(&s->policies, name))) {
		unlock(s);
		return ZT_E_NOTFOUND;
	}
	policy_index(s, old, false);
	pol_sets_resolve(s, old->key, NULL);
	s->removed++;
	unlock(s);
	zt_debug("policy %s removed", old->key);
	ev.kind = ZT_STORE_POLICY_CHANGED;
	ev.key = old->key;
	ev.old_policy = old;
	emit(s, &ev);
	zt_policy_unref(old);
	return 0;
}

/* ---- xDS entry points --------------------------------------------------------------------- */

static int unpack(struct zt_store *s, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                  size_t len, ProtobufCMessage **msg, char *err, size_t errlen)
{
	int rc;

	if (s->dispatching) {
		return zt_errf(ZT_E_STATE, err, errlen, "store changed from a watcher");
	}
	rc = zt_pb_unpack_scratch(d, data, len, ZT_STORE_MAX_RESOURCE, &s->scratch, msg);
	if (rc)
		zt_errf(rc, err, errlen, "cannot decode %s: %s", d->name, zt_strerror(rc));
	return rc;
}

int zt_store_apply_address(void *arg, const char *name, const char *version, const uint8_t *data,
                           size_t len, char *err, size_t errlen)
{
	struct zt_store *s = arg;
	ProtobufCMessage *msg = NULL;
	const Istio__Workload__Address *addr;
	struct zt_workload *w = NULL;
	struct zt_service *svc = NULL;
	int rc;

	rc = unpack(s, &istio__workload__address__descriptor, data, len, &msg, err, errlen);
	if (rc)
		goto out;
	addr = (const Istio__Workload__Address *)msg;
	switch (addr->type_case) {
	case ISTIO__WORKLOAD__ADDRESS__TYPE_WORKLOAD:
		rc = zt_workload_decode(addr->workload, &w, err, errlen);
		if (rc == 0)
			rc = zt_store_put_workload(s, w);
		break;
	case ISTIO__WORKLOAD__ADDRESS__TYPE_SERVICE:
		rc = zt_service_decode(addr->service, &svc, err, errlen);
		if (rc == 0)
			rc = zt_store_put_service(s, svc);
		break;
	default:
		rc = reject(err, errlen, "address has neither a workload nor a service");
	}
out:
	if (rc && rc != ZT_E_STATE) {
		s->rejected++;
		zt_debug("address %s (version %s) rejected: %s", name ? name : "",
		         version ? version : "", err && errlen ? err : "");
	}
	zt_workload_unref(w);
	zt_service_unref(svc);
	zt_pb_scratch_reset(&s->scratch); /* msg */
	return rc;
}

int zt_store_apply_authorization(void *arg, const char *name, const char *version,
                                 const uint8_t *data, size_t len, char *err, size_t errlen)
{
	struct zt_store *s = arg;
	ProtobufCMessage *msg = NULL;
	struct zt_policy *p = NULL;
	int rc;

	rc = unpack(s, &istio__security__authorization__descriptor, data, len, &msg, err, errlen);
	if (rc == 0)
		rc = zt_policy_decode((const Istio__Security__Authorization *)msg, &p, err, errlen);
	if (rc == 0)
		rc = zt_store_put_policy(s, p);
	if (rc && rc != ZT_E_STATE) {
		s->rejected++;
		zt_debug("authorization %s (version %s) rejected: %s", name ? name : "",
		         version ? version : "", err && errlen ? err : "");
	}
	zt_policy_unref(p);
	zt_pb_scratch_reset(&s->scratch); /* msg */
	return rc;
}

int zt_store_remove_address(void *arg, const char *name)
{
	struct zt_store *s = arg;

	if (s->dispatching)
		return ZT_E_STATE;
	if (remove_workload(s, name) == 0)
		return 0;
	return remove_service(s, name);
}

/* ---- lookups ------------------------------------------------------------------------------ */

struct zt_workload *zt_store_workload_by_uid(const struct zt_store *s, const char *uid)
{
	struct zt_workload *w;

	rd_lock(s);
	w = zt_workload_ref(zt_hmap_get(&s->workloads, uid));
	unlock(s);
	return w;
}

struct zt_workload *zt_store_workload_by_ip(const struct zt_store *s, const char *network,
                                            const struct zt_ip *ip)
{
	struct zt_workload *best = NULL;
	void *one, *const *v;
	size_t n;

	rd_lock(s);
	n = ip_multi_items(&s->wl_by_ip, network, ip, &one, &v);
	for (size_t i = 0; i < n; i++)
		if (!best || zt_workload_ip_rank(v[i]) > zt_workload_ip_rank(best))
			best = v[i];
	best = zt_workload_ref(best);
	unlock(s);
	return best;
}

struct zt_service *zt_store_service_by_key(const struct zt_store *s, const char *key)
{
	struct svc_slot *slot;
	struct zt_service *svc;

	rd_lock(s);
	slot = zt_hmap_get(&s->slots, key);
	svc = slot ? zt_service_ref(slot->svc) : NULL;
	unlock(s);
	return svc;
}

struct zt_service *zt_store_service_by_host(const struct zt_store *s, const char *ns,
                                            const char *hostname)
{
	char *key = NULL;
	struct zt_service *svc;

	if (asprintf(&key, "%s/%s", ns, hostname) < 0)
		abort();
	svc = zt_store_service_by_key(s, key);
	free(key);
	return svc;
}

static bool same_ns(const struct zt_service *svc, const char *caller_ns)
{
	return caller_ns && strcmp(svc->ns, caller_ns) == 0;
}

static struct zt_service *service_by_vip(const struct zt_store *s, const char *network,
                                         const struct zt_ip *ip, const char *caller_ns)
{
	void *one, *const *v;
	size_t n;
	struct zt_service *best = NULL;
	int best_score = -1;
	const struct zt_vip *best_vip = NULL;

	if (!network)
		network = "";
	if ((n = ip_multi_items(&s->svc_by_vip, network, ip, &one, &v))) {
		for (size_t i = 0; i < n; i++) {
			struct zt_service *svc = ((struct svc_slot *)v[i])->svc;
			int score = same_ns(svc, caller_ns) * 2 + svc->canonical;
			if (zt_service_visible_to(svc, caller_ns) && score > best_score) {
				best = svc;
				best_score = score;
			}
		}
		if (best)
			return zt_service_ref(best);
	}
	for (size_t i = 0; i < s->cidr_vips.n; i++) {
		const struct cidr_vip *cv = s->cidr_vips.v[i];
		struct zt_service *svc = cv->slot->svc;
		bool better;
		if (strcmp(cv->vip->network, network) != 0 ||
		    !zt_cidr_contains(&cv->vip->cidr, ip) || !zt_service_visible_to(svc, caller_ns))
			continue;
		if (!best)
			better = true;
		else if (same_ns(svc, caller_ns) != same_ns(best, caller_ns))
			better = same_ns(svc, caller_ns);
		else if (cv->vip->cidr.prefix != best_vip->cidr.prefix)
			better = cv->vip->cidr.prefix > best_vip->cidr.prefix;
		else
			better = svc->canonical && !best->canonical;
		if (better) {
			best = svc;
			best_vip = cv->vip;
		}
	}
	return zt_service_ref(best);
}

struct zt_service *zt_store_service_by_vip(const struct zt_store *s, const char *network,
                                           const struct zt_ip *ip, const char *caller_ns)
{
	struct zt_service *svc;

	rd_lock(s);
	svc = service_by_vip(s, network, ip, caller_ns);
	unlock(s);
	return svc;
}

struct zt_policy *zt_store_policy_by_key(const struct zt_store *s, const char *key)
{
	struct zt_policy *p;

	rd_lock(s);
	p = zt_policy_ref(zt_hmap_get(&s->policies, key));
	unlock(s);
	return p;
}

/* ---- iteration ---------------------------------------------------------------------------- */

static int foreach_workload(const struct zt_store *s, zt_store_workload_cb cb, void *arg)
{
	size_t pos = 0;
	void *v;
	int rc;

	while (zt_hmap_next(&s->workloads, &pos, NULL, &v))
		if ((rc = cb(v, arg)))
			return rc;
	return 0;
}

static int foreach_service(const struct zt_store *s, zt_store_service_cb cb, void *arg)
{
	size_t pos = 0;
	void *v;
	int rc;

	while (zt_hmap_next(&s->slots, &pos, NULL, &v)) {
		struct svc_slot *slot = v;
		if (slot->svc && (rc = cb(slot->svc, arg)))
			return rc;
	}
	return 0;
}

static int foreach_policy(const struct zt_store *s, zt_store_policy_cb cb, void *arg)
{
	size_t pos = 0;
	void *v;
	int rc;

	while (zt_hmap_next(&s->policies, &pos, NULL, &v))
		if ((rc = cb(v, arg)))
			return rc;
	return 0;
}

struct walk {
	zt_store_policy_cb cb;
	void *arg;
	int port;           /* -1: every policy */
	bool skipped_allow; /* an enforced ALLOW policy was left out for the port */
};

/* Whether a walk for one port leaves out a policy with these ports (noting an ALLOW). */
static bool walk_skips(struct walk *k, uint64_t ports, bool allow)
{
	if (k->port < 0 || zt_policy_may_hold_on(ports, (uint16_t)k->port))
		return false;
	k->skipped_allow |= allow;
	return true;
}

/* Visits p, from a global or namespace list, in the pass it belongs to. */
static int walk_one(struct walk *k, struct zt_policy *p, bool first)
{
	if (first_pass(p) != first || walk_skips(k, zt_policy_port_mask(p), !first))
		return 0;
	return k->cb(p, k->arg);
}

/* One pass of foreach_policy_for: the policies with first_pass() == first. */
static int walk(const struct zt_store *s, const struct zt_workload *w, bool first,
                struct walk *k)
{
	const struct vec *ns = zt_hmap_get(&s->pol_by_ns, w->ns);
	const struct pol_set *set;
	int rc;

	for (size_t i = 0; i < s->pol_global.n; i++)
		if ((rc = walk_one(k, s->pol_global.v[i], first)))
			return rc;
	for (size_t i = 0; ns && i < ns->n; i++)
		if ((rc = walk_one(k, ns->v[i], first)))
			return rc;
	if (!w->n_authorization_policies)
		return 0;
	if ((set = ptr_get(&s->wl_sets, w))) {
		for (size_t i = 0; i < set->n; i++) {
			const struct pol_ent *e = &set->pols[i];
			if (!e->p) {
				if (first)
					zt_warn("workload %s names unknown policy %s", w->uid,
					        set->keys[i]);
				continue;
			}
			if (e->skip || e->first != first || walk_skips(k, e->ports, e->allow))
				continue;
			if ((rc = k->cb(e->p, k->arg)))
				return rc;
		}
		return 0;
	}
	/* A workload not (or no longer) in the store: its keys looked up one by one. */
	for (size_t i = 0; i < w->n_authorization_policies; i++) {
		const char *key = w->authorization_policies[i];
		struct zt_policy *p = zt_hmap_get(&s->policies, key);
		bool dup = false;
		if (!p) {
			if (first)
				zt_warn("workload %s names unknown policy %s", w->uid, key);
			continue;
		}
		/* Already selected above, or listed twice on the workload. */
		if (p->scope == ZT_POLICY_GLOBAL ||
		    (p->scope == ZT_POLICY_NAMESPACE && strcmp(p->ns, w->ns) == 0))
			continue;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(w->authorization_policies[j], key) == 0;
		if (!dup && (rc = walk_one(k, p, first)))
			return rc;
	}
	return 0;
}

static int foreach_policy_for(const struct zt_store *s, const struct zt_workload *w,
                              struct walk *k)
{
	int rc = walk(s, w, true, k);

	return rc ? rc : walk(s, w, false, k);
}

int zt_store_foreach_workload(const struct zt_store *s, zt_store_workload_cb cb, void *arg)
{
	int rc;

	rd_lock(s);
	rc = foreach_workload(s, cb, arg);
	unlock(s);
	return rc;
}

int zt_store_foreach_service(const struct zt_store *s, zt_store_service_cb cb, void *arg)
{
	int rc;

	rd_lock(s);
	rc = foreach_service(s, cb, arg);
	unlock(s);
	return rc;
}

int zt_store_foreach_policy(const struct zt_store *s, zt_store_policy_cb cb, void *arg)
{
	int rc;

	rd_lock(s);
	rc = foreach_policy(s, cb, arg);
	unlock(s);
	return rc;
}

/* Callbacks run under the read lock: they may look up (glibc's rwlock lets a reader take it
 * again), never change the store. */
int zt_store_foreach_policy_for(const struct zt_store *s, const struct zt_workload *w,
                                zt_store_policy_cb cb, void *arg)
{
	struct walk k = {.cb = cb, .arg = arg, .port = -1};
	int rc;

	rd_lock(s);
	rc = foreach_policy_for(s, w, &k);
	unlock(s);
	return rc;
}

int zt_store_foreach_policy_on_port(const struct zt_store *s, const struct zt_workload *w,
                                    uint16_t port, bool *skipped_allow, zt_store_policy_cb cb,
                                    void *arg)
{
	struct walk k = {.cb = cb, .arg = arg, .port = port};
	int rc;

	rd_lock(s);
	rc = foreach_policy_for(s, w, &k);
	unlock(s);
	*skipped_allow = k.skipped_allow;
	return rc;
}

void zt_store_get_counters(const struct zt_store *s, struct zt_store_counters *out)
{
	size_t pos = 0;
	void *v;

	memset(out, 0, sizeof(*out));
	rd_lock(s);
	out->workloads = zt_hmap_count(&s->workloads);
	out->policies = zt_hmap_count(&s->policies);
	while (zt_hmap_next(&s->slots, &pos, NULL, &v)) {
		const struct svc_slot *slot = v;
		if (slot->svc) {
			out->services++;
			out->endpoints += slot->members.n;
		} else {
			out->staged_endpoints += slot->members.n;
		}
	}
	out->applied = s->applied;
	out->rejected = s->rejected;
	out->removed = s->removed;
	unlock(s);
}
