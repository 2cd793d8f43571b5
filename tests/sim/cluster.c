/* The simulated cluster: virtual time, one event per step, network and disk faults, crashes, workload. */
#include "tests/sim/sim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ev_type {
	EV_TICK,
	EV_DELIVER,
	EV_PERSIST,
	EV_PROPOSE,
	EV_READ,
	EV_CONF,
	EV_TRANSFER,
	EV_FAULT,
	EV_RESTART,
	EV_UNFAULT,
	EV_HEAL,
	EV_STOP_WORK,
	EV_LIVE,
	EV_SCRIPT,
	EV_END,
};

enum unfault_kind {
	UF_DISK = 1,
	UF_TOGGLE_LINK = 2,
	UF_FILTER = 3,
};

#define SIM_MAX_EVENTS 2000000

struct sim_event {
	uint64_t at;
	uint64_t seq;
	int type;
	int node;
	uint64_t epoch;
	uint64_t arg;
	struct raft_message *msg;
};

/* ---- randomness: xoshiro256** seeded by splitmix64, all from the run's seed ---- */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t sim_rand(struct sim *s)
{
	uint64_t *q = s->rng;
	uint64_t res = rotl(q[1] * 5, 7) * 9, t = q[1] << 17;

	q[2] ^= q[0];
	q[3] ^= q[1];
	q[1] ^= q[2];
	q[0] ^= q[3];
	q[2] ^= t;
	q[3] = rotl(q[3], 45);
	return res;
}

static uint64_t rnd(struct sim *s, uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + sim_rand(s) % (hi - lo + 1);
}

static bool chance(struct sim *s, uint32_t per_mille)
{
	return sim_rand(s) % 1000 < per_mille;
}

/* ---- reporting ---- */

void sim_fail(struct sim *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->failed)
		return;
	s->failed = true;
	n = snprintf(s->why, sizeof(s->why), "t=%llu.%06llus: ", (unsigned long long)(s->now / 1000000),
		     (unsigned long long)(s->now % 1000000));
	va_start(ap, fmt);
	vsnprintf(s->why + n, sizeof(s->why) - (size_t)n, fmt, ap);
	va_end(ap);
	if (s->verbose)
		printf("FAIL %s\n", s->why);
}

void sim_trace(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->verbose)
		return;
	printf("%6llu.%06llu ", (unsigned long long)(s->now / 1000000), (unsigned long long)(s->now % 1000000));
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ---- state machine: a hash chain over applied entries ---- */

uint64_t sim_entry_hash(const struct raft_entry *e)
{
	uint64_t h = 1469598103934665603ULL ^ e->type;

	for (uint32_t i = 0; i < e->len; i++)
		h = (h ^ e->data[i]) * 1099511628211ULL;
	return h ? h : 1;
}

uint64_t sim_chain(uint64_t h, const struct raft_entry *e)
{
	uint64_t x = h ^ sim_entry_hash(e) ^ (e->term << 1) ^ (e->index * 0x9e3779b97f4a7c15ULL);

	x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ULL;
	return (x ^ (x >> 29)) | 1;
}

/* ---- event queue: binary heap ordered by (time, insertion order) ---- */

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push(struct sim *s, uint64_t at, int type, int node, uint64_t arg, struct raft_message *msg)
{
	struct sim_event ev = {at, s->ev_seq++, type, node, 0, arg, msg};
	size_t i;

	if (node >= 0)
		ev.epoch = s->nodes[node].epoch;
	if (s->n_ev == s->cap_ev) {
		s->cap_ev = s->cap_ev ? s->cap_ev * 2 : 1024;
		s->heap = realloc(s->heap, s->cap_ev * sizeof(*s->heap));
		if (!s->heap)
			abort();
	}
	i = s->n_ev++;
	while (i > 0 && ev_before(&ev, &s->heap[(i - 1) / 2])) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = ev;
}

static struct sim_event pop(struct sim *s)
{
	struct sim_event top = s->heap[0], last = s->heap[--s->n_ev];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->n_ev)
			break;
		if (c + 1 < s->n_ev && ev_before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_before(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->n_ev)
		s->heap[i] = last;
	return top;
}

/* ---- disk ---- */

