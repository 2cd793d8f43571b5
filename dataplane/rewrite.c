#include "dataplane/rewrite.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "dataplane/csum.h"

#define IP4_DF 0x4000

void rw_eth(uint8_t *data, const uint8_t dst_mac[6], const uint8_t src_mac[6])
{
	memcpy(data, dst_mac, 6);
	memcpy(data + 6, src_mac, 6);
}

int rw_nat(uint8_t *data, struct pkt_info *pi, const struct addr *new_src, uint16_t new_sport,
	   const struct addr *new_dst, uint16_t new_dport)
{
	uint8_t fam;

	if (pi->l4_proto != IPPROTO_TCP && pi->l4_proto != IPPROTO_UDP)
		return -EINVAL;
	if (pi->frag == PKT_FRAG_LATER)
		return -EINVAL;
	if (pi->l3 == PKT_L3_IPV4)
		fam = ADDR_V4;
	else if (pi->l3 == PKT_L3_IPV6)
		fam = ADDR_V6;
	else
		return -EINVAL;
	if (new_src->family != fam || new_dst->family != fam)
		return -EINVAL;
	rw_nat_frame(data, pi->l3_off, pi->l4_off, fam == ADDR_V6, pi->l4_proto, new_src,
		     new_sport, new_dst, new_dport);
	pi->src = *new_src;
	pi->dst = *new_dst;
	pi->sport = new_sport;
	pi->dport = new_dport;
	return 0;
}

int rw_ipip_encap(struct rw_buf *buf, const struct pkt_info *pi, const struct addr *outer_src,
		  const struct addr *outer_dst, uint32_t mtu)
{
	const uint8_t *in = buf->data + pi->l3_off;
	uint32_t outer_len = RW_IPIP_HLEN + pi->l3_len;
	uint8_t *d, *ip;
	uint8_t tos, proto;
	uint16_t frag = 0, id = 0;
	uint32_t sum;

	if (pi->l3 == PKT_L3_IPV4) {
		tos = in[1];
		proto = IPPROTO_IPIP;
		if (pkt_get16(in + 6) & IP4_DF)
			frag = IP4_DF;
		else
			id = pkt_get16(in + 4);
	} else if (pi->l3 == PKT_L3_IPV6) {
		tos = (uint8_t)((in[0] & 0x0f) << 4 | in[1] >> 4);
		proto = IPPROTO_IPV6;
		frag = IP4_DF;
	} else {
		return -EINVAL;
	}
	if (outer_src->family != ADDR_V4 || outer_dst->family != ADDR_V4)
		return -EINVAL;
	if (buf->headroom < RW_IPIP_HLEN)
		return -ENOSPC;
	if (outer_len > 0xffff || (mtu && outer_len > mtu))
		return -EMSGSIZE;

	d = buf->data - RW_IPIP_HLEN;
	{
		/*
		 * Move the L2 header (14, 18 or 22 bytes) as one fixed 24-byte
		 * block: the frame holds at least l3_off + 20 >= 34 bytes, and
		 * the 24 bytes written end before the end of the outer header,
		 * which is written next. Loading all before storing makes the
		 * overlap (22 bytes moved 20) harmless.
		 */
		uint8_t l2[24];

		memcpy(l2, buf->data, sizeof(l2));
		memcpy(d, l2, sizeof(l2));
	}
	pkt_put16(d + pi->l3_off - 2, PKT_ETHERTYPE_IPV4);

	ip = d + pi->l3_off;
	ip[0] = 0x45;
	ip[1] = tos;
	pkt_put16(ip + 2, (uint16_t)outer_len);
	pkt_put16(ip + 4, id);
	pkt_put16(ip + 6, frag);
	ip[8] = RW_IPIP_TTL;
	ip[9] = proto;
	memcpy(ip + 12, outer_src->b, 4);
	memcpy(ip + 16, outer_dst->b, 4);
	/* the header's ten words, summed from the values just written (RFC 1071) */
	sum = (0x4500u | tos) + outer_len + id + frag + ((uint32_t)RW_IPIP_TTL << 8 | proto);
	sum += pkt_get16(ip + 12) + pkt_get16(ip + 14) + pkt_get16(ip + 16) + pkt_get16(ip + 18);
	pkt_put16(ip + 10, csum_fold(sum));

	buf->data = d;
	buf->headroom -= RW_IPIP_HLEN;
	buf->len = pi->l3_off + outer_len;
	return 0;
}

void rw_nat4_prepare(struct rw_nat4 *n, const struct addr *old_dst, const struct addr *new_src,
		     const struct addr *new_dst, uint16_t new_dport)
{
	uint32_t o, s1, d1;

	memcpy(&o, old_dst->b, 4);
	memcpy(&s1, new_src->b, 4);
	memcpy(&d1, new_dst->b, 4);
	memcpy(&n->addrs, new_src->b, 4);
	memcpy((uint8_t *)&n->addrs + 4, new_dst->b, 4);
	n->sum = (uint64_t)s1 + d1 + (uint32_t)~o;
	n->ports = rw_ports_word(0, htons(new_dport));
}
