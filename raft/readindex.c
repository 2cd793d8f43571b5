/* ReadIndex (thesis §6.4): linearizable reads confirmed by a heartbeat round instead of a log write. */
#include "raft/raft_internal.h"

#include <errno.h>
#include <stdlib.h>

int raft_read_push(struct raft *r, uint64_t ctx, uint64_t index)
{
	if (r->n_reads == r->cap_reads) {
		size_t cap = r->cap_reads ? r->cap_reads * 2 : 8;
		struct raft_read_state *v = realloc(r->reads, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->reads = v;
		r->cap_reads = cap;
	}
	r->reads[r->n_reads].ctx = ctx;
	r->reads[r->n_reads].index = index;
	r->n_reads++;
	return 0;
}

/* Reads pending when leadership is lost are dropped: the caller times them out and
 * retries on the new leader, exactly as for a lost message. */
void raft_reads_drop(struct raft *r)
{
	r->n_pending_reads = 0;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
	struct raft_pending_read *p;
	uint32_t voters = 0;
	bool self_voter = false;

	if (r->role != RAFT_LEADER)
		return -EPERM;
	/* Until an entry of its term is committed the leader may not know the latest
	 * commit index (thesis §6.4 step 1). */
	if (raft_log_term_or0(&r->log, r->commit) != r->term)
		return -EAGAIN;
	for (size_t i = 0; i < r->n_prs; i++) {
		if (r->prs[i].voter) {
			voters++;
			if (r->prs[i].id == r->id)
				self_voter = true;
		}
	}
	if (voters == 1 && self_voter)
		return raft_read_push(r, ctx, r->commit);
	if (r->n_pending_reads == r->cap_pending_reads) {
		size_t cap = r->cap_pending_reads ? r->cap_pending_reads * 2 : 8;
		struct raft_pending_read *v = realloc(r->pending_reads, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->pending_reads = v;
		r->cap_pending_reads = cap;
	}
	p = &r->pending_reads[r->n_pending_reads++];
	p->ctx = ctx;
	p->index = r->commit;
	p->seq = ++r->read_seq;
	raft_bcast_heartbeat(r);
	return 0;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* A heartbeat round sent after a read was registered and answered by a quorum (the leader
 * included) proves no newer leader existed when the read started. */
void raft_read_acked(struct raft *r)
{
	uint64_t acks[RAFT_MAX_MEMBERS];
	size_t k = 0, done = 0;
	uint64_t confirmed;

	if (!r->n_pending_reads)
		return;
	for (size_t i = 0; i < r->n_prs && k < RAFT_MAX_MEMBERS; i++)
		if (r->prs[i].voter)
			acks[k++] = r->prs[i].id == r->id ? r->read_seq : r->prs[i].read_ack;
	if (k == 0)
		return;
	qsort(acks, k, sizeof(acks[0]), cmp_desc);
	confirmed = acks[raft_quorum(r) - 1];
	while (done < r->n_pending_reads && r->pending_reads[done].seq <= confirmed) {
		if (raft_read_push(r, r->pending_reads[done].ctx, r->pending_reads[done].index) != 0)
			break;
		done++;
	}
	for (size_t i = done; i < r->n_pending_reads; i++)
		r->pending_reads[i - done] = r->pending_reads[i];
	r->n_pending_reads -= done;
}
