/* Flag parsing for both subcommands with getopt_long. Each value is checked completely
 * (numbers with strtoull and an end check, sizes and durations with the runtime parsers) and
 * every error message starts with the flag's name. */
#include "runtime/err.h"
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/duration.h"
#include "runtime/log.h"

const char sw_serve_usage[] =
        "usage: sim-workload serve [--listen [ADDR:]PORT]... [--mode echo|sink|banner|http]\n"
        "                          [--banner TEXT] [--name NAME] [--log SPEC]\n"
        "  --listen   IP:PORT, [IPv6]:PORT, or PORT alone for [::]:PORT dual-stack; repeatable;\n"
        "             port 0 picks a free port (default 8080)\n"
        "  --mode     echo: echo every byte, half-close aware (default)\n"
        "             sink: discard, then answer \"received N\\n\" after the client's EOF\n"
        "             banner: write one line on accept, then echo (implied by --banner)\n"
        "             http: HTTP/1.1 and h2c (prior knowledge); every request is answered 200\n"
        "             with what it carried: method, path, headers, source address\n"
        "  --banner   the banner line (default \"hello from NAME\")\n"
        "  --name     name used in the default banner (default: the host name)\n"
        "  --log      log spec such as info or debug (default info); logs go to stderr\n"
        "Prints \"listening ADDR\" per listener on stdout; SIGTERM or SIGINT exit with 0.\n";

const char sw_client_usage[] =
        "usage: sim-workload client --connect IP:PORT [--bytes SIZE] [--connections K]\n"
        "                           [--concurrency C] [--requests M] [--size SIZE]\n"
        "                           [--expect-banner] [--timeout DURATION] [--bind IP] [--log "
        "SPEC]\n"
        "  --connect      the server, IP:PORT or [IPv6]:PORT\n"
        "  --bytes        bulk mode: bytes each connection sends before half-closing, then reads\n"
        "                 the echo back and checks it (or the sink's \"received N\" line);\n"
        "                 sizes such as 1024, 64KiB, 1MiB (default 1024)\n"
        "  --connections  connections in all (default 1)\n"
        "  --concurrency  connections open at once (default: all of them)\n"
        "  --requests     request mode: round trips per connection, each --size bytes out and\n"
        "                 the same bytes back, latency measured (default 0: bulk mode)\n"
        "  --size         request size (default 1024)\n"
        "  --expect-banner read one line from the server first and report it\n"
        "  --timeout      longest wait for progress on a connection (default 10s)\n"
        "  --bind         source IP for every connection\n"
        "  --log          log spec such as info or debug (default warn); logs go to stderr\n"
        "Prints one JSON line of results on stdout. Exit 0 when every connection succeeded,\n"
        "1 otherwise, 2 for bad flags.\n";

#define reject(err, errlen, ...) zt_errf(-1, (err), (errlen), __VA_ARGS__)

/* Plain decimal, no sign or spaces. */
static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* Reports getopt's own complaints (unknown flag, missing value) and leftover arguments. */
static int reject_getopt(int opt, char **argv, char *err, size_t errlen)
{
	if (opt == ':')
		return reject(err, errlen, "flag %s needs a value", argv[optind - 1]);
	return reject(err, errlen, "unknown flag %s", argv[optind - 1]);
}

static int check_log(const char *spec, char *err, size_t errlen)
{
	char what[128];

	/* Applying it here is harmless: the caller would apply the same spec next. */
	if (zt_log_set_spec(spec, what, sizeof(what)) < 0)
		return reject(err, errlen, "bad --log '%s': %s", spec, what);
	return 0;
}

static int parse_listen(struct sw_serve_opts *o, const char *s, char *err, size_t errlen)
{
	struct sw_listen *l;
	uint64_t port;

	if (o->nlisten == SW_MAX_LISTEN)
		return reject(err, errlen, "too many --listen flags (at most %d)", SW_MAX_LISTEN);
	l = &o->listen[o->nlisten];
	memset(l, 0, sizeof(*l));
	if (parse_u64(s, &port)) {
		if (port > 65535)
			return reject(err, errlen, "bad --listen '%s': port over 65535", s);
		l->addr.ip.family = AF_INET6; /* [::], dual-stack */
		l->addr.port = (uint16_t)port;
	} else if (zt_addr_parse(&l->addr, s, strlen(s), ZT_ADDR_PORT0_OK) < 0) {
		return reject(err, errlen, "bad --listen '%s': want PORT, IP:PORT or [IPv6]:PORT",
		              s);
	}
	o->nlisten++;
	return 0;
}

