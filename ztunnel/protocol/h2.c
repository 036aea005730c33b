/* HTTP/2 over a zt_sock with nghttp2. Invariants: every byte nghttp2 produces passes through
 * conn->out before the socket; a flush is scheduled (one defer) whenever nghttp2 may have
 * something to send; a stream's nghttp2 data source is either producing from st->out or
 * deferred, and is resumed by the write that refills it; received DATA is reported to
 * nghttp2 as consumed only by zt_h2_stream_consume() or when the stream goes away. */
#include "protocol/h2.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("h2");

#define READ_CHUNK (64 * 1024)
#define OUT_HIGH (256 * 1024) /* stop pulling frames from nghttp2 above this */
#define MAX_HEADERS 64

struct zt_h2_stream {
	struct zt_h2_conn *conn;
	int32_t id;
	struct zt_h2_stream_cbs cb;
	void *arg;
	struct zt_buf out;
	size_t unconsumed;	   /* delivered to the owner, not yet consumed */
	size_t hdr_bytes;	   /* header block size so far, for the bound */
	struct zt_buf hdr_store;   /* names and values of the block being received */
	struct zt_h2_header hdr[MAX_HEADERS];
	size_t nhdr;
	bool got_first_headers;
	bool data_deferred;	   /* nghttp2 data source is waiting for bytes */
	bool end_queued;	   /* END_STREAM after st->out drains */
	bool local_closed;	   /* END_STREAM or trailers handed to nghttp2 */
	bool want_writable;	   /* a write was refused: tell the owner when there is room */
	bool hdr_overflow;
	struct zt_h2_header *trailers;
	size_t ntrailers;
	struct zt_buf trailer_store;
	struct zt_h2_stream *next_writable;
	struct zt_h2_stream *prev, *next; /* all streams of the connection */
};

struct zt_h2_conn {
	struct zt_loop *loop;
	struct zt_sock sock;
	nghttp2_session *ng;
	bool server;
	struct zt_h2_settings set;
	struct zt_h2_conn_cbs cb;
	void *arg;
	struct zt_buf out;
	struct zt_defer flush;
	struct zt_defer finish;
	struct zt_timer ping_timer;
	struct zt_timer goaway_timer; /* server: shutdown notice sent, final GOAWAY pending */
	uint64_t ping_sent_ms;	   /* 0 when no PING is outstanding */
	size_t nstreams;
	uint64_t refused_streams; /* server: refused over the stream limit */
	struct zt_h2_stream *streams;
	bool closing;		   /* finish scheduled; no more I/O */
	bool goaway_recv;
	bool goaway_sent;
	bool patch_settings; /* server: our first SETTINGS still to be rewritten (see below) */
	bool in_recv;
	const char *reason;
	struct zt_h2_stream *writable; /* streams owed an on_writable */
};

static atomic_size_t live_conns, live_streams; /* all threads */

size_t zt_h2_conn_live(void)
{
	return live_conns;
}

size_t zt_h2_stream_live(void)
{
	return live_streams;
}

void zt_h2_settings_default(struct zt_h2_settings *s, bool server)
{
	*s = (struct zt_h2_settings){
		.stream_window = 4u << 20,
		.conn_window = 16u << 20,
		.max_frame = 1u << 20,
		.max_header_list = server ? 64u << 10 : 16u << 10,
		.max_streams = 200,
		.stream_send_buffer = server ? 400u << 10 : 4u << 20,
		.ping_interval_ms = 10000,
		.ping_timeout_ms = 20000,
	};
}

static void schedule_flush(struct zt_h2_conn *c);
static void fail(struct zt_h2_conn *c, const char *reason);

/* ---- streams ----------------------------------------------------------------------------- */

static struct zt_h2_stream *stream_new(struct zt_h2_conn *c, int32_t id)
{
	struct zt_h2_stream *st = xcalloc(1, sizeof(*st));

	st->conn = c;
	st->id = id;
	zt_buf_init(&st->out, 0); /* bounded softly: see zt_h2_stream_write */
	zt_buf_init(&st->hdr_store, 0);
	zt_buf_init(&st->trailer_store, 0);
	st->next = c->streams;
	if (c->streams)
		c->streams->prev = st;
	c->streams = st;
	c->nstreams++;
	live_streams++;
	return st;
}

