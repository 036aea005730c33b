/* Environment-variable configuration: parses each table entry's text (from the environment or
 * its default) into the typed field at its offset. Every entry is processed even after an
 * error, so one run reports all bad values; a field whose text failed is left zero/NULL. */
#include "runtime/envcfg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/duration.h"
#include "runtime/err.h"
#include "runtime/mem.h"

/* How much of a bad value an error message quotes. */
#define QUOTE_MAX 64

union val {
	const char *s; /* borrowed until stored */
	bool b;
	int64_t i;
	uint64_t u;
	int e;
};

static const char *process_getenv(const char *name, void *arg)
{
	(void)arg;
	return getenv(name);
}

static void *field(void *cfg, const struct zt_envcfg_var *v)
{
	return (char *)cfg + v->offset;
}

static const void *cfield(const void *cfg, const struct zt_envcfg_var *v)
{
	return (const char *)cfg + v->offset;
}

static bool has_range(const struct zt_envcfg_var *v)
{
	return !(v->min == 0 && v->max == 0) && !(v->min == INT64_MIN && v->max == INT64_MAX);
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return ZT_E_PARSE;
}

static int parse_int(const struct zt_envcfg_var *v, const char *s, int64_t *out)
{
	const char *digits = s[0] == '-' ? s + 1 : s;
	char *end = NULL;
	long long x;

	if (*digits < '0' || *digits > '9')
		return ZT_E_PARSE; /* strtoll would take spaces and '+' */
	errno = 0;
	x = strtoll(s, &end, 10);
	if (*end != '\0')
		return ZT_E_PARSE;
	if (errno == ERANGE)
		return ZT_E_RANGE;
	if (has_range(v) && (x < v->min || x > v->max))
		return ZT_E_RANGE;
	*out = x;
	return 0;
}

