/*
 * bench_raft_failover: how long a 3-node Raft cluster is without a leader, and
 * without a committed write, after its leader crashes (issue 4 §5).
 *
 * Usage: bench_raft_failover [trials] [seed]   (defaults 1000 and 1)
 * Exit status: 0, or 1 if a trial failed to elect a leader or commit within
 * 10 s of virtual time, or the core returned an error (the figures would then
 * be meaningless).
 *
 * The cluster runs on virtual time in a small discrete-event loop (a binary
 * heap of ticks, message deliveries, client proposals and the crash), so the
 * figures measure the protocol and this implementation, not the machine:
 *
 *  - 3 voters, 1 ms one-way latency for every message, no loss.
 *  - one tick = 1 ms, each node with its own random phase (µs resolution);
 *    election_ticks = 150, so every election timeout is drawn uniformly from
 *    {150, ..., 299} ticks (raft_reset_timeout: e + rand % e, i.e. [e, 2e)).
 *    The timer counts ticks since its last reset and fires on the T-th one;
 *    a reset happens when a message arrives, between two ticks, so the real
 *    timeout after the last message from the leader lies in (T-1, T] ms.
 *  - heartbeat 50 ms (30 ms in one comparison row); pre-vote and
 *    check-quorum on (pre-vote off in one row).
 *  - disk persistence is instantaneous: a ready batch is persisted, sent and
 *    applied at the virtual instant it is produced.
 *  - client: one proposal every 10 ms (random phase) to the current leader,
 *    found by an oracle (a live node whose role is LEADER, highest term): no
 *    client-side timeout or redirect cost is modelled. One comparison row
 *    uses a continuous client instead: one outstanding proposal, the next
 *    one sent as soon as the previous one is applied or its leader is gone.
 *
 * A trial: start the cluster, wait until a leader has led for 300 ms and
 * acknowledged at least 5 client writes, wait for its next heartbeat
 * broadcast, crash it at a uniformly random point of the heartbeat interval
 * that follows, and measure
 *   (a) crash -> the first moment a surviving node is leader in a higher term;
 *   (b) crash -> the first client proposal accepted by a leader of a higher
 *       term is applied by that leader (when the client gets its ack).
 * Messages already in flight at the crash are still delivered.
 *
 * The expected figures (the "model" rows) come from the timing model alone,
 * without any Raft code; see model_sample() for the derivation and
 * docs/raft.md "Benchmarks".
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"

#define N_NODES	       3
#define US_PER_MS      1000
#define LATENCY_US     1000 /* one-way, every message */
#define TICK_US	       1000 /* one raft tick */
#define ELECTION_TICKS 150  /* timeouts drawn from [150, 300) ticks = ms */
#define WARM_LEAD_US   (300 * US_PER_MS)
#define WARM_ACKS      5
#define WARM_LIMIT_US  (30000 * US_PER_MS)
#define TRIAL_LIMIT_US (10000 * US_PER_MS) /* after the crash */
#define MAX_PROPS      64
#define MODEL_SAMPLES  1000000
#define PAYLOAD_LEN    16

/* Anchors (see docs/raft.md "Benchmarks"). */
#define ETCD_MEDIAN_MS 228.0
#define TARGET_MED_MS  210.0
#define TARGET_P99_MS  320.0

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). The modulo bias is below 2^-40 for the n used here. */
static uint64_t rand_below(uint64_t *s, uint64_t n)
{
	return splitmix64(s) % n;
}

