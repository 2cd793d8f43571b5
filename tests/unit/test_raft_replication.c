/* Unit tests of Raft log replication, the commit rule, ReadIndex, snapshots and membership changes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/unit/raft_harness.h"

static int elect(struct harness *h)
{
	h_tick(h, 4 * h->cfg.election_ticks);
	assert_int_equal(h_count_leaders(h), 1);
	return h_leader(h);
}

static void test_propose_commits_everywhere(void **state)
{
	struct harness h;
	uint64_t idx = 0;

	(void)state;
	h_init(&h, 3, 3, NULL);
	int l = elect(&h);
	for (int i = 0; i < 20; i++)
		assert_int_equal(raft_propose(h.nodes[l].r, "abcdef", 6, &idx), 0);
	assert_int_equal(idx, 21);
	h_tick(&h, h.cfg.heartbeat_ticks + 1); /* followers learn the commit */
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(h_status(&h, i).commit, 21);
		assert_int_equal(h.nodes[i].applied_index, 21);
	}
	/* followers refuse proposals */
	assert_int_equal(raft_propose(h.nodes[(l + 1) % 3].r, "x", 1, NULL), -EPERM);
	h_free(&h);
}

static void test_batching_and_inflight_bound(void **state)
{
	struct raft_config cfg;
	struct harness h;

	(void)state;
	raft_config_default(&cfg, 1, 1);
	cfg.max_msg_entries = 3;
	cfg.max_inflight = 2;
	h_init(&h, 3, 3, &cfg);
	int l = elect(&h);
	raft_id f = (raft_id)((l + 1) % 3 + 1);

	/* responses from f are lost: the leader may pipeline at most max_inflight APPENDs */
	h.cut[f][l + 1] = true;
	uint64_t before = h.sent_append_to[f];
	for (int i = 0; i < 30; i++) {
		raft_propose(h.nodes[l].r, "x", 1, NULL);
		h_deliver_all(&h);
	}
	assert_true(h.max_entries_seen <= 3);
	assert_int_equal(h.sent_append_to[f] - before, 2);
	h.cut[f][l + 1] = false;
	h_tick(&h, 4 * h.cfg.heartbeat_ticks);
	assert_int_equal(h_status(&h, f - 1).last_index, 31);
	h_free(&h);
}

/* Starts node id with the given log (terms of entries 1..n) and current term. */
static struct raft *make_node(const struct raft_config *base, raft_id id, const uint64_t *terms, size_t n,
			      uint64_t term)
{
	struct raft_config cfg = *base;
	struct raft_restore st;
	struct raft_entry ents[64];
	struct raft *r;

	memset(&st, 0, sizeof(st));
	cfg.id = id;
	cfg.seed = id;
	st.snap.meta.conf.n_voters = 3;
	for (int v = 0; v < 3; v++)
		st.snap.meta.conf.voters[v] = (raft_id)(v + 1);
	for (size_t i = 0; i < n; i++)
		ents[i] = (struct raft_entry){terms[i], i + 1, RAFT_ENTRY_NORMAL, 1, (uint8_t *)"e"};
	st.entries = ents;
	st.n_entries = n;
	st.hs.term = term;
	assert_int_equal(raft_create(&cfg, &st, &r), 0);
	return r;
}

static void test_fast_backoff(void **state)
{
	struct raft_config cfg;
	struct harness h;
	uint64_t lead[40], foll[40];

	(void)state;
	/* the follower holds 30 entries of term 2 the leader never had: one reject per term,
	 * not one per entry */
	for (int i = 0; i < 40; i++) {
		lead[i] = i < 5 ? 1 : 3;
		foll[i] = i < 5 ? 1 : 2;
	}
	raft_config_default(&cfg, 1, 1);
	cfg.check_quorum = 0;
	h_init(&h, 3, 3, &cfg);
	for (int i = 0; i < 3; i++)
		raft_destroy(h.nodes[i].r);
	h.nodes[0].r = make_node(&cfg, 1, lead, 10, 3);
	h.nodes[1].r = make_node(&cfg, 2, foll, 35, 3);
	h.nodes[2].r = make_node(&cfg, 3, lead, 10, 3);
	raft_campaign(h.nodes[0].r);
	h_deliver_all(&h);
	assert_int_equal(h_leader(&h), 0);
	assert_true(h.sent[RAFT_MSG_APPEND_RESP] > 0);
	/* node 2's conflicting suffix was replaced by the leader's log */
	assert_int_equal(h_status(&h, 1).last_index, 11);
	assert_int_equal(h_status(&h, 1).last_term, 4);
	h_free(&h);
}

