/* sim-waypoint: a waypoint proxy for the lab (spec §18). Wiring only: options, the CA
 * certificate, the xDS view, the HBONE listener on 15008 (sessions in session.c), the
 * upstream HBONE pool and the metrics endpoint, in that order; SIGTERM/SIGINT stop it. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/grpc.h"
#include "protocol/h2_listener.h"
#include "hbone/pool.h"
#include "runtime/duration.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "sim/sim-waypoint/metrics.h"
#include "sim/sim-waypoint/session.h"
#include "sim/sim-waypoint/wp.h"
#include "state/store.h"

ZT_LOG_MODULE("waypoint");

static const char usage[] =
        "usage: sim-waypoint --namespace NS --name GATEWAY --ip POD_IP --istiod HOST:PORT\n"
        "                    --roots FILE --token FILE [--service-account SA]\n"
        "                    [--listen ADDR] [--metrics ADDR] [--trust-domain TD]\n"
        "                    [--sniff-timeout DURATION]\n"
        "\n"
        "Serves HBONE on --listen (default 0.0.0.0:15008) as the waypoint of Gateway NS/GATEWAY\n"
        "with the identity spiffe://TD/ns/NS/sa/SA (SA defaults to GATEWAY) signed by the CA at\n"
        "--istiod with --token, and gets its services, workloads and policies from the same\n"
        "address over delta xDS. HTTP/1.1 requests are authorized one by one; other traffic at\n"
        "L4. Prometheus metrics on --metrics (default 127.0.0.1:15020, GET /metrics).\n";

static struct {
	struct wp wp;
	struct zt_tls_server *tls;
	struct zt_h2_listener *l;
	struct zt_signal sigterm, sigint;
} M;

static void on_request(struct zt_h2_conn *c, struct zt_h2_stream *st, const struct zt_h2_header *h,
                       size_t n, bool end, void *arg)
{
	(void)end;
	wp_session_on_request(arg, c, st, h, n);
}

static const struct zt_h2_conn_cbs conn_cbs = {.on_request = on_request};

/* A new certificate: the first one opens the listener, later ones serve new handshakes. */
static void on_identity(struct wp *wp)
{
	char err[256];
	int rc;

	if (M.tls) {
		zt_tls_server_set_identity(M.tls, wp->id);
		return;
	}
	if ((rc = zt_tls_server_new(&M.tls, wp->id, NULL)) < 0) {
		zt_error("TLS server: %s", zt_strerror(rc));
		zt_loop_stop(wp->loop);
		return;
	}
	struct zt_h2_listener_opts lo = {.tls = M.tls, .cbs = &conn_cbs, .arg = wp};
	zt_h2_settings_default(&lo.settings, true);
	lo.settings.max_streams = 100; /* spec §18 */
	if ((rc = zt_h2_listener_new(&M.l, wp->loop, wp->o.listen, &lo, err, sizeof(err))) < 0) {
		zt_error("HBONE listener: %s", err);
		zt_loop_stop(wp->loop);
		return;
	}
	zt_info("waypoint %s/%s serving HBONE on %s as %s", wp->o.ns, wp->o.name, wp->o.listen,
	        wp->self_text);
}

static void on_signal(struct zt_signal *s, int signo, void *arg)
{
	(void)s;
	(void)arg;
	zt_info("signal %d: stopping", signo);
	zt_loop_stop(M.wp.loop);
}