static int parse_enum(const struct zt_envcfg_var *v, const char *s, int *out)
{
	int i;

	for (i = 0; v->choices && v->choices[i]; i++) {
		if (strcmp(s, v->choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return ZT_E_PARSE;
}

static int parse_value(const struct zt_envcfg_var *v, const char *s, union val *out)
{
	switch (v->type) {
	case ZT_ENVCFG_STRING:
		out->s = s;
		return 0;
	case ZT_ENVCFG_BOOL:
		return parse_bool(s, &out->b);
	case ZT_ENVCFG_INT:
		return parse_int(v, s, &out->i);
	case ZT_ENVCFG_DURATION:
		return zt_duration_parse(s, &out->u);
	case ZT_ENVCFG_SIZE:
		return zt_size_parse(s, &out->u);
	case ZT_ENVCFG_ENUM:
		return parse_enum(v, s, &out->e);
	}
	return ZT_E_PARSE;
}

/* Stores val (NULL: the zero value) into v's field, replacing and freeing an old string. */
static void store(const struct zt_envcfg_var *v, void *cfg, const union val *val)
{
	void *f = field(cfg, v);

	switch (v->type) {
	case ZT_ENVCFG_STRING:
		free(*(char **)f);
		*(char **)f = val ? xstrdup(val->s) : NULL;
		break;
	case ZT_ENVCFG_BOOL:
		*(bool *)f = val ? val->b : false;
		break;
	case ZT_ENVCFG_INT:
		*(int64_t *)f = val ? val->i : 0;
		break;
	case ZT_ENVCFG_DURATION:
	case ZT_ENVCFG_SIZE:
		*(uint64_t *)f = val ? val->u : 0;
		break;
	case ZT_ENVCFG_ENUM:
		*(int *)f = val ? val->e : 0;
		break;
	}
}

/* What a valid value looks like, for error messages. */
static void expectation(const struct zt_envcfg_var *v, int err, char *buf, size_t len)
{
	size_t off;
	int i;

	switch (v->type) {
	case ZT_ENVCFG_STRING:
		snprintf(buf, len, "expected a string");
		return;
	case ZT_ENVCFG_BOOL:
		snprintf(buf, len, "expected a boolean (true/false, yes/no, on/off, 1/0)");
		return;
	case ZT_ENVCFG_INT:
		if (!has_range(v))
			snprintf(buf, len, "expected an integer");
		else if (v->max == INT64_MAX)
			snprintf(buf, len, "expected an integer of at least %" PRId64, v->min);
		else if (v->min == INT64_MIN)
			snprintf(buf, len, "expected an integer of at most %" PRId64, v->max);
		else
			snprintf(buf, len, "expected an integer between %" PRId64 " and %" PRId64,
			         v->min, v->max);
		return;
	case ZT_ENVCFG_DURATION:
		snprintf(buf, len, "%s",
		         err == ZT_E_RANGE ? "duration out of range"
		                           : "expected a duration like 500ms, 10s, 5m or 1h30m "
		                             "(units ms, s, m, h, d)");
		return;
	case ZT_ENVCFG_SIZE:
		snprintf(buf, len, "%s",
		         err == ZT_E_RANGE ? "size out of range"
		                           : "expected a size in bytes like 1048576, 64KiB or 4MiB "
		                             "(units B, KiB, MiB, GiB)");
		return;
	case ZT_ENVCFG_ENUM:
		snprintf(buf, len, "expected one of:");
		for (i = 0; v->choices && v->choices[i]; i++) {
			off = strlen(buf);
			snprintf(buf + off, len - off, "%s %s", i ? "," : "", v->choices[i]);
		}
		return;
	}
	snprintf(buf, len, "unknown entry type");
}

/* Escapes s for display into buf: '"' and '\\' backslashed, bytes outside printable ASCII
 * as \n, \t or \xNN; when limit is non-zero, at most limit input bytes, then "...". Stops
 * early rather than overflow: 4 * strlen(s) + 5 bytes always suffice. */
static void escape(const char *s, size_t limit, char *buf, size_t len)
{
	size_t off = 0, i;

	buf[0] = '\0';
	for (i = 0; s[i] && len - off > 4; i++) {
		unsigned char c = (unsigned char)s[i];
		int w;

		if (limit && i == limit) {
			memcpy(buf + off, "...", 4);
			return;
		}
		if (c == '"' || c == '\\')
			w = snprintf(buf + off, len - off, "\\%c", c);
		else if (c == '\n')
			w = snprintf(buf + off, len - off, "\\n");
		else if (c == '\t')
			w = snprintf(buf + off, len - off, "\\t");
		else if (c < 0x20 || c >= 0x7f)
			w = snprintf(buf + off, len - off, "\\x%02x", c);
		else
			w = snprintf(buf + off, len - off, "%c", c);
		off += (size_t)w;
	}
}

static void report(zt_envcfg_error_cb on_error, void *arg, const struct zt_envcfg_var *v,
                   const char *name, const char *text, bool is_default, int err)
{
	char quoted[QUOTE_MAX * 4 + 8], esc[QUOTE_MAX * 4 + 5], expected[512], msg[1024];

	if (!on_error)
		return;
	expectation(v, err, expected, sizeof(expected));
	if (v->flags & ZT_ENVCFG_SECRET) {
		snprintf(quoted, sizeof(quoted), "<redacted>");
	} else {
		escape(text, QUOTE_MAX, esc, sizeof(esc));
		snprintf(quoted, sizeof(quoted), "\"%s\"", esc);
	}
	if (is_default)
		snprintf(msg, sizeof(msg), "%s: invalid default %s: %s", name, quoted, expected);
	else
		snprintf(msg, sizeof(msg), "%s=%s: %s", name, quoted, expected);
	on_error(msg, arg);
}

int zt_envcfg_load(const struct zt_envcfg_var *vars, size_t n, void *cfg, zt_envcfg_getenv_cb get,
                   void *get_arg, zt_envcfg_error_cb on_error, void *err_arg)
{
	size_t i, errors = 0;

	if (!get)
		get = process_getenv;
	for (i = 0; i < n; i++) {
		const struct zt_envcfg_var *v = &vars[i];
		const char *name = v->name, *text = get(v->name, get_arg);
		bool is_default = false;
		union val val;
		int rc;

		if (!text && v->alias) {
			name = v->alias;
			text = get(v->alias, get_arg);
		}
		if (!text && (v->flags & ZT_ENVCFG_REQUIRED)) {
			char msg[512];

			if (v->alias)
				snprintf(msg, sizeof(msg), "%s (or %s): required but not set",
				         v->name, v->alias);
			else
				snprintf(msg, sizeof(msg), "%s: required but not set", v->name);
			if (on_error)
				on_error(msg, err_arg);
			errors++;
			store(v, cfg, NULL);
			continue;
		}
		if (!text) {
			name = v->name;
			text = v->def;
			is_default = true;
		}
		if (!text) {
			store(v, cfg, NULL);
			continue;
		}
		rc = parse_value(v, text, &val);
		if (rc < 0) {
			report(on_error, err_arg, v, name, text, is_default, rc);
			errors++;
			store(v, cfg, NULL);
			continue;
		}
		store(v, cfg, &val);
	}
	return errors ? ZT_E_PARSE : 0;
}

void zt_envcfg_clear(const struct zt_envcfg_var *vars, size_t n, void *cfg)
{
	size_t i;

	for (i = 0; i < n; i++)
		store(&vars[i], cfg, NULL);
}

static int put(char *buf, size_t len, const char *s)
{
	size_t l = strlen(s);

	if (len == 0)
		return -ENOSPC;
	if (l >= len) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	memcpy(buf, s, l + 1);
	return 0;
}

int zt_envcfg_format(const struct zt_envcfg_var *v, const void *cfg, char *buf, size_t len)
{
	const void *f = cfield(cfg, v);
	char num[32];
	int i;

	switch (v->type) {
	case ZT_ENVCFG_STRING: {
		const char *s = *(char *const *)f;

		if (s && (v->flags & ZT_ENVCFG_SECRET))
			return put(buf, len, "<redacted>");
		return put(buf, len, s ? s : "");
	}
	case ZT_ENVCFG_BOOL:
		return put(buf, len, *(const bool *)f ? "true" : "false");
	case ZT_ENVCFG_INT:
		snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)f);
		return put(buf, len, num);
	case ZT_ENVCFG_DURATION:
		return zt_duration_format(*(const uint64_t *)f, buf, len);
	case ZT_ENVCFG_SIZE:
		return zt_size_format(*(const uint64_t *)f, buf, len);
	case ZT_ENVCFG_ENUM:
		for (i = 0; v->choices && v->choices[i]; i++)
			if (i == *(const int *)f)
				return put(buf, len, v->choices[i]);
		return put(buf, len, "");
	}
	return put(buf, len, "");
}

void zt_envcfg_dump(const struct zt_envcfg_var *vars, size_t n, const void *cfg, FILE *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct zt_envcfg_var *v = &vars[i];
		char val[256], *esc;
		const char *s = val;
		size_t esc_len;

		if (v->type == ZT_ENVCFG_STRING && !(v->flags & ZT_ENVCFG_SECRET) &&
		    *(char *const *)cfield(cfg, v))
			s = *(char *const *)cfield(cfg, v);
		else
			zt_envcfg_format(v, cfg, val, sizeof(val));
		esc_len = strlen(s) * 4 + 5;
		esc = xmalloc(esc_len);
		escape(s, 0, esc, esc_len);
		fprintf(out, "%s=%s\n", v->name, esc);
		free(esc);
	}
}

