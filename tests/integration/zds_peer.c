/* zds_peer: a scripted ztunnel side of ZDS (spec §5) for the sim-cni tests.
 *   zds_peer --socket PATH [--nack UID]... [--silent UID]... [--version N]
 *            [--garbage ack|big|fd] [--no-hello]
 * Connects (SOCK_SEQPACKET), sends ZdsHello{version} (V1 unless --version; none with
 * --no-hello), prints {"type":"connected"}, then prints one JSON line per received message:
 *   {"type":"add|del|keep|snapshot_sent","uid","name","namespace","sa","fds":N,
 *    "netns":bool,"inode":N,"reply":"ack|nack|none"}
 * (netns/inode describe the first descriptor that came with it) and answers it with an Ack,
 * except Adds of --nack UIDs (a NACK) and of --silent UIDs (no answer). --garbage sends, right
 * after the hello, an Ack nobody asked for (ack), a 2000-byte datagram (big), or an Ack
 * carrying a file descriptor (fd). Exits 0 after {"type":"eof"} when the agent closes; 1 on an
 * undecodable or truncated message. */
#include <errno.h>
#include <jansson.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "istio/zds/zds.pb-c.h"
#include "protocol/pb.h"
#include "protocol/zds_frame.h"
#include "runtime/err.h"

#define MAX_UIDS 32

static const char *nack[MAX_UIDS], *silent[MAX_UIDS];
static size_t nnack, nsilent;

static void die(const char *what, const char *why)
{
	fprintf(stderr, "zds_peer: %s: %s\n", what, why);
	exit(1);
}

static bool listed(const char *const *list, size_t n, const char *uid)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], uid) == 0)
			return true;
	return false;
}

static void print(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (!s)
		die("json", "out of memory");
	printf("%s\n", s);
	free(s);
	json_decref(o);
}

static void eof(void)
{
	print(json_pack("{s:s}", "type", "eof"));
	exit(0);
}

static void send_response(int fd, const char *error)
{
	int rc = zt_zds_frame_send_ack(fd, error, 0);

	if (rc == -EPIPE || rc == -ECONNRESET)
		eof(); /* the agent dropped the connection first */
	if (rc < 0)
		die("send Ack", zt_strerror(rc));
}

static void send_garbage(int fd, const char *kind)
{
	static const uint8_t ack[] = {0x0a, 0x00}; /* WorkloadResponse{ack: {}} */
	static uint8_t big[2000];
	const void *p = ack;
	size_t len = sizeof(ack);
	int stdin_fd = 0, rc;

	if (strcmp(kind, "big") == 0) {
		memset(big, 0x0a, sizeof(big));
		p = big;
		len = sizeof(big);
	} else if (strcmp(kind, "fd") != 0 && strcmp(kind, "ack") != 0) {
		die("--garbage", "want ack, big or fd");
	}
	rc = zt_zds_frame_send_raw(fd, p, len, &stdin_fd, strcmp(kind, "fd") == 0 ? 1 : 0, 0);
	if (rc < 0)
		die("send garbage", zt_strerror(rc));
}

static void send_hello(int fd, int version)
{
	Istio__Workload__Zds__ZdsHello h = ISTIO__WORKLOAD__ZDS__ZDS_HELLO__INIT;
	int rc;

	h.version = (Istio__Workload__Zds__Version)version;
	if ((rc = zt_zds_frame_send(fd, &h.base, -1, 0)) < 0)
		die("send ZdsHello", zt_strerror(rc));
}

