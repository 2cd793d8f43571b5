/* Unit tests for controlplane/cluster: bootstrap seeding of a real one-node cluster, restart,
 * and the forwarding digest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "controlplane/cluster.h"
#include "controlplane/config.h"
#include "controlplane/log.h"
#include "controlplane/sm.h"
#include "dataplane/fwd.h"

/* Services in name order, so the file's order is the state's order (sm keeps name order). */
#define CONF_FMT                                                                                   \
	"node = { address = \"10.0.0.2\"; hash_seed = \"0x1234567890abcdef\"; log_level = "      \
	"\"error\"; };\n"                                                                          \
	"dataplane = { port = { devargs = \"net_null0\"; }; };\n"                                  \
	"services = (\n"                                                                           \
	" { name = \"a-web\"; vip = \"10.0.0.100\"; port = 80; table_size = 1009;\n"               \
	"   backends = ( { address = \"10.0.0.21\"; port = 8080; },\n"                             \
	"                { address = \"10.0.0.22\"; port = 8080; weight = 3; },\n"                 \
	"                { address = \"10.0.0.23\"; port = 8080; weight = 0; } ); },\n"            \
	" { name = \"b-dns\"; vip = \"10.0.0.100\"; port = 53; proto = \"udp\"; table_size = 251;\n" \
	"   backends = ( { address = \"10.0.0.21\"; }, { address = \"10.0.0.24\"; } ); } );\n"      \
	"cluster = { id = 1; cluster_id = \"0xc1\"; bootstrap = true; data_dir = \"%s\";\n"        \
	"  raft_listen = \"127.0.0.1:1\"; api_listen = \"127.0.0.1:2\"; };\n"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_WARN);
	snprintf(dir, sizeof(dir), "/tmp/fulcrum-test-cluster.XXXXXX");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void load(struct fulcrum_config *cfg)
{
	char text[4096], err[512], data[300];
	int rc;

	snprintf(data, sizeof(data), "%s/node1", dir);
	snprintf(text, sizeof(text), CONF_FMT, data);
	rc = config_load_string(text, "t.conf", cfg, err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	/* any free port: a one-node cluster dials nobody */
	snprintf(cfg->cluster.raft_listen, sizeof(cfg->cluster.raft_listen), "127.0.0.1:0");
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Run the loop (and the daemon's periodic cluster_tick) until pred holds; 20 s turns a hang
 * into a failure, nothing asserts on time. */
static void run_until(struct event_base *base, struct cluster *c,
		      int (*pred)(struct cluster *c, void *arg), void *arg)
{
	uint64_t end = now_ms() + 20000;

	while (!pred(c, arg)) {
		assert_true(now_ms() < end);
		event_base_loop(base, EVLOOP_ONCE);
		cluster_tick(c);
	}
}

static int seeded(struct cluster *c, void *arg)
{
	(void)arg;
	return cluster_seeded(c);
}

static int at_least(struct cluster *c, void *arg)
{
	return sm_revision(cluster_state(c)) >= *(uint64_t *)arg;
}

static struct fwd_state *build_from_state(const struct sm_state *st)
{
	struct sm_node_params np;
	struct fwd_spec spec;
	char err[256];
	struct fwd_state *fs;

	memset(&np, 0, sizeof(np));
	addr_parse("10.0.0.2", &np.node_v4);
	np.n_workers = 1;
	assert_int_equal(sm_to_spec(st, &np, &spec), 0);
	fs = fwd_state_build(&spec, err, sizeof(err));
	if (fs == NULL)
		print_error("%s\n", err);
	assert_non_null(fs);
	sm_spec_free(&spec);
	return fs;
}

/*
 * The leader of a brand-new cluster seeds it from the file: members, services,
 * backends, then the seed; the forwarding state built from the replicated
 * state equals the single-node one built from the same file (same digest).
 * A restart restores the same state and does not seed again.
 */
static void test_bootstrap_and_restart(void **state)
{
	struct fulcrum_config cfg;
	struct event_base *base = event_base_new();
	struct cluster *c = NULL;
	char err[256];
	uint64_t seed, rev, digest;

	(void)state;
	assert_non_null(base);
	load(&cfg);
	assert_int_equal(cluster_start(base, &cfg, NULL, &c, err, sizeof(err)), 0);
	assert_false(cluster_seeded(c));
	run_until(base, c, seeded, NULL);

	const struct sm_state *st = cluster_state(c);
	assert_int_equal(sm_hash_seed(st, &seed), 1);
	assert_true(seed == 0x1234567890abcdefULL);
	assert_int_equal(sm_member_count(st), 1);
	assert_string_equal(sm_member_at(st, 0)->raft_addr, "127.0.0.1:0");
	assert_string_equal(sm_member_at(st, 0)->api_addr, "127.0.0.1:2");
	assert_int_equal(sm_service_count(st), 2);
	const struct sm_service *web = sm_service_get(st, "a-web");
	assert_non_null(web);
	assert_int_equal(web->def.table_size, 1009);
	assert_int_equal(web->n_backends, 3);
	for (uint32_t i = 0; i < cfg.services[0].n_backends; i++) {
		const struct cfg_backend *b = &cfg.services[0].backends[i];
		const struct sm_backend *sb = sm_backend_get(web, b->uid);
		assert_non_null(sb);
		assert_int_equal(sb->weight, b->weight);
		assert_int_equal(sb->lease, 0);
	}
	assert_int_equal(sm_service_get(st, "b-dns")->n_backends, 2);

	/* Same tables as the single-node path from the same file, at the same revision. */
	struct fwd_state *from_sm = build_from_state(st);
	struct fwd_spec spec;
	char berr[256];
	assert_int_equal(config_to_spec(&cfg, sm_revision(st), NULL, NULL, NULL, NULL, 1, &spec), 0);
	struct fwd_state *from_cfg = fwd_state_build(&spec, berr, sizeof(berr));
	assert_non_null(from_cfg);
	config_spec_free(&spec);
	assert_true(cluster_fwd_digest(from_sm) == cluster_fwd_digest(from_cfg));
	cluster_set_forwarding(c, from_sm->revision, cluster_fwd_digest(from_sm));
	assert_int_equal(cluster_forwarding(c, &rev, &digest), 0);
	assert_true(rev == sm_revision(st) && digest == cluster_fwd_digest(from_sm));
	fwd_state_free(from_cfg);
	fwd_state_free(from_sm);

	/* The status file names the state. */
	char path[300], line[128];
	snprintf(path, sizeof(path), "%s/status", dir);
	assert_int_equal(cluster_write_status(c, path), 0);
	FILE *f = fopen(path, "r");
	int saw_leader = 0, saw_seeded = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		saw_leader |= strcmp(line, "role=leader\n") == 0;
		saw_seeded |= strcmp(line, "seeded=1\n") == 0;
	}
	fclose(f);
	assert_true(saw_leader && saw_seeded);

	/* Restart on the same directory: the same state, no second seeding. */
	uint64_t before = sm_revision(st), sd = sm_digest(st);
	uint32_t nsvc = sm_service_count(st);
	cluster_stop(c);
	cluster_free(c);
	c = NULL;
	assert_int_equal(cluster_start(base, &cfg, NULL, &c, err, sizeof(err)), 0);
	run_until(base, c, at_least, &before);
	/* Leadership again (a NOOP of the new term), then a few more ticks for a wrong bootstrap
	 * to show up if it were going to. */
	uint64_t more = before + 1;
	run_until(base, c, at_least, &more);
	for (int i = 0; i < 50; i++) {
		event_base_loop(base, EVLOOP_ONCE);
		cluster_tick(c);
	}
	st = cluster_state(c);
	assert_true(cluster_seeded(c));
	assert_int_equal(sm_service_count(st), nsvc);
	assert_true(sm_revision(st) == before + 1); /* only the new term's entry */
	assert_true(sm_digest(st) != sd);	     /* the revision moved ... */
	assert_int_equal(sm_service_get(st, "a-web")->n_backends, 3); /* ... nothing else */
	cluster_stop(c);
	cluster_free(c);
	event_base_free(base);
	config_free(&cfg);
}

/* A state not seeded by the file: bootstrap does nothing without the cluster section. */
static void test_start_needs_cluster(void **state)
{
	struct fulcrum_config cfg;
	struct cluster *c = (struct cluster *)&cfg;
	char err[256];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(cluster_start(NULL, &cfg, NULL, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
}

static struct fwd_state *build_spec(uint32_t w2, uint8_t mac_byte, uint64_t revision)
{
	struct fwd_backend_spec be[2];
	struct fwd_service_spec svc;
	struct fwd_spec spec;
	char err[256];

	memset(be, 0, sizeof(be));
	memset(&svc, 0, sizeof(svc));
	memset(&spec, 0, sizeof(spec));
	for (int i = 0; i < 2; i++) {
		char a[32];
		snprintf(a, sizeof(a), "10.0.0.%d", 21 + i);
		addr_parse(a, &be[i].addr);
		be[i].port = 80;
		be[i].weight = i == 0 ? 1 : w2;
		be[i].uid = config_backend_uid(&be[i].addr, 80);
		memset(be[i].mac, mac_byte, 6);
		be[i].mac[0] = 2;
		be[i].mac_ok = 1;
	}
	addr_parse("10.0.0.100", &svc.vip);
	svc.port = 80;
	svc.proto = 6;
	svc.mode = FWD_MODE_DSR;
	svc.table_size = 251;
	svc.n_backends = 2;
	svc.backends = be;
	spec.revision = revision;
	spec.hash_seed = 42;
	spec.n_workers = 1;
	spec.n_services = 1;
	spec.services = &svc;
	struct fwd_state *st = fwd_state_build(&spec, err, sizeof(err));
	if (st == NULL)
		print_error("%s\n", err);
	assert_non_null(st);
	return st;
}

/* The digest sees the table (slot owners) and the revision, not the MACs. */
static void test_digest(void **state)
{
	(void)state;
	struct fwd_state *a = build_spec(1, 0x11, 7), *b = build_spec(1, 0x22, 7);
	struct fwd_state *c = build_spec(2, 0x11, 7), *d = build_spec(1, 0x11, 8);

	assert_true(cluster_fwd_digest(a) == cluster_fwd_digest(b));
	assert_true(cluster_fwd_digest(a) != cluster_fwd_digest(c));
	assert_true(cluster_fwd_digest(a) != cluster_fwd_digest(d));
	/*
	 * a single slot owner changed changes it (a node whose table came out
	 * different: its table digest is taken from its table)
	 */
	assert_true(a->services[0].table_digest == fwd_table_digest(&a->services[0]));
	a->services[0].table.entry[0] ^= 1;
	a->services[0].table_digest = fwd_table_digest(&a->services[0]);
	assert_true(cluster_fwd_digest(a) != cluster_fwd_digest(b));
	a->services[0].table.entry[0] ^= 1;
	a->services[0].table_digest = fwd_table_digest(&a->services[0]);
	assert_true(cluster_fwd_digest(a) == cluster_fwd_digest(b));
	fwd_state_free(a);
	fwd_state_free(b);
	fwd_state_free(c);
	fwd_state_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bootstrap_and_restart, setup, teardown),
	    cmocka_unit_test(test_start_needs_cluster),
	    cmocka_unit_test(test_digest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
