/* Fuzz target: the CA's answer as ztunnel takes it (cert/ca_client.c, cert/manager.c): the
 * IstioCertificateResponse decoded with the client's bounds, then its chain put together as
 * the certificate manager does (leaf and intermediates, then the root bundle) and turned into
 * an identity with zt_tls_identity_new against the key the CSR was made with: PEM parsing,
 * the SPIFFE SAN, key match and chain verification. Input: the private key PEM, a NUL byte,
 * then the encoded response. Seeds: mkseeds (a key and the chain a CA signed for it). */
#include <stdlib.h>
#include <string.h>

#include "cert/ca_client.h"
#include "istio/ca/ca.pb-c.h"
#include "protocol/pb.h"
#include "protocol/spiffe.h"
#include "protocol/tls.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Istio__V1__Auth__IstioCertificateResponse *resp = NULL;
	const uint8_t *nul = memchr(data, 0, size);
	struct zt_tls_identity *id = NULL;
	size_t key_len, len = 0, off = 0, n;
	char *certs;

	if (!nul)
		return 0;
	key_len = (size_t)(nul - data);
	if (zt_pb_unpack(&istio__v1__auth__istio_certificate_response__descriptor, nul + 1,
	                 size - key_len - 1, ZT_CA_CLIENT_MAX_RESPONSE,
	                 (ProtobufCMessage **)&resp) < 0)
		return 0;
	n = resp->n_cert_chain;
	if (n < 2 || n > ZT_CA_CLIENT_MAX_CHAIN)
		goto out;
	for (size_t i = 0; i + 1 < n; i++)
		len += strlen(resp->cert_chain[i]) + 1;
	if (len > ZT_TLS_MAX_PEM)
		goto out;
	certs = malloc(len + 1);
	if (!certs)
		abort();
	for (size_t i = 0; i + 1 < n; i++) {
		size_t l = strlen(resp->cert_chain[i]);
		memcpy(certs + off, resp->cert_chain[i], l);
		off += l;
		if (l == 0 || resp->cert_chain[i][l - 1] != '\n')
			certs[off++] = '\n';
	}
	certs[off] = '\0';
	if (zt_tls_identity_new(&id, certs, off, (const char *)data, key_len,
	                        resp->cert_chain[n - 1], strlen(resp->cert_chain[n - 1])) == 0) {
		char s[ZT_SPIFFE_STR_SIZE];
		if (!zt_tls_identity_spiffe(id) || !zt_tls_identity_leaf(id) ||
		    !zt_tls_identity_serial(id))
			__builtin_trap();
		zt_spiffe_format(zt_tls_identity_spiffe(id), s, sizeof(s));
		(void)zt_tls_identity_not_after(id);
		zt_tls_identity_unref(id);
	}
	free(certs);
out:
	zt_pb_free((ProtobufCMessage *)resp);
	return 0;
}
