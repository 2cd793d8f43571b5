/* ctl: fulcrumctl's pure parts — arguments, requests, server lists, JSON-to-table output, exit
 * codes. */
#ifndef FULCRUM_CONTROLPLANE_CTL_H
#define FULCRUM_CONTROLPLANE_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * CONTRACT
 *
 * Everything here is pure (no sockets, no clock, no environment reads, no
 * global state): tools/fulcrumctl.c reads the environment, does the HTTP
 * with libcurl and hands the answers to ctl_render. So every decision the
 * CLI makes (what to send, where to retry, what to print, how to exit) is
 * unit-tested in tests/unit/test_ctl.c. Any thread, as long as one struct
 * is not used by two threads at once.
 *
 * The API it speaks is docs/api.md; the CLI is documented in docs/fulcrumctl.md.
 *
 * Errors: functions return 0 or a negative errno value unless stated
 * otherwise; usage problems come with a one-line message in err.
 */

/* Exit codes of fulcrumctl: scripts may rely on them. */
enum ctl_exit {
	CTL_EXIT_OK = 0,	  /* the API answered 2xx */
	CTL_EXIT_REFUSED = 1,	  /* the API answered with an error (code and message printed) */
	CTL_EXIT_USAGE = 2,	  /* bad arguments: usage printed to stderr, nothing sent */
	CTL_EXIT_UNREACHABLE = 3, /* no address answered (or a write's answer was lost) */
};

/* docs/api.md's examples run a node API on 8001; FULCRUM_SERVERS / -s override it. */
#define CTL_DEFAULT_PORT       8001
#define CTL_DEFAULT_SERVER     "127.0.0.1:8001"
#define CTL_MAX_SERVERS	       16
#define CTL_HOST_MAX	       256		   /* host name or address incl. NUL */
#define CTL_URL_MAX	       (CTL_HOST_MAX + 24) /* "https://[host]:65535" */
#define CTL_PATH_MAX	       512
#define CTL_TOKEN_MAX	       1024
#define CTL_RESPONSE_MAX       (8u << 20) /* bigger answers are refused, never buffered */
#define CTL_DEFAULT_TIMEOUT_MS 10000u	  /* > the API's 5 s forwarding timeout */
#define CTL_DEFAULT_WAIT_MS    30000u	  /* endpoints --watch long-poll bound */

/* The servers to try, in order: base URLs without a trailing slash. */
struct ctl_servers {
	unsigned n;
	char base[CTL_MAX_SERVERS][CTL_URL_MAX]; /* "http://127.0.0.1:8001", "http://[::1]:8001" */
};

/*
 * Parse a comma-separated list of "host", "host:port", "[v6]", "[v6]:port",
 * a bare IPv6 address, optionally with an "http://" or "https://" prefix
 * (and a trailing "/"); the port defaults to CTL_DEFAULT_PORT. Blanks around
 * entries are ignored. 0, or -EINVAL with err set (empty list or entry, bad
 * port, bad host characters, more than CTL_MAX_SERVERS entries). *out is
 * filled only on success.
 */
int ctl_servers_parse(const char *list, struct ctl_servers *out, char *err, size_t errlen);

enum ctl_op {
	CTL_OP_NONE = 0, /* only help was asked for, at the top or a group */
	CTL_OP_STATUS,
	CTL_OP_MEMBER_LIST,
	CTL_OP_MEMBER_ADD,
	CTL_OP_MEMBER_PROMOTE,
	CTL_OP_MEMBER_REMOVE,
	CTL_OP_SERVICE_LIST,
	CTL_OP_SERVICE_SHOW,
	CTL_OP_SERVICE_CREATE,
	CTL_OP_SERVICE_UPDATE,
	CTL_OP_SERVICE_DELETE,
	CTL_OP_BACKEND_LIST,
	CTL_OP_BACKEND_SHOW,
	CTL_OP_BACKEND_ADD,
	CTL_OP_BACKEND_WEIGHT,
	CTL_OP_BACKEND_DRAIN,
	CTL_OP_BACKEND_UNDRAIN,
	CTL_OP_BACKEND_REMOVE,
	CTL_OP_ENDPOINTS,
};

/* A parsed command line: the request to send and how to show its answer. */
struct ctl_cmd {
	enum ctl_op op;
	int want_help;	  /* --help was given: print help (stdout), exit 0, send nothing */
	const char *help; /* help/usage text of the deepest command recognised (static) */
	struct ctl_servers servers;
	char token[CTL_TOKEN_MAX]; /* "" = no Authorization header */
	int json;		   /* print the API's JSON instead of tables */
	int stale;		   /* reads: ?stale=1 (answered from the node's own state) */
	unsigned timeout_ms;	   /* per attempt (a long-poll adds its wait) */

