/* The L4 authorization decision at scale (spec §6): a mesh from fake-istiod's generator
 * (namespaces x policies x rules) converted to xDS resources and applied to a ztunnel store
 * as the xDS client does, then zt_authz_check (scoped lookup, port-indexed rules) timed on
 * connections spread over the pods, and in the same run the reference scan of every policy
 * (authz_ref.h) on the same connections. Invariant: every timed decision is also checked (an
 * allowed connection must be ALLOW, an unmatched one DENY), so a fast wrong answer fails the
 * run instead of being reported.
 *   authz_bench [NAMESPACES] [POLICIES_PER_NAMESPACE] [RULES] [PODS_PER_NAMESPACE] [ITERS]
 * Prints one JSON line: policies, rules, workloads, CPU ns per decision (allow, deny) for
 * zt_authz_check and for the scan (scan_allow_ns, scan_deny_ns; ITERS/100 decisions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/authz_ref.h"
#include "fake-istiod/convert.h"
#include "fake-istiod/generate.h"
#include "fake-istiod/mesh.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "state/authz.h"
#include "state/store.h"

#define SAMPLE 1024

/* CPU time of this thread: the decision is CPU-bound, and on a shared machine wall time
 * would mostly measure the other processes. */
static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static unsigned long arg(int argc, char **argv, int i, unsigned long def)
{
	if (argc <= i)
		return def;
	char *end;
	unsigned long v = strtoul(argv[i], &end, 10);
	if (*end || !v) {
		fprintf(stderr, "authz_bench: argument %d (%s): expected a positive integer\n", i,
		        argv[i]);
		exit(2);
	}
	return v;
}

struct probe {
	struct zt_workload *w;
	struct zt_spiffe id;
};

static enum zt_authz_verdict indexed(const struct zt_store *st, const struct zt_authz_conn *c)
{
	return zt_authz_check(st, c, NULL, 0);
}

/* Times iters decisions of check over the sample with dst_port; fails on a verdict other
 * than want. */
static double run(enum zt_authz_verdict (*check)(const struct zt_store *,
                                                 const struct zt_authz_conn *),
                  const struct zt_store *st, struct probe *p, size_t n, unsigned long iters,
                  uint16_t port, enum zt_authz_verdict want)
{
	struct zt_authz_conn c = {.dst_port = port};
	double t0 = now_ns();
	for (unsigned long i = 0; i < iters; i++) {
		struct probe *x = &p[i % n];
		c.dst = x->w;
		c.src_id = &x->id;
		c.dst_ip = x->w->ips[0];
		if (check(st, &c) != want) {
			char why[256];
			zt_authz_check(st, &c, why, sizeof(why));
			fprintf(stderr, "authz_bench: %s port %u: wrong verdict: %s\n", x->w->uid,
			        port, why);
			exit(1);
		}
	}
	return (now_ns() - t0) / (double)iters;
}

