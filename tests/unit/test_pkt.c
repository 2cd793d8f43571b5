/* Unit tests of dataplane/pkt (parser), using the frames of tests/unit/pktbuild.h. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataplane/pkt.h"
#include "tests/unit/pktbuild.h"

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* splitmix64: deterministic, seeded per test */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint32_t n)
{
	return (uint32_t)(rng() % n);
}

/* Parse an exact-size heap copy so that ASan reports any read past the end. */
static int parse_copy(const uint8_t *f, uint32_t len, struct pkt_info *pi)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	assert_non_null(c);
	memcpy(c, f, len);
	rc = pkt_parse(c, len, pi);
	free(c);
	return rc;
}

/* Parse an exact-size copy, and when that works the packet an ICMP error quotes. */
static int parse_inner_copy(const uint8_t *f, uint32_t len, struct pkt_info *pi,
			    struct pkt_info *inner, int *inner_rc)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	assert_non_null(c);
	memcpy(c, f, len);
	rc = pkt_parse(c, len, pi);
	*inner_rc = rc ? rc : pkt_parse_icmp_inner(c, pi, inner);
	free(c);
	return rc;
}

static uint32_t build(const struct pb_spec *s, uint8_t *f)
{
	uint32_t n = pb_build(s, f, PB_MAX_FRAME);

	assert_true(n > 0);
	return n;
}

static void assert_addr(const struct addr *a, const char *text)
{
	struct addr b = pb_addr(text);

	assert_true(addr_eq(a, &b));
}

static void assert_pi_eq(const struct pkt_info *a, const struct pkt_info *b)
{
	assert_true(addr_eq(&a->src, &b->src));
	assert_true(addr_eq(&a->dst, &b->dst));
	assert_int_equal(a->l3_len, b->l3_len);
	assert_int_equal(a->l4_len, b->l4_len);
	assert_int_equal(a->l3_off, b->l3_off);
	assert_int_equal(a->l4_off, b->l4_off);
	assert_int_equal(a->ethertype, b->ethertype);
	assert_int_equal(a->vlan_tci, b->vlan_tci);
	assert_int_equal(a->svlan_tci, b->svlan_tci);
	assert_int_equal(a->sport, b->sport);
	assert_int_equal(a->dport, b->dport);
	assert_int_equal(a->icmp_id, b->icmp_id);
	assert_int_equal(a->arp_op, b->arp_op);
	assert_int_equal(a->vlans, b->vlans);
	assert_int_equal(a->l3, b->l3);
	assert_int_equal(a->l4_proto, b->l4_proto);
	assert_int_equal(a->l4_hlen, b->l4_hlen);
	assert_int_equal(a->frag, b->frag);
	assert_int_equal(a->ttl, b->ttl);
	assert_int_equal(a->tcp_flags, b->tcp_flags);
	assert_int_equal(a->icmp_type, b->icmp_type);
	assert_int_equal(a->icmp_code, b->icmp_code);
	assert_memory_equal(a->arp_sha, b->arp_sha, 6);
	assert_memory_equal(a->arp_tha, b->arp_tha, 6);
}

static void test_ipv4_tcp(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.payload_len = 10;
	s.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
	s.ttl = 17;
	n = build(&s, f);
	assert_int_equal(n, 14 + 20 + 20 + 10);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l3, PKT_L3_IPV4);
	assert_int_equal(pi.ethertype, PKT_ETHERTYPE_IPV4);
	assert_int_equal(pi.vlans, 0);
	assert_int_equal(pi.l3_off, 14);
	assert_int_equal(pi.l3_len, 50);
	assert_int_equal(pi.l4_off, 34);
	assert_int_equal(pi.l4_len, 30);
	assert_int_equal(pi.l4_proto, IPPROTO_TCP);
	assert_int_equal(pi.l4_hlen, 20);
	assert_int_equal(pi.sport, 40000);
	assert_int_equal(pi.dport, 80);
	assert_int_equal(pi.tcp_flags, PKT_TCP_SYN | PKT_TCP_ACK);
	assert_int_equal(pi.ttl, 17);
	assert_int_equal(pi.frag, PKT_FRAG_NONE);
	assert_addr(&pi.src, "192.0.2.1");
	assert_addr(&pi.dst, "198.51.100.1");
	assert_int_equal(pi.icmp_type, 0);
	assert_int_equal(pi.arp_op, 0);
	assert_true(sizeof(struct pkt_info) <= 128);
}

static void test_ipv4_udp_and_options(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_UDP;
	s.sport = 53;
	s.dport = 65535;
	s.ip4_opts_len = 12;
	s.payload_len = 3;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_off, 14 + 32);
	assert_int_equal(pi.l3_len, 32 + 8 + 3);
	assert_int_equal(pi.l4_len, 11);
	assert_int_equal(pi.l4_proto, IPPROTO_UDP);
	assert_int_equal(pi.l4_hlen, 8);
	assert_int_equal(pi.sport, 53);
	assert_int_equal(pi.dport, 65535);

	/* maximal IPv4 options and TCP options */
	pb_init(&s, ADDR_V4);
	s.ip4_opts_len = 40;
	s.tcp_opts_len = 40;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_off, 14 + 60);
	assert_int_equal(pi.l4_hlen, 60);
	assert_int_equal(pi.l4_len, 60);
}

static void test_icmp(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_ICMP;
	s.icmp_type = 8;
	s.icmp_id = 0xbeef;
	s.icmp_seq = 7;
	s.payload_len = 56;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_proto, IPPROTO_ICMP);
	assert_int_equal(pi.icmp_type, 8);
	assert_int_equal(pi.icmp_code, 0);
	assert_int_equal(pi.icmp_id, 0xbeef);
	assert_int_equal(pi.sport, 0);
	assert_int_equal(pi.dport, 0);
	assert_int_equal(pi.l4_hlen, 8);

	/* not an echo: no identifier */
	s.icmp_type = 3;
	s.icmp_code = 4;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.icmp_type, 3);
	assert_int_equal(pi.icmp_code, 4);
	assert_int_equal(pi.icmp_id, 0);

	pb_init(&s, ADDR_V6);
	s.proto = IPPROTO_ICMPV6;
	s.icmp_type = 129;
	s.icmp_id = 0x0102;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_proto, IPPROTO_ICMPV6);
	assert_int_equal(pi.icmp_type, 129);
	assert_int_equal(pi.icmp_id, 0x0102);

	/* packet too big: type 2 carries the MTU where echo has its id */
	s.icmp_type = 2;
	s.icmp_id = 0;
	s.icmp_seq = 1280;
	s.payload_len = 48;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.icmp_type, 2);
	assert_int_equal(pi.icmp_id, 0);

	/* ICMPv4 inside IPv6 is not ICMPv6: left unparsed */
	s.proto = IPPROTO_ICMP;
	s.icmp_type = 8;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_proto, IPPROTO_ICMP);
	assert_int_equal(pi.icmp_type, 0);
	assert_int_equal(pi.l4_hlen, 0);

	/* short ICMP */
	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_ICMP;
	n = build(&s, f);
	f[14 + 3] = 20 + 7;
	assert_int_equal(parse_copy(f, n - 1, &pi), PKT_ERR_L4_TRUNC);
}

