/* Relay: two ends, two directions. Invariants: a direction reads from its source only while
 * nothing it read is still queued (so it holds at most one pipe or one buffer chunk from TCP;
 * from HTTP/2 at most the unconsumed receive window, consumed as bytes reach the socket);
 * TCP to a stream reads straight into the stream's send buffer, only into room that needs no
 * bytes moved (zt_h2_stream_reserve), so at most one chunk waits there and is copied once,
 * framed, into the TLS buffer; a
 * socket is watched for exactly what its directions wait for (no watcher at all when
 * nothing, so a hang-up cannot spin the loop); the first failure or completion closes both
 * ends and schedules the one report. */
#include "hbone/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/h2.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/live.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("relay");
ZT_LIVE_DEFINE(relay);

/* Copy buffer sizes by bytes already moved in that direction (spec §2.6). */
#define CHUNK_SMALL (1u << 10)
#define CHUNK_MID   (16u << 10)
#define CHUNK_BIG   (256u << 10)
#define GROW_MID    (128u << 10)
#define GROW_BIG    (10u << 20)
/* Splice pipes: 64 KiB, 1 MiB once a direction moved GROW_BIG (bulk transfers). Pages are
 * only allocated as data arrives, but capacity counts against the user's pipe pages
 * (fs.pipe-user-pages-soft, unless privileged); the bigger pipe cut the proxy's CPU per GiB
 * by about a third in bench/relay.sh. */
#define PIPE_SMALL (64u << 10)
#define PIPE_BIG   (1u << 20)
/* Bytes from a stream wait here until the socket takes them; the stream's receive window is
 * the real bound (nothing is consumed before delivery), this only backs it up. */
#define FROM_H2_MAX (64u << 20)
/* Bytes one direction moves per wake-up before letting other connections run. */
#define PUMP_BUDGET (1u << 20)

enum { CLIENT = 0, SERVER = 1 };

struct end {
	struct zt_relay *r;
	int side;
	int fd; /* TCP end; -1 for a stream end and once closed */
	struct zt_io io;
	struct zt_h2_stream *st; /* stream end; NULL once the stream is gone or detached */
};

/* dir[CLIENT] carries client bytes to the server (up), dir[SERVER] the reverse (down). */
struct dir {
	struct end *src, *dst;
	struct zt_buf buf;        /* read from src, not yet delivered */
	int pipe_r, pipe_w;       /* splice mode; -1 otherwise */
	size_t pipe_cap, in_pipe; /* bytes the pipe holds, not yet delivered */
	bool pipe_grown;
	bool wait_room; /* dst is a stream still sending the last chunk: on_writable resumes */
	bool eof;       /* src has nothing more */
	bool done;      /* dst was ended (or can take nothing more) */
	uint64_t bytes; /* delivered to dst */
};

struct zt_relay {
	struct zt_loop *loop;
	struct end end[2];
	struct dir dir[2];
	zt_relay_done_cb cb;
	void *arg;
	uint64_t start_ms;
	bool closing;
	const char *error;
	struct zt_defer reap;
};

long zt_relay_live(void)
{
	return zt_live_relay.count;
}

static size_t queued(const struct dir *d)
{
	return zt_buf_len(&d->buf) + d->in_pipe;
}

static size_t chunk_for(uint64_t moved)
{
	return moved < GROW_MID ? CHUNK_SMALL : moved < GROW_BIG ? CHUNK_MID : CHUNK_BIG;
}

static void close_pipe(struct dir *d)
{
	if (d->pipe_r >= 0) {
		close(d->pipe_r);
		close(d->pipe_w);
	}
	d->pipe_r = d->pipe_w = -1;
	d->in_pipe = 0;
}

/* ---- ending ------------------------------------------------------------------------------ */

static void on_reap(struct zt_defer *df, void *arg)
{
	struct zt_relay *r = arg;
	struct zt_relay_result res = {
	        .bytes_up = r->dir[CLIENT].bytes,
	        .bytes_down = r->dir[SERVER].bytes,
	        .duration_ms = zt_loop_now(r->loop) - r->start_ms,
	        .error = r->error,
	};

	(void)df;
	if (r->cb)
		r->cb(r, &res, r->arg);
	for (int i = 0; i < 2; i++)
		zt_buf_clear(&r->dir[i].buf);
	zt_live_dec(&zt_live_relay);
	free(r);
}

