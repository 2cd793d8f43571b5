/*
 * bench_dpdk_ring: fulcrumd's real worker loop (dataplane/dpdk_dp.c) on a
 * software port, against a plain RX -> MAC swap -> TX wire on another port
 * of the same kind, same generator, same run. Two kinds of port, one after
 * the other: net_ring (rte_eth_from_rings: a packet costs a pointer on a
 * ring, nothing more) and net_memif (a shared-memory link that copies every
 * frame in and out, as a NIC's DMA moves it: I/O with a real per-packet cost).
 *
 *   bench_dpdk_ring              net_ring, then net_memif; for each, two cases, each 5 rounds
 *                                of (wire, dsr, nat) runs of 10M packets, medians, ratios:
 *                                1M flows (the flow table in DRAM) and 4096 flows (the table
 *                                cache-resident)
 *   bench_dpdk_ring --pmd P      only one kind of port: ring or memif
 *   bench_dpdk_ring --flows N    only the case of N dsr flows (repeat for several cases)
 *   bench_dpdk_ring --runs R     R rounds per case (1..16)
 *   bench_dpdk_ring --packets P  P packets per run (default 10M)
 *   bench_dpdk_ring --quick      fewer and shorter rounds (smoke test)
 *   bench_dpdk_ring --zero-loss  instead of the rounds, RFC 2544 throughput: for each case, the
 *                                highest TSC-paced offered rate that the wire, worker dsr and
 *                                worker nat each carry without losing a frame, by binary
 *                                search, against the generator's own maximum; --runs: searches
 *                                per case (default 3), --packets: frames per trial (default 2M),
 *                                --quick: one search of 200k-frame trials,
 *                                --loss-tolerance F: a trial may lose this share (default 0)
 *
 * Why the zero-loss mode: the rounds compare ns/packet of busy CPU, and the
 * wire's ~16 ns on net_ring leaves no room for any forwarding decision in a
 * ratio. NIC-based tests state throughput as the highest offered rate with
 * no frame lost (RFC 2544 section 26.1) at a known line rate; this mode
 * measures that, with the same ports, frames and flow tables, and says
 * whether each consumer sustains 10GbE's 14.88 Mpps of 64-byte frames. Its
 * generator must pace, not flood (see "Zero-loss throughput" below), and it
 * reports its own maximum, measured against a null consumer (the wire's
 * lcore, RX -> TX with the frames untouched). A consumer whose figure lies
 * within 10 % below a rate at which the generator could not keep its pace
 * (with that consumer: one that touches the frames costs it cache misses)
 * is reported as generator-limited: the figure is the generator's, not its.
 *
 * A case of N flows holds N established dsr flows and min(N, 60000)
 * established nat flows (one SNAT address: fewer than 64512 ports), each
 * visited in a fixed random order. The two default cases separate the worker
 * loop's own cost (4096 flows: every lookup hits the cache, what is left
 * beyond the wire is fwd_burst's instructions and the loop's) from the flow
 * table's DRAM misses (the difference between the cases).
 *
 * The warm-up gives every flow its handshake: the client's SYN, for nat the
 * backend's SYN+ACK, then the client's ACK. The generator learns each nat
 * flow's backend and SNAT port from the forwarded SYN it takes off the link
 * and answers as that backend would (backend:8080 -> SNAT address:port,
 * SYN+ACK); the worker translates the reply back, and the generator checks
 * that every client got exactly one, and fwd's service counter that it
 * counted one reply per flow. A nat flow whose balancer sees replies only
 * becomes ESTABLISHED on the client's ACK after the SYN+ACK (flow.h); a
 * SYN_SENT flow expires after tcp_syn (5 s by default). So that this is
 * checked and not assumed, 64 canary nat flows then get a SYN only, and dsr
 * traffic runs until the worker's sweep has expired the canaries: every nat
 * flow was last touched before them, so had one stayed SYN_SENT it would be
 * as dead; the case stops unless exactly the canaries expired.
 *
 * Lcores: 0 = generator on CPU 0; 1 = fulcrumd's worker and 2 = the wire,
 * both pinned to CPU 1 (LAB.md: pin for benchmarks). The main lcore takes
 * forwarded frames off a path, writes the next flow's frame into each (a
 * template copy plus source address, port and TCP flags) and puts them back
 * on the path. Each port has its own path; the generator feeds one per run.
 *
 * net_ring: the path is the port's ring pair. The generator takes mbufs off
 * the TX ring, rewrites them in place and puts them on the RX ring: the frame
 * lands in the cache as a NIC with DDIO would put it, and mbufs circulate
 * between generator and consumer.
 *
 * net_memif: each consumer port (the worker's, the wire's) is a memif client
 * paired with a memif server port that the generator drives, on one abstract
 * socket of this process (the wire id 0, case i id i + 1). DPDK 22.11's
 * memif keeps one listener per socket name and process and finds a client's
 * peer by id and role among the interfaces on it; memif_socket_init refuses
 * only two interfaces of the same id *and* role, so a server and a client
 * of the same id live in one process and connect through the EAL interrupt
 * thread (tried here before relying on it: no second process is needed).
 * The client creates the shared memory (memfd: no hugepages), and in the
 * default, non-zero-copy mode every frame is copied: the generator's TX
 * copies it into a shared buffer, the consumer's RX copies it into an mbuf
 * of its own pool, its TX copies it back into shared memory and frees the
 * mbuf, the generator's RX copies it out. The worker and the wire each pay
 * two copies and an mbuf alloc and free per packet, which net_ring does not
 * charge. dpdk_open gives the worker's port a second TX queue for the
 * control thread, so every server has two RX queues (the second, unused
 * here, must exist for the client's second ring). A memif server cannot
 * send before its client has posted buffers (its first RX poll), and pairs
 * are torn down client first, the server closed only once it has seen the
 * disconnect: closing both sides at once in one process made 22.11's memif
 * free memory twice now and then ("EAL: Error: Invalid memory").
 *
 * The worker is dpdk_dp's own loop, started with dpdk_open/dpdk_start on a
 * port made for each case (found by its ethdev name, so dpdk_dp needed no
 * hook) and closed with dpdk_close after it. Runs are interleaved (wire,
 * dsr, nat, wire, ...) because this 2-vCPU VM is shared and its load drifts;
 * that needs the worker to give CPU 1 to the wire between its runs, so it
 * runs with the adaptive idle policy, tuned to never trigger while it has
 * work: sleep 1 ms only after 20000 empty polls in a row (milliseconds of
 * nothing: a descheduled generator does not trigger it; the lab's 300 polls
 * did, and then each sleep cost the worker a millisecond). Each wire run
 * starts once the worker is asleep. Under load the adaptive loop is then
 * exactly the busy loop: the sleeps counted during the measured runs are
 * printed to show it.
 *
 * Both sides pay the same generator, so the ratio is the worker's cost
 * against the wire's. Three figures per run: wall-clock Mpps; Mpps per
 * CPU-second of the consumer's thread (/proc schedstat: immune to the
 * consumer being descheduled, but it charges the empty polls the consumer
 * spins through while the generator is descheduled, or simply slower); and
 * Mpps per busy CPU-second, that CPU time times the share of the consumer's
 * loop time spent in iterations that received packets (the worker counts it,
 * dpdk_worker_stats busy_ns/idle_ns; the wire counts it the same way). The
 * summaries lead with the last: the machine is shared and its load swings.
 * The fill printed with each run says who waited for whom: on net_ring the
 * RX ring's mean occupancy; memif tells no occupancy (rx_queue_count:
 * -ENOTSUP), so there the share of the generator's sends that found the
 * consumer's RX ring full (the peer's TX took less than offered). High, the
 * consumer (wire or worker) is the bottleneck; low, the generator is (the
 * wire usually: it then gets partial bursts, so its busy cost per packet is
 * if anything overstated, in the worker's favour). A count of frames in
 * flight would not do: after each run the generator stops draining, the
 * consumer's TX ring fills and the rest of what was in flight is dropped
 * there (the worker's "TX unsent", on both kinds of port).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include "dataplane/dpdk_dp.h"
#include "dataplane/fwd.h"
#include "tests/unit/pktbuild.h"
#include "tools/bench/bench_state.h"

#define RING_LOG2 10
#define RING_SIZE (1u << RING_LOG2) /* like a NIC descriptor ring */
#define GEN_POOL  8191 /* 2^n - 1: both ring pairs full, TX buffers and caches */
#define BURST	  32
#define MAX_RUNS  16
#define MAX_CASES 4
#define NAT_FLOWS_MAX 60000 /* one SNAT address: fewer than 64512 ports */
#define CANARIES      64    /* SYN-only nat flows: their expiry shows the sweep has passed */
#define STALL_S	      10    /* a path that moves nothing for this long stops the benchmark */
#define CANARY_WAIT_S 60    /* bound on the wait for the canaries to expire */

enum { K_DSR = 0, K_NAT = 1 };
enum { PMD_RING = 0, PMD_MEMIF = 1, PMD__COUNT };

static uint64_t pkts_per_run = 10000000;
static int runs = 5;
/* Packets in the warm-up's chunks: the default mode's run length (zero-loss: its own). */
static uint64_t warm_unit = 10000000;
/* --zero-loss (below) instead of the rounds */
static bool zero_loss;
static uint64_t zl_count = 2000000; /* frames per trial */
static double zl_tolerance;	    /* the share of a trial's frames it may lose (default 0) */

static struct rte_mempool *gen_pool;
static uint8_t tmpl[2][64];
static uint16_t tmpl_len[2];
static uint8_t tmpl_synack[64]; /* a backend's SYN+ACK to the SNAT address */
static uint16_t tmpl_synack_len;
static char memif_socket[64]; /* abstract socket name shared by every memif pair */

static uint64_t rng = 42; /* bench_rand state */

static void die(const char *msg)
{
	fprintf(stderr, "bench_dpdk_ring: %s\n", msg);
	exit(1);
}

/* ---- Paths: how the generator reaches a consumer's port ---- */

struct path {
	int pmd;
	uint16_t port; /* the consumer's port (fulcrumd's worker or the wire) */
	/* net_ring: the port's rings, as the port sees them */
	struct rte_ring *rx, *tx;
	/* net_memif: the generator's server port paired with `port`, and both vdev names */
	uint16_t peer;
	char name[RTE_ETH_NAME_MAX_LEN];
	char peer_name[RTE_ETH_NAME_MAX_LEN];
	struct rte_mbuf *pend[BURST]; /* written, not yet taken by the peer's TX */
	unsigned n_pend;
	/* --zero-loss: a trial ran since the path was last emptied; frames out after its drain */
	bool zl_dirty;
	uint64_t zl_late;
};

