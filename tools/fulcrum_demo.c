/*
 * fulcrum_demo: `make demo`, the forwarding core without DPDK or packets.
 *
 * It is NOT the appliance: no packet leaves this process. It builds the
 * Maglev tables a node would build for a sample service, hashes simulated
 * client 5-tuples with the cluster hash (the one the forwarding core uses),
 * and shows how flows spread over the backends and what moves when a backend
 * leaves, joins, drains, or changes weight.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/addr.h"
#include "dataplane/fwd.h"
#include "dataplane/maglev.h"

#define DEMO_FLOWS 1000000u
#define DEMO_MAX_BACKENDS 16
#define DEMO_SEED 0x46756c6372756d31ULL /* the cluster-wide hash seed */

struct demo_set {
	const char *title;
	uint32_t n;
	struct maglev_backend b[DEMO_MAX_BACKENDS];
	struct maglev_table t;
	uint32_t *owner; /* flow -> backend index */
};

static uint64_t demo_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t demo_next(void)
{
	uint64_t z = (demo_rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t *demo_flow_hashes(void)
{
	uint64_t *h = malloc(sizeof(*h) * DEMO_FLOWS);
	struct addr vip, client;

	if (h == NULL)
		return NULL;
	addr_parse("10.100.0.1", &vip);
	for (uint32_t i = 0; i < DEMO_FLOWS; i++) {
		uint8_t c[4] = {198, 51, (uint8_t)(demo_next() & 0xff), (uint8_t)(demo_next() & 0xff)};
		addr_set_v4(&client, c);
		h[i] = fwd_flow_hash(DEMO_SEED, &client, &vip, (uint16_t)(1024 + demo_next() % 60000),
				     80, IPPROTO_TCP);
	}
	return h;
}

static void demo_add(struct demo_set *s, const char *ip, uint32_t weight)
{
	struct maglev_backend *b = &s->b[s->n++];

	addr_parse(ip, &b->addr);
	b->port = 8080;
	b->weight = weight;
}

static int demo_build(struct demo_set *s, const uint64_t *h)
{
	struct timespec t0, t1;
	uint32_t counts[DEMO_MAX_BACKENDS] = {0}, slots[DEMO_MAX_BACKENDS];
	uint64_t wsum = 0;
	char ip[ADDR_STRLEN];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (maglev_build(&s->t, MAGLEV_DEFAULT_SIZE, s->b, s->n, DEMO_SEED) < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s->owner = malloc(sizeof(*s->owner) * DEMO_FLOWS);
	if (s->owner == NULL)
		return -1;
	for (uint32_t i = 0; i < DEMO_FLOWS; i++) {
		s->owner[i] = maglev_lookup(&s->t, h[i]);
		if (s->owner[i] != MAGLEV_NONE)
			counts[s->owner[i]]++;
	}
	maglev_count(&s->t, slots);
	for (uint32_t i = 0; i < s->n; i++)
		wsum += s->b[i].weight;
	printf("\n== %s  (Maglev M=%u, built in %.3f ms)\n", s->title, s->t.size,
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	printf("   %-18s %6s %9s %9s %9s\n", "backend", "weight", "slots", "flows", "share");
	for (uint32_t i = 0; i < s->n; i++) {
		printf("   %-15s:%u %6u %9u %9u %8.2f%%  (ideal %.2f%%)\n",
		       addr_format(&s->b[i].addr, ip, sizeof(ip)), s->b[i].port, s->b[i].weight,
		       slots[i], counts[i], 100.0 * counts[i] / DEMO_FLOWS,
		       wsum ? 100.0 * s->b[i].weight / (double)wsum : 0.0);
	}
	return 0;
}

/* How many flows changed backend between two sets (compared by identity). */
static void demo_compare(const struct demo_set *a, const struct demo_set *b, const char *what)
{
	uint32_t moved = 0;

	for (uint32_t i = 0; i < DEMO_FLOWS; i++) {
		const struct maglev_backend *x = a->owner[i] == MAGLEV_NONE ? NULL : &a->b[a->owner[i]];
		const struct maglev_backend *y = b->owner[i] == MAGLEV_NONE ? NULL : &b->b[b->owner[i]];
		if (x == NULL || y == NULL || !addr_eq(&x->addr, &y->addr) || x->port != y->port)
			moved++;
	}
	printf("   -> %s: %u of %u flows (%.2f%%) changed backend\n", what, moved, DEMO_FLOWS,
	       100.0 * moved / DEMO_FLOWS);
}

int main(void)
{
	struct demo_set sets[4];
	uint64_t *h;
	int rc = 1;

	memset(sets, 0, sizeof(sets));
	printf("Fulcrum forwarding-core demonstration (not the appliance: no packet is sent).\n"
	       "Sample service 10.100.0.1:80/tcp, %u simulated client flows, cluster seed %#llx.\n"
	       "Every node given the same backends, weights and seed builds this same table.\n",
	       DEMO_FLOWS, (unsigned long long)DEMO_SEED);
	h = demo_flow_hashes();
	if (h == NULL)
		return 1;

	sets[0].title = "5 backends, equal weights";
	for (int i = 0; i < 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.0.1.%d", 11 + i);
		demo_add(&sets[0], ip, 100);
	}
	sets[1] = sets[0];
	sets[1].title = "backend 10.0.1.13 leaves";
	sets[1].b[2] = sets[1].b[4];
	sets[1].n = 4;
	sets[2] = sets[0];
	sets[2].title = "10.0.1.13 drains (weight 0), 10.0.1.16 joins";
	sets[2].b[2].weight = 0;
	demo_add(&sets[2], "10.0.1.16", 100);
	sets[3] = sets[0];
	sets[3].title = "10.0.1.11 gets weight 300";
	sets[3].b[0].weight = 300;

	for (int i = 0; i < 4; i++) {
		sets[i].t.entry = NULL;
		sets[i].owner = NULL;
		if (demo_build(&sets[i], h) < 0) {
			fprintf(stderr, "demo: table build failed\n");
			goto out;
		}
		if (i > 0)
			demo_compare(&sets[0], &sets[i],
				     i == 1 ? "one of 5 leaves (ideal: 20.00%, only its own flows)"
					    : "compared with the first table");
	}
	printf("\nIn the appliance, flows already in a worker's flow table keep their backend\n"
	       "while it stays in the service (also when draining); only new flows follow\n"
	       "the new table. The appliance (fulcrumd, started by make run) forwards\n"
	       "real traffic with exactly this table.\n");
	rc = 0;
out:
	for (int i = 0; i < 4; i++) {
		maglev_free(&sets[i].t);
		free(sets[i].owner);
	}
	free(h);
	return rc;
}
