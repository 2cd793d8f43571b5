/* ctl: fulcrumctl's pure parts (see ctl.h; the CLI is documented in docs/fulcrumctl.md). */
#include "controlplane/ctl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "controlplane/config.h"
#include "dataplane/addr.h"

/* ---- small helpers ------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Strict decimal: digits only (no sign, blanks or base prefixes), within [min, max]. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * "500ms", "10s", "2m": a unit is required, because the API's body fields
 * are milliseconds while its wait parameter defaults to seconds; a bare
 * number would be read one way or the other by someone.
 */
static int parse_duration_ms(const char *s, uint64_t max_ms, uint64_t *out)
{
	char digits[24];
	size_t n = 0;
	uint64_t v, mult;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0 || n >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (strcmp(s + n, "ms") == 0)
		mult = 1;
	else if (strcmp(s + n, "s") == 0)
		mult = 1000;
	else if (strcmp(s + n, "m") == 0)
		mult = 60000;
	else
		return -EINVAL;
	if (parse_u64(digits, 0, max_ms / mult, &v) != 0)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

/* Printable ASCII without blanks: what may go into a header or a JSON address field as is. */
static int token_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* ---- server list ------------------------------------------------------------ */

static int host_name_ok(const char *h, size_t n)
{
	size_t i;

	if (n == 0 || n >= CTL_HOST_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-' && h[i] != '_')
			return 0;
	return 1;
}

static int host_v6_ok(const char *h, size_t n)
{
	size_t i;

	if (n == 0 || n >= CTL_HOST_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
			return 0;
	return 1;
}

static int port_parse(const char *p, size_t n, unsigned *port)
{
	char buf[8];
	uint64_t v;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	if (parse_u64(buf, 1, 65535, &v) != 0)
		return -EINVAL;
	*port = (unsigned)v;
	return 0;
}

static int server_parse(const char *s, size_t n, char *base, char *err, size_t errlen)
{
	const char *scheme = "http";
	const char *host, *colon;
	size_t hn;
	unsigned port = CTL_DEFAULT_PORT;
	int v6 = 0;

	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0)
		return fail(err, errlen, "empty address in the server list");
	if (n > 7 && strncmp(s, "http://", 7) == 0) {
		s += 7;
		n -= 7;
	} else if (n > 8 && strncmp(s, "https://", 8) == 0) {
		scheme = "https";
		s += 8;
		n -= 8;
	}
	if (n > 0 && s[n - 1] == '/')
		n--;
	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);

		if (close == NULL)
			return fail(err, errlen, "\"%.*s\": no ']' after the IPv6 address", (int)n,
				    s);
		host = s + 1;
		hn = (size_t)(close - host);
		v6 = 1;
		if (close + 1 < s + n) {
			if (close[1] != ':' ||
			    port_parse(close + 2, (size_t)(s + n - close - 2), &port) != 0)
				return fail(err, errlen, "\"%.*s\": bad port", (int)n, s);
		}
	} else {
		colon = memchr(s, ':', n);
		if (colon != NULL && memchr(colon + 1, ':', (size_t)(s + n - colon - 1)) != NULL) {
			host = s; /* a bare IPv6 address: the port is the default */
			hn = n;
			v6 = 1;
		} else if (colon != NULL) {
			host = s;
			hn = (size_t)(colon - s);
			if (port_parse(colon + 1, (size_t)(s + n - colon - 1), &port) != 0)
				return fail(err, errlen, "\"%.*s\": bad port (1..65535)", (int)n,
					    s);
		} else {
			host = s;
			hn = n;
		}
	}
	if (v6 ? !host_v6_ok(host, hn) : !host_name_ok(host, hn))
		return fail(err, errlen, "\"%.*s\": not a host name or address", (int)n, s);
	snprintf(base, CTL_URL_MAX, v6 ? "%s://[%.*s]:%u" : "%s://%.*s:%u", scheme, (int)hn, host,
		 port);
	return 0;
}