static void test_ipv6(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V6);
	s.payload_len = 100;
	s.ttl = 3;
	s.tcp_flags = PKT_TCP_FIN | PKT_TCP_ACK;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l3, PKT_L3_IPV6);
	assert_int_equal(pi.ethertype, PKT_ETHERTYPE_IPV6);
	assert_int_equal(pi.l3_off, 14);
	assert_int_equal(pi.l3_len, 40 + 20 + 100);
	assert_int_equal(pi.l4_off, 54);
	assert_int_equal(pi.l4_len, 120);
	assert_int_equal(pi.ttl, 3);
	assert_int_equal(pi.tcp_flags, PKT_TCP_FIN | PKT_TCP_ACK);
	assert_addr(&pi.src, "2001:db8::1");
	assert_addr(&pi.dst, "2001:db8:1::1");

	s.proto = IPPROTO_UDP;
	s.sport = 1;
	s.dport = 2;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_proto, IPPROTO_UDP);
	assert_int_equal(pi.sport, 1);
	assert_int_equal(pi.dport, 2);
	assert_int_equal(pi.l4_len, 108);
}

static void test_ipv6_ext_headers(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V6);
	s.proto = IPPROTO_UDP;
	s.n_ext = 3;
	s.ext[0] = (struct pb_ext){0, 0};
	s.ext[1] = (struct pb_ext){43, 1};
	s.ext[2] = (struct pb_ext){60, 2};
	s.payload_len = 5;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_off, 14 + 40 + 8 + 16 + 24);
	assert_int_equal(pi.l4_proto, IPPROTO_UDP);
	assert_int_equal(pi.l4_len, 13);
	assert_int_equal(pi.sport, 40000);
	assert_int_equal(pi.frag, PKT_FRAG_NONE);

	/* PKT_MAX_EXT_HDRS is accepted, one more is not */
	pb_init(&s, ADDR_V6);
	s.n_ext = PKT_MAX_EXT_HDRS;
	for (unsigned i = 0; i < s.n_ext; i++)
		s.ext[i] = (struct pb_ext){i == 0 ? 0 : 60, 0};
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_off, 14 + 40 + 8 * PKT_MAX_EXT_HDRS);
	assert_int_equal(pi.sport, 40000);
	s.ext[s.n_ext++] = (struct pb_ext){60, 0};
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_EXT_TOO_MANY);

	/* hop-by-hop anywhere but first */
	pb_init(&s, ADDR_V6);
	s.n_ext = 2;
	s.ext[0] = (struct pb_ext){60, 0};
	s.ext[1] = (struct pb_ext){0, 0};
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_IPV6_BAD);

	/* an atomic fragment (RFC 6946) is a whole packet */
	pb_init(&s, ADDR_V6);
	s.n_ext = 1;
	s.ext[0] = (struct pb_ext){44, 0};
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_NONE);
	assert_int_equal(pi.l4_off, 14 + 48);
	assert_int_equal(pi.sport, 40000);

	/* two fragment headers */
	s.n_ext = 2;
	s.ext[1] = (struct pb_ext){44, 0};
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_IPV6_BAD);

	/* an extension header running past the payload length */
	pb_init(&s, ADDR_V6);
	s.proto = 59; /* no next header */
	s.n_ext = 1;
	s.ext[0] = (struct pb_ext){60, 1};
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_proto, 59);
	assert_int_equal(pi.l4_len, 0);
	f[14 + 40 + 1] = 2;
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_EXT_TRUNC);
	/* ... even when the frame holds the bytes: the IPv6 payload length bounds it */
	s.min_len = n + 16;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	f[14 + 40 + 1] = 2;
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_EXT_TRUNC);
	f[14 + 40 + 1] = 0; /* 8 bytes, 8 left over: no next header, not L4 */
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_len, 8);
	/* a fragment header that does not fit */
	f[14 + 6] = 44;
	pb_put16(f + 14 + 4, 7);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_EXT_TRUNC);
	/* and a regular one that cannot even hold its two first bytes */
	f[14 + 6] = 60;
	pb_put16(f + 14 + 4, 1);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_EXT_TRUNC);

	/* an unknown upper layer (ESP) ends the walk */
	pb_init(&s, ADDR_V6);
	s.proto = 50;
	s.payload_len = 30;
	s.n_ext = 1;
	s.ext[0] = (struct pb_ext){0, 0};
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_proto, 50);
	assert_int_equal(pi.l4_off, 14 + 48);
	assert_int_equal(pi.l4_len, 30);
	assert_int_equal(pi.sport, 0);
}

static void test_vlan(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.vlans = 1;
	s.vlan_tci = 0x2064;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.vlans, 1);
	assert_int_equal(pi.vlan_tci, 0x2064);
	assert_int_equal(pi.l3_off, 18);
	assert_int_equal(pi.l4_off, 38);
	assert_int_equal(pi.ethertype, PKT_ETHERTYPE_IPV4);
	assert_int_equal(pi.sport, 40000);

	pb_init(&s, ADDR_V6);
	s.vlans = 2;
	s.vlan_tci = 5;
	s.svlan_tci = 0xf00;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.vlans, 2);
	assert_int_equal(pi.vlan_tci, 5);
	assert_int_equal(pi.svlan_tci, 0xf00);
	assert_int_equal(pi.l3_off, 22);
	assert_int_equal(pi.l3, PKT_L3_IPV6);
	assert_int_equal(pi.dport, 80);

	/* 802.1ad without an inner 802.1Q */
	pb_put16(f + 16, PKT_ETHERTYPE_IPV6);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_VLAN_BAD);
	/* two 802.1Q tags */
	pb_put16(f + 12, PKT_ETHERTYPE_VLAN);
	pb_put16(f + 16, PKT_ETHERTYPE_VLAN);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_VLAN_BAD);
	/* 802.1Q then 802.1ad */
	pb_put16(f + 16, PKT_ETHERTYPE_QINQ);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_VLAN_BAD);
	/* tag cut short */
	assert_int_equal(parse_copy(f, 17, &pi), PKT_ERR_VLAN_BAD);
	assert_int_equal(parse_copy(f, 13, &pi), PKT_ERR_L2_TRUNC);
}

