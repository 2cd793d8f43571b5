/* pktbuild: header-only builder of test frames (L2 to L4) with correct checksums. */
#ifndef FULCRUM_TESTS_UNIT_PKTBUILD_H
#define FULCRUM_TESTS_UNIT_PKTBUILD_H

/*
 * For tests only. Describe a frame in a struct pb_spec (start from
 * pb_init(), change what the test is about), then pb_build() writes it into
 * a caller buffer. Checksums (IPv4 header, TCP, UDP, ICMP, ICMPv6) are
 * computed here with a deliberately naive byte-at-a-time RFC 1071 sum, so
 * that they are a second opinion on dataplane/csum.c rather than a copy.
 * pb_fragment() cuts IPv4/IPv6 fragments out of a built, unfragmented frame,
 * so a first fragment carries the L4 checksum of the whole datagram.
 *
 *	struct pb_spec s;
 *	uint8_t f[PB_MAX_FRAME];
 *	pb_init(&s, ADDR_V6);
 *	s.proto = IPPROTO_UDP;
 *	s.vlans = 1;
 *	s.vlan_tci = 42;
 *	uint32_t n = pb_build(&s, f, sizeof(f));   // 0 = did not fit / bad spec
 *
 * Everything is static inline and touches only its arguments: any thread.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/addr.h"

#define PB_MAX_EXT   12
#define PB_MAX_FRAME 2048 /* a comfortable buffer for pb_build() of the usual sizes */

enum pb_kind {
	PB_IP = 0,  /* IPv4 or IPv6 (by src.family) carrying proto */
	PB_ARP = 1, /* Ethernet/IPv4 ARP: sha = src_mac, spa = src, tha = arp_tha, tpa = dst */
	PB_RAW = 2, /* ethertype followed by payload */
};

/* One IPv6 extension header: type (0, 43, 60; 44 = an atomic fragment header; others zero-filled)
 * and Hdr Ext Len (8-octet units beyond the first 8; ignored for 44). */
struct pb_ext {
	uint8_t type;
	uint8_t len;
};

struct pb_spec {
	uint8_t kind; /* enum pb_kind */
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	uint8_t vlans;	    /* 0; 1 = one 802.1Q tag; 2 = 802.1ad outer tag + 802.1Q */
	uint16_t vlan_tci;  /* the 802.1Q tag */
	uint16_t svlan_tci; /* the 802.1ad tag */
	uint16_t ethertype; /* PB_RAW: required; PB_IP: 0 = by family, else written instead */
	struct addr src;
	struct addr dst;
	uint8_t ttl; /* TTL / hop limit */
	uint8_t tos; /* TOS / traffic class */
	uint32_t flow_label;
	uint16_t ip_id;
	bool df;
	uint8_t ip4_opts_len; /* IPv4 options: multiple of 4, <= 40 (NOPs then EOL) */
	uint8_t n_ext;	      /* IPv6 extension headers, in order */
	struct pb_ext ext[PB_MAX_EXT];
	uint8_t proto; /* IPPROTO_TCP/UDP/ICMP/ICMPV6, or anything (payload = raw L4) */
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t tcp_flags;
	uint16_t tcp_win;
	uint8_t tcp_opts_len; /* multiple of 4, <= 40 (NOPs then EOL) */
	uint8_t icmp_type;
	uint8_t icmp_code;
	uint16_t icmp_id;  /* with icmp_seq: the 4 bytes after the checksum (echo id/seq; */
	uint16_t icmp_seq; /* for other types, e.g. the MTU of "packet too big" split in two) */
	bool udp_no_csum;  /* IPv4 UDP: send checksum 0 */
	bool bad_csum;	   /* flip the L4 checksum (IPv4 header checksum stays right) */
	uint16_t arp_op;
	uint8_t arp_tha[6];
	const uint8_t *payload; /* NULL: a byte pattern of payload_len bytes */
	uint32_t payload_len;
	uint32_t min_len; /* pad the frame with zero bytes up to this (60: Ethernet minimum) */
};

static inline void pb_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void pb_put32(uint8_t *p, uint32_t v)
{
	pb_put16(p, (uint16_t)(v >> 16));
	pb_put16(p + 2, (uint16_t)v);
}

static inline uint16_t pb_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The address for text ("192.0.2.1", "2001:db8::1"); an all-zero ADDR_NONE if it does not parse. */
static inline struct addr pb_addr(const char *text)
{
	struct addr a;

	addr_parse(text, &a);
	return a;
}

