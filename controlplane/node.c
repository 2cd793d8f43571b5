/* controlplane/node: the Raft node runner (core + storage + transport + application on one loop). */
#include "controlplane/node.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "raft/storage.h"

#define ADDR_LEN  64
#define MAX_ADDRS RAFT_TRANSPORT_MAX_PEERS
/* A ready loop hands the rest of its work to a fresh loop turn after this many batches, so
 * one busy node cannot starve the timers and sockets of the same event_base. */
#define READY_BATCHES_PER_TURN 32

struct addr_ent {
	raft_id id;
	char addr[ADDR_LEN];
};

/* A peer currently configured in the transport. */
struct tpeer {
	raft_id id;
	char addr[ADDR_LEN];   /* "" when registered as accept-only */
	uint64_t remove_at;    /* tick at which it leaves the transport, 0 = wanted */
	uint64_t last_contact; /* monotonic ms of the last message from it, 0 = never */
};

/* A request waiting for the log or for a ReadIndex round. */
struct req {
	struct req *next;
	uint64_t index; /* proposals: log index; reads: read index once confirmed */
	uint64_t term;
	uint64_t ctx_id;   /* reads: raft_read_index ctx */
	uint64_t deadline; /* reads: tick */
	int submitted;	   /* reads: accepted by the core */
	int confirmed;	   /* reads: a read state arrived */
	node_done_fn done;
	void *ctx;
};

/*
 * The sync thread: runs raft_storage_sync (the write and the fdatasync of a
 * batch) while the loop goes on receiving messages, proposals and API
 * requests for the next batch (docs/node.md, "The ready loop"). One sync at
 * a time; the loop touches the storage only while none is in flight.
 */
struct syncer {
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int job;  /* guarded by mu: a sync waits for the thread */
	int done; /* guarded by mu: the sync finished with rc */
	int quit; /* guarded by mu */
	int rc;	  /* guarded by mu */
	int efd;  /* eventfd: the thread tells the loop that the sync finished */
	struct event *ev;
};

struct node {
	struct event_base *base;
	struct node_config cfg;
	char *data_dir;
	char *listen;
	char bound[ADDR_LEN];
	struct node_app app;

	struct raft *r;
	struct raft_storage *st;
	struct raft_transport *t;
	struct event *tick_ev;
	struct event *ready_ev;

	uint32_t election_ticks, heartbeat_ticks, timeout_ticks, grace_ticks;
	uint64_t ticks;
	uint64_t applied;   /* last index handed to app.apply (or restored) */
	uint64_t last_snap; /* index of the latest snapshot taken or installed */
	struct raft_conf applied_conf;
	int have_applied_conf;

	struct addr_ent addrs[MAX_ADDRS];
	size_t n_addrs;
	raft_id boot_peers[MAX_ADDRS];
	size_t n_boot_peers;
	struct tpeer tpeers[MAX_ADDRS];
	size_t n_tpeers;

	struct req *props, *props_tail; /* in index order */
	struct req *reads;
	uint64_t next_read_ctx;

	enum raft_role last_role;
	uint64_t last_term;
	raft_id last_leader;

	int stopped;
	int removed;	/* a committed configuration dropped this node: stop after the batch */
	int fatal;	/* storage or core failure: stop after the batch */
	char why[160];
	struct raft_status final; /* status kept after the core is gone */

	uint64_t ready_batches, snapshots_taken, snapshots_installed;
	uint64_t syncs; /* storage syncs, as of the last batch (node_get_info during a sync) */

