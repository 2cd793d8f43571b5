/* raft/types: the small value types shared by the Raft core, storage and codec. */
#ifndef FULCRUM_RAFT_TYPES_H
#define FULCRUM_RAFT_TYPES_H

#include <stdint.h>

/* Node ids are chosen by the operator; 0 means "none" (no vote, no leader). */
typedef uint64_t raft_id;
#define RAFT_ID_NONE ((raft_id)0)

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 1, /* application command (opaque bytes) */
	RAFT_ENTRY_NOOP = 2,   /* appended by a new leader (Raft §8) */
	RAFT_ENTRY_CONF = 3,   /* membership change, encoded by the core */
};

/*
 * One log entry. data/len are owned by whoever holds the entry; the storage
 * and the core copy what they keep. index starts at 1.
 */
struct raft_entry {
	uint64_t term;
	uint64_t index;
	uint8_t type; /* enum raft_entry_type */
	uint32_t len;
	uint8_t *data;
};

/* What must be on stable storage before any message that depends on it is sent. */
struct raft_hard_state {
	uint64_t term;
	raft_id vote;
	uint64_t commit;
};

#endif
