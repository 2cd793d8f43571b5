/* flow: per-worker connection table (5-tuple -> backend, NAT mapping, TCP state, timeouts). */
#ifndef FULCRUM_DATAPLANE_FLOW_H
#define FULCRUM_DATAPLANE_FLOW_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "dataplane/addr.h"
#include "dataplane/hash.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/*
 * Threading: a table belongs to one worker. Every function below that takes a
 * struct flow_table (or an entry of one) must be called from that worker only;
 * there are no locks and no atomics. flow_create/flow_destroy may run on any
 * thread as long as no other thread uses the table at the same time.
 *
 * Memory: flow_create allocates everything; nothing afterwards allocates.
 * Per flow of capacity: 128 bytes of entry + 32 bytes of index (4 key slots of
 * 8 bytes, so that nat flows, which index two keys, fill the index to at most
 * half). 1M flows = 160 MB, 4M = 640 MB.
 *
 * Layout, and why a hit costs one bucket line plus one 128-byte entry: keys
 * live in 64-byte buckets of 8 slots (16-bit signature + 32-bit entry index);
 * each key has two candidate buckets and is placed in its first one unless
 * that is full (at <= 50 % load > 99 % are); when both are full, one occupant
 * moves to its other bucket (a cuckoo step) before anything is evicted. A
 * bucket counts the keys that overflowed to their second bucket, so a miss
 * reads the second bucket only when that count is non-zero. The entry is 128
 * bytes (two lines, 128-aligned so the adjacent-line prefetcher fetches the
 * pair): the forward key alone is 46 bytes because struct addr carries family
 * and padding, and the reverse key of a nat flow needs 44 more; 64 bytes
 * cannot hold both. Line 0 holds all that a hit on a forward key reads and
 * writes (key, SNAT port, last_seen, TCP state, the backend cache and its
 * generation), so a packet from a client costs one entry line in either
 * mode; line 1 the rest of the NAT mapping (the reverse key) and the table's
 * links, read for replies. flow_prefetch_entry loads line 1 only when asked.
 */

/* Largest accepted capacity (entries). */
#define FLOW_CAPACITY_MAX (1u << 26)


enum flow_dir {
	FLOW_DIR_FWD = 0, /* client -> VIP, the key the entry was inserted with */
	FLOW_DIR_REV = 1, /* backend -> SNAT address (nat mode replies) */
};

/*
 * Ports in host byte order; pad (and the pad of both addresses) must be zero.
 * 46 bytes, so that a flow entry's first cache line has room for the nat
 * port next to the key (struct flow_entry).
 */
struct flow_key {
	struct addr src;
	struct addr dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint8_t pad;
};

/*
 * TCP state as far as a balancer can tell without sequence numbers (compare
 * RFC 9293 section 3.3.2; IPVS and nf_conntrack keep a similar reduced machine).
 * UDP and every other protocol stay NONE. Transitions (flow_track_tcp):
 *   RST (without SYN), either direction   -> CLOSED
 *   SYN without ACK from the client       -> SYN_SENT from NONE, SYN_SENT, FIN_WAIT,
 *                                            CLOSED (port reuse); ignored when ESTABLISHED
 *   ACK (no SYN/FIN/RST) from the client  -> ESTABLISHED from NONE (mid-stream pickup,
 *                                            e.g. after an ECMP change) and SYN_SENT; but
 *                                            when a reverse key is indexed (nat mode: the
 *                                            balancer sees the replies) SYN_SENT needs the
 *                                            server's SYN+ACK first
 *   FIN (without SYN/RST), either dir     -> FIN_WAIT from NONE, SYN_SENT, ESTABLISHED
 *   SYN together with FIN or RST          -> ignored (invalid combination)
 *   anything else                         -> no change
 */
enum flow_tcp_state {
	FLOW_TCP_NONE = 0,
	FLOW_TCP_SYN_SENT = 1,
	FLOW_TCP_ESTABLISHED = 2,
	FLOW_TCP_FIN_WAIT = 3,
	FLOW_TCP_CLOSED = 4,
};

