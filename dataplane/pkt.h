/* pkt: parse Ethernet/802.1Q/ARP/IPv4/IPv6/TCP/UDP/ICMP frames into offsets and fields. */
#ifndef FULCRUM_DATAPLANE_PKT_H
#define FULCRUM_DATAPLANE_PKT_H

#include <stdint.h>

#include "dataplane/addr.h"

/*
 * Pure C on a byte buffer: no allocation, no logging, no DPDK. Every length
 * is checked against the buffer before it is used, and nothing at or beyond
 * data + len is ever read. All functions are reentrant; any thread may call
 * them on buffers it owns.
 *
 * Not verified, on purpose (the receiving host does it, and the fast path
 * must not pay for it): the IPv4 header checksum and the TCP/UDP/ICMP
 * checksums. IPv4 options are skipped, not interpreted (a source-route option
 * is not honoured). An IPv6 jumbogram (payload length 0 with a Jumbo option,
 * RFC 2675) is not supported: it parses as an empty payload.
 */

#define PKT_ETH_HLEN	 14 /* Ethernet header without tags */
#define PKT_VLAN_HLEN	 4  /* one 802.1Q/802.1ad tag */
#define PKT_MAX_EXT_HDRS 8  /* IPv6 extension headers accepted before the L4 header */

#define PKT_ETHERTYPE_IPV4 0x0800
#define PKT_ETHERTYPE_ARP  0x0806
#define PKT_ETHERTYPE_VLAN 0x8100 /* 802.1Q customer tag */
#define PKT_ETHERTYPE_QINQ 0x88a8 /* 802.1ad service tag */
#define PKT_ETHERTYPE_IPV6 0x86dd

#define PKT_ARP_REQUEST 1
#define PKT_ARP_REPLY	2

/* TCP flag bits as in byte 13 of the TCP header (RFC 9293). */
#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10
#define PKT_TCP_URG 0x20
#define PKT_TCP_ECE 0x40
#define PKT_TCP_CWR 0x80

/*
 * Parse errors: X(name, number, text). pkt_parse() returns -number, so a
 * per-reason drop counter can be indexed by -err (1 .. PKT_ERR_MAX).
 */
#define PKT_ERR_LIST(X)                                                                            \
	X(PKT_ERR_L2_TRUNC, 1, "truncated Ethernet header")                                        \
	X(PKT_ERR_VLAN_BAD, 2, "truncated VLAN tag or unsupported tag stack")                      \
	X(PKT_ERR_ARP_TRUNC, 3, "truncated ARP packet")                                            \
	X(PKT_ERR_ARP_BAD, 4, "ARP not Ethernet/IPv4 request or reply")                            \
	X(PKT_ERR_L3_TRUNC, 5, "IP header or total length beyond the frame")                       \
	X(PKT_ERR_IPV4_BAD, 6, "bad IPv4 version, IHL or total length")                            \
	X(PKT_ERR_IPV6_BAD, 7, "bad IPv6 version or extension header order")                       \
	X(PKT_ERR_EXT_TOO_MANY, 8, "too many IPv6 extension headers")                              \
	X(PKT_ERR_EXT_TRUNC, 9, "truncated IPv6 extension header")                                 \
	X(PKT_ERR_L4_TRUNC, 10, "truncated TCP/UDP/ICMP header")                                   \
	X(PKT_ERR_TCP_BAD_DOFF, 11, "TCP data offset below 5")                                     \
	X(PKT_ERR_UDP_BAD_LEN, 12, "UDP length below 8 or beyond the IP payload")

enum pkt_err {
	PKT_OK = 0,
#define PKT_ERR_ENUM_(name, num, text) name = -(num),
	PKT_ERR_LIST(PKT_ERR_ENUM_)
#undef PKT_ERR_ENUM_
};

#define PKT_ERR_MAX 12 /* largest -err; keep in step with PKT_ERR_LIST */

enum pkt_l3 {
	PKT_L3_NONE = 0, /* nothing parsed (only after an error) */
	PKT_L3_ARP = 1,
	PKT_L3_IPV4 = 2,
	PKT_L3_IPV6 = 3,
	PKT_L3_OTHER = 4, /* any other ethertype (including 802.3 length values) */
};