static void store_truncate(struct sim_store *d, uint64_t from)
{
	while (d->n && d->ents[d->n - 1].index >= from)
		free(d->ents[--d->n].data);
}

static void store_append(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
	struct sim_store *d = &n->disk;
	uint64_t want = d->snap.meta.index + d->n + 1;

	if (e->index != want) {
		sim_fail(s, "node %llu persisted entry %llu but its disk ends at %llu", (unsigned long long)n->id,
			 (unsigned long long)e->index, (unsigned long long)(want - 1));
		return;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->ents = realloc(d->ents, d->cap * sizeof(*d->ents));
		if (!d->ents)
			abort();
	}
	d->ents[d->n] = *e;
	d->ents[d->n].data = NULL;
	if (e->len) {
		d->ents[d->n].data = malloc(e->len);
		if (!d->ents[d->n].data)
			abort();
		memcpy(d->ents[d->n].data, e->data, e->len);
	}
	d->n++;
}

static void store_snapshot(struct sim_store *d, const struct raft_snapshot_meta *meta, const void *data,
			   uint32_t len, bool keep_later)
{
	size_t drop = 0;

	free(d->snap.data);
	d->snap.meta = *meta;
	d->snap.len = len;
	d->snap.data = malloc(len ? len : 1);
	if (!d->snap.data)
		abort();
	memcpy(d->snap.data, data, len);
	if (!keep_later) {
		store_truncate(d, 0);
		return;
	}
	while (drop < d->n && d->ents[drop].index <= meta->index)
		free(d->ents[drop++].data);
	memmove(d->ents, d->ents + drop, (d->n - drop) * sizeof(*d->ents));
	d->n -= drop;
}

static void persist(struct sim *s, struct sim_node *n, const struct raft_ready *rd)
{
	if (rd->snapshot) {
		store_snapshot(&n->disk, &rd->snapshot->meta, rd->snapshot->data, rd->snapshot->len, false);
		s->n_snap_installs++;
	}
	if (rd->n_entries)
		store_truncate(&n->disk, rd->entries[0].index);
	for (size_t i = 0; i < rd->n_entries && !s->failed; i++)
		store_append(s, n, &rd->entries[i]);
	if (rd->hs_changed)
		n->disk.hs = rd->hs;
}

/* ---- nodes ---- */

static void sm_snapshot_bytes(const struct sim_node *n, uint8_t out[24])
{
	memcpy(out, &n->sm_index, 8);
	memcpy(out + 8, &n->sm_hash, 8);
	memset(out + 16, 0xab, 8);
}

static void node_start(struct sim *s, int i)
{
	struct sim_node *n = &s->nodes[i];
	struct raft_config cfg = s->cfg_template;
	struct raft_restore st;
	int rc;

	memset(&st, 0, sizeof(st));
	cfg.id = n->id;
	cfg.seed = s->seed * 131 + n->id * 7919 + n->epoch;
	st.hs = n->disk.hs;
	st.snap = n->disk.snap;
	st.entries = n->disk.ents;
	st.n_entries = n->disk.n;
	st.applied = n->disk.snap.meta.index;
	rc = raft_create(&cfg, &st, &n->r);
	if (rc != 0) {
		sim_fail(s, "node %llu cannot restart: %d", (unsigned long long)n->id, rc);
		return;
	}
	n->up = true;
	n->sm_index = n->disk.snap.meta.index;
	n->sm_hash = 0;
	if (n->disk.snap.len >= 16)
		memcpy(&n->sm_hash, n->disk.snap.data + 8, 8);
	n->n_props = 0;
	n->ck_last = n->ck_last_term = n->ck_commit = n->ck_first = n->ck_term = UINT64_MAX;
	n->ld_term = 0;
	push(s, s->now + rnd(s, 1, SIM_TICK_US), EV_TICK, i, 0, NULL);
}

static void node_crash(struct sim *s, int i)
{
	struct sim_node *n = &s->nodes[i];

	if (!n->up)
		return;
	if (n->rd_out) {
		/* The batch's fsync may or may not have finished before the power went. */
		if (chance(s, 500))
			persist(s, n, &n->rd);
		raft_advance(n->r, &n->rd);
		n->rd_out = false;
	}
	raft_destroy(n->r);
	n->r = NULL;
	n->up = false;
	n->epoch++;
	s->n_crashes++;
	sim_trace(s, "node %llu crashes", (unsigned long long)n->id);
}