/* Closes both ends: abortively (TCP RST through SO_LINGER 0, RST_STREAM with h2_code) after a
 * failure, gracefully after a clean finish; then schedules the report. */
static void close_all(struct zt_relay *r, const char *error, bool abortive, uint32_t h2_code)
{
	if (r->closing)
		return;
	r->closing = true;
	r->error = error;
	for (int i = 0; i < 2; i++) {
		struct end *e = &r->end[i];
		if (e->fd >= 0) {
			zt_io_stop(&e->io);
			if (abortive) {
				struct linger lg = {.l_onoff = 1, .l_linger = 0};
				setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			}
			close(e->fd);
			e->fd = -1;
		}
		if (e->st) {
			zt_h2_stream_set_cbs(e->st, NULL, NULL);
			if (abortive)
				zt_h2_stream_reset(e->st, h2_code);
			e->st = NULL;
		}
		close_pipe(&r->dir[i]);
	}
	if (error)
		zt_debug("relay failed: %s", error);
	zt_defer_start(r->loop, &r->reap, on_reap, r);
}

static void fail(struct zt_relay *r, const char *error, uint32_t h2_code)
{
	close_all(r, error, true, h2_code);
}

/* A socket failed with errno err: the other side is reset, as RFC 9113 §8.5 asks of a
 * CONNECT proxy (RST_STREAM with CONNECT_ERROR for a stream). */
static void io_fail(struct end *e, int err)
{
	static const char *const reset[2] = {"connection reset by client",
	                                     "connection reset by server"};
	static const char *const timeout[2] = {"connection to client timed out",
	                                       "connection to server timed out"};
	static const char *const other[2] = {"client I/O error", "server I/O error"};
	const char *text;

	if (err == ECONNRESET || err == EPIPE)
		text = reset[e->side];
	else if (err == ETIMEDOUT)
		text = timeout[e->side];
	else
		text = other[e->side];
	zt_debug("%s socket: %s", e->side == CLIENT ? "client" : "server", strerror(err));
	fail(e->r, text, NGHTTP2_CONNECT_ERROR);
}

/* ---- moving bytes ------------------------------------------------------------------------ */

static void delivered(struct dir *d, size_t n)
{
	d->bytes += n;
	if (d->src->st)
		zt_h2_stream_consume(d->src->st, n);
}

/* Hands bytes to dst. Returns how many it took (0: none now, it says when), or -1 after
 * failing the relay. */
static ssize_t put(struct dir *d, const void *p, size_t len)
{
	struct end *e = d->dst;
	ssize_t n;

	if (e->st) {
		n = zt_h2_stream_write(e->st, p, len);
		if (n >= 0)
			return n;
		/* A connection going away reports the stream's end next. */
		if (zt_h2_conn_closing(zt_h2_stream_conn(e->st)))
			return 0;
		fail(e->r, "HTTP/2 stream refused data", NGHTTP2_INTERNAL_ERROR);
		return -1;
	}
	if (e->fd < 0)
		return 0;
	do
		n = send(e->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	io_fail(e, errno);
	return -1;
}

/* splice(2) said EINVAL: this pair of files cannot splice. Whatever the pipe holds moves to
 * the (empty) buffer, which the pipe's capacity fits, and the direction copies from now on.
 * Returns 0, or -1 after failing the relay. */
static int stop_splicing(struct dir *d)
{
	uint8_t *p;

	zt_debug("splice not supported here, copying instead");
	if (d->in_pipe) {
		ssize_t n = -1;
		if (zt_buf_reserve(&d->buf, d->in_pipe, &p) == 0) {
			do
				n = read(d->pipe_r, p, d->in_pipe);
			while (n < 0 && errno == EINTR);
		}
		if (n != (ssize_t)d->in_pipe) {
			fail(d->src->r, "relay pipe failure", NGHTTP2_INTERNAL_ERROR);
			return -1;
		}
		zt_buf_commit(&d->buf, (size_t)n);
	}
	close_pipe(d);
	return 0;
}

/* Delivers what is queued. Returns 1 when nothing is left, 0 when dst takes no more now, -1
 * after failing the relay. */
static int flush(struct dir *d)
{
	for (;;) {
		if (zt_buf_len(&d->buf)) {
			ssize_t n = put(d, zt_buf_data(&d->buf), zt_buf_len(&d->buf));
			if (n <= 0)
				return (int)n;
			zt_buf_consume(&d->buf, (size_t)n);
			delivered(d, (size_t)n);
			continue;
		}
		if (!d->in_pipe)
			return 1;
		ssize_t n = splice(d->pipe_r, NULL, d->dst->fd, NULL, d->in_pipe,
		                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->in_pipe -= (size_t)n;
			delivered(d, (size_t)n);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return 0;
		} else if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
			if (stop_splicing(d) < 0)
				return -1;
		} else {
			io_fail(d->dst, n < 0 ? errno : EPIPE);
			return -1;
		}
	}
}

