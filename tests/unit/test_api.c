/* test_api: the control API over real HTTP (evhttp server on 127.0.0.1:0) against a fake node. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "controlplane/api.h"
#include "controlplane/sm.h"

/* ---- a fake single node: applies every proposal to a real sm_state at once ---- */

struct fake {
	struct event_base *base;
	struct sm_state *own;
	struct fake *leader_of; /* follower: shares the leader's state (instant replication) */
	struct api *api;
	uint64_t id, leader, term;
	enum raft_role role;
	uint64_t index;
	uint64_t now;
	unsigned proposals, reads;
	int member_ops[4];
	uint64_t members[8];
	int voter[8];
	unsigned n_members;
};

struct pending {
	struct fake *f;
	api_done_fn done;
	void *dctx;
	uint8_t data[SM_CMD_MAX_LEN];
	uint32_t len;
	int kind; /* 0 propose, 1 read, 2 member */
	enum api_member_op op;
	uint64_t id;
};

static struct sm_state *fstate(struct fake *f)
{
	return f->leader_of ? f->leader_of->own : f->own;
}

static const struct sm_state *f_state(void *ctx)
{
	return fstate(ctx);
}

static void f_info(void *ctx, struct node_info *out)
{
	struct fake *f = ctx;
	unsigned i;

	memset(out, 0, sizeof(*out));
	out->id = f->id;
	out->role = f->role;
	out->term = f->term;
	out->leader = f->leader;
	out->commit = out->applied = sm_revision(fstate(f));
	out->n_members = f->n_members;
	for (i = 0; i < f->n_members; i++) {
		out->members[i].id = f->members[i];
		out->members[i].voter = f->voter[i];
		out->members[i].connected = 1;
	}
}

static void run_pending(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct fake *f = p->f;
	struct api_commit c;
	struct sm_result res;
	unsigned i;

	(void)fd;
	(void)what;
	memset(&c, 0, sizeof(c));
	c.rc = NODE_OK;
	if (p->kind == 0) {
		c.index = ++f->index;
		assert_int_equal(sm_apply(f->own, c.index, p->data, p->len, &res), 0);
		c.code = res.code;
	} else if (p->kind == 2) {
		c.index = ++f->index;
		assert_int_equal(sm_advance(f->own, c.index), 0);
		if (p->op == API_MEMBER_ADD_LEARNER && f->n_members < 8) {
			f->voter[f->n_members] = 0;
			f->members[f->n_members++] = p->id;
		}
		for (i = 0; i < f->n_members; i++) {
			if (f->members[i] != p->id)
				continue;
			if (p->op == API_MEMBER_PROMOTE)
				f->voter[i] = 1;
			if (p->op == API_MEMBER_REMOVE) {
				f->members[i] = f->members[f->n_members - 1];
				f->voter[i] = f->voter[f->n_members - 1];
				f->n_members--;
				break;
			}
		}
	}
	p->done(p->dctx, &c);
	free(p);
	if (f->api)
		api_notify(f->api);
}

static int later(struct fake *f, struct pending *p)
{
	struct timeval zero = {0, 0};

	p->f = f;
	return event_base_once(f->base, -1, EV_TIMEOUT, run_pending, p, &zero) ? -ENOMEM : 0;
}

static int f_propose(void *ctx, const uint8_t *data, uint32_t len, api_done_fn done, void *dctx)
{
	struct fake *f = ctx;
	struct pending *p;

	if (f->role != RAFT_LEADER)
		return -EPERM;
	p = calloc(1, sizeof(*p));
	assert_non_null(p);
	assert_true(len <= sizeof(p->data));
	memcpy(p->data, data, len);
	p->len = len;
	p->done = done;
	p->dctx = dctx;
	f->proposals++;
	return later(f, p);
}

static int f_read_index(void *ctx, api_done_fn done, void *dctx)
{
	struct fake *f = ctx;
	struct pending *p;

	if (f->role != RAFT_LEADER)
		return -EPERM;
	p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->kind = 1;
	p->done = done;
	p->dctx = dctx;
	f->reads++;
	return later(f, p);
}

static int f_member(void *ctx, enum api_member_op op, uint64_t id, const char *raft_addr,
		    api_done_fn done, void *dctx)
{
	struct fake *f = ctx;
	struct pending *p;
	unsigned i;
	int found = 0;

	(void)raft_addr;
	if (f->role != RAFT_LEADER)
		return -EPERM;
	for (i = 0; i < f->n_members; i++)
		found |= f->members[i] == id;
	if (op == API_MEMBER_ADD_LEARNER && found)
		return -EEXIST;
	if (op != API_MEMBER_ADD_LEARNER && !found)
		return -ENOENT;
	p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->kind = 2;
	p->op = op;
	p->id = id;
	p->done = done;
	p->dctx = dctx;
	f->member_ops[op]++;
	return later(f, p);
}

static int f_digest(void *ctx, uint64_t *out)
{
	(void)ctx;
	*out = 0x1234abcdULL;
	return 0;
}

