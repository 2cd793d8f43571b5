/* Tests of the forwarding decision (dataplane/fwd.c) on real frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "dataplane/csum.h"
#include "dataplane/fwd.h"
#include "dataplane/pkt.h"
#include "tests/unit/pktbuild.h"

#define SEC 1000000000ull
#define HEADROOM 128
#define NB 4

static const uint8_t PORT_MAC[6] = {0x02, 0xaa, 0, 0, 0, 0x01};
static const uint8_t GW_MAC[6] = {0x02, 0xee, 0, 0, 0, 0x01};

struct fx {
	struct fwd_backend_spec be[8];
	struct fwd_service_spec svc[4];
	struct fwd_spec spec;
	struct fwd_state *st;
	struct flow_table *flows;
	struct snat_pool *snat4, *snat6;
	struct fwd_worker w;
	uint8_t mem[HEADROOM + PB_MAX_FRAME];
	struct rw_buf buf;
};

static void backend_mac(uint8_t mac[6], unsigned i)
{
	const uint8_t m[6] = {0x02, 0xbb, 0, 0, 0, (uint8_t)(0x10 + i)};
	memcpy(mac, m, 6);
}

/* Service 0: 198.51.100.1:80/tcp in mode `mode` with backends 10.0.0.1..NB (v4). */
static void fx_spec(struct fx *f, uint8_t mode)
{
	memset(&f->spec, 0, sizeof(f->spec));
	for (unsigned i = 0; i < NB; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.0.0.%u", i + 1);
		f->be[i].addr = pb_addr(ip);
		f->be[i].port = 8080;
		f->be[i].weight = 1;
		f->be[i].uid = 100 + i;
		backend_mac(f->be[i].mac, i);
		f->be[i].mac_ok = 1;
	}
	f->svc[0].vip = pb_addr("198.51.100.1");
	f->svc[0].port = 80;
	f->svc[0].proto = IPPROTO_TCP;
	f->svc[0].mode = mode;
	f->svc[0].table_size = 251;
	f->svc[0].n_backends = NB;
	f->svc[0].backends = f->be;
	f->spec.revision = 7;
	f->spec.hash_seed = 0x1234;
	memcpy(f->spec.port_mac, PORT_MAC, 6);
	memcpy(f->spec.gateway_mac, GW_MAC, 6);
	f->spec.node_v4 = pb_addr("192.0.2.100");
	f->spec.node_v6 = pb_addr("2001:db8:ff::100");
	f->spec.n_services = 1;
	f->spec.services = f->svc;
	f->spec.n_workers = 2;
}

static struct fwd_state *fx_build(struct fx *f)
{
	char err[256];
	struct fwd_state *st = fwd_state_build(&f->spec, err, sizeof(err));
	if (st == NULL)
		print_message("build failed: %s\n", err);
	return st;
}

static struct fx *fx_new(uint8_t mode, uint32_t capacity, uint16_t snat_lo, uint16_t snat_hi)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	fx_spec(f, mode);
	f->st = fx_build(f);
	assert_non_null(f->st);
	if (snat_lo != 0) {
		f->snat4 = snat_create(&f->spec.node_v4, snat_lo, snat_hi, 1);
		f->snat6 = snat_create(&f->spec.node_v6, snat_lo, snat_hi, 2);
		assert_non_null(f->snat4);
		assert_non_null(f->snat6);
	}
	f->flows = flow_create(capacity, NULL, fwd_flow_release, &f->w);
	assert_non_null(f->flows);
	fwd_worker_init(&f->w, 1, f->flows, f->snat4, f->snat6);
	return f;
}

/* Replace f's state by one built from its (changed) spec, as a worker would see it. */
static void fx_rebuild(struct fx *f)
{
	struct fwd_state *old = f->st;

	f->st = fx_build(f);
	assert_non_null(f->st);
	fwd_state_free(old);
}

static void fx_free(struct fx *f)
{
	flow_destroy(f->flows);
	snat_destroy(f->snat4);
	snat_destroy(f->snat6);
	fwd_state_free(f->st);
	free(f);
}

/* Put a frame built from s into f's buffer (with headroom). */
static void fx_load(struct fx *f, const struct pb_spec *s)
{
	uint32_t n = pb_build(s, f->mem + HEADROOM, PB_MAX_FRAME);
	assert_true(n > 0);
	f->buf.data = f->mem + HEADROOM;
	f->buf.len = n;
	f->buf.headroom = HEADROOM;
}

static int fx_send(struct fx *f, const struct pb_spec *s, uint64_t now, struct fwd_result *r)
{
	fx_load(f, s);
	return fwd_packet(f->st, &f->w, &f->buf, now, r);
}

static void client_syn(struct pb_spec *s, uint32_t client, uint16_t sport)
{
	uint8_t ip[4] = {172, 16, (uint8_t)(client >> 8), (uint8_t)client};
	pb_init(s, ADDR_V4);
	addr_set_v4(&s->src, ip);
	s->dst = pb_addr("198.51.100.1");
	s->sport = sport;
	s->dport = 80;
	s->tcp_flags = PKT_TCP_SYN;
}

/* Parse the output frame and check every checksum from scratch. */
static void check_frame(const struct rw_buf *b, struct pkt_info *pi)
{
	assert_int_equal(pkt_parse(b->data, b->len, pi), 0);
	if (pi->l3 == PKT_L3_IPV4)
		assert_int_equal(csum_ipv4_hdr(b->data + pi->l3_off),
				 pkt_get16(b->data + pi->l3_off + 10));
	if (pi->l3 == PKT_L3_IPV4 || pi->l3 == PKT_L3_IPV6)
		assert_int_equal(csum_l4_verify(&pi->src, &pi->dst, pi->l4_proto,
						b->data + pi->l4_off, pi->l4_len),
				 1);
}

static unsigned backend_of_mac(const uint8_t *frame)
{
	for (unsigned i = 0; i < NB; i++) {
		uint8_t m[6];
		backend_mac(m, i);
		if (memcmp(frame, m, 6) == 0)
			return i;
	}
	fail_msg("destination MAC is no backend's");
	return 0;
}

