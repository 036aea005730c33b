/* fake-istiod generate: writes a synthetic mesh as YAML, streaming object by object so a
 * million pods never sit in memory. Names and addresses derive from indexes only:
 *   namespace ns-N (ambient), node node-N, pod p-I in ns-(I % namespaces) on
 *   node-(I % nodes), IP 10.128.0.0 + I + 1; Service svc-K of a namespace selects app=svc-K,
 *   clusterIP 10.96.0.0 + global index + 1; policy allow-P of a namespace; churn pod churn-J
 *   in ns-(J % namespaces) at 10.112.0.0 + J. Namespaced objects are written namespace by
 *   namespace in name order (ns-0, ns-1, ns-10, ...), a namespace's pods (churn pods last)
 *   in one file. Invariant: output depends on the flags alone (see generate.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fake-istiod/generate.h"
#include "runtime/err.h"
#include "runtime/mem.h"

#define MAX_PODS      8000000u /* 10.128.0.0/9 */
#define MAX_SERVICES  1000000u /* 10.96.0.0/12 */
#define MAX_NAMES     100000u  /* nodes, namespaces */
#define MAX_POLICIES  10000u   /* per namespace */
#define MAX_RULES     1000u
#define MAX_CHURN     10000u

struct change {
	uint32_t pod, step;
};

/* Where objects go: one stream, or files DIR/SECTION-NNN.yaml of at most budget YAML nodes
 * (estimated per object) each, named on list as they are closed. */
struct out {
	FILE *f;
	const char *dir, *section;
	unsigned file_no;
	uint64_t nodes, budget; /* budget 0: a single stream */
	bool hold;              /* pods section: files switched by out_file only */
	FILE *list;
	char path[PATH_MAX];
	int rc;
	char *err;
	size_t errlen;
};

struct gen {
	const struct fi_gen_shape *s;
	uint32_t *svc_base;                  /* per namespace: global index of its first Service */
	struct change *removed, *relabelled; /* sorted by pod, latest step wins */
	size_t n_removed, n_relabelled;
	uint32_t *ns_order; /* namespace indexes by name (strcmp of "ns-N") */
	uint32_t **first, *n_first; /* per namespace, once churn needs it: see churn_pod */
};

static uint32_t pods_in_ns(const struct fi_gen_shape *s, uint32_t ns)
{
	return s->pods / s->namespaces + (ns < s->pods % s->namespaces);
}

static uint32_t services_in_ns(const struct fi_gen_shape *s, uint32_t ns)
{
	uint32_t n = pods_in_ns(s, ns);
	return s->pods_per_service ? (n + s->pods_per_service - 1) / s->pods_per_service : 0;
}

static void ip4(FILE *f, uint32_t base, uint32_t off)
{
	uint32_t a = base + off;
	fprintf(f, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static int change_cmp(const void *a, const void *b)
{
	const struct change *x = a, *y = b;
	if (x->pod != y->pod)
		return x->pod < y->pod ? -1 : 1;
	return (x->step > y->step) - (x->step < y->step);
}

/* The latest step that touched pod, or 0. */
static uint32_t changed_at(const struct change *v, size_t n, uint32_t pod)
{
	size_t lo = 0, hi = n;
	uint32_t step = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].pod < pod)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && v[lo].pod == pod; lo++)
		step = v[lo].step;
	return step;
}

