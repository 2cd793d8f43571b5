/* pcapcheck: compares fulcrumd's tx pcap with what the golden input must produce, field by field. */
/*
 * usage: pcapcheck -c CONF -i IN.pcap -o OUT.pcap -e EXPECT.txt -s STATS.txt -m PORT_MAC
 *                  [-d DUMP.txt]
 *
 * IN.pcap and EXPECT.txt come from tools/pcapgen.c, OUT.pcap is the tx_pcap
 * fulcrumd wrote, STATS.txt its last SIGUSR1 counter block, PORT_MAC the MAC
 * it logged for the port. One worker and one queue keep the output in input
 * order, so the n-th packet out answers the n-th input that must produce one.
 *
 * Checked for every output packet (all checksums recomputed from scratch
 * with csum_*, never copied from fulcrumd's incremental updates):
 *  - fwd, nat: towards a backend of the service the packet was addressed to
 *    (destination MAC = that backend's neighbour MAC, address and port =
 *    the backend's), from the node address and a port of the SNAT range,
 *    source MAC = the port's; everything else byte for byte as it came in;
 *    IPv4 header and L4 checksums valid (a first fragment's L4 checksum over
 *    the whole datagram, with the later fragment taken from the input).
 *  - fwd, dsr: only the MACs differ from the input; destination = a backend's.
 *  - every packet of a flow to the same backend (and SNAT port); no two nat
 *    flows share a SNAT port.
 *  - rev: a nat reply translated back: from the VIP and service port to the
 *    client's address and port, to the gateway's MAC, checksums valid.
 *  - arp: a reply from the port MAC for the requested address to the asker.
 *  - echo: an echo reply from the address asked to the asker, same id,
 *    sequence and data, checksums valid.
 * Then: no output left over, and fulcrumd's counters (rx, tx, replies,
 * to_control, drops by reason, per service packets, new flows and replies)
 * equal what EXPECT.txt implies. DUMP.txt gets one line per output packet
 * with its parsed fields, the flows' backends and the counters: the script
 * compares it with tests/golden/NAME.expected.
 *
 * Exit 0 when everything matches, 1 on the first mismatch (with a message
 * naming the input packet), 2 on usage or unreadable files.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controlplane/config.h"
#include "dataplane/addr.h"
#include "dataplane/csum.h"
#include "dataplane/fwd.h"
#include "dataplane/pkt.h"

#define MAX_PKTS  4096
#define MAX_FLOWS 256
#define MAX_SVC	  64

struct frame {
	const uint8_t *d;
	uint32_t len;
};

struct capture {
	uint8_t *buf;
	uint32_t n;
	struct frame f[MAX_PKTS];
};

enum action { A_FWD, A_REV, A_ARP, A_ECHO, A_ND, A_CONTROL, A_DROP };

struct expect {
	enum action a;
	char arg[32]; /* flow id or drop reason */
	unsigned frag; /* input index of the later fragment, 0 = none */
	char desc[128];
};

struct flow {
	char id[32];
	int svc;
	struct addr client, vip, be, snat;
	uint16_t cport, vport, be_port, snat_port;
	uint64_t fwd, rev;
};

struct check {
	struct fulcrum_config cfg;
	uint8_t port_mac[6];
	uint8_t gw_mac[6];
	struct capture in, out;
	struct expect *exp;
	unsigned n_exp;
	struct flow flows[MAX_FLOWS];
	unsigned n_flows;
	FILE *dump;
	unsigned cur; /* input index being checked, for messages */
};

static struct check C;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (C.cur != 0 && C.cur <= C.n_exp)
		fprintf(stderr, "pcapcheck: input #%u (%s): ", C.cur, C.exp[C.cur - 1].desc);
	else
		fprintf(stderr, "pcapcheck: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- pcap (libpcap classic format, either byte order, us or ns stamps) ---- */

static uint32_t rd32(const uint8_t *p, int swap)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return swap ? __builtin_bswap32(v) : v;
}

