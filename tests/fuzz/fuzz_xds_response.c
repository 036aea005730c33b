/* Fuzz target: the delta-xDS response stream as the xDS client reads it (xds/client.c): gRPC
 * length-prefixed messages cut by zt_grpc_reader_feed, each read by zt_delta_parse as a
 * DeltaDiscoveryResponse (protocol/delta.c, views into the message), then, per resource of
 * the subscribed type named by the envelope, the Any checked for that type and its body
 * applied to one store (Address or Authorization), and the removed names removed; a resource
 * of another type, a nameless or bodiless one is rejected as the client NACKs it. Responses
 * in one input update the same store. Checks that the walks see as many resources and removed
 * names as the parse counted. Input: the gRPC stream (zero-length messages included). */
#include <stdlib.h>
#include <string.h>

#include "protocol/delta.h"
#include "protocol/grpc.h"
#include "runtime/log.h"
#include "state/store.h"
#include "tests/fuzz/fuzz.h"
#include "xds/client.h"

#define MAX_MSG (1u << 20) /* the client's is ZT_XDS_MAX_MSG; inputs never reach either */

struct ctx {
	struct zt_store *store;
	size_t applied, rejected;
};

static char *cstr(struct zt_delta_str s)
{
	char *c = malloc(s.len + 1);

	if (!c)
		abort();
	memcpy(c, s.p, s.len);
	c[s.len] = '\0';
	return c;
}

static int on_msg(const uint8_t *p, size_t len, void *arg)
{
	struct ctx *c = arg;
	struct zt_delta d;
	struct zt_delta_resource res;
	struct zt_delta_str gone;
	size_t pos = 0, n = 0;
	char err[512];
	bool addr;

	if (zt_delta_parse(p, len, &d, err, sizeof(err)) < 0) {
		if (!err[0])
			__builtin_trap(); /* a refusal always says why */
		return -1; /* the client ends the session */
	}
	if (!zt_delta_str_eq(d.type_url, ZT_XDS_TYPE_ADDRESS) &&
	    !zt_delta_str_eq(d.type_url, ZT_XDS_TYPE_AUTHORIZATION))
		return 0; /* "type not subscribed" */
	addr = zt_delta_str_eq(d.type_url, ZT_XDS_TYPE_ADDRESS);
	while (zt_delta_next_resource(&d, &pos, &res)) {
		char *name, *version;
		int rc;

		n++;
		if (!res.name.len || !res.has_body || !zt_delta_str_eq(res.type, addr
		                                                          ? ZT_XDS_TYPE_ADDRESS
		                                                          : ZT_XDS_TYPE_AUTHORIZATION)) {
			c->rejected++;
			continue;
		}
		name = cstr(res.name);
		version = cstr(res.version);
		err[0] = '\0';
		rc = addr ? zt_store_apply_address(c->store, name, version, res.body, res.body_len,
		                                   err, sizeof(err))
		          : zt_store_apply_authorization(c->store, name, version, res.body,
		                                         res.body_len, err, sizeof(err));
		if (rc != 0 && !err[0])
			__builtin_trap(); /* a rejection always says why */
		if (rc == 0)
			c->applied++;
		else
			c->rejected++;
		free(name);
		free(version);
	}
	if (n != d.n_resources)
		__builtin_trap();
	pos = n = 0;
	while (zt_delta_next_removed(&d, &pos, &gone)) {
		char *name = cstr(gone);
		if (addr)
			zt_store_remove_address(c->store, name);
		else
			zt_store_remove_authorization(c->store, name);
		free(name);
		n++;
	}
	if (n != d.n_removed)
		__builtin_trap();
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
