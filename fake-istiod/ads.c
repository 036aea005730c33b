/* Delta ADS server (spec §3). Resources are immutable and refcounted: a type's set is an
 * immutable snapshot holding one reference to each, and a stream knows what its client has
 * either as that (sub->known, sorted by name, one reference each) or, once a wildcard client
 * holds exactly a published set, as one reference to that snapshot (sub->base). So a resource
 * unchanged across sets and streams exists once, and a synced stream costs no memory per
 * resource. A push is always "current set minus known", computed when the stream can take
 * more bytes; several changes before that coalesce into one response. From a base snapshot
 * it is a walk over two pointer arrays that skips equal pointers without touching them. A
 * first send to a wildcard client is a prefix of one snapshot growing part by part, each
 * part costing only its own resources. */
#include "fake-istiod/ads.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "protocol/pb.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("ads");
ZT_LIVE_DEFINE(fi_ads_stream);
ZT_LIVE_DEFINE(fi_ads_resource);

/* Bytes of a response outside its resources and removed names: type URL, nonce, version. */
#define HEADER_COST(url_len) ((url_len) + 128)

struct res {
	unsigned refs;
	size_t cost;               /* bytes it adds to a response: tag, length, encoded Resource */
	Google__Protobuf__Any any; /* type_url borrowed from the type, value owned */
	Envoy__Service__Discovery__V3__Resource msg; /* owns name and version */
};

/* One published set: sorted by name, one reference to each resource. Never changes. */
struct snap {
	unsigned refs;
	struct res **set;
	size_t n;
};

struct rtype {
	SLIST_ENTRY(rtype) link;
	char *url;
	struct snap *cur; /* never NULL */
	uint64_t version; /* bumped by every set that changes something */
	char version_text[24];
};

/* What one stream's client holds and wants of one type. */
struct sub {
	SLIST_ENTRY(sub) link;
	char *url;
	bool wildcard;
	bool dirty;       /* known may differ from the set: compute a push */
	bool must_answer; /* send a response even if it is empty (first request) */
	char **names;     /* explicit subscriptions, sorted, unique, owned */
	size_t nnames;
	struct snap *base;  /* when not NULL: the client has exactly base->set[0..base_n) (known
	                       empty); base_n < base->n only during a first send in parts */
	size_t base_n;
	struct res **known; /* else what the client has, sorted by name, one reference each */
	size_t nknown;
	char **gone; /* names to report removed although not in known: owned, sorted, unique */
	size_t ngone;
	char nonce_prefix[48];
	uint64_t sent_seq;     /* nonce sequence of the last response */
	uint64_t answered_seq; /* of the last response ACKed or NACKed */
};

struct stream {
	struct fi_ads *ads;
	LIST_ENTRY(stream) link;
	struct zt_grpc_call *call;
	uint64_t id;
	char node[256]; /* node id, sanitised for logs; "" until the client sends one */
	SLIST_HEAD(, sub) subs;
	size_t nsubs;
	bool ended; /* status sent or call ending: no more input or output */
};

struct fi_ads {
	struct zt_loop *loop;
	SLIST_HEAD(, rtype) types;
	LIST_HEAD(, stream) streams;
	struct zt_defer push;
	size_t max_msg;
	size_t max_request;
	uint64_t last_stream_id;
	struct fi_ads_stats st;
};

/* ---- utilities ------------------------------------------------------------------------------- */

/* Copies peer text for a log line: bounded, control bytes replaced. */
static void sanitize(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[i] = '\0';
}

static const char *node_of(const struct stream *s)
{
	return s->node[0] ? s->node : "-";
}

