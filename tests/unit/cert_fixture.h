/* Test signer for the certificate tests: signs a leaf for the public key of a PEM CSR, as
 * istiod would, from a tls_fixture CA. Every call either succeeds or fails the running test. */
#ifndef CERT_FIXTURE_H
#define CERT_FIXTURE_H

#include "tls_fixture.h"

/* A new PEM certificate (malloc'd) for csr_pem's key signed by ca: subject empty, critical
 * URI SAN san (NULL: none), EKU as in fx_leaf_opts (0: no EKU extension), valid from
 * now + nb to now + na seconds. */
char *cfx_sign_csr(const struct fx_ca *ca, const char *csr_pem, const char *san, unsigned eku,
                   long nb, long na);

#endif
