/*
 * bench_flow: flow-table lookups per second for established flows in a table
 * far larger than the caches, one packet at a time vs. bursts of 32 with
 * prefetching; plus insert and eviction costs.
 *
 * Usage: bench_flow [flows]   (default 1000000; the table holds exactly that many)
 * Every lookup includes flow_hash() of the key, flow_track_tcp() of the entry
 * for an ACK (the inline established fast path) and a read of its state_gen
 * (second cache line), as the forwarding path does for a data packet.
 * Packets are drawn uniformly from all flows, the worst case for caches. A
 * small table (4096 flows, cache resident) run the same way is the baseline:
 * the difference is what memory latency costs. Modes: one packet at a time;
 * a burst's buckets prefetched while hashing, then flow_lookup one by one;
 * the forwarding path's stages: buckets prefetched while hashing, then every
 * candidate entry (flow_prefetch_entry), then flow_lookup_hint one by one.
 * Exit status: 0, or 1 if a lookup missed or an insert failed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "dataplane/addr.h"
#include "dataplane/flow.h"

#define BURST 32
#define RUNS  5
#define NPKT  (1u << 21) /* packets per run */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Flow i: v4 client 10.x.y.z:port -> 192.0.2.1:443, TCP. */
static void key_of(uint32_t i, struct flow_key *k)
{
	const uint8_t src[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
	const uint8_t dst[4] = {192, 0, 2, 1};

	memset(k, 0, sizeof(*k));
	addr_set_v4(&k->src, src);
	addr_set_v4(&k->dst, dst);
	k->sport = (uint16_t)(1024 + (i >> 24));
	k->dport = 443;
	k->proto = IPPROTO_TCP;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

enum mode { ONE_BY_ONE, PREFETCH, STAGED };

/* ns per packet for one pass over pkts; -1 if any lookup missed. */
static double run(struct flow_table *t, const struct flow_key *pkts, uint32_t n, enum mode mode,
		  uint64_t now)
{
	double t0 = now_s();
	uint32_t missed = 0;

	if (mode == ONE_BY_ONE) {
		for (uint32_t i = 0; i < n; i++) {
			int dir;
			struct flow_entry *e =
			    flow_lookup(t, &pkts[i], flow_hash(&pkts[i]), now, &dir);

			if (e == NULL || e->state_gen != 0)
				missed++;
			else
				flow_track_tcp(e, FLOW_TCPF_ACK, FLOW_DIR_FWD, now);
		}
	} else {
		struct flow_index ix;

		flow_index_of(t, &ix);
		for (uint32_t i = 0; i < n; i += BURST) {
			uint64_t h[BURST];
			const struct flow_key *kp[BURST];
			struct flow_entry *out[BURST];
			uint32_t hint[BURST];
			int dirs[BURST];

			for (unsigned j = 0; j < BURST; j++) {
				kp[j] = &pkts[i + j];
				h[j] = flow_hash(kp[j]);
				flow_prefetch(&ix, h[j]);
			}
			if (mode == PREFETCH) {
				for (unsigned j = 0; j < BURST; j++)
					out[j] = flow_lookup(t, kp[j], h[j], now, &dirs[j]);
			} else {
				for (unsigned j = 0; j < BURST; j++)
					hint[j] = flow_prefetch_entry(&ix, h[j], 0);
				for (unsigned j = 0; j < BURST; j++)
					out[j] = flow_lookup_hint(t, kp[j], h[j], hint[j], now,
								  &dirs[j]);
			}
			for (unsigned j = 0; j < BURST; j++) {
				if (out[j] == NULL || out[j]->state_gen != 0)
					missed++;
				else
					flow_track_tcp(out[j], FLOW_TCPF_ACK, FLOW_DIR_FWD, now);
			}
		}
	}
	if (missed)
		return -1;
	return (now_s() - t0) * 1e9 / n;
}

/* Fill a table with n established flows; NULL (and a message) on failure. */
static struct flow_table *fill(uint32_t n, uint64_t now, double *ns_insert)
{
	struct flow_table *t = flow_create(n, NULL, NULL, NULL);
	double t0;

	if (t == NULL) {
		fprintf(stderr, "flow_create(%u) failed\n", n);
		return NULL;
	}
	t0 = now_s();
	for (uint32_t i = 0; i < n; i++) {
		struct flow_key k;
		struct flow_entry *e;

		key_of(i, &k);
		e = flow_insert(t, &k, flow_hash(&k), now);
		if (e == NULL) {
			fprintf(stderr, "insert %u of %u failed\n", i, n);
			flow_destroy(t);
			return NULL;
		}
		flow_track_tcp(e, FLOW_TCPF_SYN, FLOW_DIR_FWD, now);
		flow_track_tcp(e, FLOW_TCPF_ACK, FLOW_DIR_FWD, now);
	}
	*ns_insert = (now_s() - t0) * 1e9 / n;
	return t;
}

/* Median and best ns/packet of RUNS passes; the packet array is drawn once. */
static int measure(struct flow_table *t, uint32_t nflows, struct flow_key *pkts, enum mode mode,
		   double *med, double *best)
{
	double r[RUNS];
	uint64_t seed = 0xf10f10ULL + nflows;

	for (uint32_t i = 0; i < NPKT; i++)
		key_of((uint32_t)(splitmix64(&seed) % nflows), &pkts[i]);
	for (int i = 0; i < RUNS; i++) {
		r[i] = run(t, pkts, NPKT, mode, 2);
		if (r[i] < 0)
			return -ENOENT;
	}
	qsort(r, RUNS, sizeof(r[0]), cmp_double);
	*med = r[RUNS / 2];
	*best = r[0];
	return 0;
}

/*
 * Baseline for this machine: ns per dependent random read over 256 MB (huge
 * pages offered, as the table gets). A lookup that is not prefetched pays
 * about two of these (bucket, then entry); a burst overlaps them.
 */
static volatile uint64_t sink;

static double dram_ns(void)
{
	const size_t n = (256u << 20) / 64, bytes = n * 64;
	uint64_t *a = aligned_alloc(2u << 20, bytes), seed = 99, p;
	uint32_t *perm = malloc(n * sizeof(*perm));
	double t0, ns;

	if (a == NULL || perm == NULL) {
		free(a);
		free(perm);
		return -1;
	}
	(void)madvise(a, bytes, MADV_HUGEPAGE);
	for (size_t i = 0; i < n; i++)
		perm[i] = (uint32_t)i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = splitmix64(&seed) % (i + 1);
		uint32_t x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	/* One cycle through every line, in random order: 8 words per line, use word 0. */
	for (size_t i = 0; i < n; i++)
		a[(size_t)perm[i] * 8] = (uint64_t)perm[(i + 1) % n] * 8;
	p = (uint64_t)perm[0] * 8;
	t0 = now_s();
	for (int i = 0; i < 2000000; i++)
		p = a[p];
	ns = (now_s() - t0) * 1e9 / 2000000;
	sink = p; /* keeps the chain */
	free(a);
	free(perm);
	return ns;
}

/* Cost of an insert into a full table whose oldest entries are SYN-only (eviction path). */
static double evict_ns(uint32_t n)
{
	struct flow_table *t = flow_create(n, NULL, NULL, NULL);
	const uint32_t extra = n < 1000000 ? n : 1000000;
	double t0 = 0, ns;
	uint64_t now = 1;

	if (t == NULL)
		return -1;
	for (uint32_t i = 0; i < n + extra; i++) {
		struct flow_key k;
		struct flow_entry *e;

		if (i == n)
			t0 = now_s();
		key_of(i, &k);
		e = flow_insert(t, &k, flow_hash(&k), now++);
		if (e == NULL) {
			flow_destroy(t);
			return -1;
		}
		flow_track_tcp(e, FLOW_TCPF_SYN, FLOW_DIR_FWD, now);
	}
	ns = (now_s() - t0) * 1e9 / extra;
	flow_destroy(t);
	return ns;
}

int main(int argc, char **argv)
{
	static const char *const names[] = {"one by one", "prefetch x32", "staged x32"};
	uint32_t n = 1000000;
	const uint32_t small = 4096;
	struct flow_table *big, *warm;
	struct flow_key *pkts = malloc((size_t)NPKT * sizeof(*pkts));
	double ins_big, ins_small, med, best;

	if (argc > 1) {
		char *end;
		unsigned long v = strtoul(argv[1], &end, 10);

		if (*end != '\0' || v < small || v > FLOW_CAPACITY_MAX / 2) {
			fprintf(stderr, "usage: %s [flows, %u..%u]\n", argv[0], small,
				FLOW_CAPACITY_MAX / 2);
			return 1;
		}
		n = (uint32_t)v;
	}
	big = fill(n, 1, &ins_big);
	warm = fill(small, 1, &ins_small);
	if (big == NULL || warm == NULL || pkts == NULL)
		return 1;
	printf("flow table: %u established flows (table exactly full), %u packets per run, "
	       "median (best) of %d runs\n",
	       n, NPKT, RUNS);
	printf("per packet: flow_hash + lookup + flow_track_tcp(ACK) + state_gen check; packets "
	       "uniform "
	       "over all flows\n\n");
	printf("%-18s %14s %14s %12s\n", "mode", "ns/pkt", "Mpps", "baseline*");
	for (int m = ONE_BY_ONE; m <= STAGED; m++) {
		double wmed, wbest;

		if (measure(big, n, pkts, (enum mode)m, &med, &best) != 0 ||
		    measure(warm, small, pkts, (enum mode)m, &wmed, &wbest) != 0) {
			fprintf(stderr, "a lookup missed\n");
			return 1;
		}
		printf("%-18s %7.1f (%5.1f) %7.1f (%5.1f) %7.1f ns\n", names[m], med, best,
		       1e3 / med, 1e3 / best, wmed);
	}
	printf("\n* baseline: the same with %u flows (cache resident)\n", small);
	printf("memory latency on this machine (dependent random reads, 256 MB): %.1f ns\n",
	       dram_ns());
	printf("insert (empty slots, established): %.1f ns/flow with %u, %.1f ns with %u\n",
	       ins_big, n, ins_small, small);
	printf("insert into a full table, evicting the oldest SYN-only flow: %.1f ns\n",
	       evict_ns(n));
	flow_destroy(big);
	flow_destroy(warm);
	free(pkts);
	return 0;
}
