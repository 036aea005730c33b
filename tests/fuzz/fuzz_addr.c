/* Fuzz target: addresses from configuration and peers (runtime/addr.h): bare IPs, ip:port and
 * CIDRs. Whatever parses must format and parse back to an equal value. */
#include "runtime/addr.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char buf[ZT_ADDR_STRLEN + ZT_CIDR_STRLEN];
	struct zt_ip ip, ip2;
	struct zt_sockaddr sa, sa2;
	struct zt_cidr c, c2;

	if (zt_ip_parse(&ip, s, size) == 0) {
		if (zt_ip_format(&ip, buf, sizeof(buf)) < 0 ||
		    zt_ip_parse(&ip2, buf, strlen(buf)) != 0 || !zt_ip_equal(&ip, &ip2))
			__builtin_trap();
	}
	if (zt_addr_parse(&sa, s, size, ZT_ADDR_PORT0_OK) == 0) {
		if (zt_addr_format(&sa, buf, sizeof(buf)) < 0 ||
		    zt_addr_parse(&sa2, buf, strlen(buf), ZT_ADDR_PORT0_OK) != 0 ||
		    !zt_addr_equal(&sa, &sa2))
			__builtin_trap();
	}
	if (zt_cidr_parse(&c, s, size) == 0) {
		if (zt_cidr_format(&c, buf, sizeof(buf)) < 0 ||
		    zt_cidr_parse(&c2, buf, strlen(buf)) != 0 || c.prefix != c2.prefix ||
		    !zt_ip_equal(&c.ip, &c2.ip) || !zt_cidr_contains(&c, &c2.ip))
			__builtin_trap();
	}
	zt_ip_from_bytes(&ip, data, size);
	if (size)
		zt_cidr_from_bytes(&c, data + 1, size - 1, data[0]);
	return 0;
}
