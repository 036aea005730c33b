/* YAML trees from libyaml events. A stack of open collections receives each new node; a
 * mapping receives keys and values alternately and refuses a key it already holds (a hash
 * index of its keys once it has more than a few, so the check stays linear overall). Nodes
 * are counted against a bound (ZT_YAML_MAX_NODES per input, or the caller's per document
 * when streaming) and the stack against ZT_YAML_MAX_DEPTH. */
#include "runtime/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "runtime/err.h"
#include "runtime/file.h"
#include "runtime/mem.h"

static void node_free(struct zt_yaml *n)
{
	if (!n)
		return;
	size_t count = n->type == ZT_YAML_MAP ? 2 * n->n : n->n;
	for (size_t i = 0; i < count; i++)
		node_free(n->items[i]);
	free(n->items);
	free(n->s);
	free(n);
}

void zt_yaml_docs_clear(struct zt_yaml_docs *d)
{
	for (size_t i = 0; i < d->n; i++)
		node_free(d->docs[i]);
	free(d->docs);
	free(d->name);
	memset(d, 0, sizeof(*d));
}

/* Keys of one open mapping, by hash: slot holds a pair index + 1 (0 = empty). */
struct keyidx {
	uint32_t *slot;
	size_t cap; /* 0 or a power of two */
};

#define KEYIDX_FROM 8 /* pairs scanned linearly before an index is built */

struct builder {
	const char *name;
	char *err;
	size_t errlen;
	struct zt_yaml *stack[ZT_YAML_MAX_DEPTH];
	size_t depth;
	size_t nodes, max_nodes;
	const char *nodes_hint; /* appended to the node-count message, e.g. " (--max-nodes)" */
	size_t cap[ZT_YAML_MAX_DEPTH];      /* item capacity of each open collection */
	bool want_value[ZT_YAML_MAX_DEPTH]; /* an open mapping holds a key without value */
	struct keyidx idx[ZT_YAML_MAX_DEPTH];
	struct zt_yaml *root;
};

__attribute__((format(printf, 4, 5))) static int fail(struct builder *b, const yaml_mark_t *m,
                                                      int code, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(b->err, b->errlen, "%s:%zu:%zu: %s", b->name, m->line + 1, m->column + 1, what);
	return code;
}

