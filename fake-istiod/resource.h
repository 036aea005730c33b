/* One xDS resource as fake-istiod serves it: its name, a version derived from its bytes and the
 * serialized message. Shared by the converter (which builds them) and the ADS server (which
 * sends them); equal bytes always carry an equal version. */
#ifndef FI_RESOURCE_H
#define FI_RESOURCE_H

#include <stddef.h>
#include <stdint.h>

struct fi_resource {
	char *name;    /* resource name, e.g. a workload uid or "ns/hostname" (owned) */
	char *version; /* hex text, a function of data only (owned) */
	uint8_t *data; /* serialized protobuf message (owned) */
	size_t len;
	const void *held; /* the ADS set's copy of it, when known (fi_ads_set_hinted), or NULL */
};

struct ProtobufCMessage;

/* Packs msg into r (overwritten): name copied, version = hex of the first 8 bytes of the
 * SHA-256 of the bytes. Returns 0 or -EINVAL (the message does not encode). */
int fi_resource_pack(struct fi_resource *r, const char *name, const struct ProtobufCMessage *msg);

/* SHA-256 of data[0..len) into out (32 bytes); the digest is fetched once per process, so
 * this is cheap enough to call per object. Thread-safe. */
void fi_sha256(const void *data, size_t len, unsigned char out[32]);
/* n bytes as 2n lowercase hex digits and a NUL into out. */
void fi_hex(const unsigned char *in, size_t n, char *out);

/* Frees the fields of r and zeroes it. Accepts NULL and a zeroed resource. */
void fi_resource_clear(struct fi_resource *r);

#endif
