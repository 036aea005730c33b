/* Kubernetes-style YAML to fake-istiod's mesh model. Files are streamed: each document is
 * parsed, checked and converted into the model, then its tree is freed, so at most one
 * document's tree is held. The first problem ends the load with "file:line: Kind ns/name:
 * field.path: what" and the whole load is dropped; only after every file has loaded are
 * kinds sorted, duplicates refused and the address file applied, so objects may reference
 * each other across documents and files. */
#include "fake-istiod/mesh.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fake-istiod/resource.h"
#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "runtime/yaml.h"

ZT_LOG_MODULE("mesh");

const char *const fi_authz_source_names[FI_SRC_COUNT] = {
        [FI_SRC_PRINCIPALS] = "principals",
        [FI_SRC_NOT_PRINCIPALS] = "notPrincipals",
        [FI_SRC_REQUEST_PRINCIPALS] = "requestPrincipals",
        [FI_SRC_NOT_REQUEST_PRINCIPALS] = "notRequestPrincipals",
        [FI_SRC_NAMESPACES] = "namespaces",
        [FI_SRC_NOT_NAMESPACES] = "notNamespaces",
        [FI_SRC_SERVICE_ACCOUNTS] = "serviceAccounts",
        [FI_SRC_NOT_SERVICE_ACCOUNTS] = "notServiceAccounts",
        [FI_SRC_IP_BLOCKS] = "ipBlocks",
        [FI_SRC_NOT_IP_BLOCKS] = "notIpBlocks",
        [FI_SRC_REMOTE_IP_BLOCKS] = "remoteIpBlocks",
        [FI_SRC_NOT_REMOTE_IP_BLOCKS] = "notRemoteIpBlocks",
};

const char *const fi_authz_operation_names[FI_OP_COUNT] = {
        [FI_OP_HOSTS] = "hosts",     [FI_OP_NOT_HOSTS] = "notHosts",
        [FI_OP_PORTS] = "ports",     [FI_OP_NOT_PORTS] = "notPorts",
        [FI_OP_METHODS] = "methods", [FI_OP_NOT_METHODS] = "notMethods",
        [FI_OP_PATHS] = "paths",     [FI_OP_NOT_PATHS] = "notPaths",
};

/* ---- memory -------------------------------------------------------------------------------- */

/* Appends a zeroed element to a growable array whose capacity is the next power of two and
 * yields a pointer to it. */
#define GROW(arr, n) ((arr) = grow_((arr), &(n), sizeof(*(arr))), &(arr)[(n)-1])

static void *grow_(void *arr, size_t *n, size_t size)
{
	if ((*n & (*n - 1)) == 0)
		arr = xrealloc(arr, (*n ? 2 * *n : 1) * size);
	memset((char *)arr + *n * size, 0, size);
	(*n)++;
	return arr;
}

static void strs_clear(struct fi_strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- interned strings: an open-addressing set of owned copies ------------------------------ */

struct fi_strpool {
	char **slot; /* NULL = empty */
	size_t cap;  /* a power of two */
	size_t n;
};

static void pool_put(struct fi_strpool *p, char *s)
{
	size_t mask = p->cap - 1, i = zt_hash_bytes(s, strlen(s)) & mask;
	while (p->slot[i])
		i = (i + 1) & mask;
	p->slot[i] = s;
	p->n++;
}

/* The mesh's copy of s, which it takes (freed when already held). NULL stays NULL. */
static char *intern(struct fi_mesh *m, char *s)
{
	struct fi_strpool *p = m->strings;
	if (!s)
		return NULL;
	if (!p)
		p = m->strings = xcalloc(1, sizeof(*p));
	if (p->cap) {
		size_t mask = p->cap - 1, i = zt_hash_bytes(s, strlen(s)) & mask;
		for (; p->slot[i]; i = (i + 1) & mask)
			if (!strcmp(p->slot[i], s)) {
				free(s);
				return p->slot[i];
			}
	}
	if (2 * (p->n + 1) > p->cap) {
		struct fi_strpool old = *p;
		p->cap = old.cap ? 2 * old.cap : 64;
		p->slot = xcalloc(p->cap, sizeof(*p->slot));
		p->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.slot[i])
				pool_put(p, old.slot[i]);
		free(old.slot);
	}
	pool_put(p, s);
	return s;
}

static void pool_free(struct fi_strpool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->cap; i++)
		free(p->slot[i]);
	free(p->slot);
	free(p);
}

/* Keys and values are interned: only the array is the labels' own. */
static void labels_clear(struct fi_labels *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void meta_clear(struct fi_meta *m)
{
	free(m->name);
	free(m->uid);
	labels_clear(&m->labels);
	labels_clear(&m->annotations);
}

static void pod_clear(struct fi_pod *p)
{
	meta_clear(&p->meta);
	free(p->ports);
	free(p->ips);
	free(p->owner_name);
}

static void service_clear(struct fi_service *s)
{
	meta_clear(&s->meta);
	labels_clear(&s->selector);
	free(s->ips);
	for (size_t i = 0; i < s->n_ports; i++) {
		free(s->ports[i].name);
		free(s->ports[i].target_port_name);
		free(s->ports[i].app_protocol);
	}
	free(s->ports);
}

static void gateway_clear(struct fi_gateway *g)
{
	meta_clear(&g->meta);
	free(g->class_name);
}

static void authz_rule_clear(struct fi_authz_rule *r)
{
	for (size_t i = 0; i < r->n_from; i++)
		for (size_t f = 0; f < FI_SRC_COUNT; f++)
			strs_clear(&r->from[i].f[f]);
	free(r->from);
	for (size_t i = 0; i < r->n_to; i++)
		for (size_t f = 0; f < FI_OP_COUNT; f++)
			strs_clear(&r->to[i].f[f]);
	free(r->to);
	for (size_t i = 0; i < r->n_when; i++) {
		free(r->when[i].key);
		strs_clear(&r->when[i].values);
		strs_clear(&r->when[i].not_values);
	}
	free(r->when);
}

static void authz_clear(struct fi_authz_policy *p)
{
	meta_clear(&p->meta);
	labels_clear(&p->selector);
	for (size_t i = 0; i < p->n_rules; i++)
		authz_rule_clear(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; i < p->n_target_refs; i++) {
		free(p->target_refs[i].group);
		free(p->target_refs[i].kind);
		free(p->target_refs[i].name);
		free(p->target_refs[i].ns);
	}
	free(p->target_refs);
}

static void service_entry_clear(struct fi_service_entry *e);
static void workload_entry_clear(struct fi_workload_entry *w);

static void peer_authn_clear(struct fi_peer_authn *p)
{
	meta_clear(&p->meta);
	labels_clear(&p->selector);
	free(p->ports);
}

static void part_unref(struct fi_mesh_part *p);

/* A mesh built from parts: its arrays are its own, what they point to is the parts'. */
static void mesh_clear_shallow(struct fi_mesh *m)
{
	free(m->namespaces);
	free(m->nodes);
	free(m->service_accounts);
	free(m->pods);
	free(m->services);
	free(m->gateways);
	free(m->authz_policies);
	free(m->peer_authns);
	free(m->service_entries);
	free(m->workload_entries);
	free(m->files);
	for (size_t i = 0; i < m->n_owned; i++)
		free(m->owned[i]);
	free(m->owned);
	for (size_t i = 0; i < m->n_parts; i++)
		part_unref(m->parts[i]);
	free(m->parts);
	pool_free(m->strings);
	memset(m, 0, sizeof(*m));
}

void fi_mesh_clear(struct fi_mesh *m)
{
	if (m->parts) {
		mesh_clear_shallow(m);
		return;
	}
	for (size_t i = 0; i < m->n_namespaces; i++)
		meta_clear(&m->namespaces[i].meta);
	free(m->namespaces);
	for (size_t i = 0; i < m->n_nodes; i++)
		meta_clear(&m->nodes[i].meta);
	free(m->nodes);
	for (size_t i = 0; i < m->n_service_accounts; i++)
		meta_clear(&m->service_accounts[i].meta);
	free(m->service_accounts);
	for (size_t i = 0; i < m->n_pods; i++)
		pod_clear(&m->pods[i]);
	free(m->pods);
	for (size_t i = 0; i < m->n_services; i++)
		service_clear(&m->services[i]);
	free(m->services);
	for (size_t i = 0; i < m->n_gateways; i++)
		gateway_clear(&m->gateways[i]);
	free(m->gateways);
	for (size_t i = 0; i < m->n_authz_policies; i++)
		authz_clear(&m->authz_policies[i]);
	free(m->authz_policies);
	for (size_t i = 0; i < m->n_peer_authns; i++)
		peer_authn_clear(&m->peer_authns[i]);
	free(m->peer_authns);
	for (size_t i = 0; i < m->n_service_entries; i++)
		service_entry_clear(&m->service_entries[i]);
	free(m->service_entries);
	for (size_t i = 0; i < m->n_workload_entries; i++)
		workload_entry_clear(&m->workload_entries[i]);
	free(m->workload_entries);
	for (size_t i = 0; i < m->n_files; i++)
		free(m->files[i]);
	free(m->files);
	pool_free(m->strings);
	memset(m, 0, sizeof(*m));
}

/* ---- load context and errors --------------------------------------------------------------- */

struct ld {
	struct fi_mesh *m;
	struct zt_yaml_limits lim;
	const atomic_bool *cancel;
	struct zt_yaml_rd rd; /* obj: "Pod default/web", "" before the kind is known */
	unsigned seq;
};

#define GOT(n) zt_yaml_describe((n), (char[64]){0}, 64)

/* ---- field readers; each names its field on error ------------------------------------------ */

static int need_map(struct ld *l, const struct zt_yaml *n, const char *key)
{
	return zt_yaml_rd_want(&l->rd, n, ZT_YAML_MAP, key);
}

static int opt_map(struct ld *l, const struct zt_yaml *map, const char *key,
                   const struct zt_yaml **out)
{
	return zt_yaml_rd_map(&l->rd, map, key, out);
}

/* The document's spec mapping, which must be there: "spec: required" otherwise. */
static int need_spec(struct ld *l, const struct zt_yaml *doc, const struct zt_yaml **spec)
{
	int rc = opt_map(l, doc, "spec", spec);

	if (!rc && !*spec) {
		size_t mk = zt_yaml_rd_enter(&l->rd, "spec");
		rc = zt_yaml_rd_fail(&l->rd, doc, ZT_E_PARSE, "required");
		zt_yaml_rd_leave(&l->rd, mk);
	}
	return rc;
}

static int opt_seq(struct ld *l, const struct zt_yaml *map, const char *key,
                   const struct zt_yaml **out)
{
	return zt_yaml_rd_seq(&l->rd, map, key, out);
}

/* String under key, copied: NULL when absent or null (an error when required). */
static int get_str(struct ld *l, const struct zt_yaml *map, const char *key, bool required,
                   char **out)
{
	const char *s;
	int rc = zt_yaml_rd_str(&l->rd, map, key, required, &s);

	*out = s ? xstrdup(s) : NULL;
	return rc;
}

/* Kubernetes object names: DNS-1123 subdomain (dots allowed, up to 253) or label (no dots,
 * up to 63). Keeps '/' out of the "ns/name" keys built from them. */
static bool dns_name(const char *s, bool dots, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && c != '-' && !(dots && c == '.'))
			return false;
		if (!alnum && (i == 0 || i == n - 1))
			return false;
	}
	return true;
}