static void read_pcap(const char *path, struct capture *c)
{
	FILE *f = fopen(path, "rb");
	long sz;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		fail("%s: cannot read: %s", path, strerror(errno));
	c->buf = malloc((size_t)sz + 1);
	if (c->buf == NULL || fread(c->buf, 1, (size_t)sz, f) != (size_t)sz)
		fail("%s: cannot read", path);
	fclose(f);
	if (sz < 24)
		fail("%s: not a pcap file (%ld bytes)", path, sz);
	uint32_t magic;
	memcpy(&magic, c->buf, 4);
	int swap;
	if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
		swap = 0;
	else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
		swap = 1;
	else
		fail("%s: not a pcap file (magic %08x)", path, magic);
	if (rd32(c->buf + 20, swap) != 1)
		fail("%s: link type is not Ethernet", path);
	size_t off = 24;
	c->n = 0;
	while (off < (size_t)sz) {
		if (off + 16 > (size_t)sz)
			fail("%s: truncated record header", path);
		uint32_t incl = rd32(c->buf + off + 8, swap), orig = rd32(c->buf + off + 12, swap);
		off += 16;
		if (off + incl > (size_t)sz)
			fail("%s: truncated record", path);
		if (incl != orig)
			fail("%s: record %u captured %u of %u bytes", path, c->n + 1, incl, orig);
		if (c->n == MAX_PKTS)
			fail("%s: more than %d packets", path, MAX_PKTS);
		c->f[c->n].d = c->buf + off;
		c->f[c->n].len = incl;
		c->n++;
		off += incl;
	}
}

/* ---- expectations ---- */

static void read_expect(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	unsigned cap = 0;

	if (f == NULL)
		fail("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash = strchr(line, '#'), act[16] = "", arg[32] = "", extra[32] = "";
		unsigned idx;
		struct expect e;

		memset(&e, 0, sizeof(e));
		if (hash != NULL) {
			*hash = '\0';
			snprintf(e.desc, sizeof(e.desc), "%s", hash + 2);
			e.desc[strcspn(e.desc, "\n")] = '\0';
		}
		int n = sscanf(line, "%u %15s %31s %31s", &idx, act, arg, extra);
		if (n < 2)
			continue;
		if (idx != C.n_exp + 1)
			fail("%s: line for packet %u out of order", path, idx);
		if (strcmp(act, "fwd") == 0)
			e.a = A_FWD;
		else if (strcmp(act, "rev") == 0)
			e.a = A_REV;
		else if (strcmp(act, "arp") == 0)
			e.a = A_ARP;
		else if (strcmp(act, "echo") == 0)
			e.a = A_ECHO;
		else if (strcmp(act, "nd") == 0)
			e.a = A_ND;
		else if (strcmp(act, "control") == 0)
			e.a = A_CONTROL;
		else if (strcmp(act, "drop") == 0)
			e.a = A_DROP;
		else
			fail("%s: unknown action %s", path, act);
		snprintf(e.arg, sizeof(e.arg), "%s", n >= 3 ? arg : "");
		if (n >= 4 && sscanf(extra, "frag=%u", &e.frag) != 1)
			fail("%s: bad field %s", path, extra);
		if (C.n_exp == cap) {
			cap = cap ? cap * 2 : 64;
			C.exp = realloc(C.exp, cap * sizeof(*C.exp));
			if (C.exp == NULL)
				fail("out of memory");
		}
		C.exp[C.n_exp++] = e;
	}
	fclose(f);
}