/* TCP header flag bits, as flow_track_tcp expects them (RFC 9293 section 3.1). */
enum flow_tcp_flag {
	FLOW_TCPF_FIN = 0x01,
	FLOW_TCPF_SYN = 0x02,
	FLOW_TCPF_RST = 0x04,
	FLOW_TCPF_PSH = 0x08,
	FLOW_TCPF_ACK = 0x10,
};

/* Bits of flow_entry.flags. Only FLOW_F_REV is meant for the caller (read-only). */
enum flow_flag {
	FLOW_F_LIVE = 1 << 0,	 /* the entry is in the table */
	FLOW_F_REV = 1 << 1,	 /* a reverse key is indexed (flow_set_reverse) */
	FLOW_F_SEEN = 1 << 2,	 /* flow_touch/flow_track_tcp saw >= 1 packet */
	FLOW_F_MULTI = 1 << 3,	 /* ... >= 2 packets */
	FLOW_F_WAS_EST = 1 << 4, /* TCP reached ESTABLISHED (cleared on port reuse) */
	FLOW_F_SYNACK = 1 << 5,	 /* the server's SYN+ACK was seen (reverse direction) */
	FLOW_F_QUEUED = 1 << 6,	 /* internal: on the table's eviction queue */
};

/*
 * One flow. The forwarding module reads and writes backend_idx, backend_uid,
 * state_gen and svc_idx directly; the table never interprets them. tcp_state
 * and last_seen change through flow_track_tcp/flow_touch; the NAT fields through
 * flow_set_reverse, and must not be changed afterwards (the reverse index
 * compares them). key, flags and tbl_* belong to the table: read-only.
 */
struct flow_entry {
	/*
	 * line 0: everything a hit of an established flow reads or writes, in
	 * either mode: a nat flow's forward rewrite needs only its SNAT port
	 * here, because its SNAT address is the node address of the state it
	 * was set up in (fwd.c). Replies read line 1 as well.
	 */
	struct flow_key key;  /* forward key (dst = VIP) */
	uint16_t snat_port;   /* nat: our source port towards the backend */
	uint64_t last_seen;   /* ns, the `now` of the last packet */
	uint32_t state_gen;   /* forwarding-state generation backend_idx was chosen in */
	uint16_t backend_idx; /* cached backend, valid while state_gen matches (fwd: < 65536) */
	uint8_t tcp_state;    /* enum flow_tcp_state */
	uint8_t flags;	      /* enum flow_flag */
	/* line 1 */
	uint32_t svc_idx;      /* service index in that state */
	uint32_t backend_uid;  /* stable identity of the backend (fwd revalidates by it) */
	struct addr snat_addr; /* nat: our source address towards the backend */
	struct addr rev_src;   /* nat: source of replies (the backend address) */
	uint16_t rev_sport;    /* nat: source port of replies (the backend port) */
	uint32_t tbl_prev; /* owned by the table */
	uint32_t tbl_next; /* owned by the table */
} __attribute__((aligned(64)));

/*
 * Idle timeouts in ns: an entry is expired when now - last_seen > timeout for
 * its protocol/state. TCP NONE uses tcp_syn.
 */
struct flow_timeouts {
	uint64_t tcp_syn;    /* SYN_SENT (and NONE) */
	uint64_t tcp_est;    /* ESTABLISHED */
	uint64_t tcp_fin;    /* FIN_WAIT */
	uint64_t tcp_closed; /* CLOSED */
	uint64_t udp;
	uint64_t other;
};

/*
 * Counters since creation. Invariant: inserts = removes + expired +
 * evict_expired + evict_embryonic + evict_established + flow_count().
 */
