#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/addr.h"
#include "runtime/err.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A counted input: len is given so that embedded NULs can be expressed. */
struct input {
	const char *s;
	size_t len;
};
#define IN(lit)                                                                                    \
	{                                                                                          \
		lit, sizeof(lit) - 1                                                               \
	}

static struct zt_ip ip_of(const char *s)
{
	struct zt_ip ip;

	ck_assert_msg(zt_ip_parse(&ip, s, strlen(s)) == 0, "cannot parse %s", s);
	return ip;
}

static struct zt_cidr cidr_of(const char *s)
{
	struct zt_cidr c;

	ck_assert_msg(zt_cidr_parse(&c, s, strlen(s)) == 0, "cannot parse %s", s);
	return c;
}

/* ---- zt_ip_parse ------------------------------------------------------------------------ */

static const struct {
	const char *in;
	int family;
	const char *text; /* canonical form */
} ip_valid[] = {
        {"10.0.0.1", AF_INET, "10.0.0.1"},
        {"0.0.0.0", AF_INET, "0.0.0.0"},
        {"255.255.255.255", AF_INET, "255.255.255.255"},
        {"::", AF_INET6, "::"},
        {"::1", AF_INET6, "::1"},
        {"FD00:0:0:0:0:0:0:1", AF_INET6, "fd00::1"},
        {"2001:0db8::0001", AF_INET6, "2001:db8::1"},
        {"2001:db8:0:0:1:0:0:1", AF_INET6, "2001:db8::1:0:0:1"},
        {"2001:db8:0:1:1:1:1:1", AF_INET6, "2001:db8:0:1:1:1:1:1"},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AF_INET6,
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
        {"::1.2.3.4", AF_INET6, "::1.2.3.4"}, /* v4-compatible, not v4-mapped: stays IPv6 */
        {"::ffff:10.0.0.1", AF_INET, "10.0.0.1"},
        {"::FFFF:a00:1", AF_INET, "10.0.0.1"},
        {"0:0:0:0:0:ffff:1.2.3.4", AF_INET, "1.2.3.4"},
        /* 45 characters, the longest text that fits ZT_IP_STRLEN. */
        {"0000:0000:0000:0000:0000:ffff:255.255.255.255", AF_INET, "255.255.255.255"},
};

START_TEST(ip_parse_accepts_valid_and_canonicalises)
{
	struct zt_ip ip;
	char buf[ZT_IP_STRLEN];
	const char *in = ip_valid[_i].in;

	ck_assert_int_eq(zt_ip_parse(&ip, in, strlen(in)), 0);
	ck_assert_int_eq(ip.family, ip_valid[_i].family);
	ck_assert_int_eq(zt_ip_format(&ip, buf, sizeof(buf)), (int)strlen(ip_valid[_i].text));
	ck_assert_str_eq(buf, ip_valid[_i].text);
}
END_TEST

static const struct input ip_invalid[] = {
        IN(""),
        IN(" 1.2.3.4"),
        IN("1.2.3.4 "),
        IN("1.2.3.4\n"),
        IN("1.2.3"),
        IN("10.1"),
        IN("1.2.3.4.5"),
        IN("1.2.3."),
        IN(".1.2.3"),
        IN("1..2.3"),
        IN("256.1.1.1"),
        IN("1.2.3.256"),
        IN("01.2.3.4"), /* leading zero: rejected, never read as octal */
        IN("1.2.3.04"),
        IN("00.0.0.0"),
        IN("0x1.2.3.4"),
        IN("+1.2.3.4"),
        IN("-1.2.3.4"),
        IN("1.2.3.-4"),
        IN("4294967295"),
        IN("[::1]"),
        IN("fe80::1%eth0"),
        IN("fe80::1%1"),
        IN("1.2.3.4:80"),
        IN("1.2.3.4/32"),
        IN(":::"),
        IN("1::2::3"),
        IN("12345::"),
        IN("g::1"),
        IN("::ffff:1.2.3"),
        IN("::ffff:1.2.3.4.5"),
        IN("1:2:3:4:5:6:7:8:9"),
        IN("localhost"),
        IN("1.2.3.4\0"),
        IN("1.2\0.3.4"),
        IN("\0"),
        IN("::1\0"),
        /* 46 characters: one past the longest valid text. */
        IN("00000:0000:0000:0000:0000:ffff:255.255.255.255"),
};

START_TEST(ip_parse_rejects_malformed)
{
	struct zt_ip ip;

	memset(&ip, 0xa5, sizeof(ip));
	ck_assert_int_eq(zt_ip_parse(&ip, ip_invalid[_i].s, ip_invalid[_i].len), ZT_E_PARSE);
	/* The output is untouched on failure. */
	ck_assert_int_eq(ip.bytes[0], 0xa5);
}
END_TEST

