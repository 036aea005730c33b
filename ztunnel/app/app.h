/* The ztunnel daemon as one object: configuration in, every long-lived part (state store,
 * xDS client or local config, certificate manager, admin and readiness servers, workload
 * proxies: one in dedicated mode, one per pod from the ZDS client in shared mode, signals)
 * created in a fixed order and torn down in reverse. main() only parses flags and runs it;
 * tests can run it in-process. */
#ifndef ZT_APP_H
#define ZT_APP_H

#include <stddef.h>

#include "config/config.h"
#include "runtime/loop.h"

struct zt_app;

/* Builds the daemon from cfg (borrowed; must outlive the app) on loop: loads local config,
 * starts the xDS client, binds the admin and readiness servers. Returns NULL with a message
 * naming the failing part in err. */
struct zt_app *zt_app_new(struct zt_loop *loop, const struct zt_config *cfg, char *err,
                          size_t errlen);
/* Runs until SIGTERM/SIGINT or POST /quitquitquit, then drains (spec §14, app/drain.h):
 * every listener and the admin, metrics and readiness ports close at once, inbound HBONE
 * connections get GOAWAY, open connections relay on until they end or the termination
 * deadline; what is left is closed and counted in the last log line. A second SIGINT exits
 * the process at once (status 0). Returns 0 or a negative error. */
int zt_app_run(struct zt_app *app);
/* Starts the drain as SIGTERM does. */
void zt_app_stop(struct zt_app *app);
void zt_app_free(struct zt_app *app);

#endif
