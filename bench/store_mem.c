/* What a workload costs ztunnel's store (issue: ≤ 1 KiB per workload at 100,000 pods): the
 * mesh of bench/controlplane.sh (fake-istiod's generator: nodes, namespaces, pods, a Service
 * per N pods, a policy per namespace) converted to xDS resources in memory, then applied to a
 * store through zt_store_apply_* as the xDS client does. Measures heap bytes in use (glibc
 * mallinfo2) and CPU time of the apply, per workload, and the sizes of the structures.
 * Invariant: the store is checked to hold every workload and service before reporting.
 *   store_mem [PODS] [NAMESPACES] [PODS_PER_SERVICE] [NODES]
 * Prints one JSON line. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake-istiod/convert.h"
#include "fake-istiod/generate.h"
#include "fake-istiod/mesh.h"
#include "runtime/log.h"
#include "state/store.h"

static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static unsigned long arg(int argc, char **argv, int i, unsigned long def)
{
	if (argc <= i)
		return def;
	char *end;
	unsigned long v = strtoul(argv[i], &end, 10);
	if (*end || !v) {
		fprintf(stderr, "store_mem: argument %d (%s): expected a positive integer\n", i,
		        argv[i]);
		exit(2);
	}
	return v;
}

static size_t heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

int main(int argc, char **argv)
{
	struct fi_gen_shape s = {.policies_per_namespace = 1, .rules_per_policy = 1};
	struct fi_mesh mesh = {0};
	struct fi_resources res = {0};
	struct fi_convert_opts co = {0};
	char err[512] = "", dir[] = "/tmp/store_mem.XXXXXX";
	char *list = NULL, *files[256];
	size_t listlen = 0, nfiles = 0, nwl = 0, bytes = 0;
	struct zt_store_counters cnt;

	s.pods = (uint32_t)arg(argc, argv, 1, 10000);
	s.namespaces = (uint32_t)arg(argc, argv, 2, 100);
	s.pods_per_service = (uint32_t)arg(argc, argv, 3, 10);
	s.nodes = (uint32_t)arg(argc, argv, 4, 50);
	zt_log_set_spec("warn", err, sizeof(err));

	FILE *lf = open_memstream(&list, &listlen);
	if (!mkdtemp(dir) || !lf ||
	    fi_generate_write(&s, NULL, dir, 20000, lf, err, sizeof(err)) < 0 || fclose(lf)) {
		fprintf(stderr, "store_mem: generating the mesh in %s: %s\n", dir, err);
		return 1;
	}
	for (char *line = strtok(list, "\n"); line && nfiles < 256; line = strtok(NULL, "\n"))
		files[nfiles++] = line;
	int rc = fi_mesh_load(&mesh, (const char *const *)files, nfiles, NULL, err, sizeof(err));
	if (rc == 0)
		rc = fi_convert(&mesh, &co, &res, err, sizeof(err));
	for (size_t i = 0; i < nfiles; i++)
		unlink(files[i]);
	rmdir(dir);
	free(list);
	fi_mesh_clear(&mesh);
	if (rc < 0) {
		fprintf(stderr, "store_mem: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < res.n_addresses; i++) {
		nwl += strstr(res.addresses[i].name, "//Pod/") != NULL;
		bytes += res.addresses[i].len;
	}
	malloc_trim(0);

	size_t h0 = heap_used();
	double t0 = cpu_ns();
	struct zt_store *st = zt_store_new();
	for (size_t i = 0; i < res.n_addresses; i++) {
		const struct fi_resource *r = &res.addresses[i];
		if (zt_store_apply_address(st, r->name, r->version, r->data, r->len, err,
		                           sizeof(err)) < 0) {
			fprintf(stderr, "store_mem: address %s: %s\n", r->name, err);
			return 1;
		}
	}
	for (size_t i = 0; i < res.n_authorizations; i++) {
		const struct fi_resource *r = &res.authorizations[i];
		if (zt_store_apply_authorization(st, r->name, r->version, r->data, r->len, err,
		                                 sizeof(err)) < 0) {
			fprintf(stderr, "store_mem: authorization %s: %s\n", r->name, err);
			return 1;
		}
	}
	double t_apply = cpu_ns() - t0;
	size_t h1 = heap_used();
	malloc_trim(0);
	size_t h2 = heap_used();
	zt_store_get_counters(st, &cnt);
	if (cnt.workloads != nwl || cnt.workloads + cnt.services != res.n_addresses) {
		fprintf(stderr, "store_mem: the store holds %zu workloads and %zu services of %zu\n",
		        cnt.workloads, cnt.services, res.n_addresses);
		return 1;
	}
	printf("{\"workloads\":%zu,\"services\":%zu,\"policies\":%zu,\"wire_bytes_per_address\":%.0f,"
	       "\"heap_bytes_per_workload\":%.0f,\"heap_bytes_per_workload_trimmed\":%.0f,"
	       "\"apply_us_per_address\":%.2f,\"apply_ms\":%.0f,"
	       "\"sizeof_workload\":%zu,\"sizeof_service\":%zu}\n",
	       cnt.workloads, cnt.services, cnt.policies, (double)bytes / res.n_addresses,
	       (double)(h1 - h0) / nwl, (double)(h2 - h0) / nwl, t_apply / 1e3 / res.n_addresses,
	       t_apply / 1e6, sizeof(struct zt_workload), sizeof(struct zt_service));
	zt_store_free(st);
	fi_resources_clear(&res);
	return 0;
}
