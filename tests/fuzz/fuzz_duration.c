/* Fuzz target: durations and sizes from environment variables and YAML (runtime/duration.h).
 * What parses must format and parse back to the same value. */
#include "runtime/duration.h"
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
	char s[256], buf[64];
	uint64_t v, w;

	fuzz_cstr(s, sizeof(s), data, size);
	if (zt_duration_parse(s, &v) == 0 && zt_duration_format(v, buf, sizeof(buf)) >= 0) {
		if (zt_duration_parse(buf, &w) != 0 || v != w)
			__builtin_trap();
	}
	if (zt_size_parse(s, &v) == 0 && zt_size_format(v, buf, sizeof(buf)) >= 0) {
		if (zt_size_parse(buf, &w) != 0 || v != w)
			__builtin_trap();
	}
	return 0;
}