int ctl_servers_parse(const char *list, struct ctl_servers *out, char *err, size_t errlen)
{
	struct ctl_servers tmp;
	const char *p = list, *comma;
	int rc;

	if (list == NULL)
		return fail(err, errlen, "no server address");
	memset(&tmp, 0, sizeof(tmp));
	for (;;) {
		comma = strchr(p, ',');
		if (tmp.n == CTL_MAX_SERVERS)
			return fail(err, errlen, "more than %d server addresses", CTL_MAX_SERVERS);
		rc = server_parse(p, comma != NULL ? (size_t)(comma - p) : strlen(p),
				  tmp.base[tmp.n], err, errlen);
		if (rc != 0)
			return rc;
		tmp.n++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*out = tmp;
	return 0;
}

/* ---- help texts ------------------------------------------------------------- */

#define GLOBAL_HELP                                                                                \
	"Global options (anywhere on the line):\n"                                                 \
	"  -s, --servers ADDR,...  API addresses to try in order; a node that is down or silent\n" \
	"                          is skipped [$FULCRUM_SERVERS, else " CTL_DEFAULT_SERVER "]\n"   \
	"      --token T           bearer token [$FULCRUM_TOKEN]\n"                                \
	"      --json              print the API's JSON instead of tables\n"                       \
	"      --timeout S         seconds per address [10]\n"                                     \
	"      --stale             reads: answer from the node's own state (no ReadIndex)\n"       \
	"  -h, --help              this help\n"

static const char help_top[] =
    "Usage: fulcrumctl [GLOBAL OPTIONS] COMMAND [ARGS]\n"
    "Operate a Fulcrum cluster through its HTTP/JSON control API.\n"
    "\n"
    "Commands:\n"
    "  status                                   this node's Raft and state view\n"
    "  member list|add|promote|remove           cluster membership\n"
    "  service list|show|create|update|delete   services (VIP, port, mode, health check)\n"
    "  backend list|show|add|weight|drain|undrain|remove\n"
    "                                           a service's backends\n"
    "  endpoints SERVICE [--watch]              discovery view, optionally followed\n"
    "\n" GLOBAL_HELP "\n"
    "Every command takes --help, e.g. fulcrumctl service create --help.\n"
    "Exit codes: 0 ok, 1 refused by the API, 2 usage, 3 cluster unreachable.\n";

static const char help_status[] =
    "Usage: fulcrumctl status\n"
    "The answering node's view: id, role, term, leader, commit and\n"
    "applied index, revision, state and forwarding digests, members.\n"
    "\n" GLOBAL_HELP;

static const char help_member[] =
    "Usage: fulcrumctl member list|add|promote|remove ...\n"
    "  member list                                  members, roles and connections\n"
    "  member add ID --raft HOST:PORT --api HOST:PORT   add a node as a learner\n"
    "  member promote ID                            make a caught-up learner a voter\n"
    "  member remove ID                             remove a node (it stops)\n"
    "\n" GLOBAL_HELP;

static const char help_member_list[] = "Usage: fulcrumctl member list\n"
				       "Raft's view of the members (voter or learner, connected, "
				       "last contact)\n"
				       "merged with their Raft and API addresses.\n"
				       "\n" GLOBAL_HELP;

static const char help_member_add[] =
    "Usage: fulcrumctl member add ID --raft HOST:PORT --api HOST:PORT\n"
    "Add node ID (its Raft node id, >= 1) as a learner: it receives the log but\n"
    "does not vote until promoted. Start the node with bootstrap = false first.\n"
    "  --raft HOST:PORT   its Raft address (cluster.raft_listen), as reachable from here\n"
    "  --api HOST:PORT    its API address (cluster.api_listen)\n"
    "\n" GLOBAL_HELP;

static const char help_member_promote[] =
    "Usage: fulcrumctl member promote ID\n"
    "Make learner ID a voter. Refused (conflict) while it has not caught up: retry.\n"
    "\n" GLOBAL_HELP;

static const char help_member_remove[] =
    "Usage: fulcrumctl member remove ID\n"
    "Remove node ID from the cluster configuration; the removed node stops.\n"
    "\n" GLOBAL_HELP;

static const char help_service[] =
    "Usage: fulcrumctl service list|show|create|update|delete ...\n"
    "  service list                       all services\n"
    "  service show NAME                  one service\n"
    "  service create NAME --vip ADDR --port N [OPTIONS]\n"
    "  service update NAME --vip ADDR --port N [OPTIONS]   replace the definition\n"
    "  service delete NAME                remove it, its backends and its leases\n"
    "\n" GLOBAL_HELP;

static const char help_service_list[] = "Usage: fulcrumctl service list\n"
					"All services in name order.\n"
					"\n" GLOBAL_HELP;

static const char help_service_show[] = "Usage: fulcrumctl service show NAME\n"
					"One service's definition (backends: fulcrumctl backend "
					"list NAME).\n"
					"\n" GLOBAL_HELP;

#define SERVICE_OPTS_HELP                                                                          \
	"  --vip ADDR              virtual IP (IPv4 or IPv6), required\n"                          \
	"  --port N                virtual port 1..65535, required\n"                              \
	"  --protocol tcp|udp      [tcp]\n"                                                        \
	"  --mode nat|dsr|tunnel   forwarding mode [nat]\n"                                        \
	"  --announce              answer ARP/ND for the VIP\n"                                    \
	"  --table-size M          Maglev table size, a prime [65537]\n"                           \
	"  --max-backends N        limit [4096]\n"                                                 \
	"  --health none|tcp|http  health check [none]\n"                                          \
	"  --health-path PATH      http: the path to GET (e.g. /health)\n"                         \
	"  --health-interval DUR   e.g. 1s (DUR: 500ms, 10s, 1m)\n"                                \
	"  --health-timeout DUR    e.g. 500ms\n"                                                   \
	"  --rise N, --fall N      checks to become healthy / unhealthy\n"

static const char help_service_create[] =
    "Usage: fulcrumctl service create NAME --vip ADDR --port N [OPTIONS]\n"
    "Create a service. NAME is [A-Za-z0-9._-], at most 63 characters.\n" SERVICE_OPTS_HELP
    "\n" GLOBAL_HELP;

static const char help_service_update[] =
    "Usage: fulcrumctl service update NAME --vip ADDR --port N [OPTIONS]\n"
    "Replace a service's whole definition (its backends stay). Options left out\n"
    "take their defaults, not their current values.\n" SERVICE_OPTS_HELP "\n" GLOBAL_HELP;

static const char help_service_delete[] =
    "Usage: fulcrumctl service delete NAME\n"
    "Remove the service, its backends and the leases scoped to it.\n"
    "\n" GLOBAL_HELP;

#define BACKEND_ID_HELP                                                                            \
	"BACKEND is the backend's id (as listed) or its ADDR:PORT ([v6]:PORT for IPv6).\n"

static const char help_backend[] =
    "Usage: fulcrumctl backend list|show|add|weight|drain|undrain|remove ...\n"
    "  backend list SERVICE [--healthy]          a service's backends\n"
    "  backend show SERVICE BACKEND              one backend\n"
    "  backend add SERVICE ADDR[:PORT] [--weight W] [--ttl DUR | --lease ID]\n"
    "  backend weight SERVICE BACKEND W          set its weight (0..1000000)\n"
    "  backend drain SERVICE BACKEND             no new flows; established flows stay\n"
    "  backend undrain SERVICE BACKEND           new flows again\n"
    "  backend remove SERVICE BACKEND            deregister it now\n" BACKEND_ID_HELP
    "\n" GLOBAL_HELP;

static const char help_backend_list[] = "Usage: fulcrumctl backend list SERVICE [--healthy]\n"
					"A service's backends in id order.\n"
					"  --healthy   only backends in state active\n"
					"\n" GLOBAL_HELP;

static const char help_backend_show[] =
    "Usage: fulcrumctl backend show SERVICE BACKEND\n" BACKEND_ID_HELP "\n" GLOBAL_HELP;

static const char help_backend_add[] =
    "Usage: fulcrumctl backend add SERVICE ADDR[:PORT] [--port N] [--weight W]\n"
    "                              [--ttl DUR | --lease ID]\n"
    "Register a backend ([v6]:PORT for IPv6). Without a port it uses the service's.\n"
    "Registering an existing ADDR:PORT again replaces its weight and lease.\n"
    "  --port N      backend port (instead of ADDR:PORT)\n"
    "  --weight W    0..1000000 [100]\n"
    "  --ttl DUR     own it by a new lease with this TTL (1s..1h); it is removed\n"
    "                when the lease expires (keepalives: PUT /v1/leases/ID/keepalive)\n"
    "  --lease ID    own it by an existing lease of the service\n"
    "Without --ttl or --lease the backend is static (admin token).\n"
    "\n" GLOBAL_HELP;

static const char help_backend_weight[] =
    "Usage: fulcrumctl backend weight SERVICE BACKEND W\n"
    "Set the configured weight (0..1000000).\n" BACKEND_ID_HELP "\n" GLOBAL_HELP;

static const char help_backend_drain[] =
    "Usage: fulcrumctl backend drain SERVICE BACKEND\n"
    "Drain: weight 0 for new flows, established flows stay on it.\n" BACKEND_ID_HELP
    "\n" GLOBAL_HELP;

static const char help_backend_undrain[] =
    "Usage: fulcrumctl backend undrain SERVICE BACKEND\n"
    "Undo a drain: the backend gets new flows by its weight again.\n" BACKEND_ID_HELP
    "\n" GLOBAL_HELP;

static const char help_backend_remove[] =
    "Usage: fulcrumctl backend remove SERVICE BACKEND\n"
    "Deregister the backend immediately.\n" BACKEND_ID_HELP "\n" GLOBAL_HELP;

static const char help_endpoints[] =
    "Usage: fulcrumctl endpoints SERVICE [--healthy] [--watch] [--index R] [--wait DUR]\n"
    "What a client needs to reach the service's backends (effective weights).\n"
    "  --healthy     only endpoints in state active\n"
    "  --watch       keep printing the list each time it changes (long-poll;\n"
    "                with --json: one JSON object per line)\n"
    "  --index R     wait until the service's index passes R\n"
    "  --wait DUR    long-poll bound [30s]\n"
    "\n" GLOBAL_HELP;

const char *ctl_help(void)
{
	return help_top;
}

/* ---- options and commands --------------------------------------------------- */

enum opt_id {
	O_SERVERS,
	O_TOKEN,
	O_JSON,
	O_TIMEOUT,
	O_STALE,
	O_HELP,
	O_RAFT,
	O_API,
	O_VIP,
	O_PORT,
	O_PROTOCOL,
	O_MODE,
	O_ANNOUNCE,
	O_TABLE_SIZE,
	O_MAX_BACKENDS,
	O_HEALTH,
	O_HEALTH_PATH,
	O_HEALTH_INTERVAL,
	O_HEALTH_TIMEOUT,
	O_RISE,
	O_FALL,
	O_WEIGHT,
	O_TTL,
	O_LEASE,
	O_HEALTHY,
	O_WATCH,
	O_INDEX,
	O_WAIT,
	O__COUNT
};

#define BIT(o) (1ull << (o))
#define GLOBAL_OPTS                                                                                \
	(BIT(O_SERVERS) | BIT(O_TOKEN) | BIT(O_JSON) | BIT(O_TIMEOUT) | BIT(O_STALE) | BIT(O_HELP))
#define SERVICE_OPTS                                                                               \
	(BIT(O_VIP) | BIT(O_PORT) | BIT(O_PROTOCOL) | BIT(O_MODE) | BIT(O_ANNOUNCE) |              \
	 BIT(O_TABLE_SIZE) | BIT(O_MAX_BACKENDS) | BIT(O_HEALTH) | BIT(O_HEALTH_PATH) |            \
	 BIT(O_HEALTH_INTERVAL) | BIT(O_HEALTH_TIMEOUT) | BIT(O_RISE) | BIT(O_FALL))

struct opt_def {
	const char *name; /* long name without "--" */
	char shortname;	  /* 0: none */
	int has_arg;
	enum opt_id id;
};

static const struct opt_def opt_defs[] = {
    {"servers", 's', 1, O_SERVERS},
    {"token", 0, 1, O_TOKEN},
    {"json", 0, 0, O_JSON},
    {"timeout", 0, 1, O_TIMEOUT},
    {"stale", 0, 0, O_STALE},
    {"help", 'h', 0, O_HELP},
    {"raft", 0, 1, O_RAFT},
    {"api", 0, 1, O_API},
    {"vip", 0, 1, O_VIP},
    {"port", 0, 1, O_PORT},
    {"protocol", 0, 1, O_PROTOCOL},
    {"proto", 0, 1, O_PROTOCOL},
    {"mode", 0, 1, O_MODE},
    {"announce", 0, 0, O_ANNOUNCE},
    {"table-size", 0, 1, O_TABLE_SIZE},
    {"max-backends", 0, 1, O_MAX_BACKENDS},
    {"health", 0, 1, O_HEALTH},
    {"health-path", 0, 1, O_HEALTH_PATH},
    {"health-interval", 0, 1, O_HEALTH_INTERVAL},
    {"health-timeout", 0, 1, O_HEALTH_TIMEOUT},
    {"rise", 0, 1, O_RISE},
    {"fall", 0, 1, O_FALL},
    {"weight", 0, 1, O_WEIGHT},
    {"ttl", 0, 1, O_TTL},
    {"lease", 0, 1, O_LEASE},
    {"healthy", 0, 0, O_HEALTHY},
    {"watch", 0, 0, O_WATCH},
    {"index", 0, 1, O_INDEX},
    {"wait", 0, 1, O_WAIT},
};

struct cmd_def {
	const char *group; /* "member", ... or NULL for a top-level command */
	const char *verb;  /* NULL: the group itself (help only) */
	enum ctl_op op;
	unsigned min_args, max_args; /* positional arguments after the command words */
	uint64_t opts;		     /* command options allowed besides the global ones */
	const char *help;
};

static const struct cmd_def cmd_defs[] = {
    {NULL, "status", CTL_OP_STATUS, 0, 0, 0, help_status},
    {NULL, "endpoints", CTL_OP_ENDPOINTS, 1, 1,
     BIT(O_HEALTHY) | BIT(O_WATCH) | BIT(O_INDEX) | BIT(O_WAIT), help_endpoints},
    {"member", NULL, CTL_OP_NONE, 0, 0, 0, help_member},
    {"member", "list", CTL_OP_MEMBER_LIST, 0, 0, 0, help_member_list},
    {"member", "add", CTL_OP_MEMBER_ADD, 1, 1, BIT(O_RAFT) | BIT(O_API), help_member_add},
    {"member", "promote", CTL_OP_MEMBER_PROMOTE, 1, 1, 0, help_member_promote},
    {"member", "remove", CTL_OP_MEMBER_REMOVE, 1, 1, 0, help_member_remove},
    {"service", NULL, CTL_OP_NONE, 0, 0, 0, help_service},
    {"service", "list", CTL_OP_SERVICE_LIST, 0, 0, 0, help_service_list},
    {"service", "show", CTL_OP_SERVICE_SHOW, 1, 1, 0, help_service_show},
    {"service", "create", CTL_OP_SERVICE_CREATE, 1, 1, SERVICE_OPTS, help_service_create},
    {"service", "update", CTL_OP_SERVICE_UPDATE, 1, 1, SERVICE_OPTS, help_service_update},
    {"service", "delete", CTL_OP_SERVICE_DELETE, 1, 1, 0, help_service_delete},
    {"backend", NULL, CTL_OP_NONE, 0, 0, 0, help_backend},
    {"backend", "list", CTL_OP_BACKEND_LIST, 1, 1, BIT(O_HEALTHY), help_backend_list},
    {"backend", "show", CTL_OP_BACKEND_SHOW, 2, 2, 0, help_backend_show},
    {"backend", "add", CTL_OP_BACKEND_ADD, 2, 2,
     BIT(O_PORT) | BIT(O_WEIGHT) | BIT(O_TTL) | BIT(O_LEASE), help_backend_add},
    {"backend", "weight", CTL_OP_BACKEND_WEIGHT, 3, 3, 0, help_backend_weight},
    {"backend", "drain", CTL_OP_BACKEND_DRAIN, 2, 2, 0, help_backend_drain},
    {"backend", "undrain", CTL_OP_BACKEND_UNDRAIN, 2, 2, 0, help_backend_undrain},
    {"backend", "remove", CTL_OP_BACKEND_REMOVE, 2, 2, 0, help_backend_remove},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_POS	   8

static const struct cmd_def *find_cmd(const char *group, const char *verb)
{
	size_t i;

	for (i = 0; i < N_ELEMS(cmd_defs); i++) {
		const struct cmd_def *d = &cmd_defs[i];
		const char *g = d->group != NULL ? d->group : d->verb;
		const char *v = d->group != NULL ? d->verb : NULL;

		if (strcmp(g, group) != 0)
			continue;
		if (v == NULL && verb == NULL)
			return d;
		if (v != NULL && verb != NULL && strcmp(v, verb) == 0)
			return d;
	}
	return NULL;
}

static int is_group(const char *word)
{
	return strcmp(word, "member") == 0 || strcmp(word, "service") == 0 ||
	       strcmp(word, "backend") == 0;
}

static const char *opt_name(enum opt_id id)
{
	size_t i;

	for (i = 0; i < N_ELEMS(opt_defs); i++)
		if (opt_defs[i].id == id)
			return opt_defs[i].name;
	return "?";
}

/* ---- request building ------------------------------------------------------- */

static int path_set(struct ctl_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int path_set(struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd->path, sizeof(cmd->path), fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= sizeof(cmd->path) ? -ENOSPC : 0;
}

/* Append "?k=v" or "&k=v". */
static int query_add(struct ctl_cmd *cmd, const char *kv)
{
	size_t len = strlen(cmd->path);
	int n = snprintf(cmd->path + len, sizeof(cmd->path) - len, "%c%s",
			 strchr(cmd->path, '?') != NULL ? '&' : '?', kv);

	return n < 0 || (size_t)n >= sizeof(cmd->path) - len ? -ENOSPC : 0;
}

static int name_check(const char *what, const char *name, char *err, size_t errlen)
{
	if (strlen(name) == 0 || strlen(name) > 63 || !config_name_ok(name))
		return fail(err, errlen,
			    "%s \"%.80s\": expected 1 to 63 characters of [A-Za-z0-9._-]", what,
			    name);
	return 0;
}

/*
 * "10.0.0.1:80", "[2001:db8::1]:80", "10.0.0.1", "2001:db8::1" (bare IPv6:
 * no port). *port is 0 when none was given.
 */
static int addr_port_parse(const char *s, struct addr *a, unsigned *port)
{
	char host[64];
	const char *colon;
	size_t hn;

	*port = 0;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL)
			return -EINVAL;
		hn = (size_t)(close - s - 1);
		if (hn >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hn);
		host[hn] = '\0';
		if (close[1] != '\0' &&
		    (close[1] != ':' || port_parse(close + 2, strlen(close + 2), port) != 0))
			return -EINVAL;
		if (addr_parse(host, a) != 0 || a->family != ADDR_V6)
			return -EINVAL;
		return 0;
	}
	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') == NULL) {
		hn = (size_t)(colon - s);
		if (hn >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hn);
		host[hn] = '\0';
		if (port_parse(colon + 1, strlen(colon + 1), port) != 0)
			return -EINVAL;
		if (addr_parse(host, a) != 0 || a->family != ADDR_V4)
			return -EINVAL;
		return 0;
	}
	return addr_parse(s, a);
}

