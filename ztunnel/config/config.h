/* The daemon's configuration: every environment variable of the reference ztunnel that this
 * implementation honours (spec §9.1), read through one envcfg table, then checked and
 * completed with the derived values (parsed addresses, node id and metadata, termination
 * deadline, packet mark, extra gRPC headers). Pure: reads only the environment it is given
 * (and, for the bearer token, the token file on demand). A loaded config is immutable. */
#ifndef ZT_CONFIG_H
#define ZT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "runtime/addr.h"

#define ZT_CONFIG_DEFAULT_ROOT_CA "./var/run/secrets/istio/root-cert.pem"
#define ZT_CONFIG_DEFAULT_TOKEN   "./var/run/secrets/tokens/istio-token"
#define ZT_CONFIG_ISTIOD_K8S      "https://istiod.istio-system.svc:15012"
#define ZT_CONFIG_ISTIOD_LOCAL    "https://localhost:15012"
#define ZT_CONFIG_MAX_HEADERS     16 /* XDS_HEADER_* (and CA_HEADER_*) entries */
#define ZT_CONFIG_MAX_TOKEN       (64u << 10)

enum zt_proxy_mode { ZT_PROXY_SHARED, ZT_PROXY_DEDICATED };
/* ENABLE_ORIG_SRC: unset = best effort (spec §1.2). */
enum zt_orig_src { ZT_ORIG_SRC_AUTO, ZT_ORIG_SRC_ON, ZT_ORIG_SRC_OFF };
enum zt_config_log_format { ZT_CONFIG_LOG_PLAIN, ZT_CONFIG_LOG_JSON };

/* A gRPC control-plane endpoint from XDS_ADDRESS or CA_ADDRESS. */
struct zt_config_endpoint {
	bool enabled; /* false: "" (or replaced by a local source) */
	char *url;    /* normalised: "https://host:port" (IPv6 bracketed) */
	char *host;   /* DNS name or IP literal, without brackets */
	uint16_t port;
	char *authority; /* "host:port" for :authority */
};

/* One extra metadata entry (XDS_HEADER_<name>=<value>): name lower-cased. */
struct zt_config_header {
	char *key;
	char *value;
};

struct zt_config {
	/* ---- filled from the table (see zt_config_help()) ---- */
	char *xds_address, *ca_address; /* raw text; see .xds / .ca for the parsed form */
	char *xds_root_ca, *ca_root_ca; /* file path, inline PEM, or "SYSTEM" */
	char *alt_xds_hostname, *alt_ca_hostname;
	char *auth_token; /* file path or literal token: use zt_config_token() */
	char *cluster_id, *cluster_domain, *trust_domain, *network;
	char *node_name, *pod_name, *pod_namespace, *instance_ip, *service_account;
	int proxy_mode; /* enum zt_proxy_mode */
	char *proxy_workload_info;
	char *inpod_uds;
	bool inpod_port_reuse;
	int64_t packet_mark_raw; /* see packet_mark */
	uint64_t secret_ttl_ms;
	bool fake_ca;
	char *local_xds_path, *local_xds, *local_ca_dir;
	int enable_orig_src; /* enum zt_orig_src */
	bool ipv6_enabled;
	int64_t pool_max_streams;
	uint64_t pool_unused_release_ms;
	uint64_t h2_stream_window, h2_conn_window, h2_frame_size;
	uint64_t keepalive_time_ms, keepalive_interval_ms;
	int64_t keepalive_retries;
	bool keepalive_enabled, user_timeout_enabled;
	uint64_t termination_deadline_raw_ms; /* see termination_deadline_ms */
	int64_t termination_grace_period_s;
	int log_format;  /* enum zt_config_log_format */
	char *log_level; /* log spec (runtime/log.h); RUST_LOG when ZTUNNEL_LOG_LEVEL unset */
	char *admin_addr, *readiness_addr, *stats_addr;
	int64_t worker_threads; /* data-plane worker loops (proxy/dataplane.h) */
	bool worker_threads_set; /* derived: given (env, PROXY_CONFIG concurrency) */
	char *cpu_limit, *resource_cpu_limit, *resource_cpu_request; /* checked quantities */
	char *proxy_config;                                          /* as given */
	char *istio_version;
	/* read so that a value this implementation lacks is named (zt_config_unsupported) */
	bool enable_proxy, xds_on_demand, socks5, localhost_app_tunnel, response_baggage;
	bool authz_policy_info_logging, tls12_enabled;
	char *prefered_service_namespace, *crl_path, *compliance_policy;
	char *dns_capture, *dns_proxy_addr; /* see dns_enabled, dns_addrs */

