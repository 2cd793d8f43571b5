/* Unit tests for dataplane/flow: index, timeouts, TCP states, eviction, reverse keys, a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testutil.h"
#include "dataplane/addr.h"
#include "dataplane/flow.h"

/* ---- helpers ---------------------------------------------------------- */

static void set_v4(struct addr *a, uint32_t v)
{
	const uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
			      (uint8_t)v};

	addr_set_v4(a, b);
}

static void set_v6(struct addr *a, uint32_t v)
{
	uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};

	b[12] = (uint8_t)(v >> 24);
	b[13] = (uint8_t)(v >> 16);
	b[14] = (uint8_t)(v >> 8);
	b[15] = (uint8_t)v;
	addr_set_v6(a, b);
}

/* Client n (v4 10.x.y.z or v6 2001:db8::n) -> VIP 192.0.2.1 (or 2001:db8::1:1) port 80. */
static struct flow_key key_n(uint32_t n, uint8_t proto, int v6)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	if (v6) {
		set_v6(&k.src, 0x100000 + n / 50000);
		set_v6(&k.dst, 0x10001);
	} else {
		set_v4(&k.src, 0x0a000000 + n / 50000);
		set_v4(&k.dst, 0xc0000201);
	}
	k.sport = (uint16_t)(1024 + n % 50000);
	k.dport = 80;
	k.proto = proto;
	return k;
}

/* Reply key of a nat flow: backend b port 8080 -> SNAT 198.51.100.1 port sport. */
static struct flow_key rev_n(uint32_t b, uint16_t sport, uint8_t proto)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	set_v4(&k.src, 0xac100000 + b);
	set_v4(&k.dst, 0xc6336401);
	k.sport = 8080;
	k.dport = sport;
	k.proto = proto;
	return k;
}

#define MAXID 200000

/* Release log: how often on_release ran for each flow id (kept in svc_idx). */
struct rel_log {
	uint32_t calls;
	uint32_t last_id;
	uint8_t n[MAXID];
};

static void rel_count(void *ctx, const struct flow_entry *e)
{
	struct rel_log *log = ctx;

	log->calls++;
	log->last_id = e->svc_idx;
	if (e->svc_idx < MAXID)
		log->n[e->svc_idx]++;
}

static struct rel_log *rel_new(void)
{
	struct rel_log *log = calloc(1, sizeof(*log));

	assert_non_null(log);
	return log;
}

static struct flow_entry *ins(struct flow_table *t, const struct flow_key *k, uint64_t now,
			      uint32_t id)
{
	struct flow_entry *e;

	assert_null(flow_lookup(t, k, flow_hash(k), now, NULL));
	e = flow_insert(t, k, flow_hash(k), now);
	if (e)
		e->svc_idx = id;
	return e;
}

static struct flow_entry *look(struct flow_table *t, const struct flow_key *k, uint64_t now,
			       int *dir)
{
	return flow_lookup(t, k, flow_hash(k), now, dir);
}

/*
 * The forwarding burst's way to look n keys up (fwd_burst): every candidate
 * entry requested first (flow_prefetch_entry's hints), then flow_lookup_hint
 * in order, so later lookups may meet hints that earlier ones made stale.
 * Returns the hits; out/dirs as flow_lookup's result and *dir.
 */
static unsigned staged_lookup(struct flow_table *t, const struct flow_key *const keys[],
			      const uint64_t hashes[], unsigned n, uint64_t now,
			      struct flow_entry *out[], int dirs[])
{
	struct flow_index ix;
	uint32_t hint[64];
	unsigned hits = 0;

	assert_true(n <= 64);
	flow_index_of(t, &ix);
	for (unsigned i = 0; i < n; i++)
		hint[i] = flow_prefetch_entry(&ix, hashes[i], 0);
	for (unsigned i = 0; i < n; i++) {
		int d = FLOW_DIR_FWD;
		out[i] = flow_lookup_hint(t, keys[i], hashes[i], hint[i], now, &d);
		if (dirs)
			dirs[i] = d;
		hits += out[i] != NULL;
	}
	return hits;
}

/* An established TCP flow: SYN then ACK from the client. */
static struct flow_entry *ins_est(struct flow_table *t, const struct flow_key *k, uint64_t now,
				  uint32_t id)
{
	struct flow_entry *e = ins(t, k, now, id);

	assert_non_null(e);
	flow_track_tcp(e, FLOW_TCPF_SYN, FLOW_DIR_FWD, now);
	flow_track_tcp(e, FLOW_TCPF_ACK, FLOW_DIR_FWD, now);
	assert_int_equal(e->tcp_state, FLOW_TCP_ESTABLISHED);
	return e;
}

static void check_stats_invariant(const struct flow_table *t)
{
	struct flow_stats s;

	assert_int_equal(flow_check(t), 0);
	flow_stats(t, &s);
	assert_int_equal(s.inserts, s.removes + s.expired + s.evict_expired + s.evict_embryonic +
					s.evict_established + flow_count(t));
}

static const struct flow_timeouts small_to = {
    .tcp_syn = 10,
    .tcp_est = 1000,
    .tcp_fin = 50,
    .tcp_closed = 20,
    .udp = 300,
    .other = 200,
};

/* ---- creation --------------------------------------------------------- */

static void test_create_args(void **state)
{
	struct flow_timeouts to;
	struct flow_table *t;

	(void)state;
	assert_null(flow_create(0, NULL, NULL, NULL));
	assert_null(flow_create(FLOW_CAPACITY_MAX + 1, NULL, NULL, NULL));
	flow_timeouts_default(&to);
	assert_true(to.tcp_syn > 0 && to.tcp_syn < to.tcp_est);
	assert_true(to.tcp_fin > 0 && to.tcp_closed > 0 && to.udp > 0 && to.other > 0);
	to.udp = 0;
	assert_null(flow_create(16, &to, NULL, NULL));
	t = flow_create(1, NULL, NULL, NULL);
	assert_non_null(t);
	assert_int_equal(flow_capacity(t), 1);
	assert_int_equal(flow_count(t), 0);
	assert_int_equal(flow_set_timeouts(t, &to), -EINVAL);
	assert_int_equal(flow_set_timeouts(t, &small_to), 0);
	flow_destroy(t);
	flow_destroy(NULL);
	assert_int_equal(sizeof(struct flow_entry), 128);
}

/* ---- insert / lookup -------------------------------------------------- */

static void insert_lookup(int v6)
{
	struct flow_table *t = flow_create(1000, NULL, NULL, NULL);
	struct flow_entry *e, *f;
	struct flow_key k = key_n(7, IPPROTO_TCP, v6), o;
	int dir = -1;

	assert_non_null(t);
	assert_null(look(t, &k, 1, &dir));
	e = flow_insert(t, &k, flow_hash(&k), 100);
	assert_non_null(e);
	assert_int_equal((uintptr_t)e % 64, 0);
	assert_memory_equal(&e->key, &k, sizeof(k));
	assert_int_equal(e->last_seen, 100);
	assert_int_equal(e->tcp_state, FLOW_TCP_NONE);
	assert_int_equal(e->flags & ~FLOW_F_QUEUED, FLOW_F_LIVE);
	assert_int_equal(e->backend_idx, 0);
	assert_int_equal(e->state_gen, 0);
	assert_int_equal(e->svc_idx, 0);
	assert_int_equal(e->snat_port, 0);
	assert_int_equal(flow_count(t), 1);
	f = look(t, &k, 101, &dir);
	assert_ptr_equal(f, e);
	assert_int_equal(dir, FLOW_DIR_FWD);
	/* Every field of the key matters. */
	o = k;
	o.sport++;
	assert_null(look(t, &o, 101, NULL));
	o = k;
	o.dport++;
	assert_null(look(t, &o, 101, NULL));
	o = k;
	o.proto = IPPROTO_UDP;
	assert_null(look(t, &o, 101, NULL));
	o = k;
	o.src.b[3] ^= 1;
	assert_null(look(t, &o, 101, NULL));
	o = k;
	o.dst.b[0] ^= 0x80;
	assert_null(look(t, &o, 101, NULL));
	o = key_n(7, IPPROTO_TCP, !v6);
	assert_null(look(t, &o, 101, NULL));
	/* Swapped direction is a different key (unless indexed as reverse). */
	o = k;
	o.src = k.dst;
	o.dst = k.src;
	o.sport = k.dport;
	o.dport = k.sport;
	assert_null(look(t, &o, 101, NULL));
	flow_destroy(t);
}

static void test_insert_lookup_v4(void **state)
{
	(void)state;
	insert_lookup(0);
}

static void test_insert_lookup_v6(void **state)
{
	(void)state;
	insert_lookup(1);
}

/* Many v4 and v6 flows side by side, all found, none confused. */
static void test_many_mixed(void **state)
{
	const uint32_t n = 20000;
	struct flow_table *t = flow_create(2 * n, NULL, NULL, NULL);

	(void)state;
	assert_non_null(t);
	for (uint32_t i = 0; i < n; i++) {
		for (int v6 = 0; v6 < 2; v6++) {
			struct flow_key k = key_n(i, IPPROTO_TCP, v6);
			struct flow_entry *e = ins(t, &k, 1, 2 * i + (uint32_t)v6);

			assert_non_null(e);
		}
	}
	assert_int_equal(flow_count(t), 2 * n);
	for (uint32_t i = 0; i < n; i++) {
		for (int v6 = 0; v6 < 2; v6++) {
			struct flow_key k = key_n(i, IPPROTO_TCP, v6);
			struct flow_entry *e = look(t, &k, 2, NULL);

			assert_non_null(e);
			assert_int_equal(e->svc_idx, 2 * i + (uint32_t)v6);
		}
		struct flow_key u = key_n(i, IPPROTO_UDP, 0);
		assert_null(look(t, &u, 2, NULL));
	}
	flow_destroy(t);
}

static void test_update_fields(void **state)
{
	struct flow_table *t = flow_create(64, NULL, NULL, NULL);
	struct flow_key k = key_n(1, IPPROTO_UDP, 0);
	struct flow_entry *e;

	(void)state;
	e = ins(t, &k, 10, 5);
	assert_non_null(e);
	e->backend_idx = 42;
	e->state_gen = 0x12345678u;
	flow_touch(e, 20);
	e = look(t, &k, 30, NULL);
	assert_non_null(e);
	assert_int_equal(e->backend_idx, 42);
	assert_int_equal(e->state_gen, 0x12345678u);
	assert_int_equal(e->svc_idx, 5);
	assert_int_equal(e->last_seen, 20);
	/* Time never goes backwards. */
	flow_touch(e, 15);
	assert_int_equal(e->last_seen, 20);
	flow_destroy(t);
}

