/* Node agent state. Pods live in a table by UID and in a list in the order they were added
 * (the snapshot order). A pod's netns fd stays open while any queued ZDS Add borrows it: such
 * Adds hold a reference, and a forgotten pod is freed (from a defer) only when the last one
 * ended. Replies to the control client are sent when the pod's operation ends. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/nsfs.h>

#include "cmd.h"
#include "ctl.h"
#include "job.h"
#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "zds.h"

ZT_LOG_MODULE("agent");

enum pod_state { POD_INSTALLING, POD_ADDING, POD_ACTIVE, POD_DELETING, POD_REMOVING };

static const char *const state_name[] = {"installing", "adding", "active", "deleting", "removing"};

struct pod {
	struct cni_agent *a;
	TAILQ_ENTRY(pod) link; /* the pods list, or the dead list once forgotten */
	char uid[CNI_UID_MAX + 1];
	char netns[CNI_PATH_MAX + 1];
	char ns[CNI_NS_MAX + 1];
	char name[CNI_NAME_MAX + 1];
	char sa[CNI_NAME_MAX + 1];
	int fd;
	dev_t dev;
	ino_t ino;
	enum pod_state state;
	bool installed; /* the redirection is in the pod netns */
	bool gone;      /* forgotten: no longer in the table or the list */
	unsigned refs;  /* queued ZDS Adds borrowing fd */
	struct cni_job job;
	struct zt_defer reap;
	/* The running operation. */
	struct cni_ctl_client *client; /* who gets the reply; NULL: nobody */
	unsigned pending;              /* Acks still awaited */
	char err[600];                 /* its first failure, "" so far */
	char zt_error[300];            /* ztunnel's last NACK or failure for this pod, for list */
};

TAILQ_HEAD(pod_list, pod);

struct cni_agent {
	struct zt_loop *loop;
	struct cni_agent_opts o;
	struct cni_zds *zds;
	struct cni_ctl *ctl;
	struct zt_hmap by_uid;
	struct pod_list pods, dead;
	size_t npods;
	dev_t self_dev;
	ino_t self_ino;
};

/* ---- pod bookkeeping ---------------------------------------------------------------------- */

