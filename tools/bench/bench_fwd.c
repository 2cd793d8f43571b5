/*
 * bench_fwd: the forwarding decision on one core, against a MAC-swap pass
 * over the same buffers measured in the same run.
 *
 *   bench_fwd                  timing: median of RUNS runs, ns/packet, Mpps, ratio
 *   bench_fwd --quick          fewer flows and runs (smoke test)
 *   bench_fwd --no-callgrind   skip counting instructions per packet with valgrind
 *
 * Every measured pass does the same two things per packet before its own
 * work: generate the flow's frame into the burst buffer (as if it had just
 * been received into the cache) and hand the burst to the pass. The baseline pass then swaps the MACs; the
 * fwd pass runs fwd_burst (parse, VIP match, flow lookup or Maglev + flow
 * insert, rewrite, counters).
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/fwd.h"
#include "tests/unit/pktbuild.h"
#include "tools/bench/bench_state.h"

#define SLOT 128     /* bytes per template frame */
#define HEADROOM 64
#define BURST 32
#define SEC 1000000000ull

static uint32_t n_flows = 1u << 20;   /* dsr flows in the table */
static uint32_t n_nat = 60000;        /* nat flows (one SNAT address: < 64k ports) */
static int runs = 5;

/*
 * Packets are generated, not stored: one template frame per service (hot in
 * the cache) is copied into the burst buffer and the flow's source address
 * and port are written in, as a NIC with DDIO would deliver a frame into the
 * cache. (Storing 1M distinct frames instead would charge every packet, the
 * baseline included, a DRAM miss that no real receive path has.) The L4
 * checksum is left as the template's; nothing on the path verifies it.
 */
static uint8_t tmpl[3][SLOT]; /* [0] dsr service, [1] nat service, [2] a nat backend's reply */
static uint32_t tmpl_len[3];
/* nat flow i's backend (IPv4, as packet bytes) and SNAT port, once known (nat_learn) */
static uint32_t *rep_be4;
static uint16_t *rep_port;
static bool gen_replies; /* gen_frame writes the backend's reply of the flow instead */
static uint8_t reply_flags = PKT_TCP_SYN | PKT_TCP_ACK; /* what generated replies carry */
static uint32_t *order; /* a random permutation of the flows to visit */
static uint8_t tcp_flags = PKT_TCP_SYN; /* what the generated frames carry */
static uint64_t rng = 42; /* bench_rand state */

/*
 * This thread's CPU time, not wall time: the VM is shared, and time the
 * thread spends descheduled (other processes, other benchmarks) would
 * otherwise be charged to whichever pass it fell in. Cache contention from
 * the other CPU still shows, hence medians and a same-run baseline.
 */
static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void make_frames(void)
{
	uint32_t total = n_flows + n_nat;
	struct pb_spec s;

	order = malloc(sizeof(*order) * total);
	if (!order) {
		fprintf(stderr, "bench_fwd: out of memory\n");
		exit(1);
	}
	for (int k = 0; k < 2; k++) {
		pb_init(&s, ADDR_V4);
		s.dst = pb_addr(k == 0 ? "198.51.100.1" : "198.51.100.2");
		s.dport = 80;
		s.tcp_flags = PKT_TCP_SYN; /* gen_frame writes the flags of each pass */
		tmpl_len[k] = pb_build(&s, tmpl[k], SLOT);
	}
	for (uint32_t i = 0; i < total; i++)
		order[i] = i;
	/* the backend's SYN+ACK: backend:8080 -> node address : SNAT port (both per flow) */
	tmpl_len[2] = bench_synack(tmpl[2], SLOT);
	rep_be4 = calloc(total, sizeof(*rep_be4));
	rep_port = calloc(total, sizeof(*rep_port));
	if (!rep_be4 || !rep_port) {
		fprintf(stderr, "bench_fwd: out of memory\n");
		exit(1);
	}
}

