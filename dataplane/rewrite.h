/* rewrite: in-place packet rewrites for the forwarding modes (nat, dsr, tunnel). */
#ifndef FULCRUM_DATAPLANE_REWRITE_H
#define FULCRUM_DATAPLANE_REWRITE_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/addr.h"
#include "dataplane/csum.h"
#include "dataplane/pkt.h"

/*
 * Pure C on byte buffers, per packet on a worker: no allocation, no logging,
 * reentrant (any thread, on buffers it owns). Each function takes the
 * struct pkt_info that pkt_parse() produced for exactly these bytes; passing
 * a pi from other bytes is undefined. On error the buffer and pi are left
 * unchanged.
 */

/* Bytes the IPv4 outer header of rw_ipip_encap() needs in the headroom. */
#define RW_IPIP_HLEN 20
#define RW_IPIP_TTL  64

/*
 * A frame with room before it: data[-headroom .. 0) may be written. A DPDK
 * adapter maps it to an mbuf (headroom = rte_pktmbuf_headroom, moving data
 * back = rte_pktmbuf_prepend).
 */
struct rw_buf {
	uint8_t *data;
	uint32_t len;
	uint32_t headroom;
};

/*
 * Set the Ethernet destination and source MAC. This is the whole `dsr`
 * rewrite (L2 direct server return): L3 and up are untouched, so there is
 * no rw_dsr(); use rw_eth(data, backend_mac, port_mac). data must hold 12
 * bytes. Never fails.
 */
void rw_eth(uint8_t *data, const uint8_t dst_mac[6], const uint8_t src_mac[6]);

/*
 * Full NAT: rewrite the IP source and destination addresses and the TCP/UDP
 * ports (host order) of an IPv4 or IPv6 packet, and update the IPv4 header
 * checksum and the TCP/UDP checksum (pseudo-header included) incrementally
 * (RFC 1624 equation 3), so a checksum that was right stays right and one
 * that was wrong stays wrong. The same call serves both directions: client
 * -> VIP becomes snat -> backend, and backend -> snat becomes VIP -> client.
 *
 * UDP over IPv4 with checksum 0 ("no checksum", RFC 768) keeps 0; an updated
 * UDP checksum that comes out 0 is written as 0xFFFF. A first fragment is
 * rewritten (its L4 checksum covers the whole datagram, and an incremental
 * update does not need the rest of it); the later fragments of the same
 * datagram cannot be (they carry no ports), which is why the caller drops them.
 *
 * TTL / hop limit is NOT decremented: for its clients the node is the end of
 * the VIP, as a proxy is, and it forwards only packets addressed to a VIP or
 * to its own SNAT address and rewrites them to addresses it never forwards
 * again, so no packet can loop through it. Leaving TTL alone also keeps the
 * rewrite limited to fields the reverse rewrite restores, and matches the
 * dsr and tunnel modes, which leave the inner packet as it is.
 *
 * On success the four fields are updated in pi too, so pi stays valid.
 * Returns 0, or -EINVAL if pi is not IPv4/IPv6 TCP/UDP, is a later fragment,
 * or new_src/new_dst are not of the packet's family (no NAT64).
 */
int rw_nat(uint8_t *data, struct pkt_info *pi, const struct addr *new_src, uint16_t new_sport,
	   const struct addr *new_dst, uint16_t new_dport);

/*
 * The checksum half of the nat rewrite, shared by rw_nat_frame and
 * rw_nat4_frame: s is the address difference (new source + new destination
 * + ~old source + ~old destination, as frame-native 32-bit words, unfolded),
 * ports_new the new port word as the frame will hold it. Updates the IPv4
 * header checksum (v6 = 0) and the L4 one, and stores the ports; the
 * addresses are already stored.
 *
 * All sums are in the frame's own byte order (RFC 1071 section 2(B)): the
 * old fields and the checksums are loaded as native words straight from the
 * frame and the results stored the same way. One difference covers both
 * addresses (the IPv4 header and the pseudo-header both hold them); the L4
 * checksum adds the ports, loaded and stored as one 32-bit word.
 */
