/* Daemon wiring. Order of construction: store → admin and readiness → certificates → state
 * source (local file or xDS client) → data-plane worker threads → workload proxies (dedicated:
 * one group, a proxy per worker; shared: the in-pod manager fed by the ZDS client, a group per
 * pod) → signals. The control plane (xDS, certificates, ZDS, admin) stays on the main loop. Readiness tasks: "state manager" until the first
 * xDS sync (or the local file loaded), "certificate <id>" per pending local identity,
 * "workload proxy manager" in shared mode until the node agent's snapshot is applied with no
 * pod pending. Nothing here decides policy; each part owns its own logic. */
#include "app/app.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/http.h"
#include "app/drain.h"
#include "cert/ca_client.h"
#include "cert/local.h"
#include "cert/manager.h"
#include "inpod/manager.h"
#include "inpod/zds.h"
#include "protocol/ca.h"
#include "proxy/dataplane.h"
#include "proxy/proxy.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/memtrim.h"
#include "runtime/mem.h"
#include "runtime/version.h"
#include "runtime/yaml.h"
#include "state/dump.h"
#include "state/local.h"
#include "state/store.h"
#include "telemetry/metrics.h"
#include "xds/client.h"

ZT_LOG_MODULE("app");

#define TASK_STATE "state manager"
#define TASK_CERT  "certificate " /* + SPIFFE ID: one task per local identity pending */
#define TASK_PODS  "workload proxy manager"

struct zt_app {
	struct zt_loop *loop;
	const struct zt_config *cfg;
	struct zt_store *store;
	struct zt_xds_client *xds;
	struct zt_xds_type types[2];
	struct zt_grpc_md *xds_md;
	char *xds_roots;
	size_t xds_roots_len;
	struct zt_ca *ca;     /* local signer (LOCAL_CA_DIR / FAKE_CA) */
	char fake_ca_dir[64]; /* FAKE_CA without LOCAL_CA_DIR: a private directory */
	struct zt_cert_local *cert_local;
	struct zt_ca_client *ca_client;
	struct zt_grpc_md *ca_md;
	char *ca_roots;
	size_t ca_roots_len;
	struct zt_certmgr *certs;
	struct zt_admin *admin;
	struct zt_ready *ready;
	struct zt_metrics *metrics;
	struct zt_http_server *stats;
	struct zt_proxy_ctx proxy_ctx;
	struct zt_dataplane *dp;          /* ZTUNNEL_WORKER_THREADS worker loops */
	struct zt_proxy_group *dedicated; /* PROXY_MODE=dedicated: the one workload proxied */
	struct zt_podmgr *pods;     /* PROXY_MODE=shared: one proxy per pod ... */
	struct zt_zds *zds;         /* ... as the node agent tells over ZDS */
	struct zt_signal sigterm, sigint;
	struct zt_memtrim memtrim;   /* idle RSS back near baseline after a spike */
	struct zt_drain drain;       /* spec §14 */
	struct zt_timer drain_timer; /* re-checks the open connections while draining */
	struct zt_defer drain_defer; /* begins the drain outside the trigger's callback */
};

#define DRAIN_POLL_MS 50

/* ---- state sources ---------------------------------------------------------------------- */

static int load_local(struct zt_app *app, char *err, size_t errlen)
{
	const struct zt_config *cfg = app->cfg;
	struct zt_yaml_docs docs;
	struct zt_local_config lc = {0};
	int rc;

	if (cfg->local_xds_path && *cfg->local_xds_path)
		return zt_local_xds_load(app->store, cfg->local_xds_path, err, errlen);
	rc = zt_yaml_parse("LOCAL_XDS", cfg->local_xds, strlen(cfg->local_xds), &docs, err, errlen);
	if (rc < 0)
		return rc;
	if (docs.n > 1) {
		snprintf(err, errlen, "LOCAL_XDS: expected one YAML document, got %zu", docs.n);
		zt_yaml_docs_clear(&docs);
		return ZT_E_PARSE;
	}
	rc = zt_local_xds_parse(docs.n ? docs.docs[0] : NULL, "LOCAL_XDS", &lc, err, errlen);
	if (rc == 0)
		rc = zt_local_xds_apply(app->store, &lc, err, errlen);
	zt_local_config_clear(&lc);
	zt_yaml_docs_clear(&docs);
	return rc;
}

