/* Lifetime of a served xDS resource: every field is owned by the resource. */
#include "fake-istiod/resource.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "protocol/pb.h"
#include "runtime/mem.h"

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
	if (!(sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL)))
		abort();
}

void fi_sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned hl = 0;

	pthread_once(&sha256_once, fetch_sha256);
	if (!EVP_Digest(data, len, out, &hl, sha256_md, NULL) || hl != 32)
		abort();
}

void fi_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int fi_resource_pack(struct fi_resource *r, const char *name, const ProtobufCMessage *msg)
{
	unsigned char h[32];
	uint8_t *data;
	size_t len;
	int rc = zt_pb_pack(msg, &data, &len);

	if (rc)
		return rc;
	fi_sha256(data, len, h);
	char *version = xmalloc(17);
	fi_hex(h, 8, version);
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
