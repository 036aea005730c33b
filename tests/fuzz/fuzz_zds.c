/* Fuzz target: a ZDS WorkloadRequest datagram from the node agent (spec §5), decoded with the
 * bounds the ZDS client uses and walked the way the client reads it. Input: the datagram. */
#include <stdio.h>

#include "inpod/zds.h"
#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Istio__Workload__Zds__WorkloadRequest *req = NULL;
	char out[2048];

	if (zt_pb_unpack(&istio__workload__zds__workload_request__descriptor, data, size,
	                 ZT_ZDS_MAX_MESSAGE, (ProtobufCMessage **)&req) < 0)
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
