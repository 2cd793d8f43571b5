/*
 * bench_raft_throughput: commits/s and commit latency of a 3-node Raft cluster
 * on real files with fsync (issue 4 §5), against a plain write + fdatasync loop
 * on the same disk measured in the same run.
 *
 * Usage: bench_raft_throughput [dir]   (default /tmp; a fresh temporary
 *        directory is made there and removed at the end)
 * Exit status: 0, or 1 on any storage or core error.
 *
 * The cluster: three raft cores in one process and one thread, each with its
 * own raft_storage directory; messages go through an in-memory FIFO. Each
 * node's ready batch is handled as raft.h and docs/raft-storage.md say:
 * truncate_suffix + append, set_hard_state, ONE raft_storage_sync (group
 * commit: everything the batch holds costs one fdatasync), then the messages
 * are queued, then the committed entries are applied, then raft_advance.
 * A proposer has at most one proposal outstanding and proposes the next as
 * soon as the leader applied the previous one (right after that batch's
 * raft_advance, so the followers get the new commit index and the next entry
 * in the same round and persist them with one sync). Ticks follow the wall
 * clock (10 ms, default timeouts 150-300 ms).
 *
 * Configurations: 1 and 64 proposers with the documented sequence, and the
 * same with an experiment ("lazy", labelled in the output): a batch whose only
 * change is the commit index is not fsynced, as etcd/raft's MustSync rule
 * does. Fsyncs per commit come from raft_storage_get_stats (all nodes, and
 * the leader alone) over the measured window.
 *
 * What this measures is pessimistic for a real cluster: the three nodes share
 * one disk and one thread, so their fsyncs run one after the other, where
 * three machines would overlap the two followers' fsyncs.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "raft/raft.h"
#include "raft/storage.h"

#define N_NODES	      3
#define ENTRY_LEN     256
#define RUNS	      5
#define MAX_PROPOSERS 64
#define WARM_S	      0.3 /* load before the measured window */
#define WINDOW_S      2.5
#define BASE_S	      0.5 /* baseline loop duration, before each Raft run */
#define TICK_S	      0.010
#define MAX_LAT	      200000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

/* Nearest-rank percentile; sorts v. */
static double pct(double *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	k = (size_t)ceil(q * (double)n);
	return v[k > 0 ? k - 1 : 0];
}

