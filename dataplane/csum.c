#include "dataplane/csum.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

/*
 * RFC 1071 section 2(B): the one's complement sum does not depend on byte
 * order, so the buffer is summed in native-order 32-bit halves of 64-bit
 * loads and swapped once at the end into the big-endian word convention of
 * csum.h.
 */
static uint16_t sum_native(const uint8_t *p, uint32_t len)
{
	uint64_t acc = 0;
	uint64_t w;

	/* 2^32 iterations of at most 2^33 each cannot overflow 64 bits */
	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&w, p, 8);
		acc += (w & 0xffffffffu) + (w >> 32);
	}
	if (len >= 4) {
		uint32_t v;

		memcpy(&v, p, 4);
		acc += v;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t v;

		memcpy(&v, p, 2);
		acc += v;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* the odd byte is the high-order byte of a big-endian word padded with 0 */
		uint8_t tail[2] = {p[0], 0};
		uint16_t v;

		memcpy(&v, tail, 2);
		acc += v;
	}
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	return csum_fold16((uint32_t)acc);
}

uint32_t csum_partial(const void *buf, uint32_t len, uint32_t sum)
{
	uint16_t s = sum_native(buf, len);

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	s = __builtin_bswap16(s);
#endif
	return (uint32_t)csum_fold16(sum) + s;
}

uint16_t csum_ipv4_hdr(const uint8_t *ip)
{
	uint32_t hl = (uint32_t)(ip[0] & 0x0f) * 4;
	uint32_t sum;

	/* the 10 bytes before the checksum field, then everything after it */
	sum = csum_partial(ip, 10, 0);
	sum = csum_partial(ip + 12, hl > 12 ? hl - 12 : 0, sum);
	return csum_fold(sum);
}

uint32_t csum_pseudo_v4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto, uint32_t l4_len)
{
	uint32_t sum = csum_partial(src, 4, 0);

	sum = csum_partial(dst, 4, sum);
	return sum + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

uint32_t csum_pseudo_v6(const uint8_t src[16], const uint8_t dst[16], uint8_t proto,
			uint32_t l4_len)
{
	uint32_t sum = csum_partial(src, 16, 0);

	sum = csum_partial(dst, 16, sum);
	return sum + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

int csum_l4_field(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 16;
	case IPPROTO_UDP:
		return 6;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return 2;
	default:
		return -1;
	}
}

/* The sum over pseudo-header and message, with the checksum field taken as 0. */
static int l4_sum(const struct addr *src, const struct addr *dst, uint8_t proto, const uint8_t *l4,
		  uint32_t l4_len, uint32_t *out)
{
	int fo = csum_l4_field(proto);
	uint32_t sum;

	if (fo < 0 || l4_len < (uint32_t)fo + 2 || src->family != dst->family)
		return -EINVAL;
	if (src->family == ADDR_V4) {
		if (proto == IPPROTO_ICMPV6)
			return -EINVAL;
		/* RFC 792: the ICMP checksum covers the message only */
		sum = proto == IPPROTO_ICMP ? 0 : csum_pseudo_v4(src->b, dst->b, proto, l4_len);
	} else if (src->family == ADDR_V6) {
		if (proto == IPPROTO_ICMP)
			return -EINVAL;
		sum = csum_pseudo_v6(src->b, dst->b, proto, l4_len);
	} else {
		return -EINVAL;
	}
	sum = csum_partial(l4, (uint32_t)fo, sum);
	sum = csum_partial(l4 + fo + 2, l4_len - (uint32_t)fo - 2, sum);
	*out = sum;
	return 0;
}

int csum_l4(const struct addr *src, const struct addr *dst, uint8_t proto, const uint8_t *l4,
	    uint32_t l4_len, uint16_t *out)
{
	uint32_t sum;
	uint16_t c;
	int rc = l4_sum(src, dst, proto, l4, l4_len, &sum);

	if (rc)
		return rc;
	c = csum_fold(sum);
	if (c == 0 && proto == IPPROTO_UDP)
		c = 0xffff;
	*out = c;
	return 0;
}

int csum_l4_fill(const struct addr *src, const struct addr *dst, uint8_t proto, uint8_t *l4,
		 uint32_t l4_len)
{
	uint16_t c;
	int rc = csum_l4(src, dst, proto, l4, l4_len, &c);

	if (rc)
		return rc;
	l4[csum_l4_field(proto)] = (uint8_t)(c >> 8);
	l4[csum_l4_field(proto) + 1] = (uint8_t)c;
	return 0;
}

int csum_l4_verify(const struct addr *src, const struct addr *dst, uint8_t proto, const uint8_t *l4,
		   uint32_t l4_len)
{
	uint32_t sum;
	uint16_t stored;
	int rc = l4_sum(src, dst, proto, l4, l4_len, &sum);

	if (rc)
		return rc;
	stored = (uint16_t)(l4[csum_l4_field(proto)] << 8 | l4[csum_l4_field(proto) + 1]);
	if (proto == IPPROTO_UDP && stored == 0)
		return src->family == ADDR_V4;
	return csum_fold(sum + stored) == 0;
}
