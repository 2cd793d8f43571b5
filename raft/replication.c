/* Log replication: per-follower progress, batching, pipelining, fast back-off, the commit rule (Raft §5.3, §5.4.2). */
#include "raft/raft_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A stuck pipeline (its last APPEND or its answer was lost) is re-probed after this many
 * heartbeat answers without progress. */
#define RAFT_STALL_HEARTBEATS 3

void raft_pr_reset(struct raft *r, struct raft_progress *pr)
{
	pr->match = pr->id == r->id ? r->stable : 0;
	pr->next = raft_log_last_index(&r->log) + 1;
	pr->state = RAFT_PR_PROBE;
	pr->paused = 0;
	pr->in_start = pr->in_count = 0;
	pr->pending_snapshot = 0;
	pr->stall = 0;
	pr->read_ack = 0;
}

static void become_probe(struct raft_progress *pr, uint64_t next)
{
	pr->state = RAFT_PR_PROBE;
	pr->next = next > pr->match + 1 ? next : pr->match + 1;
	pr->paused = 0;
	pr->in_start = pr->in_count = 0;
	pr->stall = 0;
}

static void become_replicate(struct raft_progress *pr)
{
	pr->state = RAFT_PR_REPLICATE;
	pr->next = pr->match + 1;
	pr->paused = 0;
	pr->in_start = pr->in_count = 0;
	pr->stall = 0;
}

static void inflight_free_to(struct raft *r, struct raft_progress *pr, uint64_t index)
{
	while (pr->in_count && pr->inflight[pr->in_start] <= index) {
		pr->in_start = (pr->in_start + 1) % r->cfg.max_inflight;
		pr->in_count--;
	}
}

static void send_snapshot(struct raft *r, struct raft_progress *pr)
{
	struct raft_message *m = raft_msg_new(r, RAFT_MSG_SNAPSHOT, pr->id);

	if (!m)
		return;
	m->snap = r->snap.meta;
	if (r->snap.len) {
		m->snap_data = malloc(r->snap.len);
		if (!m->snap_data) {
			r->n_msgs--; /* drop it; the next heartbeat answer retries */
			return;
		}
		memcpy(m->snap_data, r->snap.data, r->snap.len);
		m->snap_len = r->snap.len;
	}
	pr->state = RAFT_PR_SNAPSHOT;
	pr->pending_snapshot = r->snap.meta.index;
	pr->stall = 0;
}

/* Sends one APPEND (or a SNAPSHOT if the entries are compacted away). Returns true if a
 * message that may be followed by another one was sent. */
static bool send_one(struct raft *r, struct raft_progress *pr, bool allow_empty)
{
	uint64_t last = raft_log_last_index(&r->log);
	uint64_t prev, prev_term, n = 0, bytes = 0;
	struct raft_message *m;

	if (pr->id == r->id || pr->state == RAFT_PR_SNAPSHOT)
		return false;
	if (pr->state == RAFT_PR_PROBE && pr->paused)
		return false;
	if (pr->state == RAFT_PR_REPLICATE && pr->in_count >= r->cfg.max_inflight)
		return false;
	prev = pr->next - 1;
	if (raft_log_term(&r->log, prev, &prev_term) != 0) {
		send_snapshot(r, pr);
		return false;
	}
	/* Batching: up to max_msg_entries and about max_msg_bytes (one entry always fits). */
	for (uint64_t i = pr->next; i <= last && n < r->cfg.max_msg_entries; i++) {
		uint32_t len = raft_log_get(&r->log, i)->len;

		if (n > 0 && bytes + len > r->cfg.max_msg_bytes)
			break;
		n++;
		bytes += len;
	}
	if (n == 0 && pr->state == RAFT_PR_REPLICATE && !allow_empty)
		return false;
	m = raft_msg_new(r, RAFT_MSG_APPEND, pr->id);
	if (!m)
		return false;
	m->index = prev;
	m->log_term = prev_term;
	m->commit = r->commit;
	if (n && raft_entries_copy(&m->entries, &r->log, pr->next, pr->next + n - 1) != 0) {
		r->n_msgs--;
		return false;
	}
	m->n_entries = (uint32_t)n;
	if (pr->state == RAFT_PR_REPLICATE) {
		if (n) {
			/* Pipelining: assume success and keep going, bounded by max_inflight. */
			pr->next += n;
			pr->inflight[(pr->in_start + pr->in_count) % r->cfg.max_inflight] = pr->next - 1;
			pr->in_count++;
		}
		return n > 0;
	}
	pr->paused = 1;
	return false;
}

