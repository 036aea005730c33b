/* Socket options of spec §1.2, in one place for every TCP socket ztunnel and the tools make:
 * listeners, accepted sockets, outgoing HBONE and plain connections. Only setsockopt/fcntl on a
 * given fd: no loop, no state. */
#ifndef ZT_SOCKOPT_H
#define ZT_SOCKOPT_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/addr.h"

/* Defaults from zt_sockopt_default() in brackets. */
struct zt_sockopt {
	/* SO_MARK on every socket when mark_set (PACKET_MARK; needs CAP_NET_ADMIN) [off]. */
	bool mark_set;
	uint32_t mark;
	/* TCP keepalive [on: 180 s idle, 180 s interval, 9 probes]. */
	bool keepalive;
	uint32_t keepalive_time_s;
	uint32_t keepalive_interval_s;
	uint32_t keepalive_retries;
	/* TCP_USER_TIMEOUT in ms; 0: left unset [0]. */
	uint32_t user_timeout_ms;
};

/* Fills the defaults listed above. */
void zt_sockopt_default(struct zt_sockopt *o);

/* O_NONBLOCK and FD_CLOEXEC on fd. Returns 0 or -errno. */
int zt_sockopt_nonblock(int fd);

/* SO_MARK when o->mark_set. Returns 0 or -errno. */
int zt_sockopt_mark(const struct zt_sockopt *o, int fd);

/* TCP_NODELAY, keepalive and TCP_USER_TIMEOUT as o says, for accepted and outgoing sockets.
 * Stops at the first failure: returns -errno with *what naming the option (what may be NULL),
 * else 0. */
int zt_sockopt_tcp(const struct zt_sockopt *o, int fd, const char **what);

/* IP_TRANSPARENT (and IPV6_TRANSPARENT for AF_INET6) on a listener. Returns 0 or -errno. */
int zt_sockopt_transparent(int fd, int family);

/* IP_TRANSPARENT + IP_FREEBIND (+ IPV6_TRANSPARENT) then bind(src, 0) on an outgoing socket,
 * so that it connects with a spoofed source (spec §7.2 step 6). Returns 0 or -errno. */
int zt_sockopt_bind_spoofed(int fd, int family, const struct zt_ip *src);

/* SO_ORIGINAL_DST (v4, then v6), else the socket's local address. Returns 0 or -errno. */
int zt_sockopt_original_dst(int fd, struct zt_sockaddr *out);

/* Starts a non-blocking connect of fd to dst; 0 when in progress or done, else -errno. */
int zt_sockopt_connect(int fd, const struct zt_sockaddr *dst);

#endif
