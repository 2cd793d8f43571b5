/* Membership: configurations, single-server changes with learners (thesis §4.1-4.2), leadership transfer (thesis §3.10). */
#include "raft/raft_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool in_list(const raft_id *v, uint32_t n, raft_id id)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

bool raft_conf_is_voter(const struct raft_conf *c, raft_id id)
{
	return in_list(c->voters, c->n_voters, id);
}

bool raft_conf_is_member(const struct raft_conf *c, raft_id id)
{
	return in_list(c->voters, c->n_voters, id) || in_list(c->learners, c->n_learners, id);
}

uint32_t raft_quorum(const struct raft *r)
{
	return r->conf.n_voters / 2 + 1;
}

struct raft_progress *raft_pr_find(struct raft *r, raft_id id)
{
	for (size_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return &r->prs[i];
	return NULL;
}

/* One progress per member of the configuration in force; existing ones are kept. */
int raft_prs_rebuild(struct raft *r)
{
	size_t n = r->conf.n_voters + r->conf.n_learners, k = 0;
	struct raft_progress *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		bool voter = i < r->conf.n_voters;
		raft_id id = voter ? r->conf.voters[i] : r->conf.learners[i - r->conf.n_voters];
		struct raft_progress *old = raft_pr_find(r, id);

		if (old) {
			v[k] = *old;
			old->inflight = NULL;
		} else {
			v[k].id = id;
			v[k].inflight = calloc(r->cfg.max_inflight, sizeof(uint64_t));
			if (!v[k].inflight) {
				for (size_t j = 0; j < k; j++) {
					/* hand the moved rings back so nothing leaks or dangles */
					struct raft_progress *o = raft_pr_find(r, v[j].id);

					if (o)
						o->inflight = v[j].inflight;
					else
						free(v[j].inflight);
				}
				free(v);
				return -ENOMEM;
			}
			raft_pr_reset(r, &v[k]);
			v[k].recent_active = 1;
		}
		v[k].voter = voter;
		k++;
	}
	for (size_t i = 0; i < r->n_prs; i++)
		free(r->prs[i].inflight);
	free(r->prs);
	r->prs = v;
	r->n_prs = k;
	return 0;
}

int raft_conf_encode(const struct raft_conf *c, uint8_t *buf, size_t cap)
{
	size_t need = 8 + 8 * ((size_t)c->n_voters + c->n_learners);
	size_t off = 0;

	if (c->n_voters > RAFT_MAX_MEMBERS || c->n_learners > RAFT_MAX_MEMBERS)
		return -EINVAL;
	if (cap < need)
		return -ENOSPC;
	for (int i = 0; i < 4; i++)
		buf[off++] = (uint8_t)(c->n_voters >> (8 * i));
	for (int i = 0; i < 4; i++)
		buf[off++] = (uint8_t)(c->n_learners >> (8 * i));
	for (uint32_t k = 0; k < c->n_voters + c->n_learners; k++) {
		raft_id id = k < c->n_voters ? c->voters[k] : c->learners[k - c->n_voters];

		for (int i = 0; i < 8; i++)
			buf[off++] = (uint8_t)(id >> (8 * i));
	}
	return (int)off;
}

int raft_conf_decode(struct raft_conf *c, const uint8_t *buf, size_t len)
{
	uint32_t nv = 0, nl = 0;
	size_t off = 8;

	memset(c, 0, sizeof(*c));
	if (len < 8)
		return -EINVAL;
	for (int i = 0; i < 4; i++) {
		nv |= (uint32_t)buf[i] << (8 * i);
		nl |= (uint32_t)buf[4 + i] << (8 * i);
	}
	if (nv > RAFT_MAX_MEMBERS || nl > RAFT_MAX_MEMBERS || len != 8 + 8 * ((size_t)nv + nl))
		return -EINVAL;
	for (uint32_t k = 0; k < nv + nl; k++) {
		raft_id id = 0;

		for (int i = 0; i < 8; i++)
			id |= (raft_id)buf[off++] << (8 * i);
		if (id == RAFT_ID_NONE || raft_conf_is_member(c, id))
			return -EINVAL;
		if (k < nv)
			c->voters[c->n_voters++] = id;
		else
			c->learners[c->n_learners++] = id;
	}
	return 0;
}

/* Thesis §4.1: a server uses the latest configuration in its log, committed or not. */
void raft_conf_note_append(struct raft *r, const struct raft_entry *e)
{
	struct raft_conf c;

	if (e->type != RAFT_ENTRY_CONF || raft_conf_decode(&c, e->data, e->len) != 0)
		return;
	r->conf = c;
	r->conf_index = e->index;
	(void)raft_prs_rebuild(r); /* on -ENOMEM the old set stays; rebuilt on the next change */
}

struct raft_conf raft_conf_at(const struct raft *r, uint64_t index)
{
	struct raft_conf c;

