/* Node lifecycle, the term rules common to every message, ticks, and the ready/advance batch. */
#include "raft/raft_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void raft_config_default(struct raft_config *cfg, raft_id id, uint64_t seed)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = id;
	cfg->election_ticks = 15;
	cfg->heartbeat_ticks = 5;
	cfg->max_msg_entries = 64;
	cfg->max_msg_bytes = 1u << 20;
	cfg->max_inflight = 32;
	cfg->snapshot_trailing = 64;
	cfg->pre_vote = 1;
	cfg->check_quorum = 1;
	cfg->seed = seed;
}

/* splitmix64: the caller's seed makes every timeout reproducible. */
uint64_t raft_rand(struct raft *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int check_config(const struct raft_config *c)
{
	if (c->id == RAFT_ID_NONE || c->election_ticks < 2 || c->heartbeat_ticks == 0 ||
	    c->heartbeat_ticks >= c->election_ticks || c->max_msg_entries == 0 || c->max_inflight == 0)
		return -EINVAL;
	return 0;
}

int raft_create(const struct raft_config *cfg, const struct raft_restore *st, struct raft **out)
{
	struct raft *r;
	uint64_t last;
	int rc = -ENOMEM;

	*out = NULL;
	if (check_config(cfg) != 0 || st->snap.meta.conf.n_voters > RAFT_MAX_MEMBERS ||
	    st->snap.meta.conf.n_learners > RAFT_MAX_MEMBERS)
		return -EINVAL;
	for (size_t i = 0; i < st->n_entries; i++)
		if (st->entries[i].index != st->snap.meta.index + 1 + i)
			return -EINVAL;
	last = st->snap.meta.index + st->n_entries;
	if (st->hs.commit > last || st->applied > last)
		return -EINVAL;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	r->id = cfg->id;
	r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dULL);
	r->term = st->hs.term;
	r->vote = st->hs.vote;
	r->prev_hs = st->hs;
	raft_log_init(&r->log, st->snap.meta.index, st->snap.meta.term);
	if (raft_snapshot_set(&r->snap, &st->snap.meta, st->snap.data, st->snap.len) != 0)
		goto fail;
	r->base_conf = st->snap.meta.conf;
	r->conf = r->base_conf;
	r->conf_index = st->snap.meta.index;
	for (size_t i = 0; i < st->n_entries; i++) {
		if (raft_log_append(&r->log, &st->entries[i]) != 0)
			goto fail;
		raft_conf_note_append(r, &st->entries[i]);
	}
	r->commit = st->hs.commit > st->snap.meta.index ? st->hs.commit : st->snap.meta.index;
	r->applied = st->applied > st->snap.meta.index ? st->applied : st->snap.meta.index;
	if (r->applied > r->commit)
		r->commit = r->applied;
	r->applying = r->applied;
	r->stable = last;
	r->role = RAFT_FOLLOWER;
	rc = raft_prs_rebuild(r);
	if (rc != 0)
		goto fail;
	raft_reset_timeout(r);
	*out = r;
	return 0;
fail:
	raft_destroy(r);
	return rc;
}

void raft_destroy(struct raft *r)
{
	if (!r)
		return;
	raft_log_free(&r->log);
	free(r->snap.data);
	free(r->ready_snap.data);
	for (size_t i = 0; i < r->n_prs; i++)
		free(r->prs[i].inflight);
	free(r->prs);
	free(r->pending_reads);
	free(r->reads);
	raft_msgs_free(r->msgs, r->n_msgs);
	free(r);
}

static void tick_leader(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		/* Check-quorum (thesis §6.2): a leader cut off from a majority steps down, so a
		 * partitioned leader stops serving ReadIndex and proposals it cannot commit. */
		if (r->cfg.check_quorum) {
			uint32_t active = 0;

			for (size_t i = 0; i < r->n_prs; i++) {
				struct raft_progress *pr = &r->prs[i];

				if (pr->voter && (pr->id == r->id || pr->recent_active))
					active++;
				if (pr->id != r->id)
					pr->recent_active = 0;
			}
			if (active < raft_quorum(r)) {
				raft_become_follower(r, r->term, RAFT_ID_NONE);
				return;
			}
		}
		if (r->transferee != RAFT_ID_NONE)
			r->transferee = RAFT_ID_NONE; /* thesis §3.10: abort after one election timeout */
	}
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		raft_bcast_heartbeat(r);
	}
}

