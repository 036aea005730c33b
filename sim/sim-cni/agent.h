/* The node agent: the pods it manages and the operations on them, wiring the control socket
 * (ctl.h), the in-pod redirection jobs (job.h) and the ZDS server (zds.h) together.
 * A pod moves installing -> adding -> active -> deleting -> removing -> gone, one operation at
 * a time (a command on a pod in between is refused as busy). Add: rules in the pod netns, then
 * AddWorkload with its netns fd to the newest ztunnel connection and its Ack. Del: DelWorkload
 * to every connection and their Acks, then the rules come out. Every connection that says
 * hello gets the snapshot: an Add per pod that has its rules and is not being deleted, then
 * SnapshotSent. A NACKed add leaves the pod known (rules in place, in later snapshots), as
 * ztunnel keeps retrying it. */
#ifndef CNI_AGENT_H
#define CNI_AGENT_H

#include <stdbool.h>

#include "runtime/loop.h"

#define CNI_MAX_PODS 4096

struct cni_agent_opts {
	const char *socket;  /* ZDS socket path */
	const char *control; /* control socket path */
	bool cleanup_on_exit;
};

struct cni_agent;

/* Opens both sockets. Returns 0 or a negative code (logged with the path). */
int cni_agent_new(struct zt_loop *loop, const struct cni_agent_opts *o, struct cni_agent **out);
/* Shuts down: closes both sockets (removing their files) and every connection, waits for
 * running redirection jobs, removes the pods' redirection when cleanup_on_exit was set
 * (blocking, one pod after the other), frees everything. Pending control commands get no
 * reply. Accepts NULL. */
void cni_agent_free(struct cni_agent *a);

#endif
