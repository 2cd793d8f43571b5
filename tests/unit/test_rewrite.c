/* Unit tests of dataplane/csum and dataplane/rewrite (nat, dsr, IP-in-IP). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataplane/csum.h"
#include "dataplane/pkt.h"
#include "dataplane/rewrite.h"
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

static void rng_fill(uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng();
}

static struct addr rng_addr(int family)
{
	struct addr a;
	uint8_t b[16];

	rng_fill(b, sizeof(b));
	if (family == ADDR_V4)
		addr_set_v4(&a, b);
	else
		addr_set_v6(&a, b);
	return a;
}

/* RFC 1071 the slow way: the reference for csum_partial. */
static uint16_t naive_fold(const uint8_t *p, uint32_t n)
{
	uint32_t s = 0;

	for (uint32_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* ---- checksums ---- */

static void test_csum_rfc1071_example(void **state)
{
	/* RFC 1071 section 3: these bytes sum to 0xddf2 */
	static const uint8_t b[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
	/* a well-known IPv4 header whose checksum is 0xb861 */
	uint8_t ip[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			  0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};

	(void)state;
	assert_int_equal(csum_fold16(csum_partial(b, 8, 0)), 0xddf2);
	assert_int_equal(csum_fold(csum_partial(b, 8, 0)), 0x220d);
	/* pieces: even first piece, odd last piece */
	assert_int_equal(csum_fold16(csum_partial(b + 4, 3, csum_partial(b, 4, 0))),
			 naive_fold(b, 7));
	assert_int_equal(csum_ipv4_hdr(ip), 0xb861);
	ip[10] = 0xb8;
	ip[11] = 0x61;
	assert_int_equal(csum_fold(csum_partial(ip, 20, 0)), 0);
	/* the stored value does not matter */
	ip[10] = 0x12;
	assert_int_equal(csum_ipv4_hdr(ip), 0xb861);
	assert_int_equal(csum_partial(b, 0, 0x1234), 0x1234);
}

static void test_csum_partial_vs_naive(void **state)
{
	uint8_t buf[600];

	(void)state;
	rng_state = 1;
	for (unsigned it = 0; it < 20000; it++) {
		uint32_t off = rng_below(8), len = rng_below(520), split = rng_below(len + 1) & ~1u;
		uint8_t *p = buf + off;
		uint32_t s;

		if (it % 4 == 0)
			memset(p, 0xff, len); /* carries everywhere */
		else
			rng_fill(p, len);
		assert_int_equal(csum_fold16(csum_partial(p, len, 0)), naive_fold(p, len));
		s = csum_partial(p, split, 0);
		s = csum_partial(p + split, len - split, s);
		assert_int_equal(csum_fold16(s), naive_fold(p, len));
		assert_true(csum_partial(p, len, 0xffffffffu) < (1u << 17) + 0xffff);
	}
}

/* The folds against the plain definition: add the halves until nothing carries. */
static uint64_t fold_by_loop(uint64_t v, unsigned bits)
{
	uint64_t mask = (1ull << bits) - 1;

	while (v >> bits)
		v = (v & mask) + (v >> bits);
	return v;
}

static void test_csum_folds(void **state)
{
	static const uint64_t edge[] = {0,	    1,		0xffff,	    0x10000,	 0x1ffff,
					0x1fffe,    0xfffeffff, 0xffff0001, 0xffffffff, 0x100000000ull,
					~0ull,	    ~0ull - 1,	1ull << 63, 0xffffffff00000001ull};

	(void)state;
	rng_state = 7;
	for (unsigned it = 0; it < 200000 + sizeof(edge) / sizeof(edge[0]); it++) {
		uint64_t v = it < sizeof(edge) / sizeof(edge[0])
				 ? edge[it]
				 : rng();
		if (it % 3 == 1)
			v >>= rng_below(64); /* small values too */
		uint64_t want32 = fold_by_loop(v, 32);
		assert_int_equal(csum_fold16((uint32_t)v), fold_by_loop((uint32_t)v, 16));
		assert_int_equal(csum_fold64(v), fold_by_loop(want32, 16));
	}
}

static void test_csum_incremental(void **state)
{
	uint8_t m[64];

	(void)state;
	rng_state = 2;
	for (unsigned it = 0; it < 20000; it++) {
		uint32_t at = 2 * rng_below(24); /* a field at an even offset */
		uint16_t before, after;
		uint8_t old[2], neu[2];
		const unsigned w = 2;

		rng_fill(m, sizeof(m));
		if (rng_below(8) == 0)
			memset(m + at, rng_below(2) ? 0xff : 0, w);
		before = csum_fold(csum_partial(m, sizeof(m), 0));
		memcpy(old, m + at, w);
		rng_fill(neu, w);
		if (rng_below(8) == 0)
			memset(neu, rng_below(2) ? 0xff : 0, w);
		if (rng_below(16) == 0)
			memcpy(neu, old, w);
		memcpy(m + at, neu, w);
		after = csum_fold(csum_partial(m, sizeof(m), 0));
		assert_int_equal(csum_update16(before, pkt_get16(old), pkt_get16(neu)), after);
	}
}

static void test_csum_l4(void **state)
{
	static const uint8_t protos[3] = {IPPROTO_TCP, IPPROTO_UDP, 0};
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME];
	uint32_t n;
	uint16_t c;

	(void)state;
	for (int fam = ADDR_V4; fam <= ADDR_V6; fam += 2) {
		for (unsigned i = 0; i < 3; i++) {
			pb_init(&s, fam);
			s.proto = protos[i];
			if (s.proto == 0)
				s.proto = fam == ADDR_V4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
			s.payload_len = 33;
			n = pb_build(&s, f, sizeof(f));
			assert_int_equal(pkt_parse(f, n, &pi), 0);
			/* pktbuild's naive checksum and csum_l4 agree */
			assert_int_equal(
			    csum_l4(&pi.src, &pi.dst, pi.l4_proto, f + pi.l4_off, pi.l4_len, &c),
			    0);
			assert_int_equal(c, pkt_get16(f + pi.l4_off + csum_l4_field(pi.l4_proto)));
			assert_int_equal(
			    csum_l4_verify(&pi.src, &pi.dst, pi.l4_proto, f + pi.l4_off, pi.l4_len),
			    1);
			f[n - 1] ^= 1;
			assert_int_equal(
			    csum_l4_verify(&pi.src, &pi.dst, pi.l4_proto, f + pi.l4_off, pi.l4_len),
			    0);
			assert_int_equal(
			    csum_l4_fill(&pi.src, &pi.dst, pi.l4_proto, f + pi.l4_off, pi.l4_len),
			    0);
			assert_int_equal(
			    csum_l4_verify(&pi.src, &pi.dst, pi.l4_proto, f + pi.l4_off, pi.l4_len),
			    1);
		}
	}

	/* UDP checksum 0: "none" over IPv4, wrong over IPv6 */
	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_UDP;
	s.udp_no_csum = true;
	n = pb_build(&s, f, sizeof(f));
	assert_int_equal(pkt_parse(f, n, &pi), 0);
	assert_int_equal(csum_l4_verify(&pi.src, &pi.dst, IPPROTO_UDP, f + pi.l4_off, pi.l4_len),
			 1);
	pb_init(&s, ADDR_V6);
	s.proto = IPPROTO_UDP;
	n = pb_build(&s, f, sizeof(f));
	assert_int_equal(pkt_parse(f, n, &pi), 0);
	pkt_put16(f + pi.l4_off + 6, 0);
	assert_int_equal(csum_l4_verify(&pi.src, &pi.dst, IPPROTO_UDP, f + pi.l4_off, pi.l4_len),
			 0);

	/* refusals */
	assert_int_equal(csum_l4(&pi.src, &pi.dst, 47, f + pi.l4_off, pi.l4_len, &c), -EINVAL);
	assert_int_equal(csum_l4(&pi.src, &pi.dst, IPPROTO_TCP, f + pi.l4_off, 17, &c), -EINVAL);
	assert_int_equal(csum_l4(&pi.src, &pi.dst, IPPROTO_ICMP, f + pi.l4_off, 8, &c), -EINVAL);
	pi.dst = pb_addr("192.0.2.9");
	assert_int_equal(csum_l4(&pi.src, &pi.dst, IPPROTO_UDP, f + pi.l4_off, 8, &c), -EINVAL);
	assert_int_equal(csum_l4_verify(&pi.src, &pi.dst, IPPROTO_UDP, f + pi.l4_off, 8), -EINVAL);
	assert_int_equal(csum_l4(&pi.dst, &pi.dst, IPPROTO_ICMPV6, f + pi.l4_off, 8, &c), -EINVAL);
	assert_int_equal(csum_l4_field(IPPROTO_TCP), 16);
	assert_int_equal(csum_l4_field(47), -1);
}

/*
 * Choose the first payload word of a UDP datagram so that its checksum
 * computes to 0, which RFC 768 sends as 0xFFFF.
 */
static uint32_t build_udp_zero_sum(struct pb_spec *s, uint8_t *f, uint8_t *payload)
{
	struct pkt_info pi;
	uint32_t n;
	uint16_t c;

	memset(payload, 0, 2);
	s->payload = payload;
	s->payload_len = 2;
	n = pb_build(s, f, PB_MAX_FRAME);
	assert_int_equal(pkt_parse(f, n, &pi), 0);
	assert_int_equal(csum_l4(&pi.src, &pi.dst, IPPROTO_UDP, f + pi.l4_off, pi.l4_len, &c), 0);
	/* the sum S gave c = ~S; adding the word ~S makes the sum 0xffff, the checksum 0 */
	pkt_put16(payload, c);
	n = pb_build(s, f, PB_MAX_FRAME);
	assert_int_equal(pkt_get16(f + pi.l4_off + 6), 0xffff);
	assert_int_equal(csum_l4(&pi.src, &pi.dst, IPPROTO_UDP, f + pi.l4_off, pi.l4_len, &c), 0);
	assert_int_equal(c, 0xffff);
	return n;
}

static void test_udp_zero_becomes_ffff(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME], g[PB_MAX_FRAME], payload[2];
	uint32_t n;

	(void)state;
	for (int fam = ADDR_V4; fam <= ADDR_V6; fam += 2) {
		struct addr nsrc = pb_addr(fam == ADDR_V4 ? "10.1.2.3" : "fd00::1:2:3");
		struct addr ndst = pb_addr(fam == ADDR_V4 ? "10.9.8.7" : "fd00::9:8:7");

		/* the datagram after NAT computes to 0 ... */
		pb_init(&s, fam);
		s.proto = IPPROTO_UDP;
		s.src = nsrc;
		s.dst = ndst;
		s.sport = 1111;
		s.dport = 2222;
		n = build_udp_zero_sum(&s, g, payload);
		/* ... so NAT from another tuple must land on 0xffff, not 0 */
		s.src = pb_addr(fam == ADDR_V4 ? "192.0.2.77" : "2001:db8::77");
		s.dst = pb_addr(fam == ADDR_V4 ? "198.51.100.5" : "2001:db8::5");
		s.sport = 3333;
		s.dport = 53;
		assert_int_equal(pb_build(&s, f, sizeof(f)), n);
		assert_int_equal(pkt_parse(f, n, &pi), 0);
		assert_int_equal(rw_nat(f, &pi, &nsrc, 1111, &ndst, 2222), 0);
		assert_memory_equal(f, g, n);
		assert_int_equal(pkt_get16(f + pi.l4_off + 6), 0xffff);
	}
}

/* ---- rw_nat ---- */

static void random_spec(struct pb_spec *s, uint8_t *payload)
{
	int fam = rng_below(2) ? ADDR_V6 : ADDR_V4;

	pb_init(s, fam);
	s->proto = rng_below(2) ? IPPROTO_UDP : IPPROTO_TCP;
	s->src = rng_addr(fam);
	s->dst = rng_addr(fam);
	s->sport = (uint16_t)rng();
	s->dport = (uint16_t)rng();
	s->ttl = (uint8_t)rng();
	s->tos = (uint8_t)rng();
	s->ip_id = (uint16_t)rng();
	s->df = rng_below(2);
	s->seq = (uint32_t)rng();
	s->ack = (uint32_t)rng();
	s->tcp_flags = (uint8_t)rng();
	s->vlans = (uint8_t)rng_below(3);
	s->vlan_tci = (uint16_t)rng();
	s->svlan_tci = (uint16_t)rng();
	s->payload_len = rng_below(8) == 0 ? 0 : rng_below(1401);
	rng_fill(payload, s->payload_len);
	s->payload = payload;
	if (rng_below(4) == 0)
		s->tcp_opts_len = (uint8_t)(4 * rng_below(11));
	if (fam == ADDR_V4) {
		if (rng_below(4) == 0)
			s->ip4_opts_len = (uint8_t)(4 * rng_below(11));
		if (s->proto == IPPROTO_UDP && rng_below(4) == 0)
			s->udp_no_csum = true;
	} else {
		s->flow_label = (uint32_t)rng();
		s->n_ext = (uint8_t)rng_below(3);
		for (unsigned i = 0; i < s->n_ext; i++)
			s->ext[i] = (struct pb_ext){i == 0 ? 0 : 60, (uint8_t)rng_below(4)};
	}
	if (rng_below(8) == 0)
		s->min_len = 60 + rng_below(8);
}

static void check_nat_result(const uint8_t *f, uint32_t n, const struct pkt_info *pi)
{
	struct pkt_info pj;

	assert_int_equal(pkt_parse(f, n, &pj), 0);
	assert_true(addr_eq(&pj.src, &pi->src) && addr_eq(&pj.dst, &pi->dst));
	assert_int_equal(pj.sport, pi->sport);
	assert_int_equal(pj.dport, pi->dport);
	assert_int_equal(pj.l4_off, pi->l4_off);
	if (pi->l3 == PKT_L3_IPV4)
		assert_int_equal(csum_ipv4_hdr(f + pi->l3_off), pkt_get16(f + pi->l3_off + 10));
}

static void test_nat_random(void **state)
{
	static uint8_t payload[1400], f[PB_MAX_FRAME], g[PB_MAX_FRAME], orig[PB_MAX_FRAME];
	unsigned checked_first = 0, nocsum = 0;

	(void)state;
	rng_state = 3;
	for (unsigned it = 0; it < 12000; it++) {
		struct pb_spec s;
		struct pkt_info pi, pi0;
		struct addr nsrc, ndst;
		uint16_t nsp, ndp;
		uint32_t n;

		random_spec(&s, payload);
		n = pb_build(&s, f, sizeof(f));
		assert_true(n > 0);
		memcpy(orig, f, n);
		assert_int_equal(pkt_parse(f, n, &pi), 0);
		pi0 = pi;
		nsrc = rng_addr(s.src.family);
		ndst = rng_addr(s.src.family);
		nsp = (uint16_t)rng();
		ndp = (uint16_t)rng();
		if (rng_below(16) == 0) /* unchanged fields */
			nsrc = s.src, nsp = s.sport;

		assert_int_equal(rw_nat(f, &pi, &nsrc, nsp, &ndst, ndp), 0);
		check_nat_result(f, n, &pi);
		assert_true(addr_eq(&pi.src, &nsrc) && pi.sport == nsp && pi.dport == ndp);
		if (s.udp_no_csum) {
			assert_int_equal(pkt_get16(f + pi.l4_off + 6), 0);
			nocsum++;
		} else {
			assert_int_equal(
			    csum_l4_verify(&pi.src, &pi.dst, pi.l4_proto, f + pi.l4_off, pi.l4_len),
			    1);
		}
		/* the very frame pktbuild makes from scratch for the new tuple */
		s.src = nsrc;
		s.dst = ndst;
		s.sport = nsp;
		s.dport = ndp;
		assert_int_equal(pb_build(&s, g, sizeof(g)), n);
		assert_memory_equal(f, g, n);

		/* and back, to the original bytes */
		assert_int_equal(rw_nat(f, &pi, &pi0.src, pi0.sport, &pi0.dst, pi0.dport), 0);
		assert_memory_equal(f, orig, n);

		/* a first fragment carries the checksum of the whole datagram: same update */
		if (it % 8 == 0 && pi0.l4_len >= 48u + pi0.l4_hlen) {
			uint8_t fr[PB_MAX_FRAME], want[PB_MAX_FRAME];
			uint32_t cut = (pi0.l4_hlen + 7 + 8 * rng_below(4)) & ~7u, m, m2;
			struct pkt_info pf;

			memcpy(f, orig, n);
			m = pb_fragment(f, n, 0, cut, true, 99, fr, sizeof(fr));
			assert_true(m > 0);
			assert_int_equal(pkt_parse(fr, m, &pf), 0);
			assert_int_equal(pf.frag, PKT_FRAG_FIRST);
			assert_int_equal(rw_nat(fr, &pf, &nsrc, nsp, &ndst, ndp), 0);
			m2 = pb_fragment(g, n, 0, cut, true, 99, want, sizeof(want));
			assert_int_equal(m, m2);
			assert_memory_equal(fr, want, m);
			checked_first++;
		}
	}
	assert_true(checked_first > 500);
	assert_true(nocsum > 300);
}

/*
 * The prepared IPv4 rewrite (rw_nat4_prepare once, rw_nat4_frame per packet)
 * writes the bytes rw_nat_frame writes, over random frames: TCP and UDP,
 * IPv4 options, VLAN tags, UDP without checksum, unchanged fields.
 */
static void test_nat4_prepared(void **state)
{
	static uint8_t payload[1400], f[PB_MAX_FRAME], g[PB_MAX_FRAME];
	unsigned nocsum = 0;

	(void)state;
	rng_state = 11;
	for (unsigned it = 0; it < 6000; it++) {
		struct pb_spec s;
		struct pkt_info pi;
		struct rw_nat4 n;
		struct addr node, be;
		uint16_t sport, bport;
		uint32_t len;

		do
			random_spec(&s, payload);
		while (s.src.family != ADDR_V4);
		len = pb_build(&s, f, sizeof(f));
		assert_true(len > 0);
		assert_int_equal(pkt_parse(f, len, &pi), 0);
		node = rng_addr(ADDR_V4);
		be = rng_addr(ADDR_V4);
		sport = (uint16_t)rng();
		bport = (uint16_t)rng();
		if (rng_below(16) == 0) /* unchanged fields */
			be = s.dst, bport = s.dport, node = s.src, sport = s.sport;
		memcpy(g, f, len);

		rw_nat4_prepare(&n, &s.dst, &node, &be, bport);
		rw_nat4_frame(f, pi.l3_off, pi.l4_off, pi.l4_proto, &n, sport);
		rw_nat_frame(g, pi.l3_off, pi.l4_off, 0, pi.l4_proto, &node, sport, &be, bport);
		assert_memory_equal(f, g, len);

		/* and the result is right from scratch */
		struct pkt_info pj;
		assert_int_equal(pkt_parse(f, len, &pj), 0);
		assert_true(addr_eq(&pj.src, &node) && addr_eq(&pj.dst, &be));
		assert_int_equal(pj.sport, sport);
		assert_int_equal(pj.dport, bport);
		assert_int_equal(csum_ipv4_hdr(f + pj.l3_off), pkt_get16(f + pj.l3_off + 10));
		if (s.udp_no_csum) {
			assert_int_equal(pkt_get16(f + pj.l4_off + 6), 0);
			nocsum++;
		} else {
			assert_int_equal(
			    csum_l4_verify(&pj.src, &pj.dst, pj.l4_proto, f + pj.l4_off, pj.l4_len), 1);
		}
	}
	assert_true(nocsum > 100);
}

static void test_nat_refusals(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t f[PB_MAX_FRAME], g[PB_MAX_FRAME], orig[PB_MAX_FRAME];
	struct addr v4 = pb_addr("10.0.0.1"), v6 = pb_addr("fd00::1");
	uint32_t n, m;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.proto = IPPROTO_ICMP;
	n = pb_build(&s, f, sizeof(f));
	memcpy(orig, f, n);
	assert_int_equal(pkt_parse(f, n, &pi), 0);
	assert_int_equal(rw_nat(f, &pi, &v4, 1, &v4, 2), -EINVAL);

	s.proto = IPPROTO_TCP;
	n = pb_build(&s, f, sizeof(f));
	memcpy(orig, f, n);
	assert_int_equal(pkt_parse(f, n, &pi), 0);
	assert_int_equal(rw_nat(f, &pi, &v6, 1, &v6, 2), -EINVAL);
	assert_int_equal(rw_nat(f, &pi, &v4, 1, &v6, 2), -EINVAL);
	assert_int_equal(rw_nat(f, &pi, &v6, 1, &v4, 2), -EINVAL);
	assert_memory_equal(f, orig, n);
	assert_int_equal(pi.sport, 40000);

	s.proto = IPPROTO_UDP;
	s.payload_len = 64;
	n = pb_build(&s, f, sizeof(f));
	m = pb_fragment(f, n, 32, 40, false, 0, g, sizeof(g));
	assert_int_equal(pkt_parse(g, m, &pi), 0);
	assert_int_equal(pi.frag, PKT_FRAG_LATER);
	assert_int_equal(rw_nat(g, &pi, &v4, 1, &v4, 2), -EINVAL);

	pb_init(&s, ADDR_V6);
	s.proto = 47;
	s.payload_len = 20;
	n = pb_build(&s, f, sizeof(f));
	assert_int_equal(pkt_parse(f, n, &pi), 0);
	assert_int_equal(rw_nat(f, &pi, &v6, 1, &v6, 2), -EINVAL);
	s.proto = IPPROTO_TCP;
	n = pb_build(&s, f, sizeof(f));
	assert_int_equal(pkt_parse(f, n, &pi), 0);
	assert_int_equal(rw_nat(f, &pi, &v4, 1, &v4, 2), -EINVAL);
	assert_int_equal(rw_nat(f, &pi, &v6, 1, &v6, 2), 0);

	pb_init(&s, ADDR_V4);
	s.kind = PB_ARP;
	n = pb_build(&s, f, sizeof(f));
	assert_int_equal(pkt_parse(f, n, &pi), 0);
	assert_int_equal(rw_nat(f, &pi, &v4, 1, &v4, 2), -EINVAL);
}

static void test_rw_eth(void **state)
{
	static const uint8_t d[6] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60};
	static const uint8_t sm[6] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
	struct pb_spec s;
	uint8_t f[PB_MAX_FRAME], orig[PB_MAX_FRAME];
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V6);
	s.vlans = 1;
	s.payload_len = 30;
	n = pb_build(&s, f, sizeof(f));
	memcpy(orig, f, n);
	rw_eth(f, d, sm);
	assert_memory_equal(f, d, 6);
	assert_memory_equal(f + 6, sm, 6);
	assert_memory_equal(f + 12, orig + 12, n - 12);
}

