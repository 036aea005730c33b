/* fake-istiod: a CA and delta-xDS server fed by Kubernetes-style YAML.
 *   serve  load manifests, serve CreateCertificate and DeltaAggregatedResources over TLS,
 *          reload on file change or SIGHUP and push only the difference
 *   check  print the xDS resources the manifests turn into
 *   token  mint a bearer token the server accepts
 * A reload that fails keeps the last good state: the old resources stay in the ADS sets and
 * the old mesh keeps answering the CA's node checks until a new one converts cleanly. Files
 * are parsed and converted on a thread of their own, so serving never waits for a reload;
 * only the swap happens on the loop. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fake-istiod/ads.h"
#include "fake-istiod/ca_service.h"
#include "fake-istiod/convert.h"
#include "fake-istiod/dump.h"
#include "fake-istiod/generate.h"
#include "fake-istiod/mesh.h"
#include "fake-istiod/token.h"
#include "fake-istiod/waypoint.h"
#include "protocol/ca.h"
#include "protocol/h2_listener.h"
#include "runtime/addr.h"
#include "runtime/duration.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "runtime/memtrim.h"

ZT_LOG_MODULE("istiod");

#define TYPE_ADDRESS       "type.googleapis.com/istio.workload.Address"
#define TYPE_AUTHORIZATION "type.googleapis.com/istio.security.Authorization"
#define MAX_FILES          4096
#define MAX_SANS           16

struct opts {
	const char *files[MAX_FILES];
	size_t nfiles;
	const char *addresses;
	const char *listen;
	const char *ca_dir;
	const char *trust_domain;
	const char *cluster_id;
	const char *root_ns;
	const char *trusted;
	const char *sans[MAX_SANS];
	size_t nsans;
	const char *bad_resource; /* --fault bad-resource=NAME */
	const char *format;
	const char *node, *ns, *sa;
	uint64_t cert_ttl_ms, min_cert_ttl_ms, token_ttl_ms;
	uint64_t max_yaml_bytes;
	size_t max_yaml_nodes;
};

static void usage(FILE *f)
{
	fprintf(f, "usage:\n"
	           "  fake-istiod serve --config FILE... --ca-dir DIR [--addresses FILE]\n"
	           "                    [--listen ADDR:PORT] [--cert-ttl DUR] [--min-cert-ttl DUR]\n"
	           "                    [--trust-domain TD]\n"
	           "                    [--cluster-id ID] [--root-namespace NS]\n"
	           "                    [--trusted-account NS/SA[,NS/SA]] [--san NAME|IP]...\n"
	           "                    [--fault bad-resource=NAME] [--log SPEC] [--log-format F]\n"
	           "                    [--max-yaml-bytes SIZE] [--max-yaml-nodes N]\n"
	           "  fake-istiod check --config FILE... [--addresses FILE] [--trust-domain TD]\n"
	           "                    [--format json|yaml] [--max-yaml-bytes SIZE]\n"
	           "                    [--max-yaml-nodes N]\n"
	           "  fake-istiod token --ca-dir DIR --node NODE --namespace NS\n"
	           "                    --service-account SA [--ttl DUR]\n"
	           "  fake-istiod generate [--pods N] [--namespaces N] ... (generate --help)\n"
	           "\n"
	           "serve listens on 127.0.0.1:15012 by default, with a serving certificate for\n"
	           "istiod.istio-system.svc and the listen address signed by the root in --ca-dir\n"
	           "(created on first start; clients trust DIR/root-cert.pem). Manifests are\n"
	           "re-read when they change or on SIGHUP; only what changed is pushed.\n"
	           "--addresses names a file of \"namespace/pod IP[,IP]\" lines for pods without\n"
	           "status.podIP. --cert-ttl caps issued lifetimes (24h), --min-cert-ttl raises\n"
	           "shorter requests (10m). Durations: 30s, 10m, 24h.\n"
	           "Input bounds: --max-yaml-bytes caps each --config file and the --addresses\n"
	           "file (default 1GiB, 1KiB..64GiB; e.g. 512MiB, 2GiB); --max-yaml-nodes caps\n"
	           "the YAML nodes of one document (default 1000000, 16..1000000000). Files are\n"
	           "read one document at a time, so a mesh of 1,000,000 pods (about 270 MB, one\n"
	           "document per object) fits the defaults; a \"kind: List\" is one document.\n");
}

