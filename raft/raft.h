/* raft/raft: the pure Raft protocol core (election, replication, snapshots, membership, ReadIndex). */
#ifndef FULCRUM_RAFT_RAFT_H
#define FULCRUM_RAFT_RAFT_H

/*
 * CONTRACT (read this first)
 *
 * The core is a deterministic state machine. It has no clock, no randomness
 * source of its own (it runs a PRNG seeded from raft_config.seed), no
 * sockets, files or threads. Everything comes in through calls:
 *
 *   raft_tick()          the caller's periodic timer (e.g. every 10 ms);
 *                        every timeout in struct raft_config is in ticks.
 *   raft_step()          a message received from a peer.
 *   raft_propose()       an application command (leader only).
 *   raft_propose_conf()  a membership change (leader only).
 *   raft_read_index()    a linearizable read request (leader only).
 *   raft_transfer_leadership(), raft_campaign(), raft_compact().
 *
 * and everything goes out through one batch, struct raft_ready:
 *
 *   for (;;) {
 *       ... raft_tick / raft_step / raft_propose ...
 *       if (raft_ready(r, &rd) > 0) {
 *           1. persist, in this order: rd.snapshot (if not NULL), then
 *              rd.entries (first discard every stored entry with index >=
 *              rd.entries[0].index: a new leader may overwrite a suffix),
 *              then rd.hs (if rd.hs_changed); fsync.
 *           2. send rd.msgs (only now: a vote or an append acknowledgement
 *              promises that step 1 is durable).
 *           3. restore the state machine from rd.snapshot (if any), then
 *              apply rd.committed in order; hand rd.reads to their readers
 *              once the state machine has applied up to read.index.
 *           4. raft_advance(r, &rd).
 *       }
 *   }
 *
 * Steps 1-3 may take time (a slow disk): the caller may keep calling
 * raft_tick/raft_step/raft_propose in the meantime; their output waits for
 * the next raft_ready, which returns -EBUSY until the previous batch was
 * advanced. Dropping a batch without advancing (a crash) is allowed: the
 * node then restarts with raft_create() from whatever reached the disk.
 * The leader counts its own log towards a commit only up to what was
 * advanced (persisted), so a crash never loses a committed entry.
 *
 * Threads: one struct raft is used by one thread at a time (no internal
 * locking). Distinct instances are independent. Nothing blocks.
 *
 * Ownership: the core copies everything it keeps from its arguments
 * (messages, entries, snapshot bytes). Everything in a struct raft_ready is
 * owned by the core and stays valid until raft_advance(); copy what must
 * live longer (raft_message_clone()).
 *
 * Errors: functions return 0 (or a count) on success, else a negative errno:
 *   -EPERM  this node is not the leader (see raft_status.leader to redirect)
 *   -EBUSY  a leadership transfer or a configuration change is in progress,
 *           or the previous ready batch has not been advanced
 *   -EAGAIN the leader has not yet committed an entry of its own term (right
 *           after an election); retry after a few ticks
 *   -EINVAL a malformed argument; -ENOMEM allocation failed (the instance is
 *           unchanged and still usable); -ENOENT unknown node.
 *
 * References: "Raft paper" = Ongaro & Ousterhout, In Search of an
 * Understandable Consensus Algorithm (2014); "thesis" = Ongaro, Consensus:
 * Bridging Theory and Practice (2014). See docs/raft.md.
 */

#include <stddef.h>
#include <stdint.h>

#include "raft/types.h"

/* Upper bound on voters and on learners in one configuration (fixed-size wire form). */
#define RAFT_MAX_MEMBERS 16

/* A cluster configuration. Ids are distinct, non-zero, and a node is never both voter and learner. */
struct raft_conf {
	uint32_t n_voters;
	uint32_t n_learners;
	raft_id voters[RAFT_MAX_MEMBERS];
	raft_id learners[RAFT_MAX_MEMBERS];
};

/* Where a snapshot stands in the log, and the configuration in force at that index. */
struct raft_snapshot_meta {
	uint64_t index;
	uint64_t term;
	struct raft_conf conf;
};

/* A snapshot: opaque application bytes taken at meta.index. */
struct raft_snapshot {
	struct raft_snapshot_meta meta;
	uint32_t len;
	uint8_t *data;
};

