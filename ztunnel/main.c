/* ztunnel: flags, configuration from the environment, then the daemon (app/app.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "config/config.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/version.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ztunnel [proxy [ztunnel]] [--check-config]\n"
	           "       ztunnel version | --version\n"
	           "       ztunnel help | --help\n"
	           "With no command, or \"proxy ztunnel\" as the Helm chart passes it, runs the\n"
	           "daemon. Configuration comes from environment variables:\n\n");
}

/* As the real one prints its build info for "ztunnel version". */
static void print_version(void)
{
	printf("version.BuildInfo{Version:\"%s\", GitRevision:\"%s\", BuildStatus:\"Clean\", "
	       "GitTag:\"%s\", IstioVersion:\"%s\"}\n",
	       ZT_VERSION, ZT_GIT_REVISION, ZT_VERSION,
	       getenv("ISTIO_META_ISTIO_VERSION") ? getenv("ISTIO_META_ISTIO_VERSION") : "unknown");
}

int main(int argc, char **argv)
{
	struct zt_config cfg;
	struct zt_loop *loop;
	struct zt_app *app;
	bool check = false;
	char err[4096];
	int rc;

	int i = 1;

	/* The chart runs "ztunnel proxy ztunnel"; the real binary reads only argv[1]. */
	if (i < argc && !strcmp(argv[i], "proxy")) {
		i++;
		if (i < argc && !strcmp(argv[i], "ztunnel"))
			i++;
	} else if (i < argc && !strcmp(argv[i], "version") && argc == 2) {
		print_version();
		return 0;
	} else if (i < argc && !strcmp(argv[i], "help") && argc == 2) {
		usage(stdout);
		zt_config_help(stdout);
		return 0;
	}
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--version")) {
			print_version();
			return 0;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			zt_config_help(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--check-config")) {
			check = true;
		} else {
			fprintf(stderr, "ztunnel: unknown argument \"%s\"\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (zt_config_load(&cfg, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "ztunnel: invalid configuration: %s\n", err);
		return 2;
	}
	if (zt_log_set_spec(cfg.log_level, err, sizeof(err)) < 0) {
		fprintf(stderr, "ztunnel: invalid log level: %s\n", err);
		zt_config_clear(&cfg);
		return 2;
	}
	zt_log_set_format(cfg.log_format == ZT_CONFIG_LOG_JSON ? ZT_LOG_JSON : ZT_LOG_TEXT);
	if (check) {
		char names[1024];
		bool refuse;
		if (zt_config_unsupported(&cfg, names, sizeof(names), &refuse) && refuse) {
			fprintf(stderr, "ztunnel: not supported by this ztunnel: %s\n", names);
			zt_config_clear(&cfg);
			return 2;
		}
		printf("configuration OK (node id %s)\n", cfg.node_id);
		zt_config_clear(&cfg);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((rc = zt_loop_new(&loop)) < 0) {
		fprintf(stderr, "ztunnel: event loop: %s\n", zt_strerror(rc));
		zt_config_clear(&cfg);
		return 1;
	}
	app = zt_app_new(loop, &cfg, err, sizeof(err));
	if (!app) {
		fprintf(stderr, "ztunnel: %s\n", err);
		rc = -1;
	} else {
		rc = zt_app_run(app);
		zt_app_free(app);
	}
	zt_loop_free(loop);
	zt_config_clear(&cfg);
	return rc < 0 ? 1 : 0;
}
