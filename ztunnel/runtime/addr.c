/* IP, socket address and CIDR parsing, printing and conversion. Text goes through
 * inet_pton/inet_ntop after the framing ([], :port, /prefix) is checked here; every value is
 * canonicalised (v4-mapped -> IPv4, unused and host bits zero) before it is returned. */
#include "runtime/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime/err.h"

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static unsigned max_prefix(int family)
{
	return family == AF_INET ? 32 : 128;
}

static void set_v4(struct zt_ip *ip, const void *bytes)
{
	memset(ip, 0, sizeof(*ip));
	ip->family = AF_INET;
	memcpy(&ip->v4, bytes, 4);
}

/* Stores 16 bytes, turning ::ffff:a.b.c.d into a.b.c.d. Returns true if it did. */
static bool set_v6(struct zt_ip *ip, const void *bytes)
{
	if (memcmp(bytes, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		set_v4(ip, (const uint8_t *)bytes + 12);
		return true;
	}
	memset(ip, 0, sizeof(*ip));
	ip->family = AF_INET6;
	memcpy(&ip->v6, bytes, 16);
	return false;
}

/* inet_pton on a counted string. IPv6 is chosen by the presence of a colon, so a dotted
 * string never reaches the IPv6 parser and vice versa. */
static int parse_ip(struct zt_ip *out, const char *s, size_t len)
{
	char tmp[ZT_IP_STRLEN];
	uint8_t bytes[16];
	int family;

	if (len == 0 || len >= sizeof(tmp) || memchr(s, '\0', len))
		return ZT_E_PARSE;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	family = memchr(tmp, ':', len) ? AF_INET6 : AF_INET;
	if (inet_pton(family, tmp, bytes) != 1)
		return ZT_E_PARSE;
	if (family == AF_INET)
		set_v4(out, bytes);
	else
		set_v6(out, bytes);
	return 0;
}

/* Decimal without sign or leading zeros, at most `max`. */
static int parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || (s[0] == '0' && len > 1))
		return ZT_E_PARSE;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return ZT_E_PARSE;
		if (v <= max)
			v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return ZT_E_RANGE;
	*out = v;
	return 0;
}

int zt_ip_parse(struct zt_ip *out, const char *s, size_t len)
{
	return parse_ip(out, s, len);
}

int zt_addr_parse(struct zt_sockaddr *out, const char *s, size_t len, unsigned flags)
{
	struct zt_ip ip;
	const char *host, *colon;
	size_t hlen;
	unsigned long port;
	int r;

	if (len == 0)
		return ZT_E_PARSE;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || close + 1 == s + len || close[1] != ':')
			return ZT_E_PARSE;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
		/* Brackets are for IPv6 text only: "[1.2.3.4]:80" is malformed. */
		if (!memchr(host, ':', hlen))
			return ZT_E_PARSE;
	} else {
		colon = memchr(s, ':', len);
		if (!colon)
			return ZT_E_PARSE;
		/* The host ends at the first colon, so unbracketed IPv6 never parses. */
		host = s;
		hlen = (size_t)(colon - s);
	}
	r = parse_ip(&ip, host, hlen);
	if (r < 0)
		return r;
	r = parse_uint(colon + 1, (size_t)(s + len - colon - 1), 65535, &port);
	if (r < 0)
		return r;
	if (port == 0 && !(flags & ZT_ADDR_PORT0_OK))
		return ZT_E_RANGE;
	out->ip = ip;
	out->port = (uint16_t)port;
	return 0;
}

static void clear_host_bits(struct zt_ip *ip, unsigned prefix)
{
	unsigned n = max_prefix(ip->family) / 8, i;

	for (i = prefix / 8; i < n; i++) {
		unsigned keep = i == prefix / 8 ? prefix % 8 : 0;

		ip->bytes[i] &= (uint8_t)(0xff00u >> keep);
	}
}

/* `bytes` holds 4 or 16 bytes as `family`; prefix already range-checked for it. */
static void make_cidr(struct zt_cidr *out, int family, const void *bytes, unsigned prefix)
{
	struct zt_cidr c;

	if (family == AF_INET) {
		set_v4(&c.ip, bytes);
	} else if (set_v6(&c.ip, bytes)) {
		if (prefix >= 96) {
			prefix -= 96;
		} else {
			/* A short prefix spans more than the mapped range: keep it IPv6. */
			memset(&c.ip, 0, sizeof(c.ip));
			c.ip.family = AF_INET6;
			memcpy(&c.ip.v6, bytes, 16);
		}
	}
	c.prefix = prefix;
	clear_host_bits(&c.ip, prefix);
	*out = c;
}

int zt_cidr_parse(struct zt_cidr *out, const char *s, size_t len)
{
	char tmp[ZT_IP_STRLEN];
	const char *slash;
	uint8_t bytes[16];
	size_t hlen;
	unsigned long prefix;
	int family, r;

	slash = len ? memchr(s, '/', len) : NULL;
	if (!slash)
		return ZT_E_PARSE;
	hlen = (size_t)(slash - s);
	if (hlen == 0 || hlen >= sizeof(tmp) || memchr(s, '\0', hlen))
		return ZT_E_PARSE;
	memcpy(tmp, s, hlen);
	tmp[hlen] = '\0';
	/* Parsed raw here (not via parse_ip) so a mapped prefix is judged in IPv6 bits. */
	family = memchr(tmp, ':', hlen) ? AF_INET6 : AF_INET;
	if (inet_pton(family, tmp, bytes) != 1)
		return ZT_E_PARSE;
	r = parse_uint(slash + 1, len - hlen - 1, max_prefix(family), &prefix);
	if (r < 0)
		return r;
	make_cidr(out, family, bytes, (unsigned)prefix);
	return 0;
}