void raft_send_append(struct raft *r, struct raft_progress *pr, bool allow_empty)
{
	if (send_one(r, pr, allow_empty))
		while (send_one(r, pr, false))
			;
}

void raft_bcast_append(struct raft *r)
{
	for (size_t i = 0; i < r->n_prs; i++)
		raft_send_append(r, &r->prs[i], false);
}

static void bcast_commit(struct raft *r)
{
	for (size_t i = 0; i < r->n_prs; i++)
		raft_send_append(r, &r->prs[i], true);
}

void raft_bcast_heartbeat(struct raft *r)
{
	for (size_t i = 0; i < r->n_prs; i++) {
		struct raft_progress *pr = &r->prs[i];
		struct raft_message *m;

		if (pr->id == r->id)
			continue;
		m = raft_msg_new(r, RAFT_MSG_HEARTBEAT, pr->id);
		if (!m)
			continue;
		/* Never past what the follower is known to hold: its log beyond match may
		 * still differ from ours. */
		m->commit = pr->match < r->commit ? pr->match : r->commit;
		m->ctx = r->read_seq;
	}
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Raft §5.4.2: the leader commits by counting replicas only for an entry of its own term;
 * older entries become committed indirectly. Its own copy counts once persisted. */
bool raft_maybe_commit(struct raft *r)
{
	uint64_t matches[RAFT_MAX_MEMBERS];
	size_t k = 0;
	uint64_t mci, t;

	for (size_t i = 0; i < r->n_prs && k < RAFT_MAX_MEMBERS; i++)
		if (r->prs[i].voter)
			matches[k++] = r->prs[i].id == r->id ? r->stable : r->prs[i].match;
	if (k == 0)
		return false;
	qsort(matches, k, sizeof(matches[0]), cmp_desc);
	mci = matches[raft_quorum(r) - 1];
	if (mci <= r->commit || raft_log_term(&r->log, mci, &t) != 0)
		return false;
	if (t != r->term && raft_test_mutation != RAFT_MUT_OLD_TERM_COMMIT)
		return false;
	r->commit = mci;
	raft_after_commit(r);
	return true;
}

int raft_append_local(struct raft *r, uint8_t type, const void *data, uint32_t len)
{
	struct raft_entry e = {
		.term = r->term,
		.index = raft_log_last_index(&r->log) + 1,
		.type = type,
		.len = len,
		.data = (uint8_t *)data,
	};
	int rc = raft_log_append(&r->log, &e);

	if (rc == 0)
		raft_conf_note_append(r, &e);
	return rc;
}

static void follow(struct raft *r, const struct raft_message *m)
{
	if (r->role != RAFT_FOLLOWER)
		raft_become_follower(r, m->term, m->from);
	r->leader = m->from;
	r->election_elapsed = 0;
}

static void commit_to(struct raft *r, uint64_t index)
{
	uint64_t last = raft_log_last_index(&r->log);

	if (index > last)
		index = last;
	if (index > r->commit) {
		r->commit = index;
		raft_after_commit(r);
	}
}

void raft_recv_append(struct raft *r, const struct raft_message *m)
{
	uint64_t t, last_new = m->index;
	struct raft_message *o;

	if (r->role == RAFT_LEADER)
		return; /* two leaders in one term cannot happen (election safety) */
	follow(r, m);
	if (m->index < r->commit) {
		o = raft_msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
		if (o)
			o->index = r->commit;
		return;
	}
	if (raft_log_term(&r->log, m->index, &t) != 0 || t != m->log_term) {
		uint64_t hint = raft_log_conflict_by_term(&r->log, m->index, m->log_term);

		o = raft_msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
		if (o) {
			o->reject = 1;
			o->index = m->index;
			o->reject_hint = hint;
			o->hint_term = raft_log_term_or0(&r->log, hint);
		}
		return;
	}
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		uint64_t idx = m->index + 1 + i;

		if (e->index != idx)
			break;
		if (raft_log_term(&r->log, idx, &t) == 0) {
			if (t == e->term) {
				last_new = idx;
				continue;
			}
			/* Raft §5.3: drop the conflicting suffix; it can never be committed. */
			raft_log_truncate(&r->log, idx);
			if (r->stable >= idx)
				r->stable = idx - 1;
			raft_conf_recompute(r);
		}
		if (raft_log_append(&r->log, e) != 0)
			break;
		raft_conf_note_append(r, e);
		last_new = idx;
	}
	commit_to(r, m->commit < last_new ? m->commit : last_new);
	o = raft_msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
	if (o)
		o->index = last_new;
}

