/* Interned strings and SPIFFE identities: one shared, immutable, reference-counted copy per
 * distinct value, so the fields most workloads repeat (namespace, service account, node,
 * trust domain, network, cluster, canonical names, service and policy keys, the identity)
 * cost a pointer each. Process-wide (one store per process), safe to use from any thread:
 * a mutex guards the table; the values themselves are never written after creation. */
#ifndef ZT_STATE_INTERN_H
#define ZT_STATE_INTERN_H

#include <stddef.h>

#include "protocol/spiffe.h"

/* A new reference to the interned copy of s (NULL interns ""). Aborts on OOM. */
const char *zt_intern(const char *s);
/* The same for s[0..len) (no NUL inside expected; the copy is NUL-terminated). */
const char *zt_intern_n(const char *s, size_t len);
/* A new reference to the interned identity spiffe://td/ns/<ns>/sa/<sa>, or NULL (*rc set to
 * the zt_spiffe_set code) when those make no identity. */
const struct zt_spiffe *zt_intern_spiffe(const char *td, const char *ns, const char *sa, int *rc);
/* One more reference to an interned string or identity (returns p; NULL ok). */
const void *zt_intern_ref(const void *p);
/* Drops a reference taken by any function above; the value is freed with the last one.
 * NULL ok. Passing anything else is undefined. */
void zt_intern_release(const void *p);
/* Distinct values currently interned, "" aside (for tests and /debug). */
size_t zt_intern_count(void);

#endif
