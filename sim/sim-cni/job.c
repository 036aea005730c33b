/* Redirection jobs: fork, setns into the pod, apply, exit. The parent never blocks on the
 * child: a pidfd says when it exited, its stderr pipe is read as it arrives, and a timer kills
 * its process group (the child and the iptables programs it runs) at the deadline. */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/err.h"

/* In the child: never returns. */
static void child_main(enum cni_inpod_op op, int netns_fd, int errfd)
{
	char err[CNI_JOB_ERR_MAX - 16];
	sigset_t none;
	int null, rc;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(1);
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		dprintf(2, "setns: %s\n", strerror(errno));
		_exit(1);
	}
	/* Nothing of the agent (sockets, other pods' namespaces) stays open in here. */
	close_range(3, ~0u, 0);
	rc = cni_inpod_apply(op, err, sizeof(err));
	if (rc < 0)
		dprintf(2, "%s\n", err);
	_exit(rc < 0 ? 1 : 0);
}

static void drain(struct cni_job *j)
{
	char scratch[256];

	for (;;) {
		size_t room = sizeof(j->err) - 1 - j->errlen;
		ssize_t n = room > 0 ? read(j->errfd, j->err + j->errlen, room)
		                     : read(j->errfd, scratch, sizeof(scratch));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (room > 0)
			j->errlen += (size_t)n;
	}
}

static void stop_watching(struct cni_job *j)
{
	zt_io_stop(&j->pid_io);
	zt_io_stop(&j->err_io);
	zt_timer_stop(&j->deadline);
	close(j->pidfd);
	close(j->errfd);
	j->pidfd = j->errfd = -1;
	j->pid = 0;
}

/* The child's exit status and collected stderr as rc and one line of text. */
static int outcome(struct cni_job *j, int status, char *text, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < j->errlen && o + 3 < len; i++) {
		char c = j->err[i];

		if (c == '\n') {
			if (i + 1 < j->errlen)
				o += (size_t)snprintf(text + o, len - o, "; ");
		} else {
			text[o++] = (c >= 0x20 && c < 0x7f) ? c : '?';
		}
	}
	text[o] = 0;
	if (j->killed) {
		snprintf(text, len, "timed out after %d s", CNI_JOB_DEADLINE_MS / 1000);
		return ZT_E_TIMEOUT;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (o == 0) {
		if (WIFSIGNALED(status))
			snprintf(text, len, "child killed by signal %d", WTERMSIG(status));
		else
			snprintf(text, len, "child exited with status %d", WEXITSTATUS(status));
	}
	return -EIO;
}

static void on_err(struct zt_io *io, unsigned events, void *arg)
{
	struct cni_job *j = arg;

	(void)events;
	drain(j);
	/* The writer is gone (hang-up): stop before the level-triggered pipe spins. */
	if (events & ZT_IO_ERROR)
		zt_io_stop(io);
}

static void on_child_exit(struct zt_io *io, unsigned events, void *arg)
{
	struct cni_job *j = arg;
	char text[CNI_JOB_ERR_MAX];
	int status = 0, rc;

	(void)io;
	(void)events;
	if (waitpid(j->pid, &status, WNOHANG) == 0)
		return;
	drain(j);
	rc = outcome(j, status, text, sizeof(text));
	stop_watching(j);
	j->cb(j, rc, text, j->arg);
}

static void on_deadline(struct zt_timer *t, void *arg)
{
	struct cni_job *j = arg;

	(void)t;
	j->killed = true;
	kill(-j->pid, SIGKILL);
	kill(j->pid, SIGKILL);
}

int cni_job_start(struct cni_job *j, struct zt_loop *loop, enum cni_inpod_op op, int netns_fd,
                  cni_job_done_cb cb, void *arg)
{
	int errp[2], rc;
	pid_t pid;

	if (cni_job_running(j))
		return ZT_E_STATE;
	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(errp[0]);
		close(errp[1]);
		return rc;
	}
	if (pid == 0)
		child_main(op, netns_fd, errp[1]);
	setpgid(pid, pid); /* also in the child: whichever runs first wins the race */
	close(errp[1]);
	memset(j, 0, sizeof(*j));
	j->loop = loop;
	j->pid = pid;
	j->errfd = errp[0];
	j->cb = cb;
	j->arg = arg;
	j->pidfd = pidfd_open(pid, 0);
	rc = j->pidfd < 0 ? -errno : 0;
	if (rc == 0 &&
	    (fcntl(j->errfd, F_SETFL, O_NONBLOCK) < 0 || fcntl(j->pidfd, F_SETFD, FD_CLOEXEC) < 0))
		rc = -errno;
	if (rc == 0)
		rc = zt_io_start(loop, &j->pid_io, j->pidfd, ZT_IO_READ, on_child_exit, j);
	if (rc == 0)
		rc = zt_io_start(loop, &j->err_io, j->errfd, ZT_IO_READ, on_err, j);
	if (rc < 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		zt_io_stop(&j->pid_io);
		zt_io_stop(&j->err_io);
		if (j->pidfd >= 0)
			close(j->pidfd);
		close(j->errfd);
		j->pidfd = j->errfd = -1;
		j->pid = 0;
		return rc;
	}
	zt_timer_start(loop, &j->deadline, CNI_JOB_DEADLINE_MS, on_deadline, j);
	return 0;
}

bool cni_job_running(const struct cni_job *j)
{
	return j->pid > 0;
}

int cni_job_wait(struct cni_job *j, char *err, size_t errlen)
{
	struct pollfd pfd;
	int status = 0, rc;

	if (errlen > 0)
		err[0] = 0;
	if (!cni_job_running(j))
		return 0;
	pfd = (struct pollfd){.fd = j->pidfd, .events = POLLIN};
	rc = poll(&pfd, 1, CNI_JOB_DEADLINE_MS);
	if (rc == 0) {
		j->killed = true;
		kill(-j->pid, SIGKILL);
		kill(j->pid, SIGKILL);
	}
	while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
		;
	drain(j);
	rc = outcome(j, status, err, errlen);
	stop_watching(j);
	return rc;
}
