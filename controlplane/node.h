/* controlplane/node: runs one Raft member (core + durable storage + TCP transport) on a libevent loop. */
#ifndef FULCRUM_CONTROLPLANE_NODE_H
#define FULCRUM_CONTROLPLANE_NODE_H

/*
 * CONTRACT
 *
 * Threads: a struct node lives on one event_base. Every node_* call, and every
 * application callback, runs on the thread that runs that base's loop.
 * Callbacks are never called from inside a node_* call: they run from the
 * loop (the runner's tick timer or its zero-timeout "ready" event), so a
 * callback may call node_propose/node_read_index/... but must NOT call
 * node_stop() or node_free() (defer those to a later event).
 *
 * The ready loop (raft/raft.h CONTRACT, docs/node.md): persist (snapshot,
 * truncate + append, hard state, ONE raft_storage_sync per batch), then send,
 * then apply committed entries in order, then answer reads, then
 * raft_advance. It runs after every tick and, coalesced through one
 * zero-timeout event, after received messages and local requests, so a burst
 * of messages shares one fsync.
 *
 * Errors: functions return 0 or a negative errno value. Request completions
 * are reported through a callback with an enum node_rc.
 */

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"
#include "raft/transport.h"

struct event_base;
struct node;

/* A peer's Raft address ("127.0.0.1:7001", numeric; NULL: ask node_app.resolve). */
struct node_peer {
	raft_id id;
	const char *addr;
};

/* Node configuration. Zero fields take the default given in brackets. The strings and the peers
 * array are copied by node_start(). */
struct node_config {
	raft_id id;		/* this node, non-zero */
	uint64_t cluster_id;	/* handshake check between peers */
	const char *data_dir;	/* Raft storage directory (created if missing) */
	const char *raft_listen; /* "ip:port" to listen on (port 0: any; see node_info.listen) */
	/* Every other node this node starts out knowing, with its address. With bootstrap set,
	 * self + these are the initial voters of a brand-new cluster (every initial node must be
	 * given the same set). Without bootstrap they are only addresses: a node joining an
	 * existing cluster lists the current members so that it accepts their connections. */
	const struct node_peer *peers;
	size_t n_peers;
	int bootstrap;
	uint32_t tick_ms;	  /* [10] */
	uint32_t heartbeat_ms;	  /* [50] */
	uint32_t election_min_ms; /* [150]; the core draws each timeout from [min, 2*min) */
	uint32_t election_max_ms; /* [2*min]; must equal 2*min (the core's fixed spread), else -EINVAL */
	uint64_t snapshot_every;  /* take a snapshot every this many applied entries [10000] */
	uint32_t snapshot_trailing; /* entries kept in memory behind a snapshot [64] */
	uint32_t request_timeout_ms; /* ReadIndex give-up time [2000] */
	uint64_t seed;		     /* election PRNG and transport jitter [id] */
	uint64_t segment_size;	     /* storage segment size [RAFT_STORAGE_DEFAULT_SEGMENT] */
	const struct raft_transport_opts *transport; /* NULL: defaults, seeded from seed */
};

/* How a request ended. */
enum node_rc {
	NODE_OK = 0,		  /* committed and applied locally (proposal) / safe to read (read) */
	NODE_UNKNOWN_OUTCOME = 1, /* leadership lost before apply: the entry may still commit */
	NODE_DROPPED = 2,	  /* the entry was replaced by another leader's: it never commits */
	NODE_LOST_LEADERSHIP = 3, /* read: leadership lost before the read was confirmed */
	NODE_TIMEOUT = 4,	  /* read: not confirmed within request_timeout_ms */
	NODE_STOPPED = 5,	  /* the node stopped (node_stop, node_free, removal, storage error) */
};

/* Completion of node_propose / node_add_learner / node_promote / node_remove / node_read_index. */
struct node_result {
	enum node_rc rc;
	uint64_t index;	 /* log index of the entry (proposals), read index (reads) */
	uint64_t term;	 /* term the entry was proposed in */
	int app_result;	 /* what app.apply returned for the entry (NODE_OK proposals only) */
	raft_id leader;	 /* leader known when the request ended (a redirect hint), or 0 */
};

typedef void (*node_done_fn)(void *ctx, const struct node_result *res);

/* Why the node stopped on its own (node_app.stopped). */
enum node_stop_reason {
	NODE_STOP_REMOVED = 1,	     /* a committed configuration no longer contains this node */
	NODE_STOP_STORAGE_ERROR = 2, /* a write or fsync failed: state on disk unknown, restart */
	NODE_STOP_INTERNAL = 3,	     /* out of memory or a core error that cannot be retried */
};

/*
 * The application (replicated state machine). ctx is passed back unchanged.
 *  apply     required. Called once per committed entry, in log order, for every entry type
 *            (NORMAL: a command; NOOP: nothing to do; CONF: the runner already handled it,
 *            data is raft_conf_encode bytes). Must be deterministic: the same log gives the
 *            same state on every node. The return value is the command's result, handed to
 *            the proposer's callback (it is not an error of the runner).
 *  snapshot  required. Serialize the state as of the last applied entry into a malloc'ed
 *            buffer (*data, *len; the runner frees it). Return 0 or a negative errno (the
 *            snapshot is then skipped and retried after the next snapshot_every entries).
 *  restore   required. Replace the whole state by a snapshot image taken at index
 *            (at start-up and when the leader sends a snapshot). 0 or a negative errno (fatal:
 *            the node stops with NODE_STOP_INTERNAL).
 *  resolve   optional. Raft address of member id into buf (the replicated member table);
 *            0 if known, negative if not. Used when a configuration names a node whose
 *            address this runner does not know (see docs/node.md, "Addresses").
 *  stopped   optional. The node stopped on its own; it no longer ticks or answers. The app
 *            calls node_free() later (not from inside this callback).
 *  role      optional. Role, term or known leader changed.
 */