static void test_build_validation(void **state)
{
	(void)state;
	struct fx f;
	char err[256];

	fx_spec(&f, FWD_MODE_DSR);
	f.svc[0].proto = IPPROTO_ICMP;
	assert_null(fwd_state_build(&f.spec, err, sizeof(err)));
	assert_non_null(strstr(err, "198.51.100.1:80"));

	fx_spec(&f, FWD_MODE_DSR);
	f.svc[0].table_size = 250; /* not prime */
	assert_null(fwd_state_build(&f.spec, err, sizeof(err)));
	assert_non_null(strstr(err, "Maglev"));

	fx_spec(&f, FWD_MODE_DSR);
	f.be[2].uid = f.be[1].uid;
	assert_null(fwd_state_build(&f.spec, err, sizeof(err)));
	assert_non_null(strstr(err, "duplicate uid"));
	assert_true(strstr(err, "10.0.0.3") != NULL || strstr(err, "10.0.0.2") != NULL);

	fx_spec(&f, FWD_MODE_NAT);
	f.spec.node_v4.family = ADDR_NONE;
	memset(f.spec.node_v4.b, 0, 16);
	assert_null(fwd_state_build(&f.spec, err, sizeof(err)));
	assert_non_null(strstr(err, "node address"));

	fx_spec(&f, FWD_MODE_DSR);
	f.be[0].addr = pb_addr("2001:db8::5"); /* v6 backend behind a v4 VIP */
	assert_null(fwd_state_build(&f.spec, err, sizeof(err)));

	fx_spec(&f, FWD_MODE_DSR);
	f.svc[1] = f.svc[0];
	f.spec.n_services = 2;
	assert_null(fwd_state_build(&f.spec, err, sizeof(err)));
	assert_non_null(strstr(err, "twice"));

	fx_spec(&f, 9);
	assert_null(fwd_state_build(&f.spec, err, sizeof(err)));

	/* a flow entry caches the backend index in 16 bits */
	fx_spec(&f, FWD_MODE_DSR);
	f.svc[0].n_backends = FWD_MAX_BACKENDS + 1;
	assert_null(fwd_state_build(&f.spec, err, sizeof(err)));
	assert_non_null(strstr(err, "65536 backends (at most 65535)"));

	fx_spec(&f, FWD_MODE_DSR);
	struct fwd_state *st = fwd_state_build(&f.spec, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(fwd_find_service(st, &f.svc[0].vip, 80, IPPROTO_TCP), 0);
	assert_int_equal(fwd_find_service(st, &f.svc[0].vip, 81, IPPROTO_TCP), UINT32_MAX);
	assert_int_equal(fwd_find_service(st, &f.svc[0].vip, 80, IPPROTO_UDP), UINT32_MAX);
	fwd_state_free(st);
}

static void test_dsr_flow_sticks(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_DSR, 1024, 0, 0);
	struct fwd_result r;
	struct pb_spec s;
	uint8_t orig[PB_MAX_FRAME];
	unsigned seen[NB] = {0};

	for (uint32_t c = 0; c < 400; c++) {
		client_syn(&s, c, (uint16_t)(10000 + c));
		fx_load(f, &s);
		memcpy(orig, f->buf.data, f->buf.len);
		assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_TX);
		unsigned b = backend_of_mac(f->buf.data);
		assert_int_equal(r.backend, b);
		assert_memory_equal(f->buf.data + 6, PORT_MAC, 6);
		/* dsr: L3 and up untouched */
		assert_memory_equal(f->buf.data + 12, orig + 12, f->buf.len - 12);
		seen[b]++;
		/* the rest of the flow goes to the same backend */
		s.tcp_flags = PKT_TCP_ACK;
		for (int k = 0; k < 3; k++) {
			assert_int_equal(fx_send(f, &s, SEC + (uint64_t)k, &r), FWD_TX);
			assert_int_equal(backend_of_mac(f->buf.data), b);
		}
	}
	for (unsigned i = 0; i < NB; i++)
		assert_true(seen[i] > 40); /* 400 flows over 4 equal backends */

	struct fwd_counter sum;
	fwd_counter_sum(f->st, f->st->services[0].counter, &sum);
	assert_int_equal(sum.new_flows, 400);
	assert_int_equal(sum.pkts, 1600);
	uint64_t be_flows = 0;
	for (unsigned i = 0; i < NB; i++) {
		fwd_counter_sum(f->st, f->st->services[0].backends[i].counter, &sum);
		be_flows += sum.new_flows;
	}
	assert_int_equal(be_flows, 400);
	assert_int_equal(flow_count(f->flows), 400);
	fx_free(f);
}

static void test_nat_both_ways(void **state)
{
	(void)state;
	for (int fam = 0; fam < 2; fam++) {
		struct fx *f = fx_new(FWD_MODE_NAT, 1024, 20000, 20999);
		struct fwd_result r;
		struct pkt_info pi;
		struct pb_spec s;

		if (fam == 1) { /* an IPv6 service with v6 backends */
			fwd_state_free(f->st);
			for (unsigned i = 0; i < NB; i++) {
				char ip[64];
				snprintf(ip, sizeof(ip), "2001:db8:b::%u", i + 1);
				f->be[i].addr = pb_addr(ip);
			}
			f->svc[0].vip = pb_addr("2001:db8:1::1");
			f->st = fx_build(f);
			assert_non_null(f->st);
		}
		pb_init(&s, fam ? ADDR_V6 : ADDR_V4);
		s.payload_len = 100;
		assert_int_equal(fx_send(f, &s, SEC, &r), FWD_TX);
		check_frame(&f->buf, &pi);
		const struct fwd_backend *be = &f->st->services[0].backends[r.backend];
		assert_true(addr_eq(&pi.dst, &be->addr));
		assert_int_equal(pi.dport, 8080);
		assert_true(addr_eq(&pi.src, fam ? &f->spec.node_v6 : &f->spec.node_v4));
		assert_in_range(pi.sport, 20000, 20999);
		assert_memory_equal(f->buf.data, be->mac, 6);
		uint16_t snat_port = pi.sport;

		/* the backend answers to the SNAT address and port */
		struct pb_spec rep;
		pb_init(&rep, fam ? ADDR_V6 : ADDR_V4);
		rep.src = be->addr;
		rep.dst = fam ? f->spec.node_v6 : f->spec.node_v4;
		rep.sport = 8080;
		rep.dport = snat_port;
		rep.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
		rep.payload_len = 33;
		assert_int_equal(fx_send(f, &rep, SEC + 1, &r), FWD_TX);
		check_frame(&f->buf, &pi);
		assert_true(addr_eq(&pi.src, &s.dst));
		assert_int_equal(pi.sport, 80);
		assert_true(addr_eq(&pi.dst, &s.src));
		assert_int_equal(pi.dport, s.sport);
		assert_memory_equal(f->buf.data, GW_MAC, 6);
		assert_memory_equal(f->buf.data + 6, PORT_MAC, 6);

		/* a reply nobody asked for */
		rep.dport = (uint16_t)(snat_port + 1);
		assert_int_equal(fx_send(f, &rep, SEC + 2, &r), FWD_DROP);
		assert_int_equal(r.drop, FWD_DROP_NO_REVERSE_FLOW);

		struct fwd_counter sum;
		fwd_counter_sum(f->st, f->st->services[0].counter, &sum);
		assert_int_equal(sum.pkts, 1);
		assert_int_equal(sum.reply_pkts, 1);
		assert_int_equal(snat_in_use(f->snat4) + snat_in_use(f->snat6), 1);
		fx_free(f);
	}
}