struct flow_stats {
	uint64_t inserts;	    /* flow_insert returned an entry */
	uint64_t removes;	    /* flow_remove */
	uint64_t expired;	    /* timed out; freed by a lookup or flow_expire */
	uint64_t evict_expired;	    /* timed out; reclaimed by an insert needing room */
	uint64_t evict_embryonic;   /* live embryonic entry reclaimed by an insert */
	uint64_t evict_established; /* live established entry evicted (only if enabled) */
	uint64_t insert_fail;	    /* flow_insert returned NULL: table full */
	uint64_t rev_set;	    /* flow_set_reverse succeeded */
	uint64_t rev_conflict;	    /* flow_set_reverse: -EEXIST */
	uint64_t rev_nospace;	    /* flow_set_reverse: -ENOSPC */
};

/*
 * on_release (flow_create) is called exactly once for every entry that leaves
 * the table: flow_remove, expiry (lookups, flow_expire, inserts reclaiming),
 * eviction, and flow_destroy for the entries still present. The entry is
 * already unindexed but its fields are intact (e.g. to free snat_port); it is
 * reused after the call returns. The callback runs on the owner thread and
 * must not call flow_* on this table.
 */
struct flow_table;

/* Defaults, in ns. Reasons in flow.c next to the values. Any thread. */
void flow_timeouts_default(struct flow_timeouts *to);

/*
 * Hash of a key for this module's index (fixed local seed: the value is only
 * ever used inside this node, so it need not match other nodes). Every `hash`
 * argument below must be flow_hash() of the key it comes with: the table
 * recomputes it when it removes a key. Pure; any thread.
 */
uint64_t flow_hash(const struct flow_key *k);

/*
 * flow_hash of the IPv4 key {src4, dst4, sport, dport, proto} (ports in host
 * order), computed from the values rather than from a key in memory: the
 * forwarding fast path calls it on packet bytes, because reading a key it has
 * just written field by field stalls on store-to-load forwarding. Identical
 * to flow_hash of that key. Pure; any thread.
 */
/* Any fixed odd constant: the hash is node-local (fractional bits of sqrt(2)). */
#define FLOW_HASH_SEED 0x6a09e667f3bcc909ULL

/*
 * The flow hash's finish, after its last hash_step: fold the high half of
 * the last product into the low one, so that the low word (the bucket) also
 * takes the product's best-mixed bits; the signature is its top 16 bits.
 * murmur3's fmix64 would cost two more multiplies on every packet: at 1M
 * keys of the bench's patterns, bucket overflow and signature collisions
 * came out the same with either (test_hash_fields_and_spread checks spread).
 */
static inline uint64_t flow_hash_fin(uint64_t h)
{
	return h ^ (h >> 32);
}

static inline uint64_t flow_hash_v4(const uint8_t src4[4], const uint8_t dst4[4],
				    uint16_t sport, uint16_t dport, uint8_t proto)
{
	/*
	 * The words flow_hash loads from an IPv4 key, assembled in registers:
	 * the tail word is the key's sport, dport, proto and zero padding as
	 * memory holds them (native order). Inline and without a byte buffer:
	 * it runs once per packet.
	 */
	uint32_t s4, d4;
	uint64_t tail;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	tail = (uint64_t)sport | (uint64_t)dport << 16 | (uint64_t)proto << 32;
#else
	uint8_t t[8] = {0};
	memcpy(t, &sport, 2);
	memcpy(t + 2, &dport, 2);
	t[4] = proto;
	memcpy(&tail, t, sizeof(tail));
#endif
	memcpy(&s4, src4, 4);
	memcpy(&d4, dst4, 4);
	return flow_hash_fin(
	    hash_step(hash_step(FLOW_HASH_SEED, (uint64_t)s4 | (uint64_t)d4 << 32), tail));
}

/*
 * Allocate a table for exactly `capacity` flows (1..FLOW_CAPACITY_MAX), memory
 * 64-byte aligned (arrays over 2 MB: 2 MB aligned and offered to transparent
 * huge pages, which saves a TLB miss per packet) and touched up front (no page
 * faults later). `to` NULL = defaults; every timeout must be > 0. on_release may be NULL. Eviction
 * of live established flows is off. Returns NULL on bad arguments or out of memory.
 */