static int get_name(struct ld *l, const struct zt_yaml *map, const char *key, bool required,
                    bool label, char **out)
{
	int rc = get_str(l, map, key, required, out);
	if (rc || !*out || dns_name(*out, !label, label ? 63 : 253))
		return rc;
	rc = zt_yaml_rd_failf(&l->rd, zt_yaml_get(map, key), key, ZT_E_PARSE,
	          "expected a DNS %s (lowercase letters, digits, '-'%s), got %s",
	          label ? "label" : "name", label ? "" : ", '.'", GOT(zt_yaml_get(map, key)));
	free(*out);
	*out = NULL;
	return rc;
}

/* IANA service names, as Kubernetes requires for named ports: up to 15 of [a-z0-9-], at least
 * one letter, no leading, trailing or doubled '-'. */
static bool port_name(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;
	if (n == 0 || n > 15 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			letter = true;
		else if (!(c >= '0' && c <= '9') && !(c == '-' && s[i + 1] != '-'))
			return false;
	}
	return letter;
}

static int port_value(struct ld *l, const struct zt_yaml *n, uint16_t *out)
{
	int64_t v;
	int rc = zt_yaml_int(n, 1, 65535, &v);
	if (rc)
		return zt_yaml_rd_fail(&l->rd, n, rc, "expected an integer 1..65535, got %s", GOT(n));
	*out = (uint16_t)v;
	return 0;
}

static int get_port(struct ld *l, const struct zt_yaml *map, const char *key, uint16_t *out)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);
	size_t mk = zt_yaml_rd_enter(&l->rd, "%s", key);
	int rc = zt_yaml_is_null(n) ? zt_yaml_rd_fail(&l->rd, n ? n : map, ZT_E_PARSE, "required")
	                            : port_value(l, n, out);
	zt_yaml_rd_leave(&l->rd, mk);
	return rc;
}

static int get_protocol(struct ld *l, const struct zt_yaml *map, enum fi_protocol *out)
{
	const struct zt_yaml *n = zt_yaml_get(map, "protocol");
	const char *s = zt_yaml_str(n);
	*out = FI_PROTO_TCP;
	if (zt_yaml_is_null(n) || (s && !strcmp(s, "TCP")))
		return 0;
	if (s && !strcmp(s, "UDP"))
		*out = FI_PROTO_UDP;
	else if (s && !strcmp(s, "SCTP"))
		*out = FI_PROTO_SCTP;
	else {
		int rc = zt_yaml_rd_failf(&l->rd, n, "protocol", ZT_E_PARSE, "expected TCP, UDP or SCTP, got %s", GOT(n));
		return rc;
	}
	return 0;
}

static int ip_value(struct ld *l, const struct zt_yaml *n, struct zt_ip *out)
{
	const char *s = zt_yaml_str(n);
	if (s && !zt_ip_parse(out, s, n->len))
		return 0;
	return zt_yaml_rd_fail(&l->rd, n, ZT_E_PARSE, "expected an IP address, got %s", GOT(n));
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fi_label *)a)->key, ((const struct fi_label *)b)->key);
}

/* A mapping of strings (labels, annotations, matchLabels); absent or null = empty. Scalars of
 * any plain type (1, true) are kept as their text; a null value is "". */
static int get_labels(struct ld *l, const struct zt_yaml *map, const char *key,
                      struct fi_labels *out)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);
	if (zt_yaml_is_null(n))
		return 0;
	int rc = 0;
	size_t mk = zt_yaml_rd_enter(&l->rd, "%s", key);
	if (n->type != ZT_YAML_MAP) {
		rc = zt_yaml_rd_fail(&l->rd, n, ZT_E_PARSE, "expected a mapping of strings, got %s", GOT(n));
		goto out;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct zt_yaml *k = zt_yaml_key(n, i), *v = zt_yaml_val(n, i);
		const char *ks = zt_yaml_str(k);
		if (!ks || !*ks || strlen(ks) != k->len) {
			rc = zt_yaml_rd_fail(&l->rd, k, ZT_E_PARSE, "expected a non-empty string key, got %s",
			          GOT(k));
			goto out;
		}
		if (v->type != ZT_YAML_SCALAR || strlen(v->s) != v->len) {
			rc = zt_yaml_rd_failf(&l->rd, v, ks, ZT_E_PARSE, "expected a string, got %s", GOT(v));
			goto out;
		}
		struct fi_label *e = GROW(out->v, out->n);
		e->key = intern(l->m, xstrdup(ks));
		e->value = intern(l->m, xstrdup(zt_yaml_is_null(v) ? "" : v->s));
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), label_cmp);
out:
	zt_yaml_rd_leave(&l->rd, mk);
	return rc;
}

/* A sequence of strings; absent or null = empty. */
static int get_strs(struct ld *l, const struct zt_yaml *map, const char *key, struct fi_strs *out)
{
	const struct zt_yaml *seq;
	int rc = opt_seq(l, map, key, &seq);
	if (rc || !seq)
		return rc;
	for (size_t i = 0; i < seq->n; i++) {
		const struct zt_yaml *v = zt_yaml_at(seq, i);
		if (v->type != ZT_YAML_SCALAR || zt_yaml_is_null(v) || strlen(v->s) != v->len) {
			size_t mk = zt_yaml_rd_enter(&l->rd, "%s[%zu]", key, i);
			rc = zt_yaml_rd_fail(&l->rd, v, ZT_E_PARSE, "expected a string, got %s", GOT(v));
			zt_yaml_rd_leave(&l->rd, mk);
			return rc;
		}
		*GROW(out->v, out->n) = xstrdup(v->s);
	}
	return 0;
}

/* ---- objects ------------------------------------------------------------------------------- */

/* metadata: name (required), namespace (namespaced kinds; "default" when absent), uid, labels,
 * annotations. Names the object in l->rd.obj for later messages. */
static int parse_meta(struct ld *l, const struct zt_yaml *doc, const char *kind, bool namespaced,
                      bool label_name, struct fi_meta *meta)
{
	const struct zt_yaml *md;
	int rc;
	snprintf(l->rd.obj, sizeof(l->rd.obj), "%s", kind);
	meta->file = l->rd.file;
	meta->line = doc->line;
	meta->seq = l->seq++;
	if ((rc = opt_map(l, doc, "metadata", &md)))
		return rc;
	if (!md) {
		rc = zt_yaml_rd_failf(&l->rd, doc, "metadata.name", ZT_E_PARSE, "required");
		return rc;
	}
	size_t mk = zt_yaml_rd_enter(&l->rd, "metadata");
	if ((rc = get_name(l, md, "name", true, label_name, &meta->name)))
		goto out;
	if (namespaced) {
		char *ns = NULL;
		rc = get_name(l, md, "namespace", false, true, &ns);
		meta->ns = intern(l->m, rc || ns ? ns : xstrdup("default"));
		if (rc)
			goto out;
		snprintf(l->rd.obj, sizeof(l->rd.obj), "%s %s/%s", kind, meta->ns, meta->name);
	} else {
		snprintf(l->rd.obj, sizeof(l->rd.obj), "%s %s", kind, meta->name);
	}
	if (!(rc = get_str(l, md, "uid", false, &meta->uid)) &&
	    !(rc = get_labels(l, md, "labels", &meta->labels)))
		rc = get_labels(l, md, "annotations", &meta->annotations);
out:
	zt_yaml_rd_leave(&l->rd, mk);
	return rc;
}

static int parse_plain(struct ld *l, const struct zt_yaml *doc, const char *kind)
{
	struct fi_mesh *m = l->m;
	struct fi_meta meta = {0};
	bool ns_kind = !strcmp(kind, "Namespace"), node_kind = !strcmp(kind, "Node");
	int rc = parse_meta(l, doc, kind, !ns_kind && !node_kind, ns_kind, &meta);
	if (rc) {
		meta_clear(&meta);
		return rc;
	}
	if (ns_kind)
		GROW(m->namespaces, m->n_namespaces)->meta = meta;
	else if (node_kind)
		GROW(m->nodes, m->n_nodes)->meta = meta;
	else
		GROW(m->service_accounts, m->n_service_accounts)->meta = meta;
	return 0;
}

static int parse_namespace(struct ld *l, const struct zt_yaml *doc)
{
	return parse_plain(l, doc, "Namespace");
}

static int parse_node(struct ld *l, const struct zt_yaml *doc)
{
	return parse_plain(l, doc, "Node");
}

static int parse_service_account(struct ld *l, const struct zt_yaml *doc)
{
	return parse_plain(l, doc, "ServiceAccount");
}

/* Stable pseudo-uid from kind/ns/name, UUID-shaped, so restarts and reloads keep it. */
static char *derived_uid(const char *kind, const char *ns, const char *name)
{
	char in[600];
	unsigned char h[32];
	int n = snprintf(in, sizeof(in), "%s/%s/%s", kind, ns, name);
	if (n < 0)
		abort();
	fi_sha256(in, strlen(in), h);
	h[6] = (unsigned char)((h[6] & 0x0f) | 0x50); /* name-based, like a UUIDv5 */
	h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
	char *out = xrealloc(NULL, 37);
	/* 8-4-4-4-12 hex digits */
	fi_hex(h, 4, out);
	out[8] = '-';
	fi_hex(h + 4, 2, out + 9);
	out[13] = '-';
	fi_hex(h + 6, 2, out + 14);
	out[18] = '-';
	fi_hex(h + 8, 2, out + 19);
	out[23] = '-';
	fi_hex(h + 10, 6, out + 24);
	return out;
}

