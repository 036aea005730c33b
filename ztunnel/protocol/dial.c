/* Invariant: a dial owns at most one lookup socket and one connecting socket at a time, both
 * watched by its single io watcher, and ends exactly once through finish(). The lookup thread
 * shares nothing with the dial but the write end of a socket pair: it sends its answer as one
 * datagram and exits, so a cancelled dial never races with it. */
#include "protocol/dial.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/addr.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/mem.h"

ZT_LOG_MODULE("dial");

#define MAX_ADDRS 8
#define MAX_HOST  253

struct answer {
	int err;
	int n;
	struct sockaddr_storage a[MAX_ADDRS];
	socklen_t len[MAX_ADDRS];
};

struct lookup {
	char host[MAX_HOST + 1];
	char port[8];
	int fd; /* write end; the thread closes it */
};

struct zt_dial {
	struct zt_loop *loop;
	zt_dial_cb cb;
	void *arg;
	struct zt_io io;
	struct zt_timer deadline;
	struct zt_defer kick;
	int lookup_fd; /* read end of the lookup's socket pair, -1 when done */
	int fd;        /* socket being connected, -1 when none */
	struct answer ans;
	int next;
	int last_err;
};

static void *lookup_main(void *arg)
{
	struct lookup *l = arg;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	struct answer ans = {0};
	int rc = getaddrinfo(l->host, l->port, &hints, &res);

	if (rc != 0) {
		ans.err = rc == EAI_SYSTEM ? -errno : ZT_E_NOTFOUND;
	} else {
		for (struct addrinfo *ai = res; ai && ans.n < MAX_ADDRS; ai = ai->ai_next) {
			if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
			    ai->ai_addrlen > sizeof(ans.a[0]))
				continue;
			memcpy(&ans.a[ans.n], ai->ai_addr, ai->ai_addrlen);
			ans.len[ans.n++] = ai->ai_addrlen;
		}
		freeaddrinfo(res);
	}
	/* The dial may be gone: a failed send is fine. */
	(void)send(l->fd, &ans, sizeof(ans), MSG_NOSIGNAL);
	close(l->fd);
	free(l);
	return NULL;
}

static void finish(struct zt_dial *d, int fd, int err)
{
	zt_dial_cb cb = d->cb;
	void *arg = d->arg;

	d->fd = -1; /* handed over (or already closed) */
	zt_dial_cancel(d);
	cb(fd, err, arg);
}

static void on_connect_io(struct zt_io *io, unsigned events, void *arg);

/* Tries the remaining addresses until one connects or is in progress. */
static void try_next(struct zt_dial *d)
{
	while (d->next < d->ans.n) {
		const struct sockaddr_storage *ss = &d->ans.a[d->next];
		socklen_t len = d->ans.len[d->next++];
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			d->last_err = -errno;
			continue;
		}
		if (connect(fd, (const struct sockaddr *)ss, len) == 0) {
			finish(d, fd, 0);
			return;
		}
		if (errno == EINPROGRESS) {
			int rc = zt_io_start(d->loop, &d->io, fd, ZT_IO_WRITE, on_connect_io, d);

			if (rc == 0) {
				d->fd = fd;
				return;
			}
			d->last_err = rc;
		} else {
			d->last_err = -errno;
		}
		close(fd);
	}
	finish(d, -1, d->last_err ? d->last_err : ZT_E_NOTFOUND);
}

static void on_connect_io(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_dial *d = arg;
	int so_err = 0, fd = d->fd;
	socklen_t l = sizeof(so_err);

	(void)events;
	zt_io_stop(io);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &l) < 0)
		so_err = errno;
	if (so_err == 0) {
		finish(d, fd, 0);
		return;
	}
	zt_debug("connect attempt failed: %s", strerror(so_err));
	d->last_err = -so_err;
	d->fd = -1;
	close(fd);
	try_next(d);
}

static void on_lookup_io(struct zt_io *io, unsigned events, void *arg)
{
	struct zt_dial *d = arg;
	ssize_t n = recv(d->lookup_fd, &d->ans, sizeof(d->ans), 0);

	(void)events;
	if (n < 0 && errno == EAGAIN)
		return;
	zt_io_stop(io);
	close(d->lookup_fd);
	d->lookup_fd = -1;
	if (n != (ssize_t)sizeof(d->ans) || d->ans.n < 0 || d->ans.n > MAX_ADDRS) {
		finish(d, -1, n < 0 ? -errno : ZT_E_NOTFOUND);
		return;
	}
	if (d->ans.err) {
		finish(d, -1, d->ans.err);
		return;
	}
	try_next(d);
}

static void on_kick(struct zt_defer *k, void *arg)
{
	(void)k;
	try_next(arg);
}

static void on_deadline(struct zt_timer *t, void *arg)
{
	(void)t;
	finish(arg, -1, ZT_E_TIMEOUT);
}

static int start_lookup(struct zt_dial *d, const char *host, uint16_t port)
{
	struct lookup *l;
	pthread_attr_t attr;
	pthread_t th;
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	l = xcalloc(1, sizeof(*l));
	snprintf(l->host, sizeof(l->host), "%s", host);
	snprintf(l->port, sizeof(l->port), "%u", port);
	l->fd = sv[1];
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &attr, lookup_main, l);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		close(sv[0]);
		close(sv[1]);
		free(l);
		return -rc;
	}
	d->lookup_fd = sv[0];
	rc = zt_io_start(d->loop, &d->io, sv[0], ZT_IO_READ, on_lookup_io, d);
	if (rc < 0) {
		close(sv[0]); /* the thread's send then fails; it still frees l */
		d->lookup_fd = -1;
	}
	return rc;
}

struct zt_dial *zt_dial_start(struct zt_loop *loop, const char *host, uint16_t port,
                              uint64_t timeout_ms, zt_dial_cb cb, void *arg, int *err)
{
	size_t hlen = host ? strlen(host) : 0;
	struct zt_sockaddr sa;
	struct zt_dial *d;
	int rc;

	if (hlen == 0 || hlen > MAX_HOST || port == 0 || timeout_ms == 0) {
		*err = ZT_E_RANGE;
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->loop = loop;
	d->cb = cb;
	d->arg = arg;
	d->lookup_fd = d->fd = -1;
	if (zt_ip_parse(&sa.ip, host, hlen) == 0) {
		sa.port = port;
		d->ans.len[0] = zt_addr_to_sockaddr(&sa, &d->ans.a[0]);
		d->ans.n = 1;
		zt_defer_start(loop, &d->kick, on_kick, d);
	} else if ((rc = start_lookup(d, host, port)) < 0) {
		free(d);
		*err = rc;
		return NULL;
	}
	zt_timer_start(loop, &d->deadline, timeout_ms, on_deadline, d);
	return d;
}

void zt_dial_cancel(struct zt_dial *d)
{
	if (!d)
		return;
	zt_io_stop(&d->io);
	zt_timer_stop(&d->deadline);
	zt_defer_stop(&d->kick);
	if (d->lookup_fd >= 0)
		close(d->lookup_fd);
	if (d->fd >= 0)
		close(d->fd);
	free(d);
}