/* Forwarded frames off the path (the generator's side of it). */
static inline unsigned path_take(struct path *pa, struct rte_mbuf **b, unsigned n)
{
	if (pa->pmd == PMD_RING)
		return rte_ring_sc_dequeue_burst(pa->tx, (void **)b, n, NULL);
	return rte_eth_rx_burst(pa->peer, 0, b, (uint16_t)n);
}

/* Frames onto the path, towards the consumer; returns how many it took (in order). */
static inline unsigned path_put(struct path *pa, struct rte_mbuf **b, unsigned n)
{
	if (pa->pmd == PMD_RING)
		return rte_ring_sp_enqueue_burst(pa->rx, (void **)b, n, NULL);
	return rte_eth_tx_burst(pa->peer, 0, b, (uint16_t)n);
}

/*
 * A path that moves nothing for STALL_S seconds stops the benchmark instead
 * of spinning forever (a dropped warm-up frame, a memif link gone down).
 * Costs a counter per iteration; the TSC is read once per 64k empty ones.
 */
struct stall {
	unsigned dry;
	uint64_t since;
};

static inline void stall_check(struct stall *s, unsigned moved, const char *what)
{
	if (moved > 0) {
		s->dry = 0;
		s->since = 0;
		return;
	}
	if (++s->dry < (1u << 16))
		return;
	s->dry = 0;
	uint64_t now = rte_rdtsc();
	if (s->since == 0)
		s->since = now;
	else if (now - s->since > STALL_S * rte_get_tsc_hz()) {
		fprintf(stderr, "bench_dpdk_ring: %s: nothing came out for %d s\n", what, STALL_S);
		exit(1);
	}
}

/* ---- Generator (main lcore) ---- */

struct gen {
	int kind;
	uint32_t *order; /* a shuffled permutation of the kind's flows */
	uint32_t n, pos;
	uint8_t tcp_flags;
};

static inline void gen_frame(struct gen *g, struct rte_mbuf *m)
{
	uint32_t i = g->order[g->pos];
	uint8_t *d;

	if (++g->pos == g->n)
		g->pos = 0;
	m->data_off = RTE_PKTMBUF_HEADROOM;
	m->data_len = tmpl_len[g->kind];
	m->pkt_len = tmpl_len[g->kind];
	m->nb_segs = 1;
	m->next = NULL;
	d = rte_pktmbuf_mtod(m, uint8_t *);
	memcpy(d, tmpl[g->kind], 64);
	/* no checksum fix-up: nothing on the path verifies them (as in bench_fwd) */
	d[14 + 12] = g->kind == K_DSR ? 10 : 11;
	d[14 + 13] = (uint8_t)(i >> 16);
	d[14 + 14] = (uint8_t)(i >> 8);
	d[14 + 15] = (uint8_t)i;
	d[34] = (uint8_t)((1024 + (i & 0x3fff)) >> 8);
	d[35] = (uint8_t)(1024 + (i & 0x3fff));
	d[34 + 13] = g->tcp_flags;
}

struct gen_result {
	double mpps;      /* packets out / wall time */
	double cpu_mpps;  /* packets out / CPU time the consumer's thread got (0 = unknown) */
	double busy_mpps; /* packets out / the busy part of that CPU time (0 = unknown) */
	double cpu_share; /* that CPU time / wall time */
	double busy_share; /* busy / (busy + idle) loop time of the consumer */
	double rx_fill;   /* ring: mean RX-ring occupancy, 0..1; memif: share of sends refused */
};

/*
 * The wire's loop time by kind, as fulcrumd's worker counts its own
 * (dpdk_worker_stats busy_ns/idle_ns): TSC cycles of [0] empty polls,
 * [1] iterations that received packets. Written by the wire's lcore only.
 */
static uint64_t wire_cycles[2];

/* Who takes packets off the path's RX ring, to charge CPU time to. */
struct consumer {
	int tid;            /* its thread (CPU time from /proc), <= 0 = unknown */
	struct dpdk_dp *dp; /* fulcrumd's worker 0; NULL = the wire */
};

/* The consumer's busy and idle loop time so far, in ns. */
static void consumer_load(const struct consumer *c, double *busy, double *idle)
{
	if (c->dp != NULL) {
		struct dpdk_worker_stats ws;
		dpdk_worker_stats(c->dp, 0, &ws);
		*busy = (double)ws.busy_ns;
		*idle = (double)ws.idle_ns;
	} else {
		double ns_per_cycle = 1e9 / (double)rte_get_tsc_hz();
		*busy = (double)__atomic_load_n(&wire_cycles[1], __ATOMIC_RELAXED) * ns_per_cycle;
		*idle = (double)__atomic_load_n(&wire_cycles[0], __ATOMIC_RELAXED) * ns_per_cycle;
	}
}

/*
 * A thread of this process from /proc/self/task/TID/schedstat: field `which`
 * (0: time on a CPU, 1: time waiting on a run queue, both in ns), or 0. The
 * run-queue wait is printed with a zero-loss trial's loss, which then may be
 * the machine's and not the consumer's.
 *
 * Why CPU time: the VM is shared: a pinned lcore still loses its CPU to
 * other processes, and wall-clock Mpps then measure the machine's load.
 * Packets per CPU-second of the consumer's thread do not, but they still
 * charge the consumer for the empty polls it spins through while the
 * generator on the other CPU is descheduled. Packets per busy CPU-second
 * do not: the CPU time times the share of the consumer's loop time spent
 * in iterations that received packets (a preemption lands in busy and idle
 * iterations in proportion to their time, so the share is unaffected).
 */
static uint64_t task_schedstat(int tid, int which)
{
	char path[64];
	unsigned long long v[2] = {0, 0};
	FILE *f;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &v[0], &v[1]) != 2)
		v[0] = v[1] = 0;
	fclose(f);
	return v[which];
}

static uint64_t task_cpu_ns(int tid)
{
	return task_schedstat(tid, 0);
}

static uint64_t task_wait_ns(int tid)
{
	return task_schedstat(tid, 1);
}

/* The thread EAL named `comm` ("rte-worker-N"), or -1. */
static int task_by_name(const char *comm)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int tid = -1;

	if (d == NULL)
		return -1;
	while (tid < 0 && (e = readdir(d)) != NULL) {
		char path[300], name[64];
		FILE *f;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(name, sizeof(name), f) != NULL) {
			name[strcspn(name, "\n")] = '\0';
			if (strcmp(name, comm) == 0)
				tid = atoi(e->d_name);
		}
		fclose(f);
	}
	closedir(d);
	return tid;
}

/*
 * Take what came off the path's TX side (*out: how many) and make it `want`
 * mbufs in b to fill with frames: the surplus freed, a shortfall (mbufs the
 * consumer dropped) allocated from the pool if it has them. Returns how many.
 */
static inline unsigned gen_take(struct path *pa, struct rte_mbuf **b, unsigned want,
				unsigned *out)
{
	unsigned n = path_take(pa, b, BURST);

	*out = n;
	if (n > want) {
		rte_pktmbuf_free_bulk(b + want, n - want);
		n = want;
	}
	if (n < want && rte_pktmbuf_alloc_bulk(gen_pool, b + n, want - n) == 0)
		n = want;
	return n;
}

/*
 * One generator iteration on a ring path: keep the RX ring full, reusing the
 * mbufs that came off the TX ring (and replacing from the pool the ones the
 * consumer dropped). Returns how many came out.
 */
static inline unsigned gen_step_ring(struct path *pa, struct gen *g, uint64_t *fill_sum)
{
	struct rte_mbuf *b[BURST];
	unsigned used = rte_ring_count(pa->rx);
	unsigned room = RING_SIZE - 1 - used;
	unsigned want = room < BURST ? room : BURST;
	unsigned n, out;

	*fill_sum += used;
	n = gen_take(pa, b, want, &out);
	for (unsigned j = 0; j < n; j++)
		gen_frame(g, b[j]);
	if (n > 0 && path_put(pa, b, n) != n)
		die("RX ring refused room it had");
	return out;
}

/*
 * The same on a memif path. Its ring cannot be read, so the generator offers
 * a burst every iteration and keeps what the peer's TX did not take (the
 * link's ring was full) for the next one; the memif TX copies the frames
 * into shared memory and frees the mbufs. It always drains what came back,
 * so that the consumer's TX never finds its ring full.
 */
static inline unsigned gen_step_memif(struct path *pa, struct gen *g, uint64_t *fill_sum)
{
	struct rte_mbuf *b[BURST];
	unsigned want = BURST - pa->n_pend;
	unsigned n, out, k, np;

	n = gen_take(pa, b, want, &out);
	for (unsigned j = 0; j < n; j++) {
		gen_frame(g, b[j]);
		pa->pend[pa->n_pend + j] = b[j];
	}
	np = pa->n_pend + n;
	k = np > 0 ? path_put(pa, pa->pend, np) : 0;
	*fill_sum += k < np; /* the consumer's RX ring was full */
	if (k > 0 && k < np)
		memmove(pa->pend, pa->pend + k, sizeof(pa->pend[0]) * (np - k));
	pa->n_pend = np - k;
	return out;
}

/*
 * Keep the path full and count what comes out of it until `count` packets
 * have come out.
 */
static struct gen_result gen_run(struct path *pa, struct gen *g, uint64_t count,
				 const struct consumer *c)
{
	uint64_t out = 0, fill_sum = 0, iters = 0;
	int tid = c != NULL ? c->tid : 0;
	double busy0 = 0, idle0 = 0, busy1 = 0, idle1 = 0;
	struct stall st = {0, 0};
	struct gen_result r;

	if (c != NULL)
		consumer_load(c, &busy0, &idle0);
	uint64_t c0 = task_cpu_ns(tid);
	uint64_t t0 = rte_rdtsc();

	while (out < count) {
		unsigned n = pa->pmd == PMD_RING ? gen_step_ring(pa, g, &fill_sum)
						 : gen_step_memif(pa, g, &fill_sum);
		out += n;
		iters++;
		stall_check(&st, n, "a measured run");
	}
	double wall = (double)(rte_rdtsc() - t0) / (double)rte_get_tsc_hz();
	double cpu = (double)(task_cpu_ns(tid) - c0) / 1e9;
	if (c != NULL)
		consumer_load(c, &busy1, &idle1);
	double busy = busy1 - busy0, idle = idle1 - idle0;
	r.mpps = (double)out / wall / 1e6;
	r.cpu_mpps = c0 != 0 && cpu > 0 ? (double)out / cpu / 1e6 : 0;
	r.cpu_share = c0 != 0 ? cpu / wall : 0;
	r.busy_share = busy + idle > 0 ? busy / (busy + idle) : 0;
	r.busy_mpps = r.cpu_mpps > 0 && r.busy_share > 0 ? r.cpu_mpps / r.busy_share : 0;
	r.rx_fill = (double)fill_sum / (double)iters / (pa->pmd == PMD_RING ? RING_SIZE - 1 : 1);
	return r;
}

