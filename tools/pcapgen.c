/* pcapgen: writes the crafted input pcap of the golden test and what must happen to each packet. */
/*
 * usage: pcapgen -c CONF -o IN.pcap -e EXPECT.txt [--snat-seed N]
 *
 * CONF is the golden config (tests/golden/forward.conf after the script filled
 * in its paths). The input is one conversation per protocol feature: TCP
 * flows from SYN to FIN through the nat and dsr services (with the nat
 * replies from the backends), UDP flows, ARP, ICMP echo, IPv6, fragments, and
 * malformed or truncated frames. EXPECT.txt has one line per input packet:
 *
 *     IDX ACTION ARG [frag=IDX] # description
 *
 * ACTION is fwd FLOW (to a VIP: rewritten towards a backend), rev FLOW (a
 * backend's reply to a nat flow: translated back to the client), arp (an ARP
 * reply must come out), echo (an echo reply must come out), control (handed
 * to fulcrumd's control thread: nothing comes out) or drop REASON (nothing
 * comes out; fulcrumd counts REASON, a fwd_drop_str() name). frag=IDX names
 * the later fragment of a first fragment, so that tools/pcapcheck.c can check
 * the first fragment's L4 checksum over the whole datagram.
 *
 * What this tool must predict is only what a nat reply has to be addressed
 * to: the backend Maglev picks (computed with the library, as every node
 * would) and the SNAT port (the order dpdk_dp.c draws for worker 0). The
 * check itself (tools/pcapcheck.c) does not trust these predictions: a wrong
 * one shows up as a reply that fulcrumd dropped.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/config.h"
#include "dataplane/addr.h"
#include "dataplane/fwd.h"
#include "dataplane/maglev.h"
#include "dataplane/snat.h"
#include "tests/unit/pktbuild.h"

/* The MAC net_pcap gives its first port (DPDK's "pcap" locally administered address). */
static const uint8_t port_mac[6] = {0x02, 0x70, 0x63, 0x61, 0x70, 0x00};

/*
 * fulcrumd passes snat_seed 0 on net_pcap ports and dpdk_open keeps 0 as 0:
 * ports are handed out in ascending order. If the glue changes that, pass the
 * new value with --snat-seed.
 */
#define DEFAULT_SNAT_SEED 0ull

struct gen {
	FILE *pcap;
	FILE *exp;
	unsigned idx; /* next packet index, from 1 */
	struct fulcrum_config cfg;
	struct fwd_state *st;
	struct snat_pool *snat;
	uint8_t gw_mac[6];
	uint32_t ts;
};

struct flow {
	const char *id;
	struct addr client;
	struct addr vip;
	uint16_t cport;
	uint16_t vport;
	uint8_t proto;
	uint8_t vlans;
	uint16_t vlan_tci;
	/* predicted by new_flow() */
	int nat;
	struct addr be;
	uint16_t be_port;
	uint8_t be_mac[6];
	uint16_t snat_port;
	uint32_t cseq; /* client's next sequence number */
	uint32_t sseq; /* server's */
	uint16_t ip_id;
};

static void die(const char *what)
{
	fprintf(stderr, "pcapgen: %s\n", what);
	exit(1);
}

static void pcap_header(FILE *f)
{
	/* libpcap's classic format, little-endian, microseconds, LINKTYPE_ETHERNET. */
	uint32_t h[6] = {0xa1b2c3d4u, 0x00040002u, 0, 0, 65535, 1};
	if (fwrite(h, sizeof(h), 1, f) != 1)
		die("writing the pcap header");
}

/* One packet into the pcap and its expectation line. */
static void emit(struct gen *g, const uint8_t *frame, uint32_t len, const char *action,
		 const char *desc)
{
	uint32_t rec[4] = {1700000000u + g->ts / 1000000u, g->ts % 1000000u, len, len};

	g->ts += 10;
	if (fwrite(rec, sizeof(rec), 1, g->pcap) != 1 || fwrite(frame, 1, len, g->pcap) != len)
		die("writing the pcap");
	fprintf(g->exp, "%u %s # %s\n", g->idx, action, desc);
	g->idx++;
}

