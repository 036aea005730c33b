/* The policy-routing part of the in-pod redirection (spec §1.3) over rtnetlink (libnl-route-3),
 * in the network namespace of the calling thread: `ip rule add fwmark 0x111/0xfff pref 32764
 * lookup 100` and `ip route add local default dev lo table 100`, per family. Replies to
 * connections ztunnel opened with a spoofed source carry mark 0x111 and so come back to its
 * socket through lo. Adding is idempotent and removing something absent succeeds. */
#ifndef CNI_ROUTE_H
#define CNI_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "rules.h"

#define CNI_ROUTE_TABLE 100
#define CNI_ROUTE_PREF  32764
#define CNI_ROUTE_MARK  0x111u
#define CNI_ROUTE_MASK  0xfffu

/* Reports whether lo is up and whether it carries an IPv6 address (the pod has IPv6).
 * Returns 0, or -EIO with the reason in err. */
int cni_route_lo_state(bool *up, bool *has_v6, char *err, size_t errlen);

/* Adds the rule and the table-100 local route for family f. Returns 0 or -EIO with the reason
 * in err. */
int cni_route_install(enum cni_family f, char *err, size_t errlen);

/* Deletes them; what is already gone (or a family the namespace lacks) is not an error.
 * Returns 0 or -EIO with the reason in err. */
int cni_route_remove(enum cni_family f, char *err, size_t errlen);

#endif
