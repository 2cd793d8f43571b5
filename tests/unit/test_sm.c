/* Unit tests for controlplane/sm: commands, validation, apply, determinism, snapshots, hostile
 * bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/config.h"
#include "controlplane/sm.h"
#include "dataplane/fwd.h"
#include "dataplane/maglev.h"
#include "tests/unit/testutil.h"

/* ---- helpers ---------------------------------------------------------- */

struct log {
	struct sm_state *st;
	uint64_t index;
};

static struct addr A(const char *text) {
	struct addr a;

	assert_int_equal(addr_parse(text, &a), 0);
	return a;
}

static struct sm_cmd
svc(const char *name, const char *vip, uint16_t port, uint8_t mode)
{
	struct sm_cmd c;

	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_SERVICE_CREATE;
	snprintf(c.u.service.name, sizeof(c.u.service.name), "%s", name);
	c.u.service.vip = A(vip);
	c.u.service.port = port;
	c.u.service.proto = IPPROTO_TCP;
	c.u.service.mode = mode;
	c.u.service.algorithm = SM_ALG_MAGLEV;
	c.u.service.table_size = 251;
	c.u.service.health.type = SM_HC_HTTP;
	snprintf(c.u.service.health.path, sizeof(c.u.service.health.path), "/healthz");
	c.u.service.health.interval_ms = 1000;
	c.u.service.health.timeout_ms = 500;
	c.u.service.health.rise = 2;
	c.u.service.health.fall = 3;
	return c;
}

static struct sm_cmd reg(const char *service, const char *addr, uint16_t port, uint32_t weight,
			 uint64_t lease)
{
	struct sm_cmd c;

	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_BACKEND_REGISTER;
	snprintf(c.u.reg.service, sizeof(c.u.reg.service), "%s", service);
	c.u.reg.addr = A(addr);
	c.u.reg.port = port;
	c.u.reg.weight = weight;
	c.u.reg.lease = lease;
	return c;
}

static struct sm_cmd be(uint8_t type, const char *service, uint32_t uid, uint32_t value)
{
	struct sm_cmd c;

	memset(&c, 0, sizeof(c));
	c.type = type;
	snprintf(c.u.be.service, sizeof(c.u.be.service), "%s", service);
	c.u.be.uid = uid;
	c.u.be.value = value;
	return c;
}

static struct sm_cmd grant(uint64_t id, uint32_t ttl, const char *service)
{
	struct sm_cmd c;

	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_LEASE_GRANT;
	c.u.lease.id = id;
	c.u.lease.ttl_ms = ttl;
	snprintf(c.u.lease.service, sizeof(c.u.lease.service), "%s", service);
	return c;
}

static struct sm_cmd simple(uint8_t type)
{
	struct sm_cmd c;

	memset(&c, 0, sizeof(c));
	c.type = type;
	return c;
}

static uint32_t uid_of(const char *addr, uint16_t port)
{
	struct addr a = A(addr);

	return config_backend_uid(&a, port);
}

/* Encode and apply at the next index; returns the result code. */
static enum sm_errcode run(struct log *l, const struct sm_cmd *c, struct sm_result *res)
{
	uint8_t buf[SM_CMD_MAX_LEN];
	struct sm_result local;
	int n = sm_cmd_encode(c, buf, sizeof(buf));

	if (res == NULL)
		res = &local;
	assert_true(n > 0 && n <= SM_CMD_MAX_LEN);
	assert_int_equal(sm_apply(l->st, ++l->index, buf, (size_t)n, res), 0);
	assert_int_equal(res->revision, l->index);
	assert_int_equal(sm_revision(l->st), l->index);
	return res->code;
}

/*
 * Validate, expect code; then apply and expect the same code. On an error
 * the state must be unchanged but for the revision: the snapshots before and
 * after may differ only in the revision field (bytes 5..12 of format 1).
 */
static void expect(struct log *l, const struct sm_cmd *c, enum sm_errcode code)
{
	struct sm_err err;
	uint8_t *before, *after;
	size_t blen, alen;
	enum sm_errcode got = sm_validate(l->st, c, &err);

	if (got != code)
		fail_msg("validate: expected %s, got %s (%s)", sm_errcode_str(code),
			 sm_errcode_str(got), err.msg);
	assert_int_equal(err.code, code);
	if (code != SM_ERR_OK)
		assert_true(err.msg[0] != '\0');
	assert_int_equal(sm_snapshot(l->st, &before, &blen), 0);
	assert_int_equal(run(l, c, NULL), code);
	assert_int_equal(sm_snapshot(l->st, &after, &alen), 0);
	if (code != SM_ERR_OK) {
		assert_int_equal(blen, alen);
		assert_memory_equal(before, after, 5);
		assert_memory_equal(before + 13, after + 13, blen - 13);
	}
	free(before);
	free(after);
}

static void log_init(struct log *l)
{
	l->st = sm_new();
	assert_non_null(l->st);
	l->index = 0;
}

static void base_setup(struct log *l)
{
	struct sm_cmd c;

	log_init(l);
	c = svc("web", "192.0.2.100", 80, FWD_MODE_NAT);
	expect(l, &c, SM_ERR_OK);
	c = svc("dsr", "192.0.2.101", 80, FWD_MODE_DSR);
	expect(l, &c, SM_ERR_OK);
}

/* ---- commands --------------------------------------------------------- */

static void test_errcode_strings(void **state)
{
	(void)state;
	assert_string_equal(sm_errcode_str(SM_ERR_OK), "ok");
	assert_string_equal(sm_errcode_str(SM_ERR_NOT_FOUND), "not_found");
	assert_string_equal(sm_errcode_str(SM_ERR_CONFLICT), "conflict");
	assert_string_equal(sm_errcode_str(SM_ERR_DECODE), "decode");
	assert_string_equal(sm_errcode_str(999), "?");
}