static int parse_pod_ports(struct ld *l, const struct zt_yaml *spec, struct fi_pod *p)
{
	const struct zt_yaml *containers;
	int rc = opt_seq(l, spec, "containers", &containers);
	for (size_t i = 0; !rc && containers && i < containers->n; i++) {
		const struct zt_yaml *c = zt_yaml_at(containers, i), *ports = NULL;
		size_t mk = zt_yaml_rd_enter(&l->rd, "containers[%zu]", i);
		if (!(rc = need_map(l, c, NULL)))
			rc = opt_seq(l, c, "ports", &ports);
		for (size_t j = 0; !rc && ports && j < ports->n; j++) {
			const struct zt_yaml *pt = zt_yaml_at(ports, j);
			size_t mk2 = zt_yaml_rd_enter(&l->rd, "ports[%zu]", j);
			struct fi_container_port cp = {0};
			if (!(rc = need_map(l, pt, NULL)) &&
			    !(rc = get_port(l, pt, "containerPort", &cp.port)) &&
			    !(rc = get_protocol(l, pt, &cp.protocol)))
				rc = get_str(l, pt, "name", false, &cp.name);
			if (!rc && cp.name && !port_name(cp.name))
				rc = zt_yaml_rd_failf(
				        &l->rd, zt_yaml_get(pt, "name"), "name", ZT_E_PARSE,
				        "expected a port name (up to 15 of a-z, 0-9, '-'), got %s",
				        GOT(zt_yaml_get(pt, "name")));
			if (rc) {
				free(cp.name);
			} else {
				cp.name = intern(l->m, cp.name);
				*GROW(p->ports, p->n_ports) = cp;
			}
			zt_yaml_rd_leave(&l->rd, mk2);
		}
		zt_yaml_rd_leave(&l->rd, mk);
	}
	return rc;
}

static int add_ip(struct ld *l, const struct zt_yaml *n, struct zt_ip **ips, size_t *count)
{
	struct zt_ip ip;
	int rc = ip_value(l, n, &ip);
	if (rc)
		return rc;
	if (*count == FI_POD_MAX_IPS)
		return zt_yaml_rd_fail(&l->rd, n, ZT_E_TOOBIG, "more than %d addresses", FI_POD_MAX_IPS);
	*GROW(*ips, *count) = ip;
	return 0;
}

static int parse_pod_status(struct ld *l, const struct zt_yaml *status, struct fi_pod *p)
{
	const struct zt_yaml *ips, *conds;
	int rc;
	if ((rc = opt_seq(l, status, "podIPs", &ips)))
		return rc;
	for (size_t i = 0; ips && i < ips->n; i++) {
		const struct zt_yaml *e = zt_yaml_at(ips, i);
		size_t mk = zt_yaml_rd_enter(&l->rd, "podIPs[%zu]", i);
		if (!(rc = need_map(l, e, NULL))) {
			size_t mk2 = zt_yaml_rd_enter(&l->rd, "ip");
			const struct zt_yaml *ipn = zt_yaml_get(e, "ip");
			rc = ipn ? add_ip(l, ipn, &p->ips, &p->n_ips)
			         : zt_yaml_rd_fail(&l->rd, e, ZT_E_PARSE, "required");
			zt_yaml_rd_leave(&l->rd, mk2);
		}
		zt_yaml_rd_leave(&l->rd, mk);
		if (rc)
			return rc;
	}
	const struct zt_yaml *one = zt_yaml_get(status, "podIP");
	if (!zt_yaml_is_null(one)) {
		size_t mk = zt_yaml_rd_enter(&l->rd, "podIP");
		struct zt_ip ip;
		if (!(rc = ip_value(l, one, &ip)) && !p->n_ips)
			*GROW(p->ips, p->n_ips) = ip;
		zt_yaml_rd_leave(&l->rd, mk);
		if (rc)
			return rc;
	}
	if ((rc = opt_seq(l, status, "conditions", &conds)))
		return rc;
	for (size_t i = 0; conds && i < conds->n; i++) {
		const struct zt_yaml *c = zt_yaml_at(conds, i);
		size_t mk = zt_yaml_rd_enter(&l->rd, "conditions[%zu]", i);
		rc = need_map(l, c, NULL);
		zt_yaml_rd_leave(&l->rd, mk);
		if (rc)
			return rc;
		const char *type = zt_yaml_str(zt_yaml_get(c, "type"));
		const char *st = zt_yaml_str(zt_yaml_get(c, "status"));
		if (type && st && !strcmp(type, "Ready"))
			p->ready = strcmp(st, "False") != 0;
	}
	return 0;
}

static int parse_owner(struct ld *l, const struct zt_yaml *doc, struct fi_pod *p)
{
	const struct zt_yaml *md = zt_yaml_get(doc, "metadata"), *refs;
	size_t mk = zt_yaml_rd_enter(&l->rd, "metadata");
	int rc = opt_seq(l, md, "ownerReferences", &refs);
	for (size_t i = 0; !rc && refs && i < refs->n; i++) {
		const struct zt_yaml *r = zt_yaml_at(refs, i);
		size_t mk2 = zt_yaml_rd_enter(&l->rd, "ownerReferences[%zu]", i);
		bool controller = false;
		char *kind = NULL, *name = NULL;
		if (!(rc = need_map(l, r, NULL)) &&
		    !(rc = zt_yaml_rd_bool(&l->rd, r, "controller", &controller)) &&
		    !(rc = get_str(l, r, "kind", true, &kind)))
			rc = get_str(l, r, "name", true, &name);
		if (!rc && controller && !p->owner_kind) {
			p->owner_kind = intern(l->m, kind);
			p->owner_name = name;
		} else {
			free(kind);
			free(name);
		}
		zt_yaml_rd_leave(&l->rd, mk2);
	}
	zt_yaml_rd_leave(&l->rd, mk);
	return rc;
}

static int parse_pod(struct ld *l, const struct zt_yaml *doc)
{
	struct fi_pod p = {.ready = true};
	const struct zt_yaml *spec, *status;
	int rc;
	if ((rc = parse_meta(l, doc, "Pod", true, false, &p.meta)) ||
	    (rc = parse_owner(l, doc, &p)) || (rc = opt_map(l, doc, "spec", &spec)) ||
	    (rc = opt_map(l, doc, "status", &status)))
		goto out;
	if (spec) {
		size_t mk = zt_yaml_rd_enter(&l->rd, "spec");
		rc = get_name(l, spec, "nodeName", false, false, &p.node);
		p.node = intern(l->m, p.node);
		if (!rc)
			rc = get_name(l, spec, "serviceAccountName", false, false,
			              &p.service_account);
		p.service_account = intern(l->m, p.service_account);
		if (!rc && !(rc = zt_yaml_rd_bool(&l->rd, spec, "hostNetwork", &p.host_network)))
			rc = parse_pod_ports(l, spec, &p);
		zt_yaml_rd_leave(&l->rd, mk);
		if (rc)
			goto out;
	}
	if (status) {
		size_t mk = zt_yaml_rd_enter(&l->rd, "status");
		rc = parse_pod_status(l, status, &p);
		zt_yaml_rd_leave(&l->rd, mk);
		if (rc)
			goto out;
	}
	if (!p.service_account)
		p.service_account = intern(l->m, xstrdup("default"));
	if (!p.meta.uid)
		p.meta.uid = derived_uid("Pod", p.meta.ns, p.meta.name);
	*GROW(l->m->pods, l->m->n_pods) = p;
	return 0;
out:
	pod_clear(&p);
	return rc;
}

static int parse_service_port(struct ld *l, const struct zt_yaml *pt, struct fi_service_port *sp)
{
	int rc;
	if ((rc = need_map(l, pt, NULL)) || (rc = get_str(l, pt, "name", false, &sp->name)) ||
	    (rc = get_port(l, pt, "port", &sp->port)) ||
	    (rc = get_protocol(l, pt, &sp->protocol)) ||
	    (rc = get_str(l, pt, "appProtocol", false, &sp->app_protocol)))
		return rc;
	const struct zt_yaml *tp = zt_yaml_get(pt, "targetPort");
	sp->target_port = sp->port;
	if (zt_yaml_is_null(tp))
		return 0;
	size_t mk = zt_yaml_rd_enter(&l->rd, "targetPort");
	const char *s = zt_yaml_str(tp);
	if (s && *s >= '0' && *s <= '9') {
		rc = port_value(l, tp, &sp->target_port);
	} else if (s && port_name(s)) {
		sp->target_port = 0;
		sp->target_port_name = xstrdup(s);
	} else {
		rc = zt_yaml_rd_fail(&l->rd, tp, ZT_E_PARSE, "expected a port number or name, got %s", GOT(tp));
	}
	zt_yaml_rd_leave(&l->rd, mk);
	return rc;
}

static int parse_cluster_ips(struct ld *l, const struct zt_yaml *spec, struct fi_service *s)
{
	const struct zt_yaml *list;
	int rc = opt_seq(l, spec, "clusterIPs", &list);
	const struct zt_yaml *one = zt_yaml_get(spec, "clusterIP");
	for (size_t i = 0; !rc && list && i < list->n; i++) {
		const struct zt_yaml *n = zt_yaml_at(list, i);
		size_t mk = zt_yaml_rd_enter(&l->rd, "clusterIPs[%zu]", i);
		const char *v = zt_yaml_str(n);
		if (v && !strcmp(v, "None"))
			s->headless = true;
		else
			rc = add_ip(l, n, &s->ips, &s->n_ips);
		zt_yaml_rd_leave(&l->rd, mk);
	}
	if (rc || zt_yaml_is_null(one))
		return rc;
	size_t mk = zt_yaml_rd_enter(&l->rd, "clusterIP");
	const char *v = zt_yaml_str(one);
	struct zt_ip ip;
	if (v && !strcmp(v, "None"))
		s->headless = true;
	else if (!(rc = ip_value(l, one, &ip)) && !s->n_ips)
		*GROW(s->ips, s->n_ips) = ip;
	zt_yaml_rd_leave(&l->rd, mk);
	if (!rc && s->headless && s->n_ips)
		rc = zt_yaml_rd_fail(&l->rd, one, ZT_E_PARSE, "clusterIP None together with addresses");
	return rc;
}

