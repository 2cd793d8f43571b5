/* Safety checker: Raft's five properties (Raft §5.4, Figure 3) plus acknowledged writes and ReadIndex linearizability. */
#include "tests/sim/sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* (index, term) -> what that entry must be everywhere: log matching (Raft §5.3). */
struct ck_slot {
	uint64_t index, term, hash, prev_term;
};

struct ck_idx {
	uint64_t term, hash; /* term 0: unknown */
	uint64_t seen_term;  /* a term in which it was already committed (>= the real one) */
};

struct ck_read {
	uint64_t ctx, acked_max;
};

struct sim_checker {
	struct ck_slot *tab;
	size_t tab_cap, tab_n;
	struct ck_idx *committed; /* by index */
	uint64_t *chain;          /* state-machine hash after applying index (0: unknown) */
	size_t idx_cap;
	uint64_t max_committed;
	raft_id *leader_of_term;
	size_t term_cap;
	uint64_t acked_max;
	struct ck_read *reads;
	size_t n_reads, cap_reads;
};

int sim_checker_new(struct sim *s)
{
	struct sim_checker *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->tab_cap = 4096;
	c->tab = calloc(c->tab_cap, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return -ENOMEM;
	}
	s->ck = c;
	return 0;
}

void sim_checker_free(struct sim *s)
{
	struct sim_checker *c = s->ck;

	if (!c)
		return;
	free(c->tab);
	free(c->committed);
	free(c->chain);
	free(c->leader_of_term);
	free(c->reads);
	free(c);
	s->ck = NULL;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 256;
	char *v;

	if (need < *cap)
		return p;
	while (ncap <= need)
		ncap *= 2;
	v = realloc(p, ncap * elem);
	if (!v)
		abort(); /* test harness: out of memory is not a result */
	memset(v + *cap * elem, 0, (ncap - *cap) * elem);
	*cap = ncap;
	return v;
}

static void ensure_idx(struct sim_checker *c, uint64_t index)
{
	size_t cap = c->idx_cap;

	c->committed = grow(c->committed, &cap, index, sizeof(*c->committed));
	cap = c->idx_cap;
	c->chain = grow(c->chain, &cap, index, sizeof(*c->chain));
	c->idx_cap = cap;
}

static uint64_t slot_hash(uint64_t index, uint64_t term)
{
	uint64_t h = index * 0x9e3779b97f4a7c15ULL ^ term * 0xc2b2ae3d27d4eb4fULL;

	return h ^ (h >> 29);
}

static void tab_grow(struct sim_checker *c)
{
	struct ck_slot *old = c->tab;
	size_t ocap = c->tab_cap;

	c->tab_cap *= 2;
	c->tab = calloc(c->tab_cap, sizeof(*c->tab));
	if (!c->tab)
		abort();
	for (size_t i = 0; i < ocap; i++) {
		if (!old[i].index)
			continue;
		size_t j = slot_hash(old[i].index, old[i].term) & (c->tab_cap - 1);

		while (c->tab[j].index)
			j = (j + 1) & (c->tab_cap - 1);
		c->tab[j] = old[i];
	}
	free(old);
}

/* Log matching, checked entry by entry: an (index, term) pair names one entry, with one
 * content and one predecessor term, on every node and at every time. By induction that
 * is exactly "same index and term => identical prefixes". */