struct flow_table *flow_create(uint32_t capacity, const struct flow_timeouts *to,
			       void (*on_release)(void *ctx, const struct flow_entry *e),
			       void *ctx);

/* Release every remaining entry (on_release is called for each), then free. NULL is a no-op. */
void flow_destroy(struct flow_table *t);

/* Replace the timeouts (e.g. after a config change). 0 or -EINVAL (a zero timeout). */
int flow_set_timeouts(struct flow_table *t, const struct flow_timeouts *to);

/*
 * Last resort when an insert finds no room: evict the least recently seen of a
 * few established flows rather than fail. Off by default, because a SYN or ACK
 * flood must not push out established flows.
 */
void flow_set_evict_established(struct flow_table *t, int enable);

/*
 * ---- The burst stages' inline helpers ----
 * A lookup costs two dependent cache misses at scale (bucket, then entry);
 * the forwarding burst requests them ahead, per packet, interleaved with its
 * own work. Those requests run once per packet, so they are inline and read
 * the index layout directly, through a flow_index taken once per table (the
 * arrays never move). Nothing here changes the table.
 */
#define FLOW_BUCKET_SLOTS 8
#define FLOW_REF_REV	  0x80000000u /* the slot holds the entry's reverse key */
#define FLOW_REF_IDX	  0x3fffffffu /* the entry index bits of a slot's ref */

struct flow_bucket {
	uint16_t sig[FLOW_BUCKET_SLOTS]; /* 0 = empty slot */
	uint32_t ref[FLOW_BUCKET_SLOTS]; /* entry index | flags (flow.c) */
	uint32_t n_moved; /* keys whose first bucket is this one, stored in their second */
	uint32_t pad[3];
} __attribute__((aligned(64)));

struct flow_index {
	const struct flow_entry *ent;
	const struct flow_bucket *bkt;
	uint32_t nb;	     /* buckets */
	const uint64_t *tmo; /* idle timeouts: TCP states 0..7, then UDP, then other */
};

/* The table's index arrays, fixed for its lifetime. */
void flow_index_of(const struct flow_table *t, struct flow_index *ix);

/* A key's first bucket: the low word of its hash mapped onto nb with a multiply (Lemire). */
static inline uint32_t flow_index_bucket(uint32_t nb, uint64_t h)
{
	return (uint32_t)(((uint64_t)(uint32_t)h * nb) >> 32);
}

/* A key's signature: the top 16 bits, never 0 (0 marks a free slot). */
static inline uint16_t flow_index_sig(uint64_t h)
{
	uint16_t sig = (uint16_t)(h >> 48);

	return sig ? sig : 1;
}

/*
 * Bit i set iff slot i of b holds signature sig. One 128-bit compare of the
 * 8 signatures (SSE2 is baseline on x86-64); the pack narrows each 16-bit
 * lane to a byte so that the movemask gives one bit per slot.
 */
static inline unsigned flow_bucket_sig_mask_portable(const struct flow_bucket *b, uint16_t sig)
{
	unsigned m = 0;

	for (unsigned i = 0; i < FLOW_BUCKET_SLOTS; i++)
		m |= (unsigned)(b->sig[i] == sig) << i;
	return m;
}

static inline unsigned flow_bucket_sig_mask(const struct flow_bucket *b, uint16_t sig)
{
#ifdef __SSE2__
	__m128i v = _mm_load_si128((const __m128i *)(const void *)b->sig);
	__m128i eq = _mm_cmpeq_epi16(v, _mm_set1_epi16((short)sig));

	return (unsigned)_mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128()));
#else
	return flow_bucket_sig_mask_portable(b, sig);
#endif
}

/*
 * Start loading an entry: line 0 (all a forward hit reads), and line 1 too
 * for a reverse-key slot (a reply reads the nat mapping there). With write
 * intent: a hit writes line 0.
 */