static int parse_service(struct ld *l, const struct zt_yaml *doc)
{
	struct fi_service s = {0};
	const struct zt_yaml *spec, *ports;
	int rc;
	if ((rc = parse_meta(l, doc, "Service", true, true, &s.meta)) ||
	    (rc = opt_map(l, doc, "spec", &spec)))
		goto out;
	size_t mk = zt_yaml_rd_enter(&l->rd, "spec");
	if (spec && !(rc = get_labels(l, spec, "selector", &s.selector)) &&
	    !(rc = parse_cluster_ips(l, spec, &s)) && !(rc = opt_seq(l, spec, "ports", &ports))) {
		for (size_t i = 0; !rc && ports && i < ports->n; i++) {
			size_t mk2 = zt_yaml_rd_enter(&l->rd, "ports[%zu]", i);
			struct fi_service_port *sp = GROW(s.ports, s.n_ports);
			rc = parse_service_port(l, zt_yaml_at(ports, i), sp);
			zt_yaml_rd_leave(&l->rd, mk2);
		}
	}
	zt_yaml_rd_leave(&l->rd, mk);
	if (rc)
		goto out;
	*GROW(l->m->services, l->m->n_services) = s;
	return 0;
out:
	service_clear(&s);
	return rc;
}

static int parse_gateway(struct ld *l, const struct zt_yaml *doc)
{
	struct fi_gateway g = {0};
	const struct zt_yaml *spec;
	int rc;
	if ((rc = parse_meta(l, doc, "Gateway", true, false, &g.meta)) ||
	    (rc = need_spec(l, doc, &spec)))
		goto out;
	size_t mk = zt_yaml_rd_enter(&l->rd, "spec");
	rc = get_str(l, spec, "gatewayClassName", true, &g.class_name);
	zt_yaml_rd_leave(&l->rd, mk);
	if (rc)
		goto out;
	*GROW(l->m->gateways, l->m->n_gateways) = g;
	return 0;
out:
	gateway_clear(&g);
	return rc;
}

/* spec.selector.matchLabels */
static int get_selector(struct ld *l, const struct zt_yaml *spec, struct fi_labels *out)
{
	const struct zt_yaml *sel;
	int rc = opt_map(l, spec, "selector", &sel);
	if (rc || !sel)
		return rc;
	size_t mk = zt_yaml_rd_enter(&l->rd, "selector");
	rc = get_labels(l, sel, "matchLabels", out);
	zt_yaml_rd_leave(&l->rd, mk);
	return rc;
}

/* A sequence of single-key mappings {wrapper: {fields...}} (from[].source, to[].operation);
 * fields must be among names (n of them) and each is a list of strings. Calls add for each
 * entry to get the struct fi_strs array to fill. */
static int parse_lists(struct ld *l, const struct zt_yaml *rule, const char *key,
                       const char *wrapper, const char *const *names, size_t n,
                       struct fi_strs *(*add)(struct fi_authz_rule *), struct fi_authz_rule *r)
{
	const struct zt_yaml *seq;
	int rc = opt_seq(l, rule, key, &seq);
	for (size_t i = 0; !rc && seq && i < seq->n; i++) {
		const struct zt_yaml *e = zt_yaml_at(seq, i), *body;
		size_t mk = zt_yaml_rd_enter(&l->rd, "%s[%zu]", key, i);
		struct fi_strs *f = add(r);
		const char *const wk[] = {wrapper, NULL};
		if (!(rc = need_map(l, e, NULL)) && !(rc = zt_yaml_rd_only_keys(&l->rd, e, wk)) &&
		    !(rc = opt_map(l, e, wrapper, &body)) && body) {
			size_t mk2 = zt_yaml_rd_enter(&l->rd, "%s", wrapper);
			const char *allowed[FI_SRC_COUNT + FI_OP_COUNT + 1] = {0};
			memcpy(allowed, names, n * sizeof(*names));
			rc = zt_yaml_rd_only_keys(&l->rd, body, allowed);
			bool any = false;
			for (size_t j = 0; !rc && j < n; j++) {
				rc = get_strs(l, body, names[j], &f[j]);
				any |= f[j].n > 0;
			}
			if (!rc && !any)
				rc = zt_yaml_rd_fail(&l->rd, body, ZT_E_PARSE, "must not be empty");
			zt_yaml_rd_leave(&l->rd, mk2);
		} else if (!rc) {
			rc = zt_yaml_rd_failf(&l->rd, e, wrapper, ZT_E_PARSE, "required");
		}
		zt_yaml_rd_leave(&l->rd, mk);
	}
	return rc;
}

static struct fi_strs *add_from(struct fi_authz_rule *r)
{
	return GROW(r->from, r->n_from)->f;
}

static struct fi_strs *add_to(struct fi_authz_rule *r)
{
	return GROW(r->to, r->n_to)->f;
}

static int parse_authz_rule(struct ld *l, const struct zt_yaml *rule, struct fi_authz_rule *r)
{
	static const char *const keys[] = {"from", "to", "when", NULL};
	static const char *const when_keys[] = {"key", "values", "notValues", NULL};
	const struct zt_yaml *when;
	int rc;
	if ((rc = need_map(l, rule, NULL)) || (rc = zt_yaml_rd_only_keys(&l->rd, rule, keys)) ||
	    (rc = parse_lists(l, rule, "from", "source", fi_authz_source_names, FI_SRC_COUNT,
	                      add_from, r)) ||
	    (rc = parse_lists(l, rule, "to", "operation", fi_authz_operation_names, FI_OP_COUNT,
	                      add_to, r)) ||
	    (rc = opt_seq(l, rule, "when", &when)))
		return rc;
	for (size_t i = 0; !rc && when && i < when->n; i++) {
		const struct zt_yaml *c = zt_yaml_at(when, i);
		size_t mk = zt_yaml_rd_enter(&l->rd, "when[%zu]", i);
		struct fi_authz_when *w = GROW(r->when, r->n_when);
		if (!(rc = need_map(l, c, NULL)) && !(rc = zt_yaml_rd_only_keys(&l->rd, c, when_keys)) &&
		    !(rc = get_str(l, c, "key", true, &w->key)) &&
		    !(rc = get_strs(l, c, "values", &w->values)) &&
		    !(rc = get_strs(l, c, "notValues", &w->not_values)) && !w->values.n &&
		    !w->not_values.n)
			rc = zt_yaml_rd_fail(&l->rd, c, ZT_E_PARSE, "needs values or notValues");
		zt_yaml_rd_leave(&l->rd, mk);
	}
	return rc;
}

/* One targetRef {group, kind, name, namespace}: kind and name required. */
static int parse_target_ref(struct ld *l, const struct zt_yaml *n, struct fi_authz_policy *p)
{
	static const char *const keys[] = {"group", "kind", "name", "namespace", NULL};
	struct fi_target_ref *t = GROW(p->target_refs, p->n_target_refs);
	int rc;
	if ((rc = need_map(l, n, NULL)) || (rc = zt_yaml_rd_only_keys(&l->rd, n, keys)) ||
	    (rc = get_str(l, n, "group", false, &t->group)) ||
	    (rc = get_str(l, n, "kind", true, &t->kind)) ||
	    (rc = get_str(l, n, "name", true, &t->name)) ||
	    (rc = get_str(l, n, "namespace", false, &t->ns)))
		return rc;
	if (!t->group)
		t->group = xstrdup("");
	return 0;
}

static int parse_target_refs(struct ld *l, const struct zt_yaml *spec, struct fi_authz_policy *p)
{
	const struct zt_yaml *one = zt_yaml_get(spec, "targetRef"), *seq;
	int rc = 0;
	if (!zt_yaml_is_null(one)) {
		size_t mk = zt_yaml_rd_enter(&l->rd, "targetRef");
		rc = parse_target_ref(l, one, p);
		zt_yaml_rd_leave(&l->rd, mk);
	}
	if (!rc)
		rc = opt_seq(l, spec, "targetRefs", &seq);
	for (size_t i = 0; !rc && seq && i < seq->n; i++) {
		size_t mk = zt_yaml_rd_enter(&l->rd, "targetRefs[%zu]", i);
		rc = parse_target_ref(l, zt_yaml_at(seq, i), p);
		zt_yaml_rd_leave(&l->rd, mk);
	}
	return rc;
}

static int parse_authz(struct ld *l, const struct zt_yaml *doc)
{
	struct fi_authz_policy p = {0};
	const struct zt_yaml *spec, *rules;
	char *action = NULL;
	int rc;
	if ((rc = parse_meta(l, doc, "AuthorizationPolicy", true, false, &p.meta)) ||
	    (rc = opt_map(l, doc, "spec", &spec)))
		goto out;
	const char *dry = fi_labels_get(&p.meta.annotations, "istio.io/dry-run");
	p.dry_run = dry && !strcmp(dry, "true");
	size_t mk = zt_yaml_rd_enter(&l->rd, "spec");
	p.has_target_ref = !zt_yaml_is_null(zt_yaml_get(spec, "targetRef")) ||
	                   !zt_yaml_is_null(zt_yaml_get(spec, "targetRefs"));
	if (spec && !(rc = get_selector(l, spec, &p.selector)) &&
	    !(rc = parse_target_refs(l, spec, &p)) &&
	    !(rc = get_str(l, spec, "action", false, &action)) && action) {
		static const char *const names[] = {"ALLOW", "DENY", "AUDIT", "CUSTOM"};
		size_t i = 0;
		while (i < 4 && strcmp(action, names[i]))
			i++;
		if (i < 4) {
			p.action = (enum fi_authz_action)i;
		} else {
			rc = zt_yaml_rd_failf(&l->rd, zt_yaml_get(spec, "action"), "action", ZT_E_PARSE,
			          "expected ALLOW, DENY, AUDIT or CUSTOM, got %s",
			          GOT(zt_yaml_get(spec, "action")));
		}
	}
	if (spec && !rc)
		rc = opt_seq(l, spec, "rules", &rules);
	for (size_t i = 0; spec && !rc && rules && i < rules->n; i++) {
		size_t mk2 = zt_yaml_rd_enter(&l->rd, "rules[%zu]", i);
		rc = parse_authz_rule(l, zt_yaml_at(rules, i), GROW(p.rules, p.n_rules));
		zt_yaml_rd_leave(&l->rd, mk2);
	}
	zt_yaml_rd_leave(&l->rd, mk);
	if (rc)
		goto out;
	free(action);
	*GROW(l->m->authz_policies, l->m->n_authz_policies) = p;
	return 0;
out:
	free(action);
	authz_clear(&p);
	return rc;
}