/* Flow i's frame into buf: template + source address 10|11.i and port. */
static inline uint32_t gen_frame(uint8_t *buf, uint32_t i)
{
	int k = i >= n_flows;

	if (__builtin_expect(gen_replies, 0)) {
		memcpy(buf, tmpl[2], 64);
		memcpy(buf + 14 + 12, &rep_be4[i], 4);
		buf[36] = (uint8_t)(rep_port[i] >> 8);
		buf[37] = (uint8_t)rep_port[i];
		buf[34 + 13] = reply_flags;
		return tmpl_len[2];
	}

	memcpy(buf, tmpl[k], 64);
	buf[14 + 12] = k ? 11 : 10;
	buf[14 + 13] = (uint8_t)(i >> 16);
	buf[14 + 14] = (uint8_t)(i >> 8);
	buf[14 + 15] = (uint8_t)i;
	buf[34] = (uint8_t)((1024 + (i & 0x3fff)) >> 8);
	buf[35] = (uint8_t)(1024 + (i & 0x3fff));
	buf[34 + 13] = tcp_flags;
	return tmpl_len[k];
}

static void shuffle(uint32_t *a, uint32_t n)
{
	bench_shuffle(a, n, &rng);
}

struct ctx {
	struct fwd_state *st;
	struct flow_table *flows;
	struct snat_pool *snat;
	struct fwd_worker w;
	uint8_t mem[BURST][HEADROOM + SLOT];
	struct rw_buf b[BURST];
	struct fwd_result r[BURST];
	uint64_t tx, sink;
};

static struct fwd_state *build_state(void)
{
	char err[256];
	struct fwd_state *st = bench_state(NULL, err, sizeof(err));

	if (st == NULL) {
		fprintf(stderr, "bench_fwd: %s\n", err);
		exit(1);
	}
	return st;
}

static void ctx_init(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->st = build_state();
	c->flows = flow_create(2 * (n_flows + n_nat), NULL, fwd_flow_release, &c->w);
	c->snat = snat_create(&c->st->node_v4, 1024, 65535, 1);
	if (!c->flows || !c->snat) {
		fprintf(stderr, "bench_fwd: out of memory\n");
		exit(1);
	}
	fwd_worker_init(&c->w, 0, c->flows, c->snat, NULL);
}

static void ctx_free(struct ctx *c)
{
	flow_destroy(c->flows);
	snat_destroy(c->snat);
	fwd_state_free(c->st);
}

/* Flow i's entry (outside any timing), or NULL. */
static const struct flow_entry *flow_of(struct ctx *c, uint32_t i, uint64_t now)
{
	uint8_t frame[SLOT];
	struct pkt_info pi;
	struct flow_key k;
	uint32_t len = gen_frame(frame, i);

	if (pkt_parse(frame, len, &pi) != 0)
		return NULL;
	memset(&k, 0, sizeof(k));
	k.src = pi.src;
	k.dst = pi.dst;
	k.sport = pi.sport;
	k.dport = pi.dport;
	k.proto = pi.l4_proto;
	return flow_lookup(c->flows, &k, flow_hash(&k), now, NULL);
}

/* Read nat flow i's backend and SNAT port from the flow table. */
static void nat_learn(struct ctx *c, const uint32_t *idx, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++) {
		uint32_t i = idx[j];
		const struct flow_entry *e = flow_of(c, i, SEC + 1);
		if (e == NULL || !(e->flags & FLOW_F_REV)) {
			fprintf(stderr, "bench_fwd: nat flow %u not in the table\n", i);
			exit(1);
		}
		memcpy(&rep_be4[i], e->rev_src.b, 4);
		rep_port[i] = e->snat_port;
	}
}

static inline void load_burst(struct ctx *c, const uint32_t *idx, unsigned n)
{
	for (unsigned j = 0; j < n; j++) {
		uint32_t i = idx[j];
		c->b[j].data = c->mem[j] + HEADROOM;
		c->b[j].len = gen_frame(c->b[j].data, i);
		c->b[j].headroom = HEADROOM;
	}
}

/* The measured passes: noinline so that callgrind can count exactly them. */
__attribute__((noinline)) void bench_pass_swap(struct ctx *c, const uint32_t *idx, uint32_t n);
__attribute__((noinline)) void bench_pass_fwd(struct ctx *c, const uint32_t *idx, uint32_t n,
					      uint64_t now);