static uint64_t f_now(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static const struct api_backend fake_ops = {
    .state = f_state,
    .info = f_info,
    .propose = f_propose,
    .read_index = f_read_index,
    .member = f_member,
    .forwarding_digest = f_digest,
    .now_ms = f_now,
};

/* ---- fixture: a leader (and optionally a follower) API ---- */

static const char *const web_only[] = {"web"};
static const struct api_token tokens[] = {
    {.token = "admin-secret", .admin = 1},
    {.token = "reg-web", .admin = 0, .services = web_only, .n_services = 1},
};

struct tc {
	struct event_base *base;
	struct fake lf, ff;
	struct api *leader, *follower;
	uint16_t lport, fport;
	char lpeer[32];
	struct api_peer peer;
};

static int setup(void **state)
{
	struct tc *t = calloc(1, sizeof(*t));
	struct api_config cfg;
	struct api_backend be = fake_ops;

	assert_non_null(t);
	t->base = event_base_new();
	assert_non_null(t->base);
	t->lf.base = t->ff.base = t->base;
	t->lf.own = sm_new();
	assert_non_null(t->lf.own);
	t->lf.id = t->lf.leader = 1;
	t->lf.term = 2;
	t->lf.role = RAFT_LEADER;
	t->lf.now = 1000;
	t->lf.members[0] = 1;
	t->lf.members[1] = 2;
	t->lf.voter[0] = t->lf.voter[1] = 1;
	t->lf.n_members = 2;
	memset(&cfg, 0, sizeof(cfg));
	cfg.listen = "127.0.0.1:0";
	cfg.tokens = tokens;
	cfg.n_tokens = 2;
	cfg.tick_ms = 10;
	be.ctx = &t->lf;
	assert_int_equal(api_start(t->base, &cfg, &be, &t->leader), 0);
	t->lf.api = t->leader;
	t->lport = api_port(t->leader);
	assert_true(t->lport != 0);

	/* The follower shares the leader's state and knows its API address from config. */
	t->ff.leader_of = &t->lf;
	t->ff.id = 2;
	t->ff.leader = 1;
	t->ff.term = 2;
	t->ff.role = RAFT_FOLLOWER;
	t->ff.n_members = 2;
	t->ff.members[0] = 1;
	t->ff.members[1] = 2;
	snprintf(t->lpeer, sizeof(t->lpeer), "127.0.0.1:%u", t->lport);
	t->peer.id = 1;
	t->peer.api_addr = t->lpeer;
	cfg.peers = &t->peer;
	cfg.n_peers = 1;
	be.ctx = &t->ff;
	assert_int_equal(api_start(t->base, &cfg, &be, &t->follower), 0);
	t->ff.api = t->follower;
	t->fport = api_port(t->follower);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tc *t = *state;

	/* Drain what the fake still owes (zero-timeout events). */
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	api_free(t->follower);
	api_free(t->leader);
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	sm_free(t->lf.own);
	event_base_free(t->base);
	free(t);
	return 0;
}

/* ---- a small HTTP client on the same loop ---- */

struct resp {
	int done;
	int code;
	char *body;
	json_t *json;
	uint64_t index;
};

static void resp_cb(struct evhttp_request *req, void *arg)
{
	struct resp *r = arg;
	struct evbuffer *in;
	const char *idx;
	size_t len;

	r->done = 1;
	if (!req)
		return;
	r->code = evhttp_request_get_response_code(req);
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	r->body = calloc(1, len + 1);
	assert_non_null(r->body);
	evbuffer_remove(in, r->body, len);
	r->json = json_loads(r->body, 0, NULL);
	idx = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Fulcrum-Index");
	if (idx)
		r->index = strtoull(idx, NULL, 10);
}

static void resp_free(struct resp *r)
{
	json_decref(r->json);
	free(r->body);
	free(r);
}

static struct resp *start_req(struct tc *t, uint16_t port, enum evhttp_cmd_type m, const char *uri,
			      const char *token, const char *body, const char *extra_header)
{
	struct evhttp_connection *c = evhttp_connection_base_new(t->base, NULL, "127.0.0.1", port);
	struct resp *r = calloc(1, sizeof(*r));
	struct evhttp_request *req;
	char auth[128];

	assert_non_null(c);
	assert_non_null(r);
	req = evhttp_request_new(resp_cb, r);
	evhttp_connection_set_timeout(c, 10);
	evhttp_connection_free_on_completion(c);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
	if (token) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Authorization", auth);
	}
	if (extra_header)
		evhttp_add_header(evhttp_request_get_output_headers(req), extra_header, "9");
	if (body) {
		/* libevent 2.1's client adds Content-Length only for POST and PUT. */
		snprintf(auth, sizeof(auth), "%zu", strlen(body));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", auth);
		evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	}
	assert_int_equal(evhttp_make_request(c, req, m, uri), 0);
	return r;
}

/* Runs the loop until r completes (bounded: the client times out after 10 s). */
static void wait_resp(struct tc *t, struct resp *r)
{
	int spins = 0;

	while (!r->done) {
		event_base_loop(t->base, EVLOOP_ONCE);
		assert_true(++spins < 1000000);
	}
}

static struct resp *req_on(struct tc *t, uint16_t port, enum evhttp_cmd_type m, const char *uri,
			   const char *token, const char *body)
{
	struct resp *r = start_req(t, port, m, uri, token, body, NULL);

	wait_resp(t, r);
	return r;
}

#define ADMIN "admin-secret"
#define REG   "reg-web"

/* Request to the leader, check the status, return the response. */
static struct resp *expect(struct tc *t, enum evhttp_cmd_type m, const char *uri, const char *token,
			   const char *body, int status)
{
	struct resp *r = req_on(t, t->lport, m, uri, token, body);

	if (r->code != status)
		fprintf(stderr, "%s -> %d %s\n", uri, r->code, r->body ? r->body : "");
	assert_int_equal(r->code, status);
	return r;
}

static void expect_free(struct tc *t, enum evhttp_cmd_type m, const char *uri, const char *token,
			const char *body, int status)
{
	resp_free(expect(t, m, uri, token, body, status));
}

