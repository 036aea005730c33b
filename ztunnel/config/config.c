/* Configuration loading: the envcfg table turns variables into typed fields, then one pass
 * checks what the table cannot (cross-variable rules, addresses, header names) and fills the
 * derived fields. Every check appends to one error list, so a single run reports every bad
 * variable by name; a config is only handed out when that list is empty. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/proxy_config.h"
#include "runtime/duration.h"
#include "runtime/envcfg.h"
#include "runtime/err.h"
#include "runtime/file.h"
#include "runtime/log.h"
#include "runtime/mem.h"

extern char **environ;

#define DEFAULT_PORT          15012
#define MAX_ROOT_CA           (1u << 20)
#define MAX_HOST              253
#define DEFAULT_TERMINATION_S 5
#define SHARED_PACKET_MARK    1337

static const char *const proxy_modes[] = {"shared", "dedicated", NULL};
static const char *const orig_src_modes[] = {"auto", "true", "false", NULL};
static const char *const log_formats[] = {"plain", "json", NULL};

#define F(field, KIND) ZT_ENVCFG_FIELD(struct zt_config, field, KIND)
#define UNSUPPORTED    "not supported (named in a warning when set)"

static const struct zt_envcfg_var vars[] = {
        {.name = "XDS_ADDRESS",
         F(xds_address, STRING),
         .def = ZT_CONFIG_ISTIOD_K8S,
         .help = "istiod xDS address; \"\" disables xDS (default " ZT_CONFIG_ISTIOD_LOCAL
                 " outside Kubernetes)"},
        {.name = "CA_ADDRESS",
         F(ca_address, STRING),
         .def = ZT_CONFIG_ISTIOD_K8S,
         .help = "CA address, default as XDS_ADDRESS; ignored with FAKE_CA or LOCAL_CA_DIR"},
        {.name = "XDS_ROOT_CA",
         F(xds_root_ca, STRING),
         .def = ZT_CONFIG_DEFAULT_ROOT_CA,
         .help = "Roots for the xDS server: file path, inline PEM or SYSTEM"},
        {.name = "CA_ROOT_CA",
         F(ca_root_ca, STRING),
         .def = ZT_CONFIG_DEFAULT_ROOT_CA,
         .help = "Roots for the CA server: file path, inline PEM or SYSTEM"},
        {.name = "ALT_XDS_HOSTNAME",
         F(alt_xds_hostname, STRING),
         .help = "Extra accepted xDS server name"},
        {.name = "ALT_CA_HOSTNAME",
         F(alt_ca_hostname, STRING),
         .help = "Extra accepted CA server name"},
        {.name = "AUTH_TOKEN",
         F(auth_token, STRING),
         .def = ZT_CONFIG_DEFAULT_TOKEN,
         .help = "Bearer token file (re-read on every use) or literal token"},
        {.name = "CLUSTER_ID",
         .alias = "ISTIO_META_CLUSTER_ID",
         F(cluster_id, STRING),
         .def = "Kubernetes",
         .help = "Cluster name, sent as clusterid metadata"},
        {.name = "CLUSTER_DOMAIN", F(cluster_domain, STRING), .def = "cluster.local"},
        {.name = "TRUST_DOMAIN",
         F(trust_domain, STRING),
         .def = "cluster.local",
         .help = "Trust domain of ztunnel's own identity"},
        {.name = "NETWORK", F(network, STRING), .def = "", .help = "Network of this node"},
        {.name = "NODE_NAME", F(node_name, STRING), .help = "Node this ztunnel runs on"},
        {.name = "POD_NAME", F(pod_name, STRING), .help = "ztunnel's pod name"},
        {.name = "POD_NAMESPACE", F(pod_namespace, STRING), .help = "ztunnel's namespace"},
        {.name = "INSTANCE_IP", F(instance_ip, STRING), .help = "ztunnel's pod IP"},
        {.name = "SERVICE_ACCOUNT",
         F(service_account, STRING),
         .help = "ztunnel's service account"},
        {.name = "PROXY_MODE",
         F(proxy_mode, ENUM),
         .def = "shared",
         .choices = proxy_modes,
         .help = "shared: in-pod for every pod of the node; dedicated: one workload"},
        {.name = "PROXY_WORKLOAD_INFO",
         F(proxy_workload_info, STRING),
         .help = "namespace/name/service-account of the workload (dedicated mode)"},
        {.name = "INPOD_UDS",
         F(inpod_uds, STRING),
         .def = "/var/run/ztunnel/ztunnel.sock",
         .help = "ZDS socket of the CNI node agent"},
        {.name = "INPOD_PORT_REUSE",
         F(inpod_port_reuse, BOOL),
         .def = "true",
         .help = "SO_REUSEPORT on in-pod listeners"},
        {.name = "PACKET_MARK",
         F(packet_mark_raw, INT),
         .min = 0,
         .max = UINT32_MAX,
         .help = "SO_MARK on in-pod sockets (1337 in shared mode, none in dedicated)"},
        {.name = "SECRET_TTL",
         F(secret_ttl_ms, DURATION),
         .def = "24h",
         .help = "Requested certificate lifetime"},
        {.name = "FAKE_CA",
         F(fake_ca, BOOL),
         .def = "false",
         .help = "Self-signed certificates, no CA"},
        {.name = "LOCAL_XDS_PATH",
         F(local_xds_path, STRING),
         .help = "Local config YAML file replacing xDS"},
        {.name = "LOCAL_XDS", F(local_xds, STRING), .help = "Local config as inline YAML"},
        {.name = "LOCAL_CA_DIR",
         F(local_ca_dir, STRING),
         .help = "CA directory (key and certificate) of a local signer replacing CA_ADDRESS"},
        {.name = "ENABLE_ORIG_SRC",
         F(enable_orig_src, ENUM),
         .def = "auto",
         .choices = orig_src_modes,
         .help = "Spoof the client source on inbound (auto: best effort)"},
        {.name = "IPV6_ENABLED", F(ipv6_enabled, BOOL), .def = "true"},
        {.name = "POOL_MAX_STREAMS_PER_CONNECTION",
         F(pool_max_streams, INT),
         .def = "100",
         .min = 1,
         .max = 65535,
         .help = "Streams per pooled HBONE connection"},
        {.name = "POOL_UNUSED_RELEASE_TIMEOUT",
         F(pool_unused_release_ms, DURATION),
         .def = "5m",
         .help = "Idle time before a pooled connection closes"},
        {.name = "HTTP2_STREAM_WINDOW_SIZE",
         F(h2_stream_window, SIZE),
         .def = "4MiB",
         .help = "HTTP/2 stream window"},
        {.name = "HTTP2_CONNECTION_WINDOW_SIZE",
         F(h2_conn_window, SIZE),
         .def = "16MiB",
         .help = "HTTP/2 connection window"},
        {.name = "HTTP2_FRAME_SIZE",
         F(h2_frame_size, SIZE),
         .def = "1MiB",
         .help = "HTTP/2 maximum frame size"},
        {.name = "KEEPALIVE_TIME", F(keepalive_time_ms, DURATION), .def = "180s"},
        {.name = "KEEPALIVE_INTERVAL", F(keepalive_interval_ms, DURATION), .def = "180s"},
        {.name = "KEEPALIVE_RETRIES", F(keepalive_retries, INT), .def = "9", .min = 1, .max = 127},
        {.name = "KEEPALIVE_ENABLED", F(keepalive_enabled, BOOL), .def = "true"},
        {.name = "USER_TIMEOUT_ENABLED",
         F(user_timeout_enabled, BOOL),
         .def = "false",
         .help = "TCP_USER_TIMEOUT = time + retries * interval"},
        {.name = "CONNECTION_TERMINATION_DEADLINE",
         F(termination_deadline_raw_ms, DURATION),
         .help = "Drain deadline at shutdown (5s, or from TERMINATION_GRACE_PERIOD_SECONDS)"},
        {.name = "TERMINATION_GRACE_PERIOD_SECONDS",
         F(termination_grace_period_s, INT),
         .min = 0,
         .max = 86400 * 365,
         .help = "Pod grace period the drain deadline is derived from"},
        {.name = "LOG_FORMAT", F(log_format, ENUM), .def = "plain", .choices = log_formats},
        {.name = "ZTUNNEL_LOG_LEVEL",
         .alias = "RUST_LOG",
         F(log_level, STRING),
         .def = "info",
         .help = "Log spec such as info,access=debug"},
        {.name = "ZTUNNEL_WORKER_THREADS",
         F(worker_threads, INT),
         .def = "2",
         .min = 1,
         .max = 1024,
         .help = "Data-plane worker threads: each runs its own event loop with its own "
                 "listeners (SO_REUSEPORT), connections and HBONE pool"},
        {.name = "ZTUNNEL_CPU_LIMIT",
         F(cpu_limit, STRING),
         .help = "CPU limit of the pod (Kubernetes quantity), for worker sizing"},
        {.name = "ZTUNNEL_RESOURCE_CPU_LIMIT", F(resource_cpu_limit, STRING)},
        {.name = "ZTUNNEL_RESOURCE_CPU_REQUEST", F(resource_cpu_request, STRING)},
        {.name = "PROXY_CONFIG",
         F(proxy_config, STRING),
         .help = "ProxyConfig YAML (or its file path): discoveryAddress, proxyAdminPort, "
                 "statsPort, concurrency, proxyMetadata"},
        {.name = "ISTIO_META_ISTIO_VERSION",
         F(istio_version, STRING),
         .help = "Istio version: istio_build's tag and `ztunnel version`"},
        {.name = "ENABLE_PROXY", F(enable_proxy, BOOL), .def = "true", .help = UNSUPPORTED},
        {.name = "XDS_ON_DEMAND", F(xds_on_demand, BOOL), .def = "false", .help = UNSUPPORTED},
        {.name = "PREFERED_SERVICE_NAMESPACE",
         F(prefered_service_namespace, STRING),
         .help = "Namespace preferred when several services share a DNS name"},
        {.name = "CRL_PATH", F(crl_path, STRING), .help = UNSUPPORTED},
        {.name = "UNSTABLE_ENABLE_SOCKS5", F(socks5, BOOL), .def = "false", .help = UNSUPPORTED},
        {.name = "LOCALHOST_APP_TUNNEL",
         F(localhost_app_tunnel, BOOL),
         .def = "true",
         .help = UNSUPPORTED " when false"},
        {.name = "ENABLE_RESPONSE_BAGGAGE",
         F(response_baggage, BOOL),
         .def = "true",
         .help = UNSUPPORTED " when false"},
        {.name = "AUTHZ_POLICY_INFO_LOGGING",
         F(authz_policy_info_logging, BOOL),
         .def = "false",
         .help = UNSUPPORTED},
        {.name = "TLS12_ENABLED", F(tls12_enabled, BOOL), .def = "false", .help = UNSUPPORTED},
        {.name = "COMPLIANCE_POLICY", F(compliance_policy, STRING), .help = UNSUPPORTED},
        {.name = "ISTIO_META_DNS_CAPTURE",
         F(dns_capture, STRING),
         .help = "DNS proxy on 15053 in each pod: on unless false (spec §13)"},
        {.name = "ISTIO_META_DNS_PROXY_ADDR",
         F(dns_proxy_addr, STRING),
         .help = "DNS proxy address: localhost:PORT (both loopbacks) or IP:PORT (default "
                 "localhost:15053)"},
        {.name = "ADMIN_ADDR",
         F(admin_addr, STRING),
         .def = "127.0.0.1:15000",
         .help = "Admin server (loopback only)"},
        {.name = "READINESS_ADDR",
         F(readiness_addr, STRING),
         .def = "[::]:15021",
         .help = "Readiness server (0.0.0.0:15021 when IPV6_ENABLED=false)"},
        {.name = "STATS_ADDR",
         F(stats_addr, STRING),
         .def = "[::]:15020",
         .help = "Prometheus server (0.0.0.0:15020 when IPV6_ENABLED=false)"},
};

#undef F

#define NVARS (sizeof(vars) / sizeof(vars[0]))

/* ---- helpers ----------------------------------------------------------------------------- */

