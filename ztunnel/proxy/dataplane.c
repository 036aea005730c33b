/* Worker threads and proxy groups. Invariants: a worker's zt_proxy_ctx (loop, metrics,
 * watchers) and the proxies on it are touched only on that worker's thread, through
 * zt_loop_call from the main thread or zt_loop_post of a store event; a forwarded event holds
 * its own references to the objects it names until the worker has dispatched it. The group
 * operations run on every worker at once; the main thread waits for all of them. Only the
 * events a proxy's watchers react to are forwarded (policy changes, and changes of a grouped
 * workload): groups are made and freed on the main thread, where store events run too, so the
 * list of groups is exact for every event. */
#include "proxy/dataplane.h"

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "runtime/worker.h"

ZT_LOG_MODULE("dataplane");

struct worker {
	struct zt_dataplane *dp;
	struct zt_proxy_ctx ctx;
};

struct zt_dataplane {
	struct zt_proxy_ctx base;
	struct zt_workers *workers; /* NULL: one "worker", the base loop itself */
	size_t n;
	struct worker *w; /* [n] */
	char *build_tag;
	LIST_HEAD(, zt_proxy_group) groups; /* main thread only */
};

struct zt_proxy_group {
	struct zt_dataplane *dp;
	struct zt_proxy **p; /* [dp->n]; NULL where not (yet) started */
	char *ns, *name, *sa, *uid; /* the identity the proxies were made with */
	LIST_ENTRY(zt_proxy_group) link;
};

/* ---- store events, forwarded to every worker ---------------------------------------------- */

struct fwd {
	struct worker *w;
	struct zt_store_event ev; /* ev.key points to key */
	char *key;
};

static void fwd_free(struct fwd *f)
{
	zt_workload_unref(f->ev.old_workload);
	zt_workload_unref(f->ev.new_workload);
	zt_policy_unref(f->ev.old_policy);
	zt_policy_unref(f->ev.new_policy);
	free(f->key);
	free(f);
}

static void fwd_run(void *arg)
{
	struct fwd *f = arg;

	zt_proxy_watchers_emit(f->w->ctx.watchers, f->w->ctx.store, &f->ev);
	fwd_free(f);
}

/* Syncing 100,000 workloads must not wake every worker 100,000 times. */
static bool wanted(const struct zt_dataplane *dp, const struct zt_store_event *ev)
{
	const struct zt_proxy_group *g;

	LIST_FOREACH(g, &dp->groups, link)
		if (ev->kind == ZT_STORE_POLICY_CHANGED ||
		    zt_proxy_event_is_local(ev, g->uid, g->ns, g->name, g->sa))
			return true;
	return false;
}

