/* Waypoint authorization (see authz.h). Each field list is an OR, fields of one source or
 * operation an AND, a not-list must not match; a rule is from AND to AND when. */
#include "sim/sim-waypoint/authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One rule's evaluation: missing attributes (HTTP-only ones on a TCP stream, parts marked
 * unevaluable) are treated as matched and noted, so that a DENY rule ignores them and an
 * ALLOW or AUDIT rule fails. */
struct ctx {
	const struct wp_request *rq;
	bool missing;
};

bool wp_authz_str_match(const char *pat, const char *v, bool nocase)
{
	size_t pl, vl;
	int (*cmp)(const char *, const char *, size_t) = nocase ? strncasecmp : strncmp;

	if (!v)
		return false;
	pl = strlen(pat);
	vl = strlen(v);
	if (!strcmp(pat, "*"))
		return vl > 0;
	if (pl > 1 && pat[0] == '*')
		return vl >= pl - 1 && !cmp(v + vl - (pl - 1), pat + 1, pl - 1);
	if (pl > 1 && pat[pl - 1] == '*')
		return vl >= pl - 1 && !cmp(v, pat, pl - 1);
	return pl == vl && !cmp(v, pat, pl);
}

static bool any_str(char **pats, size_t n, const char *v, bool nocase)
{
	for (size_t i = 0; i < n; i++)
		if (wp_authz_str_match(pats[i], v, nocase))
			return true;
	return false;
}

/* ipBlocks entries: an address or a CIDR; junk never matches. */
static bool any_ip(char **blocks, size_t n, const struct zt_ip *ip)
{
	for (size_t i = 0; ip->family && i < n; i++) {
		struct zt_cidr c;
		struct zt_ip one;
		if (zt_cidr_parse(&c, blocks[i], strlen(blocks[i])) == 0 &&
		    zt_cidr_contains(&c, ip))
			return true;
		if (zt_ip_parse(&one, blocks[i], strlen(blocks[i])) == 0 && zt_ip_equal(&one, ip))
			return true;
	}
	return false;
}

static bool any_port(char **ports, size_t n, uint16_t port)
{
	for (size_t i = 0; i < n; i++) {
		char *end;
		unsigned long p = strtoul(ports[i], &end, 10);
		if (!*end && end != ports[i] && p == port)
			return true;
	}
	return false;
}

/* A field with values v (n) and a not-list nv (nn): v empty or one matches, and none of nv.
 */
#define FIELD(v, n, nv, nn, match) (((n) == 0 || match(v, n)) && ((nn) == 0 || !match(nv, nn)))

/* The Host without a trailing ":port" (into buf). */
static const char *host_only(const char *h, char *buf, size_t size)
{
	const char *colon = h ? strrchr(h, ':') : NULL;
	if (!colon || strchr(colon, ']') || (size_t)(colon - h) >= size)
		return h;
	memcpy(buf, h, (size_t)(colon - h));
	buf[colon - h] = '\0';
	return buf;
}

/* HTTP-only field present: on a TCP stream it is missing (see struct ctx). Returns whether
 * matching may go on treating it as matched. */
static bool http_field(struct ctx *c, size_t n)
{
	if (n == 0 || c->rq->http)
		return false;
	c->missing = true;
	return true;
}