static void replace_str(char **field, const char *value)
{
	free(*field);
	*field = value ? xstrdup(value) : NULL;
}

struct env {
	char **v;
};

static const char *env_get(const char *name, void *arg)
{
	struct env *e = arg;
	size_t n = strlen(name);

	for (char **p = e->v; p && *p; p++)
		if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
			return *p + n + 1;
	return NULL;
}

struct errs {
	char *buf;
	size_t len;
	size_t count;
};

static void errs_add_cb(const char *msg, void *arg)
{
	struct errs *e = arg;
	size_t off;

	e->count++;
	if (!e->buf || e->len == 0)
		return;
	off = strlen(e->buf);
	if (off + 1 < e->len)
		snprintf(e->buf + off, e->len - off, "%s%s", off ? "; " : "", msg);
}

__attribute__((format(printf, 2, 3))) static void errs_add(struct errs *e, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errs_add_cb(msg, e);
}

/* ---- endpoints --------------------------------------------------------------------------- */

static bool dns_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > MAX_HOST)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
			return false;
	return true;
}

void zt_config_endpoint_clear(struct zt_config_endpoint *ep)
{
	free(ep->url);
	free(ep->host);
	free(ep->authority);
	memset(ep, 0, sizeof(*ep));
}

int zt_config_endpoint_parse(struct zt_config_endpoint *ep, const char *text, char *why,
                             size_t whylen)
{
	const char *p = text, *host, *end, *slash;
	size_t hlen;
	long port = DEFAULT_PORT;
	bool v6 = false;
	struct zt_ip ip;
	char buf[MAX_HOST + 16];

	memset(ep, 0, sizeof(*ep));
	if (!text[0])
		return 0;
	if (strstr(p, "://")) {
		if (strncmp(p, "https://", 8) != 0) {
			snprintf(why, whylen, "only https:// is supported");
			return ZT_E_PARSE;
		}
		p += 8;
	}
	slash = strchr(p, '/');
	end = slash ? slash : p + strlen(p);
	if (slash && strcmp(slash, "/") != 0) {
		snprintf(why, whylen, "a path is not allowed");
		return ZT_E_PARSE;
	}
	host = p;
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));

		if (!rb) {
			snprintf(why, whylen, "missing ']'");
			return ZT_E_PARSE;
		}
		hlen = (size_t)(rb - host - 1);
		host++;
		p = rb + 1;
		v6 = true;
		if (zt_ip_parse(&ip, host, hlen) < 0 || ip.family != AF_INET6) {
			snprintf(why, whylen, "bad IPv6 address in brackets");
			return ZT_E_PARSE;
		}
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));

		p = colon ? colon : end;
		hlen = (size_t)(p - host);
		if (!dns_name_ok(host, hlen)) {
			snprintf(why, whylen, "bad host name");
			return ZT_E_PARSE;
		}
	}
	if (p < end) {
		char *e = NULL;

		if (*p != ':' || p + 1 == end || !isdigit((unsigned char)p[1])) {
			snprintf(why, whylen, "expected :port after the host");
			return ZT_E_PARSE;
		}
		errno = 0;
		port = strtol(p + 1, &e, 10);
		if (e != end) {
			snprintf(why, whylen, "bad port");
			return ZT_E_PARSE;
		}
		if (errno || port < 1 || port > 65535) {
			snprintf(why, whylen, "port out of range 1..65535");
			return ZT_E_RANGE;
		}
	}
	ep->enabled = true;
	ep->host = xstrndup(host, hlen);
	ep->port = (uint16_t)port;
	snprintf(buf, sizeof(buf), v6 ? "[%s]:%ld" : "%s:%ld", ep->host, port);
	ep->authority = xstrdup(buf);
	snprintf(buf, sizeof(buf), "https://%s", ep->authority);
	ep->url = xstrdup(buf);
	return 0;
}

