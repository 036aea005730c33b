/* The ZDS client (spec §5): ztunnel's side of the istio-cni node agent protocol on a unix
 * SOCK_SEQPACKET socket, driven by the event loop and never blocking. It connects (retrying
 * with a doubling backoff), says hello, then turns each datagram into one call on the
 * workload proxy manager and answers it with exactly one Ack, in order. Invariant: the
 * snapshot state (uids mentioned, SnapshotSent seen) belongs to one connection and is reset
 * with it; a protocol error stops the client for good. */
#ifndef ZT_INPOD_ZDS_H
#define ZT_INPOD_ZDS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "inpod/manager.h"
#include "protocol/zds_frame.h"
#include "runtime/loop.h"

#define ZT_ZDS_MAX_MESSAGE ZT_ZDS_FRAME_MAX /* bytes of one datagram; longer is an error */
#define ZT_ZDS_BACKOFF_MIN 10    /* ms */
#define ZT_ZDS_BACKOFF_MAX 15000 /* ms */

struct zt_zds;

enum zt_zds_state {
	ZT_ZDS_IDLE,      /* not started */
	ZT_ZDS_WAITING,   /* not connected; next attempt after the backoff */
	ZT_ZDS_CONNECTED, /* hello sent, serving requests */
	ZT_ZDS_FATAL,     /* stopped after a protocol error; never reconnects */
};

struct zt_zds_opts {
	const char *path;                        /* INPOD_UDS (copied) */
	uint64_t backoff_min_ms, backoff_max_ms; /* 0: ZT_ZDS_BACKOFF_MIN / _MAX */
};

struct zt_zds_stats {
	uint64_t connects; /* connections established */
	uint64_t messages; /* requests received */
	uint64_t acks;     /* answered with an empty Ack */
	uint64_t nacks;    /* answered with an error text */
	uint64_t drops;    /* connections dropped by ztunnel after an error */
};

/* Creates a client feeding mgr (borrowed; outlives the client). Returns 0, -EINVAL (no path)
 * or -ENAMETOOLONG (path longer than a unix socket address holds). */
int zt_zds_new(struct zt_zds **out, struct zt_loop *loop, struct zt_podmgr *mgr,
               const struct zt_zds_opts *o);
/* Begins connecting (the first attempt runs from the loop at once). Returns 0 or ZT_E_STATE
 * when already started. */
int zt_zds_start(struct zt_zds *z);
/* Closes the connection without telling the manager anything. Accepts NULL. */
void zt_zds_free(struct zt_zds *z);

enum zt_zds_state zt_zds_state(const struct zt_zds *z);
void zt_zds_stats(const struct zt_zds *z, struct zt_zds_stats *out);
/* {state, path, connects, messages, acks, nacks, drops, snapshotReceived, lastError}. New
 * reference. */
json_t *zt_zds_dump(const struct zt_zds *z);

#endif
