/* The HBONE CONNECT exchange as pure functions (spec §2.4, §2.5, §7.2): the client's request
 * headers built from plain structs, and the server's checks of a received request (method,
 * authority, destination IP, illegal ports) plus the tolerant parsing of `forwarded` and
 * `baggage` for telemetry. No I/O, no loop, no allocation: everything lands in caller storage,
 * and every field taken from a peer is bounded. */
#ifndef ZT_HBONE_H
#define ZT_HBONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/h2.h"
#include "runtime/addr.h"

#define ZT_HBONE_HOST_MAX   253  /* DNS name in an authority or `forwarded` host= */
#define ZT_HBONE_META_MAX   253  /* one baggage value (Kubernetes names fit) */
#define ZT_HBONE_BAGGAGE_IN 8192 /* longest `baggage` header value parsed (W3C limit) */
/* "host:65535" or "[v6]:65535" plus NUL. */
#define ZT_HBONE_AUTHORITY_STRLEN (ZT_HBONE_HOST_MAX + sizeof(":65535"))
#define ZT_HBONE_TRACEPARENT_LEN  55 /* "00-" 32 hex "-" 16 hex "-00" */
/* Every value percent-encoded (x3) with its key, seven entries and separators. */
#define ZT_HBONE_BAGGAGE_STRLEN   (7 * (sizeof("cloud.availability_zone=") + 3 * ZT_HBONE_META_MAX))
#define ZT_HBONE_FORWARDED_STRLEN (sizeof("for=\"\";host=") + ZT_ADDR_STRLEN + ZT_HBONE_HOST_MAX)
#define ZT_HBONE_REQ_HEADERS      6 /* :method :authority forwarded baggage traceparent network */

/* ---- shared types ----------------------------------------------------------------------- */

/* A CONNECT target: ip:port, or a service host name and port (spec §2.4). */
struct zt_hbone_authority {
	bool is_host;                     /* false: addr is the target */
	struct zt_sockaddr addr;          /* canonical (v4-mapped stored as IPv4) when !is_host */
	char host[ZT_HBONE_HOST_MAX + 1]; /* lower-cased DNS name when is_host, else "" */
	uint16_t port;                    /* 1..65535 in both forms */
};

/* Workload kinds named in baggage keys `k8s.<kind>.name`; numbered as istio.workload's
 * WorkloadType. */
enum zt_hbone_wl_type {
	ZT_HBONE_WL_DEPLOYMENT = 0,
	ZT_HBONE_WL_CRONJOB = 1,
	ZT_HBONE_WL_POD = 2,
	ZT_HBONE_WL_JOB = 3,
};

/* Workload metadata carried in `baggage` (spec §2.4): the source's on a request, parsed back
 * on the server side. Empty strings mean "not known" and are never sent. */
struct zt_hbone_meta {
	char cluster[ZT_HBONE_META_MAX + 1];  /* k8s.cluster.name */
	char ns[ZT_HBONE_META_MAX + 1];       /* k8s.namespace.name */
	enum zt_hbone_wl_type wl_type;        /* selects k8s.<type>.name */
	char workload[ZT_HBONE_META_MAX + 1]; /* k8s.<type>.name */
	char service[ZT_HBONE_META_MAX + 1];  /* service.name (canonical name) */
	char version[ZT_HBONE_META_MAX + 1];  /* service.version (canonical revision) */
	char region[ZT_HBONE_META_MAX + 1];   /* cloud.region */
	char zone[ZT_HBONE_META_MAX + 1];     /* cloud.availability_zone */
};

/* Parses an authority: "a.b.c.d:port", "[v6]:port" (v4-mapped becomes IPv4) or
 * "name:port" where name is a DNS name (labels of [A-Za-z0-9_-], 1..63 bytes, no leading or
 * trailing '-', at most ZT_HBONE_HOST_MAX in all, the last label not all digits so that
 * "1.2.3:80" is junk rather than a name). The port is decimal 1..65535 without leading zeros.
 * Returns 0, ZT_E_PARSE (malformed, including a missing port or an unbracketed IPv6) or
 * ZT_E_RANGE (port 0 or over 65535). out is written only on success. */
