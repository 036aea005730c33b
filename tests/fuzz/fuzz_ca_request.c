/* Fuzz target: fake-istiod's CreateCertificate decision (fake-istiod/ca_service.h) on an
 * attacker's request. Input: first byte picks the caller (0: a valid token of the trusted
 * ztunnel, 1: a valid token of an ordinary workload, 2: the rest of the first line is the
 * authorization value itself), then after '\n' the encoded IstioCertificateRequest. The CA
 * root and the token key are made once in a temporary directory. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fake-istiod/ca_service.h"
#include "fake-istiod/token.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

static char dir[64];
static struct zt_ca *ca;
static struct fi_token_key *key;
static struct fi_ca_service svc;
static char ztunnel_auth[FI_TOKEN_MAX_LEN + 16], sleep_auth[FI_TOKEN_MAX_LEN + 16];

static bool has_pod_on_node(void *arg, const char *node, const char *ns, const char *sa)
{
	(void)arg;
	return !strcmp(node, "node-1") && !strcmp(ns, "demo") && !strcmp(sa, "sleep");
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void cleanup(void)
{
	zt_ca_free(ca);
	fi_token_key_free(key);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void bearer(char *out, size_t size, const char *node, const char *ns, const char *sa)
{
	char *tok = NULL;

	if (fi_token_mint(key, node, ns, sa, 3600, time(NULL), &tok) < 0)
		abort();
	snprintf(out, size, "Bearer %s", tok);
	free(tok);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	snprintf(dir, sizeof(dir), "/tmp/zt-fuzz-ca.XXXXXX");
	if (!mkdtemp(dir) || zt_ca_open(&ca, dir, true, err, sizeof(err)) < 0 ||
	    fi_token_key_open(&key, dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_ca_request: setup: %s\n", err);
		abort();
	}
	atexit(cleanup);
	svc = (struct fi_ca_service){.ca = ca, .key = key, .trust_domain = "cluster.local",
	                             .max_ttl_s = 86400, .has_pod_on_node = has_pod_on_node};
	bearer(ztunnel_auth, sizeof(ztunnel_auth), "node-1", "istio-system", "ztunnel");
	bearer(sleep_auth, sizeof(sleep_auth), "node-1", "demo", "sleep");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *line = NULL;
	size_t n = size, len;
	char auth[FI_TOKEN_MAX_LEN + 64], msg[256];
	const char *a = NULL;
	uint8_t *resp = NULL;
	size_t resp_len = 0;

	if ((len = fuzz_next(&p, &n, '\n', &line)) == (size_t)-1 || len == 0)
		return 0;
	switch (line[0]) {
	case 0: a = ztunnel_auth; break;
	case 1: a = sleep_auth; break;
	case 2: a = fuzz_cstr(auth, sizeof(auth), line + 1, len - 1); break;
	default: a = NULL; break;
	}
	fi_ca_service_handle(&svc, a, p ? p : (const uint8_t *)"", p ? n : 0, &resp, &resp_len, msg,
	                     sizeof(msg));
	free(resp);
	return 0;
}