/* Defaults: 02:00:00:00:00:02 -> 02:00:00:00:00:01, 192.0.2.1 / 2001:db8::1 -> 198.51.100.1 /
 * 2001:db8:1::1, TTL 64, TCP SYN 40000 -> 80, window 65535, no payload. */
static inline void pb_init(struct pb_spec *s, int family)
{
	static const uint8_t dmac[6] = {2, 0, 0, 0, 0, 1};
	static const uint8_t smac[6] = {2, 0, 0, 0, 0, 2};

	memset(s, 0, sizeof(*s));
	s->kind = PB_IP;
	memcpy(s->dst_mac, dmac, 6);
	memcpy(s->src_mac, smac, 6);
	s->src = pb_addr(family == ADDR_V6 ? "2001:db8::1" : "192.0.2.1");
	s->dst = pb_addr(family == ADDR_V6 ? "2001:db8:1::1" : "198.51.100.1");
	s->ttl = 64;
	s->ip_id = 0x1234;
	s->proto = IPPROTO_TCP;
	s->sport = 40000;
	s->dport = 80;
	s->tcp_flags = 0x02;
	s->tcp_win = 65535;
	s->icmp_type = family == ADDR_V6 ? 128 : 8;
	s->arp_op = 1;
}

/* RFC 1071, one byte at a time on purpose (see the top of this file). */
static inline uint32_t pb_sum(const uint8_t *p, uint32_t n, uint32_t sum)
{
	for (uint32_t i = 0; i < n; i++)
		sum += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return sum;
}

