#include "dataplane/flow.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dataplane/hash.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define NS_PER_S 1000000000ULL

#define FLOW_HASH_SEED_V6 0xbb67ae8584caa73bULL /* sqrt(3); FLOW_HASH_SEED is in flow.h */

#define BUCKET_SLOTS   FLOW_BUCKET_SLOTS
#define SLOTS_PER_FLOW 4	   /* see flow.h: nat flows fill the index to at most half */
#define REF_REV	       FLOW_REF_REV
#define REF_ALT	       0x40000000u /* the slot is in the key's second bucket */
#define REF_IDX	       FLOW_REF_IDX
#define NIL	       0xffffffffu

/*
 * Bounds on the work one insert may do to make room, so that a flood costs a
 * bounded time per packet: entries examined for expiry at the sweep cursor,
 * queue entries walked looking for an embryonic one, entries examined to pick
 * an established victim.
 */
#define RECLAIM_SCAN 8
#define QUEUE_BUDGET 64
#define EST_SCAN     16

_Static_assert(sizeof(struct flow_bucket) == 64, "a bucket is one cache line");
_Static_assert(sizeof(struct flow_key) == 46,
	       "flow_key has no implicit padding (flow_key_eq: 16 + 16 + an overlapping 16 bytes)");
_Static_assert(offsetof(struct flow_key, sport) == 40, "flow_hash loads sport..pad as one word");
_Static_assert(offsetof(struct flow_entry, snat_port) == sizeof(struct flow_key),
	       "the nat port shares line 0 with the key");
_Static_assert(sizeof(struct flow_entry) == 128, "flow_entry is two cache lines");
_Static_assert(offsetof(struct flow_entry, svc_idx) == 64, "line 0 holds the per-hit fields");

enum release_why {
	REL_REMOVE,
	REL_EXPIRED,
	REL_EVICT_EXPIRED,
	REL_EVICT_EMBRYONIC,
	REL_EVICT_ESTABLISHED,
};

/* Timeout classes: TCP states 0..7 (5..7 never occur, mapped to CLOSED), UDP, other. */
enum { TMO_UDP = 8, TMO_OTHER = 9, TMO_N = 10 };
_Static_assert(TMO_UDP == 8 && TMO_OTHER == 9, "flow_hit_fast (flow.h) indexes the timeouts so");

struct flow_table {
	struct flow_entry *ent;
	struct flow_bucket *bkt;
	uint32_t cap;
	uint32_t nb; /* buckets; any count, mapped with a multiply (Lemire's fastrange) */
	uint32_t n_live;
	uint32_t free_head; /* free entries, linked through tbl_next (LIFO: reuse warm lines) */
	uint32_t q_head;    /* eviction queue: entries in creation order, linked through tbl_* */
	uint32_t q_tail;
	uint32_t cursor; /* sweep position */
	int evict_est;
	uint64_t tmo[TMO_N];
	void (*on_release)(void *ctx, const struct flow_entry *e);
	void *ctx;
	struct flow_stats st;
};

/* Where a key may live: two candidate buckets and its signature. */
struct loc {
	uint32_t b1;
	uint32_t b2;
	uint16_t sig;
};

void flow_timeouts_default(struct flow_timeouts *to)
{
	/*
	 * SYN 5 s: long enough for the client's first retransmissions (RFC 6298
	 * initial RTO 1 s, doubling: 1, 3, 7 s; each refreshes the entry), short
	 * enough that a SYN flood's entries go quickly. conntrack's 120 s would
	 * let a flood pin the table. A later retransmission just creates a new
	 * entry and Maglev picks the same backend.
	 */
	to->tcp_syn = 5 * NS_PER_S;
	/*
	 * Established 900 s, as IPVS: longer than common application idle
	 * timeouts (nginx 75 s, AWS NLB 350 s) so idle keep-alive connections
	 * keep their backend across a Maglev change. Established flows are never
	 * evicted by default, so size the table for this.
	 */
	to->tcp_est = 900 * NS_PER_S;
	/*
	 * FIN 30 s: the closing handshake and a short half-close; IPVS's 120 s
	 * holds memory longer, and a late packet just falls back to Maglev.
	 */
	to->tcp_fin = 30 * NS_PER_S;
	/* Closed 10 s (IPVS "close"): absorbs packets in flight and retransmitted RSTs. */
	to->tcp_closed = 10 * NS_PER_S;
	/* UDP 60 s: above QUIC's common 30 s idle timeout so a quiet QUIC connection survives. */
	to->udp = 60 * NS_PER_S;
	/* Other protocols 30 s (conntrack's generic default is 600 s; these are rare here). */
	to->other = 30 * NS_PER_S;
}

/*
 * The hash only has to agree with itself inside this node, so it reads the
 * meaningful fields as native words instead of hashing the key's 48 bytes,
 * most of them zero for IPv4: two rounds for v4, five for v6. The last word
 * is sport, dport, proto and the key's zero padding in one load. Keys that
 * differ only in bytes skipped here (the unused address bytes of v4, which
 * struct addr keeps zero) would collide, which costs a compare, never
 * correctness. The two seeds keep v4 and v6 keys apart.
 */
