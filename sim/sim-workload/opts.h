/* Command-line flags of `sim-workload serve` and `sim-workload client`: text in, validated
 * options out, no I/O. Every rejection names the flag it is about, so scripts can tell which
 * one was wrong. String fields borrow from argv. */
#ifndef SW_OPTS_H
#define SW_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/addr.h"

#define SW_MAX_LISTEN      16
#define SW_MAX_BANNER      1024 /* bytes of --banner text, newline not included */
#define SW_MAX_CONNECTIONS 1000000u
#define SW_MAX_SAMPLES     10000000ull /* --connections x --requests: latency samples kept */

enum sw_mode { SW_MODE_ECHO, SW_MODE_SINK, SW_MODE_BANNER, SW_MODE_HTTP };

struct sw_listen {
	struct zt_sockaddr addr; /* port 0 means any free port */
	bool v6only;             /* an IPv6 wildcard shares its port with an IPv4 listener */
};

struct sw_serve_opts {
	struct sw_listen listen[SW_MAX_LISTEN];
	size_t nlisten;
	enum sw_mode mode;
	const char *banner; /* NULL: "hello from NAME" */
	const char *name;   /* NULL: the host name */
	const char *log;    /* log spec, e.g. "debug" */
};

struct sw_client_opts {
	struct zt_sockaddr connect;
	struct zt_ip bind; /* family 0: no --bind */
	uint64_t bytes;    /* bulk mode: bytes per connection */
	uint64_t requests; /* per connection; 0 = bulk mode */
	uint64_t size;     /* request mode: bytes per request */
	uint32_t connections;
	uint32_t concurrency;
	bool expect_banner;
	uint64_t timeout_ms; /* longest wait for progress on one connection */
	const char *log;
};

/* Parse the arguments after the subcommand word (argv[0] is that word). Return 0 with *o
 * filled, 1 when --help was asked for, or -1 with a one-line reason naming the flag in err. */
int sw_serve_opts_parse(struct sw_serve_opts *o, int argc, char **argv, char *err, size_t errlen);
int sw_client_opts_parse(struct sw_client_opts *o, int argc, char **argv, char *err, size_t errlen);

extern const char sw_serve_usage[];
extern const char sw_client_usage[];

#endif