static void pump(struct sim *s, int i)
{
	struct sim_node *n = &s->nodes[i];
	int rc;

	if (!n->up || n->rd_out || s->failed)
		return;
	rc = raft_ready(n->r, &n->rd);
	if (rc < 0) {
		sim_fail(s, "node %llu: raft_ready %d", (unsigned long long)n->id, rc);
		return;
	}
	if (rc == 0)
		return;
	n->rd_out = true;
	push(s, s->now + (n->disk_delay_us ? n->disk_delay_us : rnd(s, 20, 300)), EV_PERSIST, i, 0, NULL);
}

static int node_index(const struct sim *s, raft_id id)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i].id == id)
			return (int)i;
	return -1;
}

static void send(struct sim *s, int from, const struct raft_message *m)
{
	int to = node_index(s, m->to);
	int copies = 1;

	if (to < 0 || !s->link[from][to] || chance(s, s->loss_pm))
		return;
	/* Outside the script the same fault drops the whole message: plain selective loss. */
	if (s->filter[from][to] && m->type == RAFT_MSG_APPEND && !s->script)
		for (uint32_t k = 0; k < m->n_entries; k++)
			if (m->entries[k].term == m->term)
				return;

	if (chance(s, s->dup_pm))
		copies = 2;
	for (int c = 0; c < copies; c++) {
		struct raft_message *cp = malloc(sizeof(*cp));
		uint64_t delay = rnd(s, 500, 2000);

		if (!cp || raft_message_clone(cp, m) != 0)
			abort();
		/* Selective loss: entries of the leader's own term are cut off the APPEND and
		 * the older prefix gets through, as if the leader had sent a smaller batch.
		 * This is how Raft Figure 8 arises. */
		if (s->filter[from][to] && cp->type == RAFT_MSG_APPEND && s->script) {
			uint32_t k = 0;

			while (k < cp->n_entries && cp->entries[k].term != cp->term)
				k++;
			for (uint32_t j = k; j < cp->n_entries; j++)
				free(cp->entries[j].data);
			cp->n_entries = k;
		}
		if (chance(s, s->reorder_pm))
			delay += rnd(s, 1000, 40000);
		push(s, s->now + delay, EV_DELIVER, to, 0, cp);
	}
}

static void apply(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
	n->sm_index++;
	n->sm_hash = sim_chain(n->sm_hash, e);
	sim_check_apply(s, n, e);
	for (size_t k = 0; k < n->n_props; k++) {
		struct sim_prop *p = &n->props[k];

		if (p->index != e->index)
			continue;
		if (p->term == e->term) {
			/* Acknowledged to the client: this must never be lost. */
			sim_note_ack(s, e->index);
			s->n_acked++;
			if (s->healed && !s->live_acked_at)
				s->live_acked_at = s->now;
		}
		n->props[k] = n->props[--n->n_props];
		break;
	}
}

static void persist_done(struct sim *s, int i)
{
	struct sim_node *n = &s->nodes[i];
	struct raft_ready *rd = &n->rd;

	persist(s, n, rd);
	for (size_t k = 0; k < rd->n_msgs; k++)
		send(s, i, &rd->msgs[k]);
	if (rd->snapshot) {
		uint64_t h = 0;

		if (rd->snapshot->len >= 16)
			memcpy(&h, rd->snapshot->data + 8, 8);
		sim_check_snapshot(s, n, rd->snapshot->meta.index, h);
		n->sm_index = rd->snapshot->meta.index;
		n->sm_hash = h;
		sim_trace(s, "node %llu installs snapshot at %llu", (unsigned long long)n->id,
			  (unsigned long long)n->sm_index);
	}
	for (size_t k = 0; k < rd->n_committed && !s->failed; k++)
		apply(s, n, &rd->committed[k]);
	for (size_t k = 0; k < rd->n_reads; k++)
		sim_check_read(s, n, rd->reads[k].ctx, rd->reads[k].index);
	raft_advance(n->r, rd);
	n->rd_out = false;
	/* Compaction on the application's schedule (Raft §7). */
	if (n->sm_index >= n->disk.snap.meta.index + s->snap_every) {
		uint8_t buf[24];

		struct raft_snapshot_meta meta;

		sm_snapshot_bytes(n, buf);
		if (raft_compact(n->r, n->sm_index, buf, sizeof(buf), &meta) == 0)
			store_snapshot(&n->disk, &meta, buf, sizeof(buf), true);
	}
}