uint64_t flow_hash(const struct flow_key *k)
{
	uint64_t tail = 0, h;

	/* sport, dport, proto, pad: the key's last 6 bytes, zero-extended (flow_hash_v4) */
	memcpy(&tail, (const unsigned char *)k + offsetof(struct flow_key, sport),
	       sizeof(*k) - offsetof(struct flow_key, sport));
	if (k->src.family == ADDR_V4 && k->dst.family == ADDR_V4) {
		uint32_t s4, d4;

		memcpy(&s4, k->src.b, 4);
		memcpy(&d4, k->dst.b, 4);
		h = hash_step(FLOW_HASH_SEED, (uint64_t)s4 | (uint64_t)d4 << 32);
	} else if (k->src.family == ADDR_V6 && k->dst.family == ADDR_V6) {
		uint64_t w[4];

		memcpy(&w[0], k->src.b, 16);
		memcpy(&w[2], k->dst.b, 16);
		h = FLOW_HASH_SEED_V6;
		for (unsigned i = 0; i < 4; i++)
			h = hash_step(h, w[i]);
	} else {
		/* Mixed or unset families never reach the table on the fast path. */
		return hash_bytes(k, sizeof(*k), FLOW_HASH_SEED);
	}
	return flow_hash_fin(hash_step(h, tail));
}


/* ---- small helpers ------------------------------------------------------- */

/*
 * The other bucket of a key in bucket b with signature sig: (c - b) mod nb
 * with c drawn from the signature, an involution, so a slot's other bucket is
 * known from the bucket alone and a key can be moved without reading its
 * entry (partial-key cuckoo hashing: Fan et al., "MemC3", NSDI 2013, 3.1;
 * DPDK's rte_hash uses XOR, which needs a power-of-two bucket count).
 */
static inline uint32_t alt_bucket(const struct flow_table *t, uint32_t b, uint16_t sig)
{
	uint32_t c = (uint32_t)(((uint64_t)(sig * 0x9e3779b1u) * t->nb) >> 32);

	return c >= b ? c - b : c + t->nb - b;
}

static inline uint32_t first_bucket(const struct flow_table *t, uint64_t h)
{
	return flow_index_bucket(t->nb, h);
}

static inline uint16_t signature(uint64_t h)
{
	return flow_index_sig(h);
}

static inline void locate(const struct flow_table *t, uint64_t h, struct loc *l)
{
	l->b1 = first_bucket(t, h);
	l->sig = signature(h);
	l->b2 = alt_bucket(t, l->b1, l->sig);
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void rev_key(const struct flow_entry *e, struct flow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->src = e->rev_src;
	k->dst = e->snat_addr;
	k->sport = e->rev_sport;
	k->dport = e->snat_port;
	k->proto = e->key.proto;
}


/* flow_bucket_sig_mask (flow.h); flow_check compares it with the portable loop on every bucket. */
static inline unsigned sig_mask(const struct flow_bucket *b, uint16_t sig)
{
	return flow_bucket_sig_mask(b, sig);
}

static inline int entry_expired(const struct flow_table *t, const struct flow_entry *e,
				uint64_t now)
{
	return flow_entry_expired(t->tmo, e, now);
}

/*
 * Cheap to evict: a flow that has shown no sign of being a real conversation.
 * One packet is all a spoofed SYN, a mid-stream ACK flood or a DNS query ever
 * shows; a TCP flow counts as real only once it reached ESTABLISHED.
 */
static inline int entry_embryonic(const struct flow_entry *e)
{
	if (!(e->flags & FLOW_F_MULTI))
		return 1;
	return e->key.proto == IPPROTO_TCP && !(e->flags & FLOW_F_WAS_EST);
}

static int entry_of(const struct flow_table *t, const struct flow_entry *e, uint32_t *idx)
{
	uintptr_t p = (uintptr_t)e, base = (uintptr_t)t->ent;

	if (e == NULL || p < base || (p - base) % sizeof(*e) != 0 ||
	    (p - base) / sizeof(*e) >= t->cap || !(e->flags & FLOW_F_LIVE))
		return -EINVAL;
	*idx = (uint32_t)((p - base) / sizeof(*e));
	return 0;
}

/* ---- index --------------------------------------------------------------- */

/* The ref of the slot of bucket bi holding key k, or NIL. */
static uint32_t bucket_find(const struct flow_table *t, uint32_t bi, const struct flow_key *k,
			    uint16_t sig)
{
	const struct flow_bucket *b = &t->bkt[bi];
	unsigned m = sig_mask(b, sig);

	while (m) {
		unsigned i = (unsigned)__builtin_ctz(m);
		uint32_t ref = b->ref[i];
		const struct flow_entry *e = &t->ent[ref & REF_IDX];

		m &= m - 1;
		if (ref & REF_REV ? flow_rev_eq(e, k) : flow_key_eq(&e->key, k))
			return ref;
	}
	return NIL;
}

/* The second bucket is computed only when the first says keys overflowed from it. */
static uint32_t index_find(const struct flow_table *t, const struct flow_key *k, uint32_t b1,
			   uint16_t sig)
{
	uint32_t ref = bucket_find(t, b1, k, sig);

	if (ref == NIL && t->bkt[b1].n_moved != 0) {
		uint32_t b2 = alt_bucket(t, b1, sig);

		if (b2 != b1)
			ref = bucket_find(t, b2, k, sig);
	}
	return ref;
}

/*
 * Move slot i of bucket from to the key's other bucket if that has a free
 * slot, keeping n_moved of the key's first bucket right. 0 or -ENOSPC.
 */
static int slot_move(struct flow_table *t, uint32_t from, unsigned i)
{
	struct flow_bucket *src = &t->bkt[from];
	uint32_t to = alt_bucket(t, from, src->sig[i]);
	struct flow_bucket *dst = &t->bkt[to];
	unsigned m = sig_mask(dst, 0);

	if (to == from || m == 0)
		return -ENOSPC;
	unsigned j = (unsigned)__builtin_ctz(m);
	dst->sig[j] = src->sig[i];
	dst->ref[j] = src->ref[i] ^ REF_ALT;
	if (src->ref[i] & REF_ALT)
		dst->n_moved--; /* back in its first bucket */
	else
		src->n_moved++;
	src->sig[i] = 0;
	return 0;
}

/*
 * Make a free slot in one of the key's buckets. Both full happens in ~1e-3
 * of inserts at 25 % load and a few % at 50 % with first-bucket-first
 * placement; moving one occupant to its other bucket (one cuckoo step, no
 * entry read) almost always frees one. 0 or -ENOSPC.
 */
static int index_make_room(struct flow_table *t, const struct loc *l)
{
	const uint32_t bs[2] = {l->b1, l->b2};
	unsigned nb = l->b2 == l->b1 ? 1 : 2;

	for (unsigned j = 0; j < nb; j++) {
		if (sig_mask(&t->bkt[bs[j]], 0) != 0)
			return 0;
	}
	for (unsigned j = 0; j < nb; j++) {
		const struct flow_bucket *b = &t->bkt[bs[j]];

		for (unsigned i = 0; i < BUCKET_SLOTS; i++)
			__builtin_prefetch(&t->bkt[alt_bucket(t, bs[j], b->sig[i])], 0, 3);
	}
	for (unsigned j = 0; j < nb; j++) {
		for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
			if (slot_move(t, bs[j], i) == 0)
				return 0;
		}
	}
	return -ENOSPC;
}