static size_t varint_size(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Bytes a name adds to removed_resources. */
static size_t name_cost(const char *name)
{
	size_t len = strlen(name);

	return 1 + varint_size(len) + len;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_res(const void *a, const void *b)
{
	return strcmp((*(struct res *const *)a)->msg.name, (*(struct res *const *)b)->msg.name);
}

static int cmp_key_res(const void *key, const void *elem)
{
	return strcmp(key, (*(struct res *const *)elem)->msg.name);
}

static int cmp_key_str(const void *key, const void *elem)
{
	return strcmp(key, *(char *const *)elem);
}

/* qsort, which must not be given a NULL array even when it is empty. */
static void sort(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(v, n, size, cmp);
}

static struct res *find_res(struct res *const *v, size_t n, const char *name)
{
	struct res *const *r = n ? bsearch(name, v, n, sizeof(*v), cmp_key_res) : NULL;

	return r ? *r : NULL;
}

static bool has_name(char *const *v, size_t n, const char *name)
{
	return n && bsearch(name, v, n, sizeof(*v), cmp_key_str) != NULL;
}

/* ---- resources and types ----------------------------------------------------------------- */

static struct res *res_ref(struct res *r)
{
	r->refs++;
	return r;
}

static void res_unref(struct res *r)
{
	if (!r || --r->refs > 0)
		return;
	free(r->msg.name);
	free(r->msg.version);
	free(r->any.value.data);
	free(r);
	zt_live_dec(&zt_live_fi_ads_resource);
}

static struct res *res_new(struct rtype *t, const struct fi_resource *in)
{
	struct res *r = xcalloc(1, sizeof(*r));
	size_t packed;

	google__protobuf__any__init(&r->any);
	envoy__service__discovery__v3__resource__init(&r->msg);
	r->refs = 1;
	r->any.type_url = t->url;
	if (in->len) {
		r->any.value.data = xmalloc(in->len);
		memcpy(r->any.value.data, in->data, in->len);
		r->any.value.len = in->len;
	}
	r->msg.name = xstrdup(in->name);
	r->msg.version = xstrdup(in->version);
	r->msg.resource = &r->any;
	packed = protobuf_c_message_get_packed_size(&r->msg.base);
	r->cost = 1 + varint_size(packed) + packed;
	zt_live_inc(&zt_live_fi_ads_resource);
	return r;
}

/* Takes over set[0..n) and the references it holds. */
static struct snap *snap_new(struct res **set, size_t n)
{
	struct snap *sn = xcalloc(1, sizeof(*sn));

	sn->refs = 1;
	sn->set = set;
	sn->n = n;
	return sn;
}

static struct snap *snap_ref(struct snap *sn)
{
	sn->refs++;
	return sn;
}

static void snap_unref(struct snap *sn)
{
	if (!sn || --sn->refs > 0)
		return;
	for (size_t i = 0; i < sn->n; i++)
		res_unref(sn->set[i]);
	free(sn->set);
	free(sn);
}

static struct rtype *find_type(const struct fi_ads *ads, const char *url)
{
	struct rtype *t;

	SLIST_FOREACH(t, &ads->types, link)
		if (strcmp(t->url, url) == 0)
			return t;
	return NULL;
}

static void type_free(struct rtype *t)
{
	snap_unref(t->cur);
	free(t->url);
	free(t);
}

/* ---- subscriptions ----------------------------------------------------------------------- */

static bool wanted(const struct sub *sub, const char *name)
{
	return sub->wildcard || has_name(sub->names, sub->nnames, name);
}

static struct sub *find_sub(const struct stream *s, const char *url)
{
	struct sub *sub;

	SLIST_FOREACH(sub, &s->subs, link)
		if (strcmp(sub->url, url) == 0)
			return sub;
	return NULL;
}

static struct sub *sub_new(struct stream *s, const char *url)
{
	struct sub *sub = xcalloc(1, sizeof(*sub));

	sub->url = xstrdup(url);
	snprintf(sub->nonce_prefix, sizeof(sub->nonce_prefix), "%" PRIu64 ".%zu.", s->id, s->nsubs);
	SLIST_INSERT_HEAD(&s->subs, sub, link);
	s->nsubs++;
	return sub;
}

/* Turns a base snapshot back into a known array, for the general path. */
static void materialize(struct sub *sub)
{
	struct snap *b = sub->base;

	if (!b)
		return;
	free(sub->known);
	sub->known = xcalloc(sub->base_n ? sub->base_n : 1, sizeof(*sub->known));
	for (size_t i = 0; i < sub->base_n; i++)
		sub->known[i] = res_ref(b->set[i]);
	sub->nknown = sub->base_n;
	sub->base = NULL;
	snap_unref(b);
}

/* When the client holds exactly the current set of a wildcard subscription, keeps one
 * reference to that snapshot instead of one per resource. */
static void rebase(struct sub *sub, struct snap *cur)
{
	if (!sub->wildcard || sub->ngone || sub->nknown != cur->n)
		return;
	for (size_t i = 0; i < cur->n; i++)
		if (sub->known[i] != cur->set[i])
			return;
	for (size_t i = 0; i < sub->nknown; i++)
		res_unref(sub->known[i]);
	free(sub->known);
	sub->known = NULL;
	sub->nknown = 0;
	sub->base = snap_ref(cur);
	sub->base_n = cur->n;
}

static void sub_free(struct sub *sub)
{
	snap_unref(sub->base);
	for (size_t i = 0; i < sub->nnames; i++)
		free(sub->names[i]);
	for (size_t i = 0; i < sub->nknown; i++)
		res_unref(sub->known[i]);
	for (size_t i = 0; i < sub->ngone; i++)
		free(sub->gone[i]);
	free(sub->names);
	free(sub->known);
	free(sub->gone);
	free(sub->url);
	free(sub);
}

/* Appends to gone; the caller restores its order with gone_sort() after a batch. */
static void gone_add(struct sub *sub, const char *name)
{
	sub->gone = xrealloc(sub->gone, (sub->ngone + 1) * sizeof(*sub->gone));
	sub->gone[sub->ngone++] = xstrdup(name);
}

/* Sorts gone and drops repeats, so asking for the same names again does not grow it. */
static void gone_sort(struct sub *sub)
{
	size_t k = 0;

	sort(sub->gone, sub->ngone, sizeof(*sub->gone), cmp_str);
	for (size_t i = 0; i < sub->ngone; i++) {
		if (k > 0 && strcmp(sub->gone[k - 1], sub->gone[i]) == 0)
			free(sub->gone[i]);
		else
			sub->gone[k++] = sub->gone[i];
	}
	sub->ngone = k;
}

/* Drops what the client is no longer subscribed to, without telling it (spec §3.3: an
 * unsubscribed client forgets those resources itself). */
static void prune(struct sub *sub)
{
	size_t k = 0;

	for (size_t i = 0; i < sub->nknown; i++) {
		if (wanted(sub, sub->known[i]->msg.name))
			sub->known[k++] = sub->known[i];
		else
			res_unref(sub->known[i]);
	}
	sub->nknown = k;
	k = 0;
	for (size_t i = 0; i < sub->ngone; i++) {
		if (wanted(sub, sub->gone[i]))
			sub->gone[k++] = sub->gone[i];
		else
			free(sub->gone[i]);
	}
	sub->ngone = k;
}

/* A name in resource_names_subscribe: the next response mentions it, as a resource or as
 * removed, even if the client had it or asked before (an on-demand lookup waits for exactly
 * that, spec §3.4, and istiod answers every such request). */
static void mention(struct sub *sub, const char *name)
{
	struct res **hit = sub->nknown ? bsearch(name, sub->known, sub->nknown, sizeof(*sub->known),
	                                         cmp_key_res)
	                               : NULL;

	if (hit) {
		res_unref(*hit);
		memmove(hit, hit + 1,
		        (sub->nknown - (size_t)(hit - sub->known) - 1) * sizeof(*hit));
		sub->nknown--;
	}
	gone_add(sub, name);
}

/* Applies resource_names_subscribe, then resource_names_unsubscribe ("*" switches wildcard on
 * and off; an initial request with no names is a wildcard one). Returns 0 or ZT_E_TOOBIG
 * when more than FI_ADS_MAX_NAMES names would be subscribed. */
static int update_subscription(struct sub *sub,
                               const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *rq,
                               bool first)
{
	size_t old = sub->nnames, k;
	char **v;

	if (rq->n_resource_names_subscribe || rq->n_resource_names_unsubscribe)
		materialize(sub);
	if (first && rq->n_resource_names_subscribe == 0)
		sub->wildcard = true;
	if (sub->nnames + rq->n_resource_names_subscribe > FI_ADS_MAX_NAMES)
		return ZT_E_TOOBIG;
	v = xrealloc(sub->names, (sub->nnames + rq->n_resource_names_subscribe + 1) * sizeof(*v));
	sub->names = v;
	for (size_t i = 0; i < rq->n_resource_names_subscribe; i++) {
		const char *name = rq->resource_names_subscribe[i];

		if (strcmp(name, "*") == 0)
			sub->wildcard = true;
		else if (!has_name(sub->names, old, name))
			sub->names[sub->nnames++] = xstrdup(name);
	}
	/* The new names, sorted and deduplicated, then merged with the old ones. */
	sort(sub->names + old, sub->nnames - old, sizeof(*v), cmp_str);
	k = old;
	for (size_t i = old; i < sub->nnames; i++) {
		if (k > old && strcmp(sub->names[k - 1], sub->names[i]) == 0) {
			free(sub->names[i]);
			continue;
		}
		sub->names[k++] = sub->names[i];
	}
	sub->nnames = k;
	sort(sub->names, sub->nnames, sizeof(*v), cmp_str);
	for (size_t i = 0; i < rq->n_resource_names_subscribe; i++)
		if (strcmp(rq->resource_names_subscribe[i], "*") != 0)
			mention(sub, rq->resource_names_subscribe[i]);
	gone_sort(sub);

	if (rq->n_resource_names_unsubscribe == 0)
		return 0;
	for (size_t i = 0; i < rq->n_resource_names_unsubscribe; i++) {
		const char *name = rq->resource_names_unsubscribe[i];
		char **hit;

		if (strcmp(name, "*") == 0) {
			sub->wildcard = false;
			continue;
		}
		hit = sub->nnames ? bsearch(name, sub->names, sub->nnames, sizeof(*v), cmp_key_str)
		                  : NULL;
		if (hit) {
			size_t at = (size_t)(hit - sub->names);
			free(*hit);
			memmove(hit, hit + 1, (sub->nnames - at - 1) * sizeof(*v));
			sub->nnames--;
		}
	}
	prune(sub);
	return 0;
}

/* First request of a type: what the client already holds (initial_resource_versions) and is
 * current needs no resend; what it holds that does not exist is reported removed. */
static void seed_known(struct stream *s, struct sub *sub,
                       const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *rq)
{
	const struct rtype *t = find_type(s->ads, sub->url);
	size_t n = rq->n_initial_resource_versions, k = 0;

	sub->known = xcalloc(n, sizeof(*sub->known));
	for (size_t i = 0; i < n; i++) {
		const char *name = rq->initial_resource_versions[i]->key;
		const char *version = rq->initial_resource_versions[i]->value;
		struct res *r;

		if (!name || !name[0] || !version || !wanted(sub, name))
			continue;
		r = t ? find_res(t->cur->set, t->cur->n, name) : NULL;
		if (r && strcmp(r->msg.version, version) == 0)
			sub->known[k++] = res_ref(r);
		else if (!r)
			gone_add(sub, name);
	}
	gone_sort(sub);
	sort(sub->known, k, sizeof(*sub->known), cmp_res);
	/* A map key sent twice: keep one. */
	sub->nknown = 0;
	for (size_t i = 0; i < k; i++) {
		if (sub->nknown && sub->known[sub->nknown - 1] == sub->known[i])
			res_unref(sub->known[i]);
		else
			sub->known[sub->nknown++] = sub->known[i];
	}
}

/* ---- pushing ----------------------------------------------------------------------------- */

enum { GONE_KEEP, GONE_DROP, GONE_REPORT };

/* Sends one DeltaDiscoveryResponse on s (marks the stream ended if that fails). */
static void send_response(struct stream *s, struct sub *sub, const struct rtype *t,
                          Envoy__Service__Discovery__V3__Resource **adds, size_t nadd,
                          char **removed, size_t nrm, bool more)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp;
	char nonce[sizeof(sub->nonce_prefix) + 24];
	/* A state split over several responses: every part but the last says so (more), and
	 * ztunnel counts itself synced only after the last (ZT_XDS_MORE_SUFFIX). */
	char sysver[sizeof(t->version_text) + sizeof(";more")];
	uint8_t *buf = NULL;
	size_t len = 0;

	envoy__service__discovery__v3__delta_discovery_response__init(&resp);
	snprintf(nonce, sizeof(nonce), "%s%" PRIu64, sub->nonce_prefix, ++sub->sent_seq);
	snprintf(sysver, sizeof(sysver), "%s%s", t ? t->version_text : "0", more ? ";more" : "");
	resp.system_version_info = sysver;
	resp.type_url = sub->url;
	resp.nonce = nonce;
	resp.n_resources = nadd;
	resp.resources = adds;
	resp.n_removed_resources = nrm;
	resp.removed_resources = removed;
	if (zt_pb_pack(&resp.base, &buf, &len) < 0 || zt_grpc_call_send(s->call, buf, len) < 0)
		s->ended = true;
	else
		s->ads->st.responses++;
	zt_debug("stream %" PRIu64 " (node %s): %s nonce %s: %zu resources, %zu removed", s->id,
	         node_of(s), sub->url, nonce, nadd, nrm);
	free(buf);
	sub->must_answer = false;
}

/* The push from a base snapshot to the current one, for a wildcard subscription with no
 * names pending: equal pointers are skipped without reading the resources, so the cost is
 * the size of the change plus one pass over two pointer arrays. Returns false, having sent
 * nothing, when the change does not fit in one response (the general path splits it). */
static bool respond_from_base(struct stream *s, struct sub *sub, const struct rtype *t)
{
	struct snap *old = sub->base, *cur = t->cur;
	size_t i = 0, j = 0, nadd = 0, nrm = 0, cap = 0, used = 0;
	size_t budget = s->ads->max_msg - HEADER_COST(strlen(sub->url));
	Envoy__Service__Discovery__V3__Resource **adds = NULL;
	char **removed = NULL;
	bool fits = true;

	while (old != cur && fits && (i < cur->n || j < old->n)) {
		if (i < cur->n && j < old->n && cur->set[i] == old->set[j]) {
			i++, j++;
			continue;
		}
		int cmp = i == cur->n ? 1 : j == old->n ? -1 : cmp_res(&cur->set[i], &old->set[j]);
		struct res *add = NULL;
		const char *gone = NULL;
		if (cmp == 0 && strcmp(cur->set[i]->msg.version, old->set[j]->msg.version) != 0)
			add = cur->set[i];
		else if (cmp < 0)
			add = cur->set[i];
		else if (cmp > 0)
			gone = old->set[j]->msg.name;
		i += cmp <= 0;
		j += cmp >= 0;
		if (!add && !gone)
			continue;
		used += add ? add->cost : name_cost(gone);
		if (used > budget && nadd + nrm > 0) {
			fits = false;
			break;
		}
		if (nadd + nrm == cap) {
			cap = cap ? 2 * cap : 16;
			adds = xrealloc(adds, cap * sizeof(*adds));
			removed = xrealloc(removed, cap * sizeof(*removed));
		}
		if (add)
			adds[nadd++] = &add->msg;
		else
			removed[nrm++] = (char *)gone;
	}
	if (fits) {
		if (nadd || nrm || sub->must_answer)
			send_response(s, sub, t, adds, nadd, removed, nrm, false);
		s->ads->st.from_base++;
		sub->base = snap_ref(cur);
		sub->base_n = cur->n;
		snap_unref(old);
		sub->dirty = false;
	}
	free(adds);
	free(removed);
	return fits;
}

/* The next part of a first send to a wildcard client that has base->set[0..base_n) of the
 * current set: the following resources that fit in one response. A part costs its own
 * resources, not a walk of the whole set (a million-workload sync is sent in ~70 parts). */
static void respond_rest(struct stream *s, struct sub *sub, const struct rtype *t)
{
	const struct snap *b = sub->base;
	size_t budget = s->ads->max_msg - HEADER_COST(strlen(sub->url));
	size_t i = sub->base_n, used = 0, nadd = 0, cap = 0;
	Envoy__Service__Discovery__V3__Resource **adds = NULL;

	for (; i < b->n && (nadd == 0 || used + b->set[i]->cost <= budget); i++) {
		if (nadd == cap) {
			cap = cap ? 2 * cap : 1024;
			adds = xrealloc(adds, cap * sizeof(*adds));
		}
		used += b->set[i]->cost;
		adds[nadd++] = &b->set[i]->msg;
	}
	send_response(s, sub, t, adds, nadd, NULL, 0, i < b->n);
	sub->base_n = i;
	sub->dirty = i < b->n;
	free(adds);
}

/* Sends one response with as much of "set minus known" as fits in max_msg (at least one
 * entry), and records it as known. Clears sub->dirty once nothing is left. */
static void respond(struct stream *s, struct sub *sub)
{
	struct fi_ads *ads = s->ads;
	const struct rtype *t = find_type(ads, sub->url);

	if (t && sub->wildcard && !sub->ngone) {
		if (!sub->base && !sub->nknown) {
			sub->base = snap_ref(t->cur); /* holding nothing yet: a first send */
			sub->base_n = 0;
		}
		if (sub->base == t->cur && sub->base_n < t->cur->n) {
			respond_rest(s, sub, t);
			return;
		}
		if (sub->base && sub->base_n == sub->base->n && respond_from_base(s, sub, t))
			return;
	}
	materialize(sub);

	struct res *const *set = t ? t->cur->set : NULL;
	size_t n = t ? t->cur->n : 0, i = 0, j = 0, nk = 0, nadd = 0, nrm = 0, used = 0;
	size_t budget = ads->max_msg - HEADER_COST(strlen(sub->url));
	struct res **known = xcalloc(n + sub->nknown, sizeof(*known));
	Envoy__Service__Discovery__V3__Resource **adds = xcalloc(n, sizeof(*adds));
	char **removed = xcalloc(sub->nknown + sub->ngone, sizeof(*removed));
	unsigned char *gone_act = xcalloc(sub->ngone, 1);
	bool full = false;

	while (i < n || j < sub->nknown) {
		int cmp = i == n                    ? 1
		          : j == sub->nknown        ? -1
		          : set[i] == sub->known[j] ? 0
		                                    : cmp_res(&set[i], &sub->known[j]);
		struct res *cur = cmp <= 0 ? set[i++] : NULL;
		struct res *old = cmp >= 0 ? sub->known[j++] : NULL;
		size_t cost;

		if (cur && !old && !wanted(sub, cur->msg.name))
			continue;
		if (cur && old && (cur == old || strcmp(cur->msg.version, old->msg.version) == 0)) {
			known[nk++] = res_ref(cur);
			continue;
		}
		if (!full) {
			cost = cur ? cur->cost : name_cost(old->msg.name);
			full = used + cost > budget && nadd + nrm > 0;
		}
		if (full) {
			if (old)
				known[nk++] = res_ref(old);
			continue;
		}
		used += cost;
		if (cur) {
			adds[nadd++] = &cur->msg;
			known[nk++] = res_ref(cur);
		} else {
			removed[nrm++] = old->msg.name;
		}
	}
	for (size_t g = 0; g < sub->ngone; g++) {
		const char *name = sub->gone[g];
		size_t cost = name_cost(name);

		if (find_res(known, nk, name)) {
			gone_act[g] = GONE_DROP; /* the client has it now */
		} else if (find_res(set, n, name)) {
			gone_act[g] = GONE_KEEP; /* exists: a later response sends it */
		} else if (full || (used + cost > budget && nadd + nrm > 0)) {
			gone_act[g] = GONE_KEEP;
			full = true;
		} else {
			gone_act[g] = GONE_REPORT;
			removed[nrm++] = sub->gone[g];
			used += cost;
		}
	}

	if (nadd || nrm || sub->must_answer)
		send_response(s, sub, t, adds, nadd, removed, nrm, full);

	/* Commit: the new known replaces the old, reported or obsolete gone names go. */
	for (size_t x = 0; x < sub->nknown; x++)
		res_unref(sub->known[x]);
	free(sub->known);
	sub->known = known;
	sub->nknown = nk;
	j = 0;
	for (size_t g = 0; g < sub->ngone; g++) {
		if (gone_act[g] == GONE_KEEP)
			sub->gone[j++] = sub->gone[g];
		else
			free(sub->gone[g]);
	}
	sub->ngone = j;
	sub->dirty = full;
	if (!full && t)
		rebase(sub, t->cur);
	free(gone_act);
	free(removed);
	free(adds);
}

/* Sends what each subscription owes while the call takes more bytes; on_writable resumes. */
static void flush(struct stream *s)
{
	struct sub *sub;

	SLIST_FOREACH(sub, &s->subs, link)
		while (sub->dirty && !s->ended && zt_grpc_call_writable(s->call))
			respond(s, sub);
}

static void on_push(struct zt_defer *d, void *arg)
{
	struct fi_ads *ads = arg;
	struct stream *s;

	(void)d;
	LIST_FOREACH(s, &ads->streams, link)
		if (!s->ended)
			flush(s);
}

/* ---- streams ----------------------------------------------------------------------------- */

static void stream_free(struct stream *s)
{
	struct fi_ads *ads = s->ads;

	struct sub *sub;

	LIST_REMOVE(s, link);
	while ((sub = SLIST_FIRST(&s->subs))) {
		SLIST_REMOVE_HEAD(&s->subs, link);
		sub_free(sub);
	}
	ads->st.streams--;
	free(s);
	zt_live_dec(&zt_live_fi_ads_stream);
}

/* Ends the stream for a bad request; the server and other streams carry on. */
static void reject(struct stream *s, int code, const char *why)
{
	zt_warn("stream %" PRIu64 " (node %s): %s: %s", s->id, node_of(s), zt_grpc_code_name(code),
	        why);
	s->ended = true;
	s->ads->st.rejected++;
	zt_grpc_call_finish(s->call, code, why);
}

/* A request with response_nonce: ACK or NACK of a response still unanswered, else stale. */
static void answer(struct stream *s, struct sub *sub,
                   const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *rq)
{
	const char *nonce = rq->response_nonce;
	size_t plen = strlen(sub->nonce_prefix);
	char shown[64], msg[512];
	unsigned long long seq = 0;
	char *end = NULL;

	sanitize(shown, sizeof(shown), nonce);
	if (strncmp(nonce, sub->nonce_prefix, plen) == 0 && nonce[plen] >= '0' &&
	    nonce[plen] <= '9') {
		errno = 0;
		seq = strtoull(nonce + plen, &end, 10);
		if (errno || *end)
			seq = 0;
	}
	if (seq == 0 || seq > sub->sent_seq || seq <= sub->answered_seq) {
		s->ads->st.stale++;
		zt_debug("stream %" PRIu64 " (node %s): %s: ignoring stale nonce %s", s->id,
		         node_of(s), sub->url, shown);
		return;
	}
	sub->answered_seq = seq;
	if (!rq->error_detail) {
		s->ads->st.acks++;
		zt_debug("stream %" PRIu64 " (node %s): %s: ACK %s", s->id, node_of(s), sub->url,
		         shown);
		return;
	}
	/* A NACK is only logged: istiod does not resend the rejected resources either. */
	s->ads->st.nacks++;
	sanitize(msg, sizeof(msg), rq->error_detail->message);
	zt_warn("NACK from node %s for %s nonce %s: code %d: %s", node_of(s), sub->url, shown,
	        (int)rq->error_detail->code, msg);
}

static void handle(struct stream *s, const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *rq)
{
	struct sub *sub;
	bool first = false;

	if (!s->node[0] && rq->node && rq->node->id && rq->node->id[0]) {
		sanitize(s->node, sizeof(s->node), rq->node->id);
		zt_info("stream %" PRIu64 ": node %s", s->id, s->node);
	}
	if (!rq->type_url || !rq->type_url[0]) {
		reject(s, ZT_GRPC_INVALID_ARGUMENT, "DeltaDiscoveryRequest without type_url");
		return;
	}
	if (strlen(rq->type_url) > FI_ADS_MAX_TYPE_URL) {
		reject(s, ZT_GRPC_INVALID_ARGUMENT, "DeltaDiscoveryRequest type_url too long");
		return;
	}
	sub = find_sub(s, rq->type_url);
	if (!sub) {
		if (s->nsubs >= FI_ADS_MAX_TYPES) {
			reject(s, ZT_GRPC_RESOURCE_EXHAUSTED, "too many type URLs on one stream");
			return;
		}
		sub = sub_new(s, rq->type_url);
		first = true;
		zt_info("stream %" PRIu64 " (node %s): subscribes to %s, holding %zu resources",
		        s->id, node_of(s), sub->url, rq->n_initial_resource_versions);
	}
	if (rq->response_nonce && rq->response_nonce[0])
		answer(s, sub, rq);
	if (update_subscription(sub, rq, first) < 0) {
		reject(s, ZT_GRPC_RESOURCE_EXHAUSTED, "too many resource names subscribed");
		return;
	}
	if (first) {
		seed_known(s, sub, rq);
		sub->must_answer = true;
	}
	if (first || rq->n_resource_names_subscribe || rq->n_resource_names_unsubscribe)
		sub->dirty = true;
	flush(s);
}

static void on_message(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	struct stream *s = arg;
	ProtobufCMessage *m = NULL;
	int rc;

	(void)call;
	if (s->ended)
		return;
	rc = zt_pb_unpack(&envoy__service__discovery__v3__delta_discovery_request__descriptor, p,
	                  len, s->ads->max_request, &m);
	if (rc == ZT_E_TOOBIG) {
		reject(s, ZT_GRPC_RESOURCE_EXHAUSTED, "DeltaDiscoveryRequest too large");
		return;
	}
	if (rc < 0) {
		reject(s, ZT_GRPC_INVALID_ARGUMENT, "malformed DeltaDiscoveryRequest");
		return;
	}
	handle(s, (Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *)m);
	zt_pb_free(m);
}

/* The client is done sending: end the stream as istiod does, with OK. */
static void on_half_close(struct zt_grpc_call *call, void *arg)
{
	struct stream *s = arg;

	if (s->ended)
		return;
	s->ended = true;
	zt_grpc_call_finish(call, ZT_GRPC_OK, NULL);
}

static void on_writable(struct zt_grpc_call *call, void *arg)
{
	struct stream *s = arg;

	(void)call;
	if (!s->ended)
		flush(s);
}

static void on_done(struct zt_grpc_call *call, int code, const char *message, void *arg)
{
	struct stream *s = arg;

	(void)call;
	zt_info("stream %" PRIu64 " (node %s) closed: %s%s%s", s->id, node_of(s),
	        zt_grpc_code_name(code), message && message[0] ? ": " : "", message ? message : "");
	stream_free(s);
}

static const struct zt_grpc_call_cbs stream_cbs = {
        .on_message = on_message,
        .on_half_close = on_half_close,
        .on_done = on_done,
        .on_writable = on_writable,
};

static void on_call(struct zt_grpc_call *call, void *arg)
{
	struct fi_ads *ads = arg;
	struct stream *s = xcalloc(1, sizeof(*s));

	s->ads = ads;
	s->call = call;
	s->id = ++ads->last_stream_id;
	SLIST_INIT(&s->subs);
	LIST_INSERT_HEAD(&ads->streams, s, link);
	ads->st.streams++;
	zt_live_inc(&zt_live_fi_ads_stream);
	zt_grpc_call_set_cbs(call, &stream_cbs, s);
}

/* ---- public ------------------------------------------------------------------------------ */

struct fi_ads *fi_ads_new(struct zt_loop *loop)
{
	struct fi_ads *ads = xcalloc(1, sizeof(*ads));

	ads->loop = loop;
	SLIST_INIT(&ads->types);
	LIST_INIT(&ads->streams);
	ads->max_msg = FI_ADS_DEFAULT_MAX_MSG;
	ads->max_request = FI_ADS_MAX_REQUEST;
	return ads;
}

void fi_ads_free(struct fi_ads *ads)
{
	static const struct zt_grpc_call_cbs detached;
	struct stream *s;
	struct rtype *t;

	if (!ads)
		return;
	zt_defer_stop(&ads->push);
	while ((s = LIST_FIRST(&ads->streams))) {
		zt_grpc_call_set_cbs(s->call, &detached, NULL);
		zt_grpc_call_cancel(s->call);
		stream_free(s);
	}
	while ((t = SLIST_FIRST(&ads->types))) {
		SLIST_REMOVE_HEAD(&ads->types, link);
		type_free(t);
	}
	free(ads);
}

struct zt_grpc_method fi_ads_method(struct fi_ads *ads)
{
	return (struct zt_grpc_method){.path = FI_ADS_METHOD_PATH, .handler = on_call, .arg = ads};
}

size_t fi_ads_set_resources(struct fi_ads *ads, size_t n)
{
	if (n > (SIZE_MAX - FI_ADS_MAX_REQUEST) / FI_ADS_REQUEST_PER_RESOURCE)
		n = (SIZE_MAX - FI_ADS_MAX_REQUEST) / FI_ADS_REQUEST_PER_RESOURCE;
	ads->max_request = FI_ADS_MAX_REQUEST + n * FI_ADS_REQUEST_PER_RESOURCE;
	return ads->max_request;
}

void fi_ads_set_max_msg(struct fi_ads *ads, size_t max_msg)
{
	if (max_msg < 1024)
		max_msg = 1024;
	if (max_msg > INT32_MAX)
		max_msg = INT32_MAX;
	ads->max_msg = max_msg;
}

int fi_ads_set(struct fi_ads *ads, const char *type_url, const struct fi_resource *res, size_t n)
{
	return fi_ads_set_hinted(ads, type_url, res, n, NULL);
}

int fi_ads_set_hinted(struct fi_ads *ads, const char *type_url, const struct fi_resource *res,
                      size_t n, const void **handles)
{
	struct rtype *t;
	struct res **set = NULL;
	size_t url_len, changed = 0, i = 0, j = 0;
	bool created = false;
	int err = 0;

	if (!type_url || (url_len = strlen(type_url)) == 0 || url_len > FI_ADS_MAX_TYPE_URL ||
	    (n && !res))
		return -EINVAL;
	for (size_t k = 0; k < n; k++)
		if (!res[k].name || !res[k].name[0] || !res[k].version ||
		    (res[k].len && !res[k].data))
			return -EINVAL;
	t = find_type(ads, type_url);
	if (!t) {
		t = xcalloc(1, sizeof(*t));
		t->url = xstrdup(type_url);
		t->cur = snap_new(NULL, 0);
		snprintf(t->version_text, sizeof(t->version_text), "0");
		created = true;
	}
	/* Input sorted by name (as the converter makes it) is matched against the held set in
	 * one merge (a hinted resource by pointer, within a few places of the merge's position);
	 * once the input is found out of order, the rest is looked up and the whole sorted. */
	bool sorted = true;
	const struct snap *held = t->cur;
	size_t prev_pos = SIZE_MAX;
	set = xcalloc(n ? n : 1, sizeof(*set));
	for (size_t k = 0, h = 0; k < n; k++) {
		struct res *old = NULL;
		size_t pos = SIZE_MAX;

		for (size_t a = h; sorted && res[k].held && a < held->n && a < h + 8; a++)
			if (held->set[a] == res[k].held) {
				old = held->set[a];
				pos = a;
				h = a + 1;
				break;
			}
		/* Two hinted neighbours in held order are in name order (held is sorted). */
		if (sorted && k && !(pos != SIZE_MAX && prev_pos != SIZE_MAX && pos > prev_pos))
			sorted = strcmp(res[k - 1].name, res[k].name) < 0;
		if (old && sorted) {
			set[k] = res_ref(old);
		} else {
			old = NULL;
			if (sorted) {
				int c = 1;
				while (h < held->n && (c = strcmp(held->set[h]->msg.name, res[k].name)) < 0)
					h++;
				if (h < held->n && c == 0) {
					old = held->set[h];
					pos = h;
				}
			} else {
				old = find_res(held->set, held->n, res[k].name);
			}
			if (old && strcmp(old->msg.version, res[k].version) == 0)
				set[k] = res_ref(old);
			else
				set[k] = res_new(t, &res[k]);
		}
		prev_pos = pos;
		if (set[k]->cost + HEADER_COST(url_len) > ads->max_msg)
			err = ZT_E_TOOBIG;
	}
	for (size_t k = 0; handles && k < n; k++)
		handles[k] = err ? NULL : set[k];
	if (!sorted)
		sort(set, n, sizeof(*set), cmp_res);
	/* Input found strictly sorted has no duplicate names. */
	for (size_t k = 1; !sorted && k < n; k++)
		if (strcmp(set[k - 1]->msg.name, set[k]->msg.name) == 0)
			err = -EINVAL;
	if (err < 0) {
		for (size_t k = 0; k < n; k++)
			res_unref(set[k]);
		free(set);
		if (created)
			type_free(t);
		return err;
	}

	/* Kept resources are the same objects, so pointer inequality is a change. */
	while (i < n || j < held->n) {
		if (i < n && j < held->n && set[i] == held->set[j]) {
			i++, j++;
			continue;
		}
		int cmp = i == n ? 1 : j == held->n ? -1 : cmp_res(&set[i], &held->set[j]);

		changed++;
		i += cmp <= 0;
		j += cmp >= 0;
	}
	snap_unref(t->cur);
	t->cur = snap_new(set, n);
	if (created) {
		SLIST_INSERT_HEAD(&ads->types, t, link);
	}
	if (changed) {
		t->version++;
		snprintf(t->version_text, sizeof(t->version_text), "%" PRIu64, t->version);
		struct stream *s;

		LIST_FOREACH(s, &ads->streams, link) {
			struct sub *sub = find_sub(s, type_url);
			if (sub)
				sub->dirty = true;
		}
		zt_defer_start(ads->loop, &ads->push, on_push, ads);
	}
	zt_debug("%s: %zu resources, %zu changed or removed, version %s", type_url, n, changed,
	         t->version_text);
	return changed > INT_MAX ? INT_MAX : (int)changed;
}

void fi_ads_push_now(struct fi_ads *ads)
{
	zt_defer_stop(&ads->push);
	on_push(&ads->push, ads);
}

size_t fi_ads_count(const struct fi_ads *ads, const char *type_url)
{
	const struct rtype *t = find_type(ads, type_url);

	return t ? t->cur->n : 0;
}

void fi_ads_stats(const struct fi_ads *ads, struct fi_ads_stats *out)
{
	*out = ads->st;
}