/* ---- listener addresses ------------------------------------------------------------------ */

/* "ip:port", "[v6]:port", "localhost:port" or ":port" (every address). */
static int parse_listen(const char *s, bool ipv6, struct zt_sockaddr *out)
{
	char buf[ZT_ADDR_STRLEN + 16];

	if (s[0] == ':') {
		snprintf(buf, sizeof(buf), "%s%s", ipv6 ? "[::]" : "0.0.0.0", s);
		s = buf;
	} else if (strncmp(s, "localhost:", 10) == 0) {
		snprintf(buf, sizeof(buf), "127.0.0.1%s", s + 9);
		s = buf;
	}
	return zt_addr_parse(out, s, strlen(s), ZT_ADDR_PORT0_OK);
}

/* ---- headers and metadata ---------------------------------------------------------------- */

static bool header_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' &&
		    *s != '_' && *s != '.')
			return false;
	return true;
}

static bool header_value_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static bool header_reserved(const char *k)
{
	return strncmp(k, "grpc-", 5) == 0 || strcmp(k, "te") == 0 ||
	       strcmp(k, "content-type") == 0;
}

/* Collects PREFIX<name>=<value> entries in environment order (first of a name wins). */
static void collect_headers(char **env, const char *prefix, struct zt_config_header **out,
                            size_t *n, struct errs *e)
{
	size_t plen = strlen(prefix);

	for (char **p = env; p && *p; p++) {
		const char *eq = strchr(*p, '=');
		char var[256], *key;
		bool dup = false;

		if (!eq || strncmp(*p, prefix, plen) != 0)
			continue;
		snprintf(var, sizeof(var), "%.*s", (int)(eq - *p), *p);
		key = xstrndup(*p + plen, (size_t)(eq - *p) - plen);
		for (char *k = key; *k; k++)
			*k = (char)tolower((unsigned char)*k);
		for (size_t i = 0; i < *n; i++)
			dup |= strcmp((*out)[i].key, key) == 0;
		if (dup) {
			free(key);
			continue;
		}
		if (!header_name_ok(key) || header_reserved(key)) {
			errs_add(e,
			         "%s: not a usable metadata name (letters, digits, '-', '_', '.'; "
			         "not grpc-*, te or content-type)",
			         var);
			free(key);
			continue;
		}
		if (!header_value_ok(eq + 1)) {
			errs_add(e, "%s: value must be printable ASCII", var);
			free(key);
			continue;
		}
		if (*n == ZT_CONFIG_MAX_HEADERS) {
			errs_add(e, "%s: more than %d %s* variables", var, ZT_CONFIG_MAX_HEADERS,
			         prefix);
			free(key);
			continue;
		}
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[*n].key = key;
		(*out)[*n].value = xstrdup(eq + 1);
		(*n)++;
	}
}