static const char *err_code(const struct resp *r)
{
	json_t *e = json_object_get(json_object_get(r->json, "error"), "code");

	return e ? json_string_value(e) : "";
}

static void expect_err(struct tc *t, enum evhttp_cmd_type m, const char *uri, const char *token,
		       const char *body, int status, const char *code)
{
	struct resp *r = expect(t, m, uri, token, body, status);

	assert_string_equal(err_code(r), code);
	resp_free(r);
}

static json_int_t jint(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *jstr(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

#define WEB "{\"name\":\"web\",\"vip\":\"10.0.0.10\",\"port\":80,\"table_size\":251}"

static void create_web(struct tc *t)
{
	expect_free(t, EVHTTP_REQ_POST, "/v1/services", ADMIN, WEB, 201);
}

/* Registers addr:8080 with a lease of ttl ms; returns the backend id, *lease the lease. */
static uint32_t register_leased(struct tc *t, const char *token, const char *addr, uint32_t ttl,
				uint64_t *lease)
{
	char body[160];
	struct resp *r;
	uint32_t id;

	snprintf(body, sizeof(body), "{\"address\":\"%s\",\"port\":8080,\"ttl_ms\":%u}", addr, ttl);
	r = expect(t, EVHTTP_REQ_POST, "/v1/services/web/backends", token, body, 201);
	id = (uint32_t)jint(r->json, "id");
	*lease = (uint64_t)jint(r->json, "lease");
	assert_true(*lease != 0);
	resp_free(r);
	return id;
}

/* ---- tests ---- */

static void test_health_ready_metrics_status(void **state)
{
	struct tc *t = *state;
	struct resp *r;

	r = expect(t, EVHTTP_REQ_GET, "/healthz", NULL, NULL, 200);
	assert_string_equal(jstr(r->json, "status"), "ok");
	resp_free(r);
	r = expect(t, EVHTTP_REQ_GET, "/readyz", NULL, NULL, 200);
	assert_int_equal(jint(r->json, "leader"), 1);
	resp_free(r);
	t->ff.leader = 0;
	r = req_on(t, t->fport, EVHTTP_REQ_GET, "/readyz", NULL, NULL);
	assert_int_equal(r->code, 503);
	resp_free(r);
	t->ff.leader = 1;
	r = expect(t, EVHTTP_REQ_GET, "/metrics", NULL, NULL, 200);
	assert_non_null(strstr(r->body, "fulcrum_raft_is_leader 1"));
	resp_free(r);

	create_web(t);
	r = expect(t, EVHTTP_REQ_GET, "/v1/status", ADMIN, NULL, 200);
	assert_int_equal(jint(r->json, "id"), 1);
	assert_string_equal(jstr(r->json, "role"), "leader");
	assert_int_equal(jint(r->json, "term"), 2);
	assert_int_equal(jint(r->json, "revision"), 1);
	assert_int_equal(jint(r->json, "services"), 1);
	assert_string_equal(jstr(r->json, "forwarding_digest"), "000000001234abcd");
	assert_int_equal(strlen(jstr(r->json, "state_digest")), 16);
	assert_int_equal(json_array_size(json_object_get(r->json, "members")), 2);
	assert_int_equal(r->index, 1);
	resp_free(r);
	/* The follower reports its own view, and the same state digest. */
	r = req_on(t, t->fport, EVHTTP_REQ_GET, "/v1/status", ADMIN, NULL);
	assert_int_equal(r->code, 200);
	assert_string_equal(jstr(r->json, "role"), "follower");
	assert_string_equal(jstr(r->json, "leader_api"), t->lpeer);
	resp_free(r);
}

static void test_services_crud(void **state)
{
	struct tc *t = *state;
	struct resp *r;
	json_t *svcs;

	r = expect(t, EVHTTP_REQ_POST, "/v1/services", ADMIN, WEB, 201);
	assert_string_equal(jstr(r->json, "name"), "web");
	assert_string_equal(jstr(r->json, "vip"), "10.0.0.10");
	assert_string_equal(jstr(r->json, "protocol"), "tcp");
	assert_string_equal(jstr(r->json, "mode"), "nat");
	assert_int_equal(jint(r->json, "table_size"), 251);
	assert_int_equal(jint(r->json, "created"), 1);
	assert_int_equal(r->index, 1);
	resp_free(r);
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN, WEB, 409, "exists");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		   "{\"name\":\"web2\",\"vip\":\"10.0.0.10\",\"port\":80}", 409, "conflict");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		   "{\"name\":\"x\",\"vip\":\"10.0.0.11\",\"port\":80,\"table_size\":250}", 400,
		   "invalid");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		   "{\"name\":\"x\",\"vip\":\"nope\",\"port\":80}", 400, "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		   "{\"name\":\"x\",\"vip\":\"10.0.0.11\",\"port\":80,\"mode\":\"magic\"}", 400,
		   "bad_request");
	expect_free(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		    "{\"name\":\"api\",\"vip\":\"10.0.0.11\",\"port\":443,\"protocol\":\"udp\","
		    "\"mode\":\"dsr\",\"health\":{\"type\":\"tcp\",\"interval_ms\":1000,"
		    "\"timeout_ms\":200,\"rise\":2,\"fall\":2}}",
		    201);
	/* Refused writes left no log entry. */
	assert_int_equal(sm_revision(t->lf.own), 2);
	assert_int_equal(t->lf.proposals, 2);

	r = expect(t, EVHTTP_REQ_GET, "/v1/services", ADMIN, NULL, 200);
	svcs = json_object_get(r->json, "services");
	assert_int_equal(json_array_size(svcs), 2);
	assert_string_equal(jstr(json_array_get(svcs, 0), "name"), "api");
	assert_string_equal(jstr(json_array_get(svcs, 0), "mode"), "dsr");
	assert_string_equal(jstr(json_object_get(json_array_get(svcs, 0), "health"), "type"),
			    "tcp");
	resp_free(r);
	r = expect(t, EVHTTP_REQ_GET, "/v1/services/web", ADMIN, NULL, 200);
	assert_int_equal(jint(r->json, "port"), 80);
	resp_free(r);
	assert_true(t->lf.reads >= 2); /* linearizable reads went through ReadIndex */

	/* PUT replaces the definition; a GET body can be PUT back (read-only fields ignored). */
	r = expect(t, EVHTTP_REQ_PUT, "/v1/services/web", ADMIN,
		   "{\"vip\":\"10.0.0.10\",\"port\":8080,\"table_size\":251,\"created\":1}", 200);
	assert_int_equal(jint(r->json, "port"), 8080);
	assert_int_equal(jint(r->json, "modified"), 3);
	resp_free(r);
	expect_err(t, EVHTTP_REQ_PUT, "/v1/services/nope", ADMIN,
		   "{\"vip\":\"10.0.0.99\",\"port\":80}", 404, "not_found");
	expect_err(t, EVHTTP_REQ_PUT, "/v1/services/web", ADMIN,
		   "{\"name\":\"other\",\"vip\":\"10.0.0.10\",\"port\":80}", 400, "bad_request");

	r = expect(t, EVHTTP_REQ_DELETE, "/v1/services/web", ADMIN, NULL, 200);
	assert_true(json_is_true(json_object_get(r->json, "deleted")));
	resp_free(r);
	expect_err(t, EVHTTP_REQ_GET, "/v1/services/web", ADMIN, NULL, 404, "not_found");
	expect_err(t, EVHTTP_REQ_DELETE, "/v1/services/web", ADMIN, NULL, 404, "not_found");
	assert_null(sm_service_get(t->lf.own, "web"));
}