/* Prints and answers one WorkloadRequest; fds (nfd of them) are closed here. */
static void handle(int sock, struct zt_zds_frame *f)
{
	Istio__Workload__Zds__WorkloadRequest *req;
	ProtobufCMessage *m;
	json_t *o = json_object();
	const char *uid = "", *reply = "ack";
	bool is_add;

	if (zt_zds_frame_decode(f, &istio__workload__zds__workload_request__descriptor, &m) < 0) {
		print(json_pack("{s:s, s:I}", "type", "undecodable", "len", (json_int_t)f->len));
		exit(1);
	}
	req = (Istio__Workload__Zds__WorkloadRequest *)m;
	switch (req->payload_case) {
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD:
		uid = req->add->uid;
		json_object_set_new(o, "type", json_string("add"));
		if (req->add->workload_info) {
			json_object_set_new(o, "name", json_string(req->add->workload_info->name));
			json_object_set_new(o, "namespace",
			                    json_string(req->add->workload_info->namespace_));
			json_object_set_new(o, "sa",
			                    json_string(req->add->workload_info->service_account));
		}
		break;
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL:
		uid = req->del->uid;
		json_object_set_new(o, "type", json_string("del"));
		break;
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_KEEP:
		uid = req->keep->uid;
		json_object_set_new(o, "type", json_string("keep"));
		break;
	case ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_SNAPSHOT_SENT:
		json_object_set_new(o, "type", json_string("snapshot_sent"));
		break;
	default:
		json_object_set_new(o, "type", json_string("empty"));
		break;
	}
	json_object_set_new(o, "uid", json_string(uid));
	json_object_set_new(o, "fds", json_integer((json_int_t)f->nfds));
	if (f->nfds > 0) {
		struct stat st;
		int type = ioctl(f->fds[0], NS_GET_NSTYPE);

		json_object_set_new(o, "netns", json_boolean(type == CLONE_NEWNET));
		if (fstat(f->fds[0], &st) == 0)
			json_object_set_new(o, "inode", json_integer((json_int_t)st.st_ino));
	}
	zt_zds_frame_close_fds(f);
	is_add = req->payload_case == ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD;
	if (is_add && listed(silent, nsilent, uid))
		reply = "none";
	else if (is_add && listed(nack, nnack, uid))
		reply = "nack";
	json_object_set_new(o, "reply", json_string(reply));
	print(o);
	if (strcmp(reply, "nack") == 0) {
		char text[200];

		snprintf(text, sizeof(text), "test NACK for %s", uid);
		send_response(sock, text);
	} else if (strcmp(reply, "ack") == 0) {
		send_response(sock, "");
	}
	zt_pb_free(m);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = NULL, *garbage = NULL;
	bool hello = true;
	int version = 1, fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-hello") == 0) {
			hello = false;
			continue;
		}
		if (!v)
			die(a, "unknown flag or missing value");
		i++;
		if (strcmp(a, "--socket") == 0) {
			path = v;
		} else if (strcmp(a, "--nack") == 0 && nnack < MAX_UIDS) {
			nack[nnack++] = v;
		} else if (strcmp(a, "--garbage") == 0) {
			garbage = v;
		} else if (strcmp(a, "--silent") == 0 && nsilent < MAX_UIDS) {
			silent[nsilent++] = v;
		} else if (strcmp(a, "--version") == 0) {
			char *end;
			long n = strtol(v, &end, 10);

			if (*end || end == v || n < 0 || n > 1000)
				die(a, "not a small number");
			version = (int)n;
		} else {
			die(a, "unknown flag");
		}
	}
	if (!path || strlen(path) >= sizeof(sa.sun_path))
		die("--socket", "missing or too long");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect", strerror(errno));
	if (hello)
		send_hello(fd, version);
	print(json_pack("{s:s}", "type", "connected"));
	if (garbage)
		send_garbage(fd, garbage);
	for (;;) {
		struct zt_zds_frame f;
		int rc = zt_zds_frame_recv(fd, &f, 0);

		if (rc == -ECONNRESET)
			eof();
		if (rc < 0)
			die("recv", zt_strerror(rc));
		if (f.len == 0 && f.nfds == 0)
			eof();
		if (f.truncated || f.fds_truncated) {
			print(json_pack("{s:s}", "type", "truncated"));
			return 1;
		}
		handle(fd, &f);
	}
}