/*
 * A nat service on the node address itself, on a port inside the SNAT range:
 * a backend's reply to the flow whose SNAT port equals that service port
 * classifies as a packet to the service, and its key is the flow's reply
 * key. It is dropped as a conflict; it must not become a new flow nor touch
 * the nat flow it collides with.
 */
static void test_vip_key_is_reply_key(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_NAT, 64, 0, 0);
	struct fwd_result r;
	struct pkt_info pi;
	struct pb_spec s, rep;

	fwd_state_free(f->st);
	f->svc[1] = f->svc[0];
	f->svc[1].vip = f->spec.node_v4;
	f->svc[1].port = 20000;
	f->spec.n_services = 2;
	f->st = fx_build(f);
	assert_non_null(f->st);
	f->snat4 = snat_create(&f->spec.node_v4, 20000, 20000, 1); /* the one port: 20000 */
	assert_non_null(f->snat4);
	fwd_worker_init(&f->w, 1, f->flows, f->snat4, NULL);

	client_syn(&s, 1, 40000);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	assert_int_equal(pi.sport, 20000);
	const struct fwd_backend *be = &f->st->services[0].backends[r.backend];

	pb_init(&rep, ADDR_V4);
	rep.src = be->addr;
	rep.dst = f->spec.node_v4;
	rep.sport = 8080;
	rep.dport = 20000;
	rep.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
	assert_int_equal(fx_send(f, &rep, SEC + 1, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_NAT_CONFLICT);
	assert_int_equal(flow_count(f->flows), 1);

	/* the nat flow itself is intact: the client's next packet goes the same way */
	s.tcp_flags = PKT_TCP_ACK;
	assert_int_equal(fx_send(f, &s, SEC + 2, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	assert_true(addr_eq(&pi.dst, &be->addr));
	assert_int_equal(pi.sport, 20000);
	fx_free(f);
}

/*
 * A neighbour solicitation: from `src` (mac smac) to `dst`, asking for
 * `target`, with the given options bytes (a multiple of 8) and hop limit.
 */
static void ns_frame(struct fx *f, const char *src, const char *dst, const char *target,
		     const uint8_t *opts, uint32_t opts_len, uint8_t hops)
{
	static const uint8_t smac[6] = {0x02, 0xcc, 0, 0, 0, 0x07};
	uint8_t payload[16 + 16];
	struct pb_spec s;
	struct addr t = pb_addr(target);
	struct pkt_info pi;

	pb_init(&s, ADDR_V6);
	s.src = pb_addr(src);
	s.dst = pb_addr(dst);
	memcpy(s.src_mac, smac, 6);
	s.proto = IPPROTO_ICMPV6;
	s.icmp_type = 135;
	s.ttl = hops;
	memcpy(payload, t.b, 16);
	if (opts_len > 0)
		memcpy(payload + 16, opts, opts_len);
	s.payload = payload;
	s.payload_len = 16 + opts_len;
	fx_load(f, &s);
	assert_int_equal(pkt_parse(f->buf.data, f->buf.len, &pi), 0);
	assert_int_equal(csum_l4_fill(&pi.src, &pi.dst, IPPROTO_ICMPV6, f->buf.data + pi.l4_off,
				      pi.l4_len),
			 0);
}

/* The advertisement in f's buffer: valid, from `from` to `to`, flags, option or not. */
static void check_na(struct fx *f, const char *from, const char *to, const uint8_t dmac[6],
		     uint8_t flags, int with_tlla)
{
	struct pkt_info pi;
	check_frame(&f->buf, &pi);
	const uint8_t *ip = f->buf.data + pi.l3_off, *icmp = f->buf.data + pi.l4_off;
	struct addr a = pb_addr(from), b = pb_addr(to);

	assert_memory_equal(f->buf.data, dmac, 6);
	assert_memory_equal(f->buf.data + 6, PORT_MAC, 6);
	assert_true(addr_eq(&pi.src, &a));
	assert_true(addr_eq(&pi.dst, &b));
	assert_int_equal(ip[7], 255);
	assert_int_equal(pi.icmp_type, 136);
	assert_int_equal(pi.icmp_code, 0);
	assert_int_equal(icmp[4], flags);
	assert_memory_equal(icmp + 8, a.b, 16); /* target */
	assert_int_equal(pi.l4_len, with_tlla ? 32u : 24u);
	assert_int_equal(f->buf.len, pi.l4_off + pi.l4_len);
	if (with_tlla) {
		assert_int_equal(icmp[24], 2);
		assert_int_equal(icmp[25], 1);
		assert_memory_equal(icmp + 26, PORT_MAC, 6);
	}
}

static void test_neighbour_solicitation(void **state)
{
	(void)state;
	static const uint8_t slla[8] = {1, 1, 0x02, 0xdd, 0, 0, 0, 0x09};
	static const uint8_t nonce[8] = {14, 1, 1, 2, 3, 4, 5, 6};
	static const uint8_t bad_opt[8] = {1, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
	static const uint8_t smac[6] = {0x02, 0xcc, 0, 0, 0, 0x07};
	struct fx *f = fx_new(FWD_MODE_DSR, 64, 0, 0);
	struct fwd_result r;

	/* multicast NS for the node address with the solicitor's MAC: NA to that MAC */
	ns_frame(f, "fe80::7", "ff02::1:ff00:100", "2001:db8:ff::100", slla, 8, 255);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_REPLY);
	check_na(f, "2001:db8:ff::100", "fe80::7", slla + 2, 0x60, 1);

	/* unicast NS without options: NA without the option, to the frame's source MAC */
	ns_frame(f, "2001:db8:ff::7", "2001:db8:ff::100", "2001:db8:ff::100", NULL, 0, 255);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_REPLY);
	check_na(f, "2001:db8:ff::100", "2001:db8:ff::7", smac, 0x60, 0);

	/* duplicate address probe for our address: defended towards all nodes, not solicited */
	ns_frame(f, "::", "ff02::1:ff00:100", "2001:db8:ff::100", nonce, 8, 255);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_REPLY);
	check_na(f, "2001:db8:ff::100", "ff02::1", all_nodes_mac, 0x20, 1);

	/* invalid (RFC 4861 7.1.1): hop limit, zero-length option, :: with a source MAC */
	ns_frame(f, "fe80::7", "ff02::1:ff00:100", "2001:db8:ff::100", slla, 8, 64);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_ND_OTHER);
	ns_frame(f, "fe80::7", "ff02::1:ff00:100", "2001:db8:ff::100", bad_opt, 8, 255);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_ND_OTHER);
	ns_frame(f, "::", "ff02::1:ff00:100", "2001:db8:ff::100", slla, 8, 255);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_ND_OTHER);
	/* a wrong checksum (the last byte of the source MAC option changed) */
	ns_frame(f, "fe80::7", "ff02::1:ff00:100", "2001:db8:ff::100", slla, 8, 255);
	f->buf.data[f->buf.len - 1] ^= 0x10;
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_ND_OTHER);
	assert_int_equal(f->w.drops[FWD_DROP_ND_OTHER], 4);

	/* someone else's address: the control thread learns from it; the frame is untouched */
	ns_frame(f, "fe80::7", "ff02::1:ff00:55", "2001:db8:ff::55", slla, 8, 255);
	uint8_t before[PB_MAX_FRAME];
	memcpy(before, f->buf.data, f->buf.len);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_CONTROL);
	assert_memory_equal(f->buf.data, before, f->buf.len);

	/* a VIP: answered only when its service announces */
	fwd_state_free(f->st);
	f->svc[0].vip = pb_addr("2001:db8:1::1");
	for (unsigned i = 0; i < NB; i++) {
		char ip[64];
		snprintf(ip, sizeof(ip), "2001:db8:b::%u", i + 1);
		f->be[i].addr = pb_addr(ip);
	}
	f->st = fx_build(f);
	assert_non_null(f->st);
	ns_frame(f, "fe80::7", "ff02::1:ff00:1", "2001:db8:1::1", slla, 8, 255);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_CONTROL);
	fwd_state_free(f->st);
	f->svc[0].announce = 1;
	f->st = fx_build(f);
	assert_non_null(f->st);
	ns_frame(f, "fe80::7", "ff02::1:ff00:1", "2001:db8:1::1", slla, 8, 255);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_REPLY);
	check_na(f, "2001:db8:1::1", "fe80::7", slla + 2, 0x60, 1);
	fx_free(f);
}