static void test_arp(void **state)
{
	static const uint8_t tha[6] = {0xa, 0xb, 0xc, 0xd, 0xe, 0xf};
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.kind = PB_ARP;
	s.arp_op = PKT_ARP_REPLY;
	memcpy(s.arp_tha, tha, 6);
	s.min_len = 60;
	n = build(&s, f);
	assert_int_equal(n, 60);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l3, PKT_L3_ARP);
	assert_int_equal(pi.ethertype, PKT_ETHERTYPE_ARP);
	assert_int_equal(pi.l3_off, 14);
	assert_int_equal(pi.l3_len, 28);
	assert_int_equal(pi.arp_op, PKT_ARP_REPLY);
	assert_memory_equal(pi.arp_sha, s.src_mac, 6);
	assert_memory_equal(pi.arp_tha, tha, 6);
	assert_addr(&pi.src, "192.0.2.1");
	assert_addr(&pi.dst, "198.51.100.1");
	assert_int_equal(pi.l4_off, 0);

	s.arp_op = 3; /* RARP request */
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_ARP_BAD);
	s.arp_op = PKT_ARP_REQUEST;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.arp_op, PKT_ARP_REQUEST);
	f[14 + 5] = 16; /* protocol address length */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_ARP_BAD);
	f[14 + 5] = 4;
	f[14 + 1] = 6; /* hardware type 6 (IEEE 802) */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_ARP_BAD);
	assert_int_equal(parse_copy(f, 14 + 27, &pi), PKT_ERR_ARP_TRUNC);
}

static void test_fragments_v4(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME], g[PB_MAX_FRAME];
	uint32_t n, m;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_UDP;
	s.payload_len = 100;
	s.df = true;
	n = build(&s, f);

	m = pb_fragment(f, n, 0, 64, true, 0, g, sizeof(g));
	assert_int_equal(m, 14 + 20 + 64);
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_FIRST);
	assert_int_equal(pi.l4_proto, IPPROTO_UDP);
	assert_int_equal(pi.sport, 40000);
	assert_int_equal(pi.dport, 80);
	assert_int_equal(pi.l4_len, 64);

	m = pb_fragment(f, n, 64, 44, false, 0, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_LATER);
	assert_int_equal(pi.l4_proto, IPPROTO_UDP);
	assert_int_equal(pi.l4_off, 34);
	assert_int_equal(pi.l4_len, 44);
	assert_int_equal(pi.sport, 0);
	assert_int_equal(pi.l4_hlen, 0);
	assert_addr(&pi.src, "192.0.2.1");

	/* a middle fragment (MF and an offset) */
	m = pb_fragment(f, n, 8, 16, true, 0, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_LATER);

	/* the later fragment need not hold anything that looks like L4 */
	m = pb_fragment(f, n, 104, 4, false, 0, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_LATER);
	assert_int_equal(pi.l4_len, 4);

	/* a tiny first fragment (RFC 1858): refused */
	s.proto = IPPROTO_TCP;
	n = build(&s, f);
	m = pb_fragment(f, n, 0, 16, true, 0, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), PKT_ERR_L4_TRUNC);
	m = pb_fragment(f, n, 0, 24, true, 0, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_FIRST);
	assert_int_equal(pi.dport, 80);
}

static void test_fragments_v6(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME], g[PB_MAX_FRAME];
	uint32_t n, m;

	(void)state;
	pb_init(&s, ADDR_V6);
	s.proto = IPPROTO_TCP;
	s.payload_len = 200;
	s.n_ext = 1;
	s.ext[0] = (struct pb_ext){0, 0};
	n = build(&s, f);

	m = pb_fragment(f, n, 0, 96, true, 77, g, sizeof(g));
	assert_int_equal(m, 14 + 40 + 8 + 8 + 96);
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_FIRST);
	assert_int_equal(pi.l4_proto, IPPROTO_TCP);
	assert_int_equal(pi.l4_off, 14 + 40 + 8 + 8);
	assert_int_equal(pi.l4_len, 96);
	assert_int_equal(pi.sport, 40000);

	m = pb_fragment(f, n, 96, 124, false, 77, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_LATER);
	assert_int_equal(pi.l4_proto, IPPROTO_TCP);
	assert_int_equal(pi.l4_off, 14 + 40 + 8 + 8);
	assert_int_equal(pi.l4_len, 124);
	assert_int_equal(pi.sport, 0);

	/* atomic fragment made by the cutter */
	m = pb_fragment(f, n, 0, 220, false, 1, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_NONE);
	assert_int_equal(pi.sport, 40000);

	/* first fragment cut inside the TCP header */
	m = pb_fragment(f, n, 0, 16, true, 1, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), PKT_ERR_L4_TRUNC);

	/* a first fragment may carry a UDP length larger than itself */
	s.proto = IPPROTO_UDP;
	n = build(&s, f);
	m = pb_fragment(f, n, 0, 16, true, 1, g, sizeof(g));
	assert_int_equal(parse_copy(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_FIRST);
	assert_int_equal(pi.dport, 80);
}

static void test_padding_ignored(void **state)
{
	struct pb_spec s;
	struct pkt_info pi, pj;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_UDP;
	s.payload_len = 2;
	s.min_len = 60;
	n = build(&s, f);
	assert_int_equal(n, 60);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l3_len, 30);
	assert_int_equal(pi.l4_len, 10);
	/* the padding is not part of anything: without it the result is the same */
	assert_int_equal(parse_copy(f, 44, &pj), 0);
	assert_pi_eq(&pi, &pj);
	/* but one byte less is a truncated packet */
	assert_int_equal(parse_copy(f, 43, &pj), PKT_ERR_L3_TRUNC);

	/* IPv6 likewise, with a trailing FCS-like tail */
	pb_init(&s, ADDR_V6);
	s.min_len = 14 + 40 + 20 + 4;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l3_len, 60);
	assert_int_equal(pi.l4_len, 20);
}