__attribute__((format(printf, 1, 2))) static int die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fake-istiod: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	return 2;
}

/* ---- shared pieces ---------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The mesh of o's files into mesh and its resources into res. With cache, unchanged files
 * are not read again; with prev (the resources of prev_mesh, names and versions at least),
 * a change of pods only converts what it touches (fi_convert_update). */
static int load(const struct opts *o, struct fi_mesh_cache *cache, const struct fi_mesh *prev_mesh,
                struct fi_resources *prev, struct fi_mesh *mesh, struct fi_resources *res,
                const atomic_bool *cancel, char *err, size_t errlen)
{
	struct fi_mesh_opts mo = {.addresses_file = o->addresses,
	                          .max_yaml_bytes = o->max_yaml_bytes,
	                          .max_yaml_nodes = o->max_yaml_nodes,
	                          .cancel = cancel,
	                          .cache = cache};
	size_t parsed, reused;
	struct fi_convert_opts co = {.trust_domain = o->trust_domain,
	                             .cluster_id = o->cluster_id,
	                             .root_namespace = o->root_ns};
	int rc;

	double t0 = now_s(), t1;

	memset(mesh, 0, sizeof(*mesh));
	memset(res, 0, sizeof(*res));
	if ((rc = fi_mesh_load(mesh, o->files, o->nfiles, &mo, err, errlen)) < 0)
		return rc;
	t1 = now_s();
	if ((rc = fi_convert_update(mesh, prev_mesh, prev, &co, res, err, errlen)) < 0) {
		fi_mesh_clear(mesh);
		return rc;
	}
	fi_mesh_cache_stats(cache, &parsed, &reused);
	zt_info("loaded %zu pods and %zu services from %zu files (%zu read, %zu unchanged) in "
	        "%.3f s, converted in %.3f s (%s)",
	        mesh->n_pods, mesh->n_services, mesh->n_files, cache ? parsed : mesh->n_files,
	        reused, t1 - t0, now_s() - t1, rc == 1 ? "changed pods only" : "in full");
	return 0;
}

/* ---- serve ------------------------------------------------------------------------------ */

struct server {
	const struct opts *o;
	struct zt_loop *loop;
	struct fi_mesh mesh; /* the last good one, used by the CA's node checks */
	/* What mesh converted to and was published (names and versions; the bytes are stripped
	 * after each push), the base of the next reload's conversion; none after a failed
	 * publish. Read and changed by the reload thread only while a reload runs. */
	struct fi_resources res;
	bool res_valid;
	struct fi_mesh_cache *cache; /* files as parsed, used by the reload thread only */
	struct fi_ads *ads;
	struct zt_ca *ca;
	struct fi_token_key *key;
	struct fi_ca_service ca_svc;
	struct zt_grpc_method methods[2];
	struct zt_grpc_server grpc;
	struct zt_tls_server *tls;
	struct zt_h2_listener *listener;
	struct zt_signal sighup, sigterm, sigint;
	struct zt_io inotify;
	struct zt_timer reload_timer;
	struct zt_memtrim trim; /* the old mesh and resources freed after a reload go back */
	unsigned generation;
	/* The reload in progress: job is written by the thread only until it signals done. */
	struct {
		pthread_t thread;
		bool running, again;
		const char *why;
		int done_fd; /* eventfd the thread writes when job is complete */
		struct zt_io done;
		struct fi_mesh mesh;
		struct fi_resources res;
		char err[512];
		int rc;
		/* After a reload, the previous mesh and the job's resources are freed on a
		 * defer that runs once the push has been written to the sockets. */
		bool cleaning;
		struct zt_defer cleanup;
		struct fi_mesh old;
		struct fi_resources old_res;
		atomic_bool cancel; /* set at shutdown: the loader stops at its next document */
	} job;
};

