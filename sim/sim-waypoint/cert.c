/* Our workload certificate (spec §4): a P-256 key and CSR for
 * spiffe://<td>/ns/<ns>/sa/<sa>, signed by the CA over gRPC with our own bearer token (no
 * impersonation: the token's identity is the one signed), renewed at half life and retried
 * with a backoff on failure. Invariant: wp->id only ever moves to a newer valid identity. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cert/ca_client.h"
#include "protocol/csr.h"
#include "runtime/err.h"
#include "runtime/file.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "sim/sim-waypoint/wp.h"

ZT_LOG_MODULE("cert");

#define TTL_S 86400

static struct {
	struct wp *wp;
	void (*on_ready)(struct wp *wp);
	struct zt_ca_client *ca;
	struct zt_cert_source src;
	struct zt_csr csr;
	void *handle;
	bool pending;
	struct zt_timer timer;
	uint64_t backoff_ms;
	char *roots;
	size_t roots_len;
} C;

static void request(void);

static void on_timer(struct zt_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	request();
}

static void retry(const char *why)
{
	C.backoff_ms = C.backoff_ms ? C.backoff_ms * 2 : 200;
	if (C.backoff_ms > 10000)
		C.backoff_ms = 10000;
	zt_warn("certificate for %s: %s; retrying in %llu ms", C.wp->self_text, why,
	        (unsigned long long)C.backoff_ms);
	zt_timer_start(C.wp->loop, &C.timer, C.backoff_ms, on_timer, NULL);
}

static void on_signed(void *arg, int err, const char *msg, char **chain, size_t n)
{
	struct zt_tls_identity *id = NULL;
	char *certs = NULL;
	size_t len = 0;
	int rc;

	(void)arg;
	C.pending = false;
	if (err < 0) {
		retry(msg && msg[0] ? msg : zt_strerror(err));
		return;
	}
	if (n < 2) {
		zt_cert_chain_free(chain, n);
		retry("the CA returned no root");
		return;
	}
	for (size_t i = 0; i + 1 < n; i++)
		len += strlen(chain[i]) + 1;
	certs = xmalloc(len + 1);
	len = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		size_t l = strlen(chain[i]);
		memcpy(certs + len, chain[i], l);
		len += l;
		certs[len++] = '\n';
	}
	certs[len] = '\0';
	rc = zt_tls_identity_new_pkey(&id, certs, len, C.csr.key, chain[n - 1],
	                              strlen(chain[n - 1]));
	free(certs);
	zt_cert_chain_free(chain, n);
	zt_csr_clear(&C.csr);
	if (rc < 0) {
		retry(zt_strerror(rc));
		return;
	}
	zt_tls_identity_unref(C.wp->id);
	C.wp->id = id;
	C.backoff_ms = 0;
	int64_t life = zt_tls_identity_not_after(id) - (int64_t)time(NULL);
	uint64_t renew_ms = life > 2 ? (uint64_t)life * 500 : 1000;
	zt_info("certificate for %s issued, serial %s, renewing in %llu s", C.wp->self_text,
	        zt_tls_identity_serial(id), (unsigned long long)(renew_ms / 1000));
	zt_timer_start(C.wp->loop, &C.timer, renew_ms, on_timer, NULL);
	C.on_ready(C.wp);
}

static void request(void)
{
	int rc;

	if (C.pending)
		return;
	zt_csr_clear(&C.csr);
	if ((rc = zt_csr_generate(&C.csr, &C.wp->self)) < 0) {
		retry(zt_strerror(rc));
		return;
	}
	rc = C.src.sign(C.src.src, C.wp->self_text, C.csr.csr_pem, TTL_S, on_signed, NULL,
	                &C.handle);
	if (rc < 0) {
		retry(zt_strerror(rc));
		return;
	}
	C.pending = true;
}

static int read_token(void *arg, char *out, size_t len)
{
	struct wp *wp = arg;
	FILE *f = fopen(wp->o.token, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(out, 1, len - 1, f);
	fclose(f);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
		n--;
	out[n] = '\0';
	return 0;
}

int wp_cert_start(struct wp *wp, void (*on_ready)(struct wp *wp))
{
	char host[256];
	int rc;

	C.wp = wp;
	C.on_ready = on_ready;
	uint16_t port = 0;
	if (wp_split_hostport(wp->o.istiod, host, sizeof(host), &port) < 0)
		return ZT_E_PARSE;
	if ((rc = zt_file_read(wp->o.roots, ZT_TLS_MAX_PEM, &C.roots, &C.roots_len)) < 0)
		return rc;
	struct zt_ca_client_opts o = {
	        .host = host,
	        .port = port,
	        .roots_pem = C.roots,
	        .roots_len = C.roots_len,
	        .token = read_token,
	        .token_arg = wp,
	};
	if ((rc = zt_ca_client_new(&C.ca, wp->loop, &o)) < 0)
		return rc;
	C.src = zt_ca_client_source(C.ca);
	request();
	return 0;
}

void wp_cert_stop(struct wp *wp)
{
	(void)wp;
	zt_timer_stop(&C.timer);
	zt_ca_client_free(C.ca);
	C.ca = NULL;
	zt_csr_clear(&C.csr);
	free(C.roots);
	C.roots = NULL;
}

int wp_read_token(void *arg, char *out, size_t len)
{
	return read_token(arg, out, len);
}

int wp_split_hostport(const char *s, char *host, size_t size, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long p;

	if (!colon || colon == s || (size_t)(colon - s) >= size)
		return ZT_E_PARSE;
	p = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p == 0 || p > 65535)
		return ZT_E_PARSE;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (uint16_t)p;
	return 0;
}
