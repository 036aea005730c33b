/* An allocation group: many small blocks freed together. Used for immutable decoded objects
 * (workloads, services, policies) whose strings and arrays all live and die with the object,
 * so building one needs no per-field free code. Blocks are zero-filled; OOM aborts. */
#ifndef ZT_ARENA_H
#define ZT_ARENA_H

#include <stddef.h>

struct zt_arena {
	void **blocks;
	size_t n, cap;
};

/* A zeroed struct zt_arena is empty and ready. */
void zt_arena_init(struct zt_arena *a);
/* Frees every block and leaves the arena empty. */
void zt_arena_clear(struct zt_arena *a);

/* n * size zeroed bytes owned by a (overflow aborts). Returns NULL when n * size is 0. */
void *zt_arena_calloc(struct zt_arena *a, size_t n, size_t size);
/* A copy of s owned by a; NULL copies as "". */
char *zt_arena_strdup(struct zt_arena *a, const char *s);
/* A copy of s[0..len) plus a NUL. */
char *zt_arena_strndup(struct zt_arena *a, const char *s, size_t len);
/* printf into a new block. */
char *zt_arena_printf(struct zt_arena *a, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#endif
