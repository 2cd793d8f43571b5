/* sm: the replicated state machine — validation, deterministic apply, queries, forwarding spec. */
#include "controlplane/sm.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/config.h"
#include "controlplane/sm_internal.h"
#include "dataplane/maglev.h"

static const char *const errcode_names[] = {
#define SM_X(name, str) str,
    SM_ERRCODES(SM_X)
#undef SM_X
};

const char *sm_errcode_str(unsigned code)
{
	return code < SM_ERR__COUNT ? errcode_names[code] : "?";
}

__attribute__((format(printf, 3, 4))) static enum sm_errcode
fail(struct sm_err *err, enum sm_errcode code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

static enum sm_errcode ok(struct sm_err *err)
{
	err->code = SM_ERR_OK;
	err->msg[0] = '\0';
	return SM_ERR_OK;
}

enum sm_backend_state sm_backend_state(const struct sm_backend *b)
{
	if (b->down)
		return SM_BACKEND_DOWN;
	return b->draining ? SM_BACKEND_DRAINING : SM_BACKEND_ACTIVE;
}

/* ---- Lookup (binary search over the canonical orders) ---- */

static uint32_t svc_pos(const struct sm_state *st, const char *name, bool *found)
{
	uint32_t lo = 0, hi = st->n_services;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(st->services[mid]->def.name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static struct sm_service *svc_find(const struct sm_state *st, const char *name)
{
	bool found;
	uint32_t i = svc_pos(st, name, &found);

	return found ? st->services[i] : NULL;
}

static uint32_t be_pos(const struct sm_service *s, uint32_t uid, bool *found)
{
	uint32_t lo = 0, hi = s->n_backends;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->backends[mid].uid == uid) {
			*found = true;
			return mid;
		}
		if (s->backends[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static uint32_t lease_pos(const struct sm_state *st, uint64_t id, bool *found)
{
	uint32_t lo = 0, hi = st->n_leases;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (st->leases[mid].id == id) {
			*found = true;
			return mid;
		}
		if (st->leases[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static uint32_t member_pos(const struct sm_state *st, uint64_t id, bool *found)
{
	uint32_t lo = 0, hi = st->n_members;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (st->members[mid].id == id) {
			*found = true;
			return mid;
		}
		if (st->members[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* ---- Checks ---- */

static bool str_bounded(const char *s, size_t max)
{
	return memchr(s, '\0', max) != NULL;
}

int sm_name_ok(const char *s)
{
	size_t n;

	/* Bounded, non-empty, and config.c's alphabet (one rule for both). */
	if (!str_bounded(s, SM_NAME_MAX))
		return 0;
	n = strlen(s);
	return n > 0 && config_name_ok(s);
}

/* A canonical address: the family's bytes only, everything else zero (addr.h). */
static bool addr_canonical(const struct addr *a)
{
	static const uint8_t zero[16];

	if (a->pad[0] || a->pad[1] || a->pad[2])
		return false;
	if (a->family == ADDR_V4)
		return memcmp(a->b + 4, zero, 12) == 0;
	return a->family == ADDR_V6;
}

static bool hostport_ok(const char *s)
{
	size_t n;

	if (!str_bounded(s, SM_HOSTPORT_MAX))
		return false;
	n = strlen(s);
	if (n < 3 || strrchr(s, ':') == NULL || s[n - 1] == ':')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static enum sm_errcode check_health(const struct sm_service_def *d, struct sm_err *err)
{
	const struct sm_health *h = &d->health;
	size_t n;

	if (!str_bounded(h->path, SM_PATH_MAX))
		return fail(err, SM_ERR_INVALID, "service \"%s\": health path too long", d->name);
	n = strlen(h->path);
	if (h->type == SM_HC_NONE) {
		if (n != 0 || h->interval_ms || h->timeout_ms || h->rise || h->fall)
			return fail(err, SM_ERR_INVALID,
				    "service \"%s\": health type none takes no other settings",
				    d->name);
		return SM_ERR_OK;
	}
	if (h->type != SM_HC_TCP && h->type != SM_HC_HTTP)
		return fail(err, SM_ERR_INVALID, "service \"%s\": health type %u unknown", d->name,
			    h->type);
	if (h->type == SM_HC_TCP && n != 0)
		return fail(err, SM_ERR_INVALID, "service \"%s\": a tcp health check has no path",
			    d->name);
	if (h->type == SM_HC_HTTP) {
		if (n == 0 || h->path[0] != '/')
			return fail(err, SM_ERR_INVALID,
				    "service \"%s\": health path must start with '/'", d->name);
		for (size_t i = 0; i < n; i++)
			if (h->path[i] <= ' ' || h->path[i] > '~')
				return fail(err, SM_ERR_INVALID,
					    "service \"%s\": health path has a space or "
					    "non-printable character",
					    d->name);
	}
	if (h->interval_ms < 100 || h->interval_ms > 3600000)
		return fail(err, SM_ERR_INVALID,
			    "service \"%s\": health interval %u ms out of range (100..3600000)",
			    d->name, h->interval_ms);
	if (h->timeout_ms < 1 || h->timeout_ms > h->interval_ms)
		return fail(err, SM_ERR_INVALID,
			    "service \"%s\": health timeout %u ms out of range (1..interval)",
			    d->name, h->timeout_ms);
	if (h->rise < 1 || h->rise > 100 || h->fall < 1 || h->fall > 100)
		return fail(err, SM_ERR_INVALID,
			    "service \"%s\": health rise/fall out of range (1..100)", d->name);
	return SM_ERR_OK;
}

enum sm_errcode sm_check_def(struct sm_service_def *d, int resolve, struct sm_err *err)
{
	if (!sm_name_ok(d->name))
		return fail(err, SM_ERR_INVALID,
			    "service name must be 1..%d characters of [A-Za-z0-9._-]",
			    SM_NAME_MAX - 1);
	if ((d->vip.family != ADDR_V4 && d->vip.family != ADDR_V6) || !addr_canonical(&d->vip))
		return fail(err, SM_ERR_INVALID, "service \"%s\": vip is not an IPv4/IPv6 address",
			    d->name);
	if (d->port == 0)
		return fail(err, SM_ERR_INVALID, "service \"%s\": port 0", d->name);
	if (d->proto != IPPROTO_TCP && d->proto != IPPROTO_UDP)
		return fail(err, SM_ERR_INVALID, "service \"%s\": proto %u (expected tcp or udp)",
			    d->name, d->proto);
	if (d->mode != FWD_MODE_NAT && d->mode != FWD_MODE_DSR && d->mode != FWD_MODE_TUNNEL)
		return fail(err, SM_ERR_INVALID, "service \"%s\": mode %u unknown", d->name,
			    d->mode);
	if (d->announce > 1)
		return fail(err, SM_ERR_INVALID, "service \"%s\": announce must be 0 or 1",
			    d->name);
	if (d->algorithm != SM_ALG_MAGLEV)
		return fail(err, SM_ERR_INVALID,
			    "service \"%s\": algorithm %u unknown (maglev only)", d->name,
			    d->algorithm);
	if (resolve && d->table_size == 0)
		d->table_size = MAGLEV_DEFAULT_SIZE;
	if (d->table_size < MAGLEV_MIN_SIZE || d->table_size > MAGLEV_MAX_SIZE ||
	    !maglev_is_prime(d->table_size))
		return fail(err, SM_ERR_INVALID,
			    "service \"%s\": table_size %u is not a prime in %u..%u", d->name,
			    d->table_size, MAGLEV_MIN_SIZE, MAGLEV_MAX_SIZE);
	if (d->max_backends > SM_MAX_BACKENDS)
		return fail(err, SM_ERR_INVALID, "service \"%s\": max_backends %u over %u", d->name,
			    d->max_backends, SM_MAX_BACKENDS);
	return check_health(d, err);
}

/* The rules of config.c's check_backends (docs/config.md), applied to one registration. */
enum sm_errcode sm_check_backend(const struct sm_service_def *d, const struct sm_backend *b,
				 struct sm_err *err)
{
	/* The address is formatted only for a message: every write is checked up to three
	 * times (API, proposal, apply on every node), and formatting was most of the cost. */
	char a[ADDR_STRLEN];

	if ((b->addr.family != ADDR_V4 && b->addr.family != ADDR_V6) || !addr_canonical(&b->addr))
		return fail(err, SM_ERR_INVALID, "service \"%s\": backend address invalid",
			    d->name);
	if (d->mode == FWD_MODE_TUNNEL ? b->addr.family != ADDR_V4
				       : b->addr.family != d->vip.family)
		return fail(err, SM_ERR_INVALID,
			    "service \"%s\": backend %s does not fit the mode and VIP family",
			    d->name, addr_format(&b->addr, a, sizeof(a)));
	if (b->port == 0)
		return fail(err, SM_ERR_INVALID, "service \"%s\": backend %s port 0", d->name,
			    addr_format(&b->addr, a, sizeof(a)));
	if (d->mode != FWD_MODE_NAT && b->port != d->port)
		return fail(err, SM_ERR_INVALID,
			    "service \"%s\": backend %s port %u differs from the service port, "
			    "which dsr/tunnel cannot rewrite",
			    d->name, addr_format(&b->addr, a, sizeof(a)), b->port);
	if (b->weight > SM_WEIGHT_MAX)
		return fail(err, SM_ERR_INVALID, "service \"%s\": backend %s weight %u over %u",
			    d->name, addr_format(&b->addr, a, sizeof(a)), b->weight, SM_WEIGHT_MAX);
	return SM_ERR_OK;
}

static uint32_t max_backends(const struct sm_service_def *d)
{
	uint32_t m = d->max_backends != 0 ? d->max_backends : SM_MAX_BACKENDS;

	/* Maglev needs a slot per backend; counting all (not only weighted) ones
	 * means a health or drain change can never break the table. */
	return m < d->table_size ? m : d->table_size;
}

static const struct sm_service *conflicting(const struct sm_state *st,
					    const struct sm_service_def *d)
{
	for (uint32_t i = 0; i < st->n_services; i++) {
		const struct sm_service_def *o = &st->services[i]->def;
		if (strcmp(o->name, d->name) != 0 && addr_eq(&o->vip, &d->vip) &&
		    o->port == d->port && o->proto == d->proto)
			return st->services[i];
	}
	return NULL;
}

/* ---- Validation, one function per command ---- */

static enum sm_errcode v_create(const struct sm_state *st, const struct sm_cmd *c,
				struct sm_err *err)
{
	struct sm_service_def d = c->u.service;
	const struct sm_service *o;

	if (sm_check_def(&d, 1, err) != SM_ERR_OK)
		return err->code;
	if (svc_find(st, d.name) != NULL)
		return fail(err, SM_ERR_EXISTS, "service \"%s\" exists", d.name);
	if (st->n_services >= SM_MAX_SERVICES)
		return fail(err, SM_ERR_LIMIT, "already %u services", SM_MAX_SERVICES);
	if ((o = conflicting(st, &d)) != NULL)
		return fail(err, SM_ERR_CONFLICT,
			    "service \"%s\": vip, port and proto already used by \"%s\"", d.name,
			    o->def.name);
	return ok(err);
}

static enum sm_errcode v_update(const struct sm_state *st, const struct sm_cmd *c,
				struct sm_err *err)
{
	struct sm_service_def d = c->u.service;
	const struct sm_service *s, *o;

	if (sm_check_def(&d, 1, err) != SM_ERR_OK)
		return err->code;
	if ((s = svc_find(st, d.name)) == NULL)
		return fail(err, SM_ERR_NOT_FOUND, "service \"%s\" not found", d.name);
	if ((o = conflicting(st, &d)) != NULL)
		return fail(err, SM_ERR_CONFLICT,
			    "service \"%s\": vip, port and proto already used by \"%s\"", d.name,
			    o->def.name);
	for (uint32_t i = 0; i < s->n_backends; i++)
		if (sm_check_backend(&d, &s->backends[i], err) != SM_ERR_OK)
			return err->code;
	if (s->n_backends > max_backends(&d))
		return fail(err, SM_ERR_LIMIT,
			    "service \"%s\": %u backends exceed max_backends/table_size %u", d.name,
			    s->n_backends, max_backends(&d));
	return ok(err);
}

static enum sm_errcode need_service(const struct sm_state *st, const char *name,
				    const struct sm_service **s, struct sm_err *err)
{
	if (!sm_name_ok(name))
		return fail(err, SM_ERR_INVALID, "invalid service name");
	if ((*s = svc_find(st, name)) == NULL)
		return fail(err, SM_ERR_NOT_FOUND, "service \"%s\" not found", name);
	return SM_ERR_OK;
}

/* The backend a register command describes, port resolved. */
static struct sm_backend reg_backend(const struct sm_service *s, const struct sm_cmd *c)
{
	struct sm_backend b;

	memset(&b, 0, sizeof(b));
	b.addr = c->u.reg.addr;
	b.port = c->u.reg.port != 0 ? c->u.reg.port : s->def.port;
	b.weight = c->u.reg.weight;
	b.lease = c->u.reg.lease;
	if (b.addr.family == ADDR_V4 || b.addr.family == ADDR_V6)
		b.uid = config_backend_uid(&b.addr, b.port);
	return b;
}

static enum sm_errcode v_register(const struct sm_state *st, const struct sm_cmd *c,
				  struct sm_err *err)
{
	const struct sm_service *s;
	struct sm_backend b;
	bool found;
	uint32_t i;

	if (need_service(st, c->u.reg.service, &s, err) != SM_ERR_OK)
		return err->code;
	b = reg_backend(s, c);
	if (sm_check_backend(&s->def, &b, err) != SM_ERR_OK)
		return err->code;
	if (b.lease != 0) {
		const struct sm_lease *l = sm_lease_get(st, b.lease);
		if (l == NULL)
			return fail(err, SM_ERR_NOT_FOUND, "lease %llu not found",
				    (unsigned long long)b.lease);
		if (strcmp(l->service, s->def.name) != 0)
			return fail(err, SM_ERR_INVALID,
				    "lease %llu is scoped to service \"%s\", not \"%s\"",
				    (unsigned long long)b.lease, l->service, s->def.name);
	}
	i = be_pos(s, b.uid, &found);
	if (found) {
		const struct sm_backend *o = &s->backends[i];
		if (!addr_eq(&o->addr, &b.addr) || o->port != b.port)
			return fail(err, SM_ERR_CONFLICT,
				    "service \"%s\": uid %u collides with another backend (32-bit "
				    "hash collision; change the port or address)",
				    s->def.name, b.uid);
		return ok(err); /* re-registration */
	}
	if (s->n_backends >= max_backends(&s->def))
		return fail(err, SM_ERR_LIMIT, "service \"%s\": at its limit of %u backends",
			    s->def.name, max_backends(&s->def));
	return ok(err);
}

static enum sm_errcode v_backend(const struct sm_state *st, const struct sm_cmd *c,
				 struct sm_err *err)
{
	const struct sm_service *s;

	if (need_service(st, c->u.be.service, &s, err) != SM_ERR_OK)
		return err->code;
	if (sm_backend_get(s, c->u.be.uid) == NULL)
		return fail(err, SM_ERR_NOT_FOUND, "service \"%s\": backend %u not found",
			    s->def.name, c->u.be.uid);
	switch (c->type) {
	case SM_CMD_BACKEND_WEIGHT:
		if (c->u.be.value > SM_WEIGHT_MAX)
			return fail(err, SM_ERR_INVALID, "weight %u over %u", c->u.be.value,
				    SM_WEIGHT_MAX);
		break;
	case SM_CMD_BACKEND_DRAIN:
		if (c->u.be.value > 1)
			return fail(err, SM_ERR_INVALID, "drain must be 0 or 1");
		break;
	case SM_CMD_BACKEND_HEALTH:
		if (c->u.be.value != SM_BACKEND_ACTIVE && c->u.be.value != SM_BACKEND_DOWN)
			return fail(err, SM_ERR_INVALID, "health state must be active or down");
		break;
	default:
		break;
	}
	return ok(err);
}

static enum sm_errcode v_grant(const struct sm_state *st, const struct sm_cmd *c,
			       struct sm_err *err)
{
	const struct sm_service *s;

	if (c->u.lease.ttl_ms < SM_TTL_MIN_MS || c->u.lease.ttl_ms > SM_TTL_MAX_MS)
		return fail(err, SM_ERR_INVALID, "ttl %u ms out of range (%u..%u)",
			    c->u.lease.ttl_ms, SM_TTL_MIN_MS, SM_TTL_MAX_MS);
	if (c->u.lease.id != 0) {
		const struct sm_lease *l = sm_lease_get(st, c->u.lease.id);
		if (l == NULL)
			return fail(err, SM_ERR_NOT_FOUND, "lease %llu not found",
				    (unsigned long long)c->u.lease.id);
		if (c->u.lease.service[0] != '\0' && strcmp(c->u.lease.service, l->service) != 0)
			return fail(err, SM_ERR_INVALID, "lease %llu is scoped to service \"%s\"",
				    (unsigned long long)l->id, l->service);
		return ok(err);
	}
	if (need_service(st, c->u.lease.service, &s, err) != SM_ERR_OK)
		return err->code;
	if (st->n_leases >= SM_MAX_LEASES)
		return fail(err, SM_ERR_LIMIT, "already %u leases", SM_MAX_LEASES);
	return ok(err);
}

static enum sm_errcode v_member_add(const struct sm_state *st, const struct sm_cmd *c,
				    struct sm_err *err)
{
	const struct sm_member *m = &c->u.member;

	if (m->id == 0)
		return fail(err, SM_ERR_INVALID, "member id 0");
	if (!hostport_ok(m->raft_addr) || !hostport_ok(m->api_addr))
		return fail(err, SM_ERR_INVALID, "member %llu: addresses must be host:port",
			    (unsigned long long)m->id);
	if (sm_member_get(st, m->id) != NULL)
		return fail(err, SM_ERR_EXISTS, "member %llu exists", (unsigned long long)m->id);
	for (uint32_t i = 0; i < st->n_members; i++)
		if (strcmp(st->members[i].raft_addr, m->raft_addr) == 0)
			return fail(err, SM_ERR_CONFLICT, "member %llu already has raft address %s",
				    (unsigned long long)st->members[i].id, m->raft_addr);
	if (st->n_members >= SM_MAX_MEMBERS)
		return fail(err, SM_ERR_LIMIT, "already %u members", SM_MAX_MEMBERS);
	return ok(err);
}

enum sm_errcode sm_validate(const struct sm_state *st, const struct sm_cmd *c, struct sm_err *err)
{
	switch (c->type) {
	case SM_CMD_SERVICE_CREATE:
		return v_create(st, c, err);
	case SM_CMD_SERVICE_UPDATE:
		return v_update(st, c, err);
	case SM_CMD_SERVICE_DELETE: {
		const struct sm_service *s;
		if (need_service(st, c->u.del.service, &s, err) != SM_ERR_OK)
			return err->code;
		return ok(err);
	}
	case SM_CMD_BACKEND_REGISTER:
		return v_register(st, c, err);
	case SM_CMD_BACKEND_WEIGHT:
	case SM_CMD_BACKEND_DRAIN:
	case SM_CMD_BACKEND_HEALTH:
	case SM_CMD_BACKEND_DEREGISTER:
		return v_backend(st, c, err);
	case SM_CMD_LEASE_GRANT:
		return v_grant(st, c, err);
	case SM_CMD_LEASE_REVOKE:
		if (sm_lease_get(st, c->u.lease.id) == NULL)
			return fail(err, SM_ERR_NOT_FOUND, "lease %llu not found",
				    (unsigned long long)c->u.lease.id);
		return ok(err);
	case SM_CMD_LEASE_EXPIRE:
		/* Stale entries are skipped at apply time, not errors: the leader's view may lag.
		 */
		if (c->u.expire.n == 0 || c->u.expire.n > SM_EXPIRE_MAX)
			return fail(err, SM_ERR_INVALID, "expiry batch of %u leases (1..%u)",
				    c->u.expire.n, SM_EXPIRE_MAX);
		return ok(err);
	case SM_CMD_SET_HASH_SEED:
		if (st->seed_set && st->seed != c->u.seed)
			return fail(err, SM_ERR_CONFLICT,
				    "the hash seed is already set (it can be set once)");
		return ok(err);
	case SM_CMD_MEMBER_ADD:
		return v_member_add(st, c, err);
	case SM_CMD_MEMBER_REMOVE:
		if (sm_member_get(st, c->u.member.id) == NULL)
			return fail(err, SM_ERR_NOT_FOUND, "member %llu not found",
				    (unsigned long long)c->u.member.id);
		return ok(err);
	default:
		return fail(err, SM_ERR_DECODE, "unknown command type %u", c->type);
	}
}

/* ---- Apply ---- */

/* Make room for one more element of size sz in *arr (capacity *cap). 0 or -ENOMEM. */
static int reserve(void **arr, uint32_t n, uint32_t *cap, size_t sz)
{
	uint32_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	p = realloc(*arr, (size_t)ncap * sz);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static void svc_free(struct sm_service *s)
{
	if (s != NULL) {
		free(s->backends);
		free(s);
	}
}

static uint32_t remove_backends_of_lease(struct sm_service *s, uint64_t lease)
{
	uint32_t k = 0, removed = 0;

	for (uint32_t i = 0; i < s->n_backends; i++) {
		if (s->backends[i].lease == lease)
			removed++;
		else
			s->backends[k++] = s->backends[i];
	}
	s->n_backends = k;
	return removed;
}

static void lease_remove_at(struct sm_state *st, uint32_t i, struct sm_result *res, uint64_t index)
{
	struct sm_service *s = svc_find(st, st->leases[i].service);

	if (s != NULL) {
		uint32_t r = remove_backends_of_lease(s, st->leases[i].id);
		if (r != 0)
			s->modified = index;
		res->removed += r;
	}
	memmove(&st->leases[i], &st->leases[i + 1], (st->n_leases - i - 1) * sizeof(st->leases[0]));
	st->n_leases--;
}

static int a_create(struct sm_state *st, uint64_t index, const struct sm_cmd *c,
		    struct sm_result *res)
{
	struct sm_service *s;
	bool found;
	uint32_t pos;

	if (reserve((void **)&st->services, st->n_services, &st->cap_services,
		    sizeof(st->services[0])) != 0)
		return -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->def = c->u.service;
	if (s->def.table_size == 0)
		s->def.table_size = MAGLEV_DEFAULT_SIZE;
	s->created = s->modified = index;
	pos = svc_pos(st, s->def.name, &found);
	memmove(&st->services[pos + 1], &st->services[pos],
		(st->n_services - pos) * sizeof(st->services[0]));
	st->services[pos] = s;
	st->n_services++;
	res->created = 1;
	return 0;
}

static int a_delete(struct sm_state *st, uint64_t index, const struct sm_cmd *c,
		    struct sm_result *res)
{
	bool found;
	uint32_t pos = svc_pos(st, c->u.del.service, &found);
	struct sm_service *s = st->services[pos];
	uint32_t k = 0;

	(void)index;
	res->removed = s->n_backends;
	/* Leases scoped to a deleted service can register nothing any more. */
	for (uint32_t i = 0; i < st->n_leases; i++) {
		if (strcmp(st->leases[i].service, s->def.name) == 0)
			res->count++;
		else
			st->leases[k++] = st->leases[i];
	}
	st->n_leases = k;
	memmove(&st->services[pos], &st->services[pos + 1],
		(st->n_services - pos - 1) * sizeof(st->services[0]));
	st->n_services--;
	svc_free(s);
	return 0;
}

static int a_register(struct sm_state *st, uint64_t index, const struct sm_cmd *c,
		      struct sm_result *res)
{
	struct sm_service *s = svc_find(st, c->u.reg.service);
	struct sm_backend b = reg_backend(s, c);
	bool found;
	uint32_t pos = be_pos(s, b.uid, &found);

	res->uid = b.uid;
	if (found) {
		/* Re-registration (a restarted backend, a new lease): identity, health and
		 * the operator's drain stay; weight and lease are the registrant's. */
		s->backends[pos].weight = b.weight;
		s->backends[pos].lease = b.lease;
	} else {
		/*
		 * Geometric growth: a realloc by one element copied the whole array
		 * whenever it could not grow in place (two services filling at once
		 * is enough), i.e. O(n) per register on every node.
		 */
		if (s->n_backends == s->cap_backends) {
			uint32_t cap = s->cap_backends ? 2 * s->cap_backends : 8;
			struct sm_backend *nb = realloc(s->backends, (size_t)cap * sizeof(*nb));
			if (nb == NULL)
				return -ENOMEM;
			s->backends = nb;
			s->cap_backends = cap;
		}
		memmove(&s->backends[pos + 1], &s->backends[pos],
			(s->n_backends - pos) * sizeof(s->backends[0]));
		b.created = index;
		s->backends[pos] = b;
		s->n_backends++;
		res->created = 1;
	}
	s->modified = index;
	return 0;
}

static int a_backend(struct sm_state *st, uint64_t index, const struct sm_cmd *c,
		     struct sm_result *res)
{
	struct sm_service *s = svc_find(st, c->u.be.service);
	bool found;
	uint32_t pos = be_pos(s, c->u.be.uid, &found);
	struct sm_backend *b = &s->backends[pos];

	res->uid = b->uid;
	switch (c->type) {
	case SM_CMD_BACKEND_WEIGHT:
		b->weight = c->u.be.value;
		break;
	case SM_CMD_BACKEND_DRAIN:
		b->draining = (uint8_t)c->u.be.value;
		break;
	case SM_CMD_BACKEND_HEALTH:
		b->down = c->u.be.value == SM_BACKEND_DOWN;
		break;
	default: /* DEREGISTER */
		memmove(b, b + 1, (s->n_backends - pos - 1) * sizeof(*b));
		s->n_backends--;
		res->removed = 1;
		break;
	}
	s->modified = index;
	return 0;
}

static int a_grant(struct sm_state *st, uint64_t index, const struct sm_cmd *c,
		   struct sm_result *res)
{
	struct sm_lease *l;

	if (c->u.lease.id != 0) {
		bool found;
		l = &st->leases[lease_pos(st, c->u.lease.id, &found)];
		/* A logged renewal: any expiry decided before it names an older
		 * revision and will be skipped (see docs/state-machine.md). */
		l->ttl_ms = c->u.lease.ttl_ms;
		l->renewed = index;
		res->lease = l->id;
		return 0;
	}
	if (reserve((void **)&st->leases, st->n_leases, &st->cap_leases, sizeof(st->leases[0])) !=
	    0)
		return -ENOMEM;
	/* The id is the entry's index: unique, increasing (append keeps id order), and
	 * the same on every node without a counter in the state. */
	l = &st->leases[st->n_leases++];
	memset(l, 0, sizeof(*l));
	l->id = index;
	l->ttl_ms = c->u.lease.ttl_ms;
	snprintf(l->service, sizeof(l->service), "%s", c->u.lease.service);
	l->granted = l->renewed = index;
	res->lease = l->id;
	res->created = 1;
	return 0;
}

static int a_expire(struct sm_state *st, uint64_t index, const struct sm_cmd *c,
		    struct sm_result *res)
{
	for (uint32_t i = 0; i < c->u.expire.n; i++) {
		const struct sm_lease_ref *r = &c->u.expire.refs[i];
		bool found;
		uint32_t pos = lease_pos(st, r->id, &found);
		/* Skip what was revoked meanwhile or renewed after the leader decided. */
		if (!found || st->leases[pos].renewed != r->renewed)
			continue;
		lease_remove_at(st, pos, res, index);
		res->count++;
	}
	return 0;
}

static int a_member_add(struct sm_state *st, const struct sm_cmd *c)
{
	bool found;
	uint32_t pos;

	if (reserve((void **)&st->members, st->n_members, &st->cap_members,
		    sizeof(st->members[0])) != 0)
		return -ENOMEM;
	pos = member_pos(st, c->u.member.id, &found);
	memmove(&st->members[pos + 1], &st->members[pos],
		(st->n_members - pos) * sizeof(st->members[0]));
	st->members[pos] = c->u.member;
	st->n_members++;
	return 0;
}

static int mutate(struct sm_state *st, uint64_t index, const struct sm_cmd *c,
		  struct sm_result *res)
{
	bool found;
	uint32_t pos;

	switch (c->type) {
	case SM_CMD_SERVICE_CREATE:
		return a_create(st, index, c, res);
	case SM_CMD_SERVICE_UPDATE: {
		struct sm_service *s = svc_find(st, c->u.service.name);
		s->def = c->u.service;
		if (s->def.table_size == 0)
			s->def.table_size = MAGLEV_DEFAULT_SIZE;
		s->modified = index;
		return 0;
	}
	case SM_CMD_SERVICE_DELETE:
		return a_delete(st, index, c, res);
	case SM_CMD_BACKEND_REGISTER:
		return a_register(st, index, c, res);
	case SM_CMD_BACKEND_WEIGHT:
	case SM_CMD_BACKEND_DRAIN:
	case SM_CMD_BACKEND_HEALTH:
	case SM_CMD_BACKEND_DEREGISTER:
		return a_backend(st, index, c, res);
	case SM_CMD_LEASE_GRANT:
		return a_grant(st, index, c, res);
	case SM_CMD_LEASE_REVOKE:
		res->lease = c->u.lease.id;
		lease_remove_at(st, lease_pos(st, c->u.lease.id, &found), res, index);
		return 0;
	case SM_CMD_LEASE_EXPIRE:
		return a_expire(st, index, c, res);
	case SM_CMD_SET_HASH_SEED:
		st->seed = c->u.seed;
		st->seed_set = 1;
		return 0;
	case SM_CMD_MEMBER_ADD:
		return a_member_add(st, c);
	case SM_CMD_MEMBER_REMOVE:
		pos = member_pos(st, c->u.member.id, &found);
		memmove(&st->members[pos], &st->members[pos + 1],
			(st->n_members - pos - 1) * sizeof(st->members[0]));
		st->n_members--;
		return 0;
	default:
		return 0;
	}
}

int sm_apply_cmd(struct sm_state *st, uint64_t index, const struct sm_cmd *c, struct sm_err *err,
		 struct sm_result *res)
{
	if (sm_validate(st, c, err) != SM_ERR_OK)
		return 0;
	return mutate(st, index, c, res);
}

int sm_apply(struct sm_state *st, uint64_t index, const uint8_t *bytes, size_t len,
	     struct sm_result *res)
{
	struct sm_result local;
	struct sm_cmd *c;
	struct sm_err err;
	int rc = 0;

	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof(*res));
	if (index <= st->revision)
		return -EINVAL;
	/*
	 * ~4 KiB with the expiry batch: not on the stack, and not from malloc on
	 * every entry either (an allocation that size makes glibc consolidate
	 * its fast bins each time). sm_apply does not nest.
	 */
	static _Thread_local struct sm_cmd scratch;
	c = &scratch;
	if (sm_cmd_decode(bytes, len, c) != 0)
		fail(&err, SM_ERR_DECODE, "entry %llu is not a valid command",
		     (unsigned long long)index);
	else
		rc = sm_apply_cmd(st, index, c, &err, res);
	if (rc != 0) {
		memset(res, 0, sizeof(*res));
		return rc;
	}
	res->code = err.code;
	memcpy(res->msg, err.msg, sizeof(res->msg));
	res->revision = index;
	st->revision = index;
	return 0;
}

int sm_advance(struct sm_state *st, uint64_t index)
{
	if (index <= st->revision)
		return -EINVAL;
	st->revision = index;
	return 0;
}

/* ---- Life cycle ---- */

struct sm_state *sm_new(void)
{
	return calloc(1, sizeof(struct sm_state));
}

void sm_state_clear(struct sm_state *st)
{
	for (uint32_t i = 0; i < st->n_services; i++)
		svc_free(st->services[i]);
	free(st->services);
	free(st->leases);
	free(st->members);
	memset(st, 0, sizeof(*st));
}

void sm_free(struct sm_state *st)
{
	if (st == NULL)
		return;
	sm_state_clear(st);
	free(st);
}

/* ---- Queries ---- */

uint64_t sm_revision(const struct sm_state *st)
{
	return st->revision;
}

int sm_hash_seed(const struct sm_state *st, uint64_t *seed)
{
	if (st->seed_set && seed != NULL)
		*seed = st->seed;
	return st->seed_set;
}

uint32_t sm_service_count(const struct sm_state *st)
{
	return st->n_services;
}

const struct sm_service *sm_service_at(const struct sm_state *st, uint32_t i)
{
	return i < st->n_services ? st->services[i] : NULL;
}

const struct sm_service *sm_service_get(const struct sm_state *st, const char *name)
{
	return svc_find(st, name);
}

const struct sm_backend *sm_backend_get(const struct sm_service *svc, uint32_t uid)
{
	bool found;
	uint32_t i = be_pos(svc, uid, &found);

	return found ? &svc->backends[i] : NULL;
}

static bool passes(const struct sm_backend *b, unsigned filter)
{
	return !(filter & SM_FILTER_HEALTHY) || sm_backend_state(b) == SM_BACKEND_ACTIVE;
}

int sm_backend_list(const struct sm_state *st, const char *service, unsigned filter,
		    const struct sm_backend **out, uint32_t cap)
{
	const struct sm_service *s = svc_find(st, service);
	uint32_t n = 0;

	if (s == NULL)
		return -ENOENT;
	for (uint32_t i = 0; i < s->n_backends; i++) {
		if (!passes(&s->backends[i], filter))
			continue;
		if (n < cap)
			out[n] = &s->backends[i];
		n++;
	}
	return (int)n;
}

int sm_endpoints(const struct sm_state *st, const char *service, unsigned filter,
		 struct sm_endpoint *out, uint32_t cap)
{
	const struct sm_service *s = svc_find(st, service);
	uint32_t n = 0;

	if (s == NULL)
		return -ENOENT;
	for (uint32_t i = 0; i < s->n_backends; i++) {
		const struct sm_backend *b = &s->backends[i];
		if (!passes(b, filter))
			continue;
		if (n < cap) {
			struct sm_endpoint *e = &out[n];
			memset(e, 0, sizeof(*e));
			e->addr = b->addr;
			e->port = b->port;
			e->state = (uint8_t)sm_backend_state(b);
			e->weight = e->state == SM_BACKEND_ACTIVE ? b->weight : 0;
			e->uid = b->uid;
		}
		n++;
	}
	return (int)n;
}

uint32_t sm_lease_count(const struct sm_state *st)
{
	return st->n_leases;
}

const struct sm_lease *sm_lease_at(const struct sm_state *st, uint32_t i)
{
	return i < st->n_leases ? &st->leases[i] : NULL;
}

const struct sm_lease *sm_lease_get(const struct sm_state *st, uint64_t id)
{
	bool found;
	uint32_t i = lease_pos(st, id, &found);

	return found ? &st->leases[i] : NULL;
}

uint32_t sm_member_count(const struct sm_state *st)
{
	return st->n_members;
}

const struct sm_member *sm_member_at(const struct sm_state *st, uint32_t i)
{
	return i < st->n_members ? &st->members[i] : NULL;
}

const struct sm_member *sm_member_get(const struct sm_state *st, uint64_t id)
{
	bool found;
	uint32_t i = member_pos(st, id, &found);

	return found ? &st->members[i] : NULL;
}

/* ---- Forwarding spec ---- */

int sm_to_spec(const struct sm_state *st, const struct sm_node_params *node, struct fwd_spec *spec)
{
	struct fulcrum_config *cfg;
	struct cfg_backend *bes = NULL;
	size_t nb = 0, k = 0;
	int rc = -ENOMEM;

	memset(spec, 0, sizeof(*spec));
	if (node->n_workers == 0)
		return -EINVAL;
	/*
	 * Through a transient config so that config_to_spec stays the one place
	 * that turns services into a fwd_spec (uids, MAC lookup, one allocation).
	 */
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n_services; i++)
		nb += st->services[i]->n_backends;
	cfg->services = calloc(st->n_services + 1, sizeof(*cfg->services));
	bes = calloc(nb + 1, sizeof(*bes));
	if (cfg->services == NULL || bes == NULL)
		goto out;
	cfg->hash_seed = st->seed_set ? st->seed : 0;
	cfg->node_v4 = node->node_v4;
	cfg->node_v6 = node->node_v6;
	cfg->dp.workers = node->n_workers;
	cfg->n_services = 0;
	if (node->skipped != NULL)
		*node->skipped = 0;
	for (uint32_t i = 0; i < st->n_services; i++) {
		const struct sm_service *s = st->services[i];
		const struct addr *own = s->def.vip.family == ADDR_V4 ? &node->node_v4 : &node->node_v6;

		if ((s->def.mode == FWD_MODE_NAT && own->family != s->def.vip.family) ||
		    (s->def.mode == FWD_MODE_TUNNEL && node->node_v4.family != ADDR_V4)) {
			if (node->skipped != NULL)
				(*node->skipped)++;
			continue;
		}
		struct cfg_service *o = &cfg->services[cfg->n_services++];

		memcpy(o->name, s->def.name, sizeof(o->name));
		o->vip = s->def.vip;
		o->port = s->def.port;
		o->proto = s->def.proto;
		o->mode = s->def.mode;
		o->announce = s->def.announce != 0;
		o->table_size = s->def.table_size;
		o->backends = &bes[k];
		for (uint32_t j = 0; j < s->n_backends; j++) {
			const struct sm_backend *b = &s->backends[j];
			enum sm_backend_state bs = sm_backend_state(b);

			/* Down backends leave the table; draining ones keep their flows. */
			if (bs == SM_BACKEND_DOWN)
				continue;
			bes[k].addr = b->addr;
			bes[k].port = b->port;
			bes[k].weight = bs == SM_BACKEND_DRAINING ? 0 : b->weight;
			bes[k].uid = b->uid;
			k++;
			o->n_backends++;
		}
	}
	rc = config_to_spec(cfg, st->revision, node->port_mac, node->gateway_mac, node->neigh,
			    node->neigh_ctx, node->n_workers, spec);
out:
	free(bes);
	free(cfg->services);
	free(cfg);
	return rc;
}

void sm_spec_free(struct fwd_spec *spec)
{
	config_spec_free(spec);
}
