/* fake-istiod's model of a cluster, loaded from Kubernetes-style multi-document YAML
 * (Namespace, Node, ServiceAccount, Pod, Service, waypoint Gateway, AuthorizationPolicy,
 * PeerAuthentication) plus an optional pod address file. Invariant: a loaded model is
 * validated (every error names file:line and the object), has no duplicate kind/ns/name and
 * keeps each kind sorted by (namespace, name); it is immutable until fi_mesh_clear. */
#ifndef FI_MESH_H
#define FI_MESH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/addr.h"

/* Labels and annotations, sorted by key, keys unique. */
struct fi_label {
	char *key;
	char *value;
};
struct fi_labels {
	struct fi_label *v;
	size_t n;
};

struct fi_strs {
	char **v;
	size_t n;
};

/* What every object carries first (so any kind can be handled through it). */
struct fi_meta {
	char *ns; /* NULL for cluster-scoped kinds (Namespace, Node) */
	char *name;
	char *uid; /* metadata.uid; generated for pods when absent, NULL otherwise */
	struct fi_labels labels, annotations;
	const char *file; /* where the object was defined (points into fi_mesh.files) */
	unsigned line;
	unsigned seq; /* load order, breaks ties ("oldest wins" in Istio terms) */
};

struct fi_namespace {
	struct fi_meta meta;
};

struct fi_node {
	struct fi_meta meta;
};

struct fi_service_account {
	struct fi_meta meta;
};

enum fi_protocol { FI_PROTO_TCP, FI_PROTO_UDP, FI_PROTO_SCTP };

struct fi_container_port {
	char *name; /* NULL when unnamed */
	uint16_t port;
	enum fi_protocol protocol;
};

struct fi_pod {
	struct fi_meta meta;
	char *node;                      /* spec.nodeName, NULL when unscheduled */
	char *service_account;           /* spec.serviceAccountName, "default" when absent */
	struct fi_container_port *ports; /* every container's ports, in order */
	size_t n_ports;
	struct zt_ip *ips; /* the address file's entry, else status.podIPs / status.podIP */
	size_t n_ips;
	bool host_network;
	bool ready;       /* false when status.conditions holds Ready=False */
	char *owner_kind; /* controller ownerReference, or NULL */
	char *owner_name;
};

struct fi_service_port {
	char *name; /* NULL when unnamed */
	uint16_t port;
	uint16_t target_port;   /* numeric targetPort (port when absent); 0 when named */
	char *target_port_name; /* named targetPort, else NULL */
	enum fi_protocol protocol;
	char *app_protocol; /* NULL when absent */
};

struct fi_service {
	struct fi_meta meta;
	struct fi_labels selector; /* empty = no selector (endpoints managed elsewhere) */
	struct zt_ip *ips;         /* spec.clusterIPs, else spec.clusterIP; none when headless */
	size_t n_ips;
	bool headless; /* clusterIP: None */
	struct fi_service_port *ports;
	size_t n_ports;
};

/* Gateway API Gateway (gateway.networking.k8s.io). */
struct fi_gateway {
	struct fi_meta meta;
	char *class_name; /* spec.gatewayClassName */
};

#define FI_WAYPOINT_CLASS "istio-waypoint"

enum fi_authz_action { FI_AUTHZ_ALLOW, FI_AUTHZ_DENY, FI_AUTHZ_AUDIT, FI_AUTHZ_CUSTOM };

/* Fields of an AuthorizationPolicy rule's from[].source; names in fi_authz_source_names. */
enum fi_authz_source_field {
	FI_SRC_PRINCIPALS,
	FI_SRC_NOT_PRINCIPALS,
	FI_SRC_REQUEST_PRINCIPALS,
	FI_SRC_NOT_REQUEST_PRINCIPALS,
	FI_SRC_NAMESPACES,
	FI_SRC_NOT_NAMESPACES,
	FI_SRC_SERVICE_ACCOUNTS,
	FI_SRC_NOT_SERVICE_ACCOUNTS,
	FI_SRC_IP_BLOCKS,
	FI_SRC_NOT_IP_BLOCKS,
	FI_SRC_REMOTE_IP_BLOCKS,
	FI_SRC_NOT_REMOTE_IP_BLOCKS,
	FI_SRC_COUNT
};
extern const char *const fi_authz_source_names[FI_SRC_COUNT];

