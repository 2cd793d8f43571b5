/* raft/storage: durable Raft log, hard state and snapshots in one directory per node. */
#ifndef FULCRUM_RAFT_STORAGE_H
#define FULCRUM_RAFT_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "raft/types.h"

/*
 * File formats, recovery rules and the durability argument: docs/raft-storage.md.
 *
 * Threading: a struct raft_storage belongs to one thread (the node's control
 * thread); no call takes a lock. Different directories may be used from
 * different threads. One process at a time may open a directory (flock).
 *
 * Errors: functions return 0 or a negative errno value:
 *   -EINVAL   bad argument or a call that breaks the log's rules (the
 *             storage is unchanged);
 *   -EBADMSG  a file is corrupt (open / load_snapshot only);
 *   -ENOTSUP  a file was written by an unknown format version;
 *   -EBUSY    the directory is open elsewhere (open only);
 *   -ENOMEM, and the errno of a failed system call (-EIO, -ENOSPC, ...).
 * A failed write or fsync in raft_storage_sync() is sticky: the state of the
 * files is then unknown (a failed fsync may have dropped dirty pages), so
 * every later call that writes returns the same error; close and reopen,
 * which recovers from the files. raft_storage_errmsg() says what failed.
 */

/* Largest entry payload (struct raft_entry.len) the storage accepts. */
#define RAFT_STORAGE_MAX_ENTRY (64u * 1024 * 1024)
/* Largest snapshot parts accepted by save_snapshot / read back by load. */
#define RAFT_STORAGE_MAX_SNAP_CONF (16u * 1024 * 1024)
#define RAFT_STORAGE_MAX_SNAP_DATA ((uint64_t)1 << 32)
/* Default size at which the current segment file is closed and a new one begun. */
#define RAFT_STORAGE_DEFAULT_SEGMENT (8u * 1024 * 1024)

struct raft_storage;

struct raft_storage_options {
	/* Roll to a new segment once the current one is at least this big
	 * (0 = RAFT_STORAGE_DEFAULT_SEGMENT). A soft limit: one sync's batch
	 * is never split across files. */
	uint64_t segment_size;
	/* Operator override, default 0. When the last segment holds a damaged
	 * record followed by valid ones, open normally refuses (it cannot tell
	 * a torn write from corruption of acknowledged data). With this set,
	 * open cuts the segment at the damaged record instead. Use only after
	 * reading the error and deciding the records after it may be lost. */
	int truncate_damaged_tail;
};

/* What open found. Everything is owned by the struct; free it with
 * raft_storage_loaded_free(). */
struct raft_storage_loaded {
	struct raft_hard_state hs;
	uint64_t snap_index; /* 0: no snapshot */
	uint64_t snap_term;
	/* The log after the snapshot: indexes snap_index+1 .. snap_index+n_entries,
	 * contiguous. data pointers point into one block owned by this struct. */
	struct raft_entry *entries;
	size_t n_entries;
	void *blob;
	/* Bytes cut from a torn tail of the last segment (0 when clean). */
	uint64_t torn_bytes;
};

/* A snapshot read back by raft_storage_load_snapshot(); caller-owned. */
struct raft_storage_snapshot {
	uint64_t index;
	uint64_t term;
	uint8_t *conf; /* membership configuration, as encoded by the core */
	uint32_t conf_len;
	uint8_t *data; /* state machine image */
	uint64_t data_len;
};

struct raft_storage_stats {
	uint64_t syncs;		  /* raft_storage_sync() calls that wrote */
	uint64_t fsyncs;	  /* fsync/fdatasync calls, files and directory */
	uint64_t entries_written; /* entry records written */
	uint64_t bytes_written;	  /* bytes written to segment files */
	uint64_t segments_created;
	uint64_t segments_removed;
	uint64_t snapshots_saved;
};

/*
 * Open (creating if needed) the storage directory dir and recover it: read
 * the newest valid snapshot's metadata, replay every segment, cut a torn
 * tail of the last segment and make that cut durable before returning.
 * On success *out is the handle and *loaded is filled (caller frees it with
 * raft_storage_loaded_free()). opts may be NULL for defaults.
 * On failure nothing is allocated, *out is NULL, *loaded is zeroed, and
 * errbuf (if errlen > 0) holds a message naming the file and byte offset for
 * corruption. Corruption anywhere except the tail of the last segment makes
 * open fail with -EBADMSG: it never drops a record that may have been
 * acknowledged.
 */
int raft_storage_open(const char *dir, const struct raft_storage_options *opts,
		      struct raft_storage **out, struct raft_storage_loaded *loaded, char *errbuf,
		      size_t errlen);

