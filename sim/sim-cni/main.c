/* sim-cni: a node agent like istio-cni for a namespace lab. `serve` runs the agent (ZDS socket
 * for ztunnel, control socket for the lab); `ctl` sends control commands to a running agent.
 * Exit status: 0 success, 1 failure (or an "error:" reply), 2 bad command line. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "cmd.h"
#include "inpod.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/loop.h"

ZT_LOG_MODULE("main");

static const char usage[] =
        "usage: sim-cni serve --socket PATH [--control PATH] [--cleanup-on-exit] [--log SPEC]\n"
        "       sim-cni ctl (--control PATH | --socket PATH) [--raw] [COMMAND...]\n"
        "serve: the node agent. ztunnel connects to --socket (SOCK_SEQPACKET, ZDS); the lab\n"
        "  sends one-line commands to --control (default PATH.ctl), each answered by one line:\n"
        "    add UID NETNS_PATH NAMESPACE NAME SERVICE_ACCOUNT   -> ok | error: ...\n"
        "    del UID                                             -> ok | error: ...\n"
        "    list                                                -> one JSON object\n"
        "  --cleanup-on-exit  remove every pod's redirection on SIGTERM/SIGINT (default: keep)\n"
        "  --dns-capture      true (default) or false: UDP/TCP port 53 to ztunnel's DNS proxy\n"
        "  --log              log spec such as info or debug (default info); logs go to stderr\n"
        "ctl: sends COMMAND (its words joined by spaces) and prints the reply; exit 1 when the\n"
        "  reply starts with \"error\". --raw sends stdin as is and prints every reply line.\n";

struct serve_ctx {
	struct zt_loop *loop;
	struct zt_signal term, intr;
};

static int bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "sim-cni: %s%s\n%s", what, arg, usage);
	return 2;
}

static void on_signal(struct zt_signal *s, int signo, void *arg)
{
	struct serve_ctx *ctx = arg;

	(void)s;
	zt_info("signal %d: shutting down", signo);
	zt_loop_stop(ctx->loop);
}

/* One descriptor per pod's netns plus sockets: lift the soft limit to the hard one. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

enum { OPT_SOCKET = 1, OPT_CONTROL, OPT_CLEANUP, OPT_LOG, OPT_RAW, OPT_HELP, OPT_DNS };

static const struct option long_opts[] = {
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"cleanup-on-exit", no_argument, NULL, OPT_CLEANUP},
        {"log", required_argument, NULL, OPT_LOG},
        {"raw", no_argument, NULL, OPT_RAW},
        {"dns-capture", required_argument, NULL, OPT_DNS},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
};

struct opts {
	const char *socket, *control, *log;
	bool cleanup, raw, no_dns;
	char control_buf[256];
};

/* Returns 0, 1 for --help, or 2 after printing the complaint. */
static int parse(int argc, char **argv, bool serve, struct opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->log = "info";
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_CONTROL:
			o->control = optarg;
			break;
		case OPT_CLEANUP:
			if (!serve)
				return bad_usage("only for serve: ", "--cleanup-on-exit");
			o->cleanup = true;
			break;
		case OPT_LOG:
			o->log = optarg;
			break;
		case OPT_RAW:
			if (serve)
				return bad_usage("only for ctl: ", "--raw");
			o->raw = true;
			break;
		case OPT_DNS:
			if (!serve)
				return bad_usage("only for serve: ", "--dns-capture");
			if (strcmp(optarg, "true") && strcmp(optarg, "false"))
				return bad_usage("--dns-capture: expected true or false, got ",
				                 optarg);
			o->no_dns = strcmp(optarg, "false") == 0;
			break;
		case OPT_HELP:
			return 1;
		default:
			return bad_usage("bad flag or missing value: ", argv[optind - 1]);
		}
	}
	if (serve && !o->socket)
		return bad_usage("missing ", "--socket");
	if (!o->control && !o->socket)
		return bad_usage("missing ", "--control (or --socket)");
	if (!o->control) {
		if ((size_t)snprintf(o->control_buf, sizeof(o->control_buf), "%s.ctl", o->socket) >=
		    sizeof(o->control_buf))
			return bad_usage("path too long: ", "--socket");
		o->control = o->control_buf;
	}
	if (serve && optind < argc)
		return bad_usage("unexpected argument: ", argv[optind]);
	if (zt_log_set_spec(o->log, NULL, 0) < 0)
		return bad_usage("--log: bad spec ", o->log);
	return 0;
}

