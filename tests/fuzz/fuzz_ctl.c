/* Fuzz target: fulcrumctl's handling of untrusted API answers (ctl_render, ctl_response_index). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/ctl.h"
#include "tests/fuzz/fuzz.h"


/* API answers are JSON documents of a few KiB; larger inputs only slow the search. */
#define MAX_INPUT (64u << 10)

/* One command line per kind of answer fulcrumctl renders (docs/fulcrumctl.md). */
static const char *const lines[] = {
    "status",
    "member list",
    "member add 4 --raft 127.0.0.1:7004 --api 127.0.0.1:8004",
    "member promote 4",
    "member remove 4",
    "service list",
    "service show web",
    "service create web --vip 10.0.0.10 --port 80 --health http --health-path /health",
    "service update web --vip 10.0.0.10 --port 8080 --mode dsr",
    "service delete web",
    "backend list web --healthy",
    "backend show web 10.1.0.5:8080",
    "backend add web 10.1.0.5:8080 --weight 100 --ttl 10s",
    "backend weight web 10.1.0.5:8080 50",
    "backend drain web 3735928559",
    "backend undrain web 3735928559",
    "backend remove web [2001:db8::7]:80",
    "endpoints web",
    "endpoints web --healthy --watch",
    "status --json",
    "endpoints web --watch --json",
};
#define N_LINES (sizeof(lines) / sizeof(lines[0]))

static struct ctl_cmd cmds[N_LINES];
static FILE *devnull;

static void parse_line(const char *line, struct ctl_cmd *cmd)
{
	char copy[256], *argv[16], *save = NULL, *tok, err[256];
	int argc = 0;

	CHECK(strlen(line) < sizeof(copy));
	strcpy(copy, line);
	argv[argc++] = (char *)"fulcrumctl";
	for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		CHECK(argc < 15);
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	if (ctl_parse(argc, argv, NULL, NULL, cmd, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_ctl: cannot parse \"%s\": %s\n", line, err);
		abort();
	}
	CHECK(cmd->op != CTL_OP_NONE && !cmd->want_help);
}

static void init(void)
{
	devnull = fopen("/dev/null", "w");
	CHECK(devnull != NULL);
	for (size_t i = 0; i < N_LINES; i++)
		parse_line(lines[i], &cmds[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long errors[] = {400, 404, 409, 503, 500, 302, 100};
	const char *body = (const char *)data;
	uint64_t index = 0;
	int rc;

	if (devnull == NULL)
		init();
	if (size > MAX_INPUT)
		return 0;
	/* Every command's view of a 2xx answer (tables, key-value blocks, messages). */
	for (size_t i = 0; i < N_LINES; i++) {
		rc = ctl_render(&cmds[i], i % 2 ? 201 : 200, body, size, devnull, devnull);
		CHECK(rc == CTL_EXIT_OK || rc == CTL_EXIT_REFUSED);
	}
	/* An error answer: the status varies with the input, the command does not matter much. */
	rc = ctl_render(&cmds[size % N_LINES], errors[size % (sizeof(errors) / sizeof(errors[0]))],
			body, size, devnull, devnull);
	CHECK(rc == CTL_EXIT_REFUSED);
	rc = ctl_response_index(body, size, &index);
	CHECK(rc == 0 || rc == -EINVAL);
	return 0;
}