static double median5(double *v)
{
	double c[RUNS];

	memcpy(c, v, sizeof(c));
	return pct(c, RUNS, 0.5);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

/* ---------------------------------------------------------------- the cluster */

struct node {
	struct raft *r;
	struct raft_storage *st;
	struct raft_storage_stats s0;
	struct raft_hard_state synced; /* term and vote of the last fsynced hard state */
};

struct proposer {
	bool busy;
	uint64_t index;
	uint64_t term;
	double t0;
};

struct cluster {
	struct node n[N_NODES];
	struct raft_message *q; /* FIFO of messages in flight */
	size_t q_head, q_n, q_cap;
	struct proposer p[MAX_PROPOSERS];
	size_t n_prop;
	bool lazy_commit; /* experiment: no fsync for a batch whose only change is hs.commit */
	bool measuring;
	double *lat; /* ms, measured window */
	size_t n_lat;
	uint64_t commits;
	uint64_t msgs; /* messages sent during the measured window */
	uint64_t lost;
	uint64_t seq;
	int err;
	char errmsg[256];
};

static int leader_of(struct cluster *c, uint64_t *term)
{
	*term = 0;
	for (int i = 0; i < N_NODES; i++) {
		struct raft_status s;

		raft_get_status(c->n[i].r, &s);
		if (s.role == RAFT_LEADER) {
			*term = s.term;
			return i;
		}
	}
	return -1;
}

static void fail(struct cluster *c, int rc, const char *what, int node)
{
	if (c->err)
		return;
	c->err = rc;
	snprintf(c->errmsg, sizeof(c->errmsg), "node %d: %s: %s%s%s", node + 1, what, strerror(-rc),
		 node >= 0 && c->n[node].st ? " - " : "",
		 node >= 0 && c->n[node].st ? raft_storage_errmsg(c->n[node].st) : "");
}

static void enqueue(struct cluster *c, const struct raft_message *m)
{
	if (c->q_head + c->q_n == c->q_cap) {
		if (c->q_head > 0) {
			memmove(c->q, c->q + c->q_head, c->q_n * sizeof(*c->q));
			c->q_head = 0;
		} else {
			size_t cap = c->q_cap ? 2 * c->q_cap : 1024;
			struct raft_message *q = realloc(c->q, cap * sizeof(*q));

			if (!q) {
				fail(c, -ENOMEM, "queue", -1);
				return;
			}
			c->q = q;
			c->q_cap = cap;
		}
	}
	if (raft_message_clone(&c->q[c->q_head + c->q_n], m) != 0) {
		fail(c, -ENOMEM, "clone", -1);
		return;
	}
	c->q_n++;
}

static void propose_idle(struct cluster *c, int ld, uint64_t term)
{
	uint8_t data[ENTRY_LEN];

	for (size_t k = 0; k < c->n_prop && !c->err; k++) {
		struct proposer *p = &c->p[k];
		uint64_t v = ++c->seq;
		int rc;

		if (p->busy)
			continue;
		memset(data, (int)(v & 0xff), sizeof(data));
		memcpy(data, &v, sizeof(v));
		rc = raft_propose(c->n[ld].r, data, sizeof(data), &p->index);
		if (rc == -EPERM || rc == -EBUSY)
			return;
		if (rc != 0) {
			fail(c, rc, "raft_propose", ld);
			return;
		}
		p->busy = true;
		p->term = term;
		p->t0 = now_s();
	}
}

static void apply(struct cluster *c, const struct raft_entry *e, double t)
{
	if (e->type != RAFT_ENTRY_NORMAL)
		return;
	for (size_t k = 0; k < c->n_prop; k++) {
		struct proposer *p = &c->p[k];

		if (!p->busy || p->index != e->index || p->term != e->term)
			continue;
		p->busy = false;
		if (c->measuring) {
			c->commits++;
			if (c->n_lat < MAX_LAT)
				c->lat[c->n_lat++] = (t - p->t0) * 1e3;
		}
		return;
	}
}

/* The CONTRACT loop of raft.h with the call sequence of docs/raft-storage.md. */
static void handle_ready(struct cluster *c, int i)
{
	struct node *nd = &c->n[i];
	struct raft_ready rd;
	int rc = 0;

	while (!c->err && (rc = raft_ready(nd->r, &rd)) > 0) {
		bool leader = rd.role == RAFT_LEADER;
		uint64_t term = rd.term;

		if (rd.snapshot) {
			fail(c, -ENOTSUP, "snapshot install (not expected here)", i);
			raft_advance(nd->r, &rd);
			return;
		}
		if (rd.n_entries) {
			rc = raft_storage_truncate_suffix(nd->st, rd.entries[0].index);
			if (rc == 0)
				rc = raft_storage_append(nd->st, rd.entries, rd.n_entries);
			if (rc != 0)
				fail(c, rc, "append", i);
		}
		if (!c->err && rd.hs_changed && (rc = raft_storage_set_hard_state(nd->st, &rd.hs)))
			fail(c, rc, "set_hard_state", i);
		/* The experiment: like etcd/raft's MustSync, a batch that only moves the commit
		 * index promises nothing to anyone (the commit index is volatile state in the
		 * Raft paper, Figure 2), so its record can ride on the next sync. */
		if (!c->err && (!c->lazy_commit || rd.n_entries ||
				(rd.hs_changed && (rd.hs.term != nd->synced.term ||
						   rd.hs.vote != nd->synced.vote)))) {
			if ((rc = raft_storage_sync(nd->st)) != 0)
				fail(c, rc, "sync", i);
			else
				raft_storage_hard_state(nd->st, &nd->synced);
		}
		if (c->err) {
			raft_advance(nd->r, &rd);
			return;
		}
		for (size_t k = 0; k < rd.n_msgs; k++)
			enqueue(c, &rd.msgs[k]);
		if (c->measuring)
			c->msgs += rd.n_msgs;
		if (rd.role == RAFT_LEADER && rd.n_committed) {
			double t = now_s();

			for (size_t k = 0; k < rd.n_committed; k++)
				apply(c, &rd.committed[k], t);
		}
		raft_advance(nd->r, &rd); /* (clears rd) */
		/* Proposers whose write was just applied go again at once. */
		if (leader)
			propose_idle(c, i, term);
	}
	if (rc < 0)
		fail(c, rc, "raft_ready", i);
}

static void deliver_all(struct cluster *c)
{
	size_t n = c->q_n; /* what is in flight now; replies go to the next round */

	for (size_t k = 0; k < n && !c->err; k++) {
		struct raft_message *m = &c->q[c->q_head];
		int to = (int)m->to - 1, rc;

		c->q_head++;
		c->q_n--;
		if (to >= 0 && to < N_NODES && (rc = raft_step(c->n[to].r, m)) != 0)
			fail(c, rc, "raft_step", to);
		raft_message_free(m);
	}
	if (c->q_n == 0)
		c->q_head = 0;
}

static void cluster_close(struct cluster *c)
{
	for (int i = 0; i < N_NODES; i++) {
		raft_destroy(c->n[i].r);
		raft_storage_close(c->n[i].st);
	}
	for (size_t k = 0; k < c->q_n; k++)
		raft_message_free(&c->q[c->q_head + k]);
	free(c->q);
	free(c->lat);
}

static int cluster_open(struct cluster *c, const char *root, uint64_t seed)
{
	struct raft_restore rs;

	memset(c, 0, sizeof(*c));
	c->lat = malloc(MAX_LAT * sizeof(double));
	if (!c->lat)
		return -ENOMEM;
	memset(&rs, 0, sizeof(rs));
	rs.snap.meta.conf.n_voters = N_NODES;
	for (int i = 0; i < N_NODES; i++)
		rs.snap.meta.conf.voters[i] = (raft_id)(i + 1);
	for (int i = 0; i < N_NODES; i++) {
		struct raft_storage_loaded ld;
		struct raft_config cfg;
		char dir[PATH_MAX], err[256];
		int rc;

		if (snprintf(dir, sizeof(dir), "%s/n%d", root, i + 1) >= (int)sizeof(dir))
			return -ENAMETOOLONG;
		rc = raft_storage_open(dir, NULL, &c->n[i].st, &ld, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "raft_storage_open %s: %s\n", dir, err);
			return rc;
		}
		raft_storage_loaded_free(&ld); /* a fresh directory: nothing to restore */
		raft_config_default(&cfg, (raft_id)(i + 1), seed + (uint64_t)i);
		rc = raft_create(&cfg, &rs, &c->n[i].r);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* One round: every node's ready batches, then every message in flight. */
static void round_trip(struct cluster *c, double *next_tick)
{
	double t = now_s();

	if (t >= *next_tick) {
		for (int i = 0; i < N_NODES; i++)
			raft_tick(c->n[i].r);
		*next_tick = t + TICK_S;
	}
	for (int i = 0; i < N_NODES && !c->err; i++)
		handle_ready(c, i);
	deliver_all(c);
}

struct run_result {
	double commits_s, lat_med, lat_p99, fsync_per_commit, leader_fsync_per_commit;
	double fsyncs_s, msgs_per_commit;
	uint64_t lost;
};

static int raft_run(const char *root, size_t proposers, bool lazy, uint64_t seed,
		    struct run_result *out)
{
	struct cluster c;
	double next_tick = 0, t_start, t_end, t_warm;
	uint64_t term = 0, f_all = 0, f_leader = 0;
	int ld = -1, rc = cluster_open(&c, root, seed);

	c.lazy_commit = lazy;
	if (rc != 0)
		goto done;
	/* Elect node 1 quickly (pre-vote, vote) instead of waiting 150-300 ms. */
	rc = raft_campaign(c.n[0].r);
	t_warm = now_s() + 5.0;
	while (rc == 0 && !c.err && (ld = leader_of(&c, &term)) < 0 && now_s() < t_warm)
		round_trip(&c, &next_tick);
	if (ld < 0) {
		fprintf(stderr, "no leader elected\n");
		rc = -ETIMEDOUT;
		goto done;
	}
	c.n_prop = proposers;
	propose_idle(&c, ld, term);
	t_warm = now_s() + WARM_S;
	while (!c.err && now_s() < t_warm)
		round_trip(&c, &next_tick);
	for (int i = 0; i < N_NODES; i++)
		raft_storage_get_stats(c.n[i].st, &c.n[i].s0);
	c.measuring = true;
	t_start = now_s();
	t_end = t_start + WINDOW_S;
	while (!c.err && now_s() < t_end) {
		uint64_t t2;
		int l2 = leader_of(&c, &t2);

		if (l2 != ld || t2 != term) { /* a leader change: outstanding writes are lost */
			for (size_t k = 0; k < c.n_prop; k++)
				c.lost += c.p[k].busy, c.p[k].busy = false;
			ld = l2;
			term = t2;
			if (ld >= 0)
				propose_idle(&c, ld, term);
		}
		round_trip(&c, &next_tick);
	}
	t_end = now_s();
	if (c.err) {
		fprintf(stderr, "%s\n", c.errmsg);
		rc = c.err;
		goto done;
	}
	for (int i = 0; i < N_NODES; i++) {
		struct raft_storage_stats s;

		raft_storage_get_stats(c.n[i].st, &s);
		f_all += s.fsyncs - c.n[i].s0.fsyncs;
		if (i == ld)
			f_leader = s.fsyncs - c.n[i].s0.fsyncs;
	}
	out->commits_s = (double)c.commits / (t_end - t_start);
	out->lat_med = pct(c.lat, c.n_lat, 0.5);
	out->lat_p99 = pct(c.lat, c.n_lat, 0.99);
	out->fsync_per_commit = c.commits ? (double)f_all / (double)c.commits : 0;
	out->leader_fsync_per_commit = c.commits ? (double)f_leader / (double)c.commits : 0;
	out->fsyncs_s = (double)f_all / (t_end - t_start);
	out->msgs_per_commit = c.commits ? (double)c.msgs / (double)c.commits : 0;
	out->lost = c.lost;
done:
	cluster_close(&c);
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

/* ---------------------------------------------------------------- the baseline */

/* append ENTRY_LEN bytes + fdatasync to a growing file, like a log segment */
static int baseline_run(const char *root, double *ops_s, double *lat_med)
{
	char path[PATH_MAX];
	uint8_t buf[ENTRY_LEN];
	double *lat = malloc(MAX_LAT * sizeof(double)), t0, t_end;
	size_t n = 0;
	int fd, rc = 0;

	if (!lat)
		return -ENOMEM;
	if (snprintf(path, sizeof(path), "%s/baseline", root) >= (int)sizeof(path)) {
		free(lat);
		return -ENAMETOOLONG;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(lat);
		return -errno;
	}
	memset(buf, 0xa5, sizeof(buf));
	t0 = now_s();
	t_end = t0 + BASE_S;
	while (now_s() < t_end && n < MAX_LAT) {
		double t = now_s();

		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd) != 0) {
			rc = -errno;
			break;
		}
		lat[n++] = (now_s() - t) * 1e3;
	}
	*ops_s = (double)n / (now_s() - t0);
	*lat_med = pct(lat, n, 0.5);
	close(fd);
	unlink(path);
	free(lat);
	return rc;
}

struct tp_config {
	const char *name;
	size_t proposers;
	bool lazy;
};

int main(int argc, char **argv)
{
	static const struct tp_config cfgs[] = {
	    {"raft,  1 proposer", 1, false},
	    {"raft, 64 proposers", 64, false},
	    {"raft,  1 proposer, lazy*", 1, true},
	    {"raft, 64 proposers, lazy*", 64, true},
	};
	enum { N_CFG = sizeof(cfgs) / sizeof(cfgs[0]) };
	const char *base = argc > 1 ? argv[1] : "/tmp";
	struct run_result res[N_CFG][RUNS];
	/* each Raft run is paired with a baseline run just before it: the shared disk's
	 * speed drifts by 10x within a minute on this machine */
	double b_ops[N_CFG][RUNS], b_lat[N_CFG][RUNS], all_ops[N_CFG * RUNS], all_lat[N_CFG * RUNS];
	char root[PATH_MAX];
	int rc = 0;

	if (snprintf(root, sizeof(root), "%s/fulcrum-bench-raft-XXXXXX", base) >=
		(int)sizeof(root) ||
	    !mkdtemp(root)) {
		fprintf(stderr, "mkdtemp %s: %s\n", root, strerror(errno));
		return 1;
	}
	printf("Raft throughput: 3 nodes in one process and one thread, each with its own "
	       "raft_storage under %s (one disk for all),\n"
	       "one raft_storage_sync (one fdatasync) per ready batch, %d-byte entries, "
	       "median of %d runs of %.1f s each (after %.1f s of warm-up).\n"
	       "Baseline: append %d bytes + fdatasync to one file on the same disk for %.1f s "
	       "just before each Raft run; ratios are per pair, median of the %d pairs.\n\n",
	       base, ENTRY_LEN, RUNS, WINDOW_S, WARM_S, ENTRY_LEN, BASE_S, RUNS);
	fflush(stdout);
	for (int r = 0; r < RUNS && rc == 0; r++) {
		for (int k = 0; k < N_CFG && rc == 0; k++) {
			char dir[PATH_MAX];

			rc = baseline_run(root, &b_ops[k][r], &b_lat[k][r]);
			if (rc != 0) {
				fprintf(stderr, "baseline: %s\n", strerror(-rc));
				break;
			}
			all_ops[r * N_CFG + k] = b_ops[k][r];
			all_lat[r * N_CFG + k] = b_lat[k][r];
			errno = ENAMETOOLONG;
			if (snprintf(dir, sizeof(dir), "%s/run%d-%d", root, r, k) >=
				(int)sizeof(dir) ||
			    mkdir(dir, 0700) != 0) {
				rc = -errno;
				fprintf(stderr, "%s: %s\n", dir, strerror(errno));
				break;
			}
			rc = raft_run(dir, cfgs[k].proposers, cfgs[k].lazy, 1000 + (uint64_t)r,
				      &res[k][r]);
		}
	}
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (rc != 0)
		return 1;

	printf("%-26s %9s %7s %7s %7s %7s %7s | %9s %7s %7s\n", "", "commits/s", "lat med",
	       "lat p99", "fsyncs/", "leader", "msgs/", "baseline", "commits", "lat /");
	printf("%-26s %9s %7s %7s %7s %7s %7s | %9s %7s %7s\n", "", "", "ms", "ms", "commit",
	       "fsyncs/", "commit", "fsyncs/s", "/ base", "fsync");
	printf("%-26s %9s %7s %7s %7s %7s %7s | %9s %7s %7s\n", "", "", "", "", "(all)", "commit",
	       "", "(paired)", "ratio", "ratio");
	for (int k = 0; k < N_CFG; k++) {
		double v[10][RUNS];
		uint64_t lost = 0;

		for (int r = 0; r < RUNS; r++) {
			v[0][r] = res[k][r].commits_s;
			v[1][r] = res[k][r].lat_med;
			v[2][r] = res[k][r].lat_p99;
			v[3][r] = res[k][r].fsync_per_commit;
			v[4][r] = res[k][r].leader_fsync_per_commit;
			v[5][r] = res[k][r].msgs_per_commit;
			v[6][r] = b_ops[k][r];
			v[7][r] = res[k][r].commits_s / b_ops[k][r];
			v[8][r] = res[k][r].lat_med / b_lat[k][r];
			lost += res[k][r].lost;
		}
		printf("%-26s %9.0f %7.2f %7.2f %7.3f %7.3f %7.2f | %9.0f %7.3f %7.2f\n",
		       cfgs[k].name, median5(v[0]), median5(v[1]), median5(v[2]), median5(v[3]),
		       median5(v[4]), median5(v[5]), median5(v[6]), median5(v[7]), median5(v[8]));
		if (lost)
			printf("  (%llu writes lost to leader changes during the runs)\n",
			       (unsigned long long)lost);
	}
	{
		double bo = pct(all_ops, N_CFG * RUNS, 0.5), bl = pct(all_lat, N_CFG * RUNS, 0.5);

		printf("%-26s %9.0f %7.2f   (median of all %d baseline runs; %.2f-%.2f ms per "
		       "fdatasync)\n",
		       "baseline write+fdatasync", bo, bl, N_CFG * RUNS, all_lat[0],
		       all_lat[N_CFG * RUNS - 1]);
	}
	printf("\n* lazy: a batch whose only change is the commit index is not fsynced (its record "
	       "goes out with the next sync),\n"
	       "  as etcd/raft's MustSync does. This is what fulcrumd's node runner "
	       "(controlplane/node.c) does; the plain rows\n"
	       "  follow the storage's strict call sequence (docs/raft-storage.md).\n");
	printf("\nper run, commits/s (paired baseline fdatasyncs/s):\n");
	for (int k = 0; k < N_CFG; k++) {
		printf("  %-26s", cfgs[k].name);
		for (int r = 0; r < RUNS; r++)
			printf(" %6.0f (%5.0f)", res[k][r].commits_s, b_ops[k][r]);
		printf("\n");
	}
	return 0;
}