void raft_tick(struct raft *r)
{
	if (r->role == RAFT_LEADER) {
		tick_leader(r);
		return;
	}
	r->election_elapsed++;
	if (r->election_elapsed >= r->randomized_timeout) {
		r->election_elapsed = 0;
		if (raft_conf_is_voter(&r->conf, r->id))
			raft_start_election(r, r->cfg.pre_vote != 0, false);
		else
			raft_reset_timeout(r);
	}
}

int raft_campaign(struct raft *r)
{
	if (!raft_conf_is_voter(&r->conf, r->id))
		return -EPERM;
	if (r->role == RAFT_LEADER)
		return 0;
	raft_start_election(r, r->cfg.pre_vote != 0, false);
	return 0;
}

static void reply_stale(struct raft *r, const struct raft_message *m)
{
	struct raft_message *o;

	/* Raft §5.1: tell a stale leader our term, so it steps down. */
	if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_SNAPSHOT) {
		o = raft_msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
		if (o)
			o->reject = 0, o->index = 0;
	} else if (m->type == RAFT_MSG_PREVOTE) {
		/* Thesis §9.6: a refused pre-candidate learns our term and stops asking. */
		o = raft_msg_new(r, RAFT_MSG_PREVOTE_RESP, m->from);
		if (o)
			o->reject = 1;
	}
}

