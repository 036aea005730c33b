/* Fuzz target: an istio.workload.Address resource (workload or service) from a delta-xDS
 * response, decoded and applied to a fresh store, then looked up and removed again, as the
 * xDS client does with what the server sends. Input: the encoded Address. */
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

	/* Twice: the second apply replaces the first (index update path). */
	if (zt_store_apply_address(store, "fuzz", "1", data, size, err, sizeof(err)) == 0) {
		zt_store_apply_address(store, "fuzz", "2", data, size, err, sizeof(err));
		zt_store_remove_address(store, "fuzz");
	}
	zt_store_free(store);
	return 0;
}
