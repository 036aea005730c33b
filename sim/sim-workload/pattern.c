/* Pattern bytes: each 8-byte block of a stream is splitmix64 of (seed, block index), so any
 * offset is generated in O(1) and the same bytes come out wherever a range is cut. */
#include "pattern.h"

#include <endian.h>
#include <string.h>

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Block `index` of the stream whose seed was mixed into `key`. */
static uint64_t block(uint64_t key, uint64_t index)
{
	uint64_t v = splitmix64(key ^ index);

	/* Byte 0 of the stream is the lowest byte of block 0. */
	if (index == 0 && (v & 0xff) == 'r')
		v ^= 0x20; /* 'R' */
	return htole64(v);
}

void sw_pattern_fill(uint64_t seed, uint64_t off, uint8_t *p, size_t n)
{
	uint64_t key = splitmix64(seed);

	while (n > 0) {
		uint64_t v = block(key, off / 8);
		size_t skip = (size_t)(off % 8), take = 8 - skip;

		if (take > n)
			take = n;
		memcpy(p, (const uint8_t *)&v + skip, take);
		p += take;
		off += take;
		n -= take;
	}
}

size_t sw_pattern_check(uint64_t seed, uint64_t off, const uint8_t *p, size_t n)
{
	uint8_t want[4096];
	size_t done = 0;

	while (done < n) {
		size_t len = n - done < sizeof(want) ? n - done : sizeof(want);

		sw_pattern_fill(seed, off + done, want, len);
		if (memcmp(want, p + done, len) != 0) {
			for (size_t i = 0; i < len; i++)
				if (want[i] != p[done + i])
					return done + i;
		}
		done += len;
	}
	return n;
}
