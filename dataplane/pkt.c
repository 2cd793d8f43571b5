#include "dataplane/pkt.h"

#include <netinet/in.h>
#include <string.h>

/* IPv6 extension header types we step over (RFC 8200 section 4). */
#define IP6_HOPOPTS  0
#define IP6_ROUTING  43
#define IP6_FRAGMENT 44
#define IP6_DSTOPTS  60

#define IP4_MF		 0x2000
#define IP4_OFFMASK	 0x1fff
#define IP6_FRAG_OFFMASK 0xfff8
#define IP6_FRAG_M	 0x0001

const char *pkt_err_str(int err)
{
	switch (err) {
	case PKT_OK:
		return "ok";
#define PKT_ERR_STR_(name, num, text)                                                              \
	case name:                                                                                 \
		return text;
		PKT_ERR_LIST(PKT_ERR_STR_)
#undef PKT_ERR_STR_
	default:
		return "unknown packet error";
	}
}

static void set_v4(struct addr *a, const uint8_t *p)
{
	/* pi was zeroed, so only family and the four bytes need writing */
	a->family = ADDR_V4;
	memcpy(a->b, p, 4);
}

static void set_v6(struct addr *a, const uint8_t *p)
{
	a->family = ADDR_V6;
	memcpy(a->b, p, 16);
}

static int parse_arp(const uint8_t *p, uint32_t avail, struct pkt_info *pi)
{
	uint16_t op;

	if (avail < 28)
		return PKT_ERR_ARP_TRUNC;
	/* RFC 826 layout for hardware Ethernet (1), protocol IPv4, 6/4-byte addresses */
	if (pkt_get16(p) != 1 || pkt_get16(p + 2) != PKT_ETHERTYPE_IPV4 || p[4] != 6 || p[5] != 4)
		return PKT_ERR_ARP_BAD;
	op = pkt_get16(p + 6);
	if (op != PKT_ARP_REQUEST && op != PKT_ARP_REPLY)
		return PKT_ERR_ARP_BAD;
	pi->l3 = PKT_L3_ARP;
	pi->l3_len = 28;
	pi->arp_op = op;
	memcpy(pi->arp_sha, p + 8, 6);
	set_v4(&pi->src, p + 14);
	memcpy(pi->arp_tha, p + 18, 6);
	set_v4(&pi->dst, p + 24);
	return 0;
}

/*
 * The upper-layer header at data + pi->l4_off, pi->l4_len bytes long. v6
 * tells which ICMP flavour belongs to this IP version.
 */
