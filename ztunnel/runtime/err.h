/* Error codes: every fallible function returns 0 or a negative code, either -errno for
 * system failures or one of the project range below (which starts far above any errno).
 * zt_strerror() names both. */
#ifndef ZT_ERR_H
#define ZT_ERR_H

#include <stddef.h>

enum {
	ZT_E_BASE = 10000,
	ZT_E_PARSE = -(ZT_E_BASE + 1),    /* input text or bytes malformed */
	ZT_E_RANGE = -(ZT_E_BASE + 2),    /* value out of its allowed range */
	ZT_E_PROTO = -(ZT_E_BASE + 3),    /* peer broke the wire protocol */
	ZT_E_TOOBIG = -(ZT_E_BASE + 4),   /* a peer- or user-sized thing exceeds its bound */
	ZT_E_TLS = -(ZT_E_BASE + 5),      /* TLS handshake or record failure */
	ZT_E_IDENTITY = -(ZT_E_BASE + 6), /* peer identity missing or not accepted */
	ZT_E_AUTHZ_DENY = -(ZT_E_BASE + 7),
	ZT_E_NOTFOUND = -(ZT_E_BASE + 8),
	ZT_E_CLOSED = -(ZT_E_BASE + 9), /* the other side went away */
	ZT_E_TIMEOUT = -(ZT_E_BASE + 10),
	ZT_E_CANCELLED = -(ZT_E_BASE + 11),
	ZT_E_STATE = -(ZT_E_BASE + 12), /* call not valid in the object's current state */
	ZT_E_UNSUPPORTED = -(ZT_E_BASE + 13),
	ZT_E_LAST = -(ZT_E_BASE + 14),
};

/* Static text for a code from this range or a -errno. Never NULL. */
const char *zt_strerror(int err);

/* Formats a message into err (when err and errlen are set) and returns rc, so a failure path
 * reads `return zt_errf(ZT_E_PARSE, err, errlen, "bad %s", what);`. */
int zt_errf(int rc, char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif
