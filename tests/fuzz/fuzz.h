/* What every fuzz target defines (libFuzzer's entry points), and small helpers to cut one
 * input into pieces. A target is tests/fuzz/fuzz_NAME.c with its seeds in
 * tests/fuzz/corpus/NAME/; the Makefile finds both by name (see tests/fuzz/README.md). */
#ifndef ZT_TESTS_FUZZ_H
#define ZT_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Cuts the next piece off *p (up to the byte sep, which is dropped) and returns its length;
 * *piece points at it. Returns (size_t)-1 when nothing is left. */
static inline size_t fuzz_next(const uint8_t **p, size_t *n, uint8_t sep, const uint8_t **piece)
{
	const uint8_t *end;
	size_t len;

	if (!*p || !*n) {
		*p = NULL;
		return (size_t)-1;
	}
	*piece = *p;
	end = memchr(*p, sep, *n);
	len = end ? (size_t)(end - *p) : *n;
	*p = end ? end + 1 : NULL;
	*n = end ? *n - len - 1 : 0;
	return len;
}

/* A NUL-terminated copy of data[0..n) into buf (size > 0), truncated to fit. */
static inline char *fuzz_cstr(char *buf, size_t size, const uint8_t *data, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(buf, data, n);
	buf[n] = '\0';
	return buf;
}

#endif
