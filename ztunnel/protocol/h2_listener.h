/* A TCP listener whose accepted connections run TLS, then HTTP/2 server connections with the
 * caller's callbacks: the accept/handshake/serve plumbing shared by gRPC servers and HBONE
 * inbound. Handshakes are bounded in time and number; the listener owns every connection
 * it accepted until that connection's on_close, and closes the rest when freed. */
#ifndef ZT_H2_LISTENER_H
#define ZT_H2_LISTENER_H

#include <stddef.h>

#include "protocol/h2.h"
#include "protocol/tls.h"
#include "runtime/addr.h"
#include "runtime/loop.h"

struct zt_h2_listener;

struct zt_h2_listener_opts {
	struct zt_tls_server *tls;        /* required; borrowed, must outlive the listener */
	struct zt_h2_settings settings;   /* zero: zt_h2_settings_default(server) */
	const struct zt_h2_conn_cbs *cbs; /* on_close is chained: the listener sees it first */
	void *arg;                        /* passed to cbs (zt_h2_conn_arg() is the listener's) */
	unsigned handshake_timeout_ms;    /* 0: 10 s */
	size_t max_conns;                 /* 0: 4096; further accepts are closed at once */
};

/* Binds addr ("ip:port", port 0 picks a free one) and starts accepting. Returns 0, or -errno
 * / ZT_E_PARSE with a message naming the address in err. */
int zt_h2_listener_new(struct zt_h2_listener **out, struct zt_loop *loop, const char *addr,
                       const struct zt_h2_listener_opts *o, char *err, size_t errlen);
/* The bound address (with the port actually chosen). */
const struct zt_sockaddr *zt_h2_listener_addr(const struct zt_h2_listener *l);
/* Connections accepted and not yet closed (handshaking or serving). */
size_t zt_h2_listener_conns(const struct zt_h2_listener *l);
/* Stops accepting and sends GOAWAY on every serving connection (graceful drain). */
void zt_h2_listener_shutdown(struct zt_h2_listener *l);
/* Stops accepting and closes every connection: handshakes at once, serving connections on
 * the next loop iteration, without calling cbs again (run the loop once more before freeing
 * it). Accepts NULL. */
void zt_h2_listener_free(struct zt_h2_listener *l);

#endif