void raft_recv_append_resp(struct raft *r, const struct raft_message *m)
{
	struct raft_progress *pr;

	if (r->role != RAFT_LEADER)
		return;
	pr = raft_pr_find(r, m->from);
	if (!pr || pr->id == r->id)
		return;
	pr->recent_active = 1;
	if (m->reject) {
		uint64_t hint = m->reject_hint;

		if (pr->state == RAFT_PR_SNAPSHOT || m->index <= pr->match)
			return; /* stale */
		if (pr->state == RAFT_PR_PROBE && m->index != pr->next - 1)
			return; /* answer to an older probe */
		/* Fast back-off: skip every entry of the conflicting term at once. */
		if (m->hint_term)
			hint = raft_log_conflict_by_term(&r->log, hint, m->hint_term);
		become_probe(pr, hint + 1 < m->index ? hint + 1 : m->index);
		raft_send_append(r, pr, true);
		return;
	}
	inflight_free_to(r, pr, m->index);
	if (m->index > pr->match) {
		pr->match = m->index;
		pr->stall = 0;
	}
	if (pr->next < pr->match + 1)
		pr->next = pr->match + 1;
	if (pr->state == RAFT_PR_PROBE) {
		if (m->index >= pr->match)
			become_replicate(pr);
		else
			pr->paused = 0;
	} else if (pr->state == RAFT_PR_SNAPSHOT && pr->match >= pr->pending_snapshot) {
		become_replicate(pr);
	}
	if (raft_maybe_commit(r))
		bcast_commit(r);
	else
		raft_send_append(r, pr, false);
	if (r->role == RAFT_LEADER && pr->id == r->transferee &&
	    pr->match == raft_log_last_index(&r->log))
		(void)raft_msg_new(r, RAFT_MSG_TIMEOUT_NOW, pr->id); /* thesis §3.10 */
}

void raft_recv_heartbeat(struct raft *r, const struct raft_message *m)
{
	struct raft_message *o;

	if (r->role == RAFT_LEADER)
		return;
	follow(r, m);
	commit_to(r, m->commit);
	o = raft_msg_new(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
	if (o)
		o->ctx = m->ctx;
}

void raft_recv_heartbeat_resp(struct raft *r, const struct raft_message *m)
{
	struct raft_progress *pr;

	if (r->role != RAFT_LEADER)
		return;
	pr = raft_pr_find(r, m->from);
	if (!pr || pr->id == r->id)
		return;
	pr->recent_active = 1;
	if (m->ctx > pr->read_ack) {
		pr->read_ack = m->ctx;
		raft_read_acked(r);
	}
	switch (pr->state) {
	case RAFT_PR_PROBE:
		pr->paused = 0; /* the probe or its answer may be lost: try again */
		break;
	case RAFT_PR_REPLICATE:
		if (pr->match < raft_log_last_index(&r->log) && ++pr->stall >= RAFT_STALL_HEARTBEATS)
			become_probe(pr, pr->match + 1);
		break;
	case RAFT_PR_SNAPSHOT:
		/* The snapshot or its answer was lost: resend after about two election timeouts. */
		if (++pr->stall >= 2 * r->cfg.election_ticks / r->cfg.heartbeat_ticks + 1)
			become_probe(pr, pr->match + 1);
		break;
	}
	if (pr->match < raft_log_last_index(&r->log))
		raft_send_append(r, pr, false);
}