static void test_tunnel(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_TUNNEL, 64, 0, 0);
	struct fwd_result r;
	struct pkt_info pi;
	struct pb_spec s;
	uint8_t inner[PB_MAX_FRAME];
	uint32_t inner_len;

	pb_init(&s, ADDR_V4);
	s.dst = pb_addr("198.51.100.1");
	s.payload_len = 50;
	fx_load(f, &s);
	inner_len = f->buf.len - 14;
	memcpy(inner, f->buf.data + 14, inner_len);
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_TX);
	assert_int_equal(pkt_parse(f->buf.data, f->buf.len, &pi), 0);
	assert_int_equal(pi.l3, PKT_L3_IPV4);
	assert_int_equal(pi.l4_proto, 4); /* IP-in-IP */
	assert_true(addr_eq(&pi.src, &f->spec.node_v4));
	assert_true(addr_eq(&pi.dst, &f->st->services[0].backends[r.backend].addr));
	assert_int_equal(csum_ipv4_hdr(f->buf.data + 14), pkt_get16(f->buf.data + 14 + 10));
	assert_int_equal(f->buf.len, 14 + 20 + inner_len);
	assert_memory_equal(f->buf.data + 34, inner, inner_len);
	fx_free(f);
}

/* Flows keep their backend across a state change while it stays; drained ones too. */
static void test_state_change_keeps_flows(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_DSR, 4096, 0, 0);
	struct fwd_result r;
	struct pb_spec s;
	unsigned before[600];

	for (uint32_t c = 0; c < 600; c++) {
		client_syn(&s, c, 5555);
		assert_int_equal(fx_send(f, &s, SEC, &r), FWD_TX);
		before[c] = f->st->services[0].backends[r.backend].uid;
	}

	/* New state: backend uid 101 drains, a fifth backend joins, order shuffled. */
	struct fwd_state *old = f->st;
	f->be[1].weight = 0;
	f->be[NB] = f->be[0];
	f->be[NB].addr = pb_addr("10.0.0.50");
	f->be[NB].uid = 150;
	struct fwd_backend_spec tmp = f->be[0];
	f->be[0] = f->be[3];
	f->be[3] = tmp;
	f->svc[0].n_backends = NB + 1;
	f->st = fx_build(f);
	assert_non_null(f->st);
	assert_true(f->st->gen != old->gen);

	unsigned kept = 0, to_drained_new = 0, moved_new = 0;
	for (uint32_t c = 0; c < 600; c++) {
		client_syn(&s, c, 5555);
		s.tcp_flags = PKT_TCP_ACK;
		assert_int_equal(fx_send(f, &s, 2 * SEC, &r), FWD_TX);
		assert_int_equal(f->st->services[0].backends[r.backend].uid, before[c]);
		kept++;
		/* a new flow from the same client never goes to the draining backend */
		client_syn(&s, c, 6666);
		assert_int_equal(fx_send(f, &s, 2 * SEC, &r), FWD_TX);
		uint32_t uid = f->st->services[0].backends[r.backend].uid;
		if (uid == 101)
			to_drained_new++;
		if (uid == 150)
			moved_new++;
	}
	assert_int_equal(kept, 600);
	assert_int_equal(to_drained_new, 0);
	assert_true(moved_new > 60); /* the new backend gets new flows (~1/4 of 600) */

	/* Remove backend uid 100 entirely: its flows move by the table. */
	fwd_state_free(old);
	old = f->st;
	f->svc[0].n_backends = NB; /* drops the one now at index NB... */
	f->be[3] = f->be[NB];      /* ...after moving it over uid 100 */
	f->st = fx_build(f);
	assert_non_null(f->st);
	unsigned moved = 0;
	for (uint32_t c = 0; c < 600; c++) {
		client_syn(&s, c, 5555);
		s.tcp_flags = PKT_TCP_ACK;
		assert_int_equal(fx_send(f, &s, 3 * SEC, &r), FWD_TX);
		uint32_t uid = f->st->services[0].backends[r.backend].uid;
		assert_true(uid != 100);
		if (before[c] == 100)
			moved++;
		else
			assert_int_equal(uid, before[c]);
	}
	assert_true(moved > 60);
	fwd_state_free(old);
	fx_free(f);
}

/*
 * A nat flow's forward rewrite takes its SNAT address from the state (line 0
 * of the entry does not hold it). So a flow keeps its mapping across a state
 * change that keeps the node address; a flow whose SNAT address is no longer
 * the node's, or that has no mapping because the service was dsr when it
 * started, starts over with a fresh mapping on the current address instead
 * of going out with a source that replies would not come back to.
 */
