/* Local DNS answers (spec §13.2). The candidate names (every alias, each followed by its
 * wildcard forms) are numbered in the order they are tried; one pass over the services finds,
 * for each candidate, the preferred service whose hostname it is, and the lowest numbered
 * candidate with a service wins. Invariant: nothing here allocates per service and nothing
 * keeps a pointer into the store past the reference returned in the answer. */
#include "dns/lookup.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "runtime/hmap.h"
#include "state/service.h"
#include "state/workload.h"

#define MAX_CANDS (ZT_DNS_MAX_ALIASES * 8)

int zt_dns_name_norm(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);

	if (n && in[n - 1] == '.')
		n--;
	if (n == 0 || n > ZT_DNS_NAME_MAX || n >= outlen)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '.' && (i == 0 || in[i - 1] == '.'))
			return -1;
		out[i] = (char)tolower((unsigned char)in[i]);
	}
	out[n] = '\0';
	return 0;
}

static size_t count_labels(const char *s)
{
	size_t n = 1;

	for (; *s; s++)
		n += *s == '.';
	return n;
}

static bool ends_with_domain(const char *q, const char *dom, size_t *cut)
{
	size_t ql = strlen(q), dl = strlen(dom);

	if (dl == 0 || ql <= dl + 1 || q[ql - dl - 1] != '.' || strcmp(q + ql - dl, dom) != 0)
		return false;
	*cut = ql - dl - 1;
	return true;
}

struct alist {
	struct zt_dns_alias *v;
	size_t n, max;
};

static void add(struct alist *l, const char *name, bool stripped, const char *base)
{
	if (l->n == l->max || strlen(name) > ZT_DNS_NAME_MAX)
		return;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return;
	snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s", name);
	l->v[l->n].stripped = stripped;
	snprintf(l->v[l->n].base, sizeof(l->v[l->n].base), "%s", stripped ? base : "");
	l->n++;
}

/* name and its expansions by label count (spec §13.2 rule 3). */
static void expand(struct alist *l, const char *name, const struct zt_dns_client *c, bool stripped,
                   const char *base)
{
	const char *d = c->cluster_domain, *ns = c->ns;
	char buf[2 * ZT_DNS_NAME_MAX + 64], first[ZT_DNS_NAME_MAX + 1];
	size_t labels = count_labels(name);
	const char *dot, *last = strrchr(name, '.');

	add(l, name, stripped, base);
	switch (labels) {
	case 1:
		snprintf(buf, sizeof(buf), "%s.%s.svc.%s", name, ns, d);
		add(l, buf, stripped, base);
		break;
	case 2:
		snprintf(buf, sizeof(buf), "%s.svc.%s", name, d);
		add(l, buf, stripped, base);
		snprintf(buf, sizeof(buf), "%s.%s.svc.%s", name, ns, d);
		add(l, buf, stripped, base);
		break;
	case 3:
		if (strcmp(last + 1, "svc") == 0) {
			dot = last;
			snprintf(first, sizeof(first), "%.*s", (int)(dot - name), name);
			snprintf(buf, sizeof(buf), "%s.svc.%s", first, d);
			add(l, buf, stripped, base);
		}
		snprintf(buf, sizeof(buf), "%s.svc.%s", name, d);
		add(l, buf, stripped, base);
		break;
	case 4:
		if (strcmp(last + 1, "svc") == 0) {
			snprintf(buf, sizeof(buf), "%s.%s", name, d);
			add(l, buf, stripped, base);
		}
		break;
	default:
		break;
	}
}

size_t zt_dns_aliases(const char *q, const struct zt_dns_client *c, struct zt_dns_alias *out,
                      size_t max)
{
	struct alist l = {out, 0, max};
	char own[3][ZT_DNS_NAME_MAX + 1], stripped[ZT_DNS_NAME_MAX + 1];
	const char *defs[3];
	const char *const *search = c->search;
	size_t n_search = c->n_search, cut;

	if (!search) {
		snprintf(own[0], sizeof(own[0]), "%s.svc.%s", c->ns, c->cluster_domain);
		snprintf(own[1], sizeof(own[1]), "svc.%s", c->cluster_domain);
		snprintf(own[2], sizeof(own[2]), "%s", c->cluster_domain);
		for (int i = 0; i < 3; i++)
			defs[i] = own[i];
		search = defs;
		n_search = 3;
	}
	expand(&l, q, c, false, NULL);
	for (size_t i = 0; i < n_search; i++) {
		if (!ends_with_domain(q, search[i], &cut))
			continue;
		snprintf(stripped, sizeof(stripped), "%.*s", (int)cut, q);
		expand(&l, stripped, c, true, stripped);
	}
	return l.n;
}

/* ---- matching ----------------------------------------------------------------------------- */

struct cand {
	char name[ZT_DNS_NAME_MAX + 1];
	size_t alias;
	bool wildcard;
	struct zt_service *best; /* borrowed during the pass */
};

struct pass {
	const struct zt_dns_client *c;
	struct zt_hmap idx; /* candidate name -> struct cand * */
	char svc_suffix[ZT_DNS_NAME_MAX + 8];
};

/* Spec §13.2 rule 5: the preference among services sharing a name. */
static bool better(const struct pass *p, const struct zt_service *a, const struct zt_service *b)
{
	const char *n = p->c->ns, *pref = p->c->preferred_ns;
	bool an = strcmp(a->ns, n) == 0, bn = strcmp(b->ns, n) == 0;

	if (an != bn)
		return an;
	if (a->canonical != b->canonical)
		return a->canonical;
	if (pref && *pref) {
		bool ap = strcmp(a->ns, pref) == 0, bp = strcmp(b->ns, pref) == 0;
		if (ap != bp)
			return ap;
	}
	return false;
}