enum pkt_frag {
	PKT_FRAG_NONE = 0,  /* not a fragment (an IPv6 atomic fragment, RFC 6946, is NONE) */
	PKT_FRAG_FIRST = 1, /* offset 0, more fragments: L4 header parsed from this fragment */
	PKT_FRAG_LATER = 2, /* offset > 0: no L4 header here; callers drop and count */
};

/*
 * What pkt_parse() found. Multi-byte numbers are in host order; addresses
 * stay in network order inside struct addr. Offsets count from the start of
 * the frame (the destination MAC is at 0, the source MAC at 6).
 *
 * L3/L4 meaning by kind:
 *  - IPv4/IPv6: src/dst are the IP addresses, ttl the TTL or hop limit,
 *    l3_len the IP packet length per its header (IPv4 total length, IPv6
 *    40 + payload length; Ethernet padding after it is ignored), l4_off the
 *    first byte after the IPv4 header or the last IPv6 extension header,
 *    l4_len = l3_off + l3_len - l4_off, l4_proto the upper-layer protocol.
 *    For a PKT_FRAG_LATER IPv6 fragment, l4_proto is the Next Header of the
 *    fragment header (it may name another extension header) and l4_off the
 *    first byte after it.
 *  - TCP/UDP: sport/dport; tcp_flags (TCP); l4_hlen = TCP data offset * 4,
 *    or 8 for UDP. For UDP, l4_len is what the IP header says; the UDP
 *    length field may be smaller (trailing bytes are not part of the datagram).
 *  - ICMP (over IPv4) and ICMPv6 (over IPv6): icmp_type/icmp_code; for echo
 *    request/reply (types 8/0 and 128/129) the identifier is in icmp_id and
 *    sport = dport = 0. l4_hlen = 8.
 *  - ARP: src/dst hold the sender/target protocol addresses (IPv4),
 *    arp_sha/arp_tha the sender/target hardware addresses, arp_op the
 *    operation; l3_len = 28, l4_* zero.
 *  - OTHER: only l2 fields and l3_off are set.
 * Fields that do not apply are zero.
 */
struct pkt_info {
	struct addr src;
	struct addr dst;
	uint32_t l3_len;
	uint32_t l4_len;
	uint16_t l3_off; /* = L2 header length: 14, 18 or 22 */
	uint16_t l4_off;
	uint16_t ethertype; /* innermost, after any tags */
	uint16_t vlan_tci;  /* the 802.1Q (0x8100) tag, when vlans >= 1 */
	uint16_t svlan_tci; /* the 802.1ad (0x88a8) outer tag, when vlans == 2 */
	uint16_t sport;
	uint16_t dport;
	uint16_t icmp_id;
	uint16_t arp_op;
	uint8_t vlans;	  /* 0, 1 (802.1Q) or 2 (802.1ad + 802.1Q) */
	uint8_t l3;	  /* enum pkt_l3 */
	uint8_t l4_proto; /* IPPROTO_* */
	uint8_t l4_hlen;
	uint8_t frag; /* enum pkt_frag */
	uint8_t ttl;
	uint8_t tcp_flags; /* PKT_TCP_* */
	uint8_t icmp_type;
	uint8_t icmp_code;
	uint8_t arp_sha[6];
	uint8_t arp_tha[6];
};

/*
 * Parse the frame data[0 .. len). Returns 0 and fills *pi, or a negative
 * enum pkt_err; on error *pi is partly filled and must not be used. A frame
 * with an unknown ethertype or IP protocol is not an error (PKT_L3_OTHER,
 * or only the l4_* offsets set). A first fragment whose L4 header is cut
 * short is PKT_ERR_L4_TRUNC (tiny-fragment attacks, RFC 1858; RFC 8200
 * section 4.5 requires the whole header chain in the first fragment).
 * Accepted tag stacks: none, 0x8100, 0x88a8 + 0x8100.
 */
int pkt_parse(const uint8_t *data, uint32_t len, struct pkt_info *pi);

/* Text of a pkt_parse() result ("ok" for 0). Never NULL; static storage. */
const char *pkt_err_str(int err);

/* Big-endian loads and stores on unaligned bytes (compile to one load/store + bswap). */
static inline uint16_t pkt_get16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t pkt_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void pkt_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