static void meta_set_string(json_t *meta, const char *key, const char *value, const char *var,
                            struct errs *e)
{
	json_t *v = json_string(value);

	if (!v) {
		errs_add(e, "%s: value is not valid UTF-8", var);
		return;
	}
	json_object_set_new(meta, key, v);
}

/* Node metadata (spec §3.3): ISTIO_META_<K> as strings, ISTIO_METAJSON_<K> as JSON values,
 * then the fields ztunnel always sends. */
static void build_metadata(struct zt_config *cfg, char **env, struct errs *e)
{
	static const char meta[] = "ISTIO_META_", metajson[] = "ISTIO_METAJSON_";

	cfg->node_meta = json_object();
	if (!cfg->node_meta)
		abort();
	for (char **p = env; p && *p; p++) {
		const char *eq = strchr(*p, '=');
		char var[256], key[256];
		size_t klen;

		if (!eq)
			continue;
		snprintf(var, sizeof(var), "%.*s", (int)(eq - *p), *p);
		if (strncmp(var, meta, sizeof(meta) - 1) == 0 && var[sizeof(meta) - 1]) {
			snprintf(key, sizeof(key), "%s", var + sizeof(meta) - 1);
			if (!json_object_get(cfg->node_meta, key))
				meta_set_string(cfg->node_meta, key, eq + 1, var, e);
		} else if (strncmp(var, metajson, sizeof(metajson) - 1) == 0 &&
		           (klen = strlen(var + sizeof(metajson) - 1)) > 0) {
			json_error_t jerr;
			json_t *v;

			snprintf(key, sizeof(key), "%s", var + sizeof(metajson) - 1);
			if (json_object_get(cfg->node_meta, key))
				continue;
			v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
			if (!v) {
				errs_add(e, "%s: invalid JSON: %s", var, jerr.text);
				continue;
			}
			json_object_set_new(cfg->node_meta, key, v);
		}
	}
	if (cfg->pod_name)
		meta_set_string(cfg->node_meta, "NAME", cfg->pod_name, "POD_NAME", e);
	if (cfg->pod_namespace)
		meta_set_string(cfg->node_meta, "NAMESPACE", cfg->pod_namespace, "POD_NAMESPACE",
		                e);
	if (cfg->instance_ip && cfg->instance_ip[0])
		meta_set_string(cfg->node_meta, "INSTANCE_IPS", cfg->instance_ip, "INSTANCE_IP", e);
	if (cfg->node_name)
		meta_set_string(cfg->node_meta, "NODE_NAME", cfg->node_name, "NODE_NAME", e);
	if (!json_object_get(cfg->node_meta, "CLUSTER_ID"))
		meta_set_string(cfg->node_meta, "CLUSTER_ID", cfg->cluster_id, "CLUSTER_ID", e);
}

static void build_node_id(struct zt_config *cfg)
{
	const char *ip = cfg->instance_ip && cfg->instance_ip[0] ? cfg->instance_ip : "1.1.1.1";
	const char *name = cfg->pod_name ? cfg->pod_name : "";
	const char *ns = cfg->pod_namespace ? cfg->pod_namespace : "";
	int n = snprintf(NULL, 0, "ztunnel~%s~%s.%s~%s.svc.cluster.local", ip, name, ns, ns);

	cfg->node_id = xmalloc((size_t)n + 1);
	snprintf(cfg->node_id, (size_t)n + 1, "ztunnel~%s~%s.%s~%s.svc.cluster.local", ip, name, ns,
	         ns);
}