static void test_service_create(void **state)
{
	struct log l;
	struct sm_cmd c;
	const struct sm_service *s;

	(void)state;
	base_setup(&l);
	s = sm_service_get(l.st, "web");
	assert_non_null(s);
	assert_int_equal(s->def.port, 80);
	assert_int_equal(s->def.table_size, 251);
	assert_int_equal(s->created, 1);
	assert_string_equal(s->def.health.path, "/healthz");

	/* table_size 0 resolves to the default */
	c = svc("dflt", "192.0.2.102", 80, FWD_MODE_NAT);
	c.u.service.table_size = 0;
	c.u.service.health = (struct sm_health){0};
	expect(&l, &c, SM_ERR_OK);
	assert_int_equal(sm_service_get(l.st, "dflt")->def.table_size, MAGLEV_DEFAULT_SIZE);

	c = svc("web", "192.0.2.110", 80, FWD_MODE_NAT);
	expect(&l, &c, SM_ERR_EXISTS);
	c = svc("web2", "192.0.2.100", 80, FWD_MODE_NAT);
	expect(&l, &c, SM_ERR_CONFLICT);
	c.u.service.proto = IPPROTO_UDP; /* same VIP:port, other protocol: fine */
	expect(&l, &c, SM_ERR_OK);

	c = svc("bad name", "192.0.2.120", 80, FWD_MODE_NAT);
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("", "192.0.2.120", 80, FWD_MODE_NAT);
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 0, FWD_MODE_NAT);
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, 9);
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.proto = 1;
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.vip.family = ADDR_NONE;
	memset(c.u.service.vip.b, 0, 16);
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.algorithm = 2;
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.table_size = 250; /* not prime */
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.max_backends = SM_MAX_BACKENDS + 1;
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.health.path[0] = '\0'; /* http without a path */
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.health.timeout_ms = 2000; /* > interval */
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.health.type = SM_HC_TCP; /* tcp with a path */
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.health.rise = 0;
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("x", "192.0.2.120", 80, FWD_MODE_NAT);
	c.u.service.health.type = 7;
	expect(&l, &c, SM_ERR_INVALID);

	assert_int_equal(sm_service_count(l.st), 4);
	/* name order */
	assert_string_equal(sm_service_at(l.st, 0)->def.name, "dflt");
	assert_string_equal(sm_service_at(l.st, 3)->def.name, "web2");
	assert_null(sm_service_at(l.st, 4));
	sm_free(l.st);
}

static void test_service_limit(void **state)
{
	struct log l;
	char name[16];

	(void)state;
	log_init(&l);
	for (unsigned i = 0; i < SM_MAX_SERVICES; i++) {
		struct sm_cmd c = svc("s", "192.0.2.1", (uint16_t)(1 + i), FWD_MODE_DSR);
		snprintf(name, sizeof(name), "s%04u", i);
		snprintf(c.u.service.name, sizeof(c.u.service.name), "%s", name);
		assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
	}
	struct sm_cmd c = svc("one-more", "192.0.2.1", 60000, FWD_MODE_DSR);
	expect(&l, &c, SM_ERR_LIMIT);
	sm_free(l.st);
}

static void test_service_update_delete(void **state)
{
	struct log l;
	struct sm_cmd c;
	struct sm_result res;

	(void)state;
	base_setup(&l);
	c = reg("web", "10.0.0.1", 8080, 1, 0);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.2", 8080, 1, 0);
	expect(&l, &c, SM_ERR_OK);

	c = svc("web", "192.0.2.100", 80, FWD_MODE_NAT);
	c.type = SM_CMD_SERVICE_UPDATE;
	c.u.service.table_size = 65537;
	c.u.service.announce = 1;
	expect(&l, &c, SM_ERR_OK);
	assert_int_equal(sm_service_get(l.st, "web")->def.table_size, 65537);
	assert_int_equal(sm_service_get(l.st, "web")->modified, l.index);
	assert_int_equal(sm_service_get(l.st, "web")->n_backends, 2); /* kept */

	c.u.service.vip = A("192.0.2.101"); /* the dsr service's VIP:port */
	expect(&l, &c, SM_ERR_CONFLICT);
	c = svc("web", "192.0.2.100", 80, FWD_MODE_DSR); /* backends on 8080: dsr cannot */
	c.type = SM_CMD_SERVICE_UPDATE;
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("web", "192.0.2.100", 80, FWD_MODE_NAT);
	c.type = SM_CMD_SERVICE_UPDATE;
	c.u.service.max_backends = 1;
	expect(&l, &c, SM_ERR_LIMIT);
	c = svc("web", "192.0.2.100", 80, FWD_MODE_NAT);
	c.type = SM_CMD_SERVICE_UPDATE;
	c.u.service.table_size = 250;
	expect(&l, &c, SM_ERR_INVALID);
	c = svc("nope", "192.0.2.100", 80, FWD_MODE_NAT);
	c.type = SM_CMD_SERVICE_UPDATE;
	expect(&l, &c, SM_ERR_NOT_FOUND);

	/* delete: backends and the leases scoped to it go too */
	c = grant(0, 5000, "web");
	expect(&l, &c, SM_ERR_OK);
	c = simple(SM_CMD_SERVICE_DELETE);
	snprintf(c.u.del.service, sizeof(c.u.del.service), "web");
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	assert_int_equal(res.removed, 2);
	assert_int_equal(res.count, 1);
	assert_null(sm_service_get(l.st, "web"));
	assert_int_equal(sm_lease_count(l.st), 0);
	expect(&l, &c, SM_ERR_NOT_FOUND);
	sm_free(l.st);
}