static const uint8_t *neigh_mac(const struct gen *g, const struct addr *a)
{
	for (uint32_t i = 0; i < g->cfg.n_neighbours; i++)
		if (addr_eq(&g->cfg.neighbours[i].addr, a))
			return g->cfg.neighbours[i].mac;
	die("a backend has no static neighbour entry in the config");
	return NULL;
}

static struct flow mkflow(const char *id, const char *client, uint16_t cport, const char *vip,
			  uint16_t vport, uint8_t proto)
{
	struct flow f;

	memset(&f, 0, sizeof(f));
	f.id = id;
	f.client = pb_addr(client);
	f.vip = pb_addr(vip);
	f.cport = cport;
	f.vport = vport;
	f.proto = proto;
	/* Different but fixed initial sequence numbers per flow. */
	f.cseq = 1000u + 7919u * cport;
	f.sseq = 5000000u + 104729u * cport;
	f.ip_id = (uint16_t)(cport * 3u);
	return f;
}

/* The backend (and for nat the SNAT port) fulcrumd will give a new flow. */
static void new_flow(struct gen *g, struct flow *f)
{
	uint32_t si = fwd_find_service(g->st, &f->vip, f->vport, f->proto);
	if (si == UINT32_MAX)
		die("a flow names no service of the config");
	const struct fwd_service *s = &g->st->services[si];
	uint64_t h = fwd_flow_hash(g->st->hash_seed, &f->client, &f->vip, f->cport, f->vport,
				   f->proto);
	uint32_t bi = maglev_lookup(&s->table, h);
	if (bi == MAGLEV_NONE)
		die("a service has no backend");
	f->be = s->backends[bi].addr;
	f->be_port = s->backends[bi].port;
	memcpy(f->be_mac, neigh_mac(g, &f->be), 6);
	f->nat = s->mode == FWD_MODE_NAT;
	if (f->nat && snat_alloc(g->snat, &f->snat_port) != 0)
		die("SNAT range too small");
}

/* A spec for a packet of flow f: client -> VIP (dir 0) or backend -> node (dir 1, nat). */
static void flow_spec(const struct gen *g, const struct flow *f, int dir, struct pb_spec *s)
{
	pb_init(s, f->client.family);
	s->vlans = f->vlans;
	s->vlan_tci = f->vlan_tci;
	s->proto = f->proto;
	memcpy(s->dst_mac, port_mac, 6);
	if (dir == 0) {
		memcpy(s->src_mac, g->gw_mac, 6);
		s->src = f->client;
		s->dst = f->vip;
		s->sport = f->cport;
		s->dport = f->vport;
		s->seq = f->cseq;
		s->ack = f->sseq;
		s->ttl = 57;
	} else {
		memcpy(s->src_mac, f->be_mac, 6);
		s->src = f->be;
		s->dst = f->client.family == ADDR_V4 ? g->cfg.node_v4 : g->cfg.node_v6;
		s->sport = f->be_port;
		s->dport = f->snat_port;
		s->seq = f->sseq;
		s->ack = f->cseq;
		s->ttl = 64;
	}
	s->ip_id = (uint16_t)(f->ip_id + (dir ? 0x8000 : 0));
	s->min_len = 60;
}

/* TCP segment (or UDP datagram when flags is 0 on a UDP flow) of flow f in direction dir. */
static void flow_pkt(struct gen *g, struct flow *f, int dir, uint8_t flags, uint32_t payload,
		     const char *desc)
{
	struct pb_spec s;
	uint8_t fr[PB_MAX_FRAME];
	char act[64];

	flow_spec(g, f, dir, &s);
	s.tcp_flags = flags;
	s.payload_len = payload;
	uint32_t n = pb_build(&s, fr, sizeof(fr));
	if (n == 0)
		die("pb_build");
	snprintf(act, sizeof(act), "%s %s", dir ? "rev" : "fwd", f->id);
	emit(g, fr, n, act, desc);
	uint32_t adv = payload + ((flags & (PKT_TCP_SYN | PKT_TCP_FIN)) ? 1 : 0);
	if (dir == 0)
		f->cseq += adv;
	else
		f->sseq += adv;
	f->ip_id++;
}