/* ---- checks ------------------------------------------------------------------------------ */

uint64_t zt_config_derive_termination_ms(int64_t grace_s)
{
	int64_t s;

	if (grace_s < 0)
		return DEFAULT_TERMINATION_S * 1000;
	s = grace_s > 10 ? grace_s - 5 : grace_s - 1;
	if (s < 1)
		s = 1;
	return (uint64_t)s * 1000;
}

static void check_endpoints(struct zt_config *cfg, struct env *env, struct errs *e)
{
	bool k8s = env_get("KUBERNETES_SERVICE_HOST", env) != NULL;
	bool xds_set = env_get("XDS_ADDRESS", env) != NULL;
	bool ca_set = env_get("CA_ADDRESS", env) != NULL;
	bool local = cfg->local_xds_path || cfg->local_xds;
	char why[128];

	if (!k8s && !xds_set)
		replace_str(&cfg->xds_address, ZT_CONFIG_ISTIOD_LOCAL);
	if (!k8s && !ca_set)
		replace_str(&cfg->ca_address, ZT_CONFIG_ISTIOD_LOCAL);
	if (cfg->local_xds_path && cfg->local_xds)
		errs_add(e, "LOCAL_XDS_PATH and LOCAL_XDS: mutually exclusive, set only one");
	if (local && xds_set && cfg->xds_address[0])
		errs_add(e, "%s: the local config replaces xDS; set XDS_ADDRESS=\"\" or unset it",
		         cfg->local_xds_path ? "LOCAL_XDS_PATH" : "LOCAL_XDS");
	else if (!local && cfg->xds_address &&
	         zt_config_endpoint_parse(&cfg->xds, cfg->xds_address, why, sizeof(why)) < 0)
		errs_add(e, "XDS_ADDRESS=\"%.128s\": %s", cfg->xds_address, why);

	if (cfg->local_ca_dir && cfg->fake_ca)
		errs_add(e, "LOCAL_CA_DIR and FAKE_CA=true: mutually exclusive, set only one");
	else if (cfg->local_ca_dir && ca_set && cfg->ca_address[0])
		errs_add(e, "LOCAL_CA_DIR: the local signer replaces the CA; set CA_ADDRESS=\"\" "
		            "or unset it");
	else if (!cfg->local_ca_dir && !cfg->fake_ca && cfg->ca_address &&
	         zt_config_endpoint_parse(&cfg->ca, cfg->ca_address, why, sizeof(why)) < 0)
		errs_add(e, "CA_ADDRESS=\"%.128s\": %s", cfg->ca_address, why);
}

static void check_workload_info(struct zt_config *cfg, struct errs *e)
{
	const char *s = cfg->proxy_workload_info, *a, *b;

	if (!s) {
		if (cfg->proxy_mode == ZT_PROXY_DEDICATED)
			errs_add(e, "PROXY_WORKLOAD_INFO: required when PROXY_MODE=dedicated");
		return;
	}
	a = strchr(s, '/');
	b = a ? strchr(a + 1, '/') : NULL;
	if (!a || !b || a == s || b == a + 1 || !b[1] || strchr(b + 1, '/')) {
		errs_add(e,
		         "PROXY_WORKLOAD_INFO=\"%.128s\": expected namespace/name/service-account",
		         s);
		return;
	}
	cfg->workload_info.ns = xstrndup(s, (size_t)(a - s));
	cfg->workload_info.name = xstrndup(a + 1, (size_t)(b - a - 1));
	cfg->workload_info.sa = xstrdup(b + 1);
}

static void check_listen(const char *var, const char *value, bool ipv6, bool loopback_only,
                         struct zt_sockaddr *out, struct errs *e)
{
	if (!value)
		return;
	if (parse_listen(value, ipv6, out) < 0)
		errs_add(e, "%s=\"%.128s\": expected ip:port, [ipv6]:port or :port", var, value);
	else if (loopback_only && !zt_ip_is_loopback(&out->ip))
		errs_add(e, "%s=\"%.128s\": must be a loopback address", var, value);
}

/* A Kubernetes CPU quantity as the downward API renders it: "2", "0.5", "500m". */
static bool cpu_quantity_ok(const char *s)
{
	size_t digits = 0, dots = 0;

	for (const char *p = s; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && !dots)
			dots++;
		else if (*p == 'm' && p[1] == '\0' && !dots && p != s)
			break;
		else
			return false;
	}
	return digits > 0 && strlen(s) < 32;
}

/* Spec §13.1: DNS_CAPTURE on unless given and not "true"; DNS_PROXY_ADDR "localhost:PORT"
 * means both loopbacks, an "ip:port" itself. */
