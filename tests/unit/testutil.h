/* testutil: small helpers shared by the unit tests (deterministic randomness). */
#ifndef FULCRUM_TESTS_TESTUTIL_H
#define FULCRUM_TESTS_TESTUTIL_H

#include <stdint.h>

/* splitmix64: fixed seeds only, so every run of a test sees the same inputs. */
static inline uint64_t tu_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform-enough value in [0, n); 0 when n is 0. */
static inline uint64_t tu_below(uint64_t *s, uint64_t n)
{
	return n ? tu_rand(s) % n : 0;
}

#endif
