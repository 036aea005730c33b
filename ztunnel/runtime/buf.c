/* Slices and growable I/O buffers. The only places that move bytes are make_room() (compact
 * or grow, on demand) and zt_buf_compact(); consume is O(1). Precondition violations abort:
 * they are bugs in the caller, and continuing would read or write out of bounds. */
#include "runtime/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/err.h"

#define MIN_CAP 256

static void check(bool ok)
{
	if (!ok)
		abort();
}

void zt_slice_advance(struct zt_slice *s, size_t n)
{
	check(n <= s->len);
	if (n > 0)
		s->p += n;
	s->len -= n;
}

static size_t limit_of(const struct zt_buf *b)
{
	return b->limit ? b->limit : SIZE_MAX;
}

void zt_buf_init(struct zt_buf *b, size_t limit)
{
	*b = (struct zt_buf){.limit = limit};
}

void zt_buf_clear(struct zt_buf *b)
{
	free(b->data);
	zt_buf_init(b, b->limit);
}

size_t zt_buf_room(const struct zt_buf *b)
{
	return limit_of(b) - zt_buf_len(b);
}

void zt_buf_compact(struct zt_buf *b)
{
	size_t len = zt_buf_len(b);

	if (b->rd == 0)
		return;
	if (len > 0)
		memmove(b->data, b->data + b->rd, len);
	b->rd = 0;
	b->wr = len;
}

static size_t dbl(size_t n)
{
	return n <= SIZE_MAX / 2 ? n * 2 : SIZE_MAX;
}

/* Ensures cap - wr >= n, given len + n <= limit. */
static void make_room(struct zt_buf *b, size_t n)
{
	size_t len = zt_buf_len(b), limit = limit_of(b), cap;
	uint8_t *p;

	if (b->cap - b->wr >= n)
		return;
	/* Compacting moves len bytes; worth it once that frees half the allocation. At the
	 * limit there is no other way, and len + n <= limit = cap guarantees it suffices. */
	if (b->cap - len >= n && (len <= b->cap / 2 || b->cap >= limit)) {
		zt_buf_compact(b);
		return;
	}
	/* At least double, so growth copies are amortised O(1) per byte. */
	cap = b->cap < MIN_CAP / 2 ? MIN_CAP : dbl(b->cap);
	while (cap < len + n)
		cap = dbl(cap);
	if (cap > limit)
		cap = limit;
	if (b->rd == 0) {
		p = realloc(b->data, cap);
		check(p != NULL);
	} else {
		/* Copy only the unread bytes, not the consumed ones before them. */
		p = malloc(cap);
		check(p != NULL);
		memcpy(p, b->data + b->rd, len);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	b->rd = 0;
	b->wr = len;
}

int zt_buf_reserve(struct zt_buf *b, size_t n, uint8_t **out)
{
	if (n > zt_buf_room(b))
		return ZT_E_TOOBIG;
	make_room(b, n);
	*out = b->data ? b->data + b->wr : NULL; /* NULL only for n == 0 before any write */
	return 0;
}

void zt_buf_commit(struct zt_buf *b, size_t n)
{
	check(n <= b->cap - b->wr && n <= zt_buf_room(b));
	b->wr += n;
}

int zt_buf_append(struct zt_buf *b, const void *p, size_t n)
{
	uint8_t *dst;
	int r;

	if (n == 0)
		return 0;
	r = zt_buf_reserve(b, n, &dst);
	if (r < 0)
		return r;
	memcpy(dst, p, n);
	b->wr += n;
	return 0;
}

int zt_buf_vappendf(struct zt_buf *b, const char *fmt, va_list ap)
{
	uint8_t *dst;
	va_list ap2;
	size_t avail = b->cap - b->wr;
	int n, r;

	/* First try the space already there; most text fits and is formatted only once. */
	va_copy(ap2, ap);
	n = vsnprintf(avail ? (char *)b->data + b->wr : NULL, avail, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= avail) {
		/* Did not fit, NUL included: make room (or fail unchanged) and format again. */
		r = zt_buf_reserve(b, (size_t)n + 1, &dst);
		if (r < 0)
			return r;
		va_copy(ap2, ap);
		vsnprintf((char *)dst, (size_t)n + 1, fmt, ap2);
		va_end(ap2);
	}
	b->wr += (size_t)n;
	return 0;
}

int zt_buf_appendf(struct zt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = zt_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return r;
}

void zt_buf_consume(struct zt_buf *b, size_t n)
{
	check(n <= zt_buf_len(b));
	b->rd += n;
	if (b->rd == b->wr)
		b->rd = b->wr = 0;
}
