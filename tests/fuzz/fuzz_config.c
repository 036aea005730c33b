/* Fuzz target: ztunnel's settings (config/config.h zt_config_load): environment entries as an
 * operator (or a Helm chart) writes them, every variable's parser (addresses and endpoints,
 * durations, sizes, booleans, CA_HEADER_/XDS_HEADER_ metadata, ISTIO_META_*, the inline
 * PROXY_CONFIG), then the unsupported-settings check and the JSON form /config_dump shows.
 * Input: one "NAME=value" entry per line. */
#include <stdlib.h>

#include "config/config.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

#define MAX_ENV 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *env[MAX_ENV + 1], err[1024], out[512];
	struct zt_config cfg = {0};
	const uint8_t *p = data, *line = NULL;
	size_t n = size, len, ne = 0;
	bool refuse;

	while (ne < MAX_ENV && (len = fuzz_next(&p, &n, '\n', &line)) != (size_t)-1) {
		env[ne] = malloc(len + 1);
		if (!env[ne])
			abort();
		fuzz_cstr(env[ne], len + 1, line, len);
		ne++;
	}
	env[ne] = NULL;
	if (zt_config_load(&cfg, env, err, sizeof(err)) == 0) {
		json_t *j = zt_config_to_json(&cfg);
		zt_config_unsupported(&cfg, out, sizeof(out), &refuse);
		json_decref(j);
		zt_config_clear(&cfg);
	}
	/* zt_config_load may set the log spec (RUST_LOG): back to silent. */
	zt_log_set_spec("off", NULL, 0);
	for (size_t i = 0; i < ne; i++)
		free(env[i]);
	return 0;
}
