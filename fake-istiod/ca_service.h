/* The fake istiod's certificate service (spec §4): unary gRPC
 * /istio.v1.auth.IstioCertificateService/CreateCertificate. Callers authenticate with a
 * fake-istiod token ("authorization: Bearer <jwt>"); a node agent listed as trusted may
 * ask for the identity of a workload running on its node (ImpersonatedIdentity), anyone else
 * only for its own identity. Every decision is logged (module "ca"). */
#ifndef FI_CA_SERVICE_H
#define FI_CA_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/ca.h"
#include "protocol/grpc.h"

#include "token.h"

#define FI_CA_SERVICE_PATH    "/istio.v1.auth.IstioCertificateService/CreateCertificate"
#define FI_CA_DEFAULT_TRUSTED "istio-system/ztunnel"
#define FI_CA_MAX_REQUEST     (128u * 1024) /* bound on an encoded request */
#define FI_CA_IMPERSONATE_KEY "ImpersonatedIdentity"
#define FI_CA_MIN_TTL_S       600 /* default floor on issued lifetimes */

/* Everything borrowed; must outlive the server it is registered on. */
struct fi_ca_service {
	struct zt_ca *ca;
	struct fi_token_key *key;
	const char *trust_domain;
	int64_t max_ttl_s;            /* cap on issued lifetimes, 1..ZT_CA_MAX_TTL_S */
	int64_t min_ttl_s;            /* floor on them; 0: FI_CA_MIN_TTL_S (never above the cap) */
	const char *trusted_accounts; /* comma list of "ns/sa"; NULL: FI_CA_DEFAULT_TRUSTED */
	/* Whether a pod of ns/sa runs on node; NULL refuses every impersonation. */
	bool (*has_pod_on_node)(void *arg, const char *node, const char *ns, const char *sa);
	void *arg;
};

/* The method to put in a struct zt_grpc_server's table; its handler runs svc. */
struct zt_grpc_method fi_ca_service_method(struct fi_ca_service *svc);

/* The whole decision for one call, without gRPC: authorization is the metadata value (NULL
 * when absent), req[0..len) the encoded IstioCertificateRequest.
 * - no/malformed/invalid Bearer token: ZT_GRPC_UNAUTHENTICATED;
 * - undecodable request: ZT_GRPC_INVALID_ARGUMENT;
 * - ImpersonatedIdentity from a caller not in trusted_accounts, not a SPIFFE ID of the trust
 *   domain, or with no pod of that ns/sa on the caller's node: ZT_GRPC_PERMISSION_DENIED;
 * - CSR refused by zt_ca_sign_csr (its identity must be the impersonated one, or else the
 *   caller's own spiffe://TD/ns/NS/sa/SA): ZT_GRPC_INVALID_ARGUMENT with the signer's words;
 * - ZT_GRPC_OK: *resp (new, caller frees) holds *resp_len bytes of IstioCertificateResponse,
 *   cert_chain = leaf then root. Lifetime: validity_duration capped at max_ttl_s (<= 0 means
 *   max_ttl_s) and raised to the floor min_ttl_s, so no caller gets 1-second certificates.
 * - ImpersonatedIdentity (or any metadata key) holding a NUL byte: ZT_GRPC_INVALID_ARGUMENT.
 * Returns the status code; msg (may be NULL) gets the status message ("" on success). */
int fi_ca_service_handle(struct fi_ca_service *svc, const char *authorization, const uint8_t *req,
                         size_t len, uint8_t **resp, size_t *resp_len, char *msg, size_t msglen);

#endif