/* ---- rw_ipip_encap ---- */

/* Encapsulate x (n bytes) with exactly `room` bytes of heap before it and check everything. */
static void check_encap(const uint8_t *x, uint32_t n, uint32_t room)
{
	struct addr osrc = rng_addr(ADDR_V4), odst = rng_addr(ADDR_V4);
	uint8_t *mem = malloc(room + n);
	struct rw_buf b = {mem + room, n, room};
	struct pkt_info pi, po;
	const uint8_t *ip, *in;
	uint32_t l2;

	assert_non_null(mem);
	memcpy(b.data, x, n);
	assert_int_equal(pkt_parse(b.data, n, &pi), 0);
	l2 = pi.l3_off;
	in = x + l2;

	assert_int_equal(rw_ipip_encap(&b, &pi, &osrc, &odst, RW_IPIP_HLEN + pi.l3_len), 0);
	assert_ptr_equal(b.data, mem + room - RW_IPIP_HLEN);
	assert_int_equal(b.headroom, room - RW_IPIP_HLEN);
	assert_int_equal(b.len, l2 + RW_IPIP_HLEN + pi.l3_len);

	/* L2 moved intact, the ethertype now says IPv4 */
	assert_memory_equal(b.data, x, l2 - 2);
	assert_int_equal(pkt_get16(b.data + l2 - 2), PKT_ETHERTYPE_IPV4);
	/* the inner packet did not move and did not change */
	assert_memory_equal(b.data + l2 + RW_IPIP_HLEN, in, pi.l3_len);

	ip = b.data + l2;
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(pkt_get16(ip + 2), RW_IPIP_HLEN + pi.l3_len);
	assert_int_equal(ip[8], RW_IPIP_TTL);
	assert_memory_equal(ip + 12, osrc.b, 4);
	assert_memory_equal(ip + 16, odst.b, 4);
	assert_int_equal(csum_fold(csum_partial(ip, 20, 0)), 0);
	assert_int_equal(csum_ipv4_hdr(ip), pkt_get16(ip + 10));
	if (pi.l3 == PKT_L3_IPV4) {
		assert_int_equal(ip[9], IPPROTO_IPIP);
		assert_int_equal(ip[1], in[1]);
		if (in[6] & 0x40) {
			assert_int_equal(pkt_get16(ip + 6), 0x4000);
			assert_int_equal(pkt_get16(ip + 4), 0);
		} else {
			assert_int_equal(pkt_get16(ip + 6), 0);
			assert_int_equal(pkt_get16(ip + 4), pkt_get16(in + 4));
		}
	} else {
		assert_int_equal(ip[9], IPPROTO_IPV6);
		assert_int_equal(ip[1], (uint8_t)(in[0] << 4 | in[1] >> 4));
		assert_int_equal(pkt_get16(ip + 6), 0x4000);
		assert_int_equal(pkt_get16(ip + 4), 0);
	}

	/* the result is a frame the parser reads as IPv4 carrying the inner packet */
	assert_int_equal(pkt_parse(b.data, b.len, &po), 0);
	assert_int_equal(po.l3, PKT_L3_IPV4);
	assert_int_equal(po.vlans, pi.vlans);
	assert_int_equal(po.vlan_tci, pi.vlan_tci);
	assert_int_equal(po.l4_proto, pi.l3 == PKT_L3_IPV4 ? IPPROTO_IPIP : IPPROTO_IPV6);
	assert_int_equal(po.l4_off, pi.l3_off + RW_IPIP_HLEN);
	assert_int_equal(po.l4_len, pi.l3_len);
	assert_true(addr_eq(&po.src, &osrc) && addr_eq(&po.dst, &odst));
	assert_int_equal(po.frag, PKT_FRAG_NONE);
	free(mem);
}

