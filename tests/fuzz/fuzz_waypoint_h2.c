/* Fuzz target: the waypoint's HTTP/2 L7 path (sim/sim-waypoint/h2l7.h): a downstream
 * client's h2c bytes and an upstream server's bytes fed to wp_h2l7 in any interleaving, each
 * request's headers (method, path, authority, header list) decided by wp_authz_check against
 * a Waypoint with a DENY and an ALLOW policy on paths, methods, hosts and a header condition.
 * Input: records of a direction byte (bit 0: upstream; 0xff: the upstream goes away) and a
 * two-byte big-endian length, then that many bytes; the client preface is sent first. */
#include <stdlib.h>

#include "runtime/log.h"
#include "sim/sim-waypoint/h2l7.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/waypoint_fixture.h"

/* The ALLOW policy's paths and hosts (tests/fuzz/waypoint_fixture.h has the rest). */
static char *allow_paths[] = {"/api/*", "*"}, *allow_hosts[] = {"*.svc.cluster.local", "web*"};
static struct fuzz_waypoint fx;

struct sink {
	size_t down, up, decided;
	bool have_up;
};

static void decide(void *arg, struct wp_request *rq, struct wp_decision *out)
{
	struct sink *s = arg;

	s->decided++;
	fuzz_waypoint_caller(rq);
	wp_authz_check(&fx.wp, rq, out);
}

static void to_down(void *arg, const uint8_t *p, size_t n)
{
	(void)p;
	((struct sink *)arg)->down += n;
}

static void to_up(void *arg, const uint8_t *p, size_t n)
{
	(void)p;
	((struct sink *)arg)->up += n;
}

static int need_up(void *arg)
{
	((struct sink *)arg)->have_up = true;
	return 0;
}

static void done(void *arg, const struct wp_h2_done *d)
{
	(void)arg;
	/* 0: the downstream went away before a response (logged as Envoy does). */
	if (!d->method || !d->path || (d->status != 0 && (d->status < 100 || d->status > 999)))
		__builtin_trap();
}

static uint64_t now(void *arg)
{
	(void)arg;
	return 1000;
}

static const struct wp_h2l7_cbs cbs = {decide, to_down, to_up, need_up, done, now};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	fuzz_waypoint_init(&fx, allow_paths, allow_hosts);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct sink s = {0};
	struct wp_h2l7 *h;
	bool down_ok = true, up_ok = true;

	if (wp_h2l7_new(&h, &cbs, &s) < 0)
		abort();
	if (wp_h2l7_down(h, (const uint8_t *)preface, sizeof(preface) - 1) < 0)
		down_ok = false;
	while (size >= 3 && (down_ok || up_ok)) {
		uint8_t dir = data[0];
		size_t len = (size_t)data[1] << 8 | data[2];

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (dir == 0xff) {
			wp_h2l7_up_gone(h);
			up_ok = false;
		} else if ((dir & 1) && up_ok && s.have_up) {
			up_ok = wp_h2l7_up(h, data, len) == 0;
		} else if (!(dir & 1) && down_ok) {
			down_ok = wp_h2l7_down(h, data, len) == 0;
		}
		data += len;
		size -= len;
	}
	(void)wp_h2l7_idle(h);
	wp_h2l7_free(h);
	return 0;
}