static void check_entry(struct sim *s, struct sim_node *n, uint64_t index, uint64_t term, uint64_t hash,
			uint64_t prev_term)
{
	struct sim_checker *c = s->ck;
	size_t j;

	if (2 * (c->tab_n + 1) > c->tab_cap)
		tab_grow(c);
	j = slot_hash(index, term) & (c->tab_cap - 1);
	while (c->tab[j].index) {
		struct ck_slot *e = &c->tab[j];

		if (e->index == index && e->term == term) {
			if (e->hash != hash)
				sim_fail(s, "log matching: node %llu entry %llu/%llu has different content",
					 (unsigned long long)n->id, (unsigned long long)index,
					 (unsigned long long)term);
			else if (prev_term != UINT64_MAX && e->prev_term != UINT64_MAX && e->prev_term != prev_term)
				sim_fail(s, "log matching: node %llu entry %llu/%llu follows term %llu, elsewhere %llu",
					 (unsigned long long)n->id, (unsigned long long)index,
					 (unsigned long long)term, (unsigned long long)prev_term,
					 (unsigned long long)e->prev_term);
			else if (e->prev_term == UINT64_MAX)
				e->prev_term = prev_term;
			return;
		}
		j = (j + 1) & (c->tab_cap - 1);
	}
	c->tab[j] = (struct ck_slot){index, term, hash, prev_term};
	c->tab_n++;
}

static void note_committed(struct sim *s, struct sim_node *n, uint64_t index, uint64_t term, uint64_t hash,
			   uint64_t now_term)
{
	struct sim_checker *c = s->ck;

	ensure_idx(c, index);
	if (c->committed[index].term == 0) {
		c->committed[index].term = term;
		c->committed[index].hash = hash;
		c->committed[index].seen_term = now_term;
		if (index > c->max_committed)
			c->max_committed = index;
	} else if (c->committed[index].term != term || c->committed[index].hash != hash) {
		sim_fail(s, "state machine safety: node %llu committed %llu/%llu, but %llu/%llu was committed there",
			 (unsigned long long)n->id, (unsigned long long)index, (unsigned long long)term,
			 (unsigned long long)index, (unsigned long long)c->committed[index].term);
	}
}

static void leader_log_reset(struct sim_node *n, uint64_t term)
{
	n->ld_term = term;
	n->ld_n = 0;
	n->ld_base = 0;
}