static int close_file(FILE *f, const char *path, char *err, size_t errlen)
{
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		int e = errno ? errno : EIO;
		snprintf(err, errlen, "%s: write failed: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

static void out_close(struct out *o)
{
	if (!o->budget || !o->f)
		return;
	int rc = close_file(o->f, o->path, o->err, o->errlen);
	if (rc < 0 && !o->rc)
		o->rc = rc;
	else if (rc == 0)
		fprintf(o->list, "%s\n", o->path);
	o->f = NULL;
}

/* Starts a section (files SECTION-NNN.yaml) when writing to a directory. */
static void out_section(struct out *o, const char *section)
{
	out_close(o);
	o->section = section;
	o->file_no = 0;
}

/* The stream for the next object, of about nodes YAML nodes; NULL after a failure. */
static FILE *out_next(struct out *o, uint64_t nodes)
{
	if (o->rc)
		return NULL;
	if (!o->budget)
		return o->f;
	if (o->f && !o->hold && o->nodes + nodes > o->budget)
		out_close(o);
	if (!o->f) {
		snprintf(o->path, sizeof(o->path), "%s/%s-%03u.yaml", o->dir, o->section,
		         o->file_no++);
		if (!(o->f = fopen(o->path, "w"))) {
			o->rc = -errno;
			snprintf(o->err, o->errlen, "%s: %s", o->path, strerror(errno));
			return NULL;
		}
		o->nodes = 0;
	}
	o->nodes += nodes;
	return o->f;
}

/* Whether the decimal text of a sorts before that of b (pod names p-I, churn-J). */
static bool dec_before(uint64_t a, uint64_t b)
{
	uint64_t pa = 1, pb = 1;
	for (uint64_t x = a; x >= 10; x /= 10)
		pa *= 10;
	for (uint64_t x = b; x >= 10; x /= 10)
		pb *= 10;
	/* Both scaled to the same number of digits: a prefix sorts first. */
	uint64_t sa = a * (pa < pb ? pb / pa : 1), sb = b * (pb < pa ? pa / pb : 1);
	return sa != sb ? sa < sb : pa < pb;
}

static int dec_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a == b ? 0 : dec_before(a, b) ? -1 : 1;
}

/* 0..n-1 in the order of their decimal text (names svc-K, allow-P): files of one kind then
 * hold disjoint name ranges, which the loader joins without sorting. */
static uint32_t *name_order(uint32_t n)
{
	uint32_t *v = xcalloc(n + 1, sizeof(*v));
	for (uint32_t i = 0; i < n; i++)
		v[i] = i;
	qsort(v, n, sizeof(*v), dec_cmp);
	return v;
}

static int ns_name_cmp(const void *a, const void *b)
{
	char x[16], y[16];
	snprintf(x, sizeof(x), "%u", *(const uint32_t *)a);
	snprintf(y, sizeof(y), "%u", *(const uint32_t *)b);
	return strcmp(x, y);
}

static void write_namespaces(struct gen *g, struct out *o)
{
	const struct fi_gen_shape *s = g->s;
	FILE *f;
	for (uint32_t n = 0; n < s->namespaces; n++) {
		if (!(f = out_next(o, 16)))
			return;
		fprintf(f,
		        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns-%u, labels: "
		        "{istio.io/dataplane-mode: ambient%s}}\n",
		        n, n < s->waypoints ? ", istio.io/use-waypoint: waypoint" : "");
	}
	for (uint32_t n = 0; n < s->nodes; n++) {
		if (!(f = out_next(o, 10)))
			return;
		fprintf(f, "---\napiVersion: v1\nkind: Node\nmetadata: {name: node-%u}\n", n);
	}
}

static void write_services(struct gen *g, struct out *o)
{
	const struct fi_gen_shape *s = g->s;
	FILE *f;
	for (uint32_t x = 0; x < s->namespaces; x++) {
		uint32_t n = g->ns_order[x], k = services_in_ns(s, n);
		uint32_t *order = name_order(k);
		for (uint32_t x2 = 0; x2 < k; x2++) {
			uint32_t i = order[x2];
			if (!(f = out_next(o, 32))) {
				free(order);
				return;
			}
			fprintf(f,
			        "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%u, "
			        "namespace: ns-%u}\nspec:\n  clusterIP: ",
			        i, n);
			ip4(f, 0x0a600000u, g->svc_base[n] + i + 1);
			fprintf(f,
			        "\n  selector: {app: svc-%u}\n  ports: [{name: http, port: 80, "
			        "targetPort: 8080}]\n",
			        i);
		}
		free(order);
	}
	for (uint32_t n = 0; n < s->waypoints; n++) {
		if (!(f = out_next(o, 60)))
			return;
		fprintf(f,
		        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: "
		        "{name: waypoint, namespace: ns-%u, labels: {istio.io/waypoint-for: "
		        "service}}\nspec: {gatewayClassName: istio-waypoint, listeners: [{name: "
		        "mesh, port: 15008, protocol: HBONE}]}\n",
		        n);
		fprintf(f,
		        "---\napiVersion: v1\nkind: Service\nmetadata: {name: waypoint, namespace: "
		        "ns-%u}\nspec:\n  clusterIP: ",
		        n);
		ip4(f, 0x0a5f0000u, n + 1);
		fprintf(f, "\n  selector: {gateway.networking.k8s.io/gateway-name: waypoint}\n"
		           "  ports: [{name: mesh, port: 15008}]\n");
	}
}

static void write_policies(struct gen *g, struct out *o)
{
	const struct fi_gen_shape *s = g->s;
	FILE *f;
	for (uint32_t x = 0; x < s->namespaces; x++) {
		uint32_t n = g->ns_order[x], k = services_in_ns(s, n);
		uint32_t *order = name_order(s->policies_per_namespace);
		for (uint32_t x2 = 0; x2 < s->policies_per_namespace; x2++) {
			uint32_t p = order[x2];
			if (!(f = out_next(
			              o, 30 + 18ull * s->rules_per_policy +
			                         (p ? 0 : 12ull * s->churn / s->namespaces + 12)))) {
				free(order);
				return;
			}
			fprintf(f,
			        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
			        "metadata: {name: allow-%u, namespace: ns-%u}\nspec:\n",
			        p, n);
			if (k)
				fprintf(f, "  selector: {matchLabels: {app: svc-%u}}\n", p % k);
			fprintf(f, "  action: ALLOW\n  rules:\n");
			for (uint32_t r = 0; r < s->rules_per_policy; r++)
				fprintf(f,
				        "  - from: [{source: {principals: "
				        "[cluster.local/ns/ns-%u/sa/sa-%u]}}]\n"
				        "    to: [{operation: {ports: [\"%u\"]}}]\n",
				        n, k ? r % k : r, 8000 + r);
			/* Churn: step j adds a port rule to policy allow-0 of ns-(j % namespaces).
			 */
			for (uint32_t j = 1; p == 0 && j <= s->churn; j++)
				if (j % s->namespaces == n)
					fprintf(f, "  - to: [{operation: {ports: [\"%u\"]}}]\n",
					        20000 + j);
		}
		free(order);
	}
}

static void write_pod(struct out *o, const char *name, uint32_t ns, uint32_t node, uint32_t app,
                      const char *version, uint32_t ip_base, uint32_t ip_off)
{
	FILE *f = out_next(o, 45);
	if (!f)
		return;
	fprintf(f,
	        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: ns-%u, labels: "
	        "{app: svc-%u, version: %s}}\nspec: {nodeName: node-%u, serviceAccountName: "
	        "sa-%u, containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]}\n"
	        "status: {podIP: ",
	        name, ns, app, version, node, app);
	ip4(f, ip_base, ip_off);
	fputs("}\n", f);
}

/* Switches the pods section to file number no (files are written in increasing order). */
static FILE *out_file(struct out *o, unsigned no)
{
	if (!o->budget)
		return o->rc ? NULL : o->f;
	if (o->f && o->file_no - 1 != no)
		out_close(o);
	if (!o->f) {
		o->file_no = no;
		o->hold = false;
		o->nodes = 0;
		FILE *f = out_next(o, 0);
		o->hold = true;
		return f;
	}
	return o->rc ? NULL : o->f;
}

/* Namespace by namespace in name order, each namespace's pods in name order (churn pods
 * first: "churn-" sorts before "p-"). Which file a pod goes to depends on the shape alone,
 * not on what churn removed or added: namespaces of at most N pods (per_file) share files
 * whole, a bigger one gets files of its own, N name slots each (its churn pods in the first).
 * So a churn step, which stays in one namespace, rewrites one pods file. */
static void write_pods(struct gen *g, struct out *o, uint32_t per_file)
{
	const struct fi_gen_shape *s = g->s;
	char name[32], version[32];
	unsigned file = 0;
	uint64_t fill = 0;
	uint32_t *order = xcalloc(s->pods / s->namespaces + 2, sizeof(*order));
	uint32_t *churn = xcalloc(s->churn / s->namespaces + 2, sizeof(*churn));
	if (!per_file)
		per_file = UINT32_MAX;
	for (uint32_t x = 0; x < s->namespaces && !o->rc; x++) {
		uint32_t ns = g->ns_order[x], n = pods_in_ns(s, ns), nc = 0;
		if (n > per_file || (fill && fill + n > per_file)) {
			file += fill ? 1 : 0;
			fill = 0;
		}
		for (uint32_t li = 0; li < n; li++)
			order[li] = ns + li * s->namespaces;
		qsort(order, n, sizeof(*order), dec_cmp);
		for (uint32_t j = ns ? ns : s->namespaces; j <= s->churn; j += s->namespaces)
			churn[nc++] = j;
		qsort(churn, nc, sizeof(*churn), dec_cmp);
		FILE *f = out_file(o, file);
		for (uint32_t k = 0; k < nc && f; k++) {
			uint32_t j = churn[k];
			snprintf(name, sizeof(name), "churn-%u", j);
			write_pod(o, name, ns, j % s->nodes, 0, "v1", 0x0a700000u, j);
		}
		for (uint32_t k = 0; k < n && !o->rc; k++) {
			uint32_t i = order[k], li = i / s->namespaces;
			if (n > per_file && k && k % per_file == 0 && !out_file(o, ++file))
				break;
			if (changed_at(g->removed, g->n_removed, i))
				continue;
			uint32_t step = changed_at(g->relabelled, g->n_relabelled, i);
			snprintf(name, sizeof(name), "p-%u", i);
			if (step)
				snprintf(version, sizeof(version), "c%u", step);
			else
				snprintf(version, sizeof(version), "v1");
			write_pod(o, name, ns, i % s->nodes,
			          s->pods_per_service ? li / s->pods_per_service : 0, version,
			          0x0a800000u, i + 1);
		}
		fill = n > per_file ? per_file : fill + n;
		if (n > per_file) {
			file++;
			fill = 0;
		}
	}
	o->hold = false;
	free(order);
	free(churn);
}

/* The CHURN_SPAN first pod names of ns (in name order), or fewer when it has fewer pods:
 * where churn happens, so that it stays within one file of the namespace (a rollout replaces
 * the pods of one workload; here, of one range of names). */
#define CHURN_SPAN 64u

static uint32_t first_names(const struct fi_gen_shape *s, uint32_t ns, uint32_t *out)
{
	uint32_t n = pods_in_ns(s, ns), k = 0;
	for (uint32_t li = 0; li < n; li++) {
		uint32_t i = ns + li * s->namespaces, at = k;
		/* Insertion into the sorted CHURN_SPAN smallest seen so far. */
		while (at && dec_before(i, out[at - 1]))
			at--;
		if (at == CHURN_SPAN)
			continue;
		if (k < CHURN_SPAN)
			k++;
		memmove(out + at + 1, out + at, (k - 1 - at) * sizeof(*out));
		out[at] = i;
	}
	return k;
}

/* The pod step j removes (salt 7919) or relabels (salt 104729, +1): one of the first
 * CHURN_SPAN names of ns-(j % namespaces), or any pod when that namespace has none. */
static uint32_t churn_pod(struct gen *g, uint32_t j, uint64_t salt, uint32_t add)
{
	const struct fi_gen_shape *s = g->s;
	uint32_t ns = j % s->namespaces;
	if (!g->first[ns]) {
		g->first[ns] = xcalloc(CHURN_SPAN + 1, sizeof(**g->first));
		g->n_first[ns] = first_names(s, ns, g->first[ns]);
	}
	if (!g->n_first[ns])
		return (uint32_t)((j * salt + add) % s->pods);
	return g->first[ns][(j * salt + add) % g->n_first[ns]];
}

static int check_shape(const struct fi_gen_shape *s, char *err, size_t errlen)
{
	uint64_t svcs = 0;

#define BOUND(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			snprintf(err, errlen, __VA_ARGS__);                                        \
			return ZT_E_RANGE;                                                         \
		}                                                                                  \
	} while (0)
	BOUND(s->nodes >= 1 && s->nodes <= MAX_NAMES, "--nodes: expected 1..%u", MAX_NAMES);
	BOUND(s->namespaces >= 1 && s->namespaces <= MAX_NAMES, "--namespaces: expected 1..%u",
	      MAX_NAMES);
	BOUND(s->pods <= MAX_PODS, "--pods: expected at most %u", MAX_PODS);
	BOUND(s->policies_per_namespace <= MAX_POLICIES,
	      "--policies-per-namespace: expected at most %u", MAX_POLICIES);
	BOUND(s->rules_per_policy >= 1 && s->rules_per_policy <= MAX_RULES,
	      "--rules-per-policy: expected 1..%u", MAX_RULES);
	BOUND(s->waypoints <= s->namespaces, "--waypoints: expected at most --namespaces (%u)",
	      s->namespaces);
	BOUND(s->churn <= MAX_CHURN, "--churn: expected at most %u", MAX_CHURN);
	BOUND(!s->churn || s->pods > 0, "--churn needs pods to remove and relabel");
	for (uint32_t n = 0; n < s->namespaces; n++)
		svcs += services_in_ns(s, n);
	BOUND(svcs <= MAX_SERVICES, "%" PRIu64 " services: at most %u (raise --pods-per-service)",
	      svcs, MAX_SERVICES);