static void stream_free(struct zt_h2_stream *st)
{
	struct zt_h2_conn *c = st->conn;

	for (struct zt_h2_stream **pp = &c->writable; *pp; pp = &(*pp)->next_writable) {
		if (*pp == st) {
			*pp = st->next_writable;
			break;
		}
	}
	/* Bytes the owner never consumed still count against the connection window. */
	if (st->unconsumed && c->ng)
		nghttp2_session_consume_connection(c->ng, st->unconsumed);
	if (st->prev)
		st->prev->next = st->next;
	else
		c->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	zt_buf_clear(&st->out);
	zt_buf_clear(&st->hdr_store);
	zt_buf_clear(&st->trailer_store);
	free(st->trailers);
	c->nstreams--;
	live_streams--;
	free(st);
}

static void reset_headers(struct zt_h2_stream *st)
{
	zt_buf_consume(&st->hdr_store, zt_buf_len(&st->hdr_store));
	st->nhdr = 0;
	st->hdr_bytes = 0;
	st->hdr_overflow = false;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct zt_h2_conn *c = user;
	struct zt_h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!st) {
		if (!c->server)
			return 0;
		/* RFC 9113 §5.1.2: a stream over the advertised limit is refused on its own
		 * (REFUSED_STREAM, safe to retry); the other streams carry on. Its frames are then
		 * ignored (no stream object). */
		if (c->nstreams >= c->set.max_streams) {
			nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
						  NGHTTP2_REFUSED_STREAM);
			c->refused_streams++;
			schedule_flush(c);
			return 0;
		}
		st = stream_new(c, f->hd.stream_id);
		nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, st);
	}
	reset_headers(st);
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	struct zt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	struct zt_h2_conn *c = user;

	(void)flags;
	if (!st || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	/* RFC 9113 §6.5.2 size: name + value + 32 per field. */
	st->hdr_bytes += namelen + valuelen + 32;
	if (st->hdr_bytes > c->set.max_header_list || st->nhdr == MAX_HEADERS) {
		if (!st->hdr_overflow)
			zt_debug("stream %d: header list over %u bytes or %d fields", st->id,
				 c->set.max_header_list, MAX_HEADERS);
		st->hdr_overflow = true;
		return 0;
	}
	/* Offsets now, pointers once the block is complete (the store may move). */
	st->hdr[st->nhdr].name = (const char *)(uintptr_t)zt_buf_len(&st->hdr_store);
	st->hdr[st->nhdr].name_len = namelen;
	if (zt_buf_append(&st->hdr_store, name, namelen) < 0 ||
	    zt_buf_append(&st->hdr_store, "", 1) < 0)
		abort();
	st->hdr[st->nhdr].value = (const char *)(uintptr_t)zt_buf_len(&st->hdr_store);
	st->hdr[st->nhdr].value_len = valuelen;
	if (zt_buf_append(&st->hdr_store, value, valuelen) < 0 ||
	    zt_buf_append(&st->hdr_store, "", 1) < 0)
		abort();
	st->nhdr++;
	return 0;
}

