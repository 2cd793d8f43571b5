/*
 * What the two forwarding benchmarks (bench_fwd, bench_dpdk_ring) share: the
 * forwarding state they run (a dsr service 198.51.100.1:80 and a nat service
 * 198.51.100.2:80, 16 backends 10.200.0.1..16:8080 with resolved MACs, node
 * address 192.0.2.100, gateway MAC set for nat replies) and a seeded shuffle
 * for the order flows are visited in.
 */
#ifndef FULCRUM_TOOLS_BENCH_STATE_H
#define FULCRUM_TOOLS_BENCH_STATE_H

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/fwd.h"
#include "tests/unit/pktbuild.h"

#define BENCH_BACKENDS 16

/* The state, or NULL with the builder's message in err. */
static inline struct fwd_state *bench_state(const uint8_t port_mac[6], char *err, size_t errlen)
{
	static struct fwd_backend_spec be[BENCH_BACKENDS];
	struct fwd_service_spec svc[2];
	struct fwd_spec spec;

	memset(&spec, 0, sizeof(spec));
	memset(svc, 0, sizeof(svc));
	memset(be, 0, sizeof(be));
	for (int i = 0; i < BENCH_BACKENDS; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.200.0.%d", i + 1);
		be[i].addr = pb_addr(ip);
		be[i].port = 8080;
		be[i].weight = 1;
		be[i].uid = (uint32_t)i + 1;
		be[i].mac[0] = 2;
		be[i].mac[5] = (uint8_t)i;
		be[i].mac_ok = 1;
	}
	svc[0].vip = pb_addr("198.51.100.1");
	svc[0].port = 80;
	svc[0].proto = IPPROTO_TCP;
	svc[0].mode = FWD_MODE_DSR;
	svc[0].n_backends = BENCH_BACKENDS;
	svc[0].backends = be;
	svc[1] = svc[0];
	svc[1].vip = pb_addr("198.51.100.2");
	svc[1].mode = FWD_MODE_NAT;
	spec.hash_seed = 7;
	if (port_mac != NULL)
		memcpy(spec.port_mac, port_mac, 6);
	spec.gateway_mac[0] = 2; /* where nat replies go back to clients */
	spec.gateway_mac[5] = 0xfe;
	spec.node_v4 = pb_addr("192.0.2.100");
	spec.n_services = 2;
	spec.services = svc;
	spec.n_workers = 1;
	return fwd_state_build(&spec, err, errlen);
}

/*
 * A backend's SYN+ACK to a nat flow, as a template: backend 10.200.0.1:8080
 * -> the node address 192.0.2.100, port 1024; the benchmarks write each
 * flow's backend and SNAT port into it. Returns the frame length (0: too
 * small a buffer).
 */
static inline uint32_t bench_synack(uint8_t *buf, uint32_t size)
{
	struct pb_spec s;

	pb_init(&s, ADDR_V4);
	s.src = pb_addr("10.200.0.1");
	s.dst = pb_addr("192.0.2.100");
	s.sport = 8080;
	s.dport = 1024;
	s.tcp_flags = PKT_TCP_SYN | PKT_TCP_ACK;
	return pb_build(&s, buf, size);
}

/* splitmix64 over *state: the same sequence from the same seed on every run. */
static inline uint64_t bench_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Fisher-Yates shuffle of a[0 .. n) with bench_rand(state). */
static inline void bench_shuffle(uint32_t *a, uint32_t n, uint64_t *state)
{
	for (uint32_t i = n - 1; i > 0 && n > 0; i--) {
		uint32_t j = (uint32_t)(bench_rand(state) % (i + 1));
		uint32_t t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

#endif