static void test_backends(void **state)
{
	struct tc *t = *state;
	struct resp *r;
	char uri[128];
	uint32_t id;
	json_t *eps;

	create_web(t);
	r = expect(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		   "{\"address\":\"10.1.0.1\",\"port\":8080,\"weight\":7}", 201);
	id = (uint32_t)jint(r->json, "id");
	assert_int_equal(jint(r->json, "weight"), 7);
	assert_int_equal(jint(r->json, "lease"), 0);
	assert_string_equal(jstr(r->json, "state"), "active");
	resp_free(r);
	/* Same (address, port) again: re-registered (200), same id, new weight. */
	r = expect(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		   "{\"address\":\"10.1.0.1\",\"port\":8080,\"weight\":9}", 200);
	assert_int_equal(jint(r->json, "id"), id);
	assert_int_equal(jint(r->json, "weight"), 9);
	resp_free(r);
	expect_free(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		    "{\"address\":\"10.1.0.2\"}", 201);
	expect_err(t, EVHTTP_REQ_POST, "/v1/services/nope/backends", ADMIN,
		   "{\"address\":\"10.1.0.2\"}", 404, "not_found");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		   "{\"address\":\"10.1.0.3\",\"weight\":2000000}", 400, "invalid");

	r = expect(t, EVHTTP_REQ_GET, "/v1/services/web/backends", ADMIN, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(r->json, "backends")), 2);
	resp_free(r);
	snprintf(uri, sizeof(uri), "/v1/services/web/backends/%u", id);
	r = expect(t, EVHTTP_REQ_GET, uri, ADMIN, NULL, 200);
	assert_string_equal(jstr(r->json, "address"), "10.1.0.1");
	assert_int_equal(jint(r->json, "port"), 8080);
	resp_free(r);
	expect_err(t, EVHTTP_REQ_GET, "/v1/services/web/backends/12345", ADMIN, NULL, 404,
		   "not_found");
	expect_err(t, EVHTTP_REQ_GET, "/v1/services/web/backends/abc", ADMIN, NULL, 400,
		   "bad_request");

	/* PATCH: weight and drain in one request (two entries). */
	r = expect(t, EVHTTP_REQ_PATCH, uri, ADMIN, "{\"weight\":50,\"drain\":true}", 200);
	assert_int_equal(jint(r->json, "weight"), 50);
	assert_string_equal(jstr(r->json, "state"), "draining");
	resp_free(r);
	r = expect(t, EVHTTP_REQ_GET, "/v1/services/web/endpoints", ADMIN, NULL, 200);
	eps = json_object_get(r->json, "endpoints");
	assert_int_equal(json_array_size(eps), 2);
	assert_int_equal(jint(json_array_get(eps, 0), "id") == id
			     ? jint(json_array_get(eps, 0), "weight")
			     : jint(json_array_get(eps, 1), "weight"),
			 0);
	assert_int_equal(jint(r->json, "index"), (json_int_t)r->index);
	resp_free(r);
	r = expect(t, EVHTTP_REQ_GET, "/v1/services/web/endpoints?healthy=1", ADMIN, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(r->json, "endpoints")), 1);
	resp_free(r);
	r = expect(t, EVHTTP_REQ_PUT, uri, ADMIN, "{\"drain\":false,\"state\":\"down\"}", 200);
	assert_string_equal(jstr(r->json, "state"), "down");
	resp_free(r);
	expect_err(t, EVHTTP_REQ_PATCH, uri, ADMIN, "{\"state\":\"sleepy\"}", 400, "bad_request");
	expect_err(t, EVHTTP_REQ_PATCH, uri, ADMIN, "{}", 400, "bad_request");
	expect_err(t, EVHTTP_REQ_PATCH, "/v1/services/web/backends/1", ADMIN, "{\"weight\":1}", 404,
		   "not_found");

	expect_free(t, EVHTTP_REQ_DELETE, uri, ADMIN, NULL, 200);
	expect_err(t, EVHTTP_REQ_DELETE, uri, ADMIN, NULL, 404, "not_found");
	assert_int_equal(sm_backend_list(t->lf.own, "web", 0, NULL, 0), 1);
}