static void test_backend_commands(void **state)
{
	struct log l;
	struct sm_cmd c;
	struct sm_result res;
	const struct sm_backend *b;
	uint32_t u1 = uid_of("10.0.0.1", 8080);

	(void)state;
	base_setup(&l);
	c = reg("web", "10.0.0.1", 8080, 5, 0);
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	assert_int_equal(res.uid, u1);
	assert_int_equal(res.created, 1);
	b = sm_backend_get(sm_service_get(l.st, "web"), u1);
	assert_non_null(b);
	assert_int_equal(b->weight, 5);
	assert_int_equal(sm_backend_state(b), SM_BACKEND_ACTIVE);
	assert_int_equal(b->created, l.index);

	/* port 0 = the service port; the uid is of the resolved port */
	c = reg("dsr", "10.0.0.1", 0, 1, 0);
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	assert_int_equal(res.uid, uid_of("10.0.0.1", 80));
	assert_int_equal(sm_backend_get(sm_service_get(l.st, "dsr"), res.uid)->port, 80);

	/* re-registration updates the weight, keeps identity */
	c = reg("web", "10.0.0.1", 8080, 7, 0);
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	assert_int_equal(res.created, 0);
	assert_int_equal(sm_service_get(l.st, "web")->n_backends, 1);
	assert_int_equal(sm_backend_get(sm_service_get(l.st, "web"), u1)->weight, 7);

	c = reg("nope", "10.0.0.1", 8080, 1, 0);
	expect(&l, &c, SM_ERR_NOT_FOUND);
	c = reg("web", "2001:db8::1", 8080, 1, 0); /* family differs from the VIP */
	expect(&l, &c, SM_ERR_INVALID);
	c = reg("dsr", "10.0.0.2", 8080, 1, 0); /* dsr cannot change the port */
	expect(&l, &c, SM_ERR_INVALID);
	c = reg("web", "10.0.0.2", 8080, SM_WEIGHT_MAX + 1, 0);
	expect(&l, &c, SM_ERR_INVALID);
	c = reg("web", "10.0.0.2", 8080, 1, 12345);
	expect(&l, &c, SM_ERR_NOT_FOUND);

	/* weight, drain, health, deregister */
	c = be(SM_CMD_BACKEND_WEIGHT, "web", u1, 9);
	expect(&l, &c, SM_ERR_OK);
	assert_int_equal(sm_backend_get(sm_service_get(l.st, "web"), u1)->weight, 9);
	c = be(SM_CMD_BACKEND_WEIGHT, "web", u1, SM_WEIGHT_MAX + 1);
	expect(&l, &c, SM_ERR_INVALID);
	c = be(SM_CMD_BACKEND_WEIGHT, "web", 42, 1);
	expect(&l, &c, SM_ERR_NOT_FOUND);
	c = be(SM_CMD_BACKEND_DRAIN, "web", u1, 1);
	expect(&l, &c, SM_ERR_OK);
	b = sm_backend_get(sm_service_get(l.st, "web"), u1);
	assert_int_equal(sm_backend_state(b), SM_BACKEND_DRAINING);
	assert_int_equal(b->weight, 9); /* kept for the undrain */
	c = be(SM_CMD_BACKEND_DRAIN, "web", u1, 2);
	expect(&l, &c, SM_ERR_INVALID);
	c = be(SM_CMD_BACKEND_HEALTH, "web", u1, SM_BACKEND_DOWN);
	expect(&l, &c, SM_ERR_OK);
	assert_int_equal(sm_backend_state(sm_backend_get(sm_service_get(l.st, "web"), u1)),
			 SM_BACKEND_DOWN);
	c = be(SM_CMD_BACKEND_HEALTH, "web", u1, SM_BACKEND_ACTIVE);
	expect(&l, &c, SM_ERR_OK);
	/* health back up: still draining (the operator's drain is not the health's) */
	assert_int_equal(sm_backend_state(sm_backend_get(sm_service_get(l.st, "web"), u1)),
			 SM_BACKEND_DRAINING);
	c = be(SM_CMD_BACKEND_HEALTH, "web", u1, SM_BACKEND_DRAINING);
	expect(&l, &c, SM_ERR_INVALID);
	c = be(SM_CMD_BACKEND_DRAIN, "web", u1, 0);
	expect(&l, &c, SM_ERR_OK);
	assert_int_equal(sm_backend_state(sm_backend_get(sm_service_get(l.st, "web"), u1)),
			 SM_BACKEND_ACTIVE);
	c = be(SM_CMD_BACKEND_DEREGISTER, "web", u1, 0);
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	assert_int_equal(res.removed, 1);
	assert_null(sm_backend_get(sm_service_get(l.st, "web"), u1));
	expect(&l, &c, SM_ERR_NOT_FOUND);
	c = be(SM_CMD_BACKEND_DEREGISTER, "nope", u1, 0);
	expect(&l, &c, SM_ERR_NOT_FOUND);
	sm_free(l.st);
}

static void test_backend_limits(void **state)
{
	struct log l;
	struct sm_cmd c;
	char a[32];

	(void)state;
	log_init(&l);
	c = svc("small", "192.0.2.100", 80, FWD_MODE_NAT);
	c.u.service.table_size = 7; /* Maglev needs a slot per backend */
	expect(&l, &c, SM_ERR_OK);
	c = svc("capped", "192.0.2.100", 81, FWD_MODE_NAT);
	c.u.service.max_backends = 3;
	expect(&l, &c, SM_ERR_OK);
	for (int i = 0; i < 7; i++) {
		snprintf(a, sizeof(a), "10.0.1.%d", i + 1);
		c = reg("small", a, 80, 1, 0);
		expect(&l, &c, SM_ERR_OK);
		if (i < 3) {
			c = reg("capped", a, 80, 1, 0);
			expect(&l, &c, SM_ERR_OK);
		}
	}
	c = reg("small", "10.0.1.99", 80, 1, 0);
	expect(&l, &c, SM_ERR_LIMIT);
	c = reg("capped", "10.0.1.99", 80, 1, 0);
	expect(&l, &c, SM_ERR_LIMIT);
	c = reg("capped", "10.0.1.1", 80, 4, 0); /* re-registering is not a new one */
	expect(&l, &c, SM_ERR_OK);
	sm_free(l.st);
}

/*
 * Two services growing in turns (the registrations of two clients interleave
 * in the log): past every capacity step, each keeps its backends sorted by
 * uid, findable, with the fields they were registered with, and
 * deregistering half leaves the other half intact.
 */
static void test_backend_growth_interleaved(void **state)
{
	struct log l;
	struct sm_cmd c;
	char a[32];
	const int n = 600;

	(void)state;
	log_init(&l);
	c = svc("one", "192.0.2.100", 80, FWD_MODE_NAT);
	c.u.service.table_size = 1021;
	expect(&l, &c, SM_ERR_OK);
	c = svc("two", "192.0.2.101", 80, FWD_MODE_NAT);
	c.u.service.table_size = 1021;
	expect(&l, &c, SM_ERR_OK);
	for (int i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 200, i % 200 + 1);
		c = reg("one", a, 80, (uint32_t)i + 1, 0);
		assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
		c = reg("two", a, 8080, (uint32_t)i + 7, 0);
		assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
	}
	for (int k = 0; k < 2; k++) {
		const struct sm_service *s = sm_service_get(l.st, k == 0 ? "one" : "two");

		assert_non_null(s);
		assert_int_equal(s->n_backends, n);
		assert_true(s->cap_backends >= s->n_backends);
		for (uint32_t j = 1; j < s->n_backends; j++)
			assert_true(s->backends[j - 1].uid < s->backends[j].uid);
		for (int i = 0; i < n; i++) {
			snprintf(a, sizeof(a), "10.1.%d.%d", i / 200, i % 200 + 1);
			const struct sm_backend *b =
			    sm_backend_get(s, uid_of(a, k == 0 ? 80 : 8080));
			assert_non_null(b);
			assert_int_equal(b->weight, (uint32_t)i + (k == 0 ? 1 : 7));
		}
	}
	for (int i = 0; i < n; i += 2) {
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 200, i % 200 + 1);
		c = be(SM_CMD_BACKEND_DEREGISTER, "one", uid_of(a, 80), 0);
		assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
	}
	const struct sm_service *one = sm_service_get(l.st, "one");
	assert_int_equal(one->n_backends, n / 2);
	for (int i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 200, i % 200 + 1);
		assert_true((sm_backend_get(one, uid_of(a, 80)) != NULL) == (i % 2 == 1));
	}
	sm_free(l.st);
}

