/* Internal to the state decoders: formats a rejection reason and returns ZT_E_PROTO, so a
 * decoder can write `return reject(err, errlen, "...", ...)`. */
#ifndef ZT_STATE_REJECT_H
#define ZT_STATE_REJECT_H

#include <stddef.h>
#include <stdio.h>

#include "runtime/err.h"

#define reject(err, errlen, ...) zt_errf(ZT_E_PROTO, (err), (errlen), __VA_ARGS__)

#endif
