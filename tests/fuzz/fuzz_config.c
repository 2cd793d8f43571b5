/* Fuzz target: config_load_string() on arbitrary text; what loads must dump, reload and build. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/config.h"
#include "dataplane/fwd.h"
#include "tests/fuzz/fuzz.h"


#define NAME "fuzz.conf"
/* Bigger inputs only slow the search down; real files are a few KiB. */
#define MAX_INPUT (64u << 10)
/* Maglev entries built per input at most (tables are O(M) each), so one input stays fast. */
#define MAX_TABLE_SUM (1u << 20)

/*
 * libconfig 1.5's scanner leaks the text of a string token when the parse then
 * fails (the input `""` alone: one calloc in libconfig_yylex, one realloc in
 * strbuf_append). That is the library's, not config.c's, and fulcrumd parses
 * once per start: ignore exactly those two allocation sites so that every
 * other leak still fails the run. LeakSanitizer calls this hook by name.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig_yylex\nleak:strbuf_append\n";
}

/* config_dump's text, in memory (malloc'd, NUL-terminated). */
static char *dump(const struct fulcrum_config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	CHECK(f != NULL);
	CHECK(config_dump(cfg, f) == 0);
	CHECK(fclose(f) == 0 && text != NULL);
	return text;
}

static void build(const struct fulcrum_config *cfg)
{
	static const uint8_t port_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
	static const uint8_t gw_mac[6] = {0x02, 0, 0, 0, 0, 0xfe};
	char err[256];
	struct fwd_spec spec;
	struct fwd_state *fs;
	uint64_t sum = 0;

	for (uint32_t i = 0; i < cfg->n_services; i++)
		sum += cfg->services[i].table_size;
	if (sum > MAX_TABLE_SUM)
		return;
	/* n_workers 0: the config's own worker count. */
	CHECK(config_to_spec(cfg, 1, port_mac, gw_mac, config_neigh_static, (void *)cfg, 0,
			     &spec) == 0);
	CHECK(spec.n_services == cfg->n_services);
	fs = fwd_state_build(&spec, err, sizeof(err));
	/* The loader validated everything the forwarding state needs. */
	CHECK(fs != NULL);
	fwd_state_free(fs);
	config_spec_free(&spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fulcrum_config cfg, again; /* big: not on the stack */
	char err[512], *text, *d1, *d2;
	int rc;

	if (size > MAX_INPUT)
		return 0;
	text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	rc = config_load_string(text, NAME, &cfg, err, sizeof(err));
	free(text);
	if (rc != 0) {
		CHECK(rc < 0 && err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(cfg.services == NULL && cfg.n_services == 0); /* nothing left to free */
		config_free(&cfg);
		return 0;
	}
	for (uint32_t i = 0; i < cfg.cluster.n_peers; i++)
		(void)config_peer_is_self(&cfg, i);
	build(&cfg);
	/* config_dump is "what fulcrumd actually runs with": it must load back to the same. */
	d1 = dump(&cfg);
	rc = config_load_string(d1, NAME, &again, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "dump does not reload: %s\n%s", err, d1);
		abort();
	}
	d2 = dump(&again);
	if (strcmp(d1, d2) != 0) {
		fprintf(stderr, "dump of the reloaded config differs:\n--- first\n%s--- second\n%s",
			d1, d2);
		abort();
	}
	free(d1);
	free(d2);
	config_free(&again);
	config_free(&cfg);
	return 0;
}
