/* Fuzz target: the admin's /logging request (admin/admin.h zt_admin_logging): query
 * arguments as libmicrohttpd hands them over (percent-decoded key and value, or a bare key),
 * applied to the live log spec and written back; the spec left must parse again. Input: one
 * argument per line, "key=value" or "key". */
#include <stdlib.h>

#include "admin/admin.h"
#include "admin/http.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

#define MAX_ARGS 16

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_http_kv kv[MAX_ARGS];
	char text[4096], *lines[MAX_ARGS], out[1024], why[256];
	struct zt_http_request req = {
	        .method = "POST", .path = "/logging", .query = kv, .body = ""};
	const uint8_t *p = data, *line = NULL;
	size_t n = size, len;

	while (req.nquery < MAX_ARGS && (len = fuzz_next(&p, &n, '\n', &line)) != (size_t)-1) {
		char *eq;
		lines[req.nquery] = fuzz_cstr(malloc(len + 1), len + 1, line, len);
		eq = strchr(lines[req.nquery], '=');
		if (eq)
			*eq = '\0';
		kv[req.nquery].key = lines[req.nquery];
		kv[req.nquery].value = eq ? eq + 1 : NULL;
		req.nquery++;
	}
	zt_admin_logging(&req, "off", out, sizeof(out));
	zt_log_get_spec(text, sizeof(text));
	if (zt_log_set_spec(text, why, sizeof(why)) < 0)
		__builtin_trap();
	zt_log_set_spec("off", NULL, 0);
	for (size_t i = 0; i < req.nquery; i++)
		free(lines[i]);
	return 0;
}