#undef BOUND
	return 0;
}

int fi_generate_write(const struct fi_gen_shape *s, FILE *f, const char *dir,
                      uint32_t pods_per_file, FILE *list, char *err, size_t errlen)
{
	struct gen g = {.s = s};
	struct out o = {.f = f, .dir = dir, .list = list, .err = err, .errlen = errlen};
	int rc;

	if ((rc = check_shape(s, err, errlen)) < 0)
		return rc;
	/* A pod is about 45 YAML nodes: every file holds what pods_per_file pods would. */
	o.budget = dir ? 45ull * pods_per_file : 0;
	if (o.budget)
		o.f = NULL;
	g.svc_base = xcalloc(s->namespaces, sizeof(*g.svc_base));
	for (uint32_t n = 1; n < s->namespaces; n++)
		g.svc_base[n] = g.svc_base[n - 1] + services_in_ns(s, n - 1);
	g.removed = xcalloc(s->churn, sizeof(*g.removed));
	g.relabelled = xcalloc(s->churn, sizeof(*g.relabelled));
	g.first = xcalloc(s->namespaces, sizeof(*g.first));
	g.n_first = xcalloc(s->namespaces, sizeof(*g.n_first));
	for (uint32_t j = 1; j <= s->churn; j++) {
		g.removed[g.n_removed++] = (struct change){churn_pod(&g, j, 7919, 0), j};
		g.relabelled[g.n_relabelled++] = (struct change){churn_pod(&g, j, 104729, 1), j};
	}
	g.ns_order = xcalloc(s->namespaces, sizeof(*g.ns_order));
	for (uint32_t n = 0; n < s->namespaces; n++)
		g.ns_order[n] = n;
	qsort(g.ns_order, s->namespaces, sizeof(*g.ns_order), ns_name_cmp);
	qsort(g.removed, g.n_removed, sizeof(*g.removed), change_cmp);
	qsort(g.relabelled, g.n_relabelled, sizeof(*g.relabelled), change_cmp);

	out_section(&o, "mesh");
	write_namespaces(&g, &o);
	out_section(&o, "services");
	write_services(&g, &o);
	out_section(&o, "policies");
	write_policies(&g, &o);
	out_section(&o, "pods");
	write_pods(&g, &o, dir ? pods_per_file : 0);
	out_close(&o);
	rc = o.rc;
	if (!rc && !o.budget && (fflush(f) != 0 || ferror(f))) {
		rc = -(errno ? errno : EIO);
		snprintf(err, errlen, "write failed: %s", strerror(-rc));
	}
	free(g.svc_base);
	free(g.removed);
	free(g.relabelled);
	free(g.ns_order);
	for (uint32_t n = 0; n < s->namespaces; n++)
		free(g.first[n]);
	free(g.first);
	free(g.n_first);
	return rc;
}

