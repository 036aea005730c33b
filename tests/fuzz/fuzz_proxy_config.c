/* Fuzz target: Istio's ProxyConfig as ztunnel reads it (config/proxy_config.h): the
 * PROXY_CONFIG document and the mesh config's defaultConfig, each turned into "NAME=value"
 * entries. Input: the first byte picks the reader (bit 0: the mesh config), the rest is the
 * YAML text. */
#include <string.h>

#include "config/proxy_config.h"
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
	struct zt_proxy_config_env env = {0};
	char err[512];
	int rc;

	if (!size)
		return 0;
	if (data[0] & 1)
		rc = zt_proxy_config_parse_mesh("mesh", (const char *)data + 1, size - 1, &env, err,
		                                sizeof(err));
	else
		rc = zt_proxy_config_parse("PROXY_CONFIG", (const char *)data + 1, size - 1, &env,
		                           err, sizeof(err));
	for (size_t i = 0; rc == 0 && i < env.n; i++)
		if (!strchr(env.v[i], '='))
			__builtin_trap();
	zt_proxy_config_env_clear(&env);
	return 0;
}
