/* Bounded protobuf decode/encode helpers. Before protobuf-c sees peer bytes, a walk over the
 * wire format (guided by the descriptors, skipping unknown fields) rejects malformed framing
 * and nesting deeper than ZT_PB_MAX_DEPTH, since protobuf-c itself recurses without limit. */
#include "protocol/pb.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/mem.h"

#define MAX_FIELD_NUMBER 0x1fffffffu

/* Reads a base-128 varint; returns its length in bytes, 0 if truncated or over 10 bytes. */
static size_t get_varint(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t r = 0;
	size_t i;

	for (i = 0; i < len && i < 10; i++) {
		r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

int zt_pb_next_field(const uint8_t *buf, size_t len, size_t *pos, struct zt_pb_field *f)
{
	const uint8_t *p = buf + *pos;
	size_t left = len - *pos, k;
	uint64_t key, n;

	if (left == 0)
		return 0;
	k = get_varint(p, left, &key);
	if (k == 0 || key >> 3 == 0 || key >> 3 > MAX_FIELD_NUMBER)
		return ZT_E_PARSE;
	p += k;
	left -= k;
	f->num = (uint32_t)(key >> 3);
	f->wire = (unsigned)(key & 7);
	f->v = 0;
	f->p = p;
	switch (f->wire) {
	case 0:
		if ((k = get_varint(p, left, &f->v)) == 0)
			return ZT_E_PARSE;
		f->len = 0;
		break;
	case 1:
	case 5:
		k = f->len = f->wire == 1 ? 8 : 4;
		if (k > left)
			return ZT_E_PARSE;
		break;
	case 2:
		if ((k = get_varint(p, left, &n)) == 0 || n > left - k)
			return ZT_E_PARSE;
		f->p = p + k;
		f->len = (size_t)n;
		k += (size_t)n;
		break;
	default:
		return ZT_E_PARSE;
	}
	*pos = (size_t)(p + k - buf);
	return 1;
}

/* Walks one message's fields; recurses into fields d declares as messages. */
static int check_nesting(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                         unsigned depth)
{
	const ProtobufCFieldDescriptor *f;
	uint64_t key, n;
	size_t k;
	int err;

	while (len > 0) {
		k = get_varint(p, len, &key);
		if (k == 0 || key >> 3 == 0 || key >> 3 > MAX_FIELD_NUMBER)
			return ZT_E_PARSE;
		p += k;
		len -= k;
		switch (key & 7) {
		case 0: /* varint */
			k = get_varint(p, len, &n);
			if (k == 0)
				return ZT_E_PARSE;
			break;
		case 1: /* fixed64 */
			k = 8;
			break;
		case 5: /* fixed32 */
			k = 4;
			break;
		case 2: /* length-delimited */
			k = get_varint(p, len, &n);
			if (k == 0 || n > len - k)
				return ZT_E_PARSE;
			f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (depth >= ZT_PB_MAX_DEPTH)
					return ZT_E_PARSE;
				err = check_nesting(f->descriptor, p + k, (size_t)n, depth + 1);
				if (err)
					return err;
			}
			k += (size_t)n;
			break;
		default: /* groups (3, 4) and undefined wire types */
			return ZT_E_PARSE;
		}
		if (k > len)
			return ZT_E_PARSE;
		p += k;
		len -= k;
	}
	return 0;
}

/* The deepest nesting d's schema allows (d alone: 1), or UINT_MAX when a message type can
 * contain itself, the schema nests deeper than ZT_PB_MAX_DEPTH or is too large to walk (a
 * budget of type visits). path holds the types above d. */
static unsigned schema_depth(const ProtobufCMessageDescriptor *d,
                             const ProtobufCMessageDescriptor **path, unsigned level,
                             unsigned *budget)
{
	unsigned max = 1;

	if (level >= ZT_PB_MAX_DEPTH || (*budget)-- == 0)
		return UINT_MAX;
	for (unsigned i = 0; i < level; i++)
		if (path[i] == d)
			return UINT_MAX;
	path[level] = d;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		unsigned sub;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		sub = schema_depth(f->descriptor, path, level + 1, budget);
		if (sub == UINT_MAX)
			return UINT_MAX;
		if (sub + 1 > max)
			max = sub + 1;
	}
	return max;
}

/* Whether no encoding of d can nest deeper than ZT_PB_MAX_DEPTH whatever its bytes (no type
 * that contains itself, a shallow schema): then protobuf-c's own checks of the wire format
 * are enough and check_nesting's walk, a good part of decoding a workload, is skipped.
 * Remembered per thread for the last few types. */
static bool schema_bounded(const ProtobufCMessageDescriptor *d)
{
	static _Thread_local struct {
		const ProtobufCMessageDescriptor *d;
		bool bounded;
	} seen[8];
	static _Thread_local unsigned next;
	const ProtobufCMessageDescriptor *path[ZT_PB_MAX_DEPTH];
	unsigned budget = 4096;
	bool bounded;

	for (unsigned i = 0; i < 8; i++)
		if (seen[i].d == d)
			return seen[i].bounded;
	bounded = schema_depth(d, path, 0, &budget) <= ZT_PB_MAX_DEPTH;
	seen[next % 8].d = d;
	seen[next % 8].bounded = bounded;
	next++;
	return bounded;
}