static int xds_token(void *arg, char *out, size_t len)
{
	struct zt_app *app = arg;
	return zt_config_token(app->cfg, out, len);
}

static void xds_synced(struct zt_xds_client *c, void *arg)
{
	struct zt_app *app = arg;
	struct zt_store_counters n;

	(void)c;
	zt_store_get_counters(app->store, &n);
	zt_info("xDS synced: %zu workloads, %zu services, %zu policies", n.workloads, n.services,
	        n.policies);
	if (app->certs)
		zt_certmgr_hold(app->certs, false);
	zt_ready_done(app->ready, TASK_STATE);
}

static int start_xds(struct zt_app *app, char *err, size_t errlen)
{
	const struct zt_config *cfg = app->cfg;
	struct zt_xds_client_opts o = {0};
	int rc;

	rc = zt_config_read_root_ca(cfg->xds_root_ca, &app->xds_roots, &app->xds_roots_len);
	if (rc < 0) {
		snprintf(err, errlen, "XDS_ROOT_CA %s: %s", cfg->xds_root_ca, zt_strerror(rc));
		return rc;
	}
	app->xds_md = xcalloc(cfg->n_xds_headers + 1, sizeof(*app->xds_md));
	for (size_t i = 0; i < cfg->n_xds_headers; i++)
		app->xds_md[i] =
		        (struct zt_grpc_md){cfg->xds_headers[i].key, cfg->xds_headers[i].value};
	app->types[0] = (struct zt_xds_type){ZT_XDS_TYPE_ADDRESS, zt_store_apply_address,
	                                     zt_store_remove_address, app->store};
	app->types[1] =
	        (struct zt_xds_type){ZT_XDS_TYPE_AUTHORIZATION, zt_store_apply_authorization,
	                             zt_store_remove_authorization, app->store};
	o.host = cfg->xds.host;
	o.port = cfg->xds.port;
	o.alt_hostname =
	        cfg->alt_xds_hostname && *cfg->alt_xds_hostname ? cfg->alt_xds_hostname : NULL;
	o.roots_pem = app->xds_roots;
	o.roots_len = app->xds_roots_len;
	o.node_id = cfg->node_id;
	o.node_metadata = cfg->node_meta;
	o.cluster_id = cfg->cluster_id;
	o.headers = app->xds_md;
	o.nheaders = cfg->n_xds_headers;
	o.token_cb = xds_token;
	o.token_arg = app;
	o.on_synced = xds_synced;
	o.synced_arg = app;
	o.metrics = app->metrics;
	app->xds = zt_xds_client_new(app->loop, &o, app->types, 2, &rc);
	if (!app->xds) {
		snprintf(err, errlen, "xDS client: %s", zt_strerror(rc));
		return rc;
	}
	if ((rc = zt_xds_client_start(app->xds)) < 0) {
		snprintf(err, errlen, "xDS client: %s", zt_strerror(rc));
		return rc;
	}
	zt_info("xDS: connecting to %s as %s", cfg->xds.url, cfg->node_id);
	return 0;
}

/* ---- certificates ----------------------------------------------------------------------- */

static int ca_token(void *arg, char *out, size_t len)
{
	struct zt_app *app = arg;
	return zt_config_token(app->cfg, out, len);
}

static void cert_task(const struct zt_spiffe *id, char *buf, size_t len)
{
	char text[ZT_SPIFFE_STR_SIZE];

	zt_spiffe_format(id, text, sizeof(text));
	snprintf(buf, len, TASK_CERT "%s", text);
}

static void on_cert_change(void *arg, const struct zt_spiffe *id, struct zt_tls_identity *cert)
{
	struct zt_app *app = arg;
	char task[ZT_SPIFFE_STR_SIZE + 16];

	if (!cert)
		return;
	cert_task(id, task, sizeof(task));
	zt_ready_done(app->ready, task);
}

/* A workload whose certificate this ztunnel serves (spec §4): local and HBONE; in dedicated
 * mode only the one workload it proxies (the CA signs nothing else for it). */
