/* Fuzz target: a gRPC call's status from the trailers a server sends (protocol/grpc.h
 * zt_grpc_status_parse: grpc-status, percent-decoded grpc-message). Input: the first byte
 * sizes the message buffer, then lines "name:value", one header per line. */
#include <stdlib.h>

#include "protocol/grpc.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

#define MAX_HEADERS 32

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_h2_header h[MAX_HEADERS];
	const uint8_t *p = data + 1, *line = NULL;
	size_t n = size ? size - 1 : 0, len, nh = 0, msglen;
	char *msg;
	int code;

	if (!size)
		return 0;
	msglen = (size_t)data[0] + 1;
	while (nh < MAX_HEADERS && (len = fuzz_next(&p, &n, '\n', &line)) != (size_t)-1) {
		const uint8_t *colon = len > 1 ? memchr(line + 1, ':', len - 1) : NULL;
		size_t nlen = colon ? (size_t)(colon - line) : len;
		h[nh++] = (struct zt_h2_header){(const char *)line, nlen,
		                                colon ? (const char *)colon + 1 : "",
		                                colon ? len - nlen - 1 : 0};
	}
	msg = malloc(msglen); /* exact size: ASan sees any write past it */
	if (!msg)
		abort();
	code = zt_grpc_status_parse(h, nh, msg, msglen);
	if (code < 0 || code > 16 || strnlen(msg, msglen) == msglen)
		__builtin_trap();
	free(msg);
	return 0;
}