static void test_nat_mapping_follows_state(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_NAT, 1024, 20000, 20999);
	struct fwd_result r;
	struct pkt_info pi;
	struct pb_spec s;

	client_syn(&s, 7, 4444);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	assert_true(addr_eq(&pi.src, &f->spec.node_v4));
	uint16_t port1 = pi.sport;
	uint32_t uid = f->st->services[0].backends[r.backend].uid;

	/* a new state with the same node address: same backend, same mapping */
	f->spec.revision++;
	fx_rebuild(f);
	s.tcp_flags = PKT_TCP_ACK;
	assert_int_equal(fx_send(f, &s, 2 * SEC, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	assert_true(addr_eq(&pi.src, &f->spec.node_v4));
	assert_int_equal(pi.sport, port1);
	assert_int_equal(f->st->services[0].backends[r.backend].uid, uid);

	/* the node address changes: the flow starts over on the new address */
	f->spec.node_v4 = pb_addr("192.0.2.101");
	fx_rebuild(f);
	assert_int_equal(fx_send(f, &s, 3 * SEC, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	assert_true(addr_eq(&pi.src, &f->spec.node_v4));
	uint16_t port2 = pi.sport;
	assert_int_equal(snat_in_use(f->snat4), 1); /* the old port went back */
	assert_int_equal(flow_count(f->flows), 1);
	/* a reply to the new mapping finds the flow */
	struct pb_spec rep;
	pb_init(&rep, ADDR_V4);
	rep.src = f->st->services[0].backends[r.backend].addr;
	rep.dst = f->spec.node_v4;
	rep.sport = 8080;
	rep.dport = port2;
	rep.tcp_flags = PKT_TCP_ACK;
	assert_int_equal(fx_send(f, &rep, 3 * SEC, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	assert_true(addr_eq(&pi.dst, &s.src));
	assert_int_equal(pi.dport, 4444);
	fx_free(f);

	/* a flow that began while the service was dsr gets a mapping when it turns nat */
	f = fx_new(FWD_MODE_DSR, 1024, 20000, 20999);
	client_syn(&s, 9, 4445);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	assert_true(addr_eq(&pi.src, &s.src)); /* dsr: L3 untouched */
	f->svc[0].mode = FWD_MODE_NAT;
	fx_rebuild(f);
	s.tcp_flags = PKT_TCP_ACK;
	assert_int_equal(fx_send(f, &s, 2 * SEC, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	assert_true(addr_eq(&pi.src, &f->spec.node_v4));
	assert_in_range(pi.sport, 20000, 20999);
	assert_int_equal(pi.dport, 8080);
	assert_int_equal(snat_in_use(f->snat4), 1);
	fx_free(f);
}

/* Every service's table in a equals the one in b (same services in the same order). */
static void assert_same_tables(const struct fwd_state *a, const struct fwd_state *b)
{
	assert_int_equal(a->n_services, b->n_services);
	for (uint32_t i = 0; i < a->n_services; i++) {
		assert_int_equal(a->services[i].table.size, b->services[i].table.size);
		assert_memory_equal(a->services[i].table.entry, b->services[i].table.entry,
				    (size_t)a->services[i].table.size * sizeof(uint32_t));
		/* a copied table keeps a digest that is still its own */
		assert_true(a->services[i].table_digest == b->services[i].table_digest);
		assert_true(a->services[i].table_digest == fwd_table_digest(&a->services[i]));
	}
}

/*
 * fwd_state_build_from copies the tables of services whose Maglev inputs did
 * not change, and every table it gives is the one a build from scratch gives.
 */
static void test_build_reuses_tables(void **state)
{
	(void)state;
	struct fwd_backend_spec be[3][4];
	struct fwd_service_spec svc[3];
	struct fwd_spec spec;
	char err[256];

	memset(&spec, 0, sizeof(spec));
	memset(svc, 0, sizeof(svc));
	for (unsigned s = 0; s < 3; s++) {
		for (unsigned i = 0; i < 4; i++) {
			char ip[32];
			snprintf(ip, sizeof(ip), "10.%u.0.%u", s, i + 1);
			memset(&be[s][i], 0, sizeof(be[s][i]));
			be[s][i].addr = pb_addr(ip);
			be[s][i].port = 8080;
			be[s][i].weight = 1 + i % 2;
			be[s][i].uid = 10 * s + i + 1;
		}
		char vip[32];
		snprintf(vip, sizeof(vip), "198.51.100.%u", s + 1);
		svc[s].vip = pb_addr(vip);
		svc[s].port = 80;
		svc[s].proto = IPPROTO_TCP;
		svc[s].mode = FWD_MODE_DSR;
		svc[s].table_size = 251;
		svc[s].n_backends = 4;
		svc[s].backends = be[s];
	}
	spec.hash_seed = 99;
	spec.n_services = 3;
	spec.services = svc;
	spec.n_workers = 1;

	struct fwd_state *s1 = fwd_state_build(&spec, err, sizeof(err));
	assert_non_null(s1);
	assert_int_equal(s1->tables_reused, 0);
	struct fwd_state *s2 = fwd_state_build_from(&spec, s1, err, sizeof(err));
	assert_non_null(s2);
	assert_int_equal(s2->tables_reused, 3);
	assert_same_tables(s1, s2);
	assert_true(s2->gen != s1->gen);

	/* service 1: a backend drains; service 2: another table size; 0 is unchanged */
	be[1][2].weight = 0;
	svc[2].table_size = 257;
	struct fwd_state *s3 = fwd_state_build_from(&spec, s2, err, sizeof(err));
	struct fwd_state *fresh = fwd_state_build(&spec, err, sizeof(err));
	assert_non_null(s3);
	assert_non_null(fresh);
	assert_int_equal(s3->tables_reused, 1);
	assert_same_tables(s3, fresh);
	fwd_state_free(fresh);

	/* the same backends in another order: still the same inputs (sorted by uid) */
	struct fwd_backend_spec t = be[0][0];
	be[0][0] = be[0][3];
	be[0][3] = t;
	struct fwd_state *s4 = fwd_state_build_from(&spec, s3, err, sizeof(err));
	assert_non_null(s4);
	assert_int_equal(s4->tables_reused, 3);
	assert_same_tables(s3, s4);

	/* a backend's address or weight, or the seed: rebuilt */
	be[0][1].addr = pb_addr("10.0.0.77");
	be[2][0].weight = 3;
	struct fwd_state *s5 = fwd_state_build_from(&spec, s4, err, sizeof(err));
	fresh = fwd_state_build(&spec, err, sizeof(err));
	assert_non_null(s5);
	assert_non_null(fresh);
	assert_int_equal(s5->tables_reused, 1);
	assert_same_tables(s5, fresh);
	fwd_state_free(fresh);
	spec.hash_seed = 100;
	struct fwd_state *s6 = fwd_state_build_from(&spec, s5, err, sizeof(err));
	fresh = fwd_state_build(&spec, err, sizeof(err));
	assert_non_null(s6);
	assert_non_null(fresh);
	assert_int_equal(s6->tables_reused, 0);
	assert_same_tables(s6, fresh);

	/* a service moved to another VIP: nothing to copy from for it */
	svc[1].vip = pb_addr("198.51.100.9");
	struct fwd_state *s7 = fwd_state_build_from(&spec, s6, err, sizeof(err));
	assert_non_null(s7);
	assert_int_equal(s7->tables_reused, 2);
	fwd_state_free(fresh);
	fresh = fwd_state_build(&spec, err, sizeof(err));
	assert_non_null(fresh);
	assert_same_tables(s7, fresh);

	fwd_state_free(fresh);
	fwd_state_free(s1);
	fwd_state_free(s2);
	fwd_state_free(s3);
	fwd_state_free(s4);
	fwd_state_free(s5);
	fwd_state_free(s6);
	fwd_state_free(s7);
}

static void test_exceptions(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_DSR, 64, 0, 0);
	struct fwd_result r;
	struct pkt_info pi;
	struct pb_spec s;

	/* ARP request for the node address: answered in place. */
	pb_init(&s, ADDR_V4);
	s.kind = PB_ARP;
	s.src = pb_addr("192.0.2.1");
	s.dst = f->spec.node_v4;
	memset(s.dst_mac, 0xff, 6);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_REPLY);
	assert_int_equal(pkt_parse(f->buf.data, f->buf.len, &pi), 0);
	assert_int_equal(pi.arp_op, PKT_ARP_REPLY);
	assert_true(addr_eq(&pi.src, &f->spec.node_v4));
	assert_true(addr_eq(&pi.dst, &s.src));
	assert_memory_equal(pi.arp_sha, PORT_MAC, 6);
	assert_memory_equal(pi.arp_tha, s.src_mac, 6);
	assert_memory_equal(f->buf.data, s.src_mac, 6);

	/* ARP for someone else, and ARP replies: to the control thread. */
	s.dst = pb_addr("192.0.2.77");
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_CONTROL);
	s.arp_op = PKT_ARP_REPLY;
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_CONTROL);

	/* ICMP echo to the node, v4 and v6: echo reply with valid checksums. */
	for (int fam = 0; fam < 2; fam++) {
		pb_init(&s, fam ? ADDR_V6 : ADDR_V4);
		s.proto = fam ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		s.icmp_type = fam ? 128 : 8;
		s.icmp_id = 77;
		s.payload_len = 56;
		s.dst = fam ? f->spec.node_v6 : f->spec.node_v4;
		s.ttl = 3;
		assert_int_equal(fx_send(f, &s, SEC, &r), FWD_REPLY);
		check_frame(&f->buf, &pi);
		assert_int_equal(pi.icmp_type, fam ? 129 : 0);
		assert_int_equal(pi.icmp_id, 77);
		assert_true(addr_eq(&pi.dst, &s.src));
		assert_true(addr_eq(&pi.src, &s.dst));
		assert_memory_equal(f->buf.data, s.src_mac, 6);
	}

	/* Drops, each counted under its reason. */
	uint64_t before[FWD_DROP__COUNT];
	memcpy(before, f->w.drops, sizeof(before));
	uint8_t junk[10] = {1, 2, 3};
	f->buf.data = junk;
	f->buf.len = sizeof(junk);
	f->buf.headroom = 0;
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_MALFORMED);

	client_syn(&s, 1, 1);
	s.dst = pb_addr("203.0.113.9");
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_NOT_LOCAL);

	client_syn(&s, 1, 1);
	s.dport = 443;
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_NO_SERVICE);

	client_syn(&s, 1, 1);
	s.payload_len = 200;
	uint8_t whole[PB_MAX_FRAME], frag[PB_MAX_FRAME];
	uint32_t n = pb_build(&s, whole, sizeof(whole));
	uint32_t fl = pb_fragment(whole, n, 64, 64, true, 1, frag, sizeof(frag));
	assert_true(fl > 0);
	f->buf.data = frag;
	f->buf.len = fl;
	assert_int_equal(fwd_packet(f->st, &f->w, &f->buf, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_FRAGMENT);

	assert_int_equal(f->w.drops[FWD_DROP_MALFORMED], before[FWD_DROP_MALFORMED] + 1);
	assert_int_equal(f->w.drops[FWD_DROP_NOT_LOCAL], before[FWD_DROP_NOT_LOCAL] + 1);
	assert_int_equal(f->w.drops[FWD_DROP_NO_SERVICE], before[FWD_DROP_NO_SERVICE] + 1);
	assert_int_equal(f->w.drops[FWD_DROP_FRAGMENT], before[FWD_DROP_FRAGMENT] + 1);

	/* No backends; and a backend whose MAC is unknown. */
	fwd_state_free(f->st);
	f->svc[0].n_backends = 0;
	f->st = fx_build(f);
	client_syn(&s, 2, 2);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_NO_BACKEND);
	fwd_state_free(f->st);
	f->svc[0].n_backends = 1;
	f->be[0].mac_ok = 0;
	f->st = fx_build(f);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_NO_NEIGHBOUR);
	assert_string_equal(fwd_drop_str(FWD_DROP_NO_NEIGHBOUR), "no_neighbour");
	fx_free(f);
}

