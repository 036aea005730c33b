/* Fuzz target: gRPC length-prefixed framing (protocol/grpc.h) as a peer's DATA frames bring
 * it, cut into chunks at arbitrary places, and the grpc-timeout header. Input: first byte
 * picks the chunk size (1..256), the rest is the byte stream. */
#include "protocol/grpc.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

static int on_msg(const uint8_t *p, size_t len, void *arg)
{
	size_t *total = arg;

	if (len && p[0] == 0xff)
		return -1; /* a consumer refusing a message stops the feed */
	*total += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_grpc_reader r;
	size_t chunk, total = 0;

	if (!size)
		return 0;
	chunk = (size_t)data[0] + 1;
	zt_grpc_timeout_parse((const char *)data + 1, size - 1 < 32 ? size - 1 : 32);
	zt_grpc_reader_init(&r, 4096);
	for (size_t at = 1; at < size; at += chunk) {
		size_t n = size - at < chunk ? size - at : chunk;
		if (zt_grpc_reader_feed(&r, data + at, n, on_msg, &total) < 0)
			break;
	}
	zt_grpc_reader_partial(&r);
	zt_grpc_reader_clear(&r);
	return 0;
}
