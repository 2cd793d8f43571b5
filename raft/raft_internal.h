/* raft/raft_internal: state and helpers shared by the files of the Raft core; not a public API. */
#ifndef FULCRUM_RAFT_RAFT_INTERNAL_H
#define FULCRUM_RAFT_RAFT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/* In-memory log: ents[0] has index offset + 1; offset/offset_term describe the compaction point. */
struct raft_log {
	struct raft_entry *ents;
	size_t n;
	size_t cap;
	uint64_t offset;
	uint64_t offset_term;
};

enum raft_pr_state {
	RAFT_PR_PROBE = 0,     /* one APPEND at a time until the match point is found */
	RAFT_PR_REPLICATE = 1, /* optimistic pipelining, bounded by max_inflight */
	RAFT_PR_SNAPSHOT = 2,  /* a snapshot is on its way; no APPENDs */
};

/* The leader's view of one member (also kept, unused, on followers). */
struct raft_progress {
	raft_id id;
	uint64_t match;
	uint64_t next;
	uint64_t pending_snapshot;
	uint64_t read_ack;      /* highest ReadIndex round this member confirmed */
	uint64_t *inflight;     /* ring of the last index of each unacknowledged APPEND */
	uint32_t in_start;
	uint32_t in_count;
	uint32_t stall;         /* heartbeat answers since the last useful APPEND answer */
	uint8_t state;          /* enum raft_pr_state */
	uint8_t paused;         /* PROBE: an APPEND is outstanding */
	uint8_t recent_active;  /* heard from since the last check-quorum round */
	uint8_t voter;
	uint8_t vote_state;     /* 0 none, 1 granted, 2 rejected (current election) */
};

struct raft_pending_read {
	uint64_t ctx;
	uint64_t index;
	uint64_t seq;
};

struct raft {
	struct raft_config cfg;
	raft_id id;
	uint64_t term;
	raft_id vote;
	uint64_t commit;
	uint64_t applying; /* last index handed out in a ready */
	uint64_t applied;  /* last index the caller confirmed applied (raft_advance) */
	uint64_t stable;   /* last index the caller confirmed persisted */
	enum raft_role role;
	raft_id leader;

	struct raft_log log;
	struct raft_conf conf;      /* in force: latest in the log (thesis §4.1) */
	uint64_t conf_index;        /* index of the entry that set conf (0/snapshot: committed) */
	struct raft_conf base_conf; /* in force at log.offset */

	struct raft_snapshot snap;  /* latest snapshot (ours or received) */
	bool snap_unsent_ready;     /* a received snapshot not yet handed out in a ready */
	bool bcast_pending;         /* proposals since the last ready: append them in one go */

	struct raft_progress *prs;
	size_t n_prs;

	uint32_t election_elapsed;
	uint32_t heartbeat_elapsed;
	uint32_t randomized_timeout;
	uint64_t rng;

	raft_id transferee;
	uint32_t transfer_elapsed;

	uint64_t read_seq;
	struct raft_pending_read *pending_reads;
	size_t n_pending_reads;
	size_t cap_pending_reads;
	struct raft_read_state *reads;
	size_t n_reads;
	size_t cap_reads;

	struct raft_message *msgs;
	size_t n_msgs;
	size_t cap_msgs;

	struct raft_hard_state prev_hs;
	bool ready_out;
	struct raft_snapshot ready_snap;
};

/* log.c */
void raft_log_init(struct raft_log *l, uint64_t offset, uint64_t offset_term);
void raft_log_free(struct raft_log *l);
uint64_t raft_log_last_index(const struct raft_log *l);
uint64_t raft_log_last_term(const struct raft_log *l);
int raft_log_term(const struct raft_log *l, uint64_t index, uint64_t *term);
uint64_t raft_log_term_or0(const struct raft_log *l, uint64_t index);
const struct raft_entry *raft_log_get(const struct raft_log *l, uint64_t index);
int raft_log_append(struct raft_log *l, const struct raft_entry *e);
void raft_log_truncate(struct raft_log *l, uint64_t from);
void raft_log_compact(struct raft_log *l, uint64_t upto);
void raft_log_reset(struct raft_log *l, uint64_t offset, uint64_t offset_term);
uint64_t raft_log_conflict_by_term(const struct raft_log *l, uint64_t index, uint64_t term);
bool raft_log_up_to_date(const struct raft_log *l, uint64_t last_index, uint64_t last_term);
int raft_entry_copy(struct raft_entry *dst, const struct raft_entry *src);
int raft_entries_copy(struct raft_entry **dst, const struct raft_log *l, uint64_t from, uint64_t to);
void raft_entries_free(struct raft_entry *ents, size_t n);

/* message.c */
struct raft_message *raft_msg_new(struct raft *r, uint8_t type, raft_id to);
void raft_msgs_free(struct raft_message *msgs, size_t n);

/* election.c */
void raft_become_follower(struct raft *r, uint64_t term, raft_id leader);
void raft_become_leader(struct raft *r);
void raft_start_election(struct raft *r, bool pre, bool transfer);
void raft_reset_timeout(struct raft *r);
void raft_recv_vote(struct raft *r, const struct raft_message *m);
void raft_recv_vote_resp(struct raft *r, const struct raft_message *m);
bool raft_in_lease(const struct raft *r);

/* replication.c */
void raft_send_append(struct raft *r, struct raft_progress *pr, bool allow_empty);
void raft_bcast_append(struct raft *r);
void raft_bcast_heartbeat(struct raft *r);
bool raft_maybe_commit(struct raft *r);
void raft_recv_append(struct raft *r, const struct raft_message *m);
void raft_recv_append_resp(struct raft *r, const struct raft_message *m);
void raft_recv_heartbeat(struct raft *r, const struct raft_message *m);
void raft_recv_heartbeat_resp(struct raft *r, const struct raft_message *m);
void raft_pr_reset(struct raft *r, struct raft_progress *pr);
int raft_append_local(struct raft *r, uint8_t type, const void *data, uint32_t len);

/* membership.c */
struct raft_progress *raft_pr_find(struct raft *r, raft_id id);
int raft_prs_rebuild(struct raft *r);
bool raft_conf_is_voter(const struct raft_conf *c, raft_id id);
bool raft_conf_is_member(const struct raft_conf *c, raft_id id);
void raft_conf_note_append(struct raft *r, const struct raft_entry *e);
void raft_conf_recompute(struct raft *r);
struct raft_conf raft_conf_at(const struct raft *r, uint64_t index);
uint32_t raft_quorum(const struct raft *r);
void raft_after_commit(struct raft *r);

/* snapshot.c */
void raft_recv_snapshot(struct raft *r, const struct raft_message *m);
int raft_snapshot_set(struct raft_snapshot *dst, const struct raft_snapshot_meta *meta, const void *data,
		      uint32_t len);

/* readindex.c */
void raft_read_acked(struct raft *r);
void raft_reads_drop(struct raft *r);
int raft_read_push(struct raft *r, uint64_t ctx, uint64_t index);

/* raft.c */
uint64_t raft_rand(struct raft *r);

#endif