/* Fields of to[].operation; names in fi_authz_operation_names. */
enum fi_authz_operation_field {
	FI_OP_HOSTS,
	FI_OP_NOT_HOSTS,
	FI_OP_PORTS,
	FI_OP_NOT_PORTS,
	FI_OP_METHODS,
	FI_OP_NOT_METHODS,
	FI_OP_PATHS,
	FI_OP_NOT_PATHS,
	FI_OP_COUNT
};
extern const char *const fi_authz_operation_names[FI_OP_COUNT];

struct fi_authz_from {
	struct fi_strs f[FI_SRC_COUNT];
};
struct fi_authz_to {
	struct fi_strs f[FI_OP_COUNT];
};
struct fi_authz_when {
	char *key;
	struct fi_strs values, not_values;
};
struct fi_authz_rule {
	struct fi_authz_from *from;
	size_t n_from;
	struct fi_authz_to *to;
	size_t n_to;
	struct fi_authz_when *when;
	size_t n_when;
};

/* spec.targetRef / spec.targetRefs[] of a policy (spec §18): group "" is the core group. */
struct fi_target_ref {
	char *group; /* "" when absent */
	char *kind;
	char *name;
	char *ns; /* NULL when absent (the policy's namespace) */
};

/* security.istio.io AuthorizationPolicy, as written (conversion is convert.c's job). */
struct fi_authz_policy {
	struct fi_meta meta;
	enum fi_authz_action action; /* ALLOW when absent */
	struct fi_labels selector;   /* spec.selector.matchLabels; empty = none */
	bool has_target_ref;         /* spec.targetRef or spec.targetRefs present */
	struct fi_target_ref *target_refs; /* both, targetRef first */
	size_t n_target_refs;
	bool dry_run;                /* annotation istio.io/dry-run: "true" */
	struct fi_authz_rule *rules;
	size_t n_rules;
};

enum fi_mtls_mode { FI_MTLS_UNSET, FI_MTLS_DISABLE, FI_MTLS_PERMISSIVE, FI_MTLS_STRICT };

struct fi_mtls_port {
	uint16_t port;
	enum fi_mtls_mode mode;
};

struct fi_peer_authn {
	struct fi_meta meta;
	struct fi_labels selector;  /* empty = namespace-wide (root namespace: mesh-wide) */
	enum fi_mtls_mode mode;     /* spec.mtls.mode */
	struct fi_mtls_port *ports; /* spec.portLevelMtls, sorted by port (needs a selector) */
	size_t n_ports;
};

/* networking.istio.io ServiceEntry and WorkloadEntry (spec §13.2, entries.c converts them).
 * An address is an IP, or (ServiceEntry endpoints, WorkloadEntry) a DNS host name. */
enum fi_se_resolution { FI_SE_NONE, FI_SE_STATIC, FI_SE_DNS, FI_SE_DNS_ROUND_ROBIN };
enum fi_se_location { FI_SE_MESH_EXTERNAL, FI_SE_MESH_INTERNAL };

struct fi_entry_addr {
	char *host;       /* the text as written */
	bool is_ip;
	struct zt_ip ip;  /* is_ip */
};

struct fi_se_port {
	char *name;
	uint16_t number;
	uint16_t target_port; /* 0 when absent */
};

struct fi_workload_entry {
	struct fi_meta meta;
	struct fi_entry_addr address;
	struct fi_labels labels;  /* spec.labels (what selectors match), merged over metadata's */
	char *service_account;    /* "default" when absent */
	char *network;            /* "" when absent */
	struct fi_labels ports;   /* port name -> number (text) */
	uint32_t weight;          /* 0 when absent */
};

