/* Environment configuration tables: defaults, each value kind, exact error texts, error
 * collection, aliases, required entries, string ownership, and the help and dump output.
 * Variables come from a fake getenv, so the real environment never matters. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/envcfg.h"
#include "runtime/err.h"

struct cfg {
	char *cluster_id;
	char *node_name;
	char *xds_address;
	char *token;
	bool fake_ca;
	int64_t max_streams;
	uint64_t release_ms;
	uint64_t window;
	int mode;
};

enum { MODE_SHARED, MODE_DEDICATED };
static const char *const modes[] = {"shared", "dedicated", NULL};

static const struct zt_envcfg_var vars[] = {
        {.name = "CLUSTER_ID",
         .alias = "ISTIO_META_CLUSTER_ID",
         ZT_ENVCFG_FIELD(struct cfg, cluster_id, STRING),
         .def = "Kubernetes",
         .help = "Cluster name"},
        {.name = "NODE_NAME",
         ZT_ENVCFG_FIELD(struct cfg, node_name, STRING),
         .flags = ZT_ENVCFG_REQUIRED,
         .help = "Node this ztunnel runs on"},
        {.name = "XDS_ADDRESS",
         ZT_ENVCFG_FIELD(struct cfg, xds_address, STRING),
         .def = "https://istiod.istio-system.svc:15012",
         .help = "istiod address; empty disables xDS"},
        {.name = "AUTH_TOKEN",
         ZT_ENVCFG_FIELD(struct cfg, token, STRING),
         .flags = ZT_ENVCFG_SECRET,
         .help = "Token"},
        {.name = "FAKE_CA", ZT_ENVCFG_FIELD(struct cfg, fake_ca, BOOL), .def = "false"},
        {.name = "POOL_MAX_STREAMS_PER_CONNECTION",
         ZT_ENVCFG_FIELD(struct cfg, max_streams, INT),
         .def = "100",
         .min = 1,
         .max = 65535,
         .help = "Streams per pooled connection"},
        {.name = "POOL_UNUSED_RELEASE_TIMEOUT",
         ZT_ENVCFG_FIELD(struct cfg, release_ms, DURATION),
         .def = "5m"},
        {.name = "HTTP2_STREAM_WINDOW_SIZE",
         ZT_ENVCFG_FIELD(struct cfg, window, SIZE),
         .def = "4MiB"},
        {.name = "PROXY_MODE",
         ZT_ENVCFG_FIELD(struct cfg, mode, ENUM),
         .def = "shared",
         .choices = modes},
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

/* Fake environment: NULL-terminated name, value pairs. */
static const char *fake_getenv(const char *name, void *arg)
{
	const char *const *env = arg;
	size_t i;

	for (i = 0; env[i]; i += 2)
		if (strcmp(env[i], name) == 0)
			return env[i + 1];
	return NULL;
}

struct errors {
	char *msg[16];
	size_t n;
};

static void collect_cb(const char *msg, void *arg)
{
	struct errors *e = arg;

	ck_assert_uint_lt(e->n, 16);
	e->msg[e->n++] = strdup(msg);
}

static void errors_clear(struct errors *e)
{
	while (e->n)
		free(e->msg[--e->n]);
}

/* Loads vars from env; returns the rc, errors in *e. */
static int load(const struct zt_envcfg_var *v, size_t n, void *cfg, const char *const *env,
                struct errors *e)
{
	return zt_envcfg_load(v, n, cfg, fake_getenv, (void *)env, collect_cb, e);
}

/* Loads a single-entry table with the value text under NAME; *e gets the errors. */
static int load_one(const struct zt_envcfg_var *v, void *cfg, const char *text, struct errors *e)
{
	const char *env[] = {v->name, text, NULL};

	return load(v, 1, cfg, text ? env : env + 2, e);
}

