/* HBONE CONNECT headers and checks. Invariant: every string written into caller storage is
 * NUL-terminated and within its declared bound, whatever the peer sent; peer text is copied
 * only after it has been checked against a character set. */
#include "hbone/hbone.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "runtime/err.h"

/* ---- text utilities -------------------------------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len)
{
	while (*len && is_ows((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len && is_ows((*s)[*len - 1]))
		(*len)--;
}

/* A DNS name as used for service host names: labels of [A-Za-z0-9_-], 1..63 bytes, no '-'
 * at either end of a label, and a last label that is not all digits (so that text like
 * "1.2.3" or "01.2.3.4", which some resolvers read as an address, is never a name). */
static bool dns_name_ok(const char *s, size_t len)
{
	size_t label = 0;
	bool all_digits = true;

	if (len == 0 || len > ZT_HBONE_HOST_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			if (i == len)
				break;
			label = 0;
			all_digits = true;
			continue;
		}
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_')
			return false;
		if (label == 0 && s[i] == '-')
			return false;
		if (!is_digit(s[i]))
			all_digits = false;
		label++;
	}
	return !all_digits;
}

/* [A-Za-z0-9._-]{1,max} */
static bool token_ok(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static void copy_lower(char *dst, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = lower(s[i]);
	dst[len] = '\0';
}

/* Decimal 1..65535 without sign or leading zeros. */
static int parse_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;

	if (len == 0 || (s[0] == '0' && len > 1))
		return ZT_E_PARSE;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return ZT_E_PARSE;
		if (v <= 65535)
			v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return ZT_E_RANGE;
	*out = (uint16_t)v;
	return 0;
}

static bool header_is(const struct zt_h2_header *h, const char *name)
{
	size_t n = strlen(name);

	return h->name_len == n && memcmp(h->name, name, n) == 0;
}

/* ---- authority --------------------------------------------------------------------------- */

int zt_hbone_authority_parse(struct zt_hbone_authority *out, const char *s, size_t len)
{
	struct zt_sockaddr sa;
	struct zt_ip ip;
	const char *colon;
	size_t hlen;
	uint16_t port;
	int err;

	if (len == 0 || len >= ZT_HBONE_AUTHORITY_STRLEN || memchr(s, '\0', len))
		return ZT_E_PARSE;
	if (s[0] == '[') {
		err = zt_addr_parse(&sa, s, len, 0);
		if (err < 0)
			return err;
		zt_hbone_authority_from_addr(out, &sa);
		return 0;
	}
	colon = memrchr(s, ':', len);
	if (!colon)
		return ZT_E_PARSE; /* no port */
	hlen = (size_t)(colon - s);
	if (memchr(s, ':', hlen))
		return ZT_E_PARSE; /* IPv6 without brackets */
	if (zt_ip_parse(&ip, s, hlen) == 0) {
		err = zt_addr_parse(&sa, s, len, 0);
		if (err < 0)
			return err;
		zt_hbone_authority_from_addr(out, &sa);
		return 0;
	}
	if (!dns_name_ok(s, hlen))
		return ZT_E_PARSE;
	err = parse_port(colon + 1, len - hlen - 1, &port);
	if (err < 0)
		return err;
	memset(out, 0, sizeof(*out));
	out->is_host = true;
	copy_lower(out->host, s, hlen);
	out->port = port;
	return 0;
}

void zt_hbone_authority_from_addr(struct zt_hbone_authority *a, const struct zt_sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	a->addr = *sa;
	a->port = sa->port;
}

int zt_hbone_authority_format(const struct zt_hbone_authority *a, char *buf, size_t size)
{
	int n;

	if (size)
		buf[0] = '\0';
	if (a->port == 0)
		return ZT_E_PARSE;
	if (!a->is_host) {
		n = zt_addr_format(&a->addr, buf, size);
		return n == -EAFNOSUPPORT ? ZT_E_PARSE : n;
	}
	if (!dns_name_ok(a->host, strnlen(a->host, sizeof(a->host))))
		return ZT_E_PARSE;
	n = snprintf(buf, size, "%s:%u", a->host, (unsigned)a->port);
	if (n < 0 || (size_t)n >= size) {
		if (size)
			buf[0] = '\0';
		return ZT_E_TOOBIG;
	}
	return n;
}