	struct syncer syncer;
	int sync_busy;		      /* pending_rd is being persisted by the sync thread */
	int no_async;		      /* stopping: persist inline */
	struct raft_ready pending_rd; /* the batch in flight, finished by batch_done */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

const char *node_rc_name(enum node_rc rc)
{
	switch (rc) {
	case NODE_OK:
		return "ok";
	case NODE_UNKNOWN_OUTCOME:
		return "unknown outcome";
	case NODE_DROPPED:
		return "dropped";
	case NODE_LOST_LEADERSHIP:
		return "lost leadership";
	case NODE_TIMEOUT:
		return "timeout";
	case NODE_STOPPED:
		return "stopped";
	}
	return "?";
}

/* ------------------------------------------------------------------ addresses and peers */

static struct addr_ent *addr_find(struct node *n, raft_id id)
{
	for (size_t i = 0; i < n->n_addrs; i++)
		if (n->addrs[i].id == id)
			return &n->addrs[i];
	return NULL;
}

static int addr_set(struct node *n, raft_id id, const char *addr)
{
	struct addr_ent *a = addr_find(n, id);

	if (!addr || strlen(addr) >= ADDR_LEN)
		return -EINVAL;
	if (!a) {
		if (n->n_addrs == MAX_ADDRS)
			return -ENOSPC;
		a = &n->addrs[n->n_addrs++];
		a->id = id;
	}
	snprintf(a->addr, sizeof(a->addr), "%s", addr);
	return 0;
}

/* Locally known address first (config, node_add_learner), then the application's table. */
static int addr_lookup(struct node *n, raft_id id, char *buf, size_t len)
{
	struct addr_ent *a = addr_find(n, id);

	if (a) {
		snprintf(buf, len, "%s", a->addr);
		return 0;
	}
	if (n->app.resolve && n->app.resolve(n->app.ctx, id, buf, len) == 0 && buf[0])
		return 0;
	buf[0] = '\0';
	return -ENOENT;
}

static struct tpeer *tpeer_find(struct node *n, raft_id id)
{
	for (size_t i = 0; i < n->n_tpeers; i++)
		if (n->tpeers[i].id == id)
			return &n->tpeers[i];
	return NULL;
}

/* Registers id with the transport (or refreshes an address learnt late). */
static void tpeer_want(struct node *n, raft_id id)
{
	struct tpeer *p = tpeer_find(n, id);
	char addr[ADDR_LEN];
	int known = addr_lookup(n, id, addr, sizeof(addr)) == 0;

	if (id == n->cfg.id)
		return;
	if (p) {
		p->remove_at = 0;
		if (known && strcmp(addr, p->addr) != 0 &&
		    raft_transport_set_peer(n->t, id, addr) == 0)
			snprintf(p->addr, sizeof(p->addr), "%s", addr);
		return;
	}
	if (n->n_tpeers == MAX_ADDRS)
		return;
	if (raft_transport_set_peer(n->t, id, known ? addr : NULL) != 0)
		return;
	p = &n->tpeers[n->n_tpeers++];
	memset(p, 0, sizeof(*p));
	p->id = id;
	if (known)
		snprintf(p->addr, sizeof(p->addr), "%s", addr);
}

static void conf_members(const struct raft_conf *c, raft_id *ids, size_t *k)
{
	for (uint32_t i = 0; i < c->n_voters; i++)
		ids[(*k)++] = c->voters[i];
	for (uint32_t i = 0; i < c->n_learners; i++)
		ids[(*k)++] = c->learners[i];
}

static int conf_has(const struct raft_conf *c, raft_id id)
{
	for (uint32_t i = 0; i < c->n_voters; i++)
		if (c->voters[i] == id)
			return 1;
	for (uint32_t i = 0; i < c->n_learners; i++)
		if (c->learners[i] == id)
			return 1;
	return 0;
}

/*
 * The transport must know every member of the latest appended configuration (the core sends
 * to them before the entry commits) and of the applied one. Peers that left both are removed
 * only after a grace period: a truncated configuration entry may bring them back, and the
 * farewell APPEND to a removed node must still get out.
 */
static void sync_peers(struct node *n)
{
	raft_id ids[4 * RAFT_MAX_MEMBERS];
	size_t k = 0;
	struct raft_status s;

	raft_get_status(n->r, &s);
	conf_members(&s.conf, ids, &k);
	if (n->have_applied_conf)
		conf_members(&n->applied_conf, ids, &k);
	if (k == 0)
		for (size_t i = 0; i < n->n_boot_peers; i++)
			tpeer_want(n, n->boot_peers[i]);
	for (size_t i = 0; i < k; i++)
		tpeer_want(n, ids[i]);
	for (size_t i = 0; i < n->n_tpeers; i++) {
		struct tpeer *p = &n->tpeers[i];
		int wanted = 0;

		for (size_t j = 0; j < k && !wanted; j++)
			wanted = ids[j] == p->id;
		if (k == 0)
			for (size_t j = 0; j < n->n_boot_peers && !wanted; j++)
				wanted = n->boot_peers[j] == p->id;
		if (wanted)
			continue;
		if (!p->remove_at)
			p->remove_at = n->ticks + n->grace_ticks;
	}
}

static void expire_peers(struct node *n)
{
	for (size_t i = 0; i < n->n_tpeers;) {
		if (n->tpeers[i].remove_at && n->ticks >= n->tpeers[i].remove_at) {
			(void)raft_transport_remove_peer(n->t, n->tpeers[i].id);
			n->tpeers[i] = n->tpeers[--n->n_tpeers];
			continue;
		}
		i++;
	}
}

/* ------------------------------------------------------------------ requests */

static void req_finish(struct req *q, enum node_rc rc, int app_result, raft_id leader)
{
	struct node_result res = {
		.rc = rc, .index = q->index, .term = q->term, .app_result = app_result, .leader = leader};

	if (q->done)
		q->done(q->ctx, &res);
	free(q);
}

static raft_id cur_leader(const struct node *n)
{
	struct raft_status s;

	if (!n->r)
		return RAFT_ID_NONE;
	raft_get_status(n->r, &s);
	return s.leader;
}

static void fail_props(struct node *n, enum node_rc rc)
{
	raft_id leader = cur_leader(n);

	while (n->props) {
		struct req *q = n->props;

		n->props = q->next;
		if (!n->props)
			n->props_tail = NULL;
		req_finish(q, rc, 0, leader);
	}
}

/* Fails reads; with only_unconfirmed, reads whose index a leader already confirmed stay:
 * they remain linearizable once applied, whatever happened to leadership since. */
static void fail_reads(struct node *n, enum node_rc rc, int only_unconfirmed)
{
	raft_id leader = cur_leader(n);
	struct req **pp = &n->reads;

	while (*pp) {
		struct req *q = *pp;

		if (only_unconfirmed && q->confirmed) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		req_finish(q, rc, 0, leader);
	}
}

static void props_push(struct node *n, struct req *q)
{
	struct req **pp = &n->props;

	/* Normally appended at the tail (indexes grow); sorted insert keeps the invariant anyway. */
	if (n->props_tail && n->props_tail->index <= q->index) {
		n->props_tail->next = q;
		n->props_tail = q;
		return;
	}
	while (*pp && (*pp)->index <= q->index)
		pp = &(*pp)->next;
	q->next = *pp;
	*pp = q;
	if (!q->next)
		n->props_tail = q;
}

/* Remember a proposal accepted at index in the current term, to answer it when applied. */
static void props_track(struct node *n, struct req *q, uint64_t index, node_done_fn done,
			void *ctx)
{
	struct raft_status s;

	raft_get_status(n->r, &s);
	q->index = index;
	q->term = s.term;
	q->done = done;
	q->ctx = ctx;
	props_push(n, q);
}

static void schedule_ready(struct node *n)
{
	static const struct timeval zero = {0, 0};

	if (!n->stopped && !evtimer_pending(n->ready_ev, NULL))
		evtimer_add(n->ready_ev, &zero);
}

/* ------------------------------------------------------------------ the ready loop */

/*
 * Step 1 of a batch, up to the sync: the snapshot file (durable when saved),
 * then the log and hard state records (buffered by the storage). *must_sync
 * tells whether the batch needs raft_storage_sync before anything depends on
 * it.
 */
static int persist_stage(struct node *n, const struct raft_ready *rd, bool *must_sync)
{
	int rc;

	if (rd->snapshot) {
		uint8_t conf[8 + 16 * RAFT_MAX_MEMBERS];
		int clen = raft_conf_encode(&rd->snapshot->meta.conf, conf, sizeof(conf));

		if (clen < 0)
			return clen;
		rc = raft_storage_save_snapshot(n->st, rd->snapshot->meta.index, rd->snapshot->meta.term,
						conf, (uint32_t)clen, rd->snapshot->data,
						rd->snapshot->len);
		if (rc)
			return rc;
	}
	if (rd->n_entries) {
		/* A new leader may overwrite a suffix (Raft §5.3): drop it in the same sync. */
		if (rd->entries[0].index <= raft_storage_last_index(n->st)) {
			rc = raft_storage_truncate_suffix(n->st, rd->entries[0].index);
			if (rc)
				return rc;
		}
		rc = raft_storage_append(n->st, rd->entries, rd->n_entries);
		if (rc)
			return rc;
	}
	*must_sync = rd->snapshot != NULL || rd->n_entries > 0;
	if (rd->hs_changed) {
		struct raft_hard_state cur;

		raft_storage_hard_state(n->st, &cur);
		/* term and vote must be durable before anything depends on them */
		*must_sync |= cur.term != rd->hs.term || cur.vote != rd->hs.vote;
		rc = raft_storage_set_hard_state(n->st, &rd->hs);
		if (rc)
			return rc;
	}
	/*
	 * Group commit: one fdatasync for everything this batch carries. A batch
	 * whose only change is the commit index is not synced on its own: the
	 * commit index is volatile state in Raft (§5, Figure 2), a restart learns
	 * it again from the leader, and the record rides along with the next sync
	 * (etcd's MustSync rule). This halves the fsyncs per committed write.
	 */
	return 0;
}

/*
 * The leader stops replicating to a node as soon as it appends the configuration that
 * removes it (thesis §4.1), so the removed node would never learn it was removed. Once the
 * entry is committed, the leader sends it one APPEND carrying exactly that entry: it is what
 * this leader would have sent in its current term, so it is a valid AppendEntries (Raft
 * §5.3); if the removed node's log does not match it simply rejects (see docs/node.md).
 */
static void farewell(struct node *n, raft_id x, const struct raft_entry *e)
{
	struct raft_status s;
	const struct raft_entry *pe;
	struct raft_entry copy = *e;
	struct raft_message m;
	uint64_t prev_term;

	raft_get_status(n->r, &s);
	if (s.role != RAFT_LEADER || e->index == 0)
		return;
	if (e->index - 1 == 0)
		prev_term = 0;
	else if (raft_entry_at(n->r, e->index - 1, &pe) == 0)
		prev_term = pe->term;
	else if (e->index - 1 == s.snap_index)
		prev_term = s.snap_term;
	else
		return;
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_APPEND;
	m.from = n->cfg.id;
	m.to = x;
	m.term = s.term;
	m.log_term = prev_term;
	m.index = e->index - 1;
	m.commit = e->index;
	m.n_entries = 1;
	m.entries = &copy;
	(void)raft_transport_send(n->t, &m);
}

static void apply_conf(struct node *n, const struct raft_entry *e)
{
	struct raft_conf c;
	int was_member;

	if (raft_conf_decode(&c, e->data, e->len) != 0)
		return;
	was_member = n->have_applied_conf && conf_has(&n->applied_conf, n->cfg.id);
	if (n->have_applied_conf) {
		raft_id ids[2 * RAFT_MAX_MEMBERS];
		size_t k = 0;

		conf_members(&n->applied_conf, ids, &k);
		for (size_t i = 0; i < k; i++)
			if (ids[i] != n->cfg.id && !conf_has(&c, ids[i]))
				farewell(n, ids[i], e);
	}
	n->applied_conf = c;
	n->have_applied_conf = 1;
	/* A node that never was a member (it is joining and replays the history) is not removed. */
	if (was_member && !conf_has(&c, n->cfg.id)) {
		n->removed = 1;
		snprintf(n->why, sizeof(n->why), "removed from the configuration at index %llu",
			 (unsigned long long)e->index);
	}
}

static void apply_entry(struct node *n, const struct raft_entry *e)
{
	int res;

	if (e->index <= n->applied)
		return;
	if (e->type == RAFT_ENTRY_CONF)
		apply_conf(n, e);
	res = n->app.apply(n->app.ctx, e->index, e->type, e->data, e->len);
	n->applied = e->index;
	while (n->props && n->props->index <= e->index) {
		struct req *q = n->props;

		n->props = q->next;
		if (!n->props)
			n->props_tail = NULL;
		if (q->index == e->index && q->term == e->term)
			req_finish(q, NODE_OK, res, cur_leader(n));
		else
			/* Another entry holds this index: ours can never commit (Log Matching). */
			req_finish(q, NODE_DROPPED, 0, cur_leader(n));
	}
}

static void install_snapshot(struct node *n, const struct raft_snapshot *snap)
{
	int rc = n->app.restore(n->app.ctx, snap->meta.index, snap->data, snap->len);

	if (rc) {
		n->fatal = NODE_STOP_INTERNAL;
		snprintf(n->why, sizeof(n->why), "application restore failed: %s", strerror(-rc));
		return;
	}
	n->applied = snap->meta.index;
	n->last_snap = snap->meta.index;
	n->applied_conf = snap->meta.conf;
	n->have_applied_conf = 1;
	n->snapshots_installed++;
	/* Every proposal at or below the snapshot was decided without us seeing the entry. */
	while (n->props && n->props->index <= snap->meta.index) {
		struct req *q = n->props;

		n->props = q->next;
		if (!n->props)
			n->props_tail = NULL;
		req_finish(q, NODE_UNKNOWN_OUTCOME, 0, cur_leader(n));
	}
}

static void finish_reads(struct node *n)
{
	struct req **pp = &n->reads;

	while (*pp) {
		struct req *q = *pp;

		if (q->confirmed && q->index <= n->applied) {
			*pp = q->next;
			req_finish(q, NODE_OK, 0, cur_leader(n));
			continue;
		}
		pp = &q->next;
	}
}

/* Reads refused with -EAGAIN (no entry of the term committed yet) are retried here. */
static void submit_reads(struct node *n)
{
	struct req **pp = &n->reads;

	while (*pp) {
		struct req *q = *pp;
		int rc;

		if (q->submitted) {
			pp = &q->next;
			continue;
		}
		rc = raft_read_index(n->r, q->ctx_id);
		if (rc == 0 || rc == -EAGAIN) {
			q->submitted = rc == 0;
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		req_finish(q, NODE_LOST_LEADERSHIP, 0, cur_leader(n));
	}
}

static void note_read_states(struct node *n, const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->n_reads; i++)
		for (struct req *q = n->reads; q; q = q->next)
			if (q->ctx_id == rd->reads[i].ctx && !q->confirmed) {
				q->confirmed = 1;
				q->index = rd->reads[i].index;
			}
}

static void check_role(struct node *n)
{
	struct raft_status s;

	raft_get_status(n->r, &s);
	if (s.role == n->last_role && s.term == n->last_term && s.leader == n->last_leader)
		return;
	if (n->last_role == RAFT_LEADER && (s.role != RAFT_LEADER || s.term != n->last_term)) {
		/* The entries may still be committed by the next leader: say so, never "failed". */
		fail_props(n, NODE_UNKNOWN_OUTCOME);
		fail_reads(n, NODE_LOST_LEADERSHIP, 1);
	}
	n->last_role = s.role;
	n->last_term = s.term;
	n->last_leader = s.leader;
	if (n->app.role)
		n->app.role(n->app.ctx, s.role, s.term, s.leader);
}

static void maybe_snapshot(struct node *n)
{
	struct raft_snapshot_meta meta;
	uint8_t conf[8 + 16 * RAFT_MAX_MEMBERS];
	uint8_t *data = NULL;
	size_t len = 0;
	int clen, rc;

	if (!n->cfg.snapshot_every || n->applied < n->last_snap + n->cfg.snapshot_every)
		return;
	rc = n->app.snapshot(n->app.ctx, &data, &len);
	if (rc || len > UINT32_MAX) {
		free(data);
		n->last_snap = n->applied; /* retry after the next snapshot_every entries */
		return;
	}
	rc = raft_compact(n->r, n->applied, data, (uint32_t)len, &meta);
	if (rc == 0) {
		clen = raft_conf_encode(&meta.conf, conf, sizeof(conf));
		rc = clen < 0 ? clen
			      : raft_storage_save_snapshot(n->st, meta.index, meta.term, conf,
							   (uint32_t)clen, data, len);
		/* Segments wholly below the snapshot are no longer needed for a restart. */
		if (rc == 0)
			rc = raft_storage_compact(n->st, meta.index);
		if (rc == 0)
			n->snapshots_taken++;
	}
	free(data);
	n->last_snap = n->applied;
}

static void stop_internal(struct node *n, enum node_stop_reason why, int notify);

/* Messages only a leader sends, which need nothing of the same batch on disk. */
static int leader_early(const struct raft_message *m)
{
	return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
	       m->type == RAFT_MSG_SNAPSHOT;
}

/*
 * Steps 2-5 of a batch, once step 1 is durable (rc 0) or failed (rc < 0).
 * Returns -1 when the ready loop must stop (storage failure).
 */
static int batch_done(struct node *n, struct raft_ready *rd, int rc)
{
	struct raft_storage_stats ss;

	if (rc) {
		/* Nothing of this batch may leave the node: it is not durable. */
		snprintf(n->why, sizeof(n->why), "storage: %s (%s)", strerror(-rc),
			 raft_storage_errmsg(n->st));
		n->fatal = NODE_STOP_STORAGE_ERROR;
		raft_advance(n->r, rd);
		return -1;
	}
	raft_storage_get_stats(n->st, &ss);
	n->syncs = ss.syncs;
	for (size_t i = 0; i < rd->n_msgs; i++)
		if (!leader_early(&rd->msgs[i]))
			(void)raft_transport_send(n->t, &rd->msgs[i]); /* loss is tolerated */
	if (rd->snapshot)
		install_snapshot(n, rd->snapshot);
	for (size_t i = 0; i < rd->n_committed && !n->fatal; i++)
		apply_entry(n, &rd->committed[i]);
	note_read_states(n, rd);
	raft_advance(n->r, rd);
	finish_reads(n);
	if (!n->fatal && !n->removed)
		maybe_snapshot(n);
	check_role(n);
	submit_reads(n);
	sync_peers(n);
	return 0;
}

static void syncer_submit(struct node *n)
{
	struct syncer *y = &n->syncer;

	n->sync_busy = 1;
	pthread_mutex_lock(&y->mu);
	y->job = 1;
	pthread_cond_signal(&y->cv);
	pthread_mutex_unlock(&y->mu);
}

/* The in-flight sync's result, waiting for it if it is still running. */
static int syncer_wait(struct node *n)
{
	struct syncer *y = &n->syncer;
	uint64_t v;
	int rc;

	pthread_mutex_lock(&y->mu);
	while (!y->done)
		pthread_cond_wait(&y->cv, &y->mu);
	y->done = 0;
	rc = y->rc;
	pthread_mutex_unlock(&y->mu);
	if (read(y->efd, &v, sizeof(v)) < 0) {
		/* already drained: fine */
	}
	n->sync_busy = 0;
	return rc;
}

static void stop_after_batches(struct node *n)
{
	if (n->fatal)
		stop_internal(n, (enum node_stop_reason)n->fatal, 1);
	else if (n->removed)
		stop_internal(n, NODE_STOP_REMOVED, 1);
}

static void run_ready(struct node *n)
{
	int batches = 0;

	/* A batch in flight is finished by on_synced, which runs the loop again. */
	if (n->stopped || n->sync_busy)
		return;
	while (!n->stopped && !n->removed && !n->fatal) {
		struct raft_ready rd;
		bool must_sync = false;
		int rc;

		if (batches == READY_BATCHES_PER_TURN) {
			schedule_ready(n);
			break;
		}
		rc = raft_ready(n->r, &rd);
		if (rc == 0)
			break;
		if (rc < 0) {
			/* -ENOMEM: the core is unchanged; try again on the next tick. */
			break;
		}
		batches++;
		n->ready_batches++;
		/*
		 * A leader may send its entries to followers in parallel with
		 * writing them to its own disk (Raft thesis §10.2.1): it counts
		 * itself towards a commit only once they are durable, which the
		 * core enforces. So the leader's own APPEND/HEARTBEAT/SNAPSHOT
		 * messages go now and the followers' fsyncs overlap the leader's;
		 * everything that depends on this batch being durable (votes,
		 * append responses, anything from a non-leader) waits for
		 * batch_done.
		 */
		for (size_t i = 0; i < rd.n_msgs; i++)
			if (leader_early(&rd.msgs[i]))
				(void)raft_transport_send(n->t, &rd.msgs[i]);
		rc = persist_stage(n, &rd, &must_sync);
		if (rc == 0 && must_sync) {
			if (n->syncer.started && !n->no_async) {
				/*
				 * The sync runs on the sync thread; the loop goes on
				 * stepping messages and taking proposals into the core,
				 * which holds them for the next batch (no new batch
				 * before raft_advance of this one; raft.h's CONTRACT:
				 * "steps 1-3 may take time"). on_synced finishes this
				 * batch, in the same order as here.
				 */
				n->pending_rd = rd;
				syncer_submit(n);
				return;
			}
			rc = raft_storage_sync(n->st);
		}
		if (batch_done(n, &rd, rc) != 0)
			break;
	}
	stop_after_batches(n);
}

static void on_synced(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;
	struct raft_ready rd;
	int rc;

	(void)fd;
	(void)what;
	if (!n->sync_busy || n->stopped)
		return; /* already collected by syncer_wait */
	rc = syncer_wait(n);
	rd = n->pending_rd;
	memset(&n->pending_rd, 0, sizeof(n->pending_rd));
	if (batch_done(n, &rd, rc) == 0)
		run_ready(n);
	else
		stop_after_batches(n);
}

/* Stop the sync thread (no sync in flight any more). */
static void syncer_stop(struct node *n)
{
	struct syncer *y = &n->syncer;

	if (y->started) {
		pthread_mutex_lock(&y->mu);
		y->quit = 1;
		pthread_cond_signal(&y->cv);
		pthread_mutex_unlock(&y->mu);
		pthread_join(y->thread, NULL);
		pthread_cond_destroy(&y->cv);
		pthread_mutex_destroy(&y->mu);
		y->started = 0;
	}
	if (y->ev)
		event_free(y->ev);
	y->ev = NULL;
	if (y->efd >= 0)
		close(y->efd);
	y->efd = -1;
}

static void *syncer_main(void *arg)
{
	struct node *n = arg;
	struct syncer *y = &n->syncer;
	const uint64_t one = 1;

	pthread_mutex_lock(&y->mu);
	for (;;) {
		while (!y->job && !y->quit)
			pthread_cond_wait(&y->cv, &y->mu);
		if (y->quit)
			break;
		y->job = 0;
		pthread_mutex_unlock(&y->mu);
		int rc = raft_storage_sync(n->st);
		pthread_mutex_lock(&y->mu);
		y->rc = rc;
		y->done = 1;
		pthread_cond_broadcast(&y->cv);
		if (write(y->efd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
			/* cannot overflow with one sync in flight */
		}
	}
	pthread_mutex_unlock(&y->mu);
	return NULL;
}

/* Without the thread (any failure here) batches are synced inline, as before. */
static void syncer_start(struct node *n)
{
	struct syncer *y = &n->syncer;

	y->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (y->efd < 0)
		return;
	y->ev = event_new(n->base, y->efd, EV_READ | EV_PERSIST, on_synced, n);
	if (!y->ev || event_add(y->ev, NULL) != 0)
		return;
	if (pthread_mutex_init(&y->mu, NULL) != 0)
		return;
	if (pthread_cond_init(&y->cv, NULL) != 0) {
		pthread_mutex_destroy(&y->mu);
		return;
	}
	if (pthread_create(&y->thread, NULL, syncer_main, n) != 0) {
		pthread_cond_destroy(&y->cv);
		pthread_mutex_destroy(&y->mu);
		return;
	}
	y->started = 1;
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_ready(arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;
	struct req **pp;

	(void)fd;
	(void)what;
	if (n->stopped)
		return;
	n->ticks++;
	raft_tick(n->r);
	pp = &n->reads;
	while (*pp) {
		struct req *q = *pp;

		if (!q->confirmed && n->ticks >= q->deadline) {
			*pp = q->next;
			req_finish(q, NODE_TIMEOUT, 0, cur_leader(n));
			continue;
		}
		pp = &q->next;
	}
	expire_peers(n);
	check_role(n); /* a check-quorum step-down may produce no ready batch */
	/* An address the resolver did not know yet may be known now. */
	for (size_t i = 0; i < n->n_tpeers; i++)
		if (!n->tpeers[i].addr[0]) {
			sync_peers(n);
			break;
		}
	run_ready(n);
}

static void on_message(void *arg, const struct raft_message *m)
{
	struct node *n = arg;
	struct tpeer *p;

	if (n->stopped)
		return;
	p = tpeer_find(n, m->from);
	if (p)
		p->last_contact = mono_ms();
	(void)raft_step(n->r, m); /* copies what it keeps; bad or stale messages are ignored */
	/* Not run_ready() here: every message of this loop turn shares one batch and one fsync. */
	schedule_ready(n);
}

/* ------------------------------------------------------------------ start / stop */

static int check_config(const struct node_config *c, char *err, size_t errlen)
{
	uint32_t tick = c->tick_ms ? c->tick_ms : 10;
	uint32_t emin = c->election_min_ms ? c->election_min_ms : 150;
	uint32_t emax = c->election_max_ms ? c->election_max_ms : 2 * emin;
	uint32_t hb = c->heartbeat_ms ? c->heartbeat_ms : 50;

	if (c->id == RAFT_ID_NONE || !c->data_dir || !c->raft_listen) {
		seterr(err, errlen, "id, data_dir and raft_listen are required");
		return -EINVAL;
	}
	if (emax != 2 * emin) {
		seterr(err, errlen, "election_max_ms must be 2 * election_min_ms (the core draws from [e, 2e))");
		return -EINVAL;
	}
	if (emin / tick < 2 || hb < tick || hb / tick >= emin / tick) {
		seterr(err, errlen, "need tick <= heartbeat < election_min and election_min >= 2 ticks");
		return -EINVAL;
	}
	if (c->n_peers > MAX_ADDRS - 1 || (c->n_peers && !c->peers)) {
		seterr(err, errlen, "too many peers");
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == RAFT_ID_NONE || c->peers[i].id == c->id) {
			seterr(err, errlen, "bad peer %zu", i);
			return -EINVAL;
		}
	if (c->bootstrap && c->n_peers + 1 > RAFT_MAX_MEMBERS) {
		seterr(err, errlen, "too many initial voters");
		return -EINVAL;
	}
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	raft_id x = *(const raft_id *)a, y = *(const raft_id *)b;

	return x < y ? -1 : x > y;
}

/*
 * A brand-new cluster's configuration is the log's first entry (index 1, term 1, committed),
 * written identically by every initial node (voters sorted), so the logs agree at index 1
 * and a restart without a snapshot finds the configuration in the log.
 */
static int bootstrap(struct node *n, struct raft_entry *e, uint8_t *buf, size_t cap,
		     struct raft_hard_state *hs)
{
	struct raft_conf c;
	int len, rc;

	memset(&c, 0, sizeof(c));
	c.voters[c.n_voters++] = n->cfg.id;
	for (size_t i = 0; i < n->n_boot_peers; i++)
		c.voters[c.n_voters++] = n->boot_peers[i];
	qsort(c.voters, c.n_voters, sizeof(c.voters[0]), cmp_id);
	len = raft_conf_encode(&c, buf, cap);
	if (len < 0)
		return len;
	memset(e, 0, sizeof(*e));
	e->term = 1;
	e->index = 1;
	e->type = RAFT_ENTRY_CONF;
	e->len = (uint32_t)len;
	e->data = buf;
	hs->term = 1;
	hs->vote = RAFT_ID_NONE;
	hs->commit = 1;
	rc = raft_storage_append(n->st, e, 1);
	if (rc == 0)
		rc = raft_storage_set_hard_state(n->st, hs);
	if (rc == 0)
		rc = raft_storage_sync(n->st);
	return rc;
}

int node_start(struct event_base *base, const struct node_config *cfg, const struct node_app *app,
	       struct node **out, char *err, size_t errlen)
{
	struct raft_storage_options so = {0};
	struct raft_storage_loaded loaded;
	struct raft_storage_snapshot snap = {0};
	struct raft_restore rs;
	struct raft_config rc_cfg;
	struct raft_transport_opts topts;
	struct raft_entry boot;
	uint8_t bootbuf[8 + 16 * RAFT_MAX_MEMBERS];
	struct timeval tv;
	struct node *n;
	char serr[256] = "";
	int rc;

	*out = NULL;
	memset(&loaded, 0, sizeof(loaded));
	if (!base || !cfg || !app || !app->apply || !app->snapshot || !app->restore) {
		seterr(err, errlen, "base, cfg and the apply/snapshot/restore callbacks are required");
		return -EINVAL;
	}
	rc = check_config(cfg, err, errlen);
	if (rc)
		return rc;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->syncer.efd = -1;
	n->base = base;
	n->cfg = *cfg;
	n->app = *app;
	n->data_dir = strdup(cfg->data_dir);
	n->listen = strdup(cfg->raft_listen);
	n->cfg.peers = NULL;
	n->cfg.n_peers = 0;
	n->cfg.transport = NULL;
	if (!n->data_dir || !n->listen) {
		rc = -ENOMEM;
		goto fail;
	}
	n->cfg.data_dir = n->data_dir;
	n->cfg.raft_listen = n->listen;
	if (!n->cfg.tick_ms)
		n->cfg.tick_ms = 10;
	if (!n->cfg.heartbeat_ms)
		n->cfg.heartbeat_ms = 50;
	if (!n->cfg.election_min_ms)
		n->cfg.election_min_ms = 150;
	n->cfg.election_max_ms = 2 * n->cfg.election_min_ms;
	if (!n->cfg.snapshot_every)
		n->cfg.snapshot_every = 10000;
	if (!n->cfg.request_timeout_ms)
		n->cfg.request_timeout_ms = 2000;
	if (!n->cfg.seed)
		n->cfg.seed = cfg->id;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		if (!cfg->peers[i].addr)
			continue; /* resolved through app->resolve */
		rc = addr_set(n, cfg->peers[i].id, cfg->peers[i].addr);
		if (rc) {
			seterr(err, errlen, "peer %llu: bad address", (unsigned long long)cfg->peers[i].id);
			goto fail;
		}
	}
	/* The configured peers' ids form a joining node's initial transport peer set. */
	for (size_t i = 0; i < cfg->n_peers; i++)
		n->boot_peers[i] = cfg->peers[i].id;
	n->n_boot_peers = cfg->n_peers;
	n->election_ticks = n->cfg.election_min_ms / n->cfg.tick_ms;
	n->heartbeat_ticks = n->cfg.heartbeat_ms / n->cfg.tick_ms;
	n->timeout_ticks = (n->cfg.request_timeout_ms + n->cfg.tick_ms - 1) / n->cfg.tick_ms;
	n->grace_ticks = 4 * n->election_ticks;

	so.segment_size = cfg->segment_size;
	rc = raft_storage_open(n->data_dir, &so, &n->st, &loaded, serr, sizeof(serr));
	if (rc) {
		seterr(err, errlen, "storage %s: %s", n->data_dir, serr);
		goto fail;
	}
	memset(&rs, 0, sizeof(rs));
	rs.hs = loaded.hs;
	if (loaded.snap_index) {
		rc = raft_storage_load_snapshot(n->st, &snap);
		if (rc == 0 && (snap.data_len > UINT32_MAX ||
				raft_conf_decode(&rs.snap.meta.conf, snap.conf, snap.conf_len) != 0))
			rc = -EBADMSG;
		if (rc) {
			seterr(err, errlen, "snapshot in %s: %s", n->data_dir, strerror(-rc));
			goto fail;
		}
		rs.snap.meta.index = snap.index;
		rs.snap.meta.term = snap.term;
		rs.snap.data = snap.data;
		rs.snap.len = (uint32_t)snap.data_len;
		rc = app->restore(app->ctx, snap.index, snap.data, snap.data_len);
		if (rc) {
			seterr(err, errlen, "application restore at %llu failed: %s",
			       (unsigned long long)snap.index, strerror(-rc));
			goto fail;
		}
		n->applied = n->last_snap = snap.index;
		n->applied_conf = rs.snap.meta.conf;
		n->have_applied_conf = 1;
	}
	rs.entries = loaded.entries;
	rs.n_entries = loaded.n_entries;
	rs.applied = loaded.snap_index;
	if (cfg->bootstrap && !loaded.snap_index && !loaded.n_entries && loaded.hs.term == 0) {
		rc = bootstrap(n, &boot, bootbuf, sizeof(bootbuf), &rs.hs);
		if (rc) {
			seterr(err, errlen, "bootstrap: %s", raft_storage_errmsg(n->st));
			goto fail;
		}
		rs.entries = &boot;
		rs.n_entries = 1;
	}
	raft_config_default(&rc_cfg, cfg->id, n->cfg.seed);
	rc_cfg.election_ticks = n->election_ticks;
	rc_cfg.heartbeat_ticks = n->heartbeat_ticks;
	if (cfg->snapshot_trailing)
		rc_cfg.snapshot_trailing = cfg->snapshot_trailing;
	rc = raft_create(&rc_cfg, &rs, &n->r);
	if (rc) {
		seterr(err, errlen, "raft core: %s", strerror(-rc));
		goto fail;
	}
	raft_storage_snapshot_free(&snap);
	raft_storage_loaded_free(&loaded);

	if (cfg->transport)
		topts = *cfg->transport;
	else
		raft_transport_opts_default(&topts, n->cfg.seed);
	n->t = raft_transport_new(base, cfg->id, cfg->cluster_id, n->listen, &topts, on_message, n,
				  serr, sizeof(serr));
	if (!n->t) {
		seterr(err, errlen, "transport: %s", serr);
		rc = -EADDRINUSE;
		goto fail;
	}
	(void)raft_transport_local_addr(n->t, n->bound, sizeof(n->bound));
	n->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, n);
	n->ready_ev = evtimer_new(base, on_ready, n);
	if (!n->tick_ev || !n->ready_ev) {
		rc = -ENOMEM;
		goto fail;
	}
	tv.tv_sec = n->cfg.tick_ms / 1000;
	tv.tv_usec = (n->cfg.tick_ms % 1000) * 1000;
	event_add(n->tick_ev, &tv);
	syncer_start(n);
	n->last_role = RAFT_FOLLOWER;
	sync_peers(n);
	/* The first batch re-applies the committed entries after the snapshot. */
	schedule_ready(n);
	*out = n;
	return 0;
fail:
	raft_storage_snapshot_free(&snap);
	raft_storage_loaded_free(&loaded);
	node_free(n); /* closes whatever was opened (storage first: nothing unsynced to keep) */
	return rc;
}

static void stop_internal(struct node *n, enum node_stop_reason why, int notify)
{
	if (n->stopped)
		return;
	n->stopped = 1;
	if (n->tick_ev)
		event_del(n->tick_ev);
	if (n->ready_ev)
		event_del(n->ready_ev);
	if (n->r) {
		raft_get_status(n->r, &n->final);
		n->final.applied = n->applied;
	}
	fail_props(n, NODE_STOPPED);
	fail_reads(n, NODE_STOPPED, 0);
	if (n->sync_busy) {
		/* Only reached through node_stop, which finished the batch in flight. */
		(void)syncer_wait(n);
		raft_advance(n->r, &n->pending_rd);
	}
	syncer_stop(n);
	if (n->st) {
		(void)raft_storage_sync(n->st);
		raft_storage_close(n->st);
		n->st = NULL;
	}
	raft_transport_free(n->t);
	n->t = NULL;
	raft_destroy(n->r);
	n->r = NULL;
	if (notify && n->app.stopped)
		n->app.stopped(n->app.ctx, why, n->why);
}

int node_stop(struct node *n)
{
	int rc = 0;

	if (!n || n->stopped)
		return 0;
	/* From here on batches are persisted inline; the one in flight is finished first. */
	n->no_async = 1;
	if (n->sync_busy) {
		struct raft_ready rd;
		int src = syncer_wait(n);

		rd = n->pending_rd;
		memset(&n->pending_rd, 0, sizeof(n->pending_rd));
		if (batch_done(n, &rd, src) != 0) {
			stop_after_batches(n);
			return 0;
		}
	}
	run_ready(n);
	if (n->stopped)
		return 0;
	if (n->st)
		rc = raft_storage_sync(n->st);
	stop_internal(n, NODE_STOP_INTERNAL, 0);
	return rc;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	if (!n->stopped) {
		/* A crash: whatever was not synced is lost, exactly as on power failure. */
		n->stopped = 1;
		if (n->r) {
			raft_get_status(n->r, &n->final);
			n->final.applied = n->applied;
		}
		fail_props(n, NODE_STOPPED);
		fail_reads(n, NODE_STOPPED, 0);
		if (n->sync_busy) {
			/* The thread still uses the storage: let it finish, then drop the
			 * batch as a crash would (nothing of it is sent or applied). */
			(void)syncer_wait(n);
			raft_advance(n->r, &n->pending_rd);
		}
		syncer_stop(n);
		raft_storage_close(n->st);
		raft_transport_free(n->t);
		raft_destroy(n->r);
	} else {
		fail_props(n, NODE_STOPPED);
		fail_reads(n, NODE_STOPPED, 0);
	}
	if (n->tick_ev)
		event_free(n->tick_ev);
	if (n->ready_ev)
		event_free(n->ready_ev);
	free(n->data_dir);
	free(n->listen);
	free(n);
}

/* ------------------------------------------------------------------ requests API */

int node_propose(struct node *n, const void *data, uint32_t len, node_done_fn done, void *ctx)
{
	struct req *q;
	uint64_t index;
	int rc;

	if (!n || (len && !data))
		return -EINVAL;
	if (n->stopped)
		return -ESHUTDOWN;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	rc = raft_propose(n->r, data, len, &index);
	if (rc) {
		free(q);
		return rc;
	}
	props_track(n, q, index, done, ctx);
	schedule_ready(n);
	return 0;
}

int node_read_index(struct node *n, node_done_fn done, void *ctx)
{
	struct raft_status s;
	struct req *q;
	int rc;

	if (!n || !done)
		return -EINVAL;
	if (n->stopped)
		return -ESHUTDOWN;
	raft_get_status(n->r, &s);
	if (s.role != RAFT_LEADER)
		return -EPERM;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->ctx_id = ++n->next_read_ctx;
	q->term = s.term;
	q->deadline = n->ticks + n->timeout_ticks;
	q->done = done;
	q->ctx = ctx;
	rc = raft_read_index(n->r, q->ctx_id);
	if (rc && rc != -EAGAIN) {
		free(q);
		return rc;
	}
	q->submitted = rc == 0;
	q->next = n->reads;
	n->reads = q;
	schedule_ready(n);
	return 0;
}

static int conf_change(struct node *n, enum raft_conf_op op, raft_id id, node_done_fn done, void *ctx)
{
	struct req *q;
	uint64_t index;
	int rc;

	if (n->stopped)
		return -ESHUTDOWN;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	rc = raft_propose_conf(n->r, op, id, &index);
	if (rc) {
		free(q);
		return rc;
	}
	props_track(n, q, index, done, ctx);
	/* The core replicates to a new learner as soon as the entry is appended. */
	sync_peers(n);
	schedule_ready(n);
	return 0;
}

int node_add_learner(struct node *n, raft_id id, const char *addr, node_done_fn done, void *ctx)
{
	int rc;

	if (!n || id == RAFT_ID_NONE || !addr)
		return -EINVAL;
	if (n->stopped)
		return -ESHUTDOWN;
	if (node_leader(n) != n->cfg.id)
		return -EPERM;
	rc = addr_set(n, id, addr);
	if (rc)
		return rc;
	return conf_change(n, RAFT_CONF_ADD_LEARNER, id, done, ctx);
}

int node_promote(struct node *n, raft_id id, node_done_fn done, void *ctx)
{
	if (!n)
		return -EINVAL;
	return conf_change(n, RAFT_CONF_PROMOTE, id, done, ctx);
}

int node_remove(struct node *n, raft_id id, node_done_fn done, void *ctx)
{
	if (!n)
		return -EINVAL;
	return conf_change(n, RAFT_CONF_REMOVE, id, done, ctx);
}

int node_transfer(struct node *n, raft_id id)
{
	int rc;

	if (!n)
		return -EINVAL;
	if (n->stopped)
		return -ESHUTDOWN;
	rc = raft_transfer_leadership(n->r, id);
	if (rc == 0)
		schedule_ready(n);
	return rc;
}

raft_id node_leader(const struct node *n)
{
	if (!n || n->stopped)
		return RAFT_ID_NONE;
	return cur_leader(n);
}

int node_is_leader(const struct node *n)
{
	struct raft_status s;

	if (!n || n->stopped || !n->r)
		return 0;
	raft_get_status(n->r, &s);
	return s.role == RAFT_LEADER;
}

void node_get_info(const struct node *n, struct node_info *info)
{
	struct raft_status s;
	raft_id ids[2 * RAFT_MAX_MEMBERS];
	size_t k = 0;
	uint64_t now = mono_ms();

	memset(info, 0, sizeof(*info));
	if (!n)
		return;
	if (n->r)
		raft_get_status(n->r, &s);
	else
		s = n->final;
	info->id = n->cfg.id;
	info->role = s.role;
	info->term = s.term;
	info->leader = n->stopped ? RAFT_ID_NONE : s.leader;
	info->commit = s.commit;
	info->applied = n->applied;
	info->last_index = s.last_index;
	info->snap_index = s.snap_index;
	info->stopped = n->stopped;
	snprintf(info->listen, sizeof(info->listen), "%s", n->bound);
	info->ready_batches = n->ready_batches;
	info->snapshots_taken = n->snapshots_taken;
	info->snapshots_installed = n->snapshots_installed;
	if (n->st && !n->sync_busy) {
		struct raft_storage_stats ss;

		raft_storage_get_stats(n->st, &ss);
		info->syncs = ss.syncs;
	} else {
		info->syncs = n->syncs; /* the sync thread owns the storage now */
	}
	conf_members(&s.conf, ids, &k);
	for (size_t i = 0; i < k; i++) {
		struct node_member *m = &info->members[info->n_members++];
		const struct tpeer *p = NULL;

		m->id = ids[i];
		m->voter = i < s.conf.n_voters;
		for (size_t j = 0; j < n->n_tpeers; j++)
			if (n->tpeers[j].id == ids[i])
				p = &n->tpeers[j];
		if (ids[i] == n->cfg.id) {
			snprintf(m->addr, sizeof(m->addr), "%s", n->bound);
			m->connected = 1;
			m->last_contact_ms = 0;
			continue;
		}
		m->last_contact_ms = -1;
		if (p) {
			struct raft_transport_peer_stats ps;

			snprintf(m->addr, sizeof(m->addr), "%s", p->addr);
			if (p->last_contact)
				m->last_contact_ms = (int64_t)(now - p->last_contact);
			if (n->t && raft_transport_peer_stats(n->t, ids[i], &ps) == 0)
				m->connected = ps.connected;
		}
	}
}