static int mtls_mode(struct ld *l, const struct zt_yaml *mtls, enum fi_mtls_mode *out)
{
	static const char *const names[] = {"UNSET", "DISABLE", "PERMISSIVE", "STRICT"};
	const struct zt_yaml *n;
	int rc = need_map(l, mtls, NULL);
	*out = FI_MTLS_UNSET;
	if (rc || zt_yaml_is_null(n = zt_yaml_get(mtls, "mode")))
		return rc;
	const char *s = zt_yaml_str(n);
	for (size_t i = 0; s && i < 4; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum fi_mtls_mode)i;
			return 0;
		}
	rc = zt_yaml_rd_failf(&l->rd, n, "mode", ZT_E_PARSE, "expected UNSET, DISABLE, PERMISSIVE or STRICT, got %s",
	          GOT(n));
	return rc;
}

static int mtls_port_cmp(const void *a, const void *b)
{
	return (int)((const struct fi_mtls_port *)a)->port -
	       (int)((const struct fi_mtls_port *)b)->port;
}

static int parse_peer_authn(struct ld *l, const struct zt_yaml *doc)
{
	struct fi_peer_authn p = {0};
	const struct zt_yaml *spec, *mtls, *ports = NULL;
	int rc;
	if ((rc = parse_meta(l, doc, "PeerAuthentication", true, false, &p.meta)) ||
	    (rc = opt_map(l, doc, "spec", &spec)))
		goto out;
	size_t mk = zt_yaml_rd_enter(&l->rd, "spec");
	if (spec && !(rc = get_selector(l, spec, &p.selector)) &&
	    !(rc = opt_map(l, spec, "mtls", &mtls)) && mtls) {
		size_t mk2 = zt_yaml_rd_enter(&l->rd, "mtls");
		rc = mtls_mode(l, mtls, &p.mode);
		zt_yaml_rd_leave(&l->rd, mk2);
	}
	if (spec && !rc)
		rc = opt_map(l, spec, "portLevelMtls", &ports);
	if (!rc && ports && !p.selector.n) {
		rc = zt_yaml_rd_failf(&l->rd, ports, "portLevelMtls", ZT_E_PARSE, "needs a workload selector");
	}
	for (size_t i = 0; !rc && ports && i < ports->n; i++) {
		const struct zt_yaml *k = zt_yaml_key(ports, i);
		size_t mk2 = zt_yaml_rd_enter(&l->rd, "portLevelMtls");
		struct fi_mtls_port *mp = GROW(p.ports, p.n_ports);
		if (!(rc = port_value(l, k, &mp->port))) {
			size_t mk3 = zt_yaml_rd_enter(&l->rd, "%u", mp->port);
			rc = mtls_mode(l, zt_yaml_val(ports, i), &mp->mode);
			zt_yaml_rd_leave(&l->rd, mk3);
		}
		zt_yaml_rd_leave(&l->rd, mk2);
	}
	zt_yaml_rd_leave(&l->rd, mk);
	if (rc)
		goto out;
	if (p.n_ports)
		qsort(p.ports, p.n_ports, sizeof(*p.ports), mtls_port_cmp);
	*GROW(l->m->peer_authns, l->m->n_peer_authns) = p;
	return 0;
out:
	peer_authn_clear(&p);
	return rc;
}

/* ---- ServiceEntry and WorkloadEntry (networking.istio.io) ---------------------------------- */

static void workload_entry_clear(struct fi_workload_entry *w)
{
	meta_clear(&w->meta);
	free(w->address.host);
	labels_clear(&w->labels);
	free(w->service_account);
	free(w->network);
	labels_clear(&w->ports);
}

static void service_entry_clear(struct fi_service_entry *e)
{
	meta_clear(&e->meta);
	strs_clear(&e->hosts);
	free(e->addrs);
	for (size_t i = 0; i < e->n_ports; i++)
		free(e->ports[i].name);
	free(e->ports);
	for (size_t i = 0; i < e->n_endpoints; i++)
		workload_entry_clear(&e->endpoints[i]);
	free(e->endpoints);
	labels_clear(&e->selector);
	strs_clear(&e->subject_alt_names);
}

/* An address: an IP, or (host_ok) a DNS name. */
static int entry_addr(struct ld *l, const struct zt_yaml *map, const char *key, bool host_ok,
                      struct fi_entry_addr *out)
{
	int rc = get_str(l, map, key, true, &out->host);
	if (rc)
		return rc;
	if (!zt_ip_parse(&out->ip, out->host, strlen(out->host))) {
		out->is_ip = true;
		return 0;
	}
	if (host_ok && dns_name(out->host, true, 253) && !strstr(out->host, ".."))
		return 0;
	size_t mk = zt_yaml_rd_enter(&l->rd, "%s", key);
	rc = zt_yaml_rd_fail(&l->rd, zt_yaml_get(map, key), ZT_E_PARSE, "expected an IP address%s, got %s",
	          host_ok ? " or a DNS name" : "", GOT(zt_yaml_get(map, key)));
	zt_yaml_rd_leave(&l->rd, mk);
	return rc;
}

/* WorkloadEntry spec, also the shape of a ServiceEntry's inline endpoints. */
static int parse_entry_spec(struct ld *l, const struct zt_yaml *spec, bool host_ok,
                            struct fi_workload_entry *w)
{
	const struct zt_yaml *n;
	int64_t v;
	int rc;
	if ((rc = need_map(l, spec, NULL)) || (rc = entry_addr(l, spec, "address", host_ok,
	                                                       &w->address)) ||
	    (rc = get_labels(l, spec, "labels", &w->labels)) ||
	    (rc = get_str(l, spec, "serviceAccount", false, &w->service_account)) ||
	    (rc = get_str(l, spec, "network", false, &w->network)) ||
	    (rc = get_labels(l, spec, "ports", &w->ports)))
		return rc;
	for (size_t i = 0; i < w->ports.n; i++) {
		const char *t = w->ports.v[i].value;
		char *e = NULL;
		long pv = strtol(t, &e, 10);
		if (!*t || *e || pv < 1 || pv > 65535) {
			size_t mk = zt_yaml_rd_enter(&l->rd, "ports.%s", w->ports.v[i].key);
			rc = zt_yaml_rd_fail(&l->rd, zt_yaml_get(spec, "ports"), ZT_E_RANGE,
			          "expected an integer 1..65535, got \"%s\"", t);
			zt_yaml_rd_leave(&l->rd, mk);
			return rc;
		}
	}
	if (!zt_yaml_is_null(n = zt_yaml_get(spec, "weight"))) {
		if ((rc = zt_yaml_int(n, 0, UINT32_MAX, &v))) {
			size_t mk = zt_yaml_rd_enter(&l->rd, "weight");
			rc = zt_yaml_rd_fail(&l->rd, n, rc, "expected an integer, got %s", GOT(n));
			zt_yaml_rd_leave(&l->rd, mk);
			return rc;
		}
		w->weight = (uint32_t)v;
	}
	if (!w->service_account)
		w->service_account = xstrdup("default");
	if (!w->network)
		w->network = xstrdup("");
	return 0;
}

static int parse_workload_entry(struct ld *l, const struct zt_yaml *doc)
{
	struct fi_workload_entry w = {0};
	const struct zt_yaml *spec;
	int rc;
	if ((rc = parse_meta(l, doc, "WorkloadEntry", true, false, &w.meta)) ||
	    (rc = need_spec(l, doc, &spec)))
		goto out;
	size_t mk = zt_yaml_rd_enter(&l->rd, "spec");
	rc = parse_entry_spec(l, spec, true, &w);
	zt_yaml_rd_leave(&l->rd, mk);
	if (rc)
		goto out;
	*GROW(l->m->workload_entries, l->m->n_workload_entries) = w;
	return 0;
out:
	workload_entry_clear(&w);
	return rc;
}

/* A ServiceEntry host: a DNS name, or "*." and a DNS name. */
static bool se_host(const char *h)
{
	if (h[0] == '*' && h[1] == '.')
		h += 2;
	return dns_name(h, true, 253) && !strstr(h, "..");
}