static void test_snat_exhaustion(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_NAT, 64, 30000, 30001); /* two ports */
	struct fwd_result r;
	struct pb_spec s;

	client_syn(&s, 1, 1000);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_TX);
	client_syn(&s, 2, 1000);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_TX);
	client_syn(&s, 3, 1000);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_SNAT_EXHAUSTED);
	assert_int_equal(flow_count(f->flows), 2);
	/* When the embryonic flows time out, their ports come back. */
	uint32_t freed = flow_expire(f->flows, 3600 * SEC, 1000);
	assert_int_equal(freed, 2);
	assert_int_equal(snat_in_use(f->snat4), 0);
	assert_int_equal(fx_send(f, &s, 3600 * SEC, &r), FWD_TX);
	fx_free(f);
}

static uint32_t x_next(uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*seed >> 33);
}

/* fwd_burst gives the same verdicts and bytes as packet-by-packet processing. */
static void test_burst_equals_single(void **state)
{
	(void)state;
	struct fx *a = fx_new(FWD_MODE_NAT, 1024, 20000, 29999);
	struct fx *b = fx_new(FWD_MODE_NAT, 1024, 20000, 29999);
	static uint8_t mem_a[FWD_BURST_MAX][HEADROOM + PB_MAX_FRAME];
	static uint8_t mem_b[FWD_BURST_MAX][HEADROOM + PB_MAX_FRAME];
	struct rw_buf ba[FWD_BURST_MAX], bb[FWD_BURST_MAX];
	struct fwd_result ra[FWD_BURST_MAX], rb[FWD_BURST_MAX];
	struct pb_spec s;

	for (int round = 0; round < 4; round++) {
		for (unsigned i = 0; i < FWD_BURST_MAX; i++) {
			client_syn(&s, i % 20, (uint16_t)(100 + i % 20)); /* repeats in a burst */
			if (round > 0)
				s.tcp_flags = PKT_TCP_ACK;
			if (i % 7 == 3)
				s.dport = 81; /* no service */
			if (i % 11 == 5)
				s.kind = PB_ARP;
			uint32_t n = pb_build(&s, mem_a[i] + HEADROOM, PB_MAX_FRAME);
			memcpy(mem_b[i] + HEADROOM, mem_a[i] + HEADROOM, n);
			ba[i] = (struct rw_buf){mem_a[i] + HEADROOM, n, HEADROOM};
			bb[i] = (struct rw_buf){mem_b[i] + HEADROOM, n, HEADROOM};
		}
		fwd_burst(a->st, &a->w, ba, FWD_BURST_MAX, SEC, ra);
		for (unsigned i = 0; i < FWD_BURST_MAX; i++)
			fwd_packet(b->st, &b->w, &bb[i], SEC, &rb[i]);
		for (unsigned i = 0; i < FWD_BURST_MAX; i++) {
			assert_int_equal(ra[i].verdict, rb[i].verdict);
			assert_int_equal(ra[i].drop, rb[i].drop);
			assert_int_equal(ra[i].backend, rb[i].backend);
			assert_int_equal(ba[i].len, bb[i].len);
			assert_memory_equal(ba[i].data, bb[i].data, ba[i].len);
		}
	}
	assert_int_equal(flow_count(a->flows), flow_count(b->flows));
	fx_free(a);
	fx_free(b);
}

