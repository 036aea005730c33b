/* The shutdown state machine of the daemon (spec §14), pure: events and the clock in, what
 * to do out; no I/O. RUNNING until the first trigger (SIGTERM, SIGINT or /quitquitquit),
 * then DRAINING (listeners closed, open connections relay on) until the last connection ends
 * or the deadline passes, then DONE. Invariant: the drain starts once; only a second SIGINT
 * while draining asks for an immediate exit; any other repeated trigger is ignored. */
#ifndef ZT_DRAIN_H
#define ZT_DRAIN_H

#include <stddef.h>
#include <stdint.h>

enum zt_drain_state { ZT_DRAIN_RUNNING, ZT_DRAIN_DRAINING, ZT_DRAIN_DONE };

enum zt_drain_trigger { ZT_DRAIN_SIGTERM, ZT_DRAIN_SIGINT, ZT_DRAIN_QUIT };

enum zt_drain_action {
	ZT_DRAIN_NONE,     /* nothing to do (still draining, or a repeated trigger) */
	ZT_DRAIN_START,    /* close every listener and server now, GOAWAY inbound HBONE */
	ZT_DRAIN_EXIT_NOW, /* second SIGINT: exit 0 at once */
	ZT_DRAIN_FINISHED, /* every connection ended: stop, nothing left to close */
	ZT_DRAIN_EXPIRED,  /* the deadline passed: close what is left and stop */
};

struct zt_drain {
	enum zt_drain_state state;
	enum zt_drain_trigger trigger; /* the one that started the drain */
	uint64_t deadline_ms;          /* the drain's length (CONNECTION_TERMINATION_DEADLINE) */
	uint64_t started_ms, ends_ms;  /* loop clock, valid from DRAINING on */
	size_t open_at_start;          /* connections open when the drain began */
	size_t open_at_end;            /* ... still open when it ended (closed by force) */
};

void zt_drain_init(struct zt_drain *d, uint64_t deadline_ms);
/* A trigger at now_ms with open connections open. Returns START for the first one,
 * EXIT_NOW for a SIGINT while draining, NONE otherwise. */
enum zt_drain_action zt_drain_on_trigger(struct zt_drain *d, enum zt_drain_trigger t,
                                         uint64_t now_ms, size_t open);
/* A check while draining: FINISHED when open is 0, EXPIRED when now_ms reached the deadline
 * (open is then what gets closed by force), NONE otherwise or when not draining. Moves to
 * DONE on FINISHED and EXPIRED. */
enum zt_drain_action zt_drain_check(struct zt_drain *d, uint64_t now_ms, size_t open);
/* Milliseconds left until the deadline (0 when passed or not draining). */
uint64_t zt_drain_remaining(const struct zt_drain *d, uint64_t now_ms);
const char *zt_drain_trigger_name(enum zt_drain_trigger t);

#endif