	/* ---- derived by zt_config_load() ---- */
	struct zt_config_endpoint xds, ca;
	bool packet_mark_set; /* PACKET_MARK given, or shared mode (default 1337) */
	uint32_t packet_mark;
	uint64_t termination_deadline_ms;
	struct {
		char *ns, *name, *sa;
	} workload_info; /* PROXY_WORKLOAD_INFO split; NULL when not given */
	struct zt_sockaddr admin, readiness, stats;
	struct zt_config_header *xds_headers, *ca_headers;
	size_t n_xds_headers, n_ca_headers;
	bool dns_enabled;                /* spec §13.1: the per-pod DNS proxy runs */
	struct zt_sockaddr dns_addrs[2]; /* its UDP and TCP addresses */
	size_t n_dns_addrs;
	char *node_id;     /* spec §3.3 */
	json_t *node_meta; /* object: key -> JSON value (strings but for ISTIO_METAJSON_*) */
};

/* Loads cfg from env (environ-style "NAME=value" strings, NULL-terminated; NULL: the process
 * environment), then from PROXY_CONFIG and the mesh config file for what env leaves unset
 * (config/proxy_config.h). The first occurrence of a name counts. cfg is overwritten without being
 * freed: pass a zeroed or cleared struct. Every problem is reported, each message naming its
 * variable, joined with "; " into err (truncated to errlen). On failure cfg is left cleared.
 * Returns 0 or ZT_E_PARSE. */
int zt_config_load(struct zt_config *cfg, char **env, char *err, size_t errlen);

/* The settings of the reference ztunnel (spec §9.1) given a value this implementation does
 * not support, comma-separated into out (e.g. "CRL_PATH, XDS_ON_DEMAND=true"). *refuse
 * (may be NULL) becomes true when one of them would change behaviour a user relies on
 * (ENABLE_PROXY=false, CRL_PATH, UNSTABLE_ENABLE_SOCKS5=true, COMPLIANCE_POLICY): --check-config
 * fails then. Returns how many. */
size_t zt_config_unsupported(const struct zt_config *cfg, char *out, size_t len, bool *refuse);

/* Frees everything cfg owns and zeroes it. Accepts a zeroed struct. */
void zt_config_clear(struct zt_config *cfg);

/* Writes the --help table: every variable with its default and accepted values. */
void zt_config_help(FILE *out);

/* The effective configuration for /config_dump: each variable by name with its value as text
 * ("<redacted>" for a literal AUTH_TOKEN and for header values), plus the derived values
 * (nodeId, xdsAddress, caAddress, packetMark, terminationDeadline, proxyWorkloadInfo,
 * nodeMetadata, xdsHeaders, caHeaders as names). Returns a new reference. */
json_t *zt_config_to_json(const struct zt_config *cfg);

/* Reads the bearer token into out (NUL-terminated, surrounding whitespace trimmed), from the
 * file named by AUTH_TOKEN on every call, or AUTH_TOKEN itself when it is a literal (a value
 * without '/' that names no existing file). With the default path and no such file, out is ""
 * (no token). Returns 0; -errno when an explicit token file cannot be read; ZT_E_TOOBIG when
 * the token does not fit in len (or exceeds ZT_CONFIG_MAX_TOKEN). */
int zt_config_token(const struct zt_config *cfg, char *out, size_t len);

/* Reads a root CA setting (XDS_ROOT_CA / CA_ROOT_CA syntax): "SYSTEM" gives *pem NULL (use
 * the system trust store); text containing "-----BEGIN" is the PEM itself; anything else is a
 * file path read now (at most 1 MiB). *pem is malloc'd and NUL-terminated, the caller frees.
 * Returns 0, -errno (file) or ZT_E_TOOBIG. */
int zt_config_read_root_ca(const char *value, char **pem, size_t *len);

/* Parses an XDS_ADDRESS / CA_ADDRESS value into ep: a missing scheme gets "https://", the
 * port defaults to 15012, only https is accepted, no path but "/". "" gives a disabled
 * endpoint. On error a reason (without the variable name) goes to why. Returns 0 or
 * ZT_E_PARSE / ZT_E_RANGE; ep must be cleared with zt_config_endpoint_clear() after success. */
int zt_config_endpoint_parse(struct zt_config_endpoint *ep, const char *text, char *why,
                             size_t whylen);
void zt_config_endpoint_clear(struct zt_config_endpoint *ep);

/* CONNECTION_TERMINATION_DEADLINE when unset, from TERMINATION_GRACE_PERIOD_SECONDS (spec
 * §9.1): grace - 5 s above 10 s, else grace - 1 s, never under 1 s; 5 s when grace < 0
 * (unset). */
uint64_t zt_config_derive_termination_ms(int64_t grace_s);

#endif
