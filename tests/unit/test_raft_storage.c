/* Unit tests for raft/storage: round trips, truncation, compaction, snapshots, crash recovery. */
#include "tests/unit/testutil.h"
#include "raft/storage.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */


static char *make_dir(void)
{
	char *d = strdup("/tmp/fulcrum-test-storage-XXXXXX");
	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_dir(char *d)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	char p[512];

	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		unlink(p);
	}
	closedir(dp);
	rmdir(d);
	free(d);
}

static uint8_t *read_whole(const char *path, size_t *size)
{
	struct stat sb;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	b = malloc((size_t)sb.st_size + 1);
	assert_non_null(b);
	assert_int_equal(read(fd, b, (size_t)sb.st_size), sb.st_size);
	close(fd);
	*size = (size_t)sb.st_size;
	return b;
}

static void write_whole(const char *path, const uint8_t *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
}

static void copy_dir(const char *from, const char *to)
{
	DIR *dp = opendir(from);
	struct dirent *de;

	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL) {
		char a[512], b[512];
		uint8_t *buf;
		size_t n;
		if (de->d_name[0] == '.' || strcmp(de->d_name, "LOCK") == 0)
			continue;
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		buf = read_whole(a, &n);
		write_whole(b, buf, n);
		free(buf);
	}
	closedir(dp);
}

static void clear_dir(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	char p[512];

	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		unlink(p);
	}
	closedir(dp);
}

static int count_files(const char *d, const char *prefix)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	int n = 0;

	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(dp);
	return n;
}

/* Path of the segment with the highest sequence number (or of the i-th from the top). */
static int seg_path(const char *d, int from_top, char *out, size_t outlen)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	char names[256][64];
	int n = 0;

	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0 && n < 256)
			snprintf(names[n++], 64, "%.63s", de->d_name);
	closedir(dp);
	if (from_top >= n)
		return -1;
	qsort(names, (size_t)n, 64, (int (*)(const void *, const void *))strcmp);
	snprintf(out, outlen, "%s/%s", d, names[n - 1 - from_top]);
	return 0;
}

static off_t file_size(const char *p)
{
	struct stat sb;
	if (stat(p, &sb) < 0)
		return -1;
	return sb.st_size;
}

/* Record walker: the on-disk layout is documented in docs/raft-storage.md. */
struct rinfo {
	size_t off, total;
	uint8_t type;
};

enum { T_SEGHDR = 1, T_ENTRY = 2, T_HS = 3, T_SETLAST = 4 };

static size_t walk(const uint8_t *b, size_t n, struct rinfo *out, size_t max)
{
	size_t off = 0, k = 0;

	while (off + 12 <= n && k < max) {
		uint32_t len = (uint32_t)b[off + 4] | (uint32_t)b[off + 5] << 8 |
			       (uint32_t)b[off + 6] << 16 | (uint32_t)b[off + 7] << 24;
		if (off + 12 + len > n)
			break;
		out[k].off = off;
		out[k].total = 12 + len;
		out[k].type = b[off + 3];
		k++;
		off += 12 + len;
	}
	return k;
}

/* Every sync, and every repair at open, ends the last segment with two
 * identical hard-state records. */
static void assert_ends_with_marker(const char *dir)
{
	char path[512];
	struct rinfo r[1024];
	size_t size, n;
	uint8_t *b;

	assert_int_equal(seg_path(dir, 0, path, sizeof(path)), 0);
	b = read_whole(path, &size);
	n = walk(b, size, r, 1024);
	assert_true(n >= 3 && n < 1024);
	assert_int_equal(r[n - 1].off + r[n - 1].total, size);
	assert_int_equal(r[n - 1].type, T_HS);
	assert_int_equal(r[n - 2].type, T_HS);
	assert_int_equal(r[n - 1].total, r[n - 2].total);
	assert_memory_equal(b + r[n - 1].off + 8, b + r[n - 2].off + 8, r[n - 1].total - 12);
	free(b);
}

/* Deterministic entry contents: everything follows from (index, term, salt). */
static uint32_t entry_bytes(uint64_t index, uint64_t term, uint64_t salt, uint8_t *out)
{
	uint64_t s = index * 1000003 + term * 7919 + salt * 104729;
	uint32_t len = (uint32_t)tu_below(&s, 120);

	for (uint32_t i = 0; i < len; i++)
		out[i] = (uint8_t)tu_rand(&s);
	return len;
}

/* What the log should contain. */
struct model {
	struct raft_hard_state hs;
	uint64_t snap, snap_term;
	uint64_t last;
	uint64_t term[4096], salt[4096];
	uint8_t type[4096];
};

static void make_entry(struct raft_entry *e, uint64_t index, uint64_t term, uint64_t salt,
		       uint8_t *buf)
{
	e->index = index;
	e->term = term;
	e->type = (uint8_t)(1 + (index + salt) % 3);
	e->len = entry_bytes(index, term, salt, buf);
	e->data = buf;
}

/* Append n entries with the given term through the API and the model. */
static void do_append(struct raft_storage *st, struct model *m, size_t n, uint64_t term,
		      uint64_t salt)
{
	struct raft_entry es[16];
	uint8_t bufs[16][128];
	uint64_t first = (m->last > m->snap ? m->last : m->snap) + 1;

	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		make_entry(&es[i], first + i, term, salt, bufs[i]);
		assert_true(first + i < 4096);
		m->term[first + i] = term;
		m->salt[first + i] = salt;
		m->type[first + i] = es[i].type;
	}
	assert_int_equal(raft_storage_append(st, es, n), 0);
	m->last = first + n - 1;
}