/* Uniform in [0, 1). */
static double rand_unit(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------- the event loop */

enum ev_type {
	EV_TICK = 0,
	EV_DELIVER = 1,
	EV_CLIENT = 2,
	EV_CRASH = 3,
};

struct event {
	int64_t t; /* virtual time, µs */
	uint64_t seq;
	uint8_t type;
	uint8_t node;
	struct raft_message *msg; /* EV_DELIVER: owned by the event */
};

struct heap {
	struct event *ev;
	size_t n;
	size_t cap;
	uint64_t seq;
};

static bool ev_before(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int heap_push(struct heap *h, int64_t t, enum ev_type type, int node,
		     struct raft_message *msg)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 256;
		struct event *ev = realloc(h->ev, cap * sizeof(*ev));

		if (!ev)
			return -ENOMEM;
		h->ev = ev;
		h->cap = cap;
	}
	i = h->n++;
	h->ev[i] = (struct event){
	    .t = t, .seq = h->seq++, .type = (uint8_t)type, .node = (uint8_t)node, .msg = msg};
	while (i > 0 && ev_before(&h->ev[i], &h->ev[(i - 1) / 2])) {
		struct event tmp = h->ev[i];

		h->ev[i] = h->ev[(i - 1) / 2];
		h->ev[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
	return 0;
}

static struct event heap_pop(struct heap *h)
{
	struct event top = h->ev[0];
	size_t i = 0;

	h->ev[0] = h->ev[--h->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && ev_before(&h->ev[l], &h->ev[m]))
			m = l;
		if (r < h->n && ev_before(&h->ev[r], &h->ev[m]))
			m = r;
		if (m == i)
			break;
		struct event tmp = h->ev[i];

		h->ev[i] = h->ev[m];
		h->ev[m] = tmp;
		i = m;
	}
	return top;
}

static void msg_destroy(struct raft_message *m)
{
	if (m) {
		raft_message_free(m);
		free(m);
	}
}

/* ---------------------------------------------------------------- one trial */

struct params {
	const char *name;
	uint32_t heartbeat_ms;
	uint8_t pre_vote;
	uint32_t client_ms; /* 0: continuous client */
	uint8_t quiet; /* client silent from the last heartbeat before the crash to the crash */
};

enum stage {
	ST_WARM = 0, /* waiting for a stable leader with acknowledged writes */
	ST_WAIT_HB,  /* waiting for the leader's next heartbeat broadcast */
	ST_ARMED,    /* crash scheduled */
	ST_CRASHED,
};

struct prop {
	int node;
	uint64_t index;
	uint64_t term;
};

struct trial {
	const struct params *p;
	struct raft *r[N_NODES];
	bool alive[N_NODES];
	struct heap h;
	int64_t now;
	uint64_t rng;
	enum stage stage;
	int err;

	int leader; /* warm-up: current leader (-1 none), its term and since when */
	uint64_t leader_term;
	int64_t leader_since;
	uint32_t warm_acks;

	int victim;
	int64_t crash_t;
	uint64_t crash_term;
	int64_t last_contact[N_NODES]; /* last APPEND/HEARTBEAT from the victim delivered */

	struct prop props[MAX_PROPS]; /* client proposals not yet acknowledged */
	size_t n_props;
	bool cbusy; /* continuous client: props[0..] holds its one outstanding proposal */
	uint64_t client_seq;

	/* results */
	int64_t elect_t;
	int64_t commit_t;
	uint64_t new_term;
	int64_t gap_us; /* crash minus the survivors' last contact with the victim */
};

static void note_ack(struct trial *t, int node, const struct raft_entry *e)
{
	for (size_t i = 0; i < t->n_props; i++) {
		struct prop *pr = &t->props[i];

		if (pr->node != node || pr->index != e->index || pr->term != e->term)
			continue;
		if (t->stage == ST_CRASHED && pr->term > t->crash_term && t->commit_t < 0)
			t->commit_t = t->now;
		if (t->stage == ST_WARM && node == t->leader && pr->term == t->leader_term)
			t->warm_acks++;
		t->props[i] = t->props[--t->n_props];
		t->cbusy = false;
		return;
	}
}

/* Persist (instantaneous), send, apply: the raft.h CONTRACT loop with a zero-time disk. */
static void handle_ready(struct trial *t, int i)
{
	struct raft_ready rd;
	int rc;

	while ((rc = raft_ready(t->r[i], &rd)) > 0) {
		bool hb = false;

		for (size_t k = 0; k < rd.n_msgs; k++) {
			const struct raft_message *m = &rd.msgs[k];
			struct raft_message *c = calloc(1, sizeof(*c));
			int to = (int)m->to - 1;

			if (m->type == RAFT_MSG_HEARTBEAT)
				hb = true;
			if (!c || to < 0 || to >= N_NODES || raft_message_clone(c, m) != 0 ||
			    heap_push(&t->h, t->now + LATENCY_US, EV_DELIVER, to, c) != 0) {
				msg_destroy(c);
				t->err = -ENOMEM;
			}
		}
		if (rd.role == RAFT_LEADER)
			for (size_t k = 0; k < rd.n_committed; k++)
				if (rd.committed[k].type == RAFT_ENTRY_NORMAL)
					note_ack(t, i, &rd.committed[k]);
		raft_advance(t->r[i], &rd);
		/* Crash at a uniformly random point of the heartbeat interval that starts
		 * with this broadcast (Raft paper §9.3 does the same). */
		if (hb && t->stage == ST_WAIT_HB && i == t->leader) {
			int64_t at =
			    t->now +
			    (int64_t)rand_below(&t->rng, (uint64_t)t->p->heartbeat_ms * US_PER_MS);

			if (heap_push(&t->h, at, EV_CRASH, i, NULL) != 0)
				t->err = -ENOMEM;
			t->stage = ST_ARMED;
		}
	}
	if (rc < 0)
		t->err = rc;
}

/* The oracle: the live leader with the highest term, or -1. */
static int current_leader(const struct trial *t, uint64_t *term)
{
	int best = -1;
	uint64_t bt = 0;

	for (int i = 0; i < N_NODES; i++) {
		struct raft_status st;

		if (!t->alive[i])
			continue;
		raft_get_status(t->r[i], &st);
		if (st.role == RAFT_LEADER && st.term > bt) {
			best = i;
			bt = st.term;
		}
	}
	if (term)
		*term = bt;
	return best;
}

static void client_propose(struct trial *t, int ld, uint64_t term)
{
	uint8_t payload[PAYLOAD_LEN];
	uint64_t index, v = ++t->client_seq;
	int rc;

	memset(payload, 0, sizeof(payload));
	memcpy(payload, &v, sizeof(v));
	rc = raft_propose(t->r[ld], payload, sizeof(payload), &index);
	if (rc == -EPERM || rc == -EBUSY)
		return;
	if (rc != 0) {
		t->err = rc;
		return;
	}
	if (t->n_props == MAX_PROPS) { /* forget the oldest: lost to a dead leader */
		memmove(&t->props[0], &t->props[1], (MAX_PROPS - 1) * sizeof(t->props[0]));
		t->n_props--;
	}
	t->props[t->n_props++] = (struct prop){.node = ld, .index = index, .term = term};
	t->cbusy = true;
	handle_ready(t, ld);
}

/* Continuous client: one outstanding proposal; a new one as soon as it was acknowledged or
 * its leader is gone (the oracle tells at once). */
static void client_poll(struct trial *t)
{
	uint64_t term;
	int ld;

	if (t->p->client_ms != 0)
		return;
	ld = current_leader(t, &term);
	if (ld < 0)
		return;
	if (t->cbusy && t->n_props > 0) {
		const struct prop *pr = &t->props[t->n_props - 1];

		if (pr->node == ld && pr->term == term)
			return;
	}
	client_propose(t, ld, term);
}

static void check_stage(struct trial *t)
{
	uint64_t term;
	int ld;

	switch (t->stage) {
	case ST_WARM:
		ld = current_leader(t, &term);
		if (ld != t->leader || term != t->leader_term) {
			t->leader = ld;
			t->leader_term = term;
			t->leader_since = t->now;
			t->warm_acks = 0;
		}
		if (ld >= 0 && t->now - t->leader_since >= WARM_LEAD_US &&
		    t->warm_acks >= WARM_ACKS)
			t->stage = ST_WAIT_HB;
		break;
	case ST_WAIT_HB:
	case ST_ARMED:
		ld = current_leader(t, &term);
		if (ld != t->leader || term != t->leader_term) /* cannot happen without faults */
			t->err = -EPROTO;
		break;
	case ST_CRASHED:
		if (t->elect_t >= 0)
			break;
		ld = current_leader(t, &term);
		if (ld >= 0 && term > t->crash_term) {
			int64_t last = INT64_MIN;

			t->elect_t = t->now;
			t->new_term = term;
			for (int i = 0; i < N_NODES; i++)
				if (t->alive[i] && t->last_contact[i] > last)
					last = t->last_contact[i];
			t->gap_us = t->crash_t - last;
		}
		break;
	}
}

static void trial_free(struct trial *t)
{
	while (t->h.n > 0) {
		struct event e = heap_pop(&t->h);

		msg_destroy(e.msg);
	}
	free(t->h.ev);
	for (int i = 0; i < N_NODES; i++)
		raft_destroy(t->r[i]);
}

/* Runs one trial; 0 and t->elect_t / t->commit_t set, or a negative errno / -ETIMEDOUT. */
static int trial_run(struct trial *t, const struct params *p, uint64_t seed)
{
	struct raft_restore st;
	struct raft_config cfg;

	memset(t, 0, sizeof(*t));
	t->p = p;
	t->rng = seed * 0x9e3779b97f4a7c15ULL + 0x7261667462656e63ULL;
	t->leader = -1;
	t->victim = -1;
	t->elect_t = t->commit_t = -1;
	memset(&st, 0, sizeof(st));
	st.snap.meta.conf.n_voters = N_NODES;
	for (int i = 0; i < N_NODES; i++)
		st.snap.meta.conf.voters[i] = (raft_id)(i + 1);
	for (int i = 0; i < N_NODES; i++) {
		raft_config_default(&cfg, (raft_id)(i + 1), splitmix64(&t->rng));
		cfg.election_ticks = ELECTION_TICKS;
		cfg.heartbeat_ticks = p->heartbeat_ms; /* one tick = 1 ms */
		cfg.pre_vote = p->pre_vote;
		cfg.check_quorum = 1;
		if (raft_create(&cfg, &st, &t->r[i]) != 0)
			return -ENOMEM;
		t->alive[i] = true;
		t->last_contact[i] = INT64_MIN / 2;
		/* Each node's clock has its own phase: ticks are not synchronized. */
		if (heap_push(&t->h, (int64_t)rand_below(&t->rng, TICK_US) + 1, EV_TICK, i, NULL))
			return -ENOMEM;
	}
	if (p->client_ms &&
	    heap_push(&t->h, (int64_t)rand_below(&t->rng, (uint64_t)p->client_ms * US_PER_MS),
		      EV_CLIENT, 0, NULL))
		return -ENOMEM;

	while (t->h.n > 0 && t->err == 0 && t->commit_t < 0) {
		struct event e = heap_pop(&t->h);
		int i = e.node;

		t->now = e.t;
		if ((t->stage != ST_CRASHED && t->now > WARM_LIMIT_US) ||
		    (t->stage == ST_CRASHED && t->now > t->crash_t + TRIAL_LIMIT_US)) {
			msg_destroy(e.msg);
			return -ETIMEDOUT;
		}
		switch ((enum ev_type)e.type) {
		case EV_TICK:
			if (!t->alive[i])
				break;
			raft_tick(t->r[i]);
			handle_ready(t, i);
			if (heap_push(&t->h, t->now + TICK_US, EV_TICK, i, NULL) != 0)
				t->err = -ENOMEM;
			break;
		case EV_DELIVER:
			if (t->alive[i]) {
				const struct raft_message *m = e.msg;
				int rc;

				if ((int)m->from - 1 == t->leader &&
				    (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT))
					t->last_contact[i] = t->now;
				rc = raft_step(t->r[i], m);
				if (rc != 0)
					t->err = rc;
				handle_ready(t, i);
			}
			msg_destroy(e.msg);
			break;
		case EV_CLIENT: {
			uint64_t term;
			int ld = current_leader(t, &term);

			if (ld >= 0 &&
			    !(p->quiet && (t->stage == ST_WAIT_HB || t->stage == ST_ARMED)))
				client_propose(t, ld, term);
			if (heap_push(&t->h, t->now + (int64_t)p->client_ms * US_PER_MS, EV_CLIENT,
				      0, NULL) != 0)
				t->err = -ENOMEM;
			break;
		}
		case EV_CRASH: {
			struct raft_status s;

			raft_get_status(t->r[i], &s);
			t->alive[i] = false;
			t->victim = i;
			t->crash_t = t->now;
			t->crash_term = s.term;
			t->stage = ST_CRASHED;
			break;
		}
		}
		check_stage(t);
		client_poll(t);
	}
	if (t->err)
		return t->err;
	return t->commit_t >= 0 ? 0 : -ETIMEDOUT;
}

/* ---------------------------------------------------------------- the timing model */

/*
 * One sample of the failover time predicted by the timing model alone (no Raft code).
 * Times in ms; the leader's last heartbeat broadcast is at 0 and the crash at
 * C ~ U[0, H).
 *
 * Detection. Every message from the leader reaches both followers at the same instant
 * (same latency), and each arrival resets their election timers. L is the last such
 * arrival of a message sent at or before C (it can be after C: in flight). Messages:
 * heartbeats (sent at 0, -H, ...), the APPEND of each client proposal (sent at p,
 * arriving p+1) and the APPEND carrying the new commit index (sent at p+2 when both
 * answers are back, arriving p+3). Follower i then fires on the T_i-th tick after L,
 * T_i uniform over {150..299}, its ticks at phi_i + k: f_i = L + ((phi_i - L) mod 1)
 * + T_i - 1, i.e. the detection delay is min(T_1, T_2) minus the gap C - L.
 *
 * Election. The earlier follower i wins after pre-vote (2 one-way delays: PREVOTE and
 * its answer) and vote (2 more): leader at f_i + 4 (f_i + 2 without pre-vote). The
 * other follower grants both: its own timer started at the same L and has run for
 * more than 150 ticks, so its check-quorum lease (election_ticks since the leader was
 * last heard) has expired. If the other follower fires less than 1 ms after the first
 * (before the first one's PREVOTE, resp. VOTE, reaches it), both become candidates
 * of the same term and vote for themselves: a split vote. Both then wait a fresh
 * timeout counted from when they became candidates (f + 2 with pre-vote, f without)
 * and the race is run again.
 *
 * Commit. The new leader appends its no-op and sends it in a probe; the answer is back
 * at A + 2, which commits the no-op and turns the follower to pipelining. A client
 * proposal made at c >= A is committed (and applied, the disk being instantaneous) at
 * max(c, A + 2) + 2. With a 10 ms client, c is its first tick after A; a continuous
 * client proposes at A.
 *
 * Lower bound: T = 150, the fire tick at most 1 ms early (timer reset just before a
 * tick: (T-1, T]), the largest gap. With a 10 ms client the leader's messages reach
 * the followers at p+1 and p+3 each 10 ms, so C - L < 7 ms; heartbeats alone give
 * C - L < H - 1.
 */
static void model_sample(const struct params *p, uint64_t *s, double *a, double *b, double *gap,
			 int *rounds)
{
	double H = p->heartbeat_ms, C = H * rand_unit(s), L = 1.0, f[2], nextc = 0, A;
	double d_elect = p->pre_vote ? 4.0 : 2.0, cand = p->pre_vote ? 2.0 : 0.0, phase[2];

	if (p->client_ms) {
		double cp = p->client_ms, ph = cp * rand_unit(s);
		/* last client proposal at or before C (the client grid has phase ph) */
		double last = ph + cp * floor((C - ph) / cp);

		for (double q = last; q >= last - cp && !p->quiet; q -= cp) {
			if (q + 1 > L)
				L = q + 1;
			if (q + 2 <= C && q + 3 > L)
				L = q + 3;
		}
		nextc = last + cp; /* the following client ticks: nextc + k * cp */
	} else {
		/* continuous client: a proposal every 2 ms (commit + next proposal go together) */
		double ph = 2.0 * rand_unit(s), last = ph + 2.0 * floor((C - ph) / 2.0);

		if (last + 1 > L)
			L = last + 1;
	}
	*gap = C - L;
	for (int i = 0; i < 2; i++) {
		double T = 150.0 + (double)rand_below(s, 150);

		phase[i] = rand_unit(s);
		f[i] = L + fmod(phase[i] - fmod(L, 1.0) + 2.0, 1.0) + T - 1.0;
	}
	*rounds = 1;
	while (fabs(f[0] - f[1]) < 1.0) {
		/* split vote: each waits a fresh timeout from when it became candidate */
		for (int i = 0; i < 2; i++) {
			/* start is on the node's tick grid (f is a tick, cand whole ms): the
			 * timer counts from the next tick */
			double start = f[i] + cand, T = 150.0 + (double)rand_below(s, 150);

			f[i] = start + T;
		}
		(*rounds)++;
	}
	A = (f[0] < f[1] ? f[0] : f[1]) + d_elect;
	*a = A - C;
	if (p->client_ms) {
		double c = nextc + p->client_ms * ceil((A - nextc) / p->client_ms);

		*b = (c > A + 2 ? c : A + 2) + 2 - C;
	} else {
		*b = A + 4 - C;
	}
}

/* ---------------------------------------------------------------- statistics */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double q)
{
	size_t k = (size_t)ceil(q * (double)n);

	return v[k > 0 ? k - 1 : 0];
}