static void test_errors(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	memset(f, 0, sizeof(f));
	assert_int_equal(parse_copy(f, 0, &pi), PKT_ERR_L2_TRUNC);

	pb_init(&s, ADDR_V4);
	s.payload_len = 8;
	n = build(&s, f);
	f[14] = 0x65; /* version 6 in an IPv4 ethertype */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_IPV4_BAD);
	f[14] = 0x44; /* IHL 4 */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_IPV4_BAD);
	f[14] = 0x45;
	pb_put16(f + 16, 19); /* total length below the header */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_IPV4_BAD);
	pb_put16(f + 16, (uint16_t)(n - 14 + 1)); /* beyond the frame */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_L3_TRUNC);
	f[14] = 0x4f; /* IHL 15 > total length 48 */
	pb_put16(f + 16, 48);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_IPV4_BAD);
	f[14] = 0x45;
	f[34 + 12] = 0x40; /* TCP data offset 4 */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_TCP_BAD_DOFF);
	f[34 + 12] = 0x80; /* 32 bytes, 28 present */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_L4_TRUNC);
	f[34 + 12] = 0x70; /* exactly the 28 present */
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_hlen, 28);

	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_UDP;
	s.payload_len = 4;
	n = build(&s, f);
	pb_put16(f + 34 + 4, 7);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_UDP_BAD_LEN);
	pb_put16(f + 34 + 4, 13);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_UDP_BAD_LEN);
	pb_put16(f + 34 + 4, 10); /* shorter than the IP payload: allowed */
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_len, 12);

	pb_init(&s, ADDR_V6);
	n = build(&s, f);
	f[14] = 0x40;
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_IPV6_BAD);
	f[14] = 0x60;
	pb_put16(f + 18, (uint16_t)(n - 54 + 1));
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_L3_TRUNC);
	pb_put16(f + 18, 19); /* TCP cut by the payload length */
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_L4_TRUNC);
	pb_put16(f + 18, 0);
	assert_int_equal(parse_copy(f, n, &pi), PKT_ERR_L4_TRUNC);
	assert_int_equal(parse_copy(f, 14 + 39, &pi), PKT_ERR_L3_TRUNC);
}

/* An ICMP error from a router, quoting qlen bytes of the IP packet at q + 14 (an untagged frame).
 */
static uint32_t icmp_error(uint8_t *f, const uint8_t *q, uint32_t qlen, int fam, uint8_t type,
			   uint8_t code, uint32_t min_len)
{
	struct pb_spec s;

	pb_init(&s, fam);
	s.proto = fam == ADDR_V4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	s.src = pb_addr(fam == ADDR_V4 ? "192.0.2.254" : "2001:db8::fe");
	s.dst = pb_addr(fam == ADDR_V4 ? "203.0.113.10" : "2001:db8:5::10");
	s.icmp_type = type;
	s.icmp_code = code;
	s.icmp_seq = 1400; /* the next-hop MTU for "fragmentation needed" / "packet too big" */
	s.payload = q + 14;
	s.payload_len = qlen;
	s.min_len = min_len;
	return build(&s, f);
}