static void resolve_headers(struct zt_h2_stream *st)
{
	const char *base = (const char *)zt_buf_data(&st->hdr_store);

	for (size_t i = 0; i < st->nhdr; i++) {
		st->hdr[i].name = base + (uintptr_t)st->hdr[i].name;
		st->hdr[i].value = base + (uintptr_t)st->hdr[i].value;
	}
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct zt_h2_conn *c = user;
	struct zt_h2_stream *st = NULL;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	if (f->hd.stream_id)
		st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (!st)
			return 0;
		if (st->hdr_overflow) {
			/* A stream-local failure: answer 431 on a request, reset otherwise. */
			if (c->server && !st->got_first_headers) {
				st->got_first_headers = true;
				zt_h2_stream_respond(st, 431, NULL, 0, true);
			} else {
				nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id,
							  NGHTTP2_REFUSED_STREAM);
			}
			reset_headers(st);
			schedule_flush(c);
			return 0;
		}
		resolve_headers(st);
		if (c->server && !st->got_first_headers) {
			st->got_first_headers = true;
			if (c->cb.on_request)
				c->cb.on_request(c, st, st->hdr, st->nhdr, end, c->arg);
			else
				zt_h2_stream_respond(st, 404, NULL, 0, true);
		} else if (st->cb.on_headers) {
			st->cb.on_headers(st, st->hdr, st->nhdr, end, st->arg);
		}
		reset_headers(st);
		if (end && st->cb.on_end)
			st->cb.on_end(st, st->arg);
		break;
	case NGHTTP2_DATA:
		if (st && end && st->cb.on_end)
			st->cb.on_end(st, st->arg);
		break;
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && c->cb.on_settings)
			c->cb.on_settings(c, c->arg);
		break;
	case NGHTTP2_PING:
		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			c->ping_sent_ms = 0;
		break;
	case NGHTTP2_GOAWAY:
		c->goaway_recv = true;
		if (c->cb.on_goaway)
			c->cb.on_goaway(c, f->goaway.error_code, c->arg);
		break;
	default:
		break;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	struct zt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);

	(void)flags;
	(void)user;
	if (!st || !st->cb.on_data) {
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	st->unconsumed += len;
	st->cb.on_data(st, data, len, st->arg);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
	struct zt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);

	(void)user;
	if (!st)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	if (st->cb.on_close)
		st->cb.on_close(st, code, st->arg);
	stream_free(st);
	return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct zt_h2_stream *st = src->ptr;
	struct zt_h2_conn *c = user;
	size_t n = zt_buf_len(&st->out);

	(void)ng;
	(void)id;
	if (n > len)
		n = len;
	if (n) {
		memcpy(buf, zt_buf_data(&st->out), n);
		zt_buf_consume(&st->out, n);
	}
	if (st->want_writable && zt_buf_len(&st->out) <= c->set.stream_send_buffer / 2) {
		st->want_writable = false;
		st->next_writable = c->writable;
		c->writable = st;
	}
	if (zt_buf_len(&st->out) == 0 && st->end_queued) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		st->local_closed = true;
		if (st->trailers) {
			nghttp2_nv nva[MAX_HEADERS];
			for (size_t i = 0; i < st->ntrailers; i++)
				nva[i] = (nghttp2_nv){(uint8_t *)st->trailers[i].name,
						      (uint8_t *)st->trailers[i].value,
						      st->trailers[i].name_len,
						      st->trailers[i].value_len, NGHTTP2_NV_FLAG_NONE};
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			nghttp2_submit_trailer(ng, st->id, nva, st->ntrailers);
		}
		return (ssize_t)n;
	}
	if (n == 0) {
		st->data_deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err, void *user)
{
	(void)ng;
	(void)user;
	zt_debug("invalid frame type %u on stream %d: %s", f->hd.type, f->hd.stream_id,
		 nghttp2_strerror(err));
	return 0;
}

/* ---- I/O --------------------------------------------------------------------------------- */

static void run_writable(struct zt_h2_conn *c)
{
	while (c->writable && !c->closing) {
		struct zt_h2_stream *st = c->writable;
		c->writable = st->next_writable;
		st->next_writable = NULL;
		if (st->cb.on_writable)
			st->cb.on_writable(st, st->arg);
	}
}

static void check_done(struct zt_h2_conn *c)
{
	if (!c->closing && !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
	    zt_buf_len(&c->out) == 0)
		fail(c, c->goaway_sent || c->goaway_recv ? "connection drained" : "peer closed");
}

/* nghttp2 treats a stream beyond its own acknowledged SETTINGS_MAX_CONCURRENT_STREAMS as a
 * connection error (GOAWAY PROTOCOL_ERROR: every healthy stream dies). So a server session
 * is configured with a higher internal limit (STREAM_SLACK more), while the SETTINGS frame the
 * peer receives advertises set.max_streams: the value is rewritten in our first frame, and
 * on_begin_headers refuses the streams in between one by one. */
#define STREAM_SLACK 256

