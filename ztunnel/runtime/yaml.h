/* YAML documents as small trees, built with libyaml's event parser.
 * Every node keeps the line and column it starts at, so callers can name the place of a bad
 * value. Input is bounded (size, depth, node count); aliases and duplicate keys are errors. A
 * tree is immutable once parsed and owned by its zt_yaml_docs. */
#ifndef ZT_RUNTIME_YAML_H
#define ZT_RUNTIME_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZT_YAML_MAX_INPUT (16u << 20) /* bytes per file or string */
#define ZT_YAML_MAX_DEPTH 64
#define ZT_YAML_MAX_NODES 1000000

enum zt_yaml_type { ZT_YAML_SCALAR, ZT_YAML_SEQ, ZT_YAML_MAP };

struct zt_yaml {
	enum zt_yaml_type type;
	unsigned line, col; /* 1-based */
	bool plain;         /* scalar written without quotes (so `null`, `~` mean null) */
	char *s;            /* scalar text, NUL-terminated; NULL for collections */
	size_t len;
	struct zt_yaml **items; /* SEQ: n items; MAP: keys at 2i, values at 2i+1 */
	size_t n;               /* SEQ: item count; MAP: pair count */
};

struct zt_yaml_docs {
	char *name; /* file name or the name given to zt_yaml_parse */
	struct zt_yaml **docs;
	size_t n;
};

/* Parses every document of text (len bytes). Empty documents are kept as NULL-valued plain
 * scalars. On error returns ZT_E_PARSE or ZT_E_TOOBIG with "name:line:col: what" in err;
 * out is then empty. */
int zt_yaml_parse(const char *name, const char *text, size_t len, struct zt_yaml_docs *out,
                  char *err, size_t errlen);
/* Reads path (at most ZT_YAML_MAX_INPUT bytes) and parses it; -errno when unreadable. */
int zt_yaml_load_file(const char *path, struct zt_yaml_docs *out, char *err, size_t errlen);
void zt_yaml_docs_clear(struct zt_yaml_docs *d);

/* Accessors; all accept NULL and return NULL/false when the shape does not fit. */
const struct zt_yaml *zt_yaml_get(const struct zt_yaml *map, const char *key);
const struct zt_yaml *zt_yaml_at(const struct zt_yaml *seq, size_t i);
const struct zt_yaml *zt_yaml_key(const struct zt_yaml *map, size_t i);
const struct zt_yaml *zt_yaml_val(const struct zt_yaml *map, size_t i);
/* Scalar text, or NULL for a collection, a null scalar or a NULL node. */
const char *zt_yaml_str(const struct zt_yaml *n);
/* True for NULL, and for plain scalars "", "~", "null", "Null", "NULL". */
bool zt_yaml_is_null(const struct zt_yaml *n);
/* Decimal (or 0x hex) integer within [min, max]; ZT_E_PARSE / ZT_E_RANGE otherwise. */
int zt_yaml_int(const struct zt_yaml *n, int64_t min, int64_t max, int64_t *out);
/* true/false (also True/False/TRUE/FALSE); ZT_E_PARSE otherwise. */
int zt_yaml_bool(const struct zt_yaml *n, bool *out);
/* "scalar", "sequence" or "mapping", for messages. */
const char *zt_yaml_type_name(const struct zt_yaml *n);

#endif
