/* `sim-workload serve`: TCP listeners and their connections on one event loop, answering as
 * an echo, sink or banner (server-speaks-first) workload. */
#ifndef SW_SERVER_H
#define SW_SERVER_H

#include "opts.h"

/* Binds every listener, prints "listening ADDR" for each on stdout, and serves until SIGTERM
 * or SIGINT. Returns 0 after a signal, or -errno when a listener cannot be set up (the
 * reason is logged). Everything it created is freed before it returns. */
int sw_server_run(const struct sw_serve_opts *o);

#endif