static void test_leases(void **state)
{
	struct log l;
	struct sm_cmd c;
	struct sm_result res;
	uint64_t l1, l2, l3;
	const struct sm_lease *ls;

	(void)state;
	base_setup(&l);
	c = grant(0, 10000, "web");
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	l1 = res.lease;
	assert_int_equal(l1, l.index); /* ids are grant indexes */
	ls = sm_lease_get(l.st, l1);
	assert_non_null(ls);
	assert_int_equal(ls->ttl_ms, 10000);
	assert_string_equal(ls->service, "web");
	assert_int_equal(ls->granted, l1);
	assert_int_equal(ls->renewed, l1);

	c = grant(0, 10, "web");
	expect(&l, &c, SM_ERR_INVALID); /* ttl too short */
	c = grant(0, 10000, "nope");
	expect(&l, &c, SM_ERR_NOT_FOUND);
	c = grant(999, 10000, "");
	expect(&l, &c, SM_ERR_NOT_FOUND); /* an expired lease is not recreated */
	c = grant(l1, 10000, "dsr");
	expect(&l, &c, SM_ERR_INVALID); /* renewal cannot change the scope */

	c = reg("web", "10.0.0.1", 8080, 1, l1);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.2", 8080, 1, l1);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.3", 8080, 1, 0); /* static */
	expect(&l, &c, SM_ERR_OK);
	c = reg("dsr", "10.0.0.1", 80, 1, l1); /* lease scoped to web */
	expect(&l, &c, SM_ERR_INVALID);
	assert_int_equal(
	    sm_backend_get(sm_service_get(l.st, "web"), uid_of("10.0.0.1", 8080))->lease, l1);

	/* revoke removes exactly the lease's backends */
	c = simple(SM_CMD_LEASE_REVOKE);
	c.u.lease.id = l1;
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	assert_int_equal(res.removed, 2);
	assert_int_equal(sm_service_get(l.st, "web")->n_backends, 1);
	assert_null(sm_lease_get(l.st, l1));
	expect(&l, &c, SM_ERR_NOT_FOUND);

	/* expiry: l2 unrenewed, l3 renewed after the leader decided */
	c = grant(0, 10000, "web");
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	l2 = res.lease;
	c = grant(0, 10000, "web");
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	l3 = res.lease;
	c = reg("web", "10.0.0.4", 8080, 1, l2);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.5", 8080, 1, l3);
	expect(&l, &c, SM_ERR_OK);
	struct sm_cmd ex = simple(SM_CMD_LEASE_EXPIRE);
	ex.u.expire.n = 3;
	ex.u.expire.refs[0] = (struct sm_lease_ref){l2, sm_lease_get(l.st, l2)->renewed};
	ex.u.expire.refs[1] = (struct sm_lease_ref){l3, sm_lease_get(l.st, l3)->renewed};
	ex.u.expire.refs[2] = (struct sm_lease_ref){l1, l1}; /* already revoked: skipped */
	/* the renewal is committed between the leader's decision and the expiry */
	c = grant(l3, 20000, "");
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	assert_int_equal(res.lease, l3);
	assert_int_equal(sm_lease_get(l.st, l3)->renewed, l.index);
	assert_int_equal(sm_lease_get(l.st, l3)->ttl_ms, 20000);
	assert_int_equal(run(&l, &ex, &res), SM_ERR_OK);
	assert_int_equal(res.count, 1);
	assert_int_equal(res.removed, 1);
	assert_null(sm_lease_get(l.st, l2));
	assert_non_null(sm_lease_get(l.st, l3));
	assert_null(sm_backend_get(sm_service_get(l.st, "web"), uid_of("10.0.0.4", 8080)));
	assert_non_null(sm_backend_get(sm_service_get(l.st, "web"), uid_of("10.0.0.5", 8080)));
	/* the same expiry applied again (late duplicate) changes nothing */
	assert_int_equal(run(&l, &ex, &res), SM_ERR_OK);
	assert_int_equal(res.count, 0);
	/* re-registration moves a backend to a new lease */
	c = reg("web", "10.0.0.5", 8080, 1, 0);
	expect(&l, &c, SM_ERR_OK);
	ex.u.expire.n = 1;
	ex.u.expire.refs[0] = (struct sm_lease_ref){l3, sm_lease_get(l.st, l3)->renewed};
	assert_int_equal(run(&l, &ex, &res), SM_ERR_OK);
	assert_int_equal(res.count, 1);
	assert_int_equal(res.removed, 0);
	assert_non_null(sm_backend_get(sm_service_get(l.st, "web"), uid_of("10.0.0.5", 8080)));
	ex.u.expire.n = 0;
	{
		struct sm_err err;
		uint8_t buf[SM_CMD_MAX_LEN];
		assert_int_equal(sm_validate(l.st, &ex, &err), SM_ERR_INVALID);
		assert_int_equal(sm_cmd_encode(&ex, buf, sizeof(buf)), -EINVAL);
	}
	sm_free(l.st);
}

static void test_seed_and_members(void **state)
{
	struct log l;
	struct sm_cmd c;
	uint64_t seed = 0;

	(void)state;
	log_init(&l);
	assert_int_equal(sm_hash_seed(l.st, &seed), 0);
	c = simple(SM_CMD_SET_HASH_SEED);
	c.u.seed = 0x1234;
	expect(&l, &c, SM_ERR_OK);
	expect(&l, &c, SM_ERR_OK); /* the same value again: idempotent bootstrap */
	assert_int_equal(sm_hash_seed(l.st, &seed), 1);
	assert_int_equal(seed, 0x1234);
	c.u.seed = 0x5678;
	expect(&l, &c, SM_ERR_CONFLICT);

	c = simple(SM_CMD_MEMBER_ADD);
	c.u.member.id = 2;
	snprintf(c.u.member.raft_addr, sizeof(c.u.member.raft_addr), "127.0.0.1:7002");
	snprintf(c.u.member.api_addr, sizeof(c.u.member.api_addr), "127.0.0.1:8002");
	expect(&l, &c, SM_ERR_OK);
	expect(&l, &c, SM_ERR_EXISTS);
	c.u.member.id = 1;
	expect(&l, &c, SM_ERR_CONFLICT); /* same raft address */
	snprintf(c.u.member.raft_addr, sizeof(c.u.member.raft_addr), "127.0.0.1:7001");
	snprintf(c.u.member.api_addr, sizeof(c.u.member.api_addr), "127.0.0.1:8001");
	expect(&l, &c, SM_ERR_OK);
	assert_int_equal(sm_member_count(l.st), 2);
	assert_int_equal(sm_member_at(l.st, 0)->id, 1);
	assert_string_equal(sm_member_get(l.st, 2)->api_addr, "127.0.0.1:8002");
	c.u.member.id = 0;
	expect(&l, &c, SM_ERR_INVALID);
	c.u.member.id = 3;
	snprintf(c.u.member.raft_addr, sizeof(c.u.member.raft_addr), "no port");
	expect(&l, &c, SM_ERR_INVALID);
	c = simple(SM_CMD_MEMBER_REMOVE);
	c.u.member.id = 2;
	expect(&l, &c, SM_ERR_OK);
	expect(&l, &c, SM_ERR_NOT_FOUND);
	assert_null(sm_member_get(l.st, 2));
	sm_free(l.st);
}

