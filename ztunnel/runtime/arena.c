/* Allocation group: a growing array of malloc'd blocks, each released by zt_arena_clear.
 * Every block is a separate allocation so the sanitizers still see per-block bounds. */
#include "runtime/arena.h"
#include "runtime/mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void zt_arena_init(struct zt_arena *a)
{
	memset(a, 0, sizeof(*a));
}

void zt_arena_clear(struct zt_arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
	zt_arena_init(a);
}

static void *keep(struct zt_arena *a, void *p)
{
	if (!p)
		abort();
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		void **v = xrealloc(a->blocks, cap * sizeof(*v));
		a->blocks = v;
		a->cap = cap;
	}
	a->blocks[a->n++] = p;
	return p;
}

void *zt_arena_calloc(struct zt_arena *a, size_t n, size_t size)
{
	if (n == 0 || size == 0)
		return NULL;
	if (n > SIZE_MAX / size)
		abort();
	return keep(a, calloc(n, size));
}

char *zt_arena_strndup(struct zt_arena *a, const char *s, size_t len)
{
	char *p = keep(a, malloc(len + 1));

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *zt_arena_strdup(struct zt_arena *a, const char *s)
{
	if (!s)
		s = "";
	return zt_arena_strndup(a, s, strlen(s));
}

char *zt_arena_printf(struct zt_arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p = NULL;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		p = NULL;
	va_end(ap);
	return keep(a, p);
}