/*
 * fwd_burst under table pressure: a table so small that new flows evict
 * embryonic ones, which other packets of the same burst looked up ahead,
 * and flows repeated inside a burst. Mixed frames: inline-parsed (plain,
 * tagged) and fallback (IPv4 options). In nat mode, a third of the frames
 * are the backends' replies to frames forwarded in earlier rounds: to live
 * flows (found in the burst from their SNAT port's reference), to evicted
 * ones, and to ports handed out again since to a flow with another backend
 * or client. Every verdict, byte, counter and the table itself must match
 * packet-by-packet processing (which never uses the port references).
 */
static void test_burst_under_pressure(void **state)
{
	static uint8_t mem_a[FWD_BURST_MAX][HEADROOM + PB_MAX_FRAME];
	static uint8_t mem_b[FWD_BURST_MAX][HEADROOM + PB_MAX_FRAME];
	struct rw_buf ba[FWD_BURST_MAX], bb[FWD_BURST_MAX];
	struct fwd_result ra[FWD_BURST_MAX], rb[FWD_BURST_MAX];
	uint64_t seed = 99;
	struct pb_spec s;

	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		uint8_t m = mode ? FWD_MODE_NAT : FWD_MODE_DSR;
		struct fx *a = fx_new(m, 24, 20000, 20999);
		struct fx *b = fx_new(m, 24, 20000, 20999);
		unsigned tx = 0, evicted_any = 0, replies_tx = 0, replies_dropped = 0;
		struct pb_spec seen[64]; /* replies to frames forwarded earlier */
		unsigned n_seen = 0;

		for (int round = 0; round < 200; round++) {
			for (unsigned i = 0; i < FWD_BURST_MAX; i++) {
				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				unsigned x = (unsigned)(seed >> 33);
				client_syn(&s, x % 40, (uint16_t)(1000 + x % 40));
				if (x & 0x100)
					s.tcp_flags = PKT_TCP_ACK;
				if (n_seen > 0 && (x >> 16) % 3 == 0)
					s = seen[(x >> 20) % n_seen];
				if ((x >> 10) % 5 == 0) {
					s.vlans = 1;
					s.vlan_tci = 7;
				}
				if ((x >> 13) % 7 == 0)
					s.ip4_opts_len = 4;
				uint32_t n = pb_build(&s, mem_a[i] + HEADROOM, PB_MAX_FRAME);
				assert_true(n > 0);
				memcpy(mem_b[i] + HEADROOM, mem_a[i] + HEADROOM, n);
				ba[i] = (struct rw_buf){mem_a[i] + HEADROOM, n, HEADROOM};
				bb[i] = (struct rw_buf){mem_b[i] + HEADROOM, n, HEADROOM};
			}
			uint64_t now = SEC + (uint64_t)round * 1000;
			fwd_burst(a->st, &a->w, ba, FWD_BURST_MAX, now, ra);
			for (unsigned i = 0; i < FWD_BURST_MAX; i++)
				fwd_packet(b->st, &b->w, &bb[i], now, &rb[i]);
			for (unsigned i = 0; i < FWD_BURST_MAX; i++) {
				assert_int_equal(ra[i].verdict, rb[i].verdict);
				assert_int_equal(ra[i].drop, rb[i].drop);
				assert_int_equal(ra[i].backend, rb[i].backend);
				assert_int_equal(ba[i].len, bb[i].len);
				assert_memory_equal(ba[i].data, bb[i].data, ba[i].len);
				tx += ra[i].verdict == FWD_TX;
				struct pkt_info pi;
				if (pkt_parse(ba[i].data, ba[i].len, &pi) != 0 || pi.l4_proto != IPPROTO_TCP)
					continue;
				if (addr_eq(&pi.src, &a->spec.node_v4)) {
					/* forwarded through nat: remember its reply */
					struct pb_spec r;
					pb_init(&r, ADDR_V4);
					r.src = pi.dst;
					r.dst = pi.src;
					r.sport = pi.dport;
					r.dport = pi.sport;
					r.tcp_flags = PKT_TCP_ACK;
					seen[n_seen < 64 ? n_seen++ : (x_next(&seed) % 64)] = r;
				} else if (addr_eq(&pi.dst, &a->spec.node_v4)) {
					replies_dropped++; /* a reply left as it came: dropped */
				} else if (ra[i].verdict == FWD_TX &&
					   addr_eq(&pi.src, &a->st->services[0].vip)) {
					replies_tx++; /* un-NATed back towards the client */
				}
			}
			assert_int_equal(flow_count(a->flows), flow_count(b->flows));
			assert_int_equal(flow_check(a->flows), 0);
		}
		struct flow_stats sa, sb;
		flow_stats(a->flows, &sa);
		flow_stats(b->flows, &sb);
		assert_memory_equal(&sa, &sb, sizeof(sa));
		evicted_any = sa.evict_embryonic > 0;
		for (uint32_t c = 0; c < a->st->n_counters; c++) {
			struct fwd_counter ca, cb;
			fwd_counter_sum(a->st, c, &ca);
			fwd_counter_sum(b->st, c, &cb);
			assert_memory_equal(&ca, &cb, sizeof(ca));
		}
		assert_memory_equal(a->w.drops, b->w.drops, sizeof(a->w.drops));
		assert_int_equal(a->w.flow_releases, b->w.flow_releases);
		/* the scenario really had evictions, and forwarded traffic */
		assert_true(evicted_any);
		assert_true(tx > 1000);
		if (m == FWD_MODE_NAT) /* replies both forwarded and refused (4200 and 96 today) */
			assert_true(replies_tx > 1000 && replies_dropped > 50);
		fx_free(a);
		fx_free(b);
	}
}