static bool has_pod_on_node(void *arg, const char *node, const char *ns, const char *sa)
{
	struct server *s = arg;
	return fi_mesh_has_pod_on_node(&s->mesh, node, ns, sa);
}

/* The injected fault: an Address resource whose bytes are not an Address. */
static void add_fault(const struct opts *o, struct fi_resource **v, size_t *n)
{
	static uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};

	if (!o->bad_resource)
		return;
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (struct fi_resource){(char *)o->bad_resource, (char *)"bad", garbage,
	                                    sizeof(garbage)};
}

/* Sets what res holds and records in it the ADS set's copies (res->addresses[k].held), the
 * hints that let the next publish skip comparing what did not change. */
static int publish(struct server *s, struct fi_resources *res)
{
	struct fi_resource *addrs = res->addresses;
	const void **held = xmalloc((res->n_addresses + 1) * sizeof(*held));
	size_t n = res->n_addresses;
	int a, z;

	if (s->o->bad_resource) {
		addrs = xmalloc((n + 1) * sizeof(*addrs));
		memcpy(addrs, res->addresses, n * sizeof(*addrs));
		add_fault(s->o, &addrs, &n);
	}
	a = fi_ads_set_hinted(s->ads, TYPE_ADDRESS, addrs, n, held);
	for (size_t k = 0; a >= 0 && k < res->n_addresses; k++)
		res->addresses[k].held = held[k];
	free(held);
	if (addrs != res->addresses)
		free(addrs);
	if (a < 0)
		return a;
	z = fi_ads_set(s->ads, TYPE_AUTHORIZATION, res->authorizations, res->n_authorizations);
	if (z < 0)
		return z;
	int w = fi_ads_set(s->ads, FI_WAYPOINT_TYPE, res->waypoints, res->n_waypoints);
	if (w < 0)
		return w;
	/* A reconnecting client names every resource it holds. */
	s->grpc.max_msg = fi_ads_set_resources(s->ads, res->n_addresses + res->n_authorizations +
	                                                       res->n_waypoints);
	zt_info("serving %zu addresses, %zu authorizations and %zu waypoints (%d changed)",
	        res->n_addresses, res->n_authorizations, res->n_waypoints, a + z + w);
	return 0;
}

static void *reload_thread(void *arg)
{
	struct server *s = arg;
	uint64_t one = 1;

	s->job.rc = load(s->o, s->cache, &s->mesh, s->res_valid ? &s->res : NULL, &s->job.mesh,
	                 &s->job.res, &s->job.cancel, s->job.err, sizeof(s->job.err));
	if (write(s->job.done_fd, &one, sizeof(one)) != sizeof(one))
		abort();
	return NULL;
}

/* Starts a reload on its own thread; one already running is followed by another. */
static void reload(struct server *s, const char *why)
{
	int rc;

	if (s->job.running || s->job.cleaning) {
		s->job.again = true;
		return;
	}
	s->job.why = why;
	s->job.err[0] = '\0';
	if ((rc = pthread_create(&s->job.thread, NULL, reload_thread, s)) != 0) {
		zt_error("reload after %s: cannot start a thread: %s", why, strerror(rc));
		return;
	}
	s->job.running = true;
}

static void reload_cleanup(struct server *s)
{
	fi_mesh_recycle(&s->job.old, s->cache);
	fi_resources_clear(&s->job.old_res);
	fi_resources_clear(&s->job.res);
	fi_resources_strip(&s->res);
	s->job.cleaning = false;
}

static void on_reload_cleanup(struct zt_defer *d, void *arg)
{
	struct server *s = arg;

	(void)d;
	reload_cleanup(s);
	zt_memtrim_check(&s->trim);
	if (s->job.again) {
		s->job.again = false;
		reload(s, "a change during the last reload");
	}
}

