/* hash: one portable, seeded 64-bit hash for everything the dataplane hashes. */
#ifndef FULCRUM_DATAPLANE_HASH_H
#define FULCRUM_DATAPLANE_HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Why our own: Maglev needs every node to compute the same value for the same
 * bytes and seed, whatever the CPU's byte order or features (no CRC32
 * instructions, no host-endian loads). Words are assembled little-endian from
 * bytes, so results are identical everywhere; on x86 the compiler turns that
 * into a plain load. Not cryptographic: the cluster seed is the only defence
 * against chosen 5-tuples, as in Maglev and Katran.
 */

static inline uint64_t hash_rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

/* Final avalanche: every input bit affects every output bit (murmur3 fmix64). */
static inline uint64_t hash_fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static inline uint64_t hash_load_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint64_t hash_step(uint64_t h, uint64_t w)
{
	return hash_rotl64(h ^ (w * 0x9e3779b97f4a7c15ULL), 29) * 0xc2b2ae3d27d4eb4fULL;
}

/* Hash n bytes at p with seed. Same bytes + seed = same value on every host. */
static inline uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = seed ^ ((uint64_t)n * 0x165667b19e3779f9ULL);
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		h = hash_step(h, hash_load_le64(b + i));
	if (i < n) {
		uint8_t tail[8] = {0};
		for (size_t j = 0; i + j < n; j++)
			tail[j] = b[i + j];
		h = hash_step(h, hash_load_le64(tail));
	}
	return hash_fmix64(h);
}

#endif