struct summary {
	double med, p99, max, mean, min;
};

static struct summary summarize(double *v, size_t n)
{
	struct summary s = {0, 0, 0, 0, 0};
	double sum = 0;

	if (n == 0)
		return s;
	qsort(v, n, sizeof(*v), cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	s.med = pct(v, n, 0.5);
	s.p99 = pct(v, n, 0.99);
	s.max = v[n - 1];
	s.min = v[0];
	s.mean = sum / (double)n;
	return s;
}

struct result {
	struct summary a, b, ma, mb;
	double b_p99_nosplit; /* diagnostic: p99 of (b) over the trials without a split vote */
	double gap_mean, model_gap_mean, model_split_pct;
	size_t n_ok, n_split, n_fail;
	double lb_a, lb_b;
};

/* Runs the trials and the model for one configuration; returns the number of failed trials. */
static int run_config(const struct params *p, size_t trials, uint64_t seed0, struct result *res)
{
	double *a = calloc(trials, sizeof(double)), *b = calloc(trials, sizeof(double));
	double *bn = calloc(trials, sizeof(double));
	size_t n_bn = 0;
	double *ma = calloc(MODEL_SAMPLES, sizeof(double)),
	       *mb = calloc(MODEL_SAMPLES, sizeof(double));
	double gap_sum = 0, model_gap = 0, max_gap;
	uint64_t ms = seed0 ^ 0x6d6f64656cULL;
	size_t split = 0;

	memset(res, 0, sizeof(*res));
	if (!a || !b || !bn || !ma || !mb) {
		free(a), free(b), free(bn), free(ma), free(mb);
		return -ENOMEM;
	}
	for (size_t k = 0; k < trials; k++) {
		struct trial t;
		int rc = trial_run(&t, p, seed0 + k);

		if (rc == 0) {
			a[res->n_ok] = (double)(t.elect_t - t.crash_t) / US_PER_MS;
			b[res->n_ok] = (double)(t.commit_t - t.crash_t) / US_PER_MS;
			gap_sum += (double)t.gap_us / US_PER_MS;
			/* pre-vote never raises the term by itself: one term per real election */
			if (t.new_term > t.crash_term + 1)
				res->n_split++;
			else
				bn[n_bn++] = b[res->n_ok];
			res->n_ok++;
		} else {
			fprintf(stderr, "%s: trial seed %llu failed: %s\n", p->name,
				(unsigned long long)(seed0 + k), strerror(-rc));
			res->n_fail++;
		}
		trial_free(&t);
	}
	for (size_t k = 0; k < MODEL_SAMPLES; k++) {
		double gap;
		int rounds;

		model_sample(p, &ms, &ma[k], &mb[k], &gap, &rounds);
		split += rounds > 1;
		model_gap += gap;
	}
	res->model_gap_mean = model_gap / MODEL_SAMPLES;
	res->a = summarize(a, res->n_ok);
	res->b = summarize(b, res->n_ok);
	res->b_p99_nosplit = summarize(bn, n_bn).p99;
	res->ma = summarize(ma, MODEL_SAMPLES);
	res->mb = summarize(mb, MODEL_SAMPLES);
	res->gap_mean = res->n_ok ? gap_sum / (double)res->n_ok : 0;
	res->model_split_pct = 100.0 * (double)split / MODEL_SAMPLES;
	/* See model_sample: minimum timeout 150 ticks fires > 149 ms after the last contact,
	 * minus the largest gap, plus the election's one-way delays; then the commit. */
	max_gap = p->client_ms ? fmin(7.0, (double)p->heartbeat_ms - 1) : 1.0;
	if (p->quiet)
		max_gap = (double)p->heartbeat_ms - 1;
	res->lb_a = 149.0 - max_gap + (p->pre_vote ? 4.0 : 2.0);
	res->lb_b = res->lb_a + 4.0;
	free(a), free(b), free(bn), free(ma), free(mb);
	return (int)res->n_fail;
}

/* Exact mean and median of min(T1, T2), T uniform over {e, ..., 2e-1}. */
static void min_of_two(uint32_t e, double *mean, double *median)
{
	double sum = e, med = 0;

	for (uint32_t k = e + 1; k < 2 * e; k++) {
		double surv = (double)(2 * e - k) / e; /* P(T >= k) */

		sum += surv * surv;		    /* E[min] = e + sum_{k>e} P(min >= k) */
		if (med == 0 && surv * surv <= 0.5) /* P(min <= k-1) >= 1/2 */
			med = k - 1;
	}
	*mean = sum;
	*median = med;
}

int main(int argc, char **argv)
{
	static const struct params cfgs[] = {
	    {"pre-vote, hb 50 ms (default)", 50, 1, 10, 0},
	    {"no pre-vote, hb 50 ms", 50, 0, 10, 0},
	    {"pre-vote, hb 30 ms", 30, 1, 10, 0},
	    {"pre-vote, hb 50, continuous client", 50, 1, 0, 0},
	    {"pre-vote, hb 50, quiet before crash", 50, 1, 10, 1},
	};
	size_t trials = 1000;
	uint64_t seed = 1;
	int failed = 0;
	double mmean, mmed, psplit;

	if (argc > 1) {
		char *end;
		unsigned long v = strtoul(argv[1], &end, 10);

		if (*end != '\0' || v == 0 || v > 1000000) {
			fprintf(stderr, "usage: %s [trials] [seed]\n", argv[0]);
			return 1;
		}
		trials = v;
	}
	if (argc > 2)
		seed = strtoull(argv[2], NULL, 10);

	min_of_two(ELECTION_TICKS, &mmean, &mmed);
	printf("Raft failover in simulation: 3 nodes, 1 ms one-way latency, 1 ms ticks, "
	       "election timeout uniform over [150, 300) ms\n"
	       "(election_ticks = 150: the core draws 150 + rand %% 150 ticks), disk "
	       "instantaneous, check-quorum on, %zu trials per row (seeds %llu..%llu),\n"
	       "leader crashed at a uniformly random point of its heartbeat interval; "
	       "client: one write every 10 ms unless noted.\n"
	       "(a) crash -> a survivor is leader in a higher term   (b) crash -> a write "
	       "proposed to the new leader is committed and applied\n\n",
	       trials, (unsigned long long)seed, (unsigned long long)(seed + trials - 1));
	printf("%-36s|%-31s|%-31s|\n", "", "  (a) crash -> new leader, ms",
	       "  (b) crash -> next commit, ms");
	printf("%-36s|%7s%8s%8s%8s|%7s%8s%8s%8s|%7s%7s\n", "configuration", "min", "median", "p99",
	       "max", "min", "median", "p99", "max", "splits", "gap");
	for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
		struct result r;
		int rc = run_config(&cfgs[c], trials, seed, &r);

		if (rc < 0) {
			fprintf(stderr, "out of memory\n");
			return 1;
		}
		failed += rc;
		printf("%-36s|%7.1f%8.1f%8.1f%8.1f|%7.1f%8.1f%8.1f%8.1f|%6.1f%%%7.1f\n",
		       cfgs[c].name, r.a.min, r.a.med, r.a.p99, r.a.max, r.b.min, r.b.med, r.b.p99,
		       r.b.max, r.n_ok ? 100.0 * (double)r.n_split / (double)r.n_ok : 0.0,
		       r.gap_mean);
		printf("%-36s|%7s%8.1f%8.1f%8.1f|%7s%8.1f%8.1f%8.1f|%6.1f%%%7.1f\n",
		       "  model (timing only, 1e6 draws)", "", r.ma.med, r.ma.p99, r.ma.max, "",
		       r.mb.med, r.mb.p99, r.mb.max, r.model_split_pct, r.model_gap_mean);
		printf("%-36s|%7.1f%24s|%7.1f%24s|\n", "  lower bound", r.lb_a, "", r.lb_b, "");
		if (r.n_fail)
			printf("  %zu trials FAILED (no leader or no commit within 10 s)\n",
			       r.n_fail);
		if (c == 0) {
			bool ok =
			    r.n_fail == 0 && r.b.med <= TARGET_MED_MS && r.b.p99 <= TARGET_P99_MS;

			printf("  target for (b): median <= %.0f ms, p99 <= %.0f ms -> %s "
			       "(median %.1f, p99 %.1f; diagnostic: p99 %.1f over the %zu trials "
			       "without a split vote)\n",
			       TARGET_MED_MS, TARGET_P99_MS, ok ? "MET" : "NOT MET", r.b.med,
			       r.b.p99, r.b_p99_nosplit, r.n_ok - r.n_split);
		}
	}
	/* Split probability: |f1 - f2| < 1 ms with f = T + tick phase, T uniform over 150
	 * integers: P(T1 = T2) + P(|T1 - T2| = 1) / 2. */
	psplit = 1.0 / ELECTION_TICKS +
		 (double)(ELECTION_TICKS - 1) / ((double)ELECTION_TICKS * ELECTION_TICKS);
	printf("\nsplits: trials whose new leader's term is more than one above the crashed "
	       "leader's (a split vote: both followers fired < 1 ms\n"
	       "apart, before the other's (pre-)vote request arrived). gap: mean time from the "
	       "followers' last message from the leader to the crash.\n"
	       "Why these numbers: detection = min(T1, T2) - gap; min of the followers' two "
	       "timers over {150..299} ms has mean %.1f ms, median %.0f ms.\n"
	       "Then +4 ms for pre-vote and vote (+2 without pre-vote), +4 ms for the no-op's "
	       "and the write's round trips, and the wait for the\n"
	       "client's next 10 ms tick (5 ms on average). A split vote costs a fresh timeout "
	       "(150-300 ms) and happens with probability\n"
	       "%.2f%% (1 ms latency / 150 ms of randomness, twice): more than 1%%, so p99 "
	       "lands on split trials whatever the implementation.\n",
	       mmean, mmed, 100.0 * psplit);
	printf("\nAnchors:\n"
	       "  Raft paper (Ongaro & Ousterhout 2014, §9.3, Figure 16): 5 servers, broadcast "
	       "time ~15 ms, heartbeat = half the minimum timeout,\n"
	       "    crash uniform in the heartbeat interval, time to detect and elect: "
	       "150-155 ms timeouts -> median 287 ms; 150-200 ms -> worst of\n"
	       "    1000 trials 513 ms; 12-24 ms -> 35 ms on average (max 152 ms). The 150-300 "
	       "ms curve is only given graphically.\n"
	       "  etcd 3.4 on this kind of machine (150 ms election timeout, randomized to "
	       "150-300 ms, heartbeat 30 ms): leader kill -> next\n"
	       "    committed write median %.0f ms (8 trials, 220-278 ms).\n",
	       ETCD_MEDIAN_MS);
	return failed ? 1 : 0;
}