/* Free what open loaded (safe on a zeroed struct). Leaves it zeroed. */
void raft_storage_loaded_free(struct raft_storage_loaded *loaded);

/*
 * Close the handle. Buffered appends, truncations and hard state not yet
 * synced are discarded, exactly as a crash would discard them: call
 * raft_storage_sync() first to keep them. NULL is a no-op.
 */
void raft_storage_close(struct raft_storage *st);

/*
 * Buffer n entries (copied; the caller keeps ownership of entries and data).
 * Nothing reaches the disk until raft_storage_sync(). Entries must be
 * contiguous and start at raft_storage_last_index()+1; when the log is behind
 * the snapshot (a follower that installed one) that is snapshot index + 1.
 * All or nothing: -EINVAL (bad index or len > RAFT_STORAGE_MAX_ENTRY) leaves
 * the storage unchanged.
 */
int raft_storage_append(struct raft_storage *st, const struct raft_entry *entries, size_t n);

/*
 * Drop the log from from_index on (a follower's conflicting tail, Raft §5.3).
 * Buffered like an append, as a record in the same append-only stream: the
 * next raft_storage_sync() makes the truncation and the entries appended
 * after it durable with one fsync, and recovery replays records in order
 * and keeps only a prefix of them, so a crash can never resurrect the old
 * tail behind new entries. Acknowledge new entries only after that sync.
 * from_index > last index is a no-op. -EINVAL if from_index is 0, at or
 * below the snapshot index, or at or below the commit index of the hard
 * state (committed entries are never truncated).
 */
int raft_storage_truncate_suffix(struct raft_storage *st, uint64_t from_index);

/*
 * Buffer a new hard state (copied). -EINVAL if the term goes backwards or
 * commit is beyond the last index (log or snapshot).
 */
int raft_storage_set_hard_state(struct raft_storage *st, const struct raft_hard_state *hs);

/*
 * Write everything buffered since the last sync and fdatasync it once (group
 * commit); roll to a new segment first if the current one is full. Returns 0
 * when all of it is durable; only then may the caller send messages that
 * depend on it (votes, append acknowledgements). A no-op returning 0 when
 * nothing is buffered. Errors are sticky (see above).
 */
int raft_storage_sync(struct raft_storage *st);

/*
 * Delete whole segment files, oldest first, while every index they ever held
 * is <= upto_index; the current segment is never deleted. upto_index must be
 * <= the snapshot index (-EINVAL otherwise). Not required for correctness,
 * only for disk space; keep some log behind the snapshot if slow followers
 * should catch up from the log instead of a snapshot.
 */
int raft_storage_compact(struct raft_storage *st, uint64_t upto_index);

/*
 * Save a snapshot durably before returning (temp file, fsync, rename, fsync
 * directory); then keep only it and the previous one. index must be above the
 * current snapshot index and term >= 1; conf/data are copied to disk (NULL
 * allowed when the length is 0). A log that ends below index is treated as
 * empty after it: the next append must be index+1. -EINVAL on bad arguments;
 * an I/O error leaves the previous snapshot current (not sticky).
 */
int raft_storage_save_snapshot(struct raft_storage *st, uint64_t index, uint64_t term,
			       const void *conf, uint32_t conf_len, const void *data,
			       uint64_t data_len);

/*
 * Read the current snapshot into *snap (caller frees it with
 * raft_storage_snapshot_free()). -ENOENT when there is none, -EBADMSG if the
 * file no longer matches its checksum.
 */
int raft_storage_load_snapshot(struct raft_storage *st, struct raft_storage_snapshot *snap);

/* Free a loaded snapshot's buffers (safe on a zeroed struct). Leaves it zeroed. */
void raft_storage_snapshot_free(struct raft_storage_snapshot *snap);

/* Last index including buffered appends: max(last log index, snapshot index). */
uint64_t raft_storage_last_index(const struct raft_storage *st);

/* The hard state last set (buffered or durable). */
void raft_storage_hard_state(const struct raft_storage *st, struct raft_hard_state *hs);

/* Current snapshot index and term (0, 0 when none). */
void raft_storage_snapshot_meta(const struct raft_storage *st, uint64_t *index, uint64_t *term);

void raft_storage_get_stats(const struct raft_storage *st, struct raft_storage_stats *stats);

/* Message for the last failed call (empty string if none). Valid until the next call. */
const char *raft_storage_errmsg(const struct raft_storage *st);

/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78; RFC 3720 B.4),
 * table-driven, slicing by 8. Continue a running value by passing the
 * previous result as crc; start with 0. Any thread.
 */
uint32_t raft_storage_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
