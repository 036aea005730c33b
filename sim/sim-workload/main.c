/* sim-workload: a simulated application for tests, demos and benchmarks. `serve` runs echo,
 * sink or banner listeners; `client` drives connections at a server and prints one JSON line
 * of results. Exit status: 0 success, 1 failure, 2 bad command line. */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "opts.h"
#include "report.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "server.h"

ZT_LOG_MODULE("main");

static const char usage[] = "usage: sim-workload serve [FLAGS]   (sim-workload serve --help)\n"
                            "       sim-workload client [FLAGS]  (sim-workload client --help)\n";

static int bad_usage(const char *err, const char *sub_usage)
{
	fprintf(stderr, "sim-workload: %s\n%s", err, sub_usage);
	return 2;
}

static int serve(int argc, char **argv)
{
	struct sw_serve_opts o;
	char err[512];
	int rc = sw_serve_opts_parse(&o, argc, argv, err, sizeof(err));

	if (rc == 1) {
		fputs(sw_serve_usage, stdout);
		return 0;
	}
	if (rc < 0)
		return bad_usage(err, sw_serve_usage);
	zt_log_set_spec(o.log, NULL, 0);
	return sw_server_run(&o) < 0 ? 1 : 0;
}

static int client(int argc, char **argv)
{
	struct sw_client_opts o;
	struct sw_report r;
	char err[512];
	int rc = sw_client_opts_parse(&o, argc, argv, err, sizeof(err));

	if (rc == 1) {
		fputs(sw_client_usage, stdout);
		return 0;
	}
	if (rc < 0)
		return bad_usage(err, sw_client_usage);
	zt_log_set_spec(o.log, NULL, 0);
	sw_report_init(&r);
	rc = sw_client_run(&o, &r);
	if (rc < 0) {
		fprintf(stderr, "sim-workload: event loop: %s\n", zt_strerror(rc));
		sw_report_error(&r, "event loop failed");
	}
	if (sw_report_print(&r, stdout) < 0)
		rc = -1;
	if (r.errors > 0 || r.ok != r.connections)
		rc = -1;
	sw_report_clear(&r);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "client") == 0)
		return client(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	fprintf(stderr, "sim-workload: %s\n%s",
	        argc < 2 ? "missing subcommand" : "unknown subcommand", usage);
	return 2;
}