/* ---- workload ---- */

/* A client talks to a random node; it follows a redirect to the leader that node names. */
static int client_target(struct sim *s)
{
	int i = (int)rnd(s, 0, s->n_nodes - 1);
	struct raft_status st;

	if (!s->nodes[i].up)
		return -1;
	raft_get_status(s->nodes[i].r, &st);
	if (st.role == RAFT_LEADER)
		return i;
	i = node_index(s, st.leader);
	return i >= 0 && s->nodes[i].up ? i : -1;
}

static void do_propose(struct sim *s)
{
	int i = client_target(s);
	struct sim_node *n;
	uint64_t v, index;
	uint8_t buf[16];

	if (i < 0)
		return;
	n = &s->nodes[i];
	if (n->n_props >= sizeof(n->props) / sizeof(n->props[0]))
		return;
	v = ++s->next_value;
	memcpy(buf, &v, 8);
	memset(buf + 8, (int)(v & 0xff), 8);
	if (raft_propose(n->r, buf, (uint32_t)rnd(s, 8, 16), &index) == 0) {
		struct raft_status st;

		raft_get_status(n->r, &st);
		n->props[n->n_props++] = (struct sim_prop){index, st.term, v};
		sim_trace(s, "client proposes %llu at node %llu -> index %llu", (unsigned long long)v,
			  (unsigned long long)n->id, (unsigned long long)index);
	}
	pump(s, i);
}

static void do_read(struct sim *s)
{
	int i = client_target(s);
	uint64_t ctx;

	if (i < 0)
		return;
	ctx = ++s->next_read;
	if (raft_read_index(s->nodes[i].r, ctx) == 0) {
		sim_note_read(s, ctx, sim_acked_max(s));
		sim_trace(s, "client read %llu at node %llu", (unsigned long long)ctx,
			  (unsigned long long)s->nodes[i].id);
	}
	pump(s, i);
}

static void do_conf(struct sim *s)
{
	int i = client_target(s);
	struct raft_status st;
	enum raft_conf_op op;
	raft_id target = RAFT_ID_NONE;
	int rc;

	if (i < 0)
		return;
	raft_get_status(s->nodes[i].r, &st);
	if (st.role != RAFT_LEADER)
		return;
	if (st.conf.n_learners) {
		op = RAFT_CONF_PROMOTE;
		target = st.conf.learners[0];
	} else if (st.conf.n_voters <= 3 || (st.conf.n_voters < s->n_nodes && chance(s, 400))) {
		raft_id cand[SIM_MAX_NODES];
		size_t nc = 0;

		for (size_t k = 0; k < s->n_nodes; k++) {
			bool member = false;

			for (uint32_t v = 0; v < st.conf.n_voters; v++)
				member |= st.conf.voters[v] == s->nodes[k].id;
			if (!member)
				cand[nc++] = s->nodes[k].id;
		}
		if (!nc)
			return;
		op = RAFT_CONF_ADD_LEARNER;
		target = cand[rnd(s, 0, nc - 1)];
	} else {
		op = RAFT_CONF_REMOVE;
		target = st.conf.voters[rnd(s, 0, st.conf.n_voters - 1)];
	}
	rc = raft_propose_conf(s->nodes[i].r, op, target, NULL);
	sim_trace(s, "conf change %d node %llu at leader %llu: %d", (int)op, (unsigned long long)target,
		  (unsigned long long)s->nodes[i].id, rc);
	if (rc == 0)
		s->n_conf++;
	pump(s, i);
}