static inline void flow_prefetch_line(const struct flow_entry *e, uint32_t ref)
{
	__builtin_prefetch(e, 1, 3);
	if (ref & FLOW_REF_REV)
		__builtin_prefetch((const char *)e + 64, 1, 3);
}

/* Burst stage 1: start loading the key's first bucket. */
static inline void flow_prefetch(const struct flow_index *ix, uint64_t hash)
{
	__builtin_prefetch(&ix->bkt[flow_index_bucket(ix->nb, hash)], 0, 3);
}

/*
 * Burst stage 2, once the bucket had time to arrive: read the key's first
 * bucket and start loading the entry its signature points to, line 0, and
 * line 1 too when `whole` (the caller will read line 1) or when the slot is a
 * reverse key. Returns a hint for flow_lookup_hint
 * (FLOW_HINT_NONE: no candidate).
 */
#define FLOW_HINT_NONE 0xffffffffu
static inline uint32_t flow_prefetch_entry(const struct flow_index *ix, uint64_t hash, int whole)
{
	const struct flow_bucket *b = &ix->bkt[flow_index_bucket(ix->nb, hash)];
	unsigned m = flow_bucket_sig_mask(b, flow_index_sig(hash));

	if (m) {
		uint32_t ref = b->ref[__builtin_ctz(m)];

		flow_prefetch_line(&ix->ent[ref & FLOW_REF_IDX], whole ? ref | FLOW_REF_REV : ref);
		return ref;
	}
	return FLOW_HINT_NONE;
}

/*
 * The whole of flow_lookup_hint's common case, inline: the hint's entry is
 * live, holds this forward key and has not expired. Returns it, or NULL when
 * any of that fails (then flow_lookup_hint decides: reverse keys, stale
 * hints, expiry, the bucket). Reads the entry's line 0 only; changes nothing.
 */
static inline int flow_key_eq(const struct flow_key *a, const struct flow_key *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	const size_t tail = sizeof(*a) - 16;
#ifdef __SSE2__
	__m128i d = _mm_or_si128(
	    _mm_or_si128(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)x),
				       _mm_loadu_si128((const __m128i *)(const void *)y)),
			 _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(x + 16)),
				       _mm_loadu_si128((const __m128i *)(const void *)(y + 16)))),
	    _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(x + tail)),
			  _mm_loadu_si128((const __m128i *)(const void *)(y + tail))));
	return _mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) == 0xffff;
#else
	uint64_t d = 0, u, v;

	for (size_t i = 0; i + 8 <= sizeof(*a); i += 8) {
		memcpy(&u, x + i, 8);
		memcpy(&v, y + i, 8);
		d |= u ^ v;
	}
	memcpy(&u, x + sizeof(*a) - 8, 8);
	memcpy(&v, y + sizeof(*a) - 8, 8);
	return (d | (u ^ v)) == 0;
#endif
}

/*
 * Whether e has been idle longer than its timeout class allows (tmo: the
 * table's timeouts, TCP states 0..7, then UDP, then other). A last_seen in
 * the future (a clock that stepped back) is not idle.
 */
static inline int flow_entry_expired(const uint64_t *tmo, const struct flow_entry *e, uint64_t now)
{
	unsigned c = e->key.proto == IPPROTO_TCP   ? (e->tcp_state & 7u)
		     : e->key.proto == IPPROTO_UDP ? 8u
						   : 9u;
	return now > e->last_seen && now - e->last_seen > tmo[c];
}

static inline struct flow_entry *flow_hit_fast(const struct flow_index *ix,
					       const struct flow_key *key, uint32_t hint,
					       uint64_t now)
{
	if (hint & FLOW_REF_REV) /* also FLOW_HINT_NONE */
		return NULL;
	const struct flow_entry *e = &ix->ent[hint & FLOW_REF_IDX];
	if (!(e->flags & FLOW_F_LIVE) || !flow_key_eq(&e->key, key) ||
	    flow_entry_expired(ix->tmo, e, now))
		return NULL;
	return (struct flow_entry *)(uintptr_t)e; /* the table's own entry: the caller may write it */
}