/* Commands validated against one state may be invalid by the time they commit. */
static void test_apply_became_invalid(void **state)
{
	struct log l;
	struct sm_cmd a, b;
	struct sm_err err;
	struct sm_result res;
	uint8_t junk[3] = {1, 200, 7};
	uint64_t d;

	(void)state;
	log_init(&l);
	a = svc("one", "192.0.2.1", 80, FWD_MODE_NAT);
	b = svc("two", "192.0.2.1", 80, FWD_MODE_NAT);
	assert_int_equal(sm_validate(l.st, &a, &err), SM_ERR_OK);
	assert_int_equal(sm_validate(l.st, &b, &err), SM_ERR_OK);
	assert_int_equal(run(&l, &a, NULL), SM_ERR_OK);
	d = sm_digest(l.st);
	assert_int_equal(run(&l, &b, &res), SM_ERR_CONFLICT);
	assert_true(strstr(res.msg, "one") != NULL);
	assert_int_equal(sm_revision(l.st), 2);
	assert_null(sm_service_get(l.st, "two"));
	assert_int_not_equal(sm_digest(l.st), d); /* the revision is in the digest */

	/* undecodable bytes: a no-op that still advances */
	assert_int_equal(sm_apply(l.st, 3, junk, sizeof(junk), &res), 0);
	assert_int_equal(res.code, SM_ERR_DECODE);
	assert_int_equal(sm_revision(l.st), 3);
	/* an index that does not advance is the caller's bug */
	assert_int_equal(sm_apply(l.st, 3, junk, sizeof(junk), &res), -EINVAL);
	assert_int_equal(sm_advance(l.st, 2), -EINVAL);
	assert_int_equal(sm_advance(l.st, 10), 0);
	assert_int_equal(sm_revision(l.st), 10);
	sm_free(l.st);
}

/* ---- random logs ------------------------------------------------------ */

static const char *const names[] = {"alpha", "beta", "gamma", "delta"};

/* A random command that is often (not always) valid against st. */
static struct sm_cmd random_cmd(const struct sm_state *st, uint64_t *rng)
{
	struct sm_cmd c;
	const char *name = names[tu_below(rng, 4)];
	char a[32];
	uint32_t pick = (uint32_t)tu_below(rng, 100);
	const struct sm_service *s = sm_service_get(st, name);

	snprintf(a, sizeof(a), "10.1.0.%u", (unsigned)(1 + tu_below(rng, 24)));
	if (pick < 8) {
		c = svc(name, "198.51.100.10", (uint16_t)(80 + tu_below(rng, 3)),
			(uint8_t)(tu_below(rng, 4) ? FWD_MODE_NAT : FWD_MODE_DSR));
		c.u.service.table_size = tu_below(rng, 2) ? 251 : 1009;
		if (pick < 3)
			c.type = SM_CMD_SERVICE_UPDATE;
	} else if (pick < 10) {
		c = simple(SM_CMD_SERVICE_DELETE);
		snprintf(c.u.del.service, sizeof(c.u.del.service), "%s", name);
	} else if (pick < 45) {
		uint64_t lease = 0;
		if (tu_below(rng, 2) && sm_lease_count(st) > 0)
			lease = sm_lease_at(st, (uint32_t)tu_below(rng, sm_lease_count(st)))->id;
		c = reg(name, a, s != NULL && s->def.mode == FWD_MODE_DSR ? s->def.port : 8080,
			(uint32_t)tu_below(rng, 5), lease);
	} else if (pick < 75) {
		static const uint8_t types[] = {SM_CMD_BACKEND_WEIGHT, SM_CMD_BACKEND_DRAIN,
						SM_CMD_BACKEND_HEALTH, SM_CMD_BACKEND_DEREGISTER};
		uint8_t t = types[tu_below(rng, 4)];
		uint32_t uid = 1;
		if (s != NULL && s->n_backends > 0)
			uid = s->backends[tu_below(rng, s->n_backends)].uid;
		c = be(t, name, uid,
		       t == SM_CMD_BACKEND_HEALTH
			   ? (tu_below(rng, 2) ? SM_BACKEND_DOWN : 0)
			   : (uint32_t)tu_below(rng, t == SM_CMD_BACKEND_DRAIN ? 2 : 6));
	} else if (pick < 85) {
		uint64_t id = 0;
		if (tu_below(rng, 3) == 0 && sm_lease_count(st) > 0)
			id = sm_lease_at(st, (uint32_t)tu_below(rng, sm_lease_count(st)))->id;
		c = grant(id, 5000, id ? "" : name);
	} else if (pick < 90) {
		c = simple(SM_CMD_LEASE_REVOKE);
		c.u.lease.id = sm_lease_count(st) ? sm_lease_at(st, 0)->id : 77;
	} else if (pick < 96) {
		c = simple(SM_CMD_LEASE_EXPIRE);
		c.u.expire.n = 1 + (uint32_t)tu_below(rng, 3);
		for (uint32_t i = 0; i < c.u.expire.n; i++) {
			uint32_t n = sm_lease_count(st);
			const struct sm_lease *ls =
			    n ? sm_lease_at(st, (uint32_t)tu_below(rng, n)) : NULL;
			c.u.expire.refs[i].id = ls ? ls->id : 5;
			c.u.expire.refs[i].renewed =
			    ls ? ls->renewed - (tu_below(rng, 4) == 0 ? 1 : 0) : 5;
		}
	} else if (pick < 98) {
		c = simple(SM_CMD_SET_HASH_SEED);
		c.u.seed = 0xfeedULL + tu_below(rng, 2);
	} else {
		c = simple(tu_below(rng, 2) ? SM_CMD_MEMBER_ADD : SM_CMD_MEMBER_REMOVE);
		c.u.member.id = 1 + tu_below(rng, 3);
		snprintf(c.u.member.raft_addr, sizeof(c.u.member.raft_addr), "10.9.0.%u:7000",
			 (unsigned)c.u.member.id);
		snprintf(c.u.member.api_addr, sizeof(c.u.member.api_addr), "10.9.0.%u:8000",
			 (unsigned)c.u.member.id);
	}
	return c;
}

#define LOG_LEN 600

/* A log of encoded commands, generated against a reference state. */
struct enc_log {
	uint8_t *bytes[LOG_LEN];
	int len[LOG_LEN];
};

static void make_log(struct enc_log *el, uint64_t seed)
{
	uint64_t rng = seed;
	struct log ref;
	unsigned ok = 0;

	log_init(&ref);
	for (unsigned i = 0; i < LOG_LEN; i++) {
		struct sm_cmd c = random_cmd(ref.st, &rng);
		el->bytes[i] = malloc(SM_CMD_MAX_LEN);
		assert_non_null(el->bytes[i]);
		el->len[i] = sm_cmd_encode(&c, el->bytes[i], SM_CMD_MAX_LEN);
		assert_true(el->len[i] > 0);
		ok += run(&ref, &c, NULL) == SM_ERR_OK;
	}
	/* the generator must exercise real changes, not only refusals */
	assert_true(ok > LOG_LEN / 3);
	assert_true(sm_service_count(ref.st) > 0);
	sm_free(ref.st);
}