struct fi_service_entry {
	struct fi_meta meta;
	struct fi_strs hosts;   /* each a DNS name, optionally "*."-prefixed */
	struct zt_cidr *addrs;  /* spec.addresses */
	size_t n_addrs;
	struct fi_se_port *ports;
	size_t n_ports;
	enum fi_se_location location;
	enum fi_se_resolution resolution;
	struct fi_workload_entry *endpoints; /* inline endpoints; meta.name is the address */
	size_t n_endpoints;
	bool has_selector;
	struct fi_labels selector; /* spec.workloadSelector.labels */
	struct fi_strs subject_alt_names;
};

/* Strings that repeat across objects, kept once per mesh (mesh.c). */
struct fi_strpool;
/* One file's objects as parsed, shared (reference-counted) by every mesh built from it and
 * by a struct fi_mesh_cache (mesh.c). */
struct fi_mesh_part;

/* Each array is sorted by (namespace, name). Namespaces (fi_meta.ns), label and annotation
 * keys and values (every struct fi_labels), and a pod's node, service account, owner kind
 * and port names are interned: equal strings are one copy, owned by strings.
 * A mesh from fi_mesh_load holds copies of the objects' structs, in its own arrays, whose
 * pointers are borrowed from parts (one per file, each with its own strings); meta.seq and
 * the address file's pod IPs (in owned) are the mesh's own. */
struct fi_mesh {
	struct fi_strpool *strings;
	struct fi_mesh_part **parts; /* references; NULL in a part's own model */
	size_t n_parts;
	void **owned; /* freed with the mesh: pod IP arrays from the address file */
	size_t n_owned;
	char **files; /* every file loaded, for fi_meta.file (strings borrowed from parts) */
	size_t n_files;
	struct fi_namespace *namespaces;
	size_t n_namespaces;
	struct fi_node *nodes;
	size_t n_nodes;
	struct fi_service_account *service_accounts;
	size_t n_service_accounts;
	struct fi_pod *pods;
	size_t n_pods;
	struct fi_service *services;
	size_t n_services;
	struct fi_gateway *gateways;
	size_t n_gateways;
	struct fi_authz_policy *authz_policies;
	size_t n_authz_policies;
	struct fi_peer_authn *peer_authns;
	size_t n_peer_authns;
	struct fi_service_entry *service_entries;
	size_t n_service_entries;
	struct fi_workload_entry *workload_entries;
	size_t n_workload_entries;
};

struct fi_mesh_opts {
	/* Optional file of lines "namespace/pod IP[,IP]" ('#' starts a comment). An entry
	 * overrides the pod's status IPs; an entry for an unknown pod is a warning. */
	const char *addresses_file;
	/* Bounds on the input (0: the defaults below). Bytes: each YAML file and the address
	 * file. Nodes: one YAML document (documents are read one at a time, so this bounds the
	 * tree held at once; a "kind: List" is one document). */
	uint64_t max_yaml_bytes;
	size_t max_yaml_nodes;
	/* When not NULL and set (by another thread), the load stops at the next document with
	 * ZT_E_CANCELLED: a server shutting down does not wait for a large reload. */
	const atomic_bool *cancel;
	/* When not NULL, files whose identity (device, inode, size, modification time) is what
	 * the cache saw are not read again: their parsed objects are shared. A successful load
	 * updates the cache; a failed one leaves it as it was. */
	struct fi_mesh_cache *cache;
};

/* Parsed files kept between loads of the same file list (a server's reloads). A file whose
 * modification time was within FI_MESH_RACY_NS of the moment it was read is read again
 * next time (a rewrite in the same clock tick keeps size and time). Not thread-safe: one
 * load at a time; meshes built from it stay valid after it is freed. */
struct fi_mesh_cache;
#define FI_MESH_RACY_NS 100000000ll /* 100 ms; 2 s on file systems with whole seconds */
struct fi_mesh_cache *fi_mesh_cache_new(void);
void fi_mesh_cache_free(struct fi_mesh_cache *c);
/* fi_mesh_clear(m), keeping m's arrays in c for the next load through c to fill (m must
 * have been loaded; not while a load through c runs). */