static void pod_free(struct pod *p)
{
	zt_defer_stop(&p->reap);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static void on_reap(struct zt_defer *d, void *arg)
{
	struct pod *p = arg;

	(void)d;
	TAILQ_REMOVE(&p->a->dead, p, link);
	pod_free(p);
}

static void maybe_reap(struct pod *p)
{
	if (p->gone && p->refs == 0)
		zt_defer_start(p->a->loop, &p->reap, on_reap, p);
}

/* Drops the pod from the table; it is freed once no queued Add borrows its fd. */
static void forget(struct pod *p)
{
	struct cni_agent *a = p->a;

	zt_hmap_del(&a->by_uid, p->uid);
	TAILQ_REMOVE(&a->pods, p, link);
	a->npods--;
	p->gone = true;
	TAILQ_INSERT_TAIL(&a->dead, p, link);
	maybe_reap(p);
}

/* Ends the running operation with "ok" or "error: <first failure>". */
static void reply(struct pod *p)
{
	char line[700];

	if (p->err[0])
		snprintf(line, sizeof(line), "error: %s", p->err);
	else
		snprintf(line, sizeof(line), "ok");
	zt_info("pod %s: %s", p->uid, line);
	if (p->client)
		cni_ctl_reply(p->client, line);
	p->client = NULL;
}

static void note_err(struct pod *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_err(struct pod *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
}

/* ---- ZDS ---------------------------------------------------------------------------------- */

static void record_zt_error(struct pod *p, int rc, const char *text)
{
	if (rc == 0)
		p->zt_error[0] = 0;
	else if (rc == CNI_ZDS_NACK)
		snprintf(p->zt_error, sizeof(p->zt_error), "NACK: %s", text);
	else
		snprintf(p->zt_error, sizeof(p->zt_error), "%s", text);
}

static void on_snapshot_add_done(int rc, const char *text, void *arg)
{
	struct pod *p = arg;

	p->refs--;
	if (rc != 0)
		zt_warn("pod %s: snapshot Add %s: %s", p->uid,
		        rc == CNI_ZDS_NACK ? "NACKed" : "failed", text);
	if (!p->gone)
		record_zt_error(p, rc, text);
	maybe_reap(p);
}

static void on_snapshot_sent_done(int rc, const char *text, void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;

	if (rc == 0)
		zt_info("ztunnel connection %u: snapshot acknowledged", id);
	else
		zt_warn("ztunnel connection %u: SnapshotSent %s: %s", id,
		        rc == CNI_ZDS_NACK ? "NACKed" : "failed", text);
}

static void on_hello(struct cni_zconn *c, void *arg)
{
	struct cni_agent *a = arg;
	struct pod *p;
	size_t n = 0;

	TAILQ_FOREACH(p, &a->pods, link) {
		if (p->state != POD_ADDING && p->state != POD_ACTIVE)
			continue;
		if (cni_zds_send_add(c, p->uid, p->name, p->ns, p->sa, p->fd, on_snapshot_add_done,
		                     p) == 0) {
			p->refs++;
			n++;
		}
	}
	cni_zds_send_snapshot_sent(c, on_snapshot_sent_done, (void *)(uintptr_t)cni_zconn_id(c));
	zt_info("ztunnel connection %u: snapshot of %zu pods queued", cni_zconn_id(c), n);
}

static void start_removal(struct pod *p);

static void on_op_done(int rc, const char *text, void *arg)
{
	struct pod *p = arg;
	const char *what = p->state == POD_ADDING ? "Add" : "Del";

	if (p->state == POD_ADDING)
		p->refs--;
	if (rc == CNI_ZDS_NACK)
		note_err(p, "ztunnel NACK on %s: %s", what, text);
	else if (rc < 0)
		note_err(p, "no Ack for %s: %s", what, text);
	if (p->state == POD_ADDING)
		record_zt_error(p, rc, text);
	if (--p->pending > 0)
		return;
	if (p->state == POD_ADDING) {
		p->state = POD_ACTIVE;
		reply(p);
	} else {
		start_removal(p);
	}
}

/* ---- redirection jobs --------------------------------------------------------------------- */

static void on_job_done(struct cni_job *job, int rc, const char *err, void *arg)
{
	struct pod *p = arg;
	struct cni_zconn *c;

	(void)job;
	if (p->state == POD_REMOVING) {
		if (rc < 0)
			note_err(p, "removing the redirection: %s", err);
		else
			p->installed = false;
		reply(p);
		forget(p);
		return;
	}
	/* POD_INSTALLING */
	if (rc < 0) {
		note_err(p, "installing the redirection in %s: %s", p->netns, err);
		reply(p);
		forget(p);
		return;
	}
	p->installed = true;
	c = cni_zds_newest(p->a->zds);
	if (!c) {
		zt_info("pod %s: no ztunnel connected; it gets the pod with its snapshot", p->uid);
		p->state = POD_ACTIVE;
		reply(p);
		return;
	}
	p->state = POD_ADDING;
	rc = cni_zds_send_add(c, p->uid, p->name, p->ns, p->sa, p->fd, on_op_done, p);
	if (rc < 0) {
		note_err(p, "AddWorkload: %s", zt_strerror(rc));
		p->state = POD_ACTIVE;
		reply(p);
		return;
	}
	p->refs++;
	p->pending = 1;
}

static void start_removal(struct pod *p)
{
	int rc;

	p->state = POD_REMOVING;
	rc = cni_job_start(&p->job, p->a->loop, CNI_INPOD_REMOVE, p->fd, on_job_done, p);
	if (rc < 0) {
		note_err(p, "removing the redirection: %s", zt_strerror(rc));
		reply(p);
		forget(p);
	}
}

/* ---- commands ----------------------------------------------------------------------------- */

/* Opens path as a network namespace. Returns the fd or -1 with the reason in err. */
static int open_netns(struct cni_agent *a, const char *path, struct stat *st, char *err,
                      size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), type;
	struct pod *p;

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type < 0 || type != CLONE_NEWNET || fstat(fd, st) < 0) {
		snprintf(err, errlen, "%s is not a network namespace", path);
		close(fd);
		return -1;
	}
	if (st->st_dev == a->self_dev && st->st_ino == a->self_ino) {
		snprintf(err, errlen, "%s is the agent's own network namespace", path);
		close(fd);
		return -1;
	}
	TAILQ_FOREACH(p, &a->pods, link)
		if (p->dev == st->st_dev && p->ino == st->st_ino) {
			snprintf(err, errlen, "%s is already the network namespace of pod %s", path,
			         p->uid);
			close(fd);
			return -1;
		}
	return fd;
}

