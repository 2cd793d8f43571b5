/* Leader election: role changes, (pre-)campaigns and vote handling (Raft §5.2, §5.4.1; thesis §9.6). */
#include "raft/raft_internal.h"

#include <errno.h>
#include <string.h>

/* Raft §5.2: randomized timeouts in [e, 2e) make split votes rare. */
void raft_reset_timeout(struct raft *r)
{
	r->randomized_timeout = r->cfg.election_ticks + (uint32_t)(raft_rand(r) % r->cfg.election_ticks);
}

bool raft_in_lease(const struct raft *r)
{
	return r->cfg.check_quorum && r->leader != RAFT_ID_NONE && r->election_elapsed < r->cfg.election_ticks;
}

static void reset_votes(struct raft *r)
{
	for (size_t i = 0; i < r->n_prs; i++)
		r->prs[i].vote_state = 0;
}

void raft_become_follower(struct raft *r, uint64_t term, raft_id leader)
{
	if (term > r->term) {
		r->term = term;
		r->vote = RAFT_ID_NONE;
	}
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->transferee = RAFT_ID_NONE;
	raft_reset_timeout(r);
	raft_reads_drop(r);
	reset_votes(r);
}

void raft_become_leader(struct raft *r)
{
	r->role = RAFT_LEADER;
	r->leader = r->id;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->transferee = RAFT_ID_NONE;
	for (size_t i = 0; i < r->n_prs; i++) {
		raft_pr_reset(r, &r->prs[i]);
		r->prs[i].recent_active = 1;
	}
	/* Raft §8 / thesis §6.4: a no-op of the new term lets the leader learn what is
	 * committed (it may only count entries of its own term, §5.4.2). If it cannot be
	 * allocated, the next proposal plays the same role. */
	(void)raft_append_local(r, RAFT_ENTRY_NOOP, NULL, 0);
	(void)raft_maybe_commit(r);
	raft_bcast_append(r);
}

static uint32_t count_votes(const struct raft *r, uint32_t state)
{
	uint32_t n = 0;

	for (size_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].voter && r->prs[i].vote_state == state)
			n++;
	return n;
}

static void request_votes(struct raft *r, bool pre, bool transfer)
{
	uint8_t type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE;

	for (size_t i = 0; i < r->n_prs; i++) {
		struct raft_progress *pr = &r->prs[i];
		struct raft_message *m;

		if (!pr->voter || pr->id == r->id)
			continue;
		m = raft_msg_new(r, type, pr->id);
		if (!m)
			continue;
		m->term = pre ? r->term + 1 : r->term;
		m->index = raft_log_last_index(&r->log);
		m->log_term = raft_log_last_term(&r->log);
		m->flags = transfer ? RAFT_MSGF_TRANSFER : 0;
	}
}

/* Pre-vote (thesis §9.6) asks "would you vote for me?" without touching any term, so a node
 * that was partitioned away cannot force the cluster into a new term when it comes back. */
void raft_start_election(struct raft *r, bool pre, bool transfer)
{
	struct raft_progress *self = raft_pr_find(r, r->id);

	reset_votes(r);
	r->leader = RAFT_ID_NONE;
	r->election_elapsed = 0;
	raft_reset_timeout(r);
	if (pre) {
		r->role = RAFT_PRECANDIDATE;
	} else {
		r->role = RAFT_CANDIDATE;
		r->term++;
		r->vote = r->id;
	}
	if (self)
		self->vote_state = 1;
	if (count_votes(r, 1) >= raft_quorum(r)) {
		if (pre)
			raft_start_election(r, false, transfer);
		else
			raft_become_leader(r);
		return;
	}
	request_votes(r, pre, transfer);
}

void raft_recv_vote(struct raft *r, const struct raft_message *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE;
	bool can_vote = r->vote == m->from || (r->vote == RAFT_ID_NONE && r->leader == RAFT_ID_NONE) ||
			(pre && m->term > r->term);
	bool grant;
	struct raft_message *o;

	if (raft_test_mutation == RAFT_MUT_DOUBLE_VOTE && !pre)
		can_vote = true; /* deliberately broken: one vote per term is not enforced */
	grant = can_vote && raft_log_up_to_date(&r->log, m->index, m->log_term);
	/*
	 * Tie-break between simultaneous pre-candidates: when two survivors time
	 * out within one message delay of each other, both would win their
	 * pre-votes, stand in the same term, vote for themselves and split,
	 * costing a whole extra election timeout (the bench's p99 tail). A
	 * pre-candidate therefore refuses the pre-vote of a peer whose log is
	 * merely equal to its own and whose id is higher; the lower id wins the
	 * pre-vote round alone. Pre-votes change no term or vote, so safety is
	 * untouched (thesis §9.6); a strictly newer log still gets the grant.
	 */
	if (grant && pre && r->role == RAFT_PRECANDIDATE && m->from > r->id &&
	    m->index == raft_log_last_index(&r->log) && m->log_term == raft_log_last_term(&r->log))
		grant = false;
	o = raft_msg_new(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
	if (!grant) {
		if (o)
			o->reject = 1;
		return;
	}
	if (o)
		o->term = m->term; /* a granted pre-vote answers in the requested term */
	if (!pre) {
		/* Granting resets our timer so we do not immediately compete (Raft §5.2). */
		r->vote = m->from;
		r->election_elapsed = 0;
	}
}

void raft_recv_vote_resp(struct raft *r, const struct raft_message *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
	struct raft_progress *pr;

	if ((pre && r->role != RAFT_PRECANDIDATE) || (!pre && r->role != RAFT_CANDIDATE))
		return;
	if (pre && !m->reject && m->term != r->term + 1)
		return;
	pr = raft_pr_find(r, m->from);
	if (!pr || !pr->voter || pr->vote_state)
		return;
	pr->vote_state = m->reject ? 2 : 1;
	if (count_votes(r, 1) >= raft_quorum(r)) {
		if (pre)
			raft_start_election(r, false, false);
		else
			raft_become_leader(r);
	} else if (count_votes(r, 2) >= raft_quorum(r)) {
		raft_become_follower(r, r->term, RAFT_ID_NONE);
	}
}
