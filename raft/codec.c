#include "raft/codec.h"
#include "raft/le.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_HDR  21 /* u64 term, u64 index, u8 type, u32 len */
#define SNAP_FIXED 24 /* u64 index, u64 term, u32 n_voters, u32 n_learners */


static int type_known(unsigned t)
{
	return t >= RAFT_MSG_APPEND && t <= RAFT_MSG_TIMEOUT_NOW;
}

static int entry_type_known(unsigned t)
{
	return t >= RAFT_ENTRY_NORMAL && t <= RAFT_ENTRY_CONF;
}

#define KNOWN_FLAGS ((unsigned)RAFT_MSGF_TRANSFER)

/* ---------------------------------------------------------------- encode */

int raft_codec_size(const struct raft_message *m, size_t *len)
{
	uint64_t n = RAFT_CODEC_HDR_LEN;

	if (m == NULL || len == NULL)
		return -EINVAL;
	if (!type_known(m->type))
		return -ENOMSG;
	if (m->reject > 1 || (m->flags & ~KNOWN_FLAGS) != 0)
		return -EINVAL;
	if (m->type != RAFT_MSG_APPEND && m->n_entries != 0)
		return -EINVAL;
	if (m->type != RAFT_MSG_SNAPSHOT &&
	    (m->snap_len != 0 || m->snap.index != 0 || m->snap.term != 0 ||
	     m->snap.conf.n_voters != 0 || m->snap.conf.n_learners != 0))
		return -EINVAL;
	if (m->type == RAFT_MSG_APPEND) {
		if (m->n_entries > RAFT_CODEC_MAX_ENTRIES)
			return -EMSGSIZE;
		if (m->n_entries && m->entries == NULL)
			return -EINVAL;
		n += 4;
		for (uint32_t i = 0; i < m->n_entries; i++) {
			const struct raft_entry *e = &m->entries[i];
			if (e->len > RAFT_CODEC_MAX_ENTRY)
				return -EMSGSIZE;
			if (!entry_type_known(e->type) || (e->len && e->data == NULL))
				return -EINVAL;
			n += ENTRY_HDR + (uint64_t)e->len;
		}
	}
	if (m->type == RAFT_MSG_SNAPSHOT) {
		const struct raft_conf *c = &m->snap.conf;
		if (c->n_voters > RAFT_MAX_MEMBERS || c->n_learners > RAFT_MAX_MEMBERS ||
		    (m->snap_len && m->snap_data == NULL))
			return -EINVAL;
		n += SNAP_FIXED + 8 * ((uint64_t)c->n_voters + c->n_learners) + 4 + m->snap_len;
	}
	if (n > RAFT_CODEC_MAX_FRAME)
		return -EMSGSIZE;
	*len = (size_t)n;
	return 0;
}

