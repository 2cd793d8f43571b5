/* Unit tests for controlplane/ctl (fulcrumctl): arguments, requests, server lists, tables, exit
 * codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/config.h"
#include "controlplane/ctl.h"
#include "dataplane/addr.h"
#include "tests/unit/testutil.h"

/* ---- helpers ---------------------------------------------------------- */

#define MAX_ARGS 40

/* Split a command line on blanks (no quoting needed by these tests) and parse it. */
static int parse_env(const char *line, const char *env_servers, const char *env_token,
		     struct ctl_cmd *cmd, char *err, size_t errlen)
{
	static char buf[1024];
	char *argv[MAX_ARGS];
	int argc = 0;
	char *save = NULL, *t;

	snprintf(buf, sizeof(buf), "%s", line);
	argv[argc++] = (char *)"fulcrumctl";
	for (t = strtok_r(buf, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		assert_true(argc < MAX_ARGS);
		argv[argc++] = t;
	}
	return ctl_parse(argc, argv, env_servers, env_token, cmd, err, errlen);
}

static int parse(const char *line, struct ctl_cmd *cmd)
{
	char err[256];

	return parse_env(line, NULL, NULL, cmd, err, sizeof(err));
}

struct rendered {
	char *out;
	char *err;
	int rc;
};

static struct rendered render(const struct ctl_cmd *cmd, long status, const char *body)
{
	struct rendered r;
	size_t no, ne;
	FILE *out = open_memstream(&r.out, &no);
	FILE *err = open_memstream(&r.err, &ne);

	assert_non_null(out);
	assert_non_null(err);
	r.rc = ctl_render(cmd, status, body, body != NULL ? strlen(body) : 0, out, err);
	fclose(out);
	fclose(err);
	return r;
}

static void rendered_free(struct rendered *r)
{
	free(r->out);
	free(r->err);
}

/* Parse line (must succeed), render body with 200, compare stdout to want. */
static void golden(const char *line, const char *body, const char *want)
{
	struct ctl_cmd cmd;
	struct rendered r;

	assert_int_equal(parse(line, &cmd), 0);
	r = render(&cmd, 200, body);
	if (strcmp(r.out, want) != 0)
		fprintf(stderr, "for \"%s\" got:\n%s---\nwanted:\n%s---\n", line, r.out, want);
	assert_string_equal(r.out, want);
	assert_string_equal(r.err, "");
	assert_int_equal(r.rc, CTL_EXIT_OK);
	rendered_free(&r);
	ctl_cmd_free(&cmd);
}

/* ---- sample answers, from docs/api.md --------------------------------- */

static const char status_body[] =
    "{\"id\": 2, \"role\": \"follower\", \"term\": 3, \"leader\": 1,"
    " \"leader_api\": \"127.0.0.1:8001\", \"commit\": 42, \"applied\": 42, \"revision\": 42,"
    " \"state_digest\": \"9f2c1e0d4b5a6978\", \"forwarding_digest\": \"00a1b2c3d4e5f607\","
    " \"services\": 2, \"leases\": 3,"
    " \"members\": [{\"id\": 1, \"voter\": true, \"connected\": true},"
    " {\"id\": 2, \"voter\": true, \"connected\": true},"
    " {\"id\": 4, \"voter\": false, \"connected\": false}]}";

static const char members_body[] =
    "{\"members\": ["
    "{\"id\": 1, \"voter\": true, \"raft_address\": \"127.0.0.1:7001\","
    " \"api_address\": \"127.0.0.1:8001\", \"connected\": true, \"last_contact_ms\": 0,"
    " \"leader\": true},"
    "{\"id\": 2, \"voter\": true, \"raft_address\": \"127.0.0.1:7002\","
    " \"api_address\": \"127.0.0.1:8002\", \"connected\": true, \"last_contact_ms\": 40,"
    " \"leader\": false},"
    "{\"id\": 14, \"voter\": false, \"raft_address\": \"127.0.0.1:7014\","
    " \"api_address\": \"127.0.0.1:8014\", \"connected\": false, \"last_contact_ms\": 120000,"
    " \"leader\": false}]}";

#define WEB_SERVICE                                                                                \
	"{\"name\": \"web\", \"vip\": \"10.0.0.10\", \"port\": 80, \"protocol\": \"tcp\","         \
	" \"mode\": \"nat\", \"announce\": false, \"algorithm\": \"maglev\", \"table_size\": "     \
	"65537,"                                                                                   \
	" \"max_backends\": 0, \"health\": {\"type\": \"http\", \"path\": \"/health\","            \
	" \"interval_ms\": 1000, \"timeout_ms\": 500, \"rise\": 2, \"fall\": 3},"                  \
	" \"created\": 12, \"modified\": 40, \"backends\": 3}"

static const char services_body[] =
    "{\"services\": ["
    "{\"name\": \"dns\", \"vip\": \"2001:db8::53\", \"port\": 53, \"protocol\": \"udp\","
    " \"mode\": \"dsr\", \"announce\": true, \"algorithm\": \"maglev\", \"table_size\": 251,"
    " \"max_backends\": 10, \"health\": {\"type\": \"none\"}, \"created\": 5, \"modified\": 7,"
    " \"backends\": 0}, " WEB_SERVICE "]}";

#define BACKEND_1                                                                                  \
	"{\"id\": 3735928559, \"address\": \"10.1.0.5\", \"port\": 8080, \"weight\": 100,"         \
	" \"state\": \"active\", \"draining\": false, \"down\": false, \"lease\": 57, "            \
	"\"created\": 58}"

static const char backends_body[] =
    "{\"service\": \"web\", \"backends\": [" BACKEND_1 ","
    "{\"id\": 17, \"address\": \"2001:db8::7\", \"port\": 80, \"weight\": 1000000,"
    " \"state\": \"draining\", \"draining\": true, \"down\": false, \"lease\": 0,"
    " \"created\": 9}]}";

static const char endpoints_body[] =
    "{\"service\": \"web\", \"index\": 40, \"endpoints\": ["
    "{\"id\": 3735928559, \"address\": \"10.1.0.5\", \"port\": 8080, \"weight\": 100,"
    " \"state\": \"active\"},"
    "{\"id\": 17, \"address\": \"2001:db8::7\", \"port\": 80, \"weight\": 0,"
    " \"state\": \"draining\"}]}";

/* ---- server lists ----------------------------------------------------- */

static void test_servers_valid(void **state)
{
	static const struct {
		const char *in;
		unsigned n;
		const char *first, *last;
	} cases[] = {
	    {"127.0.0.1:8001", 1, "http://127.0.0.1:8001", NULL},
	    {"127.0.0.1", 1, "http://127.0.0.1:8001", NULL},
	    {"node1.lab:9000", 1, "http://node1.lab:9000", NULL},
	    {"[::1]:8002", 1, "http://[::1]:8002", NULL},
	    {"[2001:db8::1]", 1, "http://[2001:db8::1]:8001", NULL},
	    {"2001:db8::1", 1, "http://[2001:db8::1]:8001", NULL},
	    {"http://10.0.0.1:80/", 1, "http://10.0.0.1:80", NULL},
	    {"https://api.example:443", 1, "https://api.example:443", NULL},
	    {"a:1,b:2, c:3 ", 3, "http://a:1", "http://c:3"},
	    {"127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003", 3, "http://127.0.0.1:8001",
	     "http://127.0.0.1:8003"},
	};
	struct ctl_servers s;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(ctl_servers_parse(cases[i].in, &s, err, sizeof(err)), 0);
		assert_int_equal(s.n, cases[i].n);
		assert_string_equal(s.base[0], cases[i].first);
		if (cases[i].last != NULL)
			assert_string_equal(s.base[s.n - 1], cases[i].last);
	}
}