/* Reads once from the TCP source into the empty pipe or buffer. Returns the bytes read, 0 if
 * none (d->eof tells EOF from "not now"), or -1 after failing the relay. */
static ssize_t fill(struct dir *d)
{
	int fd = d->src->fd;
	struct zt_h2_stream *st = d->dst->st;
	size_t want = chunk_for(d->bytes);
	uint8_t *p;
	ssize_t n;

	if (d->pipe_r >= 0 && !d->pipe_grown && d->bytes >= GROW_BIG) {
		int cap = fcntl(d->pipe_r, F_SETPIPE_SZ, (int)PIPE_BIG);
		d->pipe_grown = true; /* or refused (pipe pages over the user's limit): keep it */
		if (cap > 0 && (size_t)cap <= PIPE_BIG)
			d->pipe_cap = (size_t)cap;
	}
	while (d->pipe_r >= 0) {
		n = splice(fd, NULL, d->pipe_w, NULL, d->pipe_cap,
		           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->in_pipe += (size_t)n;
			return n;
		}
		if (n == 0) {
			d->eof = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno != EINVAL && errno != ENOSYS) {
			io_fail(d->src, errno);
			return -1;
		}
		if (stop_splicing(d) < 0)
			return -1;
	}
	if (st) {
		/* Straight into the stream's send buffer, which frames it into the TLS record
		 * buffer: no copy in between. */
		n = zt_h2_stream_reserve(st, want, &p);
		if (n == 0) {
			d->wait_room = true;
			return 0;
		}
		if (n < 0) {
			if (zt_h2_conn_closing(zt_h2_stream_conn(st)))
				return 0; /* the stream's end follows */
			fail(d->src->r, "HTTP/2 stream refused data", NGHTTP2_INTERNAL_ERROR);
			return -1;
		}
		want = (size_t)n; /* room after bytes still queued may be less */
	} else if (zt_buf_reserve(&d->buf, want, &p) < 0) {
		abort(); /* the buffer is empty and want is at most its limit */
	}
	do
		n = recv(fd, p, want, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0 && st) {
		zt_h2_stream_commit(st, (size_t)n);
		delivered(d, (size_t)n);
		return n;
	}
	if (n > 0) {
		zt_buf_commit(&d->buf, (size_t)n);
		return n;
	}
	if (n == 0) {
		d->eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	io_fail(d->src, errno);
	return -1;
}

/* The source ended and everything reached dst: pass the half-close on. */
static void end_dir(struct dir *d)
{
	d->done = true;
	if (d->dst->fd >= 0) {
		/* A failure here (peer already gone) surfaces on the other direction. */
		shutdown(d->dst->fd, SHUT_WR);
	} else if (d->dst->st) {
		int err = zt_h2_stream_end(d->dst->st, NULL, 0);
		if (err < 0)
			zt_debug("END_STREAM: %s", zt_strerror(err));
	}
}

/* Moves bytes until dst blocks, src has nothing, or the budget is spent. */
static void pump(struct dir *d)
{
	struct zt_relay *r = d->src->r;
	size_t budget = PUMP_BUDGET;

	while (!r->closing && !d->done) {
		if (flush(d) <= 0)
			return;
		if (d->eof) {
			end_dir(d);
			return;
		}
		if (d->src->fd < 0 || budget == 0)
			return; /* a stream delivers by callback */
		ssize_t n = fill(d);
		if (n < 0 || (n == 0 && !d->eof))
			return;
		budget -= (size_t)n < budget ? (size_t)n : budget;
	}
}

static void on_io(struct zt_io *io, unsigned events, void *arg);

/* Watches a socket for what its two directions wait for right now. */
static int watch(struct end *e)
{
	struct zt_relay *r = e->r;
	const struct dir *out = &r->dir[e->side], *in = &r->dir[!e->side];
	unsigned ev = 0;

	if (e->fd < 0)
		return 0;
	if (!out->done && !out->eof && !out->wait_room && queued(out) == 0)
		ev |= ZT_IO_READ;
	if (!in->done && queued(in) > 0)
		ev |= ZT_IO_WRITE;
	if (ev == 0) {
		zt_io_stop(&e->io);
		return 0;
	}
	if (!e->io.active)
		return zt_io_start(r->loop, &e->io, e->fd, ev, on_io, e);
	return zt_io_set(&e->io, ev);
}

/* After any progress: finish when both directions are done, else refresh the watchers. */
static void settle(struct zt_relay *r)
{
	if (r->closing)
		return;
	if (r->dir[CLIENT].done && r->dir[SERVER].done) {
		close_all(r, NULL, false, 0);
		return;
	}
	for (int i = 0; i < 2; i++) {
		int err = watch(&r->end[i]);
		if (err < 0) {
			zt_warn("cannot watch socket: %s", zt_strerror(err));
			fail(r, "event loop failure", NGHTTP2_INTERNAL_ERROR);
			return;
		}
	}
}

static void on_io(struct zt_io *io, unsigned events, void *arg)
{
	struct end *e = arg;
	struct zt_relay *r = e->r;

	(void)io;
	if (events & ZT_IO_READ)
		pump(&r->dir[e->side]);
	if (events & ZT_IO_WRITE)
		pump(&r->dir[!e->side]);
	settle(r);
}

/* ---- stream callbacks -------------------------------------------------------------------- */

static void st_data(struct zt_h2_stream *st, const uint8_t *p, size_t len, void *arg)
{
	struct end *e = arg;
	struct zt_relay *r = e->r;
	struct dir *d = &r->dir[e->side];
	size_t off = 0;

	if (d->done) {
		zt_h2_stream_consume(st, len);
		return;
	}
	/* Straight to the socket when nothing waits before these bytes. */
	if (queued(d) == 0) {
		ssize_t n = put(d, p, len);
		if (n < 0)
			return;
		delivered(d, (size_t)n);
		off = (size_t)n;
	}
	if (off < len && zt_buf_append(&d->buf, p + off, len - off) < 0) {
		fail(r, "HTTP/2 peer sent past its window", NGHTTP2_FLOW_CONTROL_ERROR);
		return;
	}
	settle(r);
}

static void st_end(struct zt_h2_stream *st, void *arg)
{
	struct end *e = arg;

	(void)st;
	e->r->dir[e->side].eof = true;
	pump(&e->r->dir[e->side]);
	settle(e->r);
}

static void st_writable(struct zt_h2_stream *st, void *arg)
{
	struct end *e = arg;

	(void)st;
	e->r->dir[!e->side].wait_room = false;
	pump(&e->r->dir[!e->side]);
	settle(e->r);
}

static void st_close(struct zt_h2_stream *st, uint32_t code, void *arg)
{
	static const char *const reset[2] = {"stream reset by client", "stream reset by server"};
	struct end *e = arg;
	struct zt_relay *r = e->r;
	struct dir *in = &r->dir[e->side], *out = &r->dir[!e->side];
	bool lost = zt_h2_conn_closing(zt_h2_stream_conn(st));

	e->st = NULL;
	if (code != NGHTTP2_NO_ERROR && (code != NGHTTP2_CANCEL || lost)) {
		fail(r, lost ? "HTTP/2 connection closed" : reset[e->side], 0);
		return;
	}
	/* spec §2.6: a clean end or NO_ERROR/CANCEL reset is EOF; nothing more can be sent, so
	 * bytes still queued for the stream are dropped (they never counted as delivered). */
	in->eof = true;
	if (!out->done) {
		out->done = true;
		zt_buf_consume(&out->buf, zt_buf_len(&out->buf));
	}
	pump(in);
	settle(r);
}

static const struct zt_h2_stream_cbs stream_cbs = {
        .on_data = st_data,
        .on_end = st_end,
        .on_writable = st_writable,
        .on_close = st_close,
};

/* ---- API --------------------------------------------------------------------------------- */

static bool valid_end(const struct zt_relay_end *e)
{
	return (e->fd >= 0) != (e->st != NULL);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return -errno;
	return 0;
}

static void open_pipe(struct dir *d)
{
	int p[2];
	int cap;

	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
		zt_debug("pipe: %s; copying instead of splicing", strerror(errno));
		return;
	}
	/* The default differs with the page size; what a pipe holds must fit the buffer
	 * (stop_splicing). */
	cap = fcntl(p[0], F_SETPIPE_SZ, (int)PIPE_SMALL);
	if (cap <= 0 || (size_t)cap > PIPE_BIG) {
		close(p[0]);
		close(p[1]);
		return;
	}
	d->pipe_r = p[0];
	d->pipe_w = p[1];
	d->pipe_cap = (size_t)cap;
}