/* ---- TCP state machine ------------------------------------------------ */

struct tcp_step {
	uint8_t flags;
	int dir;
	uint8_t expect;
};

static void run_steps(const struct tcp_step *s, size_t n, int nat)
{
	struct flow_table *t = flow_create(16, NULL, NULL, NULL);
	struct flow_key k = key_n(3, IPPROTO_TCP, 0);
	struct flow_entry *e = ins(t, &k, 1, 0);

	assert_non_null(e);
	if (nat) {
		struct flow_key r = rev_n(1, 40000, IPPROTO_TCP);

		assert_int_equal(flow_set_reverse(t, e, &r, flow_hash(&r)), 0);
	}
	for (size_t i = 0; i < n; i++) {
		flow_track_tcp(e, s[i].flags, s[i].dir, 2 + i);
		if (e->tcp_state != s[i].expect)
			fail_msg("step %zu (flags %#x dir %d): state %u, expected %u", i,
				 s[i].flags, s[i].dir, e->tcp_state, s[i].expect);
		assert_int_equal(e->last_seen, 2 + i);
	}
	flow_destroy(t);
}

#define F   FLOW_DIR_FWD
#define R   FLOW_DIR_REV
#define SYN FLOW_TCPF_SYN
#define ACK FLOW_TCPF_ACK
#define FIN FLOW_TCPF_FIN
#define RST FLOW_TCPF_RST
#define PSH FLOW_TCPF_PSH

static void test_tcp_states(void **state)
{
	/* dsr: the balancer sees only the client. */
	static const struct tcp_step dsr[] = {
	    {SYN, F, FLOW_TCP_SYN_SENT},       {SYN, F, FLOW_TCP_SYN_SENT},
	    {ACK, F, FLOW_TCP_ESTABLISHED},    {PSH | ACK, F, FLOW_TCP_ESTABLISHED},
	    {SYN, F, FLOW_TCP_ESTABLISHED},    {SYN | FIN, F, FLOW_TCP_ESTABLISHED},
	    {FIN | ACK, F, FLOW_TCP_FIN_WAIT}, {ACK, F, FLOW_TCP_FIN_WAIT},
	    {SYN, F, FLOW_TCP_SYN_SENT},       {ACK, F, FLOW_TCP_ESTABLISHED},
	    {RST, F, FLOW_TCP_CLOSED},	       {ACK, F, FLOW_TCP_CLOSED},
	    {FIN, F, FLOW_TCP_CLOSED},	       {SYN, F, FLOW_TCP_SYN_SENT},
	    {RST | ACK, F, FLOW_TCP_CLOSED},
	};
	/* nat: replies seen; the client's ACK establishes only after the server's SYN+ACK. */
	static const struct tcp_step nat[] = {
	    {SYN, F, FLOW_TCP_SYN_SENT},       {ACK, F, FLOW_TCP_SYN_SENT},
	    {ACK, R, FLOW_TCP_SYN_SENT},       {SYN, R, FLOW_TCP_SYN_SENT},
	    {SYN | ACK, F, FLOW_TCP_SYN_SENT}, {SYN | ACK, R, FLOW_TCP_SYN_SENT},
	    {ACK, F, FLOW_TCP_ESTABLISHED},    {ACK, R, FLOW_TCP_ESTABLISHED},
	    {FIN | ACK, R, FLOW_TCP_FIN_WAIT}, {FIN | ACK, F, FLOW_TCP_FIN_WAIT},
	    {RST, R, FLOW_TCP_CLOSED},
	};
	/* Mid-stream pickup (e.g. after an ECMP change): the first ACK establishes. */
	static const struct tcp_step mid[] = {
	    {PSH | ACK, F, FLOW_TCP_ESTABLISHED},
	};
	static const struct tcp_step fin_first[] = {
	    {SYN, F, FLOW_TCP_SYN_SENT},
	    {FIN, F, FLOW_TCP_FIN_WAIT},
	    {RST, R, FLOW_TCP_CLOSED},
	};
	static const struct tcp_step junk[] = {
	    {0, F, FLOW_TCP_NONE},   {SYN | RST, F, FLOW_TCP_NONE}, {ACK, R, FLOW_TCP_NONE},
	    {SYN, R, FLOW_TCP_NONE}, {RST, R, FLOW_TCP_CLOSED},
	};

	(void)state;
	run_steps(dsr, sizeof(dsr) / sizeof(dsr[0]), 0);
	run_steps(nat, sizeof(nat) / sizeof(nat[0]), 1);
	run_steps(mid, sizeof(mid) / sizeof(mid[0]), 0);
	run_steps(mid, sizeof(mid) / sizeof(mid[0]), 1);
	run_steps(fin_first, sizeof(fin_first) / sizeof(fin_first[0]), 0);
	run_steps(junk, sizeof(junk) / sizeof(junk[0]), 0);
}

/* ---- expiry ----------------------------------------------------------- */

/* Put a fresh entry of proto into `want` state at time t0. */
static struct flow_entry *entry_in_state(struct flow_table *t, uint32_t id, uint8_t proto,
					 uint8_t want, uint64_t t0)
{
	struct flow_key k = key_n(id, proto, (int)(id & 1));
	struct flow_entry *e = ins(t, &k, t0, id);

	assert_non_null(e);
	if (proto != IPPROTO_TCP) {
		flow_touch(e, t0);
		return e;
	}
	switch (want) {
	case FLOW_TCP_NONE:
		break;
	case FLOW_TCP_SYN_SENT:
		flow_track_tcp(e, SYN, F, t0);
		break;
	case FLOW_TCP_ESTABLISHED:
		flow_track_tcp(e, SYN, F, t0);
		flow_track_tcp(e, ACK, F, t0);
		break;
	case FLOW_TCP_FIN_WAIT:
		flow_track_tcp(e, ACK, F, t0);
		flow_track_tcp(e, FIN, F, t0);
		break;
	case FLOW_TCP_CLOSED:
		flow_track_tcp(e, RST, F, t0);
		break;
	}
	assert_int_equal(e->tcp_state, want);
	return e;
}

