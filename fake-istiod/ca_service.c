/* CreateCertificate for the fake istiod. The caller is authenticated from the call's
 * metadata before its request is read; the identity to sign is fixed by the token (own
 * identity) or by the impersonation checks, never by the CSR, which must then carry exactly
 * that identity. */
#include "ca_service.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "istio/ca/ca.pb-c.h"
#include "protocol/pb.h"
#include "protocol/spiffe.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("ca");

#define MSG_MAX 512

static void seterr(char *msg, size_t msglen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void seterr(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || msglen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

/* Checks "Bearer <jwt>" (scheme case-insensitive, one space) and the token. */
static int authenticate(struct fi_ca_service *svc, const char *authorization,
                        struct fi_token_claims *claims, char *msg, size_t msglen)
{
	char why[256];

	if (!authorization) {
		seterr(msg, msglen, "missing authorization metadata");
		return ZT_GRPC_UNAUTHENTICATED;
	}
	if (strncasecmp(authorization, "Bearer ", 7) != 0 || authorization[7] == '\0') {
		seterr(msg, msglen, "authorization metadata is not a Bearer token");
		return ZT_GRPC_UNAUTHENTICATED;
	}
	if (fi_token_verify(svc->key, authorization + 7, (int64_t)time(NULL), claims, why,
	                    sizeof(why)) < 0) {
		seterr(msg, msglen, "authentication failed: %s", why);
		return ZT_GRPC_UNAUTHENTICATED;
	}
	return ZT_GRPC_OK;
}

/* Whether "ns/sa" is an item of the comma list (spaces around items ignored). */
static bool trusted(const char *list, const char *ns, const char *sa)
{
	size_t nl = strlen(ns), sl = strlen(sa);
	const char *p = list ? list : FI_CA_DEFAULT_TRUSTED;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (n > 0 && *p == ' ') {
			p++;
			n--;
		}
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == nl + 1 + sl && memcmp(p, ns, nl) == 0 && p[nl] == '/' &&
		    memcmp(p + nl + 1, sa, sl) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* The ImpersonatedIdentity metadata entry: NULL when absent (last entry wins, as for a
 * protobuf map); *bad when present but not a string. */
static const char *impersonated(const Google__Protobuf__Struct *md, bool *bad)
{
	const char *found = NULL;

	*bad = false;
	for (size_t i = 0; md && i < md->n_fields; i++) {
		const Google__Protobuf__Struct__FieldsEntry *e = md->fields[i];

		if (!e->key || strcmp(e->key, FI_CA_IMPERSONATE_KEY) != 0)
			continue;
		*bad = !e->value ||
		       e->value->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		found = *bad ? NULL : e->value->string_value;
	}
	return found;
}

/* protobuf-c ends strings at their first NUL, so a NUL hidden in ImpersonatedIdentity would
 * silently sign the prefix. This walks the encoded request (already decoded once, so well
 * formed) down to metadata.fields[].value.string_value and reports a NUL in the value of an
 * ImpersonatedIdentity entry, or in any entry's key. */
static bool next_len_field(const uint8_t **p, const uint8_t *end, uint32_t *num,
                           const uint8_t **v, size_t *vlen)
{
	while (*p < end) {
		uint64_t tag = 0, x = 0;
		for (unsigned sh = 0; *p < end && sh < 64; sh += 7) {
			uint8_t b = *(*p)++;
			tag |= (uint64_t)(b & 0x7f) << sh;
			if (!(b & 0x80))
				break;
		}
		switch (tag & 7) {
		case 0:
			while (*p < end && (*(*p)++ & 0x80))
				;
			break;
		case 1:
			*p += (size_t)(end - *p) < 8 ? (size_t)(end - *p) : 8;
			break;
		case 5:
			*p += (size_t)(end - *p) < 4 ? (size_t)(end - *p) : 4;
			break;
		case 2:
			for (unsigned sh = 0; *p < end && sh < 64; sh += 7) {
				uint8_t b = *(*p)++;
				x |= (uint64_t)(b & 0x7f) << sh;
				if (!(b & 0x80))
					break;
			}
			if (x > (uint64_t)(end - *p))
				return false;
			*num = (uint32_t)(tag >> 3);
			*v = *p;
			*vlen = (size_t)x;
			*p += x;
			return true;
		default:
			return false;
		}
	}
	return false;
}

static bool impersonation_has_nul(const uint8_t *req, size_t len)
{
	const uint8_t *p = req, *md, *e, *v;
	size_t mdlen, elen, vlen;
	uint32_t num;

	while (next_len_field(&p, req + len, &num, &md, &mdlen)) {
		if (num != 4) /* IstioCertificateRequest.metadata */
			continue;
		const uint8_t *q = md;
		while (next_len_field(&q, md + mdlen, &num, &e, &elen)) {
			if (num != 1) /* Struct.fields entries */
				continue;
			const uint8_t *r = e, *key = NULL, *val = NULL;
			size_t klen = 0, vallen = 0;
			while (next_len_field(&r, e + elen, &num, &v, &vlen)) {
				if (num == 1)
					key = v, klen = vlen;
				else if (num == 2)
					val = v, vallen = vlen;
			}
			if (key && memchr(key, 0, klen))
				return true;
			if (!key || klen != strlen(FI_CA_IMPERSONATE_KEY) ||
			    memcmp(key, FI_CA_IMPERSONATE_KEY, klen) != 0 || !val)
				continue;
			const uint8_t *t = val;
			while (next_len_field(&t, val + vallen, &num, &v, &vlen))
				if (num == 3 && memchr(v, 0, vlen)) /* Value.string_value */
					return true;
		}
	}
	return false;
}

/* Decides which identity may be signed for this caller. */
static int required_identity(struct fi_ca_service *svc, const struct fi_token_claims *c,
                             const Google__Protobuf__Struct *md, char *out, size_t outlen,
                             char *msg, size_t msglen)
{
	struct zt_spiffe id;
	bool bad;
	const char *want = impersonated(md, &bad);

	if (bad) {
		seterr(msg, msglen, FI_CA_IMPERSONATE_KEY " must be a string");
		return ZT_GRPC_INVALID_ARGUMENT;
	}
	if (!want) {
		if (zt_spiffe_set(&id, svc->trust_domain, c->ns, c->sa) < 0) {
			seterr(msg, msglen, "caller %s/%s has no valid SPIFFE identity", c->ns,
			       c->sa);
			return ZT_GRPC_PERMISSION_DENIED;
		}
		zt_spiffe_format(&id, out, outlen);
		return ZT_GRPC_OK;
	}
	if (!trusted(svc->trusted_accounts, c->ns, c->sa)) {
		seterr(msg, msglen, "caller %s/%s is not a trusted node account", c->ns, c->sa);
		return ZT_GRPC_PERMISSION_DENIED;
	}
	if (zt_spiffe_parse(&id, want, strlen(want)) < 0 || strcmp(id.td, svc->trust_domain) != 0) {
		seterr(msg, msglen, "impersonated identity is not a SPIFFE ID in trust domain %s",
		       svc->trust_domain);
		return ZT_GRPC_PERMISSION_DENIED;
	}
	zt_spiffe_format(&id, out, outlen);
	if (!c->node[0]) {
		seterr(msg, msglen, "cannot impersonate %s: the caller's token names no node", out);
		return ZT_GRPC_PERMISSION_DENIED;
	}
	if (!svc->has_pod_on_node || !svc->has_pod_on_node(svc->arg, c->node, id.ns, id.sa)) {
		seterr(msg, msglen, "cannot impersonate %s: no pod of %s/%s runs on node %s", out,
		       id.ns, id.sa, c->node);
		return ZT_GRPC_PERMISSION_DENIED;
	}
	return ZT_GRPC_OK;
}

/* Everything after authentication. */
static int process(struct fi_ca_service *svc, const struct fi_token_claims *c, const uint8_t *req,
                   size_t len, uint8_t **resp, size_t *resp_len, char *identity, size_t idlen,
                   char *msg, size_t msglen)
{
	Istio__V1__Auth__IstioCertificateRequest *r = NULL;
	Istio__V1__Auth__IstioCertificateResponse out =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_RESPONSE__INIT;
	char **chain = NULL;
	size_t nchain = 0;
	int64_t ttl, min_ttl;
	int code, rc;

	rc = zt_pb_unpack(&istio__v1__auth__istio_certificate_request__descriptor, req, len,
	                  FI_CA_MAX_REQUEST, (ProtobufCMessage **)&r);
	if (rc < 0) {
		seterr(msg, msglen, "malformed IstioCertificateRequest: %s", zt_strerror(rc));
		return ZT_GRPC_INVALID_ARGUMENT;
	}
	if (impersonation_has_nul(req, len)) {
		seterr(msg, msglen, FI_CA_IMPERSONATE_KEY " holds a NUL byte");
		code = ZT_GRPC_INVALID_ARGUMENT;
		goto out;
	}
	code = required_identity(svc, c, r->metadata, identity, idlen, msg, msglen);
	if (code != ZT_GRPC_OK)
		goto out;
	ttl = r->validity_duration <= 0 || r->validity_duration > svc->max_ttl_s
	              ? svc->max_ttl_s
	              : r->validity_duration;
	min_ttl = svc->min_ttl_s > 0 ? svc->min_ttl_s : FI_CA_MIN_TTL_S;
	if (ttl < min_ttl)
		ttl = min_ttl < svc->max_ttl_s ? min_ttl : svc->max_ttl_s;
	rc = zt_ca_sign_csr(svc->ca, r->csr, strlen(r->csr), svc->trust_domain, identity, ttl,
	                    &chain, &nchain, NULL, msg, msglen);
	if (rc < 0) {
		code = rc == ZT_E_TLS ? ZT_GRPC_INTERNAL : ZT_GRPC_INVALID_ARGUMENT;
		goto out;
	}
	out.cert_chain = chain;
	out.n_cert_chain = nchain;
	if (zt_pb_pack(&out.base, resp, resp_len) < 0) {
		seterr(msg, msglen, "cannot encode the response");
		code = ZT_GRPC_INTERNAL;
		goto out;
	}
	seterr(msg, msglen, "%s", "");
	code = ZT_GRPC_OK;
out:
	zt_ca_chain_free(chain, nchain);
	zt_pb_free(&r->base);
	return code;
}

static void log_outcome(const struct fi_token_claims *c, const char *identity, int code,
                        const char *msg)
{
	const char *who_ns = c ? c->ns : "-", *who_sa = c ? c->sa : "-";
	const char *node = c && c->node[0] ? c->node : "-";
	const char *id = identity && identity[0] ? identity : "-";

	if (code == ZT_GRPC_OK)
		zt_info("certificate issued: caller=%s/%s node=%s identity=%s", who_ns, who_sa,
		        node, id);
	else
		zt_warn("certificate refused: caller=%s/%s node=%s identity=%s status=%s: %s",
		        who_ns, who_sa, node, id, zt_grpc_code_name(code), msg);
}

int fi_ca_service_handle(struct fi_ca_service *svc, const char *authorization, const uint8_t *req,
                         size_t len, uint8_t **resp, size_t *resp_len, char *msg, size_t msglen)
{
	struct fi_token_claims c;
	char identity[ZT_SPIFFE_STR_SIZE] = "", m[MSG_MAX] = "";
	int code;

	*resp = NULL;
	*resp_len = 0;
	code = authenticate(svc, authorization, &c, m, sizeof(m));
	if (code == ZT_GRPC_OK)
		code = process(svc, &c, req, len, resp, resp_len, identity, sizeof(identity), m,
		               sizeof(m));
	log_outcome(code == ZT_GRPC_UNAUTHENTICATED ? NULL : &c, identity, code, m);
	seterr(msg, msglen, "%s", m);
	return code;
}

/* ---- gRPC plumbing ----------------------------------------------------------------------- */

/* One call: the token is checked when the call opens, the request when the client
 * half-closes. */
struct ca_call {
	struct fi_ca_service *svc;
	struct fi_token_claims claims;
	uint8_t *req;
	size_t len;
	size_t nreq;
	bool finished;
};

static void finish(struct zt_grpc_call *call, struct ca_call *cc, int code, const char *msg)
{
	cc->finished = true;
	zt_grpc_call_finish(call, code, msg);
}

static void on_message(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg)
{
	struct ca_call *cc = arg;

	if (cc->finished)
		return;
	if (++cc->nreq > 1) {
		log_outcome(&cc->claims, NULL, ZT_GRPC_INVALID_ARGUMENT, "more than one request");
		finish(call, cc, ZT_GRPC_INVALID_ARGUMENT,
		       "CreateCertificate is unary: more than one request message");
		return;
	}
	cc->req = xmalloc(len ? len : 1);
	if (len)
		memcpy(cc->req, p, len);
	cc->len = len;
}

static void on_half_close(struct zt_grpc_call *call, void *arg)
{
	struct ca_call *cc = arg;
	char identity[ZT_SPIFFE_STR_SIZE] = "", msg[MSG_MAX] = "";
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	int code;

	if (cc->finished)
		return;
	if (cc->nreq == 0) {
		code = ZT_GRPC_INVALID_ARGUMENT;
		snprintf(msg, sizeof(msg), "no request message");
	} else {
		code = process(cc->svc, &cc->claims, cc->req, cc->len, &resp, &resp_len, identity,
		               sizeof(identity), msg, sizeof(msg));
	}
	log_outcome(&cc->claims, identity, code, msg);
	if (code == ZT_GRPC_OK && zt_grpc_call_send(call, resp, resp_len) < 0)
		code = ZT_GRPC_UNAVAILABLE;
	finish(call, cc, code, code == ZT_GRPC_OK ? NULL : msg);
	free(resp);
}

static void on_done(struct zt_grpc_call *call, int code, const char *message, void *arg)
{
	struct ca_call *cc = arg;

	(void)call;
	(void)code;
	(void)message;
	free(cc->req);
	free(cc);
}

static const struct zt_grpc_call_cbs ca_call_cbs = {
        .on_message = on_message,
        .on_half_close = on_half_close,
        .on_done = on_done,
};

static void on_call(struct zt_grpc_call *call, void *arg)
{
	struct ca_call *cc = xcalloc(1, sizeof(*cc));
	char msg[MSG_MAX] = "";
	int code;

	cc->svc = arg;
	zt_grpc_call_set_cbs(call, &ca_call_cbs, cc);
	code = authenticate(cc->svc, zt_grpc_call_md(call, "authorization"), &cc->claims, msg,
	                    sizeof(msg));
	if (code != ZT_GRPC_OK) {
		log_outcome(NULL, NULL, code, msg);
		finish(call, cc, code, msg);
	}
}

struct zt_grpc_method fi_ca_service_method(struct fi_ca_service *svc)
{
	return (struct zt_grpc_method){.path = FI_CA_SERVICE_PATH, .handler = on_call, .arg = svc};
}
