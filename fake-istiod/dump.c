/* Descriptor-driven protobuf → JSON: walks ProtobufCFieldDescriptor entries, reading each
 * field at its offset (repeated counts and oneof cases at quantifier_offset). Proto3
 * scalars at their zero value are omitted, as the JSON mapping does. */
#include "fake-istiod/dump.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <yaml.h>

#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "protocol/pb.h"
#include "ztunnel/waypoint.pb-c.h"
#include "runtime/addr.h"
#include "runtime/err.h"
#include "runtime/mem.h"

static json_t *bytes_json(const ProtobufCBinaryData *b)
{
	static const char hex[] = "0123456789abcdef";
	struct zt_ip ip;
	char text[ZT_ADDR_STRLEN];

	if ((b->len == 4 || b->len == 16) && zt_ip_from_bytes(&ip, b->data, b->len) == 0 &&
	    zt_ip_format(&ip, text, sizeof(text)) > 0)
		return json_string(text);
	char *h = xmalloc(2 * b->len + 1);
	for (size_t i = 0; i < b->len; i++) {
		h[2 * i] = hex[b->data[i] >> 4];
		h[2 * i + 1] = hex[b->data[i] & 15];
	}
	h[2 * b->len] = '\0';
	json_t *v = json_string(h);
	free(h);
	return v;
}

static json_t *enum_json(const ProtobufCEnumDescriptor *d, int value)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
	return v ? json_string(v->name) : json_integer(value);
}

/* One value of field f stored at p; NULL for a proto3 zero value when skip_zero. */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p, bool skip_zero)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return skip_zero && !*(const int32_t *)p ? NULL : json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return skip_zero && !*(const uint32_t *)p ? NULL
		                                          : json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return skip_zero && !*(const int64_t *)p ? NULL : json_integer(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return skip_zero && !*(const uint64_t *)p
		               ? NULL
		               : json_integer((json_int_t) * (const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return skip_zero && *(const float *)p == 0 ? NULL : json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return skip_zero && *(const double *)p == 0 ? NULL : json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return skip_zero && !*(const protobuf_c_boolean *)p
		               ? NULL
		               : json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM:
		return skip_zero && !*(const int *)p ? NULL
		                                     : enum_json(f->descriptor, *(const int *)p);
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return !s || (skip_zero && !*s) ? NULL : json_string(s);
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		return skip_zero && !b->len ? NULL : bytes_json(b);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
		return m ? fi_dump_message(m) : NULL;
	}
	}
	return NULL;
}

static size_t type_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

/* A map field is a repeated message with fields key=1, value=2 and a name ending "Entry". */
static bool is_map(const ProtobufCFieldDescriptor *f)
{
	const ProtobufCMessageDescriptor *d = f->descriptor;
	size_t n;

	if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED)
		return false;
	n = strlen(d->name);
	return n > 5 && !strcmp(d->name + n - 5, "Entry") && d->n_fields == 2 &&
	       !strcmp(d->fields[0].name, "key") && !strcmp(d->fields[1].name, "value");
}

/* The proto3 JSON name: snake_case to lowerCamelCase. */
static const char *json_name(const ProtobufCFieldDescriptor *f, char *buf, size_t len)
{
	size_t o = 0;
	bool up = false;

	for (const char *p = f->name; *p && o + 1 < len; p++) {
		if (*p == '_') {
			up = true;
			continue;
		}
		buf[o++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
		up = false;
	}
	buf[o] = '\0';
	return buf;
}

json_t *fi_dump_message(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char *base = (const char *)msg;
	json_t *o = json_object();

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = base + f->offset;
		json_t *v = NULL;

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
			v = value_json(f, p, false);
		} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(char *const *)p;
			if (!n)
				continue;
			if (is_map(f)) {
				v = json_object();
				for (size_t k = 0; k < n; k++) {
					const ProtobufCMessage *e =
					        ((ProtobufCMessage *const *)arr)[k];
					const ProtobufCMessageDescriptor *ed = e->descriptor;
					json_t *key = value_json(
					        &ed->fields[0],
					        (const char *)e + ed->fields[0].offset, false);
					json_t *val = value_json(
					        &ed->fields[1],
					        (const char *)e + ed->fields[1].offset, false);
					char kbuf[32];
					const char *ks =
					        json_is_string(key) ? json_string_value(key) : kbuf;
					if (!json_is_string(key))
						snprintf(kbuf, sizeof(kbuf),
						         "%" JSON_INTEGER_FORMAT,
						         json_integer_value(key));
					json_object_set_new(v, ks, val ? val : json_null());
					json_decref(key);
				}
			} else {
				v = json_array();
				for (size_t k = 0; k < n; k++) {
					json_t *e = value_json(f, arr + k * type_size(f), false);
					json_array_append_new(v, e ? e : json_null());
				}
			}
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
		           f->type != PROTOBUF_C_TYPE_MESSAGE &&
		           f->type != PROTOBUF_C_TYPE_STRING) {
			if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
			v = value_json(f, p, false);
		} else {
			v = value_json(f, p, true);
		}
		if (v) {
			char name[128];
			json_object_set_new(o, json_name(f, name, sizeof(name)), v);
		}
	}
	return o;
}