static void on_reload_done(struct zt_io *io, unsigned events, void *arg)
{
	struct server *s = arg;
	const char *why = s->job.why;
	uint64_t v;
	int rc;

	(void)events;
	if (read(io->fd, &v, sizeof(v)) != sizeof(v) || !s->job.running)
		return;
	pthread_join(s->job.thread, NULL);
	s->job.running = false;
	if (s->job.rc < 0) {
		zt_error("reload after %s failed, still serving the last good config: %s", why,
		         s->job.err);
	} else if ((rc = publish(s, &s->job.res)) < 0) {
		zt_error("reload after %s failed, still serving the last good config: %s", why,
		         zt_strerror(rc));
		fi_mesh_clear(&s->job.mesh);
		/* The conversion may have taken from res: the next one starts afresh. */
		s->job.old_res = s->res;
		memset(&s->res, 0, sizeof(s->res));
		s->res_valid = false;
	} else {
		/* Push first: freeing the previous mesh and resources takes longer than the
		 * difference does to send, so that waits for a defer started after the
		 * connections' flushes. */
		s->job.old = s->mesh;
		s->mesh = s->job.mesh;
		memset(&s->job.mesh, 0, sizeof(s->job.mesh));
		s->job.old_res = s->res;
		s->res = s->job.res;
		s->res_valid = true;
		memset(&s->job.res, 0, sizeof(s->job.res));
		s->generation++;
		zt_info("reloaded after %s (generation %u)", why, s->generation);
		fi_ads_push_now(s->ads);
	}
	s->job.cleaning = true;
	zt_defer_start(s->loop, &s->job.cleanup, on_reload_cleanup, s);
}

static void on_reload_timer(struct zt_timer *t, void *arg)
{
	(void)t;
	reload(arg, "file change");
}

/* How long after the last change to a watched file the reload starts. A file renamed into
 * place or closed after writing is complete: a short settle only gathers a burst of them (a
 * generator or `kubectl`-like tool replacing several files). A file created or deleted is
 * mid-way (its content or its replacement still to come): the longer settle of editors
 * that write in several steps; their final close or rename comes within it and shortens it. */
#define SETTLE_COMPLETE_MS 10
#define SETTLE_PARTIAL_MS  200

static bool watched(const struct server *s, const char *name)
{
	for (size_t i = 0; i < s->o->nfiles; i++) {
		const char *base = strrchr(s->o->files[i], '/');
		if (!strcmp(name, base ? base + 1 : s->o->files[i]))
			return true;
	}
	if (s->o->addresses) {
		const char *base = strrchr(s->o->addresses, '/');
		return !strcmp(name, base ? base + 1 : s->o->addresses);
	}
	return false;
}

