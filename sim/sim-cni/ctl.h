/* The control socket: a unix stream listener for the lab scripts. Each client sends command
 * lines (cmd.h) and gets exactly one reply line per command, in order; commands run one at a
 * time per client (the next line is not read before the reply). Lines that do not parse are
 * answered "error: ..." here; the others go to the owner's callback, which answers through
 * cni_ctl_reply(). A client that hangs up while its command runs still gets the reply
 * delivered into the void, so the owner never holds a dangling client. */
#ifndef CNI_CTL_H
#define CNI_CTL_H

#include "cmd.h"
#include "runtime/loop.h"

#define CNI_CTL_MAX_CLIENTS 64
#define CNI_CTL_IDLE_MS     60000 /* a client silent this long (with nothing running) is closed */
#define CNI_CTL_OUT_MAX     (16u << 20) /* queued reply bytes per client */

struct cni_ctl;
struct cni_ctl_client;

/* cmd is borrowed for the call. The owner must call cni_ctl_reply(cl, ...) exactly once, from
 * this callback or later. */
typedef void (*cni_ctl_cmd_cb)(struct cni_ctl_client *cl, const struct cni_cmd *cmd, void *arg);

/* Listens on path (stale socket file removed first; another kind of file is -EEXIST; too long
 * is ZT_E_TOOBIG). Returns 0 or a negative code. */
int cni_ctl_new(struct zt_loop *loop, const char *path, cni_ctl_cmd_cb cb, void *arg,
                struct cni_ctl **out);
/* Closes the listener and every client (also those with a command running: the owner must not
 * reply to them afterwards) and removes the socket file. Accepts NULL. */
void cni_ctl_free(struct cni_ctl *ctl);

/* Answers the running command of cl with one line (line must hold no newline; it is added).
 * Never calls back into the owner. */
void cni_ctl_reply(struct cni_ctl_client *cl, const char *line);

#endif