static int parse_l4(const uint8_t *data, struct pkt_info *pi, int v6)
{
	const uint8_t *p = data + pi->l4_off;
	uint32_t n = pi->l4_len;
	uint32_t hl;

	switch (pi->l4_proto) {
	case IPPROTO_TCP:
		if (n < 20)
			return PKT_ERR_L4_TRUNC;
		hl = (uint32_t)(p[12] >> 4) * 4;
		if (hl < 20)
			return PKT_ERR_TCP_BAD_DOFF;
		if (hl > n)
			return PKT_ERR_L4_TRUNC;
		pi->sport = pkt_get16(p);
		pi->dport = pkt_get16(p + 2);
		pi->tcp_flags = p[13];
		pi->l4_hlen = (uint8_t)hl;
		return 0;
	case IPPROTO_UDP: {
		uint16_t ulen;

		if (n < 8)
			return PKT_ERR_L4_TRUNC;
		ulen = pkt_get16(p + 4);
		/* A first fragment holds only part of the datagram ulen describes. */
		if (ulen < 8 || (pi->frag == PKT_FRAG_NONE && ulen > n))
			return PKT_ERR_UDP_BAD_LEN;
		pi->sport = pkt_get16(p);
		pi->dport = pkt_get16(p + 2);
		pi->l4_hlen = 8;
		return 0;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* ICMP in IPv6 or ICMPv6 in IPv4 is nonsense: leave it unparsed */
		if ((pi->l4_proto == IPPROTO_ICMPV6) != (v6 != 0))
			return 0;
		if (n < 8)
			return PKT_ERR_L4_TRUNC;
		pi->icmp_type = p[0];
		pi->icmp_code = p[1];
		pi->l4_hlen = 8;
		/* echo request/reply: RFC 792 types 8/0, RFC 4443 types 128/129 */
		if (v6 ? (p[0] == 128 || p[0] == 129) : (p[0] == 8 || p[0] == 0))
			pi->icmp_id = pkt_get16(p + 4);
		return 0;
	default:
		return 0;
	}
}

/*
 * The upper-layer header of a packet quoted in an ICMP error: RFC 792 only
 * promises its first 8 bytes, so take what identifies the flow (ports, or
 * ICMP type/code/identifier) and leave l4_hlen and tcp_flags at 0.
 */
static int parse_l4_quoted(const uint8_t *data, struct pkt_info *pi, int v6)
{
	const uint8_t *p = data + pi->l4_off;
	uint32_t n = pi->l4_len;

	switch (pi->l4_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (n < 4)
			return PKT_ERR_L4_TRUNC;
		pi->sport = pkt_get16(p);
		pi->dport = pkt_get16(p + 2);
		return 0;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((pi->l4_proto == IPPROTO_ICMPV6) != (v6 != 0))
			return 0;
		if (n < 8)
			return PKT_ERR_L4_TRUNC;
		pi->icmp_type = p[0];
		pi->icmp_code = p[1];
		if (v6 ? (p[0] == 128 || p[0] == 129) : (p[0] == 8 || p[0] == 0))
			pi->icmp_id = pkt_get16(p + 4);
		return 0;
	default:
		return 0;
	}
}

/*
 * quoted: the packet is the copy inside an ICMP error, normally cut short,
 * so a length field beyond the bytes present shrinks to them instead of
 * being an error.
 */
static int parse_ipv4(const uint8_t *data, uint32_t len, struct pkt_info *pi, int quoted)
{
	const uint8_t *p = data + pi->l3_off;
	uint32_t avail = len - pi->l3_off;
	uint32_t hl, tot;
	uint16_t fo;

	if (avail < 20)
		return PKT_ERR_L3_TRUNC;
	hl = (uint32_t)(p[0] & 0x0f) * 4;
	tot = pkt_get16(p + 2);
	if ((p[0] >> 4) != 4 || hl < 20 || tot < hl)
		return PKT_ERR_IPV4_BAD;
	if (tot > avail) {
		if (!quoted || hl > avail)
			return PKT_ERR_L3_TRUNC;
		tot = avail;
	}
	pi->l3 = PKT_L3_IPV4;
	pi->l3_len = tot;
	pi->ttl = p[8];
	pi->l4_proto = p[9];
	set_v4(&pi->src, p + 12);
	set_v4(&pi->dst, p + 16);
	pi->l4_off = (uint16_t)(pi->l3_off + hl);
	pi->l4_len = tot - hl;
	fo = pkt_get16(p + 6);
	if (fo & IP4_OFFMASK) {
		pi->frag = PKT_FRAG_LATER;
		return 0;
	}
	if (fo & IP4_MF)
		pi->frag = PKT_FRAG_FIRST;
	return quoted ? parse_l4_quoted(data, pi, 0) : parse_l4(data, pi, 0);
}

static int parse_ipv6(const uint8_t *data, uint32_t len, struct pkt_info *pi, int quoted)
{
	const uint8_t *p = data + pi->l3_off;
	uint32_t avail = len - pi->l3_off;
	uint32_t off, end, n_ext = 0;
	uint8_t nh;
	int seen_frag = 0;

	if (avail < 40)
		return PKT_ERR_L3_TRUNC;
	if ((p[0] >> 4) != 6)
		return PKT_ERR_IPV6_BAD;
	pi->l3_len = 40 + (uint32_t)pkt_get16(p + 4);
	if (pi->l3_len > avail) {
		if (!quoted)
			return PKT_ERR_L3_TRUNC;
		pi->l3_len = avail;
	}
	pi->l3 = PKT_L3_IPV6;
	pi->ttl = p[7];
	set_v6(&pi->src, p + 8);
	set_v6(&pi->dst, p + 24);
	nh = p[6];
	off = pi->l3_off + 40;
	end = pi->l3_off + pi->l3_len;
	for (;;) {
		const uint8_t *e = data + off;
		uint32_t hl;

		if (nh != IP6_HOPOPTS && nh != IP6_ROUTING && nh != IP6_DSTOPTS &&
		    nh != IP6_FRAGMENT)
			break;
		if (n_ext == PKT_MAX_EXT_HDRS)
			return PKT_ERR_EXT_TOO_MANY;
		/* RFC 8200 section 4.1: hop-by-hop options only right after the header */
		if (nh == IP6_HOPOPTS && n_ext != 0)
			return PKT_ERR_IPV6_BAD;
		n_ext++;
		if (nh == IP6_FRAGMENT) {
			uint16_t fo;

			if (end - off < 8)
				return PKT_ERR_EXT_TRUNC;
			if (seen_frag)
				return PKT_ERR_IPV6_BAD;
			seen_frag = 1;
			nh = e[0];
			off += 8;
			fo = pkt_get16(e + 2);
			if (fo & IP6_FRAG_OFFMASK) {
				pi->frag = PKT_FRAG_LATER;
				pi->l4_proto = nh;
				pi->l4_off = (uint16_t)off;
				pi->l4_len = end - off;
				return 0;
			}
			if (fo & IP6_FRAG_M)
				pi->frag = PKT_FRAG_FIRST;
			continue;
		}
		if (end - off < 2)
			return PKT_ERR_EXT_TRUNC;
		hl = ((uint32_t)e[1] + 1) * 8;
		if (hl > end - off)
			return PKT_ERR_EXT_TRUNC;
		nh = e[0];
		off += hl;
	}
	pi->l4_proto = nh;
	/* off <= l3_off + 40 + 8 * 2048: fits 16 bits */
	pi->l4_off = (uint16_t)off;
	pi->l4_len = end - off;
	return quoted ? parse_l4_quoted(data, pi, 1) : parse_l4(data, pi, 1);
}

_Static_assert(sizeof(struct pkt_info) <= 128,
	       "pkt_info lives on the stack per packet: keep it small");

/* Copying a zero object compiles to a few vector moves; memset of this size to `rep stos`. */
static const struct pkt_info pkt_zero;

int pkt_parse(const uint8_t *data, uint32_t len, struct pkt_info *pi)
{
	uint32_t off = PKT_ETH_HLEN;
	uint16_t et;

	*pi = pkt_zero;
	if (len < PKT_ETH_HLEN)
		return PKT_ERR_L2_TRUNC;
	et = pkt_get16(data + 12);
	if (et == PKT_ETHERTYPE_QINQ) {
		if (len < off + PKT_VLAN_HLEN)
			return PKT_ERR_VLAN_BAD;
		pi->svlan_tci = pkt_get16(data + off);
		et = pkt_get16(data + off + 2);
		off += PKT_VLAN_HLEN;
		pi->vlans = 1;
		/* 802.1ad: a service tag must carry a customer tag */
		if (et != PKT_ETHERTYPE_VLAN)
			return PKT_ERR_VLAN_BAD;
	}
	if (et == PKT_ETHERTYPE_VLAN) {
		if (len < off + PKT_VLAN_HLEN)
			return PKT_ERR_VLAN_BAD;
		pi->vlan_tci = pkt_get16(data + off);
		et = pkt_get16(data + off + 2);
		off += PKT_VLAN_HLEN;
		pi->vlans++;
		if (et == PKT_ETHERTYPE_VLAN || et == PKT_ETHERTYPE_QINQ)
			return PKT_ERR_VLAN_BAD;
	}
	pi->ethertype = et;
	pi->l3_off = (uint16_t)off;
	switch (et) {
	case PKT_ETHERTYPE_IPV4:
		return parse_ipv4(data, len, pi, 0);
	case PKT_ETHERTYPE_IPV6:
		return parse_ipv6(data, len, pi, 0);
	case PKT_ETHERTYPE_ARP:
		return parse_arp(data + off, len - off, pi);
	default:
		pi->l3 = PKT_L3_OTHER;
		return 0;
	}
}

int pkt_parse_icmp_inner(const uint8_t *data, const struct pkt_info *pi, struct pkt_info *inner)
{
	uint8_t t = pi->icmp_type;
	int v6 = pi->l3 == PKT_L3_IPV6;
	uint32_t end = (uint32_t)pi->l3_off + pi->l3_len;

	*inner = pkt_zero;
	/* error messages only: RFC 792 types 3, 11, 12; RFC 4443 types 1 to 4 */
	if (pi->frag == PKT_FRAG_LATER || pi->l4_hlen != 8)
		return PKT_ERR_NOT_ICMP_ERROR;
	if (v6 && (pi->l4_proto != IPPROTO_ICMPV6 || t < 1 || t > 4))
		return PKT_ERR_NOT_ICMP_ERROR;
	if (!v6 && (pi->l3 != PKT_L3_IPV4 || pi->l4_proto != IPPROTO_ICMP ||
		    (t != 3 && t != 11 && t != 12)))
		return PKT_ERR_NOT_ICMP_ERROR;
	inner->vlans = pi->vlans;
	inner->vlan_tci = pi->vlan_tci;
	inner->svlan_tci = pi->svlan_tci;
	inner->ethertype = pi->ethertype;
	/* l4_hlen == 8 means 8 <= l4_len, and l4_off is far below 2^16 */
	inner->l3_off = (uint16_t)(pi->l4_off + 8);
	/*
	 * The quote ends where the outer IP packet ends, not at the frame's
	 * end; past 64 KiB it is cut, so that inner offsets fit 16 bits.
	 */
	if (end > 0xffff)
		end = 0xffff;
	if (inner->l3_off > end)
		return PKT_ERR_L3_TRUNC;
	if (v6)
		return parse_ipv6(data, end, inner, 1);
	return parse_ipv4(data, end, inner, 1);
}