static void test_servers_invalid(void **state)
{
	static const char *const bad[] = {
	    "",		  " ",		",",
	    "a,,b",	  "a,",		"host:",
	    "host:0",	  "host:65536", "host:8x",
	    "[::1",	  "[::1]x",	"[::1]:",
	    "[]:80",	  "a b",	"h/x:80",
	    "ftp://h:21", "[zz::1]:80", "host:-1",
	    "http://",	  "::g",	"host:99999999999999999999",
	};
	struct ctl_servers s;
	char err[128], many[2048];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (ctl_servers_parse(bad[i], &s, err, sizeof(err)) != -EINVAL)
			fail_msg("server list \"%s\" was accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(ctl_servers_parse(NULL, &s, err, sizeof(err)), -EINVAL);

	/* 16 addresses are fine, 17 are not. */
	many[0] = '\0';
	for (i = 0; i < CTL_MAX_SERVERS; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sh%zu:1", i ? "," : "",
			 i);
	assert_int_equal(ctl_servers_parse(many, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, CTL_MAX_SERVERS);
	assert_string_equal(s.base[15], "http://h15:1");
	strcat(many, ",x:1");
	assert_int_equal(ctl_servers_parse(many, &s, err, sizeof(err)), -EINVAL);
}

/* ---- argument parsing ---------------------------------------------------- */

static void test_parse_requests(void **state)
{
	static const struct {
		const char *line;
		enum ctl_op op;
		const char *method, *path, *body;
	} cases[] = {
	    {"status", CTL_OP_STATUS, "GET", "/v1/status", NULL},
	    {"--stale status", CTL_OP_STATUS, "GET", "/v1/status?stale=1", NULL},
	    {"member list", CTL_OP_MEMBER_LIST, "GET", "/v1/members", NULL},
	    {"member add 4 --raft 127.0.0.1:7004 --api 127.0.0.1:8004", CTL_OP_MEMBER_ADD, "POST",
	     "/v1/members",
	     "{\"id\":4,\"raft_address\":\"127.0.0.1:7004\",\"api_address\":\"127.0.0.1:8004\"}"},
	    {"member add --api=[::1]:8004 4 --raft=[::1]:7004", CTL_OP_MEMBER_ADD, "POST",
	     "/v1/members",
	     "{\"id\":4,\"raft_address\":\"[::1]:7004\",\"api_address\":\"[::1]:8004\"}"},
	    {"member promote 4", CTL_OP_MEMBER_PROMOTE, "POST", "/v1/members/4/promote", NULL},
	    {"member remove 18446744073", CTL_OP_MEMBER_REMOVE, "DELETE", "/v1/members/18446744073",
	     NULL},
	    {"service list", CTL_OP_SERVICE_LIST, "GET", "/v1/services", NULL},
	    {"service list --stale --json", CTL_OP_SERVICE_LIST, "GET", "/v1/services?stale=1",
	     NULL},
	    {"service show web", CTL_OP_SERVICE_SHOW, "GET", "/v1/services/web", NULL},
	    {"service show ..", CTL_OP_SERVICE_SHOW, "GET", "/v1/services/..", NULL},
	    {"service create web --vip 10.0.0.10 --port 80", CTL_OP_SERVICE_CREATE, "POST",
	     "/v1/services", "{\"name\":\"web\",\"vip\":\"10.0.0.10\",\"port\":80}"},
	    {"service create dns --vip 2001:db8::53 --port 53 --proto udp --mode dsr --announce "
	     "--table-size 251 --max-backends 10",
	     CTL_OP_SERVICE_CREATE, "POST", "/v1/services",
	     "{\"name\":\"dns\",\"vip\":\"2001:db8::53\",\"port\":53,\"protocol\":\"udp\","
	     "\"mode\":\"dsr\",\"announce\":true,\"table_size\":251,\"max_backends\":10}"},
	    {"service create web --vip 10.0.0.10 --port 80 --health http --health-path /health "
	     "--health-interval 1s --health-timeout 500ms --rise 2 --fall 3",
	     CTL_OP_SERVICE_CREATE, "POST", "/v1/services",
	     "{\"name\":\"web\",\"vip\":\"10.0.0.10\",\"port\":80,\"health\":{\"type\":\"http\","
	     "\"path\":\"/"
	     "health\",\"interval_ms\":1000,\"timeout_ms\":500,\"rise\":2,\"fall\":3}}"},
	    {"service create web --vip 10.0.0.10 --port 80 --health tcp --health-interval 2m",
	     CTL_OP_SERVICE_CREATE, "POST", "/v1/services",
	     "{\"name\":\"web\",\"vip\":\"10.0.0.10\",\"port\":80,\"health\":{\"type\":\"tcp\","
	     "\"interval_ms\":120000}}"},
	    {"service update web --vip 10.0.0.10 --port 8080 --mode nat", CTL_OP_SERVICE_UPDATE,
	     "PUT", "/v1/services/web", "{\"vip\":\"10.0.0.10\",\"port\":8080,\"mode\":\"nat\"}"},
	    {"service delete web", CTL_OP_SERVICE_DELETE, "DELETE", "/v1/services/web", NULL},
	    {"backend list web", CTL_OP_BACKEND_LIST, "GET", "/v1/services/web/backends", NULL},
	    {"backend list web --healthy --stale", CTL_OP_BACKEND_LIST, "GET",
	     "/v1/services/web/backends?healthy=1&stale=1", NULL},
	    {"backend show web 3735928559", CTL_OP_BACKEND_SHOW, "GET",
	     "/v1/services/web/backends/3735928559", NULL},
	    {"backend add web 10.1.0.5:8080 --ttl 10s", CTL_OP_BACKEND_ADD, "POST",
	     "/v1/services/web/backends",
	     "{\"address\":\"10.1.0.5\",\"port\":8080,\"ttl_ms\":10000}"},
	    {"backend add web 10.1.0.5 --port 8080 --weight 5 --lease 57", CTL_OP_BACKEND_ADD,
	     "POST", "/v1/services/web/backends",
	     "{\"address\":\"10.1.0.5\",\"port\":8080,\"weight\":5,\"lease\":57}"},
	    {"backend add web 10.1.0.5", CTL_OP_BACKEND_ADD, "POST", "/v1/services/web/backends",
	     "{\"address\":\"10.1.0.5\"}"},
	    {"backend add web [2001:db8::7]:80 --weight 0", CTL_OP_BACKEND_ADD, "POST",
	     "/v1/services/web/backends", "{\"address\":\"2001:db8::7\",\"port\":80,\"weight\":0}"},
	    {"backend add web 2001:db8::7", CTL_OP_BACKEND_ADD, "POST", "/v1/services/web/backends",
	     "{\"address\":\"2001:db8::7\"}"},
	    {"backend weight web 3735928559 50", CTL_OP_BACKEND_WEIGHT, "PATCH",
	     "/v1/services/web/backends/3735928559", "{\"weight\":50}"},
	    {"backend drain web 17", CTL_OP_BACKEND_DRAIN, "PATCH", "/v1/services/web/backends/17",
	     "{\"drain\":true}"},
	    {"backend undrain web 17", CTL_OP_BACKEND_UNDRAIN, "PATCH",
	     "/v1/services/web/backends/17", "{\"drain\":false}"},
	    {"backend remove web 4294967295", CTL_OP_BACKEND_REMOVE, "DELETE",
	     "/v1/services/web/backends/4294967295", NULL},
	    {"endpoints web", CTL_OP_ENDPOINTS, "GET", "/v1/services/web/endpoints", NULL},
	    {"endpoints web --healthy --stale", CTL_OP_ENDPOINTS, "GET",
	     "/v1/services/web/endpoints?healthy=1&stale=1", NULL},
	    {"endpoints web --index 40", CTL_OP_ENDPOINTS, "GET",
	     "/v1/services/web/endpoints?index=40&wait=30000ms", NULL},
	    {"endpoints web --healthy --index 40 --wait 1m", CTL_OP_ENDPOINTS, "GET",
	     "/v1/services/web/endpoints?healthy=1&index=40&wait=60000ms", NULL},
	    {"endpoints web --watch --wait 5s", CTL_OP_ENDPOINTS, "GET",
	     "/v1/services/web/endpoints", NULL},
	    {"-- service show -x", CTL_OP_SERVICE_SHOW, "GET", "/v1/services/-x", NULL},
	};
	struct ctl_cmd cmd;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse_env(cases[i].line, NULL, NULL, &cmd, err, sizeof(err));

		if (rc != 0)
			fail_msg("\"%s\": %d %s", cases[i].line, rc, err);
		assert_false(cmd.want_help);
		assert_int_equal(cmd.op, cases[i].op);
		assert_string_equal(cmd.method, cases[i].method);
		assert_string_equal(cmd.path, cases[i].path);
		if (cases[i].body == NULL)
			assert_null(cmd.body);
		else
			assert_string_equal(cmd.body, cases[i].body);
		/* defaults */
		assert_int_equal(cmd.servers.n, 1);
		assert_string_equal(cmd.servers.base[0], "http://" CTL_DEFAULT_SERVER);
		assert_int_equal(cmd.timeout_ms, CTL_DEFAULT_TIMEOUT_MS);
		assert_string_equal(cmd.token, "");
		ctl_cmd_free(&cmd);
	}
}

static void test_parse_globals(void **state)
{
	struct ctl_cmd cmd;
	char err[256];

	(void)state;
	/* Environment, then flags over it; global options anywhere on the line. */
	assert_int_equal(parse_env("status", "a:1,b:2", "secret-token-123", &cmd, err, sizeof(err)),
			 0);
	assert_int_equal(cmd.servers.n, 2);
	assert_string_equal(cmd.servers.base[1], "http://b:2");
	assert_string_equal(cmd.token, "secret-token-123");
	assert_false(cmd.json);

	assert_int_equal(parse_env("service list -s c:3 --token=other --json --timeout 0.5",
				   "a:1,b:2", "secret", &cmd, err, sizeof(err)),
			 0);
	assert_int_equal(cmd.servers.n, 1);
	assert_string_equal(cmd.servers.base[0], "http://c:3");
	assert_string_equal(cmd.token, "other");
	assert_true(cmd.json);
	assert_int_equal(cmd.timeout_ms, 500);

	assert_int_equal(parse_env("-sd:4 status", NULL, NULL, &cmd, err, sizeof(err)), 0);
	assert_string_equal(cmd.servers.base[0], "http://d:4");

	/* Empty environment variables count as unset. */
	assert_int_equal(parse_env("status", "", "", &cmd, err, sizeof(err)), 0);
	assert_string_equal(cmd.servers.base[0], "http://127.0.0.1:8001");
	assert_string_equal(cmd.token, "");

	/* A token that would break the header line is refused. */
	assert_int_equal(parse_env("status", NULL, "a\r\nX: y", &cmd, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "token"));
	assert_int_equal(parse_env("status", "bad list,", NULL, &cmd, err, sizeof(err)), -EINVAL);
}

static void test_parse_usage_errors(void **state)
{
	static const struct {
		const char *line;
		const char *help_prefix; /* the usage that goes with the error */
	} bad[] = {
	    {"", "Usage: fulcrumctl [GLOBAL"},
	    {"frobnicate", "Usage: fulcrumctl [GLOBAL"},
	    {"--json", "Usage: fulcrumctl [GLOBAL"},
	    {"member", "Usage: fulcrumctl member list|"},
	    {"member kick 1", "Usage: fulcrumctl member list|"},
	    {"status extra", "Usage: fulcrumctl status"},
	    {"status --vip 1.2.3.4", "Usage: fulcrumctl status"},
	    {"status --bogus", "Usage: fulcrumctl status"},
	    {"status --json=1", "Usage: fulcrumctl status"},
	    {"status -x", "Usage: fulcrumctl status"},
	    {"status --timeout", "Usage: fulcrumctl status"},
	    {"status --timeout 0", "Usage: fulcrumctl status"},
	    {"status --timeout abc", "Usage: fulcrumctl status"},
	    {"status --timeout 1e9", "Usage: fulcrumctl status"},
	    {"status -s", "Usage: fulcrumctl status"},
	    {"status -s a:1 -s b:2", "Usage: fulcrumctl status"},
	    {"status -s a:0", "Usage: fulcrumctl status"},
	    {"member add", "Usage: fulcrumctl member add"},
	    {"member add 4", "Usage: fulcrumctl member add"},
	    {"member add 4 --raft 127.0.0.1:7004", "Usage: fulcrumctl member add"},
	    {"member add 0 --raft a:1 --api b:2", "Usage: fulcrumctl member add"},
	    {"member add x --raft a:1 --api b:2", "Usage: fulcrumctl member add"},
	    {"member promote", "Usage: fulcrumctl member promote"},
	    {"member promote -1", "Usage: fulcrumctl member promote"},
	    {"member remove 1 2", "Usage: fulcrumctl member remove"},
	    {"member remove 99999999999999999999", "Usage: fulcrumctl member remove"},
	    {"service", "Usage: fulcrumctl service list|"},
	    {"service show", "Usage: fulcrumctl service show"},
	    {"service show a/b", "Usage: fulcrumctl service show"},
	    {"service show a?b", "Usage: fulcrumctl service show"},
	    {"service show "
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	     "Usage: fulcrumctl service show"},
	    {"service create web", "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1", "Usage: fulcrumctl service create"},
	    {"service create web --port 80", "Usage: fulcrumctl service create"},
	    {"service create web --vip nope --port 80", "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 0", "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 65536", "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --proto sctp",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --mode magic",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --health-path /x",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --health tcp --health-path /x",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --health http --health-path x",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --health icmp",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --health tcp --health-interval 1000",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --health tcp --health-interval 1h",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --health tcp --rise 0",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --table-size -5",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --port 81",
	     "Usage: fulcrumctl service create"},
	    {"service create web --vip 10.0.0.1 --port 80 --weight 3",
	     "Usage: fulcrumctl service create"},
	    {"service update web", "Usage: fulcrumctl service update"},
	    {"service delete", "Usage: fulcrumctl service delete"},
	    {"backend", "Usage: fulcrumctl backend list|"},
	    {"backend list", "Usage: fulcrumctl backend list"},
	    {"backend list web --watch", "Usage: fulcrumctl backend list"},
	    {"backend show web", "Usage: fulcrumctl backend show"},
	    {"backend show web 0", "Usage: fulcrumctl backend show"},
	    {"backend show web 4294967296", "Usage: fulcrumctl backend show"},
	    {"backend show web 10.1.0.5", "Usage: fulcrumctl backend show"},
	    {"backend show web host:80", "Usage: fulcrumctl backend show"},
	    {"backend add web", "Usage: fulcrumctl backend add"},
	    {"backend add web host.example", "Usage: fulcrumctl backend add"},
	    {"backend add web 10.1.0.5:", "Usage: fulcrumctl backend add"},
	    {"backend add web [10.1.0.5]:80", "Usage: fulcrumctl backend add"},
	    {"backend add web 10.1.0.5:80 --port 81", "Usage: fulcrumctl backend add"},
	    {"backend add web 10.1.0.5:80 --ttl 10s --lease 3", "Usage: fulcrumctl backend add"},
	    {"backend add web 10.1.0.5:80 --ttl 2h", "Usage: fulcrumctl backend add"},
	    {"backend add web 10.1.0.5:80 --ttl 10", "Usage: fulcrumctl backend add"},
	    {"backend add web 10.1.0.5:80 --weight 1000001", "Usage: fulcrumctl backend add"},
	    {"backend add web 10.1.0.5:80 --lease 0", "Usage: fulcrumctl backend add"},
	    {"backend weight web 17", "Usage: fulcrumctl backend weight"},
	    {"backend weight web 17 heavy", "Usage: fulcrumctl backend weight"},
	    {"backend weight web 17 1000001", "Usage: fulcrumctl backend weight"},
	    {"backend drain web", "Usage: fulcrumctl backend drain"},
	    {"backend undrain web 17 18", "Usage: fulcrumctl backend undrain"},
	    {"backend remove web nope", "Usage: fulcrumctl backend remove"},
	    {"endpoints", "Usage: fulcrumctl endpoints"},
	    {"endpoints web --wait 5s", "Usage: fulcrumctl endpoints"},
	    {"endpoints web --watch --wait 0s", "Usage: fulcrumctl endpoints"},
	    {"endpoints web --index x", "Usage: fulcrumctl endpoints"},
	    {"endpoints web --port 80", "Usage: fulcrumctl endpoints"},
	    {"a b c d e f g h i", "Usage: fulcrumctl [GLOBAL"},
	};
	struct ctl_cmd cmd;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse_env(bad[i].line, NULL, NULL, &cmd, err, sizeof(err)) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i].line);
		assert_true(err[0] != '\0');
		assert_non_null(cmd.help);
		if (strncmp(cmd.help, bad[i].help_prefix, strlen(bad[i].help_prefix)) != 0)
			fail_msg("\"%s\": usage starts \"%.40s\"", bad[i].line, cmd.help);
		assert_null(cmd.body);
		ctl_cmd_free(&cmd);
	}
}