static void patch_settings(struct zt_h2_conn *c)
{
	uint8_t *p = (uint8_t *)zt_buf_data(&c->out);
	size_t have = zt_buf_len(&c->out), len;

	if (have < 9)
		return;
	c->patch_settings = false;
	len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
	if (p[3] != NGHTTP2_SETTINGS || (p[4] & NGHTTP2_FLAG_ACK) || have < 9 + len)
		return;
	for (size_t at = 9; at + 6 <= 9 + len; at += 6) {
		if ((p[at] << 8 | p[at + 1]) != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
			continue;
		uint32_t v = c->set.max_streams;
		p[at + 2] = (uint8_t)(v >> 24);
		p[at + 3] = (uint8_t)(v >> 16);
		p[at + 4] = (uint8_t)(v >> 8);
		p[at + 5] = (uint8_t)v;
	}
}

static void do_flush(struct zt_h2_conn *c)
{
	for (;;) {
		while (zt_buf_len(&c->out) < OUT_HIGH) {
			const uint8_t *p;
			ssize_t n = nghttp2_session_mem_send(c->ng, &p);
			if (n < 0) {
				zt_debug("mem_send: %s", nghttp2_strerror((int)n));
				fail(c, "protocol error");
				return;
			}
			if (n == 0)
				break;
			if (zt_buf_append(&c->out, p, (size_t)n) < 0)
				abort();
			if (c->patch_settings)
				patch_settings(c);
		}
		if (zt_buf_len(&c->out) == 0)
			break;
		ssize_t w = zt_sock_write(&c->sock, zt_buf_data(&c->out), zt_buf_len(&c->out));
		if (w == -EAGAIN)
			break;
		if (w < 0) {
			zt_debug("write: %s %s", zt_strerror((int)w), zt_sock_error(&c->sock));
			fail(c, "write failed");
			return;
		}
		zt_buf_consume(&c->out, (size_t)w);
	}
	zt_sock_want(&c->sock, ZT_IO_READ | (zt_buf_len(&c->out) ? ZT_IO_WRITE : 0));
	run_writable(c);
	if (!c->closing)
		check_done(c);
}

static void on_flush(struct zt_defer *d, void *arg)
{
	(void)d;
	do_flush(arg);
}

static void schedule_flush(struct zt_h2_conn *c)
{
	if (!c->closing)
		zt_defer_start(c->loop, &c->flush, on_flush, c);
}

static void do_read(struct zt_h2_conn *c)
{
	uint8_t buf[READ_CHUNK];

	for (;;) {
		ssize_t n = zt_sock_read(&c->sock, buf, sizeof(buf));
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			if (n < 0)
				zt_debug("read: %s %s", zt_strerror((int)n), zt_sock_error(&c->sock));
			fail(c, n == 0 ? "peer closed" : "read failed");
			return;
		}
		c->in_recv = true;
		ssize_t r = nghttp2_session_mem_recv(c->ng, buf, (size_t)n);
		c->in_recv = false;
		if (c->closing)
			return;
		if (r < 0) {
			zt_debug("mem_recv: %s", nghttp2_strerror((int)r));
			fail(c, "protocol error");
			return;
		}
	}
	schedule_flush(c);
}

static void on_sock(struct zt_sock *s, unsigned events, void *arg)
{
	struct zt_h2_conn *c = arg;

	(void)s;
	if (events & ZT_IO_READ)
		do_read(c);
	if (!c->closing && (events & ZT_IO_WRITE))
		do_flush(c);
}

static void on_ping_timer(struct zt_timer *t, void *arg)
{
	struct zt_h2_conn *c = arg;
	uint64_t now = zt_loop_now(c->loop);

	(void)t;
	if (c->ping_sent_ms && now - c->ping_sent_ms >= c->set.ping_timeout_ms) {
		fail(c, "ping timeout");
		return;
	}
	if (!c->ping_sent_ms) {
		nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL);
		c->ping_sent_ms = now;
		schedule_flush(c);
	}
	zt_timer_start(c->loop, &c->ping_timer,
		       c->ping_sent_ms ? c->set.ping_timeout_ms : c->set.ping_interval_ms,
		       on_ping_timer, c);
}

/* ---- connection lifecycle ---------------------------------------------------------------- */