int main(int argc, char **argv)
{
	struct fi_gen_shape s = {.nodes = 1, .pods_per_service = 1000000};
	unsigned long iters;
	struct fi_mesh mesh = {0};
	struct fi_resources res = {0};
	struct fi_convert_opts co = {0};
	char err[512] = "", dir[] = "/tmp/authz_bench.XXXXXX";
	struct probe *probes;
	size_t n = 0;
	double t_load;

	s.namespaces = (uint32_t)arg(argc, argv, 1, 1000);
	s.policies_per_namespace = (uint32_t)arg(argc, argv, 2, 10);
	s.rules_per_policy = (uint32_t)arg(argc, argv, 3, 10);
	s.pods = s.namespaces * (uint32_t)arg(argc, argv, 4, 10);
	iters = arg(argc, argv, 5, 1000000);
	zt_log_set_spec("warn", err, sizeof(err));

	/* One Service per namespace: every policy of a namespace selects all its pods. The mesh
	 * goes to files within the YAML loader's bounds, as fake-istiod would load it. */
	char *list = NULL, *files[64];
	size_t listlen = 0, nfiles = 0;
	FILE *lf = open_memstream(&list, &listlen);
	if (!mkdtemp(dir) || !lf ||
	    fi_generate_write(&s, NULL, dir, 20000, lf, err, sizeof(err)) < 0 || fclose(lf)) {
		fprintf(stderr, "authz_bench: generating the mesh in %s: %s\n", dir, err);
		return 1;
	}
	for (char *line = strtok(list, "\n"); line && nfiles < 64; line = strtok(NULL, "\n"))
		files[nfiles++] = line;
	t_load = now_ns();
	int rc = fi_mesh_load(&mesh, (const char *const *)files, nfiles, NULL, err, sizeof(err));
	if (rc == 0)
		rc = fi_convert(&mesh, &co, &res, err, sizeof(err));
	for (size_t i = 0; i < nfiles; i++)
		unlink(files[i]);
	rmdir(dir);
	free(list);
	if (rc < 0) {
		fprintf(stderr, "authz_bench: %s\n", err);
		return 1;
	}
	struct zt_store *st = zt_store_new();
	for (size_t i = 0; i < res.n_addresses; i++) {
		const struct fi_resource *r = &res.addresses[i];
		if (zt_store_apply_address(st, r->name, r->version, r->data, r->len, err,
		                           sizeof(err)) < 0) {
			fprintf(stderr, "authz_bench: address %s: %s\n", r->name, err);
			return 1;
		}
	}
	for (size_t i = 0; i < res.n_authorizations; i++) {
		const struct fi_resource *r = &res.authorizations[i];
		if (zt_store_apply_authorization(st, r->name, r->version, r->data, r->len, err,
		                                 sizeof(err)) < 0) {
			fprintf(stderr, "authz_bench: authorization %s: %s\n", r->name, err);
			return 1;
		}
	}
	t_load = (now_ns() - t_load) / 1e6;

	/* Pods spread over every namespace (pod i lives in ns-(i % namespaces)); each connects
	 * from the namespace's own sa-0, which every rule names. */
	probes = xcalloc(SAMPLE, sizeof(*probes));
	for (uint32_t i = 0; i < s.pods && n<SAMPLE; i += s.pods> SAMPLE ? s.pods / SAMPLE : 1) {
		char uid[96], ns[32];
		snprintf(uid, sizeof(uid), "Kubernetes//Pod/ns-%u/p-%u", i % s.namespaces, i);
		snprintf(ns, sizeof(ns), "ns-%u", i % s.namespaces);
		probes[n].w = zt_store_workload_by_uid(st, uid);
		if (!probes[n].w || zt_spiffe_set(&probes[n].id, "cluster.local", ns, "sa-0") < 0) {
			fprintf(stderr, "authz_bench: workload %s missing from the store\n", uid);
			return 1;
		}
		n++;
	}
	/* Allowed by the last rule of every policy (the most rules evaluated before a match),
	 * denied by a port no rule names (every rule of every policy evaluated). */
	uint16_t allow_port = (uint16_t)(8000 + s.rules_per_policy - 1);
	run(indexed, st, probes, n, iters / 10 + 1, allow_port, ZT_AUTHZ_ALLOW); /* warm-up */
	double allow = run(indexed, st, probes, n, iters, allow_port, ZT_AUTHZ_ALLOW);
	double deny = run(indexed, st, probes, n, iters, 7999, ZT_AUTHZ_DENY);
	unsigned long scan_iters = iters / 100 + 1;
	double scan_allow =
	        run(authz_ref_check, st, probes, n, scan_iters, allow_port, ZT_AUTHZ_ALLOW);
	double scan_deny = run(authz_ref_check, st, probes, n, scan_iters, 7999, ZT_AUTHZ_DENY);
	printf("{\"policies\":%lu,\"rules_per_policy\":%u,\"policies_per_workload\":%u,"
	       "\"workloads\":%u,\"load_ms\":%.0f,\"allow_ns\":%.1f,\"deny_ns\":%.1f,"
	       "\"scan_allow_ns\":%.1f,\"scan_deny_ns\":%.1f,\"target_ns\":1000}\n",
	       (unsigned long)s.namespaces * s.policies_per_namespace, s.rules_per_policy,
	       s.policies_per_namespace, s.pods, t_load, allow, deny, scan_allow, scan_deny);
	for (size_t i = 0; i < n; i++)
		zt_workload_unref(probes[i].w);
	free(probes);
	zt_store_free(st);
	fi_resources_clear(&res);
	fi_mesh_clear(&mesh);
	return 0;
}
