/* The outbound half of a workload proxy (spec §7.1): the 15001 capture listener and the
 * connections it accepts, each routed and carried over HBONE or plain TCP. */
#ifndef ZT_OUTBOUND_H
#define ZT_OUTBOUND_H

#include <jansson.h>
#include <stddef.h>

#include "proxy/shared.h"

/* Opens p's outbound listener. Returns 0 or -errno with err set. */
int zt_outbound_start(struct zt_proxy *p, char *err, size_t errlen);
/* Closes the listener and every outbound connection of p (each reports its close). */
void zt_outbound_stop(struct zt_proxy *p);
/* For /config_dump (new reference). */
json_t *zt_outbound_dump(const struct zt_proxy *p);
/* Closes the listener only; open connections go on (drain, spec §14). */
void zt_outbound_drain(struct zt_proxy *p);
/* Outbound connections of p not yet closed. */
size_t zt_outbound_open(const struct zt_proxy *p);

#endif