static bool local_hbone(const struct zt_app *app, const struct zt_workload *w)
{
	const struct zt_config *cfg = app->cfg;

	if (!w || !cfg->node_name || strcmp(w->node, cfg->node_name) ||
	    (w->tunnel_protocol != ZT_TUNNEL_HBONE && !w->native_tunnel))
		return false;
	if (cfg->proxy_mode != ZT_PROXY_DEDICATED)
		return true;
	return cfg->workload_info.ns && !strcmp(w->ns, cfg->workload_info.ns) &&
	       !strcmp(w->name, cfg->workload_info.name) &&
	       !strcmp(w->service_account, cfg->workload_info.sa);
}

static void on_store_event(struct zt_store *store, const struct zt_store_event *ev, void *arg)
{
	struct zt_app *app = arg;
	char task[ZT_SPIFFE_STR_SIZE + 16];
	struct zt_tls_identity *have;

	(void)store;
	if (ev->kind == ZT_STORE_POLICY_CHANGED || !app->certs)
		return;
	/* Take the new reference before dropping the old one, so an unchanged identity is never
	 * forgotten in between. */
	if (local_hbone(app, ev->new_workload)) {
		const struct zt_spiffe *id = ev->new_workload->identity;
		zt_certmgr_prefetch(app->certs, id);
		if (!(have = zt_certmgr_get(app->certs, id))) {
			cert_task(id, task, sizeof(task));
			zt_ready_add(app->ready, task);
		}
		zt_tls_identity_unref(have);
	}
	if (local_hbone(app, ev->old_workload)) {
		const struct zt_spiffe *id = ev->old_workload->identity;
		zt_certmgr_forget(app->certs, id);
		if (zt_certmgr_state(app->certs, id) < 0) {
			cert_task(id, task, sizeof(task));
			zt_ready_done(app->ready, task);
		}
	}
}

static int start_certs(struct zt_app *app, char *err, size_t errlen)
{
	const struct zt_config *cfg = app->cfg;
	struct zt_certmgr_opts o;
	struct zt_cert_source src;
	int rc;

	if (cfg->fake_ca || (cfg->local_ca_dir && *cfg->local_ca_dir)) {
		const char *dir =
		        cfg->local_ca_dir && *cfg->local_ca_dir ? cfg->local_ca_dir : NULL;
		if (!dir) {
			snprintf(app->fake_ca_dir, sizeof(app->fake_ca_dir),
			         "/tmp/ztunnel-ca-XXXXXX");
			if (!mkdtemp(app->fake_ca_dir)) {
				snprintf(err, errlen, "FAKE_CA: cannot create a CA directory: %s",
				         strerror(errno));
				return -errno;
			}
			dir = app->fake_ca_dir;
		}
		if ((rc = zt_ca_open(&app->ca, dir, true, err, errlen)) < 0)
			return rc;
		if ((rc = zt_cert_local_new(&app->cert_local, app->loop, app->ca,
		                            cfg->trust_domain)) < 0) {
			snprintf(err, errlen, "local CA: %s", zt_strerror(rc));
			return rc;
		}
		src = zt_cert_local_source(app->cert_local);
		zt_info("certificates: signed locally with the CA in %s", dir);
	} else if (cfg->ca.enabled) {
		struct zt_ca_client_opts co = {0};
		rc = zt_config_read_root_ca(cfg->ca_root_ca, &app->ca_roots, &app->ca_roots_len);
		if (rc < 0) {
			snprintf(err, errlen, "CA_ROOT_CA %s: %s", cfg->ca_root_ca,
			         zt_strerror(rc));
			return rc;
		}
		app->ca_md = xcalloc(cfg->n_ca_headers + 1, sizeof(*app->ca_md));
		for (size_t i = 0; i < cfg->n_ca_headers; i++)
			app->ca_md[i] = (struct zt_grpc_md){cfg->ca_headers[i].key,
			                                    cfg->ca_headers[i].value};
		co.host = cfg->ca.host;
		co.port = cfg->ca.port;
		co.alt_hostname =
		        cfg->alt_ca_hostname && *cfg->alt_ca_hostname ? cfg->alt_ca_hostname : NULL;
		co.roots_pem = app->ca_roots;
		co.roots_len = app->ca_roots_len;
		co.token = ca_token;
		co.token_arg = app;
		co.cluster_id = cfg->cluster_id;
		co.headers = app->ca_md;
		co.nheaders = cfg->n_ca_headers;
		co.impersonate = cfg->proxy_mode == ZT_PROXY_SHARED;
		if ((rc = zt_ca_client_new(&app->ca_client, app->loop, &co)) < 0) {
			snprintf(err, errlen, "CA client: %s", zt_strerror(rc));
			return rc;
		}
		src = zt_ca_client_source(app->ca_client);
		zt_info("certificates: CA at %s", cfg->ca.url);
	} else {
		zt_warn("no certificate source: CA_ADDRESS is empty and no local CA is configured");
		return 0;
	}
	zt_certmgr_opts_init(&o);
	o.source = src;
	o.ttl_s = (int64_t)(cfg->secret_ttl_ms / 1000);
	o.on_change = on_cert_change;
	o.change_arg = app;
	if ((rc = zt_certmgr_new(&app->certs, app->loop, &o)) < 0) {
		snprintf(err, errlen, "certificate manager: %s", zt_strerror(rc));
		return rc;
	}
	zt_store_watch(app->store, on_store_event, app);
	return 0;
}

