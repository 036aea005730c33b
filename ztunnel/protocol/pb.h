/* Bounded protobuf encode/decode on top of protobuf-c, for every message that comes from a
 * peer (xDS, CA, ZDS). Invariant: nothing is decoded before its size has been checked against
 * a caller bound and its nesting depth against ZT_PB_MAX_DEPTH (by the schema when its types
 * cannot nest deeper, else by a walk of the bytes), so hostile input costs at most
 * max_len of memory and a bounded stack. Pure: no I/O. */
#ifndef ZT_PB_H
#define ZT_PB_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/any.pb-c.h"

/* Deepest nesting of messages below the top-level one that zt_pb_unpack accepts (the limit
 * libprotobuf applies by default). Only self-referencing types (google.protobuf.Struct and
 * Value) can get near it. */
#define ZT_PB_MAX_DEPTH 100

/* Type URL prefix used for every Any this project writes (spec §3.2). */
#define ZT_PB_TYPE_URL_PREFIX "type.googleapis.com/"

/* Decodes p[0..len) as message type d into *out (a new message, release with zt_pb_free).
 * Unknown fields of wire types varint, fixed64, length-delimited and fixed32 are skipped;
 * groups (wire types 3 and 4, absent from proto3) and a known field sent with the wrong wire
 * type (protobuf-c rule; libprotobuf would skip it) are malformed. p may be NULL when len is 0.
 * Returns 0; ZT_E_TOOBIG when len > max_len; ZT_E_PARSE when the bytes are not a valid
 * encoding of d or nest deeper than ZT_PB_MAX_DEPTH. *out is NULL on error.
 * The decoded form can be much larger than len (a 2-byte empty submessage becomes a whole
 * struct, up to a few hundred bytes), so pick max_len per message type, not per stream. */
int zt_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, size_t max_len,
                 ProtobufCMessage **out);

/* One field read straight from the wire: its number, wire type (0 varint, 1 fixed64,
 * 2 length-delimited, 5 fixed32) and value: v for a varint, else the bytes [p, p + len). */
struct zt_pb_field {
	uint32_t num;
	unsigned wire;
	uint64_t v;
	const uint8_t *p;
	size_t len;
};

/* Reads the field at *pos of buf[0..len) and moves *pos past it. Returns 1 with *f set, 0 at
 * the end, or ZT_E_PARSE on a truncated field, field number 0, a group or an undefined wire
 * type (as zt_pb_unpack). */
int zt_pb_next_field(const uint8_t *buf, size_t len, size_t *pos, struct zt_pb_field *f);

/* Scratch memory for decoding one message after another: a bump allocator whose blocks are
 * reused, so a decode costs no malloc/free per field. A message decoded into it lives until
 * the next zt_pb_scratch_reset (never zt_pb_free it). Zeroed struct = empty. One thread. */
struct zt_pb_scratch {
	ProtobufCAllocator alloc; /* set up on first use */
	struct zt_pb_block *head;
};

/* zt_pb_unpack into scratch s. */
int zt_pb_unpack_scratch(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                         size_t max_len, struct zt_pb_scratch *s, ProtobufCMessage **out);
/* Forgets every message decoded into s (keeps one block of moderate size for the next). */
void zt_pb_scratch_reset(struct zt_pb_scratch *s);
/* Frees all of s. */
void zt_pb_scratch_clear(struct zt_pb_scratch *s);

/* Frees a message from zt_pb_unpack or zt_pb_any_unpack. Accepts NULL. */
void zt_pb_free(ProtobufCMessage *msg);

/* Encodes msg (borrowed) into a new malloc'd buffer *out of *out_len bytes (never NULL, even
 * for an empty encoding; the caller frees it). Returns 0, or -EINVAL when msg fails
 * protobuf_c_message_check (e.g. a NULL element in a repeated field); *out is NULL then. */
int zt_pb_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len);

/* Decodes any->value (borrowed) as type d, after checking that the type URL names d: the text
 * after its last '/' must equal d->name. Returns 0, ZT_E_PROTO on a type mismatch, or what
 * zt_pb_unpack returns. */
int zt_pb_any_unpack(const Google__Protobuf__Any *any, const ProtobufCMessageDescriptor *d,
                     size_t max_len, ProtobufCMessage **out);

/* Fills *any (initialised by the caller; previous contents are overwritten, not freed) with
 * msg encoded and the type URL ZT_PB_TYPE_URL_PREFIX<full name>. Both fields are malloc'd;
 * release them with zt_pb_any_clear. Returns 0 or -EINVAL as zt_pb_pack. */
int zt_pb_any_pack(const ProtobufCMessage *msg, Google__Protobuf__Any *any);

/* Frees what zt_pb_any_pack stored in *any and resets it to an empty Any. Accepts NULL. */
void zt_pb_any_clear(Google__Protobuf__Any *any);

/* Writes the gRPC path "/<package>.<Service>/<method>" of a method of sd into buf (NUL
 * terminated). Returns the path length, ZT_E_NOTFOUND when sd has no such method, or
 * ZT_E_TOOBIG when it does not fit in size bytes. */
int zt_pb_method_path(const ProtobufCServiceDescriptor *sd, const char *method, char *buf,
                      size_t size);

#endif
