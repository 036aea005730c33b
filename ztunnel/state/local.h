/* LOCAL_XDS_PATH: the whole mesh state from one YAML file (spec §9.2) instead of istiod.
 * The file is turned into the same serialized istio.workload.Address and
 * istio.security.Authorization resources istiod would send and applied through the same
 * store entry points; loading replaces the whole state (resources missing from the file are
 * removed). A file that fails to parse or whose resources would be rejected changes nothing. */
#ifndef ZT_STATE_LOCAL_H
#define ZT_STATE_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/yaml.h"
#include "state/store.h"

enum zt_local_kind { ZT_LOCAL_ADDRESS, ZT_LOCAL_AUTHORIZATION };

struct zt_local_resource {
	enum zt_local_kind kind;
	char *name;    /* uid, "ns/hostname" or "ns/name" */
	uint8_t *data; /* serialized Address or Authorization */
	size_t len;
	unsigned line; /* where the entry starts in the file */
};

/* Resources from one file, in file order: workloads, then services, then policies. */
struct zt_local_config {
	char *file;
	struct zt_local_resource *v;
	size_t n;
};

/* Converts one parsed document (borrowed; NULL or a null scalar = empty state) into
 * resources. Top-level keys: workloads, services, policies. Unknown keys, wrong types, bad
 * IPs, ports and enum names, and duplicate resource names are errors reported as
 * "file:line:col: what". out must be zeroed; on error it stays empty.
 * Returns 0 or ZT_E_PARSE. */
int zt_local_xds_parse(const struct zt_yaml *doc, const char *file, struct zt_local_config *out,
                       char *err, size_t errlen);
void zt_local_config_clear(struct zt_local_config *cfg);

/* Makes store hold exactly cfg's resources: every resource is first checked on a scratch
 * store (a rejection is reported as "file:line: reason" and nothing changes), then applied
 * to store, and whatever store held that cfg lacks is removed. Watchers see the changes.
 * Returns 0, ZT_E_PROTO / ZT_E_PARSE from a rejected resource, or ZT_E_STATE. */
int zt_local_xds_apply(struct zt_store *store, const struct zt_local_config *cfg, char *err,
                       size_t errlen);

/* Reads path, parses it and applies it as above. Returns 0, -errno when unreadable,
 * ZT_E_PARSE / ZT_E_TOOBIG for a bad file, or what zt_local_xds_apply returns; on error the
 * store is unchanged and err says why. */
int zt_local_xds_load(struct zt_store *store, const char *path, char *err, size_t errlen);

#endif
