/* Fuzz target: the DNS proxy's handling of a client's message (dns/message.h) as
 * dns/server.c does it: zt_dns_query_parse, then the error reply built from the raw bytes for
 * a refused message, or for a query the local answer (a CNAME and addresses owned by the
 * queried name, cut to the UDP or TCP limit), the upstream query and a SERVFAIL. The built
 * replies are parsed back and must answer the query's id. Input: the first byte picks the
 * transport (bit 0: TCP) and the answer's shape (bits 1-3: address count, bit 4: CNAME), the
 * rest is the message. */
#include <stdio.h>
#include <stdlib.h>

#include "dns/message.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

static void check_reply(const uint8_t *out, size_t outlen, uint16_t id, size_t max)
{
	bool tc;

	if (outlen > max || zt_dns_response_check(out, outlen, id, &tc) != 0)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_dns_query q;
	struct zt_dns_answer a = {0};
	uint8_t *out = NULL, flags;
	size_t outlen = 0, max;
	int rc;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	rc = zt_dns_query_parse(data, size, &q);
	if (rc < 0)
		return 0;
	if (rc > 0) {
		if (zt_dns_reply_error(data, size, NULL, rc, &out, &outlen) == 0)
			check_reply(out, outlen, (uint16_t)(data[0] << 8 | data[1]),
			            ZT_DNS_MSG_MAX);
		free(out);
		return 0;
	}
	max = (flags & 1) ? ZT_DNS_MSG_MAX : zt_dns_udp_limit(&q);
	snprintf(a.owner, sizeof(a.owner), "%s", q.name[0] ? q.name : "svc.cluster.local");
	if (flags & 0x10) {
		snprintf(a.cname_from, sizeof(a.cname_from), "%s", a.owner);
		snprintf(a.owner, sizeof(a.owner), "owner.ns.svc.cluster.local");
	}
	a.n_addrs = (flags >> 1) & 7;
	for (size_t i = 0; i < a.n_addrs; i++) {
		uint8_t b[16] = {10, 0, 0, (uint8_t)i};
		if (q.qtype == 28) {
			b[0] = 0xfd;
			b[15] = (uint8_t)i;
		}
		if (zt_ip_from_bytes(&a.addrs[i], b, q.qtype == 28 ? 16 : 4) < 0)
			abort();
	}
	if (zt_dns_reply_local(&q, &a, max, &out, &outlen) == 0)
		check_reply(out, outlen, q.id, max);
	free(out);
	out = NULL;
	if (zt_dns_query_upstream(&q, 0x1234, &out, &outlen) == 0) {
		struct zt_dns_query back;
		if (zt_dns_query_parse(out, outlen, &back) != 0 || back.id != 0x1234 ||
		    back.qtype != q.qtype || strcmp(back.name, q.name) != 0)
			__builtin_trap();
		zt_dns_query_clear(&back);
	}
	free(out);
	out = NULL;
	if (zt_dns_reply_error(data, size, &q, ZT_DNS_RCODE_SERVFAIL, &out, &outlen) == 0)
		check_reply(out, outlen, q.id, ZT_DNS_MSG_MAX);
	free(out);
	zt_dns_query_clear(&q);
	return 0;
}