static json_t *resource_json(const struct fi_resource *r, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = NULL;
	json_t *o = json_pack("{s:s, s:s}", "name", r->name, "version", r->version);
	int rc = zt_pb_unpack(d, r->data, r->len, 64u << 20, &m);

	if (rc < 0) {
		json_object_set_new(o, "error", json_string(zt_strerror(rc)));
	} else {
		json_object_set_new(o, "resource", fi_dump_message(m));
		zt_pb_free(m);
	}
	return o;
}

static json_t *resources_json(const struct fi_resource *v, size_t n,
                              const ProtobufCMessageDescriptor *d)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, resource_json(&v[i], d));
	return arr;
}

/* One array of the JSON document: each resource decoded, written on a line of its own and
 * freed before the next. */
static int write_resources(FILE *f, const char *key, const struct fi_resource *v, size_t n,
                           const ProtobufCMessageDescriptor *d, bool last)
{
	if (fprintf(f, "  \"%s\": [%s", key, n ? "\n" : "") < 0)
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		json_t *o = resource_json(&v[i], d);
		int rc = fputs("    ", f) == EOF || json_dumpf(o, f, JSON_COMPACT) < 0 ||
		                         fputs(i + 1 < n ? ",\n" : "\n", f) == EOF
		                 ? -EIO
		                 : 0;
		json_decref(o);
		if (rc < 0)
			return rc;
	}
	return fprintf(f, "%s]%s\n", n ? "  " : "", last ? "" : ",") < 0 ? -EIO : 0;
}

/* The document of fi_dump_resources_json, one resource per line, without building it. */
static int write_resources_json(const struct fi_resources *res, FILE *f)
{
	int rc = fputs("{\n", f) == EOF ? -EIO : 0;

	if (!rc)
		rc = write_resources(f, "addresses", res->addresses, res->n_addresses,
		                     &istio__workload__address__descriptor, false);
	if (!rc)
		rc = write_resources(f, "authorizations", res->authorizations,
		                     res->n_authorizations,
		                     &istio__security__authorization__descriptor, false);
	if (!rc)
		rc = write_resources(f, "waypoints", res->waypoints, res->n_waypoints,
		                     &ztunnel__waypoint__waypoint__descriptor, true);
	if (!rc && fputs("}\n", f) == EOF)
		rc = -EIO;
	return rc;
}

json_t *fi_dump_resources_json(const struct fi_resources *res)
{
	return json_pack("{s:o, s:o, s:o}", "addresses",
	                 resources_json(res->addresses, res->n_addresses,
	                                &istio__workload__address__descriptor),
	                 "authorizations",
	                 resources_json(res->authorizations, res->n_authorizations,
	                                &istio__security__authorization__descriptor),
	                 "waypoints",
	                 resources_json(res->waypoints, res->n_waypoints,
	                                &ztunnel__waypoint__waypoint__descriptor));
}

/* ---- YAML ------------------------------------------------------------------------------- */