/* An IPv6 wildcard is dual-stack unless an IPv4 listener takes the same port: then it is
 * IPv6-only, so that "0.0.0.0:P" and "[::]:P" can both bind. */
static void set_v6only(struct sw_serve_opts *o)
{
	for (size_t i = 0; i < o->nlisten; i++) {
		struct sw_listen *l = &o->listen[i];

		if (l->addr.ip.family != AF_INET6)
			continue;
		l->v6only = !zt_ip_is_unspecified(&l->addr.ip);
		for (size_t j = 0; j < o->nlisten && !l->v6only; j++)
			l->v6only = o->listen[j].addr.ip.family == AF_INET && l->addr.port != 0 &&
			            o->listen[j].addr.port == l->addr.port;
	}
}

int sw_serve_opts_parse(struct sw_serve_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option longopts[] = {
	        {"listen", required_argument, NULL, 'l'},
	        {"mode", required_argument, NULL, 'm'},
	        {"banner", required_argument, NULL, 'b'},
	        {"name", required_argument, NULL, 'n'},
	        {"log", required_argument, NULL, 'L'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	bool mode_set = false;
	int opt;

	memset(o, 0, sizeof(*o));
	o->log = "info";
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (parse_listen(o, optarg, err, errlen) < 0)
				return -1;
			break;
		case 'm':
			mode_set = true;
			if (strcmp(optarg, "echo") == 0)
				o->mode = SW_MODE_ECHO;
			else if (strcmp(optarg, "sink") == 0)
				o->mode = SW_MODE_SINK;
			else if (strcmp(optarg, "banner") == 0)
				o->mode = SW_MODE_BANNER;
			else if (strcmp(optarg, "http") == 0)
				o->mode = SW_MODE_HTTP;
			else
				return reject(err, errlen,
				              "bad --mode '%s': want echo, sink, banner or http", optarg);
			break;
		case 'b':
			if (strlen(optarg) > SW_MAX_BANNER || strpbrk(optarg, "\r\n"))
				return reject(err, errlen,
				              "bad --banner: want one line of at most %d bytes",
				              SW_MAX_BANNER);
			o->banner = optarg;
			break;
		case 'n':
			if (!*optarg || strlen(optarg) > 255 || strpbrk(optarg, "\r\n"))
				return reject(err, errlen,
				              "bad --name: want one line of 1 to 255 bytes");
			o->name = optarg;
			break;
		case 'L':
			if (check_log(optarg, err, errlen) < 0)
				return -1;
			o->log = optarg;
			break;
		case 'h':
			return 1;
		default:
			return reject_getopt(opt, argv, err, errlen);
		}
	}
	if (optind < argc)
		return reject(err, errlen, "unexpected argument '%s'", argv[optind]);
	if (o->banner && !mode_set)
		o->mode = SW_MODE_BANNER;
	if (o->banner && o->mode != SW_MODE_BANNER)
		return reject(err, errlen, "--banner needs --mode banner");
	if (o->nlisten == 0) {
		o->listen[0].addr.ip.family = AF_INET6;
		o->listen[0].addr.port = 8080;
		o->nlisten = 1;
	}
	set_v6only(o);
	return 0;
}

static int parse_count(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out,
                       char *err, size_t errlen)
{
	if (!parse_u64(s, out) || *out < min || *out > max)
		return reject(err, errlen, "bad %s '%s': want a number from %llu to %llu", flag, s,
		              (unsigned long long)min, (unsigned long long)max);
	return 0;
}

static int parse_size(const char *flag, const char *s, uint64_t min, uint64_t *out, char *err,
                      size_t errlen)
{
	if (zt_size_parse(s, out) < 0 || *out < min)
		return reject(err, errlen, "bad %s '%s': want a size%s such as 1024, 64KiB or 1MiB",
		              flag, s, min > 0 ? " above 0," : "");
	return 0;
}