/* Wire message types. Values are part of the wire format: never renumber. */
enum raft_msg_type {
	RAFT_MSG_APPEND = 1,        /* AppendEntries (Raft §5.3) */
	RAFT_MSG_APPEND_RESP = 2,   /* answer to APPEND and to SNAPSHOT */
	RAFT_MSG_VOTE = 3,          /* RequestVote (Raft §5.2) */
	RAFT_MSG_VOTE_RESP = 4,
	RAFT_MSG_PREVOTE = 5,       /* pre-vote (thesis §9.6): term is the term the sender would use */
	RAFT_MSG_PREVOTE_RESP = 6,  /* term is the requested term when granted */
	RAFT_MSG_HEARTBEAT = 7,     /* leader liveness + commit + ReadIndex round */
	RAFT_MSG_HEARTBEAT_RESP = 8,
	RAFT_MSG_SNAPSHOT = 9,      /* InstallSnapshot (Raft §7), whole snapshot in one message */
	RAFT_MSG_TIMEOUT_NOW = 10,  /* leadership transfer: campaign now (thesis §3.10) */
};

/* raft_message.flags bits. */
enum raft_msg_flag {
	/* VOTE sent by a campaign started by TIMEOUT_NOW: overrides the leader lease (thesis §3.10, §4.2.3). */
	RAFT_MSGF_TRANSFER = 1,
};

/*
 * One message. Plain data: fixed-size fields, then an array of entries and
 * optional snapshot bytes. Fields a type does not use are zero.
 *
 *  field       APPEND          APPEND_RESP              VOTE/PREVOTE     *_RESP   HEARTBEAT(_RESP)  SNAPSHOT
 *  log_term    term of prev    -                        last log term    -        -                 -
 *  index       prev index      accept: last index now   last log index   -        -                 -
 *                              matched; reject: the
 *                              prev index refused
 *  commit      leader commit   -                        -                -        leader commit     -
 *  reject      -               1 = log did not match    -                1 = denied -               -
 *  reject_hint -               reject: largest index <= prev index whose term <= prev term (or last index)
 *  hint_term   -               term of reject_hint
 *  ctx         -               -                        -                -        ReadIndex round   -
 *  entries     new entries     -                        -                -        -                 -
 *  snap        -               -                        -                -        -                 meta
 *  snap_data   -               -                        -                -        -                 bytes
 */
struct raft_message {
	uint8_t type;  /* enum raft_msg_type */
	uint8_t reject;
	uint8_t flags; /* enum raft_msg_flag bits */
	raft_id from;
	raft_id to;
	uint64_t term;
	uint64_t log_term;
	uint64_t index;
	uint64_t commit;
	uint64_t reject_hint;
	uint64_t hint_term;
	uint64_t ctx;
	uint32_t n_entries;
	struct raft_entry *entries;
	struct raft_snapshot_meta snap;
	uint32_t snap_len;
	uint8_t *snap_data;
};

enum raft_role {
	RAFT_FOLLOWER = 0,
	RAFT_PRECANDIDATE = 1,
	RAFT_CANDIDATE = 2,
	RAFT_LEADER = 3,
};

/* Membership operations, one server at a time (thesis §4.1, §4.2.1). */
enum raft_conf_op {
	RAFT_CONF_ADD_LEARNER = 1, /* add a non-voting member that receives the log */
	RAFT_CONF_PROMOTE = 2,     /* learner -> voter (only once it has caught up) */
	RAFT_CONF_REMOVE = 3,      /* remove a voter or a learner (may be the leader itself) */
};

struct raft_config {
	raft_id id;
	uint32_t election_ticks;   /* minimum election timeout; each timeout is drawn from [e, 2e) */
	uint32_t heartbeat_ticks;  /* leader heartbeat period; must be < election_ticks */
	uint32_t max_msg_entries;  /* batching: at most this many entries per APPEND (>= 1) */
	uint32_t max_msg_bytes;    /* ... and about this many payload bytes (one entry always fits) */
	uint32_t max_inflight;     /* pipelining: unacknowledged APPENDs per follower (>= 1) */
	uint32_t snapshot_trailing;/* raft_compact keeps this many entries before the snapshot index */
	uint8_t pre_vote;          /* 1: pre-vote before every election (thesis §9.6) */
	uint8_t check_quorum;      /* 1: leader steps down without a quorum; leader lease for votes (thesis §6.2, §4.2.3) */
	uint64_t seed;             /* seeds the election-timeout PRNG; use a different seed per node */
};