int raft_codec_encode(const struct raft_message *m, uint8_t *buf, size_t cap, size_t *len)
{
	size_t need, o;
	uint8_t *p;
	int rc;

	rc = raft_codec_size(m, &need);
	if (rc < 0)
		return rc;
	if (len)
		*len = need;
	if (buf == NULL || cap < need)
		return -ENOSPC;
	p = buf;
	raft_le_put32(p, (uint32_t)(need - 4));
	p[4] = RAFT_CODEC_VERSION;
	p[5] = m->type;
	p[6] = m->flags;
	p[7] = m->reject;
	raft_le_put64(p + 8, m->from);
	raft_le_put64(p + 16, m->to);
	raft_le_put64(p + 24, m->term);
	raft_le_put64(p + 32, m->log_term);
	raft_le_put64(p + 40, m->index);
	raft_le_put64(p + 48, m->commit);
	raft_le_put64(p + 56, m->reject_hint);
	raft_le_put64(p + 64, m->hint_term);
	raft_le_put64(p + 72, m->ctx);
	o = RAFT_CODEC_HDR_LEN;
	if (m->type == RAFT_MSG_APPEND) {
		raft_le_put32(p + o, m->n_entries);
		o += 4;
		for (uint32_t i = 0; i < m->n_entries; i++) {
			const struct raft_entry *e = &m->entries[i];
			raft_le_put64(p + o, e->term);
			raft_le_put64(p + o + 8, e->index);
			p[o + 16] = e->type;
			raft_le_put32(p + o + 17, e->len);
			o += ENTRY_HDR;
			if (e->len)
				memcpy(p + o, e->data, e->len);
			o += e->len;
		}
	} else if (m->type == RAFT_MSG_SNAPSHOT) {
		const struct raft_conf *c = &m->snap.conf;
		raft_le_put64(p + o, m->snap.index);
		raft_le_put64(p + o + 8, m->snap.term);
		raft_le_put32(p + o + 16, c->n_voters);
		raft_le_put32(p + o + 20, c->n_learners);
		o += SNAP_FIXED;
		for (uint32_t i = 0; i < c->n_voters; i++, o += 8)
			raft_le_put64(p + o, c->voters[i]);
		for (uint32_t i = 0; i < c->n_learners; i++, o += 8)
			raft_le_put64(p + o, c->learners[i]);
		raft_le_put32(p + o, m->snap_len);
		o += 4;
		if (m->snap_len)
			memcpy(p + o, m->snap_data, m->snap_len);
		o += m->snap_len;
	}
	return o == need ? 0 : -EINVAL; /* cannot differ; guards the size arithmetic */
}

/* ---------------------------------------------------------------- decode */

int raft_codec_frame_len(const uint8_t *buf, size_t avail, size_t *frame_len)
{
	uint32_t body;

	if (buf == NULL || avail < 5)
		return -ENODATA;
	body = raft_le_get32(buf);
	if (body > RAFT_CODEC_MAX_FRAME - 4)
		return -EMSGSIZE;
	if (buf[4] != RAFT_CODEC_VERSION)
		return -EPROTONOSUPPORT;
	if (frame_len)
		*frame_len = (size_t)body + 4;
	return 0;
}

/* A bounded reader: every take checks what is left of the frame. */
struct cursor {
	const uint8_t *p;
	size_t left;
};

static const uint8_t *take(struct cursor *c, size_t n)
{
	const uint8_t *p = c->p;

	if (c->left < n)
		return NULL;
	c->p += n;
	c->left -= n;
	return p;
}

static int decode_entries(struct cursor *c, struct raft_message *m)
{
	const uint8_t *p = take(c, 4);
	uint32_t n;

	if (p == NULL)
		return -ENODATA;
	n = raft_le_get32(p);
	if (n > RAFT_CODEC_MAX_ENTRIES)
		return -EMSGSIZE;
	/* Allocate only what the remaining bytes can possibly describe, so a
	 * short frame cannot ask for a big allocation. */
	if ((uint64_t)n * ENTRY_HDR > c->left)
		return -ENODATA;
	if (n == 0)
		return 0;
	m->entries = calloc(n, sizeof(*m->entries));
	if (m->entries == NULL)
		return -ENOMEM;
	m->n_entries = n;
	for (uint32_t i = 0; i < n; i++) {
		struct raft_entry *e = &m->entries[i];
		p = take(c, ENTRY_HDR);
		if (p == NULL)
			return -ENODATA;
		e->term = raft_le_get64(p);
		e->index = raft_le_get64(p + 8);
		e->type = p[16];
		e->len = raft_le_get32(p + 17);
		if (e->len > RAFT_CODEC_MAX_ENTRY)
			return -EMSGSIZE;
		if (!entry_type_known(e->type))
			return -EINVAL;
		if (e->len) {
			p = take(c, e->len);
			if (p == NULL)
				return -ENODATA;
			/* Borrowed: see the contract in codec.h. */
			e->data = (uint8_t *)(uintptr_t)p;
		}
	}
	return 0;
}

