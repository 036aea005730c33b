/* Where workload certificates come from (spec §4): the remote CA (cert/ca_client.h) or an
 * in-process signer. The certificate manager only sees this interface: one signing request per
 * call, answered exactly once through the done callback unless cancelled first. */
#ifndef ZT_CERT_SOURCE_H
#define ZT_CERT_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The answer to one request. err 0: chain holds n PEM strings, the leaf first, intermediates,
 * and the root bundle (one or more PEMs) last; msg is "". err < 0: msg says why (valid during
 * the call), chain is NULL and n 0. The array and every string are malloc'd and owned by the
 * callee from then on (zt_cert_chain_free releases them). */
typedef void (*zt_cert_done_cb)(void *arg, int err, const char *msg, char **chain, size_t n);

struct zt_cert_source {
	/* Starts signing csr_pem (PEM PKCS#10, borrowed for the call) for spiffe_id (the URI
	 * form, borrowed) with a requested lifetime of ttl_s seconds. Returns 0 and a handle in
	 * *handle, after which done runs exactly once unless cancel(handle) comes first; it may
	 * run before sign returns (*handle is then unspecified). Returns < 0 when nothing was
	 * started; done never runs then. */
	int (*sign)(void *src, const char *spiffe_id, const char *csr_pem, int64_t ttl_s,
	            zt_cert_done_cb done, void *arg, void **handle);
	/* Abandons a request whose done has not run; it never will. */
	void (*cancel)(void *src, void *handle);
	void *src;
};

/* Frees a chain handed over by a done callback. Accepts NULL. */
static inline void zt_cert_chain_free(char **chain, size_t n)
{
	if (!chain)
		return;
	for (size_t i = 0; i < n; i++)
		free(chain[i]);
	free(chain);
}

#endif
