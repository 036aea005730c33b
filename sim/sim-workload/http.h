/* sim-workload's HTTP mode: HTTP/1.1 (keep-alive) and h2c with prior knowledge on the same
 * port, chosen by the connection's first bytes. Every request gets 200 and a text body
 * naming the server and what it saw: method, path, headers and the source address, so a
 * client (curl in a pod) can check what a proxy on the way changed. Malformed requests get
 * 400 and a close; request heads are bounded (SW_HTTP_MAX_HEAD, 431). */
#ifndef SW_HTTP_H
#define SW_HTTP_H

#include <sys/socket.h>

#include "runtime/loop.h"

#define SW_HTTP_MAX_HEAD (64 * 1024)

/* Takes over fd (accepted, non-blocking). banner is copied ("hello from NAME"). */
void sw_http_conn_start(struct zt_loop *loop, int fd, const struct sockaddr_storage *ss,
                        socklen_t sslen, const char *banner);
/* Closes every HTTP connection (exit). */
void sw_http_close_all(void);

#endif
