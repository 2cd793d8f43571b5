/* Fuzz target: the state machine's untrusted bytes — commands (sm_cmd_decode, sm_apply) and
 * snapshots (sm_restore). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/config.h"
#include "controlplane/sm.h"
#include "dataplane/addr.h"
#include "dataplane/fwd.h"
#include "tests/fuzz/fuzz.h"


/*
 * Input layout: data[0] % 3 selects what the rest (data + 1) is:
 *   0  one command: decoded (and re-encoded), then applied to the base state;
 *   1  a snapshot: restored into an empty state and over the base state;
 *   2  a log: records of [u16 little-endian length][command bytes] applied in
 *      turn to the base state (so a command can act on what an earlier one made).
 * The base state is small and fixed (two services, static and leased backends,
 * a lease, a member, the seed), so a command mutated from a valid one usually
 * meets an object it can act on.
 */
enum { SEL_CMD = 0, SEL_SNAPSHOT = 1, SEL_LOG = 2 };
#define MAX_LOG_RECORDS 64

static uint8_t *base_snap;
static size_t base_len;

static void cmd_service(struct sm_cmd *c, const char *name, const char *vip, uint16_t port,
			uint8_t proto, uint8_t mode)
{
	memset(c, 0, sizeof(*c));
	c->type = SM_CMD_SERVICE_CREATE;
	strcpy(c->u.service.name, name);
	CHECK(addr_parse(vip, &c->u.service.vip) == 0);
	c->u.service.port = port;
	c->u.service.proto = proto;
	c->u.service.mode = mode;
	c->u.service.algorithm = SM_ALG_MAGLEV;
	c->u.service.table_size = 251; /* small: keeps sm_to_spec cheap */
}

static void cmd_register(struct sm_cmd *c, const char *svc, const char *addr, uint16_t port,
			 uint32_t weight, uint64_t lease)
{
	memset(c, 0, sizeof(*c));
	c->type = SM_CMD_BACKEND_REGISTER;
	strcpy(c->u.reg.service, svc);
	CHECK(addr_parse(addr, &c->u.reg.addr) == 0);
	c->u.reg.port = port;
	c->u.reg.weight = weight;
	c->u.reg.lease = lease;
}

static void cmd_backend(struct sm_cmd *c, uint8_t type, const char *svc, const char *addr,
			uint16_t port, uint32_t value)
{
	struct addr a;

	CHECK(addr_parse(addr, &a) == 0);
	memset(c, 0, sizeof(*c));
	c->type = type;
	strcpy(c->u.be.service, svc);
	c->u.be.uid = config_backend_uid(&a, port);
	c->u.be.value = value;
}

static void apply_ok(struct sm_state *st, const struct sm_cmd *c, struct sm_result *res)
{
	uint8_t buf[SM_CMD_MAX_LEN];
	int n = sm_cmd_encode(c, buf, sizeof(buf));

	CHECK(n > 0);
	CHECK(sm_apply(st, sm_revision(st) + 1, buf, (size_t)n, res) == 0);
	CHECK(res->code == SM_ERR_OK);
}

