/* Logging: levels, per-module level overrides that can change at runtime (a RUST_LOG-style
 * spec such as "info,access=debug,xds=trace"), plain-text or JSON lines, and structured
 * key=value fields (used by the access log). A disabled level costs one compare.
 *
 * Each .c file names its module once with ZT_LOG_MODULE("name") and then logs with
 * zt_error/zt_warn/zt_info/zt_debug/zt_trace(fmt, ...). Thread-safe: a line is written whole,
 * with one write, never interleaved with another thread's. */
#ifndef ZT_LOG_H
#define ZT_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum zt_log_level {
	ZT_LOG_OFF = 0,
	ZT_LOG_ERROR,
	ZT_LOG_WARN,
	ZT_LOG_INFO,
	ZT_LOG_DEBUG,
	ZT_LOG_TRACE,
};

enum zt_log_format { ZT_LOG_TEXT, ZT_LOG_JSON };

/* One per module; the effective level is cached and refreshed when the spec changes. */
struct zt_log_mod {
	const char *name;
	atomic_uint gen; /* written after level (release), read before it (acquire) */
	atomic_int level;
};

enum zt_log_ftype { ZT_LF_STR, ZT_LF_INT, ZT_LF_UINT };

/* A structured field. A NULL string value is omitted from the line. */
struct zt_log_field {
	const char *key;
	enum zt_log_ftype type;
	union {
		const char *s;
		int64_t i;
		uint64_t u;
	} v;
};

#define ZT_LF_S(k, val) ((struct zt_log_field){.key = (k), .type = ZT_LF_STR, .v.s = (val)})
#define ZT_LF_I(k, val) ((struct zt_log_field){.key = (k), .type = ZT_LF_INT, .v.i = (val)})
#define ZT_LF_U(k, val) ((struct zt_log_field){.key = (k), .type = ZT_LF_UINT, .v.u = (val)})

#define ZT_LOG_MODULE(n)                                                                       \
	static struct zt_log_mod zt_log_mod_ __attribute__((unused)) = {.name = (n)}

#define ZT_LOG(lvl, ...)                                                                       \
	do {                                                                                   \
		if (zt_log_enabled(&zt_log_mod_, (lvl)))                                       \
			zt_log_emit(&zt_log_mod_, (lvl), NULL, 0, __VA_ARGS__);                \
	} while (0)
#define zt_error(...) ZT_LOG(ZT_LOG_ERROR, __VA_ARGS__)
#define zt_warn(...)  ZT_LOG(ZT_LOG_WARN, __VA_ARGS__)
#define zt_info(...)  ZT_LOG(ZT_LOG_INFO, __VA_ARGS__)
#define zt_debug(...) ZT_LOG(ZT_LOG_DEBUG, __VA_ARGS__)
#define zt_trace(...) ZT_LOG(ZT_LOG_TRACE, __VA_ARGS__)

/* Sets default level and per-module overrides from a spec: comma-separated items, each a
 * level ("info") or "module=level"; "module::sub=level" is accepted with the prefix before
 * "::" ignored, so RUST_LOG values written for the reference ztunnel work. Levels: off, error,
 * warn, info, debug, trace. On error nothing changes and err (if non-NULL) names the bad item.
 * Returns 0 or ZT_E_PARSE / ZT_E_TOOBIG (more than 64 overrides or an item over 63 bytes). */
int zt_log_set_spec(const char *spec, char *err, size_t errlen);
/* Writes the current spec (default level first, then overrides) into buf. */
void zt_log_get_spec(char *buf, size_t len);
/* Parses one level name. Returns the level or ZT_E_PARSE. */
int zt_log_level_parse(const char *name);
const char *zt_log_level_name(enum zt_log_level level);

void zt_log_set_format(enum zt_log_format fmt);
enum zt_log_format zt_log_get_format(void);
/* Parses "json" or "text"/"plain" (case-insensitive). Returns 0 or ZT_E_PARSE. */
int zt_log_format_parse(const char *s, enum zt_log_format *out);

/* Where complete lines go (each ends with '\n'); the default writes them to stderr. Passing
 * NULL restores the default. The line is only valid during the call. */
typedef void (*zt_log_sink_cb)(enum zt_log_level level, const char *line, size_t len, void *arg);
void zt_log_set_sink(zt_log_sink_cb cb, void *arg);

/* Internal: bumped by every spec change; recomputes a module's cached level. */
extern atomic_uint zt_log_gen_;
int zt_log_refresh_(struct zt_log_mod *mod);

/* Whether a message at level from mod would be written. */
static inline int zt_log_enabled(struct zt_log_mod *mod, enum zt_log_level level)
{
	if (atomic_load_explicit(&mod->gen, memory_order_acquire) !=
	    atomic_load_explicit(&zt_log_gen_, memory_order_acquire))
		return (int)level <= zt_log_refresh_(mod);
	return (int)level <= atomic_load_explicit(&mod->level, memory_order_relaxed);
}

/* Writes one line: timestamp, level, module, message, then fields. Text form:
 *   2026-01-02T03:04:05.123456Z<TAB>info<TAB>access<TAB>message key=value key="a b"
 * JSON form: {"time":..., "level":..., "scope":..., "message":..., "key": value, ...}.
 * Callers normally go through the macros, which check zt_log_enabled first. */
void zt_log_emit(struct zt_log_mod *mod, enum zt_log_level level, const struct zt_log_field *f,
		 size_t nf, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void zt_log_vemit(struct zt_log_mod *mod, enum zt_log_level level, const struct zt_log_field *f,
		  size_t nf, const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