static void commit_rule_run(bool mutated)
{
	struct raft_config cfg;
	struct harness h;
	uint64_t l1[2] = {1, 2}, l2[1] = {1};
	bool saw_old_commit = false;

	raft_config_default(&cfg, 1, 1);
	cfg.check_quorum = 0;
	cfg.max_msg_entries = 1;
	h_init(&h, 3, 3, &cfg);
	for (int i = 0; i < 3; i++)
		raft_destroy(h.nodes[i].r);
	h.nodes[0].r = make_node(&cfg, 1, l1, 2, 2);
	h.nodes[1].r = make_node(&cfg, 2, l2, 1, 2);
	h.nodes[2].r = make_node(&cfg, 3, l2, 1, 2);
	raft_test_mutation = mutated ? RAFT_MUT_OLD_TERM_COMMIT : RAFT_MUT_NONE;
	raft_campaign(h.nodes[0].r);
	while (h_deliver_one(&h)) {
		uint64_t c = h_status(&h, 0).commit;

		/* Raft §5.4.2: entries 1 (term 1) and 2 (term 2) are only committed together
		 * with the leader's own no-op at 3 */
		if (c == 1 || c == 2)
			saw_old_commit = true;
	}
	raft_test_mutation = RAFT_MUT_NONE;
	assert_int_equal(h_leader(&h), 0);
	assert_int_equal(h_status(&h, 0).commit, 3);
	assert_int_equal(saw_old_commit, mutated);
	h_free(&h);
}

static void test_commit_rule_current_term_only(void **state)
{
	(void)state;
	commit_rule_run(false);
	commit_rule_run(true); /* the mutation the simulation must catch really breaks it */
}

static void test_read_index(void **state)
{
	struct harness h;

	(void)state;
	h_init(&h, 3, 3, NULL);
	int l = elect(&h);
	size_t f = (size_t)(l + 1) % 3;

	assert_int_equal(raft_read_index(h.nodes[f].r, 1), -EPERM);
	raft_propose(h.nodes[l].r, "w", 1, NULL);
	h_deliver_all(&h);
	assert_int_equal(raft_read_index(h.nodes[l].r, 42), 0);
	/* not answered before a quorum confirmed the leadership */
	assert_int_equal(h.nodes[l].n_reads, 0);
	h_deliver_all(&h);
	assert_int_equal(h.nodes[l].n_reads, 1);
	assert_int_equal(h.nodes[l].reads[0].ctx, 42);
	assert_int_equal(h.nodes[l].reads[0].index, 2);
	/* a leader cut off from everyone never answers */
	h_isolate(&h, (raft_id)(l + 1), true);
	assert_int_equal(raft_read_index(h.nodes[l].r, 43), 0);
	h_tick(&h, h.cfg.heartbeat_ticks * 2);
	assert_int_equal(h.nodes[l].n_reads, 1);
	h_free(&h);
}

static void test_snapshot_catches_up_follower(void **state)
{
	struct raft_config cfg;
	struct harness h;

	(void)state;
	raft_config_default(&cfg, 1, 1);
	cfg.snapshot_trailing = 2;
	cfg.check_quorum = 0;
	h_init(&h, 3, 3, &cfg);
	int l = elect(&h);
	raft_id f = (raft_id)((l + 1) % 3 + 1);

	h_isolate(&h, f, true);
	for (int i = 0; i < 40; i++)
		raft_propose(h.nodes[l].r, "data", 4, NULL);
	h_deliver_all(&h);
	uint64_t applied = h_status(&h, (size_t)l).applied;
	assert_int_equal(applied, 41);
	struct raft_snapshot_meta meta;
	assert_int_equal(raft_compact(h.nodes[l].r, applied, "SNAP", 4, &meta), 0);
	assert_int_equal(meta.index, 41);
	assert_int_equal(meta.conf.n_voters, 3);
	assert_int_equal(h_status(&h, (size_t)l).first_index, 40);
	assert_int_equal(raft_compact(h.nodes[l].r, applied + 1, "S", 1, NULL), -EINVAL);
	h_isolate(&h, f, false);
	h_tick(&h, 3 * h.cfg.heartbeat_ticks);
	assert_true(h.sent[RAFT_MSG_SNAPSHOT] >= 1);
	assert_int_equal(h.nodes[f - 1].n_installed, 1);
	assert_int_equal(h.nodes[f - 1].installed.index, 41);
	assert_int_equal(h_status(&h, f - 1).commit, 41);
	raft_propose(h.nodes[l].r, "more", 4, NULL);
	h_tick(&h, h.cfg.heartbeat_ticks + 1);
	assert_int_equal(h.nodes[f - 1].applied_index, 42);
	h_free(&h);
}