static inline __attribute__((always_inline)) void
rw_nat_csums(uint8_t *ip, uint8_t *l4, const int v6, uint8_t l4_proto, uint64_t s,
	     uint32_t ports_new)
{
	uint8_t *cf = l4 + (l4_proto == IPPROTO_TCP ? 16 : 6); /* the L4 checksum field */
	uint32_t ports_old;
	uint16_t c;

	if (!v6) {
		memcpy(&c, ip + 10, 2);
		c = (uint16_t)~csum_fold64(s + (uint16_t)~c);
		memcpy(ip + 10, &c, 2);
	}
	memcpy(&ports_old, l4, 4);
	memcpy(&c, cf, 2);
	if (!(l4_proto == IPPROTO_UDP && c == 0 && !v6)) { /* RFC 768: v4 UDP may carry none */
		c = (uint16_t)~csum_fold64(s + (uint16_t)~c + (uint32_t)~ports_old + ports_new);
		if (c == 0 && l4_proto == IPPROTO_UDP)
			c = 0xffff; /* 0 and 0xffff read the same in either byte order */
		memcpy(cf, &c, 2);
	}
	memcpy(l4, &ports_new, 4);
}

/* The port word as the frame holds it: sport in host order, dport_net in network order. */
static inline uint32_t rw_ports_word(uint16_t sport, uint16_t dport_net)
{
	uint16_t np[2] = {htons(sport), dport_net};
	uint32_t w;

	memcpy(&w, np, 4);
	return w;
}

/*
 * rw_nat's rewrite itself, for a frame the caller has already checked (the
 * per-packet path, which knows the offsets from pkt_fast_check): IPv4 (v6 =
 * 0) or IPv6 (v6 = 1) at l3_off, TCP or UDP (l4_proto) at l4_off, not a
 * later fragment, new addresses of the packet's family. The old addresses
 * and ports are read from the frame. rw_nat validates, then calls this.
 */
static inline __attribute__((always_inline)) void
rw_nat_frame_af(uint8_t *data, uint32_t l3_off, uint32_t l4_off, const int v6, uint8_t l4_proto,
		const struct addr *new_src, uint16_t new_sport, const struct addr *new_dst,
		uint16_t new_dport)
{
	uint8_t *ip = data + l3_off;
	uint8_t *src = ip + (v6 ? 8 : 12), *dst = ip + (v6 ? 24 : 16);
	unsigned alen = v6 ? 16 : 4;
	uint64_t s = 0;

	for (unsigned i = 0; i < alen; i += 4) {
		uint32_t o1, n1, o2, n2;

		memcpy(&o1, src + i, 4);
		memcpy(&n1, new_src->b + i, 4);
		memcpy(&o2, dst + i, 4);
		memcpy(&n2, new_dst->b + i, 4);
		s += (uint64_t)(uint32_t)~o1 + n1 + (uint32_t)~o2 + n2;
	}
	memcpy(src, new_src->b, alen);
	memcpy(dst, new_dst->b, alen);
	rw_nat_csums(ip, data + l4_off, v6, l4_proto, s,
		     rw_ports_word(new_sport, htons(new_dport)));
}

static inline void rw_nat_frame(uint8_t *data, uint32_t l3_off, uint32_t l4_off, int v6,
				uint8_t l4_proto, const struct addr *new_src, uint16_t new_sport,
				const struct addr *new_dst, uint16_t new_dport)
{
	/*
	 * One copy per family, so that the address lengths are constants, and
	 * IPv4 TCP in its own (as rw_nat4_frame).
	 */
	if (v6)
		rw_nat_frame_af(data, l3_off, l4_off, 1, l4_proto, new_src, new_sport, new_dst,
				new_dport);
	else if (l4_proto == IPPROTO_TCP)
		rw_nat_frame_af(data, l3_off, l4_off, 0, IPPROTO_TCP, new_src, new_sport, new_dst,
				new_dport);
	else
		rw_nat_frame_af(data, l3_off, l4_off, 0, l4_proto, new_src, new_sport, new_dst,
				new_dport);
}

