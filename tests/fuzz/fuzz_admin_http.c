/* Fuzz target: the admin server as a local client reaches it (admin/http.c on
 * libmicrohttpd, admin/admin.c's routes): the input is written on a TCP connection to a real
 * admin server on 127.0.0.1, the client shuts its write side and reads until the server
 * closes, running the server's loop meanwhile. Request line and headers (libmicrohttpd's
 * parser), the body limit (413), routing (404/405), query arguments and every handler
 * (/logging, /config_dump, /debug/heap, /quitquitquit without a stop hook) see the bytes.
 * Any answer must be HTTP/1.x, and the server must close within 5 s: every request it was
 * given answered, whatever is incomplete dropped. Input: raw bytes of one or more requests. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "tests/fuzz/fuzz.h"

#define DEADLINE_MS 5000

static struct zt_loop *loop;
static struct zt_admin *admin;
static struct sockaddr_in sa;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A harness failure that is not the input's doing: says what, then aborts. */
static void die(const char *what, int err)
{
	fprintf(stderr, "fuzz_admin_http: %s: %s\n", what, strerror(err));
	abort();
}

/* One turn of the server's loop: without waiting while the exchange moves, then in 1 ms
 * steps (the client's socket is not in the loop; nothing is lost by waiting a little). */
static void turn(unsigned idle)
{
	zt_loop_run_once(loop, idle < 100 ? 0 : 1);
}

/* Lines that an input's own /logging request turned on are formatted, then dropped: writing
 * them out was most of the target's time (and a gigabyte of log per run). */
static void discard(enum zt_log_level level, const char *line, size_t len, void *arg)
{
	(void)level;
	(void)line;
	(void)len;
	(void)arg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	zt_log_set_sink(discard, NULL);
	if (zt_loop_new(&loop) < 0 || !(admin = zt_admin_new(loop, "127.0.0.1:0", err, sizeof(err))))
		abort();
	sa.sin_family = AF_INET;
	sa.sin_port = htons(zt_admin_port(admin));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return 0;
}

/* Connects fd (non-blocking) to the admin server, running its loop meanwhile. A signal
 * (libFuzzer's timer) may interrupt connect(): the handshake goes on and is waited for. A
 * refusal or no handshake within the deadline is the server's failure: it listens on its own
 * and this client is its only one. */
static void connect_admin(int fd)
{
	uint64_t deadline = now_ms() + DEADLINE_MS;
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	socklen_t len = sizeof(int);
	unsigned idle = 0;
	int err = 0;

	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return;
	if (errno != EINPROGRESS && errno != EINTR)
		die("connect to the admin server", errno);
	for (;;) {
		int r = poll(&pfd, 1, 0);

		if (r > 0)
			break;
		if (r < 0 && errno != EINTR)
			die("poll", errno);
		if (now_ms() > deadline)
			die("connect to the admin server", ETIMEDOUT);
		turn(idle++);
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
		die("connect to the admin server", err ? err : errno);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[65536], first[8] = "";
	struct linger lg = {1, 0}; /* close with a reset: the server lets go at once */
	uint64_t deadline;
	size_t sent = 0, got = 0;
	unsigned idle = 0;
	int fd;

	if (size > 32768)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		die("client socket", errno);
	connect_admin(fd);
	deadline = now_ms() + DEADLINE_MS;
	/* Everything, then the end of input (the server may answer and close before the end:
	 * a refused body, an error status). */
	while (sent < size && now_ms() < deadline) {
		ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);

		if (n > 0)
			sent += (size_t)n;
		else if (errno == EAGAIN || errno == EINTR)
			turn(idle++);
		else
			break;
	}
	(void)shutdown(fd, SHUT_WR);
	/* Server and client share this thread: run the server until it closes. */
	for (idle = 0;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n > 0) {
			if (got < sizeof(first) - 1)
				memcpy(first + got, buf,
				       (size_t)n < sizeof(first) - 1 - got ? (size_t)n
				                                          : sizeof(first) - 1 - got);
			got += (size_t)n;
			idle = 0;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			break; /* closed, or reset (a close with request bytes left unread) */
		if (now_ms() > deadline)
			__builtin_trap(); /* the server holds a connection whose client is done */
		turn(idle++);
	}
	if (got >= 7 && memcmp(first, "HTTP/1.", 7) != 0)
		__builtin_trap();
	close(fd);
	zt_log_set_spec("off", NULL, 0); /* /logging may have changed it */
	return 0;
}