/* What the node restarts from (all zero + a bootstrap conf for a brand new cluster). */
struct raft_restore {
	struct raft_hard_state hs;
	/* snap.meta.index == 0: no snapshot; snap.meta.conf is then the bootstrap configuration
	 * (empty for a node that will join an existing cluster). snap.data may be NULL. */
	struct raft_snapshot snap;
	const struct raft_entry *entries; /* contiguous, starting at snap.meta.index + 1 */
	size_t n_entries;
	uint64_t applied; /* highest index the state machine already reflects (>= snap.meta.index) */
};

/* A linearizable read is ready: answer it once the state machine applied up to index. */
struct raft_read_state {
	uint64_t ctx;
	uint64_t index;
};

/* One batch of output. See the CONTRACT at the top for what to do with it. */
struct raft_ready {
	int hs_changed;
	struct raft_hard_state hs;
	const struct raft_snapshot *snapshot; /* a snapshot received from the leader, or NULL */
	struct raft_entry *entries;           /* to persist */
	size_t n_entries;
	struct raft_message *msgs;            /* to send after persisting */
	size_t n_msgs;
	struct raft_entry *committed;         /* to apply, in order */
	size_t n_committed;
	struct raft_read_state *reads;
	size_t n_reads;
	/* informational: state at the time of raft_ready */
	enum raft_role role;
	raft_id leader;
	uint64_t term;
	/* private to the core */
	uint64_t priv_last_index;
	uint64_t priv_last_term;
	uint64_t priv_applied;
	uint64_t priv_snap_index;
};

/* A point-in-time view, for operators, tests and the simulation checker. */
struct raft_status {
	raft_id id;
	enum raft_role role;
	uint64_t term;
	raft_id vote;
	raft_id leader;       /* RAFT_ID_NONE if unknown */
	uint64_t commit;
	uint64_t applied;
	uint64_t first_index; /* first index still in the in-memory log */
	uint64_t last_index;
	uint64_t last_term;
	uint64_t snap_index;  /* latest snapshot (compaction point) */
	uint64_t snap_term;
	raft_id transferee;   /* leadership transfer target in progress, or RAFT_ID_NONE */
	struct raft_conf conf; /* configuration in force (latest appended, thesis §4.1) */
};

struct raft;

/* Fills *cfg with the defaults for a 10 ms tick: election 15 ticks (150-300 ms), heartbeat 5 (50 ms),
 * 64 entries / 1 MiB per message, 32 in flight, pre-vote and check-quorum on. Any thread. */
void raft_config_default(struct raft_config *cfg, raft_id id, uint64_t seed);

/*
 * Creates a node from its durable state. *out is owned by the caller (raft_destroy).
 * The committed entries after st->applied are delivered again by the first ready.
 * -EINVAL: bad config (id 0, heartbeat >= election, zero limits) or inconsistent restore
 * (entries not contiguous after the snapshot, commit beyond the log); -ENOMEM.
 */
int raft_create(const struct raft_config *cfg, const struct raft_restore *st, struct raft **out);

/* Frees the node and everything it owns. An unadvanced ready is owned by the caller's struct:
 * to drop it (shutdown, simulated crash) call raft_advance() first, then raft_destroy().
 * NULL is a no-op. */
void raft_destroy(struct raft *r);

/* Advances logical time by one tick: election timeout, heartbeats, check-quorum, transfer timeout. */
void raft_tick(struct raft *r);

/*
 * Processes one message from a peer (the core copies what it keeps).
 * -EINVAL: m->to is not this node or the message is malformed (ignored);
 * -ENOMEM. Stale or unexpected messages are ignored and return 0.
 */
int raft_step(struct raft *r, const struct raft_message *m);

/*
 * Appends an application command to the leader's log. *index (optional) gets its index; the
 * command is done when an entry with that index *and the same term* is applied (a new
 * leader may replace it). -EPERM not leader; -EBUSY leadership transfer in progress; -ENOMEM.
 */
int raft_propose(struct raft *r, const void *data, uint32_t len, uint64_t *index);

