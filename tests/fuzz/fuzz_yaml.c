/* Fuzz target: the bounded YAML reader (runtime/yaml.h) every YAML input goes through, and a
 * walk over the tree it builds. */
#include "runtime/log.h"
#include "runtime/yaml.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

static void walk(const struct zt_yaml *n, int depth)
{
	int64_t i;
	bool b;

	if (!n || depth > 200)
		return;
	zt_yaml_type_name(n);
	zt_yaml_is_null(n);
	zt_yaml_int(n, INT64_MIN, INT64_MAX, &i);
	zt_yaml_bool(n, &b);
	zt_yaml_str(n);
	for (size_t k = 0; k < 100000; k++) {
		const struct zt_yaml *a = zt_yaml_at(n, k), *key = zt_yaml_key(n, k);
		if (!a && !key)
			break;
		walk(a, depth + 1);
		walk(key, depth + 1);
		walk(zt_yaml_val(n, k), depth + 1);
		if (key && zt_yaml_str(key))
			zt_yaml_get(n, zt_yaml_str(key));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_yaml_docs docs = {0};
	char err[256];

	if (zt_yaml_parse("fuzz", (const char *)data, size, &docs, err, sizeof(err)) == 0)
		for (size_t i = 0; i < docs.n; i++)
			walk(docs.docs[i], 0);
	zt_yaml_docs_clear(&docs);
	return 0;
}