START_TEST(ip_parse_rejects_very_long_input)
{
	size_t len = 1 << 16;
	char *s = malloc(len);
	struct zt_ip ip;

	ck_assert_ptr_nonnull(s);
	memset(s, '1', len);
	ck_assert_int_eq(zt_ip_parse(&ip, s, len), ZT_E_PARSE);
	/* A valid address followed by padding is still rejected as a whole. */
	memcpy(s, "1.2.3.4", 7);
	memset(s + 7, ' ', len - 7);
	ck_assert_int_eq(zt_ip_parse(&ip, s, len), ZT_E_PARSE);
	free(s);
}
END_TEST

START_TEST(ip_parse_reads_only_len_bytes)
{
	struct zt_ip ip, ten = ip_of("10.0.0.1");

	ck_assert_int_eq(zt_ip_parse(&ip, "10.0.0.1junk", 8), 0);
	ck_assert(zt_ip_equal(&ip, &ten));
	ck_assert_int_eq(zt_ip_parse(&ip, "10.0.0.12", 8), 0);
	ck_assert(zt_ip_equal(&ip, &ten));
	ck_assert_int_eq(zt_ip_parse(&ip, "10.0.0.1", 6), ZT_E_PARSE); /* "10.0.0" */
	ck_assert_int_eq(zt_ip_parse(&ip, "10.0.0.1", 7), ZT_E_PARSE); /* "10.0.0." */
	ck_assert_int_eq(zt_ip_parse(&ip, "::1", 0), ZT_E_PARSE);
	ck_assert_int_eq(zt_ip_parse(&ip, NULL, 0), ZT_E_PARSE);
}
END_TEST

/* ---- zt_addr_parse ---------------------------------------------------------------------- */

static const struct {
	const char *in;
	int family;
	uint16_t port;
	const char *text;
} addr_valid[] = {
        {"10.0.0.1:80", AF_INET, 80, "10.0.0.1:80"},
        {"1.2.3.4:65535", AF_INET, 65535, "1.2.3.4:65535"},
        {"0.0.0.0:1", AF_INET, 1, "0.0.0.0:1"},
        {"[fd00::1]:15008", AF_INET6, 15008, "[fd00::1]:15008"},
        {"[FD00:0::1]:443", AF_INET6, 443, "[fd00::1]:443"},
        {"[::]:15001", AF_INET6, 15001, "[::]:15001"},
        {"[::ffff:10.0.0.1]:80", AF_INET, 80, "10.0.0.1:80"},
};

START_TEST(addr_parse_accepts_valid_and_formats_canonically)
{
	struct zt_sockaddr sa;
	char buf[ZT_ADDR_STRLEN];
	const char *in = addr_valid[_i].in;

	ck_assert_int_eq(zt_addr_parse(&sa, in, strlen(in), 0), 0);
	ck_assert_int_eq(sa.ip.family, addr_valid[_i].family);
	ck_assert_uint_eq(sa.port, addr_valid[_i].port);
	ck_assert_int_eq(zt_addr_format(&sa, buf, sizeof(buf)), (int)strlen(addr_valid[_i].text));
	ck_assert_str_eq(buf, addr_valid[_i].text);
}
END_TEST

static const struct {
	struct input in;
	int err;
} addr_invalid[] = {
        {IN(""), ZT_E_PARSE},
        {IN("1.2.3.4"), ZT_E_PARSE},
        {IN("[::1]"), ZT_E_PARSE},
        {IN("::1:80"), ZT_E_PARSE},
        {IN("fd00::1:80"), ZT_E_PARSE},
        {IN("[::1]:"), ZT_E_PARSE},
        {IN("1.2.3.4:"), ZT_E_PARSE},
        {IN(":80"), ZT_E_PARSE},
        {IN("[]:80"), ZT_E_PARSE},
        {IN("[::1]:65536"), ZT_E_RANGE},
        {IN("1.2.3.4:65536"), ZT_E_RANGE},
        {IN("1.2.3.4:99999999999999999999999999"), ZT_E_RANGE},
        {IN("1.2.3.4:0"), ZT_E_RANGE},
        {IN("[::1]:0"), ZT_E_RANGE},
        {IN("1.2.3.4:-1"), ZT_E_PARSE},
        {IN("1.2.3.4:+80"), ZT_E_PARSE},
        {IN("1.2.3.4: 80"), ZT_E_PARSE},
        {IN("1.2.3.4 :80"), ZT_E_PARSE},
        {IN(" 1.2.3.4:80"), ZT_E_PARSE},
        {IN("1.2.3.4:80 "), ZT_E_PARSE},
        {IN("1.2.3.4:080"), ZT_E_PARSE},
        {IN("1.2.3.4:00"), ZT_E_PARSE},
        {IN("1.2.3.4:0x50"), ZT_E_PARSE},
        {IN("1.2.3.4:1e3"), ZT_E_PARSE},
        {IN("1.2.3.4:80:"), ZT_E_PARSE},
        {IN("1.2.3.4:80:81"), ZT_E_PARSE},
        {IN("[1.2.3.4]:80"), ZT_E_PARSE},
        {IN("[::1]80"), ZT_E_PARSE},
        {IN("[::1]:80:81"), ZT_E_PARSE},
        {IN("[::1:80"), ZT_E_PARSE},
        {IN("::1]:80"), ZT_E_PARSE},
        {IN("[[::1]]:80"), ZT_E_PARSE},
        {IN("[ ::1]:80"), ZT_E_PARSE},
        {IN("[fe80::1%eth0]:80"), ZT_E_PARSE},
        {IN("01.2.3.4:80"), ZT_E_PARSE},
        {IN("256.1.1.1:80"), ZT_E_PARSE},
        {IN("1.2.3:80"), ZT_E_PARSE},
        {IN("1.2.3.4.5:80"), ZT_E_PARSE},
        {IN("localhost:80"), ZT_E_PARSE},
        {IN("1.2.3.4:8\0"), ZT_E_PARSE},
        {IN("1.2.3.4:\0"
            "80"),
         ZT_E_PARSE},
        {IN("1.2.3.4\0:80"), ZT_E_PARSE},
        {IN("[::1\0]:80"), ZT_E_PARSE},
        {IN("\0"), ZT_E_PARSE},
};