static bool source_match(struct ctx *c, const Ztunnel__Waypoint__Source *s)
{
	const struct wp_request *rq = c->rq;
	char sa[512] = "";

	if (rq->src_ns && rq->src_sa)
		snprintf(sa, sizeof(sa), "%s/%s", rq->src_ns, rq->src_sa);
#define PRN(v, n) any_str(v, n, rq->principal, false)
#define NS(v, n)  any_str(v, n, rq->src_ns, false)
#define SA(v, n)  any_str(v, n, sa[0] ? sa : NULL, false)
#define IP(v, n)  any_ip(v, n, &rq->src_ip)
	return FIELD(s->principals, s->n_principals, s->not_principals, s->n_not_principals, PRN) &&
	       FIELD(s->namespaces, s->n_namespaces, s->not_namespaces, s->n_not_namespaces, NS) &&
	       FIELD(s->service_accounts, s->n_service_accounts, s->not_service_accounts,
	             s->n_not_service_accounts, SA) &&
	       FIELD(s->ip_blocks, s->n_ip_blocks, s->not_ip_blocks, s->n_not_ip_blocks, IP) &&
	       FIELD(s->remote_ip_blocks, s->n_remote_ip_blocks, s->not_remote_ip_blocks,
	             s->n_not_remote_ip_blocks, IP);
}

static bool path_match(char **pats, size_t n, const char *path)
{
	char buf[4096];
	size_t len = path ? strcspn(path, "?#") : 0;

	if (!path || len >= sizeof(buf))
		return false;
	memcpy(buf, path, len);
	buf[len] = '\0';
	return any_str(pats, n, buf, false);
}

static bool host_match(char **pats, size_t n, const char *host)
{
	char buf[256];
	return any_str(pats, n, host, true) ||
	       any_str(pats, n, host_only(host, buf, sizeof(buf)), true);
}

static bool operation_match(struct ctx *c, const Ztunnel__Waypoint__Operation *o)
{
	const struct wp_request *rq = c->rq;

#define PORT(v, n) any_port(v, n, rq->dst_port)
#define MTH(v, n)  any_str(v, n, rq->method, false)
#define PTH(v, n)  path_match(v, n, rq->path)
#define HST(v, n)  host_match(v, n, rq->host)
	if (!FIELD(o->ports, o->n_ports, o->not_ports, o->n_not_ports, PORT))
		return false;
	if (!http_field(c, o->n_methods + o->n_not_methods) &&
	    !FIELD(o->methods, o->n_methods, o->not_methods, o->n_not_methods, MTH))
		return false;
	if (!http_field(c, o->n_paths + o->n_not_paths) &&
	    !FIELD(o->paths, o->n_paths, o->not_paths, o->n_not_paths, PTH))
		return false;
	if (!http_field(c, o->n_hosts + o->n_not_hosts) &&
	    !FIELD(o->hosts, o->n_hosts, o->not_hosts, o->n_not_hosts, HST))
		return false;
	return true;
}

static const char *header(const struct wp_request *rq, const char *name, size_t len)
{
	for (size_t i = 0; i < rq->n_headers; i++)
		if (strlen(rq->headers[i].name) == len &&
		    !strncasecmp(rq->headers[i].name, name, len))
			return rq->headers[i].value;
	return NULL;
}

static bool condition_match(struct ctx *c, const Ztunnel__Waypoint__Condition *w)
{
	const struct wp_request *rq = c->rq;
	const char *k = w->key, *v = NULL;
	char buf[8];
	size_t kl = strlen(k);

	if (kl > 17 && !strncmp(k, "request.headers[", 16) && k[kl - 1] == ']') {
		if (http_field(c, 1))
			return true;
		v = header(rq, k + 16, kl - 17);
	} else if (!strcmp(k, "source.principal")) {
		v = rq->principal;
	} else if (!strcmp(k, "source.namespace")) {
		v = rq->src_ns;
	} else if (!strcmp(k, "source.ip") || !strcmp(k, "remote.ip")) {
		return FIELD(w->values, w->n_values, w->not_values, w->n_not_values, IP);
	} else if (!strcmp(k, "destination.ip")) {
#define DIP(vv, n) any_ip(vv, n, &rq->dst_ip)
		return FIELD(w->values, w->n_values, w->not_values, w->n_not_values, DIP);
	} else if (!strcmp(k, "destination.port")) {
		snprintf(buf, sizeof(buf), "%u", rq->dst_port);
		v = buf;
	} else {
		/* fake-istiod drops keys it cannot evaluate; an unknown one is missing. */
		c->missing = true;
		return true;
	}
#define VAL(vv, n) any_str(vv, n, v, false)
	return FIELD(w->values, w->n_values, w->not_values, w->n_not_values, VAL);
}

