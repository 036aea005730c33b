/* DNS wire format through ldns: every message is parsed with ldns_wire2pkt and built as an
 * ldns_pkt, then serialised with ldns_pkt2wire. Invariant: no function here reads a byte of a
 * peer's message except through ldns, but the fixed 12-byte header of an unparsable query
 * (id, opcode, RD) needed to say FORMERR to it. */
#include "dns/message.h"

#include <ctype.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPSTREAM_UDP_SIZE 1232

int zt_dns_query_parse(const uint8_t *buf, size_t len, struct zt_dns_query *q)
{
	ldns_pkt *pkt = NULL;
	ldns_rr *rr;
	char *name = NULL, *type = NULL;

	memset(q, 0, sizeof(*q));
	if (len < ZT_DNS_HDR_SIZE)
		return -1;
	if (ldns_wire2pkt(&pkt, buf, len) != LDNS_STATUS_OK)
		return ZT_DNS_RCODE_FORMERR;
	if (ldns_pkt_get_opcode(pkt) != LDNS_PACKET_QUERY) {
		ldns_pkt_free(pkt);
		return ZT_DNS_RCODE_NOTIMP;
	}
	if (ldns_pkt_qr(pkt) || ldns_pkt_qdcount(pkt) != 1 ||
	    ldns_rr_list_rr_count(ldns_pkt_question(pkt)) != 1) {
		ldns_pkt_free(pkt);
		return ZT_DNS_RCODE_FORMERR;
	}
	rr = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);
	name = ldns_rdf2str(ldns_rr_owner(rr));
	if (!name) {
		ldns_pkt_free(pkt);
		return ZT_DNS_RCODE_FORMERR;
	}
	if (strcmp(name, ".") == 0)
		q->name[0] = '\0'; /* the root: never local, forwarded as is */
	else if (zt_dns_name_norm(name, q->name, sizeof(q->name)) < 0) {
		free(name);
		ldns_pkt_free(pkt);
		return ZT_DNS_RCODE_FORMERR;
	}
	free(name);
	q->pkt = pkt;
	q->id = ldns_pkt_id(pkt);
	q->qtype = (uint16_t)ldns_rr_get_type(rr);
	q->qclass = (uint16_t)ldns_rr_get_class(rr);
	type = ldns_rr_type2str(ldns_rr_get_type(rr));
	snprintf(q->type_label, sizeof(q->type_label), "%s", type ? type : "unknown");
	free(type);
	for (char *p = q->type_label; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	q->edns = ldns_pkt_edns(pkt);
	q->udp_size = q->edns ? ldns_pkt_edns_udp_size(pkt) : 0;
	q->do_bit = ldns_pkt_edns_do(pkt);
	q->edns_version = ldns_pkt_edns_version(pkt);
	q->rd = ldns_pkt_rd(pkt);
	return 0;
}

void zt_dns_query_clear(struct zt_dns_query *q)
{
	if (q->pkt)
		ldns_pkt_free(q->pkt);
	memset(q, 0, sizeof(*q));
}

size_t zt_dns_udp_limit(const struct zt_dns_query *q)
{
	if (q && q->edns && q->udp_size > ZT_DNS_UDP_BASE)
		return q->udp_size;
	return ZT_DNS_UDP_BASE;
}

/* A reply skeleton for q: id, opcode QUERY, QR, RD copied, RA, the question, EDNS. */
static ldns_pkt *reply_for(const struct zt_dns_query *q, int rcode, bool aa)
{
	ldns_pkt *p = ldns_pkt_new();

	if (!p)
		abort();
	ldns_pkt_set_id(p, q->id);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_opcode(p, LDNS_PACKET_QUERY);
	ldns_pkt_set_rd(p, q->rd);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_aa(p, aa);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION,
	                 ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(q->pkt), 0)));
	if (q->edns) {
		ldns_pkt_set_edns_udp_size(p, q->udp_size > ZT_DNS_UDP_BASE ? q->udp_size
		                                                            : ZT_DNS_UDP_BASE);
		ldns_pkt_set_edns_version(p, q->edns_version);
		ldns_pkt_set_edns_do(p, q->do_bit);
	}
	return p;
}

