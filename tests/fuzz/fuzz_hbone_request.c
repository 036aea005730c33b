/* Fuzz target: the server's checks of an HBONE CONNECT request (hbone/hbone.h): headers as a
 * peer sends them, validated against the connection's destination. Input: first byte holds
 * the flags (app tunnel, waypoint); the rest is lines "name:value" (split at the first ':'
 * after the first byte, so ":authority:1.2.3.4:80" works), one header per line. */
#include "hbone/hbone.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

#define MAX_HEADERS 64

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
	struct zt_hbone_inbound in;
	struct zt_hbone_status st;
	struct zt_ip dst;
	const uint8_t *p = data + 1, *line = NULL;
	size_t n = size ? size - 1 : 0, len, nh = 0;
	unsigned flags;

	if (!size)
		return 0;
	flags = data[0] & (ZT_HBONE_APP_TUNNEL | ZT_HBONE_WAYPOINT);
	while (nh < MAX_HEADERS && (len = fuzz_next(&p, &n, '\n', &line)) != (size_t)-1) {
		const uint8_t *colon = len > 1 ? memchr(line + 1, ':', len - 1) : NULL;
		size_t nlen = colon ? (size_t)(colon - line) : len;
		h[nh++] = (struct zt_h2_header){(const char *)line, nlen,
		                                colon ? (const char *)colon + 1 : "",
		                                colon ? len - nlen - 1 : 0};
	}
	zt_ip_parse(&dst, "10.0.0.1", 8);
	zt_hbone_validate(&in, h, nh, &dst, flags, &st);
	return 0;
}
