/* iptables-restore text for the in-pod redirection (spec §1.3), built from fixed rule lines
 * so the batch is the same on every run; only the built-in jumps depend on the parsed state,
 * which is what keeps repeated installs from stacking jumps. */
#include "rules.h"

#include <stdio.h>
#include <string.h>

#include "runtime/err.h"

static const char *const table_name[CNI_NTABLES] = {"mangle", "nat", "raw"};
static const char *const chain_name[CNI_NCHAINS] = {"ISTIO_PRERT", "ISTIO_OUTPUT"};
static const char *const builtin_name[CNI_NCHAINS] = {"PREROUTING", "OUTPUT"};

/* Family-specific addresses: loopback and the host-probe SNAT source (spec §1.3). */
static const char *const localhost[] = {"127.0.0.1/32", "::1/128"};
static const char *const probe_src[] = {"169.254.7.127/32",
                                        "fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128"};

#define ZT_MARK   "0x539/0xfff" /* ztunnel's own packets */
#define CONN_MARK "0x111/0xfff" /* connections ztunnel opened towards the app */

static bool line_is(const char *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

void cni_rules_parse_save(const char *text, size_t len, struct cni_rules_state *st)
{
	int table = -1;
	size_t pos = 0;

	memset(st, 0, sizeof(*st));
	while (pos < len) {
		const char *p = text + pos, *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;

		pos += n + (nl ? 1 : 0);
		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
			n--;
		if (n > 0 && p[0] == '*') {
			table = line_is(p, n, "*mangle") ? CNI_TABLE_MANGLE
			        : line_is(p, n, "*nat")  ? CNI_TABLE_NAT
			        : line_is(p, n, "*raw")  ? CNI_TABLE_RAW
			                                 : -1;
			continue;
		}
		if (table < 0)
			continue;
		for (int c = 0; c < CNI_NCHAINS; c++) {
			size_t cl = strlen(chain_name[c]);
			char jump[64];

			if (n > cl + 1 && p[0] == ':' && memcmp(p + 1, chain_name[c], cl) == 0 &&
			    p[cl + 1] == ' ')
				st->chain[table][c] = true;
			snprintf(jump, sizeof(jump), "-A %s -j %s", builtin_name[c], chain_name[c]);
			if (line_is(p, n, jump))
				st->jumps[table][c]++;
		}
	}
}

static int table_head(struct zt_buf *out, int t, const struct cni_rules_state *st)
{
	int rc = zt_buf_appendf(out, "*%s\n", table_name[t]);

	for (int c = 0; c < CNI_NCHAINS && rc == 0; c++)
		rc = zt_buf_appendf(out, ":%s - [0:0]\n", chain_name[c]);
	for (int c = 0; c < CNI_NCHAINS && rc == 0; c++)
		if (st->jumps[t][c] == 0)
			rc = zt_buf_appendf(out, "-A %s -j %s\n", builtin_name[c], chain_name[c]);
	return rc;
}

/* Spec §13.5: DNS to 15053 (after the inbound REDIRECT, before the 0x111 ACCEPT). */
static int dns_nat(struct zt_buf *out, const char *lo)
{
	return zt_buf_appendf(
	        out,
	        "-A ISTIO_OUTPUT ! -o lo -p udp -m mark ! --mark " ZT_MARK
	        " -m udp --dport 53 -j REDIRECT --to-ports 15053\n"
	        "-A ISTIO_OUTPUT ! -d %s -p tcp -m tcp --dport 53 -m mark ! --mark " ZT_MARK
	        " -j REDIRECT --to-ports 15053\n",
	        lo);
}

/* ztunnel's upstream queries and their replies in conntrack zone 1, apart from app->proxy. */
static int dns_raw(struct zt_buf *out, const struct cni_rules_state *st)
{
	int rc = table_head(out, CNI_TABLE_RAW, st);

	if (rc == 0)
		rc = zt_buf_appendf(out, "-A ISTIO_OUTPUT -p udp -m mark --mark " ZT_MARK
		                         " -m udp --dport 53 -j CT --zone 1\n"
		                         "-A ISTIO_PRERT -p udp -m mark ! --mark " ZT_MARK
		                         " -m udp --sport 53 -j CT --zone 1\n"
		                         "COMMIT\n");
	return rc;
}

int cni_rules_install(struct zt_buf *out, enum cni_family f, const struct cni_rules_state *st,
                      bool dns)
{
	const char *lo = localhost[f], *probe = probe_src[f];
	int rc = table_head(out, CNI_TABLE_MANGLE, st);

	if (rc == 0)
		/* Packets ztunnel sends to the app tag their connection... */
		rc = zt_buf_appendf(out,
		                    "-A ISTIO_PRERT -m mark --mark " ZT_MARK
		                    " -j CONNMARK --set-xmark " CONN_MARK "\n"
		                    /* ...so the app's replies carry mark 0x111 and route to lo. */
		                    "-A ISTIO_OUTPUT -m connmark --mark " CONN_MARK
		                    " -j CONNMARK --restore-mark --nfmask 0xffffffff"
		                    " --ctmask 0xffffffff\n"
		                    "COMMIT\n");
	if (rc == 0)
		rc = table_head(out, CNI_TABLE_NAT, st);
	if (rc == 0)
		rc = zt_buf_appendf(
		        out,
		        /* Host probes (SNATed to the probe source) bypass capture. */
		        "-A ISTIO_PRERT -s %s -p tcp -m tcp -j ACCEPT\n"
		        /* All other inbound TCP except HBONE goes to the plaintext inbound. */
		        "-A ISTIO_PRERT ! -d %s -p tcp -m tcp ! --dport 15008 -m mark ! "
		        "--mark " ZT_MARK " -j REDIRECT --to-ports 15006\n"
		        "-A ISTIO_OUTPUT -d %s -p tcp -m tcp -j ACCEPT\n",
		        probe, lo, probe);
	if (rc == 0 && dns)
		rc = dns_nat(out, lo);
	if (rc == 0)
		rc = zt_buf_appendf(
		        out,
		        /* Replies on connections ztunnel opened are not captured again. */
		        "-A ISTIO_OUTPUT -p tcp -m mark --mark " CONN_MARK " -j ACCEPT\n"
		        /* The pod calling its own IP. */
		        "-A ISTIO_OUTPUT ! -d %s -o lo -j ACCEPT\n"
		        /* All other outbound TCP goes to the outbound listener. */
		        "-A ISTIO_OUTPUT ! -d %s -p tcp -m mark ! --mark " ZT_MARK
		        " -j REDIRECT --to-ports 15001\n"
		        "COMMIT\n",
		        lo, lo);
	if (rc == 0 && dns)
		rc = dns_raw(out, st);
	return rc;
}

int cni_rules_remove(struct zt_buf *out, const struct cni_rules_state *st)
{
	int rc = 0;

	for (int t = 0; t < CNI_NTABLES && rc == 0; t++) {
		bool any = false;

		for (int c = 0; c < CNI_NCHAINS; c++)
			any = any || st->chain[t][c] || st->jumps[t][c] > 0;
		if (!any)
			continue;
		rc = zt_buf_appendf(out, "*%s\n", table_name[t]);
		for (int c = 0; c < CNI_NCHAINS && rc == 0; c++)
			for (unsigned i = 0; i < st->jumps[t][c] && rc == 0; i++)
				rc = zt_buf_appendf(out, "-D %s -j %s\n", builtin_name[c],
				                    chain_name[c]);
		for (int c = 0; c < CNI_NCHAINS && rc == 0; c++)
			if (st->chain[t][c])
				rc = zt_buf_appendf(out, "-F %s\n-X %s\n", chain_name[c],
				                    chain_name[c]);
		if (rc == 0)
			rc = zt_buf_appendf(out, "COMMIT\n");
	}
	return rc;
}