static int index_add(struct flow_table *t, const struct loc *l, uint32_t ref)
{
	struct flow_bucket *b = &t->bkt[l->b1];
	unsigned m = sig_mask(b, 0);

	if (m == 0 && l->b2 != l->b1) {
		b = &t->bkt[l->b2];
		m = sig_mask(b, 0);
		if (m == 0)
			return -ENOSPC;
		t->bkt[l->b1].n_moved++;
		ref |= REF_ALT;
	}
	if (m == 0)
		return -ENOSPC;
	unsigned i = (unsigned)__builtin_ctz(m);
	b->sig[i] = l->sig;
	b->ref[i] = ref;
	return 0;
}

static void index_del(struct flow_table *t, const struct flow_key *k, uint32_t ref)
{
	struct loc l;
	struct flow_bucket *b;

	locate(t, flow_hash(k), &l);
	b = &t->bkt[l.b1];
	for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
		if (b->sig[i] == l.sig && b->ref[i] == ref) {
			b->sig[i] = 0;
			return;
		}
	}
	b = &t->bkt[l.b2];
	for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
		if (b->sig[i] == l.sig && b->ref[i] == (ref | REF_ALT)) {
			b->sig[i] = 0;
			assert(t->bkt[l.b1].n_moved > 0);
			t->bkt[l.b1].n_moved--;
			return;
		}
	}
	assert(!"flow: indexed key not found");
}

/* ---- eviction queue (creation order) ------------------------------------- */

static void queue_append(struct flow_table *t, uint32_t idx)
{
	struct flow_entry *e = &t->ent[idx];

	e->tbl_prev = t->q_tail;
	e->tbl_next = NIL;
	if (t->q_tail != NIL)
		t->ent[t->q_tail].tbl_next = idx;
	else
		t->q_head = idx;
	t->q_tail = idx;
	e->flags |= FLOW_F_QUEUED;
}

static void queue_unlink(struct flow_table *t, uint32_t idx)
{
	struct flow_entry *e = &t->ent[idx];

	if (e->tbl_prev != NIL)
		t->ent[e->tbl_prev].tbl_next = e->tbl_next;
	else
		t->q_head = e->tbl_next;
	if (e->tbl_next != NIL)
		t->ent[e->tbl_next].tbl_prev = e->tbl_prev;
	else
		t->q_tail = e->tbl_prev;
	e->flags &= (uint8_t)~FLOW_F_QUEUED;
}