int zt_ip_from_bytes(struct zt_ip *out, const void *bytes, size_t len)
{
	if (len == 4)
		set_v4(out, bytes);
	else if (len == 16)
		set_v6(out, bytes);
	else
		return ZT_E_PARSE;
	return 0;
}

int zt_cidr_from_bytes(struct zt_cidr *out, const void *bytes, size_t len, unsigned prefix)
{
	int family;

	if (len != 4 && len != 16)
		return ZT_E_PARSE;
	family = len == 4 ? AF_INET : AF_INET6;
	if (prefix > max_prefix(family))
		return ZT_E_RANGE;
	make_cidr(out, family, bytes, prefix);
	return 0;
}

int zt_cidr_from_ip(struct zt_cidr *out, const struct zt_ip *ip, unsigned prefix)
{
	if (ip->family != AF_INET && ip->family != AF_INET6)
		return -EAFNOSUPPORT;
	if (prefix > max_prefix(ip->family))
		return ZT_E_RANGE;
	/* A canonical ip is never v4-mapped, so this cannot change family. */
	make_cidr(out, ip->family, ip->bytes, prefix);
	return 0;
}

/* Writes the snprintf result `n` check shared by the formatters. */
static int fit(int n, char *buf, size_t len)
{
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return ZT_E_TOOBIG;
	}
	return n;
}

int zt_ip_format(const struct zt_ip *ip, char *buf, size_t len)
{
	char tmp[ZT_IP_STRLEN];

	if (ip->family != AF_INET && ip->family != AF_INET6)
		return -EAFNOSUPPORT;
	if (!inet_ntop(ip->family, ip->bytes, tmp, sizeof(tmp)))
		return -errno;
	return fit(snprintf(buf, len, "%s", tmp), buf, len);
}

int zt_addr_format(const struct zt_sockaddr *sa, char *buf, size_t len)
{
	char tmp[ZT_IP_STRLEN];
	int r = zt_ip_format(&sa->ip, tmp, sizeof(tmp));

	if (r < 0)
		return r;
	if (sa->ip.family == AF_INET6)
		r = snprintf(buf, len, "[%s]:%u", tmp, (unsigned)sa->port);
	else
		r = snprintf(buf, len, "%s:%u", tmp, (unsigned)sa->port);
	return fit(r, buf, len);
}

int zt_cidr_format(const struct zt_cidr *cidr, char *buf, size_t len)
{
	char tmp[ZT_IP_STRLEN];
	int r = zt_ip_format(&cidr->ip, tmp, sizeof(tmp));

	if (r < 0)
		return r;
	return fit(snprintf(buf, len, "%s/%u", tmp, cidr->prefix), buf, len);
}

bool zt_ip_equal(const struct zt_ip *a, const struct zt_ip *b)
{
	return a->family == b->family &&
	       memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

bool zt_addr_equal(const struct zt_sockaddr *a, const struct zt_sockaddr *b)
{
	return a->port == b->port && zt_ip_equal(&a->ip, &b->ip);
}

bool zt_cidr_contains(const struct zt_cidr *cidr, const struct zt_ip *ip)
{
	unsigned whole = cidr->prefix / 8, rest = cidr->prefix % 8;
	uint8_t mask;

	if (ip->family != cidr->ip.family || cidr->prefix > max_prefix(ip->family))
		return false;
	if (memcmp(cidr->ip.bytes, ip->bytes, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff00u >> rest);
	return (ip->bytes[whole] & mask) == (cidr->ip.bytes[whole] & mask);
}

bool zt_ip_is_loopback(const struct zt_ip *ip)
{
	if (ip->family == AF_INET)
		return ip->bytes[0] == 127;
	return ip->family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&ip->v6);
}

bool zt_ip_is_unspecified(const struct zt_ip *ip)
{
	if (ip->family == AF_INET)
		return ip->v4.s_addr == 0;
	return ip->family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&ip->v6);
}

int zt_addr_from_sockaddr(struct zt_sockaddr *out, const struct sockaddr *sa, socklen_t len)
{
	if ((size_t)len < sizeof(sa_family_t))
		return -EINVAL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if ((size_t)len < sizeof(*in))
			return -EINVAL;
		set_v4(&out->ip, &in->sin_addr);
		out->port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if ((size_t)len < sizeof(*in6))
			return -EINVAL;
		set_v6(&out->ip, &in6->sin6_addr);
		out->port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

socklen_t zt_addr_to_sockaddr(const struct zt_sockaddr *sa, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (sa->ip.family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(sa->port);
		in->sin_addr = sa->ip.v4;
		return sizeof(*in);
	}
	if (sa->ip.family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(sa->port);
		in6->sin6_addr = sa->ip.v6;
		return sizeof(*in6);
	}
	return 0;
}
