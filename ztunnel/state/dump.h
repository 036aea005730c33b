/* JSON views of the store in the camelCase shapes of the local config file (spec §9.2), so a
 * dump can be fed back through LOCAL_XDS_PATH: /config_dump shows it, and fake-istiod can
 * print what it would send. Enum values outside the known names are written as numbers. */
#ifndef ZT_STATE_DUMP_H
#define ZT_STATE_DUMP_H

#include <jansson.h>

#include "cert/manager.h"
#include "runtime/buf.h"
#include "state/policy.h"
#include "state/service.h"
#include "state/store.h"
#include "state/workload.h"

/* {"workloads": [...], "services": [...], "policies": [...]}, each sorted by key (uid,
 * "ns/hostname", "ns/name"). A new reference; aborts on OOM. Services list no endpoints: the
 * workloads' "services" maps are the endpoint source. */
json_t *zt_store_dump(const struct zt_store *store);

/* The same arrays as text, for documents too large to hold as one tree: zt_store_dump's
 * "workloads", "services" or "policies" array appended to out, each object compact with
 * sorted keys on a line of its own (indent + 2 spaces, then the object, then "," except for
 * the last), "]" on a last line after indent; an empty array is "[]". Objects are converted,
 * written and freed one at a time. The store must not change meanwhile (call it on the
 * thread that applies updates). Returns 0, ZT_E_TOOBIG (out's limit) or ZT_E_RANGE (unknown
 * part). */
enum zt_dump_part { ZT_DUMP_WORKLOADS, ZT_DUMP_SERVICES, ZT_DUMP_POLICIES };
int zt_store_write_part(const struct zt_store *store, enum zt_dump_part part, struct zt_buf *out,
                        const char *indent);

/* {"workloads", "services", "policies", "endpoints", "stagedEndpoints", "applied",
 * "rejected", "removed"}: zt_store_get_counters as JSON. A new reference. */
json_t *zt_store_counters_json(const struct zt_store *store);

/* /config_dump "certificates" in the reference's shape (spec §17): an array sorted by
 * identity of {"certChain", "identity", "rootCerts", "state"}, state "Initializing",
 * "Available" or "Unavailable: <error>"; certChain (leaf, then intermediates) and rootCerts
 * hold {"expirationTime", "pem" (base64 of the PEM text), "serialNumber" (decimal),
 * "validFrom"} and are empty unless Available. m may be NULL (an empty array). New
 * reference. */
json_t *zt_dump_certificates(struct zt_certmgr *m);

/* One object each (new references). */
json_t *zt_workload_to_json(const struct zt_workload *w);
json_t *zt_service_to_json(const struct zt_service *svc);
json_t *zt_policy_to_json(const struct zt_policy *p);

/* Names shared with the local config parser; NULL for values without a name. */
const char *zt_app_protocol_name(enum zt_app_protocol v);
const char *zt_workload_type_name(enum zt_workload_type v);
const char *zt_lb_scope_name(enum zt_lb_scope v);
const char *zt_lb_mode_name(enum zt_lb_mode v);
const char *zt_ip_families_name(enum zt_ip_families v);

#endif