START_TEST(envcfg_defaults_apply_when_unset)
{
	const char *env[] = {"NODE_NAME", "node-1", NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), 0);
	ck_assert_uint_eq(e.n, 0);
	ck_assert_str_eq(c.cluster_id, "Kubernetes");
	ck_assert_str_eq(c.node_name, "node-1");
	ck_assert_str_eq(c.xds_address, "https://istiod.istio-system.svc:15012");
	ck_assert_ptr_null(c.token);
	ck_assert(!c.fake_ca);
	ck_assert_int_eq(c.max_streams, 100);
	ck_assert_uint_eq(c.release_ms, 300000);
	ck_assert_uint_eq(c.window, 4u << 20);
	ck_assert_int_eq(c.mode, MODE_SHARED);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_env_values_override_defaults)
{
	const char *env[] = {"NODE_NAME",
	                     "n",
	                     "CLUSTER_ID",
	                     "c1",
	                     "XDS_ADDRESS",
	                     "https://x:1",
	                     "AUTH_TOKEN",
	                     "s3cret",
	                     "FAKE_CA",
	                     "true",
	                     "POOL_MAX_STREAMS_PER_CONNECTION",
	                     "7",
	                     "POOL_UNUSED_RELEASE_TIMEOUT",
	                     "1h30m",
	                     "HTTP2_STREAM_WINDOW_SIZE",
	                     "64KiB",
	                     "PROXY_MODE",
	                     "dedicated",
	                     NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), 0);
	ck_assert_uint_eq(e.n, 0);
	ck_assert_str_eq(c.cluster_id, "c1");
	ck_assert_str_eq(c.xds_address, "https://x:1");
	ck_assert_str_eq(c.token, "s3cret");
	ck_assert(c.fake_ca);
	ck_assert_int_eq(c.max_streams, 7);
	ck_assert_uint_eq(c.release_ms, 5400000);
	ck_assert_uint_eq(c.window, 65536);
	ck_assert_int_eq(c.mode, MODE_DEDICATED);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_strings_are_owned_copies)
{
	char value[] = "node-a";
	const char *env[] = {"NODE_NAME", value, NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), 0);
	ck_assert_ptr_ne(c.node_name, value);
	value[5] = 'z';
	ck_assert_str_eq(c.node_name, "node-a");
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_empty_string_is_a_value_not_unset)
{
	const char *env[] = {"NODE_NAME", "n", "XDS_ADDRESS", "", NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), 0);
	ck_assert_str_eq(c.xds_address, "");
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_empty_value_is_an_error_for_non_strings)
{
	const char *env[] = {"NODE_NAME", "n", "POOL_MAX_STREAMS_PER_CONNECTION", "", "FAKE_CA",
	                     "",          NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 2);
	ck_assert_str_eq(e.msg[0],
	                 "FAKE_CA=\"\": expected a boolean (true/false, yes/no, on/off, 1/0)");
	ck_assert_str_eq(e.msg[1], "POOL_MAX_STREAMS_PER_CONNECTION=\"\": expected an integer "
	                           "between 1 and 65535");
	errors_clear(&e);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_int_error_names_variable_value_and_range)
{
	const char *env[] = {"NODE_NAME", "n", "POOL_MAX_STREAMS_PER_CONNECTION", "abc", NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 1);
	ck_assert_str_eq(e.msg[0], "POOL_MAX_STREAMS_PER_CONNECTION=\"abc\": expected an integer "
	                           "between 1 and 65535");
	ck_assert_int_eq(c.max_streams, 0);           /* failed entries are zero, not the default */
	ck_assert_str_eq(c.cluster_id, "Kubernetes"); /* the others still load */
	errors_clear(&e);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_int_enforces_bounds_and_strict_syntax)
{
	static const char *const good[] = {"1", "65535", "0100"};
	static const int64_t want[] = {1, 65535, 100};
	static const char *const bad[] = {"0",   "65536", "-1",    " 5",
	                                  "5 ",  "+5",    "0x10",  "1e3",
	                                  "5.0", "-",     "1_000", "99999999999999999999"};
	const struct zt_envcfg_var *v = &vars[5];
	struct cfg c = {0};
	struct errors e = {0};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_int_eq(load_one(v, &c, good[i], &e), 0);
		ck_assert_int_eq(c.max_streams, want[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.max_streams = 42;
		ck_assert_msg(load_one(v, &c, bad[i], &e) == ZT_E_PARSE, "\"%s\" accepted", bad[i]);
		ck_assert_int_eq(c.max_streams, 0);
	}
	ck_assert_uint_eq(e.n, sizeof(bad) / sizeof(bad[0]));
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_int_messages_describe_open_bounds)
{
	struct {
		int64_t x;
	} c = {0};
	struct zt_envcfg_var v = {.name = "N", ZT_ENVCFG_FIELD(__typeof__(c), x, INT)};
	struct errors e = {0};

	ck_assert_int_eq(load_one(&v, &c, "-9223372036854775808", &e), 0);
	ck_assert_int_eq(c.x, INT64_MIN);
	ck_assert_int_eq(load_one(&v, &c, "9223372036854775807", &e), 0);
	ck_assert_int_eq(c.x, INT64_MAX);
	ck_assert_int_eq(load_one(&v, &c, "9223372036854775808", &e), ZT_E_PARSE);
	ck_assert_str_eq(e.msg[0], "N=\"9223372036854775808\": expected an integer");
	v.min = 1;
	v.max = INT64_MAX;
	ck_assert_int_eq(load_one(&v, &c, "0", &e), ZT_E_PARSE);
	ck_assert_str_eq(e.msg[1], "N=\"0\": expected an integer of at least 1");
	v.min = INT64_MIN;
	v.max = -1;
	ck_assert_int_eq(load_one(&v, &c, "0", &e), ZT_E_PARSE);
	ck_assert_str_eq(e.msg[2], "N=\"0\": expected an integer of at most -1");
	ck_assert_int_eq(load_one(&v, &c, "-5", &e), 0);
	ck_assert_int_eq(c.x, -5);
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_bool_accepts_all_spellings_in_any_case)
{
	static const char *const yes[] = {"true", "TRUE", "True", "1", "yes", "YES", "on", "On"};
	static const char *const no[] = {"false", "FALSE", "0", "no", "No", "off", "OFF"};
	static const char *const bad[] = {"2",     "t",  "y",  "enable", "yes please", " true",
	                                  "true ", "00", "-1", "truee",  "of",         "nope"};
	const struct zt_envcfg_var *v = &vars[4];
	struct cfg c = {0};
	struct errors e = {0};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		c.fake_ca = false;
		ck_assert_int_eq(load_one(v, &c, yes[i], &e), 0);
		ck_assert_msg(c.fake_ca, "\"%s\" not true", yes[i]);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		c.fake_ca = true;
		ck_assert_int_eq(load_one(v, &c, no[i], &e), 0);
		ck_assert_msg(!c.fake_ca, "\"%s\" not false", no[i]);
	}
	ck_assert_uint_eq(e.n, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(load_one(v, &c, bad[i], &e) == ZT_E_PARSE, "\"%s\" accepted", bad[i]);
	ck_assert_str_eq(e.msg[0],
	                 "FAKE_CA=\"2\": expected a boolean (true/false, yes/no, on/off, 1/0)");
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_duration_and_size_errors_say_what_is_expected)
{
	const char *env[] = {"NODE_NAME",
	                     "n",
	                     "POOL_UNUSED_RELEASE_TIMEOUT",
	                     "5 minutes",
	                     "HTTP2_STREAM_WINDOW_SIZE",
	                     "4MB",
	                     NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 2);
	ck_assert_str_eq(e.msg[0], "POOL_UNUSED_RELEASE_TIMEOUT=\"5 minutes\": expected a duration "
	                           "like 500ms, 10s, 5m or 1h30m (units ms, s, m, h, d)");
	ck_assert_str_eq(e.msg[1],
	                 "HTTP2_STREAM_WINDOW_SIZE=\"4MB\": expected a size in bytes like "
	                 "1048576, 64KiB or 4MiB (units B, KiB, MiB, GiB)");
	ck_assert_uint_eq(c.release_ms, 0);
	ck_assert_uint_eq(c.window, 0);
	errors_clear(&e);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_out_of_range_duration_and_size_are_reported)
{
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load_one(&vars[6], &c, "213503982335d", &e), ZT_E_PARSE);
	ck_assert_int_eq(load_one(&vars[7], &c, "17179869184GiB", &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 2);
	ck_assert_str_eq(e.msg[0], "POOL_UNUSED_RELEASE_TIMEOUT=\"213503982335d\": duration out of "
	                           "range");
	ck_assert_str_eq(e.msg[1],
	                 "HTTP2_STREAM_WINDOW_SIZE=\"17179869184GiB\": size out of range");
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_enum_matches_exactly_and_lists_choices)
{
	const struct zt_envcfg_var *v = &vars[8];
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load_one(v, &c, "dedicated", &e), 0);
	ck_assert_int_eq(c.mode, MODE_DEDICATED);
	ck_assert_int_eq(load_one(v, &c, "shared", &e), 0);
	ck_assert_int_eq(c.mode, MODE_SHARED);
	ck_assert_int_eq(load_one(v, &c, "Dedicated", &e), ZT_E_PARSE);
	ck_assert_int_eq(load_one(v, &c, "share", &e), ZT_E_PARSE);
	ck_assert_int_eq(load_one(v, &c, "shared ", &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 3);
	ck_assert_str_eq(e.msg[0], "PROXY_MODE=\"Dedicated\": expected one of: shared, dedicated");
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_collects_every_error_in_table_order)
{
	const char *env[] = {"FAKE_CA",    "maybe", "POOL_MAX_STREAMS_PER_CONNECTION", "70000",
	                     "PROXY_MODE", "both",  "POOL_UNUSED_RELEASE_TIMEOUT",     "-5m",
	                     NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 5);
	ck_assert_str_eq(e.msg[0], "NODE_NAME: required but not set");
	ck_assert_str_eq(e.msg[1],
	                 "FAKE_CA=\"maybe\": expected a boolean (true/false, yes/no, on/off, 1/0)");
	ck_assert_str_eq(e.msg[2], "POOL_MAX_STREAMS_PER_CONNECTION=\"70000\": expected an integer "
	                           "between 1 and 65535");
	ck_assert_str_eq(e.msg[3], "POOL_UNUSED_RELEASE_TIMEOUT=\"-5m\": expected a duration like "
	                           "500ms, 10s, 5m or 1h30m (units ms, s, m, h, d)");
	ck_assert_str_eq(e.msg[4], "PROXY_MODE=\"both\": expected one of: shared, dedicated");
	/* entries without errors were still loaded */
	ck_assert_str_eq(c.cluster_id, "Kubernetes");
	ck_assert_uint_eq(c.window, 4u << 20);
	errors_clear(&e);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_without_error_callback_still_fails)
{
	const char *env[] = {"FAKE_CA", "maybe", NULL};
	struct cfg c = {0};

	ck_assert_int_eq(zt_envcfg_load(vars, NVARS, &c, fake_getenv, env, NULL, NULL), ZT_E_PARSE);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_alias_is_read_when_name_is_unset)
{
	const char *alias_only[] = {"NODE_NAME", "n", "ISTIO_META_CLUSTER_ID", "from-alias", NULL};
	const char *both[] = {"NODE_NAME", "n", "ISTIO_META_CLUSTER_ID", "from-alias", "CLUSTER_ID",
	                      "from-name", NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, alias_only, &e), 0);
	ck_assert_str_eq(c.cluster_id, "from-alias");
	ck_assert_int_eq(load(vars, NVARS, &c, both, &e), 0);
	ck_assert_str_eq(c.cluster_id, "from-name");
	ck_assert_uint_eq(e.n, 0);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_error_from_alias_names_the_alias)
{
	struct {
		int64_t port;
	} c = {0};
	const struct zt_envcfg_var v = {.name = "STATS_PORT",
	                                .alias = "ISTIO_META_STATS_PORT",
	                                ZT_ENVCFG_FIELD(__typeof__(c), port, INT),
	                                .def = "15020",
	                                .min = 1,
	                                .max = 65535};
	const char *alias_bad[] = {"ISTIO_META_STATS_PORT", "x", NULL};
	const char *name_good[] = {"ISTIO_META_STATS_PORT", "x", "STATS_PORT", "9", NULL};
	struct errors e = {0};

	ck_assert_int_eq(load(&v, 1, &c, alias_bad, &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 1);
	ck_assert_str_eq(e.msg[0],
	                 "ISTIO_META_STATS_PORT=\"x\": expected an integer between 1 and 65535");
	/* the alias is not even looked at when the name is set */
	ck_assert_int_eq(load(&v, 1, &c, name_good, &e), 0);
	ck_assert_int_eq(c.port, 9);
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_required_entry_is_reported_when_name_and_alias_unset)
{
	struct {
		char *s;
	} c = {0};
	const struct zt_envcfg_var v = {.name = "POD_NAME",
	                                .alias = "ISTIO_META_POD_NAME",
	                                ZT_ENVCFG_FIELD(__typeof__(c), s, STRING),
	                                .def = "ignored",
	                                .flags = ZT_ENVCFG_REQUIRED};
	const char *none[] = {NULL};
	const char *via_alias[] = {"ISTIO_META_POD_NAME", "p", NULL};
	const char *empty[] = {"POD_NAME", "", NULL};
	struct errors e = {0};

	ck_assert_int_eq(load(&v, 1, &c, none, &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 1);
	ck_assert_str_eq(e.msg[0], "POD_NAME (or ISTIO_META_POD_NAME): required but not set");
	ck_assert_ptr_null(c.s); /* the default does not apply to required entries */
	ck_assert_int_eq(load(&v, 1, &c, via_alias, &e), 0);
	ck_assert_str_eq(c.s, "p");
	ck_assert_int_eq(load(&v, 1, &c, empty, &e), 0); /* set, even if empty */
	ck_assert_str_eq(c.s, "");
	ck_assert_uint_eq(e.n, 1);
	zt_envcfg_clear(&v, 1, &c);
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_invalid_default_is_reported)
{
	struct {
		bool b;
		uint64_t d;
	} c = {0};
	const struct zt_envcfg_var v[] = {
	        {.name = "B", ZT_ENVCFG_FIELD(__typeof__(c), b, BOOL), .def = "maybe"},
	        {.name = "D", ZT_ENVCFG_FIELD(__typeof__(c), d, DURATION), .def = "5"},
	};
	const char *none[] = {NULL};
	const char *set[] = {"B", "yes", "D", "1s", NULL};
	struct errors e = {0};

	ck_assert_int_eq(load(v, 2, &c, none, &e), ZT_E_PARSE);
	ck_assert_uint_eq(e.n, 2);
	ck_assert_str_eq(e.msg[0], "B: invalid default \"maybe\": expected a boolean (true/false, "
	                           "yes/no, on/off, 1/0)");
	ck_assert_str_eq(e.msg[1], "D: invalid default \"5\": expected a duration like 500ms, 10s, "
	                           "5m or 1h30m (units ms, s, m, h, d)");
	/* a bad default is only parsed when it is used */
	ck_assert_int_eq(load(v, 2, &c, set, &e), 0);
	ck_assert(c.b);
	ck_assert_uint_eq(c.d, 1000);
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_error_quotes_hostile_values_escaped_and_truncated)
{
	char longval[201];
	char want[256];
	struct cfg c = {0};
	struct errors e = {0};
	const struct zt_envcfg_var *v = &vars[5];

	ck_assert_int_eq(load_one(v, &c, "1\n\"x\\\x7f\xff", &e), ZT_E_PARSE);
	ck_assert_str_eq(e.msg[0], "POOL_MAX_STREAMS_PER_CONNECTION=\"1\\n\\\"x\\\\\\x7f\\xff\": "
	                           "expected an integer between 1 and 65535");
	memset(longval, 'a', 200);
	longval[200] = '\0';
	ck_assert_int_eq(load_one(v, &c, longval, &e), ZT_E_PARSE);
	snprintf(want, sizeof(want),
	         "POOL_MAX_STREAMS_PER_CONNECTION=\"%.64s...\": expected an integer between 1 "
	         "and 65535",
	         longval);
	ck_assert_str_eq(e.msg[1], want);
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_secret_values_never_appear_in_errors_or_dump)
{
	struct {
		int64_t pin;
		char *token;
	} c = {0};
	const struct zt_envcfg_var v[] = {
	        {.name = "PIN",
	         ZT_ENVCFG_FIELD(__typeof__(c), pin, INT),
	         .flags = ZT_ENVCFG_SECRET},
	        {.name = "TOKEN",
	         ZT_ENVCFG_FIELD(__typeof__(c), token, STRING),
	         .flags = ZT_ENVCFG_SECRET},
	};
	const char *env[] = {"PIN", "hunter2", "TOKEN", "hunter3", NULL};
	struct errors e = {0};
	char *out = NULL, buf[32];
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(load(v, 2, &c, env, &e), ZT_E_PARSE);
	ck_assert_str_eq(e.msg[0], "PIN=<redacted>: expected an integer");
	ck_assert_str_eq(c.token, "hunter3");
	ck_assert_int_eq(zt_envcfg_format(&v[1], &c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "<redacted>");
	f = open_memstream(&out, &len);
	zt_envcfg_dump(v, 2, &c, f);
	fclose(f);
	ck_assert_str_eq(out, "PIN=0\nTOKEN=<redacted>\n");
	free(out);
	zt_envcfg_clear(v, 2, &c);
	errors_clear(&e);
}
END_TEST

START_TEST(envcfg_reload_replaces_strings_and_clear_zeroes_fields)
{
	const char *first[] = {"NODE_NAME", "a", "CLUSTER_ID", "one", "AUTH_TOKEN", "t", NULL};
	const char *second[] = {"NODE_NAME", "b", "FAKE_CA", "on", NULL};
	struct cfg c = {0};
	struct errors e = {0};

	ck_assert_int_eq(load(vars, NVARS, &c, first, &e), 0);
	ck_assert_str_eq(c.cluster_id, "one");
	ck_assert_int_eq(load(vars, NVARS, &c, second, &e), 0); /* old strings freed (ASan) */
	ck_assert_str_eq(c.node_name, "b");
	ck_assert_str_eq(c.cluster_id, "Kubernetes");
	ck_assert_ptr_null(c.token);
	ck_assert(c.fake_ca);
	zt_envcfg_clear(vars, NVARS, &c);
	ck_assert_ptr_null(c.cluster_id);
	ck_assert_ptr_null(c.node_name);
	ck_assert_ptr_null(c.xds_address);
	ck_assert(!c.fake_ca);
	ck_assert_int_eq(c.max_streams, 0);
	ck_assert_uint_eq(c.release_ms, 0);
	ck_assert_uint_eq(c.window, 0);
	zt_envcfg_clear(vars, NVARS, &c); /* twice is harmless */
}
END_TEST

START_TEST(envcfg_reads_process_environment_by_default)
{
	struct {
		int64_t n;
		char *s;
	} c = {0};
	const struct zt_envcfg_var v[] = {
	        {.name = "ZT_ENVCFG_TEST_NUMBER", ZT_ENVCFG_FIELD(__typeof__(c), n, INT)},
	        {.name = "ZT_ENVCFG_TEST_UNSET",
	         ZT_ENVCFG_FIELD(__typeof__(c), s, STRING),
	         .def = "dflt"},
	};

	ck_assert_int_eq(setenv("ZT_ENVCFG_TEST_NUMBER", "31337", 1), 0);
	unsetenv("ZT_ENVCFG_TEST_UNSET");
	ck_assert_int_eq(zt_envcfg_load(v, 2, &c, NULL, NULL, NULL, NULL), 0);
	ck_assert_int_eq(c.n, 31337);
	ck_assert_str_eq(c.s, "dflt");
	unsetenv("ZT_ENVCFG_TEST_NUMBER");
	zt_envcfg_clear(v, 2, &c);
}
END_TEST

START_TEST(envcfg_field_macro_sets_type_and_offset)
{
	ck_assert_int_eq(vars[5].type, ZT_ENVCFG_INT);
	ck_assert_uint_eq(vars[5].offset, offsetof(struct cfg, max_streams));
	ck_assert_int_eq(vars[8].type, ZT_ENVCFG_ENUM);
	ck_assert_uint_eq(vars[8].offset, offsetof(struct cfg, mode));
	ck_assert_int_eq(vars[1].type, ZT_ENVCFG_STRING);
	ck_assert_uint_eq(vars[1].offset, offsetof(struct cfg, node_name));
}
END_TEST

START_TEST(envcfg_format_writes_loadable_text)
{
	const char *env[] = {
	        "NODE_NAME", "n", "POOL_UNUSED_RELEASE_TIMEOUT", "90s", "HTTP2_STREAM_WINDOW_SIZE",
	        "1048576",   NULL};
	struct cfg c = {0};
	struct errors e = {0};
	char buf[64];

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), 0);
	ck_assert_int_eq(zt_envcfg_format(&vars[6], &c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "1m30s");
	ck_assert_int_eq(zt_envcfg_format(&vars[7], &c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "1MiB");
	ck_assert_int_eq(zt_envcfg_format(&vars[5], &c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "100");
	ck_assert_int_eq(zt_envcfg_format(&vars[4], &c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "false");
	ck_assert_int_eq(zt_envcfg_format(&vars[3], &c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, ""); /* unset secret: nothing to hide */
	c.mode = 7;
	ck_assert_int_eq(zt_envcfg_format(&vars[8], &c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	c.mode = MODE_DEDICATED;
	ck_assert_int_eq(zt_envcfg_format(&vars[8], &c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "dedicated");
	ck_assert_int_eq(zt_envcfg_format(&vars[8], &c, buf, 9), -ENOSPC);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(zt_envcfg_format(&vars[0], &c, buf, 10), -ENOSPC); /* "Kubernetes" */
	ck_assert_int_eq(zt_envcfg_format(&vars[0], &c, buf, 11), 0);
	ck_assert_str_eq(buf, "Kubernetes");
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_dump_prints_effective_values_one_per_line)
{
	const char *env[] = {"NODE_NAME", "node\n1",    "FAKE_CA",   "yes", "AUTH_TOKEN",
	                     "tok",       "PROXY_MODE", "dedicated", NULL};
	struct cfg c = {0};
	struct errors e = {0};
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(load(vars, NVARS, &c, env, &e), 0);
	f = open_memstream(&out, &len);
	zt_envcfg_dump(vars, NVARS, &c, f);
	fclose(f);
	ck_assert_str_eq(out, "CLUSTER_ID=Kubernetes\n"
	                      "NODE_NAME=node\\n1\n"
	                      "XDS_ADDRESS=https://istiod.istio-system.svc:15012\n"
	                      "AUTH_TOKEN=<redacted>\n"
	                      "FAKE_CA=true\n"
	                      "POOL_MAX_STREAMS_PER_CONNECTION=100\n"
	                      "POOL_UNUSED_RELEASE_TIMEOUT=5m\n"
	                      "HTTP2_STREAM_WINDOW_SIZE=4MiB\n"
	                      "PROXY_MODE=dedicated\n");
	free(out);
	zt_envcfg_clear(vars, NVARS, &c);
}
END_TEST

START_TEST(envcfg_help_lists_names_defaults_and_accepted_values)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	zt_envcfg_help(vars, NVARS, f);
	fclose(f);
	/* columns: longest name and longest default, two spaces apart */
	ck_assert_str_eq(out,
	                 "NAME                             DEFAULT                                "
	                 "DESCRIPTION\n"
	                 "CLUSTER_ID                       Kubernetes                             "
	                 "Cluster name (alias ISTIO_META_CLUSTER_ID)\n"
	                 "NODE_NAME                        (required)                             "
	                 "Node this ztunnel runs on\n"
	                 "XDS_ADDRESS                      https://istiod.istio-system.svc:15012  "
	                 "istiod address; empty disables xDS\n"
	                 "AUTH_TOKEN                       -                                      "
	                 "Token\n"
	                 "FAKE_CA                          false                                  "
	                 "(boolean)\n"
	                 "POOL_MAX_STREAMS_PER_CONNECTION  100                                    "
	                 "Streams per pooled connection (integer 1..65535)\n"
	                 "POOL_UNUSED_RELEASE_TIMEOUT      5m                                     "
	                 "(duration)\n"
	                 "HTTP2_STREAM_WINDOW_SIZE         4MiB                                   "
	                 "(size)\n"
	                 "PROXY_MODE                       shared                                 "
	                 "(one of: shared, dedicated)\n");
	free(out);
}
END_TEST

START_TEST(envcfg_help_shows_empty_default_and_alias_with_kind)
{
	struct {
		char *s;
		int64_t p;
	} c;
	const struct zt_envcfg_var v[] = {
	        {.name = "NETWORK",
	         ZT_ENVCFG_FIELD(__typeof__(c), s, STRING),
	         .def = "",
	         .help = "n"},
	        {.name = "P",
	         .alias = "Q",
	         ZT_ENVCFG_FIELD(__typeof__(c), p, INT),
	         .def = "1",
	         .min = 1,
	         .max = INT64_MAX,
	         .help = "p"},
	};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void)c;
	zt_envcfg_help(v, 2, f);
	fclose(f);
	ck_assert_str_eq(out, "NAME     DEFAULT  DESCRIPTION\n"
	                      "NETWORK  \"\"       n\n"
	                      "P        1        p (integer >= 1; alias Q)\n");
	free(out);
}
END_TEST

Suite *envcfg_suite(void);
Suite *envcfg_suite(void)
{
	Suite *s = suite_create("envcfg");
	TCase *l = tcase_create("load");
	TCase *o = tcase_create("output");

	tcase_add_test(l, envcfg_defaults_apply_when_unset);
	tcase_add_test(l, envcfg_env_values_override_defaults);
	tcase_add_test(l, envcfg_strings_are_owned_copies);
	tcase_add_test(l, envcfg_empty_string_is_a_value_not_unset);
	tcase_add_test(l, envcfg_empty_value_is_an_error_for_non_strings);
	tcase_add_test(l, envcfg_int_error_names_variable_value_and_range);
	tcase_add_test(l, envcfg_int_enforces_bounds_and_strict_syntax);
	tcase_add_test(l, envcfg_int_messages_describe_open_bounds);
	tcase_add_test(l, envcfg_bool_accepts_all_spellings_in_any_case);
	tcase_add_test(l, envcfg_duration_and_size_errors_say_what_is_expected);
	tcase_add_test(l, envcfg_out_of_range_duration_and_size_are_reported);
	tcase_add_test(l, envcfg_enum_matches_exactly_and_lists_choices);
	tcase_add_test(l, envcfg_collects_every_error_in_table_order);
	tcase_add_test(l, envcfg_without_error_callback_still_fails);
	tcase_add_test(l, envcfg_alias_is_read_when_name_is_unset);
	tcase_add_test(l, envcfg_error_from_alias_names_the_alias);
	tcase_add_test(l, envcfg_required_entry_is_reported_when_name_and_alias_unset);
	tcase_add_test(l, envcfg_invalid_default_is_reported);
	tcase_add_test(l, envcfg_error_quotes_hostile_values_escaped_and_truncated);
	tcase_add_test(l, envcfg_secret_values_never_appear_in_errors_or_dump);
	tcase_add_test(l, envcfg_reload_replaces_strings_and_clear_zeroes_fields);
	tcase_add_test(l, envcfg_reads_process_environment_by_default);
	tcase_add_test(l, envcfg_field_macro_sets_type_and_offset);
	tcase_add_test(o, envcfg_format_writes_loadable_text);
	tcase_add_test(o, envcfg_dump_prints_effective_values_one_per_line);
	tcase_add_test(o, envcfg_help_lists_names_defaults_and_accepted_values);
	tcase_add_test(o, envcfg_help_shows_empty_default_and_alias_with_kind);
	suite_add_tcase(s, l);
	suite_add_tcase(s, o);
	return s;
}