/* ---- helpers ---- */

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static const char *mac_str(const uint8_t *m, char *b)
{
	sprintf(b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return b;
}

static const char *astr(const struct addr *a, char *b)
{
	return addr_format(a, b, ADDR_STRLEN);
}

static int neigh_of(const struct addr *a, uint8_t mac[6])
{
	return config_neigh_static(&C.cfg, a, mac);
}

static const struct addr *node_addr(int family)
{
	return family == ADDR_V4 ? &C.cfg.node_v4 : &C.cfg.node_v6;
}

static void parse_or_fail(const struct frame *f, struct pkt_info *pi, const char *which)
{
	int rc = pkt_parse(f->d, f->len, pi);
	if (rc != 0)
		fail("%s packet does not parse: %s", which, pkt_err_str(rc));
}

static int find_service(const struct pkt_info *pi)
{
	for (uint32_t i = 0; i < C.cfg.n_services; i++) {
		const struct cfg_service *s = &C.cfg.services[i];
		if (addr_eq(&s->vip, &pi->dst) && s->port == pi->dport && s->proto == pi->l4_proto)
			return (int)i;
	}
	return -1;
}

static struct flow *flow_get(const char *id)
{
	for (unsigned i = 0; i < C.n_flows; i++)
		if (strcmp(C.flows[i].id, id) == 0)
			return &C.flows[i];
	if (C.n_flows == MAX_FLOWS)
		fail("too many flows");
	struct flow *f = &C.flows[C.n_flows++];
	memset(f, 0, sizeof(*f));
	f->svc = -1;
	snprintf(f->id, sizeof(f->id), "%s", id);
	return f;
}

/*
 * The IPv4 header checksum and the L4 checksum, from scratch. For a first
 * fragment the L4 message is this fragment's L4 bytes followed by the later
 * fragment's (from the input), as the receiver would reassemble it.
 */
static void check_csums(const struct frame *f, const struct pkt_info *pi, unsigned frag_idx,
			int udp_zero_ok)
{
	const uint8_t *ip = f->d + pi->l3_off;

	if (pi->l3 == PKT_L3_IPV4) {
		uint16_t want = csum_ipv4_hdr(ip), got = pkt_get16(ip + 10);
		if (want != got)
			fail("IPv4 header checksum %04x, should be %04x", got, want);
	}
	int fo = csum_l4_field(pi->l4_proto);
	if (fo < 0)
		return;
	uint8_t msg[70000];
	uint32_t n = pi->l4_len;
	memcpy(msg, f->d + pi->l4_off, n);
	if (pi->frag == PKT_FRAG_FIRST) {
		struct pkt_info lp;
		if (frag_idx == 0 || frag_idx > C.in.n)
			fail("first fragment without its later fragment in the expectation");
		parse_or_fail(&C.in.f[frag_idx - 1], &lp, "later fragment");
		if (lp.frag != PKT_FRAG_LATER || n + lp.l4_len > sizeof(msg))
			fail("input #%u is not the later fragment", frag_idx);
		memcpy(msg + n, C.in.f[frag_idx - 1].d + lp.l4_off, lp.l4_len);
		n += lp.l4_len;
	} else if (pi->frag != PKT_FRAG_NONE) {
		fail("a later fragment came out");
	}
	uint16_t got = pkt_get16(msg + fo), want;
	if (pi->l4_proto == IPPROTO_UDP && pi->l3 == PKT_L3_IPV4 && got == 0) {
		if (!udp_zero_ok)
			fail("UDP checksum 0 out, but the input had one");
		return;
	}
	if (csum_l4(&pi->src, &pi->dst, pi->l4_proto, msg, n, &want) != 0)
		fail("csum_l4 refused the packet");
	if (want != got)
		fail("L4 (proto %u) checksum %04x, should be %04x", pi->l4_proto, got, want);
}

/*
 * Equal except at the byte ranges listed (pairs of offset, length), which the
 * rewrite is allowed to change.
 */
static void same_except(const struct frame *a, const struct frame *b, const unsigned *skip,
			unsigned n_skip, const char *what)
{
	if (a->len != b->len)
		fail("%s: length %u out, %u in", what, b->len, a->len);
	for (uint32_t i = 0; i < a->len; i++) {
		int skipped = 0;
		for (unsigned k = 0; k < n_skip; k++)
			if (i >= skip[2 * k] && i < skip[2 * k] + skip[2 * k + 1])
				skipped = 1;
		if (!skipped && a->d[i] != b->d[i])
			fail("%s: byte %u is %02x out, %02x in", what, i, b->d[i], a->d[i]);
	}
}

/* The bytes an L3/L4 address-and-port rewrite may touch, besides the MACs. */
static unsigned nat_skips(const struct pkt_info *pi, unsigned *skip)
{
	unsigned n = 0;
	int fo = csum_l4_field(pi->l4_proto);

	skip[n++] = 0, skip[n++] = 12;
	if (pi->l3 == PKT_L3_IPV4) {
		skip[n++] = pi->l3_off + 10u, skip[n++] = 2;
		skip[n++] = pi->l3_off + 12u, skip[n++] = 8;
	} else {
		skip[n++] = pi->l3_off + 8u, skip[n++] = 32;
	}
	skip[n++] = pi->l4_off, skip[n++] = 4;
	if (fo >= 0)
		skip[n++] = pi->l4_off + (unsigned)fo, skip[n++] = 2;
	return n / 2;
}

/* ---- per-action checks ---- */

static void check_fwd(const struct expect *e, const struct frame *in, const struct frame *out)
{
	struct pkt_info pi, po;
	char b1[ADDR_STRLEN], b2[ADDR_STRLEN];
	uint8_t mac[6];

	parse_or_fail(in, &pi, "input");
	parse_or_fail(out, &po, "output");
	int si = find_service(&pi);
	if (si < 0)
		fail("the input is for no service");
	const struct cfg_service *s = &C.cfg.services[si];
	if (po.l3 != pi.l3 || po.vlans != pi.vlans || po.vlan_tci != pi.vlan_tci)
		fail("L2/L3 kind changed");
	if (memcmp(out->d + 6, C.port_mac, 6) != 0)
		fail("source MAC is not the port's");
	const struct cfg_backend *be = NULL;
	uint16_t snat_port = 0;
	if (s->mode == FWD_MODE_DSR) {
		unsigned skip[2] = {0, 12};
		same_except(in, out, skip, 1, "dsr");
		for (uint32_t j = 0; j < s->n_backends; j++)
			if (neigh_of(&s->backends[j].addr, mac) == 1 && memcmp(mac, out->d, 6) == 0)
				be = &s->backends[j];
		if (be == NULL)
			fail("dsr: destination MAC %s is no backend's of %s", mac_str(out->d, b1),
			     s->name);
	} else if (s->mode == FWD_MODE_NAT) {
		unsigned skip[12];
		unsigned ns = nat_skips(&pi, skip);
		same_except(in, out, skip, ns, "nat");
		for (uint32_t j = 0; j < s->n_backends; j++)
			if (addr_eq(&s->backends[j].addr, &po.dst) && s->backends[j].port == po.dport)
				be = &s->backends[j];
		if (be == NULL)
			fail("nat: %s:%u is no backend of %s", astr(&po.dst, b1), po.dport, s->name);
		if (neigh_of(&be->addr, mac) != 1 || memcmp(mac, out->d, 6) != 0)
			fail("nat: destination MAC %s is not backend %s's", mac_str(out->d, b1),
			     astr(&be->addr, b2));
		if (!addr_eq(&po.src, node_addr(po.src.family)))
			fail("nat: source %s is not the node address", astr(&po.src, b1));
		if (po.sport < C.cfg.dp.snat_port_lo || po.sport > C.cfg.dp.snat_port_hi)
			fail("nat: source port %u outside the SNAT range", po.sport);
		snat_port = po.sport;
	} else {
		fail("mode %u not covered by this check", s->mode);
	}
	int zero_ok = pi.l4_proto == IPPROTO_UDP && pi.frag == PKT_FRAG_NONE &&
		      pkt_get16(in->d + pi.l4_off + 6) == 0;
	check_csums(out, &po, e->frag, zero_ok);

	struct flow *f = flow_get(e->arg);
	if (f->svc < 0) {
		f->svc = si;
		f->client = pi.src;
		f->cport = pi.sport;
		f->vip = pi.dst;
		f->vport = pi.dport;
		f->be = be->addr;
		f->be_port = be->port;
		f->snat = po.src;
		f->snat_port = snat_port;
		for (unsigned i = 0; snat_port != 0 && i + 1 < C.n_flows; i++)
			if (C.flows[i].snat_port == snat_port && addr_eq(&C.flows[i].snat, &po.src))
				fail("nat: SNAT port %u already belongs to flow %s", snat_port,
				     C.flows[i].id);
	} else {
		if (f->svc != si || !addr_eq(&f->client, &pi.src) || f->cport != pi.sport)
			fail("flow %s: the input is not that flow's", f->id);
		if (!addr_eq(&f->be, &be->addr) || f->be_port != be->port)
			fail("flow %s moved from backend %s to %s", f->id, astr(&f->be, b1),
			     astr(&be->addr, b2));
		if (f->snat_port != snat_port)
			fail("flow %s: SNAT port %u, was %u", f->id, snat_port, f->snat_port);
	}
	f->fwd++;
}

static void check_rev(const struct expect *e, const struct frame *in, const struct frame *out)
{
	struct pkt_info pi, po;
	char b1[ADDR_STRLEN], b2[ADDR_STRLEN];
	struct flow *f = flow_get(e->arg);

	parse_or_fail(in, &pi, "input");
	parse_or_fail(out, &po, "output");
	if (f->svc < 0 || C.cfg.services[f->svc].mode != FWD_MODE_NAT)
		fail("reply for %s, which is no nat flow seen so far", e->arg);
	/* Not fulcrumd's fault when this fails: pcapgen predicted another backend or port. */
	if (!addr_eq(&pi.src, &f->be) || pi.sport != f->be_port || pi.dport != f->snat_port)
		fail("the generated reply comes from %s:%u to port %u, but flow %s uses %s:%u "
		     "with SNAT port %u (pcapgen mispredicted)",
		     astr(&pi.src, b1), pi.sport, pi.dport, f->id, astr(&f->be, b2), f->be_port,
		     f->snat_port);
	unsigned skip[12];
	unsigned ns = nat_skips(&pi, skip);
	same_except(in, out, skip, ns, "rev");
	if (memcmp(out->d, C.gw_mac, 6) != 0 || memcmp(out->d + 6, C.port_mac, 6) != 0)
		fail("rev: MACs %s > %s, expected port > gateway", mac_str(out->d + 6, b1),
		     mac_str(out->d, b2));
	if (!addr_eq(&po.src, &f->vip) || po.sport != f->vport)
		fail("rev: source %s:%u, expected the VIP %s:%u", astr(&po.src, b1), po.sport,
		     astr(&f->vip, b2), f->vport);
	if (!addr_eq(&po.dst, &f->client) || po.dport != f->cport)
		fail("rev: destination %s:%u, expected the client %s:%u", astr(&po.dst, b1), po.dport,
		     astr(&f->client, b2), f->cport);
	int zero_ok = pi.l4_proto == IPPROTO_UDP && pkt_get16(in->d + pi.l4_off + 6) == 0;
	check_csums(out, &po, 0, zero_ok);
	f->rev++;
}

static const char *act_str(enum action a)
{
	switch (a) {
	case A_FWD: return "fwd";
	case A_REV: return "rev";
	case A_ARP: return "arp";
	case A_ECHO: return "echo";
	case A_ND: return "nd";
	case A_CONTROL: return "control";
	default: return "drop";
	}
}

static void check_arp(const struct frame *in, const struct frame *out)
{
	struct pkt_info pi, po;
	char b1[ADDR_STRLEN];

	parse_or_fail(in, &pi, "input");
	parse_or_fail(out, &po, "output");
	int ok = addr_eq(&pi.dst, &C.cfg.node_v4);
	for (uint32_t i = 0; i < C.cfg.n_services; i++)
		if (C.cfg.services[i].announce && addr_eq(&C.cfg.services[i].vip, &pi.dst))
			ok = 1;
	if (!ok)
		fail("the expectation says arp for %s, which fulcrumd must not answer",
		     astr(&pi.dst, b1));
	if (po.l3 != PKT_L3_ARP || po.arp_op != PKT_ARP_REPLY)
		fail("not an ARP reply");
	if (memcmp(po.arp_sha, C.port_mac, 6) != 0 || !addr_eq(&po.src, &pi.dst))
		fail("ARP reply does not say %s is at the port MAC", astr(&pi.dst, b1));
	if (memcmp(po.arp_tha, pi.arp_sha, 6) != 0 || !addr_eq(&po.dst, &pi.src))
		fail("ARP reply not addressed to the asker");
	if (memcmp(out->d, pi.arp_sha, 6) != 0 || memcmp(out->d + 6, C.port_mac, 6) != 0)
		fail("ARP reply Ethernet addresses");
	if (out->len != in->len)
		fail("ARP reply length %u, request %u", out->len, in->len);
}

static void check_echo(const struct frame *in, const struct frame *out)
{
	struct pkt_info pi, po;

	parse_or_fail(in, &pi, "input");
	parse_or_fail(out, &po, "output");
	uint8_t want_type = pi.l3 == PKT_L3_IPV4 ? 0 : 129;
	if (po.l3 != pi.l3 || po.l4_proto != pi.l4_proto || po.icmp_type != want_type ||
	    po.icmp_code != 0)
		fail("not an echo reply (type %u)", po.icmp_type);
	if (!addr_eq(&po.src, &pi.dst) || !addr_eq(&po.dst, &pi.src))
		fail("echo reply addresses not swapped");
	if (po.ttl != 64)
		fail("echo reply TTL %u", po.ttl);
	if (memcmp(out->d, in->d + 6, 6) != 0 || memcmp(out->d + 6, C.port_mac, 6) != 0)
		fail("echo reply Ethernet addresses");
	if (out->len != in->len || po.l4_len != pi.l4_len ||
	    memcmp(out->d + po.l4_off + 4, in->d + pi.l4_off + 4, pi.l4_len - 4) != 0)
		fail("echo reply id, sequence or data differ");
	check_csums(out, &po, 0, 0);
}

/*
 * The answer to a neighbour solicitation for one of our addresses: a
 * neighbour advertisement (RFC 4861 4.4) from the target to the solicitor,
 * hop limit 255, Solicited and Override set, our MAC in the Target
 * Link-Layer Address option, sent to the solicitor's link-layer address.
 */
static void check_nd(const struct frame *in, const struct frame *out)
{
	struct pkt_info pi, po;
	struct addr target;
	char b1[ADDR_STRLEN];

	parse_or_fail(in, &pi, "input");
	parse_or_fail(out, &po, "output");
	if (pi.l3 != PKT_L3_IPV6 || pi.l4_proto != IPPROTO_ICMPV6 || pi.icmp_type != 135 ||
	    pi.l4_len < 32)
		fail("the expectation says nd, but the input is no solicitation with an option");
	const uint8_t *qi = in->d + pi.l4_off, *qo = out->d + po.l4_off;
	addr_set_v6(&target, qi + 8);
	int ok = addr_eq(&target, &C.cfg.node_v6);
	for (uint32_t i = 0; i < C.cfg.n_services; i++)
		if (C.cfg.services[i].announce && addr_eq(&C.cfg.services[i].vip, &target))
			ok = 1;
	if (!ok)
		fail("the expectation says nd for %s, which fulcrumd must not answer",
		     astr(&target, b1));
	if (po.l3 != PKT_L3_IPV6 || po.l4_proto != IPPROTO_ICMPV6 || po.icmp_type != 136 ||
	    po.icmp_code != 0 || po.l4_len != 32)
		fail("not a 32-byte neighbour advertisement (type %u, %u bytes)", po.icmp_type,
		     po.l4_len);
	if (!addr_eq(&po.src, &target) || !addr_eq(&po.dst, &pi.src))
		fail("advertisement not from %s to the solicitor", astr(&target, b1));
	if (po.ttl != 255)
		fail("advertisement hop limit %u", po.ttl);
	if (qo[4] != 0x60 || memcmp(qo + 8, target.b, 16) != 0)
		fail("advertisement flags %02x or target wrong", qo[4]);
	if (qo[24] != 2 || qo[25] != 1 || memcmp(qo + 26, C.port_mac, 6) != 0)
		fail("advertisement without our MAC as target link-layer address");
	if (memcmp(out->d, qi + 26, 6) != 0 || memcmp(out->d + 6, C.port_mac, 6) != 0)
		fail("advertisement Ethernet addresses");
	check_csums(out, &po, 0, 0);
}

/* ---- dump ---- */

static void dump_pkt(unsigned idx, const struct expect *e, const struct frame *out)
{
	struct pkt_info p;
	char m1[20], m2[20], a1[ADDR_STRLEN], a2[ADDR_STRLEN];
	FILE *d = C.dump;

	if (d == NULL)
		return;
	parse_or_fail(out, &p, "output");
	fprintf(d, "in#%u %s%s%s: %s > %s", idx,
		act_str(e->a),
		e->arg[0] ? " " : "", e->arg, mac_str(out->d + 6, m1), mac_str(out->d, m2));
	if (p.vlans)
		fprintf(d, " vlan %u", p.vlan_tci);
	if (p.l3 == PKT_L3_ARP) {
		fprintf(d, " arp op %u %s is-at %s to %s (%s) len %u\n", p.arp_op, astr(&p.src, a1),
			mac_str(p.arp_sha, m1), astr(&p.dst, a2), mac_str(p.arp_tha, m2), out->len);
		return;
	}
	fprintf(d, " %s %s", p.l3 == PKT_L3_IPV4 ? "ip" : "ip6", astr(&p.src, a1));
	if (p.l4_proto == IPPROTO_TCP || p.l4_proto == IPPROTO_UDP)
		fprintf(d, ".%u", p.sport);
	fprintf(d, " > %s", astr(&p.dst, a2));
	if (p.l4_proto == IPPROTO_TCP || p.l4_proto == IPPROTO_UDP)
		fprintf(d, ".%u", p.dport);
	fprintf(d, " ttl %u len %u", p.ttl, p.l3_len);
	if (p.l3 == PKT_L3_IPV4)
		fprintf(d, " id %u csum %04x", pkt_get16(out->d + p.l3_off + 4),
			pkt_get16(out->d + p.l3_off + 10));
	if (p.frag)
		fprintf(d, " frag %s", p.frag == PKT_FRAG_FIRST ? "first" : "later");
	const uint8_t *l4 = out->d + p.l4_off;
	if (p.l4_proto == IPPROTO_TCP) {
		static const char fl[] = "FSRPAUEC";
		char f[9];
		unsigned k = 0;
		for (unsigned i = 0; i < 8; i++)
			if (p.tcp_flags & (1u << i))
				f[k++] = fl[i];
		f[k] = '\0';
		fprintf(d, " tcp [%s] seq %u ack %u win %u csum %04x", f, pkt_get32(l4 + 4),
			pkt_get32(l4 + 8), pkt_get16(l4 + 14), pkt_get16(l4 + 16));
	} else if (p.l4_proto == IPPROTO_UDP) {
		fprintf(d, " udp len %u csum %04x", pkt_get16(l4 + 4), pkt_get16(l4 + 6));
	} else {
		fprintf(d, " icmp type %u code %u id %u csum %04x", p.icmp_type, p.icmp_code,
			p.icmp_id, pkt_get16(l4 + 2));
	}
	fprintf(d, "\n");
}

/* ---- counters ---- */

/* The service and backend lines of the last block, for the dump. */
static char svc_lines[32768];
static size_t svc_len;

static void keep_line(const char *line)
{
	size_t n = strlen(line);
	if (svc_len + n < sizeof(svc_lines)) {
		memcpy(svc_lines + svc_len, line, n + 1);
		svc_len += n;
	}
}

struct counts {
	uint64_t rx, tx, replies, to_control;
	uint64_t drops[FWD_DROP__COUNT];
	uint64_t svc_pkts[MAX_SVC], svc_new[MAX_SVC], svc_rev[MAX_SVC];
	int have_worker, have_drops, svc_seen[MAX_SVC];
};

/* The last counter block of fulcrumd's SIGUSR1 output (docs/dataplane.md, "Signals"). */
static void read_stats(const char *path, struct counts *c)
{
	FILE *f = fopen(path, "r");
	char line[1024];

	if (f == NULL)
		fail("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "== fulcrumd counters", 20) == 0) {
			memset(c, 0, sizeof(*c));
			svc_len = 0;
			svc_lines[0] = '\0';
			continue;
		}
		if (strncmp(line, "service ", 8) == 0) {
			char name[128];
			uint64_t pk, by, nf, rp;
			if (sscanf(line, "service %127s %*s %*s pkts %" SCNu64 " bytes %" SCNu64
					 " new_flows %" SCNu64 " reply_pkts %" SCNu64,
				   name, &pk, &by, &nf, &rp) != 5)
				fail("%s: cannot read: %s", path, line);
			for (uint32_t i = 0; i < C.cfg.n_services && i < MAX_SVC; i++)
				if (strcmp(C.cfg.services[i].name, name) == 0) {
					c->svc_pkts[i] = pk;
					c->svc_new[i] = nf;
					c->svc_rev[i] = rp;
					c->svc_seen[i] = 1;
				}
			keep_line(line);
			continue;
		}
		if (strncmp(line, "  backend ", 10) == 0) {
			keep_line(line);
			continue;
		}
		if (strncmp(line, "worker 0: ", 10) == 0) {
			if (sscanf(line, "worker 0: rx %" SCNu64 " tx %" SCNu64 " replies %" SCNu64
					 " to_control %" SCNu64,
				   &c->rx, &c->tx, &c->replies, &c->to_control) != 4)
				fail("%s: cannot read: %s", path, line);
			c->have_worker = 1;
			continue;
		}
		if (strncmp(line, "  drops:", 8) == 0) {
			char *tok = strtok(line + 8, " \n");
			c->have_drops = 1;
			while (tok != NULL) {
				char *eq = strchr(tok, '=');
				if (eq != NULL) {
					*eq = '\0';
					unsigned r;
					for (r = 0; r < FWD_DROP__COUNT; r++)
						if (strcmp(fwd_drop_str(r), tok) == 0)
							break;
					if (r == FWD_DROP__COUNT)
						fail("%s: unknown drop reason %s", path, tok);
					c->drops[r] = strtoull(eq + 1, NULL, 10);
				}
				tok = strtok(NULL, " \n");
			}
		}
	}
	fclose(f);
	if (!c->have_worker || !c->have_drops)
		fail("%s: no complete counter block", path);
}