static inline uint16_t pb_fin(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline uint32_t pb_l2_len(const struct pb_spec *s)
{
	return 14 + 4u * s->vlans;
}

static inline uint32_t pb_l4_hdr_len(const struct pb_spec *s)
{
	switch (s->proto) {
	case IPPROTO_TCP:
		return 20u + s->tcp_opts_len;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return 8;
	default:
		return 0;
	}
}

static inline uint32_t pb_ext_len(const struct pb_ext *e)
{
	return e->type == 44 ? 8 : (e->len + 1u) * 8;
}

/* Write the L4 header (payload already in place after it) and its checksum. */
static inline void pb_l4(const struct pb_spec *s, uint8_t *l4, uint32_t l4_len)
{
	uint32_t hl = pb_l4_hdr_len(s), sum = 0, csum_off;
	bool v6 = s->src.family == ADDR_V6;

	switch (s->proto) {
	case IPPROTO_TCP:
		pb_put16(l4, s->sport);
		pb_put16(l4 + 2, s->dport);
		pb_put32(l4 + 4, s->seq);
		pb_put32(l4 + 8, s->ack);
		l4[12] = (uint8_t)((hl / 4) << 4);
		l4[13] = s->tcp_flags;
		pb_put16(l4 + 14, s->tcp_win);
		pb_put32(l4 + 16, 0); /* checksum, urgent pointer */
		memset(l4 + 20, 1, hl - 20);
		if (hl > 20)
			l4[hl - 1] = 0;
		csum_off = 16;
		break;
	case IPPROTO_UDP:
		pb_put16(l4, s->sport);
		pb_put16(l4 + 2, s->dport);
		pb_put16(l4 + 4, (uint16_t)l4_len);
		pb_put16(l4 + 6, 0);
		csum_off = 6;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		l4[0] = s->icmp_type;
		l4[1] = s->icmp_code;
		pb_put16(l4 + 2, 0);
		pb_put16(l4 + 4, s->icmp_id);
		pb_put16(l4 + 6, s->icmp_seq);
		csum_off = 2;
		break;
	default:
		return;
	}
	if (s->proto != IPPROTO_ICMP) {
		/* pseudo-header: RFC 9293 section 3.1 / RFC 8200 section 8.1 */
		uint32_t alen = v6 ? 16 : 4;

		sum = pb_sum(s->src.b, alen, 0);
		sum = pb_sum(s->dst.b, alen, sum);
		sum += s->proto + (l4_len >> 16) + (l4_len & 0xffff);
	}
	sum = pb_sum(l4, l4_len, sum);
	uint16_t c = pb_fin(sum);
	if (s->proto == IPPROTO_UDP) {
		if (c == 0)
			c = 0xffff;
		if (s->udp_no_csum && !v6)
			c = 0;
	}
	if (s->bad_csum)
		c ^= 0x5a5a;
	pb_put16(l4 + csum_off, c);
}

/* Set the IPv4 header checksum of the header at ip. */
static inline void pb_ip4_csum(uint8_t *ip)
{
	uint32_t hl = (ip[0] & 0x0fu) * 4;

	pb_put16(ip + 10, 0);
	pb_put16(ip + 10, pb_fin(pb_sum(ip, hl, 0)));
}

/* Build the frame s describes into buf. Returns its length, or 0 if it does not fit in cap or
 * s is inconsistent (bad option lengths, IPv6-only fields on IPv4 ...). */
static inline uint32_t pb_build(const struct pb_spec *s, uint8_t *buf, uint32_t cap)
{
	uint32_t l2 = pb_l2_len(s), len, l3_len = 0, hl = 0, l4_len = 0;
	uint16_t et;
	uint8_t *p;
	bool v6 = s->src.family == ADDR_V6;

	if (s->vlans > 2 || s->ip4_opts_len % 4 || s->ip4_opts_len > 40 || s->tcp_opts_len % 4 ||
	    s->tcp_opts_len > 40 || s->n_ext > PB_MAX_EXT)
		return 0;
	switch (s->kind) {
	case PB_IP:
		if (s->src.family != s->dst.family || (s->src.family != ADDR_V4 && !v6))
			return 0;
		if (!v6 && s->n_ext)
			return 0;
		l4_len = pb_l4_hdr_len(s) + s->payload_len;
		hl = v6 ? 40 : 20u + s->ip4_opts_len;
		for (unsigned i = 0; i < s->n_ext; i++)
			hl += pb_ext_len(&s->ext[i]);
		l3_len = hl + l4_len;
		if ((v6 ? l3_len - 40 : l3_len) > 0xffff)
			return 0;
		et = s->ethertype ? s->ethertype : v6 ? 0x86dd : 0x0800;
		break;
	case PB_ARP:
		if (s->src.family != ADDR_V4 || s->dst.family != ADDR_V4)
			return 0;
		l3_len = 28;
		et = 0x0806;
		break;
	case PB_RAW:
		l3_len = s->payload_len;
		et = s->ethertype;
		break;
	default:
		return 0;
	}
	len = l2 + l3_len;
	if (len > cap || s->min_len > cap)
		return 0;

	memcpy(buf, s->dst_mac, 6);
	memcpy(buf + 6, s->src_mac, 6);
	p = buf + 12;
	if (s->vlans == 2) {
		pb_put16(p, 0x88a8);
		pb_put16(p + 2, s->svlan_tci);
		p += 4;
	}
	if (s->vlans >= 1) {
		pb_put16(p, 0x8100);
		pb_put16(p + 2, s->vlan_tci);
		p += 4;
	}
	pb_put16(p, et);
	p += 2;

	if (s->kind == PB_RAW) {
		if (s->payload)
			memcpy(p, s->payload, s->payload_len);
		else
			memset(p, 0xab, s->payload_len);
	} else if (s->kind == PB_ARP) {
		pb_put16(p, 1);
		pb_put16(p + 2, 0x0800);
		p[4] = 6;
		p[5] = 4;
		pb_put16(p + 6, s->arp_op);
		memcpy(p + 8, s->src_mac, 6);
		memcpy(p + 14, s->src.b, 4);
		memcpy(p + 18, s->arp_tha, 6);
		memcpy(p + 24, s->dst.b, 4);
	} else {
		uint8_t *ip = p, *l4 = p + hl;
		uint8_t *nh;
		uint32_t pl = pb_l4_hdr_len(s);

		if (s->payload)
			memcpy(l4 + pl, s->payload, s->payload_len);
		else
			for (uint32_t i = 0; i < s->payload_len; i++)
				l4[pl + i] = (uint8_t)(i * 7 + 3);
		if (v6) {
			uint32_t w =
			    0x60000000u | (uint32_t)s->tos << 20 | (s->flow_label & 0xfffff);
			uint8_t *e = ip + 40;

			pb_put32(ip, w);
			pb_put16(ip + 4, (uint16_t)(l3_len - 40));
			ip[7] = s->ttl;
			memcpy(ip + 8, s->src.b, 16);
			memcpy(ip + 24, s->dst.b, 16);
			nh = ip + 6;
			for (unsigned i = 0; i < s->n_ext; i++) {
				uint32_t el = pb_ext_len(&s->ext[i]);

				*nh = s->ext[i].type;
				memset(e, 0, el);
				nh = e;
				if (s->ext[i].type == 44) {
					pb_put32(e + 4, 0x01020304); /* atomic: offset 0, M 0 */
				} else {
					e[1] = s->ext[i].len;
					/* options: one PadN over the rest (RFC 8200
					 * section 4.2); routing: type 253, for
					 * experiments (RFC 4727) */
					if (s->ext[i].type == 0 || s->ext[i].type == 60) {
						e[2] = 1;
						e[3] = (uint8_t)(el - 4);
					} else if (s->ext[i].type == 43) {
						e[2] = 253;
					}
				}
				e += el;
			}
			*nh = s->proto;
		} else {
			ip[0] = (uint8_t)(0x40 | hl / 4);
			ip[1] = s->tos;
			pb_put16(ip + 2, (uint16_t)l3_len);
			pb_put16(ip + 4, s->ip_id);
			pb_put16(ip + 6, s->df ? 0x4000 : 0);
			ip[8] = s->ttl;
			ip[9] = s->proto;
			memcpy(ip + 12, s->src.b, 4);
			memcpy(ip + 16, s->dst.b, 4);
			memset(ip + 20, 1, s->ip4_opts_len);
			if (s->ip4_opts_len)
				ip[hl - 1] = 0;
			pb_ip4_csum(ip);
		}
		pb_l4(s, l4, l4_len);
	}
	if (s->min_len > len) {
		memset(buf + len, 0, s->min_len - len);
		len = s->min_len;
	}
	return len;
}

/* Length of the L2 header (tags included) of a frame, or 0 if it is too short. */
static inline uint32_t pb_frame_l2_len(const uint8_t *f, uint32_t len)
{
	uint32_t l2 = 14;

	while (l2 <= len && (pb_get16(f + l2 - 2) == 0x8100 || pb_get16(f + l2 - 2) == 0x88a8))
		l2 += 4;
	return l2 <= len ? l2 : 0;
}

/*
 * Cut one fragment out of frame (len bytes, as pb_build() makes them, not
 * itself a fragment): bytes [off, off + n) of the fragmentable part (off a
 * multiple of 8), with the More Fragments flag = more. IPv4 keeps the
 * identification and clears DF; IPv6 gets a fragment header with
 * identification id after the IPv6 header and any hop-by-hop, destination
 * options and routing headers. off 0, n = everything and more = false makes
 * an IPv6 atomic fragment. Returns the fragment's length or 0 on bad input.
 */
static inline uint32_t pb_fragment(const uint8_t *frame, uint32_t len, uint32_t off, uint32_t n,
				   bool more, uint32_t id, uint8_t *out, uint32_t cap)
{
	uint32_t l2 = pb_frame_l2_len(frame, len);
	const uint8_t *ip = frame + l2;

	if (l2 == 0 || off % 8)
		return 0;
	if (pb_get16(frame + l2 - 2) == 0x0800) {
		uint32_t hl = (ip[0] & 0x0fu) * 4, tot = pb_get16(ip + 2);

		if (l2 + tot > len || off + n > tot - hl || l2 + hl + n > cap)
			return 0;
		memcpy(out, frame, l2 + hl);
		pb_put16(out + l2 + 2, (uint16_t)(hl + n));
		pb_put16(out + l2 + 6, (uint16_t)((more ? 0x2000 : 0) | off / 8));
		pb_ip4_csum(out + l2);
		memcpy(out + l2 + hl, ip + hl + off, n);
		return l2 + hl + n;
	}
	if (pb_get16(frame + l2 - 2) == 0x86dd) {
		uint32_t tot = 40u + pb_get16(ip + 4), uf = 40, nh_at = 6;
		uint8_t *fh;

		if (l2 + tot > len)
			return 0;
		while (uf + 2 <= tot && (ip[nh_at] == 0 || ip[nh_at] == 43 || ip[nh_at] == 60)) {
			nh_at = uf;
			uf += (ip[uf + 1] + 1u) * 8;
		}
		if (uf > tot || off + n > tot - uf || l2 + uf + 8 + n > cap)
			return 0;
		memcpy(out, frame, l2 + uf);
		fh = out + l2 + uf;
		fh[0] = ip[nh_at];
		fh[1] = 0;
		pb_put16(fh + 2, (uint16_t)(off | (more ? 1 : 0)));
		pb_put32(fh + 4, id);
		out[l2 + nh_at] = 44;
		pb_put16(out + l2 + 4, (uint16_t)(uf - 40 + 8 + n));
		memcpy(fh + 8, ip + uf + off, n);
		return l2 + uf + 8 + n;
	}
	return 0;
}

#endif
