/* raft/le: little-endian fixed-width loads and stores for the on-disk and wire formats. */
#ifndef FULCRUM_RAFT_LE_H
#define FULCRUM_RAFT_LE_H

#include <stdint.h>

/*
 * Byte by byte, so the formats are the same on every host whatever its byte
 * order or alignment rules; compilers turn these into single moves on x86.
 */
static inline void raft_le_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void raft_le_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t raft_le_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t raft_le_get64(const uint8_t *p)
{
	return (uint64_t)raft_le_get32(p) | (uint64_t)raft_le_get32(p + 4) << 32;
}

#endif