static void do_transfer(struct sim *s)
{
	int i = client_target(s);
	struct raft_status st;
	raft_id target;

	if (i < 0)
		return;
	raft_get_status(s->nodes[i].r, &st);
	if (st.role != RAFT_LEADER || st.conf.n_voters < 2)
		return;
	target = st.conf.voters[rnd(s, 0, st.conf.n_voters - 1)];
	if (target == st.id)
		return;
	if (raft_transfer_leadership(s->nodes[i].r, target) == 0) {
		s->n_transfers++;
		sim_trace(s, "transfer leadership %llu -> %llu", (unsigned long long)st.id,
			  (unsigned long long)target);
	}
	pump(s, i);
}

/* ---- faults ---- */

static void set_link(struct sim *s, int a, int b, bool up)
{
	s->link[a][b] = up;
}

static void heal_links(struct sim *s)
{
	for (size_t a = 0; a < s->n_nodes; a++)
		for (size_t b = 0; b < s->n_nodes; b++)
			s->link[a][b] = true;
}

static void do_fault(struct sim *s)
{
	int n = (int)s->n_nodes;
	int a = (int)rnd(s, 0, n - 1), b = (int)rnd(s, 0, n - 1);

	switch (rnd(s, 0, 10)) {
	case 0: { /* symmetric partition into two random sides */
		uint64_t side = sim_rand(s);

		heal_links(s);
		for (int x = 0; x < n; x++)
			for (int y = 0; y < n; y++)
				if (((side >> x) & 1) != ((side >> y) & 1))
					set_link(s, x, y, false);
		sim_trace(s, "fault: partition %llx", (unsigned long long)(side & ((1u << n) - 1)));
		break;
	}
	case 1: /* isolate one node */
		for (int y = 0; y < n; y++)
			if (y != a)
				set_link(s, a, y, false), set_link(s, y, a, false);
		sim_trace(s, "fault: isolate node %d", a + 1);
		break;
	case 2: /* asymmetric: a few one-way cuts */
		for (int k = 0; k < 3; k++) {
			a = (int)rnd(s, 0, n - 1);
			b = (int)rnd(s, 0, n - 1);
			set_link(s, a, b, false);
		}
		sim_trace(s, "fault: one-way cuts");
		break;
	case 3:
	case 4:
		heal_links(s);
		sim_trace(s, "fault: links healed");
		break;
	case 5: /* crash, restart later */
		if (s->nodes[a].up) {
			node_crash(s, a);
			push(s, s->now + rnd(s, 20000, 2000000), EV_RESTART, a, 0, NULL);
		}
		break;
	case 6:
		s->loss_pm = (uint32_t)rnd(s, 0, 300);
		s->dup_pm = (uint32_t)rnd(s, 0, 100);
		s->reorder_pm = (uint32_t)rnd(s, 0, 200);
		sim_trace(s, "fault: loss %u dup %u reorder %u per mille", s->loss_pm, s->dup_pm, s->reorder_pm);
		break;
	case 7: /* slow disk */
		s->nodes[a].disk_delay_us = rnd(s, 5000, 80000);
		push(s, s->now + rnd(s, 200000, 2000000), EV_UNFAULT, -1, ((uint64_t)UF_DISK << 32) | (uint64_t)a,
		     NULL);
		sim_trace(s, "fault: slow disk on node %d", a + 1);
		break;
	case 8: /* flapping link */
		if (a == b)
			break;
		for (int k = 0, t = 0; k < (int)rnd(s, 4, 16); k++) {
			t += (int)rnd(s, 20000, 200000);
			push(s, s->now + (uint64_t)t, EV_UNFAULT, -1,
			     ((uint64_t)UF_TOGGLE_LINK << 32) | ((uint64_t)a << 8) | (uint64_t)b, NULL);
		}
		sim_trace(s, "fault: flapping link %d-%d", a + 1, b + 1);
		break;
	case 10:
		if (a == b)
			break;
		s->filter[a][b] = true;
		push(s, s->now + rnd(s, 100000, 1500000), EV_UNFAULT, -1,
		     ((uint64_t)UF_FILTER << 32) | ((uint64_t)a << 8) | (uint64_t)b, NULL);
		sim_trace(s, "fault: node %d drops its current-term APPENDs to node %d", a + 1, b + 1);
		break;
	case 9: /* crash the leader specifically */
		for (int x = 0; x < n; x++) {
			struct raft_status st;

			if (!s->nodes[x].up)
				continue;
			raft_get_status(s->nodes[x].r, &st);
			if (st.role == RAFT_LEADER) {
				node_crash(s, x);
				push(s, s->now + rnd(s, 20000, 1500000), EV_RESTART, x, 0, NULL);
				break;
			}
		}
		break;
	}
}

