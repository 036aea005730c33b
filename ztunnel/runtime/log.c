/* Log lines are built whole in a stack buffer (text) or by jansson (JSON) and handed to the
 * sink in one call, so lines never interleave. Module levels are cached per module and
 * recomputed lazily when the global generation changes (a new spec bumps it). */
#include "runtime/log.h"

#include <ctype.h>
#include <pthread.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/mem.h"

#define MAX_OVERRIDES 64
#define NAME_MAX_LEN 63
#define LINE_MAX_LEN 8192

struct override {
	char name[NAME_MAX_LEN + 1];
	int level;
};

static struct {
	int level;
	struct override ov[MAX_OVERRIDES];
	size_t nov;
	_Atomic enum zt_log_format format;
	zt_log_sink_cb sink;
	void *sink_arg;
} g = {.level = ZT_LOG_INFO};

atomic_uint zt_log_gen_ = 1;
/* Guards g's spec and sink, and keeps lines whole: one writer at a time. */
static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP; /* a sink may log */

static const char *const level_names[] = {"off", "error", "warn", "info", "debug", "trace"};

const char *zt_log_level_name(enum zt_log_level level)
{
	if ((unsigned)level < sizeof(level_names) / sizeof(level_names[0]))
		return level_names[level];
	return "unknown";
}

int zt_log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(name, "warning") == 0)
		return ZT_LOG_WARN;
	return ZT_E_PARSE;
}

int zt_log_refresh_(struct zt_log_mod *mod)
{
	int level;
	unsigned gen;

	pthread_mutex_lock(&lock);
	gen = atomic_load(&zt_log_gen_);
	level = g.level;
	for (size_t i = 0; i < g.nov; i++)
		if (strcmp(g.ov[i].name, mod->name) == 0)
			level = g.ov[i].level;
	atomic_store_explicit(&mod->level, level, memory_order_relaxed);
	atomic_store_explicit(&mod->gen, gen, memory_order_release);
	pthread_mutex_unlock(&lock);
	return level;
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

static int parse_level_n(const char *s, size_t len)
{
	char tmp[16];

	if (len == 0 || len >= sizeof(tmp))
		return ZT_E_PARSE;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return zt_log_level_parse(tmp);
}

int zt_log_set_spec(const char *spec, char *err, size_t errlen)
{
	int level = g.level;
	struct override ov[MAX_OVERRIDES];
	size_t nov = 0;
	const char *p = spec;
	bool have_default = false;

	if (err && errlen)
		err[0] = '\0';
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *item = p, *eq;
		size_t ilen = len;

		p += len + (end ? 1 : 0);
		trim(&item, &ilen);
		if (ilen == 0)
			continue;
		eq = memchr(item, '=', ilen);
		if (!eq) {
			int l = parse_level_n(item, ilen);
			if (l < 0)
				goto bad;
			level = l;
			have_default = true;
			continue;
		}
		const char *name = item, *colons;
		size_t nlen = (size_t)(eq - item);
		const char *lv = eq + 1;
		size_t lvlen = ilen - nlen - 1;
		int l;

		trim(&name, &nlen);
		trim(&lv, &lvlen);
		/* "ztunnel::proxy=debug" names module "proxy". */
		while ((colons = memmem(name, nlen, "::", 2)) != NULL) {
			nlen -= (size_t)(colons + 2 - name);
			name = colons + 2;
		}
		l = parse_level_n(lv, lvlen);
		if (nlen == 0 || l < 0)
			goto bad;
		if (nlen > NAME_MAX_LEN || nov == MAX_OVERRIDES) {
			if (err)
				snprintf(err, errlen, "log spec item '%.*s': too many or too long",
					 (int)(ilen > 80 ? 80 : ilen), item);
			return ZT_E_TOOBIG;
		}
		memcpy(ov[nov].name, name, nlen);
		ov[nov].name[nlen] = '\0';
		ov[nov].level = l;
		nov++;
		continue;
	bad:
		if (err)
			snprintf(err, errlen,
				 "log spec item '%.*s': expected LEVEL or MODULE=LEVEL with LEVEL one "
				 "of off, error, warn, info, debug, trace",
				 (int)(ilen > 80 ? 80 : ilen), item);
		return ZT_E_PARSE;
	}
	(void)have_default;
	pthread_mutex_lock(&lock);
	g.level = level;
	memcpy(g.ov, ov, nov * sizeof(ov[0]));
	g.nov = nov;
	atomic_fetch_add(&zt_log_gen_, 1);
	pthread_mutex_unlock(&lock);
	return 0;
}

void zt_log_get_spec(char *buf, size_t len)
{
	size_t off;
	int n;

	if (len == 0)
		return;
	pthread_mutex_lock(&lock);
	n = snprintf(buf, len, "%s", zt_log_level_name(g.level));
	off = n < 0 ? 0 : (size_t)n;
	for (size_t i = 0; i < g.nov && off < len; i++) {
		n = snprintf(buf + off, len - off, ",%s=%s", g.ov[i].name,
			     zt_log_level_name(g.ov[i].level));
		if (n < 0)
			break;
		off += (size_t)n;
	}
	pthread_mutex_unlock(&lock);
}