static void free_log(struct enc_log *el)
{
	for (unsigned i = 0; i < LOG_LEN; i++)
		free(el->bytes[i]);
}

static const struct sm_node_params node_params = {
    .port_mac = {2, 0, 0, 0, 0, 1},
    .gateway_mac = {2, 0, 0, 0, 0, 0xfe},
    .node_v4 = {.family = ADDR_V4, .b = {198, 51, 100, 2}},
    .n_workers = 2,
};

static struct fwd_state *build_fwd(const struct sm_state *st)
{
	struct fwd_spec spec;
	struct fwd_state *fs;
	char err[256];

	assert_int_equal(sm_to_spec(st, &node_params, &spec), 0);
	assert_int_equal(spec.revision, sm_revision(st));
	fs = fwd_state_build(&spec, err, sizeof(err));
	if (fs == NULL)
		fail_msg("fwd_state_build: %s", err);
	sm_spec_free(&spec);
	return fs;
}

/* Slot by slot, by backend identity (uid), not index. */
static void assert_same_tables(const struct fwd_state *a, const struct fwd_state *b)
{
	assert_int_equal(a->n_services, b->n_services);
	assert_int_equal(a->hash_seed, b->hash_seed);
	assert_int_equal(a->revision, b->revision);
	for (uint32_t i = 0; i < a->n_services; i++) {
		const struct fwd_service *x = &a->services[i], *y = &b->services[i];
		assert_true(addr_eq(&x->vip, &y->vip));
		assert_int_equal(x->port, y->port);
		assert_int_equal(x->n_backends, y->n_backends);
		assert_int_equal(x->table.size, y->table.size);
		for (uint32_t k = 0; k < x->table.size; k++) {
			uint32_t ex = x->table.entry[k], ey = y->table.entry[k];
			uint32_t ux = ex == MAGLEV_NONE ? 0 : x->backends[ex].uid;
			uint32_t uy = ey == MAGLEV_NONE ? 0 : y->backends[ey].uid;
			assert_int_equal(ux, uy);
		}
	}
}

static void test_determinism(void **state)
{
	struct enc_log el;
	struct sm_state *st[3];
	struct fwd_state *fs[3];
	unsigned checked = 0;

	(void)state;
	make_log(&el, 0x5eed0001);
	for (int n = 0; n < 3; n++)
		assert_non_null(st[n] = sm_new());
	for (unsigned i = 0; i < LOG_LEN; i++) {
		for (int n = 0; n < 3; n++)
			assert_int_equal(
			    sm_apply(st[n], i + 1, el.bytes[i], (size_t)el.len[i], NULL), 0);
		assert_int_equal(sm_digest(st[0]), sm_digest(st[1]));
		assert_int_equal(sm_digest(st[0]), sm_digest(st[2]));
		if (i % 50 == 49) {
			for (int n = 0; n < 3; n++)
				fs[n] = build_fwd(st[n]);
			assert_same_tables(fs[0], fs[1]);
			assert_same_tables(fs[0], fs[2]);
			for (uint32_t k = 0; k < fs[0]->n_services; k++)
				checked += fs[0]->services[k].table.size;
			for (int n = 0; n < 3; n++)
				fwd_state_free(fs[n]);
		}
	}
	assert_true(checked > 0);
	for (int n = 0; n < 3; n++)
		sm_free(st[n]);
	free_log(&el);
}

/*
 * A service this node cannot serve (an IPv6 nat service, and this node has
 * no IPv6 address; a tunnel service without an IPv4 one) is left out of the
 * node's spec and counted, and the rest still builds; with the addresses it
 * is in.
 */
static void test_spec_unservable(void **state)
{
	struct log l;
	struct sm_cmd c;
	struct fwd_spec spec;
	struct fwd_state *fs;
	uint32_t skipped = 99;
	char err[256];

	(void)state;
	base_setup(&l); /* v4: web (nat), dsr */
	c = svc("web6", "2001:db8::100", 80, FWD_MODE_NAT);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web6", "2001:db8::11", 8080, 1, 0);
	expect(&l, &c, SM_ERR_OK);
	c = svc("tun", "192.0.2.102", 80, FWD_MODE_TUNNEL);
	expect(&l, &c, SM_ERR_OK);

	struct sm_node_params np = node_params; /* IPv4 node address only */
	np.skipped = &skipped;
	assert_int_equal(sm_to_spec(l.st, &np, &spec), 0);
	assert_int_equal(skipped, 1);
	assert_int_equal(spec.n_services, 3);
	for (uint32_t i = 0; i < spec.n_services; i++)
		assert_int_not_equal(spec.services[i].vip.family, ADDR_V6);
	fs = fwd_state_build(&spec, err, sizeof(err));
	if (fs == NULL)
		fail_msg("%s", err);
	fwd_state_free(fs);
	sm_spec_free(&spec);

	np.node_v6 = A("2001:db8::2");
	assert_int_equal(sm_to_spec(l.st, &np, &spec), 0);
	assert_int_equal(skipped, 0);
	assert_int_equal(spec.n_services, 4);
	fs = fwd_state_build(&spec, err, sizeof(err));
	if (fs == NULL)
		fail_msg("%s", err);
	fwd_state_free(fs);
	sm_spec_free(&spec);

	np.node_v4.family = ADDR_NONE; /* now tunnel and the v4 nat service cannot be served */
	memset(np.node_v4.b, 0, sizeof(np.node_v4.b));
	assert_int_equal(sm_to_spec(l.st, &np, &spec), 0);
	assert_int_equal(skipped, 2);
	assert_int_equal(spec.n_services, 2);
	sm_spec_free(&spec);
	sm_free(l.st);
}

