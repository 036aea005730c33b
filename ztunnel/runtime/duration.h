/* Parsing and formatting of the duration and byte-size texts used by configuration
 * (Istio-style env values such as "1h30m" or "4MiB"). Pure functions: text in, integer out.
 * Parsing is strict and exact: a value either converts without loss or is rejected. */
#ifndef ZT_DURATION_H
#define ZT_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Room for any zt_duration_format() or zt_size_format() output, NUL included. */
#define ZT_DURATION_STRLEN 32

/* Parses a Go-style duration into milliseconds: one or more <number><unit> components, summed
 * ("1h30m", "1m30s", "1.5s", "500ms"). A number is decimal digits with an optional fraction
 * (".5s" and "1.s" are rejected: digits on both sides of the dot). Units, case-sensitive:
 * ms, s, m, h, d (= 24h). A bare "0" is accepted; any other number needs a unit.
 * Not accepted: ns/us units, signs, spaces, empty text, trailing junk, and values that do not
 * come to a whole number of milliseconds ("1.0005s"), all ZT_E_PARSE; a total above
 * UINT64_MAX ms gives ZT_E_RANGE. *out_ms is written only on success. */
int zt_duration_parse(const char *s, uint64_t *out_ms);

/* Writes the shortest component form of ms into buf: "1h30m", "500ms", "1d2h", "1s500ms";
 * zero is "0s". The output parses back to ms. Returns 0, or -ENOSPC when buf (len bytes) is
 * too small, buf then holding "" when len > 0. */
int zt_duration_format(uint64_t ms, char *buf, size_t len);

/* Parses a byte size: decimal digits, optionally followed by one unit (no space). Units,
 * case-sensitive and all binary: B (1), KiB or K (1024), MiB or M (1024^2), GiB or G (1024^3).
 * Decimal units (KB, MB), fractions, signs and spaces are rejected with ZT_E_PARSE; a value
 * above UINT64_MAX bytes gives ZT_E_RANGE. *out is written only on success. */
int zt_size_parse(const char *s, uint64_t *out);

/* Writes bytes with the largest binary unit that divides it exactly ("4MiB", "64KiB"), or as
 * "<n>B" otherwise ("0B", "1000B"). The output parses back. Returns 0 or -ENOSPC as
 * zt_duration_format(). */
int zt_size_format(uint64_t bytes, char *buf, size_t len);

#endif