/*
 * The forward nat rewrite of IPv4 frames to one VIP and one backend,
 * prepared once per backend when a forwarding state is built: what does
 * not change from packet to packet (the VIP it replaces, the node address
 * and the backend's address and port) is summed and laid out ahead, so the
 * per-packet part (rw_nat4_frame) loads only the client's address and
 * ports. The result is the bytes rw_nat_frame writes.
 */
struct rw_nat4 {
	uint64_t addrs; /* new source, new destination: the 8 frame bytes from ip + 12 */
	uint64_t sum;	/* new source + new destination + ~old destination, frame-native words */
	uint32_t ports; /* the port word with the new destination port and source port 0 */
};

/* Prepare the rewrite old_dst -> new_dst:new_dport, source -> new_src (all IPv4). */
void rw_nat4_prepare(struct rw_nat4 *n, const struct addr *old_dst, const struct addr *new_src,
		     const struct addr *new_dst, uint16_t new_dport);

/*
 * Apply a prepared rewrite to an IPv4 frame whose destination address is
 * the prepared old_dst, with the new source port new_sport (host order).
 * The same preconditions as rw_nat_frame with v6 = 0.
 */
static inline __attribute__((always_inline)) void
rw_nat4_frame(uint8_t *data, uint32_t l3_off, uint32_t l4_off, uint8_t l4_proto,
	      const struct rw_nat4 *n, uint16_t new_sport)
{
	uint8_t *ip = data + l3_off;
	uint32_t o;

	memcpy(&o, ip + 12, 4);
	memcpy(ip + 12, &n->addrs, 8);
	uint64_t s = n->sum + (uint32_t)~o;
	uint32_t pw = rw_ports_word(new_sport, 0) | n->ports;
	/* TCP in a copy of its own: checksum offset constant, the UDP cases gone */
	if (l4_proto == IPPROTO_TCP)
		rw_nat_csums(ip, data + l4_off, 0, IPPROTO_TCP, s, pw);
	else
		rw_nat_csums(ip, data + l4_off, 0, l4_proto, s, pw);
}

/*
 * Tunnel mode: encapsulate the IPv4 (protocol 4, RFC 2003) or IPv6
 * (protocol 41, RFC 4213) packet in an outer IPv4 header from outer_src (the
 * node address) to outer_dst (the backend). The Ethernet header and its tags
 * move RW_IPIP_HLEN bytes into the headroom and keep their MACs and tags;
 * their innermost ethertype becomes IPv4. The outer header: TOS copied from
 * the inner TOS / traffic class (RFC 2003 section 3.1; ECN copied as in RFC
 * 6040 normal mode), DF copied from an inner IPv4 header and set for inner
 * IPv6 (which routers never fragment), identification 0 when DF is set
 * (RFC 6864 section 4.1: atomic datagrams) and the inner identification
 * otherwise, TTL RW_IPIP_TTL, no options, checksum computed. Bytes after the
 * inner IP packet (Ethernet padding) are dropped from the length.
 *
 * mtu limits the outer IP packet (RW_IPIP_HLEN + inner length); 0 = no
 * limit. On success buf->data moves back by RW_IPIP_HLEN, headroom shrinks
 * and len becomes l2 + RW_IPIP_HLEN + inner length. pi is then stale: its
 * inner offsets (l3_off, l4_off) are RW_IPIP_HLEN too small; pkt_parse() the
 * new frame to see the outer header, or add RW_IPIP_HLEN to find the inner.
 *
 * Returns 0; -EINVAL if pi is not IPv4/IPv6 or an outer address is not
 * IPv4 (IPv6 outer headers are not supported yet); -ENOSPC if headroom <
 * RW_IPIP_HLEN; -EMSGSIZE if the outer packet would exceed mtu or 65535.
 */
int rw_ipip_encap(struct rw_buf *buf, const struct pkt_info *pi, const struct addr *outer_src,
		  const struct addr *outer_dst, uint32_t mtu);

#endif
