/* DeltaDiscoveryResponse from the wire (see delta.h). Field numbers from
 * envoy/service/discovery/v3/discovery.proto: the response has system_version_info 1,
 * resources 2, type_url 4, nonce 5, removed_resources 6; a Resource has version 1, resource 2
 * (google.protobuf.Any: type_url 1, value 2), name 3, aliases 4, ttl 6, cache_control 7. */
#include "protocol/delta.h"

#include <stdio.h>
#include <string.h>

#include "protocol/pb.h"
#include "runtime/err.h"

#define WIRE_LEN 2

static int fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return ZT_E_PARSE;
}

/* A string field: length-delimited, without a NUL byte. */
static int get_str(const struct zt_pb_field *f, struct zt_delta_str *out)
{
	if (f->wire != WIRE_LEN || memchr(f->p, 0, f->len))
		return ZT_E_PARSE;
	out->p = (const char *)f->p;
	out->len = f->len;
	return 0;
}

/* Merges one occurrence of the Any into r. */
static int parse_any(const uint8_t *p, size_t len, struct zt_delta_resource *r)
{
	struct zt_pb_field f;
	size_t pos = 0;
	int rc;

	while ((rc = zt_pb_next_field(p, len, &pos, &f)) > 0) {
		if (f.num == 1) {
			if (get_str(&f, &r->type) < 0)
				return ZT_E_PARSE;
		} else if (f.num == 2) {
			if (f.wire != WIRE_LEN)
				return ZT_E_PARSE;
			r->body = f.p;
			r->body_len = f.len;
		}
	}
	return rc;
}

static int parse_resource(const uint8_t *p, size_t len, struct zt_delta_resource *r, char *err,
                          size_t errlen)
{
	struct zt_pb_field f;
	size_t pos = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	r->name.p = r->version.p = r->type.p = "";
	while ((rc = zt_pb_next_field(p, len, &pos, &f)) > 0) {
		switch (f.num) {
		case 1:
			if (get_str(&f, &r->version) < 0)
				return fail(err, errlen, "a resource version that is not a string");
			break;
		case 3:
			if (get_str(&f, &r->name) < 0)
				return fail(err, errlen, "a resource name that is not a string");
			break;
		case 2:
			if (f.wire != WIRE_LEN || parse_any(f.p, f.len, r) < 0)
				return fail(err, errlen, "a malformed resource body (Any)");
			r->has_body = true;
			break;
		case 4:
		case 6:
		case 7:
			if (f.wire != WIRE_LEN)
				return fail(err, errlen, "a malformed resource field");
			break;
		default:
			break;
		}
	}
	return rc < 0 ? fail(err, errlen, "a malformed resource") : 0;
}

int zt_delta_parse(const uint8_t *p, size_t len, struct zt_delta *d, char *err, size_t errlen)
{
	static const uint8_t empty[1];
	struct zt_delta_resource r;
	struct zt_delta_str s;
	struct zt_pb_field f;
	size_t pos = 0;
	int rc;

	memset(d, 0, sizeof(*d));
	d->version_info.p = d->type_url.p = d->nonce.p = "";
	if (!p) {
		if (len > 0)
			return fail(err, errlen, "no bytes");
		p = empty;
	}
	d->buf = p;
	d->len = len;
	while ((rc = zt_pb_next_field(p, len, &pos, &f)) > 0) {
		switch (f.num) {
		case 1:
			if (get_str(&f, &d->version_info) < 0)
				return fail(err, errlen, "system_version_info is not a string");
			break;
		case 4:
			if (get_str(&f, &d->type_url) < 0)
				return fail(err, errlen, "type_url is not a string");
			break;
		case 5:
			if (get_str(&f, &d->nonce) < 0)
				return fail(err, errlen, "nonce is not a string");
			break;
		case 2:
			if (f.wire != WIRE_LEN)
				return fail(err, errlen, "a resource that is not a message");
			if (parse_resource(f.p, f.len, &r, err, errlen) < 0)
				return ZT_E_PARSE;
			d->n_resources++;
			break;
		case 6:
			if (get_str(&f, &s) < 0)
				return fail(err, errlen,
				            "a removed resource name that is not a string");
			d->n_removed++;
			break;
		default:
			break;
		}
	}
	return rc < 0 ? fail(err, errlen, "malformed framing") : 0;
}

/* The next field numbered num at or after *pos (the message was checked by zt_delta_parse). */
static bool next_of(const struct zt_delta *d, size_t *pos, uint32_t num, struct zt_pb_field *f)
{
	while (zt_pb_next_field(d->buf, d->len, pos, f) > 0)
		if (f->num == num)
			return true;
	return false;
}

bool zt_delta_next_resource(const struct zt_delta *d, size_t *pos, struct zt_delta_resource *r)
{
	struct zt_pb_field f;
	char err[8];

	return next_of(d, pos, 2, &f) && parse_resource(f.p, f.len, r, err, sizeof(err)) == 0;
}

bool zt_delta_next_removed(const struct zt_delta *d, size_t *pos, struct zt_delta_str *name)
{
	struct zt_pb_field f;

	return next_of(d, pos, 6, &f) && get_str(&f, name) == 0;
}

bool zt_delta_str_eq(struct zt_delta_str s, const char *c)
{
	return strlen(c) == s.len && memcmp(s.p, c, s.len) == 0;
}