/* ---- client request ---------------------------------------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

static void hex(char *dst, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = hexdig[p[i] >> 4];
		dst[2 * i + 1] = hexdig[p[i] & 15];
	}
}

static int random_bytes(void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom((uint8_t *)p + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

int zt_hbone_traceparent_new(char *buf)
{
	uint8_t r[24]; /* 16-byte trace id, 8-byte parent id */
	int err = random_bytes(r, sizeof(r));

	if (err < 0)
		return err;
	/* All-zero ids are invalid (W3C trace context): force one bit in each. */
	r[15] |= 1;
	r[23] |= 1;
	memcpy(buf, "00-", 3);
	hex(buf + 3, r, 16);
	buf[35] = '-';
	hex(buf + 36, r + 16, 8);
	memcpy(buf + 52, "-00", 4);
	return 0;
}

/* W3C baggage-octet minus '%' (the escape) and '=' (which the reference parser splits on). */
static bool baggage_safe(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\' &&
	       c != '%' && c != '=';
}

static const char *wl_type_name(enum zt_hbone_wl_type t)
{
	switch (t) {
	case ZT_HBONE_WL_CRONJOB:
		return "cronjob";
	case ZT_HBONE_WL_POD:
		return "pod";
	case ZT_HBONE_WL_JOB:
		return "job";
	case ZT_HBONE_WL_DEPLOYMENT:
	default:
		return "deployment";
	}
}

/* Appends s to buf at *pos; false if it does not fit (with the NUL). */
static bool put(char *buf, size_t size, size_t *pos, const char *s, size_t len)
{
	if (size - *pos <= len)
		return false;
	memcpy(buf + *pos, s, len);
	*pos += len;
	buf[*pos] = '\0';
	return true;
}

static bool put_encoded(char *buf, size_t size, size_t *pos, const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[3] = {'%', hexdig[*p >> 4], hexdig[*p & 15]};
		if (baggage_safe(*p) ? !put(buf, size, pos, (const char *)p, 1)
		                     : !put(buf, size, pos, esc, 3))
			return false;
	}
	return true;
}

int zt_hbone_baggage_format(const struct zt_hbone_meta *m, char *buf, size_t size)
{
	char wl_key[32];
	const struct {
		const char *key;
		const char *val;
	} kv[] = {
	        {"k8s.cluster.name", m->cluster},
	        {"k8s.namespace.name", m->ns},
	        {wl_key, m->workload},
	        {"service.name", m->service},
	        {"service.version", m->version},
	        {"cloud.region", m->region},
	        {"cloud.availability_zone", m->zone},
	};
	size_t pos = 0;

	if (size == 0)
		return ZT_E_TOOBIG;
	buf[0] = '\0';
	snprintf(wl_key, sizeof(wl_key), "k8s.%s.name", wl_type_name(m->wl_type));
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
		size_t vlen = strnlen(kv[i].val, ZT_HBONE_META_MAX + 1);
		if (vlen == 0)
			continue;
		if (vlen > ZT_HBONE_META_MAX || (pos && !put(buf, size, &pos, ",", 1)) ||
		    !put(buf, size, &pos, kv[i].key, strlen(kv[i].key)) ||
		    !put(buf, size, &pos, "=", 1) || !put_encoded(buf, size, &pos, kv[i].val)) {
			buf[0] = '\0';
			return ZT_E_TOOBIG;
		}
	}
	return (int)pos;
}

static void add_header(struct zt_hbone_req *r, const char *name, const char *value)
{
	r->h[r->n++] = (struct zt_h2_header){name, strlen(name), value, strlen(value)};
}

