/* addr: IPv4/IPv6 addresses as the dataplane stores and compares them. */
#ifndef FULCRUM_DATAPLANE_ADDR_H
#define FULCRUM_DATAPLANE_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum addr_family {
	ADDR_NONE = 0,
	ADDR_V4 = 4,
	ADDR_V6 = 6,
};

/*
 * An address in network byte order. For ADDR_V4 the address is b[0..3] and
 * b[4..15] are zero; pad is always zero. Because every byte is defined, two
 * addresses are equal iff memcmp() says so, and hashing the raw bytes gives
 * the same value on every host whatever its byte order.
 */
struct addr {
	uint8_t family;
	uint8_t pad[3];
	uint8_t b[16];
};

/* Longest text addr_format() writes, with its NUL (INET6_ADDRSTRLEN). */
#define ADDR_STRLEN 46

static inline void addr_set_v4(struct addr *a, const uint8_t b4[4])
{
	memset(a, 0, sizeof(*a));
	a->family = ADDR_V4;
	memcpy(a->b, b4, 4);
}

static inline void addr_set_v6(struct addr *a, const uint8_t b16[16])
{
	memset(a, 0, sizeof(*a));
	a->family = ADDR_V6;
	memcpy(a->b, b16, 16);
}

static inline int addr_eq(const struct addr *x, const struct addr *y)
{
	/* all 20 bytes, as memcmp would, in three loads per side instead of a call */
	uint64_t x0, x1, y0, y1;
	uint32_t x2, y2;

	_Static_assert(sizeof(struct addr) == 20, "addr_eq compares 8 + 8 + 4 bytes");
	memcpy(&x0, x, 8);
	memcpy(&y0, y, 8);
	memcpy(&x1, (const uint8_t *)x + 8, 8);
	memcpy(&y1, (const uint8_t *)y + 8, 8);
	memcpy(&x2, (const uint8_t *)x + 16, 4);
	memcpy(&y2, (const uint8_t *)y + 16, 4);
	return ((x0 ^ y0) | (x1 ^ y1) | (x2 ^ y2)) == 0;
}

/* Total order (family first, then bytes): used to sort backends by identity. */
static inline int addr_cmp(const struct addr *x, const struct addr *y)
{
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return memcmp(x->b, y->b, sizeof(x->b));
}

/* Length in bytes of the address proper: 4, 16, or 0 for ADDR_NONE. */
static inline size_t addr_len(const struct addr *a)
{
	return a->family == ADDR_V4 ? 4 : a->family == ADDR_V6 ? 16 : 0;
}

/*
 * Parse "192.0.2.1" or "2001:db8::1". Returns 0, or -EINVAL (a is then zeroed).
 */
int addr_parse(const char *text, struct addr *a);

/*
 * Write the text form into buf (size >= ADDR_STRLEN recommended). Returns buf.
 * An ADDR_NONE address is written as "-". Never fails; truncates if small.
 */
char *addr_format(const struct addr *a, char *buf, size_t size);

#endif
