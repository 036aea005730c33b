/* The waypoint's view of the mesh over one delta ADS stream to fake-istiod: istio.workload
 * Address resources into a zt_store (services, their endpoints, who uses this waypoint) and
 * the ztunnel.waypoint.Waypoint resource named after our Gateway (our policies). Invariant:
 * wp->cfg is replaced whole, never edited, so a decision sees one consistent policy set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "protocol/pb.h"
#include "runtime/err.h"
#include "runtime/file.h"
#include "runtime/log.h"
#include "sim/sim-waypoint/wp.h"
#include "state/store.h"
#include "xds/client.h"

ZT_LOG_MODULE("config");

#define MAX_WAYPOINT_RESOURCE (4u << 20)

static struct zt_xds_client *client;

static bool ours(const struct wp *wp, const char *name)
{
	size_t nl = strlen(wp->o.ns);
	return !strncmp(name, wp->o.ns, nl) && name[nl] == '/' &&
	       !strcmp(name + nl + 1, wp->o.name);
}

static int apply_waypoint(void *arg, const char *name, const char *version, const uint8_t *data,
                          size_t len, char *err, size_t errlen)
{
	struct wp *wp = arg;
	ProtobufCMessage *msg = NULL;
	int rc;

	if (!ours(wp, name))
		return 0;
	rc = zt_pb_unpack(&ztunnel__waypoint__waypoint__descriptor, data, len,
	                  MAX_WAYPOINT_RESOURCE, &msg);
	if (rc < 0) {
		snprintf(err, errlen, "%s: not a ztunnel.waypoint.Waypoint", name);
		return rc;
	}
	zt_pb_free(wp->cfg ? &wp->cfg->base : NULL);
	wp->cfg = (Ztunnel__Waypoint__Waypoint *)msg;
	zt_info("policies for %s (version %s): %zu", name, version, wp->cfg->n_policies);
	for (size_t i = 0; i < wp->cfg->n_policies; i++) {
		const Ztunnel__Waypoint__Policy *p = wp->cfg->policies[i];
		zt_info("  %s/%s %s%s, bound by %s", p->namespace_, p->name,
		        p->action == ZTUNNEL__WAYPOINT__ACTION__DENY    ? "DENY"
		        : p->action == ZTUNNEL__WAYPOINT__ACTION__AUDIT ? "AUDIT"
		                                                        : "ALLOW",
		        p->dry_run ? " (dry-run)" : "", p->bound_by);
	}
	return 0;
}

static int remove_waypoint(void *arg, const char *name)
{
	struct wp *wp = arg;

	if (!ours(wp, name))
		return 0;
	zt_warn("policies for %s removed: the Gateway is gone; allowing by default", name);
	zt_pb_free(wp->cfg ? &wp->cfg->base : NULL);
	wp->cfg = NULL;
	return 0;
}

static void on_synced(struct zt_xds_client *c, void *arg)
{
	struct wp *wp = arg;

	(void)c;
	zt_info("xDS synced: %zu addresses, waypoint resource %s",
	        zt_xds_client_count(client, ZT_XDS_TYPE_ADDRESS), wp->cfg ? "present" : "absent");
}

int wp_config_start(struct wp *wp)
{
	char host[256], node_id[512];
	uint16_t port;
	int rc;
	char *roots = NULL;
	size_t roots_len = 0;

	if (wp_split_hostport(wp->o.istiod, host, sizeof(host), &port) < 0)
		return ZT_E_PARSE;
	if ((rc = zt_file_read(wp->o.roots, ZT_TLS_MAX_PEM, &roots, &roots_len)) < 0)
		return rc;
	snprintf(node_id, sizeof(node_id), "router~%s~%s.%s~%s.svc.cluster.local", wp->o.pod_ip,
	         wp->o.name, wp->o.ns, wp->o.ns);
	json_t *md = json_pack("{s:s, s:s, s:s}", "NAMESPACE", wp->o.ns, "SERVICE_ACCOUNT",
	                       wp->o.sa, "INSTANCE_IPS", wp->o.pod_ip);
	struct zt_xds_client_opts o = {
	        .host = host,
	        .port = port,
	        .roots_pem = roots,
	        .roots_len = roots_len,
	        .node_id = node_id,
	        .node_metadata = md,
	        .token_cb = wp_read_token,
	        .token_arg = wp,
	        .on_synced = on_synced,
	        .synced_arg = wp,
	};
	const struct zt_xds_type types[] = {
	        {ZT_XDS_TYPE_ADDRESS, zt_store_apply_address, zt_store_remove_address, wp->store},
	        {WP_WAYPOINT_TYPE, apply_waypoint, remove_waypoint, wp},
	};
	client = zt_xds_client_new(wp->loop, &o, types, 2, &rc);
	json_decref(md);
	free(roots);
	if (!client)
		return rc;
	return zt_xds_client_start(client);
}

void wp_config_stop(struct wp *wp)
{
	zt_xds_client_free(client);
	client = NULL;
	zt_pb_free(wp->cfg ? &wp->cfg->base : NULL);
	wp->cfg = NULL;
}