/* The base state, built once through the public API and kept as a snapshot. */
static void base_init(void)
{
	struct sm_state *st = sm_new();
	struct sm_result res;
	struct sm_cmd c;

	CHECK(st != NULL);
	cmd_service(&c, "web", "10.0.0.10", 80, 6, FWD_MODE_NAT); /* index 1 */
	apply_ok(st, &c, &res);
	cmd_service(&c, "dns", "2001:db8::53", 53, 17, FWD_MODE_DSR); /* index 2 */
	c.u.service.announce = 1;
	c.u.service.health.type = SM_HC_HTTP;
	strcpy(c.u.service.health.path, "/health");
	c.u.service.health.interval_ms = 1000;
	c.u.service.health.timeout_ms = 500;
	c.u.service.health.rise = 2;
	c.u.service.health.fall = 3;
	apply_ok(st, &c, &res);
	cmd_register(&c, "web", "10.1.0.5", 8080, 100, 0); /* index 3 */
	apply_ok(st, &c, &res);
	cmd_register(&c, "web", "10.1.0.6", 0, 50, 0); /* index 4 */
	apply_ok(st, &c, &res);
	memset(&c, 0, sizeof(c)); /* index 5: lease 5 */
	c.type = SM_CMD_LEASE_GRANT;
	c.u.lease.ttl_ms = 10000;
	strcpy(c.u.lease.service, "dns");
	apply_ok(st, &c, &res);
	cmd_register(&c, "dns", "2001:db8::7", 53, 1, res.lease); /* index 6 */
	apply_ok(st, &c, &res);
	cmd_backend(&c, SM_CMD_BACKEND_DRAIN, "web", "10.1.0.6", 80, 1); /* index 7 */
	apply_ok(st, &c, &res);
	cmd_backend(&c, SM_CMD_BACKEND_HEALTH, "dns", "2001:db8::7", 53, /* index 8 */
		    SM_BACKEND_DOWN);
	apply_ok(st, &c, &res);
	memset(&c, 0, sizeof(c)); /* index 9 */
	c.type = SM_CMD_SET_HASH_SEED;
	c.u.seed = 0x46756c6372756d31ULL;
	apply_ok(st, &c, &res);
	memset(&c, 0, sizeof(c)); /* index 10 */
	c.type = SM_CMD_MEMBER_ADD;
	c.u.member.id = 1;
	strcpy(c.u.member.raft_addr, "127.0.0.1:7001");
	strcpy(c.u.member.api_addr, "127.0.0.1:8001");
	apply_ok(st, &c, &res);
	CHECK(sm_snapshot(st, &base_snap, &base_len) == 0);
	sm_free(st);
}

static struct sm_state *base_state(void)
{
	struct sm_state *st = sm_new();

	CHECK(st != NULL);
	CHECK(sm_restore(st, base_snap, base_len) == 0);
	return st;
}

/* What decodes re-encodes to the same bytes (the format has one encoding per command). */
static void check_codec(const uint8_t *p, size_t n)
{
	static struct sm_cmd c, c2; /* ~4 KiB each: not on the stack */
	static uint8_t buf[SM_CMD_MAX_LEN];
	int len;

	if (sm_cmd_decode(p, n, &c) != 0)
		return;
	len = sm_cmd_encode(&c, buf, sizeof(buf));
	CHECK(len > 0 && (size_t)len == n && memcmp(buf, p, n) == 0);
	CHECK(sm_cmd_encode(&c, buf, n - 1) == -ENOSPC);
	CHECK(sm_cmd_decode(buf, (size_t)len, &c2) == 0);
	CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
}

/* Snapshot -> restore -> snapshot gives the same bytes and digest. */
static void check_snapshot_stable(const struct sm_state *st)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	struct sm_state *t = sm_new();

	CHECK(t != NULL);
	CHECK(sm_snapshot(st, &a, &alen) == 0);
	CHECK(sm_restore(t, a, alen) == 0);
	CHECK(sm_snapshot(t, &b, &blen) == 0);
	CHECK(alen == blen && memcmp(a, b, alen) == 0);
	CHECK(sm_digest(st) == sm_digest(t));
	CHECK(sm_revision(st) == sm_revision(t));
	free(a);
	free(b);
	sm_free(t);
}

