/* Fuzz target: a ZDS WorkloadRequest datagram from the node agent (spec §5), sent over a
 * SOCK_SEQPACKET pair, received and decoded by the ZDS framer the client uses
 * (protocol/zds_frame.h), and walked the way the client reads it. Input: the datagram. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "protocol/zds_frame.h"
#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

static int sp[2] = {-1, -1};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int big = 1 << 20;

	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		abort();
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Istio__Workload__Zds__WorkloadRequest *req = NULL;
	static struct zt_zds_frame f;
	char out[2048];

	if (size == 0 || size > 65536 || send(sp[0], data, size, 0) != (ssize_t)size)
		return 0;
	if (zt_zds_frame_recv(sp[1], &f, 0) < 0)
		abort(); /* a datagram just sent must be received */
	if (f.len > ZT_ZDS_FRAME_MAX || (size > ZT_ZDS_FRAME_MAX) != f.truncated)
		__builtin_trap();
	zt_zds_frame_close_fds(&f);
	if (f.truncated ||
	    zt_zds_frame_decode(&f, &istio__workload__zds__workload_request__descriptor,
	                        (ProtobufCMessage **)&req) < 0)
		return 0;
	switch (req->payload_case) {
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD:
		if (req->add->workload_info)
			snprintf(out, sizeof(out), "%s %s/%s %s", req->add->uid,
			         req->add->workload_info->namespace_, req->add->workload_info->name,
			         req->add->workload_info->service_account);
		break;
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_KEEP:
		snprintf(out, sizeof(out), "%s", req->keep->uid);
		break;
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL:
		snprintf(out, sizeof(out), "%s", req->del->uid);
		break;
	default:
		break;
	}
	zt_pb_free((ProtobufCMessage *)req);
	return 0;
}
