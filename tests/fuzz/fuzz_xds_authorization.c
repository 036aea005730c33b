/* Fuzz target: an istio.security.Authorization resource from a delta-xDS response, decoded
 * and applied to a fresh store, then removed. Input: the encoded Authorization. */
#include "runtime/log.h"
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
	struct zt_store *store = zt_store_new();
	char err[256];

	if (zt_store_apply_authorization(store, "ns/fuzz", "1", data, size, err, sizeof(err)) == 0) {
		zt_store_apply_authorization(store, "ns/fuzz", "2", data, size, err, sizeof(err));
		zt_store_remove_authorization(store, "ns/fuzz");
	}
	zt_store_free(store);
	return 0;
}
