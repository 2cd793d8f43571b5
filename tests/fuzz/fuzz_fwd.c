/*
 * Fuzz target: the forwarding decision on any sequence of frames.
 *
 * Input: one control byte, then frames, each a length byte and that many
 * bytes (a short last frame takes what is left). Up to FUZZ_FRAMES frames go
 * through two workers with identical fresh flow tables: one takes them as
 * bursts (fwd_burst), the other one by one (fwd_packet). Control bits: the
 * burst size (1..8 from the low 3 bits, so that packets of one flow land in
 * one burst or in several), the clock step between bursts (bits 3..4:
 * 0, 1 ms, 10 s or 1000 s: the last two expire SYN-only and idle flows), and
 * bits 5..7: after every how many bursts (0 = never) the forwarding state
 * flips between two versions (a backend of each nat and dsr service
 * removed and one drained in the second), so that flows are revalidated,
 * keep their backend or move, in the middle of a sequence.
 *
 * Checked for every frame: both workers give the same verdict, drop reason,
 * service and backend, and leave the same bytes (fwd_burst is documented
 * as n calls of fwd_packet in order); a transmitted or answered frame
 * parses; a checksum that verified before still verifies (nat and the ICMP
 * replies update them incrementally, the neighbour advertisement computes
 * its own). After each input: both tables pass flow_check, hold the same
 * number of flows and SNAT ports in use, and no more ports are in use than
 * flows are live (a port leaks if a flow leaves without returning it).
 * The tables are small (64 flows, 8 SNAT ports) so that eviction, expiry and
 * SNAT exhaustion happen within a few frames.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/csum.h"
#include "dataplane/flow.h"
#include "dataplane/fwd.h"
#include "dataplane/pkt.h"
#include "dataplane/snat.h"
#include "tests/fuzz/fuzz.h"


#define FUZZ_FRAMES 32
#define HEADROOM    64
#define ROOM	    (HEADROOM + 256)
#define SEC	    1000000000ull

static struct fwd_state *state, *state2;

static struct addr a4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	const uint8_t v[4] = {a, b, c, d};
	struct addr x;

	addr_set_v4(&x, v);
	return x;
}

static struct addr a6(uint16_t last)
{
	uint8_t v[16] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00};

	v[14] = (uint8_t)(last >> 8);
	v[15] = (uint8_t)last;
	struct addr x;
	addr_set_v6(&x, v);
	return x;
}

/*
 * The golden test's services, so that its frames make a useful seed corpus.
 * Version 2: each service's second backend is gone and a third, new one is
 * drained (weight 0), so flows of the first keep it, the second's move.
 */
static struct fwd_state *build(int version)
{
	static struct fwd_backend_spec b4[3], b6[3];
	static struct fwd_service_spec svc[7];
	struct fwd_spec spec;
	char err[256];

	for (int i = 0; i < 3; i++) {
		b4[i].addr = a4(10, 1, 0, (uint8_t)(11 + i));
		b4[i].port = 8080;
		b4[i].weight = 1;
		b4[i].uid = 1 + (uint32_t)i;
		b4[i].mac[0] = 2;
		b4[i].mac[5] = (uint8_t)(0x11 + i);
		b4[i].mac_ok = 1;
		b6[i] = b4[i];
		b6[i].addr = a6((uint16_t)(0x11 + i));
		b6[i].port = 443;
		b6[i].uid = 4 + (uint32_t)i;
	}
	uint32_t nb = 2;
	if (version == 2) { /* [0] stays, [1] leaves, [2] arrives drained */
		b4[1] = b4[2];
		b4[1].weight = 0;
		b6[1] = b6[2];
		b6[1].weight = 0;
	}
	memset(svc, 0, sizeof(svc));
	svc[0] = (struct fwd_service_spec){.vip = a4(10, 1, 0, 100), .port = 80,
					   .proto = IPPROTO_TCP, .mode = FWD_MODE_NAT,
					   .n_backends = nb, .backends = b4, .announce = 1};
	svc[1] = svc[0];
	svc[1].port = 53;
	svc[1].proto = IPPROTO_UDP;
	svc[2] = svc[0];
	svc[2].vip = a4(10, 1, 0, 101);
	svc[2].mode = FWD_MODE_DSR;
	svc[2].announce = 0;
	svc[3] = svc[2];
	svc[3].vip = a4(10, 1, 0, 102);
	svc[3].mode = FWD_MODE_TUNNEL;
	svc[4] = (struct fwd_service_spec){.vip = a6(0x100), .port = 443, .proto = IPPROTO_TCP,
					   .mode = FWD_MODE_DSR, .n_backends = nb, .backends = b6,
					   .announce = 1};
	svc[5] = svc[4];
	svc[5].port = 80;
	svc[5].mode = FWD_MODE_NAT;
	svc[6] = svc[1];
	svc[6].vip = a4(10, 1, 0, 2); /* a service on the node address itself, in the SNAT range */
	svc[6].port = 20003;
	svc[6].proto = IPPROTO_TCP;
	memset(&spec, 0, sizeof(spec));
	spec.revision = (uint64_t)version;
	spec.hash_seed = 0x5eed;
	spec.port_mac[0] = 2;
	spec.port_mac[5] = 1;
	spec.gateway_mac[0] = 2;
	spec.gateway_mac[5] = 0xfe;
	spec.node_v4 = a4(10, 1, 0, 2);
	spec.node_v6 = a6(2);
	spec.n_services = 7;
	spec.services = svc;
	spec.n_workers = 2;
	struct fwd_state *st = fwd_state_build(&spec, err, sizeof(err));
	CHECK(st != NULL);
	return st;
}