/* BACKEND argument: a uid, or ADDR:PORT turned into the uid every node computes. */
static int backend_id_parse(const char *s, uint32_t *uid, char *err, size_t errlen)
{
	struct addr a;
	unsigned port;
	uint64_t v;

	if (s[0] >= '0' && s[0] <= '9' && parse_u64(s, 1, UINT32_MAX, &v) == 0) {
		*uid = (uint32_t)v;
		return 0;
	}
	if (addr_port_parse(s, &a, &port) != 0 || port == 0)
		return fail(err, errlen,
			    "backend \"%.80s\": expected an id or ADDR:PORT ([v6]:PORT for IPv6)",
			    s);
	*uid = config_backend_uid(&a, (uint16_t)port);
	return 0;
}

static int json_set(json_t *o, const char *key, json_t *v)
{
	return v == NULL || json_object_set_new(o, key, v) != 0 ? -ENOMEM : 0;
}

static int body_take(struct ctl_cmd *cmd, json_t *o)
{
	cmd->body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return cmd->body == NULL ? -ENOMEM : 0;
}

static int opt_u64(const char *const *val, enum opt_id id, uint64_t min, uint64_t max,
		   uint64_t *out, char *err, size_t errlen)
{
	if (parse_u64(val[id], min, max, out) != 0)
		return fail(err, errlen, "--%s \"%.40s\": expected an integer in %llu..%llu",
			    opt_name(id), val[id], (unsigned long long)min,
			    (unsigned long long)max);
	return 0;
}

static int opt_dur(const char *const *val, enum opt_id id, uint64_t max_ms, uint64_t *out,
		   char *err, size_t errlen)
{
	if (parse_duration_ms(val[id], max_ms, out) != 0)
		return fail(err, errlen,
			    "--%s \"%.40s\": expected a duration such as 500ms, 10s or 1m",
			    opt_name(id), val[id]);
	return 0;
}