__attribute__((noinline)) void bench_pass_swap(struct ctx *c, const uint32_t *idx, uint32_t n)
{
	for (uint32_t k = 0; k < n; k += BURST) {
		unsigned m = n - k < BURST ? n - k : BURST;
		load_burst(c, idx + k, m);
		for (unsigned j = 0; j < m; j++) {
			uint8_t mac[6];
			memcpy(mac, c->b[j].data, 6);
			memcpy(c->b[j].data, c->b[j].data + 6, 6);
			memcpy(c->b[j].data + 6, mac, 6);
			c->sink += c->b[j].data[0];
		}
		c->tx += m;
	}
}

__attribute__((noinline)) void bench_pass_fwd(struct ctx *c, const uint32_t *idx, uint32_t n,
					      uint64_t now)
{
	for (uint32_t k = 0; k < n; k += BURST) {
		unsigned m = n - k < BURST ? n - k : BURST;
		load_burst(c, idx + k, m);
		fwd_burst(c->st, &c->w, c->b, m, now, c->r);
		for (unsigned j = 0; j < m; j++)
			c->tx += c->r[j].verdict == FWD_TX;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct result {
	double base[16], est[16], neu[16], rep[16];
};

/*
 * reps timed passes of fwd over idx[0 .. count), every packet forwarded (or
 * exit); ns/packet of this thread's CPU. The clock moves on between passes,
 * as it does between a flow's packets, so every hit writes its entry's
 * last_seen (with a fixed `now`, repeated passes over a short flow set
 * would skip that store and keep the entry lines clean).
 */
static double timed_fwd(struct ctx *c, const char *name, const char *what, const uint32_t *idx,
			uint32_t count, uint32_t reps, uint64_t now0)
{
	double t0, t1;

	c->tx = 0;
	t0 = now_ns();
	for (uint32_t k = 0; k < reps; k++)
		bench_pass_fwd(c, idx, count, now0 + k);
	t1 = now_ns();
	if (c->tx != (uint64_t)count * reps) {
		fprintf(stderr, "bench_fwd: %s: %s pass forwarded %llu of %llu\n", name, what,
			(unsigned long long)c->tx, (unsigned long long)count * reps);
		exit(1);
	}
	return (t1 - t0) / ((double)count * reps);
}

/* One case: flows [first, first + count) of one service. */
static void run_case(const char *name, uint32_t first, uint32_t count)
{
	struct result res;
	uint32_t *idx = order + first;
	/* Passes over few flows are repeated so that every timing covers about 1M packets. */
	uint32_t reps = count < (1u << 20) ? (1u << 20) / count : 1;

	printf("\n%s: %u flows of this service; the table also holds the other service's flows\n",
	       name, count);
	for (int r = 0; r < runs; r++) {
		struct ctx *c = malloc(sizeof(*c));
		double t0, t1;
		if (c == NULL)
			exit(1);
		ctx_init(c);
		/* every flow of both services in the table (the other one first) */
		tcp_flags = PKT_TCP_SYN;
		if (first == 0)
			bench_pass_fwd(c, order + n_flows, n_nat, SEC);
		else
			bench_pass_fwd(c, order, n_flows, SEC);
		shuffle(idx, count);

		c->tx = 0;
		t0 = now_ns();
		bench_pass_fwd(c, idx, count, SEC + 1); /* new flows: SYN, Maglev, insert */
		t1 = now_ns();
		res.neu[r] = (t1 - t0) / count;
		if (c->tx != count) {
			fprintf(stderr, "bench_fwd: %s: only %llu of %u new flows forwarded\n", name,
				(unsigned long long)c->tx, count);
			exit(1);
		}
		/*
		 * nat: the backend's SYN+ACK through the balancer (reverse
		 * lookup, un-NAT), so that the client's ACK then establishes the
		 * flow as on a real connection. dsr: the balancer sees no replies;
		 * the ACK alone establishes it.
		 */
		if (first != 0) {
			nat_learn(c, idx, count);
			gen_replies = true;
			c->tx = 0;
			bench_pass_fwd(c, idx, count, SEC + 2);
			gen_replies = false;
			if (c->tx != count) {
				fprintf(stderr, "bench_fwd: %s: %llu of %u replies forwarded\n", name,
					(unsigned long long)c->tx, count);
				exit(1);
			}
		}
		tcp_flags = PKT_TCP_ACK;
		bench_pass_fwd(c, idx, count, SEC + 2);
		for (uint32_t j = 0; j < count; j++) {
			const struct flow_entry *e = flow_of(c, idx[j], SEC + 2);
			if (e == NULL || e->tcp_state != FLOW_TCP_ESTABLISHED) {
				fprintf(stderr, "bench_fwd: %s: flow %u not established\n", name,
					idx[j]);
				exit(1);
			}
		}
		/* established: flow hit, ACKs */
		shuffle(idx, count);
		res.est[r] = timed_fwd(c, name, "established", idx, count, reps, SEC + 3);
		/*
		 * nat: the backends' replies of the established flows (ACKs):
		 * reverse lookup, un-NAT, towards the gateway.
		 */
		if (first != 0) {
			shuffle(idx, count);
			gen_replies = true;
			reply_flags = PKT_TCP_ACK;
			res.rep[r] = timed_fwd(c, name, "reply", idx, count, reps, SEC + 3 + reps);
			gen_replies = false;
			reply_flags = PKT_TCP_SYN | PKT_TCP_ACK;
		}
		shuffle(idx, count);
		t0 = now_ns();
		for (uint32_t k = 0; k < reps; k++)
			bench_pass_swap(c, idx, count);
		t1 = now_ns();
		res.base[r] = (t1 - t0) / ((double)count * reps);
		printf("  run %d: baseline %.1f ns/pkt, established %.1f ns/pkt, new %.1f ns/pkt",
		       r + 1, res.base[r], res.est[r], res.neu[r]);
		if (first != 0)
			printf(", replies %.1f ns/pkt", res.rep[r]);
		printf(" (table %u flows)\n", flow_count(c->flows));
		ctx_free(c);
		free(c);
	}
	double b = median(res.base, runs), e = median(res.est, runs), n = median(res.neu, runs);
	printf("  median of %d: baseline (copy + MAC swap) %.1f ns/pkt = %.1f Mpps\n", runs, b,
	       1e3 / b);
	printf("  median of %d: established            %.1f ns/pkt = %.1f Mpps  ratio %.2fx "
	       "baseline, +%.1f ns net\n",
	       runs, e, 1e3 / e, e / b, e - b);
	printf("  median of %d: new flow (SYN)         %.1f ns/pkt = %.1f Mpps  ratio %.2fx "
	       "baseline, +%.1f ns net\n",
	       runs, n, 1e3 / n, n / b, n - b);
	if (first != 0) {
		double rp = median(res.rep, runs);
		printf("  median of %d: replies (established)  %.1f ns/pkt = %.1f Mpps  ratio %.2fx "
		       "baseline, +%.1f ns net\n",
		       runs, rp, 1e3 / rp, rp / b, rp - b);
	}
	printf("  target: established < 50 ns/pkt: %s\n", e < 50 ? "met" : "NOT met");
}

/* What callgrind counts (--toggle-collect=bench_cg_target): one pass of one kind. */
__attribute__((noinline)) void bench_cg_target(struct ctx *c, const char *kind);
__attribute__((noinline)) void bench_cg_target(struct ctx *c, const char *kind)
{
	if (strcmp(kind, "swap") == 0)
		bench_pass_swap(c, order, n_flows);
	else if (strcmp(kind, "natest") == 0 || strcmp(kind, "natrep") == 0)
		bench_pass_fwd(c, order + n_flows, n_nat, SEC + 3); /* established nat flows */
	else
		bench_pass_fwd(c, order, n_flows, SEC + 1); /* "new": SYN; "est": ACK */
}

/* Child of --callgrind: "swap", "new" (SYNs into an empty table) or "est" (hits). */
static int callgrind_child(const char *kind)
{
	struct ctx *c = malloc(sizeof(*c));
	if (c == NULL)
		return 1;
	ctx_init(c);
	if (strcmp(kind, "natest") == 0 || strcmp(kind, "natrep") == 0) {
		/* SYN, the backend's SYN+ACK, the client's ACK; "natrep" then counts replies (ACKs) */
		bench_pass_fwd(c, order + n_flows, n_nat, SEC + 1);
		nat_learn(c, order + n_flows, n_nat);
		gen_replies = true;
		bench_pass_fwd(c, order + n_flows, n_nat, SEC + 2);
		gen_replies = false;
		tcp_flags = PKT_TCP_ACK;
		bench_pass_fwd(c, order + n_flows, n_nat, SEC + 2);
		shuffle(order + n_flows, n_nat);
		if (strcmp(kind, "natrep") == 0) {
			gen_replies = true;
			reply_flags = PKT_TCP_ACK;
		}
		bench_cg_target(c, kind);
		ctx_free(c);
		free(c);
		return 0;
	}
	if (strcmp(kind, "new") != 0) {
		bench_pass_fwd(c, order, n_flows, SEC); /* all flows in (SYN) */
		tcp_flags = PKT_TCP_ACK;
		bench_pass_fwd(c, order, n_flows, SEC); /* established (ACK) */
	}
	shuffle(order, n_flows);
	bench_cg_target(c, kind);
	ctx_free(c);
	free(c);
	return 0;
}

static double callgrind_count(const char *self, const char *kind)
{
	char cmd[1024], line[512];
	const char *out = "/tmp/fulcrum-bench-callgrind.out";
	double total = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "valgrind --tool=callgrind --toggle-collect=bench_cg_target "
		 "--callgrind-out-file=%s %s --callgrind-child %s >/dev/null 2>&1",
		 out, self, kind);
	if (system(cmd) != 0)
		return -1;
	f = fopen(out, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "summary: %lf", &total) == 1 || sscanf(line, "totals: %lf", &total) == 1)
			break;
	fclose(f);
	unlink(out);
	return total;
}

