/* Mesh model to the xDS resources istiod serves ztunnel (spec §3.2, §3.5-§3.7):
 * istio.workload.Address (one per workload and per service) and istio.security.Authorization.
 * Pure: no I/O besides warnings in the log. Invariant: the output is a function of the model
 * and the options only; both arrays are sorted by resource name and equal bytes get equal
 * versions, so an unchanged object keeps its version across conversions.
 *
 * Choices where istiod has inputs the model lacks:
 * - Workloads: every pod with an IP that is in the mesh (fi_mesh_pod_in_mesh) or belongs to a
 *   waypoint (fi_mesh_pod_waypoint), with tunnel_protocol HBONE. Pods outside the mesh are
 *   not sent. workload_name/type follow istiod's owner heuristics: a controller ReplicaSet
 *   named <deploy>-<pod-template-hash> gives DEPLOYMENT <deploy>; a Job gives JOB, or CRONJOB
 *   when named <cronjob>-<8..10 digits>; anything else is POD with the pod's name.
 *   status is UNHEALTHY when the pod's Ready condition is False.
 * - Services: every Service in an ambient namespace, every Service named like a waypoint
 *   Gateway, and every Service whose selector picks a sent workload. Selector-less Services
 *   are sent too (no endpoints: nothing here feeds EndpointSlices).
 * - Waypoints: istio.io/use-waypoint (and istio.io/use-waypoint-namespace) on the object, else
 *   on its Namespace; "none" on the object opts out. The Gateway must be of class
 *   istio-waypoint; its label istio.io/waypoint-for (service (default), workload, all, none)
 *   decides whether services and/or workloads attach, as in istiod. The address is the
 *   clusterIP of a Service named like the Gateway in its namespace, else the first IP of its
 *   first pod (by name); without either the Gateway is referenced by hostname
 *   <name>.<ns>.svc.<domain>. A missing waypoint is a warning and no waypoint. Waypoint pods
 *   and the waypoint's own Service never get a waypoint.
 * - PeerAuthentication: the effective mode is the root namespace's, overridden by the
 *   namespace's, overridden by the oldest matching selector policy's (UNSET inherits). STRICT
 *   adds FI_STATIC_STRICT_POLICY to the workload. A selector policy with portLevelMtls that
 *   changes a port's mode becomes its own DENY policy "<ns>/converted_peer_authentication_<name>"
 *   (deny plaintext unless the port is exempt, or deny plaintext to the strict ports). */
#ifndef FI_CONVERT_H
#define FI_CONVERT_H

#include <stddef.h>

#include "fake-istiod/mesh.h"
#include "fake-istiod/resource.h"

#define FI_STATIC_STRICT_POLICY "istio_converted_static_strict"
#define FI_CONVERTED_PA_PREFIX  "converted_peer_authentication_"
#define FI_HBONE_MTLS_PORT      15008

/* NULL (or a NULL field) selects the default shown. */
struct fi_convert_opts {
	const char *trust_domain;   /* "cluster.local" */
	const char *cluster_id;     /* "Kubernetes" */
	const char *cluster_domain; /* "cluster.local" */
	const char *root_namespace; /* "istio-system" */
	const char *network;        /* "" */
};

struct fi_resources {
	struct fi_resource *addresses; /* istio.workload.Address: names are workload uids
	                                  ("<cluster>//Pod/<ns>/<name>") and "<ns>/<hostname>" */
	size_t n_addresses;
	struct fi_resource *authorizations; /* istio.security.Authorization: "<ns>/<name>" */
	size_t n_authorizations;
	struct fi_resource *waypoints; /* ztunnel.waypoint.Waypoint (waypoint.h): "<ns>/<name>" */
	size_t n_waypoints;
};

/* Builds every resource for m (borrowed) into out (zeroed or cleared by the caller; owned by
 * the caller afterwards, release with fi_resources_clear). Policies and attributes ztunnel
 * cannot enforce are skipped or dropped as spec §3.7 says, each with a warning naming the
 * policy. Returns 0, or -EINVAL (with err set) if a message fails to encode; out is then
 * empty. */
int fi_convert(const struct fi_mesh *m, const struct fi_convert_opts *o, struct fi_resources *out,
               char *err, size_t errlen);

/* What fi_convert(m) makes, computed from the conversion prev of an earlier model pm (both
 * borrowed; prev is what fi_convert or this function made of pm) when m differs from pm only
 * in pods and in the rules of policies (nothing else a workload reads changed: see
 * pods_only_changed in convert.c): only the changed pods' workloads and the Services they
 * select are converted, authorizations and waypoints in full; the other addresses move from
 * prev into out (prev keeps what was dropped; clear it afterwards either way). Anything else
 * is a full fi_convert. Returns 1 (incremental), 0 (full) or fi_convert's errors, prev then
 * untouched. Equal to fi_convert(m) byte for byte (test_convert checks it on random
 * changes). */
int fi_convert_update(const struct fi_mesh *m, const struct fi_mesh *pm,
                      struct fi_resources *prev, const struct fi_convert_opts *o,
                      struct fi_resources *out, char *err, size_t errlen);

/* Frees the data of every resource, keeping names and versions: enough for prev of
 * fi_convert_update once the bytes have been published (an unchanged resource is matched by
 * name and version, its bytes are never read again). */
void fi_resources_strip(struct fi_resources *r);

/* Frees every resource and zeroes r. Accepts a zeroed set. */
void fi_resources_clear(struct fi_resources *r);

/* The resource named name in a sorted array (as fi_convert builds), or NULL. */
const struct fi_resource *fi_resources_find(const struct fi_resource *v, size_t n,
                                            const char *name);

#endif