static void test_leases(void **state)
{
	struct tc *t = *state;
	struct resp *r;
	uint64_t lease, l2;
	char uri[96];

	create_web(t);
	register_leased(t, ADMIN, "10.1.0.1", 5000, &lease);
	/* One call made two entries: the grant (its index is the lease id) and the register. */
	assert_int_equal(lease, 2);
	assert_int_equal(sm_revision(t->lf.own), 3);
	assert_non_null(sm_lease_get(t->lf.own, lease));

	snprintf(uri, sizeof(uri), "/v1/leases/%llu", (unsigned long long)lease);
	r = expect(t, EVHTTP_REQ_GET, uri, ADMIN, NULL, 200);
	assert_string_equal(jstr(r->json, "service"), "web");
	assert_int_equal(jint(r->json, "ttl_ms"), 5000);
	resp_free(r);
	snprintf(uri, sizeof(uri), "/v1/leases/%llu/keepalive", (unsigned long long)lease);
	r = expect(t, EVHTTP_REQ_PUT, uri, ADMIN, NULL, 200);
	assert_int_equal(jint(r->json, "ttl_ms"), 5000);
	resp_free(r);
	/* Keepalives are not logged. */
	assert_int_equal(sm_revision(t->lf.own), 3);

	/* Explicit grant, then register with it. */
	r = expect(t, EVHTTP_REQ_POST, "/v1/leases", ADMIN, "{\"service\":\"web\",\"ttl_ms\":2000}",
		   201);
	l2 = (uint64_t)jint(r->json, "id");
	resp_free(r);
	snprintf(uri, sizeof(uri), "{\"address\":\"10.1.0.2\",\"lease\":%llu}",
		 (unsigned long long)l2);
	expect_free(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN, uri, 201);
	expect_err(t, EVHTTP_REQ_POST, "/v1/leases", ADMIN, "{\"service\":\"web\",\"ttl_ms\":5}",
		   400, "invalid");
	expect_err(t, EVHTTP_REQ_POST, "/v1/leases", ADMIN,
		   "{\"service\":\"none\",\"ttl_ms\":5000}", 404, "not_found");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		   "{\"address\":\"10.1.0.3\",\"lease\":999}", 404, "not_found");

	/* Revoke: the lease and its backends go at once. */
	snprintf(uri, sizeof(uri), "/v1/leases/%llu", (unsigned long long)lease);
	r = expect(t, EVHTTP_REQ_DELETE, uri, ADMIN, NULL, 200);
	assert_int_equal(jint(r->json, "backends_removed"), 1);
	resp_free(r);
	assert_null(sm_lease_get(t->lf.own, lease));
	assert_int_equal(sm_backend_list(t->lf.own, "web", 0, NULL, 0), 1);
	snprintf(uri, sizeof(uri), "/v1/leases/%llu/keepalive", (unsigned long long)lease);
	expect_err(t, EVHTTP_REQ_PUT, uri, ADMIN, NULL, 404, "not_found");
}

/* Runs the loop briefly so the API's tick (10 ms) runs. */
static void spin(struct tc *t, int ms)
{
	struct timeval tv = {0, ms * 1000};

	event_base_loopexit(t->base, &tv);
	event_base_dispatch(t->base);
}

static void test_lease_expiry_and_failover(void **state)
{
	struct tc *t = *state;
	uint64_t a, b;
	char uri[96];

	create_web(t);
	register_leased(t, ADMIN, "10.1.0.1", 1000, &a);
	register_leased(t, ADMIN, "10.1.0.2", 1000, &b);
	api_notify(t->leader); /* start tracking at now = 1000 */
	assert_int_equal(sm_backend_list(t->lf.own, "web", 0, NULL, 0), 2);

	/* a gets keepalives, b does not. */
	t->lf.now = 1900;
	snprintf(uri, sizeof(uri), "/v1/leases/%llu/keepalive", (unsigned long long)a);
	expect_free(t, EVHTTP_REQ_PUT, uri, ADMIN, NULL, 200);
	t->lf.now = 2000;
	api_notify(t->leader);
	spin(t, 30);
	assert_null(sm_lease_get(t->lf.own, b));
	assert_non_null(sm_lease_get(t->lf.own, a));
	assert_int_equal(sm_backend_list(t->lf.own, "web", 0, NULL, 0), 1);

	/* Failover: the new term's leader is elected long after a's deadline (2900); it must
	 * give a full TTL before expiring. */
	t->lf.now = 5000;
	t->lf.term = 3;
	api_notify(t->leader);
	spin(t, 30);
	assert_non_null(sm_lease_get(t->lf.own, a));
	t->lf.now = 5999;
	api_notify(t->leader);
	spin(t, 20);
	assert_non_null(sm_lease_get(t->lf.own, a));
	t->lf.now = 6000;
	api_notify(t->leader);
	spin(t, 30);
	assert_null(sm_lease_get(t->lf.own, a));
	assert_int_equal(sm_backend_list(t->lf.own, "web", 0, NULL, 0), 0);
}