/* Whether e's reverse key (a nat flow's, FLOW_F_REV set) is k. Reads both lines of e. */
static inline int flow_rev_eq(const struct flow_entry *e, const struct flow_key *k)
{
	return e->rev_sport == k->sport && e->snat_port == k->dport && e->key.proto == k->proto &&
	       k->pad == 0 && addr_eq(&e->rev_src, &k->src) && addr_eq(&e->snat_addr, &k->dst);
}

/*
 * flow_hit_fast for a reply: the hint's slot is a reverse key, its entry
 * is live, holds `key` as its reverse key and has not expired. Returns it,
 * or NULL (then flow_lookup_hint decides). Changes nothing.
 */
static inline struct flow_entry *flow_hit_rev_fast(const struct flow_index *ix,
						   const struct flow_key *key, uint32_t hint,
						   uint64_t now)
{
	const uint8_t both = FLOW_F_LIVE | FLOW_F_REV;

	if (hint == FLOW_HINT_NONE || !(hint & FLOW_REF_REV))
		return NULL;
	const struct flow_entry *e = &ix->ent[hint & FLOW_REF_IDX];
	if ((e->flags & both) != both || !flow_rev_eq(e, key) ||
	    flow_entry_expired(ix->tmo, e, now))
		return NULL;
	return (struct flow_entry *)(uintptr_t)e; /* the table's own entry: the caller may write it */
}

/*
 * flow_lookup, trying first the candidate flow_prefetch_entry returned for
 * this key (without reading the bucket again). The table may have changed
 * since the hint was taken (inserts, removals, evictions): a hint whose entry
 * no longer holds the key is ignored, so the result is always flow_lookup's.
 */
struct flow_entry *flow_lookup_hint(struct flow_table *t, const struct flow_key *key,
				    uint64_t hash, uint32_t hint, uint64_t now, int *dir);

/*
 * Find the live entry holding `key` as forward or as reverse key; *dir (if not
 * NULL) tells which. An expired entry is a miss: it is released on the spot
 * (on_release runs). Returns NULL on a miss. Does not refresh last_seen: call
 * flow_track_tcp/flow_touch for the packet.
 * Entry pointers stay valid until a call that can release entries other than
 * the one looked up: flow_insert and flow_set_reverse (they may evict),
 * flow_remove, flow_expire.
 */
struct flow_entry *flow_lookup(struct flow_table *t, const struct flow_key *key, uint64_t hash,
			       uint64_t now, int *dir);


/*
 * Insert a key that is not present (look it up first; a present key is a
 * caller bug: assert in debug builds, NULL otherwise). Returns the new entry:
 * key copied, last_seen = now, FLOW_F_LIVE (plus internal flag bits), every
 * other field zero.
 * When there is no room (no free entry, or both buckets of the key full),
 * reclaims in this order: (1) expired entries: in the key's buckets, within a
 * short scan at the sweep cursor, or at the head of the creation-order queue;
 * (2) embryonic entries, oldest created first: TCP that never reached
 * ESTABLISHED, and any flow that has seen a single packet (a spoofed SYN, a
 * DNS query, a mid-stream ACK); (3) only if enabled, the least recently seen
 * of a few established flows. Otherwise returns NULL (the caller counts a drop
 * "flow table full"). The work is bounded per call (tens of entries), so an
 * expired entry elsewhere in the table may be missed: flow_expire finds those.
 */
struct flow_entry *flow_insert(struct flow_table *t, const struct flow_key *key, uint64_t hash,
			       uint64_t now);

/*
 * Index the reply key of a nat flow, {src = backend, dst = SNAT address,
 * sport = backend port, dport = SNAT port, proto = e's proto}: copies it into
 * rev_src/rev_sport/snat_addr/snat_port and sets FLOW_F_REV, so a lookup of
 * `rev` returns e with dir FLOW_DIR_REV. Removing e removes both keys.
 * Returns 0; -EEXIST if a live flow (this one included) already holds `rev`;
 * -ENOSPC if its buckets are full of flows that may not be evicted (as in
 * flow_insert; never e itself); -EALREADY if e already has a reverse key;
 * -EINVAL if e is not a live entry of t or rev has another protocol or
 * non-zero padding. There is no `now`: e->last_seen is taken as the current
 * time (the caller has just handled a packet of e) to judge whether a holder
 * of `rev` has expired.
 */
