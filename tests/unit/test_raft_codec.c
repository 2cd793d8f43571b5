/* Unit tests for raft/codec: round trips, truncation, limits, error codes, mutated frames. */
#include "tests/unit/testutil.h"
#include "raft/codec.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>


/* Values that stress encodings: 0, small, all-ones, high bit. */
static uint64_t rnd_u64(uint64_t *s)
{
	switch (tu_below(s, 4)) {
	case 0:
		return 0;
	case 1:
		return tu_below(s, 1000);
	case 2:
		return UINT64_MAX - tu_below(s, 3);
	default:
		return tu_rand(s);
	}
}

/* A random message of type t, with storage for its bytes kept in *pool. */
struct owned {
	struct raft_message m;
	struct raft_entry ents[40];
	uint8_t pool[40 * 300 + 4000];
};

static void random_msg(struct owned *o, uint8_t t, uint64_t *s)
{
	struct raft_message *m = &o->m;
	size_t used = 0;

	memset(o, 0, sizeof(*o));
	m->type = t;
	m->reject = (uint8_t)tu_below(s, 2);
	m->flags = (uint8_t)tu_below(s, 2);
	m->from = rnd_u64(s);
	m->to = rnd_u64(s);
	m->term = rnd_u64(s);
	m->log_term = rnd_u64(s);
	m->index = rnd_u64(s);
	m->commit = rnd_u64(s);
	m->reject_hint = rnd_u64(s);
	m->hint_term = rnd_u64(s);
	m->ctx = rnd_u64(s);
	if (t == RAFT_MSG_APPEND) {
		m->n_entries = (uint32_t)tu_below(s, 41);
		m->entries = o->ents;
		for (uint32_t i = 0; i < m->n_entries; i++) {
			struct raft_entry *e = &o->ents[i];
			e->term = rnd_u64(s);
			e->index = rnd_u64(s);
			e->type = (uint8_t)(1 + tu_below(s, 3));
			e->len = (uint32_t)tu_below(s, 300);
			e->data = e->len ? o->pool + used : NULL;
			for (uint32_t k = 0; k < e->len; k++)
				o->pool[used++] = (uint8_t)tu_rand(s);
		}
	} else if (t == RAFT_MSG_SNAPSHOT) {
		m->snap.index = rnd_u64(s);
		m->snap.term = rnd_u64(s);
		m->snap.conf.n_voters = (uint32_t)tu_below(s, RAFT_MAX_MEMBERS + 1);
		m->snap.conf.n_learners = (uint32_t)tu_below(s, RAFT_MAX_MEMBERS + 1);
		for (uint32_t i = 0; i < m->snap.conf.n_voters; i++)
			m->snap.conf.voters[i] = rnd_u64(s);
		for (uint32_t i = 0; i < m->snap.conf.n_learners; i++)
			m->snap.conf.learners[i] = rnd_u64(s);
		m->snap_len = (uint32_t)tu_below(s, 4000);
		m->snap_data = m->snap_len ? o->pool : NULL;
		for (uint32_t k = 0; k < m->snap_len; k++)
			o->pool[k] = (uint8_t)tu_rand(s);
	}
}

static void assert_same(const struct raft_message *a, const struct raft_message *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->reject, b->reject);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->from, b->from);
	assert_int_equal(a->to, b->to);
	assert_int_equal(a->term, b->term);
	assert_int_equal(a->log_term, b->log_term);
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->commit, b->commit);
	assert_int_equal(a->reject_hint, b->reject_hint);
	assert_int_equal(a->hint_term, b->hint_term);
	assert_int_equal(a->ctx, b->ctx);
	assert_int_equal(a->n_entries, b->n_entries);
	for (uint32_t i = 0; i < a->n_entries; i++) {
		assert_int_equal(a->entries[i].term, b->entries[i].term);
		assert_int_equal(a->entries[i].index, b->entries[i].index);
		assert_int_equal(a->entries[i].type, b->entries[i].type);
		assert_int_equal(a->entries[i].len, b->entries[i].len);
		if (a->entries[i].len)
			assert_memory_equal(a->entries[i].data, b->entries[i].data,
					    a->entries[i].len);
	}
	assert_int_equal(a->snap.index, b->snap.index);
	assert_int_equal(a->snap.term, b->snap.term);
	assert_memory_equal(&a->snap.conf, &b->snap.conf, sizeof(a->snap.conf));
	assert_int_equal(a->snap_len, b->snap_len);
	if (a->snap_len)
		assert_memory_equal(a->snap_data, b->snap_data, a->snap_len);
}

