/* IP addresses, socket addresses (IP + port) and CIDR prefixes: strict text parsing,
 * canonical printing, and conversion to and from struct sockaddr.
 * Invariant: every value built by these functions is canonical (spec §1.1): a v4-mapped
 * IPv6 address (::ffff:a.b.c.d) is stored as IPv4, bytes past the family's length are zero
 * and a CIDR has its host bits cleared, so equal addresses are also equal byte for byte. */
#ifndef ZT_ADDR_H
#define ZT_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Text sizes including the terminating NUL: INET6_ADDRSTRLEN fits the longest IPv6 text
 * ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"), then "[" ip "]:65535" and ip "/128". */
#define ZT_IP_STRLEN   INET6_ADDRSTRLEN
#define ZT_ADDR_STRLEN (ZT_IP_STRLEN + sizeof("[]:65535") - 1)
#define ZT_CIDR_STRLEN (ZT_IP_STRLEN + sizeof("/128") - 1)

struct zt_ip {
	int family; /* AF_INET or AF_INET6; 0 in a zeroed, unset value */
	union {
		struct in_addr v4; /* network byte order */
		struct in6_addr v6;
		uint8_t bytes[16]; /* the first 4 or 16 are the address, the rest zero */
	};
};

struct zt_sockaddr {
	struct zt_ip ip;
	uint16_t port; /* host byte order */
};

/* A network prefix: ip has every bit past `prefix` cleared. */
struct zt_cidr {
	struct zt_ip ip;
	unsigned prefix; /* 0..32 for IPv4, 0..128 for IPv6 */
};

/* Flags for zt_addr_parse(). */
enum {
	ZT_ADDR_PORT0_OK = 1u << 0, /* accept port 0 (e.g. "bind to any port") */
};

/* All parsers take an explicit length: `s` need not be NUL-terminated, and a NUL byte within
 * the first `len` bytes makes the input malformed. Accepted text is exactly what
 * inet_pton(3) accepts, with no surrounding spaces:
 *   IPv4  four decimal octets, no leading zeros ("01.2.3.4" is rejected, never octal), no
 *         shorthand ("1.2.3", "10.1" are rejected);
 *   IPv6  RFC 4291 text, upper or lower case hex, optional dotted IPv4 tail; no brackets and
 *         no zone id ("fe80::1%eth0" is rejected).
 * "::ffff:a.b.c.d" and every other v4-mapped IPv6 form yields the IPv4 address a.b.c.d.
 * Ports and prefix lengths are plain decimal: digits only, no sign, no leading zeros ("080"
 * is rejected; "0" alone is the number zero).
 * Each returns 0, ZT_E_PARSE for malformed text (including empty and over-long input) or
 * ZT_E_RANGE for a well-formed number out of range. `*out` is written only on success. */

/* Parses a bare IPv4 or IPv6 address. */
int zt_ip_parse(struct zt_ip *out, const char *s, size_t len);

/* Parses "a.b.c.d:port" or "[v6]:port". An IPv6 address must be bracketed ("::1:80" is
 * malformed: is it ::1 port 80 or the address ::1:80?), and the port is required. Port 0 is
 * ZT_E_RANGE unless `flags` has ZT_ADDR_PORT0_OK; ports above 65535 are ZT_E_RANGE. */
int zt_addr_parse(struct zt_sockaddr *out, const char *s, size_t len, unsigned flags);

/* Parses "ip/prefix". The prefix is required and must be at most 32 (IPv4) or 128 (IPv6),
 * else ZT_E_RANGE. Host bits are accepted and cleared: "10.1.2.3/8" yields 10.0.0.0/8.
 * A v4-mapped IPv6 prefix of length >= 96 becomes the IPv4 prefix of length - 96
 * ("::ffff:10.0.0.0/104" is 10.0.0.0/8); shorter ones stay IPv6 and, like every IPv6
 * prefix, contain no IPv4 address. */
int zt_cidr_parse(struct zt_cidr *out, const char *s, size_t len);

/* Builds an address from 4 or 16 raw network-order bytes (as in istio.workload protobufs).
 * Returns 0 or ZT_E_PARSE for any other length. */
int zt_ip_from_bytes(struct zt_ip *out, const void *bytes, size_t len);

/* Builds a prefix from raw bytes and a prefix length measured in the bytes' own family
 * (16 bytes with prefix 104 may become an IPv4 /8, as in zt_cidr_parse). Returns 0,
 * ZT_E_PARSE for a length other than 4 or 16, or ZT_E_RANGE for a prefix too long. */
int zt_cidr_from_bytes(struct zt_cidr *out, const void *bytes, size_t len, unsigned prefix);

/* Builds the prefix of `prefix` bits around a canonical address (a bare host is ip/32 or
 * ip/128). Returns 0, ZT_E_RANGE for a prefix too long, or -EAFNOSUPPORT for an unset ip. */
int zt_cidr_from_ip(struct zt_cidr *out, const struct zt_ip *ip, unsigned prefix);

/* Formatters write canonical text (IPv6 per RFC 5952, as inet_ntop writes it, IPv6 socket
 * addresses bracketed) and a NUL into buf. They return the text length, ZT_E_TOOBIG if buf
 * cannot hold it (buf then holds "" when len > 0), or -EAFNOSUPPORT for an unset family.
 * Buffers of ZT_IP_STRLEN, ZT_ADDR_STRLEN and ZT_CIDR_STRLEN always suffice. */
int zt_ip_format(const struct zt_ip *ip, char *buf, size_t len);
int zt_addr_format(const struct zt_sockaddr *sa, char *buf, size_t len);
int zt_cidr_format(const struct zt_cidr *cidr, char *buf, size_t len);

bool zt_ip_equal(const struct zt_ip *a, const struct zt_ip *b);
bool zt_addr_equal(const struct zt_sockaddr *a, const struct zt_sockaddr *b);

/* True if `ip` lies inside `cidr`; an address of the other family never does. */
bool zt_cidr_contains(const struct zt_cidr *cidr, const struct zt_ip *ip);

/* 127.0.0.0/8 and ::1. */
bool zt_ip_is_loopback(const struct zt_ip *ip);
/* 0.0.0.0 and ::. */
bool zt_ip_is_unspecified(const struct zt_ip *ip);

/* Converts what accept(), getsockname(), getpeername() or SO_ORIGINAL_DST returned. This is
 * where dual-stack sockets are canonicalised: an AF_INET6 v4-mapped peer becomes AF_INET.
 * The IPv6 scope id and flow info are dropped. Returns 0, -EAFNOSUPPORT for a family other
 * than AF_INET/AF_INET6, or -EINVAL if `len` is too short for the family. */
int zt_addr_from_sockaddr(struct zt_sockaddr *out, const struct sockaddr *sa, socklen_t len);

/* Fills `ss` for bind() or connect() in the address's own family (an IPv4 address gives a
 * sockaddr_in, for an AF_INET socket). Returns the length to pass along, or 0 for an unset
 * family. */
socklen_t zt_addr_to_sockaddr(const struct zt_sockaddr *sa, struct sockaddr_storage *ss);

#endif