static int se_enum(struct ld *l, const struct zt_yaml *spec, const char *key,
                   const char *const *names, int *out)
{
	const struct zt_yaml *n = zt_yaml_get(spec, key);
	const char *s = zt_yaml_str(n);
	if (zt_yaml_is_null(n))
		return 0;
	for (int i = 0; s && names[i]; i++) {
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	size_t mk = zt_yaml_rd_enter(&l->rd, "%s", key);
	int rc = zt_yaml_rd_fail(&l->rd, n, ZT_E_PARSE, "expected %s or %s, got %s", names[0], names[1], GOT(n));
	zt_yaml_rd_leave(&l->rd, mk);
	return rc;
}

static int parse_se_spec(struct ld *l, const struct zt_yaml *spec, struct fi_service_entry *e)
{
	static const char *const locations[] = {"MESH_EXTERNAL", "MESH_INTERNAL", NULL};
	static const char *const resolutions[] = {"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", NULL};
	const struct zt_yaml *addrs, *ports, *eps, *sel;
	int loc = 0, res = 0, rc;
	if ((rc = get_strs(l, spec, "hosts", &e->hosts)))
		return rc;
	if (e->hosts.n == 0) {
		size_t mk = zt_yaml_rd_enter(&l->rd, "hosts");
		rc = zt_yaml_rd_fail(&l->rd, spec, ZT_E_PARSE, "required: at least one host");
		zt_yaml_rd_leave(&l->rd, mk);
		return rc;
	}
	for (size_t i = 0; i < e->hosts.n; i++) {
		if (se_host(e->hosts.v[i]))
			continue;
		size_t mk = zt_yaml_rd_enter(&l->rd, "hosts[%zu]", i);
		rc = zt_yaml_rd_fail(&l->rd, zt_yaml_at(zt_yaml_get(spec, "hosts"), i), ZT_E_PARSE,
		          "expected a DNS name, optionally starting with \"*.\", got \"%.64s\"",
		          e->hosts.v[i]);
		zt_yaml_rd_leave(&l->rd, mk);
		return rc;
	}
	if ((rc = se_enum(l, spec, "location", locations, &loc)) ||
	    (rc = se_enum(l, spec, "resolution", resolutions, &res)) ||
	    (rc = opt_seq(l, spec, "addresses", &addrs)) || (rc = opt_seq(l, spec, "ports", &ports)) ||
	    (rc = opt_seq(l, spec, "endpoints", &eps)) ||
	    (rc = opt_map(l, spec, "workloadSelector", &sel)) ||
	    (rc = get_strs(l, spec, "subjectAltNames", &e->subject_alt_names)))
		return rc;
	e->location = (enum fi_se_location)loc;
	e->resolution = (enum fi_se_resolution)res;
	for (size_t i = 0; addrs && i < addrs->n; i++) {
		const struct zt_yaml *a = zt_yaml_at(addrs, i);
		const char *t = zt_yaml_str(a);
		struct zt_cidr c;
		struct zt_ip ip;
		if (t && !zt_ip_parse(&ip, t, a->len)) {
			zt_cidr_from_ip(&c, &ip, ip.family == AF_INET ? 32 : 128);
		} else if (!t || zt_cidr_parse(&c, t, a->len)) {
			size_t mk = zt_yaml_rd_enter(&l->rd, "addresses[%zu]", i);
			rc = zt_yaml_rd_fail(&l->rd, a, ZT_E_PARSE, "expected an IP address or a CIDR, got %s",
			          GOT(a));
			zt_yaml_rd_leave(&l->rd, mk);
			return rc;
		}
		*GROW(e->addrs, e->n_addrs) = c;
	}
	for (size_t i = 0; !rc && ports && i < ports->n; i++) {
		const struct zt_yaml *pt = zt_yaml_at(ports, i);
		struct fi_se_port *sp = GROW(e->ports, e->n_ports);
		size_t mk = zt_yaml_rd_enter(&l->rd, "ports[%zu]", i);
		if (!(rc = need_map(l, pt, NULL)) && !(rc = get_port(l, pt, "number", &sp->number)) &&
		    !(rc = get_str(l, pt, "name", false, &sp->name)) &&
		    !zt_yaml_is_null(zt_yaml_get(pt, "targetPort")))
			rc = get_port(l, pt, "targetPort", &sp->target_port);
		zt_yaml_rd_leave(&l->rd, mk);
	}
	for (size_t i = 0; !rc && eps && i < eps->n; i++) {
		struct fi_workload_entry *w = GROW(e->endpoints, e->n_endpoints);
		size_t mk = zt_yaml_rd_enter(&l->rd, "endpoints[%zu]", i);
		rc = parse_entry_spec(l, zt_yaml_at(eps, i),
		                      e->resolution == FI_SE_DNS ||
		                              e->resolution == FI_SE_DNS_ROUND_ROBIN,
		                      w);
		zt_yaml_rd_leave(&l->rd, mk);
	}
	if (!rc && sel) {
		size_t mk = zt_yaml_rd_enter(&l->rd, "workloadSelector");
		e->has_selector = true;
		rc = get_labels(l, sel, "labels", &e->selector);
		if (!rc && e->n_endpoints)
			rc = zt_yaml_rd_fail(&l->rd, sel, ZT_E_PARSE, "not allowed together with endpoints");
		zt_yaml_rd_leave(&l->rd, mk);
	}
	return rc;
}

static int parse_service_entry(struct ld *l, const struct zt_yaml *doc)
{
	struct fi_service_entry e = {0};
	const struct zt_yaml *spec;
	int rc;
	if ((rc = parse_meta(l, doc, "ServiceEntry", true, false, &e.meta)) ||
	    (rc = need_spec(l, doc, &spec)))
		goto out;
	size_t mk = zt_yaml_rd_enter(&l->rd, "spec");
	rc = parse_se_spec(l, spec, &e);
	zt_yaml_rd_leave(&l->rd, mk);
	if (rc)
		goto out;
	*GROW(l->m->service_entries, l->m->n_service_entries) = e;
	return 0;
out:
	service_entry_clear(&e);
	return rc;
}

/* ---- documents ----------------------------------------------------------------------------- */

struct kind {
	const char *group; /* "" = core */
	const char *kind;
	const char *versions; /* space-separated accepted versions, NULL = any */
	int (*parse)(struct ld *, const struct zt_yaml *);
};

static const struct kind kinds[] = {
        {"", "Namespace", "v1", parse_namespace},
        {"", "Node", "v1", parse_node},
        {"", "ServiceAccount", "v1", parse_service_account},
        {"", "Pod", "v1", parse_pod},
        {"", "Service", "v1", parse_service},
        {"gateway.networking.k8s.io", "Gateway", NULL, parse_gateway},
        {"security.istio.io", "AuthorizationPolicy", "v1 v1beta1", parse_authz},
        {"security.istio.io", "PeerAuthentication", "v1 v1beta1", parse_peer_authn},
        {"networking.istio.io", "ServiceEntry", "v1 v1beta1 v1alpha3", parse_service_entry},
        {"networking.istio.io", "WorkloadEntry", "v1 v1beta1 v1alpha3", parse_workload_entry},
};

static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	if (!n)
		return false;
	for (const char *p = list; (p = strstr(p, w)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

static int parse_doc(struct ld *l, const struct zt_yaml *doc, bool in_list)
{
	char *api = NULL, *kind = NULL;
	int rc;
	l->rd.obj[0] = '\0';
	zt_yaml_rd_leave(&l->rd, 0);
	if (zt_yaml_is_null(doc))
		return 0;
	if (doc->type != ZT_YAML_MAP)
		return zt_yaml_rd_fail(&l->rd, doc, ZT_E_PARSE, "expected a Kubernetes object (a mapping), got %s",
		            GOT(doc));
	if ((rc = get_str(l, doc, "apiVersion", true, &api)) ||
	    (rc = get_str(l, doc, "kind", true, &kind)))
		goto out;
	const char *slash = strchr(api, '/');
	size_t glen = slash ? (size_t)(slash - api) : 0;
	const char *version = slash ? slash + 1 : api;
	if (!strcmp(kind, "List") && !slash && !in_list) {
		const struct zt_yaml *items;
		if ((rc = opt_seq(l, doc, "items", &items)))
			goto out;
		for (size_t i = 0; !rc && items && i < items->n; i++)
			rc = parse_doc(l, zt_yaml_at(items, i), true);
		goto out;
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct kind *k = &kinds[i];
		if (strcmp(kind, k->kind) || strlen(k->group) != glen ||
		    strncmp(api, k->group, glen))
			continue;
		if (k->versions && !has_word(k->versions, version))
			break;
		rc = k->parse(l, doc);
		goto out;
	}
	const struct zt_yaml *md = zt_yaml_get(doc, "metadata");
	const char *ns = zt_yaml_str(zt_yaml_get(md, "namespace"));
	const char *name = zt_yaml_str(zt_yaml_get(md, "name"));
	zt_warn("%s:%u: skipping unsupported kind %s (%s) %s%s%s", l->rd.file, doc->line, kind, api,
	        ns ? ns : "", ns ? "/" : "", name ? name : "");
out:
	free(api);
	free(kind);
	return rc;
}

static int on_doc(void *arg, const struct zt_yaml *doc, size_t index)
{
	struct ld *l = arg;
	(void)index;
	if (l->cancel && atomic_load(l->cancel)) {
		snprintf(l->rd.err, l->rd.errlen, "%s: load cancelled", l->rd.file);
		return ZT_E_CANCELLED;
	}
	return parse_doc(l, doc, false);
}

/* Streams path: each document is converted into the model as soon as it is parsed and its
 * tree freed, so only one document's tree is ever held. */
static int load_file(struct ld *l, const char *path)
{
	struct fi_mesh *m = l->m;
	m->files = xrealloc(m->files, (m->n_files + 1) * sizeof(*m->files));
	m->files[m->n_files] = xstrdup(path);
	l->rd.file = m->files[m->n_files++];
	return zt_yaml_stream_file(path, &l->lim, on_doc, l, l->rd.err, l->rd.errlen);
}

/* ---- lookups ------------------------------------------------------------------------------- */

static int meta_key_cmp(const char *ns, const char *name, const struct fi_meta *m)
{
	int c = strcmp(ns ? ns : "", m->ns ? m->ns : "");
	return c ? c : strcmp(name, m->name);
}

static int meta_cmp(const void *a, const void *b)
{
	const struct fi_meta *x = a, *y = b;
	int c = meta_key_cmp(x->ns, x->name, y);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Binary search in an array of objects that start with struct fi_meta. */
static void *find(const void *arr, size_t n, size_t size, const char *ns, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct fi_meta *e = (const void *)((const char *)arr + mid * size);
		int c = meta_key_cmp(ns, name, e);
		if (!c)
			return (void *)e;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct fi_pod *fi_mesh_find_pod(const struct fi_mesh *m, const char *ns, const char *name)
{
	return find(m->pods, m->n_pods, sizeof(*m->pods), ns, name);
}

const struct fi_service *fi_mesh_find_service(const struct fi_mesh *m, const char *ns,
                                              const char *name)
{
	return find(m->services, m->n_services, sizeof(*m->services), ns, name);
}

const struct fi_namespace *fi_mesh_find_namespace(const struct fi_mesh *m, const char *name)
{
	return find(m->namespaces, m->n_namespaces, sizeof(*m->namespaces), NULL, name);
}

const struct fi_node *fi_mesh_find_node(const struct fi_mesh *m, const char *name)
{
	return find(m->nodes, m->n_nodes, sizeof(*m->nodes), NULL, name);
}

const struct fi_gateway *fi_mesh_find_gateway(const struct fi_mesh *m, const char *ns,
                                              const char *name)
{
	return find(m->gateways, m->n_gateways, sizeof(*m->gateways), ns, name);
}

static bool node_key(char *buf, size_t len, const char *node, const char *ns, const char *sa)
{
	int n = snprintf(buf, len, "%s\1%s\1%s", node, ns, sa);
	return n > 0 && (size_t)n < len;
}

static bool scan_pod_on_node(const struct fi_mesh *m, const char *node, const char *ns,
                             const char *sa)
{
	for (size_t i = 0; i < m->n_pods; i++) {
		const struct fi_pod *p = &m->pods[i];
		if (p->node && !strcmp(p->node, node) && !strcmp(p->meta.ns, ns) &&
		    !strcmp(p->service_account, sa))
			return true;
	}
	return false;
}

bool fi_mesh_pod_in_mesh(const struct fi_mesh *m, const struct fi_pod *p)
{
	const char *mode = fi_labels_get(&p->meta.labels, "istio.io/dataplane-mode");
	if (p->host_network || (mode && !strcmp(mode, "none")))
		return false;
	if (mode && !strcmp(mode, "ambient"))
		return true;
	const struct fi_namespace *ns = fi_mesh_find_namespace(m, p->meta.ns);
	mode = ns ? fi_labels_get(&ns->meta.labels, "istio.io/dataplane-mode") : NULL;
	return mode && !strcmp(mode, "ambient");
}

const struct fi_gateway *fi_mesh_pod_waypoint(const struct fi_mesh *m, const struct fi_pod *p)
{
	const char *gw = fi_labels_get(&p->meta.labels, "gateway.networking.k8s.io/gateway-name");
	const struct fi_gateway *g = gw ? fi_mesh_find_gateway(m, p->meta.ns, gw) : NULL;
	return g && !strcmp(g->class_name, FI_WAYPOINT_CLASS) ? g : NULL;
}

const char *fi_labels_get(const struct fi_labels *l, const char *key)
{
	struct fi_label k = {.key = (char *)key};
	const struct fi_label *e = l->n ? bsearch(&k, l->v, l->n, sizeof(*l->v), label_cmp) : NULL;
	return e ? e->value : NULL;
}

bool fi_labels_match(const struct fi_labels *selector, const struct fi_labels *labels)
{
	for (size_t i = 0; i < selector->n; i++) {
		const char *v = fi_labels_get(labels, selector->v[i].key);
		if (!v || strcmp(v, selector->v[i].value))
			return false;
	}
	return true;
}

/* ---- after loading: order, duplicates, addresses ------------------------------------------- */

static int sort_unique(void *arr, size_t n, size_t size, const char *kind, char *err, size_t errlen)
{
	if (n)
		qsort(arr, n, size, meta_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct fi_meta *a = (const void *)((char *)arr + (i - 1) * size);
		const struct fi_meta *b = (const void *)((char *)arr + i * size);
		if (meta_key_cmp(a->ns, a->name, b))
			continue;
		snprintf(err, errlen, "%s:%u: %s %s%s%s: duplicate (first defined at %s:%u)",
		         b->file, b->line, kind, b->ns ? b->ns : "", b->ns ? "/" : "", b->name,
		         a->file, a->line);
		return ZT_E_PARSE;
	}
	return 0;
}

/* One line of the address file, comment and surrounding blanks already removed. */
static int address_line(struct fi_mesh *m, const char *path, unsigned lineno, char *s,
                        unsigned *seen, char *err, size_t errlen)
{
	char *save = NULL, *key = strtok_r(s, " \t", &save), *ips = strtok_r(NULL, " \t", &save);
	char *slash = key ? strchr(key, '/') : NULL;
	if (!ips || strtok_r(NULL, " \t", &save) || !slash || slash == key || !slash[1] ||
	    strchr(slash + 1, '/')) {
		snprintf(err, errlen, "%s:%u: expected \"namespace/pod IP[,IP]\"", path, lineno);
		return ZT_E_PARSE;
	}
	*slash = '\0';
	struct zt_ip addrs[FI_POD_MAX_IPS];
	size_t n = 0;
	for (char *p = ips, *c; p; p = c ? c + 1 : NULL) {
		c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (n == FI_POD_MAX_IPS) {
			snprintf(err, errlen, "%s:%u: %s/%s: more than %d addresses", path, lineno,
			         key, slash + 1, FI_POD_MAX_IPS);
			return ZT_E_TOOBIG;
		}
		if (zt_ip_parse(&addrs[n++], p, len)) {
			snprintf(err, errlen, "%s:%u: %s/%s: bad IP address \"%.*s\"", path, lineno,
			         key, slash + 1, (int)(len > 64 ? 64 : len), p);
			return ZT_E_PARSE;
		}
	}
	struct fi_pod *pod = find(m->pods, m->n_pods, sizeof(*m->pods), key, slash + 1);
	if (!pod) {
		zt_warn("%s:%u: no pod %s/%s; entry ignored", path, lineno, key, slash + 1);
		return 0;
	}
	size_t idx = (size_t)(pod - m->pods);
	if (seen[idx]) {
		snprintf(err, errlen, "%s:%u: %s/%s: listed twice (first at line %u)", path, lineno,
		         key, slash + 1, seen[idx]);
		return ZT_E_PARSE;
	}
	seen[idx] = lineno;
	/* The pod's own array belongs to its file's part: the mesh gets a copy of its own. */
	pod->ips = xmalloc(n * sizeof(*pod->ips));
	memcpy(pod->ips, addrs, n * sizeof(*addrs));
	pod->n_ips = n;
	m->owned = xrealloc(m->owned, (m->n_owned + 1) * sizeof(*m->owned));
	m->owned[m->n_owned++] = pod->ips;
	return 0;
}

static int load_addresses(struct fi_mesh *m, const char *path, uint64_t max_bytes, char *err,
                          size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	unsigned *seen = xrealloc(NULL, (m->n_pods ? m->n_pods : 1) * sizeof(*seen));
	memset(seen, 0, (m->n_pods ? m->n_pods : 1) * sizeof(*seen));
	char line[FI_ADDR_FILE_MAX_LINE + 2];
	unsigned lineno = 0;
	uint64_t total = 0;
	int rc = 0;
	while (!rc && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		lineno++;
		total += len;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
			         FI_ADDR_FILE_MAX_LINE);
			rc = ZT_E_TOOBIG;
			break;
		}
		if (total > max_bytes) {
			snprintf(err, errlen,
			         "%s:%u: larger than %" PRIu64 " bytes (raise with --max-yaml-bytes)",
			         path, lineno, max_bytes);
			rc = ZT_E_TOOBIG;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = line + strspn(line, " \t\r\n");
		size_t n = strlen(s);
		while (n && strchr(" \t\r\n", s[n - 1]))
			s[--n] = '\0';
		if (n)
			rc = address_line(m, path, lineno, s, seen, err, errlen);
	}
	if (!rc && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -EIO;
	}
	free(seen);
	fclose(f);
	return rc;
}

/* ---- parts: one file's objects, kept between loads ---------------------------------------- */

struct fi_mesh_part {
	atomic_uint refs;
	struct fi_mesh objs;   /* the file's objects, each kind sorted by (ns, name, seq) */
	unsigned n_seq;        /* objects parsed: seq of the next file starts this far on */
	bool dup;              /* two objects of one kind with one name (the load will say) */
	struct zt_hmap node_sa; /* "node\1ns\1sa" of every scheduled pod -> (void *)1 */
	/* The file as it was when read: reused only while it still is, and not racy. */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool racy; /* modified too close to the read for the time to tell a later rewrite */
};

struct fi_mesh_cache {
	char **paths;
	struct fi_mesh_part **parts;
	size_t n;
	size_t parsed, reused; /* by the last load */
	/* A recycled mesh's arrays by kind (kinds_off order), taken by the next load: their
	 * pages are in memory already (a fresh array of 100,000 pods faults in 14 MB). */
	char *spare[16];
	size_t spare_n[16];
};

/* The kinds, for code that handles every array of a model alike. */
#define KIND_ARR(m, k)  (*(char **)((char *)(m) + kinds_off[k].arr))
#define KIND_N(m, k)    (*(size_t *)((char *)(m) + kinds_off[k].n))
#define KIND(f, nf, sz, name) {offsetof(struct fi_mesh, f), offsetof(struct fi_mesh, nf), sz, name}
static const struct {
	size_t arr, n, size;
	const char *name;
} kinds_off[] = {
        KIND(namespaces, n_namespaces, sizeof(struct fi_namespace), "Namespace"),
        KIND(nodes, n_nodes, sizeof(struct fi_node), "Node"),
        KIND(service_accounts, n_service_accounts, sizeof(struct fi_service_account),
             "ServiceAccount"),
        KIND(pods, n_pods, sizeof(struct fi_pod), "Pod"),
        KIND(services, n_services, sizeof(struct fi_service), "Service"),
        KIND(gateways, n_gateways, sizeof(struct fi_gateway), "Gateway"),
        KIND(authz_policies, n_authz_policies, sizeof(struct fi_authz_policy),
             "AuthorizationPolicy"),
        KIND(peer_authns, n_peer_authns, sizeof(struct fi_peer_authn), "PeerAuthentication"),
        KIND(service_entries, n_service_entries, sizeof(struct fi_service_entry), "ServiceEntry"),
        KIND(workload_entries, n_workload_entries, sizeof(struct fi_workload_entry),
             "WorkloadEntry"),
};
#undef KIND
#define N_KINDS (sizeof(kinds_off) / sizeof(kinds_off[0]))

static struct fi_meta *elem(char *arr, size_t size, size_t i)
{
	return (struct fi_meta *)(void *)(arr + i * size);
}

static void part_unref(struct fi_mesh_part *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	fi_mesh_clear(&p->objs);
	zt_hmap_clear(&p->node_sa);
	free(p);
}

static struct fi_mesh_part *part_ref(struct fi_mesh_part *p)
{
	atomic_fetch_add(&p->refs, 1);
	return p;
}

static bool same_file(const struct fi_mesh_part *p, const struct stat *st)
{
	return p->dev == st->st_dev && p->ino == st->st_ino && p->size == st->st_size &&
	       p->mtime.tv_sec == st->st_mtim.tv_sec && p->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Reads path into a new part (*out, one reference). The identity is taken before the file
 * is opened: a rewrite in between makes it differ from the file later, never the reverse. */
static int part_parse(const char *path, const struct zt_yaml_limits *lim,
                      const atomic_bool *cancel, struct fi_mesh_part **out, char *err,
                      size_t errlen)
{
	struct fi_mesh_part *p = xcalloc(1, sizeof(*p));
	struct ld l = {.m = &p->objs, .lim = *lim, .cancel = cancel};
	struct timespec now;
	struct stat st;
	char key[800];
	int rc;

	atomic_init(&p->refs, 1);
	clock_gettime(CLOCK_REALTIME, &now);
	p->racy = true;
	if (stat(path, &st) == 0) {
		int64_t window = st.st_mtim.tv_nsec ? FI_MESH_RACY_NS : 2000000000ll;
		int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
		int64_t nw = (int64_t)now.tv_sec * 1000000000ll + now.tv_nsec;
		p->dev = st.st_dev;
		p->ino = st.st_ino;
		p->size = st.st_size;
		p->mtime = st.st_mtim;
		p->racy = mt > nw - window;
	}
	zt_yaml_rd_init(&l.rd, NULL, err, errlen, false);
	if ((rc = load_file(&l, path))) {
		part_unref(p);
		return rc;
	}
	p->n_seq = l.seq;
	for (size_t k = 0; k < N_KINDS; k++) {
		char *arr = KIND_ARR(&p->objs, k);
		size_t n = KIND_N(&p->objs, k), size = kinds_off[k].size;
		if (n > 1)
			qsort(arr, n, size, meta_cmp);
		for (size_t i = 1; i < n && !p->dup; i++) {
			const struct fi_meta *a = elem(arr, size, i - 1), *b = elem(arr, size, i);
			p->dup = !meta_key_cmp(a->ns, a->name, b);
		}
	}
	for (size_t i = 0; i < p->objs.n_pods; i++) {
		const struct fi_pod *pod = &p->objs.pods[i];
		if (pod->node && node_key(key, sizeof(key), pod->node, pod->meta.ns,
		                          pod->service_account))
			zt_hmap_put(&p->node_sa, key, (void *)1);
	}
	*out = p;
	return 0;
}

struct run {
	const char *arr;
	size_t n;
	unsigned base;
};

static const struct fi_meta *run_at(const struct run *r, size_t size, size_t i)
{
	return (const struct fi_meta *)(const void *)(r->arr + i * size);
}

static int run_cmp(const void *a, const void *b, void *arg)
{
	const struct run *x = a, *y = b;
	size_t size = *(const size_t *)arg;
	const struct fi_meta *p = run_at(x, size, 0), *q = run_at(y, size, 0);
	int c = meta_key_cmp(p->ns, p->name, q);
	return c ? c : (x->base > y->base) - (x->base < y->base);
}

/* One kind's array of m from the parts' sorted arrays. Files that hold disjoint ranges of
 * names (the usual layout: a file per namespace or per kind) are copied one after the other
 * in order, without comparing their objects; overlapping ones are sorted together. Then
 * duplicates are refused as a single load would. */
static int merge_kind(struct fi_mesh *m, struct fi_mesh_cache *cache, size_t k,
                      const unsigned *base, char *err, size_t errlen)
{
	size_t size = kinds_off[k].size, total = 0, nr = 0;
	bool dup = false, disjoint = true;
	struct run *runs = xcalloc(m->n_parts + 1, sizeof(*runs));

	for (size_t i = 0; i < m->n_parts; i++) {
		const struct fi_mesh *o = &m->parts[i]->objs;
		if (!KIND_N(o, k))
			continue;
		runs[nr++] = (struct run){KIND_ARR(o, k), KIND_N(o, k), base[i]};
		total += KIND_N(o, k);
		dup |= m->parts[i]->dup;
	}
	char *out = NULL;
	if (cache && cache->spare[k] && total) {
		out = cache->spare[k];
		if (cache->spare_n[k] < total)
			out = xrealloc(out, total * size);
		cache->spare[k] = NULL;
	} else if (total) {
		out = xmalloc(total * size);
	}
	if (nr > 1)
		qsort_r(runs, nr, sizeof(*runs), run_cmp, &size);
	for (size_t r = 1; r < nr && disjoint; r++) {
		const struct fi_meta *last = run_at(&runs[r - 1], size, runs[r - 1].n - 1);
		disjoint = meta_key_cmp(last->ns, last->name, run_at(&runs[r], size, 0)) < 0;
	}
	size_t at = 0;
	for (size_t r = 0; r < nr; r++) {
		memcpy(out + at * size, runs[r].arr, runs[r].n * size);
		for (size_t i = 0; i < runs[r].n; i++)
			elem(out, size, at + i)->seq += runs[r].base;
		at += runs[r].n;
	}
	free(runs);
	KIND_ARR(m, k) = out;
	KIND_N(m, k) = total;
	if (!disjoint && total > 1)
		qsort(out, total, size, meta_cmp);
	if (!disjoint || dup)
		return sort_unique(out, total, size, kinds_off[k].name, err, errlen);
	return 0;
}

/* m (zeroed) from parts (n references, which m takes). */
static int assemble(struct fi_mesh *m, struct fi_mesh_cache *cache, struct fi_mesh_part **parts,
                    size_t n, char *err, size_t errlen)
{
	unsigned *base = xcalloc(n + 1, sizeof(*base));
	int rc = 0;

	m->parts = parts;
	m->n_parts = n;
	m->files = xcalloc(n + 1, sizeof(*m->files));
	m->n_files = n;
	for (size_t i = 0; i < n; i++) {
		m->files[i] = parts[i]->objs.files[0];
		base[i + 1] = base[i] + parts[i]->n_seq;
	}
	for (size_t k = 0; !rc && k < N_KINDS; k++)
		rc = merge_kind(m, cache, k, base, err, errlen);
	free(base);
	return rc;
}

bool fi_mesh_has_pod_on_node(const struct fi_mesh *m, const char *node, const char *ns,
                             const char *sa)
{
	char key[800];

	if (!m->parts || !node_key(key, sizeof(key), node, ns, sa))
		return scan_pod_on_node(m, node, ns, sa);
	for (size_t i = 0; i < m->n_parts; i++)
		if (zt_hmap_get(&m->parts[i]->node_sa, key))
			return true;
	return false;
}

struct fi_mesh_cache *fi_mesh_cache_new(void)
{
	return xcalloc(1, sizeof(struct fi_mesh_cache));
}

void fi_mesh_cache_free(struct fi_mesh_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->paths[i]);
		part_unref(c->parts[i]);
	}
	free(c->paths);
	free(c->parts);
	for (size_t k = 0; k < N_KINDS; k++)
		free(c->spare[k]);
	free(c);
}

void fi_mesh_recycle(struct fi_mesh *m, struct fi_mesh_cache *c)
{
	if (!c || !m->parts) {
		fi_mesh_clear(m);
		return;
	}
	for (size_t k = 0; k < N_KINDS; k++) {
		if (!KIND_N(m, k))
			continue;
		free(c->spare[k]);
		c->spare[k] = KIND_ARR(m, k);
		c->spare_n[k] = KIND_N(m, k);
		KIND_ARR(m, k) = NULL;
		KIND_N(m, k) = 0;
	}
	fi_mesh_clear(m);
}

void fi_mesh_cache_stats(const struct fi_mesh_cache *c, size_t *parsed, size_t *reused)
{
	*parsed = c ? c->parsed : 0;
	*reused = c ? c->reused : 0;
}

/* The cached part of path if the file is still what was read, with a new reference. */
static struct fi_mesh_part *cache_get(const struct fi_mesh_cache *c, size_t hint, const char *path)
{
	struct stat st;
	size_t i = hint;

	if (!c)
		return NULL;
	if (i >= c->n || strcmp(c->paths[i], path))
		for (i = 0; i < c->n && strcmp(c->paths[i], path); i++)
			;
	if (i == c->n || c->parts[i]->racy || stat(path, &st) < 0 || !same_file(c->parts[i], &st))
		return NULL;
	return part_ref(c->parts[i]);
}

static void cache_set(struct fi_mesh_cache *c, const char *const *files,
                      struct fi_mesh_part **parts, size_t n)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->paths[i]);
		part_unref(c->parts[i]);
	}
	c->paths = xrealloc(c->paths, (n + 1) * sizeof(*c->paths));
	c->parts = xrealloc(c->parts, (n + 1) * sizeof(*c->parts));
	for (size_t i = 0; i < n; i++) {
		c->paths[i] = xstrdup(files[i]);
		c->parts[i] = part_ref(parts[i]);
	}
	c->n = n;
}