static void do_unfault(struct sim *s, uint64_t arg)
{
	int kind = (int)(arg >> 32);

	if (kind == UF_DISK) {
		s->nodes[arg & 0xff].disk_delay_us = 0;
	} else if (kind == UF_TOGGLE_LINK && !s->healed) {
		int a = (int)((arg >> 8) & 0xff), b = (int)(arg & 0xff);
		bool up = !s->link[a][b];

		s->link[a][b] = s->link[b][a] = up;
	} else if (kind == UF_FILTER) {
		s->filter[(arg >> 8) & 0xff][arg & 0xff] = false;
	}
}

static void do_heal(struct sim *s)
{
	s->healed = true;
	heal_links(s);
	memset(s->filter, 0, sizeof(s->filter));
	s->loss_pm = s->dup_pm = s->reorder_pm = 0;
	for (size_t i = 0; i < s->n_nodes; i++) {
		s->nodes[i].disk_delay_us = 0;
		if (!s->nodes[i].up)
			node_start(s, (int)i);
	}
	sim_trace(s, "heal: all faults cleared");
}

/* ---- Raft Figure 8, scripted ----
 * Three nodes; node index 1 ("F") never times out. L leads, gets isolated and keeps
 * appending entries of its term; G is elected and appends entries that never reach F.
 * Then L is elected again and replicates its old-term entries to F, while every APPEND
 * carrying L's current-term entries is lost. Counting replicas of those old entries (the
 * old-term-commit mutation) commits them; G is then elected with F's vote and overwrites
 * them. A correct core commits nothing in this window, so the run passes. */

static void isolate(struct sim *s, int a)
{
	for (size_t y = 0; y < s->n_nodes; y++)
		if ((int)y != a)
			s->link[a][y] = s->link[y][a] = false;
}

static void do_script(struct sim *s, uint64_t step)
{
	switch (step) {
	case 1:
		s->scr_l = 0;
		for (int i = 0; i < 3; i++) {
			struct raft_status st;

			raft_get_status(s->nodes[i].r, &st);
			if (st.role == RAFT_LEADER && i != 1)
				s->scr_l = i;
		}
		s->scr_g = s->scr_l == 0 ? 2 : 0;
		isolate(s, s->scr_l);
		s->filter[s->scr_g][1] = true;
		break;
	case 2:
		heal_links(s);
		isolate(s, s->scr_g);
		memset(s->filter, 0, sizeof(s->filter));
		s->filter[s->scr_l][1] = true;
		break;
	case 3:
		heal_links(s);
		isolate(s, s->scr_l);
		memset(s->filter, 0, sizeof(s->filter));
		break;
	}
	sim_trace(s, "script step %llu (L=%d G=%d)", (unsigned long long)step, s->scr_l + 1, s->scr_g + 1);
}

/* ---- the run ---- */

