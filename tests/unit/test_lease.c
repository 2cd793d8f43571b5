/* test_lease: the leader's lease deadline tracker against a real sm_state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "controlplane/lease.h"
#include "controlplane/sm.h"
#include "dataplane/fwd.h"

struct fx {
	struct sm_state *st;
	uint64_t index;
};

static struct sm_result run(struct fx *f, const struct sm_cmd *c)
{
	uint8_t buf[SM_CMD_MAX_LEN];
	struct sm_result res;
	int len = sm_cmd_encode(c, buf, sizeof(buf));

	assert_true(len > 0);
	memset(&res, 0, sizeof(res));
	assert_int_equal(sm_apply(f->st, ++f->index, buf, (size_t)len, &res), 0);
	return res;
}

static void setup_fx(struct fx *f)
{
	struct sm_cmd c;

	memset(f, 0, sizeof(*f));
	f->st = sm_new();
	assert_non_null(f->st);
	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_SERVICE_CREATE;
	snprintf(c.u.service.name, sizeof(c.u.service.name), "web");
	assert_int_equal(addr_parse("10.0.0.10", &c.u.service.vip), 0);
	c.u.service.port = 80;
	c.u.service.proto = IPPROTO_TCP;
	c.u.service.mode = FWD_MODE_NAT;
	c.u.service.algorithm = SM_ALG_MAGLEV;
	c.u.service.table_size = 251;
	assert_int_equal(run(f, &c).code, SM_ERR_OK);
}

static uint64_t grant(struct fx *f, uint32_t ttl)
{
	struct sm_cmd c;
	struct sm_result r;

	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_LEASE_GRANT;
	c.u.lease.ttl_ms = ttl;
	snprintf(c.u.lease.service, sizeof(c.u.lease.service), "web");
	r = run(f, &c);
	assert_int_equal(r.code, SM_ERR_OK);
	return r.lease;
}

static void test_keepalive_extends(void **state)
{
	struct fx f;
	struct lease_tracker *t = lease_tracker_new();
	struct sm_lease_ref refs[4];
	uint64_t id;
	uint32_t ttl = 0;
	uint64_t now;

	(void)state;
	setup_fx(&f);
	id = grant(&f, 1000);
	assert_int_equal(lease_reset(t, f.st, 0), 0);
	assert_int_equal(lease_count(t), 1);
	assert_int_equal(lease_next_deadline(t), 1000);
	/* Keep it alive every 900 ms for 10 s: it never expires. */
	for (now = 900; now < 10000; now += 900) {
		assert_int_equal(lease_collect_expired(t, now, refs, 4), 0);
		assert_int_equal(lease_keepalive(t, id, now, &ttl), LEASE_KA_OK);
		assert_int_equal(ttl, 1000);
		assert_int_equal(lease_next_deadline(t), now + 1000);
	}
	/* Stop: it expires exactly one TTL after the last keepalive. */
	now -= 900;
	assert_int_equal(lease_collect_expired(t, now + 999, refs, 4), 0);
	assert_int_equal(lease_collect_expired(t, now + 1000, refs, 4), 1);
	assert_int_equal(refs[0].id, id);
	assert_int_equal(refs[0].renewed, id);
	assert_int_equal(lease_keepalive(t, 999999, now, NULL), LEASE_KA_NOT_FOUND);
	lease_tracker_free(t);
	sm_free(f.st);
}

static void test_expiry_proposed_and_applied(void **state)
{
	struct fx f;
	struct lease_tracker *t = lease_tracker_new();
	struct sm_lease_ref refs[4];
	struct sm_cmd c;
	struct sm_result r;
	uint64_t a, b;

	(void)state;
	setup_fx(&f);
	a = grant(&f, 1000);
	b = grant(&f, 5000);
	assert_int_equal(lease_reset(t, f.st, 100), 0);
	assert_int_equal(lease_collect_expired(t, 1099, refs, 4), 0);
	assert_int_equal(lease_collect_expired(t, 1100, refs, 4), 1);
	assert_int_equal(refs[0].id, a);
	/* Pending: not handed out twice. */
	assert_int_equal(lease_collect_expired(t, 2000, refs + 1, 3), 0);
	/* The proposal failed: retried. */
	lease_expire_failed(t, refs, 1);
	assert_int_equal(lease_collect_expired(t, 2000, refs, 4), 1);
	/* Commit the expiry: the state drops the lease and sync drops it too. */
	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_LEASE_EXPIRE;
	c.u.expire.n = 1;
	c.u.expire.refs[0] = refs[0];
	r = run(&f, &c);
	assert_int_equal(r.code, SM_ERR_OK);
	assert_int_equal(r.count, 1);
	assert_null(sm_lease_get(f.st, a));
	assert_int_equal(lease_sync(t, f.st, 2000), 0);
	assert_int_equal(lease_count(t), 1);
	assert_int_equal(lease_keepalive(t, a, 2000, NULL), LEASE_KA_NOT_FOUND);
	/* b kept its deadline from the reset (100 + 5000) across the sync. */
	assert_int_equal(lease_next_deadline(t), 5100);
	assert_int_equal(lease_collect_expired(t, 5100, refs, 4), 1);
	assert_int_equal(refs[0].id, b);
	lease_tracker_free(t);
	sm_free(f.st);
}