static void on_finish(struct zt_defer *d, void *arg)
{
	struct zt_h2_conn *c = arg;

	(void)d;
	/* nghttp2 does not report streams still open at deletion; end each one here. */
	nghttp2_session_del(c->ng);
	c->ng = NULL;
	while (c->streams) {
		struct zt_h2_stream *st = c->streams;
		if (st->cb.on_close)
			st->cb.on_close(st, NGHTTP2_CANCEL, st->arg);
		stream_free(st);
	}
	if (c->cb.on_close)
		c->cb.on_close(c, c->reason, c->arg);
	zt_buf_clear(&c->out);
	live_conns--;
	free(c);
}

static void fail(struct zt_h2_conn *c, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	c->reason = reason;
	zt_debug("connection closing: %s", reason);
	zt_defer_stop(&c->flush);
	zt_timer_stop(&c->ping_timer);
	zt_timer_stop(&c->goaway_timer);
	zt_sock_close(&c->sock);
	zt_defer_start(c->loop, &c->finish, on_finish, c);
}

void zt_h2_conn_close(struct zt_h2_conn *c, const char *reason)
{
	fail(c, reason);
}

void zt_h2_conn_terminate(struct zt_h2_conn *c, uint32_t code)
{
	if (c->closing || c->goaway_sent)
		return;
	c->goaway_sent = true;
	nghttp2_session_terminate_session(c->ng, code);
	schedule_flush(c);
}

static void final_goaway(struct zt_h2_conn *c)
{
	c->goaway_sent = true;
	nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(c->ng), NGHTTP2_NO_ERROR,
			      NULL, 0);
	schedule_flush(c);
}

static void on_goaway_timer(struct zt_timer *t, void *arg)
{
	struct zt_h2_conn *c = arg;

	(void)t;
	if (!c->closing && !c->goaway_sent)
		final_goaway(c);
}

void zt_h2_conn_shutdown(struct zt_h2_conn *c)
{
	if (c->closing || c->goaway_sent || zt_timer_active(&c->goaway_timer))
		return;
	/* A server first announces the shutdown with the largest stream id, so requests already
	 * on the way are still served, and names the real last stream a moment later (RFC 9113
	 * section 6.8). */
	if (c->server && nghttp2_submit_shutdown_notice(c->ng) == 0) {
		zt_timer_start(c->loop, &c->goaway_timer, ZT_H2_GOAWAY_GRACE_MS, on_goaway_timer, c);
		schedule_flush(c);
		return;
	}
	final_goaway(c);
}

size_t zt_h2_conn_streams(const struct zt_h2_conn *c)
{
	return c->nstreams;
}

bool zt_h2_conn_can_open(const struct zt_h2_conn *c)
{
	return !c->closing && !c->goaway_recv && !c->goaway_sent &&
	       nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) >
		       c->nstreams;
}