START_TEST(addr_parse_rejects_malformed_with_stated_error)
{
	struct zt_sockaddr sa;
	const struct input *in = &addr_invalid[_i].in;

	memset(&sa, 0xa5, sizeof(sa));
	ck_assert_int_eq(zt_addr_parse(&sa, in->s, in->len, 0), addr_invalid[_i].err);
	ck_assert_uint_eq(sa.port, 0xa5a5);
	ck_assert_int_eq(sa.ip.bytes[0], 0xa5);
}
END_TEST

START_TEST(addr_parse_bounds_very_long_input)
{
	struct zt_sockaddr sa;
	char s[4096];
	size_t n;

	n = (size_t)snprintf(s, sizeof(s), "1.2.3.4:");
	memset(s + n, '9', sizeof(s) - n);
	ck_assert_int_eq(zt_addr_parse(&sa, s, sizeof(s), 0), ZT_E_RANGE);
	memset(s + n, '0', sizeof(s) - n);
	ck_assert_int_eq(zt_addr_parse(&sa, s, sizeof(s), 0), ZT_E_PARSE);
	memset(s, '1', sizeof(s));
	ck_assert_int_eq(zt_addr_parse(&sa, s, sizeof(s), 0), ZT_E_PARSE);
	s[0] = '[';
	ck_assert_int_eq(zt_addr_parse(&sa, s, sizeof(s), 0), ZT_E_PARSE);
}
END_TEST

START_TEST(addr_parse_accepts_port_zero_only_with_flag)
{
	struct zt_sockaddr sa;

	ck_assert_int_eq(zt_addr_parse(&sa, "1.2.3.4:0", 9, 0), ZT_E_RANGE);
	ck_assert_int_eq(zt_addr_parse(&sa, "1.2.3.4:0", 9, ZT_ADDR_PORT0_OK), 0);
	ck_assert_uint_eq(sa.port, 0);
	ck_assert_int_eq(zt_addr_parse(&sa, "[::]:0", 6, ZT_ADDR_PORT0_OK), 0);
	ck_assert_int_eq(sa.ip.family, AF_INET6);
	ck_assert_uint_eq(sa.port, 0);
	/* The flag relaxes only the value, not the syntax or the upper bound. */
	ck_assert_int_eq(zt_addr_parse(&sa, "1.2.3.4:00", 10, ZT_ADDR_PORT0_OK), ZT_E_PARSE);
	ck_assert_int_eq(zt_addr_parse(&sa, "1.2.3.4:65536", 13, ZT_ADDR_PORT0_OK), ZT_E_RANGE);
}
END_TEST

/* ---- round trips -------------------------------------------------------------------------- */

static const char *const canonical_addrs[] = {
        "10.0.0.1:80",
        "127.0.0.1:15000",
        "255.255.255.255:65535",
        "[::1]:1",
        "[fd00::1]:15008",
        "[2001:db8::1:0:0:1]:443",
        "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
        "[::1.2.3.4]:53",
        "[fe80::1]:8080",
};

START_TEST(addr_round_trips_canonical_text)
{
	struct zt_sockaddr a, b;
	char buf[ZT_ADDR_STRLEN];
	const char *s = canonical_addrs[_i];

	ck_assert_int_eq(zt_addr_parse(&a, s, strlen(s), 0), 0);
	ck_assert_int_eq(zt_addr_format(&a, buf, sizeof(buf)), (int)strlen(s));
	ck_assert_str_eq(buf, s);
	ck_assert_int_eq(zt_addr_parse(&b, buf, strlen(buf), 0), 0);
	ck_assert(zt_addr_equal(&a, &b));
}
END_TEST

/* ---- v4-mapped canonicalisation ----------------------------------------------------------- */

START_TEST(ip_v4_mapped_text_is_identical_to_ipv4)
{
	struct zt_ip a = ip_of("::ffff:10.0.0.1"), b = ip_of("10.0.0.1");

	ck_assert_int_eq(a.family, AF_INET);
	ck_assert(zt_ip_equal(&a, &b));
	/* Canonical values compare equal byte for byte, so they can be hashed as is. */
	ck_assert_mem_eq(&a, &b, sizeof(a));
}
END_TEST