static void test_icmp_inner(void **state)
{
	struct pb_spec s;
	struct pkt_info pi, in;
	uint8_t q[PB_MAX_FRAME], f[PB_MAX_FRAME];
	uint32_t n, qn;
	int irc;

	(void)state;
	/* the VIP's reply (backend -> client in dsr) was too big for a router */
	pb_init(&s, ADDR_V4);
	s.src = pb_addr("203.0.113.10");
	s.dst = pb_addr("198.51.100.7");
	s.sport = 443;
	s.dport = 5555;
	s.df = true;
	s.payload_len = 1000;
	qn = build(&s, q);
	n = icmp_error(f, q, 28, ADDR_V4, 3, 4, 0); /* RFC 792: header + 8 bytes */
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(pi.icmp_type, 3);
	assert_int_equal(irc, 0);
	assert_int_equal(in.l3, PKT_L3_IPV4);
	assert_int_equal(in.l3_off, 14 + 20 + 8);
	assert_int_equal(in.l3_len, 28);
	assert_int_equal(in.l4_off, 14 + 20 + 8 + 20);
	assert_int_equal(in.l4_len, 8);
	assert_int_equal(in.l4_proto, IPPROTO_TCP);
	assert_int_equal(in.sport, 443);
	assert_int_equal(in.dport, 5555);
	assert_int_equal(in.l4_hlen, 0);
	assert_int_equal(in.tcp_flags, 0);
	assert_int_equal(in.frag, PKT_FRAG_NONE);
	assert_addr(&in.src, "203.0.113.10");
	assert_addr(&in.dst, "198.51.100.7");
	assert_int_equal(in.ethertype, PKT_ETHERTYPE_IPV4);

	/* a longer quote; Ethernet padding after the outer packet is not quote */
	n = icmp_error(f, q, 548, ADDR_V4, 3, 4, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, 0);
	assert_int_equal(in.l3_len, 548);
	n = icmp_error(f, q, 20 + 4, ADDR_V4, 11, 0, 80);
	assert_int_equal(n, 80);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, 0);
	assert_int_equal(in.l3_len, 24);
	assert_int_equal(in.dport, 5555);

	/* quotes too short to identify the flow */
	n = icmp_error(f, q, 20 + 3, ADDR_V4, 3, 4, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, PKT_ERR_L4_TRUNC);
	n = icmp_error(f, q, 19, ADDR_V4, 3, 4, 60);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, PKT_ERR_L3_TRUNC);
	n = icmp_error(f, q, 0, ADDR_V4, 3, 4, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, PKT_ERR_L3_TRUNC);

	/* not errors */
	n = icmp_error(f, q, 28, ADDR_V4, 8, 0, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, PKT_ERR_NOT_ICMP_ERROR);
	assert_int_equal(parse_inner_copy(q, qn, &pi, &in, &irc), 0);
	assert_int_equal(irc, PKT_ERR_NOT_ICMP_ERROR);

	/* a quoted later fragment: no ports */
	{
		uint8_t g[PB_MAX_FRAME];
		uint32_t gn = pb_fragment(q, qn, 1000, 20, false, 0, g, sizeof(g));

		assert_true(gn > 0);
		n = icmp_error(f, g, gn - 14, ADDR_V4, 11, 1, 0);
		assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
		assert_int_equal(irc, 0);
		assert_int_equal(in.frag, PKT_FRAG_LATER);
		assert_int_equal(in.sport, 0);
	}

	/* a time exceeded quoting an echo request: the identifier */
	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_ICMP;
	s.icmp_id = 0x7777;
	s.payload_len = 32;
	qn = build(&s, q);
	n = icmp_error(f, q, 28, ADDR_V4, 11, 0, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, 0);
	assert_int_equal(in.l4_proto, IPPROTO_ICMP);
	assert_int_equal(in.icmp_type, 8);
	assert_int_equal(in.icmp_id, 0x7777);

	/* IPv6 packet too big, quoting a UDP datagram behind a hop-by-hop header */
	pb_init(&s, ADDR_V6);
	s.proto = IPPROTO_UDP;
	s.src = pb_addr("2001:db8:5::10");
	s.dst = pb_addr("2001:db8:9::7");
	s.sport = 4433;
	s.dport = 61000;
	s.n_ext = 1;
	s.ext[0] = (struct pb_ext){0, 0};
	s.payload_len = 1300;
	s.vlans = 1;
	s.vlan_tci = 12;
	qn = build(&s, q);
	/* q has one tag: q + 4 + 14 is its IP packet */
	n = icmp_error(f, q + 4, 1232, ADDR_V6, 2, 0, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, 0);
	assert_int_equal(pi.l3_len, 1280);
	assert_int_equal(in.l3, PKT_L3_IPV6);
	assert_int_equal(in.l3_off, 14 + 40 + 8);
	assert_int_equal(in.l3_len, 1232);
	assert_int_equal(in.l4_off, 14 + 40 + 8 + 48);
	assert_int_equal(in.l4_proto, IPPROTO_UDP);
	assert_int_equal(in.sport, 4433);
	assert_int_equal(in.dport, 61000);
	assert_addr(&in.src, "2001:db8:5::10");
	assert_addr(&in.dst, "2001:db8:9::7");
	/* a quote that stops inside the extension header */
	n = icmp_error(f, q + 4, 44, ADDR_V6, 2, 0, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, PKT_ERR_EXT_TRUNC);
	/* an IPv4 packet quoted in ICMPv6 */
	pb_init(&s, ADDR_V4);
	qn = build(&s, q);
	n = icmp_error(f, q, 40, ADDR_V6, 1, 3, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, PKT_ERR_IPV6_BAD);
	/* ICMPv6 informational messages are not errors */
	n = icmp_error(f, q, 28, ADDR_V6, 129, 0, 0);
	assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
	assert_int_equal(irc, PKT_ERR_NOT_ICMP_ERROR);

	/* every quote length: the flow is found exactly when its ports are quoted */
	for (int fam = ADDR_V4; fam <= ADDR_V6; fam += 2) {
		uint32_t need = fam == ADDR_V4 ? 28 + 4 : 40 + 8 + 4;

		pb_init(&s, fam);
		s.proto = IPPROTO_UDP;
		s.sport = 7;
		s.dport = 9;
		s.payload_len = 64;
		if (fam == ADDR_V6) {
			s.n_ext = 1;
			s.ext[0] = (struct pb_ext){60, 0};
		} else {
			s.ip4_opts_len = 8;
		}
		qn = build(&s, q);
		for (uint32_t ql = 0; ql <= qn - 14; ql++) {
			n = icmp_error(f, q, ql, fam, fam == ADDR_V4 ? 3 : 1, 0, 0);
			assert_int_equal(parse_inner_copy(f, n, &pi, &in, &irc), 0);
			if (ql < need) {
				assert_true(irc < 0);
				continue;
			}
			assert_int_equal(irc, 0);
			assert_int_equal(in.l3_len, ql);
			assert_int_equal(in.sport, 7);
			assert_int_equal(in.dport, 9);
		}
	}
}

static void test_other(void **state)
{
	static const uint8_t lldp[10] = {2, 7, 4, 0, 1, 2, 3, 4, 5, 0};
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.kind = PB_RAW;
	s.ethertype = 0x88cc;
	s.payload = lldp;
	s.payload_len = sizeof(lldp);
	s.vlans = 1;
	s.vlan_tci = 9;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l3, PKT_L3_OTHER);
	assert_int_equal(pi.ethertype, 0x88cc);
	assert_int_equal(pi.l3_off, 18);
	assert_int_equal(pi.vlan_tci, 9);
	assert_int_equal(pi.l3_len, 0);
	assert_int_equal(pi.src.family, ADDR_NONE);
	/* an 802.3 length field and nothing after the header */
	s.vlans = 0;
	s.ethertype = 0x002e;
	s.payload_len = 0;
	n = build(&s, f);
	assert_int_equal(n, 14);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l3, PKT_L3_OTHER);

	/* an IP protocol we do not parse: offsets only */
	pb_init(&s, ADDR_V4);
	s.proto = 47; /* GRE */
	s.payload_len = 24;
	n = build(&s, f);
	assert_int_equal(parse_copy(f, n, &pi), 0);
	assert_int_equal(pi.l4_proto, 47);
	assert_int_equal(pi.l4_off, 34);
	assert_int_equal(pi.l4_len, 24);
	assert_int_equal(pi.sport, 0);
	assert_int_equal(pi.l4_hlen, 0);
}

static void test_err_str(void **state)
{
	(void)state;
	assert_string_equal(pkt_err_str(0), "ok");
	assert_string_equal(pkt_err_str(-PKT_ERR_MAX - 1), "unknown packet error");
	assert_string_equal(pkt_err_str(1), "unknown packet error");
	for (int i = 1; i <= PKT_ERR_MAX; i++) {
		const char *a = pkt_err_str(-i);

		assert_non_null(a);
		assert_string_not_equal(a, "unknown packet error");
		for (int j = 1; j < i; j++)
			assert_string_not_equal(a, pkt_err_str(-j));
	}
	assert_string_equal(pkt_err_str(PKT_ERR_EXT_TOO_MANY), "too many IPv6 extension headers");
}

/* ---- a catalogue of frames shared by the truncation, mutation and corpus tests ---- */