static int serve(int argc, char **argv)
{
	struct opts o;
	struct serve_ctx ctx = {0};
	struct cni_agent_opts ao;
	struct cni_agent *agent = NULL;
	int rc = parse(argc, argv, true, &o);

	if (rc == 1) {
		fputs(usage, stdout);
		return 0;
	}
	if (rc)
		return rc;
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	ao = (struct cni_agent_opts){
	        .socket = o.socket, .control = o.control, .cleanup_on_exit = o.cleanup};
	cni_inpod_set_dns_capture(!o.no_dns);
	rc = zt_loop_new(&ctx.loop);
	if (rc < 0) {
		fprintf(stderr, "sim-cni: event loop: %s\n", zt_strerror(rc));
		return 1;
	}
	rc = cni_agent_new(ctx.loop, &ao, &agent);
	if (rc == 0)
		rc = zt_signal_start(ctx.loop, &ctx.term, SIGTERM, on_signal, &ctx);
	if (rc == 0)
		rc = zt_signal_start(ctx.loop, &ctx.intr, SIGINT, on_signal, &ctx);
	if (rc == 0) {
		printf("listening %s control %s\n", o.socket, o.control);
		fflush(stdout);
		rc = zt_loop_run(ctx.loop);
		if (rc < 0)
			zt_error("event loop: %s", zt_strerror(rc));
	}
	zt_signal_stop(&ctx.term);
	zt_signal_stop(&ctx.intr);
	cni_agent_free(agent);
	zt_loop_free(ctx.loop);
	return rc < 0 ? 1 : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* `ctl`: a blocking client; the agent answers every command within its own deadlines. */
static int ctl(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char line[CNI_LINE_MAX + 2], buf[65536];
	size_t len = 0;
	char head[5];
	size_t hl = 0;
	bool is_error = false;
	struct opts o;
	int fd, rc = parse(argc, argv, false, &o);

	if (rc == 1) {
		fputs(usage, stdout);
		return 0;
	}
	if (rc)
		return rc;
	if (!o.raw && optind >= argc)
		return bad_usage("missing COMMAND", "");
	for (int i = optind; i < argc; i++) {
		size_t room = sizeof(line) - 1 - len; /* one byte stays for the newline */
		int n = snprintf(line + len, room, "%s%s", len > 0 ? " " : "", argv[i]);

		if (n < 0 || (size_t)n >= room)
			return bad_usage("COMMAND longer than the agent accepts", "");
		len += (size_t)n;
	}
	if (strlen(o.control) >= sizeof(sa.sun_path))
		return bad_usage("path too long: ", "--control");
	memcpy(sa.sun_path, o.control, strlen(o.control) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "sim-cni: connect %s: %s\n", o.control, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (o.raw) {
		ssize_t n;

		while ((n = read(0, buf, sizeof(buf))) > 0)
			if (write_all(fd, buf, (size_t)n) < 0)
				break;
	} else {
		line[len++] = '\n';
		if (write_all(fd, line, len) < 0) {
			fprintf(stderr, "sim-cni: send: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				is_error = is_error || (hl == 5 && memcmp(head, "error", 5) == 0);
				hl = 0;
			} else if (hl < 5) {
				head[hl++] = buf[i];
			}
		}
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	is_error = is_error || (hl == 5 && memcmp(head, "error", 5) == 0);
	return is_error ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return ctl(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	fprintf(stderr, "sim-cni: %s\n%s", argc < 2 ? "missing subcommand" : "unknown subcommand",
	        usage);
	return 2;
}