/* ---- in-pod mode ------------------------------------------------------------------------ */

static void on_pods_ready(bool ready, void *arg)
{
	struct zt_app *app = arg;

	if (ready)
		zt_ready_done(app->ready, TASK_PODS);
	else
		zt_ready_add(app->ready, TASK_PODS);
}

static int start_inpod(struct zt_app *app, char *err, size_t errlen)
{
	struct zt_podmgr_opts po = {.on_ready = on_pods_ready, .ready_arg = app};
	struct zt_zds_opts zo = {.path = app->cfg->inpod_uds};
	int rc;

	zt_ready_add(app->ready, TASK_PODS);
	if ((rc = zt_podmgr_new(&app->pods, app->dp, &po)) < 0) {
		snprintf(err, errlen, "workload proxy manager: %s", zt_strerror(rc));
		return rc;
	}
	if ((rc = zt_zds_new(&app->zds, app->loop, app->pods, &zo)) < 0 ||
	    (rc = zt_zds_start(app->zds)) < 0) {
		snprintf(err, errlen, "ZDS client for INPOD_UDS %s: %s", zo.path ? zo.path : "",
		         zt_strerror(rc));
		return rc;
	}
	zt_info("in-pod mode: waiting for pods from the node agent at %s", zo.path);
	return 0;
}

/* ---- admin sections --------------------------------------------------------------------- */

/* In the reference's shape (spec §17): in-pod proxies only. */
static json_t *section_workload_state(void *arg)
{
	struct zt_app *app = arg;
	return app->pods ? zt_podmgr_dump(app->pods) : json_object();
}

static json_t *section_proxies(void *arg)
{
	struct zt_app *app = arg;
	json_t *a;

	if (app->pods)
		return zt_podmgr_dump_proxies(app->pods);
	a = json_array();
	if (app->dedicated)
		json_array_append_new(a, zt_proxy_group_dump(app->dedicated));
	return a;
}

static json_t *section_zds(void *arg)
{
	struct zt_app *app = arg;
	return app->zds ? zt_zds_dump(app->zds) : json_null();
}

static json_t *section_certs(void *arg)
{
	return zt_dump_certificates(((struct zt_app *)arg)->certs);
}

static json_t *section_certmgr(void *arg)
{
	struct zt_app *app = arg;
	return app->certs ? zt_certmgr_dump(app->certs) : json_array();
}

/* /config_dump lists workloads, services and policies at its top level (spec §8.3), written
 * object by object (a tree of a large store would take several times its own memory). */
static int section_workloads(void *arg, struct zt_buf *out, const char *indent)
{
	return zt_store_write_part(((struct zt_app *)arg)->store, ZT_DUMP_WORKLOADS, out, indent);
}

static int section_services(void *arg, struct zt_buf *out, const char *indent)
{
	return zt_store_write_part(((struct zt_app *)arg)->store, ZT_DUMP_SERVICES, out, indent);
}

static int section_policies(void *arg, struct zt_buf *out, const char *indent)
{
	return zt_store_write_part(((struct zt_app *)arg)->store, ZT_DUMP_POLICIES, out, indent);
}

