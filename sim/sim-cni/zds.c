/* ZDS server side (spec §5). Each connection keeps its requests in a FIFO; only the head is
 * ever on the wire, and the next one goes out (from a defer) once its Ack arrived, so "one Ack
 * per message, in order" is checked simply: any Ack without a head in flight is a violation.
 * Closed connections wait on a dead list until a defer frees them, so nothing is freed inside
 * its own callback. */
#include "zds.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "protocol/zds_frame.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "usock.h"

ZT_LOG_MODULE("zds");

struct req {
	STAILQ_ENTRY(req) link;
	uint8_t *msg;
	size_t len;
	int fd; /* borrowed, -1: none */
	const char *kind;
	char uid[64]; /* for logs, possibly cut */
	cni_zds_done_cb done;
	void *arg;
};

struct cni_zconn {
	struct cni_zds *z;
	TAILQ_ENTRY(cni_zconn) link; /* in conns, then in dead */
	unsigned id;
	int fd;
	struct zt_io io;
	struct zt_timer timer; /* hello deadline, then the Ack deadline of the head */
	struct zt_defer flush, reap;
	bool hello, closed, in_flight;
	STAILQ_HEAD(, req) reqs; /* the head is the one on the wire once in_flight */
};

TAILQ_HEAD(zconn_list, cni_zconn);

struct cni_zds {
	struct zt_loop *loop;
	int fd;
	struct zt_io io;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct zconn_list conns; /* hello'd ones first, newest hello first */
	struct zconn_list dead;  /* closed, waiting for their reap defer */
	size_t nconns, nhello;
	unsigned next_id;
	cni_zds_hello_cb on_hello;
	void *arg;
};

static struct req *pop(struct cni_zconn *c)
{
	struct req *r = STAILQ_FIRST(&c->reqs);

	if (r)
		STAILQ_REMOVE_HEAD(&c->reqs, link);
	return r;
}

static void req_free(struct req *r)
{
	if (r) {
		free(r->msg);
		free(r);
	}
}

static void on_reap(struct zt_defer *d, void *arg)
{
	struct cni_zconn *c = arg;

	(void)d;
	TAILQ_REMOVE(&c->z->dead, c, link);
	free(c);
}

/* Ends the connection once: every queued request completes with rc and reason. */
static void conn_close(struct cni_zconn *c, int rc, const char *reason)
{
	struct cni_zds *z = c->z;
	struct req *r;

	if (c->closed)
		return;
	c->closed = true;
	if (rc == ZT_E_CLOSED)
		zt_info("ztunnel connection %u closed: %s", c->id, reason);
	else
		zt_warn("ztunnel connection %u dropped: %s", c->id, reason);
	zt_io_stop(&c->io);
	zt_timer_stop(&c->timer);
	zt_defer_stop(&c->flush);
	close(c->fd);
	c->fd = -1;
	TAILQ_REMOVE(&z->conns, c, link);
	TAILQ_INSERT_HEAD(&z->dead, c, link);
	z->nconns--;
	if (c->hello)
		z->nhello--;
	zt_defer_start(z->loop, &c->reap, on_reap, c);
	while ((r = pop(c))) {
		if (r->done)
			r->done(rc, reason, r->arg);
		req_free(r);
	}
}

static void on_deadline(struct zt_timer *t, void *arg)
{
	struct cni_zconn *c = arg;

	(void)t;
	conn_close(c, ZT_E_TIMEOUT, c->hello ? "no Ack within 5 s" : "no ZdsHello within 5 s");
}

/* Sends the head request if nothing is in flight. */
static void on_flush(struct zt_defer *d, void *arg)
{
	struct cni_zconn *c = arg;
	struct req *r = STAILQ_FIRST(&c->reqs);
	int rc;

	(void)d;
	if (c->closed || c->in_flight || !r)
		return;
	rc = zt_zds_frame_send_raw(c->fd, r->msg, r->len, &r->fd, r->fd >= 0 ? 1 : 0,
	                           MSG_DONTWAIT);
	if (rc == -EAGAIN) {
		zt_io_set(&c->io, ZT_IO_READ | ZT_IO_WRITE);
		return;
	}
	if (rc < 0) {
		char why[128];

		snprintf(why, sizeof(why), "send: %s", zt_strerror(rc));
		conn_close(c, rc, why);
		return;
	}
	zt_debug("ztunnel connection %u <- %s %s", c->id, r->kind, r->uid);
	c->in_flight = true;
	zt_io_set(&c->io, ZT_IO_READ);
	zt_timer_start(c->z->loop, &c->timer, CNI_ZDS_ACK_MS, on_deadline, c);
}

static void violation(struct cni_zconn *c, const char *why)
{
	char reason[160];

	snprintf(reason, sizeof(reason), "protocol violation: %s", why);
	conn_close(c, ZT_E_PROTO, reason);
}