static uint64_t key_hash(const char *s, size_t len)
{
	static uint64_t seed;
	uint64_t h;

	if (!seed && getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	h = 0xcbf29ce484222325ull ^ seed;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

static bool same_key(const struct zt_yaml *a, const struct zt_yaml *b)
{
	return a->type == ZT_YAML_SCALAR && a->len == b->len && !memcmp(a->s, b->s, a->len);
}

/* Puts pair p's key (a scalar) into x unless an equal key is there; returns whether it was. */
static bool idx_put(struct keyidx *x, struct zt_yaml *const *items, size_t p)
{
	const struct zt_yaml *key = items[2 * p];
	size_t mask = x->cap - 1, i = key_hash(key->s, key->len) & mask;

	for (; x->slot[i]; i = (i + 1) & mask)
		if (same_key(items[2 * (x->slot[i] - 1)], key))
			return true;
	x->slot[i] = (uint32_t)p + 1;
	return false;
}

/* Whether the key of pair p (already stored in map->items, not yet counted) repeats an
 * earlier key of map; records it otherwise. Non-scalar keys are never duplicates. */
static bool key_repeats(struct keyidx *x, const struct zt_yaml *map, size_t p)
{
	const struct zt_yaml *key = map->items[2 * p];

	if (key->type != ZT_YAML_SCALAR)
		return false;
	if (p < KEYIDX_FROM) {
		for (size_t i = 0; i < p; i++)
			if (same_key(map->items[2 * i], key))
				return true;
		return false;
	}
	if (2 * (p + 1) > x->cap) {
		/* (Re)build at twice the load: every earlier key was unique. */
		x->cap = x->cap ? 2 * x->cap : 4 * KEYIDX_FROM;
		free(x->slot);
		x->slot = calloc(x->cap, sizeof(*x->slot));
		if (!x->slot)
			abort();
		for (size_t i = 0; i < p; i++)
			if (map->items[2 * i]->type == ZT_YAML_SCALAR)
				idx_put(x, map->items, i);
	}
	return idx_put(x, map->items, p);
}

static void idx_clear(struct keyidx *x)
{
	free(x->slot);
	x->slot = NULL;
	x->cap = 0;
}

/* Attaches n to the innermost open collection (or makes it the root). Takes ownership. A
 * mapping takes a key, then its value; only complete pairs are counted in n. */
static int attach(struct builder *b, struct zt_yaml *n, const yaml_mark_t *m)
{
	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	size_t d = b->depth - 1;
	struct zt_yaml *top = b->stack[d];
	size_t used = top->n;
	if (top->type == ZT_YAML_MAP)
		used = 2 * top->n + b->want_value[d];
	if (used == b->cap[d]) {
		b->cap[d] = b->cap[d] ? 2 * b->cap[d] : 8;
		top->items = xrealloc(top->items, b->cap[d] * sizeof(*top->items));
	}
	top->items[used] = n;
	if (top->type == ZT_YAML_MAP && !b->want_value[d] && key_repeats(&b->idx[d], top, top->n)) {
		int rc = fail(b, m, ZT_E_PARSE, "duplicate key \"%s\"", n->s);
		node_free(n);
		return rc;
	}
	if (top->type == ZT_YAML_SEQ) {
		top->n++;
	} else {
		b->want_value[d] = !b->want_value[d];
		if (!b->want_value[d])
			top->n++;
	}
	return 0;
}

static struct zt_yaml *node_new(struct builder *b, enum zt_yaml_type t, const yaml_mark_t *m,
                                int *rc)
{
	if (++b->nodes > b->max_nodes) {
		*rc = fail(b, m, ZT_E_TOOBIG, "more than %zu nodes%s", b->max_nodes, b->nodes_hint);
		return NULL;
	}
	struct zt_yaml *n = xcalloc(1, sizeof(*n));
	n->type = t;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	return n;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	struct zt_yaml *n;
	int rc = 0;

	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return fail(b, m, ZT_E_PARSE, "aliases (*%s) are not supported",
		            (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		if (!(n = node_new(b, ZT_YAML_SCALAR, m, &rc)))
			return rc;
		n->len = ev->data.scalar.length;
		n->s = xrealloc(NULL, n->len + 1);
		memcpy(n->s, ev->data.scalar.value, n->len);
		n->s[n->len] = '\0';
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		return attach(b, n, m);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (b->depth == ZT_YAML_MAX_DEPTH)
			return fail(b, m, ZT_E_TOOBIG, "nested deeper than %d", ZT_YAML_MAX_DEPTH);
		n = node_new(b, ev->type == YAML_SEQUENCE_START_EVENT ? ZT_YAML_SEQ : ZT_YAML_MAP,
		             m, &rc);
		if (!n)
			return rc;
		if ((rc = attach(b, n, m)))
			return rc;
		b->cap[b->depth] = 0;
		b->want_value[b->depth] = false;
		idx_clear(&b->idx[b->depth]);
		b->stack[b->depth++] = n;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth)
			idx_clear(&b->idx[--b->depth]);
		return 0;
	default:
		return 0;
	}
}

/* Frees the key indexes and, after a failure, a partly built document, including keys still
 * waiting for a value. Deepest first: a pending key may itself be the next open collection
 * on the stack. */
static void builder_clear(struct builder *b, bool partial)
{
	for (size_t i = 0; i < ZT_YAML_MAX_DEPTH; i++)
		idx_clear(&b->idx[i]);
	if (!partial)
		return;
	for (size_t i = b->depth; i-- > 0;) {
		struct zt_yaml *c = b->stack[i];
		if (c->type == ZT_YAML_MAP && b->want_value[i])
			node_free(c->items[2 * c->n]);
	}
	node_free(b->root);
	b->root = NULL;
	b->depth = 0;
}

static const char *problem(const yaml_parser_t *p)
{
	return p->problem ? p->problem : "invalid YAML";
}

int zt_yaml_parse(const char *name, const char *text, size_t len, struct zt_yaml_docs *out,
                  char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	struct builder b = {.name = name ? name : "<input>",
	                    .err = err,
	                    .errlen = errlen,
	                    .max_nodes = ZT_YAML_MAX_NODES,
	                    .nodes_hint = ""};
	if (len > ZT_YAML_MAX_INPUT) {
		snprintf(err, errlen, "%s: larger than %u bytes", b.name, ZT_YAML_MAX_INPUT);
		return ZT_E_TOOBIG;
	}
	out->name = xstrdup(b.name);

	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	int rc = 0;
	size_t cap = 0;
	for (bool done = false; !done && !rc;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			rc = fail(&b, &p.problem_mark, ZT_E_PARSE, "%s", problem(&p));
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			b.root = NULL;
			b.depth = 0;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (!b.root) {
				rc = 0;
				b.root = node_new(&b, ZT_YAML_SCALAR, &ev.start_mark, &rc);
				if (!b.root)
					break;
				b.root->plain = true;
				b.root->s = xstrdup("");
			}
			if (out->n == cap) {
				cap = cap ? 2 * cap : 4;
				out->docs = xrealloc(out->docs, cap * sizeof(*out->docs));
			}
			out->docs[out->n++] = b.root;
			b.root = NULL;
			break;
		default:
			rc = on_event(&b, &ev);
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	builder_clear(&b, rc != 0);
	if (rc) {
		zt_yaml_docs_clear(out);
		return rc;
	}
	return 0;
}

int zt_yaml_load_file(const char *path, struct zt_yaml_docs *out, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = zt_file_read(path, ZT_YAML_MAX_INPUT, &text, &len)) < 0) {
		if (rc == ZT_E_TOOBIG)
			snprintf(err, errlen, "%s: larger than %u bytes", path, ZT_YAML_MAX_INPUT);
		else if (rc == -EINVAL)
			snprintf(err, errlen, "%s: not a regular file", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc == -EINVAL ? ZT_E_PARSE : rc;
	}
	rc = zt_yaml_parse(path, text, len, out, err, errlen);
	free(text);
	return rc;
}

/* ---- streaming ---------------------------------------------------------------------------- */

struct src {
	int fd;
	uint64_t read, max;
	bool over; /* more than max bytes */
	int err;   /* errno of a failed read */
};

static int src_read(void *arg, unsigned char *buf, size_t size, size_t *got)
{
	struct src *s = arg;
	ssize_t n;

	do
		n = read(s->fd, buf, size);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		s->err = errno;
		return 0;
	}
	s->read += (uint64_t)n;
	if (s->read > s->max) {
		s->over = true;
		return 0;
	}
	*got = (size_t)n;
	return 1;
}

int zt_yaml_stream_file(const char *path, const struct zt_yaml_limits *lim, zt_yaml_doc_cb cb,
                        void *arg, char *err, size_t errlen)
{
	const char *bh = lim->bytes_hint ? lim->bytes_hint : "";
	struct builder b = {.name = path,
	                    .err = err,
	                    .errlen = errlen,
	                    .max_nodes = lim->max_nodes,
	                    .nodes_hint = lim->nodes_hint ? lim->nodes_hint : ""};
	struct src in = {.fd = open(path, O_RDONLY | O_CLOEXEC), .max = lim->max_bytes};
	struct stat st;
	yaml_parser_t p;
	size_t index = 0;
	int rc = 0;

	if (in.fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(in.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(in.fd);
		return ZT_E_PARSE;
	}
	if ((uint64_t)st.st_size > lim->max_bytes) {
		snprintf(err, errlen, "%s: larger than %" PRIu64 " bytes%s", path, lim->max_bytes, bh);
		close(in.fd);
		return ZT_E_TOOBIG;
	}
	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input(&p, src_read, &in);
	for (bool done = false; !done && !rc;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			if (in.over)
				rc = fail(&b, &p.problem_mark, ZT_E_TOOBIG,
				          "larger than %" PRIu64 " bytes%s", lim->max_bytes, bh);
			else if (in.err)
				rc = fail(&b, &p.problem_mark, -in.err, "%s", strerror(in.err));
			else
				rc = fail(&b, &p.problem_mark, ZT_E_PARSE, "%s", problem(&p));
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			b.root = NULL;
			b.depth = 0;
			b.nodes = 0;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (!b.root) {
				b.root = node_new(&b, ZT_YAML_SCALAR, &ev.start_mark, &rc);
				if (!b.root)
					break;
				b.root->plain = true;
				b.root->s = xstrdup("");
			}
			rc = cb(arg, b.root, index++);
			node_free(b.root);
			b.root = NULL;
			break;
		default:
			rc = on_event(&b, &ev);
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	builder_clear(&b, rc != 0);
	close(in.fd);
	return rc;
}

const struct zt_yaml *zt_yaml_get(const struct zt_yaml *map, const char *key)
{
	if (!map || map->type != ZT_YAML_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (size_t i = 0; i < map->n; i++) {
		const struct zt_yaml *k = map->items[2 * i];
		if (k->type == ZT_YAML_SCALAR && k->len == kl && !memcmp(k->s, key, kl))
			return map->items[2 * i + 1];
	}
	return NULL;
}

const struct zt_yaml *zt_yaml_at(const struct zt_yaml *seq, size_t i)
{
	return seq && seq->type == ZT_YAML_SEQ && i < seq->n ? seq->items[i] : NULL;
}

const struct zt_yaml *zt_yaml_key(const struct zt_yaml *map, size_t i)
{
	return map && map->type == ZT_YAML_MAP && i < map->n ? map->items[2 * i] : NULL;
}

const struct zt_yaml *zt_yaml_val(const struct zt_yaml *map, size_t i)
{
	return map && map->type == ZT_YAML_MAP && i < map->n ? map->items[2 * i + 1] : NULL;
}

bool zt_yaml_is_null(const struct zt_yaml *n)
{
	if (!n)
		return true;
	if (n->type != ZT_YAML_SCALAR || !n->plain)
		return false;
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(n->s, nulls[i]))
			return true;
	return false;
}

const char *zt_yaml_str(const struct zt_yaml *n)
{
	if (!n || n->type != ZT_YAML_SCALAR || zt_yaml_is_null(n))
		return NULL;
	return n->s;
}

int zt_yaml_int(const struct zt_yaml *n, int64_t min, int64_t max, int64_t *out)
{
	const char *s = zt_yaml_str(n);
	if (!s || !*s || strlen(s) != n->len)
		return ZT_E_PARSE;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (*end || end == s)
		return ZT_E_PARSE;
	if (errno == ERANGE || v < min || v > max)
		return ZT_E_RANGE;
	*out = v;
	return 0;
}

int zt_yaml_bool(const struct zt_yaml *n, bool *out)
{
	const char *s = zt_yaml_str(n);
	if (!s)
		return ZT_E_PARSE;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		*out = true;
	else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		*out = false;
	else
		return ZT_E_PARSE;
	return 0;
}

const char *zt_yaml_type_name(const struct zt_yaml *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case ZT_YAML_SEQ:
		return "sequence";
	case ZT_YAML_MAP:
		return "mapping";
	default:
		return zt_yaml_is_null(n) ? "null" : "scalar";
	}
}

const char *zt_yaml_describe(const struct zt_yaml *n, char *buf, size_t len)
{
	size_t o = 0;

	if (!n || n->type != ZT_YAML_SCALAR || zt_yaml_is_null(n)) {
		snprintf(buf, len, "%s", zt_yaml_type_name(n));
		return buf;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < n->len && o + 5 < len; i++) {
		unsigned char c = (unsigned char)n->s[i];

		buf[o++] = c < 0x20 || c == 0x7f || c == '"' ? '?' : (char)c;
		if (i == 40 && n->len > 44) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* ---- schema reader ------------------------------------------------------------------------ */

#define GOT(n) zt_yaml_describe((n), (char[64]){0}, 64)

void zt_yaml_rd_init(struct zt_yaml_rd *r, const char *file, char *err, size_t errlen,
                     bool columns)
{
	memset(r, 0, sizeof(*r));
	r->file = file;
	r->err = err;
	r->errlen = errlen;
	r->columns = columns;
}

size_t zt_yaml_rd_enter(struct zt_yaml_rd *r, const char *fmt, ...)
{
	size_t mark = r->plen;
	char part[128];
	va_list ap;
	int w;

	va_start(ap, fmt);
	vsnprintf(part, sizeof(part), fmt, ap);
	va_end(ap);
	w = snprintf(r->path + r->plen, sizeof(r->path) - r->plen, "%s%s", r->plen ? "." : "",
	             part);
	if (w > 0)
		r->plen = r->plen + (size_t)w < sizeof(r->path) ? r->plen + (size_t)w
		                                                : sizeof(r->path) - 1;
	return mark;
}

void zt_yaml_rd_leave(struct zt_yaml_rd *r, size_t mark)
{
	r->plen = mark;
	r->path[mark] = '\0';
}

static int rd_vfail(struct zt_yaml_rd *r, const struct zt_yaml *at, int code, const char *fmt,
                    va_list ap) __attribute__((format(printf, 4, 0)));
static int rd_vfail(struct zt_yaml_rd *r, const struct zt_yaml *at, int code, const char *fmt,
                    va_list ap)
{
	char what[384], where[48] = "";

	vsnprintf(what, sizeof(what), fmt, ap);
	if (at && r->columns)
		snprintf(where, sizeof(where), ":%u:%u", at->line, at->col);
	else if (at)
		snprintf(where, sizeof(where), ":%u", at->line);
	if (r->err && r->errlen)
		snprintf(r->err, r->errlen, "%s%s: %s%s%s%s%s", r->file, where, r->obj,
		         *r->obj ? ": " : "", r->path, r->plen ? ": " : "", what);
	return code;
}

int zt_yaml_rd_fail(struct zt_yaml_rd *r, const struct zt_yaml *at, int code, const char *fmt,
                    ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = rd_vfail(r, at, code, fmt, ap);
	va_end(ap);
	return rc;
}

int zt_yaml_rd_failf(struct zt_yaml_rd *r, const struct zt_yaml *at, const char *field, int code,
                     const char *fmt, ...)
{
	size_t mark = field ? zt_yaml_rd_enter(r, "%s", field) : r->plen;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = rd_vfail(r, at, code, fmt, ap);
	va_end(ap);
	zt_yaml_rd_leave(r, mark);
	return rc;
}

int zt_yaml_rd_want(struct zt_yaml_rd *r, const struct zt_yaml *n, enum zt_yaml_type t,
                    const char *field)
{
	static const char *const names[] = {"a scalar", "a sequence", "a mapping"};

	if (n && n->type == t)
		return 0;
	return zt_yaml_rd_failf(r, n, field, ZT_E_PARSE, "expected %s, got %s", names[t], GOT(n));
}

static int rd_opt(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key,
                  enum zt_yaml_type t, const struct zt_yaml **out)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);
	int rc;

	*out = NULL;
	if (zt_yaml_is_null(n))
		return 0;
	if ((rc = zt_yaml_rd_want(r, n, t, key)) == 0)
		*out = n;
	return rc;
}

int zt_yaml_rd_map(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key,
                   const struct zt_yaml **out)
{
	return rd_opt(r, map, key, ZT_YAML_MAP, out);
}

int zt_yaml_rd_seq(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key,
                   const struct zt_yaml **out)
{
	return rd_opt(r, map, key, ZT_YAML_SEQ, out);
}

int zt_yaml_rd_str(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key,
                   bool required, const char **out)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);

	*out = NULL;
	if (zt_yaml_is_null(n))
		return required ? zt_yaml_rd_failf(r, n ? n : map, key, ZT_E_PARSE, "required") : 0;
	if (n->type != ZT_YAML_SCALAR)
		return zt_yaml_rd_failf(r, n, key, ZT_E_PARSE, "expected a string, got %s", GOT(n));
	if (strlen(n->s) != n->len)
		return zt_yaml_rd_failf(r, n, key, ZT_E_PARSE, "contains a NUL byte");
	*out = n->s;
	return 0;
}

