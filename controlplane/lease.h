/* lease: the leader's in-memory lease deadlines (keepalives are not logged; expiries are). */
#ifndef FULCRUM_CONTROLPLANE_LEASE_H
#define FULCRUM_CONTROLPLANE_LEASE_H

#include <stdint.h>

#include "controlplane/sm.h"

/*
 * Only the leader uses a tracker. Keepalives reset a lease's deadline in
 * memory; when a deadline passes, the leader proposes SM_CMD_LEASE_EXPIRE
 * naming each lease with the `renewed` revision it saw (docs/state-machine.md
 * "Leases"), so a late or duplicate expiry is harmless.
 *
 * Pure: no clock; every call takes the time (ms, any monotonic origin). The
 * tracker mirrors the set of leases in the replicated state through
 * lease_sync() and never changes that state itself.
 *
 * Threads: a tracker belongs to one thread (the control loop). Not
 * thread-safe.
 *
 * After this node becomes leader (a new term), call lease_reset(): every
 * lease gets a fresh full TTL from now before anything may expire (issue 5
 * §4), so a failover never deregisters healthy backends.
 */

struct lease_tracker;

/* New empty tracker, or NULL on ENOMEM. Caller frees with lease_tracker_free. */
struct lease_tracker *lease_tracker_new(void);
void lease_tracker_free(struct lease_tracker *t); /* NULL is fine */

/*
 * Forget everything and track every lease of st with deadline now + ttl (no
 * lease pending expiry). 0 or -ENOMEM (the tracker is then empty: call again).
 */
int lease_reset(struct lease_tracker *t, const struct sm_state *st, uint64_t now_ms);

/*
 * Mirror st after entries were applied: leases new to the tracker get
 * now + ttl; leases gone from st are dropped; a lease whose `renewed`
 * revision changed (a logged renewal) gets now + its ttl and is no longer
 * pending expiry. Cost O(leases). 0 or -ENOMEM (tracker unchanged).
 */
int lease_sync(struct lease_tracker *t, const struct sm_state *st, uint64_t now_ms);

enum lease_ka {
	LEASE_KA_OK = 0,	/* deadline restarted at now + ttl */
	LEASE_KA_NOT_FOUND = 1, /* not tracked (expired, revoked, never existed) */
	LEASE_KA_RENEW = 2,	/* an expiry is in flight: the caller must log a renewal
				   (SM_CMD_LEASE_GRANT with the id) to keep the lease */
};

/* A keepalive for lease id at now. *ttl_ms (may be NULL) gets the lease's TTL. */
enum lease_ka lease_keepalive(struct lease_tracker *t, uint64_t id, uint64_t now_ms,
			      uint32_t *ttl_ms);

/*
 * Leases whose deadline is <= now and that are not already pending: up to
 * cap refs (id, renewed) written to out, in id order, and marked pending (not
 * returned again until lease_expire_failed() or a sync that shows a renewal).
 * Returns the count.
 */
uint32_t lease_collect_expired(struct lease_tracker *t, uint64_t now_ms, struct sm_lease_ref *out,
			       uint32_t cap);

/* The expiry proposal of these refs failed (not leader, dropped): unmark them, so a later
 * lease_collect_expired() returns them again. Unknown ids are ignored. */
void lease_expire_failed(struct lease_tracker *t, const struct sm_lease_ref *refs, uint32_t n);

/* Stop tracking id at once (revoked through the API). */
void lease_forget(struct lease_tracker *t, uint64_t id);

/* Earliest deadline of a lease not pending, or UINT64_MAX if none. */
uint64_t lease_next_deadline(const struct lease_tracker *t);

/* Number of leases tracked. */
uint32_t lease_count(const struct lease_tracker *t);

#endif