int flow_set_reverse(struct flow_table *t, struct flow_entry *e, const struct flow_key *rev,
		     uint64_t rev_hash);

/* Remove e (both keys); on_release runs. 0, or -EINVAL if e is not a live entry of t. */
int flow_remove(struct flow_table *t, struct flow_entry *e);

/*
 * Background sweep: examine at most `budget` entry slots from a round-robin
 * cursor and release the expired ones. Returns how many it released. Call it
 * when the worker is idle, e.g. 64-256 per empty poll, and with a small
 * budget (e.g. 8) per burst when it never is: inserts only look at a few
 * entries, so without the sweep expired flows linger until a lookup hits them.
 */
uint32_t flow_expire(struct flow_table *t, uint64_t now, uint32_t budget);

/*
 * Per packet of an entry, after lookup/insert: flow_track_tcp for TCP (tcp_flags
 * = the header's flags byte, dir = FLOW_DIR_FWD/REV), flow_touch for anything
 * else. Both set last_seen = now (never backwards) and count the packet;
 * call them for the packet that created the entry too. Entry-only: no table.
 * Both are inline (below): they run on every forwarded packet.
 */

/*
 * The full TCP tracker (every transition of enum flow_tcp_state, the packet
 * counting of flow_touch). flow_track_tcp calls it for everything but the
 * common case; calling it directly gives the same result, only slower.
 */
void flow_track_tcp_slow(struct flow_entry *e, uint8_t tcp_flags, int dir, uint64_t now);

static inline void flow_touch(struct flow_entry *e, uint64_t now)
{
	if (now > e->last_seen)
		e->last_seen = now;
	if ((e->flags & (FLOW_F_SEEN | FLOW_F_MULTI)) != (FLOW_F_SEEN | FLOW_F_MULTI))
		e->flags |= e->flags & FLOW_F_SEEN ? FLOW_F_MULTI : FLOW_F_SEEN;
}

/*
 * Almost every packet belongs to an established flow that has already been
 * counted twice and carries neither SYN, FIN nor RST: the transition table
 * then keeps ESTABLISHED in both directions (with or without ACK) and every
 * flag it would set is already set, so only last_seen moves. Anything else
 * takes the full function. tests/unit/test_flow.c checks that both give the
 * same entry for every state, flag byte, direction and entry flag set.
 */
static inline void flow_track_tcp(struct flow_entry *e, uint8_t tcp_flags, int dir, uint64_t now)
{
	const uint8_t done = FLOW_F_SEEN | FLOW_F_MULTI | FLOW_F_WAS_EST;

	if (__builtin_expect(e->tcp_state == FLOW_TCP_ESTABLISHED &&
				 !(tcp_flags & (FLOW_TCPF_FIN | FLOW_TCPF_SYN | FLOW_TCPF_RST)) &&
				 (e->flags & done) == done,
			     1)) {
		if (now > e->last_seen)
			e->last_seen = now;
		return;
	}
	flow_track_tcp_slow(e, tcp_flags, dir, now);
}

/* Live entries / capacity. */
uint32_t flow_count(const struct flow_table *t);
uint32_t flow_capacity(const struct flow_table *t);

/* Copy the counters. */
void flow_stats(const struct flow_table *t, struct flow_stats *out);

/*
 * Verify every internal invariant (index <-> entries, overflow counts, free
 * list, eviction queue). O(capacity), allocates: for tests and debugging,
 * never the fast path. 0, -EINVAL if something is inconsistent (a bug), or
 * -ENOMEM.
 */
int flow_check(const struct flow_table *t);

#endif
