/* See loop_fixture.h. */
#include "loop_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/live.h"

static int skipped;

uint64_t fx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void fx_run_for(struct zt_loop *loop, uint64_t ms)
{
	uint64_t end = fx_now_ms() + ms;
	uint64_t now;

	while ((now = fx_now_ms()) < end)
		zt_loop_run_once(loop, (int)(end - now < 20 ? end - now : 20));
}

long fx_live(const char *name)
{
	const struct zt_live *l = zt_live_get(name);

	return l ? l->count : 0;
}

static void add_alive(const struct zt_live *l, void *arg)
{
	char *buf = arg;
	size_t used = strlen(buf);

	if (l->count != 0 && used < 400)
		snprintf(buf + used, 512 - used, " %s=%ld", l->name, l->count);
}

void fx_assert_no_live(void)
{
	char alive[512] = "";

	zt_live_foreach(add_alive, alive);
	ck_assert_msg(alive[0] == '\0', "objects still alive:%s", alive);
}

void fx_finish(struct zt_loop **loop)
{
	if (*loop) {
		for (int i = 0; i < 3; i++)
			zt_loop_run_once(*loop, 0);
		zt_loop_free(*loop);
		*loop = NULL;
	}
	fx_assert_no_live();
}

bool fx_is_root(void)
{
	const char *fork_mode = getenv("CK_FORK");

	/* A case moves its own process into a new namespace: only safe in a forked test. */
	return geteuid() == 0 && !(fork_mode && strcmp(fork_mode, "no") == 0);
}

void fx_add_root_test_(TCase *tc, const char *suite, const TTest *fn, const char *name)
{
	if (fx_is_root()) {
		tcase_add_test(tc, fn);
		return;
	}
	fx_skip(suite, name, "needs root and forked tests");
}

void fx_skip(const char *suite, const char *name, const char *why)
{
	printf("SKIP %s/%s (%s)\n", suite, name, why);
	skipped++;
}

int fx_skipped(void)
{
	return skipped;
}
