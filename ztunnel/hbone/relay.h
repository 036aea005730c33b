/* The byte pump of a proxied connection: copies bytes both ways between two ends, each a TCP
 * socket or an HTTP/2 stream, with backpressure, half-close and reset propagation (spec §2.6).
 * Invariant: the relay never holds more than a fixed bound per direction (from TCP, one pipe of
 * 64 KiB, 1 MiB after 10 MiB, or one buffer of at most 256 KiB; from HTTP/2, the stream's
 * receive window, which only reopens once bytes reached the TCP side); it reports once. */
#ifndef ZT_RELAY_H
#define ZT_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/loop.h"

struct zt_relay;
struct zt_h2_stream;

/* One end: a connected TCP socket (fd >= 0, st NULL) or an open HTTP/2 stream (st, fd -1).
 * A socket is taken over (made non-blocking, closed by the relay). A stream stays the HTTP/2
 * connection's; the relay installs its own stream callbacks and detaches them when done. */
struct zt_relay_end {
	int fd;
	struct zt_h2_stream *st;
};

struct zt_relay_opts {
	/* TCP to TCP: copy through a buffer instead of splice(2) (benchmarks, tests). */
	bool no_splice;
};

/* What one relay did, reported once when it ends. "up" is client to server. */
struct zt_relay_result {
	uint64_t bytes_up;   /* bytes delivered to the server end */
	uint64_t bytes_down; /* bytes delivered to the client end */
	uint64_t duration_ms;
	/* NULL when both directions finished cleanly; else a static text such as "connection
	 * reset by client", "stream reset by server" or the reason given to zt_relay_abort(). */
	const char *error;
};

/* Fires once, from the loop (never inside a relay call); r is freed when it returns. */
typedef void (*zt_relay_done_cb)(struct zt_relay *r, const struct zt_relay_result *res, void *arg);

/* Live state, for /config_dump and tests. */
struct zt_relay_stats {
	uint64_t bytes_up, bytes_down;
	size_t queued_up, queued_down; /* read from one end, not yet delivered to the other */
	size_t alloc;                  /* buffer bytes allocated (pipes not included) */
};

/* Starts relaying between client and server.
 * - TCP<->TCP: splice(2) through a pipe per direction (64 KiB, 1 MiB after 10 MiB), or
 *   read/write where splice says EINVAL. TCP<->HTTP/2 stream: reads sized by the bytes moved
 *   (1 KiB, 16 KiB after 128 KiB, 256 KiB after 10 MiB; spec §2.6), from TCP straight into
 *   the stream's send buffer (zt_h2_stream_reserve); to TCP straight from the received DATA,
 *   through a buffer only for what the socket does not take at once.
 * - Half-close: EOF on one side becomes shutdown(SHUT_WR) or END_STREAM on the other;
 *   END_STREAM, and RST_STREAM with NO_ERROR or CANCEL, count as EOF.
 * - Resets: a TCP reset (or I/O error) resets the other side, RST_STREAM(CONNECT_ERROR) or a TCP
 *   RST (SO_LINGER 0); a stream reset with any other code, or the loss of its HTTP/2
 *   connection, resets the TCP side.
 * - A stream's receive window must not exceed 64 MiB (more unconsumed bytes fail the relay).
 *   Start a stream's relay from the callback that made it ready (the server's on_request
 *   after responding, the client's on_headers with 200) so no DATA is missed.
 * - splice(2) into a socket can raise SIGPIPE: the process must ignore SIGPIPE.
 * opts may be NULL. On success *out is the relay (valid until cb returns) and every end is the
 * relay's. Returns 0, ZT_E_UNSUPPORTED (two streams, or an end that is neither) or -errno; on
 * failure nothing was taken: the caller still owns the sockets and the streams. */
int zt_relay_start(struct zt_relay **out, struct zt_loop *loop, struct zt_relay_end client,
                   struct zt_relay_end server, const struct zt_relay_opts *opts,
                   zt_relay_done_cb cb, void *arg);

/* Ends the relay now (policy change, pod removal): TCP ends are reset, a stream gets
 * RST_STREAM(CANCEL). reason (static text, borrowed for good) is reported as the error. Does
 * nothing if the relay already ended; cb still fires from the loop, not from this call. */
void zt_relay_abort(struct zt_relay *r, const char *reason);

void zt_relay_stats(const struct zt_relay *r, struct zt_relay_stats *out);

/* Relays alive in the process (started, done callback not yet returned). */
long zt_relay_live(void);

#endif