/* ---- entry life cycle ---------------------------------------------------- */

static void entry_release(struct flow_table *t, uint32_t idx, enum release_why why)
{
	struct flow_entry *e = &t->ent[idx];

	index_del(t, &e->key, idx);
	if (e->flags & FLOW_F_REV) {
		struct flow_key rk;

		rev_key(e, &rk);
		index_del(t, &rk, idx | REF_REV);
	}
	if (e->flags & FLOW_F_QUEUED)
		queue_unlink(t, idx);
	switch (why) {
	case REL_REMOVE:
		t->st.removes++;
		break;
	case REL_EXPIRED:
		t->st.expired++;
		break;
	case REL_EVICT_EXPIRED:
		t->st.evict_expired++;
		break;
	case REL_EVICT_EMBRYONIC:
		t->st.evict_embryonic++;
		break;
	case REL_EVICT_ESTABLISHED:
		t->st.evict_established++;
		break;
	}
	t->n_live--;
	if (t->on_release)
		t->on_release(t->ctx, e);
	e->flags = 0;
	e->tbl_next = t->free_head;
	t->free_head = idx;
}

/*
 * Examine up to budget entries at the cursor: release expired ones (counted
 * as why) and drop graduated entries from the eviction queue, which keeps the
 * queue made of mostly embryonic entries.
 */
static uint32_t sweep(struct flow_table *t, uint64_t now, uint32_t budget, enum release_why why)
{
	uint32_t freed = 0;

	if (budget > t->cap)
		budget = t->cap;
	while (budget--) {
		uint32_t idx = t->cursor;
		struct flow_entry *e = &t->ent[idx];

		t->cursor = idx + 1 == t->cap ? 0 : idx + 1;
		if (!(e->flags & FLOW_F_LIVE))
			continue;
		if (entry_expired(t, e, now)) {
			entry_release(t, idx, why);
			freed++;
		} else if ((e->flags & FLOW_F_QUEUED) && !entry_embryonic(e)) {
			queue_unlink(t, idx);
		}
	}
	return freed;
}

/* Make one entry free when there is none. 0, or -ENOSPC. */
static int reclaim_entry(struct flow_table *t, uint64_t now)
{
	if (sweep(t, now, RECLAIM_SCAN, REL_EVICT_EXPIRED) > 0)
		return 0;
	/* Oldest first; entries that graduated since they were queued leave the queue. */
	for (unsigned n = 0; n < QUEUE_BUDGET && t->q_head != NIL; n++) {
		uint32_t idx = t->q_head;
		const struct flow_entry *e = &t->ent[idx];

		if (entry_expired(t, e, now)) {
			entry_release(t, idx, REL_EVICT_EXPIRED);
			return 0;
		}
		if (entry_embryonic(e)) {
			entry_release(t, idx, REL_EVICT_EMBRYONIC);
			return 0;
		}
		queue_unlink(t, idx);
	}
	if (t->evict_est) {
		/* Approximate LRU: the least recently seen of the next few entries. */
		uint32_t victim = NIL;

		for (unsigned n = 0; n < EST_SCAN && n < t->cap; n++) {
			uint32_t idx = t->cursor;

			t->cursor = idx + 1 == t->cap ? 0 : idx + 1;
			if ((t->ent[idx].flags & FLOW_F_LIVE) &&
			    (victim == NIL || t->ent[idx].last_seen < t->ent[victim].last_seen))
				victim = idx;
		}
		if (victim != NIL) {
			entry_release(t, victim, REL_EVICT_ESTABLISHED);
			return 0;
		}
	}
	return -ENOSPC;
}

/*
 * Both buckets of a key are full: free one slot by releasing one of the flows
 * indexed there (never `keep`), in the global order expired, embryonic (least
 * recently seen), established (if enabled). 0, or -ENOSPC.
 */
static int reclaim_slot(struct flow_table *t, const struct loc *l, uint64_t now, uint32_t keep)
{
	uint32_t emb = NIL, est = NIL;
	const uint32_t bs[2] = {l->b1, l->b2};

	for (unsigned j = 0; j < 2; j++) {
		const struct flow_bucket *b = &t->bkt[bs[j]];

		if (j == 1 && bs[1] == bs[0])
			break;
		for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
			uint32_t idx = b->ref[i] & REF_IDX;
			const struct flow_entry *e = &t->ent[idx];

			if (b->sig[i] == 0 || idx == keep)
				continue;
			if (entry_expired(t, e, now)) {
				entry_release(t, idx, REL_EVICT_EXPIRED);
				return 0;
			}
			if (entry_embryonic(e)) {
				if (emb == NIL || e->last_seen < t->ent[emb].last_seen)
					emb = idx;
			} else if (est == NIL || e->last_seen < t->ent[est].last_seen) {
				est = idx;
			}
		}
	}
	if (emb != NIL) {
		entry_release(t, emb, REL_EVICT_EMBRYONIC);
		return 0;
	}
	if (t->evict_est && est != NIL) {
		entry_release(t, est, REL_EVICT_ESTABLISHED);
		return 0;
	}
	return -ENOSPC;
}

