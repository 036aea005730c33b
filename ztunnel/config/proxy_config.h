/* Istio's ProxyConfig (spec §9.1): the PROXY_CONFIG variable (YAML text, or the path of a file
 * holding it) merged over the mesh config file's `defaultConfig`, read as the reference
 * ztunnel reads it: discoveryAddress, proxyAdminPort, statsPort, concurrency and
 * proxyMetadata; every other ProxyConfig field is ignored. The result is a list of
 * "NAME=value" environment entries of lower precedence than the real environment
 * (proxyMetadata entries first, then the fields as XDS_ADDRESS/CA_ADDRESS, ADMIN_ADDR,
 * STATS_ADDR and ZTUNNEL_WORKER_THREADS). Pure: text in, entries out. */
#ifndef ZT_PROXY_CONFIG_H
#define ZT_PROXY_CONFIG_H

#include <stddef.h>

#define ZT_PROXY_CONFIG_MESH_FILE "./etc/istio/config/mesh"
#define ZT_PROXY_CONFIG_MAX_ENV   256 /* entries produced from one document */

struct zt_proxy_config_env {
	char **v; /* "NAME=value", heap copies */
	size_t n;
};

/* Parses one ProxyConfig document (text, len bytes; what names it in messages, e.g.
 * "PROXY_CONFIG") and appends its entries to out. An empty or null document adds nothing.
 * Returns 0, or ZT_E_PARSE / ZT_E_RANGE / ZT_E_TOOBIG with "what:line:col: reason" in err. */
int zt_proxy_config_parse(const char *what, const char *text, size_t len,
                          struct zt_proxy_config_env *out, char *err, size_t errlen);
/* The mesh config (its `defaultConfig` mapping is a ProxyConfig) read the same way. */
int zt_proxy_config_parse_mesh(const char *what, const char *text, size_t len,
                               struct zt_proxy_config_env *out, char *err, size_t errlen);
void zt_proxy_config_env_clear(struct zt_proxy_config_env *e);

#endif