static int one_of(const char *v, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strcmp(v, *words) == 0)
			return 1;
	return 0;
}

static int service_body(struct ctl_cmd *cmd, const char *const *val, const char *name, char *err,
			size_t errlen)
{
	static const char *const protos[] = {"tcp", "udp", NULL};
	static const char *const modes[] = {"nat", "dsr", "tunnel", NULL};
	static const char *const hcs[] = {"none", "tcp", "http", NULL};
	struct addr vip;
	uint64_t v;
	json_t *o, *h;
	int rc;

	if (val[O_VIP] == NULL || val[O_PORT] == NULL)
		return fail(err, errlen, "--vip and --port are required");
	if (addr_parse(val[O_VIP], &vip) != 0)
		return fail(err, errlen, "--vip \"%.60s\": not an IPv4 or IPv6 address",
			    val[O_VIP]);
	if (val[O_PROTOCOL] != NULL && !one_of(val[O_PROTOCOL], protos))
		return fail(err, errlen, "--protocol: expected tcp or udp");
	if (val[O_MODE] != NULL && !one_of(val[O_MODE], modes))
		return fail(err, errlen, "--mode: expected nat, dsr or tunnel");
	if (val[O_HEALTH] != NULL && !one_of(val[O_HEALTH], hcs))
		return fail(err, errlen, "--health: expected none, tcp or http");
	if (val[O_HEALTH] == NULL &&
	    (val[O_HEALTH_PATH] != NULL || val[O_HEALTH_INTERVAL] != NULL ||
	     val[O_HEALTH_TIMEOUT] != NULL || val[O_RISE] != NULL || val[O_FALL] != NULL))
		return fail(err, errlen, "health options need --health tcp|http");
	if (val[O_HEALTH_PATH] != NULL && strcmp(val[O_HEALTH], "http") != 0)
		return fail(err, errlen, "--health-path needs --health http");
	if (val[O_HEALTH_PATH] != NULL &&
	    (val[O_HEALTH_PATH][0] != '/' || !token_ok(val[O_HEALTH_PATH])))
		return fail(err, errlen, "--health-path: expected /PATH without blanks");

	o = json_object();
	if (o == NULL)
		return -ENOMEM;
	rc = 0;
	if (name != NULL)
		rc |= json_set(o, "name", json_string(name));
	rc |= json_set(o, "vip", json_string(val[O_VIP]));
	if (opt_u64(val, O_PORT, 1, 65535, &v, err, errlen) != 0)
		goto bad;
	rc |= json_set(o, "port", json_integer((json_int_t)v));
	if (val[O_PROTOCOL] != NULL)
		rc |= json_set(o, "protocol", json_string(val[O_PROTOCOL]));
	if (val[O_MODE] != NULL)
		rc |= json_set(o, "mode", json_string(val[O_MODE]));
	if (val[O_ANNOUNCE] != NULL)
		rc |= json_set(o, "announce", json_true());
	if (val[O_TABLE_SIZE] != NULL) {
		if (opt_u64(val, O_TABLE_SIZE, 1, UINT32_MAX, &v, err, errlen) != 0)
			goto bad;
		rc |= json_set(o, "table_size", json_integer((json_int_t)v));
	}
	if (val[O_MAX_BACKENDS] != NULL) {
		if (opt_u64(val, O_MAX_BACKENDS, 0, UINT32_MAX, &v, err, errlen) != 0)
			goto bad;
		rc |= json_set(o, "max_backends", json_integer((json_int_t)v));
	}
	if (val[O_HEALTH] != NULL) {
		h = json_object();
		rc |= json_set(o, "health", h);
		if (h == NULL)
			goto nomem;
		rc |= json_set(h, "type", json_string(val[O_HEALTH]));
		if (val[O_HEALTH_PATH] != NULL)
			rc |= json_set(h, "path", json_string(val[O_HEALTH_PATH]));
		if (val[O_HEALTH_INTERVAL] != NULL) {
			if (opt_dur(val, O_HEALTH_INTERVAL, UINT32_MAX, &v, err, errlen) != 0)
				goto bad;
			rc |= json_set(h, "interval_ms", json_integer((json_int_t)v));
		}
		if (val[O_HEALTH_TIMEOUT] != NULL) {
			if (opt_dur(val, O_HEALTH_TIMEOUT, UINT32_MAX, &v, err, errlen) != 0)
				goto bad;
			rc |= json_set(h, "timeout_ms", json_integer((json_int_t)v));
		}
		if (val[O_RISE] != NULL) {
			if (opt_u64(val, O_RISE, 1, 255, &v, err, errlen) != 0)
				goto bad;
			rc |= json_set(h, "rise", json_integer((json_int_t)v));
		}
		if (val[O_FALL] != NULL) {
			if (opt_u64(val, O_FALL, 1, 255, &v, err, errlen) != 0)
				goto bad;
			rc |= json_set(h, "fall", json_integer((json_int_t)v));
		}
	}
	if (rc != 0)
		goto nomem;
	return body_take(cmd, o);
nomem:
	json_decref(o);
	return -ENOMEM;
bad:
	json_decref(o);
	return -EINVAL;
}

static int backend_add_body(struct ctl_cmd *cmd, const char *const *val, const char *target,
			    char *err, size_t errlen)
{
	char text[ADDR_STRLEN];
	struct addr a;
	unsigned port;
	uint64_t v;
	json_t *o;
	int rc = 0;

	if (addr_port_parse(target, &a, &port) != 0)
		return fail(err, errlen,
			    "\"%.80s\": expected ADDR[:PORT] ([v6]:PORT for IPv6 with a port)",
			    target);
	if (val[O_PORT] != NULL) {
		if (port != 0)
			return fail(err, errlen, "the port is given twice (ADDR:PORT and --port)");
		if (opt_u64(val, O_PORT, 1, 65535, &v, err, errlen) != 0)
			return -EINVAL;
		port = (unsigned)v;
	}
	if (val[O_TTL] != NULL && val[O_LEASE] != NULL)
		return fail(err, errlen, "--ttl and --lease exclude each other");
	o = json_object();
	if (o == NULL)
		return -ENOMEM;
	rc |= json_set(o, "address", json_string(addr_format(&a, text, sizeof(text))));
	if (port != 0)
		rc |= json_set(o, "port", json_integer((json_int_t)port));
	if (val[O_WEIGHT] != NULL) {
		if (opt_u64(val, O_WEIGHT, 0, 1000000, &v, err, errlen) != 0)
			goto bad;
		rc |= json_set(o, "weight", json_integer((json_int_t)v));
	}
	if (val[O_TTL] != NULL) {
		if (opt_dur(val, O_TTL, 3600000, &v, err, errlen) != 0)
			goto bad;
		rc |= json_set(o, "ttl_ms", json_integer((json_int_t)v));
	}
	if (val[O_LEASE] != NULL) {
		if (opt_u64(val, O_LEASE, 1, INT64_MAX, &v, err, errlen) != 0)
			goto bad;
		rc |= json_set(o, "lease", json_integer((json_int_t)v));
	}
	if (rc != 0) {
		json_decref(o);
		return -ENOMEM;
	}
	return body_take(cmd, o);
bad:
	json_decref(o);
	return -EINVAL;
}

static int patch_body(struct ctl_cmd *cmd, const char *key, json_t *v)
{
	json_t *o = json_object();

	if (o == NULL || json_set(o, key, v) != 0) {
		json_decref(o);
		return -ENOMEM;
	}
	return body_take(cmd, o);
}

int ctl_endpoints_path(struct ctl_cmd *cmd, uint64_t index)
{
	char q[64];
	int rc;

	rc = path_set(cmd, "/v1/services/%s/endpoints", cmd->service);
	if (rc == 0 && cmd->healthy)
		rc = query_add(cmd, "healthy=1");
	if (rc == 0 && cmd->stale)
		rc = query_add(cmd, "stale=1");
	if (rc == 0 && index > 0) {
		snprintf(q, sizeof(q), "index=%llu&wait=%ums", (unsigned long long)index,
			 cmd->wait_ms);
		rc = query_add(cmd, q);
	}
	return rc;
}

