/* Unit tests of Raft leader election: timeouts, one vote per term, up-to-date check, pre-vote, check-quorum, transfer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/unit/raft_harness.h"

static void test_single_node_elects_itself(void **state)
{
	struct harness h;

	(void)state;
	h_init(&h, 1, 1, NULL);
	h_tick(&h, 2 * h.cfg.election_ticks);
	assert_int_equal(h_status(&h, 0).role, RAFT_LEADER);
	assert_int_equal(h_status(&h, 0).term, 1);
	/* the no-op of the new term is committed and applied */
	assert_int_equal(h_status(&h, 0).commit, 1);
	assert_int_equal(h.nodes[0].applied_index, 1);
	h_free(&h);
}

static void test_three_nodes_elect_one_leader(void **state)
{
	struct harness h;

	(void)state;
	h_init(&h, 3, 3, NULL);
	h_tick(&h, 2 * h.cfg.election_ticks + 1);
	assert_int_equal(h_count_leaders(&h), 1);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(h_status(&h, i).leader, h_leader(&h) + 1);
		assert_int_equal(h_status(&h, i).commit, 1);
	}
	/* stays stable: heartbeats keep followers from campaigning */
	uint64_t term = h_status(&h, 0).term;
	h_tick(&h, 10 * h.cfg.election_ticks);
	assert_int_equal(h_status(&h, 0).term, term);
	assert_int_equal(h_count_leaders(&h), 1);
	h_free(&h);
}

static struct raft_message vote_req(raft_id from, raft_id to, uint64_t term, uint64_t idx, uint64_t lterm)
{
	struct raft_message m;

	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_VOTE;
	m.from = from;
	m.to = to;
	m.term = term;
	m.index = idx;
	m.log_term = lterm;
	return m;
}

/* Collects the vote answers node i produced. */
static int granted_votes(struct harness *h, size_t i, raft_id to)
{
	struct raft_ready rd;
	int granted = -1;

	if (raft_ready(h->nodes[i].r, &rd) <= 0)
		return -1;
	for (size_t k = 0; k < rd.n_msgs; k++)
		if (rd.msgs[k].type == RAFT_MSG_VOTE_RESP && rd.msgs[k].to == to)
			granted = !rd.msgs[k].reject;
	raft_advance(h->nodes[i].r, &rd);
	return granted;
}

static void test_one_vote_per_term(void **state)
{
	struct raft_config cfg;
	struct harness h;
	struct raft_message m;

	(void)state;
	raft_config_default(&cfg, 1, 1);
	cfg.check_quorum = 0;
	h_init(&h, 3, 3, &cfg);
	m = vote_req(2, 1, 5, 0, 0);
	assert_int_equal(raft_step(h.nodes[0].r, &m), 0);
	assert_int_equal(granted_votes(&h, 0, 2), 1);
	assert_int_equal(h_status(&h, 0).vote, 2);
	m = vote_req(3, 1, 5, 0, 0);
	assert_int_equal(raft_step(h.nodes[0].r, &m), 0);
	assert_int_equal(granted_votes(&h, 0, 3), 0);
	/* the same candidate asking again (a duplicate) is granted again */
	m = vote_req(2, 1, 5, 0, 0);
	raft_step(h.nodes[0].r, &m);
	assert_int_equal(granted_votes(&h, 0, 2), 1);
	/* the test-only mutation really breaks the rule (the simulation relies on it) */
	raft_test_mutation = RAFT_MUT_DOUBLE_VOTE;
	m = vote_req(3, 1, 5, 0, 0);
	raft_step(h.nodes[0].r, &m);
	assert_int_equal(granted_votes(&h, 0, 3), 1);
	raft_test_mutation = RAFT_MUT_NONE;
	h_free(&h);
}

static void test_up_to_date_check(void **state)
{
	struct raft_config cfg;
	struct harness h;
	struct raft_message m;

	(void)state;
	raft_config_default(&cfg, 1, 1);
	cfg.check_quorum = 0;
	h_init(&h, 3, 3, &cfg);
	h_tick(&h, 2 * cfg.election_ticks + 1);
	int l = h_leader(&h);
	assert_true(l >= 0);
	assert_int_equal(raft_propose(h.nodes[l].r, "x", 1, NULL), 0);
	h_deliver_all(&h);
	size_t f = (size_t)(l + 1) % 3;
	struct raft_status st = h_status(&h, f);
	assert_int_equal(st.last_index, 2);
	/* Raft §5.4.1: a shorter log of the same last term loses, a higher last term wins */
	raft_id cand = 1;

	while (cand == (raft_id)(l + 1) || cand == (raft_id)(f + 1))
		cand++;
	m = vote_req(cand, (raft_id)(f + 1), st.term + 1, 1, st.last_term);
	raft_step(h.nodes[f].r, &m);
	assert_int_equal(granted_votes(&h, f, m.from), 0);
	m.term++;
	m.index = 1;
	m.log_term = st.last_term + 1;
	raft_step(h.nodes[f].r, &m);
	assert_int_equal(granted_votes(&h, f, m.from), 1);
	h_free(&h);
}