static void test_keepalive_during_expiry_needs_renewal(void **state)
{
	struct fx f;
	struct lease_tracker *t = lease_tracker_new();
	struct sm_lease_ref refs[4];
	struct sm_cmd c, ex;
	struct sm_result r;
	uint64_t a;

	(void)state;
	setup_fx(&f);
	a = grant(&f, 1000);
	assert_int_equal(lease_reset(t, f.st, 0), 0);
	assert_int_equal(lease_collect_expired(t, 1000, refs, 4), 1);
	memset(&ex, 0, sizeof(ex));
	ex.type = SM_CMD_LEASE_EXPIRE;
	ex.u.expire.n = 1;
	ex.u.expire.refs[0] = refs[0];
	/* A keepalive arrives while the expiry is in flight. */
	assert_int_equal(lease_keepalive(t, a, 1001, NULL), LEASE_KA_RENEW);
	/* The caller logs a renewal, ordered before the expiry commits. */
	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_LEASE_GRANT;
	c.u.lease.id = a;
	c.u.lease.ttl_ms = 1000;
	assert_int_equal(run(&f, &c).code, SM_ERR_OK);
	r = run(&f, &ex);
	assert_int_equal(r.count, 0); /* skipped: renewed moved on */
	assert_non_null(sm_lease_get(f.st, a));
	assert_int_equal(lease_sync(t, f.st, 1002), 0);
	assert_int_equal(lease_keepalive(t, a, 1002, NULL), LEASE_KA_OK);
	assert_int_equal(lease_next_deadline(t), 2002);
	lease_tracker_free(t);
	sm_free(f.st);
}

static void test_new_leader_fresh_ttl(void **state)
{
	struct fx f;
	struct lease_tracker *old = lease_tracker_new();
	struct lease_tracker *t = lease_tracker_new();
	struct sm_lease_ref refs[4];
	uint64_t a;

	(void)state;
	setup_fx(&f);
	a = grant(&f, 3000);
	/* The old leader last saw a keepalive at 0 and dies at 2900. */
	assert_int_equal(lease_reset(old, f.st, 0), 0);
	assert_int_equal(lease_collect_expired(old, 2900, refs, 4), 0);
	/* The new leader is elected at 3500: past the old deadline, yet nothing
	 * may expire before a full TTL from its election. */
	assert_int_equal(lease_reset(t, f.st, 3500), 0);
	assert_int_equal(lease_collect_expired(t, 3500, refs, 4), 0);
	assert_int_equal(lease_collect_expired(t, 6499, refs, 4), 0);
	/* A keepalive sent to it in the meantime keeps it alive. */
	assert_int_equal(lease_keepalive(t, a, 6000, NULL), LEASE_KA_OK);
	assert_int_equal(lease_collect_expired(t, 8999, refs, 4), 0);
	assert_int_equal(lease_collect_expired(t, 9000, refs, 4), 1);
	assert_int_equal(refs[0].id, a);
	/* A reset also clears pending marks (the old term's proposals are moot). */
	assert_int_equal(lease_reset(t, f.st, 9500), 0);
	assert_int_equal(lease_next_deadline(t), 12500);
	lease_tracker_free(old);
	lease_tracker_free(t);
	sm_free(f.st);
}

static void test_revoke_is_immediate(void **state)
{
	struct fx f;
	struct lease_tracker *t = lease_tracker_new();
	struct sm_lease_ref refs[4];
	struct sm_cmd c;
	struct sm_result r;
	uint64_t a, b;

	(void)state;
	setup_fx(&f);
	a = grant(&f, 1000);
	b = grant(&f, 1000);
	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_BACKEND_REGISTER;
	snprintf(c.u.reg.service, sizeof(c.u.reg.service), "web");
	assert_int_equal(addr_parse("10.1.0.1", &c.u.reg.addr), 0);
	c.u.reg.weight = 1;
	c.u.reg.lease = a;
	assert_int_equal(run(&f, &c).code, SM_ERR_OK);
	assert_int_equal(lease_reset(t, f.st, 0), 0);
	lease_forget(t, a);
	assert_int_equal(lease_count(t), 1);
	assert_int_equal(lease_keepalive(t, a, 10, NULL), LEASE_KA_NOT_FOUND);
	memset(&c, 0, sizeof(c));
	c.type = SM_CMD_LEASE_REVOKE;
	c.u.lease.id = a;
	r = run(&f, &c);
	assert_int_equal(r.code, SM_ERR_OK);
	assert_int_equal(r.removed, 1);
	assert_int_equal(sm_backend_list(f.st, "web", 0, NULL, 0), 0);
	assert_int_equal(lease_sync(t, f.st, 10), 0);
	assert_int_equal(lease_count(t), 1);
	assert_int_equal(lease_collect_expired(t, 1000, refs, 4), 1);
	assert_int_equal(refs[0].id, b);
	lease_tracker_free(t);
	sm_free(f.st);
}

static void test_many_leases_cap(void **state)
{
	struct fx f;
	struct lease_tracker *t = lease_tracker_new();
	struct sm_lease_ref refs[8];
	uint32_t i, got = 0, k;

	(void)state;
	setup_fx(&f);
	for (i = 0; i < 50; i++)
		grant(&f, 1000 + i * 10);
	assert_int_equal(lease_reset(t, f.st, 0), 0);
	assert_int_equal(lease_count(t), 50);
	/* Batches bounded by cap, each lease once, in id order. */
	while ((k = lease_collect_expired(t, 100000, refs, 8)) > 0) {
		assert_true(k <= 8);
		for (i = 1; i < k; i++)
			assert_true(refs[i].id > refs[i - 1].id);
		got += k;
	}
	assert_int_equal(got, 50);
	assert_int_equal(lease_next_deadline(t), UINT64_MAX);
	lease_tracker_free(t);
	sm_free(f.st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keepalive_extends),
	    cmocka_unit_test(test_expiry_proposed_and_applied),
	    cmocka_unit_test(test_keepalive_during_expiry_needs_renewal),
	    cmocka_unit_test(test_new_leader_fresh_ttl),
	    cmocka_unit_test(test_revoke_is_immediate),
	    cmocka_unit_test(test_many_leases_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
