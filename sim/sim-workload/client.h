/* `sim-workload client`: opens --connections TCP connections to one server, --concurrency at
 * a time, and runs a bulk transfer or request/response round trips on each, checking every
 * byte that comes back. */
#ifndef SW_CLIENT_H
#define SW_CLIENT_H

#include "opts.h"
#include "report.h"

/* Runs every connection to completion (success, error or --timeout without progress) or until
 * SIGTERM/SIGINT, which count the unfinished ones as errors, and fills r (initialised by the
 * caller). Returns 0, or -errno if the event loop cannot run. */
int sw_client_run(const struct sw_client_opts *o, struct sw_report *r);

#endif
