/* One in-pod redirection change run off the event loop: a forked child enters the pod's
 * network namespace with setns() and runs cni_inpod_apply(); the loop learns of its exit
 * through a pidfd and collects its stderr (the first CNI_JOB_ERR_MAX bytes) as the reason.
 * Invariant: a started job ends exactly once, by its callback or by cni_job_wait(), and a
 * child that takes longer than CNI_JOB_DEADLINE_MS is killed with its whole process group. */
#ifndef CNI_JOB_H
#define CNI_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "inpod.h"
#include "runtime/loop.h"

#define CNI_JOB_ERR_MAX     512
#define CNI_JOB_DEADLINE_MS 30000

struct cni_job;

/* rc: 0 when the child succeeded, ZT_E_TIMEOUT when it was killed at the deadline, -EIO when
 * it failed; err is its stderr as one line ("" on success), borrowed for the call. The job may
 * be freed or restarted from the callback. */
typedef void (*cni_job_done_cb)(struct cni_job *job, int rc, const char *err, void *arg);

struct cni_job {
	struct zt_loop *loop;
	pid_t pid; /* 0 when idle */
	int pidfd, errfd;
	struct zt_io pid_io, err_io;
	struct zt_timer deadline;
	bool killed;
	char err[CNI_JOB_ERR_MAX];
	size_t errlen;
	cni_job_done_cb cb;
	void *arg;
};

/* Starts op on the namespace netns_fd (borrowed; the child gets its own copy). cb fires later,
 * never from inside this call. Returns 0, ZT_E_STATE when j is already running, or -errno when
 * the child could not be started (then cb never fires). */
int cni_job_start(struct cni_job *j, struct zt_loop *loop, enum cni_inpod_op op, int netns_fd,
                  cni_job_done_cb cb, void *arg);

bool cni_job_running(const struct cni_job *j);

/* Blocks until a running job's child exits (killing it at the deadline); cb does not fire.
 * Returns what cb would have got as rc (0 when the job was idle), the reason in err. */
int cni_job_wait(struct cni_job *j, char *err, size_t errlen);

#endif