int zt_relay_start(struct zt_relay **out, struct zt_loop *loop, struct zt_relay_end client,
                   struct zt_relay_end server, const struct zt_relay_opts *opts,
                   zt_relay_done_cb cb, void *arg)
{
	const struct zt_relay_end *ends[2] = {&client, &server};
	struct zt_relay *r = NULL;
	int err;

	*out = NULL;
	if (!valid_end(&client) || !valid_end(&server) || (client.st && server.st))
		return ZT_E_UNSUPPORTED;
	for (int i = 0; i < 2; i++)
		if (ends[i]->fd >= 0 && (err = set_nonblock(ends[i]->fd)) < 0)
			return err;
	r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->cb = cb;
	r->arg = arg;
	for (int i = 0; i < 2; i++) {
		struct end *e = &r->end[i];
		struct dir *d = &r->dir[i];
		*e = (struct end){.r = r, .side = i, .fd = ends[i]->fd, .st = ends[i]->st};
		d->src = e;
		d->dst = &r->end[!i];
		d->pipe_r = d->pipe_w = -1;
		/* From TCP: chunks up to CHUNK_BIG, or a full pipe when splicing stops. */
		zt_buf_init(&d->buf, e->st ? FROM_H2_MAX : PIPE_BIG);
	}
	for (int i = 0; i < 2; i++) {
		if (client.fd >= 0 && server.fd >= 0 && !(opts && opts->no_splice))
			open_pipe(&r->dir[i]);
		if (r->end[i].fd >= 0) {
			err = zt_io_start(loop, &r->end[i].io, r->end[i].fd, ZT_IO_READ, on_io,
			                  &r->end[i]);
			if (err < 0)
				goto fail;
		}
	}
	for (int i = 0; i < 2; i++)
		if (r->end[i].st)
			zt_h2_stream_set_cbs(r->end[i].st, &stream_cbs, &r->end[i]);
	r->start_ms = zt_loop_now(loop);
	zt_live_inc(&zt_live_relay);
	*out = r;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		zt_io_stop(&r->end[i].io);
		close_pipe(&r->dir[i]);
	}
	free(r);
	return err;
}

void zt_relay_abort(struct zt_relay *r, const char *reason)
{
	fail(r, reason ? reason : "aborted", NGHTTP2_CANCEL);
}

void zt_relay_stats(const struct zt_relay *r, struct zt_relay_stats *out)
{
	*out = (struct zt_relay_stats){
	        .bytes_up = r->dir[CLIENT].bytes,
	        .bytes_down = r->dir[SERVER].bytes,
	        .queued_up = queued(&r->dir[CLIENT]),
	        .queued_down = queued(&r->dir[SERVER]),
	        .alloc = r->dir[CLIENT].buf.cap + r->dir[SERVER].buf.cap,
	};
}
