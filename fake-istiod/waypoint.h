/* What each waypoint enforces (spec §18): for every Gateway of class istio-waypoint, one
 * ztunnel.waypoint.Waypoint resource named "<ns>/<name>" with the AuthorizationPolicies bound
 * to it through targetRefs (its Gateway; the GatewayClass istio-waypoint from the root
 * namespace; a Service that uses it), rules copied as written. Parts sim-waypoint cannot
 * evaluate (request principals, JWT and connection attributes) are dropped from a rule and
 * named in its `unevaluable` field, with a warning: the rule then fails closed when it
 * allows. Pure: no I/O besides warnings in the log; output sorted by name. */
#ifndef FI_WAYPOINT_H
#define FI_WAYPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "fake-istiod/mesh.h"
#include "fake-istiod/resource.h"

#define FI_WAYPOINT_TYPE "type.googleapis.com/ztunnel.waypoint.Waypoint"

/* The waypoint Gateway obj (a Service when !workload, a Pod when workload) uses per
 * istio.io/use-waypoint on the object, else on its Namespace (spec §18), or NULL. */
const struct fi_gateway *fi_waypoint_of(const struct fi_mesh *m, const struct fi_meta *obj,
                                        bool workload);

/* Builds one resource per waypoint Gateway of m into *out (n of them, sorted by name; owned
 * by the caller: fi_resource_clear each, then free the array). root_ns and cluster_domain
 * as in fi_convert_opts (resolved, not NULL). Returns 0 or -EINVAL with err set (a message
 * failed to encode); *out is then NULL. */
int fi_waypoint_convert(const struct fi_mesh *m, const char *root_ns, const char *cluster_domain,
                        struct fi_resource **out, size_t *n, char *err, size_t errlen);

#endif