static void cmd_add(struct cni_agent *a, struct cni_ctl_client *cl, const struct cni_cmd *cmd)
{
	char err[CNI_PATH_MAX + 200], line[CNI_PATH_MAX + 220];
	struct stat st;
	struct pod *p;
	int fd, rc;

	if (zt_hmap_get(&a->by_uid, cmd->uid)) {
		snprintf(line, sizeof(line), "error: pod %s already exists", cmd->uid);
		cni_ctl_reply(cl, line);
		return;
	}
	if (a->npods >= CNI_MAX_PODS) {
		snprintf(line, sizeof(line), "error: already %d pods", CNI_MAX_PODS);
		cni_ctl_reply(cl, line);
		return;
	}
	fd = open_netns(a, cmd->netns, &st, err, sizeof(err));
	if (fd < 0) {
		snprintf(line, sizeof(line), "error: %s", err);
		cni_ctl_reply(cl, line);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->a = a;
	p->fd = fd;
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	p->state = POD_INSTALLING;
	p->client = cl;
	memcpy(p->uid, cmd->uid, sizeof(p->uid));
	memcpy(p->netns, cmd->netns, sizeof(p->netns));
	memcpy(p->ns, cmd->ns, sizeof(p->ns));
	memcpy(p->name, cmd->name, sizeof(p->name));
	memcpy(p->sa, cmd->sa, sizeof(p->sa));
	rc = cni_job_start(&p->job, a->loop, CNI_INPOD_INSTALL, fd, on_job_done, p);
	if (rc < 0) {
		snprintf(line, sizeof(line), "error: cannot start the redirection job: %s",
		         zt_strerror(rc));
		cni_ctl_reply(cl, line);
		pod_free(p);
		return;
	}
	zt_hmap_put(&a->by_uid, p->uid, p);
	TAILQ_INSERT_TAIL(&a->pods, p, link);
	a->npods++;
	zt_info("pod %s (%s/%s, sa %s): adding, netns %s inode %llu", p->uid, p->ns, p->name, p->sa,
	        p->netns, (unsigned long long)p->ino);
}

static void cmd_del(struct cni_agent *a, struct cni_ctl_client *cl, const struct cni_cmd *cmd)
{
	struct pod *p = zt_hmap_get(&a->by_uid, cmd->uid);
	char line[CNI_UID_MAX + 100];

	if (!p || p->state != POD_ACTIVE) {
		if (p)
			snprintf(line, sizeof(line), "error: pod %s is busy (%s)", cmd->uid,
			         state_name[p->state]);
		else
			snprintf(line, sizeof(line), "error: no pod %s", cmd->uid);
		cni_ctl_reply(cl, line);
		return;
	}
	p->state = POD_DELETING;
	p->client = cl;
	p->err[0] = 0;
	p->pending = 0;
	for (struct cni_zconn *c = cni_zds_next(a->zds, NULL); c; c = cni_zds_next(a->zds, c))
		if (cni_zds_send_del(c, p->uid, on_op_done, p) == 0)
			p->pending++;
	zt_info("pod %s: deleting, DelWorkload to %u ztunnel connections", p->uid, p->pending);
	if (p->pending == 0)
		start_removal(p);
}

static void cmd_list(struct cni_agent *a, struct cni_ctl_client *cl)
{
	json_t *root = json_object(), *pods = json_array();
	struct pod *p;
	char *text;

	TAILQ_FOREACH(p, &a->pods, link) {
		json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:b}", "uid", p->uid,
		                      "netns", p->netns, "netns_inode", (json_int_t)p->ino,
		                      "namespace", p->ns, "name", p->name, "service_account", p->sa,
		                      "state", state_name[p->state], "redirection", p->installed);

		if (!o)
			abort();
		if (p->zt_error[0])
			json_object_set_new(o, "ztunnel_error", json_string(p->zt_error));
		json_array_append_new(pods, o);
	}
	json_object_set_new(root, "pods", pods);
	json_object_set_new(root, "ztunnel_connections",
	                    json_integer((json_int_t)cni_zds_count(a->zds)));
	text = json_dumps(root, JSON_COMPACT);
	if (!text)
		abort();
	cni_ctl_reply(cl, text);
	free(text);
	json_decref(root);
}