static void test_auth_and_scope(void **state)
{
	struct tc *t = *state;
	struct resp *r;
	uint64_t rev, lease;
	uint32_t id, static_id;
	char uri[96];

	create_web(t);
	expect_free(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		    "{\"name\":\"db\",\"vip\":\"10.0.0.20\",\"port\":5432,\"table_size\":251}",
		    201);
	r = expect(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		   "{\"address\":\"10.1.0.9\"}", 201);
	static_id = (uint32_t)jint(r->json, "id");
	resp_free(r);
	rev = sm_revision(t->lf.own);

	expect_err(t, EVHTTP_REQ_GET, "/v1/services", NULL, NULL, 401, "unauthorized");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", NULL, WEB, 401, "unauthorized");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", "wrong", WEB, 401, "unauthorized");
	expect_err(t, EVHTTP_REQ_DELETE, "/v1/services/web", "admin-secreT", NULL, 401,
		   "unauthorized");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", REG,
		   "{\"name\":\"x\",\"vip\":\"10.0.0.30\",\"port\":80}", 403, "forbidden");
	expect_err(t, EVHTTP_REQ_DELETE, "/v1/services/web", REG, NULL, 403, "forbidden");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services/db/backends", REG,
		   "{\"address\":\"10.1.0.5\",\"ttl_ms\":5000}", 403, "forbidden");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services/web/backends", REG,
		   "{\"address\":\"10.1.0.5\"}", 403, "forbidden");
	expect_err(t, EVHTTP_REQ_POST, "/v1/leases", REG, "{\"service\":\"db\",\"ttl_ms\":5000}",
		   403, "forbidden");
	snprintf(uri, sizeof(uri), "/v1/services/web/backends/%u", static_id);
	expect_err(t, EVHTTP_REQ_DELETE, uri, REG, NULL, 403, "forbidden");
	expect_err(t, EVHTTP_REQ_PATCH, uri, REG, "{\"weight\":1}", 403, "forbidden");
	expect_err(t, EVHTTP_REQ_POST, "/v1/members", REG,
		   "{\"id\":9,\"raft_address\":\"127.0.0.1:1\",\"api_address\":\"127.0.0.1:2\"}",
		   403, "forbidden");
	/* Nothing changed. */
	assert_int_equal(sm_revision(t->lf.own), rev);
	assert_int_equal(sm_service_count(t->lf.own), 2);

	/* In scope: register with a lease, keep alive, read, deregister its own backend. */
	id = register_leased(t, REG, "10.1.0.5", 5000, &lease);
	snprintf(uri, sizeof(uri), "/v1/leases/%llu/keepalive", (unsigned long long)lease);
	expect_free(t, EVHTTP_REQ_PUT, uri, REG, NULL, 200);
	r = expect(t, EVHTTP_REQ_GET, "/v1/services", REG, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(r->json, "services")), 1);
	resp_free(r);
	expect_err(t, EVHTTP_REQ_GET, "/v1/services/db", REG, NULL, 403, "forbidden");
	snprintf(uri, sizeof(uri), "/v1/services/web/backends/%u", id);
	expect_free(t, EVHTTP_REQ_DELETE, uri, REG, NULL, 200);
	/* /healthz needs no token. */
	expect_free(t, EVHTTP_REQ_GET, "/healthz", NULL, NULL, 200);
}

