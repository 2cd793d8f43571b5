/*
 * bench_dpdk_ring: fulcrumd's real worker loop (dataplane/dpdk_dp.c) on a
 * net_ring port, against a plain RX -> MAC swap -> TX wire on another
 * net_ring port of the same shape, same generator, same run.
 *
 *   bench_dpdk_ring              two cases, each 5 rounds of (wire, dsr, nat) runs of 10M
 *                                packets, medians, ratios: 1M flows (the flow table in DRAM)
 *                                and 4096 flows (the table cache-resident)
 *   bench_dpdk_ring --flows N    only the case of N dsr flows (repeat for several cases)
 *   bench_dpdk_ring --runs R     R rounds per case (1..16)
 *   bench_dpdk_ring --packets P  P packets per run (default 10M)
 *   bench_dpdk_ring --quick      fewer and shorter rounds (smoke test)
 *
 * A case of N flows holds N established dsr flows and min(N, 60000) nat
 * flows (one SNAT address: fewer than 64512 ports), each visited in a fixed
 * random order. The two default cases separate the worker loop's own cost
 * (4096 flows: every lookup hits the cache, what is left beyond the wire is
 * fwd_burst's instructions and the loop's) from the flow table's DRAM
 * misses (the difference between the cases).
 *
 * Lcores: 0 = generator on CPU 0; 1 = fulcrumd's worker and 2 = the wire,
 * both pinned to CPU 1 (LAB.md: pin for benchmarks). The main lcore takes
 * forwarded mbufs off a port's TX ring, writes the next flow's frame into
 * each (a template copy plus source address, port and TCP flags: the frame
 * lands in the cache as a NIC with DDIO would put it) and puts them on the
 * port's RX ring. Each port has its own ring pair; the generator feeds one
 * port per run.
 *
 * The worker is dpdk_dp's own loop, started with dpdk_open/dpdk_start on a
 * port made with rte_eth_from_rings (one per case, closed with dpdk_close
 * after it): dpdk_open finds that port by its ethdev name, so dpdk_dp needed
 * no hook. Runs are interleaved (wire, dsr, nat, wire, ...) because this
 * 2-vCPU VM is shared and its load drifts; that needs the worker to give
 * CPU 1 to the wire between its runs, so it runs with the adaptive idle
 * policy, tuned to never trigger while it has work: sleep 1 ms only after
 * 20000 empty polls in a row (milliseconds of nothing: a descheduled
 * generator does not trigger it; the lab's 300 polls did, and then each
 * sleep cost the worker a millisecond). Each wire run starts once the worker
 * is asleep. Under load the adaptive loop is then exactly the busy loop: the
 * sleeps counted during the measured runs are printed to show it.
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
 * The RX-ring fill printed with each run says who waited for whom: near
 * full, the consumer (wire or worker) is the bottleneck; lower, the
 * generator is (the wire usually: it then gets partial bursts, so its busy
 * cost per packet is if anything overstated, in the worker's favour).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
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

#define RING_SIZE 1024 /* like a NIC descriptor ring */
#define GEN_POOL 8191  /* 2^n - 1: both ring pairs full, TX buffers and caches */
#define BURST 32
#define MAX_RUNS 16
#define MAX_CASES 4
#define NAT_FLOWS_MAX 60000 /* one SNAT address: fewer than 64512 ports */

enum { K_DSR = 0, K_NAT = 1 };

static uint64_t pkts_per_run = 10000000;
static int runs = 5;

static struct rte_mempool *gen_pool;
static uint8_t tmpl[2][64];
static uint16_t tmpl_len[2];

static uint64_t rng = 42; /* bench_rand state */

static void die(const char *msg)
{
	fprintf(stderr, "bench_dpdk_ring: %s\n", msg);
	exit(1);
}

/* ---- Generator (main lcore) ---- */

struct path {
	struct rte_ring *rx, *tx; /* as the port sees them */
	uint16_t port;
};

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
	double rx_fill;   /* mean RX-ring occupancy seen by the generator, 0..1 */
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
 * The CPU time a thread of this process has had, in ns (schedstat's first
 * field), or 0. The VM is shared: a pinned lcore still loses its CPU to
 * other processes, and wall-clock Mpps then measure the machine's load.
 * Packets per CPU-second of the consumer's thread do not, but they still
 * charge the consumer for the empty polls it spins through while the
 * generator on the other CPU is descheduled. Packets per busy CPU-second
 * do not: the CPU time times the share of the consumer's loop time spent
 * in iterations that received packets (a preemption lands in busy and idle
 * iterations in proportion to their time, so the share is unaffected).
 */