START_TEST(ip_from_bytes_takes_4_or_16_and_unmaps)
{
	static const uint8_t v4[4] = {10, 0, 0, 1};
	static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
	static const uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	struct zt_ip ip, ten = ip_of("10.0.0.1"), fd = ip_of("fd00::1");

	ck_assert_int_eq(zt_ip_from_bytes(&ip, v4, 4), 0);
	ck_assert_mem_eq(&ip, &ten, sizeof(ip));
	ck_assert_int_eq(zt_ip_from_bytes(&ip, mapped, 16), 0);
	ck_assert_mem_eq(&ip, &ten, sizeof(ip));
	ck_assert_int_eq(zt_ip_from_bytes(&ip, v6, 16), 0);
	ck_assert_mem_eq(&ip, &fd, sizeof(ip));
	ck_assert_int_eq(zt_ip_from_bytes(&ip, v6, 0), ZT_E_PARSE);
	ck_assert_int_eq(zt_ip_from_bytes(&ip, v6, 5), ZT_E_PARSE);
	ck_assert_int_eq(zt_ip_from_bytes(&ip, v6, 15), ZT_E_PARSE);
}
END_TEST

START_TEST(addr_from_sockaddr_unmaps_v4_mapped_peer)
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(8080)};
	struct zt_sockaddr sa, want;

	ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr), 1);
	ck_assert_int_eq(zt_addr_from_sockaddr(&sa, (struct sockaddr *)&in6, sizeof(in6)), 0);
	ck_assert_int_eq(zt_addr_parse(&want, "10.0.0.1:8080", 13, 0), 0);
	ck_assert_int_eq(sa.ip.family, AF_INET);
	ck_assert(zt_addr_equal(&sa, &want));
}
END_TEST

START_TEST(addr_from_sockaddr_keeps_ipv6_and_drops_scope)
{
	struct sockaddr_in6 in6 = {
	        .sin6_family = AF_INET6, .sin6_port = htons(443), .sin6_scope_id = 2};
	struct zt_sockaddr sa;
	char buf[ZT_ADDR_STRLEN];

	ck_assert_int_eq(inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr), 1);
	ck_assert_int_eq(zt_addr_from_sockaddr(&sa, (struct sockaddr *)&in6, sizeof(in6)), 0);
	ck_assert_int_eq(zt_addr_format(&sa, buf, sizeof(buf)), 13);
	ck_assert_str_eq(buf, "[fe80::1]:443");
}
END_TEST

START_TEST(addr_from_sockaddr_rejects_other_families_and_short_lengths)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(1)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct zt_sockaddr sa;

	ck_assert_int_eq(zt_addr_from_sockaddr(&sa, (struct sockaddr *)&un, sizeof(un)),
	                 -EAFNOSUPPORT);
	ck_assert_int_eq(zt_addr_from_sockaddr(&sa, (struct sockaddr *)&in, sizeof(in) - 1),
	                 -EINVAL);
	ck_assert_int_eq(zt_addr_from_sockaddr(&sa, (struct sockaddr *)&in6, sizeof(in6) - 1),
	                 -EINVAL);
	ck_assert_int_eq(zt_addr_from_sockaddr(&sa, (struct sockaddr *)&in, 1), -EINVAL);
	ck_assert_int_eq(zt_addr_from_sockaddr(&sa, (struct sockaddr *)&in, 0), -EINVAL);
}
END_TEST

START_TEST(addr_to_sockaddr_fills_own_family_and_round_trips)
{
	static const char *const addrs[] = {"10.0.0.1:80", "[fd00::1]:15008"};
	struct sockaddr_storage ss;
	struct zt_sockaddr a, b, unset = {0};
	socklen_t len;
	size_t i;

	for (i = 0; i < N(addrs); i++) {
		ck_assert_int_eq(zt_addr_parse(&a, addrs[i], strlen(addrs[i]), 0), 0);
		len = zt_addr_to_sockaddr(&a, &ss);
		ck_assert_int_eq(ss.ss_family, a.ip.family);
		ck_assert_uint_eq(len, a.ip.family == AF_INET ? sizeof(struct sockaddr_in)
		                                              : sizeof(struct sockaddr_in6));
		ck_assert_int_eq(zt_addr_from_sockaddr(&b, (struct sockaddr *)&ss, len), 0);
		ck_assert(zt_addr_equal(&a, &b));
	}
	ck_assert_uint_eq(((struct sockaddr_in6 *)&ss)->sin6_port, htons(15008));
	ck_assert_uint_eq(zt_addr_to_sockaddr(&unset, &ss), 0);
}
END_TEST

/* Through the kernel: a dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1, which
 * must come out as 127.0.0.1 (spec §1.1). */