static int build_request(struct ctl_cmd *cmd, const struct cmd_def *d, const char *const *val,
			 char *const *pos, char *err, size_t errlen)
{
	uint64_t id, index = 0;
	uint32_t uid = 0;
	int rc = 0;

	cmd->method = "GET";
	switch (d->op) {
	case CTL_OP_STATUS:
		rc = path_set(cmd, "/v1/status");
		break;
	case CTL_OP_MEMBER_LIST:
		rc = path_set(cmd, "/v1/members");
		break;
	case CTL_OP_MEMBER_ADD:
	case CTL_OP_MEMBER_PROMOTE:
	case CTL_OP_MEMBER_REMOVE:
		if (parse_u64(pos[0], 1, INT64_MAX, &id) != 0)
			return fail(err, errlen, "member id \"%.40s\": expected an integer >= 1",
				    pos[0]);
		snprintf(cmd->subject, sizeof(cmd->subject), "%llu", (unsigned long long)id);
		if (d->op == CTL_OP_MEMBER_ADD) {
			json_t *o;

			if (val[O_RAFT] == NULL || val[O_API] == NULL)
				return fail(err, errlen, "--raft and --api are required");
			if (!token_ok(val[O_RAFT]) || strlen(val[O_RAFT]) > 63 ||
			    !token_ok(val[O_API]) || strlen(val[O_API]) > 63)
				return fail(err, errlen, "--raft/--api: expected HOST:PORT");
			cmd->method = "POST";
			rc = path_set(cmd, "/v1/members");
			o = json_object();
			if (o == NULL)
				return -ENOMEM;
			if (json_set(o, "id", json_integer((json_int_t)id)) != 0 ||
			    json_set(o, "raft_address", json_string(val[O_RAFT])) != 0 ||
			    json_set(o, "api_address", json_string(val[O_API])) != 0) {
				json_decref(o);
				return -ENOMEM;
			}
			if (rc == 0)
				rc = body_take(cmd, o);
			else
				json_decref(o);
		} else if (d->op == CTL_OP_MEMBER_PROMOTE) {
			cmd->method = "POST";
			rc = path_set(cmd, "/v1/members/%llu/promote", (unsigned long long)id);
		} else {
			cmd->method = "DELETE";
			rc = path_set(cmd, "/v1/members/%llu", (unsigned long long)id);
		}
		break;
	case CTL_OP_SERVICE_LIST:
		rc = path_set(cmd, "/v1/services");
		break;
	case CTL_OP_SERVICE_SHOW:
	case CTL_OP_SERVICE_CREATE:
	case CTL_OP_SERVICE_UPDATE:
	case CTL_OP_SERVICE_DELETE:
		if (name_check("service name", pos[0], err, errlen) != 0)
			return -EINVAL;
		snprintf(cmd->subject, sizeof(cmd->subject), "%s", pos[0]);
		if (d->op == CTL_OP_SERVICE_CREATE) {
			cmd->method = "POST";
			rc = path_set(cmd, "/v1/services");
			if (rc == 0)
				rc = service_body(cmd, val, pos[0], err, errlen);
		} else {
			rc = path_set(cmd, "/v1/services/%s", pos[0]);
			if (rc == 0 && d->op == CTL_OP_SERVICE_UPDATE) {
				cmd->method = "PUT";
				rc = service_body(cmd, val, NULL, err, errlen);
			} else if (d->op == CTL_OP_SERVICE_DELETE) {
				cmd->method = "DELETE";
			}
		}
		break;
	case CTL_OP_BACKEND_LIST:
	case CTL_OP_BACKEND_ADD:
		if (name_check("service name", pos[0], err, errlen) != 0)
			return -EINVAL;
		snprintf(cmd->service, sizeof(cmd->service), "%s", pos[0]);
		rc = path_set(cmd, "/v1/services/%s/backends", pos[0]);
		if (rc == 0 && d->op == CTL_OP_BACKEND_LIST && val[O_HEALTHY] != NULL)
			rc = query_add(cmd, "healthy=1");
		if (rc == 0 && d->op == CTL_OP_BACKEND_ADD) {
			cmd->method = "POST";
			snprintf(cmd->subject, sizeof(cmd->subject), "%.90s", pos[1]);
			rc = backend_add_body(cmd, val, pos[1], err, errlen);
		}
		break;
	case CTL_OP_BACKEND_SHOW:
	case CTL_OP_BACKEND_WEIGHT:
	case CTL_OP_BACKEND_DRAIN:
	case CTL_OP_BACKEND_UNDRAIN:
	case CTL_OP_BACKEND_REMOVE:
		if (name_check("service name", pos[0], err, errlen) != 0 ||
		    backend_id_parse(pos[1], &uid, err, errlen) != 0)
			return -EINVAL;
		snprintf(cmd->service, sizeof(cmd->service), "%s", pos[0]);
		snprintf(cmd->subject, sizeof(cmd->subject), "%u", uid);
		rc = path_set(cmd, "/v1/services/%s/backends/%u", pos[0], uid);
		if (rc != 0)
			break;
		if (d->op == CTL_OP_BACKEND_WEIGHT) {
			if (parse_u64(pos[2], 0, 1000000, &id) != 0)
				return fail(err, errlen,
					    "weight \"%.40s\": expected an integer in 0..1000000",
					    pos[2]);
			cmd->method = "PATCH";
			rc = patch_body(cmd, "weight", json_integer((json_int_t)id));
		} else if (d->op == CTL_OP_BACKEND_DRAIN || d->op == CTL_OP_BACKEND_UNDRAIN) {
			cmd->method = "PATCH";
			rc = patch_body(cmd, "drain", json_boolean(d->op == CTL_OP_BACKEND_DRAIN));
		} else if (d->op == CTL_OP_BACKEND_REMOVE) {
			cmd->method = "DELETE";
		}
		break;
	case CTL_OP_ENDPOINTS:
		if (name_check("service name", pos[0], err, errlen) != 0)
			return -EINVAL;
		snprintf(cmd->service, sizeof(cmd->service), "%s", pos[0]);
		snprintf(cmd->subject, sizeof(cmd->subject), "%s", pos[0]);
		cmd->healthy = val[O_HEALTHY] != NULL;
		cmd->watch = val[O_WATCH] != NULL;
		cmd->wait_ms = CTL_DEFAULT_WAIT_MS;
		if (val[O_WAIT] != NULL) {
			uint64_t w;

			if (val[O_WATCH] == NULL && val[O_INDEX] == NULL)
				return fail(err, errlen, "--wait needs --watch or --index");
			if (opt_dur(val, O_WAIT, 3600000, &w, err, errlen) != 0)
				return -EINVAL;
			if (w == 0)
				return fail(err, errlen, "--wait must be more than 0");
			cmd->wait_ms = (unsigned)w;
		}
		if (val[O_INDEX] != NULL &&
		    opt_u64(val, O_INDEX, 0, INT64_MAX, &index, err, errlen) != 0)
			return -EINVAL;
		rc = ctl_endpoints_path(cmd, index);
		break;
	case CTL_OP_NONE:
		break;
	}
	/* Stale reads are a query parameter of every GET (endpoints added its own). */
	if (rc == 0 && cmd->stale && strcmp(cmd->method, "GET") == 0 && d->op != CTL_OP_ENDPOINTS)
		rc = query_add(cmd, "stale=1");
	return rc;
}

void ctl_cmd_free(struct ctl_cmd *cmd)
{
	if (cmd == NULL)
		return;
	free(cmd->body);
	cmd->body = NULL;
}

static const struct opt_def *opt_find_long(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < N_ELEMS(opt_defs); i++)
		if (strlen(opt_defs[i].name) == n && strncmp(opt_defs[i].name, name, n) == 0)
			return &opt_defs[i];
	return NULL;
}

static const struct opt_def *opt_find_short(char c)
{
	size_t i;

	for (i = 0; i < N_ELEMS(opt_defs); i++)
		if (opt_defs[i].shortname == c)
			return &opt_defs[i];
	return NULL;
}

int ctl_parse(int argc, char *const argv[], const char *env_servers, const char *env_token,
	      struct ctl_cmd *cmd, char *err, size_t errlen)
{
	const char *val[O__COUNT] = {0};
	char *pos[MAX_POS];
	char first_err[160] = "";
	const struct cmd_def *d = NULL;
	unsigned npos = 0, nargs, skip;
	int end_opts = 0, i, rc;
	uint64_t seen = 0;

	memset(cmd, 0, sizeof(*cmd));
	cmd->help = help_top;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	/* One pass over everything: errors are remembered, not returned, so that
	 * --help anywhere still wins (e.g. "service create --help" without NAME). */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *value = NULL, *eq;
		const struct opt_def *o;
		char label[48];