static int visit(struct zt_service *svc, void *arg)
{
	struct pass *p = arg;
	char host[ZT_DNS_NAME_MAX + 1];
	struct cand *cd;
	size_t hl, sl;

	if (zt_dns_name_norm(svc->hostname, host, sizeof(host)) < 0)
		return 0;
	if (!(cd = zt_hmap_get(&p->idx, host)))
		return 0;
	hl = strlen(host);
	sl = strlen(p->svc_suffix);
	if (svc->n_vips == 0 && !(hl > sl && strcmp(host + hl - sl, p->svc_suffix) == 0))
		return 0;
	if (!zt_service_visible_to(svc, p->c->ns))
		return 0;
	if (!cd->best || better(p, svc, cd->best))
		cd->best = svc;
	return 0;
}

static void push(struct pass *p, struct cand *cands, size_t *nc, const char *a, const char *b,
                 size_t alias, bool wildcard)
{
	struct cand *cd = &cands[*nc];
	size_t al = strlen(a), bl = strlen(b);

	if (*nc == MAX_CANDS || al + bl >= sizeof(cd->name))
		return;
	memcpy(cd->name, a, al);
	memcpy(cd->name + al, b, bl + 1);
	cd->alias = alias;
	cd->wildcard = wildcard;
	cd->best = NULL;
	if (zt_hmap_get(&p->idx, cd->name))
		return;
	zt_hmap_put(&p->idx, cd->name, cd);
	(*nc)++;
}

static bool family_ok(const struct zt_dns_client *c, const struct zt_service *svc, int family)
{
	if (family == AF_INET6 && !c->ipv6_enabled)
		return false;
	if (family == AF_INET6 && svc->ip_families == ZT_IP_FAMILIES_IPV4_ONLY)
		return false;
	if (family == AF_INET && svc->ip_families == ZT_IP_FAMILIES_IPV6_ONLY)
		return false;
	return true;
}

static void collect_addrs(const struct zt_dns_client *c, const struct zt_service *svc, int family,
                          struct zt_dns_answer *out)
{
	const char *net = c->network ? c->network : "";

	if (svc->n_vips) {
		for (size_t i = 0; i < svc->n_vips && out->n_addrs < ZT_DNS_MAX_ADDRS; i++) {
			const struct zt_vip *v = &svc->vips[i];
			if (zt_vip_is_host(v) && v->cidr.ip.family == family &&
			    strcmp(v->network, net) == 0)
				out->addrs[out->n_addrs++] = v->cidr.ip;
		}
	} else {
		for (size_t i = 0; i < svc->n_endpoints && out->n_addrs < ZT_DNS_MAX_ADDRS; i++) {
			const struct zt_workload *w = svc->endpoints[i].workload;
			if (!zt_service_endpoint_usable(svc, &svc->endpoints[i]))
				continue;
			for (size_t j = 0; j < w->n_ips; j++) {
				if (w->ips[j].family == family) {
					out->addrs[out->n_addrs++] = w->ips[j];
					break;
				}
			}
		}
	}
	if (c->rand_cb) {
		for (size_t i = out->n_addrs; i > 1; i--) {
			size_t j = c->rand_cb(c->rand_arg) % i;
			struct zt_ip t = out->addrs[i - 1];
			out->addrs[i - 1] = out->addrs[j];
			out->addrs[j] = t;
		}
	}
}

int zt_dns_lookup(const struct zt_store *store, const struct zt_dns_client *c, const char *q,
                  uint16_t qtype, struct zt_dns_answer *out)
{
	static __thread struct cand cands[MAX_CANDS];
	struct zt_dns_alias aliases[ZT_DNS_MAX_ALIASES];
	struct pass p = {.c = c};
	size_t na, nc = 0;
	struct cand *win = NULL;
	int family;

	memset(out, 0, sizeof(*out));
	if (qtype != ZT_DNS_TYPE_A && qtype != ZT_DNS_TYPE_AAAA)
		return 0;
	family = qtype == ZT_DNS_TYPE_A ? AF_INET : AF_INET6;
	snprintf(p.svc_suffix, sizeof(p.svc_suffix), ".svc.%s", c->cluster_domain);
	na = zt_dns_aliases(q, c, aliases, ZT_DNS_MAX_ALIASES);
	for (size_t i = 0; i < na; i++) {
		const char *name = aliases[i].name;
		push(&p, cands, &nc, name, "", i, false);
		for (const char *r = strchr(name, '.'); r; r = strchr(r + 1, '.'))
			push(&p, cands, &nc, "*", r, i, true);
	}
	zt_store_foreach_service(store, visit, &p);
	zt_hmap_clear(&p.idx);
	for (size_t i = 0; i < nc && !win; i++)
		if (cands[i].best)
			win = &cands[i];
	if (!win)
		return 0;

	out->svc = zt_service_ref(win->best);
	if (aliases[win->alias].stripped && !win->wildcard) {
		snprintf(out->cname_from, sizeof(out->cname_from), "%s", q);
		snprintf(out->owner, sizeof(out->owner), "%s", aliases[win->alias].base);
	} else {
		snprintf(out->owner, sizeof(out->owner), "%s", q);
	}
	if (family_ok(c, out->svc, family))
		collect_addrs(c, out->svc, family, out);
	return 1;
}

void zt_dns_answer_clear(struct zt_dns_answer *a)
{
	zt_service_unref(a->svc);
	memset(a, 0, sizeof(*a));
}
