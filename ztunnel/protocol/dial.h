/* Outgoing TCP connections by host name on the loop: the name is resolved off the loop (one
 * short-lived thread per lookup; IP literals skip it), then each address is tried in turn with
 * a non-blocking connect, all within one deadline. Used by the control-plane clients (xDS,
 * CA) whose addresses are DNS names such as istiod.istio-system.svc. */
#ifndef ZT_DIAL_H
#define ZT_DIAL_H

#include <stdint.h>

#include "runtime/loop.h"

struct zt_dial;

/* fd: a connected, non-blocking, close-on-exec socket now owned by the callee, or -1 with err
 * (-errno of the last address tried, ZT_E_NOTFOUND when the name does not resolve,
 * ZT_E_TIMEOUT when the deadline passed). The dial is freed after this returns. */
typedef void (*zt_dial_cb)(int fd, int err, void *arg);

/* Starts connecting to host (DNS name or IP literal, no brackets) on port, for at most
 * timeout_ms (> 0). cb fires exactly once, from the loop (never inside this call), unless
 * zt_dial_cancel() comes first. Returns the dial, or NULL with *err (ZT_E_RANGE: host empty or
 * longer than 253 bytes, or port 0; -errno). */
struct zt_dial *zt_dial_start(struct zt_loop *loop, const char *host, uint16_t port,
                              uint64_t timeout_ms, zt_dial_cb cb, void *arg, int *err);

/* Abandons a dial whose callback has not fired: closes what it opened, cb never runs. A lookup
 * thread still running finishes on its own and frees its state. Accepts NULL. */
void zt_dial_cancel(struct zt_dial *d);

#endif