static void check_dns(struct zt_config *cfg, struct errs *e)
{
	const char *a = cfg->dns_proxy_addr ? cfg->dns_proxy_addr : "localhost:15053";
	struct zt_sockaddr sa;

	cfg->dns_enabled = !cfg->dns_capture || strcasecmp(cfg->dns_capture, "true") == 0;
	if (strncmp(a, "localhost:", 10) == 0) {
		char v4[32], v6[32];
		snprintf(v4, sizeof(v4), "127.0.0.1:%.8s", a + 10);
		snprintf(v6, sizeof(v6), "[::1]:%.8s", a + 10);
		if (zt_addr_parse(&cfg->dns_addrs[0], v4, strlen(v4), 0) < 0 ||
		    zt_addr_parse(&cfg->dns_addrs[1], v6, strlen(v6), 0) < 0) {
			errs_add(e, "failed to parse DNS_PROXY_ADDR: \"%.64s\"", a);
			return;
		}
		cfg->n_dns_addrs = cfg->ipv6_enabled ? 2 : 1;
	} else if (zt_addr_parse(&sa, a, strlen(a), 0) < 0) {
		errs_add(e, "failed to parse DNS_PROXY_ADDR: \"%.64s\"", a);
	} else {
		cfg->dns_addrs[0] = sa;
		cfg->n_dns_addrs = 1;
	}
}

static void check_values(struct zt_config *cfg, struct env *env, struct errs *e)
{
	const struct {
		const char *name, *value;
	} cpus[] = {{"ZTUNNEL_CPU_LIMIT", cfg->cpu_limit},
	            {"ZTUNNEL_RESOURCE_CPU_LIMIT", cfg->resource_cpu_limit},
	            {"ZTUNNEL_RESOURCE_CPU_REQUEST", cfg->resource_cpu_request}};

	cfg->worker_threads_set = env_get("ZTUNNEL_WORKER_THREADS", env) != NULL;
	for (size_t i = 0; i < sizeof(cpus) / sizeof(cpus[0]); i++)
		if (cpus[i].value && !cpu_quantity_ok(cpus[i].value))
			errs_add(e, "%s=\"%.32s\": expected a CPU quantity such as 2, 0.5 or 500m",
			         cpus[i].name, cpus[i].value);
	if (cfg->dns_capture && strcasecmp(cfg->dns_capture, "true") &&
	    strcasecmp(cfg->dns_capture, "false"))
		errs_add(e, "ISTIO_META_DNS_CAPTURE=\"%.32s\": expected true or false",
		         cfg->dns_capture);
	struct zt_ip ip;
	char saved[1024], why[256];

	if (cfg->instance_ip && cfg->instance_ip[0] &&
	    zt_ip_parse(&ip, cfg->instance_ip, strlen(cfg->instance_ip)) < 0)
		errs_add(e, "INSTANCE_IP=\"%.64s\": not an IP address", cfg->instance_ip);
	if (env_get("PACKET_MARK", env)) {
		cfg->packet_mark_set = true;
		cfg->packet_mark = (uint32_t)cfg->packet_mark_raw;
	} else if (cfg->proxy_mode == ZT_PROXY_SHARED) {
		cfg->packet_mark_set = true;
		cfg->packet_mark = SHARED_PACKET_MARK;
	}
	if (env_get("CONNECTION_TERMINATION_DEADLINE", env))
		cfg->termination_deadline_ms = cfg->termination_deadline_raw_ms;
	else
		cfg->termination_deadline_ms = zt_config_derive_termination_ms(
		        env_get("TERMINATION_GRACE_PERIOD_SECONDS", env)
		                ? cfg->termination_grace_period_s
		                : -1);
	if (cfg->secret_ttl_ms == 0 && env_get("SECRET_TTL", env))
		errs_add(e, "SECRET_TTL=\"0\": must be longer than zero");
	if (env_get("HTTP2_STREAM_WINDOW_SIZE", env) &&
	    (cfg->h2_stream_window < 1 || cfg->h2_stream_window > INT32_MAX))
		errs_add(e, "HTTP2_STREAM_WINDOW_SIZE: must be between 1 and 2147483647 bytes");
	if (env_get("HTTP2_CONNECTION_WINDOW_SIZE", env) &&
	    (cfg->h2_conn_window < 65535 || cfg->h2_conn_window > INT32_MAX))
		errs_add(e, "HTTP2_CONNECTION_WINDOW_SIZE: must be between 65535 and 2147483647 "
		            "bytes");
	if (env_get("HTTP2_FRAME_SIZE", env) &&
	    (cfg->h2_frame_size < 16384 || cfg->h2_frame_size > 16777215))
		errs_add(e, "HTTP2_FRAME_SIZE: must be between 16384 and 16777215 bytes");
	if (cfg->log_level) {
		/* Validate without applying: try it, then restore what was there. */
		zt_log_get_spec(saved, sizeof(saved));
		if (zt_log_set_spec(cfg->log_level, why, sizeof(why)) < 0)
			errs_add(e, "%s: %s",
			         env_get("ZTUNNEL_LOG_LEVEL", env) || !env_get("RUST_LOG", env)
			                 ? "ZTUNNEL_LOG_LEVEL"
			                 : "RUST_LOG",
			         why);
		else
			zt_log_set_spec(saved, NULL, 0);
	}
	if (!cfg->ipv6_enabled && !env_get("READINESS_ADDR", env))
		replace_str(&cfg->readiness_addr, "0.0.0.0:15021");
	if (!cfg->ipv6_enabled && !env_get("STATS_ADDR", env))
		replace_str(&cfg->stats_addr, "0.0.0.0:15020");
	check_listen("ADMIN_ADDR", cfg->admin_addr, cfg->ipv6_enabled, true, &cfg->admin, e);
	check_listen("READINESS_ADDR", cfg->readiness_addr, cfg->ipv6_enabled, false,
	             &cfg->readiness, e);
	check_listen("STATS_ADDR", cfg->stats_addr, cfg->ipv6_enabled, false, &cfg->stats, e);
}

#define MAX_PROXY_CONFIG (1u << 20)

