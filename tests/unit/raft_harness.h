/* tests/unit/raft_harness: a tiny synchronous cluster for the Raft core unit tests (FIFO delivery, manual cuts). */
#ifndef FULCRUM_TESTS_UNIT_RAFT_HARNESS_H
#define FULCRUM_TESTS_UNIT_RAFT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"

#define H_MAX 5
#define H_QMAX 8192

struct h_node {
	struct raft *r;
	uint64_t applied_index;
	uint64_t applied_terms[1024];
	struct raft_read_state reads[64];
	size_t n_reads;
	struct raft_snapshot_meta installed;
	int n_installed;
};

struct harness {
	size_t n;
	struct h_node nodes[H_MAX];
	struct raft_message q[H_QMAX];
	size_t qhead, qtail;
	bool cut[H_MAX + 1][H_MAX + 1]; /* by id: cut[a][b] drops a -> b */
	uint64_t sent[16];               /* by message type */
	uint32_t max_entries_seen;
	uint64_t sent_append_to[H_MAX + 1]; /* APPENDs carrying entries */
	struct raft_config cfg;
};

/* Starts n nodes with ids 1..n; the first `voters` are the bootstrap voters, the rest join empty. */
static inline void h_init(struct harness *h, size_t n, size_t voters, const struct raft_config *base)
{
	memset(h, 0, sizeof(*h));
	h->n = n;
	if (base)
		h->cfg = *base;
	else
		raft_config_default(&h->cfg, 1, 1);
	for (size_t i = 0; i < n; i++) {
		struct raft_config c = h->cfg;
		struct raft_restore st;

		memset(&st, 0, sizeof(st));
		c.id = i + 1;
		c.seed = 1000 + i;
		if (i < voters) {
			st.snap.meta.conf.n_voters = (uint32_t)voters;
			for (size_t v = 0; v < voters; v++)
				st.snap.meta.conf.voters[v] = v + 1;
		}
		if (raft_create(&c, &st, &h->nodes[i].r) != 0)
			abort();
	}
}

static inline void h_free(struct harness *h)
{
	while (h->qhead != h->qtail) {
		raft_message_free(&h->q[h->qhead % H_QMAX]);
		h->qhead++;
	}
	for (size_t i = 0; i < h->n; i++)
		raft_destroy(h->nodes[i].r);
}

/* Processes every pending ready of node i (persistence is assumed instant). */
static inline void h_flush(struct harness *h, size_t i)
{
	struct h_node *n = &h->nodes[i];
	struct raft_ready rd;

	while (n->r && raft_ready(n->r, &rd) > 0) {
		for (size_t k = 0; k < rd.n_msgs; k++) {
			const struct raft_message *m = &rd.msgs[k];

			if (m->type < 16)
				h->sent[m->type]++;
			if (m->type == RAFT_MSG_APPEND && m->n_entries > h->max_entries_seen)
				h->max_entries_seen = m->n_entries;
			if (m->type == RAFT_MSG_APPEND && m->n_entries && m->to <= H_MAX)
				h->sent_append_to[m->to]++;
			if (m->to == 0 || m->to > H_MAX || h->cut[m->from][m->to])
				continue;
			if (h->qtail - h->qhead >= H_QMAX)
				abort();
			if (raft_message_clone(&h->q[h->qtail % H_QMAX], m) != 0)
				abort();
			h->qtail++;
		}
		if (rd.snapshot) {
			n->installed = rd.snapshot->meta;
			n->n_installed++;
			n->applied_index = rd.snapshot->meta.index;
		}
		for (size_t k = 0; k < rd.n_committed; k++) {
			n->applied_index = rd.committed[k].index;
			if (rd.committed[k].index < 1024)
				n->applied_terms[rd.committed[k].index] = rd.committed[k].term;
		}
		for (size_t k = 0; k < rd.n_reads && n->n_reads < 64; k++)
			n->reads[n->n_reads++] = rd.reads[k];
		raft_advance(n->r, &rd);
	}
}

static inline void h_flush_all(struct harness *h)
{
	for (size_t i = 0; i < h->n; i++)
		h_flush(h, i);
}

/* Delivers one queued message; returns false if the queue is empty. */
static inline bool h_deliver_one(struct harness *h)
{
	struct raft_message *m;

	h_flush_all(h);
	if (h->qhead == h->qtail)
		return false;
	m = &h->q[h->qhead % H_QMAX];
	h->qhead++;
	if (!h->cut[m->from][m->to] && h->nodes[m->to - 1].r)
		(void)raft_step(h->nodes[m->to - 1].r, m);
	raft_message_free(m);
	h_flush_all(h);
	return true;
}

static inline void h_deliver_all(struct harness *h)
{
	for (int guard = 0; guard < 100000 && h_deliver_one(h); guard++)
		;
}

/* Ticks every live node k times, delivering everything after each tick. */
static inline void h_tick(struct harness *h, int k)
{
	for (int t = 0; t < k; t++) {
		for (size_t i = 0; i < h->n; i++)
			if (h->nodes[i].r)
				raft_tick(h->nodes[i].r);
		h_deliver_all(h);
	}
}

static inline void h_isolate(struct harness *h, raft_id id, bool cut)
{
	for (raft_id o = 1; o <= H_MAX; o++) {
		if (o == id)
			continue;
		h->cut[id][o] = cut;
		h->cut[o][id] = cut;
	}
}

static inline struct raft_status h_status(struct harness *h, size_t i)
{
	struct raft_status st;

	raft_get_status(h->nodes[i].r, &st);
	return st;
}

/* Index of the node that is leader of the highest term, or -1. */
static inline int h_leader(struct harness *h)
{
	int best = -1;
	uint64_t term = 0;

	for (size_t i = 0; i < h->n; i++) {
		struct raft_status st;

		if (!h->nodes[i].r)
			continue;
		st = h_status(h, i);
		if (st.role == RAFT_LEADER && st.term >= term) {
			best = (int)i;
			term = st.term;
		}
	}
	return best;
}

static inline int h_count_leaders(struct harness *h)
{
	int n = 0;

	for (size_t i = 0; i < h->n; i++)
		if (h->nodes[i].r && h_status(h, i).role == RAFT_LEADER)
			n++;
	return n;
}

#endif
