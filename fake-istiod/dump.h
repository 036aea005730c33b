/* Readable forms of the xDS resources fake-istiod serves: each message rendered field by
 * field from its protobuf-c descriptor (JSON names, enum names, maps as objects, 4- and
 * 16-byte address fields as IP text), as JSON or YAML. Only fields that are set appear. */
#ifndef FI_DUMP_H
#define FI_DUMP_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

#include "fake-istiod/convert.h"

/* A new JSON object for msg (never NULL). */
json_t *fi_dump_message(const ProtobufCMessage *msg);
/* {"addresses": [{"name", "version", "resource"}...], "authorizations": [...]}; a resource
 * that does not decode shows "error" instead of "resource". */
json_t *fi_dump_resources_json(const struct fi_resources *res);
/* Writes fi_dump_resources_json(res) to f as "json" or "yaml". JSON is written resource by
 * resource without building the tree: each top-level key on a line at two spaces, each
 * resource compact on a line of its own, so a reader can take it line by line. Returns 0, or
 * ZT_E_PARSE (unknown format) / -EIO with err set. */
int fi_dump_resources(const struct fi_resources *res, const char *format, FILE *f, char *err,
                      size_t errlen);
/* The lab's view of a mesh: {"nodes": [names], "pods": [{namespace, name, uid, node,
 * serviceAccount, ips, ports: [{name, port}], inMesh, waypoint (gateway name or null)}]}, for
 * scripts that build the topology the manifests describe. */
json_t *fi_dump_inventory(const struct fi_mesh *m);
/* Writes any JSON value as a YAML document. Returns 0 or -EIO. */
int fi_dump_yaml(const json_t *v, FILE *f);

#endif