static int emit(yaml_emitter_t *e, yaml_event_t *ev)
{
	return yaml_emitter_emit(e, ev) ? 0 : -EIO;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, bool plain_ok)
{
	yaml_event_t ev;
	yaml_scalar_event_initialize(
	        &ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain_ok, !plain_ok,
	        plain_ok ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	return emit(e, &ev);
}

static int emit_value(yaml_emitter_t *e, const json_t *v)
{
	yaml_event_t ev;
	char buf[64];
	int rc = 0;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
		if ((rc = emit(e, &ev)))
			return rc;
		json_object_foreach((json_t *)v, k, x)
		{
			if ((rc = emit_scalar(e, k, true)) || (rc = emit_value(e, x)))
				return rc;
		}
		yaml_mapping_end_event_initialize(&ev);
		return emit(e, &ev);
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *x;
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
		if ((rc = emit(e, &ev)))
			return rc;
		json_array_foreach(v, i, x)
		{
			if ((rc = emit_value(e, x)))
				return rc;
		}
		yaml_sequence_end_event_initialize(&ev);
		return emit(e, &ev);
	}
	case JSON_STRING:
		/* Quoted, so "true", "1" or "null" stay strings when read back. */
		return emit_scalar(e, json_string_value(v), false);
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return emit_scalar(e, buf, true);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return emit_scalar(e, buf, true);
	case JSON_TRUE:
		return emit_scalar(e, "true", true);
	case JSON_FALSE:
		return emit_scalar(e, "false", true);
	default:
		return emit_scalar(e, "null", true);
	}
}

int fi_dump_yaml(const json_t *v, FILE *f)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	int rc;

	if (!yaml_emitter_initialize(&e))
		abort();
	yaml_emitter_set_output_file(&e, f);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, 100);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	rc = emit(&e, &ev);
	if (!rc) {
		yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
		rc = emit(&e, &ev);
	}
	if (!rc)
		rc = emit_value(&e, v);
	if (!rc) {
		yaml_document_end_event_initialize(&ev, 1);
		rc = emit(&e, &ev);
	}
	if (!rc) {
		yaml_stream_end_event_initialize(&ev);
		rc = emit(&e, &ev);
	}
	yaml_emitter_delete(&e);
	return rc;
}

int fi_dump_resources(const struct fi_resources *res, const char *format, FILE *f, char *err,
                      size_t errlen)
{
	json_t *doc;
	int rc;

	if (strcmp(format, "json") && strcmp(format, "yaml")) {
		snprintf(err, errlen, "unknown format \"%s\" (json or yaml)", format);
		return ZT_E_PARSE;
	}
	if (!strcmp(format, "json")) {
		rc = write_resources_json(res, f);
		if (!rc && fflush(f) == EOF)
			rc = -EIO;
	} else {
		doc = fi_dump_resources_json(res);
		rc = fi_dump_yaml(doc, f);
		json_decref(doc);
	}
	if (rc < 0)
		snprintf(err, errlen, "cannot write the output: %s", strerror(-rc));
	return rc;
}

json_t *fi_dump_inventory(const struct fi_mesh *m)
{
	json_t *nodes = json_array(), *pods = json_array();

	for (size_t i = 0; i < m->n_nodes; i++)
		json_array_append_new(nodes, json_string(m->nodes[i].meta.name));
	for (size_t i = 0; i < m->n_pods; i++) {
		const struct fi_pod *p = &m->pods[i];
		const struct fi_gateway *gw = fi_mesh_pod_waypoint(m, p);
		json_t *ips = json_array(), *ports = json_array();
		char text[ZT_ADDR_STRLEN];

		for (size_t k = 0; k < p->n_ips; k++)
			if (zt_ip_format(&p->ips[k], text, sizeof(text)) > 0)
				json_array_append_new(ips, json_string(text));
		for (size_t k = 0; k < p->n_ports; k++)
			json_array_append_new(ports,
			                      json_pack("{s:s?, s:i}", "name", p->ports[k].name,
			                                "port", p->ports[k].port));
		json_array_append_new(
		        pods, json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:o, s:o, s:b, s:s?}",
		                        "namespace", p->meta.ns, "name", p->meta.name, "uid",
		                        p->meta.uid, "node", p->node, "serviceAccount",
		                        p->service_account, "ips", ips, "ports", ports, "inMesh",
		                        fi_mesh_pod_in_mesh(m, p) && !p->host_network, "waypoint",
		                        gw ? gw->meta.name : NULL));
	}
	return json_pack("{s:o, s:o}", "nodes", nodes, "pods", pods);
}
