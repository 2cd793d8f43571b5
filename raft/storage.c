#include "raft/storage.h"
#include "raft/le.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/snapfile.h"

/*
 * Segment files hold one append-only stream of records (docs/raft-storage.md):
 *
 *   u8 magic0, u8 magic1, u8 version, u8 type, u32 payload length,
 *   payload, u32 CRC-32C
 *
 * The CRC covers (segment seq, file offset, header, payload): a record is
 * only valid at the place it was written, so bytes copied elsewhere (stale
 * blocks, or a client command that embeds a well-formed record) never pass
 * as a record when recovery searches past a damaged one.
 *
 * Every sync writes its batch followed by two identical hard-state records.
 * Hence the last record of an acknowledged batch is always a redundant copy,
 * and any damaged record that is followed by a valid one cannot be a torn
 * write (see recovery below).
 */
#define REC_MAGIC0   0xF7
#define REC_MAGIC1   0x4C
#define REC_VERSION  1
#define REC_HDR	     8
#define REC_CRC	     4
#define REC_OVERHEAD (REC_HDR + REC_CRC)

enum rec_type {
	REC_SEGHDR = 1,	   /* first record of a segment: seq, last index before it, hard state */
	REC_ENTRY = 2,	   /* term, index, entry type, data */
	REC_HARDSTATE = 3, /* term, vote, commit, last index at this point */
	REC_SETLAST = 4,   /* the log's last index is now x (suffix truncation / reset) */
};

#define SEGHDR_LEN    40
#define ENTRY_FIXED   17
#define HS_LEN	      32
#define SETLAST_LEN   8
#define REC_MAX_PAYLD (ENTRY_FIXED + RAFT_STORAGE_MAX_ENTRY)
#define SEG_NAME_MAX  32

enum frame_status {
	FR_OK = 0,
	FR_SHORT_HDR,
	FR_MAGIC,
	FR_LEN,
	FR_SHORT,
	FR_CRC,
};

static const char *const frame_reason[] = {
    [FR_OK] = "ok",
    [FR_SHORT_HDR] = "truncated record header",
    [FR_MAGIC] = "bad record magic",
    [FR_LEN] = "implausible record length",
    [FR_SHORT] = "record runs past the end of the file",
    [FR_CRC] = "record checksum mismatch",
};

struct seg {
	uint64_t seq;
	uint64_t max_last; /* highest last index any record of the segment left behind */
	uint64_t size;
};

struct buf {
	uint8_t *p;
	size_t len, cap;
};

struct raft_storage {
	char *dir;
	int dirfd, lockfd;
	int fd; /* the last segment, open for writing; -1 when there is none */
	uint64_t seg_size;
	struct seg *segs;
	size_t nsegs, capsegs;
	uint64_t next_seq;
	uint64_t last;		/* last log index after the buffered records */
	uint64_t last_durable;	/* ... after the synced ones */
	uint64_t pend_max_last; /* highest last index the buffered records reach */
	uint64_t snap_index, snap_term;
	char snap_cur[RAFT_SNAP_NAME_MAX]; /* "" when none */
	char snap_prev[RAFT_SNAP_NAME_MAX];
	struct raft_hard_state hs, hs_durable;
	struct buf wbuf; /* records not yet written; CRCs are filled in at sync */
	int failed;	 /* sticky error of a failed sync, or 0 */
	struct raft_storage_stats stats;
	char errmsg[512];
};

/* A record as parsed from a file. */
struct rec {
	uint8_t version, type;
	uint32_t len;
	const uint8_t *payload;
	size_t total;
};

/* ---------------------------------------------------------------- helpers */


static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
							 ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->p, cap);
	if (p == NULL)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void seg_name(char *buf, uint64_t seq)
{
	snprintf(buf, SEG_NAME_MAX, "seg-%016" PRIx64 ".log", seq);
}