static json_t *section_counts(void *arg)
{
	return zt_store_counters_json(((struct zt_app *)arg)->store);
}

static json_t *section_config(void *arg)
{
	return zt_config_to_json(((struct zt_app *)arg)->cfg);
}

static json_t *section_xds(void *arg)
{
	struct zt_app *app = arg;
	return app->xds ? zt_xds_client_json(app->xds) : json_null();
}

static void live_one(const struct zt_live *l, void *arg)
{
	json_object_set_new(
	        arg, l->name,
	        json_pack("{s:I, s:I}", "live", (json_int_t)l->count, "peak", (json_int_t)l->peak));
}

static json_t *section_live(void *arg)
{
	json_t *o = json_object();
	(void)arg;
	zt_live_foreach(live_one, o);
	return o;
}

static json_t *section_version(void *arg)
{
	(void)arg;
	return json_pack("{s:s, s:s}", "component", "ztunnel", "version", ZT_VERSION);
}

/* Prometheus text on /metrics and /stats/prometheus (spec §8.1). */
static void on_metrics(const struct zt_http_request *req, struct zt_http_response *resp, void *arg)
{
	struct zt_app *app = arg;

	(void)req;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	if ((app->dp ? zt_dataplane_render_metrics(app->dp, &resp->body)
	             : zt_metrics_render(app->metrics, &resp->body)) < 0)
		resp->status = 500;
}

/* ---- drain (spec §14) ------------------------------------------------------------------- */

/* Connections the drain waits for: every workload proxy's. */
static size_t open_conns(const struct zt_app *app)
{
	if (app->pods)
		return zt_podmgr_open(app->pods);
	return app->dedicated ? zt_proxy_group_open(app->dedicated) : 0;
}

static void drain_check(struct zt_timer *t, void *arg)
{
	struct zt_app *app = arg;
	uint64_t now = zt_loop_now(app->loop), left;

	(void)t;
	switch (zt_drain_check(&app->drain, now, open_conns(app))) {
	case ZT_DRAIN_FINISHED:
	case ZT_DRAIN_EXPIRED:
		zt_loop_stop(app->loop);
		return;
	default:
		break;
	}
	left = zt_drain_remaining(&app->drain, now);
	zt_timer_start(app->loop, &app->drain_timer, left < DRAIN_POLL_MS ? left : DRAIN_POLL_MS,
	               drain_check, app);
}

/* Every listener closes at once; servers keep their open connections, proxies their
 * tunnels; the node agent's connection closes without a word (spec §14, §15 step 4). */
static void drain_begin(struct zt_defer *d, void *arg)
{
	struct zt_app *app = arg;

	(void)d;
	zt_admin_quiesce(app->admin);
	zt_http_server_quiesce(app->stats);
	zt_ready_quiesce(app->ready);
	zt_zds_free(app->zds);
	app->zds = NULL;
	if (app->pods)
		zt_podmgr_drain(app->pods);
	zt_proxy_group_drain(app->dedicated);
	drain_check(NULL, app);
}

/* Returns whether this trigger started the drain. */
static bool trigger(struct zt_app *app, enum zt_drain_trigger t)
{
	uint64_t now = zt_loop_now(app->loop);
	size_t open = open_conns(app);

	switch (zt_drain_on_trigger(&app->drain, t, now, open)) {
	case ZT_DRAIN_START:
		zt_info("draining on %s: listeners closed, %zu connections open, deadline %llu ms",
		        zt_drain_trigger_name(t), open, (unsigned long long)app->drain.deadline_ms);
		zt_defer_start(app->loop, &app->drain_defer, drain_begin, app);
		return true;
	case ZT_DRAIN_EXIT_NOW:
		zt_warn("second SIGINT: exiting at once with %zu connections open", open);
		fflush(NULL);
		_exit(0);
	default:
		zt_info("%s while already shutting down: ignored, %llu ms of the drain left",
		        zt_drain_trigger_name(t),
		        (unsigned long long)zt_drain_remaining(&app->drain, now));
		return false;
	}
}

static bool on_quit(void *arg)
{
	return trigger(arg, ZT_DRAIN_QUIT);
}

static void on_signal(struct zt_signal *s, int signo, void *arg)
{
	(void)s;
	trigger(arg, signo == SIGINT ? ZT_DRAIN_SIGINT : ZT_DRAIN_SIGTERM);
}

