/* HTTP/2 connections and streams on nghttp2, used I/O-free (mem_recv/mem_send) over a
 * zt_sock. Output is flushed once per loop iteration. Backpressure both ways: a stream's send
 * buffer is bounded (zt_h2_stream_write accepts what fits; on_writable says when to resume)
 * and received DATA is only acknowledged to the peer (window update) when the owner calls
 * zt_h2_stream_consume(), i.e. after the bytes reached their destination.
 *
 * Lifetimes: a stream ends with exactly one on_close; it is freed right after, so the owner
 * must drop its pointer there. A connection ends with exactly one on_close (from the loop,
 * never inside another callback of it) and is freed when that callback returns. */
#ifndef ZT_H2_H
#define ZT_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/sock.h"

struct zt_h2_conn;
struct zt_h2_stream;

/* spec §2.3 defaults come from zt_h2_settings_default(). */
struct zt_h2_settings {
	uint32_t stream_window;	     /* SETTINGS_INITIAL_WINDOW_SIZE */
	uint32_t conn_window;	     /* connection receive window */
	uint32_t max_frame;	     /* SETTINGS_MAX_FRAME_SIZE */
	uint32_t max_header_list;    /* SETTINGS_MAX_HEADER_LIST_SIZE, also enforced on receipt */
	uint32_t max_streams;	     /* SETTINGS_MAX_CONCURRENT_STREAMS (server) */
	uint32_t stream_send_buffer; /* bytes a stream buffers before write refuses more */
	uint32_t ping_interval_ms;   /* 0: no keepalive PING */
	uint32_t ping_timeout_ms;    /* no PING ACK within this: connection dropped */
};

void zt_h2_settings_default(struct zt_h2_settings *s, bool server);

struct zt_h2_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

#define ZT_H2_HDR(n, v) ((struct zt_h2_header){(n), sizeof(n) - 1, (v), strlen(v)})

/* Headers passed to callbacks are valid only during the call. */
struct zt_h2_stream_cbs {
	/* Response headers (client) or trailers (both sides). end: END_STREAM came with them. */
	void (*on_headers)(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n,
			   bool end, void *arg);
	/* DATA payload; call zt_h2_stream_consume(st, len) once it is delivered. */
	void (*on_data)(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg);
	/* The peer ended its side (END_STREAM). */
	void (*on_end)(struct zt_h2_stream *st, void *arg);
	/* The send buffer drained after a refused or partial write. */
	void (*on_writable)(struct zt_h2_stream *st, void *arg);
	/* Stream gone; error_code is the HTTP/2 code (0: clean). st is freed after this. */
	void (*on_close)(struct zt_h2_stream *st, uint32_t error_code, void *arg);
};

struct zt_h2_conn_cbs {
	/* Server: a new request (the stream's first header block). Attach callbacks with
	 * zt_h2_stream_set_cbs() and answer with zt_h2_stream_respond() (now or later). */
	void (*on_request)(struct zt_h2_conn *c, struct zt_h2_stream *st,
			   const struct zt_h2_header *h, size_t n, bool end, void *arg);
	/* The peer sent GOAWAY: no new streams on this connection. */
	void (*on_goaway)(struct zt_h2_conn *c, uint32_t error_code, void *arg);
	/* The connection is finished; reason is a static string ("peer closed", "ping
	 * timeout", "protocol error", ...). c is freed after this returns. */
	void (*on_close)(struct zt_h2_conn *c, const char *reason, void *arg);
	/* The peer's SETTINGS arrived (each one, not ACKs); its values are in effect, e.g. for
	 * zt_h2_conn_can_open(). The first one completes the HTTP/2 handshake. */
	void (*on_settings)(struct zt_h2_conn *c, void *arg);
};

/* Takes over an established (handshake done) socket: s is moved into the connection and the
 * caller's copy must not be used again. Sends the SETTINGS preface. Returns 0 or an error;
 * on error the socket is closed. */
int zt_h2_conn_new(struct zt_h2_conn **out, struct zt_loop *loop, struct zt_sock *s, bool server,
		   const struct zt_h2_settings *set, const struct zt_h2_conn_cbs *cbs, void *arg);
/* Graceful: GOAWAY, no new streams; closes when the last stream ends. A server sends the
 * shutdown notice first and the final GOAWAY ZT_H2_GOAWAY_GRACE_MS later. */
#define ZT_H2_GOAWAY_GRACE_MS 1000
void zt_h2_conn_shutdown(struct zt_h2_conn *c);
/* For an abusive peer: GOAWAY with code (e.g. NGHTTP2_ENHANCE_YOUR_CALM), no new stream is
 * accepted, and the connection closes once the GOAWAY is written. */
