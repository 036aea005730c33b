/* Internal to the state decoders: formats a rejection reason and returns ZT_E_PROTO, so a
 * decoder can write `return reject(err, errlen, "...", ...)`. */
#ifndef ZT_STATE_REJECT_H
#define ZT_STATE_REJECT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "runtime/err.h"

static inline int reject(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static inline int reject(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ZT_E_PROTO;
}

#endif