/* A data packet of flow f (client side) cut into a first and a later fragment. */
static void flow_frags(struct gen *g, struct flow *f, uint32_t payload, uint32_t first_n,
		       const char *desc)
{
	struct pb_spec s;
	uint8_t fr[PB_MAX_FRAME], a[PB_MAX_FRAME], b[PB_MAX_FRAME];
	char act[96], d[160];

	flow_spec(g, f, 0, &s);
	s.tcp_flags = PKT_TCP_ACK | PKT_TCP_PSH;
	s.payload_len = payload;
	s.min_len = 0;
	uint32_t n = pb_build(&s, fr, sizeof(fr));
	uint32_t l4 = (s.proto == IPPROTO_TCP ? 20 : 8) + payload;
	uint32_t na = pb_fragment(fr, n, 0, first_n, true, 0x5eed0000u + f->cport, a, sizeof(a));
	uint32_t nb = pb_fragment(fr, n, first_n, l4 - first_n, false, 0x5eed0000u + f->cport, b,
				  sizeof(b));
	if (n == 0 || na == 0 || nb == 0)
		die("pb_fragment");
	snprintf(act, sizeof(act), "fwd %s frag=%u", f->id, g->idx + 1);
	snprintf(d, sizeof(d), "%s, first fragment", desc);
	emit(g, a, na, act, d);
	snprintf(d, sizeof(d), "%s, later fragment", desc);
	emit(g, b, nb, "drop fragment", d);
	f->cseq += payload;
	f->ip_id++;
}

/* An ARP request from the gateway for target. */
static void arp_req(struct gen *g, const char *sender, const uint8_t *smac, const char *target,
		    const char *action, const char *desc)
{
	struct pb_spec s;
	uint8_t fr[PB_MAX_FRAME];

	pb_init(&s, ADDR_V4);
	s.kind = PB_ARP;
	memset(s.dst_mac, 0xff, 6);
	memcpy(s.src_mac, smac, 6);
	s.src = pb_addr(sender);
	s.dst = pb_addr(target);
	s.arp_op = PKT_ARP_REQUEST;
	s.min_len = 60;
	uint32_t n = pb_build(&s, fr, sizeof(fr));
	if (n == 0)
		die("pb_build arp");
	emit(g, fr, n, action, desc);
}

/* A one-off IP packet from src to dst (proto, ports or ICMP type) with the gateway's MAC. */
static uint32_t one(struct gen *g, struct pb_spec *s, const char *src, const char *dst,
		    uint8_t proto)
{
	struct addr a = pb_addr(src);
	pb_init(s, a.family);
	memcpy(s->dst_mac, port_mac, 6);
	memcpy(s->src_mac, g->gw_mac, 6);
	s->src = a;
	s->dst = pb_addr(dst);
	s->proto = proto;
	s->min_len = 60;
	return 0;
}

static void build_emit(struct gen *g, const struct pb_spec *s, const char *action,
		       const char *desc)
{
	uint8_t fr[PB_MAX_FRAME];
	uint32_t n = pb_build(s, fr, sizeof(fr));
	if (n == 0)
		die("pb_build");
	emit(g, fr, n, action, desc);
}

/*
 * A neighbour solicitation (RFC 4861 4.3) from a neighbour for target, sent
 * to target's solicited-node multicast address, with the sender's
 * link-layer address option.
 */