	/* The request. */
	const char *method;	 /* "GET", "POST", "PUT", "PATCH", "DELETE" (static) */
	char path[CTL_PATH_MAX]; /* "/v1/...", with its query string */
	char *body;		 /* compact JSON (malloc'd, ctl_cmd_free) or NULL */

	/* What messages name. */
	char subject[96]; /* service name, member id or backend id of the command */

	/* endpoints */
	int watch;	  /* keep long-polling and print each change */
	int healthy;	  /* ?healthy=1 */
	unsigned wait_ms; /* long-poll bound (with --watch or --index) */
	char service[64];
};

/*
 * Parse argv (argv[0] is the program name) into *cmd (zeroed first).
 * env_servers / env_token are FULCRUM_SERVERS / FULCRUM_TOKEN (NULL when
 * unset); -s and --token win over them. Global options may appear anywhere.
 * Returns:
 *   0        cmd is ready: if cmd->want_help, print cmd->help and exit 0;
 *            otherwise send the request;
 *   -EINVAL  usage error: err says why, cmd->help is the usage to print on
 *            stderr, exit CTL_EXIT_USAGE;
 *   -ENOMEM.
 * On 0 with a request, release with ctl_cmd_free (also safe after errors).
 */
int ctl_parse(int argc, char *const argv[], const char *env_servers, const char *env_token,
	      struct ctl_cmd *cmd, char *err, size_t errlen);

/* Free cmd->body. Safe on a zeroed or already freed cmd. */
void ctl_cmd_free(struct ctl_cmd *cmd);

/* The top-level help text (static). */
const char *ctl_help(void);

/*
 * endpoints: rebuild cmd->path to long-poll past revision index (index 0:
 * plain read, no wait). 0 or -ENOSPC.
 */
int ctl_endpoints_path(struct ctl_cmd *cmd, uint64_t index);

/*
 * The "index" of an endpoints answer (untrusted body). 0 and *index, or
 * -EINVAL when the body is not an object with a non-negative integer index.
 */
int ctl_response_index(const char *body, size_t len, uint64_t *index);

/* A growing response buffer with a hard bound: always NUL-terminated once data != NULL. */
struct ctl_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0 = CTL_RESPONSE_MAX */
};

/* Append n bytes. 0, -EFBIG (would exceed max; nothing appended) or -ENOMEM. */
int ctl_buf_append(struct ctl_buf *b, const void *p, size_t n);
/* Free and zero (max kept). */
void ctl_buf_free(struct ctl_buf *b);

/* What one attempt against one server amounted to. */
enum ctl_attempt {
	CTL_ATTEMPT_ANSWERED = 0, /* an HTTP response arrived (any status): it is the answer */
	CTL_ATTEMPT_NEXT,	  /* the server is down or silent: try the next address */
	CTL_ATTEMPT_UNKNOWN,	  /* a write was sent but no answer came: do not resend it */
	CTL_ATTEMPT_FAILED,	  /* a local or protocol failure (e.g. answer too large) */
};

/*
 * Classify a libcurl result (CURLcode as int). sent: the connection was
 * established, so the request may have reached the server. A write (method
 * other than GET) is resent to the next server only if it was never sent,
 * because the API's writes are not all idempotent (a second create says
 * "exists"). Pure.
 */
enum ctl_attempt ctl_attempt_classify(int curl_code, int sent, const char *method);

/*
 * Exit code for the last attempt: ANSWERED maps the HTTP status (2xx 0,
 * anything else 1); NEXT (every address failed) and UNKNOWN 3; FAILED 1.
 */
int ctl_exit_code(enum ctl_attempt a, long http_status);

/*
 * Print the answer (untrusted body of len bytes, HTTP status) for cmd:
 * tables / key-value blocks / one-line messages on out, or the API's JSON
 * with --json (followed by a newline). Errors: "fulcrumctl: CODE: MESSAGE
 * (HTTP N)" on err (with --json the error body also goes to out). Missing or
 * mistyped fields print as "-" or as what they are; never crashes on any
 * body. Returns the exit code (CTL_EXIT_OK or CTL_EXIT_REFUSED).
 */
int ctl_render(const struct ctl_cmd *cmd, long http_status, const char *body, size_t len, FILE *out,
	       FILE *err);

#endif
