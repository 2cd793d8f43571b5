/* pkt: parse Ethernet/802.1Q/ARP/IPv4/IPv6/TCP/UDP/ICMP frames into offsets and fields. */
#ifndef FULCRUM_DATAPLANE_PKT_H
#define FULCRUM_DATAPLANE_PKT_H

#include <stdint.h>
#include <string.h>

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
	X(PKT_ERR_UDP_BAD_LEN, 12, "UDP length below 8 or beyond the IP payload")                  \
	X(PKT_ERR_NOT_ICMP_ERROR, 13, "not an ICMP error message")

enum pkt_err {
	PKT_OK = 0,
#define PKT_ERR_ENUM_(name, num, text) name = -(num),
	PKT_ERR_LIST(PKT_ERR_ENUM_)
#undef PKT_ERR_ENUM_
};

#define PKT_ERR_MAX 13 /* largest -err; keep in step with PKT_ERR_LIST */

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

/*
 * The packet quoted by an ICMP error, for steering "fragmentation needed" /
 * "packet too big" (and other errors) to the backend that owns the flow:
 * pi must come from pkt_parse(data, ...) and be an ICMP destination
 * unreachable, time exceeded or parameter problem (IPv4 types 3, 11, 12)
 * or an ICMPv6 error (types 1 to 4). Fills *inner like pkt_parse() would
 * for the quoted packet, with its offsets in the same frame (inner->l3_off
 * = pi->l4_off + 8) and its L2 fields copied from pi, except that the
 * quote is normally cut short (RFC 792 keeps the IP header and 8 bytes,
 * RFC 4443 section 2.4 as much as fits in 1280 bytes): inner->l3_len is
 * what is present of the quoted packet (at most what its header says),
 * only ports (TCP/UDP) or type/code/identifier (ICMP) are read from its L4
 * header, and l4_hlen and tcp_flags stay 0. The quote is a packet the VIP
 * side sent, so its tuple is the client -> VIP flow key reversed. Returns 0, PKT_ERR_NOT_ICMP_ERROR
 * if pi is not such a message, or the error pkt_parse() would give for a malformed quote (of which
 * a quote too short for ports is PKT_ERR_L4_TRUNC). Any thread; no side effects besides *inner.
 */
int pkt_parse_icmp_inner(const uint8_t *data, const struct pkt_info *pi, struct pkt_info *inner);

/*
 * The common frame, recognised inline for the per-packet path: untagged or
 * one 802.1Q tag, IPv4 without options or IPv6 without extension headers,
 * unfragmented, carrying TCP or UDP, every length as pkt_parse() checks it.
 * pkt_fast_check() returns 1 and fills *f when the frame is one, else 0 (and
 * then only pkt_parse() can say what it is, or whether it is malformed). For
 * such a frame pkt_fast_fill() writes exactly the *pi pkt_parse() would
 * (tests/unit/test_pkt.c compares them byte for byte); a caller that only
 * needs the 5-tuple can read it from the frame at f's offsets instead.
 * pkt_parse_fast() is pkt_parse() with this shortcut: same results. All
 * three are pure; any thread.
 */
struct pkt_fast {
	uint32_t l4_len;  /* IP payload: total length - 20, or the IPv6 payload length */
	uint16_t l3_off;  /* 14, or 18 with a tag */
	uint16_t l4_off;  /* l3_off + 20 (IPv4) or + 40 (IPv6) */
	uint16_t ethertype;
	uint16_t vlan_tci;
	uint8_t v6;	  /* 0 = IPv4, 1 = IPv6 */
	uint8_t l4_proto; /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t l4_hlen;  /* TCP data offset * 4, or 8 */
	uint8_t tcp_flags;
};

static inline int pkt_fast_check(const uint8_t *data, uint32_t len, struct pkt_fast *f);
static inline void pkt_fast_fill(const uint8_t *data, const struct pkt_fast *f,
				 struct pkt_info *pi);
static inline int pkt_parse_fast(const uint8_t *data, uint32_t len, struct pkt_info *pi);

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

/*
 * pkt_fast_check from the network header on: at off, of ethertype et, after
 * a tag carrying tci (0 if none). Inline into each caller with constants.
 */
static inline __attribute__((always_inline)) int pkt_fast_l3(const uint8_t *data, uint32_t len,
							     uint32_t off, uint16_t et, uint16_t tci,
							     struct pkt_fast *f)
{
	/* The checks mirror pkt_parse(): any doubt and the general parser decides. */
	const uint8_t *ip = data + off, *l4;
	uint32_t avail = len - off, l4len, hl, l4hl; /* avail >= 36 */
	uint8_t proto, flags = 0;