static uint64_t task_cpu_ns(int tid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
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
 * Keep the path's RX ring full and count what comes out of its TX ring
 * until `count` packets have come out. Mbufs the consumer dropped are
 * replaced from the pool.
 */
static struct gen_result gen_run(const struct path *pa, struct gen *g, uint64_t count,
				 const struct consumer *c)
{
	struct rte_mbuf *b[BURST];
	uint64_t out = 0, fill_sum = 0, iters = 0;
	int tid = c != NULL ? c->tid : 0;
	double busy0 = 0, idle0 = 0, busy1 = 0, idle1 = 0;
	struct gen_result r;

	if (c != NULL)
		consumer_load(c, &busy0, &idle0);
	uint64_t c0 = task_cpu_ns(tid);
	uint64_t t0 = rte_rdtsc();

	while (out < count) {
		unsigned used = rte_ring_count(pa->rx);
		unsigned room = RING_SIZE - 1 - used;
		unsigned want = room < BURST ? room : BURST;
		unsigned n;

		fill_sum += used;
		iters++;
		n = rte_ring_sc_dequeue_burst(pa->tx, (void **)b, BURST, NULL);
		out += n;
		if (n > want) {
			rte_pktmbuf_free_bulk(b + want, n - want);
			n = want;
		}
		if (n < want && rte_pktmbuf_alloc_bulk(gen_pool, b + n, want - n) == 0)
			n = want;
		for (unsigned j = 0; j < n; j++)
			gen_frame(g, b[j]);
		if (n > 0 && rte_ring_sp_enqueue_burst(pa->rx, (void **)b, n, NULL) != n)
			die("RX ring refused room it had");
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
	r.rx_fill = (double)fill_sum / (double)iters / (RING_SIZE - 1);
	return r;
}

/* Empty a path's rings (at the end, before the ports go). */
static void path_drain(const struct path *pa)
{
	struct rte_mbuf *b[BURST];
	unsigned n;

	while ((n = rte_ring_sc_dequeue_burst(pa->rx, (void **)b, BURST, NULL)) > 0)
		rte_pktmbuf_free_bulk(b, n);
	while ((n = rte_ring_sc_dequeue_burst(pa->tx, (void **)b, BURST, NULL)) > 0)
		rte_pktmbuf_free_bulk(b, n);
}

/* ---- The plain wire (lcore 2, launched for each of its runs) ---- */

static volatile int wire_stop;

static int wire_main(void *arg)
{
	uint16_t port = *(const uint16_t *)arg;
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
		for (uint16_t i = 0; i < n; i++) {
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

static void path_create(struct path *pa, const char *name)
{
	static from_rings_fn from_rings;
	char rn[64];

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

static void gen_init(struct gen *g, int kind, uint32_t n)
{
	memset(g, 0, sizeof(*g));
	g->kind = kind;
	g->n = n;
	g->order = malloc(sizeof(*g->order) * n);
	if (g->order == NULL)
		die("out of memory");
	for (uint32_t i = 0; i < n; i++)
		g->order[i] = i;
	shuffle(g->order, n);
	g->tcp_flags = PKT_TCP_ACK;
}

static void print_run(const char *label, int r, struct gen_result res)
{
	printf("  round %d %-5s %6.2f Mpps wall | %6.2f per CPU-s (%3.0f%% of a CPU) | %6.2f per "
	       "busy CPU-s (%3.0f%% busy) | RX ring %3.0f%% full\n",
	       r + 1, label, res.mpps, res.cpu_mpps, 100 * res.cpu_share, res.busy_mpps,
	       100 * res.busy_share, 100 * res.rx_fill);
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

/* What the cases share: the wire's port and the threads to charge CPU time to. */
struct bench_env {
	struct path wire;
	int tid_worker, tid_wire;
};

static void series_put(struct series *s, int r, struct gen_result res)
{
	s->wall[r] = res.mpps;
	s->cpu[r] = res.cpu_mpps;
	s->busy[r] = res.busy_mpps;
}

/*
 * One case: a fresh port and dpdk_dp whose flow table holds c->n_dsr dsr and
 * c->n_nat nat flows, then `runs` interleaved rounds of (wire, dsr, nat).
 */
static void run_case(const struct bench_env *env, int idx, struct bench_case *c)
{
	struct path pf;
	struct gen gd, gn;
	struct dpdk_params p;
	struct dpdk_dp *dp;
	struct dpdk_worker_stats ws0, ws1;
	char name[32], devargs[64], err[256];
	uint8_t mac[6];

	gen_init(&gd, K_DSR, c->n_dsr);
	gen_init(&gn, K_NAT, c->n_nat);

	/* fulcrumd's port: dpdk_open finds it by its ethdev name. */
	snprintf(name, sizeof(name), "fb_fc%d", idx);
	snprintf(devargs, sizeof(devargs), "net_ring_%s", name); /* what rte_eth_from_rings names it */
	path_create(&pf, name);
	memset(&p, 0, sizeof(p));
	p.port_devargs = devargs;
	p.rx_desc = RING_SIZE;
	p.tx_desc = RING_SIZE;
	p.workers = 1;
	p.mbufs = 2 * RING_SIZE + 4 * BURST + 2 * 64 + 1023;
	p.mbuf_cache = 64;
	p.burst = BURST;
	p.tx_flush_us = 100;
	p.idle = DPDK_IDLE_ADAPTIVE;
	p.idle_polls = 20000;
	p.idle_sleep_us = 1000;
	p.flow_capacity = 2 * (c->n_dsr + c->n_nat);
	flow_timeouts_default(&p.timeouts);
	p.timeouts.tcp_syn = 600ull * NS_PER_S; /* nat flows stay SYN_SENT: no replies here */
	p.snat_v4 = pb_addr("192.0.2.100");
	p.snat_port_lo = 1024;
	p.snat_port_hi = 65535;
	p.snat_seed = 1;
	p.control_ring = 1024;
	if (dpdk_open(&p, &dp, err, sizeof(err)) != 0)
		die(err);
	dpdk_port_mac(dp, mac);
	if (dpdk_publish(dp, build_state(mac), NULL, NULL) != 0 || dpdk_start(dp) != 0)
		die("publish/start failed");

	printf("\ncase %d: %u established dsr flows + %u nat flows in the table (capacity %u)\n",
	       idx + 1, c->n_dsr, c->n_nat, p.flow_capacity);

	/* Warm-up: every flow's SYN (new flow: Maglev, insert), then its ACK. */
	gd.tcp_flags = gn.tcp_flags = PKT_TCP_SYN;
	gen_run(&pf, &gd, c->n_dsr, NULL);
	gen_run(&pf, &gn, c->n_nat, NULL);
	gd.tcp_flags = gn.tcp_flags = PKT_TCP_ACK;
	gen_run(&pf, &gd, c->n_dsr, NULL);
	gen_run(&pf, &gn, c->n_nat, NULL);
	/* Short flow sets: a few more passes so that every line the lookups use is warm. */
	if (c->n_dsr < pkts_per_run / 20)
		gen_run(&pf, &gd, pkts_per_run / 20, NULL);
	dpdk_worker_stats(dp, 0, &ws0);

	const struct consumer wire = {.tid = env->tid_wire, .dp = NULL};
	const struct consumer worker = {.tid = env->tid_worker, .dp = dp};

	uint64_t sleeps_measured = 0;
	for (int r = 0; r < runs; r++) {
		struct dpdk_worker_stats a, b;
		struct gen_result res;
		uint16_t wport = env->wire.port;

		wire_stop = 0;
		if (rte_eal_remote_launch(wire_main, &wport, 2) != 0)
			die("cannot launch the wire");
		/*
		 * Settle until fulcrumd's worker, now without packets, has gone to
		 * sleep: its empty polls (each with a flow-table sweep) would
		 * otherwise share CPU 1 with the wire at the start of the run.
		 */
		dpdk_worker_stats(dp, 0, &a);
		for (int k = 0; k < 200; k++) {
			gen_run(&env->wire, &gd, pkts_per_run / 50, NULL);
			dpdk_worker_stats(dp, 0, &b);
			if (b.sleeps > a.sleeps)
				break;
		}
		res = gen_run(&env->wire, &gd, pkts_per_run, &wire);
		__atomic_store_n(&wire_stop, 1, __ATOMIC_RELAXED);
		rte_eal_wait_lcore(2);
		series_put(&c->wire, r, res);
		print_run("wire", r, res);

		gen_run(&pf, &gd, pkts_per_run / 20, NULL); /* wakes the worker */
		dpdk_worker_stats(dp, 0, &a);
		res = gen_run(&pf, &gd, pkts_per_run, &worker);
		series_put(&c->dsr, r, res);
		print_run("dsr", r, res);
		res = gen_run(&pf, &gn, pkts_per_run, &worker);
		dpdk_worker_stats(dp, 0, &b);
		series_put(&c->nat, r, res);
		print_run("nat", r, res);
		sleeps_measured += b.sleeps - a.sleeps;
	}
	dpdk_worker_stats(dp, 0, &ws1);
	uint64_t drops = 0;
	for (unsigned k = 0; k < FWD_DROP__COUNT; k++)
		drops += ws1.drops[k] - ws0.drops[k];
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

	dpdk_close(dp);
	path_drain(&pf);
	rte_ring_free(pf.rx);
	rte_ring_free(pf.tx);
	free(gd.order);
	free(gn.order);
}

/* One line per case: medians per busy CPU-second, as ns/packet and as ratios to its wire. */
static void overview(const struct bench_case *cases, int n_cases)
{
	printf("\noverview: medians per busy CPU-second of the forwarding thread, each case "
	       "against its own wire\n");
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

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--quick] [--runs R] [--packets P] [--flows N]...\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--lcores", "0@0,1@1,2@1", "--no-huge", "-m", "1024",
		       "--no-pci", "--no-shconf", "--log-level=error", NULL};
	struct bench_case cases[MAX_CASES];
	struct bench_env env;
	struct pb_spec s;
	struct rte_eth_conf conf;
	char err[256];
	int n_cases = 0;
	double load0 = loadavg();

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(cases, 0, sizeof(cases));

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			pkts_per_run = 2000000;
			runs = 3;
		} else if (strcmp(argv[i], "--packets") == 0 && i + 1 < argc) {
			pkts_per_run = strtoull(argv[++i], NULL, 0);
			if (pkts_per_run < 1000)
				usage(argv[0]);
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atoi(argv[++i]);
			if (runs < 1 || runs > MAX_RUNS)
				usage(argv[0]);
		} else if (strcmp(argv[i], "--flows") == 0 && i + 1 < argc) {
			char *end;
			unsigned long n = strtoul(argv[++i], &end, 0);
			/* The table holds twice the flows; flow.h caps its capacity. */
			if (*end != '\0' || n < 1 || n > FLOW_CAPACITY_MAX / 2 - NAT_FLOWS_MAX ||
			    n_cases == MAX_CASES)
				usage(argv[0]);
			cases[n_cases].n_dsr = (uint32_t)n;
			cases[n_cases].n_nat = n < NAT_FLOWS_MAX ? (uint32_t)n : NAT_FLOWS_MAX;
			n_cases++;
		} else {
			usage(argv[0]);
		}
	}
	if (n_cases == 0) {
		cases[0].n_dsr = 1u << 20;
		cases[0].n_nat = NAT_FLOWS_MAX;
		cases[1].n_dsr = 4096;
		cases[1].n_nat = 4096;
		n_cases = 2;
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

	/* The wire's port: configured and started once, its lcore launched per run. */
	path_create(&env.wire, "fb_wire");
	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_configure(env.wire.port, 1, 1, &conf) != 0 ||
	    rte_eth_rx_queue_setup(env.wire.port, 0, RING_SIZE, rte_socket_id(), NULL, gen_pool) != 0 ||
	    rte_eth_tx_queue_setup(env.wire.port, 0, RING_SIZE, rte_socket_id(), NULL) != 0 ||
	    rte_eth_dev_start(env.wire.port) != 0)
		die("wire port setup failed");
	env.tid_worker = task_by_name("rte-worker-1"); /* EAL's thread names in 22.11 */
	env.tid_wire = task_by_name("rte-worker-2");
	if (env.tid_worker < 0 || env.tid_wire < 0)
		printf("(lcore threads not found in /proc: no per-CPU-second figures)\n");

	printf("bench_dpdk_ring: net_ring ports (rte_eth_from_rings), generator on CPU 0, worker/wire "
	       "on CPU 1 (pinned),\n  %u-packet rings, bursts of %d, 64-byte IPv4 TCP frames, %llu "
	       "packets per run, %d rounds per case; load average at start %.2f\n",
	       RING_SIZE, BURST, (unsigned long long)pkts_per_run, runs, load0);
	printf("  wire = RX burst -> swap MACs -> TX burst (dsr frames)\n"
	       "  dsr  = fulcrumd worker (dpdk_dp.c), established dsr flows, random order\n"
	       "  nat  = the same worker, the case's nat flows (SNAT, no replies: SYN_SENT flow "
	       "hits)\n");

	for (int i = 0; i < n_cases; i++)
		run_case(&env, i, &cases[i]);
	overview(cases, n_cases);

	rte_eth_dev_stop(env.wire.port);
	rte_eth_dev_close(env.wire.port);
	path_drain(&env.wire);
	rte_ring_free(env.wire.rx);
	rte_ring_free(env.wire.tx);
	rte_mempool_free(gen_pool);
	dpdk_eal_cleanup();
	return 0;
}