/*
 * Warm-up traffic, exact: `count` frames, the k-th written by make(mctx, k, m)
 * (k in order), then wait until `count` frames have come out, showing each
 * to seen(sctx, m) if seen is not NULL. Needs a path with nothing in flight
 * (a fresh port) so that what comes out is exactly what went in. At most
 * half a ring in flight: gen_run keeps the RX ring full whatever comes back,
 * so when the generator is descheduled the consumer fills its TX ring and
 * drops the rest (its "TX unsent"), which the warm-up cannot afford.
 */
typedef void (*make_fn)(void *ctx, uint32_t k, struct rte_mbuf *m);
typedef void (*seen_fn)(void *ctx, const struct rte_mbuf *m);

static void gen_pass(struct path *pa, uint32_t count, make_fn make, void *mctx, seen_fn seen,
		     void *sctx)
{
	struct rte_mbuf *b[BURST], *q[BURST];
	uint32_t made = 0, got = 0;
	unsigned nq = 0;
	struct stall st = {0, 0};

	if (pa->n_pend != 0)
		die("warm-up on a path with frames in flight");
	while (got < count) {
		unsigned n = path_take(pa, b, BURST);
		for (unsigned j = 0; j < n && seen != NULL; j++)
			seen(sctx, b[j]);
		if (n > 0)
			rte_pktmbuf_free_bulk(b, n);
		got += n;
		unsigned want = RTE_MIN(BURST - nq, count - made);
		want = RTE_MIN(want, RING_SIZE / 2 - (made - got));
		if (want > 0 && rte_pktmbuf_alloc_bulk(gen_pool, q + nq, want) == 0) {
			for (unsigned j = 0; j < want; j++)
				make(mctx, made + j, q[nq + j]);
			nq += want;
			made += want;
		}
		if (nq > 0) {
			unsigned k = path_put(pa, q, nq);
			if (k > 0 && k < nq)
				memmove(q, q + k, sizeof(q[0]) * (nq - k));
			nq -= k;
		}
		stall_check(&st, n, "warm-up (the worker dropped or kept frames)");
	}
	if (got != count || made != count || nq != 0)
		die("warm-up: more frames came out than went in");
}

/* make_fn for a generator: its next frames, in its order. */
static void make_gen(void *ctx, uint32_t k, struct rte_mbuf *m)
{
	(void)k;
	gen_frame(ctx, m);
}

/* Give back what the generator holds for a path, and (ring) empty its rings, before it goes. */
static void path_drain(struct path *pa)
{
	struct rte_mbuf *b[BURST];
	unsigned n;

	if (pa->n_pend > 0)
		rte_pktmbuf_free_bulk(pa->pend, pa->n_pend);
	pa->n_pend = 0;
	if (pa->pmd != PMD_RING)
		return; /* memif: the frames in flight are copies in shared memory */
	while ((n = rte_ring_sc_dequeue_burst(pa->rx, (void **)b, BURST, NULL)) > 0)
		rte_pktmbuf_free_bulk(b, n);
	while ((n = rte_ring_sc_dequeue_burst(pa->tx, (void **)b, BURST, NULL)) > 0)
		rte_pktmbuf_free_bulk(b, n);
}

/* ---- The plain wire (lcore 2, launched for each of its runs) ---- */

static volatile int wire_stop;

struct wire_arg {
	uint16_t port;
	/*
	 * false: a null consumer, RX -> TX with the frames untouched (the
	 * zero-loss mode measures the generator's own maximum against it).
	 */
	bool swap;
};

static int wire_main(void *arg)
{
	const struct wire_arg *wa = arg;
	const uint16_t port = wa->port;
	const bool swap = wa->swap;
	struct rte_mbuf *pkts[BURST];
	uint64_t prev_tsc = rte_rdtsc();
	unsigned prev_busy = 0;

	while (!__atomic_load_n(&wire_stop, __ATOMIC_RELAXED)) {
		/* The same accounting as the worker's: one TSC read per iteration. */
		uint64_t tsc = rte_rdtsc();
		wire_cycles[prev_busy] += tsc - prev_tsc;
		prev_tsc = tsc;
		uint16_t n = rte_eth_rx_burst(port, 0, pkts, BURST);
		prev_busy = n > 0;
		if (n == 0)
			continue;
		for (uint16_t i = 0; swap && i < n; i++) {
			struct rte_ether_hdr *e = rte_pktmbuf_mtod(pkts[i], struct rte_ether_hdr *);
			struct rte_ether_addr t = e->dst_addr;
			if (i + 3 < n)
				rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 3], void *));
			e->dst_addr = e->src_addr;
			e->src_addr = t;
		}
		uint16_t s = rte_eth_tx_burst(port, 0, pkts, n);
		if (s < n)
			rte_pktmbuf_free_bulk(pkts + s, n - s);
	}
	return 0;
}

/*
 * rte_eth_from_rings lives in the net_ring driver, which `pkg-config --libs
 * libdpdk` does not link (drivers are EAL plugins on Debian). Resolve it at
 * run time from the plugin instead of asking for a Makefile change; the call
 * itself is the public API.
 */
typedef int (*from_rings_fn)(const char *, struct rte_ring *const[], const unsigned,
			     struct rte_ring *const[], const unsigned, const unsigned);