static void on_store(struct zt_store *store, const struct zt_store_event *ev, void *arg)
{
	struct zt_dataplane *dp = arg;

	(void)store;
	if (!wanted(dp, ev))
		return;
	for (size_t i = 0; i < dp->n; i++) {
		struct fwd *f = xcalloc(1, sizeof(*f));
		f->w = &dp->w[i];
		f->ev = *ev;
		f->key = ev->key ? xstrdup(ev->key) : NULL;
		f->ev.key = f->key;
		zt_workload_ref(ev->old_workload);
		zt_workload_ref(ev->new_workload);
		zt_policy_ref(ev->old_policy);
		zt_policy_ref(ev->new_policy);
		if (zt_loop_post(f->w->ctx.loop, fwd_run, f) < 0)
			fwd_free(f);
	}
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int zt_dataplane_new(struct zt_dataplane **out, const struct zt_proxy_ctx *base, size_t nworkers,
                     const char *build_tag)
{
	struct zt_dataplane *dp = xcalloc(1, sizeof(*dp));
	int rc;

	*out = NULL;
	dp->base = *base;
	dp->build_tag = xstrdup(build_tag ? build_tag : "unknown");
	dp->n = nworkers ? nworkers : 1;
	dp->w = xcalloc(dp->n, sizeof(*dp->w));
	LIST_INIT(&dp->groups);
	if (nworkers == 0) {
		dp->w[0] = (struct worker){.dp = dp, .ctx = dp->base};
		*out = dp;
		return 0;
	}
	if ((rc = zt_workers_new(&dp->workers, nworkers, "ztworker")) < 0) {
		zt_dataplane_free(dp);
		return rc;
	}
	for (size_t i = 0; i < dp->n; i++) {
		struct worker *w = &dp->w[i];
		w->dp = dp;
		w->ctx = dp->base;
		w->ctx.loop = zt_workers_loop(dp->workers, i);
		w->ctx.metrics = dp->base.metrics ? zt_metrics_new(dp->build_tag, 0) : NULL;
		w->ctx.watchers = zt_proxy_watchers_new();
		w->ctx.set.loops = (unsigned)nworkers;
		if (nworkers > 1)
			w->ctx.set.port_reuse = true; /* every worker listens on the same ports */
	}
	zt_store_watch(dp->base.store, on_store, dp);
	zt_info("data plane: %zu worker threads", nworkers);
	*out = dp;
	return 0;
}

void zt_dataplane_free(struct zt_dataplane *dp)
{
	if (!dp)
		return;
	if (dp->workers) {
		zt_store_unwatch(dp->base.store, on_store, dp);
		zt_workers_free(dp->workers); /* runs the events still queued */
		for (size_t i = 0; i < dp->n; i++) {
			zt_metrics_free(dp->w[i].ctx.metrics);
			zt_proxy_watchers_free(dp->w[i].ctx.watchers);
		}
	}
	free(dp->w);
	free(dp->build_tag);
	free(dp);
}

struct zt_proxy_ctx *zt_dataplane_ctx(struct zt_dataplane *dp)
{
	return &dp->base;
}

size_t zt_dataplane_loops(const struct zt_dataplane *dp)
{
	return dp->n;
}

struct merge {
	struct zt_metrics *sum;
	const struct zt_metrics *m;
};

static void merge_on_worker(void *arg)
{
	struct merge *mg = arg;
	zt_metrics_merge(mg->sum, mg->m);
}

int zt_dataplane_render_metrics(struct zt_dataplane *dp, struct zt_buf *out)
{
	struct zt_metrics *sum;
	int rc;

	if (!dp->workers)
		return zt_metrics_render(dp->base.metrics, out);
	sum = zt_metrics_new(dp->build_tag, 0);
	zt_metrics_merge(sum, dp->base.metrics);
	for (size_t i = 0; i < dp->n; i++) {
		struct merge mg = {sum, dp->w[i].ctx.metrics};
		zt_loop_call(dp->w[i].ctx.loop, merge_on_worker, &mg);
	}
	rc = zt_metrics_render(sum, out);
	zt_metrics_free(sum);
	return rc;
}

/* ---- groups ------------------------------------------------------------------------------- */

struct task {
	zt_post_cb cb;
	void *arg;
	sem_t *done;
};

static void run_task(void *arg)
{
	struct task *t = arg;

	t->cb(t->arg);
	sem_post(t->done);
}

/* Runs cb(args[i]) on every worker i at once and waits until all have returned (a worker
 * already stopping runs nothing). */
static void on_every_worker(struct zt_dataplane *dp, zt_post_cb cb, void *const *args)
{
	struct task *t;
	size_t posted = 0;
	sem_t done;

	if (!dp->workers) {
		for (size_t i = 0; i < dp->n; i++)
			cb(args[i]);
		return;
	}
	t = xcalloc(dp->n, sizeof(*t));
	sem_init(&done, 0, 0);
	for (size_t i = 0; i < dp->n; i++) {
		t[i] = (struct task){cb, args[i], &done};
		if (zt_loop_post(dp->w[i].ctx.loop, run_task, &t[i]) == 0)
			posted++;
	}
	for (; posted > 0; posted--)
		while (sem_wait(&done) < 0 && errno == EINTR)
			;
	sem_destroy(&done);
	free(t);
}

struct start {
	struct worker *w;
	const char *ns, *name, *sa, *uid;
	const struct zt_proxy_opts *o;
	struct zt_proxy *p;
	int rc;
	char err[256];
};

static void start_on_worker(void *arg)
{
	struct start *s = arg;

	s->rc = zt_proxy_new(&s->p, &s->w->ctx, s->ns, s->name, s->sa, s->uid, s->o, s->err,
	                     sizeof(s->err));
}

static void free_on_worker(void *arg)
{
	zt_proxy_free(arg); /* NULL where the start failed */
}

static void drain_on_worker(void *arg)
{
	zt_proxy_drain(arg);
}

int zt_proxy_group_new(struct zt_proxy_group **out, struct zt_dataplane *dp, const char *ns,
                       const char *name, const char *sa, const char *uid,
                       const struct zt_proxy_opts *o, char *err, size_t errlen)
{
	struct zt_proxy_group *g = xcalloc(1, sizeof(*g));
	struct start *s = xcalloc(dp->n, sizeof(*s));
	void **args = xcalloc(dp->n, sizeof(*args));
	int rc = 0;

	*out = NULL;
	g->dp = dp;
	g->p = xcalloc(dp->n, sizeof(*g->p));
	g->ns = xstrdup(ns);
	g->name = xstrdup(name);
	g->sa = xstrdup(sa);
	g->uid = xstrdup(uid ? uid : "");
	LIST_INSERT_HEAD(&dp->groups, g, link);
	for (size_t i = 0; i < dp->n; i++) {
		s[i] = (struct start){.w = &dp->w[i], .ns = ns, .name = name, .sa = sa, .uid = uid,
		                      .o = o, .rc = -ESHUTDOWN};
		args[i] = &s[i];
	}
	on_every_worker(dp, start_on_worker, args);
	for (size_t i = 0; i < dp->n; i++) {
		g->p[i] = s[i].p;
		if (s[i].rc < 0 && rc == 0) {
			rc = s[i].rc;
			if (dp->workers)
				zt_errf(rc, err, errlen, "worker %zu: %s", i,
				        s[i].err[0] ? s[i].err : zt_strerror(rc));
			else
				zt_errf(rc, err, errlen, "%s", s[i].err[0] ? s[i].err : zt_strerror(rc));
		}
	}
	free(s);
	free(args);
	if (rc < 0) {
		zt_proxy_group_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

void zt_proxy_group_free(struct zt_proxy_group *g)
{
	if (!g)
		return;
	on_every_worker(g->dp, free_on_worker, (void *const *)g->p);
	LIST_REMOVE(g, link);
	free(g->p);
	free(g->ns);
	free(g->name);
	free(g->sa);
	free(g->uid);
	free(g);
}

void zt_proxy_group_drain(struct zt_proxy_group *g)
{
	if (g)
		on_every_worker(g->dp, drain_on_worker, (void *const *)g->p);
}

struct open {
	struct zt_proxy *p;
	size_t n;
};

static void open_on_worker(void *arg)
{
	struct open *o = arg;
	o->n = zt_proxy_open(o->p);
}

size_t zt_proxy_group_open(const struct zt_proxy_group *g)
{
	struct open *o = xcalloc(g->dp->n, sizeof(*o));
	void **args = xcalloc(g->dp->n, sizeof(*args));
	size_t n = 0;

	for (size_t i = 0; i < g->dp->n; i++) {
		o[i].p = g->p[i];
		args[i] = &o[i];
	}
	on_every_worker(g->dp, open_on_worker, args);
	for (size_t i = 0; i < g->dp->n; i++)
		n += o[i].n;
	free(o);
	free(args);
	return n;
}

struct dump {
	struct zt_proxy *p;
	json_t *j;
};

static void dump_on_worker(void *arg)
{
	struct dump *d = arg;
	d->j = zt_proxy_dump(d->p);
}

static bool is_port(const char *key)
{
	size_t n = strlen(key);
	return strcmp(key, "port") == 0 || (n > 4 && strcmp(key + n - 4, "Port") == 0);
}

/* Folds src into dst: arrays joined, counts summed (ports are the same everywhere), objects
 * merged key by key, anything else kept from dst. */
static void fold(json_t *dst, json_t *src)
{
	const char *key;
	json_t *sv;

	json_object_foreach(src, key, sv) {
		json_t *dv = json_object_get(dst, key);
		if (!dv || json_is_null(dv))
			json_object_set(dst, key, sv);
		else if (json_is_object(dv) && json_is_object(sv))
			fold(dv, sv);
		else if (json_is_array(dv) && json_is_array(sv))
			json_array_extend(dv, sv);
		else if (json_is_integer(dv) && json_is_integer(sv) && !is_port(key))
			json_integer_set(dv, json_integer_value(dv) + json_integer_value(sv));
	}
}

static json_int_t counter(json_t *d, const char *half, const char *name)
{
	return json_integer_value(
	        json_object_get(json_object_get(json_object_get(d, half), "counters"), name));
}

json_t *zt_proxy_group_dump(const struct zt_proxy_group *g)
{
	struct dump *d = xcalloc(g->dp->n, sizeof(*d));
	void **args = xcalloc(g->dp->n, sizeof(*args));
	json_t *all = NULL, *workers = json_array();

	for (size_t i = 0; i < g->dp->n; i++) {
		d[i].p = g->p[i];
		args[i] = &d[i];
	}
	on_every_worker(g->dp, dump_on_worker, args);
	for (size_t i = 0; i < g->dp->n; i++) {
		if (!d[i].j)
			continue;
		json_array_append_new(
		        workers, json_pack("{s:I, s:I, s:I}", "outboundAccepted",
		                           counter(d[i].j, "outbound", "accepted"), "inboundAccepted",
		                           counter(d[i].j, "inbound", "acceptedPlain"),
		                           "hboneAccepted", counter(d[i].j, "inbound", "acceptedHbone")));
		if (!all) {
			all = d[i].j;
		} else {
			fold(all, d[i].j);
			json_decref(d[i].j);
		}
	}
	free(d);
	free(args);
	if (!all)
		all = json_object();
	json_object_set_new(all, "workers", workers);
	return all;
}
