/* ZDS framing (spec §5): one protobuf message per SOCK_SEQPACKET datagram, file descriptors
 * beside it as SCM_RIGHTS. Shared by ztunnel's ZDS client, sim-cni's server and the test
 * peers, so the bound, the fd bookkeeping and the truncation checks are written once.
 * Invariant: a received datagram never exceeds ZT_ZDS_FRAME_MAX bytes in memory, and every fd
 * that arrived is either in the frame (the caller owns it) or already closed. No loop. */
#ifndef ZT_ZDS_FRAME_H
#define ZT_ZDS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define ZT_ZDS_FRAME_MAX     1024 /* bytes of one datagram (ztunnel's receive buffer) */
#define ZT_ZDS_FRAME_MAX_FDS 8    /* fds kept from one datagram; more are closed on arrival */

struct zt_zds_frame {
	uint8_t data[ZT_ZDS_FRAME_MAX];
	size_t len;
	int fds[ZT_ZDS_FRAME_MAX_FDS]; /* owned by the caller once received */
	size_t nfds;
	bool truncated;     /* the datagram was longer than ZT_ZDS_FRAME_MAX (MSG_TRUNC) */
	bool fds_truncated; /* descriptors were dropped (MSG_CTRUNC, or more than MAX_FDS) */
};

/* Receives one datagram from sock into f (flags: 0, or MSG_DONTWAIT); EINTR is retried and
 * every fd arrives close-on-exec. Returns 0 with f filled (f->len == 0 and f->nfds == 0 is
 * the end of the stream), -EAGAIN when nothing is there, or -errno. */
int zt_zds_frame_recv(int sock, struct zt_zds_frame *f, int flags);

/* Closes every fd still in f and empties the list. */
void zt_zds_frame_close_fds(struct zt_zds_frame *f);

/* Decodes f's bytes as d (bounded by ZT_ZDS_FRAME_MAX). Returns what zt_pb_unpack returns. */
int zt_zds_frame_decode(const struct zt_zds_frame *f, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **out);

/* Encodes m (borrowed) into a new buffer (the caller frees it). Returns 0, -EINVAL when m does
 * not encode, or ZT_E_TOOBIG when it would exceed ZT_ZDS_FRAME_MAX (*out is NULL then). */
int zt_zds_frame_pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_len);

/* Sends buf[0..len) as one datagram with fds[0..nfds) (borrowed, up to ZT_ZDS_FRAME_MAX_FDS)
 * attached; flags as for sendmsg (MSG_NOSIGNAL is added). EINTR is retried. Returns 0,
 * -EAGAIN, -EMSGSIZE (a short send or too many fds) or -errno. */
int zt_zds_frame_send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds,
                          int flags);

/* zt_zds_frame_pack then zt_zds_frame_send_raw with at most one fd (-1: none). */
int zt_zds_frame_send(int sock, const ProtobufCMessage *m, int fd, int flags);

/* Sends WorkloadResponse{ack{error}}: error "" is an Ack, any other text a NACK. */
int zt_zds_frame_send_ack(int sock, const char *error, int flags);

#endif