static void ns_req(struct gen *g, const char *src, const char *target, const char *action,
		   const char *desc)
{
	struct pb_spec s;
	uint8_t payload[24];
	struct addr t = pb_addr(target), snm = pb_addr("ff02::1:ff00:0");

	memcpy(snm.b + 13, t.b + 13, 3);
	one(g, &s, src, "ff02::1", IPPROTO_ICMPV6);
	s.dst = snm;
	s.dst_mac[0] = 0x33;
	s.dst_mac[1] = 0x33;
	memcpy(s.dst_mac + 2, snm.b + 12, 4);
	memcpy(s.src_mac, neigh_mac(g, &s.src), 6);
	s.icmp_type = 135;
	s.ttl = 255;
	memcpy(payload, t.b, 16);
	payload[16] = 1; /* Source Link-Layer Address, 8 bytes */
	payload[17] = 1;
	memcpy(payload + 18, s.src_mac, 6);
	s.payload = payload;
	s.payload_len = sizeof(payload);
	build_emit(g, &s, action, desc);
}

static void gen_arp_icmp(struct gen *g)
{
	struct pb_spec s;
	static const uint8_t other_mac[6] = {0x02, 0x00, 0x0a, 0x01, 0x00, 0x4d};

	arp_req(g, "10.1.0.1", g->gw_mac, "10.1.0.2", "arp", "ARP who-has node 10.1.0.2");
	arp_req(g, "10.1.0.1", g->gw_mac, "10.1.0.100", "arp", "ARP who-has announced VIP 10.1.0.100");
	arp_req(g, "10.1.0.1", g->gw_mac, "10.1.0.101", "control",
		"ARP who-has dsr VIP 10.1.0.101 (not announced)");
	arp_req(g, "10.1.0.77", other_mac, "10.1.0.78", "control", "ARP who-has someone else");

	one(g, &s, "198.51.100.10", "10.1.0.2", IPPROTO_ICMP);
	s.icmp_type = 8;
	s.icmp_id = 0x4242;
	s.icmp_seq = 1;
	s.payload_len = 56;
	build_emit(g, &s, "echo", "ICMP echo request to the node");
	s.dst = pb_addr("10.1.0.100");
	s.icmp_seq = 2;
	build_emit(g, &s, "echo", "ICMP echo request to VIP 10.1.0.100");
	s.dst = pb_addr("10.1.0.77");
	s.icmp_seq = 3;
	build_emit(g, &s, "drop not_local", "ICMP echo request to someone else");
	s.dst = pb_addr("10.1.0.2");
	s.icmp_type = 13;
	s.payload_len = 12;
	build_emit(g, &s, "drop node_other", "ICMP timestamp request to the node");
}

