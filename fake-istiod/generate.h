/* fake-istiod generate: a synthetic mesh of a given shape (nodes, namespaces, pods, a Service
 * per N pods, policies, waypoints) written as Kubernetes-style YAML, optionally as it stands
 * after S churn steps. Invariant: the output is a pure function of the flags, so two runs
 * with the same flags write the same bytes and a churn step changes only what it names. */
#ifndef FI_GENERATE_H
#define FI_GENERATE_H

#include <stdint.h>
#include <stdio.h>

struct fi_gen_shape {
	uint32_t nodes;                  /* >= 1 */
	uint32_t namespaces;             /* >= 1 */
	uint32_t pods;                   /* spread round-robin over namespaces and nodes */
	uint32_t pods_per_service;       /* a Service selects this many pods of its namespace */
	uint32_t policies_per_namespace; /* ALLOW policies, each selecting one Service's pods */
	uint32_t rules_per_policy;       /* >= 1 when there are policies */
	uint32_t waypoints;              /* the first N namespaces get a waypoint */
	uint32_t churn;                  /* churn steps applied (see fi_generate_write) */
};

/* Writes the mesh of shape s to f. Each churn step j (1..s->churn) touches one namespace,
 * ns-(j % namespaces), as a deployment rollout would: it adds pod churn-j there, removes one
 * of its generated pods, relabels another (label version: cJ) and adds a port to its first
 * policy. When dir is not NULL (f is then unused), the objects go to files
 * DIR/{mesh,services,policies,pods}-NNN.yaml, each holding about as many YAML nodes as
 * pods_per_file pods (so each file stays under the YAML loader's size and node bounds); each
 * file's path is printed to list once written. Namespaces are written in name order and a
 * namespace's pods never span two files, so a churn step rewrites one pods file and the
 * policies file, and each file holds one range of (namespace, name). Returns 0, -errno when a file cannot be
 * written, ZT_E_RANGE for a shape out of bounds (err says which). */
int fi_generate_write(const struct fi_gen_shape *s, FILE *f, const char *dir,
                      uint32_t pods_per_file, FILE *list, char *err, size_t errlen);

/* The `generate` command: argv[0] is "generate". Returns the process exit code. */
int fi_generate_cmd(int argc, char **argv);

#endif