static void test_help_everywhere(void **state)
{
	static const struct {
		const char *line;
		const char *prefix;
	} cases[] = {
	    {"--help", "Usage: fulcrumctl [GLOBAL"},
	    {"-h", "Usage: fulcrumctl [GLOBAL"},
	    {"frobnicate --help", "Usage: fulcrumctl [GLOBAL"},
	    {"status --help", "Usage: fulcrumctl status"},
	    {"endpoints --help", "Usage: fulcrumctl endpoints"},
	    {"member --help", "Usage: fulcrumctl member list|"},
	    {"member kick --help", "Usage: fulcrumctl member list|"},
	    {"member list --help", "Usage: fulcrumctl member list"},
	    {"member add --help", "Usage: fulcrumctl member add"},
	    {"member promote -h", "Usage: fulcrumctl member promote"},
	    {"member remove --help", "Usage: fulcrumctl member remove"},
	    {"service --help", "Usage: fulcrumctl service list|"},
	    {"service list --help", "Usage: fulcrumctl service list"},
	    {"service show --help", "Usage: fulcrumctl service show"},
	    /* --help wins over missing arguments and bad options */
	    {"service create --help", "Usage: fulcrumctl service create"},
	    {"--help service create --bogus", "Usage: fulcrumctl service create"},
	    {"service update --help", "Usage: fulcrumctl service update"},
	    {"service delete --help", "Usage: fulcrumctl service delete"},
	    {"backend --help", "Usage: fulcrumctl backend list|"},
	    {"backend list --help", "Usage: fulcrumctl backend list"},
	    {"backend show --help", "Usage: fulcrumctl backend show"},
	    {"backend add --help", "Usage: fulcrumctl backend add"},
	    {"backend weight --help", "Usage: fulcrumctl backend weight"},
	    {"backend drain --help", "Usage: fulcrumctl backend drain"},
	    {"backend undrain --help", "Usage: fulcrumctl backend undrain"},
	    {"backend remove --help", "Usage: fulcrumctl backend remove"},
	};
	struct ctl_cmd cmd;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse(cases[i].line, &cmd) != 0)
			fail_msg("\"%s\" refused", cases[i].line);
		assert_true(cmd.want_help);
		if (strncmp(cmd.help, cases[i].prefix, strlen(cases[i].prefix)) != 0)
			fail_msg("\"%s\": help starts \"%.40s\"", cases[i].line, cmd.help);
		/* every help names the global options and ends with a newline */
		assert_non_null(strstr(cmd.help, "--servers"));
		assert_int_equal(cmd.help[strlen(cmd.help) - 1], '\n');
		assert_null(cmd.body);
	}
	assert_ptr_equal(ctl_help(), (parse("-h", &cmd), cmd.help));
	assert_non_null(strstr(ctl_help(), "3 cluster unreachable"));
}

