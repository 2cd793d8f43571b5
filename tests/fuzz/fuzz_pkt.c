/* Fuzz target: pkt_parse and pkt_parse_icmp_inner on any frame, then the rewrites. */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/csum.h"
#include "dataplane/pkt.h"
#include "dataplane/rewrite.h"
#include "tests/fuzz/fuzz.h"


static void check_info(const struct pkt_info *pi, uint32_t len)
{
	CHECK(pi->l3_off == PKT_ETH_HLEN + PKT_VLAN_HLEN * pi->vlans && pi->l3_off <= len);
	switch (pi->l3) {
	case PKT_L3_IPV4:
	case PKT_L3_IPV6:
		CHECK((uint64_t)pi->l3_off + pi->l3_len <= len);
		CHECK(pi->l4_off >= pi->l3_off + (pi->l3 == PKT_L3_IPV4 ? 20 : 40));
		CHECK((uint64_t)pi->l4_off + pi->l4_len == (uint64_t)pi->l3_off + pi->l3_len);
		CHECK(pi->l4_hlen <= pi->l4_len);
		CHECK(pi->src.family == (pi->l3 == PKT_L3_IPV4 ? ADDR_V4 : ADDR_V6));
		CHECK(pi->frag <= PKT_FRAG_LATER);
		if (pi->frag == PKT_FRAG_LATER)
			CHECK(pi->sport == 0 && pi->dport == 0 && pi->l4_hlen == 0);
		else if (pi->l4_proto == IPPROTO_TCP)
			CHECK(pi->l4_hlen >= 20 && pi->l4_hlen <= 60);
		else if (pi->l4_proto == IPPROTO_UDP)
			CHECK(pi->l4_hlen == 8);
		break;
	case PKT_L3_ARP:
		CHECK((uint64_t)pi->l3_off + 28 <= len);
		CHECK(pi->arp_op == PKT_ARP_REQUEST || pi->arp_op == PKT_ARP_REPLY);
		break;
	case PKT_L3_OTHER:
		break;
	default:
		abort();
	}
}

static void check_inner(const struct pkt_info *pi, const struct pkt_info *in)
{
	uint64_t end = (uint64_t)pi->l3_off + pi->l3_len;

	CHECK(in->l3 == (pi->l3 == PKT_L3_IPV6 ? PKT_L3_IPV6 : PKT_L3_IPV4));
	CHECK(in->l3_off == pi->l4_off + 8u);
	CHECK((uint64_t)in->l3_off + in->l3_len <= end);
	CHECK(in->l4_off >= in->l3_off + (in->l3 == PKT_L3_IPV4 ? 20u : 40u));
	CHECK((uint64_t)in->l4_off + in->l4_len == (uint64_t)in->l3_off + in->l3_len);
	CHECK(in->l4_hlen == 0 && in->tcp_flags == 0);
	if (in->frag == PKT_FRAG_LATER)
		CHECK(in->sport == 0 && in->dport == 0);
}

static int ip4_hdr_ok(const uint8_t *ip)
{
	return csum_fold(csum_partial(ip, (ip[0] & 0x0fu) * 4, 0)) == 0;
}

static int l4_ok(const uint8_t *f, const struct pkt_info *pi)
{
	if (pi->frag != PKT_FRAG_NONE)
		return -1; /* the checksum covers bytes that are not here */
	return csum_l4_verify(&pi->src, &pi->dst, pi->l4_proto, f + pi->l4_off, pi->l4_len);
}

/*
 * A one's complement checksum has two zeros (0x0000 and 0xffff). An update
 * keeps the value but may pick the other zero when the input held 0xffff in
 * a field that correct senders never produce; a round trip is exact otherwise.
 */
static int same_or_zero_twin(uint16_t a, uint16_t b)
{
	return a == b || ((a == 0 || a == 0xffff) && (b == 0 || b == 0xffff));
}

/* Whether byte i of the frame is one rw_nat may change: 1 tuple, 2 checksum, 0 neither. */
static int nat_field(const struct pkt_info *pi, uint32_t i)
{
	uint32_t ip = pi->l3_off, l4 = pi->l4_off;
	uint32_t cf = l4 + (pi->l4_proto == IPPROTO_TCP ? 16 : 6);

	if (pi->l3 == PKT_L3_IPV4) {
		if (i >= ip + 12 && i < ip + 20)
			return 1;
		if (i == ip + 10 || i == ip + 11)
			return 2;
	} else if (i >= ip + 8 && i < ip + 40) {
		return 1;
	}
	if (i >= l4 && i < l4 + 4)
		return 1;
	if (i == cf || i == cf + 1)
		return 2;
	return 0;
}