static void empty_section(ldns_pkt *p, ldns_pkt_section s)
{
	if (s == LDNS_SECTION_ANSWER) {
		ldns_rr_list_deep_free(ldns_pkt_answer(p));
		ldns_pkt_set_answer(p, ldns_rr_list_new());
		ldns_pkt_set_ancount(p, 0);
	} else if (s == LDNS_SECTION_AUTHORITY) {
		ldns_rr_list_deep_free(ldns_pkt_authority(p));
		ldns_pkt_set_authority(p, ldns_rr_list_new());
		ldns_pkt_set_nscount(p, 0);
	} else {
		ldns_rr_list_deep_free(ldns_pkt_additional(p));
		ldns_pkt_set_additional(p, ldns_rr_list_new());
		ldns_pkt_set_arcount(p, 0);
	}
}

/* Serialises p (freed) into *out; over max, again without records and with TC set. */
static int finish(ldns_pkt *p, size_t max, uint8_t **out, size_t *outlen)
{
	uint8_t *wire = NULL;
	size_t n = 0;

	if (ldns_pkt2wire(&wire, p, &n) != LDNS_STATUS_OK) {
		ldns_pkt_free(p);
		return -1;
	}
	if (n > max) {
		free(wire);
		wire = NULL;
		empty_section(p, LDNS_SECTION_ANSWER);
		empty_section(p, LDNS_SECTION_AUTHORITY);
		empty_section(p, LDNS_SECTION_ADDITIONAL);
		ldns_pkt_set_tc(p, true);
		if (ldns_pkt2wire(&wire, p, &n) != LDNS_STATUS_OK) {
			ldns_pkt_free(p);
			return -1;
		}
	}
	ldns_pkt_free(p);
	*out = wire;
	*outlen = n;
	return 0;
}

int zt_dns_reply_error(const uint8_t *raw, size_t len, const struct zt_dns_query *q, int rcode,
                       uint8_t **out, size_t *outlen)
{
	ldns_pkt *p;

	if (q && q->pkt)
		return finish(reply_for(q, rcode, false), ZT_DNS_MSG_MAX, out, outlen);
	if (!raw || len < ZT_DNS_HDR_SIZE)
		return -1;
	if (!(p = ldns_pkt_new()))
		abort();
	/* Only the fixed header: the rest did not parse. */
	ldns_pkt_set_id(p, (uint16_t)(raw[0] << 8 | raw[1]));
	ldns_pkt_set_opcode(p, (ldns_pkt_opcode)((raw[2] >> 3) & 0x0f));
	ldns_pkt_set_rd(p, raw[2] & 1);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	return finish(p, ZT_DNS_MSG_MAX, out, outlen);
}

static ldns_rr *addr_rr(const ldns_rdf *owner, const struct zt_ip *ip)
{
	ldns_rr *rr = ldns_rr_new();
	bool v4 = ip->family == AF_INET;

	if (!rr)
		abort();
	ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
	ldns_rr_set_type(rr, v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, ZT_DNS_TTL);
	ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
	                                           v4 ? 4 : 16, ip->bytes));
	return rr;
}

int zt_dns_reply_local(const struct zt_dns_query *q, const struct zt_dns_answer *a, size_t max,
                       uint8_t **out, size_t *outlen)
{
	ldns_pkt *p = reply_for(q, ZT_DNS_RCODE_NOERROR, true);
	const ldns_rdf *qname = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(q->pkt), 0));
	ldns_rdf *owner = NULL;
	int rc;

	if (a->cname_from[0]) {
		ldns_rr *cname = ldns_rr_new();
		if (!cname || !(owner = ldns_dname_new_frm_str(a->owner))) {
			ldns_rr_free(cname);
			ldns_pkt_free(p);
			return -1;
		}
		ldns_rr_set_owner(cname, ldns_rdf_clone(qname));
		ldns_rr_set_type(cname, LDNS_RR_TYPE_CNAME);
		ldns_rr_set_class(cname, LDNS_RR_CLASS_IN);
		ldns_rr_set_ttl(cname, ZT_DNS_TTL);
		ldns_rr_push_rdf(cname, ldns_rdf_clone(owner));
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, cname);
	}
	for (size_t i = 0; i < a->n_addrs; i++)
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER,
		                 addr_rr(owner ? owner : qname, &a->addrs[i]));
	rc = finish(p, max, out, outlen);
	if (owner)
		ldns_rdf_deep_free(owner);
	return rc;
}