/* PROXY_CONFIG, then the mesh config's defaultConfig, as entries after the real environment
 * (lower precedence: env_get returns the first). */
static void load_proxy_config(struct env *env, struct zt_proxy_config_env *pce, struct errs *e)
{
	const char *pc = env_get("PROXY_CONFIG", env);
	char why[512], what[300];
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (pc && *pc) {
		if (pc[0] == '/' || (pc[0] == '.' && pc[1] == '/')) {
			snprintf(what, sizeof(what), "PROXY_CONFIG file %.256s", pc);
			if ((rc = zt_file_read(pc, MAX_PROXY_CONFIG, &text, &len)) < 0) {
				errs_add(e, "%s: cannot read it: %s", what, zt_strerror(rc));
				return;
			}
			rc = zt_proxy_config_parse(what, text, len, pce, why, sizeof(why));
			free(text);
		} else {
			rc = zt_proxy_config_parse("PROXY_CONFIG", pc, strlen(pc), pce, why,
			                           sizeof(why));
		}
		if (rc < 0)
			errs_add(e, "%s", why);
	}
	if (access(ZT_PROXY_CONFIG_MESH_FILE, R_OK) == 0) {
		if ((rc = zt_file_read(ZT_PROXY_CONFIG_MESH_FILE, MAX_PROXY_CONFIG, &text, &len)) <
		    0) {
			errs_add(e, "mesh config %s: %s", ZT_PROXY_CONFIG_MESH_FILE, zt_strerror(rc));
			return;
		}
		rc = zt_proxy_config_parse_mesh("mesh config " ZT_PROXY_CONFIG_MESH_FILE, text, len,
		                                pce, why, sizeof(why));
		free(text);
		if (rc < 0)
			errs_add(e, "%s", why);
	}
}

int zt_config_load(struct zt_config *cfg, char **envp, char *err, size_t errlen)
{
	struct env env = {envp ? envp : environ};
	struct errs e = {err, errlen, 0};
	struct zt_proxy_config_env pce = {0};
	char **merged = NULL;
	int rc = 0;

	if (err && errlen)
		err[0] = '\0';
	memset(cfg, 0, sizeof(*cfg));
	load_proxy_config(&env, &pce, &e);
	if (pce.n) {
		size_t n = 0;
		while (env.v && env.v[n])
			n++;
		merged = calloc(n + pce.n + 1, sizeof(*merged));
		if (!merged)
			abort();
		if (n)
			memcpy(merged, env.v, n * sizeof(*merged));
		memcpy(merged + n, pce.v, pce.n * sizeof(*merged));
		env.v = merged;
	}
	zt_envcfg_load(vars, NVARS, cfg, env_get, &env, errs_add_cb, &e);
	check_endpoints(cfg, &env, &e);
	check_workload_info(cfg, &e);
	check_values(cfg, &env, &e);
	check_dns(cfg, &e);
	collect_headers(env.v, "XDS_HEADER_", &cfg->xds_headers, &cfg->n_xds_headers, &e);
	collect_headers(env.v, "CA_HEADER_", &cfg->ca_headers, &cfg->n_ca_headers, &e);
	if (cfg->cluster_id)
		build_metadata(cfg, env.v, &e);
	build_node_id(cfg);
	if (e.count) {
		zt_config_clear(cfg);
		rc = ZT_E_PARSE;
	}
	free(merged);
	zt_proxy_config_env_clear(&pce);
	return rc;
}

static bool set(const char *s)
{
	return s && *s;
}

size_t zt_config_unsupported(const struct zt_config *cfg, char *out, size_t len, bool *refuse)
{
	const struct {
		bool on, refuse;
		const char *what;
	} u[] = {
	        {!cfg->enable_proxy, true, "ENABLE_PROXY=false"},
	        {cfg->xds_on_demand, false, "XDS_ON_DEMAND=true"},
	        {set(cfg->crl_path), true, "CRL_PATH"},
	        {cfg->socks5, true, "UNSTABLE_ENABLE_SOCKS5=true"},
	        {!cfg->localhost_app_tunnel, false, "LOCALHOST_APP_TUNNEL=false"},
	        {!cfg->response_baggage, false, "ENABLE_RESPONSE_BAGGAGE=false"},
	        {cfg->authz_policy_info_logging, false, "AUTHZ_POLICY_INFO_LOGGING=true"},
	        {cfg->tls12_enabled, false, "TLS12_ENABLED=true"},
	        {set(cfg->compliance_policy), true, "COMPLIANCE_POLICY"},
	};
	size_t n = 0, off = 0;

	if (refuse)
		*refuse = false;
	if (len)
		out[0] = '\0';
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		if (!u[i].on)
			continue;
		n++;
		if (refuse && u[i].refuse)
			*refuse = true;
		if (off < len)
			off += (size_t)snprintf(out + off, len - off, "%s%s", off ? ", " : "",
			                        u[i].what);
	}
	return n;
}

static void headers_free(struct zt_config_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].key);
		free(h[i].value);
	}
	free(h);
}

void zt_config_clear(struct zt_config *cfg)
{
	zt_envcfg_clear(vars, NVARS, cfg);
	zt_config_endpoint_clear(&cfg->xds);
	zt_config_endpoint_clear(&cfg->ca);
	free(cfg->workload_info.ns);
	free(cfg->workload_info.name);
	free(cfg->workload_info.sa);
	headers_free(cfg->xds_headers, cfg->n_xds_headers);
	headers_free(cfg->ca_headers, cfg->n_ca_headers);
	free(cfg->node_id);
	json_decref(cfg->node_meta);
	memset(cfg, 0, sizeof(*cfg));
}

