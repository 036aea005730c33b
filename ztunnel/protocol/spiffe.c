/* SPIFFE identity parsing, formatting and peer checks (spec §2.2). Every accepted identity
 * went through one validator, part(), so a struct zt_spiffe can be printed or compared
 * without further checks. */
#include "protocol/spiffe.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/mem.h"

#define SCHEME "spiffe://"

static bool td_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool name_char(unsigned char c)
{
	return td_char(c) || (c >= 'A' && c <= 'Z');
}

/* Validates s[0..len) as one part and copies it NUL-terminated into dst[max + 1]. */
static int part(char *dst, size_t max, const char *s, size_t len, bool is_td)
{
	size_t i;

	if (len == 0)
		return ZT_E_PARSE;
	if (len > max)
		return ZT_E_TOOBIG;
	for (i = 0; i < len; i++)
		if (!(is_td ? td_char((unsigned char)s[i]) : name_char((unsigned char)s[i])))
			return ZT_E_PARSE;
	if (!is_td && s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))
		return ZT_E_PARSE;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

int zt_spiffe_parse(struct zt_spiffe *out, const char *s, size_t len)
{
	const char *p[5], *end = s + len;
	size_t plen[5];
	int i, rc;

	if (len > ZT_SPIFFE_MAX_LEN)
		return ZT_E_TOOBIG;
	if (len < sizeof(SCHEME) - 1 || memcmp(s, SCHEME, sizeof(SCHEME) - 1) != 0)
		return ZT_E_PARSE;
	s += sizeof(SCHEME) - 1;
	/* Split into exactly five '/'-separated parts; a sixth '/' is an extra part. */
	for (i = 0; i < 5; i++) {
		const char *slash = memchr(s, '/', (size_t)(end - s));

		p[i] = s;
		if (i < 4) {
			if (!slash)
				return ZT_E_PARSE;
			plen[i] = (size_t)(slash - s);
			s = slash + 1;
		} else {
			if (slash)
				return ZT_E_PARSE;
			plen[i] = (size_t)(end - s);
		}
	}
	if (plen[1] != 2 || memcmp(p[1], "ns", 2) != 0 || plen[3] != 2 ||
	    memcmp(p[3], "sa", 2) != 0)
		return ZT_E_PARSE;
	if ((rc = part(out->td, ZT_SPIFFE_TD_MAX, p[0], plen[0], true)) < 0 ||
	    (rc = part(out->ns, ZT_SPIFFE_NAME_MAX, p[2], plen[2], false)) < 0 ||
	    (rc = part(out->sa, ZT_SPIFFE_NAME_MAX, p[4], plen[4], false)) < 0)
		return rc;
	return 0;
}

static int part_str(char *dst, size_t max, const char *s, bool is_td)
{
	return part(dst, max, s, strnlen(s, max + 1), is_td);
}

int zt_spiffe_set(struct zt_spiffe *out, const char *td, const char *ns, const char *sa)
{
	int rc;

	if ((rc = part_str(out->td, ZT_SPIFFE_TD_MAX, td, true)) < 0 ||
	    (rc = part_str(out->ns, ZT_SPIFFE_NAME_MAX, ns, false)) < 0 ||
	    (rc = part_str(out->sa, ZT_SPIFFE_NAME_MAX, sa, false)) < 0)
		return rc;
	return 0;
}

int zt_spiffe_format(const struct zt_spiffe *id, char *buf, size_t size)
{
	int n = snprintf(buf, size, SCHEME "%s/ns/%s/sa/%s", id->td, id->ns, id->sa);

	if (n < 0 || (size_t)n >= size) {
		if (size > 0)
			buf[0] = '\0';
		return ZT_E_TOOBIG;
	}
	return n;
}

bool zt_spiffe_eq(const struct zt_spiffe *a, const struct zt_spiffe *b)
{
	return strcmp(a->td, b->td) == 0 && strcmp(a->ns, b->ns) == 0 && strcmp(a->sa, b->sa) == 0;
}

bool zt_spiffe_same_td(const struct zt_spiffe *a, const struct zt_spiffe *b)
{
	return strcmp(a->td, b->td) == 0;
}

int zt_spiffe_verify_client(const struct zt_spiffe *own, const struct zt_spiffe_sans *sans,
                            struct zt_spiffe *peer)
{
	struct zt_spiffe id, first;
	bool have_first = false, same_td = false;
	size_t i;

	for (i = 0; i < sans->n; i++) {
		if (zt_spiffe_parse(&id, sans->v[i].uri, sans->v[i].len) < 0)
			continue;
		if (!have_first) {
			first = id;
			have_first = true;
		}
		if (zt_spiffe_same_td(&id, own)) {
			same_td = true;
			break;
		}
	}
	if (!same_td)
		return ZT_E_IDENTITY;
	if (peer)
		*peer = first;
	return 0;
}

int zt_spiffe_verify_server(const struct zt_spiffe *expected, size_t n,
                            const struct zt_spiffe_sans *sans, struct zt_spiffe *matched)
{
	struct zt_spiffe id;
	size_t i, j;

	for (i = 0; i < sans->n; i++) {
		if (zt_spiffe_parse(&id, sans->v[i].uri, sans->v[i].len) < 0)
			continue;
		for (j = 0; j < n; j++) {
			if (zt_spiffe_eq(&id, &expected[j])) {
				if (matched)
					*matched = id;
				return 0;
			}
		}
	}
	return ZT_E_IDENTITY;
}

int zt_spiffe_sans_add(struct zt_spiffe_sans *sans, const char *uri, size_t len)
{
	struct zt_spiffe_san *v;

	if (sans->n >= ZT_SPIFFE_MAX_SANS)
		return ZT_E_TOOBIG;
	v = xrealloc(sans->v, (sans->n + 1) * sizeof(*v));
	sans->v = v;
	v[sans->n].uri = xcalloc(1, len + 1);
	memcpy(v[sans->n].uri, uri, len);
	v[sans->n].len = len;
	sans->n++;
	return 0;
}

int zt_spiffe_sans_from_names(const GENERAL_NAMES *names, struct zt_spiffe_sans *out)
{
	int i, rc;

	for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const ASN1_IA5STRING *uri;

		if (gn->type != GEN_URI)
			continue;
		uri = gn->d.uniformResourceIdentifier;
		rc = zt_spiffe_sans_add(out, (const char *)ASN1_STRING_get0_data(uri),
		                        (size_t)ASN1_STRING_length(uri));
		if (rc < 0) {
			zt_spiffe_sans_clear(out);
			return rc;
		}
	}
	return 0;
}

int zt_spiffe_sans_from_x509(X509 *cert, struct zt_spiffe_sans *out)
{
	GENERAL_NAMES *names;
	int crit = -1, rc;

	names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (!names)
		return crit == -1 ? 0 : ZT_E_PARSE; /* -1: absent; -2: duplicated; else bad DER */
	rc = zt_spiffe_sans_from_names(names, out);
	GENERAL_NAMES_free(names);
	return rc;
}

void zt_spiffe_sans_clear(struct zt_spiffe_sans *sans)
{
	size_t i;

	for (i = 0; i < sans->n; i++)
		free(sans->v[i].uri);
	free(sans->v);
	sans->v = NULL;
	sans->n = 0;
}