		if (!end_opts && strcmp(a, "--") == 0) {
			end_opts = 1;
			continue;
		}
		if (end_opts || a[0] != '-' || a[1] == '\0') {
			if (npos == MAX_POS) {
				if (first_err[0] == '\0')
					snprintf(first_err, sizeof(first_err),
						 "too many arguments");
				continue;
			}
			pos[npos++] = argv[i];
			continue;
		}
		if (a[1] == '-') {
			eq = strchr(a + 2, '=');
			o = opt_find_long(a + 2, eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2));
			if (eq != NULL)
				value = eq + 1;
			snprintf(label, sizeof(label), "%.*s",
				 (int)(eq != NULL ? (size_t)(eq - a) : strlen(a)), a);
		} else {
			o = opt_find_short(a[1]);
			if (a[2] != '\0')
				value = a + 2;
			snprintf(label, sizeof(label), "-%c", a[1]);
		}
		if (o == NULL) {
			if (first_err[0] == '\0')
				snprintf(first_err, sizeof(first_err), "unknown option %.40s",
					 label);
			continue;
		}
		if (o->has_arg && value == NULL) {
			if (i + 1 >= argc) {
				if (first_err[0] == '\0')
					snprintf(first_err, sizeof(first_err),
						 "%.40s needs a value", label);
				continue;
			}
			value = argv[++i];
		} else if (!o->has_arg && value != NULL) {
			if (first_err[0] == '\0')
				snprintf(first_err, sizeof(first_err), "%.40s takes no value",
					 label);
			continue;
		}
		if ((seen & BIT(o->id)) && first_err[0] == '\0')
			snprintf(first_err, sizeof(first_err), "--%s given twice", o->name);
		seen |= BIT(o->id);
		val[o->id] = value != NULL ? value : "";
	}

	/* Which command: "status", "endpoints", or GROUP VERB. */
	skip = 0;
	if (npos == 0) {
		if (seen & BIT(O_HELP)) {
			cmd->want_help = 1;
			return 0;
		}
		return fail(err, errlen, "%s", first_err[0] ? first_err : "no command given");
	}
	if (is_group(pos[0])) {
		d = find_cmd(pos[0], npos > 1 ? pos[1] : NULL);
		if (d == NULL) {
			cmd->help = find_cmd(pos[0], NULL)->help;
			if (seen & BIT(O_HELP)) {
				cmd->want_help = 1;
				return 0;
			}
			return fail(err, errlen, "%s: unknown subcommand \"%.40s\"", pos[0],
				    pos[1]);
		}
		skip = d->verb != NULL ? 2 : 1;
	} else {
		d = find_cmd(pos[0], NULL);
		if (d == NULL || d->group != NULL) {
			if (seen & BIT(O_HELP)) {
				cmd->want_help = 1;
				return 0;
			}
			return fail(err, errlen, "unknown command \"%.40s\"", pos[0]);
		}
		skip = 1;
	}
	cmd->help = d->help;
	if (seen & BIT(O_HELP)) {
		cmd->want_help = 1;
		return 0;
	}
	if (first_err[0] != '\0')
		return fail(err, errlen, "%s", first_err);
	if (d->verb == NULL)
		return fail(err, errlen, "%s: missing subcommand", d->group);
	for (i = 0; i < O__COUNT; i++)
		if ((seen & BIT(i)) && !((GLOBAL_OPTS | d->opts) & BIT(i)))
			return fail(err, errlen, "--%s does not apply to this command",
				    opt_name((enum opt_id)i));
	nargs = npos - skip;
	if (nargs < d->min_args)
		return fail(err, errlen, "missing argument(s)");
	if (nargs > d->max_args)
		return fail(err, errlen, "unexpected argument \"%.40s\"", pos[skip + d->max_args]);

	/* Global settings. */
	if (val[O_SERVERS] != NULL)
		rc = ctl_servers_parse(val[O_SERVERS], &cmd->servers, err, errlen);
	else if (env_servers != NULL && env_servers[0] != '\0')
		rc = ctl_servers_parse(env_servers, &cmd->servers, err, errlen);
	else
		rc = ctl_servers_parse(CTL_DEFAULT_SERVER, &cmd->servers, err, errlen);
	if (rc != 0)
		return rc;
	{
		const char *t = val[O_TOKEN] != NULL ? val[O_TOKEN] : env_token;

		if (t != NULL && (val[O_TOKEN] != NULL || t[0] != '\0')) {
			if (!token_ok(t) || strlen(t) >= sizeof(cmd->token))
				return fail(err, errlen,
					    "token: expected printable characters without blanks");
			snprintf(cmd->token, sizeof(cmd->token), "%s", t);
		}
	}
	cmd->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
	if (val[O_TIMEOUT] != NULL) {
		char *end;
		double s = strtod(val[O_TIMEOUT], &end);

		if (end == val[O_TIMEOUT] || *end != '\0' || !(s >= 0.001 && s <= 3600))
			return fail(err, errlen,
				    "--timeout \"%.40s\": expected seconds in 0.001..3600",
				    val[O_TIMEOUT]);
		cmd->timeout_ms = (unsigned)(s * 1000 + 0.5);
	}
	cmd->json = val[O_JSON] != NULL;
	cmd->stale = val[O_STALE] != NULL;
	cmd->op = d->op;
	rc = build_request(cmd, d, val, pos + skip, err, errlen);
	if (rc != 0) {
		ctl_cmd_free(cmd);
		if (rc == -ENOSPC)
			return fail(err, errlen, "request path too long");
		if (rc == -EINVAL && err != NULL && errlen > 0 && err[0] == '\0')
			return fail(err, errlen, "bad arguments");
	}
	return rc;
}

/* ---- transport outcome, exit codes, response buffer -------------------- */

enum ctl_attempt ctl_attempt_classify(int curl_code, int sent, const char *method)
{
	int is_read = method != NULL && strcmp(method, "GET") == 0;

	switch (curl_code) {
	case CURLE_OK:
		return CTL_ATTEMPT_ANSWERED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
		/* The node is down, silent or not an API: another may answer. A write
		 * that may have arrived is not sent twice (a second create says
		 * "exists", a second delete "not_found", hiding what happened). */
		return !sent || is_read ? CTL_ATTEMPT_NEXT : CTL_ATTEMPT_UNKNOWN;
	default:
		return CTL_ATTEMPT_FAILED;
	}
}

int ctl_exit_code(enum ctl_attempt a, long http_status)
{
	switch (a) {
	case CTL_ATTEMPT_ANSWERED:
		return http_status >= 200 && http_status <= 299 ? CTL_EXIT_OK : CTL_EXIT_REFUSED;
	case CTL_ATTEMPT_NEXT:
	case CTL_ATTEMPT_UNKNOWN:
		return CTL_EXIT_UNREACHABLE;
	case CTL_ATTEMPT_FAILED:
	default:
		return CTL_EXIT_REFUSED;
	}
}

int ctl_buf_append(struct ctl_buf *b, const void *p, size_t n)
{
	size_t max = b->max != 0 ? b->max : CTL_RESPONSE_MAX;
	size_t cap;
	char *d;

	if (n > max || b->len > max - n)
		return -EFBIG;
	if (b->data == NULL || b->len + n + 1 > b->cap) {
		cap = b->cap != 0 ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

void ctl_buf_free(struct ctl_buf *b)
{
	size_t max = b->max;

	free(b->data);
	memset(b, 0, sizeof(*b));
	b->max = max;
}

/* ---- rendering ------------------------------------------------------------------- */

/*
 * A cell of text built from untrusted JSON: control characters become '?'
 * (a hostile server must not drive the terminal), at most CELL_CPS code
 * points (longer text ends in "..."). Width is counted in code points,
 * which is right for the ASCII the API produces and close for the rest.
 */
#define CELL_CPS   64
#define CELL_BYTES (CELL_CPS * 4 + 1)

struct cell {
	char s[CELL_BYTES];
	size_t len;
	unsigned cps;
	int cut;
};

static void cell_reset(struct cell *c)
{
	c->s[0] = '\0';
	c->len = 0;
	c->cps = 0;
	c->cut = 0;
}

static void cell_putn(struct cell *c, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && !c->cut; i++) {
		unsigned char ch = (unsigned char)p[i];
		int cont = (ch & 0xc0) == 0x80;

		if (!cont && c->cps == CELL_CPS) {
			c->cut = 1;
			break;
		}
		if (c->len + 1 >= CELL_BYTES) {
			c->cut = 1;
			break;
		}
		if (ch < 0x20 || ch == 0x7f)
			ch = '?';
		c->s[c->len++] = (char)ch;
		if (!cont)
			c->cps++;
	}
	c->s[c->len] = '\0';
}

static void cell_puts(struct cell *c, const char *s)
{
	cell_putn(c, s, strlen(s));
}

static void cell_finish(struct cell *c)
{
	unsigned k;

	if (!c->cut)
		return;
	/* Make room for "..." by dropping three whole code points. */
	for (k = 0; k < 3 && c->len > 0; k++) {
		do
			c->len--;
		while (c->len > 0 && ((unsigned char)c->s[c->len] & 0xc0) == 0x80);
		c->cps--;
	}
	memcpy(c->s + c->len, "...", 4);
	c->len += 3;
	c->cps += 3;
}

static void put_scalar(struct cell *c, const json_t *v)
{
	char num[48];
	size_t i;

	if (v == NULL || json_is_null(v)) {
		cell_puts(c, "-");
		return;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		cell_putn(c, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		cell_puts(c, num);
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%g", json_real_value(v));
		cell_puts(c, num);
		break;
	case JSON_TRUE:
		cell_puts(c, "true");
		break;
	case JSON_FALSE:
		cell_puts(c, "false");
		break;
	case JSON_ARRAY:
		if (json_array_size(v) == 0)
			cell_puts(c, "-");
		for (i = 0; i < json_array_size(v) && !c->cut; i++) {
			const json_t *e = json_array_get(v, i);

			if (i > 0)
				cell_puts(c, ",");
			if (json_is_array(e))
				cell_puts(c, "[...]");
			else if (json_is_object(e))
				cell_puts(c, "{...}");
			else
				put_scalar(c, e);
		}
		break;
	case JSON_OBJECT:
	default:
		cell_puts(c, "{...}");
		break;
	}
}

static void put_ms(struct cell *c, const json_t *v)
{
	char num[48];
	json_int_t ms;

	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		put_scalar(c, v);
		return;
	}
	ms = json_integer_value(v);
	if (ms != 0 && ms % 60000 == 0)
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT "m", ms / 60000);
	else if (ms != 0 && ms % 1000 == 0)
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT "s", ms / 1000);
	else
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT "ms", ms);
	cell_puts(c, num);
}