struct sample {
	const char *name;
	int expect; /* pkt_parse result of the whole frame */
	uint32_t len;
	uint8_t f[256];
};

#define N_SAMPLES 40

static unsigned add(struct sample *v, unsigned n, const char *name, const struct pb_spec *s)
{
	assert_true(n < N_SAMPLES);
	v[n].name = name;
	v[n].len = pb_build(s, v[n].f, sizeof(v[n].f));
	assert_true(v[n].len > 0);
	v[n].expect = 0;
	return n + 1;
}

static unsigned add_frag(struct sample *v, unsigned n, const char *name, const struct pb_spec *s,
			 uint32_t off, uint32_t len, bool more)
{
	uint8_t f[256];
	uint32_t fl = pb_build(s, f, sizeof(f));

	assert_true(fl > 0);
	assert_true(n < N_SAMPLES);
	v[n].name = name;
	v[n].len = pb_fragment(f, fl, off, len, more, 0x0a0b0c0d, v[n].f, sizeof(v[n].f));
	assert_true(v[n].len > 0);
	v[n].expect = 0;
	return n + 1;
}

/* Returns how many samples it wrote into v (N_SAMPLES entries). */
static unsigned samples(struct sample *v)
{
	struct pb_spec s;
	unsigned n = 0, syn6;

	pb_init(&s, ADDR_V4);
	s.payload_len = 6;
	n = add(v, n, "v4-tcp-syn", &s);
	s.tcp_opts_len = 12;
	s.ip4_opts_len = 8;
	s.tcp_flags = PKT_TCP_ACK | PKT_TCP_PSH;
	n = add(v, n, "v4-tcp-options", &s);
	s.tcp_opts_len = 0;
	s.ip4_opts_len = 0;
	s.vlans = 1;
	s.vlan_tci = 100;
	n = add(v, n, "v4-tcp-vlan", &s);
	s.vlans = 2;
	s.svlan_tci = 200;
	n = add(v, n, "v4-tcp-qinq", &s);
	s.vlans = 0;
	s.payload_len = 0;
	s.min_len = 60;
	n = add(v, n, "v4-tcp-padded", &s);
	s.min_len = 0;
	s.proto = IPPROTO_UDP;
	s.payload_len = 12;
	n = add(v, n, "v4-udp", &s);
	s.udp_no_csum = true;
	n = add(v, n, "v4-udp-nocsum", &s);
	s.udp_no_csum = false;
	s.payload_len = 2;
	s.min_len = 60;
	n = add(v, n, "v4-udp-padded", &s);
	s.min_len = 0;
	s.proto = IPPROTO_ICMP;
	s.icmp_type = 8;
	s.icmp_id = 99;
	s.payload_len = 16;
	n = add(v, n, "v4-icmp-echo", &s);
	s.icmp_type = 3;
	s.icmp_code = 4;
	s.icmp_seq = 1400;
	n = add(v, n, "v4-icmp-fragneeded", &s);
	/* with a real quote: the first 28 bytes of the IP packet of sample 0 */
	s.payload = v[0].f + 14;
	s.payload_len = 28;
	n = add(v, n, "v4-icmp-fragneeded-quote", &s);
	s.payload = NULL;
	s.payload_len = 16;
	s.proto = 47;
	n = add(v, n, "v4-gre", &s);
	s.proto = IPPROTO_UDP;
	s.payload_len = 40;
	n = add_frag(v, n, "v4-udp-frag-first", &s, 0, 24, true);
	n = add_frag(v, n, "v4-udp-frag-later", &s, 24, 24, false);
	s.proto = IPPROTO_TCP;
	n = add_frag(v, n, "v4-tcp-frag-first", &s, 0, 24, true);

	pb_init(&s, ADDR_V6);
	s.payload_len = 6;
	syn6 = n;
	n = add(v, n, "v6-tcp-syn", &s);
	s.vlans = 1;
	n = add(v, n, "v6-tcp-vlan", &s);
	s.vlans = 0;
	s.proto = IPPROTO_UDP;
	n = add(v, n, "v6-udp", &s);
	s.n_ext = 3;
	s.ext[0] = (struct pb_ext){0, 0};
	s.ext[1] = (struct pb_ext){43, 1};
	s.ext[2] = (struct pb_ext){60, 0};
	n = add(v, n, "v6-udp-ext3", &s);
	s.n_ext = 1;
	s.ext[0] = (struct pb_ext){44, 0};
	n = add(v, n, "v6-udp-atomic", &s);
	s.n_ext = 1;
	s.ext[0] = (struct pb_ext){0, 0};
	s.payload_len = 40;
	n = add_frag(v, n, "v6-udp-frag-first", &s, 0, 24, true);
	n = add_frag(v, n, "v6-udp-frag-later", &s, 24, 24, false);
	s.proto = IPPROTO_TCP;
	s.n_ext = 0;
	n = add_frag(v, n, "v6-tcp-frag-first", &s, 0, 32, true);
	s.proto = IPPROTO_ICMPV6;
	s.icmp_type = 128;
	s.icmp_id = 4242;
	s.payload_len = 8;
	n = add(v, n, "v6-icmp-echo", &s);
	s.icmp_type = 2; /* packet too big, quoting "v6-tcp-syn" */
	s.icmp_seq = 1280;
	s.payload = v[syn6].f + 14;
	s.payload_len = 40 + 20 + 6;
	n = add(v, n, "v6-icmp-ptb-quote", &s);
	s.payload = NULL;
	s.icmp_seq = 0;
	s.icmp_type = 135; /* neighbour solicitation */
	s.icmp_id = 0;
	s.payload_len = 16;
	s.ttl = 255;
	n = add(v, n, "v6-icmp-ns", &s);
	s.proto = 59;
	s.payload_len = 0;
	n = add(v, n, "v6-nonext", &s);

	pb_init(&s, ADDR_V4);
	s.kind = PB_ARP;
	n = add(v, n, "arp-request", &s);
	s.arp_op = 2;
	s.min_len = 60;
	s.vlans = 1;
	n = add(v, n, "arp-reply-vlan", &s);
	s.kind = PB_RAW;
	s.ethertype = 0x88cc;
	s.payload_len = 12;
	s.min_len = 0;
	n = add(v, n, "lldp-other", &s);

	/* malformed ones, so that the fuzzer starts next to each error path */
	pb_init(&s, ADDR_V6);
	s.n_ext = 9;
	for (unsigned i = 0; i < 9; i++)
		s.ext[i] = (struct pb_ext){60, 0};
	n = add(v, n, "bad-v6-too-many-ext", &s);
	v[n - 1].expect = PKT_ERR_EXT_TOO_MANY;
	pb_init(&s, ADDR_V4);
	n = add(v, n, "bad-v4-tcp-doff", &s);
	v[n - 1].f[34 + 12] = 0x30;
	v[n - 1].expect = PKT_ERR_TCP_BAD_DOFF;
	n = add(v, n, "bad-v4-totlen", &s);
	v[n - 1].f[17] += 1;
	v[n - 1].expect = PKT_ERR_L3_TRUNC;
	s.proto = IPPROTO_UDP;
	n = add(v, n, "bad-v4-udplen", &s);
	v[n - 1].f[34 + 5] = 3;
	v[n - 1].expect = PKT_ERR_UDP_BAD_LEN;
	s.kind = PB_ARP;
	s.arp_op = 9;
	n = add(v, n, "bad-arp-op", &s);
	v[n - 1].expect = PKT_ERR_ARP_BAD;
	pb_init(&s, ADDR_V4);
	s.vlans = 1;
	n = add(v, n, "bad-vlan-double", &s);
	v[n - 1].f[16] = 0x81;
	v[n - 1].f[17] = 0x00;
	v[n - 1].expect = PKT_ERR_VLAN_BAD;
	return n;
}

