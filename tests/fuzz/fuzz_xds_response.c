/* Fuzz target: the delta-xDS response stream as the xDS client reads it (xds/client.c): gRPC
 * length-prefixed messages cut by zt_grpc_reader_feed, each decoded by zt_pb_unpack as a
 * DeltaDiscoveryResponse with the client's bound, then, per resource of the subscribed type
 * named by the envelope, the Any checked for that type and its body applied to one store
 * (Address or Authorization), and the removed names removed; a resource of another type, a
 * nameless or bodiless one is rejected as the client NACKs it. Responses in one input update
 * the same store. Input: the gRPC stream (zero-length messages included). */
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "protocol/grpc.h"
#include "protocol/pb.h"
#include "runtime/log.h"
#include "state/store.h"
#include "tests/fuzz/fuzz.h"
#include "xds/client.h"

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse Response;

#define MAX_MSG (1u << 20) /* the client's is ZT_XDS_MAX_MSG; inputs never reach either */

struct ctx {
	struct zt_store *store;
	size_t applied, rejected;
};

static int on_msg(const uint8_t *p, size_t len, void *arg)
{
	struct ctx *c = arg;
	ProtobufCMessage *m = NULL;
	const Response *r;
	char err[512];
	bool addr;

	if (zt_pb_unpack(&envoy__service__discovery__v3__delta_discovery_response__descriptor, p,
	                 len, MAX_MSG, &m) < 0)
		return -1; /* the client ends the session */
	r = (const Response *)m;
	if (!r->type_url || (strcmp(r->type_url, ZT_XDS_TYPE_ADDRESS) != 0 &&
	                     strcmp(r->type_url, ZT_XDS_TYPE_AUTHORIZATION) != 0)) {
		zt_pb_free(m);
		return 0; /* "type not subscribed" */
	}
	addr = strcmp(r->type_url, ZT_XDS_TYPE_ADDRESS) == 0;
	for (size_t i = 0; i < r->n_resources; i++) {
		const Envoy__Service__Discovery__V3__Resource *res = r->resources[i];
		const char *name = res->name ? res->name : "";
		const char *version = res->version ? res->version : "";
		int rc;

		if (!name[0] || !res->resource || !res->resource->type_url ||
		    strcmp(res->resource->type_url, r->type_url) != 0) {
			c->rejected++;
			continue;
		}
		err[0] = '\0';
		rc = addr ? zt_store_apply_address(c->store, name, version,
		                                   res->resource->value.data,
		                                   res->resource->value.len, err, sizeof(err))
		          : zt_store_apply_authorization(
		                    c->store, name, version, res->resource->value.data,
		                    res->resource->value.len, err, sizeof(err));
		if (rc != 0 && !err[0])
			__builtin_trap(); /* a rejection always says why */
		if (rc == 0)
			c->applied++;
		else
			c->rejected++;
	}
	for (size_t i = 0; i < r->n_removed_resources; i++) {
		if (addr)
			zt_store_remove_address(c->store, r->removed_resources[i]);
		else
			zt_store_remove_authorization(c->store, r->removed_resources[i]);
	}
	zt_pb_free(m);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx c = {.store = zt_store_new()};
	struct zt_grpc_reader rd;

	zt_grpc_reader_init(&rd, MAX_MSG);
	(void)zt_grpc_reader_feed(&rd, data, size, on_msg, &c);
	zt_grpc_reader_clear(&rd);
	zt_store_free(c.store);
	return 0;
}