static void on_cmd(struct cni_ctl_client *cl, const struct cni_cmd *cmd, void *arg)
{
	struct cni_agent *a = arg;

	switch (cmd->type) {
	case CNI_CMD_ADD:
		cmd_add(a, cl, cmd);
		break;
	case CNI_CMD_DEL:
		cmd_del(a, cl, cmd);
		break;
	case CNI_CMD_LIST:
		cmd_list(a, cl);
		break;
	}
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int cni_agent_new(struct zt_loop *loop, const struct cni_agent_opts *o, struct cni_agent **out)
{
	struct cni_agent *a = xcalloc(1, sizeof(*a));
	struct stat st;
	int rc;

	*out = NULL;
	a->loop = loop;
	TAILQ_INIT(&a->pods);
	TAILQ_INIT(&a->dead);
	a->o = *o;
	zt_hmap_init(&a->by_uid);
	if (stat("/proc/self/ns/net", &st) < 0) {
		rc = -errno;
		zt_error("cannot stat /proc/self/ns/net: %s", strerror(errno));
		goto fail;
	}
	a->self_dev = st.st_dev;
	a->self_ino = st.st_ino;
	rc = cni_zds_new(loop, o->socket, on_hello, a, &a->zds);
	if (rc < 0) {
		zt_error("ZDS socket %s: %s", o->socket, zt_strerror(rc));
		goto fail;
	}
	rc = cni_ctl_new(loop, o->control, on_cmd, a, &a->ctl);
	if (rc < 0) {
		zt_error("control socket %s: %s", o->control, zt_strerror(rc));
		goto fail;
	}
	zt_info("listening: ZDS %s, control %s", o->socket, o->control);
	*out = a;
	return 0;
fail:
	cni_zds_free(a->zds);
	zt_hmap_clear(&a->by_uid);
	free(a);
	return rc;
}

void cni_agent_free(struct cni_agent *a)
{
	char err[CNI_JOB_ERR_MAX];
	struct pod *p;

	if (!a)
		return;
	cni_ctl_free(a->ctl);
	cni_zds_free(a->zds);
	TAILQ_FOREACH(p, &a->pods, link) {
		int rc;

		if (!cni_job_running(&p->job))
			continue;
		rc = cni_job_wait(&p->job, err, sizeof(err));
		if (p->state == POD_INSTALLING && rc == 0)
			p->installed = true;
		if (p->state == POD_REMOVING && rc == 0)
			p->installed = false;
	}
	for (p = TAILQ_FIRST(&a->pods); p && a->o.cleanup_on_exit; p = TAILQ_NEXT(p, link)) {
		int rc;

		if (!p->installed)
			continue;
		rc = cni_job_start(&p->job, a->loop, CNI_INPOD_REMOVE, p->fd, on_job_done, p);
		if (rc == 0)
			rc = cni_job_wait(&p->job, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "%s", zt_strerror(rc));
		if (rc < 0)
			zt_warn("pod %s: removing the redirection: %s", p->uid, err);
		else
			zt_info("pod %s: redirection removed", p->uid);
	}
	while ((p = TAILQ_FIRST(&a->pods))) {
		TAILQ_REMOVE(&a->pods, p, link);
		pod_free(p);
	}
	while ((p = TAILQ_FIRST(&a->dead))) {
		TAILQ_REMOVE(&a->dead, p, link);
		pod_free(p);
	}
	zt_hmap_clear(&a->by_uid);
	free(a);
}