int zt_hbone_req_build(struct zt_hbone_req *out, const struct zt_hbone_connect *in)
{
	int n, err;

	memset(out, 0, sizeof(*out));
	if (!in->target)
		return ZT_E_PARSE;
	n = zt_hbone_authority_format(in->target, out->authority, sizeof(out->authority));
	if (n < 0)
		return n;
	add_header(out, ":method", "CONNECT");
	add_header(out, ":authority", out->authority);

	if (in->client) {
		char addr[ZT_ADDR_STRLEN];
		const char *host = in->service_host ? in->service_host : "";
		size_t hlen = strnlen(host, ZT_HBONE_HOST_MAX + 1);

		if (zt_addr_format(in->client, addr, sizeof(addr)) < 0)
			return ZT_E_PARSE;
		if (hlen > ZT_HBONE_HOST_MAX)
			return ZT_E_TOOBIG;
		if (hlen && !dns_name_ok(host, hlen))
			return ZT_E_PARSE;
		snprintf(out->forwarded, sizeof(out->forwarded), "for=\"%s\"%s%s", addr,
		         hlen ? ";host=" : "", host);
		add_header(out, "forwarded", out->forwarded);
	}
	if (in->source) {
		n = zt_hbone_baggage_format(in->source, out->baggage, sizeof(out->baggage));
		if (n < 0)
			return n;
		if (n > 0)
			add_header(out, "baggage", out->baggage);
	}
	err = zt_hbone_traceparent_new(out->traceparent);
	if (err < 0)
		return err;
	add_header(out, "traceparent", out->traceparent);
	if (in->network && in->network[0]) {
		size_t len = strnlen(in->network, ZT_HBONE_META_MAX + 1);
		if (len > ZT_HBONE_META_MAX)
			return ZT_E_TOOBIG;
		if (!token_ok(in->network, len, ZT_HBONE_META_MAX))
			return ZT_E_PARSE;
		memcpy(out->network, in->network, len + 1);
		add_header(out, "x-forwarded-network", out->network);
	}
	return 0;
}

/* ---- inbound parsing --------------------------------------------------------------------- */

static int hexval(char c)
{
	if (is_digit(c))
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes v into dst (ZT_HBONE_META_MAX + 1 bytes). A '%' not followed by two hex
 * digits stays literal. Fails if the result is too long or not printable ASCII. */
static bool decode_value(char *dst, const char *v, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '%' && i + 2 < len && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
			c = (unsigned char)(hexval(v[i + 1]) << 4 | hexval(v[i + 2]));
			i += 2;
		}
		if (c < 0x21 || c > 0x7e || o == ZT_HBONE_META_MAX)
			return false;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return true;
}

/* The field a baggage key fills; for k8s.<kind>.name also the kind (else *kind is -1). */
static char *meta_field(struct zt_hbone_meta *m, const char *key, size_t klen, int *kind)
{
	static const char *const kinds[] = {"deployment", "cronjob", "pod", "job"};
	const struct {
		const char *key;
		char *field;
	} map[] = {
	        {"k8s.cluster.name", m->cluster}, {"k8s.namespace.name", m->ns},
	        {"service.name", m->service},     {"service.version", m->version},
	        {"cloud.region", m->region},      {"cloud.availability_zone", m->zone},
	};

	*kind = -1;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].key) == klen && memcmp(map[i].key, key, klen) == 0)
			return map[i].field;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i]);
		if (klen == n + 9 && memcmp(key, "k8s.", 4) == 0 &&
		    memcmp(key + 4, kinds[i], n) == 0 && memcmp(key + 4 + n, ".name", 5) == 0) {
			*kind = (int)i;
			return m->workload;
		}
	}
	return NULL;
}

