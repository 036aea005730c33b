/* HTTP/1.1 request heads of a waypoint session (see h1head.h). */
#include "sim/sim-waypoint/h1head.h"

#include <stdint.h>
#include <string.h>

void wp_h1_head_init(struct wp_h1_head *h)
{
	zt_buf_init(&h->buf, 0);
	h->url_off = h->url_len = h->nh = 0;
	h->last_value = h->too_big = false;
}

void wp_h1_head_clear(struct wp_h1_head *h)
{
	zt_buf_clear(&h->buf);
}

void wp_h1_head_reset(struct wp_h1_head *h)
{
	zt_buf_consume(&h->buf, zt_buf_len(&h->buf));
	h->url_off = h->url_len = 0;
	h->nh = 0;
	h->last_value = false;
}

static int add(struct wp_h1_head *h, const char *at, size_t len)
{
	if (zt_buf_len(&h->buf) + len + 1 > WP_MAX_HEADERS) {
		h->too_big = true;
		return -1;
	}
	return zt_buf_append(&h->buf, at, len);
}

int wp_h1_head_url(struct wp_h1_head *h, const char *at, size_t len)
{
	if (h->url_len == 0)
		h->url_off = zt_buf_len(&h->buf);
	h->url_len += len;
	return add(h, at, len) < 0 ? -1 : 0;
}

int wp_h1_head_field(struct wp_h1_head *h, const char *at, size_t len)
{
	if (h->nh == 0 || h->last_value) {
		if (h->nh == WP_MAX_HEADER_COUNT) {
			h->too_big = true;
			return -1;
		}
		if (add(h, "", 1) < 0)
			return -1;
		h->hdrs[h->nh].name = zt_buf_len(&h->buf);
		h->hdrs[h->nh].value = SIZE_MAX;
		h->nh++;
		h->last_value = false;
	}
	return add(h, at, len) < 0 ? -1 : 0;
}

int wp_h1_head_value(struct wp_h1_head *h, const char *at, size_t len)
{
	if (!h->last_value) {
		if (add(h, "", 1) < 0)
			return -1;
		h->hdrs[h->nh - 1].value = zt_buf_len(&h->buf);
		h->last_value = true;
	}
	return add(h, at, len) < 0 ? -1 : 0;
}

int wp_h1_head_finish(struct wp_h1_head *h, struct wp_header *hs, const char **url,
                      const char **host)
{
	if (add(h, "", 1) < 0)
		return -1;
	/* Everything is NUL-separated in buf now; it does not move until the next reset. */
	const char *base = (const char *)zt_buf_data(&h->buf);
	/* The URL is followed by the NUL add() put before the first header (or just now). */
	*url = h->url_len ? base + h->url_off : "/";
	*host = NULL;
	for (size_t i = 0; i < h->nh; i++) {
		char *name = (char *)base + h->hdrs[i].name;
		for (char *c = name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		hs[i].name = name;
		hs[i].value = h->hdrs[i].value == SIZE_MAX ? "" : base + h->hdrs[i].value;
		if (!strcmp(name, "host"))
			*host = hs[i].value;
	}
	return 0;
}

void wp_h1_head_format(struct zt_buf *out, const char *method, const char *url,
                       const struct wp_header *hs, size_t n)
{
	zt_buf_appendf(out, "%s %s HTTP/1.1\r\n", method, url);
	for (size_t i = 0; i < n; i++)
		zt_buf_appendf(out, "%s: %s\r\n", hs[i].name, hs[i].value);
	zt_buf_appendf(out, "\r\n");
}
