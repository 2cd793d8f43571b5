#include "raft/snapfile.h"
#include "raft/le.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * One file per snapshot (layout in docs/raft-storage.md):
 *   u32 magic, u8 version, u8[3] zero, u64 index, u64 term, u32 conf_len,
 *   u32 zero, u64 data_len, conf bytes, data bytes, u32 CRC-32C of all before.
 * Integers little-endian.
 */
#define SNAP_MAGIC   0x50534e46u /* "FNSP" */
#define SNAP_VERSION 1
#define SNAP_HDR     40
#define SNAP_CHUNK   (64 * 1024)


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

static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 0, or -EBADMSG when the file ends early (its size was checked before). */
static int read_all(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EBADMSG;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void raft_snap_format_name(char *buf, uint64_t index, uint64_t term)
{
	snprintf(buf, RAFT_SNAP_NAME_MAX, "snap-%020" PRIu64 "-%020" PRIu64 ".snap", index, term);
}

static int parse_dec20(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	for (int i = 0; i < 20; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

int raft_snap_parse_name(const char *name, uint64_t *index, uint64_t *term)
{
	/* "snap-" 20 digits "-" 20 digits ".snap" */
	if (strlen(name) != 5 + 20 + 1 + 20 + 5 || strncmp(name, "snap-", 5) != 0 ||
	    name[25] != '-' || strcmp(name + 46, ".snap") != 0)
		return -EINVAL;
	if (parse_dec20(name + 5, index) < 0 || parse_dec20(name + 26, term) < 0)
		return -EINVAL;
	return 0;
}

int raft_snap_write(int dirfd, uint64_t index, uint64_t term, const void *conf, uint32_t conf_len,
		    const void *data, uint64_t data_len, uint64_t *fsyncs, char *err, size_t errlen)
{
	char name[RAFT_SNAP_NAME_MAX], tmp[RAFT_SNAP_NAME_MAX + 8];
	uint8_t hdr[SNAP_HDR] = {0}, tail[4];
	uint32_t crc;
	int fd, rc;

	raft_snap_format_name(name, index, term);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	raft_le_put32(hdr, SNAP_MAGIC);
	hdr[4] = SNAP_VERSION;
	raft_le_put64(hdr + 8, index);
	raft_le_put64(hdr + 16, term);
	raft_le_put32(hdr + 24, conf_len);
	raft_le_put64(hdr + 32, data_len);
	crc = raft_storage_crc32c(0, hdr, sizeof(hdr));
	if (conf_len)
		crc = raft_storage_crc32c(crc, conf, conf_len);
	if (data_len)
		crc = raft_storage_crc32c(crc, data, (size_t)data_len);
	raft_le_put32(tail, crc);

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		seterr(err, errlen, "create %s: %s", tmp, strerror(-rc));
		return rc;
	}
	rc = write_all(fd, hdr, sizeof(hdr));
	if (rc == 0 && conf_len)
		rc = write_all(fd, conf, conf_len);
	if (rc == 0 && data_len)
		rc = write_all(fd, data, (size_t)data_len);
	if (rc == 0)
		rc = write_all(fd, tail, sizeof(tail));
	if (rc < 0) {
		seterr(err, errlen, "write %s: %s", tmp, strerror(-rc));
		goto fail;
	}
	/* The data must be on disk before the rename can be: otherwise a crash
	 * could leave the final name pointing at an empty or partial file. */
	(*fsyncs)++;
	if (fsync(fd) < 0) {
		rc = -errno;
		seterr(err, errlen, "fsync %s: %s", tmp, strerror(-rc));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		seterr(err, errlen, "close %s: %s", tmp, strerror(-rc));
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		rc = -errno;
		seterr(err, errlen, "rename %s: %s", tmp, strerror(-rc));
		goto fail;
	}
	/* The rename itself lives in the directory; fsync it so the snapshot
	 * survives a crash before the caller compacts the log behind it. */
	(*fsyncs)++;
	if (fsync(dirfd) < 0) {
		rc = -errno;
		seterr(err, errlen, "fsync directory after %s: %s", name, strerror(-rc));
		/* The rename may or may not survive a crash; either is a valid state,
		 * but do not report success. Remove it so memory and disk agree. */
		unlinkat(dirfd, name, 0);
		return rc;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	return rc;
}

static int read_part(int fd, uint8_t *dst, uint64_t len, uint32_t *crc, uint8_t *chunk)
{
	while (len > 0) {
		size_t n = len > SNAP_CHUNK ? SNAP_CHUNK : (size_t)len;
		uint8_t *p = dst ? dst : chunk;
		int rc = read_all(fd, p, n);
		if (rc < 0)
			return rc;
		*crc = raft_storage_crc32c(*crc, p, n);
		if (dst)
			dst += n;
		len -= n;
	}
	return 0;
}

int raft_snap_read(int dirfd, const char *name, struct raft_storage_snapshot *out, char *err,
		   size_t errlen)
{
	struct raft_storage_snapshot s = {0};
	uint8_t hdr[SNAP_HDR], tail[4], *chunk = NULL;
	uint64_t index, term, want;
	uint32_t crc;
	struct stat sb;
	int fd, rc;

	if (raft_snap_parse_name(name, &index, &term) < 0) {
		seterr(err, errlen, "%s: not a snapshot file name", name);
		return -EINVAL;
	}
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
	rc = -EBADMSG;
	if ((uint64_t)sb.st_size < SNAP_HDR + 4) {
		seterr(err, errlen, "%s: truncated (%lld bytes)", name, (long long)sb.st_size);
		goto out;
	}
	rc = read_all(fd, hdr, sizeof(hdr));
	if (rc < 0) {
		seterr(err, errlen, "read %s: %s", name, strerror(-rc));
		goto out;
	}
	rc = -EBADMSG;
	if (raft_le_get32(hdr) != SNAP_MAGIC) {
		seterr(err, errlen, "%s: bad magic at offset 0", name);
		goto out;
	}
	if (hdr[4] != SNAP_VERSION) {
		rc = -ENOTSUP;
		seterr(err, errlen, "%s: unsupported format version %u at offset 4", name, hdr[4]);
		goto out;
	}
	s.index = raft_le_get64(hdr + 8);
	s.term = raft_le_get64(hdr + 16);
	s.conf_len = raft_le_get32(hdr + 24);
	s.data_len = raft_le_get64(hdr + 32);
	if (s.index != index || s.term != term) {
		seterr(err, errlen, "%s: header says index %" PRIu64 " term %" PRIu64, name,
		       s.index, s.term);
		goto out;
	}
	if (s.conf_len > RAFT_STORAGE_MAX_SNAP_CONF || s.data_len > RAFT_STORAGE_MAX_SNAP_DATA ||
	    s.data_len > SIZE_MAX - 1) {
		seterr(err, errlen, "%s: implausible lengths in header at offset 24", name);
		goto out;
	}
	want = SNAP_HDR + (uint64_t)s.conf_len + s.data_len + 4;
	if ((uint64_t)sb.st_size != want) {
		seterr(err, errlen, "%s: size %lld, header says %" PRIu64, name,
		       (long long)sb.st_size, want);
		goto out;
	}
	rc = -ENOMEM;
	chunk = malloc(SNAP_CHUNK);
	if (chunk == NULL)
		goto out;
	if (out) {
		s.conf = malloc(s.conf_len ? s.conf_len : 1);
		s.data = malloc(s.data_len ? (size_t)s.data_len : 1);
		if (s.conf == NULL || s.data == NULL)
			goto out;
	}
	crc = raft_storage_crc32c(0, hdr, sizeof(hdr));
	rc = read_part(fd, s.conf, s.conf_len, &crc, chunk);
	if (rc == 0)
		rc = read_part(fd, s.data, s.data_len, &crc, chunk);
	if (rc == 0)
		rc = read_all(fd, tail, sizeof(tail));
	if (rc < 0) {
		seterr(err, errlen, "read %s: %s", name, strerror(-rc));
		goto out;
	}
	if (raft_le_get32(tail) != crc) {
		rc = -EBADMSG;
		seterr(err, errlen, "%s: checksum mismatch (CRC at offset %" PRIu64 ")", name,
		       want - 4);
		goto out;
	}
	rc = 0;
	if (out) {
		*out = s;
		s.conf = s.data = NULL;
	}
out:
	free(chunk);
	free(s.conf);
	free(s.data);
	close(fd);
	return rc;
}
