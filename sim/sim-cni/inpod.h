/* The whole in-pod redirection of spec §1.3 applied to (or removed from) the network namespace
 * the calling process is in: iptables rules through iptables-save / iptables-restore (one
 * batch per family; ip6tables too when the pod has IPv6) and policy routing over netlink.
 * Blocking: it runs programs and waits for them, so only the short-lived child of job.c calls
 * it, after setns() into the pod. The programs' stderr is the caller's stderr. */
#ifndef CNI_INPOD_H
#define CNI_INPOD_H

#include <stdbool.h>
#include <stddef.h>

enum cni_inpod_op { CNI_INPOD_INSTALL, CNI_INPOD_REMOVE };

/* Install: requires lo up; IPv4 always, IPv6 when lo has an IPv6 address; on any failure the
 * parts already installed are removed again. Remove: every family, whatever is present; later
 * steps still run after a failed one. Returns 0 or a negative code with the first reason in
 * err. */
int cni_inpod_apply(enum cni_inpod_op op, char *err, size_t errlen);

/* Whether installs include the DNS capture rules (spec §13.5); on unless turned off, as
 * istio-cni's AMBIENT_DNS_CAPTURE. Set once before serving. */
void cni_inpod_set_dns_capture(bool on);

#endif