/* BACKEND as ADDR:PORT is the uid every node computes (config_backend_uid). */
static void test_backend_id_from_address(void **state)
{
	struct ctl_cmd cmd;
	struct addr a;
	char want[128];

	(void)state;
	assert_int_equal(addr_parse("10.1.0.5", &a), 0);
	snprintf(want, sizeof(want), "/v1/services/web/backends/%u", config_backend_uid(&a, 8080));
	assert_int_equal(parse("backend drain web 10.1.0.5:8080", &cmd), 0);
	assert_string_equal(cmd.path, want);
	assert_string_equal(cmd.body, "{\"drain\":true}");
	ctl_cmd_free(&cmd);

	assert_int_equal(addr_parse("2001:db8::7", &a), 0);
	snprintf(want, sizeof(want), "/v1/services/web/backends/%u", config_backend_uid(&a, 80));
	assert_int_equal(parse("backend remove web [2001:db8::7]:80", &cmd), 0);
	assert_string_equal(cmd.path, want);
	assert_string_equal(cmd.method, "DELETE");
	ctl_cmd_free(&cmd);
}

/* ---- rendering --------------------------------------------------------------- */

static void test_render_status(void **state)
{
	(void)state;
	golden("status", status_body,
	       "Node:              2\n"
	       "Role:              follower\n"
	       "Term:              3\n"
	       "Leader:            1 (127.0.0.1:8001)\n"
	       "Commit:            42\n"
	       "Applied:           42\n"
	       "Revision:          42\n"
	       "State digest:      9f2c1e0d4b5a6978\n"
	       "Forwarding digest: 00a1b2c3d4e5f607\n"
	       "Services:          2\n"
	       "Leases:            3\n"
	       "Members:\n"
	       "  ID  ROLE     CONNECTED\n"
	       "  1   voter    yes\n"
	       "  2   voter    yes\n"
	       "  4   learner  no\n");
	/* No leader, forwarding digest not available (null), no members array. */
	golden("status",
	       "{\"id\": 1, \"role\": \"candidate\", \"term\": 9, \"leader\": 0,"
	       " \"leader_api\": null, \"forwarding_digest\": null}",
	       "Node:              1\n"
	       "Role:              candidate\n"
	       "Term:              9\n"
	       "Leader:            none\n"
	       "Commit:            -\n"
	       "Applied:           -\n"
	       "Revision:          -\n"
	       "State digest:      -\n"
	       "Forwarding digest: -\n"
	       "Services:          -\n"
	       "Leases:            -\n");
}

