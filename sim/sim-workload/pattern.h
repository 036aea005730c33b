/* The byte stream a sim-workload client sends: deterministic pseudo-random bytes addressed by
 * (seed, offset), so an echo can be checked chunk by chunk without keeping a copy, and streams
 * of different seeds (connections) differ. Invariant: byte 0 of every stream is never 'r', so
 * a reply that starts with "received" cannot be an echo. */
#ifndef SW_PATTERN_H
#define SW_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Writes bytes [off, off + n) of stream `seed` to p. */
void sw_pattern_fill(uint64_t seed, uint64_t off, uint8_t *p, size_t n);

/* Returns the index of the first of the n bytes at p that differs from stream `seed` at off,
 * or n when all match. */
size_t sw_pattern_check(uint64_t seed, uint64_t off, const uint8_t *p, size_t n);

#endif
