/* Fuzz target: raft_codec_decode() on arbitrary bytes; what decodes must re-encode to the same
 * bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/codec.h"
#include "tests/fuzz/fuzz.h"


static int known_error(int rc)
{
	return rc == -ENODATA || rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -ENOMSG ||
	       rc == -EMSGSIZE || rc == -EINVAL || rc == -ENOMEM;
}

static void check_same(const struct raft_message *a, const struct raft_message *b)
{
	CHECK(a->type == b->type && a->reject == b->reject && a->flags == b->flags);
	CHECK(a->from == b->from && a->to == b->to && a->term == b->term);
	CHECK(a->log_term == b->log_term && a->index == b->index && a->commit == b->commit);
	CHECK(a->reject_hint == b->reject_hint && a->hint_term == b->hint_term && a->ctx == b->ctx);
	CHECK(a->n_entries == b->n_entries);
	for (uint32_t i = 0; i < a->n_entries; i++) {
		const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
		CHECK(x->term == y->term && x->index == y->index && x->type == y->type);
		CHECK(x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0));
	}
	CHECK(a->snap.index == b->snap.index && a->snap.term == b->snap.term);
	CHECK(memcmp(&a->snap.conf, &b->snap.conf, sizeof(a->snap.conf)) == 0);
	CHECK(a->snap_len == b->snap_len &&
	      (a->snap_len == 0 || memcmp(a->snap_data, b->snap_data, a->snap_len) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct raft_message m, m2;
	size_t flen = 0, len = 0;
	uint8_t *buf;
	int rc, frc;

	rc = raft_codec_decode(data, size, &m);
	frc = raft_codec_frame_len(data, size, &flen);
	if (rc != 0) {
		CHECK(known_error(rc));
		CHECK(m.entries == NULL && m.n_entries == 0);
		/* The stream splitter agrees with decode about the frame's extent. */
		if (frc == 0 && flen < size) {
			CHECK(rc == -EBADMSG);
			/* The first frame of the stream, decoded on its own. */
			rc = raft_codec_decode(data, flen, &m);
			CHECK(rc == 0 || known_error(rc));
			raft_codec_release(&m);
		}
		return 0;
	}
	CHECK(frc == 0 && flen == size);
	/* Canonical encoding: the same bytes come back. */
	CHECK(raft_codec_size(&m, &len) == 0 && len == size);
	buf = malloc(len);
	CHECK(buf != NULL);
	CHECK(raft_codec_encode(&m, buf, len, &len) == 0 && len == size);
	CHECK(memcmp(buf, data, size) == 0);
	CHECK(raft_codec_encode(&m, buf, len - 1, &len) == -ENOSPC && len == size);
	CHECK(raft_codec_decode(buf, len, &m2) == 0);
	check_same(&m, &m2);
	raft_codec_release(&m2);
	raft_codec_release(&m);
	free(buf);
	return 0;
}