static void die_usage(const char *what)
{
	fprintf(stderr, "sim-waypoint: %s\n%s", what, usage);
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"namespace", required_argument, NULL, 'n'},
	        {"name", required_argument, NULL, 'g'},
	        {"service-account", required_argument, NULL, 's'},
	        {"ip", required_argument, NULL, 'i'},
	        {"istiod", required_argument, NULL, 'x'},
	        {"roots", required_argument, NULL, 'r'},
	        {"token", required_argument, NULL, 't'},
	        {"listen", required_argument, NULL, 'l'},
	        {"metrics", required_argument, NULL, 'm'},
	        {"trust-domain", required_argument, NULL, 'd'},
	        {"sniff-timeout", required_argument, NULL, 'S'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct wp *wp = &M.wp;
	struct zt_pool_opts po;
	int opt, rc;

	wp->o.listen = "0.0.0.0:15008";
	wp->o.metrics = "127.0.0.1:15020";
	wp->o.trust_domain = "cluster.local";
	wp->o.sniff_ms = 1000;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			wp->o.ns = optarg;
			break;
		case 'g':
			wp->o.name = optarg;
			break;
		case 's':
			wp->o.sa = optarg;
			break;
		case 'i':
			wp->o.pod_ip = optarg;
			break;
		case 'x':
			wp->o.istiod = optarg;
			break;
		case 'r':
			wp->o.roots = optarg;
			break;
		case 't':
			wp->o.token = optarg;
			break;
		case 'l':
			wp->o.listen = optarg;
			break;
		case 'm':
			wp->o.metrics = optarg;
			break;
		case 'd':
			wp->o.trust_domain = optarg;
			break;
		case 'S':
			if (zt_duration_parse(optarg, &wp->o.sniff_ms) < 0)
				die_usage("bad --sniff-timeout: want a duration such as 1s");
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			die_usage("unknown flag");
		}
	}
	if (optind < argc)
		die_usage("unexpected argument");
	if (!wp->o.ns || !wp->o.name || !wp->o.pod_ip || !wp->o.istiod || !wp->o.roots ||
	    !wp->o.token)
		die_usage("--namespace, --name, --ip, --istiod, --roots and --token are required");
	if (!wp->o.sa)
		wp->o.sa = wp->o.name;
	if (zt_ip_parse(&wp->pod_ip, wp->o.pod_ip, strlen(wp->o.pod_ip)) < 0)
		die_usage("bad --ip: want an IP address");
	if (zt_spiffe_set(&wp->self, wp->o.trust_domain, wp->o.ns, wp->o.sa) < 0)
		die_usage("namespace, service account and trust domain make no SPIFFE ID");
	zt_spiffe_format(&wp->self, wp->self_text, sizeof(wp->self_text));
	snprintf(wp->host, sizeof(wp->host), "%s.%s.svc.cluster.local", wp->o.name, wp->o.ns);

	signal(SIGPIPE, SIG_IGN);
	if ((rc = zt_loop_new(&wp->loop)) < 0)
		goto fail;
	wp->store = zt_store_new();
	zt_pool_opts_default(&po);
	if ((rc = zt_pool_new(&wp->pool, wp->loop, &po)) < 0)
		goto fail;
	if ((rc = wp_metrics_new(&wp->metrics, wp->loop, wp->o.metrics)) < 0) {
		zt_error("metrics on %s: %s", wp->o.metrics, zt_strerror(rc));
		goto fail;
	}
	if ((rc = wp_config_start(wp)) < 0) {
		zt_error("xDS: %s", zt_strerror(rc));
		goto fail;
	}
	if ((rc = wp_cert_start(wp, on_identity)) < 0) {
		zt_error("CA client: %s", zt_strerror(rc));
		goto fail;
	}
	zt_signal_start(wp->loop, &M.sigterm, SIGTERM, on_signal, NULL);
	zt_signal_start(wp->loop, &M.sigint, SIGINT, on_signal, NULL);
	zt_loop_run(wp->loop);
	rc = 0;
fail:
	if (rc < 0)
		zt_error("sim-waypoint: %s", zt_strerror(rc));
	zt_signal_stop(&M.sigterm);
	zt_signal_stop(&M.sigint);
	zt_h2_listener_free(M.l);
	wp_cert_stop(wp);
	wp_config_stop(wp);
	zt_pool_free(wp->pool);
	/* Let closing connections, calls and sessions finish before freeing what they use. */
	for (int i = 0; wp->loop && i < 4; i++)
		zt_loop_run_once(wp->loop, 0);
	for (int i = 0;
	     wp->loop && i < 50 && (zt_h2_conn_live() || zt_grpc_call_live() || wp_session_live());
	     i++)
		zt_loop_run_once(wp->loop, 20);
	for (int i = 0; wp->loop && i < 4; i++)
		zt_loop_run_once(wp->loop, 0);
	zt_tls_server_free(M.tls);
	wp_metrics_free(wp->metrics);
	zt_store_free(wp->store);
	zt_tls_identity_unref(wp->id);
	zt_loop_free(wp->loop);
	return rc < 0 ? 1 : 0;
}
