/* lease: the leader's in-memory lease deadlines. */
#include "controlplane/lease.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lease_slot {
	uint64_t id;
	uint64_t renewed; /* the state's renewed revision when last synced */
	uint64_t deadline;
	uint32_t ttl_ms;
	uint8_t pending; /* an expiry naming (id, renewed) was handed out */
};

struct lease_tracker {
	struct lease_slot *v; /* sorted by id, like sm_lease_at() */
	uint32_t n, cap;
};

struct lease_tracker *lease_tracker_new(void)
{
	return calloc(1, sizeof(struct lease_tracker));
}

void lease_tracker_free(struct lease_tracker *t)
{
	if (!t)
		return;
	free(t->v);
	free(t);
}

static struct lease_slot *find(const struct lease_tracker *t, uint64_t id)
{
	uint32_t lo = 0, hi = t->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->v[mid].id == id)
			return &t->v[mid];
		if (t->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Merge the state's leases (id order) with the old slots into a new array. */
static int rebuild(struct lease_tracker *t, const struct sm_state *st, uint64_t now_ms,
		   int keep_deadlines)
{
	uint32_t n = sm_lease_count(st), i, j = 0;
	struct lease_slot *nv = NULL;

	if (n) {
		nv = calloc(n, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const struct sm_lease *l = sm_lease_at(st, i);
		struct lease_slot *s = &nv[i];

		while (keep_deadlines && j < t->n && t->v[j].id < l->id)
			j++;
		s->id = l->id;
		s->ttl_ms = l->ttl_ms;
		s->renewed = l->renewed;
		if (keep_deadlines && j < t->n && t->v[j].id == l->id &&
		    t->v[j].renewed == l->renewed) {
			s->deadline = t->v[j].deadline;
			s->pending = t->v[j].pending;
		} else {
			/* New, or renewed through the log: a full TTL from now. */
			s->deadline = now_ms + l->ttl_ms;
			s->pending = 0;
		}
	}
	free(t->v);
	t->v = nv;
	t->n = t->cap = n;
	return 0;
}

int lease_reset(struct lease_tracker *t, const struct sm_state *st, uint64_t now_ms)
{
	int rc = rebuild(t, st, now_ms, 0);

	if (rc) {
		free(t->v);
		t->v = NULL;
		t->n = t->cap = 0;
	}
	return rc;
}

int lease_sync(struct lease_tracker *t, const struct sm_state *st, uint64_t now_ms)
{
	return rebuild(t, st, now_ms, 1);
}

enum lease_ka lease_keepalive(struct lease_tracker *t, uint64_t id, uint64_t now_ms,
			      uint32_t *ttl_ms)
{
	struct lease_slot *s = find(t, id);

	if (!s)
		return LEASE_KA_NOT_FOUND;
	if (ttl_ms)
		*ttl_ms = s->ttl_ms;
	/* The expiry already names this renewed revision: only a logged renewal,
	 * ordered before it, makes the state skip it. */
	if (s->pending)
		return LEASE_KA_RENEW;
	s->deadline = now_ms + s->ttl_ms;
	return LEASE_KA_OK;
}

uint32_t lease_collect_expired(struct lease_tracker *t, uint64_t now_ms, struct sm_lease_ref *out,
			       uint32_t cap)
{
	uint32_t i, k = 0;

	for (i = 0; i < t->n && k < cap; i++) {
		struct lease_slot *s = &t->v[i];

		if (s->pending || s->deadline > now_ms)
			continue;
		s->pending = 1;
		out[k].id = s->id;
		out[k].renewed = s->renewed;
		k++;
	}
	return k;
}

void lease_expire_failed(struct lease_tracker *t, const struct sm_lease_ref *refs, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		struct lease_slot *s = find(t, refs[i].id);

		if (s && s->renewed == refs[i].renewed)
			s->pending = 0;
	}
}

void lease_forget(struct lease_tracker *t, uint64_t id)
{
	struct lease_slot *s = find(t, id);

	if (!s)
		return;
	memmove(s, s + 1, (size_t)(t->v + t->n - (s + 1)) * sizeof(*s));
	t->n--;
}

uint64_t lease_next_deadline(const struct lease_tracker *t)
{
	uint64_t best = UINT64_MAX;
	uint32_t i;

	for (i = 0; i < t->n; i++)
		if (!t->v[i].pending && t->v[i].deadline < best)
			best = t->v[i].deadline;
	return best;
}

uint32_t lease_count(const struct lease_tracker *t)
{
	return t->n;
}
