/* Byte slices (borrowed views) and growable byte buffers used as I/O queues.
 * A zt_buf holds unread bytes data[rd..wr) with rd <= wr <= cap; writes go at wr, reads
 * consume from rd. With a limit set, neither the unread length nor the allocation ever
 * exceeds it, so a peer filling the buffer cannot make it grow without bound. */
#ifndef ZT_BUF_H
#define ZT_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A borrowed view of bytes; the owner of p keeps it alive. p may be NULL when len is 0. */
struct zt_slice {
	const uint8_t *p;
	size_t len;
};

static inline struct zt_slice zt_slice_make(const void *p, size_t len)
{
	return (struct zt_slice){.p = p, .len = len};
}

/* A view of a NUL-terminated string, without the NUL. */
static inline struct zt_slice zt_slice_from_str(const char *s)
{
	return zt_slice_make(s, strlen(s));
}

static inline bool zt_slice_equal(struct zt_slice a, struct zt_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool zt_slice_has_prefix(struct zt_slice s, struct zt_slice prefix)
{
	return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.p, prefix.p, prefix.len) == 0);
}

/* Drops the first n bytes; n <= s->len is a precondition (checked, aborts). */
void zt_slice_advance(struct zt_slice *s, size_t n);

struct zt_buf {
	uint8_t *data; /* owned; NULL until the first write */
	size_t cap;    /* bytes allocated at data */
	size_t rd;     /* first unread byte */
	size_t wr;     /* one past the last unread byte */
	size_t limit;  /* most bytes ever held or allocated; 0 = no limit */
};

/* Prepares an empty buffer that allocates nothing until written to. A zero-filled struct is
 * an empty buffer without a limit, as if zt_buf_init(b, 0) had run. */
void zt_buf_init(struct zt_buf *b, size_t limit);
/* Frees the storage; b is then empty, keeps its limit and may be used again. */
void zt_buf_clear(struct zt_buf *b);

/* Unread bytes: zt_buf_len(b) of them at zt_buf_data(b), valid until the next write, reserve
 * or compact (any of which may move them). */
static inline size_t zt_buf_len(const struct zt_buf *b)
{
	return b->wr - b->rd;
}

static inline const uint8_t *zt_buf_data(const struct zt_buf *b)
{
	return b->data ? b->data + b->rd : NULL;
}

static inline struct zt_slice zt_buf_slice(const struct zt_buf *b)
{
	return zt_slice_make(zt_buf_data(b), zt_buf_len(b));
}

/* How many more bytes the limit lets the buffer take (SIZE_MAX - len when unlimited). A
 * reader uses it to size its next recv() and to stop reading (backpressure) at zero. */
size_t zt_buf_room(const struct zt_buf *b);

/* Makes at least n contiguous writable bytes available at *out, after the unread bytes, for
 * recv() or similar to fill; then zt_buf_commit() says how many were written. May move the
 * unread bytes (compacting or growing). Growth at least doubles the allocation, so appending
 * N bytes costs O(N) amortised; compaction happens only when it frees at least half the
 * allocation (or when at the limit), so its copies are amortised the same way.
 * Returns 0, or ZT_E_TOOBIG (buffer and *out unchanged) if len + n would exceed the limit. */
int zt_buf_reserve(struct zt_buf *b, size_t n, uint8_t **out);
/* Adds n bytes written at the reserved space to the unread bytes; n must not exceed what the
 * last zt_buf_reserve() made available (checked, aborts). */
void zt_buf_commit(struct zt_buf *b, size_t n);

/* Copies n bytes to the end. p must not point into b. Returns 0 or ZT_E_TOOBIG (buffer
 * unchanged). */
int zt_buf_append(struct zt_buf *b, const void *p, size_t n);

/* Appends printf-formatted text, never truncated, followed by a NUL that is not counted in
 * the length (so the unread bytes read as a C string until the next write). No argument may
 * point into b. Returns 0, ZT_E_TOOBIG (buffer unchanged) if the text plus that NUL would
 * exceed the limit, or -EINVAL if the format cannot be rendered. */
int zt_buf_appendf(struct zt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int zt_buf_vappendf(struct zt_buf *b, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

/* Drops the first n unread bytes; n <= zt_buf_len(b) (checked, aborts). O(1): nothing moves.
 * Consuming everything rewinds to the start of the allocation. */
void zt_buf_consume(struct zt_buf *b, size_t n);

/* Moves the unread bytes to the start of the allocation, leaving all free space after them.
 * zt_buf_reserve() does this on its own when worthwhile; explicit calls are rarely needed. */
void zt_buf_compact(struct zt_buf *b);

#endif
