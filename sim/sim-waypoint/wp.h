/* sim-waypoint's shared state: options, the loop, the identity it serves and dials with, the
 * mesh as xDS describes it and its own policies. One instance per process, owned by main.c;
 * the modules borrow it. */
#ifndef WP_H
#define WP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/spiffe.h"
#include "protocol/tls.h"
#include "runtime/addr.h"
#include "runtime/loop.h"
#include "ztunnel/waypoint.pb-c.h"

#define WP_WAYPOINT_TYPE "type.googleapis.com/ztunnel.waypoint.Waypoint"

struct zt_store;
struct zt_pool;
struct wp_metrics;

struct wp_opts {
	const char *ns, *name;    /* the Gateway this waypoint implements */
	const char *sa;           /* service account (default: the Gateway's name) */
	const char *pod_ip;       /* this pod's address (matched against waypoint references) */
	const char *istiod;       /* fake-istiod host:port (xDS and CA) */
	const char *roots;        /* file: the CA root that signs istiod and the workloads */
	const char *token;        /* file: bearer token for the CA and xDS */
	const char *listen;       /* HBONE, default 0.0.0.0:15008 */
	const char *metrics;      /* Prometheus, default 127.0.0.1:15020 */
	const char *trust_domain; /* default cluster.local */
	uint64_t sniff_ms;        /* wait for a first byte to detect HTTP/1.1 on unknown ports */
};

struct wp {
	struct wp_opts o;
	struct zt_loop *loop;
	struct zt_spiffe self; /* our SPIFFE identity */
	char self_text[ZT_SPIFFE_STR_SIZE];
	char host[300]; /* <name>.<ns>.svc.<domain>: hostname references */
	struct zt_ip pod_ip;
	struct zt_tls_identity *id;       /* current certificate (NULL before the CA answered) */
	struct zt_store *store;           /* Address resources */
	Ztunnel__Waypoint__Waypoint *cfg; /* our own resource, NULL before it arrived */
	struct zt_pool *pool;             /* HBONE to destination ztunnels */
	struct wp_metrics *metrics;
	uint64_t rr; /* round-robin counter for endpoint choice */
};

/* cert.c: fetches our certificate from the CA and renews it at half life; on_ready runs
 * after each new identity is in place (first one: start serving). Returns 0 or an error. */
int wp_cert_start(struct wp *wp, void (*on_ready)(struct wp *wp));
void wp_cert_stop(struct wp *wp);

/* Reads the --token file (trailing newline dropped) into out; for the CA and xDS clients. */
int wp_read_token(void *arg, char *out, size_t len);
/* Splits "host:port" (host without brackets). Returns 0 or ZT_E_PARSE. */
int wp_split_hostport(const char *s, char *host, size_t size, uint16_t *port);

/* config.c: the delta ADS client (Address + our Waypoint type). Returns 0 or an error. */
int wp_config_start(struct wp *wp);
void wp_config_stop(struct wp *wp);

#endif
