/* Delta ADS client (spec §3): one bidirectional DeltaAggregatedResources stream to istiod over
 * gRPC/HTTP/2/TLS, carrying several resource types. Each response is applied resource by
 * resource through the type's callbacks, then ACKed, or NACKed naming the rejected resources
 * while the accepted ones stay applied (partial acceptance). What was accepted (name ->
 * version) survives reconnects and is announced in the next stream's initial requests, so
 * istiod sends only what changed. Reconnects back off from 10 ms to 15 s.
 *
 * Callbacks run on the loop; none of them may free the client. */
#ifndef ZT_XDS_CLIENT_H
#define ZT_XDS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "protocol/grpc.h"
#include "telemetry/metrics.h"
#include "runtime/loop.h"

#define ZT_XDS_TYPE_ADDRESS       "type.googleapis.com/istio.workload.Address"
#define ZT_XDS_TYPE_AUTHORIZATION "type.googleapis.com/istio.security.Authorization"
#define ZT_XDS_METHOD                                                                              \
	"/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define ZT_XDS_MAX_MSG (200u << 20) /* spec §3.1 */

struct zt_xds_client;

struct zt_xds_type {
	const char *type_url;
	/* decode+apply one resource; nonzero = rejected, with a reason in err */
	int (*apply)(void *arg, const char *name, const char *version, const uint8_t *data,
	             size_t len, char *err, size_t errlen);
	int (*remove)(void *arg, const char *name);
	void *arg;
};

/* Writes the bearer token (NUL-terminated, "" for none) into out; 0 or a negative error. */
typedef int (*zt_xds_token_cb)(void *arg, char *out, size_t len);
/* Marks a response that is one part of a state the server split over several responses:
 * its system_version_info ends with this, and only the last part's does not. Istio's istiod
 * sends the whole state of a type in one response and never marks; fake-istiod splits a
 * state larger than its message bound and marks every part but the last. */
#define ZT_XDS_MORE_SUFFIX ";more"

/* The whole initial state of every type has arrived and been answered (ACK or NACK): for
 * each type, a response without ZT_XDS_MORE_SUFFIX has been applied since start. */
typedef void (*zt_xds_synced_cb)(struct zt_xds_client *c, void *arg);

struct zt_xds_client_opts {
	const char *host; /* istiod: DNS name or IP literal (no brackets); also the name its
	                     certificate must carry */
	uint16_t port;
	const char *alt_hostname; /* ALT_XDS_HOSTNAME: also accepted in the certificate; NULL */
	const char *roots_pem;    /* trust anchors (PEM); NULL: the system trust store */
	size_t roots_len;
	const char *node_id;              /* Node.id (spec §3.3) */
	const json_t *node_metadata;      /* object of key -> JSON value, sent as Node.metadata */
	const char *cluster_id;           /* "clusterid" metadata; NULL or "": not sent */
	const struct zt_grpc_md *headers; /* extra metadata (XDS_HEADER_*) */
	size_t nheaders;
	zt_xds_token_cb token_cb; /* called before every connect; NULL: no authorization */
	void *token_arg;
	zt_xds_synced_cb on_synced; /* once, on first sync; may be NULL */
	void *synced_arg;
	/* istio_xds_* counters (spec §17) are registered here; NULL: none (borrowed; outlives
	 * the client). */
	struct zt_metrics *metrics;
	/* Tunables; 0 picks the default. */
	size_t max_msg;              /* largest response accepted: ZT_XDS_MAX_MSG */
	uint64_t connect_timeout_ms; /* TCP connect, then TLS handshake, each: 5 s */
	uint64_t backoff_initial_ms; /* 10 ms */
	uint64_t backoff_max_ms;     /* 15 s */
	uint32_t ping_interval_ms;   /* HTTP/2 keepalive: 30 s */
	uint32_t ping_timeout_ms;    /* 10 s */
};

struct zt_xds_client_stats {
	uint64_t attempts;  /* connection attempts started */
	uint64_t connects;  /* streams opened (TLS up, call started) */
	uint64_t responses; /* responses decoded */
	uint64_t acks, nacks;
	uint64_t backoff_ms; /* delay the next failure will wait (grows, reset by a response) */
	bool connected;      /* a stream is open now */
	bool synced;
	char last_error[256]; /* why the last attempt or stream ended ("" if none yet) */
};

/* Creates a stopped client. opts and its strings are copied (node_metadata is converted
 * now); types[0..n) are copied, their type_url strings and args are borrowed and must outlive
 * the client. Returns NULL with *err set: ZT_E_RANGE (no host, port 0, n == 0, more than 32
 * metadata entries), ZT_E_PARSE / ZT_E_TOOBIG (roots) or ZT_E_TLS. */
struct zt_xds_client *zt_xds_client_new(struct zt_loop *loop, const struct zt_xds_client_opts *opts,
                                        const struct zt_xds_type *types, size_t n, int *err);
/* Starts connecting (from the loop, not inside this call). Returns 0 or ZT_E_STATE when
 * already started. */
int zt_xds_client_start(struct zt_xds_client *c);
/* Closes the stream and frees the client; no callback runs afterwards. Connection teardown
 * finishes on the loop's next iterations. Accepts NULL. */
void zt_xds_client_free(struct zt_xds_client *c);

bool zt_xds_client_synced(const struct zt_xds_client *c);
void zt_xds_client_stats(const struct zt_xds_client *c, struct zt_xds_client_stats *out);
/* Version accepted for a resource (borrowed until the next response), or NULL when unknown or
 * rejected. */
const char *zt_xds_client_version(const struct zt_xds_client *c, const char *type_url,
                                  const char *name);
/* Number of accepted resources of a type (0 for an unknown type). */
size_t zt_xds_client_count(const struct zt_xds_client *c, const char *type_url);
/* State for /config_dump: counters, connection state, last error and per-type counts. New
 * reference. */
json_t *zt_xds_client_json(const struct zt_xds_client *c);

#endif