/*
 * Proposes one membership change (thesis §4.1: takes effect when appended). At most one
 * uncommitted configuration entry exists at a time, and not before the leader committed an
 * entry of its term (the fix to single-server changes, Ongaro, raft-dev 2015).
 * -EPERM not leader; -EAGAIN nothing of this term committed yet; -EBUSY another change is
 * uncommitted or a transfer runs; -ENOENT node unknown (PROMOTE/REMOVE); -EEXIST already a
 * member (ADD_LEARNER) or already a voter (PROMOTE); -EINPROGRESS the learner has not caught up
 * (PROMOTE); -ENOSPC configuration full; -EINVAL bad op or id.
 */
int raft_propose_conf(struct raft *r, enum raft_conf_op op, raft_id node, uint64_t *index);

/*
 * ReadIndex (thesis §6.4): records the commit index and confirms leadership with a heartbeat
 * round; a raft_read_state{ctx, index} comes out in a later ready once a quorum answered.
 * A single-voter cluster answers in the next ready. -EPERM not leader; -EAGAIN no entry of
 * this term committed yet; -ENOMEM.
 */
int raft_read_index(struct raft *r, uint64_t ctx);

/*
 * Leadership transfer (thesis §3.10): stops accepting proposals, brings target up to date and
 * sends it TIMEOUT_NOW. Gives up after one election timeout. -EPERM not leader; -ENOENT target
 * is not a voter; -EINVAL target is this node; -EBUSY a transfer is already running.
 */
int raft_transfer_leadership(struct raft *r, raft_id target);

/* Starts an election now (still through pre-vote if enabled). -EPERM if this node is not a voter. */
int raft_campaign(struct raft *r);

/*
 * The application took a snapshot of its state at index (<= applied): the core keeps a copy
 * of the bytes (to send to followers that fell behind), fills *meta (optional) with the
 * term and the configuration at index, and drops in-memory entries up to
 * index - snapshot_trailing. The caller then persists meta + bytes atomically and may drop
 * stored entries <= index (on restart they come back as raft_restore.snap).
 * -EINVAL index beyond applied, not newer than the current snapshot, or not in the log; -ENOMEM.
 */
int raft_compact(struct raft *r, uint64_t index, const void *data, uint32_t len, struct raft_snapshot_meta *meta);

/* Collects the next batch: 1 if *rd has work, 0 if nothing to do (rd untouched), -EBUSY if the
 * previous batch has not been advanced, -ENOMEM. */
int raft_ready(struct raft *r, struct raft_ready *rd);

/* The caller finished the batch (persisted, sent, applied). Frees its contents. */
void raft_advance(struct raft *r, struct raft_ready *rd);

/* Fills *st. Any time, same thread as the other calls. */
void raft_get_status(const struct raft *r, struct raft_status *st);

/* Looks up entry index in the in-memory log (introspection for tests and the checker; valid
 * until the next call that changes the node). -ENOENT if compacted away or beyond the end. */
int raft_entry_at(const struct raft *r, uint64_t index, const struct raft_entry **e);

/* Encoding of RAFT_ENTRY_CONF payloads (the whole new configuration, little-endian). encode
 * returns the bytes written or -ENOSPC; decode returns 0 or -EINVAL. Any thread. */
int raft_conf_encode(const struct raft_conf *c, uint8_t *buf, size_t cap);
int raft_conf_decode(struct raft_conf *c, const uint8_t *buf, size_t len);

/* Deep copy of a message (entries, their data, snapshot bytes); dst freed with raft_message_free.
 * -ENOMEM leaves dst zeroed. Any thread. */
int raft_message_clone(struct raft_message *dst, const struct raft_message *src);
void raft_message_free(struct raft_message *m);
const char *raft_msg_type_name(unsigned type);
const char *raft_role_name(enum raft_role role);

/*
 * TEST ONLY. The simulation sets this to break one rule on purpose, to prove its checker
 * catches the bug. Production code never touches it; it must stay RAFT_MUT_NONE.
 */
enum raft_mutation {
	RAFT_MUT_NONE = 0,
	RAFT_MUT_DOUBLE_VOTE = 1,    /* grant a vote to anyone, even after voting in this term */
	RAFT_MUT_OLD_TERM_COMMIT = 2,/* commit by counting replicas of any entry, not only current-term (§5.4.2) */
};
extern int raft_test_mutation;

#endif
