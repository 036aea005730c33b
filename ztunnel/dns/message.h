/* DNS messages of the proxy on ldns: parsing a client's query, and building every reply the
 * proxy sends (local answers, forwarded answers, errors) and the query it sends upstream
 * (spec §13.2, §13.3). Pure: bytes in, bytes out, no sockets. Every output buffer is
 * malloc'd and owned by the caller (free()). */
#ifndef ZT_DNS_MESSAGE_H
#define ZT_DNS_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/lookup.h"

#define ZT_DNS_MSG_MAX  65535 /* largest message on either transport */
#define ZT_DNS_UDP_BASE 512   /* UDP reply size without EDNS */
#define ZT_DNS_HDR_SIZE 12

#define ZT_DNS_RCODE_NOERROR  0
#define ZT_DNS_RCODE_FORMERR  1
#define ZT_DNS_RCODE_SERVFAIL 2
#define ZT_DNS_RCODE_NXDOMAIN 3
#define ZT_DNS_RCODE_NOTIMP   4

struct ldns_struct_pkt;

/* A parsed client query. */
struct zt_dns_query {
	struct ldns_struct_pkt *pkt; /* owned */
	uint16_t id;
	char name[ZT_DNS_NAME_MAX + 1]; /* normalised (lower-case, no trailing dot) */
	uint16_t qtype, qclass;
	char type_label[16]; /* "a", "aaaa", "srv", ... (metrics) */
	bool edns;
	uint16_t udp_size; /* EDNS payload size, 0 without EDNS */
	bool do_bit;
	uint8_t edns_version;
	bool rd;
};

/* Parses a client message. Returns:
 *   0                     a standard query with one question (q filled; zt_dns_query_clear)
 *   ZT_DNS_RCODE_FORMERR  unparsable, a response, or not exactly one question
 *   ZT_DNS_RCODE_NOTIMP   an opcode other than QUERY
 *   -1                    too short to answer at all (under 12 bytes): drop it
 * For the rcodes, zt_dns_reply_error builds the reply from the raw bytes. */
int zt_dns_query_parse(const uint8_t *buf, size_t len, struct zt_dns_query *q);
void zt_dns_query_clear(struct zt_dns_query *q);

/* An error reply (FORMERR, NOTIMP, SERVFAIL, REFUSED) to raw (len >= 12): same id and
 * opcode, the question echoed when it parses, RA set. q may be NULL; when given, its
 * question and EDNS settings are used. Returns 0 or -1 (unusable input). */
int zt_dns_reply_error(const uint8_t *raw, size_t len, const struct zt_dns_query *q, int rcode,
                       uint8_t **out, size_t *outlen);

/* The local answer to q (spec §13.2 rule 8): AA and RA set, NOERROR, a CNAME
 * q -> a->owner when a->cname_from is set, then one A/AAAA per address owned by a->owner,
 * TTL ZT_DNS_TTL. max is the largest reply the transport allows (ZT_DNS_MSG_MAX for TCP;
 * zt_dns_udp_limit for UDP): answers that do not fit are dropped and TC set. */
int zt_dns_reply_local(const struct zt_dns_query *q, const struct zt_dns_answer *a, size_t max,
                       uint8_t **out, size_t *outlen);

/* The upstream query for q with a fresh id: the same question, RD set, EDNS with a 1232
 * byte payload. */
int zt_dns_query_upstream(const struct zt_dns_query *q, uint16_t id, uint8_t **out, size_t *outlen);
/* A bare query for name (A or AAAA), RD set, for the hostname resolver. */
int zt_dns_query_new(const char *name, uint16_t qtype, uint16_t id, uint8_t **out, size_t *outlen);

/* Checks that resp answers the query with this id (QR set, same id). Returns 0, or -1. On 0,
 * *truncated tells whether TC is set. */
int zt_dns_response_check(const uint8_t *resp, size_t len, uint16_t id, bool *truncated);

/* The forwarded reply to q from the upstream response resp (spec §13.3): q's id and question,
 * the upstream rcode, answers and additionals, AA clear, RA set, EDNS answered with
 * max(request, 512). Truncated to max as zt_dns_reply_local does. Returns 0 or -1 (resp does
 * not parse). */
int zt_dns_reply_forwarded(const struct zt_dns_query *q, const uint8_t *resp, size_t len,
                           size_t max, uint8_t **out, size_t *outlen);

/* Addresses of an A or AAAA response for the hostname resolver: at most max, with the
 * smallest TTL among them. Returns the count (0 when none), or -1 (unparsable) and sets
 * *rcode to the response's. */
int zt_dns_response_addrs(const uint8_t *resp, size_t len, struct zt_ip *addrs, size_t max,
                          uint32_t *ttl, int *rcode);

/* The largest UDP reply for q: its EDNS size (at least 512), else 512. */
size_t zt_dns_udp_limit(const struct zt_dns_query *q);

#endif
