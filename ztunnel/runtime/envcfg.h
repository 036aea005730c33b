/* Table-driven configuration from environment variables. A program declares a static table of
 * zt_envcfg_var entries, each binding a variable name to a typed field (by offset) of its
 * config struct; zt_envcfg_load() sets every field from its variable or its default and
 * reports every invalid value, not just the first. The struct owns its string fields (heap
 * copies); zt_envcfg_clear() frees them. */
#ifndef ZT_ENVCFG_H
#define ZT_ENVCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum zt_envcfg_type {
	ZT_ENVCFG_STRING,   /* char *: heap copy owned by the config, NULL when unset */
	ZT_ENVCFG_BOOL,     /* bool: true/false, 1/0, yes/no, on/off, any case */
	ZT_ENVCFG_INT,      /* int64_t: decimal, optional '-', within [min, max] */
	ZT_ENVCFG_DURATION, /* uint64_t milliseconds: zt_duration_parse() syntax */
	ZT_ENVCFG_SIZE,     /* uint64_t bytes: zt_size_parse() syntax */
	ZT_ENVCFG_ENUM,     /* int: index into choices; exact, case-sensitive match */
};

/* The C type of the field each kind fills; ZT_ENVCFG_FIELD checks the field against it. */
#define ZT_ENVCFG_STRING_CTYPE   char *
#define ZT_ENVCFG_BOOL_CTYPE     bool
#define ZT_ENVCFG_INT_CTYPE      int64_t
#define ZT_ENVCFG_DURATION_CTYPE uint64_t
#define ZT_ENVCFG_SIZE_CTYPE     uint64_t
#define ZT_ENVCFG_ENUM_CTYPE     int

enum {
	ZT_ENVCFG_REQUIRED = 1u << 0, /* unset (name and alias) is an error; def is ignored */
	ZT_ENVCFG_SECRET = 1u << 1,   /* value never shown: dump, format and error messages */
};

struct zt_envcfg_var {
	const char *name;
	const char *alias; /* optional second name, read only when name is unset */
	enum zt_envcfg_type type;
	size_t offset;    /* of the field in the config struct: set both with ZT_ENVCFG_FIELD */
	const char *def;  /* default, as env text; NULL = none: field zero/NULL when unset */
	const char *help; /* one line for zt_envcfg_help() */
	unsigned flags;   /* ZT_ENVCFG_REQUIRED, ZT_ENVCFG_SECRET */
	int64_t min, max; /* INT: inclusive bounds; both 0 means any int64_t */
	const char *const *choices; /* ENUM: allowed values, NULL-terminated */
};

/* Sets .type and .offset for field `field` of struct type S with kind KIND (STRING, BOOL, INT,
 * DURATION, SIZE, ENUM). A field whose C type is not ZT_ENVCFG_<KIND>_CTYPE fails to compile
 * ("size of unnamed array is negative"). Use inside an initialiser:
 *   {.name = "POOL_MAX_STREAMS_PER_CONNECTION", ZT_ENVCFG_FIELD(struct cfg, max_streams, INT),
 *    .def = "100", .min = 1, .max = 65535, .help = "..."} */
#define ZT_ENVCFG_FIELD(S, field, KIND)                                                            \
	.type = ZT_ENVCFG_##KIND,                                                                  \
	.offset = offsetof(S, field) +                                                             \
	          ZT_ENVCFG_TYPECHECK(((S *)0)->field, ZT_ENVCFG_##KIND##_CTYPE)

/* 0 when expression e (not evaluated) has type T; otherwise a negative array size. */
/* clang-format off */
#define ZT_ENVCFG_TYPECHECK(e, T) (0 * sizeof(char[_Generic((e), T: 1, default: -1)]))
/* clang-format on */

/* Returns the value of name or NULL when unset; the text is borrowed until the next call. */
typedef const char *(*zt_envcfg_getenv_cb)(const char *name, void *arg);
/* Receives one complete message per problem (no trailing newline). */
typedef void (*zt_envcfg_error_cb)(const char *msg, void *arg);

/* Fills cfg from the variables read through get (NULL: the process environment), for all n
 * entries of vars. cfg must be zeroed or previously loaded: string fields it already holds are
 * freed and replaced. Unset variables take their default. Each problem goes to on_error (may
 * be NULL) as one message, e.g.
 *   POOL_MAX_STREAMS_PER_CONNECTION="abc": expected an integer between 1 and 65535
 *   NODE_NAME: required but not set
 *   X: invalid default "abc": expected a boolean (true/false, yes/no, on/off, 1/0)
 * naming the alias when the value came from it; the field of an entry in error is zero/NULL.
 * Empty text is a value: "" for strings, invalid for every other kind.
 * Returns 0, or ZT_E_PARSE when anything was reported (cfg still needs zt_envcfg_clear()). */
int zt_envcfg_load(const struct zt_envcfg_var *vars, size_t n, void *cfg, zt_envcfg_getenv_cb get,
                   void *get_arg, zt_envcfg_error_cb on_error, void *err_arg);

/* Frees the string fields of cfg and zeroes every field the table describes. */
void zt_envcfg_clear(const struct zt_envcfg_var *vars, size_t n, void *cfg);

/* Writes v's current value in cfg as text that loads back to it: the string itself ("" for
 * NULL), true/false, decimal, zt_duration_format(), zt_size_format(), the choice name (""
 * for an index out of range); "<redacted>" for a set SECRET. Returns 0 or -ENOSPC (buf "",
 * when len > 0). */
int zt_envcfg_format(const struct zt_envcfg_var *v, const void *cfg, char *buf, size_t len);

/* Writes the effective configuration, one NAME=value line per entry in table order, values as
 * zt_envcfg_format() with '"' and '\\' backslashed and bytes outside printable ASCII escaped
 * (\n, \t, \xNN), so each entry stays on one line. */
void zt_envcfg_dump(const struct zt_envcfg_var *vars, size_t n, const void *cfg, FILE *out);

/* Writes a --help table: a header line, then per entry its name, default ("(required)", or
 * "-" when none; "" for an empty one) and help with the accepted values and alias, e.g.
 *   NAME                             DEFAULT  DESCRIPTION
 *   POOL_MAX_STREAMS_PER_CONNECTION  100      Streams per connection (integer 1..65535) */
void zt_envcfg_help(const struct zt_envcfg_var *vars, size_t n, FILE *out);

#endif
