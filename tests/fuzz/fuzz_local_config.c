/* Fuzz target: ztunnel's LOCAL_XDS_PATH file (state/local.h): YAML, then the local config
 * schema, then applied to a fresh store. */
#include "runtime/log.h"
#include "runtime/yaml.h"
#include "state/local.h"
#include "state/store.h"
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
	struct zt_yaml_docs docs = {0};
	struct zt_local_config cfg = {0};
	char err[512];

	if (zt_yaml_parse("fuzz.yaml", (const char *)data, size, &docs, err, sizeof(err)) == 0 &&
	    docs.n > 0 && zt_local_xds_parse(docs.docs[0], "fuzz.yaml", &cfg, err, sizeof(err)) == 0) {
		struct zt_store *store = zt_store_new();
		zt_local_xds_apply(store, &cfg, err, sizeof(err));
		zt_store_free(store);
		zt_local_config_clear(&cfg);
	}
	zt_yaml_docs_clear(&docs);
	return 0;
}