START_TEST(addr_from_sockaddr_canonicalises_dual_stack_accept)
{
	struct zt_sockaddr any, bound, peer, local, want;
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd, cfd, afd, off = 0;
	char buf[ZT_ADDR_STRLEN];

	ck_assert_int_eq(zt_addr_parse(&any, "[::]:0", 6, ZT_ADDR_PORT0_OK), 0);
	lfd = socket(AF_INET6, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)), 0);
	len = zt_addr_to_sockaddr(&any, &ss);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&ss, len), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	len = sizeof(ss);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
	ck_assert_int_eq(zt_addr_from_sockaddr(&bound, (struct sockaddr *)&ss, len), 0);
	ck_assert_int_eq(bound.ip.family, AF_INET6);
	ck_assert(zt_ip_is_unspecified(&bound.ip));
	ck_assert_uint_ne(bound.port, 0);

	ck_assert_int_eq(zt_addr_parse(&want, "127.0.0.1:1", 11, 0), 0);
	want.port = bound.port;
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(cfd, 0);
	len = zt_addr_to_sockaddr(&want, &ss);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&ss, len), 0);

	len = sizeof(ss);
	afd = accept(lfd, (struct sockaddr *)&ss, &len);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6); /* what the kernel hands out */
	ck_assert_int_eq(zt_addr_from_sockaddr(&peer, (struct sockaddr *)&ss, len), 0);
	ck_assert_int_eq(peer.ip.family, AF_INET);
	ck_assert_int_eq(zt_ip_format(&peer.ip, buf, sizeof(buf)), 9);
	ck_assert_str_eq(buf, "127.0.0.1");
	len = sizeof(ss);
	ck_assert_int_eq(getsockname(afd, (struct sockaddr *)&ss, &len), 0);
	ck_assert_int_eq(zt_addr_from_sockaddr(&local, (struct sockaddr *)&ss, len), 0);
	ck_assert(zt_addr_equal(&local, &want));
	close(afd);
	close(cfd);
	close(lfd);
}
END_TEST

/* ---- formatting --------------------------------------------------------------------------- */

START_TEST(format_reports_too_small_buffer_and_leaves_empty_string)
{
	struct zt_ip ip = ip_of("10.0.0.1");
	struct zt_sockaddr sa = {.ip = ip_of("fd00::1"), .port = 80};
	struct zt_cidr c = cidr_of("10.0.0.0/8");
	char buf[32];

	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(zt_ip_format(&ip, buf, 8), ZT_E_TOOBIG);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(zt_ip_format(&ip, buf, 9), 8);
	ck_assert_str_eq(buf, "10.0.0.1");
	ck_assert_int_eq(zt_ip_format(&ip, NULL, 0), ZT_E_TOOBIG);
	ck_assert_int_eq(zt_addr_format(&sa, buf, 12), ZT_E_TOOBIG);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(zt_addr_format(&sa, buf, 13), 12);
	ck_assert_str_eq(buf, "[fd00::1]:80");
	ck_assert_int_eq(zt_cidr_format(&c, buf, 10), ZT_E_TOOBIG);
	ck_assert_int_eq(zt_cidr_format(&c, buf, 11), 10);
	ck_assert_str_eq(buf, "10.0.0.0/8");
}
END_TEST