struct node_app {
	void *ctx;
	int (*apply)(void *ctx, uint64_t index, uint8_t type, const void *data, uint32_t len);
	int (*snapshot)(void *ctx, uint8_t **data, size_t *len);
	int (*restore)(void *ctx, uint64_t index, const void *data, size_t len);
	int (*resolve)(void *ctx, raft_id id, char *buf, size_t len);
	void (*stopped)(void *ctx, enum node_stop_reason why, const char *msg);
	void (*role)(void *ctx, enum raft_role role, uint64_t term, raft_id leader);
};

/* One member as seen by this node. */
struct node_member {
	raft_id id;
	int voter;
	char addr[64];		/* "" if unknown */
	int connected;		/* transport connection established (always 1 for self) */
	int64_t last_contact_ms; /* ms since the last message from it; -1 never; 0 for self */
};

/* A snapshot of the node's state for /v1/status and /v1/members. */
struct node_info {
	raft_id id;
	enum raft_role role;
	uint64_t term;
	raft_id leader;
	uint64_t commit;
	uint64_t applied; /* applied by the application */
	uint64_t last_index;
	uint64_t snap_index;
	int stopped;
	char listen[64]; /* bound Raft address */
	uint32_t n_members;
	struct node_member members[2 * RAFT_MAX_MEMBERS];
	/* counters */
	uint64_t ready_batches; /* ready batches processed */
	uint64_t syncs;		/* raft_storage_sync calls that wrote */
	uint64_t snapshots_taken;
	uint64_t snapshots_installed; /* restored from a leader's snapshot (not at start-up) */
};

/*
 * Opens storage in cfg->data_dir, restores the application (app->restore with the stored
 * snapshot, then every committed entry after it through app->apply, in the first ready
 * batches), creates the Raft core, the transport (listening on cfg->raft_listen) and the tick
 * timer. *out is owned by the caller (node_free). err gets a reason on failure.
 * -EINVAL bad config; -EBUSY data_dir is used by another process; -EBADMSG corrupt storage;
 * -EADDRINUSE / other errno for listen failures; -ENOMEM.
 */
int node_start(struct event_base *base, const struct node_config *cfg, const struct node_app *app,
	       struct node **out, char *err, size_t errlen);

/*
 * Proposes an application command (copied). On 0, done is called exactly once later:
 * NODE_OK once the entry is committed and applied here (app_result = apply's return),
 * NODE_UNKNOWN_OUTCOME if leadership was lost first (the entry may still commit: the client
 * must treat it as "maybe"), NODE_DROPPED if a new leader replaced it, NODE_STOPPED.
 * -EPERM not the leader (node_leader() is the redirect hint; done is not called);
 * -EBUSY leadership transfer running; -EINVAL; -ENOMEM; -ESHUTDOWN node stopped.
 */
int node_propose(struct node *n, const void *data, uint32_t len, node_done_fn done, void *ctx);

/*
 * Linearizable read (ReadIndex, thesis §6.4). On 0, done is called exactly once later:
 * NODE_OK when this node's state machine has applied up to res->index (read it now, in the
 * callback), NODE_LOST_LEADERSHIP, NODE_TIMEOUT, NODE_STOPPED. Right after an election the
 * read waits until the leader committed an entry of its term.
 * -EPERM not the leader; -EINVAL; -ENOMEM; -ESHUTDOWN.
 */
int node_read_index(struct node *n, node_done_fn done, void *ctx);

/*
 * Membership (leader only, one change at a time; raft/raft.h raft_propose_conf for codes):
 * add a learner at addr (remembered locally; see docs/node.md for how followers learn it),
 * promote a caught-up learner, remove a member (possibly the leader itself). done (may be
 * NULL) as for node_propose, when the configuration entry is applied here.
 * -EPERM, -EAGAIN, -EBUSY, -ENOENT, -EEXIST, -EINPROGRESS, -ENOSPC, -EINVAL, -ESHUTDOWN.
 */
int node_add_learner(struct node *n, raft_id id, const char *addr, node_done_fn done, void *ctx);
int node_promote(struct node *n, raft_id id, node_done_fn done, void *ctx);
int node_remove(struct node *n, raft_id id, node_done_fn done, void *ctx);

/* Leadership transfer to voter id (thesis §3.10). -EPERM, -ENOENT, -EINVAL, -EBUSY, -ESHUTDOWN. */
int node_transfer(struct node *n, raft_id id);

/* Current leader as this node knows it (0 if none). */
raft_id node_leader(const struct node *n);

/* 1 if this node is the leader now (the cheap form of node_get_info().role). */
int node_is_leader(const struct node *n);

/* Fills *info. Any time, loop thread. */
void node_get_info(const struct node *n, struct node_info *info);

/*
 * Clean shutdown: processes what the core has ready (persist, send, apply), makes storage
 * durable and closes it, closes the transport. Pending requests complete with NODE_STOPPED.
 * The node then only answers node_get_info. Idempotent. Returns 0 or the storage error.
 */
int node_stop(struct node *n);

/*
 * Frees the node. Without node_stop() first this is a crash: nothing pending is processed and
 * storage is closed without a final sync (every batch whose messages were sent is already
 * durable; see docs/node.md). Pending requests complete with NODE_STOPPED. NULL is a no-op.
 * Not from inside a node callback.
 */
void node_free(struct node *n);

const char *node_rc_name(enum node_rc rc);

#endif