static void test_render_members(void **state)
{
	(void)state;
	golden("member list", members_body,
	       "ID  ROLE     LEADER  RAFT            API             CONNECTED  LAST-CONTACT\n"
	       "1   voter    yes     127.0.0.1:7001  127.0.0.1:8001  yes        0ms\n"
	       "2   voter    no      127.0.0.1:7002  127.0.0.1:8002  yes        40ms\n"
	       "14  learner  no      127.0.0.1:7014  127.0.0.1:8014  no         2m\n");
	golden("member add 4 --raft 127.0.0.1:7004 --api 127.0.0.1:8004",
	       "{\"id\": 4, \"voter\": false, \"raft_address\": \"127.0.0.1:7004\","
	       " \"api_address\": \"127.0.0.1:8004\"}",
	       "ID:           4\n"
	       "Role:         learner\n"
	       "Raft address: 127.0.0.1:7004\n"
	       "API address:  127.0.0.1:8004\n");
	golden("member promote 4", "{\"id\": 4, \"voter\": true}",
	       "ID:   4\n"
	       "Role: voter\n");
	golden("member remove 4", "{\"id\": 4, \"removed\": true}", "member 4 removed\n");
	golden("member list", "{\"members\": []}",
	       "ID  ROLE  LEADER  RAFT  API  CONNECTED  LAST-CONTACT\n");
}

static void test_render_services(void **state)
{
	(void)state;
	golden("service list", services_body,
	       "NAME  VIP           PORT  PROTO  MODE  BACKENDS  HEALTH        MODIFIED\n"
	       "dns   2001:db8::53  53    udp    dsr   0         none          7\n"
	       "web   10.0.0.10     80    tcp    nat   3         http /health  40\n");
	golden("service show web", WEB_SERVICE,
	       "Name:         web\n"
	       "VIP:          10.0.0.10:80\n"
	       "Protocol:     tcp\n"
	       "Mode:         nat\n"
	       "Announce:     no\n"
	       "Algorithm:    maglev\n"
	       "Table size:   65537\n"
	       "Max backends: 0\n"
	       "Health:       http /health every 1s, timeout 500ms, rise 2, fall 3\n"
	       "Backends:     3\n"
	       "Created:      12\n"
	       "Modified:     40\n");
	/* create answers with the object too; an IPv6 VIP is bracketed before its port */
	golden("service create dns --vip 2001:db8::53 --port 53",
	       "{\"name\": \"dns\", \"vip\": \"2001:db8::53\", \"port\": 53, \"protocol\": \"udp\","
	       " \"mode\": \"dsr\", \"announce\": true, \"algorithm\": \"maglev\", \"table_size\": "
	       "251,"
	       " \"max_backends\": 10, \"health\": {\"type\": \"none\"}, \"created\": 5,"
	       " \"modified\": 7, \"backends\": 0}",
	       "Name:         dns\n"
	       "VIP:          [2001:db8::53]:53\n"
	       "Protocol:     udp\n"
	       "Mode:         dsr\n"
	       "Announce:     yes\n"
	       "Algorithm:    maglev\n"
	       "Table size:   251\n"
	       "Max backends: 10\n"
	       "Health:       none\n"
	       "Backends:     0\n"
	       "Created:      5\n"
	       "Modified:     7\n");
	golden("service delete web",
	       "{\"name\": \"web\", \"deleted\": true, \"backends_removed\": 3}",
	       "service web deleted, backends removed: 3\n");
	golden("service list", "{\"services\": []}",
	       "NAME  VIP  PORT  PROTO  MODE  BACKENDS  HEALTH  MODIFIED\n");
}