int zt_hbone_authority_parse(struct zt_hbone_authority *out, const char *s, size_t len);
/* Writes the authority text ("10.0.0.1:80", "[ff06::c3]:80", "svc.ns.svc.cluster.local:80")
 * and a NUL. Returns its length, ZT_E_TOOBIG (buffer too small; ZT_HBONE_AUTHORITY_STRLEN
 * always suffices) or ZT_E_PARSE (unset or invalid authority). */
int zt_hbone_authority_format(const struct zt_hbone_authority *a, char *buf, size_t size);
/* Fills a from an IP target. */
void zt_hbone_authority_from_addr(struct zt_hbone_authority *a, const struct zt_sockaddr *sa);

/* ---- client side (spec §2.4) ------------------------------------------------------------ */

/* What goes into one CONNECT. Pointers are borrowed for the call only. */
struct zt_hbone_connect {
	const struct zt_hbone_authority *target; /* required */
	const struct zt_sockaddr *client;        /* forwarded for=; NULL: no `forwarded` */
	const char *service_host;                /* forwarded ;host=; NULL or "": omitted */
	const struct zt_hbone_meta *source;      /* baggage; NULL: no `baggage` */
	const char *network; /* x-forwarded-network (inner double-HBONE CONNECT); NULL: none */
};

/* A built request. h[0..n) points into this struct's own buffers: do not copy or move it
 * while h is in use (the HTTP/2 layer copies headers when the request is submitted). */
struct zt_hbone_req {
	struct zt_h2_header h[ZT_HBONE_REQ_HEADERS];
	size_t n;
	char authority[ZT_HBONE_AUTHORITY_STRLEN];
	char forwarded[ZT_HBONE_FORWARDED_STRLEN];
	char baggage[ZT_HBONE_BAGGAGE_STRLEN];
	char traceparent[ZT_HBONE_TRACEPARENT_LEN + 1];
	char network[ZT_HBONE_META_MAX + 1];
};

/* Builds the header block: `:method CONNECT`, `:authority`, then `forwarded`, `baggage`
 * (when they have content), a fresh random `traceparent` and `x-forwarded-network`.
 * Returns 0, ZT_E_PARSE (no target, invalid target, service_host not a DNS name, network not
 * made of [A-Za-z0-9._-]), ZT_E_TOOBIG (network or service_host over ZT_HBONE_HOST_MAX) or
 * -errno if the system random source fails. */
int zt_hbone_req_build(struct zt_hbone_req *out, const struct zt_hbone_connect *in);

/* Writes a W3C traceparent "00-<32 hex trace id>-<16 hex parent id>-00" from the system
 * CSPRNG (ids never all zero) and a NUL into buf (ZT_HBONE_TRACEPARENT_LEN + 1 bytes).
 * Returns 0 or -errno. */
int zt_hbone_traceparent_new(char *buf);

/* Writes the baggage value for m (spec §2.4): comma-joined key=value, empty values omitted,
 * values percent-encoded outside the W3C baggage octets (and '%', '='). Returns the length
 * (0 when every field is empty) or ZT_E_TOOBIG. ZT_HBONE_BAGGAGE_STRLEN always suffices. */
int zt_hbone_baggage_format(const struct zt_hbone_meta *m, char *buf, size_t size);

/* ---- server side (spec §2.5, §7.2) ------------------------------------------------------ */

/* Exceptions and options for the destination checks. */
enum {
	ZT_HBONE_APP_TUNNEL = 1u << 0, /* the pod has an application tunnel: no IP check (§2.9) */
	ZT_HBONE_WAYPOINT = 1u << 1,   /* the pod is the waypoint of the authority's target */
	ZT_HBONE_SOCKS5 = 1u << 2,     /* 15080 is one of our listeners (illegal port too) */
};

