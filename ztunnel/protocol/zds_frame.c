/* ZDS datagrams (spec §5): recvmsg/sendmsg with SCM_RIGHTS over SOCK_SEQPACKET, bounded by
 * ZT_ZDS_FRAME_MAX, protobuf through protocol/pb. Descriptors beyond what a frame holds are
 * closed as they are read, so a peer can never make us leak or keep one. */
#include "protocol/zds_frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "runtime/err.h"

int zt_zds_frame_recv(int sock, struct zt_zds_frame *f, int flags)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * ZT_ZDS_FRAME_MAX_FDS)];
		struct cmsghdr align;
	} cb;
	struct iovec iov = {f->data, sizeof(f->data)};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = cb.b,
	                     .msg_controllen = sizeof(cb.b)};
	ssize_t n;

	f->len = 0;
	f->nfds = 0;
	f->truncated = f->fds_truncated = false;
	do
		n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (f->nfds < ZT_ZDS_FRAME_MAX_FDS) {
				f->fds[f->nfds++] = fd;
			} else {
				close(fd);
				f->fds_truncated = true;
			}
		}
	}
	f->len = (size_t)n;
	f->truncated = (msg.msg_flags & MSG_TRUNC) != 0;
	if (msg.msg_flags & MSG_CTRUNC)
		f->fds_truncated = true;
	return 0;
}

void zt_zds_frame_close_fds(struct zt_zds_frame *f)
{
	for (size_t i = 0; i < f->nfds; i++)
		if (f->fds[i] >= 0)
			close(f->fds[i]);
	f->nfds = 0;
}

int zt_zds_frame_decode(const struct zt_zds_frame *f, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **out)
{
	return zt_pb_unpack(d, f->data, f->len, ZT_ZDS_FRAME_MAX, out);
}

int zt_zds_frame_pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_len)
{
	int rc;

	if ((rc = zt_pb_pack(m, out, out_len)) < 0)
		return rc;
	if (*out_len > ZT_ZDS_FRAME_MAX) {
		free(*out);
		*out = NULL;
		return ZT_E_TOOBIG;
	}
	return 0;
}

int zt_zds_frame_send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds,
                          int flags)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * ZT_ZDS_FRAME_MAX_FDS)];
		struct cmsghdr align;
	} cb;
	struct iovec iov = {(void *)buf, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > ZT_ZDS_FRAME_MAX_FDS)
		return -EMSGSIZE;
	if (nfds) {
		struct cmsghdr *c;

		memset(&cb, 0, sizeof(cb));
		msg.msg_control = cb.b;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

int zt_zds_frame_send(int sock, const ProtobufCMessage *m, int fd, int flags)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if ((rc = zt_zds_frame_pack(m, &buf, &len)) < 0)
		return rc;
	rc = zt_zds_frame_send_raw(sock, buf, len, &fd, fd >= 0 ? 1 : 0, flags);
	free(buf);
	return rc;
}

int zt_zds_frame_send_ack(int sock, const char *error, int flags)
{
	Istio__Workload__Zds__Ack ack = ISTIO__WORKLOAD__ZDS__ACK__INIT;
	Istio__Workload__Zds__WorkloadResponse r = ISTIO__WORKLOAD__ZDS__WORKLOAD_RESPONSE__INIT;

	ack.error = (char *)error;
	r.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_RESPONSE__PAYLOAD_ACK;
	r.ack = &ack;
	return zt_zds_frame_send(sock, &r.base, -1, flags);
}