int raft_step(struct raft *r, const struct raft_message *m)
{
	if (m->to != r->id || m->from == RAFT_ID_NONE || m->from == r->id)
		return -EINVAL;
	if (m->n_entries && !m->entries)
		return -EINVAL;

	if (m->term > r->term) {
		bool is_vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;

		/* Thesis §4.2.3: a node that heard from a leader within the minimum election
		 * timeout ignores votes, so a removed or partitioned node cannot depose it;
		 * a transfer (TIMEOUT_NOW) is the explicit exception. */
		if (is_vote && raft_in_lease(r) && !(m->flags & RAFT_MSGF_TRANSFER))
			return 0;
		if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
			/* pre-vote traffic never changes terms (thesis §9.6) */
		} else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
			   m->type == RAFT_MSG_SNAPSHOT) {
			raft_become_follower(r, m->term, m->from);
		} else {
			raft_become_follower(r, m->term, RAFT_ID_NONE);
		}
	} else if (m->term < r->term) {
		reply_stale(r, m);
		return 0;
	}

	switch (m->type) {
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PREVOTE:
		raft_recv_vote(r, m);
		break;
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PREVOTE_RESP:
		raft_recv_vote_resp(r, m);
		break;
	case RAFT_MSG_APPEND:
		raft_recv_append(r, m);
		break;
	case RAFT_MSG_APPEND_RESP:
		raft_recv_append_resp(r, m);
		break;
	case RAFT_MSG_HEARTBEAT:
		raft_recv_heartbeat(r, m);
		break;
	case RAFT_MSG_HEARTBEAT_RESP:
		raft_recv_heartbeat_resp(r, m);
		break;
	case RAFT_MSG_SNAPSHOT:
		raft_recv_snapshot(r, m);
		break;
	case RAFT_MSG_TIMEOUT_NOW:
		if (r->role != RAFT_LEADER && raft_conf_is_voter(&r->conf, r->id))
			raft_start_election(r, false, true);
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

int raft_propose(struct raft *r, const void *data, uint32_t len, uint64_t *index)
{
	int rc;

	if (r->role != RAFT_LEADER)
		return -EPERM;
	if (r->transferee != RAFT_ID_NONE)
		return -EBUSY;
	if (len && !data)
		return -EINVAL;
	rc = raft_append_local(r, RAFT_ENTRY_NORMAL, data, len);
	if (rc != 0)
		return rc;
	if (index)
		*index = raft_log_last_index(&r->log);
	/*
	 * Not sent yet: raft_ready sends everything proposed since the last
	 * batch in one APPEND per follower (batching on the wire, as group
	 * commit batches on disk). Messages only leave through raft_ready, so
	 * nothing observable changes but the number of messages.
	 */
	r->bcast_pending = true;
	return 0;
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
	struct raft_hard_state hs = {r->term, r->vote, r->commit};
	uint64_t last = raft_log_last_index(&r->log);
	uint64_t upto = r->commit < last ? r->commit : last;
	bool hs_changed = memcmp(&hs, &r->prev_hs, sizeof(hs)) != 0;
	struct raft_ready o;

	if (r->ready_out)
		return -EBUSY;
	if (r->bcast_pending) {
		r->bcast_pending = false;
		if (r->role == RAFT_LEADER)
			raft_bcast_append(r);
	}
	if (!hs_changed && !r->snap_unsent_ready && r->stable >= last && r->applying >= upto && !r->n_msgs &&
	    !r->n_reads)
		return 0;
	memset(&o, 0, sizeof(o));
	o.hs_changed = hs_changed;
	o.hs = hs;
	if (r->stable < last && raft_entries_copy(&o.entries, &r->log, r->stable + 1, last) != 0)
		return -ENOMEM;
	o.n_entries = r->stable < last ? (size_t)(last - r->stable) : 0;
	if (r->applying < upto) {
		if (raft_entries_copy(&o.committed, &r->log, r->applying + 1, upto) != 0) {
			raft_entries_free(o.entries, o.n_entries);
			return -ENOMEM;
		}
		o.n_committed = (size_t)(upto - r->applying);
	}
	if (r->snap_unsent_ready) {
		free(r->ready_snap.data);
		r->ready_snap = r->snap;
		r->ready_snap.data = NULL;
		if (raft_snapshot_set(&r->ready_snap, &r->snap.meta, r->snap.data, r->snap.len) != 0) {
			raft_entries_free(o.entries, o.n_entries);
			raft_entries_free(o.committed, o.n_committed);
			return -ENOMEM;
		}
		o.snapshot = &r->ready_snap;
		r->snap_unsent_ready = false;
	}
	o.msgs = r->msgs;
	o.n_msgs = r->n_msgs;
	r->msgs = NULL;
	r->n_msgs = r->cap_msgs = 0;
	o.reads = r->reads;
	o.n_reads = r->n_reads;
	r->reads = NULL;
	r->n_reads = r->cap_reads = 0;
	o.role = r->role;
	o.leader = r->leader;
	o.term = r->term;
	o.priv_last_index = last;
	o.priv_last_term = raft_log_last_term(&r->log);
	o.priv_applied = upto > r->applying ? upto : r->applying;
	o.priv_snap_index = o.snapshot ? o.snapshot->meta.index : 0;
	r->applying = o.priv_applied;
	r->ready_out = true;
	*rd = o;
	return 1;
}

void raft_advance(struct raft *r, struct raft_ready *rd)
{
	uint64_t t;

	if (!r->ready_out)
		return;
	r->ready_out = false;
	if (rd->hs_changed)
		r->prev_hs = rd->hs;
	/* Only what is still in our log under the same term was persisted by this batch:
	 * a suffix replaced meanwhile is persisted by a later one. */
	if (raft_log_term(&r->log, rd->priv_last_index, &t) == 0 && t == rd->priv_last_term &&
	    rd->priv_last_index > r->stable)
		r->stable = rd->priv_last_index;
	if (rd->priv_applied > r->applied)
		r->applied = rd->priv_applied;
	raft_entries_free(rd->entries, rd->n_entries);
	raft_entries_free(rd->committed, rd->n_committed);
	raft_msgs_free(rd->msgs, rd->n_msgs);
	free(rd->reads);
	memset(rd, 0, sizeof(*rd));
	/* The leader's own vote for its entries counts once they are durable. */
	if (r->role == RAFT_LEADER && raft_maybe_commit(r))
		raft_bcast_append(r);
}

void raft_get_status(const struct raft *r, struct raft_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = r->id;
	st->role = r->role;
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->leader;
	st->commit = r->commit;
	st->applied = r->applied;
	st->first_index = r->log.offset + 1;
	st->last_index = raft_log_last_index(&r->log);
	st->last_term = raft_log_last_term(&r->log);
	st->snap_index = r->snap.meta.index;
	st->snap_term = r->snap.meta.term;
	st->transferee = r->transferee;
	st->conf = r->conf;
}

int raft_entry_at(const struct raft *r, uint64_t index, const struct raft_entry **e)
{
	*e = raft_log_get(&r->log, index);
	return *e ? 0 : -ENOENT;
}