START_TEST(format_fits_longest_values_in_size_constants)
{
	struct zt_sockaddr sa = {.ip = ip_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	                         .port = 65535};
	struct zt_cidr c = cidr_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	char abuf[ZT_ADDR_STRLEN], cbuf[ZT_CIDR_STRLEN], ibuf[ZT_IP_STRLEN];

	ck_assert_int_eq(zt_ip_format(&sa.ip, ibuf, sizeof(ibuf)), 39);
	ck_assert_int_eq(zt_addr_format(&sa, abuf, sizeof(abuf)), 47);
	ck_assert_int_eq(zt_cidr_format(&c, cbuf, sizeof(cbuf)), 43);
	ck_assert_str_eq(cbuf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	ck_assert_uint_ge(ZT_ADDR_STRLEN, ZT_IP_STRLEN + 8);
}
END_TEST

START_TEST(format_rejects_unset_family)
{
	struct zt_ip ip = {0};
	struct zt_sockaddr sa = {0};
	struct zt_cidr c = {0};
	char buf[ZT_ADDR_STRLEN];

	ck_assert_int_eq(zt_ip_format(&ip, buf, sizeof(buf)), -EAFNOSUPPORT);
	ck_assert_int_eq(zt_addr_format(&sa, buf, sizeof(buf)), -EAFNOSUPPORT);
	ck_assert_int_eq(zt_cidr_format(&c, buf, sizeof(buf)), -EAFNOSUPPORT);
}
END_TEST

/* ---- equality and predicates -------------------------------------------------------------- */

START_TEST(equal_compares_family_bytes_and_port)
{
	struct zt_ip v4any = ip_of("0.0.0.0"), v6any = ip_of("::");
	struct zt_sockaddr a, b;

	ck_assert(!zt_ip_equal(&v4any, &v6any)); /* same zero bytes, different family */
	ck_assert(zt_ip_equal(&v6any, &(struct zt_ip){.family = AF_INET6}));
	ck_assert_int_eq(zt_addr_parse(&a, "10.0.0.1:80", 11, 0), 0);
	ck_assert_int_eq(zt_addr_parse(&b, "10.0.0.1:81", 11, 0), 0);
	ck_assert(!zt_addr_equal(&a, &b));
	b.port = 80;
	ck_assert(zt_addr_equal(&a, &b));
	b.ip = ip_of("10.0.0.2");
	ck_assert(!zt_addr_equal(&a, &b));
}
END_TEST

static const struct {
	const char *ip;
	bool loopback, unspecified;
} predicates[] = {
        {"127.0.0.1", true, false},
        {"127.255.255.254", true, false},
        {"126.255.255.255", false, false},
        {"128.0.0.1", false, false},
        {"::1", true, false},
        {"::ffff:127.0.0.1", true, false},
        {"::2", false, false},
        {"fd00::1", false, false},
        {"0.0.0.0", false, true},
        {"::", false, true},
        {"::ffff:0.0.0.0", false, true},
        {"0.0.0.1", false, false},
};

START_TEST(ip_predicates_classify_loopback_and_unspecified)
{
	struct zt_ip ip = ip_of(predicates[_i].ip);

	ck_assert_msg(zt_ip_is_loopback(&ip) == predicates[_i].loopback, "%s", predicates[_i].ip);
	ck_assert_msg(zt_ip_is_unspecified(&ip) == predicates[_i].unspecified, "%s",
	              predicates[_i].ip);
}
END_TEST

START_TEST(ip_predicates_are_false_for_unset_value)
{
	struct zt_ip ip = {0};

	ck_assert(!zt_ip_is_loopback(&ip));
	ck_assert(!zt_ip_is_unspecified(&ip));
}
END_TEST

/* ---- CIDR --------------------------------------------------------------------------------- */

static const struct {
	const char *in, *text;
	int family;
} cidr_valid[] = {
        {"10.0.0.0/8", "10.0.0.0/8", AF_INET},
        {"10.1.2.3/8", "10.0.0.0/8", AF_INET}, /* host bits cleared */
        {"10.255.255.255/9", "10.128.0.0/9", AF_INET},
        {"1.2.3.4/32", "1.2.3.4/32", AF_INET},
        {"255.255.255.255/0", "0.0.0.0/0", AF_INET},
        {"fd00::/64", "fd00::/64", AF_INET6},
        {"fd00::1:2/64", "fd00::/64", AF_INET6},
        {"FD00:0:0:0:ffff::/65", "fd00::8000:0:0:0/65", AF_INET6},
        {"::/0", "::/0", AF_INET6},
        {"::1/128", "::1/128", AF_INET6},
        {"::ffff:10.1.2.3/104", "10.0.0.0/8", AF_INET},
        {"::ffff:10.1.2.3/128", "10.1.2.3/32", AF_INET},
        {"::ffff:0.0.0.0/96", "0.0.0.0/0", AF_INET},
        {"::ffff:10.0.0.0/95", "::fffe:0:0/95", AF_INET6}, /* wider than the mapped range */
        {"::ffff:1.2.3.4/33", "::/33", AF_INET6},
};

START_TEST(cidr_parse_accepts_valid_and_normalises_host_bits)
{
	struct zt_cidr c;
	char buf[ZT_CIDR_STRLEN];
	const char *in = cidr_valid[_i].in;

	ck_assert_int_eq(zt_cidr_parse(&c, in, strlen(in)), 0);
	ck_assert_int_eq(c.ip.family, cidr_valid[_i].family);
	ck_assert_int_eq(zt_cidr_format(&c, buf, sizeof(buf)), (int)strlen(cidr_valid[_i].text));
	ck_assert_str_eq(buf, cidr_valid[_i].text);
}
END_TEST

static const struct {
	struct input in;
	int err;
} cidr_invalid[] = {
        {IN(""), ZT_E_PARSE},
        {IN("10.0.0.0"), ZT_E_PARSE},
        {IN("fd00::"), ZT_E_PARSE},
        {IN("10.0.0.0/"), ZT_E_PARSE},
        {IN("/8"), ZT_E_PARSE},
        {IN("10.0.0.0/33"), ZT_E_RANGE},
        {IN("10.0.0.0/99999999999999999999"), ZT_E_RANGE},
        {IN("fd00::/129"), ZT_E_RANGE},
        {IN("::ffff:1.2.3.4/129"), ZT_E_RANGE},
        {IN("10.0.0.0/08"), ZT_E_PARSE},
        {IN("10.0.0.0/-1"), ZT_E_PARSE},
        {IN("10.0.0.0/+8"), ZT_E_PARSE},
        {IN("10.0.0.0/8/8"), ZT_E_PARSE},
        {IN("10.0.0.0/8 "), ZT_E_PARSE},
        {IN("10.0.0.0/ 8"), ZT_E_PARSE},
        {IN("10.0.0.0 /8"), ZT_E_PARSE},
        {IN(" 10.0.0.0/8"), ZT_E_PARSE},
        {IN("10.0.0.0/0x8"), ZT_E_PARSE},
        {IN("1.2.3/8"), ZT_E_PARSE},
        {IN("01.2.3.4/8"), ZT_E_PARSE},
        {IN("[fd00::]/64"), ZT_E_PARSE},
        {IN("fd00::%eth0/64"), ZT_E_PARSE},
        {IN("10.0.0.0/8\0"), ZT_E_PARSE},
        {IN("10.0.0.0\0/8"), ZT_E_PARSE},
        {IN("10.0.0.0/\0"
            "8"),
         ZT_E_PARSE},
        {IN("10.0.0.0:80/8"), ZT_E_PARSE},
};

START_TEST(cidr_parse_rejects_malformed_with_stated_error)
{
	struct zt_cidr c;
	const struct input *in = &cidr_invalid[_i].in;

	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(zt_cidr_parse(&c, in->s, in->len), cidr_invalid[_i].err);
	ck_assert_uint_eq(c.prefix, 0xa5a5a5a5u);
}
END_TEST

START_TEST(cidr_parse_rejects_very_long_input)
{
	char s[8192];
	struct zt_cidr c;

	memset(s, '1', sizeof(s));
	ck_assert_int_eq(zt_cidr_parse(&c, s, sizeof(s)), ZT_E_PARSE);
	s[sizeof(s) - 3] = '/';
	ck_assert_int_eq(zt_cidr_parse(&c, s, sizeof(s)), ZT_E_PARSE);
	memcpy(s, "10.0.0.0/", 9);
	ck_assert_int_eq(zt_cidr_parse(&c, s, sizeof(s)), ZT_E_PARSE); /* a '/' inside the prefix */
	memset(s + 9, '9', sizeof(s) - 9);
	ck_assert_int_eq(zt_cidr_parse(&c, s, sizeof(s)), ZT_E_RANGE);
}
END_TEST

static const struct {
	const char *cidr, *ip;
	bool in;
} contains[] = {
        /* /0 holds every address of its own family and none of the other. */
        {"0.0.0.0/0", "0.0.0.0", true},
        {"0.0.0.0/0", "255.255.255.255", true},
        {"0.0.0.0/0", "::", false},
        {"0.0.0.0/0", "::1", false},
        {"::/0", "::", true},
        {"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"::/0", "10.0.0.1", false},
        {"::/0", "::ffff:10.0.0.1", false}, /* that is IPv4 once canonical */
        /* Full-length prefixes hold exactly one address. */
        {"1.2.3.4/32", "1.2.3.4", true},
        {"1.2.3.4/32", "1.2.3.5", false},
        {"1.2.3.4/32", "1.2.3.3", false},
        {"1.2.3.4/32", "::ffff:1.2.3.4", true},
        {"fd00::1/128", "fd00::1", true},
        {"fd00::1/128", "fd00::", false},
        {"fd00::1/128", "fd00::2", false},
        {"fd00::1/128", "fd00::1:1", false},
        {"fd00::1/128", "fd01::1", false},
        /* Byte-aligned and partial-byte boundaries. */
        {"10.0.0.0/8", "10.0.0.0", true},
        {"10.0.0.0/8", "10.255.255.255", true},
        {"10.0.0.0/8", "9.255.255.255", false},
        {"10.0.0.0/8", "11.0.0.0", false},
        {"10.128.0.0/9", "10.128.0.0", true},
        {"10.128.0.0/9", "10.255.255.255", true},
        {"10.128.0.0/9", "10.127.255.255", false},
        {"128.0.0.0/1", "128.0.0.0", true},
        {"128.0.0.0/1", "127.255.255.255", false},
        {"10.0.0.0/31", "10.0.0.1", true},
        {"10.0.0.0/31", "10.0.0.2", false},
        {"fd00::/64", "fd00::ffff:ffff:ffff:ffff", true},
        {"fd00::/64", "fd00:0:0:1::", false},
        {"fd00::8000:0:0:0/65", "fd00::ffff:ffff:ffff:ffff", true},
        {"fd00::8000:0:0:0/65", "fd00::7fff:ffff:ffff:ffff", false},
        {"fd00::/127", "fd00::1", true},
        {"fd00::/127", "fd00::2", false},
        {"::ffff:10.0.0.0/104", "10.9.8.7", true},
        {"::ffff:10.0.0.0/104", "11.0.0.0", false},
};

START_TEST(cidr_contains_respects_boundaries)
{
	struct zt_cidr c = cidr_of(contains[_i].cidr);
	struct zt_ip ip = ip_of(contains[_i].ip);

	ck_assert_msg(zt_cidr_contains(&c, &ip) == contains[_i].in, "%s in %s: expected %d",
	              contains[_i].ip, contains[_i].cidr, contains[_i].in);
}
END_TEST

START_TEST(cidr_from_ip_makes_host_prefix_and_checks_range)
{
	struct zt_ip ip = ip_of("10.1.2.3"), unset = {0}, v6 = ip_of("fd00::1");
	struct zt_cidr c;
	char buf[ZT_CIDR_STRLEN];

	ck_assert_int_eq(zt_cidr_from_ip(&c, &ip, 32), 0);
	ck_assert(zt_cidr_contains(&c, &ip));
	ck_assert_int_eq(zt_cidr_format(&c, buf, sizeof(buf)), 11);
	ck_assert_str_eq(buf, "10.1.2.3/32");
	ck_assert_int_eq(zt_cidr_from_ip(&c, &ip, 16), 0);
	ck_assert_int_eq(zt_cidr_format(&c, buf, sizeof(buf)), 11);
	ck_assert_str_eq(buf, "10.1.0.0/16");
	ck_assert_int_eq(zt_cidr_from_ip(&c, &ip, 33), ZT_E_RANGE);
	ck_assert_int_eq(zt_cidr_from_ip(&c, &v6, 128), 0);
	ck_assert_int_eq(zt_cidr_from_ip(&c, &v6, 129), ZT_E_RANGE);
	ck_assert_int_eq(zt_cidr_from_ip(&c, &unset, 0), -EAFNOSUPPORT);
}
END_TEST

START_TEST(cidr_from_bytes_measures_prefix_in_given_family)
{
	static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
	static const uint8_t v4[4] = {10, 1, 2, 3};
	struct zt_cidr c, want = cidr_of("10.0.0.0/8");

	ck_assert_int_eq(zt_cidr_from_bytes(&c, mapped, 16, 104), 0);
	ck_assert_mem_eq(&c, &want, sizeof(c));
	ck_assert_int_eq(zt_cidr_from_bytes(&c, v4, 4, 8), 0);
	ck_assert_mem_eq(&c, &want, sizeof(c));
	ck_assert_int_eq(zt_cidr_from_bytes(&c, v4, 4, 33), ZT_E_RANGE);
	ck_assert_int_eq(zt_cidr_from_bytes(&c, mapped, 16, 129), ZT_E_RANGE);
	ck_assert_int_eq(zt_cidr_from_bytes(&c, v4, 3, 8), ZT_E_PARSE);
	ck_assert_int_eq(zt_cidr_from_bytes(&c, mapped, 0, 0), ZT_E_PARSE);
}
END_TEST

Suite *addr_suite(void);
Suite *addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, ip_parse_accepts_valid_and_canonicalises, 0, N(ip_valid));
	tcase_add_loop_test(tc, ip_parse_rejects_malformed, 0, N(ip_invalid));
	tcase_add_test(tc, ip_parse_rejects_very_long_input);
	tcase_add_test(tc, ip_parse_reads_only_len_bytes);
	tcase_add_loop_test(tc, addr_parse_accepts_valid_and_formats_canonically, 0, N(addr_valid));
	tcase_add_loop_test(tc, addr_parse_rejects_malformed_with_stated_error, 0, N(addr_invalid));
	tcase_add_test(tc, addr_parse_bounds_very_long_input);
	tcase_add_test(tc, addr_parse_accepts_port_zero_only_with_flag);
	tcase_add_loop_test(tc, addr_round_trips_canonical_text, 0, N(canonical_addrs));
	suite_add_tcase(s, tc);

	tc = tcase_create("canonical");
	tcase_add_test(tc, ip_v4_mapped_text_is_identical_to_ipv4);
	tcase_add_test(tc, ip_from_bytes_takes_4_or_16_and_unmaps);
	tcase_add_test(tc, addr_from_sockaddr_unmaps_v4_mapped_peer);
	tcase_add_test(tc, addr_from_sockaddr_keeps_ipv6_and_drops_scope);
	tcase_add_test(tc, addr_from_sockaddr_rejects_other_families_and_short_lengths);
	tcase_add_test(tc, addr_to_sockaddr_fills_own_family_and_round_trips);
	tcase_add_test(tc, addr_from_sockaddr_canonicalises_dual_stack_accept);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, format_reports_too_small_buffer_and_leaves_empty_string);
	tcase_add_test(tc, format_fits_longest_values_in_size_constants);
	tcase_add_test(tc, format_rejects_unset_family);
	tcase_add_test(tc, equal_compares_family_bytes_and_port);
	tcase_add_loop_test(tc, ip_predicates_classify_loopback_and_unspecified, 0, N(predicates));
	tcase_add_test(tc, ip_predicates_are_false_for_unset_value);
	suite_add_tcase(s, tc);

	tc = tcase_create("cidr");
	tcase_add_loop_test(tc, cidr_parse_accepts_valid_and_normalises_host_bits, 0,
	                    N(cidr_valid));
	tcase_add_loop_test(tc, cidr_parse_rejects_malformed_with_stated_error, 0, N(cidr_invalid));
	tcase_add_test(tc, cidr_parse_rejects_very_long_input);
	tcase_add_loop_test(tc, cidr_contains_respects_boundaries, 0, N(contains));
	tcase_add_test(tc, cidr_from_ip_makes_host_prefix_and_checks_range);
	tcase_add_test(tc, cidr_from_bytes_measures_prefix_in_given_family);
	suite_add_tcase(s, tc);
	return s;
}