/* Down backends leave the spec; draining ones stay at weight 0. */
static void test_spec(void **state)
{
	struct log l;
	struct sm_cmd c;
	struct fwd_spec spec;
	struct fwd_state *fs;
	uint32_t u1 = uid_of("10.0.0.1", 8080), u2 = uid_of("10.0.0.2", 8080),
		 u3 = uid_of("10.0.0.3", 8080);
	char err[256];

	(void)state;
	base_setup(&l);
	c = simple(SM_CMD_SET_HASH_SEED);
	c.u.seed = 77;
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.1", 8080, 3, 0);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.2", 8080, 3, 0);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.3", 8080, 3, 0);
	expect(&l, &c, SM_ERR_OK);
	c = be(SM_CMD_BACKEND_DRAIN, "web", u2, 1);
	expect(&l, &c, SM_ERR_OK);
	c = be(SM_CMD_BACKEND_HEALTH, "web", u3, SM_BACKEND_DOWN);
	expect(&l, &c, SM_ERR_OK);

	struct fwd_spec none;
	struct sm_node_params bad = node_params;
	bad.n_workers = 0;
	assert_int_equal(sm_to_spec(l.st, &bad, &none), -EINVAL);

	assert_int_equal(sm_to_spec(l.st, &node_params, &spec), 0);
	assert_int_equal(spec.revision, l.index);
	assert_int_equal(spec.hash_seed, 77);
	assert_int_equal(spec.n_workers, 2);
	assert_int_equal(spec.n_services, 2);
	/* name order: dsr, web */
	assert_int_equal(spec.services[0].mode, FWD_MODE_DSR);
	assert_int_equal(spec.services[1].n_backends, 2);
	for (uint32_t i = 0; i < 2; i++) {
		const struct fwd_backend_spec *b = &spec.services[1].backends[i];
		assert_int_not_equal(b->uid, u3);
		assert_int_equal(b->weight, b->uid == u2 ? 0 : 3);
		assert_int_equal(b->mac_ok, 0);
	}
	fs = fwd_state_build(&spec, err, sizeof(err));
	if (fs == NULL)
		fail_msg("%s", err);
	/* only u1 owns slots */
	const struct fwd_service *fsv = &fs->services[fwd_find_service(
	    fs, &(struct addr){.family = ADDR_V4, .b = {192, 0, 2, 100}}, 80, IPPROTO_TCP)];
	for (uint32_t k = 0; k < fsv->table.size; k++)
		assert_int_equal(fsv->backends[fsv->table.entry[k]].uid, u1);
	fwd_state_free(fs);
	sm_spec_free(&spec);
	sm_free(l.st);
}

static void test_queries(void **state)
{
	struct log l;
	struct sm_cmd c;
	const struct sm_backend *list[8];
	struct sm_endpoint ep[8];
	uint32_t u1 = uid_of("10.0.0.1", 8080), u2 = uid_of("10.0.0.2", 8080);

	(void)state;
	base_setup(&l);
	c = reg("web", "10.0.0.1", 8080, 3, 0);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.2", 8080, 4, 0);
	expect(&l, &c, SM_ERR_OK);
	c = reg("web", "10.0.0.3", 8080, 5, 0);
	expect(&l, &c, SM_ERR_OK);
	c = be(SM_CMD_BACKEND_DRAIN, "web", u2, 1);
	expect(&l, &c, SM_ERR_OK);
	assert_int_equal(sm_backend_list(l.st, "web", 0, list, 8), 3);
	for (int i = 1; i < 3; i++)
		assert_true(list[i - 1]->uid < list[i]->uid);
	assert_int_equal(sm_backend_list(l.st, "web", 0, NULL, 0), 3);
	assert_int_equal(sm_backend_list(l.st, "web", 0, list, 1), 3); /* count beyond cap */
	assert_int_equal(sm_backend_list(l.st, "web", SM_FILTER_HEALTHY, list, 8), 2);
	assert_int_equal(sm_backend_list(l.st, "nope", 0, list, 8), -ENOENT);
	assert_int_equal(sm_endpoints(l.st, "web", 0, ep, 8), 3);
	for (int i = 0; i < 3; i++) {
		if (ep[i].uid == u2) {
			assert_int_equal(ep[i].weight, 0);
			assert_int_equal(ep[i].state, SM_BACKEND_DRAINING);
		} else {
			assert_int_not_equal(ep[i].weight, 0);
		}
		assert_int_equal(ep[i].port, 8080);
	}
	assert_int_equal(sm_endpoints(l.st, "web", SM_FILTER_HEALTHY, ep, 8), 2);
	assert_int_equal(ep[0].uid == u1 || ep[1].uid == u1, 1);
	assert_int_equal(sm_endpoints(l.st, "nope", 0, ep, 8), -ENOENT);
	assert_null(sm_service_get(l.st, "nope"));
	assert_null(sm_lease_at(l.st, 0));
	assert_null(sm_member_at(l.st, 0));
	sm_free(l.st);
}

/* ---- snapshots -------------------------------------------------------- */