uint32_t zt_h2_conn_peer_max_streams(const struct zt_h2_conn *c)
{
	return c->ng ? nghttp2_session_get_remote_settings(c->ng,
							   NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
		     : 0;
}

bool zt_h2_conn_closing(const struct zt_h2_conn *c)
{
	return c->closing;
}

struct zt_sock *zt_h2_conn_sock(struct zt_h2_conn *c)
{
	return &c->sock;
}

void *zt_h2_conn_arg(const struct zt_h2_conn *c)
{
	return c->arg;
}

int zt_h2_conn_new(struct zt_h2_conn **out, struct zt_loop *loop, struct zt_sock *s, bool server,
		   const struct zt_h2_settings *set, const struct zt_h2_conn_cbs *cbs, void *arg)
{
	nghttp2_session_callbacks *ncb = NULL;
	nghttp2_option *opt = NULL;
	struct zt_h2_conn *c;
	nghttp2_settings_entry iv[5];
	size_t niv = 0;
	int rv;

	*out = NULL;
	c = xcalloc(1, sizeof(*c));
	if (nghttp2_session_callbacks_new(&ncb) || nghttp2_option_new(&opt))
		abort();
	c->loop = loop;
	zt_sock_move(&c->sock, s, on_sock, c);
	c->server = server;
	c->set = *set;
	if (cbs)
		c->cb = *cbs;
	c->arg = arg;
	zt_buf_init(&c->out, 0);
	live_conns++;

	nghttp2_session_callbacks_set_on_begin_headers_callback(ncb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(ncb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(ncb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(ncb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(ncb, on_stream_close);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(ncb, on_invalid_frame);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
	nghttp2_option_set_peer_max_concurrent_streams(opt, server ? 100 : 1000);
	rv = server ? nghttp2_session_server_new2(&c->ng, ncb, c, opt)
		    : nghttp2_session_client_new2(&c->ng, ncb, c, opt);
	nghttp2_session_callbacks_del(ncb);
	nghttp2_option_del(opt);
	if (rv != 0)
		abort();

	iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, set->stream_window};
	iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_FRAME_SIZE, set->max_frame};
	iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
					     set->max_header_list};
	if (server) {
		iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
						     set->max_streams < (1u << 30)
							     ? set->max_streams + STREAM_SLACK
							     : set->max_streams};
		c->patch_settings = true;
	}
	else
		iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
	rv = nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, niv);
	if (rv == 0)
		rv = nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
							    (int32_t)set->conn_window);
	if (rv != 0) {
		zt_warn("HTTP/2 settings rejected: %s", nghttp2_strerror(rv));
		nghttp2_session_del(c->ng);
		zt_sock_close(&c->sock);
		zt_buf_clear(&c->out);
		live_conns--;
		free(c);
		return ZT_E_RANGE;
	}
	if (set->ping_interval_ms)
		zt_timer_start(loop, &c->ping_timer, set->ping_interval_ms, on_ping_timer, c);
	zt_sock_want(&c->sock, ZT_IO_READ);
	schedule_flush(c);
	*out = c;
	return 0;
}

/* ---- stream API -------------------------------------------------------------------------- */

static void fill_nv(nghttp2_nv *nva, const struct zt_h2_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		nva[i] = (nghttp2_nv){(uint8_t *)h[i].name, (uint8_t *)h[i].value, h[i].name_len,
				      h[i].value_len, NGHTTP2_NV_FLAG_NONE};
}

struct zt_h2_stream *zt_h2_request(struct zt_h2_conn *c, const struct zt_h2_header *h, size_t n,
				   bool end, const struct zt_h2_stream_cbs *cbs, void *arg,
				   int *err)
{
	nghttp2_nv nva[MAX_HEADERS];
	nghttp2_data_provider prd;
	struct zt_h2_stream *st;
	int32_t id;

	if (c->closing || c->goaway_recv || c->goaway_sent) {
		*err = ZT_E_STATE;
		return NULL;
	}
	if (n > MAX_HEADERS) {
		*err = ZT_E_TOOBIG;
		return NULL;
	}
	fill_nv(nva, h, n);
	st = stream_new(c, -1);
	if (cbs)
		st->cb = *cbs;
	st->arg = arg;
	prd = (nghttp2_data_provider){.source.ptr = st, .read_callback = read_body};
	id = nghttp2_submit_request(c->ng, NULL, nva, n, end ? NULL : &prd, st);
	if (id < 0) {
		stream_free(st);
		*err = id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? ZT_E_STATE : ZT_E_PROTO;
		return NULL;
	}
	st->id = id;
	st->local_closed = end;
	schedule_flush(c);
	return st;
}

void zt_h2_stream_set_cbs(struct zt_h2_stream *st, const struct zt_h2_stream_cbs *cbs, void *arg)
{
	st->cb = cbs ? *cbs : (struct zt_h2_stream_cbs){0};
	st->arg = arg;
}

int zt_h2_stream_respond(struct zt_h2_stream *st, int status, const struct zt_h2_header *h,
			 size_t n, bool end)
{
	nghttp2_nv nva[MAX_HEADERS + 1];
	nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
	char code[4];
	int rv;

	if (n > MAX_HEADERS || status < 100 || status > 999)
		return ZT_E_RANGE;
	snprintf(code, sizeof(code), "%d", status);
	nva[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE};
	fill_nv(nva + 1, h, n);
	rv = nghttp2_submit_response(st->conn->ng, st->id, nva, n + 1, end ? NULL : &prd);
	if (rv != 0)
		return ZT_E_STATE;
	st->local_closed = end;
	schedule_flush(st->conn);
	return 0;
}

