/* DeltaDiscoveryResponse read from the wire (protocol/delta.c): random responses encoded by
 * protobuf-c read back field for field, the last occurrence of a singular field winning, and
 * every malformed shape refused with a reason. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "protocol/delta.h"
#include "protocol/pb.h"
#include "runtime/err.h"

typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse Response;
typedef Envoy__Service__Discovery__V3__Resource Resource;

static bool str_is(struct zt_delta_str s, const char *c)
{
	return zt_delta_str_eq(s, c ? c : "");
}

static char *rand_str(unsigned max)
{
	size_t n = (size_t)(rand() % (int)(max + 1));
	char *s = malloc(n + 1);

	for (size_t i = 0; i < n; i++)
		s[i] = (char)('a' + rand() % 26);
	s[n] = '\0';
	return s;
}

START_TEST(delta_reads_what_protobuf_c_wrote)
{
	srand(11);
	for (int round = 0; round < 300; round++) {
		Response r = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
		size_t nres = (size_t)(rand() % 6), nrem = (size_t)(rand() % 4), len, pos, i;
		Resource *res = calloc(nres + 1, sizeof(*res));
		Resource **resp = calloc(nres + 1, sizeof(*resp));
		Google__Protobuf__Any *any = calloc(nres + 1, sizeof(*any));
		char **rem = calloc(nrem + 1, sizeof(*rem));
		struct zt_delta_resource got;
		struct zt_delta_str name;
		struct zt_delta d;
		uint8_t *buf;
		char err[128];

		r.system_version_info = rand_str(12);
		r.type_url = rand_str(40);
		r.nonce = rand_str(8);
		for (i = 0; i < nres; i++) {
			envoy__service__discovery__v3__resource__init(&res[i]);
			google__protobuf__any__init(&any[i]);
			res[i].name = rand_str(30);
			res[i].version = rand_str(16);
			if (rand() % 4) {
				any[i].type_url = rand_str(40);
				any[i].value.len = (size_t)(rand() % 50);
				any[i].value.data = malloc(any[i].value.len + 1);
				for (size_t k = 0; k < any[i].value.len; k++)
					any[i].value.data[k] = (uint8_t)rand(); /* NUL bytes too */
				res[i].resource = &any[i];
			}
			resp[i] = &res[i];
		}
		r.n_resources = nres;
		r.resources = resp;
		for (i = 0; i < nrem; i++)
			rem[i] = rand_str(20);
		r.n_removed_resources = nrem;
		r.removed_resources = rem;
		ck_assert_int_eq(zt_pb_pack(&r.base, &buf, &len), 0);

		ck_assert_int_eq(zt_delta_parse(buf, len, &d, err, sizeof(err)), 0);
		ck_assert(str_is(d.version_info, r.system_version_info));
		ck_assert(str_is(d.type_url, r.type_url));
		ck_assert(str_is(d.nonce, r.nonce));
		ck_assert_uint_eq(d.n_resources, nres);
		ck_assert_uint_eq(d.n_removed, nrem);
		pos = 0;
		for (i = 0; zt_delta_next_resource(&d, &pos, &got); i++) {
			ck_assert_uint_lt(i, nres);
			ck_assert(str_is(got.name, res[i].name));
			ck_assert(str_is(got.version, res[i].version));
			ck_assert(got.has_body == (res[i].resource != NULL));
			if (got.has_body) {
				ck_assert(str_is(got.type, any[i].type_url));
				ck_assert_uint_eq(got.body_len, any[i].value.len);
				ck_assert(got.body_len == 0 ||
				          memcmp(got.body, any[i].value.data, got.body_len) == 0);
			}
		}
		ck_assert_uint_eq(i, nres);
		pos = 0;
		for (i = 0; zt_delta_next_removed(&d, &pos, &name); i++)
			ck_assert(str_is(name, rem[i]));
		ck_assert_uint_eq(i, nrem);

		free(buf);
		for (i = 0; i < nres; i++) {
			free(res[i].name);
			free(res[i].version);
			if (res[i].resource) {
				free(any[i].type_url);
				free(any[i].value.data);
			}
		}
		for (i = 0; i < nrem; i++)
			free(rem[i]);
		free(r.system_version_info);
		free(r.type_url);
		free(r.nonce);
		free(res);
		free(resp);
		free(any);
		free(rem);
	}
}
END_TEST