static int is_padded(const struct sample *x, const struct pkt_info *pi)
{
	return pi->l3 != PKT_L3_OTHER && x->len > (uint32_t)pi->l3_off + pi->l3_len;
}

static void test_every_truncation(void **state)
{
	struct sample *v = calloc(N_SAMPLES, sizeof(*v));
	unsigned n;

	(void)state;
	assert_non_null(v);
	n = samples(v);
	assert_true(n >= 30);
	for (unsigned i = 0; i < n; i++) {
		struct pkt_info full, pi, full_in, in;
		int full_irc, irc;

		assert_int_equal(parse_inner_copy(v[i].f, v[i].len, &full, &full_in, &full_irc),
				 v[i].expect);
		if (v[i].expect)
			continue;
		for (uint32_t len = 0; len < v[i].len; len++) {
			int rc = parse_inner_copy(v[i].f, len, &pi, &in, &irc);

			if (rc == 0) {
				/* only cutting what no header claims may succeed, alike */
				assert_true(full.l3 == PKT_L3_OTHER || is_padded(&v[i], &full));
				assert_true(len >= (uint32_t)full.l3_off + full.l3_len);
				assert_pi_eq(&pi, &full);
				assert_int_equal(irc, full_irc);
				if (irc == 0)
					assert_pi_eq(&in, &full_in);
			} else {
				assert_true(rc < 0 && rc >= -PKT_ERR_MAX);
			}
		}
	}
	free(v);
}

/* Invariants every successful parse must satisfy, whatever the input. */
static void check_invariants(const struct pkt_info *pi, uint32_t len)
{
	assert_true(pi->l3_off >= PKT_ETH_HLEN && pi->l3_off <= len);
	assert_int_equal(pi->l3_off, PKT_ETH_HLEN + PKT_VLAN_HLEN * pi->vlans);
	switch (pi->l3) {
	case PKT_L3_IPV4:
	case PKT_L3_IPV6:
		assert_true((uint64_t)pi->l3_off + pi->l3_len <= len);
		assert_true(pi->l4_off >= pi->l3_off + (pi->l3 == PKT_L3_IPV4 ? 20 : 40));
		assert_int_equal((uint64_t)pi->l4_off + pi->l4_len,
				 (uint64_t)pi->l3_off + pi->l3_len);
		assert_true(pi->l4_hlen <= pi->l4_len);
		assert_int_equal(pi->src.family, pi->l3 == PKT_L3_IPV4 ? ADDR_V4 : ADDR_V6);
		if (pi->frag == PKT_FRAG_LATER)
			assert_true(pi->sport == 0 && pi->dport == 0 && pi->l4_hlen == 0);
		if (pi->l4_proto == IPPROTO_TCP && pi->frag != PKT_FRAG_LATER)
			assert_true(pi->l4_hlen >= 20);
		break;
	case PKT_L3_ARP:
		assert_true((uint32_t)pi->l3_off + 28 <= len);
		assert_true(pi->arp_op == 1 || pi->arp_op == 2);
		break;
	case PKT_L3_OTHER:
		break;
	default:
		fail_msg("l3 %u after success", pi->l3);
	}
}

/* What a successful pkt_parse_icmp_inner() promises about the quote. */
static void check_inner(const struct pkt_info *pi, const struct pkt_info *in)
{
	uint32_t end = (uint32_t)pi->l3_off + pi->l3_len;

	assert_true(in->l3 == PKT_L3_IPV4 || in->l3 == PKT_L3_IPV6);
	assert_int_equal(in->l3 == PKT_L3_IPV6, pi->l3 == PKT_L3_IPV6);
	assert_int_equal(in->l3_off, pi->l4_off + 8);
	assert_true((uint64_t)in->l3_off + in->l3_len <= end);
	assert_true(in->l4_off >= in->l3_off + (in->l3 == PKT_L3_IPV4 ? 20 : 40));
	assert_int_equal((uint64_t)in->l4_off + in->l4_len, (uint64_t)in->l3_off + in->l3_len);
	assert_int_equal(in->l4_hlen, 0);
	assert_int_equal(in->vlans, pi->vlans);
	if (in->frag == PKT_FRAG_LATER)
		assert_true(in->sport == 0 && in->dport == 0);
	else if (in->l4_proto == IPPROTO_TCP || in->l4_proto == IPPROTO_UDP)
		assert_true(in->l4_len >= 4);
}

