/* raft/codec: binary, versioned, bounds-checked wire encoding of struct raft_message. */
#ifndef FULCRUM_RAFT_CODEC_H
#define FULCRUM_RAFT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/*
 * Frame layout, version 1 (all integers little-endian, fixed width; the
 * complete table is in docs/raft-storage.md, "Wire codec"):
 *
 *   u32 body length (bytes after this field)
 *   u8 version, u8 type, u8 flags, u8 reject,
 *   u64 from, to, term, log_term, index, commit, reject_hint, hint_term, ctx
 *   APPEND only:   u32 n_entries, then per entry
 *                  u64 term, u64 index, u8 type, u32 len, len bytes
 *   SNAPSHOT only: u64 index, u64 term, u32 n_voters, u32 n_learners,
 *                  u64 ids (voters then learners), u32 data len, data bytes
 *
 * Every scalar field is carried for every type (what a type does not use is
 * zero), so the codec never drops a field the core relies on. The encoding
 * is canonical: decoding a frame and encoding the result gives the same
 * bytes. The codec checks framing, limits and field domains only; protocol
 * rules (entry indexes following log index, ids being members) are the
 * core's to check in raft_step().
 *
 * Errors (negative errno values; raft_codec_strerror() names them):
 *   -ENODATA          the input ends before the frame or one of its fields does
 *   -EBADMSG          bytes left over after the message (inside the frame or
 *                     after it)
 *   -EPROTONOSUPPORT  unknown version byte
 *   -ENOMSG           unknown message type
 *   -EMSGSIZE         a limit below is exceeded
 *   -EINVAL           a field value outside its domain (reject > 1, unknown
 *                     flag bits, entry type, member counts), or, on encode,
 *                     entries/snapshot bytes on a type that carries none
 *   -ENOSPC           encode: the buffer is too small (*len says how big)
 *   -ENOMEM           decode: allocation failed
 *
 * All functions are pure and reentrant: any thread.
 */

#define RAFT_CODEC_VERSION     1
#define RAFT_CODEC_HDR_LEN     80 /* length prefix + fixed part */
#define RAFT_CODEC_MAX_FRAME   (64u * 1024 * 1024)
#define RAFT_CODEC_MAX_ENTRIES 8192u
#define RAFT_CODEC_MAX_ENTRY   (16u * 1024 * 1024)

/*
 * Size of the frame that starts at buf, for splitting a byte stream. 0 and
 * *frame_len (length prefix included) once the first 5 bytes (length and
 * version) are there; -ENODATA before; -EMSGSIZE if the frame would exceed
 * RAFT_CODEC_MAX_FRAME; -EPROTONOSUPPORT. Same checks, same order, as decode.
 * The caller can then wait for *frame_len bytes and decode them.
 */
int raft_codec_frame_len(const uint8_t *buf, size_t avail, size_t *frame_len);

/* Exact encoded size of m in *len, after the same checks as encode. */
int raft_codec_size(const struct raft_message *m, size_t *len);

/*
 * Encode m into buf[0..cap). On success returns 0 and *len is the frame
 * size. -ENOSPC (with *len = size needed) if cap is too small; nothing of m
 * is kept.
 */
int raft_codec_encode(const struct raft_message *m, uint8_t *buf, size_t cap, size_t *len);

/*
 * Decode exactly one frame that occupies buf[0..len) (anything after the
 * frame is an error, -EBADMSG). Never reads outside buf[0..len).
 *
 * Ownership: *m BORROWS from buf: entries[i].data and snap_data point into
 * buf, which must stay unchanged while m is used; only the entries array is
 * allocated. Release it with raft_codec_release() (raft_step() copies what
 * it keeps, so decode, step, release is the normal sequence; use
 * raft_message_clone() to keep a message longer). On error *m is zeroed
 * and nothing is allocated.
 */
int raft_codec_decode(const uint8_t *buf, size_t len, struct raft_message *m);

/* Free what decode allocated (not the borrowed bytes) and zero *m. NULL is a no-op. */
void raft_codec_release(struct raft_message *m);

/* Static text for a codec error code ("truncated", "trailing bytes", ...). */
const char *raft_codec_strerror(int rc);

#endif