/* ---- the command ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: fake-istiod generate [--nodes N] [--namespaces N] [--pods N]\n"
	        "           [--pods-per-service N] [--policies-per-namespace N]\n"
	        "           [--rules-per-policy N] [--waypoints N] [--churn STEPS]\n"
	        "           [--out FILE | --out DIR --split PODS_PER_FILE]\n"
	        "Writes a synthetic mesh as YAML (stdout by default). Defaults: 50 nodes, 100\n"
	        "namespaces, 10000 pods, a Service per 10 pods, 1 policy per namespace with 1\n"
	        "rule, no waypoints, no churn. Churn step J works in ns-(J %% namespaces): it\n"
	        "adds pod churn-J, removes pod number (J*7919 %% n) of the namespace's first\n"
	        "n <= 64 pod names (in name order), relabels number ((J*104729+1) %% n) with\n"
	        "version: cJ and adds port %u+J to its policy allow-0; --churn S writes the\n"
	        "mesh after steps 1..S. With --split N, DIR gets mesh-NNN.yaml,\n"
	        "services-NNN.yaml, policies-NNN.yaml and pods-NNN.yaml files, each about as\n"
	        "big as N pods make; pods go namespace by namespace in name order, small\n"
	        "namespaces whole, a bigger one N names per file, so a churn step rewrites\n"
	        "one pods file (N >= 64) and the policies file; their paths are printed one\n"
	        "per line. One file of any size fits fake-istiod's default bounds up to 1GiB\n"
	        "(--max-yaml-bytes); a mesh of 1,000,000 pods is about 270 MB.\n",
	        20000u);
}

static int num(const char *flag, const char *v, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || x > UINT32_MAX) {
		fprintf(stderr, "fake-istiod generate: --%s %s: expected a non-negative integer\n",
		        flag, v);
		return -1;
	}
	*out = (uint32_t)x;
	return 0;
}

int fi_generate_cmd(int argc, char **argv)
{
	static const struct option lo[] = {
	        {"nodes", required_argument, NULL, 'n'},
	        {"namespaces", required_argument, NULL, 's'},
	        {"pods", required_argument, NULL, 'p'},
	        {"pods-per-service", required_argument, NULL, 'v'},
	        {"policies-per-namespace", required_argument, NULL, 'a'},
	        {"rules-per-policy", required_argument, NULL, 'r'},
	        {"waypoints", required_argument, NULL, 'w'},
	        {"churn", required_argument, NULL, 'c'},
	        {"out", required_argument, NULL, 'o'},
	        {"split", required_argument, NULL, 'x'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct fi_gen_shape s = {.nodes = 50,
	                         .namespaces = 100,
	                         .pods = 10000,
	                         .pods_per_service = 10,
	                         .policies_per_namespace = 1,
	                         .rules_per_policy = 1};
	const char *out = NULL;
	uint32_t split = 0, *field;
	bool split_set = false;
	char err[512];
	int c, rc, idx = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, &idx)) != -1) {
		switch (c) {
		case 'n':
			field = &s.nodes;
			break;
		case 's':
			field = &s.namespaces;
			break;
		case 'p':
			field = &s.pods;
			break;
		case 'v':
			field = &s.pods_per_service;
			break;
		case 'a':
			field = &s.policies_per_namespace;
			break;
		case 'r':
			field = &s.rules_per_policy;
			break;
		case 'w':
			field = &s.waypoints;
			break;
		case 'c':
			field = &s.churn;
			break;
		case 'x':
			field = &split;
			split_set = true;
			break;
		case 'o':
			out = optarg;
			continue;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "fake-istiod generate: unknown or incomplete option %s\n",
			        argv[optind - 1]);
			usage(stderr);
			return 2;
		}
		if (num(lo[idx].name, optarg, field) < 0)
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "fake-istiod generate: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (split_set && (!split || !out)) {
		fprintf(stderr,
		        "fake-istiod generate: --split needs a positive count and --out DIR\n");
		return 2;
	}
	if (split_set) {
		rc = fi_generate_write(&s, NULL, out, split, stdout, err, sizeof(err));
	} else {
		FILE *f = out ? fopen(out, "w") : stdout;
		if (!f) {
			fprintf(stderr, "fake-istiod generate: %s: %s\n", out, strerror(errno));
			return 1;
		}
		rc = fi_generate_write(&s, f, NULL, 0, NULL, err, sizeof(err));
		if (out && fclose(f) != 0 && rc == 0) {
			snprintf(err, sizeof(err), "%s: %s", out, strerror(errno));
			rc = -EIO;
		}
	}
	if (rc < 0) {
		fprintf(stderr, "fake-istiod generate: %s\n", err);
		return rc == ZT_E_RANGE ? 2 : 1;
	}
	return 0;
}
