/* raftsim: runs seeded simulation campaigns of the Raft core and a self-test of the checker. */
#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SEEDS 200
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFAULT_SEEDS 200
#endif
#endif
#ifndef DEFAULT_SEEDS
#define DEFAULT_SEEDS 1000
#endif

/* The checker must catch each deliberate bug within this many seeds. */
#define MUTATION_SEEDS 300

static const struct {
	const char *name;
	int mutation;
} mutations[] = {
	{"double-vote", RAFT_MUT_DOUBLE_VOTE},
	{"old-term-commit", RAFT_MUT_OLD_TERM_COMMIT},
};

static const char *prog = "raftsim";
static bool g_script;

static void usage(void)
{
	fprintf(stderr,
		"usage: %s                      default campaign (%d seeds) + checker self-test\n"
		"       %s --seeds N [--from S]   campaign of N seeds starting at S\n"
		"       %s --seed S [-v]          replay one seed (-v: trace)\n"
		"       %s --mutation NAME ...    run with a deliberate bug (double-vote, old-term-commit)\n",
		prog, DEFAULT_SEEDS, prog, prog, prog);
}

static const char *mutation_name(int m)
{
	for (size_t i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++)
		if (mutations[i].mutation == m)
			return mutations[i].name;
	return NULL;
}

/* Each campaign also replays the scripted Figure 8 scenario for its first seeds. */
#define FIGURE8_SEEDS 10

struct totals {
	uint64_t events, acked, reads, leaders, snaps, confs, transfers, crashes;
};

static int run_one(uint64_t seed, int verbose, bool script, bool quiet, struct totals *t)
{
	struct sim st;

	if (sim_run(seed, verbose, script, &st) != 0) {
		if (!quiet) {
			printf("FAIL seed %llu%s: %s\n", (unsigned long long)seed, script ? " (figure 8)" : "", st.why);
			printf("  replay: %s --seed %llu -v%s%s%s\n", prog, (unsigned long long)seed,
			       script ? " --figure8" : "", raft_test_mutation ? " --mutation " : "",
			       raft_test_mutation ? mutation_name(raft_test_mutation) : "");
		}
		return 1;
	}
	t->events += st.n_events;
	t->acked += st.n_acked;
	t->reads += st.n_reads_ok;
	t->leaders += st.n_leaders;
	t->snaps += st.n_snap_installs;
	t->confs += st.n_conf;
	t->transfers += st.n_transfers;
	t->crashes += st.n_crashes;
	return 0;
}

/* Runs seeds [from, from + n); returns the number of failures (stops at the first if stop_first). */
static int campaign(uint64_t from, uint64_t n, int verbose, bool stop_first, bool quiet, uint64_t *first_fail,
		    bool only_script)
{
	struct totals t = {0};
	int failures = 0;

	for (uint64_t seed = from; seed < from + n; seed++) {
		int f = 0;

		if (!only_script)
			f += run_one(seed, verbose, false, quiet, &t);
		if (only_script || (seed - from < FIGURE8_SEEDS && n > 1))
			f += run_one(seed, verbose, true, quiet, &t);
		if (f && first_fail && !failures)
			*first_fail = seed;
		failures += f;
		if (f && stop_first)
			break;
	}
	if (!quiet)
		printf("raftsim: %llu seeds from %llu (+%d figure-8 runs): %d failed; %llu events, %llu acknowledged "
		       "writes, %llu reads, %llu leaders, %llu crashes, %llu snapshot installs, %llu conf changes, "
		       "%llu transfers\n",
		       (unsigned long long)n, (unsigned long long)from,
		       only_script ? 0 : (int)(n > 1 ? (n < FIGURE8_SEEDS ? n : FIGURE8_SEEDS) : 0), failures,
		       (unsigned long long)t.events, (unsigned long long)t.acked, (unsigned long long)t.reads,
		       (unsigned long long)t.leaders, (unsigned long long)t.crashes, (unsigned long long)t.snaps,
		       (unsigned long long)t.confs, (unsigned long long)t.transfers);
	return failures;
}

/* The checker is only worth something if it catches real bugs: each mutation must fail. */
static int self_test(void)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++) {
		uint64_t seed = 0;
		int f;

		raft_test_mutation = mutations[i].mutation;
		f = campaign(1, MUTATION_SEEDS, 0, true, true, &seed, false);
		raft_test_mutation = RAFT_MUT_NONE;
		if (f) {
			printf("raftsim: mutation %s caught at seed %llu (replay: %s --seed %llu -v [--figure8] --mutation %s)\n",
			       mutations[i].name, (unsigned long long)seed, prog, (unsigned long long)seed,
			       mutations[i].name);
		} else {
			printf("raftsim: FAIL mutation %s NOT caught within %d seeds\n", mutations[i].name,
			       MUTATION_SEEDS);
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	uint64_t seeds = 0, from = 1, one = 0;
	bool have_one = false, have_seeds = false;
	int verbose = 0;

	prog = argv[0];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seeds") && i + 1 < argc) {
			seeds = strtoull(argv[++i], NULL, 10);
			have_seeds = true;
		} else if (!strcmp(argv[i], "--from") && i + 1 < argc) {
			from = strtoull(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			one = strtoull(argv[++i], NULL, 10);
			have_one = true;
		} else if (!strcmp(argv[i], "--figure8")) {
			g_script = true;
		} else if (!strcmp(argv[i], "-v")) {
			verbose = 1;
		} else if (!strcmp(argv[i], "--mutation") && i + 1 < argc) {
			const char *name = argv[++i];

			raft_test_mutation = -1;
			for (size_t k = 0; k < sizeof(mutations) / sizeof(mutations[0]); k++)
				if (!strcmp(name, mutations[k].name))
					raft_test_mutation = mutations[k].mutation;
			if (raft_test_mutation < 0) {
				usage();
				return 2;
			}
		} else {
			usage();
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (have_one)
		return campaign(one, 1, verbose, true, false, NULL, g_script) ? 1 : 0;
	if (have_seeds || raft_test_mutation)
		return campaign(from, have_seeds ? seeds : DEFAULT_SEEDS, 0, false, false, NULL, g_script) ? 1 : 0;
	if (campaign(1, DEFAULT_SEEDS, 0, false, false, NULL, false))
		return 1;
	return self_test() ? 1 : 0;
}
