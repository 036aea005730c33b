/* An in-process certificate source (FAKE_CA, LOCAL_CA_DIR; spec §4): signs workload CSRs
 * with a local protocol/ca.h authority, with istiod's checks, and answers from the loop like
 * a remote CA would, so the manager sees the same asynchronous contract either way. */
#ifndef ZT_CERT_LOCAL_H
#define ZT_CERT_LOCAL_H

#include "cert/source.h"
#include "protocol/ca.h"
#include "runtime/loop.h"

struct zt_cert_local;

/* ca (borrowed, must outlive the source) signs for identities of trust_domain (copied).
 * Returns 0 or ZT_E_RANGE (trust_domain empty or longer than ZT_SPIFFE_TD_MAX). */
int zt_cert_local_new(struct zt_cert_local **out, struct zt_loop *loop, struct zt_ca *ca,
                      const char *trust_domain);
/* Cancels what is still unanswered (no callback runs). Accepts NULL. */
void zt_cert_local_free(struct zt_cert_local *l);

/* The source (valid while l lives). sign() checks the CSR at once (it must ask for exactly
 * spiffe_id, in the trust domain) and answers from the loop: the chain (leaf, root) or the
 * signer's error (ZT_E_PARSE, ZT_E_PROTO, ZT_E_IDENTITY, ZT_E_RANGE, ZT_E_TLS) with its
 * reason. sign() itself only fails for a NULL argument (ZT_E_PARSE). */
struct zt_cert_source zt_cert_local_source(struct zt_cert_local *l);

#endif
