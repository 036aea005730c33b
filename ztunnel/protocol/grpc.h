/* gRPC over zt_h2: unary and streaming calls, client and server. Messages are framed with
 * the 5-byte prefix (flag, big-endian length); compressed messages are refused. Requests
 * carry content-type application/grpc, te: trailers, grpc-timeout for deadlines and any
 * metadata given (authorization: Bearer ..., clusterid). Every call ends with one status
 * (grpc-status / grpc-message trailers, or a status made up locally for transport failures,
 * deadlines and oversize messages). */
#ifndef ZT_GRPC_H
#define ZT_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/h2.h"
#include "runtime/buf.h"

enum zt_grpc_code {
	ZT_GRPC_OK = 0,
	ZT_GRPC_CANCELLED = 1,
	ZT_GRPC_UNKNOWN = 2,
	ZT_GRPC_INVALID_ARGUMENT = 3,
	ZT_GRPC_DEADLINE_EXCEEDED = 4,
	ZT_GRPC_NOT_FOUND = 5,
	ZT_GRPC_PERMISSION_DENIED = 7,
	ZT_GRPC_RESOURCE_EXHAUSTED = 8,
	ZT_GRPC_FAILED_PRECONDITION = 9,
	ZT_GRPC_UNIMPLEMENTED = 12,
	ZT_GRPC_INTERNAL = 13,
	ZT_GRPC_UNAVAILABLE = 14,
	ZT_GRPC_UNAUTHENTICATED = 16,
};

const char *zt_grpc_code_name(int code);

/* ---- framing (pure) ---------------------------------------------------------------------- */

#define ZT_GRPC_PREFIX 5

/* Writes the 5-byte prefix of an uncompressed message of len bytes. */
void zt_grpc_frame_prefix(uint8_t out[ZT_GRPC_PREFIX], uint32_t len);

/* Reassembles messages from arbitrary chunks. A message over max_msg is refused before any
 * of it is buffered. */
struct zt_grpc_reader {
	uint8_t prefix[ZT_GRPC_PREFIX];
	size_t have_prefix;
	uint32_t need;
	bool in_body;
	size_t max_msg;
	struct zt_buf msg;
};

typedef int (*zt_grpc_msg_cb)(const uint8_t *p, size_t len, void *arg);

void zt_grpc_reader_init(struct zt_grpc_reader *r, size_t max_msg);
void zt_grpc_reader_clear(struct zt_grpc_reader *r);
/* Feeds bytes; cb runs for each complete message (a negative return stops and is returned).
 * Returns 0, ZT_E_TOOBIG (message over max_msg), ZT_E_UNSUPPORTED (compressed flag) or
 * ZT_E_PROTO (flag byte other than 0/1). Errors are sticky for the caller to act on. */
int zt_grpc_reader_feed(struct zt_grpc_reader *r, const uint8_t *p, size_t len,
			zt_grpc_msg_cb cb, void *arg);
/* Whether a message is partially received (an END_STREAM now would cut it). */
bool zt_grpc_reader_partial(const struct zt_grpc_reader *r);

/* A call's status from its trailers (or a trailers-only response): grpc-status (0..16) and
 * the percent-decoded grpc-message into msg (msglen > 0). Returns the code, or
 * ZT_GRPC_INTERNAL with msg naming what was wrong (grpc-status missing or malformed). */
int zt_grpc_status_parse(const struct zt_h2_header *h, size_t n, char *msg, size_t msglen);

/* Parses a grpc-timeout value ("100m", "5S", at most 8 digits). Returns ms or ZT_E_PARSE. */
int64_t zt_grpc_timeout_parse(const char *s, size_t len);

/* ---- calls ------------------------------------------------------------------------------- */

struct zt_grpc_call;

struct zt_grpc_call_cbs {
	/* One whole message (valid during the call). */
	void (*on_message)(struct zt_grpc_call *call, const uint8_t *p, size_t len, void *arg);
	/* Server: the client finished sending (half-close). */
	void (*on_half_close)(struct zt_grpc_call *call, void *arg);
	/* The call is over, with its status; call is freed after this returns. */
	void (*on_done)(struct zt_grpc_call *call, int code, const char *message, void *arg);
	/* The send queue drained below its bound after zt_grpc_call_writable() was false. */
	void (*on_writable)(struct zt_grpc_call *call, void *arg);
};

struct zt_grpc_md {
	const char *key;
	const char *value;
};

/* Client: starts a call of method path ("/pkg.Service/Method") on an HTTP/2 client
 * connection. authority goes in :authority; md are extra metadata entries (copied).
 * deadline_ms > 0 ends the call with DEADLINE_EXCEEDED after that long. max_msg bounds
 * received messages. Returns the call or NULL with *err. */
struct zt_grpc_call *zt_grpc_call_start(struct zt_h2_conn *c, const char *authority,
					const char *path, const struct zt_grpc_md *md, size_t nmd,
					uint64_t deadline_ms, size_t max_msg,
					const struct zt_grpc_call_cbs *cbs, void *arg, int *err);
/* Queues one whole message. Returns 0 or ZT_E_STATE (the call is over or half-closed). The
 * queue is unbounded: a producer should pause while zt_grpc_call_writable() is false and
 * resume on on_writable. */
int zt_grpc_call_send(struct zt_grpc_call *call, const void *p, size_t len);
bool zt_grpc_call_writable(const struct zt_grpc_call *call);
/* Client: no more messages (half-close). */
int zt_grpc_call_close_send(struct zt_grpc_call *call);
/* Server: ends the call with a status (trailers). */
int zt_grpc_call_finish(struct zt_grpc_call *call, int code, const char *message);
/* Either side: abandon the call; on_done(CANCELLED) follows from the loop. */
void zt_grpc_call_cancel(struct zt_grpc_call *call);
/* Request metadata value (server side: what the client sent; NULL if absent). */
const char *zt_grpc_call_md(const struct zt_grpc_call *call, const char *key);
const char *zt_grpc_call_path(const struct zt_grpc_call *call);
struct zt_h2_conn *zt_grpc_call_conn(const struct zt_grpc_call *call);
void zt_grpc_call_set_cbs(struct zt_grpc_call *call, const struct zt_grpc_call_cbs *cbs,
			  void *arg);
size_t zt_grpc_call_live(void);

/* ---- server ------------------------------------------------------------------------------ */

/* A new call on a registered method. Set callbacks with zt_grpc_call_set_cbs(). */
typedef void (*zt_grpc_handler_cb)(struct zt_grpc_call *call, void *arg);

struct zt_grpc_method {
	const char *path;
	zt_grpc_handler_cb handler;
	void *arg;
};

struct zt_grpc_server {
	const struct zt_grpc_method *methods;
	size_t nmethods;
	size_t max_msg;
};

/* The on_request callback for an HTTP/2 server connection whose arg is a zt_grpc_server:
 * validates the request (POST, application/grpc), dispatches by :path, answers
 * UNIMPLEMENTED for unknown methods. */
void zt_grpc_server_on_request(struct zt_h2_conn *c, struct zt_h2_stream *st,
			       const struct zt_h2_header *h, size_t n, bool end, void *arg);

#endif