/* Two nodes, specs listed in different orders: same backend for every flow. */
static void test_nodes_agree(void **state)
{
	(void)state;
	struct fx *a = fx_new(FWD_MODE_DSR, 4096, 0, 0);
	struct fx *b = fx_new(FWD_MODE_DSR, 4096, 0, 0);
	struct fwd_result r;
	struct pb_spec s;

	fwd_state_free(b->st);
	for (unsigned i = 0; i < NB / 2; i++) {
		struct fwd_backend_spec t = b->be[i];
		b->be[i] = b->be[NB - 1 - i];
		b->be[NB - 1 - i] = t;
	}
	b->st = fx_build(b);
	for (uint32_t c = 0; c < 1000; c++) {
		client_syn(&s, c, (uint16_t)(c * 7));
		assert_int_equal(fx_send(a, &s, SEC, &r), FWD_TX);
		uint8_t mac[6];
		memcpy(mac, a->buf.data, 6);
		assert_int_equal(fx_send(b, &s, SEC, &r), FWD_TX);
		assert_memory_equal(b->buf.data, mac, 6);
	}
	fx_free(a);
	fx_free(b);
}

/* nat replies wait for the gateway's MAC: dropped (counted) while it is unresolved. */
static void test_nat_gateway_unresolved(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_NAT, 64, 20000, 20999);
	struct fwd_result r;
	struct pkt_info pi;
	struct pb_spec s, rep;

	fwd_state_free(f->st);
	memset(f->spec.gateway_mac, 0, 6);
	f->st = fx_build(f);
	assert_non_null(f->st);
	pb_init(&s, ADDR_V4);
	assert_int_equal(fx_send(f, &s, SEC, &r), FWD_TX);
	check_frame(&f->buf, &pi);
	pb_init(&rep, ADDR_V4);
	rep.src = pi.dst;
	rep.dst = f->spec.node_v4;
	rep.sport = pi.dport;
	rep.dport = pi.sport;
	rep.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
	assert_int_equal(fx_send(f, &rep, SEC, &r), FWD_DROP);
	assert_int_equal(r.drop, FWD_DROP_NO_NEIGHBOUR);
	/* resolved in the next state: the same reply goes through */
	fwd_state_free(f->st);
	memcpy(f->spec.gateway_mac, GW_MAC, 6);
	f->st = fx_build(f);
	assert_int_equal(fx_send(f, &rep, SEC, &r), FWD_TX);
	assert_memory_equal(f->buf.data, GW_MAC, 6);
	fx_free(f);
}

/* A nat flow's first packet and the backend's reply in one burst: the reply finds the flow. */
static void test_burst_reply_same_burst(void **state)
{
	(void)state;
	struct fx *f = fx_new(FWD_MODE_NAT, 64, 0, 0);
	static uint8_t mem[2][HEADROOM + PB_MAX_FRAME];
	struct rw_buf b[2];
	struct fwd_result r[2];
	struct pb_spec s, rep;

	/* seed 0: ports in ascending order, so the first flow gets port 40000 */
	f->snat4 = snat_create(&f->spec.node_v4, 40000, 40099, 0);
	assert_non_null(f->snat4);
	fwd_worker_init(&f->w, 1, f->flows, f->snat4, NULL);
	pb_init(&s, ADDR_V4);
	uint32_t bi = maglev_lookup(&f->st->services[0].table,
				    fwd_flow_hash(f->spec.hash_seed, &s.src, &s.dst, s.sport, s.dport,
						  IPPROTO_TCP));
	assert_true(bi < NB);
	pb_init(&rep, ADDR_V4);
	rep.src = f->st->services[0].backends[bi].addr;
	rep.dst = f->spec.node_v4;
	rep.sport = 8080;
	rep.dport = 40000;
	rep.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
	uint32_t n0 = pb_build(&s, mem[0] + HEADROOM, PB_MAX_FRAME);
	uint32_t n1 = pb_build(&rep, mem[1] + HEADROOM, PB_MAX_FRAME);
	b[0] = (struct rw_buf){mem[0] + HEADROOM, n0, HEADROOM};
	b[1] = (struct rw_buf){mem[1] + HEADROOM, n1, HEADROOM};
	fwd_burst(f->st, &f->w, b, 2, SEC, r);
	assert_int_equal(r[0].verdict, FWD_TX);
	assert_int_equal(r[1].verdict, FWD_TX);
	struct pkt_info pi;
	check_frame(&b[1], &pi);
	assert_true(addr_eq(&pi.dst, &s.src));
	assert_int_equal(pi.dport, s.sport);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_validation),
		cmocka_unit_test(test_build_reuses_tables),
		cmocka_unit_test(test_dsr_flow_sticks),
		cmocka_unit_test(test_nat_both_ways),
		cmocka_unit_test(test_nat_gateway_unresolved),
		cmocka_unit_test(test_tunnel),
		cmocka_unit_test(test_vip_key_is_reply_key),
		cmocka_unit_test(test_neighbour_solicitation),
		cmocka_unit_test(test_state_change_keeps_flows),
		cmocka_unit_test(test_nat_mapping_follows_state),
		cmocka_unit_test(test_exceptions),
		cmocka_unit_test(test_snat_exhaustion),
		cmocka_unit_test(test_burst_equals_single),
		cmocka_unit_test(test_burst_reply_same_burst),
		cmocka_unit_test(test_burst_under_pressure),
		cmocka_unit_test(test_nodes_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
