/* Snapshots: log compaction on the application's request and InstallSnapshot (Raft §7). */
#include "raft/raft_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int raft_snapshot_set(struct raft_snapshot *dst, const struct raft_snapshot_meta *meta, const void *data,
		      uint32_t len)
{
	uint8_t *copy = NULL;

	if (len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, data, len);
	}
	free(dst->data);
	dst->meta = *meta;
	dst->data = copy;
	dst->len = len;
	return 0;
}

int raft_compact(struct raft *r, uint64_t index, const void *data, uint32_t len, struct raft_snapshot_meta *out)
{
	struct raft_snapshot_meta meta;
	uint64_t upto;
	int rc;

	if (index > r->applied || index <= r->snap.meta.index || (len && !data))
		return -EINVAL;
	meta.index = index;
	if (raft_log_term(&r->log, index, &meta.term) != 0)
		return -EINVAL;
	meta.conf = raft_conf_at(r, index);
	rc = raft_snapshot_set(&r->snap, &meta, data, len);
	if (rc != 0)
		return rc;
	if (out)
		*out = meta;
	/* Keep a few entries behind the snapshot so a follower that is only slightly behind
	 * gets APPENDs instead of a whole snapshot. */
	upto = index > r->cfg.snapshot_trailing ? index - r->cfg.snapshot_trailing : 0;
	if (upto > r->log.offset) {
		r->base_conf = raft_conf_at(r, upto);
		raft_log_compact(&r->log, upto);
	}
	return 0;
}

void raft_recv_snapshot(struct raft *r, const struct raft_message *m)
{
	struct raft_message *o;
	uint64_t t;

	if (r->role == RAFT_LEADER)
		return;
	if (r->role != RAFT_FOLLOWER)
		raft_become_follower(r, m->term, m->from);
	r->leader = m->from;
	r->election_elapsed = 0;
	o = raft_msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
	if (m->snap.index <= r->commit) {
		if (o)
			o->index = r->commit;
		return;
	}
	if (raft_log_term(&r->log, m->snap.index, &t) == 0 && t == m->snap.term) {
		/* We already hold everything the snapshot covers: just learn the commit. */
		r->commit = m->snap.index;
		raft_after_commit(r);
		if (o)
			o->index = r->commit;
		return;
	}
	if (raft_snapshot_set(&r->snap, &m->snap, m->snap_data, m->snap_len) != 0) {
		if (o)
			r->n_msgs--; /* no answer: the leader resends later */
		return;
	}
	raft_log_reset(&r->log, m->snap.index, m->snap.term);
	r->base_conf = m->snap.conf;
	r->conf = m->snap.conf;
	r->conf_index = m->snap.index;
	(void)raft_prs_rebuild(r);
	r->commit = m->snap.index;
	r->applying = m->snap.index;
	r->stable = m->snap.index;
	r->snap_unsent_ready = true;
	if (o)
		o->index = m->snap.index;
}