#define ZT_HBONE_REASON_MAX 128

/* Outcome of a check: code 200 means "passed", anything else is the status to answer with a
 * header-only response. reason is "" on 200, else a short text for logs (never from the peer
 * except the addresses in an IP mismatch, which are printed canonically). */
struct zt_hbone_status {
	int code;
	char reason[ZT_HBONE_REASON_MAX];
};

/* What the server keeps from a CONNECT request. */
struct zt_hbone_inbound {
	struct zt_hbone_authority target;
	char forwarded_host[ZT_HBONE_HOST_MAX + 1]; /* `forwarded` host= (first element); "" */
	bool has_baggage;                           /* some baggage entry was understood */
	struct zt_hbone_meta baggage;
	char traceparent[ZT_HBONE_TRACEPARENT_LEN + 1]; /* "" if absent or malformed */
	char network[ZT_HBONE_META_MAX + 1];            /* x-forwarded-network; "" if absent */
};

/* Step 1: checks the method (not CONNECT: 400) and parses :authority (missing, duplicated,
 * unparsable or without a port: 400) and the optional headers, ignoring junk in them.
 * h are the request headers as received (names lower-case). out is fully written.
 * Returns st->code. */
int zt_hbone_parse_request(struct zt_hbone_inbound *out, const struct zt_h2_header *h, size_t n,
                           struct zt_hbone_status *st);

/* Step 2 (spec §7.2 step 3): an IP authority must equal the connection's destination IP
 * (both canonical), unless flags has ZT_HBONE_APP_TUNNEL or ZT_HBONE_WAYPOINT; host name
 * authorities are not checked. Mismatch: 400 "ip mismatch: <authority ip> != <dst ip>".
 * Returns st->code. */
int zt_hbone_check_target(const struct zt_hbone_authority *t, const struct zt_ip *conn_dst,
                          unsigned flags, struct zt_hbone_status *st);

/* Step 3: the final upstream port may not be one of our own listeners (15001, 15006, 15008,
 * and 15080 with ZT_HBONE_SOCKS5): 503 "attempted recursive call to ourselves". For host name
 * targets call it with the port resolved from the service. Returns st->code. */
int zt_hbone_check_port(uint16_t port, unsigned flags, struct zt_hbone_status *st);
bool zt_hbone_port_illegal(uint16_t port, unsigned flags);

/* Steps 1-3 in order, step 3 only for IP targets (a host name's port is resolved later).
 * For the waypoint exception the caller usually needs the parsed target first: then call the
 * steps one by one. Returns st->code. */
int zt_hbone_validate(struct zt_hbone_inbound *out, const struct zt_h2_header *h, size_t n,
                      const struct zt_ip *conn_dst, unsigned flags, struct zt_hbone_status *st);

/* Tolerant parsers, also used by zt_hbone_parse_request.
 * Baggage: comma-separated key=value list members, optional whitespace and ;properties
 * ignored, values percent-decoded; unknown keys, members without '=', values that are too
 * long or decode to non-printable bytes are skipped; an empty value clears the field. Called
 * once per `baggage` header, later headers override earlier fields. A value longer than
 * ZT_HBONE_BAGGAGE_IN is ignored entirely. Returns whether any known entry was taken. */
bool zt_hbone_baggage_parse(struct zt_hbone_meta *m, const char *s, size_t len);
/* Forwarded (RFC 7239): the host= parameter of the first element, token or quoted string,
 * kept only if it is a DNS name (a ":port" after it is accepted and dropped). Writes the name
 * lower-cased into host (ZT_HBONE_HOST_MAX + 1 bytes), or "", and returns whether one was
 * found. */
bool zt_hbone_forwarded_host(const char *s, size_t len, char *host);

#endif
