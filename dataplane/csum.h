/* csum: the Internet checksum (RFC 1071), pseudo-headers, incremental updates (RFC 1624). */
#ifndef FULCRUM_DATAPLANE_CSUM_H
#define FULCRUM_DATAPLANE_CSUM_H

#include <stdint.h>
#include <string.h>

#include "dataplane/addr.h"

/*
 * Conventions. A checksum *value* is the 16-bit number that the header field
 * holds read big-endian, in a host uint16_t: store it with pkt_put16() or any
 * big-endian store. A partial *sum* (uint32_t) is an unfinished one's
 * complement sum of big-endian 16-bit words, not complemented and not fully
 * folded; sums can be added to each other (keep the total below 2^32: any
 * sum returned here is below 2^19, so thousands of them can be added) and
 * host-order 16-bit quantities can be added to them directly.
 *
 * All functions are pure, reentrant and callable from any thread. None
 * allocates. Buffers must hold the stated number of bytes.
 */

/*
 * Add the bytes buf[0 .. len) to sum. When a message is summed in pieces,
 * every piece but the last must have an even length (RFC 1071 pairs bytes
 * from the start of each piece).
 */
uint32_t csum_partial(const void *buf, uint32_t len, uint32_t sum);

/* Fold a partial sum to 16 bits (end-around carry), without complementing. */
static inline uint16_t csum_fold16(uint32_t sum)
{
	/*
	 * sum + sum rotated by 16: the upper half becomes high + low + the carry
	 * out of low + high, the end-around carry, in one add (the usual
	 * two-step fold takes twice the instructions, and this runs per packet).
	 */
	return (uint16_t)((sum + (sum >> 16 | sum << 16)) >> 16);
}

/*
 * The checksum value for a finished sum: fold and complement. To verify a
 * message that includes its checksum field, sum all of it: csum_fold(sum)
 * is 0 when the checksum is right.
 */
static inline uint16_t csum_fold(uint32_t sum)
{
	return (uint16_t)~csum_fold16(sum);
}

/*
 * The IPv4 header checksum value for the header at ip (IHL taken from
 * ip[0], at least 20 bytes readable, IHL * 4 bytes read). The current
 * content of the checksum field is ignored.
 */
uint16_t csum_ipv4_hdr(const uint8_t *ip);

/*
 * Pseudo-header sums for TCP/UDP/ICMPv6 (RFC 9293 section 3.1 for IPv4,
 * RFC 8200 section 8.1 for IPv6). src/dst are 4 or 16 bytes in network
 * order; l4_len is the upper-layer length.
 */
uint32_t csum_pseudo_v4(const uint8_t src[4], const uint8_t dst[4], uint8_t proto, uint32_t l4_len);
uint32_t csum_pseudo_v6(const uint8_t src[16], const uint8_t dst[16], uint8_t proto,
			uint32_t l4_len);

/* Offset of the checksum field within an upper-layer header, or -1 if unsupported. */
int csum_l4_field(uint8_t proto);

/*
 * Checksum value, computed from scratch, of the upper-layer message
 * l4[0 .. l4_len) (header and payload) of protocol proto (TCP, UDP, ICMPv6
 * with the pseudo-header; ICMP over IPv4 without one) between src and dst,
 * as if its checksum field were zero. A UDP result of 0 is returned as
 * 0xFFFF (RFC 768: 0 means "no checksum"). Writes *out and returns 0;
 * -EINVAL if the protocol is unsupported, the families differ or are
 * NONE, or l4_len is too short to hold the checksum field.
 */
int csum_l4(const struct addr *src, const struct addr *dst, uint8_t proto, const uint8_t *l4,
	    uint32_t l4_len, uint16_t *out);

/* csum_l4() and store the result into the checksum field of l4. Same errors. */
int csum_l4_fill(const struct addr *src, const struct addr *dst, uint8_t proto, uint8_t *l4,
		 uint32_t l4_len);

/*
 * Whether the checksum stored in l4 is right: 1 yes, 0 no, negative errno as
 * csum_l4(). UDP over IPv4 with checksum 0 ("none") counts as right; UDP
 * over IPv6 with 0 does not (RFC 8200 section 8.1).
 */
int csum_l4_verify(const struct addr *src, const struct addr *dst, uint8_t proto, const uint8_t *l4,
		   uint32_t l4_len);

/*
 * Fold a 64-bit sum of 32-bit words to 16 bits (end-around carry), without
 * complementing. The fold works in either byte order, so it also finishes
 * sums taken over words loaded natively from a frame (rw_nat_csums).
 */
static inline uint16_t csum_fold64(uint64_t s)
{
	/* to 32 bits with the end-around carry, as csum_fold16 does to 16 */
	return csum_fold16((uint32_t)((s + (s >> 32 | s << 32)) >> 32));
}

/*
 * Incremental update of one 16-bit field, RFC 1624 equation 3:
 * HC' = ~(~HC + ~m + m'), the new checksum value after old_v became new_v
 * (the field at an even offset of the covered message). Several fields, as
 * in the nat rewrite, sum their differences first and fold once
 * (rw_nat_csums). For UDP the caller maps a result of 0 to 0xFFFF.
 */
static inline uint16_t csum_update16(uint16_t csum, uint16_t old_v, uint16_t new_v)
{
	/* at most 3 * 0xffff: no carry out of 32 bits */
	return csum_fold((uint32_t)(uint16_t)~csum + (uint16_t)~old_v + new_v);
}

#endif
