/* Duration and byte-size text <-> integer conversion. Everything is computed in exact
 * unsigned integer arithmetic with an overflow check on every multiply and add; a syntax error
 * anywhere in the text wins over an overflow found earlier in it. */
#include "runtime/duration.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime/err.h"

struct unit {
	const char *name;
	uint64_t mult;
};

/* Largest first: zt_duration_format() walks it in this order. */
static const struct unit duration_units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

static const struct unit size_units[] = {
        {"GiB", 1u << 30}, {"G", 1u << 30}, {"MiB", 1u << 20}, {"M", 1u << 20},
        {"KiB", 1u << 10}, {"K", 1u << 10}, {"B", 1},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A fraction is kept to this many digits: 10^11 * max unit (8.64e7) still fits in 64 bits, and
 * a non-zero digit further right can never give whole milliseconds (86400000 = 2^10 3^3 5^5). */
#define FRAC_MAX_SCALE 100000000000ULL

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool add_ok(uint64_t *acc, uint64_t v)
{
	if (*acc > UINT64_MAX - v)
		return false;
	*acc += v;
	return true;
}

static bool mul_ok(uint64_t *acc, uint64_t v)
{
	if (v != 0 && *acc > UINT64_MAX / v)
		return false;
	*acc *= v;
	return true;
}

/* Reads decimal digits at *p into *v; *overflow is set (and digits still consumed) when the
 * number does not fit. */
static void read_digits(const char **p, uint64_t *v, bool *overflow)
{
	const char *s = *p;

	*v = 0;
	while (is_digit(*s)) {
		if (!mul_ok(v, 10) || !add_ok(v, (uint64_t)(*s - '0')))
			*overflow = true;
		s++;
	}
	*p = s;
}

static const struct unit *find_unit(const struct unit *tab, size_t n, const char *u, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(tab[i].name) == len && memcmp(tab[i].name, u, len) == 0)
			return &tab[i];
	return NULL;
}

int zt_duration_parse(const char *s, uint64_t *out_ms)
{
	const char *p = s;
	uint64_t total = 0;
	bool overflow = false;

	if (!s || !*s)
		return ZT_E_PARSE;
	if (strcmp(s, "0") == 0) {
		*out_ms = 0;
		return 0;
	}
	while (*p) {
		const struct unit *u;
		const char *start = p, *name;
		uint64_t whole, frac = 0, scale = 1, v;
		bool inexact = false;

		read_digits(&p, &whole, &overflow);
		if (p == start)
			return ZT_E_PARSE;
		if (*p == '.') {
			start = ++p;
			for (; is_digit(*p); p++) {
				if (scale < FRAC_MAX_SCALE) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				} else if (*p != '0') {
					inexact = true;
				}
			}
			if (p == start)
				return ZT_E_PARSE;
		}
		for (name = p; is_alpha(*p); p++)
			;
		u = find_unit(duration_units, NELEM(duration_units), name, (size_t)(p - name));
		if (!u || inexact || (frac * u->mult) % scale != 0)
			return ZT_E_PARSE;
		v = whole;
		if (!mul_ok(&v, u->mult) || !add_ok(&v, frac * u->mult / scale) ||
		    !add_ok(&total, v))
			overflow = true;
	}
	if (overflow)
		return ZT_E_RANGE;
	*out_ms = total;
	return 0;
}

/* Appends "<n><unit>" at *off; false when it does not fit. */
static bool append(char *buf, size_t len, size_t *off, uint64_t n, const char *unit)
{
	int w = snprintf(buf + *off, len - *off, "%" PRIu64 "%s", n, unit);

	if (w < 0 || (size_t)w >= len - *off)
		return false;
	*off += (size_t)w;
	return true;
}

int zt_duration_format(uint64_t ms, char *buf, size_t len)
{
	size_t i, off = 0;
	bool ok = true;

	if (len == 0)
		return -ENOSPC;
	if (ms == 0)
		ok = append(buf, len, &off, 0, "s");
	for (i = 0; ok && i < NELEM(duration_units); i++) {
		uint64_t q = ms / duration_units[i].mult;

		if (q == 0)
			continue;
		ms -= q * duration_units[i].mult;
		ok = append(buf, len, &off, q, duration_units[i].name);
	}
	if (!ok) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}

int zt_size_parse(const char *s, uint64_t *out)
{
	const struct unit *u = NULL;
	const char *p = s;
	bool overflow = false;
	uint64_t v;

	if (!s)
		return ZT_E_PARSE;
	read_digits(&p, &v, &overflow);
	if (p == s)
		return ZT_E_PARSE;
	if (*p) {
		u = find_unit(size_units, NELEM(size_units), p, strlen(p));
		if (!u)
			return ZT_E_PARSE;
		if (!mul_ok(&v, u->mult))
			overflow = true;
	}
	if (overflow)
		return ZT_E_RANGE;
	*out = v;
	return 0;
}

int zt_size_format(uint64_t bytes, char *buf, size_t len)
{
	static const struct unit fmt_units[] = {
	        {"GiB", 1u << 30}, {"MiB", 1u << 20}, {"KiB", 1u << 10}, {"B", 1}};
	size_t i, off = 0;

	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (i = 0; i < NELEM(fmt_units); i++) {
		if (bytes % fmt_units[i].mult == 0 && (bytes != 0 || fmt_units[i].mult == 1))
			break;
	}
	if (!append(buf, len, &off, bytes / fmt_units[i].mult, fmt_units[i].name)) {
		buf[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}
