/* cluster: glue between the Raft node runner, the replicated state machine, the API and fulcrumd. */
#ifndef FULCRUM_CONTROLPLANE_CLUSTER_H
#define FULCRUM_CONTROLPLANE_CLUSTER_H

/*
 * CONTRACT
 *
 * A struct cluster owns one node (controlplane/node.h) and the state machine
 * it applies (controlplane/sm.h), and seeds a brand-new cluster from the
 * config file (docs/cluster.md, "Bootstrap"). It does not touch DPDK: the
 * daemon polls cluster_state()'s revision and publishes forwarding state
 * itself (so this file stays in the pure library), then hands the digest of
 * what it published back through cluster_set_forwarding().
 *
 * Threads: everything runs on the thread of the event_base given to
 * cluster_start (fulcrumd's control thread), callbacks included.
 *
 * Errors: 0 or a negative errno value.
 */

#include <stddef.h>
#include <stdint.h>

#include "controlplane/api.h"
#include "controlplane/config.h"
#include "controlplane/node.h"
#include "controlplane/sm.h"
#include "dataplane/fwd.h"

struct event_base;
struct cluster;

/* What the daemon hears about (all optional; ctx passed back). */
struct cluster_hooks {
	void *ctx;
	/* The node stopped on its own (removed, storage error, out of memory): the daemon should
	 * exit; msg says why. Not from inside a node_* call; do not free the cluster in it. */
	void (*stopped)(void *ctx, const char *msg);
	/* Role, term or leader changed (e.g. to call api_notify). */
	void (*role)(void *ctx);
};

/*
 * Start the node described by cfg->cluster (cfg->cluster.enabled must be set;
 * cfg must outlive the cluster: its services seed a new cluster). Restores the
 * state from the data directory (snapshot, then the log, in the first loop
 * turns). *out is the caller's (cluster_free). err gets a one-line reason.
 * -EINVAL, -EBUSY (data_dir in use), -EADDRINUSE, -ENOMEM, or node_start's codes.
 */
int cluster_start(struct event_base *base, const struct fulcrum_config *cfg,
		  const struct cluster_hooks *hooks, struct cluster **out, char *err,
		  size_t errlen);

/*
 * Periodic work (call every few ms from the control loop): on the leader of a
 * cluster whose hash seed is not yet committed, run the bootstrap (a ReadIndex
 * first, so the decision is made on up-to-date state; then the config's members,
 * services, backends and finally the seed, proposed in that order).
 */
void cluster_tick(struct cluster *c);

/* The applied state (valid until the loop next runs). */
const struct sm_state *cluster_state(const struct cluster *c);

/* The node, for node_get_info / node_leader. */
struct node *cluster_node(struct cluster *c);

/* Whether the cluster was seeded (the hash seed is committed): only then is the replicated
 * state worth publishing. */
int cluster_seeded(const struct cluster *c);

/*
 * 64-bit digest of a forwarding state's Maglev tables: revision, then for each
 * service its key (VIP, port, proto) and its table digest (fwd_table_digest:
 * table size and, slot by slot, the uid of the owning backend, 0 for none;
 * taken when the table was made, so this costs O(services)). Two nodes with
 * the same digest send every 5-tuple of every service to the same backend.
 * MACs and counters are left out (they differ between nodes). Pure; any thread.
 */
uint64_t cluster_fwd_digest(const struct fwd_state *st);

/* Record what the daemon published last (shown by /v1/status through the API backend). */
void cluster_set_forwarding(struct cluster *c, uint64_t revision, uint64_t digest);
/* The last recorded pair; 0 if nothing was published yet (then both are 0). */
int cluster_forwarding(const struct cluster *c, uint64_t *revision, uint64_t *digest);

/*
 * The API's view of this node: fills *out with ops over the node and state
 * (propose, ReadIndex, membership, info, forwarding digest); ctx = c.
 */
void cluster_api_backend(struct cluster *c, struct api_backend *out);

/*
 * Write a status file atomically (tmp + rename), one "key=value" per line:
 * id, role, term, leader, commit, applied, revision, seeded, fwd_revision,
 * fwd_digest (16 hex digits), members, services, stopped. For scripts and tests that run without the
 * HTTP API. 0 or a negative errno.
 */
int cluster_write_status(const struct cluster *c, const char *path);

/* Clean stop: node_stop (final sync). Idempotent. Not from inside a node callback. */
void cluster_stop(struct cluster *c);
/* Free (after cluster_stop, or as a crash without it). NULL is a no-op. */
void cluster_free(struct cluster *c);

#endif
