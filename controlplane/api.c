/* api: the HTTP/JSON control API of a node (evhttp + jansson); see docs/api.md. */
#include "controlplane/api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/queue.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "controlplane/config.h"
#include "controlplane/lease.h"
#include "dataplane/fwd.h"

#define STEPS_MAX	3
#define SEG_MAX		6
#define FWD_HEADER	"X-Fulcrum-Forwarded"
#define INDEX_HEADER	"X-Fulcrum-Index"
#define DEFAULT_WEIGHT	100u
#define DEFAULT_WAIT_MS 30000u

enum step_kind { STEP_CMD = 1, STEP_MEMBER = 2 };

/* One log entry or membership change of a write; a write is up to STEPS_MAX of them. */
struct step {
	uint8_t kind;
	enum api_member_op op;
	uint64_t id;
	char raft_addr[SM_HOSTPORT_MAX];
	struct sm_cmd cmd;
};

struct areq;
typedef void (*exec_fn)(struct areq *q);

/* One request in flight (or an internal expiry proposal, with req NULL). */
struct areq {
	struct api *api; /* NULL once api_free detached it */
	struct evhttp_request *req;
	struct areq *prev, *next; /* api->live */
	int pending;		  /* a backend op will call back */
	int waiting;		  /* parked long-poll */
	struct event *timer;
	int admin;
	const struct api_token *tok;
	enum evhttp_cmd_type method;
	char pathbuf[512];
	char *seg[SEG_MAX];
	int nseg;
	struct evkeyvalq query;
	int have_query;
	json_t *body;
	exec_fn exec;	/* reads: runs when the state may be read */
	exec_fn finish; /* writes: runs after the last step applied */
	struct step steps[STEPS_MAX];
	int n_steps, cur;
	int implicit_lease; /* step 0 grants the lease that step 1 registers with */
	uint64_t first_index, last_index;
	int status_ok; /* 200 or 201 */
	uint64_t num_id;
	uint32_t uid;
	uint32_t removed;
	unsigned filter;
	uint64_t wait_index;
	char svc[SM_NAME_MAX];
	int internal; /* lease expiry proposal */
	struct fwd_conn *fwd; /* forward() in flight */
};

/*
 * Connections to the leader opened by forward(), kept alive and reused: a
 * new TCP connection per forwarded write (connect, request, close) cost the
 * follower about three times the CPU of the write itself, and the leader an
 * accept and a close. A connection carries one request at a time; when it
 * is done it goes back to the pool (busy = 0) for the next request to the
 * same address, unless the request failed or the pool already holds
 * FWD_IDLE_MAX idle ones. Connections to an address that is no longer the
 * leader's are retired at the next forward. We free them ourselves: from a
 * zero-delay event once retired (a connection may not be freed inside its
 * own callback), or in api_free (which drops a pending request without a
 * callback). Nothing is left to libevent's free-on-completion, whose timing
 * depends on the peer.
 */
#define FWD_IDLE_MAX 64

struct fwd_conn {
	struct evhttp_connection *evcon;
	struct fwd_conn *next;
	int done; /* retired: the reaper frees it */
	int busy; /* a request is in flight on it */
	char addr[SM_HOSTPORT_MAX];
};

struct api {
	struct event_base *base;
	struct evhttp *http;
	struct api_backend be;
	uint16_t port;
	struct api_token *tokens;
	size_t n_tokens;
	struct api_peer *peers;
	size_t n_peers;
	size_t max_body;
	uint32_t fwd_timeout_ms, max_wait_ms, tick_ms;
	struct event *tick;
	struct lease_tracker *leases;
	int leader;
	uint64_t lead_term;
	uint64_t seen_rev;
	struct areq *live;
	struct fwd_conn *fwd_conns;
	struct event *fwd_reaper;
	uint64_t n_resp[6]; /* by status class 1xx..5xx; [0] other */
	uint64_t n_forwarded, n_expired_proposed;
	uint64_t n_fwd_conns; /* forwarding connections opened (the rest reused one) */
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ms(struct api *api)
{
	struct timespec ts;

	if (api->be.now_ms)
		return api->be.now_ms(api->be.ctx);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const struct sm_state *st(struct api *api)
{
	return api->be.state(api->be.ctx);
}

static void live_add(struct api *api, struct areq *q)
{
	q->next = api->live;
	q->prev = NULL;
	if (api->live)
		api->live->prev = q;
	api->live = q;
}

static void live_del(struct api *api, struct areq *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else if (api->live == q)
		api->live = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void areq_free(struct areq *q)
{
	if (q->api)
		live_del(q->api, q);
	if (q->timer)
		event_free(q->timer);
	if (q->have_query)
		evhttp_clear_headers(&q->query);
	json_decref(q->body);
	free(q);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "200ms", "30s", "1m", or a bare number of seconds. */
static int parse_duration_ms(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v > 86400000ull)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		*out = v;
	else if (!strcmp(end, "s") || !*end)
		*out = v * 1000u;
	else if (!strcmp(end, "m"))
		*out = v * 60000u;
	else
		return -EINVAL;
	return 0;
}

static const char *qparam(struct areq *q, const char *name)
{
	return q->have_query ? evhttp_find_header(&q->query, name) : NULL;
}

static int qflag(struct areq *q, const char *name)
{
	const char *v = qparam(q, name);

	return v && (!strcmp(v, "1") || !strcmp(v, "true") || !*v);
}

static void hex64(uint64_t v, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)v);
}

/* ---- replies ---------------------------------------------------------- */

static void reply_raw(struct areq *q, int status, const char *body, size_t len, uint64_t index)
{
	struct evbuffer *buf;
	struct evkeyvalq *h;
	char ibuf[24];

	if (q->api)
		q->api->n_resp[status / 100 <= 5 ? status / 100 : 0]++;
	if (q->req) {
		h = evhttp_request_get_output_headers(q->req);
		evhttp_add_header(h, "Content-Type", "application/json");
		snprintf(ibuf, sizeof(ibuf), "%llu", (unsigned long long)index);
		evhttp_add_header(h, INDEX_HEADER, ibuf);
		buf = evbuffer_new();
		if (buf)
			evbuffer_add(buf, body, len);
		evhttp_send_reply(q->req, status, NULL, buf);
		if (buf)
			evbuffer_free(buf);
		q->req = NULL;
	}
	areq_free(q);
}

/* Sends obj (reference stolen) and frees q. */
static void reply_json_idx(struct areq *q, int status, json_t *obj, uint64_t index)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	json_decref(obj);
	if (!s) {
		static const char oom[] =
		    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

		reply_raw(q, 500, oom, sizeof(oom) - 1, index);
		return;
	}
	reply_raw(q, status, s, strlen(s), index);
	free(s);
}

static uint64_t cur_rev(struct areq *q)
{
	return q->api ? sm_revision(st(q->api)) : 0;
}

static void reply_json(struct areq *q, int status, json_t *obj)
{
	reply_json_idx(q, status, obj, cur_rev(q));
}

__attribute__((format(printf, 4, 5))) static void reply_err(struct areq *q, int status,
							    const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply_json(q, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

static int sm_status(enum sm_errcode c)
{
	switch (c) {
	case SM_ERR_OK:
		return 200;
	case SM_ERR_NOT_FOUND:
		return 404;
	case SM_ERR_EXISTS:
	case SM_ERR_CONFLICT:
	case SM_ERR_LIMIT:
		return 409;
	default:
		return 400;
	}
}

static void reply_sm_err(struct areq *q, const struct sm_err *e)
{
	reply_err(q, sm_status(e->code), sm_errcode_str(e->code), "%s", e->msg);
}

static void reply_rc(struct areq *q, enum node_rc rc)
{
	if (rc == NODE_TIMEOUT)
		reply_err(q, 504, "timeout", "the leader did not confirm the read in time");
	else
		reply_err(q, 503, "unavailable",
			  "%s before the outcome was known; the write may or may not have been "
			  "applied",
			  node_rc_name(rc));
}

static void reply_errno(struct areq *q, int rc)
{
	switch (rc) {
	case -EPERM:
		reply_err(q, 503, "no_leader", "this node is no longer the leader");
		break;
	case -EBUSY:
	case -EAGAIN:
	case -EINPROGRESS:
		reply_err(q, 409, "conflict",
			  "another membership change or transfer is running, "
			  "or the learner has not caught up: retry");
		break;
	case -ENOENT:
		reply_err(q, 404, "not_found", "no such member");
		break;
	case -EEXIST:
		reply_err(q, 409, "exists", "member already exists");
		break;
	case -ENOSPC:
		reply_err(q, 409, "limit", "too many members");
		break;
	case -EINVAL:
		reply_err(q, 400, "invalid", "refused by raft");
		break;
	default:
		reply_err(q, 500, "internal", "backend error %d", rc);
	}
}

/* ---- JSON out ---------------------------------------------------------- */

static const char *proto_str(uint8_t p)
{
	return p == IPPROTO_UDP ? "udp" : "tcp";
}

static const char *mode_str(uint8_t m)
{
	return m == FWD_MODE_DSR ? "dsr" : m == FWD_MODE_TUNNEL ? "tunnel" : "nat";
}

static const char *hc_str(uint8_t t)
{
	return t == SM_HC_TCP ? "tcp" : t == SM_HC_HTTP ? "http" : "none";
}

static const char *bstate_str(enum sm_backend_state s)
{
	return s == SM_BACKEND_DOWN ? "down" : s == SM_BACKEND_DRAINING ? "draining" : "active";
}

static json_t *service_json(const struct sm_service *s)
{
	char vip[ADDR_STRLEN];
	const struct sm_service_def *d = &s->def;
	json_t *h;

	if (d->health.type == SM_HC_NONE)
		h = json_pack("{s:s}", "type", "none");
	else
		h = json_pack("{s:s,s:s,s:I,s:I,s:i,s:i}", "type", hc_str(d->health.type), "path",
			      d->health.path, "interval_ms", (json_int_t)d->health.interval_ms,
			      "timeout_ms", (json_int_t)d->health.timeout_ms, "rise",
			      (int)d->health.rise, "fall", (int)d->health.fall);
	return json_pack("{s:s,s:s,s:i,s:s,s:s,s:b,s:s,s:I,s:I,s:o,s:I,s:I,s:I}", "name", d->name,
			 "vip", addr_format(&d->vip, vip, sizeof(vip)), "port", (int)d->port,
			 "protocol", proto_str(d->proto), "mode", mode_str(d->mode), "announce",
			 (int)d->announce, "algorithm", "maglev", "table_size",
			 (json_int_t)d->table_size, "max_backends", (json_int_t)d->max_backends,
			 "health", h, "created", (json_int_t)s->created, "modified",
			 (json_int_t)s->modified, "backends", (json_int_t)s->n_backends);
}

static json_t *backend_json(const struct sm_backend *b)
{
	char a[ADDR_STRLEN];

	return json_pack("{s:I,s:s,s:i,s:I,s:s,s:b,s:b,s:I,s:I}", "id", (json_int_t)b->uid,
			 "address", addr_format(&b->addr, a, sizeof(a)), "port", (int)b->port,
			 "weight", (json_int_t)b->weight, "state", bstate_str(sm_backend_state(b)),
			 "draining", (int)b->draining, "down", (int)b->down, "lease",
			 (json_int_t)b->lease, "created", (json_int_t)b->created);
}

static json_t *lease_json(const struct sm_lease *l)
{
	return json_pack("{s:I,s:s,s:I,s:I,s:I}", "id", (json_int_t)l->id, "service", l->service,
			 "ttl_ms", (json_int_t)l->ttl_ms, "granted", (json_int_t)l->granted,
			 "renewed", (json_int_t)l->renewed);
}

/* ---- JSON in ----------------------------------------------------------- */

/* Every key of obj must be in allowed (NULL-terminated). */
static int check_fields(struct areq *q, const json_t *obj, const char *const *allowed,
			const char *where)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;

		for (i = 0; allowed[i]; i++)
			if (!strcmp(allowed[i], key))
				break;
		if (!allowed[i]) {
			reply_err(q, 400, "bad_request", "unknown field \"%s\"%s", key, where);
			return -1;
		}
	}
	return 0;
}

