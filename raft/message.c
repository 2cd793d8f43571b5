/* Outgoing message queue and message helpers (copy, free, names). */
#include "raft/raft_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int raft_test_mutation = RAFT_MUT_NONE;

/*
 * Queues a zeroed message and returns it for the caller to fill; the pointer is valid
 * until the next raft_msg_new. On allocation failure the message is simply not sent:
 * Raft already tolerates lost messages, so that is the graceful degradation.
 */
struct raft_message *raft_msg_new(struct raft *r, uint8_t type, raft_id to)
{
	struct raft_message *m;

	if (r->n_msgs == r->cap_msgs) {
		size_t cap = r->cap_msgs ? r->cap_msgs * 2 : 16;
		struct raft_message *v = realloc(r->msgs, cap * sizeof(*v));

		if (!v)
			return NULL;
		r->msgs = v;
		r->cap_msgs = cap;
	}
	m = &r->msgs[r->n_msgs++];
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = r->id;
	m->to = to;
	m->term = r->term;
	return m;
}

void raft_message_free(struct raft_message *m)
{
	if (!m)
		return;
	raft_entries_free(m->entries, m->n_entries);
	free(m->snap_data);
	m->entries = NULL;
	m->n_entries = 0;
	m->snap_data = NULL;
	m->snap_len = 0;
}

void raft_msgs_free(struct raft_message *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		raft_message_free(&msgs[i]);
	free(msgs);
}

int raft_message_clone(struct raft_message *dst, const struct raft_message *src)
{
	*dst = *src;
	dst->entries = NULL;
	dst->n_entries = 0;
	dst->snap_data = NULL;
	dst->snap_len = 0;
	if (src->n_entries) {
		dst->entries = calloc(src->n_entries, sizeof(*dst->entries));
		if (!dst->entries)
			goto fail;
		for (uint32_t i = 0; i < src->n_entries; i++) {
			if (raft_entry_copy(&dst->entries[i], &src->entries[i]) != 0)
				goto fail;
			dst->n_entries = i + 1;
		}
	}
	if (src->snap_len) {
		dst->snap_data = malloc(src->snap_len);
		if (!dst->snap_data)
			goto fail;
		memcpy(dst->snap_data, src->snap_data, src->snap_len);
		dst->snap_len = src->snap_len;
	}
	return 0;
fail:
	raft_message_free(dst);
	memset(dst, 0, sizeof(*dst));
	return -ENOMEM;
}

const char *raft_msg_type_name(unsigned type)
{
	static const char *const names[] = {
		[RAFT_MSG_APPEND] = "APPEND",
		[RAFT_MSG_APPEND_RESP] = "APPEND_RESP",
		[RAFT_MSG_VOTE] = "VOTE",
		[RAFT_MSG_VOTE_RESP] = "VOTE_RESP",
		[RAFT_MSG_PREVOTE] = "PREVOTE",
		[RAFT_MSG_PREVOTE_RESP] = "PREVOTE_RESP",
		[RAFT_MSG_HEARTBEAT] = "HEARTBEAT",
		[RAFT_MSG_HEARTBEAT_RESP] = "HEARTBEAT_RESP",
		[RAFT_MSG_SNAPSHOT] = "SNAPSHOT",
		[RAFT_MSG_TIMEOUT_NOW] = "TIMEOUT_NOW",
	};

	if (type >= sizeof(names) / sizeof(names[0]) || !names[type])
		return "UNKNOWN";
	return names[type];
}

const char *raft_role_name(enum raft_role role)
{
	switch (role) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_PRECANDIDATE:
		return "precandidate";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	}
	return "unknown";
}
