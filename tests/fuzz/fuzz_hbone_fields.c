/* Fuzz target: the HBONE fields parsed from a peer's text (hbone/hbone.h): the CONNECT
 * authority, `baggage` and the `forwarded` host, each from the same input, and a parsed
 * authority formatted back and parsed again to the same value. */
#include <assert.h>

#include "hbone/hbone.h"
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
	struct zt_hbone_authority a, b;
	struct zt_hbone_meta m;
	char buf[ZT_HBONE_AUTHORITY_STRLEN + 8], host[ZT_HBONE_HOST_MAX + 1];
	char bag[ZT_HBONE_BAGGAGE_STRLEN];

	if (zt_hbone_authority_parse(&a, (const char *)data, size) == 0) {
		if (zt_hbone_authority_format(&a, buf, sizeof(buf)) >= 0 &&
		    zt_hbone_authority_parse(&b, buf, strlen(buf)) != 0)
			__builtin_trap(); /* what we print must parse again */
	}
	memset(&m, 0, sizeof(m));
	if (zt_hbone_baggage_parse(&m, (const char *)data, size))
		zt_hbone_baggage_format(&m, bag, sizeof(bag));
	zt_hbone_forwarded_host((const char *)data, size, host);
	return 0;
}