static void on_hello_msg(struct cni_zconn *c, const struct zt_zds_frame *f)
{
	struct cni_zds *z = c->z;
	Istio__Workload__Zds__ZdsHello *h;
	ProtobufCMessage *m;
	char why[64];

	if (zt_zds_frame_decode(f, &istio__workload__zds__zds_hello__descriptor, &m) < 0) {
		violation(c, "undecodable ZdsHello");
		return;
	}
	h = (Istio__Workload__Zds__ZdsHello *)m;
	if (h->version != ISTIO__WORKLOAD__ZDS__VERSION__V1) {
		snprintf(why, sizeof(why), "unsupported ZDS version %d", (int)h->version);
		zt_pb_free(m);
		violation(c, why);
		return;
	}
	zt_pb_free(m);
	c->hello = true;
	zt_timer_stop(&c->timer);
	TAILQ_REMOVE(&z->conns, c, link);
	TAILQ_INSERT_HEAD(&z->conns, c, link);
	z->nhello++;
	zt_info("ztunnel connection %u: hello (V1), %zu connected", c->id, z->nhello);
	z->on_hello(c, z->arg);
}

static void on_response(struct cni_zconn *c, const struct zt_zds_frame *f)
{
	Istio__Workload__Zds__WorkloadResponse *resp;
	ProtobufCMessage *m;
	struct req *r;
	char text[256];
	size_t o = 0;
	int rc = 0;

	if (zt_zds_frame_decode(f, &istio__workload__zds__workload_response__descriptor, &m) < 0) {
		violation(c, "undecodable WorkloadResponse");
		return;
	}
	resp = (Istio__Workload__Zds__WorkloadResponse *)m;
	if (resp->payload_case != ISTIO__WORKLOAD__ZDS__WORKLOAD_RESPONSE__PAYLOAD_ACK) {
		zt_pb_free(m);
		violation(c, "WorkloadResponse without an Ack");
		return;
	}
	if (!c->in_flight) {
		zt_pb_free(m);
		violation(c, "Ack with no request in flight");
		return;
	}
	/* The NACK text goes into logs and one-line replies: printable ASCII only. */
	for (const char *s = resp->ack->error; s && *s && o + 1 < sizeof(text); s++)
		text[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	text[o] = 0;
	zt_pb_free(m);
	if (o > 0)
		rc = CNI_ZDS_NACK;
	r = pop(c);
	c->in_flight = false;
	zt_timer_stop(&c->timer);
	zt_debug("ztunnel connection %u -> %s for %s %s%s%s", c->id, rc ? "NACK" : "Ack", r->kind,
	         r->uid, rc ? ": " : "", text);
	if (r->done)
		r->done(rc, text, r->arg);
	req_free(r);
	if (!c->closed && !STAILQ_EMPTY(&c->reqs))
		zt_defer_start(c->z->loop, &c->flush, on_flush, c);
}

static void on_conn_io(struct zt_io *io, unsigned events, void *arg)
{
	struct cni_zconn *c = arg;

	(void)io;
	if (events & ZT_IO_WRITE)
		on_flush(NULL, c);
	while (!c->closed && (events & ZT_IO_READ)) {
		struct zt_zds_frame f;
		size_t nfds;
		int rc = zt_zds_frame_recv(c->fd, &f, MSG_DONTWAIT);

		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			char why[128];

			snprintf(why, sizeof(why), "recv: %s", zt_strerror(rc));
			conn_close(c, rc, why);
			return;
		}
		nfds = f.nfds;
		zt_zds_frame_close_fds(&f);
		if (f.len == 0 && nfds == 0 && !f.fds_truncated) {
			conn_close(c, ZT_E_CLOSED, "ztunnel closed the connection");
			return;
		}
		if (f.truncated)
			violation(c, "datagram over 1024 bytes");
		else if (nfds > 0 || f.fds_truncated)
			violation(c, "file descriptor sent to the CNI");
		else if (!c->hello)
			on_hello_msg(c, &f);
		else
			on_response(c, &f);
	}
}