static void check_loaded(const struct raft_storage_loaded *ld, const struct model *m)
{
	uint8_t buf[128];
	uint64_t want = m->last > m->snap ? m->last - m->snap : 0;

	assert_int_equal(ld->hs.term, m->hs.term);
	assert_int_equal(ld->hs.vote, m->hs.vote);
	assert_int_equal(ld->hs.commit, m->hs.commit);
	assert_int_equal(ld->snap_index, m->snap);
	assert_int_equal(ld->snap_term, m->snap_term);
	assert_int_equal(ld->n_entries, want);
	for (size_t i = 0; i < ld->n_entries; i++) {
		const struct raft_entry *e = &ld->entries[i];
		uint64_t idx = m->snap + 1 + i;
		uint32_t len = entry_bytes(idx, m->term[idx], m->salt[idx], buf);
		assert_int_equal(e->index, idx);
		assert_int_equal(e->term, m->term[idx]);
		assert_int_equal(e->type, m->type[idx]);
		assert_int_equal(e->len, len);
		if (len)
			assert_memory_equal(e->data, buf, len);
	}
}

static struct raft_storage *open_ok(const char *d, const struct raft_storage_options *o,
				    struct raft_storage_loaded *ld)
{
	struct raft_storage *st = NULL;
	char err[512];
	int rc = raft_storage_open(d, o, &st, ld, err, sizeof(err));
	if (rc != 0)
		fail_msg("open %s: %d %s", d, rc, err);
	return st;
}

static void reopen_check(const char *d, const struct raft_storage_options *o, const struct model *m)
{
	struct raft_storage_loaded ld;
	struct raft_storage *st = open_ok(d, o, &ld);
	check_loaded(&ld, m);
	raft_storage_loaded_free(&ld);
	raft_storage_close(st);
}

static void set_hs(struct raft_storage *st, struct model *m, uint64_t term, raft_id vote,
		   uint64_t commit)
{
	struct raft_hard_state hs = {term, vote, commit};
	assert_int_equal(raft_storage_set_hard_state(st, &hs), 0);
	m->hs = hs;
}

/* ---------------------------------------------------------------- tests */

static void test_crc32c(void **state)
{
	uint8_t z[32] = {0}, f[32], inc[32];
	(void)state;

	memset(f, 0xff, sizeof(f));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	/* RFC 3720 B.4 test vectors, and the common check value. */
	assert_int_equal(raft_storage_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(raft_storage_crc32c(0, z, 32), 0x8A9136AAu);
	assert_int_equal(raft_storage_crc32c(0, f, 32), 0x62A8AB43u);
	assert_int_equal(raft_storage_crc32c(0, inc, 32), 0x46DD794Eu);
	/* Running value: any split gives the one-shot result. */
	for (size_t cut = 0; cut <= 32; cut++)
		assert_int_equal(
		    raft_storage_crc32c(raft_storage_crc32c(0, inc, cut), inc + cut, 32 - cut),
		    0x46DD794Eu);
}

static void test_roundtrip(void **state)
{
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage_stats s0, s1;
	struct raft_storage *st;
	static struct model m;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, NULL, &ld);
	check_loaded(&ld, &m); /* empty */
	raft_storage_loaded_free(&ld);

	/* Group commit: ten appends and a hard state, one fdatasync (+1 directory
	 * fsync because the first segment file is created). */
	raft_storage_get_stats(st, &s0);
	for (int i = 0; i < 10; i++)
		do_append(st, &m, 1 + (size_t)i % 4, 1, 1);
	set_hs(st, &m, 1, 7, 5);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_get_stats(st, &s1);
	assert_int_equal(s1.fsyncs - s0.fsyncs, 2);
	assert_int_equal(s1.syncs - s0.syncs, 1);
	assert_int_equal(s1.entries_written - s0.entries_written, m.last);

	/* Same segment: exactly one fdatasync per sync. */
	for (int i = 0; i < 10; i++)
		do_append(st, &m, 3, 2, 2);
	set_hs(st, &m, 2, 3, 20);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_get_stats(st, &s0);
	assert_int_equal(s0.fsyncs - s1.fsyncs, 1);
	/* Nothing buffered: no fsync at all. */
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_get_stats(st, &s1);
	assert_int_equal(s1.fsyncs, s0.fsyncs);
	assert_int_equal(raft_storage_last_index(st), m.last);
	raft_storage_close(st);
	reopen_check(d, NULL, &m);

	/* Appending continues after reopen; a hard-state-only sync persists too. */
	st = open_ok(d, NULL, &ld);
	raft_storage_loaded_free(&ld);
	do_append(st, &m, 5, 3, 3);
	assert_int_equal(raft_storage_sync(st), 0);
	set_hs(st, &m, 4, 0, m.last);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_close(st);
	reopen_check(d, NULL, &m);
	rm_dir(d);
}

static void test_unsynced_is_lost(void **state)
{
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage *st;
	static struct model m, after;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, NULL, &ld);
	do_append(st, &m, 4, 1, 1);
	set_hs(st, &m, 1, 2, 2);
	assert_int_equal(raft_storage_sync(st), 0);
	after = m;
	do_append(st, &after, 4, 1, 2);
	set_hs(st, &after, 2, 0, 2);
	assert_int_equal(raft_storage_truncate_suffix(st, 3), 0);
	raft_storage_close(st); /* "crash": nothing after the sync */
	raft_storage_loaded_free(&ld);
	reopen_check(d, NULL, &m);
	rm_dir(d);
}