int main(int argc, char **argv)
{
	bool quick = false, cg = true;
	const char *child = NULL;
	uint32_t flows_opt = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--no-callgrind") == 0)
			cg = false;
		else if (strcmp(argv[i], "--flows") == 0 && i + 1 < argc)
			flows_opt = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--callgrind-child") == 0 && i + 1 < argc)
			child = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--quick] [--no-callgrind] [--flows N]\n", argv[0]);
			return 2;
		}
	}
	if (quick || child) {
		n_flows = child ? 20000 : 1u << 16;
		n_nat = 20000;
		runs = 3;
	}
	if (flows_opt > 0 && !child) {
		n_flows = flows_opt < (1u << 24) ? flows_opt : 1u << 24;
		n_nat = n_flows < n_nat ? n_flows : n_nat;
	}
	make_frames();
	if (child)
		return callgrind_child(child);

	printf("bench_fwd: forwarding decision, one core, bursts of %d, IPv4 TCP, 64-byte frames\n",
	       BURST);
	run_case("dsr", 0, n_flows);
	run_case("nat", n_flows, n_nat);

	if (cg) {
		double swap = callgrind_count(argv[0], "swap");
		double neu = callgrind_count(argv[0], "new");
		double est = callgrind_count(argv[0], "est");
		double natest = callgrind_count(argv[0], "natest");
		double natrep = callgrind_count(argv[0], "natrep");
		if (swap < 0 || neu < 0 || est < 0 || natest < 0 || natrep < 0) {
			printf("\ncallgrind: not available (valgrind failed)\n");
		} else {
			printf("\ncallgrind (instructions, repeatable), 20000 flows:\n"
			       "  baseline (copy + MAC swap) %.1f instr/pkt\n"
			       "  dsr established            %.1f instr/pkt\n"
			       "  dsr new flow (SYN)         %.1f instr/pkt\n"
			       "  nat established            %.1f instr/pkt\n"
			       "  nat replies (established)  %.1f instr/pkt\n",
			       swap / 20000, est / 20000, neu / 20000, natest / 20000,
			       natrep / 20000);
		}
	}
	return 0;
}