static void put_bool(struct cell *c, const json_t *v, const char *yes, const char *no)
{
	if (json_is_boolean(v))
		cell_puts(c, json_is_true(v) ? yes : no);
	else
		put_scalar(c, v);
}

enum fmt {
	F_TEXT,
	F_YESNO,
	F_MS,
	F_HOSTPORT,	/* key: host, key2: port */
	F_VOTER,	/* true: voter, false: learner */
	F_LEASE,	/* 0: static */
	F_LEADER,	/* key: leader id (0: none), key2: its API address */
	F_HEALTH_SHORT, /* key: the health object */
	F_HEALTH_LONG,
};

struct field {
	const char *label;
	const char *key;
	const char *key2;
	enum fmt fmt;
};

static const json_t *get(const json_t *obj, const char *key)
{
	return json_is_object(obj) && key != NULL ? json_object_get(obj, key) : NULL;
}

static void put_health(struct cell *c, const json_t *h, int full)
{
	const json_t *type = get(h, "type");
	const json_t *path = get(h, "path");

	if (!json_is_object(h) || !json_is_string(type)) {
		put_scalar(c, json_is_object(h) ? type : h);
		return;
	}
	put_scalar(c, type);
	if (strcmp(json_string_value(type), "none") == 0)
		return;
	if (path != NULL && !(json_is_string(path) && json_string_length(path) == 0)) {
		cell_puts(c, " ");
		put_scalar(c, path);
	}
	if (!full)
		return;
	cell_puts(c, " every ");
	put_ms(c, get(h, "interval_ms"));
	cell_puts(c, ", timeout ");
	put_ms(c, get(h, "timeout_ms"));
	cell_puts(c, ", rise ");
	put_scalar(c, get(h, "rise"));
	cell_puts(c, ", fall ");
	put_scalar(c, get(h, "fall"));
}

static void field_text(struct cell *c, const struct field *f, const json_t *obj)
{
	const json_t *v = get(obj, f->key);
	const json_t *v2 = get(obj, f->key2);

	cell_reset(c);
	switch (f->fmt) {
	case F_TEXT:
		put_scalar(c, v);
		break;
	case F_YESNO:
		put_bool(c, v, "yes", "no");
		break;
	case F_MS:
		put_ms(c, v);
		break;
	case F_VOTER:
		put_bool(c, v, "voter", "learner");
		break;
	case F_LEASE:
		if (json_is_integer(v) && json_integer_value(v) == 0)
			cell_puts(c, "static");
		else
			put_scalar(c, v);
		break;
	case F_HOSTPORT:
		if (json_is_string(v) && strchr(json_string_value(v), ':') != NULL) {
			cell_puts(c, "[");
			put_scalar(c, v);
			cell_puts(c, "]");
		} else {
			put_scalar(c, v);
		}
		if (v2 != NULL) {
			cell_puts(c, ":");
			put_scalar(c, v2);
		}
		break;
	case F_LEADER:
		if (json_is_integer(v) && json_integer_value(v) == 0) {
			cell_puts(c, "none");
			break;
		}
		put_scalar(c, v);
		if (json_is_string(v2)) {
			cell_puts(c, " (");
			put_scalar(c, v2);
			cell_puts(c, ")");
		}
		break;
	case F_HEALTH_SHORT:
	case F_HEALTH_LONG:
		put_health(c, v, f->fmt == F_HEALTH_LONG);
		break;
	}
	cell_finish(c);
}

static void pad(FILE *out, unsigned n)
{
	while (n-- > 0)
		fputc(' ', out);
}