static void gen_tcp(struct gen *g)
{
	const uint8_t SA = PKT_TCP_SYN | PKT_TCP_ACK, A = PKT_TCP_ACK, PA = PKT_TCP_PSH | PKT_TCP_ACK;
	const uint8_t FA = PKT_TCP_FIN | PKT_TCP_ACK;
	struct flow n1 = mkflow("n1", "198.51.100.1", 40001, "10.1.0.100", 80, IPPROTO_TCP);
	struct flow n2 = mkflow("n2", "198.51.100.2", 40002, "10.1.0.100", 80, IPPROTO_TCP);
	struct flow n3 = mkflow("n3", "203.0.113.9", 51000, "10.1.0.100", 80, IPPROTO_TCP);
	struct flow n4 = mkflow("n4", "203.0.113.10", 33333, "10.1.0.100", 80, IPPROTO_TCP);

	/* nat: handshakes interleaved, data both ways, a fragmented segment, FIN and RST ends. */
	new_flow(g, &n1);
	flow_pkt(g, &n1, 0, PKT_TCP_SYN, 0, "n1 SYN");
	new_flow(g, &n2);
	flow_pkt(g, &n2, 0, PKT_TCP_SYN, 0, "n2 SYN");
	flow_pkt(g, &n1, 1, SA, 0, "n1 SYN-ACK from backend");
	flow_pkt(g, &n1, 0, A, 0, "n1 ACK");
	flow_pkt(g, &n2, 1, SA, 0, "n2 SYN-ACK from backend");
	flow_pkt(g, &n2, 0, A, 0, "n2 ACK");
	flow_pkt(g, &n1, 0, PA, 200, "n1 request");
	flow_pkt(g, &n1, 1, PA, 700, "n1 response");
	new_flow(g, &n3);
	flow_pkt(g, &n3, 0, PKT_TCP_SYN, 0, "n3 SYN");
	flow_pkt(g, &n3, 1, SA, 0, "n3 SYN-ACK from backend");
	flow_pkt(g, &n3, 0, A, 0, "n3 ACK");
	flow_frags(g, &n2, 600, 256, "n2 request");
	flow_pkt(g, &n2, 1, A, 0, "n2 ACK from backend");
	flow_pkt(g, &n3, 0, PA, 1000, "n3 request");
	new_flow(g, &n4);
	flow_pkt(g, &n4, 0, PKT_TCP_SYN, 0, "n4 SYN");
	flow_pkt(g, &n4, 1, SA, 0, "n4 SYN-ACK from backend");
	flow_pkt(g, &n1, 0, FA, 0, "n1 FIN");
	flow_pkt(g, &n1, 1, FA, 0, "n1 FIN from backend");
	flow_pkt(g, &n1, 0, A, 0, "n1 last ACK");
	flow_pkt(g, &n3, 1, PA, 1400, "n3 response");
	flow_pkt(g, &n3, 0, PKT_TCP_RST, 0, "n3 RST from client");
	flow_pkt(g, &n4, 0, A, 0, "n4 ACK");
	flow_pkt(g, &n2, 0, FA, 0, "n2 FIN");
	flow_pkt(g, &n2, 1, FA, 0, "n2 FIN from backend");
	flow_pkt(g, &n2, 0, A, 0, "n2 last ACK");
	flow_pkt(g, &n4, 0, PKT_TCP_RST | A, 0, "n4 RST from client");

	/* dsr: only the client's side passes the node; one flow carries an 802.1Q tag. */
	struct flow d[4] = {
		mkflow("d1", "198.51.100.1", 40011, "10.1.0.101", 80, IPPROTO_TCP),
		mkflow("d2", "198.51.100.7", 40012, "10.1.0.101", 80, IPPROTO_TCP),
		mkflow("d3", "203.0.113.20", 60000, "10.1.0.101", 80, IPPROTO_TCP),
		mkflow("d4", "203.0.113.21", 1025, "10.1.0.101", 80, IPPROTO_TCP),
	};
	d[2].vlans = 1;
	d[2].vlan_tci = 100;
	for (int i = 0; i < 4; i++) {
		char t[32];
		new_flow(g, &d[i]);
		snprintf(t, sizeof(t), "%s SYN", d[i].id);
		flow_pkt(g, &d[i], 0, PKT_TCP_SYN, 0, t);
	}
	for (int i = 0; i < 4; i++) {
		char t[32];
		d[i].sseq++;
		snprintf(t, sizeof(t), "%s ACK", d[i].id);
		flow_pkt(g, &d[i], 0, A, 0, t);
		snprintf(t, sizeof(t), "%s request", d[i].id);
		flow_pkt(g, &d[i], 0, PA, 300 + 100u * (unsigned)i, t);
	}
	for (int i = 0; i < 4; i++) {
		char t[32];
		snprintf(t, sizeof(t), "%s FIN", d[i].id);
		flow_pkt(g, &d[i], 0, FA, 0, t);
	}
}