static void on_accept(struct zt_io *io, unsigned events, void *arg)
{
	struct cni_zds *z = arg;

	(void)io;
	(void)events;
	for (int burst = 0; burst < 16; burst++) {
		struct cni_zconn *c;
		int fd = accept4(z->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				zt_warn("accept: %s", strerror(errno));
			return;
		}
		if (z->nconns >= CNI_ZDS_MAX_CONNS) {
			zt_warn("ztunnel connection refused: already %d", CNI_ZDS_MAX_CONNS);
			close(fd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->z = z;
		c->fd = fd;
		c->id = ++z->next_id;
		if (zt_io_start(z->loop, &c->io, fd, ZT_IO_READ, on_conn_io, c) < 0) {
			zt_warn("ztunnel connection %u: cannot watch it", c->id);
			close(fd);
			free(c);
			continue;
		}
		STAILQ_INIT(&c->reqs);
		/* Not hello'd yet: after the hello'd ones. */
		TAILQ_INSERT_TAIL(&z->conns, c, link);
		z->nconns++;
		zt_timer_start(z->loop, &c->timer, CNI_ZDS_HELLO_MS, on_deadline, c);
		zt_info("ztunnel connection %u accepted", c->id);
	}
}

int cni_zds_new(struct zt_loop *loop, const char *path, cni_zds_hello_cb on_hello, void *arg,
                struct cni_zds **out)
{
	struct cni_zds *z;
	int rc, fd;

	*out = NULL;
	if (strlen(path) >= sizeof(z->path))
		return ZT_E_TOOBIG;
	fd = cni_usock_listen(path, SOCK_SEQPACKET);
	if (fd < 0)
		return fd;
	z = xcalloc(1, sizeof(*z));
	z->loop = loop;
	TAILQ_INIT(&z->conns);
	TAILQ_INIT(&z->dead);
	z->fd = fd;
	z->on_hello = on_hello;
	z->arg = arg;
	memcpy(z->path, path, strlen(path) + 1);
	rc = zt_io_start(loop, &z->io, z->fd, ZT_IO_READ, on_accept, z);
	if (rc < 0) {
		close(z->fd);
		unlink(path);
		free(z);
		return rc;
	}
	*out = z;
	return 0;
}

static void conn_free_now(struct cni_zconn *c)
{
	struct req *r;

	zt_io_stop(&c->io);
	zt_timer_stop(&c->timer);
	zt_defer_stop(&c->flush);
	zt_defer_stop(&c->reap);
	if (c->fd >= 0)
		close(c->fd);
	while ((r = pop(c)))
		req_free(r);
	free(c);
}

void cni_zds_free(struct cni_zds *z)
{
	struct cni_zconn *c;

	if (!z)
		return;
	zt_io_stop(&z->io);
	close(z->fd);
	unlink(z->path);
	while ((c = TAILQ_FIRST(&z->conns))) {
		TAILQ_REMOVE(&z->conns, c, link);
		conn_free_now(c);
	}
	while ((c = TAILQ_FIRST(&z->dead))) {
		TAILQ_REMOVE(&z->dead, c, link);
		conn_free_now(c);
	}
	free(z);
}

struct cni_zconn *cni_zds_newest(struct cni_zds *z)
{
	struct cni_zconn *c = TAILQ_FIRST(&z->conns);

	return c && c->hello ? c : NULL;
}

struct cni_zconn *cni_zds_next(struct cni_zds *z, struct cni_zconn *prev)
{
	struct cni_zconn *c = prev ? TAILQ_NEXT(prev, link) : TAILQ_FIRST(&z->conns);

	return c && c->hello ? c : NULL;
}

size_t cni_zds_count(const struct cni_zds *z)
{
	return z->nhello;
}

unsigned cni_zconn_id(const struct cni_zconn *c)
{
	return c->id;
}

static int enqueue(struct cni_zconn *c, const Istio__Workload__Zds__WorkloadRequest *msg, int fd,
                   const char *kind, const char *uid, cni_zds_done_cb done, void *arg)
{
	struct req *r;
	uint8_t *buf;
	size_t len;

	int rc;

	if (c->closed)
		return ZT_E_CLOSED;
	if ((rc = zt_zds_frame_pack(&msg->base, &buf, &len)) < 0)
		return rc;
	r = xcalloc(1, sizeof(*r));
	r->msg = buf;
	r->len = len;
	r->fd = fd;
	r->kind = kind;
	snprintf(r->uid, sizeof(r->uid), "%s", uid);
	r->done = done;
	r->arg = arg;
	STAILQ_INSERT_TAIL(&c->reqs, r, link);
	zt_defer_start(c->z->loop, &c->flush, on_flush, c);
	return 0;
}

int cni_zds_send_add(struct cni_zconn *c, const char *uid, const char *name, const char *ns,
                     const char *sa, int netns_fd, cni_zds_done_cb done, void *arg)
{
	Istio__Workload__Zds__WorkloadInfo info = ISTIO__WORKLOAD__ZDS__WORKLOAD_INFO__INIT;
	Istio__Workload__Zds__AddWorkload add = ISTIO__WORKLOAD__ZDS__ADD_WORKLOAD__INIT;
	Istio__Workload__Zds__WorkloadRequest msg = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;

	info.name = (char *)name;
	info.namespace_ = (char *)ns;
	info.service_account = (char *)sa;
	add.uid = (char *)uid;
	add.workload_info = &info;
	msg.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD;
	msg.add = &add;
	return enqueue(c, &msg, netns_fd, "Add", uid, done, arg);
}

int cni_zds_send_del(struct cni_zconn *c, const char *uid, cni_zds_done_cb done, void *arg)
{
	Istio__Workload__Zds__DelWorkload del = ISTIO__WORKLOAD__ZDS__DEL_WORKLOAD__INIT;
	Istio__Workload__Zds__WorkloadRequest msg = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;

	del.uid = (char *)uid;
	msg.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL;
	msg.del = &del;
	return enqueue(c, &msg, -1, "Del", uid, done, arg);
}

int cni_zds_send_snapshot_sent(struct cni_zconn *c, cni_zds_done_cb done, void *arg)
{
	Istio__Workload__Zds__SnapshotSent snap = ISTIO__WORKLOAD__ZDS__SNAPSHOT_SENT__INIT;
	Istio__Workload__Zds__WorkloadRequest msg = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;

	msg.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_SNAPSHOT_SENT;
	msg.snapshot_sent = &snap;
	return enqueue(c, &msg, -1, "SnapshotSent", "", done, arg);
}
