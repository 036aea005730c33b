/* The in-process certificate source (cert/local.h) over a protocol/ca.h root made in a
 * temporary directory: asynchronous answers, refusals with the signer's reason, cancellation,
 * and the manager obtaining certificates through it. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cert/local.h"
#include "cert/manager.h"
#include "protocol/csr.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define TD "cluster.local"
#define ID "spiffe://" TD "/ns/demo/sa/sleep"

static char dir[64];
static struct zt_ca *ca;
static struct zt_loop *loop;
static struct zt_cert_local *src;

struct res {
	bool done;
	int err;
	char msg[256];
	size_t n;
};

static void on_done(void *arg, int err, const char *msg, char **chain, size_t n)
{
	struct res *r = arg;

	ck_assert(!r->done);
	r->done = true;
	r->err = err;
	r->n = n;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	if (err == 0) {
		ck_assert_uint_eq(n, 2);
		ck_assert_str_eq(chain[1], zt_ca_root_pem(ca));
	}
	zt_cert_chain_free(chain, n);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static void setup(void)
{
	char err[256] = "";

	zt_log_set_spec("off", NULL, 0);
	snprintf(dir, sizeof(dir), "/tmp/zt-cert-local-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_msg(zt_ca_open(&ca, dir, true, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(zt_loop_new(&loop), 0);
	ck_assert_int_eq(zt_cert_local_new(&src, loop, ca, TD), 0);
}

static void teardown(void)
{
	zt_cert_local_free(src);
	zt_loop_free(loop);
	zt_ca_free(ca);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	ck_assert_uint_eq(zt_tls_identity_live(), 0);
}

static void *sign_for(const char *csr_id, const char *asked, int64_t ttl, struct res *r)
{
	struct zt_cert_source s = zt_cert_local_source(src);
	struct zt_spiffe sp;
	struct zt_csr csr;
	void *h = NULL;

	ck_assert_int_eq(zt_spiffe_parse(&sp, csr_id, strlen(csr_id)), 0);
	ck_assert_int_eq(zt_csr_generate(&csr, &sp), 0);
	ck_assert_int_eq(s.sign(s.src, asked, csr.csr_pem, ttl, on_done, r, &h), 0);
	zt_csr_clear(&csr);
	return h;
}

START_TEST(local_source_answers_from_the_loop_with_leaf_and_root)
{
	struct res r = {0};

	sign_for(ID, ID, 3600, &r);
	ck_assert(!r.done);
	zt_loop_run_once(loop, 0);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(r.n, 2);
}
END_TEST

START_TEST(local_source_refuses_csr_for_another_identity_or_trust_domain)
{
	struct res r = {0}, t = {0};

	sign_for("spiffe://" TD "/ns/demo/sa/other", ID, 3600, &r);
	sign_for("spiffe://other.td/ns/demo/sa/sleep", "spiffe://other.td/ns/demo/sa/sleep", 3600,
	         &t);
	zt_loop_run_once(loop, 0);
	ck_assert(r.done && t.done);
	ck_assert_int_eq(r.err, ZT_E_IDENTITY);
	ck_assert_int_eq(t.err, ZT_E_IDENTITY);
	ck_assert_str_ne(r.msg, "");
}
END_TEST

START_TEST(cancelled_local_request_never_answers)
{
	struct zt_cert_source s = zt_cert_local_source(src);
	struct res r = {0};
	void *h = sign_for(ID, ID, 3600, &r);

	s.cancel(s.src, h);
	zt_loop_run_once(loop, 0);
	ck_assert(!r.done);
	ck_assert_int_eq(s.sign(s.src, NULL, "x", 1, on_done, &r, &h), ZT_E_PARSE);
	ck_assert_int_eq(zt_cert_local_new(&(struct zt_cert_local *){NULL}, loop, ca, ""),
	                 ZT_E_RANGE);
}
END_TEST

START_TEST(manager_obtains_certificates_from_the_local_source)
{
	struct zt_certmgr_opts o;
	struct zt_certmgr *m;
	struct zt_spiffe id;
	struct zt_tls_identity *c = NULL;

	zt_certmgr_opts_init(&o);
	o.source = zt_cert_local_source(src);
	ck_assert_int_eq(zt_certmgr_new(&m, loop, &o), 0);
	ck_assert_int_eq(zt_spiffe_parse(&id, ID, strlen(ID)), 0);
	zt_certmgr_prefetch(m, &id);
	for (int i = 0; i < 100 && !c; i++) {
		zt_loop_run_once(loop, 10);
		c = zt_certmgr_get(m, &id);
	}
	ck_assert_ptr_nonnull(c);
	ck_assert(zt_spiffe_eq(zt_tls_identity_spiffe(c), &id));
	/* Requested 24 h, issued 24 h (plus the signer's backdating). */
	ck_assert_int_ge(zt_tls_identity_not_after(c) - zt_tls_identity_not_before(c), 86400);
	zt_tls_identity_unref(c);
	zt_certmgr_free(m);
}
END_TEST

Suite *cert_local_suite(void);
Suite *cert_local_suite(void)
{
	Suite *s = suite_create("cert_local");
	TCase *tc = tcase_create("cert_local");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, local_source_answers_from_the_loop_with_leaf_and_root);
	tcase_add_test(tc, local_source_refuses_csr_for_another_identity_or_trust_domain);
	tcase_add_test(tc, cancelled_local_request_never_answers);
	tcase_add_test(tc, manager_obtains_certificates_from_the_local_source);
	suite_add_tcase(s, tc);
	return s;
}
