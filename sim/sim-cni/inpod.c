/* In-pod redirection inside the current network namespace (spec §1.3). Each family is one
 * iptables-save to see what is there, then one iptables-restore --noflush batch built by
 * rules.c; routing goes through route.c. Runs in a throwaway child process, so it blocks and
 * reports through the err buffer; the programs it runs inherit its stderr. */
#include "inpod.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "route.h"
#include "rules.h"
#include "runtime/buf.h"
#include "runtime/err.h"

#define SAVE_MAX  (4u << 20) /* most iptables-save output read */
#define BATCH_MAX 32768u     /* a restore batch; stays below a pipe's capacity */

static const char *const save_prog[] = {"iptables-save", "ip6tables-save"};
static const char *const restore_prog[] = {"iptables-restore", "ip6tables-restore"};

#define fail(err, errlen, rc, ...) zt_errf((rc), (err), (errlen), __VA_ARGS__)

/* In the forked program: PATH first, then the sbin directories root's PATH may lack. */
static void exec_prog(char *const argv[])
{
	static const char *const dirs[] = {"/usr/sbin/", "/sbin/"};
	char path[256];

	execvp(argv[0], argv);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", dirs[i], argv[0]);
		execv(path, argv);
	}
	_exit(127);
}

/* Runs argv with in[0..inlen) as stdin (or /dev/null) and, when out is set, collects its
 * stdout into out (bounded by out's limit). Returns 0 when it exits with status 0. */
static int run(char *const argv[], const char *in, size_t inlen, struct zt_buf *out, char *err,
               size_t errlen)
{
	int inp[2] = {-1, -1}, outp[2] = {-1, -1}, rc = 0, st;
	pid_t pid;

	if (inlen > BATCH_MAX)
		return fail(err, errlen, ZT_E_TOOBIG, "%s: batch too large", argv[0]);
	if (pipe2(inp, O_CLOEXEC) < 0 || (out && pipe2(outp, O_CLOEXEC) < 0)) {
		rc = fail(err, errlen, -errno, "pipe: %s", strerror(errno));
		goto out;
	}
	/* The whole batch fits in the pipe, so it can be written before the program starts. */
	for (size_t off = 0; off < inlen;) {
		ssize_t n = write(inp[1], in + off, inlen - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(err, errlen, -errno, "pipe write: %s", strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	close(inp[1]);
	inp[1] = -1;
	pid = fork();
	if (pid < 0) {
		rc = fail(err, errlen, -errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (dup2(inp[0], 0) < 0 || (out && dup2(outp[1], 1) < 0))
			_exit(126);
		exec_prog(argv);
	}
	close(inp[0]);
	inp[0] = -1;
	if (out) {
		close(outp[1]);
		outp[1] = -1;
		for (;;) {
			uint8_t *p;
			ssize_t n;

			if (zt_buf_reserve(out, 4096, &p) < 0) {
				rc = fail(err, errlen, ZT_E_TOOBIG, "%s: output too large",
				          argv[0]);
				kill(pid, SIGKILL);
				break;
			}
			n = read(outp[0], p, 4096);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			zt_buf_commit(out, (size_t)n);
		}
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			rc = fail(err, errlen, -errno, "waitpid: %s", strerror(errno));
			goto out;
		}
	if (rc < 0)
		goto out;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		rc = fail(err, errlen, -ENOENT, "%s: not found", argv[0]);
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		rc = fail(err, errlen, -EIO, "%s exited with status %d", argv[0], WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		rc = fail(err, errlen, -EIO, "%s killed by signal %d", argv[0], WTERMSIG(st));
out:
	for (int i = 0; i < 2; i++) {
		if (inp[i] >= 0)
			close(inp[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	return rc;
}

static bool dns_capture = true;

void cni_inpod_set_dns_capture(bool on)
{
	dns_capture = on;
}

static int apply_family(enum cni_inpod_op op, enum cni_family f, char *err, size_t errlen)
{
	char *save_argv[] = {(char *)save_prog[f], NULL};
	char *restore_argv[] = {(char *)restore_prog[f], "-w", "--noflush", NULL};
	struct zt_buf saved, batch;
	struct cni_rules_state st;
	int rc;

	zt_buf_init(&saved, SAVE_MAX);
	zt_buf_init(&batch, BATCH_MAX);
	rc = run(save_argv, NULL, 0, &saved, err, errlen);
	if (rc < 0)
		goto out;
	cni_rules_parse_save((const char *)zt_buf_data(&saved), zt_buf_len(&saved), &st);
	rc = op == CNI_INPOD_INSTALL ? cni_rules_install(&batch, f, &st, dns_capture)
	                             : cni_rules_remove(&batch, &st);
	if (rc < 0) {
		rc = fail(err, errlen, rc, "%s: batch too large", restore_prog[f]);
		goto out;
	}
	if (zt_buf_len(&batch) > 0)
		rc = run(restore_argv, (const char *)zt_buf_data(&batch), zt_buf_len(&batch), NULL,
		         err, errlen);
out:
	zt_buf_clear(&saved);
	zt_buf_clear(&batch);
	return rc;
}

static int remove_all(char *err, size_t errlen)
{
	char e[256];
	int first = 0;

	for (int f = CNI_V4; f <= CNI_V6; f++) {
		int rc = apply_family(CNI_INPOD_REMOVE, f, e, sizeof(e));

		if (rc < 0 && first == 0)
			first = fail(err, errlen, rc, "%s", e);
	}
	for (int f = CNI_V4; f <= CNI_V6; f++) {
		int rc = cni_route_remove(f, e, sizeof(e));

		if (rc < 0 && first == 0)
			first = fail(err, errlen, rc, "%s", e);
	}
	return first;
}

static int install(char *err, size_t errlen)
{
	bool up, v6;
	int rc = cni_route_lo_state(&up, &v6, err, errlen);
	int nfam = v6 ? 2 : 1;

	if (rc < 0)
		return rc;
	if (!up)
		return fail(err, errlen, -ENETDOWN, "lo is down in the pod network namespace");
	for (int f = 0; f < nfam && rc == 0; f++)
		rc = apply_family(CNI_INPOD_INSTALL, f, err, errlen);
	for (int f = 0; f < nfam && rc == 0; f++)
		rc = cni_route_install(f, err, errlen);
	if (rc < 0) {
		char ignored[256];

		remove_all(ignored, sizeof(ignored));
	}
	return rc;
}

int cni_inpod_apply(enum cni_inpod_op op, char *err, size_t errlen)
{
	return op == CNI_INPOD_INSTALL ? install(err, errlen) : remove_all(err, errlen);
}