bool zt_hbone_baggage_parse(struct zt_hbone_meta *m, const char *s, size_t len)
{
	bool taken = false;
	size_t i = 0;

	if (len > ZT_HBONE_BAGGAGE_IN)
		return false;
	while (i < len) {
		const char *member = s + i, *end = memchr(member, ',', len - i);
		size_t mlen = end ? (size_t)(end - member) : len - i;
		const char *eq = memchr(member, '=', mlen), *semi;
		const char *key = member, *val;
		size_t klen, vlen;
		char tmp[ZT_HBONE_META_MAX + 1];
		char *field;
		int kind;

		i += mlen + 1;
		if (!eq)
			continue;
		klen = (size_t)(eq - member);
		trim(&key, &klen);
		val = eq + 1;
		vlen = (size_t)(member + mlen - val);
		semi = memchr(val, ';', vlen); /* properties follow */
		if (semi)
			vlen = (size_t)(semi - val);
		trim(&val, &vlen);
		field = meta_field(m, key, klen, &kind);
		if (!field || !decode_value(tmp, val, vlen))
			continue;
		memcpy(field, tmp, strlen(tmp) + 1);
		if (kind >= 0)
			m->wl_type = (enum zt_hbone_wl_type)kind;
		taken = true;
	}
	return taken;
}

/* Reads one parameter value at s[*i]: a token up to ';' or ',' or a quoted string with
 * backslash escapes. Writes at most cap bytes into dst (NUL included); false on overflow or
 * an unterminated quote. */
static bool fwd_value(const char *s, size_t len, size_t *i, char *dst, size_t cap)
{
	size_t o = 0;

	if (*i < len && s[*i] == '"') {
		for ((*i)++; *i < len && s[*i] != '"'; (*i)++) {
			if (s[*i] == '\\' && *i + 1 < len)
				(*i)++;
			if (o + 1 >= cap)
				return false;
			dst[o++] = s[*i];
		}
		if (*i >= len)
			return false;
		(*i)++;
	} else {
		for (; *i < len && s[*i] != ';' && s[*i] != ',' && !is_ows(s[*i]); (*i)++) {
			if (o + 1 >= cap)
				return false;
			dst[o++] = s[*i];
		}
	}
	dst[o] = '\0';
	return true;
}

bool zt_hbone_forwarded_host(const char *s, size_t len, char *host)
{
	char val[ZT_HBONE_HOST_MAX + sizeof(":65535")];
	size_t i = 0;

	host[0] = '\0';
	while (i < len && s[i] != ',') {
		size_t kstart, klen;
		bool is_host;

		while (i < len && (is_ows(s[i]) || s[i] == ';'))
			i++;
		kstart = i;
		while (i < len && s[i] != '=' && s[i] != ';' && s[i] != ',')
			i++;
		if (i >= len || s[i] != '=')
			continue; /* a parameter without a value: skip it */
		klen = i - kstart;
		while (klen && is_ows(s[kstart + klen - 1]))
			klen--;
		is_host = klen == 4 && strncasecmp(s + kstart, "host", 4) == 0;
		i++;
		while (i < len && is_ows(s[i]))
			i++;
		if (!fwd_value(s, len, &i, val, sizeof(val))) {
			/* Unusable value: skip to the next parameter. */
			while (i < len && s[i] != ';' && s[i] != ',')
				i++;
			continue;
		}
		while (i < len && s[i] != ';' && s[i] != ',')
			i++; /* junk after a value */
		if (is_host) {
			size_t vlen = strlen(val);
			const char *colon = memchr(val, ':', vlen);
			uint16_t port;
			if (colon &&
			    parse_port(colon + 1, vlen - (size_t)(colon - val) - 1, &port) < 0)
				return false;
			if (colon)
				vlen = (size_t)(colon - val);
			if (!dns_name_ok(val, vlen))
				return false;
			copy_lower(host, val, vlen);
			return true;
		}
	}
	return false;
}

static bool traceparent_ok(const char *s, size_t len)
{
	static const size_t dash[] = {2, 35, 52};
	bool nz_trace = false, nz_parent = false;

	if (len != ZT_HBONE_TRACEPARENT_LEN || memcmp(s, "ff", 2) == 0)
		return false;
	for (size_t i = 0, d = 0; i < len; i++) {
		if (d < 3 && i == dash[d]) {
			if (s[i] != '-')
				return false;
			d++;
			continue;
		}
		if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
		if (s[i] != '0' && i > 2 && i < 35)
			nz_trace = true;
		if (s[i] != '0' && i > 35 && i < 52)
			nz_parent = true;
	}
	return nz_trace && nz_parent;
}