static void test_random_mutations(void **state)
{
	struct sample *v = calloc(N_SAMPLES, sizeof(*v));
	uint8_t f[300];
	unsigned n, ok = 0, bad = 0, inner_ok = 0;

	(void)state;
	assert_non_null(v);
	n = samples(v);
	rng_state = 12345;
	for (unsigned it = 0; it < 40000; it++) {
		const struct sample *x = &v[rng_below(n)];
		uint32_t len = x->len;
		unsigned k = 1 + rng_below(4);
		struct pkt_info pi, in;
		int rc, irc;

		memcpy(f, x->f, len);
		for (unsigned j = 0; j < k; j++) {
			uint32_t at = rng_below(len);
			switch (rng_below(4)) {
			case 0:
				f[at] = (uint8_t)rng();
				break;
			case 1:
				f[at] ^= (uint8_t)(1u << rng_below(8));
				break;
			case 2:
				f[at] = rng_below(2) ? 0xff : 0;
				break;
			default:
				/* header fields are where it gets interesting */
				at = 12 + rng_below(len > 80 ? 68 : len - 12);
				f[at] = (uint8_t)rng();
			}
		}
		if (rng_below(4) == 0)
			len = rng_below(len + 1);
		rc = parse_inner_copy(f, len, &pi, &in, &irc);
		if (rc == 0) {
			check_invariants(&pi, len);
			ok++;
			if (irc == 0) {
				check_inner(&pi, &in);
				inner_ok++;
			} else {
				assert_true(irc < 0 && irc >= -PKT_ERR_MAX);
			}
		} else {
			assert_true(rc < 0 && rc >= -PKT_ERR_MAX);
			bad++;
		}
	}
	/* both outcomes must actually be exercised */
	assert_true(ok > 1000 && bad > 1000 && inner_ok > 100);
	free(v);
}

/*
 * pkt_parse_fast() must be pkt_parse() exactly: same result on every frame,
 * the same pkt_info when it parses, and pkt_fast_check() may only claim
 * frames that pkt_parse() accepts. Mutated samples (and their truncations)
 * cover both the inline path and the fallback; each parse runs on an
 * exact-size heap copy, so ASan sees any read past the frame.
 */
static void test_parse_fast_same(void **state)
{
	struct sample *v = calloc(N_SAMPLES, sizeof(*v));
	uint8_t f[300];
	unsigned n, fast4 = 0, fast6 = 0, fast_vlan = 0, fast_udp = 0, slow_ok = 0, bad = 0;

	(void)state;
	assert_non_null(v);
	n = samples(v);
	rng_state = 777;
	for (unsigned it = 0; it < 60000; it++) {
		const struct sample *x = &v[rng_below(n)];
		uint32_t len = x->len;
		struct pkt_info a, b, c;
		struct pkt_fast pf;
		uint8_t *buf;
		int ra, rb, fast;

		memcpy(f, x->f, len);
		/* a third unchanged, so that the inline path is well exercised */
		for (unsigned j = 0, k = rng_below(3) ? 1 + rng_below(3) : 0; j < k; j++) {
			uint32_t at = 12 + rng_below(len > 80 ? 68 : len - 12);
			f[at] = rng_below(2) ? (uint8_t)rng() : f[at] ^ (uint8_t)(1u << rng_below(8));
		}
		if (rng_below(5) == 0)
			len = rng_below(len + 1);
		buf = malloc(len ? len : 1);
		assert_non_null(buf);
		memcpy(buf, f, len);
		memset(&a, 0xa5, sizeof(a));
		memset(&b, 0x5a, sizeof(b));
		memset(&c, 0x33, sizeof(c));
		ra = pkt_parse(buf, len, &a);
		rb = pkt_parse_fast(buf, len, &b);
		fast = pkt_fast_check(buf, len, &pf);
		assert_int_equal(ra, rb);
		if (ra == 0)
			assert_pi_eq(&a, &b);
		if (fast) {
			assert_int_equal(ra, 0);
			pkt_fast_fill(buf, &pf, &c);
			assert_pi_eq(&a, &c);
			assert_int_equal(pf.l3_off, a.l3_off);
			assert_int_equal(pf.l4_off, a.l4_off);
			assert_int_equal(pf.l4_proto, a.l4_proto);
			assert_int_equal(pf.tcp_flags, a.tcp_flags);
			assert_int_equal(a.frag, PKT_FRAG_NONE);
			fast4 += a.l3 == PKT_L3_IPV4;
			fast6 += a.l3 == PKT_L3_IPV6;
			fast_vlan += a.vlans == 1;
			fast_udp += a.l4_proto == IPPROTO_UDP;
		} else if (ra == 0) {
			slow_ok++;
		} else {
			bad++;
		}
		free(buf);
	}
	/* every branch exercised: v4, v6, tagged, UDP inline; the fallback both ways */
	assert_true(fast4 > 1000 && fast6 > 1000 && fast_vlan > 200 && fast_udp > 500);
	assert_true(slow_ok > 1000 && bad > 1000);
	free(v);
}

/*
 * The fuzzer's seeds (tests/fuzz/corpus/pkt) are these samples. Every run
 * checks that each parses as its name says; with PKT_CORPUS_DIR set in the
 * environment the test also (re)writes them there, one file per sample.
 */
static void test_corpus_seeds(void **state)
{
	struct sample *v = calloc(N_SAMPLES, sizeof(*v));
	const char *dir = getenv("PKT_CORPUS_DIR");
	unsigned n;

	(void)state;
	assert_non_null(v);
	n = samples(v);
	for (unsigned i = 0; i < n; i++) {
		struct pkt_info pi;
		int rc = parse_copy(v[i].f, v[i].len, &pi);

		assert_int_equal(rc, v[i].expect);
		assert_true((strncmp(v[i].name, "bad-", 4) == 0) == (rc != 0));
		if (dir) {
			char path[512];
			FILE *fp;

			snprintf(path, sizeof(path), "%s/seed-%s", dir, v[i].name);
			fp = fopen(path, "wb");
			assert_non_null(fp);
			assert_int_equal(fwrite(v[i].f, 1, v[i].len, fp), v[i].len);
			assert_int_equal(fclose(fp), 0);
		}
	}
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4_tcp),
	    cmocka_unit_test(test_ipv4_udp_and_options),
	    cmocka_unit_test(test_icmp),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_ipv6_ext_headers),
	    cmocka_unit_test(test_vlan),
	    cmocka_unit_test(test_arp),
	    cmocka_unit_test(test_fragments_v4),
	    cmocka_unit_test(test_fragments_v6),
	    cmocka_unit_test(test_padding_ignored),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_icmp_inner),
	    cmocka_unit_test(test_other),
	    cmocka_unit_test(test_err_str),
	    cmocka_unit_test(test_every_truncation),
	    cmocka_unit_test(test_random_mutations),
	    cmocka_unit_test(test_parse_fast_same),
	    cmocka_unit_test(test_corpus_seeds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