void zt_config_help(FILE *out)
{
	zt_envcfg_help(vars, NVARS, out);
	fprintf(out, "\nAlso read:\n"
	             "  XDS_HEADER_<name>=<value>   extra gRPC metadata <name> on xDS calls\n"
	             "  CA_HEADER_<name>=<value>    extra gRPC metadata <name> on CA calls\n"
	             "  ISTIO_META_<key>=<value>    node metadata string sent to istiod\n"
	             "  ISTIO_METAJSON_<key>=<json> node metadata JSON value sent to istiod\n"
	             "  KUBERNETES_SERVICE_HOST     selects the in-cluster istiod default\n");
	/* The Helm chart sets these for the Rust ztunnel (spec §16); listed so a manifest check
	 * can tell them from a misspelt variable. */
	fprintf(out, "\nAccepted from the Helm chart, no effect in this build:\n"
	             "  RUST_BACKTRACE\n"
	             "  INPOD_ENABLED                 in-pod mode is PROXY_MODE=shared\n"
	             "  ZTUNNEL_CPU_LIMIT             one event-loop thread, whatever the CPU sizing\n"
	             "  ZTUNNEL_RESOURCE_CPU_REQUEST\n"
	             "  ZTUNNEL_RESOURCE_CPU_LIMIT\n");
}

/* ---- token and roots --------------------------------------------------------------------- */

static bool token_is_path(const char *v)
{
	return strchr(v, '/') || access(v, F_OK) == 0;
}

static void trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

int zt_config_token(const struct zt_config *cfg, char *out, size_t len)
{
	const char *v = cfg->auth_token, *t;
	char *file = NULL;
	size_t n, flen;
	int rc = 0;

	if (len == 0)
		return ZT_E_TOOBIG;
	out[0] = '\0';
	if (!v || !v[0])
		return 0;
	if (!token_is_path(v)) {
		t = v;
		n = strlen(v);
	} else {
		rc = zt_file_read(v, ZT_CONFIG_MAX_TOKEN, &file, &flen);
		if (rc == -ENOENT && strcmp(v, ZT_CONFIG_DEFAULT_TOKEN) == 0)
			return 0;
		if (rc < 0)
			return rc;
		t = file;
		n = flen;
	}
	trim(&t, &n);
	if (n >= len || n > ZT_CONFIG_MAX_TOKEN || memchr(t, '\0', n)) {
		rc = n >= len || n > ZT_CONFIG_MAX_TOKEN ? ZT_E_TOOBIG : ZT_E_PARSE;
	} else {
		memcpy(out, t, n);
		out[n] = '\0';
	}
	free(file);
	return rc;
}

int zt_config_read_root_ca(const char *value, char **pem, size_t *len)
{
	*pem = NULL;
	*len = 0;
	if (strcmp(value, "SYSTEM") == 0)
		return 0;
	if (strstr(value, "-----BEGIN")) {
		*len = strlen(value);
		if (*len > MAX_ROOT_CA)
			return ZT_E_TOOBIG;
		*pem = xstrdup(value);
		return 0;
	}
	return zt_file_read(value, MAX_ROOT_CA, pem, len);
}

/* ---- /config_dump ------------------------------------------------------------------------ */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *header_names(const struct zt_config_header *h, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(h[i].key));
	return a;
}

json_t *zt_config_to_json(const struct zt_config *cfg)
{
	json_t *o = json_object(), *env = json_object();
	char buf[256];

	if (!o || !env)
		abort();
	for (size_t i = 0; i < NVARS; i++) {
		const struct zt_envcfg_var *v = &vars[i];
		json_t *val;

		if (v->type == ZT_ENVCFG_STRING) {
			const char *s = *(char *const *)((const char *)cfg + v->offset);

			if (s && strcmp(v->name, "AUTH_TOKEN") == 0 && !token_is_path(s))
				s = "<redacted>";
			val = s ? json_string(s) : json_null();
			if (s && !val) /* not UTF-8: show nothing rather than fail */
				val = json_string("<not UTF-8>");
		} else {
			zt_envcfg_format(v, cfg, buf, sizeof(buf));
			val = json_string(buf);
		}
		json_object_set_new(env, v->name, val);
	}
	json_object_set_new(o, "env", env);
	json_object_set_new(o, "nodeId", str_or_null(cfg->node_id));
	json_object_set_new(o, "xdsAddress", str_or_null(cfg->xds.url));
	json_object_set_new(o, "caAddress", str_or_null(cfg->ca.url));
	json_object_set_new(o, "packetMark",
	                    cfg->packet_mark_set ? json_integer(cfg->packet_mark) : json_null());
	zt_duration_format(cfg->termination_deadline_ms, buf, sizeof(buf));
	json_object_set_new(o, "terminationDeadline", json_string(buf));
	if (cfg->workload_info.ns)
		json_object_set_new(o, "proxyWorkloadInfo",
		                    json_pack("{s:s, s:s, s:s}", "namespace", cfg->workload_info.ns,
		                              "name", cfg->workload_info.name, "serviceAccount",
		                              cfg->workload_info.sa));
	json_object_set_new(o, "nodeMetadata",
	                    cfg->node_meta ? json_deep_copy(cfg->node_meta) : json_object());
	json_object_set_new(o, "xdsHeaders", header_names(cfg->xds_headers, cfg->n_xds_headers));
	json_object_set_new(o, "caHeaders", header_names(cfg->ca_headers, cfg->n_ca_headers));
	return o;
}