static void test_render_backends(void **state)
{
	(void)state;
	golden("backend list web", backends_body,
	       "ID          ADDRESS      PORT  WEIGHT   STATE     LEASE   CREATED\n"
	       "3735928559  10.1.0.5     8080  100      active    57      58\n"
	       "17          2001:db8::7  80    1000000  draining  static  9\n");
	golden("backend add web 10.1.0.5:8080 --ttl 10s", BACKEND_1,
	       "ID:       3735928559\n"
	       "Address:  10.1.0.5:8080\n"
	       "Weight:   100\n"
	       "State:    active\n"
	       "Draining: no\n"
	       "Down:     no\n"
	       "Lease:    57\n"
	       "Created:  58\n");
	golden("backend drain web 17",
	       "{\"id\": 17, \"address\": \"2001:db8::7\", \"port\": 80, \"weight\": 10,"
	       " \"state\": \"draining\", \"draining\": true, \"down\": false, \"lease\": 0,"
	       " \"created\": 9}",
	       "ID:       17\n"
	       "Address:  [2001:db8::7]:80\n"
	       "Weight:   10\n"
	       "State:    draining\n"
	       "Draining: yes\n"
	       "Down:     no\n"
	       "Lease:    static\n"
	       "Created:  9\n");
	golden("backend remove web 17", "{\"id\": 17, \"deleted\": true}",
	       "backend 17 removed from web\n");
}

static void test_render_endpoints(void **state)
{
	(void)state;
	golden("endpoints web", endpoints_body,
	       "ID          ADDRESS      PORT  WEIGHT  STATE\n"
	       "3735928559  10.1.0.5     8080  100     active\n"
	       "17          2001:db8::7  80    0       draining\n");
	golden("endpoints web --watch", endpoints_body,
	       "index 40\n"
	       "ID          ADDRESS      PORT  WEIGHT  STATE\n"
	       "3735928559  10.1.0.5     8080  100     active\n"
	       "17          2001:db8::7  80    0       draining\n");
	/* --watch --json: one compact object per line */
	golden("endpoints web --watch --json",
	       "{\"service\": \"web\",\n \"index\": 41, \"endpoints\": []}",
	       "{\"service\":\"web\",\"index\":41,\"endpoints\":[]}\n");
}

static void test_render_json_and_errors(void **state)
{
	struct ctl_cmd cmd;
	struct rendered r;

	(void)state;
	/* --json prints the API's bytes as they came, newline added once. */
	assert_int_equal(parse("service list --json", &cmd), 0);
	r = render(&cmd, 200, services_body);
	assert_int_equal(r.rc, CTL_EXIT_OK);
	assert_int_equal(strncmp(r.out, services_body, strlen(services_body)), 0);
	assert_string_equal(r.out + strlen(services_body), "\n");
	rendered_free(&r);
	r = render(&cmd, 200, "{}\n");
	assert_string_equal(r.out, "{}\n");
	rendered_free(&r);

	/* An API error: code and message on stderr, exit 1; with --json also the body. */
	r = render(&cmd, 404,
		   "{\"error\": {\"code\": \"not_found\", \"message\": \"service \\\"web\\\": not "
		   "found\"}}");
	assert_int_equal(r.rc, CTL_EXIT_REFUSED);
	assert_string_equal(r.err,
			    "fulcrumctl: not_found: service \"web\": not found (HTTP 404)\n");
	assert_non_null(strstr(r.out, "\"not_found\""));
	rendered_free(&r);
	ctl_cmd_free(&cmd);

	assert_int_equal(parse("service create web --vip 10.0.0.1 --port 80", &cmd), 0);
	r = render(&cmd, 409,
		   "{\"error\": {\"code\": \"exists\", \"message\": \"service exists\"}}");
	assert_int_equal(r.rc, CTL_EXIT_REFUSED);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "fulcrumctl: exists: service exists (HTTP 409)\n");
	rendered_free(&r);

	r = render(&cmd, 503, "{\"error\": {\"code\": \"no_leader\", \"message\": \"no leader\"}}");
	assert_int_equal(r.rc, CTL_EXIT_REFUSED);
	assert_string_equal(r.err, "fulcrumctl: no_leader: no leader (HTTP 503)\n");
	rendered_free(&r);

	/* Not our error format (a proxy's HTML page), mistyped error fields. */
	r = render(&cmd, 502, "<html>bad gateway</html>");
	assert_int_equal(r.rc, CTL_EXIT_REFUSED);
	assert_non_null(strstr(r.err, "HTTP 502"));
	rendered_free(&r);
	r = render(&cmd, 400, "{\"error\": {\"code\": 7, \"message\": [\"a\", {}]}}");
	assert_int_equal(r.rc, CTL_EXIT_REFUSED);
	assert_string_equal(r.err, "fulcrumctl: 7: a,{...} (HTTP 400)\n");
	rendered_free(&r);
	/* 3xx is not success: fulcrumctl does not follow redirects. */
	r = render(&cmd, 307, "");
	assert_int_equal(r.rc, CTL_EXIT_REFUSED);
	rendered_free(&r);
	/* 2xx with a body that is not an object. */
	r = render(&cmd, 201, "[1,2]");
	assert_int_equal(r.rc, CTL_EXIT_REFUSED);
	rendered_free(&r);
	r = render(&cmd, 200, NULL);
	assert_int_equal(r.rc, CTL_EXIT_REFUSED);
	rendered_free(&r);
	ctl_cmd_free(&cmd);
}

