/* A DeltaDiscoveryResponse (envoy.service.discovery.v3, spec §3.3) read straight from its wire
 * bytes: the envelope is checked once, then its resources and removed names are walked as
 * views into the message. Nothing is allocated, so a response of 100,000 resources costs no
 * more memory than its bytes, and each resource body is decoded (and freed) by its consumer
 * one at a time. Invariant: every view points into the buffer given to zt_delta_parse, which
 * must outlive them; strings are not NUL-terminated and never contain a NUL byte. Pure. */
#ifndef ZT_DELTA_H
#define ZT_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zt_delta_str {
	const char *p;
	size_t len;
};

struct zt_delta_resource {
	struct zt_delta_str name, version;
	bool has_body;            /* the resource field (an Any) was present */
	struct zt_delta_str type; /* the Any's type URL */
	const uint8_t *body;      /* the Any's value */
	size_t body_len;
};

struct zt_delta {
	struct zt_delta_str version_info, type_url, nonce;
	size_t n_resources, n_removed;
	const uint8_t *buf; /* the message */
	size_t len;
};

/* Checks p[0..len) as a DeltaDiscoveryResponse and fills *d. Unknown fields are skipped; a
 * known field of the wrong wire type, malformed framing, or a NUL byte in any string this
 * reader returns is an error. Repeated occurrences of a singular field: the last one counts
 * (for the Any, field by field), as protobuf decoders do. Returns 0 or ZT_E_PARSE, with what
 * was wrong in err. p may be NULL when len is 0. */
int zt_delta_parse(const uint8_t *p, size_t len, struct zt_delta *d, char *err, size_t errlen);

/* The resources in wire order: *pos = 0, then call until it returns false. */
bool zt_delta_next_resource(const struct zt_delta *d, size_t *pos, struct zt_delta_resource *r);

/* The removed names in wire order, likewise. */
bool zt_delta_next_removed(const struct zt_delta *d, size_t *pos, struct zt_delta_str *name);

/* Whether s equals the C string c. */
bool zt_delta_str_eq(struct zt_delta_str s, const char *c);

#endif
