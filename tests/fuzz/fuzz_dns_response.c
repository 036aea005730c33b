/* Fuzz target: an upstream resolver's answer (dns/message.h) as dns/upstream.c, dns/server.c
 * and dns/resolver.c read it: zt_dns_response_check against the id sent, the forwarded reply
 * built from it for a client's query (cut to the UDP or TCP limit, parsed back), and the
 * addresses the hostname resolver takes from it. Input: the first byte picks the client's
 * query (bit 0: AAAA, bit 1: EDNS, bit 2: TCP), the rest is the upstream message. */
#include <stdlib.h>

#include "dns/message.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

static struct zt_dns_query queries[4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	for (int i = 0; i < 4; i++) {
		uint8_t *wire = NULL;
		size_t len = 0;
		/* zt_dns_query_upstream adds EDNS (1232) to a bare query. */
		if (zt_dns_query_new("api.example.com", (i & 1) ? 28 : 1, 0x4242, &wire, &len) <
		            0 ||
		    zt_dns_query_parse(wire, len, &queries[i]) != 0)
			abort();
		free(wire);
		if (i & 2) {
			struct zt_dns_query e;
			if (zt_dns_query_upstream(&queries[i], 0x4242, &wire, &len) < 0 ||
			    zt_dns_query_parse(wire, len, &e) != 0)
				abort();
			free(wire);
			zt_dns_query_clear(&queries[i]);
			queries[i] = e;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct zt_dns_query *q;
	struct zt_ip addrs[8];
	uint8_t *out = NULL;
	size_t outlen = 0, max;
	uint32_t ttl = 0;
	int rcode = 0, n;
	bool tc = false;

	if (size < 1)
		return 0;
	q = &queries[data[0] & 3];
	max = (data[0] & 4) ? ZT_DNS_MSG_MAX : zt_dns_udp_limit(q);
	data++;
	size--;
	if (size >= 2)
		(void)zt_dns_response_check(data, size, (uint16_t)(data[0] << 8 | data[1]), &tc);
	if (zt_dns_reply_forwarded(q, data, size, max, &out, &outlen) == 0) {
		struct zt_dns_query back;
		bool t;
		if (outlen > max || zt_dns_response_check(out, outlen, q->id, &t) != 0)
			__builtin_trap();
		/* A reply is not a query: the proxy's own parser refuses it. */
		if (zt_dns_query_parse(out, outlen, &back) == 0)
			__builtin_trap();
	}
	free(out);
	n = zt_dns_response_addrs(data, size, addrs, 8, &ttl, &rcode);
	if (n > 8)
		__builtin_trap();
	return 0;
}
