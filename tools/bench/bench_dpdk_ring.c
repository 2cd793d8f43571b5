/*
 * bench_dpdk_ring: fulcrumd's real worker loop (dataplane/dpdk_dp.c) on a
 * net_ring port, against a plain RX -> MAC swap -> TX wire on another
 * net_ring port of the same shape, same generator, same run.
 *
 *   bench_dpdk_ring            5 rounds of (wire, dsr, nat) runs of 10M packets, medians, ratios
 *   bench_dpdk_ring --quick    smaller (smoke test)
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
 * port made with rte_eth_from_rings: dpdk_open finds that port by its ethdev
 * name, so dpdk_dp needed no hook. Runs are interleaved (wire, dsr, nat, wire,
 * ...) because this 2-vCPU VM is shared and its load drifts; that needs the
 * worker to give CPU 1 to the wire between its runs, so it runs with the
 * adaptive idle policy, tuned to never trigger while it has work: sleep
 * 1 ms only after 20000 empty polls in a row (milliseconds of nothing: a
 * descheduled generator does not trigger it; the lab's 300 polls did, and
 * then each sleep cost the worker a millisecond). Each wire run starts once
 * the worker is asleep. Under load the adaptive
 * loop is then exactly the busy loop: the sleeps counted during the
 * measured runs are printed to show it.
 *
 * Both sides pay the same generator, so the ratio is the worker's cost
 * against the wire's. The RX-ring fill printed with each run says who waited
 * for whom: near full, the consumer (wire or worker) is the bottleneck; near
 * empty, the generator is, and the ratio understates the gap.
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

#define RING_SIZE 1024 /* like a NIC descriptor ring */
#define GEN_POOL 8191  /* 2^n - 1: both ring pairs full, TX buffers and caches */
#define BURST 32
#define MAX_RUNS 16
#define N_BACKENDS 16

enum { K_DSR = 0, K_NAT = 1 };

static uint32_t n_dsr = 1u << 20;
static uint32_t n_nat = 60000; /* one SNAT address: fewer than 64512 ports */
static uint64_t pkts_per_run = 10000000;
static int runs = 5;

static struct rte_mempool *gen_pool;
static uint8_t tmpl[2][64];
static uint16_t tmpl_len[2];

static uint64_t rng = 42;
static uint64_t next_rand(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

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
	double mpps;     /* packets out / wall time */
	double cpu_mpps; /* packets out / CPU time the consumer's thread got (0 = unknown) */
	double cpu_share; /* that CPU time / wall time */
	double rx_fill;  /* mean RX-ring occupancy seen by the generator, 0..1 */
};