static void check_counts(const char *path)
{
	struct counts got, want;

	C.cur = 0;
	read_stats(path, &got);
	memset(&want, 0, sizeof(want));
	want.rx = C.n_exp;
	for (unsigned i = 0; i < C.n_exp; i++) {
		const struct expect *e = &C.exp[i];
		switch (e->a) {
		case A_FWD:
		case A_REV:
			want.tx++;
			break;
		case A_ARP:
		case A_ECHO:
		case A_ND:
			want.replies++;
			break;
		case A_CONTROL:
			want.to_control++;
			break;
		case A_DROP: {
			unsigned r;
			for (r = 0; r < FWD_DROP__COUNT; r++)
				if (strcmp(fwd_drop_str(r), e->arg) == 0)
					break;
			if (r == FWD_DROP__COUNT)
				fail("expectation #%u: unknown drop reason %s", i + 1, e->arg);
			want.drops[r]++;
			break;
		}
		}
	}
	for (unsigned i = 0; i < C.n_flows; i++) {
		const struct flow *f = &C.flows[i];
		if (f->svc < 0 || f->svc >= MAX_SVC)
			continue;
		want.svc_pkts[f->svc] += f->fwd;
		want.svc_new[f->svc]++;
		want.svc_rev[f->svc] += f->rev;
	}
#define CMP(field, name)                                                                           \
	if (got.field != want.field)                                                               \
		fail("counter %s is %" PRIu64 ", expected %" PRIu64, name, got.field, want.field);
	CMP(rx, "rx")
	CMP(tx, "tx")
	CMP(replies, "replies")
	CMP(to_control, "to_control")
	for (unsigned r = 0; r < FWD_DROP__COUNT; r++)
		CMP(drops[r], fwd_drop_str(r))
	for (uint32_t i = 0; i < C.cfg.n_services && i < MAX_SVC; i++) {
		if (!got.svc_seen[i])
			fail("%s: service %s missing", path, C.cfg.services[i].name);
		CMP(svc_pkts[i], "service pkts")
		CMP(svc_new[i], "service new_flows")
		CMP(svc_rev[i], "service reply_pkts")
	}
#undef CMP
	if (C.dump != NULL) {
		fputs(svc_lines, C.dump);
		fprintf(C.dump, "worker: rx %" PRIu64 " tx %" PRIu64 " replies %" PRIu64
				" to_control %" PRIu64 "\ndrops:",
			got.rx, got.tx, got.replies, got.to_control);
		for (unsigned r = 0; r < FWD_DROP__COUNT; r++)
			if (got.drops[r] != 0)
				fprintf(C.dump, " %s=%" PRIu64, fwd_drop_str(r), got.drops[r]);
		fprintf(C.dump, "\n");
	}
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *in = NULL, *out = NULL, *exp = NULL, *stats = NULL, *mac = NULL;
	const char *dump = NULL;
	char err[1024], b1[ADDR_STRLEN], b2[ADDR_STRLEN];
	int c;

	while ((c = getopt(argc, argv, "c:i:o:e:s:m:d:")) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 'e': exp = optarg; break;
		case 's': stats = optarg; break;
		case 'm': mac = optarg; break;
		case 'd': dump = optarg; break;
		default: goto usage;
		}
	}
	if (!conf || !in || !out || !exp || !stats || !mac || optind != argc)
		goto usage;
	if (config_load(conf, &C.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "pcapcheck: %s\n", err);
		return 2;
	}
	if (parse_mac(mac, C.port_mac) != 0 || config_neigh_static(&C.cfg, &C.cfg.gateway, C.gw_mac) != 1)
		goto usage;
	read_pcap(in, &C.in);
	read_pcap(out, &C.out);
	read_expect(exp);
	if (C.n_exp != C.in.n)
		fail("%s lists %u packets, %s holds %u", exp, C.n_exp, in, C.in.n);
	if (dump != NULL && (C.dump = fopen(dump, "w")) == NULL)
		fail("%s: %s", dump, strerror(errno));

	unsigned o = 0;
	for (unsigned i = 0; i < C.n_exp; i++) {
		const struct expect *e = &C.exp[i];
		C.cur = i + 1;
		if (e->a == A_DROP || e->a == A_CONTROL)
			continue;
		if (o == C.out.n)
			fail("expected output (%s %s), but the capture ended after %u packets",
			     act_str(e->a),
			     e->arg, C.out.n);
		const struct frame *fo = &C.out.f[o++];
		switch (e->a) {
		case A_FWD: check_fwd(e, &C.in.f[i], fo); break;
		case A_REV: check_rev(e, &C.in.f[i], fo); break;
		case A_ARP: check_arp(&C.in.f[i], fo); break;
		case A_ECHO: check_echo(&C.in.f[i], fo); break;
		case A_ND: check_nd(&C.in.f[i], fo); break;
		default: break;
		}
		dump_pkt(i + 1, e, fo);
	}
	C.cur = 0;
	if (o != C.out.n)
		fail("%u unexpected packets out after the last expected one", C.out.n - o);
	for (unsigned i = 0; i < C.n_flows; i++) {
		const struct flow *f = &C.flows[i];
		if (C.dump == NULL || f->svc < 0)
			continue;
		char b3[ADDR_STRLEN];
		fprintf(C.dump, "flow %s %s: %s.%u > %s.%u backend %s.%u", f->id,
			C.cfg.services[f->svc].name, astr(&f->client, b1), f->cport, astr(&f->vip, b2),
			f->vport, astr(&f->be, b3), f->be_port);
		if (f->snat_port)
			fprintf(C.dump, " snat %s.%u", astr(&f->snat, b2), f->snat_port);
		fprintf(C.dump, " fwd %" PRIu64 " rev %" PRIu64 "\n", f->fwd, f->rev);
	}
	check_counts(stats);
	if (C.dump != NULL && fclose(C.dump) != 0)
		fail("%s: write error", dump);
	printf("pcapcheck: %u packets in, %u out, %u flows: all as expected\n", C.in.n, C.out.n,
	       C.n_flows);
	free(C.exp);
	free(C.in.buf);
	free(C.out.buf);
	config_free(&C.cfg);
	return 0;
usage:
	fprintf(stderr, "usage: pcapcheck -c CONF -i IN.pcap -o OUT.pcap -e EXPECT.txt -s STATS.txt "
			"-m PORT_MAC [-d DUMP.txt]\n");
	return 2;
}