void zt_log_set_format(enum zt_log_format fmt)
{
	atomic_store_explicit(&g.format, fmt, memory_order_relaxed);
}

enum zt_log_format zt_log_get_format(void)
{
	return atomic_load_explicit(&g.format, memory_order_relaxed);
}

int zt_log_format_parse(const char *s, enum zt_log_format *out)
{
	if (strcasecmp(s, "json") == 0)
		*out = ZT_LOG_JSON;
	else if (strcasecmp(s, "text") == 0 || strcasecmp(s, "plain") == 0)
		*out = ZT_LOG_TEXT;
	else
		return ZT_E_PARSE;
	return 0;
}

void zt_log_set_sink(zt_log_sink_cb cb, void *arg)
{
	pthread_mutex_lock(&lock);
	g.sink = cb;
	g.sink_arg = arg;
	pthread_mutex_unlock(&lock);
}

static void write_line(enum zt_log_level level, const char *line, size_t len)
{
	pthread_mutex_lock(&lock);
	if (g.sink) {
		g.sink(level, line, len, g.sink_arg);
		len = 0;
	}
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, line, len);
		if (n <= 0)
			break;
		line += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&lock);
}

static void timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000));
}

/* Appends to a fixed buffer; output past the end is cut and the line keeps its newline. */
struct line {
	char buf[LINE_MAX_LEN];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - 1 - l->len; /* keep one byte for '\n' */

	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
	size_t room = sizeof(l->buf) - 1 - l->len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len += (size_t)n > room ? room : (size_t)n;
}

static bool needs_quotes(const char *s)
{
	if (*s == '\0')
		return true;
	for (; *s; s++)
		if (*s == ' ' || *s == '"' || *s == '=' || *s == '\\' || (unsigned char)*s < 0x20)
			return true;
	return false;
}

static void put_quoted(struct line *l, const char *s)
{
	put(l, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			put(l, esc, 2);
		} else if (c < 0x20) {
			putf(l, "\\x%02x", c);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
	put(l, "\"", 1);
}

static void emit_text(struct zt_log_mod *mod, enum zt_log_level level,
		      const struct zt_log_field *f, size_t nf, const char *msg)
{
	struct line l;
	char ts[64];

	l.len = 0;
	timestamp(ts, sizeof(ts));
	putf(&l, "%s\t%s\t%s\t%s", ts, zt_log_level_name(level), mod->name, msg);
	for (size_t i = 0; i < nf; i++) {
		if (f[i].type == ZT_LF_STR && !f[i].v.s)
			continue;
		putf(&l, " %s=", f[i].key);
		switch (f[i].type) {
		case ZT_LF_STR:
			if (needs_quotes(f[i].v.s))
				put_quoted(&l, f[i].v.s);
			else
				put(&l, f[i].v.s, strlen(f[i].v.s));
			break;
		case ZT_LF_INT:
			putf(&l, "%lld", (long long)f[i].v.i);
			break;
		case ZT_LF_UINT:
			putf(&l, "%llu", (unsigned long long)f[i].v.u);
			break;
		}
	}
	l.buf[l.len++] = '\n';
	write_line(level, l.buf, l.len);
}

/* Invalid UTF-8 (a peer's bytes) must not drop the line: non-ASCII becomes '?'. */
static json_t *ascii_string(const char *s)
{
	char *copy = xstrdup(s);
	json_t *v;

	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

static void emit_json(struct zt_log_mod *mod, enum zt_log_level level,
		      const struct zt_log_field *f, size_t nf, const char *msg)
{
	json_t *o = json_object();
	char ts[64], *s;

	timestamp(ts, sizeof(ts));
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "level", json_string(zt_log_level_name(level)));
	json_object_set_new(o, "scope", json_string(mod->name));
	json_object_set_new(o, "message", json_string(msg));
	for (size_t i = 0; i < nf; i++) {
		json_t *v = NULL;
		switch (f[i].type) {
		case ZT_LF_STR:
			if (f[i].v.s)
				v = json_string(f[i].v.s);
			if (f[i].v.s && !v)
				v = ascii_string(f[i].v.s);
			break;
		case ZT_LF_INT:
			v = json_integer((json_int_t)f[i].v.i);
			break;
		case ZT_LF_UINT:
			v = json_integer(f[i].v.u > INT64_MAX ? INT64_MAX : (json_int_t)f[i].v.u);
			break;
		}
		if (v)
			json_object_set_new(o, f[i].key, v);
	}
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!s)
		return;
	size_t n = strlen(s);
	s = xrealloc(s, n + 2);
	s[n] = '\n';
	s[n + 1] = '\0';
	write_line(level, s, n + 1);
	free(s);
}

void zt_log_vemit(struct zt_log_mod *mod, enum zt_log_level level, const struct zt_log_field *f,
		  size_t nf, const char *fmt, va_list ap)
{
	char msg[4096];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (zt_log_get_format() == ZT_LOG_JSON)
		emit_json(mod, level, f, nf, msg);
	else
		emit_text(mod, level, f, nf, msg);
}

void zt_log_emit(struct zt_log_mod *mod, enum zt_log_level level, const struct zt_log_field *f,
		 size_t nf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	zt_log_vemit(mod, level, f, nf, fmt, ap);
	va_end(ap);
}