int zt_yaml_rd_bool(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key, bool *out)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);

	if (zt_yaml_is_null(n) || zt_yaml_bool(n, out) == 0)
		return 0;
	return zt_yaml_rd_failf(r, n, key, ZT_E_PARSE, "expected true or false, got %s", GOT(n));
}

int zt_yaml_rd_int(struct zt_yaml_rd *r, const struct zt_yaml *map, const char *key, int64_t min,
                   int64_t max, int64_t *out)
{
	const struct zt_yaml *n = zt_yaml_get(map, key);
	int rc;

	if (zt_yaml_is_null(n) || (rc = zt_yaml_int(n, min, max, out)) == 0)
		return 0;
	return zt_yaml_rd_failf(r, n, key, rc, "expected an integer %lld..%lld, got %s",
	                        (long long)min, (long long)max, GOT(n));
}

int zt_yaml_rd_only_keys(struct zt_yaml_rd *r, const struct zt_yaml *map,
                         const char *const *allowed)
{
	int rc = zt_yaml_rd_want(r, map, ZT_YAML_MAP, NULL);

	for (size_t i = 0; rc == 0 && i < map->n; i++) {
		const struct zt_yaml *k = zt_yaml_key(map, i);
		const char *ks = zt_yaml_str(k);
		bool ok = false;

		for (size_t j = 0; ks && allowed[j] && !ok; j++)
			ok = strcmp(ks, allowed[j]) == 0;
		if (!ok)
			return zt_yaml_rd_fail(r, k, ZT_E_PARSE, "unknown field %s", GOT(k));
	}
	return rc;
}
