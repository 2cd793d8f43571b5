/* tests/sim: deterministic Raft cluster simulation (virtual time, faults, workload, safety checker). */
#ifndef FULCRUM_TESTS_SIM_SIM_H
#define FULCRUM_TESTS_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define SIM_MAX_NODES 5
#define SIM_TICK_US 10000ULL /* one raft tick = 10 ms of virtual time */

/* A node's disk: what survives a crash. */
struct sim_store {
	struct raft_hard_state hs;
	struct raft_snapshot snap;
	struct raft_entry *ents; /* ents[i].index == snap.meta.index + 1 + i */
	size_t n;
	size_t cap;
};

struct sim_prop {
	uint64_t index;
	uint64_t term;
	uint64_t value;
};

struct sim_node {
	raft_id id;
	bool up;
	uint64_t epoch; /* incarnation; events of an older one are void */
	struct raft *r;
	struct sim_store disk;
	bool rd_out;
	struct raft_ready rd;
	uint64_t disk_delay_us; /* 0 = fast disk */
	uint64_t sm_index;      /* state machine: last applied index ... */
	uint64_t sm_hash;       /* ... and a hash chain over everything applied */
	struct sim_prop props[64];
	size_t n_props;
	/* checker: last looked-at state, and the leader's log while it leads */
	uint64_t ck_last, ck_last_term, ck_commit, ck_first, ck_term;
	int ck_role;
	uint64_t ld_term;     /* term of the recorded leader log (0: none) */
	uint64_t ld_base;     /* ld_terms[i] is the term of index ld_base + i */
	uint64_t *ld_terms;
	size_t ld_n, ld_cap;
};

struct sim_event;

struct sim {
	uint64_t seed;
	int verbose;
	uint64_t rng[4];
	uint64_t now;
	uint64_t ev_seq;
	struct sim_event *heap;
	size_t n_ev, cap_ev;
	size_t n_nodes;
	struct sim_node nodes[SIM_MAX_NODES];
	struct raft_config cfg_template;
	/* network */
	bool link[SIM_MAX_NODES][SIM_MAX_NODES]; /* link[i][j]: i can send to j */
	bool filter[SIM_MAX_NODES][SIM_MAX_NODES]; /* drop i's current-term APPENDs to j */
	uint32_t loss_pm, dup_pm, reorder_pm;  /* per mille */
	/* scenario */
	bool membership;
	bool script;
	int scr_l, scr_g;
	bool healed;
	uint64_t heal_at, end_at, stop_work_at;
	uint64_t snap_every;
	uint64_t next_value;
	uint64_t next_read;
	uint64_t live_deadline;
	uint64_t live_acked_at; /* first acknowledged proposal after heal */
	/* statistics */
	uint64_t n_events, n_acked, n_reads_ok, n_leaders, n_snap_installs, n_conf, n_transfers, n_crashes;
	/* checker registries */
	struct sim_checker *ck;
	/* first failure */
	bool failed;
	char why[512];
};

/* cluster.c */
/* Runs one seed; script: the Figure 8 scenario instead of random faults. 0 = all checks passed. */
int sim_run(uint64_t seed, int verbose, bool script, struct sim *out_stats);
uint64_t sim_rand(struct sim *s);
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t sim_entry_hash(const struct raft_entry *e);
uint64_t sim_chain(uint64_t h, const struct raft_entry *e);

/* checker.c */
int sim_checker_new(struct sim *s);
void sim_checker_free(struct sim *s);
void sim_check_node(struct sim *s, struct sim_node *n);
void sim_check_apply(struct sim *s, struct sim_node *n, const struct raft_entry *e);
void sim_check_snapshot(struct sim *s, struct sim_node *n, uint64_t index, uint64_t hash);
void sim_note_ack(struct sim *s, uint64_t index);
uint64_t sim_acked_max(const struct sim *s);
void sim_note_read(struct sim *s, uint64_t ctx, uint64_t acked_max_at_start);
void sim_check_read(struct sim *s, struct sim_node *n, uint64_t ctx, uint64_t index);
void sim_check_final(struct sim *s);

#endif