static void test_expiry_per_state(void **state)
{
	static const struct {
		uint8_t proto, st;
		uint64_t to;
	} cases[] = {
	    {IPPROTO_TCP, FLOW_TCP_NONE, 10},	       {IPPROTO_TCP, FLOW_TCP_SYN_SENT, 10},
	    {IPPROTO_TCP, FLOW_TCP_ESTABLISHED, 1000}, {IPPROTO_TCP, FLOW_TCP_FIN_WAIT, 50},
	    {IPPROTO_TCP, FLOW_TCP_CLOSED, 20},	       {IPPROTO_UDP, FLOW_TCP_NONE, 300},
	    {IPPROTO_ICMP, FLOW_TCP_NONE, 200},	       {47 /* GRE */, FLOW_TCP_NONE, 200},
	};
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(64, &small_to, rel_count, log);
	struct flow_stats s;

	(void)state;
	for (uint32_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint64_t t0 = 1000000 * (i + 1);
		struct flow_entry *e = entry_in_state(t, i, cases[i].proto, cases[i].st, t0);
		struct flow_key k = e->key;

		/* Exactly the timeout is still alive; one ns more is not. */
		assert_ptr_equal(look(t, &k, t0 + cases[i].to, NULL), e);
		assert_int_equal(log->n[i], 0);
		assert_null(look(t, &k, t0 + cases[i].to + 1, NULL));
		assert_int_equal(log->n[i], 1);
		assert_null(look(t, &k, t0 + cases[i].to + 2, NULL));
		assert_int_equal(log->n[i], 1);
	}
	flow_stats(t, &s);
	assert_int_equal(s.expired, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(flow_count(t), 0);
	/* A time before last_seen (another clock) never expires anything. */
	struct flow_entry *e = entry_in_state(t, 100, IPPROTO_UDP, FLOW_TCP_NONE, 5000);
	struct flow_key k = e->key;
	assert_ptr_equal(look(t, &k, 1, NULL), e);
	check_stats_invariant(t);
	flow_destroy(t);
	/* Destroy released the one left. */
	assert_int_equal(log->n[100], 1);
	free(log);
}

static void test_expire_sweep(void **state)
{
	const uint32_t n = 300;
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(n, &small_to, rel_count, log);
	uint32_t freed = 0, calls = 0;

	(void)state;
	/* Even ids: UDP at t=0 (expire after 300); odd: established TCP at t=0 (1000). */
	for (uint32_t i = 0; i < n; i++)
		entry_in_state(t, i, i % 2 ? IPPROTO_TCP : IPPROTO_UDP,
			       i % 2 ? FLOW_TCP_ESTABLISHED : FLOW_TCP_NONE, 0);
	assert_int_equal(flow_expire(t, 200, 1000), 0);
	assert_int_equal(flow_expire(t, 500, 0), 0);
	/* Budget 7: never more than 7 per call; one full round frees all UDP. */
	while (calls * 7 < n) {
		uint32_t f = flow_expire(t, 500, 7);

		assert_true(f <= 7);
		freed += f;
		calls++;
	}
	assert_int_equal(freed, n / 2);
	assert_int_equal(flow_count(t), n / 2);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(log->n[i], i % 2 ? 0 : 1);
	/* A second round finds nothing more; then the TCP ones expire. */
	assert_int_equal(flow_expire(t, 500, n), 0);
	assert_int_equal(flow_expire(t, 1001, n), n / 2);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(log->n[i], 1);
	assert_int_equal(log->calls, n);
	check_stats_invariant(t);
	flow_destroy(t);
	assert_int_equal(log->calls, n);
	free(log);
}

/* ---- eviction --------------------------------------------------------- */

static void test_eviction_order(void **state)
{
	const struct flow_timeouts to = {
	    .tcp_syn = 1000000,
	    .tcp_est = 100,
	    .tcp_fin = 100,
	    .tcp_closed = 100,
	    .udp = 1000000,
	    .other = 1000000,
	};
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(8, &to, rel_count, log);
	struct flow_stats s;
	struct flow_key k;
	struct flow_entry *e;

	(void)state;
	/* id 0: established at t=0 (expired from t=101). */
	k = key_n(0, IPPROTO_TCP, 0);
	ins_est(t, &k, 0, 0);
	/* ids 1..3: SYN only at 150, 151, 152; id 4: one UDP packet; ids 5..7 established. */
	for (uint32_t i = 1; i <= 3; i++)
		entry_in_state(t, i, IPPROTO_TCP, FLOW_TCP_SYN_SENT, 149 + i);
	entry_in_state(t, 4, IPPROTO_UDP, FLOW_TCP_NONE, 153);
	for (uint32_t i = 5; i <= 7; i++) {
		k = key_n(i, IPPROTO_TCP, 0);
		ins_est(t, &k, 153 + i, i);
	}
	assert_int_equal(flow_count(t), 8);

	/* 1) the expired established flow goes first, though SYNs are older than others. */
	k = key_n(100, IPPROTO_TCP, 0);
	e = ins(t, &k, 170, 100);
	assert_non_null(e);
	flow_track_tcp(e, SYN, F, 170);
	assert_int_equal(log->calls, 1);
	assert_int_equal(log->last_id, 0);
	flow_stats(t, &s);
	assert_int_equal(s.evict_expired, 1);
	/* 2) then embryonic flows, oldest created first: 1, 2, 3, 4 (UDP, one packet), 100. */
	const uint32_t order[] = {1, 2, 3, 4, 100};
	for (uint32_t j = 0; j < 5; j++) {
		k = key_n(101 + j, IPPROTO_TCP, 0);
		e = ins_est(t, &k, 171 + j, 101 + j);
		assert_int_equal(log->calls, 2 + j);
		assert_int_equal(log->last_id, order[j]);
	}
	flow_stats(t, &s);
	assert_int_equal(s.evict_embryonic, 5);
	/* 3) only established left: the insert fails, nobody is evicted. */
	k = key_n(200, IPPROTO_TCP, 0);
	assert_null(ins(t, &k, 180, 200));
	flow_stats(t, &s);
	assert_int_equal(s.insert_fail, 1);
	assert_int_equal(log->calls, 6);
	for (uint32_t i = 5; i <= 7; i++) {
		k = key_n(i, IPPROTO_TCP, 0);
		assert_non_null(look(t, &k, 180, NULL));
	}
	/* 4) unless evicting established flows is enabled: the least recently seen goes (5). */
	flow_set_evict_established(t, 1);
	k = key_n(200, IPPROTO_TCP, 0);
	assert_non_null(ins(t, &k, 180, 200));
	flow_stats(t, &s);
	assert_int_equal(s.evict_established, 1);
	assert_int_equal(log->last_id, 5);
	check_stats_invariant(t);
	flow_destroy(t);
	free(log);
}

/*
 * SYN flood against a table holding established flows: no established flow is
 * lost; SYNs beyond the free room replace older SYNs (or fail, counted).
 */
static void syn_flood(uint32_t cap, uint32_t n_est)
{
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(cap, NULL, rel_count, log);
	const uint32_t n_syn = 10 * cap;
	uint32_t ok = 0, fail = 0;
	uint64_t now = 1000;
	struct flow_stats s;

	assert_non_null(t);
	for (uint32_t i = 0; i < n_est; i++) {
		struct flow_key k = key_n(i, IPPROTO_TCP, (int)(i & 1));

		ins_est(t, &k, now, i);
	}
	for (uint32_t i = 0; i < n_syn; i++) {
		struct flow_key k = key_n(cap + i, IPPROTO_TCP, (int)(i & 1));
		struct flow_entry *e;

		now += 100; /* 10 Mpps: nothing times out during the flood */
		e = ins(t, &k, now, cap + i);
		if (e) {
			flow_track_tcp(e, SYN, F, now);
			ok++;
		} else {
			fail++;
		}
		/* Every flow that was established is still there, now and then. */
		if (i % (n_syn / 8) == 0 || i == n_syn - 1) {
			for (uint32_t j = 0; j < n_est; j++) {
				struct flow_key ek = key_n(j, IPPROTO_TCP, (int)(j & 1));
				struct flow_entry *f = look(t, &ek, now, NULL);

				assert_non_null(f);
				assert_int_equal(f->svc_idx, j);
			}
		}
	}
	flow_stats(t, &s);
	assert_int_equal(ok + fail, n_syn);
	assert_int_equal(s.insert_fail, fail);
	assert_int_equal(s.evict_established, 0);
	assert_int_equal(s.evict_expired, 0);
	for (uint32_t j = 0; j < n_est; j++)
		assert_int_equal(log->n[j], 0);
	if (n_est == cap) {
		assert_int_equal(ok, 0);
	} else {
		/* The free room first, then each success replaced one SYN. */
		assert_int_equal(s.evict_embryonic, ok - (cap - n_est));
		assert_int_equal(flow_count(t), cap);
		/* Only the queue clean-up of graduated flows may cost a few failures. */
		assert_true(fail <= n_est / 64 + 1);
		/* Oldest SYNs went first: the newest ones are all present. */
		for (uint32_t i = n_syn - (cap - n_est) / 2; i < n_syn; i++) {
			struct flow_key k = key_n(cap + i, IPPROTO_TCP, (int)(i & 1));

			assert_non_null(look(t, &k, now, NULL));
		}
		struct flow_key first = key_n(cap, IPPROTO_TCP, 0);
		assert_null(look(t, &first, now, NULL));
	}
	check_stats_invariant(t);
	flow_destroy(t);
	free(log);
}

static void test_syn_flood_half_full(void **state)
{
	(void)state;
	syn_flood(4096, 2048);
}

static void test_syn_flood_full(void **state)
{
	(void)state;
	syn_flood(4096, 4096);
}

/* One-packet flows (mid-stream ACK or UDP floods) are embryonic too; a second packet graduates. */
static void test_single_packet_flows_evictable(void **state)
{
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(64, NULL, rel_count, log);
	struct flow_stats s;

	(void)state;
	for (uint32_t i = 0; i < 64; i++) {
		struct flow_key k = key_n(i, i % 2 ? IPPROTO_TCP : IPPROTO_UDP, 0);
		struct flow_entry *e = ins(t, &k, 10, i);

		assert_non_null(e);
		if (i % 2)
			flow_track_tcp(e, ACK, F, 10);
		else
			flow_touch(e, 10);
		if (i < 32) { /* the first half sees a second packet */
			if (i % 2)
				flow_track_tcp(e, ACK, F, 11);
			else
				flow_touch(e, 11);
		}
	}
	for (uint32_t i = 0; i < 100; i++) {
		struct flow_key k = key_n(1000 + i, IPPROTO_UDP, 0);

		assert_non_null(ins(t, &k, 20 + i, 1000 + i));
	}
	flow_stats(t, &s);
	assert_int_equal(s.evict_embryonic, 100);
	for (uint32_t i = 0; i < 64; i++)
		assert_int_equal(log->n[i], i < 32 ? 0 : 1);
	flow_destroy(t);
	free(log);
}

/*
 * White box: the same bucket mapping as flow.c (4 key slots per flow, 8 per
 * bucket; first bucket from the low word of the hash, signature from the top
 * 16 bits, second bucket = (c(sig) - first) mod nb), to build keys that land
 * in chosen buckets.
 */
static void buckets_of(const struct flow_key *k, uint32_t cap, uint32_t *b1, uint32_t *b2)
{
	uint64_t h = flow_hash(k), nb = ((uint64_t)cap * 4 + 7) / 8;
	uint16_t sig = (uint16_t)(h >> 48);
	uint32_t c;

	sig = sig ? sig : 1;
	c = (uint32_t)(((uint64_t)(sig * 0x9e3779b1u) * nb) >> 32);
	*b1 = (uint32_t)(((uint64_t)(uint32_t)h * nb) >> 32);
	*b2 = c >= *b1 ? c - *b1 : (uint32_t)(c + nb - *b1);
}

static int only_bucket(const struct flow_key *k, uint32_t cap, uint32_t bucket)
{
	uint32_t b1, b2;

	buckets_of(k, cap, &b1, &b2);
	return b1 == bucket && b2 == bucket;
}

/*
 * Both buckets of a key full, but their occupants have room elsewhere: one is
 * moved (cuckoo step) and nothing is evicted.
 */
static void test_bucket_displacement(void **state)
{
	const uint32_t cap = 64, X = 5, Y = 9;
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(cap, NULL, rel_count, log);
	struct flow_key all[17];
	uint32_t na = 0, nbk = 0, b1, b2;
	int have_k = 0;
	struct flow_stats s;

	(void)state;
	/* all[0..7]: first bucket X, all[8..15]: first bucket Y (second ones elsewhere); all[16]: X
	 * then Y. */
	for (uint32_t n = 0; na < 8 || nbk < 8 || !have_k; n++) {
		struct flow_key c = key_n(n, IPPROTO_TCP, 0);

		buckets_of(&c, cap, &b1, &b2);
		if (b1 == X && b2 != X && b2 != Y && na < 8)
			all[na++] = c;
		else if (b1 == Y && b2 != X && b2 != Y && nbk < 8)
			all[8 + nbk++] = c;
		else if (b1 == X && b2 == Y && !have_k) {
			all[16] = c;
			have_k = 1;
		}
	}
	for (uint32_t i = 0; i < 17; i++)
		ins_est(t, &all[i], 10, i);
	assert_int_equal(flow_check(t), 0);
	flow_stats(t, &s);
	assert_int_equal(s.insert_fail, 0);
	assert_int_equal(s.evict_embryonic + s.evict_expired + s.evict_established, 0);
	assert_int_equal(log->calls, 0);
	for (uint32_t i = 0; i < 17; i++) {
		struct flow_entry *e = look(t, &all[i], 11, NULL);

		assert_non_null(e);
		assert_int_equal(e->svc_idx, i);
	}
	/* Removing them all leaves a clean index: everything can be inserted again. */
	for (uint32_t i = 0; i < 17; i++)
		assert_int_equal(flow_remove(t, look(t, &all[i], 11, NULL)), 0);
	assert_int_equal(flow_count(t), 0);
	for (uint32_t i = 0; i < 17; i++)
		ins_est(t, &all[i], 12, i);
	for (uint32_t i = 0; i < 17; i++)
		assert_non_null(look(t, &all[i], 12, NULL));
	check_stats_invariant(t);
	flow_destroy(t);
	free(log);
}

/*
 * A key that overflowed to its second bucket goes back to its first when the
 * second is full and the first has room again (the other direction of the
 * cuckoo step), and the overflow count of its first bucket follows.
 */
static void test_bucket_move_back(void **state)
{
	const uint32_t cap = 64, X = 5, Z = 9, W = 13;
	struct flow_table *t = flow_create(cap, NULL, NULL, NULL);
	struct flow_key xs[8], p, zs[7], ws[8], k;
	uint32_t nx = 0, nz = 0, nw = 0, b1, b2;
	int have_p = 0, have_k = 0;
	struct flow_stats s;

	(void)state;
	for (uint32_t n = 0; nx < 8 || nz < 7 || nw < 8 || !have_p || !have_k; n++) {
		struct flow_key c = key_n(n, IPPROTO_UDP, 0);
		int other;

		buckets_of(&c, cap, &b1, &b2);
		other = b2 != X && b2 != Z && b2 != W;
		if (b1 == X && other && nx < 8)
			xs[nx++] = c;
		else if (b1 == Z && other && nz < 7)
			zs[nz++] = c;
		else if (b1 == W && other && nw < 8)
			ws[nw++] = c;
		else if (b1 == X && b2 == Z && !have_p) {
			p = c;
			have_p = 1;
		} else if (b1 == Z && b2 == W && !have_k) {
			k = c;
			have_k = 1;
		}
	}
	for (uint32_t i = 0; i < 8; i++)
		assert_non_null(ins(t, &xs[i], 1, i));
	assert_non_null(ins(t, &p, 1, 100)); /* X is full: p goes to Z */
	assert_int_equal(flow_remove(t, look(t, &xs[0], 1, NULL)), 0);
	for (uint32_t i = 0; i < 7; i++)
		assert_non_null(ins(t, &zs[i], 1, 10 + i));
	for (uint32_t i = 0; i < 8; i++)
		assert_non_null(ins(t, &ws[i], 1, 20 + i));
	/* Z and W are full; p, first in Z, moves back to X. */
	assert_non_null(ins(t, &k, 1, 200));
	assert_int_equal(flow_check(t), 0);
	flow_stats(t, &s);
	assert_int_equal(s.evict_embryonic + s.evict_expired + s.insert_fail, 0);
	assert_int_equal(look(t, &p, 1, NULL)->svc_idx, 100);
	assert_int_equal(look(t, &k, 1, NULL)->svc_idx, 200);
	for (uint32_t i = 1; i < 8; i++)
		assert_int_equal(look(t, &xs[i], 1, NULL)->svc_idx, i);
	for (uint32_t i = 0; i < 7; i++)
		assert_int_equal(look(t, &zs[i], 1, NULL)->svc_idx, 10 + i);
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(look(t, &ws[i], 1, NULL)->svc_idx, 20 + i);
	/* With p gone from X's overflow, removing it leaves every count at zero. */
	assert_int_equal(flow_remove(t, look(t, &p, 1, NULL)), 0);
	assert_int_equal(flow_check(t), 0);
	flow_destroy(t);
}

/*
 * nat at full capacity: every flow indexes two keys (half the index slots in
 * use) and all are established, so nothing may be evicted: every insert and
 * every reverse key must still find room.
 */
static void test_full_nat_load(void **state)
{
	const uint32_t cap = 100000;
	struct flow_table *t = flow_create(cap, NULL, NULL, NULL);
	struct flow_stats s;

	(void)state;
	for (uint32_t i = 0; i < cap; i++) {
		struct flow_key k = key_n(i, i % 3 ? IPPROTO_TCP : IPPROTO_UDP, (int)(i % 5 == 0));
		struct flow_key r = rev_n(i % 16, (uint16_t)(1024 + i / 16), k.proto);
		struct flow_entry *e = flow_insert(t, &k, flow_hash(&k), 1);

		assert_non_null(e);
		assert_int_equal(flow_set_reverse(t, e, &r, flow_hash(&r)), 0);
		flow_touch(e, 1);
		flow_touch(e, 1);
		e->svc_idx = i;
	}
	assert_int_equal(flow_count(t), cap);
	flow_stats(t, &s);
	assert_int_equal(s.insert_fail + s.rev_nospace, 0);
	check_stats_invariant(t);
	for (uint32_t i = 0; i < cap; i += 7) {
		struct flow_key k = key_n(i, i % 3 ? IPPROTO_TCP : IPPROTO_UDP, (int)(i % 5 == 0));
		struct flow_key r = rev_n(i % 16, (uint16_t)(1024 + i / 16), k.proto);
		int dir;

		assert_int_equal(look(t, &k, 2, &dir)->svc_idx, i);
		assert_int_equal(dir, FLOW_DIR_FWD);
		assert_int_equal(look(t, &r, 2, &dir)->svc_idx, i);
		assert_int_equal(dir, FLOW_DIR_REV);
	}
	flow_destroy(t);
}

static void test_bucket_full(void **state)
{
	const uint32_t cap = 64;
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(cap, NULL, rel_count, log);
	struct flow_key keys[10], r;
	struct flow_entry *e;
	struct flow_stats s;
	uint32_t found = 0;

	(void)state;
	for (uint32_t n = 0; found < 10; n++) {
		struct flow_key k = key_n(n, IPPROTO_TCP, 0);

		if (only_bucket(&k, cap, 3))
			keys[found++] = k;
	}
	/* 7 established and 1 SYN fill the bucket; the table has room for 56 more. */
	for (uint32_t i = 0; i < 7; i++)
		ins_est(t, &keys[i], 100, i);
	e = ins(t, &keys[7], 100, 7);
	flow_track_tcp(e, SYN, F, 100);
	/* The 9th key of the bucket replaces the SYN. */
	e = ins(t, &keys[8], 101, 8);
	assert_non_null(e);
	flow_track_tcp(e, SYN, F, 101);
	flow_track_tcp(e, ACK, F, 101);
	assert_int_equal(log->calls, 1);
	assert_int_equal(log->last_id, 7);
	/* Now 8 established flows: the 10th key fails although the table is mostly empty. */
	assert_null(ins(t, &keys[9], 102, 9));
	flow_stats(t, &s);
	assert_int_equal(s.evict_embryonic, 1);
	assert_int_equal(s.insert_fail, 1);
	/* A reverse key whose buckets are that full bucket: -ENOSPC. */
	for (uint32_t n = 0;; n++) {
		r = rev_n(n % 16, (uint16_t)(1024 + n / 16), IPPROTO_TCP);
		if (only_bucket(&r, cap, 3))
			break;
	}
	struct flow_key other = key_n(100000, IPPROTO_TCP, 1);
	e = ins(t, &other, 102, 50);
	assert_non_null(e);
	assert_int_equal(flow_set_reverse(t, e, &r, flow_hash(&r)), -ENOSPC);
	assert_int_equal(e->flags & FLOW_F_REV, 0);
	flow_stats(t, &s);
	assert_int_equal(s.rev_nospace, 1);
	/* Once one of them times out, both work. */
	const uint64_t later = 102 + 900ULL * 1000000000ULL;
	struct flow_entry *f = look(t, &keys[0], 101, NULL);
	flow_touch(f, 101);
	for (uint32_t i = 1; i < 7; i++)
		flow_touch(look(t, &keys[i], 101, NULL), later);
	flow_touch(look(t, &keys[8], 101, NULL), later);
	flow_touch(e, later);
	assert_int_equal(flow_set_reverse(t, e, &r, flow_hash(&r)), 0);
	assert_int_equal(log->last_id, 0);
	flow_stats(t, &s);
	assert_int_equal(s.evict_expired, 1);
	check_stats_invariant(t);
	flow_destroy(t);
	free(log);
}

/* ---- reverse keys (nat) ---------------------------------------------- */

static void test_reverse(void **state)
{
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(128, &small_to, rel_count, log);
	struct flow_key k = key_n(1, IPPROTO_TCP, 1), r = rev_n(2, 40001, IPPROTO_TCP), r2;
	struct flow_entry *e, *f, *g;
	struct flow_stats s;
	int dir = -1;

	(void)state;
	e = ins(t, &k, 10, 1);
	assert_non_null(e);
	assert_null(look(t, &r, 10, NULL));
	assert_int_equal(flow_set_reverse(t, e, &r, flow_hash(&r)), 0);
	assert_true(e->flags & FLOW_F_REV);
	assert_true(addr_eq(&e->snat_addr, &r.dst));
	assert_int_equal(e->snat_port, 40001);
	assert_true(addr_eq(&e->rev_src, &r.src));
	assert_int_equal(e->rev_sport, 8080);
	assert_ptr_equal(look(t, &r, 11, &dir), e);
	assert_int_equal(dir, FLOW_DIR_REV);
	assert_ptr_equal(look(t, &k, 11, &dir), e);
	assert_int_equal(dir, FLOW_DIR_FWD);
	assert_int_equal(flow_count(t), 1);
	/* Misuse. */
	assert_int_equal(flow_set_reverse(t, e, &r, flow_hash(&r)), -EALREADY);
	r2 = rev_n(2, 40002, IPPROTO_UDP);
	struct flow_key k2 = key_n(2, IPPROTO_TCP, 0);
	f = ins(t, &k2, 10, 2);
	assert_int_equal(flow_set_reverse(t, f, &r2, flow_hash(&r2)), -EINVAL);
	r2.proto = IPPROTO_TCP;
	r2.pad = 1;
	assert_int_equal(flow_set_reverse(t, f, &r2, flow_hash(&r2)), -EINVAL);
	struct flow_entry fake;
	memset(&fake, 0, sizeof(fake));
	assert_int_equal(flow_set_reverse(t, &fake, &r, flow_hash(&r)), -EINVAL);
	assert_int_equal(flow_remove(t, &fake), -EINVAL);
	/* Conflict: another flow wants the same reply key; its own forward key too. */
	assert_int_equal(flow_set_reverse(t, f, &r, flow_hash(&r)), -EEXIST);
	assert_int_equal(flow_set_reverse(t, f, &k, flow_hash(&k)), -EEXIST);
	assert_int_equal(flow_set_reverse(t, f, &k2, flow_hash(&k2)), -EEXIST);
	flow_stats(t, &s);
	assert_int_equal(s.rev_conflict, 3);
	assert_int_equal(f->flags & FLOW_F_REV, 0);
	/* Removing e removes both keys and releases once. */
	assert_int_equal(flow_remove(t, e), 0);
	assert_int_equal(log->n[1], 1);
	assert_null(look(t, &k, 12, NULL));
	assert_null(look(t, &r, 12, NULL));
	assert_int_equal(flow_remove(t, e), -EINVAL);
	/* The key is free for f now. */
	assert_int_equal(flow_set_reverse(t, f, &r, flow_hash(&r)), 0);
	assert_ptr_equal(look(t, &r, 12, &dir), f);
	assert_int_equal(dir, FLOW_DIR_REV);
	/* Expiry (found through the reverse key) removes both keys too. */
	flow_touch(f, 12);
	assert_null(look(t, &r, 12 + small_to.tcp_syn + 1, NULL));
	assert_int_equal(log->n[2], 1);
	assert_null(look(t, &k2, 12, NULL));
	assert_int_equal(flow_count(t), 0);
	/* An expired holder of a reply key does not block a new flow. */
	struct flow_key k3 = key_n(3, IPPROTO_TCP, 0), k4 = key_n(4, IPPROTO_TCP, 0);
	g = ins(t, &k3, 100, 3);
	assert_int_equal(flow_set_reverse(t, g, &r, flow_hash(&r)), 0);
	f = ins(t, &k4, 200, 4);
	assert_int_equal(flow_set_reverse(t, f, &r, flow_hash(&r)), 0);
	assert_int_equal(log->n[3], 1);
	assert_ptr_equal(look(t, &r, 200, NULL), f);
	check_stats_invariant(t);
	flow_destroy(t);
	assert_int_equal(log->n[4], 1);
	free(log);
}

/* ---- burst lookup ----------------------------------------------------- */

/* The staged lookup (hints taken first, lookups in order) agrees with flow_lookup. */
static void test_lookup_staged(void **state)
{
	const uint32_t n = 2000;
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(n, &small_to, rel_count, log);
	uint64_t seed = 42;

	(void)state;
	for (uint32_t i = 0; i < n; i++) {
		struct flow_key k = key_n(i, IPPROTO_UDP, (int)(i % 3 == 0));
		struct flow_entry *e = ins(t, &k, 100, i);

		assert_non_null(e);
		flow_touch(e, i % 10 == 0 ? 900 : 1000); /* every 10th expires after 1200 */
		if (i % 2) {
			struct flow_key r = rev_n(i % 7, (uint16_t)(2000 + i), IPPROTO_UDP);

			assert_int_equal(flow_set_reverse(t, e, &r, flow_hash(&r)), 0);
		}
	}
	for (int round = 0; round < 200; round++) {
		struct flow_key kb[45];
		const struct flow_key *kp[45];
		uint64_t hb[45];
		struct flow_entry *out[45];
		int dirs[45];
		unsigned hits, exp_hits = 0;

		for (unsigned j = 0; j < 45; j++) {
			uint32_t i = (uint32_t)tu_below(&seed, n + n / 4); /* some misses */

			if (j > 0 && (uint32_t)tu_below(&seed, 8) == 0) {
				kb[j] = kb[j - 1]; /* the same flow twice in a burst */
			} else if (i < n && (i % 2) && (uint32_t)tu_below(&seed, 2)) {
				kb[j] = rev_n(i % 7, (uint16_t)(2000 + i), IPPROTO_UDP);
			} else {
				kb[j] = key_n(i, IPPROTO_UDP, (int)(i % 3 == 0));
			}
			kp[j] = &kb[j];
			hb[j] = flow_hash(&kb[j]);
		}
		/* Reference: what flow_lookup says, without releasing anything yet. */
		struct flow_entry *ref[45];
		int rdir[45];
		for (unsigned j = 0; j < 45; j++) {
			ref[j] = look(t, &kb[j], 1100, &rdir[j]);
			exp_hits += ref[j] != NULL;
		}
		hits = staged_lookup(t, kp, hb, 45, 1100, out, dirs);
		assert_int_equal(hits, exp_hits);
		for (unsigned j = 0; j < 45; j++) {
			assert_ptr_equal(out[j], ref[j]);
			if (out[j])
				assert_int_equal(dirs[j], rdir[j]);
		}
	}
	/* At 1250 every 10th has expired: the burst releases each exactly once. */
	uint32_t calls0 = log->calls, expect = 0;
	for (uint32_t base = 0; base < n; base += 20) {
		struct flow_key kb[40];
		const struct flow_key *kp[40];
		uint64_t hb[40];
		struct flow_entry *out[40];

		for (unsigned j = 0; j < 40; j++) {
			uint32_t i = base + j / 2; /* every flow twice, fwd or rev */

			kb[j] = (j & 1) && (i % 2) ? rev_n(i % 7, (uint16_t)(2000 + i), IPPROTO_UDP)
						   : key_n(i, IPPROTO_UDP, (int)(i % 3 == 0));
			kp[j] = &kb[j];
			hb[j] = flow_hash(&kb[j]);
		}
		staged_lookup(t, kp, hb, 40, 1250, out, NULL);
		for (unsigned j = 0; j < 40; j++) {
			uint32_t i = base + j / 2;

			if (i % 10 == 0)
				assert_null(out[j]);
			else
				assert_non_null(out[j]);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(log->n[i], i % 10 == 0 ? 1 : 0);
		expect += i % 10 == 0;
	}
	assert_int_equal(log->calls - calls0, expect);
	check_stats_invariant(t);
	flow_destroy(t);
	free(log);
}

/* ---- randomized model test ------------------------------------------ */

enum mop { OP_NONE, OP_LOOKUP, OP_INSERT, OP_SETREV, OP_REMOVE, OP_EXPIRE };

#define NREV 128

struct model {
	uint32_t nkeys;
	uint32_t cap;
	struct flow_timeouts to;
	uint64_t now;
	/* per flow id */
	uint8_t *present;
	uint64_t *last;
	uint8_t *st;
	uint32_t *pkts;
	uint8_t *was_est;
	int32_t *rev; /* rev slot or -1 */
	/* rev slot (proto class * NREV + j) -> id or -1 */
	int32_t rev_owner[3 * NREV];
	uint32_t count;
	/* the operation running, to judge releases */
	enum mop op;
	uint32_t target;
	uint64_t check_now;
	uint64_t releases;
	int evict_est;
};

static uint8_t proto_of(uint32_t id)
{
	static const uint8_t p[4] = {IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};

	return p[id % 4];
}

static unsigned pclass(uint8_t proto)
{
	return proto == IPPROTO_TCP ? 0 : proto == IPPROTO_UDP ? 1 : 2;
}

static struct flow_key model_rev_key(uint32_t slot)
{
	static const uint8_t p[3] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};

	return rev_n(slot % 5, (uint16_t)(1024 + slot % NREV), p[slot / NREV]);
}

static uint64_t model_to(const struct model *m, uint32_t id)
{
	uint8_t p = proto_of(id);

	if (p == IPPROTO_UDP)
		return m->to.udp;
	if (p != IPPROTO_TCP)
		return m->to.other;
	switch (m->st[id]) {
	case FLOW_TCP_ESTABLISHED:
		return m->to.tcp_est;
	case FLOW_TCP_FIN_WAIT:
		return m->to.tcp_fin;
	case FLOW_TCP_CLOSED:
		return m->to.tcp_closed;
	default:
		return m->to.tcp_syn;
	}
}

static int model_expired(const struct model *m, uint32_t id, uint64_t now)
{
	return now > m->last[id] && now - m->last[id] > model_to(m, id);
}

static int model_embryonic(const struct model *m, uint32_t id)
{
	return m->pkts[id] < 2 || (proto_of(id) == IPPROTO_TCP && !m->was_est[id]);
}

static void model_release(void *ctx, const struct flow_entry *e)
{
	struct model *m = ctx;
	uint32_t id = e->svc_idx;
	int ok;

	assert_true(id < m->nkeys);
	assert_true(m->present[id]);
	assert_int_equal(!!(e->flags & FLOW_F_REV), m->rev[id] >= 0);
	ok = model_expired(m, id, m->check_now) || (m->op == OP_REMOVE && id == m->target) ||
	     ((m->op == OP_INSERT || m->op == OP_SETREV) &&
	      (model_embryonic(m, id) || m->evict_est) && id != m->target);
	if (!ok)
		fail_msg("release of id %u during op %d (target %u) not allowed", id, m->op,
			 m->target);
	m->present[id] = 0;
	if (m->rev[id] >= 0)
		m->rev_owner[m->rev[id]] = -1;
	m->rev[id] = -1;
	m->count--;
	m->releases++;
}

static struct flow_entry *model_lookup(struct model *m, struct flow_table *t,
				       const struct flow_key *k, int32_t expect_id, int expect_dir)
{
	struct flow_entry *e;
	int dir = -1, live;

	m->op = OP_LOOKUP;
	m->check_now = m->now;
	live = expect_id >= 0 && m->present[expect_id] && !model_expired(m, expect_id, m->now);
	e = look(t, k, m->now, &dir);
	if (live) {
		assert_non_null(e);
		assert_int_equal(e->svc_idx, expect_id);
		assert_int_equal(dir, expect_dir);
		assert_int_equal(e->last_seen, m->last[expect_id]);
		assert_int_equal(e->tcp_state, m->st[expect_id]);
	} else {
		assert_null(e);
		if (expect_id >= 0)
			assert_false(m->present[expect_id]);
	}
	m->op = OP_NONE;
	return e;
}

static void model_packet(struct model *m, struct flow_entry *e, uint32_t id, int dir,
			 uint64_t *seed)
{
	static const uint8_t fl[] = {SYN,	SYN, ACK,	ACK,	   ACK, PSH | ACK,
				     FIN | ACK, RST, RST | ACK, SYN | ACK, 0,	SYN | FIN};
	uint8_t before = e->tcp_state;

	if (proto_of(id) == IPPROTO_TCP) {
		flow_track_tcp(e, fl[(uint32_t)tu_below(seed, sizeof(fl))], dir, m->now);
		if (e->tcp_state == FLOW_TCP_ESTABLISHED)
			m->was_est[id] = 1;
		if (e->tcp_state == FLOW_TCP_SYN_SENT && before >= FLOW_TCP_FIN_WAIT)
			m->was_est[id] = 0;
	} else {
		flow_touch(e, m->now);
	}
	m->st[id] = e->tcp_state;
	if (m->now > m->last[id])
		m->last[id] = m->now;
	m->pkts[id]++;
}

/*
 * ops random operations on nkeys flows; time jumps of up to `jump`. strict:
 * the table never runs out of room, so inserts must succeed. evict_est:
 * established flows may be evicted too. heavy: mostly packets of live flows
 * and few removes, so that the table fills with graduated flows.
 */
static void model_run(uint32_t nkeys, uint32_t cap, uint32_t ops, uint32_t jump, uint64_t seed,
		      int strict, int evict_est, int heavy)
{
	struct model *m = calloc(1, sizeof(*m));
	struct flow_table *t;
	struct flow_stats s;
	uint64_t n_ins = 0, n_fail = 0, n_rev_fail = 0;
	uint32_t max_count = 0;

	assert_non_null(m);
	m->nkeys = nkeys;
	m->cap = cap;
	m->to = (struct flow_timeouts){
	    .tcp_syn = 3000,
	    .tcp_est = 40000,
	    .tcp_fin = 8000,
	    .tcp_closed = 4000,
	    .udp = 20000,
	    .other = 10000,
	};
	m->present = calloc(nkeys, 1);
	m->last = calloc(nkeys, sizeof(uint64_t));
	m->st = calloc(nkeys, 1);
	m->pkts = calloc(nkeys, sizeof(uint32_t));
	m->was_est = calloc(nkeys, 1);
	m->rev = malloc(nkeys * sizeof(int32_t));
	assert_true(m->present && m->last && m->st && m->pkts && m->was_est && m->rev);
	for (uint32_t i = 0; i < nkeys; i++)
		m->rev[i] = -1;
	for (uint32_t i = 0; i < 3 * NREV; i++)
		m->rev_owner[i] = -1;
	m->now = 1;
	t = flow_create(cap, &m->to, model_release, m);
	assert_non_null(t);
	flow_set_evict_established(t, evict_est);
	m->evict_est = evict_est;

	for (uint32_t n = 0; n < ops; n++) {
		uint32_t r = (uint32_t)tu_below(&seed, 100);
		uint32_t id = (uint32_t)tu_below(&seed, nkeys);

		if (heavy)
			r = r < 8 ? r : r < 80 ? 8 + (r - 8) * 32 / 72 : 40 + (r - 80) * 60 / 20;
		struct flow_key k = key_n(id, proto_of(id), (int)(id % 3 == 0));
		struct flow_entry *e;

		if (r < 8) { /* time passes */
			m->now += (uint32_t)tu_below(&seed, jump);
		} else if (r < 40) { /* a packet of a flow: look up, insert if new */
			m->now += (uint32_t)tu_below(&seed, 8);
			e = model_lookup(m, t, &k, (int32_t)id, FLOW_DIR_FWD);
			if (e == NULL) {
				m->op = OP_INSERT;
				m->target = id;
				m->check_now = m->now;
				e = flow_insert(t, &k, flow_hash(&k), m->now);
				m->op = OP_NONE;
				if (e == NULL) {
					n_fail++;
					if (strict)
						fail_msg("insert failed with %u/%u live", m->count,
							 cap);
					continue;
				}
				n_ins++;
				assert_int_equal(e->flags & ~FLOW_F_QUEUED, FLOW_F_LIVE);
				e->svc_idx = id;
				m->present[id] = 1;
				m->last[id] = m->now;
				m->st[id] = FLOW_TCP_NONE;
				m->pkts[id] = 0;
				m->was_est[id] = 0;
				m->rev[id] = -1;
				m->count++;
				if (heavy) /* a quick second packet: the flow graduates at once */
					model_packet(m, e, id, FLOW_DIR_FWD, &seed);
			}
			model_packet(m, e, id, FLOW_DIR_FWD, &seed);
		} else if (r < 55) { /* a reply through a reverse key */
			uint32_t slot = (uint32_t)tu_below(&seed, 3 * NREV);
			struct flow_key rk = model_rev_key(slot);
			int32_t owner = m->rev_owner[slot];

			e = model_lookup(m, t, &rk, owner, FLOW_DIR_REV);
			if (e)
				model_packet(m, e, (uint32_t)owner, FLOW_DIR_REV, &seed);
		} else if (r < 70) { /* lookup only */
			model_lookup(m, t, &k, m->present[id] ? (int32_t)id : -1, FLOW_DIR_FWD);
		} else if (r < 82) { /* give a flow its reply key */
			e = model_lookup(m, t, &k, (int32_t)id, FLOW_DIR_FWD);
			if (e == NULL)
				continue;
			uint32_t slot =
			    pclass(proto_of(id)) * NREV + (uint32_t)tu_below(&seed, NREV);
			struct flow_key rk = model_rev_key(slot);
			int32_t owner = m->rev_owner[slot];
			int expect, rc;

			if (m->rev[id] >= 0)
				expect = -EALREADY;
			else if (owner >= 0 && (owner == (int32_t)id ||
						!model_expired(m, (uint32_t)owner, m->last[id])))
				expect = -EEXIST;
			else
				expect = 0;
			m->op = OP_SETREV;
			m->target = id;
			m->check_now = m->last[id];
			rc = flow_set_reverse(t, e, &rk, flow_hash(&rk));
			m->op = OP_NONE;
			if (rc == -ENOSPC && expect == 0 && !strict) {
				n_rev_fail++;
				continue;
			}
			assert_int_equal(rc, expect);
			if (rc == 0) {
				assert_true(m->rev_owner[slot] < 0);
				m->rev_owner[slot] = (int32_t)id;
				m->rev[id] = (int32_t)slot;
			}
		} else if (r < 88) { /* close */
			e = model_lookup(m, t, &k, (int32_t)id, FLOW_DIR_FWD);
			if (e == NULL)
				continue;
			m->op = OP_REMOVE;
			m->target = id;
			m->check_now = m->now;
			assert_int_equal(flow_remove(t, e), 0);
			m->op = OP_NONE;
			assert_false(m->present[id]);
		} else { /* idle sweep */
			uint32_t before = m->count, budget = (uint32_t)tu_below(&seed, 64), freed;

			m->op = OP_EXPIRE;
			m->check_now = m->now;
			freed = flow_expire(t, m->now, budget);
			m->op = OP_NONE;
			assert_true(freed <= budget);
			assert_int_equal(before - m->count, freed);
		}
		assert_int_equal(flow_count(t), m->count);
		assert_true(m->count <= cap);
		if (n % 1000 == 0)
			assert_int_equal(flow_check(t), 0);
		if (m->count > max_count)
			max_count = m->count;
	}
	/* Final check of every key and every reply key. */
	for (uint32_t id = 0; id < nkeys; id++) {
		struct flow_key k = key_n(id, proto_of(id), (int)(id % 3 == 0));

		model_lookup(m, t, &k, m->present[id] ? (int32_t)id : -1, FLOW_DIR_FWD);
	}
	for (uint32_t slot = 0; slot < 3 * NREV; slot++) {
		struct flow_key rk = model_rev_key(slot);

		model_lookup(m, t, &rk, m->rev_owner[slot], FLOW_DIR_REV);
	}
	flow_stats(t, &s);
	assert_int_equal(s.inserts, n_ins);
	assert_int_equal(s.insert_fail, n_fail);
	assert_int_equal(s.removes + s.expired + s.evict_expired + s.evict_embryonic +
			     s.evict_established,
			 m->releases);
	check_stats_invariant(t);
	if (heavy && !evict_est)
		assert_true(n_fail > 0); /* the table did fill with flows it may not evict */
	if (evict_est)
		assert_true(s.evict_established > 0);
	else
		assert_int_equal(s.evict_established, 0);
	if (strict)
		assert_int_equal(s.evict_embryonic, 0);
	else
		assert_true(s.evict_embryonic > 0); /* the pressure did happen */
	print_message(
	    "model %u keys cap %u: max %u live, %llu inserts, %llu failed, %llu evicted "
	    "(%llu established), %llu expired, %llu rev set, %llu rev -ENOSPC\n",
	    nkeys, cap, max_count, (unsigned long long)n_ins, (unsigned long long)n_fail,
	    (unsigned long long)(s.evict_embryonic + s.evict_expired + s.evict_established),
	    (unsigned long long)s.evict_established, (unsigned long long)s.expired,
	    (unsigned long long)s.rev_set, (unsigned long long)n_rev_fail);
	m->op = OP_REMOVE; /* destroy releases what is left; the model accepts it */
	m->target = UINT32_MAX;
	m->check_now = UINT64_MAX;
	flow_destroy(t);
	assert_int_equal(m->count, 0);
	free(m->present);
	free(m->last);
	free(m->st);
	free(m->pkts);
	free(m->was_est);
	free(m->rev);
	free(m);
}

static void test_model_roomy(void **state)
{
	(void)state;
	model_run(1024, 1024, 100000, 100, 0x5eed0001, 1, 0, 0);
}

static void test_model_pressure(void **state)
{
	(void)state;
	model_run(1024, 256, 100000, 100, 0x5eed0002, 0, 0, 0);
}

/* Few keys, long-lived flows: the table fills with established flows and inserts fail. */
static void test_model_full(void **state)
{
	(void)state;
	model_run(160, 128, 100000, 10, 0x5eed0004, 0, 0, 1);
}

/* The same, evicting established flows allowed. */
static void test_model_evict_established(void **state)
{
	(void)state;
	model_run(160, 128, 100000, 10, 0x5eed0003, 0, 1, 1);
}

/* ---- fast paths: inline TCP tracker, hash, hits write only the entry ---- */

/*
 * flow_track_tcp (inline, with its fast path) and flow_track_tcp_slow must
 * leave identical entries for every state (the 5 real ones and the 3 values
 * that never occur), every flag byte, both directions, every combination of
 * the entry flags the tracker reads or writes, and last_seen behind, equal
 * to and ahead of now.
 */
static void test_track_fast_equals_slow(void **state)
{
	static const uint8_t bits[] = {FLOW_F_REV, FLOW_F_SEEN, FLOW_F_MULTI, FLOW_F_WAS_EST,
				       FLOW_F_SYNACK};
	static const uint64_t seen[] = {50, 100, 150};
	unsigned fast = 0;

	(void)state;
	for (unsigned st = 0; st < 8; st++) {
		for (unsigned fm = 0; fm < 1u << 5; fm++) {
			uint8_t flags = FLOW_F_LIVE | FLOW_F_QUEUED;

			for (unsigned b = 0; b < 5; b++)
				flags |= fm >> b & 1 ? bits[b] : 0;
			for (unsigned tf = 0; tf < 256; tf++) {
				for (int dir = 0; dir < 2; dir++) {
					for (unsigned s = 0; s < 3; s++) {
						struct flow_entry a, b;

						memset(&a, 0, sizeof(a));
						a.key.proto = IPPROTO_TCP;
						a.tcp_state = (uint8_t)st;
						a.flags = flags;
						a.last_seen = seen[s];
						a.backend_idx = 7;
						b = a;
						flow_track_tcp(&a, (uint8_t)tf, dir, 100);
						flow_track_tcp_slow(&b, (uint8_t)tf, dir, 100);
						assert_memory_equal(&a, &b, sizeof(a));
						assert_true(a.last_seen >= 100 &&
							    a.last_seen >= seen[s]);
						if (st == FLOW_TCP_ESTABLISHED &&
						    (flags & (FLOW_F_SEEN | FLOW_F_MULTI |
							      FLOW_F_WAS_EST)) ==
							(FLOW_F_SEEN | FLOW_F_MULTI |
							 FLOW_F_WAS_EST) &&
						    (tf & 0x07) == 0)
							fast++;
					}
				}
			}
		}
	}
	/* The fast-path condition was met for 4 of 32 flag sets x 32 flag bytes x 2 x 3. */
	assert_int_equal(fast, 4 * 32 * 2 * 3);
}

/*
 * The documented machine (enum flow_tcp_state in flow.h), written out again
 * here independently of flow.c's tables: next state and entry flags.
 */
static void ref_track(uint8_t *state, uint8_t *flags, uint8_t f, int dir)
{
	int syn = f & FLOW_TCPF_SYN, ack = f & FLOW_TCPF_ACK, fin = f & FLOW_TCPF_FIN,
	    rst = f & FLOW_TCPF_RST, fwd = dir == FLOW_DIR_FWD;
	uint8_t st = *state > FLOW_TCP_CLOSED ? FLOW_TCP_CLOSED : *state, next = st;

	if (syn && (fin || rst)) {
		next = st;
	} else if (rst) {
		next = FLOW_TCP_CLOSED;
	} else if (syn && !ack && fwd) {
		if (st != FLOW_TCP_ESTABLISHED)
			next = FLOW_TCP_SYN_SENT;
	} else if (syn && ack && !fwd) {
		*flags |= FLOW_F_SYNACK;
	} else if (syn) {
		next = st;
	} else if (fin) {
		if (st <= FLOW_TCP_ESTABLISHED)
			next = FLOW_TCP_FIN_WAIT;
	} else if (ack && fwd) {
		if (st == FLOW_TCP_NONE || (st == FLOW_TCP_SYN_SENT &&
					    (!(*flags & FLOW_F_REV) || (*flags & FLOW_F_SYNACK))))
			next = FLOW_TCP_ESTABLISHED;
	}
	if (next == FLOW_TCP_SYN_SENT && st >= FLOW_TCP_FIN_WAIT)
		*flags &= (uint8_t) ~(FLOW_F_WAS_EST | FLOW_F_SYNACK);
	if (next == FLOW_TCP_ESTABLISHED)
		*flags |= FLOW_F_WAS_EST;
	*flags |= *flags & FLOW_F_SEEN ? FLOW_F_MULTI : FLOW_F_SEEN;
	*state = next;
}

/* flow_track_tcp against the reference, for every state, flag byte, direction and entry flag set.
 */
static void test_track_reference(void **state)
{
	static const uint8_t bits[] = {FLOW_F_REV, FLOW_F_SEEN, FLOW_F_MULTI, FLOW_F_WAS_EST,
				       FLOW_F_SYNACK};

	(void)state;
	for (unsigned st = 0; st < 8; st++) {
		for (unsigned fm = 0; fm < 1u << 5; fm++) {
			uint8_t flags = FLOW_F_LIVE;

			for (unsigned b = 0; b < 5; b++)
				flags |= fm >> b & 1 ? bits[b] : 0;
			for (unsigned tf = 0; tf < 256; tf++) {
				for (int dir = 0; dir < 2; dir++) {
					struct flow_entry e;
					uint8_t rs = (uint8_t)st, rf = flags;

					memset(&e, 0, sizeof(e));
					e.key.proto = IPPROTO_TCP;
					e.tcp_state = (uint8_t)st;
					e.flags = flags;
					e.last_seen = 10;
					flow_track_tcp(&e, (uint8_t)tf, dir, 20);
					ref_track(&rs, &rf, (uint8_t)tf, dir);
					assert_int_equal(e.tcp_state, rs);
					assert_int_equal(e.flags, rf);
					assert_int_equal(e.last_seen, 20);
				}
			}
		}
	}
}

/* The common case changes nothing but last_seen, and never moves it backwards. */
static void test_track_fast_only_last_seen(void **state)
{
	struct flow_table *t = flow_create(16, NULL, NULL, NULL);
	struct flow_key k = key_n(1, IPPROTO_TCP, 0);
	struct flow_entry *e, before;

	(void)state;
	assert_non_null(t);
	e = ins_est(t, &k, 1000, 1);
	flow_track_tcp(e, FLOW_TCPF_ACK, FLOW_DIR_FWD, 1000);
	before = *e;
	flow_track_tcp(e, FLOW_TCPF_ACK | FLOW_TCPF_PSH, FLOW_DIR_FWD, 2000);
	assert_int_equal(e->last_seen, 2000);
	before.last_seen = 2000;
	assert_memory_equal(e, &before, sizeof(before));
	flow_track_tcp(e, FLOW_TCPF_ACK, FLOW_DIR_REV, 1500); /* older timestamp */
	assert_int_equal(e->last_seen, 2000);
	assert_memory_equal(e, &before, sizeof(before));
	/* A FIN still goes through the full machine. */
	flow_track_tcp(e, FLOW_TCPF_ACK | FLOW_TCPF_FIN, FLOW_DIR_FWD, 2500);
	assert_int_equal(e->tcp_state, FLOW_TCP_FIN_WAIT);
	assert_int_equal(e->last_seen, 2500);
	assert_int_equal(flow_check(t), 0);
	flow_destroy(t);
}

/* Buckets 0..255 from 8 hash bits: max/mean over n keys. */
static double spread(const uint64_t *h, size_t n, unsigned shift)
{
	uint32_t cnt[256] = {0}, max = 0;

	for (size_t i = 0; i < n; i++)
		cnt[(h[i] >> shift) & 255]++;
	for (unsigned i = 0; i < 256; i++)
		max = cnt[i] > max ? cnt[i] : max;
	return (double)max / ((double)n / 256);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return (a > b) - (a < b);
}

/*
 * flow_hash reads only the meaningful fields; every one of them must still
 * matter, and structured keys (one client address, sequential ports; one
 * port, sequential addresses) must spread over the bits the table uses:
 * the low word (first bucket), the top 16 bits (signature) and the top byte
 * (fwd's burst filter).
 */
static void test_hash_fields_and_spread(void **state)
{
	const size_t n = 1u << 17;
	uint64_t *h = malloc(n * sizeof(*h));
	uint64_t seed = 7;

	(void)state;
	assert_non_null(h);
	for (int v6 = 0; v6 < 2; v6++) {
		for (int shape = 0; shape < 2; shape++) {
			for (size_t i = 0; i < n; i++) {
				struct flow_key k = key_n(0, IPPROTO_TCP, v6);

				if (shape == 0)
					k.sport = (uint16_t)i, k.dport = (uint16_t)(80 + (i >> 16));
				else
					k.src.b[v6 ? 15 : 3] = (uint8_t)i,
							  k.src.b[v6 ? 14 : 2] = (uint8_t)(i >> 8),
							  k.src.b[v6 ? 13 : 1] = (uint8_t)(i >> 16);
				h[i] = flow_hash(&k);
			}
			/* 512 keys per bin: max/mean 1.25 is > 5 standard deviations. */
			assert_true(spread(h, n, 0) < 1.25);
			assert_true(spread(h, n, 24) < 1.25);
			assert_true(spread(h, n, 48) < 1.25);
			assert_true(spread(h, n, 56) < 1.25);
			qsort(h, n, sizeof(*h), cmp_u64);
			for (size_t i = 1; i < n; i++)
				assert_true(h[i] != h[i - 1]);
		}
	}
	/* Each field on its own changes the value (random keys, one field flipped). */
	for (int i = 0; i < 2000; i++) {
		int v6 = i & 1;
		struct flow_key k = key_n((uint32_t)tu_below(&seed, 1u << 20), IPPROTO_UDP, v6), m;
		uint64_t r = tu_rand(&seed);
		unsigned len = v6 ? 16 : 4;

		k.src.b[r % len] ^= (uint8_t)(1 + (r >> 8) % 255);
		k.dst.b[(r >> 16) % len] ^= (uint8_t)(1 + (r >> 24) % 255);
		for (unsigned f = 0; f < 5; f++) {
			m = k;
			switch (f) {
			case 0:
				m.src.b[(r >> 32) % len] ^= 0x10;
				break;
			case 1:
				m.dst.b[(r >> 40) % len] ^= 0x01;
				break;
			case 2:
				m.sport ^= 1;
				break;
			case 3:
				m.dport ^= 0x8000;
				break;
			case 4:
				m.proto = IPPROTO_TCP;
				break;
			}
			assert_true(flow_hash(&m) != flow_hash(&k));
		}
		assert_true(flow_hash(&k) == flow_hash(&(struct flow_key){
						 k.src, k.dst, k.sport, k.dport, k.proto, 0}));
	}
	free(h);
}

/* Keys with mixed or unset families take the generic hash; they still work as keys. */
static void test_hash_odd_families(void **state)
{
	struct flow_table *t = flow_create(64, NULL, NULL, NULL);
	struct flow_key k[3];

	(void)state;
	assert_non_null(t);
	k[0] = key_n(1, IPPROTO_UDP, 0);
	set_v6(&k[0].dst, 5);
	k[1] = key_n(2, IPPROTO_UDP, 1);
	set_v4(&k[1].dst, 5);
	k[2] = key_n(3, IPPROTO_UDP, 0);
	memset(&k[2].src, 0, sizeof(k[2].src));
	memset(&k[2].dst, 0, sizeof(k[2].dst));
	for (int i = 0; i < 3; i++)
		assert_non_null(ins(t, &k[i], 10, (uint32_t)i));
	for (int i = 0; i < 3; i++) {
		struct flow_entry *e = look(t, &k[i], 10, NULL);

		assert_non_null(e);
		assert_int_equal(e->svc_idx, i);
	}
	assert_int_equal(flow_check(t), 0);
	flow_destroy(t);
}

/*
 * A hit, single or in a burst, leaves the entry and the counters exactly as
 * they were (the caller's flow_track_tcp/flow_touch is the only write), over
 * a table full enough that keys sit in second buckets and share signatures.
 * flow_check also compares the vector and scalar signature matches on every
 * bucket.
 */
static void test_hit_writes_nothing(void **state)
{
	const uint32_t n = 20000;
	struct flow_table *t = flow_create(n, NULL, NULL, NULL);
	struct flow_entry **e = malloc(n * sizeof(*e)), *snap = malloc(n * sizeof(*snap));
	struct flow_stats s0, s1;
	uint64_t seed = 99;

	(void)state;
	assert_non_null(t);
	assert_non_null(e);
	assert_non_null(snap);
	for (uint32_t i = 0; i < n; i++) {
		struct flow_key k = key_n(i, IPPROTO_TCP, (int)(i % 5 == 0));

		e[i] = ins_est(t, &k, 1000, i);
		if (i % 3 == 0) {
			struct flow_key r = rev_n(i % 11, (uint16_t)i, IPPROTO_TCP);

			assert_int_equal(flow_set_reverse(t, e[i], &r, flow_hash(&r)), 0);
		}
	}
	for (uint32_t i = 0; i < n; i++)
		snap[i] = *e[i];
	assert_int_equal(flow_check(t), 0);
	flow_stats(t, &s0);
	for (int round = 0; round < 400; round++) {
		struct flow_key kb[32];
		const struct flow_key *kp[32];
		uint64_t hb[32];
		struct flow_entry *out[32];
		int dirs[32];
		uint32_t id[32];

		for (unsigned j = 0; j < 32; j++) {
			id[j] = (uint32_t)tu_below(&seed, n);
			if (id[j] % 3 == 0 && (j & 1))
				kb[j] = rev_n(id[j] % 11, (uint16_t)id[j], IPPROTO_TCP);
			else
				kb[j] = key_n(id[j], IPPROTO_TCP, (int)(id[j] % 5 == 0));
			kp[j] = &kb[j];
			hb[j] = flow_hash(&kb[j]);
		}
		assert_int_equal(staged_lookup(t, kp, hb, 32, 2000, out, dirs), 32);
		for (unsigned j = 0; j < 32; j++) {
			int d = -1;

			assert_ptr_equal(out[j], e[id[j]]);
			assert_int_equal(dirs[j],
					 id[j] % 3 == 0 && (j & 1) ? FLOW_DIR_REV : FLOW_DIR_FWD);
			assert_ptr_equal(look(t, &kb[j], 2000, &d), e[id[j]]);
			assert_int_equal(d, dirs[j]);
		}
	}
	for (uint32_t i = 0; i < n; i++)
		assert_memory_equal(e[i], &snap[i], sizeof(snap[i]));
	flow_stats(t, &s1);
	assert_memory_equal(&s0, &s1, sizeof(s0));
	assert_int_equal(flow_check(t), 0);
	flow_destroy(t);
	free(e);
	free(snap);
}

/*
 * flow_lookup_hint: a hint taken before the table changed (its entry removed,
 * then reused by another flow; a reverse key; an expired entry; garbage-free
 * "none") never changes the answer: always what flow_lookup says.
 */
static void test_lookup_hint_stale(void **state)
{
	(void)state;
	struct rel_log *log = rel_new();
	struct flow_table *t = flow_create(64, NULL, rel_count, log);
	struct flow_key a = key_n(1, IPPROTO_TCP, 0), b = key_n(2, IPPROTO_TCP, 0);
	struct flow_key r = rev_n(3, 40000, IPPROTO_TCP);
	uint64_t ha = flow_hash(&a), hb = flow_hash(&b), hr = flow_hash(&r);
	int dir = -1;

	assert_non_null(t);
	struct flow_index ix;
	flow_index_of(t, &ix);
	struct flow_entry *ea = ins(t, &a, 1000, 1);
	assert_non_null(ea);
	uint32_t hint_a = flow_prefetch_entry(&ix, ha, 0);
	assert_int_not_equal(hint_a, FLOW_HINT_NONE);
	assert_int_equal(flow_prefetch_entry(&ix, hb, 0), FLOW_HINT_NONE); /* b not in */
	assert_ptr_equal(flow_lookup_hint(t, &a, ha, hint_a, 1001, &dir), ea);
	assert_int_equal(dir, FLOW_DIR_FWD);
	assert_ptr_equal(flow_lookup_hint(t, &a, ha, FLOW_HINT_NONE, 1001, &dir), ea);

	/* a leaves; b takes the same entry (LIFO free list): a's hint now points at b */
	flow_remove(t, ea);
	struct flow_entry *eb = ins(t, &b, 1002, 2);
	assert_ptr_equal(eb, ea);
	assert_null(flow_lookup_hint(t, &a, ha, hint_a, 1003, NULL));
	assert_ptr_equal(flow_lookup_hint(t, &b, hb, hint_a, 1003, &dir), eb);

	/* b's entry with a reverse key: a forward-role hint for r does not match, the bucket does */
	assert_int_equal(flow_set_reverse(t, eb, &r, hr), 0);
	uint32_t hint_r = flow_prefetch_entry(&ix, hr, 1);
	assert_int_not_equal(hint_r, FLOW_HINT_NONE);
	dir = -1;
	assert_ptr_equal(flow_lookup_hint(t, &r, hr, hint_r, 1004, &dir), eb);
	assert_int_equal(dir, FLOW_DIR_REV);
	dir = -1;
	assert_ptr_equal(flow_lookup_hint(t, &r, hr, hint_a, 1004, &dir), eb);
	assert_int_equal(dir, FLOW_DIR_REV);
	/* and b's own forward hint still finds b going forward */
	assert_ptr_equal(flow_lookup_hint(t, &b, hb, flow_prefetch_entry(&ix, hb, 0), 1004, &dir), eb);
	assert_int_equal(dir, FLOW_DIR_FWD);

	/*
	 * The inline reply hit (flow_hit_rev_fast): r through its own hint; not
	 * through a forward-role hint, no hint, or for a key the entry does not
	 * hold as reverse key (b itself, r with another port); the forward
	 * inline hit never takes a reverse hint.
	 */
	assert_ptr_equal(flow_hit_rev_fast(&ix, &r, hint_r, 1004), eb);
	assert_null(flow_hit_rev_fast(&ix, &r, hint_a, 1004));
	assert_null(flow_hit_rev_fast(&ix, &r, FLOW_HINT_NONE, 1004));
	assert_null(flow_hit_rev_fast(&ix, &b, hint_r, 1004));
	struct flow_key r2 = r;
	r2.dport++;
	assert_null(flow_hit_rev_fast(&ix, &r2, hint_r, 1004));
	r2 = r;
	r2.src.b[3] ^= 1;
	assert_null(flow_hit_rev_fast(&ix, &r2, hint_r, 1004));
	r2 = r;
	r2.dst.b[0] ^= 1;
	assert_null(flow_hit_rev_fast(&ix, &r2, hint_r, 1004));
	assert_null(flow_hit_fast(&ix, &r, hint_r, 1004));
	/* expired: no inline hit (flow_lookup_hint then releases it, below) */
	assert_null(flow_hit_rev_fast(&ix, &r, hint_r, 1004 + 3600 * 1000000000ull));

	/* expired through the hint: a miss, released once, as flow_lookup does */
	uint32_t calls = log->calls;
	assert_null(flow_lookup_hint(t, &b, hb, flow_prefetch_entry(&ix, hb, 0), 1004 + 3600 * 1000000000ull,
				     NULL));
	assert_int_equal(log->calls, calls + 1);
	assert_int_equal(flow_count(t), 0);
	assert_null(flow_lookup_hint(t, &r, hr, hint_r, 1005 + 3600 * 1000000000ull, NULL));
	assert_int_equal(flow_check(t), 0);
	flow_destroy(t);
	free(log);
}

/* flow_hash_v4 from values equals flow_hash of the key in memory. */
static void test_hash_v4_from_values(void **state)
{
	uint64_t seed = 77;

	(void)state;
	for (int n = 0; n < 20000; n++) {
		struct flow_key k;
		uint8_t s4[4], d4[4];
		uint64_t r = tu_rand(&seed);

		memcpy(s4, &r, 4);
		memcpy(d4, (uint8_t *)&r + 4, 4);
		memset(&k, 0, sizeof(k));
		addr_set_v4(&k.src, s4);
		addr_set_v4(&k.dst, d4);
		k.sport = (uint16_t)tu_rand(&seed);
		k.dport = (uint16_t)tu_rand(&seed);
		k.proto = n % 2 ? 6 : 17;
		assert_true(flow_hash_v4(s4, d4, k.sport, k.dport, k.proto) == flow_hash(&k));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_v4_from_values),
		cmocka_unit_test(test_create_args),
	    cmocka_unit_test(test_insert_lookup_v4),
	    cmocka_unit_test(test_insert_lookup_v6),
	    cmocka_unit_test(test_many_mixed),
	    cmocka_unit_test(test_update_fields),
	    cmocka_unit_test(test_tcp_states),
	    cmocka_unit_test(test_expiry_per_state),
	    cmocka_unit_test(test_expire_sweep),
	    cmocka_unit_test(test_eviction_order),
	    cmocka_unit_test(test_syn_flood_half_full),
	    cmocka_unit_test(test_syn_flood_full),
	    cmocka_unit_test(test_single_packet_flows_evictable),
	    cmocka_unit_test(test_bucket_full),
	    cmocka_unit_test(test_bucket_displacement),
	    cmocka_unit_test(test_bucket_move_back),
	    cmocka_unit_test(test_full_nat_load),
	    cmocka_unit_test(test_reverse),
	    cmocka_unit_test(test_lookup_staged),
	    cmocka_unit_test(test_model_roomy),
	    cmocka_unit_test(test_model_pressure),
	    cmocka_unit_test(test_model_full),
	    cmocka_unit_test(test_model_evict_established),
	    cmocka_unit_test(test_track_fast_equals_slow),
	    cmocka_unit_test(test_track_fast_only_last_seen),
	    cmocka_unit_test(test_track_reference),
	    cmocka_unit_test(test_hash_fields_and_spread),
	    cmocka_unit_test(test_hash_odd_families),
	    cmocka_unit_test(test_hit_writes_nothing),
	    cmocka_unit_test(test_lookup_hint_stale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
