/* raft/snapfile: the snapshot files of raft/storage (used only by raft/storage.c). */
#ifndef FULCRUM_RAFT_SNAPFILE_H
#define FULCRUM_RAFT_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "raft/storage.h"

/* Room for a snapshot file name with its NUL ("snap-<20 digits>-<20 digits>.snap"). */
#define RAFT_SNAP_NAME_MAX 64

/*
 * Write "snap-<index>-<term>.snap" in the directory dirfd: a temporary file,
 * fsync, rename, fsync of the directory, so after a crash the final name
 * either does not exist or holds the whole file. *fsyncs is incremented per
 * fsync. Returns 0 or a negative errno with a message in err; on failure the
 * temporary file is removed and no final file exists. Caller's thread.
 */
int raft_snap_write(int dirfd, uint64_t index, uint64_t term, const void *conf, uint32_t conf_len,
		    const void *data, uint64_t data_len, uint64_t *fsyncs, char *err,
		    size_t errlen);

/*
 * Read and verify the snapshot file name in dirfd. With out == NULL only
 * verify; else fill *out with caller-owned buffers (free them with
 * raft_storage_snapshot_free()). -EBADMSG if the file is damaged or does not
 * match its name, -ENOTSUP for an unknown version, -errno for I/O; err says
 * which file and why.
 */
int raft_snap_read(int dirfd, const char *name, struct raft_storage_snapshot *out, char *err,
		   size_t errlen);

/* 0 and *index, *term if name is a final snapshot file name; else -EINVAL. */
int raft_snap_parse_name(const char *name, uint64_t *index, uint64_t *term);

/* Write the final file name for (index, term) into buf (RAFT_SNAP_NAME_MAX bytes). */
void raft_snap_format_name(char *buf, uint64_t index, uint64_t term);

#endif