static void fuzz_nat(const uint8_t *data, uint32_t len, const struct pkt_info *pi0)
{
	uint8_t *f = malloc(len);
	struct pkt_info pi = *pi0, pj;
	struct addr nsrc = pi0->dst, ndst = pi0->src;
	uint16_t nsp = (uint16_t)~pi0->sport, ndp = (uint16_t)(pi0->dport * 31 + 7);
	int ip_before = -1, l4_before, rc;
	int nat_ok = (pi0->l4_proto == IPPROTO_TCP || pi0->l4_proto == IPPROTO_UDP) &&
		     pi0->frag != PKT_FRAG_LATER;

	CHECK(f != NULL);
	memcpy(f, data, len);
	/* new addresses derived from the input, so that the fuzzer steers them too */
	for (unsigned i = 0; i < addr_len(&nsrc); i++) {
		nsrc.b[i] ^= data[i % len];
		ndst.b[i] += (uint8_t)(data[(i * 7) % len] | 1);
	}
	if (pi.l3 == PKT_L3_IPV4)
		ip_before = ip4_hdr_ok(f + pi.l3_off);
	l4_before = nat_ok ? l4_ok(f, &pi) : -1;

	rc = rw_nat(f, &pi, &nsrc, nsp, &ndst, ndp);
	if (!nat_ok) {
		CHECK(rc == -EINVAL);
		CHECK(memcmp(f, data, len) == 0);
		free(f);
		return;
	}
	CHECK(rc == 0);
	CHECK(addr_eq(&pi.src, &nsrc) && addr_eq(&pi.dst, &ndst));
	CHECK(pi.sport == nsp && pi.dport == ndp);
	/* the rewritten frame parses to the same layout with the new tuple */
	CHECK(pkt_parse(f, len, &pj) == 0);
	CHECK(pj.l3_off == pi.l3_off && pj.l4_off == pi.l4_off && pj.l4_len == pi.l4_len);
	CHECK(addr_eq(&pj.src, &nsrc) && addr_eq(&pj.dst, &ndst));
	CHECK(pj.sport == nsp && pj.dport == ndp);
	if (ip_before == 1)
		CHECK(ip4_hdr_ok(f + pi.l3_off));
	if (l4_before == 1)
		CHECK(l4_ok(f, &pi) == 1);
	/* only the tuple and the checksums changed */
	for (uint32_t i = 0; i < len; i++)
		CHECK(f[i] == data[i] || nat_field(&pi, i) != 0);

	/* and back */
	CHECK(rw_nat(f, &pi, &pi0->src, pi0->sport, &pi0->dst, pi0->dport) == 0);
	for (uint32_t i = 0; i < len; i++) {
		/* checksum fields start at even offsets: l3_off and every header length are even */
		if (nat_field(&pi, i) == 2)
			CHECK(same_or_zero_twin(pkt_get16(f + (i & ~1u)),
						pkt_get16(data + (i & ~1u))));
		else
			CHECK(f[i] == data[i]);
	}
	free(f);
}

static void fuzz_encap(const uint8_t *data, uint32_t len, const struct pkt_info *pi)
{
	/* exactly RW_IPIP_HLEN of headroom, so ASan sees any write before it */
	uint8_t *mem = malloc(RW_IPIP_HLEN + len);
	struct rw_buf b = {mem + RW_IPIP_HLEN, len, RW_IPIP_HLEN};
	struct addr osrc, odst;
	struct pkt_info po;
	uint32_t mtu = len > 40 ? pkt_get16(data + len - 2) : 0;
	int rc;

	CHECK(mem != NULL);
	memcpy(b.data, data, len);
	memset(&osrc, 0, sizeof(osrc));
	memset(&odst, 0, sizeof(odst));
	osrc.family = odst.family = ADDR_V4;
	memcpy(osrc.b, data, 4);
	memcpy(odst.b, data + 6, 4);

	rc = rw_ipip_encap(&b, pi, &osrc, &odst, mtu);
	if (rc == -EMSGSIZE) {
		CHECK(mtu && RW_IPIP_HLEN + pi->l3_len > mtu);
		CHECK(b.data == mem + RW_IPIP_HLEN && memcmp(b.data, data, len) == 0);
		free(mem);
		return;
	}
	CHECK(rc == 0);
	CHECK(b.data == mem && b.headroom == 0);
	CHECK(b.len == pi->l3_off + RW_IPIP_HLEN + pi->l3_len);
	CHECK(memcmp(b.data, data, pi->l3_off - 2u) == 0);
	CHECK(memcmp(b.data + pi->l3_off + RW_IPIP_HLEN, data + pi->l3_off, pi->l3_len) == 0);
	CHECK(ip4_hdr_ok(b.data + pi->l3_off));
	CHECK(pkt_parse(b.data, b.len, &po) == 0);
	check_info(&po, b.len);
	CHECK(po.l3 == PKT_L3_IPV4 && po.frag == PKT_FRAG_NONE);
	CHECK(po.l4_proto == (pi->l3 == PKT_L3_IPV4 ? IPPROTO_IPIP : IPPROTO_IPV6));
	CHECK(po.l4_off == pi->l3_off + RW_IPIP_HLEN && po.l4_len == pi->l3_len);
	CHECK(addr_eq(&po.src, &osrc) && addr_eq(&po.dst, &odst));
	free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt_info pi, inner;
	uint32_t len;
	int rc;

	if (size > 70000)
		return 0;
	len = (uint32_t)size;
	rc = pkt_parse(data, len, &pi);
	CHECK(pkt_err_str(rc) != NULL);
	if (rc) {
		CHECK(rc < 0 && rc >= -PKT_ERR_MAX);
		return 0;
	}
	check_info(&pi, len);
	rc = pkt_parse_icmp_inner(data, &pi, &inner);
	if (rc == 0)
		check_inner(&pi, &inner);
	else
		CHECK(rc < 0 && rc >= -PKT_ERR_MAX);
	if (pi.l3 == PKT_L3_IPV4 || pi.l3 == PKT_L3_IPV6) {
		fuzz_nat(data, len, &pi);
		fuzz_encap(data, len, &pi);
	} else {
		uint8_t dummy[PKT_ETH_HLEN + PKT_VLAN_HLEN * 2];
		struct rw_buf b = {dummy, 0, 0};
		struct addr a = pi.src;

		/* neither rewrite applies to ARP or other ethertypes */
		CHECK(rw_nat(dummy, &pi, &a, 1, &a, 2) == -EINVAL);
		CHECK(rw_ipip_encap(&b, &pi, &a, &a, 0) == -EINVAL);
	}
	return 0;
}