static void handle(struct sim *s, struct sim_event *ev)
{
	struct sim_node *n = ev->node >= 0 ? &s->nodes[ev->node] : NULL;
	bool stale = n && (ev->epoch != n->epoch || !n->up);

	switch (ev->type) {
	case EV_TICK:
		if (stale)
			break;
		if (!(s->script && ev->node == 1 && !s->healed))
			raft_tick(n->r);
		push(s, s->now + SIM_TICK_US, EV_TICK, ev->node, 0, NULL);
		pump(s, ev->node);
		sim_check_node(s, n);
		break;
	case EV_DELIVER: {
		int from = node_index(s, ev->msg->from);

		if (n->up && from >= 0 && s->link[from][ev->node]) {
			if (s->verbose)
				sim_trace(s, "%llu->%llu %s term %llu idx %llu lt %llu n %u commit %llu rej %u",
					  (unsigned long long)ev->msg->from, (unsigned long long)ev->msg->to,
					  raft_msg_type_name(ev->msg->type), (unsigned long long)ev->msg->term,
					  (unsigned long long)ev->msg->index, (unsigned long long)ev->msg->log_term,
					  ev->msg->n_entries, (unsigned long long)ev->msg->commit, ev->msg->reject);
			(void)raft_step(n->r, ev->msg);
			pump(s, ev->node);
			sim_check_node(s, n);
		}
		raft_message_free(ev->msg);
		free(ev->msg);
		break;
	}
	case EV_PERSIST:
		if (stale || !n->rd_out)
			break;
		persist_done(s, ev->node);
		pump(s, ev->node);
		sim_check_node(s, n);
		break;
	case EV_PROPOSE:
		if (s->now < s->stop_work_at) {
			do_propose(s);
			push(s, s->now + rnd(s, 5000, 40000), EV_PROPOSE, -1, 0, NULL);
		}
		break;
	case EV_READ:
		if (s->now < s->stop_work_at) {
			do_read(s);
			push(s, s->now + rnd(s, 10000, 80000), EV_READ, -1, 0, NULL);
		}
		break;
	case EV_CONF:
		if (s->now < s->stop_work_at) {
			do_conf(s);
			push(s, s->now + rnd(s, 100000, 800000), EV_CONF, -1, 0, NULL);
		}
		break;
	case EV_TRANSFER:
		if (s->now < s->stop_work_at) {
			do_transfer(s);
			push(s, s->now + rnd(s, 300000, 2000000), EV_TRANSFER, -1, 0, NULL);
		}
		break;
	case EV_FAULT:
		if (s->now < s->heal_at) {
			do_fault(s);
			push(s, s->now + rnd(s, 50000, 600000), EV_FAULT, -1, 0, NULL);
		}
		break;
	case EV_RESTART:
		if (!s->nodes[ev->node].up && !s->healed) {
			node_start(s, ev->node);
			sim_trace(s, "node %llu restarts", (unsigned long long)s->nodes[ev->node].id);
		}
		break;
	case EV_UNFAULT:
		do_unfault(s, ev->arg);
		break;
	case EV_HEAL:
		do_heal(s);
		break;
	case EV_SCRIPT:
		do_script(s, ev->arg);
		break;
	case EV_LIVE:
		/* Liveness: once healed, a leader is elected and a proposal commits within
		 * a bounded number of election timeouts. */
		if (!s->live_acked_at)
			sim_fail(s, "liveness: nothing acknowledged within %llu ms after healing",
				 (unsigned long long)((s->now - s->heal_at) / 1000));
		break;
	default:
		break;
	}
	if (n && n->up && ev->type != EV_TICK && ev->type != EV_DELIVER && ev->type != EV_PERSIST)
		pump(s, ev->node);
}