static bool rule_match(const Ztunnel__Waypoint__Rule *r, const struct wp_request *rq, bool deny)
{
	struct ctx c = {.rq = rq};
	bool from = r->n_from == 0, to = r->n_to == 0;

	if (r->unevaluable && r->unevaluable[0])
		c.missing = true;
	for (size_t i = 0; !from && i < r->n_from; i++)
		from = source_match(&c, r->from[i]);
	for (size_t i = 0; from && !to && i < r->n_to; i++)
		to = operation_match(&c, r->to[i]);
	bool when = from && to;
	for (size_t i = 0; when && i < r->n_when; i++)
		when = condition_match(&c, r->when[i]);
	if (!when)
		return false;
	return deny || !c.missing;
}

static bool applies(const Ztunnel__Waypoint__Policy *p, const struct wp_request *rq)
{
	if (p->n_services == 0)
		return true;
	for (size_t i = 0; rq->service && i < p->n_services; i++)
		if (!strcmp(p->services[i], rq->service))
			return true;
	return false;
}

static bool policy_match(const Ztunnel__Waypoint__Policy *p, const struct wp_request *rq)
{
	bool deny = p->action == ZTUNNEL__WAYPOINT__ACTION__DENY;
	for (size_t i = 0; i < p->n_rules; i++)
		if (rule_match(p->rules[i], rq, deny))
			return true;
	return false;
}

static void append(char *buf, size_t size, const Ztunnel__Waypoint__Policy *p, const char *what)
{
	size_t n = strlen(buf);
	if (n < size)
		snprintf(buf + n, size - n, "%s%s/%s%s%s", n ? "," : "", p->namespace_, p->name,
		         what ? "=" : "", what ? what : "");
}

bool wp_authz_check(const Ztunnel__Waypoint__Waypoint *w, const struct wp_request *rq,
                    struct wp_decision *out)
{
	const Ztunnel__Waypoint__Policy *allow_any = NULL, *allow_hit = NULL, *deny_hit = NULL;
	size_t n_allow = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; w && i < w->n_policies; i++) {
		const Ztunnel__Waypoint__Policy *p = w->policies[i];
		if (!applies(p, rq))
			continue;
		bool hit = policy_match(p, rq);
		if (p->action == ZTUNNEL__WAYPOINT__ACTION__AUDIT) {
			if (hit)
				append(out->audit, sizeof(out->audit), p, NULL);
			continue;
		}
		bool deny = p->action == ZTUNNEL__WAYPOINT__ACTION__DENY;
		if (p->dry_run) {
			if (hit)
				append(out->dry_run, sizeof(out->dry_run), p,
				       deny ? "DENY" : "ALLOW");
			continue;
		}
		if (deny) {
			if (hit && !deny_hit)
				deny_hit = p;
		} else {
			n_allow++;
			if (!allow_any)
				allow_any = p;
			if (hit && !allow_hit)
				allow_hit = p;
		}
	}
	if (deny_hit) {
		out->policy = deny_hit;
		snprintf(out->reason, sizeof(out->reason), "denied by %s/%s", deny_hit->namespace_,
		         deny_hit->name);
	} else if (allow_hit) {
		out->allow = true;
		out->policy = allow_hit;
		snprintf(out->reason, sizeof(out->reason), "allowed by %s/%s",
		         allow_hit->namespace_, allow_hit->name);
	} else if (n_allow) {
		snprintf(out->reason, sizeof(out->reason), "no ALLOW policy matched (%s/%s%s)",
		         allow_any->namespace_, allow_any->name, n_allow > 1 ? ", ..." : "");
	} else {
		out->allow = true;
		snprintf(out->reason, sizeof(out->reason), "no policy");
	}
	return out->allow;
}