/* Mistyped and missing fields print as what they are, or "-"; nothing is lost or crashes. */
static void test_render_mistyped(void **state)
{
	(void)state;
	golden("backend list web",
	       "{\"backends\": [{\"id\": \"x\", \"address\": 5, \"port\": null, \"weight\": 1.5,"
	       " \"state\": true, \"lease\": \"seven\", \"created\": [1, [2], {\"a\": 1}]},"
	       " 42, {}, [], null]}",
	       "ID  ADDRESS  PORT  WEIGHT  STATE  LEASE  CREATED\n"
	       "x   5        -     1.5     true   seven  1,[...],{...}\n"
	       "-   -        -     -       -      -      -\n"
	       "-   -        -     -       -      -      -\n"
	       "-   -        -     -       -      -      -\n"
	       "-   -        -     -       -      -      -\n");
	/* The list itself mistyped: header only. */
	golden("service list", "{\"services\": {\"web\": 1}}",
	       "NAME  VIP  PORT  PROTO  MODE  BACKENDS  HEALTH  MODIFIED\n");
	golden("service show web",
	       "{\"name\": \"web\", \"vip\": {}, \"health\": \"http\", \"announce\": \"no\"}",
	       "Name:         web\n"
	       "VIP:          {...}\n"
	       "Protocol:     -\n"
	       "Mode:         -\n"
	       "Announce:     no\n"
	       "Algorithm:    -\n"
	       "Table size:   -\n"
	       "Max backends: -\n"
	       "Health:       http\n"
	       "Backends:     -\n"
	       "Created:      -\n"
	       "Modified:     -\n");
	golden("service show web", "{\"health\": {\"type\": \"tcp\", \"interval_ms\": -5}}",
	       "Name:         -\n"
	       "VIP:          -\n"
	       "Protocol:     -\n"
	       "Mode:         -\n"
	       "Announce:     -\n"
	       "Algorithm:    -\n"
	       "Table size:   -\n"
	       "Max backends: -\n"
	       "Health:       tcp every -5, timeout -, rise -, fall -\n"
	       "Backends:     -\n"
	       "Created:      -\n"
	       "Modified:     -\n");
	golden("member remove 4", "{}", "member - removed\n");
}

/* A hostile server cannot drive the terminal, nor blow up a column. */
static void test_render_sanitises(void **state)
{
	char body[1024], want[1024];
	char name[201];

	(void)state;
	golden("endpoints web",
	       "{\"endpoints\": [{\"id\": 1, \"address\": \"\\u001b[2J\\u0000x\\ny\","
	       " \"port\": 1, \"weight\": 1, \"state\": \"\\u00e9t\\u00e9\"}]}",
	       "ID  ADDRESS   PORT  WEIGHT  STATE\n"
	       "1   ?[2J?x?y  1     1       \xc3\xa9t\xc3\xa9\n");
	memset(name, 'n', 200);
	name[200] = '\0';
	snprintf(body, sizeof(body), "{\"services\": [{\"name\": \"%s\"}]}", name);
	snprintf(want, sizeof(want),
		 "NAME%*s  VIP  PORT  PROTO  MODE  BACKENDS  HEALTH  MODIFIED\n"
		 "%.61s...  -    -     -      -     -         -       -\n",
		 60, "", name);
	golden("service list", body, want);
	/* Cutting never splits a multi-byte character: 70 x U+00E9 = 61 of them + "...". */
	{
		char e[512] = "", w[512] = "";
		int i;

		for (i = 0; i < 70; i++)
			strcat(e, "\\u00e9");
		for (i = 0; i < 61; i++)
			strcat(w, "\xc3\xa9");
		snprintf(body, sizeof(body), "{\"id\": \"%s\", \"removed\": true}", e);
		snprintf(want, sizeof(want), "member %s... removed\n", w);
		golden("member remove 4", body, want);
	}
}

/*
 * Fuzz-minded: mutate the sample answers byte by byte and re-type their
 * fields, render each for every command. Properties: no crash (ASan/UBSan
 * watch), the exit code is 0 or 1, and stdout never carries a control byte
 * other than newline.
 */
static const char *const samples[] = {status_body,    members_body, services_body, backends_body,
				      endpoints_body, WEB_SERVICE,  BACKEND_1};

static const char *const cmd_lines[] = {
    "status",
    "member list",
    "member add 4 --raft a:1 --api b:2",
    "member promote 4",
    "member remove 4",
    "service list",
    "service show web",
    "service delete web",
    "backend list web",
    "backend show web 1",
    "backend remove web 1",
    "endpoints web",
    "endpoints web --watch",
    "endpoints web --watch --json",
};

static void check_output(const struct rendered *r)
{
	const char *p;

	assert_true(r->rc == CTL_EXIT_OK || r->rc == CTL_EXIT_REFUSED);
	for (p = r->out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n')
			fail_msg("control byte 0x%02x in output", (unsigned char)*p);
}

static void test_render_fuzz(void **state)
{
	static const char *const junk[] = {
	    "null", "true", "-1",	"1e308",       "\"\"",
	    "[]",   "{}",   "[[[[]]]]", "\"\\u0007\"", "9223372036854775807"};
	struct ctl_cmd cmds[sizeof(cmd_lines) / sizeof(cmd_lines[0])];
	uint64_t seed = 0x5eed0c71;
	size_t c, it, nc = sizeof(cmd_lines) / sizeof(cmd_lines[0]);
	char buf[4096];
	struct rendered r;

	(void)state;
	for (c = 0; c < nc; c++)
		assert_int_equal(parse(cmd_lines[c], &cmds[c]), 0);
	for (it = 0; it < 1500; it++) {
		const char *src = samples[tu_below(&seed, sizeof(samples) / sizeof(samples[0]))];
		size_t len = strlen(src), k, muts;

		memcpy(buf, src, len + 1);
		if (it % 2 == 0) {
			/* byte mutations (mostly invalid JSON, sometimes still valid) */
			muts = 1 + tu_below(&seed, 4);
			for (k = 0; k < muts; k++)
				buf[tu_below(&seed, len)] = (char)tu_below(&seed, 256);
			buf[len] = '\0';
		} else {
			/* structural: replace the value after a random ':' with junk */
			const char *colon;
			size_t at = tu_below(&seed, len);

			colon = strchr(src + at, ':');
			if (colon != NULL) {
				size_t head = (size_t)(colon - src) + 1;
				const char *tail = colon + 1;
				const char *j =
				    junk[tu_below(&seed, sizeof(junk) / sizeof(junk[0]))];
				int depth = 0;

				/* skip one value: up to the ',' or '}' closing it at depth 0 */
				while (*tail != '\0') {
					if (*tail == '{' || *tail == '[')
						depth++;
					else if ((*tail == '}' || *tail == ']') && depth-- == 0)
						break;
					else if (*tail == ',' && depth == 0)
						break;
					tail++;
				}
				snprintf(buf, sizeof(buf), "%.*s %s%s", (int)head, src, j, tail);
			}
		}
		for (c = 0; c < nc; c++) {
			r = render(&cmds[c], 200, buf);
			check_output(&r);
			rendered_free(&r);
		}
		r = render(&cmds[it % nc], 400 + (long)tu_below(&seed, 200), buf);
		assert_int_equal(r.rc, CTL_EXIT_REFUSED);
		rendered_free(&r);
	}
	for (c = 0; c < nc; c++)
		ctl_cmd_free(&cmds[c]);
}

/* ---- transport outcomes and exit codes ------------------------------------------ */

static void test_attempt_and_exit_codes(void **state)
{
	(void)state;
	/* An HTTP response, whatever its status, is the answer. */
	assert_int_equal(ctl_attempt_classify(CURLE_OK, 1, "GET"), CTL_ATTEMPT_ANSWERED);
	assert_int_equal(ctl_attempt_classify(CURLE_OK, 1, "POST"), CTL_ATTEMPT_ANSWERED);
	/* Down or silent: the next address, for reads and for writes never sent. */
	assert_int_equal(ctl_attempt_classify(CURLE_COULDNT_CONNECT, 0, "GET"), CTL_ATTEMPT_NEXT);
	assert_int_equal(ctl_attempt_classify(CURLE_COULDNT_CONNECT, 0, "POST"), CTL_ATTEMPT_NEXT);
	assert_int_equal(ctl_attempt_classify(CURLE_COULDNT_RESOLVE_HOST, 0, "DELETE"),
			 CTL_ATTEMPT_NEXT);
	assert_int_equal(ctl_attempt_classify(CURLE_OPERATION_TIMEDOUT, 0, "PATCH"),
			 CTL_ATTEMPT_NEXT);
	assert_int_equal(ctl_attempt_classify(CURLE_OPERATION_TIMEDOUT, 1, "GET"),
			 CTL_ATTEMPT_NEXT);
	assert_int_equal(ctl_attempt_classify(CURLE_GOT_NOTHING, 1, "GET"), CTL_ATTEMPT_NEXT);
	assert_int_equal(ctl_attempt_classify(CURLE_RECV_ERROR, 1, "GET"), CTL_ATTEMPT_NEXT);
	/* A write that may have arrived is not sent again. */
	assert_int_equal(ctl_attempt_classify(CURLE_OPERATION_TIMEDOUT, 1, "POST"),
			 CTL_ATTEMPT_UNKNOWN);
	assert_int_equal(ctl_attempt_classify(CURLE_GOT_NOTHING, 1, "DELETE"), CTL_ATTEMPT_UNKNOWN);
	assert_int_equal(ctl_attempt_classify(CURLE_RECV_ERROR, 1, "PATCH"), CTL_ATTEMPT_UNKNOWN);
	/* Our own bound or a local failure. */
	assert_int_equal(ctl_attempt_classify(CURLE_WRITE_ERROR, 1, "GET"), CTL_ATTEMPT_FAILED);
	assert_int_equal(ctl_attempt_classify(CURLE_FILESIZE_EXCEEDED, 1, "GET"),
			 CTL_ATTEMPT_FAILED);
	assert_int_equal(ctl_attempt_classify(CURLE_OUT_OF_MEMORY, 0, "GET"), CTL_ATTEMPT_FAILED);

	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 200), CTL_EXIT_OK);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 201), CTL_EXIT_OK);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 299), CTL_EXIT_OK);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 199), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 300), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 400), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 401), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 403), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 404), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 409), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 500), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 503), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_ANSWERED, 504), CTL_EXIT_REFUSED);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_NEXT, 0), CTL_EXIT_UNREACHABLE);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_UNKNOWN, 0), CTL_EXIT_UNREACHABLE);
	assert_int_equal(ctl_exit_code(CTL_ATTEMPT_FAILED, 0), CTL_EXIT_REFUSED);
	assert_int_equal(CTL_EXIT_OK, 0);
	assert_int_equal(CTL_EXIT_REFUSED, 1);
	assert_int_equal(CTL_EXIT_USAGE, 2);
	assert_int_equal(CTL_EXIT_UNREACHABLE, 3);
}