static void test_argument_checks(void **state)
{
	char *d = make_dir();
	struct raft_storage_loaded ld, ld2;
	struct raft_storage *st, *st2 = NULL;
	struct raft_entry e;
	struct raft_hard_state hs;
	uint8_t buf[128];
	char err[256];
	static struct model m;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, NULL, &ld);
	/* A second handle on the same directory is refused. */
	assert_int_equal(raft_storage_open(d, NULL, &st2, &ld2, err, sizeof(err)), -EBUSY);
	assert_null(st2);
	assert_non_null(strstr(err, "LOCK"));
	do_append(st, &m, 5, 2, 1);
	make_entry(&e, 7, 2, 0, buf); /* gap */
	assert_int_equal(raft_storage_append(st, &e, 1), -EINVAL);
	make_entry(&e, 5, 2, 0, buf); /* overlap */
	assert_int_equal(raft_storage_append(st, &e, 1), -EINVAL);
	e.index = 6;
	e.len = RAFT_STORAGE_MAX_ENTRY + 1;
	assert_int_equal(raft_storage_append(st, &e, 1), -EINVAL);
	set_hs(st, &m, 3, 1, 4);
	hs = (struct raft_hard_state){2, 1, 4}; /* term backwards */
	assert_int_equal(raft_storage_set_hard_state(st, &hs), -EINVAL);
	hs = (struct raft_hard_state){3, 2, 4}; /* second vote in one term */
	assert_int_equal(raft_storage_set_hard_state(st, &hs), -EINVAL);
	hs = (struct raft_hard_state){3, 1, 6}; /* commit beyond the log */
	assert_int_equal(raft_storage_set_hard_state(st, &hs), -EINVAL);
	assert_int_equal(raft_storage_truncate_suffix(st, 4), -EINVAL); /* committed */
	assert_int_equal(raft_storage_truncate_suffix(st, 0), -EINVAL);
	assert_int_equal(raft_storage_truncate_suffix(st, 99), 0); /* beyond: no-op */
	assert_int_equal(raft_storage_compact(st, 1), -EINVAL);	   /* no snapshot */
	assert_int_equal(raft_storage_save_snapshot(st, 0, 1, NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(raft_storage_save_snapshot(st, 3, 0, NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(raft_storage_save_snapshot(st, 3, 1, NULL, 5, NULL, 0), -EINVAL);
	{
		struct raft_storage_snapshot sn;
		assert_int_equal(raft_storage_load_snapshot(st, &sn), -ENOENT);
	}
	/* Failed calls changed nothing. */
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_close(st);
	raft_storage_loaded_free(&ld);
	reopen_check(d, NULL, &m);
	rm_dir(d);
}

static void test_truncate_suffix(void **state)
{
	struct raft_storage_options o = {.segment_size = 1024};
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage *st;
	static struct model m;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	for (int i = 0; i < 20; i++) {
		do_append(st, &m, 3, 1, 1);
		assert_int_equal(raft_storage_sync(st), 0);
	}
	set_hs(st, &m, 1, 0, 10);
	assert_int_equal(raft_storage_sync(st), 0);
	assert_true(count_files(d, "seg-") >= 3);

	/* Conflicting tail reaching back several segments. */
	assert_int_equal(raft_storage_truncate_suffix(st, 12), 0);
	m.last = 11;
	assert_int_equal(raft_storage_last_index(st), 11);
	do_append(st, &m, 4, 2, 2);
	set_hs(st, &m, 2, 5, 10);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_close(st);
	reopen_check(d, &o, &m);

	/* Truncation inside the unsynced buffer and again after it. */
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	do_append(st, &m, 6, 2, 3);
	assert_int_equal(raft_storage_truncate_suffix(st, m.last - 2), 0);
	m.last -= 3;
	do_append(st, &m, 2, 3, 4);
	assert_int_equal(raft_storage_truncate_suffix(st, m.last), 0);
	m.last -= 1;
	do_append(st, &m, 5, 3, 5);
	set_hs(st, &m, 3, 0, 12);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_close(st);
	reopen_check(d, &o, &m);

	/* An unsynced truncation is forgotten with the rest. */
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	assert_int_equal(raft_storage_truncate_suffix(st, 13), 0);
	raft_storage_close(st);
	reopen_check(d, &o, &m);
	rm_dir(d);
}

static void test_compaction(void **state)
{
	struct raft_storage_options o = {.segment_size = 2048};
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage_stats s;
	struct raft_storage *st;
	static struct model m;
	int before, after;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	for (int i = 0; i < 60; i++) {
		do_append(st, &m, 5, 1 + (uint64_t)i / 20, (uint64_t)i);
		set_hs(st, &m, 1 + (uint64_t)i / 20, 1, m.last - 2);
		assert_int_equal(raft_storage_sync(st), 0);
	}
	before = count_files(d, "seg-");
	assert_true(before >= 6);
	assert_int_equal(raft_storage_save_snapshot(st, 200, 3, "c", 1, "state", 5), 0);
	m.snap = 200;
	m.snap_term = 3;
	assert_int_equal(raft_storage_compact(st, 201), -EINVAL);
	assert_int_equal(raft_storage_compact(st, 150), 0);
	after = count_files(d, "seg-");
	assert_true(after < before);
	raft_storage_get_stats(st, &s);
	assert_int_equal(s.segments_removed, (uint64_t)(before - after));
	assert_int_equal(raft_storage_compact(st, 200), 0);
	assert_true(count_files(d, "seg-") <= after);
	raft_storage_close(st);
	reopen_check(d, &o, &m);

	/* Everything below the snapshot can go; the live segment always stays. */
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	assert_int_equal(raft_storage_save_snapshot(st, m.last, 3, NULL, 0, NULL, 0), 0);
	m.snap = m.last;
	assert_int_equal(raft_storage_compact(st, m.last), 0);
	assert_int_equal(count_files(d, "seg-"), 1);
	do_append(st, &m, 3, 4, 9);
	set_hs(st, &m, 4, 0, m.last);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_close(st);
	reopen_check(d, &o, &m);

	/* Now the newest snapshot is damaged and the log no longer reaches back
	 * to the previous one: refuse, and say why. */
	{
		char path[512], err[512];
		size_t n;
		uint8_t *b;
		snprintf(path, sizeof(path), "%s/snap-%020" PRIu64 "-%020d.snap", d, m.snap, 3);
		b = read_whole(path, &n);
		b[n - 1] ^= 1;
		write_whole(path, b, n);
		free(b);
		st = NULL;
		assert_int_equal(raft_storage_open(d, &o, &st, &ld, err, sizeof(err)), -EBADMSG);
		assert_null(st);
		assert_non_null(strstr(err, "missing"));
		assert_non_null(strstr(err, "checksum mismatch"));
	}
	rm_dir(d);
}

static void test_snapshots(void **state)
{
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage_snapshot sn;
	struct raft_storage *st;
	static struct model m;
	uint8_t data[5000], conf[40];
	char path[512];
	(void)state;

	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	for (size_t i = 0; i < sizeof(conf); i++)
		conf[i] = (uint8_t)(i + 100);
	st = open_ok(d, NULL, &ld);
	raft_storage_loaded_free(&ld);
	do_append(st, &m, 10, 1, 1);
	set_hs(st, &m, 1, 1, 10);
	assert_int_equal(raft_storage_sync(st), 0);
	assert_int_equal(raft_storage_save_snapshot(st, 4, 1, conf, 10, data, 100), 0);
	assert_int_equal(raft_storage_save_snapshot(st, 6, 1, conf, 20, data, 200), 0);
	assert_int_equal(raft_storage_save_snapshot(st, 6, 1, conf, 20, data, 200), -EINVAL);
	assert_int_equal(
	    raft_storage_save_snapshot(st, 8, 1, conf, sizeof(conf), data, sizeof(data)), 0);
	m.snap = 8;
	m.snap_term = 1;
	assert_int_equal(count_files(d, "snap-"), 2); /* the newest two */
	assert_int_equal(raft_storage_load_snapshot(st, &sn), 0);
	assert_int_equal(sn.index, 8);
	assert_int_equal(sn.term, 1);
	assert_int_equal(sn.conf_len, sizeof(conf));
	assert_memory_equal(sn.conf, conf, sizeof(conf));
	assert_int_equal(sn.data_len, sizeof(data));
	assert_memory_equal(sn.data, data, sizeof(data));
	raft_storage_snapshot_free(&sn);
	raft_storage_close(st);

	/* A save interrupted before its rename leaves a temp file: ignored, removed. */
	snprintf(path, sizeof(path), "%s/snap-%020d-%020d.snap.tmp", d, 9, 1);
	write_whole(path, (const uint8_t *)"half a snapshot", 15);
	reopen_check(d, NULL, &m);
	assert_int_equal(file_size(path), -1);

	/* A damaged newest snapshot: the previous one is used because the log still
	 * covers everything after it; the damaged file is moved aside. */
	snprintf(path, sizeof(path), "%s/snap-%020d-%020d.snap", d, 8, 1);
	{
		size_t n;
		uint8_t *b = read_whole(path, &n);
		b[100] ^= 0x10;
		write_whole(path, b, n);
		free(b);
	}
	m.snap = 6;
	reopen_check(d, NULL, &m);
	assert_int_equal(file_size(path), -1);
	{
		char moved[600];
		snprintf(moved, sizeof(moved), "%s.corrupt", path);
		assert_true(file_size(moved) > 0);
	}
	st = open_ok(d, NULL, &ld);
	raft_storage_loaded_free(&ld);
	assert_int_equal(raft_storage_load_snapshot(st, &sn), 0);
	assert_int_equal(sn.index, 6);
	assert_int_equal(sn.conf_len, 20);
	assert_memory_equal(sn.data, data, 200);
	raft_storage_snapshot_free(&sn);
	raft_storage_close(st);
	rm_dir(d);
}

static void test_snapshot_beyond_log(void **state)
{
	struct raft_storage_options o = {.segment_size = 512};
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage *st;
	struct raft_entry e;
	uint8_t buf[128];
	static struct model m;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	do_append(st, &m, 10, 1, 1);
	set_hs(st, &m, 2, 3, 5);
	assert_int_equal(raft_storage_sync(st), 0);
	/* A follower installs the leader's snapshot far beyond its log. */
	assert_int_equal(raft_storage_save_snapshot(st, 100, 2, "x", 1, "y", 1), 0);
	m.snap = 100;
	m.snap_term = 2;
	assert_int_equal(raft_storage_last_index(st), 100);
	make_entry(&e, 11, 2, 0, buf);
	assert_int_equal(raft_storage_append(st, &e, 1), -EINVAL);
	raft_storage_close(st);
	/* Reopened before any append: the log is only the snapshot. */
	m.last = 10;
	reopen_check(d, &o, &m);
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	for (int i = 0; i < 10; i++)
		do_append(st, &m, 4, 2, 2);
	set_hs(st, &m, 2, 3, 120);
	assert_int_equal(raft_storage_sync(st), 0);
	assert_int_equal(raft_storage_compact(st, 100), 0);
	raft_storage_close(st);
	reopen_check(d, &o, &m);
	rm_dir(d);
}

/*
 * A template directory: K synced batches (acknowledged), then one more batch
 * treated as the one in flight when the machine crashed. Remembers the model
 * after each and where the last batch lies in the last segment.
 */
struct crash_case {
	char *dir;
	struct model acked, full;
	char seg[512];	     /* last segment file */
	size_t batch_start;  /* offset in it where the crash batch begins */
	int new_segment;     /* the crash batch created that file */
	uint64_t trunc_from; /* 0, or the truncation the crash batch starts with */
	size_t n_new;	     /* entries in the crash batch */
	uint64_t new_term, new_salt;
	struct raft_storage_options o;
};

static struct crash_case *build_case(uint64_t seed)
{
	struct crash_case *c = calloc(1, sizeof(*c));
	struct raft_storage_loaded ld;
	struct raft_storage *st;
	uint64_t s = seed, term = 1;
	int k;

	assert_non_null(c);
	c->dir = make_dir();
	c->o.segment_size = 600 + tu_below(&s, 2000);
	st = open_ok(c->dir, &c->o, &ld);
	raft_storage_loaded_free(&ld);
	k = 8 + (int)tu_below(&s, 25);
	for (int i = 0; i < k; i++) {
		if (tu_below(&s, 5) == 0)
			term++;
		do_append(st, &c->acked, 1 + tu_below(&s, 6), term, tu_rand(&s) % 1000);
		if (tu_below(&s, 6) == 0 && c->acked.last > c->acked.hs.commit + 2) {
			uint64_t from = c->acked.hs.commit + 1 + tu_below(&s, 2);
			assert_int_equal(raft_storage_truncate_suffix(st, from), 0);
			c->acked.last = from - 1;
			do_append(st, &c->acked, 1 + tu_below(&s, 3), ++term, tu_rand(&s) % 1000);
		}
		set_hs(st, &c->acked, term,
		       c->acked.hs.term == term ? c->acked.hs.vote : tu_below(&s, 4),
		       c->acked.last - tu_below(&s, c->acked.last - c->acked.hs.commit + 1));
		assert_int_equal(raft_storage_sync(st), 0);
	}
	/* Remember where the last segment ends now. */
	assert_int_equal(seg_path(c->dir, 0, c->seg, sizeof(c->seg)), 0);
	c->batch_start = (size_t)file_size(c->seg);
	{
		char before[512];
		memcpy(before, c->seg, sizeof(before));
		c->full = c->acked;
		if (tu_below(&s, 3) == 0 && c->full.last > c->full.hs.commit + 1) {
			c->trunc_from =
			    c->full.last - tu_below(&s, c->full.last - c->full.hs.commit - 1);
			assert_int_equal(raft_storage_truncate_suffix(st, c->trunc_from), 0);
			c->full.last = c->trunc_from - 1;
			term++;
		}
		c->n_new = 1 + tu_below(&s, 8);
		c->new_term = term;
		c->new_salt = 5000 + seed;
		do_append(st, &c->full, c->n_new, term, c->new_salt);
		set_hs(st, &c->full, term + 1, 0, c->full.hs.commit);
		assert_int_equal(raft_storage_sync(st), 0);
		assert_int_equal(seg_path(c->dir, 0, c->seg, sizeof(c->seg)), 0);
		c->new_segment = strcmp(before, c->seg) != 0;
		if (c->new_segment)
			c->batch_start = 0;
	}
	raft_storage_close(st);
	return c;
}

static void free_case(struct crash_case *c)
{
	rm_dir(c->dir);
	free(c);
}

/* The model after replaying the crash batch's records that end at or before cut. */
static void expect_after_cut(const struct crash_case *c, const uint8_t *seg, size_t segsize,
			     size_t cut, struct model *m)
{
	struct rinfo r[64];
	size_t n = walk(seg, segsize, r, 64);
	size_t ent = 0;

	*m = c->acked;
	for (size_t i = 0; i < n; i++) {
		if (r[i].off < c->batch_start || r[i].off + r[i].total > cut)
			continue;
		switch (r[i].type) {
		case T_SETLAST:
			m->last = c->trunc_from - 1;
			break;
		case T_ENTRY: {
			uint64_t idx = m->last + 1;
			m->term[idx] = c->full.term[idx];
			m->salt[idx] = c->full.salt[idx];
			m->type[idx] = c->full.type[idx];
			m->last = idx;
			ent++;
			break;
		}
		case T_HS:
			m->hs = c->full.hs;
			break;
		default:
			break;
		}
	}
	assert_true(ent <= c->n_new);
}

static void test_recovery_random_cuts(void **state)
{
	char *work = make_dir();
	uint64_t s = 42;
	int trials = 0, cut_inside = 0;
	(void)state;

	for (uint64_t seed = 1; seed <= 12; seed++) {
		struct crash_case *c = build_case(seed);
		size_t segsize;
		uint8_t *seg = read_whole(c->seg, &segsize);
		const char *base = strrchr(c->seg, '/') + 1;
		char wseg[600];

		snprintf(wseg, sizeof(wseg), "%s/%s", work, base);
		for (int t = 0; t < 25; t++) {
			static struct model m;
			struct raft_storage_loaded ld;
			struct raft_storage *st;
			size_t cut = c->batch_start + tu_below(&s, segsize - c->batch_start + 1);

			clear_dir(work);
			copy_dir(c->dir, work);
			assert_int_equal(truncate(wseg, (off_t)cut), 0);
			expect_after_cut(c, seg, segsize, cut, &m);
			st = open_ok(work, &c->o, &ld);
			check_loaded(&ld, &m);
			if (cut < segsize)
				cut_inside++;
			raft_storage_loaded_free(&ld);
			/* Appends continue cleanly after the repair. */
			if (t % 3 == 0) {
				do_append(st, &m, 2, m.hs.term, 777);
				assert_int_equal(raft_storage_sync(st), 0);
			}
			raft_storage_close(st);
			if (m.last || m.hs.term)
				assert_ends_with_marker(work);
			reopen_check(work, &c->o, &m);
			trials++;
		}
		free(seg);
		free_case(c);
	}
	assert_true(cut_inside > trials / 2);
	rm_dir(work);
}

static void flip_byte(const char *path, size_t off, uint8_t mask)
{
	size_t n;
	uint8_t *b = read_whole(path, &n);
	assert_true(off < n);
	b[off] ^= mask;
	write_whole(path, b, n);
	free(b);
}

/* Flipping a byte anywhere except the last record of the last segment: refused,
 * naming the file and the record's offset, and the files are left untouched. */
static void test_flip_nonfinal_refused(void **state)
{
	char *work = make_dir();
	uint64_t s = 7;
	int trials = 0;
	(void)state;

	for (uint64_t seed = 20; seed < 28; seed++) {
		struct crash_case *c = build_case(seed);
		int nseg = count_files(c->dir, "seg-");

		for (int t = 0; t < 20; t++) {
			char segp[512], wpath[600], err[512], want[64];
			struct raft_storage_loaded ld;
			struct raft_storage *st = NULL;
			struct rinfo r[512];
			size_t size, n, pick, at, n2;
			uint8_t *b, *b2, mask;
			int from_top = (int)tu_below(&s, (uint64_t)nseg);
			int rc;

			assert_int_equal(seg_path(c->dir, from_top, segp, sizeof(segp)), 0);
			b = read_whole(segp, &size);
			n = walk(b, size, r, 512);
			assert_true(n >= 2);
			/* Not the last record of the last segment. */
			pick = tu_below(&s, from_top == 0 ? n - 1 : n);
			at = r[pick].off + tu_below(&s, r[pick].total);
			clear_dir(work);
			copy_dir(c->dir, work);
			snprintf(wpath, sizeof(wpath), "%s/%s", work, strrchr(segp, '/') + 1);
			mask = (uint8_t)(1 + tu_below(&s, 255));
			flip_byte(wpath, at, mask);
			rc = raft_storage_open(work, &c->o, &st, &ld, err, sizeof(err));
			assert_int_equal(rc, -EBADMSG);
			assert_null(st);
			assert_non_null(strstr(err, strrchr(segp, '/') + 1));
			snprintf(want, sizeof(want), "offset %zu", r[pick].off);
			if (strstr(err, want) == NULL)
				fail_msg("message lacks '%s': %s", want, err);
			/* Refusing changed nothing on disk. */
			b2 = read_whole(wpath, &n2);
			assert_int_equal(n2, size);
			b[at] ^= mask;
			assert_memory_equal(b, b2, size);
			free(b);
			free(b2);
			trials++;
		}
		free_case(c);
	}
	assert_int_equal(trials, 160);
	rm_dir(work);
}

/* The last record of an acknowledged batch is the second hard-state copy:
 * damage there drops only that copy, and nothing acknowledged is lost. */
static void test_flip_final_record(void **state)
{
	char *work = make_dir();
	uint64_t s = 99;
	(void)state;

	for (uint64_t seed = 40; seed < 50; seed++) {
		struct crash_case *c = build_case(seed);
		struct raft_storage_loaded ld;
		struct raft_storage *st;
		struct rinfo r[512];
		size_t size, n;
		uint8_t *b = read_whole(c->seg, &size);
		char wpath[600];

		n = walk(b, size, r, 512);
		assert_true(n >= 3);
		assert_int_equal(r[n - 1].type, T_HS);
		assert_int_equal(r[n - 2].type, T_HS);
		assert_memory_equal(b + r[n - 1].off + 8, b + r[n - 2].off + 8, 32);
		clear_dir(work);
		copy_dir(c->dir, work);
		snprintf(wpath, sizeof(wpath), "%s/%s", work, strrchr(c->seg, '/') + 1);
		flip_byte(wpath, r[n - 1].off + tu_below(&s, r[n - 1].total), 0x20);
		st = open_ok(work, &c->o, &ld);
		check_loaded(&ld, &c->full);
		assert_int_equal(ld.torn_bytes, r[n - 1].total);
		raft_storage_loaded_free(&ld);
		raft_storage_close(st);
		assert_ends_with_marker(work);
		/* The repair restored the double marker: the next open is clean. */
		st = open_ok(work, &c->o, &ld);
		assert_int_equal(ld.torn_bytes, 0);
		check_loaded(&ld, &c->full);
		raft_storage_loaded_free(&ld);
		raft_storage_close(st);
		free(b);
		free_case(c);
	}
	rm_dir(work);
}

/* A crash mid-batch leaves an unacknowledged entry as the last record; damage to
 * it drops that entry only, and the entries before it in the batch stay. */
static void test_flip_unacked_last_entry(void **state)
{
	char *work = make_dir();
	uint64_t s = 5;
	int done = 0;
	(void)state;

	for (uint64_t seed = 60; seed < 72; seed++) {
		struct crash_case *c = build_case(seed);
		struct raft_storage_loaded ld;
		struct raft_storage *st;
		struct rinfo r[512];
		static struct model m;
		size_t size, n, ents[16], ne = 0, j;
		uint8_t *b = read_whole(c->seg, &size);
		char wpath[600];

		n = walk(b, size, r, 512);
		for (size_t i = 0; i < n; i++)
			if (r[i].off >= c->batch_start && r[i].type == T_ENTRY && ne < 16)
				ents[ne++] = i;
		assert_true(ne >= 1);
		/* Cut right after some entry of the crash batch, then damage it. */
		j = ents[tu_below(&s, ne)];
		clear_dir(work);
		copy_dir(c->dir, work);
		snprintf(wpath, sizeof(wpath), "%s/%s", work, strrchr(c->seg, '/') + 1);
		assert_int_equal(truncate(wpath, (off_t)(r[j].off + r[j].total)), 0);
		flip_byte(wpath, r[j].off + tu_below(&s, r[j].total), 0x01);
		expect_after_cut(c, b, size, r[j].off, &m);
		st = open_ok(work, &c->o, &ld);
		check_loaded(&ld, &m);
		assert_int_equal(ld.torn_bytes, r[j].total);
		raft_storage_loaded_free(&ld);
		raft_storage_close(st);
		done++;
		free(b);
		free_case(c);
	}
	assert_int_equal(done, 12);
	rm_dir(work);
}

/* Out-of-order page writeback can leave a hole of zeros inside the batch that
 * was in flight, with later records of it intact: recovery cuts at the hole.
 * Non-zero damage in the same place is refused unless the operator overrides. */
static void test_hole_in_last_batch(void **state)
{
	char *work = make_dir();
	int done = 0;
	(void)state;

	for (uint64_t seed = 100; seed < 140 && done < 6; seed++) {
		struct crash_case *c = build_case(seed);
		struct raft_storage_loaded ld;
		struct raft_storage *st = NULL;
		struct rinfo r[512];
		static struct model m;
		size_t size, n, first = 0, hole;
		uint8_t *b = read_whole(c->seg, &size), *orig;
		char wpath[600], err[512];
		struct raft_storage_options force = c->o;

		n = walk(b, size, r, 512);
		for (size_t i = 0; i < n && !first; i++)
			if (r[i].off >= c->batch_start && r[i].type == T_ENTRY && i + 3 < n)
				first = i;
		if (!first) {
			free(b);
			free_case(c);
			continue;
		}
		orig = malloc(size);
		assert_non_null(orig);
		memcpy(orig, b, size);
		snprintf(wpath, sizeof(wpath), "%s/%s", work, strrchr(c->seg, '/') + 1);
		expect_after_cut(c, b, size, r[first].off, &m);

		/* Zeros over two whole records: cut where they start. */
		hole = r[first].total + r[first + 1].total;
		clear_dir(work);
		copy_dir(c->dir, work);
		memset(b + r[first].off, 0, hole);
		write_whole(wpath, b, size);
		st = open_ok(work, &c->o, &ld);
		check_loaded(&ld, &m);
		assert_int_equal(ld.torn_bytes, size - r[first].off);
		raft_storage_loaded_free(&ld);
		raft_storage_close(st);
		reopen_check(work, &c->o, &m);

		/* Zeros that do not line up with records, or garbage: refused ... */
		for (int v = 0; v < 2; v++) {
			memcpy(b, orig, size);
			if (v == 0)
				memset(b + r[first].off + 5, 0, r[first].total);
			else
				b[r[first].off + 9] ^= 0x55;
			clear_dir(work);
			copy_dir(c->dir, work);
			write_whole(wpath, b, size);
			st = NULL;
			assert_int_equal(raft_storage_open(work, &c->o, &st, &ld, err, sizeof(err)),
					 -EBADMSG);
			assert_non_null(strstr(err, "valid record follows"));
			/* ... unless the operator says to cut there. */
			force.truncate_damaged_tail = 1;
			st = open_ok(work, &force, &ld);
			check_loaded(&ld, &m);
			raft_storage_loaded_free(&ld);
			raft_storage_close(st);
		}
		done++;
		free(orig);
		free(b);
		free_case(c);
	}
	assert_true(done >= 3);
	rm_dir(work);
}

/* Garbage after a torn tail that holds a byte-exact copy of an earlier record
 * (stale blocks, or a client command embedding one) is not taken for a record:
 * checksums cover the record's position, so this is a plain torn tail. */
static void test_torn_tail_with_stale_copy(void **state)
{
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage *st;
	static struct model m;
	struct rinfo r[64];
	char path[512];
	size_t size, n, k;
	uint8_t *b, *nb;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, NULL, &ld);
	raft_storage_loaded_free(&ld);
	do_append(st, &m, 6, 1, 3);
	set_hs(st, &m, 1, 2, 3);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_close(st);
	assert_int_equal(seg_path(d, 0, path, sizeof(path)), 0);
	b = read_whole(path, &size);
	n = walk(b, size, r, 64);
	assert_true(n >= 8);
	/* Torn record header, then copies of an entry and of the final marker. */
	k = size + 7 + r[2].total + r[n - 1].total;
	nb = calloc(1, k);
	assert_non_null(nb);
	memcpy(nb, b, size);
	memcpy(nb + size, b + r[3].off, 7);
	memcpy(nb + size + 7, b + r[2].off, r[2].total);
	memcpy(nb + size + 7 + r[2].total, b + r[n - 1].off, r[n - 1].total);
	write_whole(path, nb, k);
	st = open_ok(d, NULL, &ld);
	check_loaded(&ld, &m);
	assert_int_equal(ld.torn_bytes, k - size);
	raft_storage_loaded_free(&ld);
	raft_storage_close(st);
	assert_int_equal(file_size(path), (off_t)size);
	free(nb);
	free(b);
	rm_dir(d);
}

/* A crash while creating a new segment leaves it empty or with a torn header:
 * it is removed, and the next segment reuses its number. */
static void test_torn_new_segment(void **state)
{
	struct raft_storage_options o = {.segment_size = 300};
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage *st;
	static struct model m;
	char path[512];
	int nseg;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	for (int i = 0; i < 6; i++) {
		do_append(st, &m, 3, 1, (uint64_t)i);
		set_hs(st, &m, 1, 1, m.last);
		assert_int_equal(raft_storage_sync(st), 0);
	}
	raft_storage_close(st);
	nseg = count_files(d, "seg-");
	for (int variant = 0; variant < 3; variant++) {
		static const uint8_t torn[] = {0xF7, 0x4C, 1, 1, 40, 0, 0, 0, 9, 9};
		snprintf(path, sizeof(path), "%s/seg-%016x.log", d, (unsigned)nseg + 1);
		write_whole(path, torn, variant == 0 ? 0 : variant == 1 ? 3 : sizeof(torn));
		reopen_check(d, &o, &m);
		assert_int_equal(file_size(path), -1);
	}
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	do_append(st, &m, 8, 2, 50);
	set_hs(st, &m, 2, 0, m.last);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_close(st);
	assert_true(file_size(path) > 0);
	reopen_check(d, &o, &m);
	rm_dir(d);
}

/* Files gone missing or out of place are reported, never papered over. */
static void test_missing_and_leftover_segments(void **state)
{
	struct raft_storage_options o = {.segment_size = 400};
	char *d = make_dir(), *w = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage *st = NULL;
	static struct model m;
	char path[512], err[512], old[512];
	uint8_t *b;
	size_t n;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	for (int i = 0; i < 12; i++) {
		do_append(st, &m, 4, 1, (uint64_t)i);
		set_hs(st, &m, 1, 1, m.last);
		assert_int_equal(raft_storage_sync(st), 0);
	}
	raft_storage_close(st);
	assert_true(count_files(d, "seg-") >= 4);

	/* The middle segment deleted: the log after the gap does not reach back to
	 * index 1 and there is no snapshot, so open refuses. */
	copy_dir(d, w);
	snprintf(path, sizeof(path), "%s/seg-%016x.log", w, 2);
	assert_int_equal(unlink(path), 0);
	st = NULL;
	assert_int_equal(raft_storage_open(w, &o, &st, &ld, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "missing"));

	/* The first segment deleted, likewise. */
	clear_dir(w);
	copy_dir(d, w);
	snprintf(path, sizeof(path), "%s/seg-%016x.log", w, 1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(raft_storage_open(w, &o, &st, &ld, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "missing"));

	/* After a snapshot and compaction, a compacted segment reappearing (its
	 * unlink lost in a crash) is ignored and removed. */
	snprintf(old, sizeof(old), "%s/seg-%016x.log", d, 1);
	b = read_whole(old, &n);
	st = open_ok(d, &o, &ld);
	raft_storage_loaded_free(&ld);
	assert_int_equal(raft_storage_save_snapshot(st, 30, 1, NULL, 0, NULL, 0), 0);
	m.snap = 30;
	m.snap_term = 1;
	assert_int_equal(raft_storage_compact(st, 30), 0);
	raft_storage_close(st);
	assert_int_equal(file_size(old), -1);
	/* Whether or not segment 2 went too, the resurrected file is harmless:
	 * after a gap it is ignored and deleted, next to 2 it replays cleanly. */
	snprintf(path, sizeof(path), "%s/seg-%016x.log", d, 2);
	{
		int gap = file_size(path) < 0;
		write_whole(old, b, n);
		reopen_check(d, &o, &m);
		if (gap)
			assert_int_equal(file_size(old), -1);
	}
	free(b);
	rm_dir(w);
	rm_dir(d);
}

/* A record from a future format version (valid checksum) is not guessed at. */
static void test_unknown_version(void **state)
{
	char *d = make_dir();
	struct raft_storage_loaded ld;
	struct raft_storage *st;
	static struct model m;
	char path[512], err[512];
	struct rinfo r[16];
	size_t n, k;
	uint8_t *b, where[16];
	uint32_t crc;
	(void)state;

	memset(&m, 0, sizeof(m));
	st = open_ok(d, NULL, &ld);
	raft_storage_loaded_free(&ld);
	do_append(st, &m, 3, 1, 1);
	assert_int_equal(raft_storage_sync(st), 0);
	raft_storage_close(st);
	assert_int_equal(seg_path(d, 0, path, sizeof(path)), 0);
	b = read_whole(path, &n);
	k = walk(b, n, r, 16);
	assert_true(k >= 3);
	/* Re-seal record 1 with version 2: CRC over (seq, offset, record). */
	b[r[1].off + 2] = 2;
	memset(where, 0, sizeof(where));
	where[0] = 1;
	for (int i = 0; i < 8; i++)
		where[8 + i] = (uint8_t)(r[1].off >> (8 * i));
	crc = raft_storage_crc32c(raft_storage_crc32c(0, where, 16), b + r[1].off, r[1].total - 4);
	for (int i = 0; i < 4; i++)
		b[r[1].off + r[1].total - 4 + i] = (uint8_t)(crc >> (8 * i));
	write_whole(path, b, n);
	free(b);
	st = NULL;
	assert_int_equal(raft_storage_open(d, NULL, &st, &ld, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "version 2"));
	rm_dir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_unsynced_is_lost),
	    cmocka_unit_test(test_argument_checks),
	    cmocka_unit_test(test_truncate_suffix),
	    cmocka_unit_test(test_compaction),
	    cmocka_unit_test(test_snapshots),
	    cmocka_unit_test(test_snapshot_beyond_log),
	    cmocka_unit_test(test_recovery_random_cuts),
	    cmocka_unit_test(test_flip_nonfinal_refused),
	    cmocka_unit_test(test_flip_final_record),
	    cmocka_unit_test(test_flip_unacked_last_entry),
	    cmocka_unit_test(test_hole_in_last_batch),
	    cmocka_unit_test(test_torn_tail_with_stale_copy),
	    cmocka_unit_test(test_torn_new_segment),
	    cmocka_unit_test(test_missing_and_leftover_segments),
	    cmocka_unit_test(test_unknown_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