static int decode_snapshot(struct cursor *c, struct raft_message *m)
{
	struct raft_conf *conf = &m->snap.conf;
	const uint8_t *p = take(c, SNAP_FIXED);

	if (p == NULL)
		return -ENODATA;
	m->snap.index = raft_le_get64(p);
	m->snap.term = raft_le_get64(p + 8);
	conf->n_voters = raft_le_get32(p + 16);
	conf->n_learners = raft_le_get32(p + 20);
	if (conf->n_voters > RAFT_MAX_MEMBERS || conf->n_learners > RAFT_MAX_MEMBERS) {
		conf->n_voters = conf->n_learners = 0;
		return -EINVAL;
	}
	for (uint32_t i = 0; i < conf->n_voters + conf->n_learners; i++) {
		p = take(c, 8);
		if (p == NULL)
			return -ENODATA;
		if (i < conf->n_voters)
			conf->voters[i] = raft_le_get64(p);
		else
			conf->learners[i - conf->n_voters] = raft_le_get64(p);
	}
	p = take(c, 4);
	if (p == NULL)
		return -ENODATA;
	m->snap_len = raft_le_get32(p);
	if (m->snap_len) {
		p = take(c, m->snap_len);
		if (p == NULL)
			return -ENODATA;
		m->snap_data = (uint8_t *)(uintptr_t)p;
	}
	return 0;
}

int raft_codec_decode(const uint8_t *buf, size_t len, struct raft_message *m)
{
	struct cursor c;
	const uint8_t *p;
	uint32_t body;
	int rc;

	if (m == NULL)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	if (buf == NULL || len < 5)
		return -ENODATA;
	body = raft_le_get32(buf);
	if (body > RAFT_CODEC_MAX_FRAME - 4)
		return -EMSGSIZE;
	if (buf[4] != RAFT_CODEC_VERSION)
		return -EPROTONOSUPPORT;
	if (len - 4 < body)
		return -ENODATA;
	if (len - 4 > body)
		return -EBADMSG;
	c.p = buf + 4;
	c.left = body;
	p = take(&c, RAFT_CODEC_HDR_LEN - 4);
	if (p == NULL)
		return -ENODATA;
	m->type = p[1];
	m->flags = p[2];
	m->reject = p[3];
	if (!type_known(m->type)) {
		rc = -ENOMSG;
		goto fail;
	}
	if (m->reject > 1 || (m->flags & ~KNOWN_FLAGS) != 0) {
		rc = -EINVAL;
		goto fail;
	}
	m->from = raft_le_get64(p + 4);
	m->to = raft_le_get64(p + 12);
	m->term = raft_le_get64(p + 20);
	m->log_term = raft_le_get64(p + 28);
	m->index = raft_le_get64(p + 36);
	m->commit = raft_le_get64(p + 44);
	m->reject_hint = raft_le_get64(p + 52);
	m->hint_term = raft_le_get64(p + 60);
	m->ctx = raft_le_get64(p + 68);
	rc = 0;
	if (m->type == RAFT_MSG_APPEND)
		rc = decode_entries(&c, m);
	else if (m->type == RAFT_MSG_SNAPSHOT)
		rc = decode_snapshot(&c, m);
	if (rc == 0 && c.left != 0)
		rc = -EBADMSG;
	if (rc == 0)
		return 0;
fail:
	raft_codec_release(m);
	return rc;
}

void raft_codec_release(struct raft_message *m)
{
	if (m == NULL)
		return;
	free(m->entries);
	memset(m, 0, sizeof(*m));
}

const char *raft_codec_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "ok";
	case -ENODATA:
		return "truncated frame";
	case -EBADMSG:
		return "trailing bytes after the message";
	case -EPROTONOSUPPORT:
		return "unsupported codec version";
	case -ENOMSG:
		return "unknown message type";
	case -EMSGSIZE:
		return "frame exceeds a codec limit";
	case -EINVAL:
		return "invalid field value";
	case -ENOSPC:
		return "buffer too small";
	case -ENOMEM:
		return "out of memory";
	default:
		return "unknown codec error";
	}
}
