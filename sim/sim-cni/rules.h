/* The iptables part of the in-pod redirection (spec §1.3, REDIRECT form) as iptables-restore
 * text, for one address family. Pure: iptables-save text in, iptables-restore text out.
 * Invariant: applying the install text with --noflush any number of times leaves exactly one
 * jump per ISTIO_* chain and one copy of each rule; the removal text only names rules and
 * chains the parsed state shows, so it never fails on something already gone. */
#ifndef CNI_RULES_H
#define CNI_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/buf.h"

enum cni_family { CNI_V4, CNI_V6 };

enum { CNI_TABLE_MANGLE, CNI_TABLE_NAT, CNI_TABLE_RAW, CNI_NTABLES };
enum { CNI_CHAIN_PRERT, CNI_CHAIN_OUTPUT, CNI_NCHAINS };

/* What iptables-save shows of ours, per table (mangle, nat, raw) and chain (ISTIO_PRERT,
 * ISTIO_OUTPUT): whether the chain exists and how many plain jumps to it from its built-in
 * chain (PREROUTING, OUTPUT) there are. */
struct cni_rules_state {
	bool chain[CNI_NTABLES][CNI_NCHAINS];
	unsigned jumps[CNI_NTABLES][CNI_NCHAINS];
};

/* Fills *st from iptables-save (or ip6tables-save) output text[0..len); unknown lines are
 * ignored. Never fails. */
void cni_rules_parse_save(const char *text, size_t len, struct cni_rules_state *st);

/* Appends the install batch for iptables-restore --noflush: mangle and nat, each declaring
 * ISTIO_PRERT and ISTIO_OUTPUT (which creates them, or flushes them when present), adding the
 * built-in jumps st does not show yet, then the rules of spec §1.3 for family f. With dns, the
 * DNS capture of spec §13.5 too: UDP and TCP port 53 to ztunnel's 15053 unless marked 0x539,
 * and the raw table putting ztunnel's own upstream queries in conntrack zone 1.
 * Returns 0 or ZT_E_TOOBIG when out's limit is reached. */
int cni_rules_install(struct zt_buf *out, enum cni_family f, const struct cni_rules_state *st,
                      bool dns);

/* Appends the removal batch for iptables-restore --noflush: every jump st counts deleted,
 * every ISTIO_* chain it shows flushed and deleted. Appends nothing when st shows nothing.
 * Returns 0 or ZT_E_TOOBIG. */
int cni_rules_remove(struct zt_buf *out, const struct cni_rules_state *st);

#endif