/* Closes every workload proxy now (their connections with them) and lets the closes report. */
static void close_proxies(struct zt_app *app)
{
	zt_zds_free(app->zds);
	app->zds = NULL;
	zt_podmgr_free(app->pods);
	app->pods = NULL;
	zt_proxy_group_free(app->dedicated);
	app->dedicated = NULL;
	zt_dataplane_free(app->dp); /* workers joined: what they posted here runs below */
	app->dp = NULL;
	for (int i = 0; i < 4; i++) /* let aborted relays report their close */
		zt_loop_run_once(app->loop, 0);
}

/* ---- start-up checks -------------------------------------------------------------------- */

/* As the reference does: the soft open-file limit goes up to the hard one. */
static void raise_nofile(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		zt_warn("open files limit: getrlimit: %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur == rl.rlim_max) {
		zt_info("open files limit: %llu (already the hard limit)",
		        (unsigned long long)rl.rlim_cur);
		return;
	}
	was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		zt_warn("open files limit: cannot raise %llu to %llu: %s", (unsigned long long)was,
		        (unsigned long long)rl.rlim_max, strerror(errno));
	else
		zt_info("open files limit raised from %llu to %llu", (unsigned long long)was,
		        (unsigned long long)rl.rlim_max);
}

static void warn_settings(const struct zt_config *cfg)
{
	char names[1024];

	if (zt_config_unsupported(cfg, names, sizeof(names), NULL))
		zt_warn("settings not supported by this ztunnel, ignored: %s", names);
}