static void gen_udp(struct gen *g)
{
	struct flow u1 = mkflow("u1", "198.51.100.1", 5001, "10.1.0.100", 53, IPPROTO_UDP);
	struct flow u2 = mkflow("u2", "198.51.100.3", 5002, "10.1.0.100", 53, IPPROTO_UDP);
	struct flow u3 = mkflow("u3", "203.0.113.9", 5003, "10.1.0.100", 53, IPPROTO_UDP);
	struct pb_spec s;
	uint8_t fr[PB_MAX_FRAME];
	uint32_t n;

	new_flow(g, &u1);
	flow_pkt(g, &u1, 0, 0, 40, "u1 query");
	flow_pkt(g, &u1, 1, 0, 120, "u1 answer from backend");
	flow_pkt(g, &u1, 0, 0, 41, "u1 second query");
	flow_pkt(g, &u1, 1, 0, 200, "u1 second answer");
	/* IPv4 UDP may carry no checksum (RFC 768): it must stay 0 through the rewrite. */
	new_flow(g, &u2);
	flow_spec(g, &u2, 0, &s);
	s.udp_no_csum = true;
	s.payload_len = 33;
	n = pb_build(&s, fr, sizeof(fr));
	emit(g, fr, n, "fwd u2", "u2 query without UDP checksum");
	flow_spec(g, &u2, 1, &s);
	s.udp_no_csum = true;
	s.payload_len = 90;
	n = pb_build(&s, fr, sizeof(fr));
	emit(g, fr, n, "rev u2", "u2 answer without UDP checksum");
	new_flow(g, &u3);
	flow_pkt(g, &u3, 0, 0, 30, "u3 query");
	flow_frags(g, &u3, 900, 512, "u3 large query");
	flow_pkt(g, &u3, 1, 0, 60, "u3 answer from backend");
}

static void gen_v6(struct gen *g)
{
	struct pb_spec s;
	struct flow s1 = mkflow("s1", "2001:db8:ff::1", 41001, "2001:db8:100::100", 443, IPPROTO_TCP);
	struct flow s2 = mkflow("s2", "2001:db8:ff::2", 41002, "2001:db8:100::100", 443, IPPROTO_TCP);
	struct flow s3 = mkflow("s3", "2001:db8:ff:1::3", 41003, "2001:db8:100::100", 443,
				IPPROTO_TCP);
	uint8_t fr[PB_MAX_FRAME];

	new_flow(g, &s1);
	new_flow(g, &s2);
	new_flow(g, &s3);
	flow_pkt(g, &s1, 0, PKT_TCP_SYN, 0, "s1 SYN (IPv6 dsr)");
	flow_pkt(g, &s2, 0, PKT_TCP_SYN, 0, "s2 SYN (IPv6 dsr)");
	flow_pkt(g, &s3, 0, PKT_TCP_SYN, 0, "s3 SYN (IPv6 dsr)");
	s1.sseq++;
	s2.sseq++;
	s3.sseq++;
	flow_pkt(g, &s1, 0, PKT_TCP_ACK, 0, "s1 ACK");
	flow_frags(g, &s1, 1000, 400, "s1 request");
	/* A hop-by-hop options header: the slow parser path, same flow. */
	flow_spec(g, &s2, 0, &s);
	s.tcp_flags = PKT_TCP_ACK | PKT_TCP_PSH;
	s.payload_len = 64;
	s.n_ext = 1;
	s.ext[0].type = 0;
	s.ext[0].len = 0;
	uint32_t n = pb_build(&s, fr, sizeof(fr));
	emit(g, fr, n, "fwd s2", "s2 request behind a hop-by-hop header");
	s2.cseq += 64;
	flow_pkt(g, &s3, 0, PKT_TCP_ACK | PKT_TCP_FIN, 0, "s3 FIN");
	flow_pkt(g, &s1, 0, PKT_TCP_ACK | PKT_TCP_FIN, 0, "s1 FIN");
	flow_pkt(g, &s2, 0, PKT_TCP_ACK | PKT_TCP_FIN, 0, "s2 FIN");

	one(g, &s, "2001:db8:ff::1", "2001:db8:100::2", IPPROTO_ICMPV6);
	s.icmp_type = 128;
	s.icmp_id = 0x6666;
	s.icmp_seq = 7;
	s.payload_len = 32;
	build_emit(g, &s, "echo", "ICMPv6 echo request to the node");
	ns_req(g, "2001:db8:100::11", "2001:db8:100::2", "nd",
	       "ICMPv6 neighbour solicitation for the node (backend, multicast)");
	ns_req(g, "2001:db8:100::11", "2001:db8:100::12", "control",
	       "ICMPv6 neighbour solicitation for someone else");
	one(g, &s, "2001:db8:ff::1", "2001:db8:100::99", IPPROTO_UDP);
	s.sport = 9999;
	s.dport = 53;
	s.payload_len = 20;
	build_emit(g, &s, "drop not_local", "IPv6 UDP to an address that is not ours");
	one(g, &s, "2001:db8:ff::1", "2001:db8:100::100", IPPROTO_TCP);
	s.dport = 80;
	build_emit(g, &s, "drop no_service", "IPv6 TCP to the v6 VIP on a port without service");
}

