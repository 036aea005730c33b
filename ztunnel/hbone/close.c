/* The close vocabulary's one table. */
#include "hbone/close.h"

#include <stddef.h>

static const struct {
	const char *flag, *reason;
} table[] = {
        [ZT_CLOSE_OK] = {"-", NULL},
        [ZT_CLOSE_ERROR] = {"-", "connection error"},
        [ZT_CLOSE_DENY] = {"DENY", "denied by policy"},
        [ZT_CLOSE_CONNECT] = {"CONNECT", "connect failed"},
        [ZT_CLOSE_NETWORK_POLICY] = {"NETWORK_POLICY", "connect timed out"},
        [ZT_CLOSE_TLS_FAILURE] = {"TLS_FAILURE", "TLS handshake failed"},
        [ZT_CLOSE_IDENTITY_ERROR] = {"IDENTITY_ERROR", "identity error"},
        [ZT_CLOSE_H2_HANDSHAKE_FAILURE] = {"H2_HANDSHAKE_FAILURE", "HTTP/2 handshake failed"},
        [ZT_CLOSE_POLICY_CHANGE] = {"-", "connection closed due to policy change"},
        [ZT_CLOSE_NO_SOURCE] = {"-", "unknown source workload"},
        [ZT_CLOSE_SELF] = {"-", "attempted recursive call to ourselves"},
        [ZT_CLOSE_STOPPED] = {"-", "connection closed: workload proxy stopped"},
};

const char *zt_close_flag(enum zt_close c)
{
	return (unsigned)c < sizeof(table) / sizeof(table[0]) ? table[c].flag : "-";
}

const char *zt_close_reason(enum zt_close c)
{
	return (unsigned)c < sizeof(table) / sizeof(table[0]) ? table[c].reason : "connection error";
}

bool zt_close_failed(enum zt_close c)
{
	const char *f = zt_close_flag(c);

	return f[0] != '-';
}
