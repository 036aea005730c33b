/* Lifetime of a served xDS resource: every field is owned by the resource. */
#include "fake-istiod/resource.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "protocol/pb.h"
#include "runtime/mem.h"

int fi_resource_pack(struct fi_resource *r, const char *name, const ProtobufCMessage *msg)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hl = 0;
	uint8_t *data;
	size_t len;
	int rc = zt_pb_pack(msg, &data, &len);

	if (rc)
		return rc;
	if (!EVP_Digest(data, len, h, &hl, EVP_sha256(), NULL))
		abort();
	char *version = xmalloc(17);
	for (int i = 0; i < 8; i++)
		snprintf(version + 2 * i, 3, "%02x", h[i]);
	*r = (struct fi_resource){.name = xstrdup(name), .version = version, .data = data, .len = len};
	return 0;
}

void fi_resource_clear(struct fi_resource *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->version);
	free(r->data);
	memset(r, 0, sizeof(*r));
}