static void test_buf_bound(void **state)
{
	struct ctl_buf b = {.max = 10000};
	char chunk[999];
	size_t i;

	(void)state;
	memset(chunk, 'a', sizeof(chunk));
	for (i = 0; i < 10; i++)
		assert_int_equal(ctl_buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 9990);
	assert_int_equal(ctl_buf_append(&b, chunk, 11), -EFBIG);
	assert_int_equal(b.len, 9990);
	assert_int_equal(ctl_buf_append(&b, chunk, 10), 0);
	assert_int_equal(b.len, 10000);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(ctl_buf_append(&b, chunk, 1), -EFBIG);
	assert_int_equal(ctl_buf_append(&b, chunk, SIZE_MAX), -EFBIG);
	ctl_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.max, 10000);
	/* default bound */
	b.max = 0;
	assert_int_equal(ctl_buf_append(&b, "", 0), 0);
	assert_string_equal(b.data, "");
	assert_int_equal(ctl_buf_append(&b, chunk, CTL_RESPONSE_MAX + 1), -EFBIG);
	ctl_buf_free(&b);
}

static void test_watch_helpers(void **state)
{
	struct ctl_cmd cmd;
	uint64_t index = 0;

	(void)state;
	assert_int_equal(ctl_response_index(endpoints_body, strlen(endpoints_body), &index), 0);
	assert_int_equal(index, 40);
	assert_int_equal(ctl_response_index("{\"index\": \"40\"}", 15, &index), -EINVAL);
	assert_int_equal(ctl_response_index("{\"index\": -1}", 13, &index), -EINVAL);
	assert_int_equal(ctl_response_index("[40]", 4, &index), -EINVAL);
	assert_int_equal(ctl_response_index("{\"index\": 4", 11, &index), -EINVAL);
	assert_int_equal(ctl_response_index(NULL, 0, &index), -EINVAL);

	assert_int_equal(parse("endpoints web --watch --healthy --wait 10s", &cmd), 0);
	assert_true(cmd.watch);
	assert_int_equal(cmd.wait_ms, 10000);
	assert_string_equal(cmd.path, "/v1/services/web/endpoints?healthy=1");
	assert_int_equal(ctl_endpoints_path(&cmd, 40), 0);
	assert_string_equal(cmd.path, "/v1/services/web/endpoints?healthy=1&index=40&wait=10000ms");
	assert_int_equal(ctl_endpoints_path(&cmd, 41), 0);
	assert_string_equal(cmd.path, "/v1/services/web/endpoints?healthy=1&index=41&wait=10000ms");
	ctl_cmd_free(&cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_servers_valid),	    cmocka_unit_test(test_servers_invalid),
	    cmocka_unit_test(test_parse_requests),	    cmocka_unit_test(test_parse_globals),
	    cmocka_unit_test(test_parse_usage_errors),	    cmocka_unit_test(test_help_everywhere),
	    cmocka_unit_test(test_backend_id_from_address), cmocka_unit_test(test_render_status),
	    cmocka_unit_test(test_render_members),	    cmocka_unit_test(test_render_services),
	    cmocka_unit_test(test_render_backends),	    cmocka_unit_test(test_render_endpoints),
	    cmocka_unit_test(test_render_json_and_errors),  cmocka_unit_test(test_render_mistyped),
	    cmocka_unit_test(test_render_sanitises),	    cmocka_unit_test(test_render_fuzz),
	    cmocka_unit_test(test_attempt_and_exit_codes),  cmocka_unit_test(test_buf_bound),
	    cmocka_unit_test(test_watch_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