static void setup(struct sim *s, uint64_t seed, int verbose, bool script)
{
	uint64_t x = seed;
	uint32_t voters;

	memset(s, 0, sizeof(*s));
	s->seed = seed;
	s->verbose = verbose;
	s->script = script;
	for (int i = 0; i < 4; i++)
		s->rng[i] = splitmix(&x);
	s->membership = chance(s, 350) && !script;
	s->n_nodes = (s->membership || chance(s, 500)) && !script ? 5 : 3;
	voters = s->membership ? 3 : (uint32_t)s->n_nodes;
	raft_config_default(&s->cfg_template, 1, 0);
	s->cfg_template.max_msg_entries = chance(s, 300) ? 1 : (uint32_t)rnd(s, 2, 32);
	s->cfg_template.max_msg_bytes = (uint32_t)rnd(s, 16, 512);
	s->cfg_template.max_inflight = (uint32_t)rnd(s, 1, 8);
	s->cfg_template.snapshot_trailing = (uint32_t)rnd(s, 0, 16);
	s->cfg_template.pre_vote = chance(s, 800);
	s->cfg_template.check_quorum = chance(s, 800);
	/* A removed server that keeps running can only be kept from disrupting the cluster by
	 * the leader lease (thesis §4.2.3); without check-quorum it must be shut down, which
	 * this workload does not do. */
	if (s->membership)
		s->cfg_template.check_quorum = 1;
	s->snap_every = rnd(s, 8, 60);
	s->heal_at = rnd(s, 3000000, 6000000);
	s->stop_work_at = s->heal_at + 3000000;
	s->end_at = s->stop_work_at + 3000000;
	if (script) {
		s->cfg_template.pre_vote = 1;
		s->cfg_template.check_quorum = 0;
		s->cfg_template.max_msg_entries = 2;
		s->cfg_template.max_inflight = 1;
		s->snap_every = 1000000;
		s->heal_at = 3000000;
		s->stop_work_at = s->heal_at + 3000000;
		s->end_at = s->stop_work_at + 3000000;
	}
	s->live_deadline = s->heal_at + 10 * 2 * s->cfg_template.election_ticks * SIM_TICK_US;
	heal_links(s);
	if (sim_checker_new(s) != 0)
		abort();
	for (size_t i = 0; i < s->n_nodes; i++) {
		struct sim_node *n = &s->nodes[i];

		n->id = i + 1;
		if (i < voters) {
			n->disk.snap.meta.conf.n_voters = voters;
			for (uint32_t v = 0; v < voters; v++)
				n->disk.snap.meta.conf.voters[v] = v + 1;
		}
		node_start(s, (int)i);
	}
	sim_trace(s, "seed %llu: %zu nodes (%u voters), membership %d, pre-vote %u, check-quorum %u, "
		     "batch %u/%uB, inflight %u, snapshot every %llu, heal at %llums",
		  (unsigned long long)seed, s->n_nodes, voters, s->membership, s->cfg_template.pre_vote,
		  s->cfg_template.check_quorum, s->cfg_template.max_msg_entries, s->cfg_template.max_msg_bytes,
		  s->cfg_template.max_inflight, (unsigned long long)s->snap_every,
		  (unsigned long long)(s->heal_at / 1000));
	push(s, 100000, EV_PROPOSE, -1, 0, NULL);
	push(s, 150000, EV_READ, -1, 0, NULL);
	if (script) {
		push(s, 1000000, EV_SCRIPT, -1, 1, NULL);
		push(s, 1500000, EV_SCRIPT, -1, 2, NULL);
		push(s, 2200000, EV_SCRIPT, -1, 3, NULL);
	} else {
		push(s, rnd(s, 100000, 600000), EV_FAULT, -1, 0, NULL);
		push(s, rnd(s, 500000, 2000000), EV_TRANSFER, -1, 0, NULL);
	}
	if (s->membership)
		push(s, rnd(s, 300000, 800000), EV_CONF, -1, 0, NULL);
	push(s, s->heal_at, EV_HEAL, -1, 0, NULL);
	push(s, s->live_deadline, EV_LIVE, -1, 0, NULL);
	push(s, s->end_at, EV_END, -1, 0, NULL);
}

static void teardown(struct sim *s)
{
	while (s->n_ev) {
		struct sim_event ev = pop(s);

		if (ev.msg) {
			raft_message_free(ev.msg);
			free(ev.msg);
		}
	}
	free(s->heap);
	for (size_t i = 0; i < s->n_nodes; i++) {
		struct sim_node *n = &s->nodes[i];

		if (n->up) {
			if (n->rd_out)
				raft_advance(n->r, &n->rd);
			raft_destroy(n->r);
		}
		store_truncate(&n->disk, 0);
		free(n->disk.ents);
		free(n->disk.snap.data);
		free(n->ld_terms);
	}
	sim_checker_free(s);
}

int sim_run(uint64_t seed, int verbose, bool script, struct sim *out)
{
	struct sim *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		abort();
	setup(s, seed, verbose, script);
	while (s->n_ev && !s->failed) {
		struct sim_event ev = pop(s);

		s->now = ev.at;
		/* A message storm that never lets virtual time move is a failure too. */
		if (++s->n_events > SIM_MAX_EVENTS) {
			sim_fail(s, "livelock: more than %d events", SIM_MAX_EVENTS);
			break;
		}
		if (ev.type == EV_END) {
			sim_check_final(s);
			break;
		}
		handle(s, &ev);
	}
	rc = s->failed ? -1 : 0;
	teardown(s);
	s->heap = NULL;
	*out = *s;
	free(s);
	return rc;
}