/* Walk every query, so their loops see whatever state the input built. */
static void walk(const struct sm_state *st)
{
	const struct sm_backend *bl[8];
	struct sm_endpoint ep[8];
	struct sm_node_params node;
	struct fwd_spec spec;
	uint64_t seed;
	uint32_t n = sm_service_count(st);

	(void)sm_hash_seed(st, &seed);
	for (uint32_t i = 0; i < n; i++) {
		const struct sm_service *s = sm_service_at(st, i);

		CHECK(s != NULL && sm_service_get(st, s->def.name) == s);
		for (uint32_t j = 0; j < s->n_backends; j++) {
			CHECK(sm_backend_get(s, s->backends[j].uid) == &s->backends[j]);
			(void)sm_backend_state(&s->backends[j]);
		}
		CHECK(sm_backend_list(st, s->def.name, 0, bl, 8) == (int)s->n_backends);
		CHECK(sm_backend_list(st, s->def.name, SM_FILTER_HEALTHY, bl, 8) >= 0);
		CHECK(sm_endpoints(st, s->def.name, SM_FILTER_HEALTHY, ep, 8) >= 0);
	}
	CHECK(sm_service_at(st, n) == NULL);
	for (uint32_t i = 0; i < sm_lease_count(st); i++) {
		const struct sm_lease *l = sm_lease_at(st, i);

		CHECK(l != NULL && sm_lease_get(st, l->id) == l);
	}
	for (uint32_t i = 0; i < sm_member_count(st); i++) {
		const struct sm_member *m = sm_member_at(st, i);

		CHECK(m != NULL && sm_member_get(st, m->id) == m);
	}
	memset(&node, 0, sizeof(node));
	node.n_workers = 2;
	if (sm_to_spec(st, &node, &spec) == 0)
		sm_spec_free(&spec);
}

/*
 * Apply one entry; a command that is refused (or does not decode) must
 * change nothing but the revision.
 */
static void apply_one(struct sm_state *st, const uint8_t *p, size_t n)
{
	uint64_t index = sm_revision(st) + 1, digest_after;
	struct sm_result res;
	uint8_t *before = NULL;
	size_t blen = 0;
	struct sm_state *t;
	int rc;

	check_codec(p, n);
	CHECK(sm_snapshot(st, &before, &blen) == 0);
	rc = sm_apply(st, index, p, n, &res);
	CHECK(rc == 0);
	CHECK(res.revision == index && sm_revision(st) == index);
	CHECK(res.code < SM_ERR__COUNT);
	CHECK(sm_apply(st, index, p, n, NULL) == -EINVAL); /* an index must grow */
	if (res.code != SM_ERR_OK) {
		t = sm_new();
		CHECK(t != NULL);
		CHECK(sm_restore(t, before, blen) == 0);
		CHECK(sm_advance(t, index) == 0);
		digest_after = sm_digest(st);
		CHECK(sm_digest(t) == digest_after);
		sm_free(t);
	}
	free(before);
}

static void run_snapshot(const uint8_t *p, size_t n)
{
	struct sm_state *empty = sm_new(), *st = base_state();
	uint64_t d0 = sm_digest(st);
	uint8_t *again = NULL;
	size_t alen = 0;
	int rc;

	CHECK(empty != NULL);
	rc = sm_restore(empty, p, n);
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0) {
		/* Canonical: a state has one serialisation, so what restores is it. */
		CHECK(sm_snapshot(empty, &again, &alen) == 0);
		CHECK(alen == n && memcmp(again, p, n) == 0);
		free(again);
		check_snapshot_stable(empty);
		walk(empty);
	}
	/* Restoring over a populated state: all or nothing. */
	CHECK(sm_restore(st, p, n) == rc);
	if (rc == 0)
		CHECK(sm_digest(st) == sm_digest(empty));
	else
		CHECK(sm_digest(st) == d0);
	sm_free(empty);
	sm_free(st);
}

static void run_log(const uint8_t *p, size_t n)
{
	struct sm_state *st = base_state();
	unsigned records = 0;

	while (n >= 2 && records++ < MAX_LOG_RECORDS) {
		size_t len = (size_t)p[0] | (size_t)p[1] << 8;

		p += 2;
		n -= 2;
		if (len > n)
			len = n;
		apply_one(st, p, len);
		p += len;
		n -= len;
	}
	check_snapshot_stable(st);
	walk(st);
	sm_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sm_state *st;

	if (base_snap == NULL)
		base_init();
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case SEL_CMD:
		st = base_state();
		apply_one(st, data + 1, size - 1);
		check_snapshot_stable(st);
		walk(st);
		sm_free(st);
		break;
	case SEL_SNAPSHOT:
		run_snapshot(data + 1, size - 1);
		break;
	default:
		run_log(data + 1, size - 1);
		break;
	}
	return 0;
}