struct side {
	struct flow_table *flows;
	struct snat_pool *snat4, *snat6;
	struct fwd_worker w;
	uint8_t mem[FUZZ_FRAMES][ROOM];
	struct rw_buf b[FUZZ_FRAMES];
	struct fwd_result r[FUZZ_FRAMES];
};

static void side_init(struct side *s, unsigned id)
{
	s->flows = flow_create(64, NULL, fwd_flow_release, &s->w);
	s->snat4 = snat_create(&state->node_v4, 20000, 20007, 1);
	s->snat6 = snat_create(&state->node_v6, 20000, 20007, 2);
	CHECK(s->flows && s->snat4 && s->snat6);
	fwd_worker_init(&s->w, id, s->flows, s->snat4, s->snat6);
}

static void side_free(struct side *s)
{
	flow_destroy(s->flows);
	snat_destroy(s->snat4);
	snat_destroy(s->snat6);
}

/* Whether the frame's IPv4 header and L4 checksums verify (0 when there is nothing to verify). */
static int csums_ok(const uint8_t *d, uint32_t len)
{
	struct pkt_info pi;

	if (pkt_parse(d, len, &pi) != 0 || (pi.l3 != PKT_L3_IPV4 && pi.l3 != PKT_L3_IPV6) ||
	    pi.frag != PKT_FRAG_NONE)
		return 0;
	if (pi.l3 == PKT_L3_IPV4 && csum_ipv4_hdr(d + pi.l3_off) != pkt_get16(d + pi.l3_off + 10))
		return 0;
	if (csum_l4_field(pi.l4_proto) < 0)
		return 0;
	return csum_l4_verify(&pi.src, &pi.dst, pi.l4_proto, d + pi.l4_off, pi.l4_len) == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct side *a, *b;
	uint32_t len[FUZZ_FRAMES];
	const uint8_t *frame[FUZZ_FRAMES];
	unsigned n = 0;

	if (state == NULL) {
		state = build(1);
		state2 = build(2);
		a = malloc(sizeof(*a));
		b = malloc(sizeof(*b));
		CHECK(a && b);
	}
	if (size < 1)
		return 0;
	unsigned burst = (data[0] & 7) + 1;
	static const uint64_t steps[4] = {0, SEC / 1000, 10 * SEC, 1000 * SEC};
	uint64_t step = steps[(data[0] >> 3) & 3];
	unsigned flip = data[0] >> 5; /* bursts between state flips, 0 = never */
	size_t off = 1;
	while (off < size && n < FUZZ_FRAMES) {
		size_t l = data[off++];
		if (l > size - off)
			l = size - off;
		frame[n] = data + off;
		len[n++] = (uint32_t)l;
		off += l;
	}
	side_init(a, 0);
	side_init(b, 1);
	for (unsigned i = 0; i < n; i++)
		for (struct side *s = a; s != NULL; s = s == a ? b : NULL) {
			memcpy(s->mem[i] + HEADROOM, frame[i], len[i]);
			s->b[i] = (struct rw_buf){.data = s->mem[i] + HEADROOM, .len = len[i],
						  .headroom = HEADROOM};
		}
	uint64_t now = SEC;
	const struct fwd_state *st = state;
	unsigned bursts = 0;
	for (unsigned i = 0; i < n; i += burst) {
		unsigned m = n - i < burst ? n - i : burst;
		fwd_burst(st, &a->w, &a->b[i], m, now, &a->r[i]);
		for (unsigned j = i; j < i + m; j++)
			fwd_packet(st, &b->w, &b->b[j], now, &b->r[j]);
		now += step;
		if (flip != 0 && ++bursts % flip == 0)
			st = st == state ? state2 : state;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct fwd_result *x = &a->r[i], *y = &b->r[i];
		CHECK(x->verdict == y->verdict && x->svc == y->svc && x->backend == y->backend);
		CHECK(x->verdict != FWD_DROP || x->drop == y->drop);
		CHECK(x->verdict != FWD_DROP || x->drop < FWD_DROP__COUNT);
		CHECK(a->b[i].len == b->b[i].len &&
		      a->b[i].data - a->mem[i] == b->b[i].data - b->mem[i] &&
		      memcmp(a->b[i].data, b->b[i].data, a->b[i].len) == 0);
		if (x->verdict == FWD_TX || x->verdict == FWD_REPLY) {
			struct pkt_info po;
			CHECK(pkt_parse(a->b[i].data, a->b[i].len, &po) == 0);
			/* (the tunnel's output is IP-in-IP: nothing of ours to verify above L3) */
			if (csums_ok(frame[i], len[i]) && po.l3 != PKT_L3_ARP &&
			    !(x->verdict == FWD_TX && x->svc == 3))
				CHECK(csums_ok(a->b[i].data, a->b[i].len));
		}
	}
	CHECK(flow_check(a->flows) == 0 && flow_check(b->flows) == 0);
	CHECK(flow_count(a->flows) == flow_count(b->flows));
	CHECK(snat_in_use(a->snat4) == snat_in_use(b->snat4) &&
	      snat_in_use(a->snat6) == snat_in_use(b->snat6));
	/* a port in use belongs to a live flow: none leaks when flows go */
	CHECK(snat_in_use(a->snat4) + snat_in_use(a->snat6) <= flow_count(a->flows));
	side_free(a);
	side_free(b);
	return 0;
}
