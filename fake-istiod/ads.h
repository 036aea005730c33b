/* fake-istiod's delta ADS server (spec §3): serves any number of resource types, each a set
 * replaced whole by fi_ads_set(), to DeltaAggregatedResources streams. Invariant: per stream
 * and type the server keeps exactly what the client holds (name -> shared resource) and only
 * ever sends the difference between that and the current set. Pending changes coalesce: a
 * client that stops reading holds at most one response in its send buffer and references to
 * what it was last sent, however often the sets change. */
#ifndef FI_ADS_H
#define FI_ADS_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/grpc.h"
#include "fake-istiod/resource.h"
#include "runtime/loop.h"

/* gRPC path of the one method served (spec §3.1). */
#define FI_ADS_METHOD_PATH                                                                         \
	"/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"

/* Default bound on one DeltaDiscoveryResponse; larger pushes are split over several. */
#define FI_ADS_DEFAULT_MAX_MSG (4u << 20)
/* Bound on one decoded DeltaDiscoveryRequest (its encoded size is checked first), plus
 * FI_ADS_REQUEST_PER_RESOURCE per resource served: a client reconnecting to a mesh of a
 * million workloads names them all in initial_resource_versions (about 50 bytes each). */
#define FI_ADS_MAX_REQUEST (8u << 20)
#define FI_ADS_REQUEST_PER_RESOURCE 128u
/* Per stream: distinct type URLs, and explicitly subscribed names per type. */
#define FI_ADS_MAX_TYPES    16
#define FI_ADS_MAX_NAMES    100000
#define FI_ADS_MAX_TYPE_URL 512

struct fi_ads_stats {
	size_t streams;     /* open now */
	uint64_t responses; /* DeltaDiscoveryResponses sent */
	uint64_t acks;
	uint64_t nacks;
	uint64_t stale;    /* requests whose response_nonce was not outstanding (ignored) */
	uint64_t rejected; /* streams ended for a bad or oversized request */
	uint64_t from_base; /* pushes computed from the set a synced client holds */
};

struct fi_ads;

/* A server with no types. loop is borrowed and must outlive it. Never NULL (aborts on OOM). */
struct fi_ads *fi_ads_new(struct zt_loop *loop);
/* Cancels every open stream (their calls end CANCELLED without reaching the server again) and
 * frees every set. Accepts NULL. */
void fi_ads_free(struct fi_ads *ads);

/* The entry to list in a struct zt_grpc_server (path FI_ADS_METHOD_PATH, arg ads). The
 * server's max_msg bounds requests; fi_ads_set_max_msg bounds responses. Per stream:
 * - The first request of a type subscribes to it: wildcard when resource_names_subscribe is
 *   empty or holds "*", else to the names listed (later requests add and remove names;
 *   unsubscribing "*" leaves only explicit names). It is answered once even if there is
 *   nothing to send; initial_resource_versions spares what the client holds at the current
 *   version, and what it holds that does not exist is listed in removed_resources.
 * - Every explicitly subscribed name is mentioned in the next response, as a resource or as
 *   removed (on-demand lookups, spec §3.4).
 * - A response_nonce naming a response of that type sent on this stream after the last one
 *   answered is an ACK, or with error_detail a NACK (logged as a warning with node id, type,
 *   nonce and message; nothing is resent); any other nonce is stale and ignored.
 * - An undecodable request or one without type_url ends the stream INVALID_ARGUMENT; more
 *   than FI_ADS_MAX_TYPES types or FI_ADS_MAX_NAMES names, RESOURCE_EXHAUSTED; a client
 *   half-close ends it OK. Other streams are unaffected. */
struct zt_grpc_method fi_ads_method(struct fi_ads *ads);

/* Bound on each response (>= 1024; default FI_ADS_DEFAULT_MAX_MSG): a push larger than this
 * goes out as several responses, and fi_ads_set refuses a resource that cannot fit alone.
 * Set it to at most what clients accept (ztunnel: 200 MiB, most gRPC clients: 4 MiB). */
void fi_ads_set_max_msg(struct fi_ads *ads, size_t max_msg);
/* The request bound for a mesh of n resources (see FI_ADS_MAX_REQUEST); it applies to the
 * requests decoded from then on. Returns it. */
size_t fi_ads_set_resources(struct fi_ads *ads, size_t n);

/* Replaces the whole set of type type_url (e.g. "type.googleapis.com/istio.workload.Address")
 * with res[0..n) (borrowed and copied; res may be NULL when n is 0). Each resource needs a
 * non-empty name unique in the set, a version (opaque: equal versions mean equal content)
 * and data, the serialized message of the type (not an Any; NULL when len is 0). A resource
 * whose version equals the one held keeps the held copy. Each stream subscribed to the type
 * then gets, from the loop, only the added or changed resources it wants and the names it
 * holds that are gone. Returns the number of added + changed + removed names (0: nothing to
 * push), -EINVAL (empty or over-long type URL, NULL or empty name, NULL version, NULL data
 * with len > 0, a name given twice) or ZT_E_TOOBIG (a resource cannot fit in one response);
 * on error nothing changes. */
int fi_ads_set(struct fi_ads *ads, const char *type_url, const struct fi_resource *res, size_t n);
/* fi_ads_set, where res[k].held may be what handles[k] of the previous call for type_url
 * gave for a resource of the same name and version: such a resource is matched to the held
 * copy by that pointer (no string compared; a set of 100,000 with a few changes is replaced
 * without reading the others). A wrong hint is a caller's bug. handles (n entries, may be
 * NULL) receives the held copy of each res[k], valid as a hint until the next call. */
int fi_ads_set_hinted(struct fi_ads *ads, const char *type_url, const struct fi_resource *res,
                      size_t n, const void **handles);

/* Sends what fi_ads_set left pending to every stream now instead of on the next loop turn,
 * so a caller about to do slow work (freeing the previous state) does not delay the push. */
void fi_ads_push_now(struct fi_ads *ads);

/* Resources in the current set of type_url (0 if never set). */
size_t fi_ads_count(const struct fi_ads *ads, const char *type_url);

/* Counters since fi_ads_new. Live objects are also counted process-wide as the zt_live
 * counters "fi_ads_stream" and "fi_ads_resource" (resources held by sets or streams). */
void fi_ads_stats(const struct fi_ads *ads, struct fi_ads_stats *out);

#endif
