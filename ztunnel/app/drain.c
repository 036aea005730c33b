/* Shutdown state machine (drain.h): the decisions of spec §14, with the clock passed in. */
#include "app/drain.h"

void zt_drain_init(struct zt_drain *d, uint64_t deadline_ms)
{
	*d = (struct zt_drain){.state = ZT_DRAIN_RUNNING, .deadline_ms = deadline_ms};
}

const char *zt_drain_trigger_name(enum zt_drain_trigger t)
{
	switch (t) {
	case ZT_DRAIN_SIGTERM:
		return "SIGTERM";
	case ZT_DRAIN_SIGINT:
		return "SIGINT";
	case ZT_DRAIN_QUIT:
		return "/quitquitquit";
	}
	return "?";
}

enum zt_drain_action zt_drain_on_trigger(struct zt_drain *d, enum zt_drain_trigger t,
                                         uint64_t now_ms, size_t open)
{
	if (d->state == ZT_DRAIN_RUNNING) {
		d->state = ZT_DRAIN_DRAINING;
		d->trigger = t;
		d->started_ms = now_ms;
		d->ends_ms = now_ms + d->deadline_ms;
		d->open_at_start = open;
		return ZT_DRAIN_START;
	}
	/* spec §14: a second SIGINT exits at once, whatever started the drain. */
	if (t == ZT_DRAIN_SIGINT)
		return ZT_DRAIN_EXIT_NOW;
	return ZT_DRAIN_NONE;
}

enum zt_drain_action zt_drain_check(struct zt_drain *d, uint64_t now_ms, size_t open)
{
	if (d->state != ZT_DRAIN_DRAINING)
		return ZT_DRAIN_NONE;
	if (open == 0) {
		d->state = ZT_DRAIN_DONE;
		d->open_at_end = 0;
		return ZT_DRAIN_FINISHED;
	}
	if (now_ms >= d->ends_ms) {
		d->state = ZT_DRAIN_DONE;
		d->open_at_end = open;
		return ZT_DRAIN_EXPIRED;
	}
	return ZT_DRAIN_NONE;
}

uint64_t zt_drain_remaining(const struct zt_drain *d, uint64_t now_ms)
{
	if (d->state != ZT_DRAIN_DRAINING || now_ms >= d->ends_ms)
		return 0;
	return d->ends_ms - now_ms;
}