/* Optional unsigned integer field <= max. 1 present, 0 absent, -1 replied. */
static int get_uint(struct areq *q, const json_t *obj, const char *key, uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max) {
		reply_err(q, 400, "bad_request", "\"%s\" must be an integer in 0..%llu", key,
			  (unsigned long long)max);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 1;
}

static int get_str(struct areq *q, const json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_string(v)) {
		reply_err(q, 400, "bad_request", "\"%s\" must be a string", key);
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

static int get_bool(struct areq *q, const json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		reply_err(q, 400, "bad_request", "\"%s\" must be true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	return 1;
}

/* Parse the request body as a JSON object into q->body (empty body: {} when allow_empty). */
static int load_body(struct areq *q, int allow_empty)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(q->req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	const char *data;

	if (len == 0) {
		if (!allow_empty) {
			reply_err(q, 400, "bad_request", "a JSON object body is required");
			return -1;
		}
		q->body = json_object();
		return q->body ? 0 : (reply_err(q, 500, "internal", "out of memory"), -1);
	}
	data = (const char *)evbuffer_pullup(in, -1);
	q->body = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!q->body) {
		reply_err(q, 400, "bad_request", "invalid JSON: %s (line %d)", jerr.text,
			  jerr.line);
		return -1;
	}
	if (!json_is_object(q->body)) {
		reply_err(q, 400, "bad_request", "the body must be a JSON object");
		return -1;
	}
	return 0;
}

static int copy_name(struct areq *q, char *dst, const char *src, const char *what)
{
	size_t n = strlen(src);

	if (n == 0 || n >= SM_NAME_MAX) {
		reply_err(q, 400, "invalid", "%s name must be 1..%d characters", what,
			  SM_NAME_MAX - 1);
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

/* Service definition from q->body (POST: name from the body; PUT: from the path). */
static int parse_service(struct areq *q, struct sm_service_def *d, const char *path_name)
{
	static const char *const fields[] = {
	    "name",	  "vip",	  "port",   "protocol", "mode",	    "announce", "algorithm",
	    "table_size", "max_backends", "health", "created",	"modified", "backends", NULL};
	static const char *const hfields[] = {"type", "path", "interval_ms", "timeout_ms",
					      "rise", "fall", NULL};
	const char *name = NULL, *vip = NULL, *s = NULL;
	uint64_t v;
	int b, r;
	json_t *h;

	memset(d, 0, sizeof(*d));
	if (check_fields(q, q->body, fields, ""))
		return -1;
	if ((r = get_str(q, q->body, "name", &name)) < 0)
		return -1;
	if (path_name) {
		if (name && strcmp(name, path_name)) {
			reply_err(q, 400, "bad_request", "\"name\" differs from the path");
			return -1;
		}
		name = path_name;
	}
	if (!name) {
		reply_err(q, 400, "bad_request", "\"name\" is required");
		return -1;
	}
	if (copy_name(q, d->name, name, "service"))
		return -1;
	if (get_str(q, q->body, "vip", &vip) < 0)
		return -1;
	if (!vip || addr_parse(vip, &d->vip)) {
		reply_err(q, 400, "bad_request", "\"vip\" must be an IPv4 or IPv6 address");
		return -1;
	}
	if ((r = get_uint(q, q->body, "port", 65535, &v)) < 0)
		return -1;
	if (r == 0) {
		reply_err(q, 400, "bad_request", "\"port\" is required");
		return -1;
	}
	d->port = (uint16_t)v;
	d->proto = IPPROTO_TCP;
	if ((r = get_str(q, q->body, "protocol", &s)) < 0)
		return -1;
	if (r) {
		if (!strcmp(s, "tcp"))
			d->proto = IPPROTO_TCP;
		else if (!strcmp(s, "udp"))
			d->proto = IPPROTO_UDP;
		else {
			reply_err(q, 400, "bad_request", "\"protocol\" must be tcp or udp");
			return -1;
		}
	}
	d->mode = FWD_MODE_NAT;
	if ((r = get_str(q, q->body, "mode", &s)) < 0)
		return -1;
	if (r) {
		if (!strcmp(s, "nat"))
			d->mode = FWD_MODE_NAT;
		else if (!strcmp(s, "dsr"))
			d->mode = FWD_MODE_DSR;
		else if (!strcmp(s, "tunnel"))
			d->mode = FWD_MODE_TUNNEL;
		else {
			reply_err(q, 400, "bad_request", "\"mode\" must be nat, dsr or tunnel");
			return -1;
		}
	}
	b = 0;
	if (get_bool(q, q->body, "announce", &b) < 0)
		return -1;
	d->announce = (uint8_t)b;
	d->algorithm = SM_ALG_MAGLEV;
	if ((r = get_str(q, q->body, "algorithm", &s)) < 0)
		return -1;
	if (r && strcmp(s, "maglev")) {
		reply_err(q, 400, "bad_request", "\"algorithm\" must be maglev");
		return -1;
	}
	v = 0;
	if (get_uint(q, q->body, "table_size", UINT32_MAX, &v) < 0)
		return -1;
	d->table_size = (uint32_t)v;
	v = 0;
	if (get_uint(q, q->body, "max_backends", UINT32_MAX, &v) < 0)
		return -1;
	d->max_backends = (uint32_t)v;
	h = json_object_get(q->body, "health");
	if (h) {
		if (!json_is_object(h)) {
			reply_err(q, 400, "bad_request", "\"health\" must be an object");
			return -1;
		}
		if (check_fields(q, h, hfields, " in \"health\""))
			return -1;
		s = "none";
		if (get_str(q, h, "type", &s) < 0)
			return -1;
		if (!strcmp(s, "none"))
			d->health.type = SM_HC_NONE;
		else if (!strcmp(s, "tcp"))
			d->health.type = SM_HC_TCP;
		else if (!strcmp(s, "http"))
			d->health.type = SM_HC_HTTP;
		else {
			reply_err(q, 400, "bad_request",
				  "\"health.type\" must be none, tcp or http");
			return -1;
		}
		s = NULL;
		if (get_str(q, h, "path", &s) < 0)
			return -1;
		if (s) {
			if (strlen(s) >= SM_PATH_MAX) {
				reply_err(q, 400, "invalid", "\"health.path\" is too long");
				return -1;
			}
			snprintf(d->health.path, sizeof(d->health.path), "%s", s);
		}
		v = 0;
		if (get_uint(q, h, "interval_ms", UINT32_MAX, &v) < 0)
			return -1;
		d->health.interval_ms = (uint32_t)v;
		v = 0;
		if (get_uint(q, h, "timeout_ms", UINT32_MAX, &v) < 0)
			return -1;
		d->health.timeout_ms = (uint32_t)v;
		v = 0;
		if (get_uint(q, h, "rise", 255, &v) < 0)
			return -1;
		d->health.rise = (uint8_t)v;
		v = 0;
		if (get_uint(q, h, "fall", 255, &v) < 0)
			return -1;
		d->health.fall = (uint8_t)v;
	}
	return 0;
}

/* ---- auth -------------------------------------------------------------- */

static int ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char d = (unsigned char)(la != lb);

	/* Constant time in the secret's length: no early exit on the first difference. */
	for (i = 0; i < lb; i++)
		d |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
	return d == 0;
}

/* 0 ok, -1 replied 401. */
static int authenticate(struct areq *q)
{
	struct api *api = q->api;
	const char *h;
	size_t i;

	if (api->n_tokens == 0) {
		q->admin = 1;
		return 0;
	}
	h = evhttp_find_header(evhttp_request_get_input_headers(q->req), "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7)) {
		reply_err(q, 401, "unauthorized", "an Authorization: Bearer token is required");
		return -1;
	}
	h += 7;
	for (i = 0; i < api->n_tokens; i++) {
		if (ct_equal(h, api->tokens[i].token)) {
			q->tok = &api->tokens[i];
			q->admin = api->tokens[i].admin;
			return 0;
		}
	}
	reply_err(q, 401, "unauthorized", "unknown token");
	return -1;
}

static int in_scope(const struct areq *q, const char *service)
{
	size_t i;

	if (q->admin)
		return 1;
	if (!q->tok || !service)
		return 0;
	for (i = 0; i < q->tok->n_services; i++)
		if (!strcmp(q->tok->services[i], service))
			return 1;
	return 0;
}

/* 0 ok, -1 replied 403. */
static int need_scope(struct areq *q, const char *service)
{
	if (in_scope(q, service))
		return 0;
	reply_err(q, 403, "forbidden", "this token may not act on service \"%s\"",
		  service ? service : "?");
	return -1;
}

static int need_admin(struct areq *q)
{
	if (q->admin)
		return 0;
	reply_err(q, 403, "forbidden", "this needs an admin token");
	return -1;
}

/* ---- writes: steps ------------------------------------------------------ */

/*
 * The common start of a backend callback: 1 when the request goes on; 0
 * when it is finished here (the API went away: freed; the node refused or
 * failed: answered).
 */
static int commit_arrived(struct areq *q, const struct api_commit *c)
{
	q->pending = 0;
	if (!q->api) {
		areq_free(q);
		return 0;
	}
	if (c->rc != NODE_OK) {
		reply_rc(q, c->rc);
		return 0;
	}
	return 1;
}

static void run_step(struct areq *q);

static void step_done(void *dctx, const struct api_commit *c)
{
	struct areq *q = dctx;

	if (!commit_arrived(q, c))
		return;
	if (q->steps[q->cur].kind == STEP_CMD && c->code != SM_ERR_OK) {
		/* Became invalid between validation and apply (a racing write). */
		reply_err(q, sm_status(c->code), sm_errcode_str(c->code),
			  "refused when applied at revision %llu", (unsigned long long)c->index);
		return;
	}
	if (q->cur == 0)
		q->first_index = c->index;
	q->last_index = c->index;
	if (q->implicit_lease && q->cur == 0)
		q->steps[1].cmd.u.reg.lease = c->index; /* lease id = the grant's index */
	q->cur++;
	run_step(q);
}

static void run_step(struct areq *q)
{
	struct api *api = q->api;
	struct step *s;
	int rc;

	if (q->cur >= q->n_steps) {
		q->finish(q);
		return;
	}
	s = &q->steps[q->cur];
	if (s->kind == STEP_CMD) {
		uint8_t buf[SM_CMD_MAX_LEN];
		struct sm_err e;
		int len;

		/* Each step is validated against the state its predecessors left. */
		if (sm_validate(st(api), &s->cmd, &e) != SM_ERR_OK) {
			reply_sm_err(q, &e);
			return;
		}
		len = sm_cmd_encode(&s->cmd, buf, sizeof(buf));
		if (len < 0) {
			reply_err(q, 400, "invalid", "cannot encode the command");
			return;
		}
		rc = api->be.propose(api->be.ctx, buf, (uint32_t)len, step_done, q);
	} else {
		rc = api->be.member(api->be.ctx, s->op, s->id, s->raft_addr, step_done, q);
	}
	if (rc) {
		reply_errno(q, rc);
		return;
	}
	q->pending = 1;
}

static struct sm_cmd *add_cmd(struct areq *q, uint8_t type)
{
	struct step *s = &q->steps[q->n_steps++];

	memset(s, 0, sizeof(*s));
	s->kind = STEP_CMD;
	s->cmd.type = type;
	return &s->cmd;
}

static void add_member(struct areq *q, enum api_member_op op, uint64_t id, const char *raft_addr)
{
	struct step *s = &q->steps[q->n_steps++];

	memset(s, 0, sizeof(*s));
	s->kind = STEP_MEMBER;
	s->op = op;
	s->id = id;
	if (raft_addr)
		snprintf(s->raft_addr, sizeof(s->raft_addr), "%s", raft_addr);
}

/* Validate every command step up front against the current state (a bad request must not
 * leave its first steps committed), then run them. */
static void start_steps(struct areq *q, int validate_from)
{
	int i;

	for (i = validate_from; i < q->n_steps; i++) {
		struct sm_err e;

		if (q->steps[i].kind != STEP_CMD)
			continue;
		if (sm_validate(st(q->api), &q->steps[i].cmd, &e) != SM_ERR_OK) {
			reply_sm_err(q, &e);
			return;
		}
	}
	q->cur = 0;
	run_step(q);
}

/* ---- leader lookup and forwarding ------------------------------------- */

static int leader_addr(struct api *api, uint64_t leader, char *buf, size_t len)
{
	const struct sm_member *m = sm_member_get(st(api), leader);
	size_t i;

	if (m && m->api_addr[0]) {
		snprintf(buf, len, "%s", m->api_addr);
		return 0;
	}
	for (i = 0; i < api->n_peers; i++) {
		if (api->peers[i].id == leader && api->peers[i].api_addr) {
			snprintf(buf, len, "%s", api->peers[i].api_addr);
			return 0;
		}
	}
	return -ENOENT;
}

/* "host:port" / "[v6]:port" → host, port. */
static int split_hostport(const char *s, char *host, size_t hlen, uint16_t *port)
{
	const char *colon;
	uint64_t p;
	size_t n;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - s - 1);
		if (n >= hlen)
			return -EINVAL;
		memcpy(host, s + 1, n);
		host[n] = 0;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
		if (n == 0 || n >= hlen)
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = 0;
	}
	if (parse_u64(colon + 1, &p) || p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

static unsigned fwd_idle_count(const struct api *api, const char *addr)
{
	unsigned n = 0;

	for (const struct fwd_conn *fc = api->fwd_conns; fc; fc = fc->next)
		n += !fc->done && !fc->busy && strcmp(fc->addr, addr) == 0;
	return n;
}

/* An idle pooled connection to addr, or NULL; idle ones to any other address are retired. */
static struct fwd_conn *fwd_take(struct api *api, const char *addr)
{
	struct fwd_conn *found = NULL;
	int retired = 0;

	for (struct fwd_conn *fc = api->fwd_conns; fc; fc = fc->next) {
		if (fc->done || fc->busy)
			continue;
		if (strcmp(fc->addr, addr) != 0) {
			fc->done = 1; /* the leader moved */
			retired = 1;
		} else if (!found) {
			found = fc;
		}
	}
	if (retired)
		event_active(api->fwd_reaper, 0, 0);
	return found;
}

static void fwd_done(struct evhttp_request *resp, void *arg)
{
	struct areq *q = arg;
	struct evbuffer *in;
	const char *idx;
	uint64_t index = 0;
	size_t len;
	int code;

	q->pending = 0;
	code = resp ? evhttp_request_get_response_code(resp) : 0;
	if (q->fwd) {
		struct fwd_conn *fc = q->fwd;

		fc->busy = 0;
		q->fwd = NULL;
		/* A failed connection is not trusted again; an idle one waits for the next
		 * request (freeing happens in the reaper, outside this callback). */
		if (code <= 0 || !q->api || fwd_idle_count(q->api, fc->addr) > FWD_IDLE_MAX)
			fc->done = 1;
		if (fc->done && q->api)
			event_active(q->api->fwd_reaper, 0, 0);
	}
	if (!q->api) {
		areq_free(q);
		return;
	}
	if (code <= 0) {
		reply_err(q, 503, "no_leader", "the leader did not answer the forwarded request");
		return;
	}
	idx = evhttp_find_header(evhttp_request_get_input_headers(resp), INDEX_HEADER);
	if (idx)
		parse_u64(idx, &index);
	in = evhttp_request_get_input_buffer(resp);
	len = evbuffer_get_length(in);
	reply_raw(q, code, len ? (const char *)evbuffer_pullup(in, -1) : "", len, index);
}

/* Relay q to the leader's API. Replies on every error. */
static void forward(struct areq *q)
{
	struct api *api = q->api;
	struct node_info *info;
	char addr[SM_HOSTPORT_MAX], host[SM_HOSTPORT_MAX], me[24], clen[24];
	struct evhttp_connection *evcon;
	struct fwd_conn *fc;
	size_t blen;
	struct evhttp_request *out;
	struct evkeyvalq *ih, *oh;
	const char *h;
	uint64_t leader;
	uint16_t port;

	info = malloc(sizeof(*info));
	if (!info) {
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	api->be.info(api->be.ctx, info);
	leader = info->leader;
	snprintf(me, sizeof(me), "%llu", (unsigned long long)info->id);
	free(info);
	ih = evhttp_request_get_input_headers(q->req);
	if (evhttp_find_header(ih, FWD_HEADER)) {
		/* Whoever forwarded it thought we lead: do not pass it on (no loops). */
		reply_err(q, 503, "no_leader",
			  "forwarded request reached a node that is not the "
			  "leader");
		return;
	}
	if (leader == 0) {
		reply_err(q, 503, "no_leader", "no leader is known");
		return;
	}
	if (leader_addr(api, leader, addr, sizeof(addr)) ||
	    split_hostport(addr, host, sizeof(host), &port)) {
		reply_err(q, 503, "no_leader", "the API address of leader %llu is not known",
			  (unsigned long long)leader);
		return;
	}
	fc = fwd_take(api, addr);
	int fresh = fc == NULL;
	if (fresh) {
		fc = calloc(1, sizeof(*fc));
		evcon = fc ? evhttp_connection_base_new(api->base, NULL, host, port) : NULL;
		if (evcon)
			evhttp_connection_set_timeout(evcon,
						      (int)((api->fwd_timeout_ms + 999) / 1000));
	} else {
		evcon = fc->evcon;
	}
	out = evcon ? evhttp_request_new(fwd_done, q) : NULL;
	if (!out) {
		if (fresh) {
			if (evcon)
				evhttp_connection_free(evcon);
			free(fc);
		}
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	oh = evhttp_request_get_output_headers(out);
	evhttp_add_header(oh, "Host", addr);
	evhttp_add_header(oh, FWD_HEADER, me);
	if ((h = evhttp_find_header(ih, "Authorization")))
		evhttp_add_header(oh, "Authorization", h);
	if ((h = evhttp_find_header(ih, "Content-Type")))
		evhttp_add_header(oh, "Content-Type", h);
	blen = evbuffer_get_length(evhttp_request_get_input_buffer(q->req));
	if (blen) {
		/* libevent 2.1's client adds Content-Length only for POST and PUT (not PATCH). */
		snprintf(clen, sizeof(clen), "%zu", blen);
		evhttp_add_header(oh, "Content-Length", clen);
	}
	evbuffer_add_buffer(evhttp_request_get_output_buffer(out),
			    evhttp_request_get_input_buffer(q->req));
	if (evhttp_make_request(evcon, out, q->method, evhttp_request_get_uri(q->req))) {
		/* evhttp_make_request frees out on failure. */
		if (fresh) {
			evhttp_connection_free(evcon);
			free(fc);
		} else {
			fc->done = 1; /* not trusted again: the reaper frees it */
			event_active(api->fwd_reaper, 0, 0);
		}
		reply_err(q, 503, "no_leader", "cannot reach the leader at %s", addr);
		return;
	}
	api->n_forwarded++;
	q->pending = 1;
	q->fwd = fc;
	fc->busy = 1;
	if (fresh) {
		fc->evcon = evcon;
		snprintf(fc->addr, sizeof(fc->addr), "%s", addr);
		fc->next = api->fwd_conns;
		api->fwd_conns = fc;
		api->n_fwd_conns++;
	}
}

/* Free the forwarding connections whose request is done. */
static void fwd_reap(evutil_socket_t fd, short what, void *arg)
{
	struct api *api = arg;
	struct fwd_conn **pp = &api->fwd_conns;

	(void)fd;
	(void)what;
	while (*pp) {
		struct fwd_conn *fc = *pp;
		if (fc->done) {
			*pp = fc->next;
			evhttp_connection_free(fc->evcon);
			free(fc);
		} else {
			pp = &fc->next;
		}
	}
}

static int is_leader(struct api *api)
{
	struct node_info *info;
	int r;

	if (api->be.is_leader)
		return api->be.is_leader(api->be.ctx);
	info = malloc(sizeof(*info));
	if (!info)
		return 0;
	api->be.info(api->be.ctx, info);
	r = info->role == RAFT_LEADER;
	free(info);
	return r;
}

/* ---- reads ------------------------------------------------------------- */

static void read_done(void *dctx, const struct api_commit *c)
{
	struct areq *q = dctx;

	if (!commit_arrived(q, c))
		return;
	q->exec(q);
}

/* A read: local when stale=1, ReadIndex on the leader, forwarded from a follower. */
static void do_read(struct areq *q, exec_fn exec)
{
	int rc;

	q->exec = exec;
	if (qflag(q, "stale")) {
		exec(q);
		return;
	}
	if (!is_leader(q->api)) {
		forward(q);
		return;
	}
	rc = q->api->be.read_index(q->api->be.ctx, read_done, q);
	if (rc) {
		reply_errno(q, rc);
		return;
	}
	q->pending = 1;
}

/* A write: prep (parse, scope, build steps) on the leader, else forward. */
static void do_write(struct areq *q, exec_fn prep)
{
	if (!is_leader(q->api)) {
		forward(q);
		return;
	}
	prep(q);
}

/* ---- handlers: status and members ------------------------------------- */

static const char *role_str(enum raft_role r)
{
	switch (r) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_PRECANDIDATE:
		return "precandidate";
	default:
		return "follower";
	}
}

static void exec_status(struct areq *q)
{
	struct api *api = q->api;
	struct node_info *info = malloc(sizeof(*info));
	char dig[17], fdig[17], laddr[SM_HOSTPORT_MAX];
	json_t *o, *ms;
	uint64_t fd;
	uint32_t i;

	if (!info) {
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	api->be.info(api->be.ctx, info);
	hex64(sm_digest(st(api)), dig);
	ms = json_array();
	for (i = 0; i < info->n_members; i++)
		json_array_append_new(
		    ms, json_pack("{s:I,s:b,s:b}", "id", (json_int_t)info->members[i].id, "voter",
				  info->members[i].voter, "connected", info->members[i].connected));
	o = json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:o}", "id", (json_int_t)info->id,
		      "role", role_str(info->role), "term", (json_int_t)info->term, "leader",
		      (json_int_t)info->leader, "commit", (json_int_t)info->commit, "applied",
		      (json_int_t)info->applied, "revision", (json_int_t)sm_revision(st(api)),
		      "state_digest", dig, "services", (json_int_t)sm_service_count(st(api)),
		      "leases", (json_int_t)sm_lease_count(st(api)), "members", ms);
	if (o) {
		if (info->leader && !leader_addr(api, info->leader, laddr, sizeof(laddr)))
			json_object_set_new(o, "leader_api", json_string(laddr));
		else
			json_object_set_new(o, "leader_api", json_null());
		if (api->be.forwarding_digest && api->be.forwarding_digest(api->be.ctx, &fd) == 0) {
			hex64(fd, fdig);
			json_object_set_new(o, "forwarding_digest", json_string(fdig));
		} else {
			json_object_set_new(o, "forwarding_digest", json_null());
		}
	}
	free(info);
	reply_json(q, 200, o);
}

static json_t *member_json(const struct node_info *info, const struct sm_state *s, uint64_t id)
{
	const struct sm_member *m = sm_member_get(s, id);
	const struct node_member *nm = NULL;
	json_t *o;
	uint32_t i;

	for (i = 0; i < info->n_members; i++)
		if (info->members[i].id == id)
			nm = &info->members[i];
	o = json_pack("{s:I,s:b,s:b}", "id", (json_int_t)id, "voter", nm ? nm->voter : 0, "leader",
		      info->leader == id);
	if (!o)
		return NULL;
	json_object_set_new(o, "raft_address",
			    json_string(m		    ? m->raft_addr
					: nm && nm->addr[0] ? nm->addr
							    : ""));
	json_object_set_new(o, "api_address", json_string(m ? m->api_addr : ""));
	json_object_set_new(o, "in_configuration", json_boolean(nm != NULL));
	json_object_set_new(o, "connected", json_boolean(nm && nm->connected));
	json_object_set_new(o, "last_contact_ms", json_integer(nm ? nm->last_contact_ms : -1));
	return o;
}

static void exec_members(struct areq *q)
{
	struct api *api = q->api;
	struct node_info *info = malloc(sizeof(*info));
	const struct sm_state *s = st(api);
	json_t *arr = json_array();
	uint32_t i;

	if (!info || !arr) {
		free(info);
		json_decref(arr);
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	api->be.info(api->be.ctx, info);
	/* Raft's configuration first, then table entries not (or no longer) in it. */
	for (i = 0; i < info->n_members; i++)
		json_array_append_new(arr, member_json(info, s, info->members[i].id));
	for (i = 0; i < sm_member_count(s); i++) {
		uint64_t id = sm_member_at(s, i)->id;
		uint32_t j;
		int seen = 0;

		for (j = 0; j < info->n_members; j++)
			seen |= info->members[j].id == id;
		if (!seen)
			json_array_append_new(arr, member_json(info, s, id));
	}
	free(info);
	reply_json(q, 200, json_pack("{s:o}", "members", arr));
}

static void finish_member(struct areq *q)
{
	struct node_info *info = malloc(sizeof(*info));
	json_t *o;

	if (!info) {
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	q->api->be.info(q->api->be.ctx, info);
	o = member_json(info, st(q->api), q->num_id);
	free(info);
	if (o && q->steps[0].op == API_MEMBER_REMOVE)
		json_object_set_new(o, "removed", json_true());
	reply_json_idx(q, q->status_ok, o, q->last_index);
}

static void prep_member_add(struct areq *q)
{
	static const char *const fields[] = {"id", "raft_address", "api_address", NULL};
	const char *ra = NULL, *aa = NULL;
	const struct sm_member *m;
	uint64_t id = 0;
	struct sm_cmd *c;

	if (load_body(q, 0) || check_fields(q, q->body, fields, ""))
		return;
	if (get_uint(q, q->body, "id", UINT64_MAX >> 1, &id) < 0 ||
	    get_str(q, q->body, "raft_address", &ra) < 0 ||
	    get_str(q, q->body, "api_address", &aa) < 0)
		return;
	if (!id || !ra || !aa) {
		reply_err(q, 400, "bad_request",
			  "\"id\", \"raft_address\" and \"api_address\" "
			  "are required");
		return;
	}
	if (strlen(ra) >= SM_HOSTPORT_MAX || strlen(aa) >= SM_HOSTPORT_MAX) {
		reply_err(q, 400, "invalid", "address too long");
		return;
	}
	m = sm_member_get(st(q->api), id);
	/* A retry after the Raft step failed finds the table entry already there. */
	if (!m || strcmp(m->raft_addr, ra) || strcmp(m->api_addr, aa)) {
		c = add_cmd(q, SM_CMD_MEMBER_ADD);
		c->u.member.id = id;
		snprintf(c->u.member.raft_addr, sizeof(c->u.member.raft_addr), "%s", ra);
		snprintf(c->u.member.api_addr, sizeof(c->u.member.api_addr), "%s", aa);
	}
	add_member(q, API_MEMBER_ADD_LEARNER, id, ra);
	q->num_id = id;
	q->status_ok = 201;
	q->finish = finish_member;
	start_steps(q, 0);
}

static int path_id(struct areq *q, const char *s, uint64_t *out)
{
	if (parse_u64(s, out) || *out == 0) {
		reply_err(q, 400, "bad_request", "\"%s\" is not a valid id", s);
		return -1;
	}
	return 0;
}

static void prep_member_promote(struct areq *q)
{
	if (path_id(q, q->seg[2], &q->num_id))
		return;
	add_member(q, API_MEMBER_PROMOTE, q->num_id, NULL);
	q->status_ok = 200;
	q->finish = finish_member;
	start_steps(q, 0);
}

static void prep_member_remove(struct areq *q)
{
	struct sm_cmd *c;

	if (path_id(q, q->seg[2], &q->num_id))
		return;
	/* Out of Raft's configuration first: the table entry only serves addressing. */
	add_member(q, API_MEMBER_REMOVE, q->num_id, NULL);
	if (sm_member_get(st(q->api), q->num_id)) {
		c = add_cmd(q, SM_CMD_MEMBER_REMOVE);
		c->u.member.id = q->num_id;
	}
	q->status_ok = 200;
	q->finish = finish_member;
	start_steps(q, 0);
}

/* ---- handlers: services ----------------------------------------------- */

static void exec_services(struct areq *q)
{
	const struct sm_state *s = st(q->api);
	json_t *arr = json_array();
	uint32_t i, n = sm_service_count(s);

	for (i = 0; i < n; i++) {
		const struct sm_service *svc = sm_service_at(s, i);

		if (in_scope(q, svc->def.name))
			json_array_append_new(arr, service_json(svc));
	}
	reply_json(q, 200, json_pack("{s:o}", "services", arr));
}

static void exec_service(struct areq *q)
{
	const struct sm_service *svc = sm_service_get(st(q->api), q->seg[2]);

	if (!svc) {
		reply_err(q, 404, "not_found", "service \"%s\": not found", q->seg[2]);
		return;
	}
	reply_json(q, 200, service_json(svc));
}

static void finish_service(struct areq *q)
{
	const struct sm_service *svc = sm_service_get(st(q->api), q->svc);

	if (!svc) {
		reply_err(q, 409, "conflict", "service \"%s\" changed meanwhile", q->svc);
		return;
	}
	reply_json_idx(q, q->status_ok, service_json(svc), q->last_index);
}

static void prep_service_create(struct areq *q)
{
	struct sm_cmd *c;

	if (load_body(q, 0))
		return;
	c = add_cmd(q, SM_CMD_SERVICE_CREATE);
	if (parse_service(q, &c->u.service, NULL))
		return;
	snprintf(q->svc, sizeof(q->svc), "%s", c->u.service.name);
	q->status_ok = 201;
	q->finish = finish_service;
	start_steps(q, 0);
}

static void prep_service_update(struct areq *q)
{
	struct sm_cmd *c;

	if (load_body(q, 0))
		return;
	c = add_cmd(q, SM_CMD_SERVICE_UPDATE);
	if (parse_service(q, &c->u.service, q->seg[2]))
		return;
	snprintf(q->svc, sizeof(q->svc), "%s", c->u.service.name);
	q->status_ok = 200;
	q->finish = finish_service;
	start_steps(q, 0);
}

static void finish_service_delete(struct areq *q)
{
	reply_json_idx(q, 200,
		       json_pack("{s:s,s:b,s:I}", "name", q->svc, "deleted", 1, "backends_removed",
				 (json_int_t)q->removed),
		       q->last_index);
}

static void prep_service_delete(struct areq *q)
{
	const struct sm_service *svc = sm_service_get(st(q->api), q->seg[2]);
	struct sm_cmd *c;

	if (copy_name(q, q->svc, q->seg[2], "service"))
		return;
	q->removed = svc ? svc->n_backends : 0;
	c = add_cmd(q, SM_CMD_SERVICE_DELETE);
	snprintf(c->u.del.service, sizeof(c->u.del.service), "%s", q->svc);
	q->status_ok = 200;
	q->finish = finish_service_delete;
	start_steps(q, 0);
}

/* ---- handlers: backends ----------------------------------------------- */

static void exec_backends(struct areq *q)
{
	const struct sm_state *s = st(q->api);
	const struct sm_service *svc = sm_service_get(s, q->seg[2]);
	unsigned filter = qflag(q, "healthy") ? SM_FILTER_HEALTHY : 0;
	const struct sm_backend **v;
	json_t *arr;
	int n, i;

	if (!svc) {
		reply_err(q, 404, "not_found", "service \"%s\": not found", q->seg[2]);
		return;
	}
	n = sm_backend_list(s, q->seg[2], filter, NULL, 0);
	v = calloc((size_t)(n > 0 ? n : 1), sizeof(*v));
	arr = json_array();
	if (!v || !arr || n < 0) {
		free(v);
		json_decref(arr);
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	n = sm_backend_list(s, q->seg[2], filter, v, (uint32_t)n);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, backend_json(v[i]));
	free(v);
	reply_json(q, 200, json_pack("{s:s,s:o}", "service", q->seg[2], "backends", arr));
}

static int path_uid(struct areq *q, const char *s, uint32_t *uid)
{
	uint64_t v;

	if (parse_u64(s, &v) || v > UINT32_MAX) {
		reply_err(q, 400, "bad_request", "\"%s\" is not a backend id", s);
		return -1;
	}
	*uid = (uint32_t)v;
	return 0;
}

static void exec_backend(struct areq *q)
{
	const struct sm_service *svc = sm_service_get(st(q->api), q->seg[2]);
	const struct sm_backend *b;
	uint32_t uid;

	if (path_uid(q, q->seg[4], &uid))
		return;
	b = svc ? sm_backend_get(svc, uid) : NULL;
	if (!b) {
		reply_err(q, 404, "not_found", "backend %s of service \"%s\": not found", q->seg[4],
			  q->seg[2]);
		return;
	}
	reply_json(q, 200, backend_json(b));
}

static void finish_backend(struct areq *q)
{
	const struct sm_service *svc = sm_service_get(st(q->api), q->svc);
	const struct sm_backend *b = svc ? sm_backend_get(svc, q->uid) : NULL;

	if (!b) {
		reply_err(q, 409, "conflict", "the backend changed meanwhile");
		return;
	}
	reply_json_idx(q, q->status_ok, backend_json(b), q->last_index);
}

static void prep_backend_register(struct areq *q)
{
	static const char *const fields[] = {"address", "port", "weight", "ttl_ms", "lease", NULL};
	const struct sm_service *svc;
	const char *a = NULL;
	uint64_t port = 0, weight = DEFAULT_WEIGHT, ttl = 0, lease = 0;
	int has_ttl, has_lease;
	struct sm_cmd *c;
	struct addr addr;

	if (load_body(q, 0) || check_fields(q, q->body, fields, ""))
		return;
	if (get_str(q, q->body, "address", &a) < 0 ||
	    get_uint(q, q->body, "port", 65535, &port) < 0 ||
	    get_uint(q, q->body, "weight", UINT32_MAX, &weight) < 0 ||
	    (has_ttl = get_uint(q, q->body, "ttl_ms", UINT32_MAX, &ttl)) < 0 ||
	    (has_lease = get_uint(q, q->body, "lease", UINT64_MAX >> 1, &lease)) < 0)
		return;
	if (!a || addr_parse(a, &addr)) {
		reply_err(q, 400, "bad_request", "\"address\" must be an IPv4 or IPv6 address");
		return;
	}
	if (has_ttl && has_lease) {
		reply_err(q, 400, "bad_request", "give \"ttl_ms\" or \"lease\", not both");
		return;
	}
	if (!has_ttl && !has_lease && !q->admin) {
		reply_err(q, 403, "forbidden", "a registration token must register with a lease");
		return;
	}
	if (has_lease) {
		const struct sm_lease *l = sm_lease_get(st(q->api), lease);

		if (l && !in_scope(q, l->service)) {
			reply_err(q, 403, "forbidden", "lease %llu is out of this token's scope",
				  (unsigned long long)lease);
			return;
		}
	}
	if (copy_name(q, q->svc, q->seg[2], "service"))
		return;
	svc = sm_service_get(st(q->api), q->svc);
	if (has_ttl) {
		c = add_cmd(q, SM_CMD_LEASE_GRANT);
		c->u.lease.ttl_ms = (uint32_t)ttl;
		snprintf(c->u.lease.service, sizeof(c->u.lease.service), "%s", q->svc);
		q->implicit_lease = 1;
	}
	c = add_cmd(q, SM_CMD_BACKEND_REGISTER);
	snprintf(c->u.reg.service, sizeof(c->u.reg.service), "%s", q->svc);
	c->u.reg.addr = addr;
	c->u.reg.port = (uint16_t)port;
	c->u.reg.weight = (uint32_t)weight;
	c->u.reg.lease = lease;
	q->uid = config_backend_uid(&addr, port ? (uint16_t)port : svc ? svc->def.port : 0);
	q->status_ok = svc && sm_backend_get(svc, q->uid) ? 200 : 201;
	q->finish = finish_backend;
	/* The register step of an implicit lease is validated once the lease exists. */
	start_steps(q, 0);
}

static void prep_backend_patch(struct areq *q)
{
	static const char *const fields[] = {"weight", "drain", "state", NULL};
	const struct sm_service *svc;
	uint64_t w = 0;
	int drain = 0, hw, hd, hs;
	const char *state = NULL;
	struct sm_cmd *c;

	if (load_body(q, 0) || check_fields(q, q->body, fields, "") ||
	    path_uid(q, q->seg[4], &q->uid) || copy_name(q, q->svc, q->seg[2], "service"))
		return;
	if ((hw = get_uint(q, q->body, "weight", UINT32_MAX, &w)) < 0 ||
	    (hd = get_bool(q, q->body, "drain", &drain)) < 0 ||
	    (hs = get_str(q, q->body, "state", &state)) < 0)
		return;
	if (hs && strcmp(state, "down") && strcmp(state, "active")) {
		reply_err(q, 400, "bad_request", "\"state\" must be down or active");
		return;
	}
	if (!hw && !hd && !hs) {
		reply_err(q, 400, "bad_request", "nothing to change: give weight, drain or state");
		return;
	}
	svc = sm_service_get(st(q->api), q->svc);
	if (!svc || !sm_backend_get(svc, q->uid)) {
		reply_err(q, 404, "not_found", "backend %s of service \"%s\": not found", q->seg[4],
			  q->svc);
		return;
	}
	if (hw) {
		c = add_cmd(q, SM_CMD_BACKEND_WEIGHT);
		c->u.be.value = (uint32_t)w;
	}
	if (hd) {
		c = add_cmd(q, SM_CMD_BACKEND_DRAIN);
		c->u.be.value = (uint32_t)drain;
	}
	if (hs) {
		c = add_cmd(q, SM_CMD_BACKEND_HEALTH);
		c->u.be.value = strcmp(state, "down") ? SM_BACKEND_ACTIVE : SM_BACKEND_DOWN;
	}
	for (int i = 0; i < q->n_steps; i++) {
		snprintf(q->steps[i].cmd.u.be.service, SM_NAME_MAX, "%s", q->svc);
		q->steps[i].cmd.u.be.uid = q->uid;
	}
	q->status_ok = 200;
	q->finish = finish_backend;
	start_steps(q, 0);
}

static void finish_deleted_id(struct areq *q)
{
	reply_json_idx(q, 200, json_pack("{s:I,s:b}", "id", (json_int_t)q->uid, "deleted", 1),
		       q->last_index);
}

static void prep_backend_delete(struct areq *q)
{
	const struct sm_service *svc;
	const struct sm_backend *b;
	struct sm_cmd *c;

	if (path_uid(q, q->seg[4], &q->uid) || copy_name(q, q->svc, q->seg[2], "service"))
		return;
	svc = sm_service_get(st(q->api), q->svc);
	b = svc ? sm_backend_get(svc, q->uid) : NULL;
	if (b && !q->admin && b->lease == 0) {
		reply_err(q, 403, "forbidden",
			  "a registration token may only deregister backends "
			  "registered with a lease");
		return;
	}
	c = add_cmd(q, SM_CMD_BACKEND_DEREGISTER);
	snprintf(c->u.be.service, sizeof(c->u.be.service), "%s", q->svc);
	c->u.be.uid = q->uid;
	q->finish = finish_deleted_id;
	start_steps(q, 0);
}

/* ---- handlers: leases -------------------------------------------------- */

static void finish_lease(struct areq *q)
{
	const struct sm_lease *l = sm_lease_get(st(q->api), q->first_index);

	if (!l) {
		reply_err(q, 409, "conflict", "the lease is gone already");
		return;
	}
	reply_json_idx(q, 201, lease_json(l), q->last_index);
}

static void prep_lease_grant(struct areq *q)
{
	static const char *const fields[] = {"service", "ttl_ms", NULL};
	const char *svc = NULL;
	uint64_t ttl = 0;
	struct sm_cmd *c;
	int r;

	if (load_body(q, 0) || check_fields(q, q->body, fields, ""))
		return;
	if (get_str(q, q->body, "service", &svc) < 0 ||
	    (r = get_uint(q, q->body, "ttl_ms", UINT32_MAX, &ttl)) < 0)
		return;
	if (!svc || !r) {
		reply_err(q, 400, "bad_request", "\"service\" and \"ttl_ms\" are required");
		return;
	}
	if (need_scope(q, svc))
		return;
	c = add_cmd(q, SM_CMD_LEASE_GRANT);
	if (copy_name(q, c->u.lease.service, svc, "service"))
		return;
	c->u.lease.ttl_ms = (uint32_t)ttl;
	q->finish = finish_lease;
	start_steps(q, 0);
}

/* The lease named in the path, after the scope check; NULL when replied. */
static const struct sm_lease *path_lease(struct areq *q)
{
	const struct sm_lease *l;

	if (path_id(q, q->seg[2], &q->num_id))
		return NULL;
	l = sm_lease_get(st(q->api), q->num_id);
	if (!l) {
		reply_err(q, 404, "not_found", "lease %llu: not found",
			  (unsigned long long)q->num_id);
		return NULL;
	}
	if (need_scope(q, l->service))
		return NULL;
	return l;
}

static void exec_lease(struct areq *q)
{
	const struct sm_lease *l = path_lease(q);

	if (l)
		reply_json(q, 200, lease_json(l));
}

static void finish_revoke(struct areq *q)
{
	reply_json_idx(q, 200,
		       json_pack("{s:I,s:b,s:I}", "id", (json_int_t)q->num_id, "revoked", 1,
				 "backends_removed", (json_int_t)q->removed),
		       q->last_index);
}

static uint32_t lease_backends(const struct sm_state *s, uint64_t lease)
{
	uint32_t i, j, n = 0;

	for (i = 0; i < sm_service_count(s); i++) {
		const struct sm_service *svc = sm_service_at(s, i);

		for (j = 0; j < svc->n_backends; j++)
			n += svc->backends[j].lease == lease;
	}
	return n;
}

static void prep_lease_revoke(struct areq *q)
{
	struct sm_cmd *c;

	if (!path_lease(q))
		return;
	q->removed = lease_backends(st(q->api), q->num_id);
	lease_forget(q->api->leases, q->num_id);
	c = add_cmd(q, SM_CMD_LEASE_REVOKE);
	c->u.lease.id = q->num_id;
	q->finish = finish_revoke;
	start_steps(q, 0);
}

static void sync_leases(struct api *api);

static void finish_keepalive(struct areq *q)
{
	const struct sm_lease *l = sm_lease_get(st(q->api), q->num_id);

	if (!l) {
		reply_err(q, 404, "not_found", "lease %llu expired", (unsigned long long)q->num_id);
		return;
	}
	sync_leases(q->api);
	reply_json_idx(
	    q, 200,
	    json_pack("{s:I,s:I}", "id", (json_int_t)q->num_id, "ttl_ms", (json_int_t)l->ttl_ms),
	    q->last_index ? q->last_index : cur_rev(q));
}

static void prep_keepalive(struct areq *q)
{
	const struct sm_lease *l = path_lease(q);
	struct sm_cmd *c;
	uint32_t ttl = 0;

	if (!l)
		return;
	sync_leases(q->api);
	switch (lease_keepalive(q->api->leases, q->num_id, now_ms(q->api), &ttl)) {
	case LEASE_KA_OK:
		finish_keepalive(q);
		return;
	case LEASE_KA_NOT_FOUND:
		reply_err(q, 404, "not_found", "lease %llu: not found",
			  (unsigned long long)q->num_id);
		return;
	case LEASE_KA_RENEW:
		/* An expiry naming the current renewed revision is in flight: only a logged
		 * renewal ordered before it keeps the lease (docs/state-machine.md). */
		c = add_cmd(q, SM_CMD_LEASE_GRANT);
		c->u.lease.id = q->num_id;
		c->u.lease.ttl_ms = l->ttl_ms;
		q->finish = finish_keepalive;
		start_steps(q, 0);
		return;
	}
}

/* ---- handlers: endpoints and long-poll -------------------------------- */

static void reply_endpoints(struct areq *q)
{
	const struct sm_state *s = st(q->api);
	const struct sm_service *svc = sm_service_get(s, q->svc);
	struct sm_endpoint *ep;
	char a[ADDR_STRLEN];
	json_t *arr;
	int n, i;

	if (!svc) {
		reply_err(q, 404, "not_found", "service \"%s\": not found", q->svc);
		return;
	}
	n = sm_endpoints(s, q->svc, q->filter, NULL, 0);
	ep = calloc((size_t)(n > 0 ? n : 1), sizeof(*ep));
	arr = json_array();
	if (!ep || !arr || n < 0) {
		free(ep);
		json_decref(arr);
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	n = sm_endpoints(s, q->svc, q->filter, ep, (uint32_t)n);
	for (i = 0; i < n; i++)
		json_array_append_new(
		    arr, json_pack("{s:I,s:s,s:i,s:I,s:s}", "id", (json_int_t)ep[i].uid, "address",
				   addr_format(&ep[i].addr, a, sizeof(a)), "port", (int)ep[i].port,
				   "weight", (json_int_t)ep[i].weight, "state",
				   bstate_str((enum sm_backend_state)ep[i].state)));
	free(ep);
	reply_json_idx(q, 200,
		       json_pack("{s:s,s:I,s:o}", "service", q->svc, "index",
				 (json_int_t)svc->modified, "endpoints", arr),
		       svc->modified);
}

static void exec_endpoints(struct areq *q)
{
	reply_endpoints(q);
}

static void wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct areq *q = arg;

	(void)fd;
	(void)what;
	q->waiting = 0;
	reply_endpoints(q);
}

/* Long-poll (Consul blocking query): answered from local state, never forwarded. */
static void start_watch(struct areq *q)
{
	const struct sm_service *svc;
	uint64_t wait = DEFAULT_WAIT_MS;
	struct timeval tv;

	if (parse_u64(qparam(q, "index"), &q->wait_index) ||
	    (qparam(q, "wait") && parse_duration_ms(qparam(q, "wait"), &wait))) {
		reply_err(q, 400, "bad_request", "bad \"index\" or \"wait\" parameter");
		return;
	}
	if (wait > q->api->max_wait_ms)
		wait = q->api->max_wait_ms;
	svc = sm_service_get(st(q->api), q->svc);
	if (!svc || svc->modified > q->wait_index) {
		reply_endpoints(q);
		return;
	}
	q->timer = evtimer_new(q->api->base, wait_timeout, q);
	if (!q->timer) {
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)((wait % 1000) * 1000);
	evtimer_add(q->timer, &tv);
	q->waiting = 1;
}

static void wake_watchers(struct api *api)
{
	struct areq *q = api->live, *next;

	for (; q; q = next) {
		const struct sm_service *svc;

		next = q->next;
		if (!q->waiting)
			continue;
		svc = sm_service_get(st(api), q->svc);
		if (!svc || svc->modified > q->wait_index) {
			q->waiting = 0;
			reply_endpoints(q);
		}
	}
}

/* ---- lease expiry (leader only) --------------------------------------- */

static void sync_leases(struct api *api)
{
	struct node_info *info = malloc(sizeof(*info));
	uint64_t now = now_ms(api), rev = sm_revision(st(api));

	if (!info)
		return;
	api->be.info(api->be.ctx, info);
	if (info->role != RAFT_LEADER) {
		api->leader = 0;
	} else if (!api->leader || info->term != api->lead_term) {
		/* A new term: every lease gets a full TTL from now before anything may expire
		 * (issue 5 §4), because keepalives went to the old leader. */
		if (lease_reset(api->leases, st(api), now) == 0) {
			api->leader = 1;
			api->lead_term = info->term;
			api->seen_rev = rev;
		}
	} else if (rev != api->seen_rev) {
		if (lease_sync(api->leases, st(api), now) == 0)
			api->seen_rev = rev;
	}
	free(info);
}

static void expire_done(void *dctx, const struct api_commit *c)
{
	struct areq *q = dctx;

	if (q->api && c->rc != NODE_OK)
		lease_expire_failed(q->api->leases, q->steps[0].cmd.u.expire.refs,
				    q->steps[0].cmd.u.expire.n);
	areq_free(q);
}

static void propose_expiries(struct api *api)
{
	uint8_t buf[SM_CMD_MAX_LEN];
	struct areq *q;
	struct sm_cmd *c;
	uint32_t n;
	int len;

	if (!api->leader || lease_next_deadline(api->leases) > now_ms(api))
		return;
	q = calloc(1, sizeof(*q));
	if (!q)
		return;
	q->internal = 1;
	c = add_cmd(q, SM_CMD_LEASE_EXPIRE);
	n = lease_collect_expired(api->leases, now_ms(api), c->u.expire.refs, SM_EXPIRE_MAX);
	c->u.expire.n = n;
	len = n ? sm_cmd_encode(c, buf, sizeof(buf)) : -EINVAL;
	if (len < 0 || api->be.propose(api->be.ctx, buf, (uint32_t)len, expire_done, q)) {
		lease_expire_failed(api->leases, c->u.expire.refs, n);
		free(q);
		return;
	}
	q->api = api;
	q->pending = 1;
	live_add(api, q);
	api->n_expired_proposed += n;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	api_notify(arg);
}

void api_notify(struct api *api)
{
	sync_leases(api);
	wake_watchers(api);
	propose_expiries(api);
}

/* ---- health, readiness, metrics --------------------------------------- */

static void exec_readyz(struct areq *q)
{
	struct node_info *info = malloc(sizeof(*info));
	json_t *o;

	if (!info) {
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	q->api->be.info(q->api->be.ctx, info);
	if (!info->leader || info->stopped)
		o = json_pack("{s:s,s:s}", "status", "not_ready", "reason",
			      info->stopped ? "stopped" : "no leader");
	else if (info->applied < info->commit)
		o = json_pack("{s:s,s:s}", "status", "not_ready", "reason", "applying");
	else
		o = NULL;
	if (o) {
		free(info);
		reply_json(q, 503, o);
		return;
	}
	o = json_pack("{s:s,s:I,s:I,s:I}", "status", "ready", "leader", (json_int_t)info->leader,
		      "commit", (json_int_t)info->commit, "applied", (json_int_t)info->applied);
	free(info);
	reply_json(q, 200, o);
}

static void exec_metrics(struct areq *q)
{
	struct api *api = q->api;
	struct node_info *info = malloc(sizeof(*info));
	struct evbuffer *buf = evbuffer_new();
	int c;

	if (!info || !buf) {
		free(info);
		if (buf)
			evbuffer_free(buf);
		reply_err(q, 500, "internal", "out of memory");
		return;
	}
	api->be.info(api->be.ctx, info);
	for (c = 1; c <= 5; c++)
		evbuffer_add_printf(buf, "fulcrum_api_responses_total{code=\"%dxx\"} %llu\n", c,
				    (unsigned long long)api->n_resp[c]);
	evbuffer_add_printf(
	    buf,
	    "fulcrum_api_forwarded_total %llu\n"
	    "fulcrum_api_forward_connections_total %llu\n"
	    "fulcrum_lease_expiries_proposed_total %llu\n"
	    "fulcrum_raft_term %llu\nfulcrum_raft_commit_index %llu\n"
	    "fulcrum_raft_applied_index %llu\nfulcrum_raft_is_leader %d\n"
	    "fulcrum_state_revision %llu\nfulcrum_services %u\nfulcrum_leases %u\n",
	    (unsigned long long)api->n_forwarded, (unsigned long long)api->n_fwd_conns,
	    (unsigned long long)api->n_expired_proposed, (unsigned long long)info->term,
	    (unsigned long long)info->commit, (unsigned long long)info->applied,
	    info->role == RAFT_LEADER, (unsigned long long)sm_revision(st(api)),
	    sm_service_count(st(api)), sm_lease_count(st(api)));
	free(info);
	api->n_resp[2]++;
	evhttp_add_header(evhttp_request_get_output_headers(q->req), "Content-Type",
			  "text/plain; version=0.0.4");
	evhttp_send_reply(q->req, 200, NULL, buf);
	evbuffer_free(buf);
	q->req = NULL;
	areq_free(q);
}

/* ---- routing ----------------------------------------------------------- */

static int split_path(struct areq *q, const char *path)
{
	char *p, *save = NULL, *tok;

	if (strlen(path) >= sizeof(q->pathbuf))
		return -1;
	snprintf(q->pathbuf, sizeof(q->pathbuf), "%s", path);
	for (p = q->pathbuf; (tok = strtok_r(p, "/", &save)); p = NULL) {
		if (q->nseg == SEG_MAX)
			return -1;
		q->seg[q->nseg++] = tok;
	}
	return 0;
}

static int is(const struct areq *q, int i, const char *s)
{
	return i < q->nseg && !strcmp(q->seg[i], s);
}

static void method_not_allowed(struct areq *q)
{
	reply_err(q, 405, "method_not_allowed", "method not allowed on this path");
}

static void route_v1(struct areq *q)
{
	enum evhttp_cmd_type m = q->method;
	int n = q->nseg;

	if (n == 2 && is(q, 1, "status")) {
		if (m == EVHTTP_REQ_GET)
			exec_status(q);
		else
			method_not_allowed(q);
	} else if (n == 2 && is(q, 1, "members")) {
		/*
		 * A read like the others (the leader's view, after a ReadIndex):
		 * a membership change acknowledged through any node shows at once
		 * in a listing through any node. ?stale=1: this node's own view.
		 */
		if (m == EVHTTP_REQ_GET)
			do_read(q, exec_members);
		else if (m == EVHTTP_REQ_POST && !need_admin(q))
			do_write(q, prep_member_add);
		else if (m != EVHTTP_REQ_POST)
			method_not_allowed(q);
	} else if (n == 4 && is(q, 1, "members") && is(q, 3, "promote")) {
		if (m != EVHTTP_REQ_POST)
			method_not_allowed(q);
		else if (!need_admin(q))
			do_write(q, prep_member_promote);
	} else if (n == 3 && is(q, 1, "members")) {
		if (m != EVHTTP_REQ_DELETE)
			method_not_allowed(q);
		else if (!need_admin(q))
			do_write(q, prep_member_remove);
	} else if (n == 2 && is(q, 1, "services")) {
		if (m == EVHTTP_REQ_GET)
			do_read(q, exec_services);
		else if (m == EVHTTP_REQ_POST && !need_admin(q))
			do_write(q, prep_service_create);
		else if (m != EVHTTP_REQ_POST)
			method_not_allowed(q);
	} else if (n >= 3 && is(q, 1, "services")) {
		const char *svc = q->seg[2];

		snprintf(q->svc, sizeof(q->svc), "%s", svc);
		if (need_scope(q, svc))
			return;
		if (n == 3) {
			if (m == EVHTTP_REQ_GET)
				do_read(q, exec_service);
			else if (m == EVHTTP_REQ_PUT && !need_admin(q))
				do_write(q, prep_service_update);
			else if (m == EVHTTP_REQ_DELETE && !need_admin(q))
				do_write(q, prep_service_delete);
			else if (m != EVHTTP_REQ_PUT && m != EVHTTP_REQ_DELETE)
				method_not_allowed(q);
		} else if (n == 4 && is(q, 3, "backends")) {
			if (m == EVHTTP_REQ_GET)
				do_read(q, exec_backends);
			else if (m == EVHTTP_REQ_POST)
				do_write(q, prep_backend_register);
			else
				method_not_allowed(q);
		} else if (n == 5 && is(q, 3, "backends")) {
			if (m == EVHTTP_REQ_GET)
				do_read(q, exec_backend);
			else if ((m == EVHTTP_REQ_PATCH || m == EVHTTP_REQ_PUT) && !need_admin(q))
				do_write(q, prep_backend_patch);
			else if (m == EVHTTP_REQ_DELETE)
				do_write(q, prep_backend_delete);
			else if (m != EVHTTP_REQ_PATCH && m != EVHTTP_REQ_PUT)
				method_not_allowed(q);
		} else if (n == 4 && is(q, 3, "endpoints")) {
			if (m != EVHTTP_REQ_GET) {
				method_not_allowed(q);
				return;
			}
			q->filter = qflag(q, "healthy") ? SM_FILTER_HEALTHY : 0;
			if (qparam(q, "index"))
				start_watch(q);
			else
				do_read(q, exec_endpoints);
		} else {
			reply_err(q, 404, "not_found", "no such path");
		}
	} else if (n == 2 && is(q, 1, "leases")) {
		if (m == EVHTTP_REQ_POST)
			do_write(q, prep_lease_grant);
		else
			method_not_allowed(q);
	} else if (n == 3 && is(q, 1, "leases")) {
		if (m == EVHTTP_REQ_GET)
			do_read(q, exec_lease);
		else if (m == EVHTTP_REQ_DELETE)
			do_write(q, prep_lease_revoke);
		else
			method_not_allowed(q);
	} else if (n == 4 && is(q, 1, "leases") && is(q, 3, "keepalive")) {
		if (m == EVHTTP_REQ_PUT || m == EVHTTP_REQ_POST)
			do_write(q, prep_keepalive);
		else
			method_not_allowed(q);
	} else {
		reply_err(q, 404, "not_found", "no such path");
	}
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct api *api = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct areq *q = calloc(1, sizeof(*q));

	if (!q) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	q->api = api;
	q->req = req;
	q->method = evhttp_request_get_command(req);
	live_add(api, q);
	TAILQ_INIT(&q->query);
	q->have_query = 1;
	if (!path || split_path(q, path)) {
		reply_err(q, 404, "not_found", "no such path");
		return;
	}
	if (query && evhttp_parse_query_str(query, &q->query)) {
		reply_err(q, 400, "bad_request", "malformed query string");
		return;
	}
	if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > api->max_body) {
		reply_err(q, 413, "too_large", "the request body exceeds %zu bytes", api->max_body);
		return;
	}
	if (q->nseg == 1 && is(q, 0, "healthz")) {
		reply_json(q, 200, json_pack("{s:s}", "status", "ok"));
		return;
	}
	if (q->nseg == 1 && is(q, 0, "readyz")) {
		exec_readyz(q);
		return;
	}
	if (q->nseg == 1 && is(q, 0, "metrics")) {
		exec_metrics(q);
		return;
	}
	if (q->nseg < 2 || !is(q, 0, "v1")) {
		reply_err(q, 404, "not_found", "no such path");
		return;
	}
	if (authenticate(q))
		return;
	route_v1(q);
}

/* ---- lifecycle --------------------------------------------------------- */

int api_start(struct event_base *base, const struct api_config *cfg,
	      const struct api_backend *backend, struct api **out)
{
	const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:8080";
	struct evhttp_bound_socket *sock;
	char host[SM_HOSTPORT_MAX];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct timeval tv;
	struct api *api;
	uint16_t port;
	size_t i, j;
	int rc = -ENOMEM;

	*out = NULL;
	if (!backend || !backend->state || !backend->info || !backend->propose ||
	    !backend->read_index || !backend->member)
		return -EINVAL;
	if (split_hostport(listen, host, sizeof(host), &port))
		return -EINVAL;
	for (i = 0; i < cfg->n_tokens; i++)
		if (!cfg->tokens[i].token || !cfg->tokens[i].token[0])
			return -EINVAL;
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->base = base;
	api->be = *backend;
	api->max_body = cfg->max_body ? cfg->max_body : 65536;
	api->fwd_timeout_ms = cfg->forward_timeout_ms ? cfg->forward_timeout_ms : 5000;
	api->max_wait_ms = cfg->max_wait_ms ? cfg->max_wait_ms : 300000;
	api->tick_ms = cfg->tick_ms ? cfg->tick_ms : 50;
	api->tokens = calloc(cfg->n_tokens + 1, sizeof(*api->tokens));
	api->peers = calloc(cfg->n_peers + 1, sizeof(*api->peers));
	api->leases = lease_tracker_new();
	if (!api->tokens || !api->peers || !api->leases)
		goto fail;
	for (i = 0; i < cfg->n_tokens; i++) {
		struct api_token *t = &api->tokens[i];
		char **sv;

		t->admin = cfg->tokens[i].admin;
		t->token = strdup(cfg->tokens[i].token);
		sv = calloc(cfg->tokens[i].n_services + 1, sizeof(*sv));
		t->services = (const char *const *)sv;
		api->n_tokens = i + 1;
		if (!t->token || !sv)
			goto fail;
		for (j = 0; j < cfg->tokens[i].n_services; j++) {
			sv[j] = strdup(cfg->tokens[i].services[j]);
			if (!sv[j])
				goto fail;
			t->n_services = j + 1;
		}
	}
	for (i = 0; i < cfg->n_peers; i++) {
		api->peers[i].id = cfg->peers[i].id;
		api->peers[i].api_addr =
		    cfg->peers[i].api_addr ? strdup(cfg->peers[i].api_addr) : NULL;
		api->n_peers = i + 1;
		if (cfg->peers[i].api_addr && !api->peers[i].api_addr)
			goto fail;
	}
	api->http = evhttp_new(base);
	api->tick = event_new(base, -1, EV_PERSIST, on_tick, api);
	api->fwd_reaper = event_new(base, -1, 0, fwd_reap, api);
	if (!api->http || !api->tick || !api->fwd_reaper)
		goto fail;
	/* evhttp refuses bodies over twice our limit itself (memory bound); between the two we
	 * answer a JSON 413. */
	evhttp_set_max_body_size(api->http, (ev_ssize_t)(2 * api->max_body));
	evhttp_set_max_headers_size(api->http,
				    (ev_ssize_t)(cfg->max_headers ? cfg->max_headers : 8192));
	evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						  EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
						  EVHTTP_REQ_HEAD);
	evhttp_set_timeout(api->http, 60);
	evhttp_set_gencb(api->http, dispatch, api);
	sock = evhttp_bind_socket_with_handle(api->http, host, port);
	if (!sock) {
		rc = errno ? -errno : -EADDRINUSE;
		goto fail;
	}
	if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) == 0)
		api->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	tv.tv_sec = (time_t)(api->tick_ms / 1000);
	tv.tv_usec = (suseconds_t)((api->tick_ms % 1000) * 1000);
	event_add(api->tick, &tv);
	*out = api;
	return 0;
fail:
	api_free(api);
	return rc;
}

uint16_t api_port(const struct api *api)
{
	return api->port;
}

void api_free(struct api *api)
{
	size_t i, j;

	if (!api)
		return;
	if (api->tick)
		event_free(api->tick);
	while (api->live) {
		struct areq *q = api->live;

		if (q->pending && q->fwd) {
			/*
			 * A forwarded request still waiting for the leader: freeing its
			 * connection drops the request without calling fwd_done, so q
			 * is answered and freed here.
			 */
			q->fwd->done = 1; /* freed below with the others, without a callback */
			q->fwd = NULL;
			q->pending = 0;
			reply_err(q, 503, "unavailable", "the API is shutting down");
			continue;
		}
		if (q->pending) {
			/* The backend still owes a callback: detach, it frees q. */
			live_del(api, q);
			q->api = NULL;
			if (q->req) {
				evhttp_send_error(q->req, 503, "shutting down");
				q->req = NULL;
			}
			continue;
		}
		q->waiting = 0;
		reply_err(q, 503, "unavailable", "the API is shutting down");
	}
	for (struct fwd_conn *fc = api->fwd_conns; fc; fc = fc->next)
		fc->done = 1;
	fwd_reap(-1, 0, api);
	if (api->fwd_reaper)
		event_free(api->fwd_reaper);
	if (api->http)
		evhttp_free(api->http);
	for (i = 0; i < api->n_tokens; i++) {
		for (j = 0; j < api->tokens[i].n_services; j++)
			free((char *)api->tokens[i].services[j]);
		free((void *)api->tokens[i].services);
		free((char *)api->tokens[i].token);
	}
	free(api->tokens);
	for (i = 0; i < api->n_peers; i++)
		free((char *)api->peers[i].api_addr);
	free(api->peers);
	lease_tracker_free(api->leases);
	free(api);
}