static void test_prevote_keeps_isolated_term(void **state)
{
	struct harness h;

	(void)state;
	h_init(&h, 3, 3, NULL);
	h_tick(&h, 2 * h.cfg.election_ticks + 1);
	int l = h_leader(&h);
	size_t f = (size_t)(l + 1) % 3;
	uint64_t term = h_status(&h, f).term;

	h_isolate(&h, (raft_id)(f + 1), true);
	h_tick(&h, 10 * h.cfg.election_ticks);
	/* thesis §9.6: the cut-off node keeps failing pre-votes and never bumps its term */
	assert_int_equal(h_status(&h, f).term, term);
	h_isolate(&h, (raft_id)(f + 1), false);
	h_tick(&h, 2 * h.cfg.election_ticks);
	/* so rejoining does not depose the healthy leader */
	assert_int_equal(h_leader(&h), l);
	assert_int_equal(h_status(&h, (size_t)l).term, term);
	h_free(&h);
}

static void test_check_quorum_steps_down(void **state)
{
	struct harness h;

	(void)state;
	h_init(&h, 3, 3, NULL);
	h_tick(&h, 2 * h.cfg.election_ticks + 1);
	int l = h_leader(&h);
	assert_true(l >= 0);
	h_isolate(&h, (raft_id)(l + 1), true);
	h_tick(&h, 4 * h.cfg.election_ticks);
	/* the old leader noticed it lost its quorum; the others elected a new one */
	assert_int_not_equal(h_status(&h, (size_t)l).role, RAFT_LEADER);
	assert_true(h_leader(&h) >= 0 && h_leader(&h) != l);
	assert_int_equal(raft_propose(h.nodes[l].r, "x", 1, NULL), -EPERM);
	h_free(&h);
}

static void test_lease_ignores_disruptive_vote(void **state)
{
	struct harness h;
	struct raft_message m;

	(void)state;
	h_init(&h, 3, 3, NULL);
	h_tick(&h, 2 * h.cfg.election_ticks + 1);
	int l = h_leader(&h);
	size_t f = (size_t)(l + 1) % 3;
	uint64_t term = h_status(&h, f).term;
	raft_id other = (raft_id)((f + 1) % 3 + 1);

	if (other == (raft_id)(l + 1))
		other = (raft_id)((f + 2) % 3 + 1);
	/* thesis §4.2.3: a follower that heard from its leader ignores a higher-term vote */
	m = vote_req(other, (raft_id)(f + 1), term + 5, 100, term + 5);
	raft_step(h.nodes[f].r, &m);
	assert_int_equal(h_status(&h, f).term, term);
	/* ... unless it comes from a leadership transfer */
	m.flags = RAFT_MSGF_TRANSFER;
	raft_step(h.nodes[f].r, &m);
	assert_int_equal(h_status(&h, f).term, term + 5);
	h_free(&h);
}

static void test_leadership_transfer(void **state)
{
	struct harness h;

	(void)state;
	h_init(&h, 3, 3, NULL);
	h_tick(&h, 2 * h.cfg.election_ticks + 1);
	int l = h_leader(&h);
	raft_id target = (raft_id)((l + 1) % 3 + 1);

	assert_int_equal(raft_transfer_leadership(h.nodes[l].r, (raft_id)(l + 1)), -EINVAL);
	assert_int_equal(raft_transfer_leadership(h.nodes[l].r, 9), -ENOENT);
	assert_int_equal(raft_transfer_leadership(h.nodes[l].r, target), 0);
	h_deliver_all(&h);
	assert_int_equal(h_leader(&h), (int)target - 1);
	assert_int_equal(h_count_leaders(&h), 1);
	/* proposals work on the new leader after its no-op */
	assert_int_equal(raft_propose(h.nodes[target - 1].r, "y", 1, NULL), 0);
	h_deliver_all(&h);
	assert_int_equal(h_status(&h, (size_t)l).commit, h_status(&h, target - 1).last_index);
	h_free(&h);
}

static void test_restart_keeps_vote(void **state)
{
	struct raft_config cfg;
	struct raft_restore st;
	struct raft *r;
	struct raft_message m;
	struct raft_ready rd;

	(void)state;
	raft_config_default(&cfg, 1, 7);
	cfg.check_quorum = 0;
	memset(&st, 0, sizeof(st));
	st.snap.meta.conf.n_voters = 3;
	st.snap.meta.conf.voters[0] = 1;
	st.snap.meta.conf.voters[1] = 2;
	st.snap.meta.conf.voters[2] = 3;
	st.hs.term = 4;
	st.hs.vote = 2; /* persisted before the crash */
	assert_int_equal(raft_create(&cfg, &st, &r), 0);
	m = vote_req(3, 1, 4, 0, 0);
	raft_step(r, &m);
	assert_int_equal(raft_ready(r, &rd), 1);
	assert_int_equal(rd.n_msgs, 1);
	assert_int_equal(rd.msgs[0].reject, 1);
	assert_int_equal(raft_ready(r, &rd), -EBUSY);
	raft_advance(r, &rd);
	raft_destroy(r);
	/* invalid configurations are refused */
	cfg.heartbeat_ticks = cfg.election_ticks;
	assert_int_equal(raft_create(&cfg, &st, &r), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_node_elects_itself),
		cmocka_unit_test(test_three_nodes_elect_one_leader),
		cmocka_unit_test(test_one_vote_per_term),
		cmocka_unit_test(test_up_to_date_check),
		cmocka_unit_test(test_prevote_keeps_isolated_term),
		cmocka_unit_test(test_check_quorum_steps_down),
		cmocka_unit_test(test_lease_ignores_disruptive_vote),
		cmocka_unit_test(test_leadership_transfer),
		cmocka_unit_test(test_restart_keeps_vote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
