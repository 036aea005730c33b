/* Control socket clients. One pump() per client drives it: write queued replies, take the
 * next buffered line when no command is running, read more only when the replies are out
 * (a client that never reads cannot make the agent buffer without bound). A client is freed
 * from a defer once it is closed and no command of its is running. */
#include "ctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "usock.h"

ZT_LOG_MODULE("ctl");

struct cni_ctl_client {
	struct cni_ctl *ctl;
	LIST_ENTRY(cni_ctl_client) link;
	int fd;
	struct zt_io io;
	struct zt_timer idle;
	struct zt_defer kick, reap;
	char in[CNI_LINE_MAX + 2]; /* a full line, its newline, and room to detect overflow */
	size_t inlen;
	struct zt_buf out;
	bool busy;   /* a command is running: the owner will reply */
	bool rd_eof; /* the client sent everything it will send */
	bool quit;   /* stop after the queued replies are written */
	bool closed;
};

struct cni_ctl {
	struct zt_loop *loop;
	int fd;
	struct zt_io io;
	char path[128];
	LIST_HEAD(, cni_ctl_client) clients;
	size_t nclients;
	cni_ctl_cmd_cb cb;
	void *arg;
};

static void pump(struct cni_ctl_client *cl);

static void client_free(struct cni_ctl_client *cl)
{
	zt_io_stop(&cl->io);
	zt_timer_stop(&cl->idle);
	zt_defer_stop(&cl->kick);
	zt_defer_stop(&cl->reap);
	if (cl->fd >= 0)
		close(cl->fd);
	zt_buf_clear(&cl->out);
	free(cl);
}

static void on_reap(struct zt_defer *d, void *arg)
{
	struct cni_ctl_client *cl = arg;
	struct cni_ctl *ctl = cl->ctl;

	(void)d;
	LIST_REMOVE(cl, link);
	ctl->nclients--;
	client_free(cl);
}

/* Closes the connection; the struct lives on while a command runs (busy). */
static void client_close(struct cni_ctl_client *cl, const char *why)
{
	if (cl->closed)
		return;
	cl->closed = true;
	zt_debug("control client closed: %s", why);
	zt_io_stop(&cl->io);
	zt_timer_stop(&cl->idle);
	zt_defer_stop(&cl->kick);
	close(cl->fd);
	cl->fd = -1;
	if (!cl->busy)
		zt_defer_start(cl->ctl->loop, &cl->reap, on_reap, cl);
}

static void on_kick(struct zt_defer *d, void *arg)
{
	(void)d;
	pump(arg);
}

static void on_idle(struct zt_timer *t, void *arg)
{
	struct cni_ctl_client *cl = arg;

	(void)t;
	if (cl->busy)
		zt_timer_start(cl->ctl->loop, &cl->idle, CNI_CTL_IDLE_MS, on_idle, cl);
	else
		client_close(cl, "idle");
}

static void queue_line(struct cni_ctl_client *cl, const char *line)
{
	if (zt_buf_appendf(&cl->out, "%s\n", line) < 0) {
		zt_warn("control reply of %zu bytes dropped: client not reading", strlen(line));
		if (zt_buf_appendf(&cl->out, "error: reply too large\n") < 0)
			cl->quit = true;
	}
}

/* Takes the first buffered line (with its newline) and runs it. */
static void take_line(struct cni_ctl_client *cl, size_t len)
{
	struct cni_ctl *ctl = cl->ctl;
	struct cni_cmd cmd;
	char err[256], reply[300];
	int rc = cni_cmd_parse(cl->in, len, &cmd, err, sizeof(err));

	memmove(cl->in, cl->in + len + 1, cl->inlen - len - 1);
	cl->inlen -= len + 1;
	zt_timer_start(ctl->loop, &cl->idle, CNI_CTL_IDLE_MS, on_idle, cl);
	if (rc < 0) {
		snprintf(reply, sizeof(reply), "error: %s", err);
		queue_line(cl, reply);
		return;
	}
	cl->busy = true;
	ctl->cb(cl, &cmd, ctl->arg);
}

static bool flush_out(struct cni_ctl_client *cl)
{
	while (zt_buf_len(&cl->out) > 0) {
		ssize_t n = send(cl->fd, zt_buf_data(&cl->out), zt_buf_len(&cl->out),
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0) {
			client_close(cl, strerror(errno));
			return false;
		}
		zt_buf_consume(&cl->out, (size_t)n);
	}
	return true;
}

