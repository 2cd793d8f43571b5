/* In-memory Raft log with an offset, so a compacted prefix costs nothing. */
#include "raft/raft_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void raft_log_init(struct raft_log *l, uint64_t offset, uint64_t offset_term)
{
	memset(l, 0, sizeof(*l));
	l->offset = offset;
	l->offset_term = offset_term;
}

void raft_log_free(struct raft_log *l)
{
	raft_entries_free(l->ents, l->n);
	memset(l, 0, sizeof(*l));
}

uint64_t raft_log_last_index(const struct raft_log *l)
{
	return l->offset + l->n;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
	return l->n ? l->ents[l->n - 1].term : l->offset_term;
}

int raft_log_term(const struct raft_log *l, uint64_t index, uint64_t *term)
{
	if (index == l->offset) {
		*term = l->offset_term;
		return 0;
	}
	if (index < l->offset || index > raft_log_last_index(l))
		return -ENOENT;
	*term = l->ents[index - l->offset - 1].term;
	return 0;
}

uint64_t raft_log_term_or0(const struct raft_log *l, uint64_t index)
{
	uint64_t t = 0;

	if (raft_log_term(l, index, &t) != 0)
		return 0;
	return t;
}

const struct raft_entry *raft_log_get(const struct raft_log *l, uint64_t index)
{
	if (index <= l->offset || index > raft_log_last_index(l))
		return NULL;
	return &l->ents[index - l->offset - 1];
}

int raft_entry_copy(struct raft_entry *dst, const struct raft_entry *src)
{
	*dst = *src;
	dst->data = NULL;
	if (src->len) {
		dst->data = malloc(src->len);
		if (!dst->data)
			return -ENOMEM;
		memcpy(dst->data, src->data, src->len);
	}
	return 0;
}

void raft_entries_free(struct raft_entry *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ents[i].data);
	free(ents);
}

int raft_entries_copy(struct raft_entry **dst, const struct raft_log *l, uint64_t from, uint64_t to)
{
	size_t n = (size_t)(to - from + 1);
	struct raft_entry *v;

	*dst = NULL;
	if (to < from)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (raft_entry_copy(&v[i], raft_log_get(l, from + i)) != 0) {
			raft_entries_free(v, i);
			return -ENOMEM;
		}
	}
	*dst = v;
	return 0;
}

int raft_log_append(struct raft_log *l, const struct raft_entry *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct raft_entry *v = realloc(l->ents, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->ents = v;
		l->cap = cap;
	}
	if (raft_entry_copy(&l->ents[l->n], e) != 0)
		return -ENOMEM;
	l->ents[l->n].index = raft_log_last_index(l) + 1;
	l->n++;
	return 0;
}

void raft_log_truncate(struct raft_log *l, uint64_t from)
{
	if (from <= l->offset)
		from = l->offset + 1;
	while (raft_log_last_index(l) >= from && l->n > 0) {
		l->n--;
		free(l->ents[l->n].data);
	}
}

void raft_log_compact(struct raft_log *l, uint64_t upto)
{
	size_t drop;

	if (upto <= l->offset)
		return;
	if (upto > raft_log_last_index(l))
		upto = raft_log_last_index(l);
	drop = (size_t)(upto - l->offset);
	l->offset_term = l->ents[drop - 1].term;
	for (size_t i = 0; i < drop; i++)
		free(l->ents[i].data);
	memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
	l->n -= drop;
	l->offset = upto;
}

void raft_log_reset(struct raft_log *l, uint64_t offset, uint64_t offset_term)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ents[i].data);
	l->n = 0;
	l->offset = offset;
	l->offset_term = offset_term;
}

/*
 * Fast back-off (Raft §5.3, the optimisation etcd and the thesis describe): the largest
 * index <= index whose term is <= term. Every entry above it certainly conflicts with a log
 * whose entry at that point has the given term, so the leader can skip a whole term per
 * round trip instead of one entry.
 */
uint64_t raft_log_conflict_by_term(const struct raft_log *l, uint64_t index, uint64_t term)
{
	uint64_t last = raft_log_last_index(l);

	if (index > last)
		index = last;
	while (index > l->offset) {
		if (l->ents[index - l->offset - 1].term <= term)
			return index;
		index--;
	}
	return l->offset;
}

/* Raft §5.4.1: a candidate's log is at least as up to date as ours. */
bool raft_log_up_to_date(const struct raft_log *l, uint64_t last_index, uint64_t last_term)
{
	uint64_t my_term = raft_log_last_term(l);

	return last_term > my_term || (last_term == my_term && last_index >= raft_log_last_index(l));
}