static void queue_out(struct zt_h2_stream *st, const void *p, size_t len)
{
	if (zt_buf_append(&st->out, p, len) < 0)
		abort();
	if (st->data_deferred) {
		st->data_deferred = false;
		nghttp2_session_resume_data(st->conn->ng, st->id);
	}
	schedule_flush(st->conn);
}

ssize_t zt_h2_stream_write(struct zt_h2_stream *st, const void *p, size_t len)
{
	size_t limit = st->conn->set.stream_send_buffer, have = zt_buf_len(&st->out);
	size_t room = have < limit ? limit - have : 0;

	if (st->end_queued || st->local_closed || st->conn->closing)
		return ZT_E_STATE;
	if (len > room)
		len = room;
	if (len == 0) {
		st->want_writable = true;
		return 0;
	}
	queue_out(st, p, len);
	return (ssize_t)len;
}

int zt_h2_stream_write_all(struct zt_h2_stream *st, const void *p, size_t len)
{
	if (st->end_queued || st->local_closed || st->conn->closing)
		return ZT_E_STATE;
	queue_out(st, p, len);
	if (zt_buf_len(&st->out) >= st->conn->set.stream_send_buffer)
		st->want_writable = true;
	return 0;
}

bool zt_h2_stream_writable(const struct zt_h2_stream *st)
{
	return zt_buf_len(&st->out) < st->conn->set.stream_send_buffer;
}

size_t zt_h2_stream_buffered(const struct zt_h2_stream *st)
{
	return zt_buf_len(&st->out);
}

int zt_h2_stream_end(struct zt_h2_stream *st, const struct zt_h2_header *h, size_t n)
{
	if (st->end_queued || st->local_closed)
		return ZT_E_STATE;
	if (n > MAX_HEADERS)
		return ZT_E_TOOBIG;
	if (h && n) {
		st->trailers = xcalloc(n, sizeof(*st->trailers));
		for (size_t i = 0; i < n; i++) {
			st->trailers[i] = h[i];
			/* Copy names and values: the caller's may not outlive this call. */
			st->trailers[i].name = (const char *)(uintptr_t)zt_buf_len(&st->trailer_store);
			zt_buf_append(&st->trailer_store, h[i].name, h[i].name_len);
			st->trailers[i].value = (const char *)(uintptr_t)zt_buf_len(&st->trailer_store);
			zt_buf_append(&st->trailer_store, h[i].value, h[i].value_len);
		}
		for (size_t i = 0; i < n; i++) {
			const char *base = (const char *)zt_buf_data(&st->trailer_store);
			st->trailers[i].name = base + (uintptr_t)st->trailers[i].name;
			st->trailers[i].value = base + (uintptr_t)st->trailers[i].value;
		}
		st->ntrailers = n;
	}
	st->end_queued = true;
	if (st->data_deferred) {
		st->data_deferred = false;
		nghttp2_session_resume_data(st->conn->ng, st->id);
	}
	schedule_flush(st->conn);
	return 0;
}

void zt_h2_stream_consume(struct zt_h2_stream *st, size_t len)
{
	if (len > st->unconsumed)
		len = st->unconsumed;
	st->unconsumed -= len;
	if (!st->conn->closing)
		nghttp2_session_consume(st->conn->ng, st->id, len);
	schedule_flush(st->conn);
}

void zt_h2_stream_reset(struct zt_h2_stream *st, uint32_t code)
{
	if (st->conn->closing)
		return;
	nghttp2_submit_rst_stream(st->conn->ng, NGHTTP2_FLAG_NONE, st->id, code);
	schedule_flush(st->conn);
}

uint32_t zt_h2_stream_id(const struct zt_h2_stream *st)
{
	return (uint32_t)st->id;
}

struct zt_h2_conn *zt_h2_stream_conn(const struct zt_h2_stream *st)
{
	return st->conn;
}

void *zt_h2_stream_arg(const struct zt_h2_stream *st)
{
	return st->arg;
}