	if (__builtin_expect(et == PKT_ETHERTYPE_IPV4, 1)) {
		uint32_t tot = pkt_get16(ip + 2);

		/* version 4, IHL 5; neither MF nor a fragment offset (DF is fine) */
		if (ip[0] != 0x45 || tot > avail || tot < 20 || (pkt_get16(ip + 6) & 0x3fff) != 0)
			return 0;
		proto = ip[9];
		l4len = tot - 20;
		hl = 20;
	} else if (et == PKT_ETHERTYPE_IPV6) {
		l4len = pkt_get16(ip + 4);
		/* no extension header: Next Header names the upper layer directly */
		if ((ip[0] >> 4) != 6 || 40 + l4len > avail)
			return 0;
		proto = ip[6];
		hl = 40;
	} else {
		return 0;
	}
	l4 = ip + hl;
	if (__builtin_expect(proto == 6 /* TCP */, 1)) {
		if (l4len < 20) /* first: l4[12] may lie beyond the frame otherwise */
			return 0;
		l4hl = (uint32_t)(l4[12] >> 4) * 4;
		if (l4hl < 20 || l4hl > l4len)
			return 0;
		flags = l4[13];
	} else if (proto == 17 /* UDP */) {
		uint32_t ulen;
		if (l4len < 8)
			return 0;
		ulen = pkt_get16(l4 + 4);
		if (ulen < 8 || ulen > l4len)
			return 0;
		l4hl = 8;
	} else {
		return 0;
	}
	f->l4_len = l4len;
	f->l3_off = (uint16_t)off;
	f->l4_off = (uint16_t)(off + hl);
	f->ethertype = et;
	f->vlan_tci = tci;
	f->v6 = hl == 40;
	f->l4_proto = proto;
	f->l4_hlen = (uint8_t)l4hl;
	f->tcp_flags = flags;
	return 1;
}

static inline int pkt_fast_check(const uint8_t *data, uint32_t len, struct pkt_fast *f)
{
	if (__builtin_expect(len < PKT_ETH_HLEN + 40, 0))
		return 0; /* also too short for IPv6 + TCP/UDP, with or without a tag */
	uint16_t et = pkt_get16(data + 12);
	/* the most common frame, untagged IPv4, with its offsets as constants */
	if (__builtin_expect(et == PKT_ETHERTYPE_IPV4, 1))
		return pkt_fast_l3(data, len, PKT_ETH_HLEN, PKT_ETHERTYPE_IPV4, 0, f);
	if (et == PKT_ETHERTYPE_VLAN)
		return pkt_fast_l3(data, len, PKT_ETH_HLEN + PKT_VLAN_HLEN, pkt_get16(data + 16),
				   pkt_get16(data + 14), f);
	return pkt_fast_l3(data, len, PKT_ETH_HLEN, et, 0, f);
}

static inline void pkt_fast_fill(const uint8_t *data, const struct pkt_fast *f,
				 struct pkt_info *pi)
{
	const uint8_t *ip = data + f->l3_off, *l4 = data + f->l4_off;

	*pi = (struct pkt_info){0};
	pi->vlans = f->l3_off != PKT_ETH_HLEN;
	pi->vlan_tci = f->vlan_tci;
	pi->ethertype = f->ethertype;
	pi->l3_off = f->l3_off;
	pi->l4_off = f->l4_off;
	pi->l4_len = f->l4_len;
	pi->l3_len = f->l4_len + (uint32_t)(f->l4_off - f->l3_off);
	pi->l4_proto = f->l4_proto;
	pi->l4_hlen = f->l4_hlen;
	pi->tcp_flags = f->tcp_flags;
	pi->sport = pkt_get16(l4);
	pi->dport = pkt_get16(l4 + 2);
	if (!f->v6) {
		pi->l3 = PKT_L3_IPV4;
		pi->ttl = ip[8];
		pi->src.family = ADDR_V4;
		pi->dst.family = ADDR_V4;
		memcpy(pi->src.b, ip + 12, 4);
		memcpy(pi->dst.b, ip + 16, 4);
	} else {
		pi->l3 = PKT_L3_IPV6;
		pi->ttl = ip[7];
		pi->src.family = ADDR_V6;
		pi->dst.family = ADDR_V6;
		memcpy(pi->src.b, ip + 8, 16);
		memcpy(pi->dst.b, ip + 24, 16);
	}
}

static inline int pkt_parse_fast(const uint8_t *data, uint32_t len, struct pkt_info *pi)
{
	struct pkt_fast f;

	if (!pkt_fast_check(data, len, &f))
		return pkt_parse(data, len, pi);
	pkt_fast_fill(data, &f, pi);
	return 0;
}

#endif