static int query_wire(ldns_rdf *name, uint16_t qtype, uint16_t qclass, uint16_t id, uint8_t **out,
                      size_t *outlen)
{
	ldns_pkt *p = ldns_pkt_query_new(name, (ldns_rr_type)qtype, (ldns_rr_class)qclass, LDNS_RD);

	if (!p)
		return -1;
	/* ldns_pkt_query_new makes type 0 an A and class 0 IN: ask exactly what was asked. */
	ldns_rr_set_type(ldns_rr_list_rr(ldns_pkt_question(p), 0), (ldns_rr_type)qtype);
	ldns_rr_set_class(ldns_rr_list_rr(ldns_pkt_question(p), 0), (ldns_rr_class)qclass);
	ldns_pkt_set_id(p, id);
	ldns_pkt_set_edns_udp_size(p, UPSTREAM_UDP_SIZE);
	return finish(p, ZT_DNS_MSG_MAX, out, outlen);
}

int zt_dns_query_upstream(const struct zt_dns_query *q, uint16_t id, uint8_t **out, size_t *outlen)
{
	const ldns_rdf *qname = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(q->pkt), 0));

	return query_wire(ldns_rdf_clone(qname), q->qtype, q->qclass, id, out, outlen);
}

int zt_dns_query_new(const char *name, uint16_t qtype, uint16_t id, uint8_t **out, size_t *outlen)
{
	ldns_rdf *n = ldns_dname_new_frm_str(name);

	if (!n)
		return -1;
	return query_wire(n, qtype, LDNS_RR_CLASS_IN, id, out, outlen);
}

int zt_dns_response_check(const uint8_t *resp, size_t len, uint16_t id, bool *truncated)
{
	ldns_pkt *p = NULL;
	int rc = -1;

	if (ldns_wire2pkt(&p, resp, len) != LDNS_STATUS_OK)
		return -1;
	if (ldns_pkt_qr(p) && ldns_pkt_id(p) == id) {
		*truncated = ldns_pkt_tc(p);
		rc = 0;
	}
	ldns_pkt_free(p);
	return rc;
}

int zt_dns_reply_forwarded(const struct zt_dns_query *q, const uint8_t *resp, size_t len,
                           size_t max, uint8_t **out, size_t *outlen)
{
	ldns_pkt *up = NULL, *p;
	ldns_rr_list *l;

	if (ldns_wire2pkt(&up, resp, len) != LDNS_STATUS_OK)
		return -1;
	p = reply_for(q, ldns_pkt_get_rcode(up), false);
	l = ldns_pkt_answer(up);
	for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); i++)
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_rr_list_rr(l, i)));
	l = ldns_pkt_additional(up);
	for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); i++)
		ldns_pkt_push_rr(p, LDNS_SECTION_ADDITIONAL, ldns_rr_clone(ldns_rr_list_rr(l, i)));
	ldns_pkt_free(up);
	return finish(p, max, out, outlen);
}

int zt_dns_response_addrs(const uint8_t *resp, size_t len, struct zt_ip *addrs, size_t max,
                          uint32_t *ttl, int *rcode)
{
	ldns_pkt *p = NULL;
	ldns_rr_list *l;
	size_t n = 0;

	*ttl = 0;
	*rcode = ZT_DNS_RCODE_SERVFAIL;
	if (ldns_wire2pkt(&p, resp, len) != LDNS_STATUS_OK)
		return -1;
	*rcode = ldns_pkt_get_rcode(p);
	l = ldns_pkt_answer(p);
	for (size_t i = 0; l && i < ldns_rr_list_rr_count(l) && n < max; i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);
		ldns_rdf *d = ldns_rr_rdf(rr, 0);
		int fam = ldns_rr_get_type(rr) == LDNS_RR_TYPE_A      ? AF_INET
		          : ldns_rr_get_type(rr) == LDNS_RR_TYPE_AAAA ? AF_INET6
		                                                      : 0;
		if (!fam || !d ||
		    zt_ip_from_bytes(&addrs[n], ldns_rdf_data(d), ldns_rdf_size(d)) < 0)
			continue;
		if (n == 0 || ldns_rr_ttl(rr) < *ttl)
			*ttl = ldns_rr_ttl(rr);
		n++;
	}
	ldns_pkt_free(p);
	return (int)n;
}