static int parse_seg_name(const char *name, uint64_t *seq)
{
	uint64_t v = 0;

	if (strlen(name) != 4 + 16 + 4 || strncmp(name, "seg-", 4) != 0 ||
	    strcmp(name + 20, ".log") != 0)
		return -EINVAL;
	for (int i = 4; i < 20; i++) {
		char c = name[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return -EINVAL;
		v = v << 4 | d;
	}
	*seq = v;
	return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int pread_all(int fd, uint8_t *p, size_t n)
{
	uint64_t off = 0;

	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO; /* the file shrank under us */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* ---------------------------------------------------------------- records */

static uint32_t rec_crc(const uint8_t *rec, size_t covered, uint64_t seq, uint64_t off)
{
	uint8_t where[16];

	raft_le_put64(where, seq);
	raft_le_put64(where + 8, off);
	return raft_storage_crc32c(raft_storage_crc32c(0, where, sizeof(where)), rec, covered);
}

/* Append an unsealed record (CRC left zero) made of up to two payload parts. */
static int wbuf_record(struct buf *b, uint8_t type, const void *p1, size_t n1, const void *p2,
		       size_t n2)
{
	uint8_t *r;
	int rc = buf_reserve(b, REC_OVERHEAD + n1 + n2);

	if (rc < 0)
		return rc;
	r = b->p + b->len;
	r[0] = REC_MAGIC0;
	r[1] = REC_MAGIC1;
	r[2] = REC_VERSION;
	r[3] = type;
	raft_le_put32(r + 4, (uint32_t)(n1 + n2));
	if (n1)
		memcpy(r + REC_HDR, p1, n1);
	if (n2)
		memcpy(r + REC_HDR + n1, p2, n2);
	memset(r + REC_HDR + n1 + n2, 0, REC_CRC);
	b->len += REC_OVERHEAD + n1 + n2;
	return 0;
}

/* Fill in the CRC of every record in p[0..n) as if written at file offset base. */
static void seal_records(uint8_t *p, size_t n, uint64_t seq, uint64_t base)
{
	size_t off = 0;

	while (off < n) {
		size_t total = REC_OVERHEAD + raft_le_get32(p + off + 4);
		raft_le_put32(p + off + total - REC_CRC,
		      rec_crc(p + off, total - REC_CRC, seq, base + off));
		off += total;
	}
}

static void hs_payload(uint8_t *p, const struct raft_hard_state *hs, uint64_t last)
{
	raft_le_put64(p, hs->term);
	raft_le_put64(p + 8, hs->vote);
	raft_le_put64(p + 16, hs->commit);
	raft_le_put64(p + 24, last);
}

static enum frame_status rec_parse(const uint8_t *buf, size_t size, size_t off, uint64_t seq,
				   struct rec *r)
{
	const uint8_t *p = buf + off;
	uint32_t len;

	if (size - off < REC_HDR)
		return FR_SHORT_HDR;
	if (p[0] != REC_MAGIC0 || p[1] != REC_MAGIC1)
		return FR_MAGIC;
	len = raft_le_get32(p + 4);
	if (len > REC_MAX_PAYLD)
		return FR_LEN;
	if (size - off - REC_HDR < (size_t)len + REC_CRC)
		return FR_SHORT;
	if (raft_le_get32(p + REC_HDR + len) != rec_crc(p, REC_HDR + len, seq, off))
		return FR_CRC;
	r->version = p[2];
	r->type = p[3];
	r->len = len;
	r->payload = p + REC_HDR;
	r->total = REC_OVERHEAD + len;
	return FR_OK;
}

/* Offset of the first valid record after from, or 0 when there is none. */
static size_t resync(const uint8_t *buf, size_t size, size_t from, uint64_t seq)
{
	struct rec r;

	for (size_t p = from + 1; p + REC_OVERHEAD <= size; p++)
		if (buf[p] == REC_MAGIC0 && buf[p + 1] == REC_MAGIC1 &&
		    rec_parse(buf, size, p, seq, &r) == FR_OK)
			return p;
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---------------------------------------------------------------- recovery */

struct ent {
	uint64_t term, index;
	size_t off; /* of the data in the arena */
	uint32_t len;
	uint8_t type;
};

struct replay {
	uint64_t snap_index;
	int started; /* a segment header has been applied */
	uint64_t last;
	uint64_t floor; /* every index <= floor is absent from the replayed records */
	struct raft_hard_state hs;
	struct ent *ents; /* live entries above snap_index, ending at last */
	size_t n, cap;
	struct buf arena;
	/* per segment */
	uint64_t seg_max_last;
	int pair_ok; /* the last two records were identical hard-state records */
	int prev_was_hs;
	uint8_t prev_hs[HS_LEN];
};

static void replay_free(struct replay *rp)
{
	free(rp->ents);
	free(rp->arena.p);
}

/* Apply one CRC-valid record. 0, or -EBADMSG / -ENOTSUP / -ENOMEM with err set. */
static int replay_apply(struct replay *rp, const struct rec *r, uint64_t seq, const char *file,
			size_t off, char *err, size_t errlen)
{
	const uint8_t *p = r->payload;
	int is_hs_pair = 0;

	if (r->version != REC_VERSION) {
		seterr(err, errlen, "%s: unsupported record version %u at offset %zu", file,
		       r->version, off);
		return -ENOTSUP;
	}
	if ((off == 0) != (r->type == REC_SEGHDR)) {
		seterr(err, errlen, "%s: %s at offset %zu", file,
		       off == 0 ? "missing segment header" : "unexpected segment header", off);
		return -EBADMSG;
	}
	switch (r->type) {
	case REC_SEGHDR: {
		struct raft_hard_state hs;
		uint64_t prev_last;

		if (r->len != SEGHDR_LEN || raft_le_get64(p) != seq) {
			seterr(err, errlen,
			       "%s: segment header at offset 0 does not match the name", file);
			return -EBADMSG;
		}
		prev_last = raft_le_get64(p + 8);
		hs.term = raft_le_get64(p + 16);
		hs.vote = raft_le_get64(p + 24);
		hs.commit = raft_le_get64(p + 32);
		if (!rp->started) {
			rp->started = 1;
			rp->last = rp->floor = prev_last;
			rp->hs = hs;
		} else if (prev_last != rp->last || memcmp(&hs, &rp->hs, sizeof(hs)) != 0) {
			seterr(err, errlen,
			       "%s: segment header at offset 0 (after index %" PRIu64
			       ") does not continue the previous segment (ends at index %" PRIu64
			       ")",
			       file, prev_last, rp->last);
			return -EBADMSG;
		}
		rp->seg_max_last = rp->last;
		break;
	}
	case REC_ENTRY: {
		uint64_t term, index;
		uint32_t dlen;

		if (r->len < ENTRY_FIXED) {
			seterr(err, errlen, "%s: short entry record at offset %zu", file, off);
			return -EBADMSG;
		}
		term = raft_le_get64(p);
		index = raft_le_get64(p + 8);
		dlen = r->len - ENTRY_FIXED;
		if (index != rp->last + 1 || dlen > RAFT_STORAGE_MAX_ENTRY) {
			seterr(err, errlen,
			       "%s: entry at offset %zu has index %" PRIu64 ", expected %" PRIu64,
			       file, off, index, rp->last + 1);
			return -EBADMSG;
		}
		if (index > rp->snap_index) {
			struct ent *e;
			if (rp->n == rp->cap) {
				size_t cap = rp->cap ? rp->cap * 2 : 256;
				struct ent *ne = realloc(rp->ents, cap * sizeof(*ne));
				if (ne == NULL)
					return -ENOMEM;
				rp->ents = ne;
				rp->cap = cap;
			}
			if (buf_reserve(&rp->arena, dlen) < 0)
				return -ENOMEM;
			e = &rp->ents[rp->n++];
			e->term = term;
			e->index = index;
			e->type = p[16];
			e->len = dlen;
			e->off = rp->arena.len;
			if (dlen)
				memcpy(rp->arena.p + rp->arena.len, p + ENTRY_FIXED, dlen);
			rp->arena.len += dlen;
		}
		rp->last = index;
		break;
	}
	case REC_HARDSTATE: {
		struct raft_hard_state hs;

		if (r->len != HS_LEN) {
			seterr(err, errlen, "%s: bad hard-state record at offset %zu", file, off);
			return -EBADMSG;
		}
		hs.term = raft_le_get64(p);
		hs.vote = raft_le_get64(p + 8);
		hs.commit = raft_le_get64(p + 16);
		if (raft_le_get64(p + 24) != rp->last || hs.term < rp->hs.term) {
			seterr(err, errlen,
			       "%s: hard-state record at offset %zu (term %" PRIu64
			       ", last index %" PRIu64 ") contradicts the log (term %" PRIu64
			       ", last index %" PRIu64 ")",
			       file, off, hs.term, raft_le_get64(p + 24), rp->hs.term, rp->last);
			return -EBADMSG;
		}
		rp->hs = hs;
		is_hs_pair = rp->prev_was_hs && memcmp(rp->prev_hs, p, HS_LEN) == 0;
		memcpy(rp->prev_hs, p, HS_LEN);
		break;
	}
	case REC_SETLAST: {
		uint64_t x;

		if (r->len != SETLAST_LEN) {
			seterr(err, errlen, "%s: bad truncation record at offset %zu", file, off);
			return -EBADMSG;
		}
		x = raft_le_get64(p);
		if (x <= rp->last) {
			while (rp->n > 0 && rp->ents[rp->n - 1].index > x)
				rp->n--;
			rp->arena.len =
			    rp->n ? rp->ents[rp->n - 1].off + rp->ents[rp->n - 1].len : 0;
			if (x < rp->floor)
				rp->floor = x;
		} else {
			/* The log restarts after a snapshot the records do not cover. */
			rp->n = 0;
			rp->arena.len = 0;
			rp->floor = x;
		}
		rp->last = x;
		break;
	}
	default:
		seterr(err, errlen, "%s: unknown record type %u at offset %zu", file, r->type, off);
		return -EBADMSG;
	}
	rp->prev_was_hs = r->type == REC_HARDSTATE;
	rp->pair_ok = is_hs_pair;
	rp->seg_max_last = max64(rp->seg_max_last, rp->last);
	return 0;
}

/* What replaying the last segment decided. */
struct tail {
	int cut; /* the segment is cut at cut_at */
	uint64_t cut_at;
	uint64_t file_size;
	int drop;	 /* the segment holds no valid record: delete the file */
	int pair_ok;	 /* the last segment ends with the double hard-state marker */
	int pair_before; /* ... and the one before it */
};

static int read_file(int dirfd, const char *name, uint8_t **out, size_t *size, char *err,
		     size_t errlen)
{
	struct stat sb;
	uint8_t *b = NULL;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		seterr(err, errlen, "open %s: %s", name, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		seterr(err, errlen, "stat %s: %s", name, strerror(-rc));
		goto out;
	}
	if ((uint64_t)sb.st_size > SIZE_MAX / 2) {
		rc = -EFBIG;
		seterr(err, errlen, "%s: too large", name);
		goto out;
	}
	b = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (b == NULL) {
		rc = -ENOMEM;
		seterr(err, errlen, "%s: out of memory", name);
		goto out;
	}
	rc = pread_all(fd, b, (size_t)sb.st_size);
	if (rc < 0) {
		seterr(err, errlen, "read %s: %s", name, strerror(-rc));
		free(b);
		b = NULL;
		goto out;
	}
	*out = b;
	*size = (size_t)sb.st_size;
out:
	close(fd);
	return rc;
}

static int replay_segment(struct raft_storage *st, struct replay *rp, uint64_t seq, int is_last,
			  int may_drop, const struct raft_storage_options *o, struct seg *sg,
			  struct tail *tl, char *err, size_t errlen)
{
	char name[SEG_NAME_MAX];
	uint8_t *buf = NULL;
	size_t size = 0, off = 0;
	int rc;

	seg_name(name, seq);
	rc = read_file(st->dirfd, name, &buf, &size, err, errlen);
	if (rc < 0)
		return rc;
	rp->pair_ok = 0;
	rp->prev_was_hs = 0;
	while (off < size) {
		struct rec r;
		enum frame_status fs = rec_parse(buf, size, off, seq, &r);

		if (fs != FR_OK) {
			size_t next;

			if (!is_last) {
				seterr(err, errlen,
				       "%s/%s: %s at offset %zu (not the last segment)", st->dir,
				       name, frame_reason[fs], off);
				rc = -EBADMSG;
				goto out;
			}
			/*
			 * A torn write leaves nothing valid behind the tear; a
			 * crash that persisted pages out of order leaves zeros
			 * (a hole) before later records of the same, unacknowledged,
			 * batch. Damage followed by a valid record is anything else:
			 * possibly an acknowledged record, so refuse.
			 */
			next = resync(buf, size, off, seq);
			if (next && !all_zero(buf + off, next - off) && !o->truncate_damaged_tail) {
				seterr(err, errlen,
				       "%s/%s: %s at offset %zu, but a valid record follows at "
				       "offset %zu: not a torn write, refusing to drop it",
				       st->dir, name, frame_reason[fs], off, next);
				rc = -EBADMSG;
				goto out;
			}
			tl->cut = 1;
			tl->cut_at = off;
			break;
		}
		rc = replay_apply(rp, &r, seq, name, off, err, errlen);
		if (rc < 0) {
			char msg[512];
			if (rc == -ENOMEM)
				seterr(err, errlen, "%s: out of memory", name);
			snprintf(msg, sizeof(msg), "%s/%s", st->dir, err && errlen ? err : "");
			seterr(err, errlen, "%s", msg);
			goto out;
		}
		off += r.total;
	}
	if (off == 0 || (tl->cut && tl->cut_at == 0)) {
		/* Not even a segment header: a crash while creating the file. Only
		 * the newest segment may be like that, and only if its predecessor
		 * is still there to hold the hard state (or it is the very first). */
		if (!is_last || !may_drop) {
			seterr(err, errlen, "%s/%s: no valid segment header at offset 0", st->dir,
			       name);
			rc = -EBADMSG;
			goto out;
		}
		tl->drop = 1;
	}
	sg->seq = seq;
	sg->max_last = rp->seg_max_last;
	sg->size = tl->cut ? tl->cut_at : size;
	tl->file_size = size;
	tl->pair_before = tl->pair_ok;
	tl->pair_ok = rp->pair_ok;
	rc = 0;
out:
	free(buf);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct snapname {
	uint64_t index, term;
};

static int cmp_snap_desc(const void *a, const void *b)
{
	const struct snapname *x = a, *y = b;
	if (x->index != y->index)
		return x->index > y->index ? -1 : 1;
	return x->term > y->term ? -1 : x->term < y->term;
}

struct scan {
	uint64_t *seqs;
	size_t nseqs, capseqs;
	struct snapname *snaps;
	size_t nsnaps, capsnaps;
	char **tmps;
	size_t ntmps, captmps;
};

static void scan_free(struct scan *sc)
{
	for (size_t i = 0; i < sc->ntmps; i++)
		free(sc->tmps[i]);
	free(sc->tmps);
	free(sc->seqs);
	free(sc->snaps);
}

static int grow(void **arr, size_t n, size_t *cap, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, ncap * elem);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int scan_dir(struct raft_storage *st, struct scan *sc, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = dup(st->dirfd);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		seterr(err, errlen, "read directory %s: %s", st->dir, strerror(-rc));
		return rc;
	}
	rewinddir(d);
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		uint64_t seq;
		struct snapname sn;

		if (parse_seg_name(n, &seq) == 0) {
			rc = grow((void **)&sc->seqs, sc->nseqs, &sc->capseqs, sizeof(seq));
			if (rc == 0)
				sc->seqs[sc->nseqs++] = seq;
		} else if (raft_snap_parse_name(n, &sn.index, &sn.term) == 0) {
			rc = grow((void **)&sc->snaps, sc->nsnaps, &sc->capsnaps, sizeof(sn));
			if (rc == 0)
				sc->snaps[sc->nsnaps++] = sn;
		} else if (len > 4 && strcmp(n + len - 4, ".tmp") == 0 &&
			   strncmp(n, "snap-", 5) == 0) {
			rc = grow((void **)&sc->tmps, sc->ntmps, &sc->captmps, sizeof(char *));
			if (rc == 0 && (sc->tmps[sc->ntmps] = strdup(n)) == NULL)
				rc = -ENOMEM;
			if (rc == 0)
				sc->ntmps++;
		}
		if (rc < 0) {
			seterr(err, errlen, "scan %s: out of memory", st->dir);
			break;
		}
		errno = 0;
	}
	if (rc == 0 && errno != 0) {
		rc = -errno;
		seterr(err, errlen, "read directory %s: %s", st->dir, strerror(-rc));
	}
	closedir(d);
	if (rc == 0) {
		if (sc->nseqs)
			qsort(sc->seqs, sc->nseqs, sizeof(*sc->seqs), cmp_u64);
		if (sc->nsnaps)
			qsort(sc->snaps, sc->nsnaps, sizeof(*sc->snaps), cmp_snap_desc);
	}
	return rc;
}

/* ---------------------------------------------------------------- open/close */

static int open_dir(struct raft_storage *st, char *err, size_t errlen)
{
	int rc;

	if (mkdir(st->dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		seterr(err, errlen, "mkdir %s: %s", st->dir, strerror(-rc));
		return rc;
	}
	st->dirfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dirfd < 0) {
		rc = -errno;
		seterr(err, errlen, "open %s: %s", st->dir, strerror(-rc));
		return rc;
	}
	st->lockfd = openat(st->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (st->lockfd < 0) {
		rc = -errno;
		seterr(err, errlen, "open %s/LOCK: %s", st->dir, strerror(-rc));
		return rc;
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		seterr(err, errlen, "%s is in use by another storage handle (LOCK held)", st->dir);
		return rc;
	}
	return 0;
}

static void storage_free(struct raft_storage *st)
{
	if (st->fd >= 0)
		close(st->fd);
	if (st->lockfd >= 0)
		close(st->lockfd); /* releases the flock */
	if (st->dirfd >= 0)
		close(st->dirfd);
	free(st->segs);
	free(st->wbuf.p);
	free(st->dir);
	free(st);
}

/*
 * Choose the newest snapshot whose checksum holds. A newer damaged one is
 * only skipped if the log still covers what it covered; that is checked
 * after the replay (floor check), with *bad naming it for the message.
 */
static int pick_snapshot(struct raft_storage *st, struct scan *sc, size_t *chosen, char *bad,
			 size_t badlen, char *err, size_t errlen)
{
	*chosen = sc->nsnaps;
	bad[0] = 0;
	for (size_t i = 0; i < sc->nsnaps; i++) {
		char name[RAFT_SNAP_NAME_MAX], why[256];
		int rc;

		raft_snap_format_name(name, sc->snaps[i].index, sc->snaps[i].term);
		rc = raft_snap_read(st->dirfd, name, NULL, why, sizeof(why));
		if (rc == 0) {
			*chosen = i;
			st->snap_index = sc->snaps[i].index;
			st->snap_term = sc->snaps[i].term;
			memcpy(st->snap_cur, name, sizeof(name));
			if (i + 1 < sc->nsnaps)
				raft_snap_format_name(st->snap_prev, sc->snaps[i + 1].index,
						      sc->snaps[i + 1].term);
			return 0;
		}
		if (rc != -EBADMSG) {
			/* I/O errors, and a snapshot from a newer format version:
			 * never skip those silently. */
			seterr(err, errlen, "%s/%s", st->dir, why);
			return rc;
		}
		if (!bad[0])
			seterr(bad, badlen, "%s", why);
	}
	return 0;
}

static int write_marker(struct raft_storage *st, struct seg *sg, char *err, size_t errlen)
{
	struct buf b = {0};
	uint8_t hp[HS_LEN];
	int rc;

	hs_payload(hp, &st->hs_durable, st->last_durable);
	rc = wbuf_record(&b, REC_HARDSTATE, hp, sizeof(hp), NULL, 0);
	if (rc == 0)
		rc = wbuf_record(&b, REC_HARDSTATE, hp, sizeof(hp), NULL, 0);
	if (rc < 0) {
		free(b.p);
		seterr(err, errlen, "out of memory");
		return rc;
	}
	seal_records(b.p, b.len, sg->seq, sg->size);
	rc = pwrite_all(st->fd, b.p, b.len, sg->size);
	free(b.p);
	if (rc == 0) {
		st->stats.fsyncs++;
		if (fdatasync(st->fd) < 0)
			rc = -errno;
	}
	if (rc < 0) {
		seterr(err, errlen, "repair %s: %s", st->dir, strerror(-rc));
		return rc;
	}
	sg->size += b.len;
	return 0;
}

/*
 * Make the recovered state durable before anything is built on it: cut the
 * torn tail, or delete a segment that never got its header; then end the
 * last segment with the double hard-state marker again, so that its last
 * record is redundant as after every sync.
 */
static int repair_tail(struct raft_storage *st, struct tail *tl, char *err, size_t errlen)
{
	char name[SEG_NAME_MAX];
	struct seg *sg;
	int rc;

	if (st->nsegs == 0)
		return 0;
	sg = &st->segs[st->nsegs - 1];
	seg_name(name, sg->seq);
	if (tl->drop) {
		if (unlinkat(st->dirfd, name, 0) < 0) {
			rc = -errno;
			seterr(err, errlen, "unlink %s/%s: %s", st->dir, name, strerror(-rc));
			return rc;
		}
		st->stats.fsyncs++;
		if (fsync(st->dirfd) < 0) {
			rc = -errno;
			seterr(err, errlen, "fsync %s: %s", st->dir, strerror(-rc));
			return rc;
		}
		st->nsegs--;
		if (st->nsegs == 0)
			return 0;
		sg = &st->segs[st->nsegs - 1];
		seg_name(name, sg->seq);
		tl->cut = 0;
		tl->pair_ok = tl->pair_before;
	}
	st->fd = openat(st->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (st->fd < 0) {
		rc = -errno;
		seterr(err, errlen, "open %s/%s: %s", st->dir, name, strerror(-rc));
		return rc;
	}
	if (tl->cut && ftruncate(st->fd, (off_t)tl->cut_at) < 0) {
		rc = -errno;
		seterr(err, errlen, "truncate %s/%s: %s", st->dir, name, strerror(-rc));
		return rc;
	}
	if (!tl->pair_ok)
		return write_marker(st, sg, err, errlen);
	if (tl->cut) {
		st->stats.fsyncs++;
		if (fdatasync(st->fd) < 0) {
			rc = -errno;
			seterr(err, errlen, "fdatasync %s/%s: %s", st->dir, name, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int build_loaded(struct replay *rp, struct raft_storage_loaded *ld)
{
	ld->n_entries = rp->n;
	if (rp->n) {
		ld->entries = calloc(rp->n, sizeof(*ld->entries));
		if (ld->entries == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < rp->n; i++) {
		struct raft_entry *e = &ld->entries[i];
		e->term = rp->ents[i].term;
		e->index = rp->ents[i].index;
		e->type = rp->ents[i].type;
		e->len = rp->ents[i].len;
		e->data = rp->ents[i].len ? rp->arena.p + rp->ents[i].off : NULL;
	}
	ld->blob = rp->arena.p;
	rp->arena.p = NULL;
	return 0;
}

static void cleanup_leftovers(struct raft_storage *st, struct scan *sc, size_t run_start,
			      size_t chosen)
{
	char name[RAFT_SNAP_NAME_MAX + 16];

	/* Leftovers of an interrupted snapshot save or compaction. Losing these
	 * deletions in a crash is harmless, so no directory fsync. */
	for (size_t i = 0; i < sc->ntmps; i++)
		unlinkat(st->dirfd, sc->tmps[i], 0);
	for (size_t i = 0; i < run_start; i++) {
		seg_name(name, sc->seqs[i]);
		if (unlinkat(st->dirfd, name, 0) == 0)
			st->stats.segments_removed++;
	}
	for (size_t i = 0; i < sc->nsnaps; i++) {
		char to[sizeof(name) + 16];
		if (i == chosen || i == chosen + 1)
			continue;
		raft_snap_format_name(name, sc->snaps[i].index, sc->snaps[i].term);
		if (i < chosen) {
			/* Newer but damaged: keep it for a post-mortem, out of the way. */
			snprintf(to, sizeof(to), "%s.corrupt", name);
			renameat(st->dirfd, name, st->dirfd, to);
		} else {
			unlinkat(st->dirfd, name, 0);
		}
	}
}

int raft_storage_open(const char *dir, const struct raft_storage_options *opts,
		      struct raft_storage **out, struct raft_storage_loaded *loaded, char *err,
		      size_t errlen)
{
	static const struct raft_storage_options defaults = {0};
	struct raft_storage *st;
	struct scan sc = {0};
	struct replay rp = {0};
	struct tail tl = {0};
	char badsnap[256];
	size_t chosen, run_start = 0;
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (loaded)
		memset(loaded, 0, sizeof(*loaded));
	if (out)
		*out = NULL;
	if (dir == NULL || out == NULL || loaded == NULL) {
		seterr(err, errlen, "raft_storage_open: NULL argument");
		return -EINVAL;
	}
	if (opts == NULL)
		opts = &defaults;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	st->dirfd = st->lockfd = st->fd = -1;
	st->seg_size = opts->segment_size ? opts->segment_size : RAFT_STORAGE_DEFAULT_SEGMENT;
	st->dir = strdup(dir);
	rc = -ENOMEM;
	if (st->dir == NULL) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	rc = open_dir(st, err, errlen);
	if (rc < 0)
		goto fail;
	rc = scan_dir(st, &sc, err, errlen);
	if (rc < 0)
		goto fail;
	rc = pick_snapshot(st, &sc, &chosen, badsnap, sizeof(badsnap), err, errlen);
	if (rc < 0)
		goto fail;
	rp.snap_index = st->snap_index;

	/*
	 * The log is the newest run of consecutive segment numbers. Compaction
	 * deletes oldest first, so older files cut off by a gap can only be
	 * leftovers of a compaction the crash interrupted; whether the run still
	 * reaches back to the snapshot is checked below.
	 */
	if (sc.nseqs) {
		run_start = sc.nseqs - 1;
		while (run_start > 0 && sc.seqs[run_start - 1] + 1 == sc.seqs[run_start])
			run_start--;
		st->capsegs = sc.nseqs - run_start;
		st->segs = calloc(st->capsegs, sizeof(*st->segs));
		if (st->segs == NULL) {
			rc = -ENOMEM;
			seterr(err, errlen, "out of memory");
			goto fail;
		}
	}
	for (size_t i = run_start; i < sc.nseqs; i++) {
		int is_last = i + 1 == sc.nseqs;
		int may_drop = i > run_start || sc.seqs[i] == 1;

		rc = replay_segment(st, &rp, sc.seqs[i], is_last, may_drop, opts,
				    &st->segs[st->nsegs], &tl, err, errlen);
		if (rc < 0)
			goto fail;
		st->nsegs++;
	}
	rc = -EBADMSG;
	if (rp.floor > st->snap_index) {
		char segn[SEG_NAME_MAX];
		seg_name(segn, st->segs[0].seq);
		seterr(err, errlen,
		       "%s: entries %" PRIu64 "..%" PRIu64
		       " are missing: the log (from %s) starts after index %" PRIu64
		       " but the newest valid snapshot only covers up to %" PRIu64 "%s%s",
		       st->dir, st->snap_index + 1, rp.floor, segn, rp.floor, st->snap_index,
		       badsnap[0] ? "; newer snapshot unusable: " : "", badsnap);
		goto fail;
	}
	if (rp.hs.commit > max64(rp.last, st->snap_index)) {
		seterr(err, errlen,
		       "%s: hard state commit index %" PRIu64
		       " is beyond the log (last index %" PRIu64 ", snapshot %" PRIu64 ")",
		       st->dir, rp.hs.commit, rp.last, st->snap_index);
		goto fail;
	}
	if (rp.last > st->snap_index && rp.n != rp.last - st->snap_index) {
		seterr(err, errlen,
		       "%s: internal error: %zu entries loaded for %" PRIu64 "..%" PRIu64, st->dir,
		       rp.n, st->snap_index + 1, rp.last);
		goto fail;
	}
	st->hs = st->hs_durable = rp.hs;
	st->last = st->last_durable = st->pend_max_last = rp.last;
	rc = repair_tail(st, &tl, err, errlen);
	if (rc < 0)
		goto fail;
	st->next_seq = st->nsegs ? st->segs[st->nsegs - 1].seq + 1 : 1;
	rc = build_loaded(&rp, loaded);
	if (rc < 0) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	loaded->hs = rp.hs;
	loaded->snap_index = st->snap_index;
	loaded->snap_term = st->snap_term;
	loaded->torn_bytes = tl.drop ? tl.file_size : tl.cut ? tl.file_size - tl.cut_at : 0;
	cleanup_leftovers(st, &sc, run_start, chosen);
	scan_free(&sc);
	replay_free(&rp);
	*out = st;
	return 0;
fail:
	scan_free(&sc);
	replay_free(&rp);
	storage_free(st);
	return rc;
}

void raft_storage_loaded_free(struct raft_storage_loaded *ld)
{
	if (ld == NULL)
		return;
	free(ld->entries);
	free(ld->blob);
	memset(ld, 0, sizeof(*ld));
}

void raft_storage_close(struct raft_storage *st)
{
	if (st)
		storage_free(st);
}

/* ---------------------------------------------------------------- writing */

__attribute__((format(printf, 2, 3))) static void st_err(struct raft_storage *st, const char *fmt,
							 ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
	va_end(ap);
}

static int add_setlast(struct raft_storage *st, uint64_t x)
{
	uint8_t p[SETLAST_LEN];
	int rc;

	raft_le_put64(p, x);
	rc = wbuf_record(&st->wbuf, REC_SETLAST, p, sizeof(p), NULL, 0);
	if (rc < 0)
		return rc;
	st->last = x;
	st->pend_max_last = max64(st->pend_max_last, x);
	return 0;
}

int raft_storage_append(struct raft_storage *st, const struct raft_entry *entries, size_t n)
{
	uint64_t next;
	size_t bytes = 0, mark;
	uint64_t last0 = st->last, pend0 = st->pend_max_last;
	int rc;

	st->errmsg[0] = 0;
	if (st->failed)
		return st->failed;
	if (n == 0)
		return 0;
	if (entries == NULL)
		return -EINVAL;
	next = max64(st->last, st->snap_index) + 1;
	for (size_t i = 0; i < n; i++) {
		const struct raft_entry *e = &entries[i];
		if (e->index != next + i || e->len > RAFT_STORAGE_MAX_ENTRY ||
		    (e->len && e->data == NULL)) {
			st_err(st,
			       "append: entry %zu has index %" PRIu64 " (expected %" PRIu64
			       ") or bad length %" PRIu32,
			       i, e->index, next + i, e->len);
			return -EINVAL;
		}
		bytes += REC_OVERHEAD + ENTRY_FIXED + e->len;
	}
	rc = buf_reserve(&st->wbuf, bytes + REC_OVERHEAD + SETLAST_LEN);
	if (rc < 0)
		return rc;
	mark = st->wbuf.len;
	/* A follower whose log ended below an installed snapshot restarts it. */
	if (st->last < st->snap_index && (rc = add_setlast(st, st->snap_index)) < 0)
		goto undo;
	for (size_t i = 0; i < n; i++) {
		uint8_t fx[ENTRY_FIXED];

		raft_le_put64(fx, entries[i].term);
		raft_le_put64(fx + 8, entries[i].index);
		fx[16] = entries[i].type;
		rc = wbuf_record(&st->wbuf, REC_ENTRY, fx, sizeof(fx), entries[i].data,
				 entries[i].len);
		if (rc < 0)
			goto undo;
		st->last = entries[i].index;
	}
	st->pend_max_last = max64(st->pend_max_last, st->last);
	return 0;
undo:
	st->wbuf.len = mark;
	st->last = last0;
	st->pend_max_last = pend0;
	return rc;
}

int raft_storage_truncate_suffix(struct raft_storage *st, uint64_t from_index)
{
	st->errmsg[0] = 0;
	if (st->failed)
		return st->failed;
	if (from_index == 0 || from_index <= st->snap_index || from_index <= st->hs.commit) {
		st_err(st,
		       "truncate_suffix(%" PRIu64 "): at or below snapshot %" PRIu64
		       " or commit %" PRIu64,
		       from_index, st->snap_index, st->hs.commit);
		return -EINVAL;
	}
	if (from_index > st->last)
		return 0;
	return add_setlast(st, from_index - 1);
}

int raft_storage_set_hard_state(struct raft_storage *st, const struct raft_hard_state *hs)
{
	st->errmsg[0] = 0;
	if (st->failed)
		return st->failed;
	if (hs == NULL)
		return -EINVAL;
	if (hs->term < st->hs.term ||
	    (hs->term == st->hs.term && st->hs.vote != RAFT_ID_NONE && hs->vote != st->hs.vote) ||
	    hs->commit > max64(st->last, st->snap_index)) {
		st_err(st,
		       "set_hard_state: term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64
		       " not allowed after term %" PRIu64 " vote %" PRIu64
		       " with last index %" PRIu64,
		       hs->term, hs->vote, hs->commit, st->hs.term, st->hs.vote,
		       max64(st->last, st->snap_index));
		return -EINVAL;
	}
	st->hs = *hs;
	return 0;
}

static int sync_fail(struct raft_storage *st, int rc, const char *what, const char *name)
{
	st_err(st, "%s %s/%s: %s", what, st->dir, name, strerror(-rc));
	st->failed = rc;
	return rc;
}

int raft_storage_sync(struct raft_storage *st)
{
	char name[SEG_NAME_MAX];
	uint8_t hp[HS_LEN], hdr[REC_OVERHEAD + SEGHDR_LEN];
	size_t mark;
	uint64_t base, seq;
	int rc, newseg, fd;

	st->errmsg[0] = 0;
	if (st->failed)
		return st->failed;
	if (st->wbuf.len == 0 && memcmp(&st->hs, &st->hs_durable, sizeof(st->hs)) == 0)
		return 0;
	/* The double marker: see the comment at the top of this file. */
	mark = st->wbuf.len;
	hs_payload(hp, &st->hs, st->last);
	rc = wbuf_record(&st->wbuf, REC_HARDSTATE, hp, sizeof(hp), NULL, 0);
	if (rc == 0)
		rc = wbuf_record(&st->wbuf, REC_HARDSTATE, hp, sizeof(hp), NULL, 0);
	if (rc < 0) {
		st->wbuf.len = mark;
		return rc;
	}
	newseg = st->nsegs == 0 || st->segs[st->nsegs - 1].size >= st->seg_size;
	if (newseg) {
		if (st->nsegs == st->capsegs) {
			size_t cap = st->capsegs ? st->capsegs * 2 : 8;
			struct seg *ns = realloc(st->segs, cap * sizeof(*ns));
			if (ns == NULL) {
				st->wbuf.len = mark;
				return -ENOMEM;
			}
			st->segs = ns;
			st->capsegs = cap;
		}
		seq = st->next_seq;
		seg_name(name, seq);
		/* The segment header carries what the records before it established,
		 * so the log stays readable once older segments are compacted away. */
		hdr[0] = REC_MAGIC0;
		hdr[1] = REC_MAGIC1;
		hdr[2] = REC_VERSION;
		hdr[3] = REC_SEGHDR;
		raft_le_put32(hdr + 4, SEGHDR_LEN);
		raft_le_put64(hdr + REC_HDR, seq);
		raft_le_put64(hdr + REC_HDR + 8, st->last_durable);
		raft_le_put64(hdr + REC_HDR + 16, st->hs_durable.term);
		raft_le_put64(hdr + REC_HDR + 24, st->hs_durable.vote);
		raft_le_put64(hdr + REC_HDR + 32, st->hs_durable.commit);
		seal_records(hdr, sizeof(hdr), seq, 0);
		fd = openat(st->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return sync_fail(st, -errno, "create", name);
		rc = pwrite_all(fd, hdr, sizeof(hdr), 0);
		base = sizeof(hdr);
	} else {
		seq = st->segs[st->nsegs - 1].seq;
		seg_name(name, seq);
		fd = st->fd;
		base = st->segs[st->nsegs - 1].size;
		rc = 0;
	}
	seal_records(st->wbuf.p, st->wbuf.len, seq, base);
	if (rc == 0)
		rc = pwrite_all(fd, st->wbuf.p, st->wbuf.len, base);
	if (rc < 0) {
		if (newseg)
			close(fd);
		return sync_fail(st, rc, "write", name);
	}
	st->stats.fsyncs++;
	if (fdatasync(fd) < 0) {
		rc = -errno;
		if (newseg)
			close(fd);
		return sync_fail(st, rc, "fdatasync", name);
	}
	if (newseg) {
		/* A new file's name is directory data: without this a crash could
		 * lose the whole segment although its contents were synced. */
		st->stats.fsyncs++;
		if (fsync(st->dirfd) < 0) {
			rc = -errno;
			close(fd);
			return sync_fail(st, rc, "fsync directory for", name);
		}
		if (st->fd >= 0)
			close(st->fd);
		st->fd = fd;
		st->segs[st->nsegs].seq = seq;
		st->segs[st->nsegs].max_last = st->last_durable;
		st->segs[st->nsegs].size = base;
		st->nsegs++;
		st->next_seq = seq + 1;
		st->stats.segments_created++;
		st->stats.bytes_written += base;
	}
	{
		struct seg *sg = &st->segs[st->nsegs - 1];
		sg->size += st->wbuf.len;
		sg->max_last = max64(sg->max_last, max64(st->pend_max_last, st->last));
	}
	st->stats.syncs++;
	st->stats.bytes_written += st->wbuf.len;
	{
		/* Count entry records for the benchmarks' entries-per-fsync figure. */
		size_t off = 0;
		while (off < st->wbuf.len) {
			if (st->wbuf.p[off + 3] == REC_ENTRY)
				st->stats.entries_written++;
			off += REC_OVERHEAD + raft_le_get32(st->wbuf.p + off + 4);
		}
	}
	st->wbuf.len = 0;
	st->last_durable = st->last;
	st->pend_max_last = st->last;
	st->hs_durable = st->hs;
	return 0;
}

int raft_storage_compact(struct raft_storage *st, uint64_t upto_index)
{
	size_t k = 0;
	int rc = 0;

	st->errmsg[0] = 0;
	if (st->failed)
		return st->failed;
	if (upto_index > st->snap_index) {
		st_err(st, "compact(%" PRIu64 "): beyond snapshot index %" PRIu64, upto_index,
		       st->snap_index);
		return -EINVAL;
	}
	while (k + 1 < st->nsegs && st->segs[k].max_last <= upto_index) {
		char name[SEG_NAME_MAX];
		seg_name(name, st->segs[k].seq);
		if (unlinkat(st->dirfd, name, 0) < 0) {
			rc = -errno;
			st_err(st, "unlink %s/%s: %s", st->dir, name, strerror(-rc));
			break;
		}
		k++;
	}
	if (k == 0)
		return rc;
	memmove(st->segs, st->segs + k, (st->nsegs - k) * sizeof(*st->segs));
	st->nsegs -= k;
	st->stats.segments_removed += k;
	/* Not needed for safety (a resurrected old segment is ignored or replays
	 * harmlessly), only so that the space is really freed. */
	st->stats.fsyncs++;
	if (fsync(st->dirfd) < 0 && rc == 0) {
		rc = -errno;
		st_err(st, "fsync %s: %s", st->dir, strerror(-rc));
	}
	return rc;
}

int raft_storage_save_snapshot(struct raft_storage *st, uint64_t index, uint64_t term,
			       const void *conf, uint32_t conf_len, const void *data,
			       uint64_t data_len)
{
	char name[RAFT_SNAP_NAME_MAX];
	int rc;

	st->errmsg[0] = 0;
	if (st->failed)
		return st->failed;
	if (index == 0 || index <= st->snap_index || term == 0 || (conf_len && conf == NULL) ||
	    (data_len && data == NULL) || conf_len > RAFT_STORAGE_MAX_SNAP_CONF ||
	    data_len > RAFT_STORAGE_MAX_SNAP_DATA || data_len > SIZE_MAX) {
		st_err(st, "save_snapshot: bad arguments (index %" PRIu64 ", current %" PRIu64 ")",
		       index, st->snap_index);
		return -EINVAL;
	}
	rc = raft_snap_write(st->dirfd, index, term, conf, conf_len, data, data_len,
			     &st->stats.fsyncs, st->errmsg, sizeof(st->errmsg));
	if (rc < 0)
		return rc;
	raft_snap_format_name(name, index, term);
	if (st->snap_prev[0])
		unlinkat(st->dirfd, st->snap_prev, 0); /* keep the newest two */
	memcpy(st->snap_prev, st->snap_cur, sizeof(st->snap_prev));
	memcpy(st->snap_cur, name, sizeof(st->snap_cur));
	st->snap_index = index;
	st->snap_term = term;
	st->stats.snapshots_saved++;
	return 0;
}

int raft_storage_load_snapshot(struct raft_storage *st, struct raft_storage_snapshot *snap)
{
	char why[400];
	int rc;

	st->errmsg[0] = 0;
	if (snap == NULL)
		return -EINVAL;
	memset(snap, 0, sizeof(*snap));
	if (!st->snap_cur[0])
		return -ENOENT;
	rc = raft_snap_read(st->dirfd, st->snap_cur, snap, why, sizeof(why));
	if (rc < 0)
		st_err(st, "%s/%s", st->dir, why);
	return rc;
}

void raft_storage_snapshot_free(struct raft_storage_snapshot *snap)
{
	if (snap == NULL)
		return;
	free(snap->conf);
	free(snap->data);
	memset(snap, 0, sizeof(*snap));
}

uint64_t raft_storage_last_index(const struct raft_storage *st)
{
	return max64(st->last, st->snap_index);
}

void raft_storage_hard_state(const struct raft_storage *st, struct raft_hard_state *hs)
{
	*hs = st->hs;
}

void raft_storage_snapshot_meta(const struct raft_storage *st, uint64_t *index, uint64_t *term)
{
	if (index)
		*index = st->snap_index;
	if (term)
		*term = st->snap_term;
}

void raft_storage_get_stats(const struct raft_storage *st, struct raft_storage_stats *stats)
{
	*stats = st->stats;
}

const char *raft_storage_errmsg(const struct raft_storage *st)
{
	return st->errmsg;
}