/* Frames that are not what they claim, and traffic nobody serves. */
static void gen_bad(struct gen *g)
{
	struct pb_spec s;
	uint8_t fr[PB_MAX_FRAME];
	uint32_t n;

	one(g, &s, "198.51.100.1", "10.1.0.100", IPPROTO_TCP);
	s.dport = 8081;
	build_emit(g, &s, "drop no_service", "TCP SYN to the VIP on a port without service");
	one(g, &s, "198.51.100.1", "10.1.0.2", IPPROTO_TCP);
	s.dport = 22;
	build_emit(g, &s, "drop no_reverse_flow", "TCP SYN to the node, port 22");
	one(g, &s, "10.1.0.11", "10.1.0.2", IPPROTO_UDP);
	s.sport = 5353;
	s.dport = 20999;
	s.payload_len = 10;
	build_emit(g, &s, "drop no_reverse_flow", "UDP to the node matching no nat flow");
	one(g, &s, "198.51.100.1", "10.1.0.100", 47);
	s.payload_len = 24;
	build_emit(g, &s, "drop unsupported", "GRE to the VIP");
	one(g, &s, "198.51.100.1", "10.1.0.100", IPPROTO_TCP);
	s.kind = PB_RAW;
	s.ethertype = 0x88cc;
	s.payload_len = 46;
	build_emit(g, &s, "drop not_local", "LLDP frame (ethertype 0x88cc)");

	/* Malformed: the parser refuses each; fulcrumd counts and drops them. */
	one(g, &s, "198.51.100.1", "10.1.0.100", IPPROTO_TCP);
	s.min_len = 0;
	n = pb_build(&s, fr, sizeof(fr));
	emit(g, fr, 10, "drop malformed", "10-byte frame (truncated Ethernet header)");
	fr[14] = 0x44;
	emit(g, fr, n, "drop malformed", "IPv4 header length 16");
	n = pb_build(&s, fr, sizeof(fr));
	pkt_put16(fr + 16, 1000);
	pb_ip4_csum(fr + 14);
	emit(g, fr, n, "drop malformed", "IPv4 total length beyond the frame");
	n = pb_build(&s, fr, sizeof(fr));
	pkt_put16(fr + 16, 20 + 12);
	pb_ip4_csum(fr + 14);
	emit(g, fr, 14 + 20 + 12, "drop malformed", "TCP header cut short (12 of 20 bytes)");
	n = pb_build(&s, fr, sizeof(fr));
	fr[14 + 20 + 12] = 0x40;
	emit(g, fr, n, "drop malformed", "TCP data offset 4");
	one(g, &s, "198.51.100.1", "10.1.0.100", IPPROTO_UDP);
	s.dport = 53;
	s.payload_len = 20;
	n = pb_build(&s, fr, sizeof(fr));
	pkt_put16(fr + 14 + 20 + 4, 4);
	emit(g, fr, n, "drop malformed", "UDP length 4");
	n = pb_build(&s, fr, sizeof(fr));
	pkt_put16(fr + 14 + 20 + 4, 200);
	emit(g, fr, n, "drop malformed", "UDP length beyond the IP payload");
	arp_req(g, "10.1.0.1", g->gw_mac, "10.1.0.2", "arp", "ARP who-has node, again");
	{
		struct pb_spec a;
		pb_init(&a, ADDR_V4);
		a.kind = PB_ARP;
		memset(a.dst_mac, 0xff, 6);
		memcpy(a.src_mac, g->gw_mac, 6);
		a.src = pb_addr("10.1.0.1");
		a.dst = pb_addr("10.1.0.2");
		n = pb_build(&a, fr, sizeof(fr));
		emit(g, fr, 14 + 20, "drop malformed", "truncated ARP request");
	}
	one(g, &s, "2001:db8:ff::1", "2001:db8:100::100", IPPROTO_TCP);
	s.dport = 443;
	s.payload_len = 40;
	s.min_len = 0;
	n = pb_build(&s, fr, sizeof(fr));
	emit(g, fr, n - 30, "drop malformed", "IPv6 payload length beyond the frame");
	n = pb_build(&s, fr, sizeof(fr));
	fr[14] = 0x45;
	emit(g, fr, n, "drop malformed", "IPv6 ethertype with IP version 4");
	/* RFC 1858: a first fragment too short for the TCP header. */
	one(g, &s, "198.51.100.1", "10.1.0.100", IPPROTO_TCP);
	s.dport = 80;
	s.payload_len = 64;
	s.min_len = 0;
	n = pb_build(&s, fr, sizeof(fr));
	{
		uint8_t a[PB_MAX_FRAME];
		uint32_t na = pb_fragment(fr, n, 0, 8, true, 77, a, sizeof(a));
		if (na == 0)
			die("pb_fragment tiny");
		emit(g, a, na, "drop malformed", "tiny first fragment (8 bytes of TCP)");
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"snat-seed", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	const char *conf = NULL, *out = NULL, *exp = NULL;
	uint64_t seed = DEFAULT_SNAT_SEED;
	struct gen g;
	struct fwd_spec spec;
	char err[1024];
	int c;

	memset(&g, 0, sizeof(g));
	while ((c = getopt_long(argc, argv, "c:o:e:", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'e':
			exp = optarg;
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (conf == NULL || out == NULL || exp == NULL || optind != argc)
		goto usage;
	if (config_load(conf, &g.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "pcapgen: %s\n", err);
		return 1;
	}
	if (config_neigh_static(&g.cfg, &g.cfg.gateway, g.gw_mac) != 1)
		die("the gateway needs a static neighbour entry");
	if (config_to_spec(&g.cfg, 1, port_mac, g.gw_mac, config_neigh_static, &g.cfg, 1, &spec) != 0)
		die("config_to_spec");
	g.st = fwd_state_build(&spec, err, sizeof(err));
	config_spec_free(&spec);
	if (g.st == NULL)
		die(err);
	g.snat = snat_create(&g.cfg.node_v4, g.cfg.dp.snat_port_lo, g.cfg.dp.snat_port_hi, seed);
	g.pcap = fopen(out, "wb");
	g.exp = fopen(exp, "w");
	if (g.snat == NULL || g.pcap == NULL || g.exp == NULL)
		die("cannot create the outputs");
	g.idx = 1;
	pcap_header(g.pcap);
	gen_arp_icmp(&g);
	gen_tcp(&g);
	gen_udp(&g);
	gen_v6(&g);
	gen_bad(&g);
	if (fclose(g.pcap) != 0 || fclose(g.exp) != 0)
		die("closing the outputs");
	printf("%u\n", g.idx - 1);
	snat_destroy(g.snat);
	fwd_state_free(g.st);
	config_free(&g.cfg);
	return 0;
usage:
	fprintf(stderr, "usage: pcapgen -c CONF -o IN.pcap -e EXPECT.txt [--snat-seed N]\n");
	return 2;
}
