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

/* Bounds for zt_yaml_stream_file. The hints (may be NULL) end the matching messages, e.g.
 * " (raise with --max-yaml-bytes)". */
struct zt_yaml_limits {
	uint64_t max_bytes; /* the whole file */
	size_t max_nodes;   /* per document: the most held at once */
	const char *bytes_hint, *nodes_hint;
};

/* Called with each document of a stream in turn (index from 0); the tree is borrowed and
 * freed when cb returns. A non-zero return stops the stream and is returned by it. */
typedef int (*zt_yaml_doc_cb)(void *arg, const struct zt_yaml *doc, size_t index);

/* Parses path one document at a time: only the document being read is held in memory. The
 * file must be a regular file of at most lim->max_bytes (checked before and while reading).
 * Returns 0, cb's first non-zero return, -errno (unreadable), ZT_E_PARSE (malformed YAML, not
 * a regular file) or ZT_E_TOOBIG ("name:line:col: what" in err, hint appended). Documents
 * before a failure have been handed to cb already: undoing them is the caller's choice. */
int zt_yaml_stream_file(const char *path, const struct zt_yaml_limits *lim, zt_yaml_doc_cb cb,
                        void *arg, char *err, size_t errlen);

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
/* n for a "got ..." message: a quoted scalar (shortened, control bytes as '?') or its type
 * name; written into buf (len >= 16), which is returned. */
const char *zt_yaml_describe(const struct zt_yaml *n, char *buf, size_t len);

/* ---- schema reader ----------------------------------------------------------------------
 * Typed field lookups for YAML inputs with a fixed schema (local config, the mesh manifests).
 * Each refuses what does not fit with one message in err:
 *     FILE:LINE[:COL]: [OBJECT: ][PATH.]FIELD: WHAT
 * OBJECT and PATH are what the caller is reading (set obj, enter/leave path elements); the
 * first failure is the one reported and its code returned (ZT_E_PARSE unless said). Absent
 * and null fields are the same: "not given". Strings are borrowed from the tree. */
struct zt_yaml_rd {
	const char *file;
	char *err;
	size_t errlen;
	bool columns;   /* locations as file:line:col, else file:line */
	char obj[320];  /* e.g. "Pod default/web"; "" when none */
	char path[256]; /* e.g. "spec.ports[1]"; "" at the top */
	size_t plen;
};

void zt_yaml_rd_init(struct zt_yaml_rd *r, const char *file, char *err, size_t errlen,
                     bool columns);
/* Appends one path element ("spec", "ports[2]"); returns the mark zt_yaml_rd_leave restores. */
size_t zt_yaml_rd_enter(struct zt_yaml_rd *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void zt_yaml_rd_leave(struct zt_yaml_rd *r, size_t mark);
/* Writes the message for node at (NULL: no line) and returns code. */
int zt_yaml_rd_fail(struct zt_yaml_rd *r, const struct zt_yaml *at, int code, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
/* zt_yaml_rd_fail with field (may be NULL) entered for the message. */
int zt_yaml_rd_failf(struct zt_yaml_rd *r, const struct zt_yaml *at, const char *field, int code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* n (named field, may be NULL) must be a node of type t. */
int zt_yaml_rd_want(struct zt_yaml_rd *r, const struct zt_yaml *n, enum zt_yaml_type t,
                    const char *field);
/* An optional mapping / sequence under key: *out is NULL when not given. */
int zt_yaml_rd_map(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key,
                   const struct zt_yaml **out);
int zt_yaml_rd_seq(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key,
                   const struct zt_yaml **out);
/* A string under key (no NUL bytes inside): *out is NULL when not given, which is an error
 * ("required") when required. */
int zt_yaml_rd_str(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key,
                   bool required, const char **out);
/* A boolean under key; *out is left as it is when not given. */
int zt_yaml_rd_bool(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key, bool *out);
/* An integer in [min, max] under key; *out is left as it is when not given. ZT_E_RANGE when
 * out of range. */
int zt_yaml_rd_int(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key, int64_t min,
                   int64_t max, int64_t *out);
/* map must be a mapping whose keys are all in allowed (NULL-terminated): a misspelt field
 * would otherwise be silently ignored. */
int zt_yaml_rd_only_keys(struct zt_yaml_rd *r, const struct zt_yaml *map,
                         const char *const *allowed);

#endif