void sim_check_node(struct sim *s, struct sim_node *n)
{
	struct sim_checker *c = s->ck;
	struct raft_status st;
	uint64_t prev_term;

	if (!n->up || s->failed)
		return;
	raft_get_status(n->r, &st);
	/* Election safety: at most one leader per term over the whole history. */
	if (st.role == RAFT_LEADER) {
		c->leader_of_term = grow(c->leader_of_term, &c->term_cap, st.term, sizeof(raft_id));
		if (c->leader_of_term[st.term] == RAFT_ID_NONE) {
			c->leader_of_term[st.term] = n->id;
			s->n_leaders++;
			sim_trace(s, "node %llu is leader of term %llu", (unsigned long long)n->id,
				  (unsigned long long)st.term);
		} else if (c->leader_of_term[st.term] != n->id) {
			sim_fail(s, "election safety: nodes %llu and %llu both leaders of term %llu",
				 (unsigned long long)c->leader_of_term[st.term], (unsigned long long)n->id,
				 (unsigned long long)st.term);
			return;
		}
	}
	if (st.commit < n->ck_commit && st.commit < st.snap_index)
		sim_fail(s, "node %llu commit went backwards", (unsigned long long)n->id);
	/* Cheap path: nothing about the log moved since the last look. */
	if (st.last_index == n->ck_last && st.last_term == n->ck_last_term && st.commit == n->ck_commit &&
	    st.first_index == n->ck_first && st.term == n->ck_term && (int)st.role == n->ck_role)
		return;
	n->ck_last = st.last_index;
	n->ck_last_term = st.last_term;
	n->ck_commit = st.commit;
	n->ck_first = st.first_index;
	n->ck_term = st.term;
	n->ck_role = (int)st.role;

	prev_term = UINT64_MAX; /* unknown before the first in-memory entry */
	for (uint64_t i = st.first_index; i <= st.last_index && !s->failed; i++) {
		const struct raft_entry *e;
		uint64_t h;

		if (raft_entry_at(n->r, i, &e) != 0) {
			sim_fail(s, "node %llu: entry %llu missing inside [%llu, %llu]", (unsigned long long)n->id,
				 (unsigned long long)i, (unsigned long long)st.first_index,
				 (unsigned long long)st.last_index);
			return;
		}
		h = sim_entry_hash(e);
		if (e->index != i)
			sim_fail(s, "node %llu: entry at %llu says index %llu", (unsigned long long)n->id,
				 (unsigned long long)i, (unsigned long long)e->index);
		check_entry(s, n, i, e->term, h, prev_term);
		if (i <= st.commit)
			note_committed(s, n, i, e->term, h, st.term);
		prev_term = e->term;
	}
	if (s->failed)
		return;

	if (st.role != RAFT_LEADER) {
		n->ld_term = 0;
		return;
	}
	/* Leader completeness (Raft §5.4.1): a leader holds every entry committed in an earlier
	 * term. seen_term is a term in which the entry was known committed, never earlier
	 * than the real one, so this never blames a correct leader. */
	for (uint64_t i = st.first_index; i <= c->max_committed; i++) {
		const struct raft_entry *e;

		if (c->committed[i].term == 0 || c->committed[i].seen_term >= st.term)
			continue;
		if (raft_entry_at(n->r, i, &e) != 0) {
			sim_fail(s, "leader completeness: leader %llu (term %llu) lacks %llu, committed by term %llu",
				 (unsigned long long)n->id, (unsigned long long)st.term, (unsigned long long)i,
				 (unsigned long long)c->committed[i].seen_term);
			return;
		}
		if (e->term != c->committed[i].term || sim_entry_hash(e) != c->committed[i].hash) {
			sim_fail(s, "leader completeness: leader %llu (term %llu) has %llu/%llu, committed was %llu/%llu",
				 (unsigned long long)n->id, (unsigned long long)st.term, (unsigned long long)i,
				 (unsigned long long)e->term, (unsigned long long)i,
				 (unsigned long long)c->committed[i].term);
			return;
		}
	}
	/* Leader append-only (Raft §5.3): within its term a leader never changes what it has. */
	if (n->ld_term != st.term) {
		leader_log_reset(n, st.term);
		n->ld_base = st.first_index;
	}
	if (n->ld_n && st.last_index < n->ld_base + n->ld_n - 1) {
		sim_fail(s, "leader append-only: leader %llu log shrank from %llu to %llu", (unsigned long long)n->id,
			 (unsigned long long)(n->ld_base + n->ld_n - 1), (unsigned long long)st.last_index);
		return;
	}
	for (uint64_t i = n->ld_base > st.first_index ? n->ld_base : st.first_index; i <= st.last_index; i++) {
		const struct raft_entry *e;
		size_t k = (size_t)(i - n->ld_base);

		if (raft_entry_at(n->r, i, &e) != 0)
			continue;
		if (k < n->ld_n) {
			if (n->ld_terms[k] != e->term) {
				sim_fail(s, "leader append-only: leader %llu rewrote index %llu",
					 (unsigned long long)n->id, (unsigned long long)i);
				return;
			}
		} else {
			n->ld_terms = grow(n->ld_terms, &n->ld_cap, k, sizeof(uint64_t));
			n->ld_terms[k] = e->term;
			n->ld_n = k + 1;
		}
	}
}

/* State machine safety: every node applies the same entry at an index, and the hash chain
 * over everything applied so far agrees too (this also covers snapshots). */
void sim_check_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e)
{
	struct sim_checker *c = s->ck;
	struct raft_status st;

	if (e->index != n->sm_index) {
		sim_fail(s, "node %llu applied index %llu after %llu", (unsigned long long)n->id,
			 (unsigned long long)e->index, (unsigned long long)n->sm_index);
		return;
	}
	raft_get_status(n->r, &st);
	note_committed(s, n, e->index, e->term, sim_entry_hash(e), st.term);
	ensure_idx(c, e->index);
	if (c->chain[e->index] == 0)
		c->chain[e->index] = n->sm_hash;
	else if (c->chain[e->index] != n->sm_hash)
		sim_fail(s, "state machine safety: node %llu state after %llu differs", (unsigned long long)n->id,
			 (unsigned long long)e->index);
}