int sw_client_opts_parse(struct sw_client_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option longopts[] = {
	        {"connect", required_argument, NULL, 'C'},
	        {"bytes", required_argument, NULL, 'B'},
	        {"connections", required_argument, NULL, 'k'},
	        {"concurrency", required_argument, NULL, 'c'},
	        {"requests", required_argument, NULL, 'r'},
	        {"size", required_argument, NULL, 's'},
	        {"expect-banner", no_argument, NULL, 'e'},
	        {"timeout", required_argument, NULL, 't'},
	        {"bind", required_argument, NULL, 'b'},
	        {"log", required_argument, NULL, 'L'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *connect_to = NULL;
	uint64_t v;
	bool concurrency_set = false, bytes_set = false, size_set = false;
	int opt;

	memset(o, 0, sizeof(*o));
	o->bytes = 1024;
	o->size = 1024;
	o->connections = 1;
	o->timeout_ms = 10000;
	o->log = "warn";
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'C':
			if (zt_addr_parse(&o->connect, optarg, strlen(optarg), 0) < 0)
				return reject(err, errlen,
				              "bad --connect '%s': want IP:PORT or [IPv6]:PORT",
				              optarg);
			connect_to = optarg;
			break;
		case 'B':
			if (parse_size("--bytes", optarg, 0, &o->bytes, err, errlen) < 0)
				return -1;
			bytes_set = true;
			break;
		case 'k':
			if (parse_count("--connections", optarg, 1, SW_MAX_CONNECTIONS, &v, err,
			                errlen) < 0)
				return -1;
			o->connections = (uint32_t)v;
			break;
		case 'c':
			if (parse_count("--concurrency", optarg, 1, SW_MAX_CONNECTIONS, &v, err,
			                errlen) < 0)
				return -1;
			o->concurrency = (uint32_t)v;
			concurrency_set = true;
			break;
		case 'r':
			if (parse_count("--requests", optarg, 0, SW_MAX_SAMPLES, &o->requests, err,
			                errlen) < 0)
				return -1;
			break;
		case 's':
			if (parse_size("--size", optarg, 1, &o->size, err, errlen) < 0)
				return -1;
			size_set = true;
			break;
		case 'e':
			o->expect_banner = true;
			break;
		case 't':
			if (zt_duration_parse(optarg, &o->timeout_ms) < 0 || o->timeout_ms == 0)
				return reject(err, errlen,
				              "bad --timeout '%s': want a duration such as 10s or "
				              "500ms",
				              optarg);
			break;
		case 'b':
			if (zt_ip_parse(&o->bind, optarg, strlen(optarg)) < 0)
				return reject(err, errlen, "bad --bind '%s': want an IP address",
				              optarg);
			break;
		case 'L':
			if (check_log(optarg, err, errlen) < 0)
				return -1;
			o->log = optarg;
			break;
		case 'h':
			return 1;
		default:
			return reject_getopt(opt, argv, err, errlen);
		}
	}
	if (optind < argc)
		return reject(err, errlen, "unexpected argument '%s'", argv[optind]);
	if (!connect_to)
		return reject(err, errlen, "missing --connect");
	if (!concurrency_set)
		o->concurrency = o->connections;
	if (o->concurrency > o->connections)
		return reject(err, errlen, "bad --concurrency %u: more than --connections %u",
		              o->concurrency, o->connections);
	if (bytes_set && o->requests > 0)
		return reject(err, errlen, "--bytes is for bulk mode, not with --requests");
	if (size_set && o->requests == 0)
		return reject(err, errlen, "--size needs --requests");
	if (o->requests > SW_MAX_SAMPLES / o->connections)
		return reject(err, errlen,
		              "bad --requests %llu: --connections x --requests is over %llu",
		              (unsigned long long)o->requests, SW_MAX_SAMPLES);
	if (o->requests > 0 && o->size > UINT64_MAX / o->requests)
		return reject(err, errlen, "bad --size: --requests x --size overflows");
	if (o->bind.family && o->bind.family != o->connect.ip.family)
		return reject(err, errlen, "bad --bind: not the same IP family as --connect");
	return 0;
}
