/* A workload proxy: the listener set ztunnel runs for one workload (spec §1.1): 15001
 * outbound capture, 15006 inbound plaintext, 15008 inbound HBONE, with that workload's HBONE
 * pool. Dedicated mode runs one for the process's workload; in-pod mode one per pod, its
 * sockets made inside the pod's network namespace through socket_cb. The halves live in
 * outbound.c and inbound.c; what they share (the proxy object, settings, sockets, labels) is
 * in shared.h. */
#ifndef ZT_PROXY_H
#define ZT_PROXY_H

#include <jansson.h>
#include <stddef.h>

#include "config/config.h"
#include "proxy/shared.h"

/* The proxy's settings from the environment (spec §9.1); strings borrowed from cfg. */
void zt_proxy_settings_from_config(struct zt_proxy_settings *s, const struct zt_config *cfg);

/* Starts the listener set for the workload ns/name/sa (uid NULL when unknown). Fails, with
 * the port and reason in err, if a listener cannot be opened. */
int zt_proxy_new(struct zt_proxy **out, struct zt_proxy_ctx *ctx, const char *ns, const char *name,
                 const char *sa, const char *uid, const struct zt_proxy_opts *o, char *err,
                 size_t errlen);
/* Closes the listeners and every connection of this workload. Accepts NULL. */
void zt_proxy_free(struct zt_proxy *p);
/* Graceful drain (spec §14): closes every listener at once and sends GOAWAY on the inbound
 * HBONE connections (no new streams); what is already proxied keeps relaying until it ends
 * or zt_proxy_free. Idempotent; accepts NULL. */
void zt_proxy_drain(struct zt_proxy *p);
/* Proxied connections of p still open, inbound and outbound (an inbound HBONE connection
 * is not one: after GOAWAY it closes with its last stream). */
size_t zt_proxy_open(const struct zt_proxy *p);
json_t *zt_proxy_dump(const struct zt_proxy *p);

#endif