void zt_h2_conn_terminate(struct zt_h2_conn *c, uint32_t code);
/* Immediate: every stream gets on_close(CANCEL), then the connection's on_close(reason). */
void zt_h2_conn_close(struct zt_h2_conn *c, const char *reason);
/* Streams open now, and whether a new one may be opened (not draining, under the peer's
 * stream limit). */
size_t zt_h2_conn_streams(const struct zt_h2_conn *c);
bool zt_h2_conn_can_open(const struct zt_h2_conn *c);
/* The peer's SETTINGS_MAX_CONCURRENT_STREAMS as currently in effect (before its SETTINGS
 * arrive: the value assumed for it, 1000 for a client). */
uint32_t zt_h2_conn_peer_max_streams(const struct zt_h2_conn *c);
/* Whether the connection is going away (failed or closed; its streams' on_close follow). A
 * stream's on_close(CANCEL) during that is a lost connection, not a peer's RST_STREAM. */
bool zt_h2_conn_closing(const struct zt_h2_conn *c);
/* The socket, e.g. for the TLS peer identity (borrowed). */
struct zt_sock *zt_h2_conn_sock(struct zt_h2_conn *c);
void *zt_h2_conn_arg(const struct zt_h2_conn *c);
/* Live connections and streams in the process. */
size_t zt_h2_conn_live(void);
size_t zt_h2_stream_live(void);

/* Client: opens a stream with the given header block (pseudo-headers first). With end, no
 * body follows. Returns the stream (owned by the connection) or NULL with *err set. */
struct zt_h2_stream *zt_h2_request(struct zt_h2_conn *c, const struct zt_h2_header *h, size_t n,
				   bool end, const struct zt_h2_stream_cbs *cbs, void *arg,
				   int *err);

void zt_h2_stream_set_cbs(struct zt_h2_stream *st, const struct zt_h2_stream_cbs *cbs, void *arg);
/* Server: sends response headers (":status" is added from status). With end, the response
 * has no body. Returns 0 or an error. */
int zt_h2_stream_respond(struct zt_h2_stream *st, int status, const struct zt_h2_header *h,
			 size_t n, bool end);
/* Queues body bytes; returns how many were accepted (0 when the buffer is full: wait for
 * on_writable), or an error if the stream is no longer writable. */
ssize_t zt_h2_stream_write(struct zt_h2_stream *st, const void *p, size_t len);
/* Zero-copy variant of zt_h2_stream_write for a reader that fills the send buffer in place
 * (e.g. recv() from a socket): makes up to len writable bytes available at *p and returns how
 * many; the caller writes up to that many there and queues them with zt_h2_stream_commit()
 * before any other call on the stream. When nothing is queued that is len (the buffer grows to
 * fit); else only the room already allocated after the queued bytes, which never move. Returns
 * 0 when that room is too small (on_writable follows once the buffer is empty), or ZT_E_STATE
 * when the stream is no longer writable. So the buffer holds at most one reader's chunk, and
 * its bytes go from it straight into the TLS record buffer, framed (one user-space copy). */
ssize_t zt_h2_stream_reserve(struct zt_h2_stream *st, size_t len, uint8_t **p);
void zt_h2_stream_commit(struct zt_h2_stream *st, size_t n);
/* Queues all of len regardless of the bound (for framed messages that must go whole, whose
 * size the caller bounds); on_writable fires once the buffer drains if this overfilled it. */
int zt_h2_stream_write_all(struct zt_h2_stream *st, const void *p, size_t len);
/* Whether the send buffer is under its bound. */
bool zt_h2_stream_writable(const struct zt_h2_stream *st);
/* Bytes queued but not yet handed to HTTP/2 framing. */
size_t zt_h2_stream_buffered(const struct zt_h2_stream *st);
/* Ends our side after the queued bytes (END_STREAM), or with trailers when h is non-NULL. */
int zt_h2_stream_end(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n);
/* Acknowledges len received bytes so the peer may send more. */
void zt_h2_stream_consume(struct zt_h2_stream *st, size_t len);
/* Resets the stream (RST_STREAM with code); on_close follows from the loop. */
void zt_h2_stream_reset(struct zt_h2_stream *st, uint32_t code);
uint32_t zt_h2_stream_id(const struct zt_h2_stream *st);
struct zt_h2_conn *zt_h2_stream_conn(const struct zt_h2_stream *st);
void *zt_h2_stream_arg(const struct zt_h2_stream *st);

#endif
