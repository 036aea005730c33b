/* Fuzz target: the admin server as a local client reaches it (admin/http.c on
 * libmicrohttpd, admin/admin.c's routes): the input is written as is on a TCP connection to
 * a real admin server on 127.0.0.1 and the loop run until the server has answered (or waits for
 * more) or closed. Request line and headers (libmicrohttpd's parser), the body limit
 * (413), routing (404/405), query arguments and every handler (/logging, /config_dump,
 * /debug/heap, /quitquitquit without a stop hook) see the bytes. Any answer must be HTTP/1.x.
 * Input: raw bytes of one or more requests. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/admin.h"
#include "runtime/log.h"
#include "runtime/loop.h"
#include "tests/fuzz/fuzz.h"

static struct zt_loop *loop;
static struct zt_admin *admin;
static struct sockaddr_in sa;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	zt_log_set_spec("off", NULL, 0);
	if (zt_loop_new(&loop) < 0 || !(admin = zt_admin_new(loop, "127.0.0.1:0", err, sizeof(err))))
		abort();
	sa.sin_family = AF_INET;
	sa.sin_port = htons(zt_admin_port(admin));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[65536], first[8] = "";
	struct linger lg = {1, 0}; /* close with a reset: the server lets go at once */
	size_t got = 0;
	int fd, tries, idle;

	if (size > 32768)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	/* Loopback buffers hold the whole input: nothing waits for the server to read. The
	 * write side stays open: after a half-close libmicrohttpd as driven here answers only
	 * at its 30 s connection timeout (see README, Findings). */
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	/* Server and client share this thread: the server has read everything after a turn or
	 * two of the loop. Done when it closes, or after 100 turns that bring nothing more
	 * (an answer sent, or an incomplete request it waits on). */
	for (tries = 0, idle = 0; tries < 100000 && idle < 100; tries++) {
		ssize_t n;

		zt_loop_run_once(loop, 0);
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			if (got < sizeof(first) - 1)
				memcpy(first + got, buf,
				       (size_t)n < sizeof(first) - 1 - got ? (size_t)n
				                                          : sizeof(first) - 1 - got);
			got += (size_t)n;
			idle = 0;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			break;
		idle++;
	}
	if (got >= 7 && memcmp(first, "HTTP/1.", 7) != 0)
		__builtin_trap();
	close(fd);
	zt_log_set_spec("off", NULL, 0); /* /logging may have changed it */
	return 0;
}
