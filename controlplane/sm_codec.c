/* sm_codec: the state machine's bytes — command encoding, snapshot, restore, digest. */
#include "controlplane/sm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/sm_internal.h"
#include "dataplane/hash.h"

/*
 * Wire rules (commands and snapshots): integers little-endian, fixed width;
 * strings as a u8 length then the bytes (no NUL); addresses as a family byte
 * (0, 4 or 6) then 0, 4 or 16 bytes. Versioned by a leading byte so a later
 * format can be told apart; a decoder refuses versions it does not know.
 */
#define CMD_VERSION  1
#define SNAP_MAGIC   0x50534d46u /* "FMSP" little-endian: Fulcrum state machine snapshot */
#define SNAP_VERSION 1
#define DIGEST_SEED  0x66756c6372756d53ULL

/* ---- Writer: into a buffer, counting only (buf NULL), or into a hash (digest) ---- */

struct wr {
	uint8_t *buf;
	size_t cap, len;
	size_t total; /* bytes produced */
	int err;      /* -ENOSPC once the buffer was too small */
	bool hashing; /* buf is a window folded into h when full */
	uint64_t h;
};

static void w_flush(struct wr *w)
{
	/* Chained chunk hashes: chunk boundaries are fixed by the window size, so
	 * equal byte streams give equal digests. */
	w->h = hash_bytes(w->buf, w->len, w->h);
	w->len = 0;
}