int fi_mesh_load(struct fi_mesh *m, const char *const *files, size_t n,
                 const struct fi_mesh_opts *o, char *err, size_t errlen)
{
	struct zt_yaml_limits lim = {
	        .max_bytes = o && o->max_yaml_bytes ? o->max_yaml_bytes
	                                            : FI_MESH_DEFAULT_MAX_YAML_BYTES,
	        .max_nodes = o && o->max_yaml_nodes ? o->max_yaml_nodes
	                                            : FI_MESH_DEFAULT_MAX_YAML_NODES,
	        .bytes_hint = " (raise with --max-yaml-bytes)",
	        .nodes_hint = " in one document (raise with --max-yaml-nodes)"};
	struct fi_mesh_cache *cache = o ? o->cache : NULL;
	struct fi_mesh_part **parts = xcalloc(n + 1, sizeof(*parts));
	size_t parsed = 0, reused = 0, got = 0;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	if (errlen)
		err[0] = '\0';
	for (; !rc && got < n; got++) {
		if ((parts[got] = cache_get(cache, got, files[got]))) {
			reused++;
			continue;
		}
		rc = part_parse(files[got], &lim, o ? o->cancel : NULL, &parts[got], err, errlen);
		parsed++;
		if (rc)
			break;
	}
	if (rc) {
		for (size_t i = 0; i < got; i++)
			part_unref(parts[i]);
		free(parts);
		return rc;
	}
	rc = assemble(m, cache, parts, n, err, errlen);
	if (!rc && o && o->addresses_file)
		rc = load_addresses(m, o->addresses_file, lim.max_bytes, err, errlen);
	if (rc) {
		fi_mesh_clear(m);
		return rc;
	}
	if (cache) {
		cache_set(cache, files, m->parts, n);
		cache->parsed = parsed;
		cache->reused = reused;
	}
	return 0;
}