/* The "(integer 1..65535; alias X)" part of a help line, "" when there is nothing to say. */
static void help_details(const struct zt_envcfg_var *v, char *buf, size_t len)
{
	char kind[256] = "";
	size_t off;
	int i;

	switch (v->type) {
	case ZT_ENVCFG_STRING:
		break;
	case ZT_ENVCFG_BOOL:
		snprintf(kind, sizeof(kind), "boolean");
		break;
	case ZT_ENVCFG_INT:
		if (!has_range(v))
			snprintf(kind, sizeof(kind), "integer");
		else if (v->max == INT64_MAX)
			snprintf(kind, sizeof(kind), "integer >= %" PRId64, v->min);
		else if (v->min == INT64_MIN)
			snprintf(kind, sizeof(kind), "integer <= %" PRId64, v->max);
		else
			snprintf(kind, sizeof(kind), "integer %" PRId64 "..%" PRId64, v->min,
			         v->max);
		break;
	case ZT_ENVCFG_DURATION:
		snprintf(kind, sizeof(kind), "duration");
		break;
	case ZT_ENVCFG_SIZE:
		snprintf(kind, sizeof(kind), "size");
		break;
	case ZT_ENVCFG_ENUM:
		snprintf(kind, sizeof(kind), "one of:");
		for (i = 0; v->choices && v->choices[i]; i++) {
			off = strlen(kind);
			snprintf(kind + off, sizeof(kind) - off, "%s %s", i ? "," : "",
			         v->choices[i]);
		}
		break;
	}
	if (kind[0] && v->alias)
		snprintf(buf, len, " (%s; alias %s)", kind, v->alias);
	else if (kind[0])
		snprintf(buf, len, " (%s)", kind);
	else if (v->alias)
		snprintf(buf, len, " (alias %s)", v->alias);
	else
		buf[0] = '\0';
}

static const char *help_default(const struct zt_envcfg_var *v)
{
	if (v->flags & ZT_ENVCFG_REQUIRED)
		return "(required)";
	if (!v->def)
		return "-";
	if (!v->def[0])
		return "\"\"";
	return v->def;
}

void zt_envcfg_help(const struct zt_envcfg_var *vars, size_t n, FILE *out)
{
	size_t i, name_w = strlen("NAME"), def_w = strlen("DEFAULT");

	for (i = 0; i < n; i++) {
		size_t l = strlen(vars[i].name), d = strlen(help_default(&vars[i]));

		name_w = l > name_w ? l : name_w;
		def_w = d > def_w ? d : def_w;
	}
	fprintf(out, "%-*s  %-*s  DESCRIPTION\n", (int)name_w, "NAME", (int)def_w, "DEFAULT");
	for (i = 0; i < n; i++) {
		const char *help = vars[i].help ? vars[i].help : "";
		char details[512];

		help_details(&vars[i], details, sizeof(details));
		fprintf(out, "%-*s  %-*s  %s%s\n", (int)name_w, vars[i].name, (int)def_w,
		        help_default(&vars[i]), help, help[0] ? details : details + !!details[0]);
	}
}