void sim_check_snapshot(struct sim *s, struct sim_node *n, uint64_t index, uint64_t hash)
{
	struct sim_checker *c = s->ck;

	ensure_idx(c, index);
	if (c->chain[index] && c->chain[index] != hash)
		sim_fail(s, "snapshot: node %llu installed a state at %llu nobody applied", (unsigned long long)n->id,
			 (unsigned long long)index);
	else if (!c->chain[index] && index)
		sim_fail(s, "snapshot: node %llu installed a state at %llu before anyone applied it",
			 (unsigned long long)n->id, (unsigned long long)index);
}

void sim_note_ack(struct sim *s, uint64_t index)
{
	if (index > s->ck->acked_max)
		s->ck->acked_max = index;
}

uint64_t sim_acked_max(const struct sim *s)
{
	return s->ck->acked_max;
}

void sim_note_read(struct sim *s, uint64_t ctx, uint64_t acked_max_at_start)
{
	struct sim_checker *c = s->ck;

	c->reads = grow(c->reads, &c->cap_reads, c->n_reads, sizeof(*c->reads));
	c->reads[c->n_reads++] = (struct ck_read){ctx, acked_max_at_start};
}

/* Linearizable read: the state it reads (>= its index) includes every write acknowledged
 * to a client before the read started. */
void sim_check_read(struct sim *s, struct sim_node *n, uint64_t ctx, uint64_t index)
{
	struct sim_checker *c = s->ck;

	for (size_t i = 0; i < c->n_reads; i++) {
		if (c->reads[i].ctx != ctx)
			continue;
		if (index < c->reads[i].acked_max)
			sim_fail(s, "stale read: node %llu read %llu at index %llu, write %llu was acknowledged before",
				 (unsigned long long)n->id, (unsigned long long)ctx, (unsigned long long)index,
				 (unsigned long long)c->reads[i].acked_max);
		c->reads[i] = c->reads[--c->n_reads];
		s->n_reads_ok++;
		return;
	}
	sim_fail(s, "node %llu answered unknown read %llu", (unsigned long long)n->id, (unsigned long long)ctx);
}

/* After healing: every member converged on one state that includes every acknowledged write. */
void sim_check_final(struct sim *s)
{
	struct sim_node *ref = NULL;
	struct raft_status st;
	struct raft_conf conf;
	bool have_conf = false;

	for (size_t i = 0; i < s->n_nodes; i++) {
		raft_get_status(s->nodes[i].r, &st);
		if (st.role == RAFT_LEADER) {
			conf = st.conf;
			have_conf = true;
		}
	}
	if (!have_conf) {
		sim_fail(s, "liveness: no leader at the end");
		return;
	}
	for (size_t i = 0; i < s->n_nodes; i++) {
		struct sim_node *n = &s->nodes[i];
		bool member = false;

		for (uint32_t k = 0; k < conf.n_voters; k++)
			member |= conf.voters[k] == n->id;
		for (uint32_t k = 0; k < conf.n_learners; k++)
			member |= conf.learners[k] == n->id;
		if (!member)
			continue;
		if (n->sm_index < s->ck->acked_max) {
			sim_fail(s, "acknowledged write lost: node %llu applied %llu < acknowledged %llu",
				 (unsigned long long)n->id, (unsigned long long)n->sm_index,
				 (unsigned long long)s->ck->acked_max);
			return;
		}
		if (!ref) {
			ref = n;
		} else if (ref->sm_index != n->sm_index || ref->sm_hash != n->sm_hash) {
			sim_fail(s, "liveness: nodes %llu and %llu did not converge (%llu vs %llu)",
				 (unsigned long long)ref->id, (unsigned long long)n->id,
				 (unsigned long long)ref->sm_index, (unsigned long long)n->sm_index);
			return;
		}
	}
}