/*
 * The CPU time a thread of this process has had, in ns (schedstat's first
 * field), or 0. The VM is shared: a pinned lcore still loses its CPU to
 * other processes, and wall-clock Mpps then measure the machine's load.
 * Packets per CPU-second of the consumer's thread do not (both the wire and
 * the worker spin when idle, so both are charged alike for empty polls).
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
static struct gen_result gen_run(const struct path *pa, struct gen *g, uint64_t count, int tid)
{
	struct rte_mbuf *b[BURST];
	uint64_t out = 0, fill_sum = 0, iters = 0;
	uint64_t c0 = task_cpu_ns(tid);
	uint64_t t0 = rte_rdtsc();
	struct gen_result r;

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
	r.mpps = (double)out / wall / 1e6;
	r.cpu_mpps = c0 != 0 && cpu > 0 ? (double)out / cpu / 1e6 : 0;
	r.cpu_share = c0 != 0 ? cpu / wall : 0;
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

	while (!__atomic_load_n(&wire_stop, __ATOMIC_RELAXED)) {
		uint16_t n = rte_eth_rx_burst(port, 0, pkts, BURST);
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
	static struct fwd_backend_spec be[N_BACKENDS];
	struct fwd_service_spec svc[2];
	struct fwd_spec spec;
	struct fwd_state *st;
	char err[256];

	memset(&spec, 0, sizeof(spec));
	memset(svc, 0, sizeof(svc));
	for (int i = 0; i < N_BACKENDS; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.200.0.%d", i + 1);
		memset(&be[i], 0, sizeof(be[i]));
		be[i].addr = pb_addr(ip);
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
	svc[0].n_backends = N_BACKENDS;
	svc[0].backends = be;
	svc[1] = svc[0];
	svc[1].vip = pb_addr("198.51.100.2");
	svc[1].mode = FWD_MODE_NAT;
	spec.hash_seed = 7;
	memcpy(spec.port_mac, port_mac, 6);
	spec.gateway_mac[0] = 2;
	spec.gateway_mac[5] = 0xfe;
	spec.node_v4 = pb_addr("192.0.2.100");
	spec.n_services = 2;
	spec.services = svc;
	spec.n_workers = 1;
	st = fwd_state_build(&spec, err, sizeof(err));
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
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(next_rand() % (i + 1));
		uint32_t t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
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
	printf("  round %d %-5s %6.2f Mpps wall | %6.2f Mpps per CPU-second (its thread got %3.0f%% "
	       "of a CPU) | RX ring %3.0f%% full\n",
	       r + 1, label, res.mpps, res.cpu_mpps, 100 * res.cpu_share, 100 * res.rx_fill);
}

static void report(const char *label, const double *v, double wire, const char *unit)
{
	double m = median(v, runs);
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

int main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--lcores", "0@0,1@1,2@1", "--no-huge", "-m", "1024",
		       "--no-pci", "--no-shconf", "--log-level=error", NULL};
	double wire[MAX_RUNS], dsr[MAX_RUNS], nat[MAX_RUNS];
	double wire_cpu[MAX_RUNS], dsr_cpu[MAX_RUNS], nat_cpu[MAX_RUNS];
	int tid_worker, tid_wire;
	struct path pw, pf;
	struct gen gd, gn;
	struct pb_spec s;
	struct rte_eth_conf conf;
	struct dpdk_params p;
	struct dpdk_dp *dp;
	struct dpdk_worker_stats ws0, ws1;
	char err[256];
	uint8_t mac[6];
	double load0 = loadavg();

	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			n_dsr = 1u << 16;
			pkts_per_run = 2000000;
			runs = 3;
		} else {
			fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
			return 2;
		}
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
	gen_init(&gd, K_DSR, n_dsr);
	gen_init(&gn, K_NAT, n_nat);

	/* The wire's port: configured and started once, its lcore launched per run. */
	path_create(&pw, "fb_wire");
	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_configure(pw.port, 1, 1, &conf) != 0 ||
	    rte_eth_rx_queue_setup(pw.port, 0, RING_SIZE, rte_socket_id(), NULL, gen_pool) != 0 ||
	    rte_eth_tx_queue_setup(pw.port, 0, RING_SIZE, rte_socket_id(), NULL) != 0 ||
	    rte_eth_dev_start(pw.port) != 0)
		die("wire port setup failed");

	/* fulcrumd's port: dpdk_open finds it by its ethdev name. */
	path_create(&pf, "fb_fulcrum");
	memset(&p, 0, sizeof(p));
	p.port_devargs = "net_ring_fb_fulcrum"; /* the ethdev name rte_eth_from_rings gives */
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
	p.flow_capacity = 2 * (n_dsr + n_nat);
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
	tid_worker = task_by_name("rte-worker-1"); /* EAL's thread names in 22.11 */
	tid_wire = task_by_name("rte-worker-2");
	if (tid_worker < 0 || tid_wire < 0)
		printf("(lcore threads not found in /proc: no per-CPU-second figures)\n");

	printf("bench_dpdk_ring: net_ring ports (rte_eth_from_rings), generator on CPU 0, worker/wire "
	       "on CPU 1 (pinned),\n  %u-packet rings, bursts of %d, 64-byte IPv4 TCP frames, %llu "
	       "packets per run, %d rounds; load average at start %.2f\n",
	       RING_SIZE, BURST, (unsigned long long)pkts_per_run, runs, load0);
	printf("  wire = RX burst -> swap MACs -> TX burst (dsr frames)\n"
	       "  dsr  = fulcrumd worker (dpdk_dp.c), %u established dsr flows + %u nat flows in the "
	       "table\n"
	       "  nat  = the same worker, the %u nat flows (SNAT, no replies: SYN_SENT flow hits)\n",
	       n_dsr, n_nat, n_nat);

	/* Warm-up: every flow's SYN (new flow: Maglev, insert), then its ACK. */
	gd.tcp_flags = gn.tcp_flags = PKT_TCP_SYN;
	gen_run(&pf, &gd, n_dsr, 0);
	gen_run(&pf, &gn, n_nat, 0);
	gd.tcp_flags = gn.tcp_flags = PKT_TCP_ACK;
	gen_run(&pf, &gd, n_dsr, 0);
	gen_run(&pf, &gn, n_nat, 0);
	dpdk_worker_stats(dp, 0, &ws0);

	uint64_t sleeps_measured = 0;
	for (int r = 0; r < runs; r++) {
		struct dpdk_worker_stats a, b;
		struct gen_result res;
		uint16_t wport = pw.port;

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
			gen_run(&pw, &gd, pkts_per_run / 50, 0);
			dpdk_worker_stats(dp, 0, &b);
			if (b.sleeps > a.sleeps)
				break;
		}
		res = gen_run(&pw, &gd, pkts_per_run, tid_wire);
		__atomic_store_n(&wire_stop, 1, __ATOMIC_RELAXED);
		rte_eal_wait_lcore(2);
		wire[r] = res.mpps;
		wire_cpu[r] = res.cpu_mpps;
		print_run("wire", r, res);

		gen_run(&pf, &gd, pkts_per_run / 20, 0); /* wakes the worker */
		dpdk_worker_stats(dp, 0, &a);
		res = gen_run(&pf, &gd, pkts_per_run, tid_worker);
		dsr[r] = res.mpps;
		dsr_cpu[r] = res.cpu_mpps;
		print_run("dsr", r, res);
		res = gen_run(&pf, &gn, pkts_per_run, tid_worker);
		dpdk_worker_stats(dp, 0, &b);
		nat[r] = res.mpps;
		nat_cpu[r] = res.cpu_mpps;
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

	printf("\nsummary, medians of %d interleaved rounds (load average now %.2f)\n", runs,
	       loadavg());
	printf(" per CPU-second of the forwarding thread (robust to the shared VM's load):\n");
	double wc = median(wire_cpu, runs);
	report("plain wire", wire_cpu, 0, "per CPU-s");
	report("worker dsr", dsr_cpu, wc, "per CPU-s");
	report("worker nat", nat_cpu, wc, "per CPU-s");
	printf(" wall clock (what the machine gave us; swings with other processes' load):\n");
	double w = median(wire, runs);
	report("plain wire", wire, 0, "wall");
	report("worker dsr", dsr, w, "wall");
	report("worker nat", nat, w, "wall");

	dpdk_close(dp);
	path_drain(&pf);
	rte_eth_dev_stop(pw.port);
	rte_eth_dev_close(pw.port);
	path_drain(&pw);
	free(gd.order);
	free(gn.order);
	rte_ring_free(pf.rx);
	rte_ring_free(pf.tx);
	rte_ring_free(pw.rx);
	rte_ring_free(pw.tx);
	rte_mempool_free(gen_pool);
	dpdk_eal_cleanup();
	return 0;
}