static const char *build_tag(const struct zt_config *cfg)
{
	return cfg->istio_version && *cfg->istio_version ? cfg->istio_version : ZT_VERSION;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

struct zt_app *zt_app_new(struct zt_loop *loop, const struct zt_config *cfg, char *err,
                          size_t errlen)
{
	struct zt_app *app = xcalloc(1, sizeof(*app));
	char addr[ZT_ADDR_STRLEN];
	int rc;

	app->loop = loop;
	app->cfg = cfg;
	raise_nofile();
	warn_settings(cfg);
	app->store = zt_store_new();
	app->ready = zt_ready_new();
	zt_ready_add(app->ready, TASK_STATE);

	zt_addr_format(&cfg->admin, addr, sizeof(addr));
	if (!(app->admin = zt_admin_new(loop, addr, err, errlen)))
		goto fail;
	zt_admin_add_section(app->admin, "version", section_version, app);
	zt_admin_add_section(app->admin, "config", section_config, app);
	zt_admin_add_section_writer(app->admin, "workloads", section_workloads, app);
	zt_admin_add_section_writer(app->admin, "services", section_services, app);
	zt_admin_add_section_writer(app->admin, "policies", section_policies, app);
	zt_admin_add_section(app->admin, "stateCounts", section_counts, app);
	zt_admin_add_section(app->admin, "xds", section_xds, app);
	zt_admin_add_section(app->admin, "certificates", section_certs, app);
	zt_admin_add_section(app->admin, "certificateManager", section_certmgr, app);
	zt_admin_add_section(app->admin, "workloadState", section_workload_state, app);
	zt_admin_add_section(app->admin, "workloadProxies", section_proxies, app);
	zt_admin_add_section(app->admin, "zds", section_zds, app);
	zt_admin_add_section(app->admin, "live", section_live, app);
	zt_admin_set_stop(app->admin, on_quit, app);
	app->metrics = zt_metrics_new(build_tag(cfg), 0);
	zt_addr_format(&cfg->stats, addr, sizeof(addr));
	if (!(app->stats = zt_http_server_new(loop, addr, err, errlen)))
		goto fail;
	zt_http_route(app->stats, "GET", "/metrics", on_metrics, app);
	zt_http_route(app->stats, "GET", "/stats/prometheus", on_metrics, app);
	zt_addr_format(&cfg->readiness, addr, sizeof(addr));
	if ((rc = zt_ready_serve(app->ready, loop, addr, err, errlen)) < 0)
		goto fail;

	/* Certificates before state, so the first workloads already prefetch. */
	if ((rc = start_certs(app, err, errlen)) < 0)
		goto fail;
	if ((cfg->local_xds_path && *cfg->local_xds_path) || (cfg->local_xds && *cfg->local_xds)) {
		if ((rc = load_local(app, err, errlen)) < 0)
			goto fail;
		zt_ready_done(app->ready, TASK_STATE);
	} else if (cfg->xds.enabled) {
		/* The first sync before the local workloads' certificates (see xds_synced). */
		if (app->certs)
			zt_certmgr_hold(app->certs, true);
		if ((rc = start_xds(app, err, errlen)) < 0)
			goto fail;
	} else {
		zt_warn("no state source: XDS_ADDRESS is empty and no local config is given");
		zt_ready_done(app->ready, TASK_STATE);
	}
	app->proxy_ctx = (struct zt_proxy_ctx){.loop = loop, .store = app->store, .certs = app->certs,
	                                       .metrics = app->metrics};
	zt_proxy_settings_from_config(&app->proxy_ctx.set, cfg);
	if ((rc = zt_dataplane_new(&app->dp, &app->proxy_ctx, (size_t)cfg->worker_threads,
	                           build_tag(cfg))) < 0) {
		snprintf(err, errlen, "ZTUNNEL_WORKER_THREADS=%lld: cannot start the workers: %s",
		         (long long)cfg->worker_threads, zt_strerror(rc));
		goto fail;
	}
	if (cfg->proxy_mode == ZT_PROXY_DEDICATED) {
		if ((rc = zt_proxy_group_new(&app->dedicated, app->dp, cfg->workload_info.ns,
		                             cfg->workload_info.name, cfg->workload_info.sa, NULL,
		                             NULL, err, errlen)) < 0)
			goto fail;
	} else if ((rc = start_inpod(app, err, errlen)) < 0) {
		goto fail;
	}
	zt_drain_init(&app->drain, cfg->termination_deadline_ms);
	zt_signal_start(loop, &app->sigterm, SIGTERM, on_signal, app);
	zt_signal_start(loop, &app->sigint, SIGINT, on_signal, app);
	zt_memtrim_start(&app->memtrim, loop, 0, 0);
	return app;
fail:
	zt_app_free(app);
	return NULL;
}

void zt_app_stop(struct zt_app *app)
{
	trigger(app, ZT_DRAIN_SIGTERM);
}

int zt_app_run(struct zt_app *app)
{
	const struct zt_drain *d = &app->drain;
	int rc = zt_loop_run(app->loop);

	if (rc < 0)
		return rc;
	if (d->state == ZT_DRAIN_DONE) {
		size_t left = d->open_at_end;
		close_proxies(app);
		zt_info("drained in %llu ms: %zu of %zu connections ended on their own, %zu closed "
		        "at the deadline; exiting",
		        (unsigned long long)(zt_loop_now(app->loop) - d->started_ms),
		        d->open_at_start >= left ? d->open_at_start - left : 0, d->open_at_start,
		        left);
	}
	return 0;
}

void zt_app_free(struct zt_app *app)
{
	if (!app)
		return;
	zt_signal_stop(&app->sigterm);
	zt_signal_stop(&app->sigint);
	zt_memtrim_stop(&app->memtrim);
	zt_timer_stop(&app->drain_timer);
	zt_defer_stop(&app->drain_defer);
	close_proxies(app);
	zt_xds_client_free(app->xds);
	if (app->certs)
		zt_store_unwatch(app->store, on_store_event, app);
	zt_certmgr_free(app->certs);
	zt_ca_client_free(app->ca_client);
	zt_cert_local_free(app->cert_local);
	zt_ca_free(app->ca);
	if (app->fake_ca_dir[0]) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", app->fake_ca_dir, ZT_CA_ROOT_CERT);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s", app->fake_ca_dir, ZT_CA_ROOT_KEY);
		unlink(path);
		rmdir(app->fake_ca_dir);
	}
	zt_admin_free(app->admin);
	zt_http_server_free(app->stats);
	zt_ready_free(app->ready);
	for (int i = 0; i < 4; i++)
		zt_loop_run_once(app->loop, 0);
	zt_store_free(app->store);
	zt_metrics_free(app->metrics);
	free(app->xds_md);
	free(app->xds_roots);
	free(app->ca_md);
	free(app->ca_roots);
	free(app);
}