/* A net_ring port named "net_ring_NAME" and its ring pair. */
static void path_create_ring(struct path *pa, const char *name)
{
	static from_rings_fn from_rings;
	char rn[64];

	memset(pa, 0, sizeof(*pa));
	pa->pmd = PMD_RING;
	if (from_rings == NULL) {
		void *h = dlopen("librte_net_ring.so.23", RTLD_NOW); /* DPDK 22.11 ABI */
		if (h == NULL)
			h = dlopen("librte_net_ring.so", RTLD_NOW);
		if (h == NULL || (from_rings = (from_rings_fn)dlsym(h, "rte_eth_from_rings")) == NULL)
			die("cannot find rte_eth_from_rings in librte_net_ring");
	}
	snprintf(rn, sizeof(rn), "%s_rx", name);
	pa->rx = rte_ring_create(rn, RING_SIZE, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(rn, sizeof(rn), "%s_tx", name);
	pa->tx = rte_ring_create(rn, RING_SIZE, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (pa->rx == NULL || pa->tx == NULL)
		die("rings");
	int port = from_rings(name, &pa->rx, 1, &pa->tx, 1, rte_socket_id());
	if (port < 0)
		die("rte_eth_from_rings failed");
	pa->port = (uint16_t)port;
	snprintf(pa->name, sizeof(pa->name), "net_ring_%s", name); /* what from_rings names it */
}

/* Configure and start a port with its own queues (not fulcrumd's: dpdk_open does that). */
static void port_start(uint16_t port, uint16_t n_rx, uint16_t n_tx, struct rte_mempool *pool)
{
	struct rte_eth_conf conf;
	int ok;

	memset(&conf, 0, sizeof(conf));
	ok = rte_eth_dev_configure(port, n_rx, n_tx, &conf) == 0;
	for (uint16_t q = 0; ok && q < n_rx; q++)
		ok = rte_eth_rx_queue_setup(port, q, RING_SIZE, rte_socket_id(), NULL, pool) == 0;
	for (uint16_t q = 0; ok && q < n_tx; q++)
		ok = rte_eth_tx_queue_setup(port, q, RING_SIZE, rte_socket_id(), NULL) == 0;
	if (!ok || rte_eth_dev_start(port) != 0)
		die("port setup failed");
}

/*
 * A memif pair: the generator's server port NAME_gen, started, and the
 * consumer's client port NAME, created but neither configured nor started
 * (the wire's is configured here, the worker's by dpdk_open). Interface id
 * `id` on this process's socket.
 */
static void path_create_memif(struct path *pa, const char *name, unsigned id)
{
	char args[160];

	memset(pa, 0, sizeof(*pa));
	pa->pmd = PMD_MEMIF;
	snprintf(pa->name, sizeof(pa->name), "%s", name);
	snprintf(pa->peer_name, sizeof(pa->peer_name), "%s_gen", name);
	snprintf(args, sizeof(args), "role=server,id=%u,socket=%s,socket-abstract=yes,rsize=%u", id,
		 memif_socket, RING_LOG2);
	if (rte_eal_hotplug_add("vdev", pa->peer_name, args) != 0 ||
	    rte_eth_dev_get_port_by_name(pa->peer_name, &pa->peer) != 0)
		die("cannot create a memif server port");
	/* Two RX queues: the worker's port has a second TX queue (dpdk_open's control queue). */
	port_start(pa->peer, 2, 1, gen_pool);
	snprintf(args, sizeof(args), "role=client,id=%u,socket=%s,socket-abstract=yes,rsize=%u", id,
		 memif_socket, RING_LOG2);
	if (rte_eal_hotplug_add("vdev", pa->name, args) != 0 ||
	    rte_eth_dev_get_port_by_name(pa->name, &pa->port) != 0)
		die("cannot create a memif client port");
}

static bool link_up(uint16_t port)
{
	struct rte_eth_link l;

	return rte_eth_link_get_nowait(port, &l) == 0 && l.link_status == RTE_ETH_LINK_UP;
}

/* memif: wait (bounded) until client and server have connected. */
static void path_wait_up(const struct path *pa)
{
	if (pa->pmd != PMD_MEMIF)
		return;
	for (int i = 0; i < 500 && !(link_up(pa->port) && link_up(pa->peer)); i++)
		usleep(10000);
	if (!link_up(pa->port) || !link_up(pa->peer))
		die("memif link did not come up within 5 s");
}

/*
 * memif: after the client port was stopped and closed, close the server
 * once it has seen the disconnect (the EAL interrupt thread handles it:
 * link down, then its regions unmapped), and remove both devices.
 */
static void path_close_memif(struct path *pa)
{
	for (int i = 0; i < 200 && link_up(pa->peer); i++)
		usleep(10000);
	usleep(50000); /* the disconnect handler sets link down first, then frees */
	rte_eth_dev_stop(pa->peer);
	rte_eth_dev_close(pa->peer);
	if (rte_eal_hotplug_remove("vdev", pa->name) != 0 ||
	    rte_eal_hotplug_remove("vdev", pa->peer_name) != 0)
		fprintf(stderr, "bench_dpdk_ring: could not remove memif devices %s\n", pa->name);
}

/* ---- fulcrumd's worker ---- */
static struct fwd_state *build_state(const uint8_t port_mac[6])
{
	char err[256];
	struct fwd_state *st = bench_state(port_mac, err, sizeof(err));

	if (st == NULL)
		die(err);
	return st;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[2 * MAX_RUNS];
	memcpy(s, v, sizeof(*v) * (size_t)n);
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void shuffle(uint32_t *a, uint32_t n)
{
	bench_shuffle(a, n, &rng);
}

/* A generator of the kind's flows first .. first + n - 1, in a shuffled order, sending ACKs. */
static void gen_init_range(struct gen *g, int kind, uint32_t first, uint32_t n)
{
	memset(g, 0, sizeof(*g));
	g->kind = kind;
	g->n = n;
	g->order = malloc(sizeof(*g->order) * n);
	if (g->order == NULL)
		die("out of memory");
	for (uint32_t i = 0; i < n; i++)
		g->order[i] = first + i;
	shuffle(g->order, n);
	g->tcp_flags = PKT_TCP_ACK;
}

static void gen_init(struct gen *g, int kind, uint32_t n)
{
	gen_init_range(g, kind, 0, n);
}

/* ---- The nat handshake: the backends' side ---- */

/* What a forwarded SYN says about its flow: where it went and from which SNAT port. */
struct nat_peer {
	uint8_t be_mac[6];
	uint8_t be_ip[4];
	uint8_t be_port[2];
	uint8_t snat_port[2];
};

struct handshake {
	uint32_t n;		/* the case's nat flows */
	struct nat_peer *peers; /* learnt from the forwarded SYNs, in the order they came */
	uint32_t learnt;
	uint8_t *replied; /* per flow: SYN+ACKs that reached its client */
	uint32_t replies;
	uint32_t bad; /* frames that were not what the step expects */
	uint8_t snat_ip[4], vip[4];
};

/* Plain IPv4 (no options) TCP, as fwd forwards the generator's frames. */
static const uint8_t *frame_tcp4(const struct rte_mbuf *m)
{
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);

	if (m->data_len < 54 || d[12] != 0x08 || d[13] != 0x00 || d[14] != 0x45 ||
	    d[23] != IPPROTO_TCP)
		return NULL;
	return d;
}

/* seen_fn of the nat SYN pass: each forwarded SYN, SNAT address -> a backend:8080. */
static void learn_syn(void *ctx, const struct rte_mbuf *m)
{
	struct handshake *h = ctx;
	const uint8_t *d = frame_tcp4(m);

	if (d == NULL || memcmp(d + 26, h->snat_ip, 4) != 0 || pb_get16(d + 36) != 8080 ||
	    d[47] != PKT_TCP_SYN || h->learnt == h->n) {
		h->bad++;
		return;
	}
	struct nat_peer *p = &h->peers[h->learnt++];
	memcpy(p->be_mac, d, 6); /* the frame's destination: the backend */
	memcpy(p->be_ip, d + 30, 4);
	memcpy(p->be_port, d + 36, 2);
	memcpy(p->snat_port, d + 34, 2);
}

/* make_fn of the SYN+ACK pass: the k-th learnt backend answers (no checksum fix-up, as above). */
static void make_synack(void *ctx, uint32_t k, struct rte_mbuf *m)
{
	const struct nat_peer *p = &((const struct handshake *)ctx)->peers[k];
	uint8_t *d;

	m->data_off = RTE_PKTMBUF_HEADROOM;
	m->data_len = tmpl_synack_len;
	m->pkt_len = tmpl_synack_len;
	m->nb_segs = 1;
	m->next = NULL;
	d = rte_pktmbuf_mtod(m, uint8_t *);
	memcpy(d, tmpl_synack, 64);
	memcpy(d + 6, p->be_mac, 6);
	memcpy(d + 26, p->be_ip, 4);
	memcpy(d + 34, p->be_port, 2);
	memcpy(d + 36, p->snat_port, 2);
}

/* seen_fn of the SYN+ACK pass: VIP:80 -> the client of flow i (11.i, port 1024 + i % 16384). */
static void check_synack(void *ctx, const struct rte_mbuf *m)
{
	struct handshake *h = ctx;
	const uint8_t *d = frame_tcp4(m);
	uint32_t i;

	if (d == NULL || memcmp(d + 26, h->vip, 4) != 0 || pb_get16(d + 34) != 80 || d[30] != 11 ||
	    d[47] != (PKT_TCP_SYN | PKT_TCP_ACK)) {
		h->bad++;
		return;
	}
	i = (uint32_t)d[31] << 16 | (uint32_t)d[32] << 8 | d[33];
	if (i >= h->n || pb_get16(d + 36) != 1024 + (i & 0x3fff) || h->replied[i]++ != 0) {
		h->bad++;
		return;
	}
	h->replies++;
}

/* fwd's own count for the nat service (all workers), from the state the worker runs. */
static struct fwd_counter nat_service_counter(const struct dpdk_dp *dp)
{
	const struct fwd_state *st = dpdk_state(dp);
	struct addr vip = pb_addr("198.51.100.2");
	struct fwd_counter c;
	uint32_t si = st != NULL ? fwd_find_service(st, &vip, 80, IPPROTO_TCP) : UINT32_MAX;

	if (si == UINT32_MAX)
		die("the nat service is not in the worker's state");
	fwd_counter_sum(st, st->services[si].counter, &c);
	return c;
}

/*
 * Warm-up: every flow's handshake (above), then the canaries, then dsr
 * traffic until the sweep has expired them. Dies unless every nat flow got
 * its reply and exactly the canaries expired.
 */
static void warm_up(struct path *pf, struct dpdk_dp *dp, struct gen *gd, struct gen *gn,
		    uint64_t tcp_syn_ns)
{
	struct handshake h;
	struct gen gc;
	struct dpdk_worker_stats a, b;
	uint32_t n_dsr = gd->n, n_nat = gn->n;

	memset(&h, 0, sizeof(h));
	h.n = n_nat;
	h.peers = calloc(n_nat, sizeof(*h.peers));
	h.replied = calloc(n_nat, 1);
	if (h.peers == NULL || h.replied == NULL)
		die("out of memory");
	struct addr snat = pb_addr("192.0.2.100"), vip = pb_addr("198.51.100.2");
	memcpy(h.snat_ip, snat.b, 4);
	memcpy(h.vip, vip.b, 4);

	gd->tcp_flags = gn->tcp_flags = PKT_TCP_SYN;
	gen_pass(pf, n_dsr, make_gen, gd, NULL, NULL);
	gen_pass(pf, n_nat, make_gen, gn, learn_syn, &h); /* new flows: Maglev, SNAT port, insert */
	if (h.learnt != n_nat || h.bad != 0)
		die("nat warm-up: the forwarded SYNs are not one per flow from the SNAT address");
	gen_pass(pf, n_nat, make_synack, &h, check_synack, &h);
	if (h.replies != n_nat || h.bad != 0)
		die("nat warm-up: not every client got its backend's SYN+ACK back");
	gd->tcp_flags = gn->tcp_flags = PKT_TCP_ACK;
	gen_pass(pf, n_dsr, make_gen, gd, NULL, NULL);
	gen_pass(pf, n_nat, make_gen, gn, NULL, NULL);

	/* The canaries: SYN only, and after every nat flow's last packet. */
	gen_init_range(&gc, K_NAT, n_nat, CANARIES);
	gc.tcp_flags = PKT_TCP_SYN;
	gen_pass(pf, CANARIES, make_gen, &gc, NULL, NULL);
	dpdk_worker_stats(dp, 0, &a);
	if (a.flows != (uint64_t)n_dsr + n_nat + CANARIES)
		die("the flow table does not hold the case's flows and the canaries");
	/*
	 * dsr traffic meanwhile: the worker's busy sweep covers the whole table
	 * once per half the shortest timeout whatever its size, where an idle
	 * (sleeping) worker sweeps 256 slots per millisecond.
	 */
	uint64_t t0 = rte_rdtsc(), hz = rte_get_tsc_hz();
	do {
		gen_run(pf, gd, warm_unit / 50, NULL);
		dpdk_worker_stats(dp, 0, &b);
	} while (b.expired - a.expired < CANARIES && rte_rdtsc() - t0 < CANARY_WAIT_S * hz);
	double waited = (double)(rte_rdtsc() - t0) / (double)hz;
	struct fwd_counter nc = nat_service_counter(dp);

	printf("  handshakes: %u SYN+ACKs from the backends went back to their clients (fwd's nat "
	       "service: %llu replies, %llu new flows);\n  after %.1f s of dsr traffic %llu flows "
	       "had expired (expected: the %d SYN-only canaries; tcp_syn %.0f s), %llu live\n",
	       h.replies, (unsigned long long)nc.reply_pkts, (unsigned long long)nc.new_flows,
	       waited, (unsigned long long)(b.expired - a.expired), CANARIES,
	       (double)tcp_syn_ns / 1e9, (unsigned long long)b.flows);
	if (b.expired - a.expired < CANARIES)
		die("the canaries did not expire: cannot tell whether the nat flows are established");
	if (b.expired - a.expired > CANARIES)
		die("flows other than the canaries expired: the nat flows are not all established");
	if (b.flows != (uint64_t)n_dsr + n_nat || nc.reply_pkts != n_nat)
		die("the nat flows are not all established");
	free(gc.order);
	free(h.peers);
	free(h.replied);
}

/* ---- Report ---- */

/* fwd's drops (every reason) the worker counted between two snapshots. */
static uint64_t fwd_drops_between(const struct dpdk_worker_stats *a,
				  const struct dpdk_worker_stats *b)
{
	uint64_t n = 0;

	for (unsigned k = 0; k < FWD_DROP__COUNT; k++)
		n += b->drops[k] - a->drops[k];
	return n;
}

static void print_run(int pmd, const char *label, int r, struct gen_result res)
{
	printf("  round %d %-5s %6.2f Mpps wall | %6.2f per CPU-s (%3.0f%% of a CPU) | %6.2f per "
	       "busy CPU-s (%3.0f%% busy) | RX ring %s%3.0f%% %s\n",
	       r + 1, label, res.mpps, res.cpu_mpps, 100 * res.cpu_share, res.busy_mpps,
	       100 * res.busy_share, pmd == PMD_RING ? "" : "full at ", 100 * res.rx_fill,
	       pmd == PMD_RING ? "full" : "of sends");
}

static void report(const char *label, const double *v, double wire, const char *unit)
{
	double m = median(v, runs);
	if (m <= 0) {
		printf("  %-11s (not measured)\n", label);
		return;
	}
	printf("  %-11s %6.2f Mpps %-14s = %6.1f ns/pkt", label, m, unit, 1e3 / m);
	if (wire > 0)
		printf("   %.2fx the plain wire (target >= 0.80x: %s)", m / wire,
		       m / wire >= 0.8 ? "met" : "NOT met");
	printf("\n");
}

static double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f != NULL) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

/* Mpps of every round: wall clock, per CPU-second and per busy CPU-second of the consumer. */
struct series {
	double wall[MAX_RUNS];
	double cpu[MAX_RUNS];
	double busy[MAX_RUNS];
};

struct bench_case {
	uint32_t n_dsr, n_nat;
	struct series wire, dsr, nat;
};

/* What the cases of one kind of port share: the wire's path and the threads to charge. */
struct bench_env {
	int pmd;
	const char *tag; /* after "case N" and "overview": "" for net_ring */
	struct path wire;
	struct rte_mempool *wire_pool; /* memif: the wire's RX mbufs (the worker has its own) */
	int tid_worker, tid_wire;
};

static void series_put(struct series *s, int r, struct gen_result res)
{
	s->wall[r] = res.mpps;
	s->cpu[r] = res.cpu_mpps;
	s->busy[r] = res.busy_mpps;
}

/* A case's fulcrumd side: its port and the generator's path to it, its dpdk_dp, its flows. */
struct case_rt {
	struct path pf;
	struct gen gd, gn;
	struct dpdk_params p;
	struct dpdk_dp *dp;
};

/*
 * A fresh port and dpdk_dp whose flow table holds c->n_dsr dsr and c->n_nat
 * nat flows, all established (warm_up), the worker running.
 */
static void case_open(struct bench_env *env, int idx, const struct bench_case *c, struct case_rt *k)
{
	struct dpdk_params *p = &k->p;
	char name[32], err[256];
	uint8_t mac[6];

	gen_init(&k->gd, K_DSR, c->n_dsr);
	gen_init(&k->gn, K_NAT, c->n_nat);

	/* fulcrumd's port: dpdk_open finds it by its ethdev name. */
	if (env->pmd == PMD_RING) {
		snprintf(name, sizeof(name), "fb_fc%d", idx);
		path_create_ring(&k->pf, name);
	} else {
		snprintf(name, sizeof(name), "net_memif_fc%d", idx);
		path_create_memif(&k->pf, name, (unsigned)idx + 1);
	}
	memset(p, 0, sizeof(*p));
	p->port_devargs = k->pf.name;
	p->rx_desc = RING_SIZE;
	p->tx_desc = RING_SIZE;
	p->workers = 1;
	p->mbufs = 2 * RING_SIZE + 4 * BURST + 2 * 64 + 1023;
	p->mbuf_cache = 64;
	p->burst = BURST;
	p->tx_flush_us = 100;
	p->idle = DPDK_IDLE_ADAPTIVE;
	p->idle_polls = 20000;
	/*
	 * --zero-loss: the sleeping worker's wake-ups, 1000 a second on the
	 * wire's CPU, cost the wire 1-4 ms of run-queue wait per trial and frames
	 * at 5 Mpps; 50 ms sleeps do not. The worker's own trials never let it
	 * sleep (20000 empty polls in a row), and each starts with a pass that
	 * waits for it to wake.
	 */
	p->idle_sleep_us = zero_loss ? 50000 : 1000;
	p->flow_capacity = 2 * (c->n_dsr + c->n_nat);
	flow_timeouts_default(&p->timeouts);
	p->snat_v4 = pb_addr("192.0.2.100");
	p->snat_port_lo = 1024;
	p->snat_port_hi = 65535;
	p->snat_seed = 1;
	p->control_ring = 1024;
	if (dpdk_open(p, &k->dp, err, sizeof(err)) != 0)
		die(err);
	dpdk_port_mac(k->dp, mac);
	if (dpdk_publish(k->dp, build_state(mac), NULL, NULL) != 0 || dpdk_start(k->dp) != 0)
		die("publish/start failed");
	path_wait_up(&k->pf);

	printf("\ncase %d%s: %u established dsr flows + %u established nat flows in the table "
	       "(capacity %u)\n",
	       idx + 1, env->tag, c->n_dsr, c->n_nat, p->flow_capacity);

	warm_up(&k->pf, k->dp, &k->gd, &k->gn, p->timeouts.tcp_syn);
	/* Short flow sets: a few more passes so that every line the lookups use is warm. */
	if (c->n_dsr < warm_unit / 20)
		gen_run(&k->pf, &k->gd, warm_unit / 20, NULL);
}

static void case_close(struct case_rt *k)
{
	dpdk_close(k->dp);
	path_drain(&k->pf); /* ring: also what the worker flushed on its way out */
	if (k->pf.pmd == PMD_RING) {
		rte_ring_free(k->pf.rx);
		rte_ring_free(k->pf.tx);
	} else {
		path_close_memif(&k->pf);
	}
	free(k->gd.order);
	free(k->gn.order);
}

/*
 * One case: case_open, then `runs` interleaved rounds of (wire, dsr, nat).
 */
static void run_case(struct bench_env *env, int idx, struct bench_case *c)
{
	struct case_rt cr;
	struct dpdk_worker_stats ws0, ws1;

	case_open(env, idx, c, &cr);
	struct dpdk_dp *dp = cr.dp;
	struct path *pf = &cr.pf;
	struct gen *gd = &cr.gd, *gn = &cr.gn;
	dpdk_worker_stats(dp, 0, &ws0);

	const struct consumer wire = {.tid = env->tid_wire, .dp = NULL};
	const struct consumer worker = {.tid = env->tid_worker, .dp = dp};

	uint64_t sleeps_measured = 0;
	for (int r = 0; r < runs; r++) {
		struct dpdk_worker_stats a, b;
		struct gen_result res;
		struct wire_arg wa = {.port = env->wire.port, .swap = true};

		wire_stop = 0;
		if (rte_eal_remote_launch(wire_main, &wa, 2) != 0)
			die("cannot launch the wire");
		/*
		 * Settle until fulcrumd's worker, now without packets, has gone to
		 * sleep: its empty polls (each with a flow-table sweep) would
		 * otherwise share CPU 1 with the wire at the start of the run.
		 */
		dpdk_worker_stats(dp, 0, &a);
		for (int k = 0; k < 200; k++) {
			gen_run(&env->wire, gd, pkts_per_run / 50, NULL);
			dpdk_worker_stats(dp, 0, &b);
			if (b.sleeps > a.sleeps)
				break;
		}
		res = gen_run(&env->wire, gd, pkts_per_run, &wire);
		__atomic_store_n(&wire_stop, 1, __ATOMIC_RELAXED);
		rte_eal_wait_lcore(2);
		series_put(&c->wire, r, res);
		print_run(env->pmd, "wire", r, res);

		gen_run(pf, gd, pkts_per_run / 20, NULL); /* wakes the worker */
		dpdk_worker_stats(dp, 0, &a);
		res = gen_run(pf, gd, pkts_per_run, &worker);
		series_put(&c->dsr, r, res);
		print_run(env->pmd, "dsr", r, res);
		res = gen_run(pf, gn, pkts_per_run, &worker);
		dpdk_worker_stats(dp, 0, &b);
		series_put(&c->nat, r, res);
		print_run(env->pmd, "nat", r, res);
		sleeps_measured += b.sleeps - a.sleeps;
	}
	dpdk_worker_stats(dp, 0, &ws1);
	uint64_t drops = fwd_drops_between(&ws0, &ws1);
	printf("  worker over the rounds: rx %llu, tx %llu, drops %llu, TX unsent %llu, live flows "
	       "%llu, idle sleeps during measured runs %llu\n",
	       (unsigned long long)(ws1.rx - ws0.rx), (unsigned long long)(ws1.tx - ws0.tx),
	       (unsigned long long)drops, (unsigned long long)(ws1.tx_unsent - ws0.tx_unsent),
	       (unsigned long long)ws1.flows, (unsigned long long)sleeps_measured);
	if (ws1.tx - ws0.tx < (uint64_t)runs * 2 * pkts_per_run || drops != 0)
		die("the worker dropped packets or forwarded fewer than were counted");
	if (ws1.flows != (uint64_t)c->n_dsr + c->n_nat)
		die("the flow table does not hold the case's flows");

	printf(" medians of %d interleaved rounds (load average now %.2f)\n", runs, loadavg());
	printf(" per busy CPU-second of the forwarding thread (its CPU time in iterations that "
	       "received packets):\n");
	double wb = median(c->wire.busy, runs);
	report("plain wire", c->wire.busy, 0, "per busy CPU-s");
	report("worker dsr", c->dsr.busy, wb, "per busy CPU-s");
	report("worker nat", c->nat.busy, wb, "per busy CPU-s");
	printf(" per CPU-second of the forwarding thread (also charges empty polls while the "
	       "generator is descheduled):\n");
	double wc = median(c->wire.cpu, runs);
	report("plain wire", c->wire.cpu, 0, "per CPU-s");
	report("worker dsr", c->dsr.cpu, wc, "per CPU-s");
	report("worker nat", c->nat.cpu, wc, "per CPU-s");
	printf(" wall clock (what the machine gave us; swings with other processes' load):\n");
	double w = median(c->wire.wall, runs);
	report("plain wire", c->wire.wall, 0, "wall");
	report("worker dsr", c->dsr.wall, w, "wall");
	report("worker nat", c->nat.wall, w, "wall");

	case_close(&cr);
}

/* One line per case: medians per busy CPU-second, as ns/packet and as ratios to its wire. */
static void overview(const struct bench_env *env, const struct bench_case *cases, int n_cases)
{
	printf("\noverview%s: medians per busy CPU-second of the forwarding thread, each case "
	       "against its own wire\n",
	       env->tag);
	for (int i = 0; i < n_cases; i++) {
		const struct bench_case *c = &cases[i];
		double w = 1e3 / median(c->wire.busy, runs);
		double d = 1e3 / median(c->dsr.busy, runs);
		double n = 1e3 / median(c->nat.busy, runs);
		printf("  %8u dsr + %5u nat flows: wire %6.1f ns/pkt | worker dsr %6.1f ns/pkt "
		       "(+%5.1f) %.2fx | worker nat %6.1f ns/pkt (+%5.1f) %.2fx\n",
		       c->n_dsr, c->n_nat, w, d, d - w, w / d, n, n - w, w / n);
	}
	printf("  (+x = ns/packet the worker spends beyond the wire: fwd_burst plus the loop's "
	       "own work;\n   its growth with the flow count is the flow table's memory cost; "
	       "target >= 0.80x)\n");
}

/* ---- Zero-loss throughput (--zero-loss): RFC 2544 section 26.1 ---- */

/*
 * RFC 2544's throughput is the highest offered rate at which no frame is
 * lost, found by trials at fixed rates. A trial here offers zl_count frames
 * at R, paced by the TSC: frame k is due at t0 + k * tsc_hz / R, and each
 * generator iteration sends the frames due by then, at most a burst of
 * BURST, never one before it is due. Frames a hiccup of the generator made
 * late (an interrupt, the hypervisor: a burst of 32 frames is 3 us at
 * 10 Mpps, and with only that much slack trials lost 1-2 % of their pace
 * here) go out as soon as it runs again, at most ZL_BACKLOG of them; a
 * generator further behind (descheduled, or R beyond it) does not catch up:
 * the schedule moves on without the missed frames, so no more than
 * ZL_BACKLOG frames ever arrive ahead of R's pace, and the trial's real
 * offered rate (frames / time) shows the shortfall. Lost = frames the RX side
 * refused (net_ring: the RX ring full; memif: the server's TX not taken,
 * the link's ring full) + frames sent that did not come out within
 * ZL_DRAIN_MS of the last one that did (dropped at the consumer's TX, or
 * anywhere else). A trial passes if nothing was lost and the generator kept
 * the pace (offered >= ZL_PACE_OK x R). One that lost nothing but missed the
 * pace fails as "lag": R was not offered, so the consumer cannot be
 * credited with it.
 *
 * Unlike RFC 2544 (one trial per rate), a rate passes if one of up to
 * ZL_ATTEMPTS trials at it passes. This VM takes a CPU away from whatever
 * spins on it: a thread spinning alone on CPU 1 (both CPUs busy) saw 21
 * gaps of 0.1-1.7 ms in 10 s, of which only 2.5 ms were run-queue wait
 * (other tasks: kdamond runs ~1.2 ms at a time); the rest is interrupts
 * and the hypervisor, which no task can see or avoid. The 1024-frame ring
 * holds 50 us at 20 Mpps, 340 us at 3 Mpps: a single 250 ms trial met such
 * a gap about every other time, at rates far below the consumer's limit,
 * and the search fell to the floor (with 2M frames and no time bound, the
 * trials at low rates lasted seconds and all of them did). Hence trials of
 * at most ZL_TRIAL_MAX_MS (fewer than zl_count frames below 20 Mpps), and
 * ZL_ATTEMPTS of them. A consumer that cannot carry R loses frames in every
 * trial (10 kpps above its limit its ring overflows within one); one that
 * can passes unless every attempt meets a gap. The consumer's run-queue
 * wait is printed with each loss (wN).
 */
#define ZL_TRIALS     8	   /* search steps per consumer (lag retries and the cliff aside) */
#define ZL_BACKLOG    128  /* late frames the generator still sends (an eighth of the ring) */
#define ZL_PACE_OK    0.99 /* share of R the generator must offer for a trial to count */
#define ZL_RESOLUTION 1.02 /* the search stops when hi / lo is at most this */
#define ZL_CLIFF      1.05 /* the rate above the result whose loss is shown */
#define ZL_GEN_MARGIN 1.10 /* a result this close below a rate the generator lagged at: its limit */
#define ZL_FLOOR	24   /* the search goes no lower than the generator's maximum / this */
#define ZL_WAIT_MS	0.05 /* run-queue waits shorter than this are not printed */
#define ZL_ATTEMPTS	3    /* trials at one rate: it passes if one of them does */
#define ZL_TRIAL_MAX_MS 100  /* a trial lasts at most this long: fewer frames below 20 Mpps */
#define ZL_DRAIN_MS	100  /* after the last frame out: how long to wait for the rest */
#define ZL_QUIET_MS	5    /* before a trial: the path is empty once nothing came for this long */
#define LINE_RATE_10G	14.88 /* Mpps: 10GbE, 64-byte frames plus 20 bytes of preamble and gap */

struct zl_trial {
	double mpps;	      /* R asked for; 0 = unpaced, as fast as the generator goes */
	double offered_mpps;  /* frames offered / the time it took */
	double accepted_mpps; /* frames the RX side took / the same time */
	uint64_t offered, refused, unseen;
	double wait_ms;	    /* the consumer's run-queue wait during the trial (task_wait_ns) */
	double gen_wait_ms; /* the generator's (this thread's) */
};

static double zl_loss_ratio(const struct zl_trial *t)
{
	return t->offered > 0 ? (double)(t->refused + t->unseen) / (double)t->offered : 0;
}

/* Lost more than the tolerance: the consumer did not carry R. */
static bool zl_lost(const struct zl_trial *t)
{
	return t->refused + t->unseen > 0 && zl_loss_ratio(t) > zl_tolerance;
}

static bool zl_paced(const struct zl_trial *t)
{
	return t->offered_mpps >= ZL_PACE_OK * t->mpps;
}

/*
 * Empty a path before a trial: drop what the generator holds for it and
 * whatever still comes out, until ZL_QUIET_MS pass without a frame.
 * Returns how many frames came out.
 */
static uint64_t zl_quiet(struct path *pa)
{
	struct rte_mbuf *b[BURST];
	const uint64_t hz = rte_get_tsc_hz();
	uint64_t n_out = 0, t0 = rte_rdtsc(), last = t0;

	if (pa->n_pend > 0)
		rte_pktmbuf_free_bulk(pa->pend, pa->n_pend);
	pa->n_pend = 0;
	while (rte_rdtsc() - last < ZL_QUIET_MS * hz / 1000) {
		unsigned n = path_take(pa, b, BURST);
		if (n == 0)
			continue;
		rte_pktmbuf_free_bulk(b, n);
		n_out += n;
		last = rte_rdtsc();
		if (last - t0 > STALL_S * hz)
			die("a path did not go quiet before a zero-loss trial");
	}
	return n_out;
}

/*
 * One trial: `count` frames offered at `mpps` (0: unpaced) on an empty
 * path, then the drain. `tid` is the consumer's thread (its run-queue wait).
 */
static void zl_run(struct path *pa, struct gen *g, double mpps, uint64_t count, int tid,
		   struct zl_trial *t)
{
	const uint64_t hz = rte_get_tsc_hz();
	/* TSC cycles from one frame to the next, in 1/65536ths (0: unpaced) */
	const uint64_t ivl = mpps > 0 ? (uint64_t)((double)hz * 65536.0 / (mpps * 1e6)) : 0;
	uint64_t offered = 0, refused = 0, out = 0, k = 0;
	uint64_t w0 = task_wait_ns(tid), gw0 = task_wait_ns(getpid());
	struct rte_mbuf *b[BURST];
	struct stall st = {0, 0};

	const uint64_t t0 = rte_rdtsc();
	uint64_t next = t0, t_last = t0;
	while (offered < count) {
		unsigned want = 0, got, n;
		uint64_t now = rte_rdtsc();

		if (now >= next) {
			uint64_t due = BURST;
			if (ivl != 0) {
				/* frames 0 .. upto - 1 are due by now (k scheduled so far) */
				uint64_t upto = ((now - t0) << 16) / ivl + 1;
				due = upto > k ? upto - k : 0;
				if (due > ZL_BACKLOG) { /* too late: move on without the rest */
					k += due - ZL_BACKLOG;
					due = ZL_BACKLOG;
				}
				due = RTE_MIN(due, (uint64_t)BURST);
			}
			want = (unsigned)RTE_MIN(due, count - offered);
		}
		/* What came back is reused for what is due (and freed if nothing is). */
		n = gen_take(pa, b, want, &got);
		out += got;
		if (n > 0) {
			for (unsigned j = 0; j < n; j++)
				gen_frame(g, b[j]);
			unsigned s = path_put(pa, b, n);
			if (s < n) { /* refused: lost, as a NIC drops on a full RX ring */
				rte_pktmbuf_free_bulk(b + s, n - s);
				refused += n - s;
			}
			offered += n;
			k += n;
			next = t0 + ((k * ivl) >> 16);
			t_last = now;
		}
		stall_check(&st, got + n, "a zero-loss trial");
	}

	/* The drain: what was sent and has not come out yet, for a bounded time. */
	const uint64_t sent = offered - refused;
	uint64_t last_out = rte_rdtsc();
	while (out < sent && rte_rdtsc() - last_out < ZL_DRAIN_MS * hz / 1000) {
		unsigned got = path_take(pa, b, BURST);
		if (got > 0) {
			rte_pktmbuf_free_bulk(b, got);
			out += got;
			last_out = rte_rdtsc();
		}
	}
	if (out > sent)
		die("a zero-loss trial: more frames came out than went in");

	/* The span of the offers plus one interval: count / R when on pace. */
	double span = (double)(t_last - t0 + (ivl >> 16)) / (double)hz;
	memset(t, 0, sizeof(*t));
	t->mpps = mpps;
	t->offered = offered;
	t->refused = refused;
	t->unseen = sent - out;
	t->offered_mpps = span > 0 ? (double)offered / span / 1e6 : 0;
	t->accepted_mpps = span > 0 ? (double)sent / span / 1e6 : 0;
	t->wait_ms = (double)(task_wait_ns(tid) - w0) / 1e6;
	t->gen_wait_ms = (double)(task_wait_ns(getpid()) - gw0) / 1e6;
}

/* What a search drives: a path, its frames, the consumer's thread. */
struct zl_target {
	const char *label;
	struct path *pa;
	struct gen *g;
	int tid;
};

/*
 * A trial on an emptied path. Frames that come out while it is emptied after
 * a trial (zl_dirty) left that trial after its drain wait: counted as late.
 * A short exact pass first wakes fulcrumd's worker if it sleeps (adaptive
 * idle: up to idle_sleep_us before its next poll, a millisecond of frames).
 */
static void zl_trial(struct zl_target *z, double mpps, struct zl_trial *t)
{
	uint64_t count = zl_count;
	uint64_t n_out = zl_quiet(z->pa);

	if (z->pa->zl_dirty)
		z->pa->zl_late += n_out;
	if (mpps > 0)
		count = RTE_MIN(count, (uint64_t)(mpps * 1e3 * ZL_TRIAL_MAX_MS) + 1);
	gen_pass(z->pa, 2 * BURST, make_gen, z->g, NULL, NULL);
	z->pa->zl_dirty = true;
	zl_run(z->pa, z->g, mpps, count, z->tid, t);
}

static void zl_print(const struct zl_trial *t)
{
	printf(" %.2f", t->mpps);
	if (zl_lost(t))
		printf(" loss %.1e%s", zl_loss_ratio(t),
		       t->unseen > 0 && t->refused == 0 ? " (TX)" : "");
	else if (!zl_paced(t))
		printf(" lag %.0f%%", 100 * t->offered_mpps / t->mpps);
	else
		printf(" ok");
	if (!zl_lost(t) && t->refused + t->unseen > 0) /* within --loss-tolerance */
		printf(" (loss %.1e)", zl_loss_ratio(t));
	if (zl_lost(t) && t->wait_ms >= ZL_WAIT_MS)
		printf(" w%.1fms", t->wait_ms);
	if (!zl_lost(t) && !zl_paced(t) && t->gen_wait_ms >= ZL_WAIT_MS)
		printf(" g%.1fms", t->gen_wait_ms);
	printf(",");
}

struct zl_result {
	double best;	/* the highest zero-loss R found, Mpps (0: none, down to `lowest`) */
	double lowest;	/* the lowest R tried */
	double lag_min; /* the lowest R the generator could not pace with this consumer (0: none) */
	bool gen_limited; /* best is within ZL_GEN_MARGIN of lag_min (or the generator's maximum) */
	struct zl_trial at;    /* the trial that passed at best */
	struct zl_trial cliff; /* at best x ZL_CLIFF */
};

/*
 * R, tried up to ZL_ATTEMPTS times until one trial passes (see above: the
 * machine, not the consumer, spoils single trials). Every attempt is
 * printed; the last decides.
 */
static bool zl_try(struct zl_target *z, double mpps, struct zl_result *r, struct zl_trial *t)
{
	for (int attempt = 0; attempt < ZL_ATTEMPTS; attempt++) {
		zl_trial(z, mpps, t);
		zl_print(t);
		if (!zl_lost(t) && zl_paced(t))
			break;
	}
	if (!zl_lost(t) && !zl_paced(t) && (r->lag_min == 0 || mpps < r->lag_min))
		r->lag_min = mpps;
	return !zl_lost(t) && zl_paced(t);
}

/*
 * RFC 2544's search: first at the generator's maximum `gmax` (a consumer
 * that passes there is bounded by the generator, not found), then from
 * gmax / 3 (halved while it fails, down to gmax / ZL_FLOOR) a bisection on a
 * log scale, so that the steps are relative: the ZL_TRIALS steps take
 * hi / lo from 3 to ~1.02 (3^(1/64)). A trial that the generator could not
 * pace counts as a failure at that rate (R was not offered), and bounds
 * what the search can find: a result within ZL_GEN_MARGIN of such a rate is
 * the generator's limit with this consumer as much as the consumer's (a
 * consumer that touches the frames makes each of the generator's writes a
 * cache miss: paced, it fell behind at about a quarter of its maximum
 * against the null consumer here).
 */
static void zl_search(struct zl_target *z, double gmax, struct zl_result *r)
{
	int steps = 1;
	double hi = gmax, lo = gmax / 3;
	struct zl_trial t;

	memset(r, 0, sizeof(*r));
	printf("    %-10s:", z->label);
	r->lowest = hi;
	if (zl_try(z, hi, r, &t)) {
		r->best = hi;
		r->at = t;
	} else {
		while (steps < ZL_TRIALS) {
			steps++;
			r->lowest = lo;
			if (zl_try(z, lo, r, &t)) {
				r->best = lo;
				r->at = t;
				break;
			}
			hi = lo;
			lo /= 2;
			if (lo < gmax / ZL_FLOOR * 0.999)
				break;
		}
		while (r->best > 0 && steps < ZL_TRIALS && hi / lo > ZL_RESOLUTION) {
			double mid = sqrt(lo * hi);
			steps++;
			if (zl_try(z, mid, r, &t)) {
				lo = mid;
				r->at = t;
			} else {
				hi = mid;
			}
		}
		if (r->best > 0)
			r->best = lo;
	}
	if (r->best <= 0) {
		printf(" -> below %.2f Mpps\n", r->lowest);
		return;
	}
	/* The cliff: the least loss of up to ZL_ATTEMPTS trials, as for a pass. */
	printf(" | at +%.0f%%:", 100 * (ZL_CLIFF - 1));
	for (int attempt = 0; attempt < ZL_ATTEMPTS; attempt++) {
		zl_trial(z, r->best * ZL_CLIFF, &t);
		zl_print(&t);
		if (attempt == 0 || zl_loss_ratio(&t) < zl_loss_ratio(&r->cliff))
			r->cliff = t;
		if (!zl_lost(&t) && zl_paced(&t))
			break;
	}
	if (!zl_lost(&r->cliff) && !zl_paced(&r->cliff) &&
	    (r->lag_min == 0 || r->cliff.mpps < r->lag_min))
		r->lag_min = r->cliff.mpps;
	r->gen_limited =
	    r->best >= gmax || (r->lag_min > 0 && r->best * ZL_GEN_MARGIN >= r->lag_min);
	printf(" -> %.2f Mpps (loss %.1e; at +%.0f%% %.1e", r->best, zl_loss_ratio(&r->at),
	       100 * (ZL_CLIFF - 1), zl_loss_ratio(&r->cliff));
	if (r->lag_min > 0)
		printf("; the generator could not pace %.2f with it", r->lag_min);
	printf(")%s\n", r->gen_limited ? " generator-limited" : "");
}

/* The wire's lcore, as a null consumer (swap = false) or the wire (true). */
static void zl_launch(const struct bench_env *env, struct wire_arg *wa, bool swap)
{
	wa->port = env->wire.port;
	wa->swap = swap;
	wire_stop = 0;
	if (rte_eal_remote_launch(wire_main, wa, 2) != 0)
		die("cannot launch the wire");
}

static void zl_stop(void)
{
	__atomic_store_n(&wire_stop, 1, __ATOMIC_RELAXED);
	rte_eal_wait_lcore(2);
}

static void zl_summary_item(const char *label, const double *v, const int *glim, double wire)
{
	double m = median(v, runs);

	printf("%s %.2f%s", label, m, wire > 0 ? "" : " Mpps");
	if (wire > 0)
		printf(" (%.2fx)", m / wire);
	if (*glim > 0)
		printf(" [generator-limited in %d/%d]", *glim, runs);
}

/*
 * One case in zero-loss mode: case_open, then `runs` repetitions of the
 * whole search, each: the generator's maximum against a null consumer, then
 * the wire, worker dsr and worker nat searches bounded by it.
 */
static void zl_case(struct bench_env *env, int idx, const struct bench_case *c)
{
	enum { C_WIRE, C_DSR, C_NAT, C__COUNT };
	static const char *const names[C__COUNT] = {"wire", "worker dsr", "worker nat"};
	struct case_rt cr;
	struct dpdk_worker_stats ws0, ws1;
	double gmax[MAX_RUNS], best[C__COUNT][MAX_RUNS], at[C__COUNT][MAX_RUNS];
	double cliff[C__COUNT][MAX_RUNS], lagm[C__COUNT][MAX_RUNS];
	int n_lag[C__COUNT] = {0, 0, 0};
	int glim[C__COUNT] = {0, 0, 0};
	double load0 = loadavg();

	case_open(env, idx, c, &cr);
	dpdk_worker_stats(cr.dp, 0, &ws0);

	struct zl_target tg[C__COUNT] = {
	    {.label = names[C_WIRE], .pa = &env->wire, .g = &cr.gd, .tid = env->tid_wire},
	    {.label = names[C_DSR], .pa = &cr.pf, .g = &cr.gd, .tid = env->tid_worker},
	    {.label = names[C_NAT], .pa = &cr.pf, .g = &cr.gn, .tid = env->tid_worker},
	};
	env->wire.zl_late = 0;
	for (int r = 0; r < runs; r++) {
		struct wire_arg wa;
		struct zl_trial gt;
		struct zl_result res;
		struct dpdk_worker_stats a, b;

		printf(
		    "  search %d of %d (load average %.2f): R in Mpps, ok | loss ratio (TX: all of "
		    "it after the RX ring) | lag = offered < %.0f%% of R; wN / gN = the consumer / "
		    "generator waited N ms for its CPU\n",
		    r + 1, runs, loadavg(), 100 * ZL_PACE_OK);
		/*
		 * The null consumer first, once fulcrumd's worker sleeps (its empty
		 * polls would share CPU 1): the generator's own maximum.
		 */
		zl_launch(env, &wa, false);
		dpdk_worker_stats(cr.dp, 0, &a);
		for (int k = 0; k < 200; k++) {
			gen_run(&env->wire, &cr.gd, zl_count / 10, NULL);
			dpdk_worker_stats(cr.dp, 0, &b);
			if (b.sleeps > a.sleeps)
				break;
		}
		env->wire.zl_dirty = false;
		zl_trial(&tg[C_WIRE], 0, &gt);
		zl_stop();
		gmax[r] = gt.accepted_mpps;
		printf("    generator max (null consumer: RX -> TX, frames untouched): %.2f Mpps "
		       "offered, %.2f taken (%.1f%% refused), %llu frames\n",
		       gt.offered_mpps, gt.accepted_mpps, 100 * zl_loss_ratio(&gt),
		       (unsigned long long)gt.offered);
		if (gmax[r] <= 0)
			die("the generator offered nothing");

		for (int ci = 0; ci < C__COUNT; ci++) {
			if (ci == C_WIRE)
				zl_launch(env, &wa, true);
			zl_search(&tg[ci], gmax[r], &res);
			if (ci == C_WIRE)
				zl_stop();
			best[ci][r] = res.best;
			at[ci][r] = zl_loss_ratio(&res.at);
			cliff[ci][r] = zl_loss_ratio(&res.cliff);
			glim[ci] += res.best > 0 && res.gen_limited;
			if (res.lag_min > 0)
				lagm[ci][n_lag[ci]++] = res.lag_min;
		}
	}

	dpdk_worker_stats(cr.dp, 0, &ws1);
	uint64_t drops = fwd_drops_between(&ws0, &ws1);
	printf("  worker over the searches: rx %llu, tx %llu, fwd drops %llu, TX unsent %llu, live "
	       "flows %llu; frames out after a trial's %d ms drain wait: wire %llu, worker %llu\n",
	       (unsigned long long)(ws1.rx - ws0.rx), (unsigned long long)(ws1.tx - ws0.tx),
	       (unsigned long long)drops, (unsigned long long)(ws1.tx_unsent - ws0.tx_unsent),
	       (unsigned long long)ws1.flows, ZL_DRAIN_MS, (unsigned long long)env->wire.zl_late,
	       (unsigned long long)cr.pf.zl_late);
	if (drops != 0)
		die("the worker dropped frames of established flows");
	if (ws1.flows != (uint64_t)c->n_dsr + c->n_nat)
		die("the flow table does not hold the case's flows");

	double g = median(gmax, runs), w = median(best[C_WIRE], runs);
	printf(" medians of %d searches (load average %.2f at the case's start, %.2f now):\n", runs,
	       load0, loadavg());
	printf("  zero-loss throughput (RFC 2544 style): ");
	zl_summary_item("wire", best[C_WIRE], &glim[C_WIRE], 0);
	printf(" | ");
	zl_summary_item("worker dsr", best[C_DSR], &glim[C_DSR], w);
	printf(" | ");
	zl_summary_item("worker nat", best[C_NAT], &glim[C_NAT], w);
	printf(" | generator max %.2f\n", g);
	printf("  loss ratio at the result -> at +%.0f%%: wire %.1e -> %.1e | worker dsr %.1e -> "
	       "%.1e | worker nat %.1e -> %.1e\n",
	       100 * (ZL_CLIFF - 1), median(at[C_WIRE], runs), median(cliff[C_WIRE], runs),
	       median(at[C_DSR], runs), median(cliff[C_DSR], runs), median(at[C_NAT], runs),
	       median(cliff[C_NAT], runs));
	printf("  lowest R the generator could not pace (median of the searches that hit one):");
	for (int ci = 0; ci < C__COUNT; ci++) {
		printf("%s %s ", ci ? " |" : "", names[ci]);
		if (n_lag[ci] > 0)
			printf("%.2f (%d/%d)", median(lagm[ci], n_lag[ci]), n_lag[ci], runs);
		else
			printf("none");
	}
	printf("\n");
	printf("  sustains 10GbE 64-byte line rate (%.2f Mpps): ", LINE_RATE_10G);
	for (int ci = 0; ci < C__COUNT; ci++)
		printf("%s%s %s", ci ? " | " : "", names[ci],
		       median(best[ci], runs) >= LINE_RATE_10G ? "yes" : "no");
	printf("\n");
	if (glim[C_WIRE] * 2 > runs)
		printf("  the generator could not pace %.0f%% above the wire's figure (or the wire "
		       "took its maximum): the wire figure is the generator's limit, not the "
		       "wire's\n",
		       100 * (ZL_GEN_MARGIN - 1));
	case_close(&cr);
}

/* The wire's port: configured and started once per kind of port, its lcore launched per run. */
static void wire_open(struct bench_env *env)
{
	if (env->pmd == PMD_RING) {
		path_create_ring(&env->wire, "fb_wire");
		port_start(env->wire.port, 1, 1, gen_pool); /* net_ring passes mbufs: no pool used */
		return;
	}
	/* The same pool shape as the worker's: memif RX allocates an mbuf per frame. */
	env->wire_pool = rte_pktmbuf_pool_create("fb_wire_pool",
						 2 * RING_SIZE + 4 * BURST + 2 * 64 + 1023, 64, 0,
						 RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (env->wire_pool == NULL)
		die("pool");
	path_create_memif(&env->wire, "net_memif_wire", 0);
	port_start(env->wire.port, 1, 1, env->wire_pool);
	path_wait_up(&env->wire);
}

static void wire_close(struct bench_env *env)
{
	rte_eth_dev_stop(env->wire.port);
	rte_eth_dev_close(env->wire.port);
	path_drain(&env->wire);
	if (env->pmd == PMD_RING) {
		rte_ring_free(env->wire.rx);
		rte_ring_free(env->wire.tx);
	} else {
		path_close_memif(&env->wire);
		rte_mempool_free(env->wire_pool);
		env->wire_pool = NULL;
	}
}

static void usage(const char *prog)
{
	fprintf(
	    stderr,
	    "usage: %s [--pmd ring|memif] [--zero-loss [--loss-tolerance F]] [--quick] [--runs R] "
	    "[--packets P] [--flows N]...\n",
	    prog);
	exit(2);
}

int main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--lcores", "0@0,1@1,2@1", "--no-huge", "-m", "1024",
		       "--no-pci", "--no-shconf", "--log-level=error", NULL};
	struct bench_case want[MAX_CASES], cases[MAX_CASES];
	struct bench_env env;
	struct pb_spec s;
	char err[256];
	int n_cases = 0, tid_worker, tid_wire;
	bool quick = false, packets_set = false, runs_set = false;
	bool pmds[PMD__COUNT] = {true, true};
	double load = loadavg();

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(want, 0, sizeof(want));

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			pkts_per_run = 2000000;
			runs = 3;
			quick = true;
		} else if (strcmp(argv[i], "--zero-loss") == 0) {
			zero_loss = true;
		} else if (strcmp(argv[i], "--loss-tolerance") == 0 && i + 1 < argc) {
			char *end;
			zl_tolerance = strtod(argv[++i], &end);
			if (*end != '\0' || !(zl_tolerance >= 0 && zl_tolerance < 1))
				usage(argv[0]);
		} else if (strcmp(argv[i], "--pmd") == 0 && i + 1 < argc) {
			i++;
			pmds[PMD_RING] = strcmp(argv[i], "ring") == 0;
			pmds[PMD_MEMIF] = strcmp(argv[i], "memif") == 0;
			if (!pmds[PMD_RING] && !pmds[PMD_MEMIF])
				usage(argv[0]);
		} else if (strcmp(argv[i], "--packets") == 0 && i + 1 < argc) {
			pkts_per_run = strtoull(argv[++i], NULL, 0);
			if (pkts_per_run < 1000)
				usage(argv[0]);
			packets_set = true;
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atoi(argv[++i]);
			if (runs < 1 || runs > MAX_RUNS)
				usage(argv[0]);
			runs_set = true;
		} else if (strcmp(argv[i], "--flows") == 0 && i + 1 < argc) {
			char *end;
			unsigned long n = strtoul(argv[++i], &end, 0);
			/* The table holds twice the flows; flow.h caps its capacity. */
			if (*end != '\0' || n < 1 || n > FLOW_CAPACITY_MAX / 2 - NAT_FLOWS_MAX ||
			    n_cases == MAX_CASES)
				usage(argv[0]);
			want[n_cases].n_dsr = (uint32_t)n;
			want[n_cases].n_nat = n < NAT_FLOWS_MAX ? (uint32_t)n : NAT_FLOWS_MAX;
			n_cases++;
		} else {
			usage(argv[0]);
		}
	}
	if (n_cases == 0) {
		want[0].n_dsr = 1u << 20;
		want[0].n_nat = NAT_FLOWS_MAX;
		want[1].n_dsr = 4096;
		want[1].n_nat = 4096;
		n_cases = 2;
	}
	warm_unit = pkts_per_run;
	if (zero_loss) {
		/*
		 * Trials of 2M frames (--packets), 3 searches (--runs); --quick: one
		 * search of 200k-frame trials. The warm-up keeps the quick run's chunks.
		 */
		zl_count = packets_set ? pkts_per_run : quick ? 200000 : 2000000;
		if (!runs_set)
			runs = quick ? 1 : 3;
		warm_unit = 2000000;
	}
	if (dpdk_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal, err, sizeof(err)) != 0)
		die(err);
	if (rte_lcore_count() < 3)
		die("needs 3 lcores");
	gen_pool = rte_pktmbuf_pool_create("fb_gen", GEN_POOL, 128, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	if (gen_pool == NULL)
		die("pool");
	for (int k = 0; k < 2; k++) {
		pb_init(&s, ADDR_V4);
		s.dst = pb_addr(k == K_DSR ? "198.51.100.1" : "198.51.100.2");
		s.dport = 80;
		s.tcp_flags = PKT_TCP_ACK;
		tmpl_len[k] = (uint16_t)pb_build(&s, tmpl[k], sizeof(tmpl[k]));
		if (tmpl_len[k] == 0)
			die("template");
	}
	/* Backend 10.200.0.x:8080 -> SNAT 192.0.2.100:port; make_synack fills in x and port. */
	tmpl_synack_len = (uint16_t)bench_synack(tmpl_synack, sizeof(tmpl_synack));
	if (tmpl_synack_len == 0)
		die("template");
	/* Abstract (no file to clean up) and this process's own. */
	snprintf(memif_socket, sizeof(memif_socket), "/fulcrum-bench-dpdk-%d.sock", (int)getpid());

	tid_worker = task_by_name("rte-worker-1"); /* EAL's thread names in 22.11 */
	tid_wire = task_by_name("rte-worker-2");
	if (tid_worker < 0 || tid_wire < 0)
		printf("(lcore threads not found in /proc: no per-CPU-second figures)\n");

	for (int pmd = 0; pmd < PMD__COUNT; pmd++) {
		if (!pmds[pmd])
			continue;
		memset(&env, 0, sizeof(env));
		env.pmd = pmd;
		env.tag = pmd == PMD_RING ? "" : " [net_memif]";
		env.tid_worker = tid_worker;
		env.tid_wire = tid_wire;
		memcpy(cases, want, sizeof(cases));
		rng = 42; /* the same flow orders on both kinds of port */
		wire_open(&env);

		if (pmd == PMD_RING)
			printf("bench_dpdk_ring: net_ring ports (rte_eth_from_rings), generator on CPU "
			       "0, worker/wire on CPU 1 (pinned),\n");
		else
			printf("\nbench_dpdk_ring: net_memif ports (client/server pairs in this "
			       "process; non-zero-copy: every frame copied into and out of shared "
			       "memory),\n  generator on CPU 0 (server side), worker/wire on CPU 1 "
			       "(client side, pinned),\n");
		if (!zero_loss)
			printf("  %u-packet rings, bursts of %d, 64-byte IPv4 TCP frames, %llu "
			       "packets per run, %d rounds per case; load average at start %.2f\n",
			       RING_SIZE, BURST, (unsigned long long)pkts_per_run, runs,
			       pmd == PMD_RING ? load : loadavg());
		else
			printf(
			    "  zero-loss mode (RFC 2544 section 26.1 throughput): %u-packet rings, "
			    "64-byte IPv4 TCP frames offered at a TSC-paced rate R in bursts of up "
			    "to %d,\n  %llu frames per trial (at most %d ms), loss tolerance %g%s, "
			    "a binary search (log scale) of at most %d steps per consumer, %d "
			    "searches per case; load average at start %.2f\n",
			    RING_SIZE, BURST, (unsigned long long)zl_count, ZL_TRIAL_MAX_MS,
			    zl_tolerance, zl_tolerance > 0 ? "" : " (strict)", ZL_TRIALS, runs,
			    pmd == PMD_RING ? load : loadavg());
		printf("  wire = RX burst -> swap MACs -> TX burst (dsr frames)\n"
		       "  dsr  = fulcrumd worker (dpdk_dp.c), established dsr flows, random order\n"
		       "  nat  = the same worker, the case's nat flows (SNAT; established: the "
		       "warm-up answered each SYN with its backend's SYN+ACK)\n");

		if (zero_loss) {
			for (int i = 0; i < n_cases; i++)
				zl_case(&env, i, &cases[i]);
		} else {
			for (int i = 0; i < n_cases; i++)
				run_case(&env, i, &cases[i]);
			overview(&env, cases, n_cases);
		}
		wire_close(&env);
	}

	rte_mempool_free(gen_pool);
	dpdk_eal_cleanup();
	return 0;
}