/* Encode into an exact-size heap buffer (so ASan sees any overrun). */
static uint8_t *encode(const struct raft_message *m, size_t *len)
{
	uint8_t *b;

	assert_int_equal(raft_codec_size(m, len), 0);
	b = malloc(*len);
	assert_non_null(b);
	assert_int_equal(raft_codec_encode(m, b, *len, len), 0);
	return b;
}

static void test_roundtrip_every_type(void **state)
{
	static struct owned o;
	uint64_t s = 1;
	(void)state;

	for (int iter = 0; iter < 300; iter++) {
		for (uint8_t t = RAFT_MSG_APPEND; t <= RAFT_MSG_TIMEOUT_NOW; t++) {
			struct raft_message d;
			size_t len, len2, flen;
			uint8_t *b, *b2;

			random_msg(&o, t, &s);
			b = encode(&o.m, &len);
			assert_int_equal(b[4], RAFT_CODEC_VERSION);
			assert_int_equal(raft_codec_frame_len(b, len, &flen), 0);
			assert_int_equal(flen, len);
			assert_int_equal(raft_codec_decode(b, len, &d), 0);
			assert_same(&o.m, &d);
			/* Borrowed bytes point into the frame. */
			for (uint32_t i = 0; i < d.n_entries; i++)
				if (d.entries[i].len)
					assert_true(d.entries[i].data > b &&
						    d.entries[i].data + d.entries[i].len <=
							b + len);
			/* Canonical: re-encoding gives the same bytes. */
			b2 = encode(&d, &len2);
			assert_int_equal(len2, len);
			assert_memory_equal(b, b2, len);
			raft_codec_release(&d);
			assert_null(d.entries);
			free(b);
			free(b2);
		}
	}
}

static void test_fixed_layout(void **state)
{
	struct raft_message m = {0};
	uint8_t b[RAFT_CODEC_HDR_LEN];
	size_t len;
	(void)state;

	/* Pin the wire format: a change here breaks mixed-version clusters. */
	m.type = RAFT_MSG_VOTE;
	m.flags = RAFT_MSGF_TRANSFER;
	m.from = 0x0102030405060708ULL;
	m.to = 2;
	m.term = 7;
	m.log_term = 6;
	m.index = 0x1122;
	assert_int_equal(raft_codec_encode(&m, b, sizeof(b), &len), 0);
	assert_int_equal(len, 80);
	assert_int_equal(b[0], 76);
	assert_int_equal(b[1] | b[2] | b[3], 0);
	assert_int_equal(b[4], 1);
	assert_int_equal(b[5], RAFT_MSG_VOTE);
	assert_int_equal(b[6], 1);
	assert_int_equal(b[7], 0);
	assert_int_equal(b[8], 0x08);
	assert_int_equal(b[15], 0x01);
	assert_int_equal(b[16], 2);
	assert_int_equal(b[24], 7);
	assert_int_equal(b[32], 6);
	assert_int_equal(b[40], 0x22);
	assert_int_equal(b[41], 0x11);
}