	for (uint64_t i = index; i > r->log.offset; i--) {
		const struct raft_entry *e = raft_log_get(&r->log, i);

		if (e && e->type == RAFT_ENTRY_CONF && raft_conf_decode(&c, e->data, e->len) == 0)
			return c;
	}
	return r->base_conf;
}

/* After a suffix was truncated, the configuration falls back to the latest remaining one. */
void raft_conf_recompute(struct raft *r)
{
	uint64_t last = raft_log_last_index(&r->log);

	if (r->conf_index <= last)
		return;
	r->conf = raft_conf_at(r, last);
	r->conf_index = r->log.offset;
	for (uint64_t i = last; i > r->log.offset; i--) {
		const struct raft_entry *e = raft_log_get(&r->log, i);

		if (e->type == RAFT_ENTRY_CONF) {
			r->conf_index = i;
			break;
		}
	}
	(void)raft_prs_rebuild(r);
}

/* Thesis §4.2.2: a leader removed by the configuration it just committed steps down. */
void raft_after_commit(struct raft *r)
{
	if (r->role == RAFT_LEADER && r->conf_index <= r->commit && !raft_conf_is_voter(&r->conf, r->id))
		raft_become_follower(r, r->term, RAFT_ID_NONE);
}

static bool committed_in_term(const struct raft *r)
{
	return raft_log_term_or0(&r->log, r->commit) == r->term;
}

int raft_propose_conf(struct raft *r, enum raft_conf_op op, raft_id node, uint64_t *index)
{
	struct raft_conf c = r->conf;
	uint8_t buf[8 + 16 * RAFT_MAX_MEMBERS];
	struct raft_progress *pr;
	int n, rc;

	if (node == RAFT_ID_NONE)
		return -EINVAL;
	if (r->role != RAFT_LEADER)
		return -EPERM;
	if (!committed_in_term(r))
		return -EAGAIN;
	if (r->conf_index > r->commit || r->transferee != RAFT_ID_NONE)
		return -EBUSY;
	switch (op) {
	case RAFT_CONF_ADD_LEARNER:
		if (raft_conf_is_member(&c, node))
			return -EEXIST;
		if (c.n_learners >= RAFT_MAX_MEMBERS)
			return -ENOSPC;
		c.learners[c.n_learners++] = node;
		break;
	case RAFT_CONF_PROMOTE:
		if (raft_conf_is_voter(&c, node))
			return -EEXIST;
		if (!raft_conf_is_member(&c, node))
			return -ENOENT;
		if (c.n_voters >= RAFT_MAX_MEMBERS)
			return -ENOSPC;
		/* Thesis §4.2.1: a voter that is far behind would stall commits; promote only
		 * once the learner is within one batch of the leader. */
		pr = raft_pr_find(r, node);
		/*
		 * Only a learner that has caught up (within one message of entries)
		 * and has acknowledged at least the commit point: match 0 means it
		 * has never answered, and a voter that cannot vote or append would
		 * raise the quorum without adding to it (thesis §4.2.1).
		 */
		if (!pr || pr->match == 0 || pr->match < r->commit ||
		    pr->match + r->cfg.max_msg_entries < raft_log_last_index(&r->log))
			return -EINPROGRESS;
		for (uint32_t i = 0; i < c.n_learners; i++)
			if (c.learners[i] == node)
				c.learners[i] = c.learners[--c.n_learners];
		c.voters[c.n_voters++] = node;
		break;
	case RAFT_CONF_REMOVE:
		if (!raft_conf_is_member(&c, node))
			return -ENOENT;
		if (raft_conf_is_voter(&c, node) && c.n_voters == 1)
			return -EINVAL;
		for (uint32_t i = 0; i < c.n_learners; i++)
			if (c.learners[i] == node)
				c.learners[i] = c.learners[--c.n_learners];
		for (uint32_t i = 0; i < c.n_voters; i++)
			if (c.voters[i] == node)
				c.voters[i] = c.voters[--c.n_voters];
		break;
	default:
		return -EINVAL;
	}
	n = raft_conf_encode(&c, buf, sizeof(buf));
	if (n < 0)
		return n;
	rc = raft_append_local(r, RAFT_ENTRY_CONF, buf, (uint32_t)n);
	if (rc != 0)
		return rc;
	if (index)
		*index = raft_log_last_index(&r->log);
	(void)raft_maybe_commit(r);
	raft_bcast_append(r);
	return 0;
}

int raft_transfer_leadership(struct raft *r, raft_id target)
{
	struct raft_progress *pr;

	if (r->role != RAFT_LEADER)
		return -EPERM;
	if (target == r->id)
		return -EINVAL;
	if (r->transferee != RAFT_ID_NONE)
		return -EBUSY;
	pr = raft_pr_find(r, target);
	if (!pr || !pr->voter)
		return -ENOENT;
	r->transferee = target;
	r->election_elapsed = 0; /* the transfer times out after one election timeout */
	if (pr->match == raft_log_last_index(&r->log))
		(void)raft_msg_new(r, RAFT_MSG_TIMEOUT_NOW, target);
	else
		raft_send_append(r, pr, false);
	return 0;
}