/* ---- public API ---------------------------------------------------------- */

#define HUGE_PAGE (2u << 20)

/*
 * Random accesses over hundreds of MB miss the TLB on every packet with 4 KB
 * pages (a page walk costs about as much as the miss itself), so large
 * arrays are 2 MB aligned and offered to transparent huge pages. Where THP is
 * off this is plain memory and only slower.
 */
static void *table_alloc(size_t bytes, size_t align)
{
	void *p;

	if (bytes < HUGE_PAGE)
		return aligned_alloc(align, (bytes + align - 1) / align * align);
	bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	p = aligned_alloc(HUGE_PAGE, bytes);
	if (p != NULL)
		(void)madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

static int timeouts_valid(const struct flow_timeouts *to)
{
	return to->tcp_syn && to->tcp_est && to->tcp_fin && to->tcp_closed && to->udp && to->other;
}

int flow_set_timeouts(struct flow_table *t, const struct flow_timeouts *to)
{
	if (t == NULL || to == NULL || !timeouts_valid(to))
		return -EINVAL;
	t->tmo[FLOW_TCP_NONE] = to->tcp_syn;
	t->tmo[FLOW_TCP_SYN_SENT] = to->tcp_syn;
	t->tmo[FLOW_TCP_ESTABLISHED] = to->tcp_est;
	t->tmo[FLOW_TCP_FIN_WAIT] = to->tcp_fin;
	for (unsigned s = FLOW_TCP_CLOSED; s < TMO_UDP; s++)
		t->tmo[s] = to->tcp_closed;
	t->tmo[TMO_UDP] = to->udp;
	t->tmo[TMO_OTHER] = to->other;
	return 0;
}

struct flow_table *flow_create(uint32_t capacity, const struct flow_timeouts *to,
			       void (*on_release)(void *ctx, const struct flow_entry *e), void *ctx)
{
	struct flow_timeouts def;
	struct flow_table *t;
	size_t ent_bytes, bkt_bytes;

	if (capacity == 0 || capacity > FLOW_CAPACITY_MAX)
		return NULL;
	if (to == NULL) {
		flow_timeouts_default(&def);
		to = &def;
	}
	if (!timeouts_valid(to))
		return NULL;
	t = aligned_alloc(64, sizeof(*t) + 63 - (sizeof(*t) + 63) % 64);
	if (t == NULL)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->cap = capacity;
	t->nb = (uint32_t)(((uint64_t)capacity * SLOTS_PER_FLOW + BUCKET_SLOTS - 1) / BUCKET_SLOTS);
	ent_bytes = (size_t)capacity * sizeof(struct flow_entry);
	bkt_bytes = (size_t)t->nb * sizeof(struct flow_bucket);
	/* 128-aligned: each entry is one aligned line pair, fetched together. */
	t->ent = table_alloc(ent_bytes, 128);
	t->bkt = table_alloc(bkt_bytes, 64);
	if (t->ent == NULL || t->bkt == NULL) {
		free(t->ent);
		free(t->bkt);
		free(t);
		return NULL;
	}
	/* Writing everything now takes the page faults here, not on the fast path. */
	memset(t->ent, 0, ent_bytes);
	memset(t->bkt, 0, bkt_bytes);
	for (uint32_t i = 0; i < capacity; i++)
		t->ent[i].tbl_next = i + 1 < capacity ? i + 1 : NIL;
	t->free_head = 0;
	t->q_head = t->q_tail = NIL;
	t->on_release = on_release;
	t->ctx = ctx;
	(void)flow_set_timeouts(t, to);
	return t;
}

void flow_destroy(struct flow_table *t)
{
	if (t == NULL)
		return;
	/* No unindexing: the index goes away with the table. */
	for (uint32_t i = 0; i < t->cap && t->on_release; i++) {
		if (t->ent[i].flags & FLOW_F_LIVE)
			t->on_release(t->ctx, &t->ent[i]);
	}
	free(t->ent);
	free(t->bkt);
	free(t);
}

void flow_set_evict_established(struct flow_table *t, int enable)
{
	t->evict_est = enable != 0;
}


void flow_index_of(const struct flow_table *t, struct flow_index *ix)
{
	ix->ent = t->ent;
	ix->bkt = t->bkt;
	ix->nb = t->nb;
	ix->tmo = t->tmo;
}


/* The result of a found ref: NULL (and released) when expired. */
static struct flow_entry *hit(struct flow_table *t, uint32_t ref, uint64_t now, int *dir)
{
	struct flow_entry *e = &t->ent[ref & REF_IDX];

	if (entry_expired(t, e, now)) {
		entry_release(t, ref & REF_IDX, REL_EXPIRED);
		return NULL;
	}
	if (dir)
		*dir = ref & REF_REV ? FLOW_DIR_REV : FLOW_DIR_FWD;
	return e;
}

struct flow_entry *flow_lookup(struct flow_table *t, const struct flow_key *key, uint64_t hash,
			       uint64_t now, int *dir)
{
	uint32_t ref = index_find(t, key, first_bucket(t, hash), signature(hash));

	return ref == NIL ? NULL : hit(t, ref, now, dir);
}

static __attribute__((noinline)) struct flow_entry *
flow_lookup_cold(struct flow_table *t, const struct flow_key *key, uint64_t hash, uint64_t now,
		 int *dir)
{
	return flow_lookup(t, key, hash, now, dir);
}

struct flow_entry *flow_lookup_hint(struct flow_table *t, const struct flow_key *key,
				    uint64_t hash, uint32_t hint, uint64_t now, int *dir)
{
	/*
	 * The hint was read from the bucket earlier; packets since may have
	 * released its entry or given it to another flow. It counts only if the
	 * entry is live and holds this very key in the slot's role (then it is
	 * the entry any lookup would find: a key is indexed once); otherwise
	 * the bucket decides, as in flow_lookup.
	 */
	if (__builtin_expect(hint != FLOW_HINT_NONE, 1)) {
		const struct flow_index ix = {t->ent, t->bkt, t->nb, t->tmo};
		struct flow_entry *c = flow_hit_fast(&ix, key, hint, now);

		if (c != NULL) { /* the common case (fwd tries it inline first) */
			if (dir)
				*dir = FLOW_DIR_FWD;
			return c;
		}
		c = &t->ent[hint & REF_IDX];
		if (hint & REF_REV && (c->flags & (FLOW_F_LIVE | FLOW_F_REV)) ==
					      (FLOW_F_LIVE | FLOW_F_REV) &&
		    flow_rev_eq(c, key))
			return hit(t, hint, now, dir);
	}
	return flow_lookup_cold(t, key, hash, now, dir);
}

struct flow_entry *flow_insert(struct flow_table *t, const struct flow_key *key, uint64_t hash,
			       uint64_t now)
{
	struct flow_entry *e;
	struct loc l;
	uint32_t ref, idx;

	assert(hash == flow_hash(key));
	locate(t, hash, &l);
	ref = index_find(t, key, l.b1, l.sig);
	if (ref != NIL) {
		if (!entry_expired(t, &t->ent[ref & REF_IDX], now)) {
			assert(!"flow_insert: key already present (look up first)");
			return NULL;
		}
		entry_release(t, ref & REF_IDX, REL_EXPIRED);
	}
	if (index_make_room(t, &l) != 0 && reclaim_slot(t, &l, now, NIL) != 0)
		goto full;
	if (t->free_head == NIL && reclaim_entry(t, now) != 0)
		goto full;
	idx = t->free_head;
	e = &t->ent[idx];
	t->free_head = e->tbl_next;
	if (index_add(t, &l, idx) != 0) {
		/* Cannot happen: making room only ever frees slots. */
		assert(!"flow_insert: slot vanished");
		e->tbl_next = t->free_head;
		t->free_head = idx;
		goto full;
	}
	memset(e, 0, sizeof(*e));
	e->key = *key;
	e->last_seen = now;
	e->flags = FLOW_F_LIVE;
	queue_append(t, idx);
	t->n_live++;
	t->st.inserts++;
	return e;
full:
	t->st.insert_fail++;
	return NULL;
}

int flow_set_reverse(struct flow_table *t, struct flow_entry *e, const struct flow_key *rev,
		     uint64_t rev_hash)
{
	/* The caller has just handled a packet of e, so its last_seen is "now". */
	uint64_t now;
	struct loc l;
	uint32_t idx, ref;

	if (entry_of(t, e, &idx) != 0 || rev == NULL || rev->proto != e->key.proto ||
	    rev->pad != 0)
		return -EINVAL;
	if (e->flags & FLOW_F_REV)
		return -EALREADY;
	assert(rev_hash == flow_hash(rev));
	now = e->last_seen;
	locate(t, rev_hash, &l);
	ref = index_find(t, rev, l.b1, l.sig);
	if (ref != NIL) {
		uint32_t other = ref & REF_IDX;

		if (other == idx || !entry_expired(t, &t->ent[other], now)) {
			t->st.rev_conflict++;
			return -EEXIST;
		}
		entry_release(t, other, REL_EXPIRED);
	}
	if (index_make_room(t, &l) != 0 && reclaim_slot(t, &l, now, idx) != 0) {
		t->st.rev_nospace++;
		return -ENOSPC;
	}
	if (index_add(t, &l, idx | REF_REV) != 0) {
		assert(!"flow_set_reverse: slot vanished");
		t->st.rev_nospace++;
		return -ENOSPC;
	}
	e->rev_src = rev->src;
	e->snat_addr = rev->dst;
	e->rev_sport = rev->sport;
	e->snat_port = rev->dport;
	e->flags |= FLOW_F_REV;
	t->st.rev_set++;
	return 0;
}

int flow_remove(struct flow_table *t, struct flow_entry *e)
{
	uint32_t idx;

	if (entry_of(t, e, &idx) != 0)
		return -EINVAL;
	entry_release(t, idx, REL_REMOVE);
	return 0;
}

uint32_t flow_expire(struct flow_table *t, uint64_t now, uint32_t budget)
{
	return sweep(t, now, budget, REL_EXPIRED);
}

/* ---- TCP state ----------------------------------------------------------- */

enum tcp_event {
	EV_NONE,       /* no state-relevant flag, an invalid combination, or ignored */
	EV_SYN,	       /* SYN without ACK from the client */
	EV_SYNACK_REV, /* SYN+ACK from the server */
	EV_ACK_FWD,    /* ACK without SYN/FIN/RST from the client */
	EV_FIN,	       /* FIN without SYN/RST, either direction */
	EV_RST,	       /* RST without SYN, either direction */
	EV_N,
};

/* The legal transitions, written once (see enum flow_tcp_state in flow.h). */
static const uint8_t tcp_next[5][EV_N] = {
    [FLOW_TCP_NONE] = {FLOW_TCP_NONE, FLOW_TCP_SYN_SENT, FLOW_TCP_NONE, FLOW_TCP_ESTABLISHED,
		       FLOW_TCP_FIN_WAIT, FLOW_TCP_CLOSED},
    [FLOW_TCP_SYN_SENT] = {FLOW_TCP_SYN_SENT, FLOW_TCP_SYN_SENT, FLOW_TCP_SYN_SENT,
			   FLOW_TCP_ESTABLISHED, FLOW_TCP_FIN_WAIT, FLOW_TCP_CLOSED},
    [FLOW_TCP_ESTABLISHED] = {FLOW_TCP_ESTABLISHED, FLOW_TCP_ESTABLISHED, FLOW_TCP_ESTABLISHED,
			      FLOW_TCP_ESTABLISHED, FLOW_TCP_FIN_WAIT, FLOW_TCP_CLOSED},
    [FLOW_TCP_FIN_WAIT] = {FLOW_TCP_FIN_WAIT, FLOW_TCP_SYN_SENT, FLOW_TCP_FIN_WAIT,
			   FLOW_TCP_FIN_WAIT, FLOW_TCP_FIN_WAIT, FLOW_TCP_CLOSED},
    [FLOW_TCP_CLOSED] = {FLOW_TCP_CLOSED, FLOW_TCP_SYN_SENT, FLOW_TCP_CLOSED, FLOW_TCP_CLOSED,
			 FLOW_TCP_CLOSED, FLOW_TCP_CLOSED},
};

/*
 * The event of a segment from its FIN, SYN, RST, ACK bits and direction:
 * i = FIN | SYN << 1 | RST << 2 | ACK << 3 | (direction is REV) << 4. The rule
 * is written once (TCP_EV) and expanded into a 32-entry table, so classifying
 * costs one load instead of a chain of branches.
 */
#define TCP_EV(i)                                                                                  \
	(((i)&2) && ((i)&5) ? EV_NONE /* SYN with FIN or RST */                                    \
	 : ((i)&4)	    ? EV_RST                                                               \
	 : ((i)&2)                                                                                 \
	     ? (((i)&16) ? (((i)&8) ? EV_SYNACK_REV : EV_NONE) : (((i)&8) ? EV_NONE : EV_SYN))     \
	 : ((i)&1)	 ? EV_FIN                                                                  \
	 : ((i)&24) == 8 ? EV_ACK_FWD                                                              \
			 : EV_NONE)
#define TCP_EV4(i)  TCP_EV(i), TCP_EV((i) + 1), TCP_EV((i) + 2), TCP_EV((i) + 3)
#define TCP_EV16(i) TCP_EV4(i), TCP_EV4((i) + 4), TCP_EV4((i) + 8), TCP_EV4((i) + 12)

static const uint8_t tcp_ev[32] = {TCP_EV16(0), TCP_EV16(16)};

static inline enum tcp_event tcp_classify(uint8_t f, int dir)
{
	unsigned i = (f & (FLOW_TCPF_FIN | FLOW_TCPF_SYN | FLOW_TCPF_RST)) |
		     (f & FLOW_TCPF_ACK) >> 1 | (dir != FLOW_DIR_FWD) << 4;

	return (enum tcp_event)tcp_ev[i];
}

void flow_track_tcp_slow(struct flow_entry *e, uint8_t tcp_flags, int dir, uint64_t now)
{
	enum tcp_event ev = tcp_classify(tcp_flags, dir);
	uint8_t st = e->tcp_state <= FLOW_TCP_CLOSED ? e->tcp_state : FLOW_TCP_CLOSED;
	uint8_t next;

	if (ev == EV_SYNACK_REV)
		e->flags |= FLOW_F_SYNACK;
	/* Seeing replies, we can insist on a real handshake: no spoofed SYN, ACK pair. */
	if (ev == EV_ACK_FWD && st == FLOW_TCP_SYN_SENT && (e->flags & FLOW_F_REV) &&
	    !(e->flags & FLOW_F_SYNACK))
		ev = EV_NONE;
	next = tcp_next[st][ev];
	if (next == FLOW_TCP_SYN_SENT && st >= FLOW_TCP_FIN_WAIT)
		e->flags &= (uint8_t) ~(FLOW_F_WAS_EST | FLOW_F_SYNACK); /* a new connection */
	if (next == FLOW_TCP_ESTABLISHED)
		e->flags |= FLOW_F_WAS_EST;
	e->tcp_state = next;
	flow_touch(e, now);
}

/* ---- self check (tests) -------------------------------------------------- */

/* How many slots of key k's two buckets hold exactly ref (with or without REF_ALT as placed). */
static unsigned count_ref(const struct flow_table *t, const struct flow_key *k, uint32_t ref)
{
	struct loc l;
	unsigned n = 0;

	locate(t, flow_hash(k), &l);
	for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
		const struct flow_bucket *b1 = &t->bkt[l.b1], *b2 = &t->bkt[l.b2];

		n += b1->sig[i] == l.sig && b1->ref[i] == ref;
		n += l.b2 != l.b1 && b2->sig[i] == l.sig && b2->ref[i] == (ref | REF_ALT);
	}
	return n;
}

