/* A non-blocking stream socket on the loop, plain TCP or TLS, behind one read/write API.
 * TLS may need the opposite readiness (a read that must write, a write that must read);
 * the socket maps what the TLS layer waits for onto epoll interest and reports plain
 * ZT_IO_READ / ZT_IO_WRITE readiness to its owner, who just calls read/write again. */
#ifndef ZT_SOCK_H
#define ZT_SOCK_H

#include <stdbool.h>
#include <sys/types.h>

#include "runtime/loop.h"

struct zt_tls_conn;
struct zt_sock;

typedef void (*zt_sock_cb)(struct zt_sock *s, unsigned events, void *arg);
typedef void (*zt_sock_done_cb)(struct zt_sock *s, int err, void *arg);

struct zt_sock {
	struct zt_loop *loop;
	int fd;
	struct zt_tls_conn *tls;
	struct zt_io io;
	unsigned want;        /* readiness the owner waits for */
	unsigned tls_rd_need; /* what a blocked TLS read waits for (default READ) */
	unsigned tls_wr_need; /* what a blocked TLS write waits for (default WRITE) */
	zt_sock_cb cb;
	void *arg;
	zt_sock_done_cb hs_cb; /* pending handshake completion */
	void *hs_arg;
	struct zt_defer buffered; /* reports records TLS read ahead, which epoll cannot see */
	bool check_buffered;      /* handshake done, the owner has not been told of them yet */
};

/* Takes ownership of fd (non-blocking, connected) and of tls (may be NULL for plain TCP).
 * cb fires with ZT_IO_READ/ZT_IO_WRITE for what zt_sock_want() asked. Returns 0 or -errno;
 * on failure nothing is owned. */
int zt_sock_start(struct zt_sock *s, struct zt_loop *loop, int fd, struct zt_tls_conn *tls,
                  zt_sock_cb cb, void *arg);
/* Sets the readiness the owner waits for (ZT_IO_READ|ZT_IO_WRITE, may be 0). */
void zt_sock_want(struct zt_sock *s, unsigned events);
/* Replaces the readiness callback (for handing a socket from a connector to its user). */
void zt_sock_set_cb(struct zt_sock *s, zt_sock_cb cb, void *arg);
/* Moves a started socket to new storage with a new callback; src is left closed-empty.
 * Not allowed during a handshake. */
void zt_sock_move(struct zt_sock *dst, struct zt_sock *src, zt_sock_cb cb, void *arg);

/* Runs the TLS handshake on the loop; done fires exactly once, never from inside this call,
 * with 0 or an error (see zt_tls_conn_handshake) unless the socket is closed first. Plain
 * sockets complete on the first iteration. The readiness callback is not called meanwhile. */
void zt_sock_handshake(struct zt_sock *s, zt_sock_done_cb done, void *arg);

/* Read: bytes (> 0), 0 on EOF, -EAGAIN, or an error (-errno, ZT_E_TLS, ZT_E_CLOSED). */
ssize_t zt_sock_read(struct zt_sock *s, void *buf, size_t len);
/* Write: bytes (> 0, may be partial), -EAGAIN, or an error. */
ssize_t zt_sock_write(struct zt_sock *s, const void *buf, size_t len);
/* Half-close the sending side (TLS close_notify, then TCP FIN). 0, -EAGAIN or an error. */
int zt_sock_shutdown_write(struct zt_sock *s);
/* Whether TLS holds bytes (decrypted, or read ahead and not yet decrypted) that readiness will
 * not announce. TLS reads ahead, so an owner must read until -EAGAIN on each ZT_IO_READ (what
 * is left then is part of a record, whose rest readiness announces). Bytes that came with the
 * peer's last handshake message are reported as ZT_IO_READ from the loop once the owner first
 * wants ZT_IO_READ. */
bool zt_sock_pending(const struct zt_sock *s);
/* Why the socket failed, for logs ("" when unknown). */
const char *zt_sock_error(const struct zt_sock *s);

/* Stops watching, frees the TLS state and closes the fd. Idempotent. */
void zt_sock_close(struct zt_sock *s);

#endif
