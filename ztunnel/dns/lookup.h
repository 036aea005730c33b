/* Local DNS answers of the DNS proxy (spec §13.2), as a pure function of the store: the
 * aliases a query name stands for in a pod's namespace (search-path expansion and
 * stripping), the wildcard forms of each, the service a name resolves to and the addresses
 * answered. No sockets, no loop, no wire format: names in, a decision out. */
#ifndef ZT_DNS_LOOKUP_H
#define ZT_DNS_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/addr.h"
#include "state/store.h"

#define ZT_DNS_NAME_MAX    253 /* presentation form, without the trailing dot */
#define ZT_DNS_MAX_ALIASES 24
#define ZT_DNS_MAX_ADDRS   32 /* addresses in one answer */
#define ZT_DNS_TTL         30 /* seconds, every local answer (spec §13.2 rule 8) */
#define ZT_DNS_TYPE_A      1
#define ZT_DNS_TYPE_AAAA   28

/* Who asks: the pod owning the DNS server. Strings are borrowed. */
struct zt_dns_client {
	const char *ns;             /* the pod's namespace (N) */
	const char *network;        /* the pod's network ("" default) */
	const char *cluster_domain; /* D, e.g. "cluster.local" */
	/* Search domains without trailing dot; NULL: the pod's own (N.svc.D, svc.D, D). */
	const char *const *search;
	size_t n_search;
	const char *preferred_ns; /* PREFERED_SERVICE_NAMESPACE or NULL */
	bool ipv6_enabled;
	/* Shuffles the answer; NULL keeps the store's order (tests). */
	uint32_t (*rand_cb)(void *arg);
	void *rand_arg;
};

/* One alias of the query name. */
struct zt_dns_alias {
	char name[ZT_DNS_NAME_MAX + 1];
	bool stripped;                  /* derived from a name with a search domain removed */
	char base[ZT_DNS_NAME_MAX + 1]; /* stripped: the query name without that domain */
};

/* The aliases of q (lower-case, no trailing dot) for client c, deduplicated, in the order
 * they are tried (spec §13.2 rule 3): q and its expansions, then for each search domain q
 * ends with, the stripped name and its expansions. Returns how many were written (<= max). */
size_t zt_dns_aliases(const char *q, const struct zt_dns_client *c, struct zt_dns_alias *out,
                      size_t max);

/* Result of a local lookup. */
struct zt_dns_answer {
	struct zt_service *svc;               /* new reference (zt_dns_answer_clear) */
	char owner[ZT_DNS_NAME_MAX + 1];      /* the name the A/AAAA records are owned by */
	char cname_from[ZT_DNS_NAME_MAX + 1]; /* "" or q, when a CNAME q -> owner comes first */
	struct zt_ip addrs[ZT_DNS_MAX_ADDRS];
	size_t n_addrs; /* 0: NOERROR without records (family gate or no address) */
};

/* Normalises a presentation name into out: lower-case, trailing dot removed. Returns 0, or
 * -1 when it is empty, too long, or has an empty label. */
int zt_dns_name_norm(const char *in, char *out, size_t outlen);

/* Answers q (normalised) of type qtype (A or AAAA) locally per spec §13.2 rules 3-8.
 * Returns 1 with *out filled (clear it after), or 0 when no service matches and the query is
 * to be forwarded (also for other types). */
int zt_dns_lookup(const struct zt_store *store, const struct zt_dns_client *c, const char *q,
                  uint16_t qtype, struct zt_dns_answer *out);
void zt_dns_answer_clear(struct zt_dns_answer *a);

#endif