static void pump(struct cni_ctl_client *cl)
{
	unsigned want = 0;

	while (!cl->closed) {
		char *nl;
		ssize_t n;

		if (!flush_out(cl))
			return;
		if (cl->busy || cl->quit)
			break;
		nl = memchr(cl->in, '\n', cl->inlen);
		if (nl) {
			take_line(cl, (size_t)(nl - cl->in));
			continue;
		}
		if (cl->inlen > CNI_LINE_MAX) {
			char reply[80];

			snprintf(reply, sizeof(reply), "error: line longer than %d bytes",
			         CNI_LINE_MAX);
			queue_line(cl, reply);
			cl->quit = true;
			continue;
		}
		if (cl->rd_eof) {
			if (cl->inlen == 0)
				break;
			cl->in[cl->inlen++] = '\n'; /* a last line without its newline */
			continue;
		}
		if (zt_buf_len(&cl->out) > 0)
			break;
		n = recv(cl->fd, cl->in + cl->inlen, sizeof(cl->in) - 1 - cl->inlen, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			client_close(cl, strerror(errno));
			return;
		}
		if (n == 0)
			cl->rd_eof = true;
		cl->inlen += (size_t)n;
	}
	if (cl->closed)
		return;
	if (zt_buf_len(&cl->out) == 0 && !cl->busy && (cl->quit || cl->rd_eof)) {
		client_close(cl, cl->quit ? "after an error" : "end of input");
		return;
	}
	if (zt_buf_len(&cl->out) > 0)
		want |= ZT_IO_WRITE;
	else if (!cl->busy && !cl->quit && !cl->rd_eof)
		want |= ZT_IO_READ;
	zt_io_set(&cl->io, want);
}

static void on_client_io(struct zt_io *io, unsigned events, void *arg)
{
	(void)io;
	(void)events;
	pump(arg);
}

void cni_ctl_reply(struct cni_ctl_client *cl, const char *line)
{
	cl->busy = false;
	if (cl->closed) {
		zt_defer_start(cl->ctl->loop, &cl->reap, on_reap, cl);
		return;
	}
	queue_line(cl, line);
	zt_timer_start(cl->ctl->loop, &cl->idle, CNI_CTL_IDLE_MS, on_idle, cl);
	zt_defer_start(cl->ctl->loop, &cl->kick, on_kick, cl);
}

static void on_accept(struct zt_io *io, unsigned events, void *arg)
{
	struct cni_ctl *ctl = arg;

	(void)io;
	(void)events;
	for (int burst = 0; burst < 16; burst++) {
		struct cni_ctl_client *cl;
		int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				zt_warn("accept: %s", strerror(errno));
			return;
		}
		if (ctl->nclients >= CNI_CTL_MAX_CLIENTS) {
			static const char busy[] = "error: too many control clients\n";

			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				zt_debug("refused control client: %s", strerror(errno));
			close(fd);
			continue;
		}
		cl = xcalloc(1, sizeof(*cl));
		cl->ctl = ctl;
		cl->fd = fd;
		zt_buf_init(&cl->out, CNI_CTL_OUT_MAX);
		if (zt_io_start(ctl->loop, &cl->io, fd, ZT_IO_READ, on_client_io, cl) < 0) {
			close(fd);
			free(cl);
			continue;
		}
		LIST_INSERT_HEAD(&ctl->clients, cl, link);
		ctl->nclients++;
		zt_timer_start(ctl->loop, &cl->idle, CNI_CTL_IDLE_MS, on_idle, cl);
	}
}

int cni_ctl_new(struct zt_loop *loop, const char *path, cni_ctl_cmd_cb cb, void *arg,
                struct cni_ctl **out)
{
	struct cni_ctl *ctl;
	int fd, rc;

	*out = NULL;
	if (strlen(path) >= sizeof(ctl->path))
		return ZT_E_TOOBIG;
	fd = cni_usock_listen(path, SOCK_STREAM);
	if (fd < 0)
		return fd;
	ctl = xcalloc(1, sizeof(*ctl));
	ctl->loop = loop;
	LIST_INIT(&ctl->clients);
	ctl->fd = fd;
	ctl->cb = cb;
	ctl->arg = arg;
	memcpy(ctl->path, path, strlen(path) + 1);
	rc = zt_io_start(loop, &ctl->io, fd, ZT_IO_READ, on_accept, ctl);
	if (rc < 0) {
		close(fd);
		unlink(path);
		free(ctl);
		return rc;
	}
	*out = ctl;
	return 0;
}

void cni_ctl_free(struct cni_ctl *ctl)
{
	struct cni_ctl_client *cl;

	if (!ctl)
		return;
	zt_io_stop(&ctl->io);
	close(ctl->fd);
	unlink(ctl->path);
	while ((cl = LIST_FIRST(&ctl->clients))) {
		LIST_REMOVE(cl, link);
		client_free(cl);
	}
	free(ctl);
}