static int set_status(struct zt_hbone_status *st, int code, const char *reason)
{
	st->code = code;
	snprintf(st->reason, sizeof(st->reason), "%s", reason);
	return code;
}

int zt_hbone_parse_request(struct zt_hbone_inbound *out, const struct zt_h2_header *h, size_t n,
                           struct zt_hbone_status *st)
{
	const struct zt_h2_header *method = NULL, *authority = NULL;
	size_t nmethod = 0, nauthority = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		if (header_is(&h[i], ":method")) {
			method = &h[i];
			nmethod++;
		} else if (header_is(&h[i], ":authority")) {
			authority = &h[i];
			nauthority++;
		} else if (header_is(&h[i], "forwarded")) {
			if (!out->forwarded_host[0])
				zt_hbone_forwarded_host(h[i].value, h[i].value_len,
				                        out->forwarded_host);
		} else if (header_is(&h[i], "baggage")) {
			if (zt_hbone_baggage_parse(&out->baggage, h[i].value, h[i].value_len))
				out->has_baggage = true;
		} else if (header_is(&h[i], "traceparent")) {
			if (!out->traceparent[0] && traceparent_ok(h[i].value, h[i].value_len)) {
				memcpy(out->traceparent, h[i].value, h[i].value_len);
				out->traceparent[h[i].value_len] = '\0';
			}
		} else if (header_is(&h[i], "x-forwarded-network")) {
			if (!out->network[0] &&
			    token_ok(h[i].value, h[i].value_len, ZT_HBONE_META_MAX)) {
				memcpy(out->network, h[i].value, h[i].value_len);
				out->network[h[i].value_len] = '\0';
			}
		}
	}
	if (nmethod != 1 || method->value_len != 7 || memcmp(method->value, "CONNECT", 7) != 0)
		return set_status(st, 400, "method is not CONNECT");
	if (nauthority == 0)
		return set_status(st, 400, "missing authority");
	if (nauthority > 1)
		return set_status(st, 400, "duplicate authority");
	if (zt_hbone_authority_parse(&out->target, authority->value, authority->value_len) < 0)
		return set_status(st, 400, "invalid authority");
	return set_status(st, 200, "");
}

int zt_hbone_check_target(const struct zt_hbone_authority *t, const struct zt_ip *conn_dst,
                          unsigned flags, struct zt_hbone_status *st)
{
	char a[ZT_IP_STRLEN] = "?", b[ZT_IP_STRLEN] = "?";

	if (t->is_host || (flags & (ZT_HBONE_APP_TUNNEL | ZT_HBONE_WAYPOINT)) ||
	    zt_ip_equal(&t->addr.ip, conn_dst))
		return set_status(st, 200, "");
	zt_ip_format(&t->addr.ip, a, sizeof(a));
	zt_ip_format(conn_dst, b, sizeof(b));
	st->code = 400;
	snprintf(st->reason, sizeof(st->reason), "ip mismatch: %s != %s", a, b);
	return st->code;
}

bool zt_hbone_port_illegal(uint16_t port, unsigned flags)
{
	return port == 15001 || port == 15006 || port == 15008 ||
	       (port == 15080 && (flags & ZT_HBONE_SOCKS5));
}

int zt_hbone_check_port(uint16_t port, unsigned flags, struct zt_hbone_status *st)
{
	if (zt_hbone_port_illegal(port, flags))
		return set_status(st, 503, "attempted recursive call to ourselves");
	return set_status(st, 200, "");
}

int zt_hbone_validate(struct zt_hbone_inbound *out, const struct zt_h2_header *h, size_t n,
                      const struct zt_ip *conn_dst, unsigned flags, struct zt_hbone_status *st)
{
	if (zt_hbone_parse_request(out, h, n, st) != 200 ||
	    zt_hbone_check_target(&out->target, conn_dst, flags, st) != 200 || out->target.is_host)
		return st->code;
	return zt_hbone_check_port(out->target.port, flags, st);
}
