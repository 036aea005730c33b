/* relay_bench: throughput of one proxied TCP connection over loopback, three ways in one run:
 * the relay with splice(2), the relay copying through its buffers, and a plain blocking
 * read/write loop (64 KiB buffer) as the baseline. A source thread writes N MiB, the proxy
 * (this thread) forwards them, a sink thread reads until EOF; time runs from the proxy's
 * accept to the sink's EOF. Also the proxy thread's own CPU time per GiB forwarded, which the
 * other two threads competing for the same cores do not blur as much.
 * Usage: relay_bench [MIB] [RUNS]; prints medians. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hbone/relay.h"
#include "runtime/err.h"
#include "runtime/loop.h"

enum { SPLICE, COPY, PLAIN, NMODES };
static const char *const mode_names[NMODES] = {"relay splice", "relay copy", "plain loop"};

static uint64_t total;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "relay_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int listener(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	*port = ntohs(sin.sin_port);
	return l;
}

static int dial(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                          .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("connect");
	return fd;
}

struct peer {
	uint16_t port;
	int listen_fd;
	uint64_t bytes;
	double end;
};

static void *source(void *arg)
{
	static char buf[256 * 1024];
	struct peer *p = arg;
	int fd = dial(p->port);

	memset(buf, 'x', sizeof(buf));
	while (p->bytes < total) {
		size_t n =
		        total - p->bytes < sizeof(buf) ? (size_t)(total - p->bytes) : sizeof(buf);
		ssize_t w = write(fd, buf, n);
		if (w < 0)
			die("source write");
		p->bytes += (uint64_t)w;
	}
	close(fd);
	return NULL;
}

static void *sink(void *arg)
{
	static char buf[256 * 1024];
	struct peer *p = arg;
	int fd = accept(p->listen_fd, NULL, NULL);
	ssize_t n;

	if (fd < 0)
		die("accept");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		p->bytes += (uint64_t)n;
	if (n < 0)
		die("sink read");
	p->end = now_s();
	close(fd);
	return NULL;
}

static void plain_copy(int from, int to)
{
	static char buf[64 * 1024];
	ssize_t n;

	while ((n = read(from, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, buf + off, (size_t)(n - off));
			if (w < 0)
				die("plain write");
			off += w;
		}
	}
	if (n < 0)
		die("plain read");
	shutdown(to, SHUT_WR);
	close(from);
	close(to);
}

static bool relay_over;
static const char *relay_error;
static uint64_t relay_bytes;

static void on_done(struct zt_relay *r, const struct zt_relay_result *res, void *arg)
{
	(void)r;
	(void)arg;
	relay_over = true;
	relay_error = res->error;
	relay_bytes = res->bytes_up;
}

/* One transfer; returns MB/s (10^6 bytes per second) and the proxy's CPU ms per GiB. */
static double run(int mode, double *cpu_ms_per_gib)
{
	double cpu0;
	struct peer src = {0}, dst = {0};
	pthread_t ts, td;
	int l = listener(&src.port), client, server;
	double start;

	dst.listen_fd = listener(&dst.port);
	if (pthread_create(&td, NULL, sink, &dst) || pthread_create(&ts, NULL, source, &src))
		die("thread");
	client = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (client < 0)
		die("accept");
	start = now_s();
	cpu0 = cpu_s();
	server = dial(dst.port);
	if (mode == PLAIN) {
		plain_copy(client, server);
	} else {
		struct zt_loop *loop;
		struct zt_relay *r;
		struct zt_relay_opts opts = {.no_splice = mode == COPY};
		int err;

		if (zt_loop_new(&loop) < 0)
			die("loop");
		relay_over = false;
		err = zt_relay_start(&r, loop, (struct zt_relay_end){.fd = client},
		                     (struct zt_relay_end){.fd = server}, &opts, on_done, NULL);
		if (err < 0) {
			fprintf(stderr, "relay_bench: relay: %s\n", zt_strerror(err));
			exit(1);
		}
		while (!relay_over)
			zt_loop_run_once(loop, 1000);
		zt_loop_free(loop);
		if (relay_error || relay_bytes != total) {
			fprintf(stderr, "relay_bench: relay ended with %s after %llu bytes\n",
			        relay_error ? relay_error : "no error",
			        (unsigned long long)relay_bytes);
			exit(1);
		}
	}
	*cpu_ms_per_gib = (cpu_s() - cpu0) * 1000.0 / ((double)total / (1 << 30));
	pthread_join(ts, NULL);
	pthread_join(td, NULL);
	close(l);
	close(dst.listen_fd);
	if (dst.bytes != total) {
		fprintf(stderr, "relay_bench: sink got %llu of %llu bytes\n",
		        (unsigned long long)dst.bytes, (unsigned long long)total);
		exit(1);
	}
	return (double)total / (dst.end - start) / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 1024;
	long runs = argc > 2 ? strtol(argv[2], NULL, 10) : 3;
	double r[NMODES][32], c[NMODES][32];

	if (mib <= 0 || mib > 1 << 20 || runs <= 0 || runs > 32) {
		fprintf(stderr, "usage: relay_bench [MIB 1..1048576] [RUNS 1..32]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	total = (uint64_t)mib << 20;
	/* Interleaved, so drifting machine load hits every mode alike. */
	for (long i = 0; i < runs; i++)
		for (int m = 0; m < NMODES; m++)
			r[m][i] = run(m, &c[m][i]);
	printf("%-14s", "transfer");
	for (int m = 0; m < NMODES; m++)
		printf("%16s", mode_names[m]);
	printf("\n%-14s", "median MB/s");
	for (int m = 0; m < NMODES; m++) {
		qsort(r[m], (size_t)runs, sizeof(double), cmp);
		printf("%16.0f", r[m][runs / 2]);
	}
	printf("\n%-14s", "best MB/s");
	for (int m = 0; m < NMODES; m++)
		printf("%16.0f", r[m][runs - 1]);
	printf("\n%-14s", "proxy CPU");
	for (int m = 0; m < NMODES; m++) {
		qsort(c[m], (size_t)runs, sizeof(double), cmp);
		printf("%10.0f ms/GiB", c[m][runs / 2]);
	}
	printf("\n(%ld MiB per transfer, %ld runs each, loopback TCP, one direction)\n", mib, runs);
	return 0;
}