static void test_snapshot_roundtrip(void **state)
{
	struct enc_log el;
	struct sm_state *a = sm_new(), *b = sm_new(), *empty = sm_new();
	uint8_t *snap, *snap2;
	size_t len, len2;

	(void)state;
	make_log(&el, 0x5eed0002);
	assert_non_null(a);
	assert_non_null(b);
	/* the empty state round-trips */
	assert_int_equal(sm_snapshot(empty, &snap, &len), 0);
	assert_int_equal(sm_restore(b, snap, len), 0);
	assert_int_equal(sm_digest(b), sm_digest(empty));
	free(snap);

	for (unsigned i = 0; i < LOG_LEN / 2; i++)
		assert_int_equal(sm_apply(a, i + 1, el.bytes[i], (size_t)el.len[i], NULL), 0);
	assert_int_equal(sm_snapshot(a, &snap, &len), 0);
	assert_int_equal(sm_restore(b, snap, len), 0);
	assert_int_equal(sm_digest(a), sm_digest(b));
	assert_int_equal(sm_revision(b), LOG_LEN / 2);
	assert_int_equal(sm_snapshot(b, &snap2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(snap, snap2, len);
	free(snap2);
	{
		/* the digest only sees what is serialised: compare the tables as well */
		struct fwd_state *fa = build_fwd(a), *fb = build_fwd(b);
		assert_same_tables(fa, fb);
		fwd_state_free(fa);
		fwd_state_free(fb);
	}
	for (unsigned i = LOG_LEN / 2; i < LOG_LEN; i++) {
		assert_int_equal(sm_apply(a, i + 1, el.bytes[i], (size_t)el.len[i], NULL), 0);
		assert_int_equal(sm_apply(b, i + 1, el.bytes[i], (size_t)el.len[i], NULL), 0);
		assert_int_equal(sm_digest(a), sm_digest(b));
	}
	/* restore replaces whatever was there */
	assert_int_equal(sm_restore(b, snap, len), 0);
	assert_int_equal(sm_revision(b), LOG_LEN / 2);
	assert_int_not_equal(sm_digest(a), sm_digest(b));
	free(snap);
	sm_free(a);
	sm_free(b);
	sm_free(empty);
	free_log(&el);
}

/* A small but complete state (every kind of object) for the hostile-bytes tests. */
static struct sm_state *rich_state(void)
{
	struct log l;
	struct sm_cmd c;
	struct sm_result res;

	base_setup(&l);
	c = simple(SM_CMD_SET_HASH_SEED);
	c.u.seed = 99;
	run(&l, &c, NULL);
	c = simple(SM_CMD_MEMBER_ADD);
	c.u.member.id = 1;
	snprintf(c.u.member.raft_addr, sizeof(c.u.member.raft_addr), "h1:7000");
	snprintf(c.u.member.api_addr, sizeof(c.u.member.api_addr), "h1:8000");
	assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
	c = grant(0, 5000, "web");
	assert_int_equal(run(&l, &c, &res), SM_ERR_OK);
	c = reg("web", "10.0.0.1", 8080, 2, res.lease);
	assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
	c = reg("web", "10.0.0.2", 0, 2, 0);
	assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
	c = reg("dsr", "10.0.0.2", 80, 1, 0);
	assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
	c = be(SM_CMD_BACKEND_DRAIN, "web", uid_of("10.0.0.2", 80), 1);
	assert_int_equal(run(&l, &c, NULL), SM_ERR_OK);
	return l.st;
}

static void test_snapshot_hostile(void **state)
{
	struct sm_state *src = rich_state(), *dst = sm_new();
	uint8_t *snap, *mut, *again;
	size_t len, alen;
	uint64_t rng = 0xbadc0de, d0;
	unsigned accepted = 0;

	(void)state;
	assert_int_equal(sm_snapshot(src, &snap, &len), 0);
	assert_int_equal(sm_restore(dst, snap, len), 0);
	d0 = sm_digest(dst);
	/* every truncation is refused and leaves the state as it was */
	for (size_t n = 0; n < len; n++) {
		uint8_t *t = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
		memcpy(t, snap, n);
		assert_int_equal(sm_restore(dst, t, n), -EINVAL);
		free(t);
	}
	assert_int_equal(sm_digest(dst), d0);
	/* trailing garbage too */
	mut = malloc(len + 1);
	memcpy(mut, snap, len);
	mut[len] = 0;
	assert_int_equal(sm_restore(dst, mut, len + 1), -EINVAL);
	free(mut);
	/* random mutations: never a crash; anything accepted is canonical */
	for (unsigned it = 0; it < 20000; it++) {
		mut = malloc(len);
		memcpy(mut, snap, len);
		for (unsigned k = 1 + (unsigned)tu_below(&rng, 3); k > 0; k--)
			mut[tu_below(&rng, len)] ^= (uint8_t)(1u << tu_below(&rng, 8));
		if (sm_restore(dst, mut, len) == 0) {
			accepted++;
			assert_int_equal(sm_snapshot(dst, &again, &alen), 0);
			assert_int_equal(alen, len);
			assert_memory_equal(again, mut, len);
			free(again);
		} else {
			assert_int_equal(sm_digest(dst), d0);
		}
		if (sm_digest(dst) != d0)
			assert_int_equal(sm_restore(dst, snap, len), 0);
		free(mut);
	}
	/* some flips (a weight, a TTL) are legitimate states; most are not */
	assert_true(accepted > 0 && accepted < 20000);
	assert_int_equal(sm_restore(dst, NULL, 0), -EINVAL);
	free(snap);
	sm_free(src);
	sm_free(dst);
}

static void test_cmd_hostile(void **state)
{
	struct enc_log el;
	struct sm_cmd c, c2;
	uint8_t buf[SM_CMD_MAX_LEN];
	uint64_t rng = 0xfeedface;
	struct sm_state *st = rich_state();
	uint64_t index = 1000;
	unsigned decoded = 0;

	(void)state;
	make_log(&el, 0x5eed0003);
	/* round trip of every command in the log */
	for (unsigned i = 0; i < LOG_LEN; i++) {
		assert_int_equal(sm_cmd_decode(el.bytes[i], (size_t)el.len[i], &c), 0);
		assert_int_equal(sm_cmd_encode(&c, buf, sizeof(buf)), el.len[i]);
		assert_memory_equal(buf, el.bytes[i], (size_t)el.len[i]);
	}
	/* every truncation of every command type is refused */
	for (unsigned i = 0; i < LOG_LEN; i += 7) {
		for (int n = 0; n < el.len[i]; n++) {
			uint8_t *t = malloc(n ? (size_t)n : 1);
			memcpy(t, el.bytes[i], (size_t)n);
			assert_int_equal(sm_cmd_decode(t, (size_t)n, &c), -EINVAL);
			free(t);
		}
	}
	/* mutations: decode never crashes; what decodes re-encodes the same and applies */
	for (unsigned it = 0; it < 30000; it++) {
		unsigned i = (unsigned)tu_below(&rng, LOG_LEN);
		size_t n = (size_t)el.len[i];
		uint8_t *m = malloc(n);
		struct sm_result res;
		memcpy(m, el.bytes[i], n);
		for (unsigned k = 1 + (unsigned)tu_below(&rng, 3); k > 0; k--)
			m[tu_below(&rng, n)] = (uint8_t)tu_rand(&rng);
		if (sm_cmd_decode(m, n, &c) == 0) {
			decoded++;
			assert_int_equal(sm_cmd_encode(&c, buf, sizeof(buf)), (int)n);
			assert_memory_equal(buf, m, n);
			assert_int_equal(sm_cmd_decode(buf, n, &c2), 0);
		}
		assert_int_equal(sm_apply(st, ++index, m, n, &res), 0);
		assert_true(res.code < SM_ERR__COUNT);
		free(m);
	}
	assert_true(decoded > 0);
	/* unknown version and type, encode with too small a buffer */
	c = simple(SM_CMD_SET_HASH_SEED);
	assert_int_equal(sm_cmd_encode(&c, buf, 4), -ENOSPC);
	int n = sm_cmd_encode(&c, buf, sizeof(buf));
	assert_int_equal(n, 10);
	buf[0] = 2;
	assert_int_equal(sm_cmd_decode(buf, (size_t)n, &c), -EINVAL);
	buf[0] = 1;
	buf[1] = 99;
	assert_int_equal(sm_cmd_decode(buf, (size_t)n, &c), -EINVAL);
	c = simple(99);
	assert_int_equal(sm_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	sm_free(st);
	free_log(&el);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errcode_strings),
	    cmocka_unit_test(test_service_create),
	    cmocka_unit_test(test_service_limit),
	    cmocka_unit_test(test_service_update_delete),
	    cmocka_unit_test(test_backend_commands),
	    cmocka_unit_test(test_backend_limits),
	    cmocka_unit_test(test_backend_growth_interleaved),
	    cmocka_unit_test(test_leases),
	    cmocka_unit_test(test_seed_and_members),
	    cmocka_unit_test(test_apply_became_invalid),
	    cmocka_unit_test(test_queries),
	    cmocka_unit_test(test_spec),
	    cmocka_unit_test(test_spec_unservable),
	    cmocka_unit_test(test_determinism),
	    cmocka_unit_test(test_snapshot_roundtrip),
	    cmocka_unit_test(test_snapshot_hostile),
	    cmocka_unit_test(test_cmd_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