static void test_encap(void **state)
{
	static uint8_t payload[1400];
	struct pb_spec s;
	uint8_t f[PB_MAX_FRAME];

	(void)state;
	rng_state = 4;
	for (unsigned it = 0; it < 3000; it++) {
		uint32_t n;

		random_spec(&s, payload);
		if (rng_below(4) == 0)
			s.proto = s.src.family == ADDR_V4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
		n = pb_build(&s, f, sizeof(f));
		assert_true(n > 0);
		check_encap(f, n, RW_IPIP_HLEN + rng_below(3) * 7);
	}
}

static void test_encap_refusals(void **state)
{
	struct pb_spec s;
	struct pkt_info pi;
	uint8_t mem[PB_MAX_FRAME + 64], orig[PB_MAX_FRAME + 64];
	struct addr o4 = pb_addr("10.0.0.1"), o6 = pb_addr("fd00::1");
	struct rw_buf b;
	uint32_t n;

	(void)state;
	pb_init(&s, ADDR_V4);
	s.payload_len = 100;
	n = pb_build(&s, mem + 64, PB_MAX_FRAME);
	memcpy(orig, mem, sizeof(mem));
	assert_int_equal(pkt_parse(mem + 64, n, &pi), 0);

	b = (struct rw_buf){mem + 64, n, RW_IPIP_HLEN - 1};
	assert_int_equal(rw_ipip_encap(&b, &pi, &o4, &o4, 0), -ENOSPC);
	b.headroom = 64;
	assert_int_equal(rw_ipip_encap(&b, &pi, &o4, &o4, RW_IPIP_HLEN + pi.l3_len - 1), -EMSGSIZE);
	assert_int_equal(rw_ipip_encap(&b, &pi, &o6, &o4, 0), -EINVAL);
	assert_int_equal(rw_ipip_encap(&b, &pi, &o4, &o6, 0), -EINVAL);
	assert_ptr_equal(b.data, mem + 64);
	assert_int_equal(b.len, n);
	assert_int_equal(b.headroom, 64);
	assert_memory_equal(mem, orig, sizeof(mem));

	/* an inner packet so big that the outer total length would not fit 16 bits */
	pi.l3_len = 0xffff - RW_IPIP_HLEN + 1;
	assert_int_equal(rw_ipip_encap(&b, &pi, &o4, &o4, 0), -EMSGSIZE);

	s.kind = PB_ARP;
	n = pb_build(&s, mem + 64, PB_MAX_FRAME);
	assert_int_equal(pkt_parse(mem + 64, n, &pi), 0);
	b = (struct rw_buf){mem + 64, n, 64};
	assert_int_equal(rw_ipip_encap(&b, &pi, &o4, &o4, 0), -EINVAL);

	/* padding is dropped; no MTU (0) means no limit */
	pb_init(&s, ADDR_V4);
	s.min_len = 60;
	n = pb_build(&s, mem + 64, PB_MAX_FRAME);
	assert_int_equal(n, 60);
	assert_int_equal(pkt_parse(mem + 64, n, &pi), 0);
	b = (struct rw_buf){mem + 64, n, 64};
	assert_int_equal(rw_ipip_encap(&b, &pi, &o4, &o4, 0), 0);
	assert_int_equal(b.len, 14 + 20 + 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csum_rfc1071_example),
	    cmocka_unit_test(test_csum_partial_vs_naive),
	    cmocka_unit_test(test_csum_folds),
	    cmocka_unit_test(test_csum_incremental),
	    cmocka_unit_test(test_csum_l4),
	    cmocka_unit_test(test_udp_zero_becomes_ffff),
	    cmocka_unit_test(test_nat_random),
	    cmocka_unit_test(test_nat4_prepared),
	    cmocka_unit_test(test_nat_refusals),
	    cmocka_unit_test(test_rw_eth),
	    cmocka_unit_test(test_encap),
	    cmocka_unit_test(test_encap_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
