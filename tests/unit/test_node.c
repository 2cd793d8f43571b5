/* Unit tests for controlplane/node: real storage in /tmp, real loopback TCP, one event_base
 * driving every node, a toy state machine (running hash of the applied commands). */
#include "controlplane/node.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "tests/unit/testutil.h"

#define CLUSTER	   0xF17C4ULL
#define TIMEOUT_MS 20000 /* generous: only a hang ever reaches it; nothing asserts on time */
#define MAXN	   5

/* ---------------------------------------------------------------- toy state machine */

struct toy {
	uint64_t applied; /* last index seen by apply (or restored) */
	uint64_t hash;	  /* FNV-1a style over (index, command) of every NORMAL entry */
	uint64_t count;	  /* NORMAL entries applied */
	uint64_t restores;
	uint64_t restore_index;
	int stopped;
	enum node_stop_reason why;
	int order_ok; /* apply saw strictly increasing, gap-free indexes */
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int toy_apply(void *ctx, uint64_t index, uint8_t type, const void *data, uint32_t len)
{
	struct toy *t = ctx;
	uint64_t v = 0;

	if (index != t->applied + 1)
		t->order_ok = 0;
	t->applied = index;
	if (type != RAFT_ENTRY_NORMAL)
		return 0;
	memcpy(&v, data, len < 8 ? len : 8);
	t->hash = mix(mix(t->hash, index), v);
	t->count++;
	return (int)(v & 0x7fff); /* the "result" handed back to the proposer */
}

static int toy_snapshot(void *ctx, uint8_t **data, size_t *len)
{
	struct toy *t = ctx;
	uint64_t *b = malloc(3 * sizeof(uint64_t));

	if (!b)
		return -ENOMEM;
	b[0] = t->applied;
	b[1] = t->hash;
	b[2] = t->count;
	*data = (uint8_t *)b;
	*len = 3 * sizeof(uint64_t);
	return 0;
}

static int toy_restore(void *ctx, uint64_t index, const void *data, size_t len)
{
	struct toy *t = ctx;
	uint64_t b[3];

	if (len != sizeof(b))
		return -EINVAL;
	memcpy(b, data, sizeof(b));
	if (b[0] != index)
		return -EINVAL;
	t->applied = b[0];
	t->hash = b[1];
	t->count = b[2];
	t->restores++;
	t->restore_index = index;
	return 0;
}

static void toy_stopped(void *ctx, enum node_stop_reason why, const char *msg)
{
	struct toy *t = ctx;

	(void)msg;
	t->stopped = 1;
	t->why = why;
}

/* ---------------------------------------------------------------- cluster fixture */

struct tnode {
	raft_id id;
	char dir[128];
	char addr[64]; /* bound address once started */
	struct node *n;
	struct toy app;
};

struct cluster {
	struct event_base *base;
	char root[64];
	struct tnode nodes[MAXN];
	int size; /* initial voters: ids 1..size */
	uint64_t snapshot_every;
	uint32_t trailing;
};

static struct cluster *g_cl; /* for the resolver */

static int resolve(void *ctx, raft_id id, char *buf, size_t len)
{
	(void)ctx;
	if (id < 1 || id > MAXN || !g_cl->nodes[id - 1].addr[0])
		return -ENOENT;
	snprintf(buf, len, "%s", g_cl->nodes[id - 1].addr);
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define PUMP_UNTIL(cl, cond)                                                                       \
	do {                                                                                       \
		uint64_t dl_ = mono_ms() + TIMEOUT_MS;                                             \
		while (!(cond)) {                                                                  \
			if (mono_ms() > dl_)                                                       \
				fail_msg("timed out waiting for: %s", #cond);                      \
			event_base_loop((cl)->base, EVLOOP_ONCE);                                  \
		}                                                                                  \
	} while (0)

static void start_node(struct cluster *cl, int i, int bootstrap)
{
	struct tnode *t = &cl->nodes[i];
	struct node_peer peers[MAXN];
	size_t np = 0;
	struct raft_transport_opts to;
	struct node_config cfg;
	struct node_app app = {.ctx = &t->app,
			       .apply = toy_apply,
			       .snapshot = toy_snapshot,
			       .restore = toy_restore,
			       .resolve = resolve,
			       .stopped = toy_stopped};
	char err[256] = "";
	int rc;

	memset(&t->app, 0, sizeof(t->app));
	t->app.order_ok = 1;
	for (int j = 0; j < cl->size; j++)
		if (j != i)
			peers[np++] = (struct node_peer){.id = (raft_id)(j + 1), .addr = NULL};
	raft_transport_opts_default(&to, 100 + (uint64_t)i);
	to.backoff_min_ms = 10;
	to.backoff_max_ms = 200;
	memset(&cfg, 0, sizeof(cfg));
	cfg.id = t->id;
	cfg.cluster_id = CLUSTER;
	cfg.data_dir = t->dir;
	cfg.raft_listen = t->addr[0] ? t->addr : "127.0.0.1:0";
	cfg.peers = peers;
	cfg.n_peers = np;
	cfg.bootstrap = bootstrap;
	cfg.snapshot_every = cl->snapshot_every;
	cfg.snapshot_trailing = cl->trailing;
	cfg.seed = 7 + (uint64_t)i;
	cfg.transport = &to;
	rc = node_start(cl->base, &cfg, &app, &t->n, err, sizeof(err));
	if (rc)
		fail_msg("node_start %d: %d %s", i + 1, rc, err);
	if (!t->addr[0]) {
		struct node_info info;

		node_get_info(t->n, &info);
		snprintf(t->addr, sizeof(t->addr), "%s", info.listen);
	}
}

static struct cluster *cluster_new(int size, uint64_t snapshot_every, uint32_t trailing)
{
	struct cluster *cl = calloc(1, sizeof(*cl));

	assert_non_null(cl);
	cl->base = event_base_new();
	assert_non_null(cl->base);
	snprintf(cl->root, sizeof(cl->root), "/tmp/test_node.XXXXXX");
	assert_non_null(mkdtemp(cl->root));
	cl->size = size;
	cl->snapshot_every = snapshot_every;
	cl->trailing = trailing;
	g_cl = cl;
	for (int i = 0; i < MAXN; i++) {
		cl->nodes[i].id = (raft_id)(i + 1);
		snprintf(cl->nodes[i].dir, sizeof(cl->nodes[i].dir), "%s/n%d", cl->root, i + 1);
	}
	for (int i = 0; i < size; i++)
		start_node(cl, i, 1);
	return cl;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cluster_free(struct cluster *cl)
{
	for (int i = 0; i < MAXN; i++)
		node_free(cl->nodes[i].n);
	event_base_free(cl->base);
	nftw(cl->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(cl);
	g_cl = NULL;
}

/* The one leader that every running voter agrees on, or 0. */
static raft_id agreed_leader(struct cluster *cl)
{
	raft_id l = RAFT_ID_NONE;

	for (int i = 0; i < MAXN; i++) {
		struct node_info info;

		if (!cl->nodes[i].n)
			continue;
		node_get_info(cl->nodes[i].n, &info);
		if (info.stopped || i >= cl->size)
			continue;
		if (info.leader == RAFT_ID_NONE || (l && info.leader != l))
			return RAFT_ID_NONE;
		l = info.leader;
	}
	if (l && (!cl->nodes[l - 1].n || node_leader(cl->nodes[l - 1].n) != l))
		return RAFT_ID_NONE;
	return l;
}

struct done {
	int called;
	struct node_result res;
	struct toy *app;      /* when set: record the app's applied index at callback time */
	uint64_t app_applied;
};

static void on_done(void *ctx, const struct node_result *res)
{
	struct done *d = ctx;

	d->called++;
	d->res = *res;
	if (d->app)
		d->app_applied = d->app->applied;
}

/* Proposes cmd on the leader until accepted (a fresh leader may briefly refuse). */
static void propose_ok(struct cluster *cl, uint64_t cmd, struct done *d)
{
	int rc;

	memset(d, 0, sizeof(*d));
	for (;;) {
		raft_id l;

		PUMP_UNTIL(cl, (l = agreed_leader(cl)) != RAFT_ID_NONE);
		rc = node_propose(cl->nodes[l - 1].n, &cmd, sizeof(cmd), on_done, d);
		if (rc == 0)
			return;
		assert_true(rc == -EPERM || rc == -EBUSY);
		event_base_loop(cl->base, EVLOOP_ONCE);
	}
}

/* Proposes count commands, waiting for each; retries a proposal whose outcome is unknown. */
static void propose_many(struct cluster *cl, uint64_t *seed, int count)
{
	for (int k = 0; k < count; k++) {
		struct done d;
		uint64_t cmd = tu_rand(seed);

		propose_ok(cl, cmd, &d);
		PUMP_UNTIL(cl, d.called);
		assert_int_equal(d.called, 1);
		if (d.res.rc != NODE_OK) {
			assert_true(d.res.rc == NODE_UNKNOWN_OUTCOME || d.res.rc == NODE_DROPPED);
			k--;
			continue;
		}
		assert_int_equal(d.res.app_result, (int)(cmd & 0x7fff));
		assert_true(d.res.index > 0);
	}
}

static uint64_t max_applied(struct cluster *cl)
{
	uint64_t m = 0;

	for (int i = 0; i < MAXN; i++)
		if (cl->nodes[i].n && cl->nodes[i].app.applied > m)
			m = cl->nodes[i].app.applied;
	return m;
}

/* Every running node of ids 1..upto has applied the same prefix and computed the same state. */
static int converged(struct cluster *cl, int upto)
{
	uint64_t a = max_applied(cl);

	for (int i = 0; i < upto; i++) {
		struct tnode *t = &cl->nodes[i];

		if (t->n && !t->app.stopped && t->app.applied != a)
			return 0;
	}
	return 1;
}

static void assert_same_state(struct cluster *cl, int upto)
{
	struct tnode *ref = NULL;

	for (int i = 0; i < upto; i++) {
		struct tnode *t = &cl->nodes[i];

		if (!t->n || t->app.stopped)
			continue;
		assert_true(t->app.order_ok);
		if (!ref) {
			ref = t;
			continue;
		}
		assert_int_equal(t->app.applied, ref->app.applied);
		assert_int_equal(t->app.count, ref->app.count);
		assert_true(t->app.hash == ref->app.hash);
	}
}

/* ---------------------------------------------------------------- tests */

static void test_elect_replicate_read(void **state)
{
	struct cluster *cl = cluster_new(3, 0, 0);
	uint64_t seed = 1;
	raft_id l, f;
	struct done d;
	struct node_info info;
	uint64_t cmd = 42;

	(void)state;
	PUMP_UNTIL(cl, agreed_leader(cl) != RAFT_ID_NONE);
	propose_many(cl, &seed, 40);
	PUMP_UNTIL(cl, converged(cl, 3));
	assert_same_state(cl, 3);
	assert_int_equal(cl->nodes[0].app.count, 40);

	/* A follower does not forward: it refuses and names the leader. */
	l = agreed_leader(cl);
	f = l == 1 ? 2 : 1;
	assert_int_equal(node_propose(cl->nodes[f - 1].n, &cmd, sizeof(cmd), on_done, &d), -EPERM);
	assert_int_equal(node_leader(cl->nodes[f - 1].n), l);
	assert_int_equal(node_read_index(cl->nodes[f - 1].n, on_done, &d), -EPERM);

	/* ReadIndex: answered only once the leader's state machine reached the read index. */
	memset(&d, 0, sizeof(d));
	d.app = &cl->nodes[l - 1].app;
	assert_int_equal(node_read_index(cl->nodes[l - 1].n, on_done, &d), 0);
	assert_int_equal(d.called, 0); /* never from inside the call */
	PUMP_UNTIL(cl, d.called);
	assert_int_equal(d.res.rc, NODE_OK);
	assert_true(d.res.index >= 41); /* bootstrap conf + no-op + 40 commands, at least */
	assert_true(d.app_applied >= d.res.index);

	/* Group commit: a burst proposed within one loop turn is persisted by one batch, so the
	 * leader syncs far fewer times than it has entries. */
	{
		enum { BURST = 200 };
		struct done *ds = calloc(BURST, sizeof(*ds));
		struct node_info before, after;
		int all;

		assert_non_null(ds);
		node_get_info(cl->nodes[l - 1].n, &before);
		for (int k = 0; k < BURST; k++) {
			uint64_t c = tu_rand(&seed);

			assert_int_equal(node_propose(cl->nodes[l - 1].n, &c, sizeof(c), on_done, &ds[k]), 0);
		}
		PUMP_UNTIL(cl, ({
				   all = 1;
				   for (int k = 0; k < BURST; k++)
					   all &= ds[k].called;
				   all;
			   }));
		for (int k = 0; k < BURST; k++) {
			assert_int_equal(ds[k].called, 1);
			assert_int_equal(ds[k].res.rc, NODE_OK);
			if (k)
				assert_int_equal(ds[k].res.index, ds[k - 1].res.index + 1);
		}
		node_get_info(cl->nodes[l - 1].n, &after);
		print_message("burst of %d proposals: %llu leader syncs, %llu ready batches\n", BURST,
			      (unsigned long long)(after.syncs - before.syncs),
			      (unsigned long long)(after.ready_batches - before.ready_batches));
		assert_true(after.syncs - before.syncs < BURST / 4);
		free(ds);
		PUMP_UNTIL(cl, converged(cl, 3));
		assert_same_state(cl, 3);
	}

	/* Status: three voters, all connected from the leader's view. */
	node_get_info(cl->nodes[l - 1].n, &info);
	assert_int_equal(info.role, RAFT_LEADER);
	assert_int_equal(info.n_members, 3);
	for (uint32_t i = 0; i < info.n_members; i++) {
		assert_true(info.members[i].voter);
		assert_true(info.members[i].connected);
		assert_true(info.members[i].last_contact_ms >= 0);
	}
	/* Group commit: fewer fsyncs than batches would be without coalescing is not asserted
	 * (timing-dependent); every batch synced at most once. */
	assert_true(info.syncs <= info.ready_batches);
	cluster_free(cl);
}

static void test_crash_leader_restart(void **state)
{
	struct cluster *cl = cluster_new(3, 0, 0);
	uint64_t seed = 2;
	raft_id old, nl;

	(void)state;
	propose_many(cl, &seed, 20);
	old = agreed_leader(cl);
	assert_true(old != RAFT_ID_NONE);
	/* Crash: node_free without node_stop. */
	node_free(cl->nodes[old - 1].n);
	cl->nodes[old - 1].n = NULL;
	PUMP_UNTIL(cl, (nl = agreed_leader(cl)) != RAFT_ID_NONE);
	assert_true(nl != old);
	propose_many(cl, &seed, 20);

	/* Restart from the data dir (same address): it catches up from the log. */
	start_node(cl, (int)old - 1, 1);
	PUMP_UNTIL(cl, converged(cl, 3));
	propose_many(cl, &seed, 5);
	PUMP_UNTIL(cl, converged(cl, 3));
	assert_same_state(cl, 3);
	assert_int_equal(cl->nodes[old - 1].app.count, 45);
	assert_int_equal(cl->nodes[old - 1].app.restores, 0);

	/* A clean stop and restart of everybody keeps the state. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(node_stop(cl->nodes[i].n), 0);
		node_free(cl->nodes[i].n);
		cl->nodes[i].n = NULL;
	}
	for (int i = 0; i < 3; i++)
		start_node(cl, i, 1); /* bootstrap is ignored: the storage is not empty */
	PUMP_UNTIL(cl, agreed_leader(cl) != RAFT_ID_NONE);
	propose_many(cl, &seed, 1);
	PUMP_UNTIL(cl, converged(cl, 3));
	assert_same_state(cl, 3);
	assert_int_equal(cl->nodes[0].app.count, 46);
	cluster_free(cl);
}

/*
 * A closed loop of 16 proposals in flight on the leader, each answer
 * proposing the next: proposals and acknowledgements keep arriving while a
 * batch is being synced by the sync thread, and must land in later batches
 * in order. Then a crash of the leader in the middle of such a stream
 * (node_free, possibly with a sync in flight): everything it acknowledged
 * survives on the others.
 */
struct pipe {
	struct cluster *cl;
	struct node *n;
	int issued, answered, ok, total;
	uint64_t last_index, seed;
	int order_ok, stopped;
};

static void pipe_done(void *ctx, const struct node_result *res);

static void pipe_issue(struct pipe *p)
{
	uint64_t c = tu_rand(&p->seed);

	if (p->stopped || p->issued >= p->total)
		return;
	if (node_propose(p->n, &c, sizeof(c), pipe_done, p) == 0)
		p->issued++;
}

static void pipe_done(void *ctx, const struct node_result *res)
{
	struct pipe *p = ctx;

	p->answered++;
	if (res->rc == NODE_OK) {
		p->ok++;
		if (res->index <= p->last_index)
			p->order_ok = 0;
		p->last_index = res->index;
	}
	if (res->rc != NODE_STOPPED)
		pipe_issue(p); /* from the callback, while the next batch may be syncing */
}

static void test_pipelined_proposals(void **state)
{
	struct cluster *cl = cluster_new(3, 0, 0);
	struct pipe p = {.cl = cl, .total = 400, .seed = 7, .order_ok = 1};
	raft_id l, nl;
	uint64_t count_before;
	int ok_at_crash;

	(void)state;
	PUMP_UNTIL(cl, (l = agreed_leader(cl)) != RAFT_ID_NONE);
	propose_many(cl, &p.seed, 1); /* the leader has committed in its term */
	l = agreed_leader(cl);
	p.n = cl->nodes[l - 1].n;
	for (int k = 0; k < 16; k++)
		pipe_issue(&p);
	PUMP_UNTIL(cl, p.answered == p.issued && p.issued == p.total);
	assert_int_equal(p.ok, p.total);
	assert_true(p.order_ok);
	PUMP_UNTIL(cl, converged(cl, 3));
	assert_same_state(cl, 3);
	count_before = cl->nodes[l - 1].app.count;
	assert_int_equal(count_before, 1 + 400);

	/* The same stream again, and a crash of the leader in the middle of it. */
	p.total += 400;
	for (int k = 0; k < 16; k++)
		pipe_issue(&p);
	PUMP_UNTIL(cl, p.ok >= 400 + 100);
	ok_at_crash = p.ok;
	p.stopped = 1;
	node_free(cl->nodes[l - 1].n);
	cl->nodes[l - 1].n = NULL;
	PUMP_UNTIL(cl, (nl = agreed_leader(cl)) != RAFT_ID_NONE);
	assert_true(nl != l);
	propose_many(cl, &p.seed, 1); /* commits whatever the new leader holds */
	PUMP_UNTIL(cl, converged(cl, 3));
	assert_same_state(cl, 3);
	/* Every write acknowledged before the crash is in the survivors' state. */
	assert_true(cl->nodes[nl - 1].app.count >= 1 + (uint64_t)ok_at_crash + 1);
	cluster_free(cl);
}

static void test_snapshot_catchup(void **state)
{
	struct cluster *cl = cluster_new(3, 8, 2);
	uint64_t seed = 3;
	raft_id l, victim;
	struct node_info info;

	(void)state;
	propose_many(cl, &seed, 10);
	PUMP_UNTIL(cl, converged(cl, 3));
	l = agreed_leader(cl);
	victim = l == 3 ? 2 : 3;
	node_free(cl->nodes[victim - 1].n); /* crash a follower */
	cl->nodes[victim - 1].n = NULL;
	propose_many(cl, &seed, 50); /* far beyond snapshot + trailing entries */
	node_get_info(cl->nodes[l - 1].n, &info);
	assert_true(info.snapshots_taken >= 5);
	assert_true(info.snap_index > 20);

	start_node(cl, (int)victim - 1, 1);
	/* At start it restored its own snapshot (if it had taken one) and replayed the rest. */
	PUMP_UNTIL(cl, converged(cl, 3));
	assert_same_state(cl, 3);
	node_get_info(cl->nodes[victim - 1].n, &info);
	assert_true(info.snapshots_installed >= 1); /* InstallSnapshot from the leader */
	assert_true(cl->nodes[victim - 1].app.restores >= 1);
	assert_true(cl->nodes[victim - 1].app.restore_index > 20);
	assert_int_equal(cl->nodes[victim - 1].app.count, 60);

	/* Restart it again: now it restores from its own stored snapshot. */
	assert_int_equal(node_stop(cl->nodes[victim - 1].n), 0);
	node_free(cl->nodes[victim - 1].n);
	cl->nodes[victim - 1].n = NULL;
	start_node(cl, (int)victim - 1, 1);
	assert_int_equal(cl->nodes[victim - 1].app.restores, 1); /* restored in node_start */
	propose_many(cl, &seed, 3);
	PUMP_UNTIL(cl, converged(cl, 3));
	assert_same_state(cl, 3);
	assert_int_equal(cl->nodes[victim - 1].app.count, 63);
	cluster_free(cl);
}

static void test_membership(void **state)
{
	struct cluster *cl = cluster_new(3, 0, 0);
	uint64_t seed = 4;
	struct done d;
	struct node_info info;
	raft_id l;
	int rc;

	(void)state;
	propose_many(cl, &seed, 5);
	/* Node 4 joins: not bootstrapped, knows the members through the resolver. */
	start_node(cl, 3, 0);
	PUMP_UNTIL(cl, (l = agreed_leader(cl)) != RAFT_ID_NONE);
	memset(&d, 0, sizeof(d));
	while ((rc = node_add_learner(cl->nodes[l - 1].n, 4, cl->nodes[3].addr, on_done, &d)) != 0) {
		assert_true(rc == -EAGAIN || rc == -EBUSY || rc == -EPERM);
		event_base_loop(cl->base, EVLOOP_ONCE);
		PUMP_UNTIL(cl, (l = agreed_leader(cl)) != RAFT_ID_NONE);
	}
	PUMP_UNTIL(cl, d.called);
	assert_int_equal(d.res.rc, NODE_OK);
	PUMP_UNTIL(cl, converged(cl, 4));
	assert_same_state(cl, 4);
	node_get_info(cl->nodes[l - 1].n, &info);
	assert_int_equal(info.n_members, 4);

	memset(&d, 0, sizeof(d));
	while ((rc = node_promote(cl->nodes[l - 1].n, 4, on_done, &d)) != 0) {
		assert_true(rc == -EINPROGRESS || rc == -EAGAIN || rc == -EBUSY);
		event_base_loop(cl->base, EVLOOP_ONCE);
	}
	PUMP_UNTIL(cl, d.called);
	assert_int_equal(d.res.rc, NODE_OK);
	node_get_info(cl->nodes[l - 1].n, &info);
	for (uint32_t i = 0; i < info.n_members; i++)
		assert_true(info.members[i].voter);
	propose_many(cl, &seed, 5);
	PUMP_UNTIL(cl, converged(cl, 4));
	assert_same_state(cl, 4);

	/* Remove it: it must learn and stop, saying why. */
	l = agreed_leader(cl);
	memset(&d, 0, sizeof(d));
	while ((rc = node_remove(cl->nodes[l - 1].n, 4, on_done, &d)) != 0) {
		assert_true(rc == -EAGAIN || rc == -EBUSY);
		event_base_loop(cl->base, EVLOOP_ONCE);
	}
	PUMP_UNTIL(cl, d.called);
	assert_int_equal(d.res.rc, NODE_OK);
	PUMP_UNTIL(cl, cl->nodes[3].app.stopped);
	assert_int_equal(cl->nodes[3].app.why, NODE_STOP_REMOVED);
	node_get_info(cl->nodes[3].n, &info);
	assert_true(info.stopped);
	assert_int_equal(node_propose(cl->nodes[3].n, "x", 1, on_done, &d), -ESHUTDOWN);
	node_get_info(cl->nodes[l - 1].n, &info);
	assert_int_equal(info.n_members, 3);
	/* The three remaining voters go on. */
	propose_many(cl, &seed, 3);
	PUMP_UNTIL(cl, converged(cl, 3));
	assert_same_state(cl, 3);
	cluster_free(cl);
}

static void test_transfer_and_bad_args(void **state)
{
	struct cluster *cl = cluster_new(3, 0, 0);
	uint64_t seed = 5;
	struct node_config cfg;
	struct node_app app = {.apply = toy_apply, .snapshot = toy_snapshot, .restore = toy_restore};
	struct node *n = NULL;
	char err[128];
	raft_id l, target;

	(void)state;
	propose_many(cl, &seed, 3);
	l = agreed_leader(cl);
	target = l == 1 ? 2 : 1;
	PUMP_UNTIL(cl, converged(cl, 3));
	{
		/* A proposal in flight while leadership moves: exactly one answer, and never a
		 * false "failed" - either applied, or honestly unknown. */
		struct done d;
		uint64_t c = 99;

		memset(&d, 0, sizeof(d));
		assert_int_equal(node_propose(cl->nodes[l - 1].n, &c, sizeof(c), on_done, &d), 0);
		assert_int_equal(node_transfer(cl->nodes[l - 1].n, target), 0);
		assert_int_equal(node_propose(cl->nodes[l - 1].n, &c, sizeof(c), on_done, &d), -EBUSY);
		PUMP_UNTIL(cl, agreed_leader(cl) == target);
		PUMP_UNTIL(cl, d.called);
		assert_int_equal(d.called, 1);
		assert_true(d.res.rc == NODE_OK || d.res.rc == NODE_UNKNOWN_OUTCOME);
	}
	propose_many(cl, &seed, 3);

	memset(&cfg, 0, sizeof(cfg));
	cfg.id = 9;
	cfg.data_dir = cl->nodes[0].dir; /* in use by node 1 */
	cfg.raft_listen = "127.0.0.1:0";
	assert_int_equal(node_start(cl->base, &cfg, &app, &n, err, sizeof(err)), -EBUSY);
	assert_null(n);
	/* A failure after the storage was opened must release it (the directory lock). */
	{
		char dir[160];

		snprintf(dir, sizeof(dir), "%s/n9", cl->root);
		cfg.data_dir = dir;
		cfg.raft_listen = cl->nodes[0].addr; /* in use */
		assert_int_not_equal(node_start(cl->base, &cfg, &app, &n, err, sizeof(err)), 0);
		assert_null(n);
		cfg.raft_listen = "127.0.0.1:0";
		assert_int_equal(node_start(cl->base, &cfg, &app, &n, err, sizeof(err)), 0);
		node_free(n);
		n = NULL;
	}
	cfg.election_max_ms = 1000; /* not 2 * min */
	assert_int_equal(node_start(cl->base, &cfg, &app, &n, err, sizeof(err)), -EINVAL);
	cfg.election_max_ms = 0;
	cfg.id = 0;
	assert_int_equal(node_start(cl->base, &cfg, &app, &n, err, sizeof(err)), -EINVAL);
	cluster_free(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_elect_replicate_read),
	    cmocka_unit_test(test_crash_leader_restart),
	    cmocka_unit_test(test_pipelined_proposals),
	    cmocka_unit_test(test_snapshot_catchup),
	    cmocka_unit_test(test_membership),
	    cmocka_unit_test(test_transfer_and_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
