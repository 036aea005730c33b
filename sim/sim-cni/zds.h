/* The CNI side of ZDS (spec §5): a SOCK_SEQPACKET listener that ztunnel connects to, and per
 * connection a FIFO of WorkloadRequests sent one at a time, each completed by exactly one Ack
 * (5 s deadline). A connection must open with ZdsHello{V1} (5 s deadline); anything else from
 * ztunnel - undecodable or oversized datagrams, file descriptors, an Ack with nothing in
 * flight - closes it with a log line. Invariant: every queued request's callback fires exactly
 * once (Ack, NACK, or the connection's end), always from the loop, never from inside a
 * cni_zds_* call. */
#ifndef CNI_ZDS_H
#define CNI_ZDS_H

#include <stddef.h>

#include "protocol/zds_frame.h"
#include "runtime/loop.h"

#define CNI_ZDS_MSG_MAX   ZT_ZDS_FRAME_MAX /* ztunnel's receive buffer (spec §5) */
#define CNI_ZDS_ACK_MS    5000
#define CNI_ZDS_HELLO_MS  5000
#define CNI_ZDS_MAX_CONNS 16
#define CNI_ZDS_NACK      1 /* a request's rc when ztunnel answered with an error text */

struct cni_zds;
struct cni_zconn;

/* A connection said hello: the owner queues its snapshot (Adds, then SnapshotSent). */
typedef void (*cni_zds_hello_cb)(struct cni_zconn *c, void *arg);
/* A request ended. rc: 0 Ack; CNI_ZDS_NACK with text = ztunnel's error; or negative when the
 * connection ended first (ZT_E_TIMEOUT no Ack in time, ZT_E_CLOSED closed or shut down,
 * ZT_E_PROTO ztunnel broke the protocol, -errno send failed) with text = the reason.
 * text is borrowed for the call. */
typedef void (*cni_zds_done_cb)(int rc, const char *text, void *arg);

/* Listens on path (a stale socket file there is removed first; any other file is refused with
 * -EEXIST; a path too long for sun_path is ZT_E_TOOBIG). Returns 0 or a negative code. */
int cni_zds_new(struct zt_loop *loop, const char *path, cni_zds_hello_cb on_hello, void *arg,
                struct cni_zds **out);
/* Closes every connection and the listener and removes the socket file. Queued requests are
 * dropped without their callbacks. Accepts NULL. */
void cni_zds_free(struct cni_zds *z);

/* The most recent connection that has said hello, or NULL. */
struct cni_zconn *cni_zds_newest(struct cni_zds *z);
/* Connections that have said hello, newest first: pass NULL to start. */
struct cni_zconn *cni_zds_next(struct cni_zds *z, struct cni_zconn *prev);
/* How many connections have said hello. */
size_t cni_zds_count(const struct cni_zds *z);
unsigned cni_zconn_id(const struct cni_zconn *c);

/* Queue AddWorkload{uid, workload_info{name, namespace, service_account}} with netns_fd as
 * SCM_RIGHTS. netns_fd is borrowed and must stay open until done fires. Returns 0, ZT_E_TOOBIG
 * when the message would exceed CNI_ZDS_MSG_MAX, or ZT_E_CLOSED when c is closed (done never
 * fires on an error). */
int cni_zds_send_add(struct cni_zconn *c, const char *uid, const char *name, const char *ns,
                     const char *sa, int netns_fd, cni_zds_done_cb done, void *arg);
/* Queue DelWorkload{uid} (field 2). Same returns. */
int cni_zds_send_del(struct cni_zconn *c, const char *uid, cni_zds_done_cb done, void *arg);
/* Queue SnapshotSent. done may be NULL. Returns 0 or ZT_E_CLOSED. */
int cni_zds_send_snapshot_sent(struct cni_zconn *c, cni_zds_done_cb done, void *arg);

#endif
