/* Manifests for the fake-istiod model tests: YAML texts (and an address file) are written to
 * a fresh temporary directory as m.yaml, m2.yaml, ... and addrs, then loaded; error text comes
 * back with that directory stripped, so tests compare "m.yaml:3: ..." exactly. */
#ifndef MESH_FIXTURE_H
#define MESH_FIXTURE_H

#include <stddef.h>

#include "fake-istiod/convert.h"
#include "fake-istiod/mesh.h"

/* Loads n texts (addrs may be NULL) into m; returns what fi_mesh_load returns. */
int fx_mesh_load(struct fi_mesh *m, const char *const *texts, size_t n, const char *addrs,
                 char *err, size_t errlen);
/* fx_mesh_load with the bounds of base (may be NULL; its addresses_file is ignored). */
int fx_mesh_load_opts(struct fi_mesh *m, const char *const *texts, size_t n, const char *addrs,
                      const struct fi_mesh_opts *base, char *err, size_t errlen);
/* Loads one text and converts it with default options; any error fails the test. */
void fx_mesh_convert(const char *yaml, struct fi_mesh *m, struct fi_resources *r);

#endif
