/* Fuzz target: fake-istiod's token check (fake-istiod/token.h) on an attacker's bearer token.
 * Input: first byte even: the rest is the token text as received. Odd: the rest is
 * "<header JSON>\n<claims JSON>", signed here with the key the checker holds, so the claim
 * parsing behind the signature check is reached too. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fake-istiod/token.h"
#include "runtime/log.h"
#include "tests/fuzz/fuzz.h"

static char dir[64];
static struct fi_token_key *key;
static const uint8_t secret[32] = "fuzz-token-key-32-bytes-long....";

static void cleanup(void)
{
	char path[128];

	fi_token_key_free(key);
	snprintf(path, sizeof(path), "%s/%s", dir, FI_TOKEN_KEY_FILE);
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256], path[128];
	int fd;

	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	snprintf(dir, sizeof(dir), "/tmp/zt-fuzz-jwt.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/%s", dir, FI_TOKEN_KEY_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, secret, sizeof(secret)) != (ssize_t)sizeof(secret) || close(fd) < 0)
		abort();
	if (fi_token_key_open(&key, dir, err, sizeof(err)) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

/* base64url without padding of p[0..n) appended at out[*at]. */
static void b64url(char *out, size_t size, size_t *at, const uint8_t *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);
		size_t k = n - i >= 3 ? 4 : n - i + 1;
		for (size_t j = 0; j < k && *at + 1 < size; j++)
			out[(*at)++] = tab[(v >> (18 - 6 * j)) & 63];
	}
	out[*at] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char tok[FI_TOKEN_MAX_LEN * 2];
	struct fi_token_claims claims;
	char why[256];

	if (!size)
		return 0;
	if (data[0] & 1) {
		const uint8_t *p = data + 1, *hdr = NULL;
		size_t n = size - 1, hlen = fuzz_next(&p, &n, '\n', &hdr), at = 0;
		uint8_t mac[EVP_MAX_MD_SIZE];
		unsigned maclen = 0;

		if (hlen == (size_t)-1 || n > FI_TOKEN_MAX_LEN)
			return 0;
		b64url(tok, sizeof(tok), &at, hdr, hlen);
		tok[at++] = '.';
		if (p)
			b64url(tok, sizeof(tok), &at, p, n);
		HMAC(EVP_sha256(), secret, sizeof(secret), (const uint8_t *)tok, at, mac, &maclen);
		tok[at++] = '.';
		b64url(tok, sizeof(tok), &at, mac, maclen);
	} else {
		fuzz_cstr(tok, sizeof(tok), data + 1, size - 1);
	}
	fi_token_verify(key, tok, 1700000000, &claims, why, sizeof(why));
	return 0;
}
