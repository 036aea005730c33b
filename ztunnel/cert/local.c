/* Local signing: the work is done inside sign(), the answer waits in a defer so done never
 * runs inside sign(). Invariant: every request is on the source's list until its defer runs
 * or it is cancelled. */
#include "cert/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("ca");

struct req {
	struct zt_cert_local *l;
	LIST_ENTRY(req) link;
	struct zt_defer defer;
	zt_cert_done_cb done;
	void *arg;
	int err;
	char msg[256];
	char **chain;
	size_t n;
};

struct zt_cert_local {
	struct zt_loop *loop;
	struct zt_ca *ca;
	char td[ZT_SPIFFE_TD_MAX + 1];
	LIST_HEAD(, req) reqs; /* answers waiting for their defer */
};

static void on_answer(struct zt_defer *d, void *arg)
{
	struct req *r = arg;
	zt_cert_done_cb done = r->done;
	void *done_arg = r->arg;
	char **chain = r->chain;
	size_t n = r->n;
	char msg[sizeof(r->msg)];
	int err = r->err;

	(void)d;
	memcpy(msg, r->msg, sizeof(msg));
	LIST_REMOVE(r, link);
	free(r);
	done(done_arg, err, err ? msg : "", err ? NULL : chain, err ? 0 : n);
}

static int local_sign(void *src, const char *spiffe_id, const char *csr_pem, int64_t ttl_s,
                      zt_cert_done_cb done, void *arg, void **handle)
{
	struct zt_cert_local *l = src;
	struct req *r;

	if (!spiffe_id || !csr_pem || !done)
		return ZT_E_PARSE;
	r = xcalloc(1, sizeof(*r));
	r->l = l;
	r->done = done;
	r->arg = arg;
	r->err = zt_ca_sign_csr(l->ca, csr_pem, strlen(csr_pem), l->td, spiffe_id, ttl_s, &r->chain,
	                        &r->n, NULL, r->msg, sizeof(r->msg));
	if (r->err < 0)
		zt_warn("local CA refused to sign for %s: %s", spiffe_id, r->msg);
	LIST_INSERT_HEAD(&l->reqs, r, link);
	zt_defer_start(l->loop, &r->defer, on_answer, r);
	*handle = r;
	return 0;
}

static void local_cancel(void *src, void *handle)
{
	struct req *r = handle;

	(void)src;
	zt_defer_stop(&r->defer);
	LIST_REMOVE(r, link);
	zt_ca_chain_free(r->chain, r->n);
	free(r);
}

int zt_cert_local_new(struct zt_cert_local **out, struct zt_loop *loop, struct zt_ca *ca,
                      const char *trust_domain)
{
	struct zt_cert_local *l;
	size_t len = trust_domain ? strlen(trust_domain) : 0;

	*out = NULL;
	if (len == 0 || len > ZT_SPIFFE_TD_MAX)
		return ZT_E_RANGE;
	l = xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->ca = ca;
	memcpy(l->td, trust_domain, len + 1);
	*out = l;
	return 0;
}

void zt_cert_local_free(struct zt_cert_local *l)
{
	if (!l)
		return;
	while (!LIST_EMPTY(&l->reqs))
		local_cancel(l, LIST_FIRST(&l->reqs));
	free(l);
}

struct zt_cert_source zt_cert_local_source(struct zt_cert_local *l)
{
	return (struct zt_cert_source){.sign = local_sign, .cancel = local_cancel, .src = l};
}