static void w_put(struct wr *w, const void *p, size_t n)
{
	const uint8_t *s = p;

	w->total += n;
	if (w->buf == NULL || w->err)
		return;
	if (w->hashing) {
		while (n > 0) {
			size_t k = w->cap - w->len < n ? w->cap - w->len : n;
			memcpy(w->buf + w->len, s, k);
			w->len += k;
			s += k;
			n -= k;
			if (w->len == w->cap)
				w_flush(w);
		}
		return;
	}
	if (w->cap - w->len < n) {
		w->err = -ENOSPC;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void w_uint(struct wr *w, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_put(w, b, bytes);
}

static void w_u8(struct wr *w, uint8_t v)
{
	w_uint(w, v, 1);
}
static void w_u16(struct wr *w, uint16_t v)
{
	w_uint(w, v, 2);
}
static void w_u32(struct wr *w, uint32_t v)
{
	w_uint(w, v, 4);
}
static void w_u64(struct wr *w, uint64_t v)
{
	w_uint(w, v, 8);
}

/* A string of at most max - 1 bytes (the caller checked that a NUL is within max). */
static void w_str(struct wr *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n >= max || n > 255) {
		w->err = -EINVAL;
		return;
	}
	w_u8(w, (uint8_t)n);
	w_put(w, s, n);
}

static void w_addr(struct wr *w, const struct addr *a)
{
	w_u8(w, a->family);
	w_put(w, a->b, addr_len(a));
}

/* ---- Reader: never past len; the first problem sticks ---- */

struct rd {
	const uint8_t *p;
	size_t len, off;
	int err;
};

static bool r_take(struct rd *r, size_t n, const uint8_t **out)
{
	if (r->err || r->len - r->off < n) {
		r->err = -EINVAL;
		return false;
	}
	*out = r->p + r->off;
	r->off += n;
	return true;
}

static uint64_t r_uint(struct rd *r, unsigned bytes)
{
	const uint8_t *b;
	uint64_t v = 0;

	if (!r_take(r, bytes, &b))
		return 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static uint8_t r_u8(struct rd *r)
{
	return (uint8_t)r_uint(r, 1);
}
static uint16_t r_u16(struct rd *r)
{
	return (uint16_t)r_uint(r, 2);
}
static uint32_t r_u32(struct rd *r)
{
	return (uint32_t)r_uint(r, 4);
}
static uint64_t r_u64(struct rd *r)
{
	return r_uint(r, 8);
}

static void r_str(struct rd *r, char *dst, size_t max)
{
	size_t n = r_u8(r);
	const uint8_t *b;

	dst[0] = '\0';
	if (n >= max || !r_take(r, n, &b)) {
		r->err = -EINVAL;
		return;
	}
	if (memchr(b, '\0', n) != NULL) {
		r->err = -EINVAL;
		return;
	}
	memcpy(dst, b, n);
	dst[n] = '\0';
}

static void r_addr(struct rd *r, struct addr *a)
{
	uint8_t fam = r_u8(r);
	const uint8_t *b;

	memset(a, 0, sizeof(*a));
	if (fam == ADDR_NONE)
		return;
	if (fam != ADDR_V4 && fam != ADDR_V6) {
		r->err = -EINVAL;
		return;
	}
	if (!r_take(r, fam == ADDR_V4 ? 4 : 16, &b))
		return;
	if (fam == ADDR_V4)
		addr_set_v4(a, b);
	else
		addr_set_v6(a, b);
}

/* ---- Commands ---- */

static void w_def(struct wr *w, const struct sm_service_def *d)
{
	w_str(w, d->name, sizeof(d->name));
	w_addr(w, &d->vip);
	w_u16(w, d->port);
	w_u8(w, d->proto);
	w_u8(w, d->mode);
	w_u8(w, d->announce);
	w_u8(w, d->algorithm);
	w_u32(w, d->table_size);
	w_u32(w, d->max_backends);
	w_u8(w, d->health.type);
	w_str(w, d->health.path, sizeof(d->health.path));
	w_u32(w, d->health.interval_ms);
	w_u32(w, d->health.timeout_ms);
	w_u8(w, d->health.rise);
	w_u8(w, d->health.fall);
}

static void r_def(struct rd *r, struct sm_service_def *d)
{
	r_str(r, d->name, sizeof(d->name));
	r_addr(r, &d->vip);
	d->port = r_u16(r);
	d->proto = r_u8(r);
	d->mode = r_u8(r);
	d->announce = r_u8(r);
	d->algorithm = r_u8(r);
	d->table_size = r_u32(r);
	d->max_backends = r_u32(r);
	d->health.type = r_u8(r);
	r_str(r, d->health.path, sizeof(d->health.path));
	d->health.interval_ms = r_u32(r);
	d->health.timeout_ms = r_u32(r);
	d->health.rise = r_u8(r);
	d->health.fall = r_u8(r);
}

/* Both directions in one table-like switch, so a field cannot be added to one side only. */
static void w_cmd(struct wr *w, const struct sm_cmd *c)
{
	w_u8(w, CMD_VERSION);
	w_u8(w, c->type);
	switch (c->type) {
	case SM_CMD_SERVICE_CREATE:
	case SM_CMD_SERVICE_UPDATE:
		w_def(w, &c->u.service);
		break;
	case SM_CMD_SERVICE_DELETE:
		w_str(w, c->u.del.service, sizeof(c->u.del.service));
		break;
	case SM_CMD_BACKEND_REGISTER:
		w_str(w, c->u.reg.service, sizeof(c->u.reg.service));
		w_addr(w, &c->u.reg.addr);
		w_u16(w, c->u.reg.port);
		w_u32(w, c->u.reg.weight);
		w_u64(w, c->u.reg.lease);
		break;
	case SM_CMD_BACKEND_WEIGHT:
	case SM_CMD_BACKEND_DRAIN:
	case SM_CMD_BACKEND_HEALTH:
	case SM_CMD_BACKEND_DEREGISTER:
		w_str(w, c->u.be.service, sizeof(c->u.be.service));
		w_u32(w, c->u.be.uid);
		w_u32(w, c->u.be.value);
		break;
	case SM_CMD_LEASE_GRANT:
		w_u64(w, c->u.lease.id);
		w_u32(w, c->u.lease.ttl_ms);
		w_str(w, c->u.lease.service, sizeof(c->u.lease.service));
		break;
	case SM_CMD_LEASE_REVOKE:
		w_u64(w, c->u.lease.id);
		break;
	case SM_CMD_LEASE_EXPIRE:
		if (c->u.expire.n == 0 || c->u.expire.n > SM_EXPIRE_MAX) {
			w->err = -EINVAL;
			break;
		}
		w_u16(w, (uint16_t)c->u.expire.n);
		for (uint32_t i = 0; i < c->u.expire.n; i++) {
			w_u64(w, c->u.expire.refs[i].id);
			w_u64(w, c->u.expire.refs[i].renewed);
		}
		break;
	case SM_CMD_SET_HASH_SEED:
		w_u64(w, c->u.seed);
		break;
	case SM_CMD_MEMBER_ADD:
		w_u64(w, c->u.member.id);
		w_str(w, c->u.member.raft_addr, sizeof(c->u.member.raft_addr));
		w_str(w, c->u.member.api_addr, sizeof(c->u.member.api_addr));
		break;
	case SM_CMD_MEMBER_REMOVE:
		w_u64(w, c->u.member.id);
		break;
	default:
		w->err = -EINVAL;
		break;
	}
}

int sm_cmd_encode(const struct sm_cmd *cmd, uint8_t *buf, size_t cap)
{
	struct wr w = {.buf = buf, .cap = cap};

	if (buf == NULL)
		return -ENOSPC;
	w_cmd(&w, cmd);
	if (w.err)
		return w.err;
	return (int)w.len;
}

int sm_cmd_decode(const uint8_t *buf, size_t len, struct sm_cmd *c)
{
	struct rd r = {.p = buf, .len = len};

	memset(c, 0, sizeof(*c));
	if (buf == NULL || len > SM_CMD_MAX_LEN || r_u8(&r) != CMD_VERSION)
		return -EINVAL;
	c->type = r_u8(&r);
	switch (c->type) {
	case SM_CMD_SERVICE_CREATE:
	case SM_CMD_SERVICE_UPDATE:
		r_def(&r, &c->u.service);
		break;
	case SM_CMD_SERVICE_DELETE:
		r_str(&r, c->u.del.service, sizeof(c->u.del.service));
		break;
	case SM_CMD_BACKEND_REGISTER:
		r_str(&r, c->u.reg.service, sizeof(c->u.reg.service));
		r_addr(&r, &c->u.reg.addr);
		c->u.reg.port = r_u16(&r);
		c->u.reg.weight = r_u32(&r);
		c->u.reg.lease = r_u64(&r);
		break;
	case SM_CMD_BACKEND_WEIGHT:
	case SM_CMD_BACKEND_DRAIN:
	case SM_CMD_BACKEND_HEALTH:
	case SM_CMD_BACKEND_DEREGISTER:
		r_str(&r, c->u.be.service, sizeof(c->u.be.service));
		c->u.be.uid = r_u32(&r);
		c->u.be.value = r_u32(&r);
		break;
	case SM_CMD_LEASE_GRANT:
		c->u.lease.id = r_u64(&r);
		c->u.lease.ttl_ms = r_u32(&r);
		r_str(&r, c->u.lease.service, sizeof(c->u.lease.service));
		break;
	case SM_CMD_LEASE_REVOKE:
		c->u.lease.id = r_u64(&r);
		break;
	case SM_CMD_LEASE_EXPIRE:
		c->u.expire.n = r_u16(&r);
		if (c->u.expire.n == 0 || c->u.expire.n > SM_EXPIRE_MAX)
			r.err = -EINVAL;
		for (uint32_t i = 0; !r.err && i < c->u.expire.n; i++) {
			c->u.expire.refs[i].id = r_u64(&r);
			c->u.expire.refs[i].renewed = r_u64(&r);
		}
		break;
	case SM_CMD_SET_HASH_SEED:
		c->u.seed = r_u64(&r);
		break;
	case SM_CMD_MEMBER_ADD:
		c->u.member.id = r_u64(&r);
		r_str(&r, c->u.member.raft_addr, sizeof(c->u.member.raft_addr));
		r_str(&r, c->u.member.api_addr, sizeof(c->u.member.api_addr));
		break;
	case SM_CMD_MEMBER_REMOVE:
		c->u.member.id = r_u64(&r);
		break;
	default:
		r.err = -EINVAL;
		break;
	}
	if (r.err || r.off != r.len) {
		memset(c, 0, sizeof(*c));
		return -EINVAL;
	}
	return 0;
}

/* ---- Snapshot ---- */

/*
 * Layout (version 1): magic, version, revision, seed_set, seed; members;
 * services (definition and revisions, no backends); leases; then each
 * service's backends in the same order. Leases come after services and
 * before backends so that restore can re-check every reference in one pass,
 * in the order the log would have created them.
 */
static void w_state(struct wr *w, const struct sm_state *st)
{
	w_u32(w, SNAP_MAGIC);
	w_u8(w, SNAP_VERSION);
	w_u64(w, st->revision);
	w_u8(w, st->seed_set);
	w_u64(w, st->seed);
	w_u32(w, st->n_members);
	for (uint32_t i = 0; i < st->n_members; i++) {
		const struct sm_member *m = &st->members[i];
		w_u64(w, m->id);
		w_str(w, m->raft_addr, sizeof(m->raft_addr));
		w_str(w, m->api_addr, sizeof(m->api_addr));
	}
	w_u32(w, st->n_services);
	for (uint32_t i = 0; i < st->n_services; i++) {
		w_def(w, &st->services[i]->def);
		w_u64(w, st->services[i]->created);
		w_u64(w, st->services[i]->modified);
	}
	w_u32(w, st->n_leases);
	for (uint32_t i = 0; i < st->n_leases; i++) {
		const struct sm_lease *l = &st->leases[i];
		w_u64(w, l->id);
		w_u32(w, l->ttl_ms);
		w_str(w, l->service, sizeof(l->service));
		w_u64(w, l->renewed);
	}
	for (uint32_t i = 0; i < st->n_services; i++) {
		const struct sm_service *s = st->services[i];
		w_u32(w, s->n_backends);
		for (uint32_t j = 0; j < s->n_backends; j++) {
			const struct sm_backend *b = &s->backends[j];
			w_addr(w, &b->addr);
			w_u16(w, b->port);
			w_u32(w, b->weight);
			w_u8(w, b->draining);
			w_u8(w, b->down);
			w_u64(w, b->lease);
			w_u64(w, b->created);
		}
	}
}

int sm_snapshot(const struct sm_state *st, uint8_t **bytes, size_t *len)
{
	struct wr count = {0}, w = {0};

	*bytes = NULL;
	*len = 0;
	w_state(&count, st);
	w.buf = malloc(count.total ? count.total : 1);
	if (w.buf == NULL)
		return -ENOMEM;
	w.cap = count.total;
	w_state(&w, st);
	if (w.err) { /* cannot happen: the same walk was just measured */
		free(w.buf);
		return -EINVAL;
	}
	*bytes = w.buf;
	*len = w.len;
	return 0;
}

uint64_t sm_digest(const struct sm_state *st)
{
	uint8_t window[4096];
	struct wr w = {.buf = window, .cap = sizeof(window), .hashing = true, .h = DIGEST_SEED};

	w_state(&w, st);
	w_flush(&w);
	return hash_fmix64(w.h ^ w.total);
}

/* Apply one synthesized command to the state being restored; 0, -EINVAL or -ENOMEM. */
static int restore_cmd(struct sm_state *t, uint64_t index, const struct sm_cmd *c,
		       struct sm_result *res)
{
	struct sm_err err;
	int rc = sm_apply_cmd(t, index, c, &err, res);

	if (rc != 0)
		return rc;
	return err.code == SM_ERR_OK ? 0 : -EINVAL;
}

/*
 * Rebuild the state by replaying each object as the command that would have
 * created it, so a snapshot is held to the log's rules (names, ranges,
 * conflicts, limits, lease scopes); then check what only a snapshot carries
 * (canonical order, revisions).
 */
static int restore_into(struct sm_state *t, struct rd *r, struct sm_cmd *c)
{
	struct sm_result res;
	uint64_t rev;
	uint32_t n;
	int rc;

	if (r_u32(r) != SNAP_MAGIC || r_u8(r) != SNAP_VERSION)
		return -EINVAL;
	rev = r_u64(r);
	t->seed_set = r_u8(r);
	t->seed = r_u64(r);
	if (r->err || t->seed_set > 1 || (!t->seed_set && t->seed != 0))
		return -EINVAL;

	n = r_u32(r);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		memset(c, 0, sizeof(*c));
		c->type = SM_CMD_MEMBER_ADD;
		c->u.member.id = r_u64(r);
		r_str(r, c->u.member.raft_addr, sizeof(c->u.member.raft_addr));
		r_str(r, c->u.member.api_addr, sizeof(c->u.member.api_addr));
		if (r->err || (i > 0 && c->u.member.id <= t->members[i - 1].id))
			return -EINVAL;
		if ((rc = restore_cmd(t, 1, c, &res)) != 0)
			return rc;
	}

	n = r_u32(r);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		uint64_t created, modified;
		struct sm_service *s;

		memset(c, 0, sizeof(*c));
		c->type = SM_CMD_SERVICE_CREATE;
		r_def(r, &c->u.service);
		created = r_u64(r);
		modified = r_u64(r);
		if (r->err || c->u.service.table_size == 0 || created == 0 || created > modified ||
		    modified > rev)
			return -EINVAL;
		if (i > 0 && strcmp(c->u.service.name, t->services[i - 1]->def.name) <= 0)
			return -EINVAL;
		if ((rc = restore_cmd(t, created, c, &res)) != 0)
			return rc;
		s = t->services[i];
		s->modified = modified;
	}

	n = r_u32(r);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		uint64_t renewed;

		memset(c, 0, sizeof(*c));
		c->type = SM_CMD_LEASE_GRANT;
		/* Granting a new lease at index = id recreates it with that id. */
		uint64_t id = r_u64(r);
		c->u.lease.ttl_ms = r_u32(r);
		r_str(r, c->u.lease.service, sizeof(c->u.lease.service));
		renewed = r_u64(r);
		if (r->err || id == 0 || renewed < id || renewed > rev ||
		    (i > 0 && id <= t->leases[i - 1].id))
			return -EINVAL;
		if ((rc = restore_cmd(t, id, c, &res)) != 0)
			return rc;
		t->leases[i].renewed = renewed;
	}

	for (uint32_t i = 0; i < t->n_services && !r->err; i++) {
		struct sm_service *s = t->services[i];
		uint64_t modified = s->modified; /* the replayed registers move it */
		uint32_t nb = r_u32(r);

		for (uint32_t j = 0; j < nb && !r->err; j++) {
			uint8_t draining, down;
			uint64_t created;

			memset(c, 0, sizeof(*c));
			c->type = SM_CMD_BACKEND_REGISTER;
			memcpy(c->u.reg.service, s->def.name, sizeof(c->u.reg.service));
			r_addr(r, &c->u.reg.addr);
			c->u.reg.port = r_u16(r);
			c->u.reg.weight = r_u32(r);
			draining = r_u8(r);
			down = r_u8(r);
			c->u.reg.lease = r_u64(r);
			created = r_u64(r);
			if (r->err || c->u.reg.port == 0 || draining > 1 || down > 1 ||
			    created == 0 || created > rev)
				return -EINVAL;
			if ((rc = restore_cmd(t, created, c, &res)) != 0)
				return rc;
			/* Strictly increasing uids: a repeat would have been a re-registration. */
			if (!res.created || s->n_backends != j + 1 || s->backends[j].uid != res.uid)
				return -EINVAL;
			s->backends[j].draining = draining;
			s->backends[j].down = down;
		}
		s->modified = modified;
	}
	if (r->err || r->off != r->len)
		return -EINVAL;
	t->revision = rev;
	return 0;
}

int sm_restore(struct sm_state *st, const uint8_t *bytes, size_t len)
{
	struct rd r = {.p = bytes, .len = len};
	struct sm_state *t;
	struct sm_cmd *c;
	int rc;

	if (bytes == NULL)
		return -EINVAL;
	t = sm_new();
	c = malloc(sizeof(*c));
	if (t == NULL || c == NULL) {
		free(c);
		sm_free(t);
		return -ENOMEM;
	}
	rc = restore_into(t, &r, c);
	free(c);
	if (rc != 0) {
		sm_free(t);
		return rc;
	}
	sm_state_clear(st);
	*st = *t;
	free(t); /* its contents now belong to st */
	return 0;
}