START_TEST(delta_empty_message_is_an_empty_response)
{
	struct zt_delta d;
	struct zt_delta_resource r;
	size_t pos = 0;
	char err[64];

	ck_assert_int_eq(zt_delta_parse(NULL, 0, &d, err, sizeof(err)), 0);
	ck_assert_uint_eq(d.n_resources, 0);
	ck_assert(str_is(d.type_url, ""));
	ck_assert(!zt_delta_next_resource(&d, &pos, &r));
}
END_TEST

START_TEST(delta_last_occurrence_wins_and_unknown_fields_are_skipped)
{
	/* type_url "a", an unknown varint field 9, type_url "bc", a resource with two names and
	 * its Any sent in two parts (type URL, then value), an unknown fixed32 field. */
	static const uint8_t msg[] = {0x22, 1,    'a',  0x48, 0x96, 0x01, 0x22, 2,    'b',
	                              'c',  0x12, 16,   0x1a, 1,    'x',  0x1a, 1,    'y',
	                              0x12, 3,    0x0a, 1,    't',  0x12, 3,    0x12, 1,
	                              'v',  0x3d, 1,    2,    3,    4};
	struct zt_delta d;
	struct zt_delta_resource r;
	size_t pos = 0;
	char err[64];

	ck_assert_int_eq(zt_delta_parse(msg, sizeof(msg), &d, err, sizeof(err)), 0);
	ck_assert(str_is(d.type_url, "bc"));
	ck_assert_uint_eq(d.n_resources, 1);
	ck_assert(zt_delta_next_resource(&d, &pos, &r));
	ck_assert(str_is(r.name, "y"));
	ck_assert(r.has_body);
	ck_assert(str_is(r.type, "t"));
	ck_assert_uint_eq(r.body_len, 1);
	ck_assert_int_eq(r.body[0], 'v');
	ck_assert(!zt_delta_next_resource(&d, &pos, &r));
}
END_TEST

START_TEST(delta_refuses_malformed_responses)
{
	static const struct {
		const char *what;
		uint8_t msg[12];
		size_t len;
		const char *reason;
	} cases[] = {
	        {"truncated length", {0x22, 5, 'a'}, 3, "malformed framing"},
	        {"field number 0", {0x02, 0}, 2, "malformed framing"},
	        {"a group", {0x23}, 1, "malformed framing"},
	        {"type_url as a varint", {0x20, 1}, 2, "type_url is not a string"},
	        {"NUL in the nonce", {0x2a, 2, 'a', 0}, 4, "nonce is not a string"},
	        {"resource as a varint", {0x10, 1}, 2, "a resource that is not a message"},
	        {"NUL in a name", {0x12, 3, 0x1a, 1, 0}, 5, "a resource name that is not a string"},
	        {"version as fixed32",
	         {0x12, 5, 0x0d, 1, 2, 3, 4},
	         7,
	         "a resource version that is not a string"},
	        {"Any value as a varint",
	         {0x12, 4, 0x12, 2, 0x10, 1},
	         6,
	         "a malformed resource body (Any)"},
	        {"truncated inside a resource", {0x12, 2, 0x1a, 5}, 4, "a malformed resource"},
	        {"ttl as a varint", {0x12, 2, 0x30, 1}, 4, "a malformed resource field"},
	        {"NUL in a removed name",
	         {0x32, 1, 0},
	         3,
	         "a removed resource name that is not a string"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zt_delta d;
		char err[128] = "";

		ck_assert_msg(zt_delta_parse(cases[i].msg, cases[i].len, &d, err, sizeof(err)) ==
		                      ZT_E_PARSE,
		              "%s: accepted", cases[i].what);
		ck_assert_msg(strcmp(err, cases[i].reason) == 0, "%s: reason \"%s\"", cases[i].what,
		              err);
	}
}
END_TEST

Suite *delta_suite(void);
Suite *delta_suite(void)
{
	Suite *s = suite_create("delta");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, delta_reads_what_protobuf_c_wrote);
	tcase_add_test(tc, delta_empty_message_is_an_empty_response);
	tcase_add_test(tc, delta_last_occurrence_wins_and_unknown_fields_are_skipped);
	tcase_add_test(tc, delta_refuses_malformed_responses);
	suite_add_tcase(s, tc);
	return s;
}