static void test_bad_requests(void **state)
{
	struct tc *t = *state;
	struct resp *r;
	uint64_t rev;
	char *big;

	create_web(t);
	rev = sm_revision(t->lf.own);
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN, "{\"name\":", 400, "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN, "[1,2]", 400, "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN, NULL, 400, "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		   "{\"name\":\"x\",\"vip\":\"10.0.0.30\",\"port\":80,\"colour\":\"red\"}", 400,
		   "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		   "{\"name\":\"x\",\"vip\":\"10.0.0.30\",\"port\":80,\"health\":{\"typo\":1}}",
		   400, "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		   "{\"name\":\"x\",\"name\":\"y\",\"vip\":\"10.0.0.30\",\"port\":80}", 400,
		   "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		   "{\"name\":\"x\",\"vip\":\"10.0.0.30\",\"port\":\"80\"}", 400, "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		   "{\"address\":\"10.1.0.1\",\"wieght\":3}", 400, "bad_request");
	expect_err(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		   "{\"address\":\"10.1.0.1\",\"ttl_ms\":5000,\"lease\":3}", 400, "bad_request");
	expect_err(t, EVHTTP_REQ_GET, "/v1/nothing", ADMIN, NULL, 404, "not_found");
	expect_err(t, EVHTTP_REQ_GET, "/v2/services", ADMIN, NULL, 404, "not_found");
	expect_err(t, EVHTTP_REQ_DELETE, "/v1/services", ADMIN, NULL, 405, "method_not_allowed");
	expect_err(t, EVHTTP_REQ_GET, "/v1/services/web/endpoints?index=x", ADMIN, NULL, 400,
		   "bad_request");

	/* Oversized body: 64 KiB + 1 gets our JSON 413; far over it evhttp refuses (413). */
	big = malloc(65536 + 2);
	assert_non_null(big);
	memset(big, ' ', 65536 + 1);
	big[0] = '{';
	big[65536] = '}';
	big[65537] = 0;
	expect_err(t, EVHTTP_REQ_POST, "/v1/services", ADMIN, big, 413, "too_large");
	free(big);
	big = malloc(300000);
	assert_non_null(big);
	memset(big, ' ', 299999);
	big[299999] = 0;
	/* evhttp answers 413 and closes; the client may see the close first (0). */
	r = req_on(t, t->lport, EVHTTP_REQ_POST, "/v1/services", ADMIN, big);
	assert_true(r->code == 413 || r->code == 0);
	resp_free(r);
	free(big);
	assert_int_equal(sm_revision(t->lf.own), rev);
	/* The server is still fine. */
	expect_free(t, EVHTTP_REQ_GET, "/v1/services/web", ADMIN, NULL, 200);
}

static void test_long_poll(void **state)
{
	struct tc *t = *state;
	struct resp *r, *w;
	uint64_t idx;
	char uri[128];

	create_web(t);
	r = expect(t, EVHTTP_REQ_GET, "/v1/services/web/endpoints", ADMIN, NULL, 200);
	idx = r->index;
	assert_int_equal(jint(r->json, "index"), (json_int_t)idx);
	resp_free(r);

	/* An older index answers at once. */
	snprintf(uri, sizeof(uri), "/v1/services/web/endpoints?index=%llu&wait=30s",
		 (unsigned long long)(idx - 1));
	expect_free(t, EVHTTP_REQ_GET, uri, ADMIN, NULL, 200);

	/* Nothing changes: returns after the wait with the same index. */
	snprintf(uri, sizeof(uri), "/v1/services/web/endpoints?index=%llu&wait=200ms",
		 (unsigned long long)idx);
	r = expect(t, EVHTTP_REQ_GET, uri, ADMIN, NULL, 200);
	assert_int_equal(r->index, idx);
	assert_int_equal(json_array_size(json_object_get(r->json, "endpoints")), 0);
	resp_free(r);

	/* A change applied while waiting wakes it (wait long: it must not time out). Watch on the
	 * follower, write on the leader. */
	snprintf(uri, sizeof(uri), "/v1/services/web/endpoints?index=%llu&wait=60s&healthy=1",
		 (unsigned long long)idx);
	w = start_req(t, t->fport, EVHTTP_REQ_GET, uri, ADMIN, NULL, NULL);
	spin(t, 20);
	assert_false(w->done);
	expect_free(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		    "{\"address\":\"10.1.0.1\"}", 201);
	wait_resp(t, w);
	assert_int_equal(w->code, 200);
	assert_true(w->index > idx);
	assert_int_equal(json_array_size(json_object_get(w->json, "endpoints")), 1);
	resp_free(w);

	/* A change to another service does not wake it; a deletion answers 404. */
	expect_free(t, EVHTTP_REQ_POST, "/v1/services", ADMIN,
		    "{\"name\":\"db\",\"vip\":\"10.0.0.20\",\"port\":5432,\"table_size\":251}",
		    201);
	r = expect(t, EVHTTP_REQ_GET, "/v1/services/db/endpoints", ADMIN, NULL, 200);
	snprintf(uri, sizeof(uri), "/v1/services/db/endpoints?index=%llu&wait=60s",
		 (unsigned long long)r->index);
	resp_free(r);
	w = start_req(t, t->lport, EVHTTP_REQ_GET, uri, ADMIN, NULL, NULL);
	spin(t, 20);
	expect_free(t, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN,
		    "{\"address\":\"10.1.0.2\"}", 201);
	spin(t, 20);
	assert_false(w->done);
	expect_free(t, EVHTTP_REQ_DELETE, "/v1/services/db", ADMIN, NULL, 200);
	wait_resp(t, w);
	assert_int_equal(w->code, 404);
	resp_free(w);
}

/* Forwarded writes share one kept-alive connection to the leader, not one each. */
static void test_forwarding_reuses_connections(void **state)
{
	struct tc *t = *state;
	struct resp *r;
	char body[96];

	r = req_on(t, t->fport, EVHTTP_REQ_POST, "/v1/services", ADMIN, WEB);
	assert_int_equal(r->code, 201);
	resp_free(r);
	for (int i = 1; i <= 20; i++) {
		snprintf(body, sizeof(body), "{\"address\":\"10.1.0.%d\"}", i);
		r = req_on(t, t->fport, EVHTTP_REQ_POST, "/v1/services/web/backends", ADMIN, body);
		assert_int_equal(r->code, 201);
		resp_free(r);
	}
	assert_int_equal(sm_service_get(t->lf.own, "web")->n_backends, 20);
	r = req_on(t, t->fport, EVHTTP_REQ_GET, "/metrics", NULL, NULL);
	assert_int_equal(r->code, 200);
	assert_non_null(strstr(r->body, "fulcrum_api_forwarded_total 21\n"));
	assert_non_null(strstr(r->body, "fulcrum_api_forward_connections_total 1\n"));
	resp_free(r);
}

static void test_follower_forwarding(void **state)
{
	struct tc *t = *state;
	struct resp *r;
	uint64_t lease, rev;
	unsigned reads;
	char uri[96];

	/* A write on the follower reaches the leader and answers after apply. */
	r = req_on(t, t->fport, EVHTTP_REQ_POST, "/v1/services", ADMIN, WEB);
	assert_int_equal(r->code, 201);
	assert_string_equal(jstr(r->json, "name"), "web");
	assert_int_equal(r->index, 1);
	resp_free(r);
	assert_non_null(sm_service_get(t->lf.own, "web"));
	assert_int_equal(t->lf.proposals, 1);
	/* Errors are relayed as they are. */
	r = req_on(t, t->fport, EVHTTP_REQ_POST, "/v1/services", ADMIN, WEB);
	assert_int_equal(r->code, 409);
	assert_string_equal(err_code(r), "exists");
	resp_free(r);
	/* Auth is checked before forwarding. */
	r = req_on(t, t->fport, EVHTTP_REQ_POST, "/v1/services", "bad", WEB);
	assert_int_equal(r->code, 401);
	resp_free(r);

	/* Linearizable read on the follower: forwarded to the leader's ReadIndex. */
	reads = t->lf.reads;
	r = req_on(t, t->fport, EVHTTP_REQ_GET, "/v1/services/web", ADMIN, NULL);
	assert_int_equal(r->code, 200);
	resp_free(r);
	assert_int_equal(t->lf.reads, reads + 1);
	/* stale=1 is answered locally. */
	r = req_on(t, t->fport, EVHTTP_REQ_GET, "/v1/services/web?stale=1", ADMIN, NULL);
	assert_int_equal(r->code, 200);
	resp_free(r);
	assert_int_equal(t->lf.reads, reads + 1);

	/* Registration and keepalive through the follower reset the leader's deadline. */
	r = req_on(t, t->fport, EVHTTP_REQ_POST, "/v1/services/web/backends", REG,
		   "{\"address\":\"10.1.0.1\",\"ttl_ms\":1000}");
	assert_int_equal(r->code, 201);
	lease = (uint64_t)jint(r->json, "lease");
	resp_free(r);
	api_notify(t->leader); /* tracked from now = 1000: deadline 2000 */
	t->lf.now = 1800;
	snprintf(uri, sizeof(uri), "/v1/leases/%llu/keepalive", (unsigned long long)lease);
	r = req_on(t, t->fport, EVHTTP_REQ_PUT, uri, REG, NULL);
	assert_int_equal(r->code, 200);
	resp_free(r);
	t->lf.now = 2500; /* past the first deadline, before the new one (2800) */
	api_notify(t->leader);
	spin(t, 30);
	assert_non_null(sm_lease_get(t->lf.own, lease));
	t->lf.now = 2800;
	api_notify(t->leader);
	spin(t, 30);
	assert_null(sm_lease_get(t->lf.own, lease));

	/* Loop protection and no leader. */
	rev = sm_revision(t->lf.own);
	r = start_req(t, t->fport, EVHTTP_REQ_POST, "/v1/services", ADMIN, WEB,
		      "X-Fulcrum-Forwarded");
	wait_resp(t, r);
	assert_int_equal(r->code, 503);
	assert_string_equal(err_code(r), "no_leader");
	resp_free(r);
	t->ff.leader = 0;
	r = req_on(t, t->fport, EVHTTP_REQ_DELETE, "/v1/services/web", ADMIN, NULL);
	assert_int_equal(r->code, 503);
	assert_string_equal(err_code(r), "no_leader");
	resp_free(r);
	assert_int_equal(sm_revision(t->lf.own), rev);
}

static void test_members(void **state)
{
	struct tc *t = *state;
	struct resp *r;
	json_t *ms;

	r = expect(
	    t, EVHTTP_REQ_POST, "/v1/members", ADMIN,
	    "{\"id\":3,\"raft_address\":\"127.0.0.1:7003\",\"api_address\":\"127.0.0.1:8003\"}",
	    201);
	assert_int_equal(jint(r->json, "id"), 3);
	assert_false(json_is_true(json_object_get(r->json, "voter")));
	assert_string_equal(jstr(r->json, "api_address"), "127.0.0.1:8003");
	resp_free(r);
	assert_non_null(sm_member_get(t->lf.own, 3));
	assert_int_equal(t->lf.member_ops[API_MEMBER_ADD_LEARNER], 1);
	expect_err(
	    t, EVHTTP_REQ_POST, "/v1/members", ADMIN,
	    "{\"id\":3,\"raft_address\":\"127.0.0.1:7009\",\"api_address\":\"127.0.0.1:8009\"}",
	    409, "exists");
	expect_err(t, EVHTTP_REQ_POST, "/v1/members", ADMIN, "{\"id\":4}", 400, "bad_request");

	r = expect(t, EVHTTP_REQ_POST, "/v1/members/3/promote", ADMIN, NULL, 200);
	assert_true(json_is_true(json_object_get(r->json, "voter")));
	resp_free(r);
	expect_err(t, EVHTTP_REQ_POST, "/v1/members/7/promote", ADMIN, NULL, 404, "not_found");

	r = expect(t, EVHTTP_REQ_GET, "/v1/members", ADMIN, NULL, 200);
	ms = json_object_get(r->json, "members");
	assert_int_equal(json_array_size(ms), 3);
	resp_free(r);

	r = expect(t, EVHTTP_REQ_DELETE, "/v1/members/3", ADMIN, NULL, 200);
	assert_true(json_is_true(json_object_get(r->json, "removed")));
	resp_free(r);
	assert_null(sm_member_get(t->lf.own, 3));
	assert_int_equal(t->lf.member_ops[API_MEMBER_REMOVE], 1);
	expect_err(t, EVHTTP_REQ_DELETE, "/v1/members/3", ADMIN, NULL, 404, "not_found");
}

int main(void)
{
	/* A client writing a body the server refused gets EPIPE, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_health_ready_metrics_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forwarding_reuses_connections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_services_crud, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backends, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_expiry_and_failover, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth_and_scope, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_poll, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_follower_forwarding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_members, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