static void test_every_truncation_fails(void **state)
{
	static struct owned o;
	uint64_t s = 2;
	(void)state;

	for (uint8_t t = RAFT_MSG_APPEND; t <= RAFT_MSG_TIMEOUT_NOW; t++) {
		for (int iter = 0; iter < 3; iter++) {
			size_t len;
			uint8_t *b;

			random_msg(&o, t, &s);
			if (t == RAFT_MSG_APPEND && o.m.n_entries > 6)
				o.m.n_entries = 6; /* keep the quadratic loop small */
			b = encode(&o.m, &len);
			for (size_t k = 0; k < len; k++) {
				struct raft_message d;
				uint8_t *cut = malloc(k ? k : 1);
				assert_non_null(cut);
				memcpy(cut, b, k);
				assert_int_equal(raft_codec_decode(cut, k, &d), -ENODATA);
				assert_null(d.entries);
				free(cut);
			}
			free(b);
		}
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_distinct_errors(void **state)
{
	static struct owned o;
	struct raft_message d;
	uint64_t s = 3;
	size_t len, off;
	uint8_t *b, *big;
	(void)state;

	random_msg(&o, RAFT_MSG_APPEND, &s);
	o.m.n_entries = 2;
	o.ents[0].len = 3;
	o.ents[1].len = 5;
	b = encode(&o.m, &len);

	/* Trailing garbage after the frame, and inside it. */
	big = malloc(len + 1);
	memcpy(big, b, len);
	big[len] = 0;
	assert_int_equal(raft_codec_decode(big, len + 1, &d), -EBADMSG);
	put32(big, (uint32_t)(len + 1 - 4));
	assert_int_equal(raft_codec_decode(big, len + 1, &d), -EBADMSG);
	free(big);

	/* Unknown version and type. */
	b[4] = 2;
	assert_int_equal(raft_codec_decode(b, len, &d), -EPROTONOSUPPORT);
	assert_int_equal(raft_codec_frame_len(b, len, &off), -EPROTONOSUPPORT);
	b[4] = RAFT_CODEC_VERSION;
	for (unsigned t = 0; t < 256; t++) {
		int want = t >= RAFT_MSG_APPEND && t <= RAFT_MSG_TIMEOUT_NOW ? 0 : -ENOMSG;
		int rc;
		b[5] = (uint8_t)t;
		rc = raft_codec_decode(b, len, &d);
		if (want == -ENOMSG)
			assert_int_equal(rc, -ENOMSG);
		else
			assert_true(rc != -ENOMSG);
		raft_codec_release(&d);
	}
	b[5] = RAFT_MSG_APPEND;
	assert_int_equal(raft_codec_decode(b, len, &d), 0);
	raft_codec_release(&d);

	/* Field domains. */
	b[7] = 2;
	assert_int_equal(raft_codec_decode(b, len, &d), -EINVAL);
	b[7] = 1;
	b[6] = 2;
	assert_int_equal(raft_codec_decode(b, len, &d), -EINVAL);
	b[6] = 0;
	off = RAFT_CODEC_HDR_LEN + 4 + 16; /* first entry's type */
	b[off] = 0;
	assert_int_equal(raft_codec_decode(b, len, &d), -EINVAL);
	b[off] = 4;
	assert_int_equal(raft_codec_decode(b, len, &d), -EINVAL);
	b[off] = RAFT_ENTRY_CONF;
	assert_int_equal(raft_codec_decode(b, len, &d), 0);
	raft_codec_release(&d);

	/* Limits. */
	put32(b + RAFT_CODEC_HDR_LEN, RAFT_CODEC_MAX_ENTRIES + 1);
	assert_int_equal(raft_codec_decode(b, len, &d), -EMSGSIZE);
	put32(b + RAFT_CODEC_HDR_LEN, 1000); /* more entries than bytes left */
	assert_int_equal(raft_codec_decode(b, len, &d), -ENODATA);
	put32(b + RAFT_CODEC_HDR_LEN, 2);
	put32(b + off + 1, RAFT_CODEC_MAX_ENTRY + 1);
	assert_int_equal(raft_codec_decode(b, len, &d), -EMSGSIZE);
	put32(b + off + 1, 3);
	assert_int_equal(raft_codec_decode(b, len, &d), 0);
	raft_codec_release(&d);
	put32(b, RAFT_CODEC_MAX_FRAME);
	assert_int_equal(raft_codec_decode(b, len, &d), -EMSGSIZE);
	assert_int_equal(raft_codec_frame_len(b, len, &off), -EMSGSIZE);
	free(b);

	/* Members beyond the fixed-size configuration. */
	random_msg(&o, RAFT_MSG_SNAPSHOT, &s);
	b = encode(&o.m, &len);
	put32(b + RAFT_CODEC_HDR_LEN + 16, RAFT_MAX_MEMBERS + 1);
	assert_int_equal(raft_codec_decode(b, len, &d), -EINVAL);
	assert_int_equal(d.snap.conf.n_voters, 0);
	free(b);

	/* Each code has its own text. */
	assert_string_not_equal(raft_codec_strerror(-ENODATA), raft_codec_strerror(-EBADMSG));
	assert_string_not_equal(raft_codec_strerror(-ENOMSG),
				raft_codec_strerror(-EPROTONOSUPPORT));
}

static void test_encode_errors(void **state)
{
	static struct owned o;
	struct raft_message m = {0};
	struct raft_entry e = {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL};
	uint8_t b[200];
	uint64_t s = 4;
	size_t len = 0;
	(void)state;

	m.type = 0;
	assert_int_equal(raft_codec_encode(&m, b, sizeof(b), &len), -ENOMSG);
	m.type = 11;
	assert_int_equal(raft_codec_size(&m, &len), -ENOMSG);
	m.type = RAFT_MSG_HEARTBEAT;
	m.reject = 2;
	assert_int_equal(raft_codec_size(&m, &len), -EINVAL);
	m.reject = 0;
	m.flags = 0x80;
	assert_int_equal(raft_codec_size(&m, &len), -EINVAL);
	m.flags = 0;
	/* Entries or snapshot bytes on a type that has no place for them. */
	m.n_entries = 1;
	m.entries = &e;
	assert_int_equal(raft_codec_size(&m, &len), -EINVAL);
	m.n_entries = 0;
	m.snap_len = 1;
	m.snap_data = b;
	assert_int_equal(raft_codec_size(&m, &len), -EINVAL);
	m.snap_len = 0;
	m.snap.index = 5;
	assert_int_equal(raft_codec_size(&m, &len), -EINVAL);
	m.snap.index = 0;
	/* Buffer too small: the size needed comes back. */
	assert_int_equal(raft_codec_encode(&m, b, 10, &len), -ENOSPC);
	assert_int_equal(len, RAFT_CODEC_HDR_LEN);
	assert_int_equal(raft_codec_encode(&m, NULL, 0, &len), -ENOSPC);
	assert_int_equal(raft_codec_encode(&m, b, sizeof(b), &len), 0);
	/* Limits on the way out too. */
	random_msg(&o, RAFT_MSG_APPEND, &s);
	o.m.n_entries = RAFT_CODEC_MAX_ENTRIES + 1;
	assert_int_equal(raft_codec_size(&o.m, &len), -EMSGSIZE);
	o.m.n_entries = 1;
	o.ents[0].len = RAFT_CODEC_MAX_ENTRY + 1;
	assert_int_equal(raft_codec_size(&o.m, &len), -EMSGSIZE);
	o.ents[0].len = 1;
	o.ents[0].data = NULL;
	assert_int_equal(raft_codec_size(&o.m, &len), -EINVAL);
	o.ents[0].len = 0;
	o.ents[0].type = 9;
	assert_int_equal(raft_codec_size(&o.m, &len), -EINVAL);
}

static void test_stream_split(void **state)
{
	static struct owned o;
	uint8_t *stream = NULL;
	size_t total = 0, off = 0, n = 0;
	uint8_t types[30];
	uint64_t s = 5;
	(void)state;

	for (int i = 0; i < 30; i++) {
		size_t len;
		uint8_t *b;
		random_msg(&o, (uint8_t)(1 + tu_below(&s, 10)), &s);
		types[i] = o.m.type;
		b = encode(&o.m, &len);
		stream = realloc(stream, total + len);
		assert_non_null(stream);
		memcpy(stream + total, b, len);
		total += len;
		free(b);
	}
	while (off < total) {
		struct raft_message d;
		size_t flen;
		/* Before 5 bytes are there the splitter asks for more. */
		assert_int_equal(raft_codec_frame_len(stream + off, 4, &flen), -ENODATA);
		assert_int_equal(raft_codec_frame_len(stream + off, total - off, &flen), 0);
		assert_true(flen <= total - off);
		assert_int_equal(raft_codec_decode(stream + off, flen, &d), 0);
		assert_int_equal(d.type, types[n]);
		raft_codec_release(&d);
		off += flen;
		n++;
	}
	assert_int_equal(n, 30);
	free(stream);
}

/* Random mutations of valid frames: decode returns 0 or a known code, never
 * reads outside the buffer (exact-size copies under ASan), and what it
 * accepts re-encodes to the same bytes. */
static void test_mutations_never_crash(void **state)
{
	static struct owned o;
	uint64_t s = 6;
	int accepted = 0, rejected = 0;
	(void)state;

	for (int iter = 0; iter < 6000; iter++) {
		struct raft_message d;
		size_t len, mlen;
		uint8_t *b, *mb;
		int rc;

		random_msg(&o, (uint8_t)(1 + tu_below(&s, 10)), &s);
		if (o.m.n_entries > 8)
			o.m.n_entries = 8;
		b = encode(&o.m, &len);
		mlen = len;
		switch (tu_below(&s, 4)) {
		case 0: /* flip bytes */
			for (uint64_t k = 1 + tu_below(&s, 4); k > 0; k--)
				b[tu_below(&s, len)] ^= (uint8_t)(1 + tu_below(&s, 255));
			break;
		case 1: /* shorten */
			mlen = tu_below(&s, len);
			break;
		case 2: /* change a length or count field to something hostile */
			put32(b + (tu_below(&s, 2) ? 0 : tu_below(&s, len - 3)), (uint32_t)tu_rand(&s));
			break;
		default: /* keep the frame, fix the prefix to a random size */
			mlen = RAFT_CODEC_HDR_LEN + tu_below(&s, len);
			if (mlen > len)
				mlen = len;
			put32(b, (uint32_t)(mlen - 4));
			break;
		}
		mb = malloc(mlen ? mlen : 1);
		assert_non_null(mb);
		memcpy(mb, b, mlen);
		rc = raft_codec_decode(mb, mlen, &d);
		if (rc == 0) {
			size_t len2;
			uint8_t *b2 = encode(&d, &len2);
			assert_int_equal(len2, mlen);
			assert_memory_equal(b2, mb, mlen);
			free(b2);
			accepted++;
		} else {
			assert_true(rc == -ENODATA || rc == -EBADMSG || rc == -EPROTONOSUPPORT ||
				    rc == -ENOMSG || rc == -EMSGSIZE || rc == -EINVAL);
			assert_null(d.entries);
			rejected++;
		}
		raft_codec_release(&d);
		free(mb);
		free(b);
	}
	assert_true(accepted > 100 && rejected > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_every_type),   cmocka_unit_test(test_fixed_layout),
	    cmocka_unit_test(test_every_truncation_fails), cmocka_unit_test(test_distinct_errors),
	    cmocka_unit_test(test_encode_errors),	   cmocka_unit_test(test_stream_split),
	    cmocka_unit_test(test_mutations_never_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