int flow_check(const struct flow_table *t)
{
	uint32_t *moved = calloc(t->nb, sizeof(*moved));
	uint64_t live = 0, queued = 0, slots = 0, keys = 0, nfree = 0, walk = 0;
	int rc = -EINVAL;

	if (moved == NULL)
		return -ENOMEM;
	/* Every slot names a live entry whose key hashes to this bucket and signature. */
	for (uint32_t bi = 0; bi < t->nb; bi++) {
		const struct flow_bucket *b = &t->bkt[bi];

		for (unsigned i = 0; i < BUCKET_SLOTS; i++) {
			uint32_t ref = b->ref[i], idx = ref & REF_IDX;
			struct flow_key k;
			struct loc l;

			/* The vector signature compare agrees with the scalar one. */
			if (sig_mask(b, b->sig[i]) != flow_bucket_sig_mask_portable(b, b->sig[i]) ||
			    sig_mask(b, b->sig[i] ^ 0x8000) !=
				flow_bucket_sig_mask_portable(b, b->sig[i] ^ 0x8000))
				goto out;
			if (b->sig[i] == 0)
				continue;
			slots++;
			if (idx >= t->cap || !(t->ent[idx].flags & FLOW_F_LIVE))
				goto out;
			if (ref & REF_REV) {
				if (!(t->ent[idx].flags & FLOW_F_REV))
					goto out;
				rev_key(&t->ent[idx], &k);
			} else {
				k = t->ent[idx].key;
			}
			locate(t, flow_hash(&k), &l);
			if (l.sig != b->sig[i] || bi != (ref & REF_ALT ? l.b2 : l.b1))
				goto out;
			if (ref & REF_ALT) {
				if (l.b2 == l.b1)
					goto out;
				moved[l.b1]++;
			}
		}
	}
	for (uint32_t bi = 0; bi < t->nb; bi++) {
		if (moved[bi] != t->bkt[bi].n_moved)
			goto out;
	}
	/* Every live entry is indexed exactly once per key; the counts add up. */
	for (uint32_t idx = 0; idx < t->cap; idx++) {
		const struct flow_entry *e = &t->ent[idx];

		if (!(e->flags & FLOW_F_LIVE))
			continue;
		live++;
		queued += (e->flags & FLOW_F_QUEUED) != 0;
		keys++;
		if (count_ref(t, &e->key, idx) != 1)
			goto out;
		if (e->flags & FLOW_F_REV) {
			struct flow_key rk;

			keys++;
			rev_key(e, &rk);
			if (count_ref(t, &rk, idx | REF_REV) != 1)
				goto out;
		}
	}
	if (live != t->n_live || keys != slots)
		goto out;
	for (uint32_t i = t->free_head; i != NIL && nfree <= t->cap; i = t->ent[i].tbl_next) {
		if (i >= t->cap || (t->ent[i].flags & FLOW_F_LIVE))
			goto out;
		nfree++;
	}
	if (nfree + live != t->cap)
		goto out;
	/* The eviction queue: exactly the queued entries, links consistent both ways. */
	for (uint32_t i = t->q_head, prev = NIL; i != NIL; prev = i, i = t->ent[i].tbl_next) {
		if (i >= t->cap || walk++ > t->cap || t->ent[i].tbl_prev != prev ||
		    (t->ent[i].flags & (FLOW_F_LIVE | FLOW_F_QUEUED)) !=
			(FLOW_F_LIVE | FLOW_F_QUEUED))
			goto out;
		if (t->ent[i].tbl_next == NIL && t->q_tail != i)
			goto out;
	}
	if (walk != queued)
		goto out;
	rc = 0;
out:
	free(moved);
	return rc;
}

uint32_t flow_count(const struct flow_table *t)
{
	return t->n_live;
}

uint32_t flow_capacity(const struct flow_table *t)
{
	return t->cap;
}

void flow_stats(const struct flow_table *t, struct flow_stats *out)
{
	*out = t->st;
}