static int unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                  size_t max_len, ProtobufCAllocator *a, ProtobufCMessage **out)
{
	static const uint8_t empty[1];
	int err;

	*out = NULL;
	if (len > max_len)
		return ZT_E_TOOBIG;
	if (!p) {
		if (len > 0)
			return ZT_E_PARSE;
		p = empty;
	}
	if (!schema_bounded(d) && (err = check_nesting(d, p, len, 0)))
		return err;
	*out = protobuf_c_message_unpack(d, a, len, p);
	return *out ? 0 : ZT_E_PARSE;
}

int zt_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, size_t max_len,
                 ProtobufCMessage **out)
{
	return unpack(d, p, len, max_len, NULL, out);
}

/* ---- scratch ------------------------------------------------------------------------------ */

#define BLOCK_MIN (16u << 10)
#define BLOCK_KEEP (256u << 10) /* a larger block (one huge message) is not kept */

struct zt_pb_block {
	struct zt_pb_block *next;
	size_t cap, used;
	max_align_t data[];
};

static void *scratch_alloc(void *arg, size_t size)
{
	struct zt_pb_scratch *s = arg;
	struct zt_pb_block *b = s->head;
	void *p;

	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (!b || b->cap - b->used < size) {
		size_t cap = b ? b->cap * 2 : BLOCK_MIN;
		if (cap < size)
			cap = size;
		b = xmalloc(sizeof(*b) + cap);
		b->cap = cap;
		b->used = 0;
		b->next = s->head;
		s->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += size;
	return p;
}

static void scratch_free(void *arg, void *p)
{
	(void)arg;
	(void)p; /* all at once, in zt_pb_scratch_reset */
}

int zt_pb_unpack_scratch(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                         size_t max_len, struct zt_pb_scratch *s, ProtobufCMessage **out)
{
	s->alloc.alloc = scratch_alloc;
	s->alloc.free = scratch_free;
	s->alloc.allocator_data = s;
	return unpack(d, p, len, max_len, &s->alloc, out);
}

void zt_pb_scratch_reset(struct zt_pb_scratch *s)
{
	struct zt_pb_block *keep = s->head;

	if (keep && keep->cap > BLOCK_KEEP)
		keep = NULL;
	for (struct zt_pb_block *b = s->head, *next; b; b = next) {
		next = b->next;
		if (b != keep)
			free(b);
	}
	s->head = keep;
	if (keep) {
		keep->next = NULL;
		keep->used = 0;
	}
}

void zt_pb_scratch_clear(struct zt_pb_scratch *s)
{
	for (struct zt_pb_block *b = s->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	s->head = NULL;
}

void zt_pb_free(ProtobufCMessage *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

int zt_pb_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len)
{
	size_t n;

	*out = NULL;
	*out_len = 0;
	if (!protobuf_c_message_check(msg))
		return -EINVAL;
	n = protobuf_c_message_get_packed_size(msg);
	*out = xmalloc(n);
	*out_len = protobuf_c_message_pack(msg, *out);
	return 0;
}

int zt_pb_any_unpack(const Google__Protobuf__Any *any, const ProtobufCMessageDescriptor *d,
                     size_t max_len, ProtobufCMessage **out)
{
	const char *slash = any->type_url ? strrchr(any->type_url, '/') : NULL;

	*out = NULL;
	if (!slash || strcmp(slash + 1, d->name) != 0)
		return ZT_E_PROTO;
	return zt_pb_unpack(d, any->value.data, any->value.len, max_len, out);
}

int zt_pb_any_pack(const ProtobufCMessage *msg, Google__Protobuf__Any *any)
{
	size_t n;
	int err;

	err = zt_pb_pack(msg, &any->value.data, &any->value.len);
	if (err)
		return err;
	n = sizeof(ZT_PB_TYPE_URL_PREFIX) + strlen(msg->descriptor->name);
	any->type_url = xmalloc(n);
	snprintf(any->type_url, n, "%s%s", ZT_PB_TYPE_URL_PREFIX, msg->descriptor->name);
	return 0;
}

void zt_pb_any_clear(Google__Protobuf__Any *any)
{
	if (!any)
		return;
	if (any->type_url != protobuf_c_empty_string)
		free(any->type_url);
	free(any->value.data);
	google__protobuf__any__init(any);
}

int zt_pb_method_path(const ProtobufCServiceDescriptor *sd, const char *method, char *buf,
                      size_t size)
{
	const ProtobufCMethodDescriptor *m;
	int n;

	m = protobuf_c_service_descriptor_get_method_by_name(sd, method);
	if (!m)
		return ZT_E_NOTFOUND;
	n = snprintf(buf, size, "/%s/%s", sd->name, m->name);
	if (n < 0 || (size_t)n >= size)
		return ZT_E_TOOBIG;
	return n;
}
