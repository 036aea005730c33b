/* Fuzz target: SPIFFE IDs as they come in certificates and CSRs (protocol/spiffe.h): parse,
 * format back, parse again to an equal ID; and the SAN list built from the same text. */
#include "protocol/spiffe.h"
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
	struct zt_spiffe a, b;
	struct zt_spiffe_sans sans = {0};
	char buf[ZT_SPIFFE_STR_SIZE];

	if (zt_spiffe_parse(&a, (const char *)data, size) == 0) {
		if (zt_spiffe_format(&a, buf, sizeof(buf)) < 0 ||
		    zt_spiffe_parse(&b, buf, strlen(buf)) != 0 || !zt_spiffe_eq(&a, &b))
			__builtin_trap(); /* a parsed ID must print and parse back to itself */
	}
	zt_spiffe_sans_add(&sans, (const char *)data, size);
	zt_spiffe_sans_clear(&sans);
	return 0;
}