static void test_membership_learner_promote_remove(void **state)
{
	struct harness h;

	(void)state;
	h_init(&h, 4, 3, NULL);
	int l = elect(&h);
	struct raft *lr = h.nodes[l].r;

	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_PROMOTE, 4, NULL), -ENOENT);
	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_ADD_LEARNER, 4, NULL), 0);
	/* thesis §4.1: in force as soon as appended, and one change at a time */
	assert_int_equal(h_status(&h, (size_t)l).conf.n_learners, 1);
	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_REMOVE, 4, NULL), -EBUSY);
	h_tick(&h, 2 * h.cfg.heartbeat_ticks);
	assert_int_equal(h_status(&h, 3).conf.n_learners, 1);
	assert_int_equal(h_status(&h, 3).commit, h_status(&h, (size_t)l).commit);
	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_ADD_LEARNER, 4, NULL), -EEXIST);
	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_PROMOTE, 4, NULL), 0);
	h_tick(&h, 2 * h.cfg.heartbeat_ticks);
	assert_int_equal(h_status(&h, (size_t)l).conf.n_voters, 4);
	assert_int_equal(h_status(&h, 3).conf.n_voters, 4);
	/* the leader removes itself: it steps down once that is committed (thesis §4.2.2) */
	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_REMOVE, (raft_id)(l + 1), NULL), 0);
	h_deliver_all(&h);
	h_tick(&h, 4 * h.cfg.election_ticks);
	assert_int_not_equal(h_status(&h, (size_t)l).role, RAFT_LEADER);
	int nl = h_leader(&h);
	assert_true(nl >= 0 && nl != l);
	assert_int_equal(h_status(&h, (size_t)nl).conf.n_voters, 3);
	assert_int_equal(raft_propose(h.nodes[nl].r, "z", 1, NULL), 0);
	h_tick(&h, 2 * h.cfg.heartbeat_ticks);
	assert_int_equal(h_status(&h, 3).commit, h_status(&h, (size_t)nl).last_index);
	h_free(&h);
}

/* A learner that has never answered cannot be promoted: it would raise the quorum uselessly. */
static void test_promote_needs_caught_up_learner(void **state)
{
	struct harness h;

	(void)state;
	h_init(&h, 4, 3, NULL);
	int l = elect(&h);
	struct raft *lr = h.nodes[l].r;

	h_isolate(&h, 4, true);
	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_ADD_LEARNER, 4, NULL), 0);
	h_tick(&h, 2 * h.cfg.heartbeat_ticks);
	assert_int_equal(h_status(&h, 3).conf.n_learners, 0); /* it heard nothing */
	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_PROMOTE, 4, NULL), -EINPROGRESS);
	h_isolate(&h, 4, false);
	h_tick(&h, 4 * h.cfg.heartbeat_ticks);
	assert_int_equal(h_status(&h, 3).commit, h_status(&h, (size_t)l).commit);
	assert_int_equal(raft_propose_conf(lr, RAFT_CONF_PROMOTE, 4, NULL), 0);
	h_free(&h);
}

static void test_conf_codec(void **state)
{
	struct raft_conf c = {0}, d;
	uint8_t buf[512];
	int n;

	(void)state;
	c.n_voters = 2;
	c.voters[0] = 7;
	c.voters[1] = 0x0102030405060708ULL;
	c.n_learners = 1;
	c.learners[0] = 9;
	n = raft_conf_encode(&c, buf, sizeof(buf));
	assert_int_equal(n, 8 + 24);
	assert_int_equal(raft_conf_decode(&d, buf, (size_t)n), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	assert_int_equal(raft_conf_encode(&c, buf, 10), -ENOSPC);
	assert_int_equal(raft_conf_decode(&d, buf, (size_t)n - 1), -EINVAL);
	buf[8] = buf[16];
	memcpy(buf + 8, buf + 16, 8); /* duplicate id */
	assert_int_equal(raft_conf_decode(&d, buf, (size_t)n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_propose_commits_everywhere),
		cmocka_unit_test(test_batching_and_inflight_bound),
		cmocka_unit_test(test_fast_backoff),
		cmocka_unit_test(test_commit_rule_current_term_only),
		cmocka_unit_test(test_read_index),
		cmocka_unit_test(test_snapshot_catches_up_follower),
		cmocka_unit_test(test_membership_learner_promote_remove),
		cmocka_unit_test(test_promote_needs_caught_up_learner),
		cmocka_unit_test(test_conf_codec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
