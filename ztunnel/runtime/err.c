/* Names for the project's error range; -errno values go to strerror(). */
#include "runtime/err.h"

#include <stdarg.h>
#include <stdio.h>

#include <string.h>

static const char *const names[] = {
        [ZT_E_BASE + 1 - ZT_E_BASE] = "malformed input",
        [ZT_E_BASE + 2 - ZT_E_BASE] = "value out of range",
        [ZT_E_BASE + 3 - ZT_E_BASE] = "protocol violation",
        [ZT_E_BASE + 4 - ZT_E_BASE] = "too large",
        [ZT_E_BASE + 5 - ZT_E_BASE] = "TLS failure",
        [ZT_E_BASE + 6 - ZT_E_BASE] = "identity not accepted",
        [ZT_E_BASE + 7 - ZT_E_BASE] = "denied by authorization policy",
        [ZT_E_BASE + 8 - ZT_E_BASE] = "not found",
        [ZT_E_BASE + 9 - ZT_E_BASE] = "connection closed",
        [ZT_E_BASE + 10 - ZT_E_BASE] = "timed out",
        [ZT_E_BASE + 11 - ZT_E_BASE] = "cancelled",
        [ZT_E_BASE + 12 - ZT_E_BASE] = "invalid state",
        [ZT_E_BASE + 13 - ZT_E_BASE] = "unsupported",
};

const char *zt_strerror(int err)
{
	int i;

	if (err == 0)
		return "success";
	if (err > 0)
		return "invalid error code";
	i = -err - ZT_E_BASE;
	if (i > 0 && i < (int)(sizeof(names) / sizeof(names[0])) && names[i])
		return names[i];
	if (-err < ZT_E_BASE)
		return strerror(-err);
	return "unknown error";
}

int zt_errf(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}
