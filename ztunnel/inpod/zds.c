/* ZDS client (spec §5). One datagram = one WorkloadRequest, read whole into a fixed buffer
 * with its fds; each is answered by exactly one Ack before the next is read. Outcomes of a
 * request: served (Ack, or NACK for a proxy start failure), dropped (NACK, then reconnect:
 * undecodable, truncated or bad fd usage) or fatal (NACK, then stop: protocol errors). Every
 * fd received is either handed to the manager or closed before the next datagram. */
#include "inpod/zds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "protocol/zds_frame.h"
#include "runtime/err.h"
#include "runtime/hmap.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("zds");

#define READ_BURST 16 /* datagrams per loop iteration, for fairness */
#define ACK_TEXT   512

typedef Istio__Workload__Zds__WorkloadRequest Request;

enum verdict { SERVED, DROP, FATAL };

struct zt_zds {
	struct zt_loop *loop;
	struct zt_podmgr *mgr;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint64_t backoff_min, backoff_max, delay;
	enum zt_zds_state state;
	int fd;
	struct zt_io io;
	struct zt_timer timer;
	struct zt_hmap seen; /* uids mentioned on this connection before SnapshotSent */
	bool snapshot;       /* SnapshotSent received on this connection */
	struct zt_zds_stats st;
	char last_err[ACK_TEXT];
};

static const char *state_name(enum zt_zds_state s)
{
	switch (s) {
	case ZT_ZDS_IDLE:
		return "idle";
	case ZT_ZDS_WAITING:
		return "waiting";
	case ZT_ZDS_CONNECTED:
		return "connected";
	case ZT_ZDS_FATAL:
		return "fatal";
	}
	return "?";
}

/* ---- connection ------------------------------------------------------------------------- */

static void try_connect(struct zt_timer *t, void *arg);

static void schedule(struct zt_zds *z)
{
	z->state = ZT_ZDS_WAITING;
	zt_debug("connecting again in %llu ms", (unsigned long long)z->delay);
	zt_timer_start(z->loop, &z->timer, z->delay, try_connect, z);
	z->delay = z->delay * 2 > z->backoff_max ? z->backoff_max : z->delay * 2;
}

/* Forgets the connection and its snapshot state (spec §5: replayed on reconnect). */
static void close_conn(struct zt_zds *z)
{
	zt_io_stop(&z->io);
	if (z->fd >= 0)
		close(z->fd);
	z->fd = -1;
	zt_hmap_clear(&z->seen);
	z->snapshot = false;
	zt_podmgr_set_snapshot(z->mgr, false);
}

static void note_error(struct zt_zds *z, const char *what)
{
	if (strcmp(z->last_err, what))
		zt_warn("%s", what);
	else
		zt_debug("%s", what);
	snprintf(z->last_err, sizeof(z->last_err), "%s", what);
}

static void on_read(struct zt_io *io, unsigned events, void *arg);

static void try_connect(struct zt_timer *t, void *arg)
{
	struct zt_zds *z = arg;
	Istio__Workload__Zds__ZdsHello hello = ISTIO__WORKLOAD__ZDS__ZDS_HELLO__INIT;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char why[ACK_TEXT];
	int fd, rc;

	(void)t;
	memcpy(a.sun_path, z->path, sizeof(z->path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(why, sizeof(why), "connect to %s: %s", z->path, strerror(errno));
		goto fail;
	}
	hello.version = ISTIO__WORKLOAD__ZDS__VERSION__V1;
	if ((rc = zt_zds_frame_send(fd, &hello.base, -1, MSG_DONTWAIT)) < 0) {
		snprintf(why, sizeof(why), "announce error: %s", zt_strerror(rc));
		goto fail;
	}
	if ((rc = zt_io_start(z->loop, &z->io, fd, ZT_IO_READ, on_read, z)) < 0) {
		snprintf(why, sizeof(why), "watch: %s", zt_strerror(rc));
		goto fail;
	}
	z->fd = fd;
	z->state = ZT_ZDS_CONNECTED;
	z->st.connects++;
	z->last_err[0] = '\0';
	zt_info("connected to the node agent at %s", z->path);
	return;
fail:
	if (fd >= 0)
		close(fd);
	note_error(z, why);
	schedule(z);
}

/* ---- requests --------------------------------------------------------------------------- */

static bool keep_cb(const char *uid, void *arg)
{
	struct zt_zds *z = arg;
	return zt_hmap_get(&z->seen, uid) != NULL;
}

static void mention(struct zt_zds *z, const char *uid)
{
	if (!z->snapshot)
		zt_hmap_put(&z->seen, uid, z);
}

/* Takes netns. */
static enum verdict on_add(struct zt_zds *z, const Istio__Workload__Zds__AddWorkload *a, int netns,
                           char *ack, size_t acklen)
{
	const Istio__Workload__Zds__WorkloadInfo *wi = a->workload_info;
	struct zt_podmgr_pod pod;
	int rc;

	if (!wi) {
		close(netns);
		snprintf(ack, acklen, "AddWorkload for %s without workload_info", a->uid);
		return FATAL;
	}
	if ((rc = zt_podmgr_netns_check(netns, NULL)) < 0) {
		close(netns);
		snprintf(ack, acklen, "AddWorkload for %s: the fd is not a network namespace (%s)",
		         a->uid, zt_strerror(rc));
		return DROP;
	}
	mention(z, a->uid);
	pod = (struct zt_podmgr_pod){a->uid, wi->name, wi->namespace_, wi->service_account};
	zt_info("add pod %s (%s/%s)", a->uid, wi->namespace_, wi->name);
	if (zt_podmgr_add(z->mgr, &pod, netns, ack, acklen) < 0 && !ack[0])
		snprintf(ack, acklen, "cannot start the proxy of %s", a->uid);
	return SERVED;
}

static enum verdict on_request(struct zt_zds *z, Request *req, int *netns, char *ack, size_t acklen)
{
	const char *uid;

	switch (req->payload_case) {
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD: {
		int fd = *netns;
		*netns = -1;
		return on_add(z, req->add, fd, ack, acklen);
	}
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_KEEP:
		if (z->snapshot) {
			snprintf(ack, acklen, "KeepWorkload for %s after SnapshotSent",
			         req->keep->uid);
			return FATAL;
		}
		zt_info("keep pod %s", req->keep->uid);
		mention(z, req->keep->uid);
		return SERVED;
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL:
		uid = req->del->uid;
		zt_info("delete pod %s", uid);
		if (!z->snapshot)
			zt_hmap_del(&z->seen, uid);
		else if (zt_podmgr_del(z->mgr, uid) < 0)
			zt_debug("delete of unknown pod %s", uid);
		return SERVED;
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_SNAPSHOT_SENT: {
		size_t gone;
		if (z->snapshot) {
			snprintf(ack, acklen, "a second SnapshotSent");
			return FATAL;
		}
		gone = zt_podmgr_retain(z->mgr, keep_cb, z);
		zt_info("snapshot received: %zu pods mentioned, %zu stopped",
		        zt_hmap_count(&z->seen), gone);
		zt_hmap_clear(&z->seen);
		z->snapshot = true;
		z->delay = z->backoff_min;
		zt_podmgr_set_snapshot(z->mgr, true);
		return SERVED;
	}
	default:
		snprintf(ack, acklen, "unknown request");
		return DROP;
	}
}

/* Decodes and serves one datagram; closes every fd of f not handed on. */
static enum verdict serve(struct zt_zds *z, struct zt_zds_frame *f, char *ack, size_t acklen)
{
	Request *req = NULL;
	enum verdict v = DROP;
	bool add;

	if (f->truncated) {
		snprintf(ack, acklen, "message longer than %d bytes", ZT_ZDS_MAX_MESSAGE);
		goto out;
	}
	if (f->fds_truncated) {
		snprintf(ack, acklen, "too many file descriptors");
		goto out;
	}
	if (zt_zds_frame_decode(f, &istio__workload__zds__workload_request__descriptor,
	                        (ProtobufCMessage **)&req) < 0) {
		snprintf(ack, acklen, "cannot decode the request");
		goto out;
	}
	add = req->payload_case == ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD;
	if (add && f->nfds != 1) {
		snprintf(ack, acklen, "AddWorkload needs exactly one netns fd, got %zu", f->nfds);
		goto out;
	}
	if (!add && f->nfds) {
		snprintf(ack, acklen, "file descriptor on a request other than AddWorkload");
		goto out;
	}
	v = on_request(z, req, &f->fds[0], ack, acklen);
out:
	zt_zds_frame_close_fds(f);
	zt_pb_free((ProtobufCMessage *)req);
	return v;
}

/* Reads and serves one datagram. Returns false when there is nothing more to read now or
 * the connection is gone. */
static bool read_one(struct zt_zds *z)
{
	struct zt_zds_frame f;
	char ack[ACK_TEXT] = "", why[ACK_TEXT + 64];
	enum verdict v;
	int rc;

	rc = zt_zds_frame_recv(z->fd, &f, MSG_DONTWAIT);
	if (rc == -EAGAIN)
		return false;
	if (rc < 0) {
		snprintf(why, sizeof(why), "read: %s", zt_strerror(rc));
		note_error(z, why);
		goto lost;
	}
	if (f.len == 0) {
		/* A SEQPACKET read of 0 is the end of the stream (an empty request is invalid
		 * anyway). */
		zt_zds_frame_close_fds(&f);
		note_error(z, "the node agent closed the connection");
		goto lost;
	}
	z->st.messages++;
	v = serve(z, &f, ack, sizeof(ack));
	if (ack[0]) {
		z->st.nacks++;
		zt_warn("NACK: %s", ack);
	} else {
		z->st.acks++;
	}
	if ((rc = zt_zds_frame_send_ack(z->fd, ack, MSG_DONTWAIT)) < 0) {
		snprintf(why, sizeof(why), "sending an Ack: %s", zt_strerror(rc));
		note_error(z, why);
		if (v == SERVED)
			v = DROP;
	} else if (v == SERVED) {
		return true;
	} else {
		note_error(z, ack);
	}
	close_conn(z);
	if (v == FATAL) {
		z->state = ZT_ZDS_FATAL;
		zt_error("protocol error from the node agent, no longer accepting pods: %s", ack);
		zt_podmgr_set_fatal(z->mgr, ack);
		return false;
	}
	z->st.drops++;
	schedule(z);
	return false;
lost:
	close_conn(z);
	schedule(z);
	return false;
}

static void on_read(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_zds *z = arg;

	(void)io, (void)events;
	for (int i = 0; i < READ_BURST && z->state == ZT_ZDS_CONNECTED; i++)
		if (!read_one(z))
			break;
}

/* ---- public ----------------------------------------------------------------------------- */

int zt_zds_new(struct zt_zds **out, struct zt_loop *loop, struct zt_podmgr *mgr,
               const struct zt_zds_opts *o)
{
	struct zt_zds *z;

	*out = NULL;
	if (!o || !o->path || !*o->path)
		return -EINVAL;
	if (strlen(o->path) >= sizeof(z->path))
		return -ENAMETOOLONG;
	z = xcalloc(1, sizeof(*z));
	z->loop = loop;
	z->mgr = mgr;
	memcpy(z->path, o->path, strlen(o->path) + 1);
	z->backoff_min = o->backoff_min_ms ? o->backoff_min_ms : ZT_ZDS_BACKOFF_MIN;
	z->backoff_max = o->backoff_max_ms ? o->backoff_max_ms : ZT_ZDS_BACKOFF_MAX;
	if (z->backoff_max < z->backoff_min)
		z->backoff_max = z->backoff_min;
	z->delay = z->backoff_min;
	z->fd = -1;
	*out = z;
	return 0;
}

int zt_zds_start(struct zt_zds *z)
{
	if (z->state != ZT_ZDS_IDLE)
		return ZT_E_STATE;
	z->state = ZT_ZDS_WAITING;
	zt_timer_start(z->loop, &z->timer, 0, try_connect, z);
	return 0;
}

void zt_zds_free(struct zt_zds *z)
{
	if (!z)
		return;
	zt_timer_stop(&z->timer);
	zt_io_stop(&z->io);
	if (z->fd >= 0)
		close(z->fd);
	zt_hmap_clear(&z->seen);
	free(z);
}

enum zt_zds_state zt_zds_state(const struct zt_zds *z)
{
	return z->state;
}

void zt_zds_stats(const struct zt_zds *z, struct zt_zds_stats *out)
{
	*out = z->st;
}

json_t *zt_zds_dump(const struct zt_zds *z)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:s?}", "state",
	                 state_name(z->state), "path", z->path, "connects",
	                 (json_int_t)z->st.connects, "messages", (json_int_t)z->st.messages, "acks",
	                 (json_int_t)z->st.acks, "nacks", (json_int_t)z->st.nacks, "drops",
	                 (json_int_t)z->st.drops, "snapshotReceived", z->snapshot, "lastError",
	                 z->last_err[0] ? z->last_err : NULL);
}