static void on_inotify(struct zt_io *io, unsigned events, void *arg)
{
	struct server *s = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false, partial = false;
	ssize_t n;

	(void)events;
	while ((n = read(io->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			/* Watches are on directories: only our files matter. */
			if (ev->len && watched(s, ev->name)) {
				relevant = true;
				/* The last word on a file counts: created then closed is complete. */
				partial = (ev->mask & (IN_CREATE | IN_DELETE)) != 0;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	if (relevant)
		zt_timer_start(s->loop, &s->reload_timer,
		               partial ? SETTLE_PARTIAL_MS : SETTLE_COMPLETE_MS, on_reload_timer, s);
}

static void watch_dir_of(int fd, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) ? (int)(slash - path) : 1,
		         path);
	if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0)
		zt_warn("cannot watch %s for changes: %s (SIGHUP still reloads)", dir,
		        strerror(errno));
}

static void on_signal(struct zt_signal *sig, int signo, void *arg)
{
	struct server *s = arg;

	(void)sig;
	if (signo == SIGHUP) {
		reload(s, "SIGHUP");
		return;
	}
	zt_info("stopping on signal %d", signo);
	zt_loop_stop(s->loop);
}

static int serving_tls(struct server *s, char *err, size_t errlen)
{
	const char *dns[MAX_SANS + 2] = {"istiod.istio-system.svc", "localhost"};
	const char *ips[MAX_SANS + 2];
	size_t ndns = 2, nips = 0;
	char host[ZT_ADDR_STRLEN];
	struct zt_sockaddr la;
	char *cert = NULL, *key = NULL;
	int rc;

	if (zt_addr_parse(&la, s->o->listen, strlen(s->o->listen), ZT_ADDR_PORT0_OK) < 0) {
		snprintf(err, errlen, "--listen %s: expected ip:port", s->o->listen);
		return ZT_E_PARSE;
	}
	zt_ip_format(&la.ip, host, sizeof(host));
	if (zt_ip_is_unspecified(&la.ip)) {
		ips[nips++] = "127.0.0.1";
		ips[nips++] = "::1";
	} else {
		ips[nips++] = host;
	}
	for (size_t i = 0; i < s->o->nsans; i++) {
		struct zt_ip ip;
		if (zt_ip_parse(&ip, s->o->sans[i], strlen(s->o->sans[i])) == 0)
			ips[nips++] = s->o->sans[i];
		else
			dns[ndns++] = s->o->sans[i];
	}
	rc = zt_ca_issue(s->ca, dns, ndns, ips, nips, NULL, 365 * 86400, &cert, &key, err, errlen);
	if (rc < 0)
		return rc;
	rc = zt_tls_cp_server_new(&s->tls, cert, strlen(cert), key, strlen(key), NULL);
	if (rc < 0)
		snprintf(err, errlen, "serving certificate: %s", zt_strerror(rc));
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	return rc;
}

static void grpc_request(struct zt_h2_conn *c, struct zt_h2_stream *st,
                         const struct zt_h2_header *h, size_t n, bool end, void *arg)
{
	zt_grpc_server_on_request(c, st, h, n, end, arg);
}

static const struct zt_h2_conn_cbs grpc_cbs = {.on_request = grpc_request};

static int serve(const struct opts *o)
{
	struct server s = {.o = o};
	char err[512];
	int rc, ifd;

	signal(SIGPIPE, SIG_IGN);
	s.cache = fi_mesh_cache_new();
	if ((rc = zt_loop_new(&s.loop)) < 0) {
		fprintf(stderr, "fake-istiod: event loop: %s\n", zt_strerror(rc));
		return 1;
	}
	if ((rc = zt_ca_open(&s.ca, o->ca_dir, true, err, sizeof(err))) < 0 ||
	    (rc = fi_token_key_open(&s.key, o->ca_dir, err, sizeof(err))) < 0 ||
	    (rc = serving_tls(&s, err, sizeof(err))) < 0 ||
	    (rc = load(o, s.cache, NULL, NULL, &s.mesh, &s.res, NULL, err, sizeof(err))) < 0) {
		fprintf(stderr, "fake-istiod: %s\n", err);
		goto out;
	}
	s.ads = fi_ads_new(s.loop);
	rc = publish(&s, &s.res);
	fi_resources_strip(&s.res);
	s.res_valid = true;
	if (rc < 0) {
		fprintf(stderr, "fake-istiod: cannot serve the resources: %s\n", zt_strerror(rc));
		goto out;
	}
	s.ca_svc = (struct fi_ca_service){.ca = s.ca,
	                                  .key = s.key,
	                                  .trust_domain = o->trust_domain,
	                                  .max_ttl_s = (int64_t)(o->cert_ttl_ms / 1000),
	                                  .min_ttl_s = (int64_t)(o->min_cert_ttl_ms / 1000),
	                                  .trusted_accounts = o->trusted,
	                                  .has_pod_on_node = has_pod_on_node,
	                                  .arg = &s};
	s.methods[0] = fi_ads_method(s.ads);
	s.methods[1] = fi_ca_service_method(&s.ca_svc);
	s.grpc = (struct zt_grpc_server){s.methods, 2, FI_ADS_MAX_REQUEST};
	struct zt_h2_listener_opts lo = {.tls = s.tls, .cbs = &grpc_cbs, .arg = &s.grpc};
	if ((rc = zt_h2_listener_new(&s.listener, s.loop, o->listen, &lo, err, sizeof(err))) < 0) {
		fprintf(stderr, "fake-istiod: %s\n", err);
		goto out;
	}
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd >= 0) {
		for (size_t i = 0; i < o->nfiles; i++)
			watch_dir_of(ifd, o->files[i]);
		if (o->addresses)
			watch_dir_of(ifd, o->addresses);
		zt_io_start(s.loop, &s.inotify, ifd, ZT_IO_READ, on_inotify, &s);
	}
	if ((s.job.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		fprintf(stderr, "fake-istiod: eventfd: %s\n", strerror(errno));
		rc = -errno;
		goto out;
	}
	zt_io_start(s.loop, &s.job.done, s.job.done_fd, ZT_IO_READ, on_reload_done, &s);
	zt_memtrim_start(&s.trim, s.loop, 0, 0);
	zt_memtrim_check(&s.trim);
	zt_signal_start(s.loop, &s.sighup, SIGHUP, on_signal, &s);
	zt_signal_start(s.loop, &s.sigterm, SIGTERM, on_signal, &s);
	zt_signal_start(s.loop, &s.sigint, SIGINT, on_signal, &s);
	{
		char addr[ZT_ADDR_STRLEN];
		zt_addr_format(zt_h2_listener_addr(s.listener), addr, sizeof(addr));
		zt_info("listening on %s (CA root %s/%s)", addr, o->ca_dir, ZT_CA_ROOT_CERT);
		printf("listening %s\n", addr);
		fflush(stdout);
	}
	rc = zt_loop_run(s.loop);
	rc = rc < 0 ? rc : 0;
out:
	if (s.inotify.fd > 0) {
		ifd = s.inotify.fd;
		zt_io_stop(&s.inotify);
		close(ifd);
	}
	zt_timer_stop(&s.reload_timer);
	zt_memtrim_stop(&s.trim);
	zt_defer_stop(&s.job.cleanup);
	if (s.job.cleaning)
		reload_cleanup(&s);
	if (s.job.running) {
		atomic_store(&s.job.cancel, true);
		pthread_join(s.job.thread, NULL);
		if (s.job.rc >= 0) {
			fi_mesh_clear(&s.job.mesh);
			fi_resources_clear(&s.job.res);
		}
	}
	if (s.job.done_fd > 0) {
		zt_io_stop(&s.job.done);
		close(s.job.done_fd);
	}
	zt_signal_stop(&s.sighup);
	zt_signal_stop(&s.sigterm);
	zt_signal_stop(&s.sigint);
	zt_h2_listener_free(s.listener);
	fi_ads_free(s.ads);
	for (int i = 0; i < 3; i++)
		zt_loop_run_once(s.loop, 0);
	zt_tls_server_free(s.tls);
	fi_token_key_free(s.key);
	zt_ca_free(s.ca);
	fi_mesh_clear(&s.mesh);
	fi_resources_clear(&s.res);
	fi_mesh_cache_free(s.cache);
	zt_loop_free(s.loop);
	return rc < 0 ? 1 : 0;
}

/* ---- check and token -------------------------------------------------------------------- */

static int check(const struct opts *o)
{
	struct fi_mesh mesh;
	struct fi_resources res;
	char err[512];
	int rc;

	if (load(o, NULL, NULL, NULL, &mesh, &res, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "fake-istiod: %s\n", err);
		return 1;
	}
	rc = fi_dump_resources(&res, o->format, stdout, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "fake-istiod: %s\n", err);
	fi_resources_clear(&res);
	fi_mesh_clear(&mesh);
	return rc < 0 ? 1 : 0;
}

/* Nodes and pods as JSON, for the lab scripts. */
static int inventory(const struct opts *o)
{
	struct fi_mesh mesh;
	struct fi_mesh_opts mo = {.addresses_file = o->addresses,
	                          .max_yaml_bytes = o->max_yaml_bytes,
	                          .max_yaml_nodes = o->max_yaml_nodes};
	char err[512];

	if (fi_mesh_load(&mesh, o->files, o->nfiles, &mo, err, sizeof(err)) < 0) {
		fprintf(stderr, "fake-istiod: %s\n", err);
		return 1;
	}
	json_t *inv = fi_dump_inventory(&mesh);
	int rc = json_dumpf(inv, stdout, JSON_COMPACT) == 0 && putchar('\n') != EOF ? 0 : 1;
	json_decref(inv);
	fi_mesh_clear(&mesh);
	return rc;
}

static int token(const struct opts *o)
{
	struct fi_token_key *key;
	char err[512], *tok;
	int rc;

	if ((rc = fi_token_key_open(&key, o->ca_dir, err, sizeof(err))) < 0) {
		fprintf(stderr, "fake-istiod: %s\n", err);
		return 1;
	}
	rc = fi_token_mint(key, o->node, o->ns, o->sa, (int64_t)(o->token_ttl_ms / 1000),
	                   (int64_t)time(NULL), &tok);
	fi_token_key_free(key);
	if (rc < 0) {
		fprintf(stderr,
		        "fake-istiod: cannot mint a token: %s (names must be DNS labels, "
		        "--ttl at most 366 days)\n",
		        zt_strerror(rc));
		return 1;
	}
	printf("%s\n", tok);
	free(tok);
	return 0;
}

/* ---- flags ------------------------------------------------------------------------------ */

enum {
	O_CONFIG = 256,
	O_ADDRESSES,
	O_LISTEN,
	O_CA_DIR,
	O_CERT_TTL,
	O_MIN_CERT_TTL,
	O_TD,
	O_CLUSTER,
	O_ROOT_NS,
	O_TRUSTED,
	O_SAN,
	O_FAULT,
	O_LOG,
	O_LOG_FORMAT,
	O_FORMAT,
	O_NODE,
	O_NS,
	O_SA,
	O_TTL,
	O_MAX_YAML_BYTES,
	O_MAX_YAML_NODES,
	O_HELP
};

static const struct option longopts[] = {
        {"config", required_argument, NULL, O_CONFIG},
        {"addresses", required_argument, NULL, O_ADDRESSES},
        {"listen", required_argument, NULL, O_LISTEN},
        {"ca-dir", required_argument, NULL, O_CA_DIR},
        {"cert-ttl", required_argument, NULL, O_CERT_TTL},
        {"min-cert-ttl", required_argument, NULL, O_MIN_CERT_TTL},
        {"trust-domain", required_argument, NULL, O_TD},
        {"cluster-id", required_argument, NULL, O_CLUSTER},
        {"root-namespace", required_argument, NULL, O_ROOT_NS},
        {"trusted-account", required_argument, NULL, O_TRUSTED},
        {"san", required_argument, NULL, O_SAN},
        {"fault", required_argument, NULL, O_FAULT},
        {"log", required_argument, NULL, O_LOG},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
        {"format", required_argument, NULL, O_FORMAT},
        {"node", required_argument, NULL, O_NODE},
        {"namespace", required_argument, NULL, O_NS},
        {"service-account", required_argument, NULL, O_SA},
        {"ttl", required_argument, NULL, O_TTL},
        {"max-yaml-bytes", required_argument, NULL, O_MAX_YAML_BYTES},
        {"max-yaml-nodes", required_argument, NULL, O_MAX_YAML_NODES},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
	struct opts o = {.listen = "127.0.0.1:15012",
	                 .trust_domain = "cluster.local",
	                 .cluster_id = "Kubernetes",
	                 .root_ns = "istio-system",
	                 .trusted = FI_CA_DEFAULT_TRUSTED,
	                 .format = "yaml",
	                 .cert_ttl_ms = 24 * 3600 * 1000ull,
	                 .token_ttl_ms = 24 * 3600 * 1000ull};
	const char *cmd;
	char err[256];
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "generate"))
		return fi_generate_cmd(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") && strcmp(cmd, "check") && strcmp(cmd, "token") &&
	    strcmp(cmd, "inventory"))
		return die_usage("unknown command \"%s\"", cmd);
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG:
			if (o.nfiles == MAX_FILES)
				return die_usage("more than %d --config files (%s)", MAX_FILES,
				                 optarg);
			o.files[o.nfiles++] = optarg;
			break;
		case O_ADDRESSES:
			o.addresses = optarg;
			break;
		case O_LISTEN:
			o.listen = optarg;
			break;
		case O_CA_DIR:
			o.ca_dir = optarg;
			break;
		case O_CERT_TTL:
			if (zt_duration_parse(optarg, &o.cert_ttl_ms) < 0 || o.cert_ttl_ms < 1000)
				return die_usage("--cert-ttl %s: expected a duration of 1s or more",
				                 optarg);
			break;
		case O_MIN_CERT_TTL:
			if (zt_duration_parse(optarg, &o.min_cert_ttl_ms) < 0 || o.min_cert_ttl_ms < 1000)
				return die_usage("--min-cert-ttl %s: expected a duration of 1s or more",
				                 optarg);
			break;
		case O_TTL:
			if (zt_duration_parse(optarg, &o.token_ttl_ms) < 0 || o.token_ttl_ms < 1000)
				return die_usage("--ttl %s: expected a duration of 1s or more",
				                 optarg);
			break;
		case O_MAX_YAML_BYTES:
			if (zt_size_parse(optarg, &o.max_yaml_bytes) < 0 ||
			    o.max_yaml_bytes < FI_MESH_MIN_MAX_YAML_BYTES ||
			    o.max_yaml_bytes > FI_MESH_MAX_MAX_YAML_BYTES)
				return die_usage("--max-yaml-bytes %s: expected a size from 1KiB to 64GiB",
				                 optarg);
			break;
		case O_MAX_YAML_NODES: {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    v < FI_MESH_MIN_MAX_YAML_NODES || v > FI_MESH_MAX_MAX_YAML_NODES)
				return die_usage("--max-yaml-nodes %s: expected a number from 16 to "
				                 "1000000000",
				                 optarg);
			o.max_yaml_nodes = (size_t)v;
			break;
		}
		case O_TD:
			o.trust_domain = optarg;
			break;
		case O_CLUSTER:
			o.cluster_id = optarg;
			break;
		case O_ROOT_NS:
			o.root_ns = optarg;
			break;
		case O_TRUSTED:
			o.trusted = optarg;
			break;
		case O_SAN:
			if (o.nsans == MAX_SANS)
				return die_usage("more than 16 --san values (%s)", optarg);
			o.sans[o.nsans++] = optarg;
			break;
		case O_FAULT:
			if (strncmp(optarg, "bad-resource=", 13) || !optarg[13])
				return die_usage("--fault %s: the only fault is bad-resource=NAME",
				                 optarg);
			o.bad_resource = optarg + 13;
			break;
		case O_LOG:
			if (zt_log_set_spec(optarg, err, sizeof(err)) < 0)
				return die_usage("--log: %s", err);
			break;
		case O_LOG_FORMAT: {
			enum zt_log_format f;
			if (zt_log_format_parse(optarg, &f) < 0)
				return die_usage("--log-format %s: expected plain or json", optarg);
			zt_log_set_format(f);
			break;
		}
		case O_FORMAT:
			if (strcmp(optarg, "json") && strcmp(optarg, "yaml"))
				return die_usage("--format %s: expected json or yaml", optarg);
			o.format = optarg;
			break;
		case O_NODE:
			o.node = optarg;
			break;
		case O_NS:
			o.ns = optarg;
			break;
		case O_SA:
			o.sa = optarg;
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			return die_usage("unknown or incomplete option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return die_usage("unexpected argument \"%s\"", argv[optind]);
	if (!strcmp(cmd, "token")) {
		if (!o.ca_dir || !o.node || !o.ns || !o.sa)
			return die_usage("%s needs --ca-dir, --node, --namespace and "
			                 "--service-account",
			                 cmd);
		return token(&o);
	}
	if (o.nfiles == 0)
		return die_usage("%s needs at least one --config FILE", cmd);
	if (!strcmp(cmd, "check"))
		return check(&o);
	if (!strcmp(cmd, "inventory"))
		return inventory(&o);
	if (!o.ca_dir)
		return die_usage("%s needs --ca-dir DIR", cmd);
	return serve(&o);
}