static unsigned text_width(const char *s)
{
	unsigned w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

#define MAX_COLS 12

/*
 * Aligned columns, two blanks apart, no trailing blanks. Two passes over
 * the rows (measure, then print) so nothing is stored: a list is bounded
 * only by CTL_RESPONSE_MAX. A non-array list prints the header alone.
 */
static void print_table(FILE *out, const struct field *cols, size_t ncols, const json_t *rows,
			const char *indent)
{
	unsigned width[MAX_COLS];
	struct cell c;
	size_t i, j, n = json_is_array(rows) ? json_array_size(rows) : 0;

	for (j = 0; j < ncols; j++)
		width[j] = text_width(cols[j].label);
	for (i = 0; i < n; i++)
		for (j = 0; j < ncols; j++) {
			field_text(&c, &cols[j], json_array_get(rows, i));
			if (c.cps > width[j])
				width[j] = c.cps;
		}
	fputs(indent, out);
	for (j = 0; j < ncols; j++) {
		fputs(cols[j].label, out);
		if (j + 1 < ncols)
			pad(out, width[j] - text_width(cols[j].label) + 2);
	}
	fputc('\n', out);
	for (i = 0; i < n; i++) {
		fputs(indent, out);
		for (j = 0; j < ncols; j++) {
			field_text(&c, &cols[j], json_array_get(rows, i));
			fputs(c.s, out);
			if (j + 1 < ncols)
				pad(out, width[j] - c.cps + 2);
		}
		fputc('\n', out);
	}
}

/* "Label:   value" lines, values aligned. */
static void print_kv(FILE *out, const struct field *f, size_t n, const json_t *obj)
{
	unsigned w = 0;
	struct cell c;
	size_t i;

	for (i = 0; i < n; i++)
		if (text_width(f[i].label) > w)
			w = text_width(f[i].label);
	for (i = 0; i < n; i++) {
		field_text(&c, &f[i], obj);
		fprintf(out, "%s:", f[i].label);
		pad(out, w - text_width(f[i].label) + 1);
		fprintf(out, "%s\n", c.s);
	}
}

static const struct field status_fields[] = {
    {"Node", "id", NULL, F_TEXT},
    {"Role", "role", NULL, F_TEXT},
    {"Term", "term", NULL, F_TEXT},
    {"Leader", "leader", "leader_api", F_LEADER},
    {"Commit", "commit", NULL, F_TEXT},
    {"Applied", "applied", NULL, F_TEXT},
    {"Revision", "revision", NULL, F_TEXT},
    {"State digest", "state_digest", NULL, F_TEXT},
    {"Forwarding digest", "forwarding_digest", NULL, F_TEXT},
    {"Services", "services", NULL, F_TEXT},
    {"Leases", "leases", NULL, F_TEXT},
};

static const struct field status_member_cols[] = {
    {"ID", "id", NULL, F_TEXT},
    {"ROLE", "voter", NULL, F_VOTER},
    {"CONNECTED", "connected", NULL, F_YESNO},
};

static const struct field member_cols[] = {
    {"ID", "id", NULL, F_TEXT},
    {"ROLE", "voter", NULL, F_VOTER},
    {"LEADER", "leader", NULL, F_YESNO},
    {"RAFT", "raft_address", NULL, F_TEXT},
    {"API", "api_address", NULL, F_TEXT},
    {"CONNECTED", "connected", NULL, F_YESNO},
    {"LAST-CONTACT", "last_contact_ms", NULL, F_MS},
};

static const struct field member_fields[] = {
    {"ID", "id", NULL, F_TEXT},
    {"Role", "voter", NULL, F_VOTER},
    {"Raft address", "raft_address", NULL, F_TEXT},
    {"API address", "api_address", NULL, F_TEXT},
};

static const struct field service_cols[] = {
    {"NAME", "name", NULL, F_TEXT},
    {"VIP", "vip", NULL, F_TEXT},
    {"PORT", "port", NULL, F_TEXT},
    {"PROTO", "protocol", NULL, F_TEXT},
    {"MODE", "mode", NULL, F_TEXT},
    {"BACKENDS", "backends", NULL, F_TEXT},
    {"HEALTH", "health", NULL, F_HEALTH_SHORT},
    {"MODIFIED", "modified", NULL, F_TEXT},
};

static const struct field service_fields[] = {
    {"Name", "name", NULL, F_TEXT},
    {"VIP", "vip", "port", F_HOSTPORT},
    {"Protocol", "protocol", NULL, F_TEXT},
    {"Mode", "mode", NULL, F_TEXT},
    {"Announce", "announce", NULL, F_YESNO},
    {"Algorithm", "algorithm", NULL, F_TEXT},
    {"Table size", "table_size", NULL, F_TEXT},
    {"Max backends", "max_backends", NULL, F_TEXT},
    {"Health", "health", NULL, F_HEALTH_LONG},
    {"Backends", "backends", NULL, F_TEXT},
    {"Created", "created", NULL, F_TEXT},
    {"Modified", "modified", NULL, F_TEXT},
};

static const struct field backend_cols[] = {
    {"ID", "id", NULL, F_TEXT},		  {"ADDRESS", "address", NULL, F_TEXT},
    {"PORT", "port", NULL, F_TEXT},	  {"WEIGHT", "weight", NULL, F_TEXT},
    {"STATE", "state", NULL, F_TEXT},	  {"LEASE", "lease", NULL, F_LEASE},
    {"CREATED", "created", NULL, F_TEXT},
};

static const struct field backend_fields[] = {
    {"ID", "id", NULL, F_TEXT},
    {"Address", "address", "port", F_HOSTPORT},
    {"Weight", "weight", NULL, F_TEXT},
    {"State", "state", NULL, F_TEXT},
    {"Draining", "draining", NULL, F_YESNO},
    {"Down", "down", NULL, F_YESNO},
    {"Lease", "lease", NULL, F_LEASE},
    {"Created", "created", NULL, F_TEXT},
};

static const struct field endpoint_cols[] = {
    {"ID", "id", NULL, F_TEXT},	      {"ADDRESS", "address", NULL, F_TEXT},
    {"PORT", "port", NULL, F_TEXT},   {"WEIGHT", "weight", NULL, F_TEXT},
    {"STATE", "state", NULL, F_TEXT},
};

static const struct field f_id = {"", "id", NULL, F_TEXT};
static const struct field f_name = {"", "name", NULL, F_TEXT};
static const struct field f_removed = {"", "backends_removed", NULL, F_TEXT};
static const struct field f_index = {"", "index", NULL, F_TEXT};

static void print_json(FILE *out, const char *body, size_t len)
{
	if (len > 0)
		fwrite(body, 1, len, out);
	if (len == 0 || body[len - 1] != '\n')
		fputc('\n', out);
}

static int render_error(const struct ctl_cmd *cmd, long status, const char *body, size_t len,
			FILE *out, FILE *err)
{
	json_t *root = json_loadb(body != NULL ? body : "", len, JSON_ALLOW_NUL, NULL);
	const json_t *e = get(root, "error");
	struct cell code, msg;

	if (cmd->json && len > 0)
		print_json(out, body, len);
	if (json_is_object(e)) {
		cell_reset(&code);
		put_scalar(&code, get(e, "code"));
		cell_finish(&code);
		cell_reset(&msg);
		put_scalar(&msg, get(e, "message"));
		/* A message may be long: allow it a few cells' worth. */
		cell_finish(&msg);
		fprintf(err, "fulcrumctl: %s: %s (HTTP %ld)\n", code.s, msg.s, status);
	} else {
		fprintf(err, "fulcrumctl: HTTP %ld, and the answer is not a Fulcrum error\n",
			status);
	}
	json_decref(root);
	return CTL_EXIT_REFUSED;
}

int ctl_render(const struct ctl_cmd *cmd, long http_status, const char *body, size_t len, FILE *out,
	       FILE *err)
{
	json_t *root;
	struct cell a, b;

	if (body == NULL)
		len = 0;
	if (http_status < 200 || http_status > 299)
		return render_error(cmd, http_status, body, len, out, err);
	if (cmd->json && !cmd->watch) {
		print_json(out, body, len);
		return CTL_EXIT_OK;
	}
	root = json_loadb(body != NULL ? body : "", len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root)) {
		fprintf(err, "fulcrumctl: HTTP %ld, but the answer is not a JSON object\n",
			http_status);
		json_decref(root);
		return CTL_EXIT_REFUSED;
	}
	switch (cmd->op) {
	case CTL_OP_STATUS:
		print_kv(out, status_fields, N_ELEMS(status_fields), root);
		if (json_is_array(get(root, "members"))) {
			fputs("Members:\n", out);
			print_table(out, status_member_cols, N_ELEMS(status_member_cols),
				    get(root, "members"), "  ");
		}
		break;
	case CTL_OP_MEMBER_LIST:
		print_table(out, member_cols, N_ELEMS(member_cols), get(root, "members"), "");
		break;
	case CTL_OP_MEMBER_ADD:
	case CTL_OP_MEMBER_PROMOTE:
		print_kv(out, member_fields, cmd->op == CTL_OP_MEMBER_ADD ? 4 : 2, root);
		break;
	case CTL_OP_MEMBER_REMOVE:
		field_text(&a, &f_id, root);
		fprintf(out, "member %s removed\n", a.s);
		break;
	case CTL_OP_SERVICE_LIST:
		print_table(out, service_cols, N_ELEMS(service_cols), get(root, "services"), "");
		break;
	case CTL_OP_SERVICE_SHOW:
	case CTL_OP_SERVICE_CREATE:
	case CTL_OP_SERVICE_UPDATE:
		print_kv(out, service_fields, N_ELEMS(service_fields), root);
		break;
	case CTL_OP_SERVICE_DELETE:
		field_text(&a, &f_name, root);
		field_text(&b, &f_removed, root);
		fprintf(out, "service %s deleted, backends removed: %s\n", a.s, b.s);
		break;
	case CTL_OP_BACKEND_LIST:
		print_table(out, backend_cols, N_ELEMS(backend_cols), get(root, "backends"), "");
		break;
	case CTL_OP_BACKEND_SHOW:
	case CTL_OP_BACKEND_ADD:
	case CTL_OP_BACKEND_WEIGHT:
	case CTL_OP_BACKEND_DRAIN:
	case CTL_OP_BACKEND_UNDRAIN:
		print_kv(out, backend_fields, N_ELEMS(backend_fields), root);
		break;
	case CTL_OP_BACKEND_REMOVE:
		field_text(&a, &f_id, root);
		fprintf(out, "backend %s removed from %s\n", a.s, cmd->service);
		break;
	case CTL_OP_ENDPOINTS:
		if (cmd->json) { /* --watch --json: one object per line */
			char *line = json_dumps(root, JSON_COMPACT);

			if (line != NULL)
				fprintf(out, "%s\n", line);
			free(line);
			break;
		}
		if (cmd->watch) {
			field_text(&a, &f_index, root);
			fprintf(out, "index %s\n", a.s);
		}
		print_table(out, endpoint_cols, N_ELEMS(endpoint_cols), get(root, "endpoints"), "");
		break;
	case CTL_OP_NONE:
		break;
	}
	json_decref(root);
	fflush(out);
	return CTL_EXIT_OK;
}

int ctl_response_index(const char *body, size_t len, uint64_t *index)
{
	json_t *root = json_loadb(body != NULL ? body : "", body != NULL ? len : 0, 0, NULL);
	const json_t *v = get(root, "index");
	int rc = -EINVAL;

	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*index = (uint64_t)json_integer_value(v);
		rc = 0;
	}
	json_decref(root);
	return rc;
}