void fi_mesh_recycle(struct fi_mesh *m, struct fi_mesh_cache *c);
/* Files the last load through c read (parsed) and reused. */
void fi_mesh_cache_stats(const struct fi_mesh_cache *c, size_t *parsed, size_t *reused);

/* Defaults that fit a mesh of 1,000,000 pods in one file (about 270 MB, one document per
 * object), and the bounds the flags may be set within. */
#define FI_MESH_DEFAULT_MAX_YAML_BYTES (1ull << 30)
#define FI_MESH_DEFAULT_MAX_YAML_NODES 1000000u
#define FI_MESH_MIN_MAX_YAML_BYTES     1024ull
#define FI_MESH_MAX_MAX_YAML_BYTES     (64ull << 30)
#define FI_MESH_MIN_MAX_YAML_NODES     16u
#define FI_MESH_MAX_MAX_YAML_NODES     1000000000u

/* Limits on the address file. */
#define FI_ADDR_FILE_MAX_LINE 4096
#define FI_POD_MAX_IPS        8

/* Loads n YAML files (each may hold many documents, and "kind: List" items) into m, which
 * must be zeroed or cleared. Supported kinds are listed at the top of this file; any other
 * kind (or apiVersion group) is skipped with a warning. o may be NULL. Documents are read
 * one at a time (bounded by o's max_yaml_nodes each, files by max_yaml_bytes).
 * On error in any document of any file, m is left empty (nothing of the load is kept, not
 * even the documents before it) and err holds one line such as
 *   demo.yaml:14: Pod default/web: spec.containers[0].ports[1].containerPort: expected an
 *   integer 1..65535, got "http"
 * Returns 0, -errno for an unreadable file, ZT_E_PARSE for malformed or duplicate objects,
 * ZT_E_RANGE for an out-of-range number, ZT_E_TOOBIG for oversized input. */
int fi_mesh_load(struct fi_mesh *m, const char *const *files, size_t n,
                 const struct fi_mesh_opts *o, char *err, size_t errlen);
/* Frees everything m holds and zeroes it. Accepts a zeroed mesh. */
void fi_mesh_clear(struct fi_mesh *m);

/* Lookups by name (NULL when absent); results are borrowed from m. */
const struct fi_pod *fi_mesh_find_pod(const struct fi_mesh *m, const char *ns, const char *name);
const struct fi_service *fi_mesh_find_service(const struct fi_mesh *m, const char *ns,
                                              const char *name);
const struct fi_namespace *fi_mesh_find_namespace(const struct fi_mesh *m, const char *name);
const struct fi_node *fi_mesh_find_node(const struct fi_mesh *m, const char *name);
const struct fi_gateway *fi_mesh_find_gateway(const struct fi_mesh *m, const char *ns,
                                              const char *name);

/* True if any pod (in the mesh or not) runs on node with service account ns/sa: the CA signs
 * an identity only for the node that hosts it. A hash lookup per file (each part indexes its
 * pods by (node, namespace, service account) when parsed). */
bool fi_mesh_has_pod_on_node(const struct fi_mesh *m, const char *node, const char *ns,
                             const char *sa);

/* Whether the pod is captured by ambient: its namespace is labelled
 * istio.io/dataplane-mode=ambient and the pod does not say istio.io/dataplane-mode=none, or
 * the pod itself says ambient. Host-network pods never are (istio-cni skips them). */
bool fi_mesh_pod_in_mesh(const struct fi_mesh *m, const struct fi_pod *p);
/* The waypoint Gateway a pod belongs to (label gateway.networking.k8s.io/gateway-name naming
 * a Gateway of class istio-waypoint in its namespace), or NULL. */
const struct fi_gateway *fi_mesh_pod_waypoint(const struct fi_mesh *m, const struct fi_pod *p);

/* Label value or NULL; selector matching (every selector pair present in labels; an empty
 * selector matches everything). */
const char *fi_labels_get(const struct fi_labels *l, const char *key);
bool fi_labels_match(const struct fi_labels *selector, const struct fi_labels *labels);

#endif
